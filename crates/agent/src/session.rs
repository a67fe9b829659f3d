use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    AgentMsg, Auth, DeviceInfo, ErrorCode, EvidenceAllowance, Hello, MediaFrame, MediaKind, Policy,
    RefusedFrame, ServerMsg, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{interval, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::connection::{connect, handshake, AgentStream, HandshakeError};
use crate::evidence::Shot;
use crate::{apply_command, encode_jpeg, Backoff, Desktop, StoredCredential};
use lectern_desktop::{StudentNotice, StudentRequest};
use lectern_proto::aup::{AcceptableUse, AupAnswer};

/// What an agent needs to run: its credential and its facts.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Enrollment result.
    pub credential: StoredCredential,
    /// Hostname, OS, version.
    pub info: DeviceInfo,
    /// Where the last policy is kept, so it is enforced offline and after a
    /// restart; `None` keeps it in memory only (the simulator).
    pub policy_file: Option<PathBuf>,
    /// Recent screen frames kept (one a second) as evidence for keyword
    /// violations; 0 keeps none and captures only when asked.
    pub evidence_frames: usize,
    /// Scan this device's activity for keywords here (the school's library
    /// comes from the server); otherwise the server scans it.
    pub scan_keywords: bool,
    /// The other schools this device is registered with, and where the
    /// student's choice of one goes.
    pub school_choice: SchoolChoice,
}

/// The other schools a device is registered with (by name), offered on the
/// sign-in screen where the policy allows it; the student's choice is sent
/// on `chosen`, and whoever runs the agent stops it and starts it again
/// with that school's credential (see `service::serve_server`).
#[derive(Debug, Clone, Default)]
pub struct SchoolChoice {
    /// The other schools' names.
    pub others: Vec<String>,
    /// Where a choice goes; `None`: none is taken.
    pub chosen: Option<tokio::sync::mpsc::UnboundedSender<Switch>>,
}

/// A move to another school, asked of whoever runs the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// The student chose this school on the sign-in screen.
    Chosen(String),
    /// The school in use refused this device for good (revoked, no longer
    /// known): another school it is registered with takes over, rather
    /// than the computer waiting on a school that has let it go.
    Refused,
}

/// Captures one evidence frame off the async threads, within the server's
/// per-frame limit (see [`crate::evidence`]).
async fn capture_evidence(
    desktop: &SharedDesktop,
    shot: Shot,
    allowance: Option<EvidenceAllowance>,
) -> Option<crate::safety::EvidenceFrame> {
    let d = desktop.clone();
    let max_bytes = crate::evidence::frame_limit(allowance);
    tokio::task::spawn_blocking(move || crate::evidence::take(&mut *lock(&d), shot, max_bytes))
        .await
        .ok()
        .flatten()
}

/// Most activity events in flight (sent, not yet acknowledged).
const ACTIVITY_WINDOW: u64 = 5_000;

/// The durable activity queue next to the policy file (in memory without one).
fn open_queue(cfg: &AgentConfig) -> crate::queue::EventQueue {
    use crate::queue::{EventQueue, DEFAULT_CAPACITY};
    let Some(dir) = cfg.policy_file.as_deref().and_then(|p| p.parent()) else {
        return EventQueue::in_memory(DEFAULT_CAPACITY);
    };
    let dir = dir.join("events");
    EventQueue::open(&dir, DEFAULT_CAPACITY).unwrap_or_else(|e| {
        tracing::error!(
            "cannot open the activity queue in {}: {e}; keeping events in memory",
            dir.display()
        );
        EventQueue::in_memory(DEFAULT_CAPACITY)
    })
}

/// Moves the desktop's new events into the queue (on disk first), after
/// scanning them for keywords: a match is held with the evidence of the
/// moment (the rolling buffer and a frame of now).
async fn collect_activity(
    desktop: &SharedDesktop,
    queue: &mut crate::queue::EventQueue,
    safety: &mut crate::safety::Safety,
    allowance: Option<EvidenceAllowance>,
) {
    let (events, typed) = {
        let mut d = lock(desktop);
        (d.take_activity(), d.take_typed())
    };
    let mut reports = safety.scan(&events);
    for t in &typed {
        reports.extend(safety.scan_typed(t));
    }
    // One frame of the moment for every match found now: a page with many
    // terms costs one full-size capture, not one each.
    let now = if reports.is_empty() {
        None
    } else {
        capture_evidence(desktop, Shot::Trigger, allowance).await
    };
    for report in reports {
        let mut frames: Vec<_> = safety.evidence.iter().cloned().collect();
        frames.extend(now.clone());
        tracing::warn!(term = %report.term, category = %report.category, "keyword violation");
        safety.hold(report, frames);
    }
    if let Err(e) = queue.push(events) {
        tracing::error!("cannot write activity events: {e}");
    }
}

/// Reports sent and remembered, in case the server refuses them for rate.
const SENT_REPORTS_KEPT: usize = 64;

/// Sends held violations, each followed by its evidence frames (as much as
/// the server's `allowance` takes); each report is remembered in `sent` so a
/// refused one can be held again.
async fn send_violations(
    ws: &mut AgentStream,
    safety: &mut crate::safety::Safety,
    allowance: Option<EvidenceAllowance>,
    sent: &mut std::collections::VecDeque<lectern_proto::ViolationReport>,
) -> anyhow::Result<()> {
    while let Some((report, frames)) = safety.pending.front() {
        if sent.len() >= SENT_REPORTS_KEPT {
            sent.pop_front();
        }
        sent.push_back(report.clone());
        send(ws, &AgentMsg::Violation(Box::new(report.clone()))).await?;
        send_evidence(
            ws,
            report.local_id | lectern_proto::AGENT_EVIDENCE,
            frames.clone(),
            allowance,
        )
        .await?;
        safety.pending.pop_front();
    }
    Ok(())
}

/// The frames the server accepts: none larger than allowed, and the newest
/// that fit the count (at most 255 without an allowance).
fn fit_evidence(
    mut frames: Vec<crate::safety::EvidenceFrame>,
    allowance: Option<EvidenceAllowance>,
) -> Vec<crate::safety::EvidenceFrame> {
    let (max_frames, max_bytes) = allowance.map_or((u8::MAX, usize::MAX), |a| {
        (a.max_frames, a.max_frame_bytes as usize)
    });
    frames.retain(|(_, _, jpeg)| jpeg.len() <= max_bytes);
    let skip = frames.len().saturating_sub(usize::from(max_frames));
    frames.drain(..skip);
    frames
}

