//! People, places, street addresses and organisations, without a model: gazetteers shipped as
//! data (`data/`, built into FSTs by `build.rs`), capitalisation, titles, context words and
//! address patterns.
//!
//! - **PERSON**: runs of words that are known first or last names. Two or more together (a
//!   first name then a last name) 0.85; one capitalised name 0.55, or 0.3 when it is one of the
//!   300 commonest English words ("Will", "May"), a month or a day, or opens a sentence and is
//!   among the 3,000 commonest ("Frank. …"); a title before (`Mr.`, `Dr.`) or a verb of speech
//!   after ("says") adds 0.35 and also admits an unknown capitalised word; a capitalised unknown
//!   word right after a known first name is taken as the surname. Lower-case names count only
//!   as a first-plus-last pair (0.6) or after a title.
//! - **LOCATION**: known places of one to four words (cities of 5,000+ people, countries, US
//!   states): capitalised 0.55, 0.35 when the place is also a common English word ("Nice",
//!   "Mobile"); a preposition before ("in", "from", "to") adds 0.2; lower-case 0.3.
//! - **ADDRESS**: street lines (`221B Baker Street`, `Nassaustraat 123`, `107 Rue Abdelaziz`,
//!   `Ziegelgasse 26`), units (`Apt. 018`, `Suite 446`), post codes after "ZIP", and the lines
//!   of the address block that follow a street line (city, region code, country, post code).
//! - **ORGANIZATION**: capitalised names ending in a company word (`Inc`, `Ltd`, `GmbH`,
//!   `Software`, `Bank`…), `University of …`, and firms named after partners (`Hubbard, Fox and
//!   Gillespie`).

use std::cmp::Ordering;
use std::sync::LazyLock;

use fst::{Map, Set};

use crate::dfa::{Guarded, Pattern, Shape, guarded, pattern};
use crate::{Detection, Entity};

static FIRST_NAMES: LazyLock<Set<&'static [u8]>> =
    LazyLock::new(|| set(include_bytes!(concat!(env!("OUT_DIR"), "/first_names.fst"))));
static LAST_NAMES: LazyLock<Set<&'static [u8]>> =
    LazyLock::new(|| set(include_bytes!(concat!(env!("OUT_DIR"), "/last_names.fst"))));
static PLACES: LazyLock<Set<&'static [u8]>> =
    LazyLock::new(|| set(include_bytes!(concat!(env!("OUT_DIR"), "/places.fst"))));
static COMMON_WORDS: LazyLock<Map<&'static [u8]>> = LazyLock::new(|| {
    Map::new(&include_bytes!(concat!(env!("OUT_DIR"), "/common_words.fst"))[..])
        .expect("invariant: build.rs wrote a valid FST")
});

