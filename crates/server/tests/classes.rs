//! The classroom page's routes: the tree of classes a console user may see,
//! their own display preferences, and the clear-message and timed-lock
//! commands, end to end with real agents over TLS.

mod common;

use common::*;
use lectern_agent::Desktop;
use serde_json::{json, Value};

async fn put(ts: &TestServer, token: &str, path: &str, body: &str) -> (u16, Value) {
    let r = ts
        .client()
        .put(ts.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A teacher account `name` with `features` and view access to `groups`.
async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[i64],
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
    let access: serde_json::Map<String, Value> = groups
        .iter()
        .map(|g| (g.to_string(), json!("control")))
        .collect();
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features, "group_access": access}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

/// Names and device ids of a tree's entries under `key`.
fn entries(tree: &Value, key: &str) -> Vec<(String, Vec<i64>)> {
    tree[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let ids = e["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect();
            (e["name"].as_str().unwrap_or("").to_string(), ids)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_teachers_tree_lists_only_their_class() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 3).await;
    let a = start_agent(&ts, &enroll, "ROOM5-PC01", Some("amy")).await;
    let b = start_agent(&ts, &enroll, "ROOM5-PC02", Some("bea")).await;
    let c = start_agent(&ts, &enroll, "ROOM6-PC01", Some("cal")).await;
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let room6 = computer_group(&ts, &admin, "Room 6", "ROOM6-*").await;
    let khan = teacher(
        &ts,
        &admin,
        "ms.khan",
        &["devices.view", "command.lock"],
        &[room5],
    )
    .await;
    // A lesson runs in each room.
    for room in [room5, room6] {
        let (s, v) = ts
            .post(&admin, "/api/v1/lessons", json!({"group_id": room, "minutes": 30, "restrictions": {"web_filter_mode": "block_list", "block_list": ["games.example"]}}))
            .await;
        assert_eq!(s, 201, "{v}");
    }

    let mut room5_ids = vec![a.id(), b.id()];
    room5_ids.sort();
    let sorted = |mut v: Vec<(String, Vec<i64>)>| {
        for e in &mut v {
            e.1.sort();
        }
        v.sort();
        v
    };
    let tree = ts.get(&khan, "/api/v1/classes").await;
    assert_eq!(
        sorted(entries(&tree, "groups")),
        vec![("Room 5".to_string(), room5_ids.clone())]
    );
    assert_eq!(
        sorted(entries(&tree, "lessons")),
        vec![("Room 5".to_string(), room5_ids.clone())]
    );
    assert!(!tree.to_string().contains("Room 6"), "{tree}");
    let badges = tree["devices"].as_object().unwrap();
    assert_eq!(badges.len(), 2, "only her devices' badges: {tree}");
    assert_eq!(
        badges[&a.id().to_string()]["web_filter"],
        "block_list",
        "the lesson's filter"
    );
    assert!(badges.get(&c.id().to_string()).is_none());

    // The administrator's tree has both rooms and both lessons, no built-ins.
    let tree = ts.get(&admin, "/api/v1/classes").await;
    let want = vec![
        ("Room 5".to_string(), room5_ids.clone()),
        ("Room 6".to_string(), vec![c.id()]),
    ];
    assert_eq!(sorted(entries(&tree, "groups")), want);
    assert_eq!(sorted(entries(&tree, "lessons")), want);
    assert!(!tree.to_string().contains("Entire Network"), "{tree}");

    // Without devices.view: refused.
    let none = teacher(&ts, &admin, "mr.none", &["command.lock"], &[room5]).await;
    let r = ts
        .client()
        .get(ts.url("/api/v1/classes"))
        .bearer_auth(&none)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for agent in [a, b, c] {
        agent.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_belong_to_their_user_and_survive_a_restart() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let khan = teacher(&ts, &admin, "ms.khan", &["devices.view"], &[]).await;
    let lee = teacher(&ts, &admin, "mr.lee", &["devices.view"], &[]).await;

    assert_eq!(ts.get(&khan, "/api/v1/me/preferences").await, json!({}));
    let (s, v) = put(
        &ts,
        &khan,
        "/api/v1/me/preferences",
        r#"{"tile_size":"large","sort":"user"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = put(
        &ts,
        &khan,
        "/api/v1/me/preferences",
        r#"{"class":"group:7"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let khans = json!({"tile_size": "large", "sort": "user", "class": "group:7"});
    assert_eq!(v, khans, "a put sets only the fields it names");
    // Another user's are their own: nothing of khan's shows, and their
    // writes change nothing of khan's.
    assert_eq!(ts.get(&lee, "/api/v1/me/preferences").await, json!({}));
    let (s, _) = put(
        &ts,
        &lee,
        "/api/v1/me/preferences",
        r#"{"tile_size":"small"}"#,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ts.get(&admin, "/api/v1/me/preferences").await, json!({}));

    // Bad input is refused whole and loses nothing.
    for (body, status) in [
        (r#"{"tile_size":"huge"}"#.to_string(), 400),
        (r#"{"tile_size":"small","user":"mr.lee"}"#.to_string(), 400),
        (r#"{"class":"room:1"}"#.to_string(), 400),
        (r#"not json"#.to_string(), 400),
        (
            format!(r#"{{"class":"all","x":"{}"}}"#, "a".repeat(2000)),
            413,
        ),
    ] {
        let (s, v) = put(&ts, &khan, "/api/v1/me/preferences", &body).await;
        assert_eq!(s, status, "{body:.60}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(ts.get(&khan, "/api/v1/me/preferences").await, khans);

    // Changes of different fields at the same moment are all kept.
    let bodies = [
        r#"{"sort":"status"}"#,
        r#"{"tile_size":"medium"}"#,
        r#"{"class":"all"}"#,
    ];
    let puts = (0..30).map(|i| put(&ts, &lee, "/api/v1/me/preferences", bodies[i % 3]));
    for (s, v) in futures_util::future::join_all(puts).await {
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(
        ts.get(&lee, "/api/v1/me/preferences").await,
        json!({"tile_size": "medium", "sort": "status", "class": "all"})
    );
    let (s, _) = put(
        &ts,
        &lee,
        "/api/v1/me/preferences",
        r#"{"tile_size":"small","sort":"name","class":"group:1"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = put(&ts, &lee, "/api/v1/me/preferences", r#"{"class":"all"}"#).await;
    assert_eq!(s, 200);

    ts.restart().await;
    let khan = ts.login_as("ms.khan", "ms.khan-password").await;
    let lee = ts.login_as("mr.lee", "mr.lee-password").await;
    assert_eq!(ts.get(&khan, "/api/v1/me/preferences").await, khans);
    assert_eq!(
        ts.get(&lee, "/api/v1/me/preferences").await,
        json!({"tile_size": "small", "sort": "name", "class": "all"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_message_and_a_timed_lock_reach_the_agent() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "PC01", Some("amy")).await;

    ts.command(
        &admin,
        &[a.id()],
        json!({"type": "message", "text": "Eyes front"}),
    )
    .await;
    assert!(a.desktop.lock().unwrap().state().message_shown);
    let rec = ts
        .command(&admin, &[a.id()], json!({"type": "clear_message"}))
        .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    assert!(!a.desktop.lock().unwrap().state().message_shown);

    // A timed lock: the device counts the time and reports when it ends.
    let before = lectern_store::now_ms();
    let rec = ts
        .command(
            &admin,
            &[a.id()],
            json!({"type": "lock", "text": "Back soon", "minutes": 5}),
        )
        .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    let until = wait_for(|| async {
        let d = ts.get(&admin, &format!("/api/v1/devices/{}", a.id())).await;
        d["state"]["locked_until"].as_i64()
    })
    .await;
    assert!(
        until >= before + 5 * 60_000 && until < before + 6 * 60_000,
        "{until}"
    );
    // Unlocking clears it.
    ts.command(&admin, &[a.id()], json!({"type": "unlock"}))
        .await;
    wait_for(|| async {
        let d = ts.get(&admin, &format!("/api/v1/devices/{}", a.id())).await;
        d["state"]["locked_until"].is_null().then_some(())
    })
    .await;

    // Out-of-range minutes are refused before anything is sent.
    for minutes in [0, 601] {
        let (s, v) = ts
            .post(
                &admin,
                "/api/v1/commands",
                json!({"devices": [a.id()], "command": {"type": "lock", "minutes": minutes}}),
            )
            .await;
        assert_eq!(s, 400, "{v}");
    }
    assert!(!a.desktop.lock().unwrap().state().locked);
    a.stop().await;
}
