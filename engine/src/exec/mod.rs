//! The graph executor: runs a checked pipeline for one user.
//!
//! Stages start as soon as every stage they read has finished, each on its own tokio task, so
//! independent stages run concurrently. For each stage the executor evaluates `when=` (false:
//! the outputs take their zero values), evaluates the input bindings and renders the templates,
//! turns item-filter settings into the filter the host applies to `search`, looks the result up
//! in the [`StageCache`] when the stage says `cache=`, and otherwise calls the stage's plugin in
//! its sandbox with the stage's grants and its `timeout=` (cut short by the run's deadline).
//! A failure is handled by the stage's `on-error` policy; under `fail` the run stops and every
//! stage still running is cancelled. Dropping the future returned by [`Executor::run`] cancels
//! the whole run the same way (its tasks are aborted with their [`JoinSet`]).
//!
//! Every stage leaves a [`StageReport`]: what it was given, what it produced, how it ended and
//! when, so callers can explain a run (`tailor run --explain`, the daemon's response).

mod cache;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use tailor_dsl::eval::{self, Env, Limits};
use tailor_dsl::ir::{Bound, Egress, InputId, OnError, Pipeline, SettingValue, StageId};
use tailor_dsl::span::Loc;
use tailor_dsl::types::{Item, Value};
use tokio::task::JoinSet;

pub use self::cache::{CacheKey, MemoryStageCache, StageCache};
use crate::host::services::{Complete, ItemFilter, Scope, Services};
use crate::host::{Call, CallContext, CallLimits, LogLine, PluginHost, StageError};
use crate::privacy::{EgressGuard, Vault};
use crate::registry::Catalog;
use tailor_pii::Analyzer;

/// A pipeline ready to run: the checked graph and a fingerprint of it that changes whenever its
/// meaning does (a different graph, setting or plugin version) but not with formatting.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub pipeline: Arc<Pipeline>,
    pub fingerprint: Arc<str>,
}

impl Loaded {
    pub fn new(pipeline: Pipeline) -> Loaded {
        let fingerprint = fingerprint(&pipeline).into();
        Loaded { pipeline: Arc::new(pipeline), fingerprint }
    }
}

/// A hash of the pipeline's IR without its source locations.
fn fingerprint(p: &Pipeline) -> String {
    // The IR's Debug form names every stage, binding, setting and plugin version; locations
    // print as `@OFFSET+LEN` and are the only part a formatting change can move.
    let debug = format!("{p:?}");
    let mut text = String::with_capacity(debug.len());
    let mut chars = debug.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '+') {
                chars.next();
            }
            text.push('@');
        } else {
            text.push(c);
        }
    }
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// One run of a pipeline.
#[derive(Clone)]
pub struct RunRequest {
    pub loaded: Loaded,
    /// The plugins to run the stages with (a snapshot: a reload does not change a run in flight).
    pub catalog: Arc<Catalog>,
    pub tenant: String,
    pub user: String,
    /// One value per pipeline input, in declaration order (see [`bind_inputs`]).
    pub inputs: Vec<Value>,
    pub services: Services,
    /// Changes whenever the user's history changes; part of every cache key, so a cached
    /// result never outlives the history it was computed from.
    pub history_version: u64,
    pub request_id: String,
    /// The whole run's deadline; each stage's timeout is cut to what is left of it.
    pub deadline: Option<Instant>,
    /// Wraps the LLM each stage reaches (tracing its calls, streaming its tokens); applied
    /// inside the egress guard, so whatever it sends has been scanned.
    pub wrap_complete: Option<CompleteWrap>,
}

/// What a [`RunRequest::wrap_complete`] is given for each stage that may call the LLM.
pub struct StageLlm {
    /// The stage's label.
    pub stage: String,
    /// The LLM as configured.
    pub inner: Arc<dyn Complete>,
    /// Puts back the originals of the run's placeholders known so far (for text leaving the
    /// run before it ends, such as streamed tokens).
    pub restore: Arc<dyn Fn(&str) -> String + Send + Sync>,
}

/// Wraps one stage's LLM.
pub type CompleteWrap = Arc<dyn Fn(StageLlm) -> Arc<dyn Complete> + Send + Sync>;

