//! Issue 12 point 3, remote control on the server: the right, privacy, one
//! controller per device, Ctrl+Alt+Del refused, input limits, audit. Real
//! server over TLS, consoles on the real stream, raw agent sessions that
//! show exactly what the server sends a device.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_agent::AgentStream;
use lectern_proto::control::InputEvent;
use lectern_proto::{Capability, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Console, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next `{"type":"control"}` answer on a console stream (frames and
/// other events skipped).
async fn control_reply(ws: &mut Console) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an answer within 20 s")
            .expect("the stream is open")
            .expect("a good message");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "control" || v["type"] == "error" {
                return v;
            }
        }
    }
}

/// Reads what the server sends the device until `want` picks something.
async fn agent_gets<T>(ws: &mut AgentStream, want: impl Fn(ServerMsg) -> Option<T>) -> T {
    loop {
        if let Some(v) = want(next_server_msg(ws).await) {
            return v;
        }
    }
}

/// The next input the device receives (other messages skipped).
async fn agent_input(ws: &mut AgentStream) -> Vec<InputEvent> {
    agent_gets(ws, |m| match m {
        ServerMsg::ControlInput { events } => Some(events),
        _ => None,
    })
    .await
}

async fn agent_stop(ws: &mut AgentStream) {
    agent_gets(ws, |m| matches!(m, ServerMsg::ControlStop).then_some(())).await
}

/// A raw device session with (or without) the remote-control capability,
/// once its policy is known to the server.
async fn device(ts: &TestServer, admin: &str, host: &str, control: bool) -> (i64, AgentStream) {
    let enroll = ts.enrollment_token(admin, 1).await;
    let cred = enroll_as(ts, &enroll, host).await;
    let mut caps = vec![Capability::Thumbnails];
    if control {
        caps.push(Capability::RemoteControl);
    }
    let mut ws = raw_session(ts, &cred, host, caps).await;
    agent_gets(&mut ws, |m| {
        matches!(m, ServerMsg::Policy { .. }).then_some(())
    })
    .await;
    (cred.device_id, ws)
}

/// Teacher `name` with `features` and `access` to Entire Network, logged in.
async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    access: &str,
) -> String {
    let password = format!("{name}-password");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": password, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let entire = entire_network(ts, admin).await;
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features,
                   "group_access": {entire.to_string(): access}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

const CONTROL: &[&str] = &["devices.view", "live_view", "command.remote_control"];

/// A console showing `device` live.
async fn live_console(ts: &TestServer, token: &str, device: i64) -> Console {
    let mut ws = console_stream(ts, token).await;
    send(&mut ws, json!({"watch": [device], "live": device})).await;
    ws
}

async fn take(ws: &mut Console, device: i64) -> Value {
    send(ws, json!({"type": "control", "device": device, "on": true})).await;
    control_reply(ws).await
}

fn moves(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"t": "move", "x": i, "y": i}))
        .collect()
}

