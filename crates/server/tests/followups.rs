//! Follow-ups to issue 9: a revoked device's pending commands end as failed,
//! the audit log shows a non-administrator only entries about devices they
//! may view (and their own actions), and a quiet console stream is kept open
//! by the server's pings past the connection idle timeout.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_agent::AgentStream;
use lectern_proto::{Capability, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Reads until a server message `want` accepts.
async fn next_command(ws: &mut AgentStream, want: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let msg = ServerMsg::decode(&t).unwrap();
                if want(&msg) {
                    return msg;
                }
            }
        }
        panic!("the session ended first");
    })
    .await
    .expect("the message within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pending_on_a_revoked_device_fail_with_a_reason() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "RAW-PC01").await;
    let mut agent = raw_session(&ts, &cred, "RAW-PC01", vec![Capability::Lock]).await;
    let (s, v) = ts
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [cred.device_id], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let command = v["id"].as_i64().unwrap();
    // The device receives it and never acknowledges.
    next_command(&mut agent, |m| matches!(m, ServerMsg::Command { .. })).await;
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/devices/{}", cred.device_id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let rec = wait_for(|| async {
        let rec = ts.get(&token, &format!("/api/v1/commands/{command}")).await;
        (rec["summary"]["pending"] == 0).then_some(rec)
    })
    .await;
    assert_eq!(rec["targets"][0]["status"], "failed", "{rec}");
    let reason = rec["targets"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("revoked"), "{rec}");
}

async fn group(ts: &TestServer, admin: &str, name: &str, pattern: &str) -> i64 {
    let (s, g) = ts
        .post(
            admin,
            "/api/v1/groups",
            json!({"name": name, "kind": "computer", "priority": "low",
            "members": [{"type": "hostname", "value": pattern}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

async fn audit(ts: &TestServer, token: &str, query: &str) -> Vec<Value> {
    ts.get(token, &format!("/api/v1/audit{query}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_shows_a_teacher_only_their_devices_and_their_own_actions() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room5 = group(&ts, &admin, "Room 5", "ROOM5-*").await;
    group(&ts, &admin, "Room 6", "ROOM6-*").await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let mine = enroll_as(&ts, &enroll, "ROOM5-PC01").await.device_id;
    let theirs = enroll_as(&ts, &enroll, "ROOM6-PC01").await.device_id;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/users",
            json!({"username": "t", "password": "teacher-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": "t"},
            "features": ["audit.view", "devices.view", "command.lock"],
            "group_access": {room5.to_string(): "control"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let t = ts.login_as("t", "teacher-password").await;
    // The administrator acts on both rooms and on both together (offline
    // devices: the commands fail at once, and are audited with their devices).
    for devices in [vec![mine], vec![theirs], vec![mine, theirs]] {
        ts.command(&admin, &devices, json!({"type": "lock"})).await;
    }
    ts.command(&t, &[mine], json!({"type": "lock"})).await;
    let all = audit(&ts, &admin, "?limit=1000").await;
    let t_sees = audit(&ts, &t, "?limit=1000").await;
    let ids =
        |v: &[Value]| -> BTreeSet<i64> { v.iter().map(|e| e["id"].as_i64().unwrap()).collect() };
    let allowed: BTreeSet<i64> = all
        .iter()
        .filter(|e| {
            let devices: Vec<i64> = serde_json::from_value(e["devices"].clone()).unwrap();
            e["actor"] == "t" || (!devices.is_empty() && devices.iter().all(|d| *d == mine))
        })
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids(&t_sees), allowed, "{t_sees:?}");
    // Room 5's lock by the administrator, and the teacher's own (their
    // login included) are there; nothing naming Room 6's computer is.
    assert!(t_sees.iter().any(|e| e["actor"] == "admin"), "{t_sees:?}");
    assert!(t_sees.iter().any(|e| e["actor"] == "t"), "{t_sees:?}");
    assert!(all.len() > t_sees.len() + 3, "{all:?}");
    let text = serde_json::to_string(&t_sees).unwrap();
    assert!(!text.contains("ROOM6"), "{text}");
    // Pages stay full and page on: one entry at a time gives the same list.
    let mut paged = vec![];
    let mut query = "?limit=1".to_string();
    loop {
        let page = audit(&ts, &t, &query).await;
        let Some(last) = page.last() else { break };
        query = format!("?limit=1&before={}", last["id"]);
        paged.extend(page);
    }
    assert_eq!(ids(&paged), ids(&t_sees));
    // The administrator still reads everything.
    assert!(
        all.iter().any(|e| e["devices"] == json!([theirs])),
        "{all:?}"
    );
}

/// A server whose connections are cut after `idle` quiet seconds, with
/// heartbeats and console pings every second.
async fn start_with_idle(idle: u64) -> TestServer {
    TestServer::start_with_config(|config| {
        let table = config.as_table_mut().unwrap();
        table.insert("heartbeat_secs".into(), 1.into());
        table.insert("console_ping_secs".into(), 1.into());
        let connections = table
            .entry("connections")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        connections
            .as_table_mut()
            .unwrap()
            .insert("idle_secs".into(), (idle as i64).into());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_console_stream_outlives_the_idle_timeout() {
    const IDLE: u64 = 4;
    let ts = start_with_idle(IDLE).await;
    let token = ts.login().await;
    let mut stream = console_stream(&ts, &token).await;
    // Nothing happens on the stream but the server's pings, for three idle
    // timeouts (reading answers them, as a browser does).
    let mut pings = 0;
    let quiet = tokio::time::Instant::now() + Duration::from_secs(3 * IDLE);
    loop {
        match tokio::time::timeout_at(quiet, stream.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(m))) => panic!("a quiet stream received {m:?}"),
            Ok(other) => panic!("the stream ended after {pings} pings: {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    // Still open and still serving.
    stream
        .send(Message::text(r#"{"watch": [1, 2"#))
        .await
        .unwrap();
    let reply = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert!(reply.contains("bad request"), "{reply}");
}
