//! Servers on the cluster's shared store (issue 16 point 5): `init
//! --postgres` puts the school into PostgreSQL and writes `[cluster]`; a
//! second node started from a copy of the first's configuration and
//! certificate serves the same school: a console session made on one works
//! on the other, a device enrolled through one is listed by the other, and
//! a command sent on one is read back, with its outcome, on the other. The
//! command line (user add, backup) works on the shared store too.
//!
//! What does not cross nodes yet: live presence and commands to a device
//! held by another node (the bus; `lectern-bus`), so each command here is
//! sent on the node the agent is connected to.

mod cluster_common;
mod common;

use std::process::Command;

use cluster_common::{copy_node, init_on_pg, start_node, start_pg, stop_pg};
use common::{start_agent, wait_for, TestServer};
use lectern_agent::Desktop;
use serde_json::{json, Value};

/// Starts a node from a copy of `from`'s `server.toml` and certificate:
/// how a cluster's further nodes are set up.
async fn second_node(from: &TestServer) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    copy_node(&from.data_dir(), &dir.path().join("data"));
    start_node(dir).await
}

fn hostnames(devices: &Value) -> Vec<String> {
    devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_school_from_one_postgresql_store() {
    let (pg, params) = start_pg().await;
    let a = TestServer::start_on(Some(params.clone())).await;
    let toml = std::fs::read_to_string(a.data_dir().join("server.toml")).unwrap();
    assert!(toml.contains("[cluster]"), "{toml}");
    assert!(
        !a.data_dir().join("lectern.db").exists(),
        "no SQLite file beside a cluster's node"
    );
    let b = second_node(&a).await;
    assert_eq!(a.fingerprint, b.fingerprint);

    // One sign-in, both nodes.
    let token = a.login().await;
    assert_eq!(b.get(&token, "/api/v1/devices").await, json!([]));

    // A device enrolled through B with a token made on A; a lock sent on B
    // reaches it, and A reads the command and its outcome.
    let enroll = a.enrollment_token(&token, 5).await;
    let amy = start_agent(&b, &enroll, "LAB1-PC01", Some("amy")).await;
    wait_for(|| async {
        let d = b
            .get(&token, &format!("/api/v1/devices/{}", amy.id()))
            .await;
        (d["online"] == true).then_some(())
    })
    .await;
    assert_eq!(
        hostnames(&a.get(&token, "/api/v1/devices").await),
        ["LAB1-PC01"]
    );
    let rec = b
        .command(
            &token,
            &[amy.id()],
            json!({"type": "lock", "text": "Eyes front"}),
        )
        .await;
    assert!(amy.desktop.lock().unwrap().state().locked);
    let id = rec["id"].as_i64().unwrap();
    let seen_on_a = a.get(&token, &format!("/api/v1/commands/{id}")).await;
    assert_eq!(seen_on_a["summary"], rec["summary"]);
    assert_eq!(seen_on_a["targets"][0]["status"], "done");

    // The command line works on the shared store: a user added through A's
    // data directory signs in on B; a backup of the cluster is a database
    // file holding the device.
    let bin = env!("CARGO_BIN_EXE_lectern-server");
    let out = Command::new(bin)
        .args(["user-add", "--data-dir"])
        .arg(a.data_dir())
        .args([
            "--username",
            "ms.khan",
            "--password",
            "khan-password-1",
            "--role",
            "teacher",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let teacher = b.login_as("ms.khan", "khan-password-1").await;
    assert!(!teacher.is_empty());
    let backup = a.dir.path().join("cluster-backup.db");
    let out = Command::new(bin)
        .args(["backup", "--data-dir"])
        .arg(a.data_dir())
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lectern_store::verify_database(&backup).unwrap(),
        "Test School"
    );
    let copy = lectern_store::SqliteStore::open(&backup).unwrap();
    let school = lectern_store::Store::first_school(&copy).unwrap().unwrap();
    let devices = lectern_store::Store::list_devices(&copy, school.id).unwrap();
    assert_eq!(devices.len(), 1);

    // The shared store is initialized once: a second `init` is refused and
    // changes nothing.
    let again = tempfile::tempdir().unwrap();
    let refused = init_on_pg(&again.path().join("data"), &params)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("already initialized"), "{refused}");
    // Nor may a data directory that holds a server be made a cluster's
    // node by init (its certificate and key would be overwritten).
    let refused = init_on_pg(&a.data_dir(), &params)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("already holds a server"), "{refused}");
    // Restore writes SQLite: refused on a cluster's node, nothing changed.
    let out = Command::new(bin)
        .args(["restore"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(a.data_dir())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("node of a cluster"),
        "{said}"
    );
    assert!(!a.data_dir().join("lectern.db").exists());

    amy.stop().await;
    drop(b);
    drop(a);
    stop_pg(pg).await;
}
