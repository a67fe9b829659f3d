//! One person, many names: an OS login on a desktop and an e-mail in a browser
//! resolve through the person's aliases to the same user groups and directory
//! memberships; alias changes are checked like group-member changes.

mod common;

use std::time::Duration;

use common::*;
use lectern_agent::Desktop;
use serde_json::{json, Value};

async fn send(ts: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = ts
        .client()
        .request(m, ts.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn wait_state(a: &TestAgent, what: &str, f: impl Fn(&lectern_proto::DeviceState) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f(&a.desktop.lock().unwrap().state()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent never reached: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn create_group(ts: &TestServer, token: &str, body: Value) -> i64 {
    let (s, v) = ts.post(token, "/api/v1/groups", body).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

fn zoe() -> Value {
    json!({"display_name": "Zoe Ng", "aliases": [
        {"kind": "os_login", "value": "zoe"},
        {"kind": "email", "value": "Zoe@School.example"}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_login_and_email_are_one_person_with_one_policy() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // A user group on the OS login, another on a directory group that only
    // the e-mail address is a member of.
    let by_login = create_group(
        &ts,
        &admin,
        json!({"name": "Zoe's support", "kind": "user", "priority": "high",
        "members": [{"type": "user", "value": "zoe"}], "settings": {"sound_muted": true}}),
    )
    .await;
    let by_dir = create_group(&ts, &admin, json!({"name": "Year 7", "kind": "user", "priority": "high",
        "members": [{"type": "directory_group", "value": "Year 7"}], "settings": {"printing_disabled": true}})).await;
    let (s, v) = send(
        &ts,
        &admin,
        "PUT",
        "/api/v1/directory/users/zoe@school.example",
        json!({"groups": ["Year 7"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let enroll = ts.enrollment_token(&admin, 2).await;
    // The desktop agent reports the OS login; the browser client the e-mail.
    let desktop = start_agent(&ts, &enroll, "LAB-01", Some("zoe")).await;
    let browser = start_agent(&ts, &enroll, "CB-01", Some("zoe@school.example")).await;

    // Without a person the two names are two users.
    wait_state(&desktop, "login group only", |s| {
        s.sound_muted && !s.printing_disabled
    })
    .await;
    wait_state(&browser, "directory group only", |s| {
        !s.sound_muted && s.printing_disabled
    })
    .await;

    let (s, person) = ts.post(&admin, "/api/v1/people", zoe()).await;
    assert_eq!(s, 201, "{person}");
    let pid = person["id"].as_i64().unwrap();

    // Now both devices get both groups, at once (the change re-resolves them).
    wait_state(&desktop, "both groups on the desktop", |s| {
        s.sound_muted && s.printing_disabled
    })
    .await;
    wait_state(&browser, "both groups in the browser", |s| {
        s.sound_muted && s.printing_disabled
    })
    .await;
    for (dev, reported) in [(desktop.id(), "zoe"), (browser.id(), "zoe@school.example")] {
        let r = ts
            .get(&admin, &format!("/api/v1/resultant?device={dev}"))
            .await;
        assert_eq!(r["user"], reported, "the reported name is kept");
        assert_eq!(r["person"], json!({"id": pid, "display_name": "Zoe Ng"}));
        assert_eq!(r["directory_groups"], json!(["Year 7"]));
        let mut groups: Vec<i64> = serde_json::from_value(r["groups"].clone()).unwrap();
        groups.sort();
        assert!(
            groups.contains(&by_login) && groups.contains(&by_dir),
            "{r}"
        );
        assert_eq!(r["settings"]["sound_muted"]["source"]["group_id"], by_login);
        assert_eq!(
            r["settings"]["printing_disabled"]["source"]["group_id"],
            by_dir
        );
    }
    // The device list shows the person next to the name each device reported.
    let devices = ts.get(&admin, "/api/v1/devices").await;
    for d in devices.as_array().unwrap() {
        assert_eq!(d["person"]["display_name"], "Zoe Ng", "{d}");
    }
    let names: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"]["user"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"zoe") && names.contains(&"zoe@school.example"),
        "{names:?}"
    );

    // A user that is no one's alias resolves as before.
    let r = ts.get(&admin, "/api/v1/resultant?user=zoey").await;
    assert_eq!(r["person"], Value::Null);
    assert_eq!(r["settings"]["sound_muted"]["value"], false);

    // Taking the e-mail off the person splits the names again.
    let (s, v) = send(
        &ts,
        &admin,
        "PUT",
        &format!("/api/v1/people/{pid}"),
        json!({"display_name": "Zoe Ng", "aliases": [{"kind": "os_login", "value": "zoe"}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_state(&browser, "directory group only again", |s| {
        !s.sound_muted && s.printing_disabled
    })
    .await;
    wait_state(&desktop, "login group only again", |s| {
        s.sound_muted && !s.printing_disabled
    })
    .await;

    // A user logging in later is resolved too.
    browser.desktop.lock().unwrap().login("ZOE");
    wait_state(&browser, "the login alias, whatever its case", |s| {
        s.sound_muted && !s.printing_disabled
    })
    .await;
    // Its login is logged under the name reported, with the person beside it.
    let row = wait_for(|| async {
        let rows = ts.get(&admin, "/api/v1/activity?kind=login").await;
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["user"] == "ZOE")
            .cloned()
    })
    .await;
    assert_eq!(row["person_id"], pid, "{row}");
    assert_eq!(row["person"], "Zoe Ng", "{row}");

    let (s, _) = send(
        &ts,
        &admin,
        "DELETE",
        &format!("/api/v1/people/{pid}"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ts.get(&admin, "/api/v1/people").await, json!([]));
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["person.create", "person.update", "person.delete"] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
    desktop.stop().await;
    browser.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_people_are_refused_and_lose_nothing() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, v) = ts.post(&admin, "/api/v1/people", zoe()).await;
    assert_eq!(s, 201, "{v}");
    let cases = [
        (
            json!({"display_name": "Other", "aliases": [{"kind": "directory", "value": "ZOE"}]}),
            409,
        ),
        (
            json!({"display_name": "Other", "aliases": [{"kind": "email", "value": "not-an-address"}]}),
            400,
        ),
        (json!({"display_name": "  ", "aliases": []}), 400),
        (
            json!({"display_name": "Twice", "aliases": [{"kind": "os_login", "value": "a"}, {"kind": "roster", "value": "A"}]}),
            400,
        ),
        (
            json!({"display_name": "Odd", "aliases": [{"kind": "nickname", "value": "a"}]}),
            422,
        ),
        (
            json!({"display_name": "Many", "aliases": (0..33).map(|i| json!({"kind": "roster", "value": format!("r{i}")})).collect::<Vec<_>>()}),
            400,
        ),
    ];
    for (body, want) in cases {
        let (s, v) = ts.post(&admin, "/api/v1/people", body.clone()).await;
        assert_eq!(s, want, "{body} -> {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (s, _) = send(&ts, &admin, "PUT", "/api/v1/people/999", zoe()).await;
    assert_eq!(s, 404);
    let people = ts.get(&admin, "/api/v1/people").await;
    assert_eq!(people.as_array().unwrap().len(), 1, "{people}");
    assert_eq!(people[0]["aliases"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_cannot_carry_access_beyond_the_callers() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // Ms Khan controls the devices of "Zoe's class" (a user group) but not
    // Entire Network; she may manage the directory.
    let class = create_group(
        &ts,
        &admin,
        json!({"name": "Zoe's class", "kind": "user", "priority": "low",
        "members": [{"type": "user", "value": "zoe"}]}),
    )
    .await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/users",
            json!({"username": "khan", "password": "teacher-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let rule = json!({"principal": {"type": "user", "value": "khan"}, "features": ["devices.view", "groups.view", "directory.manage"],
        "group_access": {class.to_string(): "control"}});
    let (s, v) = ts.post(&admin, "/api/v1/access-rules", rule).await;
    assert_eq!(s, 201, "{v}");
    let khan = ts.login_as("khan", "teacher-password").await;

    // Tying another name to zoe would put that name's devices under her control.
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/people",
            json!({"display_name": "Zoe", "aliases": [
        {"kind": "os_login", "value": "zoe"}, {"kind": "email", "value": "head@school.example"}]}),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("group_access_beyond_your_rights")),
        "{v}"
    );
    // Nor her own names.
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/people",
            json!({"display_name": "Me", "aliases": [
        {"kind": "os_login", "value": "KHAN"}, {"kind": "email", "value": "k@school.example"}]}),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("own_memberships")),
        "{v}"
    );
    // Names no access rule reaches are hers to link.
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/people",
            json!({"display_name": "Sam", "aliases": [
        {"kind": "os_login", "value": "sam"}, {"kind": "email", "value": "sam@school.example"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Renaming a person into her class is refused too, and changes nothing.
    let sam = v["id"].as_i64().unwrap();
    let (s, v) = send(
        &ts,
        &khan,
        "PUT",
        &format!("/api/v1/people/{sam}"),
        json!({"display_name": "Sam", "aliases": [
        {"kind": "os_login", "value": "sam"}, {"kind": "os_login", "value": "zoe"}]}),
    )
    .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("group_access_beyond_your_rights")),
        "{v}"
    );
    let people = ts.get(&admin, "/api/v1/people").await;
    assert_eq!(people.as_array().unwrap().len(), 1);
    assert_eq!(people[0]["aliases"].as_array().unwrap().len(), 2);
    // The administrator may.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/people",
            json!({"display_name": "Zoe", "aliases": [
        {"kind": "os_login", "value": "zoe"}, {"kind": "email", "value": "zoe@school.example"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "khan" && e["action"] == "access.denied")
        .count();
    assert!(denied >= 3, "{denied} refusals audited");
    // The require_sign_in setting is in the catalogue, off by default.
    let r = ts.get(&admin, "/api/v1/resultant?user=zoe").await;
    assert_eq!(r["settings"]["require_sign_in"]["value"], false);
}

/// Every people route the API document says needs `directory.manage`
/// refuses a user holding every other right, and serves one holding only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_routes_need_directory_manage_whatever_else_one_holds() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let features: Vec<Value> = ts
        .get(&admin, "/api/v1/access-rules/features")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].clone())
        .collect();
    let mut tokens = vec![];
    for (name, feats) in [
        (
            "almost",
            features
                .iter()
                .filter(|k| *k != "directory.manage")
                .cloned()
                .collect::<Vec<_>>(),
        ),
        ("only", vec![json!("directory.manage")]),
    ] {
        let (s, v) = ts
            .post(
                &admin,
                "/api/v1/users",
                json!({"username": name, "password": "teacher-password", "role": "teacher"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let rule = json!({"principal": {"type": "user", "value": name}, "features": feats});
        let (s, v) = ts.post(&admin, "/api/v1/access-rules", rule).await;
        assert_eq!(s, 201, "{v}");
        tokens.push(ts.login_as(name, "teacher-password").await);
    }
    let (almost, only) = (&tokens[0], &tokens[1]);
    let doc = ts.get(&admin, "/api/v1/openapi.json").await;
    let mut walked = 0;
    // Create first, then change, then delete, each on the person just made.
    for (method, path) in [
        ("post", "/people"),
        ("put", "/people/{id}"),
        ("delete", "/people/{id}"),
    ] {
        let desc = doc["paths"][path][method]["description"].as_str().unwrap();
        assert!(desc.contains("Needs directory.manage"), "{method} {path}");
        let people = ts.get(&admin, "/api/v1/people").await;
        let id = people[0]["id"].as_i64().unwrap_or(0);
        let url = format!("/api/v1{}", path.replace("{id}", &id.to_string()));
        let body =
            json!({"display_name": "Amy", "aliases": [{"kind": "os_login", "value": "amy"}]});
        let (s, v) = send(&ts, almost, &method.to_uppercase(), &url, body.clone()).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
        let (s, v) = send(&ts, only, &method.to_uppercase(), &url, body).await;
        assert!(s == 200 || s == 201, "{method} {path}: {s} {v}");
        walked += 1;
    }
    assert_eq!(walked, 3);
    // Reading needs groups.view, which "almost" holds and "only" does not.
    let (s, _) = send(&ts, almost, "GET", "/api/v1/people", Value::Null).await;
    assert_eq!(s, 200);
    let (s, _) = send(&ts, only, "GET", "/api/v1/people", Value::Null).await;
    assert_eq!(s, 403);
}
