//! The client against a fake OpenAI-compatible server on loopback (the process boundary).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::json;

use super::*;
use crate::host::services::Message;
use crate::llm::testing::{FakeLlm, Reply};

fn request(n: u32) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            Message { role: Role::System, content: "Be brief.".into() },
            Message { role: Role::User, content: "Name a tea.".into() },
        ],
        n,
        max_tokens: 32,
        temperature: 0.7,
        top_p: 0.9,
        stop: vec!["\n\n".into()],
        seed: Some(7),
        json_schema: None,
    }
}

fn client(server: &FakeLlm, f: impl FnOnce(&mut OpenAiConfig)) -> OpenAi {
    let mut config = OpenAiConfig::new(server.url(), "test-model");
    config.backoff = Duration::from_millis(5);
    config.timeout = Duration::from_secs(5);
    f(&mut config);
    OpenAi::new(config).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn chat_sends_the_request_and_returns_every_candidate_in_order() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![Reply::json(json!({
            "choices": [
                {"index": 1, "message": {"role": "assistant", "content": "Oolong"}, "finish_reason": "stop"},
                {"index": 0, "message": {"role": "assistant", "content": "Sencha"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4}
        }))])
        .await;
        let got = client(&server, |_| {}).generate(request(2)).await.unwrap();
        assert_eq!(got.texts, ["Sencha", "Oolong"]);
        assert_eq!((got.prompt_tokens, got.completion_tokens), (12, 4));
        let (path, body) = server.requests().remove(0);
        assert_eq!(path, "/v1/chat/completions");
        assert_eq!(body["model"], "test-model");
        assert_eq!(body["n"], 2);
        assert_eq!(body["seed"], 7);
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "Name a tea."}));
    });
}

#[test]
fn completions_endpoint_sends_one_prompt() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![Reply::json(
            json!({"choices": [{"index": 0, "text": "Genmaicha", "finish_reason": "stop"}]}),
        )])
        .await;
        let got = client(&server, |c| c.endpoint = Endpoint::Completions).generate(request(1)).await.unwrap();
        assert_eq!(got.texts, ["Genmaicha"]);
        let (path, body) = server.requests().remove(0);
        assert_eq!(path, "/v1/completions");
        assert!(body["prompt"].as_str().unwrap().contains("user: Name a tea.\n"));
    });
}

#[test]
fn structured_output_is_requested_and_checked() {
    rt().block_on(async {
        let schema = r#"{"type":"object","properties":{"tea":{"type":"string"}},"required":["tea"]}"#;
        let mut req = request(1);
        req.json_schema = Some(schema.into());
        let server = FakeLlm::start(vec![
            Reply::json(json!({"choices": [{"index": 0, "message": {"content": "{\"tea\":\"Hojicha\"}"}, "finish_reason": "stop"}]})),
            Reply::json(json!({"choices": [{"index": 0, "message": {"content": "not json"}, "finish_reason": "stop"}]})),
            Reply::json(json!({"choices": [{"index": 0, "message": {"content": "{\"tea\":"}, "finish_reason": "length"}]})),
            Reply::json(json!({"choices": [{"index": 0, "message": {"content": "{}"}, "finish_reason": "stop"}]})),
        ])
        .await;
        let llm = client(&server, |_| {});
        assert_eq!(llm.generate(req.clone()).await.unwrap().texts, ["{\"tea\":\"Hojicha\"}"]);
        assert!(matches!(llm.generate(req.clone()).await, Err(LlmError::Malformed(m)) if m.contains("not the JSON")));
        assert_eq!(llm.generate(req.clone()).await, Err(LlmError::Truncated { max_tokens: 32 }));
        let guided = client(&server, |c| c.structured = Structured::GuidedJson);
        guided.generate(req).await.unwrap();
        let bodies = server.requests();
        assert_eq!(bodies[0].1["response_format"]["type"], "json_schema");
        assert_eq!(bodies[0].1["response_format"]["json_schema"]["schema"]["required"], json!(["tea"]));
        assert_eq!(bodies[3].1["guided_json"]["required"], json!(["tea"]));
        assert!(bodies[3].1.get("response_format").is_none());
    });
}

#[test]
fn a_server_error_then_success_is_retried() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![
            Reply::status(500, "overloaded"),
            Reply::status(429, "slow down").with_retry_after(0),
            Reply::json(json!({"choices": [{"index": 0, "message": {"content": "Sencha"}}]})),
        ])
        .await;
        let got = client(&server, |_| {}).generate(request(1)).await.unwrap();
        assert_eq!(got.texts, ["Sencha"]);
        assert_eq!(server.requests().len(), 3);
    });
}

