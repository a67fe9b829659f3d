//! The scanner: one Aho-Corasick automaton over the folded classes of
//! every term and exception of a library, stepped by hand over the folded
//! text, and an exact check of the rare candidates against the original.

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa, nfa, Anchored, MatchKind, PatternID};
use serde::{Deserialize, Serialize};

use crate::library::{Library, MatchType, Term};
use crate::normalize::{fold, Kind, Mode, Plain, Reads, Sink, Unit, FAST, LETTERS};

/// Up to this many distinct folded patterns, the automaton is a DFA.
const DFA_MAX_PATTERNS: usize = 25_000;

/// The longest ring (see `Scanner::ring`) kept on the stack.
const SMALL_RING: usize = 64;

/// A term found in a text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Match {
    /// The library's term (`kill yourself`).
    pub term: String,
    /// The term's category.
    pub category: String,
    /// The term's severity, 1 to 5.
    pub severity: u8,
    /// The term's match type.
    pub match_type: MatchType,
    /// The original text that matched (`K1LL   y0urself`), `text[start..end]`.
    pub matched: String,
    /// Byte offset of the match in the scanned text (a character boundary).
    pub start: usize,
    /// Byte offset just past the match (a character boundary).
    pub end: usize,
}

/// Why a [`Scanner`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("keyword automaton: {0}")]
pub struct BuildError(#[from] aho_corasick::BuildError);

/// Finds a library's terms in texts. Build it once per library and share it:
/// it is `Send + Sync`, and [`Scanner::scan`] takes `&self`.
///
/// Matching works on [folded](crate::normalize) text: a term matches its
/// disguised spellings (`K I L L`, `k1ll`, `|<!||`, `kiiiill`, `ķïłł`,
/// `k\u{200B}ill`), and every match is reported with its span in the
/// original text.
///
/// * One pass folds the text into classes and steps one Aho-Corasick
///   automaton over them. A class match is only a candidate: the scanner
///   then checks the candidate's original characters against the term,
///   letter by letter (each letter must be one of the character's
///   readings) with every run at least as long as the term's (`kiiill`
///   matches `kill`, `as` does not match `ass`, `kil` does not match `kill`).
///   A digit or symbol reads as a letter only next to a real letter or
///   among at least two symbols (`@$$`), so `455` is not `ass`.
/// * Whole-word and phrase terms match only between word boundaries of the
///   folded text; contains terms match anywhere.
/// * A match lying inside an occurrence of one of its term's exception
///   phrases is dropped (`shoot` in `photo shoot`). Exceptions are matched
///   like their term (on word boundaries, or anywhere for contains terms).
/// * Where matches overlap, one lying wholly inside a longer one is dropped
///   (`kill` inside `kill yourself`, `porn` inside `revenge porn`); matches
///   with the same span (the same word in two categories) are all reported.
/// * A text holding a digraph (`|<`, `|3`, …) or a `(` or `+` at the edge
///   of a word is scanned a second time reading these as letters (see
///   [the second reading](crate::normalize)); other texts once.
///
/// The automaton holds every distinct folded form of the terms, of phrases
/// written without spaces (`killyourself`) and of the exceptions. It is a
/// DFA up to 25,000 such patterns and a contiguous NFA beyond.
#[derive(Clone, Debug)]
pub struct Scanner {
    engine: Engine,
    /// For each automaton pattern: whether it is bounded by word boundaries
    /// (starts and ends with a space).
    bounded: Vec<bool>,
    /// For each automaton pattern: what a match of it means.
    entries: Vec<Vec<Entry>>,
    /// For each automaton pattern: the fewest units any of its entries
    /// accepts. An ASCII byte folds to one unit at most, so a shorter ASCII
    /// candidate (the common word `as` for the term `ass`) is rejected
    /// without folding it.
    fewest: Vec<usize>,
    terms: Vec<Term>,
    /// Ring buffer length for mapping folded positions back (a power of two
    /// longer than the longest pattern).
    ring: usize,
    /// For each byte: whether the automaton's unanchored start state goes
    /// back to itself on it (no pattern starts with it). Inside a word,
    /// most letters are such bytes (whole-word patterns start with a
    /// space), so the scanner skips them without stepping (see the
    /// `Sink` implementation of `Stepper`).
    stays: Box<[bool; 256]>,
}

#[derive(Clone, Debug)]
enum Engine {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Index into `Scanner::terms`.
    term: usize,
    exception: bool,
    /// The term's letters as runs: each run's readings and minimum length.
    runs: Box<[Run]>,
    /// The term is spelled with letters, so a match needs a real letter or
    /// at least two symbols (not `455` for `ass`).
    needs_letter: bool,
    /// The fewest units that can spell the term: the sum of the runs'
    /// minimum lengths.
    units: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    reads: Reads,
    min: u8,
}

/// Which reading [`Scanner::pass`] makes.
#[derive(Clone, Copy)]
struct Reading {
    /// The second reading ([`Mode::alt`]).
    second: bool,
    /// The text is lines, each scanned as if alone.
    lines: bool,
}

/// A candidate: original byte span and automaton pattern.
type Candidate = (usize, usize, PatternID);

impl Scanner {
    /// Builds the automaton for `library`. Terms that fold to nothing (no
    /// letters or digits) are ignored; the library need not be
    /// [validated](Library::validate). Fails only for libraries too large
    /// for the automaton (far beyond a million terms).
    pub fn new(library: &Library) -> Result<Scanner, BuildError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<Vec<Entry>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut add = |pattern: String, entry: Entry| {
            let id = *index.entry(pattern.clone()).or_insert_with(|| {
                patterns.push(pattern);
                entries.push(Vec::new());
                patterns.len() - 1
            });
            if !entries[id].contains(&entry) {
                entries[id].push(entry);
            }
        };
        for (i, term) in library.terms.iter().enumerate() {
            let bounded = term.match_type != MatchType::Contains;
            for text in with_and_without_apostrophes(&term.term) {
                let Some(folded) = FoldedTerm::new(&text) else {
                    continue;
                };
                if term.match_type == MatchType::Phrase && folded.words.len() > 1 {
                    // The words written together: `killyourself`, `ak47`.
                    let squashed = folded.squashed();
                    add(squashed.pattern(true), squashed.entry(i, false));
                }
                add(folded.pattern(bounded), folded.entry(i, false));
            }
            for exception in &term.exceptions {
                for text in with_and_without_apostrophes(exception) {
                    if let Some(ex) = FoldedTerm::new(&text) {
                        add(ex.pattern(bounded), ex.entry(i, true));
                    }
                }
            }
        }
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let bounded = patterns.iter().map(|p| p.starts_with(' ')).collect();
        let engine = if patterns.len() <= DFA_MAX_PATTERNS {
            Engine::Dfa(
                dfa::Builder::new()
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .byte_classes(true)
                    .build(&patterns)?,
            )
        } else {
            Engine::Nfa(
                nfa::contiguous::Builder::new()
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .build(&patterns)?,
            )
        };
        let fewest = entries
            .iter()
            .map(|list| list.iter().map(|e| e.units).min().unwrap_or(0))
            .collect();
        let stays = match &engine {
            Engine::Dfa(a) => start_stays(a),
            Engine::Nfa(a) => start_stays(a),
        };
        Ok(Scanner {
            engine,
            bounded,
            entries,
            fewest,
            terms: library.terms.clone(),
            ring: (longest + 2).next_power_of_two(),
            stays,
        })
    }

    /// Heap bytes used by the automaton.
    pub fn memory_usage(&self) -> usize {
        match &self.engine {
            Engine::Dfa(a) => a.memory_usage(),
            Engine::Nfa(a) => a.memory_usage(),
        }
    }

    /// The terms this scanner looks for.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Matches across several texts, each tagged (e.g. with where it came
    /// from), keeping only the first match of each term: the same word in a
    /// page's title and in its address is one incident.
    pub fn scan_each_term_once<'t, T: Copy>(
        &self,
        texts: &'t [(T, String)],
    ) -> Vec<(T, &'t str, Match)> {
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (tag, text) in texts {
            for m in self.scan(text) {
                if !seen.contains(&m.term) {
                    seen.push(m.term.clone());
                    out.push((*tag, text.as_str(), m));
                }
            }
        }
        out
    }

    /// Every match of the library's terms in `text`, ordered by start, then
    /// longest first, then library order. `text[m.start..m.end] == m.matched`.
    pub fn scan(&self, text: &str) -> Vec<Match> {
        let mut out = Vec::new();
        self.scan_each(text, |start, end, t| {
            out.push(Match {
                term: t.term.clone(),
                category: t.category.clone(),
                severity: t.severity,
                match_type: t.match_type,
                matched: text[start..end].to_string(),
                start,
                end,
            })
        });
        out
    }

    /// Calls `f(start, end, term)` for each match of [`Scanner::scan`], in
    /// the same order, without building [`Match`]es: a caller that only
    /// writes them out (`scan_lines_to_json`) allocates nothing per match.
    pub fn scan_each(&self, text: &str, f: impl FnMut(usize, usize, &Term)) {
        self.scan_each_in(text, false, f);
    }

    /// [`Scanner::scan_each`] on each line of `text` (lines end with
    /// `\n`), as if each were scanned alone, with offsets into `text`: a
    /// match never runs across a line's end. One call for many lines: the
    /// cost of starting a scan is paid once, not per line (a tenth of the
    /// time on chat-length lines). The folding needs nothing more: a line
    /// end ends a word, a run of spaced letters and any edge symbols the
    /// way the end of the text does.
    pub fn scan_each_line(&self, text: &str, f: impl FnMut(usize, usize, &Term)) {
        self.scan_each_in(text, true, f);
    }

    fn scan_each_in(&self, text: &str, lines: bool, f: impl FnMut(usize, usize, &Term)) {
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        let mut exceptions: Vec<(usize, usize, usize)> = Vec::new();
        let reading = Reading {
            second: false,
            lines,
        };
        let alt_at = self.pass(text, 0, reading, &mut hits, &mut exceptions);
        let second = Reading {
            second: true,
            lines,
        };
        for (start, end) in windows(text, &alt_at) {
            self.pass(&text[start..end], start, second, &mut hits, &mut exceptions);
        }
        if hits.is_empty() {
            return;
        }
        let mut found = drop_excepted(hits, exceptions);
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        found.dedup();
        self.outermost(&found, f);
    }

    /// Reports the matches, dropping those inside a longer one. Sorted by
    /// start and then longest first, a span is inside another exactly when
    /// an earlier, different span ends at or after its end.
    fn outermost(&self, found: &[(usize, usize, usize)], mut f: impl FnMut(usize, usize, &Term)) {
        let mut max_end: Option<usize> = None;
        let mut i = 0;
        while i < found.len() {
            let (start, end, _) = found[i];
            let mut j = i;
            while j < found.len() && found[j].0 == start && found[j].1 == end {
                j += 1;
            }
            if !matches!(max_end, Some(m) if m >= end) {
                for &(_, _, term) in &found[i..j] {
                    f(start, end, &self.terms[term]);
                }
            }
            max_end = Some(max_end.map_or(end, |m| m.max(end)));
            i = j;
        }
    }

    /// One reading of `text` (which starts at byte `offset` of the scanned
    /// text): finds the candidates, checks them, and adds (start, end, term)
    /// to `hits` or `exceptions`. Returns where a second reading may differ.
    fn pass(
        &self,
        text: &str,
        offset: usize,
        reading: Reading,
        hits: &mut Vec<(usize, usize, usize)>,
        exceptions: &mut Vec<(usize, usize, usize)>,
    ) -> Vec<usize> {
        let second = reading.second;
        let mode = Mode {
            alt: second,
            span: false,
        };
        let (candidates, saw) = match &self.engine {
            Engine::Dfa(a) => self.candidates(a, text, mode, true),
            Engine::Nfa(a) => self.candidates(a, text, mode, true),
        };
        if candidates.is_empty() {
            // Most lines: nothing to check, nothing to allocate.
            return saw;
        }
        // (Made at the first candidate that needs it: most are too short.)
        let mut units: Option<Units> = None;
        for (start, end, pid) in candidates {
            let span = &text.as_bytes()[start..end];
            if span.len() < self.fewest[pid.as_usize()] && span.is_ascii() {
                continue;
            }
            if reading.lines && memchr::memchr(b'\n', span).is_some() {
                // Across a line's end.
                continue;
            }
            let units = units.get_or_insert_with(Units::for_candidates);
            units.clear();
            fold(
                &text[start..end],
                Mode {
                    alt: second,
                    span: true,
                },
                units,
            );
            for e in &self.entries[pid.as_usize()] {
                if e.accepts(&units.units) {
                    let list = if e.exception {
                        &mut *exceptions
                    } else {
                        &mut *hits
                    };
                    list.push((offset + start, offset + end, e.term));
                }
            }
        }
        saw
    }

    fn candidates<A: Automaton>(
        &self,
        aut: &A,
        text: &str,
        mode: Mode,
        blocks: bool,
    ) -> (Vec<Candidate>, Vec<usize>) {
        let start = aut
            .start_state(Anchored::No)
            .expect("unanchored searches are supported");
        // The ring on the stack unless the library has very long patterns:
        // a text of one chat message is over before an allocation pays.
        // (Two sizes: zeroing the ring is a cost per text.)
        let mut smaller;
        let mut on_stack;
        let mut on_heap = Vec::new();
        let mut noted_smaller;
        let mut noted_on_stack;
        let mut noted_on_heap = Vec::new();
        let (ring, stretches) = if self.ring <= SMALL_RING / 2 {
            smaller = [0; SMALL_RING / 2];
            noted_smaller = [Fed::default(); SMALL_RING / 2];
            (&mut smaller[..self.ring], &mut noted_smaller[..self.ring])
        } else if self.ring <= SMALL_RING {
            on_stack = [0; SMALL_RING];
            noted_on_stack = [Fed::default(); SMALL_RING];
            (&mut on_stack[..self.ring], &mut noted_on_stack[..self.ring])
        } else {
            on_heap.resize(self.ring, 0);
            noted_on_heap.resize(self.ring, Fed::default());
            (&mut on_heap[..], &mut noted_on_heap[..])
        };
        let mut stepper = Stepper {
            aut,
            bounded: &self.bounded,
            start,
            stays: &self.stays,
            sid: start,
            last: '\0',
            cur_end: 0,
            pos: 0,
            ring,
            mask: self.ring - 1,
            stretches,
            noted: 0,
            waiting: Vec::new(),
            found: Vec::new(),
            blocks,
        };
        let saw = fold(text, mode, &mut stepper);
        stepper.resolve();
        (stepper.found, saw)
    }
}

