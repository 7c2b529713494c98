//! Checking one stage against its plugin's descriptor: bindings, config, grants, policies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::expr::{Cx, Scope, lower_template, lower_typed};
use super::literal_value;
use crate::descriptor::{Capability, ConfigType, Descriptor, PortForm};
use crate::diagnostic::{Diagnostic, NameKind, Problem};
use crate::expr;
use crate::ir::{self, Bound, OnError, Setting, SettingValue};
use crate::span::Loc;
use crate::suggest::closest;
use crate::syntax::read::{parse_duration, parse_expr_arg, syntax_diagnostic};
use crate::syntax::{Arg, EntryDecl, Lit, OnErrorDecl, StageDecl};
use crate::types::{Type, Value};

/// How long a stage may run when the file does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout=` accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// A stage checked in declaration order: ids in its expressions are declaration indices until
/// the pipeline is put in topological order.
pub(crate) struct CheckedStage {
    pub stage: Option<ir::Stage>,
    /// Stages read (declaration index → first use).
    pub deps: BTreeMap<usize, Loc>,
    /// Stages that misspelled names probably meant (see [`Cx::guessed`]).
    pub guessed: Vec<usize>,
}

pub(crate) fn check_stage(
    index: usize,
    decl: &StageDecl,
    desc: Option<&Arc<Descriptor>>,
    scope: &mut Scope<'_>,
    diags: &mut Vec<Diagnostic>,
) -> CheckedStage {
    let errors_before = count_errors(diags);
    let mut cx = Cx::new(diags);
    let when = decl.when.as_ref().and_then(|w| lower_typed(w, &Type::Bool, "`when=` is a condition", scope, &mut cx));
    let Some(desc) = desc else {
        // The plugin is unknown (already reported): still follow references in its entries, so
        // that the stages it reads are not reported as unreachable.
        let mut quiet = Vec::new();
        let mut quiet_cx = Cx::new(&mut quiet);
        for entry in &decl.entries {
            if let [Arg { value: Lit::Text(_), .. }] = entry.args.as_slice()
                && let Some(e) = parse_expr_arg(&entry.args[0], "input", quiet_cx.diags)
            {
                super::expr::lower(&e, scope, &mut quiet_cx);
            }
        }
        let mut deps = cx.deps;
        deps.extend(quiet_cx.deps);
        let mut guessed = cx.guessed;
        guessed.extend(quiet_cx.guessed);
        return CheckedStage { stage: None, deps, guessed };
    };

    let mut inputs: Vec<ir::Binding> = Vec::new();
    let mut config: Vec<Setting> = Vec::new();
    let mut seen: BTreeMap<&str, Loc> = BTreeMap::new();
    for entry in &decl.entries {
        let key = entry.key.text.as_str();
        if let Some(first) = seen.get(key) {
            cx.diags.push(
                Diagnostic::error(Problem::Duplicate { kind: NameKind::ConfigKey, name: key.into() }, entry.key.loc)
                    .with_related(*first, "first set here"),
            );
            continue;
        }
        seen.insert(key, entry.key.loc);
        if let Some(port) = desc.input(key) {
            let Some(arg) = one_string(entry, "one string", cx.diags) else { continue };
            let Lit::Text(src) = &arg.value else { continue };
            let context = format!("input `{key}` of {} takes {}", desc.name, port.ty);
            let value = match port.form {
                PortForm::Expression => match expr::parse_expression(src, &arg.map) {
                    Ok(e) => lower_typed(&e, &port.ty, &context, scope, &mut cx).map(Bound::Expr),
                    Err(e) => {
                        cx.diags.push(syntax_diagnostic(e, "expression"));
                        None
                    }
                },
                PortForm::Template => match expr::parse_template(src, &arg.map) {
                    Ok(t) => lower_template(&t, scope, &mut cx).map(Bound::Template),
                    Err(e) => {
                        cx.diags.push(syntax_diagnostic(e, "template"));
                        None
                    }
                },
            };
            if let Some(value) = value {
                inputs.push(ir::Binding { port: key.to_string(), value });
            }
        } else if let Some(field) = desc.config_field(key) {
            if let Some(value) = check_setting(entry, &field.ty, scope, &mut cx) {
                config.push(Setting { key: key.to_string(), value });
            }
        } else {
            let known = desc.inputs.iter().map(|p| p.name.as_str()).chain(desc.config.iter().map(|f| f.name.as_str()));
            cx.diags.push(Diagnostic::error(
                Problem::Unknown {
                    kind: NameKind::ConfigKey,
                    name: key.into(),
                    context: Some(format!("for plugin `{}`", desc.name)),
                    suggestion: closest(key, known),
                },
                entry.key.loc,
            ));
        }
    }
    for port in desc.inputs.iter().filter(|p| p.required) {
        if !seen.contains_key(port.name.as_str()) {
            cx.diags.push(
                Diagnostic::error(
                    Problem::MissingInput { stage: decl.name.text.clone(), port: port.name.clone() },
                    decl.name.loc,
                )
                .with_label(format!("{} needs `{}` ({})", desc.name, port.name, port.ty)),
            );
        }
    }

    let grants = check_grants(decl, desc, &config, cx.diags);
    let on_error = check_on_error(decl, desc, cx.diags);
    let timeout = match decl.timeout {
        Some((d, loc)) if d.is_zero() || d > MAX_TIMEOUT => {
            cx.diags.push(Diagnostic::error(
                Problem::BadValue {
                    key: "timeout".into(),
                    reason: format!("must be more than 0s and at most {}s", MAX_TIMEOUT.as_secs()),
                    suggestion: None,
                },
                loc,
            ));
            DEFAULT_TIMEOUT
        }
        Some((d, _)) => d,
        None => DEFAULT_TIMEOUT,
    };
    let (deps, guessed) = (cx.deps, cx.guessed);
    let ok = count_errors(diags) == errors_before;
    let stage = ok.then(|| ir::Stage {
        id: ir::StageId(index as u32),
        label: ir::Label(Arc::from(decl.name.text.as_str())),
        plugin: ir::PluginRef { name: desc.name.clone(), version: desc.version.clone() },
        kind: desc.kind,
        inputs,
        config,
        outputs: desc.outputs.iter().map(|p| ir::OutputSlot { name: p.name.clone(), ty: p.ty.clone() }).collect(),
        grants,
        cache: decl.cache.map(|(d, _)| d),
        on_error: on_error.unwrap_or(OnError::Fail),
        when: when.clone(),
        timeout,
        deps: deps.keys().map(|&i| ir::StageId(i as u32)).collect(),
        loc: decl.loc,
    });
    CheckedStage { stage, deps, guessed }
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

fn one_string<'e>(entry: &'e EntryDecl, expected: &str, diags: &mut Vec<Diagnostic>) -> Option<&'e Arg> {
    match entry.args.as_slice() {
        [arg @ Arg { value: Lit::Text(_), .. }] => Some(arg),
        [] => {
            diags.push(Diagnostic::error(
                Problem::Missing { node: entry.key.text.clone(), what: expected.into() },
                entry.loc,
            ));
            None
        }
        [arg] => {
            diags.push(Diagnostic::error(
                Problem::Shape {
                    node: entry.key.text.clone(),
                    expected: format!("{expected}, found {}", arg.value.describe()),
                },
                arg.loc,
            ));
            None
        }
        [_, extra, ..] => {
            diags.push(Diagnostic::error(
                Problem::Shape { node: entry.key.text.clone(), expected: expected.into() },
                extra.loc,
            ));
            None
        }
    }
}

