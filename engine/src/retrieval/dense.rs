//! A dense vector index: unit-length embeddings ranked by dot product (cosine similarity).
//!
//! Vectors live in one contiguous row-major `Vec<f32>` of `dim`-wide rows, the layout the scoring
//! kernels take without copying. Rows are named by caller-chosen `u32` ids; a remove moves the
//! last row into the hole (swap-remove), so rows stay contiguous and the row → id map stays
//! exact. Scoring goes through [`DenseScorer`] so that the CubeCL kernels can replace the plain
//! Rust [`ReferenceScorer`] without the index changing.

use std::collections::HashMap;

use tailor_kernels::reference;

/// Ranks rows by dot product; the seam where GPU or SIMD kernels plug in.
pub trait DenseScorer: Send + Sync {
    /// For each of `queries.len()/dim` queries, the k best rows of `items` (row-major, `dim` wide) by dot product, best first.
    fn top_k(&self, queries: &[f32], items: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<(u32, f32)>>, String>;
}

/// [`DenseScorer`] on `tailor_kernels::reference`: obviously correct, not fast.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceScorer;

impl DenseScorer for ReferenceScorer {
    fn top_k(&self, queries: &[f32], items: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<(u32, f32)>>, String> {
        if dim == 0 || !queries.len().is_multiple_of(dim) || !items.len().is_multiple_of(dim) {
            return Err(format!(
                "slices of {} and {} floats do not hold whole vectors of dimension {dim}",
                queries.len(),
                items.len()
            ));
        }
        let n_items = items.len() / dim;
        if u32::try_from(n_items).is_err() {
            return Err(format!("{n_items} rows do not fit u32 row numbers"));
        }
        if n_items == 0 {
            return Ok(vec![Vec::new(); queries.len() / dim]);
        }
        let scores = reference::dot_scores(queries, items, dim);
        Ok(scores
            .chunks_exact(n_items)
            .map(|row| reference::top_k(row, k).into_iter().map(|(i, s)| (i as u32, s)).collect())
            .collect())
    }
}

/// Why a vector was refused or a search failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DenseError {
    #[error("a dense index needs a dimension of at least 1")]
    ZeroDimension,
    #[error("vector of dimension {found}, the index holds dimension {expected}")]
    Dimension { expected: usize, found: usize },
    #[error("vector holds a NaN or infinite value")]
    NonFinite,
    #[error("dense scorer failed: {message}")]
    Scorer { message: String },
    #[error("dense scorer answered {found} result lists for {expected} queries")]
    ScorerLists { expected: usize, found: usize },
    #[error("dense scorer returned row {row} of {rows}")]
    ScorerRow { row: u32, rows: usize },
}

/// Unit-length vectors of one dimension, named by `u32` ids.
#[derive(Debug, Clone)]
pub struct DenseIndex {
    dim: usize,
    /// `row_ids.len() * dim` floats.
    vectors: Vec<f32>,
    row_ids: Vec<u32>,
    rows: HashMap<u32, u32>,
}

impl DenseIndex {
    pub fn new(dim: usize) -> Result<DenseIndex, DenseError> {
        if dim == 0 {
            return Err(DenseError::ZeroDimension);
        }
        Ok(DenseIndex { dim, vectors: Vec::new(), row_ids: Vec::new(), rows: HashMap::new() })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.row_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_ids.is_empty()
    }

    pub fn contains(&self, id: u32) -> bool {
        self.rows.contains_key(&id)
    }

    /// The stored (normalised) vector of `id`.
    pub fn get(&self, id: u32) -> Option<&[f32]> {
        self.rows.get(&id).map(|&row| self.row(row as usize))
    }

    /// Whether `insert` would accept `vector`.
    pub fn validate(&self, vector: &[f32]) -> Result<(), DenseError> {
        if vector.len() != self.dim {
            return Err(DenseError::Dimension { expected: self.dim, found: vector.len() });
        }
        if !vector.iter().all(|x| x.is_finite()) {
            return Err(DenseError::NonFinite);
        }
        Ok(())
    }

    /// Stores `vector`, scaled to unit length, as `id`, replacing what `id` had.
    pub fn insert(&mut self, id: u32, vector: &[f32]) -> Result<(), DenseError> {
        self.validate(vector)?;
        let row = match self.rows.get(&id) {
            Some(&row) => row as usize,
            None => {
                let row = self.row_ids.len();
                self.rows.insert(id, u32::try_from(row).expect("invariant: fewer than 2^32 rows"));
                self.row_ids.push(id);
                self.vectors.resize(self.vectors.len() + self.dim, 0.0);
                row
            }
        };
        let slot = &mut self.vectors[row * self.dim..(row + 1) * self.dim];
        slot.copy_from_slice(vector);
        reference::l2_normalize(slot);
        Ok(())
    }