/// For each byte, whether `aut`'s unanchored start state steps to itself
/// on it.
fn start_stays<A: Automaton>(aut: &A) -> Box<[bool; 256]> {
    let start = aut
        .start_state(Anchored::No)
        .expect("unanchored searches are supported");
    let mut stays = Box::new([false; 256]);
    for (b, stay) in stays.iter_mut().enumerate() {
        *stay = aut.next_state(Anchored::No, start, b as u8) == start;
    }
    stays
}

/// The stretches of `text` to read a second time: around each place the
/// first reading noted, to the line's ends but at most `WINDOW` bytes
/// either side, cut after white space so that no word is cut in two;
/// overlapping stretches merge. A 4 MB text with one `|<` is read again
/// around it, not whole.
fn windows(text: &str, at: &[usize]) -> Vec<(usize, usize)> {
    const WINDOW: usize = 1024;
    let bytes = text.as_bytes();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &p in at {
        let lo = p.saturating_sub(WINDOW);
        let hi = (p + WINDOW).min(bytes.len());
        // (From one byte before the window: a line end just outside it
        // still bounds the line, as the start of the text does.)
        let from = lo.saturating_sub(1);
        let start = bytes[from..p]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|k| from + k + 1)
            .or_else(|| (lo == 0).then_some(0))
            .or_else(|| {
                bytes[lo..p]
                    .iter()
                    .position(|b| b.is_ascii_whitespace())
                    .map(|k| lo + k + 1)
            })
            .unwrap_or(p);
        let end = bytes[p..(hi + 1).min(bytes.len())]
            .iter()
            .position(|&b| b == b'\n')
            .map(|k| p + k)
            .or_else(|| (hi == bytes.len()).then_some(hi))
            .or_else(|| {
                bytes[p..hi]
                    .iter()
                    .rposition(|b| b.is_ascii_whitespace())
                    .map(|k| p + k)
            })
            .unwrap_or(hi);
        let (start, end) = (floor_char(text, start), ceil_char(text, end.max(start)));
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Drops the hits lying inside an exception of their own term. Sorted by
/// term and start, with the furthest end so far, one binary search per hit
/// tells whether an exception starting at or before it reaches past it.
fn drop_excepted(
    hits: Vec<(usize, usize, usize)>,
    mut exceptions: Vec<(usize, usize, usize)>,
) -> Vec<(usize, usize, usize)> {
    if exceptions.is_empty() {
        return hits;
    }
    exceptions.sort_unstable_by_key(|&(s, _, t)| (t, s));
    let mut reach = Vec::with_capacity(exceptions.len());
    for (k, &(_, e, t)) in exceptions.iter().enumerate() {
        let before = (k > 0 && exceptions[k - 1].2 == t).then(|| reach[k - 1]);
        reach.push(before.map_or(e, |r: usize| r.max(e)));
    }
    hits.into_iter()
        .filter(|&(s, e, t)| {
            let after = exceptions.partition_point(|&(xs, _, xt)| (xt, xs) <= (t, s));
            !(after > 0 && exceptions[after - 1].2 == t && reach[after - 1] >= e)
        })
        .collect()
}

/// The bytes a plain stretch fed the automaton: the `bits` of the
/// stretch at `at` in the text, fed as bytes `pos..` (one per bit).
#[derive(Clone, Copy, Default)]
struct Fed {
    pos: usize,
    at: usize,
    bits: u64,
}

/// Steps the automaton over the folded classes and notes candidates.
struct Stepper<'a, A> {
    aut: &'a A,
    bounded: &'a [bool],
    /// The unanchored start state, and the bytes it stays in on.
    start: StateID,
    stays: &'a [bool; 256],
    sid: StateID,
    /// The class fed last (runs of it collapse).
    last: char,
    /// Original end of the last class's run.
    cur_end: usize,
    /// Folded bytes fed so far.
    pos: usize,
    /// Original start of each of the last folded bytes fed one at a
    /// time (a plain stretch's are in `stretches`).
    ring: &'a mut [usize],
    mask: usize,
    /// The last plain stretches' fed bytes, noted whole (`mask + 1` slots,
    /// one per stretch that fed any): their positions are worked out only
    /// when a match needs one (see [`Stepper::origin`]), which is rare,
    /// rather than written to the ring byte by byte.
    stretches: &'a mut [Fed],
    /// Stretches noted so far.
    noted: usize,
    /// Unbounded matches waiting for their last run to end.
    waiting: Vec<(PatternID, usize)>,
    found: Vec<Candidate>,
    /// Whether to take plain stretches whole ([`Sink::plain`]); off only
    /// to test that it changes nothing.
    blocks: bool,
}

