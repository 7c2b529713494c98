//! Expressions: pest pairs → [`Expr`], with operator precedence by pest's Pratt parser.

use std::sync::LazyLock;

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::{BinOp, Expr, ExprKind, MAX_EXPRESSION_LEN, SyntaxError, UnOp, check_bounds};
use crate::span::{Loc, StringMap};

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct Grammar;

/// Precedence, loosest first: or, and, not, comparisons and `in`, + -, * / %, unary -, accessors.
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::prefix(Rule::not))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left)
            | Op::infix(Rule::in_op, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left) | Op::infix(Rule::rem, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::postfix(Rule::field) | Op::postfix(Rule::index))
});

/// Parses a whole expression string (the decoded value of a KDL string).
pub fn parse_expression(src: &str, map: &StringMap) -> Result<Expr, SyntaxError> {
    if src.len() > MAX_EXPRESSION_LEN {
        return Err(SyntaxError::TooComplex {
            reason: format!("longer than {MAX_EXPRESSION_LEN} bytes"),
            loc: map.loc(0, src.len()),
        });
    }
    check_bounds(src, false).map_err(|(at, reason)| SyntaxError::TooComplex { reason, loc: map.loc(at, at + 1) })?;
    let mut pairs = Grammar::parse(Rule::expression, src).map_err(|e| grammar_error(e, map))?;
    let expression = pairs.next().expect("invariant: `expression` matched");
    let expr = expression.into_inner().next().expect("invariant: `expression` holds an `expr`");
    Ok(lower_expr(expr.into_inner(), map))
}

/// Lowers the pairs of one `expr` rule.
pub(crate) fn lower_expr(pairs: Pairs<'_, Rule>, map: &StringMap) -> Expr {
    PRATT
        .map_primary(|p| lower_primary(p, map))
        .map_prefix(|op, rhs| {
            let loc = loc_of(&op, map).join(rhs.loc);
            let op = if op.as_rule() == Rule::not { UnOp::Not } else { UnOp::Neg };
            Expr { kind: ExprKind::Unary(op, Box::new(rhs)), loc }
        })
        .map_postfix(|lhs, op| {
            let loc = lhs.loc.join(loc_of(&op, map));
            match op.as_rule() {
                Rule::field => {
                    let name = op.into_inner().next().expect("invariant: field has ident");
                    let name_loc = loc_of(&name, map);
                    let kind = ExprKind::Field(Box::new(lhs), name.as_str().to_string(), name_loc);
                    Expr { kind, loc }
                }
                _ => {
                    let inner = op.into_inner().next().expect("invariant: index has expr");
                    let index = lower_expr(inner.into_inner(), map);
                    Expr { kind: ExprKind::Index(Box::new(lhs), Box::new(index)), loc }
                }
            }
        })
        .map_infix(|lhs, op, rhs| {
            let loc = lhs.loc.join(rhs.loc);
            let op = match op.as_rule() {
                Rule::or => BinOp::Or,
                Rule::and => BinOp::And,
                Rule::eq => BinOp::Eq,
                Rule::ne => BinOp::Ne,
                Rule::lt => BinOp::Lt,
                Rule::le => BinOp::Le,
                Rule::gt => BinOp::Gt,
                Rule::ge => BinOp::Ge,
                Rule::in_op => BinOp::In,
                Rule::add => BinOp::Add,
                Rule::sub => BinOp::Sub,
                Rule::mul => BinOp::Mul,
                Rule::div => BinOp::Div,
                _ => BinOp::Rem,
            };
            Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), loc }
        })
        .parse(pairs)
}

