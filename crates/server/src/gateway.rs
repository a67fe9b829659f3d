//! `/agent/v1`: the agents' WebSocket. One task per agent: authenticate the
//! hello, register with the hub, then relay commands out and acknowledgements,
//! state and thumbnails in. Any bad frame ends only that agent's session.
//!
//! What a device sends is metered per device ([`crate::device_rules`]): a
//! batch of activity events, a violation or an evidence frame beyond its
//! school's limits is refused with [`ServerMsg::Refused`] (the session goes
//! on, nothing of the frame is kept, the agent keeps it and retries), counted
//! in `lectern_device_limited_total` and logged once per window.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use lectern_proto::signin::SignInOutcome;
use lectern_proto::{
    ActivityEvent, AgentMsg, Auth, CommandResult, Credential, DeviceState, ErrorCode, Hello,
    MediaFrame, MediaKind, ProtoError, RefusedFrame, ServerMsg, ViolationReport, MAX_BINARY_FRAME,
    PROTOCOL_VERSION,
};
use lectern_store::{now_ms, Device, DeviceAuth, NewDevice, SchoolId, TargetStatus, TargetUpdate};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

use crate::device_rules::{limits, EvidenceKey, EvidenceVerdict};
use crate::hub::ConsoleEvent;
use crate::metrics::inc;
use crate::state::Shared;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Upgrades an agent connection. Buffers are kept small: an idle agent should
/// cost the server a few KiB, and thumbnails are the largest frames.
pub async fn agent_ws(
    State(st): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_BINARY_FRAME)
        .max_message_size(MAX_BINARY_FRAME)
        .max_frame_size(MAX_BINARY_FRAME)
        .on_upgrade(move |socket| async move {
            let mut socket = socket;
            if let Err(r) = session(&st, &mut socket, addr).await {
                inc(&st.metrics.agent_refused);
                tracing::warn!(%addr, code = ?r.code, "agent session ended: {}", r.message);
                let err = ServerMsg::Error {
                    code: r.code,
                    message: r.message,
                };
                let _ = socket.send(Message::text(err.encode())).await;
                let _ = socket.send(Message::Close(None)).await;
            }
        })
}

/// Why the server ends a session: sent to the agent as [`ServerMsg::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the agent acts on.
    pub code: ErrorCode,
    /// What a person reads.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<ProtoError> for Refusal {
    fn from(e: ProtoError) -> Self {
        let code = match e {
            ProtoError::TooLarge { .. } => ErrorCode::TooLarge,
            ProtoError::Malformed(_) => ErrorCode::Malformed,
        };
        Refusal::new(code, e.to_string())
    }
}

async fn read_hello(socket: &mut WebSocket) -> Result<Hello, Refusal> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| Refusal::new(ErrorCode::Protocol, "no hello within 10 s"))?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(other)) => {
            return Err(Refusal::new(
                ErrorCode::Protocol,
                format!("expected a hello text frame, got {other:?}"),
            ))
        }
        Some(Err(e)) => {
            return Err(Refusal::new(
                ErrorCode::Malformed,
                format!("bad frame: {e}"),
            ))
        }
        None => return Err(Refusal::new(ErrorCode::Protocol, "closed before the hello")),
    };
    match AgentMsg::decode(&text)? {
        AgentMsg::Hello(h) if h.protocol_version == PROTOCOL_VERSION => Ok(h),
        AgentMsg::Hello(h) => Err(Refusal::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                h.protocol_version
            ),
        )),
        _ => Err(Refusal::new(
            ErrorCode::Protocol,
            "the first frame must be a hello",
        )),
    }
}

fn new_device(h: &Hello) -> NewDevice {
    // Cap what a device may store about itself.
    let cap = |s: &str| s.chars().take(128).collect::<String>();
    NewDevice {
        hostname: cap(&h.info.hostname),
        os: cap(&h.info.os),
        agent_version: cap(&h.info.agent_version),
    }
}

fn internal(e: crate::api::ApiError) -> Refusal {
    Refusal::new(ErrorCode::Internal, e.message)
}

async fn session(st: &Shared, socket: &mut WebSocket, addr: SocketAddr) -> Result<(), Refusal> {
    let hello = read_hello(socket).await?;
    let device = match &hello.auth {
        Auth::Enroll { token } => return enroll(st, socket, addr, token, &hello).await,
        Auth::SchoolCode { code } => return register(st, socket, addr, code, &hello).await,
        Auth::Device { device_id, secret } => authenticate(st, addr, *device_id, secret).await?,
    };
    let device = apply_reported_name(st, device, &hello, addr).await?;
    run_session(st, socket, addr, device, hello).await
}

/// Enrollment is a session of its own: the agent stores its credential and
/// comes back with it, through the same path as every reconnect.
async fn enroll(
    st: &Shared,
    socket: &mut WebSocket,
    addr: SocketAddr,
    token: &str,
    hello: &Hello,
) -> Result<(), Refusal> {
    let (token, info) = (token.to_string(), new_device(hello));
    let enrolled = st
        .db(move |s| {
            // The token's room, read with the enrollment: a room's token puts
            // the device in that room.
            let room = s.devadmin().token_room(&token)?;
            Ok(s.enroll_device(&token, &info)?.map(|e| (e, room)))
        })
        .await
        .map_err(internal)?;
    let Some(((device, secret), room)) = enrolled else {
        return Err(Refusal::new(
            ErrorCode::BadToken,
            "enrollment token is unknown, used up or expired",
        ));
    };
    inc(&st.metrics.enrollments);
    st.device_schools.set(device.id, device.school_id);
    let mut entry = st.audit_entry(
        device.school_id,
        "system",
        Some(addr.ip().to_string()),
        "device.enroll",
        "ok",
    );
    entry.devices = vec![device.id];
    entry.detail = format!("enrolled {}", device.hostname);
    st.audit(entry).await;
    tracing::info!(%addr, device = device.id, hostname = %device.hostname, "device enrolled");
    if let Some(room) = room {
        crate::devadmin::join_room(st, room, device.id, &device.hostname).await;
    }
    send_credential(st, socket, &device, secret).await
}

