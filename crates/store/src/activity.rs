//! The activity log: events from agents and extensions, filtered for the
//! console's log viewer.

use crate::sql::{in_tx, Engine, Sql, ToValue, Value};
use lectern_proto::ActivityEvent;
use serde::Serialize;

use crate::{now_ms, Result, SchoolId};

/// One stored activity event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    /// Row id.
    pub id: i64,
    /// Device.
    pub device_id: i64,
    /// The device's sequence number for the event, when it numbers them.
    pub seq: Option<i64>,
    /// User, as the device reported it.
    pub user: Option<String>,
    /// The person `user` was an alias of when the event was stored.
    pub person_id: Option<i64>,
    /// That person's display name now (`None`: no person, or deleted since).
    pub person: Option<String>,
    /// Kind (`web`, `app`, …).
    pub kind: String,
    /// Website.
    pub url: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Application.
    pub app: Option<String>,
    /// When it happened (ms).
    pub at: i64,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    /// Only these devices (`None`: any).
    pub devices: Option<Vec<i64>>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// From (ms, inclusive).
    pub since: Option<i64>,
    /// Until (ms, exclusive).
    pub until: Option<i64>,
    /// Text in the URL, title or application.
    pub text: Option<String>,
    /// Most rows.
    pub limit: i64,
}

/// Stores events; with `first_seq`, event `i` has sequence `first_seq + i`
/// and ones already stored are skipped. Returns how many were new.
pub(crate) fn add(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
    first_seq: Option<i64>,
    events: &[ActivityEvent],
) -> Result<usize> {
    let now = now_ms();
    // (The user's name compared as the alias is: case-blind, CITEXT on
    // PostgreSQL; the cast is plain text on SQLite.)
    in_tx(db, |db| {
        let mut added = 0;
        for (i, e) in events.iter().enumerate() {
            let seq = first_seq.map(|s| s + i as i64);
            added += db.execute(
                "INSERT INTO activity
                   (school_id, device_id, seq, \"user\", kind, url, title, app, at, received_at, person_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                         (SELECT person_id FROM person_aliases
                          WHERE school_id = ?1 AND value = CAST(CAST(?4 AS TEXT) AS CITEXT)))
                 ON CONFLICT DO NOTHING",
                &[&school, &device, &seq, &e.user, &e.kind, &e.url, &e.title, &e.app, &e.at, &now],
            )?;
        }
        Ok(added)
    })
}

/// Newest first.
pub(crate) fn list(
    db: &mut dyn Sql,
    school: SchoolId,
    f: &ActivityFilter,
) -> Result<Vec<ActivityRow>> {
    let mut sql = String::from(
        "SELECT a.id, a.device_id, a.seq, a.\"user\", a.kind, a.url, a.title, a.app, a.at, a.person_id, p.display_name \
         FROM activity a LEFT JOIN people p ON p.id = a.person_id WHERE a.school_id = ?1",
    );
    let mut args: Vec<Value> = vec![Value::Int(school)];
    // Adds a value and returns its placeholder.
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(devices) = &f.devices {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = devices.iter().map(|d| arg(Value::Int(*d))).collect();
        sql.push_str(&format!(" AND device_id IN ({})", marks.join(",")));
    }
    if let Some(u) = &f.user {
        sql.push_str(&format!(" AND \"user\" = {}", arg(Value::Text(u.clone()))));
    }
    if let Some(k) = &f.kind {
        sql.push_str(&format!(" AND kind = {}", arg(Value::Text(k.clone()))));
    }
    if let Some(s) = f.since {
        sql.push_str(&format!(" AND at >= {}", arg(Value::Int(s))));
    }
    if let Some(u) = f.until {
        sql.push_str(&format!(" AND at < {}", arg(Value::Int(u))));
    }
    if let Some(t) = &f.text {
        // A position, not LIKE: the text is matched literally, `%` and `_`
        // included (`instr` on SQLite, `strpos` on PostgreSQL).
        let find = match db.engine() {
            Engine::Sqlite => "instr",
            Engine::Postgres => "strpos",
        };
        let p = arg(Value::Text(t.to_lowercase()));
        sql.push_str(&format!(
            " AND ({find}(lower(coalesce(url,'')), {p}) > 0 OR {find}(lower(coalesce(title,'')), {p}) > 0 \
             OR {find}(lower(coalesce(app,'')), {p}) > 0)"
        ));
    }
    let limit = arg(Value::Int(f.limit.clamp(1, 10_000)));
    sql.push_str(&format!(" ORDER BY a.at DESC, a.id DESC LIMIT {limit}"));
    let params: Vec<&dyn ToValue> = args.iter().map(|v| v as &dyn ToValue).collect();
    db.query_built(&sql, &params)?
        .iter()
        .map(|r| {
            Ok(ActivityRow {
                id: r.get(0)?,
                device_id: r.get(1)?,
                seq: r.get(2)?,
                user: r.get(3)?,
                kind: r.get(4)?,
                url: r.get(5)?,
                title: r.get(6)?,
                app: r.get(7)?,
                at: r.get(8)?,
                person_id: r.get(9)?,
                person: r.get(10)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};

    fn ev(kind: &str, url: &str, at: i64) -> ActivityEvent {
        ActivityEvent {
            kind: kind.into(),
            user: Some("amy".into()),
            url: Some(url.into()),
            title: Some(format!("Title of {url}")),
            app: None,
            at,
            blocked: false,
        }
    }

    #[test]
    fn numbered_events_are_stored_once_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        let school = s.create_school("S").unwrap();
        let batch = [
            ev("web", "https://a.example/", 1),
            ev("web", "https://b.example/100%", 2),
        ];
        assert_eq!(s.add_activity(school, 7, Some(10), &batch).unwrap(), 2);
        // A replay overlapping the first batch adds only the new event.
        let replay = [batch[1].clone(), ev("app", "https://c.example/", 3)];
        assert_eq!(s.add_activity(school, 7, Some(11), &replay).unwrap(), 1);
        // Unnumbered events are always new.
        assert_eq!(s.add_activity(school, 8, None, &batch[..1]).unwrap(), 1);
        assert_eq!(s.add_activity(school, 8, None, &batch[..1]).unwrap(), 1);

        let all = s
            .activity(
                school,
                &ActivityFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
        let f = |f: ActivityFilter| {
            s.activity(school, &ActivityFilter { limit: 100, ..f })
                .unwrap()
        };
        assert_eq!(
            f(ActivityFilter {
                devices: Some(vec![7]),
                ..Default::default()
            })
            .len(),
            3
        );
        assert_eq!(
            f(ActivityFilter {
                devices: Some(vec![]),
                ..Default::default()
            })
            .len(),
            0
        );
        assert_eq!(
            f(ActivityFilter {
                kind: Some("app".into()),
                ..Default::default()
            })
            .len(),
            1
        );
        assert_eq!(
            f(ActivityFilter {
                since: Some(2),
                until: Some(3),
                ..Default::default()
            })
            .len(),
            1
        );
        // Text search is literal: `%` is not a wildcard.
        let hits = f(ActivityFilter {
            text: Some("100%".into()),
            ..Default::default()
        });
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].seq, Some(11));
        assert_eq!(
            f(ActivityFilter {
                text: Some("%".into()),
                ..Default::default()
            })
            .len(),
            1
        );
        assert_eq!(
            f(ActivityFilter {
                user: Some("ben".into()),
                ..Default::default()
            })
            .len(),
            0
        );
    }
}
