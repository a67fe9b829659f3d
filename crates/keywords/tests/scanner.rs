//! Scanner behaviour: evasion, the Scunthorpe problem, exceptions, spans.

use std::sync::OnceLock;

use lectern_keywords::{Library, Match, MatchType, Scanner, Term};

fn default_scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&Library::default_library()).unwrap())
}

fn scanner(terms: Vec<Term>) -> Scanner {
    Scanner::new(&Library::new(terms)).unwrap()
}

fn ww(term: &str) -> Term {
    Term::new(term, "test", 3, MatchType::WholeWord)
}

/// (term, matched) pairs.
fn found(scanner: &Scanner, text: &str) -> Vec<(String, String)> {
    let matches = scanner.scan(text);
    for m in &matches {
        assert_eq!(&text[m.start..m.end], m.matched, "{m:?}");
    }
    matches.into_iter().map(|m| (m.term, m.matched)).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn scanner_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Scanner>();
}

#[test]
fn every_default_term_finds_itself() {
    let s = default_scanner();
    for term in &Library::default_library().terms {
        for text in [
            term.term.clone(),
            term.term.to_uppercase(),
            format!("well, {} ok", term.term),
        ] {
            let matches = s.scan(&text);
            assert!(
                matches
                    .iter()
                    .any(|m| m.term == term.term && m.category == term.category),
                "{text:?} -> {matches:?}"
            );
        }
    }
}

#[test]
fn evasive_spellings_match() {
    let s = default_scanner();
    let k = "kill yourself";
    for text in [
        "kill yourself",
        "KILL YOURSELF",
        "Kill Yourself!!!",
        "k i l l yourself",
        "k.i.l.l y.o.u.r.s.e.l.f",
        "k-i-l-l    yourself",
        "k1ll y0urs3lf",
        "ki11 yourself",
        "kiiiiill yourrrrself",
        "ｋｉｌｌ ｙｏｕｒｓｅｌｆ",
        "ķïłł yõurśélf",
        "k\u{200B}ill your\u{00AD}self",
        "killyourself",
        "#KillYourself",
        "kill,\n yourself",
        "𝐤𝐢𝐥𝐥 𝐲𝐨𝐮𝐫𝐬𝐞𝐥𝐟",
        "к\u{456}ll у\u{43E}urself",
    ] {
        let got = found(s, text);
        assert_eq!(got.len(), 1, "{text:?} -> {got:?}");
        assert_eq!(got[0].0, k, "{text:?}");
        assert_eq!(
            got[0].1,
            text.trim_end_matches('!').trim_start_matches('#'),
            "{text:?}"
        );
    }
}

#[test]
fn the_digit_one_reads_as_i_or_l() {
    let s = scanner(vec![ww("slut"), ww("kill"), ww("pills")]);
    assert_eq!(found(&s, "s1ut"), pairs(&[("slut", "s1ut")]));
    assert_eq!(found(&s, "k1ll"), pairs(&[("kill", "k1ll")]));
    assert_eq!(found(&s, "ki11"), pairs(&[("kill", "ki11")]));
    assert_eq!(
        found(&s, "p1lls and k1ll"),
        pairs(&[("pills", "p1lls"), ("kill", "k1ll")])
    );
    assert_eq!(found(&s, "1 11 111 2011"), pairs(&[]));
}

#[test]
fn look_alike_symbols() {
    let s = scanner(vec![ww("ass"), ww("sex")]);
    for text in [
        "a$$", "@ss", "@$$", "4ss", "a s s", "a55", "$ex", "s3x", "5 e x",
    ] {
        assert_eq!(found(&s, text).len(), 1, "{text}");
    }
    // Prices and plain numbers are not words.
    assert_eq!(found(&s, "$5 or $55, 455 people"), pairs(&[]));
}

