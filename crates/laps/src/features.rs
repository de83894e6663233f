//! The 20 lap features of the design and their O(1)-per-sample accumulator.
//!
//! Definitions (g = 9.80665 m/s²):
//! - `cum_lateral_g_s`: ∫|accy| dt (trapezoid between consecutive samples), g·s.
//! - `cum_longitudinal_g_s`: ∫|accx| dt, g·s.
//! - `brake_energy_kj`: a proxy of the energy the brakes take, kJ: ∫ m · g · decel · v dt while
//!   braking, with decel = max(0, -accx) (accx is positive when accelerating). "Braking" means
//!   `brake_front_bar` >= `brake_on_bar` or `brake_pct` >= `brake_on_pct`; a source with no brake
//!   channel counts every deceleration. When accx is missing but line pressure is present, decel
//!   is estimated as `brake_front_bar · brake_g_per_bar`. m = `LapEngineConfig::car_mass_kg`.
//! - `heavy_braking_events`: entries into |accx| > 0.8 g (leaving below 0.8 - hysteresis). The
//!   design says |accx|, so strong traction also counts; sign conventions differ between sources.
//! - `hard_cornering_events`: entries into |accy| > 1.0 g, same hysteresis.
//! - `high_speed_share`: share (0..1) of the samples above 200 km/h (a share rather than a count so
//!   that 20 Hz and 50 Hz sources compare; `LapSummary::n_high_speed_samples` has the count).
//! - `speed_mean_kmh`, `speed_std_kmh` (population), `speed_max_kmh`: over samples (Welford).
//! - `max_lateral_g`, `max_longitudinal_g`: max |accy|, max |accx|.
//! - `lap_number`, `tyre_age_laps` (laps on this set: the source's `tyre_age_laps` when present,
//!   else laps counted since the last pit stop, or since the first lap seen).
//! - `sector_one_hot`: 1 for the sector the values describe; all 0 for whole-lap features.
//! - `front_load_share`: the time-weighted mean share of the vertical load on the front axle,
//!   F/(F+R) in 0..1 (the design's "front/rear load ratio", kept bounded): static share
//!   `static_front_share` plus longitudinal transfer `-accx · cg_height_over_wheelbase`, clamped.
//!   Without accx but with both line pressures: the mean brake-pressure share
//!   front/(front+rear) over braking samples.
//! - `lateral_bias`: ∫max(accy, 0) dt / ∫|accy| dt (0..1): the share of lateral load towards
//!   positive accy; 0.5 when there was no lateral load.
//! - `track_temp_c`, `air_temp_c`: mean over the samples that carry them.
//!
//! Beside the 20, the lap carries each tyre's sliding work ([`tyre_work_rate`] integrated over
//! the lap, `LapSummary::tyre_work_g2m`), the tire model's friction-energy input.
//!
//! Any feature whose channel never appeared is `None`; [`LapFeatures::to_vec`] turns `None`
//! into 0.0 and [`LapFeatures::present_mask`] says which values are real. Never NaN.

use crate::stats::RunningStats;
use serde::{Deserialize, Serialize};

/// Standard gravity, m/s².
pub const G_MPS2: f64 = 9.80665;

/// The 20 features of a lap (or of one sector of a lap). See the module docs for definitions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LapFeatures {
    pub cum_lateral_g_s: Option<f64>,
    pub cum_longitudinal_g_s: Option<f64>,
    pub brake_energy_kj: Option<f64>,
    pub heavy_braking_events: Option<u32>,
    pub hard_cornering_events: Option<u32>,
    pub high_speed_share: Option<f64>,
    pub speed_mean_kmh: Option<f64>,
    pub speed_std_kmh: Option<f64>,
    pub speed_max_kmh: Option<f64>,
    pub max_lateral_g: Option<f64>,
    pub max_longitudinal_g: Option<f64>,
    pub lap_number: u32,
    pub tyre_age_laps: u32,
    pub sector_one_hot: [f64; 3],
    pub front_load_share: Option<f64>,
    pub lateral_bias: Option<f64>,
    pub track_temp_c: Option<f64>,
    pub air_temp_c: Option<f64>,
}

impl LapFeatures {
    /// Number of features.
    pub const LEN: usize = 20;

