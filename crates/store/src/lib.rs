//! The store: sessions, cars and every accepted sample, in one SQLite file (WAL mode) under
//! the data directory (the default) or in a PostgreSQL database shared by several processes
//! (`--store postgres://...`). Writes come in batches, one transaction each; a sample is
//! keyed by (car, time), so a batch delivered twice is stored once (at-least-once delivery).
//!
//! The store is synchronous; the server runs it on a thread of its own. Both backends offer
//! the same [`Store`] API and behave the same (the tests run one body of test code on each).
//!
//! One module per table, each with its row types and the [`Store`] methods that read and
//! write it: `sessions` (sessions and cars), `samples`, `laps` (engine-cut laps), `official`
//! (official timing laps and the classification), `lap_events`, `meta` (`session_meta`),
//! `profiles` (`driver_profiles`), `alerts` (`coaching_alerts`), `keys` (`secrets`, `api_keys`,
//! `audit_log`: access control), `delete` (a session and all it holds); `schema` holds the
//! migrations of both backends, `db` what the tables share (parameters, rows, statement
//! helpers) and `pg` the PostgreSQL connection. Everything public is re-exported here.

mod alerts;
mod by_time;
mod db;
mod delete;
mod keys;
mod lap_events;
mod laps;
mod meta;
mod official;
mod pg;
mod profiles;
mod samples;
mod schema;
mod sessions;

pub use alerts::AlertRow;
pub use keys::{ApiKeyRow, AuditEntry, AuditRow};
pub use lap_events::LapEventRow;
pub use laps::LapRow;
pub use meta::{META_IMPORT_REPORT, META_RESULTS, META_RESULTS_PROVISIONAL};
pub use official::{ClassifiedCar, OfficialLapRow};
pub use sessions::{CarInfo, SessionInfo};

use db::Backend;
use rusqlite::Connection;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name of the store inside the data directory.
pub const DB_FILE: &str = "pitwall.sqlite";

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error (connecting, a statement, the server gone...), shown with its cause.
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(postgres::Error),
    /// A `postgres://` URL the store cannot use.
    #[error("bad PostgreSQL URL: {0}")]
    BadUrl(String),
    /// The connection's `search_path` names no existing schema.
    #[error(
        "the PostgreSQL search_path names no existing schema: create it, or give ?schema=NAME \
         (created if missing)"
    )]
    NoSchema,
    /// The PostgreSQL connection was used while a read on it was under way (a callback of
    /// `for_each_sample` using the store).
    #[error("the store was used from inside one of its own callbacks")]
    Reentered,
    /// The PostgreSQL connection is closed.
    #[error("the store connection is closed")]
    Closed,
    /// A stored value this binary cannot read (NULL where a value is required, or out of range).
    #[error("stored value in column {index}: {reason}")]
    Column { index: usize, reason: &'static str },
    #[error("store schema version {found} is newer than this binary understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("no session {0}")]
    NoSession(String),
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

/// A PostgreSQL error with its cause ("db error: ERROR: ...", "error connecting to server:
/// Connection refused"): the client's own message alone rarely says what went wrong.
fn pg_message(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Where a store lives: a SQLite file under a data directory, or a PostgreSQL database.
///
/// A PostgreSQL location is a `postgres://` (or `postgresql://`) URL as libpq takes it, e.g.
/// `postgres://pitwall:secret@db:5432/pitwall?schema=race`. The tables go in the schema named
/// by PitWall's own `schema=NAME` parameter (created if missing), else in the first schema of
/// the search path (`options=-c%20search_path%3Drace`, or the server's default: `public`),
/// which must exist. Only unencrypted connections are supported (no TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The data directory holding [`DB_FILE`].
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl StoreLocation {
    /// A `postgres://` or `postgresql://` URL is a PostgreSQL location; anything else is a
    /// data directory (SQLite).
    pub fn parse(s: &str) -> StoreLocation {
        let t = s.trim();
        let lower = t.get(..13).unwrap_or(t).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            StoreLocation::Postgres(t.to_string())
        } else {
            StoreLocation::Sqlite(PathBuf::from(s))
        }
    }

    /// The store a process was told of: `store` when given and not blank (a `postgres://` URL,
    /// or a directory), else SQLite under `data_dir`.
    pub fn or_data_dir(store: Option<&str>, data_dir: &std::path::Path) -> StoreLocation {
        match store.map(str::trim) {
            Some(s) if !s.is_empty() => StoreLocation::parse(s),
            _ => StoreLocation::Sqlite(data_dir.to_path_buf()),
        }
    }

    /// Whether this is a PostgreSQL location.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }
}

impl std::str::FromStr for StoreLocation {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(StoreLocation::parse(s))
    }
}

