//! Safeguarding mail (migration 0023), per school: the SMTP settings with
//! the sealed password, the alert rules, the digest's bookkeeping, and the
//! violation counts a mail carries (never a violation's text).
//!
//! The server validates the settings and rules (JSON) and seals the
//! password; the store keeps what it is given.

use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Lite, Sql};
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

impl MailStore for SqliteStore {
    fn mail_settings(&self, school: SchoolId) -> Result<Option<MailRow>> {
        self.with(|c| read(&mut Lite(c), school))
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
        self.with(|c| save(&mut Lite(c), school, config, password, digest_next, by, at))
    }

    fn mail_rules(&self, school: SchoolId) -> Result<Vec<MailRuleRow>> {
        self.with(|c| rules(&mut Lite(c), school))
    }

    fn set_mail_rules(&self, school: SchoolId, rules: &[String], by: &str, at: i64) -> Result<()> {
        self.with(|c| replace_rules(&mut Lite(c), school, rules, by, at))
    }

    fn claim_digest(&self, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>> {
        self.with(|c| claim(&mut Lite(c), school, due, next))
    }

    fn violation_counts(
        &self,
        school: SchoolId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ViolationCount>> {
        self.with(|c| counts(&mut Lite(c), school, after, upto))
    }
}

impl MailStore for PgStore {
    fn mail_settings(&self, school: SchoolId) -> Result<Option<MailRow>> {
        self.with(|db| read(db, school))
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
        self.with(|db| save(db, school, config, password, digest_next, by, at))
    }

    fn mail_rules(&self, school: SchoolId) -> Result<Vec<MailRuleRow>> {
        self.with(|db| rules(db, school))
    }

    fn set_mail_rules(&self, school: SchoolId, rules: &[String], by: &str, at: i64) -> Result<()> {
        self.with(|db| replace_rules(db, school, rules, by, at))
    }

    fn claim_digest(&self, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>> {
        self.with(|db| claim(db, school, due, next))
    }

    fn violation_counts(
        &self,
        school: SchoolId,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ViolationCount>> {
        self.with(|db| counts(db, school, after, upto))
    }
}

fn read(db: &mut dyn Sql, school: SchoolId) -> Result<Option<MailRow>> {
    db.query_opt(
        "SELECT config, password, digest_after, digest_next, updated_by, updated_at
         FROM mail_settings WHERE school_id = ?1",
        &[&school],
    )?
    .map(|r| {
        Ok(MailRow {
            config: r.get(0)?,
            password: r.get(1)?,
            digest_after: r.get(2)?,
            digest_next: r.get(3)?,
            updated_by: r.get(4)?,
            updated_at: r.get(5)?,
        })
    })
    .transpose()
}

fn newest_violation(db: &mut dyn Sql, school: SchoolId) -> Result<i64> {
    db.query_opt(
        "SELECT COALESCE(MAX(id), 0) FROM violations WHERE school_id = ?1",
        &[&school],
    )?
    .map_or(Ok(0), |r| r.get(0))
}

fn save(
    db: &mut dyn Sql,
    school: SchoolId,
    config: &str,
    password: Option<&str>,
    digest_next: i64,
    by: &str,
    at: i64,
) -> Result<()> {
    in_tx(db, |db| {
        let newest = newest_violation(db, school)?;
        db.execute(
            "INSERT INTO mail_settings
               (school_id, config, password, digest_after, digest_next, updated_by, updated_at)
             VALUES (?1, ?2, COALESCE(?3, ''), ?4, ?5, ?6, ?7)
             ON CONFLICT (school_id) DO UPDATE SET
               config = excluded.config,
               password = COALESCE(?3, mail_settings.password),
               digest_next = excluded.digest_next,
               updated_by = excluded.updated_by,
               updated_at = excluded.updated_at",
            &[&school, &config, &password, &newest, &digest_next, &by, &at],
        )?;
        Ok(())
    })
}

fn rules(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<MailRuleRow>> {
    db.query(
        "SELECT id, rule FROM mail_rules WHERE school_id = ?1 ORDER BY id",
        &[&school],
    )?
    .iter()
    .map(|r| {
        Ok(MailRuleRow {
            id: r.get(0)?,
            rule: r.get(1)?,
        })
    })
    .collect()
}

fn replace_rules(
    db: &mut dyn Sql,
    school: SchoolId,
    rules: &[String],
    by: &str,
    at: i64,
) -> Result<()> {
    in_tx(db, |db| {
        db.execute("DELETE FROM mail_rules WHERE school_id = ?1", &[&school])?;
        for r in rules {
            db.execute(
                "INSERT INTO mail_rules (school_id, rule, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                &[&school, r, &by, &at],
            )?;
        }
        Ok(())
    })
}

/// Claims the digest by compare-and-set: the update takes effect only if
/// the digest is still the one read, so of two nodes (or turns) claiming
/// at once exactly one gets it, on either engine.
fn claim(db: &mut dyn Sql, school: SchoolId, due: i64, next: i64) -> Result<Option<(i64, i64)>> {
    in_tx(db, |db| {
        let Some(row) = db.query_opt(
            "SELECT digest_after FROM mail_settings WHERE school_id = ?1 AND digest_next = ?2",
            &[&school, &due],
        )?
        else {
            return Ok(None);
        };
        let after: i64 = row.get(0)?;
        let upto = newest_violation(db, school)?.max(after);
        let claimed = db.execute(
            "UPDATE mail_settings SET digest_after = ?4, digest_next = ?5
             WHERE school_id = ?1 AND digest_next = ?2 AND digest_after = ?3",
            &[&school, &due, &after, &upto, &next],
        )?;
        Ok((claimed == 1).then_some((after, upto)))
    })
}

fn counts(
    db: &mut dyn Sql,
    school: SchoolId,
    after: i64,
    upto: i64,
) -> Result<Vec<ViolationCount>> {
    db.query(
        "SELECT device_id, severity, category, COUNT(*) FROM violations
         WHERE school_id = ?1 AND id > ?2 AND id <= ?3
         GROUP BY device_id, severity, category
         ORDER BY device_id, severity DESC, category",
        &[&school, &after, &upto],
    )?
    .iter()
    .map(|r| {
        Ok(ViolationCount {
            device_id: r.get(0)?,
            severity: r.get::<i64>(1)?.clamp(0, 255) as u8,
            category: r.get(2)?,
            count: r.get(3)?,
        })
    })
    .collect()
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
