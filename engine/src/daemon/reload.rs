//! What the daemon serves — one [`Generation`] of pipelines and plugins — and how a new one
//! replaces it (spec/daemon.md §4).
//!
//! A reload builds the next generation completely before anything changes: every plugin file
//! compiled and health-checked (unchanged files, by SHA-256, are reused), every pipeline file
//! checked against the new plugins. Only when all of it holds is the generation swapped in, in
//! one atomic step; on any failure the serving generation stays and the failure is reported.
//! A request takes the generation current when it starts and keeps it to its end, so requests
//! in flight finish on the version they started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::Digest as _;
use tailor_dsl::check::check_file;
use tailor_dsl::diagnostic::Severity;
use tailor_dsl::span::SourceFile;

use crate::exec::Loaded;
use crate::host::PluginHost;
use crate::registry::{Catalog, Entry, Origin};

/// A pipeline being served.
#[derive(Debug, Clone)]
pub struct Served {
    pub loaded: Loaded,
    pub file: PathBuf,
}

/// Everything served at one moment.
#[derive(Debug)]
pub struct Generation {
    /// Counts up from 1 with every applied reload.
    pub version: u64,
    pub catalog: Arc<Catalog>,
    pub pipelines: BTreeMap<String, Served>,
    /// The plugin files' compiled plugins, reused for files whose SHA-256 did not change.
    pub plugin_files: BTreeMap<PathBuf, Arc<Entry>>,
    pub loaded_at: SystemTime,
}

/// What caused a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Watch,
    Signal,
    Admin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    fn between<V>(old: &BTreeMap<String, V>, new: &BTreeMap<String, V>, same: impl Fn(&V, &V) -> bool) -> Changes {
        let mut c = Changes::default();
        for (name, v) in new {
            match old.get(name) {
                None => c.added.push(name.clone()),
                Some(o) if !same(o, v) => c.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        c.removed = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
        c
    }
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The new generation is served.
    Applied,
    /// Nothing changed; nothing was swapped.
    Unchanged,
    /// The new files failed; the previous generation keeps serving.
    RolledBack,
}

/// The report of one reload (the body of `POST /v1/admin/reload`).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub outcome: Status,
    pub trigger: Trigger,
    /// The generation served after the reload.
    pub version: u64,
    pub pipelines: Changes,
    pub plugins: Changes,
    /// Why the new files were refused, each with its file (and line and column).
    pub errors: Vec<String>,
    pub elapsed_ms: f64,
}

/// The serving generation and the one way to change it.
pub struct Reloader {
    host: Arc<PluginHost>,
    builtins: Arc<Catalog>,
    pipelines_dir: PathBuf,
    plugins_dir: Option<PathBuf>,
    current: ArcSwap<Generation>,
    /// One reload at a time.
    lock: tokio::sync::Mutex<()>,
    last: Mutex<Option<Outcome>>,
}

impl Reloader {
    /// Builds the first generation; fails when it does not build (the daemon does not start on
    /// broken files).
    pub async fn start(
        host: Arc<PluginHost>,
        builtins: Arc<Catalog>,
        pipelines_dir: PathBuf,
        plugins_dir: Option<PathBuf>,
    ) -> Result<Reloader, Vec<String>> {
        let empty = Generation {
            version: 0,
            catalog: Arc::clone(&builtins),
            pipelines: BTreeMap::new(),
            plugin_files: BTreeMap::new(),
            loaded_at: SystemTime::now(),
        };
        let first = build(&host, &builtins, &pipelines_dir, plugins_dir.as_deref(), &empty).await?;
        let first = Generation { version: 1, ..first };
        Ok(Reloader {
            host,
            builtins,
            pipelines_dir,
            plugins_dir,
            current: ArcSwap::from_pointee(first),
            lock: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
        })
    }

    /// The generation now; it does not change under the caller.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    pub fn last(&self) -> Option<Outcome> {
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.pipelines_dir.clone()).chain(self.plugins_dir.clone()).collect()
    }

    /// Reads the directories again and swaps in what they hold if all of it is valid.
    pub async fn reload(&self, trigger: Trigger) -> Outcome {
        let _one = self.lock.lock().await;
        let started = Instant::now();
        let old = self.current();
        let built = build(&self.host, &self.builtins, &self.pipelines_dir, self.plugins_dir.as_deref(), &old).await;
        let outcome = match built {
            Err(errors) => Outcome {
                outcome: Status::RolledBack,
                trigger,
                version: old.version,
                pipelines: Changes::default(),
                plugins: Changes::default(),
                errors,
                elapsed_ms: 0.0,
            },
            Ok(new) => {
                let pipelines = Changes::between(&old.pipelines, &new.pipelines, |a, b| {
                    a.loaded.fingerprint == b.loaded.fingerprint
                });
                let plugins = Changes::between(&plugin_shas(&old), &plugin_shas(&new), |a, b| a == b);
                if pipelines.is_empty() && plugins.is_empty() {
                    Outcome {
                        outcome: Status::Unchanged,
                        trigger,
                        version: old.version,
                        pipelines,
                        plugins,
                        errors: Vec::new(),
                        elapsed_ms: 0.0,
                    }
                } else {
                    let version = old.version + 1;
                    self.current.store(Arc::new(Generation { version, ..new }));
                    Outcome {
                        outcome: Status::Applied,
                        trigger,
                        version,
                        pipelines,
                        plugins,
                        errors: Vec::new(),
                        elapsed_ms: 0.0,
                    }
                }
            }
        };
        let outcome = Outcome { elapsed_ms: started.elapsed().as_secs_f64() * 1e3, ..outcome };
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome.clone());
        outcome
    }
}

