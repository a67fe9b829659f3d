//! Schools and the console users who sign in to them: creating a school
//! (with its built-in groups), finding it, users' passwords and sessions.
//! Shared SQL ([`crate::sql`]): [`SqliteStore`](crate::SqliteStore)'s
//! [`Store`](crate::Store) calls these, and so does
//! [`PgStore`](crate::PgStore).

use crate::sql::{in_tx, Engine, Row, Sql};
use crate::{
    hash_secret, random_token, AuditEntry, AuditReader, NewAudit, Result, Role, School, SchoolId,
    Session, StoreError, User,
};

fn school_of(row: &Row) -> Result<School> {
    Ok(School {
        id: row.get(0)?,
        name: row.get(1)?,
    })
}

/// A user from `id, school_id, username, role` (the first four columns).
pub(crate) fn user_of(row: &Row) -> Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        school_id: row.get(1)?,
        username: row.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Teacher),
    })
}

/// Creates a school with its built-in groups, at once.
pub(crate) fn create_school(db: &mut dyn Sql, name: &str, now: i64) -> Result<SchoolId> {
    in_tx(db, |db| {
        let id: SchoolId = db.insert_id(
            "INSERT INTO schools (name, created_at) VALUES (?1, ?2) RETURNING id",
            &[&name, &now],
        )?;
        crate::groups::add_builtin(db, id)?;
        Ok(id)
    })
}

pub(crate) fn first_school(db: &mut dyn Sql) -> Result<Option<School>> {
    db.query_opt("SELECT id, name FROM schools ORDER BY id LIMIT 1", &[])?
        .map(|r| school_of(&r))
        .transpose()
}

pub(crate) fn school(db: &mut dyn Sql, id: SchoolId) -> Result<Option<School>> {
    db.query_opt("SELECT id, name FROM schools WHERE id = ?1", &[&id])?
        .map(|r| school_of(&r))
        .transpose()
}

pub(crate) fn schools(db: &mut dyn Sql) -> Result<Vec<School>> {
    db.query("SELECT id, name FROM schools ORDER BY id", &[])?
        .iter()
        .map(school_of)
        .collect()
}

