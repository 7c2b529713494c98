//! Any text as an expression and as a template: the grammar and its bounds never panic or
//! overflow the stack.
//! Run: `cargo +nightly fuzz run expression` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tailor_dsl::expr::{parse_expression, parse_template};
use tailor_dsl::span::StringMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let map = StringMap::new("", 0, "");
    let _ = parse_expression(text, &map);
    let _ = parse_template(text, &map);
});
