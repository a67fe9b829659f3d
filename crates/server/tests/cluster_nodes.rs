//! Two nodes of a cluster on one PostgreSQL store and one NATS bus (issue
//! 16 point 5): each holds its own agents' connections, a console on
//! either sees every device online, and a lock sent on one node reaches
//! the agents connected to the other (one message to that gateway), whose
//! outcomes the sending node reads back; a group changed on one node
//! reaches the devices of the other; a computer revoked on one node loses
//! its connection to the other. A node that stops says so, and its devices
//! go offline on the other at once.

mod cluster_common;
mod common;

use cluster_common::{copy_node, init_on_pg, join_bus, nats, start_node, start_pg, stop_pg};
use common::{start_agent, wait_for};
use lectern_agent::ConnStatus;
use lectern_agent::Desktop;
use serde_json::{json, Value};

fn online(devices: &Value, id: i64) -> bool {
    devices
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == id && d["online"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_sent_on_one_node_reaches_the_agents_of_the_other() {
    let (pg, params) = start_pg().await;
    let nats = nats::Nats::start(None);

    // Node A: made by init, then put on the bus; node B: a copy of A's
    // configuration and certificate under its own name.
    let a_dir = tempfile::tempdir().unwrap();
    let a_data = a_dir.path().join("data");
    init_on_pg(&a_data, &params).await.unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b_data = b_dir.path().join("data");
    copy_node(&a_data, &b_data);
    join_bus(&a_data, &nats, "node-a");
    join_bus(&b_data, &nats, "node-b");
    let a = start_node(a_dir).await;
    let mut b = start_node(b_dir).await;

    let token = a.login().await;
    let enroll = a.enrollment_token(&token, 5).await;
    let amy = start_agent(&a, &enroll, "LAB1-PC01", Some("amy")).await;
    let ben = start_agent(&b, &enroll, "LAB1-PC02", Some("ben")).await;

    // Each node lists both devices online, whichever holds the connection.
    for node in [&a, &b] {
        wait_for(|| async {
            let devices = node.get(&token, "/api/v1/devices").await;
            (online(&devices, amy.id()) && online(&devices, ben.id())).then_some(())
        })
        .await;
    }

    // Dora logs in on Amy's computer (held by A): B, which decides access
    // to it by its user's groups, reads her from the store.
    amy.desktop.lock().unwrap().login("dora");
    wait_for(|| async {
        let d = b
            .get(&token, &format!("/api/v1/devices/{}", amy.id()))
            .await;
        (d["state"]["user"] == "dora").then_some(())
    })
    .await;
    amy.desktop.lock().unwrap().login("amy");

    // A lock sent on A: Amy's here, Ben's through B; both acknowledge.
    let rec = a
        .command(
            &token,
            &[amy.id(), ben.id()],
            json!({"type": "lock", "text": "Eyes front"}),
        )
        .await;
    let statuses: Vec<&str> = rec["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "done"], "{rec}");
    assert!(amy.desktop.lock().unwrap().state().locked);
    assert!(ben.desktop.lock().unwrap().state().locked);
    // And the other way: an unlock sent on B reaches Amy on A.
    let rec = b
        .command(&token, &[amy.id(), ben.id()], json!({"type": "unlock"}))
        .await;
    assert_eq!(rec["summary"]["done"], 2, "{rec}");
    assert!(!amy.desktop.lock().unwrap().state().locked);
    assert!(!ben.desktop.lock().unwrap().state().locked);

    // A group changed on A reaches Ben through B: B reads the school again
    // and pushes his computer's new policy ("Screens Locked" takes it).
    let groups = a.get(&token, "/api/v1/groups").await;
    let locked = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Screens Locked")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, v) = a
        .put(
            &token,
            &format!("/api/v1/groups/{locked}"),
            json!({"members": [{"type": "hostname", "value": "LAB1-PC02"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_for(|| async { ben.desktop.lock().unwrap().state().locked.then_some(()) }).await;
    assert!(!amy.desktop.lock().unwrap().state().locked, "not hers");

    // A computer revoked on A, connected to B: B closes its connection on
    // hearing of it, and no node lists it online any more.
    let carl = start_agent(&b, &enroll, "LAB1-PC03", Some("carl")).await;
    let mut carl = carl;
    wait_for(|| async {
        let devices = a.get(&token, "/api/v1/devices").await;
        online(&devices, carl.id()).then_some(())
    })
    .await;
    let r = a
        .client()
        .delete(a.url(&format!("/api/v1/devices/{}", carl.id())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    carl.wait_status(|s| matches!(s, ConnStatus::Refused(m) if m.contains("Revoked")))
        .await;
    for node in [&a, &b] {
        wait_for(|| async {
            let devices = node.get(&token, "/api/v1/devices").await;
            (!online(&devices, carl.id())).then_some(())
        })
        .await;
    }
    carl.stop().await;

    // B stops and says so: A lists Ben offline well before B's lease runs
    // out, and a command to him is "offline", not sent into the void.
    let ben_id = ben.id();
    b.server.take().unwrap().stop().await;
    ben.stop().await;
    wait_for(|| async {
        let devices = a.get(&token, "/api/v1/devices").await;
        (!online(&devices, ben_id)).then_some(())
    })
    .await;
    let (s, v) = a
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [ben_id], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["targets"][0]["status"], "offline", "{v}");

    amy.stop().await;
    drop(a);
    drop(nats);
    stop_pg(pg).await;
}