fn check_setting(entry: &EntryDecl, ty: &ConfigType, scope: &mut Scope<'_>, cx: &mut Cx<'_>) -> Option<SettingValue> {
    let key = entry.key.text.as_str();
    let bad = |reason: String, suggestion: Option<String>, loc: Loc| {
        Diagnostic::error(Problem::BadValue { key: key.into(), reason, suggestion }, loc)
    };
    if let ConfigType::TextList { choices } = ty {
        if entry.args.is_empty() {
            cx.diags.push(Diagnostic::error(
                Problem::Missing { node: key.into(), what: "one or more strings".into() },
                entry.loc,
            ));
            return None;
        }
        let mut values = Vec::new();
        for arg in &entry.args {
            match (&arg.value, choices) {
                (Lit::Text(s), Some(choices)) if !choices.contains(s) => cx.diags.push(bad(
                    format!("`{s}` is not one of {}", choices.join(", ")),
                    closest(s, choices.iter().map(String::as_str)),
                    arg.loc,
                )),
                (Lit::Text(s), _) => values.push(Value::text(s.as_str())),
                (other, _) => {
                    cx.diags.push(bad(format!("expected a string, found {}", other.describe()), None, arg.loc))
                }
            }
        }
        return (values.len() == entry.args.len()).then(|| SettingValue::Value(Value::list(values)));
    }
    let expected = match ty {
        ConfigType::Number { .. } => "one number",
        ConfigType::Bool => "#true or #false",
        _ => "one string",
    };
    let arg = match entry.args.as_slice() {
        [arg] => arg,
        [] => {
            cx.diags.push(Diagnostic::error(Problem::Missing { node: key.into(), what: expected.into() }, entry.loc));
            return None;
        }
        [_, extra, ..] => {
            cx.diags.push(Diagnostic::error(Problem::Shape { node: key.into(), expected: expected.into() }, extra.loc));
            return None;
        }
    };
    let wrong = |arg: &Arg| bad(format!("expected {expected}, found {}", arg.value.describe()), None, arg.loc);
    match (ty, &arg.value) {
        (ConfigType::Text, Lit::Text(s)) => Some(SettingValue::Value(Value::text(s.as_str()))),
        (ConfigType::Number { min, max, integer }, Lit::Number(n)) => {
            if !n.is_finite() {
                cx.diags.push(bad(format!("expected a finite number, found {n}"), None, arg.loc));
                None
            } else if *integer && n.fract() != 0.0 {
                cx.diags.push(bad(format!("expected a whole number, found {n}"), None, arg.loc));
                None
            } else if n < min || n > max {
                cx.diags.push(bad(format!("{n} is outside {min}..={max}"), None, arg.loc));
                None
            } else {
                Some(SettingValue::Value(Value::Number(*n)))
            }
        }
        (ConfigType::Bool, Lit::Bool(b)) => Some(SettingValue::Value(Value::Bool(*b))),
        (ConfigType::Choice(choices), Lit::Text(s)) => {
            if choices.contains(s) {
                Some(SettingValue::Value(Value::text(s.as_str())))
            } else {
                cx.diags.push(bad(
                    format!("`{s}` is not one of {}", choices.join(", ")),
                    closest(s, choices.iter().map(String::as_str)),
                    arg.loc,
                ));
                None
            }
        }
        (ConfigType::Duration, Lit::Text(s)) => match parse_duration(s) {
            Some(d) => Some(SettingValue::Duration(d)),
            None => {
                cx.diags.push(bad(
                    format!("`{s}` is not a duration such as \"30s\", \"15m\" or \"24h\""),
                    None,
                    arg.loc,
                ));
                None
            }
        },
        (ConfigType::ItemFilter, Lit::Text(_)) => {
            let e = parse_expr_arg(arg, "filter", cx.diags)?;
            let mut filter_scope = Scope {
                inputs: scope.inputs,
                stages: scope.stages,
                locals: vec![("item".into(), Type::Item)],
                output: None,
            };
            let lowered = lower_typed(&e, &Type::Bool, "a filter is a condition on `item`", &mut filter_scope, cx)?;
            Some(SettingValue::ItemFilter(lowered))
        }
        _ => {
            cx.diags.push(wrong(arg));
            None
        }
    }
}

