//! Resolving and typing expressions and templates: syntax → IR.
//!
//! Names become ids here (`input.query` → [`InputId`], `similar.items` → a stage output), every
//! node gets its type, and every stage an expression reads is recorded as a dependency (with the
//! location of its first use, for cycle reports). A sub-expression with an error yields `None`
//! after reporting once, so one mistake does not cascade into many.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::descriptor::OutputPort;
use crate::diagnostic::{Diagnostic, NameKind, Problem};
use crate::expr::{self, BinOp, ExprKind as S, UnOp};
use crate::functions::Func;
use crate::ir::{self, ExprKind as I, InputId, LocalId};
use crate::span::Loc;
use crate::suggest::closest;
use crate::types::{Item, Type, Value};

/// What a stage looks like from an expression.
pub(crate) struct StageSig {
    pub name: String,
    /// `None` when the stage's plugin could not be resolved (already reported).
    pub outputs: Option<Vec<OutputPort>>,
    pub plugin: String,
    /// For a `builtin:minimize` stage, the profile fields it passes on (its `fields` setting):
    /// reading any other field of its `profile` output is `withheld_field`.
    pub kept_fields: Option<Vec<String>>,
}

/// The names an expression may use.
pub(crate) struct Scope<'a> {
    pub inputs: &'a [(String, Type)],
    pub stages: &'a [StageSig],
    pub locals: Vec<(String, Type)>,
    /// The pipeline output's type, when `output` may be named (tests).
    pub output: Option<Type>,
}

impl Scope<'_> {
    fn stage(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }
}

/// Per-expression state: where diagnostics go and which stages were read.
pub(crate) struct Cx<'d> {
    pub diags: &'d mut Vec<Diagnostic>,
    /// Stage (declaration index) → where it was first read.
    pub deps: BTreeMap<usize, Loc>,
    /// Stages a misspelled name most likely meant: counted as read when looking for unreachable
    /// stages, so that one typo is one diagnostic.
    pub guessed: Vec<usize>,
}

impl<'d> Cx<'d> {
    pub fn new(diags: &'d mut Vec<Diagnostic>) -> Self {
        Cx { diags, deps: BTreeMap::new(), guessed: Vec::new() }
    }

    fn error(&mut self, problem: Problem, loc: Loc) {
        self.diags.push(Diagnostic::error(problem, loc));
    }
}

/// Lowers an expression and requires its type to fit `want`.
pub(crate) fn lower_typed(
    e: &expr::Expr,
    want: &Type,
    context: &str,
    scope: &mut Scope<'_>,
    cx: &mut Cx<'_>,
) -> Option<ir::Expr> {
    let lowered = lower(e, scope, cx)?;
    if !lowered.ty.fits(want) {
        cx.error(
            Problem::TypeMismatch {
                expected: want.to_string(),
                found: lowered.ty.clone(),
                context: context.to_string(),
            },
            e.loc,
        );
        return None;
    }
    Some(lowered)
}