fn set(bytes: &'static [u8]) -> Set<&'static [u8]> {
    Set::new(bytes).expect("invariant: build.rs wrote a valid FST")
}

/// Words this frequent in English are ordinary words first, names second.
const COMMON_RANK: u64 = 3000;

/// Months and days, which are also first names ("May", "June", "August").
const CALENDAR: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const TITLES: &[&str] =
    &["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "madam", "dame", "lord", "lady", "rev", "fr"];
const NAME_SUFFIXES: &[&str] = &["md", "phd", "jr", "sr", "ii", "iii", "iv", "dds", "esq"];
const SPEECH_VERBS: &[&str] = &["says", "said", "told", "asked", "wrote", "replied", "explained", "added", "noted"];
const PLACE_PREPOSITIONS: &[&str] =
    &["in", "at", "from", "to", "near", "of", "visit", "visited", "via", "around", "across", "outside", "inside"];
/// Lower-case words a place name may contain (`Ústí nad Labem`, `Bosnia and Herzegovina`).
const PLACE_CONNECTORS: &[&str] =
    &["and", "of", "the", "de", "del", "la", "le", "les", "nad", "am", "an", "der", "di", "da", "do", "dos", "y", "en"];
const ORG_SUFFIXES: &[&str] = &[
    "inc",
    "llc",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "company",
    "co",
    "group",
    "gmbh",
    "ag",
    "sa",
    "plc",
    "llp",
    "lp",
    "bank",
    "software",
    "consulting",
    "systems",
    "technologies",
    "technology",
    "solutions",
    "partners",
    "associates",
    "holdings",
    "foundation",
    "institute",
    "labs",
    "laboratories",
    "studios",
    "media",
    "networks",
    "capital",
    "ventures",
    "insurance",
    "airlines",
    "motors",
    "pharmaceuticals",
    "services",
    "industries",
    "enterprises",
    "international",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "srl",
    "spa",
];

/// Every candidate of the enabled gazetteer entity types. `shape` is the text's.
pub fn recognize(text: &str, shape: &Shape, enabled: &[Entity], out: &mut Vec<Detection>) {
    let wants = |e: Entity| enabled.contains(&e);
    if !(wants(Entity::Person) || wants(Entity::Location) || wants(Entity::Address) || wants(Entity::Organization)) {
        return;
    }
    let words = tokenize(text);
    if wants(Entity::Person) {
        people(text, &words, out);
    }
    if wants(Entity::Location) {
        places(text, &words, out);
    }
    if wants(Entity::Address) {
        addresses(text, shape, out);
    }
    if wants(Entity::Organization) {
        organizations(text, &words, out);
    }
}

/// A word of the text: letters (with marks, inner apostrophes and hyphens).
#[derive(Debug, Clone)]
struct Word<'t> {
    start: usize,
    end: usize,
    text: &'t str,
    lower: String,
}

impl Word<'_> {
    fn capitalized(&self) -> bool {
        let mut chars = self.text.chars();
        chars.next().is_some_and(char::is_uppercase) && !chars.clone().all(char::is_uppercase)
    }

    fn upper(&self) -> bool {
        self.text.chars().count() > 1 && self.text.chars().all(|c| !c.is_lowercase())
    }

    fn lowercase(&self) -> bool {
        self.text.chars().all(|c| !c.is_uppercase())
    }

    fn rank(&self) -> Option<u64> {
        COMMON_WORDS.get(&self.lower)
    }

    fn common(&self) -> bool {
        self.rank().is_some_and(|r| r <= COMMON_RANK)
    }

    /// The commonest words ("will", "may", "can"): never a name without a title.
    fn function_word(&self) -> bool {
        self.rank().is_some_and(|r| r <= 300)
    }

    fn first_name(&self) -> bool {
        FIRST_NAMES.contains(&self.lower)
    }

    fn last_name(&self) -> bool {
        LAST_NAMES.contains(&self.lower)
    }

    fn in_list(&self, list: &[&str]) -> bool {
        list.contains(&self.lower.as_str())
    }
}

/// `[\p{L}\p{M}]` as sorted inclusive ranges of code points (written by build.rs from
/// regex-syntax's Unicode tables).
static LETTER_OR_MARK: &[(u32, u32)] = include!(concat!(env!("OUT_DIR"), "/letter_or_mark.rs"));

fn letter_or_mark(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let c = u32::from(c);
    LETTER_OR_MARK
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                Ordering::Less
            } else if lo > c {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// Where each word of `text` starts and ends: the leftmost-first matches of
/// `[\p{L}\p{M}]+(?:['’\-][\p{L}\p{M}]+)*`, scanned by hand (a DFA for these Unicode classes
/// is the slowest of the recognizers' searches, and this runs on every text).
fn word_bounds(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !letter_or_mark(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        loop {
            // The rest of a run of letters and marks.
            while let Some(&(i, c)) = chars.peek()
                && letter_or_mark(c)
            {
                end = i + c.len_utf8();
                chars.next();
            }
            // A separator continues the word only if a letter or mark follows it.
            let mut after = chars.clone();
            match (after.next(), after.next()) {
                (Some((_, '\'' | '’' | '-')), Some((i, c))) if letter_or_mark(c) => {
                    end = i + c.len_utf8();
                    chars = after;
                }
                _ => break,
            }
        }
        out.push((start, end));
    }
    out
}

fn tokenize(text: &str) -> Vec<Word<'_>> {
    word_bounds(text)
        .into_iter()
        .map(|(start, end)| {
            let word = &text[start..end];
            Word { start, end, text: word, lower: word.to_lowercase() }
        })
        .collect()
}

