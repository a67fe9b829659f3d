//! Groups, resultant settings, restriction groups, access rights, live-view
//! privacy and lessons, end to end with real agents over TLS.

mod common;

use std::time::Duration;

use common::*;
use lectern_agent::Desktop;
use serde_json::{json, Value};

async fn group_id(ts: &TestServer, token: &str, name: &str) -> i64 {
    let groups = ts.get(token, "/api/v1/groups").await;
    groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}"))["id"]
        .as_i64()
        .unwrap()
}

async fn wait_state(a: &TestAgent, what: &str, f: impl Fn(&lectern_proto::DeviceState) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f(&a.desktop.lock().unwrap().state()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent never reached: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restriction_groups_apply_at_once_and_lift_on_removal() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let amy = start_agent(&ts, &enroll, "LAB1-PC01", Some("amy")).await;
    let ben = start_agent(&ts, &enroll, "LAB1-PC02", Some("ben")).await;
    wait_state(&amy, "first policy", |s| s.policy_version > 0).await;

    // A user in Internet Banned: blocked wherever she is; the other device is not.
    let banned = group_id(&ts, &token, "Internet Banned").await;
    let started = std::time::Instant::now();
    let (s, v) = ts
        .put(
            &token,
            &format!("/api/v1/groups/{banned}"),
            json!({"members": [{"type": "user", "value": "amy"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_state(&amy, "internet blocked", |s| s.internet_blocked).await;
    eprintln!("restriction reached the agent in {:?}", started.elapsed());
    assert!(!ben.desktop.lock().unwrap().state().internet_blocked);
    // A teacher cannot lift a policy block by command.
    let rec = ts
        .command(&token, &[amy.id()], json!({"type": "unblock_internet"}))
        .await;
    assert!(
        rec["targets"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("policy"),
        "{rec}"
    );

    // A computer in Screens Locked, Sound Muted, Printing and Removable Media Disabled.
    for name in [
        "Screens Locked",
        "Sound Muted",
        "Printing Disabled",
        "Removable Media Disabled",
    ] {
        let id = group_id(&ts, &token, name).await;
        let (s, v) = ts
            .put(
                &token,
                &format!("/api/v1/groups/{id}"),
                json!({"members": [{"type": "hostname", "value": "LAB1-PC02"}]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    wait_state(&ben, "all restrictions", |s| {
        s.locked && s.sound_muted && s.printing_disabled && s.removable_media_disabled
    })
    .await;
    let d = ts
        .get(&token, &format!("/api/v1/devices/{}", ben.id()))
        .await;
    assert_eq!(
        d["state"]["sound_muted"], true,
        "the console sees the restriction: {d}"
    );

    // Removing members lifts them.
    let (s, _) = ts
        .put(
            &token,
            &format!("/api/v1/groups/{banned}"),
            json!({"members": []}),
        )
        .await;
    assert_eq!(s, 200);
    wait_state(&amy, "internet unblocked", |s| !s.internet_blocked).await;
    let locked = group_id(&ts, &token, "Screens Locked").await;
    ts.put(
        &token,
        &format!("/api/v1/groups/{locked}"),
        json!({"members": []}),
    )
    .await;
    wait_state(&ben, "unlocked", |s| !s.locked && s.sound_muted).await;

    // Built-in groups keep their settings and cannot be deleted.
    let (s, v) = ts
        .put(
            &token,
            &format!("/api/v1/groups/{banned}"),
            json!({"settings": {"sound_muted": true}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/groups/{banned}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    amy.stop().await;
    ben.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priorities_resolve_with_sources_and_follow_the_user() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let (s, v) = ts
        .post(&token, "/api/v1/groups", json!({"name": "IT Suite", "kind": "computer", "priority": "medium",
            "members": [{"type": "hostname", "value": "IT01*"}], "settings": {"sound_muted": true, "web_filter_mode": "block_list", "block_list": ["*.Games.example"]}}))
        .await;
    assert_eq!(s, 201, "{v}");
    let it = v["id"].as_i64().unwrap();
    let (s, v) = ts
        .post(&token, "/api/v1/groups", json!({"name": "Year 9", "kind": "user", "priority": "high",
            "members": [{"type": "directory_group", "value": "Year 9"}], "settings": {"sound_muted": false, "printing_disabled": true}}))
        .await;
    assert_eq!(s, 201, "{v}");
    let y9 = v["id"].as_i64().unwrap();
    let (s, _) = ts
        .put(
            &token,
            "/api/v1/directory/users/amy",
            json!({"groups": ["Year 9"]}),
        )
        .await;
    assert_eq!(s, 200);

    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "IT01-PC07", None).await;
    wait_state(&a, "computer group applies", |s| {
        s.sound_muted && !s.printing_disabled
    })
    .await;
    let r = ts
        .get(&token, &format!("/api/v1/resultant?device={}", a.id()))
        .await;
    assert_eq!(r["settings"]["sound_muted"]["value"], true);
    assert_eq!(r["settings"]["sound_muted"]["source"]["group_id"], it);
    assert_eq!(
        r["settings"]["block_list"]["value"],
        json!(["*.games.example"])
    );
    assert_eq!(
        r["settings"]["printing_disabled"]["source"],
        Value::Null,
        "default"
    );
    let v1 = r["version"].as_i64().unwrap();

    // Amy logs in: her user group (High) now decides sound and printing.
    a.desktop.lock().unwrap().login("amy");
    wait_state(&a, "user group applies", |s| {
        !s.sound_muted && s.printing_disabled
    })
    .await;
    let r = ts
        .get(&token, &format!("/api/v1/resultant?device={}", a.id()))
        .await;
    assert_eq!(r["user"], "amy");
    assert_eq!(r["directory_groups"], json!(["Year 9"]));
    assert_eq!(r["settings"]["sound_muted"]["source"]["group_id"], y9);
    assert!(r["version"].as_i64().unwrap() > v1, "versions increase");
    // The user alone, without a device.
    let r = ts.get(&token, "/api/v1/resultant?user=amy").await;
    assert_eq!(r["settings"]["printing_disabled"]["value"], true);
    assert_eq!(
        r["settings"]["sound_muted"]["source"]["group_name"],
        "Year 9"
    );

    // Bad settings and members are refused with clear errors; nothing changes.
    for (body, needle) in [
        (
            json!({"name": "X", "kind": "computer", "priority": "low", "settings": {"format_disk": true}}),
            "unknown setting",
        ),
        (
            json!({"name": "X", "kind": "computer", "priority": "low", "settings": {"sound_muted": "loud"}}),
            "true or false",
        ),
        (
            json!({"name": "X", "kind": "computer", "priority": "low", "settings": {"allow_list": ["exa mple.org"]}}),
            "pattern",
        ),
        (
            json!({"name": "X", "kind": "computer", "priority": "low", "members": [{"type": "user", "value": "amy"}]}),
            "hostname",
        ),
        (
            json!({"name": "X", "kind": "restriction", "priority": "low"}),
            "built in",
        ),
        (
            json!({"name": "IT Suite", "kind": "computer", "priority": "low"}),
            "already exists",
        ),
    ] {
        let (s, v) = ts.post(&token, "/api/v1/groups", body.clone()).await;
        assert!(s == 400 || s == 409, "{body}: {s}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    assert_eq!(
        ts.get(&token, "/api/v1/groups")
            .await
            .as_array()
            .unwrap()
            .len(),
        8
    );

    // Deleting the computer group lifts what it set.
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/groups/{y9}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    wait_state(&a, "back to the computer group", |s| {
        s.sound_muted && !s.printing_disabled
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_policy_is_enforced_offline_and_after_a_restart() {
    let mut ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC", Some("amy")).await;
    let cred = a.credential.clone();
    a.stop().await;
    let policy_file = ts.dir.path().join("policy.json");
    let a =
        run_enrolled_with_policy(cred.clone(), "PC", Some("amy"), Some(policy_file.clone())).await;
    let locked = group_id(&ts, &token, "Screens Locked").await;
    ts.put(
        &token,
        &format!("/api/v1/groups/{locked}"),
        json!({"members": [{"type": "hostname", "value": "PC"}]}),
    )
    .await;
    wait_state(&a, "locked", |s| s.locked).await;
    let stored: lectern_proto::Policy =
        serde_json::from_str(&std::fs::read_to_string(&policy_file).unwrap()).unwrap();
    assert!(stored.screen_locked);

    // The server goes away; the agent stays locked. Then the agent restarts
    // while the server is still down: it locks from the stored policy.
    let server = ts.server.take().unwrap();
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.desktop.lock().unwrap().state().locked);
    a.stop().await;
    let fresh = start_unconnected(cred, "PC", Some(policy_file)).await;
    wait_state(&fresh, "locked from disk", |s| {
        s.locked && s.policy_version == stored.version
    })
    .await;
    ts.server = Some(
        lectern_server::Server::start(&ts.data_dir(), Some(ts.addr))
            .await
            .unwrap(),
    );
    fresh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_user_without_the_right_and_audits_it() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let (s, v) = ts
        .post(
            &token,
            "/api/v1/users",
            json!({"username": "nobody", "password": "nobody-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let weak = ts.login_as("nobody", "nobody-password").await;
    let c = ts.client();
    let doc: Value = c
        .get(ts.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let public = op
                .get("security")
                .is_some_and(|s| s.as_array().unwrap().is_empty());
            if public || op.get("x-lectern-any-user").is_some() {
                continue;
            }
            let url = ts.url(&format!(
                "/api/v1{}",
                path.replace("{id}", "1")
                    .replace("{username}", "amy")
                    .replace("{n}", "0")
                    .replace("{file}", "20260101-000000.csv")
                    .replace("{shot}", "1")
            ));
            // A new path parameter must be filled in above, or the walk would test a 400.
            assert!(!url.contains('{'), "unfilled path parameter in {path}");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = c
                .request(m, &url)
                .bearer_auth(&weak)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{method} {path}");
            walked += 1;
        }
    }
    assert!(walked >= 25, "walked {walked} operations");
    let audit = ts.get(&token, "/api/v1/audit?limit=1000").await;
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "nobody" && e["action"] == "access.denied")
        .count();
    assert!(
        denied >= walked,
        "{denied} audit entries for {walked} refusals"
    );
    // A delegated manager cannot make administrators.
    let (s, _) = ts
        .post(&token, "/api/v1/access-rules", json!({"principal": {"type": "user", "value": "nobody"}, "features": ["access.manage"]}))
        .await;
    assert_eq!(s, 201);
    let (s, v) = ts
        .post(
            &weak,
            "/api/v1/users",
            json!({"username": "evil", "password": "evil-password", "role": "admin"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_access_limits_what_a_teacher_sees_and_controls() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let mine = start_agent(&ts, &enroll, "ROOM5-PC01", Some("amy")).await;
    let other = start_agent(&ts, &enroll, "ROOM6-PC01", Some("ben")).await;
    let (_, g) = ts.post(&token, "/api/v1/groups", json!({"name": "Room 5", "kind": "computer", "priority": "low", "members": [{"type": "hostname", "value": "ROOM5-*"}]})).await;
    let (_, g6) = ts.post(&token, "/api/v1/groups", json!({"name": "Room 6", "kind": "computer", "priority": "low", "members": [{"type": "hostname", "value": "ROOM6-*"}]})).await;
    ts.post(
        &token,
        "/api/v1/users",
        json!({"username": "ms.khan", "password": "khan-password", "role": "teacher"}),
    )
    .await;
    let rule = json!({"principal": {"type": "user", "value": "ms.khan"}, "features": ["devices.view", "command.lock", "lessons.manage"],
        "group_access": {g["id"].to_string(): "control", g6["id"].to_string(): "view"}});
    let (s, v) = ts.post(&token, "/api/v1/access-rules", rule).await;
    assert_eq!(s, 201, "{v}");
    // A rule for the console computer's address adds the message feature.
    let (s, _) = ts.post(&token, "/api/v1/access-rules", json!({"principal": {"type": "computer", "value": "127.0.0.0/8"}, "features": ["command.message"]})).await;
    assert_eq!(s, 201);
    let khan = ts.login_as("ms.khan", "khan-password").await;
    let me = ts.get(&khan, "/api/v1/me").await;
    assert_eq!(
        me["rights"]["features"],
        json!([
            "command.lock",
            "command.message",
            "devices.view",
            "lessons.manage"
        ])
    );

    let seen: Vec<i64> = ts
        .get(&khan, "/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen.len(), 2);
    let rec = ts
        .command(&khan, &[mine.id()], json!({"type": "lock"}))
        .await;
    assert_eq!(rec["summary"]["done"], 1);
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/commands",
            json!({"devices": [other.id()], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 403, "view access is not control: {v}");
    assert!(!other.desktop.lock().unwrap().state().locked);
    let (s, _) = ts
        .post(
            &khan,
            "/api/v1/commands",
            json!({"devices": [mine.id()], "command": {"type": "logout"}}),
        )
        .await;
    assert_eq!(s, 403, "no logout feature");
    let (s, _) = ts
        .post(
            &khan,
            "/api/v1/lessons",
            json!({"group_id": g6["id"], "minutes": 5, "restrictions": {"screen_locked": true}}),
        )
        .await;
    assert_eq!(s, 403, "lessons need control of the class");
    mine.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_follows_the_privacy_setting() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC", Some("amy")).await;
    let entire = group_id(&ts, &token, "Entire Network").await;
    let view = |tok: String| {
        let ts = &ts;
        let id = a.id();
        async move {
            ts.post(&tok, &format!("/api/v1/devices/{id}/view"), json!({}))
                .await
                .1
        }
    };
    let set_mode = |mode: &'static str| {
        let ts = &ts;
        let token = token.clone();
        async move {
            let (s, v) = ts
                .put(
                    &token,
                    &format!("/api/v1/groups/{entire}"),
                    json!({"settings": {"remote_view": mode}}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
    };
    assert_eq!(
        view(token.clone()).await,
        json!({"decision": "allowed", "reason": "policy_allow"})
    );
    set_mode("deny").await;
    // Administrators hold the bypass right, which overrides deny (audited).
    assert_eq!(view(token.clone()).await["reason"], "bypass");

    // Ask: a teacher without the bypass privilege makes the agent ask the student.
    ts.post(
        &token,
        "/api/v1/users",
        json!({"username": "t", "password": "teacher-password", "role": "teacher"}),
    )
    .await;
    let rule = json!({"principal": {"type": "user", "value": "t"}, "features": ["devices.view", "live_view"], "group_access": {entire.to_string(): "view"}});
    let (_, r) = ts.post(&token, "/api/v1/access-rules", rule.clone()).await;
    let teacher = ts.login_as("t", "teacher-password").await;
    set_mode("ask_then_deny").await;
    a.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((true, Duration::from_millis(200))));
    assert_eq!(
        view(teacher.clone()).await,
        json!({"decision": "allowed", "reason": "student_allowed"})
    );
    set_mode("deny").await;
    assert_eq!(view(teacher.clone()).await["reason"], "policy_deny");
    set_mode("ask_then_deny").await;
    a.desktop
        .lock()
        .unwrap()
        .script_view_answer(Some((false, Duration::from_millis(200))));
    // An answer holds for the console session: a new session is asked again.
    let teacher = ts.login_as("t", "teacher-password").await;
    assert_eq!(view(teacher.clone()).await["reason"], "student_denied");
    set_mode("ask_then_allow").await;
    a.desktop.lock().unwrap().script_view_answer(None);
    let started = std::time::Instant::now();
    assert_eq!(
        view(teacher.clone()).await,
        json!({"decision": "allowed", "reason": "timeout_allowed"})
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "waited for the student"
    );
    // With bypass, no question is asked.
    let mut bypass = rule.clone();
    bypass["bypass_privacy"] = json!(true);
    let (s, _) = ts
        .put(&token, &format!("/api/v1/access-rules/{}", r["id"]), bypass)
        .await;
    assert_eq!(s, 200);
    assert_eq!(view(teacher.clone()).await["reason"], "bypass");
    let audit = ts.get(&token, "/api/v1/audit?limit=1000").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "live_view" && e["detail"] == "student_denied"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_apply_to_the_class_and_lift_on_time_even_across_a_restart() {
    let mut ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let a = start_agent(&ts, &enroll, "LAB1-PC01", Some("amy")).await;
    let b = start_agent(&ts, &enroll, "LAB2-PC01", Some("ben")).await;
    let (_, class) = ts.post(&token, "/api/v1/groups", json!({"name": "Lab 1", "kind": "computer", "priority": "low", "members": [{"type": "hostname", "value": "LAB1-*"}]})).await;
    let class = class["id"].as_i64().unwrap();

    // Ended early.
    let (s, l) = ts.post(&token, "/api/v1/lessons", json!({"group_id": class, "minutes": 45, "restrictions": {"screen_locked": true, "web_filter_mode": "allow_list", "allow_list": ["*.bbc.co.uk"]}})).await;
    assert_eq!(s, 201, "{l}");
    wait_state(&a, "lesson lock", |s| s.locked).await;
    assert!(!b.desktop.lock().unwrap().state().locked, "only the class");
    let r = ts
        .get(&token, &format!("/api/v1/resultant?device={}", a.id()))
        .await;
    assert_eq!(
        r["settings"]["allow_list"]["source"]["group_name"],
        "Lesson: Lab 1"
    );
    let (s, ended) = ts
        .post(
            &token,
            &format!("/api/v1/lessons/{}/end", l["id"]),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(ended["active"], false);
    wait_state(&a, "lesson lifted", |s| !s.locked).await;

    // Expires by itself.
    let ends = lectern_store::now_ms() + 1500;
    let (s, _) = ts
        .post(
            &token,
            "/api/v1/lessons",
            json!({"group_id": class, "ends_at": ends, "restrictions": {"internet_blocked": true}}),
        )
        .await;
    assert_eq!(s, 201);
    wait_state(&a, "lesson block", |s| s.internet_blocked).await;
    wait_state(&a, "lesson expired", |s| !s.internet_blocked).await;
    assert!(lectern_store::now_ms() >= ends);

    // Expires while the server is down: after the restart it is not applied.
    let ends = lectern_store::now_ms() + 2500;
    ts.post(
        &token,
        "/api/v1/lessons",
        json!({"group_id": class, "ends_at": ends, "restrictions": {"screen_locked": true}}),
    )
    .await;
    wait_state(&a, "third lesson lock", |s| s.locked).await;
    let server = ts.server.take().unwrap();
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(2700)).await;
    ts.server = Some(
        lectern_server::Server::start(&ts.data_dir(), Some(ts.addr))
            .await
            .unwrap(),
    );
    wait_state(&a, "lifted after restart", |s| !s.locked).await;

    // Bad lessons are refused.
    for body in [
        json!({"group_id": class, "minutes": 0}),
        json!({"group_id": class, "minutes": 10, "restrictions": {"printing_disabled": true}}),
        json!({"group_id": 9999, "minutes": 10}),
        json!({"group_id": class, "ends_at": 1}),
    ] {
        let token = ts.login().await;
        let (s, v) = ts.post(&token, "/api/v1/lessons", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    a.stop().await;
    b.stop().await;
}
