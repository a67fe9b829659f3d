//! `lectern-fuzz [--secs N] [--seed S] [TARGET...]`: replays each target's
//! corpus and regressions, then fuzzes it for N seconds (default 10). A
//! failing input is saved under `crates/fuzz/regressions/<target>/` and the
//! exit status is 1. Without targets, all of them run.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lectern_fuzz::alloc::CountingAlloc;
use lectern_fuzz::runner::{fuzz, replay, save_regression};
use lectern_fuzz::targets::{find, Target, TARGETS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Args {
    secs: u64,
    seed: u64,
    targets: Vec<&'static Target>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        secs: 10,
        // A new seed each run explores new inputs; it is printed, and a failing
        // input is saved, so nothing depends on reproducing the seed.
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        targets: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{what} needs a number"))
        };
        match a.as_str() {
            "--secs" => args.secs = number("--secs")?,
            "--seed" => args.seed = number("--seed")?,
            "--list" => {
                for t in TARGETS {
                    println!("{:16} {}", t.name, t.about);
                }
                std::process::exit(0);
            }
            name => args
                .targets
                .push(find(name).ok_or(format!("no target {name:?} (--list)"))?),
        }
    }
    if args.targets.is_empty() {
        args.targets = TARGETS.iter().collect();
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "lectern-fuzz: {e}\nusage: lectern-fuzz [--secs N] [--seed S] [--list] [TARGET...]"
            );
            return ExitCode::from(2);
        }
    };
    // Failures are reported once, with their input saved; not as a backtrace per try.
    std::panic::set_hook(Box::new(|_| {}));
    println!(
        "lectern-fuzz: {} s per target, seed {}",
        args.secs, args.seed
    );
    let mut failed = false;
    for t in args.targets {
        let started = Instant::now();
        let replayed = match replay(t) {
            Ok((n, accepted)) => format!("{n} seeds replayed ({accepted} accepted)"),
            Err((path, f)) => {
                println!("FAIL {:16} {} fails: {}", t.name, path.display(), f.message);
                failed = true;
                continue;
            }
        };
        match fuzz(t, Duration::from_secs(args.secs), args.seed) {
            Ok(r) => println!(
                "ok   {:16} {replayed}, then {} inputs ({} accepted, pool {}) in {:.1} s",
                t.name,
                r.execs,
                r.accepted,
                r.pool,
                started.elapsed().as_secs_f64()
            ),
            Err(f) => {
                let saved = save_regression(t, &f.input).map_or_else(
                    |e| format!("(could not save it: {e})"),
                    |p| p.display().to_string(),
                );
                println!(
                    "FAIL {:16} {}\n     input saved as {saved}: a regression test until fixed",
                    t.name, f.message
                );
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
