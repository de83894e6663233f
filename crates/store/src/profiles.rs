//! The `driver_profiles` table: one driver baseline per car and track, replaced as it learns.

use crate::db::Val;
use crate::{Result, Store};

impl Store {
    /// Stores (replaces) a driver's profile on a track.
    pub fn write_profile(
        &mut self,
        car: &str,
        track: &str,
        session: &str,
        json: &str,
    ) -> Result<()> {
        self.retrying(|st| st.write_profile_once(car, track, session, json))
    }

    fn write_profile_once(
        &mut self,
        car: &str,
        track: &str,
        session: &str,
        json: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO driver_profiles (car_key, track, session_key, json)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (car_key, track) DO UPDATE SET session_key = excluded.session_key,
              updated_unix_s = excluded.updated_unix_s, json = excluded.json",
            &[
                Val::text(car),
                Val::text(track),
                Val::text(session),
                Val::text(json),
            ],
        )?;
        Ok(())
    }

    /// A driver's profiles, newest first: (track, session, JSON).
    pub fn profiles(&self, car: &str) -> Result<Vec<(String, String, String)>> {
        self.rows(
            "SELECT track, session_key, json FROM driver_profiles WHERE car_key = ?1
             ORDER BY updated_unix_s DESC",
            &[Val::text(car)],
            |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?)),
        )
    }
}
