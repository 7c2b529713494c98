//! Every kernel against its plain Rust reference, on random inputs with odd sizes, on every
//! runtime this build links that the machine can start (the CPU runtime and wgpu/lavapipe in CI;
//! CUDA on a GPU machine). A runtime this build links but the machine cannot start fails the
//! test unless `TAILOR_SKIP_BACKENDS` names it.

use cubecl::prelude::*;

use crate::compute::Then;
use crate::reference;
use crate::{Backend, Compute, ScoreKernel, ops};

/// xorshift64*: deterministic inputs without a dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub(crate) fn float(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub(crate) fn floats(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.float()).collect()
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The devices to test on: each linked backend, started once per process.
pub(crate) fn devices() -> Vec<&'static Compute> {
    use std::sync::OnceLock;
    static DEVICES: OnceLock<Vec<&'static Compute>> = OnceLock::new();
    DEVICES
        .get_or_init(|| {
            let skip = std::env::var("TAILOR_SKIP_BACKENDS").unwrap_or_default();
            let mut out = Vec::new();
            for backend in Backend::compiled() {
                if skip.split(',').any(|s| s.trim() == backend.to_string()) {
                    continue;
                }
                if backend == Backend::Cuda && std::env::var("TAILOR_BACKEND").as_deref() != Ok("cuda") {
                    // CUDA is tested where asked for (the GPU script sets TAILOR_BACKEND=cuda).
                    continue;
                }
                match Compute::new(backend) {
                    Ok(c) => out.push(&*Box::leak(Box::new(c))),
                    Err(e) => panic!("{e} (set TAILOR_SKIP_BACKENDS={backend} to test without it)"),
                }
            }
            assert!(!out.is_empty(), "no compute backend to test");
            out
        })
        .clone()
}

#[track_caller]
pub(crate) fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: got {g}, want {w}");
    }
}

#[test]
fn dot_scores_match_reference() {
    let mut rng = Rng::new(1);
    for c in devices() {
        // From 4 queries the CPU runtime takes the lanes kernel: 5, 4 and 20 (two tiles of 16).
        for (nq, n, dim) in [(1, 1, 1), (1, 7, 3), (3, 100, 8), (5, 1023, 384), (2, 257, 385), (4, 33, 6), (20, 13, 5)]
        {
            let queries = rng.floats(nq * dim);
            let items = rng.floats(n * dim);
            let got = c.dot_scores(&queries, &items, dim).unwrap();
            let want = reference::dot_scores(&queries, &items, dim);
            assert_close(&got, &want, 1e-4, &format!("{} dot {nq}×{n}×{dim}", c.backend()));
        }
    }
}

/// `got` (one list per query) against the reference top-k of `scores` (`n` per query). Equal
/// scores may come in either order, so each rank's score must match, and each reported row must
/// really have the score reported for it.
fn assert_top_k_matches(got: &[Vec<(u32, f32)>], scores: &[f32], n: usize, k: usize, what: &str) {
    for (q, got) in got.iter().enumerate() {
        let want = reference::top_k(&scores[q * n..(q + 1) * n], k);
        assert_eq!(got.len(), want.len(), "{what} (query {q})");
        for ((gi, gs), (wi, ws)) in got.iter().zip(&want) {
            assert!((gs - ws).abs() < 1e-4, "{what} (query {q}): got ({gi}, {gs}), want ({wi}, {ws})");
            let exact = scores[q * n + *gi as usize];
            assert!((exact - gs).abs() < 1e-4, "{what} (query {q}): index {gi} has score {exact}, reported {gs}");
        }
    }
}

