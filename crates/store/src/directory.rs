//! LDAP / Active Directory sync and sign-in (migration 0018), per school.
//!
//! The server reads the directory; this module keeps what it needs between
//! runs: the configuration and bind password, the accounts seen (to tell an
//! account that disappeared from one never seen), the directory's groups, and
//! the last sync runs. Group memberships themselves live in the existing
//! `directory_memberships`, so groups, rules and policies read them as before.

use serde::Serialize;

use crate::pg::PgStore;
use crate::schools::user_of;
use crate::sql::{in_tx, Engine, Sql};
use crate::sqlite::hash_password;
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

/// Directory storage; implemented by [`SqliteStore`] and [`PgStore`].
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

fn config(db: &mut dyn Sql, school: SchoolId) -> Result<Option<(String, String)>> {
    db.query_opt(
        "SELECT config, bind_password FROM directory_config WHERE school_id = ?1",
        &[&school],
    )?
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .transpose()
}

fn reseal(db: &mut dyn Sql, school: SchoolId, old: &str, new: &str) -> Result<bool> {
    // On SQLite the plain text's old bytes are zeroed in the page, not only
    // unlinked. PostgreSQL has no such switch: the old row version stays
    // in the table's file until vacuumed.
    let lite = db.engine() == Engine::Sqlite;
    if lite {
        db.query("PRAGMA secure_delete = 1", &[])?;
    }
    let changed = db.execute(
        "UPDATE directory_config SET bind_password = ?3
         WHERE school_id = ?1 AND bind_password = ?2",
        &[&school, &old, &new],
    );
    if lite {
        db.query("PRAGMA secure_delete = 0", &[])?;
    }
    Ok(changed? == 1)
}

fn set_config(
    db: &mut dyn Sql,
    school: SchoolId,
    config: &str,
    password: Option<&str>,
) -> Result<()> {
    db.execute(
        "INSERT INTO directory_config (school_id, config, bind_password, updated_at)
         VALUES (?1, ?2, COALESCE(CAST(?3 AS TEXT), ''), ?4)
         ON CONFLICT (school_id) DO UPDATE SET config = ?2,
           bind_password = COALESCE(CAST(?3 AS TEXT), directory_config.bind_password),
           updated_at = ?4",
        &[&school, &config, &password, &now_ms()],
    )?;
    Ok(())
}

