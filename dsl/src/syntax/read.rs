//! Reads KDL nodes into declarations, reporting every structural problem.

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use super::decl::*;
use crate::diagnostic::{Diagnostic, NameKind, Problem};
use crate::expr::{self, SyntaxError};
use crate::span::{Loc, StringMap};
use crate::suggest::closest;
use crate::types::{Type, parse_timestamp};

type Diags = Vec<Diagnostic>;

const PIPELINE_CHILDREN: &[&str] = &["description", "input", "stage", "output", "test", "privacy"];
const PRIVACY_CHILDREN: &[&str] = &["egress", "allow"];
const STAGE_PROPS: &[&str] = &["use", "grants", "cache", "on-error", "when", "timeout"];
const INPUT_PROPS: &[&str] = &["type", "default"];
const TEST_CHILDREN: &[&str] = &["user", "input", "expect"];

pub(super) fn read_document(doc: &KdlDocument, diags: &mut Diags) -> Vec<PipelineDecl> {
    let mut pipelines = Vec::new();
    for node in doc.nodes() {
        no_annotations(node, diags);
        match node.name().value() {
            "pipeline" => pipelines.push(read_pipeline(node, diags)),
            other => diags.push(unknown(NameKind::Node, other, node_name_loc(node), &["pipeline"], "at the top level")),
        }
    }
    pipelines
}

fn read_pipeline(node: &KdlNode, diags: &mut Diags) -> PipelineDecl {
    let name = name_arg(node, "pipeline", "a name: `pipeline \"NAME\" { … }`", diags);
    no_props(node, diags);
    let mut decl = PipelineDecl {
        name,
        loc: node_loc(node),
        description: None,
        inputs: Vec::new(),
        stages: Vec::new(),
        output: None,
        tests: Vec::new(),
        privacy: None,
    };
    let mut seen_description: Option<Loc> = None;
    let mut seen_privacy: Option<Loc> = None;
    for child in children(node) {
        no_annotations(child, diags);
        match child.name().value() {
            "description" => {
                once(&mut seen_description, child, diags);
                no_props(child, diags);
                no_children(child, diags);
                match single_arg(child, "one string", diags) {
                    Some(Arg { value: Lit::Text(s), .. }) => decl.description = Some(s),
                    Some(a) => diags.push(shape(child, "one string", a.loc)),
                    None => {}
                }
            }
            "input" => decl.inputs.push(read_input(child, diags)),
            "stage" => decl.stages.push(read_stage(child, diags)),
            "output" => {
                if let Some(first) = &decl.output {
                    diags.push(duplicate_node(child, first.loc));
                    continue;
                }
                no_props(child, diags);
                no_children(child, diags);
                let expr =
                    single_arg(child, "one expression string", diags).and_then(|a| parse_expr_arg(&a, "output", diags));
                decl.output = Some(OutputDecl { expr, loc: node_loc(child) });
            }
            "test" => decl.tests.push(read_test(child, diags)),
            "privacy" => {
                once(&mut seen_privacy, child, diags);
                decl.privacy = Some(read_privacy(child, diags));
            }
            other => {
                diags.push(unknown(NameKind::Node, other, node_name_loc(child), PIPELINE_CHILDREN, "in a pipeline"))
            }
        }
    }
    decl
}

