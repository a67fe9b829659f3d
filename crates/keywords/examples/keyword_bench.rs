//! Keyword scanning throughput on one core, beside a naive baseline.
//!
//! ```text
//! cargo run --release -p lectern-keywords --example keyword_bench -- [--mb 4] [--runs 5] [--json-out FILE]
//! ```
//!
//! Generates a few MB of synthetic chat and web text (fixed seed, so every run
//! scans the same bytes), then times, for (a) the default library and (b) a
//! generated 10,000-term library:
//!
//! * `lectern`: [`Scanner::scan`] (folding + Aho-Corasick + exact checks);
//! * `normalize`: the folding alone;
//! * `regex`: one `regex` crate alternation of the same terms as written,
//!   `(?i)\b(?:term|term|…)\b` — what a naive implementation would do. It
//!   finds no evasive spellings, so it does less work.
//!
//! each over the text line by line (one call per chat message or paragraph,
//! as the server and agent scan) and as one string. Prints the median MB
//! per CPU second of the thread (and per wall second) of `--runs` runs
//! (MB = 10^6 bytes of input). `--write-inputs DIR` writes the text and
//! the libraries (terms one per line, and CSV) instead, for
//! `bench/keywords.sh` to run ripgrep and `scan_stdin` on the same input.

use std::time::Instant;

use lectern_keywords::normalize::normalize;
use lectern_keywords::{Library, MatchType, Scanner, Term};
use regex::{Regex, RegexBuilder};

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "is",
    "in",
    "it",
    "you",
    "that",
    "for",
    "on",
    "was",
    "with",
    "he",
    "she",
    "they",
    "we",
    "be",
    "at",
    "this",
    "have",
    "from",
    "or",
    "had",
    "by",
    "not",
    "but",
    "what",
    "all",
    "were",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "each",
    "which",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "no",
    "way",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "oil",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "homework",
    "teacher",
    "lesson",
    "class",
    "assessment",
    "maths",
    "english",
    "science",
    "history",
    "geography",
    "break",
    "lunch",
    "canteen",
    "football",
    "match",
    "game",
    "minecraft",
    "fortnite",
    "roblox",
    "video",
    "youtube",
    "tiktok",
    "snapchat",
    "instagram",
    "phone",
    "laptop",
    "charger",
    "wifi",
    "password",
    "login",
    "test",
    "exam",
    "revision",
    "notes",
    "passage",
    "chapter",
    "essay",
    "deadline",
    "tomorrow",
    "today",
    "tonight",
    "weekend",
    "monday",
    "wednesday",
    "friday",
    "bus",
    "train",
    "mum",
    "dad",
    "sister",
    "brother",
    "friend",
    "friends",
    "birthday",
    "party",
    "cake",
    "pizza",
    "chips",
    "grapes",
    "apple",
    "therapist",
    "doctor",
    "skill",
    "skills",
    "analysis",
    "document",
    "documents",
    "method",
    "begun",
    "sussex",
    "essex",
    "middlesex",
    "scunthorpe",
    "cocktail",
    "assassin",
    "classic",
    "passing",
    "bass",
    "guitar",
    "drums",
    "music",
    "song",
    "album",
    "concert",
    "ticket",
    "movie",
    "film",
    "netflix",
    "episode",
    "season",
    "series",
    "book",
    "library",
    "reading",
    "project",
    "group",
    "team",
    "coach",
    "training",
    "practice",
    "swimming",
    "running",
    "tennis",
    "netball",
    "rugby",
    "cricket",
    "goal",
    "score",
    "won",
    "lost",
    "draw",
    "funny",
    "boring",
    "weird",
    "cool",
    "awesome",
    "great",
    "nice",
    "bad",
    "good",
    "really",
    "very",
    "just",
    "actually",
    "literally",
    "basically",
    "honestly",
    "probably",
    "maybe",
    "definitely",
    "lol",
    "omg",
    "idk",
    "tbh",
    "ngl",
    "btw",
    "brb",
    "imo",
    "u",
    "ur",
    "r",
    "pls",
    "thx",
    "ok",
    "okay",
    "yeah",
    "nah",
    "yes",
    "hello",
    "hi",
    "hey",
    "bye",
    "sorry",
    "thanks",
    "please",
    "help",
    "question",
    "answer",
    "wrong",
    "right",
    "left",
    "because",
    "before",
    "after",
    "again",
    "still",
    "never",
    "always",
    "sometimes",
    "everyone",
    "nobody",
    "someone",
    "anyone",
    "think",
    "know",
    "want",
    "need",
    "feel",
    "feeling",
    "happy",
    "sad",
    "tired",
    "hungry",
    "bored",
    "excited",
    "worried",
    "angry",
    "shoot",
    "photo",
    "killer",
    "skilled",
    "assume",
    "passage",
    "classes",
];

