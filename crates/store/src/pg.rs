//! The store on PostgreSQL, for cluster mode (issue 16 point 5): so far its
//! schema, kept equal to the SQLite migrations' by `tests/pg_schema.rs`.
//! The queries come next, behind the same [`Store`](crate::Store) trait.

/// Creates every table, index and trigger of the store in an empty
/// database (needs `CREATE EXTENSION` for `citext`, trusted since
/// PostgreSQL 13).
pub const SCHEMA: &str = include_str!("pg/schema.sql");
