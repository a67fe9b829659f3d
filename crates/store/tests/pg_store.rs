//! The store's queries that run on both engines give the same answers on
//! both: each check below runs on `SqliteStore` and on `PgStore` against a
//! real PostgreSQL the test starts, from the same rows.

mod common;

use common::pg::Pg;
use lectern_policy::access::{Access, AccessRule, Principal};
use lectern_policy::groups::{Group, GroupKind, Member, Priority};
use lectern_proto::signin::StudentSecret;
use lectern_proto::ActivityEvent;
use lectern_store::accounts::{AccountRefusal, AccountsStore};
use lectern_store::auditset::{AuditFilter, AuditSetStore, SettingRow};
use lectern_store::aup::{AupAcceptance, AupStore, NewAupVersion};
use lectern_store::grants::GrantStore;
use lectern_store::mail::MailStore;
use lectern_store::review::{AssigneeFilter, CaseFilter, CaseStatus};
use lectern_store::schoolcode::SchoolCodeStore;
use lectern_store::students::StudentStore;
use lectern_store::{
    hash_secret, ActivityFilter, Alias, AliasKind, AuditReader, DeviceAuth, HandClose, HandOutcome,
    InventoryRow, Lesson, NewAudit, NewChat, NewDevice, NewHelpRequest, NewScreenshot, Person,
    PgStore, PowerSchedule, ReportDef, ReportKind, ReportScope, Role, School, SqliteStore, Store,
    StoreError, TargetStatus, TargetUpdate, Violation, ViolationFilter, SCREENSHOTS_PER_DEVICE,
};

/// The same rows on either engine: two schools, their administrators, a
/// teacher of the first school who is disabled, and a live session.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO users (id, school_id, username, password_hash, role, created_at)
        VALUES (1, 1, 'hill.admin', 'x', 'admin', 1), (2, 2, 'dale.admin', 'x', 'admin', 1);
    INSERT INTO users (id, school_id, username, password_hash, role, created_at, disabled_at)
        VALUES (3, 1, 'gone', 'x', 'teacher', 1, 5);
    INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
        VALUES ('t', 2, 1, 'c', 1, 9999999999999);
    INSERT INTO people (id, school_id, display_name, created_at)
        VALUES (1, 1, 'Amy Ng', 1), (2, 2, 'Ben Ode', 1);
    INSERT INTO person_aliases (school_id, person_id, kind, value)
        VALUES (1, 1, 'roster', 'amy.ng'), (1, 1, 'os', 'ANG'), (2, 2, 'roster', 'ben.ode');
";

fn check_grants(store: &dyn GrantStore, sessions_left: &mut dyn FnMut() -> i64) {
    let names = |store: &dyn GrantStore, user| -> Vec<(String, &'static str, bool)> {
        store
            .schools_of(user)
            .unwrap()
            .into_iter()
            .map(|a| (a.school.name, a.role.as_str(), a.home))
            .collect()
    };
    assert_eq!(names(store, 1), [("Hill".to_string(), "admin", true)]);
    assert!(
        !store.grant_school(1, 1, Role::Admin, "op").unwrap(),
        "own school"
    );
    assert!(
        !store.grant_school(1, 9, Role::Admin, "op").unwrap(),
        "no such school"
    );
    assert!(
        !store.grant_school(99, 2, Role::Admin, "op").unwrap(),
        "no such user"
    );
    assert!(store.grant_school(1, 2, Role::Teacher, "op").unwrap());
    // Granted again: the role replaced, not a second grant.
    assert!(store.grant_school(1, 2, Role::Admin, "op").unwrap());
    assert_eq!(
        names(store, 1),
        [
            ("Hill".to_string(), "admin", true),
            ("Dale".to_string(), "admin", false)
        ]
    );
    assert!(store.grant_school(3, 2, Role::Teacher, "op").unwrap());
    assert!(names(store, 3).is_empty(), "a disabled user acts nowhere");
    assert_eq!(sessions_left(), 1);
    assert!(store.revoke_school(1, 2).unwrap());
    assert_eq!(sessions_left(), 0, "the session in the revoked school ends");
    assert!(
        !store.revoke_school(1, 2).unwrap(),
        "nothing left to revoke"
    );
    assert_eq!(names(store, 1), [("Hill".to_string(), "admin", true)]);
}

fn check_school_codes(store: &dyn SchoolCodeStore) {
    let info = NewDevice {
        hostname: "LIB-PC01".into(),
        os: "linux".into(),
        agent_version: "1".into(),
    };
    assert_eq!(store.school_code(1).unwrap(), None);
    assert!(store
        .set_school_code(1, Some("K7PQ2M9XTR"), "hill.admin", 5)
        .unwrap());
    assert!(
        !store
            .set_school_code(2, Some("K7PQ2M9XTR"), "dale.admin", 6)
            .unwrap(),
        "another school's code"
    );
    let row = store.school_code(1).unwrap().unwrap();
    assert_eq!(
        (row.code.as_str(), row.created_by.as_str(), row.created_at),
        ("K7PQ2M9XTR", "hill.admin", 5)
    );
    let (school, device, secret) = store
        .enroll_with_school_code("K7PQ2M9XTR", &info)
        .unwrap()
        .unwrap();
    assert_eq!(
        (school, device.school_id, device.hostname.as_str()),
        (1, 1, "LIB-PC01")
    );
    assert!(secret.len() > 20);
    assert!(store
        .enroll_with_school_code("NOSUCHCODE", &info)
        .unwrap()
        .is_none());
    // A new code replaces the old, which stops working; none removes it.
    assert!(store
        .set_school_code(1, Some("M2XT7RQ9PK"), "hill.admin", 7)
        .unwrap());
    assert!(store
        .enroll_with_school_code("K7PQ2M9XTR", &info)
        .unwrap()
        .is_none());
    assert!(store.set_school_code(1, None, "hill.admin", 8).unwrap());
    assert!(store
        .enroll_with_school_code("M2XT7RQ9PK", &info)
        .unwrap()
        .is_none());
}

fn check_students(store: &dyn StudentStore) {
    let frog = StudentSecret::Picture {
        picture: vec![2, 9, 14],
    };
    let wrong = StudentSecret::Picture {
        picture: vec![2, 9, 13],
    };
    assert!(store.set_student_secret(1, 1, &frog, "hill.admin").unwrap());
    assert!(
        !store.set_student_secret(1, 2, &frog, "hill.admin").unwrap(),
        "another school's person"
    );
    let info = store.student_secret(1, 1).unwrap().unwrap();
    assert_eq!(
        (info.kind.as_str(), info.set_by.as_str()),
        ("picture", "hill.admin")
    );
    // Any of her names, in any case; only her pictures; only her school.
    for name in ["amy.ng", "AMY.NG", " ang "] {
        let s = store.verify_student(1, name, &frog).unwrap().unwrap();
        assert_eq!(
            (s.person_id, s.display_name.as_str()),
            (1, "Amy Ng"),
            "{name}"
        );
    }
    assert_eq!(
        store.verify_student(1, "ANG", &frog).unwrap().unwrap().name,
        "ANG"
    );
    assert!(store.verify_student(1, "amy.ng", &wrong).unwrap().is_none());
    assert!(store.verify_student(2, "amy.ng", &frog).unwrap().is_none());
    assert!(store.verify_student(1, "nobody", &frog).unwrap().is_none());
    assert!(store.clear_student_secret(1, 1).unwrap());
    assert!(!store.clear_student_secret(1, 1).unwrap());
    assert!(store.verify_student(1, "amy.ng", &frog).unwrap().is_none());
}

