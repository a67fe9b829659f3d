//! The PostgreSQL schema (`lectern_store::pg::SCHEMA`) holds every table,
//! column, key and reference of the SQLite migrations, with the types
//! mapped one to one, on a real PostgreSQL: a migration added to one and
//! not the other fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::pg::Pg;
use lectern_store::SqliteStore;

/// A column: its type as the other engine should have it, NOT NULL, and
/// its place in the primary key (0: none).
type Columns = BTreeMap<String, (String, bool, i64)>;

/// (table, column) → (parent table, parent column).
type References = BTreeSet<(String, String, String, String)>;

fn sqlite_schema() -> (BTreeMap<String, Columns>, References) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut schema = BTreeMap::new();
    let mut refs = BTreeSet::new();
    for t in tables {
        let sql: String = c
            .query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [&t], |r| {
                r.get(0)
            })
            .unwrap();
        let mut cols = Columns::new();
        let mut q = c.prepare(&format!("PRAGMA table_info(\"{t}\")")).unwrap();
        for row in q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .unwrap()
        {
            let (name, ty, notnull, pk) = row.unwrap();
            // SQLite's COLLATE NOCASE is CITEXT there.
            // (Its definition, among the comma-separated parts of the
            // table's SQL: a column added later is on another's line.)
            let nocase = sql.split([',', '(']).any(|part| {
                let words: Vec<&str> = part.split_whitespace().collect();
                words.len() > 2
                    && words[0] == name
                    && words[1] == "TEXT"
                    && part.contains("COLLATE NOCASE")
            });
            let mapped = match (ty.as_str(), nocase) {
                ("INTEGER", _) => "bigint",
                ("TEXT", true) => "citext",
                ("TEXT", false) => "text",
                ("BLOB", _) => "bytea",
                ("REAL", _) => "double precision",
                (other, _) => panic!("{t}.{name}: type {other} has no mapping"),
            };
            // A primary key column is NOT NULL in PostgreSQL whatever it says.
            cols.insert(name, (mapped.to_string(), notnull || pk > 0, pk));
        }
        let mut q = c
            .prepare(&format!("PRAGMA foreign_key_list(\"{t}\")"))
            .unwrap();
        for row in q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .unwrap()
        {
            let (parent, col, parent_col) = row.unwrap();
            refs.insert((t.clone(), col, parent, parent_col));
        }
        schema.insert(t, cols);
    }
    (schema, refs)
}

fn pg_schema(db: &mut postgres::Client) -> (BTreeMap<String, Columns>, References) {
    let mut schema: BTreeMap<String, Columns> = BTreeMap::new();
    for row in db
        .query(
            "SELECT c.table_name, c.column_name,
                    CASE WHEN c.data_type = 'USER-DEFINED' THEN c.udt_name ELSE c.data_type END,
                    c.is_nullable = 'NO',
                    coalesce((SELECT k.ordinal_position FROM information_schema.key_column_usage k
                              JOIN information_schema.table_constraints tc
                                ON tc.constraint_name = k.constraint_name AND tc.table_name = k.table_name
                              WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name
                                AND k.column_name = c.column_name), 0)
             FROM information_schema.columns c WHERE c.table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        let pk: i32 = row.get(4);
        schema
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), (row.get(2), row.get(3), i64::from(pk)));
    }
    let mut refs = BTreeSet::new();
    for row in db
        .query(
            "SELECT kcu.table_name, kcu.column_name, ccu.table_name, ccu.column_name
             FROM information_schema.referential_constraints rc
             JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = rc.constraint_name
             JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = rc.unique_constraint_name",
            &[],
        )
        .unwrap()
    {
        refs.insert((row.get(0), row.get(1), row.get(2), row.get(3)));
    }
    (schema, refs)
}

#[test]
fn the_postgresql_schema_is_the_sqlite_schema() {
    let pg = Pg::start();
    let mut db = pg.database("lectern");
    db.batch_execute(lectern_store::pg::SCHEMA).unwrap();
    let (want, want_refs) = sqlite_schema();
    let (got, got_refs) = pg_schema(&mut db);
    assert!(want.len() > 50, "{}", want.len());
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (t, cols) in &want {
        assert_eq!(cols, &got[t], "table {t}");
    }
    assert_eq!(want_refs, got_refs, "the same references");

    // The case-blind columns and unique names behave as SQLite's do.
    db.batch_execute(
        "INSERT INTO schools (name, created_at) VALUES ('Hill', 1);
         INSERT INTO keyword_libraries (school_id, name, kind, updated_by, updated_at)
         VALUES (1, 'Own terms', 'own', 'a', 1);",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let again = db.batch_execute(
        "INSERT INTO keyword_libraries (school_id, name, kind, updated_by, updated_at)
         VALUES (1, 'OWN TERMS', 'own', 'a', 1)",
    );
    assert!(again.is_err(), "a library name differing only in case");
}
