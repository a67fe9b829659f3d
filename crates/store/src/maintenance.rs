//! Backups and retention: a consistent copy of the live database, and removal
//! of rows older than the school keeps them.

use std::path::Path;

use rusqlite::{params, Connection};

use crate::sql::Sql;
use crate::{Result, SchoolId};

/// What ages out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    /// Activity events (by when they happened).
    Activity,
    /// Console audit entries.
    Audit,
    /// Violations (their evidence files are the caller's to remove).
    Violations,
    /// Chat messages (by when they were written).
    Chat,
    /// Closed help requests (by when they were closed); an open hand stays
    /// however old it is, so a student waiting is never dropped.
    HelpRequests,
}

/// Writes a consistent snapshot of the database to `dest` (which must not
/// exist) while others keep reading and writing: `VACUUM INTO` runs in one
/// read transaction, so the copy is one point in time, compacted.
pub(crate) fn backup_to(conn: &Connection, dest: &Path) -> Result<()> {
    let dest = dest
        .to_str()
        .ok_or_else(|| crate::StoreError::Corrupt("backup path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", params![dest])?;
    Ok(())
}

/// What a school's export holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolExport {
    /// Rows kept, per table (tables left empty are not listed).
    pub rows: Vec<(String, u64)>,
}

/// Writes a copy of the database holding only `school`'s rows to `dest`
/// (which must not exist or must be empty): a whole snapshot first, then
/// [`keep_only_school`] in the copy.
pub(crate) fn export_school(
    conn: &Connection,
    school: SchoolId,
    dest: &Path,
) -> Result<SchoolExport> {
    backup_to(conn, dest)?;
    keep_only_school(dest, school)
}

/// Removes from the database copy at `dest` every row that is not
/// `school`'s. A table with a `school_id`
/// keeps that school's rows; a table without one keeps the rows whose
/// parents (by its foreign keys) were kept, repeated until nothing
/// changes (in every table: a row naming another school's user goes too);
/// a table with neither (none today) is emptied, so a table added later
/// cannot carry another school's rows out. Live sessions are emptied,
/// SQLite's statistics dropped and its id counters trimmed to the rows
/// kept. The copy is vacuumed with `secure_delete`, so deleted rows are not
/// left in its free pages. Both engines' exports end here: PostgreSQL's
/// backup is a database file of this same schema.
pub(crate) fn keep_only_school(dest: &Path, school: SchoolId) -> Result<SchoolExport> {
    let mut out = Connection::open(dest)?;
    out.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA secure_delete = ON;")?;
    let tables: Vec<String> = out
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    // SQLite's own tables: the statistics sample other schools' keys, and
    // the counters name the server's highest ids (trimmed below).
    for stat in ["sqlite_stat1", "sqlite_stat4"] {
        let exists: bool = out.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = ?1",
            [stat],
            |r| r.get(0),
        )?;
        if exists {
            out.execute(&format!("DROP TABLE {stat}"), [])?;
        }
    }
    let tx = out.transaction()?;
    // Every table's keys: rows whose parent went go too, in tables with a
    // school column as well (a grant or session naming another school's
    // user).
    let mut children = Vec::new();
    for t in &tables {
        let scoped = keep_school(&tx, t, school)?;
        let keys = foreign_keys(&tx, t)?;
        if !scoped && keys.is_empty() {
            tx.execute(&format!("DELETE FROM \"{t}\""), [])?;
        } else if !keys.is_empty() {
            children.push((t.as_str(), keys));
        }
    }
    while prune_orphans(&tx, &children)? > 0 {}
    // Live sign-ins are the server's, not the school's data.
    if tables.iter().any(|t| t == "sessions") {
        tx.execute("DELETE FROM sessions", [])?;
    }
    let counters: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'",
        [],
        |r| r.get(0),
    )?;
    if counters {
        let named: Vec<String> = tx
            .prepare("SELECT name FROM sqlite_sequence")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for t in named.iter().filter(|t| tables.contains(t)) {
            tx.execute(
                &format!(
                    "UPDATE sqlite_sequence SET seq = (SELECT coalesce(max(rowid), 0) FROM \"{t}\") \
                     WHERE name = ?1"
                ),
                [t],
            )?;
        }
    }
    let mut rows = Vec::new();
    for t in &tables {
        let n: i64 = tx.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))?;
        if n > 0 {
            rows.push((t.clone(), n as u64));
        }
    }
    tx.commit()?;
    out.execute_batch("VACUUM")?;
    Ok(SchoolExport { rows })
}

