//! The schema: one migration per store version, applied in order on open, written for each
//! backend. SQLite: `PRAGMA user_version` records the version a file is at. PostgreSQL: the
//! table `pitwall_schema_version` of the store's schema does (see `pg::migrate`). A store
//! newer than this binary is refused.
//!
//! The PostgreSQL tables mirror the SQLite ones column for column (same names, same order:
//! `SELECT s.*` reads samples the same way on both): INTEGER becomes BIGINT, REAL becomes
//! DOUBLE PRECISION, the 0/1 flags BOOLEAN, and key text columns use the "C" collation so
//! that rows sort bytewise, as in SQLite.

use crate::{Result, StoreError};
use rusqlite::{Connection, Transaction, TransactionBehavior};

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

/// Access control: deployment secrets (the API keys' HMAC key), API keys (a keyed hash of
/// each, never the key) and the audit log of admin actions.
const MIGRATION_5: &str = "
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_unix_s REAL NOT NULL,
    revoked_unix_s REAL
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at_unix_s REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
";

/// The migrations in order: `MIGRATIONS[i]` takes a store from version `i` to `i + 1`.
const MIGRATIONS: [&str; 5] = [
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
];

const PG_MIGRATION_1: &str = r#"
CREATE TABLE sessions (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key TEXT COLLATE "C" NOT NULL UNIQUE,
    track TEXT,
    created_unix_s DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp())
);
CREATE TABLE cars (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    car_key TEXT COLLATE "C" NOT NULL,
    n_samples BIGINT NOT NULL DEFAULT 0,
    first_t_s DOUBLE PRECISION,
    last_t_s DOUBLE PRECISION,
    UNIQUE (session_id, car_key)
);
CREATE TABLE samples (
    car_id BIGINT NOT NULL,
    t_s DOUBLE PRECISION NOT NULL,
    lap BIGINT, lap_dist_m DOUBLE PRECISION, speed_kmh DOUBLE PRECISION,
    accx_g DOUBLE PRECISION, accy_g DOUBLE PRECISION,
    brake_front_bar DOUBLE PRECISION, brake_rear_bar DOUBLE PRECISION,
    throttle_pct DOUBLE PRECISION, brake_pct DOUBLE PRECISION,
    steering_deg DOUBLE PRECISION, rpm DOUBLE PRECISION, gear BIGINT,
    lat_deg DOUBLE PRECISION, lon_deg DOUBLE PRECISION,
    position BIGINT, fuel_kg DOUBLE PRECISION, tyre_compound TEXT, tyre_age_laps BIGINT,
    pit_status BIGINT,
    tyre_wear_fl_pct DOUBLE PRECISION, tyre_wear_fr_pct DOUBLE PRECISION,
    tyre_wear_rl_pct DOUBLE PRECISION, tyre_wear_rr_pct DOUBLE PRECISION,
    tyre_temp_fl_c DOUBLE PRECISION, tyre_temp_fr_c DOUBLE PRECISION,
    tyre_temp_rl_c DOUBLE PRECISION, tyre_temp_rr_c DOUBLE PRECISION,
    track_temp_c DOUBLE PRECISION, air_temp_c DOUBLE PRECISION,
    PRIMARY KEY (car_id, t_s)
);
"#;

const PG_MIGRATION_2: &str = r#"
CREATE TABLE official_laps (
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    car_number TEXT COLLATE "C" NOT NULL,
    lap BIGINT NOT NULL,
    lap_time_s DOUBLE PRECISION NOT NULL,
    s1_s DOUBLE PRECISION, s2_s DOUBLE PRECISION, s3_s DOUBLE PRECISION,
    pit_in BOOLEAN NOT NULL DEFAULT FALSE,
    pit_time_s DOUBLE PRECISION,
    flag TEXT NOT NULL,
    elapsed_s DOUBLE PRECISION, kph DOUBLE PRECISION, top_speed_kmh DOUBLE PRECISION,
    driver_number BIGINT, driver_name TEXT, team TEXT, class TEXT,
    PRIMARY KEY (session_id, car_number, lap)
);
CREATE TABLE lap_events (
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    car_number TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    lap BIGINT NOT NULL,
    t_s DOUBLE PRECISION NOT NULL,
    raw_lap BIGINT,
    repaired BOOLEAN NOT NULL DEFAULT FALSE,
    value DOUBLE PRECISION,
    PRIMARY KEY (session_id, car_number, source, lap, t_s)
);
CREATE TABLE session_meta (
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    kind TEXT COLLATE "C" NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (session_id, kind)
);
"#;

