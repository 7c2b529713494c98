//! Types and values of the expression language.
//!
//! Values are immutable and cheap to clone (shared behind `Arc`). `Type::Any` is the type of
//! free-form data (record fields, an item's own fields): it is accepted wherever a type is
//! expected and checked when the value exists. Numbers are `f64`; they compare by value and are
//! never NaN in a checked literal.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The static type of an expression or port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Text,
    Number,
    Bool,
    List(Box<Type>),
    /// A history item: `id`, `kind`, `text`, `timestamp` and free-form fields.
    Item,
    /// A free-form record (profile statistics, item fields).
    Record,
    /// Dynamically typed: free-form data whose type is known only at run time.
    Any,
}

impl Type {
    pub fn list(of: Type) -> Type {
        Type::List(Box::new(of))
    }

    /// Whether a value of type `self` may flow where `target` is expected.
    pub fn fits(&self, target: &Type) -> bool {
        match (self, target) {
            (Type::Any, _) | (_, Type::Any) => true,
            (Type::List(a), Type::List(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// Parses the type syntax used by `input … type=`: `text`, `list<text>`, ….
    pub fn parse(s: &str) -> Option<Type> {
        let mut s = s.trim();
        let mut lists = 0;
        while let Some(inner) = s.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            s = inner.trim();
            lists += 1;
            if lists > 8 {
                return None;
            }
        }
        let mut ty = Type::parse_scalar(s)?;
        for _ in 0..lists {
            ty = Type::list(ty);
        }
        Some(ty)
    }

    fn parse_scalar(s: &str) -> Option<Type> {
        Some(match s {
            "text" => Type::Text,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "item" => Type::Item,
            "record" => Type::Record,
            "any" => Type::Any,
            _ => return None,
        })
    }

    /// The names `Type::parse` accepts at the top level, for suggestions.
    pub const NAMES: &'static [&'static str] =
        &["text", "number", "bool", "item", "record", "any", "list<text>", "list<item>"];

    /// The value a stage's output takes when the stage is skipped (`when=` false or `on-error="skip"`).
    pub fn zero(&self) -> Value {
        match self {
            Type::Text => Value::text(""),
            Type::Number => Value::Number(0.0),
            Type::Bool => Value::Bool(false),
            Type::List(_) => Value::List(Arc::from(Vec::new())),
            Type::Record => Value::Record(Arc::new(BTreeMap::new())),
            Type::Item | Type::Any => Value::None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Text => f.write_str("text"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Item => f.write_str("item"),
            Type::Record => f.write_str("record"),
            Type::Any => f.write_str("any"),
        }
    }
}

/// A user's history item, as stored and as seen by expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Arc<str>,
    pub kind: Arc<str>,
    pub text: Arc<str>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<f64>,
    pub fields: BTreeMap<Arc<str>, Value>,
}

impl Item {
    /// Field access as expressions see it: the built-in fields first, then the item's own.
    pub fn get(&self, name: &str) -> Value {
        match name {
            "id" => Value::Text(Arc::clone(&self.id)),
            "kind" => Value::Text(Arc::clone(&self.kind)),
            "text" => Value::Text(Arc::clone(&self.text)),
            "timestamp" => self.timestamp.map_or(Value::None, Value::Number),
            _ => self.fields.get(name).cloned().unwrap_or(Value::None),
        }
    }

    /// The static type of `item.NAME`.
    pub fn field_type(name: &str) -> Type {
        match name {
            "id" | "kind" | "text" => Type::Text,
            "timestamp" => Type::Number,
            _ => Type::Any,
        }
    }
}

/// Seconds since the Unix epoch of an RFC 3339 date (`2024-01-10`, read as midnight UTC) or
/// date-time (`2024-01-10T08:30:00Z`); `None` for anything else or a time before the epoch.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_string() };
    let t = humantime::parse_rfc3339_weak(&full).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// A run-time value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The absence of a value: a missing field, an empty list's `first`.
    None,
    Text(Arc<str>),
    Number(f64),
    Bool(bool),
    List(Arc<[Value]>),
    Item(Arc<Item>),
    Record(Arc<BTreeMap<Arc<str>, Value>>),
}

impl Value {
    pub fn text(s: impl Into<Arc<str>>) -> Value {
        Value::Text(s.into())
    }

