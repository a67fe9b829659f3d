//! Importing and exporting libraries as CSV.
//!
//! The first row names the columns, in any order: `term`, `category`,
//! `severity` (required) and `match`, `exceptions` (optional). For example:
//!
//! ```text
//! term,category,severity,match,exceptions
//! kill,violence,3,whole_word,kill time|kill the lights
//! kill yourself,bullying,5,phrase,
//! porn,adult content,4,contains,
//! ```
//!
//! `match` is `whole_word`, `phrase` or `contains`; left empty it is
//! `phrase` for a term of several words and `whole_word` otherwise.
//! `exceptions` separates phrases with `|`. Fields are trimmed, empty lines
//! are skipped, and a byte-order mark at the start is ignored.

use std::collections::HashMap;

use crate::library::{duplicate_key, Library, MatchType, Term};

/// Why a CSV library was rejected, with the line (1-based) it is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    /// The line of the input (1 = the header).
    pub line: u64,
    /// What is wrong there.
    pub message: String,
}

const COLUMNS: &str = "term, category, severity, match, exceptions";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Term,
    Category,
    Severity,
    Match,
    Exceptions,
}

impl Library {
    /// Parses a library from CSV (see the [module documentation](crate::csv_io)
    /// for the format). Every term is checked with [`Term::validate`], and a
    /// term may appear only once per category; the error names the line.
    pub fn from_csv(input: &str) -> Result<Library, CsvError> {
        let input = input.strip_prefix('\u{FEFF}').unwrap_or(input);
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(input.as_bytes());
        let mut records = reader.records();
        let err = |line: u64, message: String| CsvError { line, message };

        let header = match records.next() {
            Some(record) => record.map_err(|e| csv_error(&e))?,
            None => {
                return Err(err(
                    1,
                    format!("empty input: expected a header row naming the columns {COLUMNS}"),
                ))
            }
        };
        let header_line = header.position().map_or(1, |p| p.line());
        let mut columns = Vec::new();
        for name in header.iter() {
            let column = match name.to_ascii_lowercase().as_str() {
                "term" => Column::Term,
                "category" => Column::Category,
                "severity" => Column::Severity,
                "match" | "match_type" => Column::Match,
                "exceptions" => Column::Exceptions,
                _ => {
                    return Err(err(
                        header_line,
                        format!(
                            "unknown column {name:?} in the header row; the columns are {COLUMNS}"
                        ),
                    ))
                }
            };
            if columns.contains(&column) {
                return Err(err(
                    header_line,
                    format!("column {name:?} appears twice in the header row"),
                ));
            }
            columns.push(column);
        }
        for (required, name) in [
            (Column::Term, "term"),
            (Column::Category, "category"),
            (Column::Severity, "severity"),
        ] {
            if !columns.contains(&required) {
                return Err(err(
                    header_line,
                    format!("the header row has no {name:?} column (the first row must name the columns {COLUMNS})"),
                ));
            }
        }

        let mut terms = Vec::new();
        let mut seen: HashMap<_, u64> = HashMap::new();
        for record in records {
            let record = record.map_err(|e| csv_error(&e))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() > columns.len() {
                return Err(err(
                    line,
                    format!(
                        "{} fields, but the header row names {} columns",
                        record.len(),
                        columns.len()
                    ),
                ));
            }
            let field = |column: Column| {
                columns
                    .iter()
                    .position(|&c| c == column)
                    .and_then(|i| record.get(i))
                    .unwrap_or("")
            };
            let text = field(Column::Term);
            if text.is_empty() {
                return Err(err(line, "the term is empty".into()));
            }
            let category = field(Column::Category);
            if category.is_empty() {
                return Err(err(line, format!("term {text:?} has no category")));
            }
            let severity_field = field(Column::Severity);
            let severity = match severity_field.parse::<u8>() {
                Ok(s) if (1..=5).contains(&s) => s,
                _ => {
                    return Err(err(
                        line,
                        format!(
                            "severity must be a whole number from 1 to 5, not {severity_field:?}"
                        ),
                    ))
                }
            };
            let match_type = match field(Column::Match) {
                "" if text.split_whitespace().nth(1).is_some() => MatchType::Phrase,
                "" => MatchType::WholeWord,
                m => m.parse().map_err(|e| err(line, e))?,
            };
            let exceptions = field(Column::Exceptions)
                .split('|')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
            let term = Term {
                term: text.to_string(),
                category: category.to_string(),
                severity,
                match_type,
                exceptions,
            };
            term.validate().map_err(|e| err(line, e))?;
            if let Some(first) = seen.insert(duplicate_key(&term), line) {
                return Err(err(
                    line,
                    format!(
                        "term {text:?} in category {category:?} already appears on line {first}"
                    ),
                ));
            }
            terms.push(term);
        }
        Ok(Library { terms })
    }

