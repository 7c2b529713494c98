//! `builtin:pii-redact`: finds and replaces personal data before it leaves the machine
//! (spec/language.md §8.4). A first version: regex recognizers with validation
//! ([`recognizers`]), overlap resolution, and three operators.
//!
//! - **Overlaps**: when one span contains another, the longer wins (the shorter one's text goes
//!   with it); when two only partly overlap, the better-validated wins (checksum over structure
//!   over shape), then the longer, then the earlier.
//! - **Operators**: `placeholder` → `<EMAIL_1>`, numbered per entity type in order of first
//!   appearance, the same number for the same (normalised) value within a call; `mask` → one
//!   `*` per character; `tag` → `<EMAIL>`.
//! - `found` lists the entity names replaced, sorted and unique.

pub mod recognizers;

use std::collections::BTreeMap;

use recognizers::{Entity, Span};
use tailor_plugin_sdk::prelude::*;

pub struct PiiRedact;

impl Plugin for PiiRedact {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:pii-redact", env!("CARGO_PKG_VERSION"), StageKind::Privacy)
            .summary("finds and replaces personal data before it leaves the machine")
            .input(InputPort::new("text", "text").doc("the text to redact"))
            .output("text", "text", "the text with personal data replaced")
            .output("found", "list<text>", "the entity types found")
            .config(
                ConfigField::word_list("entities", Entity::ALL.map(Entity::name))
                    .doc("which entity types to redact (default: all)"),
            )
            .config(
                ConfigField::choice("operator", ["placeholder", "mask", "tag"])
                    .default("placeholder")
                    .doc("how to replace what is found"),
            )
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let text = inputs.text("text")?;
        let words = config.texts("entities")?;
        let enabled: Vec<Entity> = if words.is_empty() {
            Entity::ALL.to_vec()
        } else {
            words
                .iter()
                .map(|w| {
                    Entity::parse(w).ok_or_else(|| {
                        StageError::invalid_config(format!("config key `entities`: unknown entity `{w}`"))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let operator = Operator::parse(config.choice("operator")?)
            .ok_or_else(|| StageError::invalid_config("config key `operator`: unknown operator"))?;
        let redaction = redact(text, &enabled, operator);
        Ok(Outputs::new().text("text", redaction.text).texts("found", redaction.found))
    }
}

export_plugin!(PiiRedact);

/// How a span is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Placeholder,
    Mask,
    Tag,
}

impl Operator {
    pub fn parse(word: &str) -> Option<Operator> {
        match word {
            "placeholder" => Some(Operator::Placeholder),
            "mask" => Some(Operator::Mask),
            "tag" => Some(Operator::Tag),
            _ => None,
        }
    }
}

/// The outcome of redacting one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub text: String,
    /// Entity names replaced, sorted and unique.
    pub found: Vec<String>,
}

/// Whether two spans share at least one byte.
fn overlaps(a: &Span, b: &Span) -> bool {
    a.start < b.end && b.start < a.end
}

fn contains(a: &Span, b: &Span) -> bool {
    a.start <= b.start && b.end <= a.end
}

/// Which of two overlapping spans to keep.
fn keep_first(a: &Span, b: &Span) -> bool {
    let a_contains = contains(a, b);
    let b_contains = contains(b, a);
    if a_contains && b_contains {
        // The same text: the better-validated entity names it.
        return (a.entity.strength(), std::cmp::Reverse(a.entity))
            >= (b.entity.strength(), std::cmp::Reverse(b.entity));
    }
    if a_contains || b_contains {
        return a_contains;
    }
    (a.entity.strength(), a.len(), std::cmp::Reverse(a.start))
        >= (b.entity.strength(), b.len(), std::cmp::Reverse(b.start))
}

/// Keeps a non-overlapping subset of the spans, in text order.
pub fn resolve_overlaps(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end), s.entity));
    let mut keep = vec![true; spans.len()];
    for i in 0..spans.len() {
        for j in i + 1..spans.len() {
            if spans[j].start >= spans[i].end {
                break;
            }
            if keep[i] && keep[j] && overlaps(&spans[i], &spans[j]) {
                if keep_first(&spans[i], &spans[j]) {
                    keep[j] = false;
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    spans.into_iter().zip(keep).filter_map(|(s, k)| k.then_some(s)).collect()
}

/// Redacts the enabled entity types in `text`.
pub fn redact(text: &str, enabled: &[Entity], operator: Operator) -> Redaction {
    let spans = resolve_overlaps(recognizers::recognize(text, enabled));
    let mut numbers: BTreeMap<(Entity, &str), usize> = BTreeMap::new();
    let mut per_entity: BTreeMap<Entity, usize> = BTreeMap::new();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in &spans {
        out.push_str(&text[at..span.start]);
        match operator {
            Operator::Placeholder => {
                let n = *numbers.entry((span.entity, span.key.as_str())).or_insert_with(|| {
                    let count = per_entity.entry(span.entity).or_insert(0);
                    *count += 1;
                    *count
                });
                out.push_str(&format!("<{}_{n}>", span.entity.label()));
            }
            Operator::Mask => out.extend(std::iter::repeat_n('*', text[span.start..span.end].chars().count())),
            Operator::Tag => out.push_str(&format!("<{}>", span.entity.label())),
        }
        at = span.end;
    }
    out.push_str(&text[at..]);
    let mut found: Vec<String> = spans.iter().map(|s| s.entity.name().to_owned()).collect();
    found.sort();
    found.dedup();
    Redaction { text: out, found }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::call;

    fn all(text: &str, operator: Operator) -> Redaction {
        redact(text, &Entity::ALL, operator)
    }

    #[test]
    fn placeholders_are_numbered_per_type_and_consistent_per_value() {
        let r = all("Mail a@x.io or b@y.io, again A@x.io; call +1 415 555 2671.", Operator::Placeholder);
        assert_eq!(r.text, "Mail <EMAIL_1> or <EMAIL_2>, again <EMAIL_1>; call <PHONE_1>.");
        assert_eq!(r.found, vec!["email", "phone"]);
    }

    #[test]
    fn mask_keeps_length_in_characters() {
        let r = all("écrire à jöhn@exämple.com? no: ssn 123-45-6789", Operator::Mask);
        assert_eq!(r.text, "écrire à ****************? no: ssn ***********");
        let r = all("to bob@example.com", Operator::Mask);
        assert_eq!(r.text, "to ***************");
    }

    #[test]
    fn tag_names_the_type() {
        let r = all("card 4111-1111-1111-1111 from 10.0.0.1", Operator::Tag);
        assert_eq!(r.text, "card <CREDIT_CARD> from <IP>");
        assert_eq!(r.found, vec!["credit-card", "ip"]);
    }

    #[test]
    fn containing_span_wins() {
        let r = all("see https://bob@example.com/card/4111111111111111 now", Operator::Tag);
        assert_eq!(r.text, "see <URL> now");
        assert_eq!(r.found, vec!["url"]);
    }

    #[test]
    fn same_text_goes_to_the_better_validated_entity() {
        // A 12-digit dotted IP also has a phone's shape.
        let r = all("server 192.168.100.200", Operator::Tag);
        assert_eq!(r.text, "server <IP>");
    }

    #[test]
    fn partial_overlap_goes_to_the_checksummed_entity() {
        let a = Span { start: 0, end: 10, entity: Entity::Phone, key: String::new() };
        let b = Span { start: 5, end: 25, entity: Entity::Iban, key: String::new() };
        assert_eq!(resolve_overlaps(vec![a, b.clone()]), vec![b]);
    }

    #[test]
    fn iban_and_ssn_are_redacted() {
        let r = all("IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-1234.", Operator::Placeholder);
        assert_eq!(r.text, "IBAN <IBAN_1>, SSN <US_SSN_1>.");
    }

    #[test]
    fn entities_restrict_what_is_redacted() {
        let inputs = Inputs::new().with("text", "a@x.io and 10.0.0.1");
        let out = call::<PiiRedact>(inputs, Config::new().with("entities", vec!["ip"])).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("a@x.io and <IP_1>".into())));
        assert_eq!(out.get("found"), Some(&Value::Texts(vec!["ip".into()])));
    }

    #[test]
    fn clean_text_is_unchanged() {
        let out =
            call::<PiiRedact>(Inputs::new().with("text", "Nothing to see, version 1.2.3."), Config::new()).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("Nothing to see, version 1.2.3.".into())));
        assert_eq!(out.get("found"), Some(&Value::Texts(vec![])));
    }

    #[test]
    fn unknown_entity_is_rejected_before_run() {
        let out = call::<PiiRedact>(Inputs::new().with("text", "x"), Config::new().with("entities", vec!["passport"]));
        assert!(matches!(out, Err(StageError::InvalidConfig(_))));
    }
}
