//! Diagnostics: every problem the loader and checker can find, as typed data.
//!
//! A [`Diagnostic`] is a [`Problem`] (what is wrong, with its data) plus where: a primary location,
//! secondary labels and a severity. Each problem has a stable code (`tailor::dsl::…`) that editors
//! and the golden tests rely on, and most have a hint. Rendering to text or JSON happens at the edge
//! (the CLI renders through [`Report`] for miette, or as JSON).

use std::fmt;

use crate::span::{Loc, SourceFile};
use crate::types::Type;

/// How bad a diagnostic is. Errors fail `tailor check`; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// What kind of name a problem is about, for messages and suggestions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Pipeline,
    Stage,
    Input,
    Port,
    ConfigKey,
    Property,
    Node,
    Test,
    Plugin,
    Function,
    Capability,
    Variable,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Pipeline => "pipeline",
            NameKind::Stage => "stage",
            NameKind::Input => "input",
            NameKind::Port => "port",
            NameKind::ConfigKey => "config key",
            NameKind::Property => "property",
            NameKind::Node => "node",
            NameKind::Test => "test",
            NameKind::Plugin => "plugin",
            NameKind::Function => "function",
            NameKind::Capability => "capability",
            NameKind::Variable => "variable",
        })
    }
}

/// Everything that can be wrong with a pipeline file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("{message}")]
    Kdl { message: String, help: Option<String> },
    #[error("blocks are nested more than {max} deep")]
    TooDeep { max: usize },
    #[error("invalid {what}: {message}")]
    ExprSyntax { what: &'static str, message: String },
    #[error("{what} is too complex: {reason}")]
    TooComplex { what: &'static str, reason: String },
    #[error("unknown {kind} `{name}`{}", context_suffix(context))]
    Unknown { kind: NameKind, name: String, context: Option<String>, suggestion: Option<String> },
    #[error("{kind} `{name}` is defined more than once")]
    Duplicate { kind: NameKind, name: String },
    #[error("`{node}` needs {what}")]
    Missing { node: String, what: String },
    #[error("`{node}` takes {expected}")]
    Shape { node: String, expected: String },
    #[error("`{name}` is not a valid {kind} name")]
    InvalidName { kind: NameKind, name: String, reason: &'static str },
    #[error("`{name}` is a reserved word and cannot name a {kind}")]
    Reserved { kind: NameKind, name: String },
    #[error("invalid value for `{key}`: {reason}")]
    BadValue { key: String, reason: String, suggestion: Option<String> },
    #[error("no version of plugin `{name}` satisfies `{requirement}` (available: {available})")]
    NoMatchingVersion { name: String, requirement: String, available: String },
    #[error("expected {expected}, found {found}")]
    TypeMismatch { expected: String, found: Type, context: String },
    #[error("{message}")]
    BadOperand { message: String },
    #[error("`{function}` takes {expected} argument(s), found {found}")]
    Arity { function: String, expected: String, found: usize },
    #[error("stage `{stage}` is missing required input `{port}`")]
    MissingInput { stage: String, port: String },
    #[error("stage `{stage}` needs capability `{capability}`, which is not granted")]
    Ungranted { stage: String, capability: String, reason: String },
    #[error("stage `{stage}` is granted `{capability}` but its plugin never uses it")]
    UnusedGrant { stage: String, capability: String },
    #[error("stages depend on each other in a cycle: {}", path.join(" → "))]
    Cycle { path: Vec<String> },
    #[error("stage `{stage}` does not contribute to the pipeline's output")]
    Unreachable { stage: String },
    #[error("{message}")]
    Template { message: String },
    #[error("stage `{stage}` withholds profile field `{field}`")]
    Withheld { stage: String, field: String, kept: Vec<String> },
    #[error("test `{test}` does not give required input `{input}`")]
    MissingTestInput { test: String, input: String },
}

fn context_suffix(context: &Option<String>) -> String {
    context.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
}

impl Problem {
    /// The stable diagnostic code.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Kdl { .. } => "tailor::dsl::kdl_syntax",
            Problem::TooDeep { .. } => "tailor::dsl::too_deep",
            Problem::ExprSyntax { .. } => "tailor::dsl::expr_syntax",
            Problem::TooComplex { .. } => "tailor::dsl::too_complex",
            Problem::Unknown { kind, .. } => match kind {
                NameKind::Pipeline | NameKind::Stage | NameKind::Variable => "tailor::dsl::unknown_stage",
                NameKind::Input => "tailor::dsl::unknown_input",
                NameKind::Port => "tailor::dsl::unknown_port",
                NameKind::ConfigKey | NameKind::Property => "tailor::dsl::unknown_key",
                NameKind::Node | NameKind::Test => "tailor::dsl::unknown_node",
                NameKind::Plugin => "tailor::dsl::unknown_plugin",
                NameKind::Function => "tailor::dsl::unknown_function",
                NameKind::Capability => "tailor::dsl::unknown_capability",
            },
            Problem::Duplicate { .. } => "tailor::dsl::duplicate_name",
            Problem::Missing { .. } => "tailor::dsl::missing",
            Problem::Shape { .. } => "tailor::dsl::bad_shape",
            Problem::InvalidName { .. } => "tailor::dsl::invalid_name",
            Problem::Reserved { .. } => "tailor::dsl::reserved_name",
            Problem::BadValue { .. } => "tailor::dsl::bad_value",
            Problem::NoMatchingVersion { .. } => "tailor::dsl::no_matching_version",
            Problem::TypeMismatch { .. } => "tailor::dsl::type_mismatch",
            Problem::BadOperand { .. } => "tailor::dsl::bad_operand",
            Problem::Arity { .. } => "tailor::dsl::arity",
            Problem::MissingInput { .. } => "tailor::dsl::missing_input",
            Problem::Ungranted { .. } => "tailor::dsl::ungranted_capability",
            Problem::UnusedGrant { .. } => "tailor::dsl::unused_grant",
            Problem::Cycle { .. } => "tailor::dsl::cycle",
            Problem::Unreachable { .. } => "tailor::dsl::unreachable_stage",
            Problem::Template { .. } => "tailor::dsl::template",
            Problem::Withheld { .. } => "tailor::dsl::withheld_field",
            Problem::MissingTestInput { .. } => "tailor::dsl::missing_test_input",
        }
    }

    /// What the primary location is, when the problem itself knows.
    pub fn label(&self) -> Option<String> {
        match self {
            Problem::TypeMismatch { context, .. } => Some(context.clone()),
            _ => None,
        }
    }

    /// A hint for fixing it, when there is a useful one.
    pub fn help(&self) -> Option<String> {
        match self {
            Problem::Kdl { help, .. } => help.clone(),
            Problem::TooDeep { .. } => Some("flatten the file; pipelines need only a few levels".into()),
            Problem::TooComplex { .. } => Some("split it into smaller expressions or stages".into()),
            Problem::Unknown { suggestion: Some(s), .. } => Some(format!("did you mean `{s}`?")),
            Problem::Unknown { kind: NameKind::Stage, .. } => {
                Some("a reference starts with `input.` or the name of a stage".into())
            }
            Problem::Unknown { kind: NameKind::Plugin, .. } => {
                Some("built-in plugins are named `builtin:NAME`; see `tailor plugin list`".into())
            }
            Problem::Duplicate { .. } => Some("names must be unique; rename one of them".into()),
            Problem::InvalidName { reason, .. } => Some((*reason).into()),
            Problem::Reserved { .. } => Some("pick another name".into()),
            Problem::BadValue { suggestion: Some(s), .. } => Some(format!("did you mean `{s}`?")),
            Problem::MissingInput { port, .. } => Some(format!("add a `{port} \"EXPRESSION\"` line to the stage")),
            Problem::Ungranted { capability, reason, .. } => {
                Some(format!("{reason}; add `{capability}` to the stage's grants=\"…\""))
            }
            Problem::UnusedGrant { .. } => Some("grant only what the plugin needs (least privilege)".into()),
            Problem::Withheld { field, kept, .. } => Some(format!(
                "it passes on only the profile fields in its `fields` ({}); add `{field}` there if this stage needs it",
                if kept.is_empty() { "none".to_string() } else { kept.join(", ") }
            )),
            Problem::Cycle { .. } => {
                Some("stages cannot read each other's outputs in a loop; remove one of the reads".into())
            }
            Problem::Unreachable { .. } => {
                Some("use one of its outputs in a later stage or in `output`, or remove the stage".into())
            }
            Problem::MissingTestInput { input, .. } => Some(format!("add `{input}=…` to the test's `input` line")),
            _ => None,
        }
    }
}

