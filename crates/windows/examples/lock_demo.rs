//! Locks the screen for scripts/test-windows.sh, which takes an X screenshot
//! of the lock and types Alt+Tab, the Windows key and `a` with xdotool.
//!
//! `lock_demo.exe DIR` (a Windows path): locks, writes `DIR\ready`, waits for
//! `DIR\keys-sent`, then waits (30 s at most) until the hook swallowed two
//! keys and the lock window received the `a`, writes what it saw to
//! `DIR\result`, unlocks and exits 0 (1 when the keys were not handled so).

#[cfg(windows)]
mod demo {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use lectern_desktop::Desktop;
    use lectern_windows::*;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<u16>>>);

    impl SurfacePainter for Recorder {
        fn paint(&mut self, s: &Surface, w: u32, h: u32) -> Vec<u8> {
            CanvasPainter.paint(s, w, h)
        }
        fn input(&mut self, s: &Surface, w: u32, h: u32, i: SurfaceInput) -> Option<SurfaceAction> {
            if let SurfaceInput::KeyDown(k) = i {
                self.0.lock().unwrap().push(k);
            }
            CanvasPainter.input(s, w, h, i)
        }
    }

    fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + deadline;
        while !ok() {
            if Instant::now() > end {
                eprintln!("timed out waiting for {what}");
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    pub fn main() -> std::process::ExitCode {
        let dir = PathBuf::from(std::env::args().nth(1).expect("usage: lock_demo DIR"));
        let rec = Recorder::default();
        let mut desk = WindowsDesktop::with_painter(Box::new(rec.clone())).expect("desktop");
        desk.set_school("Hillside School");
        desk.lock(Some("Eyes on the board, please — Lectern on Windows"))
            .expect("lock");
        let before = swallowed_keys();
        std::fs::write(dir.join("ready"), "locked\n").expect("write ready");
        let sent = wait_for("keys-sent", Duration::from_secs(120), || {
            dir.join("keys-sent").exists()
        });
        let handled = sent
            && wait_for("the keys", Duration::from_secs(30), || {
                swallowed_keys() >= before + 2 && rec.0.lock().unwrap().contains(&0x41)
            });
        let keys = rec.0.lock().unwrap().clone();
        let leaked = keys.iter().any(|&k| k == 0x09 || k == 0x5B);
        let result = format!(
            "swallowed={} lock_window_keys={keys:x?} leaked={leaked} capture={}\n",
            swallowed_keys() - before,
            desk.capture_method()
        );
        std::fs::write(dir.join("result"), &result).expect("write result");
        print!("{result}");
        desk.unlock().expect("unlock");
        if handled && !leaked {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    demo::main()
}

#[cfg(not(windows))]
fn main() {
    eprintln!("lock_demo runs on Windows (or under Wine) only");
}
