//! The only door to the KDL parser: [`parse_kdl`] checks a source with [`check_source`], then
//! runs kdl on a thread of its own with a [`PARSER_STACK_SIZE`] stack, so that no input can
//! overflow a stack (an abort, not a panic) whatever thread the caller is on.
//!
//! kdl 6.7's parser recurses in four places (`src/v2_parser.rs`); the costs per step are
//! measured with kdl built at opt-level 0 (release costs about a fifth):
//! - `node_children`, once per open `{` (33 KiB);
//! - `node_entry` ↔ `slashdashed_entries`, once per `/-` in a chain such as `a /- /- 1 2` (26 KiB);
//! - `commented_block`, once per `*`, `/` or run of other text in a block comment (3.5 KiB), plus
//!   a `multi_line_comment` per nested `/*` (9 KiB);
//! - `document`, the error recovery: when the top-level node list stops short of the end, kdl
//!   records an error, skips one character and parses the rest *inside* the current call, and
//!   those frames stay until the end (3.3 KiB each). Thousands of `}`, `)`, `=`, `.5` or huge
//!   integers in a row each stop the list again.
//!
//! It also backtracks over slashdashed blocks that end a list or lack real children, parsing
//! them twice, so text inside `k` nested ones is parsed `2^k` times: a valid 200-byte file can
//! take hours. Failing `/-` chains cost time quadratic in their length.
//!
//! The scan is a recogniser for the KDL v2 that kdl accepts. While the text is valid it is exact:
//! it counts open blocks, chain links and comment pieces, and refuses a file that nests deeper
//! than [`MAX_DEPTH`], has a comment too long for the stack, or nests slashdashed constructs past
//! [`MAX_WORK`]. At the first token kdl would not accept, it stops trusting its own reading (kdl
//! may backtrack to the start of that node and read its strings as code) and from that node's
//! start charges every character the most it can cost: every `{`, `/-` and `/*` a level; every
//! `*` and `/` two comment pieces; one recovery for every character that can be where the node
//! list stops (one that is neither an identifier character nor whitespace, an identifier
//! character after one of those, and once more every `#`, whose keyword can stop a node
//! mid-word); and a doubling of the work for every `/-`. A file whose charges pass
//! [`STACK_BUDGET`] or whose work passes [`MAX_WORK`] is refused as
//! [`GuardError::Unrecoverable`]: to see its other errors, fix the first.
//!
//! Invariants: O(n) time and no panics on any input; valid KDL within the limits is never
//! refused (tested against kdl on generated files); whatever is accepted fits in a quarter of
//! the parser's stack with kdl at opt-level 0; reported offsets are char boundaries.

use std::thread;

use kdl::{KdlDocument, KdlError};
use thiserror::Error;

/// The largest source accepted, in bytes. Pipeline files are a few kilobytes; kdl reads about
/// a megabyte a second in release builds.
pub const MAX_SOURCE_LEN: usize = 1 << 20;

/// The nesting limit: open blocks, plus `/-` links in a chain, plus nested block comments.
pub const MAX_DEPTH: usize = 64;

/// The stack of the thread kdl runs on. It is reserved address space; only what a parse
/// touches becomes memory.
pub const PARSER_STACK_SIZE: usize = 256 << 20;

/// What the scan lets kdl use, in debug-build bytes: a quarter of the stack, for a margin
/// against compilers and sanitizers that grow frames.
pub const STACK_BUDGET: usize = PARSER_STACK_SIZE / 4;

/// Bytes kdl may parse, counting text inside `k` nested slashdashed nodes or blocks `2^k`
/// times: twice a maximal file.
pub const MAX_WORK: usize = 2 * MAX_SOURCE_LEN;

/// Stack cost of a children block, a `/-` chain link or a nested `/*` (measured ≤ 33 KiB).
const LEVEL_COST: usize = 40 << 10;
/// Stack cost of one error recovery (measured 3.3 KiB).
const RECOVERY_COST: usize = 4 << 10;
/// Stack cost of one block-comment piece (measured 3.5 KiB).
const PIECE_COST: usize = 4 << 10;

/// Why a source is not handed to kdl.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardError {
    #[error("the file is {len} bytes; pipeline files may have at most {MAX_SOURCE_LEN} bytes")]
    TooLarge { len: usize },
    #[error("blocks are nested more than {max} deep")]
    TooDeep { offset: usize, max: usize },
    #[error("this block comment is too long for the KDL parser")]
    LongComment { offset: usize },
    #[error("slashdashed (`/-`) blocks are nested too deeply for the KDL parser")]
    SlashdashNesting { offset: usize },
    #[error("the KDL parser cannot safely recover from this syntax error: too much follows it")]
    Unrecoverable { offset: usize },
}

impl GuardError {
    /// Byte offset of the problem, a char boundary.
    pub fn offset(&self) -> usize {
        match *self {
            GuardError::TooLarge { .. } => 0,
            GuardError::TooDeep { offset, .. }
            | GuardError::LongComment { offset }
            | GuardError::SlashdashNesting { offset }
            | GuardError::Unrecoverable { offset } => offset,
        }
    }

    /// What the author can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            GuardError::TooLarge { .. } => "split the file; pipelines are small",
            GuardError::TooDeep { .. } => "flatten the file; pipelines need only a few levels",
            GuardError::LongComment { .. } => "split the comment, or use `//` comments",
            GuardError::SlashdashNesting { .. } => "delete the slashdashed blocks instead of nesting them",
            GuardError::Unrecoverable { .. } => "fix this error first; the ones after it will then be reported",
        }
    }
}

