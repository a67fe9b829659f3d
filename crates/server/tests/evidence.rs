//! Evidence that helps (issue 15.6): a violation's screenshots are readable
//! (the screen's own width up to 1920 px, never the old 640 px) and within
//! the device's evidence quota, which the server enforces with its default
//! limits: a real server, a real agent capturing a 1600x900 Xvfb screen, and
//! a hand-driven agent session for frames over the per-JPEG limit.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use futures_util::SinkExt;
use lectern_agent::{
    run_agent, AgentConfig, ConnStatus, Desktop, DesktopError, Frame, StoredCredential,
};
use lectern_proto::{
    ActivityEvent, AgentMsg, Capability, DeviceState, ErrorCode, Evidence, MediaFrame, MediaKind,
    Policy, RefusedFrame, ServerMsg, ViolationReport, AGENT_EVIDENCE, EVIDENCE_FRAME_BYTES,
};
use lectern_x11::{X11Desktop, X11Options};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};

const W: u16 = 1600;
const H: u16 = 900;

/// An Xvfb of our own, 1600x900, on a free display; killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{W}x{H}x24")])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let display = format!(":{}", line.trim());
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Covers the root window with lines of dark "words" on white, like a page
/// of small text: the detail a readable screenshot must keep, and a JPEG
/// that is large for its size. Deterministic (a fixed xorshift).
fn draw_text_like_page(display: &str) {
    let (conn, n) = x11rb::connect(Some(display)).expect("connect to Xvfb");
    let root = conn.setup().roots[n].root;
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, root, &CreateGCAux::new()).unwrap();
    let mut seed: u32 = 0x2545_f491;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let (w, h) = (usize::from(W), usize::from(H));
    let mut px = vec![0xffu8; w * h * 4]; // BGRX, white
    for line in (8..h - 14).step_by(18) {
        let mut x = 12;
        while x + 80 < w {
            let letters = 3 + (rand() % 7) as usize;
            for _ in 0..letters {
                // A 6x11 glyph cell with about a quarter of its pixels inked.
                for dy in 0..11 {
                    for dx in 0..6 {
                        if rand() % 4 == 0 {
                            let i = ((line + dy) * w + x + dx) * 4;
                            px[i..i + 3].fill(0x20);
                        }
                    }
                }
                x += 7;
            }
            x += 7;
        }
    }
    // In strips, well under any server's request size.
    for (i, strip) in px.chunks(w * 4 * 100).enumerate() {
        let rows = (strip.len() / (w * 4)) as u16;
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            root,
            gc,
            W,
            rows,
            0,
            (i * 100) as i16,
            0,
            24,
            strip,
        )
        .unwrap();
    }
    conn.get_input_focus().unwrap().reply().unwrap();
}

/// The real X11 backend, with the activity the test feeds it: every call
/// goes to X11 except `take_activity`. Counts captures at the rolling
/// buffer's width (1280 px), so the test knows when the buffer is full.
struct Screen {
    x: X11Desktop,
    activity: Arc<Mutex<Vec<ActivityEvent>>>,
    buffer_captures: Arc<AtomicUsize>,
}

impl Desktop for Screen {
    fn capabilities(&self) -> Vec<Capability> {
        self.x.capabilities()
    }
    fn state(&self) -> DeviceState {
        let mut s = self.x.state();
        s.user = Some("amy".into());
        s
    }
    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        if width == lectern_agent::evidence::BUFFER_WIDTH {
            self.buffer_captures.fetch_add(1, Ordering::SeqCst);
        }
        self.x.capture(width)
    }
    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        self.x.lock(text)
    }
    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.x.unlock()
    }
    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.x.show_message(text)
    }
    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        self.x.open_url(url)
    }
    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.x.set_internet_blocked(blocked)
    }
    fn logout(&mut self) -> Result<(), DesktopError> {
        self.x.logout()
    }
    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.x.apply_policy(policy)
    }
    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool> {
        self.x.ask_remote_view(teacher)
    }
    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError> {
        self.x.start_broadcast(title)
    }
    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError> {
        self.x.broadcast_frame(jpeg)
    }
    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.x.stop_broadcast()
    }
    fn take_activity(&mut self) -> Vec<ActivityEvent> {
        std::mem::take(&mut *self.activity.lock().unwrap())
    }
}

