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

/// `e^x` on every lane, without a call per lane: `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (Cody–Waite, `ln 2` in two parts), `e^r` by Cephes' degree-6 polynomial (about 1 ulp), and
/// `2^n` built in the exponent bits. `x` is clamped to [−87.3, 88.3], so a very negative `x`
/// (a masked score) gives about 1e-38 rather than 0, and nothing overflows.
#[cube]
pub fn vector_exp<N: Size>(x: Vector<f32, N>) -> Vector<f32, N> {
    let lo = Vector::<f32, N>::new(-87.3f32);
    let hi = Vector::<f32, N>::new(88.3f32);
    let x = select_many(x.less_than(&lo), lo, select_many(x.greater_than(&hi), hi, x));
    let n = Floor::floor(x * Vector::new(std::f32::consts::LOG2_E) + Vector::new(0.5f32));
    let r = x - n * Vector::new(0.693_359_4f32) - n * Vector::new(-2.121_944_4e-4f32);
    let mut p = Vector::<f32, N>::new(1.987_569_1e-4f32);
    p = p * r + Vector::new(1.398_199_9e-3f32);
    p = p * r + Vector::new(8.333_452e-3f32);
    p = p * r + Vector::new(4.166_579_6e-2f32);
    p = p * r + Vector::new(0.166_666_65f32);
    p = p * r + Vector::new(0.5f32);
    let e_r = p * r * r + r + Vector::new(1.0f32);
    let bits = Vector::<u32, N>::cast_from(Vector::<i32, N>::cast_from(n) + Vector::new(127i32)) << Vector::new(23u32);
    e_r * Vector::<f32, N>::reinterpret(bits)
}

/// The exact (erf) GELU on every lane: `x/2 (1 + erf(x/√2))`, with erf by Abramowitz & Stegun
/// 7.1.26 (error ≤ 1.5e-7) over [`vector_exp`].
#[cube]
pub fn vector_gelu<N: Size>(x: Vector<f32, N>) -> Vector<f32, N> {
    let one = Vector::<f32, N>::new(1.0f32);
    let z = x * Vector::new(std::f32::consts::FRAC_1_SQRT_2);
    let a = select_many(z.less_than(&Vector::new(0.0f32)), -z, z);
    let t = one / (one + Vector::new(0.327_591_1f32) * a);
    let poly = ((((Vector::new(1.061_405_4f32) * t + Vector::new(-1.453_152f32)) * t + Vector::new(1.421_413_7f32))
        * t
        + Vector::new(-0.284_496_74f32))
        * t
        + Vector::new(0.254_829_6f32))
        * t;
    let erf_a = one - poly * vector_exp::<N>(-a * a);
    let erf = select_many(z.less_than(&Vector::new(0.0f32)), -erf_a, erf_a);
    Vector::new(0.5f32) * x * (one + erf)
}

/// `scores[q * stride + i] = queries[q] · items[i]` for every query `q` and item `i`, and
/// `f32::MIN` for `n_items ≤ i < stride` (the padding that lets top-k cut rows into equal
/// pieces without another pass; WGSL has no literal for infinity).
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
    stride: u32,
    n_queries: u32,
    dim_vectors: u32,
    rows_per_unit: u32,
) {
    let first = ABSOLUTE_POS as u32 * rows_per_unit;
    let last = u32::min(first + rows_per_unit, stride);
    let dv = dim_vectors as usize;
    for i in first..last {
        let row = i as usize * dv;
        for q in 0..n_queries {
            let at = q as usize * stride as usize + i as usize;
            if i < n_items {
                let qrow = q as usize * dv;
                let mut acc = Vector::<f32, N>::zeroed();
                for d in 0..dv {
                    acc += queries[qrow + d] * items[row + d];
                }
                scores[at] = lane_sum::<N>(acc);
            } else {
                scores[at] = f32::MIN;
            }
        }
    }
}

