//! Rostered classes (migration 0017), per school: the OneRoster import's
//! record of each class (its user group, teachers and students), the access
//! rule it wrote for each teacher, and the imports' reports.
//!
//! A whole import is written in one transaction ([`RosterStore::apply_roster`]),
//! so a failure leaves the roster, groups and rules as they were.

use std::collections::BTreeMap;

use lectern_policy::access::{Access, AccessRule, Principal};
use lectern_policy::groups::Member;
use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Sql};
use crate::sqlite::SqliteStore;
use crate::{now_ms, Result, SchoolId, StoreError};

/// Most imports kept per school and source; older reports are dropped.
const KEPT_IMPORTS: i64 = 50;

/// A rostered class as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterClass {
    /// OneRoster `sourcedId`.
    pub sourced_id: String,
    /// Title (the group's name, or the name with the id where that was taken).
    pub title: String,
    /// The user group standing for the class.
    pub group_id: i64,
    /// Teachers' user names, sorted.
    pub teachers: Vec<String>,
    /// Students' user names, sorted.
    pub students: Vec<String>,
    /// Academic sessions (`termSourcedIds`).
    pub terms: Vec<String>,
    /// When it left the roster (ms); retired classes keep their group.
    pub retired_at: Option<i64>,
}

/// A class to create or update.
#[derive(Debug, Clone)]
pub struct ClassWrite {
    /// OneRoster `sourcedId`.
    pub sourced_id: String,
    /// Title.
    pub title: String,
    /// Teachers' user names.
    pub teachers: Vec<String>,
    /// Students' user names.
    pub students: Vec<String>,
    /// Terms.
    pub terms: Vec<String>,
}

/// One teacher's roster-managed rule: features, and control of their
/// classes (by sourcedId; the store maps them to group ids).
#[derive(Debug, Clone)]
pub struct TeacherGrant {
    /// The teacher's user name.
    pub username: String,
    /// Features the rule grants.
    pub features: Vec<String>,
    /// The classes (sourcedIds) the teacher controls.
    pub classes: Vec<String>,
}

/// Everything one import writes.
#[derive(Debug, Clone, Default)]
pub struct RosterWrite {
    /// Classes in the roster now.
    pub classes: Vec<ClassWrite>,
    /// Classes to retire (sourcedIds).
    pub retire: Vec<String>,
    /// Every teacher's rule as it should be; roster rules of teachers not
    /// listed are deleted.
    pub grants: Vec<TeacherGrant>,
}

/// A stored import report.
#[derive(Debug, Clone, Serialize)]
pub struct RosterImport {
    /// Id.
    pub id: i64,
    /// When (ms).
    pub at: i64,
    /// `upload` or `folder`.
    pub source: String,
    /// Who (a console user, or `folder`).
    pub actor: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// SHA-256 of the bundle's files.
    pub digest: String,
    /// The report (JSON).
    pub report: serde_json::Value,
}

/// The roster in the store.
pub trait RosterStore: Send + Sync {
    /// Every rostered class, retired ones too, by title.
    fn roster_classes(&self, school: SchoolId) -> Result<Vec<RosterClass>>;
    /// The roster-managed rules: user name → rule id.
    fn roster_rules(&self, school: SchoolId) -> Result<BTreeMap<String, i64>>;
    /// Writes an import in one transaction; returns the classes after it.
    fn apply_roster(&self, school: SchoolId, w: &RosterWrite) -> Result<Vec<RosterClass>>;
    /// Records an import's report.
    fn add_roster_import(&self, school: SchoolId, i: &RosterImport) -> Result<i64>;
    /// The newest import from `source` (dry runs too when `with_dry`).
    fn last_roster_import(
        &self,
        school: SchoolId,
        source: &str,
        with_dry: bool,
    ) -> Result<Option<RosterImport>>;
}

fn json_vec(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("a roster list: {e}")))
}

fn classes(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<RosterClass>> {
    db.query(
        "SELECT sourced_id, title, group_id, teachers, students, terms, retired_at
         FROM roster_classes WHERE school_id = ?1 ORDER BY title, sourced_id",
        &[&school],
    )?
    .iter()
    .map(|r| {
        Ok(RosterClass {
            sourced_id: r.get(0)?,
            title: r.get(1)?,
            group_id: r.get(2)?,
            teachers: json_vec(&r.get::<String>(3)?)?,
            students: json_vec(&r.get::<String>(4)?)?,
            terms: json_vec(&r.get::<String>(5)?)?,
            retired_at: r.get(6)?,
        })
    })
    .collect()
}

fn rules(db: &mut dyn Sql, school: SchoolId) -> Result<BTreeMap<String, i64>> {
    db.query(
        "SELECT username, rule_id FROM roster_rules WHERE school_id = ?1",
        &[&school],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

fn members(c: &ClassWrite) -> String {
    let m: Vec<Member> = c.students.iter().cloned().map(Member::User).collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "[]".into())
}

fn name_taken(db: &mut dyn Sql, school: SchoolId, name: &str, not: i64) -> Result<bool> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM groups WHERE school_id = ?1 AND name = ?2 AND id != ?3",
            &[&school, &name, &not],
        )?
        .is_some())
}

