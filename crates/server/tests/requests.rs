//! Issue 13 point 3: raised hands and chat. Real server, real TLS and
//! WebSockets on loopback; the devices are agent sessions driven by hand
//! (`raw_session`) so each frame and each answer can be checked.
//!
//! Scoping is checked without timed waits: after the event a console must
//! not get, an event it must get is caused; events reach a console in the
//! order they were published, so the first one would have come before.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_proto::{AgentMsg, ErrorCode, RefusedFrame, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
type Device = lectern_agent::AgentStream;

/// Creates teacher `name` with `features` and access to `groups`, and logs in.
async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[(i64, &str)],
) -> String {
    teacher_with_access(ts, admin, name, features, groups, false).await
}

/// A device session named `host` with `user` logged in (as its state says).
async fn device(ts: &TestServer, admin: &str, host: &str, user: &str) -> (Device, i64) {
    let token = ts.enrollment_token(admin, 1).await;
    let cred = enroll_as(ts, &token, host).await;
    let mut ws = raw_session(ts, &cred, host, vec![]).await;
    let state = lectern_proto::DeviceState {
        user: Some(user.into()),
        ..Default::default()
    };
    send(&mut ws, AgentMsg::State { state }).await;
    (ws, cred.device_id)
}

async fn send(ws: &mut Device, msg: AgentMsg) {
    ws.send(Message::text(msg.encode())).await.unwrap();
}

/// The next frame about requests (hands, chat, refusals), skipping policy,
/// keywords and the like.
async fn reply(ws: &mut Device) -> ServerMsg {
    loop {
        match next_server_msg(ws).await {
            m @ (ServerMsg::HandRaised
            | ServerMsg::HandClosed { .. }
            | ServerMsg::Chat { .. }
            | ServerMsg::Refused { .. }) => return m,
            _ => continue,
        }
    }
}

/// Reads `ws` until an event of `kind` about `device` arrives (20 s at
/// most); returns it and every event read before it.
async fn event(ws: &mut Console, kind: &str, device: i64) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let Message::Text(t) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            let e: Value = serde_json::from_str(&t).unwrap();
            if e["type"] == kind && device_of(&e) == Some(device) {
                return e;
            }
            before.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a {kind} event about device {device} within 20 s"));
    (found, before)
}

/// The device a hand or chat event is about.
fn device_of(e: &Value) -> Option<i64> {
    e["request"]["device_id"]
        .as_i64()
        .or(e["message"]["device_id"].as_i64())
}

fn about(events: &[Value], kind: &str, device: i64) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && device_of(e) == Some(device))
        .count()
}

