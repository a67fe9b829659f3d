//! Folding against evasion.
//!
//! Text and terms go through the same folding, so whatever a trick does to
//! the text it also does to the term. Folding turns a text into a stream of
//! **units** (one per letter, digit or look-alike symbol) and **word
//! boundaries**, in one pass, without allocating per byte:
//!
//! 1. **Characters.** ASCII goes through a 128-entry table (the fast path).
//!    Anything else goes through Unicode compatibility decomposition (NFKD,
//!    which turns fullwidth `ｋ`, mathematical `𝐤` and circled `ⓚ` into `k`),
//!    loses its combining marks (`é` → `e`), is lower-cased, and passes
//!    small tables for letters NFKD leaves alone (`ß` → `ss`, `ł` → `l`, …),
//!    for Cyrillic, Greek and small-capital look-alikes (`а`, `ο`, `В`, `ᴋ`
//!    → `a`, `o`, `b`, `k`) and for a few symbols (`€` → e). Zero-width
//!    characters (U+200B–U+200F, U+2060–U+2064, U+FEFF), the soft hyphen
//!    U+00AD and bidi controls vanish without splitting the word.
//! 2. **Readings.** Every unit knows which letters it can stand for, as a
//!    bit set: a letter reads as itself; `0`→o, `1`→i or l, `3`→e, `4`→a,
//!    `5`→s, `7`→t, `8`→b, `9`→g (and the digit itself); `@`→a, `$`→s,
//!    `!`→i, `|`→i or l, `+`→t, `(`→c, `€`→e. A term matches a text when
//!    each of its letters is one of the readings of the text's unit there,
//!    so an ambiguous symbol matches if ANY reading does.
//! 3. **Classes.** The automaton sees each unit as its *class*: one byte
//!    shared by everything that can read alike. `i`, `l`, `1`, `|` and `!`
//!    are one class; `a`, `4` and `@` another; letters outside Latin keep
//!    their own (UTF-8) character. Runs of one class collapse to one byte,
//!    so stretching (`kiiiill`) folds away; the scanner checks run lengths
//!    and readings exactly against the original afterwards.
//! 4. **Words.** Runs of units. An apostrophe separates words (`who're` is
//!    not `whore`; terms are also registered without their apostrophes, so
//!    `dont` still matches `don't`). `!`, `+` and `(` at the edges of a word are
//!    punctuation (`kill!`, `(kill)`). A lone symbol is a separator unless
//!    it joins spaced letters (`k.1.|.|`).
//!    Everything else separates words; each run of separators is one word
//!    boundary, and the stream starts and ends with one.
//! 5. **Spaced letters.** Two or more one-unit words separated by at most
//!    three separator characters (no line break; an apostrophe starts the
//!    count again) join into one word:
//!    `k i l l`, `k.i.l.l`, `k-i-l-l`, `k_i_l_l`, `k/i/l/l`, `k*i*l*l`.
//! 6. **The second reading.** `|<` (k), `|3` (b), `|)` (d), `|\|` (n),
//!    `|-|` (h), `|_|` (u), `/\` (a), `\/` (v), `()` (o) and `><` (x) read
//!    as one letter, and `(` and `+` at the edges of a word read as `c` and
//!    `t` (`(ock`), in a second reading of the text, folded only when the
//!    first reading saw such a thing ([`Normalized::second_reading`]):
//!    `|3` is also `l` and `e` (`8|3ed` = bleed), `(` is also a
//!    parenthesis, so both readings are scanned.
//!
//! ```
//! use lectern_keywords::normalize::normalize;
//!
//! assert_eq!(normalize("K1LL y0u").as_str(), " ki you ");
//! assert_eq!(normalize("k.i.l.l").spelled(), "kill");
//! ```

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Bits 0–25: the letters a–z.
pub(crate) const LETTERS: u64 = (1 << 26) - 1;

const fn letter(c: u8) -> u64 {
    1 << (c - b'a')
}

const fn digit(d: u8) -> u64 {
    1 << (26 + d - b'0')
}

/// What a unit can stand for: a set of Latin letters and digits, or (when
/// `mask` is 0) exactly one other character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Reads {
    pub(crate) mask: u64,
    pub(crate) other: char,
}

impl Reads {
    /// Whether some reading of `self` is a reading of `other`.
    pub(crate) fn meets(self, other: Reads) -> bool {
        self.mask & other.mask != 0
            || (self.mask == 0 && other.mask == 0 && self.other == other.other)
    }

    const fn mask(mask: u64) -> Reads {
        Reads { mask, other: '\0' }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Letter,
    Digit,
    Symbol,
}

/// One letter, digit or look-alike symbol of the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unit {
    /// What the automaton sees (see the module documentation).
    pub(crate) class: char,
    pub(crate) reads: Reads,
    pub(crate) kind: Kind,
    /// `!`, `+`, `(`: punctuation at the edges of a word.
    edge: bool,
    /// The original byte span (character boundaries).
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(Clone, Copy)]
enum Ascii {
    Sep,
    Apostrophe,
    Unit {
        class: u8,
        reads: u64,
        kind: Kind,
        edge: bool,
    },
}

const fn unit(class: u8, reads: u64, kind: Kind) -> Ascii {
    Ascii::Unit {
        class,
        reads,
        kind,
        edge: false,
    }
}

const fn ascii_entry(b: u8) -> Ascii {
    match b {
        b'l' => unit(b'i', letter(b'l'), Kind::Letter),
        b'a'..=b'z' => unit(b, letter(b), Kind::Letter),
        b'A'..=b'Z' => {
            let l = b.to_ascii_lowercase();
            unit(if l == b'l' { b'i' } else { l }, letter(l), Kind::Letter)
        }
        b'0' => unit(b'o', digit(b) | letter(b'o'), Kind::Digit),
        b'1' => unit(b'i', digit(b) | letter(b'i') | letter(b'l'), Kind::Digit),
        b'3' => unit(b'e', digit(b) | letter(b'e'), Kind::Digit),
        b'4' => unit(b'a', digit(b) | letter(b'a'), Kind::Digit),
        b'5' => unit(b's', digit(b) | letter(b's'), Kind::Digit),
        b'7' => unit(b't', digit(b) | letter(b't'), Kind::Digit),
        b'8' => unit(b'b', digit(b) | letter(b'b'), Kind::Digit),
        b'9' => unit(b'g', digit(b) | letter(b'g'), Kind::Digit),
        b'2' | b'6' => unit(b, digit(b), Kind::Digit),
        b'@' => unit(b'a', letter(b'a'), Kind::Symbol),
        b'$' => unit(b's', letter(b's'), Kind::Symbol),
        b'|' => unit(b'i', letter(b'i') | letter(b'l'), Kind::Symbol),
        b'!' | b'+' | b'(' => Ascii::Unit {
            class: match b {
                b'!' => b'i',
                b'+' => b't',
                _ => b'c',
            },
            reads: match b {
                b'!' => letter(b'i'),
                b'+' => letter(b't'),
                _ => letter(b'c'),
            },
            kind: Kind::Symbol,
            edge: true,
        },
        b'\'' => Ascii::Apostrophe,
        _ => Ascii::Sep,
    }
}

static ASCII: [Ascii; 128] = {
    let mut table = [Ascii::Sep; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = ascii_entry(b as u8);
        b += 1;
    }
    table
};

/// Multi-character look-alikes, read only in the digraph reading.
const DIGRAPHS: &[(&[u8], u8)] = &[
    (b"|\\|", b'n'),
    (b"|-|", b'h'),
    (b"|_|", b'u'),
    (b"|<", b'k'),
    (b"|3", b'b'),
    (b"|)", b'd'),
    (b"/\\", b'a'),
    (b"\\/", b'v'),
    (b"()", b'o'),
    (b"><", b'x'),
];

/// The most separator characters between two spaced letters that still
/// join (`k - i - l - l`); an apostrophe starts the count again
/// (`y . o . u . ' . r . e`).
const MAX_GAP: usize = 3;

/// For each byte: its class if it is a plain ASCII unit inside a word (the
/// fast path), else 0 (separators, apostrophes, edge symbols, bytes that
/// may start a digraph, and every non-ASCII byte). 256 entries, so a byte
/// indexes it without a check.
pub(crate) static FAST: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        if let Ascii::Unit {
            class, edge: false, ..
        } = ascii_entry(b as u8)
        {
            if !matches!(b as u8, b'|' | b'/' | b'\\' | b'(' | b'>') {
                table[b] = class;
            }
        }
        b += 1;
    }
    table
};

