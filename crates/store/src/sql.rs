//! One way to run the store's SQL on either engine (issue 16 point 5): the
//! queries are written once, against [`Sql`], and SQLite and PostgreSQL
//! each run them.
//!
//! The rules the shared SQL keeps, so that it means the same on both:
//!
//! * Parameters are `?1`, `?2`, …; on PostgreSQL they become `$1`, `$2`, …
//!   (outside quotes).
//! * Values are 64-bit integers, floats, text, bytes or NULL ([`Value`]);
//!   booleans are stored as 0 and 1, as SQLite stores them.
//! * What differs is avoided: `ON CONFLICT … DO UPDATE/NOTHING` rather than
//!   `INSERT OR …`, `RETURNING id` rather than `last_insert_rowid()`,
//!   `IS DISTINCT FROM` rather than `IS NOT` between values, and
//!   `CAST(sum(…) AS BIGINT)`, as PostgreSQL sums integers as `numeric`.
//!   The column called `user` is written `"user"`.
//!
//! Module by module the store's queries move here; what has moved is run
//! by both engines' tests.

use crate::{Result, StoreError};

/// A value bound to a parameter or read from a column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound to a parameter.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// What a column can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for u8 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u8::try_from(i).ok())
    }
}

impl FromValue for u32 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).and_then(|i| u64::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `i` as a `T`; a missing column or another type is an error
    /// (the query and the code disagree).
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i}")))?;
        T::from_value(v).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Which engine a connection is to, for the little SQL that differs (JSON
/// functions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A connection to either engine.
pub(crate) trait Sql {
    /// Which engine.
    fn engine(&self) -> Engine;
    /// Runs a statement; the rows it changed.
    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize>;
    /// Runs a query; all its rows.
    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>>;
    /// Starts a transaction (none may be open).
    fn begin(&mut self) -> Result<()>;
    /// Commits the open transaction.
    fn commit(&mut self) -> Result<()>;
    /// Rolls the open transaction back.
    fn rollback(&mut self) -> Result<()>;

    /// [`Sql::query`] for SQL built per call (filters, lists of ids), which
    /// would only push the statements used again and again out of a cache.
    fn query_built(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        self.query(sql, params)
    }

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The row an `INSERT … RETURNING …` gave back (it gives one unless a
    /// conflict was skipped, which callers expecting that ask
    /// [`Sql::query_opt`] for).
    fn insert_returning(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Corrupt("an insert returned no row".into()))
    }

    /// The first column (mostly the id) of the row an `INSERT … RETURNING`
    /// gave back.
    fn insert_id(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<i64> {
        self.insert_returning(sql, params)?.get(0)
    }
}

/// How often a transaction lost to a concurrent one is run again. Nodes
/// enrolling a classroom at once all count down one token's uses: a hot
/// row, on which a few tries are not enough.
const RETRIES: u32 = 30;

/// A random pause before try `n` again: up to 1, 2, 4 … 64 ms, so that
/// nodes that collided do not collide the same way again.
fn back_off(n: u32) {
    let most = 1u64 << n.min(6);
    std::thread::sleep(std::time::Duration::from_micros(rand::random_range(
        0..=most * 1000,
    )));
}

/// Runs `f` in a transaction: committed if it succeeds, rolled back if not.
/// Both engines run it serializable (SQLite always does; PostgreSQL is
/// asked to), so a check and the change it guards cannot interleave with
/// another node's; one that loses to a concurrent transaction is run again.
pub(crate) fn in_tx<T>(
    db: &mut dyn Sql,
    mut f: impl FnMut(&mut dyn Sql) -> Result<T>,
) -> Result<T> {
    let mut tries = 0;
    loop {
        db.begin()?;
        // A panic inside rolls back before it goes on up: the connection
        // is shared, and must not be left inside a transaction.
        let done = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(db))) {
            Ok(r) => r,
            Err(panic) => {
                let _ = db.rollback();
                std::panic::resume_unwind(panic);
            }
        };
        let done = done.and_then(|v| db.commit().map(|()| v));
        match done {
            Ok(v) => return Ok(v),
            Err(e) => {
                // The error that caused it is the one to report.
                let _ = db.rollback();
                if e.retryable() && tries < RETRIES {
                    tries += 1;
                    back_off(tries);
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// SQLite through rusqlite.
pub(crate) struct Lite<'c>(pub(crate) &'c rusqlite::Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn lite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Every row of a prepared statement run with `params`.
fn lite_rows(stmt: &mut rusqlite::Statement<'_>, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
    let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
    let n = stmt.column_count();
    let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
        (0..n)
            .map(|i| r.get_ref(i).map(lite_value))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map(Row)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Sql for Lite<'_> {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        Ok(self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(values.iter()))?)
    }

    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        // (A cached statement derefs to the statement.)
        lite_rows(&mut *self.0.prepare_cached(sql)?, params)
    }

    fn query_built(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        lite_rows(&mut self.0.prepare(sql)?, params)
    }

    fn begin(&mut self) -> Result<()> {
        self.0.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.0.execute_batch("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        self.0.execute_batch("ROLLBACK")?;
        Ok(())
    }
}

/// `?N` parameters as PostgreSQL's `$N`, outside quoted text and names.
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// PostgreSQL through the `postgres` client.
pub(crate) struct Pg<'c>(pub(crate) &'c mut postgres::Client);

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, Type};
        // Each kind only into a column of its own kind: bytes of one type
        // written as another would be read back as nonsense, not refused.
        let wrong = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("{self:?} cannot be written as {ty}").into()
        };
        let text = matches!(
            *ty,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
        ) || ty.name() == "citext";
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => Err(wrong()),
            },
            Value::Text(s) if text => s.to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            Value::Text(_) | Value::Blob(_) => Err(wrong()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        // Checked against the column's type when written (`to_sql`).
        true
    }

    postgres::types::to_sql_checked!();
}

