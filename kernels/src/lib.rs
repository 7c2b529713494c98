//! Tailor's compute kernels: text encoding and scoring.
//!
//! Every kernel has a plain Rust reference in [`reference`] that defines what it computes and
//! that the CubeCL kernels (CPU runtime here, CUDA on a GPU; DESIGN.md §4) are tested against.
//!
//! ```
//! use tailor_kernels::reference::{dot_scores, top_k};
//!
//! // Two stored items of dimension 2, one query.
//! let items = [1.0, 0.0, 0.6, 0.8];
//! let scores = dot_scores(&[0.0, 1.0], &items, 2);
//! assert_eq!(top_k(&scores, 1), vec![(1, 0.8)]);
//! ```

pub mod reference;