/// `name@version` → SHA-256 of every plugin a generation serves.
fn plugin_shas(g: &Generation) -> BTreeMap<String, String> {
    g.catalog
        .iter()
        .map(|e| (format!("{}@{}", e.descriptor().name, e.descriptor().version), e.plugin.sha256().to_string()))
        .collect()
}

/// The next generation from the directories; `previous` lends its compiled plugins.
async fn build(
    host: &PluginHost,
    builtins: &Arc<Catalog>,
    pipelines_dir: &Path,
    plugins_dir: Option<&Path>,
    previous: &Generation,
) -> Result<Generation, Vec<String>> {
    let mut errors = Vec::new();
    let mut catalog = (**builtins).clone();
    let mut plugin_files = BTreeMap::new();
    if let Some(dir) = plugins_dir {
        match files_with(dir, "wasm", false) {
            Err(e) => errors.push(e),
            Ok(paths) => {
                for path in paths {
                    let wasm = match std::fs::read(&path) {
                        Ok(w) => w,
                        Err(e) => {
                            errors.push(format!("{}: {e}", path.display()));
                            continue;
                        }
                    };
                    let sha = crate::host::hex(&sha2::Sha256::digest(&wasm));
                    let entry = match previous.plugin_files.get(&path) {
                        Some(entry) if entry.plugin.sha256() == sha => Arc::clone(entry),
                        _ => match host.load(&wasm).await {
                            Ok(plugin) => Arc::new(Entry { plugin, origin: Origin::File(path.clone()) }),
                            Err(e) => {
                                errors.push(format!("{}: {e}", path.display()));
                                continue;
                            }
                        },
                    };
                    let d = entry.descriptor();
                    if d.name.starts_with("builtin:") {
                        errors.push(format!(
                            "{}: plugin `{}` may not use the `builtin:` prefix",
                            path.display(),
                            d.name
                        ));
                        continue;
                    }
                    if let Some(other) = catalog.get(&d.name, &d.version) {
                        let from = match &other.origin {
                            Origin::File(p) => p.display().to_string(),
                            Origin::Builtin => "the built-ins".into(),
                        };
                        errors.push(format!("{}: {}@{} is also in {from}", path.display(), d.name, d.version));
                        continue;
                    }
                    catalog = catalog.with(Arc::clone(&entry));
                    plugin_files.insert(path, entry);
                }
            }
        }
    }
    let catalog = Arc::new(catalog);
    let mut pipelines: BTreeMap<String, Served> = BTreeMap::new();
    match files_with(pipelines_dir, "kdl", true) {
        Err(e) => errors.push(e),
        Ok(paths) => {
            for path in paths {
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                let file = SourceFile::new(path.display().to_string(), text);
                let checked = check_file(&file, &*catalog);
                let mut bad = false;
                for d in checked.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
                    let (line, col) = file.line_col(d.loc.offset);
                    errors.push(format!("{}:{line}:{col}: {} [{}]", path.display(), d.problem, d.code()));
                    bad = true;
                }
                if bad {
                    continue;
                }
                for pipeline in checked.pipelines {
                    if let Some(other) = pipelines.get(&pipeline.name) {
                        errors.push(format!(
                            "{}: pipeline `{}` is also defined in {}",
                            path.display(),
                            pipeline.name,
                            other.file.display()
                        ));
                        continue;
                    }
                    let name = pipeline.name.clone();
                    pipelines.insert(name, Served { loaded: Loaded::new(pipeline), file: path.clone() });
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Generation { version: previous.version, catalog, pipelines, plugin_files, loaded_at: SystemTime::now() })
}

/// The daemon configuration's usual name; directory walks for pipeline files skip it.
pub const DAEMON_CONFIG: &str = "tailor.kdl";

/// The files ending in `.ext` in `dir` (below it too when `deep`), sorted; hidden entries skipped
/// (editors and deployments write temporary files there).
fn files_with(dir: &Path, ext: &str, deep: bool) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, ext: &str, deep: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
        entries.sort();
        for path in entries {
            // `tailor.kdl` is a daemon configuration, never a pipeline file.
            if path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.') || n == DAEMON_CONFIG) {
                continue;
            }
            if path.is_dir() {
                // As `tailor check DIR` walks: plugin crates and build output hold no pipelines.
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if deep && name != "plugins" && name != "target" {
                    walk(&path, ext, deep, out)?;
                }
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, ext, deep, &mut out).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(out)
}
