//! Console accounts as the Users page manages them (migration 0013): list,
//! disable and enable, delete, role, and passwords (reset by someone else,
//! which forces a change at the next sign-in, or changed by their owner).
//!
//! Whatever takes access away (disabling, deleting, a new password) deletes
//! the account's sessions in the same transaction, so its next request is
//! refused. No change leaves a school without an enabled administrator.

use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Lite, Row, Sql};
use crate::sqlite::{hash_password, SqliteStore};
use crate::{now_ms, secrets::hash_secret, Result, Role, SchoolId};

/// A console account as the Users page lists it (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// It may not sign in, and has no sessions.
    pub disabled: bool,
    /// Its next sign-in must set a new password before anything else.
    pub must_change_password: bool,
    /// When it last signed in (ms since epoch), if ever.
    pub last_sign_in: Option<i64>,
    /// When it was created (ms since epoch).
    pub created_at: i64,
}

/// Why an account change was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    /// No account by that name in the school.
    #[error("no such user")]
    NotFound,
    /// The change would leave the school without an enabled administrator.
    #[error("the school's last enabled administrator")]
    LastAdmin,
}

/// A change made: the account before and after (after is `None` when deleted),
/// and how many of its sessions ended.
#[derive(Debug, Clone)]
pub struct AccountChange {
    /// Before the change.
    pub before: Account,
    /// After the change; `None` when the account was deleted.
    pub after: Option<Account>,
    /// Sessions ended by the change.
    pub sessions_ended: usize,
}

/// The outcome of a change: done, or refused for a reason the caller acts on.
pub type Changed = std::result::Result<AccountChange, AccountRefusal>;

/// Console accounts in the store.
pub trait AccountsStore: Send + Sync {
    /// The school's accounts, by user name.
    fn list_accounts(&self, school: SchoolId) -> Result<Vec<Account>>;
    /// One account.
    fn account(&self, school: SchoolId, username: &str) -> Result<Option<Account>>;
    /// Disables (ending its sessions) or enables an account. Disabling the
    /// last enabled administrator is refused.
    fn set_disabled(&self, school: SchoolId, username: &str, disabled: bool) -> Result<Changed>;
    /// Deletes an account and its sessions. Deleting the last enabled
    /// administrator is refused.
    fn delete_account(&self, school: SchoolId, username: &str) -> Result<Changed>;
    /// Changes an account's role. Demoting the last enabled administrator
    /// is refused.
    fn set_role(&self, school: SchoolId, username: &str, role: Role) -> Result<Changed>;
    /// Sets a new password (Argon2) and whether it must be changed at the
    /// next sign-in; ends every session of the account except the one whose
    /// token is `keep`.
    fn set_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        must_change: bool,
        keep: Option<&str>,
    ) -> Result<Changed>;
}

const COLS: &str =
    "id, username, role, disabled_at, must_change_password, last_sign_in, created_at";

