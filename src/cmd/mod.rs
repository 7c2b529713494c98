//! One module per command.

pub mod check;
pub mod embed;
pub mod eval;
pub mod fmt;
pub mod graph;
pub mod models;
pub mod plugin;