/// Where the run of plain ASCII units (see [`FAST`]) starting at `from`
/// ends.
#[inline(always)]
fn run_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| FAST[usize::from(b)] == 0)
        .map_or(bytes.len(), |k| from + k)
}

#[inline]
fn digraph_at(bytes: &[u8], i: usize) -> Option<(usize, u8)> {
    if !matches!(bytes[i], b'|' | b'/' | b'\\' | b'(' | b'>') {
        return None;
    }
    DIGRAPHS
        .iter()
        .find(|(d, _)| bytes[i..].starts_with(d))
        .map(|&(d, l)| (d.len(), l))
}

/// For each ASCII byte: whether it is a separator that cannot start a
/// digraph (white space, most punctuation), so the main loop can hand it
/// straight to [`Folder::plain_sep`] without looking for digraphs; 0 if
/// not, else `SEP` with `SEP_BREAK` (a line break) and `SEP_MARK` (not
/// white space): what [`Folder::sep`] works out from the character.
static PLAIN_SEP: [u8; 128] = {
    let mut table = [0; 128];
    let mut b = 0;
    while b < 128 {
        if matches!(ascii_entry(b as u8), Ascii::Sep)
            && !matches!(b as u8, b'|' | b'/' | b'\\' | b'(' | b'>')
        {
            table[b] = SEP;
            if matches!(b as u8, b'\n' | b'\r') {
                table[b] |= SEP_BREAK;
            }
            // `char::is_whitespace` on ASCII: also the vertical tab.
            let white = (b as u8).is_ascii_whitespace() || b == 0x0b;
            if !white {
                table[b] |= SEP_MARK;
            }
        }
        b += 1;
    }
    table
};

const SEP: u8 = 1;
const SEP_BREAK: u8 = 2;
const SEP_MARK: u8 = 4;

/// [`PLAIN_SEP`] for every byte of a plain stretch's gaps, which may hold
/// emoji and `/` (see [`Block::take_separators`]): an emoji counts as one
/// separator, at its first byte (`F0`, marked), not its continuation bytes
/// (0); a `/` as one, marked.
static GAP: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = PLAIN_SEP[b];
        b += 1;
    }
    table[0xf0] = SEP | SEP_MARK;
    // A `/` that starts no digraph is a separator like `.`.
    table[b'/' as usize] = SEP | SEP_MARK;
    table
};

/// For each byte: its class if it is a plain ASCII unit ([`FAST`]), a
/// space if it is a plain separator ([`PLAIN_SEP`]), else 0: what the
/// block fast path (see [`Block`]) hands a sink.
static PLAIN: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = if FAST[b] != 0 {
            FAST[b]
        } else if PLAIN_SEP[b] != 0 {
            b' '
        } else {
            0
        };
        b += 1;
    }
    table
};

/// The most bytes the block fast path looks at once: 63, so that bit 63
/// of a block's masks is always clear and a carry into it is never lost.
const BLOCK: usize = 63;

/// Up to [`BLOCK`] bytes of text starting at a plain separator or unit, as bit
/// masks (bit `k` for byte `k`), so that the fast path can tell in a few
/// instructions how far the text is plain: plain separators and words of
/// plain ASCII units of two classes or more, whose folding needs none of
/// [`Folder`]'s bookkeeping (spaced letters, edge symbols, digraphs).
#[derive(Clone, Copy)]
struct Block {
    /// Each byte's entry in [`PLAIN`] (64, for eight words of eight), or a
    /// space for each byte of an emoji taken as a separator.
    classes: [u8; 64],
    len: usize,
    /// Plain units.
    word: u64,
    /// The first unit of each word (not of one begun before the block).
    starts: u64,
    /// Plain units and plain separators (emoji among them).
    plain: u64,
    /// Bytes whose entry in [`PLAIN`] differs from the byte before's.
    change: u64,
}

/// 0x01 in every byte.
const LOW_BYTES: u64 = u64::from_le_bytes([1; 8]);

/// The top bit of each byte of `x` that is not zero (bytes below 0x80).
#[inline(always)]
fn nonzero_bytes(x: u64) -> u64 {
    ((x & (LOW_BYTES * 0x7f)).wrapping_add(LOW_BYTES * 0x7f) | x) & (LOW_BYTES * 0x80)
}