/// The limiter's key for school codes: one name, so its "pair" counts are
/// per address (see [`crate::limiter::school_code_policy`]).
const SCHOOL_CODE_KEY: &str = "school code";

/// Registering with a school code (issue 16): like [`enroll`], but the code
/// names the school and has no use count, so wrong codes are limited per
/// address instead (50 bits cannot be guessed at that rate).
async fn register(
    st: &Shared,
    socket: &mut WebSocket,
    addr: SocketAddr,
    code: &str,
    hello: &Hello,
) -> Result<(), Refusal> {
    if let Some(secs) = st.code_limiter.check(SCHOOL_CODE_KEY, addr.ip()) {
        return Err(Refusal::new(
            ErrorCode::RateLimited,
            format!("too many wrong school codes from this address; try again in {secs} s"),
        ));
    }
    let refused = |message: String| {
        st.code_limiter.failed(SCHOOL_CODE_KEY, addr.ip());
        inc(&st.metrics.school_code_refusals);
        Refusal::new(ErrorCode::BadToken, message)
    };
    let code = lectern_proto::schoolcode::normalize(code).map_err(|e| refused(e.to_string()))?;
    let info = new_device(hello);
    let registered = st
        .db(move |s| s.school_codes().enroll_with_school_code(&code, &info))
        .await
        .map_err(internal)?;
    let Some((school, device, secret)) = registered else {
        return Err(refused(
            "the school code is unknown, or the school has changed it".into(),
        ));
    };
    st.code_limiter.succeeded(SCHOOL_CODE_KEY, addr.ip());
    inc(&st.metrics.enrollments);
    st.device_schools.set(device.id, school);
    let mut entry = st.audit_entry(
        school,
        "system",
        Some(addr.ip().to_string()),
        "device.register",
        "ok",
    );
    entry.school_id = school;
    entry.devices = vec![device.id];
    entry.detail = format!("registered {} with the school code", device.hostname);
    st.audit(entry).await;
    tracing::info!(%addr, device = device.id, school, hostname = %device.hostname, "device registered with a school code");
    send_credential(st, socket, &device, secret).await
}

/// The welcome with a new device's credential, then the close: the agent
/// stores it and comes back with it.
async fn send_credential(
    st: &Shared,
    socket: &mut WebSocket,
    device: &Device,
    secret: String,
) -> Result<(), Refusal> {
    let school = device.school_id;
    let name = st
        .db(move |s| s.school(school))
        .await
        .map_err(internal)?
        .map(|s| s.name)
        .unwrap_or_default();
    let welcome = ServerMsg::Welcome {
        device_id: device.id,
        school: name,
        credential: Some(Credential {
            device_id: device.id,
            secret,
        }),
        heartbeat_secs: st.config.heartbeat_secs,
        evidence: Some(limits(st, device.id).allowance()),
    };
    let _ = socket.send(Message::text(welcome.encode())).await;
    let _ = socket.send(Message::Close(None)).await;
    Ok(())
}

/// Reads a school the server has not yet (one added since it started):
/// its devices are served by its own settings, libraries and groups, never
/// by another school's or by none.
async fn ensure_school(st: &Shared, school: SchoolId) -> Result<(), Refusal> {
    crate::state::ensure_school(st, school)
        .await
        .map_err(internal)
}

async fn authenticate(
    st: &Shared,
    addr: SocketAddr,
    id: i64,
    secret: &str,
) -> Result<Device, Refusal> {
    let secret = secret.to_string();
    match st
        .db(move |s| s.authenticate_device(id, &secret))
        .await
        .map_err(internal)?
    {
        DeviceAuth::Ok(d) => {
            // An enrolled device: off the pre-auth budget and deadline.
            st.connections.promote(addr);
            // Served in its own school, whichever: its consoles see it, no
            // other school's do.
            st.device_schools.set(d.id, d.school_id);
            ensure_school(st, d.school_id).await?;
            Ok(d)
        }
        DeviceAuth::Revoked => Err(Refusal::new(
            ErrorCode::Revoked,
            "this device was revoked by an administrator",
        )),
        _ => Err(Refusal::new(
            ErrorCode::Unauthorized,
            "unknown device or wrong credential",
        )),
    }
}

