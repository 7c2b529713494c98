//! Recognizers: one per entity type, each a regex for candidates plus a validator (checksum,
//! range or parse) that decides whether a candidate is really that entity.
//!
//! A recognizer reports spans with a *strength* (how much its validation proves) and a *key*
//! (the value normalised, so `+1 415 555 2671` and `+14155552671` are the same phone).

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

/// An entity type, named as in the descriptor's `entities` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    Ip,
    Url,
}

impl Entity {
    pub const ALL: [Entity; 7] =
        [Entity::Email, Entity::Phone, Entity::CreditCard, Entity::Iban, Entity::UsSsn, Entity::Ip, Entity::Url];

    /// The word in the descriptor and in `found`.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::CreditCard => "credit-card",
            Entity::Iban => "iban",
            Entity::UsSsn => "us-ssn",
            Entity::Ip => "ip",
            Entity::Url => "url",
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
        }
    }

    /// How much validation proves: a checksum (2), a structure or range check (1), or only a
    /// shape heuristic (0).
    pub fn strength(self) -> u8 {
        match self {
            Entity::CreditCard | Entity::Iban => 2,
            Entity::Email | Entity::UsSsn | Entity::Ip | Entity::Url => 1,
            Entity::Phone => 0,
        }
    }
}

/// A recognised span of the text, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub entity: Entity,
    /// The value normalised, for consistent placeholders.
    pub key: String,
}

