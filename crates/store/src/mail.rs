//! Safeguarding mail (migration 0023), per school: the SMTP settings with
//! the sealed password, the alert rules, the digest's bookkeeping, and the
//! violation counts a mail carries (never a violation's text).
//!
//! The server validates the settings and rules (JSON) and seals the
//! password; the store keeps what it is given.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::{Result, SchoolId, SqliteStore};

/// A school's stored mail settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    /// The settings as JSON.
    pub config: String,
    /// The sealed password (empty: none).
    pub password: String,
    /// Violations with an id above this go in the next digest.
    pub digest_after: i64,
    /// When the next digest is due (ms); 0 when none is scheduled.
    pub digest_next: i64,
    /// Who saved them last.
    pub updated_by: String,
    /// When (ms).
    pub updated_at: i64,
}

/// One stored alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailRuleRow {
    /// Id.
    pub id: i64,
    /// The rule as JSON.
    pub rule: String,
}

/// How many violations of one device had one severity and category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationCount {
    /// The device (so counts can be scoped to what a recipient may see).
    pub device_id: i64,
    /// 1–5.
    pub severity: u8,
    /// The term's category.
    pub category: String,
    /// How many.
    pub count: i64,
}

/// Store functions for safeguarding mail.
pub trait MailStore: Send + Sync {
    /// The school's mail settings, if any were saved.
    fn mail_settings(&self, school: SchoolId) -> Result<Option<MailRow>>;
    /// Saves the settings; `password` None keeps the stored one, Some("")
    /// clears it. `digest_next` is when the next digest is due (0: none).
    /// The first save starts the digest after the newest violation, so a
    /// first digest never reaches back over the whole history.
    fn set_mail_settings(
        &self,
        school: SchoolId,
        config: &str,
        password: Option<&str>,
        digest_next: i64,
        by: &str,
        at: i64,
    ) -> Result<()>;
    /// The school's alert rules, by id.
    fn mail_rules(&self, school: SchoolId) -> Result<Vec<MailRuleRow>>;
    /// Replaces every rule of the school in one transaction.
    fn set_mail_rules(&self, school: SchoolId, rules: &[String], by: &str, at: i64) -> Result<()>;
    /// Claims the digest due at `due` (ms): if it is still the one due,
    /// moves the next one to `next` and the watermark to the newest
    /// violation, and returns the violation id range `(after, upto]` the
    /// digest covers. None when another turn claimed it first.
    fn claim_digest(&self, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>>;
    /// Violation counts by device, severity and category for ids in
    /// `(after, upto]`.
    fn violation_counts(
        &self,
        school: SchoolId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ViolationCount>>;
}

fn read(c: &Connection, school: SchoolId) -> Result<Option<MailRow>> {
    Ok(c.query_row(
        "SELECT config, password, digest_after, digest_next, updated_by, updated_at
         FROM mail_settings WHERE school_id = ?1",
        params![school],
        |r| {
            Ok(MailRow {
                config: r.get(0)?,
                password: r.get(1)?,
                digest_after: r.get(2)?,
                digest_next: r.get(3)?,
                updated_by: r.get(4)?,
                updated_at: r.get(5)?,
            })
        },
    )
    .optional()?)
}

fn newest_violation(c: &Connection, school: SchoolId) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM violations WHERE school_id = ?1",
        params![school],
        |r| r.get(0),
    )?)
}

fn save(
    c: &mut Connection,
    school: SchoolId,
    config: &str,
    password: Option<&str>,
    digest_next: i64,
    by: &str,
    at: i64,
) -> Result<()> {
    let tx = c.transaction()?;
    let newest = newest_violation(&tx, school)?;
    tx.execute(
        "INSERT INTO mail_settings
           (school_id, config, password, digest_after, digest_next, updated_by, updated_at)
         VALUES (?1, ?2, COALESCE(?3, ''), ?4, ?5, ?6, ?7)
         ON CONFLICT (school_id) DO UPDATE SET
           config = excluded.config,
           password = COALESCE(?3, password),
           digest_next = excluded.digest_next,
           updated_by = excluded.updated_by,
           updated_at = excluded.updated_at",
        params![school, config, password, newest, digest_next, by, at],
    )?;
    tx.commit()?;
    Ok(())
}

