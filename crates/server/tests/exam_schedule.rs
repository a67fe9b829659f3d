//! Exam timing (issue 13.7 gap): an exam starts at its `starts_at` and ends
//! at its `ends_at` even when the server restarts in between, because the
//! exam timer reads the times from the store.

mod common;

use std::time::Duration;

use common::*;
use lectern_agent::ConnStatus;
use lectern_proto::WebFilterMode;
use lectern_store::now_ms;
use serde_json::{json, Value};

/// Polls `f` every 100 ms until it returns `Some`, for up to `secs`.
async fn wait_long<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exam(ts: &TestServer, admin: &str, id: i64) -> Value {
    ts.get(admin, &format!("/api/v1/exams/{id}")).await
}

fn log_has(exam: &Value, kind: &str, detail: &str) -> bool {
    exam["log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == kind && l["detail"].as_str().unwrap_or("").contains(detail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_exam_starts_and_ends_across_restarts() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 5).await;
    let homes = tempfile::tempdir().unwrap();
    let mut amy = start_agent(&ts, &enroll, "EXAM-PC01", Some("amy")).await;
    amy.desktop.lock().unwrap().set_home_root(homes.path());
    let answers = homes.path().join("amy/Lectern/Exam");
    std::fs::create_dir_all(&answers).unwrap();
    std::fs::write(answers.join("answers.txt"), b"42").unwrap();

    // Starts in 3 s, ends 20 s later: room for two restarts on a busy machine.
    let start = now_ms() + 3_000;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/exams",
            json!({"name": "Timed mock", "devices": [amy.id()],
                   "collect_path": "Exam/answers.txt",
                   "starts_at": start, "ends_at": start + 20_000}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    // One whose whole window passed (as if the server was down for it).
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/exams",
            json!({"name": "Missed mock", "devices": [amy.id()],
                   "starts_at": now_ms() - 20_000, "ends_at": now_ms() - 10_000}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let missed = v["id"].as_i64().unwrap();

    // The server restarts before the start: the start is not lost.
    ts.restart().await;
    let admin = ts.login().await;
    amy.wait_status(|s| *s == ConnStatus::Connected).await;
    let running = wait_long(60, || async {
        let e = exam(&ts, &admin, id).await;
        (e["status"] != "planned").then_some(e)
    })
    .await;
    assert!(
        log_has(&running, "started", "started by schedule"),
        "{running}"
    );
    // While it runs the lock-down (no web) reaches the device.
    if running["status"] == "running" {
        wait_long(60, || async {
            let off = amy.desktop.lock().unwrap().policy().internet_blocked;
            (off || exam(&ts, &admin, id).await["status"] == "ended").then_some(())
        })
        .await;
    }

    // Restarts again while it runs: the end is not lost either.
    ts.restart().await;
    let admin = ts.login().await;
    let ended = wait_long(90, || async {
        let e = exam(&ts, &admin, id).await;
        (e["status"] == "ended").then_some(e)
    })
    .await;
    assert!(log_has(&ended, "ended", "ended by schedule"), "{ended}");
    assert!(ended["collection_id"].is_i64(), "{ended}");
    // The answers are collected and the lock-down lifted.
    amy.wait_status(|s| *s == ConnStatus::Connected).await;
    wait_long(60, || async {
        let e = exam(&ts, &admin, id).await;
        e["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "collected" && l["device_id"] == amy.id())
            .then_some(())
    })
    .await;
    wait_long(60, || async {
        let d = amy.desktop.lock().unwrap();
        (!d.policy().internet_blocked && d.policy().web_filter_mode == WebFilterMode::Off)
            .then_some(())
    })
    .await;

    // The missed one was closed without starting.
    let m = exam(&ts, &admin, missed).await;
    assert_eq!(m["status"], "ended", "{m}");
    assert!(m["started_at"].is_null(), "{m}");
    assert!(log_has(&m, "ended", "not started"), "{m}");

    // The audit log names the schedule as the actor.
    let audit = ts.get(&admin, "/api/v1/audit").await;
    let by_schedule = |action: &str| {
        audit
            .as_array()
            .or_else(|| audit["entries"].as_array())
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "schedule" && e["action"] == action)
    };
    assert!(by_schedule("exam.start"), "{audit}");
    assert!(by_schedule("exam.end"), "{audit}");
    amy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exam_starts_and_ends_once_when_asked_at_the_same_time() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let amy = start_agent(&ts, &enroll, "EXAM-PC01", Some("amy")).await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/exams",
            json!({"name": "Race", "devices": [amy.id()]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    for (action, kind) in [("start", "started"), ("end", "ended")] {
        let path = format!("/api/v1/exams/{id}/{action}");
        let calls = (0..4).map(|_| ts.post(&admin, &path, json!(null)));
        let statuses: Vec<u16> = futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 409),
            "{statuses:?}"
        );
        let e = exam(&ts, &admin, id).await;
        let lines = e["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == kind)
            .count();
        assert_eq!(lines, 1, "{e}");
    }
    amy.stop().await;
}
