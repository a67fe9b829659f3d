//! Retrospective keyword scans (`RetroStore`) give the same answers on
//! SQLite and on PostgreSQL, from the same rows.

mod common;

use common::pg::Pg;
use lectern_store::retro::{NewRetroScan, RetroHit, RetroProgress, RetroState, RetroStore};
use lectern_store::{SqliteStore, StoreError, Violation};

/// Two schools; Amy Ng (alias amy.ng) in the first. School 1's activity:
/// rows 1 to 4 in the period 0..100 (2 of device 2), row 5 after it; row 6
/// is school 2's. A live violation of device 1's "knife" at 30.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO people (id, school_id, display_name, created_at) VALUES (1, 1, 'Amy Ng', 1);
    INSERT INTO person_aliases (school_id, person_id, kind, value) VALUES (1, 1, 'roster', 'amy.ng');
    INSERT INTO activity (id, school_id, device_id, \"user\", kind, url, title, app, at, received_at)
        VALUES (1, 1, 1, 'amy.ng', 'web', 'https://a.example/', 'A knife shop', NULL, 10, 11),
               (2, 1, 2, NULL, 'app', NULL, 'Notes', 'notes.exe', 20, 21),
               (3, 1, 1, 'amy.ng', 'web', 'https://b.example/', 'knife', NULL, 30, 31),
               (4, 1, 2, 'ben', 'login', NULL, NULL, NULL, 99, 99),
               (5, 1, 1, 'amy.ng', 'web', 'https://c.example/', 'later', NULL, 100, 101),
               (6, 2, 1, 'zed', 'web', 'https://d.example/', 'theirs', NULL, 10, 11);
    INSERT INTO violations (id, school_id, device_id, \"user\", term, category, severity, matched, context, source, action, at)
        VALUES (1, 1, 1, 'amy.ng', 'knife', 'weapons', 3, 'knife', 'knife', 'title', 'log', 30);
";

fn new_scan(since: i64, until: i64) -> NewRetroScan {
    NewRetroScan {
        library: "{\"terms\":[\"knife\"]}".into(),
        terms: 1,
        reason: "on_demand".into(),
        started_by: "hill.admin".into(),
        since,
        until,
        cpu_percent: 25,
    }
}

fn hit(activity_id: i64, device: i64, user: Option<&str>, at: i64) -> RetroHit {
    RetroHit {
        activity_id,
        violation: Violation {
            id: 0,
            device_id: device,
            user: user.map(str::to_string),
            term: "knife".into(),
            category: "weapons".into(),
            severity: 3,
            matched: "knife".into(),
            context: "A knife shop".into(),
            source: "title".into(),
            action: "log".into(),
            screenshots: 2,
            at,
            person_id: None,
            person: None,
            retrospective: false,
        },
    }
}

/// `count` answers a `SELECT count(*) …`; `sql` runs raw SQL.
fn check_retro(
    store: &dyn RetroStore,
    count: &mut dyn FnMut(&str) -> i64,
    sql: &mut dyn FnMut(&str),
) {
    assert!(store.retro_scans(1, 10).unwrap().is_empty());
    assert!(store.retro_unfinished().unwrap().is_empty());

    // Started queued, with the rows in its period counted.
    let one = store.retro_start(1, &new_scan(0, 100)).unwrap().unwrap();
    assert_eq!(
        (
            one.state,
            one.rows_total,
            one.rows_scanned,
            one.cursor,
            one.runner,
            one.hits,
            one.finished_at
        ),
        (RetroState::Queued, 4, 0, 0, 0, 0, None)
    );
    assert_eq!(
        (
            one.library.as_str(),
            one.terms,
            one.reason.as_str(),
            one.started_by.as_str(),
            one.since,
            one.until,
            one.cpu_percent,
            one.note.as_str()
        ),
        (
            "{\"terms\":[\"knife\"]}",
            1,
            "on_demand",
            "hill.admin",
            0,
            100,
            25,
            ""
        )
    );
    assert!(one.started_at > 0);
    // One active job per school; another school's does not count.
    assert!(store.retro_start(1, &new_scan(0, 50)).unwrap().is_none());
    let theirs = store.retro_start(2, &new_scan(0, 100)).unwrap().unwrap();
    assert_eq!(theirs.rows_total, 1);
    assert!(
        store.retro_start(9, &new_scan(0, 100)).unwrap().is_none(),
        "no such school"
    );
    assert_eq!(store.retro_scan(1, one.id).unwrap(), Some(one.clone()));
    assert_eq!(store.retro_scan(2, one.id).unwrap(), None);
    assert_eq!(
        store.retro_unfinished().unwrap(),
        [(1, one.clone()), (2, theirs.clone())]
    );

    // Begun by a runner; another school cannot.
    assert!(!store.retro_begin(2, one.id, 7).unwrap());
    assert!(store.retro_begin(1, one.id, 7).unwrap());
    let running = store.retro_scan(1, one.id).unwrap().unwrap();
    assert_eq!((running.state, running.runner), (RetroState::Running, 7));

    // Chunks by row id after the cursor, inside the period, the school's own.
    let chunk = store.retro_chunk(1, &running, 2).unwrap();
    let ids: Vec<i64> = chunk.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2]);
    let e = &chunk[0];
    assert_eq!(
        (
            e.device_id,
            e.event.user.as_deref(),
            e.event.kind.as_str(),
            e.event.url.as_deref(),
            e.event.title.as_deref(),
            e.event.app.as_deref(),
            e.event.at,
            e.event.blocked
        ),
        (
            1,
            Some("amy.ng"),
            "web",
            Some("https://a.example/"),
            Some("A knife shop"),
            None,
            10,
            false
        )
    );
    assert_eq!(
        (
            chunk[1].event.user.as_deref(),
            chunk[1].event.app.as_deref()
        ),
        (None, Some("notes.exe"))
    );
    let rest = store
        .retro_chunk(
            1,
            &lectern_store::retro::RetroScan {
                cursor: 2,
                ..running.clone()
            },
            10,
        )
        .unwrap();
    let ids: Vec<i64> = rest.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [3, 4],
        "row 5 is after the period, row 6 another school's"
    );

    // Only the runner's progress is recorded, and nothing of a chunk that
    // is not.
    let progress = RetroProgress {
        cursor: 2,
        rows: 2,
        pauses: 1,
        busy_ms: 40,
    };
    let hits = [
        hit(1, 1, Some("AMY.NG"), 10),
        // The same activity row and term again: skipped by the unique key.
        hit(1, 1, Some("amy.ng"), 10),
    ];
    assert!(store
        .retro_commit(1, one.id, 8, &progress, &hits)
        .unwrap()
        .is_none());
    assert!(store
        .retro_commit(2, one.id, 7, &progress, &hits)
        .unwrap()
        .is_none());
    assert_eq!(count("SELECT count(*) FROM violations"), 1);
    assert_eq!(store.retro_scan(1, one.id).unwrap().unwrap(), running);

    let added = store
        .retro_commit(1, one.id, 7, &progress, &hits)
        .unwrap()
        .unwrap();
    assert_eq!(added.len(), 1);
    let v = &added[0];
    assert!(v.id > 1);
    assert_eq!(
        (v.retrospective, v.screenshots, v.user.as_deref(), v.at),
        (true, 0, Some("AMY.NG"), 10)
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM violations WHERE id = {} AND school_id = 1 AND retrospective = 1
             AND activity_id = 1 AND person_id = 1 AND screenshots = 0",
            v.id
        )),
        1,
        "stored retrospective, for the person whose name it was (whatever its case)"
    );
    let after = store.retro_scan(1, one.id).unwrap().unwrap();
    assert_eq!(
        (
            after.cursor,
            after.rows_scanned,
            after.pauses,
            after.busy_ms,
            after.hits
        ),
        (2, 2, 1, 40, 1)
    );

    // The next chunk: row 3 has a live violation of the same device, term
    // and time (skipped); a user of no person is stored without one; row 1
    // again adds nothing. Progress adds up.
    let progress = RetroProgress {
        cursor: 4,
        rows: 2,
        pauses: 0,
        busy_ms: 10,
    };
    let added = store
        .retro_commit(
            1,
            one.id,
            7,
            &progress,
            &[
                hit(3, 1, Some("amy.ng"), 30),
                hit(4, 2, Some("ben"), 99),
                hit(1, 1, Some("amy.ng"), 10),
            ],
        )
        .unwrap()
        .unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].device_id, 2);
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM violations WHERE id = {} AND person_id IS NULL",
            added[0].id
        )),
        1
    );
    assert_eq!(count("SELECT count(*) FROM violations"), 3);
    let after = store.retro_scan(1, one.id).unwrap().unwrap();
    assert_eq!(
        (
            after.cursor,
            after.rows_scanned,
            after.pauses,
            after.busy_ms,
            after.hits
        ),
        (4, 4, 1, 50, 2)
    );

    // Finished: done takes what it read as its total; once only, and only
    // by its school.
    assert!(store
        .retro_finish(2, one.id, RetroState::Done, "")
        .unwrap()
        .is_none());
    // (As if retention had swept a row before it was read.)
    sql(&format!(
        "UPDATE retro_scans SET rows_scanned = 3 WHERE id = {}",
        one.id
    ));
    let done = store
        .retro_finish(1, one.id, RetroState::Done, "")
        .unwrap()
        .unwrap();
    assert_eq!((done.state, done.rows_total), (RetroState::Done, 3));
    assert!(done.finished_at.is_some());
    assert!(store
        .retro_finish(1, one.id, RetroState::Failed, "late")
        .unwrap()
        .is_none());
    assert!(!store.retro_begin(1, one.id, 9).unwrap(), "not active");
    assert!(store
        .retro_commit(1, one.id, 7, &progress, &[hit(2, 2, None, 20)])
        .unwrap()
        .is_none());
    assert_eq!(count("SELECT count(*) FROM violations"), 3);
    assert_eq!(store.retro_unfinished().unwrap(), [(2, theirs.clone())]);

    // A cancel wins over a chunk in flight; the total stays as counted.
    let two = store.retro_start(1, &new_scan(50, 200)).unwrap().unwrap();
    assert_eq!(two.rows_total, 2);
    assert!(store.retro_begin(1, two.id, 11).unwrap());
    let cancelled = store
        .retro_finish(1, two.id, RetroState::Cancelled, "stopped by hill.admin")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            cancelled.state,
            cancelled.note.as_str(),
            cancelled.rows_total
        ),
        (RetroState::Cancelled, "stopped by hill.admin", 2)
    );
    assert!(store
        .retro_commit(1, two.id, 11, &progress, &[hit(5, 1, None, 100)])
        .unwrap()
        .is_none());
    assert_eq!(count("SELECT count(*) FROM violations"), 3);

    // Lists newest first, at most `limit` (1 to 100), the school's own.
    let three = store.retro_start(1, &new_scan(0, 1)).unwrap().unwrap();
    assert_eq!(three.rows_total, 0);
    let ids: Vec<i64> = store
        .retro_scans(1, 10)
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [three.id, two.id, one.id]);
    let ids: Vec<i64> = store
        .retro_scans(1, 2)
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [three.id, two.id]);
    assert_eq!(store.retro_scans(1, 0).unwrap().len(), 1);
    assert_eq!(store.retro_scans(1, -5).unwrap().len(), 1);
    assert_eq!(
        store.retro_scans(2, 10).unwrap(),
        std::slice::from_ref(&theirs)
    );
    assert_eq!(
        store.retro_unfinished().unwrap(),
        [(2, theirs.clone()), (1, three.clone())]
    );

    // A job that does not read is refused as corrupt.
    sql(&format!(
        "UPDATE retro_scans SET state = 'paused' WHERE id = {}",
        two.id
    ));
    assert!(matches!(
        store.retro_scan(1, two.id),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.retro_scans(1, 10),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn retro_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check_retro(
        &lite,
        &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap(),
        &mut |q| raw.execute_batch(q).unwrap(),
    );

    // PostgreSQL.
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(&mut raw, &["schools", "people", "activity", "violations"]);
    let raw = std::cell::RefCell::new(raw);
    check_retro(
        &store,
        &mut |q| raw.borrow_mut().query_one(q, &[]).unwrap().get::<_, i64>(0),
        &mut |q| raw.borrow_mut().batch_execute(q).unwrap(),
    );
}
