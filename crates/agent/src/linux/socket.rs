//! The service's Unix socket: the Linux transport of [`crate::ipc`]. Peers are
//! named by `SO_PEERCRED` (pid and uid as the kernel saw them at connect);
//! the socket is world-connectable in a root-only directory, and the shared
//! [`admit`] judges every connection.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixStream;

use super::sessions::{account_of, Session};
use crate::ipc::{Peer, PeerStream};
use crate::service::{admit, LiveStatus, Registry};

impl PeerStream for UnixStream {
    fn peer(&self) -> io::Result<Peer> {
        let cred = self.peer_cred()?;
        Ok(Peer {
            pid: cred.pid().map_or(0, |p| p as u32),
            account: account_of(cred.uid()),
            system: cred.uid() == 0,
        })
    }
}

/// Binds `path` (replacing a stale socket) with mode 0666 in a root-owned
/// directory that only root can write.
pub fn bind(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Accepts connections forever (on the runtime it runs on), each judged by
/// [`admit`] on a task of its own.
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    registry: Arc<Registry<Session>>,
    live: Arc<Mutex<LiveStatus>>,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve the agent socket: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let (r, l) = (registry.clone(), live.clone());
                tokio::spawn(async move {
                    if let Err(e) = admit(s, &r, &l, check_native_host).await {
                        tracing::warn!("local connection refused: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::error!("accept on the agent socket: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Connects to the service at `socket`, making sure root is listening there
/// (a student could otherwise bind a look-alike socket after a crash).
pub async fn connect_to_service(socket: &Path) -> anyhow::Result<UnixStream> {
    let s = UnixStream::connect(socket).await.map_err(|e| {
        anyhow::anyhow!(
            "the agent service is not running ({}: {e})",
            socket.display()
        )
    })?;
    let peer = s.peer()?;
    if !peer.system {
        anyhow::bail!(
            "{} belongs to {}, not root: refusing to talk to an impostor",
            socket.display(),
            peer.account
        );
    }
    Ok(s)
}

/// Browsers whose native hosts may speak for the extension.
const BROWSERS: &[&str] = &["chromium", "chrome", "msedge", "brave", "vivaldi", "opera"];

/// A native host must be this very program, started by a browser: a student
/// running `lectern-agent native-host` from a shell to fake a live extension
/// (while browsing elsewhere) is turned away.
fn check_native_host(peer: &Peer) -> io::Result<()> {
    let pid = peer.pid;
    let deny = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let ours = std::env::current_exe()?;
    if exe != ours {
        return deny(format!(
            "pid {pid} runs {}, not {}",
            exe.display(),
            ours.display()
        ));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    let parent = parent.trim().to_lowercase();
    if BROWSERS.iter().any(|b| parent.contains(b)) {
        Ok(())
    } else {
        deny(format!(
            "native host pid {pid} was started by {parent:?}, not a browser"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_kernel_names_the_peer() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = a.peer().unwrap();
        assert_eq!(p.pid, std::process::id());
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        assert_eq!(p.account, account_of(uid));
        assert_eq!(p.system, uid == 0);
    }
}
