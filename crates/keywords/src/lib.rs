//! Keyword detection for safeguarding.
//!
//! A [`Library`] holds terms by category, each with a severity (1–5), a
//! [`MatchType`] and exception phrases. Lectern ships a default library
//! ([`Library::default_library`], `crates/keywords/default-library.csv`);
//! schools import and export their own as CSV ([`Library::from_csv`],
//! [`Library::to_csv`]) or JSON (serde).
//!
//! A [`Scanner`] built from a library finds its terms in text in one pass:
//! the text is [folded](normalize) into a small alphabet of classes (the
//! same folding as the terms), one Aho-Corasick automaton runs over it, and
//! the rare candidates are checked exactly against the original. So
//! `K I L L`, `k1ll`, `|<!||`, `k.i.l.l`, `kiiiill`, `k\u{200B}ill`,
//! `ｋｉｌｌ`, `кіll` and `ķïłł` all match `kill`, while whole-word matching
//! keeps `ass` out of `class` and `rape` out of `grape`, and spelling keeps
//! `loser` out of `looser`. Every [`Match`] carries the original text it
//! matched and its byte span.
//!
//! ```
//! use lectern_keywords::{Library, Scanner};
//!
//! let scanner = Scanner::new(&Library::default_library()).unwrap();
//! let text = "just k i l l    y0urs3lf lol. anyway, the photo shoot is at 3";
//! let matches = scanner.scan(text);
//! assert_eq!(matches.len(), 1);
//! assert_eq!(matches[0].term, "kill yourself");
//! assert_eq!(matches[0].matched, "k i l l    y0urs3lf");
//! assert_eq!(&text[matches[0].start..matches[0].end], matches[0].matched);
//! ```

pub mod csv_io;
pub mod library;
pub mod normalize;
pub mod scanner;

use std::io::{self, BufRead, Write};

use serde::Serialize;

pub use csv_io::CsvError;
pub use library::{Library, LibraryError, MatchType, Term, DEFAULT_LIBRARY_CSV};
pub use scanner::{BuildError, Match, Scanner};

/// One line of [`scan_lines_to_json`]'s output: a match and the line it is on.
#[derive(Clone, Debug, Serialize)]
pub struct LineMatch<'a> {
    /// The line number, from 1.
    pub line: u64,
    /// The match; its `start` and `end` are byte offsets within the line.
    #[serde(flatten)]
    pub found: &'a Match,
}

/// Scans `reader` line by line and writes one JSON object per match, one per
/// line, to `writer`:
///
/// ```text
/// {"line":2,"term":"kill yourself","category":"bullying","severity":5,"match_type":"phrase","matched":"K1LL YOURSELF","start":4,"end":17}
/// ```
///
/// `start` and `end` are byte offsets within the line (without its line
/// ending). Lines that are not valid UTF-8 are scanned with invalid bytes
/// replaced by U+FFFD, and the offsets then refer to that repaired line.
/// Returns the number of matches written.
pub fn scan_lines_to_json<R: BufRead, W: Write>(
    mut reader: R,
    mut writer: W,
    scanner: &Scanner,
) -> io::Result<u64> {
    let mut lines = LineWriter::default();
    // Whole lines are taken in place from a large buffer: copying each line
    // out and checking its UTF-8 alone cost more than a tenth of the time.
    // Zeroed once: `buf[..filled]` is text not yet scanned (the start of a
    // line), the rest room to read into.
    let mut buf = vec![0; READ_CHUNK];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // A line longer than the buffer.
            buf.resize(2 * buf.len(), 0);
        }
        let n = read_some(&mut reader, &mut buf[filled..])?;
        if n == 0 {
            // The last line, without a line ending.
            if filled > 0 {
                lines.scan_line(&buf[..filled], scanner);
            }
            break;
        }
        let read_from = filled;
        filled += n;
        let Some(nl) = memchr::memrchr(b'\n', &buf[read_from..filled]) else {
            continue;
        };
        let lines_end = read_from + nl + 1;
        lines.scan_chunk(&buf[..lines_end], scanner);
        buf.copy_within(lines_end..filled, 0);
        filled -= lines_end;
        if lines.out.len() >= FLUSH_AT {
            writer.write_all(&lines.out)?;
            lines.out.clear();
        }
    }
    writer.write_all(&lines.out)?;
    writer.flush()?;
    Ok(lines.count)
}

