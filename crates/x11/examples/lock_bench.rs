//! Lock screen benchmark for the X11 backend: how long `lock` takes until the
//! server shows the lock (the call returns after a round trip), the first
//! time in the process (fonts loaded, shaping caches cold) and then for
//! lock/unlock cycles, and how much CPU the agent's process spends while a
//! lock stays up and nothing happens. Run through `bench/lock.sh`.
//!
//! ```text
//! lock_bench --display :99 [--cycles 20] [--idle-secs 10]
//! ```

use std::time::{Duration, Instant};

use lectern_desktop::Desktop;
use lectern_x11::{X11Desktop, X11Options};

struct Args {
    display: String,
    cycles: usize,
    idle: Duration,
}

fn args() -> Args {
    let mut a = Args {
        display: std::env::var("DISPLAY").unwrap_or_default(),
        cycles: 20,
        idle: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--display" => a.display = val(),
            "--cycles" => a.cycles = val().parse().expect("--cycles N"),
            "--idle-secs" => a.idle = Duration::from_secs(val().parse().expect("--idle-secs S")),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn main() {
    let a = args();
    let opts = X11Options {
        url_opener: vec!["true".into()],
        session_id: None,
        logout_command: None,
        pactl: None,
    };
    let t = Instant::now();
    let mut d = X11Desktop::with_options(Some(&a.display), opts).expect("connect");
    println!(
        "connect (fonts loaded on the window thread): {:.1?}",
        t.elapsed()
    );
    d.set_school("Hill School");
    let note = "Eyes to the front, please — 目を前に 👀";

    let t = Instant::now();
    d.lock(Some(note)).expect("lock");
    println!("first lock shown: {:.1?}", t.elapsed());
    d.unlock().expect("unlock");

    let mut locks = Vec::new();
    let mut unlocks = Vec::new();
    for _ in 0..a.cycles {
        let t = Instant::now();
        d.lock(Some(note)).expect("lock");
        locks.push(t.elapsed());
        let t = Instant::now();
        d.unlock().expect("unlock");
        unlocks.push(t.elapsed());
    }
    println!(
        "lock shown, median of {}: {:.1?} (min {:.1?}, max {:.1?}); unlock {:.1?}",
        a.cycles,
        median(locks.clone()),
        locks.iter().min().copied().unwrap_or_default(),
        locks.iter().max().copied().unwrap_or_default(),
        median(unlocks),
    );

    d.lock(Some(note)).expect("lock");
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t) = (cpu_time(), Instant::now());
    std::thread::sleep(a.idle);
    let cpu = cpu_time() - cpu0;
    println!(
        "idle with the lock up: {cpu:.1?} CPU over {:.1?} ({:.3} % of one core)",
        t.elapsed(),
        cpu.as_secs_f64() * 100.0 / t.elapsed().as_secs_f64()
    );
    d.unlock().expect("unlock");
}
