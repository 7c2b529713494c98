//! Phase 2: declarations → checked, typed IR.
//!
//! One pass per concern, all feeding one diagnostics list, so a file with many mistakes gets
//! them all in one run: names (duplicates, reserved words, identifiers), plugins (resolution,
//! versions), stages against their descriptors ([`stage`]), expressions ([`expr`]), the graph
//! (cycles, reachability: [`graph`]), the output, and in-file tests. A pipeline yields IR only
//! when it has no errors; stages are then renumbered into topological order.

mod expr;
mod graph;
mod stage;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use stage::{DEFAULT_TIMEOUT, MAX_TIMEOUT};

use self::expr::{Cx, Scope, StageSig, lower_typed};
use crate::descriptor::{Descriptor, Registry};
use crate::diagnostic::{Diagnostic, NameKind, Problem, Severity};
use crate::ir::{self, Bound, ExprKind, Part, SettingValue, StageId};
use crate::span::{Loc, SourceFile};
use crate::suggest::closest;
use crate::syntax::{self, Lit, Name, PipelineDecl, TestDecl};
use crate::types::{Item, Type, Value};

/// Words that cannot name a stage or an input.
pub const RESERVED: &[&str] =
    &["input", "item", "output", "and", "or", "not", "in", "true", "false", "for", "if", "elif", "else", "end"];

/// The data-minimization plugin, whose `fields` setting the checker enforces on later reads.
const MINIMIZE: &str = "builtin:minimize";

/// The texts of a minimization stage's `fields` setting (none when unset).
fn kept_fields(stage: &syntax::StageDecl) -> Vec<String> {
    let entry = stage.entries.iter().find(|e| e.key.text == "fields");
    let texts = entry.into_iter().flat_map(|e| &e.args).filter_map(|a| match &a.value {
        Lit::Text(t) => Some(t.clone()),
        _ => None,
    });
    texts.collect()
}

