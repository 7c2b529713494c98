//! Tailor's personal-data recognizers and operators (spec/privacy.md). One implementation, used
//! inside the sandbox by `builtin:pii-redact` and in the host by the egress guard, so that what
//! the guard refuses is exactly what the filter would have redacted.
//!
//! - [`patterns`]: structured identifiers, each a pattern for candidates plus a validator
//!   (checksum, range or parse): e-mail, phone, card (Luhn), IBAN (mod 97), US SSN, IP, URL,
//!   dates, US driver's licence and passport numbers, crypto wallets (Base58Check, Bech32).
//! - [`names`]: people, places, street addresses and organisations, found with gazetteers shipped
//!   as data (first and last names, places, the most common English words), capitalisation,
//!   titles, context words and address patterns.
//!
//! Every detection has a score in 0–1. Context words just before a candidate ("call", "IBAN",
//! "passport"), or just after it on its line, raise it by [`CONTEXT_BOOST`]; detections under their entity's threshold are
//! dropped; overlapping detections are resolved ([`resolve_overlaps`]); the operators of
//! [`redact`] replace what is left.

mod dfa;
pub mod eval;
pub mod names;
pub mod patterns;
#[cfg(any(test, feature = "runtime-regex"))]
mod regexes;

use std::collections::BTreeMap;

/// An entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    Ip,
    Url,
    DateTime,
    UsDriverLicense,
    UsPassport,
    Crypto,
    Person,
    Location,
    Address,
    Organization,
}

impl Entity {
    pub const ALL: [Entity; 15] = [
        Entity::Email,
        Entity::Phone,
        Entity::CreditCard,
        Entity::Iban,
        Entity::UsSsn,
        Entity::Ip,
        Entity::Url,
        Entity::DateTime,
        Entity::UsDriverLicense,
        Entity::UsPassport,
        Entity::Crypto,
        Entity::Person,
        Entity::Location,
        Entity::Address,
        Entity::Organization,
    ];