/// Longest group name (as the groups API allows).
const MAX_GROUP_NAME: usize = 100;

fn truncated(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The group's name: the class title, or "title (sourcedId)" (then
/// "title (sourcedId) 2", …) when another group already has the title;
/// never over [`MAX_GROUP_NAME`] characters.
fn group_name(db: &mut dyn Sql, school: SchoolId, c: &ClassWrite, id: i64) -> Result<String> {
    let title = truncated(&c.title, MAX_GROUP_NAME);
    if !name_taken(db, school, &title, id)? {
        return Ok(title);
    }
    for n in 1..=1000 {
        let mut suffix = format!(" ({})", truncated(&c.sourced_id, 40));
        if n > 1 {
            suffix.push_str(&format!(" {n}"));
        }
        let keep = MAX_GROUP_NAME.saturating_sub(suffix.chars().count());
        let name = format!("{}{suffix}", truncated(&c.title, keep));
        if !name_taken(db, school, &name, id)? {
            return Ok(name);
        }
    }
    Err(StoreError::Exists(format!("group {title:?}")))
}

/// Creates or updates the class's user group; returns its id.
fn write_group(
    db: &mut dyn Sql,
    school: SchoolId,
    c: &ClassWrite,
    old: Option<i64>,
) -> Result<i64> {
    let existing = match old {
        Some(id) => crate::groups::get_group(db, school, id)?.map(|_| id),
        None => None,
    };
    match existing {
        Some(id) => {
            let name = group_name(db, school, c, id)?;
            db.execute(
                "UPDATE groups SET name = ?3, members = ?4 WHERE school_id = ?1 AND id = ?2",
                &[&school, &id, &name, &members(c)],
            )?;
            Ok(id)
        }
        None => {
            // The group was never made, or someone deleted it: make it (again).
            let name = group_name(db, school, c, 0)?;
            let id = db.insert_id(
                "INSERT INTO groups (school_id, name, kind, priority, members, settings, created_at)
                 VALUES (?1, ?2, 'user', 'medium', ?3, '{}', ?4) RETURNING id",
                &[&school, &name, &members(c), &now_ms()],
            )?;
            crate::groups::forget_group_in_rules(db, school, id)?;
            Ok(id)
        }
    }
}

fn write_class(db: &mut dyn Sql, school: SchoolId, c: &ClassWrite, group: i64) -> Result<()> {
    let title: String = db
        .query_opt(
            "SELECT name FROM groups WHERE school_id = ?1 AND id = ?2",
            &[&school, &group],
        )?
        .ok_or_else(|| StoreError::Corrupt(format!("the class's group {group} vanished")))?
        .get(0)?;
    let j = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    db.execute(
        "INSERT INTO roster_classes (school_id, sourced_id, title, group_id, teachers, students,
                                     terms, retired_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)
         ON CONFLICT (school_id, sourced_id) DO UPDATE SET title = ?3, group_id = ?4,
           teachers = ?5, students = ?6, terms = ?7, retired_at = NULL, updated_at = ?8",
        &[
            &school,
            &c.sourced_id,
            &title,
            &group,
            &j(&c.teachers),
            &j(&c.students),
            &j(&c.terms),
            &now_ms(),
        ],
    )?;
    Ok(())
}

fn write_grant(
    db: &mut dyn Sql,
    school: SchoolId,
    g: &TeacherGrant,
    groups: &BTreeMap<String, i64>,
    old: Option<i64>,
) -> Result<()> {
    let rule = AccessRule {
        id: 0,
        principal: Principal::User(g.username.clone()),
        features: g.features.iter().cloned().collect(),
        group_access: g
            .classes
            .iter()
            .filter_map(|c| groups.get(c))
            .map(|id| (*id, Access::Control))
            .collect(),
        bypass_privacy: false,
    };
    // The rule may have been deleted by hand since: then write it anew.
    let updated = match old {
        Some(id) => {
            crate::groups::save_access_rule(db, school, &AccessRule { id, ..rule.clone() })?
        }
        None => None,
    };
    let id = match updated {
        Some(r) => r.id,
        None => crate::groups::save_access_rule(db, school, &rule)?
            .map(|r| r.id)
            .unwrap_or_default(),
    };
    db.execute(
        "INSERT INTO roster_rules (school_id, username, rule_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (school_id, username) DO UPDATE SET rule_id = ?3",
        &[&school, &g.username, &id],
    )?;
    Ok(())
}