    /// Writes the library as CSV with the columns
    /// `term,category,severity,match,exceptions`, which [`Library::from_csv`]
    /// reads back.
    pub fn to_csv(&self) -> String {
        let mut writer = ::csv::Writer::from_writer(Vec::new());
        let io = "writing CSV to memory cannot fail";
        writer
            .write_record(["term", "category", "severity", "match", "exceptions"])
            .expect(io);
        for t in &self.terms {
            let severity = t.severity.to_string();
            let exceptions = t.exceptions.join("|");
            writer
                .write_record([
                    t.term.as_str(),
                    t.category.as_str(),
                    severity.as_str(),
                    t.match_type.as_str(),
                    exceptions.as_str(),
                ])
                .expect(io);
        }
        let bytes = writer.into_inner().map_err(|e| e.into_error()).expect(io);
        String::from_utf8(bytes).expect("CSV of strings is UTF-8")
    }
}

fn csv_error(e: &::csv::Error) -> CsvError {
    CsvError {
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "term,category,severity,match,exceptions
kill,violence,3,whole_word,kill time| kill the lights
kill yourself,bullying,5,phrase,
\"guns, knives\",weapons,2,phrase,
porn,adult content,4,contains,
";

    #[test]
    fn parses_a_library() {
        let lib = Library::from_csv(SAMPLE).unwrap();
        assert_eq!(lib.len(), 4);
        assert_eq!(
            lib.terms[0],
            Term::new("kill", "violence", 3, MatchType::WholeWord)
                .with_exceptions(&["kill time", "kill the lights"])
        );
        assert_eq!(lib.terms[2].term, "guns, knives");
        assert_eq!(lib.terms[3].match_type, MatchType::Contains);
        assert_eq!(
            lib.categories(),
            vec!["adult content", "bullying", "violence", "weapons"]
        );
    }

    #[test]
    fn round_trips() {
        let lib = Library::from_csv(SAMPLE).unwrap();
        let csv = lib.to_csv();
        assert!(csv.starts_with("term,category,severity,match,exceptions\n"));
        assert!(csv.contains("kill,violence,3,whole_word,kill time|kill the lights\n"));
        assert_eq!(Library::from_csv(&csv).unwrap(), lib);
        let default = Library::default_library();
        assert_eq!(Library::from_csv(&default.to_csv()).unwrap(), default);
    }

    #[test]
    fn optional_columns_any_order_bom_and_blank_lines() {
        let csv =
            "\u{FEFF}Severity,Term,Category\n\n4,kill yourself,bullying\n2,loser,bullying\n\n";
        let lib = Library::from_csv(csv).unwrap();
        assert_eq!(
            lib.terms[0],
            Term::new("kill yourself", "bullying", 4, MatchType::Phrase)
        );
        assert_eq!(
            lib.terms[1],
            Term::new("loser", "bullying", 2, MatchType::WholeWord)
        );
        assert_eq!(
            Library::from_csv("term,category,severity\n").unwrap(),
            Library::default()
        );
    }

    #[test]
    fn errors_name_the_line() {
        let header = "term,category,severity,match,exceptions\n";
        let cases = [
            ("", "line 1: empty input: expected a header row naming the columns term, category, severity, match, exceptions"),
            (
                "kill,violence,3\n",
                "line 1: unknown column \"kill\" in the header row; the columns are term, category, severity, match, exceptions",
            ),
            ("term,category\n", "line 1: the header row has no \"severity\" column (the first row must name the columns term, category, severity, match, exceptions)"),
            ("term,term,severity\n", "line 1: column \"term\" appears twice in the header row"),
            ("kill,violence,9,whole_word,\n", "line 2: severity must be a whole number from 1 to 5, not \"9\""),
            ("kill,violence,high,whole_word,\n", "line 2: severity must be a whole number from 1 to 5, not \"high\""),
            ("kill,violence,,whole_word,\n", "line 2: severity must be a whole number from 1 to 5, not \"\""),
            ("kill,violence,3,regex,\n", "line 2: match type must be whole_word, phrase or contains, not \"regex\""),
            (",violence,3,whole_word,\n", "line 2: the term is empty"),
            ("kill,,3,whole_word,\n", "line 2: term \"kill\" has no category"),
            ("kill,violence,3,whole_word,,extra\n", "line 2: 6 fields, but the header row names 5 columns"),
            ("kill you,violence,3,whole_word,\n", "line 2: whole_word term \"kill you\" has several words: use match type phrase"),
            ("shoot,violence,3,whole_word,photo\n", "line 2: exception \"photo\" does not contain the term \"shoot\", so it could never apply"),
            (
                "kill,violence,3,,\n\nstab,violence,3,,\nKILL,Violence,4,,\n",
                "line 5: term \"KILL\" in category \"Violence\" already appears on line 2",
            ),
        ];
        for (body, want) in cases {
            let input = if body.is_empty()
                || body.starts_with("kill,violence,3\n")
                || body.starts_with("term,")
            {
                body.to_string()
            } else {
                format!("{header}{body}")
            };
            let got = Library::from_csv(&input).unwrap_err();
            assert_eq!(got.to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn quoted_fields_with_line_breaks_count_lines() {
        let csv = "term,category,severity\n\"kill\nyou\",violence,3\nstab,violence,x\n";
        // The quoted term spans lines 2-3; the bad severity is on line 4.
        let got = Library::from_csv(csv).unwrap_err();
        assert_eq!(got.line, 4);
    }
}