/// A device is who it enrolled as: the host name in its hello is recorded
/// (`reported_name`) but becomes its name, and so moves it between computer
/// groups, only when an administrator accepts it, or at once when the school's
/// `accept_reported_names` says so.
async fn apply_reported_name(
    st: &Shared,
    mut device: Device,
    hello: &Hello,
    addr: SocketAddr,
) -> Result<Device, Refusal> {
    let info = new_device(hello);
    let reported = info.hostname.clone();
    let state = serde_json::to_string(&hello.state).unwrap_or_default();
    let id = device.id;
    st.db(move |s| s.touch_device(id, &info, &state))
        .await
        .map_err(internal)?;
    if reported == device.hostname {
        device.reported_name = None;
        return Ok(device);
    }
    if !limits(st, id).accept_reported_names {
        if device.reported_name.as_deref() != Some(&reported) {
            tracing::info!(device = id, enrolled = %device.hostname, %reported, "device reports another host name; waiting for an administrator to accept it");
        }
        device.reported_name = Some(reported);
        return Ok(device);
    }
    let school = device.school_id;
    if let Some((old, new)) = st
        .db(move |s| s.accept_device_name(school, id))
        .await
        .map_err(internal)?
    {
        let mut entry = st.audit_entry(
            school,
            "system",
            Some(addr.ip().to_string()),
            "device.rename",
            "ok",
        );
        entry.devices = vec![id];
        entry.detail = format!("{old} → {new} (accepted by setting)");
        st.audit(entry).await;
        crate::devadmin::follow_rename(st, id, &old, &new).await;
        device.hostname = new;
        device.reported_name = None;
    }
    Ok(device)
}

/// What the session loop does after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    End,
}

type Step = Result<Flow, Refusal>;

/// One authenticated agent session.
struct Session<'a> {
    st: &'a Shared,
    socket: &'a mut WebSocket,
    id: i64,
    /// The device's school: what it reads and writes is keyed by it.
    school: lectern_store::SchoolId,
    /// The logged-in user last seen, to re-resolve policy when it changes.
    user: Option<String>,
    /// The first sequence number of an activity batch refused in this
    /// session: later batches are refused too until the agent sends that one
    /// again, so an acknowledgement never covers refused events.
    refused_from: Option<u64>,
    /// The logos (SHA-256) sent in this session: each at most once, so a
    /// looping agent cannot make the server send the bytes again and again.
    logos_sent: Vec<String>,
    /// The inventory report being offered or received.
    inventory: crate::inventory::Upload,
    /// The user the device itself last reported: its user again when a
    /// signed-in student signs out.
    reported_user: Option<String>,
    /// The device shows student sign-in (it announced the capability).
    signs_in: bool,
}

async fn run_session(
    st: &Shared,
    socket: &mut WebSocket,
    addr: SocketAddr,
    device: Device,
    hello: Hello,
) -> Result<(), Refusal> {
    let id = device.id;
    let info = new_device(&hello);
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(64);
    // Broadcast frames travel apart from control messages so a busy broadcast
    // never delays a lock.
    let (media_tx, mut media_rx) = mpsc::channel::<bytes::Bytes>(4);
    let mut proto_info = hello.info.clone();
    // Groups follow the enrolled (or accepted) name, never the reported one.
    proto_info.hostname = device.hostname.clone();
    let (conn, orphaned) = st.hub.register_agent(
        device.school_id,
        id,
        tx,
        proto_info,
        hello.capabilities.clone(),
        hello.state.clone(),
    );
    fail_orphaned(st, id, orphaned);
    if let Some(cluster) = st.cluster.get() {
        cluster.hold(device.school_id, id);
    }
    st.hub.attach_media(id, conn, media_tx);
    inc(&st.metrics.agent_sessions);
    if let Some(v) = st.hub.set_state(id, hello.state.clone()) {
        st.hub.publish(ConsoleEvent::Device(Box::new(v)));
    }
    let welcome = ServerMsg::Welcome {
        device_id: id,
        school: st.school_name(device.school_id).await,
        credential: None,
        heartbeat_secs: st.config.heartbeat_secs,
        evidence: Some(limits(st, id).allowance()),
    };
    tracing::debug!(%addr, device = id, "agent connected");
    // Queued behind the welcome: every session starts with the current
    // policy and (for agents that scan) the keyword libraries that apply.
    st.keywords.forget_device(id);
    push_policy(st, device.school_id, id).await;
    if hello
        .capabilities
        .contains(&lectern_proto::Capability::Lock)
    {
        if let Some(look) = crate::api::look::look_msg(st, device.school_id).await {
            st.hub.send(id, look);
        }
    }
    // The student's chat window is not empty after a reconnect.
    if let Some(history) = crate::requests::history_for(st, id).await {
        st.hub.send(id, history);
    }
    // A policy the user has not accepted yet covers the screen.
    crate::aup::offer(st, id).await;
    // Files still on their way to or from this device carry on.
    crate::files::resume(st, id).await;
    crate::exams::note_event(st, id, "connected", String::new()).await;
    let mut session = Session {
        st,
        socket,
        id,
        school: device.school_id,
        user: hello.state.user.clone(),
        refused_from: None,
        logos_sent: Vec::new(),
        inventory: Default::default(),
        reported_user: hello.state.user.clone(),
        signs_in: hello
            .capabilities
            .contains(&lectern_proto::Capability::StudentSignIn),
    };
    let mut shutdown = st.shutdown.clone();
    let idle = Duration::from_secs(st.config.heartbeat_secs as u64 * 3);
    let result = async {
        session.send(&welcome).await?;
        // Who is signed in on it (after a reconnect: still them, unless the
        // device's own user changed meanwhile; after a server restart:
        // nobody, and the device asks again).
        let reported = hello.state.user.as_deref();
        crate::students::check_device_user(st, id, device.school_id, reported).await;
        if let Some(who) = st.students.on(id) {
            if let Some(v) = st.hub.set_user(id, Some(who.name)) {
                st.hub.publish(ConsoleEvent::Device(Box::new(v)));
            }
            session.user_may_have_changed().await?;
        }
        if session.signs_in {
            let now = crate::students::current(st, id);
            session.send(&ServerMsg::StudentSignIn(now)).await?;
        }
        loop {
            let step = tokio::select! {
                out = rx.recv() => session.outbound(out).await,
                Some(frame) = media_rx.recv() => session.media(frame).await,
                inbound = tokio::time::timeout(idle, session.socket.recv()) => match inbound {
                    Ok(frame) => session.inbound(frame).await,
                    Err(_) => Err(silent(idle)),
                },
                _ = shutdown.changed() => Ok(Flow::End),
            };
            if step? == Flow::End {
                return Ok(());
            }
        }
    }
    .await;
    end_session(st, device.school_id, id, conn, info).await;
    crate::exams::note_event(st, id, "disconnected", String::new()).await;
    tracing::debug!(%addr, device = id, "agent disconnected");
    result
}

