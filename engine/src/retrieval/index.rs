//! One user's history as a searchable index: items with a BM25 and a dense index kept in step.
//!
//! Each item gets a slot (a dense `u32`, reused after a remove) that names it in both indices,
//! so a hit from either maps back to the item without a lookup table per index. Items are keyed
//! by their id: an upsert replaces the item with that id in every index at once, and an upsert
//! that fails (the embedder errs, or returns a bad vector) changes nothing. What is indexed is
//! `item.text`. The dense side exists only when the index was given an embedder; without one,
//! BM25 still works and dense or hybrid searches fail with [`RetrievalError::NoEmbedder`].
//! Filters are applied to items before ranking, so `k` hits come back whenever k items pass.

use std::collections::HashMap;
use std::sync::Arc;

use tailor_dsl::types::Item;

use super::analyzer::AnalyzerOptions;
use super::bm25::{Bm25Index, Bm25Params};
use super::dense::{DenseError, DenseIndex, DenseScorer};
use super::hybrid::Fusion;
use crate::host::services::{Hit, ItemFilter, SearchMethod};

/// Turns texts into embeddings: the text encoder, as the index sees it.
pub trait TextEmbedder: Send + Sync {
    /// The length of every embedding.
    fn dim(&self) -> usize;
    /// One embedding per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// How a [`UserIndex`] analyses, scores and fuses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserIndexConfig {
    pub analyzer: AnalyzerOptions,
    pub bm25: Bm25Params,
    pub fusion: Fusion,
    /// How deep each of the BM25 and dense rankings goes before a hybrid search fuses them (at
    /// least `k`).
    pub hybrid_depth: usize,
}

impl Default for UserIndexConfig {
    fn default() -> Self {
        UserIndexConfig {
            analyzer: AnalyzerOptions::default(),
            bm25: Bm25Params::default(),
            fusion: Fusion::default(),
            hybrid_depth: 100,
        }
    }
}

/// Why an index operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetrievalError {
    #[error("dense and hybrid search need a text embedder, and this index has none")]
    NoEmbedder,
    #[error("text embedder failed: {message}")]
    Embedder { message: String },
    #[error("text embedder returned {found} embeddings for {expected} texts")]
    EmbeddingCount { expected: usize, found: usize },
    #[error(transparent)]
    Dense(#[from] DenseError),
}

struct Dense {
    embedder: Arc<dyn TextEmbedder>,
    scorer: Arc<dyn DenseScorer>,
    index: DenseIndex,
}

impl Dense {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, RetrievalError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = self.embedder.embed(texts).map_err(|message| RetrievalError::Embedder { message })?;
        if vectors.len() != texts.len() {
            return Err(RetrievalError::EmbeddingCount { expected: texts.len(), found: vectors.len() });
        }
        for v in &vectors {
            self.index.validate(v)?;
        }
        Ok(vectors)
    }
}

struct Stored {
    item: Arc<Item>,
    /// Insertion order, for `recent` among equal timestamps.
    seq: u64,
}

/// One user's history items, searchable by BM25, dense similarity or both.
pub struct UserIndex {
    config: UserIndexConfig,
    /// By slot.
    items: Vec<Option<Stored>>,
    slots: HashMap<Arc<str>, u32>,
    free_slots: Vec<u32>,
    next_seq: u64,
    bm25: Bm25Index,
    dense: Option<Dense>,
}

impl std::fmt::Debug for UserIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIndex")
            .field("config", &self.config)
            .field("items", &self.slots.len())
            .field("dense", &self.dense.as_ref().map(|d| d.index.dim()))
            .finish()
    }
}

impl UserIndex {
    /// An index searchable by BM25 only.
    pub fn new(config: UserIndexConfig) -> UserIndex {
        UserIndex {
            config,
            items: Vec::new(),
            slots: HashMap::new(),
            free_slots: Vec::new(),
            next_seq: 0,
            bm25: Bm25Index::new(config.analyzer, config.bm25),
            dense: None,
        }
    }

