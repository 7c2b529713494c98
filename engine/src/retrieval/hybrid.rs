//! Fusion of ranked lists (BM25 and dense) into one ranking.
//!
//! Two methods: reciprocal-rank fusion, which uses ranks only and so needs no calibration between
//! the lists' score scales, and weighted score fusion over min-max normalised scores. A document
//! missing from a list gets nothing from it. Both return `(id, fused score)` best first, equal
//! scores ranked by lower id, so that fusion is deterministic.

use std::collections::HashMap;

use super::bm25::rank_order;

/// How [`UserIndex`](super::UserIndex) combines its BM25 and dense rankings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// [`reciprocal_rank_fusion`] with constant `k`.
    Rrf { k: f32 },
    /// [`weighted_fusion`] with weight `alpha` on the dense list and `1 − alpha` on BM25.
    Weighted { alpha: f32 },
}

impl Fusion {
    /// The constant of Cormack et al. (2009), used by most hybrid search engines.
    pub const DEFAULT_RRF_K: f32 = 60.0;

    /// The fused ranking of a BM25 and a dense ranking.
    pub fn fuse(&self, bm25: &[(u32, f32)], dense: &[(u32, f32)]) -> Vec<(u32, f32)> {
        match *self {
            Fusion::Rrf { k } => reciprocal_rank_fusion(&[bm25, dense], k),
            Fusion::Weighted { alpha } => weighted_fusion(&[(bm25, 1.0 - alpha), (dense, alpha)]),
        }
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: Fusion::DEFAULT_RRF_K }
    }
}

/// `score(d) = Σ_lists 1 / (k + rank(d))`, ranks from 1. A list naming a document twice counts
/// its first (best) place.
pub fn reciprocal_rank_fusion(lists: &[&[(u32, f32)]], k: f32) -> Vec<(u32, f32)> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        for (rank, &(id, _)) in first_places(list) {
            *fused.entry(id).or_default() += 1.0 / (k + rank as f32);
        }
    }
    ranked(fused)
}

/// `score(d) = Σ_lists weight · (s(d) − min) / (max − min)` over each list's own scores; a list
/// whose scores are all equal gives each of its documents the full weight.
pub fn weighted_fusion(lists: &[(&[(u32, f32)], f32)]) -> Vec<(u32, f32)> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for &(list, weight) in lists {
        let scores = || list.iter().map(|h| h.1).filter(|s| s.is_finite());
        let min = scores().fold(f32::INFINITY, f32::min);
        let max = scores().fold(f32::NEG_INFINITY, f32::max);
        let range = max - min;
        for (_, &(id, score)) in first_places(list) {
            let normalised = if !score.is_finite() {
                0.0
            } else if range > 0.0 {
                (score - min) / range
            } else {
                1.0
            };
            *fused.entry(id).or_default() += weight * normalised;
        }
    }
    ranked(fused)
}

/// `(rank from 1, entry)` for the first entry of each id in `list`.
fn first_places(list: &[(u32, f32)]) -> impl Iterator<Item = (usize, &(u32, f32))> {
    let mut seen = std::collections::HashSet::new();
    list.iter().enumerate().filter(move |(_, h)| seen.insert(h.0)).map(|(i, h)| (i + 1, h))
}

fn ranked(fused: HashMap<u32, f32>) -> Vec<(u32, f32)> {
    let mut out: Vec<(u32, f32)> = fused.into_iter().collect();
    out.sort_unstable_by(rank_order);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[(u32, f32)], b: &[(u32, f32)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-6)
    }

    #[test]
    fn rrf_sums_reciprocal_ranks() {
        let bm25 = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let dense = [(3, 0.9), (1, 0.8)];
        let fused = reciprocal_rank_fusion(&[&bm25, &dense], 60.0);
        let expect = [(1, 1.0 / 61.0 + 1.0 / 62.0), (3, 1.0 / 63.0 + 1.0 / 61.0), (2, 1.0 / 62.0)];
        assert!(close(&fused, &expect), "{fused:?}");
    }

    #[test]
    fn rrf_ignores_scores_and_repeats() {
        let a = [(5, 1000.0), (6, -3.0), (5, 7.0)];
        let fused = reciprocal_rank_fusion(&[&a], 1.0);
        assert!(close(&fused, &[(5, 0.5), (6, 1.0 / 3.0)]), "{fused:?}");
    }

    #[test]
    fn equal_fused_scores_rank_by_id() {
        let fused = reciprocal_rank_fusion(&[&[(9, 1.0)], &[(4, 1.0)]], 60.0);
        assert_eq!(fused.iter().map(|h| h.0).collect::<Vec<_>>(), [4, 9]);
    }

    #[test]
    fn weighted_fusion_normalises_each_list() {
        let bm25 = [(1, 20.0), (2, 15.0), (3, 10.0)];
        let dense = [(3, 0.9), (4, 0.5)];
        let fused = weighted_fusion(&[(&bm25, 0.5), (&dense, 0.5)]);
        // bm25: 1 → 1, 2 → 0.5, 3 → 0; dense: 3 → 1, 4 → 0.
        assert!(close(&fused, &[(1, 0.5), (3, 0.5), (2, 0.25), (4, 0.0)]), "{fused:?}");
    }

    #[test]
    fn weighted_fusion_gives_a_flat_list_full_weight() {
        let fused = weighted_fusion(&[(&[(1, 3.0), (2, 3.0)], 0.3)]);
        assert!(close(&fused, &[(1, 0.3), (2, 0.3)]), "{fused:?}");
        assert!(weighted_fusion(&[(&[], 1.0)]).is_empty());
    }

    #[test]
    fn alpha_weighs_dense_against_bm25() {
        let bm25 = [(1, 2.0), (2, 1.0)];
        let dense = [(2, 0.9), (1, 0.1)];
        let top = |alpha| Fusion::Weighted { alpha }.fuse(&bm25, &dense)[0].0;
        assert_eq!(top(0.0), 1);
        assert_eq!(top(1.0), 2);
        assert_eq!(Fusion::default(), Fusion::Rrf { k: 60.0 });
    }
}
