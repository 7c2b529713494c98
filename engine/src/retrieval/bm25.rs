//! A BM25 inverted index with incremental insert and remove, scored as Lucene scores.
//!
//! Documents are named by caller-chosen `u32` ordinals, meant to be dense (slots reused after a
//! remove): per-document arrays and the score accumulator are indexed by ordinal, so memory is
//! O(largest ordinal). Per term the index keeps one contiguous list of `(ordinal, tf)` postings
//! in no particular order; per document it keeps its distinct terms, so that a remove edits only
//! the lists it appears in. A term whose last posting goes away leaves the vocabulary and its id
//! is reused.
//!
//! Scoring (Lucene ≥ 8, `BM25Similarity` without its lossy length encoding):
//! `score(q, d) = Σ_{t ∈ q} idf(t) · tf / (tf + k1 · (1 − b + b · |d| / avgdl))` with
//! `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))`, `|d|` the document's length in terms after
//! analysis and a query term counted once per occurrence in the query. N, df and avgdl are
//! always those of the live documents: nothing is precomputed that an insert would invalidate,
//! so that inserts stay O(document). Search is term-at-a-time into a dense per-thread
//! accumulator, then a bounded heap keeps the best k (a filter is asked only about documents
//! that would make the cut).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use super::analyzer::{Analyzer, AnalyzerOptions};

/// BM25's free parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation: how much a second, third… occurrence still adds.
    pub k1: f32,
    /// Length normalisation: 0 ignores document length, 1 normalises fully.
    pub b: f32,
}

impl Bm25Params {
    /// Lucene's defaults; also the better of the two on SciFact (see `Default`).
    pub const LUCENE: Bm25Params = Bm25Params { k1: 1.2, b: 0.75 };
    /// Anserini's and Pyserini's defaults, tuned on MS MARCO.
    pub const ANSERINI: Bm25Params = Bm25Params { k1: 0.9, b: 0.4 };

    /// Whether BM25 is defined with these: `k1 ≥ 0` and `0 ≤ b ≤ 1`, both finite (otherwise a
    /// denominator can reach zero or below).
    pub fn check(self) -> Result<Bm25Params, InvalidBm25Params> {
        if self.k1.is_finite() && self.k1 >= 0.0 && (0.0..=1.0).contains(&self.b) {
            Ok(self)
        } else {
            Err(InvalidBm25Params(self))
        }
    }
}

impl Default for Bm25Params {
    /// [`Bm25Params::LUCENE`]: on SciFact's train queries (title and text indexed, default
    /// analysis) it gives nDCG@10 0.6990 and recall@100 0.9320, against 0.6962 and 0.9289 for
    /// [`Bm25Params::ANSERINI`].
    fn default() -> Self {
        Bm25Params::LUCENE
    }
}

/// BM25 parameters outside their domain.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("BM25 needs k1 ≥ 0 and 0 ≤ b ≤ 1 (got k1 = {}, b = {})", .0.k1, .0.b)]
pub struct InvalidBm25Params(pub Bm25Params);

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    tf: u32,
}

#[derive(Debug)]
struct Term {
    text: Box<str>,
    postings: Vec<Posting>,
}

/// A BM25 index over documents named by dense `u32` ordinals.
#[derive(Debug)]
pub struct Bm25Index {
    analyzer: Analyzer,
    params: Bm25Params,
    vocabulary: HashMap<Box<str>, u32>,
    /// By term id; `None` for an id waiting in `free_terms`.
    terms: Vec<Option<Term>>,
    free_terms: Vec<u32>,
    /// By ordinal: the document's distinct term ids, `None` where no document is.
    doc_terms: Vec<Option<Box<[u32]>>>,
    /// By ordinal: the document's length in terms (0 where no document is).
    doc_lengths: Vec<f32>,
    live: usize,
    total_length: u64,
}

impl Default for Bm25Index {
    fn default() -> Self {
        Bm25Index::new(AnalyzerOptions::default(), Bm25Params::default())
    }
}

