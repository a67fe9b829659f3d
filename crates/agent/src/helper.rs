//! The session helper: runs as the user of one graphical session, owns that
//! session's [`Desktop`] (windows, captures) and does what the root service
//! asks over its Unix socket. It connects out and never listens, so nothing
//! but the service can drive it, and it checks that the socket's owner is root
//! before saying anything.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ipc::{self, Envelope, Hello, Reply, Request};
use crate::{Desktop, DesktopError};

/// Runs a helper for `session` until the service hangs up.
pub fn run_helper(
    socket: &Path,
    session: &str,
    mut desktop: Box<dyn Desktop>,
) -> anyhow::Result<()> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the agent service at {}: {e}",
            socket.display()
        )
    })?;
    let peer = ipc::peer_cred(&stream)?;
    if peer.uid != 0 {
        anyhow::bail!(
            "{} belongs to uid {}, not root: refusing to serve an impostor",
            socket.display(),
            peer.uid
        );
    }
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let mut reader = stream;
    send(
        &writer,
        &Hello::Helper {
            session: session.to_string(),
            capabilities: desktop.capabilities(),
        },
        &[],
    )?;
    tracing::info!(session, "session helper serving");
    loop {
        let (req, payload): (Envelope<Request>, Vec<u8>) = match ipc::read_frame(&mut reader) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::info!("the agent service hung up");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let id = req.id;
        if let Request::AskRemoteView {
            teacher,
            timeout_secs,
        } = &req.body
        {
            // The answer may take seconds: wait for it off the request loop.
            let answer = match timeout_secs {
                Some(s) => desktop.ask_remote_view_for(teacher, Duration::from_secs(u64::from(*s))),
                None => desktop.ask_remote_view(teacher),
            };
            let w = writer.clone();
            std::thread::spawn(move || {
                let allowed = answer.blocking_recv().ok();
                let _ = send(
                    &w,
                    &Envelope {
                        id,
                        body: Reply::ViewAnswer { allowed },
                    },
                    &[],
                );
            });
            continue;
        }
        let (reply, out) = serve(&mut *desktop, req.body, &payload);
        send(&writer, &Envelope { id, body: reply }, &out)?;
    }
}

fn send<T: serde::Serialize>(w: &Mutex<UnixStream>, msg: &T, payload: &[u8]) -> io::Result<()> {
    let mut s = w.lock().unwrap_or_else(|p| p.into_inner());
    ipc::write_frame(&mut *s, msg, payload)
}

/// Runs one request on the desktop.
fn serve(d: &mut dyn Desktop, req: Request, payload: &[u8]) -> (Reply, Vec<u8>) {
    let done = |r: Result<(), DesktopError>| match r {
        Ok(()) => Reply::Ok,
        Err(e) => error(e),
    };
    let reply = match req {
        Request::State => Reply::State {
            state: Box::new(d.state()),
        },
        Request::Capture { width } => match d.capture(width) {
            Ok(f) => {
                return (
                    Reply::Frame {
                        width: f.width,
                        height: f.height,
                    },
                    f.rgb,
                )
            }
            Err(e) => error(e),
        },
        Request::Lock { text } => done(d.lock(text.as_deref())),
        Request::Unlock => done(d.unlock()),
        Request::Message { text } => done(d.show_message(&text)),
        Request::OpenUrl { url } => done(d.open_url(&url)),
        Request::SetInternetBlocked { blocked } => done(d.set_internet_blocked(blocked)),
        Request::Logout => done(d.logout()),
        Request::ApplyPolicy { policy } => Reply::Unsupported {
            settings: d.apply_policy(&policy),
        },
        Request::StartBroadcast { title } => done(d.start_broadcast(&title)),
        Request::BroadcastFrame => done(d.broadcast_frame(payload)),
        Request::StopBroadcast => done(d.stop_broadcast()),
        Request::AskRemoteView { .. } => Reply::Error {
            message: "live-view questions are answered asynchronously".into(),
            unsupported: false,
        },
    };
    (reply, Vec::new())
}

fn error(e: DesktopError) -> Reply {
    Reply::Error {
        unsupported: matches!(e, DesktopError::Unsupported(_)),
        message: match e {
            DesktopError::Unsupported(what) => what.to_string(),
            DesktopError::Failed(m) => m,
        },
    }
}
