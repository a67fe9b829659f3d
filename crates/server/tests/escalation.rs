//! No one can grant themselves more than they hold: the attacks from issue 9
//! against a real server, each refused with its reason and audited, and a
//! seeded random sequence of real API calls by a delegated manager (and the
//! accounts it creates) after which none of them holds more than the manager
//! held at the start.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

const PW: &str = "delegate-password";

async fn call(ts: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = ts.client().request(m, ts.url(path)).bearer_auth(token);
    req = match body {
        Value::String(s) => req.body(s),
        Value::Null => req,
        b => req.json(&b),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a teacher account and an access rule for it (as the admin).
async fn delegate(ts: &TestServer, admin: &str, name: &str, rule: Value) -> String {
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": PW, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut rule = rule;
    rule["principal"] = json!({"type": "user", "value": name});
    let (s, v) = ts.post(admin, "/api/v1/access-rules", rule).await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, PW).await
}

async fn rights(ts: &TestServer, token: &str) -> Value {
    ts.get(token, "/api/v1/me").await["rights"].clone()
}

fn refused(status: u16, body: &Value, reason: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

/// Groups "Room 5", "Room 6" and "Lab" (no rule names Lab) with one enrolled,
/// offline device each, plus one in no group. Returns (Entire Network, Room 5,
/// Room 6, Lab) ids.
async fn classrooms(ts: &TestServer, admin: &str) -> (i64, i64, i64, i64) {
    let mut ids = vec![];
    for (name, pattern) in [
        ("Room 5", "ROOM5-*"),
        ("Room 6", "ROOM6-*"),
        ("Lab", "LAB-*"),
    ] {
        let (s, g) = ts
            .post(
                admin,
                "/api/v1/groups",
                json!({"name": name, "kind": "computer", "priority": "low",
                "members": [{"type": "hostname", "value": pattern}]}),
            )
            .await;
        assert_eq!(s, 201, "{g}");
        ids.push(g["id"].as_i64().unwrap());
    }
    let groups = ts.get(admin, "/api/v1/groups").await;
    let en = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "entire_network")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let token = ts.enrollment_token(admin, 4).await;
    for host in ["ROOM5-PC01", "ROOM6-PC01", "LAB-PC01", "OFFICE-PC01"] {
        let info = lectern_agent::local_device_info(Some(host.into()));
        lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &token, &info)
            .await
            .unwrap();
    }
    (en, ids[0], ids[1], ids[2])
}

