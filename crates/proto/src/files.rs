//! Files sent to devices and collected back (issue 13.7): the server offers a
//! file, the agent pulls it in chunks from an offset (so it resumes after a
//! reconnect); for a collection the agent pushes chunks and waits for each
//! acknowledgement, and the server tells it where to resume.
//!
//! Chunk data travel base64-encoded inside the JSON control frames, so every
//! frame stays under [`crate::MAX_TEXT_FRAME`].

use serde::{Deserialize, Serialize};

use crate::CommandResult;

/// Raw bytes in one chunk (base64 makes it 4/3 larger, well under 64 KiB).
pub const FILE_CHUNK: usize = 32 * 1024;

/// Most files one collection takes from a device.
pub const MAX_COLLECT_FILES: usize = 1000;

/// Longest relative path (bytes) the server accepts in a collected chunk.
pub const MAX_COLLECT_PATH: usize = 1024;

/// A file the server offers a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// The transfer's id.
    pub transfer: i64,
    /// The file's (sanitised) name.
    pub name: String,
    /// The folder under `~/Lectern/Received/` (sanitised).
    pub title: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex, checked by the agent at the end.
    pub sha256: String,
}

/// The server asks a device for a file or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectStart {
    /// The collection's id.
    pub collection: i64,
    /// Path relative to the user's `~/Lectern/` folder, `/`-separated.
    pub path: String,
    /// Most bytes the server takes from this device in all.
    pub max_bytes: u64,
    /// Resume with this file (index in the agent's sorted listing)…
    #[serde(default)]
    pub file_index: u32,
    /// …from this offset.
    #[serde(default)]
    pub offset: u64,
}

/// One chunk of a collected file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectChunk {
    /// The collection's id.
    pub collection: i64,
    /// Index of the file in the agent's sorted listing.
    pub file_index: u32,
    /// Path of the file relative to the collected path's parent, `/`-separated.
    pub path: String,
    /// Where the data go in the file.
    pub offset: u64,
    /// Base64 of at most [`FILE_CHUNK`] bytes.
    pub data: String,
    /// This chunk ends the file.
    pub last: bool,
}

/// How a device's hand-in ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectEnd {
    /// The collection's id.
    pub collection: i64,
    /// Done (every file sent) or failed with the reason.
    pub result: CommandResult,
}
