//! Devices and what is sent to them: enrollment tokens, enrolling and
//! authenticating devices, what they report, and commands with each
//! target's outcome. Shared SQL ([`crate::sql`]):
//! [`SqliteStore`](crate::SqliteStore)'s [`Store`](crate::Store) calls these,
//! and so does [`PgStore`](crate::PgStore).

use crate::sql::{in_tx, Row, Sql};
use crate::sqlite::{add_device, device_of, DEVICE_COLS};
use crate::{
    hash_secret, now_ms, CommandRecord, Device, DeviceAuth, EnrollmentToken, NewDevice, Result,
    SchoolId, StoreError, Target, TargetStatus, TargetUpdate,
};

/// Stores an enrollment token (only its hash).
pub(crate) fn add_enrollment_token(
    db: &mut dyn Sql,
    school: SchoolId,
    token: &str,
    label: &str,
    uses: i64,
    expires_at: i64,
    created_by: &str,
) -> Result<EnrollmentToken> {
    let now = now_ms();
    let id: i64 = db
        .insert_id(
            "INSERT INTO enrollment_tokens (school_id, token_hash, label, uses_left, expires_at, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &[&school, &hash_secret(token), &label, &uses, &expires_at, &created_by, &now],
        )?;
    Ok(EnrollmentToken {
        id,
        label: label.to_string(),
        uses_left: uses,
        expires_at,
        created_by: created_by.to_string(),
        created_at: now,
    })
}

pub(crate) fn list_enrollment_tokens(
    db: &mut dyn Sql,
    school: SchoolId,
) -> Result<Vec<EnrollmentToken>> {
    db.query(
        "SELECT id, label, uses_left, expires_at, created_by, created_at FROM enrollment_tokens
         WHERE school_id = ?1 ORDER BY id",
        &[&school],
    )?
    .iter()
    .map(|r| {
        Ok(EnrollmentToken {
            id: r.get(0)?,
            label: r.get(1)?,
            uses_left: r.get(2)?,
            expires_at: r.get(3)?,
            created_by: r.get(4)?,
            created_at: r.get(5)?,
        })
    })
    .collect()
}

/// Consumes one use of `token` and adds a device, in one transaction;
/// `None` when the token is unknown, used up or expired.
pub(crate) fn enroll_device(
    db: &mut dyn Sql,
    token: &str,
    info: &NewDevice,
    now: i64,
) -> Result<Option<(Device, String)>> {
    in_tx(db, |db| {
        // Zero rows: unknown, used up or expired.
        let school = db.query_opt(
            "UPDATE enrollment_tokens SET uses_left = uses_left - 1
             WHERE token_hash = ?1 AND uses_left > 0 AND expires_at > ?2 RETURNING school_id",
            &[&hash_secret(token), &now],
        )?;
        let Some(school) = school else {
            return Ok(None);
        };
        add_device(db, school.get(0)?, info, now).map(Some)
    })
}

/// A device by id with its secret's hash.
pub(crate) fn device_with_hash(db: &mut dyn Sql, id: i64) -> Result<Option<(Device, String)>> {
    db.query_opt(
        &format!("SELECT {DEVICE_COLS}, secret_hash FROM devices WHERE id = ?1"),
        &[&id],
    )?
    .map(|r| Ok((device_of(&r)?, r.get(10)?)))
    .transpose()
}