/// A session silent for three heartbeat intervals is closed.
fn silent(idle: Duration) -> Refusal {
    Refusal::new(
        ErrorCode::Protocol,
        format!("no heartbeat for {} s", idle.as_secs()),
    )
}

/// Commands still pending on a device's previous session when it connects
/// again: it may or may not have run them, and acknowledgements come only on
/// the session a command was sent on, so they fail (re-sending a lock, a
/// logout or a message twice is not safe to assume harmless).
fn fail_orphaned(st: &Shared, id: i64, orphaned: Vec<i64>) {
    let reason = "device reconnected before acknowledging; it may or may not have run the command";
    for _ in &orphaned {
        inc(&st.metrics.commands_orphaned);
    }
    fail_unacknowledged(st, id, orphaned, reason);
}

/// Ends commands a device will never acknowledge (its session was replaced,
/// or it was revoked) as failed with `reason`, stored and told to consoles.
pub fn fail_unacknowledged(st: &Shared, id: i64, commands: Vec<i64>, reason: &str) {
    for command_id in commands {
        let _ = st.results.send(TargetUpdate {
            command_id,
            device_id: id,
            status: TargetStatus::Failed,
            reason: Some(reason.into()),
            at: now_ms(),
        });
        st.hub.publish(ConsoleEvent::Result {
            command_id,
            device_id: id,
            status: TargetStatus::Failed.as_str(),
            reason: Some(reason.into()),
        });
    }
}

/// Fails what the session left unacknowledged and saves the device's last
/// state (unless a newer session replaced this one).
async fn end_session(st: &Shared, school: SchoolId, id: i64, conn: u64, info: NewDevice) {
    // A new session starts uncontrolled, whether this one was replaced or not.
    crate::control::device_gone(st, id).await;
    let unregistered = st.hub.unregister_agent(id, conn);
    // Kicked (revoked) sessions are already gone from the hub; a replaced
    // one's device is still held here by its newer session.
    if let Some(cluster) = st.cluster.get().filter(|_| !st.hub.is_online(id)) {
        cluster.release(school, id);
    }
    let Some((pending, view)) = unregistered else {
        return;
    };
    fail_unacknowledged(st, id, pending, "device disconnected before acknowledging");
    crate::aup::device_gone(st, id);
    let state = serde_json::to_string(&view.state).unwrap_or_default();
    let _ = st.db(move |s| s.touch_device(id, &info, &state)).await;
    st.hub.publish(ConsoleEvent::Device(Box::new(view)));
}

/// Writes a connected device's current state to the store.
async fn save_state(st: &Shared, id: i64) {
    let Some(state) = st.hub.state_of(id) else {
        return;
    };
    let json = serde_json::to_string(&state).unwrap_or_default();
    if let Err(e) = st.db(move |s| s.save_device_state(id, &json)).await {
        tracing::error!(device = id, "saving a device's state: {}", e.message);
    }
}

async fn push_policy(st: &Shared, school: SchoolId, id: i64) {
    if let Err(e) = st.push_policies(school, Some(id)).await {
        tracing::error!(device = id, "cannot resolve policy: {}", e.message);
    }
}

