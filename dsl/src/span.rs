//! Source files and locations.
//!
//! A [`Loc`] names a byte range in one [`SourceFile`]. Locations never take part in equality or
//! hashing, so a whitespace edit of a pipeline file yields an equal IR (and is not a change on
//! reload). This is the only module that converts positions: KDL spans ([`Loc::from_kdl`]) and
//! positions inside an expression string ([`StringMap`], built from the literal's source text).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// One pipeline file's text, shared by every diagnostic that points into it.
#[derive(Clone)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        SourceFile { name: name.into(), text: text.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// One-based line and column (in characters) of a byte offset; offsets past the end clamp.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// A miette source for rendering diagnostics that point into this file.
    pub fn named_source(&self) -> miette::NamedSource<Arc<str>> {
        miette::NamedSource::new(&self.name, Arc::clone(&self.text))
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile").field("name", &self.name).finish_non_exhaustive()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A byte range in the file being checked. Equal to every other `Loc` on purpose.
#[derive(Clone, Copy, Default)]
pub struct Loc {
    pub offset: usize,
    pub len: usize,
}

impl Loc {
    pub const fn new(offset: usize, len: usize) -> Self {
        Loc { offset, len }
    }

    /// The one conversion from a KDL span.
    pub fn from_kdl(span: miette::SourceSpan) -> Self {
        Loc { offset: span.offset(), len: span.len() }
    }

    pub fn end(self) -> usize {
        self.offset + self.len
    }

    /// The smallest location covering both.
    pub fn join(self, other: Loc) -> Loc {
        let start = self.offset.min(other.offset);
        let end = self.end().max(other.end());
        Loc { offset: start, len: end - start }
    }
}

impl From<Loc> for miette::SourceSpan {
    fn from(loc: Loc) -> Self {
        miette::SourceSpan::new(loc.offset.into(), loc.len)
    }
}

impl PartialEq for Loc {
    fn eq(&self, _: &Loc) -> bool {
        true
    }
}

impl Eq for Loc {}

impl Hash for Loc {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}+{}", self.offset, self.len)
    }
}

/// Maps byte offsets in a decoded KDL string value back to byte offsets in the file.
///
/// Built from the literal's source representation, which kdl keeps (`value_repr`): plain quoted
/// strings with escapes, raw strings `#"…"#`, and multi-line strings `"""…"""` whose lines are
/// dedented by the closing line's indentation. When the literal cannot be followed (a bare
/// identifier, or anything unexpected) every position maps to the literal's start, which is still
/// the right line.
#[derive(Debug, Clone)]
pub struct StringMap {
    /// `starts[i]` is the file offset of decoded byte `i`; one extra entry for the end.
    starts: Vec<usize>,
    fallback: usize,
}

impl StringMap {
    /// `repr_offset` is the file offset of the literal's first character.
    pub fn new(repr: &str, repr_offset: usize, decoded: &str) -> Self {
        let starts =
            follow_literal(repr, decoded).map(|v| v.into_iter().map(|o| o + repr_offset).collect()).unwrap_or_default();
        StringMap { starts, fallback: repr_offset }
    }

    /// The file location of the decoded range `start..end`.
    pub fn loc(&self, start: usize, end: usize) -> Loc {
        match (self.starts.get(start), self.starts.get(end.max(start))) {
            (Some(&s), Some(&e)) => Loc::new(s, e.saturating_sub(s)),
            (Some(&s), None) => Loc::new(s, 0),
            _ => Loc::new(self.fallback, 0),
        }
    }
}

