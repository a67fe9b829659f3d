//! The activity log: events from agents and extensions, filtered for the
//! console's log viewer.

use lectern_proto::ActivityEvent;
use rusqlite::{params, Connection};
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
    conn: &mut Connection,
    school: SchoolId,
    device: i64,
    first_seq: Option<i64>,
    events: &[ActivityEvent],
) -> Result<usize> {
    let tx = conn.transaction()?;
    let mut added = 0;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO activity
               (school_id, device_id, seq, user, kind, url, title, app, at, received_at, person_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                     (SELECT person_id FROM person_aliases WHERE school_id = ?1 AND value = ?4))",
        )?;
        let now = now_ms();
        for (i, e) in events.iter().enumerate() {
            let seq = first_seq.map(|s| s + i as i64);
            added += stmt.execute(params![
                school, device, seq, e.user, e.kind, e.url, e.title, e.app, e.at, now
            ])?;
        }
    }
    tx.commit()?;
    Ok(added)
}

/// Newest first.
pub(crate) fn list(
    conn: &Connection,
    school: SchoolId,
    f: &ActivityFilter,
) -> Result<Vec<ActivityRow>> {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT a.id, a.device_id, a.seq, a.user, a.kind, a.url, a.title, a.app, a.at, a.person_id, p.display_name \
         FROM activity a LEFT JOIN people p ON p.id = a.person_id WHERE a.school_id = ?1",
    );
    let mut args: Vec<Value> = vec![school.into()];
    // Adds a value and returns its placeholder.
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(devices) = &f.devices {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = devices.iter().map(|d| arg((*d).into())).collect();
        sql.push_str(&format!(" AND device_id IN ({})", marks.join(",")));
    }
    if let Some(u) = &f.user {
        sql.push_str(&format!(" AND user = {}", arg(u.clone().into())));
    }
    if let Some(k) = &f.kind {
        sql.push_str(&format!(" AND kind = {}", arg(k.clone().into())));
    }
    if let Some(s) = f.since {
        sql.push_str(&format!(" AND at >= {}", arg(s.into())));
    }
    if let Some(u) = f.until {
        sql.push_str(&format!(" AND at < {}", arg(u.into())));
    }
    if let Some(t) = &f.text {
        // instr, not LIKE: the text is matched literally, `%` and `_` included.
        let p = arg(t.to_lowercase().into());
        sql.push_str(&format!(
            " AND (instr(lower(coalesce(url,'')), {p}) > 0 OR instr(lower(coalesce(title,'')), {p}) > 0 \
             OR instr(lower(coalesce(app,'')), {p}) > 0)"
        ));
    }
    let limit = arg(f.limit.clamp(1, 10_000).into());
    sql.push_str(&format!(" ORDER BY a.at DESC, a.id DESC LIMIT {limit}"));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
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
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
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
