//! Drawing a checked pipeline: Graphviz DOT and Mermaid flowcharts (`tailor graph`).
//!
//! Nodes are the pipeline's inputs, its stages (labelled with their name, plugin and kind) and
//! its output; an edge is drawn for every value a node reads, labelled with the ports read.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::descriptor::StageKind;
use crate::ir::{Pipeline, Ref};

/// A node of the drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Input(usize),
    Stage(usize),
    Output,
}

impl Node {
    fn id(self) -> String {
        match self {
            Node::Input(i) => format!("in{i}"),
            Node::Stage(i) => format!("s{i}"),
            Node::Output => "out".into(),
        }
    }
}

/// Edges (from, to) with the names of what flows along them.
fn edges(p: &Pipeline) -> BTreeMap<(Node, Node), Vec<String>> {
    let mut edges: BTreeMap<(Node, Node), Vec<String>> = BTreeMap::new();
    let mut add = |to: Node, r: Ref| {
        let (from, what) = match r {
            Ref::Input(id) => (Node::Input(id.index()), p.input(id).name.clone()),
            Ref::StageOutput(s, port) => (Node::Stage(s.index()), p.stage(s).outputs[port as usize].name.clone()),
        };
        let names = edges.entry((from, to)).or_default();
        if !names.contains(&what) {
            names.push(what);
        }
    };
    for stage in &p.stages {
        for r in stage.refs() {
            add(Node::Stage(stage.id.index()), r);
        }
    }
    p.output.for_each_ref(&mut |r| add(Node::Output, r));
    edges
}

fn colour(kind: StageKind) -> &'static str {
    match kind {
        StageKind::Profiler => "#dbeafe",
        StageKind::Retriever => "#dcfce7",
        StageKind::Privacy => "#fee2e2",
        StageKind::Generator => "#fef9c3",
        StageKind::Judge => "#ede9fe",
    }
}

/// Escapes text for a DOT double-quoted string.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The pipeline as a Graphviz `digraph`.
pub fn to_dot(p: &Pipeline) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", dot_str(&p.name));
    let _ = writeln!(s, "    rankdir=LR;");
    let _ = writeln!(s, "    node [fontname=\"Helvetica\", fontsize=11];");
    let _ = writeln!(s, "    edge [fontname=\"Helvetica\", fontsize=9];");
    for (i, input) in p.inputs.iter().enumerate() {
        let label = format!("input {}\n{}", input.name, input.ty);
        let _ = writeln!(s, "    {} [label={}, shape=oval];", Node::Input(i).id(), dot_str(&label));
    }
    for (i, stage) in p.stages.iter().enumerate() {
        let label = format!("{}\n{} ({})", stage.label, stage.plugin.name, stage.kind);
        let _ = writeln!(
            s,
            "    {} [label={}, shape=box, style=\"rounded,filled\", fillcolor={}];",
            Node::Stage(i).id(),
            dot_str(&label),
            dot_str(colour(stage.kind))
        );
    }
    let _ = writeln!(s, "    {} [label=\"output\", shape=doublecircle];", Node::Output.id());
    for ((from, to), what) in edges(p) {
        let _ = writeln!(s, "    {} -> {} [label={}];", from.id(), to.id(), dot_str(&what.join(", ")));
    }
    s.push_str("}\n");
    s
}

/// Escapes text for a Mermaid quoted label.
fn mermaid_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' => out.push_str("<br/>"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The pipeline as a Mermaid `flowchart`.
pub fn to_mermaid(p: &Pipeline) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "---\ntitle: {}\n---", mermaid_str(&p.name));
    s.push_str("flowchart LR\n");
    for (i, input) in p.inputs.iter().enumerate() {
        let label = format!("input {}\n{}", input.name, input.ty);
        let _ = writeln!(s, "    {}([{}])", Node::Input(i).id(), mermaid_str(&label));
    }
    for (i, stage) in p.stages.iter().enumerate() {
        let label = format!("{}\n{} ({})", stage.label, stage.plugin.name, stage.kind);
        let _ = writeln!(s, "    {}[{}]:::{}", Node::Stage(i).id(), mermaid_str(&label), stage.kind);
    }
    let _ = writeln!(s, "    {}((output))", Node::Output.id());
    for ((from, to), what) in edges(p) {
        let _ = writeln!(s, "    {} -->|{}| {}", from.id(), mermaid_str(&what.join(", ")), to.id());
    }
    for kind in [StageKind::Profiler, StageKind::Retriever, StageKind::Privacy, StageKind::Generator, StageKind::Judge]
    {
        let _ = writeln!(s, "    classDef {kind} fill:{}", colour(kind));
    }
    s
}