/// Why [`parse_kdl`] returned no document.
#[derive(Debug, Error)]
pub enum ParseFailure {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error(transparent)]
    Kdl(#[from] KdlError),
    #[error(transparent)]
    Thread(#[from] ParserThreadError),
}

/// The parser thread did not deliver a result.
#[derive(Debug, Error)]
pub enum ParserThreadError {
    #[error("could not start the KDL parser thread: {0}")]
    Spawn(std::io::Error),
    #[error("the KDL parser panicked")]
    Panicked,
}

/// Parses `src` as KDL v2 if [`check_source`] accepts it, on a thread with a
/// [`PARSER_STACK_SIZE`] stack. Every parse of user input goes through here.
pub(crate) fn parse_kdl(src: &str) -> Result<KdlDocument, ParseFailure> {
    check_source(src)?;
    thread::scope(|scope| {
        let parser = thread::Builder::new()
            .name("kdl-parser".to_owned())
            .stack_size(PARSER_STACK_SIZE)
            .spawn_scoped(scope, || KdlDocument::parse(src))
            .map_err(ParserThreadError::Spawn)?;
        Ok(parser.join().map_err(|_| ParserThreadError::Panicked)??)
    })
}

/// Checks that kdl can parse `src` within [`STACK_BUDGET`] and [`MAX_WORK`] (see the module
/// docs). Accepting says nothing about validity: kdl still reports the errors.
pub fn check_source(src: &str) -> Result<(), GuardError> {
    check_with(src, LIMITS)
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_depth: usize,
    stack: usize,
    work: usize,
}

const LIMITS: Limits = Limits { max_depth: MAX_DEPTH, stack: STACK_BUDGET, work: MAX_WORK };

fn check_with(src: &str, limits: Limits) -> Result<(), GuardError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(GuardError::TooLarge { len: src.len() });
    }
    let mut scan = Scan::new(src, limits);
    match scan.document() {
        Ok(()) => scan.add_work(),
        Err(Stop::Limit(e)) => Err(e),
        Err(Stop::Invalid) => scan.charge_rest(),
    }
}

/// Why the exact reading ended early.
enum Stop {
    /// Text kdl would not accept: from here on, charge the worst case.
    Invalid,
    Limit(GuardError),
}

type Step<T = ()> = Result<T, Stop>;

impl From<GuardError> for Stop {
    fn from(e: GuardError) -> Self {
        Stop::Limit(e)
    }
}

/// A place kdl may backtrack to, with what was open there.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: usize,
    open: usize,
    doubled: u32,
}

/// Where in a node its text continues after a children block closes.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Name read; entries, slashdashed children or children may follow.
    Entries,
    /// After slashdashed children: more of them (after a space), or children if none yet.
    SlashdashedChildren { children_seen: bool },
    /// After the children: slashdashed children may follow.
    Children,
}

struct Block {
    /// The node that owns the block, and where its text continues.
    slashdashed_node: bool,
    resume: Part,
    /// The block is slashdashed, so kdl may parse it twice.
    doubled: bool,
    outer_from: Mark,
}

/// The exact reading of valid KDL, as kdl's grammar has it (comments refer to its parsers).
struct Scan<'s> {
    src: &'s str,
    b: &'s [u8],
    i: usize,
    limits: Limits,
    blocks: Vec<Block>,
    /// Start of the current node: kdl never backtracks before it.
    node_from: Mark,
    /// Open `/-` links in the current node's entries.
    chain: usize,
    /// Open slashdashed nodes and blocks.
    doubled: u32,
    work: u128,
    work_from: usize,
    /// Where the exact reading failed.
    invalid_at: usize,
}

impl<'s> Scan<'s> {
    fn new(src: &'s str, limits: Limits) -> Self {
        let start = Mark { at: 0, open: 0, doubled: 0 };
        Scan {
            src,
            b: src.as_bytes(),
            i: 0,
            limits,
            blocks: Vec::new(),
            node_from: start,
            chain: 0,
            doubled: 0,
            work: 0,
            work_from: 0,
            invalid_at: 0,
        }
    }

    fn invalid<T>(&mut self) -> Step<T> {
        self.invalid_at = self.i;
        Err(Stop::Invalid)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, s: &[u8]) -> bool {
        self.b[self.i..].starts_with(s)
    }

    fn eat(&mut self, s: &[u8]) -> bool {
        let found = self.at(s);
        if found {
            self.i += s.len();
        }
        found
    }

    /// `document := bom? nodes`, with the blocks' `nodes` handled by a stack of open blocks.
    fn document(&mut self) -> Step {
        if self.src.starts_with('\u{feff}') {
            self.i = 3;
        }
        let mut resume = None;
        loop {
            let (slashdashed, part) = match resume.take() {
                Some(r) => r,
                None => {
                    self.node_from = Mark { at: self.i, open: self.blocks.len(), doubled: self.doubled };
                    self.line_spaces()?;
                    match self.peek() {
                        None if self.blocks.is_empty() => return Ok(()),
                        Some(b'}') if !self.blocks.is_empty() => {
                            resume = Some(self.close_block()?);
                            continue;
                        }
                        None | Some(b'}') => return self.invalid(),
                        _ => {}
                    }
                    // `slashdash := '/-' (node-space | line-space)*` before a `base_node`.
                    let slashdashed = self.at(b"/-");
                    if slashdashed {
                        self.add_work()?;
                        self.doubled += 1;
                        self.i += 2;
                        self.line_spaces()?;
                    }
                    self.node_head()?;
                    (slashdashed, Part::Entries)
                }
            };
            if self.node_rest(slashdashed, part)? {
                self.node_end(slashdashed)?;
            }
        }
    }

    /// `type? node-space* string`
    fn node_head(&mut self) -> Step {
        if self.eat(b"(") {
            self.type_rest()?;
            self.node_spaces()?;
        }
        match self.atom()? {
            Atom::Str | Atom::Ident => Ok(()),
            Atom::Number | Atom::Keyword => self.invalid(),
        }
    }

    /// After `(`: `node-space* identifier node-space* ')'`; the name must be followed by a
    /// space or the `)`.
    fn type_rest(&mut self) -> Step {
        self.node_spaces()?;
        if !matches!(self.atom()?, Atom::Str | Atom::Ident) {
            return self.invalid();
        }
        if !(self.peek() == Some(b')') || self.node_space_here()) {
            return self.invalid();
        }
        self.node_spaces()?;
        if !self.eat(b")") {
            return self.invalid();
        }
        Ok(())
    }

