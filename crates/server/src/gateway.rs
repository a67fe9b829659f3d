//! `/agent/v1`: the agents' WebSocket. One task per agent: authenticate the
//! hello, register with the hub, then relay commands out and acknowledgements,
//! state and thumbnails in. Any bad frame ends only that agent's session.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use lectern_proto::{
    AgentMsg, Auth, CommandResult, Credential, ErrorCode, Hello, MediaFrame, MediaKind, ProtoError,
    ServerMsg, MAX_BINARY_FRAME, PROTOCOL_VERSION,
};
use lectern_store::{now_ms, Device, DeviceAuth, NewDevice, TargetStatus, TargetUpdate};
use tokio::sync::mpsc;

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
            if let Err((code, message)) = session(&st, &mut socket, addr).await {
                inc(&st.metrics.agent_refused);
                tracing::warn!(%addr, ?code, "agent session ended: {message}");
                let err = ServerMsg::Error { code, message };
                let _ = socket.send(Message::text(err.encode())).await;
                let _ = socket.send(Message::Close(None)).await;
            }
        })
}

type Refusal = (ErrorCode, String);

fn proto_refusal(e: ProtoError) -> Refusal {
    match e {
        ProtoError::TooLarge { .. } => (ErrorCode::TooLarge, e.to_string()),
        ProtoError::Malformed(_) => (ErrorCode::Malformed, e.to_string()),
    }
}

