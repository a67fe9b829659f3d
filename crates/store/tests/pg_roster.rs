//! Rostered classes, the teachers' roster-managed rules and the imports'
//! reports give the same answers on both engines: the checks run on
//! `SqliteStore` and on `PgStore` against a real PostgreSQL the test
//! starts, from the same rows.

mod common;

use std::collections::BTreeMap;

use common::pg::Pg;
use lectern_policy::access::{Access, AccessRule, Principal};
use lectern_policy::groups::Member;
use lectern_store::roster::{
    ClassWrite, RosterClass, RosterImport, RosterStore, RosterWrite, TeacherGrant,
};
use lectern_store::{GroupRecord, PgStore, Result, SchoolId, SqliteStore, Store};

/// Two schools; Hill already has a group named as one of its classes will
/// be, and Dale one named as another.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO groups (id, school_id, name, kind, priority, members, settings, created_at)
        VALUES (1, 1, 'Maths 7', 'user', 'medium', '[]', '{}', 1),
               (2, 2, 'Art', 'user', 'medium', '[]', '{}', 1);
";

/// What the checks need of the groups and access rules, on either engine.
trait Groups {
    fn groups_of(&self, school: SchoolId) -> Result<Vec<GroupRecord>>;
    fn rules_of(&self, school: SchoolId) -> Result<Vec<AccessRule>>;
    fn add_rule(&self, school: SchoolId, rule: &AccessRule) -> Result<Option<AccessRule>>;
    fn drop_group(&self, school: SchoolId, id: i64) -> Result<bool>;
    fn drop_rule(&self, school: SchoolId, id: i64) -> Result<bool>;
}

macro_rules! groups_of {
    ($t:ty => $($p:tt)+) => {
        impl Groups for $t {
            fn groups_of(&self, school: SchoolId) -> Result<Vec<GroupRecord>> {
                $($p)+::list_groups(self, school)
            }
            fn rules_of(&self, school: SchoolId) -> Result<Vec<AccessRule>> {
                $($p)+::access_rules(self, school)
            }
            fn add_rule(&self, school: SchoolId, rule: &AccessRule) -> Result<Option<AccessRule>> {
                $($p)+::save_access_rule(self, school, rule)
            }
            fn drop_group(&self, school: SchoolId, id: i64) -> Result<bool> {
                $($p)+::delete_group(self, school, id)
            }
            fn drop_rule(&self, school: SchoolId, id: i64) -> Result<bool> {
                $($p)+::delete_access_rule(self, school, id)
            }
        }
    };
}

groups_of!(SqliteStore => Store);
groups_of!(PgStore => PgStore);

fn class(id: &str, title: &str, teachers: &[&str], students: &[&str]) -> ClassWrite {
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
    ClassWrite {
        sourced_id: id.into(),
        title: title.into(),
        teachers: v(teachers),
        students: v(students),
        terms: vec!["T1".into()],
    }
}

fn grant(user: &str, features: &[&str], classes: &[&str]) -> TeacherGrant {
    TeacherGrant {
        username: user.into(),
        features: features.iter().map(|s| s.to_string()).collect(),
        classes: classes.iter().map(|s| s.to_string()).collect(),
    }
}

fn group(groups: &[GroupRecord], id: i64) -> Option<&GroupRecord> {
    groups.iter().find(|g| g.group.id == id)
}

fn rule(rules: &[AccessRule], id: i64) -> Option<&AccessRule> {
    rules.iter().find(|r| r.id == id)
}

fn titles(classes: &[RosterClass]) -> Vec<(&str, &str)> {
    classes
        .iter()
        .map(|c| (c.sourced_id.as_str(), c.title.as_str()))
        .collect()
}

