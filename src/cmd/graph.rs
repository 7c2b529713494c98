//! `tailor graph`: draw a checked pipeline as DOT or Mermaid.

use std::path::{Path, PathBuf};

use tailor_dsl::check::check_file;
use tailor_dsl::render::{to_dot, to_mermaid};

use crate::{GraphFormat, Outcome, files, plugins, report};

pub fn run(
    path: &Path,
    format: GraphFormat,
    pipeline: Option<&str>,
    plugin_dirs: &[PathBuf],
) -> anyhow::Result<Outcome> {
    let file = files::read(path)?;
    let (registry, failures) = plugins::catalog(plugin_dirs)?;
    // Reported, but the drawing goes on: the pipeline may not use the plugin that failed (if it
    // does, checking it fails below).
    for failure in &failures {
        eprintln!("{}", plugins::human_failure(failure));
    }
    let checked = check_file(&file, &*registry);
    for d in &checked.diagnostics {
        eprintln!("{}", report::human(d, &file));
    }
    if checked.has_errors() {
        return Ok(Outcome::ConfigErrors);
    }
    let names: Vec<&str> = checked.pipelines.iter().map(|p| p.name.as_str()).collect();
    let chosen = match (pipeline, checked.pipelines.as_slice()) {
        (Some(name), all) => all.iter().find(|p| p.name == name),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    let Some(p) = chosen else {
        match pipeline {
            Some(name) => eprintln!("error: {} has no pipeline `{name}` (it has: {})", file.name(), names.join(", ")),
            None => eprintln!(
                "error: {} holds {} pipelines; pick one with --pipeline ({})",
                file.name(),
                names.len(),
                names.join(", ")
            ),
        }
        return Ok(Outcome::Failed);
    };
    print!(
        "{}",
        match format {
            GraphFormat::Dot => to_dot(p),
            GraphFormat::Mermaid => to_mermaid(p),
        }
    );
    Ok(Outcome::Ok)
}
