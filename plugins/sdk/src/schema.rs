//! Checks a call's inputs and config against the plugin's own descriptor before `run`.
//!
//! The host's checker has already typed the pipeline, so in a correct host nothing here fails;
//! it exists so that a plugin can trust its descriptor (a declared choice is one of its words, a
//! default is there when the key is unset) and so that a host bug surfaces as a clear
//! `invalid-input`/`invalid-config` rather than as a plugin misbehaving.

use crate::args::{Config, Inputs};
use crate::descriptor::{ConfigType, Descriptor};
use crate::error::StageError;
use crate::value::{FromValue, Item, Value, ValueError};

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

/// Reads a value as the port type `ty` (the pipeline language's syntax); types the SDK has no
/// Rust counterpart for (`any`, deeper lists) are accepted as they are.
fn check_port_type(ty: &str, value: &Value) -> Result<(), ValueError> {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    match ty.as_str() {
        "text" => String::from_value(value).map(drop),
        "number" => f64::from_value(value).map(drop),
        "bool" => bool::from_value(value).map(drop),
        "item" => Item::from_value(value).map(drop),
        "record" => serde_json::Map::from_value(value).map(drop),
        "list<text>" => Vec::<String>::from_value(value).map(drop),
        "list<number>" => Vec::<f64>::from_value(value).map(drop),
        "list<item>" => Vec::<Item>::from_value(value).map(drop),
        "list<list<item>>" => Vec::<Vec<Item>>::from_value(value).map(drop),
        _ => Ok(()),
    }
}

/// Rejects undeclared and missing required inputs and values of the wrong type.
pub(crate) fn check_inputs(descriptor: &Descriptor, inputs: &Inputs) -> Result<(), StageError> {
    for (name, value) in inputs.iter() {
        let Some(port) = descriptor.input(name) else {
            return Err(StageError::InvalidInput(format!(
                "unknown input `{name}` (this plugin takes: {})",
                names(descriptor.inputs.iter().map(|p| p.name.as_str()))
            )));
        };
        if !value.is_none() {
            check_port_type(&port.ty, value).map_err(|e| StageError::InvalidInput(format!("input `{name}`: {e}")))?;
        }
    }
    for port in descriptor.inputs.iter().filter(|p| p.required) {
        if !inputs.is_set(&port.name) {
            return Err(StageError::InvalidInput(format!("input `{}` is missing", port.name)));
        }
    }
    Ok(())
}

fn fmt_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// Checks one setting against its config type; returns the value normalised (a single text for
/// a text list becomes a one-element list).
fn check_setting(ty: &ConfigType, value: Value) -> Result<Value, String> {
    match ty {
        ConfigType::Text => String::from_value(&value).map(|_| value).map_err(|e| e.to_string()),
        ConfigType::Bool => bool::from_value(&value).map(|_| value).map_err(|e| e.to_string()),
        ConfigType::Number { min, max, integer } => {
            let n = f64::from_value(&value).map_err(|e| e.to_string())?;
            let whole = if *integer { "a whole number" } else { "a number" };
            if !n.is_finite() || n < *min || n > *max || (*integer && n.fract() != 0.0) {
                return Err(format!(
                    "expected {whole} from {} to {}, found {}",
                    fmt_number(*min),
                    fmt_number(*max),
                    fmt_number(n)
                ));
            }
            Ok(Value::Number(n))
        }
        ConfigType::Choice(choices) => {
            let word = String::from_value(&value).map_err(|e| e.to_string())?;
            if !choices.contains(&word) {
                return Err(format!("expected one of {}, found `{word}`", choices.join(", ")));
            }
            Ok(value)
        }
        ConfigType::TextList(choices) => {
            let list = match &value {
                Value::Text(s) => vec![s.clone()],
                other => Vec::<String>::from_value(other).map_err(|e| e.to_string())?,
            };
            if let Some(choices) = choices
                && let Some(bad) = list.iter().find(|w| !choices.contains(w))
            {
                return Err(format!("expected words among {}, found `{bad}`", choices.join(", ")));
            }
            Ok(Value::Texts(list))
        }
        ConfigType::Duration => std::time::Duration::from_value(&value).map(|_| value).map_err(|e| e.to_string()),
        // The host applies the filter; what it passes for it (if anything) is its business.
        ConfigType::ItemFilter => Ok(value),
    }
}

