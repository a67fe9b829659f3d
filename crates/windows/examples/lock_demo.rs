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

    /// The keys the lock windows received, drawn by the real painter.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<u16>>>);

    struct Recording(Recorder, StudentUiPainter);

    impl SurfacePainter for Recording {
        fn paint(&mut self, s: &Surface, w: u32, h: u32) -> Vec<u8> {
            self.1.paint(s, w, h)
        }
        fn input(&mut self, s: &Surface, w: u32, h: u32, i: SurfaceInput) -> Option<SurfaceAction> {
            if let SurfaceInput::KeyDown(k) = i {
                (self.0).0.lock().unwrap().push(k);
            }
            self.1.input(s, w, h, i)
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
        let r = rec.clone();
        let painters: PainterFactory =
            Box::new(move || Box::new(Recording(r.clone(), StudentUiPainter::new())));
        let mut desk = WindowsDesktop::with_painter(painters).expect("desktop");
        desk.set_school("École Hillside — 山丘学校");
        desk.lock(Some(
            "Élèves, regardez le tableau ! 请看黑板。 Eyes on the board 👀📚",
        ))
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
