//! The `official_laps` table (laps from the official timing files) and the race
//! classification read from the results documents in `session_meta`.

use crate::{Result, Store, META_RESULTS, META_RESULTS_PROVISIONAL};
use rusqlite::params;
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

impl Store {
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

#[cfg(test)]
mod tests {
    use crate::test_util::{official_lap as lap, sample};
    use crate::{Store, META_RESULTS, META_RESULTS_PROVISIONAL};

    #[test]
    fn official_laps_are_stored_once_and_counted_per_car() {
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
    }

    #[test]
    fn classification_prefers_official_results_and_sorts_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        st.ensure_session("r", None).unwrap();
        assert_eq!(st.classification("r").unwrap(), None);
        st.set_session_meta(
            "r",
            META_RESULTS_PROVISIONAL,
            r#"[{"car_number":"7","position":2},{"car_number":"9","car_id":"9#2","position":1}]"#,
        )
        .unwrap();
        let prov = st.classification("r").unwrap().unwrap();
        let ids: Vec<_> = prov
            .iter()
            .map(|c| (c.car_id.as_str(), c.provisional))
            .collect();
        assert_eq!(ids, vec![("9#2", true), ("7", true)]);
        st.set_session_meta(
            "r",
            META_RESULTS,
            r#"[{"car_number":"5"},{"car_number":"7","position":1,"laps":20,"status":"Classified","total_time_s":1800.5},{"position":2}]"#,
        )
        .unwrap();
        let cars = st.classification("r").unwrap().unwrap();
        assert_eq!(cars.len(), 2, "a row without a car number is skipped");
        assert_eq!(cars[0].car_id, "7");
        assert_eq!(cars[0].laps, Some(20));
        assert_eq!(cars[0].status.as_deref(), Some("Classified"));
        assert_eq!(cars[0].total_time_s, Some(1800.5));
        assert!(!cars[0].provisional);
        assert_eq!((cars[1].car_id.as_str(), cars[1].position), ("5", None));
    }
}
