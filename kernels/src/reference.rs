//! Plain Rust references for the kernels: obviously correct, not fast.
//!
//! Layouts are row-major: `n` vectors of dimension `dim` are one slice of `n * dim` floats.

use std::cmp::Ordering;

/// Scores of each query against each item: `out[q * n_items + i] = dot(query q, item i)`.
///
/// # Panics
/// If a slice's length is not a multiple of `dim`, or `dim` is zero.
pub fn dot_scores(queries: &[f32], items: &[f32], dim: usize) -> Vec<f32> {
    assert!(
        dim > 0 && queries.len().is_multiple_of(dim) && items.len().is_multiple_of(dim),
        "slices must hold whole vectors"
    );
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

/// `out[m × n] = lhs[m × k] · rhs[k × n]`, row-major.
pub fn matmul(lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert!(lhs.len() == m * k && rhs.len() == k * n, "shapes must match");
    let mut out = vec![0.0; m * n];
    for r in 0..m {
        for t in 0..k {
            let a = lhs[r * k + t];
            for c in 0..n {
                out[r * n + c] += a * rhs[t * n + c];
            }
        }
    }
    out
}

/// LayerNorm of each `h`-wide row in place: `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn layer_norm_rows(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (c, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * gamma[c] + beta[c];
        }
    }
}

/// The exact GELU: `x · Φ(x)`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// The error function (Abramowitz–Stegun 7.1.26 is too coarse for a reference; this is the
/// series/continued-fraction pair, accurate to ~1e-7 in f64).
pub fn erf(x: f32) -> f32 {
    let x = f64::from(x);
    let t = x.abs();
    let value = if t < 2.5 {
        // Maclaurin series: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut sum = 0.0f64;
        let mut term = t;
        let mut n = 0.0f64;
        while term.abs() > 1e-17 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -t * t / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc, evaluated bottom-up.
        let mut f = 0.0f64;
        for k in (1..60).rev() {
            f = f64::from(k) / 2.0 / (t + f);
        }
        1.0 - (-t * t).exp() / std::f64::consts::PI.sqrt() / (t + f)
    };
    (value.copysign(x)) as f32
}

/// Multi-head self-attention over `n` sequences of `seq_len` tokens: `qkv` rows are
/// `[q | k | v]`, each `heads * head_dim` wide; padding keys (mask 0) get no weight.
#[allow(clippy::too_many_arguments)] // the kernel's own parameters, one for one
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[u32],
    n: usize,
    seq_len: usize,
    heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    let width = heads * head_dim;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0.0; n * seq_len * width];
    for s in 0..n {
        for h in 0..heads {
            for i in 0..seq_len {
                let at =
                    |m: &'_ [f32], token: usize| -> Vec<f32> { m[token * width + h * head_dim..][..head_dim].to_vec() };
                let query = at(q, s * seq_len + i);
                let mut weights = Vec::with_capacity(seq_len);
                for j in 0..seq_len {
                    let token = s * seq_len + j;
                    if mask[token] != 0 {
                        let key = at(k, token);
                        weights.push((token, query.iter().zip(&key).map(|(a, b)| a * b).sum::<f32>() * scale));
                    }
                }
                let max = weights.iter().map(|w| w.1).fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = weights.iter().map(|w| (w.1 - max).exp()).sum();
                let o = &mut out[(s * seq_len + i) * width + h * head_dim..][..head_dim];
                for (token, w) in &weights {
                    let p = (w - max).exp() / total;
                    o.iter_mut().zip(at(v, *token)).for_each(|(o, v)| *o += p * v);
                }
            }
        }
    }
    out
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
    fn erf_matches_known_values() {
        for (x, want) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.0, 0.999_977_9)]
        {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {} != {want}", erf(x));
        }
    }

    #[test]
    fn matmul_multiplies() {
        assert_eq!(matmul(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2, 2, 2), vec![19.0, 22.0, 43.0, 50.0]);
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
