//! Nesting guard: a lexical pre-scan that keeps the KDL parser's recursion bounded.
//!
//! kdl 6.7 parses children blocks, block comments and parts of its error recovery by
//! recursion, so a hostile file (`a {` five hundred times) overflows the stack and aborts
//! the process. [`check_nesting`] runs before the parser and rejects such input.
//!
//! What it counts, each as one level (measured costs in a debug build: children ~33 KiB a
//! level, the others a third or less):
//! - every open children block `{` (slashdashed ones too: the parser still descends);
//! - every `}` with no open block: the parser restarts the document inside itself once per
//!   stray closer and never returns from those frames until the end;
//! - every nested `/*` inside a block comment, and every [`PIECES_PER_LEVEL`] pieces of a
//!   block comment, since the parser recurses once per `*`, `/` or run of other text in it.
//!
//! Invariants: O(n) time, no panics on any input, reported offsets are ASCII bytes and so
//! char boundaries. The scan is exact for valid KDL: braces inside strings, raw strings,
//! multi-line strings and comments never count. Invalid strings are another matter:
//! the parser's error recovery then reads the rest of the file its own way (an
//! unterminated `"""` followed by deep `{` does overflow it), so after the first malformed
//! string or comment the guard stops trusting its lexing and counts every `{` as a level
//! and every `}`, `*` and `/` as a comment piece. Only invalid files pay for that.
//!
//! Not covered: the recovery also recurses once per top-level node that lacks a
//! terminator (thousands of `)` or `=` in a row), which no lexical scan can tell apart
//! from valid text; callers that parse untrusted input should still give the parser a
//! thread with a known, generous stack.

use thiserror::Error;

/// The nesting limit Tailor uses for pipeline files.
pub const MAX_DEPTH: usize = 64;

/// How many block-comment pieces cost as much stack as one children level.
///
/// Measured on kdl 6.7.1: one piece is 1/9 (debug) to 1/13 (release) of a level.
pub const PIECES_PER_LEVEL: usize = 8;

/// The input nests deeper than the limit allows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("blocks are nested more than {} deep", .depth.saturating_sub(1))]
pub struct TooDeep {
    /// Byte offset of the `{` (or stray `}`, or comment piece) that went over the limit.
    pub offset: usize,
    /// The depth reached there: always the limit plus one.
    pub depth: usize,
}

/// Checks that `src` never nests deeper than `max_depth` levels (see the module docs).
pub fn check_nesting(src: &str, max_depth: usize) -> Result<(), TooDeep> {
    let b = src.as_bytes();
    let over = |offset, depth| {
        if depth > max_depth { Err(TooDeep { offset, depth }) } else { Ok(()) }
    };
    // `levels` is open blocks plus stray-closer restarts; the latter never unwind.
    let (mut levels, mut open) = (0usize, 0usize);
    // Whether a string may start here; the parser reads `a"x"` or `"a""x"` as junk.
    let mut at_boundary = true;
    let mut i = if src.starts_with('\u{feff}') { 3 } else { 0 };
    while i < b.len() {
        match b[i] {
            b'{' => {
                (open, levels) = (open + 1, levels + 1);
                over(i, levels)?;
                (i, at_boundary) = (i + 1, true);
            }
            b'}' if open > 0 => (open, levels, i, at_boundary) = (open - 1, levels - 1, i + 1, false),
            b'}' => {
                levels += 1;
                over(i, levels)?;
                (i, at_boundary) = (i + 1, false);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = line_comment_end(b, i);
                at_boundary = true;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => match block_comment(b, i, levels, &over)? {
                Some(end) => (i, at_boundary) = (end, true),
                None => return panic_scan(b, i, levels, &over),
            },
            b'/' if b.get(i + 1) == Some(&b'-') => i += 2,
            b'"' | b'#' => match string_end(b, i) {
                Lexed::NotString(end) => (i, at_boundary) = (end, false),
                Lexed::String(end) if at_boundary && value_terminator_at(b, end) => (i, at_boundary) = (end, false),
                Lexed::String(_) | Lexed::Malformed => return panic_scan(b, i, levels, &over),
            },
            b'(' | b')' | b'=' | b';' => (i, at_boundary) = (i + 1, true),
            _ => match space_len(b, i) + newline_len(b, i) {
                0 => (i, at_boundary) = (i + 1, false),
                n => (i, at_boundary) = (i + n, true),
            },
        }
    }
    Ok(())
}

/// Counting after the lexing went wrong: every `{` is a level, every `}`, `*` and `/` a
/// comment piece, nothing ever closes.
fn panic_scan(
    b: &[u8],
    from: usize,
    mut levels: usize,
    over: &impl Fn(usize, usize) -> Result<(), TooDeep>,
) -> Result<(), TooDeep> {
    let mut pieces = 0usize;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'{' => levels += 1,
            b'}' | b'*' | b'/' => pieces += 1,
            _ => continue,
        }
        over(i, levels + pieces.div_ceil(PIECES_PER_LEVEL))?;
    }
    Ok(())
}

