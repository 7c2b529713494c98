//! Rendering diagnostics: miette's graphical report for people, JSON for editors.

use std::io::IsTerminal as _;

use serde::Serialize;
use tailor_dsl::diagnostic::{Diagnostic, Report, Severity};
use tailor_dsl::span::{Loc, SourceFile};

/// Renders one diagnostic for a person. Colour only on a terminal without `NO_COLOR`; width
/// fixed when not on a terminal so that output is reproducible (golden tests rely on it).
pub fn human(diagnostic: &Diagnostic, file: &SourceFile) -> String {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    handler
        .render_report(&mut out, &Report::new(diagnostic, file))
        .expect("invariant: rendering to a String cannot fail");
    out
}

#[derive(Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    /// What the primary range points at, when there is more to say than the message.
    pub label: Option<String>,
    pub help: Option<String>,
    #[serde(flatten)]
    pub range: Range,
    /// Other ranges that explain the diagnostic.
    pub labels: Vec<JsonLabel>,
}

#[derive(Serialize)]
pub struct JsonLabel {
    pub message: String,
    #[serde(flatten)]
    pub range: Range,
}

/// A range as editors want it: 1-based lines and columns (in characters), plus byte offsets.
#[derive(Serialize)]
pub struct Range {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub offset: usize,
    pub length: usize,
}

fn range(file: &SourceFile, loc: Loc) -> Range {
    let (line, column) = file.line_col(loc.offset);
    let (end_line, end_column) = file.line_col(loc.end());
    Range { line, column, end_line, end_column, offset: loc.offset, length: loc.len }
}

pub fn json(diagnostic: &Diagnostic, file: &SourceFile) -> JsonDiagnostic {
    JsonDiagnostic {
        file: file.name().to_string(),
        code: diagnostic.code(),
        severity: match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        message: diagnostic.problem.to_string(),
        label: diagnostic.label.clone().or_else(|| diagnostic.problem.label()),
        help: diagnostic.problem.help(),
        range: range(file, diagnostic.loc),
        labels: diagnostic
            .related
            .iter()
            .map(|(loc, message)| JsonLabel { message: message.clone(), range: range(file, *loc) })
            .collect(),
    }
}
