//! The `sessions` and `cars` tables: a session per key, a car per (session, car key) with its
//! sample count and time span, and the listing that joins them with the lap counts.

use crate::db::Val;
use crate::{Result, Store, StoreError};
use serde::Serialize;
use telemetry::Sample;

/// One car of a stored session.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CarInfo {
    pub car_id: String,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
    /// Official timing laps stored for this car (0 without a timing file).
    pub official_laps: u64,
    /// Laps the lap engine cut from this car's telemetry (the `laps` table: live, demo, `sim`),
    /// lap 1 onwards (the grid-to-line stub, lap 0, is not counted).
    pub engine_laps: u64,
}

/// A stored session with its cars.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionInfo {
    pub id: String,
    pub track: Option<String>,
    pub cars: Vec<CarInfo>,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
    /// Official timing laps stored for the session, all cars.
    pub official_laps: u64,
    /// Laps the lap engine cut from the session's telemetry, all cars.
    pub engine_laps: u64,
}

/// Creates the session if new; a given track fills in a missing one (`keep`) or replaces it.
const UPSERT_SESSION_KEEP_TRACK: &str = "INSERT INTO sessions (key, track) VALUES (?1, ?2)
     ON CONFLICT(key) DO UPDATE SET track = COALESCE(sessions.track, excluded.track)";
const UPSERT_SESSION_SET_TRACK: &str = "INSERT INTO sessions (key, track) VALUES (?1, ?2)
     ON CONFLICT(key) DO UPDATE SET track = COALESCE(excluded.track, sessions.track)";
const SESSION_ID: &str = "SELECT id FROM sessions WHERE key = ?1";
pub(crate) const INSERT_CAR: &str =
    "INSERT INTO cars (session_id, car_key) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
const CAR_ID: &str = "SELECT id FROM cars WHERE session_id = ?1 AND car_key = ?2";

impl Store {
    /// The row id of the sample's car, creating its session and car rows if new (cached).
    pub(crate) fn car_row(&mut self, s: &Sample) -> Result<i64> {
        let key = (s.session_id.clone(), s.car_id.clone());
        if let Some(id) = self.car_ids.get(&key) {
            return Ok(*id);
        }
        self.exec(
            UPSERT_SESSION_KEEP_TRACK,
            &[Val::text(&s.session_id), Val::text_opt(s.track.as_deref())],
        )?;
        let session_row = self.session_row(&s.session_id)?;
        self.exec(INSERT_CAR, &[Val::int(session_row), Val::text(&s.car_id)])?;
        let car_row = self
            .row_opt(
                CAR_ID,
                &[Val::int(session_row), Val::text(&s.car_id)],
                |r| r.i64(0),
            )?
            .ok_or_else(|| StoreError::NoSession(s.session_id.to_string()))?;
        self.car_ids.insert(key, car_row);
        Ok(car_row)
    }

    /// Every stored session with its cars, newest first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let mut out: Vec<SessionInfo> = Vec::new();
        self.each_row(
            "SELECT s.key, s.track, c.car_key, c.n_samples, c.first_t_s, c.last_t_s,
                (SELECT COUNT(*) FROM official_laps o
                 WHERE o.session_id = s.id AND o.car_number = c.car_key),
                (SELECT COUNT(*) FROM laps l
                 WHERE l.session_id = s.id AND l.car_key = c.car_key AND l.lap >= 1)
             FROM sessions s LEFT JOIN cars c ON c.session_id = s.id
             ORDER BY s.id DESC, c.car_key",
            &[],
            |r| {
                let key = r.string(0)?;
                if out.last().map(|s| s.id != key).unwrap_or(true) {
                    out.push(SessionInfo {
                        id: key,
                        track: r.str_opt(1)?,
                        cars: Vec::new(),
                        samples: 0,
                        first_t_s: None,
                        last_t_s: None,
                        official_laps: 0,
                        engine_laps: 0,
                    });
                }
                if let (Some(car_id), Some(s)) = (r.str_opt(2)?, out.last_mut()) {
                    let c = CarInfo {
                        car_id,
                        samples: r.count(3)?,
                        first_t_s: r.f64_opt(4)?,
                        last_t_s: r.f64_opt(5)?,
                        official_laps: r.count(6)?,
                        engine_laps: r.count(7)?,
                    };
                    s.samples += c.samples;
                    s.official_laps += c.official_laps;
                    s.engine_laps += c.engine_laps;
                    s.first_t_s = min_opt(s.first_t_s, c.first_t_s);
                    s.last_t_s = max_opt(s.last_t_s, c.last_t_s);
                    s.cars.push(c);
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// One session by id.
    pub fn session(&self, id: &str) -> Result<SessionInfo> {
        self.sessions()?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| StoreError::NoSession(id.to_string()))
    }

    /// Creates the session if it is new (returns its row id). A given `track` replaces the
    /// stored one; `None` keeps it.
    pub fn ensure_session(&mut self, session: &str, track: Option<&str>) -> Result<i64> {
        self.retrying(|st| st.ensure_session_once(session, track))
    }

    fn ensure_session_once(&mut self, session: &str, track: Option<&str>) -> Result<i64> {
        self.exec(
            UPSERT_SESSION_SET_TRACK,
            &[Val::text(session), Val::text_opt(track)],
        )?;
        self.session_row(session)
    }

    /// The row id of a session; [`StoreError::NoSession`] if it is not stored.
    pub(crate) fn session_row(&self, session: &str) -> Result<i64> {
        self.row_opt(SESSION_ID, &[Val::text(session)], |r| r.i64(0))?
            .ok_or_else(|| StoreError::NoSession(session.to_string()))
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
