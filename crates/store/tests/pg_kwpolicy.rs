//! Keyword libraries and their assignments give the same answers on both
//! engines: the checks run on `SqliteStore` and on `PgStore` against a real
//! PostgreSQL the test starts, from the same rows.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;

use common::pg::Pg;
use lectern_store::kwpolicy::{KeywordAssignment, KeywordLibraryRow, KwPolicyStore, OLD_DOCUMENT};
use lectern_store::{SqliteStore, StoreError};

/// Hill (1) has a pre-0020 library document, Dale (2) none; Vale (3) has a
/// document and already an own library named as the one set-up would make.
/// Groups 10 and 20 are Hill's and Dale's Entire Network, 11 Hill's lab.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1), (3, 'Vale', 1);
    INSERT INTO groups (id, school_id, name, kind, priority, builtin, created_at)
        VALUES (10, 1, 'Entire Network', 'entire_network', 'lowest', 'entire_network', 1),
               (11, 1, 'Lab', 'computer', 'low', NULL, 1),
               (20, 2, 'Entire Network', 'entire_network', 'lowest', 'entire_network', 1);
    INSERT INTO documents (school_id, name, body, updated_at)
        VALUES (1, 'keyword_library', '{\"terms\":[\"old\"]}', 1),
               (3, 'keyword_library', '{\"terms\":[\"vale\"]}', 1);
    INSERT INTO keyword_libraries (id, school_id, kind, name, terms, updated_by, updated_at)
        VALUES (50, 3, 'own', 'SCHOOL LIBRARY', '{}', 'x', 1);
    INSERT INTO violations (id, school_id, device_id, term, category, severity, matched, context,
                            source, action, at)
        VALUES (1, 1, 7, 't', 'c', 3, 't', 't', 'url', 'log', 1),
               (2, 1, 7, 't', 'c', 3, 't', 't', 'url', 'log', 2),
               (3, 2, 8, 't', 'c', 3, 't', 't', 'url', 'log', 3);
";

const SEQUENCES: [&str; 4] = ["schools", "groups", "keyword_libraries", "violations"];

fn library(kind: &str, name: &str, terms: &str, source: Option<&str>) -> KeywordLibraryRow {
    KeywordLibraryRow {
        id: 0,
        kind: kind.into(),
        name: name.into(),
        terms: Some(terms.into()),
        source: source.map(Into::into),
        updated_by: "hill.admin".into(),
        updated_at: 0,
    }
}

fn assignment(
    library_id: i64,
    group_id: i64,
    enabled: bool,
    actions: Option<&str>,
) -> KeywordAssignment {
    KeywordAssignment {
        id: 0,
        library_id,
        group_id,
        enabled,
        actions: actions.map(|a| vec![a.to_string(); 5]),
        set_by: "hill.admin".into(),
        set_at: 0,
    }
}

fn exists<T: std::fmt::Debug>(r: lectern_store::Result<T>) -> bool {
    matches!(r, Err(StoreError::Exists(_)))
}