/// Rejects unknown keys, checks each setting against its config type, and fills the
/// descriptor's defaults for keys that are not set.
pub(crate) fn resolve_config(descriptor: &Descriptor, config: Config) -> Result<Config, StageError> {
    let mut resolved = Config::new();
    for (name, value) in config.iter() {
        let Some(field) = descriptor.config_field(name) else {
            return Err(StageError::InvalidConfig(format!(
                "unknown config key `{name}` (this plugin has: {})",
                names(descriptor.config.iter().map(|f| f.name.as_str()))
            )));
        };
        if value.is_none() {
            continue;
        }
        let value = check_setting(&field.ty, value.clone())
            .map_err(|e| StageError::InvalidConfig(format!("config key `{name}`: {e}")))?;
        resolved.insert(name.to_owned(), value);
    }
    for field in &descriptor.config {
        if !resolved.is_set(&field.name)
            && let Some(default) = &field.default
        {
            resolved.insert(field.name.clone(), default.clone());
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{ConfigField, InputPort, StageKind};

    fn descriptor() -> Descriptor {
        Descriptor::builder("test:schema", "0.1.0", StageKind::Retriever)
            .input(InputPort::new("query", "text"))
            .input(InputPort::new("lists", "list<list<item>>").optional())
            .config(ConfigField::choice("method", ["bm25", "dense"]).default("bm25"))
            .config(ConfigField::integer("k", 1.0, 100.0).default(5.0))
            .config(ConfigField::word_list("entities", ["email", "ip"]))
            .config(ConfigField::duration("recency"))
            .build()
    }

    #[test]
    fn fills_defaults_for_unset_keys() {
        let config = resolve_config(&descriptor(), Config::new().with("k", 8.0)).unwrap();
        assert_eq!(config.choice("method").unwrap(), "bm25");
        assert_eq!(config.integer("k").unwrap(), 8);
        assert!(!config.is_set("recency"));
    }

    #[test]
    fn rejects_unknown_config_key_listing_known_ones() {
        let err = resolve_config(&descriptor(), Config::new().with("kk", 1.0)).unwrap_err();
        assert_eq!(
            err,
            StageError::InvalidConfig("unknown config key `kk` (this plugin has: method, k, entities, recency)".into())
        );
    }

    #[test]
    fn rejects_number_out_of_range_or_fractional() {
        let err = resolve_config(&descriptor(), Config::new().with("k", 0.0)).unwrap_err();
        assert_eq!(
            err,
            StageError::InvalidConfig("config key `k`: expected a whole number from 1 to 100, found 0".into())
        );
        assert!(resolve_config(&descriptor(), Config::new().with("k", 2.5)).is_err());
    }

    #[test]
    fn rejects_word_outside_choice() {
        let err = resolve_config(&descriptor(), Config::new().with("method", "hybrid")).unwrap_err();
        assert_eq!(
            err,
            StageError::InvalidConfig("config key `method`: expected one of bm25, dense, found `hybrid`".into())
        );
    }

    #[test]
    fn text_list_accepts_single_text_and_checks_words() {
        let config = resolve_config(&descriptor(), Config::new().with("entities", "email")).unwrap();
        assert_eq!(config.texts("entities").unwrap(), vec!["email"]);
        assert!(resolve_config(&descriptor(), Config::new().with("entities", vec!["email", "ssn"])).is_err());
    }

    #[test]
    fn duration_accepts_seconds_or_text() {
        assert!(resolve_config(&descriptor(), Config::new().with("recency", 60.0)).is_ok());
        assert!(resolve_config(&descriptor(), Config::new().with("recency", "30days")).is_ok());
        assert!(resolve_config(&descriptor(), Config::new().with("recency", "soon")).is_err());
    }

    #[test]
    fn rejects_unknown_and_missing_inputs() {
        let d = descriptor();
        assert!(check_inputs(&d, &Inputs::new().with("query", "q")).is_ok());
        assert_eq!(
            check_inputs(&d, &Inputs::new()).unwrap_err(),
            StageError::InvalidInput("input `query` is missing".into())
        );
        assert!(check_inputs(&d, &Inputs::new().with("query", "q").with("quer", "x")).is_err());
    }

    #[test]
    fn rejects_inputs_of_the_wrong_type() {
        let err = check_inputs(&descriptor(), &Inputs::new().with("query", 3.0)).unwrap_err();
        assert_eq!(err, StageError::InvalidInput("input `query`: expected text, found number".into()));
        let lists = Value::Json(serde_json::json!([[{"id": "a"}]]));
        assert!(check_inputs(&descriptor(), &Inputs::new().with("query", "q").with("lists", lists)).is_ok());
    }
}
