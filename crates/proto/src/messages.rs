use serde::{Deserialize, Serialize};

use crate::{Command, CommandResult, DeviceState, Policy, MAX_TEXT_FRAME};

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    /// The frame is larger than the protocol allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the offending frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// How an agent proves who it is in its [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// An enrolled device presenting its credential.
    Device {
        /// Device id issued at enrollment.
        device_id: i64,
        /// Device secret issued at enrollment.
        secret: String,
    },
    /// A new device asking to enroll with an enrollment token.
    Enroll {
        /// Token created by an admin.
        token: String,
    },
    /// A new device registering with its school's code (see
    /// [`crate::schoolcode`]): what a person types into a registration
    /// prompt or an admin places in `/etc/lectern/schoolcode`. Unlike a
    /// token it has no use count; the school rotates it to stop it.
    SchoolCode {
        /// The code as typed (the server normalizes it).
        code: String,
    },
}

/// Features an agent's desktop backend supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Can stream JPEG thumbnails.
    Thumbnails,
    /// Can show a teacher's message.
    Message,
    /// Can open a website.
    LaunchUrl,
    /// Can lock the screen.
    Lock,
    /// Can block web access.
    InternetBlock,
    /// Can end the user's session.
    Logout,
    /// Reports browser tabs and can close them.
    Tabs,
    /// Scans its own activity for keywords (and keeps evidence of the moment).
    KeywordScan,
    /// Enforces web allow and block lists.
    WebFilter,
    /// Injects a teacher's mouse and keyboard input (remote control).
    RemoteControl,
    /// Shows a broadcast (another screen) full screen.
    Broadcast,
    /// Streams its live view as H.264 video ([`ServerMsg::StartVideo`]) and
    /// takes full-resolution screenshots ([`ServerMsg::Screenshot`]).
    LiveVideo,
    /// Shuts down, restarts and logs off after a countdown
    /// ([`crate::Command::Power`]).
    Power,
    /// Receives and hands in files ([`ServerMsg::FileOffer`],
    /// [`ServerMsg::CollectStart`]); a browser extension has no file system
    /// to offer and never announces it.
    Files,
    /// Shows the student sign-in of [`crate::signin`] when its policy offers
    /// it, and is told at each connection who is signed in on it.
    StudentSignIn,
}

/// Facts about the device, sent in every hello.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceInfo {
    /// Host name.
    pub hostname: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Agent version.
    pub agent_version: String,
}

/// The first frame of every agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal the server's [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// Credential or enrollment token.
    pub auth: Auth,
    /// Facts about the device.
    pub info: DeviceInfo,
    /// What the agent can do.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Current state, including the logged-in user.
    #[serde(default)]
    pub state: DeviceState,
}

