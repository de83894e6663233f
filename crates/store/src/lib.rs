//! The embedded store: one SQLite file (WAL mode) under the data directory holding sessions,
//! cars and every accepted sample. Writes come in batches, one transaction each; a sample is
//! keyed by (car, time), so a batch delivered twice is stored once (at-least-once delivery).
//!
//! The store is synchronous; the server runs it on a thread of its own.
//!
//! One module per table, each with its row types and the [`Store`] methods that read and
//! write it: `sessions` (sessions and cars), `samples`, `laps` (engine-cut laps), `official`
//! (official timing laps and the classification), `lap_events`, `meta` (`session_meta`),
//! `profiles` (`driver_profiles`), `alerts` (`coaching_alerts`); `schema` holds the
//! migrations. Everything public is re-exported here, at the crate root.

mod alerts;
mod by_time;
mod lap_events;
mod laps;
mod meta;
mod official;
mod profiles;
mod samples;
mod schema;
mod sessions;

pub use alerts::AlertRow;
pub use lap_events::LapEventRow;
pub use laps::LapRow;
pub use meta::{META_IMPORT_REPORT, META_RESULTS, META_RESULTS_PROVISIONAL};
pub use official::{ClassifiedCar, OfficialLapRow};
pub use sessions::{CarInfo, SessionInfo};

use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use telemetry::Corners;

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
    #[error("store schema version {found} is newer than this binary understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("no session {0}")]
    NoSession(String),
}

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The store. Not `Sync`: own it from one thread.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// (session key, car key) -> car row id, so a batch looks each car up once.
    car_ids: HashMap<(Arc<str>, Arc<str>), i64>,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir`.
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
            conn,
            path,
            car_ids: HashMap::new(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cheap liveness check (for `/ready`).
    pub fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Checkpoints the WAL into the main file (on clean shutdown).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Reads four columns from `first` on as tyre corners (FL, FR, RL, RR); `None` unless all four
/// are set. Shared by the `samples` and `laps` tables.
fn corners(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<Corners<f64>>> {
    let v: [Option<f64>; 4] = [
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
    ];
    Ok(match v {
        [Some(a), Some(b), Some(c), Some(d)] => Some(Corners::from_array([a, b, c, d])),
        _ => None,
    })
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