impl<A: Automaton> Stepper<'_, A> {
    /// An ASCII class different from the last one.
    #[inline(always)]
    fn new_symbol(&mut self, class: u8, at: usize) {
        if !self.waiting.is_empty() {
            self.resolve();
        }
        let prev_end = self.cur_end;
        self.last = class as char;
        self.cur_end = at + 1;
        self.feed(class, at, prev_end);
    }

    #[inline(always)]
    fn symbol(&mut self, class: char, start: usize, end: usize) {
        if class == self.last {
            self.cur_end = end;
            return;
        }
        if !self.waiting.is_empty() {
            self.resolve();
        }
        let prev_end = self.cur_end;
        self.last = class;
        self.cur_end = end;
        if class.is_ascii() {
            self.feed(class as u8, start, prev_end);
        } else {
            let mut buf = [0; 4];
            for &b in class.encode_utf8(&mut buf).as_bytes() {
                self.feed(b, start, prev_end);
            }
        }
    }

    #[inline(always)]
    fn feed(&mut self, byte: u8, start: usize, prev_end: usize) {
        self.ring[self.pos & self.mask] = start;
        self.pos += 1;
        self.sid = self.aut.next_state(Anchored::No, self.sid, byte);
        if self.aut.is_special(self.sid) && self.aut.is_match(self.sid) {
            self.matched(prev_end);
        }
    }

    #[cold]
    fn matched(&mut self, prev_end: usize) {
        for k in 0..self.aut.match_len(self.sid) {
            let pid = self.aut.match_pattern(self.sid, k);
            let first = self.pos - self.aut.pattern_len(pid);
            if self.bounded[pid.as_usize()] {
                // The pattern ends with the space just fed: the term ends
                // where the run before it ended.
                let start = self.origin(first + 1);
                self.found.push((start, prev_end, pid));
            } else {
                let start = self.origin(first);
                self.waiting.push((pid, start));
            }
        }
    }

    /// The original start of the folded byte fed `p`-th (one of the last
    /// `mask + 1`): from the plain stretch that fed it, if one did, else
    /// from the ring. Each stretch noted feeds at least one byte, so the
    /// last `mask + 1` noted cover every byte of the window fed by one.
    fn origin(&self, p: usize) -> usize {
        let kept = self.noted.min(self.mask + 1);
        for n in (self.noted - kept..self.noted).rev() {
            let s = self.stretches[n & self.mask];
            if s.pos <= p {
                let k = p - s.pos;
                if k < s.bits.count_ones() as usize {
                    // The `k`-th set bit of the stretch's fed bytes.
                    let mut bits = s.bits;
                    for _ in 0..k {
                        bits &= bits - 1;
                    }
                    return s.at + bits.trailing_zeros() as usize;
                }
                break;
            }
        }
        self.ring[p & self.mask]
    }

    /// Notes the fed bytes of `stretch` below `upto` (the bits of `fed`):
    /// their positions (noted whole), their count, the last class and the end of its run.
    #[inline(always)]
    fn plain_fed(&mut self, stretch: &Plain<'_>, fed: u64, upto: usize) {
        let below = (1u64 << upto) - 1;
        let rest = fed & below;
        self.cur_end = self.plain_end(stretch, upto);
        if rest == 0 {
            return;
        }
        self.last = stretch.classes[(63 - rest.leading_zeros() as usize) & 63] as char;
        // Noted whole, not slot by slot: see `stretches`.
        self.stretches[self.noted & self.mask] = Fed {
            pos: self.pos,
            at: stretch.at,
            bits: rest,
        };
        self.noted += 1;
        self.pos += rest.count_ones() as usize;
    }

    /// The end of the last run of units of `stretch` below `upto` (where
    /// the space after it takes the run's end from).
    fn plain_end(&self, stretch: &Plain<'_>, upto: usize) -> usize {
        let below = (1u64 << upto) - 1;
        match stretch.word & below {
            0 => self.cur_end,
            units => stretch.at + 64 - units.leading_zeros() as usize,
        }
    }

    fn resolve(&mut self) {
        for (pid, start) in self.waiting.drain(..) {
            self.found.push((start, self.cur_end, pid));
        }
    }
}

