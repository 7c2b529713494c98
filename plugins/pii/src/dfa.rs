//! The recognizers' patterns (`regexes.rs`), one way or the other:
//!
//! - by default, as DFAs compiled by the build script: loading one takes microseconds, over bytes
//!   already in the binary — what a plugin instance, which lives for one call, needs. A pattern's
//!   reverse DFA (where a match starts) is loaded only once its forward DFA has found a match;
//! - with the `runtime-regex` feature, compiled at first use with the `regex` crate (~20 ms for
//!   all of them), whose literal prefilters search long texts ~3× faster — what a long-lived
//!   process (the host's egress guard) wants.
//!
//! Both find the same leftmost-first matches.

use std::sync::LazyLock;

#[cfg(not(feature = "runtime-regex"))]
use std::sync::OnceLock;

#[cfg(not(feature = "runtime-regex"))]
use regex_automata::dfa::{Automaton, sparse::DFA};
#[cfg(not(feature = "runtime-regex"))]
use regex_automata::util::iter::Searcher;
#[cfg(not(feature = "runtime-regex"))]
use regex_automata::{Anchored, Input, MatchError};

#[cfg(all(target_endian = "big", not(feature = "runtime-regex")))]
compile_error!("the recognizers' DFAs are serialized little-endian");

/// A compiled pattern: its forward DFA, and its reverse DFA (which finds where a match starts),
/// loaded at its first match; most patterns find nothing in most texts, and the forward search
/// alone says so.
#[cfg(not(feature = "runtime-regex"))]
pub struct Pattern {
    forward: DFA<&'static [u8]>,
    reverse_bytes: &'static [u8],
    reverse: OnceLock<DFA<&'static [u8]>>,
}
#[cfg(feature = "runtime-regex")]
pub struct Pattern(regex::Regex);

/// The DFAs of the pattern `$name` in `regexes.rs`, as the build script wrote them.
#[cfg(not(feature = "runtime-regex"))]
macro_rules! pattern {
    ($name:literal) => {
        $crate::dfa::Pattern::load(
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".fwd")),
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".rev")),
        )
    };
}
/// The pattern `$name` in `regexes.rs`, compiled.
#[cfg(feature = "runtime-regex")]
macro_rules! pattern {
    ($name:literal) => {
        $crate::dfa::Pattern::compile($name)
    };
}
pub(crate) use pattern;

/// What a text holds, counted in one pass: the recognizers skip a pattern the text cannot
/// match (or whose every match their checks would reject) before loading or running its DFAs,
/// as the `regex` crate's literal prefilters would for it. Each guard is a necessary condition
/// of the pattern it guards; `tests::guards_never_skip_a_match` holds them to it.
#[derive(Debug, Clone)]
pub struct Shape {
    /// ASCII digits in the text.
    pub digits: usize,
    /// The longest run of consecutive ASCII digits.
    pub digit_run: usize,
    ascii: [bool; 128],
}

impl Shape {
    pub fn of(text: &str) -> Shape {
        let mut shape = Shape { digits: 0, digit_run: 0, ascii: [false; 128] };
        let mut run = 0;
        for &b in text.as_bytes() {
            if b.is_ascii_digit() {
                shape.digits += 1;
                run += 1;
                shape.digit_run = shape.digit_run.max(run);
            } else {
                run = 0;
            }
            if b.is_ascii() {
                shape.ascii[usize::from(b)] = true;
            }
        }
        shape
    }

    /// Whether the ASCII character `c` occurs in the text.
    pub fn has(&self, c: u8) -> bool {
        self.ascii.get(usize::from(c)).copied().unwrap_or(false)
    }
}

/// A pattern that runs only on texts that meet a condition ([`Shape`]), loaded at first use.
pub struct Guarded {
    pattern: LazyLock<Pattern>,
    /// What every text the recognizer keeps a match of this pattern in meets.
    pub needs: fn(&Shape) -> bool,
}

/// `guarded!("name", |shape| condition)`: the pattern `name` of `regexes.rs`, guarded.
macro_rules! guarded {
    ($name:literal, $needs:expr) => {
        $crate::dfa::Guarded::new(std::sync::LazyLock::new(|| $crate::dfa::pattern!($name)), $needs)
    };
}
pub(crate) use guarded;

#[cfg(test)]
thread_local! {
    /// Tests turn the guards off to check that they never change what is found.
    pub(crate) static UNGUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Guarded {
    pub const fn new(pattern: LazyLock<Pattern>, needs: fn(&Shape) -> bool) -> Guarded {
        Guarded { pattern, needs }
    }

    /// [`Pattern::find_iter`], or nothing (without loading the pattern) when `shape` does not
    /// meet the guard.
    pub fn find_iter<'p, 'h>(&'p self, text: &'h str, shape: &Shape) -> impl Iterator<Item = Match<'h>> + 'p
    where
        'h: 'p,
    {
        let run = (self.needs)(shape);
        #[cfg(test)]
        let run = run || UNGUARDED.get();
        run.then(|| self.pattern.find_iter(text)).into_iter().flatten()
    }
}

/// A match: where it is in the text, and the text.
#[derive(Debug, Clone, Copy)]
pub struct Match<'h> {
    text: &'h str,
    start: usize,
    end: usize,
}

impl<'h> Match<'h> {
    pub fn start(&self) -> usize {
        self.start
    }
    pub fn end(&self) -> usize {
        self.end
    }
    pub fn as_str(&self) -> &'h str {
        &self.text[self.start..self.end]
    }
}

