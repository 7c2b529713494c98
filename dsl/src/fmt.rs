//! `tailor fmt`: the one canonical layout of a pipeline file.
//!
//! Layout: four spaces per level; a node's name and entries separated by single spaces,
//! properties as `key=value`; ` {` ends the node's line and `}` stands alone; empty `{}`
//! dropped; one node per line (no `;`, no `\` continuations); string values always quoted,
//! multi-line strings re-indented one level below their node; at most one blank line
//! between nodes and none after `{`, before `}` or at the start; exactly one final `\n`.
//!
//! Comments survive: ones on their own line stay on their own line at the node's
//! indentation, ones after code stay at the end of that line, slashdashed (`/-`) nodes
//! and entries are kept as written. Comments inside an entry (`k /*x*/ = v`) move right
//! after it, and `//` comments inside `\` continuations move above their node.
//!
//! Invariants: formatting is idempotent, and never changes what the file means — the
//! output is parsed again and compared with the input before it is returned.
//!
//! kdl keeps most trivia in its format structs, but drops what follows a children block's
//! `}` when a space comes first (`} // note`); that text is recovered from the node's span.

use std::ops::Range;

use kdl::{KdlDocument, KdlEntry, KdlError, KdlIdentifier, KdlNode, KdlValue};
use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use crate::syntax::guard::{
    GuardError, ParseFailure, ParserThreadError, block_comment_end, newline_len, parse_kdl, space_len, string_end,
};

const INDENT: &str = "    ";
const BOM: &str = "\u{feff}";

/// Why a file could not be formatted.
#[derive(Debug, Error, Diagnostic)]
pub enum FormatError {
    /// The file is not valid KDL v2.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Parse(#[from] KdlError),
    /// The file is one the KDL parser cannot be trusted with (too large, too deep, ...).
    #[error("{source}")]
    #[diagnostic(code(tailor::fmt::refused))]
    Refused {
        source: GuardError,
        #[label("here")]
        at: SourceSpan,
        #[help]
        help: &'static str,
    },
    /// The parser thread failed to run.
    #[error(transparent)]
    #[diagnostic(code(tailor::fmt::parser_thread))]
    Thread(#[from] ParserThreadError),
    /// The formatted text would mean something else: a formatter bug, caught before any
    /// file is written.
    #[error("formatting would change the file's meaning; this is a bug in `tailor fmt`")]
    #[diagnostic(code(tailor::fmt::changed_meaning))]
    ChangedMeaning,
}

impl From<ParseFailure> for FormatError {
    fn from(failure: ParseFailure) -> Self {
        match failure {
            ParseFailure::Kdl(e) => Self::Parse(e),
            ParseFailure::Refused(source) => {
                let (at, help) = ((source.offset(), 0).into(), source.help());
                Self::Refused { source, at, help }
            }
            ParseFailure::Thread(e) => Self::Thread(e),
        }
    }
}

/// Formats a whole pipeline file into its canonical layout.
pub fn format_source(src: &str) -> Result<String, FormatError> {
    let doc = parse_kdl(src)?;
    let mut printer = Printer::new(src);
    printer.document(&doc, 0);
    let out = printer.finish();
    match parse_kdl(&out) {
        Ok(again) if same_meaning(&doc, &again) => Ok(out),
        // Re-indenting can push a file that was just under the size limit over it.
        Err(failure @ ParseFailure::Refused(GuardError::TooLarge { .. }) | failure @ ParseFailure::Thread(_)) => {
            Err(failure.into())
        }
        _ => Err(FormatError::ChangedMeaning),
    }
}

/// Whether two documents hold the same nodes, entries and values, ignoring layout and
/// comments; an empty children block counts as none.
fn same_meaning(a: &KdlDocument, b: &KdlDocument) -> bool {
    fn ident(i: Option<&KdlIdentifier>) -> Option<&str> {
        i.map(KdlIdentifier::value)
    }
    fn children(n: &KdlNode) -> Option<&KdlDocument> {
        n.children().filter(|c| !c.nodes().is_empty())
    }
    a.nodes().len() == b.nodes().len()
        && a.nodes().iter().zip(b.nodes()).all(|(x, y)| {
            x.name().value() == y.name().value()
                && ident(x.ty()) == ident(y.ty())
                && x.entries().len() == y.entries().len()
                && x.entries().iter().zip(y.entries()).all(|(e, f)| {
                    ident(e.name()) == ident(f.name()) && ident(e.ty()) == ident(f.ty()) && e.value() == f.value()
                })
                && match (children(x), children(y)) {
                    (None, None) => true,
                    (Some(c), Some(d)) => same_meaning(c, d),
                    _ => false,
                }
        })
}

/// Writes the canonical text, tracking where the source was (line start or not, its
/// indentation) so comments keep their place relative to code.
struct Printer<'s> {
    src: &'s str,
    out: String,
    /// The last output line has no `\n` yet.
    line_open: bool,
    /// The open output line ends in a `//` comment, so nothing may be appended to it.
    line_comment: bool,
    /// A blank line is owed before the next line.
    blank: bool,
    /// Nothing printed since the file start or the last `{`: blank lines are dropped.
    block_start: bool,
    /// In the source, only whitespace since the last newline.
    at_line_start: bool,
    /// In the source, the whitespace that opens the current line.
    src_indent: String,
}

