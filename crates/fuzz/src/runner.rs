//! Runs targets: checks one input (no panic, heap within budget), replays the
//! checked-in corpus and regressions, and fuzzes for a fixed time.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::mutate::{mutate, Rng};
use crate::targets::{Outcome, Target};

/// Why an input failed a target.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The input.
    pub input: Vec<u8>,
    /// The panic message, or the heap figure over budget.
    pub message: String,
}

/// Runs `t` on `input`: a panic or more heap than the target's budget is a
/// [`Failure`].
pub fn check(t: &Target, input: &[u8]) -> Result<Outcome, Failure> {
    let fail = |message: String| Failure {
        input: input.to_vec(),
        message,
    };
    let (result, held) =
        alloc::measure(|| panic::catch_unwind(AssertUnwindSafe(|| (t.run)(input))));
    let outcome = result.map_err(|p| fail(panic_message(&p)))?;
    let budget = (t.heap_budget)(input.len());
    if held > budget {
        return Err(fail(format!(
            "held {held} heap bytes for a {}-byte input; the budget is {budget}",
            input.len()
        )));
    }
    Ok(outcome)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// `crates/fuzz/corpus/<target>`: seed inputs, checked in.
pub fn corpus_dir(t: &Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(t.name)
}

/// `crates/fuzz/regressions/<target>`: inputs that once failed, checked in;
/// the runner writes new failures here.
pub fn regressions_dir(t: &Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(t.name)
}

/// The files in `dir`, by name; none when it does not exist.
pub fn load(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

/// Replays a target's corpus and regressions: how many inputs, and how many
/// of them the parser accepted; or the first failure, naming its file.
pub fn replay(t: &Target) -> Result<(usize, usize), (PathBuf, Failure)> {
    let (mut n, mut accepted) = (0, 0);
    for (path, input) in load(&corpus_dir(t))
        .into_iter()
        .chain(load(&regressions_dir(t)))
    {
        if check(t, &input).map_err(|f| (path, f))? == Outcome::Accepted {
            accepted += 1;
        }
        n += 1;
    }
    Ok((n, accepted))
}

/// What a fuzzing run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Inputs run.
    pub execs: u64,
    /// Of which the parser accepted.
    pub accepted: u64,
    /// Inputs in the pool at the end (seeds and accepted mutations).
    pub pool: usize,
}

/// Most inputs kept for mutation.
const POOL: usize = 512;

/// Fuzzes `t` for `time` from `seed`: mutates seeds and inputs the parser
/// accepted, and now and then probes an input just over its size limit.
pub fn fuzz(t: &Target, time: Duration, seed: u64) -> Result<Report, Failure> {
    let mut rng = Rng::new(seed);
    let mut pool: Vec<Vec<u8>> = load(&corpus_dir(t))
        .into_iter()
        .chain(load(&regressions_dir(t)))
        .map(|(_, b)| b)
        .collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut report = Report {
        execs: 0,
        accepted: 0,
        pool: 0,
    };
    let start = Instant::now();
    while start.elapsed() < time {
        // Check the clock every few inputs only: it is not free.
        for _ in 0..64 {
            let a = &pool[rng.below(pool.len())];
            let b = &pool[rng.below(pool.len())];
            let mut input = mutate(&mut rng, a, b, t.max_len);
            if t.over_limit > 0 && rng.one_in(2000) {
                input.resize(t.over_limit + rng.below(16), b' ');
            }
            report.execs += 1;
            if check(t, &input)? == Outcome::Accepted {
                report.accepted += 1;
                if input.len() <= t.max_len {
                    let slot = if pool.len() < POOL {
                        pool.len()
                    } else {
                        rng.below(POOL)
                    };
                    if slot == pool.len() {
                        pool.push(input);
                    } else {
                        pool[slot] = input;
                    }
                }
            }
        }
    }
    report.pool = pool.len();
    Ok(report)
}

/// Saves a failing input under the target's regressions (named by a hash of
/// its bytes), so the replay test fails until the bug is fixed; returns the path.
pub fn save_regression(t: &Target, input: &[u8]) -> std::io::Result<PathBuf> {
    // FNV-1a: a stable name for the same bytes.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = regressions_dir(t);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("crash-{hash:016x}"));
    std::fs::write(&path, input)?;
    Ok(path)
}
