//! Per-call overhead of a trivial stage: a fresh store, instantiation and `run` of the
//! `test:trivial` component, with the pooling allocator, against the same calls with
//! on-demand allocation as the baseline measured in the same run.
//!
//! Run with `cargo bench --bench plugin_call`; prints p50/p99/mean per configuration and the
//! ratio of the p50s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tailor_dsl::types::Value;
use tailor_engine::host::{BUILT_PLUGIN_DIR, Call, CallContext, HostOptions, PluginHost};

const WARMUP: usize = 500;
const CALLS: usize = 5_000;

fn measure(rt: &tokio::runtime::Runtime, options: HostOptions) -> Vec<Duration> {
    let wasm =
        std::fs::read(format!("{BUILT_PLUGIN_DIR}/tailor_test_trivial.wasm")).expect("the trivial plugin is built");
    let host = Arc::new(PluginHost::with_options(options).expect("host"));
    let plugin = rt.block_on(host.load(&wasm)).expect("loads");
    let call = || {
        let mut c =
            Call::new(CallContext { request_id: "bench".into(), pipeline: "bench".into(), stage: "echo".into() });
        c.inputs.push(("text".into(), Value::text("hello")));
        c
    };
    rt.block_on(async {
        for _ in 0..WARMUP {
            plugin.call(&host, call()).await.expect("call succeeds");
        }
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let c = call();
            let start = Instant::now();
            plugin.call(&host, c).await.expect("call succeeds");
            times.push(start.elapsed());
        }
        times.sort();
        times
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, t: &[Duration]) -> Duration {
    let mean = t.iter().sum::<Duration>() / t.len() as u32;
    let (p50, p99) = (percentile(t, 0.50), percentile(t, 0.99));
    println!("{name:<22} p50 {:>8.1} µs   p99 {:>8.1} µs   mean {:>8.1} µs", us(p50), us(p99), us(mean));
    p50
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!("trivial stage call: fresh store + instantiate + run, {CALLS} calls after {WARMUP} warm-up");
    let pooled = report("pooling allocator", &measure(&rt, HostOptions { pooling: true }));
    let on_demand = report("on-demand (baseline)", &measure(&rt, HostOptions { pooling: false }));
    println!("pooling is {:.2}x faster at p50", us(on_demand) / us(pooled));
}
