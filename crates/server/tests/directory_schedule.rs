//! The scheduled directory sync runs on the server's clock: moving it
//! (`PUT /debug/clock`, debug builds only) wakes the directory timer at
//! once, and the move answers after the timer's turn, so no test sleeps
//! for the schedule's minutes. Against a real `slapd`.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::TestServer;
use serde_json::{json, Value};
use slapd::*;

const MINUTE: i64 = 60_000;

/// Moves the server's clock to `now` (ms); answers once timers acted.
async fn set_clock(ts: &TestServer, admin: &str, now: i64) {
    let (s, v) = send(
        ts,
        admin,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({ "now": now })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

async fn runs(ts: &TestServer, admin: &str) -> Vec<Value> {
    ts.get(admin, "/api/v1/directory/sync")
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn is_member(ts: &TestServer, admin: &str, user: &str) -> bool {
    let users = ts.get(admin, "/api/v1/directory/users").await;
    users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == user)
}

#[tokio::test]
async fn a_scheduled_sync_runs_when_the_clock_passes_its_interval() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let mut config = slapd.config();
    config["sync_minutes"] = json!(60);
    let (s, body) = put_config(&ts, &admin, config).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{body}");
    let start = runs(&ts, &admin).await[0]["at"].as_i64().unwrap();

    // A new pupil in the directory.
    slapd.modify(&format!(
        "dn: uid=fay,ou=people,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: fay\ncn: fay\nsn: fay\n\n\
         dn: cn=Pupils,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: uid=fay,ou=people,{SUFFIX}\n"
    ));

    // Half the interval: nothing runs.
    set_clock(&ts, &admin, start + 30 * MINUTE).await;
    assert_eq!(runs(&ts, &admin).await.len(), 1);
    assert!(!is_member(&ts, &admin, "fay").await);

    // Past it: the scheduled sync ran before the move answered.
    set_clock(&ts, &admin, start + 61 * MINUTE).await;
    let after = runs(&ts, &admin).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0]["trigger"], "schedule", "{}", after[0]);
    assert_eq!(after[0]["outcome"], "ok", "{}", after[0]);
    assert_eq!(after[0]["summary"]["plan"]["added"], json!(["fay"]));
    assert!(is_member(&ts, &admin, "fay").await);

    // The next one is due an interval after that run, on the same clock.
    set_clock(&ts, &admin, start + 100 * MINUTE).await;
    assert_eq!(runs(&ts, &admin).await.len(), 2);
    set_clock(&ts, &admin, start + 122 * MINUTE).await;
    let later = runs(&ts, &admin).await;
    assert_eq!(later.len(), 3);
    assert_eq!(later[0]["trigger"], "schedule");
}
