//! Templates: `{{ expr }}`, `{{ for x in list }}…{{ end }}`, `{{ if c }}…{{ elif c }}…{{ else }}…{{ end }}`.
//!
//! The grammar yields a flat run of text and tags; blocks are matched here with an explicit stack
//! so that every mismatch gets a message naming the block and where it opened.

use pest::Parser as _;
use pest::iterators::Pair;

use super::parse::{Grammar, Rule, grammar_error, loc_of, lower_expr};
use super::{Expr, MAX_BLOCK_DEPTH, MAX_TEMPLATE_LEN, Part, SyntaxError, Template, check_bounds};
use crate::span::{Loc, StringMap};

/// Parses a whole template string.
pub fn parse_template(src: &str, map: &StringMap) -> Result<Template, SyntaxError> {
    if src.len() > MAX_TEMPLATE_LEN {
        return Err(SyntaxError::TooComplex {
            reason: format!("longer than {MAX_TEMPLATE_LEN} bytes"),
            loc: map.loc(0, 0),
        });
    }
    check_bounds(src, true).map_err(|(at, reason)| SyntaxError::TooComplex { reason, loc: map.loc(at, at + 1) })?;
    let mut pairs = Grammar::parse(Rule::template, src).map_err(|e| grammar_error(e, map))?;
    let template = pairs.next().expect("invariant: `template` matched");
    let tokens = tokens(template, map);
    build(tokens)
}

enum Token {
    Text(String),
    Tag { tag: Tag, loc: Loc, trim_before: bool, trim_after: bool },
}

enum Tag {
    Expr(Expr),
    For { var: String, var_loc: Loc, list: Expr },
    If(Expr),
    Elif(Expr),
    Else,
    End,
}

fn tokens(template: Pair<'_, Rule>, map: &StringMap) -> Vec<Token> {
    let mut out = Vec::new();
    for pair in template.into_inner() {
        match pair.as_rule() {
            Rule::text => out.push(Token::Text(pair.as_str().to_string())),
            Rule::tag => {
                let loc = loc_of(&pair, map);
                let mut inner = pair.into_inner();
                let open = inner.next().expect("invariant: tag opens");
                let body = inner.next().expect("invariant: tag has a body");
                let close = inner.next().expect("invariant: tag closes");
                let tag = match body.as_rule() {
                    Rule::tag_for => {
                        let mut parts = body.into_inner().filter(|p| matches!(p.as_rule(), Rule::ident | Rule::expr));
                        let var = parts.next().expect("invariant: for has a variable");
                        let list = parts.next().expect("invariant: for has a list");
                        Tag::For {
                            var: var.as_str().to_string(),
                            var_loc: loc_of(&var, map),
                            list: lower_expr(list.into_inner(), map),
                        }
                    }
                    Rule::tag_if => Tag::If(first_expr(body, map)),
                    Rule::tag_elif => Tag::Elif(first_expr(body, map)),
                    Rule::tag_else => Tag::Else,
                    Rule::tag_end => Tag::End,
                    _ => Tag::Expr(first_expr(body, map)),
                };
                out.push(Token::Tag {
                    tag,
                    loc,
                    trim_before: open.as_str().ends_with('-'),
                    trim_after: close.as_str().starts_with('-'),
                });
            }
            _ => {}
        }
    }
    apply_trims(&mut out);
    out
}

fn first_expr(pair: Pair<'_, Rule>, map: &StringMap) -> Expr {
    let expr = pair.into_inner().find(|p| p.as_rule() == Rule::expr).expect("invariant: tag holds an expr");
    lower_expr(expr.into_inner(), map)
}

/// `{{-` trims whitespace at the end of the text before; `-}}` at the start of the text after.
fn apply_trims(tokens: &mut [Token]) {
    for i in 0..tokens.len() {
        let (before, after) = match &tokens[i] {
            Token::Tag { trim_before, trim_after, .. } => (*trim_before, *trim_after),
            Token::Text(_) => continue,
        };
        if before
            && i > 0
            && let Token::Text(t) = &mut tokens[i - 1]
        {
            t.truncate(t.trim_end().len());
        }
        if after
            && i + 1 < tokens.len()
            && let Token::Text(t) = &mut tokens[i + 1]
        {
            *t = t.trim_start().to_string();
        }
    }
}

/// An open block while matching tags.
struct Open {
    loc: Loc,
    block: OpenBlock,
    /// The parts collected for the innermost body so far.
    body: Vec<Part>,
}

enum OpenBlock {
    For { var: String, var_loc: Loc, list: Expr },
    If { branches: Vec<(Expr, Vec<Part>)>, condition: Expr, in_else: bool },
}

