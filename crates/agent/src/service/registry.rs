//! The service's view of its helpers: who was started for which session,
//! who is connected, and the state every session must show (lock, web block,
//! policy, broadcast), which is re-applied whenever a helper (re)connects.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use lectern_proto::{Capability, Policy};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::sessions::Session;
use crate::ipc::{self, Envelope, Reply, Request};
use crate::DesktopError;

/// How long a helper may take to answer an ordinary request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What every session must show, kept across helper restarts (and, in
/// `desired.json`, across service restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Desired {
    /// `Some(text)`: a teacher locked the screens.
    pub lock: Option<Option<String>>,
    /// A teacher blocked the web.
    pub internet_blocked: bool,
    /// A broadcast is on, with this title.
    pub broadcast: Option<String>,
    /// A teacher's web lists: mode, allow list, block list.
    pub web_filter: Option<(lectern_proto::WebFilterMode, Vec<String>, Vec<String>)>,
    /// The last policy (kept in memory; the session stores it on disk).
    #[serde(skip)]
    pub policy: Option<Policy>,
}

/// A helper the supervisor started and expects to hear from.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The session it serves.
    pub session: Session,
    /// Its process id (0 while not running).
    pub pid: u32,
    /// How many times it was started.
    pub starts: u32,
}

enum Waiter {
    Call(mpsc::Sender<(Reply, Vec<u8>)>),
    View(oneshot::Sender<bool>),
}

/// A connected helper.
pub struct HelperConn {
    /// Session key.
    pub session: String,
    /// Process id, from the kernel.
    pub pid: u32,
    /// What its desktop can do.
    pub capabilities: Vec<Capability>,
    writer: Mutex<UnixStream>,
    waiters: Mutex<HashMap<u64, Waiter>>,
}

/// Everything the service's threads share about helpers.
pub struct Registry {
    /// Browser extensions talking to this machine's agent.
    pub extensions: Arc<super::extension::Extensions>,
    /// The server's host name, never blocked by the web filter.
    pub server_host: Mutex<Option<String>>,
    expected: Mutex<HashMap<String, Expected>>,
    activity: Mutex<Vec<lectern_proto::ActivityEvent>>,
    last_focus: Mutex<(Option<String>, Option<String>)>,
    connected: Mutex<Vec<Arc<HelperConn>>>,
    desired: Mutex<Desired>,
    desired_file: Option<PathBuf>,
    next_id: AtomicU64,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// A registry keeping its desired state in `desired_file` (if any).
    pub fn new(desired_file: Option<PathBuf>) -> Arc<Self> {
        let desired = desired_file
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Arc::new(Registry {
            extensions: Default::default(),
            server_host: Mutex::new(None),
            expected: Mutex::new(HashMap::new()),
            activity: Mutex::new(Vec::new()),
            last_focus: Mutex::new((None, None)),
            connected: Mutex::new(Vec::new()),
            desired: Mutex::new(desired),
            desired_file,
            next_id: AtomicU64::new(1),
        })
    }

    /// Records an activity event (logins, power, focus changes).
    pub fn record(&self, event: lectern_proto::ActivityEvent) {
        let mut a = guard(&self.activity);
        if a.len() < 10_000 {
            a.push(event);
        }
    }

    /// Events recorded since the last call.
    pub fn take_activity(&self) -> Vec<lectern_proto::ActivityEvent> {
        std::mem::take(&mut *guard(&self.activity))
    }

    /// Records an `app` event when the focused application or title changed.
    pub fn note_focus(&self, user: Option<&str>, app: Option<&str>, title: Option<&str>) {
        let now = (app.map(str::to_string), title.map(str::to_string));
        let mut last = guard(&self.last_focus);
        if *last == now || now.0.is_none() {
            return;
        }
        *last = now.clone();
        drop(last);
        self.record(lectern_proto::ActivityEvent {
            kind: "app".into(),
            user: user.map(str::to_string),
            app: now.0,
            title: now.1,
            at: crate::now_ms(),
            ..Default::default()
        });
    }

    /// The user whose session runs as `uid`, if any.
    pub fn user_of_uid(&self, uid: u32) -> Option<String> {
        guard(&self.expected)
            .values()
            .find(|e| e.session.user.uid == uid)
            .map(|e| e.session.user.name.clone())
    }

    /// The web settings extensions must enforce now: the teacher's web block
    /// or the policy's, and the teacher's lists or else the policy's.
    pub fn web_policy(&self) -> crate::ipc::WebPolicy {
        use lectern_proto::WebFilterMode;
        let d = self.desired().clone();
        let policy = d.policy.unwrap_or_default();
        let mut w = crate::ipc::WebPolicy {
            internet_blocked: d.internet_blocked || policy.internet_blocked,
            mode: policy.web_filter_mode,
            allow: policy.allow_list,
            block: policy.block_list,
            always_allowed: guard(&self.server_host).iter().cloned().collect(),
            set_by: if d.internet_blocked {
                "your teacher"
            } else {
                "your school"
            }
            .into(),
        };
        if let Some((mode, allow, block)) = d.web_filter.filter(|f| f.0 != WebFilterMode::Off) {
            w.mode = mode;
            w.allow = allow;
            w.block = block;
            if !w.internet_blocked {
                w.set_by = "your teacher".into();
            }
        }
        w
    }

    /// The sessions the supervisor runs helpers for.
    pub fn expected(&self) -> Vec<Expected> {
        let mut v: Vec<_> = guard(&self.expected).values().cloned().collect();
        v.sort_by(|a, b| a.session.key.cmp(&b.session.key));
        v
    }

