//! Issue 13.5 (inventory) and 13.6 (power), through a real server and real
//! agents over TLS/WebSocket.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use lectern_agent::inventory::{FileInventory, InventoryRoots};
use lectern_agent::{run_agent, AgentConfig, ConnStatus, HeadlessDesktop, StoredCredential};
use lectern_proto::{AgentMsg, ErrorCode, RefusedFrame, ServerMsg};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// Writes a machine's files under `root` (sysfs, procfs, etc, dpkg).
fn fixture(root: &Path, model: &str, packages: &[(&str, &str)]) {
    let w = |p: &str, text: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    w("sys/class/dmi/id/sys_vendor", "Dell Inc.\n");
    w("sys/class/dmi/id/product_name", &format!("{model}\n"));
    w("sys/class/dmi/id/product_serial", "SN-4711\n");
    w("sys/class/net/eth0/address", "AA:BB:CC:00:11:22\n");
    w("sys/class/net/lo/address", "00:00:00:00:00:00\n");
    w("sys/class/power_supply/BAT0/energy_full", "40000000\n");
    w(
        "sys/class/power_supply/BAT0/energy_full_design",
        "50000000\n",
    );
    w("sys/class/power_supply/BAT0/cycle_count", "321\n");
    w("sys/class/power_supply/AC/online", "1\n");
    w(
        "proc/cpuinfo",
        "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i5-8350U\n\nprocessor\t: 1\nmodel name\t: Intel(R) Core(TM) i5-8350U\n",
    );
    w(
        "proc/meminfo",
        "MemTotal:        8000000 kB\nMemFree: 1 kB\n",
    );
    w(
        "proc/mounts",
        "proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n",
    );
    w("proc/stat", "cpu 1 2 3\nbtime 1700000000\n");
    w("proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
    w(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    let status: String = packages
        .iter()
        .map(|(n, v)| format!("Package: {n}\nStatus: install ok installed\nVersion: {v}\n\n"))
        .collect();
    w("dpkg/status", &status);
}

fn roots(root: &Path) -> InventoryRoots {
    InventoryRoots {
        enabled: true,
        sys: root.join("sys"),
        proc: root.join("proc"),
        etc: root.join("etc"),
        dpkg: root.join("dpkg"),
        addresses: Some(vec![("eth0".into(), "192.168.40.17/24".into())]),
    }
}

/// A headless agent reporting the inventory under `root`; returns its stop
/// switch, task and the inventory source (to say it changed).
async fn inventory_agent(
    credential: StoredCredential,
    host: &str,
    root: &Path,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<FileInventory>,
) {
    let source = FileInventory::new(roots(root), false);
    let mut desktop = HeadlessDesktop::new(host, Some("amy".into()));
    desktop.set_inventory(source.clone());
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut status) = watch::channel(ConnStatus::Connecting);
    let config = AgentConfig {
        credential,
        info: lectern_agent::local_device_info(Some(host.into())),
        policy_file: None,
        evidence_frames: 0,
        scan_keywords: false,
        school_choice: Default::default(),
    };
    let task = tokio::spawn(run_agent(
        config,
        Arc::new(Mutex::new(desktop)),
        stop_rx,
        Some(tx),
    ));
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| *s == ConnStatus::Connected),
    )
    .await
    .expect("agent connects")
    .unwrap();
    (stop, task, source)
}

