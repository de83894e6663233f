//! The `samples` table: every accepted sample, keyed by (car row, time), so a batch
//! delivered twice is stored once.
//!
//! SQLite inserts row by row (`INSERT OR IGNORE`, one transaction). PostgreSQL copies the
//! batch (binary `COPY`) into a temporary table, locks the batch's cars in id order (two
//! processes writing the same cars wait rather than deadlock), then inserts with `ON CONFLICT
//! DO NOTHING` and updates the cars' counts from what was new, in one statement.

use crate::db::{RowGet, Tx, Val};
use crate::{Result, Store, StoreError};
use postgres::types::Type;
use std::collections::HashMap;
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

/// Columns of the `samples` table.
const SAMPLE_COLUMNS: usize = 31;

const INSERT_SAMPLE: &str = "INSERT OR IGNORE INTO samples VALUES
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
     ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";

const SQLITE_UPDATE_CAR: &str = "UPDATE cars SET n_samples = n_samples + ?2,
    first_t_s = MIN(COALESCE(first_t_s, ?3), ?3),
    last_t_s = MAX(COALESCE(last_t_s, ?4), ?4)
 WHERE id = ?1";

const PG_COPY: &str = "COPY samples_in FROM STDIN (FORMAT binary)";

const PG_LOCK_CARS: &str =
    "SELECT id FROM cars WHERE id IN (SELECT DISTINCT car_id FROM samples_in)
 ORDER BY id FOR UPDATE";

const PG_INSERT_AND_COUNT: &str = "WITH ins AS (
    INSERT INTO samples SELECT * FROM samples_in ORDER BY car_id, t_s
    ON CONFLICT DO NOTHING RETURNING car_id, t_s
), agg AS (
    SELECT car_id, COUNT(*) AS n, MIN(t_s) AS lo, MAX(t_s) AS hi FROM ins GROUP BY car_id
)
UPDATE cars SET n_samples = cars.n_samples + agg.n,
    first_t_s = LEAST(cars.first_t_s, agg.lo),
    last_t_s = GREATEST(cars.last_t_s, agg.hi)
FROM agg WHERE cars.id = agg.car_id
RETURNING agg.n";

/// The row of a sample of car row `car`, in the table's column order.
fn sample_values(car: i64, s: &Sample) -> [Val<'_>; SAMPLE_COLUMNS] {
    let w = s.tyre_wear_pct.map(Corners::to_array);
    let tt = s.tyre_temp_c.map(Corners::to_array);
    [
        Val::int(car),
        Val::real(s.t_s),
        Val::int_opt(s.lap),
        s.lap_dist_m.into(),
        s.speed_kmh.into(),
        s.accx_g.into(),
        s.accy_g.into(),
        s.brake_front_bar.into(),
        s.brake_rear_bar.into(),
        s.throttle_pct.into(),
        s.brake_pct.into(),
        s.steering_deg.into(),
        s.rpm.into(),
        Val::int_opt(s.gear),
        s.lat_deg.into(),
        s.lon_deg.into(),
        Val::int_opt(s.position),
        s.fuel_kg.into(),
        Val::text_opt(s.tyre_compound.as_deref()),
        Val::int_opt(s.tyre_age_laps),
        Val::int_opt(s.pit_status.map(PitStatus::code)),
        w.map(|a| a[0]).into(),
        w.map(|a| a[1]).into(),
        w.map(|a| a[2]).into(),
        w.map(|a| a[3]).into(),
        tt.map(|a| a[0]).into(),
        tt.map(|a| a[1]).into(),
        tt.map(|a| a[2]).into(),
        tt.map(|a| a[3]).into(),
        s.track_temp_c.into(),
        s.air_temp_c.into(),
    ]
}

/// The PostgreSQL types of the `samples` columns (for binary COPY), from the value kinds.
fn pg_types(row: &[Val<'_>]) -> Vec<Type> {
    row.iter()
        .map(|v| match v {
            Val::Int(_) => Type::INT8,
            Val::Real(_) => Type::FLOAT8,
            Val::Text(_) => Type::TEXT,
            Val::Bool(_) => Type::BOOL,
        })
        .collect()
}

impl Store {
    /// A session's row id and track (`NoSession` when it is not stored).
    pub(crate) fn session_row_and_track(&self, session: &str) -> Result<(i64, Option<Arc<str>>)> {
        let (row, track) = self
            .row_opt(
                "SELECT id, track FROM sessions WHERE key = ?1",
                &[Val::text(session)],
                |r| Ok((r.i64(0)?, r.str_opt(1)?)),
            )?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))?;
        Ok((row, track.map(Arc::from)))
    }

    /// Stores a batch in one transaction. Returns how many samples were new (a sample already
    /// stored for the same car and time is left as it was).
    pub fn write_batch(&mut self, samples: &[Sample]) -> Result<usize> {
        self.retrying(|st| st.write_batch_once(samples))
    }

    fn write_batch_once(&mut self, samples: &[Sample]) -> Result<usize> {
        if samples.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(samples.len());
        for s in samples {
            rows.push(self.car_row(s)?);
        }
        self.transaction(|tx| match tx {
            Tx::Sqlite(tx) => sqlite_insert(tx, samples, &rows),
            Tx::Postgres { tx, .. } => pg_copy(tx, samples, &rows),
        })
    }

    /// The samples of a session (all cars, or one), in time order per car, handed to `f`.
    pub fn for_each_sample(
        &self,
        session: &str,
        car: Option<&str>,
        mut f: impl FnMut(Sample),
    ) -> Result<u64> {
        let (session_row, track) = self.session_row_and_track(session)?;
        let session_id: Arc<str> = Arc::from(session);
        let mut car_key: Option<Arc<str>> = None;
        self.each_row(
            "SELECT c.car_key, s.* FROM samples s JOIN cars c ON c.id = s.car_id
             WHERE c.session_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.car_key = ?2)
             ORDER BY s.car_id, s.t_s",
            &[Val::int(session_row), Val::text_opt(car)],
            |r| {
                let key = r.string(0)?;
                let car_id = match &car_key {
                    Some(k) if **k == *key => k.clone(),
                    _ => {
                        let k: Arc<str> = Arc::from(key);
                        car_key = Some(k.clone());
                        k
                    }
                };
                f(sample_of_row(
                    r,
                    1,
                    session_id.clone(),
                    car_id,
                    track.clone(),
                )?);
                Ok(())
            },
        )
    }
}

