//! `tailor demo`: the main job end to end on the embedded defaults. Ingests the sample users of
//! `examples/users/` into a fresh SQLite store in a temporary directory, then runs every example
//! pipeline for each of them, with the inputs of the pipeline's first in-file test, and prints
//! what each stage did and the personalised output.

use std::sync::Arc;

use anyhow::Context as _;
use tailor_dsl::check::check_file;
use tailor_dsl::span::SourceFile;
use tailor_engine::exec::{Loaded, Outcome as StageOutcome, RunRequest};
use tailor_engine::store::item_from_json;

use crate::local::{LlmChoice, Local};
use crate::{Outcome, report};

/// The example pipelines, compiled in so the demo runs from anywhere.
const PIPELINES: [(&str, &str); 4] = [
    ("examples/persona-chat.kdl", include_str!("../../examples/persona-chat.kdl")),
    ("examples/writing-assistant.kdl", include_str!("../../examples/writing-assistant.kdl")),
    ("examples/review-rating.kdl", include_str!("../../examples/review-rating.kdl")),
    ("examples/privacy-email.kdl", include_str!("../../examples/privacy-email.kdl")),
];

/// The sample users.
const USERS: [(&str, &str); 2] =
    [("ana", include_str!("../../examples/users/ana.jsonl")), ("ben", include_str!("../../examples/users/ben.jsonl"))];

const TENANT: &str = "demo";

pub fn run(llm: &LlmChoice, keep: bool) -> anyhow::Result<Outcome> {
    let dir = tempfile::Builder::new().prefix("tailor-demo-").tempdir().context("creating a temporary directory")?;
    let path = dir.path().join("tailor.db");
    let store = Local::open_store(&path)?;
    let local = Local::open(Arc::clone(&store), &[], llm, true)?;
    println!(
        "Tailor demo: store {} ({})",
        path.display(),
        match &llm.url {
            Some(url) => format!("LLM: {url}"),
            None => "LLM: embedded SmolLM2-135M-Instruct".into(),
        }
    );
    for (user, jsonl) in USERS {
        let items = jsonl
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .map_err(|e| e.to_string())
                    .and_then(|json| item_from_json(&json))
                    .map_err(|e| anyhow::anyhow!("examples/users/{user}.jsonl:{}: {e}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let n = items.len();
        local.runtime.block_on(local.histories.ingest(TENANT, user, items)).context("ingesting the sample users")?;
        println!("ingested {n} history items for user `{user}` (embedded with all-MiniLM-L6-v2)");
    }
    let catalog = local.registry.snapshot();
    let mut failures = 0;
    for (name, text) in PIPELINES {
        let file = SourceFile::new(name, text);
        let checked = check_file(&file, &*catalog);
        if checked.has_errors() {
            for d in &checked.diagnostics {
                eprintln!("{}", report::human(d, &file));
            }
            anyhow::bail!("the example {name} does not check");
        }
        for pipeline in checked.pipelines {
            let Some(test) = pipeline.tests.first().cloned() else { continue };
            let loaded = Loaded::new(pipeline);
            println!("\n=== {name}: pipeline `{}` ===", loaded.pipeline.name);
            for (input, value) in loaded.pipeline.inputs.iter().zip(&test.inputs) {
                println!("input {} = {}", input.name, value);
            }
            for (user, _) in USERS {
                let version = local.runtime.block_on(store.history_version(TENANT, user))?;
                let request = RunRequest {
                    loaded: loaded.clone(),
                    catalog: Arc::clone(&catalog),
                    tenant: TENANT.into(),
                    user: user.into(),
                    inputs: test.inputs.clone(),
                    services: local.services.clone(),
                    history_version: version,
                    request_id: format!("demo-{user}"),
                    deadline: None,
                    wrap_complete: None,
                };
                println!("\n--- for `{user}` ---");
                match local.runtime.block_on(local.executor.run(request)) {
                    Ok(done) => {
                        for s in &done.stages {
                            let note = match &s.outcome {
                                StageOutcome::Recovered { error } => format!(" ({error})"),
                                _ => String::new(),
                            };
                            println!(
                                "  {:<10} {:<20} {:>9} {:>8.0} ms{note}",
                                s.label,
                                s.plugin,
                                s.outcome.as_str(),
                                s.elapsed.as_secs_f64() * 1e3
                            );
                        }
                        println!("  output: {}", one_line(&done.output.to_string()));
                    }
                    Err(failure) => {
                        failures += 1;
                        println!("  failed: {}", failure.error);
                    }
                }
            }
        }
    }
    if keep {
        let kept = dir.keep();
        println!("\nThe store is kept at {}", kept.join("tailor.db").display());
    }
    Ok(if failures > 0 { Outcome::Failed } else { Outcome::Ok })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
