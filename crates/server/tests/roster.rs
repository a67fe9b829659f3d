//! Issue 14 point 4 (rosters): OneRoster 1.1 bundles imported from an
//! upload and from the drop folder; bad rows reported by line while the good
//! rows import; re-imports idempotent; removed classes retired; the rights
//! an import needs; a rostered teacher sees their class and starts a lesson.
//! Real server, real TLS on loopback, real SQLite.

mod common;

use std::io::Write;

use common::*;
use serde_json::{json, Value};

const SESSIONS: &str = "\
sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear
term1,active,2026-08-01T00:00:00Z,Autumn,term,2026-09-01,2026-12-20,,2027
term2,active,,Broken,term,2026-13-01,2026-12-20,,2027
";

const USERS: &str = "\
sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName
t1,,,true,org1,teacher,ms.khan,,Amina,Khan
t2,,,true,org1,teacher,mr.lee,,Tom,Lee
s1,,,true,org1,student,alice,,Alice,Ash
s2,,,true,org1,student,bob,,Bob,Birch
s3,,,true,org1,student,carol,,Carol,Cole
s1,,,true,org1,student,alice2,,Alice,Again
";

const CLASSES: &str = "\
sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds
c1,,,7A Science,,course1,,scheduled,,org1,term1
c2,,,8B History,,course1,,scheduled,,org1,term1
c3,,,Lost class,,course1,,scheduled,,org1,term2
";

const ENROLLMENTS: &str = "\
sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate
e1,,,c1,org1,t1,teacher,true,,
e2,,,c1,org1,s1,student,false,,
e3,,,c1,org1,s2,student,false,,
e4,,,c2,org1,t2,teacher,true,,
e5,,,c2,org1,s3,student,false,,
e6,,,c9,org1,s1,student,false,,
e7,,,c2,org1,s1,student,false,2026-09-01,2026-08-01
e8,,,c2,org1,zz,student,false,,
";

/// Every bad row of the bundle above: (file, line).
const BAD_ROWS: &[(&str, u64)] = &[
    ("academicSessions.csv", 3),
    ("users.csv", 7),
    ("classes.csv", 4),
    ("enrollments.csv", 7),
    ("enrollments.csv", 8),
    ("enrollments.csv", 9),
];

