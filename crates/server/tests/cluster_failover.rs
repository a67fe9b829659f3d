//! A gateway killed with commands in flight (issue 16 point 6): node B, a
//! separate `lectern-server serve` process, holds a device that never
//! acknowledges; a lock sent on node A goes to it through B; B is killed
//! (SIGKILL, no goodbye). When B's lease runs out, A fails the device's
//! part "gateway lost" instead of leaving it pending, and lists the device
//! offline; an agent that knows both gateways moves to A by itself and
//! takes A's commands there.

mod cluster_common;
mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use cluster_common::{copy_node, init_on_pg, join_bus, nats, start_node, start_pg, stop_pg};
use common::{enroll_as, raw_session, run_enrolled, wait_for, TestAgent, TestServer};
use lectern_agent::Desktop;
use lectern_proto::Capability;
use serde_json::{json, Value};

/// Node B as its own process, on `port`; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_lectern-server"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let p = Process(child);
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("node B did not listen on {port}");
}

fn target(rec: &Value) -> (String, String) {
    let t = &rec["targets"][0];
    (
        t["status"].as_str().unwrap_or_default().to_string(),
        t["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_on_a_killed_gateway_fails_gateway_lost_after_the_lease() {
    let (pg, params) = start_pg().await;
    let nats = nats::Nats::start(None);
    let a_dir = tempfile::tempdir().unwrap();
    let a_data = a_dir.path().join("data");
    init_on_pg(&a_data, &params).await.unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b_data = b_dir.path().join("data");
    copy_node(&a_data, &b_data);
    join_bus(&a_data, &nats, "node-a");
    join_bus(&b_data, &nats, "node-b");
    let a = start_node(a_dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b_process = serve(&b_data, port);
    // B as the agents see it: its address, the same certificate.
    let b = TestServer {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        fingerprint: a.fingerprint.clone(),
        server: None,
        dir: b_dir,
    };

    let token = a.login().await;
    let enroll = a.enrollment_token(&token, 2).await;
    // Ben's agent knows both gateways; it lands on B (tried again until
    // its random first pick is B).
    let mut ben_cred = enroll_as(&b, &enroll, "LAB2-PC02").await;
    ben_cred.server = format!("{},{}", b.addr, a.addr);
    let mut ben: Option<TestAgent> = None;
    for _ in 0..40 {
        let agent = run_enrolled(ben_cred.clone(), "LAB2-PC02", Some("ben")).await;
        if !a.server().state.hub.is_online(ben_cred.device_id) {
            ben = Some(agent);
            break;
        }
        agent.stop().await;
    }
    let ben = ben.expect("Ben's agent connected to B");
    let cred = enroll_as(&b, &enroll, "LAB2-PC01").await;
    // Connected to B, and silent: it never acknowledges.
    let _ws = raw_session(&b, &cred, "LAB2-PC01", vec![Capability::Lock]).await;
    let device = format!("/api/v1/devices/{}", cred.device_id);
    wait_for(|| async { (a.get(&token, &device).await["online"] == true).then_some(()) }).await;

    let (s, v) = a
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [cred.device_id], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["targets"][0]["status"], "pending", "sent on to B: {v}");
    let command = format!("/api/v1/commands/{}", v["id"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target(&a.get(&token, &command).await).0, "pending");

    // kill -9: no goodbye. After the lease, the part B carried fails.
    drop(b_process);
    let killed = std::time::Instant::now();
    let (status, reason) = wait_for(|| async {
        let t = target(&a.get(&token, &command).await);
        (t.0 != "pending").then_some(t)
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("failed", "gateway lost")
    );
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "not before the lease could run out"
    );
    wait_for(|| async { (a.get(&token, &device).await["online"] == false).then_some(()) }).await;

    // Ben's agent finds A by itself, within its backoff, and takes A's
    // commands there.
    wait_for(|| async {
        a.server()
            .state
            .hub
            .is_online(ben_cred.device_id)
            .then_some(())
    })
    .await;
    let rec = a
        .command(&token, &[ben_cred.device_id], json!({"type": "lock"}))
        .await;
    assert_eq!(rec["targets"][0]["status"], "done", "{rec}");
    assert!(ben.desktop.lock().unwrap().state().locked);
    ben.stop().await;

    drop(a);
    drop(nats);
    stop_pg(pg).await;
}