/// The top bits of the eight bytes of `x` (`nonzero_bytes`) as eight bits,
/// byte `k`'s as bit `k`: a multiplication moves each to the top byte.
#[inline(always)]
fn byte_flags(x: u64) -> u64 {
    (x >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// [`Block::new`] with AVX2, 32 bytes at a time: `vpshufb` looks up 16
/// entries, so each class is looked up in the row of [`PLAIN`] of its high
/// nibble (bytes from 0x80 up come out 0 by themselves, as in `PLAIN`), and
/// each mask is one comparison and `vpmovmskb`. Nearly every x86-64 CPU
/// since 2013 has it.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Block, PLAIN};
    use std::arch::x86_64::*;

    /// Whether this CPU can run [`block`].
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// Rows 2 to 7 of [`PLAIN`] (0x20–0x7F), each twice (once per 128-bit
    /// lane, where `vpshufb` looks up). Rows 0 and 1 (control characters)
    /// are all separators.
    static ROWS: [[u8; 32]; 8] = {
        let mut rows = [[0u8; 32]; 8];
        let mut r = 2;
        while r < 8 {
            let mut k = 0;
            while k < 32 {
                rows[r][k] = PLAIN[16 * r + k % 16];
                k += 1;
            }
            r += 1;
        }
        rows
    };

    /// The classes of 32 bytes.
    #[target_feature(enable = "avx2")]
    fn classify(text: __m256i) -> __m256i {
        let high = _mm256_and_si256(_mm256_srli_epi16(text, 4), _mm256_set1_epi8(0x0f));
        // Rows 0 and 1 (as signed bytes, 0x80 and up are negative, not
        // below 2: `high` is at most 0x0f).
        let control = _mm256_cmpgt_epi8(_mm256_set1_epi8(2), high);
        let mut classes = _mm256_and_si256(control, _mm256_set1_epi8(b' ' as i8));
        for (r, row) in ROWS.iter().enumerate().skip(2) {
            // SAFETY: each row is 32 bytes.
            let table = unsafe { _mm256_loadu_si256(row.as_ptr().cast()) };
            let here = _mm256_cmpeq_epi8(high, _mm256_set1_epi8(r as i8));
            let looked = _mm256_shuffle_epi8(table, text);
            classes = _mm256_or_si256(classes, _mm256_and_si256(looked, here));
        }
        classes
    }

    /// `classes` moved up a byte, with byte 31 of `before` as byte 0.
    #[target_feature(enable = "avx2")]
    fn shifted(classes: __m256i, before: __m256i) -> __m256i {
        // The high lane of `before` and the low lane of `classes`, from
        // which `alignr` takes each lane's first byte.
        let carry = _mm256_permute2x128_si256::<0x03>(classes, before);
        _mm256_alignr_epi8::<15>(classes, carry)
    }

    /// Bit `k`: byte `k` of `v` is not zero.
    #[target_feature(enable = "avx2")]
    fn nonzero(v: __m256i) -> u64 {
        let zero = _mm256_cmpeq_epi8(v, _mm256_setzero_si256());
        u64::from(!(_mm256_movemask_epi8(zero) as u32))
    }

    /// [`Block::new`] with AVX2, or `None` on a CPU without it (so that a
    /// wrong [`super::Wide`] can cost speed, never soundness; the check is
    /// a cached flag).
    pub(super) fn block(bytes: &[u8], prev: u8, continues: bool) -> Option<Block> {
        if !available() {
            return None;
        }
        // SAFETY: the CPU has AVX2.
        Some(unsafe { block_unchecked(bytes, prev, continues) })
    }

    /// # Safety
    ///
    /// The CPU must have AVX2 ([`available`]).
    #[target_feature(enable = "avx2")]
    unsafe fn block_unchecked(bytes: &[u8], prev: u8, continues: bool) -> Block {
        let mut short = [0u8; 64];
        let full: &[u8; 64] = match bytes.first_chunk::<64>() {
            Some(full) => full,
            None => {
                // The end of the text, padded with zeros: their classes
                // (a space, as control characters) lie past the length,
                // where every mask is cut.
                short[..bytes.len()].copy_from_slice(bytes);
                &short
            }
        };
        // SAFETY: `full` is 64 bytes.
        let (low, high) = unsafe {
            (
                _mm256_loadu_si256(full.as_ptr().cast()),
                _mm256_loadu_si256(full[32..].as_ptr().cast()),
            )
        };
        let (low, high) = (classify(low), classify(high));
        let before_low = shifted(low, _mm256_set1_epi8(prev as i8));
        let before_high = shifted(high, low);
        let letters = _mm256_set1_epi8(0x50);
        let word = nonzero(_mm256_and_si256(low, letters))
            | nonzero(_mm256_and_si256(high, letters)) << 32;
        let plain = nonzero(low) | nonzero(high) << 32;
        let change = nonzero(_mm256_xor_si256(low, before_low))
            | nonzero(_mm256_xor_si256(high, before_high)) << 32;
        let mut out = [0u8; 64];
        // SAFETY: `out` is 64 bytes.
        unsafe {
            _mm256_storeu_si256(out.as_mut_ptr().cast(), low);
            _mm256_storeu_si256(out[32..].as_mut_ptr().cast(), high);
        }
        Block::with_masks(out, bytes, continues, word, plain, change)
    }
}

impl Block {
    /// No block yet (no byte to reuse).
    const EMPTY: Block = Block {
        classes: [0; 64],
        len: 0,
        word: 0,
        starts: 0,
        plain: 0,
        change: 0,
    };

    /// The block of the first [`BLOCK`] bytes of `bytes`, which start
    /// with a plain separator or unit. `prev` is the class (in [`PLAIN`])
    /// of the byte before; `continues`: the first unit continues a word
    /// begun before. Each byte's class by table, then the masks eight bytes
    /// at a time.
    #[inline(always)]
    fn new(bytes: &[u8], prev: u8, continues: bool, wide: Wide) -> Block {
        match wide {
            #[cfg(target_arch = "x86_64")]
            Wide::Avx2 => avx2::block(bytes, prev, continues)
                .unwrap_or_else(|| Block::narrow(bytes, prev, continues)),
            _ => Block::narrow(bytes, prev, continues),
        }
    }

    /// [`Block::new`] a byte at a time by table and eight bytes at a time
    /// for the masks: for any CPU.
    #[inline(always)]
    fn narrow(bytes: &[u8], prev: u8, continues: bool) -> Block {
        let classes: [u8; 64] = match bytes.first_chunk::<64>() {
            Some(full) => std::array::from_fn(|k| PLAIN[usize::from(full[k])]),
            None => {
                // The end of the text: the rest reads as other bytes (0).
                let mut classes = [0u8; 64];
                for (slot, &b) in classes.iter_mut().zip(bytes) {
                    *slot = PLAIN[usize::from(b)];
                }
                classes
            }
        };
        let len = bytes.len().min(BLOCK);
        let (mut word, mut plain, mut change) = (0u64, 0u64, 0u64);
        let mut prev = u64::from(prev);
        for (j, eight) in classes.chunks_exact(8).take(len.div_ceil(8)).enumerate() {
            let x = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            // Classes are 0, a space (0x20), or a digit or letter (0x32 up),
            // which alone have bit 0x10 or 0x40.
            word |= byte_flags(nonzero_bytes(x & (LOW_BYTES * 0x50))) << (8 * j);
            plain |= byte_flags(nonzero_bytes(x)) << (8 * j);
            change |= byte_flags(nonzero_bytes(x ^ (x << 8 | prev))) << (8 * j);
            prev = x >> 56;
        }
        Block::with_masks(classes, bytes, continues, word, plain, change)
    }

    /// The block of `classes` (the first `bytes.len().min(BLOCK)` of
    /// them valid) and its masks before separators are taken, valid or
    /// not past the length.
    #[inline(always)]
    fn with_masks(
        classes: [u8; 64],
        bytes: &[u8],
        continues: bool,
        word: u64,
        plain: u64,
        change: u64,
    ) -> Block {
        let len = bytes.len().min(BLOCK);
        let valid = (1u64 << len) - 1;
        let word = word & valid;
        let mut block = Block {
            classes,
            len,
            word,
            starts: word & !(word << 1 | u64::from(continues)),
            plain: plain & valid,
            change: change & valid,
        };
        block.take_separators(bytes);
        block
    }

    /// Separators the general path takes one at a time, where the plain
    /// bytes stop, so that the block goes on past them:
    ///
    /// - Emoji (U+1F300 to U+1FAFF): the general path folds each into one
    ///   marked separator (not a letter, no decomposition, `sep`), like
    ///   `.`. Its four bytes take the class of a space (the sink collapses
    ///   them); the gap counts the character once (see [`GAP`]). Only an
    ///   emoji whole inside the block.
    /// - `/` not followed by `\` (web addresses): the general path looks
    ///   for a digraph there, and the only one starting with `/` is `/\`;
    ///   without it, `/` is a marked separator (`sep`), like `.`. (In `\/`
    ///   the `\` comes first and stops the loop.) Only with the next byte
    ///   inside the block.
    ///
    /// It looks no further than the first other byte, where the plain
    /// stretch would stop anyway.
    #[inline(always)]
    fn take_separators(&mut self, bytes: &[u8]) {
        let valid = (1u64 << self.len) - 1;
        loop {
            let other = !self.plain & valid;
            if other == 0 {
                return;
            }
            let k = other.trailing_zeros() as usize;
            // (Not at the block's first byte, which the fast path never
            // starts on, so that the byte before is in `classes`.)
            if k == 0 {
                return;
            }
            let n = match bytes[k] {
                // (`bytes` is UTF-8: `F0 9F 8C..=AB` starts such a character.)
                0xf0 if k + 4 <= self.len
                    && bytes[k + 1] == 0x9f
                    && (0x8c..=0xab).contains(&bytes[k + 2]) =>
                {
                    4
                }
                b'/' if k + 1 < self.len && bytes[k + 1] != b'\\' => 1,
                _ => return,
            };
            self.classes[k..k + n].fill(b' ');
            self.plain |= ((1u64 << n) - 1) << k;
            // Its first byte changes from the one before; the next after
            // it, from a space.
            self.change &= !(((2u64 << n) - 1) << k);
            self.change |= u64::from(self.classes[k - 1] != b' ') << k;
            if k + n < self.len {
                self.change |= u64::from(self.classes[k + n] != b' ') << (k + n);
            }
        }
    }

    /// The block [`Block::new`] would give at byte `d` of this one's
    /// (`0 < d < len`; `bytes` from there) with `prev` and `continues`, but ending where this
    /// one ends: each byte's class and masks do not depend on the state,
    /// and `change` only at the first byte (the one before is `prev`, a
    /// space unless a word continues) and `starts` only through
    /// `continues`. The fast path resumes after a byte it left for the
    /// general path; this saves classifying the same bytes again.
    #[inline(always)]
    fn from(&self, d: usize, bytes: &[u8], prev: u8, continues: bool) -> Block {
        let mut classes = self.classes;
        classes.rotate_left(d);
        let word = self.word >> d;
        let change = self.change >> d & !1 | u64::from(classes[0] != prev);
        let mut block = Block {
            classes,
            len: self.len - d,
            word,
            starts: word & !(word << 1 | u64::from(continues)),
            plain: self.plain >> d,
            change,
        };
        // Emoji past where this one's stopped taking them.
        block.take_separators(bytes);
        block
    }

    /// The first unit of each word.
    fn starts(&self) -> u64 {
        self.starts
    }

    /// How many bytes from the start are plain: up to the first byte that
    /// is neither a plain unit nor a plain separator, or the start of the
    /// first word of one class (`a`, `I`, `kkk`: maybe a spaced letter),
    /// counting a word cut by the block's end as one class unless it
    /// already shows two. A word cut by a byte that is not plain (`caf` of
    /// `café`, `okay` of `okay!`) is plain up to that byte if it has two
    /// classes there: the general path then goes on from where the plain
    /// path would have left it.
    fn plain_len(&self) -> usize {
        let valid = (1u64 << self.len) - 1;
        let other = !self.plain & valid;
        let starts = self.starts();
        // Units whose class differs from the unit before, in the same word.
        let inner = self.word & self.change & !starts;
        // Adding each word's first bit to the runs without such a change
        // carries through a word of one class to the bit just past it
        // (past its first class only, in a word of two or more, landing
        // on a unit of the word).
        let flat = self.word & !inner;
        let past_one_class = flat.wrapping_add(starts) & !flat & !self.word;
        let mut len = if other == 0 {
            self.len
        } else {
            other.trailing_zeros() as usize
        };
        if past_one_class != 0 {
            let past = past_one_class.trailing_zeros();
            let before = starts & ((1u64 << past) - 1);
            len = len.min(63 - before.leading_zeros() as usize);
        }
        len
    }
}

/// Where folded units and word boundaries go.
pub(crate) trait Sink {
    /// The next unit of a word.
    fn unit(&mut self, u: &Unit);
    /// A word boundary (the sink collapses repeated ones).
    fn space(&mut self);
    /// The last unit given to [`Sink::unit`] extends to `end` (combining
    /// marks after it).
    fn extend(&mut self, end: usize);
    /// The fast path: the plain ASCII unit `byte` at offset `at`, inside a
    /// word, whose class is `class` (see `FAST`); the same as `unit`.
    #[inline(always)]
    fn ascii(&mut self, class: u8, byte: u8, at: usize) {
        if let Ascii::Unit {
            reads, kind, edge, ..
        } = ASCII[byte as usize]
        {
            self.unit(&Unit {
                class: class as char,
                reads: Reads::mask(reads),
                kind,
                edge,
                start: at,
                end: at + 1,
            });
        }
    }

    /// The fast path for a whole run: the plain ASCII units inside one
    /// word from `bytes[from]` up to the first byte that is not one (whose
    /// class in `FAST` is 0); the same as [`Sink::ascii`] on each in turn.
    /// Returns where the run ends. A sink that can keep its state in
    /// registers across the run overrides it, finding the run's end as it
    /// goes (one pass over the bytes, not two).
    #[inline(always)]
    fn ascii_run(&mut self, bytes: &[u8], from: usize) -> usize {
        let end = run_end(bytes, from);
        for (k, &b) in bytes[from..end].iter().enumerate() {
            self.ascii(FAST[usize::from(b)], b, from + k);
        }
        end
    }

    /// Whether [`fold`] may hand this sink whole stretches of plain text
    /// ([`Sink::plain`]).
    fn takes_blocks(&self) -> bool {
        false
    }

    /// A stretch of plain text (see [`Plain`]). Every word in it is a
    /// word of its own (two classes or more), so this is the same as
    /// [`Sink::space`] for each separator and [`Sink::ascii`] for each
    /// unit. (A word's space comes at the separator before it, not when
    /// the word starts; sinks collapse repeated spaces, so that is the
    /// same. The stretch never follows a spaced letter that the next word
    /// could join.)
    fn plain(&mut self, stretch: &Plain<'_>) {
        for (k, (&class, &b)) in stretch.classes.iter().zip(stretch.bytes).enumerate() {
            if class == b' ' {
                self.space();
            } else {
                self.ascii(class, b, stretch.at + k);
            }
        }
    }
}

/// A stretch of plain text: plain separators and words of plain ASCII
/// units of two classes or more, starting with a separator.
pub(crate) struct Plain<'b> {
    /// For each byte, the class of the plain unit, or a space for a plain
    /// separator; 64 entries whatever the length (`bytes.len()`), so that a
    /// bit of a mask indexes it without a check.
    pub(crate) classes: &'b [u8; 64],
    pub(crate) bytes: &'b [u8],
    /// Where it starts in the text.
    pub(crate) at: usize,
    /// Bit `k`: byte `k` is a unit.
    pub(crate) word: u64,
    /// Bit `k`: byte `k`'s class differs from byte `k - 1`'s (bit 0: from
    /// the byte before the stretch's, when that was a plain unit).
    pub(crate) change: u64,
}