pub(crate) fn schools_with_user(db: &mut dyn Sql, username: &str) -> Result<Vec<SchoolId>> {
    db.query(
        "SELECT DISTINCT school_id FROM users WHERE username = ?1 AND disabled_at IS NULL
         ORDER BY school_id",
        &[&username],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Adds a user with an already hashed password; a name the school has is
/// [`StoreError::Exists`].
pub(crate) fn create_user(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    hash: &str,
    role: Role,
    now: i64,
) -> Result<i64> {
    let added = db.insert_id(
        "INSERT INTO users (school_id, username, password_hash, role, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        &[&school, &username, &hash, &role.as_str(), &now],
    );
    match added {
        Ok(id) => Ok(id),
        Err(e) if e.taken() => Err(StoreError::Exists(format!("user {username:?}"))),
        Err(e) => Err(e),
    }
}

/// An enabled user of `school` by name, with their password's hash.
pub(crate) fn user_with_hash(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
) -> Result<Option<(User, String)>> {
    db.query_opt(
        "SELECT id, school_id, username, role, password_hash FROM users
         WHERE school_id = ?1 AND username = ?2 AND disabled_at IS NULL",
        &[&school, &username],
    )?
    .map(|r| Ok((user_of(&r)?, r.get(4)?)))
    .transpose()
}

/// Starts a session for `user` (dropping expired ones) and notes the
/// sign-in; returns the bearer token (shown once) and the session.
pub(crate) fn create_session(
    db: &mut dyn Sql,
    user: &User,
    ttl_ms: i64,
    now: i64,
) -> Result<(String, Session)> {
    let token = random_token();
    let csrf = random_token();
    let expires = now + ttl_ms;
    // Expired sessions go first, outside the transaction: every sign-in
    // does this, and in one serializable transaction concurrent sign-ins
    // would conflict over the same rows.
    db.execute("DELETE FROM sessions WHERE expires_at < ?1", &[&now])?;
    let must_change = in_tx(db, |db| {
        db.execute(
            "INSERT INTO sessions (token_hash, school_id, user_id, csrf_token, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[&hash_secret(&token), &user.school_id, &user.id, &csrf, &now, &expires],
        )?;
        // A session is a sign-in: the Users page shows when the last was.
        db.query_opt(
            "UPDATE users SET last_sign_in = ?1 WHERE id = ?2 RETURNING must_change_password",
            &[&now, &user.id],
        )?
        .ok_or_else(|| StoreError::Corrupt("a session for no user".into()))?
        .get::<bool>(0)
    })?;
    Ok((
        token,
        Session {
            user: user.clone(),
            csrf_token: csrf,
            expires_at: expires,
            must_change_password: must_change,
        },
    ))
}

/// A live session by its token. A session in another school than the
/// user's own acts there only while a grant stands (see `grants`), with the
/// granted role, under a name that tells whose user it is.
pub(crate) fn session(db: &mut dyn Sql, token: &str, now: i64) -> Result<Option<Session>> {
    db.query_opt(
        "SELECT u.id, s.school_id,
                CASE WHEN s.school_id = u.school_id THEN u.username
                     ELSE u.username || ' (' || home.name || ')' END,
                CASE WHEN s.school_id = u.school_id THEN u.role ELSE g.role END,
                s.csrf_token, s.expires_at, u.must_change_password
         FROM sessions s JOIN users u ON u.id = s.user_id
         JOIN schools home ON home.id = u.school_id
         LEFT JOIN school_grants g ON g.user_id = u.id AND g.school_id = s.school_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL
           AND (s.school_id = u.school_id OR g.role IS NOT NULL)",
        &[&hash_secret(token), &now],
    )?
    .map(|r| {
        Ok(Session {
            user: user_of(&r)?,
            csrf_token: r.get(4)?,
            expires_at: r.get(5)?,
            must_change_password: r.get(6)?,
        })
    })
    .transpose()
}

pub(crate) fn delete_session(db: &mut dyn Sql, token: &str) -> Result<()> {
    db.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        &[&hash_secret(token)],
    )?;
    Ok(())
}

pub(crate) fn list_users(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<User>> {
    db.query(
        "SELECT id, school_id, username, role FROM users WHERE school_id = ?1 ORDER BY username",
        &[&school],
    )?
    .iter()
    .map(user_of)
    .collect()
}

/// A console user's stored preferences (JSON the server checked).
pub(crate) fn preferences(db: &mut dyn Sql, school: SchoolId, user: i64) -> Result<Option<String>> {
    db.query_opt(
        "SELECT prefs FROM console_preferences WHERE school_id = ?1 AND user_id = ?2",
        &[&school, &user],
    )?
    .map(|r| r.get(0))
    .transpose()
}

/// Replaces a user's preferences with what `update` makes of the stored
/// ones, read and written in one transaction (two nodes updating at once
/// never lose either's change: the one that loses is run again).
pub(crate) fn update_preferences(
    db: &mut dyn Sql,
    school: SchoolId,
    user: i64,
    update: &dyn Fn(Option<String>) -> String,
    now: i64,
) -> Result<String> {
    in_tx(db, |db| {
        let prefs = update(preferences(db, school, user)?);
        db.execute(
            "INSERT INTO console_preferences (school_id, user_id, prefs, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (school_id, user_id) DO UPDATE SET prefs = ?3, updated_at = ?4",
            &[&school, &user, &prefs, &now],
        )?;
        Ok(prefs)
    })
}

/// Appends an audit entry.
pub(crate) fn audit(db: &mut dyn Sql, e: &NewAudit, now: i64) -> Result<i64> {
    let devices = serde_json::to_string(&e.devices).unwrap_or_else(|_| "[]".into());
    db.insert_id(
        "INSERT INTO audit_log (school_id, at, actor, address, action, detail, devices, command_id, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        &[
            &e.school_id,
            &now,
            &e.actor,
            &e.address,
            &e.action,
            &e.detail,
            &devices,
            &e.command_id,
            &e.outcome,
        ],
    )
}

/// Newest-first audit entries below `before`, only those `reader` may read
/// (its own, or ones about devices it sees, every one of them), filtered
/// in SQL so that pages stay full and `before` pages on correctly. The
/// device lists are JSON arrays, read by each engine's own functions.
pub(crate) fn audit_list(
    db: &mut dyn Sql,
    school: SchoolId,
    limit: i64,
    before: Option<i64>,
    reader: Option<&AuditReader>,
) -> Result<Vec<AuditEntry>> {
    let only_devices = readable_entries(db.engine());
    let sql = format!(
        "SELECT {AUDIT_COLS} FROM audit_log
         WHERE school_id = ?1 AND id < ?2
           AND (CAST(?4 AS TEXT) IS NULL OR actor = ?4 OR ({only_devices}))
         ORDER BY id DESC LIMIT ?3"
    );
    let actor = reader.map(|r| r.username.as_str());
    let visible = serde_json::to_string(&reader.map(|r| &r.devices[..]).unwrap_or_default())
        .unwrap_or_else(|_| "[]".into());
    db.query(
        &sql,
        &[
            &school,
            &before.unwrap_or(i64::MAX),
            &limit,
            &actor,
            &visible,
        ],
    )?
    .iter()
    .map(audit_entry_of)
    .collect()
}

/// The columns [`audit_entry_of`] reads.
pub(crate) const AUDIT_COLS: &str =
    "id, at, actor, address, action, detail, devices, command_id, outcome";

/// An audit entry from a row of [`AUDIT_COLS`].
pub(crate) fn audit_entry_of(r: &Row) -> Result<AuditEntry> {
    let devices: String = r.get(6)?;
    Ok(AuditEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        address: r.get(3)?,
        action: r.get(4)?,
        detail: r.get(5)?,
        devices: serde_json::from_str(&devices).unwrap_or_default(),
        command_id: r.get(7)?,
        outcome: r.get(8)?,
    })
}

/// Entries a reader who is not their actor may read, in SQL: ones naming
/// devices, every one of them among those in the JSON array `?5`.
pub(crate) fn readable_entries(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => {
            "json_array_length(devices) > 0
             AND NOT EXISTS (SELECT 1 FROM json_each(audit_log.devices) d
                             WHERE d.value NOT IN (SELECT value FROM json_each(?5)))"
        }
        Engine::Postgres => {
            "jsonb_array_length(devices::jsonb) > 0
             AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(audit_log.devices::jsonb) d(v)
                             WHERE d.v NOT IN
                                 (SELECT jsonb_array_elements_text(CAST(?5 AS TEXT)::jsonb)))"
        }
    }
}