/// SQLite: one `INSERT OR IGNORE` per sample, then each car's count and span.
fn sqlite_insert(
    tx: &mut rusqlite::Transaction<'_>,
    samples: &[Sample],
    rows: &[i64],
) -> Result<usize> {
    let mut inserted = 0usize;
    // per car: (new samples, min t, max t)
    let mut per_car: HashMap<i64, (u64, f64, f64)> = HashMap::new();
    let mut ins = tx.prepare_cached(INSERT_SAMPLE)?;
    let mut upd = tx.prepare_cached(SQLITE_UPDATE_CAR)?;
    for (s, &car) in samples.iter().zip(rows) {
        if ins.execute(rusqlite::params_from_iter(sample_values(car, s)))? > 0 {
            inserted += 1;
            let e = per_car.entry(car).or_insert((0, s.t_s, s.t_s));
            e.0 += 1;
            e.1 = e.1.min(s.t_s);
            e.2 = e.2.max(s.t_s);
        }
    }
    for (car, (n, lo, hi)) in per_car {
        upd.execute(rusqlite::params_from_iter([
            Val::int(car),
            Val::int(n as i64),
            Val::real(lo),
            Val::real(hi),
        ]))?;
    }
    Ok(inserted)
}

/// PostgreSQL: binary COPY into `samples_in`, lock the cars, insert what is new and count it.
fn pg_copy(tx: &mut postgres::Transaction<'_>, samples: &[Sample], rows: &[i64]) -> Result<usize> {
    // Sorted by key, so that processes inserting the same samples take them in one order.
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| {
        rows[a]
            .cmp(&rows[b])
            .then(samples[a].t_s.total_cmp(&samples[b].t_s))
    });
    let types = pg_types(&sample_values(0, &samples[0]));
    let mut w = postgres::binary_copy::BinaryCopyInWriter::new(tx.copy_in(PG_COPY)?, &types);
    for i in order {
        let v = sample_values(rows[i], &samples[i]);
        w.write(&crate::db::pg_params(&v))?;
    }
    w.finish()?;
    tx.execute(PG_LOCK_CARS, &[])?;
    let mut inserted = 0i64;
    for r in tx.query(PG_INSERT_AND_COUNT, &[])? {
        inserted += r.try_get::<_, i64>(0)?;
    }
    Ok(inserted.max(0) as usize)
}

/// The sample of a row whose `s.t_s` column is at index `base + 1` (`SELECT s.*`: base 0;
/// `SELECT c.car_key, s.*`: base 1).
pub(crate) fn sample_of_row(
    r: &dyn RowGet,
    base: usize,
    session_id: Arc<str>,
    car_id: Arc<str>,
    track: Option<Arc<str>>,
) -> Result<Sample> {
    let c = |k: usize| base + k;
    let mut s = Sample::new(session_id, car_id, r.f64(c(1))?);
    s.track = track;
    s.lap = r.int_opt(c(2))?;
    s.lap_dist_m = r.f64_opt(c(3))?;
    s.speed_kmh = r.f64_opt(c(4))?;
    s.accx_g = r.f64_opt(c(5))?;
    s.accy_g = r.f64_opt(c(6))?;
    s.brake_front_bar = r.f64_opt(c(7))?;
    s.brake_rear_bar = r.f64_opt(c(8))?;
    s.throttle_pct = r.f64_opt(c(9))?;
    s.brake_pct = r.f64_opt(c(10))?;
    s.steering_deg = r.f64_opt(c(11))?;
    s.rpm = r.f64_opt(c(12))?;
    s.gear = r.int_opt(c(13))?;
    s.lat_deg = r.f64_opt(c(14))?;
    s.lon_deg = r.f64_opt(c(15))?;
    s.position = r.int_opt(c(16))?;
    s.fuel_kg = r.f64_opt(c(17))?;
    s.tyre_compound = r.str_opt(c(18))?.map(Arc::from);
    s.tyre_age_laps = r.int_opt(c(19))?;
    s.pit_status = r.int_opt::<u8>(c(20))?.and_then(PitStatus::from_code);
    s.tyre_wear_pct = r.corners(c(21))?;
    s.tyre_temp_c = r.corners(c(25))?;
    s.track_temp_c = r.f64_opt(c(29))?;
    s.air_temp_c = r.f64_opt(c(30))?;
    Ok(s)
}
