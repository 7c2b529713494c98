//! `tailor plugin new|build|inspect|list` and `--plugins`: a scaffolded plugin builds with one
//! command, loads and serves a pipeline; the example plugin's pipeline checks; broken components
//! are reported with exit 2.
//!
//! The scaffold test compiles the SDK for wasm in a target directory kept under `target/`
//! (`plugin-tests`), so only its first run pays for that.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use crate::util::{TempDir, built_plugin_dir, plugin_build_target_dir, stderr, stdout, tailor, tailor_at};

/// The settings a nested cargo gets: the shared target directory, no network (the SDK's
/// dependencies are in the local cache once the workspace has built), and none of the outer
/// build's host settings.
fn nested_cargo_env() -> Vec<(&'static str, std::ffi::OsString)> {
    vec![("CARGO_TARGET_DIR", plugin_build_target_dir().into_os_string()), ("CARGO_NET_OFFLINE", "true".into())]
}

fn env_refs<'a>(env: &'a [(&'static str, std::ffi::OsString)]) -> Vec<(&'static str, &'a OsStr)> {
    env.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(out), stderr(out));
}

/// A built-in plugin's component, as a file.
fn builtin_component(dir: &Path) -> std::path::PathBuf {
    let (_, wasm) = tailor_engine::registry::BUILTINS[0];
    let path = dir.join("retrieve.wasm");
    std::fs::write(&path, wasm).expect("write the component");
    path
}

