//! Groups, directory memberships, access rules, lessons and counters.

use lectern_policy::access::AccessRule;
use lectern_policy::groups::{Group, GroupKind, Priority};
use lectern_policy::settings::{SettingKey, SettingsMap};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::json;

use crate::sql::{in_tx, Row, Sql};
use crate::{now_ms, Result, SchoolId, StoreError};

/// A stored group and whether it is built in.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRecord {
    /// The group.
    #[serde(flatten)]
    pub group: Group,
    /// Built-in groups cannot be deleted.
    pub builtin: bool,
}

/// A lesson: restrictions on a class until it ends.
#[derive(Debug, Clone, Serialize)]
pub struct Lesson {
    /// Id.
    pub id: i64,
    /// The class.
    pub group_id: i64,
    /// Who started it.
    pub teacher: String,
    /// Settings applied to the class while it runs.
    pub restrictions: SettingsMap,
    /// Start, ms.
    pub starts_at: i64,
    /// Planned end, ms.
    pub ends_at: i64,
    /// Early end, ms.
    pub ended_at: Option<i64>,
}

impl Lesson {
    /// Whether it is running at `now`.
    pub fn active_at(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.starts_at <= now && now < self.ends_at
    }
}

/// The built-in groups every school has: (key, name, kind, priority, settings).
pub fn builtin_groups() -> Vec<(&'static str, &'static str, GroupKind, Priority, SettingsMap)> {
    let one = |k: SettingKey| SettingsMap::from([(k, json!(true))]);
    vec![
        (
            "entire_network",
            "Entire Network",
            GroupKind::EntireNetwork,
            Priority::Low,
            SettingsMap::new(),
        ),
        (
            "internet_banned",
            "Internet Banned",
            GroupKind::Restriction,
            Priority::High,
            one(SettingKey::InternetBlocked),
        ),
        (
            "printing_disabled",
            "Printing Disabled",
            GroupKind::Restriction,
            Priority::High,
            one(SettingKey::PrintingDisabled),
        ),
        (
            "removable_media_disabled",
            "Removable Media Disabled",
            GroupKind::Restriction,
            Priority::High,
            one(SettingKey::RemovableMediaDisabled),
        ),
        (
            "screens_locked",
            "Screens Locked",
            GroupKind::Restriction,
            Priority::High,
            one(SettingKey::ScreenLocked),
        ),
        (
            "sound_muted",
            "Sound Muted",
            GroupKind::Restriction,
            Priority::High,
            one(SettingKey::SoundMuted),
        ),
    ]
}

fn enum_str<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn enum_parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(json!(s)).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn json_col<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const GROUP_COLS: &str = "id, name, kind, priority, builtin, members, settings";

fn group_of(r: &Row) -> Result<GroupRecord> {
    Ok(GroupRecord {
        group: Group {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: enum_parse(&r.get::<String>(2)?)?,
            priority: enum_parse(&r.get::<String>(3)?)?,
            members: json_col(&r.get::<String>(5)?)?,
            settings: json_col(&r.get::<String>(6)?)?,
        },
        builtin: r.get::<Option<String>>(4)?.is_some(),
    })
}

fn lesson_of(r: &Row) -> Result<Lesson> {
    Ok(Lesson {
        id: r.get(0)?,
        group_id: r.get(1)?,
        teacher: r.get(2)?,
        restrictions: json_col(&r.get::<String>(3)?)?,
        starts_at: r.get(4)?,
        ends_at: r.get(5)?,
        ended_at: r.get(6)?,
    })
}

/// A broken constraint as a name taken.
fn unique(e: StoreError, what: String) -> StoreError {
    if e.taken() {
        StoreError::Exists(what)
    } else {
        e
    }
}

/// Creates any missing built-in group for `school`.
pub(crate) fn ensure_builtin(conn: &Connection, school: SchoolId) -> Result<()> {
    add_builtin(&mut crate::sql::Lite(conn), school)
}

