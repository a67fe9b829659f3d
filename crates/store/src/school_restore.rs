//! Putting one school's copy ([`Store::export_school`](crate::Store::export_school))
//! back in place of that school's rows, leaving every other school of a
//! shared server as it is: a trust rolls one school back to last night
//! without rolling back the others.
//!
//! The copy keeps its ids. They came from the same server's counters, so
//! once the school's present rows are gone they collide with nothing,
//! unless another school's rows have taken ids the school freed since (a
//! table without `AUTOINCREMENT` gives out the highest id again after a
//! delete) or the copy came from another server. Either is found before
//! anything is written, and the restore is refused as a whole: ids are
//! not renumbered, as devices, groups and users are named by id in rows
//! and in JSON alike, and a renumbering that missed one would join one
//! school's rows to another's.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::maintenance::{foreign_keys, prune_orphans};
use crate::{SchoolId, SqliteStore, StoreError};

/// What [`SqliteStore::restore_school`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolRestore {
    /// The school put back.
    pub school: SchoolId,
    /// Its name in the copy (now its name here).
    pub name: String,
    /// The school's rows removed before the copy's went in.
    pub removed: u64,
    /// Rows put back, per table (tables the copy leaves empty are not listed).
    pub rows: Vec<(String, u64)>,
    /// Of the tables the caller named, the ids of the school's rows that
    /// went and did not come back (table, id): whatever the server keeps on
    /// disk under such an id must go too, before another row takes the id.
    pub gone: Vec<(String, i64)>,
}

/// Why a school's copy was not restored. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SchoolRestoreError {
    /// The file holds no school or several: a whole backup, restored whole.
    #[error("the file holds {} schools, not one: restore it whole, or take the school's own copy (backup --school)", .0.len())]
    NotOneSchool(Vec<SchoolId>),
    /// The server's school with the copy's id is another school (made at
    /// another time): the copy is from another server.
    #[error("school {id} here is \"{here}\", not the school the copy holds (\"{copy}\"): restore the copy as a server of its own")]
    OtherSchool {
        /// The id both use.
        id: SchoolId,
        /// The name of this server's school.
        here: String,
        /// The name in the copy.
        copy: String,
    },
    /// Rows of the copy have ids (or unique values) that other schools'
    /// rows hold now.
    #[error("{rows} of the copy's rows in {table} have ids or unique values that another school's rows hold now: restore the copy as a server of its own")]
    Taken {
        /// The table.
        table: String,
        /// How many of the copy's rows (0 when a unique value other than
        /// the key clashed).
        rows: u64,
    },
    /// The file is not a usable Lectern database, or the server's failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for SchoolRestoreError {
    fn from(e: rusqlite::Error) -> Self {
        SchoolRestoreError::Store(StoreError::Db(e))
    }
}

impl SqliteStore {
    /// Replaces the rows of the school that `copy` (a school's own copy)
    /// holds with the copy's, in one transaction; the other schools' rows
    /// are not touched, but for their users' grants to the school and
    /// console preferences in it, which are kept (the trust's, not the
    /// school's). The copy is first copied to `scratch` (which must not
    /// exist; removed afterwards) and brought to this version's schema
    /// there, so an older school's copy restores too.
    ///
    /// Meant for a stopped server: a running one keeps what it read of the
    /// school until it restarts. Devices that registered after the copy was
    /// taken are no longer known and must register again.
    pub fn restore_school(
        &self,
        copy: &Path,
        scratch: &Path,
        watch: &[&str],
    ) -> Result<SchoolRestore, SchoolRestoreError> {
        if scratch.exists() {
            return Err(StoreError::Exists(scratch.display().to_string()).into());
        }
        let result = self.restore_from_scratch(copy, scratch, watch);
        for ext in ["", "-wal", "-shm", "-journal"] {
            let mut p = scratch.as_os_str().to_owned();
            p.push(ext);
            let _ = std::fs::remove_file(&p);
        }
        result
    }