    /// Feature names, in the order of [`LapFeatures::to_vec`].
    pub const NAMES: [&'static str; 20] = [
        "cum_lateral_g_s",
        "cum_longitudinal_g_s",
        "brake_energy_kj",
        "heavy_braking_events",
        "hard_cornering_events",
        "high_speed_share",
        "speed_mean_kmh",
        "speed_std_kmh",
        "speed_max_kmh",
        "max_lateral_g",
        "max_longitudinal_g",
        "lap_number",
        "tyre_age_laps",
        "sector_1",
        "sector_2",
        "sector_3",
        "front_load_share",
        "lateral_bias",
        "track_temp_c",
        "air_temp_c",
    ];

    /// The features as a vector in [`LapFeatures::NAMES`] order; a missing value is 0.0.
    pub fn to_vec(&self) -> [f64; 20] {
        let o = |x: Option<f64>| x.unwrap_or(0.0);
        let c = |x: Option<u32>| x.map_or(0.0, f64::from);
        [
            o(self.cum_lateral_g_s),
            o(self.cum_longitudinal_g_s),
            o(self.brake_energy_kj),
            c(self.heavy_braking_events),
            c(self.hard_cornering_events),
            o(self.high_speed_share),
            o(self.speed_mean_kmh),
            o(self.speed_std_kmh),
            o(self.speed_max_kmh),
            o(self.max_lateral_g),
            o(self.max_longitudinal_g),
            f64::from(self.lap_number),
            f64::from(self.tyre_age_laps),
            self.sector_one_hot[0],
            self.sector_one_hot[1],
            self.sector_one_hot[2],
            o(self.front_load_share),
            o(self.lateral_bias),
            o(self.track_temp_c),
            o(self.air_temp_c),
        ]
    }

    /// Which entries of [`LapFeatures::to_vec`] come from data (false = missing, reported as 0).
    pub fn present_mask(&self) -> [bool; 20] {
        [
            self.cum_lateral_g_s.is_some(),
            self.cum_longitudinal_g_s.is_some(),
            self.brake_energy_kj.is_some(),
            self.heavy_braking_events.is_some(),
            self.hard_cornering_events.is_some(),
            self.high_speed_share.is_some(),
            self.speed_mean_kmh.is_some(),
            self.speed_std_kmh.is_some(),
            self.speed_max_kmh.is_some(),
            self.max_lateral_g.is_some(),
            self.max_longitudinal_g.is_some(),
            true,
            true,
            true,
            true,
            true,
            self.front_load_share.is_some(),
            self.lateral_bias.is_some(),
            self.track_temp_c.is_some(),
            self.air_temp_c.is_some(),
        ]
    }
}

/// Per-second rates over one interval between two samples (already averaged over its ends).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rates {
    /// |accy|, g.
    pub lat_g: Option<f64>,
    /// max(accy, 0), g.
    pub lat_pos_g: Option<f64>,
    /// |accx|, g.
    pub lon_g: Option<f64>,
    /// Brake power proxy, kW.
    pub brake_kw: Option<f64>,
    /// sqrt(accx² + accy²), g.
    pub combined_g: Option<f64>,
    /// Front load share from longitudinal transfer.
    pub front_share: Option<f64>,
    /// Sliding-work rate per tyre (FL, FR, RL, RR), g²·m/s (see [`tyre_work_rate`]).
    pub tyre_work: Option<[f64; 4]>,
}

/// Sliding-work rate of each tyre (FL, FR, RL, RR) at one instant, g²·m/s.
///
/// The friction-energy view of wear: a tyre carrying horizontal force `F` on vertical load `Fz`
/// slides roughly in proportion to `F / Fz_static`, so the work it does per metre is about
/// `F² / Fz_static`. The car's horizontal force (mass × combined acceleration) is shared in
/// proportion to the vertical loads, which move forward under braking (`h / wheelbase`) and to
/// the outside of a turn (`h / track width`, half on each axle). Returned per unit of mass and
/// with g as the acceleration unit: `a² · q_j² / q_static_j · v`, with `q` shares of the total
/// load. `accy > 0` is a left turn (load to the right tyres), `accx < 0` braking.
#[inline]
pub fn tyre_work_rate(
    accx_g: f64,
    accy_g: f64,
    speed_mps: f64,
    static_front_share: f64,
    cg_height_over_wheelbase: f64,
    cg_height_over_track_width: f64,
) -> [f64; 4] {
    let front = (static_front_share - accx_g * cg_height_over_wheelbase).clamp(0.04, 0.96);
    let rear = 1.0 - front;
    let lat = 0.25 * accy_g * cg_height_over_track_width;
    let q = [
        (0.5 * front - lat).max(0.01),
        (0.5 * front + lat).max(0.01),
        (0.5 * rear - lat).max(0.01),
        (0.5 * rear + lat).max(0.01),
    ];
    let sf = (0.5 * static_front_share).clamp(0.02, 0.48);
    let sr = 0.5 - sf;
    let q_static = [sf, sf, sr, sr];
    let a2v = (accx_g * accx_g + accy_g * accy_g) * speed_mps.max(0.0);
    let mut out = [0.0; 4];
    for j in 0..4 {
        out[j] = a2v * q[j] * q[j] / q_static[j];
    }
    out
}