    /// The word in pipeline files (`entities "email" "phone"`) and in `found`.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::CreditCard => "credit-card",
            Entity::Iban => "iban",
            Entity::UsSsn => "us-ssn",
            Entity::Ip => "ip",
            Entity::Url => "url",
            Entity::DateTime => "date-time",
            Entity::UsDriverLicense => "us-driver-license",
            Entity::UsPassport => "us-passport",
            Entity::Crypto => "crypto",
            Entity::Person => "person",
            Entity::Location => "location",
            Entity::Address => "address",
            Entity::Organization => "organization",
        }
    }

    pub fn parse(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The placeholder label: `<EMAIL_1>`, `<CREDIT_CARD>`.
    pub fn label(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::UsSsn => "US_SSN",
            Entity::Ip => "IP",
            Entity::Url => "URL",
            Entity::DateTime => "DATE_TIME",
            Entity::UsDriverLicense => "US_DRIVER_LICENSE",
            Entity::UsPassport => "US_PASSPORT",
            Entity::Crypto => "CRYPTO",
            Entity::Person => "PERSON",
            Entity::Location => "LOCATION",
            Entity::Address => "ADDRESS",
            Entity::Organization => "ORGANIZATION",
        }
    }

    /// Presidio's name for the entity (street addresses are part of Presidio's `LOCATION`).
    pub fn presidio(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL_ADDRESS",
            Entity::Phone => "PHONE_NUMBER",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN_CODE",
            Entity::UsSsn => "US_SSN",
            Entity::Ip => "IP_ADDRESS",
            Entity::Url => "URL",
            Entity::DateTime => "DATE_TIME",
            Entity::UsDriverLicense => "US_DRIVER_LICENSE",
            Entity::UsPassport => "US_PASSPORT",
            Entity::Crypto => "CRYPTO",
            Entity::Person => "PERSON",
            Entity::Location | Entity::Address => "LOCATION",
            Entity::Organization => "ORGANIZATION",
        }
    }

    /// How much a recognizer's validation proves, for ties between overlapping detections: a
    /// checksum (3), a structure or range check (2), a pattern (1), a gazetteer (0).
    pub fn strength(self) -> u8 {
        match self {
            Entity::CreditCard | Entity::Iban | Entity::Crypto => 3,
            Entity::Email | Entity::UsSsn | Entity::Ip | Entity::Url => 2,
            Entity::Phone | Entity::DateTime | Entity::UsDriverLicense | Entity::UsPassport | Entity::Address => 1,
            Entity::Person | Entity::Location | Entity::Organization => 0,
        }
    }

    /// Words that, shortly before a candidate, make it more likely to be this entity.
    pub fn context_words(self) -> &'static [&'static str] {
        match self {
            Entity::Email => &["email", "e-mail", "mail", "contact", "address"],
            Entity::Phone => &[
                "phone",
                "telephone",
                "tel",
                "call",
                "mobile",
                "cell",
                "fax",
                "desk",
                "number",
                "contact",
                "whatsapp",
                "sms",
                "text",
                "dial",
                "reach",
                "office",
                "home",
                "work",
            ],
            Entity::CreditCard => &["card", "credit", "debit", "visa", "mastercard", "amex", "payment", "cc"],
            Entity::Iban => &["iban", "bank", "account", "transfer", "wire"],
            Entity::UsSsn => &["ssn", "social", "security", "ssns"],
            Entity::Ip => &["ip", "address", "host", "server", "from", "connected"],
            Entity::Url => &["url", "link", "website", "site", "visit", "see"],
            Entity::DateTime => &["date", "born", "birth", "birthday", "dob", "on", "when", "since", "until"],
            Entity::UsDriverLicense => &["driver", "drivers", "driving", "license", "licence", "dl", "permit"],
            Entity::UsPassport => &["passport", "travel", "document"],
            Entity::Crypto => &["wallet", "bitcoin", "btc", "ethereum", "eth", "crypto", "address"],
            Entity::Person => &[],
            Entity::Location => &[],
            Entity::Address => &["address", "lives", "live", "located", "ship", "shipping", "billing", "mail", "zip"],
            Entity::Organization => &[],
        }
    }
}

/// How much context words raise a score.
pub const CONTEXT_BOOST: f32 = 0.35;
/// The score a detection needs by default.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// How many words before a candidate are searched for context words.
const CONTEXT_WINDOW: usize = 6;
/// How many words after a candidate, on its line, are searched too (`555-2671 (mobile)`).
const CONTEXT_AFTER: usize = 2;

/// A detected span of the text, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub start: usize,
    pub end: usize,
    pub entity: Entity,
    /// How sure the recognizer is, 0–1.
    pub score: f32,
    /// The value normalised, for consistent placeholders (`+1 415 555 2671` = `+14155552671`).
    pub key: String,
}