/// Frames an agent sends to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMsg {
    /// Opens the session.
    Hello(Hello),
    /// Keeps the session alive.
    Heartbeat,
    /// Result of a command.
    Ack {
        /// The command being acknowledged.
        command_id: u64,
        /// Outcome.
        result: CommandResult,
        /// Device state after the command.
        state: DeviceState,
    },
    /// The device's state changed on its own (user logged in, app switched…).
    State {
        /// New state.
        state: DeviceState,
    },
    /// The student's answer to a live-view request.
    ViewAnswer {
        /// The request being answered.
        request_id: u64,
        /// `Some(true/false)` if the student answered, `None` if the request's
        /// `timeout_secs` ran out.
        allowed: Option<bool>,
    },
    /// A keyword violation found on the device; evidence frames follow.
    Violation(Box<ViolationReport>),
    /// Activity-log events (visited sites, focused apps…), at most
    /// [`MAX_ACTIVITY_BATCH`] per frame.
    Activity {
        /// Sequence number of the first event; the rest follow consecutively.
        /// The server stores each `(device, seq)` once and answers
        /// [`ServerMsg::ActivityAck`] after committing. `None`: unnumbered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_seq: Option<u64>,
        /// The events, oldest first.
        events: Vec<crate::ActivityEvent>,
    },
    /// The student raised a hand / asked for help, with an optional note
    /// (at most [`crate::requests::MAX_NOTE_CHARS`]). The server attributes
    /// it to this device and its logged-in user; a device has at most one
    /// open request.
    RaiseHand {
        /// What the student wants help with; may be empty.
        #[serde(default)]
        note: String,
    },
    /// The student withdrew their raised hand.
    LowerHand,
    /// A chat message from the student (at most
    /// [`crate::requests::MAX_CHAT_BYTES`]) to the teachers of this device.
    ChatSend {
        /// The text.
        text: String,
    },
    /// The agent lacks the school's logo named in [`ServerMsg::SchoolLook`]
    /// and asks for its bytes (see [`crate::look`]).
    WantLogo {
        /// The logo's SHA-256, lower-case hex.
        sha256: String,
    },
    /// The hash of the device's current inventory (at connect and when it
    /// changes); the server answers [`ServerMsg::InventoryRequest`] when it
    /// holds a different one.
    InventoryHash {
        /// Hex SHA-256 of the report's JSON.
        hash: String,
    },
    /// One slice of the inventory report's JSON, in order from index 0,
    /// sent only after [`ServerMsg::InventoryRequest`] (see
    /// [`crate::inventory`]).
    InventoryPart {
        /// Position of this part.
        index: u32,
        /// The report is complete with this part.
        last: bool,
        /// A slice of the JSON.
        data: String,
    },
    /// Asks for the next chunk of an offered file, from `offset` (a
    /// reconnected agent resumes from what it has on disk).
    FileRead {
        /// The transfer.
        transfer: i64,
        /// First byte wanted.
        offset: u64,
    },
    /// How a file delivery ended on the device.
    FileDone {
        /// The transfer.
        transfer: i64,
        /// Saved, or why not.
        result: CommandResult,
        /// Where it was saved, relative to the user's home.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved_as: Option<String>,
    },
    /// The device's answer to the [`ServerMsg::AcceptableUse`] it was
    /// shown. The server records an acceptance for this device and the user
    /// it knows is logged in on it, and only for the version it offered.
    AupAnswer {
        /// The version shown ([`crate::aup::AcceptableUse::version_id`]).
        version_id: i64,
        /// Accepted, or this device cannot show it.
        answer: crate::aup::AupAnswer,
    },
    /// One chunk of a collected file.
    CollectData(Box<crate::files::CollectChunk>),
    /// The device finished (or gave up) a collection.
    CollectDone(crate::files::CollectEnd),
    /// A student signs in on this shared device (see [`crate::signin`]);
    /// answered with [`ServerMsg::StudentSignIn`].
    StudentSignIn {
        /// The user name they typed (at most
        /// [`crate::signin::MAX_NAME_CHARS`]).
        name: String,
        /// Their picture or text password.
        secret: crate::signin::StudentSecret,
    },
    /// The signed-in student signs out; answered with
    /// [`ServerMsg::StudentSignIn`] (`signed_out`).
    StudentSignOut,
}

/// A keyword match the agent found in its own activity. Evidence frames
/// follow it, with [`crate::Evidence::violation_id`] set to
/// `local_id | AGENT_EVIDENCE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationReport {
    /// The agent's number for it (evidence frames refer to it).
    pub local_id: u64,
    /// Library term.
    pub term: String,
    /// Its category.
    pub category: String,
    /// 1 to 5.
    pub severity: u8,
    /// The text as written.
    pub matched: String,
    /// Text around it.
    pub context: String,
    /// `window_title`, `title`, `url`, `search`…
    pub source: String,
    /// The user.
    pub user: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// Marks evidence frames that belong to an agent-reported violation.
pub const AGENT_EVIDENCE: u64 = 1 << 63;

/// Largest text frame from the server (it may carry the keyword library).
pub const MAX_SERVER_TEXT_FRAME: usize = 1024 * 1024;

/// Most activity events in one [`AgentMsg::Activity`].
pub const MAX_ACTIVITY_BATCH: usize = 500;

/// A device credential, issued once at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Device id.
    pub device_id: i64,
    /// Secret; the server stores only its hash.
    pub secret: String,
}

/// Machine-readable reason in an [`ServerMsg::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame could not be parsed.
    Malformed,
    /// The frame exceeded a size limit.
    TooLarge,
    /// The hello's protocol version is not spoken here.
    UnsupportedVersion,
    /// Unknown device or wrong secret.
    Unauthorized,
    /// The device has been revoked by an admin.
    Revoked,
    /// The enrollment token is unknown, used up or expired.
    BadToken,
    /// A message arrived out of order (e.g. no hello first).
    Protocol,
    /// The server failed; the agent should retry later.
    Internal,
    /// The device sent more than its school allows in a period (events,
    /// violations, evidence bytes); the frame was refused, not stored, and may
    /// be sent again after [`ServerMsg::Refused::retry_after_ms`].
    RateLimited,
    /// The frame is not covered by anything the server granted (evidence for a
    /// violation nobody asked about, or beyond the frames or bytes allowed).
    NotAllowed,
}

