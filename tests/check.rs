//! `tailor check`: exit codes, all errors at once, JSON for editors, hints.

use crate::util::{stderr, stdout, tailor};

/// Five independent mistakes, one per line that matters.
const FIVE_MISTAKES: &str = "tests/diagnostics/many_mistakes.kdl";

#[test]
fn examples_check_clean() {
    let out = tailor(&["check", "examples/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 error(s)"), "{}", stderr(&out));
}

#[test]
fn reports_every_mistake_at_once_as_json() {
    let out = tailor(&["check", "--format", "json", FIVE_MISTAKES]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    let diags = json["diagnostics"].as_array().expect("a diagnostics array");
    assert!(diags.len() >= 5, "{json:#}");
    for d in diags {
        assert!(d["line"].as_u64().is_some_and(|l| l > 0), "{d}");
        assert!(d["column"].as_u64().is_some_and(|c| c > 0), "{d}");
        assert!(d["code"].as_str().is_some_and(|c| c.starts_with("tailor::dsl::")), "{d}");
    }
    let lines: std::collections::BTreeSet<u64> = diags.iter().filter_map(|d| d["line"].as_u64()).collect();
    assert!(lines.len() >= 5, "mistakes on five different lines: {lines:?}");
    let hints: Vec<&str> = diags.iter().filter_map(|d| d["help"].as_str()).collect();
    assert!(hints.iter().any(|h| h.contains("did you mean `similar`")), "{hints:?}");
    assert!(hints.iter().any(|h| h.contains("did you mean `timeout`")), "{hints:?}");
}

#[test]
fn human_output_has_file_line_and_column() {
    let out = tailor(&["check", FIVE_MISTAKES]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("[{FIVE_MISTAKES}:")), "{err}");
    assert!(err.contains("tailor::dsl::unknown_stage"), "{err}");
}

#[test]
fn unreadable_file_is_exit_1() {
    let out = tailor(&["check", "tests/diagnostics/does-not-exist.kdl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does-not-exist.kdl"));
}

#[test]
fn duplicate_pipeline_names_across_files_are_errors() {
    let dir = std::env::temp_dir().join(format!("tailor-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = std::fs::read_to_string(crate::util::root().join("examples/privacy-email.kdl")).expect("example");
    std::fs::write(dir.join("a.kdl"), &src).expect("write");
    std::fs::write(dir.join("b.kdl"), &src).expect("write");
    let out = tailor(&["check", dir.to_str().expect("utf-8 path")]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("also defined in"), "{}", stderr(&out));
}