async fn read_hello(socket: &mut WebSocket) -> Result<Hello, Refusal> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| (ErrorCode::Protocol, "no hello within 10 s".to_string()))?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(other)) => {
            return Err((
                ErrorCode::Protocol,
                format!("expected a hello text frame, got {other:?}"),
            ))
        }
        Some(Err(e)) => return Err((ErrorCode::Malformed, format!("bad frame: {e}"))),
        None => return Err((ErrorCode::Protocol, "closed before the hello".into())),
    };
    match AgentMsg::decode(&text).map_err(proto_refusal)? {
        AgentMsg::Hello(h) if h.protocol_version == PROTOCOL_VERSION => Ok(h),
        AgentMsg::Hello(h) => Err((
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                h.protocol_version
            ),
        )),
        _ => Err((
            ErrorCode::Protocol,
            "the first frame must be a hello".into(),
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

async fn session(st: &Shared, socket: &mut WebSocket, addr: SocketAddr) -> Result<(), Refusal> {
    let hello = read_hello(socket).await?;
    let internal = |e: crate::api::ApiError| (ErrorCode::Internal, e.message);
    let device: Device = match &hello.auth {
        Auth::Enroll { token } => {
            let (token, info) = (token.clone(), new_device(&hello));
            let enrolled = st
                .db(move |s| s.enroll_device(&token, &info))
                .await
                .map_err(internal)?;
            let Some((device, secret)) = enrolled else {
                return Err((
                    ErrorCode::BadToken,
                    "enrollment token is unknown, used up or expired".into(),
                ));
            };
            inc(&st.metrics.enrollments);
            let mut entry =
                st.audit_entry("system", Some(addr.ip().to_string()), "device.enroll", "ok");
            entry.devices = vec![device.id];
            entry.detail = format!("enrolled {}", device.hostname);
            st.audit(entry).await;
            tracing::info!(%addr, device = device.id, hostname = %device.hostname, "device enrolled");
            // Enrollment ends the session: the agent stores its credential and
            // comes back with it, through the same path as every reconnect.
            let welcome = ServerMsg::Welcome {
                device_id: device.id,
                school: st.school.name.clone(),
                credential: Some(Credential {
                    device_id: device.id,
                    secret,
                }),
                heartbeat_secs: st.config.heartbeat_secs,
            };
            let _ = socket.send(Message::text(welcome.encode())).await;
            let _ = socket.send(Message::Close(None)).await;
            return Ok(());
        }
        Auth::Device { device_id, secret } => {
            let (id, secret) = (*device_id, secret.clone());
            match st
                .db(move |s| s.authenticate_device(id, &secret))
                .await
                .map_err(internal)?
            {
                DeviceAuth::Ok(d) if d.school_id == st.school.id => {
                    // An enrolled device: off the pre-auth budget and deadline.
                    st.connections.promote(addr);
                    d
                }
                DeviceAuth::Revoked => {
                    return Err((
                        ErrorCode::Revoked,
                        "this device was revoked by an administrator".into(),
                    ))
                }
                _ => {
                    return Err((
                        ErrorCode::Unauthorized,
                        "unknown device or wrong credential".into(),
                    ))
                }
            }
        }
    };
    run_session(st, socket, addr, device, hello).await
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
    proto_info.hostname = info.hostname.clone();
    let (conn, _) = st.hub.register_agent(
        id,
        tx,
        proto_info,
        hello.capabilities.clone(),
        hello.state.clone(),
    );
    st.hub.attach_media(id, conn, media_tx);
    inc(&st.metrics.agent_sessions);
    if let Some(v) = st.hub.set_state(id, hello.state.clone()) {
        st.hub.publish(ConsoleEvent::Device(Box::new(v)));
    }
    let welcome = ServerMsg::Welcome {
        device_id: id,
        school: st.school.name.clone(),
        credential: None,
        heartbeat_secs: st.config.heartbeat_secs,
    };
    tracing::debug!(%addr, device = id, "agent connected");
    // Queued behind the welcome: every session starts with the current policy.
    if let Err(e) = st.push_policies(Some(id)).await {
        tracing::error!(device = id, "cannot resolve policy: {}", e.message);
    }
    if hello
        .capabilities
        .contains(&lectern_proto::Capability::KeywordScan)
    {
        st.hub.send(
            id,
            ServerMsg::Keywords {
                library: crate::keywords::library_json(st),
            },
        );
    }
    // Violations this agent reported in this session: its local id → ours.
    let mut reported: std::collections::HashMap<u64, i64> = Default::default();
    let mut user = hello.state.user.clone();
    let mut shutdown = st.shutdown.clone();
    let idle = Duration::from_secs(st.config.heartbeat_secs as u64 * 3);
    let result = async {
        socket.send(Message::text(welcome.encode())).await.map_err(|e| (ErrorCode::Internal, e.to_string()))?;
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(msg) => {
                        let last = matches!(msg, ServerMsg::Error { .. });
                        if socket.send(Message::text(msg.encode())).await.is_err() || last {
                            return Ok(());
                        }
                    }
                    // The hub dropped us: a newer session for this device, or revocation.
                    None => return Ok(()),
                },
                Some(frame) = media_rx.recv() => {
                    if socket.send(Message::Binary(frame)).await.is_err() {
                        return Ok(());
                    }
                }
                inbound = tokio::time::timeout(idle, socket.recv()) => match inbound {
                    Err(_) => return Err((ErrorCode::Protocol, format!("no heartbeat for {} s", idle.as_secs()))),
                    Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Ok(()),
                    Ok(Some(Err(e))) if is_disconnect(&e) => {
                        tracing::debug!(device = id, "agent went away: {e}");
                        return Ok(());
                    }
                    Ok(Some(Err(e))) => {
                        inc(&st.metrics.bad_frames);
                        return Err((ErrorCode::Malformed, format!("bad frame: {e}")));
                    }
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let msg = AgentMsg::decode(&t).map_err(|e| { inc(&st.metrics.bad_frames); proto_refusal(e) })?;
                        if let AgentMsg::Violation(r) = msg {
                            let v = crate::keywords::from_report(st, id, &r);
                            if let Some(row) = crate::keywords::record(st, v, false).await {
                                if reported.len() >= 1000 {
                                    reported.clear();
                                }
                                reported.insert(r.local_id, row);
                            }
                            continue;
                        }
                        if let AgentMsg::Activity { first_seq, events } = msg {
                            let (stored, scan) = store_activity(st, id, first_seq, events).await?;
                            if !scan.is_empty() {
                                let st = st.clone();
                                tokio::spawn(async move { crate::keywords::scan_events(&st, id, &scan).await });
                            }
                            if let Some(up_to) = stored {
                                let ack = ServerMsg::ActivityAck { up_to };
                                if socket.send(Message::text(ack.encode())).await.is_err() {
                                    return Ok(());
                                }
                            }
                            continue;
                        }
                        let state_report = matches!(msg, AgentMsg::State { .. } | AgentMsg::Ack { .. });
                        handle(st, id, msg)?;
                        // A login or logout changes which user groups apply.
                        let now = if state_report { st.hub.subjects(Some(id)).pop().and_then(|(_, _, u)| u) } else { user.clone() };
                        if now != user {
                            user = now;
                            if let Err(e) = st.push_policies(Some(id)).await {
                                tracing::error!(device = id, "cannot resolve policy: {}", e.message);
                            }
                        }
                    }
                    Ok(Some(Ok(Message::Binary(b)))) => {
                        let frame = MediaFrame::decode(&b).map_err(|e| { inc(&st.metrics.bad_frames); proto_refusal(e) })?;
                        if frame.kind == MediaKind::Evidence {
                            store_evidence(st, id, frame.payload, &reported).await?;
                        } else if frame.kind == MediaKind::Thumbnail {
                            inc(&st.metrics.thumbnails_received);
                            st.hub.thumbnail(id, frame.payload);
                            st.hub.broadcast_frame(&crate::hub::BroadcastSource::Device(id), None, &frame);
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                },
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
    .await;
    if let Some((pending, view)) = st.hub.unregister_agent(id, conn) {
        for command_id in pending {
            let _ = st.results.send(TargetUpdate {
                command_id,
                device_id: id,
                status: TargetStatus::Failed,
                reason: Some("device disconnected before acknowledging".into()),
                at: now_ms(),
            });
        }
        let state = serde_json::to_string(&view.state).unwrap_or_default();
        let _ = st.db(move |s| s.touch_device(id, &info, &state)).await;
        st.hub.publish(ConsoleEvent::Device(Box::new(view)));
    }
    tracing::debug!(%addr, device = id, "agent disconnected");
    result
}

fn handle(st: &Shared, id: i64, msg: AgentMsg) -> Result<(), Refusal> {
    match msg {
        AgentMsg::Heartbeat | AgentMsg::Activity { .. } | AgentMsg::Violation(_) => {}
        AgentMsg::Ack {
            command_id,
            result,
            state,
        } => {
            inc(&st.metrics.acks);
            let command_id = i64::try_from(command_id)
                .map_err(|_| (ErrorCode::Protocol, "command id out of range".into()))?;
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
        }
        AgentMsg::State { state } => {
            if let Some(v) = st.hub.set_state(id, state) {
                st.hub.publish(ConsoleEvent::Device(Box::new(v)));
            }
        }
        AgentMsg::ViewAnswer {
            request_id,
            allowed,
        } => st.hub.answer_view(id, request_id, allowed),
        AgentMsg::Hello(_) => return Err((ErrorCode::Protocol, "hello sent twice".into())),
    }
    Ok(())
}

/// Whether a receive error is the peer vanishing (reset, I/O error) rather than
/// a malformed frame: the former is routine, the latter is worth a refusal.
fn is_disconnect(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<std::io::Error>() || err.to_string().contains("without closing handshake") {
            return true;
        }
        source = err.source();
    }
    false
}

/// Longest URL, title or application name stored.
const MAX_ACTIVITY_TEXT: usize = 2048;

/// Checks and stores a batch of activity events. A batch over the limit or
/// with an unknown kind is a protocol error; long texts are cut.
async fn store_activity(
    st: &Shared,
    id: i64,
    first_seq: Option<u64>,
    mut events: Vec<lectern_proto::ActivityEvent>,
) -> Result<(Option<u64>, Vec<lectern_proto::ActivityEvent>), Refusal> {
    let first_seq = first_seq
        .map(|s| {
            i64::try_from(s).map_err(|_| {
                (
                    ErrorCode::Protocol,
                    "sequence number out of range".to_string(),
                )
            })
        })
        .transpose()?;
    // The highest sequence number of the batch, acknowledged once committed.
    let up_to = first_seq.and_then(|f| (f + events.len() as i64 - 1).try_into().ok());
    if events.len() > lectern_proto::MAX_ACTIVITY_BATCH {
        return Err((
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
        return Err((
            ErrorCode::Malformed,
            format!("unknown activity kind {:?}", bad.kind),
        ));
    }
    if st.hub.policy_of(id).is_some_and(|p| !p.activity_logging) {
        return Ok((up_to, Vec::new())); // Logging is off for this device's groups.
    }
    if events.is_empty() {
        return Ok((None, Vec::new()));
    }
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
    let school = st.school.id;
    let n = events.len();
    let batch = events.clone();
    match st
        .db(move |s| s.add_activity(school, id, first_seq, &batch))
        .await
    {
        Ok(added) => {
            st.metrics
                .activity_events
                .fetch_add(added as u64, std::sync::atomic::Ordering::Relaxed);
            if added < n {
                tracing::debug!(
                    device = id,
                    replayed = n - added,
                    "activity replay de-duplicated"
                );
            }
            // Only new events are scanned: a replay must not raise violations
            // twice. (Replays resend a batch's tail, so the new ones are last.)
            let fresh = events.split_off(n - added);
            Ok((up_to, fresh))
        }
        Err(e) => {
            // No acknowledgement: the agent keeps the events and sends them again.
            tracing::error!(device = id, "cannot store activity: {}", e.message);
            Ok((None, Vec::new()))
        }
    }
}

/// Most evidence frames per violation.
const MAX_EVIDENCE: u8 = 60;

/// Writes one evidence screenshot for a violation this device was asked about.
async fn store_evidence(
    st: &Shared,
    id: i64,
    payload: &[u8],
    reported: &std::collections::HashMap<u64, i64>,
) -> Result<(), Refusal> {
    let (ev, jpeg) = lectern_proto::Evidence::parse(payload).map_err(proto_refusal)?;
    let (vid, asked) = if ev.violation_id & lectern_proto::AGENT_EVIDENCE != 0 {
        // Evidence of a violation the agent reported itself.
        let local = ev.violation_id & !lectern_proto::AGENT_EVIDENCE;
        match reported.get(&local) {
            Some(row) => (*row, Some(id)),
            None => (-1, None),
        }
    } else {
        let vid = i64::try_from(ev.violation_id).unwrap_or(-1);
        let asked = st
            .evidence_wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&vid)
            .copied();
        (vid, asked)
    };
    if asked != Some(id) || ev.index >= MAX_EVIDENCE || !jpeg.starts_with(&[0xff, 0xd8]) {
        tracing::warn!(
            device = id,
            violation = vid,
            "ignoring unrequested or malformed evidence"
        );
        return Ok(());
    }
    let dir = st.data_dir.join("evidence").join(vid.to_string());
    let path = dir.join(format!("{}.jpg", ev.index));
    let bytes = jpeg.to_vec();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, bytes)
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(violation = vid, "cannot write evidence: {written:?}");
        return Ok(());
    }
    if ev.index + 1 == ev.total {
        st.evidence_wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&vid);
    }
    let school = st.school.id;
    let n = u32::from(ev.index) + 1;
    let _ = st
        .db(move |s| {
            let shots = s.violation(school, vid)?.map_or(0, |v| v.screenshots);
            s.set_violation_screenshots(school, vid, shots.max(n))
        })
        .await;
    Ok(())
}
