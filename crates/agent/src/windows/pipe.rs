//! The service's named pipes: the Windows transport of [`crate::ipc`].
//!
//! - `\\.\pipe\lectern-agent-<session>`: one per served session, for its
//!   helper and its browser's native host. Access list: SYSTEM and the
//!   session's user only. A client must run in that very session
//!   (`ProcessIdToSessionId`), and [`admit`] then wants a helper to be the
//!   process the supervisor started, as the session's user.
//! - `\\.\pipe\lectern-agent`: `status`, for SYSTEM and Administrators.
//!
//! Every pipe's first instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`,
//! so nobody can have created the name first (squatting) without the service
//! noticing; the next instance is always made before a connected one is
//! handed off, so the name never lapses. Peers are named by the system
//! (`GetNamedPipeClientProcessId` and that process's token), never by what
//! they say. The other way round, helpers, native hosts and `status` accept
//! a server only if its process runs as LocalSystem
//! (`GetNamedPipeServerProcessId`).

use std::io;
use std::os::windows::io::AsRawHandle;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};

use super::sessions::WinSession;
use super::win32::{self, SecurityDescriptor};
use crate::ipc::{Account, Peer, PeerStream};
use crate::service::{admit, LiveStatus, Registry};
use crate::windows_rules::{self as rules, ADMINISTRATORS_SID, SYSTEM_SID};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;

/// The service's end of one pipe connection.
pub struct ServicePipe(pub NamedPipeServer);

impl PeerStream for ServicePipe {
    fn peer(&self) -> io::Result<Peer> {
        let mut pid = 0;
        // SAFETY: the handle is a connected pipe we own.
        win32::check(
            unsafe { GetNamedPipeClientProcessId(self.0.as_raw_handle(), &mut pid) },
            "GetNamedPipeClientProcessId",
        )?;
        peer_of(pid)
    }
}

/// What the system says of process `pid`: its user SID, and whether that is
/// LocalSystem or an elevated administrator.
pub fn peer_of(pid: u32) -> io::Result<Peer> {
    let process = win32::open_process(pid)?;
    let token = win32::process_token(&process)?;
    let sid = win32::token_user_sid(&token)?;
    let system = sid == SYSTEM_SID || win32::token_has_enabled_group(&token, ADMINISTRATORS_SID)?;
    Ok(Peer {
        pid,
        account: Account(sid),
        system,
    })
}

impl AsyncRead for ServicePipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServicePipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Creates an instance of pipe `name` with the access list `sddl`; the
/// first instance fails if the name already exists (someone else's pipe).
pub fn create(name: &str, sddl: &str, first: bool) -> io::Result<NamedPipeServer> {
    let sd = SecurityDescriptor::from_sddl(sddl)?;
    let mut sa = sd.attributes();
    // SAFETY: `sa` and the descriptor it points to outlive the call.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(name, (&mut sa as *mut SECURITY_ATTRIBUTES).cast())
    }
}

/// Serves session `s`'s pipe until the task is aborted (the session ended).
/// Fails at once if the pipe cannot be made (squatted, bad SID).
pub fn bind_session(s: &WinSession) -> io::Result<(NamedPipeServer, String, String)> {
    let name = rules::session_pipe(s.id);
    let sddl = rules::session_pipe_sddl(&s.account.0).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a SID", s.account),
        )
    })?;
    let first = create(&name, &sddl, true)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {name}: {e}")))?;
    Ok((first, name, sddl))
}

/// Accepts connections on a session pipe (made by [`bind_session`]) forever.
pub async fn serve_session(
    first: NamedPipeServer,
    name: String,
    sddl: String,
    session: WinSession,
    registry: Arc<Registry<WinSession>>,
    live: Arc<Mutex<LiveStatus>>,
) {
    let id = session.id;
    accept_loop(first, name, sddl, move |conn| {
        let (r, l) = (registry.clone(), live.clone());
        async move {
            let peer = conn.peer()?;
            let theirs = win32::process_session(peer.pid)?;
            if theirs != id {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("pid {} runs in session {theirs}, not {id}", peer.pid),
                ));
            }
            admit(conn, &r, &l, check_native_host).await
        }
    })
    .await
}

