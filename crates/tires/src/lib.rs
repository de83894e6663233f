//! Tires: per-corner wear and lap-time loss, physics first, trees for what physics leaves out.
//!
//! - **Wear** ([`model::WearPhysics`]): per corner, the wear added in a lap is a least-squares
//!   fit on load terms (lateral g·s split left/right by `lateral_bias` and front/rear by
//!   `front_load_share`, its square, brake energy, longitudinal g·s, heavy stops, fuel load),
//!   then gradient-boosted trees ([`gbt`]) fit the residual. Wear is the running sum over the
//!   stint (reset when the tyre age drops).
//! - **Loss** : the next lap's fuel-corrected lap time minus the stint's best fuel-corrected
//!   clean lap so far. Physics term: `T_best · (a·w + b·w²)` at the predicted mean wear minus
//!   the same at the best lap's wear (a, b and the fuel effect fitted by least squares with a
//!   fixed effect per stint), plus trees on the residual.
//! - **Intervals**: split-conformal 10th/90th percentiles of residuals on sessions held out
//!   from the fit (split by session, never by row).
//! - **Explanations**: exact path-dependent TreeSHAP on the trees plus the exact Shapley values
//!   of the additive physics terms; the top three become radio sentences.
//! - [`evaluate`] refuses sessions the model was trained on.
//!
//! Two more predictors work from per-lap records ([`LapLog`]) alone, for sources the model
//! above cannot serve; each prediction names its predictor ([`PredictorKind`]):
//! - [`TimingPredictor`] (`timing only`, [`pace`]): lap times only (official timing): pace,
//!   degradation per lap with its uncertainty, the next laps with 80 % intervals, laps until
//!   +0.5 s.
//! - [`ReportedWearPredictor`] (`reported wear`, [`reported_wear`]): sources that report tyre
//!   wear (the F1 game): wear rate per corner per stint, wear and lap time ahead, lap time from
//!   wear learned from the session's laps (the physics as prior), laps until +0.5 s, pit lap.
//! - [`evaluate_laps`] scores both, causally, beside "repeat the last lap" and "a line through
//!   the stint so far" ([`lapeval`]).
#![allow(clippy::needless_range_loop)]

pub mod eval;
pub mod gbt;
pub mod lapeval;
pub mod model;
pub mod pace;
pub mod reported_wear;
pub mod row;
pub mod tracker;

pub use eval::{evaluate, report_html, EvalReport, GroupMetrics, Importance, Series, StintCurve};
pub use gbt::{Gbt, GbtParams};
pub use lapeval::{
    evaluate_laps, laps_report_html, leave_one_out, HorizonScore, LapEvalConfig, LapEvalReport,
    LapSeries, LapSession, LapTimeMetrics, LooFold, LooReport, ThresholdMetrics, WearMetrics,
};
pub use model::{train, TireModel, TrainConfig, FORMAT_VERSION};
pub use pace::{
    mark_out_laps, mark_restart_laps, LapForecast, LapLog, PaceConfig, PacePrediction,
    PredictorKind, TimingPredictor,
};
pub use reported_wear::{ReportedWearPredictor, WearConfig, WearForecast, WearPrediction};
pub use row::TireLap;
pub use tracker::{
    predict_rows, FeatureScore, Interval, PitWindow, Status, TireState, TireTracker,
};

/// Errors of the tire model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TireError {
    /// The evaluation data contains a session the model was trained on.
    #[error(
        "session {session:?} was used to train this model: evaluate on held-out sessions only"
    )]
    TrainedOn {
        /// The offending session.
        session: String,
    },
    /// Not enough data to train or evaluate.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// The model file has another format version.
    #[error("model format_version {found} is not supported (expected {expected})")]
    FormatVersion {
        /// Version found in the file.
        found: String,
        /// Version this build reads.
        expected: u32,
    },
    /// The model file is broken.
    #[error("model file: {0}")]
    Format(String),
}

#[cfg(test)]
#[path = "../examples/common/mod.rs"]
mod simdata;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod pace_tests;
