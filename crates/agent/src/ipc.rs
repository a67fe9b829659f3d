//! The local protocol between the system service and the per-session helpers
//! (and the browser's native host, and `lectern-agent status`), over any
//! local stream the platform offers: a Unix socket on Linux, a named pipe on
//! Windows. Nothing here knows which.
//!
//! A frame is `[u32 header length][u32 payload length][JSON header][payload]`,
//! both lengths big-endian. The JSON header says what the frame is; the payload
//! carries bulk bytes (screen pixels, broadcast JPEGs) without base64. Sizes are
//! capped so a confused or hostile peer cannot make the other allocate much.
//!
//! Who is on the other end is never taken on trust: a [`PeerStream`] asks the
//! operating system ([`Peer`]: `SO_PEERCRED` on Linux, the pipe client's
//! process and token on Windows).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use lectern_proto::{Capability, DeviceState, Policy};
use serde::{Deserialize, Serialize};

/// Largest JSON header accepted.
pub const MAX_HEADER: usize = 256 * 1024;
/// Largest payload accepted: an uncompressed 1920-pixel-wide capture fits.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// What a connecting peer says first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hello", rename_all = "snake_case")]
pub enum Hello {
    /// A session helper the service started for `session`.
    Helper {
        /// The session key the service gave it (`--session`).
        session: String,
        /// What its desktop backend can do.
        capabilities: Vec<Capability>,
        /// Whether it understands [`Request::SetSchool`]: absent (false) from
        /// an older helper, which would hang up on a request it cannot read.
        #[serde(default)]
        takes_school: bool,
        /// Whether it understands [`Request::SetLogo`] (absent: false, for
        /// the same reason).
        #[serde(default)]
        takes_logo: bool,
        /// Whether it sends [`Reply::Changed`] when its session changes:
        /// absent (false) from an older helper, which the service polls.
        #[serde(default)]
        notifies: bool,
    },
    /// `lectern-agent native-host`, started by a browser for the extension.
    Extension {
        /// The extension's origin, as the browser passed it.
        origin: String,
    },
    /// `lectern-agent status`.
    Status,
}

/// Largest message between the extension and the native host, either way.
pub const MAX_EXTENSION_MESSAGE: usize = 1024 * 1024;

/// The web settings the extension enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebPolicy {
    /// All web blocked but `always_allowed`.
    pub internet_blocked: bool,
    /// List mode.
    pub mode: lectern_proto::WebFilterMode,
    /// Allowed domain patterns.
    pub allow: Vec<String>,
    /// Blocked domain patterns.
    pub block: Vec<String>,
    /// Hosts never blocked (the Lectern server).
    pub always_allowed: Vec<String>,
    /// Who set the restriction, for the block page.
    pub set_by: String,
}

/// Messages between the extension and the agent (relayed by the native host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExtMsg {
    /// Extension → agent, first: who is talking.
    Hello {
        /// Extension version.
        #[serde(default)]
        version: String,
        /// Browser brand.
        #[serde(default)]
        browser: String,
    },
    /// Extension → agent: the open tabs.
    Tabs {
        /// Every open tab.
        tabs: Vec<lectern_proto::Tab>,
    },
    /// Extension → agent: a visited page.
    Activity {
        /// `web`.
        kind: String,
        /// Address.
        #[serde(default)]
        url: Option<String>,
        /// Title.
        #[serde(default)]
        title: Option<String>,
        /// When (ms).
        at: i64,
    },
    /// Extension → agent: text typed into a page, for keyword scanning only
    /// (never logged).
    Typed {
        /// The text (at most 1,000 characters are kept).
        text: String,
        /// The page.
        #[serde(default)]
        url: Option<String>,
        /// When (ms).
        at: i64,
    },
    /// Extension → agent: still here.
    Heartbeat,
    /// Agent → extension: web settings to enforce.
    Policy {
        /// The settings.
        web: WebPolicy,
    },
    /// Agent → extension: close a tab.
    CloseTab {
        /// Tab id.
        tab_id: i64,
    },
    /// Agent → extension: report tabs now.
    GetTabs,
    /// Agent → extension: open a website.
    OpenUrl {
        /// Address (validated).
        url: String,
    },
}

impl ExtMsg {
    /// Whether the extension may send this (the rest only the agent sends).
    pub fn from_extension(&self) -> bool {
        matches!(
            self,
            ExtMsg::Hello { .. }
                | ExtMsg::Tabs { .. }
                | ExtMsg::Activity { .. }
                | ExtMsg::Typed { .. }
                | ExtMsg::Heartbeat
        )
    }
}

