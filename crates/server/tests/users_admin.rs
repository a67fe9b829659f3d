//! The Users page's API: listing, creating, disabling, deleting, roles and
//! passwords of console accounts, with delegation, the own-account and
//! last-administrator rules, forced password changes, and sessions (REST and
//! the live stream) ending at once.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Sends `method path` with `token` and a JSON body; status and reply.
async fn call(ts: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = ts
        .client()
        .request(m, ts.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Status of a sign-in, and its reply.
async fn sign_in(ts: &TestServer, user: &str, password: &str) -> (u16, Value) {
    let r = ts
        .client()
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn create(ts: &TestServer, admin: &str, name: &str, role: &str) {
    let body = json!({"username": name, "password": format!("{name}-password"), "role": role});
    let (s, v) = call(ts, admin, "POST", "/api/v1/users", body).await;
    assert_eq!(s, 201, "{v}");
}

/// The account `name` as `GET /users` lists it.
async fn listed(ts: &TestServer, admin: &str, name: &str) -> Option<Value> {
    let all = ts.get(admin, "/api/v1/users").await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .cloned()
}

/// The audit entries with `action`.
async fn audited(ts: &TestServer, admin: &str, action: &str) -> Vec<Value> {
    let all = ts.get(admin, "/api/v1/audit?limit=1000").await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// Waits (generously) for the stream's close frame and returns its code and reason.
async fn closed_with<S>(ws: &mut S) -> (CloseCode, String)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("the stream was not closed")
            .expect("stream ended without a close frame")
            .expect("stream error");
        match m {
            Message::Close(Some(f)) => return (f.code, f.reason.to_string()),
            Message::Close(None) => panic!("close frame without a code"),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn accounts_are_listed_disabled_enabled_reset_and_deleted() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // Password rules: at least 10 characters, not the user name.
    for (password, why) in [("short", "length"), ("Amy.Pond.1", "user name")] {
        let body = json!({"username": "amy.pond.1", "password": password, "role": "teacher"});
        let (s, v) = call(&ts, &admin, "POST", "/api/v1/users", body).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (400, Some("weak_password")),
            "{why}: {v}"
        );
    }
    create(&ts, &admin, "amy", "teacher").await;
    let amy = listed(&ts, &admin, "amy").await.unwrap();
    assert_eq!(amy["role"], "teacher");
    assert_eq!(amy["disabled"], false);
    assert_eq!(amy["must_change_password"], false);
    assert!(amy["last_sign_in"].is_null());
    assert_eq!(amy["source"], "local");

    let amy_token = ts.login_as("amy", "amy-password").await;
    assert!(listed(&ts, &admin, "amy").await.unwrap()["last_sign_in"].is_i64());

    // Disabled: the session ends at once and signing in fails.
    let (s, v) = call(&ts, &admin, "POST", "/api/v1/users/amy/disable", json!({})).await;
    assert_eq!((s, &v["disabled"]), (200, &json!(true)), "{v}");
    let (s, _) = call(&ts, &amy_token, "GET", "/api/v1/me", json!({})).await;
    assert_eq!(s, 401);
    assert_eq!(sign_in(&ts, "amy", "amy-password").await.0, 401);
    // Enabled again: signs in.
    let (s, v) = call(&ts, &admin, "POST", "/api/v1/users/amy/enable", json!({})).await;
    assert_eq!((s, &v["disabled"]), (200, &json!(false)), "{v}");
    let amy_token = ts.login_as("amy", "amy-password").await;

    // Reset: her session ends; the temporary password signs in but nothing
    // else answers until she changes it.
    let body = json!({"password": "temporary-123"});
    let (s, v) = call(&ts, &admin, "POST", "/api/v1/users/amy/password", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["temporary_password"], "temporary-123");
    assert_eq!(v["must_change_password"], true);
    assert_eq!(
        call(&ts, &amy_token, "GET", "/api/v1/me", json!({}))
            .await
            .0,
        401
    );
    assert_eq!(sign_in(&ts, "amy", "amy-password").await.0, 401);
    let (s, v) = sign_in(&ts, "amy", "temporary-123").await;
    assert_eq!((s, &v["must_change_password"]), (200, &json!(true)), "{v}");
    let temp = v["token"].as_str().unwrap().to_string();
    for path in ["/api/v1/me", "/api/v1/devices", "/api/v1/me/preferences"] {
        let (s, v) = call(&ts, &temp, "GET", path, json!({})).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some("password_change_required")),
            "{path}"
        );
    }
    let (s, v) = call(&ts, &temp, "GET", "/api/v1/session", json!({})).await;
    assert_eq!((s, &v["must_change_password"]), (200, &json!(true)), "{v}");
    // A console page sends her to the password page, before anything else.
    let r = ts
        .client()
        .get(ts.url("/"))
        .bearer_auth(&temp)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.url().path() == "/password",
        "{}",
        r.status()
    );

    // The change needs the current password and follows the rules.
    let wrong = json!({"current_password": "not-it-at-all", "new_password": "amy-new-password"});
    let (s, v) = call(&ts, &temp, "PUT", "/api/v1/me/password", wrong).await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("wrong_password")),
        "{v}"
    );
    let same = json!({"current_password": "temporary-123", "new_password": "temporary-123"});
    let (s, v) = call(&ts, &temp, "PUT", "/api/v1/me/password", same).await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("weak_password")),
        "{v}"
    );
    let good = json!({"current_password": "temporary-123", "new_password": "amy-new-password"});
    let (s, v) = call(&ts, &temp, "PUT", "/api/v1/me/password", good).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = call(&ts, &temp, "GET", "/api/v1/me", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        listed(&ts, &admin, "amy").await.unwrap()["must_change_password"],
        false
    );
    assert_eq!(sign_in(&ts, "amy", "temporary-123").await.0, 401);
    assert_eq!(sign_in(&ts, "amy", "amy-new-password").await.0, 200);

    // Role: promoted and demoted.
    let (s, v) = call(
        &ts,
        &admin,
        "PUT",
        "/api/v1/users/amy/role",
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!((s, &v["role"]), (200, &json!("admin")), "{v}");
    let (s, v) = call(
        &ts,
        &admin,
        "PUT",
        "/api/v1/users/amy/role",
        json!({"role": "teacher"}),
    )
    .await;
    assert_eq!((s, &v["role"]), (200, &json!("teacher")), "{v}");

    // Deleted: gone, sessions with it.
    let (s, _) = call(&ts, &admin, "DELETE", "/api/v1/users/amy", json!({})).await;
    assert_eq!(s, 204);
    assert_eq!(
        call(&ts, &temp, "GET", "/api/v1/me", json!({})).await.0,
        401
    );
    assert!(listed(&ts, &admin, "amy").await.is_none());
    assert_eq!(sign_in(&ts, "amy", "amy-new-password").await.0, 401);
    let (s, _) = call(&ts, &admin, "DELETE", "/api/v1/users/amy", json!({})).await;
    assert_eq!(s, 404);

    // Every change audited with before and after, never a password.
    for action in [
        "user.create",
        "user.disable",
        "user.enable",
        "user.password_reset",
        "user.password_change",
        "user.role",
        "user.delete",
    ] {
        let entries = audited(&ts, &admin, action).await;
        assert!(!entries.is_empty(), "{action} not audited");
        for e in entries.iter().filter(|e| e["outcome"] == "ok") {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            assert!(
                detail.get("before").is_some() && detail.get("after").is_some(),
                "{e}"
            );
        }
    }
    let all = ts.get(&admin, "/api/v1/audit?limit=1000").await.to_string();
    for secret in ["amy-password", "temporary-123", "amy-new-password"] {
        assert!(!all.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn nobody_disables_deletes_demotes_or_resets_themselves() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let refusals = [
        ("POST", "/api/v1/users/admin/disable", json!({})),
        ("DELETE", "/api/v1/users/admin", json!({})),
        (
            "PUT",
            "/api/v1/users/admin/role",
            json!({"role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/users/admin/password",
            json!({"password": "some-new-password"}),
        ),
    ];
    for (method, path, body) in refusals.clone() {
        let (s, v) = call(&ts, &admin, method, path, body).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some("own_account")),
            "{method} {path}"
        );
    }
    // A second administrator may disable the first; the first is then out.
    create(&ts, &admin, "deputy", "admin").await;
    let deputy = ts.login_as("deputy", "deputy-password").await;
    let (s, v) = call(
        &ts,
        &deputy,
        "POST",
        "/api/v1/users/admin/disable",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        call(&ts, &admin, "GET", "/api/v1/me", json!({})).await.0,
        401
    );
    // The deputy, now the only enabled administrator, still cannot go.
    for (method, path, body) in refusals {
        let path = path.replace("/admin", "/deputy");
        let (s, v) = call(&ts, &deputy, method, &path, body).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some("own_account")),
            "{method} {path}"
        );
    }
    let denied = audited(&ts, &deputy, "access.denied").await;
    let own = denied
        .iter()
        .filter(|e| e["detail"].as_str().unwrap().contains("own_account"))
        .count();
    assert_eq!(own, 8, "every refusal audited");
    assert!(listed(&ts, &deputy, "deputy").await.unwrap()["disabled"] == false);
}

