//! The daemon's Prometheus metrics (`GET /metrics`, spec/daemon.md §6).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::exec::{Outcome, StageReport};

type Labels = Vec<(&'static str, String)>;

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms to ~33 s.
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 17)
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<Labels, Counter>,
    pub request_seconds: Family<Labels, Histogram>,
    pub in_flight: Gauge,
    pub runs: Family<Labels, Counter>,
    pub stage_seconds: Family<Labels, Histogram>,
    pub stage_errors: Family<Labels, Counter>,
    pub plugin_traps: Family<Labels, Counter>,
    pub reloads: Family<Labels, Counter>,
    pub generation: Gauge,
    pub llm_tokens: Family<Labels, Counter>,
    pub llm_calls: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tailor");
        let requests = Family::<Labels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route, method and status", requests.clone());
        let request_seconds =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()) as Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of a stream), by route",
            request_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("http_requests_in_flight", "HTTP requests being served", in_flight.clone());
        let runs = Family::<Labels, Counter>::default();
        registry.register("pipeline_runs", "Pipeline runs, by pipeline and outcome (ok, failed)", runs.clone());
        let stage_seconds =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()) as Histogram);
        registry.register("stage_duration_seconds", "Time a stage took, by pipeline and stage", stage_seconds.clone());
        let stage_errors = Family::<Labels, Counter>::default();
        registry.register(
            "stage_errors",
            "Stages that failed (whether or not on-error recovered), by pipeline, stage and kind of error",
            stage_errors.clone(),
        );
        let plugin_traps = Family::<Labels, Counter>::default();
        registry.register("plugin_traps", "Plugin calls that trapped, by plugin", plugin_traps.clone());
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of pipelines and plugins, by trigger and outcome (applied, unchanged, rolled_back)",
            reloads.clone(),
        );
        let generation = Gauge::default();
        registry.register("generation", "The version of the pipelines and plugins being served", generation.clone());
        let llm_tokens = Family::<Labels, Counter>::default();
        registry.register("llm_tokens", "LLM tokens, by kind (prompt, completion)", llm_tokens.clone());
        let llm_calls = Family::<Labels, Counter>::default();
        registry.register("llm_calls", "LLM calls, by outcome (ok, error)", llm_calls.clone());
        registry.register_collector(Box::new(EgressCollector));
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            runs,
            stage_seconds,
            stage_errors,
            plugin_traps,
            reloads,
            generation,
            llm_tokens,
            llm_calls,
        }
    }

    /// Counts what a run's stages did.
    pub fn stages(&self, pipeline: &str, stages: &[StageReport]) {
        for s in stages {
            if s.outcome == Outcome::Cancelled {
                continue;
            }
            let labels = vec![("pipeline", pipeline.to_owned()), ("stage", s.label.clone())];
            self.stage_seconds.get_or_create(&labels).observe(s.elapsed.as_secs_f64());
            if let Some(kind) = s.error_kind {
                let mut with_kind = labels.clone();
                with_kind.push(("kind", kind.to_owned()));
                self.stage_errors.get_or_create(&with_kind).inc();
                if kind == "trap" {
                    self.plugin_traps.get_or_create(&vec![("plugin", format!("{}@{}", s.plugin, s.version))]).inc();
                }
            }
        }
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("invariant: encoding to a String cannot fail");
        out
    }
}

/// The process-wide egress audit counters (spec/privacy.md §3), read at each scrape.
#[derive(Debug)]
struct EgressCollector;

impl Collector for EgressCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let audit = crate::privacy::egress_audit();
        let requests = encoder.encode_descriptor(
            "egress_requests",
            "LLM requests scanned by egress guards (`egress \"strict\"`), by result (passed, refused)",
            None,
            MetricType::Counter,
        )?;
        let mut requests = requests;
        for (result, n) in [("passed", audit.passed), ("refused", audit.refused)] {
            ConstCounter::new(n).encode(requests.encode_family(&vec![("result", result)])?)?;
        }
        let mut found = encoder.encode_descriptor(
            "egress_refused_entities",
            "Personal data found in refused LLM requests, by entity type (counts only, never values)",
            None,
            MetricType::Counter,
        )?;
        for (entity, n) in audit.found {
            ConstCounter::new(n).encode(found.encode_family(&vec![("entity", entity)])?)?;
        }
        Ok(())
    }
}
