//! Starts a helper as the user of every graphical session, restarts it when
//! it dies, and stops it when its session ends.
//!
//! The thread sleeps (parked, no timer) until there is something to do: a
//! helper died (the service unparks it on `SIGCHLD`), a restart is due, the
//! sessions changed, or the service stops (it unparks it). It learns of
//! session changes, in order of preference (each fallback logged once):
//! logind's D-Bus signals ([`super::logind`]: woken only when the set of
//! sessions to serve changed); where the system bus cannot be reached,
//! inotify on logind's session files, then `loginctl`; with no logind at
//! all, `loginctl` every `session_poll_secs`. Static sessions never change,
//! so they are read once.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::logind::LogindWatch;
use super::sessions::{self, LogindSession, Session};
use crate::config::{BackendKind, ServiceConfig, SessionSource};
use crate::service::{Expected, Registry};

/// How long logind may take to list its sessions at start.
const BUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait before restarting a helper that died, so a crashing helper cannot spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

struct Running {
    session: Session,
    child: Option<Child>,
    starts: u32,
    restart_at: Instant,
}

/// What logind's bus says are the sessions to serve; `None` once the bus
/// connection is lost.
type BusFeed = Arc<Mutex<Option<Vec<LogindSession>>>>;

/// Where the supervisor learns which sessions there are.
enum Source {
    /// `agent.toml`'s `[[session]]` tables, read once.
    Static,
    /// logind's D-Bus signals, followed by a task on the service's runtime.
    Bus(BusFeed, tokio::task::JoinHandle<()>),
    /// `loginctl`, run when logind's session files change.
    Files,
    /// `loginctl`, run every `session_poll_secs`.
    Timer,
}

/// Runs until `stop` turns true, then stops every helper. `rt` runs the task
/// that follows logind's bus signals.
pub fn supervise(
    cfg: ServiceConfig,
    registry: Arc<Registry<Session>>,
    stop: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/bin/lectern-agent"));
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut next_scan = Some(Instant::now());
    let rescan = Arc::new(AtomicBool::new(false));
    let mut source = match cfg.sessions {
        SessionSource::Static => Source::Static,
        SessionSource::Logind => {
            follow_bus(&rescan, &rt).unwrap_or_else(|| without_bus(&rescan, &stop, &cfg))
        }
    };
    let mut wakes: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if matches!(&source, Source::Bus(feed, _) if lock(feed).is_none()) {
            source = without_bus(&rescan, &stop, &cfg);
            next_scan = Some(Instant::now());
        }
        let due = next_scan.is_some_and(|t| Instant::now() >= t);
        if rescan.swap(false, Ordering::Relaxed) || due {
            next_scan = rescan_at(&cfg, &source);
            let now: Vec<Session> = current(&cfg, &source);
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
        park_until(next_wake(next_scan, &running));
        wakes += 1;
        tracing::trace!(wakes, "supervisor woke");
    }
    if let Source::Bus(_, task) = &source {
        task.abort();
    }
    for r in running.values_mut() {
        if let Some(c) = r.child.as_mut() {
            terminate(c);
        }
    }
}

/// When the sessions are looked at again without being told: only on the
/// timer fallback.
fn rescan_at(cfg: &ServiceConfig, source: &Source) -> Option<Instant> {
    match source {
        Source::Timer => Some(Instant::now() + Duration::from_secs(cfg.session_poll_secs.max(1))),
        _ => None,
    }
}

/// The sessions to serve now.
fn current(cfg: &ServiceConfig, source: &Source) -> Vec<Session> {
    match source {
        Source::Bus(feed, _) => sessions::from_logind(lock(feed).as_deref().unwrap_or(&[])),
        _ => sessions::discover(cfg),
    }
}

fn lock(feed: &BusFeed) -> std::sync::MutexGuard<'_, Option<Vec<LogindSession>>> {
    // A poisoned lock only means a panic elsewhere; the list is still whole.
    feed.lock().unwrap_or_else(|e| e.into_inner())
}

/// Follows logind on the system bus, waking this thread for a rescan each
/// time the sessions to serve change; `None` (logged) when the bus or
/// logind on it cannot be reached.
fn follow_bus(rescan: &Arc<AtomicBool>, rt: &tokio::runtime::Handle) -> Option<Source> {
    // A bus that accepts but never answers must not hold the service up.
    let start =
        rt.block_on(async { tokio::time::timeout(BUS_TIMEOUT, LogindWatch::start()).await });
    let watch = match start {
        Ok(Ok(w)) => w,
        Err(_) => {
            tracing::info!("logind did not answer on the system bus; watching its files");
            return None;
        }
        Ok(Err(e)) => {
            tracing::info!("cannot follow logind on the system bus: {e}; watching its files");
            return None;
        }
    };
    tracing::info!("following logind's sessions on the system bus");
    let feed: BusFeed = Arc::new(Mutex::new(Some(watch.usable())));
    let wake = {
        let (me, rescan) = (std::thread::current(), rescan.clone());
        move || {
            rescan.store(true, Ordering::Relaxed);
            me.unpark();
        }
    };
    let task = rt.spawn(relay(watch, feed.clone(), wake));
    Some(Source::Bus(feed, task))
}

/// Hands each change logind announces to the supervisor; on losing the bus,
/// says so (`None`) so the supervisor falls back to logind's files.
async fn relay(mut watch: LogindWatch, feed: BusFeed, wake: impl Fn()) {
    while let Some(now) = watch.next_change().await {
        *lock(&feed) = Some(now);
        wake();
    }
    tracing::warn!("lost the system bus; watching logind's files instead");
    *lock(&feed) = None;
    wake();
}

/// Without the bus: logind's files when they can be watched, else the timer.
fn without_bus(rescan: &Arc<AtomicBool>, stop: &Arc<AtomicBool>, cfg: &ServiceConfig) -> Source {
    if watch_logins(rescan, stop, cfg) {
        Source::Files
    } else {
        Source::Timer
    }
}

/// Has this thread woken for a rescan whenever logind's sessions change;
/// false when they cannot be watched (no logind here).
fn watch_logins(rescan: &Arc<AtomicBool>, stop: &Arc<AtomicBool>, cfg: &ServiceConfig) -> bool {
    let me = std::thread::current();
    let (rescan, stop) = (rescan.clone(), stop.clone());
    let dir = std::path::Path::new(super::login_monitor::LOGIND_SESSIONS);
    let woken = move || {
        rescan.store(true, Ordering::Relaxed);
        me.unpark();
        !stop.load(Ordering::Relaxed)
    };
    match super::login_monitor::watch(dir, woken) {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(
                "cannot watch {}: {e}; looking for sessions every {} s",
                dir.display(),
                cfg.session_poll_secs.max(1)
            );
            false
        }
    }
}

/// The first thing due: a look at the sessions or a helper's restart.
fn next_wake(next_scan: Option<Instant>, running: &HashMap<String, Running>) -> Option<Instant> {
    let restarts = running
        .values()
        .filter(|r| r.child.is_none())
        .map(|r| r.restart_at);
    next_scan.into_iter().chain(restarts).min()
}

/// Sleeps until `at` (without one: until unparked).
fn park_until(at: Option<Instant>) {
    match at {
        Some(t) => std::thread::park_timeout(t.saturating_duration_since(Instant::now())),
        None => std::thread::park(),
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