/// What lies between two words: only spaces (the same line), or something else.
fn joined_by_space(text: &str, a: &Word, b: &Word) -> bool {
    let gap = &text[a.end..b.start];
    !gap.is_empty() && gap.len() <= 3 && gap.chars().all(|c| c == ' ' || c == '\t')
}

/// The word before `i` when only spaces and a `.` separate them.
fn title_before(text: &str, words: &[Word], i: usize) -> bool {
    i > 0 && {
        let gap = &text[words[i - 1].end..words[i].start];
        gap.trim_start_matches('.').chars().all(char::is_whitespace) && words[i - 1].in_list(TITLES)
    }
}

/// Whether the word at `i` starts a sentence (nothing before, or `.`, `!`, `?`, a line break).
fn sentence_start(text: &str, words: &[Word], i: usize) -> bool {
    let before = if i == 0 { &text[..words[0].start] } else { &text[words[i - 1].end..words[i].start] };
    i == 0 || before.contains(['.', '!', '?', '\n', ':', '"', '“'])
}

fn people(text: &str, words: &[Word], out: &mut Vec<Detection>) {
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let titled = title_before(text, words, i);
        let known = w.first_name() || w.last_name();
        let shaped = w.capitalized() || w.upper();
        // A name starts at a known name, or at a capitalised word after a title ("Dr Zorblat").
        if w.in_list(TITLES) || !(known || (titled && shaped)) {
            i += 1;
            continue;
        }
        // Extend over the following name words on the same line.
        if !shaped && w.function_word() {
            i += 1;
            continue;
        }
        let mut end = i;
        while end + 1 < words.len() && joined_by_space(text, &words[end], &words[end + 1]) {
            let next = &words[end + 1];
            let next_known = next.first_name() || next.last_name();
            let same_case = (shaped && (next.capitalized() || next.upper())) || (!shaped && next.lowercase());
            let surname_after_first = words[end].first_name() && shaped && next.capitalized() && !next.common();
            // Names are frequent words themselves ("john", "smith"); only the commonest words
            // ("will", "may", "can") are kept out of a run.
            if (next_known && same_case && !next.function_word()) || surname_after_first {
                end += 1;
            } else {
                break;
            }
        }
        let run = &words[i..=end];
        let n = run.len();
        let mut score: f32 = if n >= 2 {
            if shaped { 0.85 } else { 0.6 }
        } else if !shaped {
            0.2
        } else if w.function_word() || w.in_list(CALENDAR) || (sentence_start(text, words, i) && w.common()) {
            0.3
        } else {
            0.55
        };
        let next_word = words.get(end + 1);
        let speech_after = next_word.is_some_and(|n| n.in_list(SPEECH_VERBS));
        if titled || speech_after {
            score = (score + 0.35).max(0.65);
        }
        let mut stop = words[end].end;
        if let Some(suffix) = next_word.filter(|n| n.in_list(NAME_SUFFIXES) && joined_by_space(text, &words[end], n)) {
            stop = suffix.end;
            end += 1;
        }
        let key = text[w.start..stop].to_lowercase();
        out.push(Detection::new(w.start, stop, Entity::Person, score.min(1.0), key));
        i = end + 1;
    }
}