impl Session<'_> {
    /// Sends a control message; a send failure means the agent went away.
    async fn send(&mut self, msg: &ServerMsg) -> Step {
        match self.socket.send(Message::text(msg.encode())).await {
            Ok(()) => Ok(Flow::Continue),
            Err(_) => Ok(Flow::End),
        }
    }

    /// A message from the hub for this agent; `None`: the hub dropped this
    /// session (a newer one for the device, or revocation).
    async fn outbound(&mut self, out: Option<ServerMsg>) -> Step {
        let Some(msg) = out else {
            return Ok(Flow::End);
        };
        let last = matches!(msg, ServerMsg::Error { .. });
        match self.send(&msg).await? {
            Flow::Continue if !last => Ok(Flow::Continue),
            _ => Ok(Flow::End),
        }
    }

    /// A broadcast frame for this agent's screen.
    async fn media(&mut self, frame: bytes::Bytes) -> Step {
        match self.socket.send(Message::Binary(frame)).await {
            Ok(()) => Ok(Flow::Continue),
            Err(_) => Ok(Flow::End),
        }
    }

    /// One frame (or the end) from the agent.
    async fn inbound(&mut self, frame: Option<Result<Message, axum::Error>>) -> Step {
        match frame {
            None | Some(Ok(Message::Close(_))) => Ok(Flow::End),
            Some(Err(e)) if is_disconnect(&e) => {
                tracing::debug!(device = self.id, "agent went away: {e}");
                Ok(Flow::End)
            }
            Some(Err(e)) => {
                inc(&self.st.metrics.bad_frames);
                Err(Refusal::new(
                    ErrorCode::Malformed,
                    format!("bad frame: {e}"),
                ))
            }
            Some(Ok(Message::Text(t))) => {
                let msg = AgentMsg::decode(&t).inspect_err(|_| inc(&self.st.metrics.bad_frames))?;
                self.message(msg).await
            }
            Some(Ok(Message::Binary(b))) => {
                let frame =
                    MediaFrame::decode(&b).inspect_err(|_| inc(&self.st.metrics.bad_frames))?;
                self.media_in(&frame).await
            }
            Some(Ok(_)) => Ok(Flow::Continue),
        }
    }

    /// One control message from the agent.
    async fn message(&mut self, msg: AgentMsg) -> Step {
        match msg {
            AgentMsg::Heartbeat => Ok(Flow::Continue),
            AgentMsg::Hello(_) => Err(Refusal::new(ErrorCode::Protocol, "hello sent twice")),
            AgentMsg::Violation(mut r) => {
                if let Some(who) = self.st.students.on(self.id) {
                    r.user = Some(who.name);
                }
                self.violation(*r).await
            }
            AgentMsg::Activity {
                first_seq,
                mut events,
            } => {
                if let Some(who) = self.st.students.on(self.id) {
                    for e in &mut events {
                        e.user = Some(who.name.clone());
                    }
                }
                self.activity(first_seq, events).await
            }
            AgentMsg::StudentSignIn { name, secret } => {
                let (st, id, school) = (self.st, self.id, self.school);
                let (capable, reported) = (self.signs_in, self.reported_user.clone());
                let outcome =
                    crate::students::sign_in(st, id, school, &name, secret, capable, reported)
                        .await;
                self.student_changed(outcome).await
            }
            AgentMsg::StudentSignOut => {
                let outcome = crate::students::sign_out(self.st, self.id, self.school).await;
                self.student_changed(outcome).await
            }
            AgentMsg::Ack {
                command_id,
                result,
                state,
            } => {
                self.student_still_there(state.user.as_deref()).await;
                let state = self.attributed(state);
                ack(self.st, self.id, command_id, result, state)?;
                self.user_may_have_changed().await
            }
            AgentMsg::State { state } => {
                self.student_still_there(state.user.as_deref()).await;
                let state = self.attributed(state);
                if let Some(v) = self.st.hub.set_state(self.id, state) {
                    self.st.hub.publish(ConsoleEvent::Device(Box::new(v)));
                }
                self.user_may_have_changed().await
            }
            AgentMsg::ViewAnswer {
                request_id,
                allowed,
            } => {
                self.st.hub.answer_view(self.id, request_id, allowed);
                Ok(Flow::Continue)
            }
            AgentMsg::RaiseHand { note } => {
                let r = crate::requests::raise(self.st, self.id, &note).await;
                self.request_reply(r).await
            }
            AgentMsg::LowerHand => {
                let r = crate::requests::lower(self.st, self.id).await;
                self.request_reply(r).await
            }
            AgentMsg::ChatSend { text } => {
                let r = crate::requests::chat_from_device(self.st, self.id, &text).await;
                self.request_reply(r).await
            }
            AgentMsg::WantLogo { sha256 } => {
                self.want_logo(sha256).await;
                Ok(Flow::Continue)
            }
            AgentMsg::InventoryHash { hash } => {
                let reply =
                    crate::inventory::offered(self.st, self.id, &mut self.inventory, hash).await;
                self.inventory_reply(reply).await
            }
            AgentMsg::InventoryPart { index, last, data } => {
                let up = &mut self.inventory;
                let reply = crate::inventory::part(self.st, self.id, up, index, last, &data).await;
                self.inventory_reply(reply).await
            }
            AgentMsg::AupAnswer { version_id, answer } => {
                match crate::aup::answer(self.st, self.id, version_id, answer).await {
                    Ok(Some(reply)) => self.send(&reply).await,
                    Ok(None) => Ok(Flow::Continue),
                    Err(e) => self.refuse(e.code, e.frame, e.retry_after, e.message).await,
                }
            }
            msg @ (AgentMsg::FileRead { .. }
            | AgentMsg::FileDone { .. }
            | AgentMsg::CollectData(_)
            | AgentMsg::CollectDone(_)) => {
                match crate::files::from_agent(self.st, self.id, msg).await {
                    Some(reply) => self.send(&reply).await,
                    None => Ok(Flow::Continue),
                }
            }
        }
    }

    /// Answers a raised hand or chat frame: its reply, or a refusal of that
    /// frame alone.
    async fn request_reply(&mut self, r: Result<ServerMsg, crate::requests::Refusal>) -> Step {
        match r {
            Ok(reply) => self.send(&reply).await,
            Err(e) => self.refuse(e.code, e.frame, e.retry_after, e.message).await,
        }
    }

    /// Sends the school's logo if `sha256` names it and this session has not
    /// had it yet; anything else is ignored (a stale hash after a change, or
    /// a repeat: the limit is one copy per logo per session).
    async fn want_logo(&mut self, sha256: String) {
        if !lectern_proto::look::is_sha256_hex(&sha256) || self.logos_sent.contains(&sha256) {
            return;
        }
        if let Some(msg) = crate::api::look::logo_msg(self.st, self.school, &sha256).await {
            self.logos_sent.push(sha256);
            self.st.hub.send(self.id, msg);
        }
    }

    /// Answers an inventory frame as [`crate::inventory`] decided.
    async fn inventory_reply(&mut self, reply: crate::inventory::Reply) -> Step {
        use crate::inventory::Reply;
        match reply {
            Reply::Nothing => Ok(Flow::Continue),
            Reply::Request => self.send(&ServerMsg::InventoryRequest).await,
            Reply::Refuse {
                code,
                retry_after,
                message,
            } => {
                self.refuse(code, RefusedFrame::Inventory, retry_after, message)
                    .await
            }
        }
    }

    /// A login or logout changes which user groups apply.
    /// A state as the device reported it, with the signed-in student (if
    /// any) as its user: while a student is signed in, the session is
    /// theirs whatever the device says.
    fn attributed(&mut self, mut state: DeviceState) -> DeviceState {
        self.reported_user.clone_from(&state.user);
        if let Some(who) = self.st.students.on(self.id) {
            state.user = Some(who.name);
        }
        state
    }

    /// The device reports its own user: a student signed in under another
    /// one is signed out, and the device is told.
    async fn student_still_there(&mut self, reported: Option<&str>) {
        if crate::students::check_device_user(self.st, self.id, self.school, reported).await {
            let out = ServerMsg::StudentSignIn(SignInOutcome::SignedOut);
            self.st.hub.send(self.id, out);
        }
    }

    /// Answers a sign-in or sign-out and, when someone signed in or out,
    /// moves the device's user to them (or back to what the device
    /// reported: nobody, for the browser client), re-resolving its policy.
    async fn student_changed(&mut self, outcome: SignInOutcome) -> Step {
        let user = match &outcome {
            SignInOutcome::SignedIn { name, .. } => Some(Some(name.clone())),
            SignInOutcome::SignedOut => Some(self.reported_user.clone()),
            SignInOutcome::Refused { .. } => None,
        };
        if let Some(user) = user {
            if let Some(v) = self.st.hub.set_user(self.id, user) {
                self.st.hub.publish(ConsoleEvent::Device(Box::new(v)));
            }
        }
        let flow = self.send(&ServerMsg::StudentSignIn(outcome)).await?;
        if matches!(flow, Flow::End) {
            return Ok(flow);
        }
        self.user_may_have_changed().await
    }

    async fn user_may_have_changed(&mut self) -> Step {
        let now = self
            .st
            .hub
            .subjects(self.school, Some(self.id))
            .pop()
            .and_then(|(_, _, u)| u);
        if now != self.user {
            self.user = now;
            if self.st.cluster.get().is_some() {
                // Other nodes decide who may see and act on this device by
                // its user's groups, from the store: keep it current there.
                save_state(self.st, self.id).await;
            }
            push_policy(self.st, self.school, self.id).await;
            // The chat shows the new user's lines, never the last user's.
            if let Some(history) = crate::requests::history_for(self.st, self.id).await {
                self.st.hub.send(self.id, history);
            }
            // The new user accepts their own policy; a logout takes it away.
            crate::aup::offer(self.st, self.id).await;
        }
        Ok(Flow::Continue)
    }

    /// Refuses one frame without ending the session, and logs it at warning
    /// level once per quiet window (a flood makes one line, not one per frame).
    async fn refuse(
        &mut self,
        code: ErrorCode,
        frame: RefusedFrame,
        retry_after: Option<Duration>,
        message: String,
    ) -> Step {
        if self
            .st
            .meters
            .log_refusal(self.id, limits(self.st, self.id))
        {
            tracing::warn!(
                device = self.id,
                ?code,
                ?frame,
                "refusing frames from this device: {message} (logged once per window)"
            );
        } else {
            tracing::debug!(device = self.id, ?code, ?frame, "refused: {message}");
        }
        let msg = ServerMsg::Refused {
            code,
            frame,
            retry_after_ms: retry_after.map_or(0, |d| d.as_millis() as u64),
            message,
        };
        self.send(&msg).await
    }

    /// A violation the agent found itself, within the device's violations rate.
    async fn violation(&mut self, r: ViolationReport) -> Step {
        let l = limits(self.st, self.id);
        if let Err(wait) = self.st.meters.take_violation(self.id, l) {
            inc(&self.st.metrics.limited_violations);
            let frame = RefusedFrame::Violation {
                local_id: r.local_id,
            };
            let msg = format!(
                "more than {} violations at once or {} an hour",
                l.violations_burst, l.violations_per_hour
            );
            return self
                .refuse(ErrorCode::RateLimited, frame, Some(wait), msg)
                .await;
        }
        let what = format!("{}: {}", r.category, r.term);
        crate::exams::note_event(self.st, self.id, "violation", what).await;
        let (v, library) = crate::keywords::from_report(self.st, self.school, self.id, &r);
        let finder = crate::keywords::Finder::Agent {
            local_id: r.local_id,
        };
        crate::keywords::record_from(self.st, self.school, v, finder, library.as_ref()).await;
        Ok(Flow::Continue)
    }

    /// A batch of activity events: checked, metered, stored, acknowledged
    /// after the commit, then scanned for keywords here (one batch at a time
    /// per device, no task per message).
    async fn activity(&mut self, first_seq: Option<u64>, events: Vec<ActivityEvent>) -> Step {
        check_activity(first_seq, &events)?;
        let st = self.st;
        if st
            .hub
            .policy_of(self.id)
            .is_some_and(|p| !p.activity_logging)
        {
            // Logging is off for this device's groups: acknowledged, not kept.
            return match last_seq(first_seq, events.len()) {
                Some(up_to) => self.send(&ServerMsg::ActivityAck { up_to }).await,
                None => Ok(Flow::Continue),
            };
        }
        if events.is_empty() {
            return Ok(Flow::Continue);
        }
        if let Some(refusal) = self.meter_activity(first_seq, events.len()) {
            let (wait, msg) = refusal;
            let frame = RefusedFrame::Activity { first_seq };
            return self
                .refuse(ErrorCode::RateLimited, frame, Some(wait), msg)
                .await;
        }
        let Some((up_to, fresh)) =
            store_activity(st, self.school, self.id, first_seq, events).await
        else {
            // Not stored, not acknowledged: the agent keeps the events and
            // sends them again.
            return Ok(Flow::Continue);
        };
        if let Some(up_to) = up_to {
            if self.send(&ServerMsg::ActivityAck { up_to }).await? == Flow::End {
                return Ok(Flow::End);
            }
        }
        if !fresh.is_empty() {
            crate::keywords::scan_events(st, self.school, self.id, &fresh).await;
        }
        crate::exams::note_blocked(st, self.id, &fresh).await;
        Ok(Flow::Continue)
    }

    /// Takes `n` events from the device's rate; on refusal returns how long
    /// to wait and why. After a refusal, later batches wait for the refused
    /// one to come again.
    fn meter_activity(&mut self, first_seq: Option<u64>, n: usize) -> Option<(Duration, String)> {
        let l = limits(self.st, self.id);
        let last = last_seq(first_seq, n);
        if let (Some(from), Some(first)) = (self.refused_from, first_seq) {
            if first > from {
                inc_by(&self.st.metrics.limited_events, n);
                return Some((
                    Duration::from_millis(100),
                    format!("events from {from} were refused; send them again first"),
                ));
            }
        }
        match self.st.meters.take_events(self.id, n, l) {
            Ok(()) => {
                // The refused batch came again: the gap is closed.
                if self
                    .refused_from
                    .is_some_and(|from| last.is_some_and(|last| last >= from))
                {
                    self.refused_from = None;
                }
                None
            }
            Err(wait) => {
                inc_by(&self.st.metrics.limited_events, n);
                if let Some(first) = first_seq {
                    self.refused_from = Some(self.refused_from.map_or(first, |f| f.min(first)));
                }
                Some((
                    wait,
                    format!(
                        "more than {} events at once or {} a minute",
                        l.events_burst, l.events_per_minute
                    ),
                ))
            }
        }
    }

    /// A binary frame from the agent: a thumbnail or evidence.
    async fn media_in(&mut self, frame: &MediaFrame<'_>) -> Step {
        match frame.kind {
            MediaKind::Evidence => self.evidence(frame.payload).await,
            MediaKind::Thumbnail => {
                let st = self.st;
                inc(&st.metrics.thumbnails_received);
                st.hub.thumbnail(self.id, frame.payload);
                st.hub
                    .broadcast_frame(&crate::hub::BroadcastSource::Device(self.id), None, frame);
                Ok(Flow::Continue)
            }
            MediaKind::Video => {
                // A malformed header ends the session like any bad frame;
                // a picture nobody asked for or over the rate is dropped.
                let (h, _) = lectern_proto::VideoHeader::parse(frame.payload)?;
                let bytes = frame.encode();
                let verdict = self.st.hub.video_frame(self.id, &bytes, h.keyframe);
                if verdict == crate::hub::VideoVerdict::RateLimited {
                    inc(&self.st.metrics.limited_video);
                }
                Ok(Flow::Continue)
            }
            MediaKind::Screenshot => {
                let (s, jpeg) = lectern_proto::Screenshot::parse(frame.payload)?;
                let shot = (frame.width, frame.height, jpeg.to_vec());
                if !self.st.hub.screenshot_arrived(self.id, s.request_id, shot) {
                    inc(&self.st.metrics.limited_video);
                }
                Ok(Flow::Continue)
            }
            MediaKind::Broadcast => Ok(Flow::Continue),
        }
    }

    /// One evidence frame, accepted only against an allowance the server
    /// granted (a violation it asked about, or one this device reported),
    /// at the sizes allowed and within the device's evidence bytes.
    async fn evidence(&mut self, payload: &[u8]) -> Step {
        let (ev, jpeg) = lectern_proto::Evidence::parse(payload)?;
        let key = if ev.violation_id & lectern_proto::AGENT_EVIDENCE != 0 {
            EvidenceKey::Reported(self.id, ev.violation_id & !lectern_proto::AGENT_EVIDENCE)
        } else {
            EvidenceKey::Requested(i64::try_from(ev.violation_id).unwrap_or(-1))
        };
        let frame = RefusedFrame::Evidence {
            violation_id: ev.violation_id,
            index: ev.index,
        };
        let l = limits(self.st, self.id);
        let verdict = if jpeg.starts_with(&[0xff, 0xd8]) {
            self.st
                .meters
                .evidence(key, self.id, ev.index, jpeg.len(), l)
        } else {
            EvidenceVerdict::NotAllowed
        };
        let (vid, last) = match verdict {
            EvidenceVerdict::Accept { violation, last } => (violation, last),
            EvidenceVerdict::NotAllowed => {
                inc(&self.st.metrics.evidence_not_allowed);
                let msg = "evidence not asked for, or beyond the frames or size allowed".into();
                return self.refuse(ErrorCode::NotAllowed, frame, None, msg).await;
            }
            EvidenceVerdict::RateLimited(wait) => {
                inc(&self.st.metrics.limited_evidence);
                let msg = format!(
                    "more than {} evidence bytes an hour",
                    l.evidence_bytes_per_hour
                );
                return self
                    .refuse(ErrorCode::RateLimited, frame, Some(wait), msg)
                    .await;
            }
        };
        if !last && ev.index + 1 >= ev.total {
            self.st.meters.close(key); // The agent says it has sent all it has.
        }
        write_evidence(self.st, self.school, vid, ev.index, jpeg.to_vec()).await;
        Ok(Flow::Continue)
    }
}

