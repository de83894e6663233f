//! The schema: one migration per store version, applied in order on open. `PRAGMA
//! user_version` records the version a file is at; a file newer than this binary is refused.

use crate::{Result, StoreError};
use rusqlite::Connection;

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

/// The migrations in order: `MIGRATIONS[i]` takes a store from version `i` to `i + 1`.
const MIGRATIONS: [&str; 4] = [MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4];

/// The store version this binary writes (the number of migrations).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store behind `conn` to [`SCHEMA_VERSION`], one transaction per migration, so a
/// failure leaves the file at the last version fully applied. Errors with
/// [`StoreError::SchemaTooNew`] on a file written by a newer binary.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    for (to, sql) in (1i64..).zip(MIGRATIONS) {
        if version < to {
            conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {to}; COMMIT;"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{official_lap, sample};
    use crate::{Store, DB_FILE};

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
        st.write_official_laps("old", &[official_lap("a", 1, 90.0)])
            .unwrap();
        assert_eq!(st.session("old").unwrap().cars[0].official_laps, 1);
        let v: i64 = st
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