impl<'s> Printer<'s> {
    fn new(src: &'s str) -> Self {
        Self {
            src,
            out: String::new(),
            line_open: false,
            line_comment: false,
            blank: false,
            block_start: true,
            at_line_start: true,
            src_indent: String::new(),
        }
    }

    fn finish(mut self) -> String {
        if self.line_open {
            self.out.push('\n');
        }
        self.out
    }

    fn start_line(&mut self, depth: usize) {
        if self.line_open {
            self.out.push('\n');
        }
        if self.blank && !self.block_start {
            self.out.push('\n');
        }
        (self.blank, self.block_start, self.line_open, self.line_comment) = (false, false, true, false);
        self.out.push_str(&INDENT.repeat(depth));
    }

    fn own_line(&mut self, depth: usize, text: &str) {
        self.start_line(depth);
        self.out.push_str(text);
        self.at_line_start = false;
    }

    /// A comment goes on its own line if it started one, else at the end of the last line.
    fn comment(&mut self, depth: usize, text: &str, is_line_comment: bool) {
        let orig = self.at_line_start.then(|| self.src_indent.clone());
        let text = reindent(text, orig.as_deref(), &INDENT.repeat(depth));
        if self.at_line_start || !self.line_open || self.line_comment {
            self.own_line(depth, &text);
        } else {
            self.out.push(' ');
            self.out.push_str(&text);
        }
        (self.line_comment, self.at_line_start) = (is_line_comment, false);
    }

    fn document(&mut self, doc: &KdlDocument, depth: usize) {
        let (leading, trailing) = doc.format().map_or(("", ""), |f| (&f.leading[..], &f.trailing[..]));
        self.trivia(leading, depth);
        for node in doc.nodes() {
            self.node(node, depth);
        }
        self.trivia(trailing, depth);
    }

    /// Whitespace and comments between nodes (and `;` or newline terminators).
    fn trivia(&mut self, text: &str, depth: usize) {
        let toks = lex(text);
        let mut k = 0;
        while k < toks.len() {
            let (tok, r) = (&toks[k].0, toks[k].1.clone());
            match tok {
                Tok::Space if self.at_line_start => self.src_indent = text[r.clone()].to_owned(),
                Tok::Space | Tok::Semi => {}
                Tok::Newline => {
                    self.blank |= self.at_line_start;
                    self.at_line_start = true;
                    self.src_indent.clear();
                }
                Tok::LineComment => self.comment(depth, &text[r.clone()], true),
                Tok::BlockComment => self.comment(depth, &text[r.clone()], false),
                Tok::Escline(Some(c)) => self.comment(depth, &text[c.clone()], true),
                Tok::Escline(None) => {}
                Tok::Word => k = self.slashdashed(text, &toks, k, depth),
            }
            k += 1;
        }
    }