/// Records an acknowledgement: the outcome goes to the results writer and
/// the consoles, unless the command was not pending on this device.
fn ack(
    st: &Shared,
    id: i64,
    command_id: u64,
    result: CommandResult,
    state: DeviceState,
) -> Result<(), Refusal> {
    inc(&st.metrics.acks);
    let command_id = i64::try_from(command_id)
        .map_err(|_| Refusal::new(ErrorCode::Protocol, "command id out of range"))?;
    let Some((was_pending, view)) = st.hub.ack(id, command_id, state) else {
        return Ok(());
    };
    if was_pending {
        let (status, reason) = match result {
            CommandResult::Done => (TargetStatus::Done, None),
            CommandResult::Failed { reason } => (
                TargetStatus::Failed,
                Some(reason.chars().take(500).collect()),
            ),
        };
        let _ = st.results.send(TargetUpdate {
            command_id,
            device_id: id,
            status,
            reason: reason.clone(),
            at: now_ms(),
        });
        st.hub.publish(ConsoleEvent::Result {
            command_id,
            device_id: id,
            status: status.as_str(),
            reason,
        });
    } else {
        tracing::debug!(
            device = id,
            command_id,
            "ignoring ack for a command this device was not sent"
        );
    }
    st.hub.publish(ConsoleEvent::Device(Box::new(view)));
    Ok(())
}