/// Evidence frames for `violation_id`, oldest first.
async fn send_evidence(
    ws: &mut AgentStream,
    violation_id: u64,
    frames: Vec<crate::safety::EvidenceFrame>,
    allowance: Option<EvidenceAllowance>,
) -> anyhow::Result<()> {
    let frames = fit_evidence(frames, allowance);
    let total = frames.len() as u8; // At most 255 by fit_evidence.
    for (index, (width, height, jpeg)) in frames.into_iter().enumerate() {
        let header = lectern_proto::Evidence {
            violation_id,
            index: index as u8,
            total,
        };
        let payload = header.payload(&jpeg);
        let frame = MediaFrame {
            kind: MediaKind::Evidence,
            width,
            height,
            payload: &payload,
        };
        ws.send(Message::binary(frame.encode())).await?;
    }
    Ok(())
}

/// Sends queued events after `sent` while the in-flight window allows.
async fn send_activity(
    ws: &mut AgentStream,
    queue: &crate::queue::EventQueue,
    sent: &mut u64,
) -> anyhow::Result<()> {
    *sent = (*sent).max(queue.acked());
    while *sent - queue.acked() < ACTIVITY_WINDOW {
        let Some((first, mut events)) = queue.batch_after(*sent, lectern_proto::MAX_ACTIVITY_BATCH)
        else {
            break;
        };
        // Halve the batch until it fits in one frame.
        let msg = loop {
            let msg = AgentMsg::Activity {
                first_seq: Some(first),
                events: events.clone(),
            };
            if msg.encode().len() <= lectern_proto::MAX_TEXT_FRAME || events.len() == 1 {
                break msg;
            }
            events.truncate(events.len() / 2);
        };
        *sent = first + events.len() as u64 - 1;
        send(ws, &msg).await?;
    }
    Ok(())
}

/// Loads the stored policy, if any.
pub fn load_policy(path: &std::path::Path) -> Option<Policy> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("ignoring unreadable policy {}: {e}", path.display());
            None
        }
    }
}

fn save_policy(path: &std::path::Path, p: &Policy) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(p)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn apply(desktop: &SharedDesktop, p: &Policy) {
    let unsupported = lock(desktop).apply_policy(p);
    if !unsupported.is_empty() {
        tracing::warn!(
            version = p.version,
            ?unsupported,
            "policy settings this device cannot enforce"
        );
    }
}

/// The agent's connection state, for status displays and the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnStatus {
    /// Trying to connect (or waiting to retry).
    Connecting,
    /// In a session with the server.
    Connected,
    /// The server refused this device (revoked, unknown…); retrying slowly.
    Refused(String),
    /// Shut down.
    Stopped,
}

/// A desktop shared between the session and whoever else drives it (tests, the simulator).
pub type SharedDesktop = Arc<Mutex<dyn Desktop>>;

const JPEG_QUALITY: u8 = 70;