/// A plain running mean (no division per value).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MeanAcc {
    sum: f64,
    n: u64,
}

impl MeanAcc {
    #[inline]
    fn push(&mut self, x: f64) {
        if x.is_finite() {
            self.sum += x;
            self.n += 1;
        }
    }
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Accumulates the features of a lap or a sector. Everything O(1) per sample, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeatureAcc {
    pub duration_s: f64,
    lat_gs: f64,
    lat_pos_gs: f64,
    lon_gs: f64,
    brake_kj: f64,
    pub stress_gs: f64,
    front_share_int: f64,
    front_share_time: f64,
    tyre_work: [f64; 4],
    has_tyre_work: bool,
    pressure_share: MeanAcc,
    has_lat: bool,
    has_lon: bool,
    has_brake: bool,
    speed: RunningStats,
    n_high_speed: u32,
    max_lat_g: Option<f64>,
    max_lon_g: Option<f64>,
    pub heavy_braking: u32,
    pub hard_cornering: u32,
    track_temp: MeanAcc,
    air_temp: MeanAcc,
}

impl FeatureAcc {
    /// Integrates `rates` over `dt_s` seconds.
    #[inline]
    pub fn integrate(&mut self, r: &Rates, dt_s: f64) {
        if dt_s.is_nan() || dt_s <= 0.0 || !dt_s.is_finite() {
            return;
        }
        self.duration_s += dt_s;
        if let Some(v) = r.lat_g {
            self.lat_gs += v * dt_s;
            self.has_lat = true;
        }
        if let Some(v) = r.lat_pos_g {
            self.lat_pos_gs += v * dt_s;
        }
        if let Some(v) = r.lon_g {
            self.lon_gs += v * dt_s;
            self.has_lon = true;
        }
        if let Some(v) = r.brake_kw {
            self.brake_kj += v * dt_s;
            self.has_brake = true;
        }
        if let Some(v) = r.combined_g {
            self.stress_gs += v * dt_s;
        }
        if let Some(v) = r.front_share {
            self.front_share_int += v * dt_s;
            self.front_share_time += dt_s;
        }
        if let Some(w) = r.tyre_work {
            for (acc, x) in self.tyre_work.iter_mut().zip(w) {
                *acc += x * dt_s;
            }
            self.has_tyre_work = true;
        }
    }

    /// Sliding work per tyre so far (FL, FR, RL, RR), g²·m; `None` without accelerations and
    /// speed.
    pub fn tyre_work(&self) -> Option<[f64; 4]> {
        self.has_tyre_work.then_some(self.tyre_work)
    }

    /// Records the point values of one sample.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn point(
        &mut self,
        speed_kmh: Option<f64>,
        high_speed_kmh: f64,
        accx_g: Option<f64>,
        accy_g: Option<f64>,
        pressure_share: Option<f64>,
        track_temp_c: Option<f64>,
        air_temp_c: Option<f64>,
    ) {
        if let Some(v) = speed_kmh {
            self.speed.push(v);
            if v > high_speed_kmh {
                self.n_high_speed += 1;
            }
        }
        if let Some(a) = accx_g {
            let a = a.abs();
            self.max_lon_g = Some(self.max_lon_g.map_or(a, |m| m.max(a)));
        }
        if let Some(a) = accy_g {
            let a = a.abs();
            self.max_lat_g = Some(self.max_lat_g.map_or(a, |m| m.max(a)));
        }
        if let Some(p) = pressure_share {
            self.pressure_share.push(p);
        }
        if let Some(t) = track_temp_c {
            self.track_temp.push(t);
        }
        if let Some(t) = air_temp_c {
            self.air_temp.push(t);
        }
    }