/// How to fold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mode {
    /// The second reading: digraphs (`|<` = k) are letters, and so are `(`
    /// and `+` at the edges of a word (`(ock`, `+hreat`).
    pub(crate) alt: bool,
    /// Folding a matched span to verify it: edge symbols at the span's own
    /// edges are letters (the span was cut out of a longer word).
    pub(crate) span: bool,
}

/// Folds `text` into `sink`. Returns where the second reading
/// ([`Mode::alt`]) could differ: at digraphs, edge symbols at the edges of
/// words and lone symbols (ascending byte offsets).
pub(crate) fn fold<S: Sink>(text: &str, mode: Mode, sink: &mut S) -> Vec<usize> {
    let mut f = Folder {
        sink,
        mode,
        word_len: 0,
        held: Vec::new(),
        tail: Vec::new(),
        lone: None,
        prev_single: false,
        prev_one: false,
        group: 0,
        gap_len: 0,
        gap_break: false,
        gap_marked: false,
        alt_at: Vec::new(),
        emitted: false,
        block: Block::EMPTY,
        block_at: usize::MAX,
        wide: Wide::detect(),
    };
    f.sink.space();
    let blocks = f.sink.takes_blocks();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let first = FAST[usize::from(b)];
        if first != 0 {
            if blocks && f.plain_ready() {
                if let Some(next) = f.plain_block(bytes, i) {
                    i = next;
                    continue;
                }
            }
            // The fast path: a run of plain ASCII units.
            let second = bytes.get(i + 1).map_or(0, |&c| FAST[usize::from(c)]);
            if second != 0 && second != first && f.word_len == 0 && f.tail.is_empty() {
                // A new word whose first two units differ (most words):
                // a word of its own, which the sink takes in one pass.
                i = f.new_word(bytes, i);
                continue;
            }
            // Else note whether the run holds two classes or more.
            let start = i;
            i = run_end(bytes, i);
            let mixed = bytes[start..i]
                .iter()
                .any(|&c| FAST[usize::from(c)] != first);
            f.plain_run(bytes, start, i, mixed);
            continue;
        }
        if b >= 0x80 {
            let ch = text[i..].chars().next().unwrap_or('\u{FFFD}');
            let end = i + ch.len_utf8();
            f.non_ascii(ch, i, end);
            i = end;
            continue;
        }
        let sep = PLAIN_SEP[usize::from(b)];
        if sep != 0 {
            if blocks && f.plain_ready() {
                // The block fast path: ordinary text, many words at once.
                if let Some(next) = f.plain_block(bytes, i) {
                    i = next;
                    continue;
                }
            }
            // White space and most punctuation: no digraph to look for.
            f.plain_sep(sep);
            i += 1;
            continue;
        }
        i += f.ascii(bytes, b, i);
    }
    f.finish();
    f.alt_at
}

/// The word-level state of [`fold`]: steps 4 and 5 of the module
/// documentation, one unit or separator at a time.
struct Folder<'s, S> {
    sink: &'s mut S,
    mode: Mode,
    /// Units of the current word accepted so far.
    word_len: usize,
    /// The word's units while they are all of one class, held back until we
    /// know whether the word is one spaced letter (`k`, or stretched, `kkk`)
    /// that joins its neighbours.
    held: Vec<Unit>,
    /// Edge symbols after the word: letters if another unit follows.
    tail: Vec<Unit>,
    /// A lone symbol (`|` in `k.1.|.|`): a letter if it joins spaced
    /// letters, else a separator.
    lone: Option<Unit>,
    /// The previous word was one letter (maybe stretched)…
    prev_single: bool,
    /// … and exactly one unit long.
    prev_one: bool,
    /// Spaced letters joined so far into the current word.
    group: usize,
    /// Separator characters since the previous word.
    gap_len: usize,
    gap_break: bool,
    /// The gap holds something other than white space (`.`, `-`, `_`).
    gap_marked: bool,
    /// Where the second reading may differ (first reading only).
    alt_at: Vec<usize>,
    /// Whether any unit was accepted yet (span mode keeps a leading edge).
    emitted: bool,
    /// The last block the fast path built, and where in the text (its
    /// classes are reused when the fast path resumes inside it).
    block: Block,
    block_at: usize,
    /// How blocks are built.
    wide: Wide,
}

