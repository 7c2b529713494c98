//! The daemon as operators run it: reloads under load, traces to an OTLP collector, and the
//! official `openai` Python client against the chat endpoint.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::daemon::{ACME, ADMIN, CHAT, Daemon, call, client, config, fake_llm, layout, runtime};
use crate::util::built_plugin_dir;

const TRIVIAL: &str = r#"pipeline "trivial" {
    input "message" type="text"
    stage "echo" use="test:trivial" {
        text "input.message"
    }
    output "echo.version"
}
"#;

/// Writes a file the way deployments should: a hidden temporary name, then a rename.
fn install(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn reloads_100_times_under_load_without_a_failed_request() {
    let seconds: u64 = std::env::var("TAILOR_RELOAD_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let rt = runtime();
    let llm = fake_llm(&rt);
    let dir = layout("daemon-reload", &config(&llm.url(), ""), &[("chat.kdl", CHAT), ("trivial.kdl", TRIVIAL)], &[]);
    let trivial = [
        std::fs::read(built_plugin_dir().join("tailor_test_trivial.wasm")).expect("test plugin"),
        std::fs::read(built_plugin_dir().join("tailor_test_trivial_next.wasm")).expect("test plugin"),
    ];
    let plugin = dir.path().join("plugins/trivial.wasm");
    install(&plugin, &trivial[0]);
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[]);
    let (status, _) =
        call("POST", &d.url("/v1/users/ana/items"), Some(ACME), Some(json!({"items": [{"id": "1", "text": "hello"}]})));
    assert_eq!(status, 200);

    // The load: three clients, each alternating the two pipelines, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..3)
        .map(|w| {
            let (stop, served, failures) = (Arc::clone(&stop), Arc::clone(&served), Arc::clone(&failures));
            let base = d.base.clone();
            std::thread::spawn(move || {
                let c = client();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let pipeline = if n.is_multiple_of(2) { "chat" } else { "trivial" };
                    n += 1;
                    let resp = c
                        .post(format!("{base}/v1/pipelines/{pipeline}/run"))
                        .bearer_auth(ACME)
                        .json(&json!({"user": "ana", "input": format!("w{w} hello")}))
                        .send();
                    match resp {
                        Ok(r) if r.status() == 200 => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let status = r.status();
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{pipeline}: {status} {}", r.text().unwrap_or_default()));
                        }
                        Err(e) => failures.lock().unwrap().push(format!("{pipeline}: {e}")),
                    }
                }
            })
        })
        .collect();

    // 100 changes, valid and broken mixed, spread over the run.
    let reload = || call("POST", &d.url("/v1/admin/reload"), Some(ADMIN), None);
    let chat_file = dir.path().join("pipelines/chat.kdl");
    let extra_file = dir.path().join("pipelines/extra.kdl");
    let started = Instant::now();
    let mut rolled_back = 0;
    let mut version = 0usize;
    for i in 0..100u64 {
        let due = started + Duration::from_millis(seconds * 1000 * i / 100);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let expect_valid = |(status, body): (u16, Json)| {
            assert_eq!(status, 200, "change {i}: {body}");
            assert!(body["outcome"] == "applied" || body["outcome"] == "unchanged", "change {i}: {body}");
        };
        let mut expect_rolled_back = |(status, body): (u16, Json), file: &str| {
            assert_eq!((status, body["outcome"].as_str()), (422, Some("rolled_back")), "change {i}: {body}");
            let errors = body["errors"].to_string();
            assert!(errors.contains(file), "change {i}: the errors name {file}: {errors}");
            rolled_back += 1;
        };
        match i % 5 {
            0 => {
                install(&chat_file, CHAT.replace("Q: ", &format!("Q{i}: ")).as_bytes());
                expect_valid(reload());
            }
            1 => {
                install(
                    &chat_file,
                    b"pipeline \"chat\" {\n    input \"message\" type=\"text\"\n    output \"nope.text\"\n}\n",
                );
                expect_rolled_back(reload(), "chat.kdl");
                install(&chat_file, CHAT.as_bytes());
                expect_valid(reload());
            }
            2 => {
                version = 1 - version;
                install(&plugin, &trivial[version]);
                expect_valid(reload());
            }
            3 => {
                install(&plugin, b"\0asm\x0d\0\x01\0 not a component");
                expect_rolled_back(reload(), "trivial.wasm");
                install(&plugin, &trivial[version]);
                expect_valid(reload());
            }
            _ => {
                install(&extra_file, b"pipeline \"extra\" {\n    input \"x\" type=\"text\"\n    stage \"s\" use=\"test:missing\"\n    output \"s.text\"\n}\n");
                expect_rolled_back(reload(), "extra.kdl");
                std::fs::remove_file(&extra_file).expect("remove");
                expect_valid(reload());
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("a load thread");
    }
    let failures = failures.lock().unwrap();
    let served = served.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(served > 200, "the load kept going: {served} requests");
    assert_eq!(rolled_back, 60);
    // The served trivial plugin is the last one installed.
    let (_, out) =
        call("POST", &d.url("/v1/pipelines/trivial/run"), Some(ACME), Some(json!({"user": "ana", "input": "v"})));
    assert_eq!(out["output"], if version == 0 { "0.1.0" } else { "0.2.0" });
    let metrics = client().get(d.url("/metrics")).bearer_auth(ADMIN).send().expect("metrics").text().expect("text");
    let rolled: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("tailor_reloads_total{") && l.contains("outcome=\"rolled_back\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(rolled >= 60, "{metrics}");
    assert!(d.log().contains("refused, still serving version"), "the refusals are logged");
    eprintln!("reload under load: {served} requests in {:?}, 100 changes, 60 refused", started.elapsed());
    assert!(d.terminate().success());
}

/// An OTLP/HTTP collector on loopback that keeps every JSON export it receives.
struct Collector {
    addr: std::net::SocketAddr,
    bodies: Arc<Mutex<Vec<Json>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bodies);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let sink = Arc::clone(&sink);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let sink = Arc::clone(&sink);
                        async move {
                            let path = req.uri().path().to_owned();
                            let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            if path == "/v1/traces"
                                && let Ok(json) = serde_json::from_slice::<Json>(&bytes)
                            {
                                sink.lock().unwrap().push(json);
                            }
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                                .expect("a response");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Collector { addr, bodies, _task: task }
    }

    /// Every span received: (name, trace id, span id, parent span id, attributes as JSON text).
    fn spans(&self) -> Vec<(String, String, String, String, String)> {
        let mut out = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            for rs in body["resourceSpans"].as_array().into_iter().flatten() {
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for s in ss["spans"].as_array().into_iter().flatten() {
                        let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                        out.push((
                            text("name"),
                            text("traceId"),
                            text("spanId"),
                            text("parentSpanId"),
                            s["attributes"].to_string(),
                        ));
                    }
                }
            }
        }
        out
    }
}

