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

pub fn bar(len: usize, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_message(what);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("invariant: a valid template")
            .progress_chars("=> "),
    );
    bar
}