    pub fn list(values: Vec<Value>) -> Value {
        Value::List(Arc::from(values))
    }

    /// The dynamic type, or `None` for [`Value::None`].
    pub fn type_of(&self) -> Option<Type> {
        Some(match self {
            Value::None => return None,
            Value::Text(_) => Type::Text,
            Value::Number(_) => Type::Number,
            Value::Bool(_) => Type::Bool,
            Value::List(items) => Type::list(items.first().and_then(Value::type_of).unwrap_or(Type::Any)),
            Value::Item(_) => Type::Item,
            Value::Record(_) => Type::Record,
        })
    }

    /// A short name of the value's kind, for run-time errors.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Text(_) => "text",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::List(_) => "list",
            Value::Item(_) => "item",
            Value::Record(_) => "record",
        }
    }

    /// Whether the value is of (or may be used as) type `ty`.
    pub fn fits(&self, ty: &Type) -> bool {
        match (self, ty) {
            (_, Type::Any) => true,
            (Value::List(items), Type::List(of)) => items.iter().all(|v| v.fits(of)),
            (v, t) => v.type_of().as_ref() == Some(t),
        }
    }
}

/// Renders a value as template text: text as-is, numbers without a needless `.0`, lists joined
/// by ", ", none as nothing, an item as its text, a record as compact JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => Ok(()),
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => write_number(f, *n),
            Value::Bool(b) => write!(f, "{b}"),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::Item(item) => f.write_str(&item.text),
            Value::Record(_) => write_json(f, self),
        }
    }
}

pub(crate) fn write_number(f: &mut impl fmt::Write, n: f64) -> fmt::Result {
    if n.fract() == 0.0 && n.abs() < 1e15 { write!(f, "{}", n as i64) } else { write!(f, "{n}") }
}

/// A value as compact JSON text (records' keys sorted).
pub fn to_json(value: &Value) -> String {
    let mut s = String::new();
    write_json(&mut s, value).expect("invariant: writing to a String cannot fail");
    s
}

/// Writes a value as JSON text (used by `json(…)` and for records in templates).
pub(crate) fn write_json(f: &mut impl fmt::Write, value: &Value) -> fmt::Result {
    match value {
        Value::None => f.write_str("null"),
        Value::Text(s) => write_json_string(f, s),
        Value::Number(n) if n.is_finite() => write_number(f, *n),
        Value::Number(_) => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::List(items) => {
            f.write_char('[')?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_json(f, v)?;
            }
            f.write_char(']')
        }
        Value::Item(item) => {
            f.write_str("{\"id\":")?;
            write_json_string(f, &item.id)?;
            f.write_str(",\"kind\":")?;
            write_json_string(f, &item.kind)?;
            f.write_str(",\"text\":")?;
            write_json_string(f, &item.text)?;
            if let Some(ts) = item.timestamp {
                f.write_str(",\"timestamp\":")?;
                write_number(f, ts)?;
            }
            for (k, v) in &item.fields {
                f.write_char(',')?;
                write_json_string(f, k)?;
                f.write_char(':')?;
                write_json(f, v)?;
            }
            f.write_char('}')
        }
        Value::Record(map) => {
            f.write_char('{')?;
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_json_string(f, k)?;
                f.write_char(':')?;
                write_json(f, v)?;
            }
            f.write_char('}')
        }
    }
}

fn write_json_string(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        assert_eq!(Type::parse("list<list<item>>"), Some(Type::list(Type::list(Type::Item))));
        assert_eq!(Type::parse("txt"), None);
    }

    #[test]
    fn any_fits_everywhere() {
        assert!(Type::Any.fits(&Type::Text));
        assert!(Type::list(Type::Any).fits(&Type::list(Type::Item)));
        assert!(!Type::Text.fits(&Type::Number));
    }

    #[test]
    fn renders_numbers_without_needless_fraction() {
        assert_eq!(Value::Number(3.0).to_string(), "3");
        assert_eq!(Value::Number(2.5).to_string(), "2.5");
    }

    #[test]
    fn renders_records_as_json() {
        let mut m = BTreeMap::new();
        m.insert(Arc::from("a\"b"), Value::list(vec![Value::Number(1.0), Value::None]));
        assert_eq!(Value::Record(Arc::new(m)).to_string(), r#"{"a\"b":[1,null]}"#);
    }
}