async fn get_status(ts: &TestServer, token: &str, path: &str) -> (u16, String) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A teacher with `features` and view access to `group`.
async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    group: i64,
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
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features,
                   "group_access": {group.to_string(): "view"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

/// Proves: the agent reads hardware, OS, kernel, packages, network and
/// battery from a fixture tree; sends only a hash when nothing changed; the
/// server stores it per device; search, one device and CSV work, and the
/// CSV defuses formulas; a change is sent again.
#[tokio::test]
async fn inventory_is_reported_on_change_and_searchable() {
    let ts = TestServer::start_with_config(|c| {
        set_device_defaults(c, json!({"inventory_every_secs": 0}))
    })
    .await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let dir = tempfile::tempdir().unwrap();
    fixture(
        dir.path(),
        "=HYPERLINK(\"x\")",
        &[("firefox-esr", "115.5.0esr-1"), ("bash", "5.2.15-2")],
    );
    let cred = enroll_as(&ts, &token, "LAB1-PC01").await;
    let id = cred.device_id;
    let (stop, task, source) = inventory_agent(cred.clone(), "LAB1-PC01", dir.path()).await;

    let list = wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/inventory").await;
        (v.as_array()?.len() == 1).then_some(v)
    })
    .await;
    let row = &list[0];
    assert_eq!(row["device_id"], id);
    assert_eq!(row["hostname"], "LAB1-PC01");
    assert_eq!(row["serial"], "SN-4711");
    assert_eq!(row["vendor"], "Dell Inc.");
    assert_eq!(row["cpu_count"], 2);
    assert_eq!(row["memory_bytes"], 8_000_000u64 * 1024);
    assert_eq!(row["os"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(row["kernel"], "6.1.0-13-amd64");
    assert_eq!(row["boot_time_ms"], 1_700_000_000_000i64);
    assert!(row["uptime_secs"].as_i64().unwrap() > 0);
    assert_eq!(row["macs"], json!(["aa:bb:cc:00:11:22"]));
    assert_eq!(row["addresses"], json!(["192.168.40.17/24"]));
    assert_eq!(row["battery_health"], 80);
    assert_eq!(row["packages"], 2);

    let one = ts.get(&admin, &format!("/api/v1/inventory/{id}")).await;
    assert_eq!(one["report"]["packages"][0]["name"], "bash");
    assert_eq!(one["report"]["batteries"][0]["cycle_count"], 321);
    assert_eq!(one["report"]["disks"][0]["mount"], "/");

    // Search across fields: a package, a MAC, an address; and a miss.
    for q in ["FIREFOX", "aa:bb:cc", "192.168.40", "lab1"] {
        let v = ts.get(&admin, &format!("/api/v1/inventory?q={q}")).await;
        assert_eq!(v.as_array().unwrap().len(), 1, "{q}");
    }
    let v = ts.get(&admin, "/api/v1/inventory?q=libreoffice").await;
    assert!(v.as_array().unwrap().is_empty());

    let (s, csv) = get_status(&ts, &admin, "/api/v1/inventory.csv").await;
    assert_eq!(s, 200);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("device_id,hostname,"));
    let line = lines.next().unwrap();
    assert!(
        line.contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "formula not defused or badly quoted: {line}"
    );

    // A package installed: the agent hears of it and the report follows.
    fixture(
        dir.path(),
        "OptiPlex 7070",
        &[
            ("firefox-esr", "115.5.0esr-1"),
            ("bash", "5.2.15-2"),
            ("libreoffice", "4:7.4"),
        ],
    );
    source.poke();
    wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/inventory?q=libreoffice").await;
        (v.as_array()?.len() == 1).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = task.await;

    // Reconnecting with the same inventory sends only the hash: the
    // stored report is not replaced.
    let before = ts.get(&admin, &format!("/api/v1/inventory/{id}")).await["received_at"].clone();
    let (stop, task, _) = inventory_agent(cred, "LAB1-PC01", dir.path()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = ts.get(&admin, &format!("/api/v1/inventory/{id}")).await["received_at"].clone();
    assert_eq!(before, after, "an unchanged inventory was sent again");
    let _ = stop.send(true);
    let _ = task.await;
}

/// Proves: inventory routes need `inventory.view` and show only devices the
/// caller may see.
#[tokio::test]
async fn inventory_is_scoped_and_needs_its_right() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), "OptiPlex", &[("bash", "5")]);
    let a = enroll_as(&ts, &token, "LAB1-PC01").await;
    let b = enroll_as(&ts, &token, "LAB2-PC01").await;
    let (a_id, b_id) = (a.device_id, b.device_id);
    let (s1, t1, _) = inventory_agent(a, "LAB1-PC01", dir.path()).await;
    let (s2, t2, _) = inventory_agent(b, "LAB2-PC01", dir.path()).await;
    wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/inventory").await;
        (v.as_array()?.len() == 2).then_some(())
    })
    .await;
    let lab1 = computer_group(&ts, &admin, "Lab 1", "LAB1-*").await;
    let viewer = teacher(
        &ts,
        &admin,
        "ms.khan",
        &["devices.view", "inventory.view"],
        lab1,
    )
    .await;
    let v = ts.get(&viewer, "/api/v1/inventory").await;
    let ids: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a_id]);
    let (s, _) = get_status(&ts, &viewer, &format!("/api/v1/inventory/{b_id}")).await;
    assert_eq!(s, 404);
    let (_, csv) = get_status(&ts, &viewer, "/api/v1/inventory.csv").await;
    assert!(csv.contains("LAB1-PC01") && !csv.contains("LAB2-PC01"));

    let without = teacher(&ts, &admin, "mr.lee", &["devices.view"], lab1).await;
    for path in [
        "/api/v1/inventory",
        "/api/v1/inventory.csv",
        &format!("/api/v1/inventory/{a_id}"),
    ] {
        let (s, body) = get_status(&ts, &without, path).await;
        assert_eq!(s, 403, "{path}: {body}");
        assert!(body.contains("inventory"), "{body}");
    }
    for (stop, task) in [(s1, t1), (s2, t2)] {
        let _ = stop.send(true);
        let _ = task.await;
    }
}