#[test]
fn every_stage_and_llm_call_is_a_span_under_its_request() {
    let rt = runtime();
    let llm = fake_llm(&rt);
    let collector = rt.block_on(Collector::start());
    let telemetry = format!("telemetry {{\n    otlp \"http://{}\"\n}}\n", collector.addr);
    let dir = layout("daemon-otlp", &config(&llm.url(), &telemetry), &[("chat.kdl", CHAT)], &[]);
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    let (status, _) = call(
        "POST",
        &d.url("/v1/users/ana/items"),
        Some(ACME),
        Some(json!({"items": [{"id": "1", "text": "secret hobby: falconry"}]})),
    );
    assert_eq!(status, 200);
    // The caller's trace context is continued.
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = client()
        .post(d.url("/v1/pipelines/chat/run"))
        .bearer_auth(ACME)
        .header("traceparent", format!("00-{parent_trace}-00f067aa0ba902b7-01"))
        .json(&json!({"user": "ana", "input": "falconry"}))
        .send()
        .expect("run");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-trace-id"], parent_trace);

    let until = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.spans();
        if spans.iter().any(|s| s.0.starts_with("chat ")) && spans.iter().any(|s| s.0.starts_with("POST /v1/pipelines"))
        {
            break spans;
        }
        assert!(Instant::now() < until, "no spans arrived: {spans:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let find = |name: &str| spans.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("no span {name}: {spans:?}"));
    let request = find("POST /v1/pipelines/{name}/run");
    assert_eq!(request.1, parent_trace);
    assert_eq!(request.3, "00f067aa0ba902b7", "the request span is the caller's span's child");
    for stage in ["stage context", "stage answer"] {
        let s = find(stage);
        assert_eq!((&s.1, &s.3), (&request.1, &request.2), "{stage} is a child of the request span");
        assert!(s.4.contains("tailor.plugin.version"), "{}", s.4);
    }
    let answer = find("stage answer");
    let llm_span = find("chat fake");
    assert_eq!(llm_span.3, answer.2, "the LLM call is a child of its stage");
    for attr in ["gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.output_tokens"] {
        assert!(llm_span.4.contains(attr), "{attr} in {}", llm_span.4);
    }
    let all: String = spans.iter().map(|s| s.4.clone()).collect();
    assert!(!all.contains("falconry"), "prompt capture is off by default: {all}");
    assert_eq!(spans.iter().filter(|s| s.0.starts_with("stage ")).count(), 2, "one span per stage");
    assert!(d.terminate().success());
}

#[test]
fn the_official_openai_python_client_works_unchanged() {
    let python = openai_venv();
    let rt = runtime();
    let llm = fake_llm(&rt);
    let dir = layout("daemon-openai", &config(&llm.url(), ""), &[("chat.kdl", CHAT)], &[]);
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[]);
    let (status, _) = call(
        "POST",
        &d.url("/v1/users/ana/items"),
        Some(ACME),
        Some(json!({"items": [{"id": "1", "text": "likes tea"}]})),
    );
    assert_eq!(status, 200);
    let script = crate::util::root().join("tests/fixtures/daemon/openai_client.py");
    let out = std::process::Command::new(&python).arg(&script).arg(&d.base).arg(ACME).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result: Json = serde_json::from_str(stdout.trim()).expect("the script prints JSON");
    let plain = result["plain"].as_str().expect("plain");
    assert!(plain.contains("likes tea"), "{result}");
    assert_eq!(result["stream"], result["plain"], "{result}");
    assert!(result["usage"].as_u64().is_some_and(|n| n > 0), "{result}");
    assert!(result["stream_usage"].as_u64().is_some_and(|n| n > 0), "{result}");
    assert_eq!(result["models"], json!(["chat"]));
    assert_eq!(result["not_found"], 404);
    assert_eq!(result["unauthorized"], 401);
    assert!(d.terminate().success());
}

/// A virtual environment with the `openai` package, made once and kept under the cache directory.
fn openai_venv() -> std::path::PathBuf {
    // httpx 0.28 dropped an argument this openai release passes: pin both.
    const PACKAGES: [&str; 2] = ["openai==1.54.4", "httpx==0.27.2"];
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("a cache directory");
    let venv = cache.join("tailor/openai-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(format!(".{}", PACKAGES.join(",")));
    if !ready.exists() {
        let run = |cmd: &mut std::process::Command| {
            let out = cmd.output().expect("python3 runs");
            assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        if !python.exists() {
            run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv));
        }
        run(std::process::Command::new(&python).args(["-m", "pip", "install", "-q"]).args(PACKAGES));
        std::fs::write(&ready, "").expect("mark the venv ready");
    }
    python
}
