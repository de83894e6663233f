//! The embedded store: one SQLite file (WAL mode) under the data directory holding sessions,
//! cars and every accepted sample. Writes come in batches, one transaction each; a sample is
//! keyed by (car, time), so a batch delivered twice is stored once (at-least-once delivery).
//!
//! The store is synchronous; the server runs it on a thread of its own.

mod by_time;

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

pub type Result<T> = std::result::Result<T, StoreError>;

/// One car of a stored session.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CarInfo {
    pub car_id: String,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
    /// Official timing laps stored for this car (0 without a timing file).
    pub official_laps: u64,
    /// Laps the lap engine cut from this car's telemetry (the `laps` table: live, demo, `sim`),
    /// lap 1 onwards (the grid-to-line stub, lap 0, is not counted).
    pub engine_laps: u64,
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
    /// Official timing laps stored for the session, all cars.
    pub official_laps: u64,
    /// Laps the lap engine cut from the session's telemetry, all cars.
    pub engine_laps: u64,
}

/// One car of a race's classification (see [`Store::classification`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassifiedCar {
    /// The car's id in the session, as in `official_laps` (`3`, `3-Legends`, `3#2`).
    pub car_id: String,
    /// The number as the results file wrote it.
    pub car_number: String,
    /// Finishing position (`None` when the file gave none).
    pub position: Option<u32>,
    /// Laps completed.
    pub laps: Option<u32>,
    /// `Classified`, `DNF`... as written.
    pub status: Option<String>,
    pub total_time_s: Option<f64>,
    /// From a provisional results file (no official one was imported).
    pub provisional: bool,
}

/// `session_meta` kind of the official results (the classification).
pub const META_RESULTS: &str = "results";
/// `session_meta` kind of provisional results.
pub const META_RESULTS_PROVISIONAL: &str = "results_provisional";
/// `session_meta` kind of the import report (JSON, one entry per file imported).
pub const META_IMPORT_REPORT: &str = "import_report";

/// One lap of one car from an official timing file (`23_AnalysisEnduranceWithSections_*`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OfficialLapRow {
    /// The car number label as written (`021` and `21` are different cars).
    pub car_number: String,
    pub lap: u32,
    pub lap_time_s: f64,
    pub s1_s: Option<f64>,
    pub s2_s: Option<f64>,
    pub s3_s: Option<f64>,
    /// The car crossed the line in the pit lane (pit-in lap).
    pub pit_in: bool,
    /// Time in the pit lane, seconds, when the lap has a stop.
    pub pit_time_s: Option<f64>,
    /// Flag at the finish line: `GF`, `FCY`, `FF` or `other`.
    pub flag: String,
    /// Race time at the end of the lap, seconds.
    pub elapsed_s: Option<f64>,
    /// Average speed of the lap, km/h.
    pub kph: Option<f64>,
    pub top_speed_kmh: Option<f64>,
    pub driver_number: Option<u32>,
    pub driver_name: Option<String>,
    pub team: Option<String>,
    pub class: Option<String>,
}

/// One lap boundary event of one car (from a `*_lap_start*`, `*_lap_end*` or `*_lap_time*`
/// file). Which of the three a file is cannot be told from its header; `source` keeps the
/// file name it came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LapEventRow {
    pub car_number: String,
    pub lap: u32,
    /// The instant, Unix seconds of the car's clock.
    pub t_s: f64,
    /// The lap number as the file wrote it (`None` when empty).
    pub raw_lap: Option<u32>,
    /// Whether `lap` was repaired from the order of events.
    pub repaired: bool,
    /// The file's undocumented `value` column, where present.
    pub value: Option<f64>,
    /// Where the event came from (the file name).
    pub source: String,
}

const SCHEMA_VERSION: i64 = 4;

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

