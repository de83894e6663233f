//! The embedded store: one SQLite file (WAL mode) under the data directory holding sessions,
//! cars and every accepted sample. Writes come in batches, one transaction each; a sample is
//! keyed by (car, time), so a batch delivered twice is stored once (at-least-once delivery).
//!
//! The store is synchronous; the server runs it on a thread of its own.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

/// The file name of the store inside the data directory.
pub const DB_FILE: &str = "pitwall.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store schema version {found} is newer than this binary understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("no session {0}")]
    NoSession(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One car of a stored session.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CarInfo {
    pub car_id: String,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
}

/// A stored session with its cars.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionInfo {
    pub id: String,
    pub track: Option<String>,
    pub cars: Vec<CarInfo>,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
}

const SCHEMA_VERSION: i64 = 1;

const MIGRATION_1: &str = "
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    track TEXT,
    created_unix_s REAL NOT NULL DEFAULT (unixepoch('subsec'))
);
CREATE TABLE cars (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    car_key TEXT NOT NULL,
    n_samples INTEGER NOT NULL DEFAULT 0,
    first_t_s REAL,
    last_t_s REAL,
    UNIQUE (session_id, car_key)
);
CREATE TABLE samples (
    car_id INTEGER NOT NULL,
    t_s REAL NOT NULL,
    lap INTEGER, lap_dist_m REAL, speed_kmh REAL, accx_g REAL, accy_g REAL,
    brake_front_bar REAL, brake_rear_bar REAL, throttle_pct REAL, brake_pct REAL,
    steering_deg REAL, rpm REAL, gear INTEGER, lat_deg REAL, lon_deg REAL,
    position INTEGER, fuel_kg REAL, tyre_compound TEXT, tyre_age_laps INTEGER, pit_status INTEGER,
    tyre_wear_fl_pct REAL, tyre_wear_fr_pct REAL, tyre_wear_rl_pct REAL, tyre_wear_rr_pct REAL,
    tyre_temp_fl_c REAL, tyre_temp_fr_c REAL, tyre_temp_rl_c REAL, tyre_temp_rr_c REAL,
    track_temp_c REAL, air_temp_c REAL,
    PRIMARY KEY (car_id, t_s)
) WITHOUT ROWID;
";

const INSERT_SAMPLE: &str = "INSERT OR IGNORE INTO samples VALUES
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
     ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";

