//! Retrieval benchmarks, printed as one JSON object for `benches/compare/run.sh`, which runs the
//! Python baselines (sentence-transformers, numpy, faiss-cpu, bm25s) on the same inputs in the
//! same run and prints the ratios.
//!
//! ```text
//! cargo bench --bench retrieval -- --texts FILE --beir DIR [--batch 32] [--items 1000000]
//!     [--queries 16] [--k 10] [--skip encoder,dense,bm25]
//! ```
//!
//! - memory read bandwidth: the roofline for dense scoring, measured here by summing a buffer
//!   as large as the item matrix with every core;
//! - encoder: MiniLM sentences/s over the texts (one JSON string per line), after a warm-up;
//! - dense top-k: random unit vectors, resident on the device, `queries` at once and one alone;
//! - BM25: index a BEIR corpus, then every query of `queries.jsonl` (analysis included).

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use tailor_engine::retrieval::{AnalyzerOptions, Bm25Index, Bm25Params, beir};
use tailor_kernels::{Compute, Encoder};

#[derive(Parser)]
struct Args {
    /// Texts to encode, one JSON string per line.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// A BEIR folder for the BM25 benchmark.
    #[arg(long)]
    beir: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    #[arg(long, default_value_t = 16)]
    queries: usize,
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Comma-separated parts to leave out.
    #[arg(long, default_value = "")]
    skip: String,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const DIM: usize = 384;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let skip: Vec<&str> = args.skip.split(',').map(str::trim).collect();
    let compute = Compute::shared()?;
    let mut out = json!({
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "backend": compute.backend().to_string(),
        }
    });

    if !skip.contains(&"encoder") {
        let path = args.texts.as_ref().ok_or_else(|| anyhow::anyhow!("--texts FILE is needed for the encoder"))?;
        let texts: Vec<String> = std::fs::read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encoder = Encoder::shared()?;
        encoder.embed_batched(&refs[..refs.len().min(64)], args.batch)?;
        let start = Instant::now();
        let embeddings = encoder.embed_batched(&refs, args.batch)?;
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(embeddings.len(), texts.len());
        out["encoder"] = json!({
            "texts": texts.len(), "batch": args.batch, "seconds": seconds,
            "sentences_per_second": texts.len() as f64 / seconds,
        });
        eprintln!("encoder: {:.1} sentences/s", texts.len() as f64 / seconds);
    }

    if !skip.contains(&"dense") {
        let (n, nq, k) = (args.items, args.queries, args.k);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let items = unit_vectors(&mut rng, n);
        let queries = unit_vectors(&mut rng, nq);
        // Memory bandwidth moves with the host (on a VM, 43 and 80 GB/s minutes apart), so
        // it is measured before and after the searches, and the faster pass counts.
        let before = read_bandwidth(&items);
        let matrix = compute.upload_matrix(&items, DIM)?;
        let batch = median_seconds(5, || Ok(compute.top_k_resident(&queries, &matrix, k).map(drop)?))?;
        let single = median_seconds(5, || Ok(compute.top_k_resident(&queries[..DIM], &matrix, k).map(drop)?))?;
        let gb = (n * DIM * 4) as f64 / 1e9;
        out["dense_topk"] = json!({
            "items": n, "dim": DIM, "queries": nq, "k": k,
            "seconds_per_batch": batch, "items_gb_per_s": gb / batch,
            "single_query_seconds": single, "single_query_items_gb_per_s": gb / single,
        });
        eprintln!("dense top-{k}: {nq} queries {batch:.4} s ({:.2} GB/s), 1 query {single:.4} s", gb / batch);
        let bandwidth = before.max(read_bandwidth(&items));
        out["memory_read_gb_per_s"] = json!(bandwidth);
        eprintln!("memory read: {bandwidth:.2} GB/s (the faster of a pass before and one after)");
    }

    if !skip.contains(&"bm25") {
        let dir = args.beir.as_ref().ok_or_else(|| anyhow::anyhow!("--beir DIR is needed for BM25"))?;
        let corpus: Vec<beir::BeirDoc> = beir::load_jsonl(&dir.join("corpus.jsonl"))?;
        let queries: Vec<beir::BeirQuery> = beir::load_jsonl(&dir.join("queries.jsonl"))?;
        let start = Instant::now();
        let mut index = Bm25Index::new(AnalyzerOptions::default(), Bm25Params::default());
        for (i, doc) in corpus.iter().enumerate() {
            index.insert(i as u32, &doc.indexed_text());
        }
        let index_seconds = start.elapsed().as_secs_f64();
        let run = || {
            for q in &queries {
                std::hint::black_box(index.search(&q.text, args.k, None));
            }
            Ok(())
        };
        let seconds = median_seconds(5, run)?;
        out["bm25"] = json!({
            "documents": corpus.len(), "queries": queries.len(), "k": args.k, "threads": 1,
            "index_seconds": index_seconds, "queries_per_second": queries.len() as f64 / seconds,
        });
        eprintln!("bm25: {:.0} queries/s", queries.len() as f64 / seconds);
    }

    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The median of `runs` timed calls of `f` after one untimed call (kernels compile on their first
/// launch), as `baselines.py` times its libraries.
fn median_seconds(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[runs / 2])
}

/// `n` random unit vectors of [`DIM`] floats (xorshift; the values do not matter for speed).
fn unit_vectors(state: &mut u64, n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let start = v.len();
        let mut norm = 0.0f32;
        for _ in 0..DIM {
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

/// Best of three parallel sums over `data`, in GB/s: how fast this machine can stream the
/// item matrix from memory, the bound for any exhaustive dense search. Each thread sums its
/// share with four independent 512-bit accumulators where the CPU has AVX-512 (else a plain
/// loop). On the Zen 5 VM, a C sum shaped like the plain loop and built for baseline x86-64
/// (16-byte loads) streamed 55–62 GB/s where one like this streamed 72–77, and a roofline that
/// low would flatter every fraction.
fn read_bandwidth(data: &[f32]) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let total: f32 = std::thread::scope(|s| {
            let handles: Vec<_> =
                data.chunks(data.len().div_ceil(threads)).map(|chunk| s.spawn(move || sum(chunk))).collect();
            handles.into_iter().map(|h| h.join().expect("summing thread")).sum()
        });
        std::hint::black_box(total);
        best = best.max(std::mem::size_of_val(data) as f64 / 1e9 / start.elapsed().as_secs_f64());
    }
    best
}

/// The sum of `xs`, at the speed memory delivers them.
fn sum(xs: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { sum_avx512(xs) };
    }
    let mut acc = [0.0f32; 16];
    let blocks = xs.chunks_exact(16);
    let rest: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for (a, x) in acc.iter_mut().zip(block) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sum_avx512(xs: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 4];
    let blocks = xs.chunks_exact(64);
    let rest: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: `block` holds 64 floats, so 16 from `16 · i` are in bounds; loadu
            // takes any alignment.
            *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(block.as_ptr().add(16 * i)) });
        }
    }
    let acc = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(acc) + rest
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
