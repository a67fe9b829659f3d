//! `GET /stream`: the console's live WebSocket. The console says which devices
//! it shows (and which one in its live view, and whether it decodes H.264);
//! the server sends their thumbnails (binary: kind 1, device id as
//! big-endian i64, JPEG), the live view's video (binary: kind 4, see
//! [`lectern_proto::console::video_frame`]) and device, result and violation
//! events (JSON text).
//! Everything it sends is scoped by the user's rights: events through the
//! console's [`ConsoleScope`], pictures through the hub's privacy rule.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
// The console's messages are parsed by pure functions (fuzzed in crates/fuzz).
use lectern_proto::console::{upload, Watch};
use lectern_proto::control::{parse_console_text, ConsoleText};
use serde_json::json;
use tokio::sync::mpsc;

use super::auth::Authed;
use super::ApiError;
use crate::hub::{BroadcastSource, ConsoleEvent, ToConsole};
use crate::metrics::inc;
use crate::privacy::{self, ViewDecision};
use crate::scope::{ConsoleScope, Incoming, Viewer};
use crate::state::Shared;

/// WebSocket close code for a stream its user may not open (no devices.view
/// usable on any group): final, the console stops reconnecting. (4000–4999
/// are for applications; 4403 echoes HTTP's 403.)
pub const CLOSE_NO_ACCESS: u16 = 4403;

/// Upgrades an authenticated console to the live stream. A user without
/// access to any computers gets the stream closed at once with
/// [`CLOSE_NO_ACCESS`]: a browser cannot read an HTTP 403 on a WebSocket
/// handshake and would take it for a network error and retry forever.
pub async fn console_stream(
    State(st): State<Shared>,
    auth: Authed,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Browsers send cookies on cross-site WebSocket handshakes too; only our own
    // origin may open the stream.
    if let (Some(origin), Some(host)) = (headers.get("origin"), headers.get("host")) {
        let origin = origin.to_str().unwrap_or("");
        let host = host.to_str().unwrap_or("");
        if origin != format!("https://{host}") {
            return Err(ApiError::forbidden("cross-origin stream refused")
                .with_reason(super::reason::CROSS_ORIGIN));
        }
    }
    if !auth.rights.usable("devices.view") {
        let refused = auth.require(&st, "devices.view").await.err();
        if refused.is_none() {
            // Holds the right, on no group: nothing to show, said the same way.
            auth.deny(&st, "stream without access to any group", Vec::new())
                .await;
        }
        let ws = ws.map_err(|_| ApiError::missing_right("devices.view"))?;
        return Ok(ws.on_upgrade(refuse));
    }
    let ws = ws.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    // What this user sees is computed once here and then kept current by the
    // hub, not per event.
    crate::scope::learn_school(&st, auth.school()).await?;
    let visible = crate::scope::visible_devices(&st, auth.school(), &auth.rights).await?;
    let scope = ConsoleScope::new(
        Viewer::of(&st, &auth),
        auth.rights.clone(),
        visible,
        st.device_schools.clone(),
    );
    // Uploads (the teacher's screen) may be up to a media frame, and up to
    // twice that gets a clear error; anything larger closes the stream. Text
    // is held to 64 KiB in `on_watch`.
    Ok(ws
        .max_message_size(2 * MAX_UPLOAD)
        .on_upgrade(move |socket| run(st, scope, auth.token, socket)))
}