/// Official laps, lap boundary events and per-session documents (results, weather, best laps).
const MIGRATION_2: &str = "
CREATE TABLE official_laps (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    car_number TEXT NOT NULL,
    lap INTEGER NOT NULL,
    lap_time_s REAL NOT NULL,
    s1_s REAL, s2_s REAL, s3_s REAL,
    pit_in INTEGER NOT NULL DEFAULT 0,
    pit_time_s REAL,
    flag TEXT NOT NULL,
    elapsed_s REAL, kph REAL, top_speed_kmh REAL,
    driver_number INTEGER, driver_name TEXT, team TEXT, class TEXT,
    PRIMARY KEY (session_id, car_number, lap)
) WITHOUT ROWID;
CREATE TABLE lap_events (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    car_number TEXT NOT NULL,
    source TEXT NOT NULL,
    lap INTEGER NOT NULL,
    t_s REAL NOT NULL,
    raw_lap INTEGER,
    repaired INTEGER NOT NULL DEFAULT 0,
    value REAL,
    PRIMARY KEY (session_id, car_number, source, lap, t_s)
) WITHOUT ROWID;
CREATE TABLE session_meta (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    kind TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (session_id, kind)
) WITHOUT ROWID;
";

/// Laps cut by the lap engine from telemetry (live or replayed), with their features, gaps and
/// the insight sent for them.
const MIGRATION_3: &str = "
CREATE TABLE laps (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    car_key TEXT NOT NULL,
    lap INTEGER NOT NULL,
    lap_time_s REAL, s1_s REAL, s2_s REAL, s3_s REAL,
    out_lap INTEGER NOT NULL, pit INTEGER NOT NULL, safety_car INTEGER NOT NULL,
    incomplete INTEGER NOT NULL,
    position INTEGER, t_start_s REAL NOT NULL, t_end_s REAL NOT NULL,
    tyre_age_laps INTEGER NOT NULL, tyre_compound TEXT, fuel_kg REAL,
    tyre_wear_fl_pct REAL, tyre_wear_fr_pct REAL, tyre_wear_rl_pct REAL, tyre_wear_rr_pct REAL,
    features_json TEXT NOT NULL, gaps_json TEXT, insight_json TEXT,
    PRIMARY KEY (session_id, car_key, lap)
) WITHOUT ROWID;
";

/// Drivers' baselines (one per car and track, replaced as it learns) and the coaching alerts
/// they raised.
const MIGRATION_4: &str = "
CREATE TABLE driver_profiles (
    car_key TEXT NOT NULL,
    track TEXT NOT NULL,
    session_key TEXT NOT NULL,
    updated_unix_s REAL NOT NULL DEFAULT (unixepoch('subsec')),
    json TEXT NOT NULL,
    PRIMARY KEY (car_key, track)
) WITHOUT ROWID;
CREATE TABLE coaching_alerts (
    id INTEGER PRIMARY KEY,
    session_key TEXT NOT NULL,
    car_key TEXT NOT NULL,
    lap INTEGER NOT NULL,
    t_s REAL NOT NULL,
    corner INTEGER NOT NULL,
    metric TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (session_key, car_key, t_s, corner, metric)
);
CREATE INDEX coaching_alerts_car ON coaching_alerts (car_key, id);
";

/// A stored coaching alert.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRow {
    pub session_id: String,
    pub car_id: String,
    pub lap: u32,
    pub t_s: f64,
    pub corner: u32,
    pub metric: String,
    /// The alert as sent (`coach::CoachingAlert`).
    pub json: String,
}

