//! One module per command.

pub mod check;
pub mod demo;
pub mod embed;
pub mod eval;
pub mod eval_pipeline;
pub mod eval_report;
pub mod fmt;
pub mod graph;
pub mod ingest;
pub mod models;
pub mod plugin;
pub mod run;
pub mod serve;
pub mod test;
