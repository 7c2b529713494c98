//! Tailor's engine: the plugin host and registry, the graph [`exec`]utor, the [`store`], the
//! [`llm`] backends, per-user [`retrieval`], [`privacy`], and the HTTP [`daemon`] (see DESIGN.md
//! §3–§7).
//!
//! The engine sees only the checked IR of [`tailor_dsl`], never its syntax. Every stage runs as
//! a sandboxed WebAssembly component in the [`host`]; the [`registry`] loads the built-in and
//! installed plugins, whose own descriptors the checker types stages against:
//!
//! ```
//! use tailor_dsl::{check::check_file, span::SourceFile};
//!
//! let (registry, _) = tailor_engine::registry::load_catalog(&[]).expect("built-in plugins load");
//! let file = SourceFile::new("hello.kdl", r#"
//! pipeline "hello" {
//!     input "text" type="text"
//!     stage "clean" use="builtin:pii-redact" {
//!         text "input.text"
//!     }
//!     output "clean.text"
//! }
//! "#);
//! let checked = check_file(&file, &*registry);
//! assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
//! assert_eq!(checked.pipelines[0].stages.len(), 1);
//! ```

pub mod daemon;
pub mod eval;
pub mod exec;
pub mod host;
pub mod llm;
pub mod privacy;
pub mod registry;
pub mod retrieval;
pub mod store;
pub mod watch;
