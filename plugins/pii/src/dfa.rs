//! The recognizers' patterns as DFAs compiled by the build script (see `regexes.rs`): loading one
//! is a validation pass over bytes already in the binary, searching is the DFA's.

use regex_automata::dfa::regex::Regex;
use regex_automata::dfa::sparse::DFA;

#[cfg(target_endian = "big")]
compile_error!("the recognizers' DFAs are serialized little-endian");

/// A compiled pattern.
pub struct Pattern(Regex<DFA<&'static [u8]>>);

/// The DFAs of the pattern `$name` in `regexes.rs`, as the build script wrote them.
macro_rules! pattern {
    ($name:literal) => {
        $crate::dfa::Pattern::load(
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".fwd")),
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".rev")),
        )
    };
}
pub(crate) use pattern;

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

impl Pattern {
    pub fn load(forward: &'static [u8], reverse: &'static [u8]) -> Pattern {
        // SAFETY: both are the output of `to_bytes_little_endian` of this same regex-automata
        // version (Cargo.lock holds one, for the build script and this crate), written by
        // build.rs from patterns it compiled, and embedded unchanged; only little-endian targets
        // build (below). Checking them again would cost every plugin instance milliseconds.
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
