//! End-to-end tests of the `tailor` binary and the library as users meet them; one test binary,
//! a module per area, helpers in `util`.

mod check;
mod daemon;
mod diagnostics;
mod durability;
mod eval;
mod examples;
mod fmt;
mod fuzz;
mod graph;
mod pii;
mod plugin;
mod privacy;
mod retrieval;
mod run;
mod serve_ops;
mod util;
