//! Normalization against evasion.
//!
//! Terms and text go through the same function, so whatever a trick does to
//! the text it also does to the term, and matching the two normalized strings
//! with plain Aho-Corasick finds the evasive spellings. Every byte of the
//! normalized string remembers the byte span of the original text it came
//! from, so a match is reported as a slice of the original text.
//!
//! The steps, in order:
//!
//! 1. **Folding**, per character: Unicode compatibility decomposition (NFKD,
//!    which turns fullwidth `ｋ`, mathematical `𝐤` and circled `ⓚ` into `k`),
//!    dropping combining marks (so `é` → `e`), lower-casing, a small table for
//!    letters NFKD leaves alone (`ß` → `ss`, `æ` → `ae`, `ø` → `o`, `ł` → `l`,
//!    …) and a small table of Cyrillic and Greek look-alikes (`а`, `о`, `р`,
//!    `ο`, … → `a`, `o`, `p`, `o`). Invisible format characters (zero-width
//!    space and joiners, soft hyphen, BOM, bidi controls) are dropped.
//! 2. **Words**: runs of letters, digits and the look-alike symbols `@ $ !`.
//!    An apostrophe (`'`, `’`) between two word characters is dropped
//!    (`don't` → `dont`); everything else separates words.
//! 3. **Spaced letters**: two or more one-character words separated by at
//!    most three separator characters (no line break) are joined into one
//!    word: `k i l l`, `k.i.l.l`, `k - i - l - l` → `kill`.
//! 4. **Look-alike digits and symbols**, only in words that contain a letter
//!    (so `420` and `1488` stay numbers) or consist of two or more of the
//!    symbols (`@$$`): `0`→o, `1`→i or l (see below),
//!    `3`→e, `4`→a, `5`→s, `7`→t, `8`→b, `@`→a, `$`→s, `!`→i. Exclamation
//!    marks at the end of a word are punctuation (`kill!` → `kill`). In words
//!    without a letter the symbols are separators.
//! 5. **Repeats**: a run of the same character becomes one character that
//!    records the run's length (`kiiiill` → `kil` with runs i×4, l×2). The
//!    scanner accepts a match only where each text run is at least as long as
//!    the term's run, so `kiiiill` matches `kill` but `as` does not match
//!    `ass`, `shot` does not match `shoot` and `wed` does not match `weed`.
//! 6. **Separators**: each run of separators becomes one space, and the
//!    result starts and ends with a space, so a whole-word match is one with
//!    a space on both sides.
//!
//! **The digit `1`** stands for `i` (`k1ll`) as often as for `l` (`s1ut`,
//! `ki11`). Rather than merging `i` and `l` into one letter (which would
//! make `kill` and `kiil`, `bill` and `bi` the same), [`normalize`] takes a
//! [`OneAs`] reading. Terms are registered under both readings, and the
//! scanner scans a text a second time, reading `1` as `l`, only when the first
//! pass substituted a `1` ([`Normalized::ambiguous`]).

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Which letter the digit `1` stands for in words that contain letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OneAs {
    /// `1` → `i` (`k1ll` → `kill`, `su1c1de` → `suicide`).
    I,
    /// `1` → `l` (`s1ut` → `slut`, `ki11` → `kill`).
    L,
}

/// A normalized text with a map back to the original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    text: String,
    /// For each byte of `text`: the original byte span it came from.
    spans: Vec<(usize, usize)>,
    /// For each byte of `text`: how many equal characters were collapsed into
    /// its character (saturating at 255).
    runs: Vec<u8>,
    ambiguous: bool,
}

impl Normalized {
    /// The normalized text: lower case, words separated by single spaces,
    /// with a space at the start and at the end.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// For each byte of [`Normalized::as_str`], the length of the run of equal
    /// characters collapsed into its character (saturating at 255).
    pub fn runs(&self) -> &[u8] {
        &self.runs
    }

    /// Whether a `1` was read as a letter, i.e. whether normalizing with the
    /// other [`OneAs`] reading could give a different text.
    pub fn ambiguous(&self) -> bool {
        self.ambiguous
    }

    /// The original byte span of the normalized byte range `start..end`
    /// (`start < end`, both within the text). The span always starts and ends
    /// on character boundaries of the original text.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.spans[start].0, self.spans[end - 1].1)
    }
}