/// Binds the control pipe (`status`).
pub fn bind_control() -> io::Result<NamedPipeServer> {
    create(rules::CONTROL_PIPE, rules::CONTROL_PIPE_SDDL, true).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", rules::CONTROL_PIPE),
        )
    })
}

/// Accepts connections on the control pipe forever.
pub async fn serve_control(
    first: NamedPipeServer,
    registry: Arc<Registry<WinSession>>,
    live: Arc<Mutex<LiveStatus>>,
) {
    let (name, sddl) = (
        rules::CONTROL_PIPE.to_string(),
        rules::CONTROL_PIPE_SDDL.to_string(),
    );
    accept_loop(first, name, sddl, move |conn| {
        let (r, l) = (registry.clone(), live.clone());
        async move { admit(conn, &r, &l, check_native_host).await }
    })
    .await
}

/// Waits for a client on `server`, makes the next instance, and hands the
/// connected one to `handle` on a task of its own.
async fn accept_loop<F, Fut>(mut server: NamedPipeServer, name: String, sddl: String, handle: F)
where
    F: Fn(ServicePipe) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    loop {
        if let Err(e) = server.connect().await {
            tracing::warn!(pipe = %name, "pipe connect: {e}");
        }
        let next = loop {
            match create(&name, &sddl, false) {
                Ok(n) => break n,
                Err(e) => {
                    tracing::error!(pipe = %name, "cannot make the next pipe instance: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let conn = ServicePipe(std::mem::replace(&mut server, next));
        let fut = handle(conn);
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                tracing::warn!(pipe = %name, "local connection refused: {e}");
            }
        });
    }
}

/// A native host must be this very program, started by a browser (its
/// parent process is one of [`rules::BROWSERS`]). The pipe's access list
/// and the session check have already made sure it is the session's user.
fn check_native_host(peer: &Peer) -> io::Result<()> {
    let deny = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    let exe = win32::process_image(peer.pid)?;
    let ours = std::env::current_exe()?;
    if !exe.eq_ignore_ascii_case(&ours.to_string_lossy()) {
        return deny(format!(
            "pid {} runs {exe}, not {}",
            peer.pid,
            ours.display()
        ));
    }
    let parent = win32::parent_pid(peer.pid)?;
    let parent_exe = win32::process_image(parent).unwrap_or_default();
    if rules::is_browser(&parent_exe) {
        Ok(())
    } else {
        deny(format!(
            "native host pid {} was started by {parent_exe:?}, not a browser",
            peer.pid
        ))
    }
}

/// Connects to the service's pipe `name`, making sure LocalSystem is at the
/// other end (after a service crash a user could otherwise create a
/// look-alike pipe). Under Wine, where every process runs as the same user,
/// a server running as our own user is accepted, with a warning.
pub async fn connect_to_service(name: &str) -> anyhow::Result<NamedPipeClient> {
    const ERROR_PIPE_BUSY: i32 = 231;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let client = loop {
        match ClientOptions::new().open(name) {
            Ok(c) => break c,
            Err(e)
                if e.raw_os_error() == Some(ERROR_PIPE_BUSY)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => anyhow::bail!("the agent service is not running ({name}: {e})"),
        }
    };
    let mut pid = 0;
    // SAFETY: the handle is a connected pipe we own.
    win32::check(
        unsafe { GetNamedPipeServerProcessId(client.as_raw_handle(), &mut pid) },
        "GetNamedPipeServerProcessId",
    )?;
    let sid = win32::process_user_sid(pid)?;
    check_server_account(name, pid, &sid)?;
    Ok(client)
}

fn check_server_account(name: &str, pid: u32, sid: &str) -> anyhow::Result<()> {
    let wine = win32::is_wine();
    let own = if wine {
        win32::own_user_sid().ok()
    } else {
        None
    };
    if !rules::server_account_ok(sid, wine, own.as_deref()) {
        anyhow::bail!(
            "{name} is served by pid {pid} as {sid}, not LocalSystem: refusing to talk to an impostor"
        );
    }
    if sid != SYSTEM_SID {
        tracing::warn!(pipe = name, pid, "Wine: accepting a server that runs as our own user (Wine has one account for every process)");
    }
    Ok(())
}