/// Whether words `i..=j` read as a place name: capitalised or upper-case words, with lower-case
/// connectors inside (`Ústí nad Labem`); or all lower-case.
fn place_shape(words: &[Word]) -> Option<bool> {
    let first_last_ok = |w: &Word| w.capitalized() || w.upper();
    if words.iter().all(Word::lowercase) {
        return Some(false);
    }
    let inner_ok = words.iter().all(|w| first_last_ok(w) || w.in_list(PLACE_CONNECTORS));
    (first_last_ok(&words[0]) && first_last_ok(&words[words.len() - 1]) && inner_ok).then_some(true)
}

fn places(text: &str, words: &[Word], out: &mut Vec<Detection>) {
    let mut i = 0;
    while i < words.len() {
        // The longest known place of up to four words on one line.
        let mut best = None;
        let mut phrase = words[i].lower.clone();
        for j in i..words.len().min(i + 4) {
            if j > i {
                if !joined_by_space(text, &words[j - 1], &words[j]) {
                    break;
                }
                phrase.push(' ');
                phrase.push_str(&words[j].lower);
            }
            if PLACES.contains(&phrase) {
                best = Some(j);
            }
        }
        let Some(j) = best else {
            i += 1;
            continue;
        };
        let run = &words[i..=j];
        let Some(shaped) = place_shape(run) else {
            i += 1;
            continue;
        };
        let common = run.len() == 1 && run[0].common();
        let mut score: f32 = match (shaped, common) {
            (true, false) => 0.55,
            (true, true) => 0.35,
            (false, false) => 0.3,
            (false, true) => 0.05,
        };
        if i > 0 && words[i - 1].in_list(PLACE_PREPOSITIONS) && joined_by_space(text, &words[i - 1], &words[i]) {
            score += 0.2;
        }
        out.push(Detection::new(run[0].start, run[run.len() - 1].end, Entity::Location, score, phrase_of(run)));
        i = j + 1;
    }
}

fn phrase_of(words: &[Word]) -> String {
    words.iter().map(|w| w.lower.as_str()).collect::<Vec<_>>().join(" ")
}

// The address patterns are in `regexes.rs`, compiled to DFAs by the build script.
// Each guard (`Shape`) says what a text needs for the pattern to find anything.
static STREET: [Guarded; 4] = [
    // a house number, before or after the street's name
    guarded!("street_0", |s| s.digits >= 1),
    guarded!("street_1", |s| s.digits >= 1),
    // the number is optional
    guarded!("street_2", |_| true),
    // two numbers
    guarded!("street_3", |s| s.digits >= 2),
];
/// Needs the unit's number.
static UNIT: Guarded = guarded!("unit", |s| s.digits >= 1);
/// Needs four digits in a row.
static POST_CODE_AFTER_LABEL: Guarded = guarded!("post_code_after_label", |s| s.digit_run >= 4);
/// Every guarded pattern of this module.
#[cfg(test)]
pub(crate) static GUARDED: &[&Guarded] =
    &[&STREET[0], &STREET[1], &STREET[2], &STREET[3], &UNIT, &POST_CODE_AFTER_LABEL];
/// A unit at the start of a part of an address block.
static UNIT_START: LazyLock<Pattern> = LazyLock::new(|| pattern!("unit_start"));