const PG_MIGRATION_3: &str = r#"
CREATE TABLE laps (
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    car_key TEXT COLLATE "C" NOT NULL,
    lap BIGINT NOT NULL,
    lap_time_s DOUBLE PRECISION,
    s1_s DOUBLE PRECISION, s2_s DOUBLE PRECISION, s3_s DOUBLE PRECISION,
    out_lap BOOLEAN NOT NULL, pit BOOLEAN NOT NULL, safety_car BOOLEAN NOT NULL,
    incomplete BOOLEAN NOT NULL,
    position BIGINT, t_start_s DOUBLE PRECISION NOT NULL, t_end_s DOUBLE PRECISION NOT NULL,
    tyre_age_laps BIGINT NOT NULL, tyre_compound TEXT, fuel_kg DOUBLE PRECISION,
    tyre_wear_fl_pct DOUBLE PRECISION, tyre_wear_fr_pct DOUBLE PRECISION,
    tyre_wear_rl_pct DOUBLE PRECISION, tyre_wear_rr_pct DOUBLE PRECISION,
    features_json TEXT NOT NULL, gaps_json TEXT, insight_json TEXT,
    PRIMARY KEY (session_id, car_key, lap)
);
"#;

const PG_MIGRATION_4: &str = r#"
CREATE TABLE driver_profiles (
    car_key TEXT COLLATE "C" NOT NULL,
    track TEXT COLLATE "C" NOT NULL,
    session_key TEXT NOT NULL,
    updated_unix_s DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
    json TEXT NOT NULL,
    PRIMARY KEY (car_key, track)
);
CREATE TABLE coaching_alerts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    session_key TEXT NOT NULL,
    car_key TEXT COLLATE "C" NOT NULL,
    lap BIGINT NOT NULL,
    t_s DOUBLE PRECISION NOT NULL,
    corner BIGINT NOT NULL,
    metric TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (session_key, car_key, t_s, corner, metric)
);
CREATE INDEX coaching_alerts_car ON coaching_alerts (car_key, id);
"#;

const PG_MIGRATION_5: &str = r#"
CREATE TABLE secrets (
    name TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT,
    role TEXT NOT NULL,
    hash TEXT COLLATE "C" NOT NULL UNIQUE,
    created_unix_s DOUBLE PRECISION NOT NULL,
    revoked_unix_s DOUBLE PRECISION
);
CREATE TABLE audit_log (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_unix_s DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
"#;

/// The PostgreSQL migrations, version for version the same as [`MIGRATIONS`].
pub(crate) const PG_MIGRATIONS: [&str; 5] = [
    PG_MIGRATION_1,
    PG_MIGRATION_2,
    PG_MIGRATION_3,
    PG_MIGRATION_4,
    PG_MIGRATION_5,
];

/// The store version this binary writes (the number of migrations).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store behind `conn` to [`SCHEMA_VERSION`], one transaction per migration, so a
/// failure leaves the file at the last version fully applied. Each transaction takes the write
/// lock before it reads the version, so processes opening a new file together migrate it once.
/// Errors with [`StoreError::SchemaTooNew`] on a file written by a newer binary.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let version = user_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    for (to, sql) in (1i64..).zip(MIGRATIONS) {
        if version < to {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            if user_version(&tx)? < to {
                tx.execute_batch(&format!("{sql} PRAGMA user_version = {to};"))?;
            }
            tx.commit()?;
        }
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
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
        let crate::db::Backend::Sqlite(conn) = &st.backend else {
            panic!("a SQLite store");
        };
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }
}
