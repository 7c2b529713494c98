//! `tailor check`: every problem in every file, at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use tailor_dsl::check::check_file;
use tailor_dsl::diagnostic::{Diagnostic, NameKind, Problem};

use crate::report::{self, JsonDiagnostic};
use crate::{Format, Outcome, files};

#[derive(Serialize)]
struct JsonOutput {
    files: usize,
    pipelines: usize,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

pub fn run(paths: &[PathBuf], format: Format) -> anyhow::Result<Outcome> {
    let (registry, _) = tailor_engine::registry::load_catalog(&[])?;
    let paths = files::collect(paths)?;
    let mut out = JsonOutput { files: paths.len(), pipelines: 0, errors: 0, warnings: 0, diagnostics: Vec::new() };
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