impl<A: Automaton> Sink for Stepper<'_, A> {
    #[inline(always)]
    fn unit(&mut self, u: &Unit) {
        self.symbol(u.class, u.start, u.end);
    }

    #[inline(always)]
    fn ascii(&mut self, class: u8, _byte: u8, at: usize) {
        if class as char == self.last {
            self.cur_end = at + 1;
            return;
        }
        self.new_symbol(class, at);
    }

    /// [`Stepper::ascii`] over a run, finding its end on the way, with
    /// the state in locals: kept in fields, it would be stored and reloaded
    /// around every write to the ring (the compiler cannot tell they do not
    /// overlap). This is the loop most of a text goes through.
    #[inline(always)]
    fn ascii_run(&mut self, bytes: &[u8], from: usize) -> usize {
        let mut last = self.last;
        let mut cur_end = self.cur_end;
        let mut sid = self.sid;
        let mut pos = self.pos;
        // Unbounded matches wait for the next new class (see `resolve`).
        let mut pending = !self.waiting.is_empty();
        let mut here = from;
        while let Some(&b) = bytes.get(here) {
            let class = FAST[usize::from(b)];
            if class == 0 {
                break;
            }
            here += 1;
            if class as char == last {
                cur_end = here;
                continue;
            }
            if pending {
                self.cur_end = cur_end;
                self.resolve();
                pending = false;
            }
            let prev_end = cur_end;
            last = class as char;
            cur_end = here;
            if sid == self.start && self.stays[usize::from(class)] {
                // Stepping would stay in the start state, where no match
                // is under way: a later match starts after this byte, so
                // neither the ring nor the count of fed bytes needs it.
                continue;
            }
            self.ring[pos & self.mask] = here - 1;
            pos += 1;
            sid = self.aut.next_state(Anchored::No, sid, class);
            if self.aut.is_special(sid) && self.aut.is_match(sid) {
                self.sid = sid;
                self.pos = pos;
                self.matched(prev_end);
                pending = !self.waiting.is_empty();
            }
        }
        self.last = last;
        self.cur_end = cur_end;
        self.sid = sid;
        self.pos = pos;
        here
    }

    fn takes_blocks(&self) -> bool {
        self.blocks
    }

    /// A plain stretch: the classes that differ from the one before (bits
    /// of `change`, and the first byte unless its class was the last fed)
    /// are stepped one after the other, without a branch but at a
    /// match. The ring, the count of fed bytes and the ends of runs are
    /// worked out from the masks afterwards, not per byte: the loop is
    /// only the automaton's steps.
    #[inline(always)]
    fn plain(&mut self, stretch: &Plain<'_>) {
        let len = stretch.bytes.len();
        let first = stretch.classes[0] as char;
        let mut fed = stretch.change & !1 | u64::from(first != self.last);
        loop {
            if !self.waiting.is_empty() {
                // Unbounded matches wait for the next new class (see
                // `resolve`); none here: the run may go on after.
                if fed == 0 {
                    break;
                }
                self.cur_end = self.plain_end(stretch, fed.trailing_zeros() as usize);
                self.resolve();
            }
            let mut sid = self.sid;
            let mut rest = fed;
            let mut hit = len;
            while rest != 0 {
                let k = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                sid = self
                    .aut
                    .next_state(Anchored::No, sid, stretch.classes[k & 63]);
                if self.aut.is_special(sid) && self.aut.is_match(sid) {
                    hit = k;
                    break;
                }
            }
            if hit == len {
                self.sid = sid;
                break;
            }
            let prev_end = self.plain_end(stretch, hit);
            self.plain_fed(stretch, fed, hit + 1);
            self.sid = sid;
            self.matched(prev_end);
            fed &= !((2u64 << hit) - 1);
        }
        self.plain_fed(stretch, fed, len);
    }

    #[inline]
    fn space(&mut self) {
        let at = self.cur_end;
        self.symbol(' ', at, at);
    }

    fn extend(&mut self, end: usize) {
        if self.last != ' ' {
            self.cur_end = end;
        }
    }
}