/// Skips the block comment opening at `start`, charging its recursion on top of `levels`.
/// `Ok(None)` when it is unterminated.
fn block_comment(
    b: &[u8],
    start: usize,
    levels: usize,
    over: &impl Fn(usize, usize) -> Result<(), TooDeep>,
) -> Result<Option<usize>, TooDeep> {
    let (mut nest, mut pieces, mut i) = (0usize, 0usize, start);
    while i < b.len() {
        let at = i;
        match (b[i], b.get(i + 1)) {
            (b'/', Some(b'*')) => (nest, i) = (nest + 1, i + 2),
            (b'*', Some(b'/')) => {
                (nest, i) = (nest.saturating_sub(1), i + 2);
                if nest == 0 {
                    return Ok(Some(i));
                }
                continue;
            }
            (b'*' | b'/', _) => (pieces, i) = (pieces + 1, i + 1),
            _ => {
                pieces += 1;
                while i < b.len() && !matches!(b[i], b'*' | b'/') {
                    i += 1;
                }
            }
        }
        // `nest` includes the outermost comment, which costs a level of its own.
        over(at, levels + nest + pieces.div_ceil(PIECES_PER_LEVEL))?;
    }
    Ok(None)
}

/// Where the well-formed string starting at `i` (`"`, `#"`, `"""`, ...) ends, if one does.
/// Shared with the formatter's trivia lexer.
pub(crate) fn string_end_at(b: &[u8], i: usize) -> Option<usize> {
    match string_end(b, i) {
        Lexed::String(end) => Some(end),
        Lexed::NotString(_) | Lexed::Malformed => None,
    }
}

/// Where the block comment starting at `i` ends; the end of input when unterminated.
pub(crate) fn block_comment_end(b: &[u8], i: usize) -> usize {
    block_comment(b, i, 0, &|_, _| Ok(())).ok().flatten().unwrap_or(b.len())
}

/// What starts at a `"` or `#`.
enum Lexed {
    /// A well-formed string ending before this offset.
    String(usize),
    /// A `#` keyword or stray hashes, ending before this offset.
    NotString(usize),
    /// An unterminated or otherwise malformed string.
    Malformed,
}

fn string_end(b: &[u8], start: usize) -> Lexed {
    let hashes = b[start..].iter().take_while(|&&c| c == b'#').count();
    let open = start + hashes;
    if b.get(open) != Some(&b'"') {
        return Lexed::NotString(open);
    }
    let multi = b[open..].starts_with(b"\"\"\"");
    let end = match (multi, hashes) {
        (true, _) => match newline_len(b, open + 3) {
            0 => None,
            n => multiline_end(b, open + 3 + n, hashes),
        },
        (false, 0) => quoted_end(b, open + 1),
        (false, _) => raw_end(b, open + 1, hashes),
    };
    end.map_or(Lexed::Malformed, Lexed::String)
}

/// End of a single-line quoted string whose body starts at `i`.
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => i = escape_end(b, i),
            _ if newline_len(b, i) > 0 => return None,
            _ => i += 1,
        }
    }
    None
}

/// End of a single-line raw string with `hashes` hashes whose body starts at `i`.
fn raw_end(b: &[u8], mut i: usize, hashes: usize) -> Option<usize> {
    while i < b.len() {
        if b[i] == b'"' && closes_with_hashes(b, i + 1, hashes) {
            return Some(i + 1 + hashes);
        }
        if newline_len(b, i) > 0 {
            return None;
        }
        i += 1;
    }
    None
}

