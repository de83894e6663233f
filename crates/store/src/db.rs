//! What the table modules share across the two backends: parameter values ([`Val`], bound
//! the same way on SQLite and PostgreSQL), rows read through one trait ([`RowGet`]), and the
//! statement helpers on [`Store`] (`exec`, `rows`, `row_opt`, `each_row`, `transaction`).
//!
//! SQL is written once in `?N` placeholder style in the subset both dialects accept (upserts
//! with `ON CONFLICT`, `COALESCE`...); for PostgreSQL the placeholders become `$N`. A table
//! module writes dialect-specific SQL only where the dialects differ.

use crate::pg::Pg;
use crate::{Result, Store, StoreError};
use postgres::types::{IsNull, ToSql as PgToSql, Type};
use rusqlite::types::ToSqlOutput;
use std::cell::RefCell;
use std::collections::HashMap;
use telemetry::Corners;

/// The connection behind a [`Store`].
pub(crate) enum Backend {
    /// One SQLite file (WAL mode).
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL connection. The sync client needs `&mut` for every query while reads take
    /// `&Store`; the cell is borrowed for one call (the store is owned by one thread).
    Postgres(Box<RefCell<Pg>>),
}

/// A parameter value, bound identically by both backends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
    Bool(bool),
}

impl<'a> Val<'a> {
    /// An integer.
    pub(crate) fn int(v: impl Into<i64>) -> Val<'a> {
        Val::Int(Some(v.into()))
    }
    /// An optional integer.
    pub(crate) fn int_opt<T: Into<i64>>(v: Option<T>) -> Val<'a> {
        Val::Int(v.map(Into::into))
    }
    /// A float.
    pub(crate) fn real(v: f64) -> Val<'a> {
        Val::Real(Some(v))
    }
    /// Optional text.
    pub(crate) fn text_opt(v: Option<&'a str>) -> Val<'a> {
        Val::Text(v)
    }
    /// Text.
    pub(crate) fn text(v: &'a str) -> Val<'a> {
        Val::Text(Some(v))
    }
}

impl From<Option<f64>> for Val<'_> {
    fn from(v: Option<f64>) -> Self {
        Val::Real(v)
    }
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Val::Int(v) => rusqlite::ToSql::to_sql(v),
            Val::Real(v) => rusqlite::ToSql::to_sql(v),
            Val::Text(v) => rusqlite::ToSql::to_sql(v),
            Val::Bool(v) => rusqlite::ToSql::to_sql(v),
        }
    }
}

impl PgToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            // Columns are BIGINT; a parameter PostgreSQL typed narrower still binds if it fits.
            Val::Int(Some(v)) if *ty == Type::INT4 => i32::try_from(v)?.to_sql_checked(ty, out),
            Val::Int(Some(v)) if *ty == Type::INT2 => i16::try_from(v)?.to_sql_checked(ty, out),
            Val::Int(v) => v.to_sql_checked(ty, out),
            Val::Real(v) => v.to_sql_checked(ty, out),
            Val::Text(v) => v.to_sql_checked(ty, out),
            Val::Bool(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each variant checks the type itself (to_sql_checked above).
        true
    }

    postgres::types::to_sql_checked!();
}

/// The `?N` placeholders of `sql` as PostgreSQL's `$N`.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A result row of either backend, read by column index.
pub(crate) trait RowGet {
    fn i64_opt(&self, i: usize) -> Result<Option<i64>>;
    fn f64_opt(&self, i: usize) -> Result<Option<f64>>;
    fn str_opt(&self, i: usize) -> Result<Option<String>>;
    fn bool(&self, i: usize) -> Result<bool>;
}

impl dyn RowGet + '_ {
    /// A NOT NULL integer column.
    pub(crate) fn i64(&self, i: usize) -> Result<i64> {
        self.i64_opt(i)?.ok_or(StoreError::Column {
            index: i,
            reason: "NULL",
        })
    }
    /// A NOT NULL float column.
    pub(crate) fn f64(&self, i: usize) -> Result<f64> {
        self.f64_opt(i)?.ok_or(StoreError::Column {
            index: i,
            reason: "NULL",
        })
    }
    /// A NOT NULL text column.
    pub(crate) fn string(&self, i: usize) -> Result<String> {
        self.str_opt(i)?.ok_or(StoreError::Column {
            index: i,
            reason: "NULL",
        })
    }
    /// A NOT NULL integer column as a narrower integer.
    pub(crate) fn int<T: TryFrom<i64>>(&self, i: usize) -> Result<T> {
        T::try_from(self.i64(i)?).map_err(|_| StoreError::Column {
            index: i,
            reason: "integer out of range",
        })
    }
    /// An integer column as a narrower integer.
    pub(crate) fn int_opt<T: TryFrom<i64>>(&self, i: usize) -> Result<Option<T>> {
        self.i64_opt(i)?
            .map(|v| {
                T::try_from(v).map_err(|_| StoreError::Column {
                    index: i,
                    reason: "integer out of range",
                })
            })
            .transpose()
    }
    /// A count (negative read as 0).
    pub(crate) fn count(&self, i: usize) -> Result<u64> {
        Ok(self.i64(i)?.max(0) as u64)
    }
    /// Four columns from `first` on as tyre corners (FL, FR, RL, RR); `None` unless all four
    /// are set. Shared by the `samples` and `laps` tables.
    pub(crate) fn corners(&self, first: usize) -> Result<Option<Corners<f64>>> {
        let v = [
            self.f64_opt(first)?,
            self.f64_opt(first + 1)?,
            self.f64_opt(first + 2)?,
            self.f64_opt(first + 3)?,
        ];
        Ok(match v {
            [Some(a), Some(b), Some(c), Some(d)] => Some(Corners::from_array([a, b, c, d])),
            _ => None,
        })
    }
}

