//! Keyword policies per group with a real server and hand-driven agent
//! sessions: libraries enabled per computer or user group with their own
//! severity actions; matches carry their library; provenance in the
//! resultant API; libraries re-pushed when another user signs in; rights and
//! hostile uploads refused; the old single library migrated.

mod common;

use common::*;
use futures_util::SinkExt;
use lectern_proto::{ActivityEvent, AgentMsg, Capability, DeviceState, ServerMsg, ViolationReport};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// An agent session by hand with `user` logged in, past the welcome.
async fn session(
    ts: &TestServer,
    cred: &lectern_agent::StoredCredential,
    host: &str,
    user: Option<&str>,
    capabilities: Vec<Capability>,
) -> lectern_agent::AgentStream {
    let mut ws = lectern_agent::connect(&ts.addr.to_string(), &ts.fingerprint)
        .await
        .unwrap();
    let hello = AgentMsg::Hello(lectern_proto::Hello {
        protocol_version: lectern_proto::PROTOCOL_VERSION,
        auth: lectern_proto::Auth::Device {
            device_id: cred.device_id,
            secret: cred.secret.clone(),
        },
        info: lectern_agent::local_device_info(Some(host.into())),
        capabilities,
        state: state(user),
    });
    ws.send(Message::text(hello.encode())).await.unwrap();
    match next_server_msg(&mut ws).await {
        ServerMsg::Welcome { .. } => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

fn state(user: Option<&str>) -> DeviceState {
    DeviceState {
        user: user.map(str::to_string),
        ..Default::default()
    }
}

async fn send(ws: &mut lectern_agent::AgentStream, m: AgentMsg) {
    ws.send(Message::text(m.encode())).await.unwrap();
}

/// A visit to a page titled `title` by `user`.
fn visit(seq: u64, user: &str, title: &str) -> AgentMsg {
    AgentMsg::Activity {
        first_seq: Some(seq),
        events: vec![ActivityEvent {
            kind: "web".into(),
            user: Some(user.into()),
            url: Some("https://example.org/page".into()),
            title: Some(title.into()),
            app: None,
            at: 1_700_000_000_000 + seq as i64,
            blocked: false,
        }],
    }
}

/// The next `Keywords` message's terms (other frames skipped).
async fn next_library(ws: &mut lectern_agent::AgentStream) -> Vec<String> {
    loop {
        if let ServerMsg::Keywords { library } = next_server_msg(ws).await {
            return library["terms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["term"].as_str().unwrap().to_string())
                .collect();
        }
    }
}

async fn violations(ts: &TestServer, token: &str, device: i64) -> Vec<Value> {
    ts.get(token, &format!("/api/v1/violations?device={device}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

fn lib(terms: &[(&str, u8)]) -> Value {
    json!({"terms": terms.iter().map(|(t, s)| json!({
        "term": t, "category": "test", "severity": s, "match_type": "whole_word", "exceptions": []
    })).collect::<Vec<_>>()})
}

async fn create_library(ts: &TestServer, token: &str, name: &str, terms: &[(&str, u8)]) -> i64 {
    let (s, v) = ts
        .post(
            token,
            "/api/v1/keywords/libraries",
            json!({"name": name, "library": lib(terms)}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn assign(
    ts: &TestServer,
    token: &str,
    library: i64,
    group: i64,
    actions: Option<[&str; 5]>,
) -> (u16, Value) {
    ts.put(
        token,
        "/api/v1/keywords/assignments",
        json!({"library_id": library, "group_id": group, "actions": actions}),
    )
    .await
}

async fn user_group(ts: &TestServer, token: &str, name: &str, user: &str) -> i64 {
    let (s, g) = ts
        .post(
            token,
            "/api/v1/groups",
            json!({"name": name, "kind": "user", "priority": "medium",
                   "members": [{"type": "user", "value": user}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_get_their_own_libraries_actions_and_provenance() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let lab = computer_group(&ts, &token, "Lab", "LAB-*").await;
    let art = computer_group(&ts, &token, "Art", "ART-*").await;
    let lab_lib = create_library(&ts, &token, "Lab pack", &[("volcano", 3)]).await;
    let art_lib = create_library(&ts, &token, "Art pack", &[("crayon", 3)]).await;
    let (s, v) = assign(
        &ts,
        &token,
        lab_lib,
        lab,
        Some(["log", "log", "alert", "lock", "lock"]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = assign(&ts, &token, art_lib, art, Some(["log"; 5])).await;
    assert_eq!(s, 200, "{v}");

    let enroll = ts.enrollment_token(&token, 2).await;
    let lab_cred = enroll_as(&ts, &enroll, "LAB-PC01").await;
    let art_cred = enroll_as(&ts, &enroll, "ART-PC01").await;
    // No keyword_scan: the server scans what these devices report.
    let mut lab_ws = session(&ts, &lab_cred, "LAB-PC01", Some("amy"), vec![]).await;
    let mut art_ws = session(&ts, &art_cred, "ART-PC01", Some("ben"), vec![]).await;
    // The other group's term first: were it matched, it would be stored
    // before the expected one.
    send(&mut lab_ws, visit(1, "amy", "crayon and volcano")).await;
    send(&mut art_ws, visit(1, "ben", "volcano and crayon")).await;

    let lab_v = wait_for(|| async {
        let v = violations(&ts, &token, lab_cred.device_id).await;
        v.iter().any(|v| v["term"] == "volcano").then_some(v)
    })
    .await;
    let art_v = wait_for(|| async {
        let v = violations(&ts, &token, art_cred.device_id).await;
        v.iter().any(|v| v["term"] == "crayon").then_some(v)
    })
    .await;
    assert_eq!(
        lab_v.len(),
        1,
        "only the lab's library matches there: {lab_v:?}"
    );
    assert_eq!(
        art_v.len(),
        1,
        "only the art library matches there: {art_v:?}"
    );
    assert_eq!(
        lab_v[0]["action"], "alert",
        "the lab pack's action for severity 3"
    );
    assert_eq!(lab_v[0]["library"], "Lab pack");
    assert_eq!(lab_v[0]["library_id"], lab_lib);
    assert_eq!(
        art_v[0]["action"], "log",
        "the art pack's action for severity 3"
    );
    assert_eq!(art_v[0]["library"], "Art pack");

    // Provenance: which libraries apply to the lab computer, from where.
    let r = ts
        .get(
            &token,
            &format!("/api/v1/resultant?device={}", lab_cred.device_id),
        )
        .await;
    let libs = r["keyword_libraries"].as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = libs
        .iter()
        .map(|l| {
            (
                l["library"].as_str().unwrap(),
                l["group_name"].as_str().unwrap(),
                l["actions_from"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("Lab pack", "Lab", "library"),
            ("Lectern default", "Entire Network", "school")
        ],
        "{r}"
    );
    assert_eq!(
        libs[0]["actions"],
        json!(["log", "log", "alert", "lock", "lock"])
    );

    // Disabling the default for the lab group takes it off the lab only.
    let default_id = libs[1]["library_id"].as_i64().unwrap();
    let (s, v) = ts
        .put(
            &token,
            "/api/v1/keywords/assignments",
            json!({"library_id": default_id, "group_id": lab, "enabled": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = ts
        .get(
            &token,
            &format!("/api/v1/resultant?device={}", lab_cred.device_id),
        )
        .await;
    assert_eq!(r["keyword_libraries"].as_array().unwrap().len(), 1, "{r}");
    let r = ts
        .get(
            &token,
            &format!("/api/v1/resultant?device={}", art_cred.device_id),
        )
        .await;
    assert_eq!(r["keyword_libraries"].as_array().unwrap().len(), 2, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libraries_follow_the_user_who_signs_in_and_reports_take_their_library() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let pupils = user_group(&ts, &token, "Pupils", "ben").await;
    let pack = create_library(&ts, &token, "Pupil pack", &[("volcano", 4)]).await;
    let (s, v) = assign(
        &ts,
        &token,
        pack,
        pupils,
        Some(["log", "log", "log", "alert", "alert"]),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "HALL-PC01").await;
    let mut ws = session(
        &ts,
        &cred,
        "HALL-PC01",
        Some("amy"),
        vec![Capability::KeywordScan],
    )
    .await;
    let terms = next_library(&mut ws).await;
    assert!(
        !terms.contains(&"volcano".to_string()),
        "amy is not a pupil"
    );
    assert!(
        terms.len() > 100,
        "the default library applies: {}",
        terms.len()
    );

    // Ben signs in: the pupils' pack is added.
    send(
        &mut ws,
        AgentMsg::State {
            state: state(Some("ben")),
        },
    )
    .await;
    let terms = next_library(&mut ws).await;
    assert!(terms.contains(&"volcano".to_string()), "ben is a pupil");

    // The device reports a match; its severity and action come from the
    // library that holds the term, not from the report.
    send(
        &mut ws,
        AgentMsg::Violation(Box::new(ViolationReport {
            local_id: 1,
            term: "volcano".into(),
            category: "test".into(),
            severity: 1,
            matched: "v0lcano".into(),
            context: "a v0lcano".into(),
            source: "title".into(),
            user: Some("ben".into()),
            at: 1_700_000_000_000,
        })),
    )
    .await;
    let v = wait_for(|| async { violations(&ts, &token, cred.device_id).await.pop() }).await;
    assert_eq!(v["library"], "Pupil pack", "{v}");
    assert_eq!(v["severity"], 4, "{v}");
    assert_eq!(v["action"], "alert", "{v}");

    // Editing the pack re-sends the union to the device that uses it.
    let (s, v) = ts
        .put(
            &token,
            &format!("/api/v1/keywords/libraries/{pack}"),
            json!({"library": lib(&[("volcano", 4), ("geyser", 2)])}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let terms = next_library(&mut ws).await;
    assert!(terms.contains(&"geyser".to_string()), "{terms:?}");

    // Amy again: the pack goes.
    send(
        &mut ws,
        AgentMsg::State {
            state: state(Some("amy")),
        },
    )
    .await;
    let terms = next_library(&mut ws).await;
    assert!(!terms.contains(&"volcano".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_default_library_and_hostile_uploads_are_refused() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let mine = computer_group(&ts, &admin, "Mine", "MINE-*").await;
    let theirs = computer_group(&ts, &admin, "Theirs", "THEIRS-*").await;
    let pack = create_library(&ts, &admin, "Pack", &[("volcano", 3)]).await;

    // No keywords.manage: nothing, not even the list.
    let plain = teacher_with_access(
        &ts,
        &admin,
        "tom",
        &["devices.view"],
        &[(mine, "control")],
        false,
    )
    .await;
    let r = ts
        .client()
        .get(ts.url("/api/v1/keywords/libraries"))
        .bearer_auth(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (s, _) = assign(&ts, &plain, pack, mine, None).await;
    assert_eq!(s, 403);

    // keywords.manage and control of one group: that group only.
    let kw = teacher_with_access(
        &ts,
        &admin,
        "kim",
        &["keywords.manage"],
        &[(mine, "control")],
        false,
    )
    .await;
    let (s, v) = assign(&ts, &kw, pack, mine, None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = assign(&ts, &kw, pack, theirs, None).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["reason"].is_string(), "{v}");
    // Deleting a library assigned to a group one does not control: refused.
    let (s, _) = assign(&ts, &admin, pack, theirs, None).await;
    assert_eq!(s, 200);
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/keywords/libraries/{pack}")))
        .bearer_auth(&kw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let audit = ts.get(&admin, "/api/v1/audit?action=access.denied").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"] == "kim" && e["detail"].as_str().unwrap().contains("keywords")));

    // The default is read-only and stays.
    let list = ts.get(&admin, "/api/v1/keywords/libraries").await;
    let default = list["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "default")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) = ts
        .put(
            &admin,
            &format!("/api/v1/keywords/libraries/{default}"),
            json!({"name": "Mine now"}),
        )
        .await;
    assert_eq!(s, 400);
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/keywords/libraries/{default}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // ... but can be copied.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/keywords/libraries",
            json!({"name": "Our copy", "copy_from": default}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["terms"].as_u64().unwrap() > 100, "{v}");

    // Imports: a good one, then hostile names, rows and sizes.
    let csv = "term,category,severity,match,exceptions\ngeyser,test,2,whole_word,\n";
    let import = |name: &str, file: &str, body: String| {
        let url = ts.url("/api/v1/keywords/libraries/import");
        let q = [("name", name.to_string()), ("file", file.to_string())];
        let req = ts
            .client()
            .post(url)
            .query(&q)
            .bearer_auth(&admin)
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = import("Geysers", "geysers.csv", csv.into()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["terms"].as_u64()),
        (Some("imported"), Some(1))
    );
    for file in [
        "../../etc/passwd.csv",
        "evil\u{202e}vsc.csv",
        ".hidden.csv",
        "a.exe",
        "C:pack.csv",
    ] {
        let (s, v) = import("X", file, csv.into()).await;
        assert_eq!(s, 400, "{file}: {v}");
        assert!(v["error"].as_str().unwrap().contains("file name"), "{v}");
    }
    let (s, v) = import("Bad", "bad.csv", format!("{csv}oops,test,9,whole_word,\n")).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("line 3"), "{v}");
    let (s, _) = import("Huge", "huge.csv", "x".repeat(1024 * 1024 + 1)).await;
    assert_eq!(s, 413);
    let (s, v) = import("Geysers", "again.csv", csv.into()).await;
    assert_eq!(s, 409, "a taken name: {v}");
    let (s, v) = import("line\nbreak", "ok.csv", csv.into()).await;
    assert_eq!(s, 400, "{v}");
    // Nothing of the refused ones was stored.
    let list = ts.get(&admin, "/api/v1/keywords/libraries").await;
    assert_eq!(list["libraries"].as_array().unwrap().len(), 4, "{list}");

    // Export gives the CSV back.
    let id = v_id(&list, "Geysers");
    let r = ts
        .client()
        .get(ts.url(&format!("/api/v1/keywords/libraries/{id}/csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("geyser,test,2"));
}

fn v_id(list: &Value, name: &str) -> i64 {
    list["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_single_library_becomes_the_schools_own() {
    use lectern_store::Store;
    // A data directory as the previous version left it: the school's one
    // library in `documents`.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    lectern_server::init::init(&lectern_server::init::InitOptions {
        data_dir: data.clone(),
        school: "Test School".into(),
        admin: "admin".into(),
        password: Some(PASSWORD.into()),
        cert: None,
        names: vec![],
        listen: None,
        postgres: None,
    })
    .unwrap();
    {
        let store = lectern_store::SqliteStore::open(&data.join("lectern.db")).unwrap();
        let school = store.first_school().unwrap().unwrap().id;
        let old = lib(&[("volcano", 5)]).to_string();
        store.set_document(school, "keyword_library", &old).unwrap();
    }
    let server = lectern_server::Server::start(&data, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let ts = TestServer {
        addr: server.addr,
        fingerprint: server.fingerprint.clone(),
        server: Some(server),
        dir,
    };
    let token = ts.login().await;
    let list = ts.get(&token, "/api/v1/keywords/libraries").await;
    let libs = list["libraries"].as_array().unwrap();
    let kinds: Vec<(&str, &str, u64)> = libs
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap(),
                l["name"].as_str().unwrap(),
                l["assignments"].as_array().unwrap().len() as u64,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("default", "Lectern default", 0),
            ("own", "School library", 1)
        ],
        "{list}"
    );
    // The old routes show and edit it.
    let old = ts.get(&token, "/api/v1/keywords").await;
    assert_eq!(old["terms"][0]["term"], "volcano");
    // And it is what the school's computers are scanned with.
    let enroll = ts.enrollment_token(&token, 1).await;
    let cred = enroll_as(&ts, &enroll, "ANY-PC01").await;
    let mut ws = session(&ts, &cred, "ANY-PC01", Some("amy"), vec![]).await;
    send(&mut ws, visit(1, "amy", "a volcano")).await;
    let v = wait_for(|| async { violations(&ts, &token, cred.device_id).await.pop() }).await;
    assert_eq!(
        (v["term"].as_str(), v["library"].as_str()),
        (Some("volcano"), Some("School library"))
    );
    assert_eq!(v["action"], "lock", "severity 5 with the school's actions");
}
