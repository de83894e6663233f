//! The `driver_profiles` table: one driver baseline per car and track, replaced as it learns.

use crate::{Result, Store};
use rusqlite::params;

impl Store {
    /// Stores (replaces) a driver's profile on a track.
    pub fn write_profile(
        &mut self,
        car: &str,
        track: &str,
        session: &str,
        json: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO driver_profiles (car_key, track, session_key, json)
             VALUES (?1, ?2, ?3, ?4)",
            params![car, track, session, json],
        )?;
        Ok(())
    }

    /// A driver's profiles, newest first: (track, session, JSON).
    pub fn profiles(&self, car: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT track, session_key, json FROM driver_profiles WHERE car_key = ?1
             ORDER BY updated_unix_s DESC",
        )?;
        let rows = stmt.query_map([car], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn a_profile_is_replaced_per_car_and_track() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        st.write_profile("c1", "Spa", "s", "{\"v\":1}").unwrap();
        st.write_profile("c1", "Spa", "s", "{\"v\":2}").unwrap();
        let p = st.profiles("c1").unwrap();
        assert_eq!(p, vec![("Spa".into(), "s".into(), "{\"v\":2}".into())]);
    }
}