#[tokio::test]
async fn account_changes_stay_within_the_actors_rights() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let en = entire_network(&ts, &admin).await;
    // A helper who manages accounts and nothing else.
    let helper = teacher_with_access(&ts, &admin, "helper", &["access.manage"], &[], false).await;
    create(&ts, &admin, "plain", "teacher").await;
    create(&ts, &admin, "boss", "admin").await;
    // A teacher holding more than the helper (devices, on Entire Network).
    teacher_with_access(
        &ts,
        &admin,
        "strong",
        &["devices.view"],
        &[(en, "view")],
        false,
    )
    .await;

    let users = ts.get(&helper, "/api/v1/users").await;
    assert!(users.as_array().unwrap().len() >= 5);
    // Administrators and accounts holding more: refused, audited.
    let refused = [
        (
            "POST",
            "/api/v1/users/boss/disable",
            json!({}),
            "admin_only",
        ),
        (
            "POST",
            "/api/v1/users/boss/password",
            json!({}),
            "admin_only",
        ),
        ("DELETE", "/api/v1/users/boss", json!({}), "admin_only"),
        (
            "PUT",
            "/api/v1/users/plain/role",
            json!({"role": "admin"}),
            "admin_only",
        ),
        (
            "POST",
            "/api/v1/users/strong/password",
            json!({}),
            "account_beyond_your_rights",
        ),
        (
            "POST",
            "/api/v1/users/strong/disable",
            json!({}),
            "account_beyond_your_rights",
        ),
    ];
    for (method, path, body, reason) in refused {
        let (s, v) = call(&ts, &helper, method, path, body).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some(reason)),
            "{method} {path}: {v}"
        );
    }
    assert_eq!(
        listed(&ts, &admin, "boss").await.unwrap()["disabled"],
        false
    );
    // Accounts within the helper's rights: allowed (a made-up password comes back once).
    let (s, v) = call(
        &ts,
        &helper,
        "POST",
        "/api/v1/users/plain/password",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let temporary = v["temporary_password"].as_str().unwrap().to_string();
    assert_eq!(sign_in(&ts, "plain", &temporary).await.0, 200);
    let (s, _) = call(
        &ts,
        &helper,
        "POST",
        "/api/v1/users/plain/disable",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);

    // Without access.manage: every account route refused with the right's sentence.
    let nobody = teacher_with_access(&ts, &admin, "nobody", &[], &[], false).await;
    for (method, path) in [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users/plain/enable"),
        ("DELETE", "/api/v1/users/plain"),
        ("PUT", "/api/v1/users/plain/role"),
        ("POST", "/api/v1/users/plain/password"),
    ] {
        let (s, v) = call(&ts, &nobody, method, path, json!({})).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (403, Some("missing_right")),
            "{method} {path}"
        );
    }
    // But anyone changes their own password.
    let body = json!({"current_password": "nobody-password", "new_password": "nobody-new-pass"});
    assert_eq!(
        call(&ts, &nobody, "PUT", "/api/v1/me/password", body)
            .await
            .0,
        204
    );
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited_like_logins() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    create(&ts, &admin, "amy", "teacher").await;
    let amy = ts.login_as("amy", "amy-password").await;
    let wrong = json!({"current_password": "guess-guess", "new_password": "amy-new-password"});
    let mut limited = false;
    for _ in 0..30 {
        let (s, v) = call(&ts, &amy, "PUT", "/api/v1/me/password", wrong.clone()).await;
        if s == 429 {
            assert_eq!(v["reason"], "rate_limited");
            limited = true;
            break;
        }
        assert_eq!(s, 403, "{v}");
    }
    assert!(limited, "30 wrong current passwords were never limited");
    // The limit holds for the right password too, as for logins.
    let right = json!({"current_password": "amy-password", "new_password": "amy-new-password"});
    assert_eq!(
        call(&ts, &amy, "PUT", "/api/v1/me/password", right).await.0,
        429
    );
    assert!(!audited(&ts, &admin, "user.password_change")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_disabled_or_reset_users_open_stream_is_signed_out() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    create(&ts, &admin, "deputy", "admin").await;

    // Disabled: the open stream closes with 4401 "signed_out".
    let deputy = ts.login_as("deputy", "deputy-password").await;
    let mut ws = console_stream(&ts, &deputy).await;
    let (s, _) = call(
        &ts,
        &admin,
        "POST",
        "/api/v1/users/deputy/disable",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::from(4401), "signed_out")
    );
    assert_eq!(
        call(&ts, &deputy, "GET", "/api/v1/me", json!({})).await.0,
        401
    );

    // Reset by someone else: the same.
    call(
        &ts,
        &admin,
        "POST",
        "/api/v1/users/deputy/enable",
        json!({}),
    )
    .await;
    let deputy = ts.login_as("deputy", "deputy-password").await;
    let mut ws = console_stream(&ts, &deputy).await;
    let (s, _) = call(
        &ts,
        &admin,
        "POST",
        "/api/v1/users/deputy/password",
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(closed_with(&mut ws).await.0, CloseCode::from(4401));

    // Own change: the other session's stream closes, this one's stays.
    let body = json!({"password": "temporary-123"});
    call(&ts, &admin, "POST", "/api/v1/users/deputy/password", body).await;
    let (_, v) = sign_in(&ts, "deputy", "temporary-123").await;
    let first = v["token"].as_str().unwrap().to_string();
    let change = json!({"current_password": "temporary-123", "new_password": "deputy-new-pass"});
    assert_eq!(
        call(&ts, &first, "PUT", "/api/v1/me/password", change)
            .await
            .0,
        204
    );
    let second = ts.login_as("deputy", "deputy-new-pass").await;
    let mut ws_first = console_stream(&ts, &first).await;
    let mut ws_second = console_stream(&ts, &second).await;
    let change =
        json!({"current_password": "deputy-new-pass", "new_password": "deputy-newer-pass"});
    assert_eq!(
        call(&ts, &second, "PUT", "/api/v1/me/password", change)
            .await
            .0,
        204
    );
    assert_eq!(closed_with(&mut ws_first).await.0, CloseCode::from(4401));
    assert_eq!(
        call(&ts, &first, "GET", "/api/v1/me", json!({})).await.0,
        401
    );
    assert_eq!(
        call(&ts, &second, "GET", "/api/v1/me", json!({})).await.0,
        200
    );
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws_second.next()).await;
    assert!(
        !matches!(quiet, Ok(Some(Ok(Message::Close(_)))) | Ok(None)),
        "{quiet:?}"
    );

    // A role change closes the stream so that it reconnects with new rights.
    let (s, _) = call(
        &ts,
        &admin,
        "PUT",
        "/api/v1/users/deputy/role",
        json!({"role": "teacher"}),
    )
    .await;
    assert_eq!(s, 200);
    let (code, reason) = closed_with(&mut ws_second).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::from(4001), "rights_changed")
    );
    // The server serves everyone else throughout.
    assert_eq!(
        call(&ts, &admin, "GET", "/api/v1/users", json!({})).await.0,
        200
    );
}
