//! The `session_meta` table: JSON documents attached to a session, one per kind (results,
//! weather, best laps, import report...).

use crate::{Result, Store};
use rusqlite::{params, OptionalExtension};

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
        let sid = self.ensure_session(session, None)?;
        self.conn.execute(
            "INSERT OR REPLACE INTO session_meta (session_id, kind, json) VALUES (?1, ?2, ?3)",
            params![sid, kind, json],
        )?;
        Ok(())
    }

    /// The JSON document of `kind` attached to a session, if any.
    pub fn session_meta(&self, session: &str, kind: &str) -> Result<Option<String>> {
        let sid = self.session_row(session)?;
        Ok(self
            .conn
            .query_row(
                "SELECT json FROM session_meta WHERE session_id = ?1 AND kind = ?2",
                params![sid, kind],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreError};

    #[test]
    fn session_meta_replaces_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        st.ensure_session("r", None).unwrap();
        assert_eq!(st.session_meta("r", "weather").unwrap(), None);
        st.set_session_meta("r", "weather", "[1]").unwrap();
        st.set_session_meta("r", "weather", "[2]").unwrap();
        assert_eq!(
            st.session_meta("r", "weather").unwrap().as_deref(),
            Some("[2]")
        );
        assert!(matches!(
            st.session_meta("x", "weather"),
            Err(StoreError::NoSession(_))
        ));
    }
}
