//! Schools as tenants (issue 16): the route walk of the OpenAPI document
//! with the first school's administrator (every right) against the ids of
//! a second school's device, group, user, person, keyword library, command
//! and enrollment token. Each answer must be the one an id that does not
//! exist gets, so the caller neither reads nor changes the other school's
//! things nor learns that their ids exist; afterwards the second school
//! still has all of them.

mod common;

use common::*;
use serde_json::{json, Value};

/// A request's status and body, every number in it written as `N` (so
/// that the answers for two ids compare).
async fn answer(ts: &TestServer, token: &str, method: &str, url: &str) -> (u16, String) {
    let c = ts.client();
    let full = ts.url(&format!("/api/v1{url}"));
    let req = match method {
        "get" => c.get(full),
        "delete" => c.delete(full),
        "put" => c.put(full).json(&json!({})),
        _ => c.post(full).json(&json!({})),
    };
    let r = req.bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let mut masked = String::new();
    for c in body.chars() {
        if !c.is_ascii_digit() {
            masked.push(c);
        } else if !masked.ends_with('N') {
            masked.push('N');
        }
    }
    (status, masked)
}

fn created_id(v: &Value) -> String {
    v["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_schools_ids_answer_as_unknown_on_every_route() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let other = second_school(&ts, "Other School", "b.admin", "b-admin-password-1");
    let b = sign_in_to(&ts, "b.admin", "b-admin-password-1", Some(other))
        .await
        .unwrap();

    // The second school's things, made through its own console API.
    let (_, code) = ts.post(&b, "/api/v1/school/code", json!({})).await;
    let cred = try_register(&ts, code["code"].as_str().unwrap(), "b-pc")
        .await
        .unwrap();
    let device = cred.device_id.to_string();
    let group = computer_group(&ts, &b, "B lab", "B-*").await.to_string();
    let (s, user) = ts
        .post(
            &b,
            "/api/v1/users",
            json!({"username": "b.teacher", "password": "b-teacher-pass-1", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let (s, person) = ts
        .post(
            &b,
            "/api/v1/people",
            json!({"display_name": "Bea", "aliases": [{"kind": "os_login", "value": "bea"}]}),
        )
        .await;
    assert_eq!(s, 201, "{person}");
    let person = created_id(&person);
    let (s, library) = ts
        .post(
            &b,
            "/api/v1/keywords/libraries",
            json!({"name": "B words", "library": {"terms": []}}),
        )
        .await;
    assert_eq!(s, 201, "{library}");
    let library = created_id(&library);
    let (s, command) = ts
        .post(
            &b,
            "/api/v1/commands",
            json!({"devices": [cred.device_id], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 201, "{command}");
    let command = created_id(&command);
    let (s, token) = ts
        .post(
            &b,
            "/api/v1/enrollment-tokens",
            json!({"uses": 2, "label": "b"}),
        )
        .await;
    assert_eq!(s, 201, "{token}");
    let token = created_id(&token["record"]);

    // Which of them a path's `{id}` names, by its first segment.
    let kinds: &[(&str, &String)] = &[
        ("/devices/", &device),
        ("/groups/", &group),
        ("/people/", &person),
        ("/keywords/libraries/", &library),
        ("/commands/", &command),
        ("/enrollment-tokens/", &token),
    ];
    let doc = ts.get(&admin, "/api/v1/openapi.json").await;
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let fill = |id: &str| {
            path.replace("{id}", id)
                .replace("{username}", "b.teacher")
                .replace("{n}", "0")
                .replace("{shot}", "1")
                .replace("{file}", "20260101-000000.csv")
        };
        let (theirs, none) = if path.contains("{username}") {
            // A user name is the school's own: the other school's is unknown here.
            ("b.teacher".to_string(), "nobody.here".to_string())
        } else if let Some((_, id)) = kinds.iter().find(|(p, _)| path.starts_with(p)) {
            (
                (*id).clone(),
                (id.parse::<i64>().unwrap() + 100_000).to_string(),
            )
        } else {
            continue;
        };
        for method in ["get", "post", "put", "delete"] {
            if ops.get(method).is_none() {
                continue;
            }
            let url = fill(&theirs);
            let unknown = if path.contains("{username}") {
                path.replace("{username}", &none)
            } else {
                fill(&none)
            };
            let a = answer(&ts, &admin, method, &url).await;
            let n = answer(&ts, &admin, method, &unknown).await;
            assert!(
                !(200..300).contains(&a.0),
                "{method} {path}: the other school's {theirs} answered {a:?}"
            );
            assert_eq!(
                a, n,
                "{method} {path}: answers differ for the other school's id"
            );
            walked += 1;
        }
    }
    eprintln!("walked {walked} route methods with the other school's ids");
    assert!(walked >= 25, "only {walked} routes walked");

    // The second school still has everything.
    for url in [
        format!("/api/v1/devices/{device}"),
        format!("/api/v1/groups/{group}"),
        format!("/api/v1/keywords/libraries/{library}"),
        format!("/api/v1/commands/{command}"),
    ] {
        let r = ts
            .client()
            .get(ts.url(&url))
            .bearer_auth(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
    }
    let users = ts.get(&b, "/api/v1/users").await;
    assert!(users.to_string().contains("b.teacher"), "{users}");
    let people = ts.get(&b, "/api/v1/people").await;
    assert!(people.to_string().contains("Bea"), "{people}");
    let tokens = ts.get(&b, "/api/v1/enrollment-tokens").await;
    assert!(
        tokens.to_string().contains(&format!("\"id\":{token}")),
        "{tokens}"
    );
}
