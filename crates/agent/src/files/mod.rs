//! Files a teacher sends and collects (issue 13.7), on the device side.
//!
//! Sending: the server offers a file; the agent writes it into
//! `~/Lectern/Received/<title>/` as a hidden `.lectern-<id>.part`, asking
//! chunk after chunk from the part's length (so a reconnect resumes where it
//! stopped), checks size and SHA-256, then links it under its name without
//! replacing anything (`name (2).ext`…) and removes the part.
//!
//! Collecting: the agent lists the named file or folder under `~/Lectern/`
//! (sorted, links and special files skipped), then sends one chunk and waits
//! for the server's acknowledgement before the next; the server says where
//! to resume after a reconnect.
//!
//! Everything is opened under a folder descriptor without following links
//! ([`fsx`]); the user's home comes from the desktop backend.

#[cfg(target_os = "linux")]
mod fsx;

use std::collections::HashMap;

#[cfg(target_os = "linux")]
use base64::Engine;
#[cfg(target_os = "linux")]
use lectern_proto::files::{CollectChunk, FILE_CHUNK};
use lectern_proto::files::{CollectEnd, CollectStart, FileOffer};
use lectern_proto::{AgentMsg, CommandResult};

use crate::SharedDesktop;

/// The folder under the home that holds everything Lectern writes or reads.
pub const LECTERN_DIR: &str = "Lectern";
/// Sent files go under `~/Lectern/Received/`.
pub const RECEIVED_DIR: &str = "Received";

#[cfg(target_os = "linux")]
fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn failed(reason: impl std::fmt::Display) -> CommandResult {
    CommandResult::Failed {
        reason: reason.to_string(),
    }
}