#[test]
fn client_errors_are_not_retried_and_retries_are_bounded() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![
            Reply::status(400, "bad model"),
            Reply::status(503, "down"),
            Reply::status(503, "down"),
            Reply::status(503, "down"),
        ])
        .await;
        let llm = client(&server, |c| c.max_retries = 2);
        let e = llm.generate(request(1)).await.unwrap_err();
        assert!(matches!(&e, LlmError::Status { status: 400, body } if body == "bad model"), "{e}");
        assert_eq!(server.requests().len(), 1);
        let e = llm.generate(request(1)).await.unwrap_err();
        assert!(matches!(e, LlmError::Status { status: 503, .. }), "{e}");
        assert_eq!(server.requests().len(), 4, "one try and two retries");
    });
}

#[test]
fn a_hanging_server_gives_a_timeout_within_the_deadline() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![Reply::Hang]).await;
        let llm = client(&server, |c| c.timeout = Duration::from_millis(300));
        let start = Instant::now();
        let e = llm.generate(request(1)).await.unwrap_err();
        assert_eq!(e, LlmError::Timeout { ms: 300 });
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    });
}

#[test]
fn malformed_replies_are_typed_errors() {
    rt().block_on(async {
        let server = FakeLlm::start(vec![
            Reply::raw(200, "this is {not json"),
            Reply::json(json!({"choices": []})),
            Reply::json(json!({"choices": [{"index": 0, "message": {}}]})),
            Reply::json(json!({"object": "error"})),
        ])
        .await;
        let llm = client(&server, |_| {});
        for want in ["not JSON", "`choices` is empty", "has no text", "no `choices`"] {
            match llm.generate(request(1)).await {
                Err(LlmError::Malformed(m)) => assert!(m.contains(want), "{m} lacks {want}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    });
}

#[test]
fn a_refused_connection_is_reported_and_opens_the_circuit() {
    rt().block_on(async {
        // A port nothing listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = OpenAiConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
        config.backoff = Duration::from_millis(1);
        config.max_retries = 1;
        config.breaker_threshold = 2;
        let llm = OpenAi::new(config).unwrap();
        for _ in 0..2 {
            let e = llm.generate(request(1)).await.unwrap_err();
            assert!(matches!(&e, LlmError::Connect { url, .. } if url.contains(&port.to_string())), "{e}");
        }
        let e = llm.generate(request(1)).await.unwrap_err();
        assert!(matches!(e, LlmError::CircuitOpen { failures: 2, .. }), "{e}");
    });
}

#[test]
fn streaming_yields_the_pieces_in_order() {
    rt().block_on(async {
        let chunk = |t: &str| json!({"choices": [{"index": 0, "delta": {"content": t}}]}).to_string();
        let server = FakeLlm::start(vec![Reply::Sse(vec![
            json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}).to_string(),
            chunk("Gen"),
            chunk("mai"),
            chunk("cha"),
            json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}).to_string(),
            "[DONE]".into(),
        ])])
        .await;
        let llm = client(&server, |_| {});
        let pieces: Vec<Piece> = llm.stream(request(3)).await.unwrap().map(|p| p.unwrap()).collect().await;
        let text = |t: &str| Piece::Text(t.into());
        assert_eq!(
            pieces,
            [text("Gen"), text("mai"), text("cha"), Piece::Usage { prompt_tokens: 7, completion_tokens: 3 }]
        );
        let body = &server.requests()[0].1;
        assert_eq!(body["stream"], true);
        assert_eq!(body["n"], 1, "a stream carries one candidate");
    });
}

#[test]
fn a_stream_that_stalls_ends_with_a_timeout() {
    rt().block_on(async {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": "Sen"}}]}).to_string();
        let server = FakeLlm::start(vec![Reply::SseThenHang(vec![chunk])]).await;
        let llm = Arc::new(client(&server, |c| c.timeout = Duration::from_millis(400)));
        let items: Vec<_> = llm.stream(request(1)).await.unwrap().collect().await;
        assert_eq!(items[0], Ok(Piece::Text("Sen".to_string())));
        assert_eq!(items[1..], [Err(LlmError::Timeout { ms: 400 })], "one timeout, then the stream ends");
    });
}
