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