/// Adds a violation of `device` at `severity` in `category` (raw SQL, the
/// same on both engines).
fn violation(device: i64, severity: i64, category: &str) -> String {
    format!(
        "INSERT INTO violations (school_id, device_id, term, category, severity, matched, context, source, action, at)
         VALUES (1, {device}, 'x', '{category}', {severity}, 'x', 'x', 'typed', 'log', 1)"
    )
}

fn check_mail(store: &dyn MailStore, sql: &mut dyn FnMut(&str)) {
    assert!(store.mail_settings(1).unwrap().is_none());
    sql(&violation(1, 3, "before"));
    store
        .set_mail_settings(1, "{}", Some("v1:sealed"), 100, "hill.admin", 1)
        .unwrap();
    store
        .set_mail_settings(1, "{\"a\":1}", None, 100, "hill.admin", 2)
        .unwrap();
    let row = store.mail_settings(1).unwrap().unwrap();
    assert_eq!(
        (row.config.as_str(), row.password.as_str(), row.updated_at),
        ("{\"a\":1}", "v1:sealed", 2),
        "the password kept when not given"
    );
    store
        .set_mail_rules(1, &["{\"r\":1}".into(), "{\"r\":2}".into()], "a", 3)
        .unwrap();
    store
        .set_mail_rules(1, &["{\"r\":3}".into()], "a", 4)
        .unwrap();
    let rules: Vec<String> = store
        .mail_rules(1)
        .unwrap()
        .into_iter()
        .map(|r| r.rule)
        .collect();
    assert_eq!(rules, ["{\"r\":3}"]);
    assert!(
        store.mail_rules(2).unwrap().is_empty(),
        "the other school's"
    );

    // The digest covers what came after the first save, and is claimed once.
    sql(&violation(1, 3, "bullying"));
    sql(&violation(1, 3, "bullying"));
    sql(&violation(2, 5, "self-harm"));
    let (after, upto) = store.claim_digest(1, 100, 200).unwrap().unwrap();
    assert_eq!(upto - after, 3);
    assert_eq!(
        store.claim_digest(1, 100, 200).unwrap(),
        None,
        "claimed once"
    );
    let counts: Vec<(i64, u8, String, i64)> = store
        .violation_counts(1, after, upto)
        .unwrap()
        .into_iter()
        .map(|c| (c.device_id, c.severity, c.category, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            (1, 3, "bullying".to_string(), 2),
            (2, 5, "self-harm".to_string(), 1)
        ]
    );
    store
        .set_mail_settings(1, "{}", Some(""), 0, "a", 5)
        .unwrap();
    assert_eq!(
        store.mail_settings(1).unwrap().unwrap().password,
        "",
        "cleared"
    );
}

fn check_accounts(store: &dyn AccountsStore, sql: &mut dyn FnMut(&str)) {
    let names: Vec<String> = store
        .list_accounts(1)
        .unwrap()
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["gone", "hill.admin"]);
    let refused = |c: lectern_store::accounts::Changed| c.unwrap_err();
    assert_eq!(
        refused(store.set_disabled(1, "hill.admin", true).unwrap()),
        AccountRefusal::LastAdmin
    );
    assert_eq!(
        refused(store.delete_account(1, "nobody").unwrap()),
        AccountRefusal::NotFound
    );
    // A second administrator (enabled): the first may be disabled, which
    // ends its sessions.
    store.set_role(1, "gone", Role::Admin).unwrap().unwrap();
    assert_eq!(
        refused(store.set_disabled(1, "hill.admin", true).unwrap()),
        AccountRefusal::LastAdmin,
        "a disabled administrator does not count"
    );
    store.set_disabled(1, "gone", false).unwrap().unwrap();
    sql(
        "INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
         VALUES ('s1', 1, 1, 'c', 1, 9999999999999), ('s2', 1, 1, 'c', 1, 9999999999999)",
    );
    let ch = store.set_disabled(1, "hill.admin", true).unwrap().unwrap();
    assert_eq!(ch.sessions_ended, 2);
    assert!(!ch.before.disabled && ch.after.unwrap().disabled);
    store
        .set_password(1, "gone", "a-new-long-password", true, None)
        .unwrap()
        .unwrap();
    assert!(
        store
            .account(1, "gone")
            .unwrap()
            .unwrap()
            .must_change_password
    );
    assert_eq!(
        refused(store.delete_account(1, "gone").unwrap()),
        AccountRefusal::LastAdmin
    );
    store.set_disabled(1, "hill.admin", false).unwrap().unwrap();
    store.delete_account(1, "gone").unwrap().unwrap();
    assert!(store.account(1, "gone").unwrap().is_none());
}