async fn send(ws: &mut lectern_agent::AgentStream, msg: &AgentMsg) {
    ws.send(Message::text(msg.encode())).await.unwrap();
}

fn hash_of(json: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(json.as_bytes()))
}

/// Proves: parts nobody asked for, out of order, over 2 MiB, or with more
/// than 20,000 packages are refused and nothing is kept; the session goes on
/// and a good report is then stored; offers beyond the burst are refused.
#[tokio::test]
async fn bad_inventory_is_refused_and_the_session_goes_on() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let cred = enroll_as(&ts, &token, "LAB1-PC09").await;
    let id = cred.device_id;
    let mut ws = raw_session(&ts, &cred, "LAB1-PC09", vec![]).await;
    let refused = |m: ServerMsg| match m {
        ServerMsg::Refused {
            code,
            frame: RefusedFrame::Inventory,
            ..
        } => code,
        other => panic!("expected an inventory refusal, got {other:?}"),
    };
    // A part nobody asked for.
    send(
        &mut ws,
        &AgentMsg::InventoryPart {
            index: 0,
            last: true,
            data: "{}".into(),
        },
    )
    .await;
    assert_eq!(
        refused(next_non_policy(&mut ws).await),
        ErrorCode::NotAllowed
    );

    // Too many packages.
    let many = lectern_proto::inventory::Inventory {
        packages: (0..20_001)
            .map(|i| lectern_proto::inventory::Package {
                name: format!("p{i}"),
                version: "1".into(),
            })
            .collect(),
        ..Default::default()
    }
    .encode();
    send(
        &mut ws,
        &AgentMsg::InventoryHash {
            hash: hash_of(&many),
        },
    )
    .await;
    assert_eq!(next_non_policy(&mut ws).await, ServerMsg::InventoryRequest);
    send_parts(&mut ws, &many).await;
    assert_eq!(refused(next_non_policy(&mut ws).await), ErrorCode::TooLarge);

    // Over 2 MiB.
    let huge = format!(
        "{{\"kernel\":\"{}\"}}",
        "x".repeat(lectern_proto::inventory::MAX_INVENTORY_BYTES)
    );
    send(
        &mut ws,
        &AgentMsg::InventoryHash {
            hash: hash_of(&huge),
        },
    )
    .await;
    assert_eq!(next_non_policy(&mut ws).await, ServerMsg::InventoryRequest);
    send_parts(&mut ws, &huge).await;
    assert_eq!(refused(next_non_policy(&mut ws).await), ErrorCode::TooLarge);
    let v = ts.get(&admin, "/api/v1/inventory").await;
    assert!(v.as_array().unwrap().is_empty(), "{v}");

    // Offers beyond the burst (three per session) are refused for rate.
    send(
        &mut ws,
        &AgentMsg::InventoryHash {
            hash: "ab".repeat(32),
        },
    )
    .await;
    assert_eq!(next_non_policy(&mut ws).await, ServerMsg::InventoryRequest);
    let hash = "cd".repeat(32);
    send(&mut ws, &AgentMsg::InventoryHash { hash }).await;
    assert_eq!(
        refused(next_non_policy(&mut ws).await),
        ErrorCode::RateLimited
    );

    // The session still works, and a good report from a new session is kept.
    drop(ws);
    let mut ws = raw_session(&ts, &cred, "LAB1-PC09", vec![]).await;
    let good = lectern_proto::inventory::Inventory {
        kernel: "6.1".into(),
        ..Default::default()
    }
    .encode();
    send(
        &mut ws,
        &AgentMsg::InventoryHash {
            hash: hash_of(&good),
        },
    )
    .await;
    assert_eq!(next_non_policy(&mut ws).await, ServerMsg::InventoryRequest);
    send_parts(&mut ws, &good).await;
    let one = wait_for(|| async {
        let v = ts.get(&admin, &format!("/api/v1/inventory/{id}")).await;
        (v["kernel"] == "6.1").then_some(v)
    })
    .await;
    assert_eq!(one["device_id"], id);
}

