//! `tailor ingest --user U FILE.jsonl`: add a user's history items to the store, one JSON object
//! per line; items are embedded as they are stored. A bad line is reported with its number and
//! skipped; the good ones are kept.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tailor_engine::store::item_from_json;

use crate::Outcome;
use crate::local::{LlmChoice, Local};

/// Items stored per transaction (and embedded per call).
const BATCH: usize = 256;

pub struct Ingest<'a> {
    pub file: &'a Path,
    pub user: &'a str,
    pub tenant: &'a str,
    pub store: &'a Path,
    pub embed: bool,
}

pub fn run(args: &Ingest<'_>) -> anyhow::Result<Outcome> {
    let reader: Box<dyn std::io::BufRead> = if args.file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(args.file).with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let shown = args.file.display().to_string();
    let mut items = Vec::new();
    let mut bad = 0usize;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {shown}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|json| item_from_json(&json));
        match parsed {
            Ok(item) => items.push(item),
            Err(why) => {
                bad += 1;
                eprintln!("{shown}:{}: skipped: {why}", i + 1);
            }
        }
    }
    let store = Local::open_store(args.store)?;
    let local = Local::open(Arc::clone(&store), &[], &LlmChoice::default(), args.embed)?;
    let bar = crate::cmd::eval::bar(items.len(), "ingest");
    let total = items.len();
    let mut version = 0;
    for chunk in items.chunks(BATCH) {
        version = local
            .runtime
            .block_on(local.histories.ingest(args.tenant, args.user, chunk.to_vec()))
            .with_context(|| format!("storing items in {}", args.store.display()))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!(
        "ingested {total} items for user `{}` into {} (history version {version}){}",
        args.user,
        args.store.display(),
        if bad > 0 { format!("; {bad} bad lines skipped") } else { String::new() }
    );
    Ok(if bad > 0 { Outcome::Failed } else { Outcome::Ok })
}
