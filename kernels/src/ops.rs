//! The CubeCL kernels themselves. Each one is written once and runs on every runtime; each has
//! a plain Rust twin in [`crate::reference`] that the tests compare it with.
//!
//! Sizes that change from call to call (rows, sequence length) are runtime arguments, so a kernel
//! is compiled once per process and reused for every batch; only the model's constants and the
//! vector width are compile-time.
//!
//! Work is split so a unit owns contiguous memory: on the CPU runtime a unit is a thread and
//! contiguous rows keep its prefetcher busy; every kernel bounds-checks its unit's range.

use cubecl::prelude::*;

/// The sum of a vector's lanes.
#[cube]
fn lane_sum<N: Size>(v: Vector<f32, N>) -> f32 {
    let mut s = 0.0f32;
    #[unroll]
    for l in 0..N::value() {
        s += v.extract(l);
    }
    s
}

/// `scores[q * n_items + i] = queries[q] · items[i]` for every query `q` and item `i`.
///
/// Each unit takes a contiguous run of `rows_per_unit` item rows and scores every query against
/// each row while it is in cache, so the item matrix — the large operand — is read from memory
/// exactly once whatever the number of queries. Rows are `dim_vectors` vectors wide.
#[cube(launch_unchecked)]
pub fn dot_scores<N: Size>(
    queries: &[Vector<f32, N>],
    items: &[Vector<f32, N>],
    scores: &mut [f32],
    n_items: u32,
    n_queries: u32,
    dim_vectors: u32,
    rows_per_unit: u32,
) {
    let first = ABSOLUTE_POS as u32 * rows_per_unit;
    let last = u32::min(first + rows_per_unit, n_items);
    let dv = dim_vectors as usize;
    for i in first..last {
        let row = i as usize * dv;
        for q in 0..n_queries {
            let qrow = q as usize * dv;
            let mut acc = Vector::<f32, N>::zeroed();
            for d in 0..dv {
                acc += queries[qrow + d] * items[row + d];
            }
            scores[q as usize * n_items as usize + i as usize] = lane_sum::<N>(acc);
        }
    }
}

/// One normalised row: `out = (x - mean) / sqrt(var + eps) * gamma + beta`, over `h` values
/// starting at `at` (in place in `x`).
#[cube]
fn layer_norm_row(x: &mut [f32], at: usize, gamma: &[f32], beta: &[f32], h: usize, eps: f32) {
    let mut sum = 0.0f32;
    for c in 0..h {
        sum += x[at + c];
    }
    let mean = sum / h as f32;
    let mut var = 0.0f32;
    for c in 0..h {
        let d = x[at + c] - mean;
        var += d * d;
    }
    let inv = 1.0f32 / Sqrt::sqrt(var / h as f32 + eps);
    for c in 0..h {
        x[at + c] = (x[at + c] - mean) * inv * gamma[c] + beta[c];
    }
}

/// BERT's input layer for every token row: word + position + token-type (0) embeddings, then
/// LayerNorm. Row `r` is token `r % seq_len` of its sequence.
#[cube(launch_unchecked)]
pub fn embed_layer_norm(
    ids: &[u32],
    word: &[f32],
    position: &[f32],
    token_type: &[f32],
    gamma: &[f32],
    beta: &[f32],
    out: &mut [f32],
    rows: u32,
    seq_len: u32,
    h: u32,
    eps: f32,
) {
    let r = ABSOLUTE_POS as u32;
    if r < rows {
        let hs = h as usize;
        let at = r as usize * hs;
        let w = ids[r as usize] as usize * hs;
        let p = (r % seq_len) as usize * hs;
        for c in 0..hs {
            out[at + c] = word[w + c] + position[p + c] + token_type[c];
        }
        layer_norm_row(out, at, gamma, beta, hs, eps);
    }
}

/// `x[r, c] += bias[c]` for a `rows × cols` row-major matrix (`cols` in vectors); one unit
/// per row.
#[cube(launch_unchecked)]
pub fn add_bias<N: Size>(x: &mut [Vector<f32, N>], bias: &[Vector<f32, N>], rows: u32, cols: u32) {
    let r = ABSOLUTE_POS as u32;
    if r < rows {
        let at = r as usize * cols as usize;
        for c in 0..cols as usize {
            x[at + c] += bias[c];
        }
    }
}

/// `x[r, c] = gelu(x[r, c] + bias[c])` with the exact (erf) GELU BERT uses; one unit per row.
#[cube(launch_unchecked)]
pub fn add_bias_gelu<N: Size>(x: &mut [Vector<f32, N>], bias: &[Vector<f32, N>], rows: u32, cols: u32) {
    let r = ABSOLUTE_POS as u32;
    if r < rows {
        let at = r as usize * cols as usize;
        let half = Vector::<f32, N>::new(0.5f32);
        let one = Vector::<f32, N>::new(1.0f32);
        let rsqrt2 = Vector::<f32, N>::new(0.70710677f32);
        for c in 0..cols as usize {
            let v = x[at + c] + bias[c];
            x[at + c] = half * v * (one + Erf::erf(v * rsqrt2));
        }
    }
}