async fn seen(ts: &TestServer, token: &str) -> BTreeSet<String> {
    ts.get(token, "/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap().to_string())
        .collect()
}

/// A powerful directory group, written by the admin.
async fn admins_rule(ts: &TestServer, admin: &str, en: i64) -> i64 {
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "directory_group", "value": "Admins"},
            "features": ["audit.view", "reports.manage", "access.manage", "live_view"],
            "group_access": {en.to_string(): "control"}, "bypass_privacy": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn denials(ts: &TestServer, admin: &str, actor: &str) -> Vec<String> {
    ts.get(admin, "/api/v1/audit?limit=1000")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == actor && e["action"] == "access.denied")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_manager_cannot_put_themselves_into_a_directory_group() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let groups = ts.get(&admin, "/api/v1/groups").await;
    let en = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "entire_network")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    admins_rule(&ts, &admin, en).await;
    let gm = delegate(
        &ts,
        &admin,
        "gm",
        json!({"features": ["groups.manage", "groups.view"]}),
    )
    .await;
    let before = rights(&ts, &gm).await;

    // Memberships are their own right now: groups.manage is not enough.
    let (s, v) = call(
        &ts,
        &gm,
        "PUT",
        "/api/v1/directory/users/gm",
        json!({"groups": ["Admins"]}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = call(
        &ts,
        &gm,
        "POST",
        "/api/v1/directory/import",
        json!("username,group\ngm,Admins\n"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(rights(&ts, &gm).await, before);
    assert!(ts
        .get(&admin, "/api/v1/directory/users")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    assert!(denials(&ts, &admin, "gm")
        .await
        .iter()
        .any(|d| d.contains("directory.manage")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_manager_never_edits_their_own_groups_nor_adds_more_than_they_hold() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (en, room5, _, _) = classrooms(&ts, &admin).await;
    admins_rule(&ts, &admin, en).await;
    let (s, _) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "directory_group", "value": "Room 5 Teachers"},
            "features": ["devices.view"], "group_access": {room5.to_string(): "view"}}),
        )
        .await;
    assert_eq!(s, 201);
    let dm = delegate(
        &ts,
        &admin,
        "dm",
        json!({"features": ["directory.manage", "devices.view", "groups.view"],
        "group_access": {room5.to_string(): "control"}}),
    )
    .await;
    let before = rights(&ts, &dm).await;

    let (s, v) = call(
        &ts,
        &dm,
        "PUT",
        "/api/v1/directory/users/DM",
        json!({"groups": ["Room 5 Teachers"]}),
    )
    .await;
    refused(s, &v, "own_memberships");
    let (s, v) = call(
        &ts,
        &dm,
        "PUT",
        "/api/v1/directory/users/bob",
        json!({"groups": ["admins"]}),
    )
    .await;
    refused(s, &v, "directory_group_beyond_your_rights");
    assert!(v["error"].as_str().unwrap().contains("admins"), "{v}");
    // The CSV path: one refused row refuses the whole import.
    let csv = "username,group\namy,Year 9\nbob,Admins\ndm,Room 5 Teachers\n";
    let (s, v) = call(&ts, &dm, "POST", "/api/v1/directory/import", json!(csv)).await;
    refused(s, &v, "directory_group_beyond_your_rights");
    assert!(
        ts.get(&admin, "/api/v1/directory/users")
            .await
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing saved"
    );
    let (s, v) = call(
        &ts,
        &dm,
        "POST",
        "/api/v1/directory/import",
        json!("dm,Year 9\n"),
    )
    .await;
    refused(s, &v, "own_memberships");
    assert_eq!(rights(&ts, &dm).await, before);

    // Within their rights it works, and is audited with the old and new groups.
    let (s, v) = call(
        &ts,
        &dm,
        "PUT",
        "/api/v1/directory/users/bob",
        json!({"groups": ["Room 5 Teachers", "Year 9"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &ts,
        &dm,
        "POST",
        "/api/v1/directory/import",
        json!("amy,Year 9\nbob,Year 9\n"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let set = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "directory.set")
        .unwrap();
    assert_eq!(set["actor"], "dm");
    assert!(
        set["detail"]
            .as_str()
            .unwrap()
            .contains(r#""after":["Room 5 Teachers","Year 9"]"#),
        "{set}"
    );
    let import = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "directory.import")
        .unwrap();
    assert!(
        import["detail"]
            .as_str()
            .unwrap()
            .contains(r#""before":["Room 5 Teachers","Year 9"]"#),
        "{import}"
    );
    // Three refusals audited with their reasons.
    let d = denials(&ts, &admin, "dm").await;
    assert_eq!(
        d.iter().filter(|d| d.contains("own_memberships")).count(),
        2,
        "{d:?}"
    );
    assert_eq!(
        d.iter()
            .filter(|d| d.contains("directory_group_beyond_your_rights"))
            .count(),
        2,
        "{d:?}"
    );
    // An administrator may do anything, their own groups included.
    let (s, _) = call(
        &ts,
        &admin,
        "PUT",
        "/api/v1/directory/users/admin",
        json!({"groups": ["Admins"]}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_manager_grants_no_more_than_their_own_account_holds() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (en, room5, room6, _) = classrooms(&ts, &admin).await;
    let powerful = admins_rule(&ts, &admin, en).await;
    // Rights held only at this console's address can be used but not granted.
    let (s, _) = ts
        .post(&admin, "/api/v1/access-rules", json!({"principal": {"type": "computer", "value": "127.0.0.0/8"}, "features": ["command.message"]}))
        .await;
    assert_eq!(s, 201);
    let (s, _) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            // For an account made later: a user not seen yet.
            json!({"principal": {"type": "user", "value": "head"}, "features": ["audit.view"], "allow_unknown": true}),
        )
        .await;
    assert_eq!(s, 201);
    let am = delegate(
        &ts,
        &admin,
        "am",
        json!({"features": ["access.manage", "devices.view"],
        "group_access": {room5.to_string(): "control"}}),
    )
    .await;
    let before = rights(&ts, &am).await;
    assert!(before["features"]
        .as_array()
        .unwrap()
        .contains(&json!("command.message")));

    // The attack from the issue: every feature, Entire Network, privacy bypass.
    let all: Vec<Value> = ts
        .get(&admin, "/api/v1/access-rules/features")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].clone())
        .collect();
    let me = json!({"type": "user", "value": "am"});
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/access-rules",
            json!({"principal": me, "features": all,
            "group_access": {en.to_string(): "control"}, "bypass_privacy": true}),
        )
        .await;
    refused(s, &v, "rule_exceeds_your_rights");
    assert!(
        all.contains(&json!("directory.manage")),
        "the new right is listed: {all:?}"
    );
    for (rule, what) in [
        (
            json!({"principal": me, "features": ["devices.view"], "group_access": {room6.to_string(): "view"}}),
            "another class",
        ),
        (
            json!({"principal": me, "features": [], "bypass_privacy": true}),
            "privacy bypass",
        ),
        (
            json!({"principal": {"type": "user", "value": "bob"}, "features": ["audit.view"]}),
            "for someone else",
        ),
        (
            json!({"principal": me, "features": ["command.message"]}),
            "a right held only at this computer",
        ),
        (
            json!({"principal": {"type": "computer", "value": "10.0.0.0/8"}, "features": ["groups.manage"]}),
            "for a computer",
        ),
    ] {
        let (s, v) = ts.post(&am, "/api/v1/access-rules", rule).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some("rule_exceeds_your_rights")),
            "{what}: {v}"
        );
    }
    // Rules above them cannot be rewritten or deleted either.
    let (s, v) = call(
        &ts,
        &am,
        "PUT",
        &format!("/api/v1/access-rules/{powerful}"),
        json!({"principal": me, "features": ["devices.view"]}),
    )
    .await;
    refused(s, &v, "rule_beyond_your_rights");
    let (s, v) = call(
        &ts,
        &am,
        "DELETE",
        &format!("/api/v1/access-rules/{powerful}"),
        Value::Null,
    )
    .await;
    refused(s, &v, "rule_beyond_your_rights");
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/access-rules",
            json!({"principal": me, "group_access": {"9999": "view"}}),
        )
        .await;
    assert_eq!(s, 400, "no such group: {v}");
    // Accounts: not an admin, not one whose name rules already favour.
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/users",
            json!({"username": "evil", "password": PW, "role": "admin"}),
        )
        .await;
    refused(s, &v, "admin_only");
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/users",
            json!({"username": "HEAD", "password": PW, "role": "teacher"}),
        )
        .await;
    refused(s, &v, "account_beyond_your_rights");
    let (s, _) = call(
        &ts,
        &admin,
        "PUT",
        "/api/v1/directory/users/newbie",
        json!({"groups": ["Admins"]}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/users",
            json!({"username": "newbie", "password": PW, "role": "teacher"}),
        )
        .await;
    refused(s, &v, "account_beyond_your_rights");
    assert_eq!(rights(&ts, &am).await, before, "nothing was granted");

    // Within their rights: granting part of what they hold works, to anyone.
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": "helper"}, "allow_unknown": true,
            "features": ["devices.view"], "group_access": {room5.to_string(): "view"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(&ts, &am, "PUT", &format!("/api/v1/access-rules/{}", v["id"]),
        json!({"principal": {"type": "user", "value": "helper"}, "features": ["devices.view"], "group_access": {room5.to_string(): "control"}})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = ts
        .post(
            &am,
            "/api/v1/users",
            json!({"username": "helper", "password": PW, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let helper = ts.login_as("helper", PW).await;
    assert_eq!(
        seen(&ts, &helper).await,
        BTreeSet::from(["ROOM5-PC01".to_string()])
    );
    let d = denials(&ts, &admin, "am").await;
    assert!(d.len() >= 11, "every refusal audited: {d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_who_manages_groups_cannot_move_other_computers_into_their_class() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (en, room5, _, lab) = classrooms(&ts, &admin).await;
    let t = delegate(
        &ts,
        &admin,
        "t",
        json!({"features": ["groups.manage", "devices.view"],
        "group_access": {room5.to_string(): "control"}}),
    )
    .await;
    assert_eq!(
        seen(&ts, &t).await,
        BTreeSet::from(["ROOM5-PC01".to_string()])
    );
    let everything = json!({"members": [{"type": "hostname", "value": "*"}]});
    let (s, v) = call(
        &ts,
        &t,
        "PUT",
        &format!("/api/v1/groups/{room5}"),
        everything.clone(),
    )
    .await;
    refused(s, &v, "group_access_beyond_your_rights");
    assert_eq!(
        seen(&ts, &t).await,
        BTreeSet::from(["ROOM5-PC01".to_string()])
    );
    // A group they have no control of is not theirs to fill; their own
    // class's priority is theirs to set.
    let (s, v) = call(
        &ts,
        &t,
        "PUT",
        &format!("/api/v1/groups/{lab}"),
        everything.clone(),
    )
    .await;
    refused(s, &v, "group_control_needed");
    let (s, v) = call(
        &ts,
        &t,
        "PUT",
        &format!("/api/v1/groups/{room5}"),
        json!({"priority": "high"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Deleting a group and creating one that reuses its id grants nothing.
    let (s, _) = call(
        &ts,
        &t,
        "DELETE",
        &format!("/api/v1/groups/{room5}"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 204);
    // A new group with members needs control of Entire Network; an empty one
    // does not.
    let (s, v) = ts
        .post(&t, "/api/v1/groups", json!({"name": "Mine", "kind": "computer", "priority": "low", "members": [{"type": "hostname", "value": "*"}]}))
        .await;
    refused(s, &v, "group_control_needed");
    let (s, g) = ts
        .post(
            &t,
            "/api/v1/groups",
            json!({"name": "Mine", "kind": "computer", "priority": "low"}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert!(
        seen(&ts, &t).await.is_empty(),
        "group {} ({room5} deleted)",
        g["id"]
    );
    // Someone with control of every computer may.
    let it = delegate(
        &ts,
        &admin,
        "it",
        json!({"features": ["groups.manage"], "group_access": {en.to_string(): "control"}}),
    )
    .await;
    let (s, v) = call(
        &ts,
        &it,
        "PUT",
        &format!("/api/v1/groups/{}", g["id"]),
        everything,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// Group settings (privacy, thumbnails, web and internet) apply to the
/// members' devices: a groups manager changes them only on groups they
/// control, never on Entire Network without controlling it, and each refusal
/// is audited with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_manager_changes_settings_only_where_they_have_control() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (en, room5, room6, lab) = classrooms(&ts, &admin).await;
    let t = delegate(
        &ts,
        &admin,
        "t",
        json!({"features": ["groups.manage", "devices.view"],
        "group_access": {room5.to_string(): "control", room6.to_string(): "view"}}),
    )
    .await;
    let attempts = [
        json!({"settings": {"remote_view": "allow"}}),
        json!({"settings": {"thumbnails_allowed": true}}),
        json!({"priority": "high"}),
        json!({"members": [{"type": "hostname", "value": "OFFICE-*"}]}),
    ];
    for group in [en, room6, lab] {
        for body in &attempts {
            let path = format!("/api/v1/groups/{group}");
            let (s, v) = call(&ts, &t, "PUT", &path, body.clone()).await;
            if group == en && body.get("members").is_some() {
                // Entire Network's members are fixed for everyone.
                assert_eq!(s, 400, "{path} {body}: {v}");
                continue;
            }
            refused(s, &v, "group_control_needed");
        }
        let path = format!("/api/v1/groups/{group}");
        let (s, v) = call(&ts, &t, "DELETE", &path, Value::Null).await;
        assert!(s == 403 || (group == en && s == 400), "{path}: {s} {v}");
    }
    let before = ts.get(&admin, &format!("/api/v1/groups/{en}")).await;
    assert!(before["settings"].get("remote_view").is_none(), "{before}");
    let refusals = denials(&ts, &admin, "t").await;
    // Entire Network: three settings or priority changes; Room 6 and Lab: four changes and a delete each.
    assert_eq!(refusals.len(), 3 + 5 + 5, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|d| d.contains("group_control_needed") && d.contains("needs control")),
        "{refusals:?}"
    );
    // Their own class's settings are theirs.
    let (s, v) = call(
        &ts,
        &t,
        "PUT",
        &format!("/api/v1/groups/{room5}"),
        json!({"settings": {"remote_view": "allow"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Control of Entire Network covers Entire Network.
    let it = delegate(
        &ts,
        &admin,
        "it",
        json!({"features": ["groups.manage"], "group_access": {en.to_string(): "control"}}),
    )
    .await;
    let (s, v) = call(
        &ts,
        &it,
        "PUT",
        &format!("/api/v1/groups/{en}"),
        json!({"settings": {"remote_view": "allow"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A small deterministic generator (no dependency needed for a fixed seed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn some<T: Clone>(&mut self, v: &[T]) -> Vec<T> {
        v.iter().filter(|_| self.below(2) == 0).cloned().collect()
    }
}

/// What an account may see and do, read back through the API.
struct Observed {
    features: BTreeSet<String>,
    bypass: bool,
    access: Vec<(i64, String)>,
    devices: BTreeSet<String>,
}

async fn observe(ts: &TestServer, token: &str) -> Observed {
    let r = rights(ts, token).await;
    let features: BTreeSet<String> = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let devices = if features.contains("devices.view") {
        seen(ts, token).await
    } else {
        BTreeSet::new()
    };
    Observed {
        bypass: r["bypass_privacy"].as_bool().unwrap(),
        access: r["group_access"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(g, a)| (g.parse().unwrap(), a.as_str().unwrap().to_string()))
            .collect(),
        features,
        devices,
    }
}

fn level(a: &str) -> u8 {
    match a {
        "control" => 2,
        "view" => 1,
        _ => 0,
    }
}

fn within(now: &Observed, start: &Observed, en: i64) -> Result<(), String> {
    if let Some(f) = now.features.difference(&start.features).next() {
        return Err(format!("gained feature {f}"));
    }
    if now.bypass && !start.bypass {
        return Err("gained privacy bypass".into());
    }
    let held = |g: i64| {
        start
            .access
            .iter()
            .filter(|(h, _)| *h == g || *h == en)
            .map(|(_, a)| level(a))
            .max()
            .unwrap_or(0)
    };
    if let Some((g, a)) = now.access.iter().find(|(g, a)| level(a) > held(*g)) {
        return Err(format!("gained {a} on group {g}"));
    }
    if let Some(d) = now.devices.difference(&start.devices).next() {
        return Err(format!("gained sight of {d}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_calls_by_a_delegated_manager_never_raise_its_accounts() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (en, room5, room6, lab) = classrooms(&ts, &admin).await;
    admins_rule(&ts, &admin, en).await;
    for rule in [
        json!({"principal": {"type": "directory_group", "value": "Staff"}, "features": ["devices.view"], "group_access": {room6.to_string(): "view"}}),
        json!({"principal": {"type": "user", "value": "head"}, "features": ["audit.view", "devices.view"], "group_access": {room6.to_string(): "control"}, "allow_unknown": true}),
        json!({"principal": {"type": "computer", "value": "127.0.0.1"}, "features": ["command.message"]}),
    ] {
        let (s, v) = ts.post(&admin, "/api/v1/access-rules", rule).await;
        assert_eq!(s, 201, "{v}");
    }
    let mgr = delegate(&ts, &admin, "mgr", json!({"features": ["access.manage", "directory.manage", "groups.manage", "groups.view", "devices.view", "command.lock"],
        "group_access": {room5.to_string(): "control"}})).await;
    let start = observe(&ts, &mgr).await;
    assert_eq!(start.devices, BTreeSet::from(["ROOM5-PC01".to_string()]));

    // The manager's own rights first, then others'.
    let features = [
        "devices.view",
        "command.lock",
        "groups.view",
        "audit.view",
        "access.manage",
        "live_view",
    ];
    let groups = [en, room5, room6, lab];
    let principals = [
        json!({"type": "user", "value": "mgr"}),
        json!({"type": "user", "value": "bob"}),
        json!({"type": "directory_group", "value": "Staff"}),
        json!({"type": "directory_group", "value": "Admins"}),
        json!({"type": "directory_group", "value": "Choir"}),
        json!({"type": "computer", "value": "127.0.0.1"}),
    ];
    let names = ["mgr", "bob", "head", "carol", "erin"];
    let dirs = ["Staff", "Admins", "Year 9", "Choir"];
    let tame = ["Year 9", "Choir"];
    let patterns = ["ROOM5-*", "ROOM6-*", "LAB-*", "*"];
    let mut rng = Lcg(0x1ec7e5);
    let mut accounts = vec![("mgr".to_string(), mgr)];
    // Rules the accounts wrote (the likeliest to be theirs to change).
    let mut mine: Vec<i64> = vec![];
    let (mut accepted, mut refusals) = (0, 0);
    for step in 0..60 {
        // Mostly the manager; sometimes an account it made.
        let (who, token) = match rng.below(4) {
            0 => rng.pick(&accounts).clone(),
            _ => accounts[0].clone(),
        };
        // Mostly within the manager's rights, sometimes beyond.
        let bold = rng.below(3) == 0;
        let (method, path, body) = match rng.below(7) {
            0 | 1 => {
                let mut granted = rng.some(&features[..3]);
                if bold {
                    granted.push(*rng.pick(&features));
                }
                let on = if bold { rng.some(&groups) } else { vec![room5] };
                let access: serde_json::Map<String, Value> = on
                    .into_iter()
                    .map(|g| (g.to_string(), json!(*rng.pick(&["view", "control"]))))
                    .collect();
                let rule = json!({"principal": rng.pick(&principals), "features": granted,
                    "group_access": access, "bypass_privacy": bold && rng.below(2) == 0,
                    // Accounts come and go in this walk: rules may name one not made yet.
                    "allow_unknown": true});
                let ids: Vec<i64> = if mine.is_empty() || bold {
                    let rules = ts.get(&admin, "/api/v1/access-rules").await;
                    let all = rules.as_array().unwrap().iter();
                    all.map(|r| r["id"].as_i64().unwrap()).collect()
                } else {
                    mine.clone()
                };
                let id = *rng.pick(&ids);
                match rng.below(3) {
                    0 => ("POST", "/api/v1/access-rules".to_string(), rule),
                    1 => ("PUT", format!("/api/v1/access-rules/{id}"), rule),
                    _ => ("DELETE", format!("/api/v1/access-rules/{id}"), Value::Null),
                }
            }
            2 => {
                let groups = rng.some(if bold { &dirs[..] } else { &tame[..] });
                let path = format!("/api/v1/directory/users/{}", rng.pick(&names));
                ("PUT", path, json!({ "groups": groups }))
            }
            3 => {
                let pool = if bold { &dirs[..] } else { &tame[..] };
                let csv: String = (0..2)
                    .map(|_| format!("{},{}\n", rng.pick(&names), rng.pick(pool)))
                    .collect();
                ("POST", "/api/v1/directory/import".to_string(), json!(csv))
            }
            4 => {
                let name = rng.pick(&["head", "carol", "dave", "Bob", "erin", "frank"]);
                let body = json!({"username": name, "password": PW, "role": "teacher"});
                ("POST", "/api/v1/users".to_string(), body)
            }
            _ => {
                let members: Vec<Value> = rng
                    .some(&patterns)
                    .into_iter()
                    .map(|p| json!({"type": "hostname", "value": p}))
                    .collect();
                let group = *rng.pick(&[room5, room6, lab]);
                let path = format!("/api/v1/groups/{group}");
                ("PUT", path, json!({ "members": members }))
            }
        };
        let (s, v) = call(&ts, &token, method, &path, body.clone()).await;
        let what = format!("step {step}: {who} {method} {path} {body}: {s} {v}");
        assert!([200, 201, 204, 400, 403, 404, 409].contains(&s), "{what}");
        if s < 300 {
            accepted += 1;
            if method == "POST" && path == "/api/v1/access-rules" {
                mine.push(v["id"].as_i64().unwrap());
            }
            if path == "/api/v1/users" {
                let name = body["username"].as_str().unwrap().to_string();
                let t = ts.login_as(&name, PW).await;
                accounts.push((name, t));
            }
        } else if s == 403 {
            refusals += 1;
        }
        for (name, t) in &accounts {
            if let Err(e) = within(&observe(&ts, t).await, &start, en) {
                panic!("after {what}: {name} {e}");
            }
        }
    }
    eprintln!("{accepted} changes accepted, {refusals} refused");
    assert!(
        accepted >= 10 && refusals >= 10,
        "{accepted} accepted, {refusals} refused"
    );
}

/// The route walk in `groups.rs` checks that a user with no rights is refused
/// everywhere; this checks the new right: every operation the API document
/// says needs `directory.manage` refuses a user holding every other right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_routes_need_their_own_right_whatever_else_one_holds() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let others: Vec<Value> = ts
        .get(&admin, "/api/v1/access-rules/features")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].clone())
        .filter(|k| k != "directory.manage")
        .collect();
    let almost = delegate(&ts, &admin, "almost", json!({ "features": others })).await;
    let only = delegate(
        &ts,
        &admin,
        "only",
        json!({"features": ["directory.manage"]}),
    )
    .await;
    let doc = ts.get(&admin, "/api/v1/openapi.json").await;
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let needs = op["description"]
                .as_str()
                .is_some_and(|d| d.contains("Needs directory.manage"));
            // People's aliases have their own walk (identity_aliases.rs).
            if !needs || !path.starts_with("/directory/") {
                continue;
            }
            let url = format!("/api/v1{}", path.replace("{username}", "amy"));
            let body = match method.as_str() {
                "put" => json!({"groups": ["Year 9"]}),
                _ => json!("amy,Year 9\n"),
            };
            let m = method.to_uppercase();
            let (s, v) = call(&ts, &almost, &m, &url, body.clone()).await;
            assert_eq!(s, 403, "{method} {path}: {v}");
            let (s, v) = call(&ts, &only, &m, &url, body).await;
            assert_eq!(s, 200, "{method} {path}: {v}");
            walked += 1;
        }
    }
    assert_eq!(
        walked, 2,
        "PUT /directory/users/{{username}} and POST /directory/import"
    );
}

/// The CLI makes accounts as the data directory's owner (any role), and the
/// audit log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_added_from_the_command_line_are_audited() {
    let ts = TestServer::start().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lectern-server"))
        .args([
            "user-add",
            "--username",
            "cli.teacher",
            "--role",
            "teacher",
            "--data-dir",
        ])
        .arg(ts.data_dir())
        .env("LECTERN_USER_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = ts.login().await;
    let audit = ts.get(&admin, "/api/v1/audit?limit=100").await;
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["actor"] == "cli"
            && e["action"] == "user.create"
            && e["detail"] == "cli.teacher (teacher)"),
        "{audit}"
    );
}
