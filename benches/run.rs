//! `run` latency of each example pipeline without the LLM's time: everything `tailor run` does
//! for a request (plugin calls in their sandboxes, retrieval over the user's stored history,
//! embedding the query with MiniLM, templates, the profile's statistics) with an LLM that answers
//! at once. The user is `examples/users/ana.jsonl` in a SQLite store on disk; the inputs are
//! those of each pipeline's first in-file test.
//!
//! Two configurations per pipeline, measured in the same run: `cached` (the steady state: stages
//! marked `cache=` answer from the stage cache) and `uncached` (a stage cache that keeps nothing,
//! so every stage runs every time), with the ratio of their medians.
//!
//! Run with `cargo bench --bench run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tailor_dsl::check::check_file;
use tailor_dsl::span::SourceFile;
use tailor_dsl::types::Value;
use tailor_engine::exec::{CacheKey, Executor, Loaded, MemoryStageCache, RunRequest, StageCache};
use tailor_engine::host::PluginHost;
use tailor_engine::host::services::{Complete, Completion, CompletionRequest, ServiceError, Services, SystemClock};
use tailor_engine::registry::Registry;
use tailor_engine::retrieval::{KernelScorer, MiniLm, UserIndexConfig};
use tailor_engine::store::{DenseSetup, EmbedWith, Histories, SqliteStore, Store, StoreKv, item_from_json};

const WARMUP: usize = 5;
const RUNS: usize = 50;
const TENANT: &str = "bench";
const USER: &str = "ana";

/// A stage cache that keeps nothing.
struct NoCache;

#[async_trait]
impl StageCache for NoCache {
    async fn get(&self, _: &CacheKey) -> Option<Vec<Value>> {
        None
    }
    async fn put(&self, _: CacheKey, _: Vec<Value>, _: Duration) {}
    async fn forget_user(&self, _: &str, _: &str) {}
}

/// An LLM that answers at once: a verdict the judge can read, or a number for structured output.
struct AtOnce;

#[async_trait]
impl Complete for AtOnce {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        let text = if request.json_schema.is_some() { "4" } else { "Answer: A. Certainty: 80/100" };
        Ok(Completion { texts: vec![text.to_owned(); request.n as usize], prompt_tokens: 0, completion_tokens: 1 })
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("tailor.db")).unwrap());
    let registry = rt.block_on(async {
        let host = Arc::new(PluginHost::new().expect("plugin host"));
        Registry::with_builtins(host).await.expect("built-in plugins")
    });
    let embedder = Arc::new(MiniLm::shared().expect("MiniLM"));
    let dense = DenseSetup {
        model: "all-MiniLM-L6-v2".into(),
        embedder: Arc::clone(&embedder) as _,
        scorer: Arc::new(KernelScorer::shared().expect("kernels")),
    };
    let histories = Arc::new(Histories::new(Arc::clone(&store), Some(dense), UserIndexConfig::default()));
    let items = include_str!("../examples/users/ana.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| item_from_json(&serde_json::from_str(l).unwrap()).unwrap())
        .collect();
    rt.block_on(histories.ingest(TENANT, USER, items)).unwrap();
    let services = Services {
        search: Some(Arc::clone(&histories) as _),
        embed: Some(Arc::new(EmbedWith(embedder as _))),
        complete: Some(Arc::new(AtOnce)),
        kv: Some(Arc::new(StoreKv(Arc::clone(&store)))),
        clock: Arc::new(SystemClock),
    };
    let catalog = registry.snapshot();
    let history_version = rt.block_on(store.history_version(TENANT, USER)).unwrap();
    println!("{RUNS} runs each after {WARMUP} warm-up runs; the LLM answers at once\n");
    println!("{:<20} {:>22} {:>22} {:>8}", "pipeline", "cached p50 / p99", "uncached p50 / p99", "ratio");
    let mut stage_times = Vec::new();
    for (name, text) in [
        ("persona-chat", include_str!("../examples/persona-chat.kdl")),
        ("writing-assistant", include_str!("../examples/writing-assistant.kdl")),
        ("review-rating", include_str!("../examples/review-rating.kdl")),
        ("privacy-email", include_str!("../examples/privacy-email.kdl")),
    ] {
        let checked = check_file(&SourceFile::new(name, text), &*catalog);
        assert!(!checked.has_errors(), "{name} checks");
        let pipeline = checked.pipelines.into_iter().next().unwrap();
        let inputs = pipeline.tests[0].inputs.clone();
        let loaded = Loaded::new(pipeline);
        let measure = |cache: Arc<dyn StageCache>| {
            let executor = Executor::new(Arc::clone(registry.host()), cache);
            let request = || RunRequest {
                loaded: loaded.clone(),
                catalog: Arc::clone(&catalog),
                tenant: TENANT.into(),
                user: USER.into(),
                inputs: inputs.clone(),
                services: services.clone(),
                history_version,
                request_id: "bench".into(),
                deadline: None,
                wrap_complete: None,
            };
            let mut times = Vec::with_capacity(RUNS);
            let mut stages: Vec<(String, Vec<Duration>)> = Vec::new();
            for i in 0..WARMUP + RUNS {
                let start = Instant::now();
                let report = rt.block_on(executor.run(request())).unwrap_or_else(|f| panic!("{name}: {}", f.error));
                for (k, s) in report.stages.iter().enumerate() {
                    if stages.len() <= k {
                        stages.push((format!("{} ({})", s.label, s.plugin), Vec::new()));
                    }
                    stages[k].1.push(s.elapsed);
                }
                assert!(
                    report.stages.iter().all(|s| !matches!(s.outcome, tailor_engine::exec::Outcome::Failed { .. }))
                );
                if i >= WARMUP {
                    times.push(start.elapsed());
                }
            }
            times.sort();
            let stages: Vec<(String, Duration)> = stages
                .into_iter()
                .map(|(label, mut t)| {
                    t.sort();
                    (label, t[t.len() / 2])
                })
                .collect();
            (times, stages)
        };
        let (cached, _) = measure(Arc::new(MemoryStageCache::new(4096)));
        let (uncached, stages) = measure(Arc::new(NoCache));
        let (c50, u50) = (percentile(&cached, 0.5), percentile(&uncached, 0.5));
        println!(
            "{name:<20} {:>9.2} / {:>6.2} ms {:>9.2} / {:>6.2} ms {:>7.2}×",
            ms(c50),
            ms(percentile(&cached, 0.99)),
            ms(u50),
            ms(percentile(&uncached, 0.99)),
            u50.as_secs_f64() / c50.as_secs_f64()
        );
        stage_times.push((name, stages));
    }
    println!("\nmedian time per stage, uncached:");
    for (name, stages) in stage_times {
        let parts: Vec<String> = stages.iter().map(|(label, t)| format!("{label} {:.2} ms", ms(*t))).collect();
        println!("  {name}: {}", parts.join(", "));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
