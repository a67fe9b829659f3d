//! Keyword libraries and their assignment to groups (migration 0020).
//!
//! A school has one built-in default library (its terms come from the
//! running software, so the row holds none), at most one library of its own
//! and any number of imported packs. Each library is enabled or disabled per
//! group with five severity actions; the server resolves them. The store
//! keeps what it is given: names, terms and actions are checked by the
//! server.

use std::collections::HashMap;

use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Engine, Row, Sql};
use crate::{now_ms, Result, SchoolId, SqliteStore, StoreError};

/// The documents row that held the school's single library before 0020.
pub const OLD_DOCUMENT: &str = "keyword_library";

/// One stored keyword library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordLibraryRow {
    /// Its id.
    pub id: i64,
    /// `default`, `own` or `imported`.
    pub kind: String,
    /// Its name, unique in the school (any case).
    pub name: String,
    /// The library's JSON; `None` for the built-in default.
    #[serde(skip)]
    pub terms: Option<String>,
    /// The file an imported pack came from (already cleaned), or the library
    /// it was copied from.
    pub source: Option<String>,
    /// Who last changed it.
    pub updated_by: String,
    /// When (ms).
    pub updated_at: i64,
}

/// A library enabled or disabled for one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordAssignment {
    /// Its id.
    pub id: i64,
    /// The library.
    pub library_id: i64,
    /// The group (Entire Network for the whole school).
    pub group_id: i64,
    /// False: a stronger group turns the library off for its members.
    pub enabled: bool,
    /// Five of `log`/`screenshot`/`alert`/`lock`, for severities 1–5;
    /// `None` follows the school's `keyword_actions`.
    pub actions: Option<Vec<String>>,
    /// Who set it.
    pub set_by: String,
    /// When (ms).
    pub set_at: i64,
}

