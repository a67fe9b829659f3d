//! Issue 15, point 5 (first half): the review workflow of violations.
//! Status, assignee, notes and history; the log's filters; bulk actions
//! with each id checked for the caller; the `violations.review` right; the
//! assignee's own right to read; limits and bad input; a scoped stream
//! event. Real server over TLS; violations are stored directly (how they
//! arise is tested elsewhere).

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lectern_store::{NewDevice, Violation};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

struct School {
    ts: TestServer,
    admin: String,
    room_a: i64,
    room_b: i64,
    /// Devices A-PC1 (Room A) and B-PC1 (Room B).
    a: i64,
    b: i64,
}

async fn group(ts: &TestServer, admin: &str, name: &str, pattern: &str) -> i64 {
    let (s, g) = ts
        .post(admin, "/api/v1/groups", json!({"name": name, "kind": "computer", "priority": "medium", "members": [{"type": "hostname", "value": pattern}], "settings": {}}))
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

/// Two rooms with one enrolled (offline) computer each.
async fn school() -> School {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = group(&ts, &admin, "Room A", "A-*").await;
    let room_b = group(&ts, &admin, "Room B", "B-*").await;
    let st = ts.server().state.clone();
    let (token, _) = st
        .store
        .create_enrollment_token(
            common::home_school(&st),
            "",
            2,
            lectern_store::now_ms() + 60_000,
            "test",
        )
        .unwrap();
    let enroll = |h: &str| {
        st.store
            .enroll_device(
                &token,
                &NewDevice {
                    hostname: h.into(),
                    os: "linux".into(),
                    agent_version: "test".into(),
                },
            )
            .unwrap()
            .unwrap()
            .0
            .id
    };
    let (a, b) = (enroll("A-PC1"), enroll("B-PC1"));
    School {
        ts,
        admin,
        room_a,
        room_b,
        a,
        b,
    }
}

/// Stores `n` violations on `device`; their ids, oldest first.
fn violations(s: &School, device: i64, n: usize) -> Vec<i64> {
    let st = s.ts.server().state.clone();
    let at = lectern_store::now_ms() - 60_000;
    (0..n)
        .map(|i| {
            st.store
                .add_violation(
                    common::home_school(&st),
                    &Violation {
                        id: 0,
                        device_id: device,
                        user: Some("amy".into()),
                        term: "volcano".into(),
                        category: "test".into(),
                        severity: 3,
                        matched: "volcano".into(),
                        context: "about a volcano".into(),
                        source: "url".into(),
                        action: "log".into(),
                        screenshots: 0,
                        at: at + i as i64,
                        person_id: None,
                        person: None,
                        retrospective: false,
                    },
                )
                .unwrap()
        })
        .collect()
}

/// A teacher with `features` and view access to `rooms`; logged in.
async fn user(s: &School, name: &str, features: &[&str], rooms: &[i64]) -> String {
    let rooms: Vec<(i64, &str)> = rooms.iter().map(|r| (*r, "view")).collect();
    teacher_with_access(&s.ts, &s.admin, name, features, &rooms, false).await
}

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

async fn case(s: &School, id: i64) -> Value {
    s.ts.get(&s.admin, &format!("/api/v1/violations/{id}/review"))
        .await
}

async fn review(s: &School, token: &str, id: i64, body: Value) -> (u16, Value) {
    s.ts.post(token, &format!("/api/v1/violations/{id}/review"), body)
        .await
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().or(x.as_i64()).unwrap())
        .collect()
}

