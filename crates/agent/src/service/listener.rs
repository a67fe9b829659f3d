//! The service's Unix socket. Anyone may connect (helpers run as students),
//! so every connection is judged by its kernel-reported credentials: a helper
//! must be the very process the supervisor started for its session, running
//! as that session's user; `status` is for root only.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::registry::Registry;
use crate::ipc::{self, Hello, ServiceStatus, SessionStatus, StatusAnswer};

/// The parts of the status the session loop keeps up to date.
#[derive(Debug, Default)]
pub struct LiveStatus {
    /// Server address.
    pub server: Option<String>,
    /// School.
    pub school: Option<String>,
    /// Device id.
    pub device_id: Option<i64>,
    /// Connection state in words.
    pub connection: String,
}

/// Binds `path` (replacing a stale socket) with mode 0666 in a root-owned
/// directory that only root can write.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Accepts connections forever, each judged on its own thread.
pub fn serve(listener: UnixListener, registry: Arc<Registry>, live: Arc<Mutex<LiveStatus>>) {
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                let (r, l) = (registry.clone(), live.clone());
                std::thread::spawn(move || {
                    if let Err(e) = admit(s, &r, &l) {
                        tracing::warn!("local connection refused: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::error!("accept on the agent socket: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn admit(mut s: UnixStream, registry: &Arc<Registry>, live: &Mutex<LiveStatus>) -> io::Result<()> {
    let peer = ipc::peer_cred(&s)?;
    // A silent peer cannot hold a thread for long.
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (hello, _): (Hello, _) = ipc::read_frame(&mut s)?;
    s.set_read_timeout(None)?;
    match hello {
        Hello::Status if peer.uid == 0 => {
            let status = status(registry, live);
            ipc::write_frame(&mut s, &StatusAnswer::Status(status), &[])
        }
        Hello::Status => {
            let why = format!(
                "uid {} may not read the agent's status (root only)",
                peer.uid
            );
            let _ = ipc::write_frame(&mut s, &StatusAnswer::Refused(why.clone()), &[]);
            Err(io::Error::new(io::ErrorKind::PermissionDenied, why))
        }
        Hello::Extension { origin } => {
            check_native_host(peer.pid)?;
            let user = registry.user_of_uid(peer.uid);
            tracing::info!(%origin, uid = peer.uid, pid = peer.pid, "browser extension host connected");
            registry.extensions.serve(s, user)
        }
        Hello::Helper {
            session,
            capabilities,
        } => {
            // The supervisor records a helper's pid right after starting it;
            // a very quick helper may get here first.
            let deadline = Instant::now() + Duration::from_secs(2);
            let admitted = loop {
                match registry.admit(&session, peer.pid, peer.uid) {
                    Ok(s) => break Ok(s),
                    Err(e) if Instant::now() >= deadline => break Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            match admitted {
                Ok(sess) => {
                    tracing::info!(session = %session, user = %sess.user.name, pid = peer.pid, "helper connected");
                    registry.connect(session, peer.pid, capabilities, s)
                }
                Err(why) => Err(io::Error::new(io::ErrorKind::PermissionDenied, why)),
            }
        }
    }
}

/// Browsers whose native hosts may speak for the extension.
const BROWSERS: &[&str] = &["chromium", "chrome", "msedge", "brave", "vivaldi", "opera"];

/// A native host must be this very program, started by a browser: a student
/// running `lectern-agent native-host` from a shell to fake a live extension
/// (while browsing elsewhere) is turned away.
fn check_native_host(pid: u32) -> io::Result<()> {
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

fn status(registry: &Registry, live: &Mutex<LiveStatus>) -> ServiceStatus {
    let connected = registry.connected();
    let l = live.lock().unwrap_or_else(|p| p.into_inner());
    ServiceStatus {
        server: l.server.clone(),
        school: l.school.clone(),
        device_id: l.device_id,
        connection: l.connection.clone(),
        policy_version: registry.desired().policy.as_ref().map_or(0, |p| p.version),
        sessions: registry
            .expected()
            .into_iter()
            .map(|e| SessionStatus {
                helper_pid: connected
                    .iter()
                    .find(|c| c.session == e.session.key)
                    .map(|c| c.pid),
                session: e.session.key,
                user: e.session.user.name,
                display: e.session.display,
                starts: e.starts,
            })
            .collect(),
    }
}

/// Asks the service at `socket` for its status (as root).
pub fn query_status(socket: &Path) -> anyhow::Result<ServiceStatus> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        anyhow::anyhow!(
            "the agent service is not running ({}: {e})",
            socket.display()
        )
    })?;
    let peer = ipc::peer_cred(&s)?;
    if peer.uid != 0 {
        anyhow::bail!(
            "{} is not owned by root (uid {})",
            socket.display(),
            peer.uid
        );
    }
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    ipc::write_frame(&mut s, &Hello::Status, &[])?;
    match ipc::read_frame::<StatusAnswer>(&mut s)?.0 {
        StatusAnswer::Status(st) => Ok(st),
        StatusAnswer::Refused(why) => anyhow::bail!("{why}"),
    }
}