thread_local! {
    /// Score accumulator, all zeros between searches; one per thread so that searching needs no
    /// lock and no allocation once it has grown.
    static ACCUMULATOR: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Bm25Index {
    /// An empty index; parameters that fail [`Bm25Params::check`] are replaced by the defaults,
    /// so that no score is ever negative or NaN.
    pub fn new(analyzer: AnalyzerOptions, params: Bm25Params) -> Bm25Index {
        let params = params.check().unwrap_or_default();
        Bm25Index {
            analyzer: Analyzer::new(analyzer),
            params,
            vocabulary: HashMap::new(),
            terms: Vec::new(),
            free_terms: Vec::new(),
            doc_terms: Vec::new(),
            doc_lengths: Vec::new(),
            live: 0,
            total_length: 0,
        }
    }

    pub fn params(&self) -> Bm25Params {
        self.params
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn contains(&self, doc: u32) -> bool {
        self.doc_terms.get(doc as usize).is_some_and(Option::is_some)
    }

    /// Number of distinct terms in the live documents.
    pub fn vocabulary_len(&self) -> usize {
        self.vocabulary.len()
    }

    /// Indexes `text` as document `doc`, replacing the document already there.
    pub fn insert(&mut self, doc: u32, text: &str) {
        self.remove(doc);
        let mut ids = Vec::new();
        self.analyzer.for_each_term(text, |term| {
            let id = match self.vocabulary.get(term) {
                Some(&id) => id,
                None => {
                    let term = Term { text: term.into(), postings: Vec::new() };
                    let id = match self.free_terms.pop() {
                        Some(id) => {
                            self.terms[id as usize] = Some(term);
                            id
                        }
                        None => {
                            self.terms.push(Some(term));
                            u32::try_from(self.terms.len() - 1).expect("invariant: fewer than 2^32 distinct terms")
                        }
                    };
                    let text = self.terms[id as usize].as_ref().expect("invariant: just stored").text.clone();
                    self.vocabulary.insert(text, id);
                    id
                }
            };
            ids.push(id);
        });
        let length = ids.len();
        ids.sort_unstable();
        let mut distinct = Vec::new();
        for run in ids.chunk_by(|a, b| a == b) {
            let tf = u32::try_from(run.len()).unwrap_or(u32::MAX);
            let term = self.terms[run[0] as usize].as_mut().expect("invariant: interned above");
            term.postings.push(Posting { doc, tf });
            distinct.push(run[0]);
        }
        let slot = doc as usize;
        if self.doc_terms.len() <= slot {
            self.doc_terms.resize(slot + 1, None);
            self.doc_lengths.resize(slot + 1, 0.0);
        }
        self.doc_terms[slot] = Some(distinct.into_boxed_slice());
        self.doc_lengths[slot] = length as f32;
        self.live += 1;
        self.total_length += length as u64;
    }

    /// Removes document `doc`; false if there was none.
    pub fn remove(&mut self, doc: u32) -> bool {
        let Some(distinct) = self.doc_terms.get_mut(doc as usize).and_then(Option::take) else {
            return false;
        };
        for &id in distinct.iter() {
            let slot = &mut self.terms[id as usize];
            let term = slot.as_mut().expect("invariant: a document's terms are interned");
            if let Some(at) = term.postings.iter().position(|p| p.doc == doc) {
                term.postings.swap_remove(at);
            }
            if term.postings.is_empty() {
                let term = slot.take().expect("invariant: checked above");
                self.vocabulary.remove(&term.text);
                self.free_terms.push(id);
            }
        }
        self.live -= 1;
        self.total_length -= self.doc_lengths[doc as usize] as u64;
        self.doc_lengths[doc as usize] = 0.0;
        true
    }

    /// The `k` best documents for `query` among those `filter` accepts (all when `None`), best
    /// first; equal scores rank the lower ordinal first. Documents sharing no term with the
    /// query are not returned.
    pub fn search(&self, query: &str, k: usize, filter: Option<&dyn Fn(u32) -> bool>) -> Vec<(u32, f32)> {
        if k == 0 || self.live == 0 {
            return Vec::new();
        }
        let mut query_terms = Vec::new();
        self.analyzer.for_each_term(query, |term| {
            if let Some(&id) = self.vocabulary.get(term) {
                query_terms.push(id);
            }
        });
        if query_terms.is_empty() {
            return Vec::new();
        }
        query_terms.sort_unstable();
        ACCUMULATOR.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.search_terms(&query_terms, k, filter, &mut scratch),
            // Only reachable if `filter` itself searches on this thread.
            Err(_) => self.search_terms(&query_terms, k, filter, &mut Vec::new()),
        })
    }

    /// `query_terms`: sorted known term ids, repeats kept. `acc` is all zeros on entry and exit.
    fn search_terms(
        &self,
        query_terms: &[u32],
        k: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
        acc: &mut Vec<f32>,
    ) -> Vec<(u32, f32)> {
        let slots = self.doc_lengths.len();
        if acc.len() < slots {
            acc.resize(slots, 0.0);
        }
        let acc = &mut acc[..slots];
        let lists: Vec<(&[Posting], f32)> = {
            let n = self.live as f32;
            query_terms
                .chunk_by(|a, b| a == b)
                .map(|run| {
                    let term = self.terms[run[0] as usize].as_ref().expect("invariant: query terms are interned");
                    let df = term.postings.len() as f32;
                    (&term.postings[..], run.len() as f32 * (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
                })
                .collect()
        };
        let mut best = TopK::new(k);
        // When the postings cover a good part of the slots, tracking which documents they touch
        // (a branch per posting that mispredicts) costs more than sweeping every slot once.
        let postings: usize = lists.iter().map(|(p, _)| p.len()).sum();
        if postings.saturating_mul(4) >= slots {
            self.accumulate(&lists, acc, |_| {});
            // No test for zero here: a zero score is below the heap's floor, and a branch that
            // is rarely taken is cheaper than one taken at random.
            for (d, &score) in acc.iter().enumerate() {
                best.offer(d as u32, score, filter);
            }
            acc.fill(0.0);
        } else {
            let mut touched = Vec::new();
            self.accumulate(&lists, acc, |d| touched.push(d));
            for d in touched {
                best.offer(d, std::mem::take(&mut acc[d as usize]), filter);
            }
        }
        best.into_sorted()
    }

    /// Adds each list's contributions into `acc`, calling `first_touch` with each document the
    /// first time it scores.
    fn accumulate(&self, lists: &[(&[Posting], f32)], acc: &mut [f32], mut first_touch: impl FnMut(u32)) {
        let n = self.live as f32;
        let Bm25Params { k1, b } = self.params;
        let avgdl = (self.total_length as f32 / n).max(f32::MIN_POSITIVE);
        // tf / (tf + k1·(1 − b) + k1·b/avgdl · |d|): two constants per query, so a posting costs a
        // multiply-add and a division. (Not `mul_add`: without a target FMA it is a libm call.)
        let c1 = k1 * (1.0 - b);
        let c2 = k1 * b / avgdl;
        let lengths = &self.doc_lengths[..acc.len()];
        for &(postings, weight) in lists {
            for p in postings {
                let tf = p.tf as f32;
                let d = p.doc as usize;
                let s = weight * tf / (tf + c1 + c2 * lengths[d]);
                // Every contribution is positive, so a zero means the document is new here.
                if acc[d] == 0.0 {
                    first_touch(p.doc);
                }
                acc[d] += s;
            }
        }
    }
}

/// Best first: higher score, then lower ordinal; NaN after every number.
pub(crate) fn rank_order(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1),
        (x, y) => x.cmp(&y),
    }
    .then(a.0.cmp(&b.0))
}