/// Requests from the service to a helper; each carries an id its reply echoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Current user, focus and enforcement state.
    State,
    /// A capture scaled to `width`; the reply's payload holds RGB pixels.
    Capture { width: u32 },
    /// Lock with an optional text.
    Lock { text: Option<String> },
    /// Remove the lock.
    Unlock,
    /// Show a message.
    Message { text: String },
    /// Take the message off the screen.
    ClearMessage,
    /// Open a URL (already validated by the service).
    OpenUrl { url: String },
    /// Block or unblock web access.
    SetInternetBlocked { blocked: bool },
    /// End the session.
    Logout,
    /// Enforce a policy; the reply lists what cannot be enforced.
    ApplyPolicy { policy: Policy },
    /// Ask the student about live view; the reply comes when they answer.
    AskRemoteView {
        teacher: String,
        /// Seconds the question stays up (absent from an older service: the
        /// helper's default).
        #[serde(default)]
        timeout_secs: Option<u32>,
    },
    /// Ask whoever is at the computer for the school's code (the service
    /// has neither a token nor a code); the reply comes when they answer.
    AskSchoolCode {
        /// Why the code before was refused, if it was.
        error: Option<String>,
    },
    /// Show the broadcast window.
    StartBroadcast { title: String },
    /// Show a broadcast frame; the payload is a JPEG.
    BroadcastFrame,
    /// Close the broadcast window.
    StopBroadcast,
    /// A teacher takes control: show the notice naming them.
    StartControl { controller: String },
    /// Inject the controlling teacher's input.
    ControlInput {
        events: Vec<lectern_proto::control::InputEvent>,
    },
    /// Control ended: release what is held, remove the notice.
    StopControl,
    /// The enrolled school, for the lock screen (sent only to helpers whose
    /// hello said they take it).
    SetSchool { school: String },
    /// Activity the session saw on its own (blocked applications) since the
    /// last ask; answered with [`Reply::Activity`].
    TakeActivity,
    /// The raised hands and chat messages the student sent since the last
    /// call; the reply is [`Reply::Requests`].
    TakeRequests,
    /// Show the student what the server said about their requests.
    Notice {
        notice: lectern_desktop::StudentNotice,
    },
    /// Cover the screen with the acceptable use policy to accept, or take
    /// it away (`None`); the acceptance comes back with
    /// [`Request::TakeRequests`].
    AcceptableUse {
        policy: Option<lectern_proto::aup::AcceptableUse>,
    },
    /// Cover the screen with the student sign-in (again, with a reason), or
    /// take it away (`None`); what the student submits comes back with
    /// [`Request::TakeRequests`].
    StudentSignIn {
        screen: Option<lectern_desktop::SignInScreen>,
    },
    /// Whether a student is signed in (the corner widget offers "Sign
    /// out"); the press comes back with [`Request::TakeRequests`].
    SignedIn { signed_in: bool },
    /// The school's logo for the lock screen: the PNG is the payload when
    /// `present`; otherwise the logo is removed (sent only to helpers whose
    /// hello said they take it).
    SetLogo { present: bool },
}

/// A helper's reply to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Failed; `unsupported` tells "cannot on this platform" from "tried and failed".
    Error { message: String, unsupported: bool },
    /// The desktop's state.
    State { state: Box<DeviceState> },
    /// A capture; the payload holds `width * height * 3` RGB bytes.
    Frame { width: u32, height: u32 },
    /// Settings of the applied policy this session cannot enforce.
    Unsupported { settings: Vec<String> },
    /// The student's live-view answer (`None`: they did not answer).
    ViewAnswer { allowed: Option<bool> },
    /// The school code typed on the registration form (`None`: the form
    /// was closed or cannot be shown in this session).
    SchoolCode { code: Option<String> },
    /// Activity events, for [`Request::TakeActivity`].
    Activity {
        events: Vec<lectern_proto::ActivityEvent>,
    },
    /// Raised hands and chat messages from the student, oldest first.
    Requests {
        requests: Vec<lectern_desktop::StudentRequest>,
    },
    /// Unasked, with id [`NOTICE_ID`]: the session's state (`state`) or
    /// screen (`screen`) changed; `polls`: some of its changes cannot be
    /// signalled now (no window manager), so the service polls it.
    Changed {
        state: bool,
        screen: bool,
        #[serde(default)]
        polls: bool,
    },
}

/// The id of a helper's unasked [`Reply::Changed`]; requests count from 1.
pub const NOTICE_ID: u64 = 0;

/// A message with its id, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Matches a reply to its request.
    pub id: u64,
    /// The message.
    #[serde(flatten)]
    pub body: T,
}

/// One helper session, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Session key (logind session id, `static:<display>`, a Windows session).
    pub session: String,
    /// The session's user.
    pub user: String,
    /// Where it shows: an X display, a Windows session.
    pub display: String,
    /// Helper process id, when one is connected.
    pub helper_pid: Option<u32>,
    /// How many times the helper was (re)started.
    pub starts: u32,
}

