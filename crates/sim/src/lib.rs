//! PitWall race simulator: a pure library that races GR86-class cars on 25 real circuits and
//! streams [`telemetry::Sample`]s with ground truth.
//!
//! # Model
//! - **Tracks** ([`tracks`], from the `tracks` crate): TUMFTM racetrack-database center lines,
//!   widths and minimum-curvature race lines (LGPL-3.0), embedded with `include_str!`. The race
//!   line is resampled on a ~2 m grid and its curvature smoothed; all distances (`lap_dist_m`)
//!   run along the race line.
//! - **Car** ([`vehicle::CarParams`]): 1,270 kg + fuel, 170 kW, RWD, road tyres mu 1.15 with
//!   load sensitivity, Cd·A 0.62 m², tiny downforce, 6-speed GR86 gearing. Each lap is planned
//!   as a quasi-steady-state speed profile: lateral grip limit from curvature, forward pass with
//!   power and rear-axle traction limits, backward pass with braking limit, both inside the
//!   friction circle. Reference flying lap: COTA about 2:32.5.
//! - **Tyres**: per-corner wear from sliding work, with the load each tyre carries from
//!   longitudinal (braking loads fronts, traction loads the driven rears) and lateral transfer
//!   (a right-hand turn loads the left tyres); rubber worn grows as load². Grip falls with wear
//!   (0.04 %/% + 0.0006 %/%²): about +1.4 s a lap at 40 % wear at COTA. New tyres at a stop.
//! - **Fuel**: burnt from engine work (255 g/kWh, about 1.2 kg a lap at COTA); lighter is faster
//!   through power-limited acceleration and tyre load sensitivity: measured 0.023 s per kg per
//!   lap at COTA.
//! - **Drivers** ([`DriverConfig`]): pace offset (s/lap), lap-time noise sigma, brake point
//!   offset (m), throttle pickup delay (s), brake bias, all changeable by lap and corner with
//!   [`HabitChange`].
//! - **Race** ([`Race`]): rolling start, safety cars at 60 % pace that close the field to 0.9 s
//!   gaps, one pit stop around half distance (pit lane at 80 km/h, 300 m in, 200 m out, 8 s
//!   stationary, about 22 s lost), running order, gaps. Cars do not block each other.
//!
//! # Sample conventions
//! `car_id` is `GR86-<chassis 001..>-<car number>` (`GR86-004-7`), `session_id` defaults to
//! `sim-<Track>-<seed>`. `accy_g` and `steering_deg` are positive in left-hand turns (ISO y to
//! the left); `accx_g` positive when accelerating. `lap` 0 is the run to the line at the rolling
//! start; lap N is the Nth racing lap. `pit_status` is `Pitting` in the pit lane and `InPitArea`
//! while stationary. `tyre_wear_pct` is ground truth; `tyre_temp_c` and `brake_pct` are not
//! modelled (`None`). Every sample passes [`telemetry::validate`].
//!
//! Deterministic: the only randomness is [`rng::SimRng`] seeded from `RaceConfig::seed`.
//!
//! # Example
//! ```
//! use sim::{LongCsvOptions, LongCsvWriter, Race, RaceConfig};
//! let cfg = RaceConfig { cars: 2, hz: 20.0, ..RaceConfig::new("norisring", 1, 7) };
//! let mut race = Race::new(cfg)?;
//! let mut csv = LongCsvWriter::new(Vec::new(), LongCsvOptions::default())?;
//! let mut tick = Vec::new();
//! while race.step(&mut tick) {
//!     // Publish `tick` here; sleep `race.tick_s()` between steps to stream in real time.
//!     for s in &tick {
//!         csv.write_sample(s)?;
//!     }
//!     tick.clear();
//! }
//! assert_eq!(race.lap_truths().len(), 2);
//! assert!(race.standings()[0].finished);
//! assert!(csv.rows() > 1000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod csv;
pub mod race;
pub mod rng;
pub mod tracks;
pub mod vehicle;

pub use crate::tracks::{closest_track, CenterPoint, RaceLinePoint, SectorSource, Track};
pub use csv::{write_long_csv, LongCsvOptions, LongCsvWriter, LONG_CSV_HEADER};
pub use race::{
    simulate, DriverConfig, HabitChange, LapTruth, PitPlan, Race, RaceConfig, RaceOutput,
    SafetyCarMode, Standing,
};
pub use vehicle::{CarParams, Corner};

/// Errors of the simulator.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    /// No embedded track has this name.
    #[error("{}", ::tracks::unknown_track_message(.0))]
    UnknownTrack(String),
    /// An embedded track file could not be read.
    #[error("track {track}: {reason}")]
    TrackData {
        /// Track name.
        track: String,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    Config(String),
}

impl From<::tracks::TrackError> for SimError {
    /// The same variant under the simulator's error (an unknown name stays `UnknownTrack`).
    fn from(e: ::tracks::TrackError) -> Self {
        match e {
            ::tracks::TrackError::UnknownTrack(name) => SimError::UnknownTrack(name),
            ::tracks::TrackError::TrackData { track, reason } => {
                SimError::TrackData { track, reason }
            }
        }
    }
}
