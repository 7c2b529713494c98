//! `tailor eval pipeline FILE --dataset DATA.jsonl`: a pipeline's quality on a LaMP-style
//! dataset, its latency and its LLM tokens; `--compare A.kdl B.kdl` scores two pipelines on the
//! same rows with a paired bootstrap interval of the difference.
//!
//! Every row is `{id, user, input, profile?: [items], output}`. A row's `profile` is that user's
//! history as the row sees it (LaMP gives each question its own), stored in a temporary store
//! under its own history; a row without one runs with an empty history. Each finished row is
//! appended to the results file at once (JSON lines), so an interrupted run (Ctrl-C, a crash)
//! loses at most the rows in flight, and running the same command again skips the rows done.
//! The results file records the pipeline's source hash: rows written by another version of the
//! pipeline are never mixed in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tailor_dsl::check::check_file;
use tailor_dsl::ir::{Pipeline, SettingValue};
use tailor_dsl::types::{Type, Value, to_json};
use tailor_engine::eval::metrics::{self, Metric, Paired, Scale};
use tailor_engine::exec::{CompleteWrap, Loaded, RunRequest, StageLlm, bind_inputs};
use tailor_engine::host::json_to_value;
use tailor_engine::host::services::{Complete, Completion, CompletionRequest, ServiceError};
use tailor_engine::store::item_from_json;

use crate::local::{LlmChoice, Local};
use crate::{Outcome, files, report};

/// What `tailor eval pipeline` was asked to do.
pub struct PipelineEval<'a> {
    /// One pipeline file, or two to compare.
    pub files: Vec<PathBuf>,
    pub pipeline: Option<&'a str>,
    pub dataset: &'a Path,
    /// Empty: chosen from the gold outputs (see [`default_metrics`]).
    pub metrics: Vec<Metric>,
    pub users: Option<HashSet<String>>,
    pub limit: Option<usize>,
    pub concurrency: usize,
    /// Where finished rows go; by default beside the dataset, named after pipeline and dataset.
    pub results: Option<PathBuf>,
    pub llm: LlmChoice,
    pub plugin_dirs: &'a [PathBuf],
    pub scale: Scale,
    pub resamples: usize,
    pub seed: u64,
    /// A run's time limit, per row.
    pub timeout: Option<Duration>,
    /// Where to write the HTML report and its charts.
    pub report: Option<PathBuf>,
}

/// One row of a dataset.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub user: String,
    pub input: serde_json::Value,
    pub profile: Option<Vec<serde_json::Value>>,
    pub output: String,
    /// 1-based, for messages.
    pub line: usize,
}

/// Reads a dataset; every bad line is reported (path:line: why) and the whole load fails, since
/// scores over a silently shortened dataset would mislead.
pub fn load_dataset(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening the dataset {}", path.display()))?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(&line, i + 1) {
            Ok(row) if !seen.insert(row.id.clone()) => {
                errors.push(format!("{}:{}: id `{}` appears twice", path.display(), i + 1, row.id))
            }
            Ok(row) => rows.push(row),
            Err(why) => errors.push(format!("{}:{}: {why}", path.display(), i + 1)),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(20).map(String::as_str).collect();
        let more = if errors.len() > 20 { format!("\n… and {} more", errors.len() - 20) } else { String::new() };
        bail!("the dataset has {} bad line(s):\n{}{more}", errors.len(), shown.join("\n"));
    }
    if rows.is_empty() {
        bail!("the dataset {} has no rows", path.display());
    }
    Ok(rows)
}

