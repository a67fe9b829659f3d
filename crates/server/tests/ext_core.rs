//! Issue 10 (browser client), commands: a command a device did not announce
//! the capability for fails at once with a reason, and is never sent to it
//! (no "done" for a Lock on a device that cannot lock); the new
//! `close_all_tabs` command is validated, scoped like `close_tab`, and a
//! desktop agent that cannot run it fails it with a clear reason. Real
//! server, real TLS, a raw WebSocket client speaking the agent protocol (as
//! the browser extension does) and the real headless agent.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_agent::{AgentStream, StoredCredential};
use lectern_proto::{
    AgentMsg, Auth, Capability, Command, CommandResult, Hello, ServerMsg, PROTOCOL_VERSION,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn enroll_device(ts: &TestServer, token: &str, host: &str) -> StoredCredential {
    let info = lectern_agent::local_device_info(Some(host.into()));
    lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, token, &info)
        .await
        .unwrap()
}

/// A raw session announcing `caps`, past the welcome.
async fn session_with(
    ts: &TestServer,
    cred: &StoredCredential,
    host: &str,
    caps: Vec<Capability>,
) -> AgentStream {
    let mut ws = lectern_agent::connect(&ts.addr.to_string(), &ts.fingerprint)
        .await
        .unwrap();
    let hello = AgentMsg::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        auth: Auth::Device {
            device_id: cred.device_id,
            secret: cred.secret.clone(),
        },
        info: lectern_agent::local_device_info(Some(host.into())),
        capabilities: caps,
        state: Default::default(),
    });
    ws.send(Message::text(hello.encode())).await.unwrap();
    match next_msg(&mut ws).await {
        ServerMsg::Welcome { .. } => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

async fn next_msg(ws: &mut AgentStream) -> ServerMsg {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame from the server within 20 s")
            .expect("the session is open")
            .expect("a good frame");
        if let Message::Text(t) = m {
            return ServerMsg::decode(&t).unwrap();
        }
    }
}

/// The next command the device receives (policy and other frames skipped).
async fn next_command(ws: &mut AgentStream) -> (u64, Command) {
    loop {
        if let ServerMsg::Command {
            command_id,
            command,
        } = next_msg(ws).await
        {
            return (command_id, command);
        }
    }
}

/// Posts a command and returns (command id, the device's target right away).
async fn post(ts: &TestServer, token: &str, device: i64, command: serde_json::Value) -> i64 {
    let (s, v) = ts
        .post(
            token,
            "/api/v1/commands",
            json!({"devices": [device], "command": command}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn outcome(ts: &TestServer, token: &str, id: i64) -> (String, String) {
    wait_for(|| async {
        let rec = ts.get(token, &format!("/api/v1/commands/{id}")).await;
        let t = &rec["targets"][0];
        (t["status"] != "pending").then(|| {
            (
                t["status"].as_str().unwrap_or_default().to_string(),
                t["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_a_device_cannot_run_fail_before_sending() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    // Like the browser extension in standalone mode: lock, no logout.
    let cred = enroll_device(&ts, &enroll, "CB-1").await;
    let mut ext = session_with(
        &ts,
        &cred,
        "CB-1",
        vec![Capability::Message, Capability::Lock, Capability::Tabs],
    )
    .await;
    let id = cred.device_id;

    let logout = post(&ts, &token, id, json!({"type": "logout"})).await;
    let (status, reason) = outcome(&ts, &token, logout).await;
    assert_eq!(status, "failed");
    assert!(reason.contains("cannot end the user's session"), "{reason}");
    // Never sent: the next command the device sees is the lock that follows.
    let lock = post(&ts, &token, id, json!({"type": "lock", "text": "Eyes up"})).await;
    let (cid, cmd) = next_command(&mut ext).await;
    assert_eq!(cid, lock as u64);
    assert_eq!(
        cmd,
        Command::Lock {
            text: Some("Eyes up".into()),
            minutes: None
        }
    );
    let ack = AgentMsg::Ack {
        command_id: cid,
        result: CommandResult::Done,
        state: Default::default(),
    };
    ext.send(Message::text(ack.encode())).await.unwrap();
    assert_eq!(outcome(&ts, &token, lock).await.0, "done");

    // A device that announced no lock gets no lock.
    let cred2 = enroll_device(&ts, &enroll, "NOLOCK").await;
    let mut plain = session_with(&ts, &cred2, "NOLOCK", vec![Capability::Message]).await;
    let lock2 = post(&ts, &token, cred2.device_id, json!({"type": "lock"})).await;
    let (status, reason) = outcome(&ts, &token, lock2).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("failed", "this device cannot lock the screen")
    );
    let msg = post(
        &ts,
        &token,
        cred2.device_id,
        json!({"type": "message", "text": "hi"}),
    )
    .await;
    assert_eq!(
        next_command(&mut plain).await.0,
        msg as u64,
        "the lock was never sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_tabs_is_a_tabs_command_that_desktop_agents_decline_clearly() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let agent = start_agent(&ts, &enroll, "PC-1", Some("amy")).await;
    let rec = ts
        .command(&token, &[agent.id()], json!({"type": "close_all_tabs"}))
        .await;
    let t = &rec["targets"][0];
    assert_eq!(t["status"], "failed", "{rec}");
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("closing all browser tabs"),
        "{rec}"
    );
    // The standalone extension receives it as a plain tagged command.
    let cred = enroll_device(&ts, &enroll, "CB-2").await;
    let mut ext = session_with(&ts, &cred, "CB-2", vec![Capability::Tabs]).await;
    let id = post(
        &ts,
        &token,
        cred.device_id,
        json!({"type": "close_all_tabs"}),
    )
    .await;
    let (cid, cmd) = next_command(&mut ext).await;
    assert_eq!((cid, cmd), (id as u64, Command::CloseAllTabs));
    assert_eq!(
        lectern_policy::access::command_feature(&Command::CloseAllTabs),
        "command.tabs"
    );
    agent.stop().await;
}
