//! Issue 10 loose end: the time a student has to answer a live-view question
//! is server.toml's `remote_view_ask_secs` (5 to 120, 10 by default), and the
//! device is told it in each `ViewRequest`. Real server, a raw agent session
//! over real TLS and WebSockets on loopback.

mod common;

use common::*;
use futures_util::SinkExt;
use lectern_proto::{AgentMsg, Capability, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Sets `remote_view` on the Entire Network group.
async fn ask_everyone(ts: &TestServer, admin: &str) {
    let groups = ts.get(admin, "/api/v1/groups").await;
    let entire = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Entire Network")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, v) = ts
        .client()
        .put(ts.url(&format!("/api/v1/groups/{entire}")))
        .bearer_auth(admin)
        .json(&json!({"settings": {"remote_view": "ask_then_deny"}}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 200, "{:?}", v.text().await);
}

/// A teacher who sees every device and may view, without the bypass right.
async fn teacher(ts: &TestServer, admin: &str) -> String {
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": "t", "password": "t-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let groups = ts.get(admin, "/api/v1/groups").await;
    let entire = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Entire Network")
        .unwrap()["id"]
        .to_string();
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": "t"},
                   "features": ["devices.view", "live_view"],
                   "group_access": {entire: "view"}, "bypass_privacy": false}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as("t", "t-password").await
}

/// The teacher opens the live view of a raw device, which answers "yes";
/// returns the question's `timeout_secs` and the view's decision.
async fn ask_once(ts: &TestServer) -> (u32, Value) {
    let admin = ts.login().await;
    ask_everyone(ts, &admin).await;
    let t = teacher(ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let cred = enroll_as(ts, &enroll, "PC-ASK").await;
    let mut ws = raw_session(ts, &cred, "PC-ASK", vec![Capability::Thumbnails]).await;
    // The server knows the device's policy once it has sent it.
    while !matches!(next_server_msg(&mut ws).await, ServerMsg::Policy { .. }) {}
    let path = format!("/api/v1/devices/{}/view", cred.device_id);
    let view = ts.post(&t, &path, json!({}));
    let device = async {
        loop {
            if let ServerMsg::ViewRequest {
                request_id,
                timeout_secs,
                ..
            } = next_server_msg(&mut ws).await
            {
                let answer = AgentMsg::ViewAnswer {
                    request_id,
                    allowed: Some(true),
                };
                ws.send(Message::text(answer.encode())).await.unwrap();
                return timeout_secs;
            }
        }
    };
    let ((_, decision), secs) = tokio::join!(view, device);
    (secs, decision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_answer_time_reaches_the_device() {
    let ts = TestServer::start_with_config(|c| {
        c.as_table_mut()
            .unwrap()
            .insert("remote_view_ask_secs".into(), toml::Value::Integer(45));
    })
    .await;
    let (secs, decision) = ask_once(&ts).await;
    assert_eq!(secs, 45);
    assert_eq!(
        decision,
        json!({"decision": "allowed", "reason": "student_allowed"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_student_has_ten_seconds() {
    let ts = TestServer::start().await;
    let (secs, _) = ask_once(&ts).await;
    assert_eq!(secs, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_time_out_of_range_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    lectern_server::init::init(&lectern_server::init::InitOptions {
        data_dir: data.clone(),
        school: "Test School".into(),
        admin: "admin".into(),
        password: Some("a-long-password".into()),
        cert: None,
        names: vec![],
        listen: None,
        postgres: None,
    })
    .unwrap();
    let path = data.join("server.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for bad in ["4", "121", "\"ten\""] {
        std::fs::write(&path, format!("remote_view_ask_secs = {bad}\n{text}")).unwrap();
        let err = match lectern_server::Server::start(&data, Some("127.0.0.1:0".parse().unwrap()))
            .await
        {
            Ok(_) => panic!("remote_view_ask_secs = {bad} was accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("remote_view_ask_secs"), "{bad}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_shows_the_question_for_the_configured_time() {
    use lectern_agent::Desktop;
    let ts = TestServer::start_with_config(|c| {
        c.as_table_mut()
            .unwrap()
            .insert("remote_view_ask_secs".into(), toml::Value::Integer(45));
    })
    .await;
    let admin = ts.login().await;
    ask_everyone(&ts, &admin).await;
    let t = teacher(&ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "PC-REAL", Some("amy")).await;
    // The agent knows its policy, so the server knows it too.
    wait_for(|| async { (a.desktop.lock().unwrap().state().policy_version > 0).then_some(()) })
        .await;
    a.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((true, std::time::Duration::from_millis(100))));
    let (_, decision) = ts
        .post(&t, &format!("/api/v1/devices/{}/view", a.id()), json!({}))
        .await;
    assert_eq!(
        decision,
        json!({"decision": "allowed", "reason": "student_allowed"})
    );
    assert_eq!(
        a.desktop.lock().unwrap().ask_timeouts(),
        [std::time::Duration::from_secs(45)]
    );
    a.stop().await;
}