async fn status(ts: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

const TEACHER: &[&str] = &["devices.view", "command.chat"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_hand_reaches_only_consoles_that_see_its_device_and_is_answered() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    let room_b = computer_group(&ts, &admin, "Room B", "ROOMB-*").await;
    let khan = teacher(&ts, &admin, "khan", TEACHER, &[(room_a, "control")]).await;
    let lee = teacher(&ts, &admin, "lee", TEACHER, &[(room_b, "control")]).await;
    let watcher = teacher(&ts, &admin, "watcher", TEACHER, &[(room_a, "view")]).await;
    let (mut a, a_id) = device(&ts, &admin, "ROOMA-PC01", "amy").await;
    let (mut b, b_id) = device(&ts, &admin, "ROOMB-PC01", "ben").await;
    let mut khan_ws = console_stream(&ts, &khan).await;
    let mut lee_ws = console_stream(&ts, &lee).await;

    // The note is kept as written (Unicode), the user is the one the
    // device's state named, whatever else the frame could claim.
    let note = "Zoë can't open the file ✓";
    send(&mut a, AgentMsg::RaiseHand { note: note.into() }).await;
    assert_eq!(reply(&mut a).await, ServerMsg::HandRaised);
    let (e, _) = event(&mut khan_ws, "hand", a_id).await;
    assert_eq!(e["request"]["note"], note);
    assert_eq!(e["request"]["username"], "amy");
    assert!(e["request"]["closed_at"].is_null());

    // Lee hears of Room B's hand, and heard nothing of Room A's before it.
    send(
        &mut b,
        AgentMsg::RaiseHand {
            note: String::new(),
        },
    )
    .await;
    assert_eq!(reply(&mut b).await, ServerMsg::HandRaised);
    let (_, before) = event(&mut lee_ws, "hand", b_id).await;
    assert_eq!(about(&before, "hand", a_id), 0, "{before:?}");

    // One open request per device.
    send(
        &mut a,
        AgentMsg::RaiseHand {
            note: "again".into(),
        },
    )
    .await;
    match reply(&mut a).await {
        ServerMsg::Refused { code, frame, .. } => {
            assert_eq!((code, frame), (ErrorCode::NotAllowed, RefusedFrame::Hand))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The queue lists only what each teacher sees.
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["device_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(ts.get(&khan, "/api/v1/requests").await), vec![a_id]);
    assert_eq!(ids(ts.get(&lee, "/api/v1/requests").await), vec![b_id]);
    let mut both = ids(ts.get(&admin, "/api/v1/requests").await);
    both.sort();
    assert_eq!(both, vec![a_id.min(b_id), a_id.max(b_id)]);
    let request = ts.get(&khan, "/api/v1/requests").await[0]["id"]
        .as_i64()
        .unwrap();
    let answer_path = format!("/api/v1/requests/{request}/answer");

    // Lee cannot see Room A: 404. A teacher who only views Room A: 403.
    let (s, _) = ts.post(&lee, &answer_path, json!({"answer": "x"})).await;
    assert_eq!(s, 404);
    let (s, v) = ts
        .post(&watcher, &answer_path, json!({"answer": "x"}))
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control");
    // An answer needs text, at most 500 characters.
    let (s, v) = ts
        .post(&khan, &answer_path, json!({"answer": "é".repeat(501)}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 500"), "{v}");

    let (s, v) = ts
        .post(&khan, &answer_path, json!({"answer": "Coming — 2 min ✓"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outcome"], "answered");
    assert_eq!(v["closed_by"], "khan");
    assert_eq!(
        reply(&mut a).await,
        ServerMsg::HandClosed {
            answer: Some("Coming — 2 min ✓".into())
        }
    );
    let (e, _) = event(&mut khan_ws, "hand", a_id).await;
    assert_eq!(e["request"]["outcome"], "answered");
    let (s, _) = ts.post(&khan, &answer_path, json!({"answer": "x"})).await;
    assert_eq!(s, 409);

    // The student withdraws B's hand; a teacher's dismiss then finds it closed.
    send(&mut b, AgentMsg::LowerHand).await;
    assert_eq!(reply(&mut b).await, ServerMsg::HandClosed { answer: None });
    let (e, _) = event(&mut lee_ws, "hand", b_id).await;
    assert_eq!(e["request"]["outcome"], "withdrawn");
    assert_eq!(e["request"]["closed_by"], "ben");
    assert!(ts
        .get(&lee, "/api/v1/requests")
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // A's new hand, dismissed.
    send(
        &mut a,
        AgentMsg::RaiseHand {
            note: String::new(),
        },
    )
    .await;
    assert_eq!(reply(&mut a).await, ServerMsg::HandRaised);
    let request = ts.get(&khan, "/api/v1/requests").await[0]["id"]
        .as_i64()
        .unwrap();
    let (s, v) = ts
        .post(
            &khan,
            &format!("/api/v1/requests/{request}/dismiss"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(reply(&mut a).await, ServerMsg::HandClosed { answer: None });

    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["hand.raise", "hand.answer", "hand.withdraw", "hand.dismiss"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_device_limits_refuse_one_frame_and_the_session_goes_on() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (mut a, _) = device(&ts, &admin, "PC01", "amy").await;
    let (mut b, _) = device(&ts, &admin, "PC02", "ben").await;
    let refused = |m: ServerMsg| match m {
        ServerMsg::Refused { code, frame, .. } => (code, frame),
        other => panic!("expected a refusal, got {other:?}"),
    };

    let long_note = "é".repeat(lectern_proto::requests::MAX_NOTE_CHARS + 1);
    send(&mut a, AgentMsg::RaiseHand { note: long_note }).await;
    assert_eq!(
        refused(reply(&mut a).await),
        (ErrorCode::TooLarge, RefusedFrame::Hand)
    );
    let long_chat = "a".repeat(lectern_proto::requests::MAX_CHAT_BYTES + 1);
    send(&mut a, AgentMsg::ChatSend { text: long_chat }).await;
    assert_eq!(
        refused(reply(&mut a).await),
        (ErrorCode::TooLarge, RefusedFrame::Chat)
    );
    send(&mut a, AgentMsg::ChatSend { text: " ".into() }).await;
    assert_eq!(
        refused(reply(&mut a).await),
        (ErrorCode::Malformed, RefusedFrame::Chat)
    );

    // Six raise/withdraw frames a minute: the seventh is refused with a wait.
    for i in 0..6 {
        let msg = if i % 2 == 0 {
            AgentMsg::RaiseHand {
                note: String::new(),
            }
        } else {
            AgentMsg::LowerHand
        };
        send(&mut a, msg).await;
        assert!(!matches!(reply(&mut a).await, ServerMsg::Refused { .. }));
    }
    send(&mut a, AgentMsg::LowerHand).await;
    match reply(&mut a).await {
        ServerMsg::Refused {
            code: ErrorCode::RateLimited,
            frame: RefusedFrame::Hand,
            retry_after_ms,
            ..
        } => assert!(retry_after_ms > 0),
        other => panic!("expected a rate refusal, got {other:?}"),
    }

    // Twenty chat messages a minute.
    for i in 0..20 {
        send(
            &mut a,
            AgentMsg::ChatSend {
                text: format!("m{i}"),
            },
        )
        .await;
        match reply(&mut a).await {
            ServerMsg::Chat { line } => assert_eq!(line.text, format!("m{i}")),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    send(&mut a, AgentMsg::ChatSend { text: "m20".into() }).await;
    assert_eq!(
        refused(reply(&mut a).await),
        (ErrorCode::RateLimited, RefusedFrame::Chat)
    );

    // Another device is metered apart, and A's session is still served.
    send(&mut b, AgentMsg::ChatSend { text: "hi".into() }).await;
    assert!(matches!(reply(&mut b).await, ServerMsg::Chat { .. }));
    send(&mut a, AgentMsg::Heartbeat).await;
    send(&mut a, AgentMsg::ChatSend { text: "m21".into() }).await;
    assert!(matches!(reply(&mut a).await, ServerMsg::Refused { .. }));
    let history = ts.get(&admin, "/api/v1/chat?device=1").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_goes_both_ways_is_keyword_scanned_and_only_its_readers_hear_it() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // A keyword whose matches are violations.
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

    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    let room_b = computer_group(&ts, &admin, "Room B", "ROOMB-*").await;
    let everyone = entire_network(&ts, &admin).await;
    let khan = teacher(&ts, &admin, "khan", TEACHER, &[(room_a, "control")]).await;
    let lee = teacher(&ts, &admin, "lee", TEACHER, &[(room_b, "control")]).await;
    let watcher = teacher(&ts, &admin, "watcher", TEACHER, &[(room_a, "view")]).await;
    let dsl = teacher(
        &ts,
        &admin,
        "dsl",
        &["devices.view", "activity.view"],
        &[(everyone, "view")],
    )
    .await;
    let (mut a, a_id) = device(&ts, &admin, "ROOMA-PC01", "amy").await;
    let (mut a2, a2_id) = device(&ts, &admin, "ROOMA-PC02", "cat").await;
    let (mut b, b_id) = device(&ts, &admin, "ROOMB-PC01", "ben").await;
    let mut khan_ws = console_stream(&ts, &khan).await;
    let mut lee_ws = console_stream(&ts, &lee).await;
    let mut watcher_ws = console_stream(&ts, &watcher).await;
    let mut dsl_ws = console_stream(&ts, &dsl).await;

    // Teacher to one student.
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/chat",
            json!({"devices": [a_id], "text": "Hello Zoë 👋"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["delivered"], json!([a_id]));
    match reply(&mut a).await {
        ServerMsg::Chat { line } => {
            assert!(line.from_teacher);
            assert_eq!(
                (line.author.as_str(), line.text.as_str()),
                ("khan", "Hello Zoë 👋")
            );
        }
        other => panic!("expected a chat line, got {other:?}"),
    }

    // The student answers; the text is scanned like typed text.
    send(
        &mut a,
        AgentMsg::ChatSend {
            text: "the volcano is erupting".into(),
        },
    )
    .await;
    match reply(&mut a).await {
        ServerMsg::Chat { line } => {
            assert!(!line.from_teacher);
            assert_eq!(line.author, "amy");
        }
        other => panic!("expected the echo, got {other:?}"),
    }
    let (e, _) = event(&mut khan_ws, "chat", a_id).await;
    assert_eq!(e["message"]["text"], "Hello Zoë 👋");
    let (e, _) = event(&mut khan_ws, "chat", a_id).await;
    assert_eq!(e["message"]["text"], "the volcano is erupting");
    let (e, _) = event(&mut dsl_ws, "chat", a_id).await;
    assert_eq!(e["message"]["author"], "khan");
    let v = wait_for(|| async {
        let v = ts.get(&admin, "/api/v1/violations?limit=100").await;
        v.as_array()
            .unwrap()
            .iter()
            .find(|v| v["source"] == "chat")
            .cloned()
    })
    .await;
    assert_eq!(v["device_id"], a_id);
    assert_eq!(v["user"], "amy");
    assert_eq!(v["term"], "volcano");

    // Whole class: one message to both Room A devices, one batch.
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/chat",
            json!({"devices": [a_id, a2_id], "text": "Pens down"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let batches: Vec<&Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["batch"])
        .collect();
    assert!(batches[0].is_i64() && batches[0] == batches[1], "{v}");
    assert!(matches!(reply(&mut a).await, ServerMsg::Chat { .. }));
    assert!(matches!(reply(&mut a2).await, ServerMsg::Chat { .. }));

    // Room B's chat: lee hears it, and heard nothing of Room A's before;
    // the watcher (view only) hears of A's hand but never of its chat.
    send(
        &mut b,
        AgentMsg::ChatSend {
            text: "hello".into(),
        },
    )
    .await;
    assert!(matches!(reply(&mut b).await, ServerMsg::Chat { .. }));
    let (_, before) = event(&mut lee_ws, "chat", b_id).await;
    assert_eq!(about(&before, "chat", a_id), 0, "{before:?}");
    send(
        &mut a,
        AgentMsg::RaiseHand {
            note: String::new(),
        },
    )
    .await;
    assert_eq!(reply(&mut a).await, ServerMsg::HandRaised);
    let (_, before) = event(&mut watcher_ws, "hand", a_id).await;
    assert_eq!(about(&before, "chat", a_id), 0, "{before:?}");
    assert_eq!(about(&before, "chat", a2_id), 0, "{before:?}");

    // History: for the teacher in control and for safeguarding only.
    let path = format!("/api/v1/chat?device={a_id}");
    let h = ts.get(&khan, &path).await;
    let texts: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Hello Zoë 👋", "the volcano is erupting", "Pens down"]
    );
    assert!(h["thread"].as_str().unwrap().starts_with("day:"), "{h}");
    assert_eq!(ts.get(&dsl, &path).await["messages"], h["messages"]);
    assert_eq!(status(&ts, &lee, &path).await.0, 404);
    let (s, v) = status(&ts, &watcher, &path).await;
    assert_eq!(s, 403, "{v}");

    // Sending needs control of every device.
    let (s, _) = ts
        .post(
            &lee,
            "/api/v1/chat",
            json!({"devices": [a_id], "text": "x"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = ts
        .post(
            &watcher,
            "/api/v1/chat",
            json!({"devices": [a_id], "text": "x"}),
        )
        .await;
    assert_eq!((s, v["reason"].as_str()), (403, Some("no_control")));
    let (s, _) = ts
        .post(
            &dsl,
            "/api/v1/chat",
            json!({"devices": [a_id], "text": "x"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/chat",
            json!({"devices": [a_id], "text": "€".repeat(400)}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_history_is_kept_per_lesson_while_one_runs() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = computer_group(&ts, &admin, "Room A", "ROOMA-*").await;
    let (mut a, a_id) = device(&ts, &admin, "ROOMA-PC01", "amy").await;
    send(
        &mut a,
        AgentMsg::ChatSend {
            text: "before".into(),
        },
    )
    .await;
    assert!(matches!(reply(&mut a).await, ServerMsg::Chat { .. }));
    let (s, lesson) = ts
        .post(
            &admin,
            "/api/v1/lessons",
            json!({"group_id": room_a, "minutes": 30, "restrictions": {"internet_blocked": true}}),
        )
        .await;
    assert_eq!(s, 201, "{lesson}");
    send(
        &mut a,
        AgentMsg::ChatSend {
            text: "during".into(),
        },
    )
    .await;
    assert!(matches!(reply(&mut a).await, ServerMsg::Chat { .. }));
    let h = ts.get(&admin, &format!("/api/v1/chat?device={a_id}")).await;
    assert_eq!(h["thread"], format!("lesson:{}", lesson["id"]));
    assert_eq!(h["messages"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["messages"][0]["text"], "during");
}

/// The agent's own session relays what its desktop's student sends and
/// shows what the server answers (a real headless agent, not a hand-driven
/// session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_relays_the_students_hand_and_chat_and_shows_the_answers() {
    use lectern_agent::{StudentNotice, StudentRequest};
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 1).await;
    let agent = start_agent(&ts, &token, "PC07", Some("zoe")).await;
    let id = agent.id();
    let notices = |a: &TestAgent| a.desktop.lock().unwrap().notices().to_vec();

    agent
        .desktop
        .lock()
        .unwrap()
        .student_sends(StudentRequest::RaiseHand {
            note: "Zoë: question 3b".into(),
        });
    let request = wait_for(|| async {
        let open = ts.get(&admin, "/api/v1/requests").await;
        open.as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(request["device_id"], id);
    assert_eq!(request["username"], "zoe");
    assert_eq!(request["note"], "Zoë: question 3b");
    wait_for(|| async {
        notices(&agent)
            .contains(&StudentNotice::HandRaised)
            .then_some(())
    })
    .await;

    let (s, v) = ts
        .post(
            &admin,
            &format!("/api/v1/requests/{}/answer", request["id"]),
            json!({"answer": "On my way"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_for(|| async {
        let a = agent.desktop.lock().unwrap().message().map(str::to_string);
        (a.as_deref() == Some("On my way")).then_some(())
    })
    .await;

    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/chat",
            json!({"devices": [id], "text": "Hello Zoë"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    agent
        .desktop
        .lock()
        .unwrap()
        .student_sends(StudentRequest::Chat {
            text: "thanks".into(),
        });
    let lines = wait_for(|| async {
        let lines: Vec<(bool, String)> = notices(&agent)
            .into_iter()
            .filter_map(|n| match n {
                StudentNotice::Chat { line } => Some((line.from_teacher, line.text)),
                _ => None,
            })
            .collect();
        (lines.len() == 2).then_some(lines)
    })
    .await;
    assert_eq!(
        lines,
        vec![
            (true, "Hello Zoë".to_string()),
            (false, "thanks".to_string())
        ]
    );
    agent.stop().await;
}
