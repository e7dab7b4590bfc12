//! A linear pre-scan of a YAML body that bounds how deep libyaml would nest it, so that a
//! deeply nested body is refused before the parse, whose cost grows with the square of the
//! flow nesting (libyaml's scanner walks its stack of simple keys, one per flow level, for
//! every token: 100k levels of `[` take minutes).
//!
//! The scan returns an upper bound of `block levels + flow levels` over the whole document,
//! where a block level is an entry of libyaml's indentation stack (a block sequence or mapping
//! it opened) and a flow level an open `[` or `{`. Every block or flow collection is one level
//! of the decoded value, so a body whose bound is at most the limit parses in linear time,
//! and the deserializer's own recursion limit refuses the rest; a body whose bound is past the
//! limit is nested that deep (or is an odd document whose ambiguity the scan cannot resolve).
//!
//! ```text
//! bytes ──▶ character classes ──▶ every reading libyaml may be in (a small set of modes,
//!                                  each flow mode with the interval of possible levels)
//!                                         │ `- ` `? ` `: ` in block context ──▶ block levels
//!                                         ▼
//!                       bound = block levels + highest flow level ──▶ refuse past the limit
//! ```
//!
//! Why it is an upper bound. The scan follows libyaml's scanner (libyaml-rs 0.3, the one
//! `yaml_serde` uses) as a nondeterministic automaton: where libyaml's choice depends on what
//! the scan does not track (the indentation a multi-line plain scalar or a block scalar ends
//! at), it takes every choice. (So a line of a block scalar that would nest past the limit,
//! were it YAML, is refused: 128 unbalanced brackets at the start of a line.) A mode hides a
//! `[` only where libyaml does (inside a quoted scalar, a comment, a tag, a plain or block
//! scalar), or where libyaml stops with an error (after which nothing is parsed). Flow levels
//! of one mode are kept as the interval of what they may be, so a closing bracket that may
//! return to block context does so in one branch. Characters that leave every reading as it
//! is (letters inside a plain scalar, a comment's text, indentation) are skipped in a run.
//!
//! Block levels are kept as a set `S` of columns such that, for every column `x`, `S` has at
//! least as many columns `<= x` as libyaml's indentation stack has. libyaml pushes a level only
//! at `-` or `?` followed by a blank (at that column) and at `:` followed by a blank (at the
//! column of the key, which is on the same line, so at or after the line's first character);
//! at such a push at column `k >= a` (`a` the column the scan knows), with every stack entry
//! `< k`, adding the smallest column `>= a` missing from `S` keeps the property (either it is
//! `<= k`, or `S` already holds every column from `a` to `k`). libyaml pops the entries
//! greater than the column of a line's first token; the scan pops at the first character of a
//! line only when no reading is inside a quoted scalar or a flow collection (the others either
//! pop the same, or continue a plain or block scalar, which libyaml does only at a column
//! greater than every entry). So `|S|` is at least the number of block levels at all times.
//! A mapping opened at a `:` holds its key: a flow collection as a key (`[[a]]: b`) counts
//! inside it, so the bound at a `:` also adds the highest flow level of the line.
//!
//! (Checked while written with a differential fuzz against libyaml-rs's own token stream:
//! over a million random and generated documents, none undercounted.)

/// The scan found a nesting bound past the limit, around `line` (1-based).
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
}

/// Refuses `text` when it may nest deeper than `limit` levels.
pub fn check(text: &[u8], limit: usize) -> Result<(), TooDeep> {
    // Every level takes at least one character.
    if text.len() <= limit {
        return Ok(());
    }
    Scan::new(text, limit).run()
}