/// How [`Block::new`] classifies bytes: the widest way this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Wide {
    /// A byte at a time (any CPU).
    Narrow,
    /// 32 bytes at a time ([`avx2`]). (AVX-512's 128-byte table look-up,
    /// `vpermi2b`, was tried: no faster, as the automaton's steps are
    /// what is left.)
    Avx2,
}

impl Wide {
    /// The widest this CPU has, worked out once. The environment variable
    /// `LECTERN_KEYWORDS_SIMD=narrow` asks for the narrow one, to compare
    /// them (`bench/keywords.sh`).
    fn detect() -> Wide {
        static WIDE: std::sync::OnceLock<Wide> = std::sync::OnceLock::new();
        *WIDE.get_or_init(|| {
            let asked = std::env::var("LECTERN_KEYWORDS_SIMD").unwrap_or_default();
            #[cfg(target_arch = "x86_64")]
            if asked != "narrow" && avx2::available() {
                return Wide::Avx2;
            }
            let _ = asked;
            Wide::Narrow
        })
    }
}

impl<S: Sink> Folder<'_, S> {
    /// Inside a word of two or more units with no edge symbols held: the
    /// next plain unit goes straight to the sink.
    #[inline(always)]
    fn mid_word(&self) -> bool {
        self.word_len >= 2 && self.held.is_empty() && self.tail.is_empty()
    }

    /// A new word (nothing held) starting with the run of plain ASCII
    /// units at `start`, of two classes or more: a word of its own, so no
    /// spaced-letter bookkeeping; the sink takes the run whole. Returns
    /// where the run ends.
    #[inline(always)]
    fn new_word(&mut self, bytes: &[u8], start: usize) -> usize {
        self.emitted = true;
        self.lone = None;
        self.sink.space();
        let end = self.sink.ascii_run(bytes, start);
        self.word_len = end - start;
        end
    }

    /// Whether the block fast path may start here: nothing held back and
    /// no edge symbols after the word.
    #[inline(always)]
    fn plain_ready(&self) -> bool {
        self.held.is_empty() && self.tail.is_empty()
    }

    /// The block fast path at `bytes[i]`, a plain separator, the first
    /// unit of a word, or a plain unit continuing a word of its own: hands
    /// the sink the plain stretch there (see [`Block::plain_len`]) at once
    /// and leaves the state as the general path would have. Returns where
    /// the stretch ends, or `None` (nothing done) if there is none.
    #[inline(always)]
    fn plain_block(&mut self, bytes: &[u8], i: usize) -> Option<usize> {
        let at_sep = PLAIN[usize::from(bytes[i])] == b' ';
        let continues = !at_sep && self.word_len > 0;
        let prev = if continues {
            PLAIN[usize::from(bytes[i - 1])]
        } else {
            b' '
        };
        let d = i.wrapping_sub(self.block_at);
        let block = if self.wide == Wide::Narrow && d > 0 && d < self.block.len {
            // Inside the last block built: reuse its classes (building
            // afresh is cheaper with SIMD than moving them).
            self.block.from(d, &bytes[i..], prev, continues)
        } else {
            let block = Block::new(&bytes[i..], prev, continues, self.wide);
            self.block = block;
            self.block_at = i;
            block
        };
        let len = block.plain_len();
        let below = (1u64 << len) - 1;
        let words = block.word & below;
        if len == 0 || (at_sep && words == 0 && self.word_len == 0 && self.prev_single) {
            // No plain stretch; or only separators after a spaced letter,
            // whose space the next word decides (it may join it).
            return None;
        }
        if !at_sep && !continues {
            // A word of its own starts: its space, as in `new_word`.
            self.sink.space();
        }
        let stretch = &bytes[i..i + len];
        self.sink.plain(&Plain {
            classes: &block.classes,
            bytes: stretch,
            at: i,
            word: words,
            change: block.change & below,
        });
        self.after_plain(&block, stretch);
        Some(i + len)
    }

    /// The state after the plain stretch `stretch` of `block`: as after
    /// [`Folder::new_word`] for each word and [`Folder::plain_sep`] for
    /// each separator.
    fn after_plain(&mut self, block: &Block, stretch: &[u8]) {
        let len = stretch.len();
        let below = |k: usize| (1u64 << k) - 1;
        let words = block.word & below(len);
        let starts = block.starts() & below(len);
        if starts != 0 {
            self.emitted = true;
            self.lone = None;
        }
        // A word running up to the stretch's end (its last unit, or a unit
        // before a byte the general path takes) is still open.
        let open = words >> (len - 1) & 1 == 1;
        if open && starts == 0 {
            // All one word, begun before.
            self.word_len += len;
            return;
        }
        let closed_end = if open {
            63 - starts.leading_zeros() as usize
        } else {
            len
        };
        let closed = words & below(closed_end);
        if closed != 0 || self.word_len > 0 {
            // Words ended: as in `end_word`.
            self.prev_single = false;
            self.reset_gap();
        }
        let gap_from = if closed != 0 {
            64 - closed.leading_zeros() as usize
        } else {
            0
        };
        for &b in &stretch[gap_from..closed_end] {
            let flags = GAP[usize::from(b)];
            self.gap_len += usize::from(flags & SEP);
            self.gap_break |= flags & SEP_BREAK != 0;
            self.gap_marked |= flags & SEP_MARK != 0;
        }
        self.word_len = if open { len - closed_end } else { 0 };
    }

    /// Plain ASCII units (`FAST`) at `start..end`, of two classes or more
    /// if `mixed`: the first go through [`Folder::word_unit`] until the
    /// word is known to be a word of its own, the rest straight to the sink.
    #[inline(always)]
    fn plain_run(&mut self, bytes: &[u8], start: usize, end: usize, mixed: bool) {
        if mixed && self.word_len == 0 && self.tail.is_empty() {
            self.new_word(bytes, start);
            return;
        }
        let mut i = start;
        while i < end && !self.mid_word() {
            self.ascii(bytes, bytes[i], i);
            i += 1;
        }
        if i < end {
            self.sink.ascii_run(bytes, i);
        }
    }

    /// The general path for the ASCII byte `b` at `i`; returns how many
    /// bytes it took.
    fn ascii(&mut self, bytes: &[u8], b: u8, i: usize) -> usize {
        if let Some((len, l)) = digraph_at(bytes, i) {
            if self.mode.alt {
                self.word_unit(Unit {
                    class: if l == b'l' { 'i' } else { l as char },
                    reads: Reads::mask(letter(l)),
                    kind: Kind::Letter,
                    edge: false,
                    start: i,
                    end: i + len,
                });
                return len;
            }
            self.note_alt(i);
        }
        match ASCII[b as usize] {
            Ascii::Unit {
                class,
                reads,
                kind,
                edge,
            } => self.word_unit(Unit {
                class: class as char,
                reads: Reads::mask(reads),
                kind,
                edge,
                start: i,
                end: i + 1,
            }),
            Ascii::Apostrophe => self.apostrophe(),
            Ascii::Sep => self.sep(b as char),
        }
        1
    }

    fn word_unit(&mut self, mut u: Unit) {
        // The second reading: `(`, `+` and `!` starting a word, and `(` and
        // `+` ending one, are letters (`!t`, `(ock`, `sh!+`).
        if u.edge && self.mode.alt && (self.word_len == 0 || u.class != 'i') {
            u.edge = false;
        }
        if u.edge {
            // (A span being checked keeps an edge symbol it starts with.)
            let keeps_leading = self.mode.span && !self.emitted;
            if self.word_len == 0 && !keeps_leading {
                self.note_alt(u.start);
                self.gap_len += 1;
                return;
            }
            if self.word_len > 0 {
                self.tail.push(u);
                return;
            }
        }
        if !self.tail.is_empty() {
            for t in std::mem::take(&mut self.tail) {
                self.accept(t);
            }
        }
        self.accept(u);
    }

    fn accept(&mut self, u: Unit) {
        self.emitted = true;
        self.word_len += 1;
        if self.held.is_empty() && self.word_len > 1 {
            self.sink.unit(&u);
        } else if self.held.first().is_none_or(|h| h.class == u.class) {
            self.held.push(u);
        } else {
            // A second class: a word of its own, not a spaced letter.
            self.lone = None;
            self.sink.space();
            for h in self.held.drain(..) {
                self.sink.unit(&h);
            }
            self.sink.unit(&u);
        }
    }

    #[inline]
    fn sep(&mut self, c: char) {
        self.end_word();
        self.gap_len += 1;
        self.gap_break |= matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
        self.gap_marked |= !c.is_whitespace();
    }

    /// [`Folder::sep`] for an ASCII separator, given its `PLAIN_SEP` flags.
    #[inline(always)]
    fn plain_sep(&mut self, flags: u8) {
        self.end_word();
        self.gap_len += 1;
        self.gap_break |= flags & SEP_BREAK != 0;
        self.gap_marked |= flags & SEP_MARK != 0;
    }

    /// An apostrophe separates words (`who're` is not `whore`) but does not
    /// lengthen a gap between spaced letters (`y.o.u.'.r.e`). Terms are
    /// also registered without their apostrophes, so `dont` and `don't`
    /// both match `don't`.
    fn apostrophe(&mut self) {
        self.end_word();
        self.gap_len = 0;
    }

    #[inline(always)]
    fn end_word(&mut self) {
        if self.held.is_empty() && self.tail.is_empty() {
            // The common case (after a word of its own, or between
            // separators): what `end_held_word` does with nothing held,
            // without moving the vectors.
            if self.word_len > 0 {
                self.prev_single = false;
                self.reset_gap();
            }
            self.word_len = 0;
            return;
        }
        self.end_held_word();
    }

    /// [`Folder::end_word`] with units held back or edge symbols after the
    /// word.
    #[inline(never)]
    fn end_held_word(&mut self) {
        let tail = std::mem::take(&mut self.tail);
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.single(&held);
            self.held = held;
            self.held.clear();
        } else if self.word_len > 0 {
            self.prev_single = false;
            self.reset_gap();
        }
        if let Some(t) = tail.iter().find(|t| t.class != 'i') {
            self.note_alt(t.start);
        }
        self.gap_len += tail.len();
        self.tail = tail;
        self.tail.clear();
        self.word_len = 0;
    }

    /// A word of one letter (maybe stretched): joins the one-letter words
    /// before it if the gap is short (`k i l l`, `k-i-lll`); a lone symbol
    /// joins them or waits to join the next, else it is a separator.
    fn single(&mut self, units: &[Unit]) {
        let close = self.gap_len <= MAX_GAP && !self.gap_break;
        let lone = self.lone.take().filter(|_| close);
        // A stretched letter is a spaced letter with a mark between
        // (`k-i-lll`, `eee.ttt`) or after two spaced letters (`k i lll`);
        // else it is a word (`a kkk member`, `kkk kkkkk`).
        let plain = self.prev_one && units.len() == 1;
        let joins = self.prev_single && close && (plain || self.gap_marked || self.group >= 2);
        let lone_symbol = units.len() == 1 && units[0].kind == Kind::Symbol;
        if !joins {
            if lone.is_none() && lone_symbol && !self.mode.alt {
                // Wait: it may join the next spaced letter.
                self.note_alt(units[0].start);
                self.lone = Some(units[0]);
                self.prev_single = false;
                self.reset_gap();
                return;
            }
            self.sink.space();
            if let Some(l) = lone {
                self.sink.unit(&l);
            }
        }
        for u in units {
            self.sink.unit(u);
        }
        self.group = if joins { self.group + 1 } else { 1 };
        self.prev_single = true;
        self.prev_one = units.len() == 1;
        self.reset_gap();
    }

    /// The second reading may differ around byte `at`.
    fn note_alt(&mut self, at: usize) {
        if !self.mode.alt && self.alt_at.last() != Some(&at) {
            self.alt_at.push(at);
        }
    }

    fn reset_gap(&mut self) {
        self.gap_len = 0;
        self.gap_break = false;
        self.gap_marked = false;
    }

    fn finish(&mut self) {
        if self.mode.span {
            for t in std::mem::take(&mut self.tail) {
                self.accept(t);
            }
        }
        self.end_word();
        self.sink.space();
    }

    /// Combining marks belong to the unit before them.
    fn mark(&mut self, end: usize) {
        if let Some(t) = self.tail.last_mut() {
            t.end = end;
        } else if let Some(h) = self.held.last_mut() {
            h.end = end;
        } else if self.word_len >= 2 {
            self.sink.extend(end);
        }
    }

    fn non_ascii(&mut self, ch: char, start: usize, end: usize) {
        if is_invisible(ch) {
            return;
        }
        if is_combining_mark(ch) {
            self.mark(end);
            return;
        }
        if let Some(l) = upper_lookalike(ch) {
            self.folded(l, start, end);
            return;
        }
        decompose_compatible(ch, |d| {
            if is_combining_mark(d) {
                return;
            }
            for l in d.to_lowercase() {
                if is_combining_mark(l) {
                    continue;
                }
                match expand(l) {
                    Some(s) => s.chars().for_each(|c| self.folded(c, start, end)),
                    None => self.folded(lookalike(l), start, end),
                }
            }
        });
    }

    /// One character of a non-ASCII character's folding.
    fn folded(&mut self, c: char, start: usize, end: usize) {
        let unit = |class: char, reads: Reads, kind: Kind| Unit {
            class,
            reads,
            kind,
            edge: false,
            start,
            end,
        };
        if c.is_ascii() {
            match ASCII[c as usize] {
                Ascii::Unit {
                    class,
                    reads,
                    kind,
                    edge,
                } => self.word_unit(Unit {
                    edge,
                    ..unit(class as char, Reads::mask(reads), kind)
                }),
                Ascii::Apostrophe => self.apostrophe(),
                Ascii::Sep => self.sep(c),
            }
        } else if let Some(l) = symbol_lookalike(c) {
            self.word_unit(unit(l as char, Reads::mask(letter(l)), Kind::Symbol));
        } else if matches!(c, '\u{2019}' | '\u{02BC}') {
            self.apostrophe();
        } else if c.is_alphanumeric() {
            self.word_unit(unit(c, Reads { mask: 0, other: c }, Kind::Letter));
        } else {
            self.sep(c);
        }
    }
}