    /// An index searchable by every method, embedding items and queries with `embedder`.
    pub fn with_dense(
        config: UserIndexConfig,
        embedder: Arc<dyn TextEmbedder>,
        scorer: Arc<dyn DenseScorer>,
    ) -> Result<UserIndex, RetrievalError> {
        let index = DenseIndex::new(embedder.dim())?;
        Ok(UserIndex { dense: Some(Dense { embedder, scorer, index }), ..UserIndex::new(config) })
    }

    pub fn config(&self) -> &UserIndexConfig {
        &self.config
    }

    /// Whether dense and hybrid search are available.
    pub fn has_dense(&self) -> bool {
        self.dense.is_some()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Item>> {
        self.slots.get(id).and_then(|&slot| self.stored(slot)).map(|s| &s.item)
    }

    /// Every item, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &Arc<Item>> {
        self.items.iter().flatten().map(|s| &s.item)
    }

    /// Adds `item`, or replaces the item with its id.
    pub fn upsert(&mut self, item: Arc<Item>) -> Result<(), RetrievalError> {
        self.upsert_batch(vec![item])
    }

    /// Adds or replaces several items, embedding them in one call; on error nothing changes.
    /// Of two items with one id, the later wins.
    pub fn upsert_batch(&mut self, items: Vec<Arc<Item>>) -> Result<(), RetrievalError> {
        self.upsert_embedded(items.into_iter().map(|i| (i, None)).collect())
    }

    /// Like [`UserIndex::upsert_batch`], for items whose embeddings were computed before (at
    /// ingest, kept in the store): an item given `None` is embedded now. Without a dense side
    /// the vectors are ignored. All or nothing: a vector of the wrong width changes nothing.
    pub fn upsert_embedded(&mut self, items: Vec<(Arc<Item>, Option<Vec<f32>>)>) -> Result<(), RetrievalError> {
        let vectors: Option<Vec<Vec<f32>>> = match &self.dense {
            Some(dense) => {
                let missing: Vec<&str> = items.iter().filter(|(_, v)| v.is_none()).map(|(i, _)| &*i.text).collect();
                let mut fresh = dense.embed(&missing)?.into_iter();
                let mut all = Vec::with_capacity(items.len());
                for (_, given) in &items {
                    let v = match given {
                        Some(v) => {
                            dense.index.validate(v)?;
                            v.clone()
                        }
                        None => fresh.next().expect("invariant: one embedding per missing vector, counted in embed"),
                    };
                    all.push(v);
                }
                Some(all)
            }
            None => None,
        };
        let mut vectors = vectors.map(Vec::into_iter);
        for (item, _) in items {
            let slot = match self.slots.get(&item.id) {
                Some(&slot) => slot,
                None => {
                    let slot = self.free_slots.pop().unwrap_or_else(|| {
                        self.items.push(None);
                        u32::try_from(self.items.len() - 1).expect("invariant: fewer than 2^32 items")
                    });
                    self.slots.insert(Arc::clone(&item.id), slot);
                    slot
                }
            };
            self.bm25.insert(slot, &item.text);
            if let (Some(dense), Some(vectors)) = (&mut self.dense, &mut vectors) {
                let vector = vectors.next().expect("invariant: one embedding per item, counted in embed");
                dense.index.insert(slot, &vector).expect("invariant: vectors validated in embed");
            }
            self.items[slot as usize] = Some(Stored { item, seq: self.next_seq });
            self.next_seq += 1;
        }
        Ok(())
    }

