//! Device administration (migration 0014), per school: enrollment tokens
//! that enroll into a room (a computer group), device rename and deletion,
//! and the switch for the anonymous computer-availability screen.
//!
//! A room's membership is its group's member list: a device enrolled with a
//! room's token is added to it as an exact host-name member, so the classroom
//! tree, policy resolution and console scoping all see it with no second
//! notion of membership. Rename and deletion keep those exact members in step.

use lectern_policy::groups::{GroupKind, Member};
use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Engine, Row, Sql};
use crate::{hash_secret, now_ms, printable_secret, Result, SchoolId, SqliteStore, StoreError};

/// An enrollment token as the tokens page lists it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    /// Id.
    pub id: i64,
    /// The administrator's label.
    pub label: String,
    /// Enrollments left (0 once revoked).
    pub uses_left: i64,
    /// Expiry, ms since epoch.
    pub expires_at: i64,
    /// Who made it.
    pub created_by: String,
    /// When, ms since epoch.
    pub created_at: i64,
    /// The computer group devices enrolled with it join.
    pub room: Option<i64>,
    /// When it was revoked, ms since epoch.
    pub revoked_at: Option<i64>,
}

/// A new token's fields.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Label.
    pub label: &'a str,
    /// Enrollments allowed.
    pub uses: i64,
    /// Expiry, ms since epoch.
    pub expires_at: i64,
    /// Creator.
    pub created_by: &'a str,
    /// Room to enroll into.
    pub room: Option<i64>,
}

/// What deleting a device removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The device's name.
    pub hostname: String,
    /// Rooms whose exact member for it was removed.
    pub rooms: Vec<i64>,
}

/// What joining a room by name did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The name is now an exact member.
    Added,
    /// A member already names it.
    AlreadyMember,
    /// Another device of the school has the same name: a member naming it
    /// would put that device in the room too, so nothing is added.
    NameShared,
    /// The name has `*` (it would be a pattern), the device is gone, or the
    /// room is not a computer group of the school.
    Refused,
}

/// The public availability switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AvailabilitySetting {
    /// Whether the anonymous corridor-screen view answers.
    pub public: bool,
    /// Who last changed it.
    pub changed_by: Option<String>,
    /// When, ms since epoch.
    pub changed_at: Option<i64>,
}

