//! The `laps` table: laps cut from telemetry by the lap engine, with their features, gaps and
//! insight as JSON documents.

use crate::db::Val;
use crate::{Result, Store};
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

/// A lap already stored for the car is replaced.
const UPSERT_LAP: &str = "INSERT INTO laps VALUES
     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
      ?18, ?19, ?20, ?21, ?22, ?23, ?24)
     ON CONFLICT (session_id, car_key, lap) DO UPDATE SET
      lap_time_s = excluded.lap_time_s, s1_s = excluded.s1_s, s2_s = excluded.s2_s,
      s3_s = excluded.s3_s, out_lap = excluded.out_lap, pit = excluded.pit,
      safety_car = excluded.safety_car, incomplete = excluded.incomplete,
      position = excluded.position, t_start_s = excluded.t_start_s, t_end_s = excluded.t_end_s,
      tyre_age_laps = excluded.tyre_age_laps, tyre_compound = excluded.tyre_compound,
      fuel_kg = excluded.fuel_kg, tyre_wear_fl_pct = excluded.tyre_wear_fl_pct,
      tyre_wear_fr_pct = excluded.tyre_wear_fr_pct, tyre_wear_rl_pct = excluded.tyre_wear_rl_pct,
      tyre_wear_rr_pct = excluded.tyre_wear_rr_pct, features_json = excluded.features_json,
      gaps_json = excluded.gaps_json, insight_json = excluded.insight_json";

impl Store {
    /// Stores laps of a session (created if new) in one transaction; a lap already stored for
    /// the same car is replaced, so delivering a lap twice stores it once.
    pub fn write_laps(
        &mut self,
        session: &str,
        track: Option<&str>,
        laps: &[LapRow],
    ) -> Result<usize> {
        self.retrying(|st| st.write_laps_once(session, track, laps))
    }

    fn write_laps_once(
        &mut self,
        session: &str,
        track: Option<&str>,
        laps: &[LapRow],
    ) -> Result<usize> {
        let sid = self.ensure_session(session, track)?;
        self.transaction(|tx| {
            for l in laps {
                let w = l.tyre_wear_pct.map(|c| c.to_array());
                tx.exec(
                    UPSERT_LAP,
                    &[
                        Val::int(sid),
                        Val::text(&l.car_id),
                        Val::int(l.lap),
                        l.lap_time_s.into(),
                        l.sector_times_s[0].into(),
                        l.sector_times_s[1].into(),
                        l.sector_times_s[2].into(),
                        Val::Bool(l.out_lap),
                        Val::Bool(l.pit),
                        Val::Bool(l.safety_car),
                        Val::Bool(l.incomplete),
                        Val::int_opt(l.position),
                        Val::real(l.t_start_s),
                        Val::real(l.t_end_s),
                        Val::int(l.tyre_age_laps),
                        Val::text_opt(l.tyre_compound.as_deref()),
                        l.fuel_kg.into(),
                        w.map(|a| a[0]).into(),
                        w.map(|a| a[1]).into(),
                        w.map(|a| a[2]).into(),
                        w.map(|a| a[3]).into(),
                        Val::text(&l.features_json),
                        Val::text_opt(l.gaps_json.as_deref()),
                        Val::text_opt(l.insight_json.as_deref()),
                    ],
                )?;
            }
            Ok(laps.len())
        })
    }

    /// The engine-cut laps of a session (all cars, or one), by car then lap.
    pub fn laps(&self, session: &str, car: Option<&str>) -> Result<Vec<LapRow>> {
        let sid = self.session_row(session)?;
        self.rows(
            "SELECT car_key, lap, lap_time_s, s1_s, s2_s, s3_s, out_lap, pit, safety_car,
                    incomplete, position, t_start_s, t_end_s, tyre_age_laps, tyre_compound,
                    fuel_kg, tyre_wear_fl_pct, tyre_wear_fr_pct, tyre_wear_rl_pct,
                    tyre_wear_rr_pct, features_json, gaps_json, insight_json
             FROM laps WHERE session_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR car_key = ?2)
             ORDER BY car_key, lap",
            &[Val::int(sid), Val::text_opt(car)],
            |r| {
                Ok(LapRow {
                    car_id: r.string(0)?,
                    lap: r.int(1)?,
                    lap_time_s: r.f64_opt(2)?,
                    sector_times_s: [r.f64_opt(3)?, r.f64_opt(4)?, r.f64_opt(5)?],
                    out_lap: r.bool(6)?,
                    pit: r.bool(7)?,
                    safety_car: r.bool(8)?,
                    incomplete: r.bool(9)?,
                    position: r.int_opt(10)?,
                    t_start_s: r.f64(11)?,
                    t_end_s: r.f64(12)?,
                    tyre_age_laps: r.int(13)?,
                    tyre_compound: r.str_opt(14)?,
                    fuel_kg: r.f64_opt(15)?,
                    tyre_wear_pct: r.corners(16)?,
                    features_json: r.string(20)?,
                    gaps_json: r.str_opt(21)?,
                    insight_json: r.str_opt(22)?,
                })
            },
        )
    }
}