/// How a stage ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The plugin ran and returned its outputs.
    Ran,
    /// The outputs came from the stage cache.
    Cached,
    /// `when=` was false: the outputs are their zero values.
    Skipped,
    /// The stage failed and `on-error` gave its outputs (`skip` or `fallback`).
    Recovered { error: String },
    /// The stage failed and failed the run.
    Failed { error: String },
    /// The run stopped before this stage finished.
    Cancelled,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Cached => "cached",
            Outcome::Skipped => "skipped",
            Outcome::Recovered { .. } => "recovered",
            Outcome::Failed { .. } => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    pub label: String,
    pub plugin: String,
    pub version: String,
    pub outcome: Outcome,
    /// The values the plugin was given (empty when it did not run).
    pub inputs: Vec<(String, Value)>,
    pub outputs: Vec<(String, Value)>,
    /// When the stage started, from the start of the run.
    pub started: Duration,
    pub elapsed: Duration,
    pub logs: Vec<LogLine>,
    /// For a stage that failed (or recovered): the kind of error, for metrics (`trap`, `timeout`…).
    pub error_kind: Option<&'static str>,
}

impl StageReport {
    /// The report of a stage that never finished: what every stage's report starts as.
    fn cancelled(stage: &tailor_dsl::ir::Stage) -> StageReport {
        StageReport {
            label: stage.label.to_string(),
            plugin: stage.plugin.name.clone(),
            version: stage.plugin.version.to_string(),
            outcome: Outcome::Cancelled,
            inputs: Vec::new(),
            outputs: Vec::new(),
            started: Duration::ZERO,
            elapsed: Duration::ZERO,
            logs: Vec::new(),
            error_kind: None,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub output: Value,
    /// One report per stage, in the pipeline's (topological) order.
    pub stages: Vec<StageReport>,
    pub elapsed: Duration,
}

/// Why a run failed, with what the stages did up to then.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    /// Boxed: a `Result` with a failure stays small on the success path.
    pub error: Box<RunError>,
    pub stages: Vec<StageReport>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("pipeline `{pipeline}` takes {expected} inputs, {found} were given")]
    Inputs { pipeline: String, expected: usize, found: usize },
    #[error("stage `{stage}`: plugin {plugin} is not loaded")]
    PluginMissing { stage: String, plugin: String },
    #[error("stage `{stage}` failed: {error}")]
    Stage { stage: String, loc: Loc, error: StageError },
    #[error("stage `{stage}`: {error}")]
    Eval { stage: String, loc: Loc, error: eval::EvalError },
    #[error("the pipeline's output: {error}")]
    Output { loc: Loc, error: eval::EvalError },
    #[error("the run passed its deadline")]
    Deadline,
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    /// A stable one-word kind, for metrics and error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Inputs { .. } => "inputs",
            RunError::PluginMissing { .. } => "plugin_missing",
            RunError::Stage { error, .. } => error.kind(),
            RunError::Eval { .. } | RunError::Output { .. } => "eval",
            RunError::Deadline => "deadline",
            RunError::Internal(_) => "internal",
        }
    }
}

/// Resource bounds every stage call gets, apart from the stage's own timeout.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    pub memory_bytes: usize,
    pub output_bytes: usize,
    /// Steps one expression or template evaluation may take.
    pub eval_fuel: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        let call = CallLimits::default();
        ExecLimits { memory_bytes: call.memory_bytes, output_bytes: call.output_bytes, eval_fuel: 1_000_000 }
    }
}

/// Runs pipelines. Cheap to clone; one per process is enough.
#[derive(Clone)]
pub struct Executor {
    host: Arc<PluginHost>,
    cache: Arc<dyn StageCache>,
    limits: ExecLimits,
}

impl Executor {
    pub fn new(host: Arc<PluginHost>, cache: Arc<dyn StageCache>) -> Executor {
        Executor { host, cache, limits: ExecLimits::default() }
    }

    pub fn with_limits(mut self, limits: ExecLimits) -> Executor {
        self.limits = limits;
        self
    }

    pub fn cache(&self) -> &Arc<dyn StageCache> {
        &self.cache
    }

