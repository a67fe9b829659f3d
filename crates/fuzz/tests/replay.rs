//! Replays every target's seed corpus and saved regressions
//! (`crates/fuzz/{corpus,regressions}/<target>/`) with the heap counted, so a
//! crash the fuzzer once found stays fixed.

use lectern_fuzz::alloc::{self, CountingAlloc};
use lectern_fuzz::runner::{corpus_dir, fuzz, load, replay};
use lectern_fuzz::targets::{find, TARGETS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn replay_target(name: &str) {
    let t = find(name).expect("target exists");
    assert!(alloc::installed(), "heap counting is on");
    assert!(!load(&corpus_dir(t)).is_empty(), "{name} has seeds");
    if let Err((path, f)) = replay(t) {
        panic!("{} fails {name}: {}", path.display(), f.message);
    }
}

#[test]
fn agent_msg() {
    replay_target("agent_msg");
}

#[test]
fn server_msg() {
    replay_target("server_msg");
}

#[test]
fn media_frame() {
    replay_target("media_frame");
}

#[test]
fn console_watch() {
    replay_target("console_watch");
}

#[test]
fn console_upload() {
    replay_target("console_upload");
}

#[test]
fn console_control() {
    replay_target("console_control");
}

#[test]
fn native_host() {
    replay_target("native_host");
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "agent_msg",
            "server_msg",
            "media_frame",
            "console_watch",
            "console_upload",
            "console_control",
            "native_host"
        ]
    );
}

/// The heap budget is a real check: a parser that allocated what a length
/// prefix claims, unchecked, would fail it.
#[test]
fn heap_over_budget_is_a_failure() {
    let t = find("native_host").unwrap();
    let (_, held) = alloc::measure(|| vec![0u8; (t.heap_budget)(8) + 1]);
    assert!(held > (t.heap_budget)(8));
}

/// A short fixed-seed run, so the mutation loop itself is tested here too.
#[test]
fn a_short_deterministic_run_finds_nothing() {
    for t in TARGETS {
        let r = fuzz(t, std::time::Duration::from_millis(200), 42).unwrap_or_else(|f| {
            panic!(
                "{}: {} on {:?}",
                t.name,
                f.message,
                String::from_utf8_lossy(&f.input)
            )
        });
        assert!(r.execs > 0);
    }
}