    /// Entries and children (`base_node` after its name), from `part` on. Returns whether the
    /// node ended (`false`: it opened a block).
    fn node_rest(&mut self, slashdashed: bool, part: Part) -> Step<bool> {
        let mut after_slashdash = false;
        loop {
            let spaced = self.node_spaces()? || after_slashdash;
            let slashdash = self.at(b"/-");
            if slashdash && !after_slashdash {
                // Entries and slashdashed children need a space first; only the first
                // slashdashed block after the children does not.
                if !spaced && !matches!(part, Part::Children) {
                    return self.invalid();
                }
            }
            if slashdash {
                let link = self.i;
                self.i += 2;
                self.line_spaces()?;
                if self.peek() == Some(b'{') {
                    let resume = match part {
                        Part::Entries if self.chain == 0 && !after_slashdash => {
                            Part::SlashdashedChildren { children_seen: false }
                        }
                        Part::SlashdashedChildren { children_seen } if spaced => {
                            Part::SlashdashedChildren { children_seen }
                        }
                        Part::Children => Part::SlashdashedChildren { children_seen: true },
                        _ => return self.invalid(),
                    };
                    self.open_block(slashdashed, resume, true)?;
                    return Ok(false);
                }
                if !matches!(part, Part::Entries) {
                    return self.invalid();
                }
                // `node_entry := node-space* (slashdashed_entries node-space+)? (prop | value)`,
                // and a slashdashed entry is a `node_entry` again: one frame per link.
                self.chain += 1;
                self.check_depth(link)?;
                after_slashdash = true;
                continue;
            }
            after_slashdash = false;
            match (self.peek(), part) {
                (Some(b'{'), Part::Entries) if self.chain == 0 => {
                    self.open_block(slashdashed, Part::Children, false)?;
                    return Ok(false);
                }
                (Some(b'{'), Part::SlashdashedChildren { children_seen: false }) => {
                    self.open_block(slashdashed, Part::Children, false)?;
                    return Ok(false);
                }
                (Some(c), Part::Entries) if spaced && (c == b'(' || atom_start(self.b, self.i)) => {
                    self.entry()?;
                }
                _ if self.chain > 0 => return self.invalid(),
                _ => return Ok(true),
            }
        }
    }

    /// `prop | value`, where `prop := string node-space* '=' node-space* value` and
    /// `value := type? node-space* (string | number | keyword)`. A value closes the innermost
    /// open `/-` link.
    fn entry(&mut self) -> Step {
        if self.eat(b"(") {
            self.type_rest()?;
            self.node_spaces()?;
            self.atom()?;
        } else if matches!(self.atom()?, Atom::Str | Atom::Ident) {
            let key_end = self.i;
            self.node_spaces()?;
            if self.eat(b"=") {
                self.node_spaces()?;
                if self.eat(b"(") {
                    self.type_rest()?;
                    self.node_spaces()?;
                }
                self.atom()?;
            } else {
                self.i = key_end;
            }
        }
        self.chain = self.chain.saturating_sub(1);
        Ok(())
    }

    /// After a node: `node-terminator` (`;` only after a real node), or what ends the list.
    fn node_end(&mut self, slashdashed: bool) -> Step {
        if slashdashed {
            self.add_work()?;
            self.doubled -= 1;
        }
        match self.peek() {
            None | Some(b'}') => Ok(()),
            Some(b';') if !slashdashed => {
                self.i += 1;
                Ok(())
            }
            _ if newline_len(self.b, self.i) > 0 || self.at(b"//") => Ok(()),
            _ if slashdashed && self.at(b"/-") => Ok(()),
            _ => self.invalid(),
        }
    }

    fn open_block(&mut self, slashdashed_node: bool, resume: Part, slashdashed: bool) -> Step {
        let at = self.i;
        self.i += 1;
        self.check_depth_with(at, 1)?;
        self.add_work()?;
        self.doubled += u32::from(slashdashed);
        self.blocks.push(Block { slashdashed_node, resume, doubled: slashdashed, outer_from: self.node_from });
        Ok(())
    }

    fn close_block(&mut self) -> Step<(bool, Part)> {
        let block = self.blocks.pop().expect("invariant: only called with an open block");
        self.i += 1;
        self.add_work()?;
        self.doubled -= u32::from(block.doubled);
        self.node_from = block.outer_from;
        Ok((block.slashdashed_node, block.resume))
    }

    fn check_depth(&self, offset: usize) -> Step {
        self.check_depth_with(offset, 0)
    }

    fn check_depth_with(&self, offset: usize, extra: usize) -> Step {
        if self.blocks.len() + self.chain + extra > self.limits.max_depth {
            return Err(Stop::Limit(GuardError::TooDeep { offset, max: self.limits.max_depth }));
        }
        Ok(())
    }

    /// Adds the text since the last call, weighted by the open slashdashed constructs.
    fn add_work(&mut self) -> Result<(), GuardError> {
        let len = (self.i - self.work_from) as u128;
        self.work = self.work.saturating_add(len << self.doubled.min(64));
        self.work_from = self.i;
        if self.work > self.limits.work as u128 {
            return Err(GuardError::SlashdashNesting { offset: self.i });
        }
        Ok(())
    }

    /// One value-like token, which must be followed by a value terminator (kdl checks, and
    /// recovers differently otherwise).
    fn atom(&mut self) -> Step<Atom> {
        let start = self.i;
        let string = string_end(self.b, start);
        let (kind, end) = match (self.peek(), string) {
            (_, Some(end)) => (Atom::Str, end),
            (Some(b'#'), None) => {
                let end = word_end(self.b, start + 1);
                match &self.src[start + 1..end] {
                    "true" | "false" | "null" | "inf" | "-inf" | "nan" => (Atom::Keyword, end),
                    _ => return self.invalid(),
                }
            }
            _ => {
                let end = word_end(self.b, start);
                match classify_word(&self.src[start..end]) {
                    Some(kind) if end > start => (kind, end),
                    _ => return self.invalid(),
                }
            }
        };
        self.i = end;
        if !value_terminator_at(self.b, end) {
            return self.invalid();
        }
        Ok(kind)
    }

    /// `node-space*`; whether there was any.
    fn node_spaces(&mut self) -> Step<bool> {
        let start = self.i;
        loop {
            let n = space_len(self.b, self.i);
            if n > 0 {
                self.i += n;
            } else if self.at(b"/*") {
                self.block_comment()?;
            } else if !(self.peek() == Some(b'\\') && self.escline()?) {
                return Ok(self.i > start);
            }
        }
    }

    /// Whether a `node-space` starts here (a space, block comment or line continuation).
    fn node_space_here(&self) -> bool {
        space_len(self.b, self.i) > 0 || self.at(b"/*") || self.at(b"\\")
    }

    /// `line-space*`: node-space, newlines and `//` comments.
    fn line_spaces(&mut self) -> Step {
        loop {
            self.node_spaces()?;
            let n = newline_len(self.b, self.i);
            if n > 0 {
                self.i += n;
            } else if self.at(b"//") {
                self.i = line_comment_end(self.b, self.i);
            } else {
                return Ok(());
            }
        }
    }

