//! Files sent to devices and collected back (issue 13.7), the server's side
//! of the agent protocol: offers and hand-in requests go out when they are
//! made and again whenever a device connects; chunks of sent files are read
//! from disk on request, chunks of hand-ins are written to one folder per
//! device, each acknowledged so the device sends the next.
//!
//! Where things are: uploads in `<data>/files/<transfer id>`, hand-ins in
//! `<data>/collected/<collection id>/<folder>/…`.
//!
//! Limits: a chunk is at most [`FILE_CHUNK`] bytes; a hand-in at most the
//! collection's `max_bytes` and [`MAX_COLLECT_FILES`] files; file requests
//! and hand-in chunks from one device at most [`CHUNKS_PER_MINUTE`] a minute.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use lectern_proto::files::{
    CollectChunk, CollectEnd, CollectStart, FileOffer, FILE_CHUNK, MAX_COLLECT_FILES,
    MAX_COLLECT_PATH,
};
use lectern_proto::{AgentMsg, CommandResult, ServerMsg};
use lectern_store::files::{Collection, Delivery, HandIn, Transfer};
use lectern_store::{now_ms, SchoolId};
use serde::{Deserialize, Serialize};

use crate::state::{AppState, Shared};

/// File requests plus hand-in chunks one device may send a minute (a
/// 100 MiB file is 3,200 chunks).
pub const CHUNKS_PER_MINUTE: u32 = 6_000;

/// Default limits of a school (MiB).
pub const DEFAULT_MAX_MIB: u64 = 100;

/// A school's file limits, kept as the school document `file_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest file a teacher may send, in MiB (1 to 4096).
    pub max_upload_mib: u64,
    /// Most a device may hand in for one collection, in MiB (1 to 4096).
    pub max_collect_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_mib: DEFAULT_MAX_MIB,
            max_collect_mib: DEFAULT_MAX_MIB,
        }
    }
}

/// The document name of [`Limits`].
pub const LIMITS_DOC: &str = "file_limits";