/// [`dot_scores`] for the CPU runtime and several queries, with lanes over queries instead of
/// dimensions: `queries_t` holds the queries transposed in tiles of `N` (vector `t · dim + d`
/// has dimension `d` of queries `t·N ..`, zero past `n_queries`), so a score needs no
/// horizontal sum. A step takes `items_per_step` item rows: per dimension one vector of the
/// tile and a broadcast element of each row, `items_per_step` multiply-adds; each lane of the
/// results is then written to its query's row. As in [`gemm`], one cube is launched and unit
/// `u` of its `CUBE_DIM_X` takes the `u`-th share of the steps, so the items are read once, in
/// order; rows from `n_items` to `stride` get `f32::MIN`.
#[cube(launch_unchecked)]
pub fn dot_scores_lanes<N: Size>(
    queries_t: &[Vector<f32, N>],
    items: &[f32],
    scores: &mut [f32],
    n_items: u32,
    stride: u32,
    n_queries: u32,
    dim: u32,
    #[comptime] items_per_step: usize,
) {
    let (n, st, nq, d) = (n_items as usize, stride as usize, n_queries as usize, dim as usize);
    let steps = st.div_ceil(items_per_step);
    let tiles = nq.div_ceil(N::value());
    let units = CUBE_DIM_X as usize;
    let unit = UNIT_POS_X as usize;
    for step in steps * unit / units..steps * (unit + 1) / units {
        let i0 = step * items_per_step;
        for t in 0..tiles {
            // Rows past the items read the last one again; their scores are never written.
            let mut acc = Array::<Vector<f32, N>>::new(items_per_step);
            lanes_step::<N>(queries_t, items, &mut acc, i0, n, t * d, d, items_per_step);
            #[unroll]
            for j in 0..items_per_step {
                let i = i0 + j;
                if i < st {
                    #[unroll]
                    for l in 0..N::value() {
                        let q = t * N::value() + l;
                        if q < nq {
                            scores[q * st + i] = select(i < n, acc[j].extract(l), f32::MIN);
                        }
                    }
                }
            }
        }
    }
}

/// One step of the lanes kernels: `acc[j]` = the scores of item row `i0 + j` (row `n - 1` past
/// the end) against the tile of `N` queries whose transposed vectors start at `q_at`. Per
/// dimension one vector of the tile and a broadcast element of each row, `items_per_step`
/// multiply-adds, and a [`prefetch`](crate::prefetch::prefetch) of the rows two steps on.
#[cube]
#[allow(clippy::too_many_arguments)]
fn lanes_step<N: Size>(
    queries_t: &[Vector<f32, N>],
    items: &[f32],
    acc: &mut Array<Vector<f32, N>>,
    i0: usize,
    n: usize,
    q_at: usize,
    d: usize,
    #[comptime] items_per_step: usize,
) {
    let mut row = Array::<usize>::new(items_per_step);
    #[unroll]
    for j in 0..items_per_step {
        row[j] = usize::min(i0 + j, n - 1) * d;
        acc[j] = Vector::<f32, N>::zeroed();
    }
    // The rows two steps on (this unit's next-but-one step), `items_per_step` floats a
    // dimension, are fetched into cache while this step computes: with 16 queries a row costs
    // too many multiply-adds for the core to keep enough loads in flight on its own. Near the
    // end the window stops at the last rows; a matrix smaller than a step prefetches its start.
    let (span, total) = (items_per_step * d, n * d);
    let ahead = select(total > span, usize::min((i0 + 2 * items_per_step) * d, total - span), 0);
    let stride = select(total > span, items_per_step, 0);
    for dd in 0..d {
        crate::prefetch::prefetch(&items[ahead + dd * stride]);
        let qv = queries_t[q_at + dd];
        #[unroll]
        for j in 0..items_per_step {
            acc[j] += qv * Vector::<f32, N>::new(items[row[j] + dd]);
        }
    }
}

