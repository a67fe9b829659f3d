//! Acceptable use policies and their acceptances (migration 0019), per
//! school.
//!
//! A policy belongs to a group (a user group or Entire Network) and is a
//! series of versions; publishing adds a version and never changes an older
//! one. An acceptance is one device's report that the user logged in on it
//! accepted one version.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::{Result, SchoolId, SqliteStore};

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

fn version(r: &Row<'_>) -> rusqlite::Result<AupVersion> {
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

fn get(c: &Connection, school: SchoolId, id: i64) -> Result<Option<AupVersion>> {
    Ok(c.query_row(
        &format!("SELECT {VERSION} WHERE school_id = ?1 AND id = ?2"),
        params![school, id],
        version,
    )
    .optional()?)
}

fn publish(c: &mut Connection, school: SchoolId, v: &NewAupVersion) -> Result<AupVersion> {
    // One transaction: two publishers at once get numbers n and n+1.
    let tx = c.transaction()?;
    let number: i64 = tx.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM aup_versions
         WHERE school_id = ?1 AND group_id = ?2",
        params![school, v.group_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO aup_versions
           (school_id, group_id, number, title, body, published_by, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![school, v.group_id, number, v.title, v.text, v.by, v.at],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
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

fn list(c: &Connection, school: SchoolId, sql: &str) -> Result<Vec<AupVersion>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt
        .query_map(params![school], version)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

impl AupStore for SqliteStore {
    fn publish_aup(&self, school: SchoolId, v: &NewAupVersion) -> Result<AupVersion> {
        self.with(|c| publish(c, school, v))
    }

    fn aup_versions(&self, school: SchoolId) -> Result<Vec<AupVersion>> {
        self.with(|c| {
            list(
                c,
                school,
                &format!("SELECT {VERSION} WHERE school_id = ?1 ORDER BY id DESC"),
            )
        })
    }

    fn current_aups(&self, school: SchoolId) -> Result<Vec<AupVersion>> {
        self.with(|c| {
            list(
                c,
                school,
                &format!(
                    "SELECT {VERSION} v WHERE school_id = ?1 AND number =
                       (SELECT MAX(number) FROM aup_versions w
                        WHERE w.school_id = v.school_id AND w.group_id = v.group_id)
                     ORDER BY group_id"
                ),
            )
        })
    }

    fn aup_version(&self, school: SchoolId, id: i64) -> Result<Option<AupVersion>> {
        self.with(|c| get(c, school, id))
    }

    fn accept_aup(&self, school: SchoolId, a: &AupAcceptance) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO aup_acceptances
                   (school_id, version_id, device_id, username, accepted_at)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE EXISTS (SELECT 1 FROM aup_versions WHERE school_id = ?1 AND id = ?2)",
                params![school, a.version_id, a.device_id, a.username, a.accepted_at],
            )?;
            Ok(n == 1)
        })
    }

    fn aup_accepted(
        &self,
        school: SchoolId,
        version: i64,
        device: i64,
        username: &str,
    ) -> Result<bool> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM aup_acceptances
                 WHERE school_id = ?1 AND version_id = ?2 AND device_id = ?3 AND username = ?4",
                params![school, version, device, username],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    fn aup_acceptances(
        &self,
        school: SchoolId,
        version: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AupAcceptance>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT version_id, device_id, username, accepted_at FROM aup_acceptances
                 WHERE school_id = ?1 AND (?2 IS NULL OR version_id = ?2)
                 ORDER BY accepted_at DESC, id DESC LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![school, version, limit], |r| {
                    Ok(AupAcceptance {
                        version_id: r.get(0)?,
                        device_id: r.get(1)?,
                        username: r.get(2)?,
                        accepted_at: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }
}

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