impl RowGet for rusqlite::Row<'_> {
    fn i64_opt(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
    fn f64_opt(&self, i: usize) -> Result<Option<f64>> {
        Ok(self.get(i)?)
    }
    fn str_opt(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
    fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.get(i)?)
    }
}

impl RowGet for postgres::Row {
    fn i64_opt(&self, i: usize) -> Result<Option<i64>> {
        let ty = self.columns().get(i).map(|c| c.type_().clone());
        Ok(match ty {
            Some(Type::INT4) => self.try_get::<_, Option<i32>>(i)?.map(i64::from),
            Some(Type::INT2) => self.try_get::<_, Option<i16>>(i)?.map(i64::from),
            _ => self.try_get(i)?,
        })
    }
    fn f64_opt(&self, i: usize) -> Result<Option<f64>> {
        Ok(self.try_get(i)?)
    }
    fn str_opt(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.try_get(i)?)
    }
}

/// Parameters as the PostgreSQL client takes them.
pub(crate) fn pg_params<'v>(params: &'v [Val<'_>]) -> Vec<&'v (dyn PgToSql + Sync)> {
    params.iter().map(|v| v as &(dyn PgToSql + Sync)).collect()
}

/// A transaction on either backend (see [`Store::transaction`]).
pub(crate) enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres {
        tx: postgres::Transaction<'a>,
        stmts: &'a mut HashMap<String, postgres::Statement>,
    },
}

impl Tx<'_> {
    /// Runs one statement (prepared once per connection); returns the rows changed.
    pub(crate) fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
            }
            Tx::Postgres { tx, stmts } => {
                let stmt = match stmts.get(sql) {
                    Some(s) => s.clone(),
                    None => {
                        let s = tx.prepare(&pg_sql(sql))?;
                        stmts.insert(sql.to_string(), s.clone());
                        s
                    }
                };
                Ok(tx.execute(&stmt, &pg_params(params))?)
            }
        }
    }

    fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit()?,
            Tx::Postgres { tx, .. } => tx.commit()?,
        }
        Ok(())
    }
}

impl Store {
    /// Passes `r` on, noting a PostgreSQL error that says the connection is gone (the next
    /// use reconnects).
    pub(crate) fn noted<T>(&self, r: Result<T>) -> Result<T> {
        if let (Err(StoreError::Postgres(e)), Backend::Postgres(cell)) = (&r, &self.backend) {
            if let Ok(mut pg) = cell.try_borrow_mut() {
                pg.note(e);
            }
        }
        r
    }

    /// Runs one statement outside any transaction; returns the rows changed.
    pub(crate) fn exec(&self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        self.noted(self.exec_inner(sql, params))
    }

    fn exec_inner(&self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
            }
            Backend::Postgres(cell) => {
                let mut pg = cell.try_borrow_mut().map_err(|_| StoreError::Reentered)?;
                let stmt = pg.statement(sql)?;
                Ok(pg.client()?.execute(&stmt, &pg_params(params))?)
            }
        }
    }

    /// Each row of a query handed to `f`, streamed (the rows are not collected first).
    /// `f` must not use the store (on PostgreSQL that fails with [`StoreError::Reentered`]).
    pub(crate) fn each_row(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnMut(&dyn RowGet) -> Result<()>,
    ) -> Result<u64> {
        self.noted(self.each_row_inner(sql, params, f))
    }

    fn each_row_inner(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&dyn RowGet) -> Result<()>,
    ) -> Result<u64> {
        let mut n = 0u64;
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                while let Some(r) = rows.next()? {
                    f(r)?;
                    n += 1;
                }
            }
            Backend::Postgres(cell) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut pg = cell.try_borrow_mut().map_err(|_| StoreError::Reentered)?;
                let stmt = pg.statement(sql)?;
                let mut rows = pg.client()?.query_raw(&stmt, pg_params(params))?;
                while let Some(r) = rows.next()? {
                    f(&r)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The rows of a query, each mapped by `f`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&dyn RowGet) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_row(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query mapped by `f`, if there is one.
    pub(crate) fn row_opt<T>(
        &self,
        sql: &str,
        params: &[Val<'_>],
        f: impl FnOnce(&dyn RowGet) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.each_row(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs a write; on PostgreSQL, once more on a new connection when the connection was lost
    /// during it. Every write may run twice: they are all upserts or `ON CONFLICT DO NOTHING`
    /// (a commit whose answer was lost is not applied twice).
    pub(crate) fn retrying<T>(&mut self, mut f: impl FnMut(&mut Store) -> Result<T>) -> Result<T> {
        match f(self) {
            Err(StoreError::Postgres(e)) if self.connection_lost() => {
                tracing::warn!(error = %e, "PostgreSQL connection lost during a write: retrying");
                f(self)
            }
            r => r,
        }
    }

    /// Whether the PostgreSQL connection is gone.
    fn connection_lost(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => false,
            Backend::Postgres(cell) => cell.try_borrow().is_ok_and(|pg| pg.is_closed()),
        }
    }

    /// Runs `f` in one transaction, committed when `f` succeeds (rolled back otherwise).
    pub(crate) fn transaction<T>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let r = self.transaction_inner(f);
        self.noted(r)
    }

    fn transaction_inner<T>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut tx = match &mut self.backend {
            Backend::Sqlite(conn) => Tx::Sqlite(conn.transaction()?),
            Backend::Postgres(cell) => {
                let pg = cell.get_mut();
                let (client, stmts) = pg.parts()?;
                Tx::Postgres {
                    tx: client.transaction()?,
                    stmts,
                }
            }
        };
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }
}
