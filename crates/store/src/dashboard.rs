//! The safeguarding dashboard's numbers (issue 15, point 7): violations per
//! day by category and severity, the most-flagged users and sites, activity
//! by hour of the day, and cases by status. Every figure is counted in SQL
//! with GROUP BY over the whole period, over the devices the caller may see
//! (passed as one JSON parameter), using the `(school_id, at)` indexes of
//! `violations` and `activity` and `(device_id, at)` of `activity`.
//!
//! Days and hours are the server's local time (SQLite's `localtime`, which
//! follows daylight saving), as the timetable is, on either engine. Long
//! aggregates run on SQLite's read-only connection, so they never hold up
//! writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{Engine, Lite, Row, Sql};
use crate::{Result, SchoolId, SqliteStore};

/// How many users and sites the "most flagged" lists hold.
pub const TOP: usize = 10;

/// A violation's site is the last website its device visited at most this
/// long before it (ms): the page the student was on.
pub const SITE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// What the dashboard covers: these devices, `since..until` (ms).
#[derive(Debug, Clone, Default)]
pub struct DashboardScope {
    /// The devices (those the caller may see, narrowed to a group); empty:
    /// nothing.
    pub devices: Vec<i64>,
    /// From (ms, inclusive).
    pub since: i64,
    /// Until (ms, exclusive).
    pub until: i64,
}

impl DashboardScope {
    /// The device ids as one JSON parameter (`IN (SELECT value FROM
    /// json_each(?))`), so any number of devices fits one statement.
    fn devices_json(&self) -> String {
        serde_json::to_string(&self.devices).unwrap_or_else(|_| "[]".into())
    }
}

/// Violations of one day, category and severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day, `YYYY-MM-DD` (server local time).
    pub day: String,
    /// Category.
    pub category: String,
    /// 1 to 5.
    pub severity: u8,
    /// How many.
    pub count: u64,
}

/// A name (user, site or status) and how many violations it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedCount {
    /// The user as the device reported it, the site's host name, or the
    /// status; `None`: no user logged in, or no website open.
    pub name: Option<String>,
    /// How many.
    pub count: u64,
}

/// Everything the dashboard draws.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Violations in the period.
    pub violations: u64,
    /// Activity events in the period.
    pub activity: u64,
    /// Violations per day, category and severity (days without any are
    /// left out).
    pub by_day: Vec<DayCount>,
    /// The [`TOP`] users with most violations, most first.
    pub top_users: Vec<NamedCount>,
    /// The [`TOP`] sites with most violations, most first.
    pub top_sites: Vec<NamedCount>,
    /// Activity events per hour of the day, 0 to 23.
    pub by_hour: [u64; 24],
    /// Violations per review status (`violations.status`, the review
    /// workflow's), most first.
    pub by_status: Vec<NamedCount>,
}

/// The dashboard's queries.
pub trait DashboardStore: Send + Sync {
    /// The dashboard's figures for `scope`.
    fn safeguarding_summary(&self, school: SchoolId, scope: &DashboardScope) -> Result<Summary>;
}

/// The same call on either engine.
macro_rules! dashboard_store {
    ($t:ty) => {
        impl DashboardStore for $t {
            fn safeguarding_summary(
                &self,
                school: SchoolId,
                scope: &DashboardScope,
            ) -> Result<Summary> {
                self.shared_read(|db| summary(db, school, scope))
            }
        }
    };
}

dashboard_store!(SqliteStore);
dashboard_store!(PgStore);

