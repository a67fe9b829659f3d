//! Issue 14 point 1: acceptable use policies. Real server, real TLS and
//! WebSockets on loopback; devices are agent sessions driven by hand
//! (`raw_session`) so each offer and each answer can be checked.

mod common;

use common::*;
use futures_util::SinkExt;
use lectern_proto::aup::{AcceptableUse, AupAnswer};
use lectern_proto::{AgentMsg, ErrorCode, RefusedFrame, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Device = lectern_agent::AgentStream;

const RULES_V1: &str =
    "Règles d'utilisation ✓\n\nБудьте добры. 日本語も大丈夫。\nNo sharing passwords.";

async fn send(ws: &mut Device, msg: AgentMsg) {
    ws.send(Message::text(msg.encode())).await.unwrap();
}

async fn set_user(ws: &mut Device, user: Option<&str>) {
    let state = lectern_proto::DeviceState {
        user: user.map(str::to_string),
        ..Default::default()
    };
    send(ws, AgentMsg::State { state }).await;
}

/// A device session named `host` with `user` logged in (as its state says).
async fn device(ts: &TestServer, admin: &str, host: &str, user: Option<&str>) -> (Device, i64) {
    let token = ts.enrollment_token(admin, 1).await;
    let cred = enroll_as(ts, &token, host).await;
    let mut ws = raw_session(ts, &cred, host, vec![]).await;
    set_user(&mut ws, user).await;
    (ws, cred.device_id)
}

/// The next frame about acceptable use (offers, clears, refusals), skipping
/// policies, keywords, chat history and the like.
async fn aup_frame(ws: &mut Device) -> ServerMsg {
    loop {
        match next_server_msg(ws).await {
            m @ (ServerMsg::AcceptableUse { .. }
            | ServerMsg::AcceptableUseClear
            | ServerMsg::Refused { .. }) => return m,
            _ => continue,
        }
    }
}

async fn offered(ws: &mut Device) -> AcceptableUse {
    match aup_frame(ws).await {
        ServerMsg::AcceptableUse { policy } => policy,
        other => panic!("expected a policy to accept, got {other:?}"),
    }
}

async fn refused(ws: &mut Device) -> ErrorCode {
    match aup_frame(ws).await {
        ServerMsg::Refused { code, frame, .. } => {
            assert_eq!(frame, RefusedFrame::Aup);
            code
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn answer(ws: &mut Device, version_id: i64, answer: AupAnswer) {
    send(ws, AgentMsg::AupAnswer { version_id, answer }).await;
}

async fn publish(ts: &TestServer, token: &str, group: i64, title: &str, text: &str) -> Value {
    let (s, v) = ts
        .post(
            token,
            "/api/v1/aup",
            json!({"group_id": group, "title": title, "text": text}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn user_group(ts: &TestServer, token: &str, name: &str, priority: &str, user: &str) -> i64 {
    let (s, g) = ts
        .post(
            token,
            "/api/v1/groups",
            json!({"name": name, "kind": "user", "priority": priority,
                   "members": [{"type": "user", "value": user}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

async fn get_text(ts: &TestServer, token: &str, path: &str) -> (u16, String) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn hosts_of(v: &Value) -> Vec<String> {
    let mut h: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hostname"].as_str().unwrap().to_string())
        .collect();
    h.sort();
    h
}

#[tokio::test]
async fn versions_per_group_acceptance_and_a_new_version_asks_again() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let everyone = entire_network(&ts, &admin).await;
    let year9 = user_group(&ts, &admin, "Year 9", "medium", "ben").await;
    let (mut amy, amy_id) = device(&ts, &admin, "LAB-PC01", Some("amy")).await;
    let (mut ben, _) = device(&ts, &admin, "LAB-PC02", Some("ben")).await;

    // Entire Network's policy reaches everyone logged in, Unicode intact.
    let v1 = publish(&ts, &admin, everyone, "School rules", RULES_V1).await;
    assert_eq!(v1["number"], 1);
    let shown = offered(&mut amy).await;
    assert_eq!(shown.text, RULES_V1);
    assert_eq!(
        (shown.version_id, shown.version),
        (v1["id"].as_i64().unwrap(), 1)
    );
    assert_eq!(offered(&mut ben).await.version_id, shown.version_id);

    // A user group's policy is stronger than Entire Network's for its members.
    let y9 = publish(&ts, &admin, year9, "Year 9 rules", "Year 9: be kind.").await;
    let ben_shown = offered(&mut ben).await;
    assert_eq!(ben_shown.version_id, y9["id"].as_i64().unwrap());

    // Both are waiting.
    let pending = ts.get(&admin, "/api/v1/aup/pending").await;
    assert_eq!(hosts_of(&pending), ["LAB-PC01", "LAB-PC02"]);

    // Only the version offered counts; then the acceptance is recorded for
    // this device and the user its state reports.
    answer(&mut amy, ben_shown.version_id, AupAnswer::Accepted).await;
    assert_eq!(refused(&mut amy).await, ErrorCode::NotAllowed);
    answer(&mut amy, shown.version_id, AupAnswer::Accepted).await;
    assert_eq!(aup_frame(&mut amy).await, ServerMsg::AcceptableUseClear);
    let acc = ts.get(&admin, "/api/v1/aup/acceptances").await;
    let rows = acc.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{acc}");
    assert_eq!(rows[0]["username"], "amy");
    assert_eq!(rows[0]["device_id"], amy_id);
    assert_eq!(rows[0]["hostname"], "LAB-PC01");
    assert_eq!(rows[0]["version"], 1);
    // A second answer to the same offer is not one: nothing is offered now.
    answer(&mut amy, shown.version_id, AupAnswer::Accepted).await;
    assert_eq!(refused(&mut amy).await, ErrorCode::NotAllowed);
    let pending = ts.get(&admin, "/api/v1/aup/pending").await;
    assert_eq!(hosts_of(&pending), ["LAB-PC02"]);

    // A device that cannot show it is reported so.
    answer(&mut ben, ben_shown.version_id, AupAnswer::Unsupported).await;
    let pending = wait_for(|| async {
        let p = ts.get(&admin, "/api/v1/aup/pending").await;
        (p[0]["status"] == "unsupported").then_some(p)
    })
    .await;
    assert_eq!(pending[0]["username"], "ben");

    // A new version asks again; the old one keeps its text and date.
    let v2 = publish(&ts, &admin, everyone, "School rules", "Version two.").await;
    assert_eq!(v2["number"], 2);
    let again = offered(&mut amy).await;
    assert_eq!((again.version, again.text.as_str()), (2, "Version two."));
    let all = ts.get(&admin, "/api/v1/aup").await;
    let en = all
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == everyone)
        .unwrap();
    let versions = en["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["number"], 2);
    assert_eq!(versions[1]["text"], RULES_V1);
    assert_eq!(versions[1]["published_at"], v1["published_at"]);

    // Logging out takes the policy away; logging in shows it again.
    set_user(&mut amy, None).await;
    assert_eq!(aup_frame(&mut amy).await, ServerMsg::AcceptableUseClear);
    set_user(&mut amy, Some("amy")).await;
    assert_eq!(offered(&mut amy).await.version_id, again.version_id);
    answer(&mut amy, again.version_id, AupAnswer::Accepted).await;
    assert_eq!(aup_frame(&mut amy).await, ServerMsg::AcceptableUseClear);

    // Another user on the same computer must accept for themselves.
    set_user(&mut amy, Some("cat")).await;
    assert_eq!(offered(&mut amy).await.version_id, again.version_id);

    // The report: per version, and as CSV.
    let only_v1 = ts
        .get(
            &admin,
            &format!("/api/v1/aup/acceptances?version={}", shown.version_id),
        )
        .await;
    assert_eq!(only_v1.as_array().unwrap().len(), 1);
    let (s, csv) = get_text(&ts, &admin, "/api/v1/aup/acceptances.csv").await;
    assert_eq!(s, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("accepted_at,username,device_id,hostname"));
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].contains(",amy,") && lines[1].contains("LAB-PC01"));

    // Each publication, acceptance and "cannot show" is audited.
    let audit = ts.get(&admin, "/api/v1/audit?limit=1000").await;
    let count = |action: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    assert_eq!(count("aup.publish"), 3, "{audit}");
    assert_eq!(count("aup.accept"), 2, "{audit}");
    assert_eq!(count("aup.unsupported"), 1, "{audit}");
}

#[tokio::test]
async fn rights_limits_and_bad_input() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let everyone = entire_network(&ts, &admin).await;
    let lab = computer_group(&ts, &admin, "Lab", "LAB-*").await;
    computer_group(&ts, &admin, "Art", "ART-*").await;

    // Without the right: a sentence, nothing published.
    let plain = teacher(&ts, &admin, "plain", &["devices.view"], &[(lab, "view")]).await;
    for path in [
        "/api/v1/aup",
        "/api/v1/aup/acceptances",
        "/api/v1/aup/pending",
    ] {
        let (s, body) = get_text(&ts, &plain, path).await;
        assert_eq!(s, 403, "{path}");
        assert!(body.contains("write acceptable use policies"), "{body}");
    }
    let (s, _) = ts
        .post(
            &plain,
            "/api/v1/aup",
            json!({"group_id": everyone, "title": "x", "text": "y"}),
        )
        .await;
    assert_eq!(s, 403);

    // Bad input: a clear error, nothing stored.
    let too_long = "é".repeat(lectern_proto::aup::MAX_TEXT_BYTES / 2 + 1);
    let cases = [
        (
            json!({"group_id": everyone, "title": "t", "text": too_long}),
            413,
        ),
        (
            json!({"group_id": everyone, "title": "t", "text": "  \n "}),
            400,
        ),
        (
            json!({"group_id": everyone, "title": "a\nb", "text": "x"}),
            400,
        ),
        (
            json!({"group_id": everyone, "title": "t", "text": "bell\u{7}"}),
            400,
        ),
        (json!({"group_id": lab, "title": "t", "text": "x"}), 400),
        (json!({"group_id": 999_999, "title": "t", "text": "x"}), 404),
        (
            json!({"group_id": everyone, "title": "t", "text": "x", "extra": 1}),
            400,
        ),
    ];
    for (body, want) in cases {
        let (s, v) = ts.post(&admin, "/api/v1/aup", body.clone()).await;
        assert_eq!(s, want, "{body} → {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let (s, body) = get_text(&ts, &admin, "/api/v1/aup/acceptances?version=abc").await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = get_text(&ts, &plain, "/api/v1/aup/acceptances?version=abc").await;
    assert_eq!(s, 403, "the right is checked before the query");
    let all = ts.get(&admin, "/api/v1/aup").await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["versions"].as_array().unwrap().is_empty()));
    // Computer groups carry no policy and are not listed.
    assert!(all.as_array().unwrap().iter().all(|g| g["group_id"] != lab));

    let (mut pc, _) = device(&ts, &admin, "LAB-PC01", Some("amy")).await;
    let (mut art_pc, _) = device(&ts, &admin, "ART-PC01", Some("ben")).await;
    let (mut nobody, _) = device(&ts, &admin, "LAB-PC02", None).await;
    let v = publish(&ts, &admin, everyone, "Rules", "Be kind.").await;
    let id = v["id"].as_i64().unwrap();
    assert_eq!(offered(&mut pc).await.version_id, id);
    assert_eq!(offered(&mut art_pc).await.version_id, id);

    // No one logged in: nothing offered, nothing to accept.
    answer(&mut nobody, id, AupAnswer::Accepted).await;
    assert_eq!(refused(&mut nobody).await, ErrorCode::NotAllowed);

    // A device is metered: wrong answers then the rate limit.
    for _ in 0..lectern_server::aup::ANSWERS_PER_MINUTE {
        answer(&mut pc, id + 1000, AupAnswer::Accepted).await;
        assert_eq!(refused(&mut pc).await, ErrorCode::NotAllowed);
    }
    answer(&mut pc, id, AupAnswer::Accepted).await;
    assert_eq!(refused(&mut pc).await, ErrorCode::RateLimited);
    // The other devices are served as before.
    answer(&mut art_pc, id, AupAnswer::Accepted).await;
    assert_eq!(aup_frame(&mut art_pc).await, ServerMsg::AcceptableUseClear);

    // The report is scoped: a manager who sees only the lab does not see
    // the art room's acceptance.
    let lab_admin = teacher(&ts, &admin, "labadmin", &["aup.manage"], &[(lab, "view")]).await;
    let rows = ts.get(&lab_admin, "/api/v1/aup/acceptances").await;
    assert_eq!(rows.as_array().unwrap().len(), 0, "{rows}");
    let rows = ts.get(&admin, "/api/v1/aup/acceptances").await;
    assert_eq!(hosts_of(&rows), ["ART-PC01"]);
    let pending = ts.get(&lab_admin, "/api/v1/aup/pending").await;
    assert_eq!(hosts_of(&pending), ["LAB-PC01"]);
}

async fn teacher(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[(i64, &str)],
) -> String {
    teacher_with_access(ts, admin, name, features, groups, false).await
}

#[tokio::test]
async fn a_real_agent_that_cannot_show_it_is_reported_so() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let everyone = entire_network(&ts, &admin).await;
    let token = ts.enrollment_token(&admin, 1).await;
    // The headless desktop has no policy surface: its session answers
    // `unsupported` to the offer.
    let mut agent = start_agent(&ts, &token, "HEADLESS-01", Some("amy")).await;
    agent
        .wait_status(|s| matches!(s, lectern_agent::ConnStatus::Connected))
        .await;
    publish(&ts, &admin, everyone, "Rules", "Be kind.").await;
    let pending = wait_for(|| async {
        let p = ts.get(&admin, "/api/v1/aup/pending").await;
        (p[0]["status"] == "unsupported").then_some(p)
    })
    .await;
    assert_eq!(pending[0]["hostname"], "HEADLESS-01");
    assert_eq!(pending[0]["username"], "amy");
    // Nothing was accepted on its behalf.
    let acc = ts.get(&admin, "/api/v1/aup/acceptances").await;
    assert_eq!(acc.as_array().unwrap().len(), 0);
    agent.stop().await;
}