/// The store. Not `Sync`: own it from one thread.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// (session key, car key) -> (session row id, car row id)
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
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            conn.execute_batch(&format!(
                "BEGIN; {MIGRATION_1} PRAGMA user_version = 1; COMMIT;"
            ))?;
        }
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

    fn car_row(&mut self, s: &Sample) -> Result<i64> {
        let key = (s.session_id.clone(), s.car_id.clone());
        if let Some(id) = self.car_ids.get(&key) {
            return Ok(*id);
        }
        self.conn.execute(
            "INSERT INTO sessions (key, track) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET track = COALESCE(sessions.track, excluded.track)",
            params![&*s.session_id, s.track.as_deref()],
        )?;
        let session_row: i64 = self.conn.query_row(
            "SELECT id FROM sessions WHERE key = ?1",
            [&*s.session_id],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT OR IGNORE INTO cars (session_id, car_key) VALUES (?1, ?2)",
            params![session_row, &*s.car_id],
        )?;
        let car_row: i64 = self.conn.query_row(
            "SELECT id FROM cars WHERE session_id = ?1 AND car_key = ?2",
            params![session_row, &*s.car_id],
            |r| r.get(0),
        )?;
        self.car_ids.insert(key, car_row);
        Ok(car_row)
    }

    /// Stores a batch in one transaction. Returns how many samples were new (a sample already
    /// stored for the same car and time is left as it was).
    pub fn write_batch(&mut self, samples: &[Sample]) -> Result<usize> {
        if samples.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(samples.len());
        for s in samples {
            rows.push(self.car_row(s)?);
        }
        let tx = self.conn.transaction()?;
        let mut inserted = 0usize;
        // per car: (new samples, min t, max t)
        let mut per_car: HashMap<i64, (u64, f64, f64)> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(INSERT_SAMPLE)?;
            for (s, car) in samples.iter().zip(rows) {
                let w = s.tyre_wear_pct.map(Corners::to_array);
                let tt = s.tyre_temp_c.map(Corners::to_array);
                let n = stmt.execute(params![
                    car,
                    s.t_s,
                    s.lap,
                    s.lap_dist_m,
                    s.speed_kmh,
                    s.accx_g,
                    s.accy_g,
                    s.brake_front_bar,
                    s.brake_rear_bar,
                    s.throttle_pct,
                    s.brake_pct,
                    s.steering_deg,
                    s.rpm,
                    s.gear,
                    s.lat_deg,
                    s.lon_deg,
                    s.position,
                    s.fuel_kg,
                    s.tyre_compound.as_deref(),
                    s.tyre_age_laps,
                    s.pit_status.map(PitStatus::code),
                    w.map(|a| a[0]),
                    w.map(|a| a[1]),
                    w.map(|a| a[2]),
                    w.map(|a| a[3]),
                    tt.map(|a| a[0]),
                    tt.map(|a| a[1]),
                    tt.map(|a| a[2]),
                    tt.map(|a| a[3]),
                    s.track_temp_c,
                    s.air_temp_c,
                ])?;
                if n > 0 {
                    inserted += n;
                    let e = per_car.entry(car).or_insert((0, s.t_s, s.t_s));
                    e.0 += 1;
                    e.1 = e.1.min(s.t_s);
                    e.2 = e.2.max(s.t_s);
                }
            }
            let mut upd = tx.prepare_cached(
                "UPDATE cars SET n_samples = n_samples + ?2,
                    first_t_s = MIN(COALESCE(first_t_s, ?3), ?3),
                    last_t_s = MAX(COALESCE(last_t_s, ?4), ?4)
                 WHERE id = ?1",
            )?;
            for (car, (n, lo, hi)) in per_car {
                upd.execute(params![car, n as i64, lo, hi])?;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// Every stored session with its cars, newest first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.key, s.track, c.car_key, c.n_samples, c.first_t_s, c.last_t_s
             FROM sessions s LEFT JOIN cars c ON c.session_id = s.id
             ORDER BY s.id DESC, c.car_key",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<SessionInfo> = Vec::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            if out.last().map(|s| s.id != key).unwrap_or(true) {
                out.push(SessionInfo {
                    id: key,
                    track: r.get(1)?,
                    cars: Vec::new(),
                    samples: 0,
                    first_t_s: None,
                    last_t_s: None,
                });
            }
            let car: Option<String> = r.get(2)?;
            if let (Some(car_id), Some(s)) = (car, out.last_mut()) {
                let c = CarInfo {
                    car_id,
                    samples: r.get::<_, i64>(3)?.max(0) as u64,
                    first_t_s: r.get(4)?,
                    last_t_s: r.get(5)?,
                };
                s.samples += c.samples;
                s.first_t_s = min_opt(s.first_t_s, c.first_t_s);
                s.last_t_s = max_opt(s.last_t_s, c.last_t_s);
                s.cars.push(c);
            }
        }
        Ok(out)
    }

    /// One session by id.
    pub fn session(&self, id: &str) -> Result<SessionInfo> {
        self.sessions()?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| StoreError::NoSession(id.to_string()))
    }

    /// The samples of a session (all cars, or one), in time order per car, handed to `f`.
    pub fn for_each_sample(
        &self,
        session: &str,
        car: Option<&str>,
        mut f: impl FnMut(Sample),
    ) -> Result<u64> {
        let (session_row, track): (i64, Option<String>) = self
            .conn
            .query_row(
                "SELECT id, track FROM sessions WHERE key = ?1",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))?;
        let session_id: Arc<str> = Arc::from(session);
        let track: Option<Arc<str>> = track.map(Arc::from);
        let mut stmt = self.conn.prepare(
            "SELECT c.car_key, s.* FROM samples s JOIN cars c ON c.id = s.car_id
             WHERE c.session_id = ?1 AND (?2 IS NULL OR c.car_key = ?2)
             ORDER BY s.car_id, s.t_s",
        )?;
        let mut rows = stmt.query(params![session_row, car])?;
        let mut n = 0u64;
        let mut car_key: Option<Arc<str>> = None;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let car_id = match &car_key {
                Some(k) if **k == *key => k.clone(),
                _ => {
                    let k: Arc<str> = Arc::from(key);
                    car_key = Some(k.clone());
                    k
                }
            };
            let mut s = Sample::new(session_id.clone(), car_id, r.get(2)?);
            s.track = track.clone();
            s.lap = r.get(3)?;
            s.lap_dist_m = r.get(4)?;
            s.speed_kmh = r.get(5)?;
            s.accx_g = r.get(6)?;
            s.accy_g = r.get(7)?;
            s.brake_front_bar = r.get(8)?;
            s.brake_rear_bar = r.get(9)?;
            s.throttle_pct = r.get(10)?;
            s.brake_pct = r.get(11)?;
            s.steering_deg = r.get(12)?;
            s.rpm = r.get(13)?;
            s.gear = r.get(14)?;
            s.lat_deg = r.get(15)?;
            s.lon_deg = r.get(16)?;
            s.position = r.get(17)?;
            s.fuel_kg = r.get(18)?;
            s.tyre_compound = r.get::<_, Option<String>>(19)?.map(Arc::from);
            s.tyre_age_laps = r.get(20)?;
            s.pit_status = r.get::<_, Option<u8>>(21)?.and_then(PitStatus::from_code);
            s.tyre_wear_pct = corners(r, 22)?;
            s.tyre_temp_c = corners(r, 26)?;
            s.track_temp_c = r.get(30)?;
            s.air_temp_c = r.get(31)?;
            f(s);
            n += 1;
        }
        Ok(n)
    }

    /// Checkpoints the WAL into the main file (on clean shutdown).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

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

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(session: &str, car: &str, t: f64) -> Sample {
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

    #[test]
    fn write_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut st = Store::open(dir.path()).unwrap();
            let batch: Vec<_> = (0..10)
                .map(|i| sample("race1", if i % 2 == 0 { "a" } else { "b" }, i as f64))
                .collect();
            assert_eq!(st.write_batch(&batch).unwrap(), 10);
            // Redelivery of the same batch stores nothing new.
            assert_eq!(st.write_batch(&batch).unwrap(), 0);
        }
        let st = Store::open(dir.path()).unwrap();
        let ss = st.sessions().unwrap();
        assert_eq!(ss.len(), 1);
        assert_eq!(ss[0].id, "race1");
        assert_eq!(ss[0].track.as_deref(), Some("Austin"));
        assert_eq!(ss[0].samples, 10);
        assert_eq!(ss[0].cars.len(), 2);
        assert_eq!(ss[0].cars[0].samples, 5);
        assert_eq!(ss[0].cars[0].first_t_s, Some(0.0));
        assert_eq!(ss[0].cars[1].last_t_s, Some(9.0));
        let mut back = Vec::new();
        st.for_each_sample("race1", Some("a"), |s| back.push(s))
            .unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back[1], sample("race1", "a", 2.0));
        assert!(matches!(
            st.for_each_sample("nope", None, |_| {}),
            Err(StoreError::NoSession(_))
        ));
    }
}