/// One lap of one car cut from telemetry by the lap engine. The features, gaps and insight are
/// JSON documents (their shapes belong to the `laps` and `tires` crates).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LapRow {
    pub car_id: String,
    pub lap: u32,
    pub lap_time_s: Option<f64>,
    pub sector_times_s: [Option<f64>; 3],
    pub out_lap: bool,
    pub pit: bool,
    pub safety_car: bool,
    pub incomplete: bool,
    pub position: Option<u32>,
    pub t_start_s: f64,
    pub t_end_s: f64,
    pub tyre_age_laps: u32,
    pub tyre_compound: Option<String>,
    pub fuel_kg: Option<f64>,
    /// Tyre wear at the end of the lap as the source reported it (ground truth where known).
    pub tyre_wear_pct: Option<Corners<f64>>,
    pub features_json: String,
    pub gaps_json: Option<String>,
    pub insight_json: Option<String>,
}

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
        if version < 2 {
            conn.execute_batch(&format!(
                "BEGIN; {MIGRATION_2} PRAGMA user_version = 2; COMMIT;"
            ))?;
        }
        if version < 3 {
            conn.execute_batch(&format!(
                "BEGIN; {MIGRATION_3} PRAGMA user_version = 3; COMMIT;"
            ))?;
        }
        if version < 4 {
            conn.execute_batch(&format!(
                "BEGIN; {MIGRATION_4} PRAGMA user_version = 4; COMMIT;"
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
            "SELECT s.key, s.track, c.car_key, c.n_samples, c.first_t_s, c.last_t_s,
                (SELECT COUNT(*) FROM official_laps o
                 WHERE o.session_id = s.id AND o.car_number = c.car_key),
                (SELECT COUNT(*) FROM laps l
                 WHERE l.session_id = s.id AND l.car_key = c.car_key AND l.lap >= 1)
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
                    official_laps: 0,
                    engine_laps: 0,
                });
            }
            let car: Option<String> = r.get(2)?;
            if let (Some(car_id), Some(s)) = (car, out.last_mut()) {
                let c = CarInfo {
                    car_id,
                    samples: r.get::<_, i64>(3)?.max(0) as u64,
                    first_t_s: r.get(4)?,
                    last_t_s: r.get(5)?,
                    official_laps: r.get::<_, i64>(6)?.max(0) as u64,
                    engine_laps: r.get::<_, i64>(7)?.max(0) as u64,
                };
                s.samples += c.samples;
                s.official_laps += c.official_laps;
                s.engine_laps += c.engine_laps;
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
            let s = sample_of_row(r, 1, session_id.clone(), car_id, track.clone())?;
            f(s);
            n += 1;
        }
        Ok(n)
    }

    /// Creates the session if it is new (returns its row id). A given `track` replaces the
    /// stored one; `None` keeps it.
    pub fn ensure_session(&mut self, session: &str, track: Option<&str>) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO sessions (key, track) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET track = COALESCE(excluded.track, sessions.track)",
            params![session, track],
        )?;
        Ok(self
            .conn
            .query_row("SELECT id FROM sessions WHERE key = ?1", [session], |r| {
                r.get(0)
            })?)
    }

    fn session_row(&self, session: &str) -> Result<i64> {
        self.conn
            .query_row("SELECT id FROM sessions WHERE key = ?1", [session], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))
    }

    /// Stores official timing laps of a session (created if new) in one transaction; a lap
    /// already stored for the same car is replaced. Each car gets a row in the session's cars
    /// (with 0 samples if it has no telemetry), so it is listed by [`Store::sessions`].
    /// Returns the rows written.
    pub fn write_official_laps(&mut self, session: &str, laps: &[OfficialLapRow]) -> Result<usize> {
        let sid = self.ensure_session(session, None)?;
        let tx = self.conn.transaction()?;
        {
            let mut car = tx.prepare_cached(
                "INSERT OR IGNORE INTO cars (session_id, car_key) VALUES (?1, ?2)",
            )?;
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO official_laps VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            for l in laps {
                car.execute(params![sid, l.car_number])?;
                ins.execute(params![
                    sid,
                    l.car_number,
                    l.lap,
                    l.lap_time_s,
                    l.s1_s,
                    l.s2_s,
                    l.s3_s,
                    l.pit_in,
                    l.pit_time_s,
                    l.flag,
                    l.elapsed_s,
                    l.kph,
                    l.top_speed_kmh,
                    l.driver_number,
                    l.driver_name,
                    l.team,
                    l.class,
                ])?;
            }
        }
        tx.commit()?;
        Ok(laps.len())
    }

    /// The official laps of a session (all cars, or one), by car number then lap.
    pub fn official_laps(&self, session: &str, car: Option<&str>) -> Result<Vec<OfficialLapRow>> {
        let sid = self.session_row(session)?;
        let mut stmt = self.conn.prepare(
            "SELECT car_number, lap, lap_time_s, s1_s, s2_s, s3_s, pit_in, pit_time_s, flag,
                    elapsed_s, kph, top_speed_kmh, driver_number, driver_name, team, class
             FROM official_laps WHERE session_id = ?1 AND (?2 IS NULL OR car_number = ?2)
             ORDER BY car_number, lap",
        )?;
        let rows = stmt.query_map(params![sid, car], |r| {
            Ok(OfficialLapRow {
                car_number: r.get(0)?,
                lap: r.get(1)?,
                lap_time_s: r.get(2)?,
                s1_s: r.get(3)?,
                s2_s: r.get(4)?,
                s3_s: r.get(5)?,
                pit_in: r.get(6)?,
                pit_time_s: r.get(7)?,
                flag: r.get(8)?,
                elapsed_s: r.get(9)?,
                kph: r.get(10)?,
                top_speed_kmh: r.get(11)?,
                driver_number: r.get(12)?,
                driver_name: r.get(13)?,
                team: r.get(14)?,
                class: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores lap boundary events of a session (created if new) in one transaction; an
    /// event already stored (same car, source, lap and instant) is replaced. Returns the
    /// rows written.
    pub fn write_lap_events(&mut self, session: &str, events: &[LapEventRow]) -> Result<usize> {
        let sid = self.ensure_session(session, None)?;
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO lap_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in events {
                ins.execute(params![
                    sid,
                    e.car_number,
                    e.source,
                    e.lap,
                    e.t_s,
                    e.raw_lap,
                    e.repaired,
                    e.value
                ])?;
            }
        }
        tx.commit()?;
        Ok(events.len())
    }

    /// The lap boundary events of a session (all cars, or one), by car, source and time.
    pub fn lap_events(&self, session: &str, car: Option<&str>) -> Result<Vec<LapEventRow>> {
        let sid = self.session_row(session)?;
        let mut stmt = self.conn.prepare(
            "SELECT car_number, lap, t_s, raw_lap, repaired, value, source FROM lap_events
             WHERE session_id = ?1 AND (?2 IS NULL OR car_number = ?2)
             ORDER BY car_number, source, t_s",
        )?;
        let rows = stmt.query_map(params![sid, car], |r| {
            Ok(LapEventRow {
                car_number: r.get(0)?,
                lap: r.get(1)?,
                t_s: r.get(2)?,
                raw_lap: r.get(3)?,
                repaired: r.get(4)?,
                value: r.get(5)?,
                source: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Attaches a JSON document of `kind` (`results`, `weather`, `best_laps`...) to a
    /// session (created if new), replacing any earlier one of that kind.
    pub fn set_session_meta(&mut self, session: &str, kind: &str, json: &str) -> Result<()> {
        let sid = self.ensure_session(session, None)?;
        self.conn.execute(
            "INSERT OR REPLACE INTO session_meta (session_id, kind, json) VALUES (?1, ?2, ?3)",
            params![sid, kind, json],
        )?;
        Ok(())
    }

    /// The race's classification: the official results when imported (`session_meta` kind
    /// `results`), else the provisional ones (`results_provisional`), sorted by position
    /// (cars without one last, in file order). `Ok(None)` when neither was imported.
    /// Car ids match `official_laps` (one number on two cars gives two ids).
    pub fn classification(&self, session: &str) -> Result<Option<Vec<ClassifiedCar>>> {
        let (json, provisional) = match self.session_meta(session, META_RESULTS)? {
            Some(j) => (j, false),
            None => match self.session_meta(session, META_RESULTS_PROVISIONAL)? {
                Some(j) => (j, true),
                None => return Ok(None),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let u32_of = |x: &serde_json::Value| x.as_u64().and_then(|n| u32::try_from(n).ok());
        let str_of = |x: &serde_json::Value| x.as_str().map(str::to_string);
        let mut cars: Vec<ClassifiedCar> = v
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let car_number = str_of(&r["car_number"])?;
                Some(ClassifiedCar {
                    car_id: str_of(&r["car_id"]).unwrap_or_else(|| car_number.clone()),
                    car_number,
                    position: u32_of(&r["position"]),
                    laps: u32_of(&r["laps"]),
                    status: str_of(&r["status"]),
                    total_time_s: r["total_time_s"].as_f64(),
                    provisional,
                })
            })
            .collect();
        cars.sort_by_key(|c| c.position.unwrap_or(u32::MAX));
        Ok(Some(cars))
    }

    /// The JSON document of `kind` attached to a session, if any.
    pub fn session_meta(&self, session: &str, kind: &str) -> Result<Option<String>> {
        let sid = self.session_row(session)?;
        Ok(self
            .conn
            .query_row(
                "SELECT json FROM session_meta WHERE session_id = ?1 AND kind = ?2",
                params![sid, kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores laps of a session (created if new) in one transaction; a lap already stored for
    /// the same car is replaced, so delivering a lap twice stores it once.
    pub fn write_laps(
        &mut self,
        session: &str,
        track: Option<&str>,
        laps: &[LapRow],
    ) -> Result<usize> {
        let sid = self.ensure_session(session, track)?;
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO laps VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            )?;
            for l in laps {
                let w = l.tyre_wear_pct.map(|c| c.to_array());
                ins.execute(params![
                    sid,
                    l.car_id,
                    l.lap,
                    l.lap_time_s,
                    l.sector_times_s[0],
                    l.sector_times_s[1],
                    l.sector_times_s[2],
                    l.out_lap,
                    l.pit,
                    l.safety_car,
                    l.incomplete,
                    l.position,
                    l.t_start_s,
                    l.t_end_s,
                    l.tyre_age_laps,
                    l.tyre_compound,
                    l.fuel_kg,
                    w.map(|a| a[0]),
                    w.map(|a| a[1]),
                    w.map(|a| a[2]),
                    w.map(|a| a[3]),
                    l.features_json,
                    l.gaps_json,
                    l.insight_json,
                ])?;
            }
        }
        tx.commit()?;
        Ok(laps.len())
    }

    /// The engine-cut laps of a session (all cars, or one), by car then lap.
    pub fn laps(&self, session: &str, car: Option<&str>) -> Result<Vec<LapRow>> {
        let sid = self.session_row(session)?;
        let mut stmt = self.conn.prepare(
            "SELECT car_key, lap, lap_time_s, s1_s, s2_s, s3_s, out_lap, pit, safety_car,
                    incomplete, position, t_start_s, t_end_s, tyre_age_laps, tyre_compound,
                    fuel_kg, tyre_wear_fl_pct, tyre_wear_fr_pct, tyre_wear_rl_pct,
                    tyre_wear_rr_pct, features_json, gaps_json, insight_json
             FROM laps WHERE session_id = ?1 AND (?2 IS NULL OR car_key = ?2)
             ORDER BY car_key, lap",
        )?;
        let rows = stmt.query_map(params![sid, car], |r| {
            Ok(LapRow {
                car_id: r.get(0)?,
                lap: r.get(1)?,
                lap_time_s: r.get(2)?,
                sector_times_s: [r.get(3)?, r.get(4)?, r.get(5)?],
                out_lap: r.get(6)?,
                pit: r.get(7)?,
                safety_car: r.get(8)?,
                incomplete: r.get(9)?,
                position: r.get(10)?,
                t_start_s: r.get(11)?,
                t_end_s: r.get(12)?,
                tyre_age_laps: r.get(13)?,
                tyre_compound: r.get(14)?,
                fuel_kg: r.get(15)?,
                tyre_wear_pct: corners(r, 16)?,
                features_json: r.get(20)?,
                gaps_json: r.get(21)?,
                insight_json: r.get(22)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores (replaces) a driver's profile on a track.
    pub fn write_profile(
        &mut self,
        car: &str,
        track: &str,
        session: &str,
        json: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO driver_profiles (car_key, track, session_key, json)
             VALUES (?1, ?2, ?3, ?4)",
            params![car, track, session, json],
        )?;
        Ok(())
    }

    /// A driver's profiles, newest first: (track, session, JSON).
    pub fn profiles(&self, car: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT track, session_key, json FROM driver_profiles WHERE car_key = ?1
             ORDER BY updated_unix_s DESC",
        )?;
        let rows = stmt.query_map([car], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores coaching alerts (an alert already stored is kept once).
    pub fn write_alerts(&mut self, alerts: &[AlertRow]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO coaching_alerts
                 (session_key, car_key, lap, t_s, corner, metric, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for a in alerts {
                ins.execute(params![
                    a.session_id,
                    a.car_id,
                    a.lap,
                    a.t_s,
                    a.corner,
                    a.metric,
                    a.json
                ])?;
            }
        }
        tx.commit()?;
        Ok(alerts.len())
    }

    /// A driver's latest `limit` alerts, newest first.
    pub fn alerts(&self, car: &str, limit: usize) -> Result<Vec<AlertRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT session_key, car_key, lap, t_s, corner, metric, json FROM coaching_alerts
             WHERE car_key = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![car, limit as i64], |r| {
            Ok(AlertRow {
                session_id: r.get(0)?,
                car_id: r.get(1)?,
                lap: r.get(2)?,
                t_s: r.get(3)?,
                corner: r.get(4)?,
                metric: r.get(5)?,
                json: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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

/// The sample of a `SELECT c.car_key, s.* ...` row whose `s.t_s` column is `base + 1`.
fn sample_of_row(
    r: &rusqlite::Row<'_>,
    base: usize,
    session_id: Arc<str>,
    car_id: Arc<str>,
    track: Option<Arc<str>>,
) -> rusqlite::Result<Sample> {
    let c = |k: usize| base + k;
    let mut s = Sample::new(session_id, car_id, r.get(c(1))?);
    s.track = track;
    s.lap = r.get(c(2))?;
    s.lap_dist_m = r.get(c(3))?;
    s.speed_kmh = r.get(c(4))?;
    s.accx_g = r.get(c(5))?;
    s.accy_g = r.get(c(6))?;
    s.brake_front_bar = r.get(c(7))?;
    s.brake_rear_bar = r.get(c(8))?;
    s.throttle_pct = r.get(c(9))?;
    s.brake_pct = r.get(c(10))?;
    s.steering_deg = r.get(c(11))?;
    s.rpm = r.get(c(12))?;
    s.gear = r.get(c(13))?;
    s.lat_deg = r.get(c(14))?;
    s.lon_deg = r.get(c(15))?;
    s.position = r.get(c(16))?;
    s.fuel_kg = r.get(c(17))?;
    s.tyre_compound = r.get::<_, Option<String>>(c(18))?.map(Arc::from);
    s.tyre_age_laps = r.get(c(19))?;
    s.pit_status = r
        .get::<_, Option<u8>>(c(20))?
        .and_then(PitStatus::from_code);
    s.tyre_wear_pct = corners(r, c(21))?;
    s.tyre_temp_c = corners(r, c(25))?;
    s.track_temp_c = r.get(c(29))?;
    s.air_temp_c = r.get(c(30))?;
    Ok(s)
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

    fn lap(car: &str, lap: u32, t: f64) -> OfficialLapRow {
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

    #[test]
    fn official_laps_meta_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        st.write_batch(&[sample("r", "21", 1.0)]).unwrap();
        let laps = vec![
            lap("21", 1, 99.5),
            lap("021", 1, 101.0),
            lap("021", 2, 120.0),
            lap("021", 3, 130.0),
        ];
        assert_eq!(st.write_official_laps("r", &laps).unwrap(), 4);
        // Idempotent: the same laps again replace, not add.
        st.write_official_laps("r", &laps).unwrap();
        let back = st.official_laps("r", None).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[0], laps[1]);
        assert_eq!(
            st.official_laps("r", Some("021")).unwrap(),
            laps[1..].to_vec()
        );
        let s = st.session("r").unwrap();
        assert_eq!(s.official_laps, 4);
        assert_eq!(s.samples, 1);
        let cars: Vec<_> = s
            .cars
            .iter()
            .map(|c| (c.car_id.as_str(), c.samples, c.official_laps))
            .collect();
        assert_eq!(cars, vec![("021", 0, 3), ("21", 1, 1)]);

        assert_eq!(st.session_meta("r", "weather").unwrap(), None);
        st.set_session_meta("r", "weather", "[1]").unwrap();
        st.set_session_meta("r", "weather", "[2]").unwrap();
        assert_eq!(
            st.session_meta("r", "weather").unwrap().as_deref(),
            Some("[2]")
        );
        assert!(matches!(
            st.session_meta("x", "weather"),
            Err(StoreError::NoSession(_))
        ));

        let ev = LapEventRow {
            car_number: "7".into(),
            lap: 3,
            t_s: 10.0,
            raw_lap: Some(32768),
            repaired: true,
            value: None,
            source: "lap_end.csv".into(),
        };
        st.write_lap_events("r", std::slice::from_ref(&ev)).unwrap();
        assert_eq!(st.lap_events("r", Some("7")).unwrap(), vec![ev]);

        st.ensure_session("r", Some("Barber")).unwrap();
        assert_eq!(st.session("r").unwrap().track.as_deref(), Some("Barber"));
    }

    #[test]
    fn migrates_a_version_1_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(&format!("{MIGRATION_1} PRAGMA user_version = 1;"))
                .unwrap();
        }
        let mut st = Store::open(dir.path()).unwrap();
        st.write_batch(&[sample("old", "a", 1.0)]).unwrap();
        st.write_official_laps("old", &[lap("a", 1, 90.0)]).unwrap();
        assert_eq!(st.session("old").unwrap().cars[0].official_laps, 1);
        let v: i64 = st
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn laps_profiles_and_alerts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        let row = LapRow {
            car_id: "c1".into(),
            lap: 3,
            lap_time_s: Some(92.5),
            sector_times_s: [Some(30.0), None, Some(31.0)],
            out_lap: false,
            pit: true,
            safety_car: false,
            incomplete: false,
            position: Some(2),
            t_start_s: 100.0,
            t_end_s: 192.5,
            tyre_age_laps: 3,
            tyre_compound: Some("medium".into()),
            fuel_kg: None,
            tyre_wear_pct: Some(Corners::from_array([1.0, 2.0, 3.0, 4.0])),
            features_json: "{\"x\":1}".into(),
            gaps_json: None,
            insight_json: Some("{}".into()),
        };
        st.write_laps("s", Some("Spa"), std::slice::from_ref(&row))
            .unwrap();
        // Delivered twice: stored once (idempotent on session, car, lap).
        st.write_laps("s", Some("Spa"), std::slice::from_ref(&row))
            .unwrap();
        assert_eq!(st.laps("s", None).unwrap(), vec![row.clone()]);
        assert!(st.laps("s", Some("other")).unwrap().is_empty());
        assert!(matches!(
            st.laps("nope", None),
            Err(StoreError::NoSession(_))
        ));

        st.write_profile("c1", "Spa", "s", "{\"v\":1}").unwrap();
        st.write_profile("c1", "Spa", "s", "{\"v\":2}").unwrap();
        let p = st.profiles("c1").unwrap();
        assert_eq!(p, vec![("Spa".into(), "s".into(), "{\"v\":2}".into())]);

        let a = AlertRow {
            session_id: "s".into(),
            car_id: "c1".into(),
            lap: 7,
            t_s: 700.0,
            corner: 3,
            metric: "brake_point_m".into(),
            json: "{}".into(),
        };
        st.write_alerts(&[a.clone(), a.clone()]).unwrap();
        assert_eq!(st.alerts("c1", 10).unwrap(), vec![a]);
        assert!(st.alerts("c2", 10).unwrap().is_empty());
    }
}
