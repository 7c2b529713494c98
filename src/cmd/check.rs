//! `tailor check`: every problem in every file, at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use tailor_dsl::check::check_file;
use tailor_dsl::diagnostic::{Diagnostic, NameKind, Problem};

use crate::plugins::{self, JsonLoadFailure};
use crate::report::{self, JsonDiagnostic};
use crate::{Format, Outcome, files};

#[derive(Serialize)]
struct JsonOutput {
    files: usize,
    pipelines: usize,
    /// Diagnostics and plugin files that failed to load.
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
    /// Plugin files (from `--plugins` or `TAILOR_PLUGINS`) that failed to load.
    plugin_failures: Vec<JsonLoadFailure>,
}

pub fn run(paths: &[PathBuf], format: Format, plugin_dirs: &[PathBuf]) -> anyhow::Result<Outcome> {
    let paths = files::collect(paths)?;
    let (registry, failures) = plugins::catalog(plugin_dirs)?;
    let mut out = JsonOutput {
        files: paths.len(),
        pipelines: 0,
        errors: failures.len(),
        warnings: 0,
        diagnostics: Vec::new(),
        plugin_failures: Vec::new(),
    };
    for failure in &failures {
        match format {
            Format::Human => eprintln!("{}", plugins::human_failure(failure)),
            Format::Json => out.plugin_failures.push(JsonLoadFailure::new(failure)),
        }
    }
    // Pipelines are served by name: a name must be unique across every file checked together.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for path in &paths {
        let file = files::read(path)?;
        let mut checked = check_file(&file, &*registry);
        for p in checked.pipelines.clone() {
            if let Some(other) = names.insert(p.name.clone(), file.name().to_string()) {
                checked.diagnostics.push(
                    Diagnostic::error(Problem::Duplicate { kind: NameKind::Pipeline, name: p.name.clone() }, p.loc)
                        .with_label(format!("also defined in {other}")),
                );
            }
        }
        out.pipelines += checked.pipelines.len();
        for d in &checked.diagnostics {
            if d.is_error() {
                out.errors += 1;
            } else {
                out.warnings += 1;
            }
            match format {
                Format::Human => eprintln!("{}", report::human(d, &file)),
                Format::Json => out.diagnostics.push(report::json(d, &file)),
            }
        }
    }
    match format {
        Format::Human => eprintln!(
            "checked {} file(s): {} pipeline(s), {} error(s), {} warning(s)",
            out.files, out.pipelines, out.errors, out.warnings
        ),
        Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(if out.errors > 0 { Outcome::ConfigErrors } else { Outcome::Ok })
}