fn account_from(r: &Row) -> Result<Account> {
    let role: String = r.get(2)?;
    Ok(Account {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Teacher),
        disabled: r.get::<Option<i64>>(3)?.is_some(),
        must_change_password: r.get::<bool>(4)?,
        last_sign_in: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn list(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Account>> {
    db.query(
        &format!("SELECT {COLS} FROM users WHERE school_id = ?1 ORDER BY username"),
        &[&school],
    )?
    .iter()
    .map(account_from)
    .collect()
}

fn read(db: &mut dyn Sql, school: SchoolId, username: &str) -> Result<Option<Account>> {
    db.query_opt(
        &format!("SELECT {COLS} FROM users WHERE school_id = ?1 AND username = ?2"),
        &[&school, &username],
    )?
    .as_ref()
    .map(account_from)
    .transpose()
}

/// Whether `who` is the only enabled administrator of the school.
fn last_admin(db: &mut dyn Sql, school: SchoolId, who: &Account) -> Result<bool> {
    if who.role != Role::Admin || who.disabled {
        return Ok(false);
    }
    let others = db.query_opt(
        "SELECT 1 FROM users WHERE school_id = ?1 AND role = 'admin'
         AND disabled_at IS NULL AND id <> ?2",
        &[&school, &who.id],
    )?;
    Ok(others.is_none())
}

/// Deletes the account's sessions but the one for token `keep`.
fn end_sessions(db: &mut dyn Sql, user: i64, keep: Option<&str>) -> Result<usize> {
    let keep = keep.map(hash_secret).unwrap_or_default();
    db.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2",
        &[&user, &keep],
    )
}

/// Runs `change` on the account in one transaction and reads it back.
fn change(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    mut change: impl FnMut(&mut dyn Sql, &Account) -> Result<std::result::Result<usize, AccountRefusal>>,
) -> Result<Changed> {
    in_tx(db, |db| {
        let Some(before) = read(db, school, username)? else {
            return Ok(Err(AccountRefusal::NotFound));
        };
        let sessions_ended = match change(db, &before)? {
            Ok(n) => n,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let after = read(db, school, username)?;
        Ok(Ok(AccountChange {
            before,
            after,
            sessions_ended,
        }))
    })
}

fn set_disabled(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    disabled: bool,
) -> Result<Changed> {
    change(db, school, username, |db, a| {
        if disabled && last_admin(db, school, a)? {
            return Ok(Err(AccountRefusal::LastAdmin));
        }
        if disabled == a.disabled {
            return Ok(Ok(0));
        }
        let at = disabled.then(now_ms);
        db.execute(
            "UPDATE users SET disabled_at = ?1 WHERE id = ?2",
            &[&at, &a.id],
        )?;
        Ok(Ok(if disabled {
            end_sessions(db, a.id, None)?
        } else {
            0
        }))
    })
}

fn delete_account(db: &mut dyn Sql, school: SchoolId, username: &str) -> Result<Changed> {
    change(db, school, username, |db, a| {
        if last_admin(db, school, a)? {
            return Ok(Err(AccountRefusal::LastAdmin));
        }
        let n = end_sessions(db, a.id, None)?;
        db.execute("DELETE FROM users WHERE id = ?1", &[&a.id])?;
        Ok(Ok(n))
    })
}

fn set_role(db: &mut dyn Sql, school: SchoolId, username: &str, role: Role) -> Result<Changed> {
    change(db, school, username, |db, a| {
        if role != Role::Admin && last_admin(db, school, a)? {
            return Ok(Err(AccountRefusal::LastAdmin));
        }
        db.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            &[&role.as_str(), &a.id],
        )?;
        Ok(Ok(0))
    })
}

fn set_password(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    hash: &str,
    must_change: bool,
    keep: Option<&str>,
) -> Result<Changed> {
    change(db, school, username, |db, a| {
        db.execute(
            "UPDATE users SET password_hash = ?1, must_change_password = ?2 WHERE id = ?3",
            &[&hash, &must_change, &a.id],
        )?;
        Ok(Ok(end_sessions(db, a.id, keep)?))
    })
}

impl AccountsStore for SqliteStore {
    fn list_accounts(&self, school: SchoolId) -> Result<Vec<Account>> {
        self.with(|c| list(&mut Lite(c), school))
    }

    fn account(&self, school: SchoolId, username: &str) -> Result<Option<Account>> {
        self.with(|c| read(&mut Lite(c), school, username))
    }

    fn set_disabled(&self, school: SchoolId, username: &str, disabled: bool) -> Result<Changed> {
        self.with(|c| set_disabled(&mut Lite(c), school, username, disabled))
    }

    fn delete_account(&self, school: SchoolId, username: &str) -> Result<Changed> {
        self.with(|c| delete_account(&mut Lite(c), school, username))
    }

    fn set_role(&self, school: SchoolId, username: &str, role: Role) -> Result<Changed> {
        self.with(|c| set_role(&mut Lite(c), school, username, role))
    }

    fn set_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        must_change: bool,
        keep: Option<&str>,
    ) -> Result<Changed> {
        // Argon2 runs before the lock is taken, so it stalls no other call.
        let hash = hash_password(password)?;
        self.with(|c| set_password(&mut Lite(c), school, username, &hash, must_change, keep))
    }
}

impl AccountsStore for PgStore {
    fn list_accounts(&self, school: SchoolId) -> Result<Vec<Account>> {
        self.with(|db| list(db, school))
    }

    fn account(&self, school: SchoolId, username: &str) -> Result<Option<Account>> {
        self.with(|db| read(db, school, username))
    }

    fn set_disabled(&self, school: SchoolId, username: &str, disabled: bool) -> Result<Changed> {
        self.with(|db| set_disabled(db, school, username, disabled))
    }

    fn delete_account(&self, school: SchoolId, username: &str) -> Result<Changed> {
        self.with(|db| delete_account(db, school, username))
    }

    fn set_role(&self, school: SchoolId, username: &str, role: Role) -> Result<Changed> {
        self.with(|db| set_role(db, school, username, role))
    }

    fn set_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        must_change: bool,
        keep: Option<&str>,
    ) -> Result<Changed> {
        let hash = hash_password(password)?;
        self.with(|db| set_password(db, school, username, &hash, must_change, keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn store() -> (tempfile::TempDir, SqliteStore, SchoolId) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("Test School").unwrap();
        (dir, s, school)
    }

    #[test]
    fn the_last_enabled_admin_stays() {
        let (_d, s, school) = store();
        s.create_user(school, "boss", "boss-password", Role::Admin)
            .unwrap();
        s.create_user(school, "t", "teacher-password", Role::Teacher)
            .unwrap();
        let a = s.accounts();
        assert_eq!(
            a.set_disabled(school, "boss", true).unwrap().unwrap_err(),
            AccountRefusal::LastAdmin
        );
        assert_eq!(
            a.delete_account(school, "boss").unwrap().unwrap_err(),
            AccountRefusal::LastAdmin
        );
        assert_eq!(
            a.set_role(school, "boss", Role::Teacher)
                .unwrap()
                .unwrap_err(),
            AccountRefusal::LastAdmin
        );
        assert_eq!(
            a.delete_account(school, "nobody").unwrap().unwrap_err(),
            AccountRefusal::NotFound
        );
        // With a second enabled administrator, the first may go.
        a.set_role(school, "t", Role::Admin).unwrap().unwrap();
        let ch = a.set_disabled(school, "boss", true).unwrap().unwrap();
        assert!(!ch.before.disabled && ch.after.unwrap().disabled);
        assert_eq!(
            a.set_disabled(school, "t", true).unwrap().unwrap_err(),
            AccountRefusal::LastAdmin
        );
    }

    #[test]
    fn disabling_and_new_passwords_end_sessions() {
        let (_d, s, school) = store();
        s.create_user(school, "t", "teacher-password", Role::Teacher)
            .unwrap();
        let user = s
            .verify_password(school, "t", "teacher-password")
            .unwrap()
            .unwrap();
        let (one, _) = s.create_session(&user, 60_000).unwrap();
        let (two, _) = s.create_session(&user, 60_000).unwrap();
        let a = s.accounts();
        assert!(a
            .account(school, "t")
            .unwrap()
            .unwrap()
            .last_sign_in
            .is_some());
        // Its owner changes it: the other session ends, this one stays.
        let ch = a
            .set_password(school, "t", "another-password", false, Some(&one))
            .unwrap()
            .unwrap();
        assert_eq!(ch.sessions_ended, 1);
        assert!(s.session(&one).unwrap().is_some());
        assert!(s.session(&two).unwrap().is_none());
        // Reset by someone else: every session ends and a change is due.
        a.set_password(school, "t", "temporary-pass", true, None)
            .unwrap()
            .unwrap();
        assert!(s.session(&one).unwrap().is_none());
        assert!(s
            .verify_password(school, "t", "another-password")
            .unwrap()
            .is_none());
        let user = s
            .verify_password(school, "t", "temporary-pass")
            .unwrap()
            .unwrap();
        let (three, _) = s.create_session(&user, 60_000).unwrap();
        assert!(s.session(&three).unwrap().unwrap().must_change_password);
        // Disabled: no sessions, no sign-in; enabled again: sign-in works.
        assert_eq!(
            a.set_disabled(school, "t", true)
                .unwrap()
                .unwrap()
                .sessions_ended,
            1
        );
        assert!(s.session(&three).unwrap().is_none());
        assert!(s
            .verify_password(school, "t", "temporary-pass")
            .unwrap()
            .is_none());
        a.set_disabled(school, "t", false).unwrap().unwrap();
        assert!(s
            .verify_password(school, "t", "temporary-pass")
            .unwrap()
            .is_some());
        let ch = a.delete_account(school, "t").unwrap().unwrap();
        assert!(ch.after.is_none());
        assert!(a.list_accounts(school).unwrap().is_empty());
    }
}
