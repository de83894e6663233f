//! The PostgreSQL connection of a store: the URL (with PitWall's `schema` parameter), the
//! connection and its statement cache, and the migrations run at open.

use crate::schema::{PG_MIGRATIONS, SCHEMA_VERSION};
use crate::{Result, StoreError};
use std::collections::HashMap;
use std::time::Duration;

/// A PostgreSQL connection with its prepared statements (keyed by the `?N` SQL text). A lost
/// connection is opened again on next use (the statements prepared again).
pub(crate) struct Pg {
    config: postgres::Config,
    schema: Option<String>,
    /// `None` after drop began (taken there to close it on a thread of its own).
    client: Option<postgres::Client>,
    stmts: HashMap<String, postgres::Statement>,
    /// An error said the connection is gone (before the client noticed it closed).
    broken: bool,
}

impl Drop for Pg {
    fn drop(&mut self) {
        close_elsewhere(self.client.take());
    }
}

/// Closes a client on a thread of its own: the sync client blocks on a runtime of its own when
/// it closes, which panics inside an async context (a server's state dropped by a task).
fn close_elsewhere(client: Option<postgres::Client>) {
    if let Some(client) = client {
        let _ = std::thread::Builder::new()
            .name("pg-close".into())
            .spawn(move || drop(client));
    }
}

impl Pg {
    /// Connects to `url` (see [`crate::StoreLocation`]), selects the schema and migrates it.
    pub(crate) fn open(url: &str) -> Result<Pg> {
        let (url, schema) = split_schema(url)?;
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("pitwall");
        }
        let client = connect(&config, schema.as_deref(), true)?;
        Ok(Pg {
            config,
            schema,
            client: Some(client),
            stmts: HashMap::new(),
            broken: false,
        })
    }

    /// Whether the connection is gone (the server closed it, the network failed).
    pub(crate) fn is_closed(&self) -> bool {
        self.broken || self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }

    /// Notes an error: one that says the connection is gone makes the next use reconnect.
    pub(crate) fn note(&mut self, e: &postgres::Error) {
        if connection_lost(e) {
            self.broken = true;
        }
    }

    /// Opens the connection again if it was lost.
    fn ensure_connected(&mut self) -> Result<()> {
        if self.is_closed() {
            tracing::warn!("PostgreSQL connection lost: reconnecting");
            self.stmts.clear();
            close_elsewhere(self.client.take());
            self.client = Some(connect(&self.config, self.schema.as_deref(), false)?);
            self.broken = false;
        }
        Ok(())
    }

    /// The client (connected again if the connection was lost).
    pub(crate) fn client(&mut self) -> Result<&mut postgres::Client> {
        self.ensure_connected()?;
        self.client.as_mut().ok_or(StoreError::Closed)
    }

    /// The client and the statement cache, borrowed apart.
    pub(crate) fn parts(
        &mut self,
    ) -> Result<(
        &mut postgres::Client,
        &mut HashMap<String, postgres::Statement>,
    )> {
        self.ensure_connected()?;
        let client = self.client.as_mut().ok_or(StoreError::Closed)?;
        Ok((client, &mut self.stmts))
    }

    /// The prepared statement of `sql` (`?N` placeholders), prepared on first use.
    pub(crate) fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        self.ensure_connected()?;
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client()?.prepare(&crate::db::pg_sql(sql))?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Whether `e` means the connection is gone: closed, an I/O error, or a FATAL error from the
/// server (terminated by an administrator, the server shutting down...).
fn connection_lost(e: &postgres::Error) -> bool {
    use std::error::Error as _;
    e.is_closed()
        || e.as_db_error()
            .is_some_and(|d| matches!(d.severity(), "FATAL" | "PANIC"))
        || e.source().is_some_and(|s| s.is::<std::io::Error>())
}

/// A new connection in the store's schema (made if missing when named), migrated if asked,
/// with the temporary table sample batches are copied into.
fn connect(
    config: &postgres::Config,
    schema: Option<&str>,
    migrate_schema: bool,
) -> Result<postgres::Client> {
    let mut client = config.connect(postgres::NoTls)?;
    if let Some(schema) = schema {
        let q = quote_ident(schema);
        client.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}"
        ))?;
    }
    let current: Option<String> = client.query_one("SELECT current_schema()", &[])?.get(0);
    if current.is_none() {
        return Err(StoreError::NoSchema);
    }
    if migrate_schema {
        migrate(&mut client)?;
    }
    // Sample batches are copied here first, then inserted with ON CONFLICT DO NOTHING.
    client.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS samples_in (LIKE samples) ON COMMIT DELETE ROWS",
    )?;
    Ok(client)
}

/// Takes PitWall's `schema=NAME` parameter out of a PostgreSQL URL (the client would refuse
/// it as unknown): the URL left and the schema, if given.
pub(crate) fn split_schema(url: &str) -> Result<(String, Option<String>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => {
                let name = percent_decode(v)?;
                if name.is_empty() {
                    return Err(StoreError::BadUrl("schema= is empty".into()));
                }
                schema = Some(name);
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

/// Decodes `%XX` escapes (and `+` as a space, as in a query string).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| StoreError::BadUrl(format!("bad escape in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| StoreError::BadUrl(format!("{s:?} is not UTF-8")))
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction (DDL is transactional here),
/// under an advisory lock so that processes starting together migrate once. The version lives in the table
/// `pitwall_schema_version` of the schema.
fn migrate(client: &mut postgres::Client) -> Result<()> {
    let mut tx = client.transaction()?;
    // One lock per schema: the key is a hash of the schema's name.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('pitwall:' || current_schema()))",
        &[],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS pitwall_schema_version (version BIGINT NOT NULL)",
    )?;
    let version: i64 = tx
        .query_opt("SELECT version FROM pitwall_schema_version", &[])?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    for (to, sql) in (1i64..).zip(PG_MIGRATIONS) {
        if version < to {
            tx.batch_execute(sql)?;
            tx.execute("DELETE FROM pitwall_schema_version", &[])?;
            tx.execute(
                "INSERT INTO pitwall_schema_version (version) VALUES ($1)",
                &[&to],
            )?;
            tracing::info!(version = to, "PostgreSQL store migrated");
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_parameter_is_taken_out_of_the_url() {
        let (u, s) = split_schema("postgres://u@h/db?schema=pw%20x&connect_timeout=3").unwrap();
        assert_eq!(u, "postgres://u@h/db?connect_timeout=3");
        assert_eq!(s.as_deref(), Some("pw x"));
        let (u, s) = split_schema("postgres://u@h/db?schema=a").unwrap();
        assert_eq!((u.as_str(), s.as_deref()), ("postgres://u@h/db", Some("a")));
        let (u, s) = split_schema("postgres://u@h/db").unwrap();
        assert_eq!((u.as_str(), s), ("postgres://u@h/db", None));
        assert!(split_schema("postgres://h/db?schema=%zz").is_err());
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