/// Schools, users, passwords and sessions. Returns how many built-in
/// groups a new school got (the same on both engines, checked by the caller).
fn check_schools(
    store: &dyn Store,
    grants: &dyn GrantStore,
    count: &mut dyn FnMut(&str) -> i64,
    sql: &mut dyn FnMut(&str),
) -> i64 {
    let names = |v: Vec<School>| v.into_iter().map(|s| (s.id, s.name)).collect::<Vec<_>>();
    assert_eq!(store.first_school().unwrap().unwrap().name, "Hill");
    assert_eq!(store.school(2).unwrap().unwrap().name, "Dale");
    assert!(store.school(99).unwrap().is_none());
    let vale = store.create_school("Vale").unwrap();
    assert_eq!(vale, 3, "numbered after the schools there");
    assert_eq!(
        names(store.schools().unwrap()),
        [(1, "Hill".into()), (2, "Dale".into()), (3, "Vale".into())]
    );
    let builtin = count("SELECT count(*) FROM groups WHERE school_id = 3 AND builtin IS NOT NULL");
    assert!(builtin > 0);

    let id = store
        .create_user(vale, "vale.admin", "a long password", Role::Admin)
        .unwrap();
    assert!(matches!(
        store.create_user(vale, "vale.admin", "another one", Role::Teacher),
        Err(StoreError::Exists(_))
    ));
    // The same name in another school is another user.
    store
        .create_user(1, "vale.admin", "a third password", Role::Teacher)
        .unwrap();
    assert_eq!(store.schools_with_user("vale.admin").unwrap(), [1, vale]);
    assert_eq!(
        store.schools_with_user("gone").unwrap(),
        Vec::<i64>::new(),
        "disabled"
    );
    assert!(store
        .verify_password(vale, "vale.admin", "wrong")
        .unwrap()
        .is_none());
    assert!(store
        .verify_password(vale, "nobody", "a long password")
        .unwrap()
        .is_none());
    let user = store
        .verify_password(vale, "vale.admin", "a long password")
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.id, user.school_id, user.role),
        (id, vale, Role::Admin)
    );
    assert_eq!(
        store
            .list_users(vale)
            .unwrap()
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["vale.admin"]
    );

    let (token, s) = store.create_session(&user, 60_000).unwrap();
    assert!(!s.must_change_password);
    let back = store.session(&token).unwrap().unwrap();
    assert_eq!(
        (back.user.id, back.csrf_token, back.expires_at),
        (id, s.csrf_token, s.expires_at)
    );
    assert!(store.session("no such token").unwrap().is_none());
    store.delete_session(&token).unwrap();
    assert!(store.session(&token).unwrap().is_none());
    sql("UPDATE users SET must_change_password = 1 WHERE school_id = 3");
    let (token, s) = store.create_session(&user, 60_000).unwrap();
    assert!(s.must_change_password);
    assert!(store.session(&token).unwrap().unwrap().must_change_password);
    assert!(
        count("SELECT count(*) FROM users WHERE school_id = 3 AND last_sign_in IS NOT NULL") == 1
    );

    // A session in another school: only under a grant, with its role,
    // named for the user's own school.
    sql(&format!(
        "INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
         VALUES ('{}', 2, {id}, 'c', 1, 9999999999999)",
        hash_secret("away")
    ));
    assert!(store.session("away").unwrap().is_none(), "no grant");
    assert!(grants.grant_school(id, 2, Role::Teacher, "op").unwrap());
    let away = store.session("away").unwrap().unwrap();
    assert_eq!(
        (
            away.user.school_id,
            away.user.username.as_str(),
            away.user.role
        ),
        (2, "vale.admin (Vale)", Role::Teacher)
    );
    builtin
}

fn info(name: &str) -> NewDevice {
    NewDevice {
        hostname: name.into(),
        os: "linux".into(),
        agent_version: "1".into(),
    }
}