fn lower_primary(pair: Pair<'_, Rule>, map: &StringMap) -> Expr {
    let loc = loc_of(&pair, map);
    let kind = match pair.as_rule() {
        // The grammar only admits digits, a fraction and an exponent, so parsing cannot fail;
        // an overflowing exponent gives infinity, which the checker refuses.
        Rule::number => ExprKind::Number(pair.as_str().parse().unwrap_or(f64::INFINITY)),
        Rule::string => {
            let inner = pair.into_inner().next().expect("invariant: string has inner text");
            ExprKind::Text(unescape(inner.as_str()))
        }
        Rule::boolean => ExprKind::Bool(pair.as_str().starts_with('t')),
        Rule::list => ExprKind::List(pair.into_inner().map(|e| lower_expr(e.into_inner(), map)).collect()),
        Rule::call => {
            let mut inner = pair.into_inner();
            let name = inner.next().expect("invariant: call has a name");
            let name_loc = loc_of(&name, map);
            let args = inner.map(|e| lower_expr(e.into_inner(), map)).collect();
            ExprKind::Call(name.as_str().to_string(), name_loc, args)
        }
        Rule::name => ExprKind::Name(pair.as_str().to_string()),
        // A parenthesised expression.
        _ => return lower_expr(pair.into_inner(), map),
    };
    Expr { kind, loc }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

pub(crate) fn loc_of(pair: &Pair<'_, Rule>, map: &StringMap) -> Loc {
    let span = pair.as_span();
    map.loc(span.start(), span.end())
}

/// Turns pest's error into ours, with rule names a person understands.
pub(crate) fn grammar_error(error: pest::error::Error<Rule>, map: &StringMap) -> SyntaxError {
    let (start, end) = match error.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let message = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, negatives } => {
            let mut expected: Vec<&str> = positives.iter().map(|r| describe_rule(*r)).collect();
            expected.dedup();
            let mut seen = std::collections::BTreeSet::new();
            expected.retain(|e| seen.insert(*e));
            match (expected.as_slice(), negatives.first()) {
                ([], Some(n)) => format!("unexpected {}", describe_rule(*n)),
                ([], None) => "unexpected input".to_string(),
                ([one], _) => format!("expected {one}"),
                ([init @ .., last], _) => format!("expected {} or {last}", init.join(", ")),
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    SyntaxError::Grammar { message, loc: map.loc(start, end) }
}

fn describe_rule(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::expr | Rule::expression | Rule::tag_expr => "an expression",
        Rule::or | Rule::and => "a logical operator",
        Rule::eq | Rule::ne | Rule::le | Rule::ge | Rule::lt | Rule::gt | Rule::in_op => "a comparison",
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::rem => "an arithmetic operator",
        Rule::not | Rule::neg => "a prefix operator",
        Rule::field => "`.field`",
        Rule::index => "`[index]`",
        Rule::number => "a number",
        Rule::string | Rule::sq_inner | Rule::dq_inner => "a string",
        Rule::escape => "an escape sequence",
        Rule::boolean => "a boolean",
        Rule::list => "a list",
        Rule::call => "a function call",
        Rule::name | Rule::ident => "a name",
        Rule::keyword => "a keyword",
        Rule::template | Rule::text => "template text",
        Rule::tag => "a `{{ … }}` tag",
        Rule::open => "`{{`",
        Rule::close => "`}}`",
        Rule::tag_for => "`for NAME in LIST`",
        Rule::tag_if => "`if CONDITION`",
        Rule::tag_elif => "`elif CONDITION`",
        Rule::tag_else => "`else`",
        Rule::tag_end => "`end`",
        Rule::kw_for => "`for`",
        Rule::kw_if => "`if`",
        Rule::kw_elif => "`elif`",
        Rule::WHITESPACE => "whitespace",
        Rule::infix | Rule::prefix | Rule::postfix => "an operator",
        Rule::primary | Rule::ident_char => "an expression",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Expr, SyntaxError> {
        parse_expression(src, &StringMap::new(&format!("\"{src}\""), 0, src))
    }

    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(n) => n.to_string(),
            ExprKind::Text(s) => format!("'{s}'"),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::List(xs) => format!("[{}]", xs.iter().map(show).collect::<Vec<_>>().join(",")),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Field(b, n, _) => format!("{}.{n}", show(b)),
            ExprKind::Index(b, i) => format!("{}[{}]", show(b), show(i)),
            ExprKind::Call(n, _, args) => {
                format!("{n}({})", args.iter().map(show).collect::<Vec<_>>().join(","))
            }
            ExprKind::Unary(op, e) => format!("({op:?} {})", show(e)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
        }
    }

    #[test]
    fn respects_precedence() {
        let e = parse("a or b and not c == 1 + 2 * -3").expect("parses");
        assert_eq!(show(&e), "(a or (b and (Not (c == (1 + (2 * (Neg 3)))))))");
    }

    #[test]
    fn parses_paths_calls_and_lists() {
        let e = parse("len(similar.items[0].title) >= 1 and 'x' in [\"x\", 'y']").expect("parses");
        assert_eq!(show(&e), "((len(similar.items[0].title) >= 1) and ('x' in ['x','y']))");
    }

    #[test]
    fn keywords_are_not_names() {
        assert!(parse("input.query").is_ok());
        assert!(parse("order or notes").is_ok());
        assert!(parse("and").is_err());
    }

    #[test]
    fn reports_where_it_failed() {
        let Err(SyntaxError::Grammar { loc, message }) = parse("a.b +") else { panic!() };
        assert_eq!(loc.offset, 6, "{message}");
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(parse(&deep), Err(SyntaxError::TooComplex { .. })));
        let negs = "-".repeat(100) + "1";
        assert!(matches!(parse(&negs), Err(SyntaxError::TooComplex { .. })));
    }

    #[test]
    fn unescapes_strings() {
        let e = parse(r"'it\'s\n'").expect("parses");
        assert_eq!(e.kind, ExprKind::Text("it's\n".into()));
    }
}
