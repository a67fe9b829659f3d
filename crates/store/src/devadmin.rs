//! Device administration (migration 0014), per school: enrollment tokens
//! that enroll into a room (a computer group), device rename and deletion,
//! and the switch for the anonymous computer-availability screen.
//!
//! A room's membership is its group's member list: a device enrolled with a
//! room's token is added to it as an exact host-name member, so the classroom
//! tree, policy resolution and console scoping all see it with no second
//! notion of membership. Rename and deletion keep those exact members in step.

use lectern_policy::groups::{GroupKind, Member};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

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

fn token_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
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

fn token_by_id(c: &Connection, school: SchoolId, id: i64) -> Result<Option<TokenRow>> {
    Ok(c.query_row(
        &format!("SELECT {TOKEN_COLS} FROM enrollment_tokens WHERE school_id = ?1 AND id = ?2"),
        params![school, id],
        token_from,
    )
    .optional()?)
}

fn create_token(c: &Connection, school: SchoolId, t: &NewToken<'_>) -> Result<(String, TokenRow)> {
    let token = printable_secret(crate::ENROLLMENT_TOKEN_PREFIX);
    c.execute(
        "INSERT INTO enrollment_tokens (school_id, token_hash, label, uses_left, expires_at, created_by, created_at, group_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![school, hash_secret(&token), t.label, t.uses, t.expires_at, t.created_by, now_ms(), t.room],
    )?;
    let row = token_by_id(c, school, c.last_insert_rowid())?
        .ok_or_else(|| StoreError::Db(rusqlite::Error::QueryReturnedNoRows))?;
    Ok((token, row))
}

