//! The `lap_events` table: lap boundary events from the `*_lap_start*`, `*_lap_end*` and
//! `*_lap_time*` files.

use crate::{Result, Store};
use rusqlite::params;
use serde::Serialize;

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

impl Store {
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
}

#[cfg(test)]
mod tests {
    use crate::{LapEventRow, Store};

    #[test]
    fn lap_events_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
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
    }
}
