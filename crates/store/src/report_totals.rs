//! Report aggregates: counted with GROUP BY over a report's whole period, so a
//! report never sums a truncated list of rows.

use crate::sql::{Engine, Sql};

use crate::{Result, SchoolId};

/// What a report covers: these devices, `since..until` (ms).
#[derive(Debug, Clone, Default)]
pub struct ReportScope {
    /// The devices (those the report's creator may see); empty: nothing.
    pub devices: Vec<i64>,
    /// From (ms, inclusive).
    pub since: i64,
    /// Until (ms, exclusive).
    pub until: i64,
}

impl ReportScope {
    /// The device ids as one JSON parameter (`IN (SELECT value FROM
    /// json_each(?))`), so any number of devices fits one statement.
    fn devices_json(&self) -> String {
        serde_json::to_string(&self.devices).unwrap_or_else(|_| "[]".into())
    }
}

/// Violations of one user in one category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationTotal {
    /// The user (`None`: no one logged in).
    pub user: Option<String>,
    /// Category.
    pub category: String,
    /// How many.
    pub count: u64,
    /// Highest severity among them.
    pub max_severity: u8,
}

/// Web visits of one user to one website.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteTotal {
    /// Host name, lower case (`None`: no host in the URL).
    pub host: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// Visits.
    pub count: u64,
}

/// Activity events of one kind on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityTotal {
    /// Device.
    pub device_id: i64,
    /// Kind (`web`, `app`, …).
    pub kind: String,
    /// Events.
    pub count: u64,
}

/// The devices of a scope in SQL: a JSON array in `?4`, read by each
/// engine's own functions.
fn in_scope(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "device_id IN (SELECT value FROM json_each(?4))",
        Engine::Postgres => {
            "device_id IN (SELECT CAST(jsonb_array_elements_text(CAST(?4 AS TEXT)::jsonb) AS BIGINT))"
        }
    }
}

pub(crate) fn violations(
    db: &mut dyn Sql,
    school: SchoolId,
    s: &ReportScope,
) -> Result<Vec<ViolationTotal>> {
    let scope = in_scope(db.engine());
    db.query(
        &format!(
            "SELECT \"user\", category, COUNT(*), MAX(severity) FROM violations
             WHERE school_id = ?1 AND at >= ?2 AND at < ?3 AND {scope}
             GROUP BY \"user\", category"
        ),
        &[&school, &s.since, &s.until, &s.devices_json()],
    )?
    .iter()
    .map(|r| {
        Ok(ViolationTotal {
            user: r.get(0)?,
            category: r.get(1)?,
            count: r.get(2)?,
            max_severity: r.get(3)?,
        })
    })
    .collect()
}

