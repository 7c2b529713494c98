//! The executor against real plugins (built-ins and the test guests in `plugins/testing/`),
//! with services faked only at the process boundary (the LLM) or in memory (the history).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tailor_dsl::check::check_file;
use tailor_dsl::span::SourceFile;
use tailor_dsl::types::{Item, Value};

use super::*;
use crate::host::services::{Complete, Completion, CompletionRequest, ServiceError};
use crate::registry::Registry;
use crate::retrieval::{MemoryHistory, UserIndexConfig};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    })
}

/// The built-ins and the test guests, loaded once.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        runtime().block_on(async {
            let host = Arc::new(PluginHost::new().expect("host"));
            let registry = Registry::with_builtins(host).await.expect("built-ins");
            for name in ["trivial", "panics", "sleeper"] {
                let path = format!("{}/tailor_test_{name}.wasm", crate::host::BUILT_PLUGIN_DIR);
                registry.load_file(std::path::Path::new(&path)).await.unwrap_or_else(|e| panic!("{path}: {e}"));
            }
            registry
        })
    })
}

fn compile(text: &str) -> Loaded {
    let catalog = registry().snapshot();
    let checked = check_file(&SourceFile::new("test.kdl", text), &*catalog);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    Loaded::new(checked.pipelines.into_iter().next().expect("one pipeline"))
}

fn request(loaded: &Loaded, inputs: Vec<Value>, services: Services) -> RunRequest {
    RunRequest {
        loaded: loaded.clone(),
        catalog: registry().snapshot(),
        tenant: "t".into(),
        user: "u".into(),
        inputs,
        services,
        history_version: 1,
        request_id: "r1".into(),
        deadline: None,
        wrap_complete: None,
    }
}

fn executor() -> Executor {
    Executor::new(Arc::clone(registry().host()), Arc::new(MemoryStageCache::new(64)))
}

fn run(exec: &Executor, req: RunRequest) -> Result<RunReport, RunFailure> {
    runtime().block_on(exec.run(req))
}

/// An LLM that answers only once `parties` requests are waiting at the same time, so a test
/// passes only if the stages calling it run concurrently.
struct Rendezvous {
    barrier: tokio::sync::Barrier,
}

#[async_trait]
impl Complete for Rendezvous {
    async fn complete(&self, _: CompletionRequest) -> Result<Completion, ServiceError> {
        self.barrier.wait().await;
        Ok(Completion { texts: vec!["met".into()], prompt_tokens: 1, completion_tokens: 1 })
    }
}