fn check_grants(
    decl: &StageDecl,
    desc: &Descriptor,
    config: &[Setting],
    diags: &mut Vec<Diagnostic>,
) -> BTreeSet<Capability> {
    let mut granted = BTreeSet::new();
    for name in &decl.grants {
        match Capability::parse(&name.text) {
            Some(c) if !granted.insert(c) => diags.push(Diagnostic::error(
                Problem::Duplicate { kind: NameKind::Capability, name: name.text.clone() },
                name.loc,
            )),
            Some(_) => {}
            None => diags.push(Diagnostic::error(
                Problem::Unknown {
                    kind: NameKind::Capability,
                    name: name.text.clone(),
                    context: None,
                    suggestion: closest(&name.text, Capability::ALL.iter().map(|c| c.as_str())),
                },
                name.loc,
            )),
        }
    }
    let loc = decl.grants_loc.unwrap_or(decl.name.loc);
    let mut needed: Vec<(Capability, String)> =
        desc.grants.iter().map(|c| (*c, format!("plugin `{}` calls `{c}`", desc.name))).collect();
    for setting in config {
        let Some(field) = desc.config_field(&setting.key) else { continue };
        let off = matches!(setting.value, SettingValue::Value(Value::Bool(false)));
        if let (Some(cap), false) = (field.requires, off) {
            needed.push((cap, format!("`{}` makes plugin `{}` call `{cap}`", setting.key, desc.name)));
        }
    }
    for (cap, reason) in needed {
        if !cap.is_ambient() && !granted.contains(&cap) {
            granted.insert(cap); // report each missing capability once
            diags.push(
                Diagnostic::error(
                    Problem::Ungranted { stage: decl.name.text.clone(), capability: cap.to_string(), reason },
                    loc,
                )
                .with_label(format!("`{cap}` is not granted")),
            );
        }
    }
    for name in &decl.grants {
        if let Some(cap) = Capability::parse(&name.text)
            && !cap.is_ambient()
            && !desc.may_use(cap)
        {
            diags.push(Diagnostic::warning(
                Problem::UnusedGrant { stage: decl.name.text.clone(), capability: cap.to_string() },
                name.loc,
            ));
        }
    }
    granted.retain(|c| decl.grants.iter().any(|n| Capability::parse(&n.text) == Some(*c)));
    granted.extend(Capability::ALL.into_iter().filter(|c| c.is_ambient()));
    granted
}