#[cfg(feature = "runtime-regex")]
impl Pattern {
    pub fn compile(name: &str) -> Pattern {
        let (_, text) = crate::regexes::all()
            .into_iter()
            .find(|(n, _)| *n == name)
            .expect("invariant: every pattern the recognizers name is in regexes.rs");
        Pattern(regex::Regex::new(&text).expect("invariant: the build compiled this pattern"))
    }
}

#[cfg(not(feature = "runtime-regex"))]
impl Pattern {
    pub fn load(forward: &'static [u8], reverse: &'static [u8]) -> Pattern {
        // SAFETY: as in `Pattern::reverse`, for the forward DFA.
        let (forward, _) =
            unsafe { DFA::from_bytes_unchecked(forward) }.expect("invariant: build.rs wrote a forward DFA");
        Pattern { forward, reverse_bytes: reverse, reverse: OnceLock::new() }
    }

    fn reverse(&self) -> &DFA<&'static [u8]> {
        self.reverse.get_or_init(|| {
            // SAFETY: both DFAs are the output of `to_bytes_little_endian` of this same
            // regex-automata version (Cargo.lock holds one, for the build script and this
            // crate), written by build.rs from patterns it compiled, and embedded unchanged; only
            // little-endian targets build (above). Checking them again would cost every plugin
            // instance milliseconds.
            unsafe { DFA::from_bytes_unchecked(self.reverse_bytes) }.expect("invariant: build.rs wrote a reverse DFA").0
        })
    }

    /// The leftmost-first match in `input`'s span, as regex-automata's DFA regex finds it: the
    /// forward DFA finds where it ends, then the reverse DFA, anchored there, where it starts.
    fn search(&self, input: &Input<'_>) -> Result<Option<regex_automata::Match>, MatchError> {
        let Some(end) = self.forward.try_search_fwd(input)? else { return Ok(None) };
        let span = if input.start() == end.offset() {
            end.offset()..end.offset()
        } else if input.get_anchored().is_anchored() || self.forward.is_always_start_anchored() {
            input.start()..end.offset()
        } else {
            let back = input.clone().span(input.start()..end.offset()).anchored(Anchored::Yes).earliest(false);
            let start = self
                .reverse()
                .try_search_rev(&back)?
                .expect("invariant: the reverse DFA matches what the forward one did");
            start.offset()..end.offset()
        };
        Ok(Some(regex_automata::Match::new(end.pattern(), span)))
    }

    /// Leftmost-first matches, left to right, not overlapping.
    pub fn find_iter<'p, 'h>(&'p self, text: &'h str) -> impl Iterator<Item = Match<'h>> + 'p
    where
        'h: 'p,
    {
        let mut searcher = Searcher::new(Input::new(text));
        std::iter::from_fn(move || searcher.advance(|input| self.search(input))).map(move |m| Match {
            text,
            start: m.start(),
            end: m.end(),
        })
    }

    pub fn find<'h>(&self, text: &'h str) -> Option<Match<'h>> {
        let found = self.search(&Input::new(text)).expect("invariant: the DFAs have no quit bytes");
        found.map(|m| Match { text, start: m.start(), end: m.end() })
    }

    pub fn is_match(&self, text: &str) -> bool {
        let input = Input::new(text).earliest(true);
        self.forward.try_search_fwd(&input).expect("invariant: the DFAs have no quit bytes").is_some()
    }
}

#[cfg(feature = "runtime-regex")]
impl Pattern {
    /// Leftmost-first matches, left to right, not overlapping.
    pub fn find_iter<'p, 'h>(&'p self, text: &'h str) -> impl Iterator<Item = Match<'h>> + 'p
    where
        'h: 'p,
    {
        self.0.find_iter(text).map(move |m| Match { text, start: m.start(), end: m.end() })
    }

    pub fn find<'h>(&self, text: &'h str) -> Option<Match<'h>> {
        self.0.find(text).map(|m| Match { text, start: m.start(), end: m.end() })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(all(test, not(feature = "runtime-regex")))]
mod tests {
    use super::*;

    #[test]
    fn the_dfas_find_what_the_regex_crate_finds() {
        let mut texts = crate::tests::sample_texts();
        texts.extend(
            ["", "x", "mail a@b.io, +1 415 555 2671 ext. 12, 1998-06-28 and 12/27/86", "221B Baker Street, Apt. 5"]
                .map(String::from),
        );
        for (name, source) in crate::regexes::all() {
            let read = |ext: &str| -> &'static [u8] {
                let path = format!("{}/{name}.{ext}", env!("OUT_DIR"));
                Box::leak(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")).into_boxed_slice())
            };
            let ours = Pattern::load(read("fwd"), read("rev"));
            let theirs = regex::Regex::new(&source).unwrap();
            for text in &texts {
                let got: Vec<(usize, usize)> = ours.find_iter(text).map(|m| (m.start(), m.end())).collect();
                let want: Vec<(usize, usize)> = theirs.find_iter(text).map(|m| (m.start(), m.end())).collect();
                assert_eq!(got, want, "{name} in {text:?}");
                assert_eq!(ours.find(text).map(|m| (m.start(), m.end())), want.first().copied(), "{name}");
                assert_eq!(ours.is_match(text), !want.is_empty(), "{name}");
            }
        }
    }
}
