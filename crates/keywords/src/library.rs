//! Keyword libraries: terms by category, with severity, match type and
//! exception phrases.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::normalize::normalize;

/// The library shipped with Lectern (`crates/keywords/default-library.csv`).
pub const DEFAULT_LIBRARY_CSV: &str = include_str!("../default-library.csv");

/// How a term must sit in the text to match. Every match type is applied to
/// the [normalized](crate::normalize) text and term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// One word, matched only as a whole word: `ass` does not match `class`,
    /// `assassin` or `passage`.
    WholeWord,
    /// Several words, matched on word boundaries with any separators between
    /// the words (`kill yourself`, `kill, yourself`). The words written
    /// together also match (`killyourself`, `#killyourself`, `AK47` for
    /// `ak-47`).
    Phrase,
    /// Anywhere, even inside a longer word: `porn` matches `pornography`.
    Contains,
}

impl MatchType {
    /// The name used in CSV and JSON: `whole_word`, `phrase` or `contains`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::WholeWord => "whole_word",
            MatchType::Phrase => "phrase",
            MatchType::Contains => "contains",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatchType {
    type Err = String;

    /// Parses `whole_word`, `phrase` or `contains` (any case; `-` or a space
    /// may stand for `_`).
    fn from_str(s: &str) -> Result<MatchType, String> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "whole_word" => Ok(MatchType::WholeWord),
            "phrase" => Ok(MatchType::Phrase),
            "contains" => Ok(MatchType::Contains),
            _ => Err(format!(
                "match type must be whole_word, phrase or contains, not {s:?}"
            )),
        }
    }
}

/// One term of a library.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Term {
    /// The word or phrase, as a teacher would write it (`kill yourself`).
    pub term: String,
    /// The category, a free non-empty label (`bullying`, `self-harm`, …).
    pub category: String,
    /// 1 (lowest) to 5 (highest).
    pub severity: u8,
    /// How the term must sit in the text.
    pub match_type: MatchType,
    /// Phrases that suppress a match lying inside one of them (`photo shoot`
    /// for `shoot`). Each must contain the term.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
}

impl Term {
    /// A term without exceptions.
    pub fn new(term: &str, category: &str, severity: u8, match_type: MatchType) -> Term {
        Term {
            term: term.to_string(),
            category: category.to_string(),
            severity,
            match_type,
            exceptions: Vec::new(),
        }
    }

    /// The same term with these exception phrases.
    pub fn with_exceptions<S: AsRef<str>>(mut self, exceptions: &[S]) -> Term {
        self.exceptions = exceptions.iter().map(|e| e.as_ref().to_string()).collect();
        self
    }

    /// Checks the term on its own; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let term = self.term.trim();
        if term.is_empty() {
            return Err("term is empty".into());
        }
        if self.category.trim().is_empty() {
            return Err(format!("term {term:?} has an empty category"));
        }
        if !(1..=5).contains(&self.severity) {
            return Err(format!("severity must be 1 to 5, not {}", self.severity));
        }
        let norm = normalize(term);
        if norm.spelled().is_empty() {
            return Err(format!("term {term:?} has no letters or digits"));
        }
        if self.match_type == MatchType::WholeWord && norm.spelled().contains(' ') {
            return Err(format!(
                "whole_word term {term:?} has several words: use match type phrase"
            ));
        }
        for exception in &self.exceptions {
            if exception.contains('|') {
                return Err(format!(
                    "exception {exception:?} contains '|', which separates exceptions"
                ));
            }
            let ex = normalize(exception);
            if ex.spelled().is_empty() {
                return Err(format!(
                    "exception {exception:?} of term {term:?} has no letters or digits"
                ));
            }
            if !ex.as_str().contains(norm.as_str().trim()) {
                return Err(format!(
                    "exception {exception:?} does not contain the term {term:?}, so it could never apply"
                ));
            }
        }
        Ok(())
    }
}

/// A term spelled out after folding (case, width, accents, separators).
fn normalized_core(s: &str) -> String {
    normalize(s).spelled().to_string()
}

/// A term that [`Library::validate`] rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("term {index} ({term:?}): {message}")]
pub struct LibraryError {
    /// The term's index in [`Library::terms`].
    pub index: usize,
    /// The term as written.
    pub term: String,
    /// What is wrong with it.
    pub message: String,
}

/// A keyword library: the terms a [`Scanner`](crate::Scanner) looks for.
///
/// Serializes to JSON as `{"terms": [{"term": "…", "category": "…",
/// "severity": 3, "match_type": "whole_word", "exceptions": ["…"]}, …]}`.
/// A library built by hand or deserialized may break the rules that
/// [`Library::from_csv`] enforces; [`Library::validate`] checks them. The
/// scanner works with any library and ignores terms that cannot match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// The terms, in the order given.
    pub terms: Vec<Term>,
}

impl Library {
    /// A library of these terms (not validated).
    pub fn new(terms: Vec<Term>) -> Library {
        Library { terms }
    }

