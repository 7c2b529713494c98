//! The expression language's syntax: expressions and templates as parsed, with locations.
//!
//! [`parse_expression`] and [`parse_template`] run the one pest grammar (`grammar.pest`) over the
//! decoded text of a KDL string and map every position back into the file through a
//! [`StringMap`]. Names here are still strings; the checker resolves them into the IR.
//! Parsing is bounded: inputs over [`MAX_EXPRESSION_LEN`] / [`MAX_TEMPLATE_LEN`] bytes, bracket
//! nesting over [`MAX_NESTING`] or block nesting over [`MAX_BLOCK_DEPTH`] are refused before
//! anything recursive runs, so no input can exhaust the stack.

mod parse;
mod template;

pub use parse::parse_expression;
pub use template::parse_template;

use crate::span::Loc;

/// Longest expression string accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 64 * 1024;
/// Deepest nesting of `(` and `[` in one expression.
pub const MAX_NESTING: usize = 32;
/// Most prefix operators (`not`, unary `-`) in one expression.
pub const MAX_PREFIX_OPS: usize = 64;
/// Deepest nesting of `{{ for }}` / `{{ if }}` blocks in a template.
pub const MAX_BLOCK_DEPTH: usize = 16;

/// An expression as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Text(String),
    Bool(bool),
    List(Vec<Expr>),
    /// A bare name: an input root, a stage, a loop variable, `item`, `output`.
    Name(String),
    /// `base.name`; the location is the field name's.
    Field(Box<Expr>, String, Loc),
    Index(Box<Expr>, Box<Expr>),
    /// `name(args…)`; the location is the function name's.
    Call(String, Loc, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

/// A template as written: text and tags, with blocks matched up.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Expr(Expr),
    For {
        var: String,
        var_loc: Loc,
        list: Expr,
        body: Vec<Part>,
    },
    /// `if`/`elif` branches in order, then the `else` body (empty when absent).
    If {
        branches: Vec<(Expr, Vec<Part>)>,
        otherwise: Vec<Part>,
    },
}

/// Why an expression or template string was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum SyntaxError {
    /// The grammar did not match.
    Grammar { message: String, loc: Loc },
    /// A bound from the module docs was exceeded.
    TooComplex { reason: String, loc: Loc },
    /// Blocks do not match up (`{{ end }}` without a block, an unclosed `{{ for }}`…).
    Block { message: String, loc: Loc },
}

impl SyntaxError {
    pub fn loc(&self) -> Loc {
        match self {
            SyntaxError::Grammar { loc, .. } | SyntaxError::TooComplex { loc, .. } | SyntaxError::Block { loc, .. } => {
                *loc
            }
        }
    }
}

/// Refuses input whose nesting could make the recursive parts deep. In a template only the text
/// inside `{{ … }}` counts; quoted strings never count.
fn check_bounds(src: &str, template: bool) -> Result<(), (usize, String)> {
    let bytes = src.as_bytes();
    let mut in_tag = !template;
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    let mut prefixes = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !in_tag {
            if bytes[i..].starts_with(b"{{") {
                in_tag = true;
                depth = 0;
                prefixes = 0;
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'(' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err((i, format!("brackets nested more than {MAX_NESTING} deep")));
                }
            }
            b')' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'!' => prefixes += 1,
            b'n' if bytes[i..].starts_with(b"not")
                && !bytes.get(i + 3).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                && !(i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                prefixes += 1
            }
            b'}' if template && bytes[i..].starts_with(b"}}") => {
                in_tag = false;
                i += 2;
                continue;
            }
            _ => {}
        }
        if prefixes > MAX_PREFIX_OPS {
            return Err((i, format!("more than {MAX_PREFIX_OPS} operators `not` / `-`")));
        }
        i += 1;
    }
    Ok(())
}
