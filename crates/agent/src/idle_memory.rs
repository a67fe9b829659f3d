//! Giving memory back once the agent has nothing to do.
//!
//! Most of an idle agent's resident memory is not its data but pages of code
//! it touched while starting (argument parsing, TLS set-up, enrollment, the
//! font system) and free memory the allocator keeps. The kernel would drop
//! those pages only under memory pressure, so a laptop's idle agent would go
//! on holding them. Once nothing has happened for [`IDLE_AFTER`], the agent
//! hands them back itself ([`release`]): the allocator's free memory
//! (`malloc_trim`), and the clean pages of its own executable and of the
//! shared libraries it links. Those are read-only copies of files; the next
//! time one is needed it comes back from the page cache (a minor fault, a
//! microsecond or so), so nothing is lost but the memory.
//!
//! A trim is one shot after activity stops, never a timer that keeps firing:
//! [`IdleTrim`] is re-armed by activity and disarmed once it has trimmed.

// The smaps parsing is used by the Linux trim only (and tested everywhere).
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::time::Duration;

use tokio::time::Instant;

/// How long a process must have had nothing to do before it trims.
pub const IDLE_AFTER: Duration = Duration::from_secs(30);

/// When the next trim is due: armed by activity, disarmed by the trim.
#[derive(Debug)]
pub struct IdleTrim {
    at: Option<Instant>,
}

impl Default for IdleTrim {
    /// Armed: a process that just started trims once it settles.
    fn default() -> Self {
        Self {
            at: Some(Instant::now() + IDLE_AFTER),
        }
    }
}

impl IdleTrim {
    /// Something happened: the trim moves to [`IDLE_AFTER`] from now.
    pub fn touch(&mut self) {
        self.at = Some(Instant::now() + IDLE_AFTER);
    }

    /// Waits until the trim is due (forever when it is not armed). The
    /// future holds no borrow, so a `select!` branch may trim in its handler;
    /// cancel safe: it only sleeps.
    pub fn due(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let at = self.at;
        async move {
            match at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        }
    }

    /// Trims now and disarms until the next [`touch`](Self::touch).
    pub fn trim(&mut self) -> Released {
        self.at = None;
        release()
    }
}

/// What a [`release`] gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Resident bytes of clean file pages dropped from this process.
    pub file_bytes: u64,
    /// Mappings they came from.
    pub mappings: usize,
}

/// Returns the allocator's free memory and drops the clean resident pages
/// of the executable and its shared libraries from this process (see the
/// module's comment). A no-op where the platform gives no such control.
pub fn release() -> Released {
    imp::release()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::Released;

    /// Only the executable and shared libraries: they stay mapped for the
    /// process's life, so no other mapping can take their addresses between
    /// reading `smaps` and the `madvise` (a font or a buffer could be
    /// unmapped meanwhile, and its range reused).
    fn droppable(m: &super::Mapping, exe: &str) -> bool {
        let lib = m.path.ends_with(".so") || m.path.contains(".so.");
        (m.path == exe || lib) && m.clean_read_only()
    }

    pub fn release() -> Released {
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
        let exe = std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return Released::default();
        };
        let mut out = Released::default();
        for m in super::parse_smaps(&smaps)
            .iter()
            .filter(|m| droppable(m, &exe))
        {
            // SAFETY: the range is a whole mapping of a file, read-only and
            // with no private or shared dirty page, so dropping its pages
            // loses nothing: the next access reads the same bytes from the
            // file again. Executables and linked libraries are never
            // unmapped, so the range still is that mapping.
            let r = unsafe {
                libc::madvise(
                    m.start as *mut libc::c_void,
                    m.end - m.start,
                    libc::MADV_DONTNEED,
                )
            };
            if r == 0 {
                out.file_bytes += m.rss_kib * 1024;
                out.mappings += 1;
            }
        }
        out
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn release() -> super::Released {
        super::Released::default()
    }
}

/// One mapping of `/proc/<pid>/smaps`, with what deciding on it needs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    inode: u64,
    path: String,
    rss_kib: u64,
    dirty_kib: u64,
    anon_kib: u64,
}