impl Span {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("invariant: recognizer patterns are valid")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // `\w` is Unicode-aware: internationalised addresses (`jöhn@exämple.com`) count too.
    regex(r"[\w.%+\-]+@\w(?:[\w\-]*\w)?(?:\.\w(?:[\w\-]*\w)?)*\.[^\W\d_]{2,63}")
});
static URL: LazyLock<Regex> = LazyLock::new(|| regex(r#"(?i)\b(?:https?://|ftp://|www\.)[^\s<>"'`]+"#));
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f]{1,4})?"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:(?:\+|\b00)[1-9][0-9]{0,2}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{1,4}){1,6}")
});
static CREDIT_CARD: LazyLock<Regex> = LazyLock::new(|| regex(r"\b[0-9](?:[ \-]?[0-9]){12,18}\b"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\b[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){11,30}"));
static US_SSN: LazyLock<Regex> = LazyLock::new(|| regex(r"\b[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}\b"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^(?:[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2}|[0-9]{1,2}[./\-][0-9]{1,2}[./\-][0-9]{2,4})$")
});

fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Every span of the enabled entity types, overlapping or not.
pub fn recognize(text: &str, enabled: &[Entity]) -> Vec<Span> {
    let mut spans = Vec::new();
    for entity in enabled {
        match entity {
            Entity::Email => emails(text, &mut spans),
            Entity::Phone => phones(text, &mut spans),
            Entity::CreditCard => credit_cards(text, &mut spans),
            Entity::Iban => ibans(text, &mut spans),
            Entity::UsSsn => ssns(text, &mut spans),
            Entity::Ip => ips(text, &mut spans),
            Entity::Url => urls(text, &mut spans),
        }
    }
    spans
}

fn emails(text: &str, spans: &mut Vec<Span>) {
    for m in EMAIL.find_iter(text) {
        let local_start = m.as_str().trim_start_matches('.');
        let start = m.end() - local_start.len();
        spans.push(Span { start, end: m.end(), entity: Entity::Email, key: text[start..m.end()].to_lowercase() });
    }
}

/// Trailing punctuation is prose, not URL; a closing bracket stays when the URL opened it.
fn trim_url(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().next_back() else { return url };
        let unbalanced =
            |open: char, close: char| last == close && url.matches(open).count() < url.matches(close).count();
        if ".,;:!?'\"*".contains(last) || unbalanced('(', ')') || unbalanced('[', ']') || unbalanced('{', '}') {
            url = &url[..url.len() - last.len_utf8()];
        } else {
            return url;
        }
    }
}

fn urls(text: &str, spans: &mut Vec<Span>) {
    for m in URL.find_iter(text) {
        let url = trim_url(m.as_str());
        let has_host = url.split_once("//").map_or(url.len() > 4, |(_, rest)| !rest.is_empty());
        if has_host {
            spans.push(Span { start: m.start(), end: m.start() + url.len(), entity: Entity::Url, key: url.to_owned() });
        }
    }
}

fn ips(text: &str, spans: &mut Vec<Span>) {
    for m in IPV4.find_iter(text) {
        let dotted_before =
            text[..m.start()].ends_with('.') && text[..m.start() - 1].ends_with(|c: char| c.is_ascii_digit());
        let dotted_after =
            text[m.end()..].starts_with('.') && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
        // After a colon it is the tail of an IPv6 address (`::ffff:10.0.0.1`).
        let in_ipv6 = text[..m.start()].ends_with(':');
        let octets_ok = m.as_str().split('.').all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
        if octets_ok && !dotted_before && !dotted_after && !in_ipv6 {
            spans.push(Span { start: m.start(), end: m.end(), entity: Entity::Ip, key: m.as_str().to_owned() });
        }
    }
    for m in IPV6.find_iter(text) {
        let s = m.as_str();
        let inside_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == ':' || c == '_');
        if inside_word(char_before(text, m.start())) || inside_word(char_after(text, m.end())) {
            continue;
        }
        let groups = s.split(':').filter(|g| !g.is_empty()).count();
        let has_digit = s.chars().any(|c| c.is_ascii_digit());
        let Ok(addr) = s.parse::<Ipv6Addr>() else { continue };
        if groups >= 2 || has_digit {
            spans.push(Span { start: m.start(), end: m.end(), entity: Entity::Ip, key: addr.to_string() });
        }
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn credit_cards(text: &str, spans: &mut Vec<Span>) {
    for m in CREDIT_CARD.find_iter(text) {
        let s = m.as_str();
        let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
        let one_kind = separators.windows(2).all(|w| w[0] == w[1]);
        let number = digits(s);
        let all_same = number.bytes().all(|b| b == number.as_bytes()[0]);
        if one_kind && !all_same && (13..=19).contains(&number.len()) && luhn_valid(&number) {
            spans.push(Span { start: m.start(), end: m.end(), entity: Entity::CreditCard, key: number });
        }
    }
}

/// IBAN lengths by country (ISO 13616 registry).
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "CR" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

/// ISO 7064 mod 97-10: the rearranged number, letters as 10–35, leaves 1.
pub fn iban_valid(compact: &str) -> bool {
    if compact.len() < 15 || !compact.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let rearranged = compact[4..].bytes().chain(compact[..4].bytes());
    let mut remainder: u32 = 0;
    for b in rearranged {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            _ => u32::from(b.to_ascii_uppercase() - b'A') + 10,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

fn ibans(text: &str, spans: &mut Vec<Span>) {
    for m in IBAN.find_iter(text) {
        let s = m.as_str();
        // Byte offset just after each alphanumeric character of the candidate.
        let ends: Vec<usize> =
            s.char_indices().filter(|(_, c)| c.is_ascii_alphanumeric()).map(|(i, c)| i + c.len_utf8()).collect();
        let country = s[..2].to_ascii_uppercase();
        let lengths: Vec<usize> = match iban_length(&country) {
            Some(n) => vec![n],
            None => (15..=34).rev().collect(),
        };
        for n in lengths {
            let Some(&end) = ends.get(n - 1) else { continue };
            if char_after(text, m.start() + end).is_some_and(char::is_alphanumeric) {
                continue;
            }
            let compact: String =
                s[..end].chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_uppercase();
            if iban_valid(&compact) {
                spans.push(Span { start: m.start(), end: m.start() + end, entity: Entity::Iban, key: compact });
                break;
            }
        }
    }
}

fn ssns(text: &str, spans: &mut Vec<Span>) {
    for m in US_SSN.find_iter(text) {
        let s = m.as_str();
        if s.as_bytes()[3] != s.as_bytes()[6] {
            continue;
        }
        let number = digits(s);
        let (area, group, serial) = (&number[..3], &number[3..5], &number[5..]);
        let area_ok = area != "000" && area != "666" && !area.starts_with('9');
        // Numbers the SSA voided after they were printed on sample cards.
        let known_void = number == "078051120" || number == "219099999";
        if area_ok && group != "00" && serial != "0000" && !known_void {
            spans.push(Span { start: m.start(), end: m.end(), entity: Entity::UsSsn, key: number });
        }
    }
}

/// Phone numbers in international (`+44 20 7946 0958`, `0044…`) and common national formats
/// (`(415) 555-2671`, `415-555-2671`, `555-2671`). Bare digit runs are not phones: too many
/// ids and amounts look like them.
fn phones(text: &str, spans: &mut Vec<Span>) {
    for m in PHONE.find_iter(text) {
        let s = m.as_str();
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '+');
        if glued(char_before(text, m.start())) || glued(char_after(text, m.end())) {
            continue;
        }
        let mut number = digits(s);
        let international = s.starts_with('+') || s.starts_with("00");
        if s.starts_with("00") {
            number.drain(..2);
        }
        if !(7..=15).contains(&number.len()) || DATE.is_match(s) {
            continue;
        }
        let separated = s.contains([' ', '-', '.', '(']);
        let groups: Vec<&str> = s.split([' ', '-', '.', '(', ')']).filter(|g| !g.is_empty()).collect();
        let local_form = groups.len() == 2 && groups[0].len() == 3 && groups[1].len() == 4;
        let national = separated && (s.contains('(') || number.len() >= 10 || local_form);
        let last_group_ok = groups.last().is_some_and(|g| g.len() >= 2);
        if (international || national) && last_group_ok {
            let key = if international { format!("+{number}") } else { number };
            spans.push(Span { start: m.start(), end: m.end(), entity: Entity::Phone, key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, entity: Entity) -> Vec<String> {
        recognize(text, &[entity]).into_iter().map(|s| text[s.start..s.end].to_owned()).collect()
    }

    #[test]
    fn emails() {
        assert_eq!(
            found("mail John.Doe+x@mail.example.co.uk, now.", Entity::Email),
            vec!["John.Doe+x@mail.example.co.uk"]
        );
        assert!(found("user@localhost and @handle", Entity::Email).is_empty());
        assert_eq!(found("à jöhn@exämple.com?", Entity::Email), vec!["jöhn@exämple.com"]);
    }

    #[test]
    fn international_and_national_phones() {
        for phone in [
            "+1 415 555 2671",
            "+44 20 7946 0958",
            "+49-30-1234567",
            "0044 20 7946 0958",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "555-2671",
            "+14155552671",
        ] {
            assert_eq!(found(&format!("call {phone} today"), Entity::Phone), vec![phone], "{phone}");
        }
    }

    #[test]
    fn dates_ids_and_amounts_are_not_phones() {
        for text in [
            "on 2024-01-15 we",
            "on 15.01.2024 we",
            "order 4155552671 shipped",
            "v1.2.3.4",
            "pay 1 000 000",
            "ISBN978-3-16",
        ] {
            assert!(found(text, Entity::Phone).is_empty(), "{text}");
        }
    }

    #[test]
    fn credit_cards_need_luhn() {
        assert_eq!(found("card 4111 1111 1111 1111 ok", Entity::CreditCard), vec!["4111 1111 1111 1111"]);
        assert_eq!(found("card 5500-0000-0000-0004", Entity::CreditCard), vec!["5500-0000-0000-0004"]);
        assert_eq!(found("amex 378282246310005", Entity::CreditCard), vec!["378282246310005"]);
        assert!(found("card 4111 1111 1111 1112", Entity::CreditCard).is_empty());
        assert!(found("mixed 4111 1111-1111 1111", Entity::CreditCard).is_empty());
        assert!(found("zeros 0000 0000 0000 0000", Entity::CreditCard).is_empty());
    }

    #[test]
    fn ibans_need_mod_97_and_country_length() {
        assert_eq!(
            found("IBAN DE89 3704 0044 0532 0130 00 is mine", Entity::Iban),
            vec!["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(found("gb82west12345698765432.", Entity::Iban), vec!["gb82west12345698765432"]);
        assert_eq!(found("NL91ABNA0417164300", Entity::Iban), vec!["NL91ABNA0417164300"]);
        assert!(found("DE89 3704 0044 0532 0130 01", Entity::Iban).is_empty());
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(!iban_valid("GB82WEST12345698765431"));
    }

    #[test]
    fn ssns_in_valid_ranges_only() {
        assert_eq!(found("ssn 123-45-6789.", Entity::UsSsn), vec!["123-45-6789"]);
        assert_eq!(found("ssn 536 22 1234", Entity::UsSsn), vec!["536 22 1234"]);
        for bad in
            ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000", "078-05-1120", "123-45 6789"]
        {
            assert!(found(bad, Entity::UsSsn).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ipv4_and_ipv6() {
        assert_eq!(found("from 192.168.1.20, and", Entity::Ip), vec!["192.168.1.20"]);
        assert!(found("version 1.2.3.4.5 and 256.1.1.1", Entity::Ip).is_empty());
        assert_eq!(found("host 2001:db8::8a2e:370:7334 up", Entity::Ip), vec!["2001:db8::8a2e:370:7334"]);
        assert_eq!(found("loopback ::1 and ::ffff:10.0.0.1", Entity::Ip), vec!["::1", "::ffff:10.0.0.1"]);
        assert!(found("at 12:30:45 use std::vec and Bad::Wolf", Entity::Ip).is_empty());
    }

    #[test]
    fn urls_drop_trailing_punctuation() {
        assert_eq!(found("see https://example.com/a?b=1.", Entity::Url), vec!["https://example.com/a?b=1"]);
        assert_eq!(found("(see www.example.org/x)", Entity::Url), vec!["www.example.org/x"]);
        assert_eq!(
            found("wiki https://en.wikipedia.org/wiki/Rust_(language) ok", Entity::Url),
            vec!["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert!(found("http:// nothing", Entity::Url).is_empty());
    }

    #[test]
    fn keys_normalise_the_value() {
        let spans = recognize("+1 415 555 2671 or +14155552671", &[Entity::Phone]);
        assert_eq!(spans[0].key, spans[1].key);
        let spans = recognize("2001:DB8::1 and 2001:db8:0::1", &[Entity::Ip]);
        assert_eq!(spans[0].key, spans[1].key);
    }
}
