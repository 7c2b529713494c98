//! Declarations: the pipeline vocabulary as written, with locations, before names are resolved.

use std::time::Duration;

use crate::expr::Expr;
use crate::span::{Loc, StringMap};
use crate::types::Type;

/// A name as written, with where.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub loc: Loc,
}

/// A literal KDL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

impl Lit {
    pub fn describe(&self) -> &'static str {
        match self {
            Lit::Text(_) => "a string",
            Lit::Number(_) => "a number",
            Lit::Bool(_) => "a bool",
            Lit::Null => "#null",
        }
    }
}

/// A value in a node with its location and, for strings, the map back into the file.
#[derive(Debug, Clone)]
pub struct Arg {
    pub value: Lit,
    pub loc: Loc,
    pub map: StringMap,
}

/// `pipeline "name" { … }`.
#[derive(Debug, Clone)]
pub struct PipelineDecl {
    pub name: Name,
    pub loc: Loc,
    pub description: Option<String>,
    pub inputs: Vec<InputDecl>,
    pub stages: Vec<StageDecl>,
    pub output: Option<OutputDecl>,
    pub tests: Vec<TestDecl>,
    pub privacy: Option<crate::ir::Privacy>,
}

/// `input "name" type="text" default=…`.
#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: Name,
    pub ty: Option<(Type, Loc)>,
    pub default: Option<Arg>,
    pub loc: Loc,
}

/// `output "EXPRESSION"`.
#[derive(Debug, Clone)]
pub struct OutputDecl {
    pub expr: Option<Expr>,
    pub loc: Loc,
}

/// What a stage does on failure, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrorDecl {
    Fail,
    Skip,
    Fallback,
}

/// `stage "name" use="…" grants="…" … { key value… }`.
#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: Name,
    pub uses: Option<Name>,
    pub grants: Vec<Name>,
    /// Where `grants=` was written, for hints.
    pub grants_loc: Option<Loc>,
    pub cache: Option<(Duration, Loc)>,
    pub on_error: Option<(OnErrorDecl, Loc)>,
    pub when: Option<Expr>,
    pub timeout: Option<(Duration, Loc)>,
    /// `fallback PORT=VALUE…`.
    pub fallback: Option<FallbackDecl>,
    /// Config settings and input bindings, interpreted against the plugin's descriptor.
    pub entries: Vec<EntryDecl>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct FallbackDecl {
    pub values: Vec<(Name, Arg)>,
    pub loc: Loc,
}

/// One child of a stage: `key arg…`.
#[derive(Debug, Clone)]
pub struct EntryDecl {
    pub key: Name,
    pub args: Vec<Arg>,
    pub loc: Loc,
}

/// `test "name" { user { item … } input k=v … expect "…" }`.
#[derive(Debug, Clone)]
pub struct TestDecl {
    pub name: Name,
    pub items: Vec<ItemDecl>,
    pub inputs: Vec<(Name, Arg)>,
    pub expects: Vec<Expr>,
    pub loc: Loc,
}

/// `item id=… kind=… text=… timestamp=… FIELD=…`.
#[derive(Debug, Clone)]
pub struct ItemDecl {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub text: Option<String>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<f64>,
    pub fields: Vec<(Name, Arg)>,
    pub loc: Loc,
}
