//! Reports are scoped by their creator's rights (devices they may see, the
//! activity.view right), checked at every run, and count every row of their
//! period.

mod common;

use common::*;
use lectern_store::{NewDevice, Violation};
use serde_json::{json, Value};

struct School {
    ts: TestServer,
    admin: String,
    room_a: i64,
    room_b: i64,
}

async fn group(ts: &TestServer, admin: &str, name: &str, pattern: &str) -> i64 {
    let (s, g) = ts
        .post(admin, "/api/v1/groups", json!({"name": name, "kind": "computer", "priority": "medium", "members": [{"type": "hostname", "value": pattern}], "settings": {}}))
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

fn web(url: &str, user: &str, at: i64) -> lectern_proto::ActivityEvent {
    lectern_proto::ActivityEvent {
        kind: "web".into(),
        url: Some(url.into()),
        user: Some(user.into()),
        at,
        ..Default::default()
    }
}

fn violation(device: i64, user: &str, severity: u8, at: i64) -> Violation {
    Violation {
        id: 0,
        device_id: device,
        user: Some(user.into()),
        term: "term".into(),
        category: "test".into(),
        severity,
        matched: "term".into(),
        context: "term".into(),
        source: "url".into(),
        action: "log".into(),
        screenshots: 0,
        at,
        person_id: None,
        person: None,
        retrospective: false,
    }
}

/// Two rooms: A-PC1 (amy: 10,500 visits to example.org, one violation) and
/// B-PC1 (bea: 5 visits to secret.test, a severity-5 violation).
async fn school() -> School {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let room_a = group(&ts, &admin, "Room A", "A-*").await;
    let room_b = group(&ts, &admin, "Room B", "B-*").await;
    let st = ts.server().state.clone();
    let school = common::home_school(&st);
    let (token, _) = st
        .store
        .create_enrollment_token(school, "", 2, lectern_store::now_ms() + 60_000, "test")
        .unwrap();
    let enroll = |h: &str| {
        st.store
            .enroll_device(
                &token,
                &NewDevice {
                    hostname: h.into(),
                    os: "linux".into(),
                    agent_version: "test".into(),
                },
            )
            .unwrap()
            .unwrap()
            .0
            .id
    };
    let (a, b) = (enroll("A-PC1"), enroll("B-PC1"));
    let at = lectern_store::now_ms() - 60_000;
    let many: Vec<_> = (0..10_500)
        .map(|i| web("https://example.org/page", "amy", at + i))
        .collect();
    st.store.add_activity(school, a, None, &many).unwrap();
    let few: Vec<_> = (0..5)
        .map(|i| web("https://secret.test/", "bea", at + i))
        .collect();
    st.store.add_activity(school, b, None, &few).unwrap();
    st.store
        .add_violation(school, &violation(a, "amy", 3, at))
        .unwrap();
    st.store
        .add_violation(school, &violation(b, "bea", 5, at))
        .unwrap();
    School {
        ts,
        admin,
        room_a,
        room_b,
    }
}

async fn user(s: &School, name: &str, features: &[&str], groups: &[i64]) -> (String, i64) {
    let (st, v) =
        s.ts.post(
            &s.admin,
            "/api/v1/users",
            json!({"username": name, "password": "a good password", "role": "teacher"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let access: serde_json::Map<String, Value> = groups
        .iter()
        .map(|g| (g.to_string(), json!("view")))
        .collect();
    let (st, rule) = s
        .ts
        .post(
            &s.admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features, "group_access": access}),
        )
        .await;
    assert_eq!(st, 201, "{rule}");
    (
        s.ts.login_as(name, "a good password").await,
        rule["id"].as_i64().unwrap(),
    )
}

async fn create(s: &School, token: &str, kind: &str) -> (u16, Value) {
    s.ts.post(
        token,
        "/api/v1/reports",
        json!({"name": kind, "kind": kind, "days": 1, "schedule": "daily 00:05"}),
    )
    .await
}

/// Runs report `id` as `token`; the CSV text, or the status and error.
async fn run(s: &School, token: &str, id: i64) -> Result<String, (u16, Value)> {
    let (st, v) =
        s.ts.post(token, &format!("/api/v1/reports/{id}/run"), json!({}))
            .await;
    if st != 201 {
        return Err((st, v));
    }
    let file = v["file"].as_str().unwrap();
    let r =
        s.ts.client()
            .get(s.ts.url(&format!("/api/v1/reports/{id}/runs/{file}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    Ok(r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_cover_what_their_creator_may_see_at_run_time() {
    let s = school().await;
    // reports.manage alone does not make reports of activity and violations.
    let (rita, _) = user(&s, "rita", &["reports.manage"], &[s.room_a]).await;
    let (st, v) = create(&s, &rita, "activity_summary").await;
    assert_eq!(st, 403, "{v}");

    let (tina, rule) = user(
        &s,
        "tina",
        &["reports.manage", "activity.view"],
        &[s.room_a],
    )
    .await;
    let mut ids = std::collections::HashMap::new();
    for kind in [
        "activity_summary",
        "top_violating_users",
        "websites_by_group",
    ] {
        let (st, r) = create(&s, &tina, kind).await;
        assert_eq!(st, 201, "{r}");
        assert_eq!(r["created_by"], "tina");
        ids.insert(kind, r["id"].as_i64().unwrap());
    }
    // Room A only, and every one of the 10,500 visits counted.
    let csv = run(&s, &tina, ids["activity_summary"]).await.unwrap();
    assert_eq!(csv.trim(), "device,kind,events\nA-PC1,web,10500", "{csv}");
    let csv = run(&s, &tina, ids["top_violating_users"]).await.unwrap();
    assert!(csv.contains("amy,1,3") && !csv.contains("bea"), "{csv}");
    let csv = run(&s, &tina, ids["websites_by_group"]).await.unwrap();
    assert!(csv.contains("example.org,10500,amy"), "{csv}");
    assert!(!csv.contains("secret.test"), "{csv}");

    // An administrator sees and runs it, still with tina's scope; tina sees
    // only her own reports.
    let csv = run(&s, &s.admin, ids["activity_summary"]).await.unwrap();
    assert!(!csv.contains("B-PC1"), "{csv}");
    let (st, mine) = create(&s, &s.admin, "activity_summary").await;
    assert_eq!(st, 201);
    let admins = mine["id"].as_i64().unwrap();
    let csv = run(&s, &s.admin, admins).await.unwrap();
    assert!(csv.contains("A-PC1") && csv.contains("B-PC1"), "{csv}");
    let listed = s.ts.get(&tina, "/api/v1/reports").await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(run(&s, &tina, admins).await.unwrap_err().0, 404);

    // Rights are read at each run: moved to room B, then without activity.view.
    let put = |body: Value| {
        let c = s.ts.client();
        let url = s.ts.url(&format!("/api/v1/access-rules/{rule}"));
        let admin = s.admin.clone();
        async move {
            let r = c
                .put(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    put(json!({"principal": {"type": "user", "value": "tina"}, "features": ["reports.manage", "activity.view"], "group_access": {s.room_b.to_string(): "view"}})).await;
    let csv = run(&s, &s.admin, ids["activity_summary"]).await.unwrap();
    assert_eq!(csv.trim(), "device,kind,events\nB-PC1,web,5", "{csv}");
    // A scheduled run uses the same rights: room B now.
    let st = s.ts.server().state.clone();
    let id = ids["websites_by_group"];
    let before = s.ts.get(&tina, &format!("/api/v1/reports/{id}/runs")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // a new file name
    let now = lectern_store::now_ms();
    lectern_server::maintenance::run_due_reports(
        &st,
        common::home_school(&st),
        now,
        now + 8 * 86_400_000,
    )
    .await;
    let runs = s.ts.get(&tina, &format!("/api/v1/reports/{id}/runs")).await;
    assert_eq!(
        runs.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1,
        "{runs}"
    );
    let file = runs[0]["file"].as_str().unwrap();
    let csv =
        s.ts.client()
            .get(s.ts.url(&format!("/api/v1/reports/{id}/runs/{file}")))
            .bearer_auth(&tina)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(csv.contains("secret.test,5,bea"), "{csv}");
    assert!(!csv.contains("example.org"), "{csv}");
    put(json!({"principal": {"type": "user", "value": "tina"}, "features": ["reports.manage"], "group_access": {s.room_b.to_string(): "view"}})).await;
    let (st, e) = run(&s, &s.admin, ids["activity_summary"])
        .await
        .unwrap_err();
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["reason"], "report_creator_lacks_right", "{e}");
    assert_eq!(e["feature"], "activity.view", "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("can no longer read activity logs or violations"),
        "{e}"
    );
}

/// A misspelt field or an unknown kind is refused with its name.
#[tokio::test]
async fn report_typos_are_refused_by_name() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, e) = ts
        .post(
            &admin,
            "/api/v1/reports",
            json!({"name": "x", "kind": "activity_sumary", "days": 1, "schedule": "daily 00:05"}),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("activity_sumary"),
        "{e}"
    );
    let (s, e) = ts
        .post(&admin, "/api/v1/reports", json!({"name": "x", "kind": "activity_summary", "days": 1, "schedule": "daily 00:05", "group": 3}))
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("`group`"), "{e}");
}
