//! `GET /stream`: the console's live WebSocket. The console says which devices
//! it shows; the server sends their thumbnails (binary: kind 1, device id as
//! big-endian i64, JPEG) and device and result events (JSON text).

use std::collections::HashSet;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
// The console's messages are parsed by pure functions (fuzzed in crates/fuzz).
use lectern_proto::console::{upload, Watch, MAX_WATCH};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::auth::Authed;
use super::ApiError;
use crate::hub::ConsoleEvent;
use crate::metrics::inc;
use crate::state::Shared;

/// Upgrades an authenticated console to the live stream.
pub async fn console_stream(
    State(st): State<Shared>,
    auth: Authed,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    auth.require(&st, "devices.view").await?;
    let ws = ws.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    // Browsers send cookies on cross-site WebSocket handshakes too; only our own
    // origin may open the stream.
    if let (Some(origin), Some(host)) = (headers.get("origin"), headers.get("host")) {
        let origin = origin.to_str().unwrap_or("");
        let host = host.to_str().unwrap_or("");
        if origin != format!("https://{host}") {
            return Err(ApiError::forbidden("cross-origin stream refused"));
        }
    }
    Ok(ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| run(st, auth, socket)))
}

fn event_json(e: ConsoleEvent) -> String {
    match e {
        ConsoleEvent::Device(v) => json!({ "type": "device", "device": v }).to_string(),
        ConsoleEvent::Result { command_id, device_id, status, reason } => {
            json!({ "type": "result", "command_id": command_id, "device_id": device_id, "status": status, "reason": reason })
                .to_string()
        }
        ConsoleEvent::Violation(v) => json!({ "type": "violation", "violation": v }).to_string(),
    }
}

async fn run(st: Shared, auth: Authed, socket: WebSocket) {
    let (tx, mut frames) = mpsc::channel(32);
    let id = st.hub.register_console(tx);
    let mut events = st.hub.subscribe();
    let mut shutdown = st.shutdown.clone();
    let (mut sink, mut stream) = socket.split();
    loop {
        let out = tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Watch>(&t) {
                    Ok(w) if w.watch.len() <= MAX_WATCH => {
                        // Only devices this user may see stream to this console.
                        let visible: HashSet<i64> = match super::devices::visible(&st, &auth).await {
                            Ok(v) => v.into_iter().map(|(d, _)| d.id).collect(),
                            Err(_) => HashSet::new(),
                        };
                        st.hub.set_watch(id, w.watch.into_iter().filter(|d| visible.contains(d)).collect());
                        continue;
                    }
                    Ok(_) => Message::text(json!({"type":"error","error":format!("watch at most {MAX_WATCH} devices")}).to_string()),
                    Err(e) => Message::text(json!({"type":"error","error":format!("bad request: {e}")}).to_string()),
                },
                // The teacher's screen for a broadcast: [2][broadcast id u64 BE][JPEG].
                Some(Ok(Message::Binary(b))) => match upload(&b) {
                    Some((bid, jpeg)) => {
                        let frame = lectern_proto::MediaFrame { kind: lectern_proto::MediaKind::Broadcast, width: 0, height: 0, payload: jpeg };
                        st.hub.broadcast_frame(&crate::hub::BroadcastSource::Console(auth.username().to_string()), Some(bid), &frame);
                        continue;
                    }
                    None => Message::text(json!({"type":"error","error":"broadcast frames are [2][broadcast id, 8 bytes][JPEG]"}).to_string()),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            Some(f) = frames.recv() => {
                inc(&st.metrics.thumbnails_forwarded);
                Message::Binary(f)
            }
            e = events.recv() => match e {
                Ok(ConsoleEvent::Violation(v)) => {
                    // Safeguarding alerts only for those who may read them.
                    let allowed = auth.rights.allows("activity.view")
                        && super::devices::visible(&st, &auth).await.is_ok_and(|d| d.iter().any(|(d, _)| d.id == v.device_id));
                    if !allowed {
                        continue;
                    }
                    let hostname = st.hub.subjects(Some(v.device_id)).pop().map(|(_, h, _)| h);
                    let mut e = json!({ "type": "violation", "violation": v });
                    e["violation"]["hostname"] = json!(hostname);
                    Message::text(e.to_string())
                }
                Ok(e) => Message::text(event_json(e)),
                Err(broadcast::error::RecvError::Lagged(_)) => Message::text(r#"{"type":"resync"}"#),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = shutdown.changed() => break,
        };
        if sink.send(out).await.is_err() {
            break;
        }
    }
    st.hub.unregister_console(id);
}
