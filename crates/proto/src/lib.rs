//! Lectern's wire protocol: the messages agents and the server exchange over the
//! `/agent/v1` WebSocket, the commands a teacher can send, and the binary media
//! frame that carries thumbnails.
//!
//! This crate does no I/O. Control messages are JSON text frames of tagged serde
//! enums ([`AgentMsg`], [`ServerMsg`]); media travel as binary frames with a small
//! header ([`MediaFrame`]). Every session starts with [`Hello`], which carries
//! [`PROTOCOL_VERSION`].
//!
//! ```
//! use lectern_proto::{AgentMsg, Command};
//! let msg = AgentMsg::decode(r#"{"type":"heartbeat"}"#).unwrap();
//! assert_eq!(msg, AgentMsg::Heartbeat);
//! let cmd: Command = serde_json::from_str(r#"{"type":"launch_url","url":"https://example.org"}"#).unwrap();
//! assert_eq!(cmd.kind(), "launch_url");
//! ```

pub mod aup;
mod command;
pub mod console;
pub mod control;
pub mod discovery;
pub mod files;
pub mod inventory;
pub mod look;
mod media;
mod messages;
mod policy;
pub mod power;
pub mod requests;
pub mod schoolcode;
pub mod signin;

pub use command::{
    ActivityEvent, Command, CommandResult, DeviceState, ExtensionState, Tab, ACTIVITY_KINDS,
    MAX_LOCK_MINUTES,
};
pub use media::{Evidence, MediaFrame, MediaKind, Screenshot, VideoHeader, MEDIA_HEADER_LEN};
pub use messages::{
    AgentMsg, Auth, Capability, Credential, DeviceInfo, ErrorCode, EvidenceAllowance, Hello,
    ProtoError, RefusedFrame, ServerMsg, ViolationReport, AGENT_EVIDENCE, MAX_ACTIVITY_BATCH,
    MAX_SERVER_TEXT_FRAME,
};
pub use policy::{AppMode, Policy, RemoteView, WebFilterMode};

/// Version of the agent protocol spoken by this build. A server refuses a hello
/// whose version it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest JSON control frame either side accepts, in bytes.
pub const MAX_TEXT_FRAME: usize = 64 * 1024;

/// Largest binary media frame either side accepts, in bytes.
pub const MAX_BINARY_FRAME: usize = 1024 * 1024;

/// Widest evidence screenshot an agent takes: the screen at its own size up
/// to this, so a violation's evidence is readable (a 1280 to 1920 px screen
/// is kept whole; a wider one is scaled down to this).
pub const EVIDENCE_MAX_WIDTH: u32 = 1920;

/// Largest evidence JPEG a server accepts by default (its `[devices]`
/// `evidence_frame_bytes`), and what an agent fits its frames to before it
/// has heard the server's allowance: room for a 1920-px screen of dense text
/// at a readable JPEG quality, and with the headers still within one
/// [`MAX_BINARY_FRAME`].
pub const EVIDENCE_FRAME_BYTES: u32 = 768 * 1024;

/// The server's default TCP port (HTTPS + WebSocket) and UDP discovery port.
pub const DEFAULT_PORT: u16 = 30016;

/// WebSocket path agents connect to.
pub const AGENT_PATH: &str = "/agent/v1";
