//! A cluster's backup: every row of the PostgreSQL store, read in one
//! snapshot, written into a new SQLite database of the store's schema.
//!
//! One backup format for both engines: the file `SqliteStore::backup_to`
//! writes. Checking a copy (`verify_database`), listing its schools
//! (`schools_in`), cutting one school out of it (`export_school`) and
//! restoring from it run the same code whichever engine made it, and a
//! school can move between a cluster and a single server with it.

use std::path::Path;

use postgres::fallible_iterator::FallibleIterator;

use crate::sql::pg_value;
use crate::{Result, SqliteStore, StoreError};

/// Copies every table into a new database at `dest` (which must not exist
/// or must be empty). The rows come from one read-only repeatable-read
/// transaction: the copy is one moment, whatever other nodes write
/// meanwhile, and they are not held up. Rows stream through (the client
/// reads them a batch at a time), so a large table is not held in memory.
pub(crate) fn copy_to_sqlite(client: &mut postgres::Client, dest: &Path) -> Result<()> {
    // The schema is SQLite's own migrations, so the copy opens as any backup.
    drop(SqliteStore::open(dest)?);
    let mut out = rusqlite::Connection::open(dest)?;
    // A plain rollback-journal file, as `VACUUM INTO` leaves one, and no
    // key checks while tables fill in name order.
    out.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF;")?;
    let tables = tables(&out)?;
    let mut snapshot = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let tx = out.transaction()?;
    for (table, columns) in &tables {
        let list = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let marks = (1..=columns.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = tx.prepare(&format!(
            "INSERT INTO \"{table}\" ({list}) VALUES ({marks})"
        ))?;
        let mut rows = snapshot.query_raw(
            format!("SELECT {list} FROM \"{table}\"").as_str(),
            std::iter::empty::<i64>(),
        )?;
        while let Some(row) = rows.next()? {
            let values = (0..row.len())
                .map(|i| pg_value(&row, i))
                .collect::<Result<Vec<_>>>()?;
            insert.execute(rusqlite::params_from_iter(values.iter()))?;
        }
    }
    tx.commit()?;
    snapshot.commit()?;
    Ok(())
}

/// The store's tables in the new database and their columns, by name (SQLite's
/// own tables left out: its counters follow the ids inserted).
fn tables(db: &rusqlite::Connection) -> Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    names
        .into_iter()
        .map(|t| {
            let columns: Vec<String> = db
                .prepare(&format!("PRAGMA table_info(\"{t}\")"))?
                .query_map([], |r| r.get(1))?
                .collect::<std::result::Result<_, _>>()?;
            if columns.is_empty() {
                return Err(StoreError::Corrupt(format!("table {t} has no columns")));
            }
            Ok((t, columns))
        })
        .collect()
}