/// Normalizes `input` as described in the [module documentation](self).
pub fn normalize(input: &str, one_as: OneAs) -> Normalized {
    let mut n = Normalizer::new(input.len(), one_as);
    let mut chars = input.char_indices().peekable();
    while let Some((start, ch)) = chars.next() {
        let mut end = start + ch.len_utf8();
        // Combining marks after a character (decomposed `é`) belong to its
        // span, so a match never ends between a letter and its marks.
        while let Some(&(i, next)) = chars.peek() {
            if next.is_ascii() || !is_combining_mark(next) {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        if ch.is_ascii() {
            n.process(ch.to_ascii_lowercase(), start, end);
            continue;
        }
        if is_invisible(ch) || is_combining_mark(ch) {
            continue;
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
                    Some(s) => s.chars().for_each(|c| n.process(c, start, end)),
                    None => n.process(lookalike(l), start, end),
                }
            }
        });
    }
    n.finish(input.len())
}

/// One folded character, its class and the original span it came from.
#[derive(Clone, Copy, Debug)]
struct Folded {
    c: char,
    class: Class,
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Symbol,
    Joiner,
    Sep,
}

fn classify(c: char) -> Class {
    match c {
        'a'..='z' => Class::Letter,
        '0'..='9' => Class::Digit,
        '@' | '$' | '!' => Class::Symbol,
        '\'' | '\u{2019}' | '\u{02BC}' => Class::Joiner,
        c if c.is_ascii() => Class::Sep,
        c if c.is_alphanumeric() => Class::Letter,
        _ => Class::Sep,
    }
}

/// Steps 2 to 6 of the module documentation, one folded character at a
/// time: collects a word, decides whether it joins a group of spaced
/// letters, and writes finished words and separators to [`Out`].
struct Normalizer {
    out: Out,
    one_as: OneAs,
    /// The word being read (apostrophes inside it already dropped).
    word: Vec<Folded>,
    /// An apostrophe after the word: dropped if a word character follows.
    joiner: Option<Folded>,
    /// Separators since the last word: span, character count, line break.
    gap: Option<(usize, usize)>,
    gap_len: usize,
    gap_break: bool,
    /// One-character words waiting to be joined (`k i l l`): their letters.
    group: Vec<Folded>,
}

impl Normalizer {
    fn new(capacity: usize, one_as: OneAs) -> Normalizer {
        Normalizer {
            out: Out::new(capacity),
            one_as,
            word: Vec::new(),
            joiner: None,
            gap: None,
            gap_len: 0,
            gap_break: false,
            group: Vec::new(),
        }
    }

    fn process(&mut self, c: char, start: usize, end: usize) {
        let f = Folded {
            c,
            class: classify(c),
            start,
            end,
        };
        match f.class {
            Class::Letter | Class::Digit | Class::Symbol => {
                // An apostrophe between two word characters is dropped.
                self.joiner = None;
                self.word.push(f);
            }
            Class::Joiner if !self.word.is_empty() && self.joiner.is_none() => {
                self.joiner = Some(f)
            }
            Class::Joiner | Class::Sep => {
                self.end_word();
                if let Some(j) = self.joiner.take() {
                    self.add_gap(j);
                }
                self.add_gap(f);
            }
        }
    }

    fn add_gap(&mut self, f: Folded) {
        self.gap = Some(match self.gap {
            Some((start, _)) => (start, f.end),
            None => (f.start, f.end),
        });
        self.gap_len += 1;
        self.gap_break |= matches!(f.c, '\n' | '\r');
    }

    /// The word just read is complete.
    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        let first = self.word[0];
        let single = matches!(first.class, Class::Letter | Class::Digit)
            && self.word[1..].iter().all(|f| f.c == '!');
        if single {
            let joins = !self.group.is_empty() && self.gap_len <= 3 && !self.gap_break;
            if joins {
                self.clear_gap();
            } else {
                self.flush_group();
                self.flush_gap();
            }
            self.group.push(first);
        } else {
            self.flush_group();
            self.flush_gap();
            self.out.word(&self.word, self.one_as);
        }
        self.word.clear();
    }

    fn flush_group(&mut self) {
        if !self.group.is_empty() {
            self.out.word(&self.group, self.one_as);
            self.group.clear();
        }
    }

    fn flush_gap(&mut self) {
        if let Some((start, end)) = self.gap {
            self.out.sep(start, end);
        }
        self.clear_gap();
    }

    fn clear_gap(&mut self) {
        self.gap = None;
        self.gap_len = 0;
        self.gap_break = false;
    }

    fn finish(mut self, len: usize) -> Normalized {
        self.end_word();
        if let Some(j) = self.joiner.take() {
            self.add_gap(j);
        }
        self.flush_group();
        self.flush_gap();
        self.out.sep(len, len);
        self.out.finish()
    }
}

/// Invisible format characters that can be slipped inside a word.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
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