    /// A slashdashed node in trivia, on its own line: `/-`, then its target up to the end
    /// of the target's line. A gap of plain whitespace after `/-` becomes one space.
    /// Returns the index of its last token.
    fn slashdashed(&mut self, text: &str, toks: &[(Tok, Range<usize>)], mut k: usize, depth: usize) -> usize {
        let dash = toks[k].1.clone();
        let dash_orig = self.at_line_start.then(|| self.src_indent.clone());
        let (mut target_orig, mut line_start) = (dash_orig.clone(), false);
        let mut target = (&text[dash.clone()] != "/-").then_some(dash.start);
        let (mut end, mut plain_gap, mut dangling) = (dash.end, true, Vec::new());
        while let Some((next, r)) = toks.get(k + 1) {
            match next {
                Tok::Newline if target.is_none() => (target_orig, line_start) = (Some(String::new()), true),
                Tok::Newline | Tok::Semi | Tok::LineComment => break,
                Tok::Space if line_start => target_orig = Some(text[r.clone()].to_owned()),
                Tok::Space | Tok::Escline(None) => {}
                Tok::Escline(Some(c)) => {
                    plain_gap &= target.is_some();
                    dangling.push(c.clone());
                }
                Tok::Word | Tok::BlockComment => {
                    plain_gap &= target.is_some() || *next == Tok::Word;
                    target.get_or_insert(r.start);
                    (end, dangling) = (r.end, Vec::new());
                }
            }
            line_start &= matches!(next, Tok::Newline | Tok::Space);
            k += 1;
        }
        let (text_out, orig) = match target {
            Some(t) if plain_gap && t > dash.start => (format!("/- {}", &text[t..end]), target_orig),
            _ => (text[dash.start..end].to_owned(), dash_orig),
        };
        self.own_line(depth, &reindent(&text_out, orig.as_deref(), &INDENT.repeat(depth)));
        // A `\ // comment` ending the node: its comment stays, the continuation cannot.
        for c in dangling {
            self.comment(depth, &text[c], true);
        }
        k
    }

    fn node(&mut self, node: &KdlNode, depth: usize) {
        let default = kdl::KdlNodeFormat::default();
        let f = node.format().unwrap_or(&default);
        self.trivia(&f.leading, depth);
        let mut line = Inline {
            items: Vec::new(),
            hoisted: Vec::new(),
            orig: self.at_line_start.then(|| self.src_indent.clone()),
            indent: INDENT.repeat(depth),
        };
        let mut head = String::new();
        if let Some(ty) = node.ty() {
            head = format!("({})", string_text(ty.repr(), ty.value(), depth, true));
        }
        head.push_str(&string_text(node.name().repr(), node.name().value(), depth, true));
        line.items.push(head);
        for text in [&f.before_ty_name, &f.after_ty_name, &f.after_ty] {
            line.trivia(text);
        }
        for entry in node.entries() {
            line.entry(entry, depth);
        }
        line.trivia(&f.before_children);

        let (after_close, terminator) = match node.children() {
            Some(_) if f.terminator.is_empty() => self.lost_after_children(node),
            _ => ("", &f.terminator[..]),
        };
        let children = node.children().filter(|c| has_content(c));
        if children.is_none() {
            line.trivia(&f.before_terminator);
            line.trivia(after_close);
        }
        for comment in std::mem::take(&mut line.hoisted) {
            self.comment(depth, &comment, true);
        }
        self.own_line(depth, &line.items.join(" "));
        if let Some(children) = children {
            self.out.push_str(" {");
            (self.block_start, self.at_line_start) = (true, false);
            self.document(children, depth + 1);
            line.items = vec!["}".to_owned()];
            line.trivia(&f.before_terminator);
            line.trivia(after_close);
            self.blank = false;
            self.own_line(depth, &line.items.join(" "));
            for comment in line.hoisted {
                self.comment(depth, &comment, true);
            }
        }
        self.trivia(terminator, depth);
    }

