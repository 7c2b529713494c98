//! `tailor graph`: DOT that a DOT parser accepts and Mermaid with every node and edge.

use crate::util::{example_files, rel, stdout, tailor};

#[test]
fn dot_for_every_example_parses() {
    for path in example_files() {
        let out = tailor(&["graph", &rel(&path), "--format", "dot"]);
        assert_eq!(out.status.code(), Some(0), "{}", rel(&path));
        let dot = stdout(&out);
        let graph = graphviz_rust::parse(&dot).unwrap_or_else(|e| panic!("{}: invalid DOT: {e}\n{dot}", rel(&path)));
        let graphviz_rust::dot_structures::Graph::DiGraph { stmts, .. } = graph else {
            panic!("{}: not a digraph", rel(&path));
        };
        let edges = stmts.iter().filter(|s| matches!(s, graphviz_rust::dot_structures::Stmt::Edge(_))).count();
        assert!(edges >= 3, "{}: {edges} edges", rel(&path));
        assert!(dot.contains("-> out"), "{}: something feeds the output", rel(&path));
    }
}

#[test]
fn mermaid_for_every_example_names_every_stage() {
    for path in example_files() {
        let out = tailor(&["graph", &rel(&path), "--format", "mermaid"]);
        assert_eq!(out.status.code(), Some(0), "{}", rel(&path));
        let mermaid = stdout(&out);
        assert!(mermaid.contains("flowchart LR"), "{mermaid}");
        let text = std::fs::read_to_string(&path).expect("readable");
        let p = crate::util::check(&rel(&path), &text).pipelines.remove(0);
        for stage in &p.stages {
            assert!(mermaid.contains(&format!("\"{}<br/>", stage.label)), "{}: {}", rel(&path), stage.label);
        }
        for line in mermaid.lines().filter(|l| l.contains("-->")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert!(parts.len() >= 3 && parts[1].starts_with("-->|"), "edge syntax: {line}");
        }
    }
}

#[test]
fn graph_refuses_a_broken_file() {
    let out = tailor(&["graph", "tests/diagnostics/many_mistakes.kdl"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Mermaid's own parser (installed by `make test` with npm, see tests/mermaid/) accepts the
/// drawing of every example, and rejects a broken one, so the check can fail.
#[test]
fn mermaid_parses_with_mermaids_parser() {
    let checker = crate::util::root().join("tests/mermaid");
    assert!(
        checker.join("node_modules/mermaid").is_dir(),
        "Mermaid's parser is not installed: run `make test`, or `npm ci --prefix tests/mermaid`"
    );
    let dir = std::env::temp_dir().join(format!("tailor-mermaid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut files = Vec::new();
    for path in example_files() {
        let out = tailor(&["graph", &rel(&path), "--format", "mermaid"]);
        let file = dir.join(path.file_stem().expect("a file name")).with_extension("mmd");
        std::fs::write(&file, &out.stdout).expect("write");
        files.push(file);
    }
    let broken = dir.join("broken.mmd");
    std::fs::write(&broken, "flowchart LR\n    a -->|x|\n").expect("write");
    let run = |files: &[std::path::PathBuf]| {
        std::process::Command::new("node").arg(checker.join("check.mjs")).args(files).output().expect("node runs")
    };
    let good = run(&files);
    let bad = run(std::slice::from_ref(&broken));
    std::fs::remove_dir_all(&dir).ok();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stdout));
    assert!(!bad.status.success(), "the checker must reject broken Mermaid");
}