    /// `escline := '\' ws* (single-line-comment | newline | eof) ws*`. `false` (nothing
    /// consumed) if the `\` does not start one.
    fn escline(&mut self) -> Step<bool> {
        let start = self.i;
        self.i += 1;
        self.wss()?;
        let n = newline_len(self.b, self.i);
        if n > 0 {
            self.i += n;
        } else if self.at(b"//") {
            self.i = line_comment_end(self.b, self.i);
        } else if self.i < self.b.len() {
            self.i = start;
            return Ok(false);
        }
        self.wss()?;
        Ok(true)
    }

    /// `ws*`: unicode spaces and block comments.
    fn wss(&mut self) -> Step {
        loop {
            let n = space_len(self.b, self.i);
            if n > 0 {
                self.i += n;
            } else if self.at(b"/*") {
                self.block_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    /// Skips the block comment here, charging its recursion on top of the open levels.
    fn block_comment(&mut self) -> Step {
        let levels = self.blocks.len() + self.chain;
        let limits = self.limits;
        let over = |offset, nest: usize, pieces: usize| {
            if levels + nest > limits.max_depth {
                Err(GuardError::TooDeep { offset, max: limits.max_depth })
            } else if (levels + nest) * LEVEL_COST + pieces * PIECE_COST > limits.stack {
                Err(GuardError::LongComment { offset })
            } else {
                Ok(())
            }
        };
        match block_comment(self.b, self.i, over) {
            Ok(Some(end)) => {
                self.i = end;
                Ok(())
            }
            Ok(None) => self.invalid(),
            Err(e) => Err(Stop::Limit(e)),
        }
    }

    /// The worst case from the start of the node where the exact reading failed: see the
    /// module docs for the charges.
    fn charge_rest(&mut self) -> Result<(), GuardError> {
        let from = self.node_from;
        let refuse = GuardError::Unrecoverable { offset: self.invalid_at };
        let rest = &self.src[from.at..];
        let mut stack = from.open * LEVEL_COST;
        let mut doublings = from.doubled;
        let mut after_ident = false;
        for (k, c) in rest.char_indices() {
            let next = rest.as_bytes().get(k + 1).copied();
            let ident = is_identifier_char(c);
            let mut cost = 0;
            if (ident && !after_ident) || (!ident && !is_space(c) && !is_newline(c)) {
                cost += RECOVERY_COST;
            }
            match (c, next) {
                ('#', _) => cost += RECOVERY_COST,
                ('{', _) => cost += LEVEL_COST,
                ('*', _) => cost += 2 * PIECE_COST,
                ('/', Some(b'*')) => cost += 2 * PIECE_COST + LEVEL_COST,
                ('/', Some(b'-')) => {
                    cost += 2 * PIECE_COST + LEVEL_COST;
                    doublings += 1;
                }
                ('/', _) => cost += 2 * PIECE_COST,
                _ => {}
            }
            stack += cost;
            if stack > self.limits.stack {
                return Err(refuse);
            }
            after_ident = ident;
        }
        let work = self.work.saturating_add((rest.len() as u128) << doublings.min(64));
        if work > self.limits.work as u128 {
            return Err(refuse);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    /// A quoted, raw or multi-line string.
    Str,
    /// A bare identifier string.
    Ident,
    Number,
    /// `#true`, `#false`, `#null`, `#inf`, `#-inf`, `#nan`.
    Keyword,
}

/// Whether an identifier-like word (a bare identifier or a number) starts here.
fn atom_start(b: &[u8], i: usize) -> bool {
    char_at(b, i).is_some_and(|(c, _)| is_identifier_char(c)) || matches!(b.get(i), Some(b'"' | b'#'))
}

/// A word of identifier characters: a number if kdl reads it as one (it tries numbers first),
/// else an identifier unless kdl rejects it; `None` for what kdl rejects.
fn classify_word(w: &str) -> Option<Atom> {
    let unsigned = w.strip_prefix(['+', '-']).unwrap_or(w);
    let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit());
    if numeric(unsigned) {
        return is_number(unsigned).then_some(Atom::Number);
    }
    if unsigned.strip_prefix('.').is_some_and(numeric) {
        return None;
    }
    match w {
        "true" | "false" | "null" | "inf" | "nan" => None,
        _ => Some(Atom::Ident),
    }
}

/// kdl's `hex | octal | binary | decimal | float` without the sign, each digit run fitting an
/// `i128` as kdl requires.
fn is_number(s: &str) -> bool {
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        if let Some(digits) = prefixes.iter().find_map(|p| s.strip_prefix(p)) {
            return is_digits(digits, radix);
        }
    }
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(e) => (&s[..e], Some(&s[e + 1..])),
        None => (s, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    is_digits(integer, 10)
        && fraction.is_none_or(|f| is_digits(f, 10))
        && exponent.is_none_or(|e| is_digits(e.strip_prefix(['+', '-']).unwrap_or(e), 10))
}

/// `digit (digit | '_')*` in `radix`, with a value that fits an `i128`.
fn is_digits(s: &str, radix: u32) -> bool {
    s.starts_with(|c: char| c.is_digit(radix))
        && s.chars().all(|c| c == '_' || c.is_digit(radix))
        && i128::from_str_radix(&s.replace('_', ""), radix).is_ok()
}

fn word_end(b: &[u8], mut i: usize) -> usize {
    while let Some((c, n)) = char_at(b, i) {
        if !is_identifier_char(c) {
            break;
        }
        i += n;
    }
    i
}

/// Where the string starting at `i` (`"`, `"""`, `#"`, `#"""`, ...) ends, if kdl reads it
/// as one well-formed string. Shared with the formatter's trivia lexer.
pub(crate) fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    let open = i + hashes;
    if b.get(open) != Some(&b'"') {
        return None;
    }
    let multi = b[open..].starts_with(b"\"\"\"");
    match (multi, newline_len(b, open + 3), hashes) {
        (true, 0, 0) => None,
        (true, n, _) if n > 0 => multiline_end(b, open + 3 + n, hashes),
        (_, _, 0) => quoted_end(b, open + 1),
        _ => raw_end(b, open + 1, hashes),
    }
}

/// End of a single-line quoted string whose body starts at `i`.
fn quoted_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let (c, n) = char_at(b, i)?;
        match c {
            '"' => return Some(i + 1),
            '\\' => i = escape_end(b, i)?,
            _ if is_newline(c) || is_disallowed(c) => return None,
            _ => i += n,
        }
    }
}

/// End of a single-line raw string with `hashes` hashes whose body starts at `start`.
fn raw_end(b: &[u8], start: usize, hashes: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let (c, n) = char_at(b, i)?;
        if c == '"' && closes_with_hashes(b, i + 1, hashes) {
            // kdl rejects a body of one quote: it looks like a multi-line opening.
            return (&b[start..i] != b"\"").then_some(i + 1 + hashes);
        }
        if is_newline(c) || is_disallowed(c) {
            return None;
        }
        i += n;
    }
}

