//! Online safety end to end with real agents: keyword violations from
//! activity (with evidence screenshots, live alerts and the lock action), the
//! keyword library API, logs with CSV export, reports, retention, and the
//! backup/restore and `keywords scan` commands.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lectern_agent::Desktop;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SERVER: &str = env!("CARGO_BIN_EXE_lectern-server");

async fn violations(ts: &TestServer, token: &str, query: &str) -> Vec<Value> {
    ts.get(token, &format!("/api/v1/violations?{query}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn put(ts: &TestServer, token: &str, path: &str, ctype: &str, body: String) -> (u16, String) {
    let r = ts
        .client()
        .put(ts.url(path))
        .bearer_auth(token)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_raw(ts: &TestServer, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_matches_become_violations_with_evidence_alerts_and_locks() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let amy = start_agent(&ts, &enroll, "SAFE-PC01", Some("amy")).await;
    let mut console = console_stream(&ts, &token).await;

    // A school term of its own, imported as CSV; a bad row names its line.
    let (s, body) = put(
        &ts,
        &token,
        "/api/v1/keywords/csv",
        "text/csv",
        "term,category,severity,match,exceptions\nvolcano,test,3,whole_word,volcano club\nbad,test,9,whole_word,\n".into(),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("line 3"), "{body}");
    let mut csv = String::from_utf8(get_raw(&ts, &token, "/api/v1/keywords/csv").await.2).unwrap();
    csv.push_str("volcano,test,3,whole_word,volcano club\nlava lamp,test,5,phrase,\n");
    let (s, body) = put(&ts, &token, "/api/v1/keywords/csv", "text/csv", csv).await;
    assert_eq!(s, 200, "{body}");
    let lib = ts.get(&token, "/api/v1/keywords").await;
    assert!(lib["terms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["term"] == "volcano"));

    // An evasive spelling in a visited page: a violation with context.
    ts.command(
        &token,
        &[amy.id()],
        json!({"type": "launch_url", "url": "https://example.org/VOLCAN0-facts"}),
    )
    .await;
    let v = wait_for(|| async {
        violations(&ts, &token, "category=test")
            .await
            .into_iter()
            .find(|v| v["term"] == "volcano" && v["screenshots"].as_u64() > Some(0))
    })
    .await;
    assert_eq!(v["severity"], 3);
    assert_eq!(v["user"], "amy");
    assert_eq!(v["hostname"], "SAFE-PC01");
    assert_eq!(v["action"], "alert");
    assert!(v["context"].as_str().unwrap().contains("VOLCAN0"), "{v}");
    // Its screenshots are real JPEGs.
    let (s, ctype, jpeg) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/violations/{}/screenshots/0", v["id"]),
    )
    .await;
    assert_eq!((s, ctype.as_str()), (200, "image/jpeg"));
    jpeg_decoder::Decoder::new(&jpeg[..])
        .decode()
        .expect("a decodable JPEG");
    let (s, _, _) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/violations/{}/screenshots/99", v["id"]),
    )
    .await;
    assert_eq!(s, 404);

    // Consoles watching get a live alert.
    let alert = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = console.next().await {
            if let Message::Text(t) = m {
                let e: Value = serde_json::from_str(&t).unwrap();
                if e["type"] == "violation" {
                    return e;
                }
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("a live alert");
    assert_eq!(alert["violation"]["term"], "volcano");

    // The exception phrase does not trigger.
    ts.command(
        &token,
        &[amy.id()],
        json!({"type": "launch_url", "url": "https://example.org/volcano-club"}),
    )
    .await;
    // Severity 5 locks the device.
    ts.command(
        &token,
        &[amy.id()],
        json!({"type": "launch_url", "url": "https://shop.example/lava-lamp"}),
    )
    .await;
    wait_for(|| async { amy.desktop.lock().unwrap().state().locked.then_some(()) }).await;
    let v5 = violations(&ts, &token, "min_severity=5").await;
    assert_eq!(v5.len(), 1);
    assert_eq!(v5[0]["action"], "lock");
    let audit = ts.get(&token, "/api/v1/audit").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"] == "online-safety policy"));
    let club: Vec<_> = violations(&ts, &token, "q=club").await;
    assert!(club.is_empty(), "exception honoured: {club:?}");

    // CSV export of violations and activity.
    let (s, ctype, body) = get_raw(&ts, &token, "/api/v1/violations?format=csv").await;
    assert_eq!(s, 200);
    assert!(ctype.starts_with("text/csv"));
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("time,device,user,category,severity,term"),
        "{body}"
    );
    assert!(body.contains("volcano") && body.contains("SAFE-PC01"));
    let (_, _, body) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/activity?device={}&kind=web&format=csv", amy.id()),
    )
    .await;
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("https://shop.example/lava-lamp"));
    let (s, _, _) = get_raw(&ts, &token, "/api/v1/violations?format=xml").await;
    assert_eq!(s, 400);

    // A report run writes a CSV naming the user.
    let (s, r) = ts
        .post(&token, "/api/v1/reports", json!({"name": "Daily top", "kind": "top_violating_users", "days": 1, "schedule": "daily 00:05"}))
        .await;
    assert_eq!(s, 201, "{r}");
    assert!(r["next_run"].as_i64().unwrap() > 0);
    let (s, bad) = ts
        .post(
            &token,
            "/api/v1/reports",
            json!({"name": "x", "kind": "top_violating_users", "days": 1, "schedule": "hourly"}),
        )
        .await;
    assert_eq!(s, 400, "{bad}");
    let (s, run) = ts
        .post(
            &token,
            &format!("/api/v1/reports/{}/run", r["id"]),
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{run}");
    let runs = ts
        .get(&token, &format!("/api/v1/reports/{}/runs", r["id"]))
        .await;
    let file = runs[0]["file"].as_str().unwrap().to_string();
    let (s, _, csv) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/reports/{}/runs/{file}", r["id"]),
    )
    .await;
    assert_eq!(s, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.lines().nth(1).unwrap().starts_with("amy,2,5"), "{csv}");
    let (s, _, _) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/reports/{}/runs/..%2Fserver.toml", r["id"]),
    )
    .await;
    assert_eq!(s, 404, "only run files are served");

    // Retention: with everything older than the cutoff, rows and evidence go.
    let st = ts.server().state.clone();
    let evidence = st.data_dir.join("evidence").join(v["id"].to_string());
    assert!(evidence.exists());
    lectern_server::maintenance::retention(&st, lectern_store::now_ms() + 400 * 86_400_000).await;
    assert!(violations(&ts, &token, "").await.is_empty());
    assert!(!evidence.exists(), "screenshots removed with their rows");
    let act = ts.get(&token, "/api/v1/activity").await;
    assert!(act.as_array().unwrap().is_empty());
}

#[test]
fn keywords_scan_prints_one_json_object_per_match() {
    let mut child = Command::new(SERVER)
        .args(["keywords", "scan"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("our class went to Scunthorpe\nI want to k i l l myself\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "the self-harm phrase is found");
    assert!(
        lines.iter().all(|m| m["line"] == 2),
        "nothing on the innocent line: {lines:?}"
    );
    let m = &lines[0];
    for key in ["term", "category", "severity", "matched", "start", "end"] {
        assert!(!m[key].is_null(), "{key} in {m}");
    }
    let text = "I want to k i l l myself";
    let (s, e) = (
        m["start"].as_u64().unwrap() as usize,
        m["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[s..e], m["matched"].as_str().unwrap());

    // A bad library is a clear error.
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("bad.csv");
    std::fs::write(
        &lib,
        "term,category,severity,match,exceptions\nx,y,7,whole_word,\n",
    )
    .unwrap();
    let out = Command::new(SERVER)
        .args(["keywords", "scan", "--library"])
        .arg(&lib)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

/// Backups made in the same second (the server's own at start-up, several
/// `lectern-server backup` runs) all succeed under distinct names, and every
/// backup file, `--out` included, is readable by its owner only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_in_one_second_get_distinct_names_and_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let ts = TestServer::start().await;
    let data = ts.data_dir();
    let mut files = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let out = Command::new(SERVER)
            .args(["backup", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.insert(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    // The same in-process, surely within one second.
    let dir = data.join("backups");
    for _ in 0..3 {
        let p = lectern_server::maintenance::new_backup_file(&dir, "lectern").unwrap();
        lectern_server::maintenance::write_backup(&*ts.server().state.store, &p).unwrap();
        files.insert(p.display().to_string());
    }
    assert_eq!(files.len(), 7, "{files:?}");
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
        lectern_store::verify_database(std::path::Path::new(f)).unwrap();
    }
    let out_file = data.join("snapshot.db");
    let out = Command::new(SERVER)
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o600,
        "--out is private"
    );
    lectern_store::verify_database(&out_file).unwrap();
    let again = Command::new(SERVER)
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_round_trip() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let data = ts.data_dir();
    let (s, g) = ts
        .post(&token, "/api/v1/groups", json!({"name": "Year 9", "kind": "computer", "priority": "medium", "members": [{"type": "hostname", "value": "Y9-*"}], "settings": {}}))
        .await;
    assert_eq!(s, 201, "{g}");
    // A snapshot while the server runs.
    let out = Command::new(SERVER)
        .args(["backup", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(file.starts_with(data.join("backups")));
    // Change something after the backup.
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/groups/{}", g["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Restoring while the server listens is refused.
    let mut ts = ts;
    let listen = ts.addr;
    let cfg_path = data.join("server.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = cfg
        .lines()
        .map(|l| {
            if l.starts_with("listen") {
                format!("listen = \"{listen}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = Command::new(SERVER)
        .arg("restore")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the server"));
    // A file that is not a backup is refused.
    let junk = data.join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let out = Command::new(SERVER)
        .arg("restore")
        .arg(&junk)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable backup"));

    ts.server.take().unwrap().stop().await;
    let out = Command::new(SERVER)
        .arg("restore")
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aside = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("pre-restore-"));
    assert!(aside, "the replaced database is kept");
    ts.server = Some(
        lectern_server::Server::start(&data, Some(listen))
            .await
            .unwrap(),
    );
    let token = ts.login().await;
    let groups = ts.get(&token, "/api/v1/groups").await;
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "Year 9"),
        "the deleted group is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_scans_itself_reports_once_with_the_evidence_of_the_moment() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let (s, body) = put(
        &ts,
        &token,
        "/api/v1/keywords/csv",
        "text/csv",
        "term,category,severity,match,exceptions\nvolcano,test,2,whole_word,\n".into(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let enroll = ts.enrollment_token(&token, 1).await;
    SCAN_NEXT.with(|f| f.set(true));
    let amy = start_agent(&ts, &enroll, "SCAN-PC01", Some("amy")).await;
    let dev = ts
        .get(&token, &format!("/api/v1/devices/{}", amy.id()))
        .await;
    assert!(
        dev["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "keyword_scan"),
        "{dev}"
    );
    // A search typed in the browser, found on the device with the school's library.
    ts.command(
        &token,
        &[amy.id()],
        json!({"type": "launch_url", "url": "https://search.example/?q=v+o+l+c+a+n+o"}),
    )
    .await;
    let v = wait_for(|| async {
        violations(&ts, &token, "category=test")
            .await
            .into_iter()
            .find(|v| v["screenshots"].as_u64() > Some(0))
    })
    .await;
    assert_eq!(v["source"], "search", "{v}");
    assert_eq!(v["action"], "screenshot");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        violations(&ts, &token, "category=test").await.len(),
        1,
        "the server does not scan it again"
    );
    let (s, _, jpeg) = get_raw(
        &ts,
        &token,
        &format!("/api/v1/violations/{}/screenshots/0", v["id"]),
    )
    .await;
    assert_eq!(s, 200);
    jpeg_decoder::Decoder::new(&jpeg[..]).decode().unwrap();
}
