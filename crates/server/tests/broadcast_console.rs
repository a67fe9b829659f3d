//! Issue 12, point 4: broadcasting from the console. A student's screen is
//! relayed to the chosen devices only with the broadcast right on the targets,
//! the live-view right and the student's privacy rule on the source; frames
//! from any source are held to a size and a rate; and the receiving list says
//! what each target does, only for devices the caller may see.
//! Real server, real agents, real TLS and WebSockets on loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_agent::Desktop;
use lectern_server::broadcast::{MAX_FPS, MAX_FRAME_BYTES};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

fn rule_body(name: &str, features: &[&str], groups: &[(i64, &str)]) -> Value {
    let access: serde_json::Map<String, Value> = groups
        .iter()
        .map(|(g, a)| (g.to_string(), json!(a)))
        .collect();
    json!({"principal": {"type": "user", "value": name}, "features": features,
           "group_access": access, "bypass_privacy": false})
}

/// Creates teacher `name` with `features` and access to `groups`, logs in,
/// and returns the session token and the access rule's id.
async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[(i64, &str)],
) -> (String, i64) {
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
            rule_body(name, features, groups),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    (
        ts.login_as(name, &password).await,
        v["id"].as_i64().unwrap(),
    )
}

async fn set_remote_view(ts: &TestServer, admin: &str, mode: &str) {
    let entire = entire_network(ts, admin).await;
    let (s, v) = ts
        .put(
            admin,
            &format!("/api/v1/groups/{entire}"),
            json!({"settings": {"remote_view": mode}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// Waits until the agent got its first policy.
async fn policy_applied(a: &TestAgent) {
    wait_for(|| async {
        let v = a.desktop.lock().unwrap().state().policy_version;
        (v > 0).then_some(())
    })
    .await;
}

fn frames(a: &TestAgent) -> u64 {
    a.desktop.lock().unwrap().broadcast_frames().unwrap_or(0)
}

fn small_jpeg() -> Vec<u8> {
    lectern_agent::encode_jpeg(
        &lectern_agent::Frame {
            width: 16,
            height: 16,
            rgb: vec![200; 16 * 16 * 3],
        },
        80,
    )
    .unwrap()
}

/// A JPEG larger than the 64 KiB the stream used to allow: noise compresses
/// badly.
fn large_jpeg() -> Vec<u8> {
    let (w, h) = (400u32, 400u32);
    let mut x: u32 = 12345;
    let rgb = (0..w * h * 3)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let jpeg = lectern_agent::encode_jpeg(
        &lectern_agent::Frame {
            width: w,
            height: h,
            rgb,
        },
        95,
    )
    .unwrap();
    assert!(jpeg.len() > 100 * 1024, "{} bytes", jpeg.len());
    jpeg
}

fn upload(id: u64, jpeg: &[u8]) -> Message {
    Message::binary(lectern_proto::console::upload_frame(id, jpeg))
}

/// Sends a malformed upload and waits for its error: every message sent
/// before it has then been handled.
async fn synced(ws: &mut Console) {
    ws.send(Message::binary(vec![2u8, 0, 0])).await.unwrap();
    next_error(ws).await;
}

/// The next `error` message on the stream (within 20 s).
async fn next_error(ws: &mut Console) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "error" {
                        return v["error"].as_str().unwrap().to_string();
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an error message within 20 s")
}

async fn start_broadcast(
    ts: &TestServer,
    token: &str,
    devices: &[i64],
    source: Value,
) -> (u16, Value) {
    ts.post(
        token,
        "/api/v1/broadcasts",
        json!({"devices": devices, "source": source}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_screen_needs_both_rights_and_the_students_yes() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let entire = entire_network(&ts, &admin).await;
    let (t, _) = teacher(
        &ts,
        &admin,
        "khan",
        &["devices.view", "live_view", "command.broadcast"],
        &[(entire, "control")],
    )
    .await;
    let (no_live, _) = teacher(
        &ts,
        &admin,
        "lee",
        &["devices.view", "command.broadcast"],
        &[(entire, "control")],
    )
    .await;
    let (view_only, _) = teacher(
        &ts,
        &admin,
        "moss",
        &["devices.view", "live_view", "command.broadcast"],
        &[(entire, "view")],
    )
    .await;
    let enroll = ts.enrollment_token(&admin, 3).await;
    let src = start_agent(&ts, &enroll, "PC-SRC", Some("amy")).await;
    let t1 = start_agent(&ts, &enroll, "PC-T1", Some("ben")).await;
    let t2 = start_agent(&ts, &enroll, "PC-T2", Some("cat")).await;
    for a in [&src, &t1, &t2] {
        policy_applied(a).await;
    }
    let from_src = json!({"type": "device", "id": src.id()});

    // The broadcast right without the live-view right: the teacher's own
    // screen yes, a student's screen no.
    let (s, v) = start_broadcast(&ts, &no_live, &[t1.id()], from_src.clone()).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "missing_right", "{v}");
    assert_eq!(v["feature"], "live_view", "{v}");
    let (s, v) = start_broadcast(&ts, &no_live, &[t1.id()], json!({"type": "console"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        ts.delete(&no_live, &format!("/api/v1/broadcasts/{}", v["id"]))
            .await,
        204
    );
    // Seeing the targets is not enough: they must be controlled.
    let (s, v) = start_broadcast(&ts, &view_only, &[t1.id()], from_src.clone()).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control", "{v}");
    assert_eq!(v["devices"], json!([t1.id()]), "{v}");
    // The source is not a target.
    let (s, v) = start_broadcast(&ts, &t, &[t1.id(), src.id()], from_src.clone()).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("PC-SRC is the screen being shown"),
        "{v}"
    );

    // The student is asked, and says no: refused with a sentence and a reason.
    set_remote_view(&ts, &admin, "ask_then_deny").await;
    src.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((false, Duration::from_millis(100))));
    let (s, v) = start_broadcast(&ts, &t, &[t1.id(), t2.id()], from_src.clone()).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "student_denied", "{v}");
    assert_eq!(
        v["error"],
        "The student at PC-SRC said no to showing their screen."
    );
    assert_eq!(frames(&t1), 0);
    assert!(!t1.desktop.lock().unwrap().state().broadcast_shown);

    // The answer holds for that console session; a new one is asked afresh,
    // and this time the student says yes.
    let t_again = ts.login_as("khan", "khan-password").await;
    src.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((true, Duration::from_millis(100))));
    let (s, v) = start_broadcast(&ts, &t_again, &[t1.id(), t2.id()], from_src.clone()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["title"], "amy's screen");
    // The server relays the student's live frames to both targets.
    wait_for(|| async { (frames(&t1) >= 2 && frames(&t2) >= 2).then_some(()) }).await;
    assert_eq!(
        src.desktop.lock().unwrap().broadcast_frames(),
        None,
        "the source does not show itself"
    );
    assert_eq!(
        ts.delete(&t_again, &format!("/api/v1/broadcasts/{}", v["id"]))
            .await,
        204
    );
    wait_for(|| async { (!t1.desktop.lock().unwrap().state().broadcast_shown).then_some(()) })
        .await;
    for a in [src, t1, t2] {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_held_to_a_frame_size_and_rate_and_bad_ones_change_nothing() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let t1 = start_agent(&ts, &enroll, "PC-T1", Some("ben")).await;
    let (s, b) = start_broadcast(&ts, &admin, &[t1.id()], json!({"type": "console"})).await;
    assert_eq!(s, 201, "{b}");
    let bid = b["id"].as_u64().unwrap();
    let mut ws = console_stream(&ts, &admin).await;
    wait_for(|| async {
        t1.desktop
            .lock()
            .unwrap()
            .state()
            .broadcast_shown
            .then_some(())
    })
    .await;

    // A real screen's frame (well over 64 KiB) arrives.
    ws.send(upload(bid, &large_jpeg())).await.unwrap();
    wait_for(|| async { (frames(&t1) == 1).then_some(()) }).await;

    // Over the size limit: a clear error, the stream goes on, nothing passes.
    let mut huge = vec![0xFF, 0xD8];
    huge.resize(MAX_FRAME_BYTES + 1, 0);
    ws.send(upload(bid, &huge)).await.unwrap();
    let err = next_error(&mut ws).await;
    assert!(err.contains("at most"), "{err}");
    // Someone else's broadcast id: ignored.
    ws.send(upload(bid + 100, &small_jpeg())).await.unwrap();
    synced(&mut ws).await;
    assert_eq!(frames(&t1), 1);

    // A burst far beyond the rate: at most one second's worth at once, then
    // the rate; the rest is dropped, not queued.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = frames(&t1);
    let start = Instant::now();
    let jpeg = small_jpeg();
    for _ in 0..200 {
        ws.send(upload(bid, &jpeg)).await.unwrap();
    }
    synced(&mut ws).await;
    // Let frames in flight land.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = frames(&t1) - before;
    let elapsed = start.elapsed().as_secs_f64();
    let bound = f64::from(MAX_FPS) * (1.0 + elapsed);
    assert!(got >= 1, "some frames pass");
    assert!(
        (got as f64) <= bound,
        "{got} frames passed in {elapsed:.2} s (at most {bound:.0})"
    );

    // The stream still works for an honest frame.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = frames(&t1);
    ws.send(upload(bid, &jpeg)).await.unwrap();
    wait_for(|| async { (frames(&t1) > before).then_some(()) }).await;
    t1.stop().await;
}

/// The receiving list of broadcast `id` as `token` sees it: (hostname, state).
async fn receivers(ts: &TestServer, token: &str, id: u64) -> Vec<(String, String)> {
    let list = ts.get(token, "/api/v1/broadcasts").await;
    let b = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("broadcast {id} not listed: {list}"))
        .clone();
    b["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["hostname"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiving_list_says_what_each_target_does_for_visible_devices_only() {
    use lectern_proto::Capability;
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    let room_b = computer_group(&ts, &admin, "Room B", "ROOMB-*").await;
    let features = ["devices.view", "live_view", "command.broadcast"];
    let (t, rule) = teacher(
        &ts,
        &admin,
        "khan",
        &features,
        &[(room_a, "control"), (room_b, "control")],
    )
    .await;
    let enroll = ts.enrollment_token(&admin, 5).await;
    let showing = start_agent(&ts, &enroll, "ROOMA-PC01", Some("amy")).await;
    let leaving = start_agent(&ts, &enroll, "ROOMA-PC04", Some("dan")).await;
    let other_room = start_agent(&ts, &enroll, "ROOMB-PC01", Some("eve")).await;
    // A device whose agent cannot show broadcasts, and one that claims it
    // can but never puts it on screen.
    let old = enroll_as(&ts, &enroll, "ROOMA-PC02").await;
    let mut old_ws = raw_session(&ts, &old, "ROOMA-PC02", vec![Capability::Thumbnails]).await;
    let broken = enroll_as(&ts, &enroll, "ROOMA-PC03").await;
    let mut broken_ws = raw_session(&ts, &broken, "ROOMA-PC03", vec![Capability::Broadcast]).await;
    let ids = [
        showing.id(),
        old.device_id,
        broken.device_id,
        leaving.id(),
        other_room.id(),
    ];
    let (s, b) = start_broadcast(&ts, &t, &ids, json!({"type": "console"})).await;
    assert_eq!(s, 201, "{b}");
    let bid = b["id"].as_u64().unwrap();
    // The raw sessions are told to show it (and never say they do).
    for ws in [&mut old_ws, &mut broken_ws] {
        loop {
            if let lectern_proto::ServerMsg::BroadcastStart { title } = next_server_msg(ws).await {
                assert_eq!(title, "khan's screen");
                break;
            }
        }
    }
    leaving.stop().await;
    // PC03 may pass its grace already on a slow machine.
    let want_now = |pc03: &str| {
        pairs(&[
            ("ROOMA-PC01", "showing"),
            ("ROOMA-PC02", "not_supported"),
            ("ROOMA-PC03", pc03),
            ("ROOMA-PC04", "offline"),
            ("ROOMB-PC01", "showing"),
        ])
    };
    wait_for(|| async {
        let r = receivers(&ts, &t, bid).await;
        (r == want_now("starting") || r == want_now("failed")).then_some(())
    })
    .await;

    // The one that never shows it is failed once its grace has passed.
    wait_for(|| async {
        let r = receivers(&ts, &t, bid).await;
        (r[2] == ("ROOMA-PC03".to_string(), "failed".to_string())).then_some(())
    })
    .await;

    // The teacher loses Room B: its device leaves the list (and the
    // targets), though the broadcast, hers, is still listed.
    let (s, v) = ts
        .put(
            &admin,
            &format!("/api/v1/access-rules/{rule}"),
            rule_body("khan", &features, &[(room_a, "control")]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_for(|| async {
        let r = receivers(&ts, &t, bid).await;
        (!r.iter().any(|(h, _)| h.starts_with("ROOMB"))).then_some(())
    })
    .await;
    let list = ts.get(&t, "/api/v1/broadcasts").await;
    let targets: Vec<i64> = list[0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(!targets.contains(&other_room.id()), "{list}");
    assert_eq!(targets.len(), 4, "{list}");
    // The administrator still sees all five.
    assert_eq!(receivers(&ts, &admin, bid).await.len(), 5);

    // A colleague without any of these devices sees nothing of it.
    let (lee, _) = teacher(&ts, &admin, "lee", &features, &[(room_b, "control")]).await;
    assert_eq!(ts.get(&lee, "/api/v1/broadcasts").await, json!([]));
    showing.stop().await;
    other_room.stop().await;
}
