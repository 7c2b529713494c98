//! Any bytes as a pipeline file: loading, checking and formatting never panic, every diagnostic
//! points inside the file, and formatting is idempotent.
//! Run: `cargo +nightly fuzz run check` (from the repository root).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use tailor_engine::registry::{Catalog, load_catalog};
use tailor_dsl::{check::check_file, fmt::format_source, span::SourceFile};

static REGISTRY: LazyLock<Arc<Catalog>> = LazyLock::new(|| load_catalog(&[]).expect("built-in plugins load").0);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let registry: &Catalog = &REGISTRY;
    let checked = check_file(&SourceFile::new("fuzz.kdl", text), &registry);
    for d in &checked.diagnostics {
        assert!(d.loc.offset <= text.len());
    }
    if let Ok(once) = format_source(text) {
        assert_eq!(format_source(&once).ok().as_deref(), Some(once.as_str()));
    }
});
