//! Typed values on ports and in config settings, with WIT's encoding hidden.
//!
//! WIT has no recursive types, so the world's `value` variant carries texts, numbers and items
//! as typed lists and everything else (records, lists of lists, `any`) as JSON text. Here that
//! JSON is parsed once into [`serde_json::Value`], and [`FromValue`] reads either encoding:
//! a `list<text>` arrives as `texts` or as a JSON array of strings and reads the same. JSON is
//! the pipeline language's JSON form (spec/language.md §7.6): an item is an object with `id`,
//! `kind`, `text`, optional `timestamp`, and its own fields beside them.

use std::time::Duration;

use serde_json::{Map, Value as Json};

/// One value on a port or in a config setting.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value (an unbound optional port, `first([])`, a skipped stage's `any` output).
    #[default]
    None,
    Text(String),
    Number(f64),
    Bool(bool),
    Texts(Vec<String>),
    Numbers(Vec<f64>),
    Items(Vec<Item>),
    /// A record, a nested list or any other value, in the JSON form of spec/language.md §7.6.
    Json(Json),
}

impl Value {
    /// What this value is, for messages: `text`, `list<item>`, `json`…
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Text(_) => "text",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Texts(_) => "list<text>",
            Value::Numbers(_) => "list<number>",
            Value::Items(_) => "list<item>",
            Value::Json(Json::Object(_)) => "record",
            Value::Json(Json::Array(_)) => "list",
            Value::Json(_) => "json",
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Value::None | Value::Json(Json::Null))
    }

    /// The value in the JSON form of spec/language.md §7.6 (non-finite numbers become `null`).
    pub fn to_json(&self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Text(s) => Json::String(s.clone()),
            Value::Number(n) => number_json(*n),
            Value::Bool(b) => Json::Bool(*b),
            Value::Texts(v) => Json::Array(v.iter().cloned().map(Json::String).collect()),
            Value::Numbers(v) => Json::Array(v.iter().copied().map(number_json).collect()),
            Value::Items(v) => Json::Array(v.iter().map(Item::to_json).collect()),
            Value::Json(j) => j.clone(),
        }
    }

    /// Reads a value as `T`.
    pub fn get<T: FromValue>(&self) -> Result<T, ValueError> {
        T::from_value(self)
    }
}

fn number_json(n: f64) -> Json {
    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        // Counts beyond 2^53 do not occur in a plugin's outputs.
        Value::Number(n as f64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::Texts(v)
    }
}

impl From<Vec<&str>> for Value {
    fn from(v: Vec<&str>) -> Self {
        Value::Texts(v.into_iter().map(str::to_owned).collect())
    }
}

impl From<Vec<f64>> for Value {
    fn from(v: Vec<f64>) -> Self {
        Value::Numbers(v)
    }
}

impl From<Vec<Item>> for Value {
    fn from(v: Vec<Item>) -> Self {
        Value::Items(v)
    }
}

impl From<Json> for Value {
    fn from(j: Json) -> Self {
        Value::Json(j)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::None, Into::into)
    }
}

/// One item of the current user's history (spec/language.md §7.4).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    pub id: String,
    /// What it is: `paper`, `message`, `review`…
    pub kind: String,
    pub text: String,
    /// Seconds since the Unix epoch, when known.
    pub timestamp: Option<f64>,
    /// The item's own fields (`title`, `rating`…).
    pub fields: Map<String, Json>,
}

/// The names that are an item's own, never one of its fields.
const BUILT_IN_FIELDS: [&str; 4] = ["id", "kind", "text", "timestamp"];

impl Item {
    pub fn new(id: impl Into<String>, kind: impl Into<String>, text: impl Into<String>) -> Self {
        Item { id: id.into(), kind: kind.into(), text: text.into(), timestamp: None, fields: Map::new() }
    }

    pub fn with_timestamp(mut self, seconds: f64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Json>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// One of the item's own fields.
    pub fn field(&self, name: &str) -> Option<&Json> {
        self.fields.get(name)
    }

    /// The item in the JSON form of spec/language.md §7.6: built-in fields, then its own fields
    /// (which never override the built-in ones).
    pub fn to_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("id".into(), Json::String(self.id.clone()));
        object.insert("kind".into(), Json::String(self.kind.clone()));
        object.insert("text".into(), Json::String(self.text.clone()));
        if let Some(t) = self.timestamp {
            object.insert("timestamp".into(), number_json(t));
        }
        for (name, value) in &self.fields {
            if !BUILT_IN_FIELDS.contains(&name.as_str()) {
                object.insert(name.clone(), value.clone());
            }
        }
        Json::Object(object)
    }

