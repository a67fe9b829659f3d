//! Students' passwords for signing in on shared devices (migration 0028;
//! see `lectern_proto::signin`). A student signs in with any of their
//! profile's names (its aliases) and the picture or text password a teacher
//! set; only an Argon2 hash of the secret's canonical form is kept.

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use lectern_proto::signin::StudentSecret;
use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{Lite, Sql};
use crate::sqlite::{dummy_hash, hash_password};
use crate::{now_ms, Result, SchoolId, SqliteStore, StoreError};

/// What is known of a student's password (never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    /// `picture` or `text`.
    pub kind: String,
    /// Who set it.
    pub set_by: String,
    /// When (ms).
    pub set_at: i64,
}

/// A student who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInStudent {
    /// Their profile.
    pub person_id: i64,
    /// Their name as the school shows it.
    pub display_name: String,
    /// The name they signed in with, as their profile spells it.
    pub name: String,
}

/// Store functions for students' sign-in passwords.
pub trait StudentStore: Send + Sync {
    /// Sets (or replaces) the password of `school`'s person `person`. False
    /// when the school has no such person.
    fn set_student_secret(
        &self,
        school: SchoolId,
        person: i64,
        secret: &StudentSecret,
        by: &str,
    ) -> Result<bool>;
    /// Removes it; false when there was none.
    fn clear_student_secret(&self, school: SchoolId, person: i64) -> Result<bool>;
    /// What kind is set, by whom and when.
    fn student_secret(&self, school: SchoolId, person: i64) -> Result<Option<SecretInfo>>;
    /// The student of `school` one of whose names is `name` (any case), if
    /// `secret` is their password. Takes as long for an unknown name.
    fn verify_student(
        &self,
        school: SchoolId,
        name: &str,
        secret: &StudentSecret,
    ) -> Result<Option<SignedInStudent>>;
}

impl StudentStore for SqliteStore {
    fn set_student_secret(
        &self,
        school: SchoolId,
        person: i64,
        secret: &StudentSecret,
        by: &str,
    ) -> Result<bool> {
        // Hashed before the lock: Argon2 is slow on purpose.
        let hash = hash_password(&secret.canonical())?;
        self.with(|c| set_secret(&mut Lite(c), school, person, secret.kind(), &hash, by))
    }

    fn clear_student_secret(&self, school: SchoolId, person: i64) -> Result<bool> {
        self.with(|c| clear_secret(&mut Lite(c), school, person))
    }

    fn student_secret(&self, school: SchoolId, person: i64) -> Result<Option<SecretInfo>> {
        self.with(|c| secret_info(&mut Lite(c), school, person))
    }

    fn verify_student(
        &self,
        school: SchoolId,
        name: &str,
        secret: &StudentSecret,
    ) -> Result<Option<SignedInStudent>> {
        let found = self.with(|c| find_student(&mut Lite(c), school, name))?;
        check_secret(found, secret)
    }
}

impl StudentStore for PgStore {
    fn set_student_secret(
        &self,
        school: SchoolId,
        person: i64,
        secret: &StudentSecret,
        by: &str,
    ) -> Result<bool> {
        let hash = hash_password(&secret.canonical())?;
        self.with(|db| set_secret(db, school, person, secret.kind(), &hash, by))
    }

    fn clear_student_secret(&self, school: SchoolId, person: i64) -> Result<bool> {
        self.with(|db| clear_secret(db, school, person))
    }

    fn student_secret(&self, school: SchoolId, person: i64) -> Result<Option<SecretInfo>> {
        self.with(|db| secret_info(db, school, person))
    }

    fn verify_student(
        &self,
        school: SchoolId,
        name: &str,
        secret: &StudentSecret,
    ) -> Result<Option<SignedInStudent>> {
        let found = self.with(|db| find_student(db, school, name))?;
        check_secret(found, secret)
    }
}

fn set_secret(
    db: &mut dyn Sql,
    school: SchoolId,
    person: i64,
    kind: &str,
    hash: &str,
    by: &str,
) -> Result<bool> {
    let known = db
        .query_opt(
            "SELECT 1 FROM people WHERE id = ?1 AND school_id = ?2",
            &[&person, &school],
        )?
        .is_some();
    if !known {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO student_secrets (person_id, school_id, kind, hash, set_by, set_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (person_id) DO UPDATE SET kind = excluded.kind,
             hash = excluded.hash, set_by = excluded.set_by, set_at = excluded.set_at",
        &[&person, &school, &kind, &hash, &by, &now_ms()],
    )?;
    Ok(true)
}

fn clear_secret(db: &mut dyn Sql, school: SchoolId, person: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM student_secrets WHERE person_id = ?1 AND school_id = ?2",
        &[&person, &school],
    )? > 0)
}

