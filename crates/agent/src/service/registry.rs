//! The service's view of its helpers: who was started for which session,
//! who is connected, and the state every session must show (lock, web block,
//! policy, broadcast), which is re-applied whenever a helper (re)connects.
//!
//! Platform-free: sessions are whatever the platform finds ([`SessionInfo`]:
//! logind sessions on Linux, WTS sessions on Windows), and a helper's
//! connection is any local stream. The stream is served by tasks on the
//! runtime that calls [`Registry::connect`]; [`Registry::call`] blocks its
//! caller until the helper answers, so it must not run on that runtime's
//! threads (the service gives local connections a runtime of their own).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use lectern_proto::{Capability, Policy};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc as queue, oneshot};

use super::device_policy::DevicePolicy;
use crate::ipc::{self, Account, Envelope, Peer, Reply, Request};
use crate::DesktopError;

/// A graphical session the service runs a helper in, as the platform found it.
pub trait SessionInfo: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Stable key the helper names when it connects: a logind id,
    /// `static:<display>`, a Windows session id.
    fn key(&self) -> &str;
    /// The user's login name.
    fn user(&self) -> &str;
    /// The account the helper runs as, and must connect as.
    fn account(&self) -> &Account;
    /// Where the session shows: an X display, a Windows session.
    fn place(&self) -> &str;
    /// Ends the session (a teacher's "log out").
    fn end(&self) -> Result<(), String>;
}

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
    /// The acceptable use policy waiting to be accepted (in memory: the
    /// server offers it again after a restart).
    #[serde(skip)]
    pub aup: Option<lectern_proto::aup::AcceptableUse>,
    /// The student sign-in on screen (in memory: the server says again at
    /// each connection who is signed in).
    #[serde(skip)]
    pub sign_in: Option<lectern_desktop::SignInScreen>,
    /// A student is signed in (the corner widgets offer "Sign out").
    #[serde(skip)]
    pub signed_in: bool,
}

/// A helper the supervisor started and expects to hear from.
#[derive(Debug, Clone)]
pub struct Expected<S> {
    /// The session it serves.
    pub session: S,
    /// Its process id (0 while not running).
    pub pid: u32,
    /// How many times it was started.
    pub starts: u32,
}

enum Waiter {
    Call(mpsc::Sender<(Reply, Vec<u8>)>),
    View(oneshot::Sender<bool>),
    Code(oneshot::Sender<String>),
}

/// A connected helper.
pub struct HelperConn {
    /// Session key.
    pub session: String,
    /// Process id, from the kernel.
    pub pid: u32,
    /// What its desktop can do.
    pub capabilities: Vec<Capability>,
    /// Whether it takes [`Request::SetSchool`] (older helpers do not).
    pub takes_school: bool,
    /// Whether it takes [`Request::SetLogo`].
    pub takes_logo: bool,
    /// Whether it says when its session changed (older helpers do not).
    pub notifies: bool,
    /// It said some changes cannot be signalled now: it is polled.
    polls: AtomicBool,
    /// Encoded frames for the connection's writer task.
    outbox: queue::Sender<Vec<u8>>,
    waiters: Mutex<HashMap<u64, Waiter>>,
}

impl HelperConn {
    fn send(&self, id: u64, req: Request, payload: &[u8]) -> std::io::Result<()> {
        let frame = ipc::encode_frame(&Envelope { id, body: req }, payload)?;
        ipc::queue_frame(&self.outbox, frame)
    }
}

/// What a helper's hello says it does (later additions to the helper
/// protocol included: older helpers hang up on a request they cannot read).
pub struct HelperCaps {
    /// What its desktop can do.
    pub capabilities: Vec<Capability>,
    /// Whether it takes [`Request::SetSchool`].
    pub takes_school: bool,
    /// Whether it takes [`Request::SetLogo`].
    pub takes_logo: bool,
    /// Whether it sends [`Reply::Changed`].
    pub notifies: bool,
}

/// Everything the service's threads share about helpers.
pub struct Registry<S> {
    /// Browser extensions talking to this machine's agent.
    pub extensions: Arc<super::extension::Extensions>,
    /// The server's host names (every gateway of a cluster), never
    /// blocked by the web filter.
    pub server_host: Mutex<Vec<String>>,
    school: Mutex<Option<String>>,
    /// The school's logo (PNG), for helpers' lock screens.
    logo: Mutex<Option<Vec<u8>>>,
    /// The device's recent chat lines (at most
    /// [`lectern_proto::requests::HISTORY_LINES`]), kept in memory only, so a
    /// restarted helper's chat shows them.
    chat: Mutex<Vec<lectern_proto::requests::ChatLine>>,
    expected: Mutex<HashMap<String, Expected<S>>>,
    activity: Mutex<Vec<lectern_proto::ActivityEvent>>,
    last_focus: Mutex<(Option<String>, Option<String>)>,
    connected: Mutex<Vec<Arc<HelperConn>>>,
    desired: Mutex<Desired>,
    desired_file: Option<PathBuf>,
    next_id: AtomicU64,
    /// Printing and removable media, enforced by the service itself.
    devices: Mutex<Devices>,
}