    /// Records (or forgets, with `None`) the helper for a session.
    pub fn set_expected(&self, key: &str, e: Option<Expected>) {
        let mut m = guard(&self.expected);
        match e {
            Some(e) => {
                m.insert(key.to_string(), e);
            }
            None => {
                m.remove(key);
            }
        }
    }

    /// The session a connecting helper may serve: only the process the
    /// supervisor started for `key`, running as that session's user.
    pub fn admit(&self, key: &str, pid: u32, uid: u32) -> Result<Session, String> {
        let m = guard(&self.expected);
        let e = m
            .get(key)
            .ok_or_else(|| format!("no session {key:?} is served here"))?;
        if e.pid != pid || e.session.user.uid != uid {
            return Err(format!(
                "pid {pid} (uid {uid}) is not the helper started for session {key:?}"
            ));
        }
        Ok(e.session.clone())
    }

    /// Adds a connected helper and starts its reader thread; then brings the
    /// session up to the desired state.
    pub fn connect(
        self: &Arc<Self>,
        session: String,
        pid: u32,
        capabilities: Vec<Capability>,
        stream: UnixStream,
    ) -> std::io::Result<()> {
        let conn = Arc::new(HelperConn {
            session,
            pid,
            capabilities,
            writer: Mutex::new(stream.try_clone()?),
            waiters: Mutex::new(HashMap::new()),
        });
        guard(&self.connected).retain(|c| c.session != conn.session);
        guard(&self.connected).push(conn.clone());
        let me = self.clone();
        let reader_conn = conn.clone();
        std::thread::spawn(move || me.read_replies(reader_conn, stream));
        self.reapply(&conn);
        Ok(())
    }

    fn read_replies(&self, conn: Arc<HelperConn>, mut stream: UnixStream) {
        loop {
            match ipc::read_frame::<Envelope<Reply>>(&mut stream) {
                Ok((env, payload)) => match guard(&conn.waiters).remove(&env.id) {
                    Some(Waiter::Call(tx)) => {
                        let _ = tx.send((env.body, payload));
                    }
                    Some(Waiter::View(tx)) => {
                        if let Reply::ViewAnswer {
                            allowed: Some(allowed),
                        } = env.body
                        {
                            let _ = tx.send(allowed);
                        }
                    }
                    None => tracing::debug!(id = env.id, "late reply from a helper"),
                },
                Err(e) => {
                    tracing::info!(session = %conn.session, pid = conn.pid, "helper gone: {e}");
                    break;
                }
            }
        }
        guard(&self.connected).retain(|c| !Arc::ptr_eq(c, &conn));
        // Dropping the waiters fails every call still waiting on this helper.
        guard(&conn.waiters).clear();
    }

    /// Connected helpers, oldest first.
    pub fn connected(&self) -> Vec<Arc<HelperConn>> {
        guard(&self.connected).clone()
    }

    /// Sends `req` to `conn` and waits for its reply.
    pub fn call(
        &self,
        conn: &HelperConn,
        req: Request,
        payload: &[u8],
    ) -> Result<(Reply, Vec<u8>), DesktopError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        guard(&conn.waiters).insert(id, Waiter::Call(tx));
        let sent = ipc::write_frame(
            &mut *guard(&conn.writer),
            &Envelope { id, body: req },
            payload,
        );
        if let Err(e) = sent {
            guard(&conn.waiters).remove(&id);
            return Err(DesktopError::Failed(format!(
                "session helper unreachable: {e}"
            )));
        }
        rx.recv_timeout(CALL_TIMEOUT).map_err(|_| {
            guard(&conn.waiters).remove(&id);
            DesktopError::Failed(format!(
                "the helper of session {} did not answer",
                conn.session
            ))
        })
    }

    /// Asks the student of `conn` about live view.
    pub fn ask_view(
        &self,
        conn: &HelperConn,
        teacher: &str,
        timeout: Option<Duration>,
    ) -> oneshot::Receiver<bool> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        guard(&conn.waiters).insert(id, Waiter::View(tx));
        let req = Request::AskRemoteView {
            teacher: teacher.to_string(),
            timeout_secs: timeout.map(|t| t.as_secs().clamp(1, 120) as u32),
        };
        if ipc::write_frame(&mut *guard(&conn.writer), &Envelope { id, body: req }, &[]).is_err() {
            guard(&conn.waiters).remove(&id);
        }
        rx
    }

    /// The desired state, to change; saved by [`Registry::save_desired`].
    pub fn desired(&self) -> MutexGuard<'_, Desired> {
        guard(&self.desired)
    }

    /// Writes the desired state to its file (atomically).
    pub fn save_desired(&self) {
        let Some(path) = &self.desired_file else {
            return;
        };
        let bytes = serde_json::to_vec_pretty(&*self.desired()).unwrap_or_default();
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path)) {
            tracing::error!("cannot save {}: {e}", path.display());
        }
    }

    /// Brings a freshly connected helper's session to the desired state, so a
    /// restarted helper shows the lock (or broadcast) its predecessor showed.
    fn reapply(&self, conn: &HelperConn) {
        let d = self.desired().clone();
        let mut steps = Vec::new();
        if let Some(policy) = d.policy {
            steps.push(Request::ApplyPolicy { policy });
        }
        if let Some(text) = d.lock {
            steps.push(Request::Lock { text });
        }
        if d.internet_blocked {
            steps.push(Request::SetInternetBlocked { blocked: true });
        }
        if let Some(title) = d.broadcast {
            steps.push(Request::StartBroadcast { title });
        }
        for req in steps {
            if let Err(e) = self.call(conn, req, &[]) {
                tracing::warn!(session = %conn.session, "cannot restore state: {e}");
            }
        }
    }
}
