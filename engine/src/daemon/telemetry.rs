//! OpenTelemetry traces (spec/daemon.md §6): a span per request, a child span per stage (plugin
//! name and version, timings, outcome), and under a stage a span per LLM call with the
//! `gen_ai.*` attributes. Stage and LLM spans are recorded from the run's report with their
//! real start and end times, so tracing adds nothing to a stage's own path. Exported over
//! OTLP/HTTP (JSON) when `telemetry { otlp … }` is set; trace ids are made either way and
//! returned to the caller. An incoming W3C `traceparent` makes the request span its child.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::config;
use crate::exec::{Outcome, StageReport};

/// One LLM call a run made.
#[derive(Debug, Clone)]
pub struct LlmCall {
    pub stage: String,
    pub started: SystemTime,
    pub elapsed: Duration,
    pub max_tokens: u32,
    pub temperature: f32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub streamed: bool,
    pub error: Option<String>,
    /// Only with `capture-prompts`.
    pub prompt: Option<String>,
    pub completion: Option<String>,
}

pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    pub capture_prompts: bool,
    /// `gen_ai.provider.name` and `gen_ai.request.model`.
    llm: (String, String),
}

impl Tracing {
    /// The tracer; with an OTLP endpoint, spans are batched and exported in the background.
    pub fn new(config: &config::Telemetry, llm: &config::LlmConfig) -> Result<Tracing, String> {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if let Some(base) = &config.otlp {
            use opentelemetry_otlp::{Protocol, WithExportConfig as _};
            let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
            // The exporter's HTTP client blocks on its own thread; build it off the async runtime.
            let exporter = std::thread::scope(|s| {
                s.spawn(|| {
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpJson)
                        .with_endpoint(endpoint.clone())
                        .with_timeout(Duration::from_secs(10))
                        .build()
                })
                .join()
            })
            .map_err(|_| "building the OTLP exporter panicked".to_string())?
            .map_err(|e| format!("telemetry: the OTLP exporter for {endpoint}: {e}"))?;
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        let tracer = provider.tracer("tailor");
        let llm = match llm {
            config::LlmConfig::Local => ("tailor.local".to_string(), "SmolLM2-135M-Instruct".to_string()),
            config::LlmConfig::OpenAi { model, .. } => ("openai".to_string(), model.clone()),
        };
        Ok(Tracing { provider, tracer, capture_prompts: config.capture_prompts, llm })
    }

    /// A server span for a request, child of the caller's `traceparent` if it sent one.
    pub fn request(&self, name: String, headers: &hyper::HeaderMap, attributes: Vec<KeyValue>) -> Context {
        let parent = TraceContextPropagator::new().extract(&Headers(headers));
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    /// Records a run's stages and LLM calls under the request span in `cx`.
    pub fn run(&self, cx: &Context, run_started: SystemTime, pipeline: &str, stages: &[StageReport], llm: &[LlmCall]) {
        for s in stages {
            if s.outcome == Outcome::Cancelled && s.elapsed.is_zero() {
                continue;
            }
            let start = run_started + s.started;
            let mut attributes = vec![
                KeyValue::new("tailor.pipeline", pipeline.to_owned()),
                KeyValue::new("tailor.stage", s.label.clone()),
                KeyValue::new("tailor.plugin.name", s.plugin.clone()),
                KeyValue::new("tailor.plugin.version", s.version.clone()),
                KeyValue::new("tailor.stage.outcome", s.outcome.as_str()),
            ];
            if let Some(kind) = s.error_kind {
                attributes.push(KeyValue::new("error.type", kind));
            }
            let mut span = self
                .tracer
                .span_builder(format!("stage {}", s.label))
                .with_kind(SpanKind::Internal)
                .with_start_time(start)
                .with_attributes(attributes)
                .start_with_context(&self.tracer, cx);
            match &s.outcome {
                Outcome::Failed { error } => span.set_status(Status::error(error.clone())),
                Outcome::Recovered { error } => {
                    span.add_event("recovered", vec![KeyValue::new("exception.message", error.clone())])
                }
                _ => {}
            }
            let stage_cx = cx.with_remote_span_context(span.span_context().clone());
            for call in llm.iter().filter(|c| c.stage == s.label) {
                self.llm_span(&stage_cx, call);
            }
            span.end_with_timestamp(start + s.elapsed);
        }
    }

    fn llm_span(&self, cx: &Context, call: &LlmCall) {
        let (provider, model) = &self.llm;
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", provider.clone()),
            KeyValue::new("gen_ai.request.model", model.clone()),
            KeyValue::new("gen_ai.request.max_tokens", i64::from(call.max_tokens)),
            KeyValue::new("gen_ai.request.temperature", f64::from(call.temperature)),
            KeyValue::new("gen_ai.usage.input_tokens", i64::from(call.prompt_tokens)),
            KeyValue::new("gen_ai.usage.output_tokens", i64::from(call.completion_tokens)),
            KeyValue::new("tailor.llm.streamed", call.streamed),
        ];
        if let Some(p) = &call.prompt {
            attributes.push(KeyValue::new("gen_ai.input.messages", p.clone()));
        }
        if let Some(c) = &call.completion {
            attributes.push(KeyValue::new("gen_ai.output.messages", c.clone()));
        }
        let mut span = self
            .tracer
            .span_builder(format!("chat {model}"))
            .with_kind(SpanKind::Client)
            .with_start_time(call.started)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, cx);
        if let Some(e) = &call.error {
            span.set_attribute(KeyValue::new("error.type", "llm"));
            span.set_status(Status::error(e.clone()));
        }
        span.end_with_timestamp(call.started + call.elapsed);
    }

    /// Flushes and stops the exporter (at shutdown).
    pub fn shutdown(self: Arc<Self>) {
        let provider = self.provider.clone();
        // Blocking HTTP; off the async runtime's threads.
        let _ = std::thread::spawn(move || provider.shutdown()).join();
    }
}

/// The trace id of the span in `cx`, as 32 hex digits.
pub fn trace_id(cx: &Context) -> String {
    cx.span().span_context().trace_id().to_string()
}

/// The trace and span ids of the span in `cx`: unique per request.
pub fn span_id(cx: &Context) -> String {
    let sc = cx.span().span_context().clone();
    format!("{}{}", sc.trace_id(), sc.span_id())
}

/// Ends the span in `cx` with the response's status.
pub fn end(cx: &Context, status: u16) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    span.end();
}

struct Headers<'a>(&'a hyper::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