/// Closes a stream its user may not open, saying why in the close frame.
async fn refuse(mut socket: WebSocket) {
    let frame = axum::extract::ws::CloseFrame {
        code: CLOSE_NO_ACCESS,
        reason: "no_access".into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Largest message a console may send: a broadcast upload of the largest
/// frame an agent accepts.
const MAX_UPLOAD: usize =
    crate::broadcast::MAX_FRAME_BYTES + lectern_proto::console::UPLOAD_HEADER_LEN;

/// Largest text message (a watch list) a console may send.
const MAX_TEXT: usize = 64 * 1024;

/// One open console stream.
struct Console {
    st: Shared,
    id: u64,
    scope: Arc<ConsoleScope>,
}

/// What the loop does after an event.
pub(super) enum Step {
    /// Send this to the console.
    Send(Message),
    /// Nothing to send.
    Skip,
    /// Close the stream.
    End,
    /// Send this (a close frame), then close the stream.
    Last(Message),
}

/// An error message for the console.
pub(super) fn error(text: impl Into<String>) -> Step {
    Step::Send(Message::text(
        json!({"type": "error", "error": text.into()}).to_string(),
    ))
}

async fn run(st: Shared, scope: Arc<ConsoleScope>, token: String, socket: WebSocket) {
    let (tx, mut from_hub) = mpsc::channel(32);
    let id = st.hub.register_console(tx, scope.clone());
    // Live video has a short channel of its own: a console that cannot take
    // pictures as fast as they come loses some (the hub drops them) rather
    // than watching an ever later picture.
    let (video_tx, mut video) = mpsc::channel(2);
    st.hub.attach_console_video(id, video_tx);
    let mut events = st.hub.subscribe(scope.clone());
    let mut shutdown = st.shutdown.clone();
    let (mut sink, mut stream) = socket.split();
    let mut ping = pings(&st);
    let (signout_id, mut signed_out) = st
        .signouts
        .register(&scope.viewer.username, scope.viewer.session);
    // A session ended between the handshake and the registration above was
    // signed out before this stream could hear it: look again.
    let ended = st
        .db(move |s| s.session(&token))
        .await
        .map_or(true, |s| s.is_none());
    if ended {
        st.signouts.sign_out_stream(signout_id);
    }
    let console = Console { st, id, scope };
    loop {
        let step = tokio::select! {
            // Completes once, ending the stream (a dropped sender: signed out).
            code = &mut signed_out => signed_out_step(code.unwrap_or(crate::signout::CLOSE_SIGNED_OUT)),
            m = stream.next() => console.on_message(m).await,
            Some(m) = from_hub.recv() => console.on_hub(m),
            Some(v) = video.recv() => Step::Send(Message::Binary(v)),
            e = events.recv() => console.on_event(e),
            _ = ping.tick() => console.on_ping(),
            _ = shutdown.changed() => Step::End,
        };
        let sent = match step {
            Step::Send(out) => sink.send(out).await.is_ok(),
            Step::Skip => true,
            Step::End => false,
            Step::Last(out) => {
                let _ = sink.send(out).await;
                false
            }
        };
        if !sent {
            break;
        }
    }
    console.st.signouts.remove(signout_id);
    console.st.hub.unregister_console(id);
    crate::control::console_closed(&console.st, id).await;
}

/// The session was ended (its account disabled, deleted or given a new
/// password) or its rights changed: the close frame says which, and the
/// console signs out or reconnects.
fn signed_out_step(code: u16) -> Step {
    let reason = if code == crate::signout::CLOSE_SIGNED_OUT {
        "signed_out"
    } else {
        "rights_changed"
    };
    Step::Last(Message::Close(Some(axum::extract::ws::CloseFrame {
        code,
        reason: reason.into(),
    })))
}

/// Ticks every `console_ping_secs`, the first after one period.
fn pings(st: &Shared) -> tokio::time::Interval {
    let period = Duration::from_secs(st.config.console_ping_secs.into());
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

type Received = Option<Result<Message, axum::Error>>;

impl Console {
    /// Something from the console: a watch list, a remote-control request or
    /// a broadcast frame.
    async fn on_message(&self, m: Received) -> Step {
        match m {
            Some(Ok(Message::Text(t))) if t.len() > MAX_TEXT => {
                error(format!("text messages are at most {MAX_TEXT} bytes"))
            }
            Some(Ok(Message::Text(t))) => match parse_console_text(&t) {
                Ok(ConsoleText::Watch(w)) => self.on_watch(w).await,
                Ok(ConsoleText::Control(r)) => {
                    crate::api::control::on_request(&self.st, &self.scope, self.id, r).await
                }
                Err(e) => error(e),
            },
            Some(Ok(Message::Binary(b))) => self.on_upload(&b),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Step::End,
            Some(Ok(_)) => Step::Skip,
        }
    }

    /// `{"watch": [ids], "live": id}`: the devices whose thumbnails the
    /// console shows, and the one in its live view (streamed larger and
    /// faster). The hub keeps only those this user sees, and says (through
    /// [`Self::on_hub`]) where a student must be asked or a bypass audited.
    /// A refused message changes nothing. Remote control of a device no
    /// longer shown live ends.
    async fn on_watch(&self, w: Watch) -> Step {
        let h264 = w.h264();
        self.st
            .hub
            .watch_codecs(self.id, w.watch.into_iter().collect(), w.live, h264);
        crate::api::control::after_watch(&self.st, self.id).await
    }

    /// The teacher's screen for a broadcast: `[2][broadcast id u64 BE][JPEG]`,
    /// passed on within the broadcast's frame rate (frames over it dropped).
    fn on_upload(&self, b: &[u8]) -> Step {
        let Some((bid, jpeg)) = upload(b) else {
            return error("broadcast frames are [2][broadcast id, 8 bytes][JPEG]");
        };
        if jpeg.len() > crate::broadcast::MAX_FRAME_BYTES {
            return error(format!(
                "broadcast frames are at most {} bytes of JPEG; send smaller frames",
                crate::broadcast::MAX_FRAME_BYTES
            ));
        }
        let frame = lectern_proto::MediaFrame {
            kind: lectern_proto::MediaKind::Broadcast,
            width: 0,
            height: 0,
            payload: jpeg,
        };
        let source = BroadcastSource::Console(self.scope.viewer.username.clone());
        self.st.hub.broadcast_frame(&source, Some(bid), &frame);
        Step::Skip
    }

    /// From the hub: a thumbnail it let through for this console, a question
    /// to ask a watched device's student (in the background; the hub starts
    /// the frames if the answer allows them), or a first bypass to audit.
    fn on_hub(&self, m: ToConsole) -> Step {
        match m {
            ToConsole::Frame(f) => {
                inc(&self.st.metrics.thumbnails_forwarded);
                Step::Send(Message::Binary(f))
            }
            ToConsole::Ask(d) => {
                let viewer = self.scope.viewer.clone();
                tokio::spawn(privacy::ask_for_thumbnails(self.st.clone(), d, viewer));
                Step::Skip
            }
            ToConsole::Bypassed(d) => {
                let (st, viewer) = (self.st.clone(), self.scope.viewer.clone());
                tokio::spawn(async move {
                    let bypass = ViewDecision::BYPASS;
                    privacy::audit(&st, &viewer, "privacy.bypass", d, bypass).await;
                });
                Step::Skip
            }
        }
    }

    /// Time for a ping: traffic that keeps a quiet stream from being cut as
    /// idle (the browser answers with a pong by itself).
    fn on_ping(&self) -> Step {
        Step::Send(Message::Ping(Default::default()))
    }

    /// An event this console's scope allows.
    fn on_event(&self, e: Incoming) -> Step {
        match e {
            Incoming::Event(e) => Step::Send(Message::text(self.event_json(e))),
            Incoming::Lagged => Step::Send(Message::text(r#"{"type":"resync"}"#)),
            Incoming::Closed => Step::End,
        }
    }

    fn event_json(&self, e: ConsoleEvent) -> String {
        match e {
            ConsoleEvent::Device(v) => json!({ "type": "device", "device": v }),
            ConsoleEvent::Result {
                command_id,
                device_id,
                status,
                reason,
            } => json!({
                "type": "result",
                "command_id": command_id,
                "device_id": device_id,
                "status": status,
                "reason": reason,
            }),
            ConsoleEvent::Violation(v) => {
                let hostname = self.st.hub.subject(v.device_id).map(|(_, h, _)| h);
                let mut e = json!({ "type": "violation", "violation": v });
                e["violation"]["hostname"] = json!(hostname);
                e
            }
            ConsoleEvent::Hand(h) => json!({ "type": "hand", "request": h.request }),
            ConsoleEvent::Chat(c) => json!({ "type": "chat", "message": c.message }),
            ConsoleEvent::Case(c) => json!({ "type": "case", "case": c }),
        }
        .to_string()
    }
}
