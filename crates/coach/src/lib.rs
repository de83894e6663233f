//! Coach: each driver's own baseline, corner by corner, and alerts when they depart from it.
//!
//! - [`CornerMap`]: corners (entry / apex / exit, direction) and sectors of a track, detected
//!   from one lap's speed and lateral-g profile ([`CornerMap::detect`]) or given.
//! - [`CoachTracker`]: one car. [`CoachTracker::push`] takes samples in time order (O(1) per
//!   sample) and evaluates each corner as soon as the car leaves its window, returning
//!   [`CoachingAlert`]s when a deviation is large and sustained. The coach does not cut laps:
//!   [`CoachTracker::on_lap`] takes each [`laps::LapSummary`] of the car's
//!   [`laps::LapEngine`], which closes the lap, numbers it and says whether it is valid; the
//!   driver's baseline is learnt from the laps it judges clean ([`CoachTracker::recent_laps`]
//!   says what became of each). [`CoachTracker::profile`] gives the persisted
//!   [`DriverProfile`]; [`CoachTracker::from_profile`] restores one.
//! - [`Coach`]: all cars of a session, sharing one learned map per track ([`Coach::push`]
//!   for every sample, [`Coach::on_lap`] for every lap summary).
//! - [`compare_laps`] / [`compare_profiles`]: where, corner by corner, time is won and lost.
//!
//! # Metrics (per corner)
//! `brake_point_m` (lap distance where the main braking run starts: the last substantial run
//! that begins before the speed minimum), `peak_brake_bar` (front line), `brake_bias_front`
//! (front / (front + rear), pressure-weighted over the run), `min_speed_kmh`,
//! `entry_speed_kmh` (at the brake point), `exit_speed_kmh` (at the map's exit point),
//! `throttle_pickup_s` (brake release to 90 % throttle held 1 s or until braking),
//! `throttle_on_s` (brake release to 20 % throttle: when the driver picks the throttle up),
//! `corner_time_s` (time through the corner window). Per lap: sector times, lap time;
//! consistency = lap-time coefficient of variation.
//!
//! # Alert rule
//! `z = (x - mean) / sqrt((std² + floor²) (1 + 1/n))` against the driver's own baseline, where
//! `floor` is a per-metric minimum meaningful spread (2 m, 3 bar, 0.5 % bias, 1-1.5 km/h,
//! 0.02-0.03 s) so that a very repeatable driver (or the simulator) does not alert on noise.
//! An alert fires when `|z| >= 3` on at least 2 of the last 3 clean passes of that corner,
//! with the same sign, the current pass included. One pass is never enough (a lock-up, a
//! tow); two are, so a change is reported on its second lap, while the car leaves the corner.
//! With Gaussian z the chance per corner-metric is `2 · 3 · 0.00135² ≈ 1.1e-5` per pass, so
//! ~0.13 false alarms per 100 laps over 15 corners × 8 metrics even if every spread were
//! estimated exactly (|z| >= 2.5 would give ~2.8, too many). Then: at most one alert per
//! corner per lap (the most causal metric: brake point, bias, throttle, pressure, speeds), a
//! metric and direction already alerted this lap or the last, or active at two other
//! corners, is not repeated (a car-wide change such as brake bias is said once), and one
//! alert per episode (no repeat until the metric is back in range on two passes).
//!
//! # Baseline
//! Built from clean laps: the lap engine's clean laps (complete, not pit, out-lap or safety
//! car, with a lap time), not the opening lap (`min_lap`), within 7 % of the driver's pace;
//! a corner is evaluated only when its own time is within 6 % of baseline (safety car,
//! traffic and incidents are skipped). While a lap is open its corners are evaluated on what
//! is known so far (numbered as the engine's last lap + 1; not in or after the pit lane).
//! Status is `building_baseline` (no alerts) until 5 clean laps. Means and spreads are exact
//! up to 40 observations, then exponentially weighted. Passes with `|z| >= 2` are held out of
//! the baseline (an isolated one is added back at the next normal pass) so it does not drift
//! into a habit change; a deviation lasting `rebaseline_after` (8) passes becomes the new baseline.
//!
//! # Quality (simulator, `examples/quality.rs`)
//! 24 races on 8 tracks, 10 cars, safety cars and pit stops on, 144 injected changes (10 m
//! later / earlier braking in one corner, throttle pickup 0.1 s later / earlier, brake bias
//! ±3 %): recall 0.99, precision 0.98 (0.82 counting only the injected metric itself), 0.10
//! false alarms per 100 clean laps.

