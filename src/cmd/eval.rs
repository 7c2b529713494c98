//! `tailor eval retrieval`: retrieval quality and speed on a BEIR dataset, as one JSON object.
//!
//! The whole corpus is indexed as one user's history ([`UserIndex`]), as the `search` capability
//! would serve it, and every judged query of the split is run against it. Each query retrieves
//! `max(k, 100)` documents so that recall@100 is measured at its full depth. As BEIR does, a
//! document whose id equals the query's id is dropped from that query's results. Progress goes
//! to stderr (hidden when it is not a terminal); the result is the only thing on stdout.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tailor_dsl::types::{Item, Value};
use tailor_engine::host::services::SearchMethod;
use tailor_engine::retrieval::beir::{BeirDoc, load_beir};
use tailor_engine::retrieval::metrics::{mean_over_queries, ndcg_at, recall_at};
use tailor_engine::retrieval::{Bm25Params, KernelScorer, MiniLm, TextEmbedder, UserIndex, UserIndexConfig};

use crate::Outcome;

/// Texts per embedder call (documents while indexing, queries while searching), and so the step
/// of the progress bars.
const BATCH: usize = 64;

/// How deep every query retrieves at least: recall@100 needs 100.
const MIN_DEPTH: usize = 100;

#[derive(Serialize)]
struct Report {
    #[serde(rename = "ndcg@10")]
    ndcg_at_10: f64,
    #[serde(rename = "recall@100")]
    recall_at_100: f64,
    /// nDCG at the requested cut-off, when it is not 10.
    #[serde(rename = "ndcg@k", skip_serializing_if = "Option::is_none")]
    ndcg_at_k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<usize>,
    index_seconds: f64,
    queries_per_second: f64,
    method: &'static str,
    queries: usize,
    documents: usize,
}

/// What `tailor eval retrieval` was asked to do.
pub struct RetrievalRun<'a> {
    pub beir: &'a Path,
    pub split: &'a str,
    pub method: SearchMethod,
    /// The nDCG cut-off besides 10.
    pub k: usize,
    pub bm25: Bm25Params,
}