/// Deletes the rows of table `t` that belong to another school; false when
/// `t` has no school column (it is scoped through its parents, if at all).
fn keep_school(tx: &rusqlite::Transaction<'_>, t: &str, school: SchoolId) -> Result<bool> {
    if t == "schools" {
        tx.execute("DELETE FROM schools WHERE id IS NOT ?1", params![school])?;
        return Ok(true);
    }
    let columns: Vec<String> = tx
        .prepare(&format!("PRAGMA table_info(\"{t}\")"))?
        .query_map([], |r| r.get(1))?
        .collect::<std::result::Result<_, _>>()?;
    if !columns.iter().any(|c| c == "school_id") {
        return Ok(false);
    }
    tx.execute(
        &format!("DELETE FROM \"{t}\" WHERE school_id IS NOT ?1"),
        params![school],
    )?;
    Ok(true)
}

/// A foreign key: this table's `column` holds `parent`'s `parent_column`.
pub(crate) struct ForeignKey {
    pub(crate) parent: String,
    pub(crate) column: String,
    parent_column: String,
}

pub(crate) fn foreign_keys(tx: &rusqlite::Transaction<'_>, t: &str) -> Result<Vec<ForeignKey>> {
    let keys = tx
        .prepare(&format!("PRAGMA foreign_key_list(\"{t}\")"))?
        .query_map([], |r| {
            Ok(ForeignKey {
                parent: r.get(2)?,
                column: r.get(3)?,
                parent_column: r.get(4)?,
            })
        })?
        .collect::<std::result::Result<_, _>>()?;
    Ok(keys)
}

/// Deletes the rows of `children` whose parent row is gone; how many.
pub(crate) fn prune_orphans(
    tx: &rusqlite::Transaction<'_>,
    children: &[(&str, Vec<ForeignKey>)],
) -> Result<usize> {
    let mut removed = 0;
    for (t, keys) in children {
        for k in keys {
            let (col, parent, parent_col) = (&k.column, &k.parent, &k.parent_column);
            removed += tx.execute(
                &format!(
                    "DELETE FROM \"{t}\" WHERE \"{col}\" IS NOT NULL AND NOT EXISTS \
                     (SELECT 1 FROM \"{parent}\" p WHERE p.\"{parent_col}\" = \"{t}\".\"{col}\")"
                ),
                [],
            )?;
        }
    }
    Ok(removed)
}

/// Deletes rows of `what` older than `cutoff` (ms); returns the ids removed
/// for violations (so their files can go too) and the count.
pub(crate) fn purge(
    db: &mut dyn Sql,
    school: SchoolId,
    what: Retained,
    cutoff: i64,
) -> Result<(usize, Vec<i64>)> {
    // Whole statements, one per kind, rather than names put into SQL.
    let sql = match what {
        Retained::Activity => "DELETE FROM activity WHERE school_id = ?1 AND at < ?2",
        Retained::Audit => "DELETE FROM audit_log WHERE school_id = ?1 AND at < ?2",
        Retained::Chat => "DELETE FROM chat_messages WHERE school_id = ?1 AND at < ?2",
        // NULL (open) never compares below the cutoff, so open hands stay.
        Retained::HelpRequests => {
            "DELETE FROM help_requests WHERE school_id = ?1 AND closed_at < ?2"
        }
        Retained::Violations => {
            // The ids of exactly the rows deleted, in the same statement.
            let ids = db
                .query(
                    "DELETE FROM violations WHERE school_id = ?1 AND at < ?2 RETURNING id",
                    &[&school, &cutoff],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<Vec<i64>>>()?;
            return Ok((ids.len(), ids));
        }
    };
    Ok((db.execute(sql, &[&school, &cutoff])?, Vec::new()))
}

/// Checks that `path` is a readable Lectern database: SQLite's integrity check
/// passes and the tables are there. Returns the school's name.
pub fn verify_database(path: &Path) -> Result<String> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(crate::StoreError::Corrupt(format!(
            "integrity check failed: {ok}"
        )));
    }
    conn.query_row("SELECT name FROM schools ORDER BY id LIMIT 1", [], |r| {
        r.get(0)
    })
    .map_err(|e| crate::StoreError::Corrupt(format!("not a Lectern database: {e}")))
}