    /// Runs the pipeline to its output.
    pub async fn run(&self, mut request: RunRequest) -> Result<RunReport, RunFailure> {
        let started = Instant::now();
        let pipeline = Arc::clone(&request.loaded.pipeline);
        let guard = (pipeline.privacy.egress == Egress::Strict)
            .then(|| Arc::new(EgressGuard::analyzer(&pipeline.privacy.allow)));
        if request.wrap_complete.is_none()
            && let Some(analyzer) = &guard
            && let Some(inner) = request.services.complete.take()
        {
            request.services.complete = Some(Arc::new(EgressGuard::with(Arc::clone(analyzer), inner)));
        }
        let fail = |error, stages| Err(RunFailure { error: Box::new(error), stages });
        let mut reports: Vec<StageReport> = pipeline.stages.iter().map(StageReport::cancelled).collect();
        if request.inputs.len() != pipeline.inputs.len() {
            let error = RunError::Inputs {
                pipeline: pipeline.name.clone(),
                expected: pipeline.inputs.len(),
                found: request.inputs.len(),
            };
            return fail(error, reports);
        }
        let shared = Arc::new(Shared {
            request: request.clone(),
            inputs: request.inputs.clone().into(),
            host: Arc::clone(&self.host),
            cache: Arc::clone(&self.cache),
            limits: self.limits,
            started,
            vault: std::sync::Mutex::default(),
            guard,
        });
        let n = pipeline.stages.len();
        let mut outputs: Vec<Option<Arc<[Value]>>> = vec![None; n];
        let mut waiting: Vec<usize> = pipeline.stages.iter().map(|s| s.deps.len()).collect();
        let mut readers: Vec<Vec<StageId>> = vec![Vec::new(); n];
        for s in &pipeline.stages {
            for d in &s.deps {
                readers[d.index()].push(s.id);
            }
        }
        let mut tasks = JoinSet::new();
        let spawn = |tasks: &mut JoinSet<(StageId, StageResult)>, id: StageId, outputs: &[Option<Arc<[Value]>>]| {
            let values = Values { inputs: Arc::clone(&shared.inputs), outputs: outputs.to_vec(), test_output: None };
            let shared = Arc::clone(&shared);
            tasks.spawn(async move { (id, run_stage(shared, id, values).await) });
        };
        for s in pipeline.stages.iter().filter(|s| s.deps.is_empty()) {
            spawn(&mut tasks, s.id, &outputs);
        }
        let deadline = request.deadline.map(tokio::time::Instant::from_std);
        while !tasks.is_empty() {
            let joined = match deadline {
                Some(d) => match tokio::time::timeout_at(d, tasks.join_next()).await {
                    Ok(j) => j,
                    Err(_) => return fail(RunError::Deadline, reports),
                },
                None => tasks.join_next().await,
            };
            let Some(joined) = joined else { break };
            let (id, result) = match joined {
                Ok(done) => done,
                Err(e) => return fail(RunError::Internal(format!("a stage task failed: {e}")), reports),
            };
            let StageResult { report, values, error } = result;
            reports[id.index()] = report;
            if let Some(error) = error {
                return fail(error, reports);
            }
            outputs[id.index()] = Some(values);
            for &r in &readers[id.index()] {
                waiting[r.index()] -= 1;
                if waiting[r.index()] == 0 {
                    spawn(&mut tasks, r, &outputs);
                }
            }
        }
        if let Some(missing) = outputs.iter().position(Option::is_none) {
            let error = RunError::Internal(format!("stage `{}` never ran", pipeline.stages[missing].label));
            return fail(error, reports);
        }
        let values = Values { inputs: Arc::clone(&shared.inputs), outputs, test_output: None };
        let limits = Limits { fuel: self.limits.eval_fuel, now: request.services.clock.now() };
        match eval::eval_expr(&pipeline.output, &values, &[], limits) {
            Ok(output) => {
                let output = shared.vault().restore(&output);
                Ok(RunReport { output, stages: reports, elapsed: started.elapsed() })
            }
            Err(f) => fail(RunError::Output { loc: f.loc, error: f.error }, reports),
        }
    }
}