/// [`dot_scores_lanes`] with the top-k selection fused in, so no score goes to memory: each
/// unit keeps, for every query, a list of the `k` best rows it has scored, best first. Unit
/// `u`'s list for query `q` is `best[(u · padded + q) · k ..]` with the rows in `best_ids`
/// (`padded` = queries rounded up to whole tiles of `N`); an empty slot has id `u32::MAX`. The
/// host merges the units' lists ([`crate::Compute::top_k_resident`]).
///
/// A step scores `items_per_step` rows against a tile of queries as [`dot_scores_lanes`] does,
/// then compares the rows' lane-wise maximum with `limits`, the vector of each query's current
/// k-th best score (unit `u`, tile `t` at `limits[u · tiles + t]`; −∞ while a list has room, +∞
/// in lanes past `n_queries`). Only a step that beats some limit looks at single scores. With
/// `n` rows that is about `k · ln(n / k)` steps per query and unit, so the loop is almost
/// always the multiply-adds and one comparison. Units take blocks of `block_steps` steps from
/// the counter `next_block` (0 at launch) as they finish the last, so none idles while another
/// still works. A unit's blocks, and so its rows, come in increasing order, so a score equal to
/// a listed one goes below it: ties keep the lower index. A NaN score ranks
/// below every number, as in [`crate::reference::top_k`]. The kernel fills `best`, `best_ids`
/// and `limits` itself; `n_items` MUST be at least 1.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn dot_top_k_lanes<N: Size>(
    queries_t: &[Vector<f32, N>],
    items: &[f32],
    best: &mut [f32],
    best_ids: &mut [u32],
    limits: &mut [Vector<f32, N>],
    next_block: &[Atomic<u32>],
    n_items: u32,
    n_queries: u32,
    dim: u32,
    k: u32,
    block_steps: u32,
    #[comptime] items_per_step: usize,
) {
    let (n, nq, d, kk) = (n_items as usize, n_queries as usize, dim as usize, k as usize);
    let per_block = block_steps as usize;
    let steps = n.div_ceil(items_per_step);
    let tiles = nq.div_ceil(N::value());
    let padded = tiles * N::value();
    let unit = UNIT_POS_X as usize;
    let lists = unit * padded * kk;
    for at in lists..lists + padded * kk {
        best[at] = f32::NEG_INFINITY;
        best_ids[at] = u32::MAX;
    }
    for t in 0..tiles {
        let mut limit = Vector::<f32, N>::new(f32::NEG_INFINITY);
        #[unroll]
        for l in 0..N::value() {
            limit.insert(l, select(t * N::value() + l < nq, f32::NEG_INFINITY, f32::INFINITY));
        }
        limits[unit * tiles + t] = limit;
    }
    let lowest = Vector::<f32, N>::new(f32::NEG_INFINITY);
    let mut block = next_block[0].fetch_add(1u32) as usize;
    while block * per_block < steps {
        for step in block * per_block..usize::min((block + 1) * per_block, steps) {
            let i0 = step * items_per_step;
            for t in 0..tiles {
                // Rows past the items read the last one again; they are never listed.
                let mut acc = Array::<Vector<f32, N>>::new(items_per_step);
                lanes_step::<N>(queries_t, items, &mut acc, i0, n, t * d, d, items_per_step);
                // The rows' best score per query, against the limits. A NaN never wins the
                // comparison, so rows of NaN leave `top` at −∞; with `>=` they still reach a list
                // with room (limit −∞), and they cannot enter a full one.
                let mut top = lowest;
                #[unroll]
                for j in 0..items_per_step {
                    top = select_many(acc[j].greater_than(&top), acc[j], top);
                }
                let limit_at = unit * tiles + t;
                let beats = select_many(top.greater_equal(&limits[limit_at]), Vector::new(1.0f32), Vector::new(0.0f32));
                if lane_max::<N>(beats) > 0.0 {
                    let mut scores = Array::<f32>::new(N::value());
                    #[unroll]
                    for j in 0..items_per_step {
                        let i = i0 + j;
                        if i < n {
                            #[unroll]
                            for l in 0..N::value() {
                                scores[l] = acc[j].extract(l);
                            }
                            for l in 0..N::value() {
                                let q = t * N::value() + l;
                                if q < nq {
                                    offer(best, best_ids, lists + q * kk, kk, scores[l], i as u32);
                                }
                            }
                        }
                    }
                    let mut limit = limits[limit_at];
                    #[unroll]
                    for l in 0..N::value() {
                        let q = t * N::value() + l;
                        if q < nq {
                            let last = lists + q * kk + kk - 1;
                            let s = best[last];
                            limit.insert(l, select(best_ids[last] == u32::MAX || s.is_nan(), f32::NEG_INFINITY, s));
                        }
                    }
                    limits[limit_at] = limit;
                }
            }
        }
        block = next_block[0].fetch_add(1u32) as usize;
    }
}

/// Puts row `id` with `score` into the `k`-long list at `at` (best first) if it ranks above the
/// list's last entry: a number above a smaller number or a NaN, anything above an empty slot;
/// an equal score stays below the entries already there (they have lower ids).
#[cube]
fn offer(best: &mut [f32], ids: &mut [u32], at: usize, k: usize, score: f32, id: u32) {
    if ranks_above(score, best[at + k - 1], ids[at + k - 1]) {
        let mut p = k - 1;
        let mut moving = true;
        while moving {
            if p == 0 {
                moving = false;
            } else if ranks_above(score, best[at + p - 1], ids[at + p - 1]) {
                best[at + p] = best[at + p - 1];
                ids[at + p] = ids[at + p - 1];
                p -= 1;
            } else {
                moving = false;
            }
        }
        best[at + p] = score;
        ids[at + p] = id;
    }
}

/// Whether `score` ranks above the listed `other` (of row `other_id`, `u32::MAX` when empty).
#[cube]
fn ranks_above(score: f32, other: f32, other_id: u32) -> bool {
    let mut above = true;
    if other_id != u32::MAX {
        if score.is_nan() {
            above = false;
        } else if !other.is_nan() {
            above = score > other;
        }
    }
    above
}