/// Invisible format characters that can be slipped inside a word.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Letters that NFKD does not decompose, written out in Latin letters.
fn expand(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'ı' => "i",
        'þ' => "th",
        'ħ' => "h",
        'ŧ' => "t",
        _ => return None,
    })
}

/// Capital Greek and Cyrillic letters that look like Latin capitals (their
/// lower-case forms look like something else: `Η` is H, `η` is n).
fn upper_lookalike(c: char) -> Option<char> {
    Some(match c {
        'Α' | 'А' => 'a',
        'Β' | 'В' => 'b',
        'Ε' | 'Е' => 'e',
        'Ζ' => 'z',
        'Η' | 'Н' => 'h',
        'Ι' | 'І' => 'i',
        'Κ' | 'К' => 'k',
        'Μ' | 'М' => 'm',
        'Ν' => 'n',
        'Ο' | 'О' => 'o',
        'Ρ' | 'Р' => 'p',
        'Τ' | 'Т' => 't',
        'Υ' | 'У' => 'y',
        'Χ' | 'Х' => 'x',
        'С' => 'c',
        'Ѕ' => 's',
        'Ј' => 'j',
        _ => return None,
    })
}

/// Lower-case Cyrillic, Greek and small-capital letters that look like
/// Latin ones.
fn lookalike(c: char) -> char {
    match c {
        'а' | 'α' | 'ᴀ' => 'a',
        'в' | 'β' | 'ь' | 'ʙ' => 'b',
        'с' | 'ᴄ' => 'c',
        'ԁ' | 'ᴅ' => 'd',
        'е' | 'ε' | 'ᴇ' => 'e',
        'ɢ' => 'g',
        'һ' | 'н' | 'ʜ' => 'h',
        'і' | 'ι' | 'ɪ' => 'i',
        'ј' | 'ᴊ' => 'j',
        'к' | 'κ' | 'ᴋ' => 'k',
        'ӏ' | 'ʟ' => 'l',
        'м' | 'ᴍ' => 'm',
        'η' | 'п' | 'ɴ' => 'n',
        'о' | 'ο' | 'σ' | 'ᴏ' => 'o',
        'р' | 'ρ' | 'ᴘ' => 'p',
        'ԛ' => 'q',
        'ʀ' | 'г' => 'r',
        'ѕ' | 'ꜱ' => 's',
        'т' | 'τ' | 'ᴛ' => 't',
        'υ' | 'μ' | 'ᴜ' => 'u',
        'ν' | 'ᴠ' => 'v',
        'ԝ' | 'ω' | 'ᴡ' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' | 'ʏ' => 'y',
        'ᴢ' => 'z',
        c => c,
    }
}