    /// The library shipped with Lectern: about 300 terms in the categories
    /// bullying, self-harm, radicalisation, adult content, drugs, weapons,
    /// violence and grooming.
    pub fn default_library() -> Library {
        Library::from_csv(DEFAULT_LIBRARY_CSV)
            .expect("the shipped default library is valid (tested)")
    }

    /// The distinct categories, sorted.
    pub fn categories(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.terms.iter().map(|t| t.category.as_str()).collect();
        set.into_iter().collect()
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the library has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Checks every term ([`Term::validate`]) and that no term appears twice
    /// in one category (compared after normalization).
    pub fn validate(&self) -> Result<(), LibraryError> {
        let mut seen = HashMap::new();
        for (index, term) in self.terms.iter().enumerate() {
            let err = |message: String| LibraryError {
                index,
                term: term.term.clone(),
                message,
            };
            term.validate().map_err(err)?;
            if let Some(first) = seen.insert(duplicate_key(term), index) {
                return Err(err(format!("same term and category as term {first}")));
            }
        }
        Ok(())
    }
}

/// What makes two terms duplicates: the same normalized term and category
/// (any case).
pub(crate) fn duplicate_key(term: &Term) -> (String, String) {
    (
        normalized_core(&term.term),
        term.category.trim().to_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_type_parses_and_prints() {
        for m in [MatchType::WholeWord, MatchType::Phrase, MatchType::Contains] {
            assert_eq!(m.as_str().parse::<MatchType>(), Ok(m));
        }
        assert_eq!("Whole-Word".parse::<MatchType>(), Ok(MatchType::WholeWord));
        assert_eq!("whole word".parse::<MatchType>(), Ok(MatchType::WholeWord));
        assert!("regex"
            .parse::<MatchType>()
            .unwrap_err()
            .contains("\"regex\""));
    }

    #[test]
    fn term_validation() {
        let ok = Term::new("shoot", "violence", 3, MatchType::WholeWord)
            .with_exceptions(&["photo shoot"]);
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                Term::new(" ", "x", 1, MatchType::WholeWord),
                "term is empty",
            ),
            (
                Term::new("kill", " ", 1, MatchType::WholeWord),
                "empty category",
            ),
            (
                Term::new("kill", "x", 0, MatchType::WholeWord),
                "severity must be 1 to 5, not 0",
            ),
            (
                Term::new("kill", "x", 6, MatchType::WholeWord),
                "severity must be 1 to 5, not 6",
            ),
            (
                Term::new("?!", "x", 1, MatchType::WholeWord),
                "no letters or digits",
            ),
            (
                Term::new("kill you", "x", 1, MatchType::WholeWord),
                "use match type phrase",
            ),
            (ok.clone().with_exceptions(&["photo"]), "could never apply"),
            (ok.clone().with_exceptions(&["photo|shoot"]), "contains '|'"),
            (ok.clone().with_exceptions(&["--"]), "no letters or digits"),
        ];
        for (term, want) in cases {
            let got = term.validate().unwrap_err();
            assert!(got.contains(want), "{term:?}: {got}");
        }
    }

    #[test]
    fn library_validation_finds_duplicates() {
        let lib = Library::new(vec![
            Term::new("kill", "violence", 3, MatchType::WholeWord),
            Term::new("kill", "bullying", 3, MatchType::WholeWord),
            Term::new("KILL", "Violence", 4, MatchType::WholeWord),
        ]);
        let err = lib.validate().unwrap_err();
        assert_eq!(err.index, 2);
        assert_eq!(
            err.to_string(),
            "term 2 (\"KILL\"): same term and category as term 0"
        );
    }

    #[test]
    fn default_library_is_valid_and_broad() {
        let lib = Library::default_library();
        lib.validate().unwrap();
        assert!((150..=300).contains(&lib.len()), "{} terms", lib.len());
        for category in [
            "bullying",
            "self-harm",
            "radicalisation",
            "adult content",
            "drugs",
            "weapons",
            "violence",
            "grooming",
        ] {
            assert!(lib.categories().contains(&category), "{category}");
        }
        for m in [MatchType::WholeWord, MatchType::Phrase, MatchType::Contains] {
            assert!(lib.terms.iter().any(|t| t.match_type == m), "{m}");
        }
    }

    #[test]
    fn json_shape() {
        let lib = Library::new(vec![
            Term::new("shoot", "violence", 3, MatchType::WholeWord)
                .with_exceptions(&["photo shoot"]),
            Term::new("porn", "adult content", 4, MatchType::Contains),
        ]);
        let json = serde_json::to_string(&lib).unwrap();
        assert_eq!(
            json,
            r#"{"terms":[{"term":"shoot","category":"violence","severity":3,"match_type":"whole_word","exceptions":["photo shoot"]},{"term":"porn","category":"adult content","severity":4,"match_type":"contains"}]}"#
        );
        assert_eq!(serde_json::from_str::<Library>(&json).unwrap(), lib);
    }
}
