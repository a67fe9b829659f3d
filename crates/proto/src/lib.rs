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

mod command;
pub mod console;
pub mod control;
pub mod discovery;
mod media;
mod messages;
mod policy;

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
pub use policy::{Policy, RemoteView, WebFilterMode};

/// Version of the agent protocol spoken by this build. A server refuses a hello
/// whose version it does not speak.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest JSON control frame either side accepts, in bytes.
pub const MAX_TEXT_FRAME: usize = 64 * 1024;

/// Largest binary media frame either side accepts, in bytes.
pub const MAX_BINARY_FRAME: usize = 1024 * 1024;

/// The server's default TCP port (HTTPS + WebSocket) and UDP discovery port.
pub const DEFAULT_PORT: u16 = 30016;

/// WebSocket path agents connect to.
pub const AGENT_PATH: &str = "/agent/v1";