    /// kdl drops the spaces and comments after a children block's `}` and the terminator
    /// after them (`} /* a */ // b`); they sit between the node's last code `}` and the
    /// end of its span, and right after the span.
    fn lost_after_children(&self, node: &KdlNode) -> (&'s str, &'s str) {
        let (start, end) = (node.span().offset(), node.span().offset() + node.span().len());
        let (Some(text), Some(rest)) = (self.src.get(start..end), self.src.get(end..)) else {
            return ("", "");
        };
        let b = text.as_bytes();
        let (mut i, mut last_close) = (0, None::<usize>);
        while i < b.len() {
            i = match b[i] {
                b'/' if b.get(i + 1) == Some(&b'/') => line_end(b, i),
                b'/' if b.get(i + 1) == Some(&b'*') => block_comment_end(b, i),
                b'"' | b'#' => string_end(b, i).unwrap_or(i + 1),
                c => {
                    last_close = if c == b'}' { Some(i) } else { last_close };
                    i + 1
                }
            };
        }
        let r = rest.as_bytes();
        let terminator = match r.first() {
            Some(b';') => 1,
            Some(b'/') if r.get(1) == Some(&b'/') => line_end(r, 0) + newline_len(r, line_end(r, 0)),
            _ => newline_len(r, 0),
        };
        match last_close {
            Some(close) => (&text[close + 1..], &rest[..terminator]),
            None => ("", ""),
        }
    }
}

/// The pieces of one output line: code and inline comments, plus `//` comments that must
/// move above it.
struct Inline {
    items: Vec<String>,
    hoisted: Vec<String>,
    /// The source line's indentation, when the node started its line.
    orig: Option<String>,
    indent: String,
}

impl Inline {
    /// Trivia inside a node's line: block comments and slashdashed entries or children
    /// blocks stay in place as items; `\` continuations are joined.
    fn trivia(&mut self, text: &str) {
        for (tok, r) in lex(text) {
            match tok {
                Tok::Word | Tok::BlockComment => {
                    self.items.push(reindent(&text[r], self.orig.as_deref(), &self.indent));
                }
                Tok::LineComment => self.hoisted.push(text[r].to_owned()),
                Tok::Escline(Some(c)) => self.hoisted.push(text[c].to_owned()),
                Tok::Escline(None) | Tok::Space | Tok::Newline | Tok::Semi => {}
            }
        }
    }

    fn entry(&mut self, entry: &KdlEntry, depth: usize) {
        let default = kdl::KdlEntryFormat::default();
        let f = entry.format().unwrap_or(&default);
        self.trivia(&f.leading);
        let mut text = String::new();
        if let Some(key) = entry.name() {
            text = format!("{}=", string_text(key.repr(), key.value(), depth, true));
        }
        if let Some(ty) = entry.ty() {
            text.push_str(&format!("({})", string_text(ty.repr(), ty.value(), depth, true)));
        }
        let repr = match &f.value_repr {
            repr if !repr.is_empty() => repr.clone(),
            _ => entry.value().to_string(),
        };
        match entry.value() {
            KdlValue::String(value) => text.push_str(&string_text(Some(&repr), value, depth, false)),
            _ => text.push_str(&repr),
        }
        self.items.push(text);
        for t in [&f.after_key, &f.after_eq, &f.before_ty_name, &f.after_ty_name, &f.after_ty, &f.trailing] {
            self.trivia(t);
        }
    }
}

/// Whether a children block holds anything worth its braces: nodes or comments.
fn has_content(doc: &KdlDocument) -> bool {
    let trivia = doc.format().map_or(String::new(), |f| format!("{} {}", f.leading, f.trailing));
    !doc.nodes().is_empty()
        || lex(&trivia).iter().any(|(t, _)| !matches!(t, Tok::Space | Tok::Newline | Tok::Semi | Tok::Escline(None)))
}

/// The canonical text of a string (a value when `keep_bare` is false, else a name, key or
/// type), given its source form.
fn string_text(repr: Option<&str>, value: &str, depth: usize, keep_bare: bool) -> String {
    let Some(repr) = repr else {
        return KdlIdentifier::from(value).to_string();
    };
    let unhashed = repr.trim_start_matches('#');
    if unhashed.starts_with("\"\"\"") {
        reindent_multiline(repr, value, &INDENT.repeat(depth + 1)).unwrap_or_else(|| split_lines(repr).join("\n"))
    } else if unhashed.len() < repr.len() {
        repr.to_owned()
    } else if repr.starts_with('"') {
        // A `\` escape may have continued it over lines.
        if split_lines(repr).len() > 1 { quote(value) } else { repr.to_owned() }
    } else if keep_bare {
        repr.to_owned()
    } else {
        quote(value)
    }
}

