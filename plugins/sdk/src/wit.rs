//! Conversions between the generated WIT bindings and the SDK's types: the one place that knows
//! how values, items, descriptors and errors are encoded at the component boundary.
//!
//! Encoding rules (also in plugins/README.md): lists of texts, numbers and items cross as the
//! typed `texts`/`numbers`/`items` cases; records, nested lists and `any` as `json` text in the
//! JSON form of spec/language.md §7.6; an item's own fields as a JSON object text.

use crate::bindings::tailor::plugin::{complete as wc, log as wl, search as ws, types as wt};
use crate::descriptor::{Capability, ConfigType, Descriptor, PortForm, StageKind};
use crate::error::{HostError, StageError};
use crate::host::{CompletionRequest, LogLevel, Role, SearchMethod};
use crate::value::{Item, Value, ValueError};

pub(crate) fn capability(c: Capability) -> wt::Capability {
    match c {
        Capability::Log => wt::Capability::Log,
        Capability::Embed => wt::Capability::Embed,
        Capability::Search => wt::Capability::Search,
        Capability::Complete => wt::Capability::Complete,
        Capability::Kv => wt::Capability::Kv,
        Capability::Now => wt::Capability::Now,
    }
}

pub(crate) fn from_wit_capability(c: wt::Capability) -> Capability {
    match c {
        wt::Capability::Log => Capability::Log,
        wt::Capability::Embed => Capability::Embed,
        wt::Capability::Search => Capability::Search,
        wt::Capability::Complete => Capability::Complete,
        wt::Capability::Kv => Capability::Kv,
        wt::Capability::Now => Capability::Now,
    }
}

impl From<wt::HostError> for HostError {
    fn from(e: wt::HostError) -> Self {
        match e {
            wt::HostError::NotGranted(c) => HostError::NotGranted(from_wit_capability(c)),
            wt::HostError::Unavailable(m) => HostError::Unavailable(m),
            wt::HostError::InvalidRequest(m) => HostError::InvalidRequest(m),
            wt::HostError::Limit(m) => HostError::Limit(m),
        }
    }
}

fn wit_host_error(e: HostError) -> wt::HostError {
    match e {
        HostError::NotGranted(c) => wt::HostError::NotGranted(capability(c)),
        HostError::Unavailable(m) => wt::HostError::Unavailable(m),
        HostError::InvalidRequest(m) => wt::HostError::InvalidRequest(m),
        HostError::Limit(m) => wt::HostError::Limit(m),
    }
}

pub(crate) fn stage_error(e: StageError) -> wt::StageError {
    match e {
        StageError::InvalidInput(m) => wt::StageError::InvalidInput(m),
        StageError::InvalidConfig(m) => wt::StageError::InvalidConfig(m),
        StageError::Host(h) => wt::StageError::Host(wit_host_error(h)),
        StageError::Failed(m) => wt::StageError::Failed(m),
    }
}

pub(crate) fn item(item: Item) -> wt::Item {
    let fields = item.fields_json();
    wt::Item { id: item.id, kind: item.kind, text: item.text, timestamp: item.timestamp, fields }
}

pub(crate) fn from_wit_item(item: wt::Item) -> Result<Item, ValueError> {
    let fields = Item::parse_fields(&item.fields)?;
    Ok(Item { id: item.id, kind: item.kind, text: item.text, timestamp: item.timestamp, fields })
}

/// An item the host sent back from a capability call: a malformed one is the host's failure.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn host_item(item: wt::Item) -> Result<Item, HostError> {
    let id = item.id.clone();
    from_wit_item(item)
        .map_err(|e| HostError::Unavailable(format!("the host sent item `{id}` with malformed fields: {e}")))
}

pub(crate) fn value(value: Value) -> wt::Value {
    match value {
        Value::None => wt::Value::None,
        Value::Text(s) => wt::Value::Text(s),
        Value::Number(n) => wt::Value::Number(n),
        Value::Bool(b) => wt::Value::Boolean(b),
        Value::Texts(v) => wt::Value::Texts(v),
        Value::Numbers(v) => wt::Value::Numbers(v),
        Value::Items(v) => wt::Value::Items(v.into_iter().map(item).collect()),
        Value::Json(j) => wt::Value::Json(j.to_string()),
    }
}

pub(crate) fn from_wit_value(value: wt::Value) -> Result<Value, ValueError> {
    Ok(match value {
        wt::Value::None => Value::None,
        wt::Value::Text(s) => Value::Text(s),
        wt::Value::Number(n) => Value::Number(n),
        wt::Value::Boolean(b) => Value::Bool(b),
        wt::Value::Texts(v) => Value::Texts(v),
        wt::Value::Numbers(v) => Value::Numbers(v),
        wt::Value::Items(v) => Value::Items(v.into_iter().map(from_wit_item).collect::<Result<_, _>>()?),
        wt::Value::Json(text) => Value::Json(
            serde_json::from_str(&text).map_err(|e| ValueError::BadJson { expected: "json", reason: e.to_string() })?,
        ),
    })
}

/// Decodes named values; a malformed one is reported by `error` with its name.
pub(crate) fn from_wit_named(
    named: Vec<wt::Named>,
    error: impl Fn(String) -> StageError,
    noun: &str,
) -> Result<Vec<(String, Value)>, StageError> {
    named
        .into_iter()
        .map(|n| {
            let value = from_wit_value(n.value).map_err(|e| error(format!("{noun} `{}`: {e}", n.name)))?;
            Ok((n.name, value))
        })
        .collect()
}