fn apply(db: &mut dyn Sql, school: SchoolId, w: &RosterWrite) -> Result<Vec<RosterClass>> {
    // One transaction (on PostgreSQL run again if it loses to a concurrent
    // one): a failure leaves the roster, groups and rules as they were.
    in_tx(db, |db| {
        let before: BTreeMap<String, i64> = classes(db, school)?
            .into_iter()
            .map(|c| (c.sourced_id, c.group_id))
            .collect();
        let mut groups = BTreeMap::new();
        for c in &w.classes {
            let id = write_group(db, school, c, before.get(&c.sourced_id).copied())?;
            write_class(db, school, c, id)?;
            groups.insert(c.sourced_id.clone(), id);
        }
        for s in &w.retire {
            db.execute(
                "UPDATE roster_classes SET retired_at = ?3, updated_at = ?3
                 WHERE school_id = ?1 AND sourced_id = ?2 AND retired_at IS NULL",
                &[&school, s, &now_ms()],
            )?;
        }
        let old_rules = rules(db, school)?;
        let lower = |s: &str| s.to_lowercase();
        for g in &w.grants {
            let old = old_rules
                .iter()
                .find(|(u, _)| lower(u) == lower(&g.username))
                .map(|(_, id)| *id);
            write_grant(db, school, g, &groups, old)?;
        }
        for (user, id) in &old_rules {
            if !w.grants.iter().any(|g| lower(&g.username) == lower(user)) {
                crate::groups::delete_access_rule(db, school, *id)?;
                db.execute(
                    "DELETE FROM roster_rules WHERE school_id = ?1 AND username = ?2",
                    &[&school, user],
                )?;
            }
        }
        classes(db, school)
    })
}

fn add_import(db: &mut dyn Sql, school: SchoolId, i: &RosterImport) -> Result<i64> {
    let id = db.insert_id(
        "INSERT INTO roster_imports (school_id, at, source, actor, dry_run, outcome, digest, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        &[
            &school,
            &i.at,
            &i.source,
            &i.actor,
            &i.dry_run,
            &i.outcome,
            &i.digest,
            &i.report.to_string(),
        ],
    )?;
    db.execute(
        "DELETE FROM roster_imports WHERE school_id = ?1 AND source = ?2 AND id <= ?3",
        &[&school, &i.source, &(id - KEPT_IMPORTS)],
    )?;
    Ok(id)
}

fn last_import(
    db: &mut dyn Sql,
    school: SchoolId,
    source: &str,
    with_dry: bool,
) -> Result<Option<RosterImport>> {
    db.query_opt(
        "SELECT id, at, source, actor, dry_run, outcome, digest, report FROM roster_imports
         WHERE school_id = ?1 AND source = ?2 AND (CAST(?3 AS BIGINT) = 1 OR dry_run = 0)
         ORDER BY id DESC LIMIT 1",
        &[&school, &source, &with_dry],
    )?
    .map(|r| {
        Ok(RosterImport {
            id: r.get(0)?,
            at: r.get(1)?,
            source: r.get(2)?,
            actor: r.get(3)?,
            dry_run: r.get(4)?,
            outcome: r.get(5)?,
            digest: r.get(6)?,
            report: serde_json::from_str(&r.get::<String>(7)?).unwrap_or_default(),
        })
    })
    .transpose()
}

/// The same calls on either engine.
macro_rules! roster_store {
    ($t:ty) => {
        impl RosterStore for $t {
            fn roster_classes(&self, school: SchoolId) -> Result<Vec<RosterClass>> {
                self.shared(|db| classes(db, school))
            }

            fn roster_rules(&self, school: SchoolId) -> Result<BTreeMap<String, i64>> {
                self.shared(|db| rules(db, school))
            }

            fn apply_roster(&self, school: SchoolId, w: &RosterWrite) -> Result<Vec<RosterClass>> {
                self.shared(|db| apply(db, school, w))
            }

            fn add_roster_import(&self, school: SchoolId, i: &RosterImport) -> Result<i64> {
                self.shared(|db| add_import(db, school, i))
            }

            fn last_roster_import(
                &self,
                school: SchoolId,
                source: &str,
                with_dry: bool,
            ) -> Result<Option<RosterImport>> {
                self.shared(|db| last_import(db, school, source, with_dry))
            }
        }
    };
}

roster_store!(SqliteStore);
roster_store!(PgStore);
