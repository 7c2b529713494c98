//! The daemon under load: a six-stage pipeline (PII redaction, BM25 over 1,000 history items,
//! the profile's statistics, data minimization, the generator, an output filter) served over
//! HTTP on loopback, with a fake OpenAI-compatible LLM that answers at once (also on loopback).
//!
//! For each concurrency (1, then 8 connections kept alive), requests run for `--seconds` (default
//! 15) after a warm-up; reported: requests/s, and p50/p99 latency as the client sees it, with and
//! without the LLM's time (`llm_ms` of each answer: the loopback round trip to the fake LLM). The
//! baseline, measured in the same run: the same pipeline through the executor in process (no
//! HTTP, no routing, no auth), one run at a time — the ratio is what serving adds.
//!
//! Run with `cargo bench --bench daemon [-- --seconds N]`; `-- --profile-runs N` runs only the
//! cached pipeline in process N times, for a profiler.
//!
//! For the comparison with Haystack (`benches/haystack/run.sh`): `--in-process-only` measures only
//! the in-process baseline, `--runs N` sets its number of runs (default 500), `--json FILE` writes
//! its results as JSON, and `--dump-items FILE` writes the history items and the messages, so the
//! other side runs on exactly the same data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tailor_dsl::types::Value;
use tailor_engine::daemon::{self, DaemonConfig, KeyHash};
use tailor_engine::exec::{CompleteWrap, RunRequest, StageLlm};
use tailor_engine::host::services::{Complete, Completion, CompletionRequest, ServiceError};
use tailor_engine::llm::testing::{FakeLlm, Reply};

const KEY: &str = "bench-key";

/// `NAME` and `CACHE` are filled in for each variant.
const PIPELINE: &str = r#"pipeline "NAME" {
    input "message" type="text"
    stage "redacted" use="builtin:pii-redact" {
        text "input.message"
        operator "placeholder"
    }
    stage "words" use="builtin:retrieve" grants="search" {
        query "redacted.text"
        method "bm25"
        k 8
    }
    stage "habits" use="builtin:profile" grants="search kv"CACHE {
        max-items 200
    }
    stage "needed" use="builtin:minimize" {
        profile "habits.stats"
        fields "count"
        items "words.items"
        task "redacted.text"
        max-items 4
    }
    stage "answer" use="builtin:generate" grants="complete" {
        max-tokens 32
        prompt """
            {{ for it in needed.items }}- {{ it.text }}
            {{ end }}The user has {{ needed.profile.count }} notes. Question: {{ redacted.text }}
            """
    }
    stage "clean" use="builtin:pii-redact" {
        text "answer.text"
        operator "mask"
    }
    output "clean.text"
}
"#;

const TOPICS: [&str; 10] =
    ["hiking", "chess", "espresso", "cycling", "gardening", "jazz", "sourdough", "astronomy", "pottery", "sailing"];

/// The LLM, with the time spent in it added up.
struct Timed {
    inner: Arc<dyn Complete>,
    total: Arc<std::sync::Mutex<Duration>>,
}

#[async_trait::async_trait]
impl Complete for Timed {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        let started = Instant::now();
        let out = self.inner.complete(request).await;
        *self.total.lock().unwrap() += started.elapsed();
        out
    }
}

/// Runs before the measured ones, in process and over HTTP alike.
const WARM_UP: usize = 50;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Sample {
    total_ms: f64,
    llm_ms: f64,
}

/// One in-process run: its time without the LLM's, each stage's time (ms), the pipeline's output.
struct InProcessRun {
    ms: f64,
    stages: Vec<(String, f64)>,
    output: Value,
}

