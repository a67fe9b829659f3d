use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    AgentMsg, Auth, DeviceInfo, ErrorCode, Hello, MediaFrame, MediaKind, Policy, ServerMsg,
    PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, watch};
use tokio::time::{interval, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::connection::{connect, handshake, AgentStream};
use crate::{apply_command, encode_jpeg, Backoff, Desktop, StoredCredential};

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
}

/// Width of evidence frames.
const EVIDENCE_WIDTH: u32 = 640;

/// Captures one evidence frame off the async threads.
async fn capture_evidence(desktop: &SharedDesktop) -> Option<(u16, u16, Vec<u8>)> {
    let d = desktop.clone();
    tokio::task::spawn_blocking(move || {
        let f = lock(&d).capture(EVIDENCE_WIDTH).ok()?;
        let jpeg = encode_jpeg(&f, JPEG_QUALITY).ok()?;
        Some((f.width as u16, f.height as u16, jpeg))
    })
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
) {
    let (events, typed) = {
        let mut d = lock(desktop);
        (d.take_activity(), d.take_typed())
    };
    let mut reports = safety.scan(&events);
    for t in &typed {
        reports.extend(safety.scan_typed(t));
    }
    for report in reports {
        let mut frames: Vec<_> = safety.evidence.iter().cloned().collect();
        if let Some(now) = capture_evidence(desktop).await {
            frames.push(now);
        }
        tracing::warn!(term = %report.term, category = %report.category, "keyword violation");
        safety.hold(report, frames);
    }
    if let Err(e) = queue.push(events) {
        tracing::error!("cannot write activity events: {e}");
    }
}

/// Sends held violations, each followed by its evidence frames.
async fn send_violations(
    ws: &mut AgentStream,
    safety: &mut crate::safety::Safety,
) -> anyhow::Result<()> {
    while let Some((report, frames)) = safety.pending.front() {
        send(ws, &AgentMsg::Violation(Box::new(report.clone()))).await?;
        send_evidence(
            ws,
            report.local_id | lectern_proto::AGENT_EVIDENCE,
            frames.clone(),
        )
        .await?;
        safety.pending.pop_front();
    }
    Ok(())
}

