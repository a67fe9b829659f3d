//! Gaps left in issue 13 points 3 and 5: chat and raised hands age out with
//! the school's activity retention, and a reconnecting device gets its
//! current chat thread back. Real server, real TLS, SQLite and agents.

mod common;

use common::*;
use lectern_store::{HandClose, HandOutcome, NewChat, NewHelpRequest};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

fn chat(device: i64, text: &str, at: i64) -> NewChat {
    NewChat {
        device_id: device,
        thread: "day:2026-01-01".into(),
        batch: None,
        author: "amy".into(),
        from_teacher: false,
        text: text.into(),
        at,
    }
}

fn hand(device: i64, at: i64) -> NewHelpRequest {
    NewHelpRequest {
        device_id: device,
        username: Some("amy".into()),
        note: "help".into(),
        at,
    }
}

fn close(device: i64, at: i64) -> HandClose {
    HandClose {
        device_id: device,
        id: None,
        outcome: HandOutcome::Dismissed,
        by: "teacher".into(),
        answer: None,
        at,
    }
}

/// Chat messages and closed hands older than `activity_days` (90 by default)
/// go; newer ones stay, and an open hand stays however old it is.
#[tokio::test]
async fn retention_purges_old_chat_and_closed_hands_but_not_open_ones() {
    let ts = TestServer::start().await;
    let st = ts.server().state.clone();
    let school = common::home_school(&st);
    let days = i64::from(st.config.activity_days);
    assert!(days > 0);
    let now = lectern_store::now_ms();
    let old = now - (days + 1) * DAY_MS;
    let recent = now - (days - 1) * DAY_MS;
    let store = st.store.clone();
    // Device 1: an old hand closed long ago, then a hand raised long ago and
    // still open. Device 2: a hand closed recently. Device 3: closed long
    // ago, but raised again recently (open).
    store.raise_hand(school, &hand(1, old)).unwrap().unwrap();
    let closed_old = store.close_hand(school, &close(1, old)).unwrap().unwrap();
    let open_old = store.raise_hand(school, &hand(1, old)).unwrap().unwrap();
    store.raise_hand(school, &hand(2, old)).unwrap().unwrap();
    let closed_recent = store
        .close_hand(school, &close(2, recent))
        .unwrap()
        .unwrap();
    store
        .add_chat(
            school,
            &[
                chat(1, "old", old),
                chat(1, "recent", recent),
                chat(2, "new", now),
            ],
        )
        .unwrap();

    lectern_server::maintenance::retention(&st, now).await;

    let open = store.open_help_requests(school).unwrap();
    assert_eq!(open.iter().map(|h| h.id).collect::<Vec<_>>(), [open_old.id]);
    assert!(store
        .help_request(school, closed_recent.id)
        .unwrap()
        .is_some());
    assert!(
        store.help_request(school, closed_old.id).unwrap().is_none(),
        "the hand closed before the period went"
    );
    let texts = |d| {
        store
            .chat_history(school, d, "day:2026-01-01", 100)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(1), ["recent"]);
    assert_eq!(texts(2), ["new"]);
}

/// The chat lines a headless agent's student saw in the last history it got.
fn last_history(a: &TestAgent) -> Option<Vec<(bool, String)>> {
    let d = a.desktop.lock().unwrap();
    d.notices().iter().rev().find_map(|n| match n {
        lectern_agent::StudentNotice::ChatHistory { lines } => Some(
            lines
                .iter()
                .map(|l| (l.from_teacher, l.text.clone()))
                .collect(),
        ),
        _ => None,
    })
}

/// A device that reconnects gets the newest lines of its current thread
/// (at most 20), so the student's chat is not empty; another user on the
/// same device gets none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_agent_gets_its_users_recent_chat_back() {
    use lectern_agent::StudentRequest;
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let token = ts.enrollment_token(&admin, 1).await;
    let agent = start_agent(&ts, &token, "PC07", Some("zoe")).await;
    let id = agent.id();
    let first = wait_for(|| async { last_history(&agent) }).await;
    assert!(first.is_empty(), "nothing said yet: {first:?}");

    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/chat",
            json!({"devices": [id], "text": "Hello Zoë"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for n in 0..20 {
        agent
            .desktop
            .lock()
            .unwrap()
            .student_sends(StudentRequest::Chat {
                text: format!("line {n}"),
            });
    }
    // All 21 stored before the agent goes.
    wait_for(|| async {
        let h = ts.get(&admin, &format!("/api/v1/chat?device={id}")).await;
        let n = h["messages"].as_array().map_or(0, Vec::len);
        (n == 21).then_some(())
    })
    .await;
    let credential = agent.credential.clone();
    agent.stop().await;

    // The same student again: the newest 20 lines, oldest first.
    let again = run_enrolled(credential.clone(), "PC07", Some("zoe")).await;
    let lines = wait_for(|| async { last_history(&again) }).await;
    let want: Vec<(bool, String)> = (0..20).map(|n| (false, format!("line {n}"))).collect();
    assert_eq!(lines, want);
    again.stop().await;

    // Someone else on the device: the last user's conversation is not shown.
    let other = run_enrolled(credential, "PC07", Some("ben")).await;
    let lines = wait_for(|| async { last_history(&other) }).await;
    assert!(lines.is_empty(), "{lines:?}");
    other.stop().await;
}