/// A school's limits (the defaults until an administrator sets them).
pub async fn limits(st: &AppState, school: SchoolId) -> Limits {
    st.db(move |s| s.document(school, LIMITS_DOC))
        .await
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// The folder of uploads.
pub fn uploads_dir(st: &AppState) -> PathBuf {
    st.data_dir.join("files")
}

/// The folder of one collection's hand-ins.
pub fn collection_dir(st: &AppState, id: i64) -> PathBuf {
    st.data_dir.join("collected").join(id.to_string())
}

/// A device's progress kept between chunks.
#[derive(Debug, Clone)]
struct Receiving {
    hand_in: HandIn,
    max_bytes: i64,
}

/// Per-device state of transfers in progress.
#[derive(Default)]
pub struct FilesState {
    /// Chunks counted per device in the current minute.
    meters: Mutex<HashMap<i64, (Instant, u32)>>,
    /// Hand-ins being received, by (collection, device).
    receiving: Mutex<HashMap<(i64, i64), Receiving>>,
    /// Transfers a device may read, by (transfer, device): the size, and
    /// chunks served since the last progress write.
    reading: Mutex<HashMap<(i64, i64), (u64, u32)>>,
    /// Wakes the exam timer after an exam is created, started or ended.
    pub exams_changed: tokio::sync::Notify,
}

impl FilesState {
    /// Counts one chunk for `device`; `false` past the rate.
    fn admit(&self, device: i64) -> bool {
        let mut m = self.meters.lock().unwrap();
        let now = Instant::now();
        let e = m.entry(device).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= CHUNKS_PER_MINUTE
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The offer of a transfer.
pub fn offer(t: &Transfer) -> ServerMsg {
    ServerMsg::FileOffer(Box::new(FileOffer {
        transfer: t.id,
        name: t.name.clone(),
        title: t.title.clone(),
        size: t.size as u64,
        sha256: t.sha256.clone(),
    }))
}

/// The request of a hand-in, from where it stands.
pub fn collect_start(c: &Collection, h: &HandIn) -> ServerMsg {
    ServerMsg::CollectStart(Box::new(CollectStart {
        collection: c.id,
        path: c.path.clone(),
        max_bytes: c.max_bytes as u64,
        file_index: h.file_index as u32,
        offset: h.file_offset as u64,
    }))
}

/// Sends a device what is still open for it (on connect).
pub async fn resume(st: &Shared, device: i64) {
    let school = st.device_school(device);
    let open = st
        .db(move |s| {
            Ok((
                s.files().open_deliveries(school, device)?,
                s.files().open_hand_ins(school, device)?,
            ))
        })
        .await;
    let Ok((transfers, hand_ins)) = open else {
        return;
    };
    for t in &transfers {
        offer_to(st, t, device).await;
    }
    for (c, h) in hand_ins {
        ask_for(st, &c, h, device).await;
    }
}

/// Why an online device cannot take part: it never announced files (a
/// browser extension, which has no file system to write to or read from).
const NO_FILES: &str =
    "this device cannot send or receive files (a browser has no access to the computer's files)";

fn lacks_files(st: &AppState, device: i64) -> bool {
    st.hub.is_online(device)
        && !st
            .hub
            .has_capability(device, lectern_proto::Capability::Files)
}

/// Offers `t` to `device`: `true` if it went out; a device that cannot take
/// files fails at once with the reason, an offline one gets it on connecting.
pub async fn offer_to(st: &Shared, t: &Transfer, device: i64) -> bool {
    if lacks_files(st, device) {
        st.files
            .reading
            .lock()
            .unwrap()
            .insert((t.id, device), (t.size as u64, 0));
        fail_delivery(st, device, t.id, NO_FILES).await;
        crate::exams::note_delivery(st, t.id, device, &format!("failed: {NO_FILES}")).await;
        return false;
    }
    start_delivery(st, t, device)
}

/// Asks `device` for its hand-in: `true` if the request went out; a device
/// that cannot send files fails at once with the reason.
pub async fn ask_for(st: &Shared, c: &Collection, h: HandIn, device: i64) -> bool {
    if lacks_files(st, device) {
        let r = Receiving {
            hand_in: h,
            max_bytes: c.max_bytes,
        };
        st.files.receiving.lock().unwrap().insert((c.id, device), r);
        finish_hand_in(st, device, c.id, "failed", Some(NO_FILES.into())).await;
        return false;
    }
    start_hand_in(st, c, h, device)
}

/// Offers `t` to `device` if it is online; `false` if it is not.
fn start_delivery(st: &AppState, t: &Transfer, device: i64) -> bool {
    st.files
        .reading
        .lock()
        .unwrap()
        .insert((t.id, device), (t.size as u64, 0));
    st.hub.send(device, offer(t))
}

/// Asks `device` for its hand-in if it is online; `false` if it is not.
fn start_hand_in(st: &AppState, c: &Collection, h: HandIn, device: i64) -> bool {
    let msg = collect_start(c, &h);
    st.files.receiving.lock().unwrap().insert(
        (c.id, device),
        Receiving {
            hand_in: h,
            max_bytes: c.max_bytes,
        },
    );
    st.hub.send(device, msg)
}

/// A file message from a device; the reply to send it, if any.
pub async fn from_agent(st: &Shared, device: i64, msg: AgentMsg) -> Option<ServerMsg> {
    if matches!(msg, AgentMsg::FileRead { .. } | AgentMsg::CollectData(_))
        && !st.files.admit(device)
    {
        tracing::warn!(device, "file chunks over the rate; ignoring");
        return None;
    }
    match msg {
        AgentMsg::FileRead { transfer, offset } => read_chunk(st, device, transfer, offset).await,
        AgentMsg::FileDone {
            transfer,
            result,
            saved_as,
        } => {
            delivery_done(st, device, transfer, result, saved_as).await;
            None
        }
        AgentMsg::CollectData(chunk) => Some(receive_chunk(st, device, *chunk).await),
        AgentMsg::CollectDone(end) => {
            hand_in_done(st, device, end).await;
            None
        }
        _ => None,
    }
}

fn cancel(id: i64, reason: impl Into<String>) -> ServerMsg {
    ServerMsg::FileCancel {
        id,
        reason: reason.into(),
    }
}

/// Serves the chunk at `offset` of a transfer open for `device`.
async fn read_chunk(st: &Shared, device: i64, transfer: i64, offset: u64) -> Option<ServerMsg> {
    let known = st
        .files
        .reading
        .lock()
        .unwrap()
        .get(&(transfer, device))
        .copied();
    let Some((size, served)) = known else {
        return Some(cancel(transfer, "no such file for this device"));
    };
    if offset > size {
        return Some(cancel(transfer, "offset past the end"));
    }
    let path = uploads_dir(st).join(transfer.to_string());
    let want = (size - offset).min(FILE_CHUNK as u64) as usize;
    let data = tokio::task::spawn_blocking(move || read_at(&path, offset, want))
        .await
        .ok()
        .and_then(Result::ok);
    let Some(data) = data else {
        fail_delivery(st, device, transfer, "the server cannot read the file").await;
        return Some(cancel(transfer, "the server cannot read the file"));
    };
    let end = offset + data.len() as u64;
    // Progress is written every 32 chunks (1 MiB), not per chunk.
    if served % 32 == 0 || end == size {
        progress(st, device, transfer, end as i64).await;
    }
    if let Some(e) = st
        .files
        .reading
        .lock()
        .unwrap()
        .get_mut(&(transfer, device))
    {
        e.1 = served.wrapping_add(1);
    }
    Some(ServerMsg::FileData {
        transfer,
        offset,
        data: b64().encode(&data),
        eof: end == size,
    })
}

fn read_at(path: &std::path::Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

async fn progress(st: &Shared, device: i64, transfer: i64, bytes: i64) {
    let d = Delivery {
        device_id: device,
        status: "sending".into(),
        bytes,
        saved_as: None,
        reason: None,
        updated_at: now_ms(),
    };
    let _ = st
        .db(move |s| s.files().set_delivery(transfer, device, &d))
        .await;
}

async fn fail_delivery(st: &Shared, device: i64, transfer: i64, reason: &str) {
    st.files.reading.lock().unwrap().remove(&(transfer, device));
    let d = Delivery {
        device_id: device,
        status: "failed".into(),
        bytes: 0,
        saved_as: None,
        reason: Some(reason.into()),
        updated_at: now_ms(),
    };
    let _ = st
        .db(move |s| s.files().set_delivery(transfer, device, &d))
        .await;
}

/// Text a device reports, made safe to store and show: no control
/// characters, at most `max` characters.
pub fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

async fn delivery_done(
    st: &Shared,
    device: i64,
    transfer: i64,
    result: CommandResult,
    saved_as: Option<String>,
) {
    let Some((size, _)) = st.files.reading.lock().unwrap().remove(&(transfer, device)) else {
        return;
    };
    let (status, reason) = match result {
        CommandResult::Done => ("done", None),
        CommandResult::Failed { reason } => ("failed", Some(clean(&reason, 300))),
    };
    let d = Delivery {
        device_id: device,
        status: status.into(),
        bytes: if status == "done" { size as i64 } else { 0 },
        saved_as: saved_as.map(|s| clean(&s, 300)),
        reason,
        updated_at: now_ms(),
    };
    let detail = format!(
        "{status}{}",
        d.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let _ = st
        .db(move |s| s.files().set_delivery(transfer, device, &d))
        .await;
    crate::exams::note_delivery(st, transfer, device, &detail).await;
}

/// Why a chunk was not taken: the hand-in fails with this reason.
fn check_chunk(r: &Receiving, c: &CollectChunk, len: usize) -> Result<(), String> {
    if len > FILE_CHUNK {
        return Err(format!("a chunk was larger than {FILE_CHUNK} bytes"));
    }
    if c.path.len() > MAX_COLLECT_PATH {
        return Err("a file path was too long".into());
    }
    if c.file_index as usize >= MAX_COLLECT_FILES {
        return Err(format!("more than {MAX_COLLECT_FILES} files"));
    }
    if r.hand_in.bytes + len as i64 > r.max_bytes {
        return Err(format!(
            "the hand-in is larger than the limit of {} MiB",
            r.max_bytes / (1024 * 1024)
        ));
    }
    Ok(())
}

/// Stores one chunk of a hand-in and says where to go on.
async fn receive_chunk(st: &Shared, device: i64, c: CollectChunk) -> ServerMsg {
    let key = (c.collection, device);
    let Some(r) = st.files.receiving.lock().unwrap().get(&key).cloned() else {
        return cancel(c.collection, "no such collection for this device");
    };
    let expected = (r.hand_in.file_index as u32, r.hand_in.file_offset as u64);
    if (c.file_index, c.offset) != expected {
        // A duplicate or a chunk from before a reconnect: say where we are.
        return ServerMsg::CollectAck {
            collection: c.collection,
            file_index: expected.0,
            offset: expected.1,
        };
    }
    let data = match b64().decode(c.data.as_bytes()) {
        Ok(d) => d,
        Err(_) => {
            return fail_hand_in(st, device, c.collection, "a chunk was not valid base64").await
        }
    };
    if let Err(reason) = check_chunk(&r, &c, data.len()) {
        return fail_hand_in(st, device, c.collection, &reason).await;
    }
    let Some(rel) = lectern_policy::files::safe_relative(&c.path) else {
        return fail_hand_in(st, device, c.collection, "a file path was not usable").await;
    };
    let path = rel.iter().fold(
        collection_dir(st, c.collection).join(&r.hand_in.folder),
        |p, part| p.join(part),
    );
    let offset = c.offset;
    let n = data.len();
    let written = tokio::task::spawn_blocking(move || write_at(&path, offset, &data)).await;
    if !matches!(written, Ok(Ok(()))) {
        return fail_hand_in(
            st,
            device,
            c.collection,
            "the server could not store the file",
        )
        .await;
    }
    let mut h = r.hand_in.clone();
    h.status = "sending".into();
    h.bytes += n as i64;
    if c.last {
        h.file_index += 1;
        h.file_offset = 0;
        h.files += 1;
    } else {
        h.file_offset += n as i64;
    }
    h.updated_at = now_ms();
    let saved = h.clone();
    let _ = st
        .db(move |s| s.files().set_hand_in(c.collection, &saved))
        .await;
    let ack = ServerMsg::CollectAck {
        collection: c.collection,
        file_index: h.file_index as u32,
        offset: h.file_offset as u64,
    };
    if let Some(e) = st.files.receiving.lock().unwrap().get_mut(&key) {
        e.hand_in = h;
    }
    ack
}

/// Writes `data` at `offset` of `path` (a new file when `offset` is 0,
/// anything beyond cut off, so a resumed file never keeps stale bytes).
fn write_at(path: &std::path::Path, offset: u64, data: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    f.set_len(offset)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)
}

async fn fail_hand_in(st: &Shared, device: i64, collection: i64, reason: &str) -> ServerMsg {
    finish_hand_in(st, device, collection, "failed", Some(reason.to_string())).await;
    cancel(collection, reason)
}

async fn finish_hand_in(
    st: &Shared,
    device: i64,
    collection: i64,
    status: &str,
    reason: Option<String>,
) {
    let Some(r) = st
        .files
        .receiving
        .lock()
        .unwrap()
        .remove(&(collection, device))
    else {
        return;
    };
    let mut h = r.hand_in;
    h.status = status.into();
    h.reason = reason;
    h.updated_at = now_ms();
    let detail = match &h.reason {
        Some(r) => format!("{status}: {r}"),
        None => format!("{status}: {} files, {} bytes", h.files, h.bytes),
    };
    let _ = st.db(move |s| s.files().set_hand_in(collection, &h)).await;
    crate::exams::note_hand_in(st, collection, device, &detail).await;
}

async fn hand_in_done(st: &Shared, device: i64, end: CollectEnd) {
    let (status, reason) = match end.result {
        CommandResult::Done => ("done", None),
        CommandResult::Failed { reason } => ("failed", Some(clean(&reason, 300))),
    };
    finish_hand_in(st, device, end.collection, status, reason).await;
}

/// The folder a device's hand-in goes to: user and host name, sanitised,
/// with the device id so two devices never share one.
pub fn hand_in_folder(user: Option<&str>, hostname: &str, device: i64) -> String {
    let user = user.unwrap_or("nobody");
    lectern_policy::files::sanitize_name(&format!("{user} - {hostname} ({device})"), "device")
}
