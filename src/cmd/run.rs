//! `tailor run PIPELINE --user U --input k=v`: run a pipeline for one user of the store and
//! print its output; `--explain` shows what every stage was given, what it returned, and when.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tailor_dsl::check::check_file;
use tailor_dsl::ir::Pipeline;
use tailor_dsl::types::{Type, Value, to_json};
use tailor_engine::exec::{Loaded, Outcome as StageOutcome, RunReport, RunRequest, StageReport, bind_inputs};
use tailor_engine::host::json_to_value;

use crate::local::{LlmChoice, Local};
use crate::{Format, Outcome, files, report};

pub struct Run<'a> {
    pub file: &'a Path,
    pub pipeline: Option<&'a str>,
    pub user: &'a str,
    pub tenant: &'a str,
    pub store: &'a Path,
    pub inputs: &'a [String],
    pub input_json: Option<&'a str>,
    pub llm: LlmChoice,
    pub plugin_dirs: &'a [PathBuf],
    pub explain: bool,
    pub format: Format,
    pub timeout: Option<Duration>,
}

pub fn run(args: Run<'_>) -> anyhow::Result<Outcome> {
    let file = files::read(args.file)?;
    let store = crate::local::Local::open_store(args.store)?;
    let local = Local::open(Arc::clone(&store), args.plugin_dirs, &args.llm, true)?;
    let catalog = local.registry.snapshot();
    let checked = check_file(&file, &*catalog);
    for d in &checked.diagnostics {
        eprintln!("{}", report::human(d, &file));
    }
    if checked.has_errors() {
        return Ok(Outcome::ConfigErrors);
    }
    let pipeline = choose(checked.pipelines, args.pipeline, file.name())?;
    let given = parse_inputs(&pipeline, args.inputs, args.input_json)?;
    let inputs = bind_inputs(&pipeline, &given).map_err(anyhow::Error::msg)?;
    let loaded = Loaded::new(pipeline);
    let history_version = local.runtime.block_on(store.history_version(args.tenant, args.user))?;
    let request = RunRequest {
        loaded,
        catalog,
        tenant: args.tenant.to_owned(),
        user: args.user.to_owned(),
        inputs,
        services: local.services.clone(),
        history_version,
        request_id: format!("cli-{}", std::process::id()),
        deadline: args.timeout.map(|t| std::time::Instant::now() + t),

        wrap_complete: None,
    };
    match local.runtime.block_on(local.executor.run(request)) {
        Ok(done) => {
            print_run(&done, args.format, args.explain);
            Ok(Outcome::Ok)
        }
        Err(failure) => {
            if args.explain {
                explain(&failure.stages);
            }
            eprintln!("error: {}", failure.error);
            Ok(Outcome::Failed)
        }
    }
}

/// The pipeline named `name`, or the only one in the file.
pub fn choose(pipelines: Vec<Pipeline>, name: Option<&str>, file: &str) -> anyhow::Result<Pipeline> {
    let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
    match name {
        Some(name) => pipelines
            .into_iter()
            .find(|p| p.name == name)
            .with_context(|| format!("{file} has no pipeline `{name}` (it has: {})", names.join(", "))),
        None if pipelines.len() == 1 => Ok(pipelines.into_iter().next().expect("one pipeline")),
        None => bail!("{file} holds {} pipelines; pick one with --pipeline ({})", names.len(), names.join(", ")),
    }
}