/// The service's [`DevicePolicy`] and what it last reported.
#[derive(Default)]
struct Devices {
    policy: Option<Box<dyn DevicePolicy>>,
    /// The users it was last applied to.
    users: Vec<String>,
    /// What it could not enforce (`None`: there is no device policy).
    unsupported: Option<Vec<String>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: SessionInfo> Registry<S> {
    /// A registry keeping its desired state in `desired_file` (if any).
    pub fn new(desired_file: Option<PathBuf>) -> Arc<Self> {
        let desired = desired_file
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Arc::new(Registry {
            extensions: Default::default(),
            server_host: Mutex::new(Vec::new()),
            school: Mutex::new(None),
            logo: Mutex::new(None),
            chat: Mutex::new(Vec::new()),
            expected: Mutex::new(HashMap::new()),
            activity: Mutex::new(Vec::new()),
            last_focus: Mutex::new((None, None)),
            connected: Mutex::new(Vec::new()),
            desired: Mutex::new(desired),
            desired_file,
            next_id: AtomicU64::new(1),
            devices: Mutex::new(Devices::default()),
        })
    }

    /// Records an activity event (logins, power, focus changes).
    pub fn record(&self, event: lectern_proto::ActivityEvent) {
        let mut a = guard(&self.activity);
        if a.len() < 10_000 {
            a.push(event);
        }
        drop(a);
        self.extensions.changes.state.notify_one();
    }

    /// What the service's session waits on: helpers' and extensions'
    /// changes, recorded events.
    pub fn changes(&self) -> Arc<lectern_desktop::Changes> {
        self.extensions.changes.clone()
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

    /// The user of the session with `key`, if it is served.
    pub fn session_user(&self, key: &str) -> Option<String> {
        guard(&self.expected)
            .get(key)
            .map(|e| e.session.user().to_string())
    }

    /// The user whose session runs as `account`, if any.
    pub fn user_of(&self, account: &Account) -> Option<String> {
        guard(&self.expected)
            .values()
            .find(|e| e.session.account() == account)
            .map(|e| e.session.user().to_string())
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
    pub fn expected(&self) -> Vec<Expected<S>> {
        let mut v: Vec<_> = guard(&self.expected).values().cloned().collect();
        v.sort_by(|a, b| a.session.key().cmp(b.session.key()));
        v
    }

    /// Records (or forgets, with `None`) the helper for a session.
    pub fn set_expected(&self, key: &str, e: Option<Expected<S>>) {
        let mut m = guard(&self.expected);
        match e {
            Some(e) => {
                m.insert(key.to_string(), e);
            }
            None => {
                m.remove(key);
            }
        }
        drop(m);
        // Device settings apply to the session users: follow logins and logouts.
        if self.session_users() != guard(&self.devices).users {
            self.enforce_devices();
        }
    }

    /// The users of the sessions served, sorted, once each.
    fn session_users(&self) -> Vec<String> {
        let mut users: Vec<String> = guard(&self.expected)
            .values()
            .map(|e| e.session.user().to_string())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Hands the device settings to `policy` and applies the current policy.
    pub fn set_device_policy(&self, policy: Box<dyn DevicePolicy>) {
        guard(&self.devices).policy = Some(policy);
        self.enforce_devices();
    }

    /// Applies the current policy's device settings for the session users.
    pub fn enforce_devices(&self) {
        let policy = self.desired().policy.clone().unwrap_or_default();
        let users = self.session_users();
        let mut d = guard(&self.devices);
        let Some(p) = d.policy.as_mut() else { return };
        let unsupported = p.enforce(&policy, &users);
        d.users = users;
        d.unsupported = Some(unsupported);
    }

    /// The device settings the service cannot enforce (`None`: it enforces
    /// none, and the helpers' answer stands).
    pub fn device_unsupported(&self) -> Option<Vec<String>> {
        guard(&self.devices).unsupported.clone()
    }

    /// The session a connecting helper may serve: only the process the
    /// supervisor started for `key`, running as that session's account.
    pub fn admit(&self, key: &str, peer: &Peer) -> Result<S, String> {
        let m = guard(&self.expected);
        let e = m
            .get(key)
            .ok_or_else(|| format!("no session {key:?} is served here"))?;
        if e.pid == 0 || e.pid != peer.pid || e.session.account() != &peer.account {
            return Err(format!(
                "pid {} ({}) is not the helper started for session {key:?}",
                peer.pid, peer.account
            ));
        }
        Ok(e.session.clone())
    }

    /// Adds a connected helper, serves its stream with a reader and a writer
    /// task on the current runtime, then brings the session up to the
    /// desired state (off the runtime: that waits for the helper's answers).
    pub fn connect<T>(self: &Arc<Self>, session: String, pid: u32, caps: HelperCaps, stream: T)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (outbox, queued) = queue::channel(ipc::OUTBOX);
        let conn = Arc::new(HelperConn {
            session,
            pid,
            capabilities: caps.capabilities,
            takes_school: caps.takes_school,
            takes_logo: caps.takes_logo,
            notifies: caps.notifies,
            polls: AtomicBool::new(false),
            outbox,
            waiters: Mutex::new(HashMap::new()),
        });
        guard(&self.connected).retain(|c| c.session != conn.session);
        guard(&self.connected).push(conn.clone());
        tracing::info!(session = %conn.session, pid = conn.pid, "helper connected");
        let changes = self.changes();
        if !conn.notifies {
            changes.unsignalled_source(true);
        }
        changes.state.notify_one();
        tokio::spawn(ipc::drain_outbox(writer, queued));
        let me = self.clone();
        let reader_conn = conn.clone();
        tokio::spawn(async move { me.read_replies(reader_conn, reader).await });
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.reapply(&conn));
    }

    async fn read_replies<R: AsyncRead + Unpin>(&self, conn: Arc<HelperConn>, mut stream: R) {
        loop {
            match ipc::read_frame::<Envelope<Reply>, _>(&mut stream).await {
                Ok((env, _)) if env.id == ipc::NOTICE_ID => self.notice(&conn, &env.body),
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
                    Some(Waiter::Code(tx)) => {
                        if let Reply::SchoolCode { code: Some(code) } = env.body {
                            let _ = tx.send(code);
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
        let changes = self.changes();
        if !conn.notifies || conn.polls.load(Ordering::Relaxed) {
            changes.unsignalled_source(false);
        }
        changes.state.notify_one();
    }

    /// A helper's unasked notice that its session changed.
    fn notice(&self, conn: &HelperConn, body: &Reply) {
        if let Reply::Changed {
            state,
            screen,
            polls,
        } = *body
        {
            let changes = self.changes();
            if conn.polls.swap(polls, Ordering::Relaxed) != polls {
                changes.unsignalled_source(polls);
            }
            if state {
                changes.state.notify_one();
            }
            if screen {
                changes.screen.notify_one();
            }
        }
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
        if let Err(e) = conn.send(id, req, payload) {
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
        if conn.send(id, req, &[]).is_err() {
            guard(&conn.waiters).remove(&id);
        }
        rx
    }

    /// Asks the session of `conn` for the school's code (the registration
    /// form); the receiver closes without one if the form is closed or
    /// cannot be shown there.
    pub fn ask_school_code(
        &self,
        conn: &HelperConn,
        error: Option<&str>,
    ) -> oneshot::Receiver<String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        guard(&conn.waiters).insert(id, Waiter::Code(tx));
        let req = Request::AskSchoolCode {
            error: error.map(str::to_owned),
        };
        if conn.send(id, req, &[]).is_err() {
            guard(&conn.waiters).remove(&id);
        }
        rx
    }

    /// Records the enrolled school and tells every connected helper, so their
    /// lock screens name it; helpers that connect later learn it on admission
    /// ([`Registry::connect`]). Does not wait for the helpers' replies: it is
    /// called from the server session's runtime.
    pub fn set_school(&self, school: &str) {
        *guard(&self.school) = Some(school.to_string());
        for conn in self.connected().iter().filter(|c| c.takes_school) {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let req = Request::SetSchool {
                school: school.to_string(),
            };
            if let Err(e) = conn.send(id, req, &[]) {
                tracing::warn!(session = %conn.session, "cannot tell the helper the school: {e}");
            }
        }
    }

    /// Records the school's logo (PNG; `None`: none) and sends it to every
    /// connected helper that takes it; later helpers get it on admission.
    pub fn set_school_logo(&self, png: Option<&[u8]>) {
        *guard(&self.logo) = png.map(<[u8]>::to_vec);
        let present = png.is_some();
        for conn in self.connected().iter().filter(|c| c.takes_logo) {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let req = Request::SetLogo { present };
            if let Err(e) = conn.send(id, req, png.unwrap_or_default()) {
                tracing::warn!(session = %conn.session, "cannot tell the helper the logo: {e}");
            }
        }
    }

    /// Follows the chat lines the server sends (a history replaces them, a
    /// line adds one), keeping the newest few for helpers that connect later.
    pub fn note_chat(&self, notice: &lectern_desktop::StudentNotice) {
        use lectern_desktop::StudentNotice;
        let mut chat = guard(&self.chat);
        match notice {
            StudentNotice::ChatHistory { lines } => chat.clone_from(lines),
            StudentNotice::Chat { line } => chat.push(line.clone()),
            _ => return,
        }
        let extra = chat
            .len()
            .saturating_sub(lectern_proto::requests::HISTORY_LINES);
        chat.drain(..extra);
    }

    /// What a freshly connected helper is told of the chat: the recent
    /// lines, if there are any.
    fn chat_restore(&self) -> Option<Request> {
        let lines = guard(&self.chat).clone();
        (!lines.is_empty()).then_some(Request::Notice {
            notice: lectern_desktop::StudentNotice::ChatHistory { lines },
        })
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
        // First, so a lock restored below already names the school.
        if let Some(school) = guard(&self.school).clone().filter(|_| conn.takes_school) {
            steps.push(Request::SetSchool { school });
        }
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
        if let Some(policy) = d.aup {
            steps.push(Request::AcceptableUse {
                policy: Some(policy),
            });
        }
        if d.signed_in {
            steps.push(Request::SignedIn { signed_in: true });
        }
        if let Some(screen) = d.sign_in {
            steps.push(Request::StudentSignIn {
                screen: Some(screen),
            });
        }
        steps.extend(self.chat_restore());
        let logo = guard(&self.logo).clone().filter(|_| conn.takes_logo);
        if let Some(png) = logo {
            // Before the lock below, so it shows the logo from the start.
            let req = Request::SetLogo { present: true };
            if let Err(e) = self.call(conn, req, &png) {
                tracing::warn!(session = %conn.session, "cannot restore the logo: {e}");
            }
        }
        for req in steps {
            if let Err(e) = self.call(conn, req, &[]) {
                tracing::warn!(session = %conn.session, "cannot restore state: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_desktop::StudentNotice;
    use lectern_proto::requests::{ChatLine, HISTORY_LINES};

    #[derive(Debug, Clone)]
    struct NoSession(Account);

    impl SessionInfo for NoSession {
        fn key(&self) -> &str {
            "s"
        }
        fn user(&self) -> &str {
            "amy"
        }
        fn account(&self) -> &Account {
            &self.0
        }
        fn place(&self) -> &str {
            "seat"
        }
        fn end(&self) -> Result<(), String> {
            Ok(())
        }
    }

    fn line(n: i64) -> ChatLine {
        ChatLine {
            id: n,
            from_teacher: n % 2 == 0,
            author: "x".into(),
            text: format!("line {n}"),
            at: n,
        }
    }

    fn restored(r: &Registry<NoSession>) -> Vec<i64> {
        match r.chat_restore() {
            Some(Request::Notice {
                notice: StudentNotice::ChatHistory { lines },
            }) => lines.iter().map(|l| l.id).collect(),
            None => Vec::new(),
            Some(other) => panic!("{other:?}"),
        }
    }

    /// A restarted helper gets the chat its predecessor showed: the server's
    /// history, then each new line, the newest 20; a new (empty) history
    /// clears it.
    #[test]
    fn a_new_helper_gets_the_recent_chat() {
        let r = Registry::<NoSession>::new(None);
        assert!(r.chat_restore().is_none(), "nothing said, nothing sent");
        r.note_chat(&StudentNotice::ChatHistory {
            lines: (1..=19).map(line).collect(),
        });
        r.note_chat(&StudentNotice::Chat { line: line(20) });
        r.note_chat(&StudentNotice::Chat { line: line(21) });
        r.note_chat(&StudentNotice::HandRaised);
        let want: Vec<i64> = (2..=21).collect();
        assert_eq!(want.len(), HISTORY_LINES);
        assert_eq!(restored(&r), want);
        r.note_chat(&StudentNotice::ChatHistory { lines: Vec::new() });
        assert!(r.chat_restore().is_none(), "another user: cleared");
    }
}
