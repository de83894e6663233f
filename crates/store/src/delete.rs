//! Deleting a session: its cars and samples, laps, official timing, lap events, documents,
//! coaching alerts and the driver profiles it was the last to update, in one transaction.

use crate::db::Val;
use crate::keys::AuditEntry;
use crate::{Result, Store};

impl Store {
    /// Deletes a stored session and everything recorded under it, with the audit entry, in
    /// one transaction. `false`: no such session.
    ///
    /// A session still streaming is created again by its next points (and a store writer that
    /// cached the old car rows would write them under the deleted ids): delete sessions that
    /// have ended.
    pub fn delete_session(&mut self, session: &str, audit: AuditEntry<'_>) -> Result<bool> {
        let deleted = self.retrying(|st| {
            let Some(sid) = st.row_opt(
                "SELECT id FROM sessions WHERE key = ?1",
                &[Val::text(session)],
                |r| r.i64(0),
            )?
            else {
                return Ok(false);
            };
            st.transaction(|tx| {
                let id = [Val::int(sid)];
                tx.exec(
                    "DELETE FROM samples WHERE car_id IN (SELECT id FROM cars WHERE session_id = ?1)",
                    &id,
                )?;
                for table in ["cars", "laps", "official_laps", "lap_events", "session_meta"] {
                    tx.exec(&format!("DELETE FROM {table} WHERE session_id = ?1"), &id)?;
                }
                let key = [Val::text(session)];
                tx.exec("DELETE FROM coaching_alerts WHERE session_key = ?1", &key)?;
                tx.exec("DELETE FROM driver_profiles WHERE session_key = ?1", &key)?;
                tx.exec("DELETE FROM sessions WHERE id = ?1", &id)?;
                super::keys::audit_in(tx, audit)?;
                Ok(true)
            })
        })?;
        if deleted {
            self.car_ids.retain(|(s, _), _| &**s != session);
        }
        Ok(deleted)
    }
}
