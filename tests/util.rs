//! Helpers: run the real binary from the repository root or elsewhere, read examples, make
//! temporary directories, find the components the build made.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root (where `Cargo.toml` of the `tailor` package is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tailor ARGS…` in the repository root, without colour.
pub fn tailor(args: &[&str]) -> Output {
    tailor_with_stdin(args, None)
}

pub fn tailor_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    tailor_at(&root(), args, stdin, &[])
}

/// Runs `tailor ARGS…` in `dir`, without colour, with `env` set on top of this process's
/// environment (less the variables that would make the test depend on the caller's).
pub fn tailor_at(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &OsStr)]) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tailor"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1").env_remove("TAILOR_PLUGINS").env_remove("TAILOR_SDK");
    cmd.envs(env.iter().copied());
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
        // `tailor.kdl` is the example daemon configuration, not a pipeline.
        .filter(|p| p.extension().is_some_and(|e| e == "kdl") && !p.ends_with("tailor.kdl"))
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

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tailor-{label}-{}-{n}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as the binary is given it.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Where the engine's build script put the components it built: the built-in, test and example
/// plugins.
pub fn built_plugin_dir() -> PathBuf {
    PathBuf::from(tailor_engine::host::BUILT_PLUGIN_DIR)
}

/// A cargo target directory shared by the tests that build plugin crates, kept between runs so
/// that the SDK is compiled for wasm once: `plugin-tests` in this build's target directory (the
/// binary is `<target>[/<triple>]/debug/tailor`).
pub fn plugin_build_target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tailor"));
    bin.ancestors().nth(2).expect("invariant: the binary is in <target>/<profile>/").join("plugin-tests")
}
