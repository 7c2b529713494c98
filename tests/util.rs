//! Helpers: run the real binary from the repository root, read examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `Cargo.toml` of the `tailor` package is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tailor ARGS…` in the repository root, without colour.
pub fn tailor(args: &[&str]) -> Output {
    tailor_with_stdin(args, None)
}

pub fn tailor_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tailor"));
    cmd.args(args).current_dir(root()).env("NO_COLOR", "1");
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the tailor binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).expect("stdin accepts the input");
    }
    drop(pipe);
    child.wait_with_output().expect("the tailor binary finishes")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every example pipeline file, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("examples/ is readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "at least four example pipelines");
    files
}

/// The path relative to the repository root, as the binary is given it.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// Checks a source in process with the built-in registry.
pub fn check(name: &str, text: &str) -> tailor_dsl::check::Checked {
    let file = tailor_dsl::span::SourceFile::new(name, text);
    static REGISTRY: std::sync::OnceLock<std::sync::Arc<tailor_engine::registry::Catalog>> = std::sync::OnceLock::new();
    let registry =
        REGISTRY.get_or_init(|| tailor_engine::registry::load_catalog(&[]).expect("built-in plugins load").0);
    tailor_dsl::check::check_file(&file, &**registry)
}