/// End of a multi-line string (raw when `hashes > 0`) whose body starts at `start`, just
/// after the newline that must follow the opening quotes. Malformed bodies (closing quotes
/// not alone on their line, lines missing the closing line's indentation) are `None`,
/// because the parser recovers from them by reading the body as code.
fn multiline_end(b: &[u8], start: usize, hashes: usize) -> Option<usize> {
    let escapes = hashes == 0;
    let is_close =
        |i: usize| b.get(i..).is_some_and(|rest| rest.starts_with(b"\"\"\"")) && closes_with_hashes(b, i + 3, hashes);
    let (mut i, mut line) = (start, start);
    while !is_close(i) {
        if i >= b.len() {
            return None;
        }
        match (b[i], newline_len(b, i)) {
            (b'\\', _) if escapes => i = escape_end(b, i),
            (_, 0) => i += 1,
            (_, n) => (i, line) = (i + n, i + n),
        }
    }
    let (close, prefix) = (i, &b[line..i]);
    if !is_spaces(prefix) {
        return None;
    }
    let (mut i, mut line_start) = (start, true);
    while i < line {
        if line_start && !b[i..].starts_with(prefix) && !blank_line(b, i) {
            return None;
        }
        line_start = false;
        match (b[i], newline_len(b, i)) {
            (b'\\', _) if escapes => i = escape_end(b, i),
            (_, 0) => i += 1,
            (_, n) => (i, line_start) = (i + n, true),
        }
    }
    Some(close + 3 + hashes)
}

fn closes_with_hashes(b: &[u8], i: usize, hashes: usize) -> bool {
    b.len() >= i + hashes && b[i..i + hashes].iter().all(|&c| c == b'#')
}

/// End of the escape at `i` (a backslash); whitespace escapes swallow newlines too.
fn escape_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    loop {
        match space_len(b, j) + newline_len(b, j) {
            0 => break,
            n => j += n,
        }
    }
    if j == i + 1 { (i + 2).min(b.len()) } else { j }
}

fn line_comment_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match newline_len(b, i) {
            0 => i += 1,
            n => return i + n,
        }
    }
    i
}

/// Whether a value may end right before `i` (the parser's `value_terminator`).
fn value_terminator_at(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        None | Some(b'=' | b')' | b'{' | b'}' | b';' | b'\\') => true,
        Some(b'/') => matches!(b.get(i + 1), Some(b'/' | b'*')),
        Some(_) => space_len(b, i) + newline_len(b, i) > 0,
    }
}

fn blank_line(b: &[u8], mut i: usize) -> bool {
    while space_len(b, i) > 0 {
        i += space_len(b, i);
    }
    newline_len(b, i) > 0
}

fn is_spaces(mut s: &[u8]) -> bool {
    while !s.is_empty() {
        match space_len(s, 0) {
            0 => return false,
            n => s = &s[n..],
        }
    }
    true
}

/// KDL v2 newlines, longest first so `\r\n` wins over `\r`.
const NEWLINES: [&str; 8] = ["\r\n", "\r", "\n", "\u{85}", "\u{b}", "\u{c}", "\u{2028}", "\u{2029}"];

/// KDL v2 unicode spaces.
const SPACES: [&str; 18] = [
    "\t", " ", "\u{a0}", "\u{1680}", "\u{2000}", "\u{2001}", "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}",
    "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}", "\u{200a}", "\u{202f}", "\u{205f}", "\u{3000}",
];

pub(crate) fn newline_len(b: &[u8], i: usize) -> usize {
    match_len(b, i, &NEWLINES)
}

pub(crate) fn space_len(b: &[u8], i: usize) -> usize {
    match_len(b, i, &SPACES)
}

