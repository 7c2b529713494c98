//! One module per command.

pub mod check;
pub mod fmt;
pub mod graph;
pub mod plugin;
