//! An enrolled device cannot flood the server: activity events, violations and
//! evidence beyond its school's limits are refused with a typed, non-fatal
//! `refused` frame, counted in `lectern_device_limited_total`, and nothing the
//! server acknowledged is lost; a burst of matches locks once; other devices
//! keep working. Real server, real TLS, a raw WebSocket client speaking the
//! protocol and the real agent library.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use lectern_agent::AgentStream;
use lectern_proto::{
    ActivityEvent, AgentMsg, ErrorCode, Evidence, MediaFrame, MediaKind, RefusedFrame, ServerMsg,
    ViolationReport, AGENT_EVIDENCE,
};
use lectern_store::{ActivityFilter, SqliteStore, Store};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A server whose `[devices.defaults]` limits are `limits`.
pub async fn start_with_limits(limits: Value) -> TestServer {
    TestServer::start_with_config(|c| set_device_defaults(c, limits)).await
}

/// The next `n` acknowledgements and refusals (other frames skipped).
async fn replies(ws: &mut AgentStream, n: usize) -> Vec<ServerMsg> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = next_server_msg(ws).await;
        if matches!(
            m,
            ServerMsg::ActivityAck { .. } | ServerMsg::Refused { .. } | ServerMsg::Error { .. }
        ) {
            out.push(m);
        }
    }
    out
}

/// `n` visits with no keyword in them (numbers could spell one).
fn events(n: usize, tag: &str) -> Vec<ActivityEvent> {
    (0..n)
        .map(|i| ActivityEvent {
            kind: "web".into(),
            user: Some("eve".into()),
            url: Some(format!("https://{tag}.example/page")),
            title: Some(format!("{tag} page")),
            app: None,
            at: 1_700_000_000_000 + i as i64,
            blocked: false,
        })
        .collect()
}

fn report(local_id: u64) -> AgentMsg {
    AgentMsg::Violation(Box::new(ViolationReport {
        local_id,
        term: "lava lamp".into(),
        category: "flood".into(),
        severity: 5,
        matched: "lava lamp".into(),
        context: "a lava lamp".into(),
        source: "title".into(),
        user: Some("eve".into()),
        at: 1_700_000_000_000,
    }))
}

fn evidence(violation_id: u64, index: u8, total: u8, bytes: usize) -> Message {
    let mut jpeg = vec![0u8; bytes];
    jpeg[0] = 0xff;
    jpeg[1] = 0xd8;
    let payload = Evidence {
        violation_id,
        index,
        total,
    }
    .payload(&jpeg);
    Message::binary(
        MediaFrame {
            kind: MediaKind::Evidence,
            width: 8,
            height: 8,
            payload: &payload,
        }
        .encode(),
    )
}

/// Sequence numbers stored for `device`, sorted.
fn stored_seqs(ts: &TestServer, device: i64) -> Vec<i64> {
    let store = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let school = store.first_school().unwrap().unwrap();
    let rows = store
        .activity(
            school.id,
            &ActivityFilter {
                devices: Some(vec![device]),
                limit: 100_000,
                ..Default::default()
            },
        )
        .unwrap();
    let mut seqs: Vec<i64> = rows.iter().filter_map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs
}

