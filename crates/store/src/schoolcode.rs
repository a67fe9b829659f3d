//! Each school's code for registering devices (migration 0026): at most one
//! per school, unique across schools, so that a code names its school.
//!
//! The server makes and checks the codes (`lectern_proto::schoolcode`); the
//! store keeps the canonical form it is given.

use crate::pg::PgStore;
use crate::sql::{in_tx, Lite, Sql};
use crate::sqlite::add_device;
use crate::{now_ms, Device, NewDevice, Result, SchoolId, SqliteStore};

/// A school's code and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCodeRow {
    /// The code, canonical (ten symbols, no dash).
    pub code: String,
    /// Who made it (user name).
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
}

/// Store functions for school codes.
pub trait SchoolCodeStore: Send + Sync {
    /// The school's code, if it has one.
    fn school_code(&self, school: SchoolId) -> Result<Option<SchoolCodeRow>>;
    /// Sets the school's code (replacing the one before, which stops
    /// working), or removes it with `None`. False if `code` is another
    /// school's (the caller makes another).
    fn set_school_code(
        &self,
        school: SchoolId,
        code: Option<&str>,
        by: &str,
        at: i64,
    ) -> Result<bool>;
    /// Enrolls a device with `code` (canonical) into the school whose code
    /// it is: that school, the device and its secret; None for no school's
    /// code.
    fn enroll_with_school_code(
        &self,
        code: &str,
        info: &NewDevice,
    ) -> Result<Option<(SchoolId, Device, String)>>;
}

impl SchoolCodeStore for SqliteStore {
    fn school_code(&self, school: SchoolId) -> Result<Option<SchoolCodeRow>> {
        self.with(|c| school_code(&mut Lite(c), school))
    }

    fn set_school_code(
        &self,
        school: SchoolId,
        code: Option<&str>,
        by: &str,
        at: i64,
    ) -> Result<bool> {
        self.with(|c| set_school_code(&mut Lite(c), school, code, by, at))
    }

    fn enroll_with_school_code(
        &self,
        code: &str,
        info: &NewDevice,
    ) -> Result<Option<(SchoolId, Device, String)>> {
        self.with(|c| enroll_with_school_code(&mut Lite(c), code, info))
    }
}

impl SchoolCodeStore for PgStore {
    fn school_code(&self, school: SchoolId) -> Result<Option<SchoolCodeRow>> {
        self.with(|db| school_code(db, school))
    }

    fn set_school_code(
        &self,
        school: SchoolId,
        code: Option<&str>,
        by: &str,
        at: i64,
    ) -> Result<bool> {
        self.with(|db| set_school_code(db, school, code, by, at))
    }

    fn enroll_with_school_code(
        &self,
        code: &str,
        info: &NewDevice,
    ) -> Result<Option<(SchoolId, Device, String)>> {
        self.with(|db| enroll_with_school_code(db, code, info))
    }
}

fn school_code(db: &mut dyn Sql, school: SchoolId) -> Result<Option<SchoolCodeRow>> {
    db.query_opt(
        "SELECT code, created_by, created_at FROM school_codes WHERE school_id = ?1",
        &[&school],
    )?
    .map(|r| {
        Ok(SchoolCodeRow {
            code: r.get(0)?,
            created_by: r.get(1)?,
            created_at: r.get(2)?,
        })
    })
    .transpose()
}

fn set_school_code(
    db: &mut dyn Sql,
    school: SchoolId,
    code: Option<&str>,
    by: &str,
    at: i64,
) -> Result<bool> {
    in_tx(db, |db| {
        let Some(code) = code else {
            db.execute("DELETE FROM school_codes WHERE school_id = ?1", &[&school])?;
            return Ok(true);
        };
        let other = db.query_opt(
            "SELECT school_id FROM school_codes WHERE code = ?1 AND school_id <> ?2",
            &[&code, &school],
        )?;
        if other.is_some() {
            return Ok(false);
        }
        db.execute(
            "INSERT INTO school_codes (school_id, code, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (school_id) DO UPDATE
             SET code = excluded.code, created_by = excluded.created_by,
                 created_at = excluded.created_at",
            &[&school, &code, &by, &at],
        )?;
        Ok(true)
    })
}

fn enroll_with_school_code(
    db: &mut dyn Sql,
    code: &str,
    info: &NewDevice,
) -> Result<Option<(SchoolId, Device, String)>> {
    in_tx(db, |db| {
        let Some(row) = db.query_opt(
            "SELECT school_id FROM school_codes WHERE code = ?1",
            &[&code],
        )?
        else {
            return Ok(None);
        };
        let school: SchoolId = row.get(0)?;
        let (device, secret) = add_device(db, school, info, now_ms())?;
        Ok(Some((school, device, secret)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn info(name: &str) -> NewDevice {
        NewDevice {
            hostname: name.into(),
            os: "linux".into(),
            agent_version: "1".into(),
        }
    }

    #[test]
    fn schools_are_listed_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        assert!(s.schools().unwrap().is_empty());
        let a = s.create_school("Hill").unwrap();
        let b = s.create_school("Dale").unwrap();
        let listed: Vec<_> = s
            .schools()
            .unwrap()
            .into_iter()
            .map(|x| (x.id, x.name))
            .collect();
        assert_eq!(listed, vec![(a, "Hill".into()), (b, "Dale".into())]);
    }

    #[test]
    fn a_code_enrolls_into_its_school_until_it_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let a = s.create_school("A").unwrap();
        let b = s.create_school("B").unwrap();
        let codes = s.school_codes();
        assert_eq!(codes.school_code(a).unwrap(), None);
        assert!(codes
            .enroll_with_school_code("AAAAA11111", &info("x"))
            .unwrap()
            .is_none());
        assert!(codes
            .set_school_code(a, Some("AAAAA11111"), "admin", 5)
            .unwrap());
        assert!(codes
            .set_school_code(b, Some("BBBBB22222"), "admin", 6)
            .unwrap());
        // Another school's code is not taken.
        assert!(!codes
            .set_school_code(b, Some("AAAAA11111"), "admin", 7)
            .unwrap());
        let (school, device, secret) = codes
            .enroll_with_school_code("BBBBB22222", &info("pc-b"))
            .unwrap()
            .unwrap();
        assert_eq!((school, device.school_id), (b, b));
        assert!(!secret.is_empty());
        assert_eq!(s.list_devices(b).unwrap().len(), 1);
        assert!(s.list_devices(a).unwrap().is_empty());
        // Rotated: the old code stops, the new one works.
        assert!(codes
            .set_school_code(b, Some("CCCCC33333"), "admin", 8)
            .unwrap());
        assert!(codes
            .enroll_with_school_code("BBBBB22222", &info("pc-2"))
            .unwrap()
            .is_none());
        assert_eq!(
            codes.school_code(b).unwrap().unwrap(),
            SchoolCodeRow {
                code: "CCCCC33333".into(),
                created_by: "admin".into(),
                created_at: 8
            }
        );
        // Removed: none works.
        assert!(codes.set_school_code(b, None, "admin", 9).unwrap());
        assert!(codes
            .enroll_with_school_code("CCCCC33333", &info("pc-3"))
            .unwrap()
            .is_none());
        assert_eq!(codes.school_code(a).unwrap().unwrap().code, "AAAAA11111");
    }
}