/// Collects units (and, for a term, where words start and its pattern).
struct Units {
    units: Vec<Unit>,
    /// Whether to note `words` and `folded` too: a term's pattern needs
    /// them, checking a candidate needs only the units.
    pattern: bool,
    /// Index in `units` where each word starts.
    words: Vec<usize>,
    new_word: bool,
    folded: String,
}

impl Default for Units {
    fn default() -> Units {
        Units {
            units: Vec::new(),
            pattern: true,
            words: Vec::new(),
            new_word: true,
            folded: String::new(),
        }
    }
}

impl Units {
    /// For checking candidates: the units only, with room for most.
    fn for_candidates() -> Units {
        Units {
            units: Vec::with_capacity(32),
            pattern: false,
            ..Units::default()
        }
    }

    fn clear(&mut self) {
        self.units.clear();
        self.words.clear();
        self.new_word = true;
        self.folded.clear();
    }
}

impl Sink for Units {
    fn unit(&mut self, u: &Unit) {
        if self.pattern {
            if self.new_word {
                self.words.push(self.units.len());
                self.new_word = false;
            }
            if !self.folded.ends_with(u.class) {
                self.folded.push(u.class);
            }
        }
        self.units.push(*u);
    }

    fn space(&mut self) {
        self.new_word = true;
        if self.pattern && !self.folded.ends_with(' ') {
            self.folded.push(' ');
        }
    }