const ACCENTED: &[&str] = &[
    "café",
    "naïve",
    "résumé",
    "façade",
    "jalapeño",
    "Zoë",
    "Chloé",
    "Ana María",
    "Müller",
    "Straße",
    "São Paulo",
];
const EMOJI: &[&str] = &["😂", "🙂", "👍", "❤️", "🔥", "😭", "🙏🏽", "💀", "👀", "🎉"];
const URLS: &[&str] = &[
    "https://www.bbc.co.uk/bitesize/guides/zc7v4j6/revision/1",
    "https://classroom.example.org/c/NjM5MTAy?cjc=abc123",
    "https://en.wikipedia.org/wiki/Photosynthesis",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
];

/// xorshift64*: deterministic and good enough for text generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 10_000.0 < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, list: &[&'a T]) -> &'a T {
        list[self.below(list.len())]
    }
}

/// A flagged term as a student might type it.
fn disguise(rng: &mut Rng, term: &str) -> String {
    match rng.below(6) {
        0 => term
            .replace('i', "1")
            .replace('e', "3")
            .replace('o', "0")
            .replace('a', "4"),
        1 => term
            .chars()
            .map(|c| {
                if c == ' ' {
                    " ".to_string()
                } else {
                    format!("{c} ")
                }
            })
            .collect::<String>(),
        2 => term.to_uppercase(),
        3 => term
            .chars()
            .flat_map(|c| (0..if "aeiou".contains(c) { 3 } else { 1 }).map(move |_| c))
            .collect(),
        _ => term.to_string(),
    }
}

fn generate_text(bytes: usize, library: &Library) -> String {
    let mut rng = Rng(0x5EED_1EC7_E420_2026);
    let exceptions: Vec<&str> = library
        .terms
        .iter()
        .flat_map(|t| t.exceptions.iter().map(String::as_str))
        .collect();
    let mut text = String::with_capacity(bytes + 1024);
    while text.len() < bytes {
        let paragraph = rng.chance(20.0);
        let words = if paragraph {
            40 + rng.below(80)
        } else {
            3 + rng.below(18)
        };
        for i in 0..words {
            if i > 0 {
                text.push(' ');
            }
            let roll = rng.below(10_000);
            let word: String = if roll < 50 {
                let term = &library.terms[rng.below(library.terms.len())].term;
                if rng.chance(30.0) {
                    disguise(&mut rng, term)
                } else {
                    term.clone()
                }
            } else if roll < 100 && !exceptions.is_empty() {
                exceptions[rng.below(exceptions.len())].to_string()
            } else if roll < 300 {
                rng.pick(EMOJI).to_string()
            } else if roll < 400 {
                (rng.below(2030)).to_string()
            } else if roll < 440 {
                rng.pick(URLS).to_string()
            } else if roll < 540 {
                rng.pick(ACCENTED).to_string()
            } else {
                let w = rng.pick(WORDS);
                if i == 0 || rng.chance(5.0) {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                } else {
                    w.to_string()
                }
            };
            text.push_str(&word);
            if rng.chance(8.0) {
                text.push(',');
            }
        }
        text.push_str(rng.pick(&[".", "!", "?", "", "!!", "..."]));
        text.push('\n');
    }
    text
}

/// The default library plus generated terms, 10,000 in all.
fn big_library() -> Library {
    const SYLLABLES: &[&str] = &[
        "ka", "zor", "blen", "trix", "vog", "mul", "quen", "dro", "sil", "pha", "gri", "nob",
        "tup", "wex", "yal", "fen", "chu", "spo", "rad", "lik", "mon", "ber", "tas", "vin", "hol",
        "cre", "dus", "gam", "jot", "pex", "rul", "sna",
    ];
    let mut rng = Rng(0x0B16_11B0_2026);
    let mut lib = Library::default_library();
    let mut seen: std::collections::HashSet<String> =
        lib.terms.iter().map(|t| t.term.clone()).collect();
    let categories = [
        "bullying",
        "self-harm",
        "radicalisation",
        "adult content",
        "drugs",
        "weapons",
        "violence",
    ];
    while lib.terms.len() < 10_000 {
        let word = |rng: &mut Rng| {
            (0..2 + rng.below(3))
                .map(|_| rng.pick(SYLLABLES))
                .collect::<String>()
        };
        let (term, match_type) = match rng.below(100) {
            0..=69 => (word(&mut rng), MatchType::WholeWord),
            70..=97 => (
                format!("{} {}", word(&mut rng), word(&mut rng)),
                MatchType::Phrase,
            ),
            _ => (word(&mut rng) + &word(&mut rng), MatchType::Contains),
        };
        if seen.insert(term.clone()) {
            let category = categories[rng.below(categories.len())];
            lib.terms.push(Term::new(
                &term,
                category,
                1 + rng.below(5) as u8,
                match_type,
            ));
        }
    }
    lib
}

