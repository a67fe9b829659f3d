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
    let (reader, writer) = tokio::io::split(stream);
    let writer: Writer<T> = Arc::new(Mutex::new(writer));
    let changes = desktop.changes();
    let hello = Hello::Helper {
        session: session.to_string(),
        capabilities: desktop.capabilities(),
        takes_school: true,
        takes_logo: true,
        notifies: changes.is_some(),
    };
    send(&writer, &hello, &[]).await?;
    let _notices = changes.map(|c| AbortOnDrop(tokio::spawn(forward_changes(c, writer.clone()))));
    tracing::info!(session, "session helper serving");
    let mut requests = read_requests(reader);
    // Set after a capture: when no other came by then, the capture buffer
    // goes (a stream keeps it; an idle session does not).
    let mut release_at: Option<tokio::time::Instant> = None;
    // Once the service has asked nothing for a while, the helper gives its
    // start-up memory back (crate::idle_memory).
    let mut trim = crate::idle_memory::IdleTrim::default();
    loop {
        let next = tokio::select! {
            next = requests.recv() => next,
            _ = sleep_until(release_at) => {
                desktop.release_buffers();
                release_at = None;
                continue;
            }
            _ = trim.due() => {
                let r = trim.trim();
                tracing::debug!(bytes = r.file_bytes, mappings = r.mappings, "idle: memory given back");
                continue;
            }
        };
        trim.touch();
        let (req, payload) = match next {
            Some(Ok(r)) => r,
            Some(Err(e)) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(e.into()),
            _ => {
                tracing::info!("the agent service hung up");
                return Ok(());
            }
        };
        if matches!(req.body, Request::Capture { .. }) {
            release_at = Some(tokio::time::Instant::now() + KEEP_BUFFERS);
        }
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
        if let Request::AskSchoolCode { error } = &req.body {
            // Answered when someone types the code: off the request loop.
            let answer = desktop.ask_school_code(error.as_deref());
            let w = writer.clone();
            tokio::spawn(async move {
                let code = answer.await.ok();
                let reply = Envelope {
                    id,
                    body: Reply::SchoolCode { code },
                };
                let _ = send(&w, &reply, &[]).await;
            });
            continue;
        }
        let (reply, out) = serve(&mut *desktop, req.body, &payload);
        send(&writer, &Envelope { id, body: reply }, &out).await?;
    }
}

/// How long after the last capture its buffer is kept for the next one.
const KEEP_BUFFERS: Duration = Duration::from_secs(3);

type Incoming = io::Result<(Envelope<Request>, Vec<u8>)>;

/// Reads the service's requests on a task of its own, so waiting for the
/// next one can be given up safely (frame reads are not cancel-safe).
fn read_requests<R>(mut reader: R) -> tokio::sync::mpsc::Receiver<Incoming>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let r: Incoming = ipc::read_frame(&mut reader).await;
            let end = r.is_err();
            if tx.send(r).await.is_err() || end {
                return;
            }
        }
    });
    rx
}

/// Sleeps until `at`; never, without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Ends a task when its owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tells the service each time the session's state or screen changed, so it
/// need not ask.
async fn forward_changes<T>(changes: Arc<crate::Changes>, w: Writer<T>)
where
    T: AsyncWrite,
{
    loop {
        let (state, screen) = tokio::select! {
            _ = changes.state.notified() => (true, false),
            _ = changes.screen.notified() => (false, true),
        };
        let notice = Envelope {
            id: ipc::NOTICE_ID,
            body: Reply::Changed {
                state,
                screen,
                polls: changes.polls(),
            },
        };
        if send(&w, &notice, &[]).await.is_err() {
            return;
        }
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
        Request::TakeActivity => Reply::Activity {
            events: d.take_activity(),
        },
        Request::TakeRequests => Reply::Requests {
            requests: d.take_requests(),
        },
        Request::Notice { notice } => done(d.student_notice(notice)),
        Request::AcceptableUse { policy } => done(d.show_acceptable_use(policy.as_ref())),
        Request::StudentSignIn { screen } => done(d.show_student_sign_in(screen.as_ref())),
        Request::SignedIn { signed_in } => {
            d.show_signed_in(signed_in);
            Reply::Ok
        }
        Request::SetLogo { present } => {
            d.set_school_logo(present.then_some(payload));
            Reply::Ok
        }
        Request::AskRemoteView { .. } | Request::AskSchoolCode { .. } => Reply::Error {
            message: "questions are answered asynchronously".into(),
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