/// [`dot_scores`] for GPUs: a plane (warp) per item row, its lanes reading consecutive vectors
/// of the row so every load is coalesced, the row staying in L1 while each query is scored
/// against it, and `plane_sum` adding the lanes' partial dot products. A cube holds
/// `CUBE_DIM_Y` planes (`CUBE_DIM_X` must be the plane size); the planes of the grid take rows
/// in turn (a grid-stride loop), so any number of rows fits the runtime's cube-count limits.
#[cube(launch_unchecked)]
pub fn dot_scores_plane<N: Size>(
    queries: &[Vector<f32, N>],
    items: &[Vector<f32, N>],
    scores: &mut [f32],
    n_items: u32,
    stride: u32,
    n_queries: u32,
    dim_vectors: u32,
) {
    let lane = UNIT_POS_X;
    let planes = CUBE_COUNT_X * CUBE_DIM_Y;
    let dv = dim_vectors as usize;
    let mut i = CUBE_POS_X * CUBE_DIM_Y + UNIT_POS_Y;
    while i < stride {
        let row = i as usize * dv;
        for q in 0..n_queries {
            let at = q as usize * stride as usize + i as usize;
            if i < n_items {
                let qrow = q as usize * dv;
                let mut acc = Vector::<f32, N>::zeroed();
                let mut d = lane as usize;
                while d < dv {
                    acc += queries[qrow + d] * items[row + d];
                    d += PLANE_DIM as usize;
                }
                let total = plane_sum(lane_sum::<N>(acc));
                if lane == 0 {
                    scores[at] = total;
                }
            } else if lane == 0 {
                scores[at] = f32::MIN;
            }
        }
        i += planes;
    }
}

/// [`dot_scores`] for many queries on GPUs, in the shape of a matrix product: a cube scores a
/// block of `rows` item rows (one unit per row of the block) against a tile of 16 queries. The
/// block goes through shared memory `slice` dimensions at a time, read with coalesced loads
/// (consecutive units, consecutive floats of a row) and stored with rows `slice + 1` floats
/// apart, so that the units of a plane, which read 16 different rows, hit 16 different banks.
/// The tile's slice sits beside it, transposed. Unit `u` then computes rows `2⌊u/2⌋` and
/// `2⌊u/2⌋ + 1` of the block against queries `8(u mod 2) ..+8` of the tile: per dimension 2
/// scalar and 2 vector reads of shared memory for 16 multiply-adds, in registers. So each item
/// is read from memory once per tile of queries, and coalesced, where a unit per row (a kernel
/// this one replaced) reads its own row.
///
/// `queries_t` holds the queries transposed in tiles of 16 as vectors of `N` = 4: vector
/// `(t · dim + d) · 4 + g` has dimension `d` of queries `16t + 4g ..+4`, zeros past
/// `n_queries`. Cubes take blocks in turn (a grid-stride loop); every unit reaches each
/// barrier. Rows from `n_items` to `stride` get `f32::MIN`; `n_items` MUST be at least 1 and
/// the cube MUST have `rows` units.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn dot_scores_blocked<N: Size>(
    queries_t: &[Vector<f32, N>],
    items: &[f32],
    scores: &mut [f32],
    n_items: u32,
    stride: u32,
    n_queries: u32,
    dim: u32,
    #[comptime] rows: usize,
    #[comptime] slice: usize,
) {
    let (n, st, nq, d) = (n_items as usize, stride as usize, n_queries as usize, dim as usize);
    let pad = slice + 1;
    let mut block_items = Shared::<[f32]>::new_slice(rows * (slice + 1));
    let mut tile_queries = Shared::<[Vector<f32, N>]>::new_slice(slice * 4);
    let unit = UNIT_POS as usize;
    let (half, pair) = (unit % 2, unit / 2);
    let (r0_at, r1_at) = (2 * pair * pad, (2 * pair + 1) * pad);
    let blocks = st.div_ceil(rows);
    for tile in 0..nq.div_ceil(16) {
        let mut block = CUBE_POS_X as usize;
        while block < blocks {
            let first = block * rows;
            let mut acc = Array::<Vector<f32, N>>::new(4usize);
            #[unroll]
            for a in 0..4 {
                acc[a] = Vector::<f32, N>::zeroed();
            }
            let mut d0 = 0;
            while d0 < d {
                // The block's slice: `slice` floats per unit, a row's slice per `slice` units.
                #[unroll]
                for j in 0..slice {
                    let at = j * rows + unit;
                    let (r, c) = (at / slice, at % slice);
                    let (i, dd) = (first + r, d0 + c);
                    let x = items[usize::min(i, n - 1) * d + usize::min(dd, d - 1)];
                    block_items[r * pad + c] = select(i < n && dd < d, x, 0.0);
                }
                if unit < slice * 4 {
                    let dd = d0 + unit / 4;
                    tile_queries[unit] =
                        if dd < d { queries_t[(tile * d + dd) * 4 + unit % 4] } else { Vector::<f32, N>::zeroed() };
                }
                sync_cube();
                #[unroll]
                for c in 0..slice {
                    let (x0, x1) = (block_items[r0_at + c], block_items[r1_at + c]);
                    let qa = tile_queries[c * 4 + half * 2];
                    let qb = tile_queries[c * 4 + half * 2 + 1];
                    acc[0] += qa * Vector::<f32, N>::new(x0);
                    acc[1] += qb * Vector::<f32, N>::new(x0);
                    acc[2] += qa * Vector::<f32, N>::new(x1);
                    acc[3] += qb * Vector::<f32, N>::new(x1);
                }
                sync_cube();
                d0 += slice;
            }
            #[unroll]
            for r in 0..2 {
                let i = first + 2 * pair + r;
                if i < st {
                    #[unroll]
                    for v in 0..2 {
                        #[unroll]
                        for l in 0..N::value() {
                            let q = tile * 16 + half * 8 + v * N::value() + l;
                            if q < nq {
                                scores[q * st + i] = select(i < n, acc[r * 2 + v].extract(l), f32::MIN);
                            }
                        }
                    }
                }
            }
            block += CUBE_COUNT_X as usize;
        }
    }
}