/// Modes of block context (flow level 0), as bits.
mod b {
    /// Between tokens.
    pub const TOK: u16 = 1 << 0;
    /// Inside a plain scalar, in a run of non-blank characters.
    pub const PLAIN: u16 = 1 << 1;
    /// Inside a plain scalar, after a blank or at the start of a continuation line.
    pub const PLAIN_SP: u16 = 1 << 2;
    /// Inside a single-quoted scalar; `SQ_Q` just after a `'` (the end, or `''`).
    pub const SQ: u16 = 1 << 3;
    pub const SQ_Q: u16 = 1 << 4;
    /// Inside a double-quoted scalar; `DQ_ESC` just after a backslash.
    pub const DQ: u16 = 1 << 5;
    pub const DQ_ESC: u16 = 1 << 6;
    /// A comment or a directive, to the end of the line.
    pub const COMMENT: u16 = 1 << 7;
    /// A tag (`!x`), a verbatim tag (`!<x>`), an anchor or alias (`&x`, `*x`).
    pub const TAG: u16 = 1 << 8;
    pub const VERBATIM: u16 = 1 << 9;
    pub const ANCHOR: u16 = 1 << 10;
    /// The header line of a block scalar (`|` or `>`), then its content lines.
    pub const HEADER: u16 = 1 << 11;
    pub const BODY: u16 = 1 << 12;
    /// The rest of a `---` or `...` document marker.
    pub const MARKER: u16 = 1 << 13;
    /// Where a line may start inside a quoted scalar: libyaml does not pop levels there.
    pub const QUOTED: u16 = SQ | SQ_Q | DQ | DQ_ESC;
}

/// Modes of flow context, as indexes of [`Readings::flow`].
mod f {
    pub const TOK: usize = 0;
    pub const PLAIN: usize = 1;
    pub const PLAIN_SP: usize = 2;
    pub const SQ: usize = 3;
    pub const SQ_Q: usize = 4;
    pub const DQ: usize = 5;
    pub const DQ_ESC: usize = 6;
    pub const COMMENT: usize = 7;
    pub const TAG: usize = 8;
    pub const VERBATIM: usize = 9;
    pub const ANCHOR: usize = 10;
    pub const COUNT: usize = 11;
}

/// The flow levels one flow mode may be at: `1 <= lo <= hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Levels {
    lo: u32,
    hi: u32,
}

impl Levels {
    fn hull(a: Option<Levels>, b: Levels) -> Levels {
        match a {
            None => b,
            Some(a) => Levels {
                lo: a.lo.min(b.lo),
                hi: a.hi.max(b.hi),
            },
        }
    }
}

/// Every reading libyaml may be in before one character.
#[derive(Clone, Copy, Debug)]
struct Readings {
    block: u16,
    /// The flow modes present, as bits, and their levels.
    flow_modes: u16,
    flow: [Levels; f::COUNT],
}

impl Readings {
    const NONE: Readings = Readings {
        block: 0,
        flow_modes: 0,
        flow: [Levels { lo: 1, hi: 1 }; f::COUNT],
    };

    fn add_flow(&mut self, mode: usize, levels: Levels) {
        let bit = 1 << mode;
        let before = (self.flow_modes & bit != 0).then_some(self.flow[mode]);
        self.flow[mode] = Levels::hull(before, levels);
        self.flow_modes |= bit;
    }

    /// The flow modes present with their levels.
    fn flows(&self) -> impl Iterator<Item = (usize, Levels)> + '_ {
        let mut modes = self.flow_modes;
        std::iter::from_fn(move || {
            let mode = (modes != 0).then(|| modes.trailing_zeros() as usize)?;
            modes &= modes - 1;
            Some((mode, self.flow[mode]))
        })
    }

    fn highest_flow(&self) -> u32 {
        if self.flow_modes == 0 {
            return 0;
        }
        self.flows().map(|(_, l)| l.hi).max().unwrap_or(0)
    }

    fn in_flow(&self) -> bool {
        self.flow_modes != 0
    }

    /// The ASCII characters (as bits) that leave every reading as it is: no reading changes
    /// mode, looks ahead or at the column for them. Never a line break.
    fn inert(&self) -> u128 {
        let mut inert = !0u128;
        let mut block = self.block;
        while block != 0 {
            let bit = block & block.wrapping_neg();
            block ^= bit;
            inert &= inert_block(bit);
        }
        for (mode, _) in self.flows() {
            inert &= inert_flow(mode);
        }
        inert
    }
}