/// The length of the address part at the start of `line` (after a street line): a unit, the
/// `nan` of a missing field, a post code, up to five capitalised words (a city, region or
/// country, with connectors such as `and` or `nad` and a bracketed alternative name) with an
/// optional post code after them, or one lower-case word with an optional post code.
fn block_part(line: &str) -> Option<usize> {
    if let Some(m) = UNIT_START.find(line) {
        return Some(m.end());
    }
    if line.starts_with("nan") && !line[3..].starts_with(|c: char| c.is_alphanumeric()) {
        return Some(3);
    }
    let post_code = |s: &str| -> Option<usize> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if !(4..=6).contains(&digits) || s[digits..].starts_with(|c: char| c.is_alphanumeric()) {
            return None;
        }
        let rest = &s[digits..];
        let plus4 = rest.strip_prefix('-').filter(|r| r.len() >= 4 && r.as_bytes()[..4].iter().all(u8::is_ascii_digit));
        Some(digits + plus4.map_or(0, |_| 5))
    };
    if let Some(n) = post_code(line) {
        return Some(n);
    }
    // Words separated by single spaces or tabs.
    let mut end = 0;
    let mut words = 0;
    let first_lower = line.starts_with(|c: char| c.is_lowercase());
    while words < 5 {
        let at = &line[end..];
        let gap = if words == 0 { 0 } else { at.len() - at.trim_start_matches([' ', '\t']).len() };
        if words > 0 && gap == 0 {
            break;
        }
        let word_start = end + gap;
        let rest = &line[word_start..];
        if words > 0
            && let Some(n) = post_code(rest)
        {
            return Some(word_start + n);
        }
        let len = if rest.starts_with('(') {
            match rest.find(')') {
                Some(close) if words > 0 && close <= 40 => close + 1,
                _ => break,
            }
        } else {
            rest.find(|c: char| !(c.is_alphabetic() || is_mark(c) || ".'’-".contains(c))).unwrap_or(rest.len())
        };
        if len == 0 {
            break;
        }
        let word = &rest[..len];
        let capital = word.starts_with(|c: char| c.is_uppercase());
        let connector = words > 0 && ["and", "de", "nad", "of", "la"].contains(&word);
        let ok = capital || connector || word.starts_with('(') || (first_lower && words == 0);
        if !ok {
            break;
        }
        end = word_start + len;
        words += 1;
        if first_lower {
            // One lower-case word (a city written in lower case), then maybe a post code.
            let at = &line[end..];
            let gap = at.len() - at.trim_start_matches([' ', '\t']).len();
            return Some(post_code(&at[gap..]).map_or(end, |n| end + gap + n));
        }
    }
    (end > 0).then_some(end)
}

/// Combining marks (written after a letter in decomposed text) count as part of a word.
fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn addresses(text: &str, shape: &Shape, out: &mut Vec<Detection>) {
    let mut found: Vec<(usize, usize, f32)> = Vec::new();
    for (k, street) in STREET.iter().enumerate() {
        for m in street.find_iter(text, shape) {
            let mut start = m.start();
            if k == 1 && !m.as_str().starts_with(|c: char| c.is_ascii_digit()) {
                // `Filip lives on Nassaustraat 123`: the street's name starts after the last
                // ordinary word.
                let words = tokenize(m.as_str());
                let street_word = words.iter().rposition(|w| !w.text.chars().all(|c| c.is_ascii_digit())).unwrap_or(0);
                if let Some(last_common) = words[..street_word].iter().rposition(Word::common) {
                    start = m.start() + words[last_common + 1].start;
                }
            }
            let s = &text[start..m.end()];
            let s = s.trim_end();
            // The generic number-words-number shape needs context or a block after it.
            let score = if k == 3 { 0.4 } else { 0.7 };
            found.push((start, start + s.len(), score));
        }
    }
    for m in UNIT.find_iter(text, shape) {
        found.push((m.start(), m.end(), 0.6));
    }
    for m in POST_CODE_AFTER_LABEL.find_iter(text, shape) {
        // The code is the digits (and `-`) that end the match.
        let label = m.as_str().trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').len();
        found.push((m.start() + label, m.end(), 0.7));
    }
    for (start, end, score) in found {
        let (end, parts) = extend_block(text, end);
        let score = if parts > 0 { score.max(0.7) } else { score };
        out.push(Detection::new(start, end, Entity::Address, score, text[start..end].to_lowercase()));
    }
}

