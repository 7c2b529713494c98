//! `tailor plugin list`: the plugins a pipeline can use, built-in and installed, and the plugin
//! files that failed to load.

use std::path::PathBuf;

use serde::Serialize;
use tailor_engine::registry::Origin;

use crate::plugins::{self, JsonLoadFailure};
use crate::{Format, Outcome};

#[derive(Serialize)]
struct JsonList {
    plugins: Vec<JsonPlugin>,
    failures: Vec<JsonLoadFailure>,
}

#[derive(Serialize)]
struct JsonPlugin {
    name: String,
    version: String,
    kind: &'static str,
    /// `builtin`, or the file the plugin was loaded from.
    origin: String,
    summary: String,
}

pub fn run(dirs: &[PathBuf], format: Format) -> anyhow::Result<Outcome> {
    let (catalog, failures) = plugins::catalog(dirs)?;
    let list: Vec<JsonPlugin> = catalog
        .iter()
        .map(|entry| {
            let d = entry.descriptor();
            JsonPlugin {
                name: d.name.clone(),
                version: d.version.to_string(),
                kind: d.kind.as_str(),
                origin: match &entry.origin {
                    Origin::Builtin => "builtin".into(),
                    Origin::File(path) => path.display().to_string(),
                },
                summary: d.summary.clone(),
            }
        })
        .collect();
    match format {
        Format::Human => {
            let width = |f: fn(&JsonPlugin) -> usize| list.iter().map(f).max().unwrap_or(0);
            let (name_w, version_w, kind_w) =
                (width(|p| p.name.chars().count()), width(|p| p.version.len()), width(|p| p.kind.len()));
            for p in &list {
                println!("{:name_w$}  {:version_w$}  {:kind_w$}  {}", p.name, p.version, p.kind, p.origin);
            }
            for failure in &failures {
                eprintln!("{}", plugins::human_failure(failure));
            }
        }
        Format::Json => {
            let out = JsonList { plugins: list, failures: failures.iter().map(JsonLoadFailure::new).collect() };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(if failures.is_empty() { Outcome::Ok } else { Outcome::ConfigErrors })
}