/// `count` answers a query for one number; `exec` runs statements.
fn check_kwpolicy(
    store: &dyn KwPolicyStore,
    count: &mut dyn FnMut(&str) -> i64,
    exec: &mut dyn FnMut(&str),
) {
    // First-time set-up: Hill's old document becomes its own library,
    // enabled for Entire Network; Dale's default is enabled there.
    assert!(store.ensure_keyword_libraries(1, 10, "Default").unwrap());
    assert!(
        !store.ensure_keyword_libraries(1, 10, "Other").unwrap(),
        "once"
    );
    assert!(store.ensure_keyword_libraries(2, 20, "Default").unwrap());
    let hill = store.keyword_libraries(1).unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = hill
        .iter()
        .map(|l| (l.kind.as_str(), l.name.as_str(), l.terms.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("default", "Default", None),
            ("own", "School library", Some(r#"{"terms":["old"]}"#))
        ]
    );
    assert!(hill[0].id < hill[1].id, "by id");
    assert_eq!(
        (hill[0].updated_by.as_str(), hill[1].updated_by.as_str()),
        ("system", "migration")
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM documents WHERE school_id = 1 AND name = '{OLD_DOCUMENT}'"
        )),
        0,
        "the old document goes"
    );
    let (default, own) = (hill[0].id, hill[1].id);
    let dale = store.keyword_libraries(2).unwrap();
    assert_eq!(dale.len(), 1);
    let dale_default = dale[0].id;
    let a = store.keyword_assignments(1).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(
        (
            a[0].library_id,
            a[0].group_id,
            a[0].enabled,
            a[0].actions.clone()
        ),
        (own, 10, true, None)
    );
    assert_eq!(a[0].set_by, "migration");
    let d = store.keyword_assignments(2).unwrap();
    assert_eq!(
        d.iter()
            .map(|a| (a.library_id, a.group_id))
            .collect::<Vec<_>>(),
        [(dale_default, 20)]
    );

    // Set-up is one transaction: Vale's own library is already named
    // "School library" (in another case), so it fails and leaves nothing.
    assert!(store.ensure_keyword_libraries(3, 30, "Default").is_err());
    let vale = store.keyword_libraries(3).unwrap();
    assert_eq!(
        vale.iter().map(|l| l.id).collect::<Vec<_>>(),
        [50],
        "no default left behind"
    );
    assert!(store.keyword_assignments(3).unwrap().is_empty());
    assert_eq!(
        count("SELECT count(*) FROM documents WHERE school_id = 3"),
        1,
        "the document stays"
    );

    // Created, read back; names are unique per school in any case.
    let pack = store
        .create_keyword_library(
            1,
            &library("imported", "Pack A", "{\"a\":1}", Some("a.json")),
        )
        .unwrap();
    assert!(pack.id > own);
    assert_eq!(
        (
            pack.kind.as_str(),
            pack.name.as_str(),
            pack.terms.as_deref(),
            pack.source.as_deref(),
            pack.updated_by.as_str()
        ),
        (
            "imported",
            "Pack A",
            Some("{\"a\":1}"),
            Some("a.json"),
            "hill.admin"
        )
    );
    assert!(pack.updated_at > 0, "stamped now");
    assert_eq!(
        store.keyword_library(1, pack.id).unwrap(),
        Some(pack.clone())
    );
    assert!(
        exists(store.create_keyword_library(1, &library("own", "pack a", "{}", None))),
        "a taken name in another case"
    );
    let dale_pack = store
        .create_keyword_library(2, &library("imported", "Pack A", "{}", None))
        .unwrap();
    assert_eq!(
        store.keyword_libraries(1).unwrap().len(),
        3,
        "nothing added"
    );
    assert_eq!(
        store.keyword_library(2, pack.id).unwrap(),
        None,
        "another school's"
    );
    assert_eq!(store.keyword_library(1, 9999).unwrap(), None);

    // Saved: name and terms; no terms keeps them; the default keeps none.
    let saved = store
        .save_keyword_library(1, pack.id, "Pack B", Some("{\"b\":2}"), "ed")
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            saved.id,
            saved.name.as_str(),
            saved.terms.as_deref(),
            saved.updated_by.as_str()
        ),
        (pack.id, "Pack B", Some("{\"b\":2}"), "ed")
    );
    assert_eq!(saved.source.as_deref(), Some("a.json"), "source kept");
    let renamed = store
        .save_keyword_library(1, pack.id, "Pack C", None, "ed")
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.terms.as_deref()),
        ("Pack C", Some("{\"b\":2}"))
    );
    let d = store
        .save_keyword_library(1, default, "Built in", Some("{\"x\":1}"), "ed")
        .unwrap()
        .unwrap();
    assert_eq!((d.name.as_str(), d.terms), ("Built in", None));
    assert!(
        exists(store.save_keyword_library(1, pack.id, "school LIBRARY", None, "ed")),
        "renamed onto a taken name"
    );
    assert_eq!(
        store
            .save_keyword_library(2, pack.id, "Mine", Some("{}"), "dale")
            .unwrap(),
        None,
        "another school's library"
    );
    assert_eq!(
        store
            .save_keyword_library(1, 9999, "None", None, "ed")
            .unwrap(),
        None
    );
    assert_eq!(
        store.keyword_library(1, pack.id).unwrap().unwrap().name,
        "Pack C",
        "unchanged by the refusals"
    );

    // Assignments: stored, replaced for the same library and group.
    let lab = store
        .set_keyword_assignment(1, &assignment(pack.id, 11, false, Some("lock")))
        .unwrap();
    assert_eq!(
        (
            lab.library_id,
            lab.group_id,
            lab.enabled,
            lab.set_by.as_str()
        ),
        (pack.id, 11, false, "hill.admin")
    );
    assert_eq!(lab.actions, Some(vec!["lock".to_string(); 5]));
    assert!(lab.set_at > 0);
    let replaced = store
        .set_keyword_assignment(1, &assignment(pack.id, 11, true, None))
        .unwrap();
    assert_eq!(
        (replaced.id, replaced.enabled, replaced.actions.clone()),
        (lab.id, true, None),
        "the same row, replaced"
    );
    let whole = store
        .set_keyword_assignment(1, &assignment(default, 10, true, Some("alert")))
        .unwrap();
    let ids: Vec<(i64, i64)> = store
        .keyword_assignments(1)
        .unwrap()
        .iter()
        .map(|a| (a.library_id, a.group_id))
        .collect();
    assert_eq!(ids, [(own, 10), (pack.id, 11), (default, 10)], "by id");
    assert_eq!(store.keyword_assignments(2).unwrap().len(), 1, "Dale's own");
    assert!(
        !store.delete_keyword_assignment(2, whole.id).unwrap(),
        "another school's"
    );
    assert!(store.delete_keyword_assignment(1, whole.id).unwrap());
    assert!(
        !store.delete_keyword_assignment(1, whole.id).unwrap(),
        "gone"
    );
    assert_eq!(store.keyword_assignments(1).unwrap().len(), 2);

    // A deleted group's assignments go with it.
    exec("DELETE FROM groups WHERE id = 11");
    let left: Vec<i64> = store
        .keyword_assignments(1)
        .unwrap()
        .iter()
        .map(|a| a.group_id)
        .collect();
    assert_eq!(left, [10]);

    // Deleting: not the default, not another school's; a library's
    // assignments go with it.
    store
        .set_keyword_assignment(1, &assignment(pack.id, 10, true, None))
        .unwrap();
    assert!(
        !store.delete_keyword_library(1, default).unwrap(),
        "default stays"
    );
    assert!(
        !store.delete_keyword_library(2, pack.id).unwrap(),
        "another school's"
    );
    assert!(
        !store.delete_keyword_library(1, dale_pack.id).unwrap(),
        "another school's"
    );
    assert_eq!(store.keyword_assignments(1).unwrap().len(), 2);
    assert!(store.delete_keyword_library(1, pack.id).unwrap());
    assert!(!store.delete_keyword_library(1, pack.id).unwrap(), "gone");
    assert_eq!(store.keyword_library(1, pack.id).unwrap(), None);
    assert_eq!(
        store
            .keyword_assignments(1)
            .unwrap()
            .iter()
            .map(|a| a.library_id)
            .collect::<Vec<_>>(),
        [own]
    );
    assert_eq!(
        store.keyword_libraries(2).unwrap().len(),
        2,
        "Dale's untouched"
    );

    // Violations' libraries, per school.
    store
        .set_violation_library(1, 1, own, "School library")
        .unwrap();
    store
        .set_violation_library(2, 2, dale_default, "Default")
        .unwrap();
    assert_eq!(
        store.violation_libraries(1, &[1, 2, 3, 9999]).unwrap(),
        HashMap::from([(1, (own, "School library".to_string()))]),
        "Dale set nothing on Hill's violation 2"
    );
    assert!(store.violation_libraries(2, &[1, 2]).unwrap().is_empty());
    assert!(store.violation_libraries(1, &[]).unwrap().is_empty());
    store
        .set_violation_library(1, 1, default, "Built in")
        .unwrap();
    assert_eq!(
        store.violation_libraries(1, &[1]).unwrap(),
        HashMap::from([(1, (default, "Built in".to_string()))])
    );
}

#[test]
fn keyword_libraries_are_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check_kwpolicy(
        &lite,
        &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap(),
        &mut |q| raw.execute_batch(q).unwrap(),
    );

    // PostgreSQL.
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(&mut raw, &SEQUENCES);
    let raw = RefCell::new(raw);
    check_kwpolicy(
        &store,
        &mut |q| raw.borrow_mut().query_one(q, &[]).unwrap().get::<_, i64>(0),
        &mut |q| raw.borrow_mut().batch_execute(q).unwrap(),
    );
}
