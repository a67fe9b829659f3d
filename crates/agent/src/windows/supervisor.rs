//! Keeps one helper (and one pipe) per interactive session: looks again at
//! once when the service control manager reports a session change, and
//! every few seconds anyway (Wine never reports any); restarts a helper that
//! died; stops helper and pipe when the session ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle as Runtime;
use tokio::task::JoinHandle;

use super::pipe;
use super::sessions::{self, Helper, WinSession};
use crate::config::ServiceConfig;
use crate::service::{Expected, LiveStatus, Registry};
use crate::windows_rules::SessionChange;

/// Wait before restarting a helper that died, so a crashing helper cannot spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// A session-change notice from the service control manager: reason and
/// session id.
pub type Notice = (u32, u32);

struct Running {
    session: WinSession,
    pipe: Option<JoinHandle<()>>,
    helper: Option<Helper>,
    starts: u32,
    restart_at: Instant,
}

/// What the supervisor works with.
pub struct Supervisor {
    /// The service's configuration (poll interval).
    pub cfg: ServiceConfig,
    /// The helpers' registry.
    pub registry: Arc<Registry<WinSession>>,
    /// The status `status` shows.
    pub live: Arc<Mutex<LiveStatus>>,
    /// The runtime serving the pipes.
    pub runtime: Runtime,
    /// Set when the service stops.
    pub stop: Arc<AtomicBool>,
}

impl Supervisor {
    /// Runs until `stop` turns true, then stops every helper and pipe.
    pub fn run(self, notices: Receiver<Notice>) {
        let exe = std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "lectern-agent.exe".into());
        let mut running: HashMap<String, Running> = HashMap::new();
        let poll = Duration::from_secs(self.cfg.session_poll_secs.max(1));
        let mut next_scan = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_scan {
                next_scan = Instant::now() + poll;
                self.rescan(&mut running);
            }
            for (key, r) in running.iter_mut() {
                self.keep_helper(&exe, key, r);
            }
            match notices.recv_timeout(Duration::from_millis(200)) {
                Ok(n) => {
                    if self.on_notice(n) {
                        next_scan = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // No service control manager (console run): poll only.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200))
                }
            }
        }
        for (_, r) in running.drain() {
            stop_session(r);
        }
    }

    /// Handles one notice; true when the sessions must be looked at again.
    fn on_notice(&self, (reason, id): Notice) -> bool {
        match crate::windows_rules::session_change(reason) {
            SessionChange::Rescan => {
                tracing::info!(session = id, reason, "session change");
                true
            }
            SessionChange::Locked => {
                tracing::info!(session = id, "session locked");
                false
            }
            SessionChange::Unlocked => {
                tracing::info!(session = id, "session unlocked");
                false
            }
            SessionChange::Ignore => false,
        }
    }

    /// Stops what belongs to ended sessions; adds new ones.
    fn rescan(&self, running: &mut HashMap<String, Running>) {
        let now = sessions::discover();
        let gone: Vec<String> = running
            .iter()
            .filter(|(k, r)| !now.iter().any(|s| &s.key == *k && *s == r.session))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(r) = running.remove(&key) {
                tracing::info!(session = %key, "session ended; stopping its helper");
                self.registry.record(session_event("logout", &r.session));
                self.registry.set_expected(&key, None);
                stop_session(r);
            }
        }
        for s in now {
            if running.contains_key(&s.key) {
                continue;
            }
            // The pipe registers with the runtime that serves it.
            let bound = {
                let _guard = self.runtime.enter();
                pipe::bind_session(&s)
            };
            let pipe = match bound {
                Ok((first, name, sddl)) => self.runtime.spawn(pipe::serve_session(
                    first,
                    name,
                    sddl,
                    s.clone(),
                    self.registry.clone(),
                    self.live.clone(),
                )),
                Err(e) => {
                    // Someone else holds the name: no helper, it would talk to them.
                    tracing::error!(session = %s.key, "no helper for this session: {e}");
                    continue;
                }
            };
            self.registry.record(session_event("login", &s));
            running.insert(
                s.key.clone(),
                Running {
                    session: s,
                    pipe: Some(pipe),
                    helper: None,
                    starts: 0,
                    restart_at: Instant::now(),
                },
            );
        }
    }

    /// Restarts the session's helper if it is not running.
    fn keep_helper(&self, exe: &str, key: &str, r: &mut Running) {
        if let Some(h) = &r.helper {
            if !sessions::has_exited(h) {
                return;
            }
            tracing::warn!(session = %key, pid = h.pid, "helper exited; restarting it");
            r.helper = None;
            r.restart_at = Instant::now() + RESTART_DELAY;
            self.registry.set_expected(key, Some(expected(r, 0)));
        }
        if Instant::now() < r.restart_at {
            return;
        }
        match sessions::start_helper(exe, &r.session) {
            Ok(h) => {
                r.starts += 1;
                let pid = h.pid;
                r.helper = Some(h);
                self.registry.set_expected(key, Some(expected(r, pid)));
                tracing::info!(session = %key, user = %r.session.user, pid, "helper started");
            }
            Err(e) => {
                tracing::error!(session = %key, "cannot start a helper: {e}");
                r.restart_at = Instant::now() + RESTART_DELAY * 5;
            }
        }
    }
}

fn stop_session(mut r: Running) {
    if let Some(h) = r.helper.take() {
        sessions::terminate(&h);
    }
    if let Some(p) = r.pipe.take() {
        p.abort();
    }
}

fn session_event(kind: &str, s: &WinSession) -> lectern_proto::ActivityEvent {
    lectern_proto::ActivityEvent {
        kind: kind.into(),
        user: Some(s.user.clone()),
        title: Some(s.place.clone()),
        at: crate::now_ms(),
        ..Default::default()
    }
}

fn expected(r: &Running, pid: u32) -> Expected<WinSession> {
    Expected {
        session: r.session.clone(),
        pid,
        starts: r.starts,
    }
}
