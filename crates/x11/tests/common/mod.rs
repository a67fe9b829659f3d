//! What the X11 tests share: an X server of their own (Xvfb) and the backend
//! connected to it with options that start nothing outside the test.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lectern_desktop::{Desktop, StudentRequest};
use lectern_x11::{X11Desktop, X11Options};

/// Width and height of the screen [`Xvfb::start`] makes.
pub const W: usize = 1280;
pub const H: usize = 720;

/// An Xvfb on a display it picks itself; killed when dropped.
pub struct Xvfb {
    child: Child,
    /// The display name, e.g. `:3`.
    pub display: String,
}

impl Xvfb {
    /// A 1280×720 screen.
    pub fn start() -> Xvfb {
        Xvfb::with_size(W, H)
    }

    /// A `w`×`h` screen, 24-bit.
    pub fn with_size(w: usize, h: usize) -> Xvfb {
        let bin = std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("Xvfb"))
                    .find(|p| p.is_file())
            })
            .expect(
                "Xvfb not found on PATH: the X11 tests need it. Install the Debian package \
                 `xvfb` (apt-get install -y xvfb); scripts/test-all.sh does this",
            );
        // -displayfd 1: Xvfb picks a free display number and writes it to
        // stdout once it accepts connections, so parallel tests never collide.
        let mut child = Command::new(bin)
            .args(["-displayfd", "1", "-screen", "0", &format!("{w}x{h}x24")])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20));
        let Ok(n) = line.as_deref().map(str::trim).unwrap_or("").parse::<u32>() else {
            let _ = child.kill();
            panic!("Xvfb did not report a display number: {line:?}");
        };
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }

    /// The backend on this screen, with [`quiet_options`].
    pub fn desktop(&self) -> X11Desktop {
        X11Desktop::with_options(Some(&self.display), quiet_options()).expect("X11Desktop connects")
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options that open no browser, end no session and touch no audio.
pub fn quiet_options() -> X11Options {
    X11Options {
        url_opener: vec!["true".into()],
        session_id: None,
        logout_command: None,
        pactl: None,
    }
}

/// Saves the X screen as `tests/e2e/out/<file>.png` (best effort: a missing
/// ImageMagick only loses the picture).
pub fn save_screen(display: &str, file: &str) {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/out");
    let _ = std::fs::create_dir_all(&out);
    let _ = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .arg(out.join(format!("{file}.png")))
        .status();
}

/// Runs `xdotool` on `display`; fails the test if it fails.
pub fn xdotool(display: &str, args: &[&str]) {
    let ok = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .expect("xdotool runs")
        .success();
    assert!(ok, "xdotool {args:?}");
}

/// Polls `cond` every 50 ms for up to 30 s (a debug build draws each
/// surface with the UI toolkit on a loaded machine).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the desktop has requests for the server (`what` names them
/// in a timeout), and takes them.
pub fn queued_requests(d: &mut X11Desktop, what: &str) -> Vec<StudentRequest> {
    let mut got = Vec::new();
    wait_until(what, || {
        got = d.take_requests();
        !got.is_empty()
    });
    got
}
