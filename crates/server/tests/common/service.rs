//! The real Linux agent service on a display of its own, for tests that
//! need `lectern-agent service` with a static X11 session for a throwaway
//! local user (root and `useradd` needed; callers skip without them).

#![allow(dead_code)] // Each test file uses a part.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::agent_bin;

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn have(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// A throwaway local user with a home under a temporary folder; `userdel -r`
/// when dropped, also when the test panics.
pub struct TempUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    _root: tempfile::TempDir,
}

impl TempUser {
    pub fn create() -> TempUser {
        let root = tempfile::tempdir().unwrap();
        // The user's own processes (the session helper) may walk to their home.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.path().join("home")).unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Unique per run; short (useradd allows 32) and lower case.
        let name = format!("lsf{}x{}", std::process::id(), nanos % 100_000);
        let home = root.path().join("home").join(&name);
        let out = Command::new("useradd")
            .args(["-m", "-U", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&name)
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = std::fs::metadata(&home).expect("useradd made the home");
        TempUser {
            name,
            uid: meta.uid(),
            gid: meta.gid(),
            home,
            _root: root,
        }
    }

    /// Makes `path` (under the home) owned by the user, as if they made it.
    pub fn own(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).unwrap();
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An Xvfb of our own on a free display, killed when dropped.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x720x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install -y xvfb; scripts/test-all.sh does this)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let n: u32 = line.trim().parse().expect("Xvfb display number");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lectern-agent service` with its own config, state and socket; stopped
/// with SIGTERM when dropped so that it stops its helpers (which run as the
/// temporary user, who is deleted next).
pub struct Service {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Service {
    /// Starts the service with `extra` configuration and, if given, an
    /// enrollment token in its token file (without one, and without a
    /// school code in `schoolcode`, it asks on the screen).
    pub fn start(extra: &str, token: Option<&str>) -> Service {
        Self::start_with_codes(extra, token, &[])
    }

    /// As [`Service::start`], with these school codes in its school code
    /// file (one a line: the first registers the computer, each further
    /// one adds a school).
    pub fn start_with_codes(extra: &str, token: Option<&str>, codes: &[&str]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        // Helpers run as the session user and must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path();
        if let Some(token) = token {
            std::fs::write(p.join("enrollment-token"), format!("{token}\n")).unwrap();
        }
        if !codes.is_empty() {
            std::fs::write(p.join("schoolcode"), codes.join("\n") + "\n").unwrap();
        }
        let toml = format!(
            "token_file = {:?}\nschool_code_file = {:?}\nstate_dir = {:?}\nsocket = {:?}\n\
             session_poll_secs = 1\n{extra}",
            p.join("enrollment-token"),
            p.join("schoolcode"),
            p.join("state"),
            p.join("run/agent.sock"),
        );
        std::fs::write(p.join("agent.toml"), toml).unwrap();
        let log = std::fs::File::create(p.join("service.log")).unwrap();
        let child = Command::new(agent_bin())
            .args(["service", "--config"])
            .arg(p.join("agent.toml"))
            .env("RUST_LOG", "info")
            .env("LECTERN_LOG", "stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Service { child, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ids of the windows called `name` on `display`.
pub fn windows_named(display: &str, name: &str) -> Vec<String> {
    let out = Command::new("xdotool")
        .args(["search", "--name", name])
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `xdotool args` on `display`; it must succeed.
pub fn xdotool(display: &str, args: &[&str]) {
    let ok = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .expect("run xdotool")
        .success();
    assert!(ok, "xdotool {args:?}");
}

/// Moves the pointer to `(x, y)` on `display` and clicks there.
pub fn click_at(display: &str, (x, y): (i32, i32)) {
    xdotool(
        display,
        &["mousemove", &x.to_string(), &y.to_string(), "click", "1"],
    );
}

/// Whether this machine can run the real service with a throwaway user and
/// drive its screens (root, useradd/userdel, xdotool); says why not.
pub fn can_drive_a_desktop() -> bool {
    let ok = is_root() && have("useradd") && have("userdel") && have("xdotool");
    if !ok {
        eprintln!("SKIP: needs root, useradd/userdel and xdotool");
    }
    ok
}

/// Saves the screen for people to look at as
/// `tests/e2e/out/<name>.png` (ImageMagick's `import`, when there is one).
pub fn screenshot(display: &str, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/out");
    let _ = std::fs::create_dir_all(&dir);
    let _ = Command::new("import")
        .args(["-window", "root"])
        .arg(dir.join(format!("{name}.png")))
        .env("DISPLAY", display)
        .status();
}

/// What `f` finds within 40 s, polling; else fails saying `what`, with
/// the service's log.
pub async fn until<T>(what: &str, svc: &Service, mut f: impl FnMut() -> Option<T>) -> T {
    let found = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if let Some(v) = f() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{what}\nservice log:\n{}", svc.log()))
}
