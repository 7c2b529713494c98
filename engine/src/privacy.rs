//! The host's side of privacy (spec/privacy.md): the per-run [`Vault`] of reversible
//! placeholders, and the [`EgressGuard`] that refuses LLM requests carrying personal data.
//!
//! Privacy stages (`builtin:pii-redact`) hand the host each placeholder they put in with the text
//! it replaced. The vault keeps them for one run only: it makes placeholders consistent across
//! stages (the same value gets the same placeholder, two values never share one) and restores
//! them in the run's final output. Nothing else sees the originals: not other stages, not the
//! LLM, not the stage cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tailor_dsl::types::Value;
use tailor_pii::{Analyzer, Entity};

use crate::host::is_placeholder;
use crate::host::services::{Complete, Completion, CompletionRequest, ServiceError};

/// One run's placeholders.
#[derive(Debug, Default)]
pub struct Vault {
    /// Placeholder → the text it stands for.
    originals: BTreeMap<String, String>,
    /// (label, text) → its placeholder.
    placeholders: HashMap<(String, String), String>,
}

fn label_of(placeholder: &str) -> &str {
    placeholder.trim_start_matches('<').trim_end_matches('>').rsplit_once('_').map_or("", |(label, _)| label)
}

impl Vault {
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// Takes in a stage's placeholders and returns the renames its outputs need (its placeholder
    /// → the run's): a value seen before keeps its first placeholder; a placeholder already
    /// standing for another value gets the next free number of its label.
    pub fn absorb(&mut self, pairs: Vec<(String, String)>) -> BTreeMap<String, String> {
        let mut renames = BTreeMap::new();
        let incoming: Vec<String> = pairs.iter().map(|(p, _)| p.clone()).collect();
        for (placeholder, original) in pairs {
            let label = label_of(&placeholder).to_owned();
            let key = (label.clone(), original.clone());
            if let Some(existing) = self.placeholders.get(&key) {
                if *existing != placeholder {
                    renames.insert(placeholder, existing.clone());
                }
                continue;
            }
            let target = if self.originals.contains_key(&placeholder) {
                (1..)
                    .map(|n| format!("<{label}_{n}>"))
                    .find(|c| !self.originals.contains_key(c) && !incoming.contains(c))
                    .expect("invariant: an unused number exists")
            } else {
                placeholder.clone()
            };
            self.originals.insert(target.clone(), original);
            self.placeholders.insert(key, target.clone());
            if target != placeholder {
                renames.insert(placeholder, target);
            }
        }
        renames
    }

    /// `value` with every known placeholder in its texts replaced by the original.
    pub fn restore(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        map_texts(value, &|text| rewrite(text, |p| self.originals.get(p).cloned()))
    }
}

/// `value` with `f` applied to every text in it (lists, records and items' texts included).
pub fn map_texts(value: &Value, f: &dyn Fn(&str) -> Option<String>) -> Value {
    match value {
        Value::Text(t) => f(t).map_or_else(|| value.clone(), Value::text),
        Value::List(xs) => Value::list(xs.iter().map(|x| map_texts(x, f)).collect()),
        Value::Record(map) => {
            Value::Record(Arc::new(map.iter().map(|(k, v)| (Arc::clone(k), map_texts(v, f))).collect()))
        }
        Value::Item(item) => match f(&item.text) {
            Some(text) => {
                let mut item = (**item).clone();
                item.text = text.into();
                Value::Item(Arc::new(item))
            }
            None => value.clone(),
        },
        Value::None | Value::Number(_) | Value::Bool(_) => value.clone(),
    }
}

/// `text` with each placeholder `f` maps replaced, in one pass (renames may swap names); `None`
/// when nothing changed.
pub fn rewrite(text: &str, f: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut at = 0;
    let mut changed = false;
    let mut search = 0;
    while let Some(open) = text[search..].find('<').map(|i| search + i) {
        let Some(close) = text[open..].find('>').map(|i| open + i) else { break };
        let candidate = &text[open..=close];
        match is_placeholder(candidate).then(|| f(candidate)).flatten() {
            Some(replacement) => {
                out.push_str(&text[at..open]);
                out.push_str(&replacement);
                at = close + 1;
                search = close + 1;
                changed = true;
            }
            None => search = open + 1,
        }
    }
    changed.then(|| {
        out.push_str(&text[at..]);
        out
    })
}

/// Requests refused and entities found by every egress guard of this process, per entity type.
pub struct EgressAudit {
    refused: AtomicU64,
    passed: AtomicU64,
    found: [AtomicU64; Entity::ALL.len()],
}

static AUDIT: EgressAudit = EgressAudit {
    refused: AtomicU64::new(0),
    passed: AtomicU64::new(0),
    found: [const { AtomicU64::new(0) }; Entity::ALL.len()],
};

/// A snapshot of the process's egress counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCounts {
    pub refused: u64,
    pub passed: u64,
    /// Entity type (`email`…) → how many were found in refused requests.
    pub found: BTreeMap<&'static str, u64>,
}

