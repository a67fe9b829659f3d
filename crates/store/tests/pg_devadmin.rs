//! Device administration (enrollment tokens into rooms, joining a room,
//! rename and deletion with the room members following, the public
//! availability switch) gives the same answers on SQLite and PostgreSQL,
//! from the same rows.

mod common;

use common::pg::Pg;
use lectern_policy::groups::Member;
use lectern_store::devadmin::{Deleted, DevAdminStore, Joined, NewToken};
use lectern_store::{SqliteStore, ENROLLMENT_TOKEN_PREFIX};

/// Two schools; Hill's devices (a pattern-like name, two that share a name
/// in different case, one with a non-ASCII letter) and Dale's PC-1; Hill's
/// computer groups, a user group naming PC-2, and Dale's room; screens and
/// inventory of Hill's PC-1 and Dale's PC-1; a token of Dale's.
const ROWS: &str = r#"
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO devices (id, school_id, hostname, os, agent_version, secret_hash, enrolled_at, reported_name)
        VALUES (1, 1, 'PC-1', 'linux', '1', 'x', 1, NULL),
               (2, 1, 'PC-2', 'linux', '1', 'x', 1, 'PC-7'),
               (3, 1, 'LAB-*', 'linux', '1', 'x', 1, NULL),
               (4, 1, 'Twin', 'linux', '1', 'x', 1, NULL),
               (5, 1, 'TWIN', 'linux', '1', 'x', 1, NULL),
               (6, 2, 'PC-1', 'linux', '1', 'x', 1, NULL),
               (7, 1, 'pc-é', 'linux', '1', 'x', 1, NULL);
    INSERT INTO groups (id, school_id, name, kind, priority, members, created_at)
        VALUES (1, 1, 'Room 5', 'computer', 'low', '[{"type":"hostname","value":"LAB-*"}]', 1),
               (2, 1, 'Room 6', 'computer', 'low', '[{"type":"hostname","value":"pc-2"}]', 1),
               (3, 1, 'Staff', 'user', 'low', '[{"type":"hostname","value":"PC-2"}]', 1),
               (4, 2, 'Dale lab', 'computer', 'low', '[{"type":"hostname","value":"PC-1"}]', 1),
               (5, 1, 'Room 7', 'computer', 'low', '[{"type":"hostname","value":"Twin"}]', 1);
    INSERT INTO screenshots (school_id, device_id, taken_by, taken_at, width, height, jpeg)
        VALUES (1, 1, 'a', 1, 1, 1, ''), (1, 1, 'a', 2, 1, 1, ''), (2, 6, 'b', 1, 1, 1, '');
    INSERT INTO inventory (school_id, device_id, hash, report, received_at)
        VALUES (1, 1, 'h', '{}', 1), (2, 6, 'h', '{}', 1);
    INSERT INTO enrollment_tokens
        (id, school_id, token_hash, label, uses_left, expires_at, created_by, created_at, group_id)
        VALUES (1, 2, 'dale-hash', 'dale', 3, 9999999999999, 'dale.admin', 1, 4);
"#;

