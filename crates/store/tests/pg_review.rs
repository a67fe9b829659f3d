//! The review workflow of violations (`ReviewStore`) gives the same answers
//! on SQLite and on PostgreSQL, from the same rows.

mod common;

use common::pg::Pg;
use lectern_store::review::{CaseChange, CaseEvent, CaseStatus, ReviewStore};
use lectern_store::{SqliteStore, StoreError, ViolationFilter};

/// Two schools; school 1 has violations 1 (device 1, severity 3, new) and 2
/// (device 2, severity 5, escalated to Lee), school 2 has violation 3.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO violations (id, school_id, device_id, term, category, severity, matched, context, source, action, at)
        VALUES (1, 1, 1, 'knife', 'weapons', 3, 'knife', 'a knife', 'typed', 'log', 10),
               (3, 2, 1, 'knife', 'weapons', 3, 'knife', 'a knife', 'typed', 'log', 10);
    INSERT INTO violations (id, school_id, device_id, term, category, severity, matched, context, source, action, at, status, assignee)
        VALUES (2, 1, 2, 'loser', 'bullying', 5, 'loser', 'you loser', 'url', 'log', 20, 'escalated', 'Lee');
";

fn fields(events: &[CaseEvent]) -> Vec<(&str, Option<&str>, Option<&str>)> {
    events
        .iter()
        .map(|e| (e.field.as_str(), e.old.as_deref(), e.new.as_deref()))
        .collect()
}