fn summary(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<Summary> {
    if s.devices.is_empty() || s.since >= s.until {
        return Ok(Summary::default());
    }
    let by_day = by_day(db, school, s)?;
    let by_hour = by_hour(db, school, s)?;
    Ok(Summary {
        violations: by_day.iter().map(|d| d.count).sum(),
        activity: by_hour.iter().sum(),
        top_users: top_users(db, school, s)?,
        top_sites: top_sites(db, school, s)?,
        by_status: by_status(db, school, s)?,
        by_day,
        by_hour,
    })
}

/// The scope's conditions on a table with `school_id`, `at` and `device_id`;
/// the devices are a JSON array in `?4`, read by each engine's own
/// functions.
fn in_scope(engine: Engine) -> String {
    let devices = match engine {
        Engine::Sqlite => "SELECT value FROM json_each(?4)",
        Engine::Postgres => {
            "SELECT CAST(jsonb_array_elements_text(CAST(?4 AS TEXT)::jsonb) AS BIGINT)"
        }
    };
    format!("school_id = ?1 AND at >= ?2 AND at < ?3 AND device_id IN ({devices})")
}

/// Rows are counted per quarter hour (UTC), then placed in local days and
/// hours by [`local_times`].
const QUARTER_MS: i64 = 15 * 60 * 1000;

fn by_day_sql(engine: Engine) -> String {
    let scope = in_scope(engine);
    format!(
        "SELECT at / {QUARTER_MS} AS q, category, severity, COUNT(*)
         FROM violations WHERE {scope}
         GROUP BY q, category, severity"
    )
}

/// No user sorts first among equal counts, as SQLite sorts NULL
/// (PostgreSQL would put it last).
fn top_users_sql(engine: Engine) -> String {
    let scope = in_scope(engine);
    format!(
        "SELECT \"user\", COUNT(*) AS n FROM violations WHERE {scope}
         GROUP BY \"user\" ORDER BY n DESC, \"user\" NULLS FIRST LIMIT ?5"
    )
}

/// Of two web events at the same moment, the later one stored is the site,
/// on both engines.
fn top_sites_sql(engine: Engine) -> String {
    let scope = in_scope(engine);
    format!(
        "SELECT (SELECT a.url FROM activity a
                 WHERE a.device_id = v.device_id AND a.school_id = ?1 AND a.kind = 'web'
                   AND a.at <= v.at AND a.at > v.at - ?5
                 ORDER BY a.at DESC, a.id DESC LIMIT 1) AS url, COUNT(*)
         FROM violations v WHERE {scope} GROUP BY url"
    )
}

fn by_hour_sql(engine: Engine) -> String {
    let scope = in_scope(engine);
    format!("SELECT at / {QUARTER_MS} AS q, COUNT(*) FROM activity WHERE {scope} GROUP BY q")
}

/// SQLite's plan for each of the dashboard's queries (`EXPLAIN QUERY PLAN`,
/// one line per step), for the benchmark to show which indexes they use.
pub fn query_plans(store: &SqliteStore) -> Result<Vec<(&'static str, String)>> {
    store.shared(|db| {
        let mut out = Vec::new();
        for (name, sql) in [
            ("by_day", by_day_sql(Engine::Sqlite)),
            ("top_users", top_users_sql(Engine::Sqlite)),
            ("top_sites", top_sites_sql(Engine::Sqlite)),
            ("by_hour", by_hour_sql(Engine::Sqlite)),
        ] {
            let devices = "[1]".to_string();
            let args: [&dyn crate::sql::ToValue; 5] = [&0i64, &0i64, &1i64, &devices, &1i64];
            // As many arguments as the query has parameters (`?5` or not).
            let n = if sql.contains("?5") { 5 } else { 4 };
            let steps = db
                .query_built(&format!("EXPLAIN QUERY PLAN {sql}"), &args[..n])?
                .iter()
                .map(|r| r.get::<String>(3))
                .collect::<Result<Vec<_>>>()?;
            out.push((name, steps.join("; ")));
        }
        Ok(out)
    })
}

/// The scope's first four parameters.
fn scoped<T>(
    db: &mut dyn Sql,
    sql: &str,
    school: SchoolId,
    s: &DashboardScope,
    fifth: Option<i64>,
    row: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let devices = s.devices_json();
    let rows = match fifth {
        None => db.query(sql, &[&school, &s.since, &s.until, &devices])?,
        Some(p) => db.query(sql, &[&school, &s.since, &s.until, &devices, &p])?,
    };
    rows.iter().map(row).collect()
}