impl ErrorCode {
    /// Whether an agent refused with this code at the hello should wait long
    /// before trying again: nothing will change by reconnecting sooner.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorCode::Revoked
                | ErrorCode::Unauthorized
                | ErrorCode::UnsupportedVersion
                | ErrorCode::BadToken
        )
    }
}

/// How much evidence the server accepts for one violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceAllowance {
    /// Most frames.
    pub max_frames: u8,
    /// Largest JPEG accepted, bytes.
    pub max_frame_bytes: u32,
}

/// Which frame a [`ServerMsg::Refused`] refers to, so the agent keeps exactly
/// that data for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefusedFrame {
    /// An [`AgentMsg::Activity`] batch: nothing of it was stored.
    Activity {
        /// Its first sequence number (`None`: unnumbered).
        first_seq: Option<u64>,
    },
    /// An [`AgentMsg::Violation`]: not stored; its evidence will be refused too.
    Violation {
        /// The agent's number for it.
        local_id: u64,
    },
    /// One evidence frame.
    Evidence {
        /// The violation id the frame carried.
        violation_id: u64,
        /// Its index.
        index: u8,
    },
    /// An [`AgentMsg::RaiseHand`] or [`AgentMsg::LowerHand`]: nothing changed.
    Hand,
    /// An [`AgentMsg::ChatSend`]: not stored, not delivered.
    Chat,
    /// An inventory report (its hash or a part): nothing of it was kept.
    Inventory,
    /// An [`AgentMsg::AupAnswer`]: nothing was recorded.
    Aup,
}

