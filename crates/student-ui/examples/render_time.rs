//! Times `StudentUi::render` (no criterion: a plain median of repeated runs).
//! `cargo run --release -p lectern-student-ui --example render_time`

use lectern_student_ui::{StudentUi, Surface};
use std::time::{Duration, Instant};

const RUNS: usize = 21;

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn time(name: &str, surface: Surface, w: u32, h: u32) {
    let t = Instant::now();
    let mut ui = StudentUi::new(surface, w, h, 1.0);
    ui.render();
    let first = t.elapsed();
    let runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(ui.render());
            t.elapsed()
        })
        .collect();
    let (lo, hi) = (runs.iter().min(), runs.iter().max());
    println!(
        "{name} {w}x{h}: first {first:.1?}; median of {RUNS} {:.1?} (min {lo:.1?}, max {hi:.1?})",
        median(runs.clone()),
        lo = lo.copied().unwrap_or_default(),
        hi = hi.copied().unwrap_or_default(),
    );
}

fn main() {
    println!("(the first render in the process also loads the system fonts)");
    let lock = Surface::Lock {
        school: "Hill School".into(),
        text: Some("Eyes to the front, please 👀".into()),
    };
    time("lock", lock.clone(), 1920, 1080);
    time("lock (again, fonts loaded)", lock, 1920, 1080);
    let message = Surface::Message {
        from: Some("Ms Smith".into()),
        text: "Please save your work and look at the board. 谢谢 🙂".into(),
    };
    time("message", message, 1920, 1080);
    let question = Surface::Question {
        teacher: "Mr García".into(),
        seconds_left: 30,
    };
    time("question", question, 1920, 1080);
    time(
        "lock 4K",
        Surface::Lock {
            school: "Hill School".into(),
            text: None,
        },
        3840,
        2160,
    );
}