    /// Number of samples above the high-speed threshold.
    pub fn n_high_speed(&self) -> u32 {
        self.n_high_speed
    }

    /// The features so far. `sector`: Some(i) sets the one-hot.
    pub fn features(
        &self,
        lap_number: u32,
        tyre_age_laps: u32,
        sector: Option<usize>,
    ) -> LapFeatures {
        let mut one_hot = [0.0; 3];
        if let Some(slot) = sector.and_then(|i| one_hot.get_mut(i)) {
            *slot = 1.0;
        }
        let n_speed = self.speed.count();
        let front_load_share = if self.front_share_time > 0.0 {
            Some((self.front_share_int / self.front_share_time).clamp(0.0, 1.0))
        } else {
            self.pressure_share.mean().map(|m| m.clamp(0.0, 1.0))
        };
        let lateral_bias = self.has_lat.then(|| {
            if self.lat_gs > 1e-12 {
                (self.lat_pos_gs / self.lat_gs).clamp(0.0, 1.0)
            } else {
                0.5
            }
        });
        LapFeatures {
            cum_lateral_g_s: self.has_lat.then_some(self.lat_gs),
            cum_longitudinal_g_s: self.has_lon.then_some(self.lon_gs),
            brake_energy_kj: self.has_brake.then_some(self.brake_kj),
            heavy_braking_events: self.max_lon_g.is_some().then_some(self.heavy_braking),
            hard_cornering_events: self.max_lat_g.is_some().then_some(self.hard_cornering),
            high_speed_share: (n_speed > 0).then(|| f64::from(self.n_high_speed) / n_speed as f64),
            speed_mean_kmh: self.speed.mean(),
            speed_std_kmh: self.speed.std_population(),
            speed_max_kmh: self.speed.max(),
            max_lateral_g: self.max_lat_g,
            max_longitudinal_g: self.max_lon_g,
            lap_number,
            tyre_age_laps,
            sector_one_hot: one_hot,
            front_load_share,
            lateral_bias,
            track_temp_c: self.track_temp.mean(),
            air_temp_c: self.air_temp.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tyre_work_follows_the_load() {
        let w = |ax: f64, ay: f64, v: f64| tyre_work_rate(ax, ay, v, 0.53, 0.2, 0.3);
        // A left turn (accy > 0) loads the right tyres.
        let l = w(0.0, 1.2, 40.0);
        assert!(l[1] > l[0] && l[3] > l[2], "{l:?}");
        // Braking loads the fronts.
        let b = w(-1.0, 0.0, 40.0);
        assert!(b[0] > b[2] && (b[0] - b[1]).abs() < 1e-12, "{b:?}");
        // Twice the speed, twice the work per second; no acceleration or no speed, none.
        let fast = w(0.0, 1.2, 80.0);
        assert!((fast[1] / l[1] - 2.0).abs() < 1e-9);
        assert_eq!(w(0.0, 0.0, 40.0), [0.0; 4]);
        assert_eq!(w(0.0, 1.0, 0.0), [0.0; 4]);
        // Absurd inputs stay finite.
        assert!(w(9.0, -9.0, 1e4).iter().all(|x| x.is_finite() && *x >= 0.0));
    }

    #[test]
    fn names_and_vector_agree() {
        assert_eq!(LapFeatures::NAMES.len(), LapFeatures::LEN);
        let f = LapFeatures::default();
        assert!(f.to_vec().iter().all(|x| *x == 0.0));
        let mut acc = FeatureAcc::default();
        acc.point(
            Some(210.0),
            200.0,
            Some(-0.5),
            Some(1.1),
            None,
            Some(30.0),
            None,
        );
        acc.point(Some(100.0), 200.0, None, None, None, None, None);
        let f = acc.features(3, 2, Some(1));
        let v = f.to_vec();
        assert_eq!(v[5], 0.5);
        assert_eq!(v[6], 155.0);
        assert_eq!(v[8], 210.0);
        assert_eq!(v[11], 3.0);
        assert_eq!(v[12], 2.0);
        assert_eq!(&v[13..16], &[0.0, 1.0, 0.0]);
        assert_eq!(v[18], 30.0);
        assert!(!f.present_mask()[19]);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}