/// The values of the pipeline's inputs from named values: every declared input must be given
/// or have a default; a value must fit the input's type; unknown names are refused.
pub fn bind_inputs(pipeline: &Pipeline, given: &BTreeMap<String, Value>) -> Result<Vec<Value>, String> {
    for name in given.keys() {
        if !pipeline.inputs.iter().any(|i| &i.name == name) {
            let known: Vec<&str> = pipeline.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(format!("`{name}` is not an input of `{}` (its inputs: {})", pipeline.name, known.join(", ")));
        }
    }
    pipeline
        .inputs
        .iter()
        .map(|input| match given.get(&input.name) {
            Some(v) if v.fits(&input.ty) => Ok(v.clone()),
            Some(v) => Err(format!("input `{}` should be {}, got {}", input.name, input.ty, v.kind_name())),
            None => input.default.clone().ok_or_else(|| format!("input `{}` is required", input.name)),
        })
        .collect()
}

/// An `expect` of an in-file test that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmet {
    /// The expectation's location in the pipeline file.
    pub loc: Loc,
    /// Why: it was false, or it could not be evaluated.
    pub reason: String,
}

/// Evaluates a test's expectations against a finished run: each may read the inputs, every
/// stage's outputs, and the pipeline's output. Returns those that do not hold.
pub fn unmet_expectations(test: &tailor_dsl::ir::TestCase, report: &RunReport, now: f64) -> Vec<Unmet> {
    let outputs = report
        .stages
        .iter()
        .map(|s| Some(s.outputs.iter().map(|(_, v)| v.clone()).collect::<Arc<[Value]>>()))
        .collect();
    let values = Values { inputs: test.inputs.clone().into(), outputs, test_output: Some(report.output.clone()) };
    let limits = Limits { fuel: ExecLimits::default().eval_fuel, now };
    test.expects
        .iter()
        .filter_map(|expect| match eval::eval_expr(expect, &values, &[], limits) {
            Ok(Value::Bool(true)) => None,
            Ok(Value::Bool(false)) => {
                let (loc, reason) = why_false(expect, &values, limits);
                Some(Unmet { loc, reason })
            }
            Ok(other) => Some(Unmet { loc: expect.loc, reason: format!("it gave {}, not a bool", other.kind_name()) }),
            Err(f) => Some(Unmet { loc: f.loc, reason: f.error.to_string() }),
        })
        .collect()
}

/// Where and why a false expectation is false: for `a and b`, the first false side; for a
/// comparison or `in`, the values of both sides, so a failing test shows what it got.
fn why_false(expr: &tailor_dsl::ir::Expr, values: &Values, limits: Limits) -> (Loc, String) {
    use tailor_dsl::expr::BinOp;
    use tailor_dsl::ir::ExprKind;
    /// How much of each side a report shows.
    const SHOWN: usize = 200;
    let show = |e: &tailor_dsl::ir::Expr| match eval::eval_expr(e, values, &[], limits) {
        Ok(v) => {
            let json = tailor_dsl::types::to_json(&v);
            match json.char_indices().nth(SHOWN) {
                Some((at, _)) => format!("{}…", &json[..at]),
                None => json,
            }
        }
        Err(f) => format!("(error: {})", f.error),
    };
    match &expr.kind {
        ExprKind::Binary(BinOp::And, a, b) => {
            let a_holds = matches!(eval::eval_expr(a, values, &[], limits), Ok(Value::Bool(true)));
            why_false(if a_holds { b } else { a }, values, limits)
        }
        ExprKind::Binary(
            op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::In),
            a,
            b,
        ) => (expr.loc, format!("it is false: {} {} {}", show(a), op.symbol(), show(b))),
        _ => (expr.loc, "it is false".into()),
    }
}

/// What every stage task of one run shares.
struct Shared {
    request: RunRequest,
    inputs: Arc<[Value]>,
    host: Arc<PluginHost>,
    cache: Arc<dyn StageCache>,
    limits: ExecLimits,
    started: Instant,
    /// The run's placeholders (spec/privacy.md).
    vault: std::sync::Mutex<Vault>,
    /// The egress guard's recognizers under `egress "strict"`.
    guard: Option<Arc<Analyzer>>,
}

