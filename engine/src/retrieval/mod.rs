//! Retrieval over a user's own history: BM25, dense and hybrid search, and their evaluation.
//!
//! - [`analyzer`]: text → terms (Unicode words, lowercase, stopwords, English stemming);
//! - [`bm25`]: an incremental inverted index scored as Lucene's BM25;
//! - [`dense`]: unit-length embeddings ranked by dot product through a pluggable [`DenseScorer`];
//! - [`hybrid`]: reciprocal-rank and weighted score fusion;
//! - [`index`]: [`UserIndex`], one user's items with both indices kept in step;
//! - [`history`]: [`MemoryHistory`], every user's index behind the host's `Search` service;
//! - [`beir`] and [`metrics`]: BEIR datasets, nDCG@k and recall@k, for `tailor eval retrieval`.
//!
//! ```
//! use std::sync::Arc;
//! use tailor_dsl::types::Item;
//! use tailor_engine::host::services::SearchMethod;
//! use tailor_engine::retrieval::{UserIndex, UserIndexConfig};
//!
//! let mut index = UserIndex::new(UserIndexConfig::default());
//! let item = |id: &str, text: &str| {
//!     Arc::new(Item { id: id.into(), kind: "paper".into(), text: text.into(), timestamp: None, fields: Default::default() })
//! };
//! index.upsert_batch(vec![item("a", "Sparse retrieval with BM25"), item("b", "Cooking pasta")]).unwrap();
//! let hits = index.search("retrieving sparsely", SearchMethod::Bm25, 5, None).unwrap();
//! assert_eq!(&*hits[0].item.id, "a");
//! ```

pub mod analyzer;
pub mod beir;
pub mod bm25;
pub mod dense;
pub mod history;
pub mod hybrid;
pub mod index;
pub mod kernels;
pub mod metrics;

pub use analyzer::{Analyzer, AnalyzerOptions};
pub use bm25::{Bm25Index, Bm25Params, InvalidBm25Params};
pub use dense::{DenseError, DenseIndex, DenseScorer, ReferenceScorer};
pub use history::MemoryHistory;
pub use hybrid::Fusion;
pub use index::{RetrievalError, TextEmbedder, UserIndex, UserIndexConfig};
pub use kernels::{KernelScorer, MiniLm};
