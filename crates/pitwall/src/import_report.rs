//! The import report: per file, rows read, what was stored, rejections by reason and the
//! notes (numbers split into two cars...), plus a check of each car's laps against the
//! results' `LAPS`. Printed by `pitwall import`, stored as `session_meta` kind
//! `import_report` (JSON) and served at `GET /api/sessions/{id}/import_report`.

use grcup::FileKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use store::Store;

/// What one file gave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileReport {
    /// File name (no directory).
    pub file: String,
    /// The kind recognised from the header.
    pub kind: String,
    /// Data rows read.
    pub rows_read: u64,
    /// Records stored (samples, laps, lap events, result lines...).
    pub stored: u64,
    /// Telemetry: instants built (samples before validation).
    pub instants: Option<u64>,
    /// Cars in the file.
    pub cars: u64,
    /// Timing and lap files: laps (lap events) stored.
    pub laps: Option<u64>,
    /// Rows (or built samples) not stored, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Decisions worth knowing (split numbers, repaired laps, ignored channels...).
    pub notes: Vec<String>,
}

impl FileReport {
    pub fn new(path: &Path, kind: FileKind) -> Self {
        FileReport {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            kind: kind.to_string(),
            rows_read: 0,
            stored: 0,
            instants: None,
            cars: 0,
            laps: None,
            rejected: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
    pub fn add_rejects(&mut self, r: &grcup::Rejects) {
        for (reason, n) in &r.by_reason {
            *self.rejected.entry(reason.to_string()).or_default() += n;
        }
    }
    pub fn not_stored(&mut self, reason: &str, n: u64) {
        *self.rejected.entry(reason.to_string()).or_default() += n;
    }
}

/// One car whose timing laps differ from its results `LAPS`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LapMismatch {
    pub car_id: String,
    pub timing_laps: u64,
    pub results_laps: Option<u32>,
}

/// The whole report of one session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportReport {
    pub session: String,
    pub files: Vec<FileReport>,
    /// Cars of the classification checked against the timing laps (0 without both files).
    pub lap_check_cars: u64,
    /// Cars whose timing laps differ from the results' `LAPS`.
    pub lap_mismatches: Vec<LapMismatch>,
}

/// The report of this import merged with the session's earlier one (a file imported again
/// replaces its entry), with the lap check over what the session now holds.
pub fn build(store: &Store, session: &str, files: Vec<FileReport>) -> anyhow::Result<ImportReport> {
    let mut all: Vec<FileReport> = store
        .session_meta(session, store::META_IMPORT_REPORT)?
        .and_then(|j| serde_json::from_str::<ImportReport>(&j).ok())
        .map(|r| r.files)
        .unwrap_or_default();
    for f in files {
        all.retain(|o| o.file != f.file);
        all.push(f);
    }
    let mut lap_check_cars = 0;
    let mut lap_mismatches = Vec::new();
    let laps = store.official_laps(session, None)?;
    if !laps.is_empty() {
        let mut per_car: BTreeMap<&str, u64> = BTreeMap::new();
        for l in &laps {
            *per_car.entry(l.car_number.as_str()).or_default() += 1;
        }
        if let Some(class) = store.classification(session)? {
            for c in &class {
                lap_check_cars += 1;
                let timing = per_car.get(c.car_id.as_str()).copied().unwrap_or(0);
                if c.laps.map(u64::from) != Some(timing) {
                    lap_mismatches.push(LapMismatch {
                        car_id: c.car_id.clone(),
                        timing_laps: timing,
                        results_laps: c.laps,
                    });
                }
            }
        }
    }
    Ok(ImportReport {
        session: session.to_string(),
        files: all,
        lap_check_cars,
        lap_mismatches,
    })
}

/// Prints the report as a table (stdout is kept for the session id: this goes to stderr).
pub fn print(r: &ImportReport) {
    eprintln!();
    eprintln!("import report, session {}", r.session);
    eprintln!(
        "{:<58} {:<22} {:>9} {:>9} {:>9} {:>5} {:>6}  rejected",
        "file", "kind", "rows", "stored", "instants", "cars", "laps"
    );
    for f in &r.files {
        let name: String = if f.file.chars().count() > 58 {
            f.file.chars().take(57).chain(['…']).collect()
        } else {
            f.file.clone()
        };
        let rejected = if f.rejected.is_empty() {
            "0".to_string()
        } else {
            f.rejected
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let opt = |o: Option<u64>| o.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        eprintln!(
            "{:<58} {:<22} {:>9} {:>9} {:>9} {:>5} {:>6}  {}",
            name,
            f.kind,
            f.rows_read,
            f.stored,
            opt(f.instants),
            f.cars,
            opt(f.laps),
            rejected
        );
        for n in &f.notes {
            eprintln!("    note: {n}");
        }
    }
    if r.lap_check_cars > 0 {
        if r.lap_mismatches.is_empty() {
            eprintln!(
                "laps: every car's timing laps equal the results' LAPS ({} cars)",
                r.lap_check_cars
            );
        } else {
            for m in &r.lap_mismatches {
                eprintln!(
                    "laps: car {} has {} timing laps, results say {:?}",
                    m.car_id, m.timing_laps, m.results_laps
                );
            }
        }
    }
}