    /// An item from its JSON form. `id`, `kind` and `text` must be strings when present (missing
    /// ones read as empty), `timestamp` a number or null; every other key is a field.
    pub fn from_json(json: &Json) -> Result<Item, ValueError> {
        let Json::Object(object) = json else {
            return Err(ValueError::WrongType { expected: "item", found: json_kind(json) });
        };
        let mut item = Item::default();
        for (name, value) in object {
            match (name.as_str(), value) {
                ("id", Json::String(s)) => item.id = s.clone(),
                ("kind", Json::String(s)) => item.kind = s.clone(),
                ("text", Json::String(s)) => item.text = s.clone(),
                ("timestamp", Json::Number(n)) => item.timestamp = n.as_f64(),
                ("timestamp", Json::Null) => item.timestamp = None,
                ("id" | "kind" | "text" | "timestamp", other) => {
                    return Err(ValueError::BadField {
                        field: BUILT_IN_FIELDS
                            .into_iter()
                            .find(|f| *f == name)
                            .expect("invariant: matched a built-in field name"),
                        found: json_kind(other),
                    });
                }
                _ => {
                    item.fields.insert(name.clone(), value.clone());
                }
            }
        }
        Ok(item)
    }

    /// The item's fields as the JSON object text that crosses the WIT boundary.
    pub(crate) fn fields_json(&self) -> String {
        Json::Object(self.fields.clone()).to_string()
    }

    /// Parses the WIT boundary's fields text: a JSON object, or empty for none.
    pub(crate) fn parse_fields(text: &str) -> Result<Map<String, Json>, ValueError> {
        if text.trim().is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => Ok(map),
            Ok(Json::Null) => Ok(Map::new()),
            Ok(other) => {
                Err(ValueError::WrongType { expected: "item fields (a JSON object)", found: json_kind(&other) })
            }
            Err(e) => Err(ValueError::BadJson { expected: "item fields (a JSON object)", reason: e.to_string() }),
        }
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "none",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "text",
        Json::Array(_) => "list",
        Json::Object(_) => "record",
    }
}

/// Why a value could not be read as the type asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("expected {expected}, found {found}")]
    WrongType { expected: &'static str, found: &'static str },
    #[error("expected {expected}, found {value}")]
    OutOfRange { expected: &'static str, value: f64 },
    #[error("expected {expected}, but the JSON is malformed: {reason}")]
    BadJson { expected: &'static str, reason: String },
    #[error("an item's `{field}` must not be {found}")]
    BadField { field: &'static str, found: &'static str },
    #[error(transparent)]
    BadDuration(#[from] crate::duration::DurationError),
}

/// A Rust type a [`Value`] can be read as. Each implementation accepts every encoding the host
/// may use for that type (a typed list or its JSON form).
pub trait FromValue: Sized {
    /// The pipeline-language type expected, for messages.
    const EXPECTED: &'static str;

    fn from_value(value: &Value) -> Result<Self, ValueError>;

    /// The error for a value of the wrong kind.
    fn wrong(value: &Value) -> ValueError {
        ValueError::WrongType { expected: Self::EXPECTED, found: value.kind_name() }
    }
}

impl FromValue for Value {
    const EXPECTED: &'static str = "any";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        Ok(value.clone())
    }
}

impl FromValue for String {
    const EXPECTED: &'static str = "text";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            Value::Json(Json::String(s)) => Ok(s.clone()),
            other => Err(Self::wrong(other)),
        }
    }
}

impl FromValue for f64 {
    const EXPECTED: &'static str = "number";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Number(n) => Ok(*n),
            Value::Json(Json::Number(n)) => n.as_f64().ok_or_else(|| Self::wrong(value)),
            other => Err(Self::wrong(other)),
        }
    }
}

fn whole(value: &Value, expected: &'static str, min: f64, max: f64) -> Result<f64, ValueError> {
    let n = f64::from_value(value)?;
    if n.fract() != 0.0 || n < min || n > max {
        return Err(ValueError::OutOfRange { expected, value: n });
    }
    Ok(n)
}