/// Extends an address over the parts that follow it, separated by commas or line breaks (at most
/// four lines): returns the new end and how many parts were added.
fn extend_block(text: &str, mut end: usize) -> (usize, usize) {
    let mut parts = 0;
    let mut lines = 0;
    loop {
        let rest = &text[end..];
        let sep_len = rest.len() - rest.trim_start_matches([' ', '\t', ',', '\n']).len();
        let sep = &rest[..sep_len];
        lines += sep.matches('\n').count();
        if lines > 4 || (sep_len == 0 && parts > 0) {
            break;
        }
        let after = &rest[sep_len..];
        // A part lies on one line: looking only at that line keeps this linear in the text.
        let line = &after[..after.find('\n').unwrap_or(after.len())];
        let Some(len) = block_part(line) else { break };
        let part = line[..len].trim_end_matches([' ', '\t', '.']);
        if part.trim().is_empty() {
            break;
        }
        // A part ends at a line break or a comma; a sentence going on after it is not an address.
        let next = after[part.len()..].chars().next();
        if !matches!(next, None | Some('\n' | ',' | '.' | ' ' | '\t')) {
            break;
        }
        // On the same line after only spaces, only a unit, a post code or capitalised words
        // (`… 92 Apt. 584 HEILIGENBRUNN France`) go on the address; prose does not.
        let same_line = !sep.contains(['\n', ',']);
        if same_line && part.starts_with(|c: char| c.is_lowercase()) {
            break;
        }
        end += sep_len + part.len();
        parts += 1;
    }
    (end, parts)
}

static ORG_PARTNERS: LazyLock<Pattern> = LazyLock::new(|| pattern!("org_partners"));

