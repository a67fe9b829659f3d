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
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut count = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        // Checking alone is several times faster than `from_utf8_lossy`,
        // which takes valid text in small chunks.
        let text = match std::str::from_utf8(&buf) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&buf),
        };
        for found in scanner.scan(&text) {
            serde_json::to_writer(
                &mut writer,
                &LineMatch {
                    line,
                    found: &found,
                },
            )?;
            writer.write_all(b"\n")?;
            count += 1;
        }
    }
    writer.flush()?;
    Ok(count)
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
}
