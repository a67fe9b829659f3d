//! The local protocol between the root service and the per-session helpers
//! (and `lectern-agent status`), over a Unix stream socket.
//!
//! A frame is `[u32 header length][u32 payload length][JSON header][payload]`,
//! both lengths big-endian. The JSON header says what the frame is; the payload
//! carries bulk bytes (screen pixels, broadcast JPEGs) without base64. Sizes are
//! capped so a confused or hostile peer cannot make the other allocate much.
//!
//! Who is on the other end is never taken on trust: [`peer_cred`] asks the
//! kernel (`SO_PEERCRED`) for the peer's pid and uid.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

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
    /// Show the broadcast window.
    StartBroadcast { title: String },
    /// Show a broadcast frame; the payload is a JPEG.
    BroadcastFrame,
    /// Close the broadcast window.
    StopBroadcast,
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
}

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
    /// Session key (logind session id, or `static:<display>`).
    pub session: String,
    /// The session's user.
    pub user: String,
    /// X display.
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

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, header: &T, payload: &[u8]) -> io::Result<()> {
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
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one frame: its header and payload. Oversized or malformed frames are
/// an `InvalidData` error (the caller closes the connection).
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<(T, Vec<u8>)> {
    let mut lens = [0u8; 8];
    r.read_exact(&mut lens)?;
    let hlen = u32::from_be_bytes(lens[..4].try_into().unwrap()) as usize;
    let plen = u32::from_be_bytes(lens[4..].try_into().unwrap()) as usize;
    if hlen > MAX_HEADER || plen > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame too large: header {hlen} B, payload {plen} B"),
        ));
    }
    let mut header = vec![0u8; hlen];
    r.read_exact(&mut header)?;
    let mut payload = vec![0u8; plen];
    r.read_exact(&mut payload)?;
    let header = serde_json::from_slice(&header)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}")))?;
    Ok((header, payload))
}

/// The kernel's word on who is at the other end of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `SO_PEERCRED` of a connected Unix socket: the credentials the peer had
/// when it connected (or, for the connecting side, when the listener bound).
pub fn peer_cred(s: &UnixStream) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and sized for SO_PEERCRED.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_payload() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let req = Envelope {
            id: 7,
            body: Request::Lock {
                text: Some("Eyes front".into()),
            },
        };
        write_frame(&mut a, &req, b"pix").unwrap();
        let (got, payload): (Envelope<Request>, _) = read_frame(&mut b).unwrap();
        assert_eq!(got, req);
        assert_eq!(payload, b"pix");
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&(u32::MAX).to_be_bytes()).unwrap();
        a.write_all(&0u32.to_be_bytes()).unwrap();
        let e = read_frame::<Envelope<Request>>(&mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("too large"), "{e}");

        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&4u32.to_be_bytes()).unwrap();
        a.write_all(&0u32.to_be_bytes()).unwrap();
        a.write_all(b"{{{{").unwrap();
        let e = read_frame::<Envelope<Request>>(&mut b).unwrap_err();
        assert!(e.to_string().contains("bad frame"), "{e}");
    }

    #[test]
    fn peer_cred_names_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let c = peer_cred(&a).unwrap();
        assert_eq!(c.pid, std::process::id());
        // SAFETY: getuid cannot fail.
        assert_eq!(c.uid, unsafe { libc::getuid() });
    }
}
