//! `tailor models pull|list|verify`: the model weights Tailor uses, fetched once with pip into the model
//! directory and verified there (`tailor_kernels::models` does the work).

use anyhow::Context as _;
use serde::Serialize;
use tailor_kernels::models::{self, ModelCache, ModelSpec};

use crate::{Format, Outcome};

/// The models named, or the whole catalogue when none is. Names were checked by clap against the
/// catalogue.
fn selected(names: &[String]) -> Vec<&'static ModelSpec> {
    if names.is_empty() {
        return models::CATALOGUE.to_vec();
    }
    let mut specs: Vec<&'static ModelSpec> = Vec::new();
    for name in names {
        let spec = models::find(name).expect("invariant: clap checked model names against the catalogue");
        if !specs.iter().any(|known| known.name == spec.name) {
            specs.push(spec);
        }
    }
    specs
}

fn cache() -> anyhow::Result<ModelCache> {
    ModelCache::from_env().context("finding the model directory")
}

/// Installs each model that is not installed and verified already; each failure is reported and the
/// others still pulled.
pub fn pull(names: &[String]) -> anyhow::Result<Outcome> {
    each(names, "ready in", |cache, spec| cache.ensure(spec))
}

/// Hashes each installed model's files again.
pub fn verify(names: &[String]) -> anyhow::Result<Outcome> {
    each(names, "verified in", |cache, spec| cache.verify(spec))
}

/// Runs `action` on each selected model, printing `<name>: <done> <dir>` for each that succeeds.
fn each(
    names: &[String],
    done: &str,
    action: impl Fn(&ModelCache, &ModelSpec) -> Result<models::ModelFiles, models::ModelError>,
) -> anyhow::Result<Outcome> {
    let cache = cache()?;
    let mut outcome = Outcome::Ok;
    for spec in selected(names) {
        match action(&cache, spec) {
            Ok(files) => println!("{}: {done} {}", spec.name, files.dir().display()),
            Err(e) => {
                eprintln!("error: {:#}", anyhow::Error::new(e));
                outcome = Outcome::Failed;
            }
        }
    }
    Ok(outcome)
}

#[derive(Serialize)]
struct JsonList {
    model_dir: String,
    models: Vec<JsonModel>,
}

#[derive(Serialize)]
struct JsonModel {
    name: &'static str,
    package: &'static str,
    version: &'static str,
    /// `installed`, `unverified`, `damaged` or `missing`.
    status: &'static str,
    path: String,
    /// What its files take once installed.
    bytes: u64,
    files: Vec<JsonFile>,
}

#[derive(Serialize)]
struct JsonFile {
    name: &'static str,
    sha256: &'static str,
    bytes: u64,
}

pub fn list(format: Format) -> anyhow::Result<Outcome> {
    let cache = cache()?;
    let list: Vec<JsonModel> = cache
        .list()
        .into_iter()
        .map(|entry| JsonModel {
            name: entry.spec.name,
            package: entry.spec.package,
            version: entry.spec.version,
            status: entry.status.as_str(),
            path: entry.dir.display().to_string(),
            bytes: entry.spec.size(),
            files: entry
                .spec
                .files
                .iter()
                .map(|file| JsonFile { name: file.name, sha256: file.sha256, bytes: file.size })
                .collect(),
        })
        .collect();
    match format {
        Format::Human => {
            let rows: Vec<[String; 5]> = list
                .iter()
                .map(|m| {
                    let size = format!("{:.1} MiB", m.bytes as f64 / f64::from(1 << 20));
                    [
                        m.name.to_owned(),
                        format!("{}=={}", m.package, m.version),
                        m.status.to_owned(),
                        size,
                        m.path.clone(),
                    ]
                })
                .collect();
            let width = |column: usize| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0);
            let (name_w, package_w, status_w, size_w) = (width(0), width(1), width(2), width(3));
            for [name, package, status, size, path] in &rows {
                println!("{name:name_w$}  {package:package_w$}  {status:status_w$}  {size:>size_w$}  {path}");
            }
        }
        Format::Json => {
            let out = JsonList { model_dir: cache.root().display().to_string(), models: list };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(Outcome::Ok)
}