/// Web visits per (host, user), over the whole period.
pub(crate) fn websites(
    db: &mut dyn Sql,
    school: SchoolId,
    s: &ReportScope,
) -> Result<Vec<WebsiteTotal>> {
    let engine = db.engine();
    let scope = in_scope(engine);
    // The host of each URL in lower case, cut out step by step (scheme,
    // path, query, fragment, user, port; an IPv6 address kept in its
    // brackets).
    let sql = format!(
        "WITH w AS (
            SELECT \"user\", CASE WHEN instr(url, '://') > 0
                              THEN substr(url, instr(url, '://') + 3) ELSE '' END AS s
            FROM activity
            WHERE school_id = ?1 AND kind = 'web' AND at >= ?2 AND at < ?3 AND {scope}),
         a AS (SELECT \"user\", CASE WHEN instr(s, '/') > 0 THEN substr(s, 1, instr(s, '/') - 1) ELSE s END AS s FROM w),
         b AS (SELECT \"user\", CASE WHEN instr(s, '?') > 0 THEN substr(s, 1, instr(s, '?') - 1) ELSE s END AS s FROM a),
         c AS (SELECT \"user\", CASE WHEN instr(s, '#') > 0 THEN substr(s, 1, instr(s, '#') - 1) ELSE s END AS s FROM b),
         d AS (SELECT \"user\", CASE WHEN instr(s, '@') > 0 THEN substr(s, instr(s, '@') + 1) ELSE s END AS s FROM c),
         h AS (SELECT \"user\", lower(CASE WHEN s LIKE '[%' THEN substr(s, 1, instr(s, ']'))
                                       WHEN instr(s, ':') > 0 THEN substr(s, 1, instr(s, ':') - 1)
                                       ELSE s END) AS host FROM d)
         SELECT NULLIF(host, ''), \"user\", COUNT(*) FROM h GROUP BY 1, 2"
    );
    let sql = match engine {
        Engine::Sqlite => sql,
        Engine::Postgres => sql.replace("instr(", "strpos("),
    };
    db.query(&sql, &[&school, &s.since, &s.until, &s.devices_json()])?
        .iter()
        .map(|r| {
            Ok(WebsiteTotal {
                host: r.get(0)?,
                user: r.get(1)?,
                count: r.get(2)?,
            })
        })
        .collect()
}

pub(crate) fn activity(
    db: &mut dyn Sql,
    school: SchoolId,
    s: &ReportScope,
) -> Result<Vec<ActivityTotal>> {
    let scope = in_scope(db.engine());
    db.query(
        &format!(
            "SELECT device_id, kind, COUNT(*) FROM activity
             WHERE school_id = ?1 AND at >= ?2 AND at < ?3 AND {scope}
             GROUP BY device_id, kind"
        ),
        &[&school, &s.since, &s.until, &s.devices_json()],
    )?
    .iter()
    .map(|r| {
        Ok(ActivityTotal {
            device_id: r.get(0)?,
            kind: r.get(1)?,
            count: r.get(2)?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewDevice, SqliteStore, Store, Violation};
    use lectern_proto::ActivityEvent;

    fn web(url: &str, user: &str, at: i64) -> ActivityEvent {
        ActivityEvent {
            kind: "web".into(),
            url: Some(url.into()),
            user: Some(user.into()),
            at,
            ..Default::default()
        }
    }

    /// 12,000 events (more than any row list returns) are all counted, and only
    /// the scope's devices and period count.
    #[test]
    fn totals_cover_the_whole_period_and_only_the_scope() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("S").unwrap();
        let (token, _) = s
            .create_enrollment_token(school, "", 2, crate::now_ms() + 60_000, "t")
            .unwrap();
        let dev = |h: &str| {
            s.enroll_device(
                &token,
                &NewDevice {
                    hostname: h.into(),
                    os: "linux".into(),
                    agent_version: "1".into(),
                },
            )
            .unwrap()
            .unwrap()
            .0
            .id
        };
        let (a, b) = (dev("A"), dev("B"));
        let many: Vec<ActivityEvent> = (0..12_000)
            .map(|i| web("https://Example.org:8443/p?q=1", "amy", 1_000 + i))
            .collect();
        s.add_activity(school, a, None, &many).unwrap();
        let odd = [
            web("http://bob@[::1]:80/x", "amy", 2_000),
            web("https://site.test#frag", "amy", 2_000),
            web("about:blank", "amy", 2_000),
            web("https://late.test/", "amy", 99_000),
        ];
        s.add_activity(school, a, None, &odd).unwrap();
        s.add_activity(school, b, None, &[web("https://other.test/", "bea", 2_000)])
            .unwrap();
        for sev in [2, 4] {
            s.add_violation(
                school,
                &Violation {
                    id: 0,
                    device_id: a,
                    user: Some("amy".into()),
                    term: "t".into(),
                    category: "c".into(),
                    severity: sev,
                    matched: "t".into(),
                    context: "t".into(),
                    source: "url".into(),
                    action: "log".into(),
                    screenshots: 0,
                    at: 3_000,
                    person_id: None,
                    person: None,
                    retrospective: false,
                },
            )
            .unwrap();
        }
        let scope = ReportScope {
            devices: vec![a],
            since: 0,
            until: 50_000,
        };
        let mut sites = s.website_totals(school, &scope).unwrap();
        sites.sort_by(|x, y| x.host.cmp(&y.host));
        let got: Vec<(Option<&str>, u64)> =
            sites.iter().map(|t| (t.host.as_deref(), t.count)).collect();
        assert_eq!(
            got,
            [
                (None, 1),
                (Some("[::1]"), 1),
                (Some("example.org"), 12_000),
                (Some("site.test"), 1)
            ]
        );
        let acts = s.activity_totals(school, &scope).unwrap();
        assert_eq!(
            acts,
            [ActivityTotal {
                device_id: a,
                kind: "web".into(),
                count: 12_003
            }]
        );
        let v = s.violation_totals(school, &scope).unwrap();
        assert_eq!(
            v,
            [ViolationTotal {
                user: Some("amy".into()),
                category: "c".into(),
                count: 2,
                max_severity: 4
            }]
        );
        let none = ReportScope {
            devices: vec![],
            ..scope
        };
        assert!(s.website_totals(school, &none).unwrap().is_empty());
    }
}
