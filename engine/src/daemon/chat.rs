//! `POST /v1/chat/completions`, OpenAI-compatible (spec/daemon.md §3): `model` names the
//! pipeline, `user` the user whose history it runs on, and the last user message is the
//! pipeline's first text input. With `stream: true` the answer is server-sent events in
//! OpenAI's chunk format: when the pipeline's output is a generator stage's text, that stage's
//! tokens are streamed as the LLM produces them (placeholders put back); otherwise the output
//! comes as one chunk when the run ends. Sampling settings in the request are ignored: the
//! pipeline file sets them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value as Json, json};
use tailor_dsl::descriptor::StageKind;
use tailor_dsl::ir::{ExprKind, Pipeline};
use tailor_dsl::types::{Type, Value};

use super::App;
use super::http::{ApiError, Body, Finish, Job, check_user, execute, json_kind, json_response, to_json_value};
use super::reload::Generation;
use super::tap::{RunTap, StreamTarget};
use super::telemetry;

/// The parts of the request the daemon reads.
struct Chat {
    pipeline: String,
    user: String,
    message: String,
    stream: bool,
    include_usage: bool,
}

fn parse(body: &serde_json::Map<String, Json>) -> Result<Chat, ApiError> {
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(ApiError::bad("invalid_body", format!("`{key}` must be a string, not {}", json_kind(other))))
            }
        }
    };
    let pipeline =
        text("model")?.ok_or_else(|| ApiError::bad("invalid_body", "`model` (the pipeline's name) is required"))?;
    let user = text("user")?
        .ok_or_else(|| ApiError::bad("invalid_body", "`user` (whose history the pipeline runs on) is required"))?;
    let Some(Json::Array(messages)) = body.get("messages") else {
        return Err(ApiError::bad("invalid_body", "`messages` must be an array of messages"));
    };
    let mut last_user = None;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Json::as_str);
        let Some(role) = role else {
            return Err(ApiError::bad("invalid_body", format!("messages[{i}] needs a string `role`")));
        };
        if role == "user" {
            last_user = Some(
                content_text(m.get("content"))
                    .map_err(|e| ApiError::bad("invalid_body", format!("messages[{i}]: {e}")))?,
            );
        }
    }
    let message = last_user.ok_or_else(|| ApiError::bad("invalid_body", "`messages` holds no user message"))?;
    let stream = match body.get("stream") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::bad("invalid_body", format!("`stream` must be a boolean, not {}", json_kind(other))));
        }
    };
    if let Some(n) = body.get("n").filter(|n| !n.is_null())
        && n.as_u64() != Some(1)
    {
        return Err(ApiError::bad("invalid_body", "`n` must be 1: a pipeline gives one answer"));
    }
    let include_usage =
        body.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Json::as_bool).unwrap_or(false);
    Ok(Chat { pipeline, user, message, stream, include_usage })
}

/// A message's text: a string, or the text parts of a list of parts.
fn content_text(content: Option<&Json>) -> Result<String, String> {
    match content {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(Json::Array(parts)) => {
            let mut out = String::new();
            for part in parts {
                match (part.get("type").and_then(Json::as_str), part.get("text").and_then(Json::as_str)) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    (Some("text"), None) => return Err("a text part needs a string `text`".into()),
                    (Some(other), _) => {
                        return Err(format!("content parts of type {other:?} are not supported (text only)"));
                    }
                    (None, _) => return Err("a content part needs a `type`".into()),
                }
            }
            Ok(out)
        }
        Some(other) => Err(format!("`content` must be a string or a list of parts, not {}", json_kind(other))),
        None => Err("`content` is required".into()),
    }
}