/// A problem found at a place in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub problem: Problem,
    pub severity: Severity,
    pub loc: Loc,
    /// What the primary location points at.
    pub label: Option<String>,
    /// Other places that explain it (the first definition of a duplicate, a cycle's edges…).
    pub related: Vec<(Loc, String)>,
}

impl Diagnostic {
    pub fn error(problem: Problem, loc: Loc) -> Self {
        Diagnostic { problem, severity: Severity::Error, loc, label: None, related: Vec::new() }
    }

    pub fn warning(problem: Problem, loc: Loc) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(problem, loc) }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_related(mut self, loc: Loc, label: impl Into<String>) -> Self {
        self.related.push((loc, label.into()));
        self
    }

    pub fn code(&self) -> &'static str {
        self.problem.code()
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic together with the file it points into, ready for miette to render.
pub struct Report<'a> {
    pub diagnostic: &'a Diagnostic,
    pub source: miette::NamedSource<std::sync::Arc<str>>,
}

impl<'a> Report<'a> {
    pub fn new(diagnostic: &'a Diagnostic, file: &SourceFile) -> Self {
        Report { diagnostic, source: file.named_source() }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic.problem, f)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic.problem.help().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let d = self.diagnostic;
        let label = d.label.clone().or_else(|| d.problem.label());
        let primary = miette::LabeledSpan::new_primary_with_span(label, d.loc);
        let related =
            d.related.iter().map(|(loc, label)| miette::LabeledSpan::new_with_span(Some(label.clone()), *loc));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_kind_has_a_code() {
        let p = Problem::Unknown {
            kind: NameKind::Port,
            name: "itemz".into(),
            context: Some("on stage `similar`".into()),
            suggestion: Some("items".into()),
        };
        assert_eq!(p.code(), "tailor::dsl::unknown_port");
        assert_eq!(p.to_string(), "unknown port `itemz` on stage `similar`");
        assert_eq!(p.help().as_deref(), Some("did you mean `items`?"));
    }
}
