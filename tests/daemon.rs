//! `tailor serve` end to end: the real binary on loopback, a fake OpenAI-compatible LLM in this
//! process (the only test double, at the process boundary), keys of two tenants.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tailor_engine::daemon::KeyHash;
use tailor_engine::llm::testing::{FakeLlm, Reply};

use crate::util::{TempDir, built_plugin_dir, root};

pub const ACME: &str = "key-acme-0123456789";
pub const GLOBEX: &str = "key-globex-0123456789";
pub const ADMIN: &str = "key-admin-0123456789";

/// The daemon's configuration with the three keys, an LLM at `llm`, and `extra` settings.
pub fn config(llm: &str, extra: &str) -> String {
    format!(
        r#"store "store.db"
pipelines "pipelines"
plugins "plugins"
llm "openai" url="{llm}" model="fake" timeout="10s"
tenant "acme" {{
    key "{}"
}}
tenant "globex" {{
    key "{}"
}}
admin-key "{}"
reload {{
    debounce "50ms"
}}
{extra}
"#,
        KeyHash::of(ACME).to_text(),
        KeyHash::of(GLOBEX).to_text(),
        KeyHash::of(ADMIN).to_text()
    )
}

/// Retrieval over the user's history, then the LLM: its answer is the output.
pub const CHAT: &str = r#"pipeline "chat" {
    input "message" type="text"
    stage "context" use="builtin:retrieve" grants="search" {
        query "input.message"
        method "bm25"
        k 3
    }
    stage "answer" use="builtin:generate" grants="complete" timeout="3s" {
        prompt "{{ for it in context.items }}[{{ it.text }}] {{ end }}Q: {{ input.message }}"
        max-tokens 64
    }
    output "answer.text"
}
"#;

/// A plugin that traps on every call.
pub const TRAP: &str = r#"pipeline "trap" {
    input "message" type="text"
    stage "boom" use="test:panics"
    output "boom.text"
}
"#;

/// Redacts, then asks the LLM, under `egress "strict"`.
pub const PRIVATE: &str = r#"pipeline "private" {
    input "message" type="text"
    privacy {
        egress "strict"
    }
    stage "redacted" use="builtin:pii-redact" {
        text "input.message"
        operator "placeholder"
    }
    stage "answer" use="builtin:generate" grants="complete" {
        prompt "{{ redacted.text }}"
    }
    output "answer.text"
}
"#;