/// Evidence frames for `violation_id`, oldest first (at most 255).
async fn send_evidence(
    ws: &mut AgentStream,
    violation_id: u64,
    frames: Vec<crate::safety::EvidenceFrame>,
) -> anyhow::Result<()> {
    let total = frames.len().min(u8::MAX as usize) as u8;
    let skip = frames.len() - total as usize;
    for (index, (width, height, jpeg)) in frames.into_iter().skip(skip).enumerate() {
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
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        if *shutdown.borrow() {
            break;
        }
        set(ConnStatus::Connecting);
        let mut connected = false;
        collect_activity(&desktop, &mut queue, &mut safety).await;
        let result = session(
            &cfg,
            &desktop,
            &mut queue,
            &mut safety,
            &mut shutdown,
            &mut connected,
            &set,
        )
        .await;
        if connected {
            // The last session worked: start the next wait from the bottom.
            backoff.reset();
        }
        let delay = match result {
            Ok(()) => break,
            Err(e) => {
                if let Some(r) = e.downcast_ref::<Refused>() {
                    tracing::error!(device = cfg.credential.device_id, "{r}");
                    set(ConnStatus::Refused(r.to_string()));
                    Duration::from_secs(30)
                } else {
                    tracing::info!(device = cfg.credential.device_id, "disconnected: {e:#}");
                    backoff.next_delay()
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    }
    set(ConnStatus::Stopped);
}

/// The server closed the session on purpose and said why.
#[derive(Debug, thiserror::Error)]
#[error("server refused this device: {code:?}: {message}")]
pub struct Refused {
    code: ErrorCode,
    message: String,
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

async fn session(
    cfg: &AgentConfig,
    desktop: &SharedDesktop,
    queue: &mut crate::queue::EventQueue,
    safety: &mut crate::safety::Safety,
    shutdown: &mut watch::Receiver<bool>,
    connected: &mut bool,
    set: &impl Fn(ConnStatus),
) -> anyhow::Result<()> {
    let cred = &cfg.credential;
    let mut ws = connect(&cred.server, &cred.fingerprint).await?;
    let (mut capabilities, mut last_state) = {
        let d = lock(desktop);
        (d.capabilities(), d.state())
    };
    if safety.scans() {
        capabilities.push(lectern_proto::Capability::KeywordScan);
    }
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
    let heartbeat_secs = match handshake(&mut ws, hello).await {
        Ok(ServerMsg::Welcome { heartbeat_secs, .. }) => heartbeat_secs,
        Ok(_) => anyhow::bail!("unexpected handshake reply"),
        Err(e) => {
            let text = e.to_string();
            // Map an explicit refusal to a typed error so the caller backs off hard.
            for code in [
                ErrorCode::Revoked,
                ErrorCode::Unauthorized,
                ErrorCode::UnsupportedVersion,
            ] {
                if text.contains(&format!("{code:?}")) {
                    return Err(Refused {
                        code,
                        message: text,
                    }
                    .into());
                }
            }
            return Err(e);
        }
    };
    *connected = true;
    set(ConnStatus::Connected);
    tracing::info!(device = cred.device_id, server = %cred.server, "connected");

    let mut heartbeat = interval(Duration::from_secs(heartbeat_secs.clamp(1, 300) as u64));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut poll = interval(Duration::from_secs(1));
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut thumbs: Option<(Interval, u32)> = None;
    let mut evidence_tick = interval(Duration::from_secs(1));
    evidence_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // What the last policy says about pictures of the screen.
    let mut screen = lectern_proto::Policy::default();
    let (answers_tx, mut answers) = mpsc::channel::<AgentMsg>(8);
    // Everything unacknowledged is sent again on a new session.
    let mut sent = queue.acked();
    send_activity(&mut ws, queue, &mut sent).await?;

    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            _ = heartbeat.tick() => send(&mut ws, &AgentMsg::Heartbeat).await?,
            _ = poll.tick() => {
                collect_activity(desktop, queue, safety).await;
                send_violations(&mut ws, safety).await?;
                send_activity(&mut ws, queue, &mut sent).await?;
                let now = lock(desktop).state();
                if now != last_state {
                    send(&mut ws, &AgentMsg::State { state: now.clone() }).await?;
                    last_state = now;
                }
            }
            Some(answer) = answers.recv() => send(&mut ws, &answer).await?,
            _ = evidence_tick.tick(), if safety.capacity > 0 && safety.enabled => {
                if let Some(f) = capture_evidence(desktop).await {
                    safety.remember(f);
                }
            }
            width = next_tick(&mut thumbs) => {
                let d = desktop.clone();
                let frame = tokio::task::spawn_blocking(move || {
                    let f = lock(&d).capture(width)?;
                    let jpeg = encode_jpeg(&f, JPEG_QUALITY)?;
                    Ok::<_, crate::DesktopError>(MediaFrame { kind: MediaKind::Thumbnail, width: f.width as u16, height: f.height as u16, payload: &jpeg }.encode())
                }).await?;
                match frame {
                    Ok(bytes) => ws.send(Message::binary(bytes)).await?,
                    Err(e) => tracing::warn!("thumbnail capture failed: {e}"),
                }
            }
            msg = ws.next() => {
                let text = match msg {
                    None => anyhow::bail!("server closed the connection"),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => {
                        show_broadcast_frame(desktop, b).await;
                        continue;
                    }
                    Some(Ok(Message::Close(f))) => anyhow::bail!("server closed the session: {f:?}"),
                    Some(Ok(_)) => continue,
                };
                match ServerMsg::decode(&text) {
                    Ok(ServerMsg::Command { command_id, command }) => {
                        let (result, state) = {
                            let mut d = lock(desktop);
                            let r = apply_command(&mut *d, &command);
                            (r, d.state())
                        };
                        tracing::info!(command_id, kind = command.kind(), ?result, "command");
                        send(&mut ws, &AgentMsg::Ack { command_id, result, state: state.clone() }).await?;
                        last_state = state;
                    }
                    Ok(ServerMsg::StartThumbnails { privacy_bypass, .. }) if !screen.allows_stream(privacy_bypass) => {
                        tracing::info!("pictures of the screen are not allowed by policy; not streaming");
                    }
                    Ok(ServerMsg::StartThumbnails { width, interval_ms, .. }) => {
                        let mut i = interval(Duration::from_millis(interval_ms.clamp(100, 60_000) as u64));
                        i.set_missed_tick_behavior(MissedTickBehavior::Skip);
                        thumbs = Some((i, width.clamp(32, 1920)));
                    }
                    Ok(ServerMsg::StopThumbnails) => thumbs = None,
                    Ok(ServerMsg::Policy { policy }) => {
                        apply(desktop, &policy);
                        screen = policy.clone();
                        safety.enabled = policy.keyword_policies;
                        if !safety.enabled {
                            safety.evidence.clear();
                        }
                        if !screen.thumbnails_allowed {
                            thumbs = None;
                        }
                        if let Some(path) = &cfg.policy_file {
                            if let Err(e) = save_policy(path, &policy) {
                                tracing::error!("cannot store policy in {}: {e}", path.display());
                            }
                        }
                        let now = lock(desktop).state();
                        send(&mut ws, &AgentMsg::State { state: now.clone() }).await?;
                        last_state = now;
                    }
                    Ok(ServerMsg::ViewRequest { request_id, teacher, timeout_secs }) => {
                        let answer = lock(desktop).ask_remote_view(&teacher);
                        let tx = answers_tx.clone();
                        let wait = Duration::from_secs(timeout_secs.clamp(1, 120) as u64);
                        tokio::spawn(async move {
                            let allowed = tokio::time::timeout(wait, answer).await.ok().and_then(Result::ok);
                            let _ = tx.send(AgentMsg::ViewAnswer { request_id, allowed }).await;
                        });
                    }
                    Ok(ServerMsg::BroadcastStart { title }) => {
                        if let Err(e) = lock(desktop).start_broadcast(&title) {
                            tracing::warn!("cannot show the broadcast: {e}");
                        }
                    }
                    Ok(ServerMsg::BroadcastStop) => {
                        if let Err(e) = lock(desktop).stop_broadcast() {
                            tracing::warn!("cannot stop the broadcast: {e}");
                        }
                    }
                    Ok(ServerMsg::Error { code, message }) => return Err(Refused { code, message }.into()),
                    Ok(ServerMsg::EvidenceRequest { violation_id }) => {
                        // The moments before the trigger, then the screen now.
                        let mut frames: Vec<_> = safety.evidence.iter().cloned().collect();
                        if let Some(now) = capture_evidence(desktop).await {
                            frames.push(now);
                        }
                        send_evidence(&mut ws, violation_id, frames).await?;
                    }
                    Ok(ServerMsg::Keywords { library }) => safety.set_library(library),
                    Ok(ServerMsg::ActivityAck { up_to }) => {
                        if let Err(e) = queue.ack(up_to) {
                            tracing::error!("cannot record acknowledged events: {e}");
                        }
                        send_activity(&mut ws, queue, &mut sent).await?;
                    }
                    Ok(ServerMsg::Welcome { .. }) => {}
                    Err(e) => tracing::warn!("ignoring bad frame from server: {e}"),
                }
            }
        }
    }
}