impl FromValue for i64 {
    const EXPECTED: &'static str = "a whole number";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        // ±2^53: every whole f64 in this range is exact.
        const LIMIT: f64 = 9_007_199_254_740_992.0;
        whole(value, Self::EXPECTED, -LIMIT, LIMIT).map(|n| n as i64)
    }
}

impl FromValue for u32 {
    const EXPECTED: &'static str = "a whole number from 0 to 4294967295";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        whole(value, Self::EXPECTED, 0.0, f64::from(u32::MAX)).map(|n| n as u32)
    }
}

impl FromValue for u64 {
    const EXPECTED: &'static str = "a whole number from 0 to 2^53";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        whole(value, Self::EXPECTED, 0.0, 9_007_199_254_740_992.0).map(|n| n as u64)
    }
}

impl FromValue for usize {
    const EXPECTED: &'static str = "a whole number, 0 or more";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        whole(value, Self::EXPECTED, 0.0, u32::MAX as f64).map(|n| n as usize)
    }
}

impl FromValue for bool {
    const EXPECTED: &'static str = "bool";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Bool(b) | Value::Json(Json::Bool(b)) => Ok(*b),
            other => Err(Self::wrong(other)),
        }
    }
}

/// An empty typed list of another element type is still an empty list: a host cannot always
/// tell the element type of `[]`.
fn is_empty_list(value: &Value) -> bool {
    match value {
        Value::Texts(v) => v.is_empty(),
        Value::Numbers(v) => v.is_empty(),
        Value::Items(v) => v.is_empty(),
        Value::Json(Json::Array(v)) => v.is_empty(),
        _ => false,
    }
}

fn json_list<T>(
    value: &Value,
    expected: &'static str,
    element: impl Fn(&Json) -> Result<T, ValueError>,
) -> Result<Vec<T>, ValueError> {
    match value {
        Value::Json(Json::Array(v)) => v.iter().map(element).collect(),
        v if is_empty_list(v) => Ok(Vec::new()),
        other => Err(ValueError::WrongType { expected, found: other.kind_name() }),
    }
}

impl FromValue for Vec<String> {
    const EXPECTED: &'static str = "list<text>";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Texts(v) => Ok(v.clone()),
            other => json_list(other, Self::EXPECTED, |j| match j {
                Json::String(s) => Ok(s.clone()),
                j => Err(ValueError::WrongType { expected: Self::EXPECTED, found: json_kind(j) }),
            }),
        }
    }
}

impl FromValue for Vec<f64> {
    const EXPECTED: &'static str = "list<number>";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Numbers(v) => Ok(v.clone()),
            other => json_list(other, Self::EXPECTED, |j| {
                j.as_f64().ok_or(ValueError::WrongType { expected: Self::EXPECTED, found: json_kind(j) })
            }),
        }
    }
}

impl FromValue for Item {
    const EXPECTED: &'static str = "item";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Items(v) if v.len() == 1 => Ok(v[0].clone()),
            Value::Json(j @ Json::Object(_)) => Item::from_json(j),
            other => Err(Self::wrong(other)),
        }
    }
}

impl FromValue for Vec<Item> {
    const EXPECTED: &'static str = "list<item>";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Items(v) => Ok(v.clone()),
            other => json_list(other, Self::EXPECTED, Item::from_json),
        }
    }
}

impl FromValue for Vec<Vec<Item>> {
    const EXPECTED: &'static str = "list<list<item>>";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        json_list(value, Self::EXPECTED, |j| match j {
            Json::Array(v) => v.iter().map(Item::from_json).collect(),
            j => Err(ValueError::WrongType { expected: Self::EXPECTED, found: json_kind(j) }),
        })
    }
}

impl FromValue for Json {
    const EXPECTED: &'static str = "any";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        Ok(value.to_json())
    }
}

impl FromValue for Map<String, Json> {
    const EXPECTED: &'static str = "record";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Json(Json::Object(m)) => Ok(m.clone()),
            other => Err(Self::wrong(other)),
        }
    }
}