fn check_tokens(store: &dyn DevAdminStore) {
    let new = |label, room| NewToken {
        label,
        uses: 5,
        expires_at: 9_999_999_999_999,
        created_by: "hill.admin",
        room,
    };
    let (t1, row1) = store.create_token(1, &new("room 5", Some(1))).unwrap();
    assert!(t1.starts_with(ENROLLMENT_TOKEN_PREFIX));
    assert_eq!(
        (
            row1.label.as_str(),
            row1.uses_left,
            row1.created_by.as_str(),
            row1.room,
            row1.revoked_at
        ),
        ("room 5", 5, "hill.admin", Some(1), None)
    );
    let (t2, row2) = store.create_token(1, &new("any", None)).unwrap();
    assert_eq!(store.token_room(&t1).unwrap(), Some(1));
    assert_eq!(store.token_room(&t2).unwrap(), None, "no room");
    assert_eq!(store.token_room("no such token").unwrap(), None);
    let ids = |school| -> Vec<i64> { store.tokens(school).unwrap().iter().map(|t| t.id).collect() };
    assert_eq!(ids(1), [row2.id, row1.id], "newest first");
    assert_eq!(ids(2), [1], "Dale sees only its own");
    assert_eq!(store.token(1, row1.id).unwrap(), Some(row1.clone()));
    assert_eq!(store.token(2, row1.id).unwrap(), None, "another school's");
    assert_eq!(store.token(1, 1).unwrap(), None, "another school's");
    assert!(!store.revoke_token(2, row1.id).unwrap(), "another school's");
    assert_eq!(store.token(1, row1.id).unwrap(), Some(row1.clone()));
    assert!(store.revoke_token(1, row1.id).unwrap());
    assert!(!store.revoke_token(1, row1.id).unwrap(), "already revoked");
    let revoked = store.token(1, row1.id).unwrap().unwrap();
    assert_eq!(revoked.uses_left, 0);
    assert!(revoked.revoked_at.is_some());
    let dale = store.token(2, 1).unwrap().unwrap();
    assert_eq!(
        (dale.uses_left, dale.revoked_at, dale.room),
        (3, None, Some(4))
    );
}

fn members(one: &mut dyn FnMut(&str) -> String, room: i64) -> Vec<Member> {
    serde_json::from_str(&one(&format!(
        "SELECT members FROM groups WHERE id = {room}"
    )))
    .unwrap()
}

fn host(name: &str) -> Member {
    Member::Hostname(name.into())
}

