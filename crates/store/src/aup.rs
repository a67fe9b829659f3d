//! Acceptable use policies and their acceptances (migration 0019), per
//! school.
//!
//! A policy belongs to a group (a user group or Entire Network) and is a
//! series of versions; publishing adds a version and never changes an older
//! one. An acceptance is one device's report that the user logged in on it
//! accepted one version.

use crate::pg::PgStore;
use crate::sql::{in_tx, Row, Sql};
use serde::Serialize;

use crate::{Result, SchoolId, SqliteStore, StoreError};

/// One published version of a group's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AupVersion {
    /// Id (what devices accept).
    pub id: i64,
    /// The group whose members it applies to.
    pub group_id: i64,
    /// 1, 2, … within the group.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Text (checked by `lectern_proto::aup::check_text`).
    pub text: String,
    /// Who published it.
    pub published_by: String,
    /// When (ms).
    pub published_at: i64,
}

/// A version to publish.
#[derive(Debug, Clone)]
pub struct NewAupVersion {
    /// The group.
    pub group_id: i64,
    /// Title (checked).
    pub title: String,
    /// Text (checked).
    pub text: String,
    /// Who.
    pub by: String,
    /// When (ms).
    pub at: i64,
}

/// One recorded acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AupAcceptance {
    /// The version accepted.
    pub version_id: i64,
    /// The device that reported it.
    pub device_id: i64,
    /// The user it reported as logged in.
    pub username: String,
    /// When the server recorded it (ms).
    pub accepted_at: i64,
}

