//! `tailor plugin build`: `cargo build --release --target wasm32-wasip2` in a plugin crate, then
//! the component copied next to the crate's manifest as `<package>.wasm` and loaded as the host
//! would load it, so that a broken plugin shows here rather than in a pipeline.
//!
//! The component is found from `cargo metadata`: the `cdylib` targets of the crate (or of every
//! member, for a virtual workspace) under the workspace's target directory, which honours
//! `CARGO_TARGET_DIR` and cargo's config.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::{Outcome, plugins};

const TARGET: &str = "wasm32-wasip2";

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

/// One component the build produces.
struct Component {
    package: String,
    /// `<target>/wasm32-wasip2/release/<lib>.wasm`.
    built: PathBuf,
}

pub fn run(dir: &Path) -> anyhow::Result<Outcome> {
    if !dir.join("Cargo.toml").is_file() {
        bail!("{} has no Cargo.toml; create a plugin crate with `tailor plugin new NAME`", dir.display());
    }
    // Cargo runs in the crate's directory, so that its toolchain file and cargo config apply.
    let root = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let manifest = root.join("Cargo.toml");
    let components = components(&manifest, &root)?;
    check_target_installed(&root)?;
    let status = Command::new(cargo())
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .current_dir(&root)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build failed in {} (its errors are above)", dir.display());
    }
    let mut outcome = Outcome::Ok;
    for component in components {
        let name = format!("{}.wasm", component.package);
        // As the user named the directory: `demo.wasm`, not `./demo.wasm`.
        let copy = if dir == Path::new(".") { PathBuf::from(&name) } else { dir.join(&name) };
        std::fs::copy(&component.built, root.join(&name))
            .with_context(|| format!("copying {} to {}", component.built.display(), copy.display()))?;
        let wasm = plugins::read_component(&copy)?;
        match plugins::load_component(&wasm)? {
            Ok(plugin) => println!("built {}", super::inspect::summary(&copy, wasm.len(), &plugin)),
            Err(e) => {
                eprintln!("error: {}: {}", copy.display(), plugins::one_line(&e.to_string()));
                outcome = Outcome::ConfigErrors;
            }
        }
    }
    Ok(outcome)
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The components that building `manifest` produces.
fn components(manifest: &Path, dir: &Path) -> anyhow::Result<Vec<Component>> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(manifest)
        .current_dir(dir)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed for {}:\n{}", manifest.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    // A package's own manifest builds that package; a virtual manifest builds every member.
    let own: Vec<&Package> =
        metadata.packages.iter().filter(|p| p.manifest_path.canonicalize().is_ok_and(|m| m == manifest)).collect();
    let packages = if own.is_empty() { metadata.packages.iter().collect() } else { own };
    let release = metadata.target_directory.join(TARGET).join("release");
    let components: Vec<Component> = packages
        .into_iter()
        .flat_map(|p| {
            p.targets.iter().filter(|t| t.crate_types.iter().any(|c| c == "cdylib")).map(|t| Component {
                package: p.name.clone(),
                built: release.join(format!("{}.wasm", t.name.replace('-', "_"))),
            })
        })
        .collect();
    if components.is_empty() {
        bail!(
            "{} builds no component: a plugin crate needs `crate-type = [\"cdylib\"]` in its `[lib]` section",
            manifest.display()
        );
    }
    Ok(components)
}

/// Fails with the fix when the toolchain that builds in `dir` lacks the wasm target; cargo's
/// own message for that ("can't find crate for `core`") does not say what to do.
fn check_target_installed(dir: &Path) -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {}", rustc.to_string_lossy()))?;
    if !output.status.success() {
        bail!("`rustc --print sysroot` failed:\n{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        bail!("the Rust target {TARGET} is not installed; run `rustup target add {TARGET}` and build again");
    }
    Ok(())
}
