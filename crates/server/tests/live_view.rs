//! The live view: a console names the one device it shows live, and that
//! device (a real agent with its headless desktop) streams at the configured
//! live size and rate until the view closes, then at thumbnail size again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Live width configured for these tests (distinct from the thumbnail's 320
/// and the broadcast's 1280, so a frame's width says which stream it is).
const LIVE_WIDTH: u16 = 960;

/// What the console stream sent next: a frame's (device, JPEG width), or a
/// JSON message.
enum Next {
    Frame(i64, u16),
    Json(Value),
}

async fn next(ws: &mut Console) -> Next {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("something within 20 s")
            .expect("the stream is open")
            .expect("a good message");
        match m {
            Message::Binary(b) => {
                assert_eq!(b[0], 1, "a thumbnail frame");
                let id = i64::from_be_bytes(b[1..9].try_into().unwrap());
                return Next::Frame(id, jpeg_width(&b[9..]));
            }
            Message::Text(t) => return Next::Json(serde_json::from_str(&t).unwrap()),
            _ => {}
        }
    }
}

fn jpeg_width(jpeg: &[u8]) -> u16 {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    dec.read_info().unwrap();
    dec.info().unwrap().width
}

/// Waits (up to 20 s of messages) for a frame of `device` `width` wide; frames
/// of the previous size still in flight are skipped.
async fn frame_of_width(ws: &mut Console, device: i64, width: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Next::Frame(id, w) = next(ws).await {
            if id == device && w == width {
                return;
            }
        }
    }
    panic!("no frame {width} px wide within 20 s");
}

/// Returns once the server has handled every message sent before: a
/// refused message's error comes back in order.
async fn synced(ws: &mut Console) {
    send(ws, json!({"watch": [], "live": 0})).await;
    loop {
        if let Next::Json(v) = next(ws).await {
            if v["type"] == "error" {
                return;
            }
        }
    }
}

async fn send(ws: &mut Console, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

async fn start() -> TestServer {
    TestServer::start_with_config(|c| {
        c["live_width"] = toml::Value::Integer(LIVE_WIDTH.into());
        c["live_interval_ms"] = toml::Value::Integer(100);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_streams_large_and_fast_then_thumbnails_again() {
    let ts = start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC-LIVE", Some("amy")).await;
    let mut ws = console_stream(&ts, &token).await;

    send(&mut ws, json!({"watch": [a.id()]})).await;
    frame_of_width(&mut ws, a.id(), 320).await;

    send(&mut ws, json!({"watch": [a.id()], "live": a.id()})).await;
    frame_of_width(&mut ws, a.id(), LIVE_WIDTH).await;
    assert_eq!(ts.metric("lectern_live_views").await, 1);
    assert_eq!(ts.metric("lectern_live_streams").await, 1);

    // The rate reached (reported, not asserted: machines differ).
    let (window, started) = (Duration::from_secs(3), Instant::now());
    let mut frames = 0u32;
    while started.elapsed() < window {
        if let Next::Frame(_, LIVE_WIDTH) = next(&mut ws).await {
            frames += 1;
        }
    }
    let rate = f64::from(frames) / started.elapsed().as_secs_f64();
    eprintln!("headless agent live view: {frames} frames {LIVE_WIDTH} px wide in 3 s = {rate:.1}/s (asked: every 100 ms)");

    // The live view closes: thumbnails again, and the gauges go back to 0.
    send(&mut ws, json!({"watch": [a.id()]})).await;
    frame_of_width(&mut ws, a.id(), 320).await;
    assert_eq!(ts.metric("lectern_live_views").await, 0);
    assert_eq!(ts.metric("lectern_live_streams").await, 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_device_that_is_not_watched_is_refused_and_changes_nothing() {
    let ts = start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC-LIVE", Some("amy")).await;
    let mut ws = console_stream(&ts, &token).await;
    send(&mut ws, json!({"watch": [a.id()], "live": a.id()})).await;
    frame_of_width(&mut ws, a.id(), LIVE_WIDTH).await;

    send(&mut ws, json!({"watch": [a.id()], "live": a.id() + 1})).await;
    let error = loop {
        if let Next::Json(v) = next(&mut ws).await {
            if v["type"] == "error" {
                break v["error"].as_str().unwrap().to_string();
            }
        }
    };
    assert!(error.contains("must also be in watch"), "{error}");
    send(&mut ws, json!({"watch": [a.id()], "live": "one"})).await;
    // The stream stays as it was: live, for the device still watched.
    frame_of_width(&mut ws, a.id(), LIVE_WIDTH).await;
    assert_eq!(ts.metric("lectern_live_views").await, 1);

    // The console goes: nothing is live and nothing streams.
    ws.close(None).await.unwrap();
    drop(ws);
    wait_for(|| async { (ts.server().state.hub.console_count() == 0).then_some(()) }).await;
    assert_eq!(ts.metric("lectern_live_views").await, 0);
    assert_eq!(ts.metric("lectern_live_streams").await, 0);
    a.stop().await;
}

/// Creates teacher `name` who views the computers named `LAB-*` only, and
/// logs in.
async fn lab_teacher(ts: &TestServer, admin: &str, name: &str) -> String {
    let (s, g) = ts
        .post(
            admin,
            "/api/v1/groups",
            json!({"name": "Lab", "kind": "computer", "priority": "low",
                   "members": [{"type": "hostname", "value": "LAB-*"}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let password = format!("{name}-password");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": password, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": ["devices.view"],
                   "group_access": {g["id"].to_string(): "view"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_cannot_make_live_a_computer_they_do_not_see() {
    let ts = start().await;
    let admin = ts.login().await;
    let teacher = lab_teacher(&ts, &admin, "ms.lab").await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let lab = start_agent(&ts, &enroll, "LAB-1", Some("amy")).await;
    let office = start_agent(&ts, &enroll, "OFFICE-1", Some("bob")).await;
    let mut ws = console_stream(&ts, &teacher).await;
    // The teacher's scope learns LAB-1's groups once its policy is resolved.
    send(&mut ws, json!({"watch": [lab.id()]})).await;
    frame_of_width(&mut ws, lab.id(), 320).await;

    send(
        &mut ws,
        json!({"watch": [lab.id(), office.id()], "live": office.id()}),
    )
    .await;
    synced(&mut ws).await;
    assert_eq!(ts.metric("lectern_live_views").await, 0);
    assert_eq!(ts.metric("lectern_live_streams").await, 0);
    // LAB-1's frames keep coming at thumbnail size; OFFICE-1 sends nothing.
    for _ in 0..3 {
        frame_of_width(&mut ws, lab.id(), 320).await;
    }
    let office_frames = async {
        loop {
            if let Next::Frame(id, _) = next(&mut ws).await {
                if id == office.id() {
                    return;
                }
            }
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(2), office_frames)
            .await
            .is_err(),
        "no picture of OFFICE-1"
    );

    // Their own computer they may show live.
    send(&mut ws, json!({"watch": [lab.id()], "live": lab.id()})).await;
    frame_of_width(&mut ws, lab.id(), LIVE_WIDTH).await;
    assert_eq!(ts.metric("lectern_live_streams").await, 1);
    lab.stop().await;
    office.stop().await;
}
