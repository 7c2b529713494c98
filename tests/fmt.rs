//! `tailor fmt`: idempotent on every example, and formatting never changes the checked IR.

use crate::util::{check, example_files, rel, stdout, tailor, tailor_with_stdin};

#[test]
fn fmt_is_idempotent_and_keeps_the_ir() {
    for path in example_files() {
        let src = std::fs::read_to_string(&path).expect("example is readable");
        let once = tailor_dsl::fmt::format_source(&src).expect("examples format");
        let twice = tailor_dsl::fmt::format_source(&once).expect("formatted output formats");
        assert_eq!(once, twice, "{}: fmt twice differs from fmt once", rel(&path));
        let before = check("before", &src);
        let after = check("after", &once);
        assert!(after.diagnostics.is_empty(), "{}: {:#?}", rel(&path), after.diagnostics);
        assert_eq!(before.pipelines, after.pipelines, "{}: IR changed by formatting", rel(&path));
        for comment in src.lines().filter_map(|l| l.trim_start().strip_prefix("//")) {
            assert!(once.contains(comment.trim()), "{}: comment lost: {comment}", rel(&path));
        }
    }
}

#[test]
fn examples_are_formatted() {
    let out = tailor(&["fmt", "--check", "examples/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn fmt_reads_stdin() {
    let out = tailor_with_stdin(&["fmt", "-"], Some("pipeline   \"p\"{\n  output   \"x\"\n}"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "pipeline \"p\" {\n    output \"x\"\n}\n");
}

#[test]
fn fmt_check_reports_unformatted_input() {
    let out = tailor_with_stdin(&["fmt", "--check", "-"], Some("pipeline \"p\" {\n  output \"x\"\n}\n"));
    assert_eq!(out.status.code(), Some(1));
}