/// Non-ASCII symbols used as letters.
fn symbol_lookalike(c: char) -> Option<u8> {
    Some(match c {
        '€' => b'e',
        '¢' => b'c',
        '§' => b's',
        '¡' => b'i',
        _ => return None,
    })
}

/// A sink that writes the class stream and the spelled-out text.
#[derive(Default)]
struct Collect {
    folded: String,
    spelled: String,
}

impl Sink for Collect {
    fn unit(&mut self, u: &Unit) {
        if !self.folded.ends_with(u.class) {
            self.folded.push(u.class);
        }
        self.spelled.push(spell(u));
    }

    fn space(&mut self) {
        if !self.folded.ends_with(' ') {
            self.folded.push(' ');
        }
        if !self.spelled.is_empty() && !self.spelled.ends_with(' ') {
            self.spelled.push(' ');
        }
    }

    fn extend(&mut self, _end: usize) {}
}

/// One character for a unit: the letter or digit it is, or the first
/// letter a symbol reads as.
fn spell(u: &Unit) -> char {
    if u.reads.mask == 0 {
        return u.reads.other;
    }
    let digits = u.reads.mask >> 26;
    if u.kind == Kind::Digit && digits != 0 {
        return (b'0' + digits.trailing_zeros() as u8) as char;
    }
    (b'a' + (u.reads.mask & LETTERS).trailing_zeros() as u8) as char
}

/// A folded text, for inspection and for checking terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    folded: String,
    spelled: String,
    second_reading: bool,
}

impl Normalized {
    /// The class stream the automaton sees: classes (`i` also stands for
    /// `l`, `1`, `|`, `!`), runs collapsed, one space per word boundary,
    /// with a space at the start and at the end.
    pub fn as_str(&self) -> &str {
        &self.folded
    }

    /// The units spelled out, one character each (a letter, a digit, or the
    /// first letter a symbol stands for), words separated by one space.
    pub fn spelled(&self) -> &str {
        self.spelled.trim_end()
    }

    /// Whether the second reading of the text (digraphs such as `|<` and
    /// `(` or `+` at the edge of a word read as letters) may differ.
    pub fn second_reading(&self) -> bool {
        self.second_reading
    }
}

