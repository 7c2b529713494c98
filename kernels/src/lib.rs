//! Tailor's compute kernels: text encoding and scoring.
//!
//! The kernels ([`ops`]) are CubeCL code written once for every runtime; [`Compute`] picks the
//! runtime at run time (CPU here and in CI, wgpu/Vulkan, CUDA behind the `cuda` feature;
//! DESIGN.md §4). Every kernel has a plain Rust reference in [`reference`] that defines what it
//! computes and that the kernels are tested against.
//!
//! ```
//! use tailor_kernels::reference::{dot_scores, top_k};
//!
//! // Two stored items of dimension 2, one query.
//! let items = [1.0, 0.0, 0.6, 0.8];
//! let scores = dot_scores(&[0.0, 1.0], &items, 2);
//! assert_eq!(top_k(&scores, 1), vec![(1, 0.8)]);
//! ```

mod compute;
pub mod encoder;
mod layers;
pub mod models;
pub mod ops;
mod prefetch;
pub mod reference;
#[cfg(test)]
mod tests;

pub use compute::{Backend, Compute, DeviceMatrix, ScoreKernel};
pub use encoder::Encoder;

/// What can go wrong running a kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    #[error("unknown compute backend `{0}` (expected cpu, wgpu or cuda)")]
    UnknownBackend(String),
    #[error("the {0} compute backend is unavailable: {1}")]
    Unavailable(Backend, String),
    #[error("bad shapes: {0}")]
    Shape(String),
    #[error("model: {0}")]
    Model(String),
    #[error("kernel failed: {0}")]
    Runtime(String),
}
