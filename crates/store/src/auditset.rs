//! Per-school settings overrides and the audit log's filtered search
//! (migration 0015).
//!
//! A setting is stored as its JSON value under its key, with who set it and
//! when; the server validates keys and values (the store keeps what it is
//! given). The audit search filters in SQL so pages stay full and `before`
//! pages on correctly.

use crate::pg::PgStore;
use crate::sql::{in_tx, Engine, Sql};
use serde::Serialize;

use crate::{AuditEntry, AuditReader, Result, SchoolId, SqliteStore};

/// One stored override of a school setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingRow {
    /// The setting's key (e.g. `activity_days`).
    pub key: String,
    /// Its value as JSON text.
    pub value: String,
    /// The console user who set it.
    pub set_by: String,
    /// When (ms since epoch).
    pub set_at: i64,
}

/// What the audit log is searched for; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries by this actor (exact, case-insensitive).
    pub actor: Option<String>,
    /// Entries whose action is this or begins with `this.` (so `command`
    /// finds `command.lock`).
    pub action: Option<String>,
    /// Entries naming this device.
    pub device: Option<i64>,
    /// Entries whose outcome falls in this class (`ok`, `denied` or
    /// `failed`, see [`OUTCOME_CLASS_SQL`]); outcomes are free text
    /// ("sent to 3, offline 1, failed 0"), so the class is worked out.
    pub outcome: Option<String>,
    /// At or after (ms).
    pub since: Option<i64>,
    /// Before (ms).
    pub until: Option<i64>,
    /// Entries with an id below this (paging).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// The class of an entry's outcome in SQL: `denied` for refusals (a
/// missing right, a refused command, a bad or rate-limited login), `failed`
/// for failures (`failed…`, `missed`, or a count "failed N" above 0), else
/// `ok`.
pub const OUTCOME_CLASS_SQL: &str = "CASE
    WHEN outcome IN ('denied', 'rate_limited', 'bad_credentials') OR lower(outcome) LIKE 'refused%' THEN 'denied'
    WHEN lower(outcome) LIKE 'failed%' OR outcome = 'missed' OR outcome GLOB '*failed [1-9]*' THEN 'failed'
    ELSE 'ok' END";

/// Settings overrides and the audit search.
pub trait AuditSetStore: Send + Sync {
    /// The school's stored overrides, by key.
    fn school_settings(&self, school: SchoolId) -> Result<Vec<SettingRow>>;
    /// Stores (replaces) overrides in one transaction.
    fn set_school_settings(&self, school: SchoolId, rows: &[SettingRow]) -> Result<()>;
    /// Removes an override; false if there was none.
    fn clear_school_setting(&self, school: SchoolId, key: &str) -> Result<bool>;
    /// Audit entries matching `filter`, newest first, only those `reader`
    /// may read when given (see [`AuditReader`]).
    fn audit_search(
        &self,
        school: SchoolId,
        filter: &AuditFilter,
        reader: Option<&AuditReader>,
    ) -> Result<Vec<AuditEntry>>;
}

/// [`OUTCOME_CLASS_SQL`] as `engine` writes it (PostgreSQL has no `GLOB`:
/// a regular expression says the same; `LIKE` is on `lower()`, as SQLite's
/// ignores case and PostgreSQL's does not).
fn outcome_class(engine: Engine) -> String {
    match engine {
        Engine::Sqlite => OUTCOME_CLASS_SQL.to_string(),
        Engine::Postgres => {
            OUTCOME_CLASS_SQL.replace("outcome GLOB '*failed [1-9]*'", "outcome ~ 'failed [1-9]'")
        }
    }
}

fn school_settings(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<SettingRow>> {
    db.query(
        "SELECT key, value, set_by, set_at FROM school_settings WHERE school_id = ?1 ORDER BY key",
        &[&school],
    )?
    .iter()
    .map(|r| {
        Ok(SettingRow {
            key: r.get(0)?,
            value: r.get(1)?,
            set_by: r.get(2)?,
            set_at: r.get(3)?,
        })
    })
    .collect()
}

fn set_school_settings(db: &mut dyn Sql, school: SchoolId, rows: &[SettingRow]) -> Result<()> {
    in_tx(db, |db| {
        for r in rows {
            db.execute(
                "INSERT INTO school_settings (school_id, key, value, set_by, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (school_id, key) DO UPDATE
                 SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at",
                &[&school, &r.key, &r.value, &r.set_by, &r.set_at],
            )?;
        }
        Ok(())
    })
}

fn clear_school_setting(db: &mut dyn Sql, school: SchoolId, key: &str) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM school_settings WHERE school_id = ?1 AND key = ?2",
        &[&school, &key],
    )? > 0)
}

