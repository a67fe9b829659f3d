//! Starts a helper as the user of every graphical session, restarts it when
//! it dies, and stops it when its session ends.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sessions::{self, Session};
use crate::config::{BackendKind, ServiceConfig};
use crate::service::{Expected, Registry};

/// Wait before restarting a helper that died, so a crashing helper cannot spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

struct Running {
    session: Session,
    child: Option<Child>,
    starts: u32,
    restart_at: Instant,
}

/// Runs until `stop` turns true, then stops every helper.
pub fn supervise(cfg: ServiceConfig, registry: Arc<Registry<Session>>, stop: Arc<AtomicBool>) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/lectern-agent"));
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut next_scan = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + Duration::from_secs(cfg.session_poll_secs.max(1));
            let now: Vec<Session> = sessions::discover(&cfg);
            running.retain(|key, r| {
                let keep = now.iter().any(|s| &s.key == key && s == &r.session);
                if !keep {
                    tracing::info!(session = %key, "session ended; stopping its helper");
                    registry.record(session_event("logout", &r.session));
                    if let Some(c) = r.child.as_mut() {
                        terminate(c);
                    }
                    registry.set_expected(key, None);
                }
                keep
            });
            for s in now {
                if !running.contains_key(&s.key) {
                    registry.record(session_event("login", &s));
                }
                running.entry(s.key.clone()).or_insert_with(|| Running {
                    session: s,
                    child: None,
                    starts: 0,
                    restart_at: Instant::now(),
                });
            }
        }
        for (key, r) in running.iter_mut() {
            if let Some(c) = r.child.as_mut() {
                match c.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => {
                        tracing::warn!(session = %key, %status, "helper exited; restarting it")
                    }
                    Err(e) => tracing::warn!(session = %key, "cannot check the helper: {e}"),
                }
                r.child = None;
                r.restart_at = Instant::now() + RESTART_DELAY;
                registry.set_expected(key, Some(expected(r, 0)));
            }
            if Instant::now() < r.restart_at {
                continue;
            }
            match spawn(&exe, &cfg, &r.session) {
                Ok(child) => {
                    r.starts += 1;
                    let pid = child.id();
                    r.child = Some(child);
                    registry.set_expected(key, Some(expected(r, pid)));
                    tracing::info!(session = %key, user = %r.session.user.name, pid, "helper started");
                }
                Err(e) => {
                    tracing::error!(session = %key, "cannot start a helper: {e}");
                    r.restart_at = Instant::now() + RESTART_DELAY * 5;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for r in running.values_mut() {
        if let Some(c) = r.child.as_mut() {
            terminate(c);
        }
    }
}

fn session_event(kind: &str, s: &Session) -> lectern_proto::ActivityEvent {
    lectern_proto::ActivityEvent {
        kind: kind.into(),
        user: Some(s.user.name.clone()),
        title: Some(format!("display {}", s.display)),
        at: crate::now_ms(),
        ..Default::default()
    }
}

fn expected(r: &Running, pid: u32) -> Expected<Session> {
    Expected {
        session: r.session.clone(),
        pid,
        starts: r.starts,
    }
}

/// SIGTERM, then SIGKILL after two seconds; reaps the child.
fn terminate(c: &mut Child) {
    // SAFETY: signalling our own child; no memory effects.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Starts `lectern-agent session-helper` as the session's user, with only the
/// environment the session needs.
fn spawn(exe: &PathBuf, cfg: &ServiceConfig, s: &Session) -> std::io::Result<Child> {
    let backend = match cfg.backend {
        BackendKind::X11 => "x11",
        BackendKind::Headless => "headless",
    };
    let mut cmd = Command::new(exe);
    cmd.arg("session-helper")
        .arg("--socket")
        .arg(&cfg.socket)
        .arg("--session")
        .arg(&s.key)
        .arg("--backend")
        .arg(backend)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("DISPLAY", &s.display)
        .env("HOME", &s.user.home)
        .env("USER", &s.user.name)
        .env("LOGNAME", &s.user.name)
        .stdin(Stdio::null())
        .current_dir("/");
    for key in ["RUST_LOG", "LECTERN_URL_OPENER", "JOURNAL_STREAM"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    if let Some(x) = &s.xauthority {
        cmd.env("XAUTHORITY", x);
    }
    // With a per-user systemd (logind desktops), the session's sound server and
    // bus live in /run/user/UID, and programs started for the student (the
    // browser behind "open website") go to the user's own manager: outside the
    // agent's sandbox and cgroup, so they keep a writable home and survive an
    // agent restart.
    let runtime = PathBuf::from(format!("/run/user/{}", s.user.uid));
    if runtime.join("bus").exists() {
        cmd.env("XDG_RUNTIME_DIR", &runtime).env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/bus", runtime.display()),
        );
        if std::env::var_os("LECTERN_URL_OPENER").is_none() {
            let mut opener = format!(
                "systemd-run --user --quiet --collect -E DISPLAY={}",
                s.display
            );
            if let Some(x) = &s.xauthority {
                opener.push_str(&format!(" -E \"XAUTHORITY={}\"", x.display()));
            }
            opener.push_str(" -- xdg-open");
            cmd.env("LECTERN_URL_OPENER", opener);
        }
    }
    if let Some(id) = &s.logind_id {
        cmd.env("XDG_SESSION_ID", id);
    }
    if let Some(h) = &cfg.hostname {
        cmd.env("LECTERN_HOSTNAME", h);
    }
    let (uid, gid, groups) = (s.user.uid, s.user.gid, s.user.groups.clone());
    // SAFETY: only async-signal-safe calls, on data built before the fork.
    // Groups first, then gid, then uid: each step needs the privilege the next
    // one gives up. (Command::uid would drop it before pre_exec hooks run.)
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