/// `privacy { egress "strict" allow "location" "date-time" }`.
fn read_privacy(node: &KdlNode, diags: &mut Diags) -> crate::ir::Privacy {
    use crate::ir::{Egress, PII_ENTITIES, Privacy};
    no_props(node, diags);
    no_args(node, diags);
    let mut privacy = Privacy::default();
    let mut seen_egress: Option<Loc> = None;
    for child in children(node) {
        no_annotations(child, diags);
        no_props(child, diags);
        no_children(child, diags);
        match child.name().value() {
            "egress" => {
                once(&mut seen_egress, child, diags);
                match single_arg(child, "one of \"off\", \"strict\"", diags) {
                    Some(Arg { value: Lit::Text(word), loc, .. }) => match Egress::parse(&word) {
                        Some(e) => privacy.egress = e,
                        None => diags.push(Diagnostic::error(
                            Problem::BadValue {
                                key: "egress".into(),
                                reason: format!("`{word}` is not `off` or `strict`"),
                                suggestion: closest(&word, Egress::NAMES.iter().copied()),
                            },
                            loc,
                        )),
                    },
                    Some(a) => diags.push(shape(child, "one of \"off\", \"strict\"", a.loc)),
                    None => {}
                }
            }
            "allow" => {
                let args: Vec<&KdlEntry> = child.entries().iter().filter(|e| e.name().is_none()).collect();
                if args.is_empty() {
                    diags.push(Diagnostic::error(
                        Problem::Missing { node: "allow".into(), what: "one or more entity types".into() },
                        node_loc(child),
                    ));
                }
                for entry in args {
                    let arg = to_arg(entry);
                    match &arg.value {
                        Lit::Text(word) if PII_ENTITIES.contains(&word.as_str()) => {
                            if !privacy.allow.contains(word) {
                                privacy.allow.push(word.clone());
                            }
                        }
                        Lit::Text(word) => diags.push(Diagnostic::error(
                            Problem::BadValue {
                                key: "allow".into(),
                                reason: format!("`{word}` is not an entity type"),
                                suggestion: closest(word, PII_ENTITIES.iter().copied()),
                            },
                            arg.loc,
                        )),
                        other => diags.push(shape(
                            child,
                            &format!("entity type strings, found {}", other.describe()),
                            arg.loc,
                        )),
                    }
                }
            }
            other => diags.push(unknown(NameKind::Node, other, node_name_loc(child), PRIVACY_CHILDREN, "in `privacy`")),
        }
    }
    privacy
}

fn read_input(node: &KdlNode, diags: &mut Diags) -> InputDecl {
    let name = name_arg(node, "input", "a name: `input \"NAME\" type=\"text\"`", diags);
    no_children(node, diags);
    let mut decl = InputDecl { name, ty: None, default: None, loc: node_loc(node) };
    let mut has_type = false;
    for (key, entry) in props(node, INPUT_PROPS, diags) {
        has_type |= key == "type";
        let arg = to_arg(entry);
        match key {
            "type" => match &arg.value {
                Lit::Text(t) => match Type::parse(t) {
                    Some(ty) => decl.ty = Some((ty, arg.loc)),
                    None => diags.push(Diagnostic::error(
                        Problem::BadValue {
                            key: "type".into(),
                            reason: format!("`{t}` is not a type"),
                            suggestion: closest(t, Type::NAMES.iter().copied()),
                        },
                        arg.loc,
                    )),
                },
                _ => diags.push(bad_value("type", "expected a type such as \"text\"", arg.loc)),
            },
            _ => decl.default = Some(arg),
        }
    }
    if !has_type {
        diags.push(Diagnostic::error(
            Problem::Missing { node: "input".into(), what: "a type: `type=\"text\"`".into() },
            node_loc(node),
        ));
    }
    decl
}

fn read_stage(node: &KdlNode, diags: &mut Diags) -> StageDecl {
    let name = name_arg(node, "stage", "a name: `stage \"NAME\" use=\"builtin:…\"`", diags);
    let mut decl = StageDecl {
        name,
        uses: None,
        grants: Vec::new(),
        grants_loc: None,
        cache: None,
        on_error: None,
        when: None,
        timeout: None,
        fallback: None,
        entries: Vec::new(),
        loc: node_loc(node),
    };
    for (key, entry) in props(node, STAGE_PROPS, diags) {
        let arg = to_arg(entry);
        let Lit::Text(text) = &arg.value else {
            diags.push(bad_value(key, &format!("expected a string, found {}", arg.value.describe()), arg.loc));
            continue;
        };
        match key {
            "use" => decl.uses = Some(Name { text: text.clone(), loc: arg.loc }),
            "grants" => {
                decl.grants_loc = Some(arg.loc);
                decl.grants = words(text, &arg);
            }
            "cache" | "timeout" => match parse_duration(text) {
                Some(d) if key == "cache" => decl.cache = Some((d, arg.loc)),
                Some(d) => decl.timeout = Some((d, arg.loc)),
                None => diags.push(bad_value(
                    key,
                    &format!("`{text}` is not a duration such as \"30s\", \"15m\" or \"24h\""),
                    arg.loc,
                )),
            },
            "on-error" => {
                let policy = match text.as_str() {
                    "fail" => OnErrorDecl::Fail,
                    "skip" => OnErrorDecl::Skip,
                    "fallback" => OnErrorDecl::Fallback,
                    other => {
                        diags.push(Diagnostic::error(
                            Problem::BadValue {
                                key: "on-error".into(),
                                reason: format!("`{other}` is not one of fail, skip, fallback"),
                                suggestion: closest(other, ["fail", "skip", "fallback"]),
                            },
                            arg.loc,
                        ));
                        continue;
                    }
                };
                decl.on_error = Some((policy, arg.loc));
            }
            _ => decl.when = parse_expr_arg(&arg, "condition", diags),
        }
    }
    if decl.uses.is_none() {
        diags.push(Diagnostic::error(
            Problem::Missing { node: "stage".into(), what: "a plugin: `use=\"builtin:NAME\"`".into() },
            node_loc(node),
        ));
    }
    for child in children(node) {
        no_annotations(child, diags);
        if child.name().value() == "fallback" {
            if let Some(first) = &decl.fallback {
                diags.push(duplicate_node(child, first.loc));
                continue;
            }
            no_args(child, diags);
            no_children(child, diags);
            let values = props(child, &[], diags)
                .into_iter()
                .map(|(k, e)| (Name { text: k.to_string(), loc: prop_key_loc(e) }, to_arg(e)))
                .collect();
            decl.fallback = Some(FallbackDecl { values, loc: node_loc(child) });
            continue;
        }
        no_props(child, diags);
        no_children(child, diags);
        decl.entries.push(EntryDecl {
            key: Name { text: child.name().value().to_string(), loc: node_name_loc(child) },
            args: child.entries().iter().filter(|e| e.name().is_none()).map(to_arg).collect(),
            loc: node_loc(child),
        });
    }
    decl
}