/// The `k` best hits offered so far, for BM25 scores (finite and positive). Each hit is packed
/// into one `u64` whose order is [`rank_order`]'s: the score's bits above (a positive float's
/// bits order as the float does), the complemented ordinal below (the lower ordinal wins a tie).
/// A min-heap's root is the worst hit kept, so most offers are turned away by one comparison.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<u64>>,
    /// The worst key kept once `k` are kept; before, the greatest key of a zero score, so that
    /// zeros are never kept.
    floor: u64,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(1 << 16)), floor: TopK::ZERO }
    }

    const ZERO: u64 = u32::MAX as u64;

    fn key(doc: u32, score: f32) -> u64 {
        (u64::from(score.to_bits()) << 32) | u64::from(!doc)
    }

    /// Keeps `doc` if it is among the k best so far and `filter` accepts it; the filter is asked
    /// only then.
    #[inline(always)]
    fn offer(&mut self, doc: u32, score: f32, filter: Option<&dyn Fn(u32) -> bool>) {
        let key = TopK::key(doc, score);
        if key > self.floor && filter.is_none_or(|f| f(doc)) {
            self.push(key);
        }
    }

    fn push(&mut self, key: u64) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(key));
        } else if key > self.floor
            && let Some(mut worst) = self.heap.peek_mut()
        {
            *worst = Reverse(key);
        }
        if self.heap.len() == self.k {
            self.floor = self.heap.peek().map_or(TopK::ZERO, |worst| worst.0);
        }
    }

    fn into_sorted(self) -> Vec<(u32, f32)> {
        // Ascending `Reverse` keys are descending keys: best first.
        let unpack = |key: u64| (!(key as u32), f32::from_bits((key >> 32) as u32));
        self.heap.into_sorted_vec().into_iter().map(|Reverse(key)| unpack(key)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(docs: &[&str]) -> Bm25Index {
        let mut index = Bm25Index::new(AnalyzerOptions { stopwords: false, stem: false }, Bm25Params::LUCENE);
        for (i, d) in docs.iter().enumerate() {
            index.insert(i as u32, d);
        }
        index
    }

    /// The formula written out once, plainly, for the index to agree with.
    fn lucene_score(tf: f32, dl: f32, avgdl: f32, n: f32, df: f32, p: Bm25Params) -> f32 {
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        idf * tf / (tf + p.k1 * (1.0 - p.b + p.b * dl / avgdl))
    }

    fn assert_close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} != {b}");
    }

    #[test]
    fn scores_as_lucene_bm25() {
        let idx = index(&["apple apple banana", "banana cherry", "cherry cherry cherry durian"]);
        let p = Bm25Params::LUCENE;
        let avgdl = 9.0 / 3.0;
        let hits = idx.search("apple", 10, None);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, 0);
        assert_close(hits[0].1, lucene_score(2.0, 3.0, avgdl, 3.0, 1.0, p));
        let hits = idx.search("banana cherry", 10, None);
        let expect1 = lucene_score(1.0, 2.0, avgdl, 3.0, 2.0, p) * 2.0;
        let expect2 = lucene_score(3.0, 4.0, avgdl, 3.0, 2.0, p);
        let expect0 = lucene_score(1.0, 3.0, avgdl, 3.0, 2.0, p);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 2, 0]);
        assert_close(hits[0].1, expect1);
        assert_close(hits[1].1, expect2);
        assert_close(hits[2].1, expect0);
    }

    /// Scores every document by the formula, from its terms alone.
    fn brute_force(docs: &[String], query: &str, p: Bm25Params) -> Vec<(u32, f32)> {
        let terms: Vec<Vec<&str>> = docs.iter().map(|d| d.split_whitespace().collect()).collect();
        let n = docs.len() as f32;
        let avgdl = terms.iter().map(Vec::len).sum::<usize>() as f32 / n;
        let mut scores: Vec<(u32, f32)> = terms
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let score = query
                    .split_whitespace()
                    .map(|q| {
                        let tf = doc.iter().filter(|t| *t == &q).count() as f32;
                        let df = terms.iter().filter(|d| d.contains(&q)).count() as f32;
                        if tf == 0.0 { 0.0 } else { lucene_score(tf, doc.len() as f32, avgdl, n, df, p) }
                    })
                    .sum();
                (i as u32, score)
            })
            .filter(|h| h.1 > 0.0)
            .collect();
        scores.sort_by(rank_order);
        scores
    }

    #[test]
    fn sparse_and_dense_accumulation_agree_with_the_formula() {
        // "rare" touches 3 of 200 documents (tracked), "common" all of them (swept).
        let docs: Vec<String> = (0..200)
            .map(|i| {
                let rare = if i % 70 == 5 { " rare rare" } else { "" };
                format!("common w{} {}{rare}", i % 13, "filler ".repeat(i % 7))
            })
            .collect();
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let idx = index(&refs);
        for query in ["rare", "common", "rare common w3", "w3 w3 rare"] {
            let hits = idx.search(query, 50, None);
            let expect: Vec<(u32, f32)> = brute_force(&docs, query, Bm25Params::LUCENE).into_iter().take(50).collect();
            assert_eq!(hits.len(), expect.len(), "{query}");
            for (h, e) in hits.iter().zip(&expect) {
                assert_eq!(h.0, e.0, "{query}");
                assert_close(h.1, e.1);
            }
        }
    }

    #[test]
    fn parameters_outside_their_domain_are_refused() {
        for (k1, b) in [(-0.1, 0.5), (1.0, 1.5), (1.0, -0.1), (f32::NAN, 0.5), (f32::INFINITY, 0.5)] {
            let p = Bm25Params { k1, b };
            assert!(p.check().is_err(), "{p:?}");
            assert_eq!(Bm25Index::new(AnalyzerOptions::default(), p).params(), Bm25Params::default());
        }
        assert_eq!(Bm25Params { k1: 0.0, b: 1.0 }.check(), Ok(Bm25Params { k1: 0.0, b: 1.0 }));
    }

    #[test]
    fn repeated_query_terms_count_per_occurrence() {
        let idx = index(&["apple pie", "banana split", "cherry tart"]);
        let once = idx.search("apple", 1, None)[0].1;
        let twice = idx.search("apple apple", 1, None)[0].1;
        assert_close(twice, 2.0 * once);
    }

    #[test]
    fn returns_only_the_k_best_in_order_with_ties_by_ordinal() {
        let idx = index(&["x", "x y", "x", "x x x", "z"]);
        let hits = idx.search("x", 3, None);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [3, 0, 2]);
        assert!(idx.search("x", 0, None).is_empty());
        assert_eq!(idx.search("x", 100, None).len(), 4);
    }

    #[test]
    fn unknown_and_empty_queries_find_nothing() {
        let idx = index(&["alpha beta"]);
        assert!(idx.search("gamma", 5, None).is_empty());
        assert!(idx.search("", 5, None).is_empty());
        assert!(Bm25Index::default().search("alpha", 5, None).is_empty());
    }

    #[test]
    fn filter_applies_before_the_cut() {
        let idx = index(&["x x x", "x x", "x"]);
        let odd = |d: u32| d % 2 == 1;
        assert_eq!(idx.search("x", 1, Some(&odd)), vec![(1, idx.search("x", 3, None)[1].1)]);
        let none = |_: u32| false;
        assert!(idx.search("x", 5, Some(&none)).is_empty());
    }

    #[test]
    fn insert_on_an_existing_ordinal_replaces_the_document() {
        let mut idx = index(&["apple", "banana"]);
        idx.insert(0, "cherry");
        assert_eq!(idx.len(), 2);
        assert!(idx.search("apple", 5, None).is_empty());
        assert_eq!(idx.search("cherry", 5, None)[0].0, 0);
        assert_eq!(idx.vocabulary_len(), 2);
    }

    #[test]
    fn remove_forgets_the_document_and_its_statistics() {
        let mut idx = index(&["apple banana", "banana", "cherry cherry cherry cherry"]);
        assert!(idx.remove(2));
        assert!(!idx.remove(2));
        assert!(!idx.remove(99));
        assert_eq!(idx.len(), 2);
        assert!(!idx.contains(2));
        assert!(idx.search("cherry", 5, None).is_empty());
        // Same scores as an index that never had the document.
        let fresh = index(&["apple banana", "banana"]);
        assert_eq!(idx.search("apple banana", 5, None), fresh.search("apple banana", 5, None));
        assert_eq!(idx.vocabulary_len(), 2);
    }

    #[test]
    fn term_ids_are_reused_after_their_last_document_goes() {
        let mut idx = index(&["apple", "banana"]);
        idx.remove(0);
        idx.insert(5, "cherry");
        assert_eq!(idx.terms.len(), 2);
        assert_eq!(idx.search("cherry", 5, None)[0].0, 5);
        assert_eq!(idx.search("banana", 5, None)[0].0, 1);
    }

    #[test]
    fn empty_documents_count_but_never_match() {
        let idx = index(&["", "apple", ""]);
        assert_eq!(idx.len(), 3);
        let hits = idx.search("apple", 5, None);
        assert_eq!(hits.len(), 1);
        assert_close(hits[0].1, lucene_score(1.0, 1.0, 1.0 / 3.0, 3.0, 1.0, Bm25Params::LUCENE));
    }

    #[test]
    fn analysis_is_shared_by_index_and_query() {
        let mut idx = Bm25Index::default();
        idx.insert(0, "The studies of retrieval");
        idx.insert(1, "Unrelated text about cooking");
        assert_eq!(idx.search("STUDY retrieving", 5, None)[0].0, 0);
        assert!(idx.search("the of", 5, None).is_empty());
    }

    #[test]
    fn accumulator_is_clean_between_searches() {
        let idx = index(&["a b", "b c", "c d"]);
        let first = idx.search("b c", 5, Some(&|d| d == 0));
        assert_eq!(first.len(), 1);
        assert_eq!(idx.search("b c", 5, None), index(&["a b", "b c", "c d"]).search("b c", 5, None));
    }
}