/// A matrix in many buffers, each scored in chunks that are views into it, gives the same
/// top-k as the reference over all its rows, for the lanes kernel (a launch per buffer) and the
/// others (a launch per chunk): row ids are offset by the part's start, and lists longer than a
/// part are merged across parts. Chunks of 97 rows of 24 floats start off 64-byte alignment.
#[test]
fn top_k_across_chunks_matches_reference() {
    let mut rng = Rng::new(12);
    let (n, dim) = (1000, 24);
    let items = rng.floats(n * dim);
    for c in devices() {
        for (buffer_rows, chunk_rows) in [(97, 97), (400, 97), (n, 250)] {
            let matrix = c.upload_matrix_chunked(&items, dim, buffer_rows, chunk_rows).unwrap();
            assert_eq!(matrix.buffers.len(), n.div_ceil(buffer_rows));
            let per_buffer = buffer_rows.div_ceil(chunk_rows);
            let last = (n % buffer_rows).div_ceil(chunk_rows);
            assert_eq!(matrix.chunks.len(), n / buffer_rows * per_buffer + last);
            for (nq, k) in [(1, 10), (3, 150), (16, 10), (5, 150)] {
                let queries = rng.floats(nq * dim);
                let got = c.top_k_resident(&queries, &matrix, k).unwrap();
                let scores = reference::dot_scores(&queries, &items, dim);
                let what = format!(
                    "{} top-{k} of {nq} queries, buffers of {buffer_rows}, chunks of {chunk_rows}",
                    c.backend()
                );
                assert_top_k_matches(&got, &scores, n, k, &what);
            }
        }
    }
}

/// Every scoring kernel `c` runs: the plane kernel where there are planes, the lanes kernel on
/// the CPU runtime, the blocked kernel elsewhere.
fn kernels_of(c: &Compute) -> Vec<ScoreKernel> {
    [ScoreKernel::Rows, ScoreKernel::Planes, ScoreKernel::Blocked, ScoreKernel::Lanes]
        .into_iter()
        .filter(|&k| k != ScoreKernel::Planes || c.has_planes())
        .filter(|&k| k != ScoreKernel::Lanes || c.backend() == Backend::Cpu)
        .filter(|&k| k != ScoreKernel::Blocked || c.backend() != Backend::Cpu)
        .collect()
}

#[test]
fn top_k_matches_reference() {
    let mut rng = Rng::new(2);
    for c in devices() {
        let kernels = kernels_of(c);
        let shapes = [
            (1, 1, 4, 1),
            (1, 10, 3, 20),
            (2, 5000, 16, 10),
            (3, 9001, 8, 100),
            (1, 4096, 4, 7),
            (5, 777, 384, 9),
            (17, 1003, 24, 5),
        ];
        for (kernel, (nq, n, dim, k)) in kernels.iter().flat_map(|&kernel| shapes.map(|s| (kernel, s))) {
            let queries = rng.floats(nq * dim);
            let items = rng.floats(n * dim);
            let matrix = c.upload_matrix(&items, dim).unwrap();
            let got = c.top_k_resident_with(&queries, &matrix, k, kernel).unwrap();
            let scores = reference::dot_scores(&queries, &items, dim);
            assert_top_k_matches(&got, &scores, n, k, &format!("{} {kernel:?} top-{k} of {n}", c.backend()));
        }
    }
}

#[test]
fn top_k_breaks_ties_by_index_across_pieces() {
    // Every item the same: every piece ties for the maximum, and the lowest indices must win.
    for c in devices() {
        for (n, k) in [(3000, 10), (9000, 300)] {
            let items: Vec<f32> = [0.5f32, -0.25, 1.0].repeat(n);
            let got = c.top_k_dot(&[1.0, 1.0, 1.0], &items, 3, k).unwrap();
            let want: Vec<u32> = (0..k as u32).collect();
            let ids: Vec<u32> = got[0].iter().map(|h| h.0).collect();
            assert_eq!(ids, want, "{} top-{k} of {n} equal items", c.backend());
            assert!(got[0].iter().all(|h| (h.1 - 1.25).abs() < 1e-6));
        }
    }
}