/// An LLM that never answers, and counts requests dropped before an answer.
#[derive(Default)]
struct Never {
    dropped: Arc<AtomicUsize>,
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Complete for Never {
    async fn complete(&self, _: CompletionRequest) -> Result<Completion, ServiceError> {
        let _guard = CountDrop(Arc::clone(&self.dropped));
        std::future::pending::<()>().await;
        unreachable!("pending never completes")
    }
}

fn with_llm(llm: impl Complete + 'static) -> Services {
    Services { complete: Some(Arc::new(llm)), ..Services::default() }
}

#[test]
fn independent_stages_run_concurrently_and_feed_their_readers() {
    let loaded = compile(
        r#"
        pipeline "p" {
            input "q" type="text"
            stage "a" use="test:sleeper" grants="complete"
            stage "b" use="test:sleeper" grants="complete"
            stage "c" use="test:trivial" {
                text "a.text + '+' + b.text + '+' + input.q"
            }
            output "c.text"
        }
        "#,
    );
    let llm = Rendezvous { barrier: tokio::sync::Barrier::new(2) };
    let report = run(&executor(), request(&loaded, vec![Value::text("q1")], with_llm(llm))).expect("runs");
    assert_eq!(report.output, Value::text("met+met+q1"));
    let outcomes: Vec<_> = report.stages.iter().map(|s| (s.label.as_str(), s.outcome.clone())).collect();
    assert_eq!(outcomes, [("a", Outcome::Ran), ("b", Outcome::Ran), ("c", Outcome::Ran)]);
    let c = &report.stages[2];
    assert_eq!(c.inputs, [("text".to_string(), Value::text("met+met+q1"))]);
    assert_eq!(c.outputs[0], ("text".to_string(), Value::text("met+met+q1")));
    assert!(c.started >= report.stages[0].started + report.stages[0].elapsed, "c starts after a ends");
}

#[test]
fn a_false_condition_skips_the_stage_with_zero_outputs() {
    let loaded = compile(
        r#"
        pipeline "p" {
            input "q" type="text"
            stage "maybe" use="test:trivial" when="len(input.q) > 3" {
                text "input.q"
            }
            output "'[' + maybe.text + ']'"
        }
        "#,
    );
    let exec = executor();
    let short = run(&exec, request(&loaded, vec![Value::text("ab")], Services::default())).unwrap();
    assert_eq!(short.output, Value::text("[]"));
    assert_eq!(short.stages[0].outcome, Outcome::Skipped);
    let long = run(&exec, request(&loaded, vec![Value::text("abcd")], Services::default())).unwrap();
    assert_eq!(long.output, Value::text("[abcd]"));
}

#[test]
fn on_error_policies_skip_fall_back_or_fail() {
    let skip = compile(
        r#"
        pipeline "p" {
            stage "boom" use="test:panics" on-error="skip"
            output "'<' + boom.text + '>'"
        }
        "#,
    );
    let report = run(&executor(), request(&skip, vec![], Services::default())).unwrap();
    assert_eq!(report.output, Value::text("<>"));
    assert!(
        matches!(&report.stages[0].outcome, Outcome::Recovered { error } if error.contains("deliberate panic")),
        "{:?}",
        report.stages[0].outcome
    );

    let fallback = compile(
        r#"
        pipeline "p" {
            stage "boom" use="test:panics" on-error="fallback" {
                fallback text="spare"
            }
            output "boom.text"
        }
        "#,
    );
    let report = run(&executor(), request(&fallback, vec![], Services::default())).unwrap();
    assert_eq!(report.output, Value::text("spare"));

    let fail = compile(
        r#"
        pipeline "p" {
            stage "boom" use="test:panics"
            stage "after" use="test:trivial" {
                text "boom.text"
            }
            output "after.text"
        }
        "#,
    );
    let failure = run(&executor(), request(&fail, vec![], Services::default())).unwrap_err();
    assert!(
        matches!(&*failure.error, RunError::Stage { stage, error: StageError::Trap { .. }, .. } if stage == "boom"),
        "{failure:?}"
    );
    assert!(matches!(failure.stages[0].outcome, Outcome::Failed { .. }));
    assert_eq!(failure.stages[1].outcome, Outcome::Cancelled, "a reader of a failed stage never runs");
}

#[test]
fn a_failing_stage_cancels_the_stages_still_running() {
    let loaded = compile(
        r#"
        pipeline "p" {
            stage "slow" use="test:sleeper" grants="complete" timeout="60s"
            stage "boom" use="test:panics"
            stage "both" use="test:trivial" {
                text "slow.text + boom.text"
            }
            output "both.text"
        }
        "#,
    );
    let llm = Never::default();
    let dropped = Arc::clone(&llm.dropped);
    let start = Instant::now();
    let failure = run(&executor(), request(&loaded, vec![], with_llm(llm))).unwrap_err();
    assert!(matches!(*failure.error, RunError::Stage { .. }), "{failure:?}");
    assert!(start.elapsed() < Duration::from_secs(10), "the run did not wait for the slow stage");
    // The slow stage's task is aborted: its pending LLM request is dropped.
    let waited = Instant::now();
    while dropped.load(Ordering::SeqCst) == 0 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(failure.stages[0].outcome, Outcome::Cancelled);
}

#[test]
fn dropping_the_run_cancels_its_stages() {
    let loaded = compile(
        r#"
        pipeline "p" {
            stage "slow" use="test:sleeper" grants="complete" timeout="60s"
            output "slow.text"
        }
        "#,
    );
    let llm = Never::default();
    let dropped = Arc::clone(&llm.dropped);
    let exec = executor();
    let req = request(&loaded, vec![], with_llm(llm));
    let gave_up = runtime().block_on(async { tokio::time::timeout(Duration::from_millis(300), exec.run(req)).await });
    assert!(gave_up.is_err(), "the run cannot finish");
    let waited = Instant::now();
    while dropped.load(Ordering::SeqCst) == 0 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the plugin's pending host call was dropped");
}

#[test]
fn the_run_deadline_bounds_every_stage() {
    let loaded = compile(
        r#"
        pipeline "p" {
            stage "slow" use="test:sleeper" grants="complete" timeout="60s"
            output "slow.text"
        }
        "#,
    );
    let mut req = request(&loaded, vec![], with_llm(Never::default()));
    req.deadline = Some(Instant::now() + Duration::from_millis(300));
    let start = Instant::now();
    let failure = run(&executor(), req).unwrap_err();
    assert_eq!(*failure.error, RunError::Deadline, "the stage's own timeout did not run out: {failure:?}");
    // Whichever noticed first, the stage's cut timeout or the run's own wait, it did not finish.
    assert!(matches!(failure.stages[0].outcome, Outcome::Failed { .. } | Outcome::Cancelled), "{failure:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

#[test]
fn cached_results_are_reused_until_inputs_or_history_change() {
    let loaded = compile(
        r#"
        pipeline "p" {
            input "q" type="text"
            stage "echo" use="test:trivial" cache="1h" {
                text "input.q"
            }
            output "echo.text"
        }
        "#,
    );
    let exec = executor();
    let first = run(&exec, request(&loaded, vec![Value::text("x")], Services::default())).unwrap();
    assert_eq!(first.stages[0].outcome, Outcome::Ran);
    let again = run(&exec, request(&loaded, vec![Value::text("x")], Services::default())).unwrap();
    assert_eq!(again.stages[0].outcome, Outcome::Cached);
    assert_eq!(again.output, Value::text("x"));
    let other_input = run(&exec, request(&loaded, vec![Value::text("y")], Services::default())).unwrap();
    assert_eq!(other_input.stages[0].outcome, Outcome::Ran);
    let mut newer = request(&loaded, vec![Value::text("x")], Services::default());
    newer.history_version = 2;
    assert_eq!(run(&exec, newer).unwrap().stages[0].outcome, Outcome::Ran, "the history changed");
    runtime().block_on(exec.cache().forget_user("t", "u"));
    let forgotten = run(&exec, request(&loaded, vec![Value::text("y")], Services::default())).unwrap();
    assert_eq!(forgotten.stages[0].outcome, Outcome::Ran, "the user's cache was dropped");
}

#[test]
fn item_filters_limit_what_search_returns() {
    let loaded = compile(
        r#"
        pipeline "p" {
            input "q" type="text"
            input "kind" type="text"
            stage "found" use="builtin:retrieve" grants="search" {
                query "input.q"
                method "bm25"
                where "item.kind == input.kind"
            }
            output "found.items"
        }
        "#,
    );
    let history = Arc::new(MemoryHistory::new(UserIndexConfig::default()));
    let item = |id: &str, kind: &str, text: &str| {
        Arc::new(Item {
            id: id.into(),
            kind: kind.into(),
            text: text.into(),
            timestamp: None,
            fields: Default::default(),
        })
    };
    history
        .upsert(
            "t",
            "u",
            vec![item("p1", "paper", "sparse retrieval models"), item("n1", "note", "retrieval notes and models")],
        )
        .unwrap();
    history.upsert("t", "other", vec![item("x", "paper", "retrieval models of another user")]).unwrap();
    let services = Services { search: Some(history), ..Services::default() };
    let report =
        run(&executor(), request(&loaded, vec![Value::text("retrieval models"), Value::text("paper")], services))
            .unwrap();
    let Value::List(items) = report.output else { panic!("{:?}", report.output) };
    let ids: Vec<String> =
        items.iter().map(|v| if let Value::Item(i) = v { i.id.to_string() } else { panic!("{v:?}") }).collect();
    assert_eq!(ids, ["p1"], "only the user's own papers");
}

#[test]
fn inputs_are_bound_by_name_with_defaults_and_types() {
    let loaded = compile(
        r#"
        pipeline "p" {
            input "q" type="text"
            input "n" type="number" default=3
            stage "echo" use="test:trivial" {
                text "input.q"
            }
            output "echo.text"
        }
        "#,
    );
    let p = &loaded.pipeline;
    let given = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(bind_inputs(p, &given(&[("q", Value::text("x"))])).unwrap(), [Value::text("x"), Value::Number(3.0)]);
    assert!(bind_inputs(p, &given(&[])).unwrap_err().contains("`q` is required"));
    assert!(bind_inputs(p, &given(&[("q", Value::Number(1.0))])).unwrap_err().contains("should be text"));
    assert!(bind_inputs(p, &given(&[("q", Value::text("x")), ("z", Value::Bool(true))])).unwrap_err().contains("`z`"));
    let wrong = run(&executor(), request(&loaded, vec![], Services::default())).unwrap_err();
    assert!(matches!(*wrong.error, RunError::Inputs { expected: 2, found: 0, .. }));
}

#[test]
fn the_fingerprint_ignores_formatting_but_not_meaning() {
    let a = compile("pipeline \"p\" {\n stage \"e\" use=\"test:trivial\" {\n text \"'x'\"\n }\n output \"e.text\"\n}");
    let b = compile(
        "pipeline \"p\" {\n\n\n    stage \"e\"   use=\"test:trivial\" {\n        text \"'x'\"\n    }\n    output \"e.text\"\n}",
    );
    let c = compile("pipeline \"p\" {\n stage \"e\" use=\"test:trivial\" {\n text \"'y'\"\n }\n output \"e.text\"\n}");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(a.fingerprint, c.fingerprint);
}