impl FromValue for Duration {
    const EXPECTED: &'static str = "a duration (seconds, or text such as `90s` or `1h 30m`)";
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Text(s) | Value::Json(Json::String(s)) => Ok(crate::duration::parse_duration(s)?),
            other => {
                let seconds = f64::from_value(other).map_err(|_| Self::wrong(other))?;
                Duration::try_from_secs_f64(seconds)
                    .map_err(|_| ValueError::OutOfRange { expected: Self::EXPECTED, value: seconds })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_read_from_typed_list_and_json_array() {
        let typed = Value::Texts(vec!["a".into(), "b".into()]);
        let json = Value::Json(json!(["a", "b"]));
        assert_eq!(typed.get::<Vec<String>>().unwrap(), vec!["a", "b"]);
        assert_eq!(json.get::<Vec<String>>().unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn empty_list_of_any_element_type_reads_as_empty() {
        assert!(Value::Items(vec![]).get::<Vec<String>>().unwrap().is_empty());
        assert!(Value::Texts(vec![]).get::<Vec<Item>>().unwrap().is_empty());
        assert!(Value::Numbers(vec![]).get::<Vec<Vec<Item>>>().unwrap().is_empty());
    }

    #[test]
    fn wrong_type_names_both_types() {
        let err = Value::Number(3.0).get::<String>().unwrap_err();
        assert_eq!(err.to_string(), "expected text, found number");
        let err = Value::Json(json!({"a": 1})).get::<Vec<Item>>().unwrap_err();
        assert_eq!(err.to_string(), "expected list<item>, found record");
    }

    #[test]
    fn integers_must_be_whole_and_in_range() {
        assert_eq!(Value::Number(7.0).get::<u32>().unwrap(), 7);
        assert!(matches!(Value::Number(7.5).get::<u32>(), Err(ValueError::OutOfRange { .. })));
        assert!(matches!(Value::Number(-1.0).get::<u32>(), Err(ValueError::OutOfRange { .. })));
        assert_eq!(Value::Number(-3.0).get::<i64>().unwrap(), -3);
    }

    #[test]
    fn item_json_form_flattens_fields_after_built_ins() {
        let item = Item::new("p1", "paper", "Sparse retrieval").with_timestamp(1.5e9).with_field("title", "S");
        let j = item.to_json();
        assert_eq!(
            j,
            json!({"id": "p1", "kind": "paper", "text": "Sparse retrieval", "timestamp": 1.5e9, "title": "S"})
        );
        assert_eq!(Item::from_json(&j).unwrap(), item);
    }

    #[test]
    fn item_own_fields_never_override_built_ins() {
        let mut item = Item::new("1", "k", "t");
        item.fields.insert("id".into(), json!("spoof"));
        assert_eq!(item.to_json()["id"], json!("1"));
    }

    #[test]
    fn item_from_json_rejects_non_text_built_ins() {
        let err = Item::from_json(&json!({"id": 3})).unwrap_err();
        assert_eq!(err, ValueError::BadField { field: "id", found: "number" });
        assert_eq!(Item::from_json(&json!({"timestamp": null, "text": "x"})).unwrap().timestamp, None);
    }

    #[test]
    fn nested_item_lists_read_from_json() {
        let v = Value::Json(json!([[{"id": "a", "kind": "m", "text": "x"}], []]));
        let lists = v.get::<Vec<Vec<Item>>>().unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0][0].id, "a");
        assert!(lists[1].is_empty());
    }

    #[test]
    fn item_fields_text_parses_objects_and_empty() {
        assert!(Item::parse_fields("").unwrap().is_empty());
        assert_eq!(Item::parse_fields(r#"{"rating":5}"#).unwrap()["rating"], json!(5));
        assert!(matches!(Item::parse_fields("[1]"), Err(ValueError::WrongType { .. })));
        assert!(matches!(Item::parse_fields("{"), Err(ValueError::BadJson { .. })));
    }

    #[test]
    fn durations_read_from_seconds_or_text() {
        assert_eq!(Value::Number(90.0).get::<Duration>().unwrap(), Duration::from_secs(90));
        assert_eq!(Value::Text("1h 30m".into()).get::<Duration>().unwrap(), Duration::from_secs(5400));
        assert!(Value::Number(-1.0).get::<Duration>().is_err());
        assert!(Value::Bool(true).get::<Duration>().is_err());
    }

    #[test]
    fn non_finite_numbers_become_json_null() {
        assert_eq!(Value::Number(f64::NAN).to_json(), Json::Null);
        assert_eq!(Value::Numbers(vec![1.0, f64::INFINITY]).to_json(), json!([1.0, null]));
    }
}