fn read_test(node: &KdlNode, diags: &mut Diags) -> TestDecl {
    let name = name_arg(node, "test", "a name: `test \"what it checks\" { … }`", diags);
    no_props(node, diags);
    let mut decl = TestDecl { name, items: Vec::new(), inputs: Vec::new(), expects: Vec::new(), loc: node_loc(node) };
    for child in children(node) {
        no_annotations(child, diags);
        match child.name().value() {
            "user" => {
                no_args(child, diags);
                no_props(child, diags);
                for item in children(child) {
                    no_annotations(item, diags);
                    if item.name().value() != "item" {
                        diags.push(unknown(
                            NameKind::Node,
                            item.name().value(),
                            node_name_loc(item),
                            &["item"],
                            "in `user`",
                        ));
                        continue;
                    }
                    decl.items.push(read_item(item, diags));
                }
            }
            "input" => {
                no_args(child, diags);
                no_children(child, diags);
                for (k, e) in props(child, &[], diags) {
                    decl.inputs.push((Name { text: k.to_string(), loc: prop_key_loc(e) }, to_arg(e)));
                }
            }
            "expect" => {
                no_props(child, diags);
                no_children(child, diags);
                if let Some(e) = single_arg(child, "one condition string", diags)
                    .and_then(|a| parse_expr_arg(&a, "condition", diags))
                {
                    decl.expects.push(e);
                }
            }
            other => diags.push(unknown(NameKind::Node, other, node_name_loc(child), TEST_CHILDREN, "in a test")),
        }
    }
    decl
}

fn read_item(node: &KdlNode, diags: &mut Diags) -> ItemDecl {
    no_args(node, diags);
    no_children(node, diags);
    let mut item =
        ItemDecl { id: None, kind: None, text: None, timestamp: None, fields: Vec::new(), loc: node_loc(node) };
    for (key, entry) in props(node, &[], diags) {
        let arg = to_arg(entry);
        match (key, &arg.value) {
            ("id", Lit::Text(s)) => item.id = Some(s.clone()),
            ("kind", Lit::Text(s)) => item.kind = Some(s.clone()),
            ("text", Lit::Text(s)) => item.text = Some(s.clone()),
            ("timestamp", Lit::Number(n)) if n.is_finite() => item.timestamp = Some(*n),
            ("timestamp", Lit::Text(s)) => match parse_timestamp(s) {
                Some(t) => item.timestamp = Some(t),
                None => diags.push(bad_value(
                    "timestamp",
                    "expected seconds since 1970 or a date like \"2024-05-01\" or \"2024-05-01T10:00:00Z\"",
                    arg.loc,
                )),
            },
            ("id" | "kind" | "text", other) => {
                diags.push(bad_value(key, &format!("expected a string, found {}", other.describe()), arg.loc))
            }
            ("timestamp", other) => {
                diags.push(bad_value(key, &format!("expected a date or number, found {}", other.describe()), arg.loc))
            }
            (_, Lit::Null) => diags.push(bad_value(key, "#null is not a field value; leave the field out", arg.loc)),
            (_, Lit::Number(n)) if !n.is_finite() => diags.push(bad_value(key, "expected a finite number", arg.loc)),
            _ => item.fields.push((Name { text: key.to_string(), loc: prop_key_loc(entry) }, arg)),
        }
    }
    if item.text.is_none() {
        diags.push(Diagnostic::error(Problem::Missing { node: "item".into(), what: "`text=\"…\"`".into() }, item.loc));
    }
    item
}