fn refused(m: &ServerMsg) -> (ErrorCode, RefusedFrame) {
    match m {
        ServerMsg::Refused {
            code,
            frame,
            retry_after_ms,
            ..
        } => {
            if *code == ErrorCode::RateLimited {
                assert!(*retry_after_ms > 0, "a rate refusal says when to retry");
            }
            (*code, *frame)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_is_refused_counted_and_locked_once() {
    // No refill to speak of during the test: what is refused is decided by
    // the bursts alone, so the outcome does not depend on timing.
    let ts = start_with_limits(json!({
        "events_per_minute": 1, "events_burst": 1000,
        "violations_per_hour": 1, "violations_burst": 3,
        "evidence_frames": 2, "evidence_frame_bytes": 2048,
        "evidence_bytes_per_hour": 1, "evidence_burst_bytes": 3000,
        "action_quiet_secs": 3600,
    }))
    .await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let calm = start_agent(&ts, &enroll, "CALM-PC01", Some("amy")).await;
    let cred = enroll_as(&ts, &enroll, "FLOOD-PC01").await;
    let flood = cred.device_id;
    let mut ws = raw_session(&ts, &cred, "FLOOD-PC01", vec![]).await;

    // Events: two batches fit the burst; the rest are refused, never acknowledged.
    for first in [1u64, 501, 1001, 1501] {
        let msg = AgentMsg::Activity {
            first_seq: Some(first),
            events: events(500, "flood"),
        };
        ws.send(Message::text(msg.encode())).await.unwrap();
    }
    let got = replies(&mut ws, 4).await;
    assert_eq!(got[0], ServerMsg::ActivityAck { up_to: 500 });
    assert_eq!(got[1], ServerMsg::ActivityAck { up_to: 1000 });
    for (m, first) in got[2..].iter().zip([1001u64, 1501]) {
        assert_eq!(
            refused(m),
            (
                ErrorCode::RateLimited,
                RefusedFrame::Activity {
                    first_seq: Some(first)
                }
            )
        );
    }
    assert_eq!(stored_seqs(&ts, flood), (1..=1000).collect::<Vec<i64>>());
    assert_eq!(
        ts.metric("lectern_device_limited_total{kind=\"events\"}")
            .await,
        1000
    );

    // Violations: three fit; a burst of severity-5 matches locks once.
    for local in 1..=5u64 {
        ws.send(Message::text(report(local).encode()))
            .await
            .unwrap();
    }
    let got = replies(&mut ws, 2).await;
    assert_eq!(
        refused(&got[0]),
        (
            ErrorCode::RateLimited,
            RefusedFrame::Violation { local_id: 4 }
        )
    );
    assert_eq!(
        refused(&got[1]),
        (
            ErrorCode::RateLimited,
            RefusedFrame::Violation { local_id: 5 }
        )
    );
    let stored: Vec<Value> = ts
        .get(&token, "/api/v1/violations?category=flood")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(stored.len(), 3);
    assert_eq!(
        ts.metric("lectern_device_limited_total{kind=\"violations\"}")
            .await,
        2
    );
    assert_eq!(ts.metric("lectern_safety_actions_quieted_total").await, 2);
    let audit = ts.get(&token, "/api/v1/audit").await;
    let locks = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "online-safety policy" && e["action"] == "command.lock")
        .count();
    assert_eq!(locks, 1, "one lock (and one audit row) per burst");

    // Evidence: only against an allowance, at the sizes allowed, within the
    // device's bytes. Accepted frames get no answer; refusals come in order.
    let ev = |local: u64| local | AGENT_EVIDENCE;
    let frames = vec![
        evidence(ev(1), 0, 2, 1000), // accepted
        evidence(ev(1), 0, 2, 1000), // the same index again
        evidence(ev(1), 5, 9, 1000), // beyond the frames allowed
        evidence(ev(1), 1, 2, 4000), // larger than allowed
        evidence(ev(99), 0, 1, 100), // a violation never reported
        evidence(12345, 0, 1, 100),  // a violation the server never asked about
        evidence(ev(4), 0, 1, 100),  // a refused violation
        evidence(ev(2), 0, 2, 1000), // accepted: 2,000 of 3,000 bytes used
        evidence(ev(2), 1, 2, 1500), // over the device's evidence bytes
    ];
    for f in frames {
        ws.send(f).await.unwrap();
    }
    let got = replies(&mut ws, 7).await;
    let codes: Vec<ErrorCode> = got.iter().map(|m| refused(m).0).collect();
    assert_eq!(
        codes,
        [
            [ErrorCode::NotAllowed; 6].as_slice(),
            &[ErrorCode::RateLimited]
        ]
        .concat()
    );
    assert_eq!(
        refused(&got[6]).1,
        RefusedFrame::Evidence {
            violation_id: ev(2),
            index: 1
        }
    );
    assert_eq!(
        ts.metric("lectern_device_limited_total{kind=\"evidence_not_allowed\"}")
            .await,
        6
    );
    assert_eq!(
        ts.metric("lectern_device_limited_total{kind=\"evidence\"}")
            .await,
        1
    );
    let mut files: Vec<String> = Vec::new();
    for dir in std::fs::read_dir(ts.data_dir().join("evidence")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            files.push(f.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    files.sort();
    assert_eq!(
        files,
        ["0.jpg", "0.jpg"],
        "one frame each for two violations"
    );

    // The flooding device is still in session, and another device is served.
    ws.send(Message::text(AgentMsg::Heartbeat.encode()))
        .await
        .unwrap();
    let rec = ts
        .command(&token, &[calm.id()], json!({"type": "lock"}))
        .await;
    assert_eq!(rec["targets"][0]["status"], "done", "{rec}");
    calm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_refused_for_rate_sends_everything_again_later() {
    // 500 at once, then 200 a second: a backlog of 3,000 goes out as six
    // batches at once, most are refused, and the agent keeps and resends them.
    let ts = start_with_limits(json!({"events_per_minute": 12000, "events_burst": 500})).await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let agent = start_agent(&ts, &enroll, "BUSY-PC01", Some("amy")).await;
    agent.desktop.lock().unwrap().synthesize_activity(3000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let seqs = stored_seqs(&ts, agent.id());
        if seqs.len() >= 3000 {
            // The synthetic visits and whatever the desktop logged itself.
            let n = seqs.len() as i64;
            assert_eq!(seqs, (1..=n).collect::<Vec<i64>>(), "each once, no gap");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of 3000 stored",
            seqs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ts.metric("lectern_device_limited_total{kind=\"events\"}")
            .await
            > 0,
        "the backlog went over the rate"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_refused_for_rate_are_held_and_reported_later() {
    // Two at once, then one a second: five matches in one visit go over the
    // burst; the agent holds the refused ones and reports them again.
    let ts = start_with_limits(json!({"violations_per_hour": 3600, "violations_burst": 2})).await;
    let token = ts.login().await;
    let csv = "term,category,severity,match,exceptions\n\
        zebra,zoo,3,whole_word,\nwalrus,zoo,3,whole_word,\nnarwhal,zoo,3,whole_word,\n\
        okapi,zoo,3,whole_word,\nquokka,zoo,3,whole_word,\n";
    let r = ts
        .client()
        .put(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let enroll = ts.enrollment_token(&token, 1).await;
    SCAN_NEXT.with(|f| f.set(true));
    let agent = start_agent(&ts, &enroll, "ZOO-PC01", Some("amy")).await;
    ts.command(
        &token,
        &[agent.id()],
        json!({"type": "launch_url", "url": "https://zoo.example/zebra-walrus-narwhal-okapi-quokka"}),
    )
    .await;
    let terms = wait_for(|| async {
        let v = ts.get(&token, "/api/v1/violations?category=zoo").await;
        let mut terms: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["term"].as_str().unwrap().to_string())
            .collect();
        terms.sort();
        (terms.len() >= 5).then_some(terms)
    })
    .await;
    assert_eq!(terms, ["narwhal", "okapi", "quokka", "walrus", "zebra"]);
    assert!(
        ts.metric("lectern_device_limited_total{kind=\"violations\"}")
            .await
            > 0,
        "five at once went over the burst of two"
    );
    agent.stop().await;
}
