//! The service's platform-free core over an in-memory stream: the registry
//! admits a helper by what the "operating system" says of its peer, the
//! service desktop drives it, and state set before it connects is re-applied.
//! No Unix socket, no named pipe: the same code serves both, so this test
//! runs (and must pass) on every target, Windows under Wine included.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lectern_agent::ipc::{self, Account, Hello, Peer, PeerStream, StatusAnswer};
use lectern_agent::service::{admit, Expected, LiveStatus, Registry, ServiceDesktop, SessionInfo};
use lectern_agent::{Desktop, HeadlessDesktop};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::runtime::Runtime;

/// A session as a platform would find it; logging out counts.
#[derive(Debug, Clone)]
struct TestSession {
    key: String,
    user: String,
    account: Account,
    ended: Arc<AtomicUsize>,
}

impl SessionInfo for TestSession {
    fn key(&self) -> &str {
        &self.key
    }
    fn user(&self) -> &str {
        &self.user
    }
    fn account(&self) -> &Account {
        &self.account
    }
    fn place(&self) -> &str {
        "seat 1"
    }
    fn end(&self) -> Result<(), String> {
        self.ended.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// One end of an in-memory stream, with the peer a platform would report.
struct FakePeer {
    stream: DuplexStream,
    peer: Peer,
}

impl AsyncRead for FakePeer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FakePeer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl PeerStream for FakePeer {
    fn peer(&self) -> io::Result<Peer> {
        Ok(self.peer.clone())
    }
}

const HELPER_PID: u32 = 4242;

fn amy() -> Account {
    Account("acct-amy".into())
}

struct Fixture {
    /// The service's runtime for local connections (as `local_runtime` makes).
    local: Runtime,
    registry: Arc<Registry<TestSession>>,
    live: Arc<Mutex<LiveStatus>>,
    ended: Arc<AtomicUsize>,
}

impl Fixture {
    fn new() -> Fixture {
        let local = lectern_agent::service::local_runtime().unwrap();
        let registry = Registry::new(None);
        let ended = Arc::new(AtomicUsize::new(0));
        let session = TestSession {
            key: "s1".into(),
            user: "amy".into(),
            account: amy(),
            ended: ended.clone(),
        };
        registry.set_expected(
            "s1",
            Some(Expected {
                session,
                pid: HELPER_PID,
                starts: 1,
            }),
        );
        Fixture {
            local,
            registry,
            live: Arc::new(Mutex::new(LiveStatus::default())),
            ended,
        }
    }

    /// Connects a helper with a headless desktop, claiming to be `peer`;
    /// returns what the service's admission said.
    fn connect_helper(&self, peer: Peer) -> tokio::task::JoinHandle<io::Result<()>> {
        let (service_end, helper_end) = tokio::io::duplex(1 << 20);
        let desktop = Box::new(HeadlessDesktop::new("PC01", Some("amy".into())));
        self.local.spawn(async move {
            let _ = lectern_agent::helper::run_helper(helper_end, "s1", desktop).await;
        });
        let (r, l) = (self.registry.clone(), self.live.clone());
        let stream = FakePeer {
            stream: service_end,
            peer,
        };
        self.local
            .spawn(async move { admit(stream, &r, &l, |_| Ok(())).await })
    }

    /// Asks for the status as `peer`.
    fn status_as(&self, peer: Peer) -> StatusAnswer {
        let (service_end, mut client) = tokio::io::duplex(1 << 16);
        let (r, l) = (self.registry.clone(), self.live.clone());
        let stream = FakePeer {
            stream: service_end,
            peer,
        };
        self.local.block_on(async move {
            let served = tokio::spawn(async move { admit(stream, &r, &l, |_| Ok(())).await });
            ipc::write_frame(&mut client, &Hello::Status, &[])
                .await
                .unwrap();
            let (answer, _) = ipc::read_frame(&mut client).await.unwrap();
            let _ = served.await;
            answer
        })
    }
}

fn helper_peer() -> Peer {
    Peer {
        pid: HELPER_PID,
        account: amy(),
        system: false,
    }
}

/// Waits (generously) until `ok` holds.
fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_helper_on_any_stream_is_admitted_and_driven() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    // Locked before anyone signs in: kept, and shown once the helper comes.
    desktop.lock(Some("Eyes front")).unwrap();
    assert!(desktop.state().locked, "reported from the desired state");

    f.connect_helper(helper_peer());
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    let conn = &f.registry.connected()[0];
    assert_eq!((conn.session.as_str(), conn.pid), ("s1", HELPER_PID));
    wait_for("the lock to be re-applied", || {
        let s = desktop.state();
        s.user.as_deref() == Some("amy") && s.locked
    });

    desktop.unlock().unwrap();
    assert!(!desktop.state().locked);
    let frame = desktop.capture(320).unwrap();
    assert_eq!(frame.width, 320);
    assert_eq!(frame.rgb.len(), (frame.width * frame.height * 3) as usize);
    desktop.show_message("Hand in your work").unwrap();
    assert!(desktop.state().message_shown);
    // The teacher's "clear message" reaches the helper's screen.
    desktop.clear_message().unwrap();
    assert!(!desktop.state().message_shown);

    desktop.logout().unwrap();
    assert_eq!(f.ended.load(Ordering::SeqCst), 1, "the platform ended it");
}

#[test]
fn only_the_started_process_of_the_sessions_account_is_admitted() {
    let f = Fixture::new();
    for (peer, why) in [
        (
            Peer {
                pid: HELPER_PID + 1,
                ..helper_peer()
            },
            "another process of the same user",
        ),
        (
            Peer {
                account: Account("acct-ben".into()),
                ..helper_peer()
            },
            "the right pid, another account",
        ),
    ] {
        let e = f
            .local
            .block_on(f.connect_helper(peer))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{why}");
        assert!(
            e.to_string()
                .contains("is not the helper started for session"),
            "{why}: {e}"
        );
    }
    assert!(f.registry.connected().is_empty());
    f.local
        .block_on(f.connect_helper(helper_peer()))
        .unwrap()
        .unwrap();
    wait_for("the real helper", || f.registry.connected().len() == 1);
}

#[test]
fn status_is_for_the_system_account_only() {
    let f = Fixture::new();
    match f.status_as(helper_peer()) {
        StatusAnswer::Refused(why) => assert!(why.contains("root only"), "{why}"),
        other => panic!("a student read the status: {other:?}"),
    }
    let system = Peer {
        pid: 1,
        account: Account("system".into()),
        system: true,
    };
    match f.status_as(system) {
        StatusAnswer::Status(st) => {
            assert_eq!(st.sessions.len(), 1);
            let s = &st.sessions[0];
            assert_eq!((s.session.as_str(), s.user.as_str()), ("s1", "amy"));
            assert_eq!((s.display.as_str(), s.helper_pid), ("seat 1", None));
        }
        other => panic!("the system was refused: {other:?}"),
    }
}

/// The lock picture a desktop of `school` shows, `width` pixels wide.
fn lock_picture(school: Option<&str>, width: u32) -> Vec<u8> {
    let mut d = HeadlessDesktop::new("PC01", Some("amy".into()));
    if let Some(school) = school {
        d.set_school(school);
    }
    d.lock(Some("Eyes front")).unwrap();
    d.capture(width).unwrap().rgb
}

#[test]
fn a_helpers_lock_screen_names_the_enrolled_school() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    // Known before the helper comes: told on admission.
    f.registry.set_school("Hillside Academy");
    desktop.lock(Some("Eyes front")).unwrap();
    f.connect_helper(helper_peer());
    wait_for("the lock to be re-applied", || {
        f.registry.connected().len() == 1 && desktop.state().locked
    });
    let hillside = lock_picture(Some("Hillside Academy"), 640);
    assert_ne!(hillside, lock_picture(None, 640), "the school line shows");
    assert!(
        desktop.capture(640).unwrap().rgb == hillside,
        "the helper's lock screen names the school it was told on admission"
    );

    // Learnt while connected (enrolled after the helper came): the next lock names it.
    f.registry.set_school("Riverside College");
    desktop.lock(Some("Eyes front")).unwrap();
    assert!(
        desktop.capture(640).unwrap().rgb == lock_picture(Some("Riverside College"), 640),
        "the helper was told the new school"
    );
}

/// Remote control reaches the session helper over the service's IPC: input
/// is refused before control starts and after it stops, taken in between.
#[test]
fn remote_control_goes_through_the_helper() {
    use lectern_proto::control::InputEvent;
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    assert!(
        desktop.start_control("Ms Smith").is_err(),
        "nobody signed in"
    );
    f.connect_helper(helper_peer());
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    wait_for("the helper's capabilities", || {
        desktop
            .capabilities()
            .contains(&lectern_proto::Capability::RemoteControl)
    });
    let moves = [InputEvent::Move { x: 1, y: 1 }];
    assert!(desktop.inject_input(&moves).is_err(), "not controlled yet");
    desktop.start_control("Ms Smith").unwrap();
    desktop.inject_input(&moves).unwrap();
    desktop.stop_control().unwrap();
    assert!(desktop.inject_input(&moves).is_err(), "control ended");
}