fn parse_row(line: &str, number: usize) -> Result<Row, String> {
    let json: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = json.as_object().ok_or("a row is a JSON object")?;
    let scalar = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(serde_json::Value::String(_)) => Err(format!("`{key}` is empty")),
            Some(other) => Err(format!("`{key}` must be a string or a number, not {}", kind(other))),
            None => Err(format!("`{key}` is missing")),
        }
    };
    for key in obj.keys() {
        if !["id", "user", "input", "profile", "output"].contains(&key.as_str()) {
            return Err(format!("unknown field `{key}` (a row has id, user, input, profile, output)"));
        }
    }
    let input = match obj.get("input") {
        Some(v @ (serde_json::Value::String(_) | serde_json::Value::Object(_))) => v.clone(),
        Some(other) => return Err(format!("`input` must be a string or an object, not {}", kind(other))),
        None => return Err("`input` is missing".into()),
    };
    let profile = match obj.get("profile") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                item_from_json(item).map_err(|why| format!("profile item {}: {why}", i + 1))?;
            }
            Some(items.clone())
        }
        Some(other) => return Err(format!("`profile` must be an array of items, not {}", kind(other))),
    };
    let output = match obj.get("output") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("`output` must be a string or a number, not {}", kind(other))),
        None => return Err("`output` is missing".into()),
    };
    Ok(Row { id: scalar("id")?, user: scalar("user")?, input, profile, output, line: number })
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The metrics for a dataset whose `--metric` was not given: MAE and RMSE when every gold output
/// is a number (ratings, LaMP-3); accuracy and macro-F1 when the outputs are a few short labels
/// (at most 32 distinct, each at most 4 words: LaMP-1/2); else ROUGE-1 and ROUGE-L (LaMP-4…7).
pub fn default_metrics(rows: &[Row]) -> Vec<Metric> {
    if rows.iter().all(|r| metrics::parse_rating(&r.output).is_some()) {
        return vec![Metric::Mae, Metric::Rmse];
    }
    let labels: HashSet<String> = rows.iter().map(|r| r.output.trim().to_lowercase()).collect();
    if labels.len() <= 32 && labels.iter().all(|l| l.split_whitespace().count() <= 4) {
        vec![Metric::Accuracy, Metric::MacroF1]
    } else {
        vec![Metric::Rouge1, Metric::RougeL]
    }
}

/// One finished row, as written to the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub pipeline: String,
    /// SHA-256 of the pipeline file's text.
    pub source: String,
    pub id: String,
    pub prediction: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: f64,
    pub llm_ms: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Each stage's time, by label.
    pub stages: BTreeMap<String, f64>,
}

/// The LLM calls of one run: their time and tokens.
#[derive(Default)]
struct LlmTally {
    time: Duration,
    prompt: u64,
    completion: u64,
}

struct Counted {
    inner: Arc<dyn Complete>,
    tally: Arc<Mutex<LlmTally>>,
}

#[async_trait::async_trait]
impl Complete for Counted {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        let started = Instant::now();
        let out = self.inner.complete(request).await;
        let mut tally = self.tally.lock().expect("tally lock");
        tally.time += started.elapsed();
        if let Ok(c) = &out {
            tally.prompt += u64::from(c.prompt_tokens);
            tally.completion += u64::from(c.completion_tokens);
        }
        out
    }
}

/// A loaded pipeline and what its results are keyed by.
struct Candidate {
    file: PathBuf,
    pipeline: Pipeline,
    source: String,
    catalog: Arc<tailor_engine::registry::Catalog>,
}

