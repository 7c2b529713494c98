//! Dense top-k over a resident item matrix on one runtime (`TAILOR_BACKEND`: cpu, wgpu or
//! cuda), printed as one JSON object. Small enough to build for a GPU machine on its own
//! (`scripts/gpu-check.sh` runs it there beside PyTorch's `matmul` + `topk` on the same shapes).
//!
//! ```text
//! cargo bench -p tailor-kernels --bench scoring -- [--items 1000000] [--dim 384]
//!     [--queries 16] [--k 10] [--runs 20] [--kernels rows,planes,blocked,lanes]
//! ```
//!
//! Every scoring kernel the device runs is measured (the row-per-unit kernel everywhere, the
//! plane-per-row and blocked kernels on GPUs, the lanes kernel with its fused top-k on the CPU
//! runtime), each after its top-k of two queries is checked against the plain Rust reference
//! (ids and scores), so a fast wrong kernel cannot pass for a fast one. For the batch it also
//! times the scoring launches alone (`scoring_median_seconds`); the rest is the selection.

use std::time::Instant;

use serde_json::json;
use tailor_kernels::{Backend, Compute, ScoreKernel, reference};

struct Args {
    items: usize,
    dim: usize,
    queries: usize,
    k: usize,
    runs: usize,
    /// The kernels to measure (all that the device runs when empty).
    kernels: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args { items: 1_000_000, dim: 384, queries: 16, k: 10, runs: 20, kernels: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--kernels" {
            let value = it.next().unwrap_or_else(|| panic!("--kernels needs a value"));
            args.kernels = value.split(',').map(|s| s.trim().to_lowercase()).collect();
            continue;
        }
        let slot = match flag.as_str() {
            "--items" => &mut args.items,
            "--dim" => &mut args.dim,
            "--queries" => &mut args.queries,
            "--k" => &mut args.k,
            "--runs" => &mut args.runs,
            "--bench" => continue,
            other => panic!("unknown argument {other}"),
        };
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        *slot = value.parse().unwrap_or_else(|_| panic!("{flag}: not a number: {value}"));
    }
    args
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let (n, dim, nq, k) = (args.items, args.dim, args.queries, args.k);
    let compute = Compute::shared()?;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let items = unit_vectors(&mut rng, n, dim);
    let queries = unit_vectors(&mut rng, nq, dim);

    let start = Instant::now();
    let matrix = compute.upload_matrix(&items, dim)?;
    let upload_seconds = start.elapsed().as_secs_f64();
    let gb = (n * dim * 4) as f64 / 1e9;

    let mut kernels = serde_json::Map::new();
    let mut failed = Vec::new();
    for kernel in [ScoreKernel::Rows, ScoreKernel::Planes, ScoreKernel::Blocked, ScoreKernel::Lanes] {
        if kernel == ScoreKernel::Planes && !compute.has_planes() {
            continue;
        }
        if kernel == ScoreKernel::Lanes && compute.backend() != Backend::Cpu {
            continue;
        }
        if kernel == ScoreKernel::Blocked && compute.backend() == Backend::Cpu {
            continue;
        }
        let name = format!("{kernel:?}").to_lowercase();
        if !args.kernels.is_empty() && !args.kernels.contains(&name) {
            continue;
        }
        let result = check(compute, kernel, &queries, &items, &matrix, dim, k).and_then(|()| {
            let time = |queries: &[f32]| -> Result<(f64, f64), Box<dyn std::error::Error>> {
                compute.top_k_resident_with(queries, &matrix, k, kernel)?;
                let mut times = Vec::with_capacity(args.runs);
                for _ in 0..args.runs {
                    let start = Instant::now();
                    std::hint::black_box(compute.top_k_resident_with(queries, &matrix, k, kernel)?);
                    times.push(start.elapsed().as_secs_f64());
                }
                times.sort_by(f64::total_cmp);
                Ok((times[times.len() / 2], times[0]))
            };
            let (batch, batch_best) = time(&queries)?;
            let (single, single_best) = time(&queries[..dim])?;
            // The scoring launches alone, for the batch: the rest of a search is selection.
            compute.score_resident_with(&queries, &matrix, kernel)?;
            let mut times = Vec::with_capacity(args.runs);
            for _ in 0..args.runs {
                let start = Instant::now();
                compute.score_resident_with(&queries, &matrix, kernel)?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let scoring = times[times.len() / 2];
            Ok(json!({
                "batch": { "median_seconds": batch, "best_seconds": batch_best, "items_gb_per_s": gb / batch,
                           "scoring_median_seconds": scoring },
                "single": { "median_seconds": single, "best_seconds": single_best, "items_gb_per_s": gb / single },
            }))
        });
        match result {
            Ok(v) => kernels.insert(name, v),
            Err(e) => {
                eprintln!("scoring: {name}: {e}");
                failed.push(name.clone());
                kernels.insert(name, json!({ "error": e.to_string() }))
            }
        };
    }
    let name = |queries: usize| format!("{:?}", compute.score_kernel(queries)).to_lowercase();
    let mut out = json!({
        "backend": compute.backend().to_string(),
        "items": n, "dim": dim, "queries": nq, "k": k, "runs": args.runs,
        "upload_seconds": upload_seconds,
        "kernel": { "batch": name(nq), "single": name(1) },
        "kernels": kernels,
    });
    // What `top_k_resident` uses for each case, at the top level.
    for (case, queries) in [("batch", nq), ("single", 1)] {
        out[case] = out["kernels"][&name(queries)][case].clone();
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    if failed.is_empty() { Ok(()) } else { Err(format!("failed: {}", failed.join(", ")).into()) }
}

/// The top-k of the first two queries against the plain Rust reference: the same items (or
/// items tied within 1e-5) with the same scores.
fn check(
    compute: &Compute,
    kernel: ScoreKernel,
    queries: &[f32],
    items: &[f32],
    matrix: &tailor_kernels::DeviceMatrix,
    dim: usize,
    k: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let got = compute.top_k_resident_with(&queries[..2 * dim], matrix, k, kernel)?;
    for (q, hits) in got.iter().enumerate() {
        let want = reference::top_k(&reference::dot_scores(&queries[q * dim..(q + 1) * dim], items, dim), k);
        if hits.len() != want.len() {
            return Err(format!("query {q}: {} hits, want {}", hits.len(), want.len()).into());
        }
        for ((gi, gs), (wi, ws)) in hits.iter().zip(&want) {
            if (*gi as usize != *wi && (gs - ws).abs() > 1e-5) || (gs - ws).abs() > 1e-4 {
                return Err(format!("query {q}: got item {gi} ({gs}), want {wi} ({ws})").into());
            }
        }
    }
    Ok(())
}

/// `n` random unit vectors of `dim` floats (xorshift; the values do not matter for speed).
fn unit_vectors(state: &mut u64, n: usize, dim: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = v.len();
        let mut norm = 0.0f32;
        for _ in 0..dim {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let x = (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            norm += x * x;
            v.push(x);
        }
        let inv = 1.0 / norm.sqrt();
        v[start..].iter_mut().for_each(|x| *x *= inv);
    }
    v
}
