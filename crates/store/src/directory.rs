//! LDAP / Active Directory sync and sign-in (migration 0018), per school.
//!
//! The server reads the directory; this module keeps what it needs between
//! runs: the configuration and bind password, the accounts seen (to tell an
//! account that disappeared from one never seen), the directory's groups, and
//! the last sync runs. Group memberships themselves live in the existing
//! `directory_memberships`, so groups, rules and policies read them as before.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::sqlite::{hash_password, user_from};
use crate::{now_ms, random_token, Result, Role, SchoolId, SqliteStore, StoreError, User};

/// An account the directory has shown us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirAccount {
    /// Its login name as the directory spells it.
    pub username: String,
    /// Its distinguished name.
    pub dn: String,
    /// Disabled in the directory, or no longer listed by it.
    pub disabled: bool,
    /// No longer listed by the directory.
    pub missing: bool,
    /// The console user a directory sign-in made for it.
    pub user_id: Option<i64>,
}

/// What a sync writes, all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct SyncWrite {
    /// Every account the directory lists now: name, DN, disabled, groups
    /// (empty for a disabled one).
    pub accounts: Vec<(String, String, bool, Vec<String>)>,
    /// Known accounts the directory no longer lists: disabled, groups cleared.
    pub missing: Vec<String>,
    /// The directory's groups: name and DN.
    pub groups: Vec<(String, String)>,
}

/// A sync run as kept for the page.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    /// Id.
    pub id: i64,
    /// When (ms since epoch).
    pub at: i64,
    /// `manual`, `schedule`.
    pub trigger: String,
    /// A dry run changes nothing.
    pub dry_run: bool,
    /// `ok` or `error`.
    pub outcome: String,
    /// The plan or the error, as JSON.
    pub summary: serde_json::Value,
}

/// Directory storage; implemented by [`SqliteStore`].
pub trait DirectoryStore: Send + Sync {
    /// The school's configuration (JSON) and its bind password as stored
    /// (sealed by the server; empty when none is set).
    fn directory_config(&self, school: SchoolId) -> Result<Option<(String, String)>>;
    /// Replaces the stored bind password `old` by `new` (a plain-text one
    /// from before sealing, by its sealed form); false, changing nothing,
    /// when the row no longer holds `old` (an administrator saved meanwhile).
    fn reseal_directory_password(&self, school: SchoolId, old: &str, new: &str) -> Result<bool>;
    /// Stores the configuration; `password` `None` keeps the stored one.
    fn set_directory_config(
        &self,
        school: SchoolId,
        config: &str,
        password: Option<&str>,
    ) -> Result<()>;
    /// Every account seen, by name.
    fn directory_accounts(&self, school: SchoolId) -> Result<Vec<DirAccount>>;
    /// Writes a sync's result: accounts, memberships, groups; ends the
    /// sessions of console users whose directory account is now disabled or
    /// missing. Returns how many sessions ended.
    fn apply_directory_sync(&self, school: SchoolId, w: &SyncWrite) -> Result<usize>;
    /// The directory's groups as of the last sync.
    fn directory_group_names(&self, school: SchoolId) -> Result<Vec<String>>;
    /// Records a run at `at` (ms, the server's clock, which the scheduler
    /// compares with), keeping the last 50.
    fn record_directory_sync(
        &self,
        school: SchoolId,
        at: i64,
        trigger: &str,
        dry_run: bool,
        outcome: &str,
        summary: &serde_json::Value,
    ) -> Result<i64>;
    /// The last `n` runs, newest first.
    fn directory_syncs(&self, school: SchoolId, n: u32) -> Result<Vec<SyncRun>>;
    /// The names of console users no directory sign-in made (local accounts).
    fn local_usernames(&self, school: SchoolId) -> Result<Vec<String>>;
    /// A console user with this name (any case) that no directory sign-in
    /// made: a local account, which the directory never signs in for.
    fn local_user_named(&self, school: SchoolId, username: &str) -> Result<bool>;
    /// After a successful directory sign-in: creates or updates the console
    /// user (role; a random password nobody knows, so only the directory signs
    /// it in), its account row and its groups. Refuses (`Exists`) a name a
    /// local account holds.
    fn directory_sign_in(
        &self,
        school: SchoolId,
        username: &str,
        dn: &str,
        role: Role,
        groups: &[String],
    ) -> Result<User>;
}

impl DirectoryStore for SqliteStore {
    fn directory_config(&self, school: SchoolId) -> Result<Option<(String, String)>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT config, bind_password FROM directory_config WHERE school_id = ?1",
                params![school],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn reseal_directory_password(&self, school: SchoolId, old: &str, new: &str) -> Result<bool> {
        self.with(|c| {
            // Zeroes the plain text's old bytes in the page, not only unlinks them.
            c.pragma_update(None, "secure_delete", true)?;
            let changed = c.execute(
                "UPDATE directory_config SET bind_password = ?3
                 WHERE school_id = ?1 AND bind_password = ?2",
                params![school, old, new],
            );
            c.pragma_update(None, "secure_delete", false)?;
            Ok(changed? == 1)
        })
    }