fn secret_info(db: &mut dyn Sql, school: SchoolId, person: i64) -> Result<Option<SecretInfo>> {
    db.query_opt(
        "SELECT kind, set_by, set_at FROM student_secrets
         WHERE person_id = ?1 AND school_id = ?2",
        &[&person, &school],
    )?
    .map(|r| {
        Ok(SecretInfo {
            kind: r.get(0)?,
            set_by: r.get(1)?,
            set_at: r.get(2)?,
        })
    })
    .transpose()
}

/// The student one of whose names is `name` (any case: the alias column
/// is case-blind on both engines), and their secret's hash.
fn find_student(
    db: &mut dyn Sql,
    school: SchoolId,
    name: &str,
) -> Result<Option<(SignedInStudent, String)>> {
    db.query_opt(
        "SELECT p.id, p.display_name, a.value, s.hash
         FROM person_aliases a
         JOIN people p ON p.id = a.person_id
         JOIN student_secrets s ON s.person_id = p.id
         WHERE a.school_id = ?1 AND a.value = ?2 AND p.school_id = ?1",
        &[&school, &name.trim()],
    )?
    .map(|r| {
        Ok((
            SignedInStudent {
                person_id: r.get(0)?,
                display_name: r.get(1)?,
                name: r.get(2)?,
            },
            r.get::<String>(3)?,
        ))
    })
    .transpose()
}

/// Argon2 runs outside the lock, and for an unknown name too (against a
/// dummy hash), so an unknown name takes as long.
fn check_secret(
    found: Option<(SignedInStudent, String)>,
    secret: &StudentSecret,
) -> Result<Option<SignedInStudent>> {
    let (student, hash) = match found {
        Some((s, h)) => (Some(s), h),
        None => (None, dummy_hash().to_string()),
    };
    let parsed = PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(secret.canonical().as_bytes(), &parsed)
        .is_ok();
    Ok(student.filter(|_| ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::{Alias, AliasKind, Person};

    #[test]
    fn a_student_signs_in_with_any_of_their_names_and_only_their_secret() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let (hill, dale) = (
            s.create_school("Hill").unwrap(),
            s.create_school("Dale").unwrap(),
        );
        let alias = |kind, value: &str| Alias {
            kind,
            value: value.into(),
        };
        let amy = s
            .save_person(
                hill,
                &Person {
                    id: 0,
                    display_name: "Amy Ng".into(),
                    aliases: vec![
                        alias(AliasKind::Roster, "amy.ng"),
                        alias(AliasKind::OsLogin, "ang"),
                    ],
                },
            )
            .unwrap()
            .unwrap()
            .id;
        let pic = StudentSecret::Picture {
            picture: vec![0, 9, 4],
        };
        // Dale cannot set Hill's student's password.
        assert!(!s.set_student_secret(dale, amy, &pic, "t").unwrap());
        assert!(s.verify_student(hill, "amy.ng", &pic).unwrap().is_none());
        assert!(s.set_student_secret(hill, amy, &pic, "ms.k").unwrap());
        let info = s.student_secret(hill, amy).unwrap().unwrap();
        assert_eq!(
            (info.kind.as_str(), info.set_by.as_str()),
            ("picture", "ms.k")
        );

        let signed = s.verify_student(hill, " AMY.NG ", &pic).unwrap().unwrap();
        assert_eq!(
            (
                signed.person_id,
                signed.display_name.as_str(),
                signed.name.as_str()
            ),
            (amy, "Amy Ng", "amy.ng")
        );
        assert!(s.verify_student(hill, "ang", &pic).unwrap().is_some());
        // Wrong pictures, order, kind, school or name: refused alike.
        for (school, name, secret) in [
            (
                hill,
                "amy.ng",
                StudentSecret::Picture {
                    picture: vec![9, 0, 4],
                },
            ),
            (
                hill,
                "amy.ng",
                StudentSecret::Text {
                    password: "picture:0,9,4".into(),
                },
            ),
            (dale, "amy.ng", pic.clone()),
            (hill, "nobody", pic.clone()),
        ] {
            assert!(s.verify_student(school, name, &secret).unwrap().is_none());
        }
        // A new text password replaces the pictures; clearing ends both.
        let text = StudentSecret::Text {
            password: "sunflower-7".into(),
        };
        assert!(s.set_student_secret(hill, amy, &text, "ms.k").unwrap());
        assert!(s.verify_student(hill, "amy.ng", &pic).unwrap().is_none());
        assert!(s.verify_student(hill, "amy.ng", &text).unwrap().is_some());
        assert!(!s.clear_student_secret(dale, amy).unwrap());
        assert!(s.clear_student_secret(hill, amy).unwrap());
        assert!(s.verify_student(hill, "amy.ng", &text).unwrap().is_none());
        assert!(s.student_secret(hill, amy).unwrap().is_none());
    }
}
