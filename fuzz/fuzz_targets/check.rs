//! Any bytes as a pipeline file: loading, checking and formatting never panic or overflow,
//! every diagnostic points inside the file, and formatting is idempotent.
//! Run: `cargo +nightly fuzz run check` (from the repository root).
//!
//! The registry is a fixed set of descriptors shaped like the built-in plugins' (one per port
//! form and config type), so this target needs neither the engine nor the wasm plugins.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tailor_dsl::check::check_file;
use tailor_dsl::descriptor::*;
use tailor_dsl::fmt::format_source;
use tailor_dsl::span::SourceFile;
use tailor_dsl::types::Type;

static REGISTRY: LazyLock<StaticRegistry> = LazyLock::new(|| {
    let port = |name: &str, ty: Type, form| InputPort { name: name.into(), ty, required: true, form, doc: String::new() };
    let out = |name: &str, ty: Type| OutputPort { name: name.into(), ty, doc: String::new() };
    let field = |name: &str, ty| ConfigField { name: name.into(), ty, default: None, requires: None, doc: String::new() };
    let base = |name: &str, kind| Descriptor {
        name: name.into(),
        version: semver::Version::new(0, 1, 0),
        kind,
        summary: String::new(),
        inputs: vec![],
        outputs: vec![],
        config: vec![],
        grants: vec![],
    };
    StaticRegistry::new([
        Descriptor {
            inputs: vec![port("query", Type::Text, PortForm::Expression)],
            outputs: vec![out("items", Type::list(Type::Item)), out("scores", Type::list(Type::Number))],
            config: vec![
                field("k", ConfigType::Number { min: 1.0, max: 100.0, integer: true }),
                field("method", ConfigType::Choice(vec!["bm25".into(), "dense".into(), "hybrid".into()])),
                field("where", ConfigType::ItemFilter),
                field("recency", ConfigType::Duration),
            ],
            grants: vec![Capability::Search],
            ..base("builtin:retrieve", StageKind::Retriever)
        },
        Descriptor {
            inputs: vec![port("prompt", Type::Text, PortForm::Template)],
            outputs: vec![out("text", Type::Text), out("texts", Type::list(Type::Text))],
            config: vec![field("stop", ConfigType::TextList { choices: None }), field("summary", ConfigType::Bool)],
            grants: vec![Capability::Complete],
            ..base("builtin:generate", StageKind::Generator)
        },
        Descriptor {
            inputs: vec![port("text", Type::Text, PortForm::Expression)],
            outputs: vec![out("text", Type::Text), out("found", Type::list(Type::Text))],
            ..base("builtin:pii-redact", StageKind::Privacy)
        },
    ])
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let checked = check_file(&SourceFile::new("fuzz.kdl", text), &*REGISTRY);
    for d in &checked.diagnostics {
        assert!(d.loc.offset <= text.len());
    }
    if let Ok(once) = format_source(text) {
        assert_eq!(format_source(&once).ok().as_deref(), Some(once.as_str()));
    }
});