/// Frames the server sends to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The hello was accepted.
    Welcome {
        /// The device's id.
        device_id: i64,
        /// School name.
        school: String,
        /// Present only right after enrollment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<Credential>,
        /// How often to send [`AgentMsg::Heartbeat`].
        heartbeat_secs: u32,
        /// The most evidence the server accepts for a violation the agent
        /// reports itself (more is refused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<EvidenceAllowance>,
    },
    /// Run a command and acknowledge it.
    Command {
        /// Id to acknowledge.
        command_id: u64,
        /// What to do.
        command: Command,
    },
    /// Stream thumbnails until told to stop.
    StartThumbnails {
        /// Width in pixels; height follows the screen's aspect ratio.
        width: u32,
        /// Milliseconds between frames.
        interval_ms: u32,
        /// Someone with the bypass-client-privacy right is the viewer: without
        /// it the agent refuses to stream under `remote_view = deny`.
        #[serde(default)]
        privacy_bypass: bool,
    },
    /// Stop streaming thumbnails.
    StopThumbnails,
    /// Stream the screen at full resolution as H.264
    /// ([`crate::MediaKind::Video`] frames) until [`ServerMsg::StopVideo`],
    /// besides any thumbnails. Sent again to change the bitrate or to ask for
    /// a keyframe: the next picture after each is a keyframe. Only to agents
    /// with [`Capability::LiveVideo`].
    StartVideo {
        /// Target bits per second.
        bitrate: u32,
        /// Pictures per second to capture at most.
        fps: u32,
        /// As for [`ServerMsg::StartThumbnails`].
        #[serde(default)]
        privacy_bypass: bool,
    },
    /// Stop the video stream.
    StopVideo,
    /// Take one full-resolution JPEG screenshot and send it as a
    /// [`crate::MediaKind::Screenshot`] frame with this id.
    Screenshot {
        /// Id to answer with.
        request_id: u64,
        /// As for [`ServerMsg::StartThumbnails`].
        #[serde(default)]
        privacy_bypass: bool,
    },
    /// The device's resultant settings; replaces the previous policy.
    Policy {
        /// The settings.
        policy: Policy,
    },
    /// Show a broadcast full screen: binary [`crate::MediaKind::Broadcast`]
    /// frames follow until [`ServerMsg::BroadcastStop`].
    BroadcastStart {
        /// What is being shown, e.g. "Ms Khan's screen".
        title: String,
    },
    /// End the broadcast.
    BroadcastStop,
    /// A teacher takes control of the mouse and keyboard: show the student
    /// that `controller` controls the computer, and inject the
    /// [`ServerMsg::ControlInput`] that follows until [`ServerMsg::ControlStop`].
    ControlStart {
        /// Who controls, as the student sees it.
        controller: String,
        /// The controller holds the bypass-client-privacy right: without it
        /// the agent refuses control under `remote_view = deny`.
        #[serde(default)]
        privacy_bypass: bool,
    },
    /// Input from the controlling teacher (each event checked by the
    /// server; the agent checks again).
    ControlInput {
        /// At most [`crate::control::MAX_INPUT_EVENTS`].
        events: Vec<crate::control::InputEvent>,
    },
    /// Control ended: release held buttons and remove the notice.
    ControlStop,
    /// A teacher wants a live view: ask the student and answer with
    /// [`AgentMsg::ViewAnswer`] within `timeout_secs`.
    ViewRequest {
        /// Id to answer with.
        request_id: u64,
        /// Who asks.
        teacher: String,
        /// Seconds before the request counts as unanswered.
        timeout_secs: u32,
    },
    /// The school's keyword library (the JSON of `lectern_keywords::Library`),
    /// for agents with [`Capability::KeywordScan`].
    Keywords {
        /// The library.
        library: serde_json::Value,
    },
    /// Send the recent-frames buffer (and a frame of now) as
    /// [`crate::MediaKind::Evidence`] frames for this violation.
    EvidenceRequest {
        /// The server's violation id, echoed in each evidence frame.
        violation_id: u64,
        /// The most the server accepts for it (the newest frames fit first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowance: Option<EvidenceAllowance>,
    },
    /// Every activity event up to this sequence number is committed.
    ActivityAck {
        /// Highest committed sequence number.
        up_to: u64,
    },
    /// Send the whole inventory report ([`AgentMsg::InventoryPart`]s).
    InventoryRequest,
    /// Send Wake-on-LAN magic packets for these MACs to `target`, a
    /// broadcast address of one of this device's own subnets (the agent
    /// refuses any other); the server picks an online agent on the sleeping
    /// device's subnet.
    WakeOnLan {
        /// At most [`crate::power::MAX_WAKE_MACS`] MAC addresses.
        macs: Vec<String>,
        /// `address:port`.
        target: String,
    },
    /// One frame was refused, and the session goes on. Nothing of the frame
    /// was kept: the agent keeps what it holds and may send it again after
    /// `retry_after_ms` (0: never, e.g. evidence nobody asked for).
    Refused {
        /// Machine-readable reason ([`ErrorCode::RateLimited`],
        /// [`ErrorCode::NotAllowed`]).
        code: ErrorCode,
        /// Which frame.
        frame: RefusedFrame,
        /// Wait at least this long before sending that kind of frame again.
        retry_after_ms: u64,
        /// Human-readable detail.
        message: String,
    },
    /// The server is closing the session for this reason.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// The device's raised hand is closed: answered (`answer` shown to the
    /// student), dismissed by a teacher, or withdrawn (`answer` is `None`).
    HandClosed {
        /// The teacher's answer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    /// The device's raised hand is stored and shown to its teachers.
    HandRaised,
    /// A chat line for this device's chat: a teacher's message, or the
    /// student's own message as stored (so both sides show one order).
    Chat {
        /// The line.
        line: crate::requests::ChatLine,
    },
    /// The recent lines of this device's current chat thread (oldest first,
    /// at most [`crate::requests::HISTORY_LINES`]), sent when the device
    /// connects and when its user changes. They replace what the student's
    /// chat shows; an empty list clears it.
    ChatHistory {
        /// The lines.
        lines: Vec<crate::requests::ChatLine>,
    },
    /// The school's look on student screens (see [`crate::look`]).
    SchoolLook {
        /// The school's name as students see it.
        name: String,
        /// The logo's SHA-256 (lower-case hex); `None`: no logo.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logo_sha256: Option<String>,
    },
    /// The logo's bytes, answering [`AgentMsg::WantLogo`].
    SchoolLogo {
        /// The SHA-256 of the PNG, lower-case hex.
        sha256: String,
        /// The PNG, base64 (standard alphabet, padded).
        png: String,
    },
    /// A file to fetch with [`AgentMsg::FileRead`].
    FileOffer(Box<crate::files::FileOffer>),
    /// One chunk of an offered file (an empty `data` with `eof` at the end).
    FileData {
        /// The transfer.
        transfer: i64,
        /// Where `data` starts.
        offset: u64,
        /// Base64 of at most [`crate::files::FILE_CHUNK`] bytes.
        data: String,
        /// The file ends after this chunk.
        eof: bool,
    },
    /// Send a file or folder back with [`AgentMsg::CollectData`].
    CollectStart(Box<crate::files::CollectStart>),
    /// The chunk ending at `offset` of file `file_index` is stored; send the next.
    CollectAck {
        /// The collection.
        collection: i64,
        /// The file.
        file_index: u32,
        /// Bytes of it stored.
        offset: u64,
    },
    /// The student must accept this acceptable use policy before using the
    /// device: cover the screen with it until they press "I accept", then
    /// answer [`AgentMsg::AupAnswer`]. Replaces any policy shown before.
    AcceptableUse {
        /// The version to show.
        policy: crate::aup::AcceptableUse,
    },
    /// Nothing is left to accept (the user logged out, or accepted it on
    /// this device already): take any policy surface away.
    AcceptableUseClear,
    /// The answer to [`AgentMsg::StudentSignIn`] or
    /// [`AgentMsg::StudentSignOut`].
    StudentSignIn(crate::signin::SignInOutcome),
    /// Stop a delivery or collection (ended by the teacher or refused).
    FileCancel {
        /// The transfer or collection.
        id: i64,
        /// Why, for the log.
        reason: String,
    },
}

fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ProtoError> {
    if text.len() > MAX_TEXT_FRAME {
        return Err(ProtoError::TooLarge {
            len: text.len(),
            max: MAX_TEXT_FRAME,
        });
    }
    serde_json::from_str(text).map_err(|e| ProtoError::Malformed(e.to_string()))
}

impl AgentMsg {
    /// Parses a text frame from an agent, enforcing [`MAX_TEXT_FRAME`].
    pub fn decode(text: &str) -> Result<Self, ProtoError> {
        decode(text)
    }
    /// Serializes to a text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("agent messages always serialize")
    }
}

impl ServerMsg {
    /// Parses a text frame from the server, enforcing [`MAX_SERVER_TEXT_FRAME`].
    pub fn decode(text: &str) -> Result<Self, ProtoError> {
        if text.len() > MAX_SERVER_TEXT_FRAME {
            return Err(ProtoError::TooLarge {
                len: text.len(),
                max: MAX_SERVER_TEXT_FRAME,
            });
        }
        serde_json::from_str(text).map_err(|e| ProtoError::Malformed(e.to_string()))
    }
    /// Serializes to a text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip() {
        let hello = AgentMsg::Hello(Hello {
            protocol_version: crate::PROTOCOL_VERSION,
            auth: Auth::Device {
                device_id: 7,
                secret: "s".into(),
            },
            info: DeviceInfo {
                hostname: "LAB1-PC01".into(),
                os: "linux".into(),
                agent_version: "0.1.0".into(),
            },
            capabilities: vec![Capability::Lock, Capability::Thumbnails],
            state: DeviceState {
                user: Some("amy".into()),
                ..Default::default()
            },
        });
        let text = hello.encode();
        assert!(text.contains(r#""type":"hello""#));
        assert_eq!(AgentMsg::decode(&text).unwrap(), hello);
    }

    #[test]
    fn garbage_and_oversize_are_errors_not_panics() {
        for bad in ["", "{", "null", "[]", r#"{"type":"nope"}"#, "\u{0}\u{1}"] {
            assert!(
                matches!(AgentMsg::decode(bad), Err(ProtoError::Malformed(_))),
                "{bad:?}"
            );
        }
        let big = format!(
            r#"{{"type":"heartbeat","pad":"{}"}}"#,
            "x".repeat(MAX_TEXT_FRAME)
        );
        assert!(matches!(
            AgentMsg::decode(&big),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn server_messages_round_trip() {
        let msgs = [
            ServerMsg::Welcome {
                device_id: 1,
                school: "Hill".into(),
                credential: None,
                heartbeat_secs: 15,
                evidence: Some(EvidenceAllowance {
                    max_frames: 31,
                    max_frame_bytes: 256 * 1024,
                }),
            },
            ServerMsg::Command {
                command_id: 9,
                command: Command::Unlock,
            },
            ServerMsg::StartThumbnails {
                width: 320,
                interval_ms: 1000,
                privacy_bypass: false,
            },
            ServerMsg::StopThumbnails,
            ServerMsg::Policy {
                policy: Policy {
                    version: 3,
                    sound_muted: true,
                    ..Policy::default()
                },
            },
            ServerMsg::ViewRequest {
                request_id: 1,
                teacher: "ms.khan".into(),
                timeout_secs: 10,
            },
            ServerMsg::BroadcastStart {
                title: "LAB1-PC03".into(),
            },
            ServerMsg::BroadcastStop,
            ServerMsg::Error {
                code: ErrorCode::Revoked,
                message: "revoked".into(),
            },
            ServerMsg::Refused {
                code: ErrorCode::RateLimited,
                frame: RefusedFrame::Activity { first_seq: Some(7) },
                retry_after_ms: 1500,
                message: "too many events".into(),
            },
        ];
        for m in msgs {
            assert_eq!(ServerMsg::decode(&m.encode()).unwrap(), m);
        }
    }
}