/// The computer group's members, if `room` is a computer group of the school.
fn room_members(c: &Connection, school: SchoolId, room: i64) -> Result<Option<Vec<Member>>> {
    let row: Option<(String, String)> = c
        .query_row(
            "SELECT kind, members FROM groups WHERE school_id = ?1 AND id = ?2",
            params![school, room],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((kind, members)) = row else {
        return Ok(None);
    };
    let computer = serde_json::to_value(GroupKind::Computer)
        .ok()
        .and_then(|v| v.as_str().map(|s| s == kind))
        .unwrap_or(false);
    if !computer {
        return Ok(None);
    }
    Ok(serde_json::from_str(&members).ok())
}

fn set_members(c: &Connection, room: i64, members: &[Member]) -> Result<()> {
    let json = serde_json::to_string(members).unwrap_or_else(|_| "[]".into());
    c.execute(
        "UPDATE groups SET members = ?2 WHERE id = ?1",
        params![room, json],
    )?;
    Ok(())
}

fn names(m: &Member, hostname: &str) -> bool {
    matches!(m, Member::Hostname(h) if h.eq_ignore_ascii_case(hostname))
}

fn join_room(c: &mut Connection, school: SchoolId, room: i64, id: i64) -> Result<Joined> {
    let tx = c.transaction()?;
    let Some(hostname) = hostname_of(&tx, school, id)? else {
        return Ok(Joined::Refused);
    };
    if hostname.contains('*') {
        return Ok(Joined::Refused);
    }
    if others_named(&tx, school, id, &hostname)? > 0 {
        return Ok(Joined::NameShared);
    }
    let Some(mut members) = room_members(&tx, school, room)? else {
        return Ok(Joined::Refused);
    };
    if members.iter().any(|m| names(m, &hostname)) {
        return Ok(Joined::AlreadyMember);
    }
    members.push(Member::Hostname(hostname));
    set_members(&tx, room, &members)?;
    tx.commit()?;
    Ok(Joined::Added)
}

fn computer_groups(c: &Connection, school: SchoolId) -> Result<Vec<i64>> {
    let mut stmt = c.prepare("SELECT id FROM groups WHERE school_id = ?1 ORDER BY id")?;
    let ids = stmt
        .query_map(params![school], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Replaces exact members naming `old` with `new` (or removes them when
/// `new` is `None`) in every computer group; returns the groups changed.
fn follow_name(c: &Connection, school: SchoolId, old: &str, new: Option<&str>) -> Result<Vec<i64>> {
    let mut changed = Vec::new();
    for room in computer_groups(c, school)? {
        let Some(members) = room_members(c, school, room)? else {
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
        set_members(c, room, &out)?;
        changed.push(room);
    }
    Ok(changed)
}

fn others_named(c: &Connection, school: SchoolId, id: i64, name: &str) -> Result<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM devices WHERE school_id = ?1 AND id != ?2 AND hostname = ?3 COLLATE NOCASE",
        params![school, id, name],
        |r| r.get(0),
    )?)
}

fn hostname_of(c: &Connection, school: SchoolId, id: i64) -> Result<Option<String>> {
    Ok(c.query_row(
        "SELECT hostname FROM devices WHERE school_id = ?1 AND id = ?2",
        params![school, id],
        |r| r.get(0),
    )
    .optional()?)
}

fn rename_device(
    c: &mut Connection,
    school: SchoolId,
    id: i64,
    name: &str,
) -> Result<Option<String>> {
    let tx = c.transaction()?;
    let Some(old) = hostname_of(&tx, school, id)? else {
        return Ok(None);
    };
    if others_named(&tx, school, id, name)? > 0 {
        return Err(StoreError::Exists(format!("a device named {name:?}")));
    }
    tx.execute(
        "UPDATE devices SET hostname = ?2,
            reported_name = CASE WHEN reported_name = ?2 THEN NULL ELSE reported_name END
         WHERE id = ?1",
        params![id, name],
    )?;
    if others_named(&tx, school, id, &old)? == 0 {
        follow_name(&tx, school, &old, Some(name))?;
    }
    tx.commit()?;
    Ok(Some(old))
}

fn delete_device(c: &mut Connection, school: SchoolId, id: i64) -> Result<Option<Deleted>> {
    let tx = c.transaction()?;
    let Some(hostname) = hostname_of(&tx, school, id)? else {
        return Ok(None);
    };
    let rooms = if others_named(&tx, school, id, &hostname)? == 0 {
        follow_name(&tx, school, &hostname, None)?
    } else {
        Vec::new()
    };
    // Screens and the inventory describe this machine only; activity,
    // violations, commands and the audit log are records of what people did
    // and stay under the school's retention periods, naming the device id.
    tx.execute(
        "DELETE FROM screenshots WHERE school_id = ?1 AND device_id = ?2",
        params![school, id],
    )?;
    tx.execute(
        "DELETE FROM inventory WHERE school_id = ?1 AND device_id = ?2",
        params![school, id],
    )?;
    tx.execute(
        "DELETE FROM devices WHERE school_id = ?1 AND id = ?2",
        params![school, id],
    )?;
    tx.commit()?;
    Ok(Some(Deleted { hostname, rooms }))
}

impl DevAdminStore for SqliteStore {
    fn create_token(&self, school: SchoolId, t: &NewToken<'_>) -> Result<(String, TokenRow)> {
        self.with(|c| create_token(c, school, t))
    }

    fn tokens(&self, school: SchoolId) -> Result<Vec<TokenRow>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {TOKEN_COLS} FROM enrollment_tokens WHERE school_id = ?1 ORDER BY id DESC"
            ))?;
            let rows = stmt
                .query_map(params![school], token_from)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }

    fn token(&self, school: SchoolId, id: i64) -> Result<Option<TokenRow>> {
        self.with(|c| token_by_id(c, school, id))
    }

    fn revoke_token(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| {
            // No uses left is what enrollment checks, so a revoked token is
            // refused by the one atomic check there.
            let n = c.execute(
                "UPDATE enrollment_tokens SET uses_left = 0, revoked_at = ?3
                 WHERE school_id = ?1 AND id = ?2 AND revoked_at IS NULL",
                params![school, id, now_ms()],
            )?;
            Ok(n == 1)
        })
    }

    fn token_room(&self, token: &str) -> Result<Option<i64>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT group_id FROM enrollment_tokens WHERE token_hash = ?1",
                params![hash_secret(token)],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    fn join_room(&self, school: SchoolId, room: i64, id: i64) -> Result<Joined> {
        self.with(|c| join_room(c, school, room, id))
    }

    fn rename_device(&self, school: SchoolId, id: i64, name: &str) -> Result<Option<String>> {
        self.with(|c| rename_device(c, school, id, name))
    }

    fn delete_device(&self, school: SchoolId, id: i64) -> Result<Option<Deleted>> {
        self.with(|c| delete_device(c, school, id))
    }

    fn follow_rename(&self, school: SchoolId, id: i64, old: &str, new: &str) -> Result<Vec<i64>> {
        self.with(|c| {
            let tx = c.transaction()?;
            if others_named(&tx, school, id, old)? > 0 {
                return Ok(Vec::new());
            }
            let changed = follow_name(&tx, school, old, Some(new))?;
            tx.commit()?;
            Ok(changed)
        })
    }

    fn name_taken(&self, school: SchoolId, id: i64, name: &str) -> Result<bool> {
        self.with(|c| Ok(others_named(c, school, id, name)? > 0))
    }

    fn availability(&self, school: SchoolId) -> Result<AvailabilitySetting> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT public, changed_by, changed_at FROM availability_settings WHERE school_id = ?1",
                    params![school],
                    |r| Ok((r.get::<_, bool>(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(match row {
                Some((public, by, at)) => AvailabilitySetting {
                    public,
                    changed_by: Some(by),
                    changed_at: Some(at),
                },
                None => AvailabilitySetting {
                    public: false,
                    changed_by: None,
                    changed_at: None,
                },
            })
        })
    }

    fn set_availability(&self, school: SchoolId, public: bool, by: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO availability_settings (school_id, public, changed_by, changed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (school_id) DO UPDATE SET public = ?2, changed_by = ?3, changed_at = ?4",
                params![school, public, by, now_ms()],
            )?;
            Ok(())
        })
    }
}

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