/// Moves a multi-line string's body to `indent`: in KDL v2 every body line loses the
/// closing line's indentation, so swapping that prefix keeps the value. `None` when the
/// body is irregular (`\` escapes spanning lines), checked by parsing the result.
fn reindent_multiline(repr: &str, value: &str, indent: &str) -> Option<String> {
    let lines = split_lines(repr);
    let (open, rest) = lines.split_first()?;
    let (close, body) = rest.split_last()?;
    let quotes = close.find("\"\"\"")?;
    let prefix = &close[..quotes];
    if !is_blank(prefix) {
        return None;
    }
    let mut out = (*open).to_owned();
    for line in body {
        out.push('\n');
        if !is_blank(line) {
            out.push_str(indent);
            out.push_str(line.strip_prefix(prefix)?);
        }
    }
    out.push('\n');
    out.push_str(indent);
    out.push_str(&close[quotes..]);
    let same = KdlEntry::parse(&out).is_ok_and(|e| e.value().as_string() == Some(value));
    same.then_some(out)
}

/// Re-indents verbatim text (a comment, a slashdashed node): if every later line starts
/// with the indentation its first line had in the source, that prefix becomes `indent`;
/// otherwise the lines stay as they are. Blank lines become empty and line ends lose
/// their spaces either way, except inside strings.
fn reindent(text: &str, orig: Option<&str>, indent: &str) -> String {
    let lines = split_lines(text);
    let shift = orig.filter(|o| lines[1..].iter().all(|l| is_blank(l) || l.starts_with(o)));
    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        match shift {
            _ if n == 0 => out.push_str(line),
            _ if is_blank(line) => out.push('\n'),
            Some(o) => {
                out.push('\n');
                out.push_str(indent);
                out.push_str(&line[o.len()..]);
            }
            None => {
                out.push('\n');
                out.push_str(line);
            }
        }
    }
    trim_line_ends(&out)
}

/// Drops spaces before each `\n` that is not inside a string.
fn trim_line_ends(text: &str) -> String {
    let b = text.as_bytes();
    let (mut out, mut copied, mut i) = (String::new(), 0, 0);
    while i < b.len() {
        i = match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = line_end(b, i);
                let kept = text[..end].trim_end().len();
                if kept < end {
                    out.push_str(&text[copied..kept]);
                    copied = end;
                }
                end
            }
            b'/' if b.get(i + 1) == Some(&b'*') => block_comment_end(b, i),
            b'"' | b'#' => string_end(b, i).unwrap_or(i + 1),
            _ if space_len(b, i) > 0 => {
                let mut j = i;
                while space_len(b, j) > 0 {
                    j += space_len(b, j);
                }
                if j == b.len() || b[j] == b'\n' {
                    out.push_str(&text[copied..i]);
                    copied = j;
                }
                j
            }
            _ => i + 1,
        };
    }
    out.push_str(&text[copied..]);
    out
}

/// A string value quoted with KDL v2 escapes.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control()
                || matches!(c, '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn split_lines(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let (mut lines, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        match newline_len(b, i) {
            0 => i += 1,
            n => {
                lines.push(&text[start..i]);
                (i, start) = (i + n, i + n);
            }
        }
    }
    lines.push(&text[start..]);
    lines
}

fn is_blank(line: &str) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while space_len(b, i) > 0 {
        i += space_len(b, i);
    }
    i == b.len()
}

/// The offset of the newline ending the line at `i` (or the end of input).
fn line_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && newline_len(b, i) == 0 {
        i += 1;
    }
    i
}

/// Tokens of trivia: the text kdl keeps between the parts of the tree.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    Newline,
    Semi,
    /// `//` to the end of the line, newline excluded.
    LineComment,
    BlockComment,
    /// `\`, spaces, an optional `//` comment (its range) and the newline.
    Escline(Option<Range<usize>>),
    /// Anything else, up to a space, newline, `;`, `\` or comment outside braces: a
    /// slashdash and its target, with strings and `{...}` blocks taken whole.
    Word,
}

