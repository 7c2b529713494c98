//! Conversions across the plugin boundary: the language's values and descriptors ↔ the WIT
//! types. Everything coming from a plugin is untrusted: conversions from WIT check and return
//! typed errors, never panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use tailor_dsl::descriptor::{
    Capability, ConfigField, ConfigType, Descriptor, InputPort, OutputPort, PortForm, StageKind,
};
use tailor_dsl::types::{Item, Type, Value};

use super::bindings::types as wit;

pub fn capability_to_wit(c: Capability) -> wit::Capability {
    match c {
        Capability::Log => wit::Capability::Log,
        Capability::Embed => wit::Capability::Embed,
        Capability::Search => wit::Capability::Search,
        Capability::Complete => wit::Capability::Complete,
        Capability::Kv => wit::Capability::Kv,
        Capability::Now => wit::Capability::Now,
    }
}

pub fn capability_from_wit(c: wit::Capability) -> Capability {
    match c {
        wit::Capability::Log => Capability::Log,
        wit::Capability::Embed => Capability::Embed,
        wit::Capability::Search => Capability::Search,
        wit::Capability::Complete => Capability::Complete,
        wit::Capability::Kv => Capability::Kv,
        wit::Capability::Now => Capability::Now,
    }
}

pub fn item_to_wit(item: &Item) -> wit::Item {
    let fields = Value::Record(Arc::new(item.fields.clone()));
    wit::Item {
        id: item.id.to_string(),
        kind: item.kind.to_string(),
        text: item.text.to_string(),
        timestamp: item.timestamp,
        fields: tailor_dsl::types::to_json(&fields),
    }
}

/// A value for a port or setting of type `ty`, in the WIT encoding: lists of texts, numbers and
/// items as typed lists (by the declared element type, so that an empty list keeps its type),
/// everything else nested as JSON.
pub fn value_to_wit(value: &Value, ty: &Type) -> wit::Value {
    let texts = |xs: &[Value]| xs.iter().all(|x| matches!(x, Value::Text(_)));
    let numbers = |xs: &[Value]| xs.iter().all(|x| matches!(x, Value::Number(_)));
    let items = |xs: &[Value]| xs.iter().all(|x| matches!(x, Value::Item(_)));
    match value {
        Value::None => wit::Value::None,
        Value::Text(s) => wit::Value::Text(s.to_string()),
        Value::Number(n) => wit::Value::Number(*n),
        Value::Bool(b) => wit::Value::Boolean(*b),
        Value::List(xs) => {
            let elem = match ty {
                Type::List(elem) => (**elem).clone(),
                _ => Type::Any,
            };
            let nonempty = !xs.is_empty();
            if (elem == Type::Text || (elem == Type::Any && nonempty)) && texts(xs) {
                wit::Value::Texts(xs.iter().map(ToString::to_string).collect())
            } else if (elem == Type::Number || (elem == Type::Any && nonempty)) && numbers(xs) {
                wit::Value::Numbers(
                    xs.iter().filter_map(|x| if let Value::Number(n) = x { Some(*n) } else { None }).collect(),
                )
            } else if (elem == Type::Item || (elem == Type::Any && nonempty)) && items(xs) {
                wit::Value::Items(
                    xs.iter()
                        .filter_map(|x| if let Value::Item(i) = x { Some(item_to_wit(i)) } else { None })
                        .collect(),
                )
            } else {
                wit::Value::Json(tailor_dsl::types::to_json(value))
            }
        }
        Value::Item(_) | Value::Record(_) => wit::Value::Json(tailor_dsl::types::to_json(value)),
    }
}

/// Why a plugin's value or descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn item_from_wit(item: wit::Item) -> Result<Item, Malformed> {
    let fields = match json_to_value(&item.fields)? {
        Value::Record(map) => Arc::unwrap_or_clone(map),
        Value::None => BTreeMap::new(),
        _ => return Err(Malformed(format!("item `{}`: fields must be a JSON object", item.id))),
    };
    if item.timestamp.is_some_and(|t| !t.is_finite()) {
        return Err(Malformed(format!("item `{}`: timestamp is not finite", item.id)));
    }
    Ok(Item { id: item.id.into(), kind: item.kind.into(), text: item.text.into(), timestamp: item.timestamp, fields })
}

pub fn value_from_wit(value: wit::Value) -> Result<Value, Malformed> {
    let finite =
        |n: f64| if n.is_finite() { Ok(Value::Number(n)) } else { Err(Malformed("a number is not finite".into())) };
    Ok(match value {
        wit::Value::None => Value::None,
        wit::Value::Text(s) => Value::text(s),
        wit::Value::Number(n) => finite(n)?,
        wit::Value::Boolean(b) => Value::Bool(b),
        wit::Value::Texts(xs) => Value::list(xs.into_iter().map(Value::text).collect()),
        wit::Value::Numbers(xs) => Value::list(xs.into_iter().map(finite).collect::<Result<_, _>>()?),
        wit::Value::Items(xs) => Value::list(
            xs.into_iter().map(|i| item_from_wit(i).map(|i| Value::Item(Arc::new(i)))).collect::<Result<_, _>>()?,
        ),
        wit::Value::Json(s) => json_to_value(&s)?,
    })
}

