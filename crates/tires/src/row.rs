//! [`TireLap`]: one lap of one car, the unit the tire model learns from and predicts on.

use laps::{LapFeatures, LapSummary, LapValidity};
use serde::{Deserialize, Serialize};
use telemetry::Corners;

/// One lap of one car in the form the tire model uses: its per-lap input for training,
/// evaluation and prediction (not to be confused with `store::LapRow`, a stored lap). Every
/// float is finite (see [`TireLap::sanitize`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TireLap {
    /// Session id (the unit of train / evaluation splits).
    pub session_id: String,
    /// Car id.
    pub car_id: String,
    /// Track name, when known.
    pub track: Option<String>,
    /// Lap number.
    pub lap: u32,
    /// The 20 whole-lap features in [`LapFeatures::NAMES`] order (missing = 0).
    pub features: [f64; 20],
    /// Which features come from data.
    pub present: [bool; 20],
    /// Per-sector stress ∫ sqrt(accx² + accy²) dt, g·s.
    pub sector_stress_g_s: [f64; 3],
    /// Sliding work per tyre over the lap (FL, FR, RL, RR), g²·m (see
    /// `laps::features::tyre_work_rate`); `None` without accelerations and speed.
    #[serde(default)]
    pub tyre_work_g2m: Option<[f64; 4]>,
    /// Lap time, s (None when the crossings were not seen).
    pub lap_time_s: Option<f64>,
    /// Validity flags of the lap.
    pub validity: LapValidity,
    /// Laps on this set of tyres.
    pub tyre_age_laps: u32,
    /// Fuel at the end of the lap, kg.
    pub fuel_kg: Option<f64>,
    /// True wear per corner at the end of the lap, % (training / evaluation only).
    pub wear_end_pct: Option<Corners<f64>>,
    /// Tyre compound.
    pub compound: Option<String>,
    /// Samples in the lap.
    pub n_samples: u32,
}

/// Index of a feature in [`LapFeatures::NAMES`].
pub(crate) mod fidx {
    pub const LAT_GS: usize = 0;
    pub const LON_GS: usize = 1;
    pub const BRAKE_KJ: usize = 2;
    pub const HEAVY: usize = 3;
    pub const FRONT_SHARE: usize = 16;
    pub const LAT_BIAS: usize = 17;
}

impl TireLap {
    /// Builds a row from a lap engine summary.
    pub fn from_summary(s: &LapSummary) -> TireLap {
        let mut r = TireLap {
            session_id: s.session_id.to_string(),
            car_id: s.car_id.to_string(),
            track: s.track.as_deref().map(str::to_string),
            lap: s.lap,
            features: s.features.to_vec(),
            present: s.features.present_mask(),
            sector_stress_g_s: s.per_sector_stress,
            tyre_work_g2m: s.tyre_work_g2m,
            lap_time_s: s.lap_time_s,
            validity: s.validity,
            tyre_age_laps: s.tyre_age_laps,
            fuel_kg: s.fuel_kg,
            wear_end_pct: s.tyre_wear_pct_end,
            compound: s.tyre_compound.as_deref().map(str::to_string),
            n_samples: s.n_samples,
        };
        r.sanitize();
        r
    }

    /// Replaces non-finite values: features → 0 and not present, options → None.
    pub fn sanitize(&mut self) {
        for (v, p) in self.features.iter_mut().zip(self.present.iter_mut()) {
            if !v.is_finite() {
                *v = 0.0;
                *p = false;
            }
        }
        for v in &mut self.sector_stress_g_s {
            if !v.is_finite() || *v < 0.0 {
                *v = 0.0;
            }
        }
        self.tyre_work_g2m = self
            .tyre_work_g2m
            .filter(|w| w.iter().all(|v| v.is_finite() && *v >= 0.0));
        self.lap_time_s = self.lap_time_s.filter(|t| t.is_finite() && *t > 0.0);
        self.fuel_kg = self.fuel_kg.filter(|f| f.is_finite() && *f >= 0.0);
        self.wear_end_pct = self
            .wear_end_pct
            .filter(|w| w.to_array().iter().all(|v| v.is_finite()));
    }

    /// Feature by index, `None` when missing.
    pub fn feature(&self, i: usize) -> Option<f64> {
        match (self.features.get(i), self.present.get(i)) {
            (Some(v), Some(true)) => Some(*v),
            _ => None,
        }
    }

    /// Whether the lap is fit for pace comparisons (clean flags and a lap time).
    pub fn is_clean_timed(&self) -> bool {
        self.validity.is_clean() && self.lap_time_s.is_some()
    }

    /// The feature names (the [`LapFeatures::NAMES`]).
    pub fn feature_names() -> [&'static str; 20] {
        LapFeatures::NAMES
    }
}