fn lex(text: &str) -> Vec<(Tok, Range<usize>)> {
    let b = text.as_bytes();
    let (mut toks, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let start = i;
        let tok = if space_len(b, i) > 0 || b[i..].starts_with(BOM.as_bytes()) {
            // A byte-order mark can only open the file; it goes like a space.
            if space_len(b, i) == 0 {
                i += BOM.len();
            }
            while space_len(b, i) > 0 {
                i += space_len(b, i);
            }
            Tok::Space
        } else if newline_len(b, i) > 0 {
            i += newline_len(b, i);
            Tok::Newline
        } else if b[i] == b';' {
            i += 1;
            Tok::Semi
        } else if b[i..].starts_with(b"//") {
            i = line_end(b, i);
            Tok::LineComment
        } else if b[i..].starts_with(b"/*") {
            i = block_comment_end(b, i);
            Tok::BlockComment
        } else if b[i] == b'\\' {
            i += 1;
            while space_len(b, i) > 0 {
                i += space_len(b, i);
            }
            let comment = b[i..].starts_with(b"//").then(|| i..line_end(b, i));
            i = comment.as_ref().map_or(i, |c| c.end);
            i += newline_len(b, i);
            Tok::Escline(comment)
        } else {
            i = word_end(b, i);
            Tok::Word
        };
        toks.push((tok, start..i));
    }
    toks
}

