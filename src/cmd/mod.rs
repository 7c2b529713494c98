//! One module per command.

pub mod check;
pub mod eval;
pub mod fmt;
pub mod graph;
pub mod plugin;
