//! The directory (LDAP) store: configuration and bind password, syncs of
//! accounts, memberships and groups, the runs kept, local accounts and
//! directory sign-in give the same answers on SQLite and PostgreSQL, from
//! the same rows.

mod common;

use common::pg::Pg;
use lectern_store::directory::{DirAccount, DirectoryStore, SyncWrite};
use lectern_store::{Role, SqliteStore, StoreError};

/// Two schools. Hill's console users: local ones whose names sort
/// differently byte by byte and regardless of case, one with a non-ASCII
/// letter, and amy, whom a directory sign-in made; amy's session and an
/// administrator's. Dale: a local administrator with a session, an account
/// amy that no sign-in made, a membership and a stored configuration.
const ROWS: &str = r#"
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO users (id, school_id, username, password_hash, role, created_at)
        VALUES (1, 1, 'Admin', 'x', 'admin', 1), (2, 1, 'zed', 'x', 'teacher', 1),
               (3, 1, 'amy', 'x', 'teacher', 1), (4, 2, 'dale.admin', 'x', 'admin', 1),
               (5, 1, 'Bob', 'x', 'teacher', 1), (6, 1, 'adam', 'x', 'teacher', 1),
               (7, 1, 'josé', 'x', 'teacher', 1);
    INSERT INTO directory_accounts (school_id, username, dn, disabled, missing, user_id, seen_at)
        VALUES (1, 'amy', 'uid=amy', 0, 0, 3, 1), (2, 'amy', 'uid=amy,dc=dale', 0, 0, NULL, 1);
    INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
        VALUES ('s-amy', 1, 3, 'c', 1, 9999999999999), ('s-admin', 1, 1, 'c', 1, 9999999999999),
               ('s-dale', 2, 4, 'c', 1, 9999999999999);
    INSERT INTO directory_memberships (school_id, username, group_name)
        VALUES (1, 'amy', 'Staff'), (2, 'amy', 'Dale staff');
    INSERT INTO directory_config (school_id, config, bind_password, updated_at)
        VALUES (2, '{"dale":1}', 'dale-pw', 1);
"#;

/// A query's one value, as text.
type One<'a> = &'a mut dyn FnMut(&str) -> String;

fn count(one: One<'_>, q: &str) -> String {
    one(&format!("SELECT CAST(count(*) AS TEXT) FROM {q}"))
}

