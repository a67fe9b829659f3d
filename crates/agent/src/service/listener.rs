//! The service's side of local connections, on whatever transport the
//! platform listens on. Anyone may connect (helpers run as students), so every
//! connection is judged by what the operating system says of its peer: a
//! helper must be the very process the supervisor started for its session,
//! running as that session's account; `status` is for the system's
//! administrators only; a native host must pass the platform's check.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::registry::{Registry, SessionInfo};
use crate::ipc::{self, Hello, Peer, PeerStream, ServiceStatus, SessionStatus, StatusAnswer};

/// How long a new connection may take to say who it is.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a helper may wait for the supervisor to record its pid.
const ADMIT_GRACE: Duration = Duration::from_secs(2);

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

/// Whether a peer saying it is the browser's native host may speak for the
/// extension (the platform knows how to tell: Linux asks `/proc`).
pub type NativeHostCheck = fn(&Peer) -> io::Result<()>;

/// Judges one local connection by its peer and hello, then serves it: a
/// helper joins the registry, a native host is served until it hangs up,
/// `status` gets its answer.
pub async fn admit<T: PeerStream, S: SessionInfo>(
    mut s: T,
    registry: &Arc<Registry<S>>,
    live: &Mutex<LiveStatus>,
    native_host_ok: NativeHostCheck,
) -> io::Result<()> {
    let peer = s.peer()?;
    // A silent peer cannot hold a task for long.
    let (hello, _): (Hello, _) = tokio::time::timeout(HELLO_TIMEOUT, ipc::read_frame(&mut s))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no hello in time"))??;
    match hello {
        Hello::Status if peer.system => {
            let status = status(registry, live);
            ipc::write_frame(&mut s, &StatusAnswer::Status(status), &[]).await
        }
        Hello::Status => {
            let why = format!(
                "{} may not read the agent's status (root only)",
                peer.account
            );
            let _ = ipc::write_frame(&mut s, &StatusAnswer::Refused(why.clone()), &[]).await;
            Err(io::Error::new(io::ErrorKind::PermissionDenied, why))
        }
        Hello::Extension { origin } => {
            native_host_ok(&peer)?;
            let user = registry.user_of(&peer.account);
            tracing::info!(%origin, account = %peer.account, pid = peer.pid, "browser extension host connected");
            registry.extensions.serve(s, user).await
        }
        Hello::Helper {
            session,
            capabilities,
            takes_school,
            takes_logo,
            notifies,
        } => {
            // The supervisor records a helper's pid right after starting it;
            // a very quick helper may get here first.
            let deadline = Instant::now() + ADMIT_GRACE;
            let admitted = loop {
                match registry.admit(&session, &peer) {
                    Ok(s) => break Ok(s),
                    Err(e) if Instant::now() >= deadline => break Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            match admitted {
                Ok(sess) => {
                    tracing::info!(session = %session, user = %sess.user(), pid = peer.pid, "helper connected");
                    let caps = super::registry::HelperCaps {
                        capabilities,
                        takes_school,
                        takes_logo,
                        notifies,
                    };
                    registry.connect(session, peer.pid, caps, s);
                    Ok(())
                }
                Err(why) => Err(io::Error::new(io::ErrorKind::PermissionDenied, why)),
            }
        }
    }
}

fn status<S: SessionInfo>(registry: &Registry<S>, live: &Mutex<LiveStatus>) -> ServiceStatus {
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
                    .find(|c| c.session == e.session.key())
                    .map(|c| c.pid),
                session: e.session.key().to_string(),
                user: e.session.user().to_string(),
                display: e.session.place().to_string(),
                starts: e.starts,
            })
            .collect(),
    }
}

/// Asks the service at the other end of `s` for its status (the platform
/// has checked that the service is who it should be).
pub async fn query_status<T: AsyncRead + AsyncWrite + Unpin>(
    mut s: T,
) -> anyhow::Result<ServiceStatus> {
    ipc::write_frame(&mut s, &Hello::Status, &[]).await?;
    let answer = tokio::time::timeout(HELLO_TIMEOUT, ipc::read_frame::<StatusAnswer, _>(&mut s))
        .await
        .map_err(|_| anyhow::anyhow!("the agent service did not answer"))??;
    match answer.0 {
        StatusAnswer::Status(st) => Ok(st),
        StatusAnswer::Refused(why) => anyhow::bail!("{why}"),
    }
}