fn match_len(b: &[u8], i: usize, set: &[&str]) -> usize {
    let rest = b.get(i..).unwrap_or_default();
    set.iter().find(|p| rest.starts_with(p.as_bytes())).map_or(0, |p| p.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "a {\n".repeat(depth), "}\n".repeat(depth))
    }

    #[test]
    fn accepts_depth_exactly_at_limit() {
        assert_eq!(check_nesting(&nested(4), 4), Ok(()));
        assert_eq!(check_nesting(&nested(MAX_DEPTH), MAX_DEPTH), Ok(()));
    }

    #[test]
    fn rejects_one_past_limit_at_the_offending_brace() {
        let src = nested(5);
        let offset = src.match_indices('{').nth(4).expect("test input has five braces").0;
        assert_eq!(check_nesting(&src, 4), Err(TooDeep { offset, depth: 5 }));
        assert_eq!(TooDeep { offset, depth: 5 }.to_string(), "blocks are nested more than 4 deep");
    }

    #[test]
    fn ignores_braces_in_strings() {
        let src = r####"
            a "{{{" "\"{{" key="}}}{"
            b #"{{"{"# ##"{"#{"## #"""
                {{{
                """#
            c """
                {{ \"""{{
                """
            d #true {
                e "}" {
                }
            }
        "####;
        assert!(kdl::KdlDocument::parse(src).is_ok());
        assert_eq!(check_nesting(src, 2), Ok(()));
        assert!(check_nesting(src, 1).is_err());
    }

    #[test]
    fn ignores_braces_in_comments() {
        let src = "// {{{{\na /* {{ */ {\n    b /* {{ {{ */\n}";
        assert!(kdl::KdlDocument::parse(src).is_ok());
        // The block comments cost two levels: one each, plus one for their few pieces.
        assert_eq!(check_nesting(src, 3), Ok(()));
        assert!(check_nesting(src, 2).is_err());
    }

    #[test]
    fn counts_slashdashed_children() {
        assert!(check_nesting("a /-{ b { } }", 1).is_err());
    }

    #[test]
    fn counts_stray_closers_as_levels() {
        assert_eq!(check_nesting("}}", 2), Ok(()));
        assert_eq!(check_nesting("a {} }}}", 2), Err(TooDeep { offset: 7, depth: 3 }));
    }

    #[test]
    fn charges_block_comment_pieces_and_nesting() {
        // One level for the comment, one per eight pieces: " " then 24 times "*" and " ".
        let pieces = format!("/* {}*/", "* ".repeat(24));
        assert_eq!(check_nesting(&pieces, 8), Ok(()));
        assert_eq!(check_nesting(&pieces, 7).map_err(|e| e.depth), Err(8));
        let nest = format!("{}{}", "/*".repeat(10), "*/".repeat(10));
        assert_eq!(check_nesting(&nest, 10), Ok(()));
        assert_eq!(check_nesting(&nest, 9), Err(TooDeep { offset: 18, depth: 10 }));
    }

    #[test]
    fn distrusts_the_rest_after_malformed_strings() {
        let deep = "{".repeat(10);
        for bad in [
            "x \"abc\n",
            "x \"\"\"\n",
            "x \"\"\"x",
            "x #\"abc\n",
            "x #\"\"\"\n",
            "abc\"",
            "x \"a\"\"",
            "x \"\"\"\n  a\n    \"\"\"\n\"",
            "x /* ",
        ] {
            let src = format!("{bad}{deep}\"");
            assert!(check_nesting(&src, 5).is_err(), "{bad:?} slipped through");
        }
    }

    #[test]
    fn accepts_valid_multiline_strings_with_escapes() {
        let src = "a \"\"\"\n    x \\\n  y\n\n    \"\"\" {\n}\nb #\"\"\"\n  \"\"# c\n  \"\"\"#";
        assert!(kdl::KdlDocument::parse(src).is_ok());
        // Stays exact: only the one real block counts.
        assert_eq!(check_nesting(src, 1), Ok(()));
    }

    #[test]
    fn survives_unbalanced_and_garbage_input() {
        for src in ["}", "{", "{{}}}}{", "\"", "#", "##\"", "/*", "*/", "\\", "/-", "\u{feff}{", "é{ß}"] {
            let _ = check_nesting(src, 1);
        }
        assert_eq!(check_nesting("\u{feff}\"x\" {}", 1), Ok(()));
    }

    #[test]
    fn never_panics_and_reports_char_boundaries() {
        // A small xorshift generator keeps the test deterministic and dependency-free.
        let alphabet = ["{", "}", "\"", "#", "/", "*", "\\", "\n", " ", "a", "=", "-", "é", "\u{2028}"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..4000 {
            let mut src = String::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                src.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            if let Err(e) = check_nesting(&src, 2) {
                assert!(src.is_char_boundary(e.offset) && e.offset < src.len(), "{src:?}");
                assert_eq!(e.depth, 3);
            }
        }
    }

    /// The guard is only worth its limit if kdl survives everything the limit lets through.
    /// Debug builds spend ~33 KiB of stack per level, so depth 64 needs more than the
    /// 2 MiB a spawned (or test) thread gets by default; 8 MiB is the main thread's.
    #[test]
    fn kdl_parses_everything_the_limit_allows() {
        let shapes: [fn(usize) -> String; 4] = [
            nested,
            |n| format!("/* {}*/", "* ".repeat(n)),
            |n| format!("{}{}", "/*".repeat(n), "*/".repeat(n)),
            |n| "}".repeat(n),
        ];
        let largest_allowed = shapes.map(|shape| {
            (1..)
                .map(shape)
                .take_while(|src| check_nesting(src, MAX_DEPTH).is_ok())
                .last()
                .expect("the smallest shape is allowed")
        });
        let parsed = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || largest_allowed.iter().map(|src| kdl::KdlDocument::parse(src).is_ok()).collect::<Vec<_>>())
            .expect("spawn parser thread")
            .join()
            .expect("kdl survives");
        // The stray closers are errors, but reported ones rather than an abort.
        assert_eq!(parsed, [true, true, true, false]);
    }
}
