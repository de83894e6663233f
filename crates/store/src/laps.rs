//! The `laps` table: laps cut from telemetry by the lap engine, with their features, gaps and
//! insight as JSON documents.

use crate::{corners, Result, Store};
use rusqlite::params;
use serde::Serialize;
use telemetry::Corners;

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

impl Store {
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
}

#[cfg(test)]
mod tests {
    use crate::{LapRow, Store, StoreError};
    use telemetry::Corners;

    #[test]
    fn laps_round_trip_once() {
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
    }
}
