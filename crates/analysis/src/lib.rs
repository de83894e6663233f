//! PitWall's analysis of a session, pure (no sockets, no SQLite): race order, a lap engine per
//! car, field pace and neutralised laps, the tyre tracker, the coach and the pit-window job,
//! fed sample by sample. The live stage (`server`) feeds it as samples stream; the offline
//! pass ([`offline`]) feeds it a stored session in time order, so both give the same answers.
//!
//! ```text
//! Sample ─► SessionAnalysis::push ─┬─► Output::Lap { Insight (rev 0), profile, StrategyJob }
//!                                  └─► Output::Alert (CoachingAlert)
//! StrategyJob::run ─► Insight (rev n+1: PitWindow + the one Call)
//! ```
//! Its outputs are the typed messages of [`messages`]: what the bus carries, the store keeps,
//! the API serves and the dashboard reads.

pub mod call;
pub mod messages;
pub mod offline;
pub mod records;
pub mod session;
pub mod timing;
pub mod window;

pub use messages::{
    Action, Call, CoachingAlert, DriverProfile, Insight, ModelInfo, PitWindow, PlanOutcome,
    ProfileUpdate, SectorStress, SessionEvent, TireInsight, Validity, Wear, WearInterval,
    WindowStatus,
};
pub use offline::{analyse, Analysed, OfflineAnalysis, ANALYSIS_VERSION};
pub use records::{
    cut_laps, flag_is_green, lap_record_of, mark_safety_car_laps, positions_from_race_time,
    prepare_records, records_of_insights, records_of_timing, venue_pit_prior, LapSource, TimedLap,
    YELLOW_FACTOR,
};
pub use session::{AnalysisOptions, LapDone, Output, SessionAnalysis};
pub use timing::{analyse_timing, lap_logs_of_timing};
pub use tracks::geometry as track_geometry;
pub use window::{revise, CarPace, StrategyJob, WindowSettings};

/// The domain crates behind the analysis, for the edges that need their types.
pub use {coach, laps, strategy, tires};

/// The tire model shipped in the binary (trained on simulated races; rebuilt with
/// `cargo run --release -p tires --example train_default -- --out data/models/tires-default.json`).
pub const DEFAULT_TIRE_MODEL_JSON: &str = include_str!("../../../data/models/tires-default.json");

/// Why a tire model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("reading the tire model {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("tire model {path}: {reason}")]
    Parse { path: String, reason: String },
}

/// Loads a tire model file, or the shipped default. The model lives as long as the process
/// (per-car trackers borrow it), so it is loaded once.
pub fn load_tire_model(
    path: Option<&std::path::Path>,
) -> Result<&'static tires::TireModel, ModelError> {
    let (text, shown) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| ModelError::Read {
                path: p.display().to_string(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (
            DEFAULT_TIRE_MODEL_JSON.to_string(),
            "(shipped default)".to_string(),
        ),
    };
    let model = tires::TireModel::from_json(&text).map_err(|e| ModelError::Parse {
        path: shown,
        reason: e.to_string(),
    })?;
    Ok(Box::leak(Box::new(model)))
}