#[test]
fn inspect_shows_identity_ports_config_grants_and_imports() {
    let tmp = TempDir::new("inspect");
    let path = builtin_component(tmp.path());
    let file = path.to_str().expect("UTF-8 path");

    let out = tailor(&["plugin", "inspect", file]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for expected in [
        "builtin:retrieve 0.1.0 (retriever)",
        "sha256",
        "tailor:plugin@0.1.0",
        "query",
        "choice bm25|dense|hybrid",
        "requires embed",
        "grants  search",
        "tailor:plugin/search@0.1.0",
        "wasi:cli/stderr@",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let out = tailor(&["plugin", "inspect", "--format", "json", file]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(json["name"], "builtin:retrieve");
    assert_eq!(json["kind"], "retriever");
    assert_eq!(json["abi"], "0.1.0");
    assert_eq!(json["size"], tailor_engine::registry::BUILTINS[0].1.len());
    assert_eq!(json["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(json["inputs"][0]["name"], "query");
    assert_eq!(json["inputs"][0]["required"], true);
    assert_eq!(json["grants"], serde_json::json!(["search"]));
    let k = json["config"].as_array().and_then(|c| c.iter().find(|f| f["name"] == "k")).expect("config key k");
    assert_eq!((&k["type"], &k["integer"], &k["default"]), (&"number".into(), &true.into(), &5.into()));
    let imports: Vec<&str> = json["imports"].as_array().expect("imports").iter().filter_map(|i| i.as_str()).collect();
    assert!(imports.contains(&"tailor:plugin/types@0.1.0"), "{imports:?}");
}

#[test]
fn inspect_rejects_broken_components_with_exit_2() {
    let tmp = TempDir::new("inspect-broken");
    let cases: [(&str, &[u8], &str); 2] = [
        ("garbage.wasm", b"this is not wasm", "not a valid component"),
        // A core module, not a component.
        ("core.wasm", b"\0asm\x01\0\0\0", "not a valid component"),
    ];
    for (name, bytes, expected) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let out = tailor(&["plugin", "inspect", path.to_str().expect("UTF-8 path")]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(name) && err.contains(expected), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(stdout(&out).is_empty());
    }
    let out = tailor(&["plugin", "inspect", "does-not-exist.wasm"]);
    assert_exit(&out, 1);
}

#[test]
fn new_crate_builds_with_one_command_loads_and_serves_its_pipeline() {
    let tmp = TempDir::new("scaffold");
    let env = nested_cargo_env();
    let out = tailor_at(tmp.path(), &["plugin", "new", "demo", "--kind", "retriever"], None, &[]);
    assert_exit(&out, 0);
    let demo = tmp.path().join("demo");
    for file in [".cargo/config.toml", ".gitignore", "Cargo.toml", "README.md", "pipeline.kdl", "src/lib.rs"] {
        assert!(demo.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(demo.join("Cargo.toml")).expect("Cargo.toml");
    let sdk = crate::util::root().join("plugins/sdk").canonicalize().expect("the SDK");
    assert!(manifest.contains(&format!("path = \"{}\"", sdk.display())), "{manifest}");

    // The one command a plugin author needs.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--release"]).current_dir(&demo).envs(env.iter().map(|(k, v)| (k, v)));
    for host_setting in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER"] {
        build.env_remove(host_setting);
    }
    let built = build.output().expect("cargo runs");
    assert!(built.status.success(), "cargo build --release:\n{}", String::from_utf8_lossy(&built.stderr));
    assert!(plugin_build_target_dir().join("wasm32-wasip2/release/demo.wasm").is_file());

    // `plugin build` finds the component, copies it next to the crate and loads it.
    let out = tailor_at(tmp.path(), &["plugin", "build", "demo"], None, &env_refs(&env));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("demo 0.1.0 (retriever)"), "{}", stdout(&out));
    let out = tailor_at(&demo, &["plugin", "inspect", "demo.wasm"], None, &[]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("re-ranks items"), "{}", stdout(&out));

    // The scaffold's pipeline checks once the plugin is installed, by flag or by variable.
    let out = tailor_at(&demo, &["check", "pipeline.kdl", "--plugins", "."], None, &[]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("0 error(s)"), "{}", stderr(&out));
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("dir");
    let dirs = std::env::join_paths([&elsewhere, &demo]).expect("joinable paths");
    let out = tailor_at(&demo, &["check", "pipeline.kdl"], None, &[("TAILOR_PLUGINS", &dirs)]);
    assert_exit(&out, 0);
    let out = tailor_at(&demo, &["check", "pipeline.kdl"], None, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown plugin `demo`"), "{}", stderr(&out));
    let out = tailor_at(&demo, &["plugin", "list", "--plugins", "."], None, &[]);
    assert_exit(&out, 0);
    assert!(stdout(&out).lines().any(|l| l.starts_with("demo ") && l.contains("retriever")), "{}", stdout(&out));
}

#[test]
fn new_refuses_bad_names_existing_directories_and_a_missing_sdk() {
    let tmp = TempDir::new("scaffold-refusals");
    for name in ["Demo", "my_plugin", "x-", "fn"] {
        let out = tailor_at(tmp.path(), &["plugin", "new", name], None, &[]);
        assert_exit(&out, 1);
        assert!(!tmp.path().join(name).exists(), "{name}");
    }
    std::fs::create_dir(tmp.path().join("taken")).expect("dir");
    let out = tailor_at(tmp.path(), &["plugin", "new", "taken"], None, &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = tailor_at(tmp.path(), &["plugin", "new", "x", "--sdk", "no-sdk-here"], None, &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("the plugin SDK is not at no-sdk-here"), "{}", stderr(&out));
    let out = tailor_at(tmp.path(), &["plugin", "new", "x"], None, &[("TAILOR_SDK", OsStr::new("nor-here"))]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("nor-here (from TAILOR_SDK)"), "{}", stderr(&out));
    assert!(!tmp.path().join("x").exists());

    let sdk = crate::util::root().join("plugins/sdk");
    let out = tailor_at(
        tmp.path(),
        &["plugin", "new", "y", "--kind", "judge", "--dir", "nested/y", "--sdk", sdk.to_str().expect("UTF-8")],
        None,
        &[],
    );
    assert_exit(&out, 0);
    let lib = std::fs::read_to_string(tmp.path().join("nested/y/src/lib.rs")).expect("lib.rs");
    assert!(lib.contains("StageKind::Judge") && lib.contains("pub struct Y;"), "{lib}");
}

#[cfg(unix)]
#[test]
fn build_says_how_to_install_a_missing_wasm_target() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = TempDir::new("no-target");
    let out = tailor_at(tmp.path(), &["plugin", "new", "demo"], None, &[]);
    assert_exit(&out, 0);
    // A rustc whose sysroot has no wasm32-wasip2 standard library.
    let rustc = tmp.path().join("rustc");
    std::fs::write(
        &rustc,
        "#!/bin/sh\nif [ \"$1\" = --print ] && [ \"$2\" = sysroot ]; then echo /no/sysroot; exit 0; fi\nexec rustc \"$@\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut env = nested_cargo_env();
    env.push(("RUSTC", rustc.into_os_string()));
    let out = tailor_at(tmp.path(), &["plugin", "build", "demo"], None, &env_refs(&env));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("rustup target add wasm32-wasip2"), "{}", stderr(&out));

    let out = tailor_at(tmp.path(), &["plugin", "build", "."], None, &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("has no Cargo.toml"), "{}", stderr(&out));
}

#[test]
fn recency_boost_example_checks_with_its_plugin() {
    let built = built_plugin_dir().join("recency_boost.wasm");
    assert!(built.is_file(), "the engine's build script builds examples/plugins/*: {}", built.display());
    // A directory with only this plugin: the build's own holds built-ins, which files may not replace.
    let tmp = TempDir::new("recency-boost");
    std::fs::copy(&built, tmp.path().join("recency-boost.wasm")).expect("copy");
    let pipeline = "examples/plugins/recency-boost/pipeline.kdl";

    let out = tailor(&["check", pipeline, "--plugins", tmp.arg()]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("1 pipeline(s), 0 error(s), 0 warning(s)"), "{}", stderr(&out));
    let out = tailor(&["check", pipeline]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown plugin `recency-boost`"), "{}", stderr(&out));
    let out = tailor(&["graph", pipeline, "--plugins", tmp.arg(), "--format", "mermaid"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("recency-boost (retriever)"), "{}", stdout(&out));
    assert_exit(&tailor(&["fmt", "--check", pipeline]), 0);

    let out = tailor(&["plugin", "inspect", "--format", "json", built.to_str().expect("UTF-8 path")]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(json["name"], "recency-boost");
    assert_eq!(json["grants"], serde_json::json!([]));
    let config = json["config"].as_array().expect("config");
    assert_eq!(config[0]["name"], "half-life");
    assert_eq!(config[0]["default"], 30.0 * 86_400.0);
    assert!(json["imports"].as_array().expect("imports").iter().any(|i| i == "tailor:plugin/now@0.1.0"));
}

#[test]
fn corrupt_plugin_files_are_reported_by_check_graph_and_list() {
    let tmp = TempDir::new("corrupt");
    std::fs::write(tmp.path().join("broken.wasm"), b"\0asm garbage").expect("write");
    std::fs::write(tmp.path().join("notes.txt"), b"not a plugin, not looked at").expect("write");
    let example = "examples/privacy-email.kdl";

    let out = tailor(&["check", example, "--plugins", tmp.arg()]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("cannot load plugin") && err.contains("broken.wasm"), "{err}");
    assert!(!err.contains("notes.txt"), "{err}");
    assert!(err.contains("1 error(s)"), "{err}");

    let out = tailor(&["check", "--format", "json", example, "--plugins", tmp.arg()]);
    assert_exit(&out, 2);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(json["errors"], 1);
    let failure = &json["plugin_failures"][0];
    assert!(failure["file"].as_str().is_some_and(|f| f.ends_with("broken.wasm")), "{json:#}");
    assert!(failure["message"].as_str().is_some_and(|m| m.contains("not a valid component")), "{json:#}");

    let out = tailor(&["graph", example, "--plugins", tmp.arg()]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("broken.wasm") && stdout(&out).starts_with("digraph"), "{}", stderr(&out));

    let out = tailor(&["plugin", "list", "--plugins", tmp.arg()]);
    assert_exit(&out, 2);
    assert!(stdout(&out).contains("builtin:retrieve") && stderr(&out).contains("broken.wasm"));

    let out = tailor(&["check", example, "--plugins", "no-such-dir"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
}

#[test]
fn check_skips_plugins_directories_when_walking() {
    let tmp = TempDir::new("walk");
    let src = std::fs::read_to_string(crate::util::root().join("examples/privacy-email.kdl")).expect("example");
    std::fs::write(tmp.path().join("a.kdl"), src).expect("write");
    std::fs::create_dir(tmp.path().join("plugins")).expect("dir");
    std::fs::write(tmp.path().join("plugins/broken.kdl"), "pipeline {").expect("write");
    let out = tailor(&["check", tmp.arg()]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("checked 1 file(s)"), "{}", stderr(&out));
    // Named on its own, a `plugins` directory is searched.
    let out = tailor(&["check", tmp.path().join("plugins").to_str().expect("UTF-8 path")]);
    assert_exit(&out, 2);
}
