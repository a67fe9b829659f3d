//! Registering devices with a school code (issue 16): an admin makes the
//! code, a device registers with it as typed (any case, spaces, dashes),
//! the code is rotated and turned off, wrong codes are limited per address,
//! a code names its own school only, and a second school (its sign-in,
//! code and devices) is served apart from the first.

mod common;

use common::*;
use futures_util::StreamExt;
use lectern_agent::Desktop;
use lectern_proto::ErrorCode;
use lectern_store::Store;
use serde_json::{json, Value};

async fn hostnames(ts: &TestServer, token: &str) -> Vec<String> {
    ts.get(token, "/api/v1/devices")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_register_with_the_school_code_until_it_changes() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // No code yet: registration by code is off.
    assert_eq!(
        ts.get(&admin, "/api/v1/school/code").await["code"],
        Value::Null
    );
    assert_eq!(
        try_register(&ts, "7KQ2M-XH4PD", "pc-0").await.unwrap_err(),
        ErrorCode::BadToken
    );

    let (s, made) = ts.post(&admin, "/api/v1/school/code", json!({})).await;
    assert_eq!(s, 200, "{made}");
    let code = made["code"].as_str().unwrap().to_string();
    assert!(
        code.len() == 11 && code.as_bytes()[5] == b'-',
        "shown as two groups of five: {code}"
    );
    assert_eq!(made["created_by"], "admin");
    assert_eq!(
        ts.get(&admin, "/api/v1/school/code").await["code"],
        code.as_str()
    );

    // Typed in lower case with spaces for the dash: the device registers
    // into this school and connects with its credential.
    let typed = code.to_lowercase().replace('-', " ");
    let cred = try_register(&ts, &typed, "lab-pc-01").await.unwrap();
    assert_eq!(cred.school, "Test School");
    assert!(hostnames(&ts, &admin)
        .await
        .contains(&"lab-pc-01".to_string()));
    let agent = run_enrolled(cred, "lab-pc-01", None).await;
    agent.stop().await;
    let audit = ts.get(&admin, "/api/v1/audit?limit=50").await;
    let actions: Vec<&str> = audit
        .as_array()
        .or_else(|| audit["entries"].as_array())
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"school.code.rotate"), "{actions:?}");
    assert!(actions.contains(&"device.register"), "{actions:?}");

    // A new code: the old one stops at once; the new one works.
    let (_, rotated) = ts.post(&admin, "/api/v1/school/code", json!({})).await;
    let new_code = rotated["code"].as_str().unwrap().to_string();
    assert_ne!(new_code, code);
    assert_eq!(
        try_register(&ts, &code, "pc-old").await.unwrap_err(),
        ErrorCode::BadToken
    );
    try_register(&ts, &new_code, "pc-new").await.unwrap();

    // Turned off: none works, and the console says there is none.
    assert_eq!(ts.delete(&admin, "/api/v1/school/code").await, 204);
    assert_eq!(ts.delete(&admin, "/api/v1/school/code").await, 404);
    assert_eq!(
        try_register(&ts, &new_code, "pc-off").await.unwrap_err(),
        ErrorCode::BadToken
    );
    let names = hostnames(&ts, &admin).await;
    assert!(
        !names.iter().any(|n| n == "pc-old" || n == "pc-off"),
        "{names:?}"
    );

    // Only holders of devices.manage see or change it.
    let teacher = teacher_with_access(&ts, &admin, "t.code", &["devices.view"], &[], false).await;
    let r = ts
        .client()
        .get(ts.url("/api/v1/school/code"))
        .bearer_auth(&teacher)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (s, _) = ts.post(&teacher, "/api/v1/school/code", json!({})).await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_limited_per_address_and_say_so() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (_, made) = ts.post(&admin, "/api/v1/school/code", json!({})).await;
    let code = made["code"].as_str().unwrap().to_string();

    // Malformed and unknown codes are refused with a reason, and counted.
    for wrong in [
        "",
        "not a code",
        "ZZZZZ-ZZZZU",
        "ZZZZZ-ZZZZZ",
        &"x".repeat(10_000),
    ] {
        assert_eq!(
            try_register(&ts, wrong, "guess").await.unwrap_err(),
            ErrorCode::BadToken
        );
    }
    assert_eq!(ts.metric("lectern_school_code_refusals_total").await, 5);
    // The sixth try from this address waits, even with the right code.
    assert_eq!(
        try_register(&ts, &code, "guess").await.unwrap_err(),
        ErrorCode::RateLimited
    );
    assert!(!hostnames(&ts, &admin).await.contains(&"guess".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_registers_into_its_own_school_only() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // A second school in the same store, with its own code.
    let store = lectern_store::SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let other = store.create_school("Other School").unwrap();
    assert!(store
        .school_codes()
        .set_school_code(other, Some("B0THER0000"), "root", 1)
        .unwrap());
    let (_, made) = ts.post(&admin, "/api/v1/school/code", json!({})).await;
    assert_ne!(made["code"], "B0THE-R0000");

    // Typed with O for 0: still the other school's code.
    let cred = try_register(&ts, "bother-oooo", "other-pc").await.unwrap();
    assert_eq!(cred.school, "Other School");
    let devices = store.list_devices(other).unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].hostname, "other-pc");
    // This school's admin neither sees it nor the other school's code.
    assert!(!hostnames(&ts, &admin)
        .await
        .contains(&"other-pc".to_string()));
    assert_eq!(
        ts.get(&admin, "/api/v1/school/code").await["code"],
        made["code"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_school_is_served_apart_from_the_first() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let other = second_school(&ts, "Other School", "other.admin", "other-password-123");

    // Its administrator signs in naming the school; without it, the one
    // school holding that user name. An unknown school reads as a wrong
    // password.
    let found = sign_in_to(&ts, "other.admin", "other-password-123", None)
        .await
        .unwrap();
    assert_eq!(
        ts.get(&found, "/api/v1/session").await["school"],
        "Other School"
    );
    assert_eq!(
        sign_in_to(&ts, "other.admin", "other-password-123", Some(other + 50)).await,
        Err(401)
    );
    let other_admin = sign_in_to(&ts, "other.admin", "other-password-123", Some(other))
        .await
        .unwrap();
    assert_eq!(
        ts.get(&other_admin, "/api/v1/session").await["school"],
        "Other School"
    );

    // Each school makes its own code and sees only its own.
    let (s, made) = ts
        .post(&other_admin, "/api/v1/school/code", json!({}))
        .await;
    assert_eq!(s, 200, "{made}");
    assert_eq!(
        ts.get(&admin, "/api/v1/school/code").await["code"],
        Value::Null
    );

    // A device registers with the second school's code and connects: it is
    // served in its school, whose administrator sees and locks it; the
    // first school's neither sees it nor can act on it, and its console
    // stream hears nothing of it.
    let mut first_stream = console_stream(&ts, &admin).await;
    let cred = try_register(&ts, made["code"].as_str().unwrap(), "other-pc")
        .await
        .unwrap();
    assert_eq!(cred.school, "Other School");
    let agent = run_enrolled(cred, "other-pc", Some("olive")).await;
    let id = agent.id();
    assert!(hostnames(&ts, &other_admin)
        .await
        .contains(&"other-pc".to_string()));
    assert!(!hostnames(&ts, &admin)
        .await
        .contains(&"other-pc".to_string()));
    let rec = ts
        .command(
            &other_admin,
            &[id],
            json!({"type": "lock", "text": "Eyes on me"}),
        )
        .await;
    assert_eq!(rec["targets"][0]["status"], "done", "{rec}");
    assert!(agent.desktop.lock().unwrap().state().locked);
    // Refused as unknown: the answer an id that does not exist gets.
    let unlock = |device: i64| json!({"devices": [device], "command": {"type": "unlock"}});
    let (s, refused) = ts.post(&admin, "/api/v1/commands", unlock(id)).await;
    let (s_none, none) = ts.post(&admin, "/api/v1/commands", unlock(id + 1000)).await;
    assert_eq!((s, s_none), (400, 400), "{refused} {none}");
    assert_eq!(
        refused["error"]
            .as_str()
            .unwrap()
            .replace(&id.to_string(), "N"),
        none["error"]
            .as_str()
            .unwrap()
            .replace(&(id + 1000).to_string(), "N")
    );
    assert!(agent.desktop.lock().unwrap().state().locked);
    let r = ts
        .client()
        .get(ts.url(&format!("/api/v1/devices/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Whatever the first school's stream said, none of it was this device.
    let mut heard = Vec::new();
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout(std::time::Duration::from_millis(800), first_stream.next()).await
    {
        heard.push(m.to_string());
    }
    let needle = format!("\"id\":{id},");
    assert!(
        heard
            .iter()
            .all(|m| !m.contains("other-pc") && !m.contains(&needle)),
        "{heard:?}"
    );
    agent.stop().await;
}

/// A sign-in that names no school: the server's only school, or on a
/// server of several, the one school with a local account of that name.
/// A name held in two schools, a name held nowhere and a school that does
/// not exist all read as a wrong password, rate-limited together and never
/// against a real school's limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_naming_no_school_finds_the_one_school_holding_the_name() {
    let ts = TestServer::start().await;
    let home = common::home_school(&ts.server().state);
    // Alone on the server, the first school is what a sign-in means.
    assert!(sign_in_to(&ts, "admin", PASSWORD, None).await.is_ok());

    let vale = second_school(&ts, "Vale School", "admin", "vale-password-123");
    let store = lectern_store::SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    store
        .create_user(
            vale,
            "v.head",
            "vale-head-password-1",
            lectern_store::Role::Teacher,
        )
        .unwrap();

    // A name only Vale holds finds Vale.
    let head = sign_in_to(&ts, "v.head", "vale-head-password-1", None)
        .await
        .unwrap();
    assert_eq!(
        ts.get(&head, "/api/v1/session").await["school"],
        "Vale School"
    );
    // `admin` is in both: without the school, neither password signs in.
    assert_eq!(sign_in_to(&ts, "admin", PASSWORD, None).await, Err(401));
    assert_eq!(
        sign_in_to(&ts, "admin", "vale-password-123", None).await,
        Err(401)
    );
    // Named, each signs in to its own.
    let at_home = sign_in_to(&ts, "admin", PASSWORD, Some(home))
        .await
        .unwrap();
    assert_eq!(
        ts.get(&at_home, "/api/v1/session").await["school"],
        "Test School"
    );
    let at_vale = sign_in_to(&ts, "admin", "vale-password-123", Some(vale))
        .await
        .unwrap();
    assert_eq!(
        ts.get(&at_vale, "/api/v1/session").await["school"],
        "Vale School"
    );
    // A name held nowhere, or a school that does not exist: wrong password.
    assert_eq!(sign_in_to(&ts, "nobody", PASSWORD, None).await, Err(401));
    assert_eq!(
        sign_in_to(&ts, "admin", PASSWORD, Some(vale + 50)).await,
        Err(401)
    );

    // Guessing at made-up schools is slowed down like any guessing...
    let mut limited = false;
    for k in 0..12 {
        if sign_in_to(&ts, "admin", "a-guess-1234", Some(1000 + k)).await == Err(429) {
            limited = true;
            break;
        }
    }
    assert!(limited, "guesses at made-up schools were never slowed down");
    // ...and leaves the real schools' sign-ins alone.
    assert!(sign_in_to(&ts, "admin", PASSWORD, Some(home)).await.is_ok());
    assert!(sign_in_to(&ts, "admin", "vale-password-123", Some(vale))
        .await
        .is_ok());
    // A sign-in naming no school is limited the same whether the name was
    // found (v.head, at Vale) or not (ghost): the answer never tells.
    let mut first_limited = Vec::new();
    for name in ["v.head", "ghost"] {
        let mut at = None;
        for k in 0..12 {
            if sign_in_to(&ts, name, "a-guess-1234", None).await == Err(429) {
                at = Some(k);
                break;
            }
        }
        first_limited.push(at);
    }
    assert!(first_limited[0].is_some(), "{first_limited:?}");
    assert_eq!(first_limited[0], first_limited[1]);
    // Named, Vale's own limits for v.head are untouched by those guesses.
    assert!(
        sign_in_to(&ts, "v.head", "vale-head-password-1", Some(vale))
            .await
            .is_ok()
    );

    // Nothing of it reached an audit log: no school was found to hold it.
    let audit = store.audit_list(home, 500, None, None).unwrap();
    assert!(!audit
        .iter()
        .any(|e| e.detail.contains("a-guess") || e.actor == "nobody"));
}