/// The service's answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Server address, when enrolled.
    pub server: Option<String>,
    /// Enrolled school, when enrolled.
    pub school: Option<String>,
    /// This device's id on the server.
    pub device_id: Option<i64>,
    /// `enrolling`, `connecting`, `connected`, `refused: …` or `stopped`.
    pub connection: String,
    /// Version of the last policy received or loaded.
    pub policy_version: u64,
    /// Graphical sessions and their helpers.
    pub sessions: Vec<SessionStatus>,
}

/// What `status` gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusAnswer {
    /// The status.
    Status(ServiceStatus),
    /// Why not.
    Refused(String),
}

/// A frame's bytes, ready to write.
pub fn encode_frame<T: Serialize>(header: &T, payload: &[u8]) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    if json.len() > MAX_HEADER || payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut buf = Vec::with_capacity(8 + json.len() + payload.len());
    buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(&json);
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// Writes one frame.
pub async fn write_frame<T: Serialize, W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    header: &T,
    payload: &[u8],
) -> io::Result<()> {
    w.write_all(&encode_frame(header, payload)?).await?;
    w.flush().await
}

/// Reads one frame: its header and payload. Oversized or malformed frames are
/// an `InvalidData` error (the caller closes the connection).
pub async fn read_frame<T, R>(r: &mut R) -> io::Result<(T, Vec<u8>)>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin + ?Sized,
{
    let mut lens = [0u8; 8];
    r.read_exact(&mut lens).await?;
    let hlen = u32::from_be_bytes(lens[..4].try_into().unwrap()) as usize;
    let plen = u32::from_be_bytes(lens[4..].try_into().unwrap()) as usize;
    if hlen > MAX_HEADER || plen > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame too large: header {hlen} B, payload {plen} B"),
        ));
    }
    let mut header = vec![0u8; hlen];
    r.read_exact(&mut header).await?;
    let mut payload = vec![0u8; plen];
    r.read_exact(&mut payload).await?;
    let header = serde_json::from_slice(&header)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}")))?;
    Ok((header, payload))
}

/// Frames waiting for a connection's writer task. Bounded: callers queue with
/// `try_send` from synchronous code, and a peer that stops reading gets an
/// error instead of an ever-growing queue.
pub const OUTBOX: usize = 16;

/// Writes queued frames to `w` until every sender is gone or a write fails,
/// then shuts `w` down (so the peer sees the end).
pub async fn drain_outbox<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Queues an encoded frame for a connection's writer task.
pub fn queue_frame(outbox: &mpsc::Sender<Vec<u8>>, frame: Vec<u8>) -> io::Result<()> {
    outbox.try_send(frame).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => io::Error::new(
            io::ErrorKind::WouldBlock,
            "the peer is not reading (its queue is full)",
        ),
        mpsc::error::TrySendError::Closed(_) => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the peer hung up")
        }
    })
}

/// An operating-system account as the platform names it (`uid 1000` on
/// Linux, a SID on Windows): compared and shown, never parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account(pub String);

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who the operating system says is at the other end of a local connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Process id (0 when the system could not tell).
    pub pid: u32,
    /// The account the process runs as.
    pub account: Account,
    /// Whether that account is the system's own (root, LocalSystem): the
    /// service itself, or an administrator asking for `status`.
    pub system: bool,
}

/// A connected local stream (Unix socket, named pipe) whose peer the
/// operating system vouches for; the service's listener and the helpers are
/// generic over it.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The peer, from the kernel: never from anything the peer said.
    fn peer(&self) -> io::Result<Peer>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_with_payload() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let req = Envelope {
            id: 7,
            body: Request::Lock {
                text: Some("Eyes front".into()),
            },
        };
        write_frame(&mut a, &req, b"pix").await.unwrap();
        let (got, payload): (Envelope<Request>, _) = read_frame(&mut b).await.unwrap();
        assert_eq!(got, req);
        assert_eq!(payload, b"pix");
    }

    #[tokio::test]
    async fn oversized_and_malformed_frames_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        a.write_all(&0u32.to_be_bytes()).await.unwrap();
        let e = read_frame::<Envelope<Request>, _>(&mut b)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("too large"), "{e}");

        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&4u32.to_be_bytes()).await.unwrap();
        a.write_all(&0u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{{{{").await.unwrap();
        let e = read_frame::<Envelope<Request>, _>(&mut b)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bad frame"), "{e}");
    }

    #[tokio::test]
    async fn a_full_outbox_is_an_error_not_a_wait() {
        let (tx, rx) = mpsc::channel(1);
        queue_frame(&tx, vec![1]).unwrap();
        let e = queue_frame(&tx, vec![2]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(rx);
        let e = queue_frame(&tx, vec![3]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
