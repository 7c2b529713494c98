//! Durations as the pipeline language writes them (spec/language.md §4.6): `"0"`, or spans such
//! as `30s`, `1h 30m`, `1.5h`, `7days` that add up.
//!
//! Hosts pass duration settings as a number of seconds; this parser is for hosts or callers that
//! pass the text instead, so a plugin reads both the same way.

use std::time::Duration;

/// Why a duration text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("expected a number at byte {0} of the duration")]
    ExpectedNumber(usize),
    #[error("unknown duration unit `{0}` (use ns, us, ms, s, m, h, d, w, M or y)")]
    UnknownUnit(String),
    #[error("missing unit after `{0}`")]
    MissingUnit(String),
    #[error("duration too large")]
    TooLarge,
}

/// Seconds per unit, by every spelling of §4.6. Case matters: `m` is minutes, `M` months.
fn unit_seconds(unit: &str) -> Option<f64> {
    const DAY: f64 = 86_400.0;
    Some(match unit {
        "ns" | "nsec" | "nanos" => 1e-9,
        "us" | "µs" | "usec" => 1e-6,
        "ms" | "msec" | "millis" => 1e-3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
        "d" | "day" | "days" => DAY,
        "w" | "wk" | "wks" | "week" | "weeks" => 7.0 * DAY,
        "M" | "month" | "months" => 30.44 * DAY,
        "y" | "yr" | "yrs" | "year" | "years" => 365.25 * DAY,
        _ => return None,
    })
}

/// Parses a duration of spec/language.md §4.6.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0.0_f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let offset = trimmed.len() - rest.len();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::ExpectedNumber(offset));
        }
        let mut number_len = digits;
        if rest[digits..].starts_with('.') {
            let fraction = rest[digits + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if fraction == 0 {
                return Err(DurationError::ExpectedNumber(offset + digits + 1));
            }
            number_len = digits + 1 + fraction;
        }
        let number = &rest[..number_len];
        let after = rest[number_len..].trim_start();
        let unit_len: usize = after.chars().take_while(|c| c.is_alphabetic()).map(char::len_utf8).sum();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let unit = &after[..unit_len];
        let per = unit_seconds(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        let value: f64 = number.parse().map_err(|_| DurationError::ExpectedNumber(offset))?;
        total += value * per;
        rest = after[unit_len..].trim_start();
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_spans() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7days").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5µs").unwrap(), Duration::from_micros(5));
    }

    #[test]
    fn spans_add_up_with_optional_whitespace() {
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("2 h").unwrap(), Duration::from_secs(7_200));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5_400));
    }

    #[test]
    fn zero_alone_needs_no_unit() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("5"), Err(DurationError::MissingUnit("5".into())));
    }

    #[test]
    fn units_are_case_sensitive() {
        assert_eq!(parse_duration("1M").unwrap().as_secs(), (30.44 * 86_400.0) as u64);
        assert_eq!(parse_duration("1m").unwrap().as_secs(), 60);
        assert_eq!(parse_duration("1H"), Err(DurationError::UnknownUnit("H".into())));
    }

    #[test]
    fn rejects_malformed_text() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("h"), Err(DurationError::ExpectedNumber(0)));
        assert_eq!(parse_duration("1.h"), Err(DurationError::ExpectedNumber(2)));
        assert_eq!(parse_duration("-1s"), Err(DurationError::ExpectedNumber(0)));
        assert_eq!(parse_duration("1s 2"), Err(DurationError::MissingUnit("2".into())));
    }
}