fn organizations(text: &str, words: &[Word], out: &mut Vec<Detection>) {
    for (i, w) in words.iter().enumerate() {
        if !w.in_list(ORG_SUFFIXES) || !(w.capitalized() || w.upper()) || i == 0 {
            continue;
        }
        // Up to three capitalised words before the company word, on the same line.
        let mut start = i;
        while start > 0
            && i - start < 3
            && joined_by_space(text, &words[start - 1], &words[start])
            && (words[start - 1].capitalized() || words[start - 1].upper())
            && !words[start - 1].in_list(TITLES)
        {
            start -= 1;
        }
        if start == i {
            continue;
        }
        let end = if text[w.end..].starts_with('.') { w.end + 1 } else { w.end };
        let first = &words[start];
        let score = if sentence_start(text, words, start) && first.common() { 0.4 } else { 0.6 };
        out.push(Detection::new(first.start, end, Entity::Organization, score, text[first.start..end].to_lowercase()));
    }
    for m in ORG_PARTNERS.find_iter(text) {
        let names: Vec<&str> = m.as_str().split([',', ' ']).filter(|p| !p.is_empty() && *p != "and").collect();
        if names.len() >= 2 && names.iter().all(|n| LAST_NAMES.contains(n.to_lowercase())) {
            out.push(Detection::new(m.start(), m.end(), Entity::Organization, 0.6, m.as_str().to_lowercase()));
        }
    }
    let lower = text.to_lowercase();
    for (at, _) in lower.match_indices("university of ") {
        let tail = &words.iter().filter(|w| w.start >= at + "university of ".len()).take(3).collect::<Vec<_>>();
        let mut end = None;
        for (k, w) in tail.iter().enumerate() {
            let gap_ok = k == 0 || joined_by_space(text, tail[k - 1], w);
            if gap_ok && (w.capitalized() || w.upper()) {
                end = Some(w.end);
            } else {
                break;
            }
        }
        if let Some(end) = end
            && text.is_char_boundary(at)
        {
            out.push(Detection::new(at, end, Entity::Organization, 0.6, lower[at..end].to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_scanner_finds_what_the_pattern_finds() {
        let pattern = regex::Regex::new(r"[\p{L}\p{M}]+(?:['’\-][\p{L}\p{M}]+)*").unwrap();
        let mut texts = crate::tests::sample_texts();
        texts.extend(
            [
                "don't O'Brien-Smith rock’n’roll -x x- 'a' a--b a-'b e\u{301}te ﬁne Straße",
                "Ústí nad Labem, Πλατεία Μαβίλη, 東京都, عربي, नमस्ते, ⅷ ½ 𝔘𝔫𝔦 🙂x",
                "",
                "'-’",
            ]
            .map(String::from),
        );
        // Random strings over letters, marks, separators, digits, spaces and symbols.
        let alphabet: Vec<char> = "aZé\u{301}\u{0903}ß'’- 1_.東🙂ǅ\u{2160}".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (state % 12) as usize;
            let mut text = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            texts.push(text);
        }
        for text in &texts {
            let want: Vec<(usize, usize)> = pattern.find_iter(text).map(|m| (m.start(), m.end())).collect();
            assert_eq!(word_bounds(text), want, "{text:?}");
        }
    }
    use crate::Analyzer;

    fn found(text: &str, entity: Entity) -> Vec<String> {
        Analyzer::new(&[entity]).analyze(text).into_iter().map(|d| text[d.start..d.end].to_owned()).collect()
    }

    #[test]
    fn gazetteers_load_and_answer() {
        assert!(FIRST_NAMES.contains("john") && LAST_NAMES.contains("smith"));
        assert!(PLACES.contains("denmark") && PLACES.contains("paris"));
        assert!(COMMON_WORDS.get("the") == Some(1));
    }

    #[test]
    fn people_by_names_titles_and_context() {
        assert_eq!(found("I met Megan Payne yesterday.", Entity::Person), vec!["Megan Payne"]);
        assert_eq!(found("Please call Dr. Nielsen today", Entity::Person), vec!["Nielsen"]);
        assert_eq!(found("\"Yes,\" says Eklund.", Entity::Person), vec!["Eklund"]);
        assert_eq!(found("billing address: john smith", Entity::Person), vec!["john smith"]);
        assert_eq!(found("Janice Brkić MD called", Entity::Person), vec!["Janice Brkić MD"]);
        assert!(found("We will mark the date and hope for the best.", Entity::Person).is_empty());
    }

    #[test]
    fn places_with_case_and_prepositions() {
        assert_eq!(found("She grew up in Denmark.", Entity::Location), vec!["Denmark"]);
        assert_eq!(found("flights to Paris and Ústí nad Labem", Entity::Location), vec!["Paris", "Ústí nad Labem"]);
        assert!(found("a nice and mobile phone", Entity::Location).is_empty());
    }

    #[test]
    fn street_addresses_and_their_blocks() {
        assert_eq!(found("Filip lives on Nassaustraat 123 street.", Entity::Address), vec!["Nassaustraat 123"]);
        assert_eq!(found("The restaurant is at 221B Baker Street", Entity::Address), vec!["221B Baker Street"]);
        assert_eq!(
            found(
                "Please return to 39 79 Argyll Road\nNoorderwijk\n, VAN\n Portugal 76970 in case of an issue.",
                Entity::Address
            ),
            vec!["39 79 Argyll Road\nNoorderwijk\n, VAN\n Portugal 76970"]
        );
        assert_eq!(found("ZIP: 11164", Entity::Address), vec!["11164"]);
        assert_eq!(found("see Apt. 018 upstairs", Entity::Address), vec!["Apt. 018"]);
        assert!(found("I bought 3 apples and 2 pears.", Entity::Address).is_empty());
    }

    #[test]
    fn organizations_by_company_words_and_partners() {
        assert_eq!(found("He works at Tableau Software now", Entity::Organization), vec!["Tableau Software"]);
        assert_eq!(found("Areavibes Inc\n27", Entity::Organization), vec!["Areavibes Inc"]);
        assert_eq!(found("at Hubbard, Fox and Gillespie.", Entity::Organization), vec!["Hubbard, Fox and Gillespie"]);
        assert_eq!(
            found("studying at the University of Zafferana Etnea.", Entity::Organization),
            vec!["University of Zafferana Etnea"]
        );
    }
}