/// The ASCII characters in `chars`, as bits.
const fn ascii(chars: &[u8]) -> u128 {
    let mut bits = 0u128;
    let mut i = 0;
    while i < chars.len() {
        bits |= 1 << chars[i];
        i += 1;
    }
    bits
}

/// Every ASCII character but line breaks.
const NOT_BREAK: u128 = !ascii(b"\n\r");
const BLANKS: u128 = ascii(b" \t");
const ALNUM: u128 = ascii(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
const ANCHOR_CHARS: u128 = ALNUM | ascii(b"-_");
const TAG_CHARS: u128 = ANCHOR_CHARS | ascii(b";/?:@&=+$.%!~*'()");

fn inert_block(mode: u16) -> u128 {
    match mode {
        b::TOK | b::PLAIN_SP => BLANKS,
        b::PLAIN => NOT_BREAK & !BLANKS & !ascii(b":"),
        b::SQ => NOT_BREAK & !ascii(b"'"),
        b::DQ => NOT_BREAK & !ascii(b"\"\\"),
        b::COMMENT | b::HEADER | b::BODY => NOT_BREAK,
        b::TAG => TAG_CHARS,
        b::VERBATIM => NOT_BREAK & !BLANKS & !ascii(b">"),
        b::ANCHOR => ANCHOR_CHARS,
        _ => 0,
    }
}

fn inert_flow(mode: usize) -> u128 {
    match mode {
        f::TOK | f::PLAIN_SP => BLANKS,
        f::PLAIN => NOT_BREAK & !BLANKS & !ascii(b":,[]{}"),
        f::SQ => NOT_BREAK & !ascii(b"'"),
        f::DQ => NOT_BREAK & !ascii(b"\"\\"),
        f::COMMENT => NOT_BREAK,
        f::TAG => TAG_CHARS,
        f::VERBATIM => NOT_BREAK & !BLANKS & !ascii(b">"),
        f::ANCHOR => ANCHOR_CHARS,
        _ => 0,
    }
}

/// What the scan needs to know of one character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Char {
    /// An ASCII character other than a blank or a line break.
    Ascii(u8),
    /// A space or a tab.
    Blank,
    /// `\n`, `\r`, `\r\n`, NEL, LS or PS.
    Break,
    /// A byte order mark.
    Bom,
    /// Any other character (not ASCII).
    Other,
}

/// Whether `c` is a blank, a line break or the end (libyaml's `IS_BLANKZ`).
fn blankz(c: Option<Char>) -> bool {
    matches!(c, None | Some(Char::Blank | Char::Break))
}