fn lock(d: &SharedDesktop) -> std::sync::MutexGuard<'_, dyn Desktop + 'static> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the agent until `shutdown` turns true: connect, hello, serve commands and
/// thumbnail requests; on any failure wait (exponential backoff with jitter) and
/// reconnect. Never returns early on errors.
pub async fn run_agent(
    cfg: AgentConfig,
    desktop: SharedDesktop,
    mut shutdown: watch::Receiver<bool>,
    status: Option<watch::Sender<ConnStatus>>,
) {
    let set = |s: ConnStatus| {
        if let Some(tx) = &status {
            tx.send_replace(s);
        }
    };
    if let Some(p) = cfg.policy_file.as_deref().and_then(load_policy) {
        tracing::info!(version = p.version, "enforcing the stored policy");
        apply(&desktop, &p);
    }
    let mut queue = open_queue(&cfg);
    let mut safety = if cfg.scan_keywords {
        let file = cfg
            .policy_file
            .as_deref()
            .and_then(|p| p.parent())
            .map(|d| d.join("keywords.json"));
        crate::safety::Safety::new(file, cfg.evidence_frames)
    } else {
        let mut s = crate::safety::Safety::off();
        s.capacity = cfg.evidence_frames;
        s.enabled = true;
        s
    };
    if let Some(p) = cfg.policy_file.as_deref().and_then(load_policy) {
        safety.enabled = p.keyword_policies;
    }
    // Outlives every session: a timed lock ends on time while offline too.
    let timer = crate::lock_timer::LockTimer::default();
    // So is the logo shown: a reconnect does not download it again.
    let look = crate::look::Look::default();
    // A shut down's countdown also runs on while the server is gone.
    let power = crate::power_timer::PowerTimer::default();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    // Who signed in here, and on which desktop user: outlives connections.
    let mut sign_in = crate::student_signin::SignInState::default();
    sign_in.flow.set_schools(cfg.school_choice.others.clone());
    loop {
        if *shutdown.borrow() {
            break;
        }
        set(ConnStatus::Connecting);
        let mut connected = false;
        // Offline: frames fit the default limit (the allowance comes with a welcome).
        collect_activity(&desktop, &mut queue, &mut safety, None).await;
        let result = session(
            &cfg,
            Device {
                desktop: &desktop,
                timer: &timer,
                look: &look,
                power: &power,
                sign_in: &mut sign_in,
            },
            &mut queue,
            &mut safety,
            &mut shutdown,
            &mut connected,
            &set,
        )
        .await;
        sign_in.take_down(&mut *lock(&desktop));
        // Whoever controlled the screen is gone with the session: never leave
        // the notice up or a button held.
        if let Err(e) = lock(&desktop).stop_control() {
            tracing::warn!("cannot end remote control: {e}");
        }
        if connected {
            // The last session worked: start the next wait from the bottom.
            backoff.reset();
        }
        let delay = match result {
            Ok(()) => break,
            Err(e) => match e.downcast_ref::<Refused>() {
                // Nothing changes by retrying sooner: wait long.
                Some(r) if r.code.is_permanent() => {
                    tracing::error!(device = cfg.credential.device_id, "{r}");
                    set(ConnStatus::Refused(r.to_string()));
                    // Only when the school let this device go: not for an
                    // agent too old for the server (updating it fixes that).
                    let let_go = matches!(r.code, ErrorCode::Revoked | ErrorCode::Unauthorized);
                    if let (true, Some(tx), false) = (
                        let_go,
                        &cfg.school_choice.chosen,
                        cfg.school_choice.others.is_empty(),
                    ) {
                        tracing::warn!(
                            "{} refused this computer: moving to another school",
                            cfg.credential.school
                        );
                        let _ = tx.send(Switch::Refused);
                    }
                    REFUSED_RETRY
                }
                _ => {
                    tracing::info!(device = cfg.credential.device_id, "disconnected: {e:#}");
                    backoff.next_delay()
                }
            },
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    }
    // What the desktop gathered since the last collection is this school's:
    // into its queue (on disk) before another school's session may start.
    collect_activity(&desktop, &mut queue, &mut safety, None).await;
    set(ConnStatus::Stopped);
}

/// Wait before retrying after a permanent refusal (revoked, unknown…).
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// The server closed the session on purpose and said why; the agent acts on
/// the typed code, never on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server refused this device: {code:?}: {message}")]
pub struct Refused {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// What the server said.
    pub message: String,
}

/// A failed hello as the reconnect loop sees it: a typed [`Refused`] or a
/// plain failure.
fn session_error(e: HandshakeError) -> anyhow::Error {
    match e {
        HandshakeError::Refused { code, message } => Refused { code, message }.into(),
        HandshakeError::Failed(e) => e,
    }
}

async fn send(ws: &mut AgentStream, msg: &AgentMsg) -> anyhow::Result<()> {
    ws.send(Message::text(msg.encode())).await?;
    Ok(())
}

async fn next_tick(t: &mut Option<(Interval, u32)>) -> u32 {
    match t {
        Some((i, width)) => {
            i.tick().await;
            *width
        }
        None => std::future::pending().await,
    }
}

/// The next live video frame, or never while there is no stream.
async fn next_video(v: &mut Option<crate::video::VideoStream>) -> Vec<u8> {
    match v {
        Some(v) => v.next().await,
        None => std::future::pending().await,
    }
}

/// Decodes and shows one broadcast frame off the async threads; a bad frame is
/// logged and skipped, never fatal.
async fn show_broadcast_frame(
    desktop: &SharedDesktop,
    bytes: tokio_tungstenite::tungstenite::Bytes,
) {
    let d = desktop.clone();
    let shown = tokio::task::spawn_blocking(move || match MediaFrame::decode(&bytes) {
        Ok(f) if f.kind == MediaKind::Broadcast => lock(&d)
            .broadcast_frame(f.payload)
            .map_err(|e| e.to_string()),
        Ok(f) => Err(format!(
            "unexpected media kind {:?} from the server",
            f.kind
        )),
        Err(e) => Err(e.to_string()),
    })
    .await;
    match shown {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("skipping broadcast frame: {e}"),
        Err(e) => tracing::warn!("broadcast frame task failed: {e}"),
    }
}

/// Shows broadcast frames on a task of its own, newest only: the session loop
/// just hands each frame over, so control messages (a stop, a lock) never wait
/// behind frames the desktop is still decoding, the connection is read as fast
/// as it arrives, and frames that come while one is being shown replace each
/// other (dropped, not queued).
struct FrameShower {
    tx: tokio::sync::watch::Sender<Option<tokio_tungstenite::tungstenite::Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl FrameShower {
    fn start(desktop: &SharedDesktop) -> Self {
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        let desktop = desktop.clone();
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let frame = rx.borrow_and_update().clone();
                if let Some(bytes) = frame {
                    show_broadcast_frame(&desktop, bytes).await;
                }
            }
        });
        FrameShower { tx, task }
    }

    /// The newest frame, shown once the one being shown is done.
    fn offer(&self, bytes: tokio_tungstenite::tungstenite::Bytes) {
        self.tx.send_replace(Some(bytes));
    }
}

impl Drop for FrameShower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connected session's state; the loop in [`session`] calls one method
/// per event.
struct Live<'a> {
    cfg: &'a AgentConfig,
    desktop: &'a SharedDesktop,
    /// A teacher's timed lock; adds its end to the state sent.
    timer: &'a crate::lock_timer::LockTimer,
    /// Power countdowns.
    power: &'a crate::power_timer::PowerTimer,
    queue: &'a mut crate::queue::EventQueue,
    safety: &'a mut crate::safety::Safety,
    ws: AgentStream,
    /// Thumbnail timer and width while someone watches.
    thumbs: Option<(Interval, u32)>,
    /// The live view's video while the server asks for it.
    video: Option<crate::video::VideoStream>,
    /// What the last policy says about pictures of the screen.
    screen: Policy,
    /// Live-view answers come back through here.
    answers_tx: mpsc::Sender<AgentMsg>,
    /// Highest activity sequence number sent.
    sent: u64,
    last_state: lectern_proto::DeviceState,
    /// Evidence the server takes for violations found here.
    allowance: Option<EvidenceAllowance>,
    /// No activity is sent before this (the server refused a batch).
    activity_paused_until: Option<tokio::time::Instant>,
    /// No violations are sent before this (the server refused one).
    violations_paused_until: Option<tokio::time::Instant>,
    /// Recently sent violation reports, held again if refused for rate.
    sent_reports: std::collections::VecDeque<lectern_proto::ViolationReport>,
    /// A teacher controls the mouse and keyboard (with the bypass right or
    /// not, for the privacy check when the policy changes).
    control: Option<bool>,
    /// Shows broadcast frames apart from this loop.
    frames: FrameShower,
    /// The school's name and logo shown.
    look: &'a crate::look::Look,
    /// The machine's inventory, when the desktop reports one.
    inventory: Option<crate::inventory::Reporter>,
    /// Files being received and collected.
    files: crate::files::Files,
    /// The screen changed since the last evidence frame.
    screen_dirty: bool,
    /// No evidence frame is taken before this (one a second at most).
    next_evidence: tokio::time::Instant,
    /// Student sign-in on a shared desktop (kept across connections).
    sign_in: &'a mut crate::student_signin::SignInState,
}

/// Waits for a change of state or activity; never, without signals.
async fn state_changed(changes: &Option<Arc<crate::Changes>>) {
    match changes {
        Some(c) => c.state.notified().await,
        None => std::future::pending().await,
    }
}

