//! Issue 9, points 3 and 4: everything a console receives is scoped by what
//! its user may see (stream events, command records, broadcasts), and a
//! device's `remote_view` governs every picture of its screen (thumbnails,
//! live view, broadcast source), with the bypass right overriding it, audited.
//! Real server, real agents, real TLS and WebSockets on loopback.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// What a console stream received.
#[derive(Default, Debug)]
struct Seen {
    /// JSON events.
    events: Vec<Value>,
    /// Device ids of binary thumbnail frames.
    frames: Vec<i64>,
}

impl Seen {
    /// Every device id anything received is about.
    fn devices(&self) -> HashSet<i64> {
        let mut ids: HashSet<i64> = self.frames.iter().copied().collect();
        for e in &self.events {
            let id = match e["type"].as_str() {
                Some("device") => e["device"]["id"].as_i64(),
                Some("result") => e["device_id"].as_i64(),
                Some("violation") => e["violation"]["device_id"].as_i64(),
                _ => None,
            };
            ids.extend(id);
        }
        ids
    }

    fn of_type(&self, t: &str, device: i64) -> usize {
        self.events
            .iter()
            .filter(|e| e["type"] == t)
            .filter(|e| {
                [
                    &e["device"]["id"],
                    &e["device_id"],
                    &e["violation"]["device_id"],
                ]
                .iter()
                .any(|v| v.as_i64() == Some(device))
            })
            .count()
    }
}

/// Reads everything `ws` receives for `secs` seconds.
async fn watch_for(ws: &mut Console, secs: u64, seen: &mut Seen) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match m.expect("stream error") {
            Message::Text(t) => seen.events.push(serde_json::from_str(&t).unwrap()),
            Message::Binary(b) => seen
                .frames
                .push(i64::from_be_bytes(b[1..9].try_into().unwrap())),
            _ => {}
        }
    }
}

/// Waits (up to 20 s) for a thumbnail frame of `device` on `ws`.
async fn a_frame_of(ws: &mut Console, device: i64) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
                if i64::from_be_bytes(b[1..9].try_into().unwrap()) == device {
                    return;
                }
            }
        }
    })
    .await
    .expect("a thumbnail within 20 s");
}

async fn send_watch(ws: &mut Console, ids: &[i64]) {
    ws.send(Message::text(json!({ "watch": ids }).to_string()))
        .await
        .unwrap();
}