/// A screenshot of a violation: status and bytes.
async fn screenshot(ts: &TestServer, token: &str, id: &Value, n: u32) -> (u16, Vec<u8>) {
    let r = ts
        .client()
        .get(ts.url(&format!("/api/v1/violations/{id}/screenshots/{n}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Width and height of a JPEG, from its header.
fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    d.read_info().expect("a JPEG");
    let info = d.info().unwrap();
    (info.width, info.height)
}

async fn violations(ts: &TestServer, token: &str) -> Vec<Value> {
    ts.get(token, "/api/v1/violations?category=evidence")
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_of_a_1600x900_screen_is_full_width_and_within_the_limit() {
    let x = Xvfb::start();
    draw_text_like_page(&x.display);
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let r = ts
        .client()
        .put(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("term,category,severity,match,exceptions\nvolcano,evidence,3,whole_word,\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let options = X11Options {
        url_opener: vec!["true".into()],
        session_id: None,
        logout_command: None,
        pactl: None,
    };
    let activity = Arc::new(Mutex::new(Vec::new()));
    let buffer_captures = Arc::new(AtomicUsize::new(0));
    let screen = Screen {
        x: X11Desktop::with_options(Some(&x.display), options).expect("X11Desktop connects"),
        activity: activity.clone(),
        buffer_captures: buffer_captures.clone(),
    };
    let enroll = ts.enrollment_token(&token, 1).await;
    let info = lectern_agent::local_device_info(Some("EVID-PC01".into()));
    let credential: StoredCredential =
        lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &enroll, &info)
            .await
            .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut status) = watch::channel(ConnStatus::Connecting);
    let config = AgentConfig {
        credential,
        info,
        policy_file: None,
        evidence_frames: 2,
        scan_keywords: false,
        school_choice: Default::default(),
    };
    let agent = tokio::spawn(run_agent(
        config,
        Arc::new(Mutex::new(screen)),
        stop_rx,
        Some(tx),
    ));
    status
        .wait_for(|s| *s == ConnStatus::Connected)
        .await
        .unwrap();

    // The rolling buffer full (two frames), then a visit the server flags:
    // it asks for the evidence, the buffer and a frame of now.
    wait_for(|| async { (buffer_captures.load(Ordering::SeqCst) >= 2).then_some(()) }).await;
    activity.lock().unwrap().push(ActivityEvent {
        kind: "web".into(),
        user: Some("amy".into()),
        url: Some("https://example.org/volcano-facts".into()),
        title: Some("Volcano facts".into()),
        app: None,
        at: 1_700_000_000_000,
        blocked: false,
    });
    let v = wait_for(|| async {
        violations(&ts, &token)
            .await
            .into_iter()
            .find(|v| v["screenshots"].as_u64() == Some(3))
    })
    .await;

    let mut sizes = Vec::new();
    for n in 0..3 {
        let (s, jpeg) = screenshot(&ts, &token, &v["id"], n).await;
        assert_eq!(s, 200);
        assert!(
            jpeg.len() <= EVIDENCE_FRAME_BYTES as usize,
            "frame {n}: {} bytes, over the server's per-JPEG limit",
            jpeg.len()
        );
        sizes.push(jpeg_size(&jpeg));
    }
    // The buffer at 1280 px, the moment of the match at the screen's own size.
    assert_eq!(sizes, [(1280, 720), (1280, 720), (W, H)]);
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/x11-out");
    std::fs::create_dir_all(&out).unwrap();
    let trigger = screenshot(&ts, &token, &v["id"], 2).await.1;
    jpeg_decoder::Decoder::new(&trigger[..])
        .decode()
        .expect("a whole JPEG");
    std::fs::write(out.join("evidence-trigger.jpg"), trigger).unwrap();

    let _ = stop.send(true);
    let _ = agent.await;
}

/// One evidence frame of `bytes` (a JPEG's first two bytes, then zeros).
fn evidence(violation_id: u64, index: u8, total: u8, bytes: usize) -> Message {
    let mut jpeg = vec![0u8; bytes];
    jpeg[..2].copy_from_slice(&[0xff, 0xd8]);
    let payload = Evidence {
        violation_id,
        index,
        total,
    }
    .payload(&jpeg);
    Message::binary(
        MediaFrame {
            kind: MediaKind::Evidence,
            width: W,
            height: H,
            payload: &payload,
        }
        .encode(),
    )
}

/// The next refusal from the server (other frames skipped).
async fn next_refusal(ws: &mut lectern_agent::AgentStream) -> (ErrorCode, RefusedFrame) {
    loop {
        if let ServerMsg::Refused { code, frame, .. } = next_server_msg(ws).await {
            return (code, frame);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limits_take_a_readable_frame_and_refuse_a_larger_one() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "EVID-PC02").await;
    let mut ws = raw_session(&ts, &cred, "EVID-PC02", vec![]).await;
    let report = AgentMsg::Violation(Box::new(ViolationReport {
        local_id: 1,
        term: "volcano".into(),
        category: "evidence".into(),
        severity: 2,
        matched: "volcano".into(),
        context: "volcano facts".into(),
        source: "title".into(),
        user: Some("amy".into()),
        at: 1_700_000_000_000,
    }));
    ws.send(Message::text(report.encode())).await.unwrap();
    let id = 1 | AGENT_EVIDENCE;
    let limit = EVIDENCE_FRAME_BYTES as usize;
    // 400 KiB (a busy 1920-px screen; over the old 256 KiB) and exactly the
    // limit are taken; one byte more is refused, and the session goes on.
    for f in [
        evidence(id, 0, 4, 400 * 1024),
        evidence(id, 1, 4, limit),
        evidence(id, 2, 4, limit + 1),
        evidence(id, 3, 4, 1000),
    ] {
        ws.send(f).await.unwrap();
    }
    assert_eq!(
        next_refusal(&mut ws).await,
        (
            ErrorCode::NotAllowed,
            RefusedFrame::Evidence {
                violation_id: id,
                index: 2
            }
        )
    );
    // Frames are kept by index: the refused one is a gap the console shows
    // as not available.
    let v = wait_for(|| async {
        violations(&ts, &token)
            .await
            .into_iter()
            .find(|v| v["screenshots"].as_u64() == Some(4))
    })
    .await;
    let mut lengths = Vec::new();
    for n in 0..4 {
        let (s, jpeg) = screenshot(&ts, &token, &v["id"], n).await;
        lengths.push((s, jpeg.len()));
    }
    assert_eq!(lengths[0], (200, 400 * 1024));
    assert_eq!(lengths[1], (200, limit));
    assert_eq!(lengths[2].0, 404);
    assert_eq!(lengths[3], (200, 1000));
    assert_eq!(
        ts.metric("lectern_device_limited_total{kind=\"evidence_not_allowed\"}")
            .await,
        1
    );
}
