//! The `coaching_alerts` table: the coaching alerts the drivers' baselines raised.

use crate::{Result, Store};
use rusqlite::params;
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
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO coaching_alerts
                 (session_key, car_key, lap, t_s, corner, metric, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for a in alerts {
                ins.execute(params![
                    a.session_id,
                    a.car_id,
                    a.lap,
                    a.t_s,
                    a.corner,
                    a.metric,
                    a.json
                ])?;
            }
        }
        tx.commit()?;
        Ok(alerts.len())
    }

    /// A driver's latest `limit` alerts, newest first.
    pub fn alerts(&self, car: &str, limit: usize) -> Result<Vec<AlertRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT session_key, car_key, lap, t_s, corner, metric, json FROM coaching_alerts
             WHERE car_key = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![car, limit as i64], |r| {
            Ok(AlertRow {
                session_id: r.get(0)?,
                car_id: r.get(1)?,
                lap: r.get(2)?,
                t_s: r.get(3)?,
                corner: r.get(4)?,
                metric: r.get(5)?,
                json: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{AlertRow, Store};

    #[test]
    fn an_alert_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        let a = AlertRow {
            session_id: "s".into(),
            car_id: "c1".into(),
            lap: 7,
            t_s: 700.0,
            corner: 3,
            metric: "brake_point_m".into(),
            json: "{}".into(),
        };
        st.write_alerts(&[a.clone(), a.clone()]).unwrap();
        assert_eq!(st.alerts("c1", 10).unwrap(), vec![a]);
        assert!(st.alerts("c2", 10).unwrap().is_empty());
    }
}