/// [`ensure_builtin`] on either engine: the built-in groups a school lacks.
pub(crate) fn add_builtin(db: &mut dyn Sql, school: SchoolId) -> Result<()> {
    for (key, name, kind, priority, settings) in builtin_groups() {
        // Cast, so that PostgreSQL knows the parameters' types in a SELECT.
        db.execute(
            "INSERT INTO groups (school_id, name, kind, priority, builtin, settings, created_at)
             SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS TEXT),
                    CAST(?5 AS TEXT), CAST(?6 AS TEXT), CAST(?7 AS BIGINT)
             WHERE NOT EXISTS (SELECT 1 FROM groups WHERE school_id = ?1 AND builtin = ?5)",
            &[
                &school,
                &name,
                &enum_str(&kind),
                &enum_str(&priority),
                &key,
                &serde_json::to_string(&settings).unwrap_or_default(),
                &now_ms(),
            ],
        )?;
    }
    Ok(())
}

pub(crate) fn list_groups(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<GroupRecord>> {
    db.query(
        &format!("SELECT {GROUP_COLS} FROM groups WHERE school_id = ?1 ORDER BY id"),
        &[&school],
    )?
    .iter()
    .map(group_of)
    .collect()
}

pub(crate) fn get_group(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
) -> Result<Option<GroupRecord>> {
    db.query_opt(
        &format!("SELECT {GROUP_COLS} FROM groups WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| group_of(&r))
    .transpose()
}

pub(crate) fn create_group(db: &mut dyn Sql, school: SchoolId, g: &Group) -> Result<GroupRecord> {
    in_tx(db, |db| {
        let id = db
            .insert_id(
                "INSERT INTO groups (school_id, name, kind, priority, members, settings, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                &[
                    &school,
                    &g.name,
                    &enum_str(&g.kind),
                    &enum_str(&g.priority),
                    &serde_json::to_string(&g.members).unwrap_or_default(),
                    &serde_json::to_string(&g.settings).unwrap_or_default(),
                    &now_ms(),
                ],
            )
            .map_err(|e| unique(e, format!("group {:?}", g.name)))?;
        // SQLite may hand out a deleted group's id again: a new group starts
        // with no access granted by any rule (rules written before deletions
        // were cleaned up may still name the id).
        forget_group_in_rules(db, school, id)?;
        get_group(db, school, id)?.ok_or_else(|| StoreError::Corrupt("group vanished".into()))
    })
}

pub(crate) fn update_group(
    db: &mut dyn Sql,
    school: SchoolId,
    g: &Group,
) -> Result<Option<GroupRecord>> {
    let n = db
        .execute(
            "UPDATE groups SET name = ?3, priority = ?4, members = ?5, settings = ?6
             WHERE school_id = ?1 AND id = ?2",
            &[
                &school,
                &g.id,
                &g.name,
                &enum_str(&g.priority),
                &serde_json::to_string(&g.members).unwrap_or_default(),
                &serde_json::to_string(&g.settings).unwrap_or_default(),
            ],
        )
        .map_err(|e| unique(e, format!("group {:?}", g.name)))?;
    if n == 0 {
        return Ok(None);
    }
    get_group(db, school, g.id)
}

pub(crate) fn delete_group(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    in_tx(db, |db| {
        let deleted = db.execute(
            "DELETE FROM groups WHERE school_id = ?1 AND id = ?2 AND builtin IS NULL",
            &[&school, &id],
        )? == 1;
        if deleted {
            // Access to a deleted group must not pass to a later group given its id.
            forget_group_in_rules(db, school, id)?;
        }
        Ok(deleted)
    })
}

/// Removes group `id` from every access rule's group access. Opens no
/// transaction (nor may it, nor `save_access_rule`, `delete_access_rule` and
/// `get_group`): roster sync calls these inside its own.
pub(crate) fn forget_group_in_rules(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<()> {
    for mut rule in access_rules(db, school)? {
        if rule.group_access.remove(&id).is_some() {
            save_access_rule(db, school, &rule)?;
        }
    }
    Ok(())
}

pub(crate) fn directory(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<(String, Vec<String>)>> {
    let rows = db.query(
        "SELECT username, group_name FROM directory_memberships WHERE school_id = ?1
         ORDER BY username, group_name",
        &[&school],
    )?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for row in rows {
        let (u, g): (String, String) = (row.get(0)?, row.get(1)?);
        match out.last_mut() {
            Some((last, groups)) if last.eq_ignore_ascii_case(&u) => groups.push(g),
            _ => out.push((u, vec![g])),
        }
    }
    Ok(out)
}

pub(crate) fn set_directory_groups(
    db: &mut dyn Sql,
    school: SchoolId,
    username: &str,
    groups: &[String],
) -> Result<()> {
    in_tx(db, |db| {
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
    })
}

pub(crate) fn access_rules(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<AccessRule>> {
    db.query(
        "SELECT id, rule FROM access_rules WHERE school_id = ?1 ORDER BY id",
        &[&school],
    )?
    .iter()
    .map(|r| {
        let mut rule: AccessRule = json_col(&r.get::<String>(1)?)?;
        rule.id = r.get(0)?;
        Ok(rule)
    })
    .collect()
}

pub(crate) fn save_access_rule(
    db: &mut dyn Sql,
    school: SchoolId,
    rule: &AccessRule,
) -> Result<Option<AccessRule>> {
    let body = serde_json::to_string(rule).unwrap_or_default();
    let id = if rule.id == 0 {
        db.insert_id(
            "INSERT INTO access_rules (school_id, rule) VALUES (?1, ?2) RETURNING id",
            &[&school, &body],
        )?
    } else {
        let n = db.execute(
            "UPDATE access_rules SET rule = ?3 WHERE school_id = ?1 AND id = ?2",
            &[&school, &rule.id, &body],
        )?;
        if n == 0 {
            return Ok(None);
        }
        rule.id
    };
    Ok(Some(AccessRule { id, ..rule.clone() }))
}

pub(crate) fn delete_access_rule(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM access_rules WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )? == 1)
}

const LESSON_COLS: &str = "id, group_id, teacher, restrictions, starts_at, ends_at, ended_at";

pub(crate) fn create_lesson(db: &mut dyn Sql, school: SchoolId, l: &Lesson) -> Result<Lesson> {
    let id = db.insert_id(
        "INSERT INTO lessons (school_id, group_id, teacher, restrictions, starts_at, ends_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        &[
            &school,
            &l.group_id,
            &l.teacher,
            &serde_json::to_string(&l.restrictions).unwrap_or_default(),
            &l.starts_at,
            &l.ends_at,
        ],
    )?;
    Ok(Lesson { id, ..l.clone() })
}

pub(crate) fn lessons_since(db: &mut dyn Sql, school: SchoolId, since: i64) -> Result<Vec<Lesson>> {
    db.query(
        &format!(
            "SELECT {LESSON_COLS} FROM lessons
             WHERE school_id = ?1 AND COALESCE(ended_at, ends_at) >= ?2 ORDER BY id DESC"
        ),
        &[&school, &since],
    )?
    .iter()
    .map(lesson_of)
    .collect()
}

pub(crate) fn end_lesson(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    at: i64,
) -> Result<Option<Lesson>> {
    db.execute(
        "UPDATE lessons SET ended_at = ?3
         WHERE school_id = ?1 AND id = ?2 AND ended_at IS NULL AND ends_at > ?3",
        &[&school, &id, &at],
    )?;
    db.query_opt(
        &format!("SELECT {LESSON_COLS} FROM lessons WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| lesson_of(&r))
    .transpose()
}

/// Counts on, once across nodes (the row's update is atomic on both
/// engines).
pub(crate) fn bump_counter(db: &mut dyn Sql, school: SchoolId, name: &str) -> Result<u64> {
    let v: i64 = db
        .insert_id(
            "INSERT INTO counters (school_id, name, value) VALUES (?1, ?2, 1)
             ON CONFLICT (school_id, name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            &[&school, &name],
        )?;
    Ok(v as u64)
}
