//! A cluster's backups and retention: `PgStore::backup_to` writes the same
//! kind of file as a single server's backup (a SQLite database of the
//! store's schema), which the usual checks read; `export_school` keeps one
//! school's rows; `purge_before` ages rows out as on SQLite; the store
//! connects again after PostgreSQL restarts.

mod common;

use common::pg::Pg;
use lectern_store::{
    schools_in, verify_database, NewScreenshot, Retained, Role, SqliteStore, Store,
};

/// Rows of both schools, old (at 1) and new (at 5000), in the tables
/// retention ages out (an open hand per device, as the store allows).
fn rows(hill: i64, dale: i64) -> String {
    let mut sql = String::new();
    for (school, at) in [(hill, 1), (hill, 5000), (dale, 1), (dale, 5000)] {
        sql += &format!(
            "INSERT INTO violations (school_id, device_id, term, category, severity, matched,
                 context, source, action, at)
             VALUES ({school}, 1, 'fight', 'violence', 3, 'fight', 'a fight — ☃', 'typed', 'log', {at});
             INSERT INTO activity (school_id, device_id, \"user\", kind, url, at, received_at)
             VALUES ({school}, 1, 'amy', 'web', 'https://example.test/é', {at}, {at});
             INSERT INTO chat_messages (school_id, device_id, thread, author, from_teacher, text, at)
             VALUES ({school}, 1, 't', 'ms.khan', 1, 'hello', {at});
             INSERT INTO audit_log (school_id, at, actor, action, detail, outcome)
             VALUES ({school}, {at}, 'ms.khan', 'lock', '', 'ok');
             INSERT INTO help_requests (school_id, device_id, note, raised_at, closed_at)
             VALUES ({school}, 1, 'closed', {at}, {at});
             INSERT INTO help_requests (school_id, device_id, note, raised_at)
             VALUES ({school}, {at} + 100, 'still open', {at});"
        );
    }
    sql
}

/// Rows in each of the copy's tables.
fn counts(copy: &std::path::Path) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(copy).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = db
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

#[test]
fn a_cluster_backup_is_a_database_file_the_usual_tools_read() {
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    let hill = store.create_school("Hill").unwrap();
    let dale = store.create_school("Dåle ☃ 学校").unwrap();
    store
        .create_user(hill, "hill.admin", "hill-password-1", Role::Admin)
        .unwrap();
    store
        .create_user(dale, "dale.admin", "dale-password-1", Role::Admin)
        .unwrap();
    let jpeg: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let shot = store
        .add_screenshot(
            hill,
            &NewScreenshot {
                device_id: 1,
                taken_by: "ms.khan".into(),
                taken_at: 5,
                width: 2,
                height: 1,
                jpeg: jpeg.clone(),
            },
        )
        .unwrap();
    raw.batch_execute(&rows(hill, dale)).unwrap();

    // Retention: the old rows of one school go, the other school's stay,
    // open hands stay however old.
    let (n, ids) = store
        .purge_before(hill, Retained::Violations, 1000)
        .unwrap();
    assert_eq!((n, ids.len()), (1, 1));
    let left: i64 = raw
        .query_one("SELECT count(*) FROM violations WHERE id = $1", &[&ids[0]])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the ids returned are the rows deleted");
    for what in [Retained::Activity, Retained::Audit, Retained::Chat] {
        assert_eq!(store.purge_before(hill, what, 1000).unwrap(), (1, vec![]));
    }
    assert_eq!(
        store
            .purge_before(hill, Retained::HelpRequests, 10_000)
            .unwrap(),
        (2, vec![]),
        "both closed hands, not the open ones"
    );
    let open: i64 = raw
        .query_one(
            "SELECT count(*) FROM help_requests WHERE school_id = $1",
            &[&hill],
        )
        .unwrap()
        .get(0);
    assert_eq!(open, 2);
    let dale_violations: i64 = raw
        .query_one(
            "SELECT count(*) FROM violations WHERE school_id = $1",
            &[&dale],
        )
        .unwrap()
        .get(0);
    assert_eq!(dale_violations, 2, "the other school's rows stay");

    // The backup: every row, in a file that checks, lists and opens.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy).unwrap();
    assert_eq!(verify_database(&copy).unwrap(), "Hill");
    assert_eq!(schools_in(&copy).unwrap(), [hill, dale]);
    for (table, n) in counts(&copy) {
        let want: i64 = raw
            .query_one(format!("SELECT count(*) FROM \"{table}\"").as_str(), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, want, "rows of {table}");
    }
    assert!(
        !dir.path().join("backup.db-wal").exists(),
        "a plain file, as a single server's backup"
    );
    let opened = SqliteStore::open(&copy).unwrap();
    assert_eq!(opened.school(dale).unwrap().unwrap().name, "Dåle ☃ 学校");
    assert!(opened
        .verify_password(hill, "hill.admin", "hill-password-1")
        .unwrap()
        .is_some());
    let (_, bytes) = opened.screenshot(hill, 1, shot.id).unwrap().unwrap();
    assert_eq!(bytes, jpeg);
    // New rows in the copy take ids after the copied ones.
    let next = opened.create_school("Moor").unwrap();
    assert!(next > dale);
    drop(opened);

    // One school's export holds that school alone.
    let export = dir.path().join("hill.db");
    let made = store.export_school(hill, &export).unwrap();
    assert_eq!(schools_in(&export).unwrap(), [hill]);
    let kept: std::collections::HashMap<String, u64> = made.rows.into_iter().collect();
    assert_eq!(kept.get("violations"), Some(&1));
    assert_eq!(kept.get("users"), Some(&1));
    assert_eq!(kept.get("sessions"), None);

    // A destination that is something else is refused, and left alone.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(store.backup_to(&junk).is_err());
    assert_eq!(std::fs::read(&junk).unwrap(), b"not a database");

    // The store's own connection was not held by the backups.
    assert_eq!(store.schools().unwrap().len(), 2);

    // PostgreSQL restarts: the call that meets the broken connection may
    // fail; the next one connects again by itself.
    pg.restart();
    let _ = store.schools();
    assert_eq!(store.schools().unwrap().len(), 2);
}