/// Keyword libraries, their assignments and the library of each violation.
pub trait KwPolicyStore: Send + Sync {
    /// Makes the school's default library row if it has none. The first time
    /// (no default row yet) the pre-0020 single library, if any, becomes the
    /// school's own library "School library" enabled for `entire_network`;
    /// without one the default is enabled there, so nothing changes for the
    /// school. Returns true when it did that first-time set-up.
    fn ensure_keyword_libraries(
        &self,
        school: SchoolId,
        entire_network: i64,
        default_name: &str,
    ) -> Result<bool>;
    /// Every library, by id.
    fn keyword_libraries(&self, school: SchoolId) -> Result<Vec<KeywordLibraryRow>>;
    /// One library.
    fn keyword_library(&self, school: SchoolId, id: i64) -> Result<Option<KeywordLibraryRow>>;
    /// Adds a library; a taken name is [`StoreError::Exists`].
    fn create_keyword_library(
        &self,
        school: SchoolId,
        row: &KeywordLibraryRow,
    ) -> Result<KeywordLibraryRow>;
    /// Replaces a library's name and terms (not the default's terms);
    /// `None` if there is no such library.
    fn save_keyword_library(
        &self,
        school: SchoolId,
        id: i64,
        name: &str,
        terms: Option<&str>,
        by: &str,
    ) -> Result<Option<KeywordLibraryRow>>;
    /// Deletes a library that is not the default, with its assignments;
    /// false if there was none.
    fn delete_keyword_library(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Every assignment, by id.
    fn keyword_assignments(&self, school: SchoolId) -> Result<Vec<KeywordAssignment>>;
    /// Stores (replacing the one for the same library and group) an
    /// assignment.
    fn set_keyword_assignment(
        &self,
        school: SchoolId,
        a: &KeywordAssignment,
    ) -> Result<KeywordAssignment>;
    /// Removes an assignment; false if there was none.
    fn delete_keyword_assignment(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Records the library a violation's term came from.
    fn set_violation_library(
        &self,
        school: SchoolId,
        violation: i64,
        library_id: i64,
        name: &str,
    ) -> Result<()>;
    /// The library (id, name) of each of these violations that has one.
    fn violation_libraries(
        &self,
        school: SchoolId,
        ids: &[i64],
    ) -> Result<HashMap<i64, (i64, String)>>;
}

const LIB_COLS: &str = "id, kind, name, terms, source, updated_by, updated_at";
const ASSIGN_COLS: &str = "id, library_id, group_id, enabled, actions, set_by, set_at";

fn lib_row(r: &Row) -> Result<KeywordLibraryRow> {
    Ok(KeywordLibraryRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        terms: r.get(3)?,
        source: r.get(4)?,
        updated_by: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

fn assign_row(r: &Row) -> Result<KeywordAssignment> {
    let actions: Option<String> = r.get(4)?;
    Ok(KeywordAssignment {
        id: r.get(0)?,
        library_id: r.get(1)?,
        group_id: r.get(2)?,
        enabled: r.get(3)?,
        actions: actions.and_then(|a| serde_json::from_str(&a).ok()),
        set_by: r.get(5)?,
        set_at: r.get(6)?,
    })
}

/// A broken constraint (the name taken, in any case) as [`StoreError::Exists`].
fn name_taken(e: StoreError, name: &str) -> StoreError {
    if e.taken() {
        StoreError::Exists(format!("a library named {name:?}"))
    } else {
        e
    }
}

fn ensure(
    db: &mut dyn Sql,
    school: SchoolId,
    entire_network: i64,
    default_name: &str,
) -> Result<bool> {
    // One transaction: two nodes setting up at once make one default (on
    // PostgreSQL the one that loses is run again, and finds it made).
    in_tx(db, |db| {
        let has_default = db
            .query_opt(
                "SELECT 1 FROM keyword_libraries WHERE school_id = ?1 AND kind = 'default'",
                &[&school],
            )?
            .is_some();
        if has_default {
            return Ok(false);
        }
        let now = now_ms();
        let mut enabled = db.insert_id(
            "INSERT INTO keyword_libraries (school_id, kind, name, updated_by, updated_at)
             VALUES (?1, 'default', ?2, 'system', ?3) RETURNING id",
            &[&school, &default_name, &now],
        )?;
        let old: Option<String> = db
            .query_opt(
                "SELECT body FROM documents WHERE school_id = ?1 AND name = ?2",
                &[&school, &OLD_DOCUMENT],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        if let Some(terms) = old {
            enabled = db.insert_id(
                "INSERT INTO keyword_libraries
                       (school_id, kind, name, terms, updated_by, updated_at)
                 VALUES (?1, 'own', 'School library', ?2, 'migration', ?3) RETURNING id",
                &[&school, &terms, &now],
            )?;
            db.execute(
                "DELETE FROM documents WHERE school_id = ?1 AND name = ?2",
                &[&school, &OLD_DOCUMENT],
            )?;
        }
        db.execute(
            "INSERT INTO keyword_assignments
                   (school_id, library_id, group_id, enabled, actions, set_by, set_at)
             VALUES (?1, ?2, ?3, 1, NULL, 'migration', ?4)",
            &[&school, &enabled, &entire_network, &now],
        )?;
        Ok(true)
    })
}

fn libraries(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<KeywordLibraryRow>> {
    db.query(
        &format!("SELECT {LIB_COLS} FROM keyword_libraries WHERE school_id = ?1 ORDER BY id"),
        &[&school],
    )?
    .iter()
    .map(lib_row)
    .collect()
}

fn library(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<KeywordLibraryRow>> {
    db.query_opt(
        &format!("SELECT {LIB_COLS} FROM keyword_libraries WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| lib_row(&r))
    .transpose()
}

fn create(
    db: &mut dyn Sql,
    school: SchoolId,
    row: &KeywordLibraryRow,
) -> Result<KeywordLibraryRow> {
    let added = db
        .insert_returning(
            &format!(
                "INSERT INTO keyword_libraries
                       (school_id, kind, name, terms, source, updated_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {LIB_COLS}"
            ),
            &[
                &school,
                &row.kind,
                &row.name,
                &row.terms,
                &row.source,
                &row.updated_by,
                &now_ms(),
            ],
        )
        .map_err(|e| name_taken(e, &row.name))?;
    lib_row(&added)
}

fn save(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    name: &str,
    terms: Option<&str>,
    by: &str,
) -> Result<Option<KeywordLibraryRow>> {
    // The default's terms stay NULL whatever is passed.
    db.query_opt(
        &format!(
            "UPDATE keyword_libraries SET name = ?3,
                 terms = CASE WHEN kind = 'default' THEN NULL ELSE COALESCE(?4, terms) END,
                 updated_by = ?5, updated_at = ?6
             WHERE school_id = ?1 AND id = ?2 RETURNING {LIB_COLS}"
        ),
        &[&school, &id, &name, &terms, &by, &now_ms()],
    )
    .map_err(|e| name_taken(e, name))?
    .map(|r| lib_row(&r))
    .transpose()
}

fn delete(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    // One transaction: the assignments never go without their library.
    in_tx(db, |db| {
        db.execute(
            "DELETE FROM keyword_assignments WHERE school_id = ?1 AND library_id = ?2
               AND EXISTS (SELECT 1 FROM keyword_libraries WHERE id = ?2 AND kind != 'default')",
            &[&school, &id],
        )?;
        Ok(db.execute(
            "DELETE FROM keyword_libraries WHERE school_id = ?1 AND id = ?2 AND kind != 'default'",
            &[&school, &id],
        )? == 1)
    })
}

fn assignments(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<KeywordAssignment>> {
    db.query(
        &format!("SELECT {ASSIGN_COLS} FROM keyword_assignments WHERE school_id = ?1 ORDER BY id"),
        &[&school],
    )?
    .iter()
    .map(assign_row)
    .collect()
}

fn set_assignment(
    db: &mut dyn Sql,
    school: SchoolId,
    a: &KeywordAssignment,
) -> Result<KeywordAssignment> {
    let actions = a
        .actions
        .as_ref()
        .map(|v| serde_json::to_string(v).unwrap_or_default());
    let row = db.insert_returning(
        &format!(
            "INSERT INTO keyword_assignments
                   (school_id, library_id, group_id, enabled, actions, set_by, set_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (school_id, library_id, group_id) DO UPDATE SET
                 enabled = excluded.enabled, actions = excluded.actions,
                 set_by = excluded.set_by, set_at = excluded.set_at
             RETURNING {ASSIGN_COLS}"
        ),
        &[
            &school,
            &a.library_id,
            &a.group_id,
            &a.enabled,
            &actions,
            &a.set_by,
            &now_ms(),
        ],
    )?;
    assign_row(&row)
}

fn delete_assignment(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM keyword_assignments WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )? == 1)
}

fn set_violation_library(
    db: &mut dyn Sql,
    school: SchoolId,
    violation: i64,
    library_id: i64,
    name: &str,
) -> Result<()> {
    db.execute(
        "UPDATE violations SET library_id = ?3, library = ?4 WHERE school_id = ?1 AND id = ?2",
        &[&school, &violation, &library_id, &name],
    )?;
    Ok(())
}

fn violation_libraries(
    db: &mut dyn Sql,
    school: SchoolId,
    ids: &[i64],
) -> Result<HashMap<i64, (i64, String)>> {
    // The ids as one JSON parameter, read by each engine's own functions,
    // so any number of them fits one statement.
    let ids_in = match db.engine() {
        Engine::Sqlite => "id IN (SELECT value FROM json_each(?2))",
        Engine::Postgres => {
            "id IN (SELECT CAST(jsonb_array_elements_text(CAST(?2 AS TEXT)::jsonb) AS BIGINT))"
        }
    };
    let json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    db.query(
        &format!(
            "SELECT id, library_id, library FROM violations
             WHERE school_id = ?1 AND {ids_in} AND library_id IS NOT NULL"
        ),
        &[&school, &json],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
    .collect()
}

/// The same calls on either engine.
macro_rules! kwpolicy_store {
    ($t:ty) => {
        impl KwPolicyStore for $t {
            fn ensure_keyword_libraries(
                &self,
                school: SchoolId,
                entire_network: i64,
                default_name: &str,
            ) -> Result<bool> {
                self.shared(|db| ensure(db, school, entire_network, default_name))
            }

            fn keyword_libraries(&self, school: SchoolId) -> Result<Vec<KeywordLibraryRow>> {
                self.shared(|db| libraries(db, school))
            }

            fn keyword_library(
                &self,
                school: SchoolId,
                id: i64,
            ) -> Result<Option<KeywordLibraryRow>> {
                self.shared(|db| library(db, school, id))
            }

            fn create_keyword_library(
                &self,
                school: SchoolId,
                row: &KeywordLibraryRow,
            ) -> Result<KeywordLibraryRow> {
                self.shared(|db| create(db, school, row))
            }

            fn save_keyword_library(
                &self,
                school: SchoolId,
                id: i64,
                name: &str,
                terms: Option<&str>,
                by: &str,
            ) -> Result<Option<KeywordLibraryRow>> {
                self.shared(|db| save(db, school, id, name, terms, by))
            }

            fn delete_keyword_library(&self, school: SchoolId, id: i64) -> Result<bool> {
                self.shared(|db| delete(db, school, id))
            }

            fn keyword_assignments(&self, school: SchoolId) -> Result<Vec<KeywordAssignment>> {
                self.shared(|db| assignments(db, school))
            }

            fn set_keyword_assignment(
                &self,
                school: SchoolId,
                a: &KeywordAssignment,
            ) -> Result<KeywordAssignment> {
                self.shared(|db| set_assignment(db, school, a))
            }

            fn delete_keyword_assignment(&self, school: SchoolId, id: i64) -> Result<bool> {
                self.shared(|db| delete_assignment(db, school, id))
            }

            fn set_violation_library(
                &self,
                school: SchoolId,
                violation: i64,
                library_id: i64,
                name: &str,
            ) -> Result<()> {
                self.shared(|db| set_violation_library(db, school, violation, library_id, name))
            }

            fn violation_libraries(
                &self,
                school: SchoolId,
                ids: &[i64],
            ) -> Result<HashMap<i64, (i64, String)>> {
                self.shared(|db| violation_libraries(db, school, ids))
            }
        }
    };
}

kwpolicy_store!(SqliteStore);
kwpolicy_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn entire_network(s: &SqliteStore, school: SchoolId) -> i64 {
        s.list_groups(school)
            .unwrap()
            .into_iter()
            .find(|g| g.group.kind == lectern_policy::groups::GroupKind::EntireNetwork)
            .unwrap()
            .group
            .id
    }

    #[test]
    fn old_library_becomes_the_schools_own_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("A").unwrap();
        s.set_document(school, OLD_DOCUMENT, r#"{"terms":[]}"#)
            .unwrap();
        let en = entire_network(&s, school);
        let k = s.kwpolicy();
        assert!(k.ensure_keyword_libraries(school, en, "Default").unwrap());
        assert!(!k.ensure_keyword_libraries(school, en, "Default").unwrap());
        let libs = k.keyword_libraries(school).unwrap();
        assert_eq!(libs.len(), 2);
        assert_eq!(libs[1].kind, "own");
        assert_eq!(libs[1].terms.as_deref(), Some(r#"{"terms":[]}"#));
        let a = k.keyword_assignments(school).unwrap();
        assert_eq!(
            (a.len(), a[0].library_id, a[0].group_id),
            (1, libs[1].id, en)
        );
        assert_eq!(s.document(school, OLD_DOCUMENT).unwrap(), None);
        assert!(
            !k.delete_keyword_library(school, libs[0].id).unwrap(),
            "default stays"
        );
    }

    #[test]
    fn a_deleted_groups_assignments_go_with_it() {
        use lectern_policy::groups::{Group, GroupKind, Priority};
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("A").unwrap();
        let en = entire_network(&s, school);
        let k = s.kwpolicy();
        k.ensure_keyword_libraries(school, en, "Default").unwrap();
        let group = Group {
            id: 0,
            name: "Lab".into(),
            kind: GroupKind::Computer,
            priority: Priority::Low,
            members: Vec::new(),
            settings: Default::default(),
        };
        let g = s.create_group(school, &group).unwrap().group.id;
        let lib = k.keyword_libraries(school).unwrap()[0].id;
        let a = KeywordAssignment {
            id: 0,
            library_id: lib,
            group_id: g,
            enabled: true,
            actions: Some(vec!["lock".into(); 5]),
            set_by: "t".into(),
            set_at: 0,
        };
        k.set_keyword_assignment(school, &a).unwrap();
        assert_eq!(k.keyword_assignments(school).unwrap().len(), 2);
        assert!(s.delete_group(school, g).unwrap());
        // A later group given the same id inherits nothing.
        let left = k.keyword_assignments(school).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].group_id, en);
    }
}