/// `out[j * piece + t] = scores[q * stride + p * piece + t]` for the `j`-th pair `(q, p)` of
/// `pairs`: the score pieces chosen for top-k, packed for one read-back.
#[cube(launch_unchecked)]
pub fn gather_pieces(scores: &[f32], pairs: &[u32], out: &mut [f32], piece: u32, stride: u32, total: u32) {
    let i = ABSOLUTE_POS as u32;
    if i < total {
        let j = i / piece;
        let t = i % piece;
        let q = pairs[(2 * j) as usize];
        let p = pairs[(2 * j + 1) as usize];
        out[i as usize] = scores[q as usize * stride as usize + (p * piece + t) as usize];
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
        for c in 0..cols as usize {
            x[at + c] = vector_gelu::<N>(x[at + c] + bias[c]);
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

/// The largest of a vector's lanes.
#[cube]
fn lane_max<N: Size>(v: Vector<f32, N>) -> f32 {
    let mut m = v.extract(0usize);
    #[unroll]
    for l in 1..N::value() {
        m = select(v.extract(l) > m, v.extract(l), m);
    }
    m
}

/// Additive key bias for attention padding: `bias[t] = 0` for a real token, `-1e30` for padding.
pub const MASKED: f32 = -1.0e30;

/// Lays keys out for [`attention`]: `kt[((seq * heads + head) * head_dim + d) * seq_len + j] =
/// k[(seq * seq_len + j) * heads * head_dim + head * head_dim + d]`, one unit per (sequence,
/// head, dimension); the first unit of each sequence also writes its padding bias
/// (`bias[seq * seq_len + j]`: 0 or [`MASKED`]).
#[cube(launch_unchecked)]
pub fn attention_keys(
    k: &[f32],
    mask: &[u32],
    kt: &mut [f32],
    bias: &mut [f32],
    n_seqs: u32,
    seq_len: u32,
    heads: u32,
    head_dim: u32,
) {
    let unit = ABSOLUTE_POS as u32;
    if unit < n_seqs * heads * head_dim {
        let d = unit % head_dim;
        let head = (unit / head_dim) % heads;
        let seq = unit / (head_dim * heads);
        let width = (heads * head_dim) as usize;
        let from = (seq * seq_len) as usize * width + (head * head_dim + d) as usize;
        let to = unit as usize * seq_len as usize;
        for j in 0..seq_len as usize {
            kt[to + j] = k[from + j * width];
        }
        if head == 0 && d == 0 {
            let at = (seq * seq_len) as usize;
            for j in 0..seq_len as usize {
                bias[at + j] = select(mask[at + j] != 0, 0.0f32, MASKED);
            }
        }
    }
}

/// Multi-head self-attention with a padding mask, one unit per (sequence, head, run of
/// `queries` consecutive query tokens).
///
/// `q` and `v` hold each token's projections, `heads * head_dim` floats wide, as does `out`;
/// `kt` and `bias` are [`attention_keys`]' layout, so that a vector holds `N` consecutive keys:
/// a block of `N` scores costs `head_dim` vector multiply-adds, and its softmax weights one
/// vector `exp`. Each key and value vector loaded serves all of the unit's queries. The softmax
/// is computed online over blocks of keys (running maximum and sum), so one compiled kernel
/// serves every sequence length, which MUST be a multiple of `N` and of `queries`; the outputs
/// accumulate in `queries × head_vectors` registers (`head_vectors = head_dim / N`).
#[cube(launch_unchecked)]
pub fn attention<N: Size>(
    q: &[f32],
    kt: &[Vector<f32, N>],
    v: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    out: &mut [Vector<f32, N>],
    n_seqs: u32,
    seq_len: u32,
    heads: u32,
    scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] head_vectors: usize,
    #[comptime] queries: usize,
) {
    let unit = ABSOLUTE_POS as u32;
    let runs = seq_len / queries as u32;
    if unit < n_seqs * heads * runs {
        let first = (unit % runs) * queries as u32;
        let head = (unit / runs) % heads;
        let seq = unit / (runs * heads);
        let hv = head_vectors;
        let blocks = (seq_len as usize) / N::value();
        let width = heads as usize * head_dim;
        let width_v = heads as usize * hv;
        let q_at = (seq * seq_len + first) as usize * width + head as usize * head_dim;
        let kt_at = (seq * heads + head) as usize * head_dim * blocks;
        let bias_at = seq as usize * blocks;
        let first_row = (seq * seq_len) as usize;
        let mut acc = Array::<Vector<f32, N>>::new(queries * hv);
        #[unroll]
        for t in 0..queries * hv {
            acc[t] = Vector::<f32, N>::zeroed();
        }
        let mut running_max = Array::<f32>::new(queries);
        let mut running_sum = Array::<f32>::new(queries);
        #[unroll]
        for qi in 0..queries {
            running_max[qi] = MASKED;
            running_sum[qi] = 0.0f32;
        }
        let scale_v = Vector::<f32, N>::new(scale);
        let mut s = Array::<Vector<f32, N>>::new(queries);
        for b in 0..blocks {
            #[unroll]
            for qi in 0..queries {
                s[qi] = Vector::<f32, N>::zeroed();
            }
            #[unroll]
            for d in 0..head_dim {
                let keys = kt[kt_at + d * blocks + b];
                #[unroll]
                for qi in 0..queries {
                    s[qi] += Vector::<f32, N>::new(q[q_at + qi * width + d]) * keys;
                }
            }
            let key_bias = bias[bias_at + b];
            #[unroll]
            for qi in 0..queries {
                s[qi] = s[qi] * scale_v + key_bias;
            }
            // Padding masks keys, never queries: one lane tells whether the block has a key.
            let block_max = lane_max::<N>(s[0]);
            if block_max > MASKED * 0.5f32 {
                #[unroll]
                for qi in 0..queries {
                    let m = lane_max::<N>(s[qi]);
                    let new_max = select(m > running_max[qi], m, running_max[qi]);
                    let correction = vector_exp::<N>(Vector::<f32, N>::new(running_max[qi] - new_max)).extract(0usize);
                    s[qi] = vector_exp::<N>(s[qi] - Vector::<f32, N>::new(new_max));
                    running_sum[qi] = running_sum[qi] * correction + lane_sum::<N>(s[qi]);
                    running_max[qi] = new_max;
                    let c = Vector::<f32, N>::new(correction);
                    #[unroll]
                    for d in 0..hv {
                        acc[qi * hv + d] *= c;
                    }
                }
                #[unroll]
                for l in 0..N::value() {
                    let row = (first_row + b * N::value() + l) * width_v + head as usize * hv;
                    #[unroll]
                    for d in 0..hv {
                        let value = v[row + d];
                        #[unroll]
                        for qi in 0..queries {
                            acc[qi * hv + d] += Vector::<f32, N>::new(s[qi].extract(l)) * value;
                        }
                    }
                }
            }
        }
        #[unroll]
        for qi in 0..queries {
            let inv = Vector::<f32, N>::new(select(running_sum[qi] > 0.0f32, 1.0f32 / running_sum[qi], 0.0f32));
            let out_at = (seq * seq_len + first) as usize * width_v + qi * width_v + head as usize * hv;
            #[unroll]
            for d in 0..hv {
                out[out_at + d] = acc[qi * hv + d] * inv;
            }
        }
    }
}

/// [`attention`] for the CPU runtime, in the shape of matrix products: for a block of `rows`
/// query tokens of one (sequence, head), the scores against every key go to a buffer in L1
/// (`rows × capacity` vectors), one tile of `rows` queries × 2 key vectors at a time in
/// registers (the key vectors from [`attention_keys`]' layout); then each row's softmax, with one
/// horizontal maximum and sum per row; then the block's outputs, `rows × head_vectors` vectors in
/// registers, each value vector loaded once for all `rows` queries and each weight broadcast
/// from the buffer. The CPU runtime runs each unit as one task over every cube, so one cube is
/// launched, and unit `u` of its `CUBE_DIM_X` takes the `u`-th share of the (sequence, head)
/// pairs, walked without a division per pair. `seq_len` MUST be a multiple of `N` and of `rows`,
/// at most `capacity × N`; `head_dim` a multiple of `N`.
#[cube(launch_unchecked)]
pub fn attention_rows<N: Size>(
    q: &[f32],
    kt: &[Vector<f32, N>],
    v: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    out: &mut [Vector<f32, N>],
    n_seqs: u32,
    seq_len: u32,
    heads: u32,
    scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] head_vectors: usize,
    #[comptime] rows: usize,
    #[comptime] capacity: usize,
) {
    let hv = head_vectors;
    let (len, n_heads) = (seq_len as usize, heads as usize);
    let blocks = len / N::value();
    let width = n_heads * head_dim;
    let width_v = n_heads * hv;
    let pairs = n_seqs as usize * n_heads;
    let units = CUBE_DIM_X as usize;
    let unit = UNIT_POS_X as usize;
    let begin = pairs * unit / units;
    let end = pairs * (unit + 1) / units;
    let mut seq = begin / n_heads;
    let mut head = begin % n_heads;
    let mut scores = Array::<Vector<f32, N>>::new(rows * capacity);
    let mut inv = Array::<f32>::new(rows);
    let scale_v = Vector::<f32, N>::new(scale);
    for _pair in begin..end {
        let kt_at = (seq * n_heads + head) * head_dim * blocks;
        let bias_at = seq * blocks;
        for rb in 0..len / rows {
            let token = seq * len + rb * rows;
            let q_at = token * width + head * head_dim;
            for pb in 0..blocks / 2 {
                attention_scores::<N>(
                    q,
                    kt,
                    bias,
                    &mut scores,
                    q_at,
                    width,
                    kt_at,
                    blocks,
                    bias_at,
                    pb * 2,
                    scale_v,
                    head_dim,
                    rows,
                    2usize,
                    capacity,
                );
            }
            if blocks % 2 == 1 {
                attention_scores::<N>(
                    q,
                    kt,
                    bias,
                    &mut scores,
                    q_at,
                    width,
                    kt_at,
                    blocks,
                    bias_at,
                    blocks - 1,
                    scale_v,
                    head_dim,
                    rows,
                    1usize,
                    capacity,
                );
            }
            #[unroll]
            for r in 0..rows {
                let at = r * capacity;
                let mut top = scores[at];
                for b in 1..blocks {
                    top = select_many(scores[at + b].greater_than(&top), scores[at + b], top);
                }
                let top = Vector::<f32, N>::new(lane_max::<N>(top));
                let mut sum = Vector::<f32, N>::zeroed();
                for b in 0..blocks {
                    let e = vector_exp::<N>(scores[at + b] - top);
                    scores[at + b] = e;
                    sum += e;
                }
                inv[r] = 1.0f32 / lane_sum::<N>(sum);
            }
            let mut acc = Array::<Vector<f32, N>>::new(rows * hv);
            #[unroll]
            for t in 0..rows * hv {
                acc[t] = Vector::<f32, N>::zeroed();
            }
            let v_at = seq * len * width_v + head * hv;
            for b in 0..blocks {
                #[unroll]
                for l in 0..N::value() {
                    let row = v_at + (b * N::value() + l) * width_v;
                    let mut value = Array::<Vector<f32, N>>::new(hv);
                    #[unroll]
                    for d in 0..hv {
                        value[d] = v[row + d];
                    }
                    #[unroll]
                    for r in 0..rows {
                        let weight = Vector::<f32, N>::new(scores[r * capacity + b].extract(l));
                        #[unroll]
                        for d in 0..hv {
                            acc[r * hv + d] += weight * value[d];
                        }
                    }
                }
            }
            #[unroll]
            for r in 0..rows {
                let scale_r = Vector::<f32, N>::new(inv[r]);
                let at = (token + r) * width_v + head * hv;
                #[unroll]
                for d in 0..hv {
                    out[at + d] = acc[r * hv + d] * scale_r;
                }
            }
        }
        head += 1;
        if head == n_heads {
            head = 0;
            seq += 1;
        }
    }
}

/// One tile of [`attention_rows`]' scores: `rows` queries (from `q_at`, `width` floats apart)
/// against key vectors `b0 .. b0 + kv`, scaled, plus the padding bias, into `scores`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn attention_scores<N: Size>(
    q: &[f32],
    kt: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    scores: &mut Array<Vector<f32, N>>,
    q_at: usize,
    width: usize,
    kt_at: usize,
    blocks: usize,
    bias_at: usize,
    b0: usize,
    scale: Vector<f32, N>,
    #[comptime] head_dim: usize,
    #[comptime] rows: usize,
    #[comptime] kv: usize,
    #[comptime] capacity: usize,
) {
    let mut acc = Array::<Vector<f32, N>>::new(rows * kv);
    #[unroll]
    for t in 0..rows * kv {
        acc[t] = Vector::<f32, N>::zeroed();
    }
    for d in 0..head_dim {
        let at = kt_at + d * blocks + b0;
        let mut keys = Array::<Vector<f32, N>>::new(kv);
        #[unroll]
        for j in 0..kv {
            keys[j] = kt[at + j];
        }
        #[unroll]
        for r in 0..rows {
            let qv = Vector::<f32, N>::new(q[q_at + r * width + d]);
            #[unroll]
            for j in 0..kv {
                acc[r * kv + j] += qv * keys[j];
            }
        }
    }
    #[unroll]
    for j in 0..kv {
        let key_bias = bias[bias_at + b0 + j];
        #[unroll]
        for r in 0..rows {
            scores[r * capacity + b0 + j] = acc[r * kv + j] * scale + key_bias;
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

/// `c[m × n] = a[m × k] · b[k × n]`: `a` and `c` row-major, `c` in vectors of `N`
/// (`n_vectors` per row), `b` packed in column strips of `cols` vectors — strip `s` holds rows
/// `0..k` of columns `s·cols·N ..` contiguously ([`crate::compute::pack_strips`]), so that a
/// strip is one sequential stream the prefetchers follow.
///
/// The product is cut into tiles of `rows × cols` vectors, computed in registers: for each `k`
/// a tile loads `cols` vectors of its strip and multiplies them by `rows` broadcast elements of
/// `a`. Tiles go in groups of `group` row tiles: a group takes the strips in turn, and each
/// strip for all its row tiles, so the group's rows of `a` and the current strip stay in cache.
/// The CPU runtime runs each unit of a cube as one task over every cube, so the order is this
/// loop nest's own: launch one cube whose units (one or a few per core) each take every
/// `CUBE_DIM_X`-th group. `m` MUST be at least `rows`: the last row tile ends at row `m`,
/// overlapping the one before it (whose rows it computes again to the same values), so no row
/// is bounds-checked. The epilogue works on the tile in registers: [`EPILOGUE_BIAS`] adds
/// `bias[column]`, [`EPILOGUE_BIAS_GELU`] then applies GELU; with [`EPILOGUE_NONE`] `bias` is
/// not read.
#[cube(launch_unchecked)]
pub fn gemm<N: Size>(
    a: &[f32],
    b: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    c: &mut [Vector<f32, N>],
    m: u32,
    k: u32,
    n_vectors: u32,
    #[comptime] rows: usize,
    #[comptime] cols: usize,
    #[comptime] group: usize,
    #[comptime] epilogue: u32,
) {
    let (mu, ku, nv) = (m as usize, k as usize, n_vectors as usize);
    let row_tiles = mu.div_ceil(rows);
    let groups = row_tiles.div_ceil(group);
    let strips = nv / cols;
    let mut g = UNIT_POS_X as usize;
    while g < groups {
        let first = g * group;
        let last = usize::min(first + group, row_tiles);
        for s in 0..strips {
            let c0 = s * cols;
            let strip = s * ku * cols;
            for t in first..last {
                let r0 = usize::min(t * rows, mu - rows);
                gemm_tile::<N>(a, b, bias, c, r0 * ku, strip, r0 * nv + c0, c0, ku, nv, rows, cols, epilogue);
            }
        }
        g += CUBE_DIM_X as usize;
    }
}

/// One tile of [`gemm`]: rows from `a_at` (k floats apart), its strip from `b_at`, written from
/// `c_at` (`nv` vectors apart), the bias from vector `bias_at`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn gemm_tile<N: Size>(
    a: &[f32],
    b: &[Vector<f32, N>],
    bias: &[Vector<f32, N>],
    c: &mut [Vector<f32, N>],
    a_at: usize,
    b_at: usize,
    c_at: usize,
    bias_at: usize,
    ku: usize,
    nv: usize,
    #[comptime] rows: usize,
    #[comptime] cols: usize,
    #[comptime] epilogue: u32,
) {
    let mut acc = Array::<Vector<f32, N>>::new(rows * cols);
    #[unroll]
    for t in 0..rows * cols {
        acc[t] = Vector::<f32, N>::zeroed();
    }
    for kk in 0..ku {
        let at = b_at + kk * cols;
        let mut bv = Array::<Vector<f32, N>>::new(cols);
        #[unroll]
        for j in 0..cols {
            bv[j] = b[at + j];
        }
        #[unroll]
        for r in 0..rows {
            let av = Vector::<f32, N>::new(a[a_at + r * ku + kk]);
            #[unroll]
            for j in 0..cols {
                acc[r * cols + j] += av * bv[j];
            }
        }
    }
    if comptime!(epilogue != EPILOGUE_NONE) {
        #[unroll]
        for j in 0..cols {
            let bj = bias[bias_at + j];
            #[unroll]
            for r in 0..rows {
                acc[r * cols + j] += bj;
            }
        }
    }
    if comptime!(epilogue == EPILOGUE_BIAS_GELU) {
        #[unroll]
        for t in 0..rows * cols {
            acc[t] = vector_gelu::<N>(acc[t]);
        }
    }
    #[unroll]
    for r in 0..rows {
        #[unroll]
        for j in 0..cols {
            c[c_at + r * nv + j] = acc[r * cols + j];
        }
    }
}

/// [`gemm`]'s epilogues.
pub const EPILOGUE_NONE: u32 = 0;
pub const EPILOGUE_BIAS: u32 = 1;
pub const EPILOGUE_BIAS_GELU: u32 = 2;