impl Mapping {
    /// A file's pages, never written here: read-only, with no dirty or
    /// anonymous (copied-on-write) page. The relocated read-only data of a
    /// position-independent executable is read-only but dirty, so it stays.
    fn clean_read_only(&self) -> bool {
        self.inode != 0
            && !self.perms.contains('w')
            && self.dirty_kib == 0
            && self.anon_kib == 0
            && self.rss_kib > 0
    }
}

/// Parses `smaps`: a header line per mapping (`start-end perms offset dev
/// inode path`) followed by `Field: N kB` lines.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(m) = header(line) {
            out.push(m);
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib = || {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        };
        match key {
            "Rss" => m.rss_kib = kib(),
            "Private_Dirty" | "Shared_Dirty" => m.dirty_kib += kib(),
            "Anonymous" => m.anon_kib = kib(),
            _ => {}
        }
    }
    out
}

/// A mapping's header line, or `None` for a field line.
fn header(line: &str) -> Option<Mapping> {
    let mut parts = line.split_whitespace();
    let (start, end) = parts.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = parts.next()?;
    if perms.len() != 4 {
        return None;
    }
    let _offset = parts.next()?;
    let _dev = parts.next()?;
    let inode = parts.next()?.parse().ok()?;
    let path = parts.collect::<Vec<_>>().join(" ");
    Some(Mapping {
        start,
        end,
        perms: perms.to_string(),
        inode,
        path,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fe:01 1234 /usr/bin/lectern-agent
Size:               1024 kB
Rss:                 400 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Anonymous:             0 kB
55d0c0100000-55d0c0200000 r-xp 00100000 fe:01 1234 /usr/bin/lectern-agent
Rss:                 900 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0c0200000-55d0c0210000 r--p 00200000 fe:01 1234 /usr/bin/lectern-agent
Rss:                  64 kB
Private_Dirty:        64 kB
Anonymous:            64 kB
55d0c0210000-55d0c0211000 rw-p 00210000 fe:01 1234 /usr/bin/lectern-agent
Rss:                   4 kB
Private_Dirty:         4 kB
55d0c1000000-55d0c2000000 rw-p 00000000 00:00 0 [heap]
Rss:                1800 kB
Private_Dirty:      1800 kB
7f0000000000-7f0000100000 r-xp 00028000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1200 kB
Private_Dirty:         0 kB
7f0000200000-7f0000300000 r--s 00000000 fe:01 77 /usr/share/fonts/a font.ttf
Rss:                 100 kB
";

    #[test]
    fn parses_headers_and_fields() {
        let maps = parse_smaps(SAMPLE);
        assert_eq!(maps.len(), 7);
        assert_eq!(maps[0].start, 0x55d0c0000000);
        assert_eq!(maps[0].path, "/usr/bin/lectern-agent");
        assert_eq!(maps[1].rss_kib, 900);
        assert_eq!(maps[4].path, "[heap]");
        assert_eq!(maps[6].path, "/usr/share/fonts/a font.ttf");
    }

    #[test]
    fn only_clean_read_only_file_pages_are_candidates() {
        let maps = parse_smaps(SAMPLE);
        let clean: Vec<bool> = maps.iter().map(Mapping::clean_read_only).collect();
        // Code and headers yes; relocated (dirty) read-only data, writable
        // data and the heap no; a font is clean but not ours to drop (below).
        assert_eq!(clean, [true, true, false, false, false, true, true]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn release_drops_this_test_binarys_code_pages_and_keeps_running() {
        let rss_file = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("RssFile:"))
                .unwrap()
                .to_string();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let before = rss_file();
        let r = release();
        let after = rss_file();
        assert!(r.mappings > 0 && r.file_bytes > 0, "nothing dropped: {r:?}");
        assert!(after < before, "file-backed RSS {before} kB → {after} kB");
        // Still running: the code comes back on use.
        assert_eq!(parse_smaps(SAMPLE).len(), 7);
    }

    #[test]
    fn trim_is_one_shot_until_touched() {
        let mut t = IdleTrim::default();
        assert!(t.at.is_some(), "armed at start");
        t.trim();
        assert!(t.at.is_none(), "disarmed by the trim: no timer while idle");
        t.touch();
        let at = t.at.expect("re-armed by activity");
        assert!(at > Instant::now() + IDLE_AFTER / 2);
    }
}
