//! A client of vLLM / OpenAI-compatible servers: `/v1/chat/completions` and `/v1/completions`,
//! `n` candidates, SSE streaming, structured output (`response_format` with a JSON schema, or
//! vLLM's `guided_json`), a per-call deadline covering every retry, retries with jittered
//! exponential backoff on 429, 5xx and connection errors (honouring `Retry-After`), and a
//! circuit breaker that stops calling a server that keeps failing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use serde_json::{Value as Json, json};

use super::{Llm, LlmError, Piece, TokenStream};
use crate::host::services::{Complete, Completion, CompletionRequest, Role, ServiceError};

/// Which endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/chat/completions`: the server applies the model's chat template.
    Chat,
    /// `/completions`: the messages are joined into one prompt.
    Completions,
}

/// How a JSON schema for structured output is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structured {
    /// OpenAI's `response_format: {type: "json_schema", …}` (vLLM supports it too).
    ResponseFormat,
    /// vLLM's `guided_json` extra parameter.
    GuidedJson,
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API root, e.g. `http://localhost:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub endpoint: Endpoint,
    pub structured: Structured,
    /// The whole call, retries included.
    pub timeout: Duration,
    /// Attempts after the first on a transient failure.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it (with full jitter), up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Consecutive failed calls that open the circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses calls before letting one through.
    pub breaker_cooldown: Duration,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            api_key: None,
            endpoint: Endpoint::Chat,
            structured: Structured::ResponseFormat,
            timeout: Duration::from_secs(60),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The client. Cheap to share behind an `Arc`; connections are pooled.
pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi").field("base_url", &self.config.base_url).field("model", &self.config.model).finish()
    }
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Result<OpenAi, LlmError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tailor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::InvalidRequest(format!("HTTP client: {e}")))?;
        Ok(OpenAi { config, http, breaker: Mutex::default() })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn url(&self) -> String {
        match self.config.endpoint {
            Endpoint::Chat => format!("{}/chat/completions", self.config.base_url),
            Endpoint::Completions => format!("{}/completions", self.config.base_url),
        }
    }

    /// The request body the server receives.
    pub fn body(&self, request: &CompletionRequest, stream: bool) -> Result<Json, LlmError> {
        if request.n == 0 {
            return Err(LlmError::InvalidRequest("`n` must be at least 1".into()));
        }
        let mut body = json!({
            "model": self.config.model,
            "n": request.n,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        });
        match self.config.endpoint {
            Endpoint::Chat => {
                let messages: Vec<Json> =
                    request.messages.iter().map(|m| json!({"role": role_name(m.role), "content": m.content})).collect();
                body["messages"] = Json::Array(messages);
            }
            Endpoint::Completions => {
                let prompt: String = request
                    .messages
                    .iter()
                    .map(|m| format!("{}: {}\n", role_name(m.role), m.content))
                    .chain(std::iter::once("assistant: ".to_owned()))
                    .collect();
                body["prompt"] = Json::String(prompt);
            }
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if let Some(schema) = &request.json_schema {
            let schema: Json = serde_json::from_str(schema)
                .map_err(|e| LlmError::InvalidRequest(format!("the JSON schema is not JSON: {e}")))?;
            match self.config.structured {
                Structured::ResponseFormat => {
                    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}});
                }
                Structured::GuidedJson => body["guided_json"] = schema,
            }
        }
        if stream {
            body["stream"] = Json::Bool(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        Ok(body)
    }

    fn check_breaker(&self) -> Result<(), LlmError> {
        let breaker = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match breaker.open_until {
            Some(until) if until > Instant::now() => Err(LlmError::CircuitOpen {
                failures: breaker.failures,
                retry_in_ms: until.saturating_duration_since(Instant::now()).as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }

    fn record(&self, ok: bool) {
        let mut breaker = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ok {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            if breaker.failures >= self.config.breaker_threshold {
                breaker.open_until = Some(Instant::now() + self.config.breaker_cooldown);
            }
        }
    }

    /// Sends `body` until it succeeds, fails for good, or the deadline passes.
    async fn send(&self, body: &Json, deadline: Instant) -> Result<reqwest::Response, LlmError> {
        self.check_breaker()?;
        let timeout_ms = self.config.timeout.as_millis() as u64;
        let mut attempt = 0u32;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(LlmError::Timeout { ms: timeout_ms });
            }
            let mut req = self.http.post(self.url()).json(body).timeout(left);
            if let Some(key) = &self.config.api_key {
                req = req.bearer_auth(key);
            }
            let outcome = match req.send().await {
                Ok(resp) if resp.status().is_success() => break Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = resp.text().await.unwrap_or_default();
                    (LlmError::Status { status, body: excerpt(&body) }, retry_after)
                }
                Err(e) if e.is_timeout() => break Err(LlmError::Timeout { ms: timeout_ms }),
                Err(e) => (LlmError::Connect { url: self.url(), message: root_cause(&e).to_string() }, None),
            };
            let (error, retry_after) = outcome;
            if !error.is_transient() || attempt >= self.config.max_retries {
                break Err(error);
            }
            let cap = self.config.backoff.saturating_mul(1 << attempt.min(16)).min(self.config.max_backoff);
            let jittered = Duration::from_secs_f64(cap.as_secs_f64() * fastrand::f64());
            let wait = retry_after.map_or(jittered, |r| r.min(self.config.max_backoff));
            if Instant::now() + wait >= deadline {
                break Err(error);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        // A refusal of the request itself (400, 401, …) says nothing about the server's health.
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => !e.is_transient() && !matches!(e, LlmError::Timeout { .. }),
        };
        self.record(healthy);
        result
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The innermost error of a chain, which says what actually went wrong (refused, reset…).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// At most 300 bytes of a server's text, on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The candidates and token counts of a (non-streaming) reply.
fn parse_reply(reply: &Json, endpoint: Endpoint, request: &CompletionRequest) -> Result<Completion, LlmError> {
    let choices = reply
        .get("choices")
        .and_then(Json::as_array)
        .ok_or_else(|| LlmError::Malformed("no `choices` array".into()))?;
    if choices.is_empty() {
        return Err(LlmError::Malformed("`choices` is empty".into()));
    }
    let mut indexed = Vec::with_capacity(choices.len());
    for (i, choice) in choices.iter().enumerate() {
        let index = choice.get("index").and_then(Json::as_u64).unwrap_or(i as u64);
        let text = match endpoint {
            Endpoint::Chat => choice.get("message").and_then(|m| m.get("content")).and_then(Json::as_str),
            Endpoint::Completions => choice.get("text").and_then(Json::as_str),
        }
        .ok_or_else(|| LlmError::Malformed(format!("choice {index} has no text")))?;
        let finish = choice.get("finish_reason").and_then(Json::as_str);
        if request.json_schema.is_some() {
            if finish == Some("length") {
                return Err(LlmError::Truncated { max_tokens: request.max_tokens });
            }
            if let Err(e) = serde_json::from_str::<Json>(text) {
                return Err(LlmError::Malformed(format!("choice {index} is not the JSON asked for: {e}")));
            }
        }
        indexed.push((index, text.to_owned()));
    }
    indexed.sort_by_key(|(i, _)| *i);
    let usage = |key: &str| {
        reply.get("usage").and_then(|u| u.get(key)).and_then(Json::as_u64).map_or(0, |n| n.min(u32::MAX as u64) as u32)
    };
    Ok(Completion {
        texts: indexed.into_iter().map(|(_, t)| t).collect(),
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: usage("completion_tokens"),
    })
}

#[async_trait]
impl Llm for OpenAi {
    fn name(&self) -> String {
        format!("openai:{}", self.config.model)
    }

    async fn generate(&self, request: CompletionRequest) -> Result<Completion, LlmError> {
        let body = self.body(&request, false)?;
        let deadline = Instant::now() + self.config.timeout;
        let timeout_ms = self.config.timeout.as_millis() as u64;
        let resp = self.send(&body, deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let bytes = tokio::time::timeout(left, resp.bytes())
            .await
            .map_err(|_| LlmError::Timeout { ms: timeout_ms })?
            .map_err(|e| LlmError::Malformed(format!("reading the reply: {}", root_cause(&e))))?;
        let reply: Json = serde_json::from_slice(&bytes).map_err(|e| {
            LlmError::Malformed(format!("not JSON ({e}): {}", excerpt(&String::from_utf8_lossy(&bytes))))
        })?;
        parse_reply(&reply, self.config.endpoint, &request)
    }

    async fn stream(&self, request: CompletionRequest) -> Result<TokenStream, LlmError> {
        let body = self.body(&CompletionRequest { n: 1, ..request }, true)?;
        let deadline = Instant::now() + self.config.timeout;
        let resp = self.send(&body, deadline).await?;
        let endpoint = self.config.endpoint;
        let timeout_ms = self.config.timeout.as_millis() as u64;
        let events = resp.bytes_stream().eventsource();
        let pieces = events
            .take_while(|e| std::future::ready(!matches!(e, Ok(ev) if ev.data.trim() == "[DONE]")))
            .filter_map(move |event| {
                std::future::ready(match event {
                    Err(eventsource_stream::EventStreamError::Transport(e)) if e.is_timeout() => {
                        Some(Err(LlmError::Timeout { ms: timeout_ms }))
                    }
                    Err(e) => Some(Err(LlmError::Malformed(format!("event stream: {e}")))),
                    Ok(ev) => match serde_json::from_str::<Json>(&ev.data) {
                        Err(e) => Some(Err(LlmError::Malformed(format!("a streamed chunk is not JSON: {e}")))),
                        Ok(chunk) if chunk.get("usage").is_some_and(Json::is_object) => {
                            let count = |k: &str| chunk["usage"][k].as_u64().unwrap_or(0) as u32;
                            Some(Ok(Piece::Usage {
                                prompt_tokens: count("prompt_tokens"),
                                completion_tokens: count("completion_tokens"),
                            }))
                        }
                        Ok(chunk) => {
                            let choice = chunk.get("choices").and_then(|c| c.get(0));
                            let text = match endpoint {
                                Endpoint::Chat => choice
                                    .and_then(|c| c.get("delta"))
                                    .and_then(|d| d.get("content"))
                                    .and_then(Json::as_str),
                                Endpoint::Completions => choice.and_then(|c| c.get("text")).and_then(Json::as_str),
                            };
                            text.filter(|t| !t.is_empty()).map(|t| Ok(Piece::Text(t.to_owned())))
                        }
                    },
                })
            });
        let bounded = async_stream_deadline(pieces, deadline, timeout_ms);
        Ok(Box::pin(bounded))
    }
}

/// Ends a stream at its first error, or with a timeout error once `deadline` passes.
fn async_stream_deadline(
    inner: impl futures_util::Stream<Item = Result<Piece, LlmError>> + Send + 'static,
    deadline: Instant,
    timeout_ms: u64,
) -> impl futures_util::Stream<Item = Result<Piece, LlmError>> + Send + 'static {
    let inner = Box::pin(inner);
    futures_util::stream::unfold((inner, false), move |(mut inner, done)| async move {
        if done {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, inner.next()).await {
            Ok(Some(item)) => {
                let failed = item.is_err();
                Some((item, (inner, failed)))
            }
            Ok(None) => None,
            Err(_) => Some((Err(LlmError::Timeout { ms: timeout_ms }), (inner, true))),
        }
    })
}

#[async_trait]
impl Complete for OpenAi {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        Ok(self.generate(request).await?)
    }
}

#[cfg(test)]
mod tests;