/// End of a multi-line string (raw when `hashes > 0`) whose body starts at `start`, just
/// after the newline that must follow the opening quotes. The closing quotes must stand on
/// their own line after spaces (the prefix), and every other line must start with the prefix
/// or be blank. Line continuations (`\` and a newline) are one line, as in kdl.
fn multiline_end(b: &[u8], start: usize, hashes: usize) -> Option<usize> {
    let escapes = hashes == 0;
    let mut lines = Vec::new();
    let mut i = start;
    let (close, prefix) = loop {
        lines.push(i);
        let mut j = i;
        while space_len(b, j) > 0 {
            j += space_len(b, j);
        }
        if b[j..].starts_with(b"\"\"\"") && closes_with_hashes(b, j + 3, hashes) {
            break (j, &b[i..j]);
        }
        loop {
            let (c, n) = char_at(b, i)?;
            match c {
                _ if newline_len(b, i) > 0 => {
                    i += newline_len(b, i);
                    break;
                }
                '\\' if escapes => i = escape_end(b, i)?,
                '"' if b[i..].starts_with(b"\"\"\"") && (escapes || closes_with_hashes(b, i + 3, hashes)) => {
                    return None;
                }
                _ if is_disallowed(c) => return None,
                _ => i += n,
            }
        }
    };
    for &line in &lines {
        if !b[line..].starts_with(prefix) && !blank_line(b, line) {
            return None;
        }
    }
    Some(close + 3 + hashes)
}

fn closes_with_hashes(b: &[u8], i: usize, hashes: usize) -> bool {
    b.len() >= i + hashes && b[i..i + hashes].iter().all(|&c| c == b'#')
}

/// End of the escape at `i` (a backslash), if kdl accepts it: `\` then spaces and newlines,
/// one of `\"bfnrts`, or `u{` one to six hex digits of a scalar value `}`.
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while space_len(b, j) + newline_len(b, j) > 0 {
        j += space_len(b, j) + newline_len(b, j);
    }
    if j > i + 1 {
        return Some(j);
    }
    match b.get(i + 1)? {
        b'\\' | b'"' | b'b' | b'f' | b'n' | b'r' | b't' | b's' => Some(i + 2),
        b'u' if b.get(i + 2) == Some(&b'{') => {
            let hex = b[i + 3..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            let digits = std::str::from_utf8(&b[i + 3..i + 3 + hex]).ok()?;
            let scalar = u32::from_str_radix(digits, 16).ok().and_then(char::from_u32);
            ((1..=6).contains(&hex) && scalar.is_some() && b.get(i + 3 + hex) == Some(&b'}')).then_some(i + 4 + hex)
        }
        _ => None,
    }
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

/// Skips the block comment opening at `start`, reporting its nesting and pieces to `over`
/// as it goes. `Ok(None)` when it is unterminated.
fn block_comment(
    b: &[u8],
    start: usize,
    over: impl Fn(usize, usize, usize) -> Result<(), GuardError>,
) -> Result<Option<usize>, GuardError> {
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
        over(at, nest, pieces)?;
    }
    Ok(None)
}

/// Where the block comment starting at `i` ends; the end of input when unterminated.
/// Shared with the formatter's trivia lexer.
pub(crate) fn block_comment_end(b: &[u8], i: usize) -> usize {
    block_comment(b, i, |_, _, _| Ok(())).ok().flatten().unwrap_or(b.len())
}

/// Whether a value may end right before `i` (kdl's `value_terminator`).
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

/// The character starting at byte `i` and its length; `None` at the end (or inside a
/// character, which callers never ask about).
fn char_at(b: &[u8], i: usize) -> Option<(char, usize)> {
    let chunk = b.get(i..b.len().min(i + 4))?;
    let valid = match std::str::from_utf8(chunk) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&chunk[..e.valid_up_to()]).ok()?,
    };
    valid.chars().next().map(|c| (c, c.len_utf8()))
}

/// kdl's `identifier-char`.
fn is_identifier_char(c: char) -> bool {
    !matches!(c, '\\' | '/' | '(' | ')' | '{' | '}' | '[' | ']' | ';' | '"' | '#' | '=')
        && !is_space(c)
        && !is_newline(c)
        && !is_disallowed(c)
}