/// Offsets (into `repr`) of each decoded byte, plus the end; `None` if `repr` does not decode
/// to `decoded` by the rules we follow.
fn follow_literal(repr: &str, decoded: &str) -> Option<Vec<usize>> {
    let hashes = repr.bytes().take_while(|&b| b == b'#').count();
    let body = &repr[hashes..];
    let raw = hashes > 0;
    let mut map = Vec::with_capacity(decoded.len() + 1);
    if let Some(inner) = body.strip_prefix("\"\"\"") {
        let close = inner.len().checked_sub(3 + hashes)?;
        let inner = &inner[..close];
        let content_start = hashes + 3;
        // Multi-line: first newline dropped, last line is the indentation prefix.
        let nl = inner.find('\n')?;
        let last_nl = inner.rfind('\n')?;
        let indent = &inner[last_nl + 1..];
        let mut pos = nl + 1;
        let mut first = true;
        let lines_region_end = last_nl;
        let mut lines: Vec<(usize, usize)> = Vec::new();
        while pos <= lines_region_end {
            let end = inner[pos..].find('\n').map_or(inner.len(), |i| pos + i);
            lines.push((pos, end.min(lines_region_end)));
            pos = end + 1;
        }
        for (start, end) in lines {
            if !first {
                map.push(content_start + start - 1);
            }
            first = false;
            let line = &inner[start..end];
            let skip = if line.trim().is_empty() {
                line.len()
            } else if line.starts_with(indent) {
                indent.len()
            } else {
                return None;
            };
            follow_plain(&inner[start + skip..end], content_start + start + skip, raw, &mut map)?;
        }
    } else {
        let inner = body.strip_prefix('"')?;
        let close = inner.len().checked_sub(1 + hashes)?;
        follow_plain(&inner[..close], hashes + 1, raw, &mut map)?;
    }
    map.push(repr.len().saturating_sub(1));
    (map.len() == decoded.len() + 1).then_some(map)
}

/// Appends the repr offset of each decoded byte of one line of string body.
fn follow_plain(body: &str, base: usize, raw: bool, map: &mut Vec<usize>) -> Option<()> {
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if raw || c != '\\' {
            map.extend(std::iter::repeat_n(base + i, c.len_utf8()));
            continue;
        }
        let (_, e) = chars.next()?;
        let decoded_len = match e {
            'n' | 't' | 'r' | 'b' | 'f' | 's' | '\\' | '"' => 1,
            'u' => {
                let mut hex = String::new();
                for (_, h) in chars.by_ref() {
                    if h == '}' {
                        break;
                    }
                    if h != '{' {
                        hex.push(h);
                    }
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?.len_utf8()
            }
            w if w.is_whitespace() => {
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                0
            }
            _ => return None,
        };
        map.extend(std::iter::repeat_n(base + i, decoded_len));
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(repr: &str, decoded: &str, pos: usize, expect: char) {
        let map = StringMap::new(repr, 100, decoded);
        let loc = map.loc(pos, pos + 1);
        assert_eq!(repr[loc.offset - 100..].chars().next(), Some(expect), "{repr:?} at {pos}");
    }

    #[test]
    fn maps_plain_strings() {
        check("\"input.query\"", "input.query", 6, 'q');
    }

    #[test]
    fn maps_escapes() {
        check("\"a\\tb\\u{41}c\"", "a\tbAc", 4, 'c');
        check("\"a\\tb\\u{41}c\"", "a\tbAc", 2, 'b');
    }

    #[test]
    fn maps_raw_strings() {
        check("#\"a\\b x\"#", "a\\b x", 4, 'x');
    }

    #[test]
    fn maps_multiline_strings() {
        let repr = "\"\"\"\n    hello {{ x }}\n      there\n    \"\"\"";
        let decoded = "hello {{ x }}\n  there";
        check(repr, decoded, 9, 'x');
        check(repr, decoded, 16, 't');
    }

    #[test]
    fn falls_back_to_literal_start() {
        let map = StringMap::new("bare", 7, "other");
        assert_eq!(map.loc(2, 3).offset, 7);
    }

    #[test]
    fn locations_are_all_equal() {
        assert_eq!(Loc::new(1, 2), Loc::new(5, 9));
    }

    #[test]
    fn line_col_counts_chars() {
        let f = SourceFile::new("f", "ab\nçd x");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
    }
}
