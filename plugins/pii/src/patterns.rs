//! Structured identifiers: one recognizer per entity type, each a pattern for candidates plus a
//! validator (checksum, range or parse) that decides whether a candidate is that entity and how
//! sure it is. Scores: a checksum 1.0, a validated structure 0.6–0.95, a bare shape that needs
//! context words to pass 0.2–0.4.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use crate::dfa::{Guarded, Pattern, Shape, guarded, pattern};
use crate::{Detection, Entity};

// The patterns are in `regexes.rs`, compiled to DFAs by the build script; each guard (`Shape`)
// says what a text needs for the pattern to find anything its recognizer keeps.
/// Needs an `@`.
static EMAIL: Guarded = guarded!("email", |s| s.has(b'@'));
/// Needs `://` or `www.`.
static URL: Guarded = guarded!("url", |s| s.has(b'/') || s.has(b'.'));
/// Needs four dotted groups of digits.
static IPV4: Guarded = guarded!("ipv4", |s| s.digits >= 4 && s.has(b'.'));
/// Needs two colons or more.
static IPV6: Guarded = guarded!("ipv6", |s| s.has(b':'));
/// Kept phone numbers have 7 to 15 digits.
static PHONE: Guarded = guarded!("phone", |s| s.digits >= 7);
/// Card numbers have 13 to 19 digits.
static DIGIT_RUN: Guarded = guarded!("digit_run", |s| s.digits >= 13);
/// Needs the two check digits after the country code.
static IBAN: Guarded = guarded!("iban", |s| s.digit_run >= 2);
/// Needs nine digits.
static US_SSN: Guarded = guarded!("us_ssn", |s| s.digits >= 9);
static PHONE_EXTENSION: LazyLock<Pattern> = LazyLock::new(|| pattern!("phone_extension"));
/// Needs a four-digit year, then a dash.
static DATE_ISO: Guarded = guarded!("date_iso", |s| s.digit_run >= 4 && s.has(b'-'));
/// Needs day, month and year (2 or 4 digits) between slashes or dots.
static DATE_NUMERIC: Guarded = guarded!("date_numeric", |s| s.digits >= 4 && (s.has(b'/') || s.has(b'.')));
/// Needs a four-digit year.
static DATE_WORDS: Guarded = guarded!("date_words", |s| s.digit_run >= 4);
/// Needs four digits in a row at least.
static DRIVER_LICENSE: Guarded = guarded!("driver_license", |s| s.digit_run >= 4);
/// Needs eight digits in a row at least.
static PASSPORT: Guarded = guarded!("passport", |s| s.digit_run >= 8);
/// Needs a 1 or a 3 (the address's first character).
static BTC_BASE58: Guarded = guarded!("btc_base58", |s| s.has(b'1') || s.has(b'3'));
/// Needs `bc1`.
static BTC_BECH32: Guarded = guarded!("btc_bech32", |s| s.has(b'1'));
/// Needs `0x`.
static ETH: Guarded = guarded!("eth", |s| s.has(b'0') && s.has(b'x'));
static DATE: LazyLock<Pattern> = LazyLock::new(|| pattern!("date"));

/// Every guarded pattern of this module.
#[cfg(test)]
pub(crate) static GUARDED: &[&Guarded] = &[
    &EMAIL,
    &URL,
    &IPV4,
    &IPV6,
    &PHONE,
    &DIGIT_RUN,
    &IBAN,
    &US_SSN,
    &DATE_ISO,
    &DATE_NUMERIC,
    &DATE_WORDS,
    &DRIVER_LICENSE,
    &PASSPORT,
    &BTC_BASE58,
    &BTC_BECH32,
    &ETH,
];

fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Every candidate of the enabled pattern entity types, overlapping or not. `shape` is the
/// text's.
pub fn recognize(text: &str, shape: &Shape, enabled: &[Entity], spans: &mut Vec<Detection>) {
    for entity in enabled {
        match entity {
            Entity::Email => emails(text, shape, spans),
            Entity::Phone => phones(text, shape, spans),
            Entity::CreditCard => credit_cards(text, shape, spans),
            Entity::Iban => ibans(text, shape, spans),
            Entity::UsSsn => ssns(text, shape, spans),
            Entity::Ip => ips(text, shape, spans),
            Entity::Url => urls(text, shape, spans),
            Entity::DateTime => dates(text, shape, spans),
            Entity::UsDriverLicense => driver_licenses(text, shape, spans),
            Entity::UsPassport => passports(text, shape, spans),
            Entity::Crypto => wallets(text, shape, spans),
            Entity::Person | Entity::Location | Entity::Address | Entity::Organization => {}
        }
    }
}

fn emails(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in EMAIL.find_iter(text, shape) {
        let tld = m.as_str().rsplit('.').next().unwrap_or_default();
        if tld.chars().count() > 63 {
            continue;
        }
        let local_start = m.as_str().trim_start_matches('.');
        let start = m.end() - local_start.len();
        spans.push(Detection::new(start, m.end(), Entity::Email, 1.0, text[start..m.end()].to_lowercase()));
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

fn urls(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in URL.find_iter(text, shape) {
        let url = trim_url(m.as_str());
        let has_host = url.split_once("//").map_or(url.len() > 4, |(_, rest)| !rest.is_empty());
        if has_host {
            spans.push(Detection::new(m.start(), m.start() + url.len(), Entity::Url, 0.6, url));
        }
    }
}

fn ips(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in IPV4.find_iter(text, shape) {
        let dotted_before =
            text[..m.start()].ends_with('.') && text[..m.start() - 1].ends_with(|c: char| c.is_ascii_digit());
        let dotted_after =
            text[m.end()..].starts_with('.') && text[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit());
        // After a colon it is the tail of an IPv6 address (`::ffff:10.0.0.1`).
        let in_ipv6 = text[..m.start()].ends_with(':');
        let octets_ok = m.as_str().split('.').all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
        if octets_ok && !dotted_before && !dotted_after && !in_ipv6 {
            spans.push(Detection::new(m.start(), m.end(), Entity::Ip, 0.9, m.as_str()));
        }
    }
    for m in IPV6.find_iter(text, shape) {
        let s = m.as_str();
        let inside_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == ':' || c == '_');
        if inside_word(char_before(text, m.start())) || inside_word(char_after(text, m.end())) {
            continue;
        }
        let groups = s.split(':').filter(|g| !g.is_empty()).count();
        let has_digit = s.chars().any(|c| c.is_ascii_digit());
        let Ok(addr) = s.parse::<Ipv6Addr>() else { continue };
        if groups >= 2 || has_digit {
            spans.push(Detection::new(m.start(), m.end(), Entity::Ip, 0.9, addr.to_string()));
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

fn credit_cards(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for run in DIGIT_RUN.find_iter(text, shape) {
        for (start, end) in card_candidates(run.as_str()) {
            let s = &run.as_str()[start..end];
            let separators: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
            let one_kind = separators.windows(2).all(|w| w[0] == w[1]);
            let number = digits(s);
            let all_same = number.bytes().all(|b| b == number.as_bytes()[0]);
            if one_kind && !all_same && luhn_valid(&number) {
                spans.push(Detection::new(run.start() + start, run.start() + end, Entity::CreditCard, 1.0, number));
            }
        }
    }
}

/// The card-number candidates in a run of digits (ASCII digits with single spaces or dashes
/// between them), as a leftmost-first search for 13 to 19 digits ending at a word boundary
/// finds them: from each start, the longest such prefix; the next search starts after it. A
/// start is the run's first digit or a digit after a separator.
fn card_candidates(run: &str) -> Vec<(usize, usize)> {
    let b = run.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < b.len() {
        // Ends that may close a match: after a digit followed by a separator or the run's end.
        let mut digits = 0;
        let mut best = None;
        for (i, &c) in b.iter().enumerate().skip(start) {
            if !c.is_ascii_digit() {
                continue;
            }
            digits += 1;
            if digits > 19 {
                break;
            }
            let boundary = i + 1 == b.len() || !b[i + 1].is_ascii_digit();
            if digits >= 13 && boundary {
                best = Some(i + 1);
            }
        }
        match best {
            Some(end) => {
                out.push((start, end));
                start = end;
            }
            None => start += 1,
        }
        // The next start: a digit after a separator.
        while start < b.len() && !(b[start].is_ascii_digit() && (start == 0 || !b[start - 1].is_ascii_digit())) {
            start += 1;
        }
    }
    out
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

fn ibans(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in IBAN.find_iter(text, shape) {
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
                spans.push(Detection::new(m.start(), m.start() + end, Entity::Iban, 1.0, compact));
                break;
            }
        }
    }
}

fn ssns(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in US_SSN.find_iter(text, shape) {
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
            spans.push(Detection::new(m.start(), m.end(), Entity::UsSsn, 0.5, number));
        }
    }
}

/// Phone numbers in international (`+44 20 7946 0958`, `0044…`) and national formats
/// (`(415) 555-2671`, `415-555-2671`, `415.555.2671x751`, `555-2671`). Scores: international
/// 0.75; national with an area code in brackets or 10+ digits 0.65; the 3-4 local form 0.45;
/// other separated groups of 8–9 digits 0.35 (these need context: "call", "mobile", "fax"…).
/// Bare digit runs are not phones: too many ids and amounts look like them.
fn phones(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in PHONE.find_iter(text, shape) {
        let s = m.as_str();
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '+');
        if glued(char_before(text, m.start())) || glued(char_after(text, m.end())) {
            continue;
        }
        let main = PHONE_EXTENSION.find(s).map_or(s, |x| &s[..x.start()]);
        let mut number = digits(main);
        let international = main.starts_with('+') || main.starts_with("00");
        if main.starts_with("00") {
            number.drain(..2);
        }
        if !(7..=15).contains(&number.len()) || DATE.is_match(main) {
            continue;
        }
        let separated = main.contains([' ', '-', '.', '(']);
        let groups: Vec<&str> = main.split([' ', '-', '.', '(', ')']).filter(|g| !g.is_empty()).collect();
        if groups.last().is_none_or(|g| g.len() < 2) {
            continue;
        }
        let local_form = groups.len() == 2 && groups[0].len() == 3 && groups[1].len() == 4;
        let score = if international {
            0.75
        } else if separated && (main.contains('(') || number.len() >= 10) {
            0.65
        } else if separated && local_form {
            0.45
        } else if separated && groups.len() >= 3 && number.len() >= 8 {
            0.35
        } else {
            continue;
        };
        let key = if international { format!("+{number}") } else { number };
        spans.push(Detection::new(m.start(), m.end(), Entity::Phone, score, key));
    }
}

/// Dates and date-times: ISO 8601 (`1998-06-28`, `1998-06-28 14:48:14`, `…T14:48:14Z`),
/// numeric (`12/27/1986`, `27.12.1986`), and with month names (`29 March 2017`, `March 29,
/// 2017`, `Mar 2017`). Every part is range-checked. Scores: ISO and month names 0.6, numeric 0.5.
fn dates(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in DATE_ISO.find_iter(text, shape) {
        // `YYYY-MM-DD` starts every match.
        let part = |range: std::ops::Range<usize>| m.as_str().get(range).map_or(99, |p| p.parse::<u32>().unwrap_or(99));
        if (1..=12).contains(&part(5..7)) && (1..=31).contains(&part(8..10)) {
            spans.push(Detection::new(m.start(), m.end(), Entity::DateTime, 0.6, m.as_str()));
        }
    }
    for m in DATE_NUMERIC.find_iter(text, shape) {
        let parts: Vec<u32> = m.as_str().split(['/', '.', '-']).filter_map(|p| p.parse().ok()).collect();
        let [a, b, _] = parts[..] else { continue };
        let month_day = (1..=12).contains(&a) && (1..=31).contains(&b);
        let day_month = (1..=31).contains(&a) && (1..=12).contains(&b);
        if month_day || day_month {
            spans.push(Detection::new(m.start(), m.end(), Entity::DateTime, 0.5, m.as_str()));
        }
    }
    for m in DATE_WORDS.find_iter(text, shape) {
        spans.push(Detection::new(m.start(), m.end(), Entity::DateTime, 0.6, m.as_str().to_lowercase()));
    }
}

/// US driver's licence numbers: the shapes states use (a letter and 4–14 digits, 7–9 digits,
/// two letters and digits). A shape only (0.3): context words ("driver's license", "DL") are
/// needed to pass.
fn driver_licenses(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in DRIVER_LICENSE.find_iter(text, shape) {
        let s = m.as_str();
        if s.bytes().any(|b| b.is_ascii_digit()) && s.len() >= 7 {
            spans.push(Detection::new(m.start(), m.end(), Entity::UsDriverLicense, 0.3, s.to_ascii_uppercase()));
        }
    }
}

/// US passport numbers: 9 digits, or a letter and 8 digits (next-generation books). A shape only
/// (0.2): context words ("passport") are needed to pass.
fn passports(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in PASSPORT.find_iter(text, shape) {
        spans.push(Detection::new(m.start(), m.end(), Entity::UsPassport, 0.2, m.as_str().to_ascii_uppercase()));
    }
}

/// Crypto wallet addresses: Bitcoin legacy and P2SH (Base58Check: the checksum is verified),
/// Bitcoin SegWit (Bech32/Bech32m: the checksum is verified), and Ethereum (`0x` and 40 hex
/// digits; a shape, 0.6).
fn wallets(text: &str, shape: &Shape, spans: &mut Vec<Detection>) {
    for m in BTC_BASE58.find_iter(text, shape) {
        if base58check_valid(m.as_str()) {
            spans.push(Detection::new(m.start(), m.end(), Entity::Crypto, 1.0, m.as_str()));
        }
    }
    for m in BTC_BECH32.find_iter(text, shape) {
        if bech32_valid(m.as_str()) {
            spans.push(Detection::new(m.start(), m.end(), Entity::Crypto, 1.0, m.as_str().to_lowercase()));
        }
    }
    for m in ETH.find_iter(text, shape) {
        spans.push(Detection::new(m.start(), m.end(), Entity::Crypto, 0.6, m.as_str().to_lowercase()));
    }
}

/// Base58Check: the last 4 bytes of the decoded value are the first 4 of its double SHA-256.
fn base58check_valid(s: &str) -> bool {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut bytes: Vec<u8> = Vec::with_capacity(25);
    for c in s.bytes() {
        let Some(mut carry) = ALPHABET.iter().position(|&a| a == c).map(|v| v as u32) else { return false };
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(bytes);
    if full.len() != 25 {
        return false;
    }
    let (payload, check) = full.split_at(21);
    Sha256::digest(Sha256::digest(payload))[..4] == *check
}

/// Bech32 (BIP 173) or Bech32m (BIP 350) with the `bc` prefix.
fn bech32_valid(s: &str) -> bool {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = s.to_ascii_lowercase();
    if lower != s && s.to_ascii_uppercase() != s {
        return false;
    }
    let Some((hrp, data)) = lower.rsplit_once('1') else { return false };
    let Some(values) =
        data.bytes().map(|c| CHARSET.iter().position(|&x| x == c).map(|v| v as u32)).collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let mut chk: u32 = 1;
    let generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let expanded = hrp.bytes().map(|c| u32::from(c) >> 5).chain([0]).chain(hrp.bytes().map(|c| u32::from(c) & 31));
    for v in expanded.chain(values) {
        let top = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ v;
        for (i, g) in generator.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk == 1 || chk == 0x2bc8_30a3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(text: &str, entity: Entity) -> Vec<Detection> {
        let mut spans = Vec::new();
        recognize(text, &Shape::of(text), &[entity], &mut spans);
        spans
    }

    fn found(text: &str, entity: Entity) -> Vec<String> {
        candidates(text, entity).into_iter().map(|s| text[s.start..s.end].to_owned()).collect()
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
    fn card_candidates_are_what_a_bounded_leftmost_first_search_finds() {
        fn spans(run: &str) -> Vec<&str> {
            card_candidates(run).into_iter().map(|(a, b)| &run[a..b]).collect()
        }
        assert_eq!(spans("4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
        assert_eq!(spans("4111 1111 1111 1111 2024"), ["4111 1111 1111 1111"], "at most 19 digits, at a boundary");
        assert_eq!(spans("12 34"), Vec::<&str>::new());
        assert_eq!(spans("1234567890123456789012"), Vec::<&str>::new(), "no boundary within 19 digits");
        assert_eq!(spans("12 4111111111111111"), ["12 4111111111111111"], "the leftmost start wins");
        assert_eq!(spans("4111111111111111 5500000000000004"), ["4111111111111111", "5500000000000004"]);
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
        let spans = candidates("+1 415 555 2671 or +14155552671", Entity::Phone);
        assert_eq!(spans[0].key, spans[1].key);
        let spans = candidates("2001:DB8::1 and 2001:db8:0::1", Entity::Ip);
        assert_eq!(spans[0].key, spans[1].key);
    }

    #[test]
    fn phone_extensions_and_weak_shapes() {
        assert_eq!(found("Desk: 986.291.2294x751 ok", Entity::Phone), vec!["986.291.2294x751"]);
        assert_eq!(found("Fax: 001-420-335-7509x38548", Entity::Phone), vec!["001-420-335-7509x38548"]);
        let weak = candidates("Mobile: 041-412-293", Entity::Phone);
        assert_eq!(weak.len(), 1);
        assert!(weak[0].score < crate::DEFAULT_THRESHOLD, "needs its context word");
    }

    #[test]
    fn dates_in_three_forms() {
        assert_eq!(found("When: 1998-06-28 14:48:14\nWhere", Entity::DateTime), vec!["1998-06-28 14:48:14"]);
        assert_eq!(found("born 12/27/1986.", Entity::DateTime), vec!["12/27/1986"]);
        assert_eq!(
            found("On 29 March 2017, and March 3, 2020", Entity::DateTime),
            vec!["29 March 2017", "March 3, 2020"]
        );
        assert!(found("version 13/45/2000 and 2024-13-40", Entity::DateTime).is_empty());
    }

    #[test]
    fn wallets_need_their_checksums() {
        assert_eq!(
            found("send to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 now", Entity::Crypto),
            vec!["1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"]
        );
        assert_eq!(
            found("p2sh 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", Entity::Crypto),
            vec!["3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]
        );
        assert!(found("bad 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", Entity::Crypto).is_empty());
        assert_eq!(
            found("segwit bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4.", Entity::Crypto),
            vec!["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"]
        );
        assert!(found("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", Entity::Crypto).is_empty());
        assert_eq!(found("eth 0x52908400098527886E0F7030069857D2E4169EE7", Entity::Crypto).len(), 1);
    }

    #[test]
    fn licence_and_passport_shapes_are_weak_alone() {
        for (text, entity) in [("D1234567", Entity::UsDriverLicense), ("123456789", Entity::UsPassport)] {
            let c = candidates(text, entity);
            assert_eq!(c.len(), 1, "{text}");
            assert!(c[0].score < crate::DEFAULT_THRESHOLD);
        }
    }
}