/// `(?i)\b(?:term|…)\b` over the terms as written, with Unicode word
/// boundaries (`regex`'s default) or ASCII ones (`(?-u:\b)`).
fn regex_baseline(library: &Library, unicode_boundaries: bool) -> Regex {
    let alternation: Vec<String> = library
        .terms
        .iter()
        .map(|t| regex::escape(&t.term))
        .collect();
    let b = if unicode_boundaries {
        r"\b"
    } else {
        r"(?-u:\b)"
    };
    RegexBuilder::new(&format!(r"(?i){b}(?:{}){b}", alternation.join("|")))
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .expect("baseline regex builds")
}

/// Writes the text and both libraries, as terms one per line (for
/// ripgrep's `-f`) and as CSV (for the `scan_stdin` example), for the
/// process-against-process side of `bench/keywords.sh`.
fn write_input_files(dir: &str, text: &str, default: &Library) {
    let terms = |lib: &Library| {
        lib.terms
            .iter()
            .map(|t| format!("{}\n", t.term))
            .collect::<String>()
    };
    let write = |name: &str, body: &str| {
        std::fs::write(format!("{dir}/{name}"), body).expect("write bench input")
    };
    let big = big_library();
    write("text.txt", text);
    write("terms-default.txt", &terms(default));
    write("terms-10k.txt", &terms(&big));
    write("library-default.csv", &default.to_csv());
    write("library-10k.csv", &big.to_csv());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `f` `runs` times; returns the median MB/s and what `f` counted.
/// CPU seconds used by this thread so far. On a shared machine the CPU
/// time of the scan is what it costs; wall time also counts the time other
/// processes held the core.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Runs `f` `runs` times; returns the median MB per CPU second, the median
/// MB per wall second, and what `f` counted.
fn measure(runs: usize, bytes: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let (mut cpu_rates, mut wall_rates) = (Vec::new(), Vec::new());
    let mut count = 0;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu_seconds());
        count = f();
        let cpu = (thread_cpu_seconds() - c).max(1e-9);
        cpu_rates.push(bytes as f64 / 1e6 / cpu);
        wall_rates.push(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    (median(cpu_rates), median(wall_rates), count)
}

const USAGE: &str = "usage: keyword_bench [--mb N] [--runs N] [--json-out FILE] \
    [--libraries default,10k] [--engines lectern,normalize,regex-ascii,regex] \
    [--modes lines,whole] [--regex-runs N] [--regex-mb N] [--write-inputs DIR]";

fn main() {
    let mut mb = 4.0;
    let mut runs = 5;
    let mut regex_mb: Option<f64> = None;
    let mut regex_runs: Option<usize> = None;
    let mut json_out = None;
    let mut write_inputs: Option<String> = None;
    let mut engines_wanted = "lectern,normalize,regex-ascii,regex".to_string();
    let mut libraries_wanted = "default,10k".to_string();
    let mut modes_wanted = "lines,whole".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect(USAGE);
        match arg.as_str() {
            "--mb" => mb = value().parse().expect(USAGE),
            "--runs" => runs = value().parse().expect(USAGE),
            "--regex-mb" => regex_mb = Some(value().parse().expect(USAGE)),
            "--regex-runs" => regex_runs = Some(value().parse().expect(USAGE)),
            "--json-out" => json_out = Some(value()),
            "--engines" => engines_wanted = value(),
            "--libraries" => libraries_wanted = value(),
            "--modes" => modes_wanted = value(),
            "--write-inputs" => write_inputs = Some(value()),
            _ => panic!("{USAGE}"),
        }
    }
    let default = Library::default_library();
    let text = generate_text((mb * 1e6) as usize, &default);
    if let Some(dir) = &write_inputs {
        write_input_files(dir, &text, &default);
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let bytes = text.len();
    // The slow Unicode-boundary baseline may run on a prefix of the text.
    let regex_text = match regex_mb {
        Some(r) if ((r * 1e6) as usize) < bytes => {
            let cut = text[..(r * 1e6) as usize].rfind('\n').map_or(0, |i| i + 1);
            &text[..cut]
        }
        _ => &text[..],
    };
    let regex_lines: Vec<&str> = regex_text.lines().collect();
    let regex_runs = regex_runs.unwrap_or(runs);
    println!(
        "text: {:.2} MB, {} lines (mean {:.0} bytes), {:.1}% non-ASCII bytes; median of {runs} runs \
         (regex with Unicode \\b: {regex_runs} runs over the first {:.2} MB)",
        bytes as f64 / 1e6,
        lines.len(),
        bytes as f64 / lines.len() as f64,
        100.0 * text.bytes().filter(|b| !b.is_ascii()).count() as f64 / bytes as f64,
        regex_text.len() as f64 / 1e6,
    );
    let wanted = |list: &str, e: &str| list.split(',').any(|w| w == e);
    let mut results = Vec::new();
    for name in ["default", "10k"] {
        if !wanted(&libraries_wanted, name) {
            continue;
        }
        let library = if name == "default" {
            default.clone()
        } else {
            big_library()
        };
        let t = Instant::now();
        let scanner = Scanner::new(&library).expect("scanner builds");
        let scanner_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let re_ascii = regex_baseline(&library, false);
        let regex_ascii_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let re = regex_baseline(&library, true);
        let regex_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "\nlibrary {name}: {} terms; build: lectern {scanner_ms:.1} ms ({:.1} MiB automaton), \
             regex-ascii {regex_ascii_ms:.1} ms, regex {regex_ms:.1} ms",
            library.terms.len(),
            scanner.memory_usage() as f64 / (1 << 20) as f64
        );
        type Engine<'a> = Box<dyn FnMut() -> usize + 'a>;
        let engines: Vec<(&str, &str, usize, Engine)> = vec![
            (
                "lectern",
                "lines",
                bytes,
                Box::new(|| lines.iter().map(|l| scanner.scan(l).len()).sum()),
            ),
            (
                "lectern",
                "whole",
                bytes,
                Box::new(|| scanner.scan(&text).len()),
            ),
            (
                "normalize",
                "lines",
                bytes,
                Box::new(|| lines.iter().map(|l| normalize(l).as_str().len()).sum()),
            ),
            (
                "regex-ascii",
                "lines",
                bytes,
                Box::new(|| lines.iter().map(|l| re_ascii.find_iter(l).count()).sum()),
            ),
            (
                "regex-ascii",
                "whole",
                bytes,
                Box::new(|| re_ascii.find_iter(&text).count()),
            ),
            (
                "regex",
                "lines",
                regex_text.len(),
                Box::new(|| regex_lines.iter().map(|l| re.find_iter(l).count()).sum()),
            ),
            (
                "regex",
                "whole",
                regex_text.len(),
                Box::new(|| re.find_iter(regex_text).count()),
            ),
        ];
        for (engine, mode, input_bytes, mut f) in engines {
            if !wanted(&engines_wanted, engine) || !wanted(&modes_wanted, mode) {
                continue;
            }
            let n = if engine == "regex" { regex_runs } else { runs };
            let (rate, wall, count) = measure(n, input_bytes, &mut f);
            let what = if engine == "normalize" {
                "bytes out"
            } else {
                "matches"
            };
            println!(
                "  {engine:<11} {mode:<5} {rate:>8.2} MB/s CPU ({wall:>7.2} MB/s wall)   {count} {what}"
            );
            let build_ms = match engine {
                "regex" => regex_ms,
                "regex-ascii" => regex_ascii_ms,
                _ => scanner_ms,
            };
            results.push(format!(
                r#"{{"library":"{name}","terms":{},"engine":"{engine}","mode":"{mode}","input_bytes":{input_bytes},"runs":{n},"mb_per_cpu_s":{rate:.3},"mb_per_wall_s":{wall:.3},"count":{count},"build_ms":{build_ms:.1}}}"#,
                library.terms.len(),
            ));
        }
    }
    if let Some(path) = json_out {
        let json = format!(
            "{{\"text_bytes\":{bytes},\"lines\":{},\"results\":[\n{}\n]}}\n",
            lines.len(),
            results.join(",\n")
        );
        std::fs::write(&path, json).expect("write --json-out");
    }
}
