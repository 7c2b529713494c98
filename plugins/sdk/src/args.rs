//! A call's named values: [`Inputs`] and [`Config`] with typed accessors, and the [`Outputs`]
//! builder.
//!
//! Accessors turn a missing or mistyped value into a [`StageError`] that names the port or key:
//! `InvalidInput` for inputs, `InvalidConfig` for config. By the time `run` sees a [`Config`],
//! the SDK has filled in the descriptor's defaults and checked every setting against its
//! config type, so `config.choice("method")?` is one of the declared words.

use std::marker::PhantomData;
use std::time::Duration;

use crate::error::StageError;
use crate::value::{FromValue, Item, Value, ValueError};

mod sealed {
    pub trait Sealed {}
}

/// Which side of a call a set of values is; decides the error variant and wording.
pub trait Role: sealed::Sealed {
    #[doc(hidden)]
    const NOUN: &'static str;
    #[doc(hidden)]
    fn error(message: String) -> StageError;
}

/// Marker for input ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRole {}
/// Marker for config settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigRole {}

impl sealed::Sealed for InputRole {}
impl sealed::Sealed for ConfigRole {}

impl Role for InputRole {
    const NOUN: &'static str = "input";
    fn error(message: String) -> StageError {
        StageError::InvalidInput(message)
    }
}

impl Role for ConfigRole {
    const NOUN: &'static str = "config key";
    fn error(message: String) -> StageError {
        StageError::InvalidConfig(message)
    }
}

/// Named values of one role, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Values<R: Role> {
    entries: Vec<(String, Value)>,
    role: PhantomData<R>,
}

/// The inputs of a call, by port name.
pub type Inputs = Values<InputRole>;
/// The config of a call, by key, with the descriptor's defaults filled in.
pub type Config = Values<ConfigRole>;

impl<R: Role> Default for Values<R> {
    fn default() -> Self {
        Values { entries: Vec::new(), role: PhantomData }
    }
}

impl<R: Role> FromIterator<(String, Value)> for Values<R> {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut values = Values::new();
        for (name, value) in iter {
            values.insert(name, value);
        }
        values
    }
}

impl<R: Role> Values<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a value (builder style, for tests).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(name.into(), value.into());
        self
    }

    /// Adds or replaces a value.
    pub fn insert(&mut self, name: String, value: Value) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// The raw value, if the name is present (it may be [`Value::None`]).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether the name has a value other than none.
    pub fn is_set(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| !v.is_none())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn set_value(&self, name: &str) -> Option<&Value> {
        self.value(name).filter(|v| !v.is_none())
    }

    fn missing(name: &str) -> StageError {
        R::error(format!("{} `{name}` is missing", R::NOUN))
    }

    fn bad(name: &str, error: ValueError) -> StageError {
        R::error(format!("{} `{name}`: {error}", R::NOUN))
    }

    /// The value as `T`; an error when missing or of the wrong type.
    pub fn get<T: FromValue>(&self, name: &str) -> Result<T, StageError> {
        self.opt(name)?.ok_or_else(|| Self::missing(name))
    }

    /// The value as `T`, or `None` when missing or none.
    pub fn opt<T: FromValue>(&self, name: &str) -> Result<Option<T>, StageError> {
        self.set_value(name).map(|v| T::from_value(v).map_err(|e| Self::bad(name, e))).transpose()
    }

    /// The value as `T`, or `default` when missing or none.
    pub fn get_or<T: FromValue>(&self, name: &str, default: T) -> Result<T, StageError> {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// A text, borrowed.
    pub fn text(&self, name: &str) -> Result<&str, StageError> {
        self.opt_text(name)?.ok_or_else(|| Self::missing(name))
    }

    /// A text, borrowed, or `None` when missing or none.
    pub fn opt_text(&self, name: &str) -> Result<Option<&str>, StageError> {
        match self.set_value(name) {
            None => Ok(None),
            Some(Value::Text(s)) | Some(Value::Json(serde_json::Value::String(s))) => Ok(Some(s)),
            Some(other) => Err(Self::bad(name, ValueError::WrongType { expected: "text", found: other.kind_name() })),
        }
    }

    /// A text, or `default` when missing or none.
    pub fn text_or<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str, StageError> {
        Ok(self.opt_text(name)?.unwrap_or(default))
    }

    pub fn number(&self, name: &str) -> Result<f64, StageError> {
        self.get(name)
    }

    pub fn opt_number(&self, name: &str) -> Result<Option<f64>, StageError> {
        self.opt(name)
    }

    pub fn number_or(&self, name: &str, default: f64) -> Result<f64, StageError> {
        self.get_or(name, default)
    }

    /// A whole number (an error when it has a fraction).
    pub fn integer(&self, name: &str) -> Result<i64, StageError> {
        self.get(name)
    }

    pub fn opt_integer(&self, name: &str) -> Result<Option<i64>, StageError> {
        self.opt(name)
    }

    pub fn integer_or(&self, name: &str, default: i64) -> Result<i64, StageError> {
        self.get_or(name, default)
    }

    pub fn bool(&self, name: &str) -> Result<bool, StageError> {
        self.get(name)
    }

    /// A bool that is false unless set.
    pub fn flag(&self, name: &str) -> Result<bool, StageError> {
        self.get_or(name, false)
    }

    /// A list of texts; empty when missing.
    pub fn texts(&self, name: &str) -> Result<Vec<String>, StageError> {
        self.get_or(name, Vec::new())
    }

    /// A list of numbers; empty when missing.
    pub fn numbers(&self, name: &str) -> Result<Vec<f64>, StageError> {
        self.get_or(name, Vec::new())
    }

    /// A list of items; empty when missing.
    pub fn items(&self, name: &str) -> Result<Vec<Item>, StageError> {
        self.get_or(name, Vec::new())
    }

    /// A list of item lists (it crosses as JSON); empty when missing.
    pub fn item_lists(&self, name: &str) -> Result<Vec<Vec<Item>>, StageError> {
        self.get_or(name, Vec::new())
    }

    /// Any value as JSON (spec/language.md §7.6); `null` when missing.
    pub fn json(&self, name: &str) -> Result<serde_json::Value, StageError> {
        self.get_or(name, serde_json::Value::Null)
    }
}