pub fn retrieval(run: &RetrievalRun<'_>) -> anyhow::Result<Outcome> {
    let config = UserIndexConfig { bm25: run.bm25.check()?, ..UserIndexConfig::default() };
    let mut index = match run.method {
        SearchMethod::Bm25 => UserIndex::new(config),
        SearchMethod::Dense | SearchMethod::Hybrid => {
            let embedder: Arc<dyn TextEmbedder> = Arc::new(MiniLm::shared().map_err(anyhow::Error::msg)?);
            let scorer = KernelScorer::shared().map_err(anyhow::Error::msg)?;
            UserIndex::with_dense(config, embedder, Arc::new(scorer))?
        }
    };
    let data =
        load_beir(run.beir, run.split).with_context(|| format!("loading the BEIR dataset {}", run.beir.display()))?;
    if data.missing_queries > 0 {
        eprintln!("warning: {} judged queries are not in queries.jsonl; they are left out", data.missing_queries);
    }

    let started = Instant::now();
    let progress = bar(data.corpus.len(), "indexing");
    for chunk in data.corpus.chunks(BATCH) {
        index.upsert_batch(chunk.iter().map(item).collect()).context("indexing the corpus")?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    let index_seconds = started.elapsed().as_secs_f64();

    let depth = run.k.max(MIN_DEPTH);
    let mut ranked: HashMap<String, Vec<String>> = HashMap::with_capacity(data.queries.len());
    let mut searching = Duration::ZERO;
    let progress = bar(data.queries.len(), "searching");
    for chunk in data.queries.chunks(BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|q| q.text.as_str()).collect();
        let started = Instant::now();
        let lists = index.search_batch(&texts, run.method, depth, None).context("searching")?;
        searching += started.elapsed();
        for (query, hits) in chunk.iter().zip(lists) {
            let ids = hits.iter().map(|h| h.item.id.to_string()).filter(|id| *id != query.id).collect();
            ranked.insert(query.id.clone(), ids);
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();

    let report = Report {
        ndcg_at_10: mean_over_queries(&data.qrels, &ranked, |r, j| ndcg_at(r, j, 10)),
        recall_at_100: mean_over_queries(&data.qrels, &ranked, |r, j| recall_at(r, j, 100)),
        ndcg_at_k: (run.k != 10).then(|| mean_over_queries(&data.qrels, &ranked, |r, j| ndcg_at(r, j, run.k))),
        k: (run.k != 10).then_some(run.k),
        index_seconds,
        queries_per_second: data.queries.len() as f64 / searching.as_secs_f64().max(f64::MIN_POSITIVE),
        method: match run.method {
            SearchMethod::Bm25 => "bm25",
            SearchMethod::Dense => "dense",
            SearchMethod::Hybrid => "hybrid",
        },
        queries: data.queries.len(),
        documents: index.len(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(Outcome::Ok)
}

fn item(doc: &BeirDoc) -> Arc<Item> {
    let fields = BTreeMap::from([(Arc::from("title"), Value::Text(doc.title.as_str().into()))]);
    Arc::new(Item {
        id: doc.id.as_str().into(),
        kind: "document".into(),
        text: doc.indexed_text().into(),
        timestamp: None,
        fields,
    })
}

pub fn bar(len: usize, what: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_message(what);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("invariant: a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// `tailor eval pii --presidio FILE`: the recognizers of `builtin:pii-redact`, scored token by
/// token against presidio-research-style labels (see `tailor_pii::eval` for the method and the
/// label mapping).
pub fn pii(path: &Path, entities: &[String], threshold: f32) -> anyhow::Result<Outcome> {
    use tailor_pii::eval::{Sample, evaluate, overall, presidio_names};

    let known = presidio_names();
    for e in entities {
        if !known.contains(&e.as_str()) {
            anyhow::bail!("--entities: unknown entity `{e}` (known: {})", known.join(", "));
        }
    }
    if !(0.0..=1.0).contains(&threshold) {
        anyhow::bail!("--threshold must be between 0 and 1");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let rows = json.as_array().with_context(|| format!("{}: expected a JSON array of samples", path.display()))?;
    let mut samples = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let at = || format!("{}: sample {i}", path.display());
        let full = row["full_text"].as_str().with_context(|| format!("{}: no `full_text` text", at()))?;
        // presidio-research counts positions in characters; spans here are in bytes.
        let bytes: Vec<usize> = full.char_indices().map(|(b, _)| b).chain([full.len()]).collect();
        let mut spans = Vec::new();
        for span in row["spans"].as_array().with_context(|| format!("{}: no `spans` list", at()))? {
            let label =
                span["entity_type"].as_str().with_context(|| format!("{}: a span without `entity_type`", at()))?;
            let position = |key: &str| -> anyhow::Result<usize> {
                let chars = span[key].as_u64().with_context(|| format!("{}: a span without `{key}`", at()))?;
                bytes
                    .get(chars as usize)
                    .copied()
                    .with_context(|| format!("{}: `{key}` {chars} is past the text", at()))
            };
            let (start, end) = (position("start_position")?, position("end_position")?);
            if start > end {
                anyhow::bail!("{}: a span ends before it starts", at());
            }
            spans.push((start, end, label.to_owned()));
        }
        samples.push(Sample { text: full.to_owned(), spans });
    }
    let only: Vec<&str> = entities.iter().map(String::as_str).collect();
    let analyzer = tailor_pii::Analyzer::default().default_threshold(threshold);
    let counts = evaluate(&analyzer, &samples, (!only.is_empty()).then_some(&only[..]));
    let all = overall(&counts);
    let per_entity: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|(name, c)| {
            let value = serde_json::json!({
                "precision": c.precision(), "recall": c.recall(), "f2": c.f2(), "support": c.support()
            });
            ((*name).to_owned(), value)
        })
        .collect();
    let report = serde_json::json!({
        "overall": {"precision": all.precision(), "recall": all.recall(), "f2": all.f2()},
        "per_entity": per_entity,
        "samples": samples.len(),
        "method": "token-level; ADDRESS scored as LOCATION, DOMAIN_NAME as URL; labels no recognizer targets (TITLE…) not scored",
    });
    println!("{report}");
    Ok(Outcome::Ok)
}