/// How much [`scan_lines_to_json`] reads at a time.
const READ_CHUNK: usize = 1 << 20;
/// How much JSON [`scan_lines_to_json`] gathers before writing it.
const FLUSH_AT: usize = 1 << 16;

/// `reader.read`, tried again when interrupted.
fn read_some<R: BufRead>(reader: &mut R, into: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(into) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            done => return done,
        }
    }
}

/// Scans lines and gathers their matches as JSON lines.
#[derive(Default)]
struct LineWriter {
    /// Lines scanned so far.
    line: u64,
    /// Matches written so far.
    count: u64,
    /// JSON not yet written out.
    out: Vec<u8>,
}

impl LineWriter {
    /// Scans whole lines, each ended by `\n`.
    fn scan_chunk(&mut self, chunk: &[u8], scanner: &Scanner) {
        // Checking the UTF-8 of the chunk at once is as good as line by
        // line (`\n` never ends inside a character) and far cheaper.
        match simdutf8::basic::from_utf8(chunk) {
            Ok(text) => self.scan_lines(text, scanner),
            Err(_) => {
                // (Without the last `\n`, or `split` yields an empty line
                // after it.)
                for line in chunk[..chunk.len() - 1].split(|&b| b == b'\n') {
                    self.scan_line(line, scanner);
                }
            }
        }
    }

    /// Scans whole valid lines at once ([`Scanner::scan_each_line`]),
    /// numbering them as it goes: the matches come in order of start, so
    /// the line ends before each are counted once.
    fn scan_lines(&mut self, text: &str, scanner: &Scanner) {
        let first_line = self.line + 1;
        let (mut line, mut line_start, mut counted) = (first_line, 0, 0);
        let out = &mut self.out;
        let mut count = 0;
        scanner.scan_each_line(text, |start, end, term| {
            for nl in memchr::memchr_iter(b'\n', &text.as_bytes()[counted..start]) {
                line += 1;
                line_start = counted + nl + 1;
            }
            counted = start;
            let at = (start - line_start, end - line_start);
            write_match(out, line, term, &text[start..end], at.0, at.1);
            count += 1;
        });
        self.count += count;
        // The line ends up to the last match are counted already; the rest
        // once more (`text` ends with one).
        let rest = memchr::memchr_iter(b'\n', &text.as_bytes()[counted..]).count() as u64;
        self.line = line - 1 + rest;
    }

    /// Scans one line, repairing invalid UTF-8.
    fn scan_line(&mut self, line: &[u8], scanner: &Scanner) {
        match std::str::from_utf8(line) {
            Ok(text) => self.scan_text(text, scanner),
            Err(_) => self.scan_text(&String::from_utf8_lossy(line), scanner),
        }
    }

    /// Scans one valid line, without its `\n`, and writes its matches.
    fn scan_text(&mut self, text: &str, scanner: &Scanner) {
        self.line += 1;
        let text = text.trim_end_matches(['\n', '\r']);
        let (line, out) = (self.line, &mut self.out);
        scanner.scan_each(text, |start, end, term| {
            write_match(out, line, term, &text[start..end], start, end);
            self.count += 1;
        });
    }
}

/// Writes `value` as JSON: serde_json's escaping, so that the output is
/// byte for byte what serialising a [`LineMatch`] gives.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a `Vec` cannot fail, nor can serialising a string or
    // a unit variant.
    let _ = serde_json::to_writer(out, value);
}

