//! Tailor's engine: the plugin registry today; the plugin host, graph executor, store, LLM
//! backends and daemon as they land (see DESIGN.md §3–§7).
//!
//! The engine sees only the checked IR of [`tailor_dsl`], never its syntax. Its [`registry`]
//! supplies the plugin descriptors the checker types stages against:
//!
//! ```
//! use tailor_dsl::{check::check_file, span::SourceFile};
//!
//! let registry = tailor_engine::registry::builtin();
//! let file = SourceFile::new("hello.kdl", r#"
//! pipeline "hello" {
//!     input "text" type="text"
//!     stage "clean" use="builtin:pii-redact" {
//!         text "input.text"
//!     }
//!     output "clean.text"
//! }
//! "#);
//! let checked = check_file(&file, &registry);
//! assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
//! assert_eq!(checked.pipelines[0].stages.len(), 1);
//! ```

pub mod host;
pub mod registry;