impl Detection {
    pub fn new(start: usize, end: usize, entity: Entity, score: f32, key: impl Into<String>) -> Detection {
        Detection { start, end, entity, score, key: key.into() }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Which entity types to look for, and the score each needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Analyzer {
    enabled: Vec<Entity>,
    thresholds: BTreeMap<Entity, f32>,
    default_threshold: f32,
}

impl Default for Analyzer {
    fn default() -> Analyzer {
        Analyzer::new(&Entity::ALL)
    }
}

impl Analyzer {
    pub fn new(enabled: &[Entity]) -> Analyzer {
        Analyzer { enabled: enabled.to_vec(), thresholds: BTreeMap::new(), default_threshold: DEFAULT_THRESHOLD }
    }

    /// The score every entity needs unless [`Analyzer::threshold`] says otherwise.
    pub fn default_threshold(mut self, threshold: f32) -> Analyzer {
        self.default_threshold = threshold;
        self
    }

    pub fn threshold(mut self, entity: Entity, threshold: f32) -> Analyzer {
        self.thresholds.insert(entity, threshold);
        self
    }

    pub fn enabled(&self) -> &[Entity] {
        &self.enabled
    }

    fn needs(&self, entity: Entity) -> f32 {
        self.thresholds.get(&entity).copied().unwrap_or(self.default_threshold)
    }

    /// Every candidate of the enabled types with its score after context, before thresholds and
    /// overlap resolution.
    pub fn candidates(&self, text: &str) -> Vec<Detection> {
        let mut found = Vec::new();
        let shape = dfa::Shape::of(text);
        patterns::recognize(text, &shape, &self.enabled, &mut found);
        names::recognize(text, &shape, &self.enabled, &mut found);
        let words = word_spans(text, |c| c.is_alphanumeric() || c == '-');
        for d in &mut found {
            if has_context(text, &words, d.start, d.end, d.entity.context_words()) {
                d.score = (d.score + CONTEXT_BOOST).min(1.0);
            }
        }
        found
    }

    /// The detections that reach their threshold, without overlaps, in text order.
    pub fn analyze(&self, text: &str) -> Vec<Detection> {
        let mut found = self.candidates(text);
        found.retain(|d| d.score >= self.needs(d.entity));
        resolve_overlaps(found)
    }
}

/// The start and end of every run of characters `in_word` accepts.
pub(crate) fn word_spans(text: &str, in_word: impl Fn(char) -> bool) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (in_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    words
}

fn has_context(text: &str, words: &[(usize, usize)], start: usize, end: usize, context: &[&str]) -> bool {
    if context.is_empty() {
        return false;
    }
    // Context words are ASCII: a case-insensitive ASCII comparison needs no allocation.
    let is_context = |&(s, e): &(usize, usize)| context.iter().any(|c| text[s..e].eq_ignore_ascii_case(c));
    let before = words.partition_point(|&(_, e)| e <= start);
    let after = words.partition_point(|&(s, _)| s < end);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    words[before.saturating_sub(CONTEXT_WINDOW)..before].iter().any(is_context)
        || words[after..].iter().take(CONTEXT_AFTER).take_while(|&&(s, _)| s < line_end).any(is_context)
}

/// Whether two detections share at least one byte.
fn overlaps(a: &Detection, b: &Detection) -> bool {
    a.start < b.end && b.start < a.end
}

fn contains(a: &Detection, b: &Detection) -> bool {
    a.start <= b.start && b.end <= a.end
}

/// Which of two overlapping detections to keep: one containing the other wins (the inner text
/// goes with it); the same text goes to the higher score, then the stronger validation; a
/// partial overlap goes to the higher score, then the stronger validation, the longer, the earlier.
fn keep_first(a: &Detection, b: &Detection) -> bool {
    let key = |d: &Detection| (d.score, d.entity.strength());
    match (contains(a, b), contains(b, a)) {
        (true, true) => (key(a), std::cmp::Reverse(a.entity)) >= (key(b), std::cmp::Reverse(b.entity)),
        (true, false) => true,
        (false, true) => false,
        (false, false) => {
            (key(a), a.len(), std::cmp::Reverse(a.start)) >= (key(b), b.len(), std::cmp::Reverse(b.start))
        }
    }
}

/// Keeps a non-overlapping subset of the detections, in text order.
pub fn resolve_overlaps(mut found: Vec<Detection>) -> Vec<Detection> {
    found.sort_by(|a, b| {
        (a.start, std::cmp::Reverse(a.end), a.entity).cmp(&(b.start, std::cmp::Reverse(b.end), b.entity))
    });
    let mut keep = vec![true; found.len()];
    for i in 0..found.len() {
        for j in i + 1..found.len() {
            if found[j].start >= found[i].end {
                break;
            }
            if keep[i] && keep[j] && overlaps(&found[i], &found[j]) {
                if keep_first(&found[i], &found[j]) {
                    keep[j] = false;
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    found.into_iter().zip(keep).filter_map(|(d, k)| k.then_some(d)).collect()
}

/// How a detection is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `<EMAIL_1>`: numbered per entity type in order of first appearance, the same number for
    /// the same (normalised) value; reversible with the mapping.
    Placeholder,
    /// One `*` per character.
    Mask,
    /// `<EMAIL>`.
    Tag,
    /// `<EMAIL_3f9a1c02>`: a keyed hash (HMAC-SHA-256) of the normalised value, the same across
    /// calls with the same key, and not reversible without the value.
    Hash { key: Vec<u8> },
}

/// The outcome of redacting one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub text: String,
    /// The entity types replaced, each once, in [`Entity`] order.
    pub found: Vec<Entity>,
    /// For placeholders: each placeholder and the text it replaced (its first occurrence).
    pub mapping: Vec<(String, String)>,
}

/// Replaces each detection (non-overlapping, in text order) in `text`.
pub fn redact(text: &str, detections: &[Detection], operator: &Operator) -> Redaction {
    let mut numbers: BTreeMap<(Entity, &str), usize> = BTreeMap::new();
    let mut per_entity: BTreeMap<Entity, usize> = BTreeMap::new();
    let mut mapping = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for d in detections {
        out.push_str(&text[at..d.start]);
        let original = &text[d.start..d.end];
        match operator {
            Operator::Placeholder => {
                let mut fresh = false;
                let n = *numbers.entry((d.entity, d.key.as_str())).or_insert_with(|| {
                    fresh = true;
                    let count = per_entity.entry(d.entity).or_insert(0);
                    *count += 1;
                    *count
                });
                let placeholder = format!("<{}_{n}>", d.entity.label());
                if fresh {
                    mapping.push((placeholder.clone(), original.to_owned()));
                }
                out.push_str(&placeholder);
            }
            Operator::Mask => out.extend(std::iter::repeat_n('*', original.chars().count())),
            Operator::Tag => out.push_str(&format!("<{}>", d.entity.label())),
            Operator::Hash { key } => {
                let digest = hmac_sha256(key, d.key.as_bytes());
                let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("<{}_{hex}>", d.entity.label()));
            }
        }
        at = d.end;
    }
    out.push_str(&text[at..]);
    let mut found: Vec<Entity> = detections.iter().map(|d| d.entity).collect();
    found.sort();
    found.dedup();
    Redaction { text: out, found, mapping }
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The texts of presidio-research's synthetic sample set (tests/fixtures/pii/).
    pub(crate) fn sample_texts() -> Vec<String> {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/pii/presidio_generated_small.json")).unwrap();
        json.as_array().unwrap().iter().map(|s| s["full_text"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn guards_never_skip_a_match() {
        // Every sample of presidio-research's synthetic set, and texts near each guard's edge.
        let mut texts = crate::tests::sample_texts();
        texts.extend(
            [
                "call 555-2671 or (415) 555-2671, ext. 12",
                "card 4111 1111 1111 1111 and 4111-1111-1111-1111",
                "IBAN GB82 WEST 1234 5698 7654 32, DE89370400440532013000",
                "ssn 123-45-6789; ip 10.0.0.1 and ::1 and fe80::1",
                "on 1998-06-28, 12/27/86 and 29 March 2017; DL A1234567; passport 123456789",
                "1BoatSLRHtKNngkdXEeobR76b53LETtpyT bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq 0x52908400098527886E0F7030069857D2E4169EE7",
                "221B Baker Street, Apt. 5, ZIP 94103; 46 velký průhon 426; Rue Abdelaziz",
                "https://x.io/a and www.example.com; ana1@example.com",
                "",
                "no digits, no marks",
            ]
            .map(String::from),
        );
        let analyzer = Analyzer::default();
        let mut skipped = 0;
        for text in &texts {
            let guarded = analyzer.candidates(text);
            dfa::UNGUARDED.set(true);
            let unguarded = analyzer.candidates(text);
            dfa::UNGUARDED.set(false);
            assert_eq!(guarded, unguarded, "{text}");
            let shape = dfa::Shape::of(text);
            skipped += patterns::GUARDED.iter().chain(names::GUARDED).filter(|g| !(g.needs)(&shape)).count();
        }
        assert!(skipped > texts.len(), "the guards skip patterns ({skipped} over {} texts)", texts.len());
    }

    fn all(text: &str, operator: Operator) -> Redaction {
        let analyzer = Analyzer::default();
        redact(text, &analyzer.analyze(text), &operator)
    }

    #[test]
    fn placeholders_are_numbered_per_type_and_consistent_per_value() {
        let r = all("Mail a@x.io or b@y.io, again A@x.io; call +1 415 555 2671.", Operator::Placeholder);
        assert_eq!(r.text, "Mail <EMAIL_1> or <EMAIL_2>, again <EMAIL_1>; call <PHONE_1>.");
        assert_eq!(r.found, vec![Entity::Email, Entity::Phone]);
        assert_eq!(
            r.mapping,
            vec![
                ("<EMAIL_1>".into(), "a@x.io".into()),
                ("<EMAIL_2>".into(), "b@y.io".into()),
                ("<PHONE_1>".into(), "+1 415 555 2671".into())
            ]
        );
    }

    #[test]
    fn mask_keeps_length_in_characters() {
        let r = all("écrire à jöhn@exämple.com? no: ssn 123-45-6789", Operator::Mask);
        assert_eq!(r.text, "écrire à ****************? no: ssn ***********");
    }

    #[test]
    fn tag_names_the_type() {
        let r = all("card 4111-1111-1111-1111 from 10.0.0.1", Operator::Tag);
        assert_eq!(r.text, "card <CREDIT_CARD> from <IP>");
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let key = |k: &str| Operator::Hash { key: k.as_bytes().to_vec() };
        let a = all("mail a@x.io and A@x.io", key("k1"));
        let b = all("to a@x.io", key("k1"));
        let c = all("to a@x.io", key("k2"));
        let tag = &a.text[5..a.text.find(" and").unwrap()];
        assert!(tag.starts_with("<EMAIL_") && tag.len() == "<EMAIL_01234567>".len(), "{tag}");
        assert!(a.text.ends_with(tag), "the same value hashes the same: {}", a.text);
        assert!(b.text.ends_with(tag));
        assert!(!c.text.ends_with(tag), "another key gives another hash");
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }

    #[test]
    fn containing_span_wins() {
        let r = all("see https://bob@example.com/card/4111111111111111 now", Operator::Tag);
        assert_eq!(r.text, "see <URL> now");
    }

    #[test]
    fn same_text_goes_to_the_higher_score() {
        let r = all("server 192.168.100.200", Operator::Tag);
        assert_eq!(r.text, "server <IP>");
    }

    #[test]
    fn partial_overlap_goes_to_the_higher_score() {
        let a = Detection::new(0, 10, Entity::Phone, 0.6, "");
        let b = Detection::new(5, 25, Entity::Iban, 1.0, "");
        assert_eq!(resolve_overlaps(vec![a, b.clone()]), vec![b]);
    }

    #[test]
    fn context_words_raise_weak_candidates_over_the_threshold() {
        let analyzer = Analyzer::new(&[Entity::UsDriverLicense]);
        assert!(analyzer.analyze("ref A1234567 attached").is_empty());
        let found = analyzer.analyze("my driver license is A1234567");
        assert_eq!(found.len(), 1);
        assert!(found[0].score >= DEFAULT_THRESHOLD);
    }

    #[test]
    fn thresholds_are_per_entity() {
        let text = "call 555-2671 now";
        assert_eq!(Analyzer::new(&[Entity::Phone]).analyze(text).len(), 1);
        assert!(Analyzer::new(&[Entity::Phone]).threshold(Entity::Phone, 0.99).analyze(text).is_empty());
    }

    #[test]
    fn iban_and_ssn_are_redacted() {
        let r = all("IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-1234.", Operator::Placeholder);
        assert_eq!(r.text, "IBAN <IBAN_1>, SSN <US_SSN_1>.");
    }
}
