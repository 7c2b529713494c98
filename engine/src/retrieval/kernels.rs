//! The retrieval seams filled by `tailor-kernels`: dense scoring and top-k on the CubeCL kernels,
//! and text embeddings from the MiniLM encoder running on them.

use tailor_kernels::{Compute, Encoder};

use super::dense::DenseScorer;
use super::index::TextEmbedder;

/// [`DenseScorer`] on the process's compute device (CPU runtime, wgpu or CUDA).
#[derive(Debug, Clone, Copy)]
pub struct KernelScorer {
    compute: &'static Compute,
}

impl KernelScorer {
    pub fn new(compute: &'static Compute) -> KernelScorer {
        KernelScorer { compute }
    }

    /// The scorer on [`Compute::shared`].
    pub fn shared() -> Result<KernelScorer, String> {
        Compute::shared().map(KernelScorer::new).map_err(|e| e.to_string())
    }
}

impl DenseScorer for KernelScorer {
    fn top_k(&self, queries: &[f32], items: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<(u32, f32)>>, String> {
        self.compute.top_k_dot(queries, items, dim, k).map_err(|e| e.to_string())
    }
}

/// [`TextEmbedder`] on all-MiniLM-L6-v2.
#[derive(Debug, Clone, Copy)]
pub struct MiniLm {
    encoder: &'static Encoder,
}

impl MiniLm {
    pub fn new(encoder: &'static Encoder) -> MiniLm {
        MiniLm { encoder }
    }

    /// The process-wide encoder, its weights fetched on first use.
    pub fn shared() -> Result<MiniLm, String> {
        Encoder::shared().map(MiniLm::new).map_err(|e| e.to_string())
    }
}

impl TextEmbedder for MiniLm {
    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.encoder.embed(texts).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::ReferenceScorer;

    #[test]
    fn kernel_scorer_agrees_with_the_reference() {
        let scorer = KernelScorer::shared().unwrap();
        let dim = 8;
        let items: Vec<f32> = (0..40 * dim).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let queries: Vec<f32> = (0..2 * dim).map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0).collect();
        let got = scorer.top_k(&queries, &items, dim, 5).unwrap();
        let want = ReferenceScorer.top_k(&queries, &items, dim, 5).unwrap();
        for (g, w) in got.iter().zip(&want) {
            let gi: Vec<u32> = g.iter().map(|h| h.0).collect();
            let wi: Vec<u32> = w.iter().map(|h| h.0).collect();
            assert_eq!(gi, wi);
        }
    }
}