impl Values<ConfigRole> {
    /// A choice setting: one of the declared words (checked before `run`).
    pub fn choice(&self, name: &str) -> Result<&str, StageError> {
        self.text(name)
    }

    /// A duration setting, or `None` when not set. The host passes seconds; a text in the
    /// syntax of spec/language.md §4.6 reads the same.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, StageError> {
        self.opt(name)
    }
}

/// The outputs of a call, by port name. Setting a port twice keeps the last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outputs {
    entries: Vec<(String, Value)>,
}

impl Outputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a port to any value.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(name.into(), value.into());
        self
    }

    pub fn insert(&mut self, name: String, value: Value) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    pub fn text(self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.set(name, Value::Text(text.into()))
    }

    pub fn number(self, name: impl Into<String>, number: f64) -> Self {
        self.set(name, Value::Number(number))
    }

    pub fn bool(self, name: impl Into<String>, value: bool) -> Self {
        self.set(name, Value::Bool(value))
    }

    pub fn texts<I, S>(self, name: impl Into<String>, texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set(name, Value::Texts(texts.into_iter().map(Into::into).collect()))
    }

    pub fn numbers(self, name: impl Into<String>, numbers: impl IntoIterator<Item = f64>) -> Self {
        self.set(name, Value::Numbers(numbers.into_iter().collect()))
    }

    pub fn items(self, name: impl Into<String>, items: impl IntoIterator<Item = Item>) -> Self {
        self.set(name, Value::Items(items.into_iter().collect()))
    }

    /// A record or any other JSON value (a `record` port takes a JSON object).
    pub fn json(self, name: impl Into<String>, json: serde_json::Value) -> Self {
        self.set(name, Value::Json(json))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_input_is_invalid_input_naming_the_port() {
        let inputs = Inputs::new();
        assert_eq!(inputs.text("query").unwrap_err(), StageError::InvalidInput("input `query` is missing".into()));
    }

    #[test]
    fn mistyped_config_is_invalid_config_naming_the_key() {
        let config = Config::new().with("k", "five");
        assert_eq!(
            config.number("k").unwrap_err(),
            StageError::InvalidConfig("config key `k`: expected number, found text".into())
        );
    }

    #[test]
    fn none_reads_as_missing() {
        let inputs = Inputs::new().with("persona", Value::None);
        assert_eq!(inputs.opt_text("persona").unwrap(), None);
        assert!(!inputs.is_set("persona"));
        assert_eq!(inputs.text_or("persona", "nobody").unwrap(), "nobody");
    }

    #[test]
    fn or_accessors_use_default_only_when_missing() {
        let config = Config::new().with("k", 8.0);
        assert_eq!(config.number_or("k", 5.0).unwrap(), 8.0);
        assert_eq!(config.number_or("other", 5.0).unwrap(), 5.0);
        assert!(Config::new().with("k", "x").number_or("k", 5.0).is_err());
    }

    #[test]
    fn integer_rejects_fractions() {
        let config = Config::new().with("k", 2.5);
        assert!(matches!(config.integer("k"), Err(StageError::InvalidConfig(_))));
    }

    #[test]
    fn duration_reads_seconds() {
        let config = Config::new().with("recency", 3600.0);
        assert_eq!(config.duration("recency").unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(config.duration("other").unwrap(), None);
    }

    #[test]
    fn outputs_keep_last_value_per_port() {
        let out = Outputs::new().text("a", "1").number("b", 2.0).text("a", "3");
        assert_eq!(out.get("a"), Some(&Value::Text("3".into())));
        assert_eq!(out.iter().count(), 2);
    }
}