    fn extend(&mut self, _end: usize) {}
}

/// The text as written and, if it has apostrophes, without them: `don't`
/// (two words in the text, `don t`) and `dont`.
fn with_and_without_apostrophes(text: &str) -> Vec<String> {
    let is_apostrophe = |c: char| matches!(c, '\'' | '\u{2019}' | '\u{02BC}');
    let mut out = vec![text.to_string()];
    if text.contains(is_apostrophe) {
        out.push(text.replace(is_apostrophe, ""));
    }
    out
}

/// A term or exception folded: its pattern and its words' units.
struct FoldedTerm {
    folded: String,
    words: Vec<Vec<Unit>>,
    /// The words are written together: runs continue across them.
    squashed: bool,
}

impl FoldedTerm {
    fn new(text: &str) -> Option<FoldedTerm> {
        let mut sink = Units::default();
        fold(text, Mode::default(), &mut sink);
        if sink.units.is_empty() {
            return None;
        }
        let mut words = Vec::new();
        for (k, &w) in sink.words.iter().enumerate() {
            let end = sink.words.get(k + 1).copied().unwrap_or(sink.units.len());
            words.push(sink.units[w..end].to_vec());
        }
        Some(FoldedTerm {
            folded: sink.folded,
            words,
            squashed: false,
        })
    }

    /// The words written together.
    fn squashed(&self) -> FoldedTerm {
        let mut folded = String::from(" ");
        for c in self.folded.chars().filter(|&c| c != ' ') {
            if !folded.ends_with(c) {
                folded.push(c);
            }
        }
        folded.push(' ');
        FoldedTerm {
            folded,
            words: self.words.clone(),
            squashed: true,
        }
    }

    fn pattern(&self, bounded: bool) -> String {
        if bounded {
            self.folded.clone()
        } else {
            self.folded.trim_matches(' ').to_string()
        }
    }

    fn entry(&self, term: usize, exception: bool) -> Entry {
        let mut runs: Vec<Run> = Vec::new();
        let mut needs_letter = false;
        for word in &self.words {
            // In a word without letters (`1488`), digits are themselves.
            let literal = !word.iter().any(|u| u.kind == Kind::Letter);
            needs_letter |= !literal;
            let first = if self.squashed { 0 } else { runs.len() };
            for u in word {
                let mut reads = u.reads;
                if literal && u.kind == Kind::Digit {
                    reads.mask &= !LETTERS;
                }
                let len = runs.len();
                match runs.last_mut() {
                    Some(r) if len > first && r.reads == reads => r.min = r.min.saturating_add(1),
                    _ => runs.push(Run { reads, min: 1 }),
                }
            }
        }
        Entry {
            term,
            exception,
            units: runs.iter().map(|r| usize::from(r.min)).sum(),
            runs: runs.into(),
            needs_letter,
        }
    }
}

impl Entry {
    /// Whether the span's units spell this term: the runs of the term, in
    /// order, each at least as long as the term's, every unit one of whose
    /// readings is the run's letter.
    fn accepts(&self, units: &[Unit]) -> bool {
        if units.len() < self.units {
            // Each unit counts towards one run at most.
            return false;
        }
        if self.needs_letter && !units.iter().any(|u| u.kind == Kind::Letter) {
            let symbols = units.iter().all(|u| u.kind == Kind::Symbol);
            if !(symbols && units.len() >= 2) {
                return false;
            }
        }
        spells(&self.runs, units)
    }
}

