//! Retrospective keyword scans with a real server: stored activity of several
//! devices is rescanned for new terms in the background; hits become
//! violations marked retrospective, exactly once, never beside a live
//! violation of the same event, never older than retention; jobs report
//! progress, pause to keep their CPU share, can be cancelled, and are
//! refused to users without `keywords.manage`.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_proto::{ActivityEvent, AgentMsg, ServerMsg};
use lectern_store::{SqliteStore, Store};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    lectern_store::now_ms()
}

fn store(ts: &TestServer) -> (SqliteStore, i64) {
    let s = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let school = s.first_school().unwrap().unwrap().id;
    (s, school)
}

fn web(user: &str, title: &str, url: &str, at: i64) -> ActivityEvent {
    ActivityEvent {
        kind: "web".into(),
        user: Some(user.into()),
        url: Some(url.into()),
        title: Some(title.into()),
        app: None,
        at,
        blocked: false,
    }
}

async fn send(ts: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let c = ts.client();
    let req = match method {
        "PUT" => c.put(ts.url(path)),
        _ => c.post(ts.url(path)),
    };
    let r = req.bearer_auth(token).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn set_settings(ts: &TestServer, admin: &str, values: Value) {
    let (s, v) = send(
        ts,
        admin,
        "PUT",
        "/api/v1/school/settings",
        json!({ "values": values }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// Adds terms (whole words in category `test`) to the library in force.
async fn add_terms(ts: &TestServer, admin: &str, terms: &[(&str, u8)]) {
    let mut lib = ts.get(admin, "/api/v1/keywords").await;
    for (t, severity) in terms {
        lib["terms"].as_array_mut().unwrap().push(json!({
            "term": t, "category": "test", "severity": severity, "match_type": "whole_word"
        }));
    }
    let (s, v) = send(ts, admin, "PUT", "/api/v1/keywords", lib).await;
    assert_eq!(s, 200, "{v}");
}

/// Job `id` as the progress route shows it.
async fn job_of(ts: &TestServer, token: &str, id: i64) -> Value {
    let st = ts.get(token, "/api/v1/keywords/rescan").await;
    st["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no job {id} in {st}"))
}

/// Polls job `id` (generously: two minutes) until it has ended, and returns
/// every `rows_scanned` seen on the way and the ended job.
async fn watch(ts: &TestServer, token: &str, id: i64) -> (Vec<i64>, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let j = job_of(ts, token, id).await;
        seen.push(j["rows_scanned"].as_i64().unwrap());
        if j["state"] != "queued" && j["state"] != "running" {
            return (seen, j);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} still running: {j}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ended(ts: &TestServer, token: &str, id: i64) -> Value {
    watch(ts, token, id).await.1
}

/// Reads server frames until the acknowledgement of `up_to`.
async fn acked(ws: &mut lectern_agent::AgentStream, up_to: u64) {
    loop {
        if next_server_msg(ws).await == (ServerMsg::ActivityAck { up_to }) {
            return;
        }
    }
}

async fn rescan(ts: &TestServer, token: &str, body: Value) -> Value {
    let (s, job) = send(ts, token, "POST", "/api/v1/keywords/rescan", body).await;
    assert_eq!(s, 202, "{job}");
    job
}

async fn violations(ts: &TestServer, token: &str, query: &str) -> Vec<Value> {
    ts.get(token, &format!("/api/v1/violations?limit=10000&{query}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The next violation alert on a console stream.
async fn next_alert(
    console: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
              + Unpin),
) -> Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(m)) = console.next().await {
            if let Message::Text(t) = m {
                let e: Value = serde_json::from_str(&t).unwrap();
                if e["type"] == "violation" {
                    return e["violation"].clone();
                }
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("a violation alert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescan_finds_each_matching_event_once_within_retention() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // Activity kept 30 days: the old event below is stored after the sweep
    // that this change runs, so only the scan's own limit keeps it out.
    set_settings(&ts, &admin, json!({"activity_days": 30})).await;
    let enroll = ts.enrollment_token(&admin, 3).await;
    let a = enroll_as(&ts, &enroll, "RETRO-A").await;
    let b = enroll_as(&ts, &enroll, "RETRO-B").await;
    let c = enroll_as(&ts, &enroll, "RETRO-C").await;
    let t = now();

    // `quasar` is a term now: device A's live event becomes a live violation.
    add_terms(&ts, &admin, &[("quasar", 2)]).await;
    let live_at = t - 3_600_000;
    let mut ws = raw_session(&ts, &a, "RETRO-A", vec![]).await;
    let batch = AgentMsg::Activity {
        first_seq: Some(1),
        events: vec![web(
            "amy",
            "quasar and zorblax facts",
            "https://a.test/x",
            live_at,
        )],
    };
    ws.send(Message::text(batch.encode())).await.unwrap();
    acked(&mut ws, 1).await;
    let live = wait_for(|| async {
        let v = violations(&ts, &admin, "").await;
        (v.len() == 1).then(|| v[0].clone())
    })
    .await;
    assert_eq!(live["retrospective"], false);

    // History of three devices, stored before the new terms exist.
    let (s, school) = store(&ts);
    s.add_activity(
        school,
        a.device_id,
        None,
        &[
            web("amy", "Zorblax guide", "https://a.test/1", t - DAY),
            web("amy", "Homework", "https://a.test/2", t - DAY),
        ],
    )
    .unwrap();
    s.add_activity(
        school,
        b.device_id,
        None,
        &[
            // Title and search say it twice: one violation for the event.
            web(
                "bea",
                "zorblax - Search",
                "https://search.test/?q=zorblax",
                t - 2 * DAY,
            ),
            web(
                "bea",
                "zorblaxes are not it",
                "https://b.test/",
                t - 2 * DAY,
            ),
            web("bea", "Zorblax again", "https://b.test/2", t - 3 * DAY),
        ],
    )
    .unwrap();
    s.add_activity(
        school,
        c.device_id,
        None,
        &[
            web("cal", "old zorblax", "https://c.test/", t - 40 * DAY),
            web("cal", "Maths", "https://c.test/m", t - 5 * DAY),
        ],
    )
    .unwrap();
    let within = 1 + 2 + 3 + 1; // Rows inside the 30 days, the live one included.

    // A teacher without keywords.manage sees nothing and starts nothing.
    let everyone = entire_network(&ts, &admin).await;
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "tess",
        &["devices.view", "activity.view"],
        &[(everyone, "view")],
        false,
    )
    .await;
    let (s403, v) = send(&ts, &teacher, "POST", "/api/v1/keywords/rescan", json!({})).await;
    assert_eq!(
        (s403, v["reason"].as_str()),
        (403, Some("missing_right")),
        "{v}"
    );
    let r = ts
        .client()
        .get(ts.url("/api/v1/keywords/rescan"))
        .bearer_auth(&teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Adding terms offers a rescan (the school's default is to offer):
    // `quasar` from before and now `zorblax`.
    add_terms(&ts, &admin, &[("zorblax", 5)]).await;
    let status = ts.get(&admin, "/api/v1/keywords/rescan").await;
    assert_eq!(status["offer"]["terms"], 2, "{status}");
    assert_eq!(status["offer"]["sample"], json!(["quasar", "zorblax"]));
    assert!(status["active"].is_null());

    let mut console = console_stream(&ts, &admin).await;
    let job = rescan(&ts, &admin, json!({"terms": "changed", "days": 60})).await;
    assert_eq!(
        (job["terms"].as_i64(), job["reason"].as_str()),
        (Some(2), Some("changed"))
    );
    assert_eq!(job["rows_total"], within);
    let done = ended(&ts, &admin, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["rows_scanned"], within);
    assert_eq!(done["rows_total"], within);
    // A (live event + day-old title) and B (two events): four; the live
    // event's `quasar` already has its live violation.
    assert_eq!(done["hits"], 4, "{done}");
    let offer = ts.get(&admin, "/api/v1/keywords/rescan").await["offer"].clone();
    assert!(offer.is_null(), "the offer is taken: {offer}");

    let found = violations(&ts, &admin, "retrospective=true").await;
    let mut got: Vec<(i64, i64, String)> = found
        .iter()
        .map(|v| {
            (
                v["device_id"].as_i64().unwrap(),
                v["at"].as_i64().unwrap(),
                v["term"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (a.device_id, live_at, "zorblax".to_string()),
        (a.device_id, t - DAY, "zorblax".to_string()),
        (b.device_id, t - 3 * DAY, "zorblax".to_string()),
        (b.device_id, t - 2 * DAY, "zorblax".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    for v in &found {
        // Severity 5 locks when live; found later it only alerts, without screenshots.
        assert_eq!(
            (v["action"].as_str(), v["screenshots"].as_i64()),
            (Some("alert"), Some(0))
        );
    }
    let b_search = found.iter().find(|v| v["at"] == t - 2 * DAY).unwrap();
    assert_eq!(b_search["user"], "bea");
    assert_eq!(b_search["source"], "title");
    let alert = next_alert(&mut console).await;
    assert_eq!(alert["retrospective"], true, "{alert}");
    assert_eq!(alert["term"], "zorblax");

    // The whole library again: every event is already covered.
    let again = rescan(&ts, &admin, json!({"terms": "all"})).await;
    let again = ended(&ts, &admin, again["id"].as_i64().unwrap()).await;
    assert_eq!(
        (again["state"].as_str(), again["hits"].as_i64()),
        (Some("done"), Some(0))
    );
    assert_eq!(violations(&ts, &admin, "retrospective=true").await.len(), 4);
    // The live violation of the `quasar` event stands alone.
    let quasar: Vec<Value> = violations(&ts, &admin, "q=quasar")
        .await
        .into_iter()
        .filter(|v| v["term"] == "quasar")
        .collect();
    assert_eq!(quasar.len(), 1, "{quasar:?}");
    assert_eq!(quasar[0]["id"], live["id"]);
    assert_eq!(
        violations(&ts, &admin, "retrospective=false").await.len(),
        1
    );

    // Nothing was asked of the offline devices; the audit names each step.
    let audit = ts.get(&admin, "/api/v1/audit?action=keywords.rescan").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "keywords.rescan.start")
            .count(),
        2,
        "{audit}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "keywords.rescan.finish")
            .count(),
        2,
        "{audit}"
    );

    // Saving changed terms with automatic rescans on starts one at once.
    set_settings(&ts, &admin, json!({"retro_auto_days": 10})).await;
    add_terms(&ts, &admin, &[("homework", 1)]).await;
    let status = ts.get(&admin, "/api/v1/keywords/rescan").await;
    let auto = &status["recent"][0];
    assert_eq!(
        (auto["reason"].as_str(), auto["started_by"].as_str()),
        (Some("changed"), Some("admin")),
        "{status}"
    );
    let auto = ended(&ts, &admin, auto["id"].as_i64().unwrap()).await;
    assert_eq!(auto["hits"], 1, "{auto}");
    let hw = violations(&ts, &admin, "q=homework").await;
    assert_eq!(hw[0]["action"], "log", "severity 1 logs: {hw:?}");
}

/// 4,500 visits of `device` a day ago (chunks of 2,000, 2,000 and 500):
/// every 100th titled `nebulon`, the others `page`.
fn seed_bulk(ts: &TestServer, device: i64) {
    let t = now();
    let events: Vec<ActivityEvent> = (0..4_500)
        .map(|i| {
            // No numbers: some are terms of the default library.
            let title = if i % 100 == 0 { "nebulon" } else { "page" };
            web("dan", title, "https://d.test/", t - DAY + i)
        })
        .collect();
    let (s, school) = store(ts);
    s.add_activity(school, device, None, &events).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_pause_for_their_cpu_share_rise_to_their_total_and_cancel() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let d = enroll_as(&ts, &enroll, "RETRO-BULK").await;
    seed_bulk(&ts, d.device_id);
    add_terms(&ts, &admin, &[("nebulon", 1)]).await;

    // At a whole core the job never pauses.
    set_settings(&ts, &admin, json!({"retro_cpu_percent": 100})).await;
    let job = rescan(&ts, &admin, json!({"terms": "changed"})).await;
    let fast = ended(&ts, &admin, job["id"].as_i64().unwrap()).await;
    assert_eq!(
        (fast["state"].as_str(), fast["pauses"].as_i64()),
        (Some("done"), Some(0)),
        "{fast}"
    );
    assert_eq!(
        (fast["rows_scanned"].as_i64(), fast["hits"].as_i64()),
        (Some(4_500), Some(45))
    );

    // At the default quarter of a core it pauses after each of its 3 chunks,
    // and its progress only rises, to the total.
    set_settings(&ts, &admin, json!({"retro_cpu_percent": 25})).await;
    let job = rescan(&ts, &admin, json!({"terms": "all"})).await;
    let id = job["id"].as_i64().unwrap();
    assert_eq!(job["cpu_percent"], 25);
    let (seen, capped) = watch(&ts, &admin, id).await;
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(capped["state"], "done");
    assert_eq!(capped["rows_scanned"], 4_500);
    assert_eq!(capped["rows_total"], 4_500);
    assert_eq!(capped["pauses"], 3, "{capped}");
    assert_eq!(capped["hits"], 0, "no duplicates: {capped}");

    // At 5 % the pauses are long; a cancel lands within the job, which then
    // stops adding anything, and frees the school for the next job.
    set_settings(&ts, &admin, json!({"retro_cpu_percent": 5})).await;
    // `page` is in 4,455 titles: a new term, offered.
    add_terms(&ts, &admin, &[("page", 1)]).await;
    let slow = rescan(&ts, &admin, json!({"terms": "all"})).await;
    let slow_id = slow["id"].as_i64().unwrap();
    let (s2, busy) = send(&ts, &admin, "POST", "/api/v1/keywords/rescan", json!({})).await;
    assert_eq!(
        (s2, busy["reason"].as_str()),
        (409, Some("rescan_running")),
        "{busy}"
    );
    let (s, cancelled) = send(
        &ts,
        &admin,
        "POST",
        &format!("/api/v1/keywords/rescan/{slow_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["note"], "cancelled by admin");
    let (s, _) = send(
        &ts,
        &admin,
        "POST",
        &format!("/api/v1/keywords/rescan/{slow_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "already ended");
    let (s, _) = send(
        &ts,
        &admin,
        "POST",
        "/api/v1/keywords/rescan/999999/cancel",
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    // The next job runs (at a whole core) while the cancelled one's runner
    // wakes, sees the cancel and stores nothing.
    set_settings(&ts, &admin, json!({"retro_cpu_percent": 100})).await;
    let next = rescan(&ts, &admin, json!({"terms": "changed"})).await;
    let next = ended(&ts, &admin, next["id"].as_i64().unwrap()).await;
    assert_eq!(next["state"], "done");
    let after = ended(&ts, &admin, slow_id).await;
    assert_eq!(after["state"], "cancelled");
    assert!(after["rows_scanned"].as_i64().unwrap() < 4_500, "{after}");
    // What the cancelled job committed stays; the next job adds the rest, once.
    assert_eq!(
        next["hits"].as_i64().unwrap() + after["hits"].as_i64().unwrap(),
        4_455,
        "{next} {after}"
    );
    assert_eq!(violations(&ts, &admin, "q=page").await.len(), 4_455);
    let audit = ts
        .get(&admin, "/api/v1/audit?action=keywords.rescan.cancel")
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");

    // Bad requests change nothing.
    for bad in [
        json!({"days": 0}),
        json!({"days": 4000}),
        json!({"terms": "some"}),
        json!({"colour": 1}),
    ] {
        let (s, v) = send(&ts, &admin, "POST", "/api/v1/keywords/rescan", bad).await;
        assert_eq!(s, 400, "{v}");
    }
    let (s, v) = send(
        &ts,
        &admin,
        "POST",
        "/api/v1/keywords/rescan",
        json!({"terms": "changed"}),
    )
    .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (409, Some("nothing_offered")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_running_resumes_after_a_restart_from_where_it_was() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let d = enroll_as(&ts, &enroll, "RETRO-RESTART").await;
    seed_bulk(&ts, d.device_id);
    add_terms(&ts, &admin, &[("nebulon", 3)]).await;
    // Slow, so the restart finds it running.
    set_settings(&ts, &admin, json!({"retro_cpu_percent": 5})).await;
    let job = rescan(&ts, &admin, json!({"terms": "changed"})).await;
    let id = job["id"].as_i64().unwrap();
    // Its first chunk is in: it pauses 19 times as long as that took.
    let midway = wait_for(|| async {
        let j = job_of(&ts, &admin, id).await;
        (j["rows_scanned"].as_i64().unwrap() >= 2_000).then_some(j)
    })
    .await;
    assert_eq!(midway["state"], "running", "{midway}");
    ts.restart().await;
    let done = ended(&ts, &admin, id).await;
    assert_eq!(done["state"], "done", "{done}");
    // Each row counted once, each match stored once, across both servers.
    assert_eq!(done["rows_scanned"], 4_500, "{done}");
    assert_eq!(done["hits"], 45, "{done}");
    assert_eq!(violations(&ts, &admin, "q=nebulon").await.len(), 45);
}