/// Device-administration storage.
pub trait DevAdminStore: Send + Sync {
    /// Creates a token (optionally for a room); returns its value, shown once.
    fn create_token(&self, school: SchoolId, t: &NewToken<'_>) -> Result<(String, TokenRow)>;
    /// The school's tokens, newest first.
    fn tokens(&self, school: SchoolId) -> Result<Vec<TokenRow>>;
    /// One token.
    fn token(&self, school: SchoolId, id: i64) -> Result<Option<TokenRow>>;
    /// Revokes a token (no more enrollments); false if none or already revoked.
    fn revoke_token(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// The room of the token with this value, if it has one.
    fn token_room(&self, token: &str) -> Result<Option<i64>>;
    /// Adds device `id`'s enrolled name as an exact member of computer group
    /// `room` (see [`Joined`] for when it is not).
    fn join_room(&self, school: SchoolId, room: i64, id: i64) -> Result<Joined>;
    /// Renames a device: `Exists` if another device of the school has the
    /// name (case-insensitive). Exact room members naming the old name follow
    /// it when no other device keeps that name. Returns the old name.
    fn rename_device(&self, school: SchoolId, id: i64, name: &str) -> Result<Option<String>>;
    /// After device `id` was renamed from `old` to `new` elsewhere (an
    /// accepted reported name): exact room members naming `old` follow, when
    /// no other device keeps that name. Returns the rooms changed.
    fn follow_rename(&self, school: SchoolId, id: i64, old: &str, new: &str) -> Result<Vec<i64>>;
    /// Whether a device other than `id` is called `name` (case-insensitive).
    fn name_taken(&self, school: SchoolId, id: i64, name: &str) -> Result<bool>;
    /// Deletes a revoked or live device's row, its screenshots and inventory,
    /// and exact room members naming it (when no other device has the name).
    fn delete_device(&self, school: SchoolId, id: i64) -> Result<Option<Deleted>>;
    /// The public availability switch.
    fn availability(&self, school: SchoolId) -> Result<AvailabilitySetting>;
    /// Sets the public availability switch.
    fn set_availability(&self, school: SchoolId, public: bool, by: &str) -> Result<()>;
}

const TOKEN_COLS: &str =
    "id, label, uses_left, expires_at, created_by, created_at, group_id, revoked_at";

fn token_from(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        label: r.get(1)?,
        uses_left: r.get(2)?,
        expires_at: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        room: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

fn token_by_id(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<TokenRow>> {
    db.query_opt(
        &format!("SELECT {TOKEN_COLS} FROM enrollment_tokens WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| token_from(&r))
    .transpose()
}

fn tokens(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<TokenRow>> {
    db.query(
        &format!(
            "SELECT {TOKEN_COLS} FROM enrollment_tokens WHERE school_id = ?1 ORDER BY id DESC"
        ),
        &[&school],
    )?
    .iter()
    .map(token_from)
    .collect()
}

fn create_token(
    db: &mut dyn Sql,
    school: SchoolId,
    t: &NewToken<'_>,
) -> Result<(String, TokenRow)> {
    let token = printable_secret(crate::ENROLLMENT_TOKEN_PREFIX);
    let row = db.insert_returning(
        &format!(
            "INSERT INTO enrollment_tokens
               (school_id, token_hash, label, uses_left, expires_at, created_by, created_at, group_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING {TOKEN_COLS}"
        ),
        &[
            &school,
            &hash_secret(&token),
            &t.label,
            &t.uses,
            &t.expires_at,
            &t.created_by,
            &now_ms(),
            &t.room,
        ],
    )?;
    Ok((token, token_from(&row)?))
}

fn revoke_token(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    // No uses left is what enrollment checks, so a revoked token is
    // refused by the one atomic check there.
    let n = db.execute(
        "UPDATE enrollment_tokens SET uses_left = 0, revoked_at = ?3
         WHERE school_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        &[&school, &id, &now_ms()],
    )?;
    Ok(n == 1)
}

fn token_room(db: &mut dyn Sql, token: &str) -> Result<Option<i64>> {
    Ok(db
        .query_opt(
            "SELECT group_id FROM enrollment_tokens WHERE token_hash = ?1",
            &[&hash_secret(token)],
        )?
        .map(|r| r.get::<Option<i64>>(0))
        .transpose()?
        .flatten())
}

/// A group's members, if its `kind` is a computer group's (a list that
/// does not parse is no room's).
fn computer_members(kind: &str, members: &str) -> Option<Vec<Member>> {
    let computer = serde_json::to_value(GroupKind::Computer)
        .ok()
        .and_then(|v| v.as_str().map(|s| s == kind))
        .unwrap_or(false);
    if !computer {
        return None;
    }
    serde_json::from_str(members).ok()
}

/// The computer group's members, if `room` is a computer group of the school.
fn room_members(db: &mut dyn Sql, school: SchoolId, room: i64) -> Result<Option<Vec<Member>>> {
    let Some(r) = db.query_opt(
        "SELECT kind, members FROM groups WHERE school_id = ?1 AND id = ?2",
        &[&school, &room],
    )?
    else {
        return Ok(None);
    };
    let (kind, members): (String, String) = (r.get(0)?, r.get(1)?);
    Ok(computer_members(&kind, &members))
}

fn set_members(db: &mut dyn Sql, room: i64, members: &[Member]) -> Result<()> {
    let json = serde_json::to_string(members).unwrap_or_else(|_| "[]".into());
    db.execute(
        "UPDATE groups SET members = ?2 WHERE id = ?1",
        &[&room, &json],
    )?;
    Ok(())
}

fn names(m: &Member, hostname: &str) -> bool {
    matches!(m, Member::Hostname(h) if h.eq_ignore_ascii_case(hostname))
}

fn join_room(db: &mut dyn Sql, school: SchoolId, room: i64, id: i64) -> Result<Joined> {
    // One transaction: the check and the new member list cannot interleave
    // with another change of the room (PostgreSQL runs the loser again).
    in_tx(db, |db| {
        let Some(hostname) = hostname_of(db, school, id)? else {
            return Ok(Joined::Refused);
        };
        if hostname.contains('*') {
            return Ok(Joined::Refused);
        }
        if others_named(db, school, id, &hostname)? > 0 {
            return Ok(Joined::NameShared);
        }
        let Some(mut members) = room_members(db, school, room)? else {
            return Ok(Joined::Refused);
        };
        if members.iter().any(|m| names(m, &hostname)) {
            return Ok(Joined::AlreadyMember);
        }
        members.push(Member::Hostname(hostname));
        set_members(db, room, &members)?;
        Ok(Joined::Added)
    })
}

/// Replaces exact members naming `old` with `new` (or removes them when
/// `new` is `None`) in every computer group; returns the groups changed.
fn follow_name(
    db: &mut dyn Sql,
    school: SchoolId,
    old: &str,
    new: Option<&str>,
) -> Result<Vec<i64>> {
    let groups = db.query(
        "SELECT id, kind, members FROM groups WHERE school_id = ?1 ORDER BY id",
        &[&school],
    )?;
    let mut changed = Vec::new();
    for r in &groups {
        let (room, kind, members): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let Some(members) = computer_members(&kind, &members) else {
            continue;
        };
        if !members.iter().any(|m| names(m, old)) {
            continue;
        }
        let mut out: Vec<Member> = members.into_iter().filter(|m| !names(m, old)).collect();
        if let Some(new) = new {
            if !out.iter().any(|m| names(m, new)) {
                out.push(Member::Hostname(new.to_string()));
            }
        }
        set_members(db, room, &out)?;
        changed.push(room);
    }
    Ok(changed)
}

/// How many devices of the school other than `id` are called `name`, in
/// any case of ASCII letters (SQLite's NOCASE; on PostgreSQL `lower` under
/// the "C" collation, which folds the same letters and no others).
fn others_named(db: &mut dyn Sql, school: SchoolId, id: i64, name: &str) -> Result<i64> {
    let sql = match db.engine() {
        Engine::Sqlite => {
            "SELECT COUNT(*) FROM devices
             WHERE school_id = ?1 AND id != ?2 AND hostname = ?3 COLLATE NOCASE"
        }
        Engine::Postgres => {
            "SELECT COUNT(*) FROM devices
             WHERE school_id = ?1 AND id != ?2
               AND lower(hostname) = lower(CAST(?3 AS TEXT) COLLATE \"C\")"
        }
    };
    db.query_opt(sql, &[&school, &id, &name])?
        .ok_or_else(|| StoreError::Corrupt("no count".into()))?
        .get(0)
}

fn hostname_of(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<String>> {
    db.query_opt(
        "SELECT hostname FROM devices WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )?
    .map(|r| r.get(0))
    .transpose()
}

fn rename_device(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    name: &str,
) -> Result<Option<String>> {
    in_tx(db, |db| {
        let Some(old) = hostname_of(db, school, id)? else {
            return Ok(None);
        };
        if others_named(db, school, id, name)? > 0 {
            return Err(StoreError::Exists(format!("a device named {name:?}")));
        }
        db.execute(
            "UPDATE devices SET hostname = ?2,
                reported_name = CASE WHEN reported_name = ?2 THEN NULL ELSE reported_name END
             WHERE id = ?1",
            &[&id, &name],
        )?;
        if others_named(db, school, id, &old)? == 0 {
            follow_name(db, school, &old, Some(name))?;
        }
        Ok(Some(old))
    })
}

fn follow_rename(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    old: &str,
    new: &str,
) -> Result<Vec<i64>> {
    in_tx(db, |db| {
        if others_named(db, school, id, old)? > 0 {
            return Ok(Vec::new());
        }
        follow_name(db, school, old, Some(new))
    })
}

fn delete_device(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Deleted>> {
    in_tx(db, |db| {
        let Some(hostname) = hostname_of(db, school, id)? else {
            return Ok(None);
        };
        let rooms = if others_named(db, school, id, &hostname)? == 0 {
            follow_name(db, school, &hostname, None)?
        } else {
            Vec::new()
        };
        // Screens and the inventory describe this machine only; activity,
        // violations, commands and the audit log are records of what people
        // did and stay under the school's retention periods, naming the
        // device id.
        for sql in [
            "DELETE FROM screenshots WHERE school_id = ?1 AND device_id = ?2",
            "DELETE FROM inventory WHERE school_id = ?1 AND device_id = ?2",
            "DELETE FROM devices WHERE school_id = ?1 AND id = ?2",
        ] {
            db.execute(sql, &[&school, &id])?;
        }
        Ok(Some(Deleted { hostname, rooms }))
    })
}

fn availability(db: &mut dyn Sql, school: SchoolId) -> Result<AvailabilitySetting> {
    let row = db.query_opt(
        "SELECT public, changed_by, changed_at FROM availability_settings WHERE school_id = ?1",
        &[&school],
    )?;
    Ok(match row {
        Some(r) => AvailabilitySetting {
            public: r.get(0)?,
            changed_by: Some(r.get(1)?),
            changed_at: Some(r.get(2)?),
        },
        None => AvailabilitySetting {
            public: false,
            changed_by: None,
            changed_at: None,
        },
    })
}

fn set_availability(db: &mut dyn Sql, school: SchoolId, public: bool, by: &str) -> Result<()> {
    db.execute(
        "INSERT INTO availability_settings (school_id, public, changed_by, changed_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (school_id) DO UPDATE SET public = ?2, changed_by = ?3, changed_at = ?4",
        &[&school, &public, &by, &now_ms()],
    )?;
    Ok(())
}

/// The same calls on either engine.
macro_rules! devadmin_store {
    ($t:ty) => {
        impl DevAdminStore for $t {
            fn create_token(
                &self,
                school: SchoolId,
                t: &NewToken<'_>,
            ) -> Result<(String, TokenRow)> {
                self.shared(|db| create_token(db, school, t))
            }

            fn tokens(&self, school: SchoolId) -> Result<Vec<TokenRow>> {
                self.shared(|db| tokens(db, school))
            }

            fn token(&self, school: SchoolId, id: i64) -> Result<Option<TokenRow>> {
                self.shared(|db| token_by_id(db, school, id))
            }

            fn revoke_token(&self, school: SchoolId, id: i64) -> Result<bool> {
                self.shared(|db| revoke_token(db, school, id))
            }

            fn token_room(&self, token: &str) -> Result<Option<i64>> {
                self.shared(|db| token_room(db, token))
            }

            fn join_room(&self, school: SchoolId, room: i64, id: i64) -> Result<Joined> {
                self.shared(|db| join_room(db, school, room, id))
            }

            fn rename_device(
                &self,
                school: SchoolId,
                id: i64,
                name: &str,
            ) -> Result<Option<String>> {
                self.shared(|db| rename_device(db, school, id, name))
            }

            fn delete_device(&self, school: SchoolId, id: i64) -> Result<Option<Deleted>> {
                self.shared(|db| delete_device(db, school, id))
            }

            fn follow_rename(
                &self,
                school: SchoolId,
                id: i64,
                old: &str,
                new: &str,
            ) -> Result<Vec<i64>> {
                self.shared(|db| follow_rename(db, school, id, old, new))
            }

            fn name_taken(&self, school: SchoolId, id: i64, name: &str) -> Result<bool> {
                self.shared(|db| Ok(others_named(db, school, id, name)? > 0))
            }

            fn availability(&self, school: SchoolId) -> Result<AvailabilitySetting> {
                self.shared(|db| availability(db, school))
            }

            fn set_availability(&self, school: SchoolId, public: bool, by: &str) -> Result<()> {
                self.shared(|db| set_availability(db, school, public, by))
            }
        }
    };
}

devadmin_store!(SqliteStore);
devadmin_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewDevice, Store};

    fn store() -> (tempfile::TempDir, SqliteStore, SchoolId) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db")).unwrap();
        let school = s.create_school("Hillside").unwrap();
        (dir, s, school)
    }

    fn room(s: &SqliteStore, school: SchoolId, name: &str) -> i64 {
        let g = lectern_policy::groups::Group {
            id: 0,
            name: name.into(),
            kind: GroupKind::Computer,
            priority: lectern_policy::groups::Priority::Low,
            members: vec![Member::Hostname("LAB-*".into())],
            settings: Default::default(),
        };
        s.create_group(school, &g).unwrap().group.id
    }

    fn enroll(s: &SqliteStore, token: &str, host: &str) -> i64 {
        let info = NewDevice {
            hostname: host.into(),
            ..Default::default()
        };
        s.enroll_device(token, &info).unwrap().unwrap().0.id
    }

    #[test]
    fn a_room_token_joins_once_and_revocation_refuses() {
        let (_d, s, school) = store();
        let r = room(&s, school, "Room 5");
        let t = NewToken {
            label: "room 5",
            uses: 5,
            expires_at: now_ms() + 60_000,
            created_by: "admin",
            room: Some(r),
        };
        let (token, row) = s.create_token(school, &t).unwrap();
        assert_eq!(s.token_room(&token).unwrap(), Some(r));
        let pc9 = enroll(&s, &token, "pc-9");
        let star = enroll(&s, &token, "PC-*");
        assert_eq!(s.join_room(school, r, pc9).unwrap(), Joined::Added);
        assert_eq!(s.join_room(school, r, pc9).unwrap(), Joined::AlreadyMember);
        assert_eq!(s.join_room(school, r, star).unwrap(), Joined::Refused);
        // A second "PC-9" must not pull the first into another room.
        let other = room(&s, school, "Room 6");
        let twin = enroll(&s, &token, "PC-9");
        assert_eq!(
            s.join_room(school, other, twin).unwrap(),
            Joined::NameShared
        );
        assert_eq!(s.join_room(school, r, 999).unwrap(), Joined::Refused);
        let members = s.get_group(school, r).unwrap().unwrap().group.members;
        assert_eq!(members.len(), 2);
        let members = s.get_group(school, other).unwrap().unwrap().group.members;
        assert_eq!(members.len(), 1);
        assert!(s.revoke_token(school, row.id).unwrap());
        assert!(!s.revoke_token(school, row.id).unwrap());
        let info = NewDevice::default();
        assert!(s.enroll_device(&token, &info).unwrap().is_none());
        assert_eq!(s.tokens(school).unwrap()[0].uses_left, 0);
    }

    #[test]
    fn rename_is_unique_and_room_members_follow() {
        let (_d, s, school) = store();
        let r = room(&s, school, "Room 5");
        let (token, _) = s
            .create_enrollment_token(school, "", 3, now_ms() + 60_000, "admin")
            .unwrap();
        let a = enroll(&s, &token, "PC-1");
        let b = enroll(&s, &token, "PC-2");
        assert_eq!(s.join_room(school, r, a).unwrap(), Joined::Added);
        assert!(matches!(
            s.rename_device(school, a, "pc-2"),
            Err(StoreError::Exists(_))
        ));
        assert_eq!(s.rename_device(school, a, "PC-7").unwrap().unwrap(), "PC-1");
        let members = s.get_group(school, r).unwrap().unwrap().group.members;
        assert!(
            members.contains(&Member::Hostname("PC-7".into())),
            "{members:?}"
        );
        assert!(!members.contains(&Member::Hostname("PC-1".into())));
        let gone = s.delete_device(school, a).unwrap().unwrap();
        assert_eq!(gone.rooms, vec![r]);
        assert!(s.delete_device(school, a).unwrap().is_none());
        let left: Vec<i64> = s
            .list_devices(school)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(left, vec![b]);
    }

    #[test]
    fn public_availability_is_off_until_set() {
        let (_d, s, school) = store();
        assert!(!s.availability(school).unwrap().public);
        s.set_availability(school, true, "admin").unwrap();
        assert!(s.availability(school).unwrap().public);
        s.set_availability(school, false, "admin").unwrap();
        assert!(!s.availability(school).unwrap().public);
    }
}