async fn audit(ts: &TestServer, admin: &str, action: &str) -> Vec<Value> {
    ts.get(admin, "/api/v1/audit?limit=1000")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_sends_checked_input_refuses_ctrl_alt_del_and_ends_with_the_live_view() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (id, mut agent) = device(&ts, &admin, "PC-1", true).await;
    let mut ws = live_console(&ts, &admin, id).await;

    let r = take(&mut ws, id).await;
    assert_eq!(r["on"], true, "{r}");
    let controller = agent_gets(&mut agent, |m| match m {
        ServerMsg::ControlStart { controller, .. } => Some(controller),
        _ => None,
    })
    .await;
    assert_eq!(controller, "admin");

    send(
        &mut ws,
        json!({"type": "input", "device": id, "events": [
            {"t": "move", "x": 100, "y": 200},
            {"t": "button", "button": "left", "down": true},
            {"t": "key", "code": "Delete", "mods": {"ctrl": true, "alt": true}},
            {"t": "key", "code": "KeyA", "mods": {"shift": true}},
        ]}),
    )
    .await;
    let r = control_reply(&mut ws).await;
    assert!(r["error"].as_str().unwrap().contains("Ctrl+Alt+Del"), "{r}");
    assert_eq!(r["on"], true, "a refused key does not end control");
    let got = agent_input(&mut agent).await;
    assert_eq!(got.len(), 3, "everything but Ctrl+Alt+Del: {got:?}");
    assert!(got.iter().all(|e| e.evdev() != Some(111)));
    assert_eq!(ts.metric("lectern_control_input_refused_total").await, 1);
    assert_eq!(ts.metric("lectern_control_input_sent_total").await, 3);
    assert_eq!(ts.metric("lectern_control_sessions").await, 1);

    // The console stops showing the device live: control ends, the device
    // is told, and input is refused from then on.
    send(&mut ws, json!({"watch": [id]})).await;
    let r = control_reply(&mut ws).await;
    assert_eq!(r["on"], false, "{r}");
    agent_stop(&mut agent).await;
    send(
        &mut ws,
        json!({"type": "input", "device": id, "events": moves(1)}),
    )
    .await;
    let r = control_reply(&mut ws).await;
    assert_eq!(r["error"], "You are not controlling this computer.");
    assert_eq!(ts.metric("lectern_control_sessions").await, 0);

    let started = audit(&ts, &admin, "control.start").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        (&started[0]["actor"], &started[0]["outcome"]),
        (&json!("admin"), &json!("ok"))
    );
    assert_eq!(started[0]["devices"], json!([id]));
    let stopped = audit(&ts, &admin, "control.stop").await;
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["detail"], "stopped viewing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_at_a_time_and_control_ends_with_the_console() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let t = teacher(&ts, &admin, "ms.smith", CONTROL, "control").await;
    let (id, mut agent) = device(&ts, &admin, "PC-1", true).await;
    let mut first = live_console(&ts, &admin, id).await;
    let mut second = live_console(&ts, &t, id).await;

    assert_eq!(take(&mut first, id).await["on"], true);
    let r = take(&mut second, id).await;
    assert_eq!(r["on"], false);
    assert_eq!(r["error"], "admin is controlling this computer.");
    // Input from the console that did not take control goes nowhere.
    send(
        &mut second,
        json!({"type": "input", "device": id, "events": moves(1)}),
    )
    .await;
    assert_eq!(
        control_reply(&mut second).await["error"],
        "You are not controlling this computer."
    );
    send(
        &mut first,
        json!({"type": "input", "device": id, "events": moves(2)}),
    )
    .await;
    assert_eq!(
        agent_input(&mut agent).await.len(),
        2,
        "only the controller's"
    );

    // The controller's console closes: control ends; the other may take it.
    first.close(None).await.unwrap();
    drop(first);
    agent_stop(&mut agent).await;
    assert_eq!(take(&mut second, id).await["on"], true);
    let who = agent_gets(&mut agent, |m| match m {
        ServerMsg::ControlStart { controller, .. } => Some(controller),
        _ => None,
    })
    .await;
    assert_eq!(who, "ms.smith");
    let stopped = audit(&ts, &admin, "control.stop").await;
    assert!(
        stopped.iter().any(|e| e["detail"] == "console closed"),
        "{stopped:?}"
    );

    // The device disconnects: control ends with it (audited), and a new
    // session of the device starts uncontrolled.
    drop(agent);
    wait_for(|| async {
        let s = audit(&ts, &admin, "control.stop").await;
        s.iter()
            .any(|e| e["detail"] == "device disconnected")
            .then_some(())
    })
    .await;
    assert_eq!(ts.metric("lectern_control_sessions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_needs_the_right_control_access_and_a_capable_device() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let no_feature = teacher(
        &ts,
        &admin,
        "no.feature",
        &["devices.view", "live_view"],
        "control",
    )
    .await;
    let view_only = teacher(&ts, &admin, "view.only", CONTROL, "view").await;
    let (id, mut agent) = device(&ts, &admin, "PC-1", true).await;
    let (old, _old_agent) = device(&ts, &admin, "PC-OLD", false).await;

    for token in [&no_feature, &view_only] {
        let mut ws = live_console(&ts, token, id).await;
        let r = take(&mut ws, id).await;
        assert_eq!(r["on"], false);
        assert_eq!(
            r["error"],
            "You can't take control of this computer. Ask your administrator."
        );
    }
    let denied = audit(&ts, &admin, "control.start").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(denied.iter().all(|e| e["outcome"] == "denied"));

    let mut ws = live_console(&ts, &admin, old).await;
    let r = take(&mut ws, old).await;
    assert_eq!(r["error"], "This computer can't be controlled remotely.");
    // Not shown live: refused too.
    send(&mut ws, json!({"watch": [id, old], "live": old})).await;
    let r = take(&mut ws, id).await;
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("You can take control only while"),
        "{r}"
    );

    // Nothing reached the device.
    send(&mut ws, json!({"watch": [id], "live": id})).await;
    assert_eq!(take(&mut ws, id).await["on"], true);
    agent_gets(&mut agent, |m| match m {
        ServerMsg::ControlStart { .. } => Some(()),
        ServerMsg::ControlInput { .. } | ServerMsg::ControlStop => panic!("unexpected {m:?}"),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_screen_cannot_be_controlled_without_the_bypass_right() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let t = teacher(&ts, &admin, "ms.smith", CONTROL, "control").await;
    let entire = entire_network(&ts, &admin).await;
    let (s, v) = ts
        .client()
        .put(ts.url(&format!("/api/v1/groups/{entire}")))
        .bearer_auth(&admin)
        .json(&json!({"settings": {"remote_view": "deny"}}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 200, "{:?}", v.text().await);
    let (id, mut agent) = device(&ts, &admin, "PC-1", true).await;

    let mut ws = live_console(&ts, &t, id).await;
    let r = take(&mut ws, id).await;
    assert_eq!(r["on"], false);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("student may have declined"),
        "{r}"
    );

    // The administrator's bypass right is audited and lets them; the device
    // is told, so it can check its own policy too.
    let mut ws = live_console(&ts, &admin, id).await;
    assert_eq!(take(&mut ws, id).await["on"], true);
    let bypass = agent_gets(&mut agent, |m| match m {
        ServerMsg::ControlStart { privacy_bypass, .. } => Some(privacy_bypass),
        _ => None,
    })
    .await;
    assert!(bypass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_is_limited_per_message_and_per_second() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (id, mut agent) = device(&ts, &admin, "PC-1", true).await;
    let mut ws = live_console(&ts, &admin, id).await;
    assert_eq!(take(&mut ws, id).await["on"], true);

    // Over 64 events in one message: refused whole.
    send(
        &mut ws,
        json!({"type": "input", "device": id, "events": moves(65)}),
    )
    .await;
    let r = control_reply(&mut ws).await;
    assert_eq!(r["type"], "error");
    assert!(r["error"].as_str().unwrap().contains("at most 64"), "{r}");

    // 8 × 64 events at once: the burst (200) goes through, the rest is
    // dropped and counted (100 a second refill while they arrive: the
    // bounds below follow the time they took, so a slow machine passes).
    let started = std::time::Instant::now();
    for _ in 0..8 {
        send(
            &mut ws,
            json!({"type": "input", "device": id, "events": moves(64)}),
        )
        .await;
    }
    send(
        &mut ws,
        json!({"type": "control", "device": id, "on": false}),
    )
    .await;
    assert_eq!(control_reply(&mut ws).await["on"], false);
    let took = started.elapsed().as_secs_f64();
    let mut received = 0;
    loop {
        match next_server_msg(&mut agent).await {
            ServerMsg::ControlInput { events } => received += events.len(),
            ServerMsg::ControlStop => break,
            _ => {}
        }
    }
    let sent = ts.metric("lectern_control_input_sent_total").await;
    let dropped = ts.metric("lectern_control_input_dropped_total").await;
    assert_eq!(received as u64, sent);
    assert_eq!(sent + dropped, 8 * 64);
    let most = 200 + (100.0 * took).ceil() as u64;
    assert!((200..=most).contains(&sent), "sent {sent} in {took:.2} s");
    if most < 8 * 64 {
        assert!(dropped > 0, "the excess is dropped");
    }
    let stopped = audit(&ts, &admin, "control.stop").await;
    assert_eq!(stopped[0]["detail"], "stopped by the teacher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_shows_who_controls_injects_checked_input_and_stops_with_the_console() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "PC-REAL", Some("amy")).await;
    let mut ws = live_console(&ts, &admin, a.id()).await;
    // Until the server knows the device's policy it cannot allow pictures.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while take(&mut ws, a.id()).await["on"] != true {
        assert!(
            tokio::time::Instant::now() < deadline,
            "control taken within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let desktop = a.desktop.clone();
    let controller = || desktop.lock().unwrap().controller().map(str::to_string);
    wait_for(|| async { (controller().as_deref() == Some("admin")).then_some(()) }).await;

    send(
        &mut ws,
        json!({"type": "input", "device": a.id(), "events": [
            {"t": "move", "x": 1, "y": 2},
            {"t": "key", "code": "Delete", "mods": {"ctrl": true, "alt": true}},
            {"t": "key", "code": "KeyA"},
        ]}),
    )
    .await;
    wait_for(|| async { (desktop.lock().unwrap().injected().len() == 2).then_some(()) }).await;
    let injected = desktop.lock().unwrap().injected().to_vec();
    assert_eq!(injected[0], InputEvent::Move { x: 1, y: 2 });
    assert_eq!(injected[1].evdev(), Some(30), "KeyA; never Ctrl+Alt+Del");

    // The console goes: the student's notice goes with it.
    ws.close(None).await.unwrap();
    drop(ws);
    wait_for(|| async { controller().is_none().then_some(()) }).await;
    a.stop().await;
}

async fn set_remote_view(ts: &TestServer, admin: &str, mode: &str) {
    let entire = entire_network(ts, admin).await;
    let r = ts
        .client()
        .put(ts.url(&format!("/api/v1/groups/{entire}")))
        .bearer_auth(admin)
        .json(&json!({"settings": {"remote_view": mode}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_who_declines_the_view_cannot_be_controlled() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    set_remote_view(&ts, &admin, "ask_then_deny").await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "PC-ASK", Some("amy")).await;
    // The console session's answer is the one its live view and control use.
    let ask = |token: String| {
        let (ts, id) = (&ts, a.id());
        async move {
            ts.post(&token, &format!("/api/v1/devices/{id}/view"), json!({}))
                .await
                .1["reason"]
                .clone()
        }
    };

    a.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((false, Duration::from_millis(100))));
    let t = teacher(&ts, &admin, "ms.smith", CONTROL, "control").await;
    assert_eq!(ask(t.clone()).await, "student_denied");
    let mut ws = live_console(&ts, &t, a.id()).await;
    let r = take(&mut ws, a.id()).await;
    assert_eq!(r["on"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("declined"), "{r}");
    assert!(a.desktop.lock().unwrap().controller().is_none());

    // Another session whose question the student allows may take control.
    a.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((true, Duration::from_millis(100))));
    let t2 = ts.login_as("ms.smith", "ms.smith-password").await;
    assert_eq!(ask(t2.clone()).await, "student_allowed");
    let mut ws = live_console(&ts, &t2, a.id()).await;
    assert_eq!(take(&mut ws, a.id()).await["on"], true);
    let desktop = a.desktop.clone();
    wait_for(|| async { (desktop.lock().unwrap().controller() == Some("ms.smith")).then_some(()) })
        .await;
    a.stop().await;
}