fn by_day(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<Vec<DayCount>> {
    let sql = by_day_sql(db.engine());
    let rows = scoped(db, &sql, school, s, None, |r| {
        Ok((
            r.get::<i64>(0)?,
            r.get::<String>(1)?,
            r.get::<u8>(2)?,
            r.get::<u64>(3)?,
        ))
    })?;
    let local = local_times(db, rows.iter().map(|r| r.0))?;
    let mut days: BTreeMap<(String, String, u8), u64> = BTreeMap::new();
    for (q, category, severity, n) in rows {
        let day = local.get(&q).map(|l| l.0.clone()).unwrap_or_default();
        *days.entry((day, category, severity)).or_default() += n;
    }
    Ok(days
        .into_iter()
        .map(|((day, category, severity), count)| DayCount {
            day,
            category,
            severity,
            count,
        })
        .collect())
}

/// The server's local day (`YYYY-MM-DD`) and hour of each quarter hour
/// (ms / [`QUARTER_MS`]): SQLite's `localtime`, once per quarter rather
/// than once per row. Every time zone's offset and daylight-saving change
/// falls on a quarter hour, so a quarter is never split between two days
/// or hours.
///
/// On PostgreSQL too the conversion is SQLite's, on a connection in memory:
/// PostgreSQL's local time is its own server's (its `TimeZone` setting),
/// which need not be this server's.
fn local_times(
    db: &mut dyn Sql,
    quarters: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, (String, u8)>> {
    let quarters: Vec<i64> = quarters.collect::<BTreeSet<_>>().into_iter().collect();
    if quarters.is_empty() {
        return Ok(HashMap::new());
    }
    let json = serde_json::to_string(&quarters).unwrap_or_else(|_| "[]".into());
    let sql = "SELECT value, date(value * 900, 'unixepoch', 'localtime'),
                      CAST(strftime('%H', value * 900, 'unixepoch', 'localtime') AS INTEGER)
               FROM json_each(?1)";
    let rows = match db.engine() {
        Engine::Sqlite => db.query(sql, &[&json])?,
        Engine::Postgres => {
            let clock = rusqlite::Connection::open_in_memory()?;
            Lite(&clock).query(sql, &[&json])?
        }
    };
    rows.iter()
        .map(|r| Ok((r.get::<i64>(0)?, (r.get::<String>(1)?, r.get::<u8>(2)?))))
        .collect()
}

fn top_users(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<Vec<NamedCount>> {
    let sql = top_users_sql(db.engine());
    scoped(db, &sql, school, s, Some(TOP as i64), named)
}

/// Sites: each violation's site is the host of the last web event of its
/// device in the [`SITE_WINDOW_MS`] up to it (one index probe per
/// violation on `activity(device_id, at)`); violations with no such event
/// count under no site. URLs are counted in SQL, hosts taken apart here.
fn top_sites(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<Vec<NamedCount>> {
    let sql = top_sites_sql(db.engine());
    let rows = scoped(db, &sql, school, s, Some(SITE_WINDOW_MS), named)?;
    let mut hosts: HashMap<Option<String>, u64> = HashMap::new();
    for r in rows {
        *hosts
            .entry(r.name.as_deref().and_then(host_of))
            .or_default() += r.count;
    }
    let mut out: Vec<NamedCount> = hosts
        .into_iter()
        .map(|(name, count)| NamedCount { name, count })
        .collect();
    // Most first; ties by name, so the order never depends on hashing.
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    out.truncate(TOP);
    Ok(out)
}

/// The host of a URL: after `scheme://`, before the path, query or
/// fragment, without `user@` or `:port` (an `[IPv6]` literal keeps its
/// brackets), lower case; `None` when there is none.
pub fn host_of(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_lowercase())
}

fn by_hour(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<[u64; 24]> {
    let sql = by_hour_sql(db.engine());
    let rows = scoped(db, &sql, school, s, None, |r| {
        Ok((r.get::<i64>(0)?, r.get::<u64>(1)?))
    })?;
    let local = local_times(db, rows.iter().map(|r| r.0))?;
    let mut out = [0u64; 24];
    for (q, n) in rows {
        if let Some(slot) = local.get(&q).and_then(|l| out.get_mut(usize::from(l.1))) {
            *slot += n;
        }
    }
    Ok(out)
}

/// Cases by review status (new, in_review, no_concern, escalated, closed).
fn by_status(db: &mut dyn Sql, school: SchoolId, s: &DashboardScope) -> Result<Vec<NamedCount>> {
    let scope = in_scope(db.engine());
    let sql = format!(
        "SELECT status, COUNT(*) AS n FROM violations WHERE {scope}
         GROUP BY status ORDER BY n DESC, status"
    );
    scoped(db, &sql, school, s, None, named)
}

fn named(r: &Row) -> Result<NamedCount> {
    Ok(NamedCount {
        name: r.get(0)?,
        count: r.get(1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewDevice, Store, Violation};
    use lectern_proto::ActivityEvent;

    fn violation(device: i64, user: &str, category: &str, severity: u8, at: i64) -> Violation {
        Violation {
            id: 0,
            device_id: device,
            user: Some(user.into()),
            term: "t".into(),
            category: category.into(),
            severity,
            matched: "t".into(),
            context: "t".into(),
            source: "url".into(),
            action: "log".into(),
            screenshots: 0,
            at,
            person_id: None,
            person: None,
            retrospective: false,
        }
    }

    fn web(url: &str, at: i64) -> ActivityEvent {
        ActivityEvent {
            kind: "web".into(),
            url: Some(url.into()),
            at,
            ..Default::default()
        }
    }

    fn device(s: &SqliteStore, token: &str, host: &str) -> i64 {
        s.enroll_device(
            token,
            &NewDevice {
                hostname: host.into(),
                os: "linux".into(),
                agent_version: "t".into(),
            },
        )
        .unwrap()
        .unwrap()
        .0
        .id
    }

    #[test]
    fn hosts_are_taken_apart() {
        assert_eq!(
            host_of("https://U@Example.ORG:8443/x?y#z").as_deref(),
            Some("example.org")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("[::1]"));
        assert_eq!(host_of("about:blank"), None);
        assert_eq!(host_of("https:///path"), None);
    }

    #[test]
    fn counts_in_scope_only_and_status_once_the_column_exists() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("S").unwrap();
        let (token, _) = s
            .create_enrollment_token(school, "", 2, crate::now_ms() + 60_000, "t")
            .unwrap();
        let (a, b) = (device(&s, &token, "A"), device(&s, &token, "B"));
        let t0 = 1_700_000_000_000; // a fixed time: no clock in the assertions
        s.add_activity(
            school,
            a,
            None,
            &[
                web("https://bad.example/x", t0 - 1000),
                web("https://x.test/", t0 - SITE_WINDOW_MS - 5),
            ],
        )
        .unwrap();
        s.add_activity(school, b, None, &[web("https://other.test/", t0)])
            .unwrap();
        for v in [
            violation(a, "amy", "bullying", 3, t0),
            violation(a, "amy", "bullying", 5, t0 + 1),
            violation(a, "ben", "adult", 3, t0 + 2),
            violation(b, "bea", "adult", 4, t0),
        ] {
            s.add_violation(school, &v).unwrap();
        }
        let scope = DashboardScope {
            devices: vec![a],
            since: t0 - SITE_WINDOW_MS,
            until: t0 + 10,
        };
        let sum = s.dashboard().safeguarding_summary(school, &scope).unwrap();
        assert_eq!(sum.violations, 3);
        assert_eq!(sum.activity, 1, "the older visit is before the period");
        assert_eq!(
            sum.top_users,
            [
                NamedCount {
                    name: Some("amy".into()),
                    count: 2
                },
                NamedCount {
                    name: Some("ben".into()),
                    count: 1
                }
            ]
        );
        assert_eq!(
            sum.top_sites,
            [NamedCount {
                name: Some("bad.example".into()),
                count: 3
            }]
        );
        assert_eq!(sum.by_day.iter().map(|d| d.count).sum::<u64>(), 3);
        assert!(sum
            .by_day
            .iter()
            .any(|d| d.category == "bullying" && d.severity == 5 && d.count == 1));
        assert_eq!(sum.by_hour.iter().sum::<u64>(), 1);
        assert_eq!(
            sum.by_status,
            [NamedCount {
                name: Some("new".into()),
                count: 3
            }]
        );
        // The summary reads on its own connection: it runs while the main
        // connection is held (by a writer, say), rather than waiting for it.
        let shared = std::sync::Arc::new(s);
        let (tx, rx) = std::sync::mpsc::channel();
        let held = shared.clone();
        let reader = shared.clone();
        let scope2 = scope.clone();
        let t = std::thread::spawn(move || {
            held.with(|_| {
                let n = reader
                    .dashboard()
                    .safeguarding_summary(school, &scope2)
                    .map(|s| s.violations);
                tx.send(n).ok();
                Ok(())
            })
        });
        let n = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the summary did not wait for the main connection");
        assert_eq!(n.unwrap(), 3);
        t.join().unwrap().unwrap();
        let s = std::sync::Arc::try_unwrap(shared).ok().unwrap();
        // No devices: nothing, whatever is stored.
        let none = DashboardScope {
            devices: vec![],
            ..scope.clone()
        };
        assert_eq!(
            s.dashboard().safeguarding_summary(school, &none).unwrap(),
            Summary::default()
        );
        // Counted by the review workflow's status.
        s.with(|c| {
            c.execute(
                "UPDATE violations SET status = 'escalated' WHERE severity = 5",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let sum = s.dashboard().safeguarding_summary(school, &scope).unwrap();
        assert_eq!(
            sum.by_status,
            [
                NamedCount {
                    name: Some("new".into()),
                    count: 2
                },
                NamedCount {
                    name: Some("escalated".into()),
                    count: 1
                }
            ]
        );
    }
}
