//! Issue 15, point 7: the safeguarding dashboard's figures
//! (`GET /api/v1/safeguarding/summary`) count right, only over the devices
//! the caller may see (a teacher of one room sees that room's counts), a
//! group the caller cannot see is 404, and bad periods are 400. Real server
//! and TLS; rows are stored through the store at fixed times.

mod common;

use chrono::{Local, TimeZone, Timelike};
use common::*;
use lectern_store::{NewDevice, Violation};
use serde_json::Value;

const DAY: i64 = 24 * 60 * 60 * 1000;

struct School {
    ts: TestServer,
    admin: String,
    room_a: i64,
    room_b: i64,
    /// When the stored rows happened (ms): two days ago.
    at: i64,
    /// Devices: A-PC1, A-PC2 (room A), B-PC1 (room B).
    devices: [i64; 3],
}

fn violation(device: i64, user: &str, category: &str, severity: u8, at: i64) -> Violation {
    Violation {
        id: 0,
        device_id: device,
        user: Some(user.into()),
        term: "term".into(),
        category: category.into(),
        severity,
        matched: "term".into(),
        context: "term".into(),
        source: "url".into(),
        action: "log".into(),
        screenshots: 0,
        at,
        person_id: None,
        person: None,
        retrospective: false,
    }
}

fn web(url: &str, user: &str, at: i64) -> lectern_proto::ActivityEvent {
    lectern_proto::ActivityEvent {
        kind: "web".into(),
        url: Some(url.into()),
        user: Some(user.into()),
        at,
        ..Default::default()
    }
}

/// Room A: amy on A-PC1 (4 violations: bullying 3, 3, 5 and adult 4, on
/// bad.example) and ben on A-PC2 (1 adult 2, on chat.test); room B: bea on
/// B-PC1 (2 violations, on secret.test). One old violation outside any
/// recent period.
async fn school() -> School {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "A-*").await;
    let room_b = computer_group(&ts, &admin, "Room B", "B-*").await;
    let st = ts.server().state.clone();
    let school = common::home_school(&st);
    let (token, _) = st
        .store
        .create_enrollment_token(school, "", 3, lectern_store::now_ms() + 60_000, "test")
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
    let (a1, a2, b1) = (enroll("A-PC1"), enroll("A-PC2"), enroll("B-PC1"));
    let at = lectern_store::now_ms() - 2 * DAY;
    let add = |d: i64, events: &[lectern_proto::ActivityEvent]| {
        st.store.add_activity(school, d, None, events).unwrap();
    };
    add(a1, &[web("https://Bad.Example/page", "amy", at - 1000)]);
    add(a1, &[web("https://bad.example/other", "amy", at - 500)]);
    add(a2, &[web("https://chat.test/", "ben", at - 100)]);
    add(b1, &[web("https://secret.test/", "bea", at - 100)]);
    for v in [
        violation(a1, "amy", "bullying", 3, at),
        violation(a1, "amy", "bullying", 3, at + 1),
        violation(a1, "amy", "bullying", 5, at + 2),
        violation(a1, "amy", "adult", 4, at + 3),
        violation(a2, "ben", "adult", 2, at),
        violation(b1, "bea", "bullying", 5, at),
        violation(b1, "bea", "bullying", 5, at + 1),
        violation(a1, "amy", "bullying", 5, at - 60 * DAY),
    ] {
        st.store.add_violation(school, &v).unwrap();
    }
    School {
        ts,
        admin,
        room_a,
        room_b,
        at,
        devices: [a1, a2, b1],
    }
}

