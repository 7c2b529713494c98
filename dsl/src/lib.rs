//! Tailor's pipeline language: from a pipeline file to a checked, typed graph.
//!
//! A pipeline file is a KDL v2 document; every expression, condition and template inside it is
//! parsed by one pest grammar (`grammar.pest`). Checking runs in phases, each with its own
//! module, and reports **every** problem at once as a [`diagnostic::Diagnostic`] with a code,
//! a location and, where it helps, a "did you mean" hint. The normative reference is
//! `spec/language.md`.
//!
//! # Example
//!
//! ```
//! use tailor_dsl::check::check_file;
//! use tailor_dsl::descriptor::StaticRegistry;
//! use tailor_dsl::span::SourceFile;
//!
//! let file = SourceFile::new("hello.kdl", r#"
//! pipeline "hello" {
//!     input "name" type="text"
//!     output "'Hello, ' + input.nmae"
//! }
//! "#);
//! let checked = check_file(&file, &StaticRegistry::default());
//! let problem = &checked.diagnostics[0];
//! assert_eq!(problem.code(), "tailor::dsl::unknown_input");
//! assert_eq!(problem.problem.help().as_deref(), Some("did you mean `name`?"));
//! assert_eq!(file.line_col(problem.loc.offset), (4, 31));
//! ```
//!
//! # Concepts
//!
//! - **Phases.** [`syntax`] reads KDL into declarations with locations (names still strings);
//!   [`check`] resolves names, types every expression and port against the plugins'
//!   [`descriptor`]s, and checks the graph (cycles, reachability); the result is [`ir`], where
//!   stages are ids in topological order and nothing refers to a stage by name.
//! - **Descriptors.** What the checker knows of a plugin is plain data — ports, config schema,
//!   capabilities — found through a [`descriptor::Registry`] that the engine fills.
//! - **Locations.** [`span::Loc`] never takes part in equality, so reformatting a file gives an
//!   equal IR; positions inside expression strings map back into the file ([`span::StringMap`]).
//! - **Evaluation.** [`eval`] computes expressions and renders templates: pure, total, bounded
//!   by a step budget and a value size cap.
//!
//! # Tools
//!
//! [`fmt`] formats a file canonically (comments kept, idempotent); [`render`] draws a pipeline
//! as Graphviz DOT or Mermaid.

pub mod check;
pub mod descriptor;
pub mod diagnostic;
pub mod eval;
pub mod expr;
pub mod fmt;
pub mod functions;
pub mod ir;
pub mod render;
pub mod span;
pub mod suggest;
pub mod syntax;
pub mod types;
