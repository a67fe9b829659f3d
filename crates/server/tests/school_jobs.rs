//! Every school on a server (issue 16): each school's settings, groups and
//! keyword libraries are read at start and kept apart, and retention runs
//! for each school by its own settings, not only for the school the server
//! was set up with.

mod common;

use common::*;
use lectern_store::auditset::SettingRow;
use lectern_store::{now_ms, NewAudit, SchoolId, SqliteStore, Store};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

fn entry(school: SchoolId, action: &str) -> NewAudit {
    NewAudit {
        school_id: school,
        actor: "system".into(),
        address: None,
        action: action.into(),
        detail: String::new(),
        devices: Vec::new(),
        command_id: None,
        outcome: "ok".into(),
    }
}

fn actions(store: &SqliteStore, school: SchoolId) -> Vec<String> {
    store
        .audit_list(school, 500, None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_for_every_school_by_its_own_settings() {
    let mut ts = TestServer::start().await;
    let here = common::home_school(&ts.server().state);
    let store = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    // A second school keeping its audit log 5 days; the first keeps the
    // server's 30.
    let other = store.create_school("Other School").unwrap();
    store
        .auditset()
        .set_school_settings(
            other,
            &[SettingRow {
                key: "audit_days".into(),
                value: "5".into(),
                set_by: "root".into(),
                set_at: now_ms(),
            }],
        )
        .unwrap();
    for school in [here, other] {
        store.audit(&entry(school, "test.entry")).unwrap();
    }
    // Both schools' settings are read at start.
    ts.restart().await;
    let st = ts.server().state.clone();
    assert_eq!(st.settings.get(&st, other).audit_days, 5);
    assert_eq!(st.settings.get(&st, here).audit_days, 30);

    // Ten days on: past the second school's 5, within the first's 30.
    lectern_server::maintenance::retention(&st, now_ms() + 10 * DAY_MS).await;
    assert!(
        actions(&store, here).contains(&"test.entry".to_string()),
        "the first school keeps its entry"
    );
    assert!(
        !actions(&store, other).contains(&"test.entry".to_string()),
        "the second school's entry is past its own retention"
    );

    // Forty days on: past both.
    lectern_server::maintenance::retention(&st, now_ms() + 40 * DAY_MS).await;
    assert!(!actions(&store, here).contains(&"test.entry".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_school_has_its_own_groups_and_keyword_libraries() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let here = common::home_school(&ts.server().state);
    let lab = computer_group(&ts, &admin, "Lab", "LAB-*").await;
    let store = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let other = store.create_school("Other School").unwrap();
    ts.restart().await;
    let st = ts.server().state.clone();

    // Both schools' groups are loaded, each with its own Entire Network;
    // the first school's group is not the second's.
    assert!(st.policies.loaded(here) && st.policies.loaded(other));
    let (ours, theirs) = (st.policies.of(here), st.policies.of(other));
    assert!(ours.group(lab).is_some());
    assert!(theirs.group(lab).is_none());
    let (en_here, en_other) = (ours.entire_network(), theirs.entire_network());
    assert!(en_here.is_some() && en_other.is_some() && en_here != en_other);
    assert!(theirs.group(en_here.unwrap()).is_none());
    // A device of the first school resolves into its groups only there.
    assert!(ours.resolve(Some("LAB-01"), None).groups.contains(&lab));
    assert!(!theirs.resolve(Some("LAB-01"), None).groups.contains(&lab));

    // Each school has its own default keyword library, set up at start.
    let (kw_here, kw_other) = (st.keywords.catalog(here), st.keywords.catalog(other));
    assert_eq!(kw_here.libs.len(), 1);
    assert_eq!(kw_other.libs.len(), 1);
    assert!(kw_here
        .libs
        .keys()
        .all(|id| !kw_other.libs.contains_key(id)));
    // A reload of one school's groups leaves the other's as they were.
    st.reload_policies(other).await.unwrap();
    assert!(st.policies.of(here).group(lab).is_some());

    // A school the server has not read has nothing: no groups, no rights.
    let unknown = other + 100;
    assert!(!st.policies.loaded(unknown));
    assert!(st.policies.of(unknown).entire_network().is_none());
    assert!(!st
        .policies
        .of(unknown)
        .rights("admin", None, false)
        .allows("devices.view"));
}

/// What the server keeps in memory per school: login limits (two schools
/// may both have an `admin`: failures at one never slow the other down),
/// the thumbnails asked of each school's devices, and the anonymous
/// corridor screen, which is each school's own. Once the server hosts
/// several schools, the whole database is its operator's: each school's
/// Backups list holds its own nightly copies, of its own data alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_school_has_its_own_login_limits_thumbnails_screen_and_nightly_copies() {
    let ts = TestServer::start().await;
    let st = ts.server().state.clone();
    let here = common::home_school(&st);
    let vale = second_school(&ts, "Vale School", "admin", "vale-admin-password-1");
    let at_vale = sign_in_to(&ts, "admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();

    // Guessing Vale's admin password until refused for a while...
    let mut limited = false;
    for _ in 0..8 {
        if sign_in_to(&ts, "admin", "wrong-guess-123", Some(vale)).await == Err(429) {
            limited = true;
            break;
        }
    }
    assert!(limited, "the guesses at Vale were never slowed down");
    // ...leaves the first school's admin (same name, same address) alone.
    assert!(sign_in_to(&ts, "admin", PASSWORD, Some(here)).await.is_ok());

    // Vale's thumbnail size is asked only of Vale's devices.
    let (s, v) = ts
        .put(
            &at_vale,
            "/api/v1/school/settings",
            serde_json::json!({"values": {"thumbnail_width": 640}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(st.hub.thumbnails(vale).0, 640);
    assert_eq!(st.hub.thumbnails(here).0, 320);

    // Vale's corridor screen: on for Vale only; an unknown school reads as off.
    let (s, v) = ts
        .put(
            &at_vale,
            "/api/v1/availability/settings",
            serde_json::json!({"public": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let settings = ts.get(&at_vale, "/api/v1/availability/settings").await;
    assert_eq!(
        settings["screen"],
        format!("/availability/screen?school={vale}")
    );
    let public = |q: String| {
        let (client, url) = (
            ts.client(),
            ts.url(&format!("/api/v1/public/availability{q}")),
        );
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, body) = public(format!("?school={vale}")).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"school\":\"Vale School\""), "{body}");
    // A screen that names no school: on a server of several, which school
    // it means is for its address to say (there is no "first" school).
    let (s, body) = public(String::new()).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("\"reason\":\"school_required\""), "{body}");
    assert_eq!(public(format!("?school={here}")).await.0, 409);
    assert_eq!(public("?school=98765".into()).await.0, 409);

    // Each school's nightly copy, at its own time, in its own folder.
    let at_here = ts.login().await;
    for token in [&at_vale, &at_here] {
        let (s, v) = ts
            .put(
                token,
                "/api/v1/school/settings",
                serde_json::json!({"values": {"backup_time": "00:00"}}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    lectern_server::maintenance::nightly_backup(&st, now_ms())
        .await
        .unwrap();
    let names = |list: serde_json::Value| -> Vec<String> {
        assert_eq!(list["folder_holds"], "this school", "{list}");
        list["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    let vale_copies = names(ts.get(&at_vale, "/api/v1/backups").await);
    let here_copies = names(ts.get(&at_here, "/api/v1/backups").await);
    assert!(!vale_copies.is_empty() && !here_copies.is_empty());
    assert!(
        vale_copies
            .iter()
            .all(|n| n.starts_with(&format!("school-{vale}-"))),
        "{vale_copies:?}"
    );
    assert!(
        here_copies
            .iter()
            .all(|n| n.starts_with(&format!("school-{here}-"))),
        "{here_copies:?}"
    );
    // Vale's copy holds Vale alone; the other school cannot fetch it by
    // name (its folder has no such file).
    let get = |token: String, name: String| {
        let (client, url) = (ts.client(), ts.url(&format!("/api/v1/backups/{name}")));
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(
        get(at_here.clone(), vale_copies[0].clone()).await.status(),
        404
    );
    let r = get(at_vale.clone(), vale_copies[0].clone()).await;
    assert_eq!(r.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.db");
    std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
    let copy = SqliteStore::open(&file).unwrap();
    let schools: Vec<String> = copy
        .schools()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(schools, ["Vale School"]);
    // A copy being written (whole at first) is never listed, and none is
    // left behind.
    assert!(!lectern_server::maintenance::is_backup_name(
        "partial-school-2-20261204-000000-000.db"
    ));
    let folder = lectern_server::maintenance::school_backup_dir(&st, vale);
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // No whole-database backup reaches a school's list.
    assert!(!vale_copies
        .iter()
        .chain(&here_copies)
        .any(|n| n.starts_with("lectern-")));
}

/// `[devices.schools."<id>"]` in server.toml is that school's: a device of
/// the school that accepts reported names is renamed by what it reports,
/// while the first school keeps the defaults (a reported name waits for an
/// administrator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_schools_device_limits_apply_to_its_own_devices() {
    let ts = TestServer::start_with_config(|c| {
        let table: toml::Value =
            toml::from_str("[schools.2]\naccept_reported_names = true").unwrap();
        c["devices"] = table;
    })
    .await;
    let vale = second_school(&ts, "Vale School", "v.admin", "vale-admin-password-1");
    assert_eq!(vale, 2, "the override above names school 2");
    let at_vale = sign_in_to(&ts, "v.admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();
    let (s, code) = ts
        .post(&at_vale, "/api/v1/school/code", serde_json::json!({}))
        .await;
    assert_eq!(s, 200, "{code}");
    let cred = try_register(&ts, code["code"].as_str().unwrap(), "VALE-PC01")
        .await
        .unwrap();
    let agent = run_enrolled(cred, "VALE-PC99", None).await;
    let id = agent.id();
    wait_for(|| async {
        let d = ts.get(&at_vale, &format!("/api/v1/devices/{id}")).await;
        (d["hostname"] == "VALE-PC99").then_some(())
    })
    .await;
    agent.stop().await;

    // The first school: the defaults, so the enrolled name stays.
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let cred = enroll_as(&ts, &enroll, "HOME-PC01").await;
    let agent = run_enrolled(cred, "HOME-PC99", None).await;
    let id = agent.id();
    wait_for(|| async {
        let d = ts.get(&admin, &format!("/api/v1/devices/{id}")).await;
        (d["reported_name"] == "HOME-PC99").then_some(())
    })
    .await;
    let d = ts.get(&admin, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(d["hostname"], "HOME-PC01", "{d}");
    agent.stop().await;
}

/// Each school's administrator downloads their own school's data, and
/// nothing of the other's, on a server that keeps its whole backups for the
/// operator; the file is not left on the server; teachers may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_school_exports_its_own_data_and_none_of_the_others() {
    let ts = TestServer::start().await;
    let st = ts.server().state.clone();
    let here = common::home_school(&st);
    let vale = second_school(&ts, "Vale School", "admin", "vale-admin-password-1");
    let at_vale = sign_in_to(&ts, "admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();
    let at_here = ts.login().await;
    // A device at each school.
    for (token, host) in [(&at_here, "HILL-PC01"), (&at_vale, "VALE-PC01")] {
        let enroll = ts.enrollment_token(token, 1).await;
        enroll_as(&ts, &enroll, host).await;
    }
    // A teacher with the settings right (at the first school, where the
    // helper signs in).
    let teacher = teacher_with_access(
        &ts,
        &at_here,
        "hill.teacher",
        &["settings.manage"],
        &[],
        false,
    )
    .await;

    let download = |token: String| {
        let (client, url) = (ts.client(), ts.url("/api/v1/school/export"));
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            let disposition = r
                .headers()
                .get("content-disposition")
                .map(|v| v.to_str().unwrap().to_string());
            (status, disposition, r.bytes().await.unwrap().to_vec())
        }
    };
    let dir = tempfile::tempdir().unwrap();
    for (token, school, mine, theirs) in [
        (&at_vale, vale, "VALE-PC01", "HILL-PC01"),
        (&at_here, here, "HILL-PC01", "VALE-PC01"),
    ] {
        let (status, disposition, body) = download(token.clone()).await;
        assert_eq!(status, 200);
        assert!(disposition
            .unwrap()
            .contains(&format!("lectern-school-{school}-")));
        let file = dir.path().join(format!("{school}.db"));
        std::fs::write(&file, &body).unwrap();
        let has = |needle: &str| body.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!has(theirs), "{theirs} is in {mine}'s export");
        let db = SqliteStore::open(&file).unwrap();
        let schools: Vec<SchoolId> = db.schools().unwrap().iter().map(|s| s.id).collect();
        assert_eq!(schools, vec![school]);
        let hosts: Vec<String> = db
            .list_devices(school)
            .unwrap()
            .into_iter()
            .map(|d| d.hostname)
            .collect();
        assert_eq!(hosts, vec![mine.to_string()]);
    }
    assert!(
        !has_files(&st.data_dir.join("exports")),
        "exports are not kept"
    );

    // A teacher with the settings right is refused: only administrators.
    let (status, _, body) = download(teacher).await;
    assert_eq!(status, 403);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["reason"], "admin_only", "{v}");
    for token in [&at_vale, &at_here] {
        let audit = ts.get(token, "/api/v1/audit?limit=50").await.to_string();
        assert!(audit.contains("school.export"), "{audit}");
    }

    // The operator's command line does the same, into a private file.
    let cli = |school: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lectern-server"))
            .args(["backup", "--data-dir"])
            .arg(ts.data_dir())
            .args(["--school", school])
            .output()
            .unwrap()
    };
    let out = cli(&vale.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(file.starts_with(ts.data_dir().join("exports")), "{file:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        lectern_store::verify_database(&file).unwrap(),
        "Vale School"
    );
    let out = cli("98765");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no school 98765"));
}

fn has_files(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// A whole-database copy holding another school (written while the server
/// held several, and left in the server's folder after a restore brought
/// it back to one) is the operator's: a school's administrator neither
/// sees it listed nor downloads it by name. Copies of this school alone
/// are listed as before, and listing writes nothing next to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_copy_holding_other_schools_is_never_a_schools_backup() {
    let ts = TestServer::start().await;
    let st = ts.server().state.clone();
    let admin = ts.login().await;
    let own = lectern_server::maintenance::backup_now(&st, 10)
        .await
        .unwrap();
    // A copy of a server of two schools, in the same folder.
    let dir = lectern_server::maintenance::backup_dir(&st);
    let shared = lectern_server::maintenance::new_backup_file(&dir, "lectern").unwrap();
    std::fs::remove_file(&shared).unwrap();
    {
        let two = SqliteStore::open(&shared).unwrap();
        two.create_school("Test School").unwrap();
        two.create_school("Another School").unwrap();
    }
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();

    let listed = ts.get(&admin, "/api/v1/backups").await;
    let names: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    let name = |p: &std::path::Path| p.file_name().unwrap().to_str().unwrap().to_string();
    // (The nightly copy, due at start, is this school's alone too.)
    assert!(names.contains(&name(&own).as_str()), "{listed}");
    assert!(!names.contains(&name(&shared).as_str()), "{listed}");
    let fetch = |file: String| {
        let (client, url, token) = (
            ts.client(),
            ts.url(&format!("/api/v1/backups/{file}")),
            admin.clone(),
        );
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(fetch(name(&own)).await, 200);
    assert_eq!(fetch(name(&shared)).await, 404);
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "{before:?} {after:?}");
}

/// Points the data folder's `server.toml` at the address the test server
/// listens on, so that `restore` sees it in use.
fn config_listen_on(ts: &TestServer) {
    let path = ts.data_dir().join("server.toml");
    let cfg = std::fs::read_to_string(&path).unwrap();
    let cfg: Vec<String> = cfg
        .lines()
        .map(|l| {
            if l.starts_with("listen") {
                format!("listen = \"{}\"", ts.addr)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, cfg.join("\n")).unwrap();
}

fn cli(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lectern-server"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn group_names(ts: &TestServer, token: &str) -> Vec<String> {
    ts.get(token, "/api/v1/groups")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

/// One school of a shared server rolled back to its own copy: its groups
/// are the copy's again, the other school's changes since stay, and the
/// restore is in the school's audit log. A whole restore of the school's
/// copy (which would drop the other school) is refused unless asked for,
/// and neither runs while the server listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_school_is_restored_from_its_copy_and_the_other_keeps_its_changes() {
    let mut ts = TestServer::start().await;
    let vale = second_school(&ts, "Vale School", "admin", "vale-admin-password-1");
    let at_vale = sign_in_to(&ts, "admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();
    let at_hill = ts.login().await;
    let group = |name: &str| {
        json!({"name": name, "kind": "computer", "priority": "medium",
               "members": [{"type": "hostname", "value": "LAB-*"}], "settings": {}})
    };
    let (s, lab) = ts.post(&at_vale, "/api/v1/groups", group("Vale Lab")).await;
    assert_eq!(s, 201, "{lab}");
    let data = ts.data_dir();
    let d = data.as_os_str();
    let vale_id = vale.to_string();
    let (ok, out) = cli(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        d,
        "--school".as_ref(),
        vale_id.as_ref(),
    ]);
    assert!(ok, "{out}");
    let copy = std::path::PathBuf::from(out.lines().find(|l| l.starts_with('/')).unwrap().trim());

    // Since the copy: Vale loses its lab and gains a group, Hill gains one.
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/groups/{}", lab["id"])))
        .bearer_auth(&at_vale)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for (token, name) in [(&at_vale, "Vale Late"), (&at_hill, "Hill Late")] {
        let (s, g) = ts.post(token, "/api/v1/groups", group(name)).await;
        assert_eq!(s, 201, "{g}");
    }
    // A report of Vale's, run, so its folder holds a CSV.
    let (s, report) = ts
        .post(
            &at_vale,
            "/api/v1/reports",
            json!({"name": "Late", "kind": "activity_summary", "days": 1, "schedule": "daily 00:05"}),
        )
        .await;
    assert_eq!(s, 201, "{report}");
    let (s, run) = ts
        .post(
            &at_vale,
            &format!("/api/v1/reports/{}/run", report["id"]),
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{run}");
    let report_dir = data.join("reports").join(report["id"].to_string());
    assert!(report_dir.exists(), "{report_dir:?}");

    config_listen_on(&ts);
    let restore = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["restore".as_ref(), copy.as_os_str()];
        args.extend(["--data-dir".as_ref(), d]);
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        cli(&args)
    };
    let (ok, out) = restore(&["--school"]);
    assert!(!ok && out.contains("stop the server"), "{out}");

    let listen = ts.addr;
    ts.server.take().unwrap().stop().await;
    let (ok, out) = restore(&[]);
    assert!(!ok, "{out}");
    assert!(out.contains("does not hold school 1"), "{out}");
    assert!(out.contains("--school"), "{out}");
    let (ok, out) = restore(&["--school"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("restored school {vale} (Vale School)")),
        "{out}"
    );
    assert!(
        !report_dir.exists(),
        "the files of a report the copy does not have go, before another school's report takes its id"
    );

    ts.server = Some(
        lectern_server::Server::start(&data, Some(listen))
            .await
            .unwrap(),
    );
    let at_vale = sign_in_to(&ts, "admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();
    let at_hill = ts.login().await;
    let vale_groups = group_names(&ts, &at_vale).await;
    assert!(
        vale_groups.iter().any(|g| g == "Vale Lab"),
        "{vale_groups:?}"
    );
    assert!(
        !vale_groups.iter().any(|g| g == "Vale Late"),
        "{vale_groups:?}"
    );
    let hill_groups = group_names(&ts, &at_hill).await;
    assert!(
        hill_groups.iter().any(|g| g == "Hill Late"),
        "{hill_groups:?}"
    );
    let audit = ts.get(&at_vale, "/api/v1/audit?limit=50").await.to_string();
    assert!(audit.contains("school.restore"), "{audit}");
    let audit = ts.get(&at_hill, "/api/v1/audit?limit=50").await.to_string();
    assert!(!audit.contains("school.restore"), "{audit}");
}