/// Waits for a change on the screen; never, without signals.
async fn screen_changed(changes: &Option<Arc<crate::Changes>>) {
    match changes {
        Some(c) => c.screen.notified().await,
        None => std::future::pending().await,
    }
}

/// Whether the desktop must be looked at each second (it cannot signal, or
/// a source connected now cannot).
fn polls(changes: &Option<Arc<crate::Changes>>) -> bool {
    changes.as_ref().is_none_or(|c| c.polls())
}

/// The earlier of two pauses, if any.
fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    a.into_iter().chain(b).min()
}

/// Sleeps until `at`; never, without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Whether `until` (if any) is still ahead.
fn paused(until: Option<tokio::time::Instant>) -> bool {
    until.is_some_and(|t| tokio::time::Instant::now() < t)
}

/// What a session drives on the device; all outlive every session.
struct Device<'a> {
    desktop: &'a SharedDesktop,
    /// A teacher's timed lock ends on time while offline too.
    timer: &'a crate::lock_timer::LockTimer,
    /// The school's name and logo shown.
    look: &'a crate::look::Look,
    /// A power countdown ends on time while offline too.
    power: &'a crate::power_timer::PowerTimer,
    /// Who signed in here, and on which desktop user.
    sign_in: &'a mut crate::student_signin::SignInState,
}

async fn session(
    cfg: &AgentConfig,
    device: Device<'_>,
    queue: &mut crate::queue::EventQueue,
    safety: &mut crate::safety::Safety,
    shutdown: &mut watch::Receiver<bool>,
    connected: &mut bool,
    set: &impl Fn(ConnStatus),
) -> anyhow::Result<()> {
    let Device {
        desktop,
        timer,
        look,
        power,
        sign_in,
    } = device;
    let cred = &cfg.credential;
    let mut ws = connect(&cred.server, &cred.fingerprint).await?;
    let (mut capabilities, last_state) = {
        let d = lock(desktop);
        (d.capabilities(), timer.overlay(d.state()))
    };
    if safety.scans() {
        capabilities.push(lectern_proto::Capability::KeywordScan);
    }
    if capabilities.contains(&lectern_proto::Capability::Thumbnails) {
        // Whatever can be captured can be encoded (crate::video).
        capabilities.push(lectern_proto::Capability::LiveVideo);
    }
    // The session speaks the file messages; whether the desktop has a home
    // to save into is answered per file.
    capabilities.push(lectern_proto::Capability::Files);
    let hello_caps_sign_in = capabilities.contains(&lectern_proto::Capability::StudentSignIn);
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        auth: Auth::Device {
            device_id: cred.device_id,
            secret: cred.secret.clone(),
        },
        info: cfg.info.clone(),
        capabilities,
        state: last_state.clone(),
    };
    let welcome = handshake(&mut ws, hello).await.map_err(session_error)?;
    *connected = true;
    set(ConnStatus::Connected);
    tracing::info!(device = cred.device_id, server = %cred.server, "connected");

    let secs = welcome.heartbeat_secs.clamp(1, 300) as u64;
    let mut heartbeat = interval(Duration::from_secs(secs));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    // Desktops that signal their changes are not polled: an idle session
    // wakes for nothing but the heartbeat.
    let changes = lock(desktop).changes();
    let mut poll = interval(Duration::from_secs(1));
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (answers_tx, mut answers) = mpsc::channel::<AgentMsg>(8);
    sign_in.flow.set_capable(hello_caps_sign_in);
    // Everything unacknowledged is sent again on a new session.
    let sent = queue.acked();
    let mut live = Live {
        cfg,
        desktop,
        timer,
        power,
        queue,
        safety,
        ws,
        thumbs: None,
        video: None,
        screen: Policy::default(),
        answers_tx,
        sent,
        last_state,
        allowance: welcome.evidence,
        activity_paused_until: None,
        violations_paused_until: None,
        sent_reports: Default::default(),
        control: None,
        frames: FrameShower::start(desktop),
        look,
        inventory: None,
        files: Default::default(),
        // The first evidence frame is taken at once.
        screen_dirty: true,
        next_evidence: tokio::time::Instant::now(),
        sign_in,
    };
    // A desktop user change while offline signs the student out before
    // anything queued meanwhile goes out (it is not theirs).
    let user = live.last_state.user.clone();
    live.user_seen(user.as_deref()).await?;
    live.start_inventory().await?;
    live.send_activity().await?;
    let mut trim = crate::idle_memory::IdleTrim::default();
    loop {
        let keep_evidence = live.safety.capacity > 0 && live.safety.enabled;
        // Whether this turn was only upkeep, which does not put off the
        // idle trim (the heartbeat would otherwise keep it away for ever).
        let mut upkeep = false;
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = live.ws.close(None).await;
                return Ok(());
            }
            _ = heartbeat.tick() => {
                send(&mut live.ws, &AgentMsg::Heartbeat).await?;
                upkeep = true;
            }
            _ = trim.due() => {
                let r = trim.trim();
                tracing::debug!(bytes = r.file_bytes, mappings = r.mappings, "idle: memory given back");
                continue;
            }
            _ = poll.tick(), if polls(&changes) => live.poll().await?,
            _ = state_changed(&changes) => live.poll().await?,
            _ = sleep_until(live.pause_end()) => live.pause_over().await?,
            Some(answer) = answers.recv() => send(&mut live.ws, &answer).await?,
            _ = screen_changed(&changes), if keep_evidence && !live.screen_dirty => {
                live.screen_dirty = true;
            }
            _ = tokio::time::sleep_until(live.next_evidence),
                if keep_evidence && (live.screen_dirty || polls(&changes)) => {
                live.keep_evidence().await;
            }
            width = next_tick(&mut live.thumbs) => live.thumbnail(width).await?,
            frame = next_video(&mut live.video) => live.ws.send(Message::binary(frame)).await?,
            msg = live.ws.next() => live.inbound(msg).await?,
            _ = crate::inventory::next_change(&mut live.inventory) => live.recheck_inventory().await?,
        }
        if !upkeep {
            trim.touch();
        }
    }
}

