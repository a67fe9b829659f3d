//! The agent service's core over an in-memory stream, shared by
//! `service_core`, `service_requests` and `app_activity`: a session as a
//! platform would find it, a stream that reports its peer, and a fixture
//! with the service's local runtime and registry.

#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lectern_agent::ipc::{self, Account, Hello, Peer, PeerStream, StatusAnswer};
use lectern_agent::service::{admit, Expected, LiveStatus, Registry, SessionInfo};
use lectern_agent::HeadlessDesktop;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::runtime::Runtime;

/// A session as a platform would find it; logging out counts.
#[derive(Debug, Clone)]
pub struct TestSession {
    pub key: String,
    pub user: String,
    pub account: Account,
    pub ended: Arc<AtomicUsize>,
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
pub struct FakePeer {
    pub stream: DuplexStream,
    pub peer: Peer,
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

pub const HELPER_PID: u32 = 4242;

pub fn amy() -> Account {
    Account("acct-amy".into())
}

pub struct Fixture {
    /// The service's runtime for local connections (as `local_runtime` makes).
    pub local: Runtime,
    pub registry: Arc<Registry<TestSession>>,
    pub live: Arc<Mutex<LiveStatus>>,
    pub ended: Arc<AtomicUsize>,
}

impl Fixture {
    pub fn new() -> Fixture {
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
    pub fn connect_helper(&self, peer: Peer) -> tokio::task::JoinHandle<io::Result<()>> {
        self.connect_helper_with(peer, HeadlessDesktop::new("PC01", Some("amy".into())))
    }

    /// Like [`Fixture::connect_helper`], with the helper driving `desktop`.
    pub fn connect_helper_with(
        &self,
        peer: Peer,
        desktop: HeadlessDesktop,
    ) -> tokio::task::JoinHandle<io::Result<()>> {
        let (service_end, helper_end) = tokio::io::duplex(1 << 20);
        let desktop = Box::new(desktop);
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
    pub fn status_as(&self, peer: Peer) -> StatusAnswer {
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

pub fn helper_peer() -> Peer {
    Peer {
        pid: HELPER_PID,
        account: amy(),
        system: false,
    }
}

/// Waits (generously) until `ok` holds.
pub fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
