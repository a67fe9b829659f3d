//! Issue 13.2, free when idle: an agent whose desktop signals its changes
//! does not look at it while nothing changes (no state reads, no captures),
//! and sends what changed when told. A real server and a real agent session;
//! the desktop is the headless one wrapped to count what the agent asks of it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use lectern_agent::{
    enroll, run_agent, AgentConfig, Changes, ConnStatus, Desktop, DesktopError, Frame,
    HeadlessDesktop,
};
use lectern_proto::{Capability, DeviceState, Policy};
use tokio::sync::{oneshot, watch};

/// How long nothing may be asked of a desktop that did not change.
const QUIET: Duration = Duration::from_secs(4);

#[derive(Default)]
struct Counts {
    state: AtomicUsize,
    capture: AtomicUsize,
}

/// The headless desktop, signalling through `changes` and counting state
/// reads and captures.
struct Counting {
    inner: HeadlessDesktop,
    changes: Arc<Changes>,
    counts: Arc<Counts>,
}

impl Desktop for Counting {
    fn changes(&self) -> Option<Arc<Changes>> {
        Some(self.changes.clone())
    }
    fn capabilities(&self) -> Vec<Capability> {
        self.inner.capabilities()
    }
    fn state(&self) -> DeviceState {
        self.counts.state.fetch_add(1, Ordering::SeqCst);
        self.inner.state()
    }
    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        self.counts.capture.fetch_add(1, Ordering::SeqCst);
        self.inner.capture(width)
    }
    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        self.inner.lock(text)
    }
    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.inner.unlock()
    }
    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.inner.show_message(text)
    }
    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        self.inner.open_url(url)
    }
    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.inner.set_internet_blocked(blocked)
    }
    fn logout(&mut self) -> Result<(), DesktopError> {
        self.inner.logout()
    }
    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.inner.apply_policy(policy)
    }
    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool> {
        self.inner.ask_remote_view(teacher)
    }
    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError> {
        self.inner.start_broadcast(title)
    }
    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError> {
        self.inner.broadcast_frame(jpeg)
    }
    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.inner.stop_broadcast()
    }
    fn take_activity(&mut self) -> Vec<lectern_proto::ActivityEvent> {
        self.inner.take_activity()
    }
}

fn counts(c: &Counts) -> (usize, usize) {
    (
        c.state.load(Ordering::SeqCst),
        c.capture.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn a_signalling_desktop_is_left_alone_until_it_changes() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll_token = ts.enrollment_token(&token, 1).await;
    let info = lectern_agent::local_device_info(Some("IDLE-PC".into()));
    let credential = enroll(&ts.addr.to_string(), &ts.fingerprint, &enroll_token, &info)
        .await
        .unwrap();
    let changes = Arc::new(Changes::default());
    let count = Arc::new(Counts::default());
    let desktop = Arc::new(Mutex::new(Counting {
        inner: HeadlessDesktop::new("IDLE-PC", Some("amy".into())),
        changes: changes.clone(),
        counts: count.clone(),
    }));
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut status) = watch::channel(ConnStatus::Connecting);
    let config = AgentConfig {
        credential: credential.clone(),
        info,
        policy_file: None,
        // The rolling evidence buffer is on: it used to capture every second.
        evidence_frames: 3,
        scan_keywords: false,
        school_choice: Default::default(),
    };
    let task = tokio::spawn(run_agent(config, desktop.clone(), stop_rx, Some(tx)));
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| *s == ConnStatus::Connected),
    )
    .await
    .expect("agent connects")
    .unwrap();
    let id = credential.device_id;
    let user_is = |want: &'static str| {
        let (ts, token) = (&ts, &token);
        move || async move {
            let list = ts.get(token, "/api/v1/devices").await;
            list.as_array()?
                .iter()
                .find(|d| d["id"] == id && d["state"]["user"] == want)
                .map(|_| ())
        }
    };
    wait_for(user_is("amy")).await;
    // The first evidence frame is taken at the start.
    wait_for(|| async { (counts(&count).1 >= 1).then_some(()) }).await;

    // Nothing changes: the desktop is neither read nor captured.
    let before = counts(&count);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        counts(&count),
        before,
        "state reads and captures while nothing changed"
    );

    // A change is sent once signalled.
    desktop.lock().unwrap().inner.login("zoe");
    changes.state.notify_one();
    wait_for(user_is("zoe")).await;

    // The screen changed: one evidence frame, then none while it is still.
    let captures = counts(&count).1;
    changes.screen.notify_one();
    wait_for(|| async { (counts(&count).1 > captures).then_some(()) }).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        counts(&count).1,
        captures + 1,
        "one frame for one change of the screen"
    );
    // A burst of changes: at most one frame a second (the change seen now,
    // and the changes seen while it was taken).
    let captures = counts(&count).1;
    for _ in 0..20 {
        changes.screen.notify_one();
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(QUIET).await;
    let taken = counts(&count).1 - captures;
    assert!((1..=2).contains(&taken), "{taken} frames for one burst");

    // A source that cannot signal connects: then the desktop is polled.
    changes.unsignalled_source(true);
    changes.state.notify_one();
    let reads = counts(&count).0;
    wait_for(|| async { (counts(&count).0 >= reads + 3).then_some(()) }).await;
    changes.unsignalled_source(false);

    let _ = stop.send(true);
    let _ = task.await;
}