#[test]
fn scunthorpe_whole_words() {
    let s = scanner(vec![
        ww("ass"),
        ww("cunt"),
        ww("penis"),
        ww("sex"),
        ww("anal"),
        ww("cum"),
        ww("rape"),
    ]);
    for innocent in [
        "class",
        "assassin",
        "passage",
        "bass",
        "embarrass",
        "assume",
        "Massachusetts",
        "as",
        "Scunthorpe",
        "Penistone",
        "Middlesex",
        "Sussex",
        "Essex",
        "sextant",
        "analysis",
        "canal",
        "document",
        "cucumber",
        "circumstance",
        "accumulate",
        "grape",
        "drape",
        "scraped",
        "therapist",
        "a sassy class assessment",
    ] {
        assert_eq!(found(&s, innocent), pairs(&[]), "{innocent}");
    }
    assert_eq!(found(&s, "you ass"), pairs(&[("ass", "ass")]));
    assert_eq!(found(&s, "what an aaassss"), pairs(&[("ass", "aaassss")]));
    assert_eq!(
        found(&s, "Scunthorpe is not a cunt"),
        pairs(&[("cunt", "cunt")])
    );
}

#[test]
fn default_library_leaves_innocent_text_alone() {
    let s = default_scanner();
    let text = "The class assessment on Massachusetts passages was hard. Our therapist says \
        the grapes in Sussex and Middlesex are great, so I need to skill up, analyse the canal \
        and its documents, and stabilise the method. A heroine begun a bombastic Wednesday \
        wedding; the shot was good, and the bass player killed it at the photo shoot. \
        Can I have a diet coke? Let's kill time before the water pistol fight.";
    assert_eq!(found(s, text), pairs(&[]));
}

#[test]
fn runs_must_be_at_least_as_long_as_the_terms() {
    let s = scanner(vec![ww("kkk"), ww("weed"), ww("shoot"), ww("kill")]);
    assert_eq!(found(&s, "kk"), pairs(&[]));
    assert_eq!(found(&s, "k kk"), pairs(&[]));
    // Spaced letters with marks between, one of them stretched, join.
    assert_eq!(found(&s, "k-kk"), pairs(&[("kkk", "k-kk")]));
    assert_eq!(
        found(&s, "kkk kkkkk"),
        pairs(&[("kkk", "kkk"), ("kkk", "kkkkk")])
    );
    assert_eq!(found(&s, "wed shot kil"), pairs(&[]));
    assert_eq!(
        found(&s, "weeeeed shoooot kiiilll"),
        pairs(&[
            ("weed", "weeeeed"),
            ("shoot", "shoooot"),
            ("kill", "kiiilll")
        ])
    );
}

#[test]
fn exceptions_suppress_matches_inside_them() {
    let s = default_scanner();
    for innocent in [
        "let's kill time",
        "KILL THE LIGHTS",
        "k1ll t1me",
        "killll   time",
        "photo shoot tomorrow",
        "a diet coke please",
        "bamboo shoot",
        "I'll ride shotgun",
        "pass the butter knife",
        "sex education",
    ] {
        assert_eq!(found(s, innocent), pairs(&[]), "{innocent}");
    }
    assert_eq!(found(s, "I will kill you"), pairs(&[("kill", "kill")]));
    assert_eq!(
        found(s, "after the photo shoot I'll shoot him"),
        pairs(&[("shoot", "shoot")])
    );
    let m = &s.scan("after the photo shoot I'll shoot him")[0];
    assert_eq!(m.start, "after the photo shoot I'll ".len());
    assert_eq!(found(s, "a coke deal"), pairs(&[("coke", "coke")]));
}

#[test]
fn exceptions_belong_to_their_own_term() {
    let s = scanner(vec![
        ww("shoot").with_exceptions(&["photo shoot"]),
        Term::new("photo shoot", "other", 1, MatchType::Phrase),
        Term::new("shoot", "violence", 4, MatchType::WholeWord),
    ]);
    let got = s.scan("photo shoot");
    let terms: Vec<(&str, &str)> = got
        .iter()
        .map(|m| (m.term.as_str(), m.category.as_str()))
        .collect();
    // "photo shoot" is found; the unexcepted violence "shoot" lies inside it.
    assert_eq!(terms, vec![("photo shoot", "other")]);
    let got = s.scan("shoot");
    assert_eq!(got.len(), 2);
}