async fn send_parts(ws: &mut lectern_agent::AgentStream, json: &str) {
    let parts = lectern_proto::inventory::split_parts(json);
    let n = parts.len();
    for (i, data) in parts.into_iter().enumerate() {
        let msg = AgentMsg::InventoryPart {
            index: i as u32,
            last: i + 1 == n,
            data: data.into(),
        };
        send(ws, &msg).await;
    }
}

/// The next server frame that is not a policy, keyword or chat history push.
async fn next_non_policy(ws: &mut lectern_agent::AgentStream) -> ServerMsg {
    loop {
        match next_server_msg(ws).await {
            ServerMsg::Policy { .. }
            | ServerMsg::Keywords { .. }
            | ServerMsg::ChatHistory { .. } => continue,
            m => return m,
        }
    }
}

/// Proves: a shut down shows a live countdown in the student's message
/// surface and is carried out at zero, with a per-device result; a cancel
/// takes the countdown off and nothing happens; a countdown over 600 s is
/// refused; the right `command.power` is needed.
#[tokio::test]
async fn power_commands_count_down_and_can_be_cancelled() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let agent = start_agent(&ts, &token, "LAB1-PC01", Some("amy")).await;
    let id = agent.id();

    let rec = ts
        .command(
            &admin,
            &[id],
            json!({"type": "power", "action": "shutdown", "countdown_secs": 3}),
        )
        .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    let shown = wait_for(|| async {
        let d = agent.desktop.lock().unwrap();
        d.message().map(str::to_string)
    })
    .await;
    assert!(shown.contains("will shut down in"), "{shown}");
    wait_for(|| async {
        let d = agent.desktop.lock().unwrap();
        (d.power_actions() == vec![lectern_proto::power::PowerAction::Shutdown]).then_some(())
    })
    .await;

    // Cancelled during the countdown: the message goes, nothing happens.
    ts.command(
        &admin,
        &[id],
        json!({"type": "power", "action": "restart", "countdown_secs": 2}),
    )
    .await;
    wait_for(|| async { agent.desktop.lock().unwrap().message().map(|_| ()) }).await;
    let rec = ts
        .command(&admin, &[id], json!({"type": "cancel_power"}))
        .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    wait_for(|| async {
        agent
            .desktop
            .lock()
            .unwrap()
            .message()
            .is_none()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        agent.desktop.lock().unwrap().power_actions().len(),
        1,
        "a cancelled restart ran"
    );

    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/commands",
            json!({"devices": [id], "command": {"type": "power", "action": "shutdown", "countdown_secs": 601}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    let lab1 = computer_group(&ts, &admin, "Lab 1", "LAB1-*").await;
    let viewer = teacher(&ts, &admin, "ms.khan", &["devices.view"], lab1).await;
    let (s, v) = ts
        .post(
            &viewer,
            "/api/v1/commands",
            json!({"devices": [id], "command": {"type": "power", "action": "shutdown"}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    agent.stop().await;
}

/// A fixture tree whose eth0 has `mac` and `addr` (address/prefix).
fn host_fixture(root: &Path, mac: &str) {
    fixture(root, "OptiPlex", &[("bash", "5")]);
    std::fs::write(root.join("sys/class/net/eth0/address"), format!("{mac}\n")).unwrap();
}

/// An agent reporting `mac` at `addr`, its Wake-on-LAN packets sent to
/// `redirect` (loopback) instead of the broadcast address.
async fn wol_agent(
    cred: StoredCredential,
    host: &str,
    root: &Path,
    addr: &str,
    redirect: Option<std::net::SocketAddr>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let mut r = roots(root);
    r.addresses = Some(vec![("eth0".into(), addr.into())]);
    let source = FileInventory::new(r, false);
    let mut desktop = HeadlessDesktop::new(host, None);
    desktop.set_inventory(source);
    if let Some(to) = redirect {
        desktop.redirect_wake(to);
    }
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut status) = watch::channel(ConnStatus::Connecting);
    let config = AgentConfig {
        credential: cred,
        info: lectern_agent::local_device_info(Some(host.into())),
        policy_file: None,
        evidence_frames: 0,
        scan_keywords: false,
        school_choice: Default::default(),
    };
    let task = tokio::spawn(run_agent(
        config,
        Arc::new(Mutex::new(desktop)),
        stop_rx,
        Some(tx),
    ));
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| *s == ConnStatus::Connected),
    )
    .await
    .unwrap()
    .unwrap();
    (stop, task)
}

/// The next UDP datagram on `sock`, within 20 s.
async fn datagram(sock: &tokio::net::UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(20), sock.recv_from(&mut buf))
        .await
        .expect("a Wake-on-LAN packet within 20 s")
        .unwrap();
    buf[..n].to_vec()
}

/// Proves: Wake-on-LAN uses the MAC from the device's inventory; with an
/// online agent on the sleeping device's subnet the server asks that agent
/// (which sends the real magic packet over UDP); without one the server
/// sends it itself (to `[power] wake_target` here); a device with no
/// inventory fails with a reason; every wake is audited with per-device
/// results; the right is needed.
#[tokio::test]
async fn wake_on_lan_by_server_or_by_an_agent_on_the_subnet() {
    let server_sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_target = server_sock.local_addr().unwrap();
    let ts = TestServer::start_with_config(|c| {
        let t = c.as_table_mut().unwrap();
        let mut power = toml::map::Map::new();
        power.insert(
            "wake_target".into(),
            toml::Value::String(server_target.to_string()),
        );
        t.insert("power".into(), toml::Value::Table(power));
    })
    .await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let relay_sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_target = relay_sock.local_addr().unwrap();

    // The sleeper reported its inventory once, then went off.
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    host_fixture(d1.path(), "aa:bb:cc:00:00:01");
    host_fixture(d2.path(), "aa:bb:cc:00:00:02");
    host_fixture(d3.path(), "aa:bb:cc:00:00:03");
    let sleeper = enroll_as(&ts, &token, "LAB2-PC01").await;
    let sleeper_id = sleeper.device_id;
    let (stop, task) = wol_agent(sleeper, "LAB2-PC01", d1.path(), "10.213.47.10/24", None).await;
    wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/inventory").await;
        (v.as_array()?.len() == 1).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = task.await;
    wait_for(|| async {
        let v = ts
            .get(&admin, &format!("/api/v1/devices/{sleeper_id}"))
            .await;
        (v["online"] == false).then_some(())
    })
    .await;
    let never = enroll_as(&ts, &token, "LAB2-PC09").await.device_id;

    // No agent online on 10.213.47.0/24: the server sends it itself.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/power/wake",
            json!({"devices": [sleeper_id, never]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "sent", "{v}");
    assert_eq!(results[0]["via"], "server");
    assert_eq!(results[1]["status"], "failed");
    assert!(results[1]["reason"]
        .as_str()
        .unwrap()
        .contains("no inventory"));
    let p = datagram(&server_sock).await;
    assert_eq!(
        p,
        lectern_proto::power::magic_packet([0xaa, 0xbb, 0xcc, 0, 0, 1]).to_vec()
    );

    // An agent on the subnet comes online: it is asked, and sends the packet.
    let relay = enroll_as(&ts, &token, "LAB2-PC02").await;
    let (rs, rt) = wol_agent(
        relay,
        "LAB2-PC02",
        d2.path(),
        "10.213.47.20/24",
        Some(relay_target),
    )
    .await;
    // One on another subnet is never picked.
    let other = enroll_as(&ts, &token, "LAB3-PC01").await;
    let (os, ot) = wol_agent(
        other,
        "LAB3-PC01",
        d3.path(),
        "10.213.48.7/24",
        Some(relay_target),
    )
    .await;
    wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/inventory").await;
        (v.as_array()?.len() == 3).then_some(())
    })
    .await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/power/wake",
            json!({"devices": [sleeper_id]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["via"], "LAB2-PC02", "{v}");
    let p = datagram(&relay_sock).await;
    assert_eq!(
        p,
        lectern_proto::power::magic_packet([0xaa, 0xbb, 0xcc, 0, 0, 1]).to_vec()
    );

    let audit = ts.get(&admin, "/api/v1/audit").await;
    assert!(audit.to_string().contains("power.wake"), "{audit}");

    let lab2 = computer_group(&ts, &admin, "Lab 2", "LAB2-*").await;
    let viewer = teacher(&ts, &admin, "ms.khan", &["devices.view"], lab2).await;
    let (s, _) = ts
        .post(
            &viewer,
            "/api/v1/power/wake",
            json!({"devices": [sleeper_id]}),
        )
        .await;
    assert_eq!(s, 403);
    for (stop, task) in [(rs, rt), (os, ot)] {
        let _ = stop.send(true);
        let _ = task.await;
    }
}

/// Proves: a power-off schedule of a computer group is stored per school,
/// validated, and when due the server sends the group's devices the power
/// command (recorded with per-device results, audited as the schedule),
/// once a day; a teacher without control of the room cannot add one.
#[tokio::test]
async fn scheduled_power_off_of_a_room() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 5).await;
    let in_room = start_agent(&ts, &token, "LAB1-PC01", Some("amy")).await;
    let outside = start_agent(&ts, &token, "LAB9-PC01", Some("ben")).await;
    let lab1 = computer_group(&ts, &admin, "Lab 1", "LAB1-*").await;

    let bad = json!({"group_id": lab1, "action": "explode", "minute_of_day": 60, "days": 127, "countdown_secs": 0});
    let (s, _) = ts.post(&admin, "/api/v1/power/schedules", bad).await;
    assert_eq!(s, 400);
    let good = json!({"group_id": lab1, "action": "shutdown", "minute_of_day": 16 * 60 + 30,
                      "days": 0b001_1111, "countdown_secs": 1});
    let (s, sched) = ts
        .post(&admin, "/api/v1/power/schedules", good.clone())
        .await;
    assert_eq!(s, 201, "{sched}");
    let list = ts.get(&admin, "/api/v1/power/schedules").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Due: a Wednesday at 16:31 (Wednesday is in Monday to Friday).
    let st = ts.server().state.clone();
    let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
        .unwrap()
        .and_hms_opt(16, 31, 0)
        .unwrap();
    lectern_server::power::run_due(&st, common::home_school(&st), at).await;
    wait_for(|| async {
        let d = in_room.desktop.lock().unwrap();
        (d.power_actions() == vec![lectern_proto::power::PowerAction::Shutdown]).then_some(())
    })
    .await;
    assert!(outside.desktop.lock().unwrap().power_actions().is_empty());
    // Once a day, and not on a Saturday.
    lectern_server::power::run_due(&st, common::home_school(&st), at).await;
    let saturday = chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
        .unwrap()
        .and_hms_opt(16, 31, 0)
        .unwrap();
    lectern_server::power::run_due(&st, common::home_school(&st), saturday).await;
    let audit = ts.get(&admin, "/api/v1/audit").await.to_string();
    assert_eq!(
        audit.matches(&format!("schedule:{}", sched["id"])).count(),
        1,
        "{audit}"
    );

    let viewer = teacher(
        &ts,
        &admin,
        "ms.khan",
        &["devices.view", "command.power"],
        lab1,
    )
    .await;
    let (s, _) = ts.post(&viewer, "/api/v1/power/schedules", good).await;
    assert_eq!(s, 403);
    in_room.stop().await;
    outside.stop().await;
}
