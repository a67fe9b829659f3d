//! The scanner: one Aho-Corasick automaton over every normalized term and
//! exception of a library.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

use crate::library::{Library, MatchType, Term};
use crate::normalize::{normalize, Normalized, OneAs};

/// Up to this many distinct normalized patterns, the automaton is a DFA.
const DFA_MAX_PATTERNS: usize = 2_000;

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
/// Matching works on [normalized](crate::normalize) text: a term matches its
/// evasive spellings (`K I L L`, `k1ll`, `kiiiill`, `ķïłł`), and every match
/// is reported with its span in the original text.
///
/// * Whole-word and phrase terms match only between word boundaries of the
///   normalized text; contains terms match anywhere.
/// * A match lying inside an occurrence of one of its term's exception
///   phrases is dropped (`shoot` in `photo shoot`). Exceptions are matched
///   like their term (on word boundaries, or anywhere for contains terms)
///   and with the same normalization.
/// * Where matches overlap, one lying wholly inside a longer one is dropped
///   (`kill` inside `kill yourself`, `porn` inside `revenge porn`); matches
///   with the same span (the same word in two categories) are all reported.
/// * A text with a `1` inside a word is scanned twice, reading it as `i` and
///   as `l` (see [`OneAs`]); other texts once.
///
/// The automaton holds every distinct normalized form of the terms, of
/// phrases written without spaces (`killyourself`) and of the exceptions. It
/// is a DFA up to 2,000 such patterns (about 1 MiB for the default library)
/// and a contiguous NFA beyond (about 1.5 MiB for 10,000 terms).
#[derive(Clone, Debug)]
pub struct Scanner {
    automaton: AhoCorasick,
    /// For each automaton pattern: what a match of it means.
    entries: Vec<Vec<Entry>>,
    terms: Vec<Term>,
}

#[derive(Clone, Debug)]
struct Entry {
    /// Index into `Scanner::terms`.
    term: usize,
    exception: bool,
    /// Whether the match must be a whole word (or phrase).
    bounded: bool,
    /// Minimum run length of each byte of the match.
    runs: Box<[u8]>,
}

/// A normalized match: term index and byte range in the normalized text.
#[derive(Clone, Copy, Debug)]
struct Hit {
    term: usize,
    start: usize,
    end: usize,
}

impl Scanner {
    /// Builds the automaton for `library`. Terms that normalize to nothing
    /// (no letters or digits) are ignored; the library need not be
    /// [validated](Library::validate). Fails only for libraries too large
    /// for the automaton (far beyond a million terms).
    pub fn new(library: &Library) -> Result<Scanner, BuildError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<Vec<Entry>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut add = |text: &str, term: usize, exception: bool, bounded: bool| {
            for one_as in [OneAs::I, OneAs::L] {
                let norm = normalize(text, one_as);
                let core = norm.as_str().trim_matches(' ');
                if core.is_empty() {
                    return;
                }
                let runs: Box<[u8]> = norm.runs()[1..1 + core.len()].into();
                let id = *index.entry(core.to_string()).or_insert_with(|| {
                    patterns.push(core.to_string());
                    entries.push(Vec::new());
                    patterns.len() - 1
                });
                let entry = Entry {
                    term,
                    exception,
                    bounded,
                    runs,
                };
                if !entries[id].iter().any(|e| e.same(&entry)) {
                    entries[id].push(entry);
                }
                if !norm.ambiguous() {
                    return;
                }
            }
        };
        for (i, term) in library.terms.iter().enumerate() {
            let bounded = term.match_type != MatchType::Contains;
            add(&term.term, i, false, bounded);
            if term.match_type == MatchType::Phrase {
                // The words written together: `killyourself`, `ak47`.
                let squashed: String = term
                    .term
                    .chars()
                    .filter(|&c| {
                        c.is_alphanumeric() || matches!(c, '@' | '$' | '!' | '\'' | '\u{2019}')
                    })
                    .collect();
                add(&squashed, i, false, true);
            }
            for exception in &term.exceptions {
                add(exception, i, true, bounded);
            }
        }
        // A DFA searches fastest but takes about 2.5 KiB per pattern (1 MiB
        // for the default library, 26 MiB for 10,000 terms); past
        // DFA_MAX_PATTERNS the builder picks (a contiguous NFA, about a
        // tenth of the memory).
        let kind = (patterns.len() <= DFA_MAX_PATTERNS).then_some(AhoCorasickKind::DFA);
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(kind)
            .build(&patterns)?;
        Ok(Scanner {
            automaton,
            entries,
            terms: library.terms.clone(),
        })
    }

    /// Heap bytes used by the automaton.
    pub fn memory_usage(&self) -> usize {
        self.automaton.memory_usage()
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
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        let norm = normalize(text, OneAs::I);
        self.collect(&norm, &mut found);
        if norm.ambiguous() {
            self.collect(&normalize(text, OneAs::L), &mut found);
        }
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        found.dedup();

        // Drop matches lying inside a longer one. Sorted by start and then
        // longest first, a span is inside another exactly when an earlier,
        // different span ends at or after its end.
        let mut out = Vec::with_capacity(found.len());
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
                    let t = &self.terms[term];
                    out.push(Match {
                        term: t.term.clone(),
                        category: t.category.clone(),
                        severity: t.severity,
                        match_type: t.match_type,
                        matched: text[start..end].to_string(),
                        start,
                        end,
                    });
                }
            }
            max_end = Some(max_end.map_or(end, |m| m.max(end)));
            i = j;
        }
        out
    }

    /// Adds the matches in one normalized reading of the text to `found` as
    /// (original start, original end, term index).
    fn collect(&self, norm: &Normalized, found: &mut Vec<(usize, usize, usize)>) {
        let text = norm.as_str();
        let bytes = text.as_bytes();
        let runs = norm.runs();
        let mut hits: Vec<Hit> = Vec::new();
        let mut exceptions: Vec<Hit> = Vec::new();
        for m in self.automaton.find_overlapping_iter(text) {
            let (start, end) = (m.start(), m.end());
            let whole = start > 0 && bytes[start - 1] == b' ' && bytes.get(end) == Some(&b' ');
            for e in &self.entries[m.pattern().as_usize()] {
                if e.bounded && !whole {
                    continue;
                }
                if !runs[start..end]
                    .iter()
                    .zip(e.runs.iter())
                    .all(|(have, need)| have >= need)
                {
                    continue;
                }
                let hit = Hit {
                    term: e.term,
                    start,
                    end,
                };
                if e.exception {
                    exceptions.push(hit);
                } else {
                    hits.push(hit);
                }
            }
        }
        for h in hits {
            let excepted = !self.terms[h.term].exceptions.is_empty()
                && exceptions
                    .iter()
                    .any(|x| x.term == h.term && x.start <= h.start && h.end <= x.end);
            if !excepted {
                let (start, end) = norm.original_span(h.start, h.end);
                found.push((start, end, h.term));
            }
        }
    }
}

impl Entry {
    fn same(&self, other: &Entry) -> bool {
        self.term == other.term
            && self.exception == other.exception
            && self.bounded == other.bounded
            && self.runs == other.runs
    }
}