/// Cyrillic and Greek lower-case letters that look like Latin ones.
fn lookalike(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'е' => 'e',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' | 'χ' => 'x',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'і' | 'ι' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'һ' => 'h',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ν' => 'v',
        'τ' => 't',
        'υ' => 'u',
        c => c,
    }
}

/// The letter a digit or symbol stands for inside a word with letters.
fn leet(c: char, one_as: OneAs) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => match one_as {
            OneAs::I => 'i',
            OneAs::L => 'l',
        },
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '!' => 'i',
        _ => return None,
    })
}

/// The normalized output under construction.
struct Out {
    text: String,
    spans: Vec<(usize, usize)>,
    runs: Vec<u8>,
    /// The last character pushed (`' '` after a separator) and its byte length.
    last: char,
    last_len: usize,
    ambiguous: bool,
}

impl Out {
    fn new(capacity: usize) -> Out {
        let mut out = Out {
            text: String::with_capacity(capacity + 2),
            spans: Vec::with_capacity(capacity + 2),
            runs: Vec::with_capacity(capacity + 2),
            last: ' ',
            last_len: 1,
            ambiguous: false,
        };
        out.text.push(' ');
        out.spans.push((0, 0));
        out.runs.push(1);
        out
    }

    /// A run of separators spanning `start..end` of the original.
    fn sep(&mut self, start: usize, end: usize) {
        if self.last == ' ' {
            if let Some(span) = self.spans.last_mut() {
                span.1 = span.1.max(end);
            }
        } else {
            self.text.push(' ');
            self.spans.push((start, end));
            self.runs.push(1);
            self.last = ' ';
            self.last_len = 1;
        }
    }

    fn char(&mut self, c: char, start: usize, end: usize) {
        if c == self.last {
            let n = self.spans.len();
            for k in n - self.last_len..n {
                self.spans[k].1 = end;
                self.runs[k] = self.runs[k].saturating_add(1);
            }
            return;
        }
        let len = c.len_utf8();
        self.text.push(c);
        for _ in 0..len {
            self.spans.push((start, end));
            self.runs.push(1);
        }
        self.last = c;
        self.last_len = len;
    }

    /// Emits one word (apostrophes already removed).
    fn word(&mut self, word: &[Folded], one_as: OneAs) {
        let mut keep = word.len();
        while keep > 0 && word[keep - 1].c == '!' {
            keep -= 1;
        }
        // A word is spelled with look-alikes if it has a letter (`h3ll0`) or
        // is two or more look-alike symbols (`@$$`); `420` and `$5` are not.
        let spelled = word.iter().any(|f| f.class == Class::Letter)
            || (keep >= 2 && word[..keep].iter().all(|f| f.class == Class::Symbol));
        for f in &word[..keep] {
            match f.class {
                Class::Digit | Class::Symbol if spelled => {
                    let c = leet(f.c, one_as).unwrap_or(f.c);
                    if f.c == '1' {
                        self.ambiguous = true;
                    }
                    self.char(c, f.start, f.end);
                }
                Class::Symbol => self.sep(f.start, f.end),
                _ => self.char(f.c, f.start, f.end),
            }
        }
        for f in &word[keep..] {
            self.sep(f.start, f.end);
        }
    }

    fn finish(self) -> Normalized {
        Normalized {
            text: self.text,
            spans: self.spans,
            runs: self.runs,
            ambiguous: self.ambiguous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s, OneAs::I).as_str().to_string()
    }

    fn nl(s: &str) -> String {
        normalize(s, OneAs::L).as_str().to_string()
    }

    #[test]
    fn case_folding_and_padding() {
        assert_eq!(n("Hello WORLD"), " helo world ");
        assert_eq!(n(""), " ");
        assert_eq!(n("   "), " ");
        assert_eq!(n("..a.."), " a ");
    }

    #[test]
    fn diacritics_are_removed() {
        assert_eq!(n("Café naïve résumé"), " cafe naive resume ");
        assert_eq!(n("Ḱíłḷ"), " kil ");
        assert_eq!(n("Straße"), " strase ");
        assert_eq!(n("ÆSØP"), " aesop ");
    }

    #[test]
    fn compatibility_forms_fold() {
        assert_eq!(n("ｋｉｌｌ"), " kil ");
        assert_eq!(n("𝐤𝐢𝐥𝐥"), " kil ");
        assert_eq!(n("ⓚⓘⓛⓛ"), " kil ");
        assert_eq!(n("ﬁre"), " fire ");
    }

    #[test]
    fn cyrillic_and_greek_lookalikes() {
        // Cyrillic а, о and Greek ο inside Latin words.
        assert_eq!(n("b\u{430}d w\u{43E}rd g\u{3BF}od"), " bad word god ");
        assert_eq!(n("КILL"), " kil ");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(n("ki\u{200B}ll"), " kil ");
        assert_eq!(n("k\u{00AD}i\u{200D}l\u{FEFF}l"), " kil ");
    }

