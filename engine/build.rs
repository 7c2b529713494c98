//! Builds the plugins workspace (`plugins/`: the built-in plugins and the test plugins) for
//! `wasm32-wasip2`, so that `cargo build` and `cargo test` need no extra step. The components
//! land in `<target>/wasm-plugins/wasm32-wasip2/release/`, exported to the crate as
//! `TAILOR_PLUGIN_DIR`; the built-ins are embedded in the binary from there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins = manifest.join("../plugins");
    for watched in ["wit", "sdk", "builtin", "testing", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=TAILOR_PLUGINS_TARGET_DIR");

    // A target directory of its own: the outer cargo holds a lock on its own.
    let target_dir = match std::env::var_os("TAILOR_PLUGINS_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => outer_target_dir().join("wasm-plugins"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&plugins);
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
            "building the plugins for wasm32-wasip2 failed; if the target is missing, run \
             `rustup target add wasm32-wasip2` (`make test` and `make demo` do it for you)"
        );
    }
    let dir = target_dir.join("wasm32-wasip2/release");
    println!("cargo:rustc-env=TAILOR_PLUGIN_DIR={}", dir.display());
}

/// `<target>` from `<target>/<profile>/build/<crate>-<hash>/out`.
fn outer_target_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    out.ancestors().nth(4).map(Path::to_path_buf).unwrap_or(out)
}