async fn audit(s: &School, action: &str) -> Vec<Value> {
    s.ts.get(
        &s.admin,
        &format!("/api/v1/audit?action={action}&limit=1000"),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

const REVIEWER: [&str; 2] = ["activity.view", "violations.review"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_moves_through_statuses_with_assignee_notes_and_history() {
    let s = school().await;
    let khan = user(&s, "khan", &REVIEWER, &[s.room_a]).await;
    user(&s, "lee", &["activity.view"], &[s.room_a]).await;
    let v = violations(&s, s.a, 1)[0];
    assert_eq!(
        case(&s, v).await["status"],
        "new",
        "every violation starts new"
    );

    for (body, status) in [
        (
            json!({"status": "in_review", "assignee": "LEE"}),
            "in_review",
        ),
        (
            json!({"note": "Spoke to amy; geography homework.\nNo concern."}),
            "in_review",
        ),
        (json!({"status": "in_review"}), "in_review"),
        (json!({"status": "escalated"}), "escalated"),
        (
            json!({"status": "no_concern", "assignee": null}),
            "no_concern",
        ),
        (json!({"status": "closed"}), "closed"),
        (json!({"status": "new"}), "new"),
    ] {
        let (st, c) = review(&s, &khan, v, body.clone()).await;
        assert_eq!(
            (st, c["status"].as_str()),
            (200, Some(status)),
            "{body}: {c}"
        );
    }
    let c = case(&s, v).await;
    assert_eq!(c["assignee"], Value::Null);
    assert_eq!(c["notes"], 1);
    let note = &c["notes_list"][0];
    assert_eq!(note["author"], "khan");
    assert_eq!(
        note["body"],
        "Spoke to amy; geography homework.\nNo concern."
    );
    assert!(note["at"].as_i64().unwrap() > 0);
    // Who changed what, from, to; nothing for the status that stayed.
    let history: Vec<(String, String, Value, Value)> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["field"].as_str().unwrap().into(),
                e["old"].clone(),
                e["new"].clone(),
            )
        })
        .collect();
    let k = || "khan".to_string();
    let f = |x: &str| x.to_string();
    assert_eq!(
        history,
        vec![
            (k(), f("status"), json!("new"), json!("in_review")),
            (k(), f("assignee"), Value::Null, json!("lee")),
            (k(), f("note"), Value::Null, json!(note["id"].to_string())),
            (k(), f("status"), json!("in_review"), json!("escalated")),
            (k(), f("status"), json!("escalated"), json!("no_concern")),
            (k(), f("assignee"), json!("lee"), Value::Null),
            (k(), f("status"), json!("no_concern"), json!("closed")),
            (k(), f("status"), json!("closed"), json!("new")),
        ]
    );
    // The violation itself shows its case, in the list and alone.
    let one = s.ts.get(&khan, &format!("/api/v1/violations/{v}")).await;
    assert_eq!((&one["status"], &one["notes"]), (&json!("new"), &json!(1)));
    // Every change is audited, naming the device but never the note's text.
    let entries = audit(&s, "violation.review").await;
    assert_eq!(entries.len(), 7, "{entries:?}");
    assert!(entries
        .iter()
        .all(|e| e["actor"] == "khan" && e["devices"] == json!([s.a])));
    assert!(!entries
        .iter()
        .any(|e| e["detail"].as_str().unwrap().contains("geography")));
    assert!(entries.iter().any(|e| e["outcome"] == "unchanged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewing_needs_its_right_and_an_assignee_who_may_read_the_violation() {
    let s = school().await;
    let khan = user(&s, "khan", &REVIEWER, &[s.room_a]).await;
    let ray = user(&s, "ray", &["activity.view"], &[s.room_a]).await;
    let dev = user(
        &s,
        "dev",
        &["devices.view", "violations.review"],
        &[s.room_a],
    )
    .await;
    user(&s, "bea", &["activity.view"], &[s.room_b]).await;
    let a = violations(&s, s.a, 1)[0];
    let b = violations(&s, s.b, 1)[0];

    // Reading stays activity.view; changing needs violations.review too.
    let (st, c) = status_of(&s.ts, &ray, &format!("/api/v1/violations/{a}/review")).await;
    assert_eq!((st, &c["status"]), (200, &json!("new")));
    let (st, e) = review(&s, &ray, a, json!({"status": "closed"})).await;
    assert_eq!(
        (st, &e["feature"], &e["reason"]),
        (403, &json!("violations.review"), &json!("missing_right")),
        "{e}"
    );
    let (st, e) = review(&s, &dev, a, json!({"status": "closed"})).await;
    assert_eq!((st, &e["feature"]), (403, &json!("activity.view")), "{e}");
    let (st, _) = status_of(&s.ts, &dev, &format!("/api/v1/violations/{a}/review")).await;
    assert_eq!(st, 403);
    let (st, _) =
        s.ts.post(
            &ray,
            "/api/v1/violations/review",
            json!({"ids": [a], "status": "closed"}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = status_of(&s.ts, &ray, "/api/v1/violations/assignees").await;
    assert_eq!(st, 403);

    // A violation on a computer one cannot see is not there.
    let (st, _) = review(&s, &khan, b, json!({"status": "closed"})).await;
    assert_eq!(st, 404);
    let (st, _) = status_of(&s.ts, &khan, &format!("/api/v1/violations/{b}/review")).await;
    assert_eq!(st, 404);
    assert_eq!(case(&s, b).await["status"], "new");

    // Assignees: console users holding activity.view, and for each case one
    // who may see its computer.
    let listed: Vec<String> =
        s.ts.get(&khan, "/api/v1/violations/assignees")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(listed, ["admin", "bea", "khan", "ray"]);
    let (st, e) = review(&s, &khan, a, json!({"assignee": "bea"})).await;
    assert_eq!(
        (st, &e["reason"]),
        (400, &json!("assignee_cannot_read")),
        "{e}"
    );
    let (st, e) = review(&s, &khan, a, json!({"assignee": "dev"})).await;
    assert_eq!(
        (st, &e["reason"]),
        (400, &json!("assignee_cannot_read")),
        "{e}"
    );
    let (st, e) = review(&s, &khan, a, json!({"assignee": "nobody"})).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("nobody"), "{e}");
    let (st, _) = review(&s, &s.admin, b, json!({"assignee": "bea"})).await;
    assert_eq!(st, 200);
    let (st, c) = review(
        &s,
        &khan,
        a,
        json!({"assignee": "ray", "status": "in_review"}),
    )
    .await;
    assert_eq!((st, &c["assignee"]), (200, &json!("ray")));
    assert_eq!(case(&s, b).await["assignee"], "bea");
    // A refused assignment changed nothing else either.
    assert_eq!(case(&s, a).await["history"].as_array().unwrap().len(), 2);
    // The refusals are audited.
    let denied = audit(&s, "access.denied").await;
    assert!(denied.iter().any(|e| e["actor"] == "ray"), "{denied:?}");
    assert!(denied.iter().any(|e| e["actor"] == "khan"), "{denied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filters_by_status_and_assignee_and_bulk_actions_check_every_id() {
    let s = school().await;
    let khan = user(&s, "khan", &REVIEWER, &[s.room_a]).await;
    user(&s, "lee", &["activity.view"], &[s.room_a]).await;
    let mine = violations(&s, s.a, 4);
    let theirs = violations(&s, s.b, 2);
    let bulk = |token: String, body: Value| {
        let ts = &s.ts;
        async move { ts.post(&token, "/api/v1/violations/review", body).await }
    };

    // A bulk change over visible, invisible and unknown ids.
    let (st, r) = bulk(
        khan.clone(),
        json!({"ids": [mine[0], mine[1], theirs[0], 987654, mine[0]], "status": "escalated", "assignee": "khan", "note": "Seen in assembly."}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["changed"], json!([mine[0], mine[1]]));
    assert_eq!(r["skipped"], json!([theirs[0], 987654]));
    assert_eq!(r["unchanged"], json!([]));
    let b = case(&s, theirs[0]).await;
    assert_eq!(
        (&b["status"], &b["notes"], &b["assignee"]),
        (&json!("new"), &json!(0), &Value::Null)
    );
    assert_eq!(case(&s, mine[1]).await["notes"], 1);
    // The administrator assigns a mix to lee, who may read only Room A's.
    let (st, r) = bulk(
        s.admin.clone(),
        json!({"ids": [mine[2], theirs[1]], "assignee": "lee"}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["changed"], json!([mine[2]]));
    assert_eq!(
        r["refused"],
        json!([{"id": theirs[1], "reason": "assignee_cannot_read"}])
    );
    assert_eq!(case(&s, theirs[1]).await["assignee"], Value::Null);
    // Asking again what is already so changes nothing.
    let (_, r) = bulk(
        khan.clone(),
        json!({"ids": [mine[0], mine[1]], "status": "escalated"}),
    )
    .await;
    assert_eq!(
        (&r["changed"], &r["unchanged"]),
        (&json!([]), &json!([mine[0], mine[1]]))
    );

    // Filters: status (one or several), assignee (mine, unassigned, a name).
    let list = |token: &str, q: &str| {
        let (ts, token, q) = (&s.ts, token.to_string(), q.to_string());
        async move { ids(&ts.get(&token, &format!("/api/v1/violations?{q}")).await) }
    };
    assert_eq!(list(&khan, "status=escalated").await, [mine[1], mine[0]]);
    assert_eq!(list(&khan, "status=new").await, [mine[3], mine[2]]);
    assert_eq!(list(&khan, "status=new,escalated").await.len(), 4);
    assert_eq!(list(&khan, "assignee=mine").await, [mine[1], mine[0]]);
    assert_eq!(list(&khan, "assignee=lee").await, [mine[2]]);
    assert_eq!(list(&khan, "assignee=unassigned").await, [mine[3]]);
    // Two computers' rows interleave by time: compare as sets.
    let mut all = list(&s.admin, "assignee=unassigned").await;
    all.sort_unstable();
    assert_eq!(all, [mine[3], theirs[0], theirs[1]]);
    assert_eq!(
        list(&s.admin, "status=new&assignee=unassigned").await.len(),
        3
    );
    let row = &s.ts.get(&khan, "/api/v1/violations?assignee=mine").await[0];
    assert_eq!(
        (&row["status"], &row["assignee"], &row["notes"]),
        (&json!("escalated"), &json!("khan"), &json!(1))
    );
    let (st, e) = status_of(&s.ts, &khan, "/api/v1/violations?status=open").await;
    assert_eq!(st, 400);
    assert!(e["error"].as_str().unwrap().contains("in_review"), "{e}");
    let r =
        s.ts.client()
            .get(s.ts.url("/api/v1/violations?format=csv&assignee=lee"))
            .bearer_auth(&khan)
            .send()
            .await
            .unwrap();
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with("status,assignee,found"), "{csv}");
    assert!(lines[1].ends_with("new,lee,live"), "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");

    // Bad input: a clear 400 (or 413), and nothing changes.
    let before = audit(&s, "violation.review").await.len();
    let big = "x".repeat(4001);
    for (body, want) in [
        (json!({"ids": [], "status": "closed"}), 400),
        (
            json!({"ids": (1..=501).collect::<Vec<i64>>(), "status": "closed"}),
            400,
        ),
        (json!({"ids": [mine[3]]}), 400),
        (json!({"ids": [mine[3]], "status": "done"}), 400),
        (json!({"ids": [mine[3]], "note": "   "}), 400),
        (json!({"ids": [mine[3]], "note": "hi\u{202E}there"}), 400),
        (json!({"ids": [mine[3]], "note": big}), 413),
        (
            json!({"ids": [mine[3]], "status": "closed", "colour": "red"}),
            400,
        ),
        (json!({"ids": "all", "status": "closed"}), 400),
    ] {
        let (st, e) = bulk(khan.clone(), body.clone()).await;
        assert_eq!(st, want, "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let (st, _) = review(&s, &khan, mine[3], json!({"status": "closed", "ids": [1]})).await;
    assert_eq!(st, 400);
    let r =
        s.ts.client()
            .post(s.ts.url(&format!("/api/v1/violations/{}/review", mine[3])))
            .bearer_auth(&khan)
            .body("{not json")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 400);
    let c = case(&s, mine[3]).await;
    assert_eq!((&c["status"], &c["notes"]), (&json!("new"), &json!(0)));
    assert_eq!(audit(&s, "violation.review").await.len(), before);
    // A note of exactly 4,000 characters is fine (characters, not bytes).
    let (st, c) = review(&s, &khan, mine[3], json!({"note": "é".repeat(4000)})).await;
    assert_eq!((st, &c["notes"]), (200, &json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_rate_limited_per_user_and_a_refusal_changes_nothing() {
    let s = school().await;
    let khan = user(&s, "khan", &REVIEWER, &[s.room_a]).await;
    let lee = user(&s, "lee", &REVIEWER, &[s.room_a]).await;
    let ids = violations(&s, s.a, 101);
    let (st, r) =
        s.ts.post(
            &khan,
            "/api/v1/violations/review",
            json!({"ids": &ids[..100], "note": "Discussed at the safeguarding meeting."}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["changed"].as_array().unwrap().len(), 100);
    let resp =
        s.ts.client()
            .post(s.ts.url(&format!("/api/v1/violations/{}/review", ids[100])))
            .bearer_auth(&khan)
            .json(&json!({"note": "one more", "status": "closed"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["reason"], "rate_limited");
    let c = case(&s, ids[100]).await;
    assert_eq!((&c["status"], &c["notes"]), (&json!("new"), &json!(0)));
    // Status changes have their own budget, and other users theirs.
    let (st, _) = review(&s, &khan, ids[100], json!({"status": "closed"})).await;
    assert_eq!(st, 200);
    let (st, _) = review(&s, &lee, ids[100], json!({"note": "mine"})).await;
    assert_eq!(st, 200);
    let limited = audit(&s, "violation.review").await;
    assert!(
        limited
            .iter()
            .any(|e| e["outcome"] == "rate_limited" && e["actor"] == "khan"),
        "{limited:?}"
    );
}

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Reads `ws` until a `case` event for `violation` arrives (60 s at most);
/// returns the case events seen, that one last.
async fn case_events_until(ws: &mut Console, violation: i64) -> Vec<Value> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(m) = ws.next().await {
            if let Message::Text(t) = m.expect("stream error") {
                let e: Value = serde_json::from_str(&t).unwrap();
                if e["type"] == "case" {
                    let done = e["case"]["violation_id"] == violation;
                    seen.push(e);
                    if done {
                        return;
                    }
                }
            }
        }
    })
    .await
    .expect("the case event within 60 s");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_consoles_hear_of_case_changes_only_for_violations_they_may_read() {
    let s = school().await;
    let khan = user(&s, "khan", &["activity.view", "devices.view"], &[s.room_a]).await;
    let bea = user(&s, "bea", &["activity.view", "devices.view"], &[s.room_b]).await;
    let a = violations(&s, s.a, 2);
    let b = violations(&s, s.b, 1)[0];
    // Sam may see Room A's computers but not read violations.
    let sam = user(&s, "sam", &["devices.view"], &[s.room_a]).await;
    let enroll = s.ts.enrollment_token(&s.admin, 1).await;
    let online = start_agent(&s.ts, &enroll, "A-PC2", Some("amy")).await;
    wait_for(|| async {
        use lectern_agent::Desktop;
        let v = online.desktop.lock().unwrap().state().policy_version;
        (v > 0).then_some(())
    })
    .await;
    let mut ws_sam = console_stream(&s.ts, &sam).await;
    let mut ws_khan = console_stream(&s.ts, &khan).await;
    let mut ws_bea = console_stream(&s.ts, &bea).await;

    // Room B's change comes between two of Room A's: the stream is ordered,
    // so if khan were sent it, it would arrive before the second.
    for (id, body) in [
        (a[0], json!({"status": "in_review"})),
        (b, json!({"status": "escalated", "note": "for bea only"})),
        (a[1], json!({"assignee": "khan"})),
    ] {
        let (st, e) = review(&s, &s.admin, id, body).await;
        assert_eq!(st, 200, "{e}");
    }
    let seen = case_events_until(&mut ws_khan, a[1]).await;
    let about: Vec<i64> = seen
        .iter()
        .map(|e| e["case"]["violation_id"].as_i64().unwrap())
        .collect();
    assert_eq!(about, [a[0], a[1]]);
    let first = &seen[0]["case"];
    assert_eq!(
        (&first["status"], &first["events"][0]["new"]),
        (&json!("in_review"), &json!("in_review"))
    );
    let seen = case_events_until(&mut ws_bea, b).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (&seen[0]["case"]["status"], &seen[0]["case"]["notes"]),
        (&json!("escalated"), &json!(1))
    );
    // Sam hears of a command's result on Room A after those changes, and of
    // no case before it (the stream is ordered).
    ts_command_then_no_case(&s, &mut ws_sam, online.id()).await;
}

/// Locks `device` as the administrator, then reads `ws` until its result:
/// no `case` event may come before it.
async fn ts_command_then_no_case(s: &School, ws: &mut Console, device: i64) {
    let rec =
        s.ts.command(&s.admin, &[device], json!({"type": "lock"}))
            .await;
    assert_eq!(rec["summary"]["done"], 1, "{rec}");
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(m) = ws.next().await {
            if let Message::Text(t) = m.expect("stream error") {
                let e: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(
                    e["type"], "case",
                    "no case events without activity.view: {e}"
                );
                if e["type"] == "result" && e["device_id"] == device {
                    return;
                }
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the lock's result within 60 s");
}