mod compare;
mod map;
mod stats;
mod tracker;

pub use compare::{
    compare_laps, compare_profiles, CornerCompare, LapComparison, ProfileComparison, SegmentDelta,
};
pub use map::{CornerDef, CornerMap, DetectOptions, Direction};
pub use stats::Stat;
pub use tracker::{Coach, CoachLap, CoachTracker, LapUse};

use serde::{Deserialize, Serialize};

/// Errors of the coach.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CoachError {
    /// Not enough usable data for the operation.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// Two profiles or laps do not share a corner map.
    #[error("corner maps differ: {0}")]
    MapMismatch(String),
}

/// A per-corner metric.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Lap distance where the main braking run starts, m (+ = later).
    #[serde(rename = "brake_point_m")]
    BrakePoint,
    /// Peak front line pressure, bar.
    #[serde(rename = "peak_brake_bar")]
    PeakBrake,
    /// Front share of line pressure, front / (front + rear).
    #[serde(rename = "brake_bias_front")]
    BrakeBias,
    /// Minimum speed, km/h.
    #[serde(rename = "min_speed_kmh")]
    MinSpeed,
    /// Speed at the brake point, km/h.
    #[serde(rename = "entry_speed_kmh")]
    EntrySpeed,
    /// Speed at the corner exit point, km/h.
    #[serde(rename = "exit_speed_kmh")]
    ExitSpeed,
    /// Time from brake release to full (90 %) throttle, s.
    #[serde(rename = "throttle_pickup_s")]
    ThrottlePickup,
    /// Time from brake release to throttle application (20 %), s.
    #[serde(rename = "throttle_on_s")]
    ThrottleOn,
    /// Time through the corner window, s (used for time gains; not alerted).
    #[serde(rename = "corner_time_s")]
    CornerTime,
}

/// Number of [`Metric`]s.
pub(crate) const N_METRICS: usize = 9;

impl Metric {
    /// All metrics, in index order.
    pub const ALL: [Metric; N_METRICS] = [
        Metric::BrakePoint,
        Metric::PeakBrake,
        Metric::BrakeBias,
        Metric::MinSpeed,
        Metric::EntrySpeed,
        Metric::ExitSpeed,
        Metric::ThrottlePickup,
        Metric::ThrottleOn,
        Metric::CornerTime,
    ];

    /// Alertable metrics, most causal first (the order used to pick one alert per corner).
    pub const ALERT_PRIORITY: [Metric; 8] = [
        Metric::BrakePoint,
        Metric::BrakeBias,
        Metric::ThrottleOn,
        Metric::ThrottlePickup,
        Metric::PeakBrake,
        Metric::MinSpeed,
        Metric::ExitSpeed,
        Metric::EntrySpeed,
    ];

    /// Index into per-corner arrays.
    pub(crate) fn idx(self) -> usize {
        self as usize
    }

    /// Wire name, with its unit ("brake_point_m").
    pub fn name(self) -> &'static str {
        match self {
            Metric::BrakePoint => "brake_point_m",
            Metric::PeakBrake => "peak_brake_bar",
            Metric::BrakeBias => "brake_bias_front",
            Metric::MinSpeed => "min_speed_kmh",
            Metric::EntrySpeed => "entry_speed_kmh",
            Metric::ExitSpeed => "exit_speed_kmh",
            Metric::ThrottlePickup => "throttle_pickup_s",
            Metric::ThrottleOn => "throttle_on_s",
            Metric::CornerTime => "corner_time_s",
        }
    }
}

/// Minimum meaningful spread per metric: added in quadrature to the measured spread so that a
/// driver who is (or a simulator that is) almost perfectly repeatable does not alert on noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpreadFloors {
    pub brake_point_m: f64,
    pub peak_brake_bar: f64,
    pub brake_bias_front: f64,
    pub min_speed_kmh: f64,
    pub entry_speed_kmh: f64,
    pub exit_speed_kmh: f64,
    pub throttle_pickup_s: f64,
    pub throttle_on_s: f64,
    pub corner_time_s: f64,
}

