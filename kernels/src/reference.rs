//! Plain Rust references for the kernels: obviously correct, not fast.
//!
//! Layouts are row-major: `n` vectors of dimension `dim` are one slice of `n * dim` floats.

use std::cmp::Ordering;

/// Scores of each query against each item: `out[q * n_items + i] = dot(query q, item i)`.
///
/// # Panics
/// If a slice's length is not a multiple of `dim`, or `dim` is zero.
pub fn dot_scores(queries: &[f32], items: &[f32], dim: usize) -> Vec<f32> {
    assert!(dim > 0 && queries.len() % dim == 0 && items.len() % dim == 0, "slices must hold whole vectors");
    let mut out = Vec::with_capacity((queries.len() / dim) * (items.len() / dim));
    for q in queries.chunks_exact(dim) {
        for item in items.chunks_exact(dim) {
            out.push(q.iter().zip(item).map(|(a, b)| a * b).sum());
        }
    }
    out
}

/// The `k` best (index, score) pairs, best first; ties go to the lower index; NaN scores last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| compare_desc(a.1, b.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

fn compare_desc(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.partial_cmp(&a).expect("invariant: neither is NaN"),
    }
}

/// Mean of the token vectors whose mask is 1: `hidden` is `tokens * dim`, `mask` is `tokens`.
/// An all-zero mask gives the zero vector.
pub fn mean_pool(hidden: &[f32], mask: &[u8], dim: usize) -> Vec<f32> {
    assert_eq!(hidden.len(), mask.len() * dim, "one mask entry per token");
    let mut out = vec![0.0; dim];
    let mut count = 0.0f32;
    for (token, &m) in hidden.chunks_exact(dim).zip(mask) {
        if m != 0 {
            count += 1.0;
            out.iter_mut().zip(token).for_each(|(o, t)| *o += t);
        }
    }
    if count > 0.0 {
        out.iter_mut().for_each(|o| *o /= count);
    }
    out
}

/// Scales a vector to unit length; the zero vector stays zero.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_every_query_against_every_item() {
        let s = dot_scores(&[1.0, 0.0, 0.0, 2.0], &[1.0, 1.0, 3.0, -1.0, 0.0, 0.5], 2);
        assert_eq!(s, vec![1.0, 3.0, 0.0, 2.0, -2.0, 1.0]);
    }

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        assert_eq!(top_k(&[0.5, 0.9, 0.5, f32::NAN, 0.1], 3), vec![(1, 0.9), (0, 0.5), (2, 0.5)]);
        assert_eq!(top_k(&[1.0], 5).len(), 1);
    }

    #[test]
    fn mean_pool_ignores_padding() {
        let pooled = mean_pool(&[1.0, 2.0, 3.0, 4.0, 100.0, 100.0], &[1, 1, 0], 2);
        assert_eq!(pooled, vec![2.0, 3.0]);
        assert_eq!(mean_pool(&[1.0, 1.0], &[0], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn normalizes_to_unit_length() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut zero = vec![0.0; 3];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }
}