/// The schools a database file (a backup) holds, by id, read without
/// writing to it or beside it: whom a copy may be shown to. (Opened as
/// immutable: a plain read-only open of a copy in WAL mode would leave
/// `-wal` and `-shm` files next to it.)
pub fn schools_in(path: &Path) -> Result<Vec<crate::SchoolId>> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let conn = Connection::open_with_flags(
        &uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )?;
    let mut q = conn.prepare("SELECT id FROM schools ORDER BY id")?;
    let rows = q.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{NewDevice, Role, SqliteStore, Store, TargetStatus};
    use lectern_proto::ActivityEvent;
    use rusqlite::Connection;

    /// The schools a copy holds are read from any path, leaving nothing
    /// beside the file.
    #[test]
    fn schools_in_reads_a_copy_and_writes_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a %?# b");
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("copy.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.create_school("One").unwrap();
            s.create_school("Two").unwrap();
            s.backup_to(&folder.join("snapshot.db")).unwrap();
        }
        let before = std::fs::read_dir(&folder).unwrap().count();
        assert_eq!(super::schools_in(&path).unwrap(), [1, 2]);
        assert_eq!(
            super::schools_in(&folder.join("snapshot.db")).unwrap(),
            [1, 2]
        );
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), before);
        assert!(super::schools_in(&folder.join("absent.db")).is_err());
    }

    /// A school with a user, a device, a command to it and a visit titled
    /// `marker`.
    pub(crate) fn fill(s: &SqliteStore, name: &str, marker: &str) -> i64 {
        let school = s.create_school(name).unwrap();
        s.create_user(
            school,
            &format!("admin-{name}"),
            "a-long-password",
            Role::Admin,
        )
        .unwrap();
        let admin = s
            .verify_password(school, &format!("admin-{name}"), "a-long-password")
            .unwrap()
            .unwrap();
        s.create_session(&admin, 60_000).unwrap();
        let (token, _) = s
            .create_enrollment_token(school, "lab", 1, i64::MAX, "admin")
            .unwrap();
        let info = NewDevice {
            hostname: format!("{name}-PC01"),
            os: "linux".into(),
            agent_version: "1".into(),
        };
        let (device, _) = s.enroll_device(&token, &info).unwrap().unwrap();
        s.create_command(school, "admin", "{}", &[(device.id, TargetStatus::Pending)])
            .unwrap();
        let visit = ActivityEvent {
            at: 1,
            kind: "web".into(),
            title: Some(marker.into()),
            ..Default::default()
        };
        s.add_activity(school, device.id, Some(1), &[visit])
            .unwrap();
        school
    }

    #[test]
    fn a_schools_export_holds_its_rows_and_nothing_of_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let hill = fill(&s, "Hill", "HILL-PRIVATE-VISIT");
        let dale = fill(&s, "Dale", "DALE-OWN-VISIT");
        let dest = dir.path().join("dale.db");
        let export = s.export_school(dale, &dest).unwrap();
        let kept = |t: &str| export.rows.iter().find(|(n, _)| n == t).map(|r| r.1);
        assert_eq!(kept("schools"), Some(1));
        assert_eq!(kept("devices"), Some(1));
        assert_eq!(kept("command_targets"), Some(1), "{export:?}");
        assert_eq!(kept("activity"), Some(1));

        // No table holds a row of another school, directly or through a
        // parent.
        let c = Connection::open(&dest).unwrap();
        let tables: Vec<String> = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%school_id%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(tables.len() > 40, "{tables:?}");
        for t in &tables {
            let others: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM \"{t}\" WHERE school_id IS NOT ?1"),
                    [dale],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(others, 0, "{t} holds another school's rows");
        }
        let orphans: i64 = c
            .query_row(
                "SELECT count(*) FROM command_targets WHERE command_id NOT IN (SELECT id FROM commands)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        // Not even in the file's free pages.
        let bytes = std::fs::read(&dest).unwrap();
        let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(has("DALE-OWN-VISIT"));
        assert!(!has("HILL-PRIVATE-VISIT"));
        assert!(!has("admin-Hill"));
        let sessions: i64 = c
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sessions, 0, "live sign-ins are not exported");
        // The live database is untouched.
        assert_eq!(s.list_devices(hill).unwrap().len(), 1);
        assert_eq!(crate::verify_database(&dest).unwrap(), "Dale");
    }
}