/// Enrollment tokens, devices, their credentials and names, commands and
/// outcomes.
fn check_fleet(store: &dyn Store) {
    let far = 9_999_999_999_999;
    let (token, rec) = store
        .create_enrollment_token(1, "Lab 4", 2, far, "hill.admin")
        .unwrap();
    assert_eq!(rec.uses_left, 2);
    let (old, _) = store
        .create_enrollment_token(1, "Old", 5, 1, "hill.admin")
        .unwrap();
    let listed: Vec<(String, i64)> = store
        .list_enrollment_tokens(1)
        .unwrap()
        .into_iter()
        .map(|t| (t.label, t.uses_left))
        .collect();
    assert_eq!(listed, [("Lab 4".into(), 2), ("Old".into(), 5)]);
    assert!(store.list_enrollment_tokens(2).unwrap().is_empty());

    let (b, b_secret) = store
        .enroll_device(&token, &info("lab-b"))
        .unwrap()
        .unwrap();
    let (a, a_secret) = store
        .enroll_device(&token, &info("lab-a"))
        .unwrap()
        .unwrap();
    assert_eq!((a.school_id, b.school_id), (1, 1));
    assert!(
        store.enroll_device(&token, &info("x")).unwrap().is_none(),
        "used up"
    );
    assert!(
        store.enroll_device(&old, &info("x")).unwrap().is_none(),
        "expired"
    );
    assert!(store
        .enroll_device("no such", &info("x"))
        .unwrap()
        .is_none());
    assert!(
        matches!(store.authenticate_device(a.id, &a_secret).unwrap(), DeviceAuth::Ok(d) if d.id == a.id)
    );
    assert!(matches!(
        store.authenticate_device(a.id, &b_secret).unwrap(),
        DeviceAuth::Unknown
    ));
    assert!(matches!(
        store.authenticate_device(999, &a_secret).unwrap(),
        DeviceAuth::Unknown
    ));

    // A device reporting another name keeps its own until it is accepted,
    // by its own school only.
    store
        .touch_device(a.id, &info("renamed"), r#"{"locked":true}"#)
        .unwrap();
    // (Only these two: the school has others from the checks before.)
    let names = |store: &dyn Store| -> Vec<(String, Option<String>)> {
        store
            .list_devices(1)
            .unwrap()
            .into_iter()
            .filter(|d| d.id == a.id || d.id == b.id)
            .map(|d| (d.hostname, d.reported_name))
            .collect()
    };
    assert_eq!(
        names(store),
        [
            ("lab-a".into(), Some("renamed".into())),
            ("lab-b".into(), None)
        ]
    );
    assert!(
        store.accept_device_name(2, a.id).unwrap().is_none(),
        "another school"
    );
    assert_eq!(
        store.accept_device_name(1, a.id).unwrap(),
        Some(("lab-a".into(), "renamed".into()))
    );
    assert!(
        store.accept_device_name(1, a.id).unwrap().is_none(),
        "nothing new"
    );
    assert_eq!(
        names(store),
        [("lab-b".into(), None), ("renamed".into(), None)]
    );
    assert!(store
        .list_devices(2)
        .unwrap()
        .iter()
        .all(|d| d.school_id == 2));

    assert!(!store.revoke_device(2, b.id).unwrap(), "another school");
    assert!(store.revoke_device(1, b.id).unwrap());
    assert!(!store.revoke_device(1, b.id).unwrap(), "already");
    assert!(matches!(
        store.authenticate_device(b.id, &b_secret).unwrap(),
        DeviceAuth::Revoked
    ));

    let rec = store
        .create_command(
            1,
            "hill.admin",
            r#"{"type":"lock"}"#,
            &[(a.id, TargetStatus::Pending), (b.id, TargetStatus::Offline)],
        )
        .unwrap();
    let up = |d, status, reason: Option<&str>| TargetUpdate {
        command_id: rec.id,
        device_id: d,
        status,
        reason: reason.map(str::to_string),
        at: 5,
    };
    store
        .update_targets(&[
            up(a.id, TargetStatus::Done, None),
            up(a.id, TargetStatus::Failed, Some("gateway lost")),
            up(b.id, TargetStatus::Done, None),
        ])
        .unwrap();
    let back = store.command(1, rec.id).unwrap().unwrap();
    let outcomes: Vec<(i64, TargetStatus)> = back
        .targets
        .iter()
        .map(|t| (t.device_id, t.status))
        .collect();
    // By device: b enrolled first.
    assert_eq!(
        outcomes,
        [(b.id, TargetStatus::Offline), (a.id, TargetStatus::Done)]
    );
    assert_eq!(back.actor, "hill.admin");
    assert!(
        store.command(2, rec.id).unwrap().is_none(),
        "another school's"
    );
}

/// Groups (a taken name, built-in ones kept), directory groups, access
/// rules that forget a deleted group, lessons and counters; in school 3,
/// which has only its built-in groups.
fn check_groups(store: &dyn Store) {
    let builtin = store.list_groups(3).unwrap();
    assert!(!builtin.is_empty() && builtin.iter().all(|g| g.builtin));
    let group = |name: &str| Group {
        id: 0,
        name: name.into(),
        kind: GroupKind::User,
        priority: Priority::Medium,
        members: vec![Member::User("amy".into())],
        settings: Default::default(),
    };
    let g = store.create_group(3, &group("7B")).unwrap();
    assert!(!g.builtin);
    assert!(matches!(
        store.create_group(3, &group("7B")),
        Err(StoreError::Exists(_))
    ));
    assert!(
        store.create_group(1, &group("7B")).is_ok(),
        "another school's name"
    );
    let mut renamed = g.group.clone();
    renamed.name = "7C".into();
    renamed.priority = Priority::High;
    let back = store.update_group(3, &renamed).unwrap().unwrap();
    assert_eq!(
        (back.group.name.as_str(), back.group.priority),
        ("7C", Priority::High)
    );
    assert!(
        store.update_group(2, &renamed).unwrap().is_none(),
        "another school's"
    );
    let taken = store.create_group(3, &group("8A")).unwrap();
    let mut clash = taken.group.clone();
    clash.name = "7C".into();
    assert!(
        matches!(store.update_group(3, &clash), Err(StoreError::Exists(_))),
        "renamed to a taken name"
    );
    assert_eq!(
        store
            .get_group(3, g.group.id)
            .unwrap()
            .unwrap()
            .group
            .members,
        g.group.members
    );
    assert!(
        !store.delete_group(3, builtin[0].group.id).unwrap(),
        "built in"
    );

    // A rule giving control of the group forgets it when it goes.
    let rule = AccessRule {
        id: 0,
        principal: Principal::User("vale.admin".into()),
        features: ["command.lock".to_string()].into(),
        group_access: [(g.group.id, Access::Control)].into(),
        bypass_privacy: false,
    };
    let saved = store.save_access_rule(3, &rule).unwrap().unwrap();
    assert!(saved.id > 0);
    assert!(store
        .save_access_rule(
            3,
            &AccessRule {
                id: 999,
                ..rule.clone()
            }
        )
        .unwrap()
        .is_none());
    assert!(store.delete_group(3, g.group.id).unwrap());
    assert!(store.get_group(3, g.group.id).unwrap().is_none());
    let rules = store.access_rules(3).unwrap();
    assert_eq!(rules.len(), 1);
    assert!(
        rules[0].group_access.is_empty(),
        "the deleted group's access went with it"
    );
    assert!(
        !store.delete_access_rule(2, saved.id).unwrap(),
        "another school's"
    );
    assert!(store.delete_access_rule(3, saved.id).unwrap());

    store
        .set_directory_groups(3, "amy", &["Staff".into(), "Year 7".into(), "Staff".into()])
        .unwrap();
    store
        .set_directory_groups(3, "ben", &["Year 7".into()])
        .unwrap();
    store
        .set_directory_groups(3, "ben", &["Year 8".into()])
        .unwrap();
    assert_eq!(
        store.directory(3).unwrap(),
        [
            (
                "amy".to_string(),
                vec!["Staff".to_string(), "Year 7".to_string()]
            ),
            ("ben".to_string(), vec!["Year 8".to_string()])
        ]
    );

    let lesson = store
        .create_lesson(
            3,
            &Lesson {
                id: 0,
                group_id: builtin[0].group.id,
                teacher: "vale.admin".into(),
                restrictions: Default::default(),
                starts_at: 100,
                ends_at: 200,
                ended_at: None,
            },
        )
        .unwrap();
    assert!(lesson.id > 0);
    assert_eq!(store.lessons_since(3, 150).unwrap().len(), 1);
    assert_eq!(
        store
            .end_lesson(3, lesson.id, 120)
            .unwrap()
            .unwrap()
            .ended_at,
        Some(120)
    );
    assert!(
        store.lessons_since(3, 150).unwrap().is_empty(),
        "ended early"
    );
    assert!(
        store.end_lesson(2, lesson.id, 130).unwrap().is_none(),
        "another school's"
    );
    assert_eq!(
        (1..=3)
            .map(|_| store.bump_counter(3, "policy").unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(store.bump_counter(1, "policy").unwrap(), 1, "per school");
}

/// People and their names (one name, one person, any case), console
/// preferences, and the audit log as each reader may read it; in school 3.
fn check_people_and_audit(store: &dyn Store) {
    let alias = |kind, value: &str| Alias {
        kind,
        value: value.into(),
    };
    let zoe = store
        .save_person(
            3,
            &Person {
                id: 0,
                display_name: "Zoë Brook".into(),
                aliases: vec![
                    alias(AliasKind::OsLogin, "zbrook"),
                    alias(AliasKind::Email, "zoe@vale"),
                ],
            },
        )
        .unwrap()
        .unwrap();
    assert!(zoe.id > 0);
    let clash = Person {
        id: 0,
        display_name: "Other".into(),
        aliases: vec![alias(AliasKind::Roster, "ZBrook")],
    };
    assert!(
        matches!(store.save_person(3, &clash), Err(StoreError::Exists(_))),
        "any case"
    );
    assert_eq!(
        store.list_people(3).unwrap(),
        std::slice::from_ref(&zoe),
        "nothing of the refused one"
    );
    let renamed = Person {
        display_name: "Zoë Brook-Hill".into(),
        aliases: vec![alias(AliasKind::OsLogin, "zbh")],
        ..zoe.clone()
    };
    assert_eq!(store.save_person(3, &renamed).unwrap().unwrap(), renamed);
    assert!(
        store.save_person(2, &renamed).unwrap().is_none(),
        "another school's"
    );
    assert_eq!(store.get_person(3, zoe.id).unwrap().unwrap(), renamed);
    assert!(!store.delete_person(2, zoe.id).unwrap());
    assert!(store.delete_person(3, zoe.id).unwrap());
    assert!(store.get_person(3, zoe.id).unwrap().is_none());
    // Listed by name byte by byte on both engines, whatever the locale.
    for name in ["amy Lee", "Ben Ode", "Zed Ali"] {
        let p = Person {
            id: 0,
            display_name: name.into(),
            aliases: vec![],
        };
        store.save_person(3, &p).unwrap().unwrap();
    }
    let names: Vec<String> = store
        .list_people(3)
        .unwrap()
        .into_iter()
        .map(|p| p.display_name)
        .collect();
    assert_eq!(names, ["Ben Ode", "Zed Ali", "amy Lee"]);

    assert!(store.preferences(3, 1).unwrap().is_none());
    let add = |old: Option<String>| format!("{}+", old.unwrap_or_default());
    assert_eq!(store.update_preferences(3, 1, &add).unwrap(), "+");
    assert_eq!(store.update_preferences(3, 1, &add).unwrap(), "++");
    assert_eq!(store.preferences(3, 1).unwrap().as_deref(), Some("++"));

    let entry = |actor: &str, devices: Vec<i64>| NewAudit {
        school_id: 3,
        actor: actor.into(),
        address: None,
        action: "command.lock".into(),
        detail: String::new(),
        devices,
        command_id: None,
        outcome: "ok".into(),
    };
    let ids: Vec<i64> = [
        entry("amy", vec![]),
        entry("ben", vec![1, 2]),
        entry("ben", vec![1, 5]),
        entry("ben", vec![]),
    ]
    .iter()
    .map(|e| store.audit(e).unwrap())
    .collect();
    let read = |reader: Option<&AuditReader>, before| -> Vec<i64> {
        store
            .audit_list(3, 10, before, reader)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(read(None, None), [ids[3], ids[2], ids[1], ids[0]]);
    assert_eq!(read(None, Some(ids[2])), [ids[1], ids[0]]);
    // Amy sees her own, and what names only devices she sees.
    let amy = AuditReader {
        username: "amy".into(),
        devices: vec![1, 2, 3],
    };
    assert_eq!(read(Some(&amy), None), [ids[1], ids[0]]);
    let back = &store.audit_list(3, 1, None, Some(&amy)).unwrap()[0];
    assert_eq!(
        (back.actor.as_str(), &back.devices[..]),
        ("ben", &[1, 2][..])
    );
    assert!(store
        .audit_list(2, 10, None, None)
        .unwrap()
        .iter()
        .all(|e| !ids.contains(&e.id)));
}

/// Activity: numbered events stored once, attributed to the person whose
/// name the user was, filtered (text literally, `%` included); in school 3.
fn check_activity(store: &dyn Store) {
    let amy = store
        .save_person(
            3,
            &Person {
                id: 0,
                display_name: "Amy Ng".into(),
                aliases: vec![Alias {
                    kind: AliasKind::OsLogin,
                    value: "amy".into(),
                }],
            },
        )
        .unwrap()
        .unwrap();
    let ev = |kind: &str, url: &str, at| ActivityEvent {
        kind: kind.into(),
        user: Some("amy".into()),
        url: Some(url.into()),
        title: Some(format!("Title of {url}")),
        app: None,
        at,
        blocked: false,
    };
    let batch = [
        ev("web", "https://a.example/", 1),
        ev("web", "https://b.example/100%", 2),
    ];
    assert_eq!(store.add_activity(3, 7, Some(10), &batch).unwrap(), 2);
    let replay = [batch[1].clone(), ev("app", "https://c.example/", 3)];
    assert_eq!(
        store.add_activity(3, 7, Some(11), &replay).unwrap(),
        1,
        "a replay adds what is new"
    );
    assert_eq!(store.add_activity(3, 8, None, &batch[..1]).unwrap(), 1);
    assert_eq!(
        store.add_activity(3, 8, None, &batch[..1]).unwrap(),
        1,
        "unnumbered: always new"
    );
    let f = |f: ActivityFilter| {
        store
            .activity(3, &ActivityFilter { limit: 100, ..f })
            .unwrap()
    };
    let all = f(ActivityFilter::default());
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    assert!(all
        .iter()
        .all(|r| r.person_id == Some(amy.id) && r.person.as_deref() == Some("Amy Ng")));
    let n = |filter| f(filter).len();
    assert_eq!(
        n(ActivityFilter {
            devices: Some(vec![7]),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        n(ActivityFilter {
            devices: Some(vec![]),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        n(ActivityFilter {
            kind: Some("app".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        n(ActivityFilter {
            since: Some(2),
            until: Some(3),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        n(ActivityFilter {
            user: Some("amy".into()),
            ..Default::default()
        }),
        5
    );
    assert_eq!(
        n(ActivityFilter {
            text: Some("TITLE OF HTTPS://B".into()),
            ..Default::default()
        }),
        1
    );
    let hits = f(ActivityFilter {
        text: Some("100%".into()),
        ..Default::default()
    });
    assert_eq!((hits.len(), hits[0].seq), (1, Some(11)));
    assert_eq!(
        n(ActivityFilter {
            text: Some("%".into()),
            ..Default::default()
        }),
        1,
        "literal"
    );
    assert!(store
        .activity(
            2,
            &ActivityFilter {
                limit: 100,
                ..Default::default()
            }
        )
        .unwrap()
        .is_empty());
    // Attributed whatever the case the device wrote the name in.
    let shouted = ActivityEvent {
        user: Some("AMY".into()),
        ..ev("web", "https://d.example/", 4)
    };
    store.add_activity(3, 9, None, &[shouted]).unwrap();
    let last = &f(ActivityFilter::default())[0];
    assert_eq!(
        (last.user.as_deref(), last.person_id),
        (Some("AMY"), Some(amy.id))
    );
}

/// Violations (attributed, filtered, screenshots counted), report
/// definitions and documents; in school 3, after `check_activity` (Amy).
fn check_safety(store: &dyn Store) {
    let v = |device, severity, category: &str, matched: &str, at| Violation {
        id: 0,
        device_id: device,
        user: Some("Amy".into()),
        person_id: None,
        person: None,
        term: "knife".into(),
        category: category.into(),
        severity,
        matched: matched.into(),
        context: format!("… {matched} …"),
        source: "typed".into(),
        action: "alert".into(),
        screenshots: 0,
        at,
        retrospective: false,
    };
    let a = store
        .add_violation(3, &v(7, 3, "weapons", "kn1fe", 10))
        .unwrap();
    let b = store
        .add_violation(3, &v(8, 5, "weapons", "100% knife", 20))
        .unwrap();
    let c = store
        .add_violation(3, &v(7, 2, "bullying", "loser", 30))
        .unwrap();
    store.set_violation_screenshots(3, a, 2).unwrap();
    let got = store.violation(3, a).unwrap().unwrap();
    assert_eq!(
        (got.screenshots, got.severity, got.person.as_deref()),
        (2, 3, Some("Amy Ng"))
    );
    assert!(store.violation(2, a).unwrap().is_none(), "another school's");
    let ids = |f: ViolationFilter| -> Vec<i64> {
        store
            .violations(3, &ViolationFilter { limit: 100, ..f })
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect()
    };
    assert_eq!(ids(ViolationFilter::default()), [c, b, a], "newest first");
    assert_eq!(
        ids(ViolationFilter {
            devices: Some(vec![7]),
            ..Default::default()
        }),
        [c, a]
    );
    assert_eq!(
        ids(ViolationFilter {
            devices: Some(vec![]),
            ..Default::default()
        }),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(ViolationFilter {
            min_severity: Some(3),
            ..Default::default()
        }),
        [b, a]
    );
    assert_eq!(
        ids(ViolationFilter {
            severity: Some(2),
            ..Default::default()
        }),
        [c]
    );
    assert_eq!(
        ids(ViolationFilter {
            category: Some("weapons".into()),
            since: Some(15),
            ..Default::default()
        }),
        [b]
    );
    assert_eq!(
        ids(ViolationFilter {
            text: Some("%".into()),
            ..Default::default()
        }),
        [b],
        "literal"
    );
    assert_eq!(
        ids(ViolationFilter {
            text: Some("KN1".into()),
            ..Default::default()
        }),
        [a]
    );
    assert_eq!(
        ids(ViolationFilter {
            user: Some("Amy".into()),
            until: Some(25),
            ..Default::default()
        }),
        [b, a]
    );
    assert_eq!(
        ids(ViolationFilter {
            retrospective: Some(true),
            ..Default::default()
        }),
        Vec::<i64>::new()
    );
    // Every violation starts as a new case, assigned to nobody.
    let case = |statuses: Vec<CaseStatus>, assignee| ViolationFilter {
        case: CaseFilter { statuses, assignee },
        ..Default::default()
    };
    assert_eq!(
        ids(case(
            vec![CaseStatus::New, CaseStatus::InReview],
            AssigneeFilter::Unassigned
        )),
        [c, b, a]
    );
    assert_eq!(
        ids(case(vec![CaseStatus::Closed], AssigneeFilter::Any)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(case(vec![], AssigneeFilter::User("vale.admin".into()))),
        Vec::<i64>::new()
    );

    let def = ReportDef {
        id: 0,
        name: "Weekly".into(),
        kind: ReportKind::TopViolatingUsers,
        group_id: None,
        days: 7,
        schedule: "weekly".into(),
        last_run: Some(99),
        created_by: "vale.admin".into(),
    };
    let r = store.create_report(3, &def).unwrap();
    assert_eq!(r.last_run, None);
    store.report_ran(3, r.id, 500).unwrap();
    let listed = store.reports(3).unwrap();
    assert_eq!(
        (listed.len(), listed[0].last_run, listed[0].days),
        (1, Some(500), 7)
    );
    assert!(!store.delete_report(2, r.id).unwrap());
    assert!(store.delete_report(3, r.id).unwrap());
    assert!(store.reports(3).unwrap().is_empty());

    assert!(store.document(3, "keyword_library").unwrap().is_none());
    store.set_document(3, "keyword_library", "a").unwrap();
    store.set_document(3, "keyword_library", "b").unwrap();
    assert_eq!(
        store.document(3, "keyword_library").unwrap().as_deref(),
        Some("b")
    );
    assert!(store.document(2, "keyword_library").unwrap().is_none());
}

/// Screenshots: kept per device up to the limit, newest first, each
/// school's and device's own; in school 3.
fn check_screenshots(store: &dyn Store) {
    let shot = |device, bytes: usize| NewScreenshot {
        device_id: device,
        taken_by: "vale.admin".into(),
        taken_at: 1,
        width: 1280,
        height: 720,
        jpeg: vec![0xFF; bytes],
    };
    let first = store.add_screenshot(3, &shot(1, 10)).unwrap();
    let (info, jpeg) = store.screenshot(3, 1, first.id).unwrap().unwrap();
    assert_eq!((info, jpeg), (first.clone(), vec![0xFF; 10]));
    assert!(
        store.screenshot(2, 1, first.id).unwrap().is_none(),
        "another school's"
    );
    assert!(
        store.screenshot(3, 2, first.id).unwrap().is_none(),
        "another device's"
    );
    for _ in 0..SCREENSHOTS_PER_DEVICE {
        store.add_screenshot(3, &shot(1, 20)).unwrap();
    }
    let kept = store.screenshots(3, 1).unwrap();
    assert_eq!(kept.len() as i64, SCREENSHOTS_PER_DEVICE);
    assert!(
        kept.iter().all(|k| k.id != first.id && k.bytes == 20),
        "the oldest went"
    );
    assert!(kept.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(store.screenshots(2, 1).unwrap().is_empty());
}

/// Raised hands (one open per device), chat threads, inventory reports
/// and power schedules (a day claimed once); in school 3.
fn check_requests(store: &dyn Store) {
    let hand = |device| NewHelpRequest {
        device_id: device,
        username: Some("amy".into()),
        note: "stuck".into(),
        at: 5,
    };
    let h = store.raise_hand(3, &hand(7)).unwrap().unwrap();
    assert!(
        store.raise_hand(3, &hand(7)).unwrap().is_none(),
        "one open per device"
    );
    let other = store.raise_hand(3, &hand(8)).unwrap().unwrap();
    let open: Vec<i64> = store
        .open_help_requests(3)
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(open, [h.id, other.id]);
    let close = |id| HandClose {
        device_id: 7,
        id,
        outcome: HandOutcome::Answered,
        by: "vale.admin".into(),
        answer: Some("try again".into()),
        at: 9,
    };
    assert!(
        store
            .close_hand(3, &close(Some(other.id)))
            .unwrap()
            .is_none(),
        "not device 7's"
    );
    assert!(
        store.close_hand(2, &close(None)).unwrap().is_none(),
        "another school's"
    );
    let closed = store.close_hand(3, &close(None)).unwrap().unwrap();
    assert_eq!(
        (closed.id, closed.outcome, closed.closed_at),
        (h.id, Some(HandOutcome::Answered), Some(9))
    );
    assert!(
        store.close_hand(3, &close(None)).unwrap().is_none(),
        "already closed"
    );
    assert_eq!(
        store
            .help_request(3, h.id)
            .unwrap()
            .unwrap()
            .answer
            .as_deref(),
        Some("try again")
    );
    assert!(
        store.raise_hand(3, &hand(7)).unwrap().is_some(),
        "a new one once closed"
    );

    let msg = |text: &str, teacher| NewChat {
        device_id: 7,
        thread: "lesson:1".into(),
        batch: None,
        author: "amy".into(),
        from_teacher: teacher,
        text: text.into(),
        at: 1,
    };
    let sent = store
        .add_chat(
            3,
            &[msg("one", false), msg("two", true), msg("three", false)],
        )
        .unwrap();
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id));
    let last_two: Vec<(String, bool)> = store
        .chat_history(3, 7, "lesson:1", 2)
        .unwrap()
        .into_iter()
        .map(|m| (m.text, m.from_teacher))
        .collect();
    assert_eq!(
        last_two,
        [("two".into(), true), ("three".into(), false)],
        "oldest first"
    );
    assert!(store.chat_history(3, 7, "lesson:2", 10).unwrap().is_empty());
    assert!(store.chat_history(2, 7, "lesson:1", 10).unwrap().is_empty());

    let inv = |hash: &str| InventoryRow {
        device_id: 7,
        hash: hash.into(),
        report: "{}".into(),
        received_at: 3,
    };
    store.put_inventory(3, &inv("a")).unwrap();
    store.put_inventory(3, &inv("b")).unwrap();
    assert_eq!(store.inventory_hash(3, 7).unwrap(), Some(("b".into(), 3)));
    assert_eq!(store.inventories(3).unwrap(), [inv("b")]);
    assert_eq!(store.inventory(3, 7).unwrap(), Some(inv("b")));
    assert!(store.inventory(2, 7).unwrap().is_none());

    let sched = store
        .add_power_schedule(
            3,
            &PowerSchedule {
                id: 0,
                group_id: 1,
                action: "shutdown".into(),
                minute_of_day: 17 * 60,
                days: 0b11111,
                countdown_secs: 60,
                created_by: "vale.admin".into(),
                last_run_day: Some("x".into()),
            },
        )
        .unwrap();
    assert_eq!(sched.last_run_day, None);
    assert!(store
        .claim_power_schedule(3, sched.id, "2026-12-05")
        .unwrap());
    assert!(
        !store
            .claim_power_schedule(3, sched.id, "2026-12-05")
            .unwrap(),
        "once a day"
    );
    assert!(store
        .claim_power_schedule(3, sched.id, "2026-12-06")
        .unwrap());
    assert_eq!(
        store.power_schedules(3).unwrap()[0].last_run_day.as_deref(),
        Some("2026-12-06")
    );
    assert!(!store.delete_power_schedule(2, sched.id).unwrap());
    assert!(store.delete_power_schedule(3, sched.id).unwrap());
}

/// Report totals over a scope of devices and a period: hosts cut out of
/// URLs the same way on both engines; in school 3, devices 20 and 21.
fn check_totals(store: &dyn Store) {
    let web = |url: &str, user: &str, at| ActivityEvent {
        kind: "web".into(),
        url: Some(url.into()),
        user: Some(user.into()),
        at,
        ..Default::default()
    };
    let events = [
        web("https://Example.org:8443/p?q=1", "amy", 1_000),
        web("https://example.org/", "amy", 1_001),
        web("http://bob@[::1]:80/x", "amy", 2_000),
        web("https://site.test#frag", "amy", 2_000),
        web("about:blank", "amy", 2_000),
        web("https://late.test/", "amy", 99_000),
    ];
    store.add_activity(3, 20, None, &events).unwrap();
    store
        .add_activity(3, 21, None, &[web("https://other.test/", "bea", 2_000)])
        .unwrap();
    for (severity, category) in [(2, "c"), (4, "c"), (1, "d")] {
        let v = Violation {
            id: 0,
            device_id: 20,
            user: Some("amy".into()),
            person_id: None,
            person: None,
            term: "t".into(),
            category: category.into(),
            severity,
            matched: "t".into(),
            context: "t".into(),
            source: "url".into(),
            action: "log".into(),
            screenshots: 0,
            at: 3_000,
            retrospective: false,
        };
        store.add_violation(3, &v).unwrap();
    }
    let scope = ReportScope {
        devices: vec![20],
        since: 0,
        until: 50_000,
    };
    let mut sites: Vec<(Option<String>, u64)> = store
        .website_totals(3, &scope)
        .unwrap()
        .into_iter()
        .map(|t| (t.host, t.count))
        .collect();
    sites.sort();
    assert_eq!(
        sites,
        [
            (None, 1),
            (Some("[::1]".into()), 1),
            (Some("example.org".into()), 2),
            (Some("site.test".into()), 1)
        ]
    );
    let mut v: Vec<(String, u64, u8)> = store
        .violation_totals(3, &scope)
        .unwrap()
        .into_iter()
        .map(|t| (t.category, t.count, t.max_severity))
        .collect();
    v.sort();
    assert_eq!(v, [("c".into(), 2, 4), ("d".into(), 1, 1)]);
    let a: Vec<(i64, String, u64)> = store
        .activity_totals(
            3,
            &ReportScope {
                devices: vec![20, 21],
                ..scope.clone()
            },
        )
        .unwrap()
        .into_iter()
        .map(|t| (t.device_id, t.kind, t.count))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(a, [(20, "web".into(), 5), (21, "web".into(), 1)]);
    assert!(store
        .activity_totals(
            3,
            &ReportScope {
                devices: vec![],
                ..scope
            }
        )
        .unwrap()
        .is_empty());
}

/// Acceptable use policies: numbered per group, old versions kept,
/// acceptances once each and only of the school's own versions; school 3.
fn check_aup(store: &dyn AupStore) {
    let new = |group_id, text: &str| NewAupVersion {
        group_id,
        title: "Rules".into(),
        text: text.into(),
        by: "vale.admin".into(),
        at: 1,
    };
    let v1 = store.publish_aup(3, &new(1, "one")).unwrap();
    let v2 = store.publish_aup(3, &new(1, "two")).unwrap();
    let other = store.publish_aup(3, &new(2, "zwei")).unwrap();
    assert_eq!((v1.number, v2.number, other.number), (1, 2, 1));
    let current: Vec<i64> = store
        .current_aups(3)
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(current, [v2.id, other.id]);
    assert_eq!(store.aup_versions(3).unwrap().len(), 3);
    assert_eq!(store.aup_version(3, v1.id).unwrap().unwrap().text, "one");
    assert!(
        store.aup_version(2, v1.id).unwrap().is_none(),
        "another school's"
    );
    let accept = |version_id, at| AupAcceptance {
        version_id,
        device_id: 7,
        username: "amy".into(),
        accepted_at: at,
    };
    assert!(store.accept_aup(3, &accept(v2.id, 5)).unwrap());
    assert!(!store.accept_aup(3, &accept(v2.id, 6)).unwrap(), "once");
    assert!(
        !store.accept_aup(2, &accept(v2.id, 6)).unwrap(),
        "another school's version"
    );
    assert!(store.accept_aup(3, &accept(other.id, 7)).unwrap());
    assert!(store.aup_accepted(3, v2.id, 7, "amy").unwrap());
    assert!(!store.aup_accepted(3, v1.id, 7, "amy").unwrap());
    let all: Vec<i64> = store
        .aup_acceptances(3, None, 10)
        .unwrap()
        .iter()
        .map(|a| a.version_id)
        .collect();
    assert_eq!(all, [other.id, v2.id], "newest first");
    assert_eq!(store.aup_acceptances(3, Some(v2.id), 10).unwrap().len(), 1);
}

fn audit_entry(actor: &str, action: &str, devices: Vec<i64>, outcome: &str) -> NewAudit {
    NewAudit {
        school_id: 2,
        actor: actor.into(),
        address: None,
        action: action.into(),
        detail: String::new(),
        devices,
        command_id: None,
        outcome: outcome.into(),
    }
}

/// Settings overrides, and the audit search: actor in any case, action and
/// its sub-actions, a device, the class of a free-text outcome (a count of
/// failures above 0 is a failure), paging; in school 2 (Dale), whose log
/// only this adds to, through `audit`.
fn check_auditset(store: &dyn AuditSetStore, core: &dyn Store) {
    let row = |key: &str, value: &str| SettingRow {
        key: key.into(),
        value: value.into(),
        set_by: "dale.admin".into(),
        set_at: 1,
    };
    store
        .set_school_settings(2, &[row("b", "1"), row("a", "2")])
        .unwrap();
    store.set_school_settings(2, &[row("b", "3")]).unwrap();
    let keys: Vec<(String, String)> = store
        .school_settings(2)
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    assert_eq!(keys, [("a".into(), "2".into()), ("b".into(), "3".into())]);
    assert!(store.clear_school_setting(2, "a").unwrap());
    assert!(!store.clear_school_setting(2, "a").unwrap());
    assert!(store.school_settings(3).unwrap().is_empty());

    let ids: Vec<i64> = [
        ("Ann", "command.lock", vec![1, 2], "ok"),
        ("bob", "command.lock", vec![2], "denied"),
        ("ann", "commander", vec![], "ok"),
        (
            "cy",
            "command.lock",
            vec![3],
            "sent to 1, offline 0, failed 2",
        ),
        (
            "cy",
            "command.lock",
            vec![3],
            "sent to 3, offline 0, failed 0",
        ),
        ("cy", "command.lock", vec![3], "refused: no"),
    ]
    .into_iter()
    .map(|(actor, action, devices, outcome)| {
        core.audit(&audit_entry(actor, action, devices, outcome))
            .unwrap()
    })
    .collect();
    let find = |f: AuditFilter, reader: Option<&AuditReader>| -> Vec<usize> {
        store
            .audit_search(2, &AuditFilter { limit: 100, ..f }, reader)
            .unwrap()
            .iter()
            .filter_map(|e| ids.iter().position(|&i| i == e.id))
            .collect()
    };
    let all = AuditFilter::default;
    assert_eq!(find(all(), None), [5, 4, 3, 2, 1, 0]);
    assert_eq!(
        find(
            AuditFilter {
                actor: Some("ANN".into()),
                ..all()
            },
            None
        ),
        [2, 0]
    );
    assert_eq!(
        find(
            AuditFilter {
                action: Some("command".into()),
                ..all()
            },
            None
        ),
        [5, 4, 3, 1, 0]
    );
    assert_eq!(
        find(
            AuditFilter {
                device: Some(1),
                ..all()
            },
            None
        ),
        [0]
    );
    let class = |c: &str| {
        find(
            AuditFilter {
                outcome: Some(c.into()),
                ..all()
            },
            None,
        )
    };
    assert_eq!(class("denied"), [5, 1]);
    assert_eq!(class("failed"), [3]);
    assert_eq!(class("ok"), [4, 2, 0]);
    assert_eq!(
        find(
            AuditFilter {
                before: Some(ids[3]),
                ..all()
            },
            None
        ),
        [2, 1, 0]
    );
    let bob = AuditReader {
        username: "bob".into(),
        devices: vec![3],
    };
    assert_eq!(
        find(all(), Some(&bob)),
        [5, 4, 3, 1],
        "his own, and device 3's"
    );
}

#[test]
fn what_moved_to_the_shared_sql_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check_grants(&lite, &mut || {
        raw.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    });
    check_school_codes(&lite);
    check_students(&lite);
    check_mail(&lite, &mut |q| raw.execute_batch(q).unwrap());
    check_accounts(&lite, &mut |q| raw.execute_batch(q).unwrap());
    check_fleet(&lite);
    let lite_groups = check_schools(
        &lite,
        &lite,
        &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap(),
        &mut |q| raw.execute_batch(q).unwrap(),
    );
    check_groups(&lite);
    check_people_and_audit(&lite);
    check_activity(&lite);
    check_safety(&lite);
    check_screenshots(&lite);
    check_requests(&lite);
    check_totals(&lite);
    check_aup(&lite);
    check_auditset(&lite, &lite);

    // PostgreSQL: the store makes its tables in the empty database.
    let pg = Pg::start();
    drop(pg.database("lectern"));
    let params = pg.params("lectern");
    let store = PgStore::connect(&params).unwrap();
    let mut raw = pg.connect("lectern");
    raw.batch_execute(ROWS).unwrap();
    // Rows put in with their ids leave the identity sequences behind, as a
    // restore into PostgreSQL would: moved on past them.
    common::pg::move_sequences_on(&mut raw, &["schools", "users", "people"]);
    check_grants(&store, &mut || {
        raw.query_one("SELECT count(*) FROM sessions", &[])
            .unwrap()
            .get::<_, i64>(0)
    });
    check_school_codes(&store);
    check_students(&store);
    check_mail(&store, &mut |q| raw.batch_execute(q).unwrap());
    check_accounts(&store, &mut |q| raw.batch_execute(q).unwrap());
    check_fleet(&store);
    let raw = std::cell::RefCell::new(raw);
    let pg_groups = check_schools(
        &store,
        &store,
        &mut |q| raw.borrow_mut().query_one(q, &[]).unwrap().get::<_, i64>(0),
        &mut |q| raw.borrow_mut().batch_execute(q).unwrap(),
    );
    assert_eq!(lite_groups, pg_groups);
    check_groups(&store);
    check_people_and_audit(&store);
    check_activity(&store);
    check_safety(&store);
    check_screenshots(&store);
    check_requests(&store);
    check_totals(&store);
    check_aup(&store);
    check_auditset(&store, &store);
    // Connecting again finds the tables made.
    drop(store);
    PgStore::connect(&params).unwrap();
}

/// Two nodes disabling a school's two administrators at the same moment:
/// the transactions are serializable, so one of them sees the other's and
/// is refused, and the school keeps an administrator every time.
#[test]
fn two_nodes_cannot_disable_the_last_two_administrators_at_once() {
    let pg = Pg::start();
    drop(pg.database("lectern"));
    let params = pg.params("lectern");
    let nodes = [
        PgStore::connect(&params).unwrap(),
        PgStore::connect(&params).unwrap(),
    ];
    let mut raw = pg.connect("lectern");
    raw.batch_execute(
        "INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1);
         INSERT INTO users (id, school_id, username, password_hash, role, created_at)
             VALUES (1, 1, 'one', 'x', 'admin', 1), (2, 1, 'two', 'x', 'admin', 1);",
    )
    .unwrap();
    for round in 0..20 {
        raw.batch_execute("UPDATE users SET disabled_at = NULL")
            .unwrap();
        let barrier = std::sync::Barrier::new(2);
        let refused = std::thread::scope(|s| {
            let runs: Vec<_> = ["one", "two"]
                .iter()
                .zip(&nodes)
                .map(|(name, node)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        node.set_disabled(1, name, true).unwrap().is_err()
                    })
                })
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap())
                .filter(|&refused| refused)
                .count()
        });
        let enabled: i64 = raw
            .query_one("SELECT count(*) FROM users WHERE disabled_at IS NULL", &[])
            .unwrap()
            .get(0);
        assert_eq!((refused, enabled), (1, 1), "round {round}");
    }
}
