//! Backups and retention: a consistent copy of the live database, and removal
//! of rows older than the school keeps them.

use std::path::Path;

use rusqlite::{params, Connection};

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

/// Deletes rows of `what` older than `cutoff` (ms); returns the ids removed
/// for violations (so their files can go too) and the count.
pub(crate) fn purge(
    conn: &Connection,
    school: SchoolId,
    what: Retained,
    cutoff: i64,
) -> Result<(usize, Vec<i64>)> {
    let (table, column) = match what {
        Retained::Activity => ("activity", "at"),
        Retained::Audit => ("audit_log", "at"),
        Retained::Violations => ("violations", "at"),
        Retained::Chat => ("chat_messages", "at"),
        // NULL (open) never compares below the cutoff, so open hands stay.
        Retained::HelpRequests => ("help_requests", "closed_at"),
    };
    let mut ids = Vec::new();
    if what == Retained::Violations {
        let mut stmt = conn.prepare(&format!(
            "SELECT id FROM {table} WHERE school_id = ?1 AND {column} < ?2"
        ))?;
        ids = stmt
            .query_map(params![school, cutoff], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
    }
    let n = conn.execute(
        &format!("DELETE FROM {table} WHERE school_id = ?1 AND {column} < ?2"),
        params![school, cutoff],
    )?;
    Ok((n, ids))
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
