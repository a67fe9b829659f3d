//! A device is who it enrolled as: a host name it reports later is recorded
//! and shown, and moves it between computer groups only once an administrator
//! accepts it (or the school's setting accepts reported names). And commands
//! left pending on a session the device replaced end as failed, not pending
//! forever.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lectern_agent::Desktop;
use lectern_proto::{Capability, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A server whose `[devices.defaults]` are `defaults`.
async fn start_with_devices(defaults: Value) -> TestServer {
    TestServer::start_with_config(|c| set_device_defaults(c, defaults)).await
}

async fn lab2_mutes(ts: &TestServer, token: &str) {
    let (s, v) = ts
        .post(
            token,
            "/api/v1/groups",
            json!({"name": "Lab 2", "kind": "computer", "priority": "medium",
                "members": [{"type": "hostname", "value": "LAB2-*"}], "settings": {"sound_muted": true}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

async fn wait_policy(a: &TestAgent) {
    wait_for(|| async { (a.desktop.lock().unwrap().state().policy_version > 0).then_some(()) })
        .await;
}

fn muted(a: &TestAgent) -> bool {
    a.desktop.lock().unwrap().state().sound_muted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_host_name_moves_no_groups_until_an_administrator_accepts_it() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    lab2_mutes(&ts, &token).await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "LAB1-PC01").await;
    // The device now calls itself LAB2-PC01, hoping to join Lab 2.
    let agent = run_enrolled(cred.clone(), "LAB2-PC01", Some("amy")).await;
    let id = agent.id();
    wait_policy(&agent).await;
    assert!(
        !muted(&agent),
        "a reported name moved the device into Lab 2"
    );

    // Recorded and shown, not applied.
    let d = ts.get(&token, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(d["hostname"], "LAB1-PC01", "{d}");
    assert_eq!(d["reported_name"], "LAB2-PC01", "{d}");
    let list = ts.get(&token, "/api/v1/devices").await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap();
    assert_eq!(listed["reported_name"], "LAB2-PC01");
    // Reconnecting changes nothing.
    agent.stop().await;
    let agent = run_enrolled(cred, "LAB2-PC01", None).await;
    wait_policy(&agent).await;
    assert!(!muted(&agent));
    let d = ts.get(&token, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(d["hostname"], "LAB1-PC01", "{d}");

    // The administrator accepts it: the device joins Lab 2, audited.
    let (s, v) = ts
        .post(
            &token,
            &format!("/api/v1/devices/{id}/accept-name"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hostname"], "LAB2-PC01");
    assert_eq!(v["previous"], "LAB1-PC01");
    wait_for(|| async { muted(&agent).then_some(()) }).await;
    let d = ts.get(&token, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(d["hostname"], "LAB2-PC01", "{d}");
    assert_eq!(d["reported_name"], Value::Null, "{d}");
    let audit = ts.get(&token, "/api/v1/audit").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "device.rename"
            && e["actor"] == "admin"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("LAB1-PC01 → LAB2-PC01")));
    // Nothing more to accept.
    let (s, _) = ts
        .post(
            &token,
            &format!("/api/v1/devices/{id}/accept-name"),
            json!({}),
        )
        .await;
    assert_eq!(s, 409);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_may_accept_reported_names_automatically() {
    let ts = start_with_devices(json!({"accept_reported_names": true})).await;
    let token = ts.login().await;
    lab2_mutes(&ts, &token).await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "LAB1-PC07").await;
    let agent = run_enrolled(cred, "LAB2-PC07", None).await;
    wait_for(|| async { muted(&agent).then_some(()) }).await;
    let d = ts
        .get(&token, &format!("/api/v1/devices/{}", agent.id()))
        .await;
    assert_eq!(d["hostname"], "LAB2-PC07", "{d}");
    let audit = ts.get(&token, "/api/v1/audit").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "device.rename" && e["actor"] == "system"));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pending_on_a_replaced_session_fail_with_a_reason() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "RAW-PC01").await;
    let mut old = raw_session(&ts, &cred, "RAW-PC01", vec![Capability::Lock]).await;
    let (s, v) = ts
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [cred.device_id], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let command = v["id"].as_i64().unwrap();
    // The old session receives it and never acknowledges.
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = old.next().await {
            if let Message::Text(t) = m {
                if let Ok(ServerMsg::Command { command_id, .. }) = ServerMsg::decode(&t) {
                    assert_eq!(command_id as i64, command);
                    return;
                }
            }
        }
        panic!("the old session ended without the command");
    })
    .await
    .expect("the command reaches the device");
    // The device comes back on a new session before acknowledging.
    let _new = raw_session(&ts, &cred, "RAW-PC01", vec![Capability::Lock]).await;
    let rec = wait_for(|| async {
        let rec = ts.get(&token, &format!("/api/v1/commands/{command}")).await;
        (rec["summary"]["pending"] == 0).then_some(rec)
    })
    .await;
    assert_eq!(rec["targets"][0]["status"], "failed", "{rec}");
    assert!(
        rec["targets"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("reconnected"),
        "{rec}"
    );
    assert_eq!(ts.metric("lectern_commands_orphaned_total").await, 1);
}
