//! The `session_meta` table: JSON documents attached to a session, one per kind (results,
//! weather, best laps, import report...).

use crate::db::Val;
use crate::{Result, Store};

/// `session_meta` kind of the official results (the classification).
pub const META_RESULTS: &str = "results";

/// `session_meta` kind of provisional results.
pub const META_RESULTS_PROVISIONAL: &str = "results_provisional";

/// `session_meta` kind of the import report (JSON, one entry per file imported).
pub const META_IMPORT_REPORT: &str = "import_report";

impl Store {
    /// Attaches a JSON document of `kind` (`results`, `weather`, `best_laps`...) to a
    /// session (created if new), replacing any earlier one of that kind.
    pub fn set_session_meta(&mut self, session: &str, kind: &str, json: &str) -> Result<()> {
        self.retrying(|st| st.set_session_meta_once(session, kind, json))
    }

    fn set_session_meta_once(&mut self, session: &str, kind: &str, json: &str) -> Result<()> {
        let sid = self.ensure_session(session, None)?;
        self.exec(
            "INSERT INTO session_meta (session_id, kind, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (session_id, kind) DO UPDATE SET json = excluded.json",
            &[Val::int(sid), Val::text(kind), Val::text(json)],
        )?;
        Ok(())
    }

    /// The JSON document of `kind` attached to a session, if any.
    pub fn session_meta(&self, session: &str, kind: &str) -> Result<Option<String>> {
        let sid = self.session_row(session)?;
        self.row_opt(
            "SELECT json FROM session_meta WHERE session_id = ?1 AND kind = ?2",
            &[Val::int(sid), Val::text(kind)],
            |r| r.string(0),
        )
    }
}
