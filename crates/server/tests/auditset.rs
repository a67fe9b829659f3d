//! Issue 14, `auditset`: the audit log's filters and CSV export, per-school
//! settings (validation, provenance, taking effect without a restart) and
//! backups (administrators only, names never paths).

mod common;

use std::time::Instant;

use common::{teacher_with_access, wait_for, TestServer, PASSWORD};
use serde_json::{json, Value};

async fn get_raw(ts: &TestServer, token: &str, path: &str) -> reqwest::Response {
    ts.client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn bad_login(ts: &TestServer, user: &str) {
    let r = ts
        .client()
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": user, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

fn setting<'a>(page: &'a Value, key: &str) -> &'a Value {
    page["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key}: {page}"))
}

#[tokio::test]
async fn audit_log_filters_page_and_export_safe_csv() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // A name a spreadsheet would run as a formula, and a refusal.
    bad_login(&ts, "=HYPERLINK(\"x\")").await;
    bad_login(&ts, "ghost").await;
    let nobody = teacher_with_access(&ts, &admin, "nobody", &[], &[], false).await;
    assert_eq!(get_raw(&ts, &nobody, "/api/v1/audit").await.status(), 403);

    let list = |q: &'static str| {
        let (ts, admin) = (&ts, &admin);
        async move { ts.get(admin, &format!("/api/v1/audit?{q}")).await }
    };
    // (A failed sign-in is audited off the answer's path.)
    let ghost = wait_for(|| async {
        let ghost = list("user=GHOST").await;
        (ghost.as_array().unwrap().len() == 1).then_some(ghost)
    })
    .await;
    assert_eq!(ghost[0]["outcome"], "bad_credentials");
    let denied = list("outcome=denied").await;
    let denied = denied.as_array().unwrap();
    assert!(
        denied.len() >= 3,
        "two bad logins and a refusal: {denied:?}"
    );
    assert!(denied
        .iter()
        .all(|e| ["bad_credentials", "denied", "rate_limited"]
            .contains(&e["outcome"].as_str().unwrap())));
    let ok = list("outcome=ok&action=login").await;
    assert!(ok
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "ok" && e["action"] == "login"));
    assert!(!ok.as_array().unwrap().is_empty());
    assert!(list("since=4102444800000")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // Paging: one at a time, each page older than the last.
    let first = list("limit=1").await;
    let id = first[0]["id"].as_i64().unwrap();
    let next = ts
        .get(&admin, &format!("/api/v1/audit?limit=1&before={id}"))
        .await;
    assert!(next[0]["id"].as_i64().unwrap() < id);

    // Bad filters: a clear 400 naming what is wrong.
    for (q, says) in [
        ("outcome=maybe", "outcome must be one of ok, denied, failed"),
        ("usr=ann", "usr"),
        ("device=abc", "device"),
        ("since=10&until=5", "since must be before until"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("format=csv&limit=5", "leave out limit"),
    ] {
        let r = get_raw(&ts, &admin, &format!("/api/v1/audit?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(says), "{q}: {v}");
    }

    // The CSV export holds the filtered set, formula cells neutralised.
    let r = get_raw(&ts, &admin, "/api/v1/audit?format=csv&outcome=denied").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "time", "user", "address", "action", "detail", "devices", "command", "outcome"]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), denied.len());
    assert!(rows.iter().any(|r| &r[2] == "'=HYPERLINK(\"x\")"), "{text}");
    assert!(rows.iter().all(|r| !r[2].starts_with('=')));
    // A reader who is not an administrator exports only what they may read
    // (here: their own actions; there are no devices).
    let reader = teacher_with_access(&ts, &admin, "reader", &["audit.view"], &[], false).await;
    let r = get_raw(&ts, &reader, "/api/v1/audit?format=csv").await;
    let text = r.text().await.unwrap();
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let users: Vec<String> = csv.records().map(|r| r.unwrap()[2].to_string()).collect();
    assert!(
        !users.is_empty() && users.iter().all(|u| u == "reader"),
        "{users:?}"
    );
    // Teachers without audit.view cannot export either.
    let r = get_raw(&ts, &nobody, "/api/v1/audit?format=csv").await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_large_csv_export_streams_every_matching_entry() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    // More than one store page (1000 rows) of matching entries.
    let st = ts.server().state.clone();
    for i in 0..1205 {
        st.audit(st.audit_entry(
            common::home_school(&st),
            "bulk",
            None,
            &format!("bulk.{i}"),
            "ok",
        ))
        .await;
    }
    let r = get_raw(&ts, &admin, "/api/v1/audit?format=csv&user=bulk").await;
    let text = r.text().await.unwrap();
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let ids: Vec<i64> = csv
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 1205);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
}