/// `--input name=value` (the value read as the input's type) and `--input-json '{…}'`.
fn parse_inputs(pipeline: &Pipeline, pairs: &[String], json: Option<&str>) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut given = BTreeMap::new();
    if let Some(json) = json {
        match json_to_value(json).map_err(|e| anyhow::anyhow!("--input-json: {e}"))? {
            Value::Record(map) => {
                for (k, v) in map.iter() {
                    given.insert(k.to_string(), v.clone());
                }
            }
            other => bail!("--input-json must be a JSON object, not {}", other.kind_name()),
        }
    }
    for pair in pairs {
        let (name, text) = pair.split_once('=').with_context(|| format!("--input {pair:?}: expected NAME=VALUE"))?;
        let ty = pipeline.inputs.iter().find(|i| i.name == name).map(|i| &i.ty);
        let value = match ty {
            Some(Type::Number) => Value::Number(
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .with_context(|| format!("--input {name}: {text:?} is not a number"))?,
            ),
            Some(Type::Bool) => Value::Bool(match text.trim() {
                "true" => true,
                "false" => false,
                _ => bail!("--input {name}: {text:?} is not true or false"),
            }),
            Some(Type::Text) | None => Value::text(text),
            Some(_) => json_to_value(text).map_err(|e| anyhow::anyhow!("--input {name}: {e} (give JSON)"))?,
        };
        given.insert(name.to_owned(), value);
    }
    Ok(given)
}

fn print_run(done: &RunReport, format: Format, explain_stages: bool) {
    match format {
        Format::Json => {
            let mut out = serde_json::json!({
                "output": serde_json::from_str::<serde_json::Value>(&to_json(&done.output)).unwrap_or_default(),
                "elapsed_ms": done.elapsed.as_secs_f64() * 1e3,
            });
            if explain_stages {
                out["stages"] = done.stages.iter().map(stage_json).collect();
            }
            println!("{out}");
        }
        Format::Human => {
            if explain_stages {
                explain(&done.stages);
                println!("output ({:.1} ms):", done.elapsed.as_secs_f64() * 1e3);
            }
            match &done.output {
                Value::Text(t) => println!("{t}"),
                other => println!("{}", to_json(other)),
            }
        }
    }
}

fn stage_json(s: &StageReport) -> serde_json::Value {
    let values = |vs: &[(String, Value)]| -> serde_json::Value {
        vs.iter()
            .map(|(k, v)| (k.clone(), serde_json::from_str::<serde_json::Value>(&to_json(v)).unwrap_or_default()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let error = match &s.outcome {
        StageOutcome::Recovered { error } | StageOutcome::Failed { error } => Some(error.clone()),
        _ => None,
    };
    serde_json::json!({
        "stage": s.label,
        "plugin": format!("{}@{}", s.plugin, s.version),
        "outcome": s.outcome.as_str(),
        "error": error,
        "started_ms": s.started.as_secs_f64() * 1e3,
        "elapsed_ms": s.elapsed.as_secs_f64() * 1e3,
        "inputs": values(&s.inputs),
        "outputs": values(&s.outputs),
        "logs": s.logs.iter().map(|l| format!("{:?}: {}", l.level, l.message)).collect::<Vec<_>>(),
    })
}

/// Each stage: what it was given, what it returned, how it ended and when.
pub fn explain(stages: &[StageReport]) {
    for s in stages {
        println!(
            "stage {} ({}@{}): {} at +{:.1} ms, took {:.1} ms",
            s.label,
            s.plugin,
            s.version,
            s.outcome.as_str(),
            s.started.as_secs_f64() * 1e3,
            s.elapsed.as_secs_f64() * 1e3
        );
        if let StageOutcome::Recovered { error } | StageOutcome::Failed { error } = &s.outcome {
            println!("  error: {error}");
        }
        for (name, v) in &s.inputs {
            println!("  in  {name} = {}", shorten(v));
        }
        for (name, v) in &s.outputs {
            println!("  out {name} = {}", shorten(v));
        }
        for l in &s.logs {
            println!("  log {:?}: {}", l.level, l.message);
        }
    }
}

/// A value on one line, cut at 160 characters.
fn shorten(v: &Value) -> String {
    let text = match v {
        Value::Text(t) => format!("{:?}", &**t),
        Value::List(items) => {
            let shown: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::Item(item) => format!("[{}] {:?}", item.id, &*item.text),
                    other => to_json(other),
                })
                .collect();
            format!("({} items) {}", items.len(), shown.join("; "))
        }
        other => to_json(other),
    };
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