fn check_classes_and_rules(store: &dyn RosterStore, g: &dyn Groups, sql: &mut dyn FnMut(&str)) {
    assert!(store.roster_classes(1).unwrap().is_empty());
    assert!(store.roster_rules(1).unwrap().is_empty());
    // A rule made by hand, which no import may touch.
    let own = g
        .add_rule(
            1,
            &AccessRule {
                id: 0,
                principal: Principal::User("amy".into()),
                features: ["files".to_string()].into(),
                group_access: BTreeMap::new(),
                bypass_privacy: false,
            },
        )
        .unwrap()
        .unwrap();

    let first = RosterWrite {
        classes: vec![
            class("C2", "Maths 7", &["Amy"], &["sam", "tia"]),
            class("C1", "Art", &["bob"], &["uma"]),
            class("C3", "Zoo", &["bob"], &[]),
            class("C4", "Zoo", &["bob"], &[]),
            class("C5", "art club", &[], &[]),
        ],
        retire: vec![],
        grants: vec![
            grant("Amy", &["screen"], &["C2", "C1"]),
            grant("bob", &["screen"], &["C1", "C3", "C9"]),
        ],
    };
    let classes = store.apply_roster(1, &first).unwrap();
    // By title byte by byte (capitals first), then sourcedId; a title
    // another group has already gets the sourcedId (only the school's own
    // groups count: Dale's "Art" does not).
    assert_eq!(
        titles(&classes),
        [
            ("C1", "Art"),
            ("C2", "Maths 7 (C2)"),
            ("C3", "Zoo"),
            ("C4", "Zoo (C4)"),
            ("C5", "art club")
        ]
    );
    assert_eq!(store.roster_classes(1).unwrap(), classes);
    let by_id: BTreeMap<&str, &RosterClass> =
        classes.iter().map(|c| (c.sourced_id.as_str(), c)).collect();
    let c2 = by_id["C2"];
    assert_eq!(c2.teachers, ["Amy"]);
    assert_eq!(c2.students, ["sam", "tia"]);
    assert_eq!(c2.terms, ["T1"]);
    assert_eq!(c2.retired_at, None);
    let groups = g.groups_of(1).unwrap();
    assert_eq!(groups.len(), 6, "Maths 7 and one per class");
    let c2_group = group(&groups, c2.group_id).unwrap();
    assert_eq!(c2_group.group.name, "Maths 7 (C2)");
    assert_eq!(
        c2_group.group.members,
        [Member::User("sam".into()), Member::User("tia".into())]
    );
    assert!(group(&groups, 1).unwrap().group.members.is_empty());

    let rules = store.roster_rules(1).unwrap();
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["Amy", "bob"]);
    let all = g.rules_of(1).unwrap();
    assert_eq!(all.len(), 3);
    let amy = rule(&all, rules["Amy"]).unwrap();
    assert_eq!(amy.principal, Principal::User("Amy".into()));
    assert_eq!(amy.features, ["screen".to_string()].into());
    assert_eq!(
        amy.group_access,
        [
            (by_id["C1"].group_id, Access::Control),
            (c2.group_id, Access::Control)
        ]
        .into()
    );
    // A class not in the roster controls nothing.
    assert_eq!(rule(&all, rules["bob"]).unwrap().group_access.len(), 2);
    assert_eq!(rule(&all, own.id), Some(&own));

    // Another school sees none of it, and its groups are as they were.
    assert!(store.roster_classes(2).unwrap().is_empty());
    assert!(store.roster_rules(2).unwrap().is_empty());
    assert!(g.rules_of(2).unwrap().is_empty());
    assert_eq!(g.groups_of(2).unwrap().len(), 1);

    // The second import: C2's group was deleted by hand meanwhile and bob's
    // rule too; C1 renamed, C3 retired, C4 and C5 left as they are; Amy
    // under another case; bob gets his rule back, cat one anew.
    assert!(g.drop_group(1, c2.group_id).unwrap());
    assert!(g.drop_rule(1, rules["bob"]).unwrap());
    let second = RosterWrite {
        classes: vec![
            class("C2", "Maths 7", &["Amy"], &["tia"]),
            class("C1", "Art & Design", &["bob"], &["uma", "val"]),
        ],
        retire: vec!["C3".into()],
        grants: vec![
            grant("amy", &["screen", "chat"], &["C2"]),
            grant("bob", &[], &["C1"]),
            grant("cat", &[], &["C4"]),
        ],
    };
    let classes = store.apply_roster(1, &second).unwrap();
    assert_eq!(
        titles(&classes),
        [
            ("C1", "Art & Design"),
            ("C2", "Maths 7 (C2)"),
            ("C3", "Zoo"),
            ("C4", "Zoo (C4)"),
            ("C5", "art club")
        ]
    );
    let by_id: BTreeMap<&str, &RosterClass> =
        classes.iter().map(|c| (c.sourced_id.as_str(), c)).collect();
    assert_eq!(by_id["C1"].students, ["uma", "val"]);
    let retired = by_id["C3"].retired_at.expect("C3 retired");
    assert_eq!(by_id["C4"].retired_at, None, "not listed is not retired");
    let new_c2 = by_id["C2"].group_id;
    let groups = g.groups_of(1).unwrap();
    assert_eq!(group(&groups, new_c2).unwrap().group.name, "Maths 7 (C2)");
    assert_eq!(
        group(&groups, by_id["C1"].group_id).unwrap().group.name,
        "Art & Design"
    );
    assert!(
        group(&groups, by_id["C3"].group_id).is_some(),
        "a retired class keeps its group"
    );
    // Amy's rule is the same rule, rewritten; the key keeps its case.
    let rules2 = store.roster_rules(1).unwrap();
    assert_eq!(rules2.keys().collect::<Vec<_>>(), ["Amy", "bob", "cat"]);
    assert_eq!(rules2["Amy"], rules["Amy"]);
    // Deleted by hand, so made anew (SQLite may give it the same id).
    assert_eq!(
        rule(&g.rules_of(1).unwrap(), rules2["bob"])
            .unwrap()
            .group_access,
        [(by_id["C1"].group_id, Access::Control)].into()
    );
    let all = g.rules_of(1).unwrap();
    assert_eq!(all.len(), 4);
    let amy = rule(&all, rules2["Amy"]).unwrap();
    assert_eq!(
        amy.features,
        ["chat".to_string(), "screen".to_string()].into()
    );
    assert_eq!(amy.group_access, [(new_c2, Access::Control)].into());
    assert_eq!(
        rule(&all, rules2["cat"]).unwrap().group_access,
        BTreeMap::new(),
        "C4 is not in this import"
    );
    assert_eq!(rule(&all, own.id), Some(&own));

    // Teachers left out lose their rules; retiring again keeps the first
    // date; a retired class listed again is back.
    let third = RosterWrite {
        classes: vec![class("C4", "Zoo", &["bob"], &[])],
        retire: vec!["C3".into(), "C5".into()],
        grants: vec![grant("AMY", &["screen"], &["C4"])],
    };
    let classes = store.apply_roster(1, &third).unwrap();
    let by_id: BTreeMap<&str, &RosterClass> =
        classes.iter().map(|c| (c.sourced_id.as_str(), c)).collect();
    assert_eq!(by_id["C3"].retired_at, Some(retired));
    assert!(by_id["C5"].retired_at.is_some());
    assert_eq!(
        store.roster_rules(1).unwrap().keys().collect::<Vec<_>>(),
        ["Amy"]
    );
    let all = g.rules_of(1).unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [own.id, rules["Amy"]]
    );
    let back = RosterWrite {
        classes: vec![class("C3", "Zoo", &[], &[])],
        retire: vec![],
        grants: vec![grant("amy", &["screen"], &["C4"])],
    };
    let classes = store.apply_roster(1, &back).unwrap();
    assert_eq!(
        classes
            .iter()
            .find(|c| c.sourced_id == "C3")
            .unwrap()
            .retired_at,
        None
    );

    // An import that fails half way changes nothing.
    let groups_before = g.groups_of(1).unwrap().len();
    let rules_before = g.rules_of(1).unwrap();
    sql("ALTER TABLE roster_rules RENAME TO roster_rules_away");
    let failed = store.apply_roster(
        1,
        &RosterWrite {
            classes: vec![class("C9", "Drama", &["dan"], &["eve"])],
            retire: vec!["C4".into()],
            grants: vec![grant("dan", &["screen"], &["C9"])],
        },
    );
    sql("ALTER TABLE roster_rules_away RENAME TO roster_rules");
    assert!(failed.is_err());
    assert_eq!(store.roster_classes(1).unwrap(), classes);
    assert_eq!(g.groups_of(1).unwrap().len(), groups_before);
    assert_eq!(g.rules_of(1).unwrap(), rules_before);

    // Dale's own import leaves Hill's roster be.
    let dale = store
        .apply_roster(
            2,
            &RosterWrite {
                classes: vec![class("C1", "Art", &["dan"], &[])],
                retire: vec!["C2".into()],
                grants: vec![grant("amy", &[], &["C1"])],
            },
        )
        .unwrap();
    assert_eq!(titles(&dale), [("C1", "Art (C1)")]);
    assert_eq!(store.roster_classes(1).unwrap(), classes);
    assert_eq!(g.rules_of(1).unwrap(), rules_before);
    assert_eq!(store.roster_rules(2).unwrap().len(), 1);
}

