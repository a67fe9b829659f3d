//! Scans standard input line by line and prints one JSON object per match,
//! one per line (what `lectern-server keywords scan` does):
//!
//! ```text
//! echo 'just k1ll urself' | cargo run -q -p lectern-keywords --example scan_stdin
//! cargo run -q -p lectern-keywords --example scan_stdin -- --library my-terms.csv < chat.txt
//! ```
//!
//! `--library` takes a CSV library, or a JSON one if the file name ends in
//! `.json`; without it the default library is used.

use std::error::Error;
use std::io::{self, BufWriter};

use lectern_keywords::{scan_lines_to_json, Library, Scanner};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let library = match args.as_slice() {
        [] => Library::default_library(),
        [flag, path] if flag == "--library" => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            if path.ends_with(".json") {
                serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?
            } else {
                Library::from_csv(&text).map_err(|e| format!("{path}: {e}"))?
            }
        }
        _ => return Err("usage: scan_stdin [--library FILE.csv|FILE.json]".into()),
    };
    library.validate()?;
    let scanner = Scanner::new(&library)?;
    scan_lines_to_json(
        io::stdin().lock(),
        BufWriter::new(io::stdout().lock()),
        &scanner,
    )?;
    Ok(())
}