/// A deflated zip of `files` (as SIS exports are).
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in files {
        z.start_file(format!("export/{name}"), opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

fn bundle(classes: &str, enrollments: &str) -> Vec<u8> {
    zip_of(&[
        ("academicSessions.csv", SESSIONS),
        ("users.csv", USERS),
        ("classes.csv", classes),
        ("enrollments.csv", enrollments),
        (
            "manifest.csv",
            "propertyName,value\nmanifest.version,1.0\nfile.classes,bulk\n",
        ),
    ])
}

async fn upload(ts: &TestServer, token: &str, zip: Vec<u8>, dry_run: bool) -> (u16, Value) {
    let r = ts
        .client()
        .post(ts.url(&format!("/api/v1/roster/import?dry_run={dry_run}")))
        .bearer_auth(token)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn status_of(ts: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = ts
        .client()
        .get(ts.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn problems(report: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn expected_problems() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = BAD_ROWS.iter().map(|(f, l)| (f.to_string(), *l)).collect();
    v.sort();
    v
}

fn class<'a>(roster: &'a Value, id: &str) -> &'a Value {
    roster["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sourced_id"] == id)
        .unwrap_or_else(|| panic!("no class {id} in {roster}"))
}

fn roster_rules(rules: &Value) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<(String, Vec<i64>)> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["features"] == json!(["devices.view", "lessons.manage"]))
        .map(|r| {
            let groups = r["group_access"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            (
                r["principal"]["value"].as_str().unwrap().to_string(),
                groups,
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_reported_by_line_and_the_good_rows_import() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // A dry run reports everything and writes nothing.
    let (s, dry) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), true).await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(problems(&dry), expected_problems(), "{dry}");
    assert_eq!(dry["problems_total"], BAD_ROWS.len());
    assert_eq!(
        dry["classes"]["created"],
        json!(["7A Science", "8B History"])
    );
    let reasons: Vec<&str> = dry["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    for want in [
        "startDate \"2026-13-01\" is not a date",
        "duplicate sourcedId \"s1\" (first on line 4)",
        "unknown academic session \"term2\"",
        "unknown class \"c9\"",
        "endDate 2026-08-01 is before beginDate 2026-09-01",
        "unknown user \"zz\"",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want:?} not in {reasons:?}"
        );
    }
    let roster = ts.get(&admin, "/api/v1/roster").await;
    assert_eq!(roster["classes"], json!([]), "a dry run wrote classes");
    assert_eq!(roster["last_upload"]["dry_run"], true);
    assert_eq!(
        roster_rules(&ts.get(&admin, "/api/v1/access-rules").await),
        vec![]
    );

    // The import writes the good rows: two classes, their groups and rules.
    let (s, report) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(problems(&report), expected_problems());
    assert_eq!(report["files"]["enrollments.csv"]["imported"], 5);
    assert_eq!(report["files"]["enrollments.csv"]["bad"], 3);
    let roster = ts.get(&admin, "/api/v1/roster").await;
    let science = class(&roster, "c1");
    assert_eq!(science["teachers"], json!(["ms.khan"]));
    assert_eq!(science["students"], 2);
    let history = class(&roster, "c2");
    assert_eq!(history["teachers"], json!(["mr.lee"]));
    assert_eq!(history["students"], 1);
    let group = ts
        .get(&admin, &format!("/api/v1/groups/{}", science["group_id"]))
        .await;
    assert_eq!(group["name"], "7A Science");
    assert_eq!(group["kind"], "user");
    assert_eq!(
        group["members"],
        json!([{"type": "user", "value": "alice"}, {"type": "user", "value": "bob"}])
    );
    let (g1, g2) = (
        science["group_id"].as_i64().unwrap(),
        history["group_id"].as_i64().unwrap(),
    );
    assert_eq!(
        roster_rules(&ts.get(&admin, "/api/v1/access-rules").await),
        vec![("mr.lee".into(), vec![g2]), ("ms.khan".into(), vec![g1])]
    );
    let audit = ts.get(&admin, "/api/v1/audit?limit=200").await.to_string();
    assert!(audit.contains("roster.import"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reimport_is_idempotent_and_removed_classes_are_retired() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, _) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200);
    let first = ts.get(&admin, "/api/v1/roster").await;
    let rules = ts.get(&admin, "/api/v1/access-rules").await;
    let groups = ts.get(&admin, "/api/v1/groups").await;

    let (s, again) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["classes"]["unchanged"], 2);
    assert_eq!(again["classes"]["created"], json!([]));
    assert_eq!(
        ts.get(&admin, "/api/v1/roster").await["classes"],
        first["classes"]
    );
    assert_eq!(ts.get(&admin, "/api/v1/access-rules").await, rules);
    assert_eq!(ts.get(&admin, "/api/v1/groups").await, groups);

    // 8B History leaves the roster: retired, its group kept, mr.lee's grant gone.
    let only_science = "\
sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds
c1,,,7A Science,,course1,,scheduled,,org1,term1
";
    let enrol = "\
sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate
e1,,,c1,org1,t1,teacher,true,,
e2,,,c1,org1,s1,student,false,,
e3,,,c1,org1,s2,student,false,,
e9,,,c1,org1,s3,student,false,,
";
    let (s, dry) = upload(&ts, &admin, bundle(only_science, enrol), true).await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["classes"]["retired"], json!(["8B History"]));
    assert_eq!(dry["classes"]["updated"], json!(["7A Science"]));
    assert_eq!(dry["teachers"]["removed"], json!(["mr.lee"]));
    assert!(class(&ts.get(&admin, "/api/v1/roster").await, "c2")["retired_at"].is_null());
    let (s, report) = upload(&ts, &admin, bundle(only_science, enrol), false).await;
    assert_eq!(s, 200, "{report}");
    let roster = ts.get(&admin, "/api/v1/roster").await;
    let history = class(&roster, "c2");
    assert!(history["retired_at"].is_i64(), "{history}");
    assert_eq!(class(&roster, "c1")["students"], 3);
    let (s, _) = status_of(
        &ts,
        &admin,
        &format!("/api/v1/groups/{}", history["group_id"]),
    )
    .await;
    assert_eq!(s, 200, "a retired class's group is kept");
    let g1 = class(&roster, "c1")["group_id"].as_i64().unwrap();
    assert_eq!(
        roster_rules(&ts.get(&admin, "/api/v1/access-rules").await),
        vec![("ms.khan".into(), vec![g1])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_missing_a_file_or_column_is_refused_whole() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let no_enrollments = zip_of(&[
        ("academicSessions.csv", SESSIONS),
        ("users.csv", USERS),
        ("classes.csv", CLASSES),
    ]);
    let (s, v) = upload(&ts, &admin, no_enrollments, false).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("enrollments.csv"),
        "{v}"
    );
    let no_title = CLASSES.replacen("title,", "name,", 1);
    let (s, v) = upload(&ts, &admin, bundle(&no_title, ENROLLMENTS), false).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("classes.csv lacks the required columns title"),
        "{v}"
    );
    let (s, v) = upload(&ts, &admin, b"not a zip".to_vec(), false).await;
    assert_eq!(s, 400, "{v}");
    let delta = zip_of(&[
        ("academicSessions.csv", SESSIONS),
        ("users.csv", USERS),
        ("classes.csv", CLASSES),
        ("enrollments.csv", ENROLLMENTS),
        (
            "manifest.csv",
            "propertyName,value\nfile.enrollments,delta\n",
        ),
    ]);
    let (s, v) = upload(&ts, &admin, delta, false).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = upload(&ts, &admin, vec![0u8; 16 * 1024 * 1024 + 1], false).await;
    assert_eq!(s, 413, "{v}");
    let roster = ts.get(&admin, "/api/v1/roster").await;
    assert_eq!(roster["classes"], json!([]));
    assert_eq!(roster["last_upload"]["outcome"], "refused");
    // The server still serves.
    let (s, _) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200);
}

