//! The session helper: runs as the user of one graphical session, owns that
//! session's [`Desktop`] (windows, captures) and does what the system service
//! asks over a local stream. It connects out and never listens, so nothing
//! but the service can drive it; the platform checks that the service is who
//! it should be (root's socket on Linux) before handing the stream over.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::sync::Mutex;

use crate::ipc::{self, Envelope, Hello, Reply, Request};
use crate::{Desktop, DesktopError};

type Writer<T> = Arc<Mutex<WriteHalf<T>>>;

/// Serves `session` on the service's `stream` until the service hangs up.
/// Desktop calls run on this task (they are quick, and the helper serves one
/// request at a time); only live-view answers, which wait for the student,
/// are sent from a task of their own.
pub async fn run_helper<T>(
    stream: T,
    session: &str,
    mut desktop: Box<dyn Desktop>,
) -> anyhow::Result<()>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let writer: Writer<T> = Arc::new(Mutex::new(writer));
    let hello = Hello::Helper {
        session: session.to_string(),
        capabilities: desktop.capabilities(),
        takes_school: true,
    };
    send(&writer, &hello, &[]).await?;
    tracing::info!(session, "session helper serving");
    loop {
        let (req, payload): (Envelope<Request>, Vec<u8>) = match ipc::read_frame(&mut reader).await
        {
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
            tokio::spawn(async move {
                let allowed = answer.await.ok();
                let reply = Envelope {
                    id,
                    body: Reply::ViewAnswer { allowed },
                };
                let _ = send(&w, &reply, &[]).await;
            });
            continue;
        }
        let (reply, out) = serve(&mut *desktop, req.body, &payload);
        send(&writer, &Envelope { id, body: reply }, &out).await?;
    }
}

async fn send<T, M>(w: &Writer<T>, msg: &M, payload: &[u8]) -> io::Result<()>
where
    T: AsyncWrite,
    M: serde::Serialize,
{
    let mut w = w.lock().await;
    ipc::write_frame(&mut *w, msg, payload).await
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
        Request::ClearMessage => done(d.clear_message()),
        Request::OpenUrl { url } => done(d.open_url(&url)),
        Request::SetInternetBlocked { blocked } => done(d.set_internet_blocked(blocked)),
        Request::Logout => done(d.logout()),
        Request::ApplyPolicy { policy } => Reply::Unsupported {
            settings: d.apply_policy(&policy),
        },
        Request::StartBroadcast { title } => done(d.start_broadcast(&title)),
        Request::BroadcastFrame => done(d.broadcast_frame(payload)),
        Request::StopBroadcast => done(d.stop_broadcast()),
        Request::StartControl { controller } => done(d.start_control(&controller)),
        Request::ControlInput { events } => done(d.inject_input(&events)),
        Request::StopControl => done(d.stop_control()),
        Request::SetSchool { school } => {
            d.set_school(&school);
            Reply::Ok
        }
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
