//! Phase 1: a pipeline file's text → declarations with locations.
//!
//! KDL is parsed by the `kdl` crate through [`guard`] (which bounds what a file can cost it); the
//! nodes are then read into [`decl`] types: the pipeline vocabulary with each value in place and
//! each expression string parsed by the grammar. Every problem found on the way is collected;
//! nothing here knows plugins, types of stages, or which names exist — that is the checker's.

pub mod decl;
pub mod guard;
pub(crate) mod read;

pub use decl::*;

use crate::diagnostic::{Diagnostic, Problem};
use crate::span::{Loc, SourceFile};
use guard::{GuardError, ParseFailure};

/// Deepest nesting of KDL children blocks accepted.
pub const MAX_BLOCK_NESTING: usize = guard::MAX_DEPTH;

/// Reads every pipeline declared in a file. Problems are appended to `diagnostics`; a pipeline
/// with structural problems is still returned with what could be read, so that the checker can
/// report its other problems too.
pub fn parse_file(file: &SourceFile, diagnostics: &mut Vec<Diagnostic>) -> Vec<PipelineDecl> {
    match guard::parse_kdl(file.text()) {
        Ok(doc) => read::read_document(&doc, diagnostics),
        Err(ParseFailure::Kdl(error)) => {
            diagnostics.extend(kdl_diagnostics(&error));
            Vec::new()
        }
        Err(ParseFailure::Refused(refused)) => {
            let problem = match refused {
                GuardError::TooDeep { max, .. } => Problem::TooDeep { max },
                _ => Problem::Kdl { message: refused.to_string(), help: Some(refused.help().to_owned()) },
            };
            let offset = refused.offset();
            let len = usize::from(offset < file.text().len());
            diagnostics.push(Diagnostic::error(problem, Loc::new(offset, len)));
            Vec::new()
        }
        Err(ParseFailure::Thread(e)) => {
            diagnostics.push(Diagnostic::error(Problem::Kdl { message: e.to_string(), help: None }, Loc::new(0, 0)));
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
