//! The store on PostgreSQL, for cluster mode (issue 16 point 5): its schema,
//! kept equal to the SQLite migrations' by `tests/pg_schema.rs`, and
//! [`PgStore`], which runs the store's shared SQL (`crate::sql`) for the
//! modules moved there so far, tested on both engines by
//! `tests/pg_store.rs`.

/// Creates every table, index and trigger of the store in an empty
/// database (needs `CREATE EXTENSION` for `citext`, trusted since
/// PostgreSQL 13).
pub const SCHEMA: &str = include_str!("pg/schema.sql");

use std::sync::Mutex;

use crate::sql::{Pg, Sql};
use crate::Result;

/// The store on PostgreSQL. So far it holds the school grants
/// ([`GrantStore`](crate::grants::GrantStore)); the rest of
/// [`Store`](crate::Store) moves over module by module, each tested on both
/// engines. One connection behind a mutex, as SQLite's.
pub struct PgStore {
    client: Mutex<postgres::Client>,
}

impl PgStore {
    /// Connects with `params` (`host=… port=… user=… dbname=…`) and, in a
    /// database without the store's tables, creates them. Not from inside
    /// an async task: the client runs its own runtime.
    pub fn connect(params: &str) -> Result<PgStore> {
        let mut client = postgres::Client::connect(params, postgres::NoTls)?;
        let made = client
            .query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'schools'", &[])?
            .is_some();
        if !made {
            let mut tx = client.transaction()?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()?;
        }
        Ok(PgStore {
            client: Mutex::new(client),
        })
    }

    /// Runs `f` on the connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut Pg(&mut client))
    }
}
