//! The recognizers' patterns (`regexes.rs`), one way or the other:
//!
//! - by default, as DFAs compiled by the build script: loading one takes microseconds, over bytes
//!   already in the binary — what a plugin instance, which lives for one call, needs;
//! - with the `runtime-regex` feature, compiled at first use with the `regex` crate (~20 ms for
//!   all of them), whose literal prefilters search long texts ~3× faster — what a long-lived
//!   process (the host's egress guard) wants.
//!
//! Both find the same leftmost-first matches.

use std::sync::LazyLock;

#[cfg(not(feature = "runtime-regex"))]
use regex_automata::dfa::regex::Regex;
#[cfg(not(feature = "runtime-regex"))]
use regex_automata::dfa::sparse::DFA;

#[cfg(all(target_endian = "big", not(feature = "runtime-regex")))]
compile_error!("the recognizers' DFAs are serialized little-endian");

/// A compiled pattern.
#[cfg(not(feature = "runtime-regex"))]
pub struct Pattern(Regex<DFA<&'static [u8]>>);
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

impl Pattern {
    #[cfg(not(feature = "runtime-regex"))]
    pub fn load(forward: &'static [u8], reverse: &'static [u8]) -> Pattern {
        // SAFETY: both are the output of `to_bytes_little_endian` of this same regex-automata
        // version (Cargo.lock holds one, for the build script and this crate), written by
        // build.rs from patterns it compiled, and embedded unchanged; only little-endian targets
        // build (above). Checking them again would cost every plugin instance milliseconds.
        let (fwd, _) = unsafe { DFA::from_bytes_unchecked(forward) }.expect("invariant: build.rs wrote a forward DFA");
        let (rev, _) = unsafe { DFA::from_bytes_unchecked(reverse) }.expect("invariant: build.rs wrote a reverse DFA");
        Pattern(Regex::builder().build_from_dfas(fwd, rev))
    }

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
