//! The CPU runtime's own GEMM (`tailor_kernels::ops::gemm`, bias and GELU in its epilogue)
//! against cubek's CPU matmul followed by the bias/GELU kernel, on the encoder's shapes, in the
//! same run; one JSON object.
//!
//! ```text
//! cargo bench --bench gemm [-- --reps 7]
//! ```

use clap::Parser;
use serde_json::json;
use tailor_kernels::Compute;

#[derive(Parser)]
struct Args {
    /// Timed repetitions per shape and path (median reported).
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let compute = Compute::shared()?;
    // A batch of 32 texts of 256 tokens through MiniLM's projections and feed-forward layer.
    let shapes = [(8192, 384, 384), (8192, 384, 1536), (8192, 1536, 384)];
    let mut rows = Vec::new();
    for (m, k, n) in shapes {
        let (ours, cubek) = compute.time_linear(m, k, n, args.reps)?;
        let gflop = 2.0 * (m * k * n) as f64 / 1e9;
        eprintln!("{m}×{k}×{n}: {:.1} ms vs cubek {:.1} ms ({:.2}×)", ours * 1e3, cubek * 1e3, cubek / ours);
        rows.push(json!({
            "shape": [m, k, n],
            "ours_ms": ours * 1e3,
            "cubek_ms": cubek * 1e3,
            "speedup": cubek / ours,
            "ours_gflops": gflop / ours,
        }));
    }
    let report = json!({"backend": compute.backend().to_string(), "reps": args.reps, "shapes": rows});
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
