//! Plugins as commands meet them: which directories to load (`--plugins`, else
//! `TAILOR_PLUGINS`), the catalog of built-in and installed plugins, one component loaded as the
//! host loads it, and how a failed load is reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;
use tailor_engine::host::{LoadError, Plugin, PluginHost};
use tailor_engine::registry::{Catalog, RegistryError, load_catalog};

/// The environment variable naming plugin directories when no `--plugins` is given.
pub const PLUGINS_ENV: &str = "TAILOR_PLUGINS";

/// The plugin directories: those given with `--plugins`, or else those in `TAILOR_PLUGINS`
/// (separated like `PATH`: `:` on Unix), empty entries skipped. Flags replace the variable rather
/// than add to it, so that a command line says everything it loads.
pub fn dirs(flags: &[PathBuf]) -> Vec<PathBuf> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    match std::env::var_os(PLUGINS_ENV) {
        Some(value) => std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect(),
        None => Vec::new(),
    }
}

/// The built-in plugins and every `*.wasm` in `dirs`, with the files that failed to load. Fails
/// only when the built-ins themselves do not load.
pub fn catalog(dirs: &[PathBuf]) -> anyhow::Result<(Arc<Catalog>, Vec<RegistryError>)> {
    load_catalog(dirs).context("loading the built-in plugins")
}

/// A plugin file that failed to load, for JSON output.
#[derive(Serialize)]
pub struct JsonLoadFailure {
    pub file: Option<String>,
    pub message: String,
}

impl JsonLoadFailure {
    pub fn new(failure: &RegistryError) -> Self {
        let (file, message) = match failure {
            RegistryError::Load { path, source } => (Some(path), one_line(&source.to_string())),
            RegistryError::Io { path, message } => (Some(path), message.clone()),
            RegistryError::ReservedName { path, name } => {
                (Some(path), format!("plugin `{name}` may not use the `builtin:` prefix"))
            }
            RegistryError::Builtin { .. } => (None, failure.to_string()),
        };
        JsonLoadFailure { file: file.map(|p| p.display().to_string()), message }
    }
}

/// A load failure as a line for people.
pub fn human_failure(failure: &RegistryError) -> String {
    format!("error: cannot load plugin {}", one_line(&failure.to_string()))
}

/// An error message on one line: wasmtime's parse errors spread byte arrays over many.
pub fn one_line(message: &str) -> String {
    let joined = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    joined.replace("[ ", "[").replace(", ]", "]")
}

/// Loads a component's bytes as the host does (compile, ABI check, pre-link, `describe()`). The
/// outer error means the host itself could not be set up; the inner one is the component's fault.
pub fn load_component(wasm: &[u8]) -> anyhow::Result<Result<Plugin, LoadError>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting a runtime")?;
    runtime.block_on(async {
        let host = PluginHost::new().context("setting up the plugin host")?;
        Ok(host.load(wasm).await)
    })
}

/// Reads a component file; an unreadable file is the command's failure, not the file's.
pub fn read_component(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_joined_onto_one_line() {
        assert_eq!(
            one_line("bad magic - expected=[\n    0x0,\n    0x61,\n] (at 0)"),
            "bad magic - expected=[0x0, 0x61] (at 0)"
        );
        assert_eq!(one_line("plain"), "plain");
    }
}