async fn put(ts: &TestServer, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = ts
        .client()
        .put(ts.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get_status(ts: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn set_remote_view(ts: &TestServer, admin: &str, mode: &str) {
    let entire = entire_network(ts, admin).await;
    let (s, v) = put(
        ts,
        admin,
        &format!("/api/v1/groups/{entire}"),
        json!({"settings": {"remote_view": mode}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// Waits until the agent got its first policy (so the hub knows it too, and
/// no connection-time resolution is still in flight).
async fn policy_applied(a: &TestAgent) {
    use lectern_agent::Desktop;
    wait_for(|| async {
        let v = a.desktop.lock().unwrap().state().policy_version;
        (v > 0).then_some(())
    })
    .await;
}

async fn audit(ts: &TestServer, admin: &str) -> Vec<Value> {
    ts.get(admin, "/api/v1/audit?limit=1000")
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_teachers_stream_hears_only_about_their_own_devices() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    let room_b = computer_group(&ts, &admin, "Room B", "ROOMB-*").await;
    let features = [
        "devices.view",
        "activity.view",
        "live_view",
        "command.lock",
        "command.message",
        "command.broadcast",
    ];
    let t = teacher_with_access(
        &ts,
        &admin,
        "khan",
        &features,
        &[(room_a, "control")],
        false,
    )
    .await;
    // A colleague with Room B, busy with her class at the same time.
    let other =
        teacher_with_access(&ts, &admin, "lee", &features, &[(room_b, "control")], false).await;

    // A keyword whose matches raise live alerts (severity 3: alert).
    let lib = ts
        .client()
        .get(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = ts
        .client()
        .put(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(format!("{lib}volcano,test,3,whole_word,\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let enroll = ts.enrollment_token(&admin, 4).await;
    let mine = start_agent(&ts, &enroll, "ROOMA-PC01", Some("amy")).await;
    let b1 = start_agent(&ts, &enroll, "ROOMB-PC01", Some("ben")).await;
    let b2 = start_agent(&ts, &enroll, "ROOMB-PC02", Some("cat")).await;
    policy_applied(&mine).await;
    policy_applied(&b1).await;
    policy_applied(&b2).await;
    let outside: HashSet<i64> = [b1.id(), b2.id()].into();

    let mut ws = console_stream(&ts, &t).await;
    // Asking to watch everything gets only what the teacher may see.
    send_watch(&mut ws, &[mine.id(), b1.id(), b2.id()]).await;
    let mut seen = Seen::default();

    // Room B is busy: commands, state changes, violations, a broadcast, a new login,
    // and a new device connecting.
    let rec = ts
        .command(&other, &[b1.id(), b2.id()], json!({"type": "lock"}))
        .await;
    assert_eq!(rec["summary"]["done"], 2);
    ts.command(
        &admin,
        &[b1.id()],
        json!({"type": "launch_url", "url": "https://example.org/volcano-facts"}),
    )
    .await;
    b2.desktop.lock().unwrap().login("dan");
    let (s, bc) = ts
        .post(
            &other,
            "/api/v1/broadcasts",
            json!({"devices": [b2.id()], "source": {"type": "device", "id": b1.id()}}),
        )
        .await;
    assert_eq!(s, 201, "{bc}");
    let b3 = start_agent(&ts, &enroll, "ROOMB-PC03", Some("eve")).await;
    // Meanwhile in Room A: the teacher's own lock.
    let mine_cmd = ts.command(&t, &[mine.id()], json!({"type": "lock"})).await;
    assert_eq!(mine_cmd["summary"]["done"], 1);
    // Room B's violation happened, so silence about it is filtering, not luck.
    let v = wait_for(|| async {
        ts.get(&admin, "/api/v1/violations?category=test")
            .await
            .as_array()
            .unwrap()
            .first()
            .cloned()
    })
    .await;
    assert_eq!(v["device_id"], b1.id());
    // Everything above is queued on the teacher's stream by now; read it all.
    watch_for(&mut ws, 4, &mut seen).await;

    let leaked: Vec<i64> = seen
        .devices()
        .intersection(&(&outside | &[b3.id()].into()))
        .copied()
        .collect();
    assert!(leaked.is_empty(), "leaked devices {leaked:?}: {seen:?}");
    assert!(seen.of_type("result", mine.id()) >= 1, "{seen:?}");
    assert!(seen.of_type("device", mine.id()) >= 1, "{seen:?}");
    assert!(
        seen.frames.contains(&mine.id()),
        "the teacher's own thumbnails flow"
    );

    // The colleague hears about Room B (the filter is per console, not a mute).
    let mut ws_b = console_stream(&ts, &other).await;
    let mut seen_b = Seen::default();
    ts.command(&other, &[b2.id()], json!({"type": "unlock"}))
        .await;
    watch_for(&mut ws_b, 2, &mut seen_b).await;
    assert!(seen_b.of_type("result", b2.id()) >= 1, "{seen_b:?}");
    assert!(!seen_b.devices().contains(&mine.id()), "{seen_b:?}");

    // A command record shows only the targets one may see.
    let rid = rec["id"].as_i64().unwrap();
    let (s, _) = get_status(&ts, &t, &format!("/api/v1/commands/{rid}")).await;
    assert_eq!(s, 404, "someone else's command on devices I cannot see");
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/commands",
            json!({"devices": [mine.id(), b1.id()], "command": {"type": "message", "text": "hi"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = get_status(&ts, &t, &format!("/api/v1/commands/{}", v["id"])).await;
    assert_eq!(s, 200, "{v}");
    let targets: Vec<i64> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["device_id"].as_i64().unwrap())
        .collect();
    assert_eq!(targets, vec![mine.id()]);

    // Broadcasts: each teacher lists and stops only their own (or those over
    // devices they control); the administrator sees all.
    let (s, own) = ts
        .post(
            &t,
            "/api/v1/broadcasts",
            json!({"devices": [mine.id()], "source": {"type": "console"}}),
        )
        .await;
    assert_eq!(s, 201, "{own}");
    let ids = |v: Value| -> Vec<u64> {
        let mut ids: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_u64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let own_id = own["id"].as_u64().unwrap();
    let their_id = bc["id"].as_u64().unwrap();
    assert_eq!(ids(ts.get(&t, "/api/v1/broadcasts").await), vec![own_id]);
    assert_eq!(
        ids(ts.get(&other, "/api/v1/broadcasts").await),
        vec![their_id]
    );
    let mut all = vec![own_id, their_id];
    all.sort();
    assert_eq!(ids(ts.get(&admin, "/api/v1/broadcasts").await), all);
    assert_eq!(
        ts.delete(&t, &format!("/api/v1/broadcasts/{their_id}"))
            .await,
        404,
        "cannot stop a colleague's broadcast"
    );
    assert!(b2.desktop.lock().unwrap().broadcast_frames().is_some());
    assert_eq!(
        ts.delete(&t, &format!("/api/v1/broadcasts/{own_id}")).await,
        204
    );
    assert_eq!(
        ts.delete(&admin, &format!("/api/v1/broadcasts/{their_id}"))
            .await,
        204
    );
    assert!(audit(&ts, &admin).await.iter().any(|e| e["actor"] == "khan"
        && e["action"] == "access.denied"
        && e["detail"] == format!("stop broadcast {their_id}")));

    // The route walk, as this teacher: no GET route of the API (given the ids
    // of Room B's device, command and violation) says anything about Room B.
    let doc = ts.get(&admin, "/api/v1/openapi.json").await;
    let (mut walked, mut mine_seen) = (0, 0);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if ops.get("get").is_none() || path == "/stream" || path == "/openapi.json" {
            continue;
        }
        for id in [b1.id(), rid, v["id"].as_i64().unwrap()] {
            let url = format!(
                "/api/v1{}",
                path.replace("{id}", &id.to_string())
                    .replace("{username}", "lee")
                    .replace("{n}", "0")
                    .replace("{file}", "20260101-000000.csv")
                    .replace("{shot}", "1")
            );
            // A new path parameter must be filled in above, or the walk would test a 400.
            assert!(!url.contains('{'), "unfilled path parameter in {path}");
            let r = ts
                .client()
                .get(ts.url(&url))
                .bearer_auth(&t)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            let about = |needle: &str| body.contains(needle);
            assert!(
                !about("ROOMB-")
                    && !outside.iter().chain([&b3.id()]).any(|d| about(&format!(
                        "\"device_id\":{d},"
                    )) || about(&format!(
                        "\"device_id\":{d}}}"
                    ))),
                "GET {url} ({status}) tells about Room B: {body}"
            );
            walked += 1;
            mine_seen += usize::from(about("ROOMA-PC01"));
        }
    }
    assert!(walked >= 60, "walked {walked}");
    assert!(mine_seen >= 3, "the walk sees the teacher's own device");

    // Moving the teacher's access to Room B moves the stream with it.
    let rules = ts.get(&admin, "/api/v1/access-rules").await;
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["principal"]["value"] == "khan")
        .unwrap()
        .clone();
    let mut moved = rule.clone();
    moved["group_access"] = json!({ room_b.to_string(): "view" });
    let (s, v) = put(
        &ts,
        &admin,
        &format!("/api/v1/access-rules/{}", rule["id"]),
        moved,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut after = Seen::default();
    watch_for(&mut ws, 1, &mut after).await; // frames already in flight
    after = Seen::default();
    ts.command(&admin, &[mine.id(), b3.id()], json!({"type": "unlock"}))
        .await;
    watch_for(&mut ws, 3, &mut after).await;
    assert_eq!(after.of_type("result", mine.id()), 0, "{after:?}");
    assert!(
        !after.frames.contains(&mine.id()),
        "watch dropped with access"
    );
    assert!(after.of_type("result", b3.id()) >= 1, "{after:?}");

    for a in [mine, b1, b2, b3] {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_device_sends_no_picture_except_to_bypass_which_is_audited() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let entire = entire_network(&ts, &admin).await;
    let features = ["devices.view", "live_view", "command.broadcast"];
    let t = teacher_with_access(&ts, &admin, "t", &features, &[(entire, "control")], false).await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let a = start_agent(&ts, &enroll, "PC-A", Some("amy")).await;
    let b = start_agent(&ts, &enroll, "PC-B", Some("ben")).await;
    // First policies in (a connection's own push resolves no stale settings
    // after ours), then the privacy setting under test.
    policy_applied(&a).await;
    set_remote_view(&ts, &admin, "deny").await;

    // The teacher watches: the device is never even asked to stream.
    let mut ws = console_stream(&ts, &t).await;
    send_watch(&mut ws, &[a.id()]).await;
    let mut seen = Seen::default();
    watch_for(&mut ws, 4, &mut seen).await;
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);
    assert_eq!(ts.metric("lectern_thumbnails_received_total").await, 0);
    let (_, v) = ts
        .post(&t, &format!("/api/v1/devices/{}/view", a.id()), json!({}))
        .await;
    assert_eq!(v, json!({"decision": "denied", "reason": "policy_deny"}));
    // Nor can it be shown to the class.
    let (s, v) = ts
        .post(
            &t,
            "/api/v1/broadcasts",
            json!({"devices": [b.id()], "source": {"type": "device", "id": a.id()}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(b.desktop.lock().unwrap().broadcast_frames().is_none());

    // The administrator bypasses privacy: pictures, audited once per session.
    let mut admin_ws = console_stream(&ts, &admin).await;
    send_watch(&mut admin_ws, &[a.id()]).await;
    a_frame_of(&mut admin_ws, a.id()).await;
    send_watch(&mut admin_ws, &[]).await;
    send_watch(&mut admin_ws, &[a.id()]).await;
    a_frame_of(&mut admin_ws, a.id()).await;
    // ...while the teacher, watching the same device, still gets nothing.
    let mut seen = Seen::default();
    watch_for(&mut ws, 2, &mut seen).await;
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);
    let (_, v) = ts
        .post(
            &admin,
            &format!("/api/v1/devices/{}/view", a.id()),
            json!({}),
        )
        .await;
    assert_eq!(v, json!({"decision": "allowed", "reason": "bypass"}));
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/broadcasts",
            json!({"devices": [b.id()], "source": {"type": "device", "id": a.id()}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    wait_for(|| async { (b.desktop.lock().unwrap().broadcast_frames() >= Some(1)).then_some(()) })
        .await;
    let log = audit(&ts, &admin).await;
    let bypasses = log
        .iter()
        .filter(|e| e["actor"] == "admin" && e["action"] == "privacy.bypass")
        .count();
    assert_eq!(bypasses, 2, "one for thumbnails, one for the broadcast");
    assert!(log
        .iter()
        .any(|e| e["actor"] == "admin" && e["action"] == "live_view" && e["detail"] == "bypass"));
    assert!(log.iter().any(|e| e["actor"] == "t"
        && e["action"] == "access.denied"
        && e["detail"] == "broadcast source refused: policy_deny"));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_governs_thumbnails_and_live_view_once_per_console_session() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let entire = entire_network(&ts, &admin).await;
    let features = ["devices.view", "live_view"];
    let yes = teacher_with_access(&ts, &admin, "yes", &features, &[(entire, "view")], false).await;
    let no = teacher_with_access(&ts, &admin, "no", &features, &[(entire, "view")], false).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let a = start_agent(&ts, &enroll, "PC-A", Some("amy")).await;
    // First policies in (a connection's own push resolves no stale settings
    // after ours), then the privacy setting under test.
    policy_applied(&a).await;
    set_remote_view(&ts, &admin, "ask_then_deny").await;
    let answer = |allow: bool| {
        a.desktop
            .lock()
            .unwrap()
            .script_view_answer(Some((allow, Duration::from_millis(100))))
    };

    // Watching asks the student once; "yes" brings pictures.
    answer(true);
    let mut ws_yes = console_stream(&ts, &yes).await;
    send_watch(&mut ws_yes, &[a.id()]).await;
    a_frame_of(&mut ws_yes, a.id()).await;

    // Another teacher is refused by the student: no pictures for them, while
    // the first keeps getting them.
    answer(false);
    let mut ws_no = console_stream(&ts, &no).await;
    send_watch(&mut ws_no, &[a.id()]).await;
    let mut seen = Seen::default();
    watch_for(&mut ws_no, 4, &mut seen).await;
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);
    a_frame_of(&mut ws_yes, a.id()).await;

    // The answers hold for the session: scrolling away and back, or opening
    // the live view, asks nothing (the scripted answer flipped, unheard).
    answer(false);
    send_watch(&mut ws_yes, &[]).await;
    send_watch(&mut ws_yes, &[a.id()]).await;
    a_frame_of(&mut ws_yes, a.id()).await;
    let view = |token: String| {
        let ts = &ts;
        let id = a.id();
        async move {
            ts.post(&token, &format!("/api/v1/devices/{id}/view"), json!({}))
                .await
                .1
        }
    };
    assert_eq!(
        view(yes.clone()).await,
        json!({"decision": "allowed", "reason": "student_allowed"})
    );
    answer(true);
    assert_eq!(
        view(no.clone()).await,
        json!({"decision": "denied", "reason": "student_denied"})
    );
    let mut seen = Seen::default();
    watch_for(&mut ws_no, 2, &mut seen).await;
    assert!(seen.frames.is_empty(), "{:?}", seen.frames);

    // A new console session asks again; the live view's answer then lets the
    // thumbnails through too, without a second question.
    let no_again = ts.login_as("no", "no-password").await;
    answer(true);
    assert_eq!(
        view(no_again.clone()).await,
        json!({"decision": "allowed", "reason": "student_allowed"})
    );
    answer(false);
    let mut ws_again = console_stream(&ts, &no_again).await;
    send_watch(&mut ws_again, &[a.id()]).await;
    a_frame_of(&mut ws_again, a.id()).await;

    // Another student logs in: earlier answers were amy's and lapse; each
    // watching console session asks zoe exactly once (audited), and her "yes" lets pictures
    // through even to the teacher amy had refused.
    let asked = |log: &[Value], who: &str| {
        log.iter()
            .filter(|e| {
                e["actor"] == who
                    && e["action"] == "remote_view"
                    && e["detail"] == "student_allowed"
            })
            .count()
    };
    let before = audit(&ts, &admin).await;
    let (yes_before, no_before) = (asked(&before, "yes"), asked(&before, "no"));
    answer(true);
    a.desktop.lock().unwrap().login("zoe");
    // "yes" has one session watching, "no" two.
    wait_for(|| async {
        let log = audit(&ts, &admin).await;
        (asked(&log, "yes") == yes_before + 1 && asked(&log, "no") == no_before + 2).then_some(())
    })
    .await;
    a_frame_of(&mut ws_no, a.id()).await;
    a_frame_of(&mut ws_yes, a.id()).await;

    let log = audit(&ts, &admin).await;
    for (who, detail) in [("yes", "student_allowed"), ("no", "student_denied")] {
        assert!(
            log.iter().any(|e| e["actor"] == who
                && e["action"] == "remote_view"
                && e["detail"] == detail),
            "thumbnail answers are audited"
        );
    }
    a.stop().await;
}