pub fn run(args: PipelineEval<'_>) -> anyhow::Result<Outcome> {
    let mut rows = load_dataset(args.dataset)?;
    if let Some(users) = &args.users {
        rows.retain(|r| users.contains(&r.user));
        if rows.is_empty() {
            bail!("no row of {} belongs to the users given with --users", args.dataset.display());
        }
    }
    if let Some(limit) = args.limit {
        rows.truncate(limit);
    }
    let metrics = if args.metrics.is_empty() { default_metrics(&rows) } else { args.metrics.clone() };
    if metrics.iter().any(|m| matches!(m, Metric::Mae | Metric::Rmse))
        && let Some(bad) = rows.iter().find(|r| metrics::parse_rating(&r.output).is_none())
    {
        bail!("{}:{}: output {:?} is not a rating, which mae/rmse need", args.dataset.display(), bad.line, bad.output);
    }

    let store_dir = tempfile::tempdir().context("making the evaluation's temporary store")?;
    let store = Local::open_store(&store_dir.path().join("eval.db"))?;
    let mut candidates = Vec::new();
    let mut local: Option<Local> = None;
    for path in &args.files {
        let file = files::read(path)?;
        let source = hex(&Sha256::digest(file.text().as_bytes()));
        // The plugins are loaded once; the first file decides whether items are embedded.
        if local.is_none() {
            let probe = Local::open(Arc::clone(&store), args.plugin_dirs, &args.llm, false)?;
            let checked = check_file(&file, &*probe.registry.snapshot());
            let dense = checked.pipelines.iter().any(uses_dense);
            drop(probe);
            local = Some(Local::open(Arc::clone(&store), args.plugin_dirs, &args.llm, dense)?);
        }
        let local = local.as_ref().expect("opened above");
        let catalog = local.registry.snapshot();
        let checked = check_file(&file, &*catalog);
        for d in &checked.diagnostics {
            eprintln!("{}", report::human(d, &file));
        }
        if checked.has_errors() {
            return Ok(Outcome::ConfigErrors);
        }
        let pipeline = crate::cmd::run::choose(checked.pipelines, args.pipeline, file.name())?;
        if !pipeline.inputs.iter().any(|i| i.ty == Type::Text) && rows.iter().any(|r| r.input.is_string()) {
            bail!("{}: pipeline `{}` has no text input for the rows' `input` strings", path.display(), pipeline.name);
        }
        candidates.push(Candidate { file: path.clone(), pipeline, source, catalog });
    }
    let local = local.context("no pipeline file was given")?;

    // Every distinct history once.
    let bar = crate::cmd::eval::bar(rows.len(), "profiles");
    for row in &rows {
        if let Some(profile) = &row.profile {
            let items = profile.iter().map(|j| item_from_json(j).expect("checked when loaded")).collect();
            local
                .runtime
                .block_on(local.histories.ingest("eval", &history_user(row), items))
                .with_context(|| format!("storing the profile of row `{}`", row.id))?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        local.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!(
                    "\ninterrupted: finishing the rows in flight (Ctrl-C again to quit now); \
                     run the same command again to go on"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }

    let mut per_pipeline = Vec::new();
    for candidate in &candidates {
        let results = results_path(args.results.as_deref(), args.dataset, candidate, candidates.len());
        if per_pipeline.iter().any(|(_, r, _): &(&Candidate, PathBuf, _)| *r == results) {
            bail!("both pipelines would write {}: give the files different names", results.display());
        }
        let done = evaluate(&local, candidate, &rows, &results, &args, &stop)?;
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("stopped; {} of {} rows are in {}", done.len(), rows.len(), results.display());
            return Ok(Outcome::Interrupted);
        }
        per_pipeline.push((candidate, results, done));
    }

    let golds: Vec<&str> = rows.iter().map(|r| r.output.as_str()).collect();
    let mut out = serde_json::Map::new();
    out.insert("dataset".into(), args.dataset.display().to_string().into());
    out.insert("rows".into(), rows.len().into());
    let mut summaries = Vec::new();
    for (candidate, results, done) in &per_pipeline {
        let predictions: Vec<&str> = rows.iter().map(|r| done[&r.id].prediction.as_str()).collect();
        summaries.push(summary(candidate, results, &rows, done, &predictions, &golds, &metrics, args.scale));
    }
    let charts: Vec<crate::cmd::eval_report::PipelineData> = per_pipeline
        .iter()
        .zip(&summaries)
        .map(|((candidate, _, done), summary)| crate::cmd::eval_report::PipelineData {
            name: candidate.pipeline.name.clone(),
            metrics: metrics
                .iter()
                .map(|m| (m.name().to_owned(), summary["metrics"][m.name()].as_f64().unwrap_or(f64::NAN)))
                .collect(),
            overhead_ms: rows.iter().map(|r| done[&r.id].latency_ms - done[&r.id].llm_ms).collect(),
            stages: candidate
                .pipeline
                .stages
                .iter()
                .filter_map(|st| {
                    summary["stage_p50_ms"][st.label.to_string().as_str()].as_f64().map(|ms| (st.label.to_string(), ms))
                })
                .collect(),
            summary: summary.clone(),
        })
        .collect();
    if let [(_, _, a), (_, _, b)] = per_pipeline.as_slice() {
        let pa: Vec<&str> = rows.iter().map(|r| a[&r.id].prediction.as_str()).collect();
        let pb: Vec<&str> = rows.iter().map(|r| b[&r.id].prediction.as_str()).collect();
        let paired: Vec<Paired> = metrics
            .iter()
            .map(|&m| metrics::paired_bootstrap(m, &pa, &pb, &golds, args.scale, args.resamples, 0.95, args.seed))
            .collect();
        out.insert("pipelines".into(), summaries.into());
        out.insert("comparison".into(), serde_json::to_value(paired)?);
    } else {
        let only = summaries.pop().expect("one pipeline");
        for (k, v) in only.as_object().expect("a summary is an object") {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(dir) = &args.report {
        crate::cmd::eval_report::write(
            dir,
            &args.dataset.display().to_string(),
            rows.len(),
            &charts,
            out.get("comparison"),
        )?;
        out.insert("report".into(), dir.join("index.html").display().to_string().into());
    }
    println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(out))?);
    Ok(Outcome::Ok)
}

/// The store user a row's profile lives under: its own history when it brings one.
fn history_user(row: &Row) -> String {
    match row.profile {
        Some(_) => format!("{}/{}", row.user, row.id),
        None => row.user.clone(),
    }
}

/// Whether a pipeline's stages ask for dense or hybrid retrieval (then items are embedded).
fn uses_dense(p: &Pipeline) -> bool {
    p.stages.iter().any(|s| {
        s.config.iter().any(|c| match &c.value {
            SettingValue::Value(Value::Text(t)) => c.key == "method" && (&**t == "dense" || &**t == "hybrid"),
            SettingValue::Value(Value::Bool(b)) => c.key == "dense" && *b,
            _ => false,
        })
    })
}

/// The results file of a pipeline: `--results` (with `--compare`, `STEM.FILE_STEM.jsonl` beside
/// it), else `DATASET_STEM.FILE_STEM.PIPELINE.results.jsonl` beside the dataset.
fn results_path(given: Option<&Path>, dataset: &Path, candidate: &Candidate, pipelines: usize) -> PathBuf {
    let stem = |p: &Path| p.file_stem().and_then(|s| s.to_str()).unwrap_or("eval").to_owned();
    match given {
        Some(p) if pipelines == 1 => p.to_path_buf(),
        Some(p) => p.with_file_name(format!("{}.{}.jsonl", stem(p), stem(&candidate.file))),
        None => dataset.with_file_name(format!(
            "{}.{}.{}.results.jsonl",
            stem(dataset),
            stem(&candidate.file),
            candidate.pipeline.name
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows already in the results file for this pipeline version; a torn last line (a write cut
/// short) is ignored, anything else unreadable is an error.
fn load_done(path: &Path, candidate: &Candidate) -> anyhow::Result<HashMap<String, Done>> {
    let mut done = HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Done = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if i + 1 == lines.len() && !complete => {
                eprintln!("{}:{}: ignoring a line cut short", path.display(), i + 1);
                continue;
            }
            Err(e) => bail!("{}:{}: not a result line: {e}", path.display(), i + 1),
        };
        if row.pipeline != candidate.pipeline.name || row.source != candidate.source {
            bail!(
                "{} holds results of another pipeline or another version of it ({} at line {}); \
                 give a new --results file or remove it",
                path.display(),
                row.pipeline,
                i + 1
            );
        }
        done.insert(row.id.clone(), row);
    }
    if !complete && !text.is_empty() {
        // Start the next append on a fresh line.
        std::fs::OpenOptions::new().append(true).open(path)?.write_all(b"\n")?;
    }
    Ok(done)
}

fn evaluate(
    local: &Local,
    candidate: &Candidate,
    rows: &[Row],
    results: &Path,
    args: &PipelineEval<'_>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<HashMap<String, Done>> {
    let mut done = load_done(results, candidate)?;
    let todo: Vec<&Row> = rows.iter().filter(|r| !done.contains_key(&r.id)).collect();
    if todo.len() < rows.len() {
        eprintln!(
            "{}: {} of {} rows already done ({})",
            candidate.pipeline.name,
            rows.len() - todo.len(),
            rows.len(),
            results.display()
        );
    }
    if todo.is_empty() {
        return Ok(done);
    }
    if let Some(dir) = results.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(results)
        .with_context(|| format!("opening {}", results.display()))?;
    let bar = crate::cmd::eval::bar(todo.len(), candidate.pipeline.name.clone());
    let loaded = Loaded::new(candidate.pipeline.clone());
    let concurrency = args.concurrency.max(1);
    let outcome: anyhow::Result<()> = local.runtime.block_on(async {
        use futures_util::StreamExt as _;
        // After Ctrl-C no row starts; those in flight finish and are written.
        let rows = todo.iter().take_while(|_| !stop.load(std::sync::atomic::Ordering::SeqCst));
        let mut running =
            futures_util::stream::iter(rows.map(|row| run_row(local, candidate, &loaded, row, args.timeout)))
                .buffer_unordered(concurrency);
        while let Some(result) = running.next().await {
            let row = result?;
            let mut line = serde_json::to_string(&row)?;
            line.push('\n');
            file.write_all(line.as_bytes()).with_context(|| format!("writing {}", results.display()))?;
            file.flush()?;
            bar.inc(1);
            done.insert(row.id.clone(), row);
        }
        Ok(())
    });
    bar.finish_and_clear();
    outcome?;
    Ok(done)
}

async fn run_row(
    local: &Local,
    candidate: &Candidate,
    loaded: &Loaded,
    row: &Row,
    timeout: Option<Duration>,
) -> anyhow::Result<Done> {
    let pipeline = &candidate.pipeline;
    let given = row_inputs(pipeline, &row.input).with_context(|| format!("row `{}` (line {})", row.id, row.line))?;
    let inputs =
        bind_inputs(pipeline, &given).map_err(|e| anyhow::anyhow!("row `{}` (line {}): {e}", row.id, row.line))?;
    let user = history_user(row);
    let history_version = local.histories.store().history_version("eval", &user).await?;
    let tally = Arc::new(Mutex::new(LlmTally::default()));
    let counter = Arc::clone(&tally);
    let wrap: CompleteWrap = Arc::new(move |s: StageLlm| {
        Arc::new(Counted { inner: s.inner, tally: Arc::clone(&counter) }) as Arc<dyn Complete>
    });
    let request = RunRequest {
        loaded: loaded.clone(),
        catalog: Arc::clone(&candidate.catalog),
        tenant: "eval".into(),
        user,
        inputs,
        services: local.services.clone(),
        history_version,
        request_id: format!("eval-{}", row.id),
        deadline: timeout.map(|t| Instant::now() + t),
        wrap_complete: Some(wrap),
    };
    let started = Instant::now();
    let result = local.executor.run(request).await;
    let latency = started.elapsed();
    let tally = tally.lock().expect("tally lock");
    let (prediction, error, stages) = match result {
        Ok(report) => (prediction_text(&report.output), None, report.stages),
        Err(failure) => (String::new(), Some(failure.error.to_string()), failure.stages),
    };
    Ok(Done {
        pipeline: pipeline.name.clone(),
        source: candidate.source.clone(),
        id: row.id.clone(),
        prediction,
        error,
        latency_ms: latency.as_secs_f64() * 1e3,
        llm_ms: tally.time.as_secs_f64() * 1e3,
        prompt_tokens: tally.prompt,
        completion_tokens: tally.completion,
        stages: stages.iter().map(|s| (s.label.to_string(), s.elapsed.as_secs_f64() * 1e3)).collect(),
    })
}

/// A row's `input`: a string goes to the pipeline's first text input; an object binds by name.
fn row_inputs(pipeline: &Pipeline, input: &serde_json::Value) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut given = BTreeMap::new();
    match input {
        serde_json::Value::String(s) => {
            let first =
                pipeline.inputs.iter().find(|i| i.ty == Type::Text).context("the pipeline has no text input")?;
            given.insert(first.name.clone(), Value::text(s.as_str()));
        }
        other => match json_to_value(&other.to_string()).map_err(|e| anyhow::anyhow!("input: {e}"))? {
            Value::Record(map) => {
                for (k, v) in map.iter() {
                    given.insert(k.to_string(), v.clone());
                }
            }
            v => bail!("input must be a string or an object, not {}", v.kind_name()),
        },
    }
    Ok(given)
}

/// The prediction a pipeline's output stands for: text as it is, anything else as JSON.
fn prediction_text(output: &Value) -> String {
    match output {
        Value::Text(t) => t.to_string(),
        Value::Number(n) => n.to_string(),
        other => to_json(other),
    }
}

#[allow(clippy::too_many_arguments)]
fn summary(
    candidate: &Candidate,
    results: &Path,
    rows: &[Row],
    done: &HashMap<String, Done>,
    predictions: &[&str],
    golds: &[&str],
    metrics: &[Metric],
    scale: Scale,
) -> serde_json::Value {
    let mine: Vec<&Done> = rows.iter().map(|r| &done[&r.id]).collect();
    let latencies: Vec<f64> = mine.iter().map(|d| d.latency_ms).collect();
    let overhead: Vec<f64> = mine.iter().map(|d| d.latency_ms - d.llm_ms).collect();
    let pct = |v: &[f64]| {
        serde_json::json!({
            "p50": metrics::percentile(v, 0.5), "p90": metrics::percentile(v, 0.9),
            "p99": metrics::percentile(v, 0.99), "mean": v.iter().sum::<f64>() / v.len() as f64,
        })
    };
    let mut stage_times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for d in &mine {
        for (label, ms) in &d.stages {
            stage_times.entry(label).or_default().push(*ms);
        }
    }
    let scores: serde_json::Map<String, serde_json::Value> =
        metrics.iter().map(|&m| (m.name().to_owned(), metrics::score(m, predictions, golds, scale).into())).collect();
    let errors: Vec<serde_json::Value> = mine
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| serde_json::json!({"id": d.id, "error": e})))
        .take(10)
        .collect();
    serde_json::json!({
        "pipeline": candidate.pipeline.name,
        "file": candidate.file.display().to_string(),
        "results": results.display().to_string(),
        "metrics": scores,
        "failed_rows": mine.iter().filter(|d| d.error.is_some()).count(),
        "first_errors": errors,
        "latency_ms": pct(&latencies),
        "latency_without_llm_ms": pct(&overhead),
        "stage_p50_ms": stage_times.iter().map(|(k, v)| (k.to_string(), metrics::percentile(v, 0.5).into())).collect::<serde_json::Map<_, _>>(),
        "tokens": {
            "prompt": mine.iter().map(|d| d.prompt_tokens).sum::<u64>(),
            "completion": mine.iter().map(|d| d.completion_tokens).sum::<u64>(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_bad_rows_say_why() {
        let row = parse_row(r#"{"id": 7, "user": "u1", "input": "Which tag?", "output": "comedy"}"#, 1).unwrap();
        assert_eq!((row.id.as_str(), row.user.as_str(), row.output.as_str()), ("7", "u1", "comedy"));
        for (line, why) in [
            (r#"{"user": "u", "input": "x", "output": "y"}"#, "`id` is missing"),
            (r#"{"id": "1", "user": "u", "input": 3, "output": "y"}"#, "`input` must be a string or an object"),
            (r#"{"id": "1", "user": "u", "input": "x", "output": "y", "extra": 1}"#, "unknown field `extra`"),
            (r#"{"id": "1", "user": "u", "input": "x", "output": "y", "profile": [{"id": "a"}]}"#, "profile item 1"),
            (r#"[1]"#, "a row is a JSON object"),
            (r#"{"id": "1""#, "not JSON"),
        ] {
            let err = parse_row(line, 3).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn metrics_default_from_the_gold_outputs() {
        let rows = |outs: &[&str]| -> Vec<Row> {
            outs.iter()
                .enumerate()
                .map(|(i, o)| Row {
                    id: i.to_string(),
                    user: "u".into(),
                    input: "x".into(),
                    profile: None,
                    output: (*o).into(),
                    line: i + 1,
                })
                .collect()
        };
        assert_eq!(default_metrics(&rows(&["1", "5", " 3 "])), [Metric::Mae, Metric::Rmse]);
        assert_eq!(default_metrics(&rows(&["comedy", "action", "sci-fi"])), [Metric::Accuracy, Metric::MacroF1]);
        assert_eq!(
            default_metrics(&rows(&["A long headline about the city council vote", "x"])),
            [Metric::Rouge1, Metric::RougeL]
        );
    }
}
