//! The safeguarding dashboard's figures are the same on both engines: the
//! checks run on `SqliteStore` and on `PgStore` against a real PostgreSQL
//! the test starts, from the same rows.

mod common;

use common::pg::Pg;
use lectern_store::dashboard::{
    DashboardScope, DashboardStore, DayCount, NamedCount, Summary, SITE_WINDOW_MS,
};
use lectern_store::SqliteStore;

/// Noon (UTC) on 15 November 2023, and two days later: different days in
/// every time zone.
const D1: i64 = 1_700_049_600_000;
const D2: i64 = D1 + 2 * 86_400_000;
const HOUR: i64 = 3_600_000;

/// One violation: (id, school, device, user, category, severity, at, status).
type V = (
    i64,
    i64,
    i64,
    Option<&'static str>,
    &'static str,
    i64,
    i64,
    &'static str,
);

fn violations() -> Vec<V> {
    let mut v: Vec<V> = vec![
        (1, 1, 7, Some("amy"), "bullying", 3, D1, "new"),
        (2, 1, 7, Some("amy"), "bullying", 3, D1 + 1000, "new"),
        (3, 1, 7, Some("amy"), "adult", 5, D2, "escalated"),
        (4, 1, 8, None, "adult", 4, D2 + 1, "new"),
        (5, 1, 8, None, "adult", 4, D2 + 2, "closed"),
        (6, 1, 7, Some("ben"), "bullying", 3, D1 + 2000, "closed"),
        (7, 1, 7, Some("ben"), "weapons", 2, D2 + 3, "escalated"),
        (8, 1, 8, Some("cat"), "bullying", 1, D1 + 3, "new"),
        (9, 1, 8, Some("Zed"), "bullying", 1, D1 + 4, "new"),
        // Out of scope: a device not asked for, the end of the period, just
        // before its start, another school's.
        (30, 1, 9, Some("amy"), "bullying", 3, D1, "new"),
        (31, 1, 7, Some("amy"), "bullying", 3, D2 + HOUR, "new"),
        (32, 1, 7, Some("amy"), "bullying", 3, D1 - HOUR - 1, "new"),
        (33, 2, 7, Some("amy"), "bullying", 3, D1, "new"),
    ];
    const USERS: [&str; 8] = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"];
    for (i, u) in USERS.iter().enumerate() {
        let i = i as i64;
        v.push((10 + i, 1, 8, Some(u), "other", 1, D2 + 10 + i, "new"));
    }
    v
}

/// One activity event: (school, device, kind, url, at).
const ACTIVITY: [(i64, i64, &str, &str, i64); 7] = [
    (1, 7, "web", "https://Bad.Example/x", D1 - 1000),
    (1, 7, "web", "https://games.test:8080/", D2 - 5000),
    (
        1,
        7,
        "web",
        "https://old.test/",
        D2 - SITE_WINDOW_MS - 10_000,
    ),
    (1, 8, "web", "https://bad.example/y", D1 + 3),
    (1, 7, "app", "https://app.test/", D2 - 2),
    // Another school's, on the same device id; a device out of scope.
    (2, 7, "web", "https://school2.test/", D2 - 1),
    (1, 9, "web", "https://nine.test/", D1),
];

fn rows() -> String {
    let mut sql = String::from(
        "INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);\n",
    );
    for (id, school, device, user, category, severity, at, status) in violations() {
        let user = user.map_or("NULL".to_string(), |u| format!("'{u}'"));
        sql.push_str(&format!(
            "INSERT INTO violations (id, school_id, device_id, \"user\", term, category, severity,
                 matched, context, source, action, at, status)
             VALUES ({id}, {school}, {device}, {user}, 't', '{category}', {severity},
                 't', 't', 'url', 'log', {at}, '{status}');\n"
        ));
    }
    for (school, device, kind, url, at) in ACTIVITY {
        sql.push_str(&format!(
            "INSERT INTO activity (school_id, device_id, \"user\", kind, url, at, received_at)
             VALUES ({school}, {device}, 'amy', '{kind}', '{url}', {at}, {at});\n"
        ));
    }
    sql
}