pub(crate) fn lower(e: &expr::Expr, scope: &mut Scope<'_>, cx: &mut Cx<'_>) -> Option<ir::Expr> {
    let loc = e.loc;
    let typed = |kind: I, ty: Type| Some(ir::Expr { kind, ty, loc });
    match &e.kind {
        S::Number(n) => {
            if !n.is_finite() {
                cx.error(Problem::BadOperand { message: "number is too large".into() }, loc);
                return None;
            }
            typed(I::Literal(Value::Number(*n)), Type::Number)
        }
        S::Text(s) => typed(I::Literal(Value::text(s.as_str())), Type::Text),
        S::Bool(b) => typed(I::Literal(Value::Bool(*b)), Type::Bool),
        S::List(xs) => {
            let items: Vec<Option<ir::Expr>> = xs.iter().map(|x| lower(x, scope, cx)).collect();
            let items: Vec<ir::Expr> = items.into_iter().collect::<Option<_>>()?;
            let mut elem: Option<Type> = None;
            for item in &items {
                elem = match elem {
                    None => Some(item.ty.clone()),
                    Some(t) if item.ty.fits(&t) && t != Type::Any => Some(t),
                    Some(t) if t.fits(&item.ty) => Some(item.ty.clone()),
                    Some(t) => {
                        cx.error(
                            Problem::BadOperand {
                                message: format!("a list's elements must share one type, found {t} and {}", item.ty),
                            },
                            item.loc,
                        );
                        return None;
                    }
                };
            }
            typed(I::List(items), Type::list(elem.unwrap_or(Type::Any)))
        }
        S::Name(name) => lower_name(name, loc, scope, cx),
        S::Field(base, field, field_loc) => {
            if let S::Name(root) = &base.kind
                && !scope.locals.iter().any(|(n, _)| n == root)
            {
                if root == "input" {
                    return lower_input(field, *field_loc, loc, scope, cx);
                }
                if let Some(stage) = scope.stage(root) {
                    return lower_port(stage, field, *field_loc, loc, scope, cx);
                }
            }
            check_withheld(base, field, *field_loc, scope, cx);
            let base = lower(base, scope, cx)?;
            let ty = match &base.ty {
                Type::Item => Item::field_type(field),
                Type::Record | Type::Any => Type::Any,
                other => {
                    cx.error(Problem::BadOperand { message: format!("{other} has no fields") }, *field_loc);
                    return None;
                }
            };
            typed(I::Field(Box::new(base), Arc::from(field.as_str())), ty)
        }
        S::Index(base, index) => {
            let base = lower(base, scope, cx);
            let index = lower(index, scope, cx);
            let (base, index) = (base?, index?);
            let ty = match (&base.ty, &index.ty) {
                (Type::List(t), i) if i.fits(&Type::Number) => (**t).clone(),
                (Type::Record | Type::Item, i) if i.fits(&Type::Text) => Type::Any,
                (Type::Any, i) if i.fits(&Type::Number) || i.fits(&Type::Text) => Type::Any,
                (b, i) => {
                    cx.error(Problem::BadOperand { message: format!("cannot index {b} with {i}") }, loc);
                    return None;
                }
            };
            typed(I::Index(Box::new(base), Box::new(index)), ty)
        }
        S::Call(name, name_loc, args) => {
            let Some(func) = Func::by_name(name) else {
                let suggestion = closest(name, Func::ALL.iter().map(|f| f.name()));
                cx.error(
                    Problem::Unknown { kind: NameKind::Function, name: name.clone(), context: None, suggestion },
                    *name_loc,
                );
                return None;
            };
            let (min, max) = func.arity();
            if args.len() < min || args.len() > max {
                let expected = if min == max { min.to_string() } else { format!("{min} to {max}") };
                cx.error(Problem::Arity { function: name.clone(), expected, found: args.len() }, loc);
                return None;
            }
            let lowered: Vec<Option<ir::Expr>> = args.iter().map(|a| lower(a, scope, cx)).collect();
            let lowered: Vec<ir::Expr> = lowered.into_iter().collect::<Option<_>>()?;
            let types: Vec<Type> = lowered.iter().map(|a| a.ty.clone()).collect();
            match func.check(&types) {
                Ok(ty) => typed(I::Call(func, lowered), ty),
                Err(bad) => {
                    cx.error(
                        Problem::TypeMismatch {
                            expected: bad.expected.to_string(),
                            found: bad.found,
                            context: format!("argument {} of `{name}`", bad.index + 1),
                        },
                        args.get(bad.index).map_or(loc, |a| a.loc),
                    );
                    None
                }
            }
        }
        S::Unary(op, inner) => {
            let inner = lower(inner, scope, cx)?;
            let want = if *op == UnOp::Not { Type::Bool } else { Type::Number };
            if !inner.ty.fits(&want) {
                let sym = if *op == UnOp::Not { "not" } else { "-" };
                cx.error(
                    Problem::BadOperand { message: format!("`{sym}` needs {want}, found {}", inner.ty) },
                    inner.loc,
                );
                return None;
            }
            typed(I::Unary(*op, Box::new(inner)), want)
        }
        S::Binary(op, a, b) => {
            let a = lower(a, scope, cx);
            let b = lower(b, scope, cx);
            let (a, b) = (a?, b?);
            let ty = binary_type(*op, &a.ty, &b.ty).ok_or(()).map_err(|()| {
                cx.error(
                    Problem::BadOperand { message: format!("`{}` cannot combine {} and {}", op.symbol(), a.ty, b.ty) },
                    loc,
                )
            });
            typed(I::Binary(*op, Box::new(a), Box::new(b)), ty.ok()?)
        }
    }
}