fn check_on_error(decl: &StageDecl, desc: &Descriptor, diags: &mut Vec<Diagnostic>) -> Option<OnError> {
    let policy = decl.on_error.map(|(p, _)| p);
    match (policy, &decl.fallback) {
        (Some(OnErrorDecl::Fallback), None) => {
            let loc = decl.on_error.map_or(decl.loc, |(_, l)| l);
            diags.push(Diagnostic::error(
                Problem::Missing {
                    node: format!("stage `{}`", decl.name.text),
                    what: "a `fallback PORT=VALUE…` line for on-error=\"fallback\"".into(),
                },
                loc,
            ));
            None
        }
        (Some(OnErrorDecl::Fallback), Some(fallback)) => {
            let mut values: Vec<Value> = desc.outputs.iter().map(|p| p.ty.zero()).collect();
            let mut ok = true;
            for (name, arg) in &fallback.values {
                let Some((i, port)) = desc.output(&name.text) else {
                    diags.push(Diagnostic::error(
                        Problem::Unknown {
                            kind: NameKind::Port,
                            name: name.text.clone(),
                            context: Some(format!("on plugin `{}`", desc.name)),
                            suggestion: closest(&name.text, desc.outputs.iter().map(|p| p.name.as_str())),
                        },
                        name.loc,
                    ));
                    ok = false;
                    continue;
                };
                match literal_value(&arg.value, &port.ty) {
                    Some(v) => values[i] = v,
                    None => {
                        diags.push(Diagnostic::error(
                            Problem::TypeMismatch {
                                expected: port.ty.to_string(),
                                found: lit_type(&arg.value),
                                context: format!("fallback for output `{}`", port.name),
                            },
                            arg.loc,
                        ));
                        ok = false;
                    }
                }
            }
            ok.then_some(OnError::Fallback(values))
        }
        (_, Some(fallback)) => {
            diags.push(Diagnostic::error(
                Problem::Shape { node: "fallback".into(), expected: "on-error=\"fallback\" on its stage".into() },
                fallback.loc,
            ));
            None
        }
        (Some(OnErrorDecl::Skip), None) => Some(OnError::Skip),
        (Some(OnErrorDecl::Fail) | None, None) => Some(OnError::Fail),
    }
}

pub(crate) fn lit_type(lit: &Lit) -> Type {
    match lit {
        Lit::Text(_) => Type::Text,
        Lit::Number(_) => Type::Number,
        Lit::Bool(_) => Type::Bool,
        Lit::Null => Type::Any,
    }
}
