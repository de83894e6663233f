//! The `official_laps` table (laps from the official timing files) and the race
//! classification read from the results documents in `session_meta`.

use crate::db::Val;
use crate::sessions::INSERT_CAR;
use crate::{Result, Store, META_RESULTS, META_RESULTS_PROVISIONAL};
use serde::Serialize;

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

/// A lap already stored for the car is replaced.
const UPSERT_OFFICIAL_LAP: &str = "INSERT INTO official_laps VALUES
     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
     ON CONFLICT (session_id, car_number, lap) DO UPDATE SET
      lap_time_s = excluded.lap_time_s, s1_s = excluded.s1_s, s2_s = excluded.s2_s,
      s3_s = excluded.s3_s, pit_in = excluded.pit_in, pit_time_s = excluded.pit_time_s,
      flag = excluded.flag, elapsed_s = excluded.elapsed_s, kph = excluded.kph,
      top_speed_kmh = excluded.top_speed_kmh, driver_number = excluded.driver_number,
      driver_name = excluded.driver_name, team = excluded.team, class = excluded.class";

impl Store {
    /// Stores official timing laps of a session (created if new) in one transaction; a lap
    /// already stored for the same car is replaced. Each car gets a row in the session's cars
    /// (with 0 samples if it has no telemetry), so it is listed by [`Store::sessions`].
    /// Returns the rows written.
    pub fn write_official_laps(&mut self, session: &str, laps: &[OfficialLapRow]) -> Result<usize> {
        self.retrying(|st| st.write_official_laps_once(session, laps))
    }

    fn write_official_laps_once(
        &mut self,
        session: &str,
        laps: &[OfficialLapRow],
    ) -> Result<usize> {
        let sid = self.ensure_session(session, None)?;
        self.transaction(|tx| {
            for l in laps {
                tx.exec(INSERT_CAR, &[Val::int(sid), Val::text(&l.car_number)])?;
                tx.exec(
                    UPSERT_OFFICIAL_LAP,
                    &[
                        Val::int(sid),
                        Val::text(&l.car_number),
                        Val::int(l.lap),
                        Val::real(l.lap_time_s),
                        l.s1_s.into(),
                        l.s2_s.into(),
                        l.s3_s.into(),
                        Val::Bool(l.pit_in),
                        l.pit_time_s.into(),
                        Val::text(&l.flag),
                        l.elapsed_s.into(),
                        l.kph.into(),
                        l.top_speed_kmh.into(),
                        Val::int_opt(l.driver_number),
                        Val::text_opt(l.driver_name.as_deref()),
                        Val::text_opt(l.team.as_deref()),
                        Val::text_opt(l.class.as_deref()),
                    ],
                )?;
            }
            Ok(laps.len())
        })
    }

    /// The official laps of a session (all cars, or one), by car number then lap.
    pub fn official_laps(&self, session: &str, car: Option<&str>) -> Result<Vec<OfficialLapRow>> {
        let sid = self.session_row(session)?;
        self.rows(
            "SELECT car_number, lap, lap_time_s, s1_s, s2_s, s3_s, pit_in, pit_time_s, flag,
                    elapsed_s, kph, top_speed_kmh, driver_number, driver_name, team, class
             FROM official_laps
             WHERE session_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR car_number = ?2)
             ORDER BY car_number, lap",
            &[Val::int(sid), Val::text_opt(car)],
            |r| {
                Ok(OfficialLapRow {
                    car_number: r.string(0)?,
                    lap: r.int(1)?,
                    lap_time_s: r.f64(2)?,
                    s1_s: r.f64_opt(3)?,
                    s2_s: r.f64_opt(4)?,
                    s3_s: r.f64_opt(5)?,
                    pit_in: r.bool(6)?,
                    pit_time_s: r.f64_opt(7)?,
                    flag: r.string(8)?,
                    elapsed_s: r.f64_opt(9)?,
                    kph: r.f64_opt(10)?,
                    top_speed_kmh: r.f64_opt(11)?,
                    driver_number: r.int_opt(12)?,
                    driver_name: r.str_opt(13)?,
                    team: r.str_opt(14)?,
                    class: r.str_opt(15)?,
                })
            },
        )
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
}