impl Shared {
    fn vault(&self) -> std::sync::MutexGuard<'_, Vault> {
        // A panic while holding the lock leaves a vault whose entries are each whole.
        self.vault.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The values an expression may read: the inputs and the outputs of finished stages.
#[derive(Clone)]
struct Values {
    inputs: Arc<[Value]>,
    outputs: Vec<Option<Arc<[Value]>>>,
    test_output: Option<Value>,
}

impl Env for Values {
    fn input(&self, id: InputId) -> Option<&Value> {
        self.inputs.get(id.index())
    }
    fn stage_output(&self, stage: StageId, port: u32) -> Option<&Value> {
        self.outputs.get(stage.index())?.as_ref()?.get(port as usize)
    }
    fn test_output(&self) -> Option<&Value> {
        self.test_output.as_ref()
    }
}

struct StageResult {
    report: StageReport,
    values: Arc<[Value]>,
    error: Option<RunError>,
}

/// The services one stage's call reaches: the LLM wrapped for the stage, then guarded.
fn stage_services(shared: &Arc<Shared>, label: &str) -> Services {
    let mut services = shared.request.services.clone();
    if let Some(wrap) = &shared.request.wrap_complete
        && let Some(inner) = services.complete.take()
    {
        let vault = Arc::clone(shared);
        let restore = Arc::new(move |text: &str| {
            let vault = vault.vault();
            match vault.restore(&Value::text(text)) {
                Value::Text(t) => t.to_string(),
                _ => text.to_owned(),
            }
        });
        let mut complete = wrap(StageLlm { stage: label.to_owned(), inner, restore });
        if let Some(analyzer) = &shared.guard {
            complete = Arc::new(EgressGuard::with(Arc::clone(analyzer), complete));
        }
        services.complete = Some(complete);
    }
    services
}

async fn run_stage(shared: Arc<Shared>, id: StageId, values: Values) -> StageResult {
    let request = &shared.request;
    let stage = request.loaded.pipeline.stage(id);
    let started = shared.started.elapsed();
    let clock = Instant::now();
    let mut report = StageReport { started, ..StageReport::cancelled(stage) };
    let zeros = || -> Vec<Value> { stage.outputs.iter().map(|o| o.ty.zero()).collect() };
    let limits = Limits { fuel: shared.limits.eval_fuel, now: request.services.clock.now() };
    let label = stage.label.to_string();
    let attempt = async {
        if let Some(when) = &stage.when {
            match eval::eval_expr(when, &values, &[], limits) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => return Ok((Outcome::Skipped, zeros(), Vec::new(), Vec::new())),
                Ok(other) => {
                    let error = eval::EvalError::BadOperand { op: "when", found: other.kind_name() };
                    return Err(RunError::Eval { stage: label.clone(), loc: when.loc, error });
                }
                Err(f) => return Err(RunError::Eval { stage: label.clone(), loc: f.loc, error: f.error }),
            }
        }
        let mut inputs = Vec::with_capacity(stage.inputs.len());
        for binding in &stage.inputs {
            let value = match &binding.value {
                Bound::Expr(e) => eval::eval_expr(e, &values, &[], limits),
                Bound::Template(t) => eval::render_template(t, &values, limits).map(Value::text),
            }
            .map_err(|f| RunError::Eval { stage: label.clone(), loc: f.loc, error: f.error })?;
            inputs.push((binding.port.clone(), value));
        }
        let mut config = Vec::with_capacity(stage.config.len());
        let mut filters = Vec::new();
        for setting in &stage.config {
            match &setting.value {
                SettingValue::Value(v) => config.push((setting.key.clone(), v.clone())),
                SettingValue::Duration(d) => config.push((setting.key.clone(), Value::Number(d.as_secs_f64()))),
                SettingValue::ItemFilter(e) => filters.push(e.clone()),
            }
        }
        let key = stage.cache.map(|ttl| {
            (
                CacheKey::new(
                    &request.tenant,
                    &request.user,
                    &request.loaded.fingerprint,
                    &stage.label.0,
                    request.history_version,
                    &inputs,
                    &config,
                ),
                ttl,
            )
        });
        if let Some((key, _)) = &key
            && let Some(hit) = shared.cache.get(key).await
            && hit.len() == stage.outputs.len()
        {
            return Ok((Outcome::Cached, hit, inputs, Vec::new()));
        }
        let Some(entry) = request.catalog.get(&stage.plugin.name, &stage.plugin.version).cloned() else {
            return Err(RunError::PluginMissing {
                stage: label.clone(),
                plugin: format!("{}@{}", stage.plugin.name, stage.plugin.version),
            });
        };
        let mut timeout = stage.timeout;
        if let Some(deadline) = request.deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        let filter: Option<ItemFilter> = (!filters.is_empty()).then(|| {
            let values = values.clone();
            Arc::new(move |item: &Item| {
                let item = Arc::new(item.clone());
                // A filter that fails to evaluate hides the item: a stage never sees more than asked.
                filters.iter().all(|f| eval::eval_filter(f, &values, &item, limits).unwrap_or(false))
            }) as ItemFilter
        });
        let call = Call {
            context: CallContext {
                request_id: request.request_id.clone(),
                pipeline: request.loaded.pipeline.name.clone(),
                stage: label.clone(),
            },
            inputs: inputs.clone(),
            config,
            grants: stage.grants.iter().copied().collect::<BTreeSet<_>>(),
            scope: Some(Scope {
                tenant: request.tenant.clone(),
                user: request.user.clone(),
                plugin: stage.plugin.name.clone(),
            }),
            filter,
            services: stage_services(&shared, &label),
            limits: CallLimits {
                timeout,
                memory_bytes: shared.limits.memory_bytes,
                output_bytes: shared.limits.output_bytes,
            },
        };
        let cut_by_deadline = timeout < stage.timeout;
        let out = entry.plugin.call(&shared.host, call).await.map_err(|error| match error {
            // The stage's own timeout did not run out: the run's deadline did.
            StageError::Timeout { .. } if cut_by_deadline => RunError::Deadline,
            error => RunError::Stage { stage: label.clone(), loc: stage.loc, error },
        })?;
        let mut by_name: BTreeMap<String, Value> = out.outputs.into_iter().collect();
        let mut produced: Vec<Value> =
            stage.outputs.iter().map(|slot| by_name.remove(&slot.name).unwrap_or_else(|| slot.ty.zero())).collect();
        if !out.restore.is_empty() {
            // Placeholders: the run's vault keeps the originals and makes the names consistent
            // with earlier stages'. Not cached: a cached result would come without them.
            let renames = shared.vault().absorb(out.restore);
            if !renames.is_empty() {
                let rename = |t: &str| crate::privacy::rewrite(t, |p| renames.get(p).cloned());
                produced = produced.iter().map(|v| crate::privacy::map_texts(v, &rename)).collect();
            }
        } else if let Some((key, ttl)) = key {
            shared.cache.put(key, produced.clone(), ttl).await;
        }
        Ok((Outcome::Ran, produced, inputs, out.logs))
    };
    let result = attempt.await;
    report.elapsed = clock.elapsed();
    if let Err(error) = &result {
        report.error_kind = Some(error.kind());
    }
    let (values, error) = match result {
        Ok((outcome, produced, inputs, logs)) => {
            report.outcome = outcome;
            report.inputs = inputs;
            report.logs = logs;
            (produced, None)
        }
        Err(error) => match &stage.on_error {
            // Past the run's deadline nothing recovers.
            OnError::Fail | OnError::Skip | OnError::Fallback(_) if error == RunError::Deadline => {
                report.outcome = Outcome::Failed { error: error.to_string() };
                (zeros(), Some(error))
            }
            OnError::Fail => {
                report.outcome = Outcome::Failed { error: error.to_string() };
                (zeros(), Some(error))
            }
            OnError::Skip => {
                report.outcome = Outcome::Recovered { error: error.to_string() };
                (zeros(), None)
            }
            OnError::Fallback(given) => {
                report.outcome = Outcome::Recovered { error: error.to_string() };
                let values = stage
                    .outputs
                    .iter()
                    .enumerate()
                    .map(|(i, o)| given.get(i).cloned().unwrap_or(o.ty.zero()))
                    .collect();
                (values, None)
            }
        },
    };
    report.outputs = stage.outputs.iter().map(|o| o.name.clone()).zip(values.iter().cloned()).collect();
    StageResult { report, values: values.into(), error }
}

#[cfg(test)]
mod tests;
