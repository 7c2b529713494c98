//! A fake OpenAI-compatible server on loopback, for tests at the process boundary: it answers
//! with a script of replies (JSON, errors, garbage, hangs, event streams) and records every
//! request it receives.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use serde_json::Value as Json;

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, a body, and optionally a `Retry-After` header (seconds).
    Http { status: u16, body: String, retry_after: Option<u64> },
    /// Never answers.
    Hang,
    /// `text/event-stream` with one `data:` event per string.
    Sse(Vec<String>),
    /// The events, then silence with the connection open.
    SseThenHang(Vec<String>),
    /// Answers each chat request from its last user message: `"{prefix}{message}"`, `n` times.
    Echo { prefix: String },
    /// Answers every request with this text, `n` times.
    Text(String),
    /// Waits, then answers as the inner reply.
    Delayed(std::time::Duration, Box<Reply>),
    /// Closes the connection without answering (a server that went down mid-request).
    Disconnect,
    /// The first reply whose marker is in the request's last user message, else `otherwise`.
    ByPrompt { when: Vec<(String, Reply)>, otherwise: Box<Reply> },
}

impl Reply {
    pub fn json(body: Json) -> Reply {
        Reply::Http { status: 200, body: body.to_string(), retry_after: None }
    }
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Http { status, body: body.into(), retry_after: None }
    }
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply::status(status, body)
    }
    pub fn with_retry_after(self, seconds: u64) -> Reply {
        match self {
            Reply::Http { status, body, .. } => Reply::Http { status, body, retry_after: Some(seconds) },
            other => other,
        }
    }
}

struct State {
    script: VecDeque<Reply>,
    /// Replayed once the script runs out, if set.
    fallback: Option<Reply>,
    requests: Vec<(String, Json)>,
}

/// The server; it stops when dropped.
pub struct FakeLlm {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    /// Serves `script` in order; a request past its end gets a 500.
    pub async fn start(script: Vec<Reply>) -> FakeLlm {
        FakeLlm::serve(script, None).await
    }

    /// Answers every request with `reply`.
    pub async fn always(reply: Reply) -> FakeLlm {
        FakeLlm::serve(Vec::new(), Some(reply)).await
    }

    async fn serve(script: Vec<Reply>, fallback: Option<Reply>) -> FakeLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State { script: script.into(), fallback, requests: Vec::new() }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        FakeLlm { addr, state, task }
    }

    /// The API root to configure a client with (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far: path and JSON body (`null` when the body was not JSON).
    pub fn requests(&self) -> Vec<(String, Json)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).requests.clone()
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, text: String, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(text)).boxed())
        .expect("invariant: a valid response")
}

fn sse(events: Vec<String>, then_hang: bool) -> Response<Body> {
    let frames = futures_util::stream::iter(events)
        .map(|e| Ok::<_, Infallible>(Frame::data(Bytes::from(format!("data: {e}\n\n")))));
    let body: Body = if then_hang {
        BodyExt::boxed(StreamBody::new(frames.chain(futures_util::stream::pending())))
    } else {
        BodyExt::boxed(StreamBody::new(frames))
    };
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(body)
        .expect("invariant: a valid response")
}

/// A chat completion of `n` (from the request) copies of `text`; streamed when the
/// request asks for a stream, three characters a chunk (with a usage chunk when it asks for one).
fn candidates(request: &Json, text: &str) -> Response<Body> {
    if request["stream"] == true {
        // Three characters a chunk: placeholders arrive split across chunks.
        let chars: Vec<char> = text.chars().collect();
        let mut events: Vec<String> = chars
            .chunks(3)
            .map(|piece| {
                let piece: String = piece.iter().collect();
                serde_json::json!({"choices": [{"index": 0, "delta": {"content": piece}}]}).to_string()
            })
            .collect();
        if request["stream_options"]["include_usage"] == true {
            let usage = serde_json::json!({"prompt_tokens": 1, "completion_tokens": events.len()});
            events.push(serde_json::json!({"choices": [], "usage": usage}).to_string());
        }
        events.push("[DONE]".into());
        return sse(events, false);
    }
    let n = request["n"].as_u64().unwrap_or(1);
    let choices: Vec<Json> = (0..n)
        .map(|i| {
            serde_json::json!({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
        })
        .collect();
    let reply = serde_json::json!({"choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1}});
    full(200, reply.to_string(), "application/json")
}

/// Makes hyper close the connection without a response.
#[derive(Debug)]
struct Disconnect;

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fake server hangs up")
    }
}

impl std::error::Error for Disconnect {}

async fn handle(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Disconnect> {
    let path = req.uri().path().to_owned();
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    let reply = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.requests.push((path, body.clone()));
        state.script.pop_front().or_else(|| state.fallback.clone())
    };
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let mut reply = reply;
    loop {
        match reply {
            Some(Reply::Delayed(delay, inner)) => {
                tokio::time::sleep(delay).await;
                reply = Some(*inner);
            }
            Some(Reply::ByPrompt { when, otherwise }) => {
                reply = Some(
                    when.into_iter()
                        .find(|(marker, _)| last_user.contains(marker.as_str()))
                        .map_or(*otherwise, |(_, r)| r),
                );
            }
            _ => break,
        }
    }
    Ok(match reply {
        Some(Reply::Delayed(..) | Reply::ByPrompt { .. }) => unreachable!("unwrapped above"),
        Some(Reply::Disconnect) => return Err(Disconnect),
        None => full(500, "the fake server's script has run out".into(), "text/plain"),
        Some(Reply::Http { status, body, retry_after }) => {
            let mut resp = full(status, body, "application/json");
            if let Some(s) = retry_after {
                resp.headers_mut().insert("retry-after", s.into());
            }
            resp
        }
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::Sse(events)) => sse(events, false),
        Some(Reply::SseThenHang(events)) => sse(events, true),
        Some(Reply::Echo { prefix }) => candidates(&body, &format!("{prefix}{last_user}")),
        Some(Reply::Text(text)) => candidates(&body, &text),
    })
}
