//! Finding and reading pipeline files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tailor_dsl::span::SourceFile;

/// Expands directories into the `*.kdl` files below them (sorted; hidden directories, `target`
/// and `plugins` skipped: a `plugins` directory holds plugin crates and components, whose own
/// example pipelines are checked against the plugin, not with everything else; `tailor.kdl`, a
/// daemon configuration, skipped too); files and the directories given are taken as given.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out).with_context(|| format!("reading directory {}", path.display()))?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "plugins" {
                walk(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "kdl") && name != tailor_engine::daemon::reload::DAEMON_CONFIG {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file as a source, with the path as given as its name.
pub fn read(path: &Path) -> anyhow::Result<SourceFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(SourceFile::new(path.display().to_string(), text))
}
