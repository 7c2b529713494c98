//! Text analysis for BM25: a text becomes the terms that index and query share.
//!
//! The chain follows Lucene's `EnglishAnalyzer`: Unicode word boundaries (UAX #29), lowercase,
//! English possessives (`'s`) dropped, Lucene's English stopwords removed, then the English
//! Snowball (Porter2) stemmer. Stopwords and stemming can be turned off. Indexing and querying
//! must use the same options, which is why an index owns its analyzer.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`, sorted; [`is_stopword`] is its fast test.
pub const ENGLISH_STOPWORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// Which optional steps of the chain run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzerOptions {
    /// Drop [`ENGLISH_STOPWORDS`].
    pub stopwords: bool,
    /// Reduce words to their English Snowball stem (`retrieval` → `retriev`).
    pub stem: bool,
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        AnalyzerOptions { stopwords: true, stem: true }
    }
}

/// Turns text into terms; cheap to share, holds no per-call state.
pub struct Analyzer {
    options: AnalyzerOptions,
    stemmer: Option<Stemmer>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new(AnalyzerOptions::default())
    }
}

impl Analyzer {
    pub fn new(options: AnalyzerOptions) -> Analyzer {
        Analyzer { options, stemmer: options.stem.then(|| Stemmer::create(Algorithm::English)) }
    }

    pub fn options(&self) -> AnalyzerOptions {
        self.options
    }

    /// The terms of `text`, in order, repeats kept.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        self.for_each_term(text, |t| terms.push(t.to_owned()));
        terms
    }

    /// Calls `f` with each term of `text` in order, without allocating a string per term.
    pub fn for_each_term(&self, text: &str, mut f: impl FnMut(&str)) {
        let mut lower = String::new();
        for word in text.unicode_words() {
            lower.clear();
            lower.extend(word.chars().flat_map(char::to_lowercase));
            let word = strip_possessive(&lower);
            if word.is_empty() || (self.options.stopwords && is_stopword(word)) {
                continue;
            }
            match &self.stemmer {
                Some(stemmer) => f(&stemmer.stem(word)),
                None => f(word),
            }
        }
    }
}

/// Whether a lowercase word is one of [`ENGLISH_STOPWORDS`].
#[rustfmt::skip] // One pattern a line would make 33 lines of a table.
pub fn is_stopword(word: &str) -> bool {
    // A `match` compiles to a switch on length and a few comparisons: faster than a search.
    matches!(
        word,
        "a" | "an" | "and" | "are" | "as" | "at" | "be" | "but" | "by" | "for" | "if" | "in" | "into" | "is" | "it"
            | "no" | "not" | "of" | "on" | "or" | "such" | "that" | "the" | "their" | "then" | "there" | "these"
            | "they" | "this" | "to" | "was" | "will" | "with"
    )
}

/// `word` without a trailing possessive `'s` (any of the apostrophes UAX #29 keeps inside a word).
fn strip_possessive(word: &str) -> &str {
    ["'s", "\u{2019}s", "\u{FF07}s"].iter().find_map(|suffix| word.strip_suffix(suffix)).unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Analyzer {
        Analyzer::new(AnalyzerOptions { stopwords: false, stem: false })
    }

    #[test]
    fn stopword_test_matches_the_list() {
        assert!(ENGLISH_STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(ENGLISH_STOPWORDS.iter().all(|w| is_stopword(w)));
        for word in ["", "th", "them", "an_", "withs", "cat", "The"] {
            assert!(!is_stopword(word), "{word}");
        }
    }

    #[test]
    fn splits_on_unicode_word_boundaries_and_lowercases() {
        assert_eq!(
            plain().analyze("Hello, WORLD! Ünïcode—text (3.5 mg)"),
            ["hello", "world", "ünïcode", "text", "3.5", "mg"]
        );
        assert_eq!(plain().analyze("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn drops_possessives() {
        assert_eq!(plain().analyze("Alzheimer's disease, Parkinson\u{2019}s"), ["alzheimer", "disease", "parkinson"]);
    }

    #[test]
    fn removes_stopwords_when_asked() {
        let a = Analyzer::new(AnalyzerOptions { stopwords: true, stem: false });
        assert_eq!(a.analyze("The cat is on the mat"), ["cat", "mat"]);
        assert_eq!(plain().analyze("The cat is"), ["the", "cat", "is"]);
    }

    #[test]
    fn stems_with_english_snowball_when_asked() {
        let a = Analyzer::new(AnalyzerOptions { stopwords: false, stem: true });
        assert_eq!(a.analyze("Retrieval of running cells"), ["retriev", "of", "run", "cell"]);
    }

    #[test]
    fn default_runs_the_whole_chain() {
        assert_eq!(Analyzer::default().analyze("The Mice are running into the Studies"), ["mice", "run", "studi"]);
    }
}
