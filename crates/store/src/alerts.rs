//! The `coaching_alerts` table: the coaching alerts the drivers' baselines raised.

use crate::db::Val;
use crate::{Result, Store};
use serde::Serialize;

/// A stored coaching alert.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRow {
    pub session_id: String,
    pub car_id: String,
    pub lap: u32,
    pub t_s: f64,
    pub corner: u32,
    pub metric: String,
    /// The alert as sent (`coach::CoachingAlert`).
    pub json: String,
}

impl Store {
    /// Stores coaching alerts (an alert already stored is kept once).
    pub fn write_alerts(&mut self, alerts: &[AlertRow]) -> Result<usize> {
        self.retrying(|st| st.write_alerts_once(alerts))
    }

    fn write_alerts_once(&mut self, alerts: &[AlertRow]) -> Result<usize> {
        self.transaction(|tx| {
            for a in alerts {
                tx.exec(
                    "INSERT INTO coaching_alerts
                     (session_key, car_key, lap, t_s, corner, metric, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                    &[
                        Val::text(&a.session_id),
                        Val::text(&a.car_id),
                        Val::int(a.lap),
                        Val::real(a.t_s),
                        Val::int(a.corner),
                        Val::text(&a.metric),
                        Val::text(&a.json),
                    ],
                )?;
            }
            Ok(alerts.len())
        })
    }

    /// A driver's latest `limit` alerts, newest first.
    pub fn alerts(&self, car: &str, limit: usize) -> Result<Vec<AlertRow>> {
        self.rows(
            "SELECT session_key, car_key, lap, t_s, corner, metric, json FROM coaching_alerts
             WHERE car_key = ?1 ORDER BY id DESC LIMIT ?2",
            &[
                Val::text(car),
                Val::int(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
            |r| {
                Ok(AlertRow {
                    session_id: r.string(0)?,
                    car_id: r.string(1)?,
                    lap: r.int(2)?,
                    t_s: r.f64(3)?,
                    corner: r.int(4)?,
                    metric: r.string(5)?,
                    json: r.string(6)?,
                })
            },
        )
    }
}