/// The user's home, from the desktop (off the async threads: the service
/// desktop asks a helper).
async fn home(desktop: &SharedDesktop) -> Result<lectern_desktop::UserHome, String> {
    let d = desktop.clone();
    tokio::task::spawn_blocking(move || d.lock().unwrap_or_else(|e| e.into_inner()).user_home())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// File transfers of one session (the next session starts afresh and
/// resumes from what is on disk and what the server says).
#[derive(Default)]
pub struct Files {
    #[cfg(target_os = "linux")]
    downloads: HashMap<i64, linux::Download>,
    #[cfg(target_os = "linux")]
    collects: HashMap<i64, linux::Collect>,
    #[cfg(not(target_os = "linux"))]
    _none: HashMap<i64, ()>,
}

impl Files {
    /// A new offer: opens (or resumes) the part file and asks for the rest.
    pub async fn offer(&mut self, desktop: &SharedDesktop, offer: FileOffer) -> AgentMsg {
        let transfer = offer.transfer;
        let home = match home(desktop).await {
            Ok(h) => h,
            Err(e) => return done(transfer, failed(format!("cannot save files: {e}")), None),
        };
        #[cfg(target_os = "linux")]
        match linux::Download::open(&home, offer) {
            Ok(d) => {
                let offset = d.received;
                self.downloads.insert(transfer, d);
                AgentMsg::FileRead { transfer, offset }
            }
            Err(e) => done(transfer, failed(format!("cannot save the file: {e}")), None),
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (home, offer);
            done(
                transfer,
                failed("files are not supported on this device"),
                None,
            )
        }
    }

    /// One chunk of a file: written, then the next is asked for, or the
    /// file is finished.
    pub fn data(&mut self, transfer: i64, offset: u64, data: &str, eof: bool) -> Option<AgentMsg> {
        #[cfg(target_os = "linux")]
        {
            let d = self.downloads.get_mut(&transfer)?;
            let step = b64()
                .decode(data)
                .map_err(|e| format!("bad chunk: {e}"))
                .and_then(|bytes| d.write(offset, &bytes).map_err(|e| e.to_string()));
            let finished = match step {
                Err(e) => Err(e),
                Ok(()) if eof || d.received >= d.offer.size => d.finish(),
                Ok(()) => {
                    return Some(AgentMsg::FileRead {
                        transfer,
                        offset: d.received,
                    })
                }
            };
            self.downloads.remove(&transfer);
            Some(match finished {
                Ok(saved) => done(transfer, CommandResult::Done, Some(saved)),
                Err(e) => done(transfer, failed(e), None),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (transfer, offset, data, eof);
            None
        }
    }

    /// A collection starts (or resumes): lists the files and sends the first
    /// chunk from where the server says.
    pub async fn collect(&mut self, desktop: &SharedDesktop, start: CollectStart) -> AgentMsg {
        let collection = start.collection;
        let home = match home(desktop).await {
            Ok(h) => h,
            Err(e) => return collect_done(collection, failed(format!("cannot read files: {e}"))),
        };
        #[cfg(target_os = "linux")]
        match linux::Collect::open(&home, &start) {
            Ok(c) => {
                self.collects.insert(collection, c);
                self.collect_next(collection, start.file_index, start.offset)
                    .unwrap_or_else(|| collect_done(collection, CommandResult::Done))
            }
            Err(e) => collect_done(collection, failed(e)),
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (home, start);
            collect_done(collection, failed("files are not supported on this device"))
        }
    }

    /// The next chunk of a collection from `(file_index, offset)`, or its end.
    pub fn collect_next(
        &mut self,
        collection: i64,
        file_index: u32,
        offset: u64,
    ) -> Option<AgentMsg> {
        #[cfg(target_os = "linux")]
        {
            let c = self.collects.get_mut(&collection)?;
            match c.chunk(file_index, offset) {
                Ok(Some((path, data, last))) => {
                    Some(AgentMsg::CollectData(Box::new(CollectChunk {
                        collection,
                        file_index,
                        path,
                        offset,
                        data: b64().encode(data),
                        last,
                    })))
                }
                Ok(None) => {
                    self.collects.remove(&collection);
                    Some(collect_done(collection, CommandResult::Done))
                }
                Err(e) => {
                    self.collects.remove(&collection);
                    Some(collect_done(collection, failed(e)))
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (collection, file_index, offset);
            None
        }
    }

    /// The server stopped a delivery or collection.
    pub fn cancel(&mut self, id: i64) {
        #[cfg(target_os = "linux")]
        {
            self.downloads.remove(&id);
            self.collects.remove(&id);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = id;
    }
}

fn done(transfer: i64, result: CommandResult, saved_as: Option<String>) -> AgentMsg {
    AgentMsg::FileDone {
        transfer,
        result,
        saved_as,
    }
}

fn collect_done(collection: i64, result: CommandResult) -> AgentMsg {
    AgentMsg::CollectDone(CollectEnd { collection, result })
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::OwnedFd;

    use lectern_policy::files::{collect_path, sanitize_name};
    use lectern_proto::files::{CollectStart, FileOffer, MAX_COLLECT_FILES};
    use sha2::{Digest, Sha256};

    use super::fsx::{self, Kind};
    use super::{LECTERN_DIR, RECEIVED_DIR};

    /// A file being received.
    pub struct Download {
        pub offer: FileOffer,
        dir: OwnedFd,
        part_name: String,
        name: String,
        rel_dir: String,
        part: std::fs::File,
        hash: Sha256,
        pub received: u64,
    }

    impl Download {
        /// Opens `~/Lectern/Received/<title>/` (made for the user if missing)
        /// and the part file, hashing what it already holds.
        pub fn open(home: &lectern_desktop::UserHome, offer: FileOffer) -> std::io::Result<Self> {
            let owner = home.owner;
            let title = sanitize_name(&offer.title, "Files");
            let name = sanitize_name(&offer.name, "file");
            let root = fsx::open_root(&home.dir)?;
            let lectern = fsx::make_dir(&root, LECTERN_DIR, owner)?;
            let received = fsx::make_dir(&lectern, RECEIVED_DIR, owner)?;
            let dir = fsx::make_dir(&received, &title, owner)?;
            let part_name = format!(".lectern-{}.part", offer.transfer);
            let mut part = fsx::open_part(&dir, &part_name, owner)?;
            let mut len = part.metadata()?.len();
            if len > offer.size {
                part.set_len(0)?;
                len = 0;
            }
            let mut hash = Sha256::new();
            part.seek(SeekFrom::Start(0))?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = part.read(&mut buf[..want])?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                left -= n as u64;
            }
            let received = len - left;
            part.set_len(received)?;
            part.seek(SeekFrom::Start(received))?;
            Ok(Download {
                offer,
                dir,
                part_name,
                name,
                rel_dir: format!("{LECTERN_DIR}/{RECEIVED_DIR}/{title}"),
                part,
                hash,
                received,
            })
        }

        /// Appends a chunk that starts where the part ends.
        pub fn write(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
            if offset != self.received || self.received + bytes.len() as u64 > self.offer.size {
                return Err(std::io::Error::other("chunk out of order or past the end"));
            }
            self.part.write_all(bytes)?;
            self.hash.update(bytes);
            self.received += bytes.len() as u64;
            Ok(())
        }

        /// Checks the whole file and gives it its name (never replacing a
        /// file: `name (2).ext`, `name (3).ext`…); returns where it went.
        pub fn finish(&mut self) -> Result<String, String> {
            if self.received != self.offer.size {
                return Err(format!(
                    "the file ended early ({} of {} bytes)",
                    self.received, self.offer.size
                ));
            }
            let digest = hex::encode(self.hash.clone().finalize());
            if !digest.eq_ignore_ascii_case(&self.offer.sha256) {
                let _ = fsx::unlink(&self.dir, &self.part_name);
                return Err("the file arrived damaged (checksum differs)".into());
            }
            self.part.sync_all().map_err(|e| e.to_string())?;
            for n in 1..1000 {
                let candidate = numbered(&self.name, n);
                match fsx::link_new(&self.dir, &self.part_name, &candidate) {
                    Ok(()) => {
                        let _ = fsx::unlink(&self.dir, &self.part_name);
                        return Ok(format!("{}/{candidate}", self.rel_dir));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(format!("cannot name the file: {e}")),
                }
            }
            Err("too many files of that name".into())
        }
    }

    /// `name` for the first, then `stem (n).ext`.
    pub fn numbered(name: &str, n: u32) -> String {
        if n == 1 {
            return name.to_string();
        }
        match name.rfind('.').filter(|&i| i > 0) {
            Some(i) => format!("{} ({n}){}", &name[..i], &name[i..]),
            None => format!("{name} ({n})"),
        }
    }

    /// One file to hand in: its folder, name and path shown to the server.
    struct Entry {
        dir: std::sync::Arc<OwnedFd>,
        name: String,
        rel: String,
        size: u64,
    }

    /// A collection in progress.
    pub struct Collect {
        files: Vec<Entry>,
        /// The file being read (index and handle).
        open: Option<(u32, std::fs::File)>,
    }

    impl Collect {
        /// Lists the named file or folder under `~/Lectern/`, refusing more
        /// than `max_bytes` or [`MAX_COLLECT_FILES`] files.
        pub fn open(
            home: &lectern_desktop::UserHome,
            start: &CollectStart,
        ) -> Result<Self, String> {
            let parts = collect_path(&start.path).map_err(|e| e.to_string())?;
            let not_found = |e: std::io::Error| format!("{} not found: {e}", start.path);
            let root = fsx::open_root(&home.dir).map_err(|e| e.to_string())?;
            let mut dir = fsx::open_dir(&root, LECTERN_DIR).map_err(not_found)?;
            let (last, folders) = parts.split_last().expect("collect_path is never empty");
            for f in folders {
                dir = fsx::open_dir(&dir, f).map_err(not_found)?;
            }
            let dir = std::sync::Arc::new(dir);
            let mut files = Vec::new();
            match fsx::kind(&dir, last).map_err(not_found)? {
                Kind::File(size) => files.push(Entry {
                    dir,
                    name: last.clone(),
                    rel: last.clone(),
                    size,
                }),
                Kind::Dir => {
                    let sub = fsx::open_dir(&dir, last).map_err(not_found)?;
                    walk(sub, last, 0, &mut files)?;
                }
                Kind::Other => return Err(format!("{} is not a file or folder", start.path)),
            }
            let total: u64 = files.iter().map(|f| f.size).sum();
            if total > start.max_bytes {
                return Err(format!(
                    "{} holds {} bytes, more than the limit of {} bytes",
                    start.path, total, start.max_bytes
                ));
            }
            Ok(Collect { files, open: None })
        }

        /// Reads the chunk at `(index, offset)`: its path, bytes and whether it
        /// ends the file; `None` past the last file.
        pub fn chunk(
            &mut self,
            index: u32,
            offset: u64,
        ) -> Result<Option<(String, Vec<u8>, bool)>, String> {
            let Some(entry) = self.files.get(index as usize) else {
                return Ok(None);
            };
            if self.open.as_ref().map(|(i, _)| *i) != Some(index) {
                let f = fsx::open_read(&entry.dir, &entry.name)
                    .map_err(|e| format!("cannot read {}: {e}", entry.rel))?;
                self.open = Some((index, f));
            }
            let (_, file) = self.open.as_mut().expect("opened above");
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; super::FILE_CHUNK];
            let mut n = 0;
            while n < buf.len() {
                let got = file.read(&mut buf[n..]).map_err(|e| e.to_string())?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            buf.truncate(n);
            let last = n < super::FILE_CHUNK || offset + n as u64 >= entry.size;
            Ok(Some((entry.rel.clone(), buf, last)))
        }
    }

    /// Adds every regular file under `dir` (path `rel`), depth first in name
    /// order; links and special files are skipped.
    fn walk(dir: OwnedFd, rel: &str, depth: usize, out: &mut Vec<Entry>) -> Result<(), String> {
        if depth > lectern_policy::files::MAX_PATH_DEPTH {
            return Err(format!("{rel} is nested too deeply"));
        }
        let dir = std::sync::Arc::new(dir);
        for name in fsx::names(&dir).map_err(|e| e.to_string())? {
            let path = format!("{rel}/{name}");
            match fsx::kind(&dir, &name).map_err(|e| e.to_string())? {
                Kind::File(size) => {
                    if out.len() >= MAX_COLLECT_FILES {
                        return Err(format!("more than {MAX_COLLECT_FILES} files"));
                    }
                    out.push(Entry {
                        dir: dir.clone(),
                        name,
                        rel: path,
                        size,
                    });
                }
                Kind::Dir => {
                    let sub = fsx::open_dir(&dir, &name).map_err(|e| e.to_string())?;
                    walk(sub, &path, depth + 1, out)?;
                }
                Kind::Other => {}
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn numbered_names_keep_the_extension() {
            assert_eq!(numbered("essay.docx", 1), "essay.docx");
            assert_eq!(numbered("essay.docx", 2), "essay (2).docx");
            assert_eq!(numbered("notes", 3), "notes (3)");
            assert_eq!(numbered("bashrc", 2), "bashrc (2)");
        }

        fn offer(size: u64, sha256: String) -> FileOffer {
            FileOffer {
                transfer: 7,
                name: "paper.txt".into(),
                title: "Maths".into(),
                size,
                sha256,
            }
        }

        #[test]
        fn a_download_resumes_from_its_part_file_and_checks_the_whole() {
            let home = tempfile::tempdir().unwrap();
            let h = lectern_desktop::UserHome {
                user: "amy".into(),
                dir: home.path().to_path_buf(),
                owner: None,
            };
            let content: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            let sha = hex::encode(Sha256::digest(&content));
            let dir = home.path().join("Lectern/Received/Maths");
            std::fs::create_dir_all(&dir).unwrap();
            // An earlier session got 400 bytes before the connection dropped.
            std::fs::write(dir.join(".lectern-7.part"), &content[..400]).unwrap();
            let mut d = Download::open(&h, offer(1000, sha.clone())).unwrap();
            assert_eq!(d.received, 400);
            assert!(d.write(0, &content[..10]).is_err(), "out of order");
            d.write(400, &content[400..]).unwrap();
            assert_eq!(d.finish().unwrap(), "Lectern/Received/Maths/paper.txt");
            assert_eq!(std::fs::read(dir.join("paper.txt")).unwrap(), content);
            assert!(!dir.join(".lectern-7.part").exists());

            // A damaged part is caught by the checksum, and nothing is named.
            std::fs::write(dir.join(".lectern-7.part"), b"garbage").unwrap();
            let mut d = Download::open(&h, offer(1000, sha)).unwrap();
            d.write(7, &content[7..]).unwrap();
            assert!(d.finish().unwrap_err().contains("checksum"));
            assert!(!dir.join("paper (2).txt").exists());
        }

        #[test]
        fn nothing_is_written_or_read_through_a_link() {
            let home = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), home.path().join("Lectern")).unwrap();
            let h = lectern_desktop::UserHome {
                user: "amy".into(),
                dir: home.path().to_path_buf(),
                owner: None,
            };
            assert!(Download::open(&h, offer(1, String::new())).is_err());
            let start = CollectStart {
                collection: 1,
                path: "Hand-in".into(),
                max_bytes: 1 << 20,
                file_index: 0,
                offset: 0,
            };
            std::fs::create_dir(outside.path().join("Hand-in")).unwrap();
            assert!(Collect::open(&h, &start).is_err());
            assert!(std::fs::read_dir(outside.path().join("Hand-in"))
                .unwrap()
                .next()
                .is_none());
        }
    }
}
