//! The power countdown on a real X server (issue 13.6): a shut down with a
//! countdown shows the student the message surface with the time left,
//! and a cancel takes it off. Starts its own Xvfb; the screen is saved as
//! `target/x11-out/power-countdown.png` for a person to look at.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_agent::power_timer::PowerTimer;
use lectern_agent::SharedDesktop;
use lectern_proto::power::PowerAction;
use lectern_proto::{Command as Cmd, CommandResult};
use lectern_x11::{X11Desktop, X11Options, MESSAGE_BG};

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x720x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let display = format!(":{}", line.trim());
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pixels of the message surface's background on the screen now.
fn message_pixels(d: &SharedDesktop) -> usize {
    let f = d.lock().unwrap().capture(1280).unwrap();
    f.rgb
        .chunks_exact(3)
        .filter(|p| [p[0], p[1], p[2]] == MESSAGE_BG)
        .count()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_countdown_is_shown_and_cancelled() {
    let x = Xvfb::start();
    let options = X11Options {
        url_opener: vec!["true".into()],
        session_id: None,
        logout_command: None,
        pactl: None,
    };
    let desktop = X11Desktop::with_options(Some(&x.display), options).expect("X11Desktop connects");
    let desktop: SharedDesktop = Arc::new(Mutex::new(desktop));
    let timer = PowerTimer::default();
    let power = Cmd::Power {
        action: PowerAction::Shutdown,
        countdown_secs: 120,
    };
    timer.after_command(&power, &CommandResult::Done, &desktop);
    until("the countdown on screen", || {
        message_pixels(&desktop) > 10_000
    })
    .await;
    // A second in, for the picture: "… in 119 seconds" or so.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/x11-out");
    std::fs::create_dir_all(&out).unwrap();
    let png = out.join("power-countdown.png");
    let saved = Command::new("import")
        .args(["-display", &x.display, "-window", "root"])
        .arg(&png)
        .status();
    if !matches!(saved, Ok(s) if s.success()) {
        eprintln!("ImageMagick's import is missing: no picture saved");
    }

    timer.after_command(&Cmd::CancelPower, &CommandResult::Done, &desktop);
    until("the countdown gone", || message_pixels(&desktop) == 0).await;
}