pub(crate) fn named(entries: Vec<(String, Value)>) -> Vec<wt::Named> {
    entries.into_iter().map(|(name, v)| wt::Named { name, value: value(v) }).collect()
}

fn stage_kind(k: StageKind) -> wt::StageKind {
    match k {
        StageKind::Profiler => wt::StageKind::Profiler,
        StageKind::Retriever => wt::StageKind::Retriever,
        StageKind::Privacy => wt::StageKind::Privacy,
        StageKind::Generator => wt::StageKind::Generator,
        StageKind::Judge => wt::StageKind::Judge,
    }
}

fn config_type(t: ConfigType) -> wt::ConfigType {
    match t {
        ConfigType::Text => wt::ConfigType::Text,
        ConfigType::Number { min, max, integer } => wt::ConfigType::Number(wt::NumberRange { min, max, integer }),
        ConfigType::Bool => wt::ConfigType::Boolean,
        ConfigType::Choice(words) => wt::ConfigType::Choice(words),
        ConfigType::TextList(words) => wt::ConfigType::TextList(words),
        ConfigType::Duration => wt::ConfigType::Duration,
        ConfigType::ItemFilter => wt::ConfigType::ItemFilter,
    }
}

pub(crate) fn descriptor(d: Descriptor) -> wt::Descriptor {
    wt::Descriptor {
        name: d.name,
        version: d.version,
        kind: stage_kind(d.kind),
        summary: d.summary,
        inputs: d
            .inputs
            .into_iter()
            .map(|p| wt::InputPort {
                name: p.name,
                ty: p.ty,
                required: p.required,
                form: match p.form {
                    PortForm::Expression => wt::PortForm::Expression,
                    PortForm::Template => wt::PortForm::Template,
                },
                doc: p.doc,
            })
            .collect(),
        outputs: d.outputs.into_iter().map(|p| wt::OutputPort { name: p.name, ty: p.ty, doc: p.doc }).collect(),
        config: d
            .config
            .into_iter()
            .map(|f| wt::ConfigField {
                name: f.name,
                ty: config_type(f.ty),
                default: f.default.map(value),
                requires: f.requires.map(capability),
                doc: f.doc,
            })
            .collect(),
        grants: d.grants.into_iter().map(capability).collect(),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn log_level(level: LogLevel) -> wl::Level {
    match level {
        LogLevel::Debug => wl::Level::Debug,
        LogLevel::Info => wl::Level::Info,
        LogLevel::Warn => wl::Level::Warn,
        LogLevel::Error => wl::Level::Error,
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn search_method(method: SearchMethod) -> ws::Method {
    match method {
        SearchMethod::Bm25 => ws::Method::Bm25,
        SearchMethod::Dense => ws::Method::Dense,
        SearchMethod::Hybrid => ws::Method::Hybrid,
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn completion_request(r: &CompletionRequest) -> wc::Request {
    wc::Request {
        messages: r
            .messages
            .iter()
            .map(|m| wc::Message {
                role: match m.role {
                    Role::System => wc::Role::System,
                    Role::User => wc::Role::User,
                    Role::Assistant => wc::Role::Assistant,
                },
                content: m.content.clone(),
            })
            .collect(),
        n: r.n,
        max_tokens: r.max_tokens,
        temperature: r.temperature,
        top_p: r.top_p,
        stop: r.stop.clone(),
        seed: r.seed,
        json_schema: r.json_schema.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_through_wit() {
        let values = vec![
            Value::None,
            Value::Text("t".into()),
            Value::Number(1.5),
            Value::Bool(true),
            Value::Texts(vec!["a".into()]),
            Value::Numbers(vec![1.0, 2.0]),
            Value::Items(vec![Item::new("1", "paper", "x").with_timestamp(3.0).with_field("rating", 5)]),
            Value::Json(json!({"count": 2, "kinds": {"paper": 2}})),
        ];
        for v in values {
            assert_eq!(from_wit_value(value(v.clone())).unwrap(), v);
        }
    }

    #[test]
    fn item_fields_cross_as_json_object_text() {
        let wit = item(Item::new("1", "review", "ok").with_field("rating", 4));
        assert_eq!(wit.fields, r#"{"rating":4}"#);
    }

    #[test]
    fn malformed_json_value_is_reported_with_its_name() {
        let named = vec![wt::Named { name: "stats".into(), value: wt::Value::Json("{".into()) }];
        let err = from_wit_named(named, StageError::InvalidInput, "input").unwrap_err();
        assert!(
            matches!(&err, StageError::InvalidInput(m) if m.starts_with("input `stats`: expected json, but the JSON is malformed"))
        );
    }

    #[test]
    fn malformed_host_item_is_unavailable() {
        let bad = wt::Item { id: "x".into(), kind: "k".into(), text: "t".into(), timestamp: None, fields: "[]".into() };
        assert!(matches!(host_item(bad), Err(HostError::Unavailable(m)) if m.contains("`x`")));
    }

    #[test]
    fn stage_errors_keep_their_variant() {
        let e = stage_error(StageError::Host(HostError::NotGranted(Capability::Complete)));
        assert!(matches!(e, wt::StageError::Host(wt::HostError::NotGranted(wt::Capability::Complete))));
    }
}
