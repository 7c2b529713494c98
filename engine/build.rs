//! Builds the plugins workspace (`plugins/`: the built-in plugins and the test plugins) and the
//! example third-party plugins (`examples/plugins/*/`, each a workspace of its own, as a user's
//! plugin would be) for `wasm32-wasip2`, so that `cargo build` and `cargo test` need no extra
//! step. The components land in `<target>/wasm-plugins/wasm32-wasip2/release/`, exported to the
//! crate as `TAILOR_PLUGIN_DIR`; the built-ins are embedded in the binary from there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins = manifest.join("../plugins");
    for watched in ["wit", "sdk", "pii", "builtin", "testing", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    // Each example's sources, not `examples/plugins/` itself: a directory is watched recursively,
    // and the examples' own `target/` and built `.wasm` files would rerun this on every build.
    // So a newly added example is picked up at the next change to any watched path.
    let examples = example_plugins(&manifest.join("../examples/plugins"));
    for example in &examples {
        for watched in ["src", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", example.join(watched).display());
        }
    }
    println!("cargo:rerun-if-env-changed=TAILOR_PLUGINS_TARGET_DIR");

    // A target directory of its own: the outer cargo holds a lock on its own.
    let target_dir = match std::env::var_os("TAILOR_PLUGINS_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => outer_target_dir().join("wasm-plugins"),
    };
    build_wasm(&plugins, &target_dir);
    for example in &examples {
        build_wasm(example, &target_dir);
    }
    let dir = target_dir.join("wasm32-wasip2/release");
    println!("cargo:rustc-env=TAILOR_PLUGIN_DIR={}", dir.display());
}

/// The crates under `examples/plugins/`, sorted; none if the directory is absent.
fn example_plugins(dir: &Path) -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    crates.retain(|c| c.join("Cargo.toml").is_file());
    crates.sort();
    crates
}

/// Builds the workspace at `workspace` for `wasm32-wasip2`, in release, into `target_dir`.
fn build_wasm(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace);
    // The outer build's settings are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cargo runs");
    if !status.success() {
        panic!(
            "building {} for wasm32-wasip2 failed; if the target is missing, run \
             `rustup target add wasm32-wasip2` (`make test` and `make demo` do it for you)",
            workspace.display()
        );
    }
}

/// `<target>` from `<target>/<profile>/build/<crate>-<hash>/out`.
fn outer_target_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    out.ancestors().nth(4).map(Path::to_path_buf).unwrap_or(out)
}