fn build(tokens: Vec<Token>) -> Result<Template, SyntaxError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut top: Vec<Part> = Vec::new();
    for token in tokens {
        let body = match stack.last_mut() {
            Some(open) => &mut open.body,
            None => &mut top,
        };
        let (tag, loc) = match token {
            Token::Text(t) if t.is_empty() => continue,
            Token::Text(t) => {
                body.push(Part::Text(t));
                continue;
            }
            Token::Tag { tag, loc, .. } => (tag, loc),
        };
        match tag {
            Tag::Expr(e) => body.push(Part::Expr(e)),
            Tag::For { var, var_loc, list } => push_block(&mut stack, loc, OpenBlock::For { var, var_loc, list })?,
            Tag::If(condition) => {
                push_block(&mut stack, loc, OpenBlock::If { branches: Vec::new(), condition, in_else: false })?
            }
            Tag::Elif(next) => match stack.last_mut() {
                Some(Open { block: OpenBlock::If { branches, condition, in_else: false }, body, .. }) => {
                    let done = std::mem::replace(condition, next);
                    branches.push((done, std::mem::take(body)));
                }
                Some(Open { block: OpenBlock::If { in_else: true, .. }, .. }) => {
                    return Err(stray(loc, "`{{ elif }}` after `{{ else }}`"));
                }
                _ => return Err(stray(loc, "`{{ elif }}` outside an `{{ if }}` block")),
            },
            Tag::Else => match stack.last_mut() {
                Some(Open { block: OpenBlock::If { branches, condition, in_else }, body, .. }) if !*in_else => {
                    branches.push((condition.clone(), std::mem::take(body)));
                    *in_else = true;
                }
                Some(Open { block: OpenBlock::If { in_else: true, .. }, .. }) => {
                    return Err(stray(loc, "a second `{{ else }}` in one `{{ if }}` block"));
                }
                _ => return Err(stray(loc, "`{{ else }}` outside an `{{ if }}` block")),
            },
            Tag::End => {
                let Some(open) = stack.pop() else {
                    return Err(stray(loc, "`{{ end }}` without an open `{{ for }}` or `{{ if }}`"));
                };
                let part = match open.block {
                    OpenBlock::For { var, var_loc, list } => Part::For { var, var_loc, list, body: open.body },
                    OpenBlock::If { mut branches, condition, in_else } => {
                        if in_else {
                            Part::If { branches, otherwise: open.body }
                        } else {
                            branches.push((condition, open.body));
                            Part::If { branches, otherwise: Vec::new() }
                        }
                    }
                };
                match stack.last_mut() {
                    Some(parent) => parent.body.push(part),
                    None => top.push(part),
                }
            }
        }
    }
    if let Some(open) = stack.pop() {
        let what = match open.block {
            OpenBlock::For { .. } => "`{{ for }}`",
            OpenBlock::If { .. } => "`{{ if }}`",
        };
        return Err(SyntaxError::Block {
            message: format!("{what} block is never closed with `{{{{ end }}}}`"),
            loc: open.loc,
        });
    }
    Ok(Template { parts: top })
}

fn push_block(stack: &mut Vec<Open>, loc: Loc, block: OpenBlock) -> Result<(), SyntaxError> {
    if stack.len() >= MAX_BLOCK_DEPTH {
        return Err(SyntaxError::TooComplex { reason: format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"), loc });
    }
    stack.push(Open { loc, block, body: Vec::new() });
    Ok(())
}

fn stray(loc: Loc, message: &str) -> SyntaxError {
    SyntaxError::Block { message: message.to_string(), loc }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Template, SyntaxError> {
        parse_template(src, &StringMap::new("", 0, "-"))
    }

    #[test]
    fn parses_text_and_expressions() {
        let t = parse("Hi {{ user.name }}!").expect("parses");
        assert_eq!(t.parts.len(), 3);
        assert!(matches!(&t.parts[1], Part::Expr(_)));
    }

    #[test]
    fn matches_nested_blocks() {
        let t = parse("{{ for it in xs }}{{ if it.a }}A{{ elif it.b }}B{{ else }}C{{ end }}{{ end }}").expect("parses");
        let [Part::For { body, .. }] = t.parts.as_slice() else { panic!("{t:?}") };
        let [Part::If { branches, otherwise }] = body.as_slice() else { panic!() };
        assert_eq!(branches.len(), 2);
        assert_eq!(otherwise, &vec![Part::Text("C".into())]);
    }

    #[test]
    fn trims_around_dashes() {
        let t = parse("a  \n{{- x -}}\n  b").expect("parses");
        assert_eq!(t.parts[0], Part::Text("a".into()));
        assert_eq!(t.parts[2], Part::Text("b".into()));
    }

    #[test]
    fn rejects_unclosed_and_stray_blocks() {
        assert!(matches!(parse("{{ for x in y }}"), Err(SyntaxError::Block { .. })));
        assert!(matches!(parse("{{ end }}"), Err(SyntaxError::Block { .. })));
        assert!(matches!(parse("{{ else }}"), Err(SyntaxError::Block { .. })));
        assert!(matches!(parse("{{ if a }}{{ else }}{{ else }}{{ end }}"), Err(SyntaxError::Block { .. })));
    }

    #[test]
    fn braces_in_strings_do_not_close_tags() {
        let t = parse("{{ '}}' }}").expect("parses");
        assert_eq!(t.parts.len(), 1);
    }

    #[test]
    fn bounds_block_depth() {
        let src = "{{ if a }}".repeat(20) + &"{{ end }}".repeat(20);
        assert!(matches!(parse(&src), Err(SyntaxError::TooComplex { .. })));
    }
}