    /// Removes the item with id `id`; false if there was none.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        self.bm25.remove(slot);
        if let Some(dense) = &mut self.dense {
            dense.index.remove(slot);
        }
        self.items[slot as usize] = None;
        self.free_slots.push(slot);
        true
    }

    /// The `k` items best matching `query` among those `filter` accepts, best first.
    pub fn search(
        &self,
        query: &str,
        method: SearchMethod,
        k: usize,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Hit>, RetrievalError> {
        let mut lists = self.search_batch(&[query], method, k, filter)?;
        Ok(lists.pop().unwrap_or_default())
    }

    /// [`search`](Self::search) for several queries, embedding them in one call.
    pub fn search_batch(
        &self,
        queries: &[&str],
        method: SearchMethod,
        k: usize,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Vec<Hit>>, RetrievalError> {
        let accept = filter.map(|f| move |slot: u32| self.stored(slot).is_some_and(|s| f(&s.item)));
        let accept = accept.as_ref().map(|f| f as &dyn Fn(u32) -> bool);
        let bm25 = |depth: usize| queries.iter().map(|q| self.bm25.search(q, depth, accept)).collect::<Vec<_>>();
        let dense = |depth: usize| -> Result<Vec<Vec<(u32, f32)>>, RetrievalError> {
            let dense = self.dense.as_ref().ok_or(RetrievalError::NoEmbedder)?;
            let vectors = dense.embed(queries)?.concat();
            Ok(dense.index.search_batch(&*dense.scorer, &vectors, depth, accept)?)
        };
        let ranked = match method {
            SearchMethod::Bm25 => bm25(k),
            SearchMethod::Dense => dense(k)?,
            SearchMethod::Hybrid => {
                let depth = k.max(self.config.hybrid_depth);
                let dense = dense(depth)?;
                bm25(depth)
                    .iter()
                    .zip(&dense)
                    .map(|(sparse, dense)| {
                        let mut fused = self.config.fusion.fuse(sparse, dense);
                        fused.truncate(k);
                        fused
                    })
                    .collect()
            }
        };
        Ok(ranked
            .into_iter()
            .map(|list| list.into_iter().map(|(slot, score)| self.hit(slot, score)).collect())
            .collect())
    }

    /// Up to `limit` items `filter` accepts, newest first: by timestamp, then (for equal or
    /// missing timestamps, which come last) the most recently upserted first.
    pub fn recent(&self, limit: usize, filter: Option<&ItemFilter>) -> Vec<Arc<Item>> {
        let mut items: Vec<&Stored> =
            self.items.iter().flatten().filter(|s| filter.is_none_or(|f| f(&s.item))).collect();
        items.sort_unstable_by(|a, b| {
            let time = |s: &Stored| s.item.timestamp.filter(|t| !t.is_nan());
            match (time(a), time(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (x, y) => y.is_some().cmp(&x.is_some()),
            }
            .then(b.seq.cmp(&a.seq))
        });
        items.into_iter().take(limit).map(|s| Arc::clone(&s.item)).collect()
    }

    fn stored(&self, slot: u32) -> Option<&Stored> {
        self.items.get(slot as usize).and_then(Option::as_ref)
    }

    fn hit(&self, slot: u32, score: f32) -> Hit {
        let stored = self.stored(slot).expect("invariant: the indices hold only live slots");
        Hit { item: Arc::clone(&stored.item), score: f64::from(score) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tailor_dsl::types::Value;

    use super::*;
    use crate::retrieval::dense::ReferenceScorer;

    /// Hashed bag of words: texts sharing words have similar vectors. Counts its calls.
    #[derive(Default)]
    pub(crate) struct HashedWords {
        pub calls: AtomicUsize,
        pub fail_on: Option<&'static str>,
    }

    impl TextEmbedder for HashedWords {
        fn dim(&self) -> usize {
            32
        }

        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            texts
                .iter()
                .map(|t| {
                    if self.fail_on.is_some_and(|f| t.contains(f)) {
                        return Err(format!("cannot embed {t:?}"));
                    }
                    let mut v = vec![0.0; 32];
                    for word in t.split_whitespace() {
                        let h =
                            word.to_lowercase().bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
                        v[h as usize % 32] += 1.0;
                    }
                    Ok(v)
                })
                .collect()
        }
    }

    pub(crate) fn item(id: &str, kind: &str, text: &str, timestamp: Option<f64>) -> Arc<Item> {
        Arc::new(Item { id: id.into(), kind: kind.into(), text: text.into(), timestamp, fields: BTreeMap::new() })
    }

    fn dense_index() -> UserIndex {
        UserIndex::with_dense(UserIndexConfig::default(), Arc::new(HashedWords::default()), Arc::new(ReferenceScorer))
            .expect("dimension 32")
    }

    fn ids(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| &*h.item.id).collect()
    }

    fn history(index: &mut UserIndex) {
        index
            .upsert_batch(vec![
                item("p1", "paper", "sparse retrieval with bm25 baselines", Some(10.0)),
                item("p2", "paper", "dense retrieval with learned embeddings", Some(30.0)),
                item("r1", "review", "great pasta and friendly staff", Some(20.0)),
            ])
            .expect("indexed");
    }

    #[test]
    fn bm25_finds_the_matching_item() {
        let mut index = UserIndex::new(UserIndexConfig::default());
        history(&mut index);
        let hits = index.search("bm25 baselines", SearchMethod::Bm25, 5, None).expect("search");
        assert_eq!(ids(&hits), ["p1"]);
        assert!(hits[0].score > 0.0);
    }

    #[test]
    fn dense_and_hybrid_need_an_embedder() {
        let mut index = UserIndex::new(UserIndexConfig::default());
        history(&mut index);
        assert_eq!(index.search("x", SearchMethod::Dense, 1, None), Err(RetrievalError::NoEmbedder));
        assert_eq!(index.search("x", SearchMethod::Hybrid, 1, None), Err(RetrievalError::NoEmbedder));
    }

    #[test]
    fn dense_ranks_by_embedding_similarity() {
        let mut index = dense_index();
        history(&mut index);
        let hits = index.search("friendly staff and pasta", SearchMethod::Dense, 3, None).expect("search");
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].item.id.as_ref(), "r1");
    }

    #[test]
    fn hybrid_fuses_both_rankings() {
        let mut index = dense_index();
        history(&mut index);
        let hits = index.search("dense retrieval", SearchMethod::Hybrid, 2, None).expect("search");
        assert_eq!(ids(&hits), ["p2", "p1"]);
        let expect = 2.0 / (60.0 + 1.0);
        assert!((hits[0].score - expect).abs() < 1e-6, "{}", hits[0].score);
    }

    #[test]
    fn filter_applies_before_ranking_for_every_method() {
        let mut index = dense_index();
        history(&mut index);
        let reviews: ItemFilter = Arc::new(|i: &Item| &*i.kind == "review");
        for method in [SearchMethod::Dense, SearchMethod::Hybrid] {
            let hits = index.search("retrieval", method, 1, Some(&reviews)).expect("search");
            assert_eq!(ids(&hits), ["r1"], "{method:?}");
        }
        assert!(index.search("retrieval", SearchMethod::Bm25, 1, Some(&reviews)).expect("search").is_empty());
        let field: ItemFilter = Arc::new(|i: &Item| i.get("id") == Value::Text("p2".into()));
        assert_eq!(ids(&index.search("retrieval", SearchMethod::Bm25, 5, Some(&field)).expect("search")), ["p2"]);
    }

    #[test]
    fn upsert_replaces_the_item_everywhere() {
        let mut index = dense_index();
        history(&mut index);
        index.upsert(item("p1", "paper", "cooking with garlic", Some(40.0))).expect("indexed");
        assert_eq!(index.len(), 3);
        assert!(index.search("bm25", SearchMethod::Bm25, 5, None).expect("search").is_empty());
        assert_eq!(ids(&index.search("garlic", SearchMethod::Bm25, 5, None).expect("search")), ["p1"]);
        let dense = index.search("cooking with garlic", SearchMethod::Dense, 1, None).expect("search");
        assert_eq!(ids(&dense), ["p1"]);
        assert!((dense[0].score - 1.0).abs() < 1e-5);
        assert_eq!(&*index.get("p1").expect("present").text, "cooking with garlic");
    }

    #[test]
    fn remove_forgets_the_item_everywhere_and_reuses_its_slot() {
        let mut index = dense_index();
        history(&mut index);
        assert!(index.remove("p2"));
        assert!(!index.remove("p2"));
        assert!(index.get("p2").is_none());
        for method in [SearchMethod::Bm25, SearchMethod::Dense, SearchMethod::Hybrid] {
            let hits = index.search("dense retrieval learned embeddings", method, 5, None).expect("search");
            assert!(!ids(&hits).contains(&"p2"), "{method:?}");
        }
        index.upsert(item("n1", "note", "learned embeddings again", None)).expect("indexed");
        assert_eq!(index.items.len(), 3, "the freed slot is reused");
        assert_eq!(ids(&index.search("learned", SearchMethod::Bm25, 5, None).expect("search")), ["n1"]);
    }

    #[test]
    fn failed_embedding_changes_nothing() {
        let embedder = Arc::new(HashedWords { fail_on: Some("poison"), ..HashedWords::default() });
        let mut index =
            UserIndex::with_dense(UserIndexConfig::default(), embedder, Arc::new(ReferenceScorer)).expect("dim 32");
        history(&mut index);
        let batch = vec![item("p1", "paper", "replacement", None), item("x", "paper", "poison pill", None)];
        assert!(matches!(index.upsert_batch(batch), Err(RetrievalError::Embedder { .. })));
        assert_eq!(index.len(), 3);
        assert_eq!(&*index.get("p1").expect("kept").text, "sparse retrieval with bm25 baselines");
        assert!(index.search("replacement", SearchMethod::Bm25, 5, None).expect("search").is_empty());
    }

    #[test]
    fn refuses_embeddings_of_the_wrong_shape() {
        struct Short;
        impl TextEmbedder for Short {
            fn dim(&self) -> usize {
                4
            }
            /// None for one text, vectors of dimension 3 for more.
            fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
                Ok(if texts.len() == 1 { Vec::new() } else { vec![vec![1.0; 3]; texts.len()] })
            }
        }
        let mut index = UserIndex::with_dense(UserIndexConfig::default(), Arc::new(Short), Arc::new(ReferenceScorer))
            .expect("dim 4");
        let one = vec![item("a", "k", "t", None)];
        assert_eq!(index.upsert_batch(one), Err(RetrievalError::EmbeddingCount { expected: 1, found: 0 }));
        let two = vec![item("a", "k", "t", None), item("b", "k", "t", None)];
        assert_eq!(
            index.upsert_batch(two),
            Err(RetrievalError::Dense(DenseError::Dimension { expected: 4, found: 3 }))
        );
        assert!(index.is_empty());
    }

    #[test]
    fn batches_embed_once() {
        let embedder = Arc::new(HashedWords::default());
        let mut index =
            UserIndex::with_dense(UserIndexConfig::default(), embedder.clone(), Arc::new(ReferenceScorer)).expect("32");
        history(&mut index);
        let lists = index.search_batch(&["pasta", "bm25", "embeddings"], SearchMethod::Dense, 1, None).expect("ok");
        assert_eq!(embedder.calls.load(Ordering::Relaxed), 2);
        assert_eq!(lists.iter().map(|l| ids(l)[0]).collect::<Vec<_>>(), ["r1", "p1", "p2"]);
    }

    #[test]
    fn recent_is_newest_first_and_filtered() {
        let mut index = UserIndex::new(UserIndexConfig::default());
        history(&mut index);
        index.upsert(item("u1", "note", "undated", None)).expect("indexed");
        index.upsert(item("u2", "note", "undated too", None)).expect("indexed");
        let all: Vec<String> = index.recent(10, None).iter().map(|i| i.id.to_string()).collect();
        assert_eq!(all, ["p2", "r1", "p1", "u2", "u1"]);
        assert_eq!(index.recent(2, None).len(), 2);
        let papers: ItemFilter = Arc::new(|i: &Item| &*i.kind == "paper");
        let papers: Vec<String> = index.recent(10, Some(&papers)).iter().map(|i| i.id.to_string()).collect();
        assert_eq!(papers, ["p2", "p1"]);
    }
}
