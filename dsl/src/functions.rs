//! The built-in functions of the expression language: their names, static typing and
//! evaluation, in one table so that checker and evaluator can never disagree.
//!
//! Every function is total: bad arguments give an [`EvalError`], never a panic, and results are
//! bounded by [`crate::eval::MAX_VALUE_BYTES`].

use std::sync::Arc;

use crate::eval::{EvalError, MAX_VALUE_BYTES};
use crate::types::{Type, Value, write_json};

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Len,
    Lower,
    Upper,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Join,
    Split,
    Truncate,
    Replace,
    First,
    Last,
    Take,
    Default,
    Text,
    Number,
    Round,
    Min,
    Max,
    Abs,
    DaysSince,
    Json,
}

impl Func {
    pub const ALL: [Func; 23] = [
        Func::Len,
        Func::Lower,
        Func::Upper,
        Func::Trim,
        Func::Contains,
        Func::StartsWith,
        Func::EndsWith,
        Func::Join,
        Func::Split,
        Func::Truncate,
        Func::Replace,
        Func::First,
        Func::Last,
        Func::Take,
        Func::Default,
        Func::Text,
        Func::Number,
        Func::Round,
        Func::Min,
        Func::Max,
        Func::Abs,
        Func::DaysSince,
        Func::Json,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Len => "len",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Trim => "trim",
            Func::Contains => "contains",
            Func::StartsWith => "starts_with",
            Func::EndsWith => "ends_with",
            Func::Join => "join",
            Func::Split => "split",
            Func::Truncate => "truncate",
            Func::Replace => "replace",
            Func::First => "first",
            Func::Last => "last",
            Func::Take => "take",
            Func::Default => "default",
            Func::Text => "text",
            Func::Number => "number",
            Func::Round => "round",
            Func::Min => "min",
            Func::Max => "max",
            Func::Abs => "abs",
            Func::DaysSince => "days_since",
            Func::Json => "json",
        }
    }

    pub fn by_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Allowed argument counts, inclusive.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Func::Len | Func::Lower | Func::Upper | Func::Trim | Func::First | Func::Last => (1, 1),
            Func::Text | Func::Number | Func::Abs | Func::DaysSince | Func::Json => (1, 1),
            Func::Join | Func::Round => (1, 2),
            Func::Replace => (3, 3),
            _ => (2, 2),
        }
    }

    /// The result type for these argument types, or what was wrong with argument `index`.
    pub fn check(self, args: &[Type]) -> Result<Type, ArgError> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Type::Any);
        let want = |i: usize, ok: bool, expected: &'static str| {
            if ok { Ok(()) } else { Err(ArgError { index: i, expected, found: arg(i) }) }
        };
        let is = |i: usize, t: Type| arg(i).fits(&t);
        let listy = |i: usize| matches!(arg(i), Type::List(_) | Type::Any);
        let elem = |i: usize| match arg(i) {
            Type::List(t) => *t,
            _ => Type::Any,
        };
        Ok(match self {
            Func::Len => {
                want(0, is(0, Type::Text) || listy(0) || is(0, Type::Record), "text, list or record")?;
                Type::Number
            }
            Func::Lower | Func::Upper | Func::Trim => {
                want(0, is(0, Type::Text), "text")?;
                Type::Text
            }
            Func::Contains => {
                want(0, is(0, Type::Text) || listy(0), "text or list")?;
                if arg(0) == Type::Text {
                    want(1, is(1, Type::Text), "text")?;
                } else {
                    want(1, arg(1).fits(&elem(0)), "a value of the list's element type")?;
                }
                Type::Bool
            }
            Func::StartsWith | Func::EndsWith => {
                want(0, is(0, Type::Text), "text")?;
                want(1, is(1, Type::Text), "text")?;
                Type::Bool
            }
            Func::Join => {
                want(0, listy(0), "a list")?;
                want(1, is(1, Type::Text), "text")?;
                Type::Text
            }
            Func::Split => {
                want(0, is(0, Type::Text), "text")?;
                want(1, is(1, Type::Text), "text")?;
                Type::list(Type::Text)
            }
            Func::Truncate => {
                want(0, is(0, Type::Text), "text")?;
                want(1, is(1, Type::Number), "number")?;
                Type::Text
            }
            Func::Replace => {
                for i in 0..3 {
                    want(i, is(i, Type::Text), "text")?;
                }
                Type::Text
            }
            Func::First | Func::Last => {
                want(0, listy(0), "a list")?;
                elem(0)
            }
            Func::Take => {
                want(0, listy(0), "a list")?;
                want(1, is(1, Type::Number), "number")?;
                arg(0)
            }
            Func::Default => {
                want(1, arg(1).fits(&arg(0)), "a value of the first argument's type")?;
                if arg(0) == Type::Any { arg(1) } else { arg(0) }
            }
            Func::Text | Func::Json => Type::Text,
            Func::Number => Type::Number,
            Func::Round | Func::Min | Func::Max => {
                for i in 0..args.len() {
                    want(i, is(i, Type::Number), "number")?;
                }
                Type::Number
            }
            Func::Abs | Func::DaysSince => {
                want(0, is(0, Type::Number), "number")?;
                Type::Number
            }
        })
    }

    /// Applies the function. `now` is the evaluation's clock (seconds since the epoch).
    pub fn call(self, args: &[Value], now: f64) -> Result<Value, EvalError> {
        let arg = |i: usize| args.get(i).unwrap_or(&Value::None);
        let text = |i: usize| -> Result<&str, EvalError> {
            match arg(i) {
                Value::Text(s) => Ok(s),
                other => Err(self.bad_arg(i, "text", other)),
            }
        };
        let number = |i: usize| -> Result<f64, EvalError> {
            match arg(i) {
                Value::Number(n) => Ok(*n),
                other => Err(self.bad_arg(i, "number", other)),
            }
        };
        let list = |i: usize| -> Result<&Arc<[Value]>, EvalError> {
            match arg(i) {
                Value::List(xs) => Ok(xs),
                other => Err(self.bad_arg(i, "list", other)),
            }
        };
        let out = match self {
            Func::Len => Value::Number(match arg(0) {
                Value::Text(s) => s.chars().count() as f64,
                Value::List(xs) => xs.len() as f64,
                Value::Record(m) => m.len() as f64,
                Value::None => 0.0,
                other => return Err(self.bad_arg(0, "text, list or record", other)),
            }),
            Func::Lower => Value::text(text(0)?.to_lowercase()),
            Func::Upper => Value::text(text(0)?.to_uppercase()),
            Func::Trim => Value::text(text(0)?.trim()),
            Func::Contains => Value::Bool(match arg(0) {
                Value::Text(s) => s.contains(text(1)?),
                Value::List(xs) => xs.contains(arg(1)),
                Value::None => false,
                other => return Err(self.bad_arg(0, "text or list", other)),
            }),
            Func::StartsWith => Value::Bool(text(0)?.starts_with(text(1)?)),
            Func::EndsWith => Value::Bool(text(0)?.ends_with(text(1)?)),
            Func::Join => {
                let sep = if args.len() > 1 { text(1)? } else { ", " };
                let mut out = String::new();
                for (i, v) in list(0)?.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(&v.to_string());
                    bound(out.len())?;
                }
                Value::text(out)
            }
            Func::Split => {
                let (s, sep) = (text(0)?, text(1)?);
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::text(c.to_string())).collect()
                } else {
                    s.split(sep).map(Value::text).collect()
                };
                Value::list(parts)
            }
            Func::Truncate => {
                let n = count(number(1)?);
                Value::text(text(0)?.chars().take(n).collect::<String>())
            }
            Func::Replace => {
                let (s, from, to) = (text(0)?, text(1)?, text(2)?);
                if from.is_empty() {
                    Value::text(s)
                } else {
                    let occurrences = s.matches(from).count();
                    bound(s.len() + occurrences.saturating_mul(to.len()))?;
                    Value::text(s.replace(from, to))
                }
            }
            Func::First => list(0)?.first().cloned().unwrap_or(Value::None),
            Func::Last => list(0)?.last().cloned().unwrap_or(Value::None),
            Func::Take => {
                let xs = list(0)?;
                let n = count(number(1)?).min(xs.len());
                Value::List(Arc::from(&xs[..n]))
            }
            Func::Default => match arg(0) {
                Value::None => arg(1).clone(),
                v => v.clone(),
            },
            Func::Text => match arg(0) {
                Value::Text(s) => Value::Text(Arc::clone(s)),
                v => {
                    let s = v.to_string();
                    bound(s.len())?;
                    Value::text(s)
                }
            },
            Func::Number => match arg(0) {
                Value::Number(n) => Value::Number(*n),
                Value::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
                Value::Text(s) => match s.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => Value::Number(n),
                    _ => return Err(EvalError::NotANumber { text: truncate_for_error(s) }),
                },
                other => return Err(self.bad_arg(0, "text, number or bool", other)),
            },
            Func::Round => {
                let digits = if args.len() > 1 { number(1)?.clamp(0.0, 12.0) as i32 } else { 0 };
                let scale = 10f64.powi(digits);
                Value::Number((number(0)? * scale).round() / scale)
            }
            Func::Min => Value::Number(number(0)?.min(number(1)?)),
            Func::Max => Value::Number(number(0)?.max(number(1)?)),
            Func::Abs => Value::Number(number(0)?.abs()),
            Func::DaysSince => Value::Number(((now - number(0)?) / 86_400.0).floor()),
            Func::Json => {
                let mut s = String::new();
                write_json(&mut s, arg(0)).expect("invariant: writing to a String cannot fail");
                bound(s.len())?;
                Value::text(s)
            }
        };
        match &out {
            Value::Number(n) if !n.is_finite() => Err(EvalError::NotFinite { function: self.name() }),
            Value::Text(s) => bound(s.len()).map(|()| out),
            Value::List(xs) => bound(xs.len().saturating_mul(std::mem::size_of::<Value>())).map(|()| out),
            _ => Ok(out),
        }
    }

    fn bad_arg(self, index: usize, expected: &'static str, found: &Value) -> EvalError {
        EvalError::BadArgument { function: self.name(), index, expected, found: found.kind_name() }
    }
}