fn main() {
    let mut seconds = 15u64;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--seconds") {
        seconds = args.get(i + 1).and_then(|s| s.parse().ok()).expect("--seconds N");
    }
    let profile_runs: Option<usize> = args
        .iter()
        .position(|a| a == "--profile-runs")
        .map(|i| args.get(i + 1).and_then(|s| s.parse().ok()).expect("--profile-runs N"));
    let mut runs = 500usize;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs = args.get(i + 1).and_then(|s| s.parse().ok()).filter(|&n| n > 0).expect("--runs N");
    }
    let in_process_only = args.iter().any(|a| a == "--in-process-only");
    let json_path = args.iter().position(|a| a == "--json").map(|i| args.get(i + 1).expect("--json FILE").clone());
    let dump_path =
        args.iter().position(|a| a == "--dump-items").map(|i| args.get(i + 1).expect("--dump-items FILE").clone());
    // The daemon's runtime: two workers, as on a 2-core machine.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let llm = server_rt.block_on(FakeLlm::always(Reply::Text("Sure: try the north ridge at dawn.".into())));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    // The profiler as profilers are meant to run (cached until the history changes), and with
    // every stage running on every request.
    let variants = [("cached-profile", " cache=\"10m\""), ("uncached", "")];
    for (name, cache) in variants {
        let text = PIPELINE.replace("NAME", name).replace("CACHE", cache);
        std::fs::write(dir.path().join(format!("pipelines/{name}.kdl")), text).unwrap();
    }
    let config_text = format!(
        "store \"tailor.db\"\npipelines \"pipelines\"\nllm \"openai\" url=\"{}\" model=\"fake\"\n\
         tenant \"bench\" {{\n    key \"{}\"\n}}\nlimits {{\n    concurrency 256\n}}\nreload {{\n    watch #false\n}}\n",
        llm.url(),
        KeyHash::of(KEY).to_text()
    );
    let file = tailor_dsl::span::SourceFile::new("tailor.kdl", config_text);
    let config = DaemonConfig::parse(&file, dir.path()).expect("the bench's config");
    let running = server_rt.block_on(daemon::start(config)).expect("the daemon starts");
    let base = format!("http://{}", running.addr);
    let app = Arc::clone(&running.app);

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let items: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            let topic = TOPICS[i % TOPICS.len()];
            json!({"id": format!("n{i}"), "kind": "note",
                   "text": format!("note {i}: thoughts on {topic}, the {} kind, with friends on day {}", TOPICS[(i * 7) % 10], i % 31)})
        })
        .collect();
    client_rt.block_on(async {
        let resp = client
            .post(format!("{base}/v1/users/ana/items"))
            .bearer_auth(KEY)
            .json(&json!({"items": items}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    });
    let message =
        |i: usize| format!("Any tips on {} this weekend? Mail me at ana{i}@example.com", TOPICS[i % TOPICS.len()]);
    if let Some(path) = &dump_path {
        // The messages of the warm-up and of the measured runs: `message(i)` for i below the larger.
        let messages: Vec<String> = (0..runs.max(WARM_UP)).map(message).collect();
        let data = json!({"user": "ana", "items": items, "messages": messages});
        std::fs::write(path, serde_json::to_string(&data).unwrap()).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let mut results = serde_json::Map::new();

    println!("six-stage pipeline, 1,000 history items, fake LLM on loopback; daemon on 2 worker threads");
    for (name, _) in variants {
        // The baseline: the executor in process, one run at a time, its LLM time timed the same way.
        let llm_time = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let timer = Arc::clone(&llm_time);
        let wrap: CompleteWrap = Arc::new(move |s: StageLlm| {
            Arc::new(Timed { inner: s.inner, total: Arc::clone(&timer) }) as Arc<dyn Complete>
        });
        let generation = app.reloader.current();
        let served = generation.pipelines.get(name).expect("the bench pipeline").clone();
        let in_process = |i: usize| {
            let request = RunRequest {
                loaded: served.loaded.clone(),
                catalog: Arc::clone(&generation.catalog),
                tenant: "bench".into(),
                user: "ana".into(),
                inputs: vec![Value::text(message(i))],
                services: app.services.clone(),
                history_version: 1,
                request_id: String::new(),
                deadline: None,
                wrap_complete: Some(Arc::clone(&wrap)),
            };
            *llm_time.lock().unwrap() = Duration::ZERO;
            let started = Instant::now();
            let report = server_rt.block_on(app.executor.run(request)).expect("the pipeline runs");
            let ms = (started.elapsed() - *llm_time.lock().unwrap()).as_secs_f64() * 1e3;
            let stages = report.stages.iter().map(|s| (s.label.clone(), s.elapsed.as_secs_f64() * 1e3)).collect();
            InProcessRun { ms, stages, output: report.output }
        };
        for i in 0..WARM_UP {
            in_process(i);
        }
        if let Some(profile_runs) = profile_runs {
            // For a profiler (`perf record`): only the in-process runs of the first variant.
            for i in 0..profile_runs {
                in_process(i);
            }
            return;
        }
        let measured: Vec<InProcessRun> = (0..runs).map(in_process).collect();
        let mut baseline: Vec<f64> = measured.iter().map(|r| r.ms).collect();
        baseline.sort_by(f64::total_cmp);
        let stages: Vec<(String, f64)> = measured[0]
            .stages
            .iter()
            .enumerate()
            .map(|(i, (label, _))| {
                let mut times: Vec<f64> = measured.iter().map(|r| r.stages[i].1).collect();
                times.sort_by(f64::total_cmp);
                (label.clone(), percentile(&times, 0.5))
            })
            .collect();
        let per_stage: Vec<String> = stages.iter().map(|(label, p50)| format!("{label} {p50:.2}")).collect();

        println!("\n{name}:");
        println!(
            "in process (executor only, baseline), without the LLM's time: p50 {:.2} ms, p99 {:.2} ms ({runs} runs)",
            percentile(&baseline, 0.5),
            percentile(&baseline, 0.99)
        );
        println!("  per stage, p50 ms (the generator's includes its LLM call): {}", per_stage.join(", "));
        // One run's input, what reached the LLM (the last request the fake LLM saw), and output.
        let requests = llm.requests();
        let prompt = requests.last().and_then(|(_, body)| body["messages"].as_array()?.last()?["content"].as_str());
        let example =
            json!({"input": message(runs - 1), "llm_prompt": prompt, "output": measured[runs - 1].output.to_string()});
        if in_process_only {
            println!("  example: {example}");
        }
        results.insert(
            name.into(),
            json!({
                "p50_ms": percentile(&baseline, 0.5),
                "p99_ms": percentile(&baseline, 0.99),
                "runs": runs,
                "stages": stages.into_iter().map(|(label, p50)| (label, json!(p50))).collect::<serde_json::Map<_, _>>(),
                "example": example,
            }),
        );
        if in_process_only {
            continue;
        }
        for concurrency in [1usize, 8] {
            let run = |deadline: Instant| {
                let client = client.clone();
                let base = base.clone();
                async move {
                    let mut tasks = Vec::new();
                    for c in 0..concurrency {
                        let (client, base) = (client.clone(), base.clone());
                        tasks.push(tokio::spawn(async move {
                            let mut samples = Vec::new();
                            let mut i = c * 1_000_000;
                            while Instant::now() < deadline {
                                i += 1;
                                let started = Instant::now();
                                let resp = client
                                    .post(format!("{base}/v1/pipelines/{name}/run"))
                                    .bearer_auth(KEY)
                                    .json(&json!({"user": "ana", "input": message(i)}))
                                    .send()
                                    .await
                                    .expect("a response");
                                assert_eq!(resp.status(), 200);
                                let body: serde_json::Value = resp.json().await.expect("JSON");
                                let total_ms = started.elapsed().as_secs_f64() * 1e3;
                                samples.push(Sample { total_ms, llm_ms: body["llm_ms"].as_f64().unwrap_or(0.0) });
                            }
                            samples
                        }));
                    }
                    let mut all = Vec::new();
                    for t in tasks {
                        all.extend(t.await.expect("a client task"));
                    }
                    all
                }
            };
            client_rt.block_on(run(Instant::now() + Duration::from_secs(2)));
            let started = Instant::now();
            let samples = client_rt.block_on(run(Instant::now() + Duration::from_secs(seconds)));
            let wall = started.elapsed().as_secs_f64();
            let mut total: Vec<f64> = samples.iter().map(|s| s.total_ms).collect();
            let mut without_llm: Vec<f64> = samples.iter().map(|s| s.total_ms - s.llm_ms).collect();
            total.sort_by(f64::total_cmp);
            without_llm.sort_by(f64::total_cmp);
            println!(
                "HTTP, {concurrency} connection(s): {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms; without the LLM's time \
                 p50 {:.2} ms, p99 {:.2} ms; p50 without LLM / in-process p50 = {:.2}× ({} requests)",
                samples.len() as f64 / wall,
                percentile(&total, 0.5),
                percentile(&total, 0.99),
                percentile(&without_llm, 0.5),
                percentile(&without_llm, 0.99),
                percentile(&without_llm, 0.5) / percentile(&baseline, 0.5),
                samples.len(),
            );
        }
    }
    if let Some(path) = &json_path {
        let text = serde_json::to_string_pretty(&json!({"variants": results})).unwrap();
        std::fs::write(path, text + "\n").unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    server_rt.block_on(running.shutdown());
}
