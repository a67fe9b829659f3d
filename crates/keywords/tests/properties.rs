//! Property tests: spans, robustness, evasion and CSV round trips.

use std::sync::OnceLock;

use lectern_keywords::normalize::normalize;
use lectern_keywords::{Library, MatchType, Scanner, Term};
use proptest::prelude::*;

fn default_scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&Library::default_library()).unwrap())
}

fn one_term(term: &str) -> Scanner {
    Scanner::new(&Library::new(vec![Term::new(
        term,
        "test",
        3,
        MatchType::WholeWord,
    )]))
    .unwrap()
}

/// Text pieces: default terms (some in leet), tricky characters, random text.
fn piece() -> impl Strategy<Value = String> {
    let terms: Vec<String> = Library::default_library()
        .terms
        .into_iter()
        .map(|t| t.term)
        .collect();
    prop_oneof![
        prop::sample::select(terms.clone()),
        prop::sample::select(terms)
            .prop_map(|t| t.replace('i', "1").replace('e', "3").replace('o', "0")),
        prop::sample::select(vec![
            " ", ".", "-", "!", "!!", "@", "$", "'", "’", "1", "|", "\n", "\r\n", "\u{200B}",
            "\u{301}", "\u{FEFF}", "ß", "ﬁ", "½", "İ", "Å", "é", "ｋ", "𝐤", "😀", "👍🏽", "日本",
            "д", "ΣΑΣ", "\u{0}", "k i l l", "a s s",
        ])
        .prop_map(str::to_string),
        "\\PC{0,12}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|v| v.concat())
}

/// Separators that may stand between spaced-out letters.
fn gap() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", ".", "-", "_", "*", " . ", " - ", "  ", "/", "🙂"])
}