fn replace_rules(
    c: &mut Connection,
    school: SchoolId,
    rules: &[String],
    by: &str,
    at: i64,
) -> Result<()> {
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM mail_rules WHERE school_id = ?1",
        params![school],
    )?;
    for r in rules {
        tx.execute(
            "INSERT INTO mail_rules (school_id, rule, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![school, r, by, at],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn claim(c: &mut Connection, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>> {
    let tx = c.transaction()?;
    let after: Option<i64> = tx
        .query_row(
            "SELECT digest_after FROM mail_settings WHERE school_id = ?1 AND digest_next = ?2",
            params![school, due],
            |r| r.get(0),
        )
        .optional()?;
    let Some(after) = after else {
        return Ok(None);
    };
    let upto = newest_violation(&tx, school)?.max(after);
    tx.execute(
        "UPDATE mail_settings SET digest_after = ?2, digest_next = ?3 WHERE school_id = ?1",
        params![school, upto, next],
    )?;
    tx.commit()?;
    Ok(Some((after, upto)))
}

fn counts(c: &Connection, school: SchoolId, after: i64, upto: i64) -> Result<Vec<ViolationCount>> {
    let mut stmt = c.prepare(
        "SELECT device_id, severity, category, COUNT(*) FROM violations
         WHERE school_id = ?1 AND id > ?2 AND id <= ?3
         GROUP BY device_id, severity, category
         ORDER BY device_id, severity DESC, category",
    )?;
    let rows = stmt.query_map(params![school, after, upto], |r| {
        Ok(ViolationCount {
            device_id: r.get(0)?,
            severity: r.get::<_, i64>(1)?.clamp(0, 255) as u8,
            category: r.get(2)?,
            count: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl MailStore for SqliteStore {
    fn mail_settings(&self, school: SchoolId) -> Result<Option<MailRow>> {
        self.with(|c| read(c, school))
    }

    fn set_mail_settings(
        &self,
        school: SchoolId,
        config: &str,
        password: Option<&str>,
        digest_next: i64,
        by: &str,
        at: i64,
    ) -> Result<()> {
        self.with(|c| save(c, school, config, password, digest_next, by, at))
    }

    fn mail_rules(&self, school: SchoolId) -> Result<Vec<MailRuleRow>> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT id, rule FROM mail_rules WHERE school_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![school], |r| {
                Ok(MailRuleRow {
                    id: r.get(0)?,
                    rule: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn set_mail_rules(&self, school: SchoolId, rules: &[String], by: &str, at: i64) -> Result<()> {
        self.with(|c| replace_rules(c, school, rules, by, at))
    }

    fn claim_digest(&self, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>> {
        self.with(|c| claim(c, school, due, next))
    }

    fn violation_counts(
        &self,
        school: SchoolId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ViolationCount>> {
        self.with(|c| counts(c, school, after, upto))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn store() -> (tempfile::TempDir, SqliteStore, SchoolId) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("A").unwrap();
        (dir, s, school)
    }

    #[test]
    fn settings_keep_the_password_unless_given_and_rules_are_replaced_whole() {
        let (_d, s, school) = store();
        assert!(s.mail().mail_settings(school).unwrap().is_none());
        s.mail()
            .set_mail_settings(school, "{}", Some("v1:x"), 5, "admin", 1)
            .unwrap();
        s.mail()
            .set_mail_settings(school, "{\"a\":1}", None, 6, "admin", 2)
            .unwrap();
        let row = s.mail().mail_settings(school).unwrap().unwrap();
        assert_eq!(
            (row.config.as_str(), row.password.as_str()),
            ("{\"a\":1}", "v1:x")
        );
        assert_eq!(row.digest_next, 6);
        s.mail()
            .set_mail_rules(
                school,
                &["{\"r\":1}".into(), "{\"r\":2}".into()],
                "admin",
                3,
            )
            .unwrap();
        s.mail()
            .set_mail_rules(school, &["{\"r\":3}".into()], "admin", 4)
            .unwrap();
        let rules = s.mail().mail_rules(school).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].rule, "{\"r\":3}");
    }

    #[test]
    fn a_digest_is_claimed_once() {
        let (_d, s, school) = store();
        s.mail()
            .set_mail_settings(school, "{}", None, 100, "a", 1)
            .unwrap();
        assert_eq!(
            s.mail().claim_digest(school, 100, 200).unwrap(),
            Some((0, 0))
        );
        assert_eq!(s.mail().claim_digest(school, 100, 200).unwrap(), None);
        assert!(s.mail().violation_counts(school, 0, 0).unwrap().is_empty());
    }
}