fn strings(db: &mut dyn Sql, sql: &str, school: SchoolId) -> Result<Vec<String>> {
    db.query(sql, &[&school])?
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn group_names(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<String>> {
    // The name is case-blind on both engines (NOCASE; citext under "C"),
    // so it sorts the same on both.
    strings(
        db,
        "SELECT name FROM directory_groups WHERE school_id = ?1 ORDER BY name",
        school,
    )
}

fn record_sync(
    db: &mut dyn Sql,
    school: SchoolId,
    at: i64,
    trigger: &str,
    dry_run: bool,
    outcome: &str,
    summary: &serde_json::Value,
) -> Result<i64> {
    let id = db.insert_id(
        "INSERT INTO directory_syncs (school_id, at, trigger, dry_run, outcome, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        &[
            &school,
            &at,
            &trigger,
            &dry_run,
            &outcome,
            &summary.to_string(),
        ],
    )?;
    db.execute(
        "DELETE FROM directory_syncs WHERE school_id = ?1 AND id NOT IN
           (SELECT id FROM directory_syncs WHERE school_id = ?1 ORDER BY id DESC LIMIT 50)",
        &[&school],
    )?;
    Ok(id)
}

fn syncs(db: &mut dyn Sql, school: SchoolId, n: u32) -> Result<Vec<SyncRun>> {
    db.query(
        "SELECT id, at, trigger, dry_run, outcome, summary FROM directory_syncs
         WHERE school_id = ?1 ORDER BY id DESC LIMIT ?2",
        &[&school, &i64::from(n)],
    )?
    .iter()
    .map(|r| {
        let summary: String = r.get(5)?;
        Ok(SyncRun {
            id: r.get(0)?,
            at: r.get(1)?,
            trigger: r.get(2)?,
            dry_run: r.get(3)?,
            outcome: r.get(4)?,
            summary: serde_json::from_str(&summary).unwrap_or_default(),
        })
    })
    .collect()
}

fn local_usernames(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<String>> {
    // By name (the order SQLite's index on the name gave before it was
    // asked for), so that both engines list alike.
    strings(
        db,
        "SELECT u.username FROM users u WHERE u.school_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM directory_accounts d WHERE d.school_id = ?1 AND d.user_id = u.id)
         ORDER BY u.username",
        school,
    )
}

/// The same calls on either engine.
macro_rules! directory_store {
    ($t:ty) => {
        impl DirectoryStore for $t {
            fn directory_config(&self, school: SchoolId) -> Result<Option<(String, String)>> {
                self.shared(|db| config(db, school))
            }

            fn reseal_directory_password(
                &self,
                school: SchoolId,
                old: &str,
                new: &str,
            ) -> Result<bool> {
                self.shared(|db| reseal(db, school, old, new))
            }

            fn set_directory_config(
                &self,
                school: SchoolId,
                config: &str,
                password: Option<&str>,
            ) -> Result<()> {
                self.shared(|db| set_config(db, school, config, password))
            }

            fn directory_accounts(&self, school: SchoolId) -> Result<Vec<DirAccount>> {
                self.shared(|db| accounts(db, school))
            }

            fn apply_directory_sync(&self, school: SchoolId, w: &SyncWrite) -> Result<usize> {
                self.shared(|db| apply(db, school, w))
            }

            fn directory_group_names(&self, school: SchoolId) -> Result<Vec<String>> {
                self.shared(|db| group_names(db, school))
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
                self.shared(|db| record_sync(db, school, at, trigger, dry_run, outcome, summary))
            }

            fn directory_syncs(&self, school: SchoolId, n: u32) -> Result<Vec<SyncRun>> {
                self.shared(|db| syncs(db, school, n))
            }

            fn local_usernames(&self, school: SchoolId) -> Result<Vec<String>> {
                self.shared(|db| local_usernames(db, school))
            }

            fn local_user_named(&self, school: SchoolId, username: &str) -> Result<bool> {
                self.shared(|db| local_user(db, school, username))
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
                self.shared(|db| sign_in(db, school, username, dn, role, groups, &unknown))
            }
        }
    };
}

directory_store!(SqliteStore);
directory_store!(PgStore);

fn accounts(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<DirAccount>> {
    db.query(
        "SELECT username, dn, disabled, missing, user_id FROM directory_accounts
         WHERE school_id = ?1 ORDER BY username",
        &[&school],
    )?
    .iter()
    .map(|r| {
        Ok(DirAccount {
            username: r.get(0)?,
            dn: r.get(1)?,
            disabled: r.get(2)?,
            missing: r.get(3)?,
            user_id: r.get(4)?,
        })
    })
    .collect()
}

/// Whether a console user of the school no directory sign-in made is
/// called `username` in any case of ASCII letters. Users' names are
/// case-sensitive on both engines, so the comparison folds: NOCASE on
/// SQLite, `lower` under the "C" collation on PostgreSQL (the same letters
/// and no others).
fn local_user(db: &mut dyn Sql, school: SchoolId, username: &str) -> Result<bool> {
    let same_name = match db.engine() {
        Engine::Sqlite => "u.username = ?2 COLLATE NOCASE",
        Engine::Postgres => "lower(u.username) = lower(CAST(?2 AS TEXT) COLLATE \"C\")",
    };
    Ok(db
        .query_opt(
            &format!(
                "SELECT 1 FROM users u WHERE u.school_id = ?1 AND {same_name}
                   AND NOT EXISTS (SELECT 1 FROM directory_accounts d
                                   WHERE d.school_id = ?1 AND d.user_id = u.id)"
            ),
            &[&school, &username],
        )?
        .is_some())
}

/// Replaces the account's memberships (its name is case-blind on both
/// engines).
fn set_groups(db: &mut dyn Sql, school: SchoolId, username: &str, groups: &[String]) -> Result<()> {
    db.execute(
        "DELETE FROM directory_memberships WHERE school_id = ?1 AND username = ?2",
        &[&school, &username],
    )?;
    for g in groups {
        db.execute(
            "INSERT INTO directory_memberships (school_id, username, group_name)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            &[&school, &username, g],
        )?;
    }
    Ok(())
}

/// Ends the sessions of the console user a directory sign-in made for `username`.
fn end_sessions(db: &mut dyn Sql, school: SchoolId, username: &str) -> Result<usize> {
    db.execute(
        "DELETE FROM sessions WHERE school_id = ?1 AND user_id IN (
           SELECT user_id FROM directory_accounts
           WHERE school_id = ?1 AND username = ?2 AND user_id IS NOT NULL)",
        &[&school, &username],
    )
}

fn apply(db: &mut dyn Sql, school: SchoolId, w: &SyncWrite) -> Result<usize> {
    let now = now_ms();
    in_tx(db, |db| {
        let mut ended = 0;
        for (name, dn, disabled, groups) in &w.accounts {
            db.execute(
                "INSERT INTO directory_accounts (school_id, username, dn, disabled, missing, seen_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)
                 ON CONFLICT (school_id, username) DO UPDATE
                   SET dn = ?3, disabled = ?4, missing = 0, seen_at = ?5",
                &[&school, name, dn, disabled, &now],
            )?;
            set_groups(db, school, name, groups)?;
            if *disabled {
                ended += end_sessions(db, school, name)?;
            }
        }
        for name in &w.missing {
            db.execute(
                "UPDATE directory_accounts SET disabled = 1, missing = 1
                 WHERE school_id = ?1 AND username = ?2",
                &[&school, name],
            )?;
            set_groups(db, school, name, &[])?;
            ended += end_sessions(db, school, name)?;
        }
        db.execute(
            "DELETE FROM directory_groups WHERE school_id = ?1",
            &[&school],
        )?;
        for (name, dn) in &w.groups {
            db.execute(
                "INSERT INTO directory_groups (school_id, name, dn) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                &[&school, name, dn],
            )?;
        }
        Ok(ended)
    })
}

fn sign_in(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    dn: &str,
    role: Role,
    groups: &[String],
    unknown_hash: &str,
) -> Result<User> {
    in_tx(db, |db| {
        if local_user(db, school, username)? {
            return Err(StoreError::Exists(format!("local user {username:?}")));
        }
        let linked: Option<i64> = db
            .query_opt(
                "SELECT user_id FROM directory_accounts WHERE school_id = ?1 AND username = ?2",
                &[&school, &username],
            )?
            .map(|r| r.get::<Option<i64>>(0))
            .transpose()?
            .flatten();
        let user_id = match linked {
            Some(id) => {
                db.execute(
                    "UPDATE users SET role = ?2 WHERE id = ?1",
                    &[&id, &role.as_str()],
                )?;
                id
            }
            None => db.insert_id(
                "INSERT INTO users (school_id, username, password_hash, role, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                &[&school, &username, &unknown_hash, &role.as_str(), &now_ms()],
            )?,
        };
        db.execute(
            "INSERT INTO directory_accounts
               (school_id, username, dn, disabled, missing, user_id, seen_at)
             VALUES (?1, ?2, ?3, 0, 0, ?4, ?5)
             ON CONFLICT (school_id, username) DO UPDATE
               SET dn = ?3, disabled = 0, missing = 0, user_id = ?4, seen_at = ?5",
            &[&school, &username, &dn, &user_id, &now_ms()],
        )?;
        set_groups(db, school, username, groups)?;
        db.query_opt(
            "SELECT id, school_id, username, role FROM users WHERE id = ?1",
            &[&user_id],
        )?
        .ok_or_else(|| StoreError::Corrupt(format!("no user {user_id}")))
        .and_then(|r| user_of(&r))
    })
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
