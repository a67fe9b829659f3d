//! Schools a user may act in besides their own (migration 0027): what makes
//! a trust-level administrator of a district or multi-academy trust.
//!
//! A user always belongs to one school (their home school, where they sign
//! in). A grant lets them switch a session to another school with a role
//! there. The session then names the school it acts in, and
//! [`crate::Store::session`] serves it only while the grant stands: a
//! revoked grant ends those sessions at their next request. Grants are made
//! by the server's operator, never through the console.

use crate::pg::PgStore;
use crate::sql::{in_tx, Lite, Sql};
use crate::{now_ms, Result, Role, School, SchoolId, SqliteStore};

/// A school the user may act in, with their role there.
#[derive(Debug, Clone)]
pub struct SchoolAccess {
    /// The school.
    pub school: School,
    /// Their role there.
    pub role: Role,
    /// Their own school (signed in there), not a grant.
    pub home: bool,
}

/// Store functions for school grants.
pub trait GrantStore: Send + Sync {
    /// Lets `user` act in `school` with `role` (replacing a grant before).
    /// False when `school` is the user's own or does not exist, or the user
    /// does not exist.
    fn grant_school(&self, user: i64, school: SchoolId, role: Role, by: &str) -> Result<bool>;
    /// Takes a grant back and ends the user's sessions in that school.
    /// False when there was none.
    fn revoke_school(&self, user: i64, school: SchoolId) -> Result<bool>;
    /// Every school the user may act in: their own first, then the granted
    /// ones by id. Empty for an unknown or disabled user.
    fn schools_of(&self, user: i64) -> Result<Vec<SchoolAccess>>;
}

impl GrantStore for SqliteStore {
    fn grant_school(&self, user: i64, school: SchoolId, role: Role, by: &str) -> Result<bool> {
        self.with(|c| grant_school(&mut Lite(c), user, school, role, by))
    }

    fn revoke_school(&self, user: i64, school: SchoolId) -> Result<bool> {
        self.with(|c| revoke_school(&mut Lite(c), user, school))
    }

    fn schools_of(&self, user: i64) -> Result<Vec<SchoolAccess>> {
        self.with(|c| schools_of(&mut Lite(c), user))
    }
}

impl GrantStore for PgStore {
    fn grant_school(&self, user: i64, school: SchoolId, role: Role, by: &str) -> Result<bool> {
        self.with(|db| grant_school(db, user, school, role, by))
    }

    fn revoke_school(&self, user: i64, school: SchoolId) -> Result<bool> {
        self.with(|db| revoke_school(db, user, school))
    }

    fn schools_of(&self, user: i64) -> Result<Vec<SchoolAccess>> {
        self.with(|db| schools_of(db, user))
    }
}

fn grant_school(
    db: &mut dyn Sql,
    user: i64,
    school: SchoolId,
    role: Role,
    by: &str,
) -> Result<bool> {
    let home: Option<SchoolId> =
        match db.query_opt("SELECT school_id FROM users WHERE id = ?1", &[&user])? {
            Some(r) => Some(r.get(0)?),
            None => None,
        };
    let exists = db
        .query_opt("SELECT 1 FROM schools WHERE id = ?1", &[&school])?
        .is_some();
    if home.is_none_or(|h| h == school) || !exists {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO school_grants (user_id, school_id, role, granted_by, granted_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, school_id) DO UPDATE
         SET role = excluded.role, granted_by = excluded.granted_by,
             granted_at = excluded.granted_at",
        &[&user, &school, &role.as_str(), &by, &now_ms()],
    )?;
    Ok(true)
}

fn revoke_school(db: &mut dyn Sql, user: i64, school: SchoolId) -> Result<bool> {
    in_tx(db, |db| {
        let gone = db.execute(
            "DELETE FROM school_grants WHERE user_id = ?1 AND school_id = ?2",
            &[&user, &school],
        )? > 0;
        db.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND school_id = ?2",
            &[&user, &school],
        )?;
        Ok(gone)
    })
}

fn schools_of(db: &mut dyn Sql, user: i64) -> Result<Vec<SchoolAccess>> {
    let rows = db.query(
        "SELECT s.id, s.name, u.role, 1 FROM users u JOIN schools s ON s.id = u.school_id
         WHERE u.id = ?1 AND u.disabled_at IS NULL
         UNION ALL
         SELECT s.id, s.name, g.role, 0 FROM school_grants g
         JOIN schools s ON s.id = g.school_id
         JOIN users u ON u.id = g.user_id
         WHERE g.user_id = ?1 AND u.disabled_at IS NULL
         ORDER BY 4 DESC, 1",
        &[&user],
    )?;
    rows.iter()
        .map(|r| {
            let role: String = r.get(2)?;
            Ok(SchoolAccess {
                school: School {
                    id: r.get(0)?,
                    name: r.get(1)?,
                },
                role: Role::parse(&role).unwrap_or(Role::Teacher),
                home: r.get::<bool>(3)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, User};

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_granted_school_has_sessions_only_while_the_grant_stands() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let (trust, hill) = (
            s.create_school("Trust Office").unwrap(),
            s.create_school("Hill Primary").unwrap(),
        );
        let id = s
            .create_user(trust, "ann", "password-1", Role::Admin)
            .unwrap();
        let ann = User {
            id,
            school_id: trust,
            username: "ann".into(),
            role: Role::Admin,
        };
        // Not her own school, not one that does not exist.
        assert!(!s
            .grants()
            .grant_school(ann.id, trust, Role::Admin, "op")
            .unwrap());
        assert!(!s
            .grants()
            .grant_school(ann.id, 99, Role::Admin, "op")
            .unwrap());
        assert!(!s
            .grants()
            .grant_school(9999, hill, Role::Admin, "op")
            .unwrap());

        // Without a grant, a session that names Hill is not served.
        let at_hill = User {
            school_id: hill,
            ..ann.clone()
        };
        let (token, _) = s.create_session(&at_hill, HOUR).unwrap();
        assert!(s.session(&token).unwrap().is_none());

        assert!(s
            .grants()
            .grant_school(ann.id, hill, Role::Teacher, "op")
            .unwrap());
        let listed = s.grants().schools_of(ann.id).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|a| (a.school.id, a.role, a.home))
                .collect::<Vec<_>>(),
            vec![(trust, Role::Admin, true), (hill, Role::Teacher, false)]
        );
        // Her session at Hill acts there, with the granted role, under a
        // name that says whose she is (Hill may have its own "ann").
        let session = s.session(&token).unwrap().expect("granted");
        assert_eq!(session.user.school_id, hill);
        assert_eq!(session.user.role, Role::Teacher);
        assert_eq!(session.user.username, "ann (Trust Office)");
        // Her own session is unchanged.
        let (home, _) = s.create_session(&ann, HOUR).unwrap();
        let own = s.session(&home).unwrap().unwrap();
        assert_eq!(
            (own.user.school_id, own.user.username.as_str()),
            (trust, "ann")
        );

        // Taking the grant back ends the session at Hill, not at home.
        assert!(s.grants().revoke_school(ann.id, hill).unwrap());
        assert!(!s.grants().revoke_school(ann.id, hill).unwrap());
        assert!(s.session(&token).unwrap().is_none());
        assert!(s.session(&home).unwrap().is_some());
        assert_eq!(s.grants().schools_of(ann.id).unwrap().len(), 1);
    }
}