    /// Removes `id`; false if it was not there.
    pub fn remove(&mut self, id: u32) -> bool {
        let Some(row) = self.rows.remove(&id) else {
            return false;
        };
        let row = row as usize;
        let last = self.row_ids.len() - 1;
        if row != last {
            self.vectors.copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            let moved = self.row_ids[last];
            self.row_ids[row] = moved;
            self.rows.insert(moved, u32::try_from(row).expect("invariant: fewer than 2^32 rows"));
        }
        self.row_ids.pop();
        self.vectors.truncate(last * self.dim);
        true
    }

    /// The `k` ids most similar to `query` among those `filter` accepts, best first.
    pub fn search(
        &self,
        scorer: &dyn DenseScorer,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(u32, f32)>, DenseError> {
        let mut lists = self.search_batch(scorer, query, k, filter)?;
        Ok(lists.pop().unwrap_or_default())
    }

    /// [`search`](Self::search) for `queries.len() / dim` queries at once (one scorer call).
    ///
    /// With a filter, the accepted rows are gathered into a scratch matrix and scored alone:
    /// scoring everything and filtering afterwards would need k to grow until enough rows pass.
    pub fn search_batch(
        &self,
        scorer: &dyn DenseScorer,
        queries: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<Vec<(u32, f32)>>, DenseError> {
        if !queries.len().is_multiple_of(self.dim) {
            return Err(DenseError::Dimension { expected: self.dim, found: queries.len() });
        }
        let n_queries = queries.len() / self.dim;
        let mut normalised = queries.to_vec();
        for q in normalised.chunks_exact_mut(self.dim) {
            self.validate(q)?;
            reference::l2_normalize(q);
        }
        let gathered;
        let (items, row_ids) = match filter {
            None => (&self.vectors[..], &self.row_ids[..]),
            Some(accept) => {
                let mut vectors = Vec::new();
                let mut ids = Vec::new();
                for (row, &id) in self.row_ids.iter().enumerate() {
                    if accept(id) {
                        vectors.extend_from_slice(self.row(row));
                        ids.push(id);
                    }
                }
                gathered = (vectors, ids);
                (&gathered.0[..], &gathered.1[..])
            }
        };
        if k == 0 || row_ids.is_empty() || n_queries == 0 {
            return Ok(vec![Vec::new(); n_queries]);
        }
        let k = k.min(row_ids.len());
        let lists = scorer.top_k(&normalised, items, self.dim, k).map_err(|message| DenseError::Scorer { message })?;
        if lists.len() != n_queries {
            return Err(DenseError::ScorerLists { expected: n_queries, found: lists.len() });
        }
        lists
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .take(k)
                    .map(|(row, score)| match row_ids.get(row as usize) {
                        Some(&id) => Ok((id, score)),
                        None => Err(DenseError::ScorerRow { row, rows: row_ids.len() }),
                    })
                    .collect()
            })
            .collect()
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.vectors[row * self.dim..(row + 1) * self.dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(rows: &[(u32, [f32; 2])]) -> DenseIndex {
        let mut idx = DenseIndex::new(2).expect("dimension 2");
        for (id, v) in rows {
            idx.insert(*id, v).expect("valid vector");
        }
        idx
    }

    fn ids(hits: &[(u32, f32)]) -> Vec<u32> {
        hits.iter().map(|h| h.0).collect()
    }

    #[test]
    fn refuses_zero_dimension() {
        assert_eq!(DenseIndex::new(0).unwrap_err(), DenseError::ZeroDimension);
    }

    #[test]
    fn stores_vectors_at_unit_length() {
        let idx = index(&[(7, [3.0, 4.0]), (8, [0.0, 0.0])]);
        assert_eq!(idx.get(7), Some(&[0.6, 0.8][..]));
        assert_eq!(idx.get(8), Some(&[0.0, 0.0][..]));
    }

    #[test]
    fn refuses_wrong_dimension_and_non_finite_values() {
        let mut idx = index(&[]);
        assert_eq!(idx.insert(1, &[1.0]), Err(DenseError::Dimension { expected: 2, found: 1 }));
        assert_eq!(idx.insert(1, &[f32::NAN, 1.0]), Err(DenseError::NonFinite));
        assert_eq!(idx.insert(1, &[f32::INFINITY, 1.0]), Err(DenseError::NonFinite));
        assert!(idx.is_empty());
        let scorer = ReferenceScorer;
        assert!(matches!(idx.search(&scorer, &[1.0, 2.0, 3.0], 1, None), Err(DenseError::Dimension { .. })));
        assert_eq!(idx.search(&scorer, &[f32::NAN, 0.0], 1, None), Err(DenseError::NonFinite));
    }

    #[test]
    fn ranks_by_cosine_similarity() {
        let idx = index(&[(10, [1.0, 0.0]), (11, [0.0, 5.0]), (12, [1.0, 1.0])]);
        let hits = idx.search(&ReferenceScorer, &[0.0, 2.0], 3, None).expect("search");
        assert_eq!(ids(&hits), [11, 12, 10]);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        assert!((hits[1].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(ids(&idx.search(&ReferenceScorer, &[1.0, 0.1], 1, None).expect("search")), [10]);
    }

    #[test]
    fn insert_on_an_existing_id_replaces_its_vector() {
        let mut idx = index(&[(1, [1.0, 0.0]), (2, [0.0, 1.0])]);
        idx.insert(1, &[0.0, -1.0]).expect("valid");
        assert_eq!(idx.len(), 2);
        assert_eq!(ids(&idx.search(&ReferenceScorer, &[0.0, -1.0], 1, None).expect("search")), [1]);
    }

    #[test]
    fn remove_swaps_the_last_row_into_the_hole() {
        let mut idx = index(&[(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [-1.0, 0.0])]);
        assert!(idx.remove(1));
        assert!(!idx.remove(1));
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.get(3), Some(&[-1.0, 0.0][..]));
        assert_eq!(idx.get(2), Some(&[0.0, 1.0][..]));
        assert_eq!(ids(&idx.search(&ReferenceScorer, &[-1.0, 0.0], 2, None).expect("search")), [3, 2]);
        assert!(idx.remove(3) && idx.remove(2));
        assert!(idx.search(&ReferenceScorer, &[1.0, 0.0], 2, None).expect("search").is_empty());
    }

    #[test]
    fn filter_applies_before_the_cut() {
        let idx = index(&[(1, [1.0, 0.0]), (2, [0.9, 0.1]), (3, [0.0, 1.0])]);
        let not_one = |id: u32| id != 1;
        let hits = idx.search(&ReferenceScorer, &[1.0, 0.0], 1, Some(&not_one)).expect("search");
        assert_eq!(ids(&hits), [2]);
        let nothing = |_: u32| false;
        assert!(idx.search(&ReferenceScorer, &[1.0, 0.0], 1, Some(&nothing)).expect("search").is_empty());
    }

    #[test]
    fn batch_answers_each_query() {
        let idx = index(&[(1, [1.0, 0.0]), (2, [0.0, 1.0])]);
        let lists = idx.search_batch(&ReferenceScorer, &[1.0, 0.0, 0.0, 1.0, 1.0, 0.2], 1, None).expect("search");
        assert_eq!(lists.iter().map(|l| ids(l)).collect::<Vec<_>>(), [[1], [2], [1]]);
    }

    #[test]
    fn reports_a_misbehaving_scorer() {
        struct Broken;
        impl DenseScorer for Broken {
            fn top_k(&self, _: &[f32], _: &[f32], _: usize, _: usize) -> Result<Vec<Vec<(u32, f32)>>, String> {
                Ok(vec![vec![(99, 1.0)]])
            }
        }
        let idx = index(&[(1, [1.0, 0.0])]);
        assert_eq!(idx.search(&Broken, &[1.0, 0.0], 1, None), Err(DenseError::ScorerRow { row: 99, rows: 1 }));
        assert_eq!(
            idx.search_batch(&Broken, &[1.0, 0.0, 0.0, 1.0], 1, None),
            Err(DenseError::ScorerLists { expected: 2, found: 1 })
        );
    }

    #[test]
    fn reference_scorer_checks_shapes() {
        assert!(ReferenceScorer.top_k(&[1.0], &[1.0, 2.0], 2, 1).is_err());
        assert!(ReferenceScorer.top_k(&[1.0], &[1.0], 0, 1).is_err());
        assert_eq!(ReferenceScorer.top_k(&[1.0, 0.0], &[], 2, 3), Ok(vec![vec![]]));
    }
}
