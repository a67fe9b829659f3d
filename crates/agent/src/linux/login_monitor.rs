//! Knowing when logins change without asking every few seconds: inotify on
//! the directory where systemd-logind keeps one file per session
//! (`/run/systemd/sessions`), as libsystemd's own `sd_login_monitor` does.
//! logind writes there whenever a session comes, goes or changes state, so a
//! rescan follows each change and nothing runs in between. The service's
//! fallback for when logind's D-Bus signals ([`super::logind`]) cannot be
//! had (no system bus reachable).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where systemd-logind keeps its sessions.
pub const LOGIND_SESSIONS: &str = "/run/systemd/sessions";

/// Events that mean a session file appeared, went or was rewritten.
const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CLOSE_WRITE;

/// Calls `changed` (on a thread of its own) after each batch of changes in
/// `dir`, until `changed` returns false. Fails when `dir` cannot be watched
/// (no logind on this machine); the caller then looks on a timer instead.
pub fn watch(dir: &Path, mut changed: impl FnMut() -> bool + Send + 'static) -> io::Result<()> {
    // SAFETY: inotify_init1 has no preconditions; a non-negative result is a
    // descriptor we own.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `fd` is an inotify descriptor and `path` a valid C string.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), EVENTS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    std::thread::Builder::new()
        .name("login-monitor".into())
        .spawn(move || {
            // One read takes every queued event: a burst wakes the caller once.
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into a buffer we own, within its length.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if n <= 0 || !changed() {
                    return;
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_session_file_coming_or_going_is_reported_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        watch(dir.path(), move || tx.send(()).is_ok()).unwrap();
        // Nothing changes: nothing is reported.
        assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
        // logind writes a session file (new session), then removes it.
        std::fs::write(dir.path().join("3"), "ACTIVE=1\n").unwrap();
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a new session is reported");
        while rx.recv_timeout(Duration::from_millis(500)).is_ok() {}
        std::fs::remove_file(dir.path().join("3")).unwrap();
        rx.recv_timeout(Duration::from_secs(20))
            .expect("an ended session is reported");
    }

    #[test]
    fn a_missing_directory_cannot_be_watched() {
        let dir = tempfile::tempdir().unwrap();
        assert!(watch(&dir.path().join("none"), || true).is_err());
    }
}