/// Checks a device's credential against what [`device_with_hash`] found.
pub(crate) fn check_device(found: Option<(Device, String)>, secret: &str) -> DeviceAuth {
    match found {
        Some((d, hash)) if constant_time_eq(hash.as_bytes(), hash_secret(secret).as_bytes()) => {
            if d.revoked_at.is_some() {
                DeviceAuth::Revoked
            } else {
                DeviceAuth::Ok(d)
            }
        }
        _ => DeviceAuth::Unknown,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records what a connected device reports. The reported host name is only
/// recorded: the enrolled (or accepted) name stays the device's identity.
pub(crate) fn save_device_state(db: &mut dyn Sql, id: i64, state_json: &str) -> Result<()> {
    db.execute(
        "UPDATE devices SET state = ?2 WHERE id = ?1",
        &[&id, &state_json],
    )?;
    Ok(())
}

pub(crate) fn touch_device(
    db: &mut dyn Sql,
    id: i64,
    info: &NewDevice,
    state_json: &str,
    now: i64,
) -> Result<()> {
    db.execute(
        "UPDATE devices SET reported_name = CASE WHEN ?2 = hostname THEN NULL ELSE ?2 END,
            os = ?3, agent_version = ?4, state = ?5, last_seen = ?6 WHERE id = ?1",
        &[
            &id,
            &info.hostname,
            &info.os,
            &info.agent_version,
            &state_json,
            &now,
        ],
    )?;
    Ok(())
}

/// Makes a device's reported name its name: (old, new).
pub(crate) fn accept_device_name(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
) -> Result<Option<(String, String)>> {
    in_tx(db, |db| {
        let found = db.query_opt(
            "SELECT hostname, reported_name FROM devices WHERE id = ?1 AND school_id = ?2",
            &[&id, &school],
        )?;
        let Some(row) = found else {
            return Ok(None);
        };
        let (old, new): (String, Option<String>) = (row.get(0)?, row.get(1)?);
        let Some(new) = new else {
            return Ok(None);
        };
        db.execute(
            "UPDATE devices SET hostname = ?2, reported_name = NULL WHERE id = ?1",
            &[&id, &new],
        )?;
        Ok(Some((old, new)))
    })
}

pub(crate) fn list_devices(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Device>> {
    db.query(
        &format!("SELECT {DEVICE_COLS} FROM devices WHERE school_id = ?1 ORDER BY hostname, id"),
        &[&school],
    )?
    .iter()
    .map(device_of)
    .collect()
}

pub(crate) fn revoke_device(db: &mut dyn Sql, school: SchoolId, id: i64, now: i64) -> Result<bool> {
    let n = db.execute(
        "UPDATE devices SET revoked_at = ?3 WHERE id = ?1 AND school_id = ?2 AND revoked_at IS NULL",
        &[&id, &school, &now],
    )?;
    Ok(n == 1)
}

/// Records a command and each target's first status, in one transaction.
pub(crate) fn create_command(
    db: &mut dyn Sql,
    school: SchoolId,
    actor: &str,
    body_json: &str,
    targets: &[(i64, TargetStatus)],
    now: i64,
) -> Result<CommandRecord> {
    let command =
        serde_json::from_str(body_json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = in_tx(db, |db| {
        let id: i64 = db.insert_id(
            "INSERT INTO commands (school_id, actor, body, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
            &[&school, &actor, &body_json, &now],
        )?;
        for (device, status) in targets {
            db.execute(
                "INSERT INTO command_targets (command_id, device_id, status, updated_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                &[&id, device, &status.as_str(), &now],
            )?;
        }
        Ok(id)
    })?;
    Ok(CommandRecord {
        id,
        actor: actor.to_string(),
        command,
        created_at: now,
        targets: targets
            .iter()
            .map(|&(device_id, status)| Target {
                device_id,
                status,
                reason: None,
                updated_at: now,
            })
            .collect(),
    })
}

/// Applies outcomes in one transaction. Only pending targets change: a late
/// acknowledgement never overwrites an outcome, and an outcome given twice
/// (by a gateway and by the node that saw it lost) counts once.
pub(crate) fn update_targets(db: &mut dyn Sql, updates: &[TargetUpdate]) -> Result<()> {
    in_tx(db, |db| {
        for u in updates {
            db.execute(
                "UPDATE command_targets SET status = ?3, reason = ?4, updated_at = ?5
                 WHERE command_id = ?1 AND device_id = ?2 AND status = 'pending'",
                &[
                    &u.command_id,
                    &u.device_id,
                    &u.status.as_str(),
                    &u.reason,
                    &u.at,
                ],
            )?;
        }
        Ok(())
    })
}

fn target_of(r: &Row) -> Result<Target> {
    Ok(Target {
        device_id: r.get(0)?,
        status: TargetStatus::from_db(&r.get::<String>(1)?),
        reason: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

/// A command of `school` with every target's outcome.
pub(crate) fn command(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
) -> Result<Option<CommandRecord>> {
    let Some(head) = db.query_opt(
        "SELECT actor, body, created_at FROM commands WHERE id = ?1 AND school_id = ?2",
        &[&id, &school],
    )?
    else {
        return Ok(None);
    };
    let targets = db
        .query(
            "SELECT device_id, status, reason, updated_at FROM command_targets
             WHERE command_id = ?1 ORDER BY device_id",
            &[&id],
        )?
        .iter()
        .map(target_of)
        .collect::<Result<_>>()?;
    let body: String = head.get(1)?;
    let command = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(CommandRecord {
        id,
        actor: head.get(0)?,
        command,
        created_at: head.get(2)?,
        targets,
    }))
}