pub fn egress_audit() -> AuditCounts {
    AuditCounts {
        refused: AUDIT.refused.load(Ordering::Relaxed),
        passed: AUDIT.passed.load(Ordering::Relaxed),
        found: Entity::ALL
            .iter()
            .zip(&AUDIT.found)
            .map(|(e, n)| (e.name(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect(),
    }
}

/// `complete` under `privacy { egress "strict" }`: every message of every request is scanned
/// with the recognizers of `builtin:pii-redact` (all entity types but the allowed ones, at their
/// default thresholds); a request that carries anything is refused before it leaves, with the
/// entity types found and never their values. Placeholders (`<EMAIL_1>`) are not personal data.
pub struct EgressGuard {
    inner: Arc<dyn Complete>,
    analyzer: Arc<Analyzer>,
}

impl EgressGuard {
    /// `allow`: entity words (`location`…) let through; unknown words are ignored (the checker
    /// refuses them before a run).
    pub fn new(inner: Arc<dyn Complete>, allow: &[String]) -> EgressGuard {
        EgressGuard::with(Arc::new(EgressGuard::analyzer(allow)), inner)
    }

    /// The recognizers a guard with `allow` scans with, to share between guards.
    pub fn analyzer(allow: &[String]) -> Analyzer {
        let enabled: Vec<Entity> = Entity::ALL.into_iter().filter(|e| !allow.iter().any(|a| a == e.name())).collect();
        Analyzer::new(&enabled)
    }

    pub fn with(analyzer: Arc<Analyzer>, inner: Arc<dyn Complete>) -> EgressGuard {
        EgressGuard { inner, analyzer }
    }

    /// The entity types in `request` and how many of each, in [`Entity`] order.
    pub fn scan(&self, request: &CompletionRequest) -> Vec<(Entity, usize)> {
        let mut found: BTreeMap<Entity, usize> = BTreeMap::new();
        for message in &request.messages {
            for d in self.analyzer.analyze(&message.content) {
                *found.entry(d.entity).or_default() += 1;
            }
        }
        found.into_iter().collect()
    }
}

#[async_trait]
impl Complete for EgressGuard {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError> {
        let found = self.scan(&request);
        if found.is_empty() {
            AUDIT.passed.fetch_add(1, Ordering::Relaxed);
            return self.inner.complete(request).await;
        }
        AUDIT.refused.fetch_add(1, Ordering::Relaxed);
        for (entity, n) in &found {
            let i = Entity::ALL.iter().position(|e| e == entity).expect("invariant: every entity is in ALL");
            AUDIT.found[i].fetch_add(*n as u64, Ordering::Relaxed);
        }
        let what: Vec<String> = found.iter().map(|(e, n)| format!("{} ×{n}", e.name())).collect();
        Err(ServiceError::Refused(format!(
            "egress \"strict\": the request to the LLM carries personal data ({}); redact it first (builtin:pii-redact) \
             or allow the type in `privacy {{ allow … }}`",
            what.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_dsl::ir::PII_ENTITIES;

    #[test]
    fn the_languages_entity_words_are_the_recognizers() {
        let ours: Vec<&str> = Entity::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(ours, PII_ENTITIES);
    }

    #[test]
    fn values_keep_one_placeholder_and_placeholders_one_value() {
        let mut vault = Vault::default();
        let first = vault.absorb(vec![("<EMAIL_1>".into(), "a@x.io".into()), ("<EMAIL_2>".into(), "b@x.io".into())]);
        assert!(first.is_empty());
        // A later stage numbered on its own: a@x.io is <EMAIL_1> already; c@x.io takes a free number.
        let second = vault.absorb(vec![("<EMAIL_1>".into(), "c@x.io".into()), ("<EMAIL_2>".into(), "a@x.io".into())]);
        assert_eq!(second.get("<EMAIL_2>").map(String::as_str), Some("<EMAIL_1>"));
        let c = second.get("<EMAIL_1>").unwrap();
        assert_eq!(c, "<EMAIL_3>");
        let text = "to <EMAIL_1> and <EMAIL_2>";
        let renamed = rewrite(text, |p| second.get(p).cloned()).unwrap();
        assert_eq!(renamed, "to <EMAIL_3> and <EMAIL_1>", "renames happen in one pass");
        let restored = vault.restore(&Value::text(format!("{renamed}; also <EMAIL_2>, <NOT A PLACEHOLDER>")));
        assert_eq!(restored, Value::text("to c@x.io and a@x.io; also b@x.io, <NOT A PLACEHOLDER>"));
    }

    #[test]
    fn placeholders_have_one_shape() {
        for ok in ["<EMAIL_1>", "<CREDIT_CARD_12>", "<US_SSN_3>"] {
            assert!(is_placeholder(ok), "{ok}");
        }
        for bad in ["<EMAIL>", "<email_1>", "<EMAIL_1a>", "EMAIL_1", "<_1>", "<EMAIL_>", "<A B_1>"] {
            assert!(!is_placeholder(bad), "{bad}");
        }
    }

    #[test]
    fn restore_reaches_into_lists_and_records() {
        let mut vault = Vault::default();
        vault.absorb(vec![("<PHONE_1>".into(), "+1 415 555 2671".into())]);
        let record: BTreeMap<Arc<str>, Value> = [(Arc::from("to"), Value::text("call <PHONE_1>"))].into();
        let value = Value::list(vec![Value::Record(Arc::new(record)), Value::Number(1.0)]);
        let Value::List(xs) = vault.restore(&value) else { panic!() };
        let Value::Record(r) = &xs[0] else { panic!() };
        assert_eq!(r["to"], Value::text("call +1 415 555 2671"));
    }
}