/// Parses JSON text into a value; nesting is bounded so that no plugin can exhaust the stack.
pub fn json_to_value(text: &str) -> Result<Value, Malformed> {
    const MAX_DEPTH: usize = 64;
    // serde_json bounds its own recursion (128 levels), so parsing cannot exhaust the stack.
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| Malformed(format!("invalid JSON: {e}")))?;
    fn convert(v: serde_json::Value, depth: usize) -> Result<Value, Malformed> {
        if depth > MAX_DEPTH {
            return Err(Malformed(format!("JSON nested more than {MAX_DEPTH} deep")));
        }
        Ok(match v {
            serde_json::Value::Null => Value::None,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(
                n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| Malformed("a number is out of range".into()))?,
            ),
            serde_json::Value::String(s) => Value::text(s),
            serde_json::Value::Array(xs) => {
                Value::list(xs.into_iter().map(|x| convert(x, depth + 1)).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(map) => Value::Record(Arc::new(
                map.into_iter()
                    .map(|(k, v)| Ok((Arc::from(k), convert(v, depth + 1)?)))
                    .collect::<Result<_, Malformed>>()?,
            )),
        })
    }
    convert(json, 0)
}

fn type_from_wit(ty: &str, what: &str) -> Result<Type, Malformed> {
    Type::parse(ty).ok_or_else(|| Malformed(format!("{what}: `{ty}` is not a type")))
}

/// A plugin's descriptor, checked: a valid semver version, valid types, unique port and config
/// names, identifiers where expressions name them.
pub fn descriptor_from_wit(d: wit::Descriptor) -> Result<Descriptor, Malformed> {
    let version = semver::Version::parse(&d.version).map_err(|e| Malformed(format!("version `{}`: {e}", d.version)))?;
    if d.name.is_empty() || d.name.len() > 128 || d.name.contains(char::is_whitespace) || d.name.contains('@') {
        return Err(Malformed(format!("`{}` is not a plugin name", d.name)));
    }
    let inputs = d
        .inputs
        .into_iter()
        .map(|p| {
            Ok(InputPort {
                ty: type_from_wit(&p.ty, &format!("input `{}`", p.name))?,
                name: p.name,
                required: p.required,
                form: match p.form {
                    wit::PortForm::Expression => PortForm::Expression,
                    wit::PortForm::Template => PortForm::Template,
                },
                doc: p.doc,
            })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    let outputs = d
        .outputs
        .into_iter()
        .map(|p| {
            if !tailor_dsl::check::is_identifier(&p.name) {
                return Err(Malformed(format!("output `{}`: port names must be identifiers", p.name)));
            }
            Ok(OutputPort { ty: type_from_wit(&p.ty, &format!("output `{}`", p.name))?, name: p.name, doc: p.doc })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    let config = d
        .config
        .into_iter()
        .map(|f| {
            let ty = match f.ty {
                wit::ConfigType::Text => ConfigType::Text,
                wit::ConfigType::Number(r) => {
                    if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                        return Err(Malformed(format!("config `{}`: bad number range", f.name)));
                    }
                    ConfigType::Number { min: r.min, max: r.max, integer: r.integer }
                }
                wit::ConfigType::Boolean => ConfigType::Bool,
                wit::ConfigType::Choice(words) => ConfigType::Choice(words),
                wit::ConfigType::TextList(words) => ConfigType::TextList { choices: words },
                wit::ConfigType::Duration => ConfigType::Duration,
                wit::ConfigType::ItemFilter => ConfigType::ItemFilter,
            };
            Ok(ConfigField {
                name: f.name,
                ty,
                default: f.default.map(value_from_wit).transpose()?,
                requires: f.requires.map(capability_from_wit),
                doc: f.doc,
            })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    let mut names = std::collections::BTreeSet::new();
    for n in inputs.iter().map(|p| &p.name).chain(config.iter().map(|f| &f.name)) {
        if !names.insert(n.as_str()) {
            return Err(Malformed(format!("`{n}` is declared twice")));
        }
    }
    let mut outs = std::collections::BTreeSet::new();
    if let Some(dup) = outputs.iter().find(|p| !outs.insert(p.name.as_str())) {
        return Err(Malformed(format!("output `{}` is declared twice", dup.name)));
    }
    Ok(Descriptor {
        name: d.name,
        version,
        kind: match d.kind {
            wit::StageKind::Profiler => StageKind::Profiler,
            wit::StageKind::Retriever => StageKind::Retriever,
            wit::StageKind::Privacy => StageKind::Privacy,
            wit::StageKind::Generator => StageKind::Generator,
            wit::StageKind::Judge => StageKind::Judge,
        },
        summary: d.summary,
        inputs,
        outputs,
        config,
        grants: d.grants.into_iter().map(capability_from_wit).collect(),
    })
}
