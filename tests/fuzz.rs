//! No input makes the loader, checker or formatter panic: 10,000+ generated and mutated inputs
//! in the normal test run (`cargo fuzz` under `fuzz/` goes further, coverage-guided).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::util::{check, example_files};

/// Pieces that stress the grammar: delimiters, string forms, comments, expression syntax.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "\"\"\"",
    "#\"",
    "\"#",
    "{{",
    "}}",
    "{{-",
    "-}}",
    "(",
    ")",
    "[",
    "]",
    "/-",
    "//",
    "/*",
    "*/",
    "\\",
    "\n",
    ";",
    "=",
    " ",
    "item.",
    "input.",
    ".",
    ",",
    "'",
    "==",
    "and",
    "or",
    "not",
    "in",
    "for",
    "end",
    "if",
    "else",
    "elif",
    "-",
    "+",
    "*",
    "/",
    "%",
    "1e999",
    "0",
    "#true",
    "#null",
    "é",
    "🦀",
    "\u{0}",
    "stage \"s\" use=\"builtin:generate\"",
    "use=",
    "grants=\"complete\"",
    "len(",
    "join(",
    "draft.texts",
    "output \"x\"",
    "pipeline \"p\" {",
    "test \"t\" {",
    "expect \"true\"",
];

fn exercise(text: &str) {
    let checked = check("fuzz.kdl", text);
    for d in &checked.diagnostics {
        // Every diagnostic points inside the file and renders.
        assert!(d.loc.offset <= text.len(), "{d:?}");
        let _ = d.problem.to_string();
    }
    if let Ok(formatted) = tailor_dsl::fmt::format_source(text) {
        let again = tailor_dsl::fmt::format_source(&formatted).expect("formatted output parses");
        assert_eq!(formatted, again, "fmt is not idempotent on {text:?}");
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn mutated_examples_never_panic() {
    let sources: Vec<String> = example_files().iter().map(|p| std::fs::read_to_string(p).expect("readable")).collect();
    let edit = (0usize..4, any::<prop::sample::Index>(), any::<prop::sample::Index>(), prop::sample::select(TOKENS));
    let strategy = (prop::sample::select(sources), prop::collection::vec(edit, 1..6));
    runner(6_000)
        .run(&strategy, |(src, edits)| {
            let mut text = src;
            for (kind, at, len, token) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                let mut j = (i + len.index(40)).min(text.len());
                while !text.is_char_boundary(j) {
                    j -= 1;
                }
                match kind {
                    0 => text.replace_range(i..j, ""),
                    1 => text.insert_str(i, token),
                    2 => text.replace_range(i..j, token),
                    _ => {
                        let copy = text[i..j].to_string();
                        text.insert_str(j, &copy);
                    }
                }
            }
            exercise(&text);
            Ok(())
        })
        .expect("no panics on mutated examples");
}

#[test]
fn generated_expressions_never_panic() {
    let expr = prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|ts| ts.concat());
    let strategy = (expr, 0usize..3);
    runner(4_000)
        .run(&strategy, |(e, place)| {
            let e = e.replace('"', "'");
            let text = match place {
                0 => format!("pipeline \"p\" {{\n    input \"q\" type=\"text\"\n    output \"{e}\"\n}}\n"),
                1 => format!(
                    "pipeline \"p\" {{\n    input \"q\" type=\"text\"\n    stage \"g\" use=\"builtin:generate\" grants=\"complete\" {{\n        prompt \"{e}\"\n    }}\n    output \"g.text\"\n}}\n"
                ),
                _ => format!(
                    "pipeline \"p\" {{\n    input \"q\" type=\"text\"\n    stage \"r\" use=\"builtin:retrieve\" grants=\"search\" {{\n        query \"input.q\"\n        where \"{e}\"\n    }}\n    output \"r.items\"\n}}\n"
                ),
            };
            exercise(&text);
            Ok(())
        })
        .expect("no panics on generated expressions");
}
