//! Groups and lessons that don't surprise (issue 12, point 7): a group shows
//! the devices its members match (scoped by the caller's rights), access
//! rules for unknown users are refused unless flagged, and lessons need a
//! restriction and never overlap for one class.

mod common;

use common::*;
use serde_json::{json, Value};

async fn status_of(ts: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The host names in a `{count, devices}` answer, sorted; checks the count
/// matches the list.
fn hosts(v: &Value) -> Vec<String> {
    let devices = v["devices"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(v["count"].as_u64().unwrap() as usize, devices.len(), "{v}");
    let mut h: Vec<String> = devices
        .iter()
        .map(|d| d["hostname"].as_str().unwrap().to_string())
        .collect();
    h.sort();
    h
}

async fn teacher(ts: &TestServer, admin: &str, name: &str, rule: Value) -> String {
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": "teacher-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut rule = rule;
    rule["principal"] = json!({"type": "user", "value": name});
    let (s, v) = ts.post(admin, "/api/v1/access-rules", rule).await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, "teacher-password").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_shows_the_devices_its_patterns_match_scoped_to_the_caller() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 4).await;
    let agents = [
        start_agent(&ts, &enroll, "ROOM5-PC01", Some("amy")).await,
        start_agent(&ts, &enroll, "ROOM5-PC02", Some("ben")).await,
        start_agent(&ts, &enroll, "ROOM6-PC01", Some("cat")).await,
        start_agent(&ts, &enroll, "LAB-PC01", Some("amy")).await,
    ];
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let room6 = computer_group(&ts, &admin, "Room 6", "ROOM6-*").await;

    // A wildcard shows every device it matches, not "1 member".
    let (s, v) = status_of(&ts, &admin, &format!("/api/v1/groups/{room5}/members")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(hosts(&v), ["ROOM5-PC01", "ROOM5-PC02"]);

    // The preview answers for patterns not stored yet.
    let preview = |members: Value| json!({"kind": "computer", "members": members});
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/groups/preview",
            preview(json!([{"type": "hostname", "value": "room*"}])),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(hosts(&v), ["ROOM5-PC01", "ROOM5-PC02", "ROOM6-PC01"]);
    let (_, v) = ts
        .post(&admin, "/api/v1/groups/preview", preview(json!([])))
        .await;
    assert_eq!(hosts(&v), Vec::<String>::new());

    // User members match the devices those users are logged in on now.
    let amy = wait_for(|| async {
        let (_, v) = ts
            .post(
                &admin,
                "/api/v1/groups/preview",
                json!({"kind": "user", "members": [{"type": "user", "value": "AMY"}]}),
            )
            .await;
        (v["count"] == 2).then_some(v)
    })
    .await;
    assert_eq!(hosts(&amy), ["LAB-PC01", "ROOM5-PC01"]);

    // Bad members are refused as when saving, naming the problem.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/groups/preview",
            json!({"kind": "user", "members": [{"type": "hostname", "value": "ROOM*"}]}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("user groups"),
        "{v}"
    );
    let (s, _) = status_of(&ts, &admin, "/api/v1/groups/999999/members").await;
    assert_eq!(s, 404);

    // A teacher who sees only Room 5 sees only Room 5's devices, whatever
    // the pattern; Room 6's device is neither listed nor counted.
    let t = teacher(
        &ts,
        &admin,
        "t",
        json!({"features": ["devices.view", "groups.view"], "group_access": {room5.to_string(): "view"}}),
    )
    .await;
    let (s, v) = ts
        .post(
            &t,
            "/api/v1/groups/preview",
            preview(json!([{"type": "hostname", "value": "*"}])),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(hosts(&v), ["ROOM5-PC01", "ROOM5-PC02"]);
    let (_, v) = status_of(&ts, &t, &format!("/api/v1/groups/{room6}/members")).await;
    assert_eq!(hosts(&v), Vec::<String>::new());
    let entire = ts.get(&admin, "/api/v1/groups").await;
    let entire = entire
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "entire_network")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (_, v) = status_of(&ts, &admin, &format!("/api/v1/groups/{entire}/members")).await;
    assert_eq!(v["count"], 4, "{v}");
    let (_, v) = status_of(&ts, &t, &format!("/api/v1/groups/{entire}/members")).await;
    assert_eq!(hosts(&v), ["ROOM5-PC01", "ROOM5-PC02"]);

    // Without groups.view, neither answers.
    let none = teacher(&ts, &admin, "none", json!({"features": ["devices.view"]})).await;
    let (s, _) = ts
        .post(&none, "/api/v1/groups/preview", preview(json!([])))
        .await;
    assert_eq!(s, 403);
    let (s, _) = status_of(&ts, &none, &format!("/api/v1/groups/{room5}/members")).await;
    assert_eq!(s, 403);
    for a in agents {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_rule_for_an_unknown_user_is_refused_unless_flagged() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let rule = |name: &str| json!({"principal": {"type": "user", "value": name}, "features": ["devices.view"]});

    let (s, v) = ts
        .post(&admin, "/api/v1/access-rules", rule("ms.kahn"))
        .await;
    assert_eq!(s, 400, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("\"ms.kahn\"") && msg.contains("allow_unknown"),
        "{v}"
    );
    let rules = ts.get(&admin, "/api/v1/access-rules").await;
    assert!(
        !rules.to_string().contains("ms.kahn"),
        "nothing stored: {rules}"
    );

    // Flagged as meant for a user not seen yet, it is written.
    let mut flagged = rule("new.teacher");
    flagged["allow_unknown"] = json!(true);
    let (s, v) = ts.post(&admin, "/api/v1/access-rules", flagged).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    assert!(
        v.get("allow_unknown").is_none(),
        "the flag is not stored: {v}"
    );
    // Changing that rule's features keeps its (still unknown) user.
    let mut more = rule("new.teacher");
    more["features"] = json!(["devices.view", "groups.view"]);
    let (s, v) = ts
        .put(&admin, &format!("/api/v1/access-rules/{id}"), more)
        .await;
    assert_eq!(s, 200, "{v}");
    // Moving it to another unknown user is refused like a new rule.
    let (s, v) = ts
        .put(&admin, &format!("/api/v1/access-rules/{id}"), rule("nobdy"))
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            json!({"allow_unknown": "yes", "principal": {"type": "user", "value": "x"}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // Known users: a console account (any case), a directory entry.
    let (s, _) = ts
        .post(
            &admin,
            "/api/v1/users",
            json!({"username": "ms.khan", "password": "khan-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = ts
        .post(&admin, "/api/v1/access-rules", rule("MS.KHAN"))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = ts
        .put(
            &admin,
            "/api/v1/directory/users/mr.lee",
            json!({"groups": ["Staff"]}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = ts
        .post(&admin, "/api/v1/access-rules", rule("mr.lee"))
        .await;
    assert_eq!(s, 201, "{v}");
    // Other principals are not user names.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "directory_group", "value": "Nobody Yet"}, "features": ["devices.view"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_need_a_restriction_and_never_overlap_for_one_class() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let room6 = computer_group(&ts, &admin, "Room 6", "ROOM6-*").await;
    let lesson =
        |group: i64, r: Value| json!({"group_id": group, "minutes": 30, "restrictions": r});

    for empty in [Value::Null, json!({})] {
        let (s, v) = ts
            .post(&admin, "/api/v1/lessons", lesson(room5, empty))
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("at least one restriction"),
            "{v}"
        );
    }
    let (s, first) = ts
        .post(
            &admin,
            "/api/v1/lessons",
            lesson(room5, json!({"screen_locked": true})),
        )
        .await;
    assert_eq!(s, 201, "{first}");
    let first_id = first["id"].as_i64().unwrap();

    // A second lesson for the same class while the first runs: refused,
    // naming the first.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/lessons",
            lesson(room5, json!({"internet_blocked": true})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("lesson {first_id},")) && msg.contains("\"Room 5\""),
        "{v}"
    );
    let running: Vec<Value> = ts
        .get(&admin, "/api/v1/lessons")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(running.iter().filter(|l| l["active"] == true).count(), 1);

    // Another class is free; once the first ends, its class is free again.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/lessons",
            lesson(room6, json!({"internet_blocked": true})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = ts
        .post(
            &admin,
            &format!("/api/v1/lessons/{first_id}/end"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/lessons",
            lesson(room5, json!({"internet_blocked": true})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_list_entry_with_a_space_is_refused_whole_naming_its_line() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let (s, v) = ts.put(&admin,
        &format!("/api/v1/groups/{room5}"),
        json!({"settings": {"web_filter_mode": "block_list", "block_list": ["games.example", "bad pattern!"]}}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("line 2: ") && msg.contains("\"bad pattern!\""),
        "{v}"
    );
    let g = ts.get(&admin, &format!("/api/v1/groups/{room5}")).await;
    assert_eq!(g["settings"], json!({}), "nothing stored: {g}");

    // The same rule for a teacher's web lists sent as a command.
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "ROOM5-PC01", None).await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/commands",
            json!({"devices": [a.id()], "command": {"type": "set_web_filter", "mode": "allow_list",
                "allow": ["wikipedia.org", "bad pattern!"], "block": []}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("allow list's line 2: ") && msg.contains("\"bad pattern!\""),
        "{v}"
    );
    a.stop().await;
}