pub(crate) fn parse_duration(s: &str) -> Option<std::time::Duration> {
    humantime::parse_duration(s).ok()
}

fn words(text: &str, arg: &Arg) -> Vec<Name> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        let sep = c.is_whitespace() || c == ',';
        match (start, sep) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                out.push(Name { text: text[s..i].to_string(), loc: arg.map.loc(s, i) });
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Parses a string argument as an expression; reports a non-string or a syntax error.
pub(crate) fn parse_expr_arg(arg: &Arg, what: &'static str, diags: &mut Diags) -> Option<expr::Expr> {
    let Lit::Text(src) = &arg.value else {
        diags.push(Diagnostic::error(
            Problem::Shape {
                node: what.into(),
                expected: format!("an expression in a string, found {}", arg.value.describe()),
            },
            arg.loc,
        ));
        return None;
    };
    match expr::parse_expression(src, &arg.map) {
        Ok(e) => Some(e),
        Err(e) => {
            diags.push(syntax_diagnostic(e, "expression"));
            None
        }
    }
}

/// The diagnostic for an expression or template that did not parse.
pub(crate) fn syntax_diagnostic(error: SyntaxError, what: &'static str) -> Diagnostic {
    match error {
        SyntaxError::Grammar { message, loc } => {
            Diagnostic::error(Problem::ExprSyntax { what, message }, loc).with_label("here")
        }
        SyntaxError::TooComplex { reason, loc } => Diagnostic::error(Problem::TooComplex { what, reason }, loc),
        SyntaxError::Block { message, loc, .. } => Diagnostic::error(Problem::Template { message }, loc),
    }
}

fn children(node: &KdlNode) -> &[KdlNode] {
    node.children().map(|d| d.nodes()).unwrap_or(&[])
}

pub(crate) fn node_loc(node: &KdlNode) -> Loc {
    // The node's span covers its children too; point at its first line: name and entries.
    let start = node.span().offset();
    let end = node
        .entries()
        .last()
        .map_or(node.name().span().offset() + node.name().span().len(), |e| e.span().offset() + e.span().len());
    Loc::new(start, end.saturating_sub(start))
}

fn node_name_loc(node: &KdlNode) -> Loc {
    Loc::from_kdl(node.name().span())
}

fn prop_key_loc(entry: &KdlEntry) -> Loc {
    entry.name().map_or(Loc::from_kdl(entry.span()), |n| Loc::from_kdl(n.span()))
}

/// An entry's value, with the location of the value itself (not `key=`).
pub(crate) fn to_arg(entry: &KdlEntry) -> Arg {
    let span = entry.span();
    let end = span.offset() + span.len();
    let repr = entry.format().map(|f| f.value_repr.as_str()).unwrap_or("");
    let start = if repr.is_empty() || repr.len() > span.len() { span.offset() } else { end - repr.len() };
    let loc = Loc::new(start, end - start);
    let value = match entry.value() {
        KdlValue::String(s) => Lit::Text(s.clone()),
        KdlValue::Integer(i) => Lit::Number(*i as f64),
        KdlValue::Float(f) => Lit::Number(*f),
        KdlValue::Bool(b) => Lit::Bool(*b),
        KdlValue::Null => Lit::Null,
    };
    let map = match &value {
        Lit::Text(s) => StringMap::new(repr, start, s),
        _ => StringMap::new("", start, ""),
    };
    Arg { value, loc, map }
}

/// The node's one string argument as a name.
fn name_arg(node: &KdlNode, what: &str, expected: &str, diags: &mut Diags) -> Name {
    let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
    match args.as_slice() {
        [one] => match one.value() {
            KdlValue::String(s) => return Name { text: s.clone(), loc: to_arg(one).loc },
            _ => diags.push(shape_loc(what, expected, Loc::from_kdl(one.span()))),
        },
        [] => {
            diags.push(Diagnostic::error(Problem::Missing { node: what.into(), what: expected.into() }, node_loc(node)))
        }
        [_, extra, ..] => diags.push(shape_loc(what, expected, Loc::from_kdl(extra.span()))),
    }
    // Missing or malformed (already reported): an empty name with an empty location.
    Name { text: String::new(), loc: Loc::new(node.span().offset(), 0) }
}