/// Runs the term as a pattern over the units: each run `r{n}` or
/// `r{max(n, 3),}` (a letter written twice where the term has it once is a
/// spelling, `looser`, `rapped`; three times or more is stretching), the
/// states (run, letters seen, capped) kept as a set: linear in the span,
/// whatever the stretching.
///
/// The set is one bit set per run, bit `c` for `c` letters seen, so a unit
/// costs a few instructions per run; terms with more than `MAX_RUNS` runs
/// or a run longer than 60 letters go through [`spells_wide`], the same
/// automaton with one flag per state.
fn spells(runs: &[Run], units: &[Unit]) -> bool {
    const MAX_RUNS: usize = 32;
    if runs.is_empty() {
        return false;
    }
    if runs.len() > MAX_RUNS || runs.iter().any(|r| r.min > 60) {
        return spells_wide(runs, units);
    }
    let n = runs.len();
    let (mut cur_buf, mut next_buf) = ([0u64; MAX_RUNS], [0u64; MAX_RUNS]);
    // (Swapping references, not the arrays.)
    let (mut cur, mut next) = (&mut cur_buf[..n], &mut next_buf[..n]);
    // Run 0, no letter seen.
    cur[0] = 1;
    for u in units {
        // Each run's next set is written whole (no clearing first): the
        // letters it goes on with, and the bit run `j - 1` passes on.
        let mut passed = 0u64;
        let mut alive = 0u64;
        for j in 0..n {
            let seen = cur[j];
            let mut set = passed;
            passed = 0;
            if seen != 0 {
                let run = &runs[j];
                let top = 1u64 << run_cap(run);
                if run.reads.meets(u.reads) {
                    // One more letter, staying at the cap.
                    set |= ((seen << 1) & (top | (top - 1))) | (seen & top);
                }
                if j + 1 < n && seen & run_done(run) != 0 && runs[j + 1].reads.meets(u.reads) {
                    passed = 1 << 1;
                }
            }
            next[j] = set;
            alive |= set;
        }
        if alive == 0 {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur[n - 1] & run_done(&runs[n - 1]) != 0
}

/// The count of letters a run of the text stops counting at: the term's
/// count, or 3 (stretching) if that is more.
fn run_cap(run: &Run) -> u32 {
    u32::from(run.min).max(3)
}

/// The counts at which a run may end, as bits: exactly the term's count,
/// or the cap (three or more).
fn run_done(run: &Run) -> u64 {
    (1 << run.min) | (1 << run_cap(run))
}

/// [`spells`] with one flag per (run, count) state, for any term.
fn spells_wide(runs: &[Run], units: &[Unit]) -> bool {
    let cap = |r: &Run| (r.min as usize).max(3);
    let done = |r: &Run, c: usize| c == r.min as usize || c == cap(r);
    let offsets: Vec<usize> = runs
        .iter()
        .scan(0, |acc, r| {
            let at = *acc;
            *acc += cap(r) + 1;
            Some(at)
        })
        .collect();
    let last = runs.len() - 1;
    let total = offsets[last] + cap(&runs[last]) + 1;
    let (mut cur_buf, mut next_buf) = ([false; 256], [false; 256]);
    let (mut cur_vec, mut next_vec) = (Vec::new(), Vec::new());
    let (mut cur, mut next): (&mut [bool], &mut [bool]) = if total <= 256 {
        (&mut cur_buf[..total], &mut next_buf[..total])
    } else {
        cur_vec.resize(total, false);
        next_vec.resize(total, false);
        (&mut cur_vec[..], &mut next_vec[..])
    };
    cur[0] = true;
    for u in units {
        next.iter_mut().for_each(|s| *s = false);
        let mut alive = false;
        for (j, run) in runs.iter().enumerate() {
            for c in 0..=cap(run) {
                if !cur[offsets[j] + c] {
                    continue;
                }
                if run.reads.meets(u.reads) {
                    next[offsets[j] + (c + 1).min(cap(run))] = true;
                    alive = true;
                }
                if c > 0 && done(run, c) && j < last && runs[j + 1].reads.meets(u.reads) {
                    next[offsets[j + 1] + 1] = true;
                    alive = true;
                }
            }
        }
        if !alive {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    (1..=cap(&runs[last])).any(|c| cur[offsets[last] + c] && done(&runs[last], c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The default library and a few contains terms (matches inside
    /// words, some waiting for their run to end).
    fn library() -> &'static Scanner {
        static SCANNER: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
        SCANNER.get_or_init(|| {
            let mut library = Library::default_library();
            for term in ["ass", "hel", "lo w", "zz", "q"] {
                library
                    .terms
                    .push(Term::new(term, "test", 3, MatchType::Contains));
            }
            Scanner::new(&library).expect("a scanner")
        })
    }

    fn piece() -> impl Strategy<Value = String> {
        let terms: Vec<String> = library().terms.iter().map(|t| t.term.clone()).collect();
        prop_oneof![
            3 => prop::sample::select(terms),
            3 => "[a-zA-Z0-9@$]{2,9}",
            1 => "[a-z]{40,70}",
            1 => "(as|ss|hel|lo|zz|q){1,12}",
            1 => prop::sample::select(vec!["a", "I", "k", "kkk", "ll", "1", "$"])
                .prop_map(str::to_string),
            4 => prop::sample::select(vec![" ", "  ", ", ", ".", "-", "\n", "    "])
                .prop_map(str::to_string),
            1 => prop::sample::select(vec!["'", "!", "(", "+", "|<", "é", "\u{301}", "🙂"])
                .prop_map(str::to_string),
            // Emoji the block takes as separators, and one it does not.
            1 => prop::sample::select(vec!["🙂", "\u{1F300}", "\u{1FAFF}", "👍🏽", "🙂🙂", "❤\u{FE0F}"])
                .prop_map(str::to_string),
            // Slashes, and the digraphs `/\` and `\/`.
            1 => prop::sample::select(vec!["/", "//", "https://", "/\\", "\\/", "a/\\b"])
                .prop_map(str::to_string),
        ]
    }

    /// [`piece`], and what may behave differently at a line's end:
    /// disguises, spaced letters, digraphs and edge symbols next to line
    /// ends, phrases and exceptions across them, empty lines and `\r\n`.
    fn line_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => piece(),
            2 => prop::sample::select(vec!["\n", "\r\n", "\n\n", " \n ", "\n'"])
                .prop_map(str::to_string),
            2 => prop::sample::select(vec![
                "k1ll", "h@+3", "|<!||", "8|3ed", "d!3", "k.i.l.l", "k i l l", "s h i t",
                "k\ni l l", "k i\nl l", "|\n<", "|\n3", "kill!\n", "\n(ock", "+\nhreat",
                "kill\nyourself", "kill yourself", "photo\nshoot", "photo shoot", "k\ni\nl\nl",
                "who\n're", "a\nss", "!\n!",
            ])
            .prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Lines scanned at once give what each line scanned alone gives.
        #[test]
        fn lines_at_once_are_each_line_alone(
            pieces in prop::collection::vec(line_piece(), 0..60),
        ) {
            let text = pieces.concat();
            let scanner = library();
            let mut at_once = Vec::new();
            scanner.scan_each_line(&text, |s, e, t| at_once.push((s, e, t.term.clone())));
            let mut alone = Vec::new();
            let mut from = 0;
            for line in text.split_inclusive('\n') {
                let body = line.strip_suffix('\n').unwrap_or(line);
                scanner.scan_each(body, |s, e, t| alone.push((from + s, from + e, t.term.clone())));
                from += line.len();
            }
            prop_assert_eq!(at_once, alone);
        }

        /// The plain stretches find the same candidates, with the same
        /// spans, as the byte-by-byte path.
        #[test]
        fn plain_stretches_find_the_same_candidates(
            pieces in prop::collection::vec(piece(), 0..40),
        ) {
            let text = pieces.concat();
            let scanner = library();
            let Engine::Dfa(aut) = &scanner.engine else {
                panic!("a DFA");
            };
            for alt in [false, true] {
                let mode = Mode { alt, span: false };
                prop_assert_eq!(
                    scanner.candidates(aut, &text, mode, true),
                    scanner.candidates(aut, &text, mode, false)
                );
            }
        }
    }

    /// A place to read again exactly a window's width from its line's
    /// start or end gets the whole line, as when the line is scanned
    /// alone (where the text's own start and end bound it).
    #[test]
    fn a_window_a_full_width_from_the_line_ends_takes_the_whole_line() {
        let line = format!("{}a|<ill{}", "ab ".repeat(341), " ab".repeat(341));
        assert_eq!(line.find('|'), Some(1024));
        let text = format!("hello\n{line}\nbye\n");
        let start = 6;
        // 1024 from the line's start, and 1024 from its end.
        for q in [1024, line.len() - 1024] {
            let alone = windows(&line, &[q]);
            let among = windows(&text, &[start + q]);
            let shifted: Vec<_> = alone.iter().map(|w| (w.0 + start, w.1 + start)).collect();
            assert_eq!(among, shifted, "{q}");
        }
        assert_eq!(windows(&line, &[1024])[0].0, 0);
        assert_eq!(windows(&line, &[line.len() - 1024])[0].1, line.len());
    }

    /// The bit-set automaton agrees with the flag-per-state one on every
    /// text of up to five characters over look-alikes of the terms'
    /// letters, for terms with single, doubled and tripled letters.
    #[test]
    fn spells_agrees_with_spells_wide() {
        let terms = [
            "kill", "kil", "ass", "a", "aaa", "kiss", "sassy", "kill ass",
        ];
        let alphabet = ['k', 'i', 'l', '1', '|', 'a', '4', 's', '$', 'y'];
        let mut units = Units::for_candidates();
        let mut checked = 0;
        for term in terms {
            let entry = FoldedTerm::new(term).expect("a term").entry(0, false);
            let mut text = vec![0usize; 0];
            loop {
                let s: String = text.iter().map(|&k| alphabet[k]).collect();
                units.clear();
                fold(&s, Mode::default(), &mut units);
                assert_eq!(
                    spells(&entry.runs, &units.units),
                    spells_wide(&entry.runs, &units.units),
                    "{term:?} in {s:?}"
                );
                checked += 1;
                // The next text, in order of length, then of letters.
                match text.iter().rposition(|&k| k + 1 < alphabet.len()) {
                    Some(p) => {
                        text[p] += 1;
                        text[p + 1..].iter_mut().for_each(|k| *k = 0);
                    }
                    None if text.len() < 5 => text = vec![0; text.len() + 1],
                    None => break,
                }
            }
        }
        assert!(checked > 800_000);
    }
}