/// Folds `input` as described in the [module documentation](self) (first
/// reading, digraphs not read).
pub fn normalize(input: &str) -> Normalized {
    let mut sink = Collect::default();
    let second_reading = !fold(input, Mode::default(), &mut sink).is_empty();
    Normalized {
        folded: sink.folded,
        spelled: sink.spelled,
        second_reading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Records what `fold` hands a sink, repeated spaces as one; with or
    /// without plain stretches.
    struct Events {
        blocks: bool,
        seen: Vec<String>,
    }

    impl Sink for Events {
        fn unit(&mut self, u: &Unit) {
            self.seen.push(format!(
                "{:?} {:?} {:?} {}..{}",
                u.class, u.reads, u.kind, u.start, u.end
            ));
        }

        fn space(&mut self) {
            if self.seen.last().is_none_or(|e| e != " ") {
                self.seen.push(" ".to_string());
            }
        }

        fn extend(&mut self, end: usize) {
            self.seen.push(format!("extend {end}"));
        }

        fn takes_blocks(&self) -> bool {
            self.blocks
        }
    }

    fn events(text: &str, mode: Mode, blocks: bool) -> (Vec<String>, Vec<usize>) {
        let mut sink = Events {
            blocks,
            seen: Vec::new(),
        };
        let alt_at = fold(text, mode, &mut sink);
        (sink.seen, alt_at)
    }

    /// Words of two classes (some long, to cross the 63-byte blocks),
    /// words of one class and single letters (spaced letters), separators,
    /// and everything the plain stretch stops at.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z0-9@$]{2,9}",
            1 => "[a-z]{40,70}",
            2 => prop::sample::select(vec![
                "a", "I", "k", "kkk", "ll", "aa", "1", "$", "@@", "x",
            ])
            .prop_map(str::to_string),
            4 => prop::sample::select(vec![
                " ", "  ", "   ", "    ", ", ", ".", "-", "_", "\n", "\r\n", "\t", "?", "*",
            ])
            .prop_map(str::to_string),
            2 => prop::sample::select(vec![
                "'", "!", "!!", "(", "+", "|", "|<", "|3", "()", "/\\", "><", "é", "e\u{301}",
                "\u{301}", "\u{200B}", "€", "🙂", "’", "д", "ß",
            ])
            .prop_map(str::to_string),
            // Emoji the block takes as separators (the first and last of
            // the range, a skin tone, two at once) and characters just
            // outside it (or after it: a variation selector).
            2 => prop::sample::select(vec![
                "🙂", "\u{1F300}", "\u{1FAFF}", "👍🏽", "🙂🙂", "a🙂", "🙂b", "\u{1F2FF}",
                "\u{1FB00}", "❤\u{FE0F}", "🙂\u{FE0F}", "🙂\u{301}",
            ])
            .prop_map(str::to_string),
            // Slashes the block takes as separators, and the digraphs
            // `/\` and `\/` it must not.
            2 => prop::sample::select(vec![
                "/", "//", "ab/cd", "https://ab.cd/ef", "/\\", "\\/", "a/\\b", "a\\/b", "k/i/l/l",
                "///\\", "/|", "/🙂",
            ])
            .prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The plain stretches hand a sink what the byte-by-byte path does,
        /// in every mode.
        #[test]
        fn plain_stretches_change_nothing(pieces in prop::collection::vec(piece(), 0..40)) {
            let text = pieces.concat();
            for (alt, span) in [(false, false), (true, false), (false, true), (true, true)] {
                let mode = Mode { alt, span };
                prop_assert_eq!(events(&text, mode, true), events(&text, mode, false), "{:?}", mode);
            }
        }

        /// A block built with AVX2 is the block built a byte at a time,
        /// from every offset of the text (so at every length, the text's
        /// end included), whatever the class before. (Nothing to compare
        /// on a CPU without it.)
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn wide_blocks_are_narrow_blocks(
            pieces in prop::collection::vec(piece(), 0..40),
            prev in prop::sample::select(vec![b' ', b'a', b'i', b'o', 0]),
            continues: bool,
        ) {
            if !avx2::available() {
                return Ok(());
            }
            // (Control characters and DEL, which no piece has, too.)
            let text = format!("{}\u{1}\u{1f}\u{7f}\t", pieces.concat());
            let bytes = text.as_bytes();
            for d in 0..bytes.len() {
                let narrow = Block::narrow(&bytes[d..], prev, continues);
                let wide = avx2::block(&bytes[d..], prev, continues).expect("AVX2");
                prop_assert_eq!(narrow.len, wide.len);
                prop_assert_eq!(narrow.word, wide.word, "{}", d);
                prop_assert_eq!(narrow.starts, wide.starts, "{}", d);
                prop_assert_eq!(narrow.plain, wide.plain, "{}", d);
                prop_assert_eq!(narrow.change, wide.change, "{}", d);
                prop_assert_eq!(&narrow.classes[..narrow.len], &wide.classes[..wide.len], "{}", d);
            }
        }
    }

    /// Every emoji the block takes as a separator folds as the byte path
    /// folds it, between words, spaced letters and at a block's end.
    #[test]
    fn emoji_in_blocks_fold_as_the_byte_path_does() {
        for c in '\u{1F300}'..='\u{1FAFF}' {
            for text in [
                format!(" ab{c}cd k{c}i{c}l{c}l x {c}{c} y"),
                format!(" {}{c}", "ab".repeat(29)),
                format!(" {}{c}ab", "ab".repeat(30)),
            ] {
                for (alt, span) in [(false, false), (true, false), (false, true), (true, true)] {
                    let mode = Mode { alt, span };
                    assert_eq!(
                        events(&text, mode, true),
                        events(&text, mode, false),
                        "{text:?}"
                    );
                }
            }
        }
    }

    /// A block taken from inside another (where the fast path resumes)
    /// is the block built afresh there, up to the end of the first.
    #[test]
    fn a_block_from_inside_another_is_the_block_built_there() {
        // (Shorter than a block, so that every block from inside it ends
        // where it does.)
        let text = " hi/wo and! caf\u{e9} |<ill a kkk 🙂 a/\\b c\\/d e//f/ ok\nab";
        assert!(text.len() < BLOCK);
        let bytes = text.as_bytes();
        let whole = Block::new(bytes, b' ', false, Wide::Narrow);
        // (The fast path starts and resumes only at plain bytes.)
        for d in (1..whole.len).filter(|&d| PLAIN[usize::from(bytes[d])] != 0) {
            for continues in [false, true] {
                let prev = if continues {
                    PLAIN[usize::from(bytes[d - 1])]
                } else {
                    b' '
                };
                let from = whole.from(d, &bytes[d..], prev, continues);
                let fresh = Block::new(&bytes[d..], prev, continues, Wide::Narrow);
                let valid = (1u64 << from.len) - 1;
                assert_eq!(from.len, fresh.len, "{d}");
                assert_eq!(from.word, fresh.word, "{d}");
                assert_eq!(from.starts, fresh.starts, "{d}");
                assert_eq!(from.plain, fresh.plain, "{d}");
                assert_eq!(from.change & valid, fresh.change & valid, "{d}");
                assert_eq!(from.classes[..from.len], fresh.classes[..from.len], "{d}");
                assert_eq!(from.plain_len(), fresh.plain_len(), "{d}");
            }
        }
    }

    #[test]
    fn plain_stretch_stops_before_words_of_one_class_and_other_bytes() {
        let len = |s: &str| Block::new(s.as_bytes(), b' ', false, Wide::Narrow).plain_len();
        assert_eq!(len(" hello world"), 12);
        assert_eq!(len(" hello a world"), 7);
        assert_eq!(len(" hello kkk world"), 7);
        assert_eq!(len(" hello, wo'rld"), 10);
        assert_eq!(len(" okay!"), 5);
        assert_eq!(len(" caf\u{e9}"), 4);
        assert_eq!(len(" r\u{e9}sum\u{e9}"), 1);
        assert_eq!(len(" |<ill"), 1);
        // A word cut by the block's end: plain if it shows two classes.
        let long = format!(" {}", "ab".repeat(40));
        assert_eq!(len(&long), 63);
        let flat = format!(" {}", "a".repeat(80));
        assert_eq!(len(&flat), 1);
        let late = format!(" {}b", "a".repeat(62));
        assert_eq!(len(&late), 1);
    }

    #[test]
    fn byte_flags_gathers_top_bits() {
        for k in 0..8 {
            assert_eq!(byte_flags(0x80 << (8 * k)), 1 << k);
        }
        assert_eq!(byte_flags(LOW_BYTES * 0x80), 0xff);
        assert_eq!(nonzero_bytes(0x7f00_0100_0000_0020), 0x8000_8000_0000_0080);
    }

    fn n(s: &str) -> String {
        normalize(s).as_str().to_string()
    }

    fn sp(s: &str) -> String {
        normalize(s).spelled().to_string()
    }

    #[test]
    fn classes_share_readings() {
        // Every letter a unit can read as belongs to the unit's class, so
        // equal readings always fold to equal classes.
        for b in 0..128u8 {
            if let Ascii::Unit { class, reads, .. } = ASCII[b as usize] {
                for l in b'a'..=b'z' {
                    if reads & letter(l) != 0 {
                        let want = if l == b'l' { b'i' } else { l };
                        assert_eq!(class, want, "{:?} reads {}", b as char, l as char);
                    }
                }
            }
        }
    }

    #[test]
    fn plain_separator_flags_match_sep() {
        for b in 0..128u8 {
            let flags = PLAIN_SEP[usize::from(b)];
            if flags == 0 {
                continue;
            }
            let c = b as char;
            let line_break = matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
            assert_eq!(flags & SEP_BREAK != 0, line_break, "{b:#x}");
            assert_eq!(flags & SEP_MARK != 0, !c.is_whitespace(), "{b:#x}");
        }
    }

    #[test]
    fn case_accents_and_width() {
        assert_eq!(n("KILL"), " ki ");
        assert_eq!(sp("Ķïłł"), "kill");
        assert_eq!(sp("ｋｉｌｌ"), "kill");
        assert_eq!(sp("𝐤𝐢𝐥𝐥 ⓚ"), "kill k");
        assert_eq!(sp("Straße"), "strasse");
    }

    #[test]
    fn look_alikes_from_other_scripts() {
        assert_eq!(sp("b\u{430}d w\u{43E}rd g\u{3BF}od"), "bad word good");
        assert_eq!(sp("КILL"), "kill");
        assert_eq!(sp("ΗΑΤΕ"), "hate");
        assert_eq!(sp("ᴋɪʟʟ"), "kill");
        assert_eq!(sp("дом"), "дom");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(sp("ki\u{200B}ll"), "kill");
        assert_eq!(sp("k\u{00AD}i\u{200D}l\u{FEFF}l\u{2060}s"), "kills");
    }

    #[test]
    fn leet_digits_and_symbols() {
        assert_eq!(n("h3ll0"), " heio ");
        assert_eq!(n("k1ll"), " ki ");
        assert_eq!(n("|<!||"), " i ");
        assert_eq!(n("@$$"), " as ");
        assert_eq!(n("h@+3"), " hate ");
        assert_eq!(n("8|3ed"), " bied ");
        assert_eq!(n("9ang"), " gang ");
        assert_eq!(n("(0ke"), " oke ");
        assert_eq!(n("c(0ke"), " coke ");
        assert_eq!(sp("5t4b"), "5t4b");
    }

    #[test]
    fn digraphs_are_noticed() {
        assert!(normalize("|<!||").second_reading());
        assert!(normalize("|3itch").second_reading());
        assert!(normalize("(ock").second_reading());
        assert!(!normalize("a/b x|y kill!").second_reading());
        let mut c = Collect::default();
        fold(
            "|<!|| |3!+c|-| |\\|",
            Mode {
                alt: true,
                span: false,
            },
            &mut c,
        );
        assert_eq!(c.spelled.trim(), "kiii bitch n");
    }

    #[test]
    fn punctuation_at_word_edges() {
        assert_eq!(n("kill!"), " ki ");
        assert_eq!(n("stop!!! now"), " stop now ");
        assert_eq!(n("!!!"), " ");
        assert_eq!(n("(kill) +1"), " ki i ");
        assert_eq!(n("a $ b | c"), " asbic ");
        assert_eq!(n("kill | you"), " ki you ");
    }

    #[test]
    fn spaced_letters_join() {
        assert_eq!(sp("k i l l"), "kill");
        assert_eq!(sp("k.i.l.l"), "kill");
        assert_eq!(sp("k-i-l-l"), "kill");
        assert_eq!(sp("k - i - l - l"), "kill");
        assert_eq!(sp("k_i_l_l me"), "kill me");
        assert_eq!(sp("k/i/l/l k*i*l*l"), "killkill");
        assert_eq!(sp("you are a s s"), "you are ass");
        assert_eq!(sp("k 1 l l"), "k1ll");
        assert_eq!(sp("k! i! l l!!"), "kill");
        // Gaps longer than three characters or line breaks do not join.
        assert_eq!(sp("k    i"), "k i");
        assert_eq!(sp("k\ni"), "k i");
        assert_eq!(sp("I am a cat"), "i am a cat");
    }

    #[test]
    fn apostrophes_separate_words() {
        assert_eq!(sp("don't"), "don t");
        assert_eq!(sp("who’re"), "who re");
        assert_eq!(sp("'quoted'"), "quoted");
        assert_eq!(sp("rock 'n' roll"), "rock n roll");
        assert_eq!(sp("y . o . u . ' . r . e"), "youre");
    }

    #[test]
    fn separators_become_one_space() {
        assert_eq!(n("kill,\n\t yourself!!"), " ki yourseif ");
        assert_eq!(sp("ab🙂cd"), "ab cd");
        assert_eq!(sp("k🙂i🙂l🙂l"), "kill");
    }
}
