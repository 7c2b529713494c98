//! Evaluation: the LaMP benchmark's [`metrics`] and a paired bootstrap for comparing pipelines
//! (`tailor eval pipeline`, spec/eval.md).

pub mod metrics;