/// A statically wrong argument.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError {
    pub index: usize,
    pub expected: &'static str,
    pub found: Type,
}

fn count(n: f64) -> usize {
    if n.is_finite() && n > 0.0 { n.min(usize::MAX as f64) as usize } else { 0 }
}

fn bound(len: usize) -> Result<(), EvalError> {
    if len > MAX_VALUE_BYTES { Err(EvalError::TooLarge { limit: MAX_VALUE_BYTES }) } else { Ok(()) }
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::text(s)
    }

    #[test]
    fn names_round_trip() {
        for f in Func::ALL {
            assert_eq!(Func::by_name(f.name()), Some(f));
        }
    }

    #[test]
    fn types_calls() {
        assert_eq!(Func::Len.check(&[Type::list(Type::Item)]), Ok(Type::Number));
        assert_eq!(Func::First.check(&[Type::list(Type::Item)]), Ok(Type::Item));
        assert!(Func::Lower.check(&[Type::Number]).is_err());
        assert_eq!(Func::Default.check(&[Type::Any, Type::Text]), Ok(Type::Text));
    }

    #[test]
    fn evaluates_text_functions() {
        assert_eq!(Func::Lower.call(&[t("AbC")], 0.0), Ok(t("abc")));
        assert_eq!(Func::Truncate.call(&[t("héllo"), Value::Number(2.0)], 0.0), Ok(t("hé")));
        assert_eq!(Func::Join.call(&[Value::list(vec![t("a"), Value::Number(1.0)]), t("-")], 0.0), Ok(t("a-1")));
        assert_eq!(Func::Len.call(&[t("héllo")], 0.0), Ok(Value::Number(5.0)));
    }

    #[test]
    fn days_since_uses_the_given_clock() {
        let now = 10.0 * 86_400.0 + 5.0;
        assert_eq!(Func::DaysSince.call(&[Value::Number(86_400.0)], now), Ok(Value::Number(9.0)));
    }

    #[test]
    fn number_parsing_is_checked() {
        assert_eq!(Func::Number.call(&[t(" 4.5 ")], 0.0), Ok(Value::Number(4.5)));
        assert!(matches!(Func::Number.call(&[t("four")], 0.0), Err(EvalError::NotANumber { .. })));
    }

    #[test]
    fn bounds_result_size() {
        let big = t(&"a".repeat(1000));
        let r = Func::Replace.call(&[big, t("a"), t(&"b".repeat(2000))], 0.0);
        assert!(matches!(r, Err(EvalError::TooLarge { .. })));
    }

    #[test]
    fn wrong_runtime_types_are_errors() {
        assert!(matches!(Func::Lower.call(&[Value::Number(1.0)], 0.0), Err(EvalError::BadArgument { .. })));
        assert!(matches!(Func::Abs.call(&[Value::None], 0.0), Err(EvalError::BadArgument { .. })));
    }
}