/// Every kernel a device runs, with its top-k selection, ranks as the reference: ties go to
/// the lower index across units' lists and pieces, and NaN scores rank last but fill a list with
/// room. Rows 256 to 511 of the larger matrix are all NaN: a whole top-k piece on GPUs.
#[test]
fn top_k_ranks_ties_and_nan_as_the_reference() {
    let mut rng = Rng::new(7);
    for c in devices() {
        for kernel in kernels_of(c) {
            let queries = vec![1.0f32; 5 * 3];
            for (n, k) in [(3000, 10), (9000, 300)] {
                let matrix = c.upload_matrix(&[0.5f32, -0.25, 1.0].repeat(n), 3).unwrap();
                let got = c.top_k_resident_with(&queries, &matrix, k, kernel).unwrap();
                for hits in got {
                    let want: Vec<u32> = (0..k as u32).collect();
                    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<u32>>(), want, "{} {kernel:?}", c.backend());
                }
            }
            for n in [50, 3000] {
                let dim = 3;
                let mut items = rng.floats(n * dim);
                let nan_rows = [3, 17, 18, 40, 49].into_iter().chain((256..512).filter(|&i| i < n));
                for i in nan_rows {
                    items[i * dim + 1] = f32::NAN;
                }
                let queries = rng.floats(6 * dim);
                let matrix = c.upload_matrix(&items, dim).unwrap();
                let scores = reference::dot_scores(&queries, &items, dim);
                for k in [3, 47, 60] {
                    let got = c.top_k_resident_with(&queries, &matrix, k, kernel).unwrap();
                    for (q, hits) in got.iter().enumerate() {
                        let what = format!("{} {kernel:?} top-{k} of {n}, query {q}", c.backend());
                        let want = reference::top_k(&scores[q * n..(q + 1) * n], k);
                        let ids = |h: &[(usize, f32)]| h.iter().map(|x| x.0).collect::<Vec<usize>>();
                        let got_ids: Vec<usize> = hits.iter().map(|h| h.0 as usize).collect();
                        assert_eq!(got_ids, ids(&want), "{what}");
                        for ((_, g), (_, w)) in hits.iter().zip(&want) {
                            let same = g.is_nan() == w.is_nan() && (w.is_nan() || (g - w).abs() < 1e-5);
                            assert!(same, "{what}: {g} vs {w}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn top_k_rejects_ragged_input() {
    let c = devices()[0];
    assert!(c.top_k_dot(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 1).is_err());
    assert!(c.dot_scores(&[1.0], &[1.0], 0).is_err());
    for c in devices() {
        let matrix = c.upload_matrix(&[1.0, 2.0], 2).unwrap();
        if !c.has_planes() {
            let err = c.top_k_resident_with(&[1.0, 2.0], &matrix, 1, ScoreKernel::Planes).unwrap_err();
            assert!(err.to_string().contains("plane"), "{err}");
        }
        // Kernels a device does not run are refused by the search and the scoring alone alike.
        let (refused, why) = if c.backend() == Backend::Cpu {
            (ScoreKernel::Blocked, "GPUs")
        } else {
            (ScoreKernel::Lanes, "CPU runtime")
        };
        let err = c.top_k_resident_with(&[1.0, 2.0], &matrix, 1, refused).unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
        let err = c.score_resident_with(&[1.0, 2.0], &matrix, refused).unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
        for kernel in kernels_of(c) {
            c.score_resident_with(&[1.0, 2.0, 3.0, 4.0], &matrix, kernel).unwrap();
        }
        assert!(c.score_resident_with(&[1.0, 2.0, 3.0], &matrix, ScoreKernel::Rows).is_err());
    }
}

#[test]
fn matmul_matches_reference() {
    let mut rng = Rng::new(3);
    for c in devices() {
        for (m, k, n) in [(1, 1, 1), (7, 13, 5), (33, 384, 1152), (65, 1536, 384), (3, 384, 384)] {
            let lhs = rng.floats(m * k);
            let rhs = rng.floats(k * n);
            let out = c.linear(&c.upload_f32(&lhs), &c.weight(&rhs, k, n), Then::Nothing, m).unwrap();
            let got = c.read_f32(out).unwrap();
            assert_close(
                &got,
                &reference::matmul(&lhs, &rhs, m, k, n),
                1e-3,
                &format!("{} matmul {m}×{k}×{n}", c.backend()),
            );
        }
    }
}

#[test]
fn linear_layers_match_reference() {
    // On the CPU runtime (37, 19, 128), (9, 384, 1536), (13, 5, 32) and (14, 3, 80) take its
    // own GEMM with its epilogue, one of each tile (6 × 4, 8 × 3, 12 × 2 and 12 × 1 vectors),
    // with a last row tile that overlaps the one before; (3, 40, 48) has fewer rows than a
    // tile; (300, 24, 96) is three groups of row tiles over two units; (5, 7, 12) takes cubek's
    // matmul and the separate bias/GELU kernels.
    let mut rng = Rng::new(6);
    for c in devices() {
        for (m, k, n) in
            [(37, 19, 128), (9, 384, 1536), (13, 5, 32), (14, 3, 80), (3, 40, 48), (300, 24, 96), (5, 7, 12)]
        {
            let lhs = rng.floats(m * k);
            let rhs = rng.floats(k * n);
            let bias = rng.floats(n);
            let product = reference::matmul(&lhs, &rhs, m, k, n);
            let biased: Vec<f32> = product.iter().enumerate().map(|(i, v)| v + bias[i % n]).collect();
            let (l, r, b) = (c.upload_f32(&lhs), c.weight(&rhs, k, n), c.upload_f32(&bias));
            let what = format!("{} linear {m}×{k}×{n}", c.backend());
            let plain = c.read_f32(c.linear(&l, &r, Then::Bias(&b), m).unwrap()).unwrap();
            assert_close(&plain, &biased, 1e-3, &format!("{what} + bias"));
            let gelu = c.read_f32(c.linear(&l, &r, Then::BiasGelu(&b), m).unwrap()).unwrap();
            let want: Vec<f32> = biased.iter().map(|&v| reference::gelu(v)).collect();
            assert_close(&gelu, &want, 1e-3, &format!("{what} + bias, GELU"));
        }
    }
}

#[test]
fn bias_and_gelu_match_reference() {
    let mut rng = Rng::new(4);
    for c in devices() {
        for (rows, cols) in [(1, 1), (5, 7), (3, 12), (37, 1536)] {
            let x: Vec<f32> = rng.floats(rows * cols).iter().map(|v| v * 4.0).collect();
            let bias = rng.floats(cols);
            let plain = c.upload_f32(&x);
            let gelu = c.upload_f32(&x);
            c.add_bias(&plain, &c.upload_f32(&bias), rows, cols);
            c.add_bias_gelu(&gelu, &c.upload_f32(&bias), rows, cols);
            let biased: Vec<f32> = x.iter().enumerate().map(|(i, v)| v + bias[i % cols]).collect();
            let what = format!("{} {rows}×{cols}", c.backend());
            assert_close(&c.read_f32(plain).unwrap(), &biased, 1e-6, &format!("bias {what}"));
            let want: Vec<f32> = biased.iter().map(|&v| reference::gelu(v)).collect();
            assert_close(&c.read_f32(gelu).unwrap(), &want, 2e-5, &format!("gelu {what}"));
        }
    }
}

#[test]
fn residual_layer_norm_matches_reference() {
    let mut rng = Rng::new(5);
    for c in devices() {
        for (rows, h) in [(1, 2), (9, 384), (4, 31), (3, 24)] {
            let x = rng.floats(rows * h);
            let bias = rng.floats(h);
            let residual = rng.floats(rows * h);
            let gamma = rng.floats(h);
            let beta = rng.floats(h);
            let out = c.upload_f32(&residual);
            let (gamma_d, beta_d) = (c.upload_f32(&gamma), c.upload_f32(&beta));
            let norm = crate::layers::Norm { gamma: &gamma_d, beta: &beta_d, eps: 1e-12 };
            c.residual_layer_norm(&c.upload_f32(&x), &c.upload_f32(&bias), &out, norm, rows, h);
            let mut want: Vec<f32> = (0..rows * h).map(|i| residual[i] + x[i] + bias[i % h]).collect();
            reference::layer_norm_rows(&mut want, &gamma, &beta, 1e-12);
            assert_close(&c.read_f32(out).unwrap(), &want, 1e-4, &format!("{} layer norm {rows}×{h}", c.backend()));
        }
    }
}

#[test]
fn embedding_layer_norm_matches_reference() {
    let mut rng = Rng::new(6);
    for c in devices() {
        let (vocab, positions, h, n, seq_len) = (50, 16, 12, 3, 5);
        let word = rng.floats(vocab * h);
        let position = rng.floats(positions * h);
        let token_type = rng.floats(2 * h);
        let gamma = rng.floats(h);
        let beta = rng.floats(h);
        let ids: Vec<u32> = (0..n * seq_len).map(|_| rng.below(vocab as u64) as u32).collect();
        let rows = n * seq_len;
        let out = c.empty_f32(rows * h);
        let (count, dim) = c.grid(rows);
        unsafe {
            ops::embed_layer_norm::launch_unchecked(
                c.client(),
                count,
                dim,
                BufferArg::from_raw_parts(c.upload_u32(&ids), rows),
                BufferArg::from_raw_parts(c.upload_f32(&word), vocab * h),
                BufferArg::from_raw_parts(c.upload_f32(&position), positions * h),
                BufferArg::from_raw_parts(c.upload_f32(&token_type), 2 * h),
                BufferArg::from_raw_parts(c.upload_f32(&gamma), h),
                BufferArg::from_raw_parts(c.upload_f32(&beta), h),
                BufferArg::from_raw_parts(out.clone(), rows * h),
                rows as u32,
                seq_len as u32,
                h as u32,
                1e-12,
            );
        }
        let mut want = Vec::with_capacity(rows * h);
        for (r, &id) in ids.iter().enumerate() {
            let p = r % seq_len;
            want.extend((0..h).map(|j| word[id as usize * h + j] + position[p * h + j] + token_type[j]));
        }
        reference::layer_norm_rows(&mut want, &gamma, &beta, 1e-12);
        assert_close(&c.read_f32(out).unwrap(), &want, 1e-4, &format!("{} embeddings", c.backend()));
    }
}

#[test]
fn attention_matches_reference_with_padding() {
    let mut rng = Rng::new(7);
    for c in devices() {
        // Odd lengths take scalar lanes and one query per unit; 6 two queries, 32 and 48 four
        // queries per unit and 16 keys per vector (the encoder's case). On the CPU runtime the
        // last three take `attention_rows`: an even and an odd number of key vectors, and 15
        // (sequence, head) pairs shared unevenly by the units.
        let shapes = [
            (1, 1, 1, 1),
            (3, 7, 2, 4),
            (2, 5, 3, 6),
            (2, 33, 12, 32),
            (3, 6, 2, 4),
            (2, 32, 12, 32),
            (3, 48, 2, 16),
            (5, 16, 3, 32),
        ];
        for (n, seq_len, heads, head_dim) in shapes {
            let width = heads * head_dim;
            let rows = n * seq_len;
            let [q, k, v] = [(); 3].map(|()| rng.floats(rows * width).iter().map(|x| x * 3.0).collect::<Vec<f32>>());
            // Sequence s has seq_len - s real tokens (at least one), then padding.
            let mask: Vec<u32> =
                (0..rows).map(|r| u32::from(r % seq_len < seq_len.saturating_sub(r / seq_len).max(1))).collect();
            let [qd, kd, vd] = [&q, &k, &v].map(|m| c.upload_f32(m));
            let out = c.attention(&qd, &kd, &vd, &c.upload_u32(&mask), n, seq_len, heads, head_dim);
            let want = reference::attention(&q, &k, &v, &mask, n, seq_len, heads, head_dim);
            let what = format!("{} attention n={n} T={seq_len} heads={heads}×{head_dim}", c.backend());
            assert_close(&c.read_f32(out).unwrap(), &want, 1e-4, &what);
        }
    }
}

#[test]
fn mean_pool_normalize_matches_reference() {
    let mut rng = Rng::new(8);
    for c in devices() {
        let (n, seq_len, h) = (4, 6, 10);
        let hidden = rng.floats(n * seq_len * h);
        let mask: Vec<u32> = (0..n * seq_len).map(|r| u32::from(r % seq_len <= r / seq_len)).collect();
        let out = c.empty_f32(n * h);
        let (count, dim) = c.grid(n);
        unsafe {
            ops::mean_pool_normalize::launch_unchecked(
                c.client(),
                count,
                dim,
                BufferArg::from_raw_parts(c.upload_f32(&hidden), n * seq_len * h),
                BufferArg::from_raw_parts(c.upload_u32(&mask), n * seq_len),
                BufferArg::from_raw_parts(out.clone(), n * h),
                n as u32,
                seq_len as u32,
                h as u32,
            );
        }
        let mut want = Vec::new();
        for s in 0..n {
            let m: Vec<u8> = mask[s * seq_len..(s + 1) * seq_len].iter().map(|&v| v as u8).collect();
            let mut pooled = reference::mean_pool(&hidden[s * seq_len * h..(s + 1) * seq_len * h], &m, h);
            reference::l2_normalize(&mut pooled);
            want.extend(pooled);
        }
        assert_close(&c.read_f32(out).unwrap(), &want, 1e-5, &format!("{} mean pool", c.backend()));
    }
}

/// `out = e^x` lane by lane through [`ops::vector_exp`], for testing it.
#[cube(launch_unchecked)]
fn exp_lanes<N: Size>(x: &[Vector<f32, N>], out: &mut [Vector<f32, N>], len: u32) {
    let i = ABSOLUTE_POS as u32;
    if i < len {
        out[i as usize] = ops::vector_exp::<N>(x[i as usize]);
    }
}

#[test]
fn vector_exp_is_accurate_over_the_whole_range() {
    // Every 1/64 from -90 to 90 (past both clamps), in vectors of 4 and 16.
    let xs: Vec<f32> = (-90 * 64..=90 * 64 + 63).map(|i| i as f32 / 64.0).collect();
    for c in devices() {
        for w in [4usize, 16] {
            let len = xs.len() / w * w;
            let out = c.empty_f32(len);
            let (count, dim) = c.grid(len / w);
            // SAFETY: both buffers hold `len` floats, read in vectors of `w`; units are bounded by `len / w`.
            unsafe {
                exp_lanes::launch_unchecked(
                    c.client(),
                    count,
                    dim,
                    w,
                    BufferArg::from_raw_parts(c.upload_f32(&xs[..len]), len / w),
                    BufferArg::from_raw_parts(out.clone(), len / w),
                    (len / w) as u32,
                )
            };
            let got = c.read_f32(out).unwrap();
            for (x, y) in xs[..len].iter().zip(&got) {
                let want = f64::from(x.clamp(-87.3, 88.3)).exp();
                // A few ulp, plus the rounding of `x - n ln 2` that grows with |x| where a runtime
                // does not keep the two-part reduction exact (lavapipe: 3.6e-6 at x = -83).
                let error = (f64::from(*y) - want).abs() / want;
                let ok = error < 4e-7 + 6e-8 * f64::from(x.abs());
                assert!(ok, "{} e^{x}: {y} vs {want} (relative error {error:e})", c.backend());
            }
        }
    }
}