fn audit_search(
    db: &mut dyn Sql,
    school: SchoolId,
    f: &AuditFilter,
    reader: Option<&AuditReader>,
) -> Result<Vec<AuditEntry>> {
    let engine = db.engine();
    // The device lists are JSON arrays, read by each engine's functions;
    // the actor is matched without regard to case.
    let readable = crate::schools::readable_entries(engine);
    let (on_device, same_actor) = match engine {
        Engine::Sqlite => (
            "EXISTS (SELECT 1 FROM json_each(audit_log.devices) d WHERE d.value = ?8)",
            "actor = ?6 COLLATE NOCASE",
        ),
        Engine::Postgres => (
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(audit_log.devices::jsonb) d(v)
                     WHERE d.v = CAST(CAST(?8 AS BIGINT) AS TEXT))",
            "lower(actor) = lower(CAST(?6 AS TEXT))",
        ),
    };
    let class = outcome_class(engine);
    let sql = format!(
        "SELECT {cols} FROM audit_log
         WHERE school_id = ?1 AND id < ?2
           AND (CAST(?4 AS TEXT) IS NULL OR actor = ?4 OR ({readable}))
           AND (CAST(?6 AS TEXT) IS NULL OR {same_actor})
           AND (CAST(?7 AS TEXT) IS NULL OR action = ?7
                OR substr(action, 1, length(?7) + 1) = ?7 || '.')
           AND (CAST(?8 AS BIGINT) IS NULL OR {on_device})
           AND (CAST(?9 AS TEXT) IS NULL OR ({class}) = ?9)
           AND (CAST(?10 AS BIGINT) IS NULL OR at >= ?10)
           AND (CAST(?11 AS BIGINT) IS NULL OR at < ?11)
         ORDER BY id DESC LIMIT ?3",
        cols = crate::schools::AUDIT_COLS
    );
    let reader_actor = reader.map(|r| r.username.as_str());
    let visible = serde_json::to_string(&reader.map(|r| &r.devices[..]).unwrap_or_default())
        .unwrap_or_else(|_| "[]".into());
    db.query(
        &sql,
        &[
            &school,
            &f.before.unwrap_or(i64::MAX),
            &f.limit,
            &reader_actor,
            &visible,
            &f.actor,
            &f.action,
            &f.device,
            &f.outcome,
            &f.since,
            &f.until,
        ],
    )?
    .iter()
    .map(crate::schools::audit_entry_of)
    .collect()
}

/// The same calls on either engine.
macro_rules! auditset_store {
    ($t:ty) => {
        impl AuditSetStore for $t {
            fn school_settings(&self, school: SchoolId) -> Result<Vec<SettingRow>> {
                self.shared(|db| school_settings(db, school))
            }

            fn set_school_settings(&self, school: SchoolId, rows: &[SettingRow]) -> Result<()> {
                self.shared(|db| set_school_settings(db, school, rows))
            }

            fn clear_school_setting(&self, school: SchoolId, key: &str) -> Result<bool> {
                self.shared(|db| clear_school_setting(db, school, key))
            }

            fn audit_search(
                &self,
                school: SchoolId,
                filter: &AuditFilter,
                reader: Option<&AuditReader>,
            ) -> Result<Vec<AuditEntry>> {
                self.shared(|db| audit_search(db, school, filter, reader))
            }
        }
    };
}

auditset_store!(SqliteStore);
auditset_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{now_ms, NewAudit, Store};

    fn entry(
        school: SchoolId,
        actor: &str,
        action: &str,
        devices: Vec<i64>,
        outcome: &str,
    ) -> NewAudit {
        NewAudit {
            school_id: school,
            actor: actor.into(),
            address: None,
            action: action.into(),
            detail: String::new(),
            devices,
            command_id: None,
            outcome: outcome.into(),
        }
    }

    #[test]
    fn audit_filters_narrow_and_settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("A").unwrap();
        let other = s.create_school("B").unwrap();
        for (sch, actor, action, devices, outcome) in [
            (school, "Ann", "command.lock", vec![1, 2], "ok"),
            (school, "bob", "command.lock", vec![2], "denied"),
            (school, "ann", "commander", vec![], "ok"),
            (other, "ann", "command.lock", vec![2], "ok"),
            (
                school,
                "cy",
                "command.lock",
                vec![3],
                "sent to 1, offline 0, failed 2",
            ),
            (
                school,
                "cy",
                "command.lock",
                vec![3],
                "sent to 3, offline 0, failed 0",
            ),
            (school, "cy", "command.lock", vec![3], "refused: no"),
        ] {
            s.audit(&entry(sch, actor, action, devices, outcome))
                .unwrap();
        }
        let find = |f: AuditFilter| {
            s.audit_search(school, &AuditFilter { limit: 100, ..f }, None)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        };
        let all = AuditFilter::default;
        assert_eq!(find(all()), vec![7, 6, 5, 3, 2, 1]);
        let actor = Some("ANN".to_string());
        assert_eq!(find(AuditFilter { actor, ..all() }), vec![3, 1]);
        let action = Some("command".to_string());
        assert_eq!(find(AuditFilter { action, ..all() }), vec![7, 6, 5, 2, 1]);
        assert_eq!(
            find(AuditFilter {
                device: Some(1),
                ..all()
            }),
            vec![1]
        );
        let class = |c: &str| {
            find(AuditFilter {
                outcome: Some(c.into()),
                ..all()
            })
        };
        assert_eq!(class("denied"), vec![7, 2]);
        assert_eq!(class("failed"), vec![5]);
        assert_eq!(class("ok"), vec![6, 3, 1]);
        assert_eq!(
            find(AuditFilter {
                before: Some(5),
                ..all()
            }),
            vec![3, 2, 1]
        );
        let since = Some(now_ms() + 60_000);
        assert!(find(AuditFilter { since, ..all() }).is_empty());
        let until = Some(now_ms() + 60_000);
        assert_eq!(find(AuditFilter { until, ..all() }).len(), 6);

        let row = |k: &str, v: &str| SettingRow {
            key: k.into(),
            value: v.into(),
            set_by: "ann".into(),
            set_at: 5,
        };
        s.set_school_settings(school, &[row("a", "1"), row("b", "2")])
            .unwrap();
        s.set_school_settings(school, &[row("a", "3")]).unwrap();
        assert_eq!(
            s.school_settings(school).unwrap(),
            vec![row("a", "3"), row("b", "2")]
        );
        assert!(s.school_settings(other).unwrap().is_empty());
        assert!(s.clear_school_setting(school, "a").unwrap());
        assert!(!s.clear_school_setting(school, "a").unwrap());
        assert_eq!(s.school_settings(school).unwrap(), vec![row("b", "2")]);
    }
}
