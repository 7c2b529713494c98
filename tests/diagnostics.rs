//! Golden diagnostics: every `tests/diagnostics/*.kdl` is checked by the real binary and its
//! rendered output compared with the `.stderr` file beside it. `BLESS=1 cargo test` rewrites
//! the expected files (see tests/README.md).

use crate::util::{rel, root, stderr, tailor};

#[test]
fn golden_diagnostics() {
    let dir = root().join("tests/diagnostics");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "at least 30 broken inputs, found {}", cases.len());
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in &cases {
        let out = tailor(&["check", &rel(case)]);
        let actual = format!("{}exit: {}\n", stderr(&out), out.status.code().unwrap_or(-1));
        let golden = case.with_extension("stderr");
        if bless {
            std::fs::write(&golden, &actual).expect("golden file is writable");
            continue;
        }
        assert_ne!(out.status.code(), Some(0), "{} should not check cleanly", rel(case));
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                failures.push(format!("{}: output differs\n--- expected\n{expected}\n--- actual\n{actual}", rel(case)))
            }
            Err(_) => failures.push(format!("{}: no golden file; run `BLESS=1 cargo test golden`", rel(case))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