pub(crate) fn pg_value(row: &postgres::Row, i: usize) -> Result<Value> {
    use postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    let bad = StoreError::from;
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(bad)?
            .map_or(Value::Null, |v| Value::Real(v.into())),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::Blob),
        // Text, varchar, citext and anything else textual.
        _ => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map_or(Value::Null, Value::Text),
    })
}

impl Sql for Pg<'_> {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let n = self.0.execute(dollar_params(sql).as_str(), &refs)?;
        Ok(n as usize)
    }

    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.0.query(dollar_params(sql).as_str(), &refs)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| pg_value(r, i))
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }

    fn begin(&mut self) -> Result<()> {
        self.0
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .map_err(StoreError::from)
    }

    fn commit(&mut self) -> Result<()> {
        self.0.batch_execute("COMMIT").map_err(StoreError::from)
    }

    fn rollback(&mut self) -> Result<()> {
        self.0.batch_execute("ROLLBACK").map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_params("SELECT '?', \"a?\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn sqlite_runs_the_shared_sql() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Lite(&c);
        db.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, b BLOB)",
            &[],
        )
        .unwrap();
        let row = db
            .query_opt(
                "INSERT INTO t (name, b) VALUES (?1, ?2) RETURNING id",
                &[&"x", &&b"\x00\x01"[..]],
            )
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 1);
        let failed = in_tx(&mut db, |db| {
            db.execute("INSERT INTO t (name) VALUES (?1)", &[&"rolled back"])?;
            Err::<(), _>(StoreError::Corrupt("stop".into()))
        });
        assert!(failed.is_err());
        let rows = db.query("SELECT name, b, NULL FROM t", &[]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String>(0).unwrap(), "x");
        assert_eq!(rows[0].get::<Vec<u8>>(1).unwrap(), vec![0, 1]);
        assert_eq!(rows[0].get::<Option<i64>>(2).unwrap(), None);
        assert!(rows[0].get::<i64>(0).is_err(), "text is not a number");
    }
}