fn roster_table() -> toml::map::Map<String, toml::Value> {
    let mut t = toml::map::Map::new();
    t.insert("folder_interval_secs".into(), toml::Value::Integer(1));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_folder_is_imported_on_schedule() {
    let ts = TestServer::start_with_config(|c| {
        c.as_table_mut()
            .unwrap()
            .insert("roster".into(), toml::Value::Table(roster_table()));
    })
    .await;
    let admin = ts.login().await;
    let folder = ts.get(&admin, "/api/v1/roster").await["folder"]
        .as_str()
        .unwrap()
        .to_string();
    // Files appear whole (written aside, then renamed in), so every look at
    // the folder sees either nothing or the complete bundle.
    let dir = ts.data_dir().join(folder);
    let aside = ts.data_dir().join("roster-aside");
    std::fs::create_dir_all(&aside).unwrap();
    for (name, text) in [
        ("academicSessions.csv", SESSIONS),
        ("users.csv", USERS),
        ("classes.csv", CLASSES),
        ("enrollments.csv", ENROLLMENTS),
    ] {
        std::fs::write(aside.join(name), text).unwrap();
    }
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    // The import is recorded (then audited) after it is written: wait for both.
    let folder_imports = || async {
        let audit = ts.get(&admin, "/api/v1/audit?limit=500").await.to_string();
        audit.matches("folder import").count()
    };
    wait_for(|| async { (folder_imports().await == 1).then_some(()) }).await;
    let roster = ts.get(&admin, "/api/v1/roster").await;
    assert_eq!(roster["classes"].as_array().unwrap().len(), 2, "{roster}");
    let last = &roster["last_folder"];
    assert_eq!(last["actor"], "folder");
    assert_eq!(last["outcome"], "ok");
    assert_eq!(problems(&last["report"]), expected_problems());

    // Unchanged files are not imported again (a look at the folder, run here
    // rather than waited for).
    let state = ts.server().state.clone();
    lectern_server::api::roster::import_folder(&state, common::home_school(&state)).await;
    assert_eq!(
        ts.get(&admin, "/api/v1/roster").await["last_folder"]["id"],
        last["id"]
    );
    assert_eq!(folder_imports().await, 1);

    // A changed file is.
    let renamed = ts.data_dir().join("classes.csv.new");
    std::fs::write(&renamed, CLASSES.replace("8B History", "8B Modern History")).unwrap();
    std::fs::rename(&renamed, dir.join("classes.csv")).unwrap();
    wait_for(|| async { (folder_imports().await == 2).then_some(()) }).await;
    let changed = ts.get(&admin, "/api/v1/roster").await;
    assert_eq!(class(&changed, "c2")["title"], "8B Modern History");
    assert_ne!(changed["last_folder"]["id"], last["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_needs_roster_manage_and_grants_only_within_the_importers_rights() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let nobody = teacher_with_access(&ts, &admin, "nobody", &["devices.view"], &[], false).await;
    for path in ["/api/v1/roster"] {
        let (s, v) = status_of(&ts, &nobody, path).await;
        assert_eq!(s, 403);
        assert_eq!(v["reason"], "missing_right");
        assert_eq!(v["feature"], "roster.manage");
    }
    let (s, v) = upload(&ts, &nobody, bundle(CLASSES, ENROLLMENTS), true).await;
    assert_eq!((s, &v["feature"]), (403, &json!("roster.manage")));

    // roster.manage alone: a dry run, but no import that writes teachers' access.
    let clerk = teacher_with_access(&ts, &admin, "clerk", &["roster.manage"], &[], false).await;
    let (s, v) = upload(&ts, &clerk, bundle(CLASSES, ENROLLMENTS), true).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = upload(&ts, &clerk, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!((s, &v["feature"]), (403, &json!("access.manage")), "{v}");

    // access.manage without control of Entire Network: cannot make groups
    // nor give teachers control of them.
    let en = entire_network(&ts, &admin).await;
    let partial = teacher_with_access(
        &ts,
        &admin,
        "partial",
        &[
            "roster.manage",
            "access.manage",
            "devices.view",
            "lessons.manage",
        ],
        &[(en, "view")],
        false,
    )
    .await;
    let (s, v) = upload(&ts, &partial, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["reason"].is_string(), "{v}");
    assert_eq!(ts.get(&admin, "/api/v1/roster").await["classes"], json!([]));

    // With control of Entire Network and the features granted, it imports.
    let full = teacher_with_access(
        &ts,
        &admin,
        "full",
        &[
            "roster.manage",
            "access.manage",
            "devices.view",
            "lessons.manage",
        ],
        &[(en, "control")],
        false,
    )
    .await;
    let (s, v) = upload(&ts, &full, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200, "{v}");
    let audit = ts.get(&admin, "/api/v1/audit?limit=500").await.to_string();
    assert!(audit.contains("access.denied"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rostered_teacher_sees_only_their_classes_and_starts_a_lesson() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, _) = upload(&ts, &admin, bundle(CLASSES, ENROLLMENTS), false).await;
    assert_eq!(s, 200);
    let roster = ts.get(&admin, "/api/v1/roster").await;
    let (science, history) = (
        class(&roster, "c1")["group_id"].as_i64().unwrap(),
        class(&roster, "c2")["group_id"].as_i64().unwrap(),
    );
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/users",
            json!({"username": "ms.khan", "password": "khan-password", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let khan = ts.login_as("ms.khan", "khan-password").await;
    let tree = ts.get(&khan, "/api/v1/classes").await;
    let groups: Vec<(i64, bool)> = tree["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_i64().unwrap(), g["mine"].as_bool().unwrap()))
        .collect();
    assert_eq!(groups, vec![(science, true)], "{tree}");
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/lessons",
            json!({"group_id": science, "minutes": 30, "restrictions": {"screen_locked": true}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let tree = ts.get(&khan, "/api/v1/classes").await;
    assert_eq!(tree["lessons"][0]["group_id"], science, "{tree}");
    let (s, v) = ts
        .post(
            &khan,
            "/api/v1/lessons",
            json!({"group_id": history, "minutes": 30, "restrictions": {"screen_locked": true}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control_of_class");
    // The roster page is not hers.
    let (s, _) = status_of(&ts, &khan, "/api/v1/roster").await;
    assert_eq!(s, 403);
}