/// Writes one match as [`LineMatch`] serialises it, without building the
/// [`Match`]: its term and category are borrowed from the scanner.
fn write_match(out: &mut Vec<u8>, line: u64, term: &Term, matched: &str, start: usize, end: usize) {
    let _ = write!(out, "{{\"line\":{line},\"term\":");
    json(out, term.term.as_str());
    out.extend_from_slice(b",\"category\":");
    json(out, term.category.as_str());
    let _ = write!(out, ",\"severity\":{},\"match_type\":", term.severity);
    json(out, &term.match_type);
    out.extend_from_slice(b",\"matched\":");
    json(out, matched);
    let _ = writeln!(out, ",\"start\":{start},\"end\":{end}}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines() {
        let scanner = Scanner::new(&Library::default_library()).unwrap();
        let input: &[u8] = b"hello there\r\nyou should KILL URSELF\nnothing\xff here\ngo d1e\n";
        let mut out = Vec::new();
        let n = scan_lines_to_json(input, &mut out, &scanner).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(n, 2, "{out}");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["line"], 2);
        assert_eq!(lines[0]["term"], "kill urself");
        assert_eq!(lines[0]["category"], "bullying");
        assert_eq!(lines[0]["match_type"], "phrase");
        assert_eq!(lines[0]["matched"], "KILL URSELF");
        assert_eq!(lines[0]["start"], 11);
        assert_eq!(lines[0]["end"], 22);
        assert_eq!(lines[1]["line"], 4);
        assert_eq!(lines[1]["term"], "go die");
        assert_eq!(lines[1]["matched"], "go d1e");
    }

    /// The straightforward version: a copy of each line, a `Match` per
    /// match, serde for the JSON.
    fn reference(input: &[u8], scanner: &Scanner) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, line) in input.split_inclusive(|&b| b == b'\n').enumerate() {
            let mut line = line.to_vec();
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            for found in scanner.scan(&String::from_utf8_lossy(&line)) {
                let line = (k + 1) as u64;
                serde_json::to_writer(
                    &mut out,
                    &LineMatch {
                        line,
                        found: &found,
                    },
                )
                .unwrap();
                out.push(b'\n');
            }
        }
        out
    }

    /// Hands out at most 7 bytes a read, so that lines straddle reads.
    struct Trickle<'a>(&'a [u8]);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn json_lines_as_serde_writes_them() {
        let mut library = Library::default_library();
        // Characters JSON escapes, in a term and a category.
        library.terms[0].term = "kill \"quoted\\".into();
        library.terms[0].category = "tab\there\u{1}".into();
        let scanner = Scanner::new(&library).unwrap();
        let input: &[u8] = b"kill \"quoted\\ \xe2\x80\x8b k\xc3\xafll\r\r\n\n\xffgo d1e \"k1ll\"\n\
            \xc3\xa9 kill yourself \xe2\x9c\x8c\r\nno newline: go die";
        let expected = reference(input, &scanner);
        let text = String::from_utf8_lossy(&expected);
        assert!(text.contains(r#""category":"tab\there\u0001""#), "{text}");
        assert!(text.contains(r#""line":5,"#), "{text}");
        let mut out = Vec::new();
        let n = scan_lines_to_json(input, &mut out, &scanner).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(n as usize, expected.iter().filter(|&&b| b == b'\n').count());
        let mut out = Vec::new();
        let trickle = io::BufReader::with_capacity(3, Trickle(input));
        scan_lines_to_json(trickle, &mut out, &scanner).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn lines_longer_than_the_read_buffer() {
        let scanner = Scanner::new(&Library::default_library()).unwrap();
        let long = format!("{}kill\n", "words ".repeat(READ_CHUNK / 3));
        let input = format!("go die\n{long}{long}kill");
        let mut out = Vec::new();
        let n = scan_lines_to_json(input.as_bytes(), &mut out, &scanner).unwrap();
        assert_eq!(n, 4);
        assert_eq!(out, reference(input.as_bytes(), &scanner));
    }
}
