//! The sandbox against real hostile guests (the components in `plugins/testing/`): each one gets
//! its typed error within its deadline, and the host serves the next call.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tailor_dsl::descriptor::Capability;
use tailor_dsl::types::Value;

use super::services::{Complete, Completion, CompletionRequest, ServiceError, Services};
use super::*;

fn wasm(name: &str) -> Vec<u8> {
    let path = format!("{}/tailor_test_{name}.wasm", env!("TAILOR_PLUGIN_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    })
}

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| PluginHost::new().expect("host starts"))
}

fn load(name: &str) -> Plugin {
    runtime().block_on(host().load(&wasm(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Deadline tests measure wall-clock time: one at a time (the hot-load test too), so that they
/// do not starve each other.
pub(crate) static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn call(plugin: &Plugin, mut call: Call) -> (Result<CallOutput, StageError>, Duration) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if call.context.stage.is_empty() {
        call.context.stage = "s".into();
    }
    let start = Instant::now();
    let r = runtime().block_on(plugin.call(host(), call));
    (r, start.elapsed())
}

fn quick(timeout_ms: u64) -> Call {
    let mut c = Call::new(CallContext::default());
    c.limits.timeout = Duration::from_millis(timeout_ms);
    c
}

/// The host still answers: a trivial call right after each hostile one succeeds.
fn still_serves() {
    let trivial = load("trivial");
    let mut c = quick(2_000);
    c.inputs.push(("text".into(), Value::text("ok")));
    let (r, _) = call(&trivial, c);
    let out = r.expect("the trivial plugin answers");
    assert_eq!(out.outputs[0].1, Value::text("ok"));
}

#[test]
fn describes_itself() {
    let p = load("trivial");
    assert_eq!(p.descriptor().name, "test:trivial");
    assert_eq!(p.abi(), &ABI_VERSION);
    assert_eq!(p.sha256().len(), 64);
}

#[test]
fn infinite_loop_times_out() {
    let (r, took) = call(&load("spin"), quick(200));
    assert!(matches!(r, Err(StageError::Timeout { .. })), "{r:?}");
    assert!(took < Duration::from_millis(250), "{took:?}");
    still_serves();
}

#[test]
fn huge_allocation_hits_the_memory_limit() {
    let mut c = quick(5_000);
    c.limits.memory_bytes = 64 << 20;
    let (r, took) = call(&load("hog"), c);
    assert!(matches!(r, Err(StageError::MemoryLimit { .. })), "{r:?}");
    assert!(took < Duration::from_millis(5_050), "{took:?}");
    still_serves();
}

#[test]
fn panic_is_a_trap_with_its_message() {
    let (r, _) = call(&load("panics"), quick(2_000));
    match r {
        Err(StageError::Trap { stderr, .. }) => assert!(stderr.contains("deliberate panic: 42"), "{stderr}"),
        other => panic!("{other:?}"),
    }
    still_serves();
}

#[test]
fn huge_output_is_refused() {
    let (r, _) = call(&load("flood"), quick(10_000));
    assert!(
        matches!(r, Err(StageError::OutputTooLarge { size, limit }) if size >= 100_000_000 && limit == 16 << 20),
        "{r:?}"
    );
    still_serves();
}

#[test]
fn ungranted_capability_fails_the_stage() {
    let (r, _) = call(&load("sneaky"), quick(2_000));
    assert_eq!(r.err(), Some(StageError::Ungranted { capability: Capability::Complete }));
    still_serves();
}

#[test]
fn malformed_output_is_refused() {
    let (r, _) = call(&load("garbage"), quick(2_000));
    assert!(matches!(r, Err(StageError::MalformedOutput { .. })), "{r:?}");
    still_serves();
}

struct Slow;

#[async_trait]
impl Complete for Slow {
    async fn complete(&self, _: CompletionRequest) -> Result<Completion, ServiceError> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Err(ServiceError::Unavailable("too slow".into()))
    }
}

#[test]
fn sleeping_in_a_host_call_times_out() {
    let mut c = quick(300);
    c.grants = BTreeSet::from([Capability::Complete]);
    c.services = Services { complete: Some(Arc::new(Slow)), ..Services::default() };
    let (r, took) = call(&load("sleeper"), c);
    assert!(matches!(r, Err(StageError::Timeout { .. })), "{r:?}");
    assert!(took < Duration::from_millis(350), "{took:?}");
    still_serves();
}

#[test]
fn no_filesystem_network_or_environment() {
    let (r, _) = call(&load("probe"), quick(5_000));
    let out = r.expect("the probe reports what it tried");
    assert_eq!(out.outputs.len(), 6);
    for (port, value) in &out.outputs {
        let Value::Text(report) = value else { panic!("{port}: {value:?}") };
        if port == "env" {
            assert_eq!(&**report, "ok: 0 variables", "the environment is empty");
        } else {
            assert!(report.starts_with("error"), "{port} was allowed: {report}");
        }
    }
}