/// The result of checking a file: every pipeline that checked cleanly, and every diagnostic
/// (sorted by position).
#[derive(Debug, Clone)]
pub struct Checked {
    pub pipelines: Vec<ir::Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Checks every pipeline in one file.
pub fn check_file(file: &SourceFile, registry: &dyn Registry) -> Checked {
    let mut diagnostics = Vec::new();
    let decls = syntax::parse_file(file, &mut diagnostics);
    let mut pipelines = Vec::new();
    let mut names: BTreeMap<&str, Loc> = BTreeMap::new();
    for decl in &decls {
        if !decl.name.text.is_empty() {
            if let Some(first) = names.get(decl.name.text.as_str()) {
                diagnostics.push(
                    Diagnostic::error(
                        Problem::Duplicate { kind: NameKind::Pipeline, name: decl.name.text.clone() },
                        decl.name.loc,
                    )
                    .with_related(*first, "first defined here"),
                );
            }
            names.entry(&decl.name.text).or_insert(decl.name.loc);
        }
        if let Some(p) = check_pipeline(decl, registry, &mut diagnostics) {
            pipelines.push(p);
        }
    }
    diagnostics.sort_by_key(|d| (d.loc.offset, d.code()));
    if diagnostics.iter().any(Diagnostic::is_error) {
        // A file is all or nothing: a daemon must never serve half of a broken file.
        pipelines.clear();
    }
    Checked { pipelines, diagnostics }
}

/// Is `name` an identifier: ASCII letter or `_`, then letters, digits, `_`?
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Pipeline names appear in URLs and as the `model` of chat completions.
fn is_pipeline_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 64
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

/// A value for a literal, if it fits the type.
pub(crate) fn literal_value(lit: &Lit, ty: &Type) -> Option<Value> {
    let value = match lit {
        Lit::Text(s) => Value::text(s.as_str()),
        Lit::Number(n) if n.is_finite() => Value::Number(*n),
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Number(_) | Lit::Null => return None,
    };
    value.fits(ty).then_some(value)
}

fn check_name(name: &Name, kind: NameKind, diags: &mut Vec<Diagnostic>) {
    if name.text.is_empty() && name.loc.len == 0 {
        return; // missing: reported while reading
    }
    if RESERVED.contains(&name.text.as_str()) {
        diags.push(Diagnostic::error(Problem::Reserved { kind, name: name.text.clone() }, name.loc));
    } else if !is_identifier(&name.text) {
        let reason = "names are letters, digits and `_`, not starting with a digit (expressions refer to them)";
        diags.push(Diagnostic::error(Problem::InvalidName { kind, name: name.text.clone(), reason }, name.loc));
    }
}

fn check_pipeline(decl: &PipelineDecl, registry: &dyn Registry, diags: &mut Vec<Diagnostic>) -> Option<ir::Pipeline> {
    let errors_before = count_errors(diags);
    // A pipeline node without a name was reported when it was read.
    let unnamed = decl.name.text.is_empty() && decl.name.loc.len == 0;
    if !unnamed && !is_pipeline_name(&decl.name.text) {
        let reason =
            "pipeline names are letters, digits, `-`, `_` and `.` (at most 64), starting with a letter or digit";
        diags.push(Diagnostic::error(
            Problem::InvalidName { kind: NameKind::Pipeline, name: decl.name.text.clone(), reason },
            decl.name.loc,
        ));
    }

    // Inputs.
    let mut inputs: Vec<ir::Input> = Vec::new();
    let mut input_sigs: Vec<(String, Type)> = Vec::new();
    for input in &decl.inputs {
        check_name(&input.name, NameKind::Input, diags);
        if let Some(first) =
            decl.inputs.iter().take_while(|i| !std::ptr::eq(*i, input)).find(|i| i.name.text == input.name.text)
        {
            diags.push(
                Diagnostic::error(
                    Problem::Duplicate { kind: NameKind::Input, name: input.name.text.clone() },
                    input.name.loc,
                )
                .with_related(first.name.loc, "first declared here"),
            );
            continue;
        }
        let ty = input.ty.as_ref().map_or(Type::Any, |(t, _)| t.clone());
        let default = input.default.as_ref().and_then(|arg| match literal_value(&arg.value, &ty) {
            Some(v) => Some(v),
            None => {
                diags.push(Diagnostic::error(
                    Problem::TypeMismatch {
                        expected: ty.to_string(),
                        found: stage::lit_type(&arg.value),
                        context: format!("the default of input `{}`", input.name.text),
                    },
                    arg.loc,
                ));
                None
            }
        });
        input_sigs.push((input.name.text.clone(), ty.clone()));
        inputs.push(ir::Input { name: input.name.text.clone(), ty, default, loc: input.loc });
    }

    // Stage names and plugins.
    let mut descriptors: Vec<Option<Arc<Descriptor>>> = Vec::new();
    let mut sigs: Vec<StageSig> = Vec::new();
    for (i, stage) in decl.stages.iter().enumerate() {
        check_name(&stage.name, NameKind::Stage, diags);
        if let Some(first) = decl.stages[..i].iter().find(|s| s.name.text == stage.name.text && !s.name.text.is_empty())
        {
            diags.push(
                Diagnostic::error(
                    Problem::Duplicate { kind: NameKind::Stage, name: stage.name.text.clone() },
                    stage.name.loc,
                )
                .with_related(first.name.loc, "first defined here"),
            );
        }
        if input_sigs.iter().any(|(n, _)| *n == stage.name.text) {
            // Not ambiguous (inputs live under `input.`), but confusing in graphs and traces.
            diags.push(
                Diagnostic::warning(
                    Problem::Duplicate { kind: NameKind::Stage, name: stage.name.text.clone() },
                    stage.name.loc,
                )
                .with_label("an input has the same name"),
            );
        }
        let desc = stage.uses.as_ref().and_then(|u| resolve_plugin(u, registry, diags));
        sigs.push(StageSig {
            name: stage.name.text.clone(),
            outputs: desc.as_ref().map(|d| d.outputs.clone()),
            plugin: desc.as_ref().map_or_else(String::new, |d| d.name.clone()),
            kept_fields: desc.as_ref().filter(|d| d.name == MINIMIZE).map(|_| kept_fields(stage)),
        });
        descriptors.push(desc);
    }

    // Stages.
    let mut scope = Scope { inputs: &input_sigs, stages: &sigs, locals: Vec::new(), output: None };
    let mut stages: Vec<Option<ir::Stage>> = Vec::new();
    let mut deps: Vec<BTreeMap<usize, Loc>> = Vec::new();
    let mut guessed: Vec<Vec<usize>> = Vec::new();
    for (i, stage) in decl.stages.iter().enumerate() {
        let checked = stage::check_stage(i, stage, descriptors[i].as_ref(), &mut scope, diags);
        stages.push(checked.stage);
        deps.push(checked.deps);
        guessed.push(checked.guessed);
    }

    // Output.
    let mut output_cx = Cx::new(diags);
    let output = match &decl.output {
        Some(out) => out.expr.as_ref().and_then(|e| self::expr::lower(e, &mut scope, &mut output_cx)),
        None => {
            output_cx.diags.push(Diagnostic::error(
                Problem::Missing {
                    node: format!("pipeline `{}`", decl.name.text),
                    what: "an `output \"EXPRESSION\"`".into(),
                },
                decl.name.loc,
            ));
            None
        }
    };
    let output_deps = output_cx.deps;
    let output_guessed = output_cx.guessed;

    // Graph.
    let cycles = graph::find_cycles(&deps);
    for cycle in &cycles {
        let mut path: Vec<String> = cycle.stages.iter().map(|&s| decl.stages[s].name.text.clone()).collect();
        path.push(path[0].clone());
        let first = cycle.stages[0];
        let mut d = Diagnostic::error(Problem::Cycle { path }, decl.stages[first].name.loc);
        for (k, &s) in cycle.stages.iter().enumerate() {
            let next = cycle.stages[(k + 1) % cycle.stages.len()];
            d = d.with_related(
                cycle.edges[k],
                format!("`{}` reads `{}` here", decl.stages[s].name.text, decl.stages[next].name.text),
            );
        }
        diags.push(d);
    }
    if decl.output.as_ref().is_some_and(|o| o.expr.is_some()) {
        // Reachability also follows the reads that misspelled names probably meant.
        let mut likely = deps.clone();
        for (i, g) in guessed.iter().enumerate() {
            likely[i].extend(g.iter().map(|&s| (s, Loc::default())));
        }
        let reach = graph::reachable(&likely, output_deps.keys().chain(&output_guessed).copied());
        let in_cycle = |i: usize| cycles.iter().any(|c| c.stages.contains(&i));
        for (i, stage) in decl.stages.iter().enumerate() {
            // A duplicate's name refers to the first stage of that name: reported once, above.
            let duplicate = decl.stages[..i].iter().any(|s| s.name.text == stage.name.text);
            if !reach[i] && !in_cycle(i) && !duplicate {
                diags.push(Diagnostic::error(Problem::Unreachable { stage: stage.name.text.clone() }, stage.name.loc));
            }
        }
    }

    // Tests.
    let output_ty = output.as_ref().map_or(Type::Any, |o| o.ty.clone());
    let mut tests = Vec::new();
    for (i, test) in decl.tests.iter().enumerate() {
        if test.name.text.trim().is_empty() && test.name.loc.len > 0 {
            let reason = "a test's name says what it checks";
            diags.push(Diagnostic::error(
                Problem::InvalidName { kind: NameKind::Test, name: test.name.text.clone(), reason },
                test.name.loc,
            ));
        }
        if let Some(first) = decl.tests[..i].iter().find(|t| t.name.text == test.name.text && !t.name.text.is_empty()) {
            diags.push(
                Diagnostic::error(
                    Problem::Duplicate { kind: NameKind::Test, name: test.name.text.clone() },
                    test.name.loc,
                )
                .with_related(first.name.loc, "first defined here"),
            );
        }
        let mut test_scope =
            Scope { inputs: &input_sigs, stages: &sigs, locals: Vec::new(), output: Some(output_ty.clone()) };
        if let Some(t) = check_test(test, &inputs, &mut test_scope, diags) {
            tests.push(t);
        }
    }

    if count_errors(diags) > errors_before {
        return None;
    }
    let stages: Vec<ir::Stage> = stages.into_iter().collect::<Option<_>>()?;
    let mut pipeline = ir::Pipeline {
        name: decl.name.text.clone(),
        description: decl.description.clone(),
        inputs,
        stages,
        output: output?,
        tests,
        privacy: decl.privacy.clone().unwrap_or_default(),
        loc: decl.name.loc,
    };
    into_topological_order(&mut pipeline, &graph::topo_order(&deps));
    Some(pipeline)
}

/// Finds the plugin a `use=` names: `NAME` or `NAME@REQUIREMENT` (a semver requirement).
fn resolve_plugin(uses: &Name, registry: &dyn Registry, diags: &mut Vec<Diagnostic>) -> Option<Arc<Descriptor>> {
    let (name, requirement) = match uses.text.rsplit_once('@') {
        Some((n, r)) => (n, r),
        None => (uses.text.as_str(), "*"),
    };
    let Ok(req) = semver::VersionReq::parse(requirement) else {
        diags.push(Diagnostic::error(
            Problem::BadValue {
                key: "use".into(),
                reason: format!("`{requirement}` is not a version requirement such as `^1.2`"),
                suggestion: None,
            },
            uses.loc,
        ));
        return None;
    };
    let versions = registry.versions(name);
    if versions.is_empty() {
        let names = registry.names();
        let mut suggestion = closest(name, names.iter().map(String::as_str));
        if suggestion.is_none() && !name.starts_with("builtin:") {
            let prefixed = format!("builtin:{name}");
            suggestion = names.iter().find(|n| **n == prefixed).cloned();
        }
        diags.push(Diagnostic::error(
            Problem::Unknown { kind: NameKind::Plugin, name: name.into(), context: None, suggestion },
            uses.loc,
        ));
        return None;
    }
    let best = versions.iter().filter(|d| req.matches(&d.version)).max_by(|a, b| a.version.cmp(&b.version)).cloned();
    if best.is_none() {
        let mut available: Vec<String> = versions.iter().map(|d| d.version.to_string()).collect();
        available.sort();
        diags.push(Diagnostic::error(
            Problem::NoMatchingVersion {
                name: name.into(),
                requirement: requirement.into(),
                available: available.join(", "),
            },
            uses.loc,
        ));
    }
    best
}

fn check_test(
    test: &TestDecl,
    inputs: &[ir::Input],
    scope: &mut Scope<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ir::TestCase> {
    let errors_before = count_errors(diags);
    let mut given: Vec<Option<Value>> = vec![None; inputs.len()];
    for (k, (name, arg)) in test.inputs.iter().enumerate() {
        if let Some((first, _)) = test.inputs[..k].iter().find(|(n, _)| n.text == name.text) {
            diags.push(
                Diagnostic::error(Problem::Duplicate { kind: NameKind::Input, name: name.text.clone() }, name.loc)
                    .with_related(first.loc, "first given here"),
            );
            continue;
        }
        let Some(i) = inputs.iter().position(|inp| inp.name == name.text) else {
            diags.push(Diagnostic::error(
                Problem::Unknown {
                    kind: NameKind::Input,
                    name: name.text.clone(),
                    context: None,
                    suggestion: closest(&name.text, inputs.iter().map(|i| i.name.as_str())),
                },
                name.loc,
            ));
            continue;
        };
        match literal_value(&arg.value, &inputs[i].ty) {
            Some(v) => given[i] = Some(v),
            None => {
                // Given, though wrong: not also "missing".
                given[i] = Some(inputs[i].ty.zero());
                diags.push(Diagnostic::error(
                    Problem::TypeMismatch {
                        expected: inputs[i].ty.to_string(),
                        found: stage::lit_type(&arg.value),
                        context: format!("input `{}`", name.text),
                    },
                    arg.loc,
                ));
            }
        }
    }
    let mut values = Vec::with_capacity(inputs.len());
    for (input, value) in inputs.iter().zip(given) {
        match value.or_else(|| input.default.clone()) {
            Some(v) => values.push(v),
            None => diags.push(Diagnostic::error(
                Problem::MissingTestInput { test: test.name.text.clone(), input: input.name.clone() },
                test.name.loc,
            )),
        }
    }
    let mut history = Vec::with_capacity(test.items.len());
    for (n, item) in test.items.iter().enumerate() {
        let fields = item
            .fields
            .iter()
            .filter_map(|(k, a)| literal_value(&a.value, &Type::Any).map(|v| (Arc::from(k.text.as_str()), v)))
            .collect();
        history.push(Item {
            id: Arc::from(item.id.clone().unwrap_or_else(|| format!("item-{}", n + 1))),
            kind: Arc::from(item.kind.clone().unwrap_or_else(|| "note".into())),
            text: Arc::from(item.text.clone().unwrap_or_default()),
            timestamp: item.timestamp,
            fields,
        });
    }
    let mut cx = Cx::new(diags);
    let expects: Vec<Option<ir::Expr>> =
        test.expects.iter().map(|e| lower_typed(e, &Type::Bool, "`expect` is a condition", scope, &mut cx)).collect();
    if test.expects.is_empty() {
        cx.diags.push(Diagnostic::error(
            Problem::Missing {
                node: format!("test `{}`", test.name.text),
                what: "at least one `expect \"CONDITION\"`".into(),
            },
            test.name.loc,
        ));
    }
    if count_errors(diags) > errors_before {
        return None;
    }
    Some(ir::TestCase {
        name: test.name.text.clone(),
        history,
        inputs: values,
        expects: expects.into_iter().collect::<Option<_>>()?,
        loc: test.loc,
    })
}

/// Renumbers stages so that a stage's id is its position in `order`.
fn into_topological_order(pipeline: &mut ir::Pipeline, order: &[usize]) {
    let mut new_id = vec![0u32; order.len()];
    for (pos, &old) in order.iter().enumerate() {
        new_id[old] = pos as u32;
    }
    let mut old: Vec<Option<ir::Stage>> = std::mem::take(&mut pipeline.stages).into_iter().map(Some).collect();
    for &o in order {
        let mut stage = old[o].take().expect("invariant: topological order lists each stage once");
        stage.id = StageId(new_id[o]);
        for d in &mut stage.deps {
            *d = StageId(new_id[d.index()]);
        }
        stage.deps.sort();
        if let Some(w) = &mut stage.when {
            remap_expr(w, &new_id);
        }
        for b in &mut stage.inputs {
            match &mut b.value {
                Bound::Expr(e) => remap_expr(e, &new_id),
                Bound::Template(t) => remap_parts(&mut t.parts, &new_id),
            }
        }
        for s in &mut stage.config {
            if let SettingValue::ItemFilter(e) = &mut s.value {
                remap_expr(e, &new_id);
            }
        }
        pipeline.stages.push(stage);
    }
    remap_expr(&mut pipeline.output, &new_id);
    for t in &mut pipeline.tests {
        for e in &mut t.expects {
            remap_expr(e, &new_id);
        }
    }
}

fn remap_expr(e: &mut ir::Expr, new_id: &[u32]) {
    match &mut e.kind {
        ExprKind::StageOutput { stage, .. } => *stage = StageId(new_id[stage.index()]),
        ExprKind::List(xs) | ExprKind::Call(_, xs) => xs.iter_mut().for_each(|x| remap_expr(x, new_id)),
        ExprKind::Field(b, _) | ExprKind::Unary(_, b) => remap_expr(b, new_id),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            remap_expr(a, new_id);
            remap_expr(b, new_id);
        }
        ExprKind::Literal(_) | ExprKind::Input(_) | ExprKind::Local(_) | ExprKind::TestOutput => {}
    }
}

fn remap_parts(parts: &mut [Part], new_id: &[u32]) {
    for p in parts {
        match p {
            Part::Text(_) => {}
            Part::Expr(e) => remap_expr(e, new_id),
            Part::For { list, body, .. } => {
                remap_expr(list, new_id);
                remap_parts(body, new_id);
            }
            Part::If { branches, otherwise } => {
                for (c, b) in branches {
                    remap_expr(c, new_id);
                    remap_parts(b, new_id);
                }
                remap_parts(otherwise, new_id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
