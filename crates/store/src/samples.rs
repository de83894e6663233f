//! The `samples` table: every accepted sample, keyed by (car row, time), so a batch
//! delivered twice is stored once.

use crate::{corners, Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

const INSERT_SAMPLE: &str = "INSERT OR IGNORE INTO samples VALUES
    (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
     ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)";

impl Store {
    /// A session's row id and track (`NoSession` when it is not stored).
    pub(crate) fn session_row_and_track(&self, session: &str) -> Result<(i64, Option<Arc<str>>)> {
        let (row, track): (i64, Option<String>) = self
            .conn
            .query_row(
                "SELECT id, track FROM sessions WHERE key = ?1",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))?;
        Ok((row, track.map(Arc::from)))
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

    /// The samples of a session (all cars, or one), in time order per car, handed to `f`.
    pub fn for_each_sample(
        &self,
        session: &str,
        car: Option<&str>,
        mut f: impl FnMut(Sample),
    ) -> Result<u64> {
        let (session_row, track) = self.session_row_and_track(session)?;
        let session_id: Arc<str> = Arc::from(session);
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
}

/// The sample of a row whose `s.t_s` column is at index `base + 1` (`SELECT s.*`: base 0;
/// `SELECT c.car_key, s.*`: base 1).
pub(crate) fn sample_of_row(
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
    use crate::test_util::sample;
    use crate::{Store, StoreError};

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
