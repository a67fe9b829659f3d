//! The timetable (issue 14): periods of the school day, room booking and
//! lessons scheduled ahead that start and end by themselves. Time moves
//! through the server's clock (`PUT /debug/clock`, debug builds only),
//! never by sleeping; dates are in 2030 so the real date never matches.
//! Those tests need a debug build; a release build has the release test
//! at the end (the clock cannot be moved: 404).
#![cfg_attr(not(debug_assertions), allow(dead_code, unused_imports))]

mod common;

use common::*;
use serde_json::{json, Value};

async fn send(
    ts: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = ts.client().request(method, ts.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Sets the server's clock to a local time, `YYYY-MM-DDTHH:MM`.
async fn set_clock(ts: &TestServer, admin: &str, local: &str) {
    let (s, v) = send(
        ts,
        admin,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({ "local": local })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["local"], format!("{local}:00"), "{v}");
}

async fn period(
    ts: &TestServer,
    admin: &str,
    name: &str,
    start: &str,
    end: &str,
    days: &[u8],
) -> (u16, Value) {
    ts.post(
        admin,
        "/api/v1/timetable/periods",
        json!({"name": name, "start": start, "end": end, "days": days}),
    )
    .await
}

const WEEKDAYS: &[u8] = &[0, 1, 2, 3, 4];

async fn lessons_of(ts: &TestServer, admin: &str, group: i64) -> Vec<Value> {
    ts.get(admin, "/api/v1/lessons")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["group_id"] == group)
        .cloned()
        .collect()
}

fn locked(a: &TestAgent) -> bool {
    use lectern_agent::Desktop;
    a.desktop.lock().unwrap().state().locked
}

async fn policy_applied(a: &TestAgent) {
    use lectern_agent::Desktop;
    wait_for(|| async { (a.desktop.lock().unwrap().state().policy_version > 0).then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_are_validated_and_only_administrators_edit_them() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, p1) = period(&ts, &admin, "Period 1", "09:00", "09:50", WEEKDAYS).await;
    assert_eq!(s, 201, "{p1}");
    assert_eq!(p1["days"], json!(WEEKDAYS));

    // Overlapping on a shared day: 409 naming the other period.
    let (s, v) = period(&ts, &admin, "Early", "09:30", "10:20", &[2]).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Period 1"), "{v}");
    // The same times on a day Period 1 does not run on are fine.
    let (s, v) = period(&ts, &admin, "Saturday club", "09:30", "10:20", &[5]).await;
    assert_eq!(s, 201, "{v}");
    // Bad input: a clear 400 each.
    for (name, start, end, days) in [
        ("Backwards", "10:00", "09:00", WEEKDAYS),
        ("Empty", "10:00", "10:00", WEEKDAYS),
        ("No days", "11:00", "12:00", &[][..]),
        ("Bad day", "11:00", "12:00", &[7][..]),
        ("Bad time", "11", "12:00", WEEKDAYS),
        ("Too late", "23:00", "24:30", WEEKDAYS),
        ("", "11:00", "12:00", WEEKDAYS),
    ] {
        let (s, v) = period(&ts, &admin, name, start, end, days).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // A body that is not JSON loses nothing either.
    let r = ts
        .client()
        .post(ts.url("/api/v1/timetable/periods"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Moving Period 1 onto Saturday club's time on Saturday: refused; an
    // edit that keeps clear of it is stored.
    let id = p1["id"].as_i64().unwrap();
    let path = format!("/api/v1/timetable/periods/{id}");
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::PUT,
        &path,
        Some(json!({"name": "Period 1", "start": "09:00", "end": "10:00", "days": [0, 5]})),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::PUT,
        &path,
        Some(json!({"name": "Period 1", "start": "08:50", "end": "09:40", "days": WEEKDAYS})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let list = ts.get(&admin, "/api/v1/timetable/periods").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["start"], "08:50");

    // A teacher who may book rooms reads the periods but cannot change them.
    let amy = teacher_with_access(&ts, &admin, "amy", &["rooms.book"], &[], false).await;
    assert_eq!(
        ts.get(&amy, "/api/v1/timetable/periods")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (s, v) = period(&ts, &amy, "Mine", "13:00", "14:00", WEEKDAYS).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "missing_right");
    assert_eq!(v["feature"], "timetable.manage");
    let (s, _) = send(&ts, &amy, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(s, 403);
    // Nor move the clock.
    let (s, _) = send(
        &ts,
        &amy,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({"now": 0})),
    )
    .await;
    assert_eq!(s, 403);
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let audit = audit.as_array().unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "timetable.period")
            .count(),
        3,
        "two added, one changed"
    );
    assert!(audit
        .iter()
        .any(|e| e["actor"] == "amy" && e["action"] == "access.denied"));
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_is_booked_once_per_period_and_only_its_booker_or_an_administrator_cancels() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    set_clock(&ts, &admin, "2030-01-07T08:00").await; // a Monday
    let (_, p1) = period(&ts, &admin, "Period 1", "09:00", "09:50", WEEKDAYS).await;
    let p1 = p1["id"].as_i64().unwrap();
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let room6 = computer_group(&ts, &admin, "Room 6", "ROOM6-*").await;
    let amy = teacher_with_access(
        &ts,
        &admin,
        "amy",
        &["rooms.book"],
        &[(room5, "view")],
        false,
    )
    .await;
    let ben = teacher_with_access(
        &ts,
        &admin,
        "ben",
        &["rooms.book"],
        &[(room5, "view")],
        false,
    )
    .await;
    let cat = teacher_with_access(
        &ts,
        &admin,
        "cat",
        &["rooms.book"],
        &[(room6, "view")],
        false,
    )
    .await;
    let dan = teacher_with_access(&ts, &admin, "dan", &[], &[(room5, "control")], false).await;
    let book = |room: i64, day: &str| json!({"group_id": room, "day": day, "period_id": p1, "note": "Year 9 coding"});

    // Two bookings of the same room and period at the same moment: one wins.
    let (a, b) = tokio::join!(
        ts.post(
            &amy,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-08")
        ),
        ts.post(
            &ben,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-08")
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let (winner, refusal) = if a.0 == 201 { (a.1, b.1) } else { (b.1, a.1) };
    let holder = winner["booked_by"].as_str().unwrap();
    let message = refusal["error"].as_str().unwrap();
    assert!(
        message.contains("Room 5") && message.contains(holder),
        "{message}"
    );

    // The other booker, a room one cannot see, a teacher without the right,
    // a day the period does not run and a period that is over: refused.
    let (s, v) = ts
        .post(
            &cat,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-09"),
        )
        .await;
    assert_eq!(s, 403, "cat cannot see Room 5: {v}");
    let (s, v) = ts
        .post(
            &dan,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-09"),
        )
        .await;
    assert_eq!((s, v["feature"].as_str()), (403, Some("rooms.book")), "{v}");
    let (s, v) = ts
        .post(
            &amy,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-12"),
        )
        .await;
    assert_eq!(s, 400, "a Saturday: {v}");
    let (s, v) = ts
        .post(
            &amy,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-04"),
        )
        .await;
    assert_eq!(s, 400, "last Friday is over: {v}");
    let (s, v) = ts
        .post(&amy, "/api/v1/timetable/bookings", book(room5, "tomorrow"))
        .await;
    assert_eq!(s, 400, "{v}");

    // Who booked what: those who can see the room see the booking.
    let week = ts
        .get(&amy, "/api/v1/timetable/week?start=2030-01-07")
        .await;
    let bookings = week["bookings"].as_array().unwrap();
    assert_eq!(bookings.len(), 1, "{week}");
    assert_eq!(bookings[0]["booked_by"], holder);
    assert_eq!(bookings[0]["room"], "Room 5");
    assert_eq!(week["rooms"], json!([{"id": room5, "name": "Room 5"}]));
    let week = ts
        .get(&cat, "/api/v1/timetable/week?start=2030-01-07")
        .await;
    assert_eq!(week["bookings"], json!([]), "cat cannot see Room 5");

    // The period is in use: it stays.
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/timetable/periods/{p1}"),
        None,
    )
    .await;
    assert_eq!(s, 409, "{v}");

    // Cancelling: not someone else's, but one's own; an administrator any.
    let (loser, winner_token) = if holder == "amy" {
        (&ben, &amy)
    } else {
        (&amy, &ben)
    };
    let id = winner["id"].as_i64().unwrap();
    let path = format!("/api/v1/timetable/bookings/{id}");
    let (s, v) = send(&ts, loser, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        (s, v["feature"].as_str()),
        (403, Some("timetable.manage")),
        "{v}"
    );
    let (s, _) = send(&ts, winner_token, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(s, 204);
    let (s, v) = ts
        .post(
            loser,
            "/api/v1/timetable/bookings",
            book(room5, "2030-01-08"),
        )
        .await;
    assert_eq!(s, 201, "free again: {v}");
    let path = format!("/api/v1/timetable/bookings/{}", v["id"]);
    let (s, _) = send(&ts, &admin, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(s, 204, "an administrator cancels anyone's");

    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let count = |action: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    assert_eq!(count("timetable.book"), 2);
    assert_eq!(count("timetable.unbook"), 2);
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_needs_the_right_and_control_of_the_class_and_never_clashes() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    set_clock(&ts, &admin, "2030-01-07T08:00").await;
    let (_, p1) = period(&ts, &admin, "Period 1", "09:00", "09:50", WEEKDAYS).await;
    let p1 = p1["id"].as_i64().unwrap();
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let viewer = teacher_with_access(
        &ts,
        &admin,
        "vic",
        &["lessons.manage"],
        &[(room5, "view")],
        false,
    )
    .await;
    let booker = teacher_with_access(
        &ts,
        &admin,
        "bea",
        &["rooms.book"],
        &[(room5, "control")],
        false,
    )
    .await;
    let weekly = json!({"group_id": room5, "period_id": p1, "weekday": 0, "from": "2030-01-01",
                        "until": "2030-03-31", "restrictions": {"screen_locked": true}});

    let (s, v) = ts
        .post(&viewer, "/api/v1/timetable/lessons", weekly.clone())
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (403, Some("no_control_of_class")),
        "{v}"
    );
    let (s, v) = ts
        .post(&booker, "/api/v1/timetable/lessons", weekly.clone())
        .await;
    assert_eq!(
        (s, v["feature"].as_str()),
        (403, Some("lessons.manage")),
        "{v}"
    );
    let mut bad = weekly.clone();
    bad["restrictions"] = json!({});
    let (s, v) = ts.post(&admin, "/api/v1/timetable/lessons", bad).await;
    assert_eq!(s, 400, "a lesson needs a restriction: {v}");
    let mut bad = weekly.clone();
    bad["weekday"] = json!(5);
    let (s, v) = ts.post(&admin, "/api/v1/timetable/lessons", bad).await;
    assert_eq!(s, 400, "Period 1 does not run on Saturdays: {v}");
    for (from, until, why) in [
        ("2028-01-01", "2030-03-31", "longer than 400 days"),
        ("2029-09-01", "2029-12-31", "over already"),
        ("2030-03-31", "2030-01-01", "backwards"),
    ] {
        let mut bad = weekly.clone();
        bad["from"] = json!(from);
        bad["until"] = json!(until);
        let (s, v) = ts.post(&admin, "/api/v1/timetable/lessons", bad).await;
        assert_eq!(s, 400, "{why}: {v}");
    }

    let (s, v) = ts
        .post(&admin, "/api/v1/timetable/lessons", weekly.clone())
        .await;
    assert_eq!(s, 201, "{v}");
    // A one-off lesson on a Monday of the series, in the same period: 409.
    let once = json!({"group_id": room5, "period_id": p1, "day": "2030-01-14", "restrictions": {"internet_blocked": true}});
    let (s, v) = ts
        .post(&admin, "/api/v1/timetable/lessons", once.clone())
        .await;
    assert_eq!(s, 409, "{v}");
    // On a Tuesday it is fine.
    let mut tuesday = once.clone();
    tuesday["day"] = json!("2030-01-15");
    let (s, v) = ts.post(&admin, "/api/v1/timetable/lessons", tuesday).await;
    assert_eq!(s, 201, "{v}");
    // The viewer sees them in the week and cannot cancel them.
    let week = ts
        .get(&viewer, "/api/v1/timetable/week?start=2030-01-14")
        .await;
    let lessons = week["lessons"].as_array().unwrap();
    assert_eq!(lessons.len(), 2, "{week}");
    assert!(
        lessons
            .iter()
            .all(|l| l["status"] == "planned" && l["can_cancel"] == false),
        "{week}"
    );
    let (s, _) = send(
        &ts,
        &viewer,
        reqwest::Method::DELETE,
        &format!("/api/v1/timetable/lessons/{}", v["id"]),
        None,
    )
    .await;
    assert_eq!(s, 403);
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_lesson_starts_and_ends_by_itself_and_survives_a_restart() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let (_, p1) = period(&ts, &admin, "Period 1", "09:00", "09:50", WEEKDAYS).await;
    let p1 = p1["id"].as_i64().unwrap();
    set_clock(&ts, &admin, "2030-01-07T08:55").await; // a Monday
    let (s, series) = ts
        .post(
            &admin,
            "/api/v1/timetable/lessons",
            json!({"group_id": room5, "period_id": p1, "weekday": 0, "from": "2030-01-01",
                   "until": "2030-03-31", "restrictions": {"screen_locked": true}}),
        )
        .await;
    assert_eq!(s, 201, "{series}");
    let series = series["id"].as_i64().unwrap();
    let pc = start_agent(&ts, &enroll, "ROOM5-PC01", Some("amy")).await;
    policy_applied(&pc).await;
    assert!(!locked(&pc), "before the period");
    assert!(lessons_of(&ts, &admin, room5).await.is_empty());

    // The period starts: the lesson starts by itself and locks the class.
    set_clock(&ts, &admin, "2030-01-07T09:00").await;
    wait_for(|| async { locked(&pc).then_some(()) }).await;
    let running = lessons_of(&ts, &admin, room5).await;
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0]["active"], true);
    assert_eq!(running[0]["teacher"], "admin");
    let week = ts
        .get(&admin, "/api/v1/timetable/week?start=2030-01-07")
        .await;
    assert_eq!(week["lessons"][0]["status"], "running", "{week}");

    // A restart in the middle: the lesson goes on, not started twice.
    let credential = pc.credential.clone();
    pc.stop().await;
    ts.restart().await;
    let admin = ts.login().await;
    set_clock(&ts, &admin, "2030-01-07T09:20").await;
    let pc = run_enrolled(credential, "ROOM5-PC01", Some("amy")).await;
    wait_for(|| async { locked(&pc).then_some(()) }).await;
    // The clock answers once the scheduler has had a turn at 09:20.
    let w = ts
        .get(&admin, "/api/v1/timetable/week?start=2030-01-07")
        .await;
    assert_eq!(w["lessons"][0]["status"], "running", "{w}");
    let running = lessons_of(&ts, &admin, room5).await;
    assert_eq!(running.len(), 1, "one lesson, not two: {running:?}");

    // The period ends: the lesson ends by itself.
    set_clock(&ts, &admin, "2030-01-07T09:50").await;
    wait_for(|| async { (!locked(&pc)).then_some(()) }).await;
    let done = lessons_of(&ts, &admin, room5).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["active"], false, "{done:?}");

    // Next Monday the server was "down" at 09:00 and is back at 09:10: the
    // period still runs, so the lesson starts.
    set_clock(&ts, &admin, "2030-01-14T09:10").await;
    wait_for(|| async { locked(&pc).then_some(()) }).await;
    // Cancelling the occurrence ends it at once.
    let (s, v) = ts
        .post(
            &admin,
            &format!("/api/v1/timetable/lessons/{series}/cancel"),
            json!({"day": "2030-01-14"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    wait_for(|| async { (!locked(&pc)).then_some(()) }).await;
    // The Monday after is cancelled in advance; the one after that runs.
    let (s, _) = ts
        .post(
            &admin,
            &format!("/api/v1/timetable/lessons/{series}/cancel"),
            json!({"day": "2030-01-21"}),
        )
        .await;
    assert_eq!(s, 204);
    set_clock(&ts, &admin, "2030-01-21T09:05").await;
    let week = ts
        .get(&admin, "/api/v1/timetable/week?start=2030-01-21")
        .await;
    assert_eq!(week["lessons"][0]["status"], "cancelled", "{week}");
    assert_eq!(week["lessons"].as_array().unwrap().len(), 1);
    assert!(!locked(&pc));
    // Cancelling the series while one runs ends it too.
    set_clock(&ts, &admin, "2030-01-28T09:05").await;
    wait_for(|| async { locked(&pc).then_some(()) }).await;
    let (s, _) = send(
        &ts,
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/timetable/lessons/{series}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    wait_for(|| async { (!locked(&pc)).then_some(()) }).await;

    // Started three times (07, 14, 28), never twice for one day.
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let starts = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "lesson.start" && e["outcome"] == "ok")
        .count();
    assert_eq!(starts, 3, "{audit}");
    pc.stop().await;
}

#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_lesson_does_not_start_once_its_teacher_lost_the_right() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    set_clock(&ts, &admin, "2030-01-07T08:00").await;
    let (_, p1) = period(&ts, &admin, "Period 1", "09:00", "09:50", WEEKDAYS).await;
    let p1 = p1["id"].as_i64().unwrap();
    let room5 = computer_group(&ts, &admin, "Room 5", "ROOM5-*").await;
    let tia = teacher_with_access(
        &ts,
        &admin,
        "tia",
        &["lessons.manage"],
        &[(room5, "control")],
        false,
    )
    .await;
    let (s, v) = ts
        .post(&tia, "/api/v1/timetable/lessons",
              json!({"group_id": room5, "period_id": p1, "day": "2030-01-07", "restrictions": {"screen_locked": true}}))
        .await;
    assert_eq!(s, 201, "{v}");
    // Her rule goes before the period starts.
    let rules = ts.get(&admin, "/api/v1/access-rules").await;
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["principal"]["value"] == "tia")
        .unwrap_or_else(|| panic!("{rules}"))["id"]
        .as_i64()
        .unwrap();
    let (s, _) = send(
        &ts,
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/access-rules/{rule}"),
        None,
    )
    .await;
    assert!(s < 300, "{s}");
    set_clock(&ts, &admin, "2030-01-07T09:05").await;
    assert!(
        lessons_of(&ts, &admin, room5).await.is_empty(),
        "not started"
    );
    let week = ts
        .get(&admin, "/api/v1/timetable/week?start=2030-01-07")
        .await;
    assert_eq!(week["lessons"][0]["status"], "refused", "{week}");
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "lesson.start"
                && e["outcome"] == "refused"
                && e["actor"] == "tia"),
        "{audit}"
    );
}

/// Release builds only (`cargo test --release`): the clock route is there
/// for the rights walk, but moves nothing.
#[cfg(not(debug_assertions))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_build_cannot_move_the_clock() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    for method in [reqwest::Method::GET, reqwest::Method::PUT] {
        let (s, v) = send(
            &ts,
            &admin,
            method,
            "/api/v1/debug/clock",
            Some(json!({"now": 0})),
        )
        .await;
        assert_eq!(s, 404, "{v}");
    }
}