/// Shown with any password in the URL masked (fit for logs).
impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(dir) => write!(f, "{}", dir.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// `scheme://user:password@host...` with the password replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The store. Not `Sync`: own it from one thread. On PostgreSQL, do not open, use or drop it
/// on an async runtime's worker threads (the sync client blocks; use `spawn_blocking`).
pub struct Store {
    backend: Backend,
    location: StoreLocation,
    /// The SQLite file (empty for PostgreSQL).
    path: PathBuf,
    /// (session key, car key) -> car row id, so a batch looks each car up once.
    car_ids: HashMap<(Arc<str>, Arc<str>), i64>,
}

impl Store {
    /// Opens (creating if needed) the SQLite store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&conn)?;
        Ok(Store {
            backend: Backend::Sqlite(conn),
            location: StoreLocation::Sqlite(data_dir.to_path_buf()),
            path,
            car_ids: HashMap::new(),
        })
    }

    /// Opens the store at `location`: SQLite as [`Store::open`], or connects to PostgreSQL
    /// and migrates its schema (see [`StoreLocation`]).
    pub fn open_location(location: &StoreLocation) -> Result<Store> {
        match location {
            StoreLocation::Sqlite(dir) => Store::open(dir),
            StoreLocation::Postgres(url) => Ok(Store {
                backend: Backend::Postgres(Box::new(RefCell::new(pg::Pg::open(url)?))),
                location: location.clone(),
                path: PathBuf::new(),
                car_ids: HashMap::new(),
            }),
        }
    }

    /// Where this store lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The file this store lives in (an empty path for a PostgreSQL store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cheap liveness check (for `/ready`).
    pub fn ping(&self) -> Result<()> {
        self.row_opt("SELECT 1", &[], |_| Ok(()))?;
        Ok(())
    }

    /// Checkpoints the WAL into the main file (on clean shutdown); nothing on PostgreSQL.
    pub fn checkpoint(&self) -> Result<()> {
        if let Backend::Sqlite(conn) = &self.backend {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod location_tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!(
            StoreLocation::parse("./data"),
            StoreLocation::Sqlite("./data".into())
        );
        let pg = StoreLocation::parse("postgres://pw:secret@db:5432/x?schema=s");
        assert!(pg.is_postgres());
        assert_eq!(pg.to_string(), "postgres://pw:***@db:5432/x?schema=s");
        assert!(StoreLocation::parse("PostgreSQL://h/x").is_postgres());
        assert_eq!(
            StoreLocation::parse("postgres://u@h/x").to_string(),
            "postgres://u@h/x"
        );
    }
}

/// Rows shared by the tests of several tables.
#[cfg(test)]
mod test_util {
    use crate::OfficialLapRow;
    use telemetry::{Corners, PitStatus, Sample};

    /// A sample of `car` at `t` with most kinds of field set (track `Austin`).
    pub(crate) fn sample(session: &str, car: &str, t: f64) -> Sample {
        let mut s = Sample::new(session, car, t);
        s.track = Some("Austin".into());
        s.speed_kmh = Some(100.0 + t);
        s.lap = Some(2);
        s.gear = Some(3);
        s.tyre_wear_pct = Some(Corners::from_array([1.0, 2.0, 3.0, 4.0]));
        s.pit_status = Some(PitStatus::Pitting);
        s.tyre_compound = Some("soft".into());
        s
    }

    /// An official lap of `car` taking `t` seconds (lap 2 has a stop, lap 3 is under FCY).
    pub(crate) fn official_lap(car: &str, lap: u32, t: f64) -> OfficialLapRow {
        OfficialLapRow {
            car_number: car.into(),
            lap,
            lap_time_s: t,
            s1_s: Some(30.0),
            s2_s: None,
            s3_s: Some(40.5),
            pit_in: lap == 2,
            pit_time_s: (lap == 2).then_some(61.25),
            flag: if lap == 3 { "FCY" } else { "GF" }.into(),
            elapsed_s: Some(100.0 * lap as f64),
            kph: Some(140.0),
            top_speed_kmh: None,
            driver_number: Some(1),
            driver_name: Some("A. Driver".into()),
            team: None,
            class: Some("Am".into()),
        }
    }
}
