//! Exams (issue 13.7) end to end: real server, real agents with temporary
//! homes; the lock-down reaches the agents as policy, the paper is handed
//! out, answers are collected at the end and the log tells what happened.

mod common;

use std::io::Read;
use std::path::Path;

use common::*;
use lectern_proto::{AppMode, WebFilterMode};
use serde_json::{json, Value};

async fn agent_with_home(
    ts: &TestServer,
    enroll: &str,
    host: &str,
    user: &str,
    root: &Path,
) -> TestAgent {
    let a = start_agent(ts, enroll, host, Some(user)).await;
    a.desktop.lock().unwrap().set_home_root(root);
    a
}

async fn request(
    ts: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> (u16, Value) {
    let r = ts
        .client()
        .request(method, ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until exam `id`'s log has a line for which `found` holds; returns
/// the log.
async fn wait_log(
    ts: &TestServer,
    token: &str,
    id: i64,
    found: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let found = &found;
    wait_for(move || async move {
        let e = ts.get(token, &format!("/api/v1/exams/{id}")).await;
        let log = e["log"].as_array().unwrap().clone();
        log.iter().any(found).then_some(log)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exam_locks_down_hands_out_collects_and_keeps_a_log() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let homes = tempfile::tempdir().unwrap();
    let amy = agent_with_home(&ts, &enroll, "EXAM-PC01", "amy", homes.path()).await;
    let ben = agent_with_home(&ts, &enroll, "EXAM-PC02", "ben", homes.path()).await;
    let other = agent_with_home(&ts, &enroll, "LAB-PC09", "cat", homes.path()).await;

    // Bad input first: clear errors, nothing made.
    for bad in [
        json!({"name": "", "devices": [amy.id()]}),
        json!({"name": "x", "devices": [amy.id()], "allowed_sites": ["not a pattern!"]}),
        json!({"name": "x", "devices": [amy.id()], "collect_path": "../etc"}),
        json!({"name": "x", "devices": [999]}),
        json!({"name": "x", "devices": [amy.id()], "starts_at": 10, "ends_at": 5}),
    ] {
        let (s, v) = ts.post(&admin, "/api/v1/exams", bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    assert_eq!(ts.get(&admin, "/api/v1/exams").await, json!([]));

    let (s, exam) = ts
        .post(
            &admin,
            "/api/v1/exams",
            json!({"name": "Maths mock", "devices": [amy.id(), ben.id()],
                   "allowed_sites": ["*.bbc.co.uk"], "allowed_apps": ["libreoffice"],
                   "collect_path": "~/Lectern/Exam/answers.txt"}),
        )
        .await;
    assert_eq!(s, 201, "{exam}");
    assert_eq!(exam["status"], "planned");
    assert_eq!(exam["collect_path"], "Exam/answers.txt");
    let id = exam["id"].as_i64().unwrap();
    let paper = b"Question 1: what is 6 x 7?".to_vec();
    let r = ts
        .client()
        .put(ts.url(&format!("/api/v1/exams/{id}/paper")))
        .query(&[("name", "paper.txt")])
        .bearer_auth(&admin)
        .body(paper.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (s, v) = request(
        &ts,
        &admin,
        reqwest::Method::POST,
        &format!("/api/v1/exams/{id}/start"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "running");
    // The lock-down reaches the exam's devices, not the others.
    wait_for(|| async {
        let d = amy.desktop.lock().unwrap();
        let p = d.policy();
        (p.web_filter_mode == WebFilterMode::AllowList
            && p.allow_list == ["*.bbc.co.uk"]
            && p.app_mode == AppMode::AllowList
            && p.app_allow_list == ["libreoffice"])
        .then_some(())
    })
    .await;
    assert_eq!(
        other.desktop.lock().unwrap().policy().web_filter_mode,
        WebFilterMode::Off
    );
    // Amy tries an application the exam does not allow: the agent closes it
    // and the exam log records the attempt; an allowed one is not logged.
    assert!(!amy.desktop.lock().unwrap().start_app("steam"));
    assert!(amy.desktop.lock().unwrap().start_app("LibreOffice"));
    wait_log(&ts, &admin, id, |l| {
        l["kind"] == "blocked"
            && l["device_id"] == amy.id()
            && l["detail"].as_str().unwrap_or("").contains("steam")
    })
    .await;
    // The paper arrives and the student is told.
    let received = homes
        .path()
        .join("amy/Lectern/Received/Maths mock/paper.txt");
    wait_for(|| async { (std::fs::read(&received).ok()? == paper).then_some(()) }).await;
    let message = amy.desktop.lock().unwrap().message().map(str::to_string);
    assert!(
        message.as_deref().unwrap_or("").contains("Maths mock"),
        "{message:?}"
    );
    let (s, _) = request(
        &ts,
        &admin,
        reqwest::Method::POST,
        &format!("/api/v1/exams/{id}/start"),
    )
    .await;
    assert_eq!(s, 409);

    // Amy writes her answers; Ben's computer goes away during the exam.
    let answers = homes.path().join("amy/Lectern/Exam");
    std::fs::create_dir_all(&answers).unwrap();
    std::fs::write(answers.join("answers.txt"), b"42").unwrap();
    let ben_id = ben.id();
    ben.stop().await;
    wait_log(&ts, &admin, id, |l| {
        l["kind"] == "disconnected" && l["device_id"] == ben_id
    })
    .await;

    let (s, v) = request(
        &ts,
        &admin,
        reqwest::Method::POST,
        &format!("/api/v1/exams/{id}/end"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "ended");
    // The lock-down is lifted.
    wait_for(|| async {
        let d = amy.desktop.lock().unwrap();
        (d.policy().web_filter_mode == WebFilterMode::Off && d.policy().app_mode == AppMode::Off)
            .then_some(())
    })
    .await;
    let log = wait_log(&ts, &admin, id, |l| {
        l["kind"] == "collected" && l["device_id"] == amy.id()
    })
    .await;
    let kinds: Vec<&str> = log.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for k in [
        "started",
        "paper",
        "blocked",
        "disconnected",
        "ended",
        "collected",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(
        !log.iter().any(|l| l["kind"] == "blocked"
            && l["detail"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("libreoffice")),
        "an allowed application is not a blocked attempt: {log:?}"
    );
    let paper_line = log
        .iter()
        .find(|l| l["kind"] == "paper" && l["device_id"] == amy.id())
        .unwrap();
    assert!(
        paper_line["detail"].as_str().unwrap().starts_with("done"),
        "{paper_line}"
    );

    let r = ts
        .client()
        .get(ts.url(&format!("/api/v1/exams/{id}/zip")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let name = format!("amy - EXAM-PC01 ({})/answers.txt", amy.id());
    let mut text = String::new();
    zip.by_name(&name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "42");

    let (s, _) = request(&ts, &admin, reqwest::Method::GET, "/api/v1/exams/999").await;
    assert_eq!(s, 404);
    let audit = ts.get(&admin, "/api/v1/audit").await.to_string();
    assert!(audit.contains("exam.start") && audit.contains("exam.end"));
    amy.stop().await;
    other.stop().await;
}