/// Store functions for acceptable use policies.
pub trait AupStore: Send + Sync {
    /// Publishes the next version of `v.group_id`'s policy.
    fn publish_aup(&self, school: SchoolId, v: &NewAupVersion) -> Result<AupVersion>;
    /// Every version of every policy, newest first.
    fn aup_versions(&self, school: SchoolId) -> Result<Vec<AupVersion>>;
    /// The newest version of each group's policy.
    fn current_aups(&self, school: SchoolId) -> Result<Vec<AupVersion>>;
    /// One version.
    fn aup_version(&self, school: SchoolId, id: i64) -> Result<Option<AupVersion>>;
    /// Records an acceptance; false if this device and user had already
    /// accepted this version (the first time is kept).
    fn accept_aup(&self, school: SchoolId, a: &AupAcceptance) -> Result<bool>;
    /// Whether the device's user has accepted the version on that device.
    fn aup_accepted(
        &self,
        school: SchoolId,
        version: i64,
        device: i64,
        username: &str,
    ) -> Result<bool>;
    /// Acceptances, newest first, of one version or all; at most `limit`.
    fn aup_acceptances(
        &self,
        school: SchoolId,
        version: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AupAcceptance>>;
}

const VERSION: &str =
    "id, group_id, number, title, body, published_by, published_at FROM aup_versions";

fn version(r: &Row) -> Result<AupVersion> {
    Ok(AupVersion {
        id: r.get(0)?,
        group_id: r.get(1)?,
        number: r.get(2)?,
        title: r.get(3)?,
        text: r.get(4)?,
        published_by: r.get(5)?,
        published_at: r.get(6)?,
    })
}

fn get(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<AupVersion>> {
    db.query_opt(
        &format!("SELECT {VERSION} WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| version(&r))
    .transpose()
}

fn publish(db: &mut dyn Sql, school: SchoolId, v: &NewAupVersion) -> Result<AupVersion> {
    // One transaction: two publishers at once get numbers n and n+1 (on
    // PostgreSQL the one that loses is run again).
    let (id, number) = in_tx(db, |db| {
        let number: i64 = db
            .query_opt(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM aup_versions
                 WHERE school_id = ?1 AND group_id = ?2",
                &[&school, &v.group_id],
            )?
            .ok_or_else(|| StoreError::Corrupt("no next number".into()))?
            .get(0)?;
        let id: i64 = db.insert_id(
            "INSERT INTO aup_versions
                   (school_id, group_id, number, title, body, published_by, published_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &[
                &school,
                &v.group_id,
                &number,
                &v.title,
                &v.text,
                &v.by,
                &v.at,
            ],
        )?;
        Ok((id, number))
    })?;
    Ok(AupVersion {
        id,
        group_id: v.group_id,
        number,
        title: v.title.clone(),
        text: v.text.clone(),
        published_by: v.by.clone(),
        published_at: v.at,
    })
}

fn list(db: &mut dyn Sql, school: SchoolId, sql: &str) -> Result<Vec<AupVersion>> {
    db.query(sql, &[&school])?.iter().map(version).collect()
}

fn versions(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<AupVersion>> {
    list(
        db,
        school,
        &format!("SELECT {VERSION} WHERE school_id = ?1 ORDER BY id DESC"),
    )
}

fn current(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<AupVersion>> {
    list(
        db,
        school,
        &format!(
            "SELECT {VERSION} v WHERE school_id = ?1 AND number =
               (SELECT MAX(number) FROM aup_versions w
                WHERE w.school_id = v.school_id AND w.group_id = v.group_id)
             ORDER BY group_id"
        ),
    )
}

/// Records an acceptance of one of the school's versions; false if it was
/// recorded already or no such version.
fn accept(db: &mut dyn Sql, school: SchoolId, a: &AupAcceptance) -> Result<bool> {
    let n = db.execute(
        "INSERT INTO aup_acceptances (school_id, version_id, device_id, username, accepted_at)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT),
                CAST(?5 AS BIGINT)
         WHERE EXISTS (SELECT 1 FROM aup_versions WHERE school_id = ?1 AND id = ?2)
         ON CONFLICT DO NOTHING",
        &[
            &school,
            &a.version_id,
            &a.device_id,
            &a.username,
            &a.accepted_at,
        ],
    )?;
    Ok(n == 1)
}

fn accepted(
    db: &mut dyn Sql,
    school: SchoolId,
    version: i64,
    device: i64,
    username: &str,
) -> Result<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM aup_acceptances
             WHERE school_id = ?1 AND version_id = ?2 AND device_id = ?3 AND username = ?4",
            &[&school, &version, &device, &username],
        )?
        .is_some())
}

fn acceptances(
    db: &mut dyn Sql,
    school: SchoolId,
    version: Option<i64>,
    limit: u32,
) -> Result<Vec<AupAcceptance>> {
    db.query(
        "SELECT version_id, device_id, username, accepted_at FROM aup_acceptances
         WHERE school_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR version_id = ?2)
         ORDER BY accepted_at DESC, id DESC LIMIT ?3",
        &[&school, &version, &i64::from(limit)],
    )?
    .iter()
    .map(|r| {
        Ok(AupAcceptance {
            version_id: r.get(0)?,
            device_id: r.get(1)?,
            username: r.get(2)?,
            accepted_at: r.get(3)?,
        })
    })
    .collect()
}

/// The same calls on either engine.
macro_rules! aup_store {
    ($t:ty) => {
        impl AupStore for $t {
            fn publish_aup(&self, school: SchoolId, v: &NewAupVersion) -> Result<AupVersion> {
                self.shared(|db| publish(db, school, v))
            }

            fn aup_versions(&self, school: SchoolId) -> Result<Vec<AupVersion>> {
                self.shared(|db| versions(db, school))
            }

            fn current_aups(&self, school: SchoolId) -> Result<Vec<AupVersion>> {
                self.shared(|db| current(db, school))
            }

            fn aup_version(&self, school: SchoolId, id: i64) -> Result<Option<AupVersion>> {
                self.shared(|db| get(db, school, id))
            }

            fn accept_aup(&self, school: SchoolId, a: &AupAcceptance) -> Result<bool> {
                self.shared(|db| accept(db, school, a))
            }

            fn aup_accepted(
                &self,
                school: SchoolId,
                version: i64,
                device: i64,
                username: &str,
            ) -> Result<bool> {
                self.shared(|db| accepted(db, school, version, device, username))
            }

            fn aup_acceptances(
                &self,
                school: SchoolId,
                version: Option<i64>,
                limit: u32,
            ) -> Result<Vec<AupAcceptance>> {
                self.shared(|db| acceptances(db, school, version, limit))
            }
        }
    };
}

aup_store!(SqliteStore);
aup_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn new(group_id: i64, text: &str) -> NewAupVersion {
        NewAupVersion {
            group_id,
            title: "Rules".into(),
            text: text.into(),
            by: "admin".into(),
            at: 1,
        }
    }

    #[test]
    fn versions_count_per_group_and_old_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db")).unwrap();
        let school = s.create_school("Hill").unwrap();
        let v1 = s.publish_aup(school, &new(1, "one")).unwrap();
        let v2 = s.publish_aup(school, &new(1, "two")).unwrap();
        let other = s.publish_aup(school, &new(2, "zwei")).unwrap();
        assert_eq!((v1.number, v2.number, other.number), (1, 2, 1));
        let current = s.current_aups(school).unwrap();
        assert_eq!(current, vec![v2.clone(), other.clone()]);
        assert_eq!(s.aup_version(school, v1.id).unwrap().unwrap().text, "one");
        assert_eq!(s.aup_versions(school).unwrap().len(), 3);
        // Another school sees none of it.
        let other_school = s.create_school("Dale").unwrap();
        assert!(s.current_aups(other_school).unwrap().is_empty());
        assert!(s.aup_version(other_school, v1.id).unwrap().is_none());
    }

    #[test]
    fn an_acceptance_is_kept_once_per_device_user_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db")).unwrap();
        let school = s.create_school("Hill").unwrap();
        let v = s.publish_aup(school, &new(1, "one")).unwrap();
        let a = AupAcceptance {
            version_id: v.id,
            device_id: 4,
            username: "Amy".into(),
            accepted_at: 5,
        };
        assert!(s.accept_aup(school, &a).unwrap());
        assert!(!s
            .accept_aup(
                school,
                &AupAcceptance {
                    username: "amy".into(),
                    accepted_at: 9,
                    ..a.clone()
                }
            )
            .unwrap());
        assert!(s.aup_accepted(school, v.id, 4, "AMY").unwrap());
        assert!(!s.aup_accepted(school, v.id, 5, "amy").unwrap());
        assert_eq!(s.aup_acceptances(school, None, 10).unwrap(), vec![a]);
        // A version of another school cannot be accepted here.
        let dale = s.create_school("Dale").unwrap();
        let theirs = AupAcceptance {
            version_id: v.id,
            device_id: 4,
            username: "x".into(),
            accepted_at: 1,
        };
        assert!(!s.accept_aup(dale, &theirs).unwrap());
    }
}
