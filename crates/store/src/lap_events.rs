//! The `lap_events` table: lap boundary events from the `*_lap_start*`, `*_lap_end*` and
//! `*_lap_time*` files.

use crate::db::Val;
use crate::{Result, Store};
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

/// An event already stored (same car, source, lap and instant) is replaced.
const UPSERT_EVENT: &str = "INSERT INTO lap_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (session_id, car_number, source, lap, t_s) DO UPDATE SET
      raw_lap = excluded.raw_lap, repaired = excluded.repaired, value = excluded.value";

impl Store {
    /// Stores lap boundary events of a session (created if new) in one transaction; an
    /// event already stored (same car, source, lap and instant) is replaced. Returns the
    /// rows written.
    pub fn write_lap_events(&mut self, session: &str, events: &[LapEventRow]) -> Result<usize> {
        self.retrying(|st| st.write_lap_events_once(session, events))
    }

    fn write_lap_events_once(&mut self, session: &str, events: &[LapEventRow]) -> Result<usize> {
        let sid = self.ensure_session(session, None)?;
        self.transaction(|tx| {
            for e in events {
                tx.exec(
                    UPSERT_EVENT,
                    &[
                        Val::int(sid),
                        Val::text(&e.car_number),
                        Val::text(&e.source),
                        Val::int(e.lap),
                        Val::real(e.t_s),
                        Val::int_opt(e.raw_lap),
                        Val::Bool(e.repaired),
                        e.value.into(),
                    ],
                )?;
            }
            Ok(events.len())
        })
    }

    /// The lap boundary events of a session (all cars, or one), by car, source and time.
    pub fn lap_events(&self, session: &str, car: Option<&str>) -> Result<Vec<LapEventRow>> {
        let sid = self.session_row(session)?;
        self.rows(
            "SELECT car_number, lap, t_s, raw_lap, repaired, value, source FROM lap_events
             WHERE session_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR car_number = ?2)
             ORDER BY car_number, source, t_s",
            &[Val::int(sid), Val::text_opt(car)],
            |r| {
                Ok(LapEventRow {
                    car_number: r.string(0)?,
                    lap: r.int(1)?,
                    t_s: r.f64(2)?,
                    raw_lap: r.int_opt(3)?,
                    repaired: r.bool(4)?,
                    value: r.f64_opt(5)?,
                    source: r.string(6)?,
                })
            },
        )
    }
}