impl Default for SpreadFloors {
    fn default() -> Self {
        SpreadFloors {
            brake_point_m: 2.0,
            peak_brake_bar: 3.0,
            brake_bias_front: 0.005,
            min_speed_kmh: 1.0,
            entry_speed_kmh: 1.5,
            exit_speed_kmh: 1.5,
            throttle_pickup_s: 0.03,
            throttle_on_s: 0.02,
            corner_time_s: 0.05,
        }
    }
}

impl SpreadFloors {
    /// Floor of `m`.
    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::BrakePoint => self.brake_point_m,
            Metric::PeakBrake => self.peak_brake_bar,
            Metric::BrakeBias => self.brake_bias_front,
            Metric::MinSpeed => self.min_speed_kmh,
            Metric::EntrySpeed => self.entry_speed_kmh,
            Metric::ExitSpeed => self.exit_speed_kmh,
            Metric::ThrottlePickup => self.throttle_pickup_s,
            Metric::ThrottleOn => self.throttle_on_s,
            Metric::CornerTime => self.corner_time_s,
        }
    }
}

/// Tuning of the coach. The defaults are the ones measured by `examples/quality.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoachConfig {
    /// Clean laps before alerts start (status "building_baseline" until then).
    pub min_clean_laps: u32,
    /// |z| that counts as a deviating pass.
    pub z_threshold: f64,
    /// |z| from which a pass is held out of the baseline (committed later if isolated).
    pub z_hold: f64,
    /// Deviating passes needed ...
    pub alert_k: usize,
    /// ... among the last this many clean passes of the corner.
    pub alert_n: usize,
    /// A deviation lasting this many passes becomes the new baseline.
    pub rebaseline_after: u32,
    /// Observations after which the baseline forgets exponentially (weight 1/window).
    pub stat_window: u32,
    /// A lap slower than this factor times the driver's pace is not clean (safety car...).
    pub slow_lap_factor: f64,
    /// A corner slower than this factor times its baseline time is not evaluated.
    pub slow_corner_factor: f64,
    /// Laps numbered below this are never clean (the opening lap).
    pub min_lap: u32,
    /// Complete laps to collect before learning a corner map (the fastest is used).
    pub map_learn_laps: u32,
    /// Largest distance between consecutive samples inside a lap, m.
    pub max_gap_m: f64,
    /// Largest time between consecutive samples inside a lap, s.
    pub max_gap_s: f64,
    /// Throttle that counts as full, percent.
    pub full_throttle_pct: f64,
    /// Full throttle must be held this long (or until braking) to count, s.
    pub full_throttle_hold_s: f64,
    /// Throttle that counts as applied (pickup start), percent.
    pub throttle_on_pct: f64,
    /// Brake line pressure that counts as braking, bar (percent for pedal-only sources).
    pub brake_on_bar: f64,
    /// Per-metric minimum spreads.
    pub floors: SpreadFloors,
    /// Corner detection tuning.
    pub detect: DetectOptions,
    /// Alerts kept per car for [`CoachTracker::recent_alerts`].
    pub alert_log_len: usize,
}

impl Default for CoachConfig {
    fn default() -> Self {
        CoachConfig {
            min_clean_laps: 5,
            z_threshold: 3.0,
            z_hold: 2.0,
            alert_k: 2,
            alert_n: 3,
            rebaseline_after: 8,
            stat_window: 40,
            slow_lap_factor: 1.07,
            slow_corner_factor: 1.06,
            min_lap: 2,
            map_learn_laps: 2,
            max_gap_m: 40.0,
            max_gap_s: 1.0,
            full_throttle_pct: 90.0,
            throttle_on_pct: 20.0,
            full_throttle_hold_s: 1.0,
            brake_on_bar: 5.0,
            floors: SpreadFloors::default(),
            detect: DetectOptions::default(),
            alert_log_len: 200,
        }
    }
}