/// kdl's `disallowed-literal-code-points` as its parser checks them (U+007F is allowed).
fn is_disallowed(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{e}'..='\u{1f}' | '\u{200e}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn is_space(c: char) -> bool {
    SPACES.iter().any(|s| s.starts_with(c))
}

fn is_newline(c: char) -> bool {
    NEWLINES.iter().any(|s| s.starts_with(c))
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

    const SMALL: Limits = Limits { max_depth: 4, stack: STACK_BUDGET, work: MAX_WORK };

    fn nested(depth: usize) -> String {
        format!("{}{}", "a {\n".repeat(depth), "}\n".repeat(depth))
    }

    /// Whether the exact reading got through the whole file.
    fn trusts(src: &str) -> bool {
        Scan::new(src, LIMITS).document().is_ok()
    }

    /// A deterministic xorshift generator, so failures reproduce without a seed file.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
            options[self.below(options.len())]
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    #[test]
    fn accepts_depth_exactly_at_limit() {
        assert_eq!(check_with(&nested(4), SMALL), Ok(()));
        assert_eq!(check_source(&nested(MAX_DEPTH)), Ok(()));
    }

    #[test]
    fn rejects_one_past_limit_at_the_offending_brace() {
        let src = nested(5);
        let offset = src.match_indices('{').nth(4).expect("test input has five braces").0;
        assert_eq!(check_with(&src, SMALL), Err(GuardError::TooDeep { offset, max: 4 }));
        assert_eq!(GuardError::TooDeep { offset, max: 4 }.to_string(), "blocks are nested more than 4 deep");
        assert!(matches!(check_source(&nested(MAX_DEPTH + 1)), Err(GuardError::TooDeep { .. })));
    }

    #[test]
    fn ignores_braces_in_strings_and_comments() {
        let src = r####"
            a "{{{" "\"{{" key="}}}{" // {{{
            b #"{{"{"# ##"{"#{"## #"""
                {{{
                """# /* { */
            c """
                {{ \"""{{
                """
            d #true {
                e "}" {
                }
            }
        "####;
        assert!(KdlDocument::parse(src).is_ok());
        assert!(trusts(src));
        assert_eq!(check_with(src, Limits { max_depth: 2, ..SMALL }), Ok(()));
        assert!(check_with(src, Limits { max_depth: 1, ..SMALL }).is_err());
    }

    #[test]
    fn counts_slashdashed_children_and_chains_as_levels() {
        let limit = Limits { max_depth: 1, ..SMALL };
        assert!(check_with("a /-{ b { } }", limit).is_err());
        // `a /- /- 1 2` is valid to kdl: each link is a frame of `node_entry`.
        assert!(KdlDocument::parse("a /- /- 1 2").is_ok());
        assert_eq!(check_with("a /- 1 /- 2 { }", limit), Ok(()));
        assert_eq!(check_with("a /- /- 1 2", limit), Err(GuardError::TooDeep { offset: 5, max: 1 }));
    }

    #[test]
    fn charges_block_comment_nesting_and_length() {
        let nest = format!("{}{}", "/*".repeat(5), "*/".repeat(5));
        assert_eq!(check_with(&nest, Limits { max_depth: 5, ..SMALL }), Ok(()));
        assert_eq!(check_with(&nest, SMALL), Err(GuardError::TooDeep { offset: 8, max: 4 }));
        // A level for the comment, then a piece for " " and for each "*" and " " after it.
        let long = format!("/* {}*/", "* ".repeat(100));
        let stack = LEVEL_COST + 201 * PIECE_COST;
        assert_eq!(check_with(&long, Limits { stack, ..SMALL }), Ok(()));
        assert!(matches!(check_with(&long, Limits { stack: stack - 1, ..SMALL }), Err(GuardError::LongComment { .. })));
    }

    #[test]
    fn refuses_sources_over_the_size_limit() {
        let src = "a\n".repeat(MAX_SOURCE_LEN / 2 + 1);
        assert_eq!(check_source(&src), Err(GuardError::TooLarge { len: src.len() }));
        assert_eq!(check_source(&src[..MAX_SOURCE_LEN]), Ok(()));
    }

    #[test]
    fn bounds_nested_slashdashed_blocks() {
        // kdl parses a slashdashed block without real children twice, and so on inside it.
        let sd = |depth: usize| format!("{}{}", "a /-{\n".repeat(depth), "}\n".repeat(depth));
        assert_eq!(check_source(&sd(8)), Ok(()));
        assert!(matches!(check_source(&sd(30)), Err(GuardError::SlashdashNesting { .. })));
        let trailing = |depth: usize| format!("{}{}", "a {\nx\n/- b {\n".repeat(depth), "}\n}\n".repeat(depth));
        assert!(matches!(check_source(&trailing(30)), Err(GuardError::SlashdashNesting { .. })));
        // Plain blocks inside one slashdashed node double once.
        assert_eq!(check_source(&format!("/- x {{\n{}\n}}", nested(60))), Ok(()));
    }

    #[test]
    fn reads_numbers_and_identifiers_like_kdl() {
        for (word, kind) in [
            ("1", Some(Atom::Number)),
            ("-1_000.5e+3_", Some(Atom::Number)),
            ("0x1F", Some(Atom::Number)),
            ("+0O7", Some(Atom::Number)),
            ("0b1_0", Some(Atom::Number)),
            ("1E5", Some(Atom::Number)),
            ("170141183460469231731687303715884105727", Some(Atom::Number)),
            ("170141183460469231731687303715884105728", None),
            ("1.", None),
            ("1x", None),
            ("0x", None),
            (".5", None),
            ("-.5", None),
            ("true", None),
            ("-inf", Some(Atom::Ident)),
            ("-.", Some(Atom::Ident)),
            ("..5", Some(Atom::Ident)),
            ("x.5", Some(Atom::Ident)),
            ("é", Some(Atom::Ident)),
        ] {
            assert_eq!(classify_word(word), kind, "{word}");
            assert_eq!(KdlDocument::parse(&format!("a {word}")).is_ok(), kind.is_some(), "{word}");
        }
    }

    #[test]
    fn reads_strings_like_kdl() {
        for (src, ok) in [
            (r#""a\"\\\b\f\n\r\t\s\u{1F600}""#, true),
            ("\"a\\  \n  b\"", true),
            (r#""\q""#, false),
            (r#""\u{}""#, false),
            (r#""\u{1234567}""#, false),
            (r#""\u{D800}""#, false),
            ("\"a\u{1}\"", false),
            ("\"a\nb\"", false),
            (r##"#"a"b"#"##, true),
            (r##"#"""x"#"##, true),
            (r##"#"""#"##, false),
            ("\"\"\"\n  a\n\n   b\n  \"\"\"", true),
            ("\"\"\"\n  a \\\nb\n  \"\"\"", true),
            ("\"\"\"\n a\n  \"\"\"", false),
            ("\"\"\"\n  a\"\"\"\n  \"\"\"", false),
            ("\"\"\"x\n\"\"\"", false),
            ("#\"\"\"\n  \"\"\" a\n  \"\"\"#", true),
        ] {
            let kdl_ok = KdlDocument::parse(&format!("n {src}")).is_ok();
            assert_eq!(kdl_ok, ok, "kdl on {src:?}");
            assert_eq!(string_end(src.as_bytes(), 0) == Some(src.len()), ok, "{src:?}");
        }
    }

    #[test]
    fn distrusts_from_the_node_start_after_malformed_strings() {
        // An unterminated `"""` makes kdl read the braces inside it as blocks.
        let deep = "{".repeat(10);
        let stack = 8 * LEVEL_COST;
        for bad in [
            "x \"abc\n",
            "x \"\"\"\n",
            "x \"\"\"x",
            "x #\"abc\n",
            "x \"a\"\"",
            "x /* ",
            "(t \"{{{{{{{{{{\"",
            "x \"\\q{{{{{{{{{{\"",
        ] {
            let src = format!("{bad}{deep}\"");
            assert!(!trusts(&src));
            assert_eq!(
                check_with(&src, Limits { stack, ..LIMITS }).map_err(|e| matches!(e, GuardError::Unrecoverable { .. })),
                Err(true),
                "{bad:?} slipped through"
            );
        }
    }

    #[test]
    fn charges_every_possible_recovery() {
        for unit in ["}", ")", "=", "[", ".5 ", "a=", "99999999999999999999999999999999999999999 ", "#truex "] {
            let src = unit.repeat(100);
            assert!(!trusts(&src), "{unit:?}");
            assert_eq!(check_source(&src), Ok(()), "{unit:?}");
            // Each unit can stop kdl's node list at least once.
            let refused = check_with(&src, Limits { stack: 100 * RECOVERY_COST - 1, ..LIMITS });
            assert!(matches!(refused, Err(GuardError::Unrecoverable { .. })), "{unit:?}: {refused:?}");
        }
        // After an error, kdl's reading of a `/-` cannot be predicted: each may double the work.
        assert_eq!(check_source(&format!("}}{}", "/- a\n".repeat(8))), Ok(()));
        assert!(matches!(check_source(&format!("}}{}", "/- a\n".repeat(30))), Err(GuardError::Unrecoverable { .. })));
    }

    #[test]
    fn never_panics_and_reports_char_boundaries() {
        let alphabet = ["{", "}", "\"", "#", "/", "*", "-", "\\", "\n", " ", "a", "1", "=", "(", ")", "é", "\u{2028}"];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let limits = Limits { max_depth: 2, stack: 3 * LEVEL_COST, work: 64 };
        for _ in 0..4000 {
            let src: String = (0..rng.below(40)).map(|_| rng.pick(&alphabet)).collect();
            if let Err(e) = check_with(&src, limits) {
                assert!(src.is_char_boundary(e.offset()) && e.offset() <= src.len(), "{src:?}: {e:?}");
            }
        }
    }

    /// Random documents using every construct kdl accepts, with trivia in every slot.
    fn generate_document(rng: &mut Rng) -> String {
        fn value(rng: &mut Rng) -> String {
            let v = rng.pick(&[
                "1",
                "-1.5e3",
                "0x1F",
                "0o7",
                "0b1_0",
                "1_000",
                "+5",
                "1E5",
                "#true",
                "#null",
                "#-inf",
                "#nan",
                "x",
                "-",
                ".a",
                "é",
                "\"s\"",
                "\"\\\"\\u{1F600}\\s\"",
                "\"a\\\n   b\"",
                "\"\"",
                "#\"r\"#",
                "##\"a\"#\"##",
                "#\"\"\"x\"#",
                "\"\"\"\n  m\n\n   n \\\"\"\"\n  \"\"\"",
                "#\"\"\"\n\ta\n\t\"\"\"#",
                "-inf",
            ]);
            match rng.below(4) {
                0 => format!("({}){v}", rng.pick(&["t", "\"t\"", " t ", "/*c*/t"])),
                _ => v.to_owned(),
            }
        }
        fn space(rng: &mut Rng) -> &'static str {
            rng.pick(&[" ", " ", "\t", " /* c */ ", " \\\n  ", " \\ // c\n ", "\u{3000}"])
        }
        fn entry(rng: &mut Rng, out: &mut String) {
            match rng.below(6) {
                0 => out.push_str(&format!(
                    "{}{}={}",
                    rng.pick(&["k", "\"k k\"", "-x"]),
                    rng.pick(&["", " "]),
                    value(rng)
                )),
                1 => {
                    let links = 1 + rng.below(3);
                    out.push_str(&"/- ".repeat(links));
                    for _ in 0..links {
                        out.push_str(&value(rng));
                        out.push_str(space(rng));
                    }
                    out.push_str(&value(rng));
                }
                2 => out.push_str(&format!("/-{}{}", rng.pick(&["", " ", "\n  "]), value(rng))),
                _ => out.push_str(&value(rng)),
            }
        }
        fn nodes(rng: &mut Rng, depth: usize, out: &mut String) {
            for _ in 0..1 + rng.below(3) {
                out.push_str(rng.pick(&["", "\n", "\n\n", "// c\n", "/* c */ ", "\\\n", "  ", "\r\n"]));
                let slashdashed = rng.chance(20);
                if slashdashed {
                    out.push_str(rng.pick(&["/-", "/- ", "/-\n", "/- // c\n"]));
                }
                if rng.chance(20) {
                    out.push_str(rng.pick(&["(t)", "( \"t\" )", "(t) "]));
                }
                out.push_str(rng.pick(&["n", "\"q n\"", "#\"r\"#", "-", ".n", "é", "+x", "\"\"\"\n  m\n  \"\"\""]));
                for _ in 0..rng.below(4) {
                    out.push_str(space(rng));
                    entry(rng, out);
                }
                if rng.chance(15) {
                    out.push_str(space(rng));
                    out.push_str("/- { x }");
                }
                let children = depth < 3 && rng.chance(35);
                if children {
                    out.push_str(rng.pick(&[" {", "{", " { // o\n"]));
                    nodes(rng, depth + 1, out);
                    out.push_str(rng.pick(&["", "\n", " ", "/- z"]));
                    out.push('}');
                    out.push_str(rng.pick(&["", " /-{ w }", "/-{ w } /- { v }", " /* a */"]));
                }
                let terminators: &[&str] =
                    if slashdashed { &["\n", " // t\n", "\r\n"] } else { &["\n", ";", " ;", " // t\n", "\r\n"] };
                out.push_str(rng.pick(terminators));
            }
        }
        let mut out = String::new();
        if rng.chance(5) {
            out.push('\u{feff}');
        }
        nodes(rng, 0, &mut out);
        out.push_str(rng.pick(&["", "// end", "\n/- z", "\n/-z 1"]));
        out
    }

    /// Never refusing valid KDL depends on the exact reading following kdl's grammar.
    #[test]
    fn trusts_every_valid_generated_document() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut valid = 0;
        for _ in 0..3000 {
            let src = generate_document(&mut rng);
            if KdlDocument::parse(&src).is_ok() {
                valid += 1;
                assert!(trusts(&src), "valid KDL distrusted at {}:\n{src}", {
                    let mut scan = Scan::new(&src, LIMITS);
                    let _ = scan.document();
                    scan.invalid_at
                });
            }
        }
        assert!(valid > 2000, "only {valid} generated documents were valid");
    }

    /// The bound depends on the exact reading never trusting what kdl would recover from.
    #[test]
    fn trusts_nothing_kdl_rejects() {
        let tokens = [
            "{", "}", "(", ")", "=", ";", "/-", "\\", "\n", " ", "\"", "\"\"\"", "#", "#\"", "\"#", "/*", "*/", "//",
            "a", "1", ".5", "1e", "0x", "-", "#true", "#tru", "\"s\"", "é", "\u{1}", "\u{feff}", "[", "'", "e",
        ];
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        let mut trusted = 0;
        for round in 0..12_000 {
            let mut src = if round % 2 == 0 { generate_document(&mut rng) } else { String::new() };
            for _ in 0..1 + rng.below(if src.is_empty() { 12 } else { 3 }) {
                let mut at = rng.below(src.len() + 1);
                while !src.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + rng.below(4)).min(src.len());
                while !src.is_char_boundary(end) {
                    end -= 1;
                }
                match rng.below(4) {
                    0 => src.replace_range(at..end, ""),
                    1 => {
                        let copy = src[at..end].to_owned();
                        src.insert_str(end, &copy);
                    }
                    _ => src.insert_str(at, rng.pick(&tokens)),
                }
            }
            if trusts(&src) {
                trusted += 1;
                assert!(KdlDocument::parse(&src).is_ok(), "trusted what kdl rejects:\n{src:?}");
            }
        }
        assert!(trusted > 1000, "only {trusted} mutated documents were trusted");
    }

    /// Everything the scan accepts fits in [`STACK_BUDGET`], a quarter of the parser's stack.
    #[test]
    fn kdl_survives_the_largest_accepted_inputs_in_a_quarter_of_its_stack() {
        let shapes: [fn(usize) -> String; 10] = [
            nested,
            |n| format!("a {}{}", "/- ".repeat(n), "1 ".repeat(n)),
            |n| format!("/* {}*/", "* ".repeat(n)),
            |n| format!("{}{}", "/*".repeat(n), "*/".repeat(n)),
            |n| "}".repeat(n),
            |n| ")".repeat(n),
            |n| "a=".repeat(n),
            |n| "/- ".repeat(n),
            |n| format!("x \"\"\"\n{}", "a {".repeat(n)),
            |n| format!("{}{}", nested(MAX_DEPTH).trim_end_matches("}\n"), "x )".repeat(n)),
        ];
        let largest = shapes.map(|shape| {
            let (mut ok, mut over) = (0usize, 1usize);
            while check_source(&shape(over)).is_ok() {
                (ok, over) = (over, over * 2);
            }
            while over - ok > 1 {
                let mid = (ok + over) / 2;
                if check_source(&shape(mid)).is_ok() { ok = mid } else { over = mid }
            }
            shape(ok)
        });
        thread::Builder::new()
            .stack_size(STACK_BUDGET)
            .spawn(move || {
                for src in &largest {
                    let _ = KdlDocument::parse(src);
                }
            })
            .expect("spawn parser thread")
            .join()
            .expect("kdl survives");
    }

    #[test]
    fn parse_kdl_does_not_depend_on_the_callers_stack() {
        let doc = thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(|| parse_kdl(&nested(MAX_DEPTH)).map(|doc| doc.nodes().len()))
            .expect("spawn small thread")
            .join()
            .expect("no overflow");
        assert_eq!(doc.ok(), Some(1));
    }

    /// The shapes that overflowed kdl before the guard, through both callers, on an ordinary
    /// 2 MiB test thread.
    mod hostile_inputs {
        use super::*;
        use crate::span::SourceFile;

        /// Loading and formatting either succeed or say why; neither may abort. Returns whether
        /// kdl parsed the file and whether it formatted.
        fn survive(src: &str) -> (bool, bool) {
            let mut diagnostics = Vec::new();
            let _ = crate::syntax::parse_file(&SourceFile::new("hostile.kdl", src), &mut diagnostics);
            assert!(!diagnostics.is_empty() && diagnostics.iter().all(|d| d.loc.offset <= src.len()));
            (parse_kdl(src).is_ok(), crate::fmt::format_source(src).is_ok())
        }

        fn refused(src: &str) -> bool {
            matches!(parse_kdl(src), Err(ParseFailure::Refused(_)))
        }

        #[test]
        fn deep_nesting_at_and_past_the_limit() {
            let _ = survive(&nested(MAX_DEPTH));
            assert!(!refused(&nested(MAX_DEPTH)));
            assert!(refused(&nested(MAX_DEPTH + 1)));
            let _ = survive(&nested(MAX_DEPTH + 1));
            let _ = survive(&"a {".repeat(100_000));
            let _ = survive(&"{".repeat(100_000));
        }

        #[test]
        fn ten_thousand_stray_closers() {
            assert_eq!(survive(&"}".repeat(10_000)), (false, false));
            assert_eq!(survive(&format!("{}{}", nested(MAX_DEPTH), "}".repeat(10_000))), (false, false));
        }

        #[test]
        fn runs_of_junk() {
            for unit in [")", "=", "/-", "/- ", "a=", ".5 ", "#truex "] {
                let src = unit.repeat(100_000);
                assert!(refused(&src), "{unit:?}");
                assert_eq!(survive(&src), (false, false));
            }
        }

        #[test]
        fn long_block_comments() {
            for src in [
                format!("/* {} */", "* / ".repeat(100_000)),
                format!("{}{}", "/*".repeat(10_000), "*/".repeat(10_000)),
                format!("a /* {}", "*".repeat(100_000)),
                format!("/*{}", "/".repeat(100_000)),
            ] {
                assert!(refused(&src));
                assert_eq!(survive(&src), (false, false));
            }
            // Long, but not deeply recursive: kdl reads a run of text as one piece.
            assert_eq!(survive(&format!("/* {} */\na", "x".repeat(100_000))), (true, true));
        }

        #[test]
        fn unterminated_strings_followed_by_deep_braces() {
            for open in ["a \"", "a \"\"\"\n", "a #\"", "a #\"\"\"\n", "(a \""] {
                for depth in [60, 1000, 100_000] {
                    let _ = survive(&format!("{open}{}", "{".repeat(depth)));
                    let _ = survive(&format!("{open}{}\"", "x {".repeat(depth)));
                }
            }
        }

        #[test]
        fn a_mebibyte_of_junk() {
            let mut rng = Rng(0xdead_beef_cafe_f00d);
            let junk = ["{", "}", "(", ")", "=", "/-", "/*", "*/", "\"", "#", "\\", ";", "a", " ", "\n", "é"];
            let src: String = (0..MAX_SOURCE_LEN / 2).map(|_| rng.pick(&junk)).collect::<String>();
            let src = &src[..src.floor_char_boundary(MAX_SOURCE_LEN)];
            assert_eq!(survive(src), (false, false));
            let over = format!("{src}{src}");
            assert_eq!(survive(&over), (false, false));
        }
    }
}