fn import(source: &str, dry_run: bool, at: i64) -> RosterImport {
    RosterImport {
        id: 0,
        at,
        source: source.into(),
        actor: "hill.admin".into(),
        dry_run,
        outcome: "ok".into(),
        digest: format!("d{at}"),
        report: serde_json::json!({"classes": at, "notes": ["é"]}),
    }
}

fn check_imports(store: &dyn RosterStore, count: &mut dyn FnMut(&str) -> i64) {
    assert!(store
        .last_roster_import(1, "upload", true)
        .unwrap()
        .is_none());
    let real = store
        .add_roster_import(1, &import("upload", false, 1))
        .unwrap();
    let dry = store
        .add_roster_import(1, &import("upload", true, 2))
        .unwrap();
    assert!(dry > real);
    let last = store
        .last_roster_import(1, "upload", true)
        .unwrap()
        .unwrap();
    assert_eq!((last.id, last.at, last.dry_run), (dry, 2, true));
    assert_eq!(last.report, import("upload", true, 2).report);
    assert_eq!(
        (
            last.source.as_str(),
            last.actor.as_str(),
            last.outcome.as_str(),
            last.digest.as_str()
        ),
        ("upload", "hill.admin", "ok", "d2")
    );
    let last = store
        .last_roster_import(1, "upload", false)
        .unwrap()
        .unwrap();
    assert_eq!((last.id, last.dry_run), (real, false));
    assert!(store
        .last_roster_import(1, "folder", true)
        .unwrap()
        .is_none());
    assert!(store
        .last_roster_import(2, "upload", true)
        .unwrap()
        .is_none());

    // The newest 50 per school and source are kept.
    store
        .add_roster_import(2, &import("folder", false, 3))
        .unwrap();
    let mut newest = 0;
    for at in 10..70 {
        newest = store
            .add_roster_import(1, &import("folder", false, at))
            .unwrap();
    }
    assert_eq!(
        count("SELECT count(*) FROM roster_imports WHERE school_id = 1 AND source = 'folder'"),
        50
    );
    assert_eq!(
        count("SELECT min(at) FROM roster_imports WHERE school_id = 1 AND source = 'folder'"),
        20
    );
    assert_eq!(
        count("SELECT count(*) FROM roster_imports WHERE school_id = 1 AND source = 'upload'"),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM roster_imports WHERE school_id = 2"),
        1
    );
    let last = store
        .last_roster_import(1, "folder", false)
        .unwrap()
        .unwrap();
    assert_eq!((last.id, last.at), (newest, 69));
    assert_eq!(
        store
            .last_roster_import(2, "folder", false)
            .unwrap()
            .unwrap()
            .at,
        3
    );
}

#[test]
fn the_roster_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(ROWS).unwrap();
    check_classes_and_rules(&lite, &lite, &mut |q| raw.execute_batch(q).unwrap());
    check_imports(&lite, &mut |q| raw.query_row(q, [], |r| r.get(0)).unwrap());

    // PostgreSQL: the store makes its tables in the empty database.
    let pg = Pg::start();
    let (store, raw) = pg.store();
    let raw = std::cell::RefCell::new(raw);
    raw.borrow_mut().batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(&mut raw.borrow_mut(), &["schools", "groups"]);
    check_classes_and_rules(&store, &store, &mut |q| {
        raw.borrow_mut().batch_execute(q).unwrap()
    });
    check_imports(&store, &mut |q| {
        raw.borrow_mut().query_one(q, &[]).unwrap().get::<_, i64>(0)
    });
}