fn inc_by(c: &std::sync::atomic::AtomicU64, n: usize) {
    c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a receive error is the peer vanishing (reset, I/O error, closed)
/// rather than a malformed frame: the former is routine, the latter is worth
/// a refusal. Decided on tungstenite's typed error, never on its text.
fn is_disconnect(e: &axum::Error) -> bool {
    use tungstenite::error::ProtocolError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<std::io::Error>() {
            return true;
        }
        if let Some(t) = err.downcast_ref::<tungstenite::Error>() {
            return matches!(
                t,
                tungstenite::Error::Io(_)
                    | tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            );
        }
        source = err.source();
    }
    false
}

/// Longest URL, title or application name stored.
const MAX_ACTIVITY_TEXT: usize = 2048;

/// The highest sequence number of a batch.
fn last_seq(first_seq: Option<u64>, n: usize) -> Option<u64> {
    first_seq.and_then(|f| (f + n as u64).checked_sub(1))
}

/// A batch over the limit, with an unknown kind or a sequence number out of
/// range is a protocol error.
fn check_activity(first_seq: Option<u64>, events: &[ActivityEvent]) -> Result<(), Refusal> {
    if first_seq
        .is_some_and(|s| i64::try_from(s).is_err() || s.checked_add(events.len() as u64).is_none())
    {
        return Err(Refusal::new(
            ErrorCode::Protocol,
            "sequence number out of range",
        ));
    }
    if events.len() > lectern_proto::MAX_ACTIVITY_BATCH {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "more than {} activity events in one frame",
                lectern_proto::MAX_ACTIVITY_BATCH
            ),
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| !lectern_proto::ACTIVITY_KINDS.contains(&e.kind.as_str()))
    {
        return Err(Refusal::new(
            ErrorCode::Malformed,
            format!("unknown activity kind {:?}", bad.kind),
        ));
    }
    Ok(())
}