/// The result type of a binary operator, or `None` if the operands do not fit it.
fn binary_type(op: BinOp, a: &Type, b: &Type) -> Option<Type> {
    let num = |t: &Type| t.fits(&Type::Number);
    Some(match op {
        BinOp::And | BinOp::Or => {
            if a.fits(&Type::Bool) && b.fits(&Type::Bool) {
                Type::Bool
            } else {
                return None;
            }
        }
        // Comparing values of different types is always false: a mistake, not a question.
        BinOp::Eq | BinOp::Ne => {
            if a.fits(b) || b.fits(a) {
                Type::Bool
            } else {
                return None;
            }
        }
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ok = (num(a) && num(b)) || (a.fits(&Type::Text) && b.fits(&Type::Text));
            if ok { Type::Bool } else { return None }
        }
        BinOp::In => match b {
            Type::List(elem) if a.fits(elem) => Type::Bool,
            Type::Text if a.fits(&Type::Text) => Type::Bool,
            Type::Any => Type::Bool,
            _ => return None,
        },
        BinOp::Add => match (a, b) {
            (Type::Any, t) | (t, Type::Any) if matches!(t, Type::Number | Type::Text | Type::List(_) | Type::Any) => {
                t.clone()
            }
            (Type::Number, Type::Number) => Type::Number,
            (Type::Text, Type::Text) => Type::Text,
            (Type::List(x), Type::List(y)) if x.fits(y) => {
                Type::List(if **x == Type::Any { y.clone() } else { x.clone() })
            }
            _ => return None,
        },
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            if num(a) && num(b) {
                Type::Number
            } else {
                return None;
            }
        }
    })
}

