//! Issue 13.2: a session helper gives back its capture buffer once captures
//! stop (an idle session does not hold a copy of the screen), keeps it while
//! they keep coming, and says at once that it signals its changes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lectern_agent::ipc::{read_frame, write_frame, Envelope, Hello, Reply, Request};
use lectern_agent::{Changes, Desktop, DesktopError, Frame, HeadlessDesktop};
use lectern_proto::{Capability, DeviceState, Policy};
use tokio::sync::oneshot;

/// The headless desktop, counting buffer releases and signalling changes.
struct Releasing {
    inner: HeadlessDesktop,
    released: Arc<AtomicUsize>,
    changes: Arc<Changes>,
}

impl Desktop for Releasing {
    fn changes(&self) -> Option<Arc<Changes>> {
        Some(self.changes.clone())
    }
    fn release_buffers(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
    fn capabilities(&self) -> Vec<Capability> {
        self.inner.capabilities()
    }
    fn state(&self) -> DeviceState {
        self.inner.state()
    }
    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
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
}

/// Reads frames until the reply to `id`, returning it and any change notices.
async fn reply_to<R: tokio::io::AsyncRead + Unpin>(r: &mut R, id: u64) -> (Reply, Vec<Reply>) {
    let mut notices = Vec::new();
    loop {
        let (env, _): (Envelope<Reply>, Vec<u8>) =
            tokio::time::timeout(Duration::from_secs(20), read_frame(r))
                .await
                .expect("the helper answers")
                .unwrap();
        if env.id == id {
            return (env.body, notices);
        }
        notices.push(env.body);
    }
}

#[tokio::test]
async fn the_capture_buffer_goes_when_captures_stop_and_changes_are_passed_on() {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let released = Arc::new(AtomicUsize::new(0));
    let changes = Arc::new(Changes::default());
    let desktop = Releasing {
        inner: HeadlessDesktop::new("PC", Some("amy".into())),
        released: released.clone(),
        changes: changes.clone(),
    };
    let helper = tokio::spawn(async move {
        lectern_agent::helper::run_helper(theirs, "s1", Box::new(desktop)).await
    });
    let (mut r, mut w) = tokio::io::split(ours);
    let (hello, _): (Hello, Vec<u8>) = read_frame(&mut r).await.unwrap();
    assert!(
        matches!(hello, Hello::Helper { notifies: true, .. }),
        "a signalling helper says so: {hello:?}"
    );

    // Captures a second apart: a stream keeps its buffer.
    for id in 1..=4 {
        let req = Envelope {
            id,
            body: Request::Capture { width: 320 },
        };
        write_frame(&mut w, &req, &[]).await.unwrap();
        let (reply, _) = reply_to(&mut r, id).await;
        assert!(matches!(reply, Reply::Frame { .. }), "{reply:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(released.load(Ordering::SeqCst), 0, "released mid-stream");
    // Then none: the buffer goes, once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while released.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "buffer never released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        released.load(Ordering::SeqCst),
        1,
        "released again without a capture"
    );

    // A change of the session is passed on unasked.
    changes.state.notify_one();
    let (env, _): (Envelope<Reply>, Vec<u8>) =
        tokio::time::timeout(Duration::from_secs(20), read_frame(&mut r))
            .await
            .expect("a change notice")
            .unwrap();
    assert_eq!(env.id, lectern_agent::ipc::NOTICE_ID);
    assert!(
        matches!(
            env.body,
            Reply::Changed {
                state: true,
                screen: false,
                polls: false
            }
        ),
        "{:?}",
        env.body
    );
    drop(w);
    drop(r);
    let _ = tokio::time::timeout(Duration::from_secs(20), helper).await;
}

#[tokio::test]
async fn a_browser_extension_signals_what_it_reports_and_heartbeats_signal_nothing() {
    use lectern_agent::ipc::ExtMsg;
    let ext = Arc::new(lectern_agent::service::Extensions::default());
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let serving = ext.clone();
    let task = tokio::spawn(async move { serving.serve(theirs, Some("amy".into())).await });
    let (mut r, mut w) = tokio::io::split(ours);
    let notified = || tokio::time::timeout(Duration::from_secs(20), ext.changes.state.notified());
    notified()
        .await
        .expect("a connecting extension is a change");
    // The agent's policy and tab request come first.
    let _: (ExtMsg, Vec<u8>) = read_frame(&mut r).await.unwrap();

    write_frame(&mut w, &ExtMsg::Heartbeat, &[]).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), ext.changes.state.notified())
            .await
            .is_err(),
        "a heartbeat changes nothing"
    );
    let visit = ExtMsg::Activity {
        kind: "web".into(),
        url: Some("https://example.org/".into()),
        title: Some("Example".into()),
        at: 1,
    };
    write_frame(&mut w, &visit, &[]).await.unwrap();
    notified().await.expect("a visited page is signalled");
    assert_eq!(ext.take_activity().len(), 1);
    drop(w);
    drop(r);
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
}