fn word_end(b: &[u8], start: usize) -> usize {
    let (mut i, mut depth) = (start, 0usize);
    while i < b.len() {
        let comment = b[i] == b'/' && matches!(b.get(i + 1), Some(b'/' | b'*'));
        let stop = space_len(b, i) + newline_len(b, i) > 0 || matches!(b[i], b';' | b'\\') || comment;
        if depth == 0 && stop && i > start {
            break;
        }
        i = match b[i] {
            b'"' | b'#' => string_end(b, i).unwrap_or(i + 1),
            b'/' if b.get(i + 1) == Some(&b'*') => block_comment_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => line_end(b, i),
            b'{' => {
                depth += 1;
                i + 1
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            _ => i + 1,
        };
    }
    // Multi-byte characters are stepped over byte by byte; stops only happen at ASCII or
    // at a character's first byte, so the end is a char boundary.
    while i < b.len() && (b[i] & 0xc0) == 0x80 {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(src: &str) -> String {
        format_source(src).unwrap_or_else(|e| panic!("{e:?}\n--- input:\n{src}"))
    }

    /// Formats, then checks the promises: same meaning, idempotent, tidy lines.
    fn check(src: &str) -> String {
        let out = fmt(src);
        let (a, b) = (KdlDocument::parse(src).unwrap(), KdlDocument::parse(&out).unwrap());
        assert!(same_meaning(&a, &b), "meaning changed:\n{src}\n---\n{out}");
        assert_eq!(fmt(&out), out, "not idempotent; first pass:\n{out}");
        assert!(out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")), "{out:?}");
        assert!(out.lines().all(|l| !l.ends_with(' ')), "trailing space:\n{out}");
        assert_eq!(comments(src), comments(&out), "comments lost:\n{src}\n---\n{out}");
        out
    }

    /// Every comment and slashdash, whitespace removed, sorted: what must survive.
    fn comments(src: &str) -> Vec<String> {
        let b = src.as_bytes();
        let (mut found, mut i) = (Vec::new(), 0);
        while i < b.len() {
            let end = match (b[i], b.get(i + 1)) {
                (b'"' | b'#', _) => string_end(b, i).unwrap_or(i + 1),
                (b'/', Some(b'/')) => line_end(b, i),
                (b'/', Some(b'*')) => block_comment_end(b, i),
                (b'/', Some(b'-')) => i + 2,
                _ => i + 1,
            };
            if b[i] == b'/' && end > i + 1 {
                found.push(src[i..end].split_whitespace().collect::<String>());
            }
            i = end;
        }
        found.sort();
        found
    }

    #[test]
    fn formats_a_typical_pipeline() {
        let src = r#"// Writing assistant
pipeline "writing-assistant" {
  description "Titles"   // what it does
  input "query" type="text"


  stage "draft" use=builtin:generate grants="complete"    {
          candidates 3
          prompt """
              {{ style.summary }}
              Write a title for: {{ input.query }}
              """
  }
  /- stage "old" use="x"
  output "draft.text"
}
"#;
        let want = r#"// Writing assistant
pipeline "writing-assistant" {
    description "Titles" // what it does
    input "query" type="text"

    stage "draft" use="builtin:generate" grants="complete" {
        candidates 3
        prompt """
            {{ style.summary }}
            Write a title for: {{ input.query }}
            """
    }
    /- stage "old" use="x"
    output "draft.text"
}
"#;
        assert_eq!(check(src), want);
    }

    #[test]
    fn quotes_bare_strings_and_keeps_other_reprs() {
        assert_eq!(
            check("n a b=c #true 0x1F 1.5e3 #null #\"r\\\"# \"q\\\"\" (ty)x"),
            "n \"a\" b=\"c\" #true 0x1F 1.5e3 #null #\"r\\\"# \"q\\\"\" (ty)\"x\"\n"
        );
        assert_eq!(check("\"quoted name\" \"key x\"=1"), "\"quoted name\" \"key x\"=1\n");
        assert_eq!(quote("a\"\\\n\t\u{7}\u{2028}é"), "\"a\\\"\\\\\\n\\t\\u{7}\\u{2028}é\"");
    }

    #[test]
    fn normalizes_spacing_continuations_and_semicolons() {
        assert_eq!(check("a   1   k  =  2 \\\n   3; b;c {d;e}"), "a 1 k=2 3\nb\nc {\n    d\n    e\n}\n");
        assert_eq!(check("a {}\nb { }\nc {\n\n}"), "a\nb\nc\n");
        assert_eq!(check("\u{feff}a\r\nb\r\n"), "a\nb\n");
        assert_eq!(check(""), "");
        assert_eq!(check("\n\n// only\n\n"), "// only\n");
    }

    #[test]
    fn collapses_blank_lines() {
        let src = "\n\na\n\n\n\nb {\n\n    c\n\n    d\n\n}\n\n\n";
        assert_eq!(check(src), "a\n\nb {\n    c\n\n    d\n}\n");
    }

    #[test]
    fn reindents_multiline_strings_keeping_their_value() {
        let src = "a {\n b {\nc \"\"\"\n  x\n\n     y\n  \"\"\" k=#\"\"\"\n\tz\n\t\"\"\"#\n }\n}\n";
        let out = check(src);
        assert_eq!(
            out,
            "a {\n    b {\n        c \"\"\"\n            x\n\n               y\n            \"\"\" k=#\"\"\"\n            z\n            \"\"\"#\n    }\n}\n"
        );
        // A `\` escape spanning lines keeps the source text.
        check("a \"\"\"\n    x \\\n  y\n    \"\"\"");
        assert_eq!(check("a \"x\\\n   y\""), "a \"xy\"\n");
    }

    #[test]
    fn keeps_comments_in_place() {
        let src = "// head\n\n/* block\n   spanning */\na 1 /* after */ // end\n  // own\nb /* in */ 2 {  // after brace\n  c; // after semi\n  /* before close */\n} /* after close */ // end b\n// tail\n";
        let want = "// head\n\n/* block\n   spanning */\na 1 /* after */ // end\n// own\nb /* in */ 2 { // after brace\n    c // after semi\n    /* before close */\n} /* after close */ // end b\n// tail\n";
        assert_eq!(check(src), want);
    }

    #[test]
    fn recovers_what_kdl_drops_after_a_closing_brace() {
        assert_eq!(check("a {\n    b\n}   // note\nc"), "a {\n    b\n} // note\nc\n");
        assert_eq!(check("a { b }  /* x */ ; c"), "a {\n    b\n} /* x */\nc\n");
        assert_eq!(check("a {}  // note"), "a // note\n");
    }

    #[test]
    fn moves_comments_out_of_entries_and_continuations() {
        assert_eq!(check("a k /* x */ = /* y */ 1 (/* t */u8)2"), "a k=1 /* x */ /* y */ (u8)2 /* t */\n");
        assert_eq!(check("a 1 \\ // why\n  2"), "// why\na 1 2\n");
    }

    #[test]
    fn keeps_slashdashed_nodes_entries_and_blocks() {
        let src = "a {\n        /- b {\n            c \"\"\"\n              x\n              \"\"\"\n        }\n    d /-1 2 /-k=v /- { e } {\n  f\n} /-{ g }\n}\n/-\nh";
        let want = "a {\n    /- b {\n        c \"\"\"\n          x\n          \"\"\"\n    }\n    d /-1 2 /-k=v /- { e } {\n        f\n    } /-{ g }\n}\n/- h\n";
        assert_eq!(check(src), want);
        assert_eq!(check("a; /- b { c }"), "a\n/- b { c }\n");
        assert_eq!(check("/-   \n  b {\n      c\n  }"), "/- b {\n    c\n}\n");
        assert_eq!(check("/- /* why */ b"), "/- /* why */ b\n");
    }

    #[test]
    fn keeps_comment_only_blocks() {
        assert_eq!(check("a { // why\n}"), "a { // why\n}\n");
        assert_eq!(check("a {\n  /* x */ }"), "a {\n    /* x */\n}\n");
        assert_eq!(check("a { /- b }"), "a {\n    /- b\n}\n");
    }

    #[test]
    fn reports_parse_errors_and_excess_depth() {
        assert!(matches!(format_source("a \"unterminated"), Err(FormatError::Parse(_))));
        let depth = crate::syntax::guard::MAX_DEPTH + 1;
        let deep = format!("{}{}", "a {".repeat(depth), "}".repeat(depth));
        let Err(FormatError::Refused { source: GuardError::TooDeep { offset, .. }, .. }) = format_source(&deep) else {
            panic!("accepted {depth} levels");
        };
        assert_eq!(offset, deep.rfind('{').expect("test input has braces"));
    }

    /// A tiny random generator of nodes with trivia in every slot: every document it
    /// makes that parses must format soundly.
    #[test]
    fn formats_generated_documents_soundly() {
        struct Gen(u64);
        impl Gen {
            fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                options[(self.0 % options.len() as u64) as usize]
            }
            fn nodes(&mut self, depth: usize, out: &mut String) {
                let between = ["", "\n", "\n\n", " // c\n", "/* c */ ", "\n  /- x 1\n", "    ", "\t", "/*\n  b\n*/\n"];
                let entries = [
                    " 1",
                    " k=v",
                    " \"s\"",
                    " #\"r\"#",
                    " (t)x",
                    " /-y",
                    " k /* c */ = 2",
                    " \\\n  3",
                    " \"\"\"\n  m\n\n    n\n  \"\"\"",
                    " #true",
                    " /- { z }",
                    " /*c*/",
                    " \\ // e\n 4",
                    "  ",
                ];
                for _ in 0..self.pick(&["1", "2", "3"]).parse::<usize>().unwrap_or(1) {
                    out.push_str(self.pick(&between));
                    out.push_str(self.pick(&["n", "(t)n", "\"q n\"", "/- n", "/-n"]));
                    for _ in 0..self.pick(&["0", "1", "2", "3"]).parse::<usize>().unwrap_or(0) {
                        out.push_str(self.pick(&entries));
                    }
                    if depth < 3 && self.pick(&["", "", "c"]) == "c" {
                        out.push_str(self.pick(&[" {", "{", " /-{ w } {", " { // o\n"]));
                        self.nodes(depth + 1, out);
                        out.push_str(self.pick(&between));
                        out.push_str(self.pick(&["}", "\n}", "\n    }"]));
                        out.push_str(self.pick(&["", " /* a */", " /-{ w }", "  "]));
                    }
                    out.push_str(self.pick(&["\n", ";", " // t\n", "  \n", "\r\n"]));
                }
            }
        }
        let mut generator = Gen(0x2545_f491_4f6c_dd1d);
        let mut parsed = 0;
        for _ in 0..2000 {
            let mut src = String::new();
            generator.nodes(0, &mut src);
            src.push_str(generator.pick(&["", "// end", "\n\n/- z"]));
            if KdlDocument::parse(&src).is_ok() {
                parsed += 1;
                check(&src);
            }
        }
        assert!(parsed > 1000, "only {parsed} generated documents parsed");
    }
}
