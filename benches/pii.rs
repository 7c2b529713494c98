//! PII recognizer throughput, in MB of text per second: all 15 entity types with the default
//! thresholds over presidio-research's synthetic sample (`tests/fixtures/pii/`), its texts joined
//! and repeated to the chunk size.
//!
//! - `sandbox`: `builtin:pii-redact` as a pipeline runs it: one call of the wasm component per
//!   chunk (a fresh instance each call, the recognizers' DFAs loaded in place, placeholders out);
//! - `native` (the baseline, measured in the same run): the same recognizers (`tailor-pii`)
//!   called directly, as the host's egress guard does.
//!
//! First, the latency of one call on short texts (a chat message, and two characters: what a call
//! costs before any text), median of 300 calls, sandbox against native.
//!
//! Run with `cargo bench --bench pii`; `-- --calls N` makes only N calls on the chat message, for a
//! profiler (with `TAILOR_PLUGIN_PERFMAP=1`, `perf` names the plugin's functions).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tailor_dsl::types::Value;
use tailor_engine::host::{BUILT_PLUGIN_DIR, Call, CallContext, PluginHost};

const ROUNDS: usize = 5;

fn corpus(bytes: usize) -> String {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/pii/presidio_generated_small.json")).unwrap();
    let texts: Vec<&str> = json.as_array().unwrap().iter().map(|s| s["full_text"].as_str().unwrap()).collect();
    let mut out = String::with_capacity(bytes + 1024);
    while out.len() < bytes {
        for t in &texts {
            out.push_str(t);
            out.push_str("\n\n");
        }
    }
    let mut end = bytes.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let wasm =
        std::fs::read(format!("{BUILT_PLUGIN_DIR}/tailor_builtin_pii_redact.wasm")).expect("pii-redact is built");
    let host = Arc::new(PluginHost::new().unwrap());
    let plugin = rt.block_on(host.load(&wasm)).unwrap();
    let analyzer = tailor_pii::Analyzer::default();
    let call_with = |text: &str| {
        let mut call =
            Call::new(CallContext { request_id: "bench".into(), pipeline: "bench".into(), stage: "redact".into() });
        call.inputs.push(("text".into(), Value::text(text)));
        let start = Instant::now();
        rt.block_on(plugin.call(&host, call)).expect("the call succeeds");
        start.elapsed()
    };
    // `--calls N`: only N calls on the chat message, for a profiler.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--calls") {
        let calls: usize = args.get(i + 1).and_then(|s| s.parse().ok()).expect("--calls N");
        for _ in 0..calls {
            call_with("Any tips on hiking this weekend? Mail me at ana1@example.com");
        }
        return;
    }
    println!("one call, median of 300; all entity types, default thresholds\n");
    println!("{:>62} {:>12} {:>12}", "text", "sandbox µs", "native µs");
    for text in ["Any tips on hiking this weekend? Mail me at ana1@example.com", "ok"] {
        for _ in 0..30 {
            call_with(text);
        }
        let sandbox = median((0..300).map(|_| call_with(text)).collect());
        let native = median(
            (0..300)
                .map(|_| {
                    let start = Instant::now();
                    let found = analyzer.analyze(text);
                    let _ = tailor_pii::redact(text, &found, &tailor_pii::Operator::Placeholder);
                    start.elapsed()
                })
                .collect(),
        );
        println!("{text:>62} {:>12.1} {:>12.1}", sandbox.as_secs_f64() * 1e6, native.as_secs_f64() * 1e6);
    }
    println!("\nmedian of {ROUNDS} rounds; all entity types, default thresholds\n");
    println!("{:>10} {:>16} {:>16} {:>10}", "chunk", "sandbox MB/s", "native MB/s", "ratio");
    for chunk in [4 << 10, 64 << 10, 512 << 10] {
        let text = corpus(chunk);
        let sandbox = median(
            (0..ROUNDS)
                .map(|_| {
                    let mut call = Call::new(CallContext {
                        request_id: "bench".into(),
                        pipeline: "bench".into(),
                        stage: "redact".into(),
                    });
                    call.inputs.push(("text".into(), Value::text(text.as_str())));
                    let start = Instant::now();
                    rt.block_on(plugin.call(&host, call)).expect("the call succeeds");
                    start.elapsed()
                })
                .collect(),
        );
        let native = median(
            (0..ROUNDS)
                .map(|_| {
                    let start = Instant::now();
                    let found = analyzer.analyze(&text);
                    let _ = tailor_pii::redact(&text, &found, &tailor_pii::Operator::Placeholder);
                    start.elapsed()
                })
                .collect(),
        );
        println!(
            "{:>8} K {:>16.2} {:>16.2} {:>9.2}×",
            chunk >> 10,
            mb_per_s(text.len(), sandbox),
            mb_per_s(text.len(), native),
            native.as_secs_f64() / sandbox.as_secs_f64()
        );
    }
}
