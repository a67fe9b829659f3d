//! Issue 12, point 5: a console that fits each user. The navigation and the
//! buttons follow the caller's rights (rendered by the server), a page they
//! may not use answers with a clear "no access" page, refusals carry a
//! stable reason and the feature (never the right's internal name in the
//! message), and the live stream's refusal is final (a close code, not an
//! error the browser would retry forever). Real server, TLS and WebSockets.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lectern_policy::access::FEATURES;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Creates console user `name` with `features` and access to `groups` (no
/// rule at all when both are empty), and logs in.
async fn user(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[(i64, &str)],
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
    if !features.is_empty() || !groups.is_empty() {
        let access: serde_json::Map<String, Value> = groups
            .iter()
            .map(|(g, a)| (g.to_string(), json!(a)))
            .collect();
        let (s, v) = ts
            .post(
                admin,
                "/api/v1/access-rules",
                json!({"principal": {"type": "user", "value": name}, "features": features,
                       "group_access": access}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    ts.login_as(name, &password).await
}

/// A console page as `token` sees it: status and HTML.
async fn page(ts: &TestServer, token: &str, path: &str) -> (u16, String) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The `href`s of the top navigation's links.
fn nav_links(html: &str) -> Vec<String> {
    let start = html.find("<nav class=\"pagenav\"").expect("no navigation");
    let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
    nav.split("href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The `href`s of the section's sub-navigation (none when it has none).
fn subnav_links(html: &str) -> Vec<String> {
    let Some(start) = html.find("<nav class=\"subnav\"") else {
        return Vec::new();
    };
    let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
    nav.split("href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The `data-section` of each top navigation link.
fn section_labels(html: &str) -> Vec<String> {
    let start = html.find("<nav class=\"pagenav\"").expect("no navigation");
    let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
    nav.split("data-section=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The body's `data-rights`: the features the page offers.
fn offered(html: &str) -> Vec<String> {
    let start = html.find("data-rights=\"").unwrap() + "data-rights=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// No raw right name in a message meant for people.
fn assert_no_right_names(message: &str) {
    for (f, _) in FEATURES {
        assert!(!message.contains(f), "{message:?} names the right {f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_navigation_and_buttons_follow_the_callers_rights() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room = computer_group(&ts, &admin, "Room 5", "R5-*").await;
    let teacher = user(
        &ts,
        &admin,
        "khan",
        &[
            "devices.view",
            "command.lock",
            "command.message",
            "reports.manage",
        ],
        &[(room, "control")],
    )
    .await;
    // Commands held with view access only are of no use: not offered.
    let viewer = user(
        &ts,
        &admin,
        "lee",
        &["devices.view", "command.lock"],
        &[(room, "view")],
    )
    .await;

    let (s, html) = page(&ts, &admin, "/").await;
    assert_eq!(s, 200);
    // One link per section, to its first page.
    assert_eq!(
        nav_links(&html),
        ["/", "/lessons", "/safeguarding", "/devices", "/groups"]
    );
    assert_eq!(
        section_labels(&html),
        ["classroom", "lessons", "safeguarding", "computers", "admin"]
    );
    // The classroom is its section's only page: no sub-navigation.
    assert!(subnav_links(&html).is_empty(), "{html}");
    for (path, pages) in [
        (
            "/lessons",
            &[
                "/lessons",
                "/timetable",
                "/rosters",
                "/students",
                "/files",
                "/exams",
            ][..],
        ),
        (
            "/keywords",
            &["/safeguarding", "/logs", "/keywords", "/reports"],
        ),
        (
            "/tokens",
            &["/devices", "/tokens", "/availability", "/inventory"],
        ),
        (
            "/audit",
            &[
                "/groups",
                "/resultant",
                "/access",
                "/users",
                "/directory",
                "/school",
                "/settings",
                "/mail",
                "/audit",
                "/acceptable-use",
            ],
        ),
    ] {
        let (s, html) = page(&ts, &admin, path).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(subnav_links(&html), pages, "{path}");
        assert_eq!(
            html.matches("aria-current=\"page\"").count(),
            1,
            "{path}: {html}"
        );
        assert!(
            html.contains(&format!(
                "<a href=\"{path}\" class=\"current\" aria-current=\"page\">"
            )),
            "{path}"
        );
    }
    assert_eq!(offered(&html).len(), FEATURES.len());

    let (s, html) = page(&ts, &teacher, "/").await;
    assert_eq!(s, 200);
    // Safeguarding leads to the first safeguarding page the teacher may use,
    // Computers to the first computers page.
    assert_eq!(nav_links(&html), ["/", "/reports", "/devices"]);
    assert_eq!(
        section_labels(&html),
        ["classroom", "safeguarding", "computers"]
    );
    assert_eq!(
        offered(&html),
        [
            "devices.view",
            "command.message",
            "command.lock",
            "reports.manage"
        ]
    );
    let (s, html) = page(&ts, &teacher, "/reports").await;
    assert_eq!(s, 200);
    // Reports is the only safeguarding page the teacher may use: the section
    // link is the page's own, and there is no sub-navigation.
    assert!(html.contains("<a href=\"/reports\" data-section=\"safeguarding\" class=\"current\" aria-current=\"page\">Safeguarding</a>"), "{html}");
    assert!(subnav_links(&html).is_empty(), "{html}");
    let (s, html) = page(&ts, &teacher, "/availability").await;
    assert_eq!(s, 200);
    assert!(html.contains("<a href=\"/devices\" data-section=\"computers\" class=\"current\" aria-current=\"true\">Computers</a>"), "{html}");
    assert!(html.contains("<nav class=\"subnav\" aria-label=\"Computers pages\">"));
    assert_eq!(subnav_links(&html), ["/devices", "/availability"]);

    // A page the teacher may not use: a clear page, with the navigation.
    for path in [
        "/groups",
        "/access",
        "/safeguarding",
        "/logs",
        "/keywords",
        "/lessons",
    ] {
        let (s, html) = page(&ts, &teacher, path).await;
        assert_eq!(s, 403, "{path}");
        assert!(
            html.contains("<title>No access · Lectern</title>"),
            "{path}"
        );
        assert!(html.contains("Your account has no access to this page. Ask your administrator."));
        assert!(html.contains("id=\"no-access-logout\""));
        assert_eq!(nav_links(&html), ["/", "/reports", "/devices"], "{path}");
    }

    let (s, html) = page(&ts, &viewer, "/").await;
    assert_eq!(s, 200);
    assert_eq!(offered(&html), ["devices.view"]);
    // `GET /me` says the same.
    let me = ts.get(&viewer, "/api/v1/me").await;
    assert_eq!(me["usable"], json!(["devices.view"]));
    assert_eq!(
        ts.get(&teacher, "/api/v1/me").await["usable"],
        json!([
            "devices.view",
            "command.message",
            "command.lock",
            "reports.manage"
        ])
    );

    // The server stays the judge: a hidden button's route is still refused.
    let (s, v) = ts
        .post(
            &viewer,
            "/api/v1/commands",
            json!({"devices": [1], "command": {"type": "launch_url", "url": "https://example.org"}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "missing_right");
    assert_eq!(v["feature"], "command.launch_url");
    assert_eq!(
        v["error"],
        "You can't open websites on these computers. Ask your administrator."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_access_gets_a_clear_page_and_a_final_stream_refusal() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room = computer_group(&ts, &admin, "Room 5", "R5-*").await;
    let nobody = user(&ts, &admin, "new.teacher", &[], &[]).await;
    // The right, but no group to use it on: the same as none.
    let no_groups = user(&ts, &admin, "no.groups", &["devices.view"], &[]).await;
    let reports_only = user(&ts, &admin, "reporter", &["reports.manage"], &[]).await;
    let teacher = user(&ts, &admin, "khan", &["devices.view"], &[(room, "view")]).await;

    for token in [&nobody, &no_groups] {
        let (s, html) = page(&ts, token, "/").await;
        assert_eq!(s, 403);
        assert!(html.contains(
            "Your account has no access to any computers yet. Ask your administrator.</p>"
        ));
        assert!(html.contains("id=\"no-access-logout\"") && html.contains("id=\"logout-button\""));
        assert!(nav_links(&html).is_empty(), "{html}");
        assert!(
            !html.contains("stream-status"),
            "no stream on the no-access page"
        );
    }
    let (s, html) = page(&ts, &reports_only, "/").await;
    assert_eq!(s, 403);
    assert!(html.contains("The pages you can use are in the menu above."));
    assert_eq!(nav_links(&html), ["/reports"]);

    // The stream: opened and closed at once with the final code, for both.
    for token in [&nobody, &no_groups] {
        let mut ws = console_stream(&ts, token).await;
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("the stream neither closed nor said anything")
            .expect("stream ended without a close frame")
            .expect("stream error");
        let Message::Close(Some(frame)) = m else {
            panic!("expected a close frame, got {m:?}");
        };
        assert_eq!(frame.code, CloseCode::from(4403));
        assert_eq!(frame.reason.as_str(), "no_access");
    }
    // A teacher with access gets the stream as before (a ping keeps it open).
    let mut ws = console_stream(&ts, &teacher).await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
    assert!(
        !matches!(quiet, Ok(Some(Ok(Message::Close(_)))) | Ok(None)),
        "{quiet:?}"
    );
    // Without a WebSocket handshake the refusal is a plain typed 403.
    let r = ts
        .client()
        .get(ts.url("/api/v1/stream"))
        .bearer_auth(&nobody)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["reason"].as_str(), v["feature"].as_str()),
        (Some("missing_right"), Some("devices.view"))
    );

    // Every refusal is audited, as before.
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "access.denied" && e["actor"] == "no.groups")
        .count();
    assert!(denied >= 1, "{audit}");
}

/// Every route of the API, called by a user with no rights: each refusal
/// is a 403 with a stable reason and the feature, worded as a sentence that
/// names no right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_carries_reason_and_feature_and_no_right_name() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let nobody = user(&ts, &admin, "new.teacher", &[], &[]).await;
    let doc = ts.get(&admin, "/api/v1/openapi.json").await;
    let mut refused = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        // The caller's own session, account, preferences and schools (a
        // switch to a school not granted is a 404) need no right.
        if [
            "/session",
            "/openapi.json",
            "/me",
            "/me/preferences",
            "/me/schools",
            "/session/school",
        ]
        .contains(&path.as_str())
        {
            continue;
        }
        let url = ts.url(&format!(
            "/api/v1{}",
            path.replace("{id}", "1")
                .replace("{username}", "someone")
                .replace("{n}", "0")
                .replace("{file}", "20260101-000000.csv")
                .replace("{shot}", "1")
        ));
        // A new path parameter must be filled in above, or the walk would test a 400.
        assert!(!url.contains('{'), "unfilled path parameter in {path}");
        for method in ["get", "post", "put", "delete"] {
            if ops.get(method).is_none() {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = ts
                .client()
                .request(m, &url)
                .bearer_auth(&nobody)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert_ne!(
                status, 200,
                "{method} {path} answered a user with no rights"
            );
            if status != 403 {
                continue;
            }
            refused += 1;
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["reason"], "missing_right", "{method} {path}: {v}");
            let message = v["error"].as_str().unwrap();
            assert!(message.starts_with("You can't "), "{method} {path}: {v}");
            assert!(message.ends_with(" Ask your administrator."), "{v}");
            assert_no_right_names(message);
            // Commands check "any command right" before reading the body.
            if path != "/commands" || method != "post" {
                let f = v["feature"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}: {v}"));
                assert!(FEATURES.iter().any(|(k, _)| *k == f), "{v}");
            }
        }
    }
    assert!(refused >= 30, "only {refused} routes refused");
}

/// Rights held on some groups only: the buttons show, and a command on a
/// computer outside them is refused by a sentence listing those computers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_some_devices_names_them_in_words() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    computer_group(&ts, &admin, "Room B", "ROOMB-*").await;
    let teacher = user(
        &ts,
        &admin,
        "khan",
        &["devices.view", "command.lock"],
        &[(room_a, "control")],
    )
    .await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let mine = start_agent(&ts, &enroll, "ROOMA-PC01", None).await;
    let theirs = start_agent(&ts, &enroll, "ROOMB-PC01", None).await;
    let (s, v) = ts
        .post(
            &teacher,
            "/api/v1/commands",
            json!({"devices": [mine.id(), theirs.id()], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control");
    assert_eq!(v["devices"], json!([theirs.id()]));
    assert_eq!(
        v["error"],
        "You can't control one of these computers. Ask your administrator."
    );
    let rec = ts
        .command(&teacher, &[mine.id()], json!({"type": "lock"}))
        .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    mine.stop().await;
    theirs.stop().await;
}