#[test]
fn contains_matches_inside_words() {
    let s = default_scanner();
    assert_eq!(found(s, "pornography"), pairs(&[("porn", "porn")]));
    assert_eq!(found(s, "PoRnHuB"), pairs(&[("porn", "PoRn")]));
    assert_eq!(found(s, "p0rn"), pairs(&[("porn", "p0rn")]));
    assert_eq!(
        found(s, "masturbation"),
        pairs(&[("masturbat", "masturbat")])
    );
}

#[test]
fn phrases_and_their_squashed_forms() {
    let s = default_scanner();
    for text in ["AK-47", "ak 47", "AK47", "ak–47"] {
        assert_eq!(found(s, text), pairs(&[("ak-47", text)]), "{text}");
    }
    assert_eq!(found(s, "1488"), pairs(&[("1488", "1488")]));
    assert_eq!(found(s, "148"), pairs(&[]));
    assert_eq!(
        found(s, "the county lines gang"),
        pairs(&[("county lines", "county lines")])
    );
    assert_eq!(
        found(s, "she said, don’t tell your parents"),
        pairs(&[("don't tell your parents", "don’t tell your parents")])
    );
}

#[test]
fn matches_inside_longer_ones_are_dropped() {
    let s = default_scanner();
    assert_eq!(
        found(s, "crystal meth"),
        pairs(&[("crystal meth", "crystal meth")])
    );
    assert_eq!(
        found(s, "revenge porn"),
        pairs(&[("revenge porn", "revenge porn")])
    );
    // The same span in two categories: both reported.
    let s = scanner(vec![
        ww("kill"),
        Term::new("kill", "other", 1, MatchType::WholeWord),
    ]);
    let got = s.scan("kill");
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].category.as_str(), got[1].category.as_str()),
        ("test", "other")
    );
}

#[test]
fn spans_are_byte_exact_in_multibyte_text() {
    let s = default_scanner();
    let text = "😀 Ça va? Je vais te ķïłł, ok? 日本語 ｓｔａｂ — «kill yourself» ü";
    let got = s.scan(text);
    let want: Vec<(&str, &str)> = vec![
        ("kill", "ķïłł"),
        ("stab", "ｓｔａｂ"),
        ("kill yourself", "kill yourself"),
    ];
    assert_eq!(
        got.iter()
            .map(|m| (m.term.as_str(), m.matched.as_str()))
            .collect::<Vec<_>>(),
        want
    );
    for m in &got {
        assert_eq!(m.start, text.find(&m.matched).unwrap());
        assert_eq!(m.end, m.start + m.matched.len());
    }
}

#[test]
fn decomposed_diacritics_keep_their_marks_in_the_span() {
    let s = scanner(vec![ww("kill")]);
    // "kíll" with a combining acute accent after the i: the span covers it.
    let text = "so ki\u{301}ll\u{301} now";
    let got: Vec<Match> = s.scan(text);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].matched, "ki\u{301}ll\u{301}");
}

#[test]
fn empty_library_and_empty_text() {
    let empty = Scanner::new(&Library::default()).unwrap();
    assert!(empty.scan("kill yourself").is_empty());
    assert!(default_scanner().scan("").is_empty());
    // Terms that normalize to nothing are ignored rather than matching everywhere.
    let s = scanner(vec![ww("!!!"), ww("kill")]);
    assert_eq!(found(&s, "kill!!!"), pairs(&[("kill", "kill")]));
}

#[test]
fn each_term_is_reported_once_across_tagged_texts() {
    let s = Scanner::new(&Library::default_library()).unwrap();
    let texts = [
        ("title", "I want to kill myself".to_string()),
        ("url", "https://x.example/?q=kill+myself".to_string()),
    ];
    let found = s.scan_each_term_once(&texts);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "title");
    assert_eq!(
        &found[0].1[found[0].2.start..found[0].2.end],
        found[0].2.matched
    );
}