/// The post-norm residual of a BERT sub-layer, per row (`h` in vectors):
/// `residual = LayerNorm(residual + x + bias)`.
#[cube(launch_unchecked)]
pub fn add_bias_residual_layer_norm<N: Size>(
    x: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    residual: &mut [Vector<f32, N>],
    gamma: &[Vector<f32, N>],
    beta: &[Vector<f32, N>],
    rows: u32,
    h: u32,
    eps: f32,
) {
    let r = ABSOLUTE_POS as u32;
    if r < rows {
        let hs = h as usize;
        let at = r as usize * hs;
        let mut sum = Vector::<f32, N>::zeroed();
        for c in 0..hs {
            let v = residual[at + c] + x[at + c] + bias[c];
            residual[at + c] = v;
            sum += v;
        }
        let width = (hs * N::value()) as f32;
        let mean = Vector::<f32, N>::new(lane_sum::<N>(sum) / width);
        let mut var = Vector::<f32, N>::zeroed();
        for c in 0..hs {
            let d = residual[at + c] - mean;
            var += d * d;
        }
        let inv = Vector::<f32, N>::new(1.0f32 / Sqrt::sqrt(lane_sum::<N>(var) / width + eps));
        for c in 0..hs {
            residual[at + c] = (residual[at + c] - mean) * inv * gamma[c] + beta[c];
        }
    }
}

/// Multi-head self-attention with a padding mask, one unit per (sequence, head, query token).
///
/// `q`, `k` and `v` hold each token's projections, `heads * head_vectors` vectors wide, as does
/// `out`; `mask[t]` is 1 for a real token and 0 for padding. The softmax is computed online
/// (running maximum and sum; the output is rescaled only when the maximum grows), so no
/// `seq_len`-sized scratch is needed and one compiled kernel serves every sequence length.
#[cube(launch_unchecked)]
pub fn attention<N: Size>(
    q: &[Vector<f32, N>],
    k: &[Vector<f32, N>],
    v: &[Vector<f32, N>],
    mask: &[u32],
    out: &mut [Vector<f32, N>],
    n_seqs: u32,
    seq_len: u32,
    heads: u32,
    head_vectors: u32,
    scale: f32,
) {
    let unit = ABSOLUTE_POS as u32;
    if unit < n_seqs * heads * seq_len {
        let i = unit % seq_len;
        let head = (unit / seq_len) % heads;
        let seq = unit / (seq_len * heads);
        let hv = head_vectors as usize;
        let width = (heads * head_vectors) as usize;
        let at = (seq * seq_len + i) as usize * width + head as usize * hv;
        for d in 0..hv {
            out[at + d] = Vector::<f32, N>::zeroed();
        }
        let mut running_max = f32::new(-3.0e38f32);
        let mut running_sum = 0.0f32;
        for j in 0..seq_len {
            let key_token = (seq * seq_len + j) as usize;
            if mask[key_token] != 0 {
                let kv_at = key_token * width + head as usize * hv;
                let mut acc = Vector::<f32, N>::zeroed();
                for d in 0..hv {
                    acc += q[at + d] * k[kv_at + d];
                }
                let s = lane_sum::<N>(acc) * scale;
                if s > running_max {
                    let correction = Exp::exp(running_max - s);
                    running_sum = running_sum * correction + 1.0f32;
                    let c = Vector::<f32, N>::new(correction);
                    for d in 0..hv {
                        out[at + d] = out[at + d] * c + v[kv_at + d];
                    }
                    running_max = s;
                } else {
                    let p = Exp::exp(s - running_max);
                    running_sum += p;
                    let pv = Vector::<f32, N>::new(p);
                    for d in 0..hv {
                        out[at + d] += pv * v[kv_at + d];
                    }
                }
            }
        }
        if running_sum > 0.0f32 {
            let inv = Vector::<f32, N>::new(1.0f32 / running_sum);
            for d in 0..hv {
                out[at + d] *= inv;
            }
        }
    }
}

/// Sentence embeddings: the mean of each sequence's real (unmasked) token rows, L2-normalised;
/// one unit per sequence.
#[cube(launch_unchecked)]
pub fn mean_pool_normalize(hidden: &[f32], mask: &[u32], out: &mut [f32], n_seqs: u32, seq_len: u32, h: u32) {
    let s = ABSOLUTE_POS as u32;
    if s < n_seqs {
        let hs = h as usize;
        let o = s as usize * hs;
        for c in 0..hs {
            out[o + c] = 0.0f32;
        }
        let mut count = 0.0f32;
        for t in 0..seq_len {
            let token = (s * seq_len + t) as usize;
            if mask[token] != 0 {
                count += 1.0f32;
                for c in 0..hs {
                    out[o + c] += hidden[token * hs + c];
                }
            }
        }
        let mut norm = 0.0f32;
        for c in 0..hs {
            let v = out[o + c] / select(count > 1.0f32, count, 1.0f32);
            out[o + c] = v;
            norm += v * v;
        }
        let length = Sqrt::sqrt(norm);
        let inv = 1.0f32 / select(length > 1.0e-12f32, length, 1.0e-12f32);
        for c in 0..hs {
            out[o + c] *= inv;
        }
    }
}