    fn set_directory_config(
        &self,
        school: SchoolId,
        config: &str,
        password: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO directory_config (school_id, config, bind_password, updated_at)
                 VALUES (?1, ?2, COALESCE(?3, ''), ?4)
                 ON CONFLICT(school_id) DO UPDATE SET config = ?2,
                   bind_password = COALESCE(?3, bind_password), updated_at = ?4",
                params![school, config, password, now_ms()],
            )?;
            Ok(())
        })
    }

    fn directory_accounts(&self, school: SchoolId) -> Result<Vec<DirAccount>> {
        self.with(|c| accounts(c, school))
    }

    fn apply_directory_sync(&self, school: SchoolId, w: &SyncWrite) -> Result<usize> {
        self.with(|c| apply(c, school, w))
    }

    fn directory_group_names(&self, school: SchoolId) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name FROM directory_groups WHERE school_id = ?1 ORDER BY name COLLATE NOCASE",
            )?;
            let rows = stmt.query_map(params![school], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn record_directory_sync(
        &self,
        school: SchoolId,
        at: i64,
        trigger: &str,
        dry_run: bool,
        outcome: &str,
        summary: &serde_json::Value,
    ) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO directory_syncs (school_id, at, trigger, dry_run, outcome, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![school, at, trigger, dry_run, outcome, summary.to_string()],
            )?;
            let id = c.last_insert_rowid();
            c.execute(
                "DELETE FROM directory_syncs WHERE school_id = ?1 AND id NOT IN
                   (SELECT id FROM directory_syncs WHERE school_id = ?1 ORDER BY id DESC LIMIT 50)",
                params![school],
            )?;
            Ok(id)
        })
    }

    fn directory_syncs(&self, school: SchoolId, n: u32) -> Result<Vec<SyncRun>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, at, trigger, dry_run, outcome, summary FROM directory_syncs
                 WHERE school_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![school, n], |r| {
                let summary: String = r.get(5)?;
                Ok(SyncRun {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    trigger: r.get(2)?,
                    dry_run: r.get(3)?,
                    outcome: r.get(4)?,
                    summary: serde_json::from_str(&summary).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn local_usernames(&self, school: SchoolId) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT u.username FROM users u WHERE u.school_id = ?1 AND NOT EXISTS
                   (SELECT 1 FROM directory_accounts d WHERE d.school_id = ?1 AND d.user_id = u.id)",
            )?;
            let rows = stmt.query_map(params![school], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn local_user_named(&self, school: SchoolId, username: &str) -> Result<bool> {
        self.with(|c| local_user(c, school, username))
    }

    fn directory_sign_in(
        &self,
        school: SchoolId,
        username: &str,
        dn: &str,
        role: Role,
        groups: &[String],
    ) -> Result<User> {
        // Hashed before the lock: Argon2 is slow.
        let unknown = hash_password(&random_token())?;
        self.with(|c| sign_in(c, school, username, dn, role, groups, &unknown))
    }
}

fn accounts(c: &Connection, school: SchoolId) -> Result<Vec<DirAccount>> {
    let mut stmt = c.prepare(
        "SELECT username, dn, disabled, missing, user_id FROM directory_accounts
         WHERE school_id = ?1 ORDER BY username",
    )?;
    let rows = stmt.query_map(params![school], |r| {
        Ok(DirAccount {
            username: r.get(0)?,
            dn: r.get(1)?,
            disabled: r.get(2)?,
            missing: r.get(3)?,
            user_id: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn local_user(c: &Connection, school: SchoolId, username: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM users u WHERE u.school_id = ?1 AND u.username = ?2 COLLATE NOCASE
           AND NOT EXISTS (SELECT 1 FROM directory_accounts d WHERE d.school_id = ?1 AND d.user_id = u.id))",
        params![school, username],
        |r| r.get(0),
    )?)
}

fn set_groups(c: &Connection, school: SchoolId, username: &str, groups: &[String]) -> Result<()> {
    c.execute(
        "DELETE FROM directory_memberships WHERE school_id = ?1 AND username = ?2 COLLATE NOCASE",
        params![school, username],
    )?;
    for g in groups {
        c.execute(
            "INSERT OR IGNORE INTO directory_memberships (school_id, username, group_name) VALUES (?1, ?2, ?3)",
            params![school, username, g],
        )?;
    }
    Ok(())
}

/// Ends the sessions of the console user a directory sign-in made for `username`.
fn end_sessions(c: &Connection, school: SchoolId, username: &str) -> Result<usize> {
    Ok(c.execute(
        "DELETE FROM sessions WHERE school_id = ?1 AND user_id IN (
           SELECT user_id FROM directory_accounts
           WHERE school_id = ?1 AND username = ?2 AND user_id IS NOT NULL)",
        params![school, username],
    )?)
}

fn apply(c: &mut Connection, school: SchoolId, w: &SyncWrite) -> Result<usize> {
    let tx = c.transaction()?;
    let now = now_ms();
    let mut ended = 0;
    for (name, dn, disabled, groups) in &w.accounts {
        tx.execute(
            "INSERT INTO directory_accounts (school_id, username, dn, disabled, missing, seen_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)
             ON CONFLICT(school_id, username) DO UPDATE SET dn = ?3, disabled = ?4, missing = 0, seen_at = ?5",
            params![school, name, dn, disabled, now],
        )?;
        set_groups(&tx, school, name, groups)?;
        if *disabled {
            ended += end_sessions(&tx, school, name)?;
        }
    }
    for name in &w.missing {
        tx.execute(
            "UPDATE directory_accounts SET disabled = 1, missing = 1 WHERE school_id = ?1 AND username = ?2",
            params![school, name],
        )?;
        set_groups(&tx, school, name, &[])?;
        ended += end_sessions(&tx, school, name)?;
    }
    tx.execute(
        "DELETE FROM directory_groups WHERE school_id = ?1",
        params![school],
    )?;
    for (name, dn) in &w.groups {
        tx.execute(
            "INSERT OR IGNORE INTO directory_groups (school_id, name, dn) VALUES (?1, ?2, ?3)",
            params![school, name, dn],
        )?;
    }
    tx.commit()?;
    Ok(ended)
}

fn sign_in(
    c: &mut Connection,
    school: SchoolId,
    username: &str,
    dn: &str,
    role: Role,
    groups: &[String],
    unknown_hash: &str,
) -> Result<User> {
    let tx = c.transaction()?;
    if local_user(&tx, school, username)? {
        return Err(StoreError::Exists(format!("local user {username:?}")));
    }
    let linked: Option<i64> = tx
        .query_row(
            "SELECT user_id FROM directory_accounts WHERE school_id = ?1 AND username = ?2",
            params![school, username],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let user_id = match linked {
        Some(id) => {
            tx.execute(
                "UPDATE users SET role = ?2 WHERE id = ?1",
                params![id, role.as_str()],
            )?;
            id
        }
        None => {
            tx.execute(
                "INSERT INTO users (school_id, username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![school, username, unknown_hash, role.as_str(), now_ms()],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "INSERT INTO directory_accounts (school_id, username, dn, disabled, missing, user_id, seen_at)
         VALUES (?1, ?2, ?3, 0, 0, ?4, ?5)
         ON CONFLICT(school_id, username) DO UPDATE SET dn = ?3, disabled = 0, missing = 0, user_id = ?4, seen_at = ?5",
        params![school, username, dn, user_id, now_ms()],
    )?;
    set_groups(&tx, school, username, groups)?;
    let user = tx.query_row(
        "SELECT id, school_id, username, role FROM users WHERE id = ?1",
        params![user_id],
        user_from,
    )?;
    tx.commit()?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn sync_disables_missing_accounts_and_ends_their_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("S").unwrap();
        let u = s
            .directory_sign_in(
                school,
                "amy",
                "uid=amy,dc=x",
                Role::Teacher,
                &["Staff".into()],
            )
            .unwrap();
        let (token, _) = s.create_session(&u, 60_000).unwrap();
        assert!(s.session(&token).unwrap().is_some());
        let w = SyncWrite {
            missing: vec!["amy".into()],
            ..Default::default()
        };
        assert_eq!(s.apply_directory_sync(school, &w).unwrap(), 1);
        assert!(s.session(&token).unwrap().is_none());
        let acc = s.directory_accounts(school).unwrap();
        assert!(acc[0].disabled && acc[0].missing);
        assert!(s.directory(school).unwrap().is_empty());
    }

    #[test]
    fn only_the_last_fifty_runs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("S").unwrap();
        for i in 0..60 {
            s.record_directory_sync(
                school,
                i,
                "manual",
                false,
                "ok",
                &serde_json::json!({"i": i}),
            )
            .unwrap();
        }
        let runs = s.directory_syncs(school, 100).unwrap();
        assert_eq!(runs.len(), 50);
        assert_eq!(runs[0].summary["i"], 59);
    }

    #[test]
    fn a_local_account_is_never_taken_over_by_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("S").unwrap();
        s.create_user(school, "Admin", "pw-long-enough", Role::Admin)
            .unwrap();
        assert!(s.local_user_named(school, "admin").unwrap());
        let err = s
            .directory_sign_in(school, "admin", "uid=admin,dc=x", Role::Admin, &[])
            .unwrap_err();
        assert!(matches!(err, StoreError::Exists(_)));
    }
}