async fn summary(s: &School, token: &str, query: &str) -> (u16, Value) {
    let r =
        s.ts.client()
            .get(s.ts.url(&format!("/api/v1/safeguarding/summary{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `(name, count)` pairs of a top list.
fn top(v: &Value) -> Vec<(String, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("-").to_string(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Sum of `by_day` counts where `pick` holds.
fn day_sum(v: &Value, pick: impl Fn(&Value) -> bool) -> u64 {
    v["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| pick(d))
        .map(|d| d["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_what_the_caller_may_see() {
    let s = school().await;
    let week = format!("?from={}&to={}", s.at - 5 * DAY, s.at + DAY);
    let (st, all) = summary(&s, &s.admin, &week).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["violations"], 7, "{all}");
    assert_eq!(all["activity"], 4);
    assert_eq!(day_sum(&all, |d| d["category"] == "bullying"), 5);
    assert_eq!(day_sum(&all, |d| d["severity"] == 5), 3);
    assert_eq!(
        day_sum(&all, |d| d["category"] == "adult" && d["severity"] == 4),
        1
    );
    let day = Local
        .timestamp_millis_opt(s.at)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        all["by_day"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["day"] == day.as_str()
                || d["day"]
                    == Local
                        .timestamp_millis_opt(s.at + 3)
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string()),
        "{all}"
    );
    assert_eq!(
        top(&all["top_users"]),
        [("amy".into(), 4), ("bea".into(), 2), ("ben".into(), 1)]
    );
    assert_eq!(
        top(&all["top_sites"]),
        [
            ("bad.example".into(), 4),
            ("secret.test".into(), 2),
            ("chat.test".into(), 1)
        ]
    );
    // Activity by hour of the day, in the server's local time.
    let hours = all["by_hour"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let hour = |ms: i64| Local.timestamp_millis_opt(ms).unwrap().hour() as usize;
    let mut want = [0u64; 24];
    for t in [s.at - 1000, s.at - 500, s.at - 100, s.at - 100] {
        want[hour(t)] += 1;
    }
    let got: Vec<u64> = hours.iter().map(|h| h.as_u64().unwrap()).collect();
    assert_eq!(got, want);
    // Every case is new until someone reviews it.
    assert_eq!(
        all["by_status"],
        serde_json::json!([{"name": "new", "count": 7}])
    );
    let names: Vec<&str> = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Room A", "Room B"], "computer and user groups only");

    // The 60-day-old violation counts in a 90-day period.
    let (_, long) = summary(
        &s,
        &s.admin,
        &format!("?from={}&to={}", s.at - 88 * DAY, s.at + DAY),
    )
    .await;
    assert_eq!(long["violations"], 8);

    // Narrowed to room B.
    let (st, b) = summary(&s, &s.admin, &format!("{week}&group={}", s.room_b)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["violations"], 2);
    assert_eq!(top(&b["top_users"]), [("bea".into(), 2)]);
    assert_eq!(b["activity"], 1);

    // A teacher of room A alone: room A's counts, room A to choose, room B unknown.
    let teacher = teacher_with_access(
        &s.ts,
        &s.admin,
        "khan",
        &["activity.view"],
        &[(s.room_a, "view")],
        false,
    )
    .await;
    let (st, a) = summary(&s, &teacher, &week).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["violations"], 5, "{a}");
    assert_eq!(a["activity"], 3);
    assert_eq!(top(&a["top_users"]), [("amy".into(), 4), ("ben".into(), 1)]);
    assert!(!a.to_string().contains("bea") && !a.to_string().contains("secret.test"));
    assert!(!a.to_string().contains("Room B"), "{a}");
    let (st, _) = summary(&s, &teacher, &format!("{week}&group={}", s.room_a)).await;
    assert_eq!(st, 200);
    let (st, v) = summary(&s, &teacher, &format!("{week}&group={}", s.room_b)).await;
    assert_eq!(st, 404, "a group the teacher cannot see: {v}");
    let (st, _) = summary(&s, &s.admin, &format!("{week}&group=999999")).await;
    assert_eq!(st, 404);
    // Whoever may see Entire Network may narrow to any room.
    let en = entire_network(&s.ts, &s.admin).await;
    let head = teacher_with_access(
        &s.ts,
        &s.admin,
        "head",
        &["activity.view"],
        &[(en, "view")],
        false,
    )
    .await;
    let (st, b) = summary(&s, &head, &format!("{week}&group={}", s.room_b)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["violations"], 2);
    assert_eq!(b["groups"].as_array().unwrap().len(), 2, "{b}");

    // The dashboard's severity bars link to the log filtered by one severity.
    let v =
        s.ts.get(
            &s.admin,
            &format!("/api/v1/violations?severity=5&since={}", s.at - DAY),
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["severity"] == 5 && e["device_id"] != s.devices[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_periods_and_callers_are_refused() {
    let s = school().await;
    let now = lectern_store::now_ms();
    for (query, why) in [
        (format!("?from={now}&to={now}"), "empty period"),
        (format!("?from={}&to={now}", now + 1), "from after to"),
        (
            format!("?from={}&to={now}", now - 367 * DAY),
            "over 366 days",
        ),
        ("?from=yesterday".to_string(), "not a number"),
        ("?from=-5&to=10".to_string(), "negative"),
        ("?days=7".to_string(), "unknown parameter"),
        ("?group=x".to_string(), "bad group"),
    ] {
        let (st, v) = summary(&s, &s.admin, &query).await;
        assert_eq!(st, 400, "{why}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let (st, v) = summary(&s, &s.admin, &format!("?from={}&to={now}", now - 366 * DAY)).await;
    assert_eq!(st, 200, "366 days is allowed: {v}");
    // The default period is the last 30 days.
    let (st, v) = summary(&s, &s.admin, "").await;
    assert_eq!(st, 200);
    assert_eq!(v["violations"], 7);
    assert_eq!(
        v["to"].as_i64().unwrap() - v["from"].as_i64().unwrap(),
        30 * DAY
    );
    // Without activity.view: 403 with the reason, before the query is read.
    let teacher = teacher_with_access(
        &s.ts,
        &s.admin,
        "lee",
        &["devices.view"],
        &[(s.room_a, "view")],
        false,
    )
    .await;
    let (st, v) = summary(&s, &teacher, "?from=nonsense").await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["reason"], "missing_right");
    // The server still serves after the refusals.
    let (st, _) = summary(&s, &s.admin, "").await;
    assert_eq!(st, 200);
}
