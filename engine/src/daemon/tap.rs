//! The LLM as one request's stages see it: every call recorded (for its trace span and the
//! response's usage), and — for a streaming chat request — the output stage's first call
//! streamed to the client as it is generated, with the run's placeholders put back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::telemetry::LlmCall;
use crate::exec::{CompleteWrap, StageLlm};
use crate::host::services::{Complete, Completion, CompletionRequest, ServiceError};
use crate::llm::{Llm, Piece, role_name};

/// Where one stage's tokens go as they are generated.
pub struct StreamTarget {
    /// The stage whose first single-candidate, free-text call is streamed.
    pub stage: String,
    pub llm: Arc<dyn Llm>,
    pub sink: mpsc::UnboundedSender<String>,
    /// Whether the call to stream has been made.
    used: AtomicBool,
}

impl StreamTarget {
    pub fn new(stage: String, llm: Arc<dyn Llm>, sink: mpsc::UnboundedSender<String>) -> StreamTarget {
        StreamTarget { stage, llm, sink, used: AtomicBool::new(false) }
    }
}

/// One request's LLM calls.
pub struct RunTap {
    calls: Mutex<Vec<LlmCall>>,
    capture: bool,
    pub stream: Option<StreamTarget>,
}

impl RunTap {
    pub fn new(capture: bool, stream: Option<StreamTarget>) -> Arc<RunTap> {
        Arc::new(RunTap { calls: Mutex::default(), capture, stream })
    }

    pub fn wrap(self: &Arc<Self>) -> CompleteWrap {
        let tap = Arc::clone(self);
        Arc::new(move |s: StageLlm| {
            Arc::new(StageTap { tap: Arc::clone(&tap), stage: s.stage, inner: s.inner, restore: s.restore })
                as Arc<dyn Complete>
        })
    }

    pub fn calls(&self) -> Vec<LlmCall> {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Prompt and completion tokens over every call.
    pub fn usage(&self) -> (u64, u64) {
        self.calls()
            .iter()
            .fold((0, 0), |(p, c), call| (p + u64::from(call.prompt_tokens), c + u64::from(call.completion_tokens)))
    }
}

struct StageTap {
    tap: Arc<RunTap>,
    stage: String,
    inner: Arc<dyn Complete>,
    restore: Arc<dyn Fn(&str) -> String + Send + Sync>,
}

#[async_trait]
impl Complete for StageTap {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        let started = SystemTime::now();
        let clock = Instant::now();
        let prompt = self.tap.capture.then(|| messages_json(&request));
        let (max_tokens, temperature) = (request.max_tokens, request.temperature);
        let target = self.tap.stream.as_ref().filter(|t| {
            t.stage == self.stage
                && request.n == 1
                && request.json_schema.is_none()
                && !t.used.swap(true, Ordering::Relaxed)
        });
        let result = match target {
            Some(t) => stream_into(t, &self.restore, request).await,
            None => self.inner.complete(request).await,
        };
        let call = LlmCall {
            stage: self.stage.clone(),
            started,
            elapsed: clock.elapsed(),
            max_tokens,
            temperature,
            prompt_tokens: result.as_ref().map_or(0, |c| c.prompt_tokens),
            completion_tokens: result.as_ref().map_or(0, |c| c.completion_tokens),
            streamed: target.is_some(),
            error: result.as_ref().err().map(ToString::to_string),
            prompt,
            completion: self
                .tap
                .capture
                .then(|| result.as_ref().ok().map(|c| serde_json::to_string(&c.texts).unwrap_or_default()))
                .flatten(),
        };
        self.tap.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
        result
    }
}

fn messages_json(request: &CompletionRequest) -> String {
    let messages: Vec<serde_json::Value> =
        request.messages.iter().map(|m| serde_json::json!({"role": role_name(m.role), "content": m.content})).collect();
    serde_json::Value::Array(messages).to_string()
}

/// Streams one completion to the target's sink and returns it whole to the stage.
async fn stream_into(
    target: &StreamTarget,
    restore: &Arc<dyn Fn(&str) -> String + Send + Sync>,
    request: CompletionRequest,
) -> Result<Completion, ServiceError> {
    let mut pieces = target.llm.stream(request).await.map_err(ServiceError::from)?;
    let mut text = String::new();
    let mut pending = String::new();
    let (mut prompt_tokens, mut completion_tokens, mut counted) = (0, 0, false);
    let send = |out: &str| target.sink.send(restore(out)).is_ok();
    while let Some(piece) = pieces.next().await {
        match piece.map_err(ServiceError::from)? {
            Piece::Usage { prompt_tokens: p, completion_tokens: c } => {
                (prompt_tokens, completion_tokens, counted) = (p, c, true);
            }
            Piece::Text(piece) => {
                if !counted {
                    completion_tokens += 1;
                }
                text.push_str(&piece);
                pending.push_str(&piece);
                let cut = safe_cut(&pending);
                if cut > 0 {
                    let out: String = pending.drain(..cut).collect();
                    if !send(&out) {
                        // The client went away: stop generating.
                        return Err(ServiceError::Unavailable("the client closed the stream".into()));
                    }
                }
            }
        }
    }
    if !pending.is_empty() {
        send(&pending);
    }
    Ok(Completion { texts: vec![text], prompt_tokens, completion_tokens })
}

/// How much of `pending` can be sent: all of it, unless it ends in what may be the start of a
/// placeholder (`<EMAIL_` …), which is held back until it is complete or cannot be one.
fn safe_cut(pending: &str) -> usize {
    match pending.rfind('<') {
        Some(open)
            if !pending[open..].contains('>')
                && pending.len() - open <= 48
                && pending[open + 1..].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            open
        }
        _ => pending.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_cut;

    #[test]
    fn a_possible_placeholder_is_held_back() {
        assert_eq!(safe_cut("hello "), 6);
        assert_eq!(safe_cut("mail <EMA"), 5);
        assert_eq!(safe_cut("mail <EMAIL_1"), 5);
        assert_eq!(safe_cut("mail <EMAIL_1>"), 14);
        assert_eq!(safe_cut("a < b"), 5, "not a placeholder: lower case and spaces");
        assert_eq!(safe_cut("<"), 0);
    }
}
