//! Phase 1: a pipeline file's text → declarations with locations.
//!
//! KDL is parsed by the `kdl` crate (after [`guard`] has made sure its recursion is safe); the
//! nodes are then read into [`decl`] types: the pipeline vocabulary with each value in place and
//! each expression string parsed by the grammar. Every problem found on the way is collected;
//! nothing here knows plugins, types of stages, or which names exist — that is the checker's.

pub mod decl;
pub mod guard;
pub(crate) mod read;

pub use decl::*;

use crate::diagnostic::{Diagnostic, Problem};
use crate::span::{Loc, SourceFile};

/// Deepest nesting of KDL children blocks accepted.
pub const MAX_BLOCK_NESTING: usize = 64;

/// Reads every pipeline declared in a file. Problems are appended to `diagnostics`; a pipeline
/// with structural problems is still returned with what could be read, so that the checker can
/// report its other problems too.
pub fn parse_file(file: &SourceFile, diagnostics: &mut Vec<Diagnostic>) -> Vec<PipelineDecl> {
    let text = file.text();
    if let Err(too_deep) = guard::check_nesting(text, MAX_BLOCK_NESTING) {
        diagnostics.push(Diagnostic::error(Problem::TooDeep { max: MAX_BLOCK_NESTING }, Loc::new(too_deep.offset, 1)));
        return Vec::new();
    }
    match text.parse::<kdl::KdlDocument>() {
        Ok(doc) => read::read_document(&doc, diagnostics),
        Err(error) => {
            diagnostics.extend(kdl_diagnostics(&error));
            Vec::new()
        }
    }
}

/// One diagnostic per problem kdl found.
pub fn kdl_diagnostics(error: &kdl::KdlError) -> Vec<Diagnostic> {
    error
        .diagnostics
        .iter()
        .map(|d| {
            let message = d.message.clone().unwrap_or_else(|| "invalid KDL".to_string());
            let mut diag = Diagnostic::error(Problem::Kdl { message, help: d.help.clone() }, Loc::from_kdl(d.span));
            diag.label = d.label.clone();
            diag
        })
        .collect()
}