fn check_rooms(store: &dyn DevAdminStore, one: &mut dyn FnMut(&str) -> String) {
    assert_eq!(store.join_room(1, 1, 1).unwrap(), Joined::Added);
    assert_eq!(store.join_room(1, 1, 1).unwrap(), Joined::AlreadyMember);
    assert_eq!(members(one, 1), [host("LAB-*"), host("PC-1")]);
    // Room 6 names PC-2 in another case: already a member.
    assert_eq!(store.join_room(1, 2, 2).unwrap(), Joined::AlreadyMember);
    assert_eq!(store.join_room(1, 1, 3).unwrap(), Joined::Refused, "a *");
    assert_eq!(store.join_room(1, 2, 4).unwrap(), Joined::NameShared);
    assert_eq!(store.join_room(1, 3, 1).unwrap(), Joined::Refused, "users");
    assert_eq!(store.join_room(1, 4, 1).unwrap(), Joined::Refused, "Dale's");
    assert_eq!(store.join_room(2, 1, 6).unwrap(), Joined::Refused, "Hill's");
    assert_eq!(store.join_room(1, 1, 6).unwrap(), Joined::Refused, "Dale's");
    assert_eq!(store.join_room(1, 1, 999).unwrap(), Joined::Refused);
    assert_eq!(members(one, 1), [host("LAB-*"), host("PC-1")]);
    assert_eq!(members(one, 4), [host("PC-1")], "Dale's room untouched");
    assert_eq!(store.join_room(1, 2, 1).unwrap(), Joined::Added);

    // Names are the same in any case of ASCII letters, per school.
    assert!(store.name_taken(1, 4, "twin").unwrap());
    assert!(!store.name_taken(1, 1, "pc-1").unwrap(), "its own name");
    assert!(store.name_taken(1, 2, "pc-1").unwrap());
    assert!(!store.name_taken(2, 6, "pc-2").unwrap(), "Hill's");
    assert!(store.name_taken(1, 1, "PC-é").unwrap());
    assert!(!store.name_taken(1, 1, "PC-É").unwrap(), "ASCII only");

    // A refused rename changes nothing.
    assert!(matches!(
        store.rename_device(1, 1, "pc-2"),
        Err(lectern_store::StoreError::Exists(_))
    ));
    assert_eq!(one("SELECT hostname FROM devices WHERE id = 1"), "PC-1");
    assert_eq!(store.rename_device(2, 1, "X").unwrap(), None, "Hill's");
    assert_eq!(store.rename_device(1, 999, "X").unwrap(), None);
    assert_eq!(one("SELECT hostname FROM devices WHERE id = 1"), "PC-1");
    // Renamed: exact members of computer groups follow, a user group's do
    // not, and a reported name now used is cleared.
    assert_eq!(
        store.rename_device(1, 2, "PC-7").unwrap().as_deref(),
        Some("PC-2")
    );
    assert_eq!(
        one("SELECT hostname || '/' || coalesce(reported_name, '-') FROM devices WHERE id = 2"),
        "PC-7/-"
    );
    assert_eq!(members(one, 2), [host("PC-1"), host("PC-7")]);
    assert_eq!(members(one, 3), [host("PC-2")], "not a computer group");
    // Another device keeps the old name: Room 7's member stays.
    assert_eq!(
        store.rename_device(1, 4, "Solo").unwrap().as_deref(),
        Some("Twin")
    );
    assert_eq!(members(one, 5), [host("Twin")]);

    // Renamed elsewhere: the members follow once no other device has the
    // old name, in this school only.
    assert_eq!(
        store.follow_rename(1, 999, "PC-1", "Other").unwrap(),
        Vec::<i64>::new(),
        "device 1 keeps the name"
    );
    assert_eq!(store.follow_rename(1, 5, "TWIN", "Twin-2").unwrap(), [5]);
    assert_eq!(members(one, 5), [host("Twin-2")]);
    assert_eq!(store.follow_rename(2, 6, "PC-1", "D-1").unwrap(), [4]);
    assert_eq!(members(one, 4), [host("D-1")]);
    assert_eq!(members(one, 1), [host("LAB-*"), host("PC-1")]);

    // Deleted: its rooms (in order), screens and inventory go; Dale's stay.
    assert_eq!(store.delete_device(2, 1).unwrap(), None, "Hill's");
    assert_eq!(
        store.delete_device(1, 1).unwrap(),
        Some(Deleted {
            hostname: "PC-1".into(),
            rooms: vec![1, 2]
        })
    );
    assert_eq!(store.delete_device(1, 1).unwrap(), None, "gone");
    assert_eq!(members(one, 1), [host("LAB-*")]);
    assert_eq!(members(one, 2), [host("PC-7")]);
    assert_eq!(
        one("SELECT CAST(count(*) AS TEXT) FROM devices WHERE id = 1"),
        "0"
    );
    assert_eq!(
        one("SELECT CAST(count(*) AS TEXT) FROM screenshots WHERE device_id = 1"),
        "0"
    );
    assert_eq!(
        one("SELECT CAST(count(*) AS TEXT) FROM inventory WHERE device_id = 1"),
        "0"
    );
    assert_eq!(
        one("SELECT CAST(count(*) AS TEXT) FROM screenshots WHERE device_id = 6"),
        "1"
    );
    assert_eq!(
        one("SELECT CAST(count(*) AS TEXT) FROM inventory WHERE device_id = 6"),
        "1"
    );
}

fn check_availability(store: &dyn DevAdminStore) {
    let off = store.availability(1).unwrap();
    assert_eq!(
        (off.public, off.changed_by, off.changed_at),
        (false, None, None)
    );
    store.set_availability(1, true, "hill.admin").unwrap();
    let on = store.availability(1).unwrap();
    assert!(on.public);
    assert_eq!(on.changed_by.as_deref(), Some("hill.admin"));
    assert!(on.changed_at.is_some());
    assert!(!store.availability(2).unwrap().public, "Dale's is its own");
    store.set_availability(1, false, "other.admin").unwrap();
    let off = store.availability(1).unwrap();
    assert!(!off.public);
    assert_eq!(off.changed_by.as_deref(), Some("other.admin"));
}

fn check(store: &dyn DevAdminStore, one: &mut dyn FnMut(&str) -> String) {
    check_tokens(store);
    check_rooms(store, one);
    check_availability(store);
}

#[test]
fn device_administration_is_the_same_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check(&lite, &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap());

    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(
        &mut raw,
        &[
            "schools",
            "devices",
            "groups",
            "screenshots",
            "enrollment_tokens",
        ],
    );
    check(&store, &mut |q| {
        raw.query_one(q, &[]).unwrap().get::<_, String>(0)
    });
}
