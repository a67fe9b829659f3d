//! A trust-level administrator (issue 16): the server's operator adds a
//! school and grants a user of one school the right to act in it, with the
//! real `lectern-server school add` and `trust grant/revoke` against a
//! running server's data directory. The user switches the console session
//! to the granted school, acts there with the granted role and is seen in
//! its audit log under a name that says whose user they are; a school not
//! granted answers exactly as one that does not exist, and taking the grant
//! back ends the session there at its next request.

mod common;

use std::process::Command;

use common::{sign_in_to, TestServer};
use serde_json::{json, Value};

const SERVER: &str = env!("CARGO_BIN_EXE_lectern-server");

fn cli(ts: &TestServer, args: &[&str]) -> String {
    let out = Command::new(SERVER)
        .args(args)
        .arg("--data-dir")
        .arg(ts.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A request's status and JSON body (null when none).
async fn call(ts: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let req = ts
        .client()
        .request(method.parse().unwrap(), ts.url(path))
        .bearer_auth(token);
    let req = if body.is_null() { req } else { req.json(&body) };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn switch(ts: &TestServer, token: &str, school: i64) -> (u16, Value) {
    call(
        ts,
        token,
        "POST",
        "/api/v1/session/school",
        json!({ "school": school }),
    )
    .await
}

#[tokio::test]
async fn a_trust_administrator_switches_to_the_schools_granted_and_no_others() {
    let ts = TestServer::start().await;
    let home = ts.login().await;
    let first = call(&ts, &home, "GET", "/api/v1/me/schools", Value::Null)
        .await
        .1["schools"][0]["id"]
        .as_i64()
        .unwrap();

    // The operator adds two schools; each gets an admin and a code.
    let added = cli(
        &ts,
        &[
            "school",
            "add",
            "--name",
            "Hill Primary",
            "--admin",
            "head",
            "--password",
            "hill-password-1",
        ],
    );
    assert!(added.contains("School code: "), "{added}");
    let hill: i64 = added
        .lines()
        .find_map(|l| l.strip_prefix("Added school "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    cli(
        &ts,
        &[
            "school",
            "add",
            "--name",
            "Dale Academy",
            "--password",
            "dale-password-1",
        ],
    );
    let listed = cli(&ts, &["school", "list"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let dale: i64 = listed
        .lines()
        .find(|l| l.ends_with("Dale Academy"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .parse()
        .unwrap();

    // Hill's own admin signs in there and makes a group.
    let head = sign_in_to(&ts, "head", "hill-password-1", Some(hill))
        .await
        .unwrap();
    let (s, g) = call(
        &ts,
        &head,
        "POST",
        "/api/v1/groups",
        json!({"name": "Hill Year 3", "kind": "computer", "priority": "low", "members": []}),
    )
    .await;
    assert_eq!(s, 201, "{g}");

    // Before any grant: the first school's admin has one school, and
    // switching to Hill answers as a school that does not exist.
    let (_, mine) = call(&ts, &home, "GET", "/api/v1/me/schools", Value::Null).await;
    assert_eq!(mine["schools"].as_array().unwrap().len(), 1, "{mine}");
    let refused = switch(&ts, &home, hill).await;
    let unknown = switch(&ts, &home, 987_654).await;
    assert_eq!(refused, unknown);
    assert_eq!(refused.0, 404);

    cli(
        &ts,
        &[
            "trust",
            "grant",
            "--home",
            &first.to_string(),
            "--username",
            "admin",
            "--school",
            &hill.to_string(),
        ],
    );
    let (_, mine) = call(&ts, &home, "GET", "/api/v1/me/schools", Value::Null).await;
    let names: Vec<(&str, bool, bool)> = mine["schools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["home"].as_bool().unwrap(),
                s["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("Test School", true, true), ("Hill Primary", false, false)]
    );
    // Dale was not granted: still as unknown.
    assert_eq!(switch(&ts, &home, dale).await, unknown);

    // The switch: a new session in Hill; the old one ends.
    let (s, v) = switch(&ts, &home, hill).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["school"], hill);
    assert_eq!(v["user"]["username"], "admin (Test School)");
    let at_hill = v["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&ts, &home, "GET", "/api/v1/session", Value::Null)
            .await
            .0,
        401
    );
    let (_, who) = call(&ts, &at_hill, "GET", "/api/v1/session", Value::Null).await;
    assert_eq!(who["school"], "Hill Primary");
    // Hill's things, not the first school's.
    let (_, groups) = call(&ts, &at_hill, "GET", "/api/v1/groups", Value::Null).await;
    let groups = groups.to_string();
    assert!(groups.contains("Hill Year 3"), "{groups}");
    let (s, made) = call(
        &ts,
        &at_hill,
        "POST",
        "/api/v1/groups",
        json!({"name": "Made by the trust", "kind": "computer", "priority": "low", "members": []}),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let (_, seen_by_head) = call(&ts, &head, "GET", "/api/v1/groups", Value::Null).await;
    assert!(seen_by_head.to_string().contains("Made by the trust"));
    let back_home = sign_in_to(&ts, "admin", common::PASSWORD, Some(first))
        .await
        .unwrap();
    let (_, home_groups) = call(&ts, &back_home, "GET", "/api/v1/groups", Value::Null).await;
    assert!(!home_groups.to_string().contains("Made by the trust"));
    assert!(!home_groups.to_string().contains("Hill Year 3"));

    // Hill's audit log names the trust's user and where they came from.
    let (_, audit) = call(&ts, &head, "GET", "/api/v1/audit?limit=50", Value::Null).await;
    let audit = audit.to_string();
    assert!(
        audit.contains("session.switch") && audit.contains("from Test School"),
        "{audit}"
    );
    assert!(audit.contains("admin (Test School)"), "{audit}");

    // Switching back home from Hill works too.
    let (s, v) = switch(&ts, &at_hill, first).await;
    assert_eq!(s, 200, "{v}");
    let home_again = v["token"].as_str().unwrap().to_string();
    let (s, v) = switch(&ts, &home_again, hill).await;
    assert_eq!(s, 200, "{v}");
    let at_hill = v["token"].as_str().unwrap().to_string();

    // Taking the grant back ends the Hill session at its next request.
    cli(
        &ts,
        &[
            "trust",
            "revoke",
            "--home",
            &first.to_string(),
            "--username",
            "admin",
            "--school",
            &hill.to_string(),
        ],
    );
    assert_eq!(
        call(&ts, &at_hill, "GET", "/api/v1/groups", Value::Null)
            .await
            .0,
        401
    );
    assert_eq!(switch(&ts, &back_home, hill).await, unknown);
}

#[tokio::test]
async fn the_sign_in_page_asks_for_the_school_only_when_there_are_several() {
    let ts = TestServer::start().await;
    let page = |ts: &TestServer| {
        let (client, url) = (ts.client(), ts.url("/login"));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let one = page(&ts).await;
    assert!(
        one.contains("Test School") && !one.contains("<select"),
        "{one}"
    );
    common::second_school(&ts, "Vale <School>", "v.admin", "v-admin-password-1");
    let two = page(&ts).await;
    assert!(two.contains("<select id=\"school\""), "{two}");
    assert!(two.contains(">Vale &lt;School&gt;</option>"), "{two}");
}