/// The server's local day and hour of a moment, as the dashboard defines
/// them (SQLite's `localtime`).
fn local(ms: i64) -> (String, usize) {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.query_row(
        "SELECT date(?1 / 1000, 'unixepoch', 'localtime'),
                CAST(strftime('%H', ?1 / 1000, 'unixepoch', 'localtime') AS INTEGER)",
        [ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn named(name: Option<&str>, count: u64) -> NamedCount {
    NamedCount {
        name: name.map(Into::into),
        count,
    }
}

fn check_dashboard(store: &dyn DashboardStore) -> Summary {
    let scope = DashboardScope {
        devices: vec![7, 8],
        since: D1 - HOUR,
        until: D2 + HOUR,
    };
    let sum = store.safeguarding_summary(1, &scope).unwrap();
    assert_eq!(sum.violations, 17);
    assert_eq!(sum.activity, 5, "web and app events of the scope's devices");

    let (day1, day2) = (local(D1).0, local(D2).0);
    let day = |day: &str, category: &str, severity: u8, count: u64| DayCount {
        day: day.into(),
        category: category.into(),
        severity,
        count,
    };
    assert_eq!(
        sum.by_day,
        [
            day(&day1, "bullying", 1, 2),
            day(&day1, "bullying", 3, 3),
            day(&day2, "adult", 4, 2),
            day(&day2, "adult", 5, 1),
            day(&day2, "other", 1, 8),
            day(&day2, "weapons", 2, 1),
        ]
    );

    // Most first; among equals no user first, then byte order; ten at most.
    assert_eq!(
        sum.top_users,
        [
            named(Some("amy"), 3),
            named(None, 2),
            named(Some("ben"), 2),
            named(Some("Zed"), 1),
            named(Some("cat"), 1),
            named(Some("u1"), 1),
            named(Some("u2"), 1),
            named(Some("u3"), 1),
            named(Some("u4"), 1),
            named(Some("u5"), 1),
        ]
    );

    // Each violation's site is its device's last web visit of this school
    // in the window before it.
    assert_eq!(
        sum.top_sites,
        [
            named(None, 10),
            named(Some("bad.example"), 5),
            named(Some("games.test"), 2),
        ]
    );

    let mut hours = [0u64; 24];
    for (school, device, _, _, at) in ACTIVITY {
        if school == 1 && device != 9 {
            hours[local(at).1] += 1;
        }
    }
    assert_eq!(sum.by_hour, hours);

    assert_eq!(
        sum.by_status,
        [
            named(Some("new"), 13),
            named(Some("closed"), 2),
            named(Some("escalated"), 2),
        ]
    );

    // The period's end is exclusive, its start inclusive.
    let start = store
        .safeguarding_summary(
            1,
            &DashboardScope {
                devices: vec![7],
                since: D1 - HOUR - 1,
                until: D1,
            },
        )
        .unwrap();
    assert_eq!((start.violations, start.activity), (1, 1));
    assert_eq!(start.top_users, [named(Some("amy"), 1)]);

    // Another school sees only its own.
    let dale = store.safeguarding_summary(2, &scope).unwrap();
    assert_eq!((dale.violations, dale.activity), (1, 1));
    assert_eq!(dale.top_users, [named(Some("amy"), 1)]);
    assert_eq!(dale.top_sites, [named(None, 1)], "its visit is a day later");
    assert_eq!(dale.by_day, [day(&day1, "bullying", 3, 1)]);

    // No devices, or an empty period: nothing.
    for empty in [
        DashboardScope {
            devices: vec![],
            ..scope.clone()
        },
        DashboardScope {
            since: D2,
            until: D2,
            ..scope.clone()
        },
        DashboardScope {
            devices: vec![99],
            ..scope.clone()
        },
    ] {
        assert_eq!(
            store.safeguarding_summary(1, &empty).unwrap(),
            Summary::default()
        );
    }
    sum
}

#[test]
fn the_dashboard_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(&rows()).unwrap();
    let on_sqlite = check_dashboard(&lite);

    // PostgreSQL.
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(&rows()).unwrap();
    common::pg::move_sequences_on(&mut raw, &["schools", "violations"]);
    assert_eq!(check_dashboard(&store), on_sqlite);
}