fn check_config(store: &dyn DirectoryStore) {
    let cfg = |school| store.directory_config(school).unwrap();
    let pair = |c: &str, p: &str| Some((c.to_string(), p.to_string()));
    assert_eq!(cfg(1), None);
    store.set_directory_config(1, r#"{"a":1}"#, None).unwrap();
    assert_eq!(cfg(1), pair(r#"{"a":1}"#, ""), "no password yet");
    store
        .set_directory_config(1, r#"{"a":1}"#, Some("plain"))
        .unwrap();
    store.set_directory_config(1, r#"{"a":2}"#, None).unwrap();
    assert_eq!(cfg(1), pair(r#"{"a":2}"#, "plain"), "password kept");
    assert!(!store
        .reseal_directory_password(1, "wrong", "sealed")
        .unwrap());
    assert_eq!(cfg(1), pair(r#"{"a":2}"#, "plain"));
    assert!(store
        .reseal_directory_password(1, "plain", "sealed")
        .unwrap());
    assert_eq!(cfg(1), pair(r#"{"a":2}"#, "sealed"));
    assert!(
        !store.reseal_directory_password(2, "sealed", "x").unwrap(),
        "Dale's holds its own"
    );
    assert_eq!(cfg(2), pair(r#"{"dale":1}"#, "dale-pw"));
}

fn account(
    username: &str,
    dn: &str,
    disabled: bool,
    missing: bool,
    user: Option<i64>,
) -> DirAccount {
    DirAccount {
        username: username.into(),
        dn: dn.into(),
        disabled,
        missing,
        user_id: user,
    }
}

fn check_sync(store: &dyn DirectoryStore, one: One<'_>, exec: &mut dyn FnMut(&str)) {
    let w = SyncWrite {
        accounts: vec![
            (
                "Cara".into(),
                "uid=cara".into(),
                false,
                vec!["Staff".into(), "Year 7".into()],
            ),
            ("AMY".into(), "uid=amy2".into(), true, vec![]),
        ],
        missing: vec!["nobody".into()],
        groups: vec![
            ("Staff".into(), "cn=staff".into()),
            ("year 7".into(), "cn=y7".into()),
            ("STAFF".into(), "cn=again".into()),
            ("apple".into(), "cn=apple".into()),
            ("Year 10".into(), "cn=y10".into()),
        ],
    };
    assert_eq!(store.apply_directory_sync(1, &w).unwrap(), 1, "amy's");
    assert_eq!(count(one, "sessions WHERE token_hash = 's-amy'"), "0");
    assert_eq!(count(one, "sessions"), "2", "others' stay");
    // By name regardless of case; AMY is the account amy.
    assert_eq!(
        store.directory_accounts(1).unwrap(),
        [
            account("amy", "uid=amy2", true, false, Some(3)),
            account("Cara", "uid=cara", false, false, None),
        ]
    );
    assert_eq!(
        store.directory_accounts(2).unwrap(),
        [account("amy", "uid=amy,dc=dale", false, false, None)]
    );
    assert_eq!(
        count(
            one,
            "directory_memberships WHERE school_id = 1 AND username = 'amy'"
        ),
        "0",
        "a disabled account's groups go"
    );
    assert_eq!(
        count(
            one,
            "directory_memberships WHERE school_id = 1 AND username = 'cara'"
        ),
        "2"
    );
    assert_eq!(count(one, "directory_memberships WHERE school_id = 2"), "1");
    // The first spelling of a name is kept; sorted regardless of case.
    assert_eq!(
        store.directory_group_names(1).unwrap(),
        ["apple", "Staff", "Year 10", "year 7"]
    );
    assert_eq!(
        one("SELECT dn FROM directory_groups WHERE school_id = 1 AND name = 'staff'"),
        "cn=staff"
    );
    assert!(store.directory_group_names(2).unwrap().is_empty());

    // The next sync: Cara is missing, the groups replaced; Dale untouched.
    exec(
        "INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
          VALUES ('s-amy2', 1, 3, 'c', 1, 9999999999999)",
    );
    let w = SyncWrite {
        accounts: vec![],
        missing: vec!["cara".into(), "amy".into()],
        groups: vec![("Only".into(), "cn=only".into())],
    };
    assert_eq!(store.apply_directory_sync(1, &w).unwrap(), 1);
    assert_eq!(
        store.directory_accounts(1).unwrap(),
        [
            account("amy", "uid=amy2", true, true, Some(3)),
            account("Cara", "uid=cara", true, true, None),
        ]
    );
    assert_eq!(count(one, "directory_memberships WHERE school_id = 1"), "0");
    assert_eq!(store.directory_group_names(1).unwrap(), ["Only"]);
    assert_eq!(count(one, "sessions WHERE school_id = 2"), "1");
    assert_eq!(
        store.directory_accounts(2).unwrap(),
        [account("amy", "uid=amy,dc=dale", false, false, None)]
    );
}

fn check_runs(store: &dyn DirectoryStore) {
    let dale = store
        .record_directory_sync(2, 5, "schedule", true, "error", &serde_json::json!("down"))
        .unwrap();
    let mut last = 0;
    for i in 0..60 {
        let trigger = if i % 2 == 0 { "manual" } else { "schedule" };
        last = store
            .record_directory_sync(
                1,
                i,
                trigger,
                i % 2 == 0,
                "ok",
                &serde_json::json!({"i": i}),
            )
            .unwrap();
    }
    let runs = store.directory_syncs(1, 100).unwrap();
    assert_eq!(runs.len(), 50, "the last fifty kept");
    assert_eq!(runs[0].id, last);
    assert!(runs.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let newest = &runs[0];
    assert_eq!(
        (
            newest.at,
            newest.trigger.as_str(),
            newest.dry_run,
            newest.outcome.as_str()
        ),
        (59, "schedule", false, "ok")
    );
    assert_eq!(newest.summary["i"], 59);
    assert_eq!(runs[49].summary["i"], 10);
    assert!(runs[1].dry_run);
    assert_eq!(store.directory_syncs(1, 3).unwrap().len(), 3);
    let theirs = store.directory_syncs(2, 10).unwrap();
    assert_eq!(theirs.len(), 1, "Dale's run is not pruned by Hill's");
    assert_eq!(
        (theirs[0].id, theirs[0].dry_run, theirs[0].summary.clone()),
        (dale, true, serde_json::json!("down"))
    );
}

fn check_sign_in(store: &dyn DirectoryStore, one: One<'_>) {
    // Byte by byte, without the accounts a directory sign-in made.
    assert_eq!(
        store.local_usernames(1).unwrap(),
        ["Admin", "Bob", "adam", "josé", "zed"]
    );
    assert_eq!(store.local_usernames(2).unwrap(), ["dale.admin"]);
    assert!(store.local_user_named(1, "admin").unwrap());
    assert!(store.local_user_named(1, "ADAM").unwrap());
    assert!(store.local_user_named(1, "JOSé").unwrap());
    assert!(!store.local_user_named(1, "JOSÉ").unwrap(), "ASCII only");
    assert!(
        !store.local_user_named(1, "amy").unwrap(),
        "the directory's"
    );
    assert!(!store.local_user_named(1, "nobody").unwrap());
    assert!(!store.local_user_named(2, "admin").unwrap(), "Hill's");

    // A local account is refused, and nothing is written.
    let err = store
        .directory_sign_in(1, "ADMIN", "uid=admin", Role::Admin, &["Staff".into()])
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
    assert_eq!(
        count(one, "directory_accounts WHERE username = 'admin'"),
        "0"
    );
    assert_eq!(count(one, "directory_memberships WHERE school_id = 1"), "0");

    // The account made before: its user, with the new role, enabled again.
    let amy = store
        .directory_sign_in(1, "AMY", "uid=amy3", Role::Admin, &["Staff".into()])
        .unwrap();
    assert_eq!(
        (amy.id, amy.school_id, amy.username.as_str(), amy.role),
        (3, 1, "amy", Role::Admin)
    );
    assert_eq!(
        store.directory_accounts(1).unwrap()[0],
        account("amy", "uid=amy3", false, false, Some(3))
    );
    assert_eq!(count(one, "directory_memberships WHERE school_id = 1"), "1");

    // No user yet: one is made, which is no local account.
    let cara = store
        .directory_sign_in(1, "Cara", "uid=cara", Role::Teacher, &[])
        .unwrap();
    assert_eq!(
        (cara.school_id, cara.username.as_str(), cara.role),
        (1, "Cara", Role::Teacher)
    );
    assert!(cara.id > 7);
    assert_eq!(
        store.directory_accounts(1).unwrap()[1],
        account("Cara", "uid=cara", false, false, Some(cara.id))
    );
    assert!(
        one(&format!(
            "SELECT password_hash FROM users WHERE id = {}",
            cara.id
        ))
        .len()
            > 20,
        "a password nobody knows"
    );
    assert!(!store.local_user_named(1, "cara").unwrap());
    assert_eq!(
        store.local_usernames(1).unwrap(),
        ["Admin", "Bob", "adam", "josé", "zed"]
    );

    // Dale's amy is Dale's own user; Hill's amy is untouched.
    let dale_amy = store
        .directory_sign_in(2, "amy", "uid=amy,dc=dale", Role::Teacher, &[])
        .unwrap();
    assert_eq!((dale_amy.school_id, dale_amy.role), (2, Role::Teacher));
    assert_ne!(dale_amy.id, 3);
    assert_eq!(one("SELECT role FROM users WHERE id = 3"), "admin");
    assert_eq!(store.local_usernames(2).unwrap(), ["dale.admin"]);
}

fn check(store: &dyn DirectoryStore, one: One<'_>, exec: &mut dyn FnMut(&str)) {
    check_config(store);
    check_sync(store, one, exec);
    check_runs(store);
    check_sign_in(store, one);
}

#[test]
fn the_directory_is_the_same_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check(
        &lite,
        &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap(),
        &mut |q| raw.execute_batch(q).unwrap(),
    );

    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(&mut raw, &["schools", "users"]);
    let raw = std::cell::RefCell::new(raw);
    check(
        &store,
        &mut |q| {
            raw.borrow_mut()
                .query_one(q, &[])
                .unwrap()
                .get::<_, String>(0)
        },
        &mut |q| raw.borrow_mut().batch_execute(q).unwrap(),
    );
}