#[tokio::test]
async fn settings_are_validated_show_provenance_and_apply_without_restart() {
    let ts = TestServer::start_with_config(|c| {
        c["audit_days"] = toml::Value::Integer(20);
        c["backup_time"] = toml::Value::String(String::new());
    })
    .await;
    let admin = ts.login().await;
    let st = ts.server().state.clone();
    let page = ts.get(&admin, "/api/v1/school/settings").await;
    assert_eq!(setting(&page, "audit_days")["source"], "server_toml");
    assert_eq!(setting(&page, "audit_days")["value"], 20);
    assert_eq!(setting(&page, "activity_days")["source"], "default");
    assert_eq!(setting(&page, "thumbnail_width")["value"], 320);

    // Bad values: every bad field named, nothing saved.
    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"values": {"thumbnail_width": 5, "backup_time": "25:00",
                          "keyword_actions": ["log", "nuke", "log", "log", "log"],
                          "colour": "red", "activity_days": 7}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Thumbnail width (pixels) must be a whole number from 80 to 1920"),
        "{v}"
    );
    let fields = v["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 4, "{v}");
    assert!(fields["thumbnail_width"]
        .as_str()
        .unwrap()
        .contains("from 80 to 1920"));
    assert!(fields["backup_time"].as_str().unwrap().contains("00:05"));
    assert!(fields["keyword_actions"]
        .as_str()
        .unwrap()
        .contains("five actions"));
    assert!(fields["colour"].as_str().unwrap().contains("not a setting"));
    let page = ts.get(&admin, "/api/v1/school/settings").await;
    assert_eq!(setting(&page, "activity_days")["source"], "default");
    let (s, _) = ts
        .put(&admin, "/api/v1/school/settings", json!({"values": 5}))
        .await;
    assert_eq!(s, 400);

    // Before: three free failures per name and address.
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let now = Instant::now();
    st.limiter
        .of(common::home_school(&st))
        .failed_at("pat", ip, now);
    assert_eq!(
        st.limiter
            .of(common::home_school(&st))
            .check_at("pat", ip, now),
        None
    );
    assert_eq!(
        lectern_server::keywords::action_for(&st, common::home_school(&st), 1),
        "log"
    );

    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"values": {"thumbnail_width": 200, "thumbnail_interval_ms": 2000,
                          "keyword_actions": ["lock", "log", "alert", "alert", "lock"],
                          "login_free_attempts": 1, "activity_days": 7,
                          "backup_time": "00:00", "backup_keep": 2}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let a = setting(&v, "activity_days");
    assert_eq!(
        (a["value"].as_i64(), a["source"].as_str()),
        (Some(7), Some("school"))
    );
    assert_eq!(a["set_by"], "admin");
    assert!(a["set_at"].as_i64().unwrap() > 0);
    assert_eq!(a["server_value"], 90);

    // In force at once: thumbnails asked of devices, severity actions, login
    // limits, retention and the backup schedule.
    assert_eq!(st.hub.thumbnails(common::home_school(&st)), (200, 2000));
    assert_eq!(
        lectern_server::keywords::action_for(&st, common::home_school(&st), 1),
        "lock"
    );
    let later = now + std::time::Duration::from_millis(1);
    st.limiter
        .of(common::home_school(&st))
        .failed_at("sam", ip, later);
    assert_eq!(
        st.limiter
            .of(common::home_school(&st))
            .check_at("sam", ip, later),
        Some(1)
    );
    assert_eq!(
        st.settings.get(&st, common::home_school(&st)).activity_days,
        7
    );
    // Three old backups (written two days ago): tonight's is due at the
    // school's 00:00, and only the school's 2 newest are kept.
    let backups = st.data_dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for n in 1..=3 {
        let old = backups.join(format!("lectern-2000010{n}-000000-000.db"));
        let f = std::fs::File::create(&old).unwrap();
        f.set_modified(two_days_ago).unwrap();
    }
    let names = || {
        lectern_server::maintenance::backups(&backups)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    lectern_server::maintenance::nightly_backup(&st, lectern_store::now_ms())
        .await
        .unwrap();
    // (The server's own minute loop may write it instead; either way, the
    // same two remain.)
    common::wait_for(|| async {
        let n = names();
        (n.len() == 2 && n[0] == "lectern-20000103-000000-000.db").then_some(())
    })
    .await;
    assert!(!names()[1].starts_with("lectern-2000"), "{:?}", names());

    // Audited with each value before and after.
    let audit = ts.get(&admin, "/api/v1/audit?action=settings.change").await;
    let detail: Value = serde_json::from_str(audit[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        detail["thumbnail_width"],
        json!({"before": 320, "after": 200, "reset": false})
    );
    assert_eq!(detail["login_free_attempts"]["before"], 3);

    // Reset: back to the server's value, from server.toml or the default.
    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"reset": ["thumbnail_width", "keyword_actions"], "values": {"audit_days": 3}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(setting(&v, "thumbnail_width")["source"], "default");
    assert_eq!(setting(&v, "audit_days")["source"], "school");
    assert_eq!(st.hub.thumbnails(common::home_school(&st)), (320, 2000));
    assert_eq!(
        lectern_server::keywords::action_for(&st, common::home_school(&st), 1),
        "log"
    );
    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"reset": ["audit_days"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(setting(&v, "audit_days")["source"], "server_toml");
    assert_eq!(setting(&v, "audit_days")["value"], 20);

    // Kept across a restart.
    let mut ts = ts;
    ts.restart().await;
    let admin = ts.login().await;
    let page = ts.get(&admin, "/api/v1/school/settings").await;
    assert_eq!(setting(&page, "thumbnail_interval_ms")["value"], 2000);
    assert_eq!(
        ts.server()
            .state
            .hub
            .thumbnails(common::home_school(&ts.server().state)),
        (320, 2000)
    );

    // Only holders of settings.manage.
    let teacher = teacher_with_access(&ts, &admin, "teach", &["audit.view"], &[], false).await;
    let (s, v) = ts
        .put(
            &teacher,
            "/api/v1/school/settings",
            json!({"values": {"audit_days": 1}}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(v["feature"], "settings.manage");
}

#[tokio::test]
async fn backups_are_listed_and_downloaded_by_administrators_only() {
    // No nightly backup of its own: the test makes the one it lists.
    let ts = TestServer::start_with_config(|c| {
        c["backup_time"] = toml::Value::String(String::new());
    })
    .await;
    let admin = ts.login().await;
    let st = ts.server().state.clone();
    let path = lectern_server::maintenance::backup_now(&st, 5)
        .await
        .unwrap();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    // Something that is not a backup, next to them and above them.
    std::fs::write(st.data_dir.join("backups").join("notes.txt"), "x").unwrap();

    let list = ts.get(&admin, "/api/v1/backups").await;
    let files = list["backups"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{list}");
    assert_eq!(files[0]["name"], name);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(files[0]["size"], size);

    let r = get_raw(&ts, &admin, &format!("/api/v1/backups/{name}")).await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let audit = ts.get(&admin, "/api/v1/audit?action=backup.download").await;
    assert!(audit[0]["detail"].as_str().unwrap().contains(&name));

    // Hostile names: never a path, never a file outside the list.
    for bad in [
        "notes.txt",
        "..%2Flectern.db",
        "..%2F..%2Fserver.toml",
        "lectern-..db",
        "lectern-%2F..%2Flectern.db",
        "lectern.db",
        "lectern-1.db%00",
        "lectern-99999999-999999-999.db",
    ] {
        let r = get_raw(&ts, &admin, &format!("/api/v1/backups/{bad}")).await;
        assert_eq!(r.status(), 404, "{bad}");
    }

    // A teacher holding settings.manage is still no administrator.
    let teacher =
        teacher_with_access(&ts, &admin, "it.helper", &["settings.manage"], &[], false).await;
    for p in [
        "/api/v1/backups".to_string(),
        format!("/api/v1/backups/{name}"),
    ] {
        let r = get_raw(&ts, &teacher, &p).await;
        assert_eq!(r.status(), 403, "{p}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["reason"], "admin_only", "{v}");
    }
    assert_eq!(
        get_raw(&ts, &teacher, "/api/v1/school/settings")
            .await
            .status(),
        200
    );
    let denied = ts
        .get(&admin, "/api/v1/audit?user=it.helper&outcome=denied")
        .await;
    assert_eq!(denied.as_array().unwrap().len(), 2, "{denied}");
    let _ = PASSWORD;
}

/// The width of a JPEG.
fn jpeg_width(jpeg: &[u8]) -> u16 {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    dec.read_info().unwrap();
    dec.info().unwrap().width
}

/// The next thumbnail's width from a console stream.
async fn next_thumb_width<S>(ws: &mut S) -> u16
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    loop {
        if let tokio_tungstenite::tungstenite::Message::Binary(b) =
            ws.next().await.unwrap().unwrap()
        {
            if b[0] == 1 {
                return jpeg_width(&b[9..]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_thumbnail_width_reaches_a_streaming_agent_at_once() {
    use futures_util::SinkExt;
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let agent = common::start_agent(&ts, &enroll, "PC-T", Some("tia")).await;
    let mut ws = common::console_stream(&ts, &admin).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"watch": [agent.id()]}).to_string(),
    ))
    .await
    .unwrap();
    let deadline = std::time::Duration::from_secs(60);
    let first = tokio::time::timeout(deadline, next_thumb_width(&mut ws))
        .await
        .expect("a thumbnail");
    assert_eq!(first, 320);
    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"values": {"thumbnail_width": 160}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Frames already on their way may still be the old size; then the new.
    tokio::time::timeout(deadline, async {
        while next_thumb_width(&mut ws).await != 160 {}
    })
    .await
    .expect("thumbnails at the school's new width without a restart");
    agent.stop().await;
}

#[tokio::test]
async fn shorter_retention_applies_at_once_and_only_to_older_rows() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let st = ts.server().state.clone();
    let school = common::home_school(&st);
    let day = 86_400_000;
    let now = lectern_store::now_ms();
    let event = |at: i64| lectern_proto::ActivityEvent {
        url: Some("https://example.org/".into()),
        at,
        ..Default::default()
    };
    st.store
        .add_activity(
            school,
            1,
            None,
            &[event(now - 3 * day), event(now - 3_600_000)],
        )
        .unwrap();
    let count = || {
        let filter = lectern_store::ActivityFilter {
            limit: 100,
            ..Default::default()
        };
        st.store.activity(school, &filter).unwrap().len()
    };
    // The server's 90 days keep both; the school's 2 days keep only the newer.
    lectern_server::maintenance::retention(&st, lectern_store::now_ms()).await;
    assert_eq!(count(), 2);
    let (s, v) = ts
        .put(
            &admin,
            "/api/v1/school/settings",
            json!({"values": {"activity_days": 2}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    common::wait_for(|| async { (count() == 1).then_some(()) }).await;
}
