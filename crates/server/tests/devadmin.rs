//! Device administration (issue 14): enrollment tokens that enroll into a
//! room, revoking, renaming and deleting devices under the caller's scope,
//! and the computer-availability view (staff, and anonymous only when an
//! administrator turns it on).

mod common;

use common::*;
use lectern_agent::{ConnStatus, Desktop};
use serde_json::{json, Value};

/// A computer group that mutes sound, matching no host name of these tests.
async fn room(ts: &TestServer, admin: &str, name: &str) -> i64 {
    let (s, g) = ts
        .post(
            admin,
            "/api/v1/groups",
            json!({"name": name, "kind": "computer", "priority": "medium",
                   "members": [{"type": "hostname", "value": "NOMATCH-*"}],
                   "settings": {"sound_muted": true}}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

/// A token for `room` made by `who`: (status, body).
async fn room_token(ts: &TestServer, who: &str, room: Option<i64>) -> (u16, Value) {
    ts.post(
        who,
        "/api/v1/enrollment-tokens",
        json!({"uses": 5, "label": "lab", "room": room}),
    )
    .await
}

async fn token_value(ts: &TestServer, who: &str, room: Option<i64>) -> String {
    let (s, v) = room_token(ts, who, room).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn send(ts: &TestServer, who: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = ts
        .client()
        .request(method, ts.url(path))
        .bearer_auth(who)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn audit_has(ts: &TestServer, admin: &str, action: &str, outcome: &str) -> bool {
    let log = ts.get(admin, "/api/v1/audit?limit=500").await;
    let rows = log
        .as_array()
        .cloned()
        .or_else(|| log["entries"].as_array().cloned())
        .unwrap_or_default();
    rows.iter()
        .any(|e| e["action"] == action && e["outcome"] == outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_token_puts_the_device_in_that_room() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let r5 = room(&ts, &admin, "Room 5").await;
    let token = token_value(&ts, &admin, Some(r5)).await;
    let agent = start_agent(&ts, &token, "PC-77", Some("amy")).await;
    let id = agent.id();

    // A member of the group by its exact name…
    let g = ts.get(&admin, &format!("/api/v1/groups/{r5}")).await;
    assert!(
        g["members"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "hostname", "value": "PC-77"})),
        "{g}"
    );
    // …so policy resolution applies the room's settings…
    wait_for(|| async {
        agent
            .desktop
            .lock()
            .unwrap()
            .state()
            .sound_muted
            .then_some(())
    })
    .await;
    // …and the classroom tree shows it in the room.
    let tree = ts.get(&admin, "/api/v1/classes").await;
    let listed = tree["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == r5)
        .unwrap_or_else(|| panic!("{tree}"));
    assert!(
        listed["devices"].as_array().unwrap().contains(&json!(id)),
        "{tree}"
    );
    // The token lists its room and one use fewer.
    let tokens = ts.get(&admin, "/api/v1/enrollment-tokens").await;
    let t = &tokens.as_array().unwrap()[0];
    assert_eq!(t["room"], r5, "{t}");
    assert_eq!(t["room_name"], "Room 5", "{t}");
    assert_eq!(t["uses_left"], 4, "{t}");
    assert!(audit_has(&ts, &admin, "device.join_room", "ok").await);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_a_room_need_control_of_it_and_revoked_tokens_enroll_nothing() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (a, b) = (
        room(&ts, &admin, "Room A").await,
        room(&ts, &admin, "Room B").await,
    );
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "tess",
        &["devices.view", "devices.manage"],
        &[(a, "view"), (b, "control")],
        false,
    )
    .await;
    let admins = token_value(&ts, &admin, Some(a)).await;

    let (s, v) = room_token(&ts, &teacher, Some(a)).await;
    assert_eq!(s, 403, "a room the teacher only views: {v}");
    assert_eq!(v["reason"], "no_control_of_class", "{v}");
    let (s, v) = room_token(&ts, &teacher, None).await;
    assert_eq!(s, 403, "no room: administrators only: {v}");
    let (s, v) = room_token(&ts, &teacher, Some(b)).await;
    assert_eq!(s, 201, "{v}");
    let mine = v["record"]["id"].as_i64().unwrap();
    let (s, v) = room_token(&ts, &admin, Some(999)).await;
    assert_eq!(s, 400, "not a group: {v}");

    // The teacher lists only Room B's tokens and cannot revoke Room A's.
    let listed = ts.get(&teacher, "/api/v1/enrollment-tokens").await;
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![mine]);
    let all = ts.get(&admin, "/api/v1/enrollment-tokens").await;
    let theirs = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] != mine)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let del = reqwest::Method::DELETE;
    let (s, _) = send(
        &ts,
        &teacher,
        del.clone(),
        &format!("/api/v1/enrollment-tokens/{theirs}"),
    )
    .await;
    assert_eq!(s, 404);

    // Revoked: the token enrolls nothing, and says so in the list.
    let (s, v) = send(
        &ts,
        &admin,
        del.clone(),
        &format!("/api/v1/enrollment-tokens/{theirs}"),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = send(
        &ts,
        &admin,
        del,
        &format!("/api/v1/enrollment-tokens/{theirs}"),
    )
    .await;
    assert_eq!(s, 409);
    let info = lectern_agent::local_device_info(Some("LATE".into()));
    assert!(
        lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &admins, &info)
            .await
            .is_err()
    );
    let all = ts.get(&admin, "/api/v1/enrollment-tokens").await;
    let t = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == theirs)
        .unwrap();
    assert!(t["revoked_at"].is_i64(), "{t}");
    assert_eq!(t["uses_left"], 0);
    assert!(audit_has(&ts, &admin, "enrollment_token.revoke", "ok").await);
    assert!(audit_has(&ts, &admin, "access.denied", "denied").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_cuts_the_live_connection_and_refuses_the_device_after() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let a = room(&ts, &admin, "Room A").await;
    let token = token_value(&ts, &admin, Some(a)).await;
    let mut agent = start_agent(&ts, &token, "PC-1", None).await;
    let id = agent.id();
    // Someone who may only view the room cannot revoke; someone with no
    // access to it does not find the device.
    let viewer = teacher_with_access(
        &ts,
        &admin,
        "val",
        &["devices.view", "devices.manage"],
        &[(a, "view")],
        false,
    )
    .await;
    let stranger = teacher_with_access(
        &ts,
        &admin,
        "sam",
        &["devices.view", "devices.manage"],
        &[],
        false,
    )
    .await;
    let del = reqwest::Method::DELETE;
    let path = format!("/api/v1/devices/{id}");
    let (s, v) = send(&ts, &viewer, del.clone(), &path).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control", "{v}");
    let (s, _) = send(&ts, &stranger, del.clone(), &path).await;
    assert_eq!(s, 404);
    assert_eq!(ts.get(&admin, &path).await["online"], true);

    let (s, v) = send(&ts, &admin, del, &path).await;
    assert_eq!(s, 204, "{v}");
    // The live session ends at once and reconnects are refused.
    agent
        .wait_status(|s| matches!(s, ConnStatus::Refused(m) if m.contains("Revoked")))
        .await;
    let d = ts.get(&admin, &path).await;
    assert_eq!(d["revoked"], true, "{d}");
    assert_eq!(d["online"], false, "{d}");
    let again = run_enrolled_refused(&agent).await;
    assert!(again, "a revoked device connected again");
    agent.stop().await;
}

/// Starts the same credential again: true when the server refuses it.
async fn run_enrolled_refused(agent: &TestAgent) -> bool {
    let mut again = start_unconnected(agent.credential.clone(), "PC-1", None).await;
    again
        .wait_status(|s| matches!(s, ConnStatus::Refused(_) | ConnStatus::Connected))
        .await;
    let refused =
        matches!(&*again.status.borrow(), ConnStatus::Refused(m) if m.contains("Revoked"));
    again.stop().await;
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_is_checked_unique_and_keeps_the_room() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let a = room(&ts, &admin, "Room A").await;
    let token = token_value(&ts, &admin, Some(a)).await;
    let one = enroll_as(&ts, &token, "PC-1").await.device_id;
    let two = enroll_as(&ts, &token, "PC-2").await.device_id;
    let rename = |id: i64, name: &str| {
        let (ts, admin, name) = (&ts, admin.clone(), name.to_string());
        async move {
            ts.post(
                &admin,
                &format!("/api/v1/devices/{id}/rename"),
                json!({"name": name}),
            )
            .await
        }
    };
    let (s, v) = rename(one, "pc-2").await;
    assert_eq!(s, 409, "another device's name, in other case: {v}");
    for bad in ["", "LAB-*", "a b", "-x", &"x".repeat(64)] {
        let (s, v) = rename(one, bad).await;
        assert_eq!(s, 400, "{bad:?}: {v}");
    }
    let (s, v) = ts
        .post(
            &admin,
            &format!("/api/v1/devices/{one}/rename"),
            json!({"nom": "x"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = rename(one, "LAB-01").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["previous"], "PC-1");
    let d = ts.get(&admin, &format!("/api/v1/devices/{one}")).await;
    assert_eq!(d["hostname"], "LAB-01");
    // Still in its room, under its new name.
    let members = ts.get(&admin, &format!("/api/v1/groups/{a}")).await["members"].clone();
    assert!(
        members
            .as_array()
            .unwrap()
            .contains(&json!({"type": "hostname", "value": "LAB-01"})),
        "{members}"
    );
    assert!(
        !members
            .as_array()
            .unwrap()
            .contains(&json!({"type": "hostname", "value": "PC-1"})),
        "{members}"
    );
    assert!(audit_has(&ts, &admin, "device.rename", "ok").await);
    assert!(audit_has(&ts, &admin, "device.rename", "refused").await);
    let _ = two;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_device_disconnects_it_and_removes_it() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let a = room(&ts, &admin, "Room A").await;
    let token = token_value(&ts, &admin, Some(a)).await;
    let mut agent = start_agent(&ts, &token, "PC-1", Some("amy")).await;
    let id = agent.id();
    let (s, v) = ts
        .post(&admin, &format!("/api/v1/devices/{id}/delete"), json!({}))
        .await;
    assert_eq!(s, 204, "{v}");
    agent
        .wait_status(|s| matches!(s, ConnStatus::Refused(_)))
        .await;
    let list = ts.get(&admin, "/api/v1/devices").await;
    assert!(
        list.as_array().unwrap().iter().all(|d| d["id"] != id),
        "{list}"
    );
    let (s, _) = send(
        &ts,
        &admin,
        reqwest::Method::GET,
        &format!("/api/v1/devices/{id}"),
    )
    .await;
    assert_eq!(s, 404);
    let members = ts.get(&admin, &format!("/api/v1/groups/{a}")).await["members"].clone();
    assert_eq!(members, json!([{"type": "hostname", "value": "NOMATCH-*"}]));
    assert!(audit_has(&ts, &admin, "device.delete", "ok").await);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_administration_is_scoped_to_the_callers_rooms() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (a, b) = (
        room(&ts, &admin, "Room A").await,
        room(&ts, &admin, "Room B").await,
    );
    let in_a = enroll_as(&ts, &token_value(&ts, &admin, Some(a)).await, "A-1")
        .await
        .device_id;
    let in_b = enroll_as(&ts, &token_value(&ts, &admin, Some(b)).await, "B-1")
        .await
        .device_id;
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "tess",
        &["devices.view", "devices.manage"],
        &[(a, "control")],
        false,
    )
    .await;
    let ids: Vec<i64> = ts
        .get(&teacher, "/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![in_a]);
    for (path, body) in [
        (
            format!("/api/v1/devices/{in_b}/rename"),
            json!({"name": "X-1"}),
        ),
        (format!("/api/v1/devices/{in_b}/delete"), json!({})),
        (format!("/api/v1/devices/{in_b}/accept-name"), json!({})),
    ] {
        let (s, v) = ts.post(&teacher, &path, body).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (s, v) = ts
        .post(
            &teacher,
            &format!("/api/v1/devices/{in_a}/rename"),
            json!({"name": "A-2"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The teacher's availability view shows their room only.
    let av = ts.get(&teacher, "/api/v1/availability").await;
    let names: Vec<&str> = av["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Room A"], "{av}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_availability_screen_is_off_until_an_administrator_turns_it_on_and_names_no_one()
{
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let a = room(&ts, &admin, "Room A").await;
    let token = token_value(&ts, &admin, Some(a)).await;
    let busy = start_agent(&ts, &token, "A-1", Some("amy.pupil")).await;
    let free = start_agent(&ts, &token, "A-2", None).await;
    let gone = start_agent(&ts, &token, "A-3", None).await;
    gone.stop().await;
    let public = || async {
        let r = ts
            .client()
            .get(ts.url("/api/v1/public/availability"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (s, body) = public().await;
    assert_eq!(s, 409, "off by default: {body}");
    assert!(body.contains("public_view_off"), "{body}");

    // Staff see counts and who is signed in.
    wait_for(|| async {
        let av = ts.get(&admin, "/api/v1/availability").await;
        let r = &av["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Room A")?
            .clone();
        (r["free"] == 1 && r["in_use"] == 1 && r["offline"] == 1).then_some(())
    })
    .await;
    let av = ts.get(&admin, "/api/v1/availability").await;
    assert!(av.to_string().contains("amy.pupil"), "{av}");

    // Only an administrator turns it on.
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "tess",
        &["devices.view", "devices.manage"],
        &[(a, "control")],
        false,
    )
    .await;
    let put = |who: String, on: bool| {
        let ts = &ts;
        async move {
            let r = ts
                .client()
                .put(ts.url("/api/v1/availability/settings"))
                .bearer_auth(who)
                .json(&json!({"public": on}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = put(teacher.clone(), true).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        ts.get(&teacher, "/api/v1/availability/settings").await["may_change"],
        false
    );
    let (s, v) = put(admin.clone(), true).await;
    assert_eq!(s, 200, "{v}");
    assert!(audit_has(&ts, &admin, "availability.public", "ok").await);

    let (s, body) = public().await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let r = v["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Room A")
        .unwrap();
    assert_eq!(
        (r["free"].clone(), r["in_use"].clone(), r["offline"].clone()),
        (json!(1), json!(1), json!(1)),
        "{r}"
    );
    let names: Vec<&str> = r["computers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["A-1", "A-2", "A-3"]);
    // Names of rooms and computers, counts: no user, window, id or picture.
    for secret in ["amy.pupil", "user", "window", "thumbnail", "\"id\""] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }

    // Rate-limited per address.
    let mut limited = false;
    for _ in 0..100 {
        let r = ts
            .client()
            .get(ts.url("/api/v1/public/availability"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "never rate-limited");

    // Off again: refused again.
    let (s, _) = put(admin.clone(), false).await;
    assert_eq!(s, 200);
    busy.stop().await;
    free.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_reported_name_keeps_the_device_in_its_room() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let a = room(&ts, &admin, "Room A").await;
    let token = token_value(&ts, &admin, Some(a)).await;
    let cred = enroll_as(&ts, &token, "PC-1").await;
    let taken = enroll_as(&ts, &token, "PC-9").await.device_id;
    let id = cred.device_id;
    // The computer now calls itself PC-9, which another computer is called.
    let agent = run_enrolled(cred.clone(), "PC-9", None).await;
    let path = format!("/api/v1/devices/{id}/accept-name");
    let (s, v) = ts.post(&admin, &path, json!({})).await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/devices/{taken}"),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = ts
        .post(
            &admin,
            &format!("/api/v1/devices/{taken}/delete"),
            json!({}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    agent.stop().await;
    let agent = run_enrolled(cred, "PC-9", None).await;
    let (s, v) = ts.post(&admin, &path, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let members = ts.get(&admin, &format!("/api/v1/groups/{a}")).await["members"].clone();
    assert!(
        members
            .as_array()
            .unwrap()
            .contains(&json!({"type": "hostname", "value": "PC-9"})),
        "{members}"
    );
    assert!(
        !members
            .as_array()
            .unwrap()
            .contains(&json!({"type": "hostname", "value": "PC-1"})),
        "{members}"
    );
    // Still under the room's settings.
    wait_for(|| async {
        agent
            .desktop
            .lock()
            .unwrap()
            .state()
            .sound_muted
            .then_some(())
    })
    .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrolled_under_another_ones_name_does_not_pull_it_into_a_room() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (a, b) = (
        room(&ts, &admin, "Room A").await,
        room(&ts, &admin, "Room B").await,
    );
    let real = enroll_as(&ts, &token_value(&ts, &admin, Some(a)).await, "PC-1")
        .await
        .device_id;
    // Someone who controls only Room B enrolls a device calling itself PC-1.
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "tess",
        &["devices.view", "devices.manage"],
        &[(b, "control")],
        false,
    )
    .await;
    let token = token_value(&ts, &teacher, Some(b)).await;
    let fake = enroll_as(&ts, &token, "PC-1").await.device_id;
    let members = ts.get(&admin, &format!("/api/v1/groups/{b}")).await["members"].clone();
    assert_eq!(
        members,
        json!([{"type": "hostname", "value": "NOMATCH-*"}]),
        "{members}"
    );
    // The teacher still sees neither device.
    let ids: Vec<i64> = ts
        .get(&teacher, "/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&real) && !ids.contains(&fake), "{ids:?}");
    assert!(audit_has(&ts, &admin, "device.join_room", "name_shared").await);
}