    #[test]
    fn leet_digits_and_symbols() {
        assert_eq!(n("h3ll0"), " helo ");
        assert_eq!(n("k1ll"), " kil ");
        assert_eq!(nl("s1ut"), " slut ");
        assert_eq!(n("s1ut"), " siut ");
        assert_eq!(n("@$$"), " as ");
        assert_eq!(n("$ex"), " sex ");
        assert_eq!(n("k!ll"), " kil ");
        assert_eq!(n("4ss"), " as ");
        assert_eq!(n("5t4b"), " stab ");
        assert_eq!(n("7hr347"), " threat ");
        assert_eq!(n("8omb"), " bomb ");
    }

    #[test]
    fn numbers_without_letters_stay_numbers() {
        assert_eq!(n("420"), " 420 ");
        assert_eq!(n("1488"), " 148 ");
        assert_eq!(n("$5 and 10!"), " 5 and 10 ");
        assert!(!normalize("10 apples", OneAs::I).ambiguous());
        assert!(normalize("k1ll", OneAs::I).ambiguous());
    }

    #[test]
    fn trailing_exclamation_marks_are_punctuation() {
        assert_eq!(n("kill!"), " kil ");
        assert_eq!(n("stop!!! now"), " stop now ");
        assert_eq!(n("!!!"), " ");
    }

    #[test]
    fn repeats_collapse_and_record_runs() {
        let norm = normalize("kiiiilll", OneAs::I);
        assert_eq!(norm.as_str(), " kil ");
        assert_eq!(norm.runs(), &[1, 1, 4, 3, 1]);
        let norm = normalize("ass", OneAs::I);
        assert_eq!(norm.runs(), &[1, 1, 2, 1]);
        // A multi-byte character collapses too; every byte carries the run.
        let norm = normalize("ддд", OneAs::I);
        assert_eq!(norm.as_str(), " д ");
        assert_eq!(norm.runs(), &[1, 3, 3, 1]);
    }

    #[test]
    fn spaced_letters_join() {
        assert_eq!(n("k i l l"), " kil ");
        assert_eq!(n("k.i.l.l"), " kil ");
        assert_eq!(n("k-i-l-l"), " kil ");
        assert_eq!(n("k - i - l - l"), " kil ");
        assert_eq!(n("k_i_l_l me"), " kil me ");
        assert_eq!(n("you are a s s"), " you are as ");
        assert_eq!(n("k 1 l l"), " kil ");
        assert_eq!(n("k! i! l l!!"), " kil ");
        // Gaps longer than three characters or line breaks do not join.
        assert_eq!(n("k    i"), " k i ");
        assert_eq!(n("k\ni"), " k i ");
        // A single one-letter word stays alone.
        assert_eq!(n("I am a cat"), " i am a cat ");
    }

    #[test]
    fn apostrophes_join_words() {
        assert_eq!(n("don't"), " dont ");
        assert_eq!(n("don’t"), " dont ");
        assert_eq!(n("'quoted'"), " quoted ");
        assert_eq!(n("rock 'n' roll"), " rock n rol ");
    }

    #[test]
    fn separators_become_one_space() {
        assert_eq!(n("kill,\n\t yourself!!"), " kil yourself ");
        assert_eq!(n("ab🙂cd"), " ab cd ");
        // One-character words around an emoji are spaced letters.
        assert_eq!(n("k🙂i🙂l🙂l"), " kil ");
    }

    #[test]
    fn spans_map_back_to_the_original() {
        let text = "Ünïcödé k.i.l.l ｋｉｌｌ";
        let norm = normalize(text, OneAs::I);
        assert_eq!(norm.as_str(), " unicode kil kil ");
        let s = norm.as_str();
        let at = |word: &str, from: usize| {
            let i = s[from..].find(word).unwrap() + from;
            let (a, b) = norm.original_span(i, i + word.len());
            &text[a..b]
        };
        assert_eq!(at("unicode", 0), "Ünïcödé");
        assert_eq!(at("kil", 0), "k.i.l.l");
        assert_eq!(at("kil", 10), "ｋｉｌｌ");
    }

    #[test]
    fn expansions_share_the_original_span() {
        let text = "große";
        let norm = normalize(text, OneAs::I);
        assert_eq!(norm.as_str(), " grose ");
        let i = norm.as_str().find('s').unwrap();
        let (a, b) = norm.original_span(i, i + 1);
        assert_eq!(&text[a..b], "ß");
        assert_eq!(norm.runs()[i], 2);
    }
}