fn single_arg(node: &KdlNode, expected: &str, diags: &mut Diags) -> Option<Arg> {
    let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
    match args.as_slice() {
        [one] => Some(to_arg(one)),
        [] => {
            diags.push(Diagnostic::error(
                Problem::Missing { node: node.name().value().into(), what: expected.into() },
                node_loc(node),
            ));
            None
        }
        [_, extra, ..] => {
            diags.push(shape(node, expected, Loc::from_kdl(extra.span())));
            None
        }
    }
}

/// The node's properties, each key once, unknown keys reported (`allowed` empty = any key).
fn props<'n>(node: &'n KdlNode, allowed: &[&str], diags: &mut Diags) -> Vec<(&'n str, &'n KdlEntry)> {
    let mut out: Vec<(&str, &KdlEntry)> = Vec::new();
    for entry in node.entries() {
        let Some(key) = entry.name() else { continue };
        let k = key.value();
        if !allowed.is_empty() && !allowed.contains(&k) {
            let context = format!("on `{}`", node.name().value());
            diags.push(unknown(NameKind::Property, k, Loc::from_kdl(key.span()), allowed, &context));
            continue;
        }
        if let Some((_, first)) = out.iter().find(|(seen, _)| *seen == k) {
            diags.push(
                Diagnostic::error(
                    Problem::Duplicate { kind: NameKind::Property, name: k.into() },
                    Loc::from_kdl(key.span()),
                )
                .with_related(prop_key_loc(first), "first set here"),
            );
            continue;
        }
        out.push((k, entry));
    }
    out
}

fn no_props(node: &KdlNode, diags: &mut Diags) {
    if let Some(e) = node.entries().iter().find(|e| e.name().is_some()) {
        let key = e.name().map(|n| n.value()).unwrap_or_default();
        diags.push(
            Diagnostic::error(
                Problem::Unknown {
                    kind: NameKind::Property,
                    name: key.into(),
                    context: Some(format!("on `{}`", node.name().value())),
                    suggestion: None,
                },
                prop_key_loc(e),
            )
            .with_label(format!("`{}` takes no properties", node.name().value())),
        );
    }
}

fn no_args(node: &KdlNode, diags: &mut Diags) {
    if let Some(e) = node.entries().iter().find(|e| e.name().is_none()) {
        diags.push(shape(node, "no arguments", Loc::from_kdl(e.span())));
    }
}

fn no_children(node: &KdlNode, diags: &mut Diags) {
    if node.children().is_some_and(|c| !c.nodes().is_empty()) {
        diags.push(shape(node, "no children block", node_loc(node)));
    }
}

fn no_annotations(node: &KdlNode, diags: &mut Diags) {
    if let Some(ty) = node.ty() {
        diags.push(shape(node, "no type annotation", Loc::from_kdl(ty.span())));
    }
    for e in node.entries() {
        if let Some(ty) = e.ty() {
            diags.push(shape(node, "values without type annotations", Loc::from_kdl(ty.span())));
        }
    }
}

fn once(seen: &mut Option<Loc>, node: &KdlNode, diags: &mut Diags) {
    match seen {
        Some(first) => diags.push(duplicate_node(node, *first)),
        None => *seen = Some(node_loc(node)),
    }
}

fn duplicate_node(node: &KdlNode, first: Loc) -> Diagnostic {
    Diagnostic::error(Problem::Duplicate { kind: NameKind::Node, name: node.name().value().into() }, node_loc(node))
        .with_related(first, "first given here")
}

fn shape(node: &KdlNode, expected: &str, loc: Loc) -> Diagnostic {
    shape_loc(node.name().value(), expected, loc)
}

fn shape_loc(node: &str, expected: &str, loc: Loc) -> Diagnostic {
    Diagnostic::error(Problem::Shape { node: node.into(), expected: expected.into() }, loc)
}

fn bad_value(key: &str, reason: &str, loc: Loc) -> Diagnostic {
    Diagnostic::error(Problem::BadValue { key: key.into(), reason: reason.into(), suggestion: None }, loc)
}

fn unknown(kind: NameKind, name: &str, loc: Loc, known: &[&str], context: &str) -> Diagnostic {
    Diagnostic::error(
        Problem::Unknown {
            kind,
            name: name.into(),
            context: Some(context.into()),
            suggestion: closest(name, known.iter().copied()),
        },
        loc,
    )
}