fn lower_name(name: &str, loc: Loc, scope: &mut Scope<'_>, cx: &mut Cx<'_>) -> Option<ir::Expr> {
    if let Some(depth) = scope.locals.iter().rposition(|(n, _)| n == name) {
        let ty = scope.locals[depth].1.clone();
        return Some(ir::Expr { kind: I::Local(LocalId(depth as u32)), ty, loc });
    }
    if name == "output"
        && let Some(ty) = &scope.output
    {
        return Some(ir::Expr { kind: I::TestOutput, ty: ty.clone(), loc });
    }
    if name == "input" {
        let names: Vec<&str> = scope.inputs.iter().map(|(n, _)| n.as_str()).collect();
        cx.error(
            Problem::Shape {
                node: "input".into(),
                expected: format!("a field: `input.NAME` (one of: {})", list_or_none(&names)),
            },
            loc,
        );
        return None;
    }
    if let Some(i) = scope.stage(name) {
        let ports = scope.stages[i]
            .outputs
            .as_ref()
            .map(|o| o.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
            .unwrap_or_default();
        cx.error(
            Problem::Shape {
                node: name.into(),
                expected: format!("a port: `{name}.PORT` (one of: {})", list_or_none(&ports)),
            },
            loc,
        );
        return None;
    }
    let mut known: Vec<&str> = scope.stages.iter().map(|s| s.name.as_str()).collect();
    known.extend(scope.locals.iter().map(|(n, _)| n.as_str()));
    known.push("input");
    let suggestion = closest(name, known);
    if let Some(stage) = suggestion.as_deref().and_then(|s| scope.stage(s)) {
        cx.guessed.push(stage);
    }
    cx.error(Problem::Unknown { kind: NameKind::Stage, name: name.into(), context: None, suggestion }, loc);
    None
}

fn lower_input(field: &str, field_loc: Loc, loc: Loc, scope: &Scope<'_>, cx: &mut Cx<'_>) -> Option<ir::Expr> {
    match scope.inputs.iter().position(|(n, _)| n == field) {
        Some(i) => Some(ir::Expr { kind: I::Input(InputId(i as u32)), ty: scope.inputs[i].1.clone(), loc }),
        None => {
            let suggestion = closest(field, scope.inputs.iter().map(|(n, _)| n.as_str()));
            cx.error(
                Problem::Unknown { kind: NameKind::Input, name: field.into(), context: None, suggestion },
                field_loc,
            );
            None
        }
    }
}

fn lower_port(
    stage: usize,
    field: &str,
    field_loc: Loc,
    loc: Loc,
    scope: &Scope<'_>,
    cx: &mut Cx<'_>,
) -> Option<ir::Expr> {
    cx.deps.entry(stage).or_insert(loc);
    let sig = &scope.stages[stage];
    let outputs = sig.outputs.as_ref()?;
    match outputs.iter().position(|p| p.name == field) {
        Some(port) => Some(ir::Expr {
            kind: I::StageOutput { stage: ir::StageId(stage as u32), port: port as u32 },
            ty: outputs[port].ty.clone(),
            loc,
        }),
        None => {
            let suggestion = closest(field, outputs.iter().map(|p| p.name.as_str()));
            let names: Vec<&str> = outputs.iter().map(|p| p.name.as_str()).collect();
            let context = Some(format!("on stage `{}` ({} outputs: {})", sig.name, sig.plugin, list_or_none(&names)));
            cx.error(Problem::Unknown { kind: NameKind::Port, name: field.into(), context, suggestion }, field_loc);
            None
        }
    }
}

/// Reports `STAGE.profile.FIELD…` when STAGE is a minimization stage that withholds that field
/// (a dotted path: `field_means.rating` passes only that key of `field_means`). Reported once,
/// at the first field along the path that does not pass.
fn check_withheld(base: &expr::Expr, field: &str, field_loc: Loc, scope: &Scope<'_>, cx: &mut Cx<'_>) {
    let mut path = vec![field];
    let mut at = base;
    let (root, port) = loop {
        match &at.kind {
            S::Field(inner, name, _) => match &inner.kind {
                S::Name(root) => break (root, name),
                _ => {
                    path.push(name);
                    at = inner;
                }
            },
            _ => return,
        }
    };
    if port != "profile" || scope.locals.iter().any(|(n, _)| n == root) {
        return;
    }
    let Some(sig) = scope.stage(root).map(|i| &scope.stages[i]) else { return };
    let Some(kept) = &sig.kept_fields else { return };
    path.reverse();
    let passes = |path: &[&str]| {
        let path = path.join(".");
        path.is_empty()
            || kept
                .iter()
                .any(|k| *k == path || path.starts_with(&format!("{k}.")) || k.starts_with(&format!("{path}.")))
    };
    if !passes(&path) && passes(&path[..path.len() - 1]) {
        let problem = Problem::Withheld { stage: sig.name.clone(), field: path.join("."), kept: kept.clone() };
        cx.error(problem, field_loc);
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// Lowers a template; its value is text.
pub(crate) fn lower_template(t: &expr::Template, scope: &mut Scope<'_>, cx: &mut Cx<'_>) -> Option<ir::Template> {
    Some(ir::Template { parts: lower_parts(&t.parts, scope, cx)? })
}

fn lower_parts(parts: &[expr::Part], scope: &mut Scope<'_>, cx: &mut Cx<'_>) -> Option<Vec<ir::Part>> {
    let mut out = Vec::with_capacity(parts.len());
    let mut ok = true;
    for part in parts {
        let lowered = match part {
            expr::Part::Text(t) => Some(ir::Part::Text(Arc::from(t.as_str()))),
            expr::Part::Expr(e) => lower(e, scope, cx).map(ir::Part::Expr),
            expr::Part::For { var, var_loc, list, body } => {
                let list = lower(list, scope, cx);
                let elem = match list.as_ref().map(|l| &l.ty) {
                    Some(Type::List(t)) => Some((**t).clone()),
                    Some(Type::Any) => Some(Type::Any),
                    Some(other) => {
                        cx.error(
                            Problem::TypeMismatch {
                                expected: "a list".into(),
                                found: other.clone(),
                                context: "`{{ for }}` loops over a list".into(),
                            },
                            list.as_ref().map_or(*var_loc, |l| l.loc),
                        );
                        None
                    }
                    None => None,
                };
                let shadows = scope.stages.iter().any(|s| s.name == *var) || scope.locals.iter().any(|(n, _)| n == var);
                if super::RESERVED.contains(&var.as_str()) || shadows {
                    let what = if shadows {
                        "a loop variable must not hide a stage or an outer loop variable"
                    } else {
                        "reserved word"
                    };
                    cx.error(
                        Problem::InvalidName { kind: NameKind::Variable, name: var.clone(), reason: what },
                        *var_loc,
                    );
                }
                scope.locals.push((var.clone(), elem.clone().unwrap_or(Type::Any)));
                let var_id = LocalId((scope.locals.len() - 1) as u32);
                let body = lower_parts(body, scope, cx);
                scope.locals.pop();
                match (list, elem, body) {
                    (Some(list), Some(_), Some(body)) => Some(ir::Part::For { var: var_id, list, body }),
                    _ => None,
                }
            }
            expr::Part::If { branches, otherwise } => {
                let mut lowered = Vec::with_capacity(branches.len());
                let mut branch_ok = true;
                for (cond, body) in branches {
                    // Any type is allowed: templates test presence (spec/language.md §6.2).
                    let cond = lower(cond, scope, cx);
                    let body = lower_parts(body, scope, cx);
                    match (cond, body) {
                        (Some(c), Some(b)) => lowered.push((c, b)),
                        _ => branch_ok = false,
                    }
                }
                let otherwise = lower_parts(otherwise, scope, cx);
                match (branch_ok, otherwise) {
                    (true, Some(otherwise)) => Some(ir::Part::If { branches: lowered, otherwise }),
                    _ => None,
                }
            }
        };
        match lowered {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
