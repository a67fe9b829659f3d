//! Student sign-in on shared devices (issue 16 point 3), over the real
//! agent protocol: a teacher sets a student's picture password (only for a
//! student in a class they control); on a device whose group offers student
//! sign-in, wrong tries are refused alike and then slowed down, the right
//! pictures sign the student in, and from then the console shows the device
//! as theirs, their user group's policy reaches it and the activity it
//! reports is theirs, whatever the device says, until they sign out. A
//! device without the setting is refused; a reconnect keeps the student.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use lectern_proto::signin::{SignInOutcome, SignInRefusal, StudentSecret};
use lectern_proto::{ActivityEvent, AgentMsg, Capability, DeviceState, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn send(ws: &mut lectern_agent::AgentStream, msg: &AgentMsg) {
    ws.send(Message::text(msg.encode())).await.unwrap();
}

/// The next sign-in answer (other frames skipped).
async fn answer(ws: &mut lectern_agent::AgentStream) -> SignInOutcome {
    loop {
        if let ServerMsg::StudentSignIn(o) = next_server_msg(ws).await {
            return o;
        }
    }
}

/// The next policy (other frames skipped).
async fn policy(ws: &mut lectern_agent::AgentStream) -> lectern_proto::Policy {
    loop {
        if let ServerMsg::Policy { policy } = next_server_msg(ws).await {
            return policy;
        }
    }
}

fn sign_in(name: &str, picture: &[u8]) -> AgentMsg {
    AgentMsg::StudentSignIn {
        name: name.into(),
        secret: StudentSecret::Picture {
            picture: picture.to_vec(),
        },
    }
}

async fn device_user(ts: &TestServer, token: &str, id: i64) -> Value {
    ts.get(token, &format!("/api/v1/devices/{id}")).await["state"]["user"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_signs_in_with_pictures_and_the_session_is_theirs_until_they_sign_out() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // Shared Chromebooks offer student sign-in; Year 3 is Amy's class and
    // mutes sound; Ms Khan teaches Year 3, Mr Lee another class.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/groups",
            json!({"name": "Shared Chromebooks", "kind": "computer", "priority": "low",
                   "members": [{"type": "hostname", "value": "CB-*"}],
                   "settings": {"student_sign_in": true}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, year3) = ts
        .post(
            &admin,
            "/api/v1/groups",
            json!({"name": "Year 3", "kind": "user", "priority": "medium",
                   "members": [{"type": "user", "value": "amy.ng"}],
                   "settings": {"sound_muted": true}}),
        )
        .await;
    assert_eq!(s, 201, "{year3}");
    let year3 = year3["id"].as_i64().unwrap();
    let (s, other) = ts
        .post(
            &admin,
            "/api/v1/groups",
            json!({"name": "Year 5", "kind": "user", "priority": "medium",
                   "members": [{"type": "user", "value": "someone.else"}]}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let (s, amy) = ts
        .post(
            &admin,
            "/api/v1/people",
            json!({"display_name": "Amy Ng", "aliases": [{"kind": "roster", "value": "amy.ng"}]}),
        )
        .await;
    assert_eq!(s, 201, "{amy}");
    let amy = amy["id"].as_i64().unwrap();
    let khan = teacher_with_access(
        &ts,
        &admin,
        "khan",
        &["students.passwords", "devices.view"],
        &[(year3, "control")],
        false,
    )
    .await;
    let lee = teacher_with_access(
        &ts,
        &admin,
        "lee",
        &["students.passwords"],
        &[(other["id"].as_i64().unwrap(), "control")],
        false,
    )
    .await;
    let path = format!("/api/v1/people/{amy}/sign-in");
    let pictures = json!({"kind": "picture", "picture": [0, 9, 4]});

    // Mr Lee does not teach Amy; a bad picture password is refused whole.
    let (s, v) = ts.put(&lee, &path, pictures.clone()).await;
    assert_eq!((s, v["reason"].as_str()), (403, Some("no_control")), "{v}");
    let (s, v) = ts
        .put(
            &khan,
            &path,
            json!({"kind": "picture", "picture": [0, 16, 4]}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = ts.put(&khan, &path, pictures).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["set_by"].as_str()),
        (Some("picture"), Some("khan"))
    );
    assert_eq!(ts.get(&khan, &path).await["kind"], "picture");
    // Each teacher's list holds only the students of their classes.
    let listed = |v: Value| {
        v["students"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["display_name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mine = ts.get(&khan, "/api/v1/students").await;
    assert_eq!(listed(mine.clone()), vec!["Amy Ng"]);
    assert_eq!(mine["students"][0]["kind"], "picture");
    assert!(listed(ts.get(&lee, "/api/v1/students").await).is_empty());
    let grid = ts.get(&khan, "/api/v1/sign-in/pictures").await;
    assert_eq!(grid["pictures"].as_array().unwrap().len(), 16);

    // A shared Chromebook (browser client) with no user of its own.
    let enroll = ts.enrollment_token(&admin, 2).await;
    let cred = enroll_as(&ts, &enroll, "CB-07").await;
    let id = cred.device_id;
    let mut ws = raw_session(
        &ts,
        &cred,
        "CB-07",
        vec![Capability::Lock, Capability::StudentSignIn],
    )
    .await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    assert!(policy(&mut ws).await.student_sign_in);

    // Wrong pictures, wrong order, unknown name: refused alike; then slowed.
    let mut limited = false;
    for (name, picture) in [
        ("amy.ng", &[0u8, 4, 9][..]),
        ("nobody", &[0, 9, 4][..]),
        ("amy.ng", &[1, 2, 3][..]),
        ("amy.ng", &[1, 2, 3, 5][..]),
        ("amy.ng", &[5, 5, 5][..]),
        ("amy.ng", &[6, 6, 6][..]),
    ] {
        send(&mut ws, &sign_in(name, picture)).await;
        match answer(&mut ws).await {
            SignInOutcome::Refused {
                reason: SignInRefusal::WrongCredentials,
                ..
            } => {}
            SignInOutcome::Refused {
                reason: SignInRefusal::RateLimited,
                retry_after_secs,
            } => {
                assert!(retry_after_secs >= 1);
                limited = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(limited, "wrong pictures were never slowed down");
    // Students' guesses never slow their teachers' console sign-ins down
    // (shared devices often share the school's one address).
    for _ in 0..3 {
        assert!(sign_in_to(&ts, "khan", "khan-password", None).await.is_ok());
    }
    // Nonsense is refused as malformed, before any check.
    send(&mut ws, &sign_in(&"x".repeat(500), &[0, 9, 4])).await;
    assert!(matches!(
        answer(&mut ws).await,
        SignInOutcome::Refused {
            reason: SignInRefusal::Malformed,
            ..
        }
    ));
    drop(ws);

    // Another Chromebook (the limit is per name and address, and this one
    // is the same address: wait it out by using the name's other alias).
    let (s, v) = ts
        .put(
            &admin,
            &format!("/api/v1/people/{amy}"),
            json!({"display_name": "Amy Ng", "aliases": [
                {"kind": "roster", "value": "amy.ng"}, {"kind": "os_login", "value": "amyn"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let cred2 = enroll_as(&ts, &enroll, "CB-08").await;
    let id2 = cred2.device_id;
    let mut ws = raw_session(
        &ts,
        &cred2,
        "CB-08",
        vec![Capability::Lock, Capability::StudentSignIn],
    )
    .await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    send(&mut ws, &sign_in("AMYN", &[0, 9, 4])).await;
    assert_eq!(
        answer(&mut ws).await,
        SignInOutcome::SignedIn {
            name: "amyn".into(),
            display_name: "Amy Ng".into()
        }
    );
    // Her class's policy reaches the device; the console shows her.
    wait_for(|| async { (device_user(&ts, &khan, id2).await == "amyn").then_some(()) }).await;
    // (The device's own policy, pushed at connection, may still be on its
    // way: hers is a later frame.)
    let hers = tokio::time::timeout(Duration::from_secs(20), async {
        while !policy(&mut ws).await.sound_muted {}
    })
    .await;
    assert!(hers.is_ok(), "her class's policy never reached the device");
    // Whatever user the device's events name, the session is hers (the
    // browser client reports her name as its user once she signed in).
    send(
        &mut ws,
        &AgentMsg::State {
            state: DeviceState {
                user: Some("amyn".into()),
                focused_app: Some("chromium".into()),
                ..Default::default()
            },
        },
    )
    .await;
    let visit = ActivityEvent {
        at: lectern_store::now_ms(),
        kind: "web".into(),
        title: Some("Fractions".into()),
        url: Some("https://maths.example/fractions".into()),
        user: Some("mallory".into()),
        ..Default::default()
    };
    send(
        &mut ws,
        &AgentMsg::Activity {
            first_seq: Some(1),
            events: vec![visit],
        },
    )
    .await;
    let activity = wait_for(|| async {
        let a = ts
            .get(&admin, &format!("/api/v1/activity?device={id2}"))
            .await;
        (a.as_array().is_some_and(|a| !a.is_empty())).then_some(a)
    })
    .await;
    assert_eq!(activity[0]["user"], "amyn", "{activity}");
    assert_eq!(device_user(&ts, &admin, id2).await, "amyn");

    // A reconnect keeps her signed in.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ws = raw_session(
        &ts,
        &cred2,
        "CB-08",
        vec![Capability::Lock, Capability::StudentSignIn],
    )
    .await;
    assert!(matches!(
        answer(&mut ws).await,
        SignInOutcome::SignedIn { .. }
    ));

    // Signing out gives the device back its own (no) user.
    send(&mut ws, &AgentMsg::StudentSignOut).await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    wait_for(|| async { device_user(&ts, &admin, id2).await.is_null().then_some(()) }).await;

    // Signed in again; then the device's own user changes (someone signs
    // in to the browser): the session is no longer hers, and the device
    // is told.
    send(&mut ws, &sign_in("amyn", &[0, 9, 4])).await;
    assert!(matches!(
        answer(&mut ws).await,
        SignInOutcome::SignedIn { .. }
    ));
    wait_for(|| async { (device_user(&ts, &admin, id2).await == "amyn").then_some(()) }).await;
    send(
        &mut ws,
        &AgentMsg::State {
            state: DeviceState {
                user: Some("mallory@example.org".into()),
                ..Default::default()
            },
        },
    )
    .await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    wait_for(|| async {
        (device_user(&ts, &admin, id2).await == "mallory@example.org").then_some(())
    })
    .await;
    drop(ws);

    // Audited: the failures, the sign-in and the sign-out.
    let audit = ts.get(&admin, "/api/v1/audit?limit=200").await.to_string();
    for needle in [
        "student.password.set",
        "student.sign_in",
        "bad_credentials",
        "rate_limited",
        "student.sign_out",
        "desktop_user_changed",
    ] {
        assert!(audit.contains(needle), "{needle}: {audit}");
    }
    // The secret itself is never written anywhere the console reads.
    assert!(!audit.contains("0,9,4"));

    // A device whose groups do not offer it is refused.
    let enroll = ts.enrollment_token(&admin, 1).await;
    let lab = enroll_as(&ts, &enroll, "LAB1-PC01").await;
    let mut ws = raw_session(
        &ts,
        &lab,
        "LAB1-PC01",
        vec![Capability::Lock, Capability::StudentSignIn],
    )
    .await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    send(&mut ws, &sign_in("amyn", &[0, 9, 4])).await;
    assert!(matches!(
        answer(&mut ws).await,
        SignInOutcome::Refused {
            reason: SignInRefusal::NotOffered,
            ..
        }
    ));

    // A reset: she can no longer sign in.
    assert_eq!(ts.delete(&khan, &path).await, 204);
    assert_eq!(ts.delete(&khan, &path).await, 404);
    let _ = id;
}

/// Sends the device's own user and returns the policy that follows.
async fn report_user(ws: &mut lectern_agent::AgentStream, user: &str) -> lectern_proto::Policy {
    let state = DeviceState {
        user: Some(user.into()),
        ..Default::default()
    };
    send(ws, &AgentMsg::State { state }).await;
    policy(ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_whose_user_is_a_students_own_login_is_not_asked_to_sign_in() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/groups",
            json!({"name": "Library PCs", "kind": "computer", "priority": "low",
                   "members": [{"type": "hostname", "value": "LIB-*"}],
                   "settings": {"student_sign_in": true}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Ben logs in to desktops as "bwong" (his automatic identifier); his
    // roster id is not one.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/people",
            json!({"display_name": "Ben Wong", "aliases": [
                {"kind": "os_login", "value": "bwong"}, {"kind": "roster", "value": "ben.w"}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let enroll = ts.enrollment_token(&admin, 1).await;
    let cred = enroll_as(&ts, &enroll, "LIB-PC01").await;
    let mut ws = raw_session(
        &ts,
        &cred,
        "LIB-PC01",
        vec![Capability::Lock, Capability::StudentSignIn],
    )
    .await;
    assert_eq!(answer(&mut ws).await, SignInOutcome::SignedOut);
    assert!(
        policy(&mut ws).await.student_sign_in,
        "nobody logged in yet"
    );
    // His own login (any case): nothing to sign in to, and a sign-in is
    // refused as not offered.
    assert!(!report_user(&mut ws, "BWong").await.student_sign_in);
    send(&mut ws, &sign_in("ben.w", &[0, 1, 2])).await;
    assert!(matches!(
        answer(&mut ws).await,
        SignInOutcome::Refused {
            reason: SignInRefusal::NotOffered,
            ..
        }
    ));
    // A roster id is no login: offered; his login again: not; the
    // library's shared account: offered.
    assert!(report_user(&mut ws, "ben.w").await.student_sign_in);
    assert!(!report_user(&mut ws, "bwong").await.student_sign_in);
    assert!(report_user(&mut ws, "library").await.student_sign_in);
}