/// A coaching alert: a driver departing from their own baseline at one corner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoachingAlert {
    pub session_id: String,
    pub car_id: String,
    pub track: String,
    /// Lap on which the alert was raised.
    pub lap: u32,
    /// Session time of the sample that closed the corner, s.
    pub t_s: f64,
    /// Corner number (1-based, as in the [`CornerMap`]).
    pub corner: u32,
    /// Corner label for display ("Turn 3").
    pub corner_name: String,
    pub metric: Metric,
    /// This pass's value.
    pub value: f64,
    pub baseline_mean: f64,
    pub baseline_std: f64,
    /// `value - baseline_mean`.
    pub delta: f64,
    pub z: f64,
    /// Radio-ready English ("Braking 12 m later than your baseline into Turn 3").
    pub message: String,
    /// Time through the corner versus baseline over the deviating passes, s (+ = losing time).
    pub expected_delta_s: Option<f64>,
}

/// Whether a profile can alert yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    /// Fewer than `min_clean_laps` clean laps: no alerts.
    BuildingBaseline,
    /// Baseline established: alerts on.
    Ready,
}

/// Baseline of one corner: mean and spread per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CornerProfile {
    pub corner: u32,
    pub name: String,
    pub brake_point_m: Stat,
    pub peak_brake_bar: Stat,
    pub brake_bias_front: Stat,
    pub min_speed_kmh: Stat,
    pub entry_speed_kmh: Stat,
    pub exit_speed_kmh: Stat,
    pub throttle_pickup_s: Stat,
    pub throttle_on_s: Stat,
    pub corner_time_s: Stat,
}

impl CornerProfile {
    /// The stat of `m`.
    pub fn get(&self, m: Metric) -> &Stat {
        match m {
            Metric::BrakePoint => &self.brake_point_m,
            Metric::PeakBrake => &self.peak_brake_bar,
            Metric::BrakeBias => &self.brake_bias_front,
            Metric::MinSpeed => &self.min_speed_kmh,
            Metric::EntrySpeed => &self.entry_speed_kmh,
            Metric::ExitSpeed => &self.exit_speed_kmh,
            Metric::ThrottlePickup => &self.throttle_pickup_s,
            Metric::ThrottleOn => &self.throttle_on_s,
            Metric::CornerTime => &self.corner_time_s,
        }
    }

    fn get_mut(&mut self, m: Metric) -> &mut Stat {
        match m {
            Metric::BrakePoint => &mut self.brake_point_m,
            Metric::PeakBrake => &mut self.peak_brake_bar,
            Metric::BrakeBias => &mut self.brake_bias_front,
            Metric::MinSpeed => &mut self.min_speed_kmh,
            Metric::EntrySpeed => &mut self.entry_speed_kmh,
            Metric::ExitSpeed => &mut self.exit_speed_kmh,
            Metric::ThrottlePickup => &mut self.throttle_pickup_s,
            Metric::ThrottleOn => &mut self.throttle_on_s,
            Metric::CornerTime => &mut self.corner_time_s,
        }
    }
}

/// A driver's fingerprint on one track: what `GET /api/drivers/:id/profile` returns and what
/// is persisted (restore with [`CoachTracker::from_profile`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverProfile {
    pub car_id: String,
    pub track: String,
    pub status: ProfileStatus,
    /// Clean laps in the baseline.
    pub clean_laps: u32,
    /// Clean laps still needed before alerts (0 when ready).
    pub laps_to_go: u32,
    /// Laps seen (clean or not).
    pub laps_seen: u32,
    /// The corner map the corner numbers refer to (`None` until learned).
    pub corner_map: Option<CornerMap>,
    pub corners: Vec<CornerProfile>,
    /// Sector times, s.
    pub sector_times_s: Vec<Stat>,
    pub lap_time_s: Stat,
    /// Consistency: lap-time coefficient of variation (`None` below 2 clean laps).
    pub lap_time_cv: Option<f64>,
}

/// The values of one pass through a corner (the latest per corner is kept for live display).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CornerPass {
    pub corner: u32,
    pub lap: u32,
    /// Metric values of the pass.
    pub values: std::collections::BTreeMap<Metric, f64>,
    /// z-scores against the baseline (empty while building or when the pass was skipped).
    pub z: std::collections::BTreeMap<Metric, f64>,
}

#[cfg(test)]
mod tests;