impl Live<'_> {
    /// The desktop's state, with the end of a timed lock.
    fn state(&self) -> lectern_proto::DeviceState {
        self.timer.overlay(lock(self.desktop).state())
    }

    /// When something changed (each second for a desktop that cannot
    /// signal): new activity (scanned first), held violations, queued
    /// events and a changed state go out.
    async fn poll(&mut self) -> anyhow::Result<()> {
        // The state first: reading it may record a focus change as activity.
        let now = self.state();
        // A new desktop user signs the student out before any of the new
        // user's activity is sent.
        self.user_seen(now.user.as_deref()).await?;
        collect_activity(self.desktop, self.queue, self.safety, self.allowance).await;
        self.send_requests().await?;
        if !paused(self.violations_paused_until) {
            send_violations(
                &mut self.ws,
                self.safety,
                self.allowance,
                &mut self.sent_reports,
            )
            .await?;
        }
        self.send_activity().await?;
        if now != self.last_state {
            send(&mut self.ws, &AgentMsg::State { state: now.clone() }).await?;
            self.last_state = now;
        }
        Ok(())
    }

    /// The desktop's user as just read (every place that reads the state
    /// calls this, so no change slips by): a student signed in under
    /// another user is signed out, and the screen follows.
    async fn user_seen(&mut self, user: Option<&str>) -> anyhow::Result<()> {
        let login = lock(self.desktop).login_key();
        if let Some(out) = self.sign_in.flow.desktop_user(user, login.as_deref()) {
            send(&mut self.ws, &out).await?;
        }
        self.show_sign_in();
        Ok(())
    }

    /// Puts the student sign-in on screen, changes it or takes it away, as
    /// the flow wants; only a change reaches the desktop.
    fn show_sign_in(&mut self) {
        self.sign_in.sync(&mut *lock(self.desktop));
    }

    /// Sends Wake-on-LAN packets for the server, only to a broadcast
    /// address of one of this device's own subnets (never anywhere the
    /// server names).
    async fn wake(&mut self, macs: &[String], target: &str) {
        let own = match self.inventory.as_ref() {
            Some(r) => r.addresses(),
            None => Vec::new(),
        };
        let checked = crate::inventory::wake_request(macs, target, &own);
        let (packets, target) = match checked {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!("refusing to send Wake-on-LAN: {why}");
                return;
            }
        };
        let d = self.desktop.clone();
        let sent = tokio::task::spawn_blocking(move || lock(&d).send_wake(&packets, target)).await;
        if let Ok(Err(e)) = sent {
            tracing::warn!("Wake-on-LAN failed: {e}");
        }
    }

    /// Offers the inventory's hash, if the desktop reports one.
    async fn start_inventory(&mut self) -> anyhow::Result<()> {
        let Some(source) = lock(self.desktop).inventory() else {
            return Ok(());
        };
        let (reporter, hash) = crate::inventory::Reporter::start(source).await;
        self.inventory = Some(reporter);
        send(&mut self.ws, &hash).await
    }

    /// The inventory may have changed: offer its hash if it did.
    async fn recheck_inventory(&mut self) -> anyhow::Result<()> {
        let Some(r) = self.inventory.as_mut() else {
            return Ok(());
        };
        match r.recheck().await {
            Some(hash) => send(&mut self.ws, &hash).await,
            None => Ok(()),
        }
    }

    /// The server asked for the whole inventory.
    async fn send_inventory(&mut self) -> anyhow::Result<()> {
        let parts = self
            .inventory
            .as_ref()
            .map(|r| r.parts())
            .unwrap_or_default();
        for part in parts {
            send(&mut self.ws, &part).await?;
        }
        Ok(())
    }

    /// Queued events after the last sent, unless the server asked to wait.
    async fn send_activity(&mut self) -> anyhow::Result<()> {
        if paused(self.activity_paused_until) {
            return Ok(());
        }
        send_activity(&mut self.ws, self.queue, &mut self.sent).await
    }

    /// When the first wait the server asked for is over.
    fn pause_end(&self) -> Option<tokio::time::Instant> {
        earliest(self.activity_paused_until, self.violations_paused_until)
    }

    /// A wait the server asked for is over: what it held goes now.
    async fn pause_over(&mut self) -> anyhow::Result<()> {
        self.activity_paused_until = self
            .activity_paused_until
            .filter(|_| paused(self.activity_paused_until));
        self.violations_paused_until = self
            .violations_paused_until
            .filter(|_| paused(self.violations_paused_until));
        self.poll().await
    }

    /// One frame of the rolling evidence buffer, taken because the screen
    /// changed (or, without signals, each second).
    async fn keep_evidence(&mut self) {
        self.screen_dirty = false;
        self.next_evidence = tokio::time::Instant::now() + Duration::from_secs(1);
        if let Some(f) = capture_evidence(self.desktop, Shot::Buffer, self.allowance).await {
            self.safety.remember(f);
        }
    }

    /// One thumbnail for the watching consoles.
    async fn thumbnail(&mut self, width: u32) -> anyhow::Result<()> {
        let d = self.desktop.clone();
        let frame = tokio::task::spawn_blocking(move || {
            let f = lock(&d).capture(width)?;
            let jpeg = encode_jpeg(&f, JPEG_QUALITY)?;
            Ok::<_, crate::DesktopError>(
                MediaFrame {
                    kind: MediaKind::Thumbnail,
                    width: f.width as u16,
                    height: f.height as u16,
                    payload: &jpeg,
                }
                .encode(),
            )
        })
        .await?;
        match frame {
            Ok(bytes) => self.ws.send(Message::binary(bytes)).await?,
            Err(e) => tracing::warn!("thumbnail capture failed: {e}"),
        }
        Ok(())
    }

    /// One frame (or the end) from the server.
    async fn inbound(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> anyhow::Result<()> {
        let text = match msg {
            None => anyhow::bail!("server closed the connection"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(b))) => {
                self.frames.offer(b);
                return Ok(());
            }
            Some(Ok(Message::Close(f))) => anyhow::bail!("server closed the session: {f:?}"),
            Some(Ok(_)) => return Ok(()),
        };
        match ServerMsg::decode(&text) {
            Ok(msg) => self.message(msg).await,
            Err(e) => {
                tracing::warn!("ignoring bad frame from server: {e}");
                Ok(())
            }
        }
    }

    /// One control message from the server.
    async fn message(&mut self, msg: ServerMsg) -> anyhow::Result<()> {
        match msg {
            ServerMsg::Command {
                command_id,
                command,
            } => self.command(command_id, command).await?,
            ServerMsg::StartThumbnails {
                width,
                interval_ms,
                privacy_bypass,
            } => self.start_thumbnails(width, interval_ms, privacy_bypass),
            ServerMsg::StopThumbnails => self.thumbs = None,
            ServerMsg::StartVideo {
                bitrate,
                fps,
                privacy_bypass,
            } => self.start_video(bitrate, fps, privacy_bypass),
            ServerMsg::StopVideo => self.video = None,
            ServerMsg::Screenshot {
                request_id,
                privacy_bypass,
            } => self.screenshot(request_id, privacy_bypass).await?,
            ServerMsg::Policy { policy } => self.policy(policy).await?,
            ServerMsg::ViewRequest {
                request_id,
                teacher,
                timeout_secs,
            } => self.view_request(request_id, &teacher, timeout_secs),
            ServerMsg::BroadcastStart { title } => {
                if let Err(e) = lock(self.desktop).start_broadcast(&title) {
                    tracing::warn!("cannot show the broadcast: {e}");
                }
            }
            ServerMsg::BroadcastStop => {
                if let Err(e) = lock(self.desktop).stop_broadcast() {
                    tracing::warn!("cannot stop the broadcast: {e}");
                }
            }
            ServerMsg::ControlStart {
                controller,
                privacy_bypass,
            } => self.start_control(&controller, privacy_bypass),
            ServerMsg::ControlInput { events } => self.control_input(&events),
            ServerMsg::ControlStop => self.stop_control(),
            ServerMsg::Error { code, message } => return Err(Refused { code, message }.into()),
            ServerMsg::Refused {
                code,
                frame,
                retry_after_ms,
                message,
            } => self.refused(code, frame, retry_after_ms, &message),
            ServerMsg::EvidenceRequest {
                violation_id,
                allowance,
            } => self.evidence_request(violation_id, allowance).await?,
            ServerMsg::Keywords { library } => self.safety.set_library(library),
            ServerMsg::ActivityAck { up_to } => {
                if let Err(e) = self.queue.ack(up_to) {
                    tracing::error!("cannot record acknowledged events: {e}");
                }
                self.send_activity().await?;
            }
            ServerMsg::Welcome { .. } => {}
            ServerMsg::AcceptableUse { policy } => self.acceptable_use(policy).await?,
            ServerMsg::AcceptableUseClear => {
                if let Err(e) = lock(self.desktop).show_acceptable_use(None) {
                    tracing::debug!("cannot take the acceptable use policy away: {e}");
                }
            }
            ServerMsg::HandRaised => self.notice(StudentNotice::HandRaised),
            ServerMsg::HandClosed { answer } => self.notice(StudentNotice::HandClosed { answer }),
            ServerMsg::Chat { line } => self.notice(StudentNotice::Chat { line }),
            ServerMsg::ChatHistory { mut lines } => {
                // The newest lines only, whatever the server sent.
                let extra = lines
                    .len()
                    .saturating_sub(lectern_proto::requests::HISTORY_LINES);
                lines.drain(..extra);
                self.notice(StudentNotice::ChatHistory { lines })
            }
            ServerMsg::SchoolLook { name, logo_sha256 } => {
                let want = self
                    .look
                    .on_look(self.desktop, &name, logo_sha256.as_deref());
                if let Some(sha256) = want {
                    send(&mut self.ws, &AgentMsg::WantLogo { sha256 }).await?;
                }
            }
            ServerMsg::SchoolLogo { sha256, png } => {
                if let Err(e) = self.look.on_logo(self.desktop, &sha256, &png) {
                    tracing::warn!("school logo from the server not shown: {e:?}");
                }
            }
            ServerMsg::InventoryRequest => self.send_inventory().await?,
            ServerMsg::WakeOnLan { macs, target } => self.wake(&macs, &target).await,
            ServerMsg::FileOffer(offer) => {
                let reply = self.files.offer(self.desktop, *offer).await;
                send(&mut self.ws, &reply).await?;
            }
            ServerMsg::FileData {
                transfer,
                offset,
                data,
                eof,
            } => {
                if let Some(reply) = self.files.data(transfer, offset, &data, eof) {
                    send(&mut self.ws, &reply).await?;
                }
            }
            ServerMsg::CollectStart(start) => {
                let reply = self.files.collect(self.desktop, *start).await;
                send(&mut self.ws, &reply).await?;
            }
            ServerMsg::CollectAck {
                collection,
                file_index,
                offset,
            } => {
                if let Some(reply) = self.files.collect_next(collection, file_index, offset) {
                    send(&mut self.ws, &reply).await?;
                }
            }
            ServerMsg::FileCancel { id, reason } => {
                tracing::info!(id, "file transfer stopped: {reason}");
                self.files.cancel(id);
            }
            ServerMsg::StudentSignIn(outcome) => {
                if let Some(out) = self.sign_in.flow.outcome(outcome) {
                    send(&mut self.ws, &out).await?;
                }
                self.show_sign_in();
            }
        }
        Ok(())
    }

    async fn command(
        &mut self,
        command_id: u64,
        command: lectern_proto::Command,
    ) -> anyhow::Result<()> {
        let result = apply_command(&mut *lock(self.desktop), &command);
        self.timer.after_command(&command, &result, self.desktop);
        self.power.after_command(&command, &result, self.desktop);
        let state = self.state();
        tracing::info!(command_id, kind = command.kind(), ?result, "command");
        let ack = AgentMsg::Ack {
            command_id,
            result,
            state: state.clone(),
        };
        send(&mut self.ws, &ack).await?;
        self.user_seen(state.user.as_deref()).await?;
        self.last_state = state;
        Ok(())
    }

    /// A teacher takes control, if this screen's privacy rule lets them see
    /// it (the server checked; a device does not trust that alone).
    fn start_control(&mut self, controller: &str, privacy_bypass: bool) {
        if !self.screen.allows_stream(privacy_bypass) {
            tracing::info!("remote control refused: the policy does not allow viewing");
            return;
        }
        match lock(self.desktop).start_control(controller) {
            Ok(()) => {
                tracing::info!(controller, "remote control started");
                self.control = Some(privacy_bypass);
            }
            Err(e) => tracing::warn!("cannot start remote control: {e}"),
        }
    }

    /// Input from the controlling teacher: only while controlled, and only
    /// events that pass the shared checks (Ctrl+Alt+Del never does).
    fn control_input(&mut self, events: &[lectern_proto::control::InputEvent]) {
        if self.control.is_none() {
            return;
        }
        let ok: Vec<_> = events
            .iter()
            .filter(|e| e.check().is_ok())
            .cloned()
            .collect();
        if let Err(e) = lock(self.desktop).inject_input(&ok) {
            tracing::warn!("cannot inject input: {e}");
        }
    }

    fn stop_control(&mut self) {
        if self.control.take().is_some() {
            tracing::info!("remote control stopped");
        }
        if let Err(e) = lock(self.desktop).stop_control() {
            tracing::warn!("cannot end remote control: {e}");
        }
    }

    fn start_thumbnails(&mut self, width: u32, interval_ms: u32, privacy_bypass: bool) {
        if !self.screen.allows_stream(privacy_bypass) {
            tracing::info!("pictures of the screen are not allowed by policy; not streaming");
            return;
        }
        let mut i = interval(Duration::from_millis(interval_ms.clamp(100, 60_000) as u64));
        i.set_missed_tick_behavior(MissedTickBehavior::Skip);
        self.thumbs = Some((i, width.clamp(32, 1920)));
    }

    /// Starts the live video, or changes its bitrate (the next picture is a
    /// keyframe either way), if the policy lets this viewer see the screen.
    fn start_video(&mut self, bitrate: u32, fps: u32, privacy_bypass: bool) {
        if !self.screen.allows_stream(privacy_bypass) {
            tracing::info!("pictures of the screen are not allowed by policy; no live video");
            self.video = None;
            return;
        }
        match &self.video {
            Some(v) => v.adjust(bitrate, fps),
            None => {
                let d = self.desktop.clone();
                self.video = Some(crate::video::VideoStream::start(d, bitrate, fps));
            }
        }
    }

    /// One full-size screenshot for the server, if the policy allows it; a
    /// failed capture is logged (the server's request times out).
    async fn screenshot(&mut self, request_id: u64, privacy_bypass: bool) -> anyhow::Result<()> {
        if !self.screen.allows_stream(privacy_bypass) {
            tracing::info!("pictures of the screen are not allowed by policy; no screenshot");
            return Ok(());
        }
        let d = self.desktop.clone();
        match tokio::task::spawn_blocking(move || crate::video::screenshot(&d, request_id)).await? {
            Ok(frame) => self.ws.send(Message::binary(frame)).await?,
            Err(e) => tracing::warn!("screenshot failed: {e}"),
        }
        Ok(())
    }

    async fn policy(&mut self, policy: Policy) -> anyhow::Result<()> {
        apply(self.desktop, &policy);
        self.safety.enabled = policy.keyword_policies;
        if !self.safety.enabled {
            self.safety.evidence.clear();
        }
        if !policy.thumbnails_allowed {
            self.thumbs = None;
            self.video = None;
        }
        if self
            .control
            .is_some_and(|bypass| !policy.allows_stream(bypass))
        {
            tracing::info!("remote control ended: the new policy does not allow it");
            self.stop_control();
        }
        if let Some(path) = &self.cfg.policy_file {
            if let Err(e) = save_policy(path, &policy) {
                tracing::error!("cannot store policy in {}: {e}", path.display());
            }
        }
        let now = self.state();
        self.sign_in
            .flow
            .policy(policy.student_sign_in, policy.school_switch);
        self.user_seen(now.user.as_deref()).await?;
        send(&mut self.ws, &AgentMsg::State { state: now.clone() }).await?;
        self.last_state = now;
        self.screen = policy;
        Ok(())
    }

    fn view_request(&mut self, request_id: u64, teacher: &str, timeout_secs: u32) {
        let wait = Duration::from_secs(timeout_secs.clamp(1, 120) as u64);
        let answer = lock(self.desktop).ask_remote_view_for(teacher, wait);
        let tx = self.answers_tx.clone();
        tokio::spawn(async move {
            let allowed = tokio::time::timeout(wait, answer)
                .await
                .ok()
                .and_then(Result::ok);
            let _ = tx
                .send(AgentMsg::ViewAnswer {
                    request_id,
                    allowed,
                })
                .await;
        });
    }

    /// The moments before the trigger, then the screen now.
    async fn evidence_request(
        &mut self,
        violation_id: u64,
        allowance: Option<EvidenceAllowance>,
    ) -> anyhow::Result<()> {
        let mut frames: Vec<_> = self.safety.evidence.iter().cloned().collect();
        if let Some(now) = capture_evidence(self.desktop, Shot::Trigger, allowance).await {
            frames.push(now);
        }
        send_evidence(&mut self.ws, violation_id, frames, allowance).await
    }

    /// The server refused one frame and the session goes on: refused events
    /// stay queued and go again after the wait it asked for; nothing is
    /// acknowledged that the server did not store.
    fn refused(
        &mut self,
        code: ErrorCode,
        frame: RefusedFrame,
        retry_after_ms: u64,
        message: &str,
    ) {
        let until = tokio::time::Instant::now() + Duration::from_millis(retry_after_ms);
        match frame {
            RefusedFrame::Activity { first_seq } => {
                // A refusal of events acknowledged since is stale.
                if first_seq.is_none_or(|f| f > self.queue.acked()) {
                    self.sent = self.queue.acked();
                    self.activity_paused_until = Some(until);
                }
                tracing::debug!(?code, retry_after_ms, "server refused activity: {message}");
            }
            RefusedFrame::Violation { local_id } => {
                self.violations_paused_until = Some(until);
                // Held again (its evidence was refused with it and is gone):
                // it goes once the server's wait is over.
                if code == ErrorCode::RateLimited {
                    if let Some(i) = self
                        .sent_reports
                        .iter()
                        .position(|r| r.local_id == local_id)
                    {
                        if let Some(r) = self.sent_reports.remove(i) {
                            self.safety.hold(r, Vec::new());
                        }
                    }
                }
                tracing::warn!(
                    ?code,
                    local_id,
                    retry_after_ms,
                    "server refused a violation report: {message}"
                );
            }
            RefusedFrame::Evidence {
                violation_id,
                index,
            } => {
                tracing::debug!(
                    ?code,
                    violation_id,
                    index,
                    "server refused evidence: {message}"
                );
            }
            RefusedFrame::Hand => self.notice(StudentNotice::HandRefused {
                message: message.to_string(),
            }),
            RefusedFrame::Chat => self.notice(StudentNotice::ChatRefused {
                message: message.to_string(),
            }),
            RefusedFrame::Aup => {
                tracing::warn!(?code, "server refused the acceptable use answer: {message}");
            }
            RefusedFrame::Inventory => {
                if let Some(r) = self.inventory.as_mut() {
                    r.refused();
                }
                tracing::warn!(?code, "server refused the inventory: {message}");
            }
        }
    }

    /// Covers the screen with the policy the student must accept; a backend
    /// that cannot show one says so to the server (which reports it).
    async fn acceptable_use(&mut self, policy: AcceptableUse) -> anyhow::Result<()> {
        let shown = lock(self.desktop).show_acceptable_use(Some(&policy));
        if let Err(e) = shown {
            tracing::warn!("cannot show the acceptable use policy: {e}");
            let answer = AgentMsg::AupAnswer {
                version_id: policy.version_id,
                answer: AupAnswer::Unsupported,
            };
            send(&mut self.ws, &answer).await?;
        }
        Ok(())
    }

    /// Shows the student what the server said about their requests.
    fn notice(&mut self, notice: StudentNotice) {
        if let Err(e) = lock(self.desktop).student_notice(notice) {
            tracing::debug!("cannot show the student's request notice: {e}");
        }
    }

    /// The student chose another school on the sign-in screen: passed on
    /// when the flow takes it (see [`crate::student_signin::SignInFlow::switch_to`]).
    fn switch_school(&mut self, school: &str) {
        // Never out from under a lock (which covers the screen anyway), nor
        // from a teacher's shut down or restart counting down.
        if self.last_state.locked {
            tracing::warn!("a switch to {school:?} was asked for under a lock");
            return;
        }
        if self.power.counting() {
            tracing::warn!("a switch to {school:?} was asked for during a power countdown");
            return;
        }
        let Some(school) = self.sign_in.flow.switch_to(school) else {
            tracing::warn!("a switch to {school:?} was asked for but is not offered");
            return;
        };
        match &self.cfg.school_choice.chosen {
            Some(tx) => {
                tracing::info!("the student chose {school}: switching");
                let _ = tx.send(Switch::Chosen(school));
            }
            None => tracing::warn!("a switch to {school} was asked for, but none is taken here"),
        }
    }

    /// Raised hands and chat the student sent since the last poll.
    async fn send_requests(&mut self) -> anyhow::Result<()> {
        let requests = lock(self.desktop).take_requests();
        for r in requests {
            let msg = match r {
                StudentRequest::RaiseHand { note } => AgentMsg::RaiseHand { note },
                StudentRequest::LowerHand => AgentMsg::LowerHand,
                StudentRequest::Chat { text } => AgentMsg::ChatSend { text },
                StudentRequest::AcceptAup { version_id } => AgentMsg::AupAnswer {
                    version_id,
                    answer: AupAnswer::Accepted,
                },
                StudentRequest::SignOut => match self.sign_in.flow.sign_out() {
                    Some(m) => m,
                    None => continue,
                },
                StudentRequest::SwitchSchool { school } => {
                    self.switch_school(&school);
                    continue;
                }
                StudentRequest::SignIn { name, secret } => {
                    let msg = self.sign_in.flow.typed(&name, secret);
                    // Not sendable: the screen says why at once.
                    self.show_sign_in();
                    match msg {
                        Some(m) => m,
                        None => continue,
                    }
                }
            };
            send(&mut self.ws, &msg).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_acted_on_by_its_code() {
        let e = session_error(HandshakeError::Refused {
            code: ErrorCode::Internal,
            message: "Revoked".into(),
        });
        let r = e.downcast_ref::<Refused>().expect("a typed refusal");
        assert_eq!(r.code, ErrorCode::Internal);
        // Text naming another code changes nothing: the server failed, retry soon.
        assert!(!r.code.is_permanent());
        let e = session_error(HandshakeError::Refused {
            code: ErrorCode::Revoked,
            message: "this device was revoked by an administrator".into(),
        });
        assert!(e.downcast_ref::<Refused>().unwrap().code.is_permanent());
        let e = session_error(HandshakeError::Failed(anyhow::anyhow!("Revoked")));
        assert!(e.downcast_ref::<Refused>().is_none());
    }

    #[test]
    fn evidence_fits_the_allowance() {
        let frame = |n: usize| (1u16, 1u16, vec![0u8; n]);
        let frames = vec![frame(10), frame(500), frame(20), frame(30)];
        let allowance = EvidenceAllowance {
            max_frames: 2,
            max_frame_bytes: 100,
        };
        let fit = fit_evidence(frames.clone(), Some(allowance));
        // The oversized one goes, then the newest two are kept.
        assert_eq!(fit, vec![frame(20), frame(30)]);
        assert_eq!(fit_evidence(frames.clone(), None), frames);
    }

    #[tokio::test]
    async fn broadcast_frames_that_arrive_while_one_is_shown_replace_each_other() {
        let desktop = Arc::new(Mutex::new(crate::HeadlessDesktop::new("PC", None)));
        desktop.lock().unwrap().start_broadcast("t").unwrap();
        let shared: SharedDesktop = desktop.clone();
        let shower = FrameShower::start(&shared);
        let frame = || {
            let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
            tokio_tungstenite::tungstenite::Bytes::from(
                MediaFrame {
                    kind: MediaKind::Broadcast,
                    width: 1,
                    height: 1,
                    payload: &jpeg,
                }
                .encode(),
            )
        };
        // The desktop is busy (its lock held by another thread) while ten
        // frames arrive: at most the one already taken and the newest are
        // shown.
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let d = desktop.clone();
        let holder = std::thread::spawn(move || {
            let _busy = d.lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        held.recv().unwrap();
        for _ in 0..10 {
            shower.offer(frame());
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        holder.join().unwrap();
        let shown = || desktop.lock().unwrap().broadcast_frames().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while shown() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no frame shown");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Waiting longer can only show more; it never may exceed two.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!((1..=2).contains(&shown()), "{} frames shown", shown());
    }
}