fn check_review(store: &dyn ReviewStore, sql: &mut dyn FnMut(&str)) {
    // States: only the school's own, and none for no ids.
    let states = store.case_states(1, &[1, 2, 3, 999]).unwrap();
    assert_eq!(states.len(), 2, "another school's and unknown ids left out");
    assert_eq!(
        (
            states[&1].device_id,
            states[&1].status,
            &states[&1].assignee,
            states[&1].notes
        ),
        (1, CaseStatus::New, &None, 0)
    );
    assert_eq!(
        (
            states[&2].device_id,
            states[&2].status,
            states[&2].assignee.as_deref()
        ),
        (2, CaseStatus::Escalated, Some("Lee"))
    );
    assert!(store.case_states(1, &[]).unwrap().is_empty());
    // More ids than one statement binds.
    let many: Vec<i64> = (1..=1200).collect();
    let states = store.case_states(1, &many).unwrap();
    let mut ids: Vec<i64> = states.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, [1, 2]);

    // Another school cannot change these cases.
    let change = CaseChange {
        status: Some(CaseStatus::InReview),
        assignee: Some(Some("lee".into())),
        note: Some("called home".into()),
    };
    assert!(store
        .change_cases(2, &[1, 2], &change, "dale.admin", 100)
        .unwrap()
        .is_empty());
    assert!(store.case_history(1, 1).unwrap().is_empty());
    assert!(store.case_notes(1, 1).unwrap().is_empty());

    // One change to several cases: the answer in the order asked, a
    // history row for each thing that changed (Lee and lee are the same).
    let out = store
        .change_cases(1, &[2, 3, 999, 1], &change, "khan", 500)
        .unwrap();
    let ids: Vec<i64> = out.iter().map(|o| o.id).collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!(
        fields(&out[0].events)[..1],
        [("status", Some("escalated"), Some("in_review"))]
    );
    assert_eq!(out[0].events.len(), 2, "status and note; the assignee kept");
    assert_eq!(
        (
            out[0].device_id,
            out[0].state.status,
            out[0].state.assignee.as_deref(),
            out[0].state.notes
        ),
        (2, CaseStatus::InReview, Some("Lee"), 1)
    );
    let one = &out[1];
    assert_eq!(
        fields(&one.events)[..2],
        [
            ("status", Some("new"), Some("in_review")),
            ("assignee", None, Some("lee"))
        ]
    );
    let notes = store.case_notes(1, 1).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (
            notes[0].author.as_str(),
            notes[0].body.as_str(),
            notes[0].at
        ),
        ("khan", "called home", 500)
    );
    let note_id = notes[0].id.to_string();
    assert_eq!(
        fields(&one.events)[2],
        ("note", None, Some(note_id.as_str())),
        "a note's event names the note"
    );
    assert!(one
        .events
        .iter()
        .all(|e| e.violation_id == 1 && e.actor == "khan" && e.at == 500));
    assert_eq!(
        (
            one.state.status,
            one.state.assignee.as_deref(),
            one.state.notes
        ),
        (CaseStatus::InReview, Some("lee"), 1)
    );
    // The history is what the change returned.
    assert_eq!(store.case_history(1, 1).unwrap(), one.events);
    assert_eq!(store.case_history(1, 2).unwrap(), out[0].events);
    // Another school sees none of it.
    assert!(store.case_history(2, 1).unwrap().is_empty());
    assert!(store.case_notes(2, 1).unwrap().is_empty());
    assert_eq!(
        store.case_states(2, &[3]).unwrap()[&3].status,
        CaseStatus::New
    );
    assert!(store.case_history(2, 3).unwrap().is_empty());

    // The same change again only adds the note; unassigning is a change.
    let again = store.change_cases(1, &[1], &change, "khan", 600).unwrap();
    assert_eq!(fields(&again[0].events)[0].0, "note");
    assert_eq!(again[0].events.len(), 1);
    assert_eq!(again[0].state.notes, 2);
    let unassign = CaseChange {
        assignee: Some(None),
        ..Default::default()
    };
    let out = store.change_cases(1, &[1], &unassign, "lee", 400).unwrap();
    assert_eq!(fields(&out[0].events), [("assignee", Some("lee"), None)]);
    assert_eq!(out[0].state.assignee, None);
    // Notes and history oldest first (by time, then as written).
    let history = store.case_history(1, 1).unwrap();
    let order: Vec<(i64, &str)> = history.iter().map(|e| (e.at, e.field.as_str())).collect();
    assert_eq!(
        order,
        [
            (400, "assignee"),
            (500, "status"),
            (500, "assignee"),
            (500, "note"),
            (600, "note")
        ]
    );
    let bodies: Vec<i64> = store
        .case_notes(1, 1)
        .unwrap()
        .iter()
        .map(|n| n.at)
        .collect();
    assert_eq!(bodies, [500, 600]);
    // Nothing asked, nothing changed.
    let out = store
        .change_cases(1, &[1], &CaseChange::default(), "khan", 700)
        .unwrap();
    assert!(out[0].events.is_empty());
    assert_eq!(store.case_history(1, 1).unwrap().len(), 5);

    // Counts per status, sorted by status; another school's apart.
    let all = ViolationFilter {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(
        store.violation_status_counts(1, &all).unwrap(),
        [(CaseStatus::InReview, 2)]
    );
    assert_eq!(
        store.violation_status_counts(2, &all).unwrap(),
        [(CaseStatus::New, 1)]
    );
    sql("INSERT INTO violations (id, school_id, device_id, term, category, severity, matched, context, source, action, at, status)
         VALUES (4, 1, 2, 'x', 'bullying', 2, 'x', 'x', 'typed', 'log', 30, 'closed'),
                (5, 1, 1, 'x', 'weapons', 2, 'x', 'x', 'typed', 'log', 40, 'new')");
    assert_eq!(
        store.violation_status_counts(1, &all).unwrap(),
        [
            (CaseStatus::New, 1),
            (CaseStatus::InReview, 2),
            (CaseStatus::Closed, 1)
        ]
    );
    let device_2 = ViolationFilter {
        devices: Some(vec![2]),
        min_severity: Some(2),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(
        store.violation_status_counts(1, &device_2).unwrap(),
        [(CaseStatus::InReview, 1), (CaseStatus::Closed, 1)]
    );
    let no_devices = ViolationFilter {
        devices: Some(vec![]),
        limit: 1,
        ..Default::default()
    };
    assert!(store
        .violation_status_counts(1, &no_devices)
        .unwrap()
        .is_empty());

    // A bulk change lands whole or not at all: a case that does not read
    // (an unknown status) fails it, and the case before it is not changed.
    sql("UPDATE violations SET status = 'bogus' WHERE id = 5");
    let closed = CaseChange {
        status: Some(CaseStatus::Closed),
        note: Some("done".into()),
        ..Default::default()
    };
    let failed = store.change_cases(1, &[2, 5], &closed, "khan", 800);
    assert!(matches!(failed, Err(StoreError::Corrupt(_))), "{failed:?}");
    assert_eq!(
        store.case_states(1, &[2]).unwrap()[&2].status,
        CaseStatus::InReview
    );
    assert_eq!(store.case_history(1, 2).unwrap().len(), 2);
    assert_eq!(store.case_notes(1, 2).unwrap().len(), 1);
    assert!(matches!(
        store.violation_status_counts(1, &all),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.case_states(1, &[5]),
        Err(StoreError::Corrupt(_))
    ));
    sql("UPDATE violations SET status = 'new' WHERE id = 5");
    let out = store
        .change_cases(1, &[2, 5], &closed, "khan", 800)
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.state.status == CaseStatus::Closed));

    // Notes and history go with their violation.
    sql("DELETE FROM violations WHERE id = 2");
    assert!(store.case_history(1, 2).unwrap().is_empty());
    assert!(store.case_notes(1, 2).unwrap().is_empty());
}

#[test]
fn review_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    raw.execute_batch(ROWS).unwrap();
    check_review(&lite, &mut |q| raw.execute_batch(q).unwrap());

    // PostgreSQL.
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(&mut raw, &["schools", "violations"]);
    check_review(&store, &mut |q| raw.batch_execute(q).unwrap());
}