/// libyaml's `IS_ALPHA`: the characters of anchors and tag handles.
fn alpha(c: Char) -> bool {
    matches!(c, Char::Ascii(b) if b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The characters of a tag after its handle, outside a verbatim tag (`scan_tag_uri` with
/// `uri_char` false).
fn tag_char(c: Char) -> bool {
    alpha(c) || matches!(c, Char::Ascii(b) if b";/?:@&=+$.%!~*'()".contains(&b))
}

fn flow_indicator(c: Option<Char>) -> bool {
    matches!(
        c,
        Some(Char::Ascii(b',' | b'?' | b'[' | b']' | b'{' | b'}'))
    )
}

struct Scan<'a> {
    text: &'a [u8],
    limit: usize,
    /// Byte offset of the current character and of the next one.
    at: usize,
    next_at: usize,
    /// Column (in characters) and line of the current character.
    column: u32,
    line: usize,
    /// Column of the first character of the line that is not a blank (or a BOM).
    line_start: Option<u32>,
    /// Block levels: see the module comment. Sorted, at most `limit + 1` long.
    levels: Vec<u32>,
    /// The highest flow level seen on this line: a flow collection that is a key (`[a]: b`)
    /// is inside the block mapping libyaml opens at the `:` after it.
    line_flow: u32,
    /// A block mapping opened around a key took the bound past the limit.
    too_deep: bool,
    readings: Readings,
}

impl<'a> Scan<'a> {
    fn new(text: &'a [u8], limit: usize) -> Scan<'a> {
        Scan {
            text,
            limit,
            at: 0,
            next_at: 0,
            column: 0,
            line: 1,
            line_start: None,
            levels: Vec::new(),
            line_flow: 0,
            too_deep: false,
            readings: Readings {
                block: b::TOK,
                ..Readings::NONE
            },
        }
    }

    /// The character at byte `i` and its length.
    fn char_at(&self, i: usize) -> Option<(Char, usize)> {
        let t = self.text;
        let c = *t.get(i)?;
        Some(match c {
            b' ' | b'\t' => (Char::Blank, 1),
            b'\n' => (Char::Break, 1),
            b'\r' if t.get(i + 1) == Some(&b'\n') => (Char::Break, 2),
            b'\r' => (Char::Break, 1),
            0..0x80 => (Char::Ascii(c), 1),
            0xC2 if t.get(i + 1) == Some(&0x85) => (Char::Break, 2),
            0xE2 if t.get(i + 1) == Some(&0x80) && matches!(t.get(i + 2), Some(0xA8 | 0xA9)) => {
                (Char::Break, 3)
            }
            0xEF if t.get(i + 1..i + 3) == Some(&[0xBB, 0xBF]) => (Char::Bom, 3),
            _ => {
                // A UTF-8 sequence: its continuation bytes belong to it.
                let len = 1 + t[i + 1..]
                    .iter()
                    .take(3)
                    .take_while(|&&b| b & 0xC0 == 0x80)
                    .count();
                (Char::Other, len)
            }
        })
    }

    /// The `n`-th character after the current one (0: the next).
    fn ahead(&self, n: usize) -> Option<Char> {
        let mut i = self.next_at;
        for _ in 0..n {
            i += self.char_at(i)?.1;
        }
        self.char_at(i).map(|(c, _)| c)
    }

    fn run(mut self) -> Result<(), TooDeep> {
        while let Some((c, len)) = self.char_at(self.at) {
            self.next_at = self.at + len;
            if self.line_start.is_none() && !matches!(c, Char::Blank | Char::Break | Char::Bom) {
                self.line_start = Some(self.column);
                let pops = c != Char::Ascii(b'#')
                    && self.readings.block & b::QUOTED == 0
                    && !self.readings.in_flow();
                if pops {
                    let keep = self.levels.partition_point(|&l| l <= self.column);
                    self.levels.truncate(keep);
                }
            }
            let before = std::mem::replace(&mut self.readings, Readings::NONE);
            let mut block = before.block;
            while block != 0 {
                let bit = block & block.wrapping_neg();
                block ^= bit;
                self.block(bit, c);
            }
            for (mode, levels) in before.flows() {
                self.flow(mode, levels, c);
            }
            let flow = self.readings.highest_flow();
            if self.too_deep || self.levels.len() + flow as usize > self.limit {
                return Err(TooDeep { line: self.line });
            }
            self.line_flow = self.line_flow.max(flow);
            if c == Char::Break {
                self.line += 1;
                self.column = 0;
                self.line_start = None;
                self.line_flow = flow;
            } else {
                self.column += 1;
            }
            self.at = self.next_at;
            // Skip what changes nothing (most of a scalar, a comment, an indentation); not the
            // first character of a line that is not a blank (it may pop levels).
            let mut inert = self.readings.inert();
            if self.line_start.is_none() {
                inert &= BLANKS;
            }
            let (low, high) = (inert as u64, (inert >> 64) as u64);
            let run = self.text[self.at..]
                .iter()
                .take_while(|&&b| match b {
                    0..64 => low >> b & 1 != 0,
                    64..128 => high >> (b - 64) & 1 != 0,
                    _ => false,
                })
                .count();
            self.at += run;
            self.column += run as u32;
        }
        Ok(())
    }

    /// libyaml may push a block level at column `k >= anchor`: `exact` when `k == anchor`
    /// (`-` and `?`), otherwise the level of a mapping opened around a key on this line.
    fn push_level(&mut self, anchor: u32, exact: bool) {
        let mut at = self.levels.partition_point(|&l| l < anchor);
        let mut column = anchor;
        if exact && self.levels.get(at) == Some(&column) {
            return;
        }
        while self.levels.get(at) == Some(&column) {
            column += 1;
            at += 1;
        }
        self.levels.insert(at, column);
        if !exact && self.levels.len() + self.line_flow as usize > self.limit {
            self.too_deep = true;
        }
    }

    /// Steps a reading in block context over `c`.
    fn block(&mut self, mode: u16, c: Char) {
        let value_indicator = c == Char::Ascii(b':') && blankz(self.ahead(0));
        let next = match mode {
            b::TOK => return self.block_token(c),
            b::PLAIN | b::PLAIN_SP => match c {
                Char::Blank => b::PLAIN_SP,
                // A continuation line, or the scalar ended and the line holds tokens.
                Char::Break => b::PLAIN_SP | b::TOK,
                Char::Ascii(b'#') if mode == b::PLAIN_SP => b::COMMENT,
                _ if value_indicator => return self.block_token(c),
                _ => b::PLAIN,
            },
            b::SQ => match c {
                Char::Ascii(b'\'') => b::SQ_Q,
                _ => b::SQ,
            },
            b::SQ_Q => match c {
                Char::Ascii(b'\'') => b::SQ,
                _ => return self.block_token(c),
            },
            b::DQ => match c {
                Char::Ascii(b'\\') => b::DQ_ESC,
                Char::Ascii(b'"') => b::TOK,
                _ => b::DQ,
            },
            b::DQ_ESC => b::DQ,
            b::COMMENT => match c {
                Char::Break => b::TOK,
                _ => b::COMMENT,
            },
            b::TAG if tag_char(c) => b::TAG,
            b::VERBATIM => match c {
                Char::Ascii(b'>') => b::TOK,
                Char::Blank | Char::Break => return self.block_token(c),
                _ => b::VERBATIM,
            },
            b::ANCHOR if alpha(c) => b::ANCHOR,
            b::TAG | b::ANCHOR => return self.block_token(c),
            b::HEADER | b::BODY => match c {
                // The next line continues the block scalar, or ends it.
                Char::Break => b::BODY | b::TOK,
                _ => mode,
            },
            b::MARKER => match c {
                Char::Ascii(b'-' | b'.') => b::MARKER,
                _ => return self.block_token(c),
            },
            _ => unreachable!("a block mode is one bit"),
        };
        self.readings.block |= next;
    }

    /// Steps a block reading between tokens over `c` (libyaml's `fetch_next_token`).
    fn block_token(&mut self, c: Char) {
        let next = self.ahead(0);
        let column = self.column;
        let marker = |ch: u8| {
            column == 0
                && next == Some(Char::Ascii(ch))
                && self.ahead(1) == Some(Char::Ascii(ch))
                && blankz(self.ahead(2))
        };
        let mode = match c {
            Char::Blank | Char::Break => b::TOK,
            // libyaml skips a byte order mark at the start of a line only.
            Char::Bom if column == 0 => b::TOK,
            Char::Ascii(b'#') => b::COMMENT,
            Char::Ascii(b'%') if column == 0 => b::COMMENT,
            Char::Ascii(ch @ (b'-' | b'.')) if marker(ch) => b::MARKER,
            Char::Ascii(b'[' | b'{') => {
                self.readings.add_flow(f::TOK, Levels { lo: 1, hi: 1 });
                return;
            }
            Char::Ascii(b'-' | b'?') if blankz(next) => {
                self.push_level(column, true);
                b::TOK
            }
            Char::Ascii(b':') if blankz(next) => {
                self.push_level(self.line_start.unwrap_or(column), false);
                b::TOK
            }
            Char::Ascii(b'*' | b'&') => b::ANCHOR,
            Char::Ascii(b'!') if next == Some(Char::Ascii(b'<')) => b::VERBATIM,
            Char::Ascii(b'!') => b::TAG,
            Char::Ascii(b'|' | b'>') => b::HEADER,
            Char::Ascii(b'\'') => b::SQ,
            Char::Ascii(b'"') => b::DQ,
            // A flow indicator in block context, or a character that cannot start a token:
            // libyaml's parser or scanner stops there.
            Char::Ascii(b']' | b'}' | b',' | b'%' | b'@' | b'`') => b::TOK,
            Char::Ascii(_) | Char::Bom | Char::Other => b::PLAIN,
        };
        self.readings.block |= mode;
    }

    /// Steps a reading in flow context over `c`.
    fn flow(&mut self, mode: usize, levels: Levels, c: Char) {
        let ends_plain = match c {
            Char::Ascii(b':') => blankz(self.ahead(0)) || flow_indicator(self.ahead(0)),
            Char::Ascii(b',' | b'[' | b']' | b'{' | b'}') => true,
            _ => false,
        };
        let next = match mode {
            f::TOK => return self.flow_token(levels, c),
            f::PLAIN | f::PLAIN_SP => match c {
                Char::Blank | Char::Break => f::PLAIN_SP,
                Char::Ascii(b'#') if mode == f::PLAIN_SP => f::COMMENT,
                _ if ends_plain => return self.flow_token(levels, c),
                _ => f::PLAIN,
            },
            f::SQ => match c {
                Char::Ascii(b'\'') => f::SQ_Q,
                _ => f::SQ,
            },
            f::SQ_Q => match c {
                Char::Ascii(b'\'') => f::SQ,
                _ => return self.flow_token(levels, c),
            },
            f::DQ => match c {
                Char::Ascii(b'\\') => f::DQ_ESC,
                Char::Ascii(b'"') => f::TOK,
                _ => f::DQ,
            },
            f::DQ_ESC => f::DQ,
            f::COMMENT => match c {
                Char::Break => f::TOK,
                _ => f::COMMENT,
            },
            f::TAG if tag_char(c) => f::TAG,
            f::VERBATIM => match c {
                Char::Ascii(b'>') => f::TOK,
                Char::Blank | Char::Break => return self.flow_token(levels, c),
                _ => f::VERBATIM,
            },
            f::ANCHOR if alpha(c) => f::ANCHOR,
            f::TAG | f::ANCHOR => return self.flow_token(levels, c),
            _ => unreachable!("flow modes are below f::COUNT"),
        };
        self.readings.add_flow(next, levels);
    }

    /// Steps a flow reading between tokens over `c`.
    fn flow_token(&mut self, levels: Levels, c: Char) {
        let next = self.ahead(0);
        let mode = match c {
            Char::Ascii(b'#') => f::COMMENT,
            Char::Ascii(b'[' | b'{') => {
                let deeper = Levels {
                    lo: levels.lo + 1,
                    hi: levels.hi + 1,
                };
                return self.readings.add_flow(f::TOK, deeper);
            }
            Char::Ascii(b']' | b'}') => {
                if levels.lo == 1 {
                    self.readings.block |= b::TOK;
                }
                if levels.hi > 1 {
                    let lo = levels.lo.saturating_sub(1).max(1);
                    let hi = levels.hi - 1;
                    self.readings.add_flow(f::TOK, Levels { lo, hi });
                }
                return;
            }
            Char::Ascii(b'-') if !blankz(next) => f::PLAIN,
            Char::Ascii(b'*' | b'&') => f::ANCHOR,
            Char::Ascii(b'!') if next == Some(Char::Ascii(b'<')) => f::VERBATIM,
            Char::Ascii(b'!') => f::TAG,
            Char::Ascii(b'\'') => f::SQ,
            Char::Ascii(b'"') => f::DQ,
            Char::Blank | Char::Break => f::TOK,
            Char::Bom if self.column == 0 => f::TOK,
            // Indicators (`,` `?` `:` `-`), and characters that cannot start a token in flow
            // context (libyaml stops there).
            Char::Ascii(b',' | b'?' | b':' | b'-' | b'|' | b'>' | b'%' | b'@' | b'`') => f::TOK,
            Char::Ascii(_) | Char::Bom | Char::Other => f::PLAIN,
        };
        self.readings.add_flow(mode, levels);
    }
}

#[cfg(test)]
mod tests;
