//! Sent files, collections and exams (`FilesStore`) give the same answers
//! on SQLite and on PostgreSQL: one check, run on each engine from the same
//! schools.

mod common;

use common::pg::Pg;
use lectern_store::files::{Collection, Delivery, Exam, FilesStore, HandIn, Transfer};
use lectern_store::{SchoolId, SqliteStore, Store};

fn transfer(name: &str, exam_id: Option<i64>) -> Transfer {
    Transfer {
        id: 0,
        name: name.into(),
        title: "Homework".into(),
        size: 10,
        sha256: "ab".repeat(32),
        created_by: "ms.khan".into(),
        created_at: 5,
        exam_id,
    }
}

fn collection(path: &str) -> Collection {
    Collection {
        id: 0,
        path: path.into(),
        max_bytes: 1 << 20,
        created_by: "ms.khan".into(),
        created_at: 6,
        exam_id: None,
    }
}

fn exam(name: &str, starts_at: Option<i64>) -> Exam {
    Exam {
        id: 0,
        name: name.into(),
        devices: vec![1, 2],
        allowed_apps: vec!["gedit".into()],
        allowed_sites: vec!["*.exams.test".into()],
        paper_transfer: None,
        paper_name: None,
        collect_path: Some("Answers".into()),
        starts_at,
        ends_at: Some(9_000),
        status: "planned".into(),
        started_at: None,
        ended_at: None,
        collection_id: None,
        created_by: "ms.khan".into(),
        created_at: 7,
    }
}

fn check_transfers(store: &dyn FilesStore, hill: SchoolId, dale: SchoolId) {
    let first = store
        .add_transfer(hill, &transfer("a.pdf", None), &[1, 2, 2])
        .unwrap();
    let second = store
        .add_transfer(hill, &transfer("b.pdf", None), &[2])
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(store.transfer(hill, first.id).unwrap(), Some(first.clone()));
    let names: Vec<String> = store
        .transfers(hill)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["b.pdf", "a.pdf"], "newest first");
    // A device listed twice gets one delivery.
    let ds = store.deliveries(hill, first.id).unwrap();
    assert_eq!(
        ds.iter()
            .map(|d| (d.device_id, d.status.as_str()))
            .collect::<Vec<_>>(),
        [(1, "pending"), (2, "pending")]
    );
    let open: Vec<i64> = store
        .open_deliveries(hill, 2)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(open, [first.id, second.id]);

    // A delivery moves on until it is finished, then stays as it is.
    let sending = Delivery {
        device_id: 2,
        status: "sending".into(),
        bytes: 4,
        saved_as: None,
        reason: None,
        updated_at: 8,
    };
    assert!(store.set_delivery(first.id, 2, &sending).unwrap());
    let done = Delivery {
        status: "done".into(),
        bytes: 10,
        saved_as: Some("Lectern/Received/Homework/a.pdf".into()),
        updated_at: 9,
        ..sending.clone()
    };
    assert!(store.set_delivery(first.id, 2, &done).unwrap());
    assert!(!store.set_delivery(first.id, 2, &sending).unwrap());
    assert!(
        !store.set_delivery(first.id, 7, &sending).unwrap(),
        "no such device"
    );
    assert_eq!(store.deliveries(hill, first.id).unwrap()[1], done);
    assert_eq!(store.open_deliveries(hill, 2).unwrap().len(), 1);

    // The other school sees none of it.
    assert_eq!(store.transfer(dale, first.id).unwrap(), None);
    assert!(store.transfers(dale).unwrap().is_empty());
    assert!(store.deliveries(dale, first.id).unwrap().is_empty());
    assert!(store.open_deliveries(dale, 1).unwrap().is_empty());
}

fn check_collections(store: &dyn FilesStore, hill: SchoolId, dale: SchoolId) {
    let c = store
        .add_collection(
            hill,
            &collection("Essay"),
            &[(1, "amy-pc1".into()), (2, "ben-pc2".into())],
        )
        .unwrap();
    assert_eq!(store.collection(hill, c.id).unwrap(), Some(c.clone()));
    assert_eq!(store.collections(hill).unwrap(), std::slice::from_ref(&c));
    let hs = store.hand_ins(hill, c.id).unwrap();
    assert_eq!(
        hs.iter()
            .map(|h| (h.device_id, h.folder.as_str(), h.status.as_str()))
            .collect::<Vec<_>>(),
        [(1, "amy-pc1", "pending"), (2, "ben-pc2", "pending")]
    );
    let partway = HandIn {
        status: "sending".into(),
        file_index: 1,
        file_offset: 512,
        bytes: 2048,
        files: 1,
        updated_at: 10,
        ..hs[0].clone()
    };
    assert!(store.set_hand_in(c.id, &partway).unwrap());
    let open = store.open_hand_ins(hill, 1).unwrap();
    assert_eq!(open, [(c.clone(), partway.clone())]);
    let failed = HandIn {
        status: "failed".into(),
        reason: Some("too big".into()),
        ..partway.clone()
    };
    assert!(store.set_hand_in(c.id, &failed).unwrap());
    assert!(!store.set_hand_in(c.id, &partway).unwrap(), "finished");
    assert!(store.open_hand_ins(hill, 1).unwrap().is_empty());
    assert_eq!(store.hand_ins(hill, c.id).unwrap()[0], failed);

    assert_eq!(store.collection(dale, c.id).unwrap(), None);
    assert!(store.collections(dale).unwrap().is_empty());
    assert!(store.hand_ins(dale, c.id).unwrap().is_empty());
    assert!(store.open_hand_ins(dale, 2).unwrap().is_empty());
}

