//! Scoring the recognizers against labelled text, the way presidio-research does: token by
//! token. Each word (a run of letters and digits) of a sample gets the gold entity of the span
//! that covers it, if any, and the entity of the detection that covers it, if any; a token whose
//! two labels agree is a true positive of that entity, a gold token labelled otherwise is a false
//! negative of its gold entity, and a token labelled with something it is not is a false positive
//! of the predicted entity.
//!
//! Gold labels are mapped to Presidio's names first ([`presidio_label`]): `ADDRESS` is part of
//! `LOCATION` and `DOMAIN_NAME` of `URL`, as in presidio-research's evaluations; `TITLE` and
//! other labels no recognizer targets are not scored.

use std::collections::BTreeMap;

use crate::{Analyzer, Entity};

/// One labelled text: spans as byte offsets with the dataset's entity names.
#[derive(Debug, Clone)]
pub struct Sample {
    pub text: String,
    pub spans: Vec<(usize, usize, String)>,
}

/// True positives, false positives and false negatives of one entity, in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// F-beta with beta = 2: recall weighs four times as much as precision.
    pub fn f2(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 5.0 * p * r / (4.0 * p + r) }
    }

    /// Gold tokens of the entity.
    pub fn support(&self) -> u64 {
        self.tp + self.fn_
    }

    fn add(&mut self, other: Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The name a dataset label is scored under, or `None` when no recognizer targets it.
pub fn presidio_label(label: &str) -> Option<&'static str> {
    Some(match label {
        "ADDRESS" | "LOCATION" | "GPE" | "CITY" | "STREET_ADDRESS" => "LOCATION",
        "DOMAIN_NAME" | "URL" => "URL",
        "ORGANIZATION" | "ORG" => "ORGANIZATION",
        "PERSON" | "FIRST_NAME" | "LAST_NAME" | "NAME" => "PERSON",
        "EMAIL_ADDRESS" | "EMAIL" => "EMAIL_ADDRESS",
        "PHONE_NUMBER" => "PHONE_NUMBER",
        "CREDIT_CARD" => "CREDIT_CARD",
        "IBAN_CODE" | "IBAN" => "IBAN_CODE",
        "US_SSN" => "US_SSN",
        "IP_ADDRESS" => "IP_ADDRESS",
        "DATE_TIME" | "BIRTHDAY" => "DATE_TIME",
        "US_DRIVER_LICENSE" => "US_DRIVER_LICENSE",
        "US_PASSPORT" => "US_PASSPORT",
        "CRYPTO" => "CRYPTO",
        _ => return None,
    })
}

/// Per-entity counts over every sample, keyed by Presidio's names; with `only`, tokens of other
/// entities (gold or predicted) count as unlabelled.
pub fn evaluate(analyzer: &Analyzer, samples: &[Sample], only: Option<&[&str]>) -> BTreeMap<&'static str, Counts> {
    let keep = |label: Option<&'static str>| label.filter(|l| only.is_none_or(|o| o.contains(l)));
    let mut counts: BTreeMap<&'static str, Counts> = BTreeMap::new();
    for sample in samples {
        let detections = analyzer.analyze(&sample.text);
        // Tokens are runs of letters and digits.
        for (start, end) in crate::word_spans(&sample.text, char::is_alphanumeric) {
            let covers = |s: usize, e: usize| s <= start && end <= e;
            let gold =
                keep(sample.spans.iter().find(|(s, e, _)| covers(*s, *e)).and_then(|(_, _, l)| presidio_label(l)));
            let predicted = keep(detections.iter().find(|d| covers(d.start, d.end)).map(|d| d.entity.presidio()));
            match (gold, predicted) {
                (Some(g), Some(p)) if g == p => counts.entry(g).or_default().tp += 1,
                (g, p) => {
                    if let Some(g) = g {
                        counts.entry(g).or_default().fn_ += 1;
                    }
                    if let Some(p) = p {
                        counts.entry(p).or_default().fp += 1;
                    }
                }
            }
        }
    }
    counts
}

/// The sum of every entity's counts.
pub fn overall(counts: &BTreeMap<&'static str, Counts>) -> Counts {
    let mut all = Counts::default();
    for c in counts.values() {
        all.add(*c);
    }
    all
}

/// Every entity's Presidio name, for documentation and for `only` lists.
pub fn presidio_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Entity::ALL.iter().map(|e| e.presidio()).collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scored_by_label() {
        let text = "Mail bob@example.com or call Bob";
        let sample = Sample {
            text: text.into(),
            spans: vec![(5, 20, "EMAIL_ADDRESS".into()), (29, 32, "PERSON".into()), (0, 4, "TITLE".into())],
        };
        let counts = evaluate(&Analyzer::new(&[Entity::Email]), &[sample], None);
        // `bob`, `example`, `com` found; `Bob` missed; `Mail` (TITLE) not scored.
        assert_eq!(counts["EMAIL_ADDRESS"], Counts { tp: 3, fp: 0, fn_: 0 });
        assert_eq!(counts["PERSON"], Counts { tp: 0, fp: 0, fn_: 1 });
        let all = overall(&counts);
        assert_eq!((all.precision(), all.recall()), (1.0, 0.75));
        assert!((all.f2() - 5.0 * 0.75 / (4.0 + 0.75)).abs() < 1e-9);
    }
}