/// Stores a checked batch (long texts cut); returns the sequence number to
/// acknowledge and the events that were new (a replay must not raise
/// violations twice). `None` when the store failed.
async fn store_activity(
    st: &Shared,
    school: lectern_store::SchoolId,
    id: i64,
    first_seq: Option<u64>,
    mut events: Vec<ActivityEvent>,
) -> Option<(Option<u64>, Vec<ActivityEvent>)> {
    let clip = |s: &mut Option<String>| {
        if let Some(v) = s {
            if v.len() > MAX_ACTIVITY_TEXT {
                *v = v.chars().take(MAX_ACTIVITY_TEXT / 4).collect();
            }
        }
    };
    for e in &mut events {
        clip(&mut e.url);
        clip(&mut e.title);
        clip(&mut e.app);
        clip(&mut e.user);
    }
    let n = events.len();
    let up_to = last_seq(first_seq, n);
    let first = first_seq.map(|s| s as i64); // Checked to fit.
    let batch = events.clone();
    match st
        .db(move |s| s.add_activity(school, id, first, &batch))
        .await
    {
        Ok(added) => {
            inc_by(&st.metrics.activity_events, added);
            st.meters.refund_events(id, n - added, limits(st, id));
            if added < n {
                tracing::debug!(
                    device = id,
                    replayed = n - added,
                    "activity replay de-duplicated"
                );
            }
            // Replays resend a batch's tail, so the new ones are last.
            let fresh = events.split_off(n - added);
            Some((up_to, fresh))
        }
        Err(e) => {
            tracing::error!(device = id, "cannot store activity: {}", e.message);
            st.meters.refund_events(id, n, limits(st, id));
            None
        }
    }
}

/// Writes one accepted evidence screenshot and counts it on the violation.
async fn write_evidence(
    st: &Shared,
    school: lectern_store::SchoolId,
    vid: i64,
    index: u8,
    jpeg: Vec<u8>,
) {
    let dir = st.data_dir.join("evidence").join(vid.to_string());
    let path = dir.join(format!("{index}.jpg"));
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, jpeg)
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(violation = vid, "cannot write evidence: {written:?}");
        return;
    }
    let n = u32::from(index) + 1;
    let _ = st
        .db(move |s| {
            let shots = s.violation(school, vid)?.map_or(0, |v| v.screenshots);
            s.set_violation_screenshots(school, vid, shots.max(n))
        })
        .await;
}