/// The pipeline's input values: the message goes to the first text input; the rest take their
/// defaults.
fn inputs(p: &Pipeline, message: &str) -> Result<Vec<Value>, ApiError> {
    let Some(first) = p.inputs.iter().position(|i| i.ty == Type::Text) else {
        return Err(ApiError::bad(
            "invalid_input",
            format!("pipeline `{}` has no text input to take the message", p.name),
        ));
    };
    p.inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            if i == first {
                Ok(Value::text(message))
            } else {
                input.default.clone().ok_or_else(|| {
                    ApiError::bad(
                        "invalid_input",
                        format!("pipeline `{}` needs input `{}`, which a chat request cannot give", p.name, input.name),
                    )
                })
            }
        })
        .collect()
}

/// The stage whose tokens can be streamed: the generator whose text the output is.
fn streamed_stage(p: &Pipeline) -> Option<String> {
    let ExprKind::StageOutput { stage, port } = &p.output.kind else { return None };
    let stage = p.stage(*stage);
    let slot = stage.outputs.get(*port as usize)?;
    (stage.kind == StageKind::Generator && slot.ty == Type::Text).then(|| stage.label.to_string())
}

fn output_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.to_string(),
        other => to_json_value(other).to_string(),
    }
}

pub(super) async fn completions(
    app: &Arc<App>,
    tenant: &str,
    body: serde_json::Map<String, Json>,
    finish: &mut Finish,
) -> Result<Response<Body>, ApiError> {
    let chat = parse(&body)?;
    check_user(&chat.user)?;
    let generation = app.reloader.current();
    let served = generation.pipelines.get(&chat.pipeline).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "pipeline_not_found",
            format!("no pipeline {:?} is served (`model` names the pipeline)", chat.pipeline),
        )
    })?;
    let values = inputs(&served.loaded.pipeline, &chat.message)?;
    let created = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let id = format!("chatcmpl-{}", finish.cx.as_ref().map(telemetry::span_id).unwrap_or_default());
    if !chat.stream {
        let tap = RunTap::new(app.tracing.capture_prompts, None);
        let job = Job {
            tenant,
            user: &chat.user,
            served,
            catalog: Arc::clone(&generation.catalog),
            inputs: values,
            tap,
            cx: finish.cx.as_ref(),
            deadline: finish.deadline(),
        };
        let done = execute(app, job).await?;
        let (prompt, completion) = done.tap.usage();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": chat.pipeline,
                "system_fingerprint": &*served.loaded.fingerprint,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": output_text(&done.report.output)},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            }),
        ));
    }
    let (frames_tx, frames_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let producer = tokio::spawn(
        Producer {
            app: Arc::clone(app),
            tenant: tenant.to_owned(),
            chat,
            generation: Arc::clone(&generation),
            values,
            cx: finish.cx.clone(),
            deadline: finish.deadline(),
            stamp: Stamp { id, created },
        }
        .run(frames_tx),
    );
    // Dropping the body (the client went away) aborts the producer, which cancels the run.
    let guard = (AbortOnDrop(producer), finish.detach(200));
    let frames = tokio_stream_from(frames_rx).map(move |b| {
        let _keep = &guard;
        Ok::<_, Infallible>(Frame::data(b))
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Stamp {
    id: String,
    created: u64,
}

impl Stamp {
    fn chunk(&self, model: &str, delta: Json, finish_reason: Option<&str>) -> Bytes {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        Bytes::from(format!("data: {chunk}\n\n"))
    }
}

/// A streamed answer's run: everything it needs, owned, for its own task.
struct Producer {
    app: Arc<App>,
    tenant: String,
    chat: Chat,
    generation: Arc<Generation>,
    values: Vec<Value>,
    cx: Option<opentelemetry::Context>,
    deadline: std::time::Instant,
    stamp: Stamp,
}

impl Producer {
    /// Runs the pipeline and writes the answer's events to `frames` until it ends or the client goes
    /// away.
    async fn run(self, frames: tokio::sync::mpsc::Sender<Bytes>) {
        let Producer { app, tenant, chat, generation, values, cx, deadline, stamp } = self;
        let Some(served) = generation.pipelines.get(&chat.pipeline) else { return };
        let model = chat.pipeline.as_str();
        let (tokens_tx, mut tokens) = tokio::sync::mpsc::unbounded_channel::<String>();
        let target = streamed_stage(&served.loaded.pipeline)
            .map(|stage| StreamTarget::new(stage, Arc::clone(&app.llm), tokens_tx));
        let tap = RunTap::new(app.tracing.capture_prompts, target);
        let send = |b: Bytes| frames.send(b);
        if send(stamp.chunk(model, json!({"role": "assistant", "content": ""}), None)).await.is_err() {
            return;
        }
        let job = Job {
            tenant: &tenant,
            user: &chat.user,
            served,
            catalog: Arc::clone(&generation.catalog),
            inputs: values,
            tap: Arc::clone(&tap),
            cx: cx.as_ref(),
            deadline,
        };
        let run = execute(&app, job);
        tokio::pin!(run);
        let mut streamed = String::new();
        let result = loop {
            tokio::select! {
                biased;
                Some(token) = tokens.recv() => {
                    streamed.push_str(&token);
                    if send(stamp.chunk(model, json!({"content": token}), None)).await.is_err() {
                        return;
                    }
                }
                result = &mut run => break result,
            }
        };
        while let Ok(token) = tokens.try_recv() {
            streamed.push_str(&token);
            if send(stamp.chunk(model, json!({"content": token}), None)).await.is_err() {
                return;
            }
        }
        match result {
            Ok(done) => {
                // What the stream has not shown yet: all of the output, or (when a stage changed it
                // after streaming) the part after what was streamed.
                let text = output_text(&done.report.output);
                let rest = match text.strip_prefix(streamed.as_str()) {
                    Some(rest) => rest.to_owned(),
                    None => {
                        eprintln!("stream {}: the output differs from the streamed text; not sent again", stamp.id);
                        String::new()
                    }
                };
                if !rest.is_empty() && send(stamp.chunk(model, json!({"content": rest}), None)).await.is_err() {
                    return;
                }
                let _ = send(stamp.chunk(model, json!({}), Some("stop"))).await;
                if chat.include_usage {
                    let (p, c) = tap.usage();
                    let usage = json!({
                        "id": stamp.id, "object": "chat.completion.chunk", "created": stamp.created, "model": model,
                        "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
                    });
                    let _ = send(Bytes::from(format!("data: {usage}\n\n"))).await;
                }
            }
            Err(e) => {
                let _ = send(Bytes::from(format!("data: {}\n\n", e.body()))).await;
            }
        }
        let _ = send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_openai_sends_them() {
        let body = json!({
            "model": "p", "user": "u", "stream": true, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "last "}, {"type": "text", "text": "one"}]},
            ],
            "temperature": 0.2,
        });
        let chat = parse(body.as_object().unwrap()).unwrap();
        assert_eq!((chat.pipeline.as_str(), chat.user.as_str(), chat.message.as_str()), ("p", "u", "last one"));
        assert!(chat.stream && chat.include_usage);
        for (bad, why) in [
            (json!({"user": "u", "messages": []}), "`model`"),
            (json!({"model": "p", "messages": [{"role": "user", "content": "x"}]}), "`user`"),
            (json!({"model": "p", "user": "u", "messages": [{"role": "system", "content": "x"}]}), "no user message"),
            (json!({"model": "p", "user": "u", "messages": "hi"}), "array of messages"),
            (json!({"model": "p", "user": "u", "messages": [{"role": "user", "content": 3}]}), "messages[0]"),
            (
                json!({"model": "p", "user": "u", "n": 2, "messages": [{"role": "user", "content": "x"}]}),
                "`n` must be 1",
            ),
            (json!({"model": 1, "user": "u", "messages": []}), "`model` must be a string"),
        ] {
            let e = parse(bad.as_object().unwrap()).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }
}