    fn restore_from_scratch(
        &self,
        copy: &Path,
        scratch: &Path,
        watch: &[&str],
    ) -> Result<SchoolRestore, SchoolRestoreError> {
        crate::verify_database(copy)?;
        std::fs::copy(copy, scratch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Migrated where it lies, then closed (which folds its WAL back).
        drop(SqliteStore::open(scratch)?);
        let schools = crate::schools_in(scratch)?;
        let [school] = schools[..] else {
            return Err(SchoolRestoreError::NotOneSchool(schools));
        };
        let scratch = scratch
            .to_str()
            .ok_or_else(|| StoreError::Corrupt("scratch path is not UTF-8".into()))?;
        self.with(|conn| {
            conn.execute("ATTACH DATABASE ?1 AS copy", params![scratch])?;
            let done = put_back(conn, school, watch);
            conn.execute("DETACH DATABASE copy", [])?;
            Ok(done)
        })?
    }
}

/// The copy's school in place of `school`'s rows (the copy attached as
/// `copy`).
fn put_back(
    conn: &mut Connection,
    school: SchoolId,
    watch: &[&str],
) -> Result<SchoolRestore, SchoolRestoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Parents and children go and come back in one transaction: checked at
    // the commit, not row by row.
    tx.pragma_update(None, "defer_foreign_keys", "ON")?;
    let (name, created): (String, i64) = tx.query_row(
        "SELECT name, created_at FROM copy.schools WHERE id = ?1",
        params![school],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let here: Option<(String, i64)> = tx
        .query_row(
            "SELECT name, created_at FROM main.schools WHERE id = ?1",
            params![school],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match &here {
        Some((here, at)) if *at != created => {
            return Err(SchoolRestoreError::OtherSchool {
                id: school,
                here: here.clone(),
                copy: name,
            })
        }
        Some(_) => {
            tx.execute(
                "UPDATE main.schools SET name = ?2 WHERE id = ?1",
                params![school, name],
            )?;
        }
        None => {
            tx.execute(
                "INSERT INTO main.schools (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![school, name, created],
            )?;
        }
    }
    let tables: Vec<String> = tx
        .prepare(
            "SELECT name FROM copy.sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> 'schools' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let gone = ids_leaving(&tx, &tables, watch, school)?;
    let kept = keep_trust_rows(&tx, &tables, school)?;
    let mut removed = 0u64;
    let mut children = Vec::new();
    for t in &tables {
        let columns = columns(&tx, t)?;
        let keys = foreign_keys(&tx, t)?;
        if columns.iter().any(|c| c == "school_id") {
            removed += remove_school_rows(&tx, t, &keys, school)? as u64;
        } else if !keys.is_empty() {
            children.push((t.as_str(), keys));
        }
    }
    // Rows of the school's commands, collections, exams and files, whose
    // parents just went (tables without a school column).
    loop {
        let n = prune_orphans(&tx, &children)?;
        if n == 0 {
            break;
        }
        removed += n as u64;
    }
    for t in &tables {
        let taken = taken_keys(&tx, t)?;
        if taken > 0 {
            return Err(SchoolRestoreError::Taken {
                table: t.clone(),
                rows: taken,
            });
        }
    }
    let mut rows = Vec::new();
    for t in &tables {
        let list = columns(&tx, t)?
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let n = tx
            .execute(
                &format!("INSERT INTO main.\"{t}\" ({list}) SELECT {list} FROM copy.\"{t}\""),
                [],
            )
            .map_err(|e| clash(e, t))?;
        if n > 0 {
            rows.push((t.clone(), n as u64));
        }
    }
    put_trust_rows_back(&tx, &kept)?;
    // Anything left pointing nowhere fails the commit (foreign keys are
    // checked there): nothing of another school is deleted to make it fit.
    tx.commit()?;
    Ok(SchoolRestore {
        school,
        name,
        removed,
        rows,
        gone,
    })
}

/// Of the tables in `watch`, the ids of `school`'s rows that the copy does
/// not have.
fn ids_leaving(
    tx: &rusqlite::Transaction<'_>,
    tables: &[String],
    watch: &[&str],
    school: SchoolId,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut gone = Vec::new();
    for t in watch.iter().filter(|t| tables.iter().any(|n| n == *t)) {
        let ids: Vec<i64> = tx
            .prepare(&format!(
                "SELECT id FROM main.\"{t}\" WHERE school_id = ?1 \
                 AND id NOT IN (SELECT id FROM copy.\"{t}\")"
            ))?
            .query_map(params![school], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        gone.extend(ids.into_iter().map(|id| (t.to_string(), id)));
    }
    Ok(gone)
}

/// Rows of other schools naming one of `school`'s users (the user's grant
/// to another school of the trust, their console preferences there): the
/// school's own copy does not hold them, and deleting the school's users
/// would take them (`ON DELETE CASCADE`). Kept in temporary tables, to be
/// put back for the users the copy brings back. Returns (table, user
/// column, temporary table).
fn keep_trust_rows(
    tx: &rusqlite::Transaction<'_>,
    tables: &[String],
    school: SchoolId,
) -> Result<Vec<(String, String, String)>, SchoolRestoreError> {
    let mut kept = Vec::new();
    for t in tables.iter().filter(|t| *t != "sessions") {
        if !columns(tx, t)?.iter().any(|c| c == "school_id") {
            continue;
        }
        for k in foreign_keys(tx, t)?.iter().filter(|k| k.parent == "users") {
            let temp = format!("restore_keep_{}", kept.len());
            tx.execute(
                &format!(
                    "CREATE TEMP TABLE \"{temp}\" AS SELECT * FROM main.\"{t}\" \
                     WHERE school_id <> ?1 AND \"{col}\" IN (SELECT id FROM main.users WHERE school_id = ?1)",
                    col = k.column
                ),
                params![school],
            )?;
            kept.push((t.clone(), k.column.clone(), temp));
        }
    }
    Ok(kept)
}

/// The rows [`keep_trust_rows`] kept whose user the copy brought back.
fn put_trust_rows_back(
    tx: &rusqlite::Transaction<'_>,
    kept: &[(String, String, String)],
) -> Result<(), SchoolRestoreError> {
    for (t, col, temp) in kept {
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO main.\"{t}\" SELECT * FROM temp.\"{temp}\" \
                 WHERE \"{col}\" IN (SELECT id FROM main.users)"
            ),
            [],
        )?;
        tx.execute(&format!("DROP TABLE temp.\"{temp}\""), [])?;
    }
    Ok(())
}

fn columns(tx: &rusqlite::Transaction<'_>, t: &str) -> rusqlite::Result<Vec<String>> {
    tx.prepare(&format!("PRAGMA main.table_info(\"{t}\")"))?
        .query_map([], |r| r.get(1))?
        .collect()
}

/// Deletes `school`'s rows of table `t` but those naming another school's
/// user (a trust administrator's grant to the school, their console
/// preferences in it): how many.
fn remove_school_rows(
    tx: &rusqlite::Transaction<'_>,
    t: &str,
    keys: &[crate::maintenance::ForeignKey],
    school: SchoolId,
) -> rusqlite::Result<usize> {
    let mut keep = String::new();
    for k in keys.iter().filter(|k| k.parent == "users") {
        keep.push_str(&format!(
            " AND NOT coalesce(\"{col}\" IN (SELECT id FROM main.users WHERE school_id <> ?1), 0)",
            col = k.column
        ));
    }
    tx.execute(
        &format!("DELETE FROM main.\"{t}\" WHERE school_id = ?1{keep}"),
        params![school],
    )
}

/// How many of the copy's rows of `t` have a primary key that a row here
/// holds.
fn taken_keys(tx: &rusqlite::Transaction<'_>, t: &str) -> rusqlite::Result<u64> {
    let key: Vec<String> = tx
        .prepare(&format!("PRAGMA main.table_info(\"{t}\")"))?
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))?
        .filter_map(|r| match r {
            Ok((c, pk)) if pk > 0 => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<_>>()?;
    let on = if key.is_empty() {
        "m.rowid = c.rowid".to_string()
    } else {
        key.iter()
            .map(|c| format!("m.\"{c}\" = c.\"{c}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let n: i64 = tx.query_row(
        &format!(
            "SELECT count(*) FROM copy.\"{t}\" c WHERE EXISTS \
             (SELECT 1 FROM main.\"{t}\" m WHERE {on})"
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// A constraint failing on the way in is a value another school holds
/// (a unique index beside the key); anything else is the database's.
fn clash(e: rusqlite::Error, table: &str) -> SchoolRestoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => SchoolRestoreError::Taken {
            table: table.to_string(),
            rows: 0,
        },
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::SchoolRestoreError;
    use crate::grants::GrantStore;
    use crate::maintenance::tests::fill;
    use crate::{ActivityFilter, Role, SqliteStore, Store};
    use lectern_proto::ActivityEvent;

    fn visit(title: &str) -> ActivityEvent {
        ActivityEvent {
            at: 2,
            kind: "web".into(),
            title: Some(title.into()),
            ..Default::default()
        }
    }

    fn has_user(s: &SqliteStore, school: i64, name: &str) -> bool {
        s.list_users(school)
            .unwrap()
            .iter()
            .any(|u| u.username == name)
    }

    fn titles(s: &SqliteStore, school: i64) -> Vec<String> {
        let filter = ActivityFilter {
            limit: 100,
            ..Default::default()
        };
        let mut t: Vec<String> = s
            .activity(school, &filter)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.title)
            .collect();
        t.sort();
        t
    }

    /// A school rolled back to its copy: its rows are the copy's again
    /// (what it gained since is gone, what it lost is back), the other
    /// school's rows, a grant of the other school's administrator to it
    /// among them, are as they were, and the scratch file is gone.
    #[test]
    fn a_schools_copy_puts_back_that_school_and_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let hill = fill(&s, "Hill", "HILL-BEFORE");
        let dale = fill(&s, "Dale", "DALE-BEFORE");
        let hill_admin = s
            .verify_password(hill, "admin-Hill", "a-long-password")
            .unwrap()
            .unwrap();
        assert!(s
            .grant_school(hill_admin.id, dale, Role::Admin, "test")
            .unwrap());
        // And the other way: Dale's administrator acts in Hill too.
        let dale_admin = s
            .verify_password(dale, "admin-Dale", "a-long-password")
            .unwrap()
            .unwrap();
        assert!(s
            .grant_school(dale_admin.id, hill, Role::Teacher, "test")
            .unwrap());
        let copy = dir.path().join("dale.db");
        let exported = s.export_school(dale, &copy).unwrap();

        // After the copy: Dale gains a user, a device's visit, loses its
        // devices; Hill gains a visit.
        let dale_device = s.list_devices(dale).unwrap()[0].id;
        let hill_device = s.list_devices(hill).unwrap()[0].id;
        s.add_activity(dale, dale_device, None, &[visit("DALE-AFTER")])
            .unwrap();
        s.create_user(dale, "late-teacher", "a-long-password", Role::Teacher)
            .unwrap();
        s.devadmin().delete_device(dale, dale_device).unwrap();
        s.add_activity(hill, hill_device, None, &[visit("HILL-AFTER")])
            .unwrap();
        let late = s.create_command(dale, "admin", "{}", &[]).unwrap();

        let scratch = dir.path().join("scratch.db");
        let done = s.restore_school(&copy, &scratch, &["commands"]).unwrap();
        assert_eq!(done.gone, [("commands".to_string(), late.id)]);
        assert_eq!((done.school, done.name.as_str()), (dale, "Dale"));
        assert!(done.removed > 0);
        assert!(!scratch.exists());
        assert_eq!(titles(&s, dale), ["DALE-BEFORE"]);
        assert_eq!(titles(&s, hill), ["HILL-AFTER", "HILL-BEFORE"]);
        assert_eq!(s.list_devices(dale).unwrap().len(), 1);
        assert!(!has_user(&s, dale, "late-teacher"));
        assert!(s
            .verify_password(dale, "admin-Dale", "a-long-password")
            .unwrap()
            .is_some());
        // The trust's grant to the school stands.
        let access = s.schools_of(hill_admin.id).unwrap();
        assert!(access.iter().any(|a| a.school.id == dale), "{access:?}");
        // So does the grant of the school's own administrator to the other
        // school, which its copy does not hold.
        let access = s.schools_of(dale_admin.id).unwrap();
        assert!(access.iter().any(|a| a.school.id == hill), "{access:?}");
        // Taken again, the school's copy is the one restored.
        let again = s
            .export_school(dale, &dir.path().join("dale-again.db"))
            .unwrap();
        let mut want = exported.rows.clone();
        // Sessions are never exported; the grant is the trust's, kept.
        want.retain(|(t, _)| t != "school_grants");
        let mut got = again.rows.clone();
        got.retain(|(t, _)| t != "school_grants");
        assert_eq!(got, want);
        assert_eq!(
            s.list_devices(hill).unwrap().len(),
            1,
            "the other school's devices stay"
        );
    }

    /// An id the school freed and another school took since: refused as
    /// a whole, nothing changed.
    #[test]
    fn a_copy_whose_ids_another_school_took_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let hill = fill(&s, "Hill", "HILL-1");
        let dale = fill(&s, "Dale", "DALE-1");
        let copy = dir.path().join("dale.db");
        s.export_school(dale, &copy).unwrap();
        // Dale's visit had the highest id; gone, Hill's next visit takes it.
        s.purge_before(dale, crate::Retained::Activity, i64::MAX)
            .unwrap();
        let hill_device = s.list_devices(hill).unwrap()[0].id;
        s.add_activity(hill, hill_device, None, &[visit("HILL-2")])
            .unwrap();
        s.create_user(dale, "late-teacher", "a-long-password", Role::Teacher)
            .unwrap();

        let err = s
            .restore_school(&copy, &dir.path().join("scratch.db"), &[])
            .unwrap_err();
        assert!(
            matches!(&err, SchoolRestoreError::Taken { table, rows: 1 } if table == "activity"),
            "{err:?}"
        );
        assert!(err.to_string().contains("server of its own"), "{err}");
        assert!(titles(&s, dale).is_empty());
        assert_eq!(titles(&s, hill), ["HILL-1", "HILL-2"]);
        assert!(has_user(&s, dale, "late-teacher"));
        assert!(!dir.path().join("scratch.db").exists());
    }

    /// Another server's school under the same id, and a whole backup, are
    /// not a school's copy for this server.
    #[test]
    fn another_servers_school_and_a_whole_backup_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = SqliteStore::open(&dir.path().join("other.db")).unwrap();
        fill(&other, "Elsewhere", "ELSEWHERE");
        other
            .export_school(1, &dir.path().join("elsewhere.db"))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        fill(&s, "Hill", "HILL");
        fill(&s, "Dale", "DALE");
        let scratch = dir.path().join("scratch.db");
        let err = s
            .restore_school(&dir.path().join("elsewhere.db"), &scratch, &[])
            .unwrap_err();
        assert!(
            matches!(&err, SchoolRestoreError::OtherSchool { id: 1, here, copy }
                if here == "Hill" && copy == "Elsewhere"),
            "{err:?}"
        );
        s.backup_to(&dir.path().join("whole.db")).unwrap();
        let err = s
            .restore_school(&dir.path().join("whole.db"), &scratch, &[])
            .unwrap_err();
        assert!(
            matches!(&err, SchoolRestoreError::NotOneSchool(ids) if ids == &[1, 2]),
            "{err:?}"
        );
        assert_eq!(titles(&s, 1), ["HILL"]);
    }
}