fn check_exams(store: &dyn FilesStore, hill: SchoolId, dale: SchoolId) {
    let timed = store.add_exam(hill, &exam("Maths", Some(1_000))).unwrap();
    let untimed = store.add_exam(hill, &exam("French", None)).unwrap();
    let theirs = store
        .add_exam(dale, &exam("Dale maths", Some(2_000)))
        .unwrap();
    assert_eq!(store.exam(hill, timed.id).unwrap(), Some(timed.clone()));
    assert_eq!(store.exam(dale, timed.id).unwrap(), None);
    let names: Vec<String> = store
        .exams(hill)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["French", "Maths"], "newest first");

    // Only one of two nodes moves an exam on; the stamp follows the move.
    assert!(store
        .move_exam(hill, timed.id, "planned", "running", 1_001)
        .unwrap());
    assert!(!store
        .move_exam(hill, timed.id, "planned", "running", 1_002)
        .unwrap());
    assert!(
        !store
            .move_exam(dale, timed.id, "running", "ended", 1_003)
            .unwrap(),
        "not the other school's"
    );
    let running = store.exam(hill, timed.id).unwrap().unwrap();
    assert_eq!(
        (
            running.status.as_str(),
            running.started_at,
            running.ended_at
        ),
        ("running", Some(1_001), None)
    );

    // The clock's list: planned with a start, running with an end, every school.
    let clock: Vec<(SchoolId, String)> = store
        .timed_exams()
        .unwrap()
        .into_iter()
        .map(|(s, e)| (s, e.name))
        .collect();
    assert_eq!(clock, [(hill, "Maths".into()), (dale, "Dale maths".into())]);

    // Saving sets the paper and collection; another school's save is ignored.
    let paper = store
        .add_transfer(hill, &transfer("paper.pdf", Some(timed.id)), &[1, 2])
        .unwrap();
    let saved = Exam {
        paper_transfer: Some(paper.id),
        paper_name: Some("paper.pdf".into()),
        collection_id: Some(99),
        ..running.clone()
    };
    store.update_exam(hill, &saved).unwrap();
    store
        .update_exam(
            dale,
            &Exam {
                name: "x".into(),
                paper_name: Some("stolen".into()),
                ..saved.clone()
            },
        )
        .unwrap();
    assert_eq!(store.exam(hill, timed.id).unwrap(), Some(saved.clone()));
    assert!(store
        .move_exam(hill, timed.id, "running", "ended", 9_000)
        .unwrap());
    assert_eq!(
        store.exam(hill, timed.id).unwrap().unwrap().ended_at,
        Some(9_000)
    );

    // The log, oldest first, read only through the exam's school.
    store
        .exam_log_add(timed.id, None, "started", "by ms.khan")
        .unwrap();
    store
        .exam_log_add(timed.id, Some(2), "disconnected", "pc2 — gone")
        .unwrap();
    store
        .exam_log_add(theirs.id, None, "started", "dale")
        .unwrap();
    let log: Vec<(Option<i64>, String, String)> = store
        .exam_log(hill, timed.id)
        .unwrap()
        .into_iter()
        .map(|l| (l.device_id, l.kind, l.detail))
        .collect();
    assert_eq!(
        log,
        [
            (None, "started".into(), "by ms.khan".into()),
            (Some(2), "disconnected".into(), "pc2 — gone".into())
        ]
    );
    assert!(store.exam_log(dale, timed.id).unwrap().is_empty());
    assert!(store.exam_log(hill, untimed.id).unwrap().is_empty());
}

fn check(store: &dyn FilesStore, hill: SchoolId, dale: SchoolId) {
    check_transfers(store, hill, dale);
    check_collections(store, hill, dale);
    check_exams(store, hill, dale);
}

#[test]
fn files_collections_and_exams_are_the_same_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let hill = lite.create_school("Hill").unwrap();
    let dale = lite.create_school("Dale").unwrap();
    check(&lite, hill, dale);

    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute("INSERT INTO schools (name, created_at) VALUES ('Hill', 1), ('Dale', 1)")
        .unwrap();
    let ids: Vec<i64> = raw
        .query("SELECT id FROM schools ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    check(&store, ids[0], ids[1]);
}