/// Ways to write `c` that read as `c`: itself, upper case, fullwidth, and
/// the digits and symbols that stand for it.
fn stand_ins(c: char) -> Vec<String> {
    let mut v = vec![
        c.to_string(),
        c.to_ascii_uppercase().to_string(),
        char::from_u32(0xFF41 + (c as u32 - 'a' as u32))
            .unwrap()
            .to_string(),
    ];
    let leet: &[&str] = match c {
        'a' => &["4", "@"],
        'b' => &["8"],
        'c' => &["("],
        'e' => &["3"],
        'g' => &["9"],
        'i' => &["1", "|", "!"],
        'l' => &["1", "|"],
        'o' => &["0"],
        's' => &["5", "$"],
        't' => &["7", "+"],
        _ => &[],
    };
    v.extend(leet.iter().map(|s| s.to_string()));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn spans_slice_the_original_on_char_boundaries(text in text()) {
        for m in default_scanner().scan(&text) {
            prop_assert!(m.start < m.end, "{m:?}");
            prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end), "{m:?}");
            prop_assert_eq!(&text[m.start..m.end], m.matched.as_str());
        }
    }

    #[test]
    fn scanning_never_panics(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        default_scanner().scan(&text);
        default_scanner().scan(&String::from_utf8_lossy(&bytes));
        let norm = normalize(&text);
        prop_assert!(norm.as_str().starts_with(' ') && norm.as_str().ends_with(' '));
    }

    #[test]
    fn matches_are_sorted_and_not_nested(text in text()) {
        let matches = default_scanner().scan(&text);
        for pair in matches.windows(2) {
            prop_assert!((pair[0].start, std::cmp::Reverse(pair[0].end)) <= (pair[1].start, std::cmp::Reverse(pair[1].end)));
        }
        for a in &matches {
            for b in &matches {
                let nested = b.start <= a.start && a.end <= b.end && (a.start, a.end) != (b.start, b.end);
                prop_assert!(!nested, "{a:?} inside {b:?}");
            }
        }
    }

    #[test]
    fn spaced_out_letters_still_match(
        term in "[a-z]{3,8}",
        gaps in prop::collection::vec(gap(), 7),
        before in prop::sample::select(vec!["", "hey ", "so you ", "lol. "]),
        after in prop::sample::select(vec!["", " now", "!", " ok?", "\nbye"]),
    ) {
        prop_assume!(!before.contains(term.as_str()) && !after.contains(term.as_str()));
        let mut spaced = String::new();
        for (i, c) in term.chars().enumerate() {
            if i > 0 {
                spaced.push_str(gaps[i - 1]);
            }
            spaced.push(c);
        }
        let text = format!("{before}{spaced}{after}");
        let matches = one_term(&term).scan(&text);
        prop_assert_eq!(matches.len(), 1, "{:?}", text);
        prop_assert_eq!(&matches[0].matched, &spaced);
    }

    #[test]
    fn case_accents_repeats_and_invisibles_still_match(
        term in "[a-z]{3,8}",
        // A letter written twice is a spelling (`looser`), not stretching:
        // stretched letters come three times or more.
        styles in prop::collection::vec((any::<bool>(), prop::sample::select(vec![1usize, 1, 3, 4, 7]), 0usize..4, any::<bool>()), 8),
    ) {
        let mut disguised = String::new();
        for (c, &(upper, repeat, accent, zwsp)) in term.chars().zip(&styles) {
            for _ in 0..repeat {
                disguised.push(if upper { c.to_ascii_uppercase() } else { c });
                match accent {
                    1 => disguised.push('\u{301}'),
                    2 => disguised.push('\u{308}'),
                    _ => {}
                }
            }
            if zwsp {
                disguised.push('\u{200B}');
            }
        }
        let disguised = disguised.trim_end_matches('\u{200B}').to_string();
        let text = format!("look: {disguised}, ok");
        let matches = one_term(&term).scan(&text);
        prop_assert_eq!(matches.len(), 1, "{:?}", text);
        prop_assert_eq!(&matches[0].matched, &disguised);
    }

    #[test]
    fn a_term_inside_a_longer_word_does_not_match(
        term in "[a-z]{3,8}",
        prefix in "[a-z]{1,3}",
        suffix in "[a-z]{1,3}",
    ) {
        // Keep the word's first and last letters from merging with the term's.
        prop_assume!(!prefix.ends_with(&term[..1]) && !suffix.starts_with(&term[term.len() - 1..]));
        prop_assume!(prefix != term && suffix != term);
        let scanner = one_term(&term);
        for text in [format!("a {prefix}{term}{suffix} b"), format!("{prefix}{term}"), format!("{term}{suffix}")] {
            prop_assert!(scanner.scan(&text).is_empty(), "{:?}", text);
        }
        prop_assert_eq!(scanner.scan(&format!("{prefix} {term} {suffix}")).len(), 1);
    }

    #[test]
    fn csv_round_trips(terms in prop::collection::vec(
        (
            prop::collection::vec("[a-z]{2,8}", 1..4),
            prop::sample::select(vec!["bullying", "self-harm", "adult, \"explicit\"", "drugs"]),
            1u8..=5,
            any::<bool>(),
            prop::collection::vec("[a-z]{2,6}", 0..3),
        ),
        0..20,
    )) {
        let mut lib = Library::default();
        for (words, category, severity, contains, extra) in terms {
            let term = words.join(" ");
            let match_type = match (contains, words.len()) {
                (true, _) => MatchType::Contains,
                (false, 1) => MatchType::WholeWord,
                _ => MatchType::Phrase,
            };
            let exceptions: Vec<String> = extra.iter().map(|e| format!("{term} {e}")).collect();
            let t = Term::new(&term, category, severity, match_type).with_exceptions(&exceptions);
            lib.terms.push(t);
            if lib.validate().is_err() {
                lib.terms.pop();
            }
        }
        let csv = lib.to_csv();
        prop_assert_eq!(Library::from_csv(&csv).unwrap(), lib);
    }

    /// A disguised term is found if and only if every character stands for
    /// its letter: each letter written as itself, in upper case, fullwidth,
    /// or as a digit or symbol that reads as it (ambiguous ones included),
    /// with zero-width characters between; one wrong letter and it is not.
    #[test]
    fn a_disguised_term_is_found_iff_every_stand_in_reads_as_its_letter(
        term in "[a-z]{3,8}",
        picks in prop::collection::vec((0usize..16, any::<bool>()), 8),
        wrong in prop::option::of(1usize..8),
    ) {
        let chars: Vec<char> = term.chars().collect();
        let mut text = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let options = stand_ins(c);
            // The first letter stays a letter (a word of digits alone is a
            // number), and a `!` ending a word is punctuation.
            let mut pick = if i == 0 { picks[i].0 % 3 } else { picks[i].0 % options.len() };
            if i + 1 == chars.len() && options[pick] == "!" {
                pick = 0;
            }
            if wrong == Some(i) && i < chars.len() {
                text.push(char::from(b'a' + (c as u8 - b'a' + 13) % 26));
            } else {
                text.push_str(&options[pick]);
            }
            if picks[i].1 && i + 1 < chars.len() {
                text.push('\u{200B}');
            }
        }
        let bad = matches!(wrong, Some(i) if i < chars.len());
        let matches = one_term(&term).scan(&format!("look: {text}, ok"));
        prop_assert_eq!(matches.len(), usize::from(!bad), "{:?}", text);
    }

    /// Folding never splits a character: every match, in any reading,
    /// starts and ends on a character boundary, and the spelled form never
    /// panics on any input.
    #[test]
    fn folding_keeps_char_boundaries(text in "\\PC{0,40}") {
        let norm = normalize(&text);
        prop_assert!(norm.as_str().starts_with(' '));
        for m in default_scanner().scan(&text) {
            prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        }
    }
}