/// A fake LLM that echoes the prompt, except when it holds a marker: `GARBAGE` (a reply that is
/// not JSON), `SLOW` (1.5 s, then an echo), `HANG` (never answers), `DOWN` (hangs up),
/// `STALL` (a stream that stops after two tokens).
pub fn fake_llm(rt: &tokio::runtime::Runtime) -> FakeLlm {
    let echo = Reply::Echo { prefix: "echo: ".into() };
    let chunk = |t: &str| json!({"choices": [{"index": 0, "delta": {"content": t}}]}).to_string();
    rt.block_on(FakeLlm::always(Reply::ByPrompt {
        when: vec![
            ("GARBAGE".into(), Reply::raw(200, "<html>certainly not JSON</html>")),
            ("SLOW".into(), Reply::Delayed(Duration::from_millis(1500), Box::new(echo.clone()))),
            ("HANG".into(), Reply::Hang),
            ("DOWN".into(), Reply::Disconnect),
            ("STALL".into(), Reply::SseThenHang(vec![chunk("one "), chunk("two ")])),
        ],
        otherwise: Box::new(echo),
    }))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// A daemon's directory: tailor.kdl, pipelines/, plugins/.
pub fn layout(label: &str, config_text: &str, pipelines: &[(&str, &str)], plugins: &[&str]) -> TempDir {
    let dir = TempDir::new(label);
    std::fs::write(dir.path().join("tailor.kdl"), config_text).expect("write the config");
    std::fs::create_dir_all(dir.path().join("pipelines")).expect("pipelines dir");
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugins dir");
    for (name, text) in pipelines {
        std::fs::write(dir.path().join("pipelines").join(name), text).expect("write a pipeline");
    }
    for p in plugins {
        std::fs::copy(built_plugin_dir().join(p), dir.path().join("plugins").join(p)).expect("copy a test plugin");
    }
    dir
}

/// The binary serving on a free loopback port.
pub struct Daemon {
    child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(config, env, &[])
    }

    pub fn start_with(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tailor"));
        cmd.args(["serve", "--config"]).arg(config).args(["--listen", "127.0.0.1:0"]).args(args);
        cmd.current_dir(root()).env("NO_COLOR", "1").envs(env.iter().copied());
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the tailor binary runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ").and_then(|r| r.split_whitespace().next()) {
                    let _ = tx.send(addr.to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(base) => Daemon { child, base, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not start:\n{}", log.lock().unwrap());
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// SIGTERM, then the exit status (within 60 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < until, "the daemon did not stop after SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("an HTTP client")
}

/// Sends a request; returns the status and the JSON body (`null` when it is not JSON).
pub fn call(method: &str, url: &str, key: Option<&str>, body: Option<Json>) -> (u16, Json) {
    let c = client();
    let mut req = c.request(method.parse().expect("a method"), url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

fn ingest(d: &Daemon, key: &str, user: &str, items: Json) -> Json {
    let (status, body) =
        call("POST", &d.url(&format!("/v1/users/{user}/items")), Some(key), Some(json!({"items": items})));
    assert_eq!(status, 200, "{body}");
    body
}

fn run(d: &Daemon, key: &str, user: &str, message: &str) -> (u16, Json) {
    call("POST", &d.url("/v1/pipelines/chat/run"), Some(key), Some(json!({"user": user, "input": message})))
}

/// The content deltas and the data lines of an SSE answer.
fn read_stream(resp: reqwest::blocking::Response) -> (String, Vec<Json>, bool) {
    let mut text = String::new();
    let mut events = Vec::new();
    let mut done = false;
    let mut body = String::new();
    BufReader::new(resp).read_to_string(&mut body).expect("the stream reads to its end");
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else { continue };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let event: Json = serde_json::from_str(data).expect("each event is JSON");
        if let Some(t) = event["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        events.push(event);
    }
    (text, events, done)
}

fn error_code(body: &Json) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[test]
fn serves_histories_runs_and_chat_to_each_tenant_only() {
    let rt = runtime();
    let llm = fake_llm(&rt);
    let dir = layout("daemon-e2e", &config(&llm.url(), ""), &[("chat.kdl", CHAT)], &[]);
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[]);

    // Open routes, keys.
    assert_eq!(call("GET", &d.url("/healthz"), None, None), (200, json!({"status": "ok"})));
    let (status, ready) = call("GET", &d.url("/readyz"), None, None);
    assert_eq!((status, ready["pipelines"].as_u64()), (200, Some(1)));
    let (status, body) = call("GET", &d.url("/v1/pipelines"), None, None);
    assert_eq!((status, error_code(&body)), (401, "missing_key"));
    let (status, body) = call("GET", &d.url("/v1/pipelines"), Some("not-a-key"), None);
    assert_eq!((status, error_code(&body)), (401, "invalid_key"));
    let (status, body) = call("GET", &d.url("/v1/pipelines"), Some(ACME), None);
    assert_eq!(status, 200);
    assert_eq!(body["pipelines"][0]["name"], "chat");
    assert_eq!(body["pipelines"][0]["inputs"][0], json!({"name": "message", "type": "text", "required": true}));

    // The same user name in two tenants: two different people.
    let stored = ingest(
        &d,
        ACME,
        "ana",
        json!([
            {"id": "1", "text": "I love hiking in the Alps", "kind": "note"},
            {"id": "2", "text": "Chess openings bore me"},
        ]),
    );
    assert_eq!(stored["stored"], 2);
    ingest(&d, GLOBEX, "ana", json!([{"id": "1", "text": "globex secret about hiking"}]));
    ingest(&d, ACME, "bob", json!([{"id": "b1", "text": "bob hikes too"}]));

    let (status, acme) = run(&d, ACME, "ana", "hiking");
    assert_eq!(status, 200, "{acme}");
    let output = acme["output"].as_str().expect("a text output");
    assert!(output.starts_with("echo: ") && output.contains("Alps"), "{output}");
    assert!(!output.contains("globex"), "acme's run saw globex's history: {output}");
    assert_eq!(acme["stages"].as_array().map(Vec::len), Some(2));
    assert_eq!(acme["stages"][1]["outcome"], "ran");
    assert_eq!(acme["trace_id"].as_str().map(str::len), Some(32));
    let (_, globex) = run(&d, GLOBEX, "ana", "hiking");
    let output = globex["output"].as_str().expect("a text output");
    assert!(output.contains("globex secret") && !output.contains("Alps"), "{output}");

    // The OpenAI-compatible endpoint, plain and streaming, give the same answer.
    let chat = |stream: bool| {
        json!({"model": "chat", "user": "ana", "stream": stream, "stream_options": {"include_usage": true},
               "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hiking"}]})
    };
    let (status, plain) = call("POST", &d.url("/v1/chat/completions"), Some(ACME), Some(chat(false)));
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["object"], "chat.completion");
    let answer = plain["choices"][0]["message"]["content"].as_str().expect("content").to_owned();
    assert!(answer.contains("Alps"), "{answer}");
    assert!(plain["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0), "{plain}");
    let resp = client().post(d.url("/v1/chat/completions")).bearer_auth(ACME).json(&chat(true)).send().expect("stream");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (streamed, events, done) = read_stream(resp);
    assert_eq!(streamed, answer, "the stream carries the same answer");
    assert!(done, "the stream ends with [DONE]");
    assert!(events.len() > 4, "tokens came one by one: {} events", events.len());
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = events.iter().find(|e| e["usage"].is_object()).expect("a usage chunk");
    assert!(usage["usage"]["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{usage}");
    assert!(events.iter().any(|e| e["choices"][0]["finish_reason"] == "stop"));
    let (status, models) = call("GET", &d.url("/v1/models"), Some(ACME), None);
    assert_eq!((status, models["data"][0]["id"].as_str()), (200, Some("chat")));

    // Export: each tenant sees its own ana.
    let (status, export) = call("GET", &d.url("/v1/users/ana/export"), Some(ACME), None);
    assert_eq!(status, 200);
    assert_eq!(export["items"].as_array().map(Vec::len), Some(2));
    let (_, export) = call("GET", &d.url("/v1/users/ana/export"), Some(GLOBEX), None);
    assert_eq!(export["items"][0]["text"], "globex secret about hiking");

    // Globex's key reaches none of acme's users on any route.
    let (_, users) = call("GET", &d.url("/v1/users"), Some(GLOBEX), None);
    assert_eq!(users["users"], json!(["ana"]));
    for (method, path) in [
        ("GET", "/v1/users/bob/items"),
        ("GET", "/v1/users/bob/export"),
        ("DELETE", "/v1/users/bob/items/b1"),
        ("DELETE", "/v1/users/bob"),
    ] {
        let (status, body) = call(method, &d.url(path), Some(GLOBEX), None);
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, run_b) =
        call("POST", &d.url("/v1/pipelines/chat/run"), Some(GLOBEX), Some(json!({"user": "bob", "input": "hikes"})));
    assert_eq!(status, 200);
    assert!(!run_b["output"].as_str().unwrap_or_default().contains("bob hikes"), "{run_b}");
    ingest(&d, GLOBEX, "bob", json!([{"id": "b1", "text": "a different bob"}]));
    let (_, acme_bob) = call("GET", &d.url("/v1/users/bob/items"), Some(ACME), None);
    assert_eq!(acme_bob["items"], json!([{"id": "b1", "kind": "note", "text": "bob hikes too"}]));

    // Keys and routes: the admin key is for reload and metrics only, and only it reaches them.
    for (method, path) in [("GET", "/metrics"), ("POST", "/v1/admin/reload"), ("GET", "/v1/admin/reload")] {
        let (status, body) = call(method, &d.url(path), Some(ACME), None);
        assert_eq!((status, error_code(&body)), (403, "admin_only"), "{method} {path}");
    }
    let (status, body) = call("GET", &d.url("/v1/users/ana/items"), Some(ADMIN), None);
    assert_eq!((status, error_code(&body)), (403, "no_tenant"));
    let resp = client().put(d.url("/v1/users/ana/items")).bearer_auth(ACME).send().expect("put");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let (status, body) = call("POST", &d.url("/v1/pipelines/nope/run"), Some(ACME), Some(json!({"user": "ana"})));
    assert_eq!((status, error_code(&body)), (404, "pipeline_not_found"));

    // Delete an item, erase a user.
    let (status, _) = call("DELETE", &d.url("/v1/users/ana/items/2"), Some(ACME), None);
    assert_eq!(status, 200);
    let (_, items) = call("GET", &d.url("/v1/users/ana/items"), Some(ACME), None);
    assert_eq!(items["items"].as_array().map(Vec::len), Some(1));
    let (status, erased) = call("DELETE", &d.url("/v1/users/ana"), Some(ACME), None);
    assert_eq!((status, erased["erased"]["items"].as_u64()), (200, Some(1)));
    let (status, _) = call("GET", &d.url("/v1/users/ana/items"), Some(ACME), None);
    assert_eq!(status, 404);
    let (_, still) = call("GET", &d.url("/v1/users/ana/items"), Some(GLOBEX), None);
    assert_eq!(still["items"].as_array().map(Vec::len), Some(1), "erasing acme's ana leaves globex's");

    // Metrics.
    let metrics = client().get(d.url("/metrics")).bearer_auth(ADMIN).send().expect("metrics").text().expect("text");
    for want in [
        "tailor_http_requests_total{route=\"/v1/pipelines/{name}/run\",method=\"POST\",status=\"200\"}",
        "tailor_pipeline_runs_total{pipeline=\"chat\",outcome=\"ok\"}",
        "tailor_stage_duration_seconds_bucket{",
        "tailor_llm_tokens_total{kind=\"completion\"}",
        "tailor_generation 1",
        "tailor_egress_requests_total{result=\"refused\"}",
    ] {
        assert!(metrics.contains(want), "missing {want} in:\n{metrics}");
    }

    // SIGTERM lets a request in flight finish, then the daemon exits cleanly.
    ingest(&d, ACME, "cy", json!([{"id": "1", "text": "anything"}]));
    let url = d.url("/v1/pipelines/chat/run");
    let slow = std::thread::spawn(move || call("POST", &url, Some(ACME), Some(json!({"user": "cy", "input": "SLOW"}))));
    std::thread::sleep(Duration::from_millis(500));
    let status = d.terminate();
    let (code, body) = slow.join().expect("the slow request");
    assert_eq!(code, 200, "the request in flight finished: {body}");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn keeps_serving_through_llm_and_plugin_faults_and_malformed_requests() {
    let rt = runtime();
    let llm = fake_llm(&rt);
    let extra = "limits {\n    body-bytes 65536\n    concurrency 3\n    deadline \"6s\"\n}\n";
    let dir = layout(
        "daemon-faults",
        &config(&llm.url(), extra),
        &[("chat.kdl", CHAT), ("trap.kdl", TRAP)],
        &["tailor_test_panics.wasm"],
    );
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[]);
    ingest(&d, ACME, "ana", json!([{"id": "1", "text": "hello there"}]));

    // The LLM: garbage, hanging past the stage's timeout, hanging up. Each run fails with the
    // documented error, and the next one is served.
    for (marker, kind) in [("GARBAGE", "host"), ("HANG", "timeout"), ("DOWN", "host")] {
        let (status, body) = run(&d, ACME, "ana", marker);
        assert_eq!((status, error_code(&body)), (422, "run_failed"), "{marker}: {body}");
        let stage = &body["error"]["stages"][1];
        assert_eq!(stage["outcome"], "failed", "{marker}: {body}");
        assert_eq!(stage["error_kind"], kind, "{marker}: {body}");
        let (status, ok) = run(&d, ACME, "ana", "fine");
        assert_eq!(status, 200, "after {marker}: {ok}");
    }

    // A plugin that traps on every call.
    for _ in 0..3 {
        let (status, body) =
            call("POST", &d.url("/v1/pipelines/trap/run"), Some(ACME), Some(json!({"user": "ana", "input": "x"})));
        assert_eq!((status, error_code(&body)), (422, "run_failed"), "{body}");
        assert_eq!(body["error"]["kind"], "trap");
    }

    // A client that goes away mid-stream: the daemon cancels the run and keeps serving.
    let stall =
        json!({"model": "chat", "user": "ana", "stream": true, "messages": [{"role": "user", "content": "STALL"}]});
    let mut resp = client().post(d.url("/v1/chat/completions")).bearer_auth(ACME).json(&stall).send().expect("stream");
    let mut first = [0u8; 64];
    let n = resp.read(&mut first).expect("the first bytes of the stream");
    assert!(n > 0);
    drop(resp);

    // Beyond the concurrency limit: 503 with Retry-After, at once.
    let url = d.url("/v1/pipelines/chat/run");
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let resp = client()
                    .post(&url)
                    .bearer_auth(ACME)
                    .json(&json!({"user": "ana", "input": "SLOW"}))
                    .send()
                    .expect("a response");
                (resp.status().as_u16(), resp.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let answers: Vec<(u16, bool)> = slow.into_iter().map(|t| t.join().expect("thread")).collect();
    assert!(answers.contains(&(503, true)), "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 503), "{answers:?}");

    // The deadline: a run that cannot finish in time is answered 504.
    let slowpipe = CHAT.replace("\"chat\"", "\"patient\"").replace("timeout=\"3s\"", "timeout=\"60s\"");
    std::fs::write(dir.path().join("pipelines/patient.kdl"), slowpipe).expect("write");
    let (status, outcome) = call("POST", &d.url("/v1/admin/reload"), Some(ADMIN), None);
    assert!(status == 200 && outcome["version"] == 2, "{outcome}");
    let (status, body) =
        call("POST", &d.url("/v1/pipelines/patient/run"), Some(ACME), Some(json!({"user": "ana", "input": "HANG"})));
    assert_eq!((status, error_code(&body)), (504, "deadline_exceeded"), "{body}");

    // Malformed requests: each answered with a documented error.
    let documented = documented_error_codes();
    let mut rng = fastrand::Rng::with_seed(7);
    let routes = ["/v1/pipelines/chat/run", "/v1/chat/completions", "/v1/users/ana/items", "/v1/pipelines/trap/run"];
    let c = client();
    for i in 0..1000 {
        let route = routes[i % routes.len()];
        let body = malformed(&mut rng, i);
        let resp = c
            .post(d.url(route))
            .bearer_auth(ACME)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let json: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        let code = error_code(&json).to_owned();
        assert!(
            (400..500).contains(&status) && documented.contains(&code),
            "request {i} to {route} ({:?}…): {status} {text}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
    }
    let (status, _) = call("GET", &d.url("/healthz"), None, None);
    assert_eq!(status, 200);
    let (status, ok) = run(&d, ACME, "ana", "still fine");
    assert_eq!(status, 200, "{ok}");

    let metrics = client().get(d.url("/metrics")).bearer_auth(ADMIN).send().expect("metrics").text().expect("text");
    for want in [
        "tailor_plugin_traps_total{plugin=\"test:panics@0.1.0\"} 3",
        "tailor_stage_errors_total{pipeline=\"trap\",stage=\"boom\",kind=\"trap\"} 3",
        "status=\"503\"",
        "tailor_http_requests_in_flight 1",
    ] {
        assert!(metrics.contains(want), "missing {want} in:\n{metrics}");
    }
    assert!(d.terminate().success());
}

/// The error codes spec/openapi.yaml documents.
pub fn documented_error_codes() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("spec/openapi.yaml")).expect("spec/openapi.yaml");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML")[0];
    let codes = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    let codes: Vec<String> =
        codes.as_vec().expect("Error.code is an enum").iter().filter_map(|c| c.as_str()).map(str::to_owned).collect();
    assert!(codes.len() > 10, "{codes:?}");
    codes
}

/// A malformed body: garbage bytes, broken or deep JSON, wrong types, unknown fields, or too big.
fn malformed(rng: &mut fastrand::Rng, i: usize) -> Vec<u8> {
    let valid = [
        json!({"user": "ana", "input": "x"}),
        json!({"model": "chat", "user": "ana", "messages": [{"role": "user", "content": "x"}]}),
        json!({"items": [{"id": "1", "text": "x"}]}),
    ];
    let base = valid[rng.usize(..valid.len())].to_string();
    match i % 10 {
        0 => (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
        1 => base.as_bytes()[..rng.usize(1..base.len())].to_vec(),
        2 => format!("{}{}", "[".repeat(60_000), "]".repeat(10)).into_bytes(),
        3 => json!([1, 2, 3]).to_string().into_bytes(),
        4 => json!({"user": rng.i64(..), "input": "x", "items": "nope", "model": [], "messages": {}}).to_string().into_bytes(),
        5 => json!({"user": "ana", "unexpected": true, "extra": 1}).to_string().into_bytes(),
        6 => format!("{{\"user\": \"ana\", \"input\": \"{}\"}}", "x".repeat(70_000)).into_bytes(),
        7 => json!({"user": "", "input": "x", "items": [], "model": "chat", "messages": []}).to_string().into_bytes(),
        8 => json!({"user": "a\u{0}b", "items": [{"id": 5}], "model": "chat", "messages": [{"role": "user", "content": [{"type": "image"}]}]})
            .to_string()
            .into_bytes(),
        _ => {
            let mut bytes = base.into_bytes();
            let at = rng.usize(..bytes.len());
            bytes[at] = rng.u8(..);
            bytes.insert(rng.usize(..bytes.len()), b'\\');
            bytes
        }
    }
}

#[test]
fn the_openapi_spec_documents_every_route_and_only_those() {
    let text = std::fs::read_to_string(root().join("spec/openapi.yaml")).expect("spec/openapi.yaml");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML")[0];
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_hash().expect("paths") {
        for (method, _) in item.as_hash().expect("a path item") {
            let method = method.as_str().expect("a method").to_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&method.as_str()) {
                documented.push((method, path.as_str().expect("a path").to_owned()));
            }
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> =
        tailor_engine::daemon::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    served.sort();
    assert_eq!(documented, served);
    documented_error_codes();
}

#[test]
fn the_example_daemon_config_serves_the_example_pipelines() {
    let store = TempDir::new("daemon-example");
    let db = store.path().join("tailor.db");
    let d = Daemon::start_with(&root().join("examples/tailor.kdl"), &[], &["--store", db.to_str().expect("UTF-8")]);
    let (status, body) = call("GET", &d.url("/v1/pipelines"), Some("tlr_example_key_replace_me_tenant_demo"), None);
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<&str> =
        body["pipelines"].as_array().expect("a list").iter().filter_map(|p| p["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["persona-chat", "privacy-email", "review-rating", "writing-assistant"]);
    let (status, _) = call("GET", &d.url("/metrics"), Some("tlr_example_key_replace_me_admin"), None);
    assert_eq!(status, 200);
    assert!(d.terminate().success());
}

#[test]
fn streamed_tokens_pass_the_egress_guard_and_come_back_unredacted() {
    let rt = runtime();
    let llm = fake_llm(&rt);
    let leaky = r#"pipeline "leaky" {
    input "message" type="text"
    privacy {
        egress "strict"
    }
    stage "answer" use="builtin:generate" grants="complete" {
        prompt "{{ input.message }}"
    }
    output "answer.text"
}
"#;
    let dir = layout("daemon-private", &config(&llm.url(), ""), &[("private.kdl", PRIVATE), ("leaky.kdl", leaky)], &[]);
    let d = Daemon::start(&dir.path().join("tailor.kdl"), &[]);
    let email = "ana.lopez@example.com";
    let chat = |model: &str| {
        json!({"model": model, "user": "ana", "stream": true,
               "messages": [{"role": "user", "content": format!("please write to {email} today")}]})
    };
    let resp =
        client().post(d.url("/v1/chat/completions")).bearer_auth(ACME).json(&chat("private")).send().expect("stream");
    assert_eq!(resp.status(), 200);
    let (text, events, done) = read_stream(resp);
    assert!(done);
    assert_eq!(text, format!("echo: please write to {email} today"), "placeholders are put back as tokens pass");
    assert!(events.len() > 10, "the answer came in pieces: {}", events.len());
    let sent: String = llm.requests().iter().map(|(_, body)| body.to_string()).collect();
    assert!(sent.contains("<EMAIL_1>") && !sent.contains(email), "the LLM saw only the placeholder: {sent}");

    let before = llm.requests().len();
    let resp =
        client().post(d.url("/v1/chat/completions")).bearer_auth(ACME).json(&chat("leaky")).send().expect("stream");
    let (text, events, done) = read_stream(resp);
    assert!(done && text.is_empty(), "{text:?}");
    let error = events.iter().find(|e| e["error"].is_object()).expect("an error event");
    assert_eq!(error["error"]["code"], "run_failed");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("refused") && !m.contains(email)), "{error}");
    assert_eq!(llm.requests().len(), before, "nothing left for the LLM");
    let metrics = client().get(d.url("/metrics")).bearer_auth(ADMIN).send().expect("metrics").text().expect("text");
    assert!(metrics.contains("tailor_egress_refused_entities_total{entity=\"email\"}"), "{metrics}");

    // A new pipeline file is picked up by the watch.
    let renamed = PRIVATE.replace("\"private\"", "\"private2\"");
    std::fs::write(dir.path().join("pipelines/.private2.kdl.tmp"), renamed).expect("write");
    std::fs::rename(dir.path().join("pipelines/.private2.kdl.tmp"), dir.path().join("pipelines/private2.kdl"))
        .expect("rename");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = call("GET", &d.url("/v1/pipelines"), Some(ACME), None);
        if list["pipelines"].as_array().is_some_and(|l| l.iter().any(|p| p["name"] == "private2")) {
            assert_eq!(list["version"], 2, "{list}");
            break;
        }
        assert!(Instant::now() < until, "the watch did not reload:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGHUP reloads.
    d.signal("HUP");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = client().get(d.url("/metrics")).bearer_auth(ADMIN).send().expect("metrics").text().expect("text");
        if metrics.contains("tailor_reloads_total{trigger=\"signal\",outcome=\"unchanged\"} 1") {
            break;
        }
        assert!(Instant::now() < until, "no reload after SIGHUP:\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.terminate().success());
}
