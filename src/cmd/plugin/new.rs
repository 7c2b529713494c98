//! `tailor plugin new`: a third-party plugin crate from the templates in `src/scaffold/`, one
//! working example per stage kind, that builds with a single `cargo build --release`.
//!
//! The crate depends on the SDK by path (it is not published): `--sdk`, else `TAILOR_SDK`, else
//! the `plugins/sdk` of the Tailor checkout this binary was built from. An existing directory is
//! never written into.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{Outcome, PluginKind};

/// The environment variable naming the SDK directory when no `--sdk` is given.
const SDK_ENV: &str = "TAILOR_SDK";

/// The SDK of the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/sdk");

const MAX_NAME_LEN: usize = 64;

/// Files every plugin crate gets: path in the crate, template.
const COMMON: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("../../scaffold/Cargo.toml.in")),
    (".cargo/config.toml", include_str!("../../scaffold/config.toml.in")),
    (".gitignore", include_str!("../../scaffold/gitignore.in")),
    ("README.md", include_str!("../../scaffold/README.md.in")),
    ("rustfmt.toml", include_str!("../../scaffold/rustfmt.toml.in")),
];

/// The example plugin and a pipeline using it, per kind.
fn kind_templates(kind: PluginKind) -> [(&'static str, &'static str); 2] {
    match kind {
        PluginKind::Generator => [
            ("src/lib.rs", include_str!("../../scaffold/generator/lib.rs.in")),
            ("pipeline.kdl", include_str!("../../scaffold/generator/pipeline.kdl.in")),
        ],
        PluginKind::Retriever => [
            ("src/lib.rs", include_str!("../../scaffold/retriever/lib.rs.in")),
            ("pipeline.kdl", include_str!("../../scaffold/retriever/pipeline.kdl.in")),
        ],
        PluginKind::Profiler => [
            ("src/lib.rs", include_str!("../../scaffold/profiler/lib.rs.in")),
            ("pipeline.kdl", include_str!("../../scaffold/profiler/pipeline.kdl.in")),
        ],
        PluginKind::Privacy => [
            ("src/lib.rs", include_str!("../../scaffold/privacy/lib.rs.in")),
            ("pipeline.kdl", include_str!("../../scaffold/privacy/pipeline.kdl.in")),
        ],
        PluginKind::Judge => [
            ("src/lib.rs", include_str!("../../scaffold/judge/lib.rs.in")),
            ("pipeline.kdl", include_str!("../../scaffold/judge/pipeline.kdl.in")),
        ],
    }
}

pub fn run(name: &str, dir: Option<&Path>, kind: PluginKind, sdk: Option<&Path>) -> anyhow::Result<Outcome> {
    check_name(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.symlink_metadata().is_ok() {
        bail!("{} already exists; pick another name or --dir", dir.display());
    }
    let sdk = sdk_dir(sdk)?;
    let vars = Vars { name, sdk: &toml_string_body(&sdk)?, kind: kind.as_str() };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    // `create_dir` fails if the directory appeared meanwhile: only a directory made here is
    // filled, and removed again if writing fails half-way.
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Err(e) = write_all(&dir, COMMON.into_iter().chain(kind_templates(kind)), &vars) {
        std::fs::remove_dir_all(&dir).ok();
        return Err(e);
    }
    println!("created the {} plugin `{name}` in {}", kind.as_str(), dir.display());
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  tailor plugin build                      # or: cargo build --release");
    println!("  tailor plugin inspect {name}.wasm");
    println!("  tailor check pipeline.kdl --plugins .");
    Ok(Outcome::Ok)
}

fn write_all<'a>(dir: &Path, files: impl Iterator<Item = (&'a str, &'a str)>, vars: &Vars<'_>) -> anyhow::Result<()> {
    for (path, template) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, vars.render(template)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// What the templates' `{{…}}` placeholders stand for.
struct Vars<'a> {
    /// The crate's and the plugin's name.
    name: &'a str,
    /// The SDK directory, escaped for a TOML string.
    sdk: &'a str,
    kind: &'a str,
}

impl Vars<'_> {
    fn render(&self, template: &str) -> String {
        template
            .replace("{{name}}", self.name)
            .replace("{{crate}}", &self.name.replace('-', "_"))
            .replace("{{struct}}", &struct_name(self.name))
            .replace("{{sdk}}", self.sdk)
            .replace("{{kind}}", self.kind)
    }
}

/// A crate name that is also a fine plugin name and file name: lowercase ASCII letters, digits
/// and single hyphens, starting with a letter, not a Rust keyword (cargo refuses those).
fn check_name(name: &str) -> anyhow::Result<()> {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn",
        "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro",
        "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super",
        "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    ];
    let valid = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|part| !part.is_empty())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "`{name}` is not a valid plugin name: use lowercase letters, digits and single `-`, starting with a \
             letter, at most {MAX_NAME_LEN} characters (e.g. `recency-boost`)"
        );
    }
    if KEYWORDS.contains(&name) {
        bail!("`{name}` is a Rust keyword, which cargo does not accept as a crate name");
    }
    Ok(())
}

/// `recency-boost` → `RecencyBoost`, the plugin's type in `src/lib.rs`.
fn struct_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| first.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

/// The SDK directory, absolute (the crate is elsewhere), and checked to hold the SDK.
fn sdk_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (given, from) = match (flag, std::env::var_os(SDK_ENV).filter(|v| !v.is_empty())) {
        (Some(path), _) => (path.to_path_buf(), "--sdk"),
        (None, Some(path)) => (PathBuf::from(path), SDK_ENV),
        (None, None) => (PathBuf::from(BUILT_SDK), "the Tailor checkout this binary was built from"),
    };
    let manifest = given.join("Cargo.toml");
    let holds_sdk = std::fs::read_to_string(&manifest).is_ok_and(|text| text.contains("name = \"tailor-plugin-sdk\""));
    if !holds_sdk {
        bail!(
            "the plugin SDK is not at {} (from {from}); point --sdk or {SDK_ENV} at the `plugins/sdk` directory \
             of a Tailor checkout",
            given.display()
        );
    }
    given.canonicalize().with_context(|| format!("resolving {}", given.display()))
}

/// A path as the inside of a TOML basic string.
fn toml_string_body(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().with_context(|| format!("the SDK path {} is not UTF-8", path.display()))?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_crate_like_names() {
        for name in ["demo", "recency-boost", "rank2", "a-b-c"] {
            assert!(check_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_other_names() {
        for name in ["", "Demo", "2fast", "-x", "x-", "a--b", "a_b", "a b", "héllo", "fn", "type", &"a".repeat(65)] {
            assert!(check_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn struct_names_are_camel_case() {
        assert_eq!(struct_name("recency-boost"), "RecencyBoost");
        assert_eq!(struct_name("a2-b"), "A2B");
    }

    #[test]
    fn paths_are_escaped_for_toml() {
        assert_eq!(toml_string_body(Path::new(r#"C:\sdk "x""#)).unwrap(), r#"C:\\sdk \"x\""#);
    }

    #[test]
    fn every_placeholder_is_filled() {
        let vars = Vars { name: "demo-x", sdk: "/sdk", kind: "retriever" };
        for kind in
            [PluginKind::Generator, PluginKind::Retriever, PluginKind::Profiler, PluginKind::Privacy, PluginKind::Judge]
        {
            for (path, template) in COMMON.into_iter().chain(kind_templates(kind)) {
                let text = vars.render(template);
                // What is left is the pipeline language's own `{{ … }}`.
                assert!(text.match_indices("{{").all(|(i, _)| text[i + 2..].starts_with(' ')), "{path}: {text}");
            }
        }
    }
}
