//! Timing-only pace and degradation: each car's coming lap times, from its green laps so far.
//!
//! For sessions with official timing and nothing else (no telemetry, no wear sensor), e.g. the
//! GR Cup. Per car and stint, from the laps seen so far (never a later one):
//!
//! - **Laps used.** Green laps only ([`LapLog::is_green`]): no yellow (FCY/SC) lap, no pit-in
//!   lap, no out-lap, a finite lap time; nor a lap the field ran more than `slow_lap_share`
//!   slower than its best (an unflagged safety car). Traffic and mistakes are dropped as outliers: a first
//!   robust pass (the stint's median lap on the field's slope), then ridge lines on the laps
//!   kept; a lap whose residual exceeds `outlier_k` × the noise (1.4826 × MAD of the
//!   residuals, blended with the field's noise while the stint is short) is left out, to a
//!   fixed point.
//! - **Fuel.** A fuel term is taken off every lap time first: `fuel_s_per_kg × fuel_kg` when
//!   the source reports fuel, else `−fuel_s_per_kg × fuel_burn_kg_per_lap × lap` (a prior). It
//!   cannot be fitted from timing alone (within a stint it is collinear with tyre age); it
//!   moves the degradation figure, not the lap-time predictions.
//! - **Track evolution** (and all the field shares: start and restart phases, wind, rubber):
//!   a field-wide per-lap-number effect, re-estimated at each lap from every car's current
//!   stint: each green lap's departure from its stint's median, the median over the cars that
//!   ran that lap (at least 3), shrunk by m / (m + `field_prior_cars`). It is taken off each
//!   lap before the car's fit, and the field's level now (and, with `field_trend_laps`, its
//!   trend over the last laps, shrunk toward 0 by its standard error) is carried into the
//!   predictions, its random-walk variance added to theirs.
//! - **Pace and degradation.** Degradation relative to the field: the slope of the stint's
//!   corrected lap times on tyre age (ridge toward the field's stint slopes, with the
//!   empirical-Bayes strength σ²/τ²: τ² the spread of the field's stint slopes, kept within
//!   a factor 2 of `prior_degradation_sd_s_per_lap`; so a short stint takes the field's).
//!   Reported degradation: that slope plus the field's trend over the stint. Pace now: the
//!   discounted mean of the kept laps moved along the slope to the current age (weight
//!   `discount_per_lap`^age difference), so that the level follows a drifting driver.
//! - **Intervals.** Split-conformal on the session's own residuals: every prediction made
//!   (every car, horizons 1..=`horizons`) waits for its lap; the standardised residuals of
//!   green laps form one pool per horizon, whose 10th/90th percentiles (for 80 %) scale the
//!   prediction's standard error. While a pool is small its quantiles are blended with the
//!   normal ones (`conformal_prior_n` pseudo-residuals).
//! - **Laps until +0.5 s.** Tyre loss now is `degradation × (age − reference age)` (reference:
//!   the stint's second green lap); the laps until it reaches `loss_threshold_s`, when the
//!   degradation is positive.
//!
//! Every output is finite, whatever the input. Cost per lap: one fit of the car's stint and a
//! re-estimate of the field effect over the last 30 laps (about 15-30 µs for a 30-car field;
//! `cargo bench -p tires --bench pace`).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Which predictor served a prediction; the insight and the API name it with [`Self::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PredictorKind {
    /// The physics model plus trees on telemetry ([`crate::TireTracker`]).
    #[serde(rename = "physics+trees")]
    PhysicsTrees,
    /// The wear the source reports ([`crate::ReportedWearPredictor`]).
    #[serde(rename = "reported wear")]
    ReportedWear,
    /// Lap times only ([`TimingPredictor`]).
    #[serde(rename = "timing only")]
    TimingOnly,
}

impl PredictorKind {
    /// The name shown to users: `physics+trees`, `reported wear`, `timing only`.
    pub fn as_str(self) -> &'static str {
        match self {
            PredictorKind::PhysicsTrees => "physics+trees",
            PredictorKind::ReportedWear => "reported wear",
            PredictorKind::TimingOnly => "timing only",
        }
    }
}

impl std::fmt::Display for PredictorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One completed lap of one car as a timing feed or a lap log gives it: the input of the
/// timing-only and reported-wear predictors and of [`crate::evaluate_laps`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapLog {
    /// Car id (any label; laps of one car share it).
    pub car_id: String,
    /// Lap number in the session, increasing per car (gaps allowed).
    pub lap: u32,
    /// Lap time, s (a lap without a finite positive time is never used nor scored).
    pub lap_time_s: f64,
    /// The car ended this lap in the pit lane.
    #[serde(default)]
    pub pit_in: bool,
    /// The lap started in the pit lane (or is the race's start lap).
    #[serde(default)]
    pub out_lap: bool,
    /// Any part of the lap ran under a yellow flag, full-course yellow or safety car.
    #[serde(default)]
    pub yellow: bool,
    /// Tyre compound, when known (a change starts a new stint).
    #[serde(default)]
    pub compound: Option<String>,
    /// Laps on this set of tyres at the end of the lap, when known (a drop starts a new stint;
    /// without it the age is counted from the stint's first lap, which is age 1).
    #[serde(default)]
    pub tyre_age_laps: Option<u32>,
    /// Fuel at the end of the lap, kg, when known.
    #[serde(default)]
    pub fuel_kg: Option<f64>,
    /// Reported wear per tyre at the end of the lap (FL, FR, RL, RR), %, when the source
    /// reports it (the F1 game does).
    #[serde(default)]
    pub wear_pct: Option<[f64; 4]>,
}

impl LapLog {
    /// A green lap with nothing but a car, a lap number and a time.
    pub fn new(car_id: impl Into<String>, lap: u32, lap_time_s: f64) -> LapLog {
        LapLog {
            car_id: car_id.into(),
            lap,
            lap_time_s,
            pit_in: false,
            out_lap: false,
            yellow: false,
            compound: None,
            tyre_age_laps: None,
            fuel_kg: None,
            wear_pct: None,
        }
    }

    /// Whether the lap is a green racing lap: a finite positive time, no yellow, no pit-in,
    /// no out-lap. Only green laps are fitted and scored.
    pub fn is_green(&self) -> bool {
        self.has_time() && !self.yellow && !self.pit_in && !self.out_lap
    }

    /// Whether the lap has a usable time.
    pub fn has_time(&self) -> bool {
        self.lap_time_s.is_finite() && self.lap_time_s > 0.0
    }

    /// The reported wear when every corner is finite.
    pub fn wear(&self) -> Option<[f64; 4]> {
        self.wear_pct.filter(|w| w.iter().all(|v| v.is_finite()))
    }

    /// The fuel when finite and not negative.
    pub fn fuel(&self) -> Option<f64> {
        self.fuel_kg.filter(|f| f.is_finite() && *f >= 0.0)
    }

    /// A lap of the tire model's rows ([`crate::TireLap`], cut from telemetry): safety-car and
    /// incomplete laps are yellow; the row's tyre age, fuel, compound and reported wear carry
    /// over. `None` without a lap time.
    pub fn from_row(r: &crate::TireLap) -> Option<LapLog> {
        let t = r.lap_time_s.filter(|t| t.is_finite() && *t > 0.0)?;
        Some(LapLog {
            car_id: r.car_id.clone(),
            lap: r.lap,
            lap_time_s: t,
            pit_in: r.validity.pit,
            out_lap: r.validity.out_lap,
            yellow: r.validity.safety_car || r.validity.incomplete,
            compound: r.compound.clone(),
            tyre_age_laps: Some(r.tyre_age_laps),
            fuel_kg: r.fuel_kg,
            wear_pct: r.wear_end_pct.map(|w| w.to_array()),
        })
    }
}

/// Marks as out-lap every lap that follows a pit-in lap of the same car (sources that flag
/// the pit-in lap but not the out-lap, such as official timing).
pub fn mark_out_laps(laps: &mut [LapLog]) {
    let mut idx: Vec<usize> = (0..laps.len()).collect();
    idx.sort_by(|a, b| {
        (laps[*a].car_id.as_str(), laps[*a].lap).cmp(&(laps[*b].car_id.as_str(), laps[*b].lap))
    });
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        if laps[a].car_id == laps[b].car_id && laps[a].pit_in {
            laps[b].out_lap = true;
        }
    }
}

/// Marks as yellow every lap that follows a yellow lap of the same car: the restart lap, run
/// from behind a safety car or after a full-course yellow, is not green pace either (sources
/// that flag the lap under the flag but not the restart, such as official timing's FLAG).
pub fn mark_restart_laps(laps: &mut [LapLog]) {
    let mut idx: Vec<usize> = (0..laps.len()).collect();
    idx.sort_by(|a, b| {
        (laps[*a].car_id.as_str(), laps[*a].lap).cmp(&(laps[*b].car_id.as_str(), laps[*b].lap))
    });
    let flagged: Vec<bool> = laps.iter().map(|l| l.yellow).collect();
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        if laps[a].car_id == laps[b].car_id && flagged[a] {
            laps[b].yellow = true;
        }
    }
}

/// Laps of the field-wide effect re-estimated at each lap (older laps keep their values).
const FIELD_WINDOW_LAPS: usize = 30;

/// Settings of the timing-only predictor (also the lap-time part of the reported-wear one).
///
/// The defaults are principled rather than tuned to a race: `outlier_k` = 3 robust standard
/// deviations, fuel from the shipped tire model's physics (0.0234 s/kg), a prior degradation
/// of 0 ± 0.05 s/lap. The level discount (0.8) and the field effect (on, level and trend
/// carried) are what leave-one-event-out on GR Cup Race 1 and leave-one-track-out on the F1
/// game long runs chose for most held-out sessions (`pitwall eval --laps ... --loo`); the
/// pooled figures move by less than 0.01 s across discounts 0.6-0.9.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaceConfig {
    /// Weight of a lap `d` laps older than the last one in the pace level: `discount^d`
    /// (1 = the whole stint counts alike).
    pub discount_per_lap: f64,
    /// A lap whose residual exceeds this many robust standard deviations is left out.
    pub outlier_k: f64,
    /// Lowest noise assumed, s.
    pub noise_floor_s: f64,
    /// Lap-to-lap noise assumed before the session shows its own, s.
    pub noise_prior_s: f64,
    /// Degradation assumed before any stint of the session shows one, s/lap.
    pub prior_degradation_s_per_lap: f64,
    /// Spread of that prior and the least spread of cars' degradation around the field's,
    /// s/lap.
    pub prior_degradation_sd_s_per_lap: f64,
    /// Lap time per kg of fuel, s/kg.
    pub fuel_s_per_kg: f64,
    /// Fuel burnt per lap when the source does not report fuel, kg.
    pub fuel_burn_kg_per_lap: f64,
    /// Take the field-wide per-lap effect off each lap before the car's fit.
    pub field_effect: bool,
    /// A lap the field (at least 3 cars) ran, at the median, more than this share slower than
    /// each car's best is neutralised (an unflagged safety car or yellow): left out of every
    /// fit, like a yellow lap.
    pub slow_lap_share: f64,
    /// Pseudo-cars of no effect the field-wide effect of a lap is shrunk with.
    pub field_prior_cars: f64,
    /// Share of the field-wide effect of the last laps carried into the predictions (0 = none).
    pub field_persistence: f64,
    /// Laps over which the field's trend is measured and carried into the predictions
    /// (0 = the field's level only).
    pub field_trend_laps: usize,
    /// Prior spread of that trend, s/lap (the measured trend is shrunk toward 0 by it).
    pub field_trend_sd_s_per_lap: f64,
    /// Tyre loss at which "laps until" is counted, s.
    pub loss_threshold_s: f64,
    /// Horizons with their own conformal pool (predictions further ahead use the last one).
    pub horizons: usize,
    /// Central coverage of the intervals (0.8 = 10th to 90th percentile).
    pub coverage: f64,
    /// Pseudo-residuals of the normal distribution blended into each conformal pool.
    pub conformal_prior_n: f64,
    /// Residuals kept per pool (the oldest go first).
    pub conformal_cap: usize,
}

impl Default for PaceConfig {
    fn default() -> Self {
        PaceConfig {
            discount_per_lap: 0.8,
            outlier_k: 3.0,
            noise_floor_s: 0.05,
            noise_prior_s: 0.5,
            prior_degradation_s_per_lap: 0.0,
            prior_degradation_sd_s_per_lap: 0.05,
            fuel_s_per_kg: 0.0234,
            fuel_burn_kg_per_lap: 1.0,
            field_effect: true,
            slow_lap_share: 0.07,
            field_prior_cars: 2.0,
            field_persistence: 1.0,
            field_trend_laps: 6,
            field_trend_sd_s_per_lap: 0.2,
            loss_threshold_s: 0.5,
            horizons: 5,
            coverage: 0.8,
            conformal_prior_n: 20.0,
            conformal_cap: 4096,
        }
    }
}

impl PaceConfig {
    /// The settings with every number made usable (finite, in range), so that no input of a
    /// config file can make a prediction non-finite.
    pub fn sanitized(&self) -> PaceConfig {
        let d = PaceConfig::default();
        let pick = |v: f64, lo: f64, hi: f64, def: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                v
            } else {
                def
            }
        };
        PaceConfig {
            discount_per_lap: pick(self.discount_per_lap, 0.01, 1.0, d.discount_per_lap),
            outlier_k: pick(self.outlier_k, 0.5, 1e6, d.outlier_k),
            noise_floor_s: pick(self.noise_floor_s, 1e-4, 1e3, d.noise_floor_s),
            noise_prior_s: pick(self.noise_prior_s, 1e-4, 1e3, d.noise_prior_s),
            prior_degradation_s_per_lap: pick(
                self.prior_degradation_s_per_lap,
                -1e3,
                1e3,
                d.prior_degradation_s_per_lap,
            ),
            prior_degradation_sd_s_per_lap: pick(
                self.prior_degradation_sd_s_per_lap,
                1e-5,
                1e3,
                d.prior_degradation_sd_s_per_lap,
            ),
            fuel_s_per_kg: pick(self.fuel_s_per_kg, -1e3, 1e3, d.fuel_s_per_kg),
            fuel_burn_kg_per_lap: pick(self.fuel_burn_kg_per_lap, 0.0, 1e3, d.fuel_burn_kg_per_lap),
            field_effect: self.field_effect,
            slow_lap_share: pick(self.slow_lap_share, 0.0, 1e6, d.slow_lap_share),
            field_prior_cars: pick(self.field_prior_cars, 0.0, 1e6, d.field_prior_cars),
            field_persistence: pick(self.field_persistence, 0.0, 1.0, d.field_persistence),
            field_trend_laps: self.field_trend_laps.min(1000),
            field_trend_sd_s_per_lap: pick(
                self.field_trend_sd_s_per_lap,
                1e-6,
                1e3,
                d.field_trend_sd_s_per_lap,
            ),
            loss_threshold_s: pick(self.loss_threshold_s, 1e-6, 1e3, d.loss_threshold_s),
            horizons: self.horizons.clamp(1, 100),
            coverage: pick(self.coverage, 0.01, 0.999, d.coverage),
            conformal_prior_n: pick(self.conformal_prior_n, 0.0, 1e6, d.conformal_prior_n),
            conformal_cap: self.conformal_cap.clamp(16, 1 << 20),
        }
    }
}

/// One predicted lap time with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LapForecast {
    /// The lap predicted.
    pub lap: u32,
    /// Laps ahead of the last lap seen (1 = the next lap).
    pub horizon: u32,
    /// Predicted lap time, s.
    pub lap_time_s: f64,
    /// Interval at [`PaceConfig::coverage`] (80 %): lower bound, s.
    pub lo_s: f64,
    /// Upper bound, s.
    pub hi_s: f64,
}

/// The timing-only predictor's view of one car after its last lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacePrediction {
    /// Car id.
    pub car_id: String,
    /// Always [`PredictorKind::TimingOnly`].
    pub predictor: PredictorKind,
    /// Last lap seen.
    pub lap: u32,
    /// Stint number of the car (0 = the first).
    pub stint: u32,
    /// Tyre age at the last lap, laps.
    pub tyre_age_laps: u32,
    /// Green laps of the stint in the fit (outliers left out).
    pub laps_used: usize,
    /// Green laps of the stint left out as outliers.
    pub laps_dropped: usize,
    /// Fitted lap time at the last lap (no noise, fuel included), s.
    pub pace_s: f64,
    /// Lap-to-lap noise of the car (robust), s.
    pub noise_s: f64,
    /// Tyre degradation: lap time added per lap of tyre age, fuel-corrected, s/lap.
    pub degradation_s_per_lap: f64,
    /// Its standard deviation, s/lap.
    pub degradation_sd_s_per_lap: f64,
    /// The field's degradation the stint was shrunk toward, s/lap.
    pub field_degradation_s_per_lap: f64,
    /// Lap time change per lap from fuel burn (negative: lighter is faster), s/lap.
    pub fuel_s_per_lap: f64,
    /// Tyre loss now against the stint's reference lap, s.
    pub loss_s: f64,
    /// Laps until the loss reaches [`PaceConfig::loss_threshold_s`]; `None` when the
    /// degradation is not positive.
    pub laps_until_threshold: Option<f64>,
    /// The threshold, s.
    pub threshold_s: f64,
    /// The coming laps.
    pub forecast: Vec<LapForecast>,
}

// ---------------------------------------------------------------------------------------
// Shared helpers (also used by the reported-wear predictor and the evaluation).

/// Median of a slice (sorted in place); 0 when empty.
pub(crate) fn median_mut(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
pub(crate) fn norm_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// A pool of standardised residuals for split-conformal intervals: kept sorted (for O(1)
/// quantiles) and in arrival order (so that the oldest leaves first when full).
#[derive(Debug, Clone, Default)]
pub(crate) struct Conformal {
    sorted: Vec<f64>,
    order: VecDeque<f64>,
    cap: usize,
}

impl Conformal {
    pub(crate) fn new(cap: usize) -> Conformal {
        Conformal {
            sorted: Vec::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    pub(crate) fn insert(&mut self, z: f64) {
        if !z.is_finite() {
            return;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
                if i < self.sorted.len() {
                    self.sorted.remove(i);
                }
            }
        }
        let i = self.sorted.partition_point(|v| v.total_cmp(&z).is_lt());
        self.sorted.insert(i, z);
        self.order.push_back(z);
    }

    /// Lower and upper quantiles of a central `coverage` interval: the split-conformal order
    /// statistics, blended with the normal quantiles as if `prior_n` normal residuals were in
    /// the pool.
    pub(crate) fn bounds(&self, coverage: f64, prior_n: f64) -> (f64, f64) {
        let a = (1.0 - coverage) / 2.0;
        let zg = norm_quantile(1.0 - a);
        self.bounds_toward(coverage, prior_n, (-zg, zg))
    }

    /// [`Self::bounds`] blended toward `prior` (e.g. a shorter horizon's pool, which fills
    /// first) instead of the normal quantiles.
    pub(crate) fn bounds_toward(
        &self,
        coverage: f64,
        prior_n: f64,
        prior: (f64, f64),
    ) -> (f64, f64) {
        let a = (1.0 - coverage) / 2.0;
        let n = self.sorted.len();
        if n == 0 {
            return prior;
        }
        let nf = n as f64;
        let lo_i = (((nf + 1.0) * a).floor() as usize).clamp(1, n) - 1;
        let hi_i = (((nf + 1.0) * (1.0 - a)).ceil() as usize).clamp(1, n) - 1;
        let (elo, ehi) = (self.sorted[lo_i], self.sorted[hi_i]);
        let w = nf / (nf + prior_n.max(0.0));
        let lo = w * elo + (1.0 - w) * prior.0;
        let hi = w * ehi + (1.0 - w) * prior.1;
        (lo.min(hi), hi.max(lo))
    }
}

/// Where a lap falls: which stint, at which tyre age.
#[derive(Debug, Clone, Default)]
pub(crate) struct StintCursor {
    stint: u32,
    started: bool,
    first_lap: u32,
    prev_age: Option<u32>,
    prev_pit_in: bool,
    compound: Option<String>,
}

impl StintCursor {
    /// The stint and tyre age of `l` (the next lap of the car), and whether it opens a stint.
    /// A stint starts after a pit-in lap or at an out-lap (unless the reported tyre age goes
    /// on), when the reported tyre age drops, or when the compound changes.
    pub(crate) fn advance(&mut self, l: &LapLog) -> (u32, u32, bool) {
        let mut new = false;
        if self.started {
            let age_drop = match (self.prev_age, l.tyre_age_laps) {
                (Some(p), Some(a)) => Some(a < p),
                _ => None,
            };
            let compound_change =
                matches!((&self.compound, &l.compound), (Some(a), Some(b)) if a != b);
            new = compound_change
                || match age_drop {
                    Some(d) => d,
                    None => self.prev_pit_in || l.out_lap,
                };
            if new {
                self.stint += 1;
            }
        }
        if !self.started || new {
            self.first_lap = l.lap;
            self.started = true;
        }
        let age = l
            .tyre_age_laps
            .unwrap_or_else(|| l.lap.saturating_sub(self.first_lap) + 1);
        self.prev_age = Some(age);
        self.prev_pit_in = l.pit_in;
        if l.compound.is_some() {
            self.compound = l.compound.clone();
        }
        (self.stint, age, new)
    }

    /// Opens a stint at `l` although [`Self::advance`] did not (another sign of new tyres,
    /// such as reported wear dropping); returns its stint number and tyre age.
    pub(crate) fn restart_at(&mut self, l: &LapLog) -> (u32, u32) {
        self.stint += 1;
        self.first_lap = l.lap;
        let age = l.tyre_age_laps.unwrap_or(1);
        self.prev_age = Some(age);
        (self.stint, age)
    }
}

// ---------------------------------------------------------------------------------------
// The timing-only predictor.

/// One green lap of a stint, corrected for fuel.
#[derive(Debug, Clone, Copy)]
struct Pt {
    lap: u32,
    age: f64,
    /// Lap time minus the fuel term, s.
    y: f64,
}

/// A prediction waiting for its lap.
#[derive(Debug, Clone, Copy)]
struct Pending {
    target_lap: u32,
    horizon: usize,
    /// The same in lap time, s.
    pred_s: f64,
    /// Standard error of the prediction, s.
    se_s: f64,
    /// The standardised bounds of the interval given with it.
    z_lo: f64,
    z_hi: f64,
}

/// Step of the adaptive conformal correction ([`TimingPredictor`]'s `aci`): the coverage asked
/// of each horizon's pool moves by this times (miss − (1 − coverage)) at every resolved
/// prediction (Gibbs and Candès, "Adaptive conformal inference under distribution shift", 2021).
pub(crate) const ACI_STEP: f64 = 0.005;

#[derive(Debug, Clone)]
struct CarPace {
    id: String,
    cursor: StintCursor,
    stint: u32,
    age: u32,
    last_lap: u32,
    /// Green laps of the current stint.
    pts: Vec<Pt>,
    /// Fuel at the last lap and at the stint's first lap with fuel (lap, kg).
    fuel_last: Option<(u32, f64)>,
    fuel_first: Option<(u32, f64)>,
    pending: Vec<Pending>,
    /// Noise of the last fit with at least 5 laps.
    sigma: Option<f64>,
    /// Slot of the current stint in `TimingPredictor::slopes`.
    slope_slot: Option<usize>,
}

/// A stint's fitted slope, for the field's degradation.
#[derive(Debug, Clone, Copy)]
struct StintSlope {
    car: usize,
    stint: u32,
    beta: f64,
    var: f64,
}

/// The fit of a car's current stint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    /// Degradation (posterior), s/lap, and its variance.
    pub beta: f64,
    pub var_beta: f64,
    /// Unshrunk slope and variance (≥ 3 laps spanning ≥ 2 ages).
    pub raw: Option<(f64, f64)>,
    /// Noise, s.
    pub sigma: f64,
    /// Discount-weighted mean of the kept laps (corrected) and of their ages.
    pub ybar_w: f64,
    pub abar_w: f64,
    /// Σw²/(Σw)²: the variance factor of the weighted mean.
    pub c_level: f64,
    pub n_kept: usize,
    pub n_dropped: usize,
    /// Field slope the fit was shrunk toward.
    pub prior_beta: f64,
}

impl Fit {
    /// Corrected lap time at tyre age `a`, and its standard error (noise of the lap included).
    pub(crate) fn at(&self, a: f64) -> (f64, f64) {
        let d = a - self.abar_w;
        let y = self.ybar_w + self.beta * d;
        let var = self.sigma * self.sigma * (1.0 + self.c_level) + d * d * self.var_beta;
        (y, var.max(0.0).sqrt())
    }
}

/// Robust ridge line through `(age, y)` points, then a discounted level.
/// `prior` = (field slope, τ²); `sigma_prior` = noise before the stint shows its own.
pub(crate) fn fit_line(
    pts: &[(f64, f64)],
    a_now: f64,
    prior: (f64, f64),
    sigma_prior: f64,
    cfg: &PaceConfig,
) -> Option<Fit> {
    if pts.is_empty() {
        return None;
    }
    let n = pts.len();
    let (beta0, tau2) = prior;
    let tau2 = tau2.max(1e-10);
    let mut kept = vec![true; n];
    let mut sigma = sigma_prior.max(cfg.noise_floor_s);
    let mut beta = beta0;
    let mut var_beta = tau2;
    let mut raw = None;
    let mut abs_r: Vec<f64> = Vec::with_capacity(n);
    // Pass 0 is robust: the median lap on the prior slope. Later passes: ridge least squares
    // on the laps kept by the pass before.
    let (mut xm, mut ym) = {
        let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let xmed = median_mut(&mut xs);
        let mut ys: Vec<f64> = pts.iter().map(|p| p.1 - beta0 * (p.0 - xmed)).collect();
        (xmed, median_mut(&mut ys))
    };
    for pass in 0..5 {
        if pass > 0 {
            let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
            for (p, k) in pts.iter().zip(&kept) {
                if *k {
                    sw += 1.0;
                    sx += p.0;
                    sy += p.1;
                }
            }
            (xm, ym) = (sx / sw, sy / sw);
            let (mut sxx, mut sxy) = (0.0, 0.0);
            for (p, k) in pts.iter().zip(&kept) {
                if *k {
                    sxx += (p.0 - xm) * (p.0 - xm);
                    sxy += (p.0 - xm) * (p.1 - ym);
                }
            }
            let lambda = sigma * sigma / tau2;
            beta = (sxy + lambda * beta0) / (sxx + lambda);
            var_beta = sigma * sigma / (sxx + lambda);
            raw = if sw >= 5.0 && sxx >= 10.0 {
                Some((sxy / sxx, sigma * sigma / sxx))
            } else {
                None
            };
        }
        // Noise: MAD of every lap's residual, blended with the prior while the stint is short.
        abs_r.clear();
        abs_r.extend(pts.iter().map(|p| (p.1 - ym - beta * (p.0 - xm)).abs()));
        let m = abs_r.len() as f64;
        let s_mad = if m >= 3.0 {
            1.4826 * median_mut(&mut abs_r)
        } else {
            sigma_prior
        };
        let n0 = 3.0;
        let s2 = (m * s_mad * s_mad + n0 * sigma_prior * sigma_prior) / (m + n0);
        sigma = s2.sqrt().max(cfg.noise_floor_s);
        let mut changed = false;
        for (p, k) in pts.iter().zip(kept.iter_mut()) {
            let r = p.1 - ym - beta * (p.0 - xm);
            let keep = r.abs() <= cfg.outlier_k * sigma;
            if keep != *k {
                *k = keep;
                changed = true;
            }
        }
        if !kept.iter().any(|k| *k) {
            kept.iter_mut().for_each(|k| *k = true);
        }
        if !changed && pass > 0 {
            break;
        }
    }
    let (mut w_sum, mut w2_sum, mut wy, mut wa) = (0.0, 0.0, 0.0, 0.0);
    let mut n_kept = 0;
    for (p, k) in pts.iter().zip(&kept) {
        if *k {
            let w = cfg.discount_per_lap.powf((a_now - p.0).max(0.0));
            w_sum += w;
            w2_sum += w * w;
            wy += w * p.1;
            wa += w * p.0;
            n_kept += 1;
        }
    }
    if w_sum <= 0.0 || !w_sum.is_finite() {
        return None;
    }
    let fit = Fit {
        beta,
        var_beta,
        raw,
        sigma,
        ybar_w: wy / w_sum,
        abar_w: wa / w_sum,
        c_level: w2_sum / (w_sum * w_sum),
        n_kept,
        n_dropped: n - n_kept,
        prior_beta: beta0,
    };
    let ok = [fit.beta, fit.var_beta, fit.sigma, fit.ybar_w, fit.abar_w]
        .iter()
        .all(|v| v.is_finite());
    ok.then_some(fit)
}

/// Field degradation from stint slopes: precision-weighted mean with the prior as one more
/// item, and τ² (between-stint variance) by the method of moments, kept within a factor 2 of
/// the prior's spread (cars of a session do not differ by more than that in degradation). `skip` leaves one stint out (the one being fitted).
fn field_slope(slopes: &[StintSlope], skip: Option<usize>, cfg: &PaceConfig) -> (f64, f64) {
    let sd0 = cfg.prior_degradation_sd_s_per_lap;
    let items = slopes
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, s)| s);
    let (mut n, mut s, mut ss, mut sv) = (0.0, 0.0, 0.0, 0.0);
    for it in items.clone() {
        n += 1.0;
        s += it.beta;
        ss += it.beta * it.beta;
        sv += it.var;
    }
    let tau2 = if n >= 3.0 {
        let m = s / n;
        let var = (ss - n * m * m) / (n - 1.0);
        (var - sv / n).clamp(sd0 * sd0 / 4.0, 4.0 * sd0 * sd0)
    } else {
        sd0 * sd0
    };
    let (mut num, mut den) = (
        cfg.prior_degradation_s_per_lap / (sd0 * sd0),
        1.0 / (sd0 * sd0),
    );
    for it in items {
        let w = 1.0 / (it.var + tau2);
        num += w * it.beta;
        den += w;
    }
    (num / den, tau2)
}

/// Timing-only pace and degradation for every car of one session, fed lap by lap.
///
/// ```
/// use tires::{LapLog, PaceConfig, TimingPredictor};
/// let mut p = TimingPredictor::new(PaceConfig::default());
/// for lap in 1..=8 {
///     let wobble = if lap % 2 == 0 { 0.1 } else { -0.1 };
///     p.on_lap(&LapLog::new("7", lap, 100.0 + wobble));
/// }
/// let pred = p.predict("7", 3).unwrap();
/// assert_eq!(pred.forecast.len(), 3);
/// assert_eq!(pred.forecast[0].lap, 9);
/// assert!((pred.forecast[0].lap_time_s - 100.0).abs() < 0.2);
/// assert!(pred.forecast[0].lo_s < 100.0 && 100.0 < pred.forecast[0].hi_s);
/// ```
#[derive(Debug, Clone)]
pub struct TimingPredictor {
    cfg: PaceConfig,
    cars: Vec<CarPace>,
    index: HashMap<String, usize>,
    /// Field-wide effect per lap number, s (see [`TimingPredictor::refresh_field`]), and
    /// the cars behind each.
    field: Vec<f64>,
    field_n: Vec<u32>,
    /// Laps neutralised for the whole field (see [`PaceConfig::slow_lap_share`]).
    slow: Vec<bool>,
    slopes: Vec<StintSlope>,
    pools: Vec<Conformal>,
    /// Per horizon, the correction added to the coverage asked of its pool: the residuals of
    /// a race are not exchangeable (stints lengthen, traffic comes), so the level that gives
    /// the coverage wanted is tracked online from the intervals' own hits and misses.
    aci: Vec<f64>,
}

impl TimingPredictor {
    /// An empty predictor (one per session).
    pub fn new(cfg: PaceConfig) -> TimingPredictor {
        let cfg = cfg.sanitized();
        let aci = vec![0.0; cfg.horizons];
        let pools = (0..cfg.horizons)
            .map(|_| Conformal::new(cfg.conformal_cap))
            .collect();
        TimingPredictor {
            cfg,
            cars: Vec::new(),
            index: HashMap::new(),
            field: Vec::new(),
            field_n: Vec::new(),
            slow: Vec::new(),
            slopes: Vec::new(),
            aci,
            pools,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &PaceConfig {
        &self.cfg
    }

    /// Residuals in the conformal pool of `horizon` (1-based).
    pub fn calibration_residuals(&self, horizon: usize) -> usize {
        self.pools
            .get(horizon.clamp(1, self.cfg.horizons) - 1)
            .map_or(0, Conformal::len)
    }

    /// Cars seen, in order of first appearance.
    pub fn cars(&self) -> impl Iterator<Item = &str> {
        self.cars.iter().map(|c| c.id.as_str())
    }

    /// Fuel term of a lap, s.
    fn fuel_term(&self, l: &LapLog) -> f64 {
        match l.fuel() {
            Some(f) => self.cfg.fuel_s_per_kg * f,
            None => -self.cfg.fuel_s_per_kg * self.cfg.fuel_burn_kg_per_lap * f64::from(l.lap),
        }
    }

    /// Whether the whole field ran `lap` slow (neutralised).
    fn is_slow(&self, lap: u32) -> bool {
        self.slow.get(lap as usize).copied().unwrap_or(false)
    }

    /// Field-wide effect at `lap`, s.
    fn field_effect(&self, lap: u32, _car: usize) -> f64 {
        if !self.cfg.field_effect {
            return 0.0;
        }
        self.field.get(lap as usize).copied().unwrap_or(0.0)
    }

    /// Re-estimates the field-wide per-lap effect from every car's current stint: each lap's
    /// departure from its stint's median (corrected for the effect, two passes), the median
    /// over the cars that ran the lap (at least 3), shrunk by m / (m + `field_prior_cars`).
    /// It holds what the field shares: the start and restart phases, track evolution, wind,
    /// and the field's common fuel and tyre trend.
    fn refresh_field(&mut self) {
        let max_lap = self
            .cars
            .iter()
            .filter_map(|c| c.pts.last().map(|p| p.lap))
            .max()
            .unwrap_or(0) as usize;
        // Only the last FIELD_WINDOW_LAPS laps are re-estimated (older ones keep their
        // values): a lap costs the same at lap 70 as at lap 10.
        let lo = max_lap.saturating_sub(FIELD_WINDOW_LAPS);
        // Laps the whole field ran slow (an unflagged safety car): each car's lap over its
        // best, the median over the cars.
        self.slow.resize(max_lap + 1, false);
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); max_lap + 1 - lo];
        for c in &self.cars {
            let best = c.pts.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
            if !(best.is_finite() && best > 0.0) {
                continue;
            }
            for p in c.pts.iter().filter(|p| p.lap as usize >= lo) {
                ratios[p.lap as usize - lo].push(p.y / best);
            }
        }
        for (i, r) in ratios.iter_mut().enumerate() {
            self.slow[lo + i] = r.len() >= 3 && median_mut(r) > 1.0 + self.cfg.slow_lap_share;
        }
        if !self.cfg.field_effect {
            return;
        }
        let mut e = vec![0.0; max_lap + 1];
        let mut counts = vec![0u32; max_lap + 1];
        for n in 0..lo.min(self.field.len()) {
            e[n] = self.field[n];
            counts[n] = self.field_n.get(n).copied().unwrap_or(0);
        }
        let mut per_lap: Vec<Vec<f64>> = vec![Vec::new(); max_lap + 1 - lo];
        let mut scratch: Vec<f64> = Vec::new();
        for _pass in 0..2 {
            per_lap.iter_mut().for_each(Vec::clear);
            for c in &self.cars {
                let recent = c
                    .pts
                    .iter()
                    .filter(|p| p.lap as usize >= lo && !self.slow[p.lap as usize]);
                if recent.clone().count() < 2 {
                    continue;
                }
                scratch.clear();
                scratch.extend(recent.clone().map(|p| p.y - e[p.lap as usize]));
                let m = median_mut(&mut scratch);
                for p in recent {
                    per_lap[p.lap as usize - lo].push(p.y - m);
                }
            }
            for (i, v) in per_lap.iter_mut().enumerate() {
                let n = lo + i;
                let m = v.len() as f64;
                counts[n] = v.len() as u32;
                e[n] = if v.len() >= 3 {
                    median_mut(v) * m / (m + self.cfg.field_prior_cars)
                } else {
                    0.0
                };
            }
        }
        if e.iter().all(|v| v.is_finite()) {
            self.field = e;
            self.field_n = counts;
        }
    }

    /// Noise prior: the median noise of the cars with a settled fit, else the config's.
    fn sigma_prior(&self, car: usize) -> f64 {
        let mut v: Vec<f64> = self
            .cars
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != car)
            .filter_map(|(_, c)| c.sigma)
            .collect();
        if let Some(own) = self.cars.get(car).and_then(|c| c.sigma) {
            // The car's own noise from earlier fits counts as much as the field's.
            v.push(own);
            v.push(own);
        }
        if v.len() < 2 {
            self.cfg.noise_prior_s
        } else {
            median_mut(&mut v)
        }
    }

    /// Fit of a car's current stint from everything seen.
    fn fit(&self, ci: usize) -> Option<Fit> {
        let c = self.cars.get(ci)?;
        let pts: Vec<(f64, f64)> = c
            .pts
            .iter()
            .filter(|p| !self.is_slow(p.lap))
            .map(|p| (p.age, p.y - self.field_effect(p.lap, ci)))
            .collect();
        let prior = field_slope(&self.slopes, c.slope_slot, &self.cfg);
        fit_line(
            &pts,
            f64::from(c.age),
            prior,
            self.sigma_prior(ci),
            &self.cfg,
        )
    }

    /// Fuel term `h` laps after the car's last lap, relative to the last lap, s.
    fn fuel_ahead(&self, c: &CarPace, h: u32) -> f64 {
        match (c.fuel_first, c.fuel_last) {
            (_, None) => -self.cfg.fuel_s_per_kg * self.cfg.fuel_burn_kg_per_lap * f64::from(h),
            (first, Some((lap_l, f_l))) => {
                let burn = match first {
                    Some((lap_f, f_f)) if lap_l > lap_f && f_f > f_l => {
                        (f_f - f_l) / f64::from(lap_l - lap_f)
                    }
                    _ => self.cfg.fuel_burn_kg_per_lap,
                };
                let f_h = (f_l - burn * f64::from(h)).max(0.0);
                self.cfg.fuel_s_per_kg * (f_h - f_l)
            }
        }
    }

    /// The car's fuel term at its last lap, s.
    fn fuel_now(&self, c: &CarPace) -> f64 {
        match c.fuel_last {
            Some((_, f)) => self.cfg.fuel_s_per_kg * f,
            None => -self.cfg.fuel_s_per_kg * self.cfg.fuel_burn_kg_per_lap * f64::from(c.last_lap),
        }
    }

    /// The field's effect `h` laps after the car's last lap (`h` = 0: now). The level is the
    /// median effect of the last three laps up to the car's last one that at least 3 cars ran,
    /// times `field_persistence`. With `field_trend_laps` > 0 the field's current trend is
    /// carried on too: the least-squares slope of the effect over the last run of at most
    /// that many consecutive laps (at least 4), shrunk toward 0 by its standard error against
    /// the prior `field_trend_sd_s_per_lap`.
    fn field_ahead(&self, c: &CarPace, h: u32) -> f64 {
        if self.cfg.field_persistence <= 0.0 || !self.cfg.field_effect || self.field.is_empty() {
            return 0.0;
        }
        let ok = |n: usize| self.field_n.get(n).is_some_and(|m| *m >= 3) && !self.is_slow(n as u32);
        let top = (c.last_lap as usize).min(self.field.len() - 1);
        let mut last: Vec<f64> = (0..=top)
            .rev()
            .filter(|n| ok(*n))
            .take(3)
            .filter_map(|n| self.field.get(n).copied())
            .collect();
        if last.is_empty() {
            return 0.0;
        }
        let level = median_mut(&mut last);
        let k = self.cfg.field_trend_laps;
        let mut slope = 0.0;
        if k >= 4 && h > 0 {
            let Some(end) = (0..=top).rev().find(|n| ok(*n)) else {
                return self.cfg.field_persistence * level;
            };
            let run: Vec<(f64, f64)> = (0..k)
                .map_while(|i| end.checked_sub(i).filter(|n| ok(*n)))
                .map(|n| (n as f64, self.field[n]))
                .collect();
            if run.len() >= 4 {
                let m = run.len() as f64;
                let xm = run.iter().map(|p| p.0).sum::<f64>() / m;
                let ym = run.iter().map(|p| p.1).sum::<f64>() / m;
                let sxx: f64 = run.iter().map(|p| (p.0 - xm).powi(2)).sum();
                let sxy: f64 = run.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum();
                let b = sxy / sxx;
                let rss: f64 = run
                    .iter()
                    .map(|p| (p.1 - ym - b * (p.0 - xm)).powi(2))
                    .sum();
                let se2 = rss / (m - 2.0) / sxx;
                let v0 = self.cfg.field_trend_sd_s_per_lap.powi(2);
                if b.is_finite() && se2.is_finite() {
                    slope = b * v0 / (v0 + se2);
                }
            }
        }
        self.cfg.field_persistence * (level + slope * f64::from(h))
    }

    /// Variance the field's level adds per lap ahead (a random walk's step), s²: from the
    /// last ten steps between consecutive laps at least 3 cars ran (robust: median of the
    /// squared steps / 0.455, the median of χ²₁); 0 without a field.
    fn field_step_var(&self, c: &CarPace) -> f64 {
        if self.cfg.field_persistence <= 0.0 || !self.cfg.field_effect || self.field.is_empty() {
            return 0.0;
        }
        let ok = |n: usize| self.field_n.get(n).is_some_and(|m| *m >= 3) && !self.is_slow(n as u32);
        let top = (c.last_lap as usize).min(self.field.len() - 1);
        let mut steps: Vec<f64> = (1..=top)
            .rev()
            .filter(|n| ok(*n) && ok(*n - 1))
            .take(10)
            .map(|n| (self.field[n] - self.field[n - 1]).powi(2))
            .collect();
        if steps.len() < 3 {
            return 0.0;
        }
        median_mut(&mut steps) / 0.455
    }

    /// The field's trend over the car's stint: least-squares slope of the field effect on lap
    /// number over the laps of the stint at least 3 cars ran, and its variance.
    fn field_trend(&self, c: &CarPace) -> (f64, f64) {
        if !self.cfg.field_effect {
            return (0.0, 0.0);
        }
        let pts: Vec<(f64, f64)> = c
            .pts
            .iter()
            .filter(|p| self.field_n.get(p.lap as usize).is_some_and(|m| *m >= 3))
            .filter(|p| !self.is_slow(p.lap))
            .map(|p| (f64::from(p.lap), self.field_effect(p.lap, 0)))
            .collect();
        let n = pts.len() as f64;
        if pts.len() < 3 {
            return (0.0, 0.0);
        }
        let xm = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let ym = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - xm).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum();
        if sxx <= 0.0 {
            return (0.0, 0.0);
        }
        let b = sxy / sxx;
        let rss: f64 = pts
            .iter()
            .map(|p| (p.1 - ym - b * (p.0 - xm)).powi(2))
            .sum();
        (b, rss / (n - 2.0).max(1.0) / sxx)
    }

    /// Adds a completed lap. Laps of one car must come in increasing lap order (an older or
    /// repeated lap is ignored and `false` returned); cars may interleave freely.
    pub fn on_lap(&mut self, l: &LapLog) -> bool {
        let ci = match self.index.get(&l.car_id) {
            Some(i) => *i,
            None => {
                self.cars.push(CarPace {
                    id: l.car_id.clone(),
                    cursor: StintCursor::default(),
                    stint: 0,
                    age: 0,
                    last_lap: 0,
                    pts: Vec::new(),
                    fuel_last: None,
                    fuel_first: None,
                    pending: Vec::new(),
                    sigma: None,
                    slope_slot: None,
                });
                self.index.insert(l.car_id.clone(), self.cars.len() - 1);
                self.cars.len() - 1
            }
        };
        if self.cars[ci].last_lap >= l.lap && self.cars[ci].cursor.started {
            return false;
        }
        let fuel_term = self.fuel_term(l);
        let green = l.is_green();
        let (stint, age, new) = self.cars[ci].cursor.advance(l);
        // Resolve the predictions made for this lap (none across a tyre change).
        let mut pend = std::mem::take(&mut self.cars[ci].pending);
        for p in pend.iter().filter(|p| p.target_lap == l.lap) {
            if !green || new {
                continue;
            }
            let z = (l.lap_time_s - p.pred_s) / p.se_s.max(1e-9);
            if let Some(pool) = self.pools.get_mut(p.horizon - 1) {
                pool.insert(z);
            }
            if let Some(a) = self.aci.get_mut(p.horizon - 1) {
                let miss = if z < p.z_lo || z > p.z_hi { 1.0 } else { 0.0 };
                *a = (*a + ACI_STEP * (miss - (1.0 - self.cfg.coverage))).clamp(-0.3, 0.19);
            }
        }
        // Predictions for later laps wait on (dropped at a tyre change).
        pend.retain(|p| p.target_lap > l.lap && !new);
        self.cars[ci].pending = pend;
        {
            let c = &mut self.cars[ci];
            if new {
                c.pts.clear();
                c.fuel_first = None;
                c.slope_slot = None;
            }
            c.stint = stint;
            c.age = age;
            c.last_lap = l.lap;
            if let Some(f) = l.fuel() {
                c.fuel_last = Some((l.lap, f));
                if c.fuel_first.is_none() {
                    c.fuel_first = Some((l.lap, f));
                }
            } else {
                c.fuel_last = None;
            }
            if green {
                c.pts.push(Pt {
                    lap: l.lap,
                    age: f64::from(age),
                    y: l.lap_time_s - fuel_term,
                });
            }
        }
        if green {
            self.refresh_field();
        }
        let Some(fit) = self.fit(ci) else {
            return true;
        };
        // The stint's slope for the field, the car's noise.
        if let Some((b, v)) = fit.raw {
            let s = StintSlope {
                car: ci,
                stint,
                beta: b,
                var: v,
            };
            match self.cars[ci].slope_slot {
                Some(i)
                    if self
                        .slopes
                        .get(i)
                        .is_some_and(|x| x.car == ci && x.stint == stint) =>
                {
                    self.slopes[i] = s
                }
                _ => {
                    self.slopes.push(s);
                    self.cars[ci].slope_slot = Some(self.slopes.len() - 1);
                }
            }
        }
        if fit.n_kept >= 5 {
            self.cars[ci].sigma = Some(fit.sigma);
        }
        // Predictions for the coming laps, kept until they are run.
        let c = &self.cars[ci];
        let fuel_now = self.fuel_now(c);
        let q = self.field_step_var(c);
        let fresh: Vec<Pending> = (1..=self.cfg.horizons)
            .map(|h| {
                let (y, se) = fit.at(f64::from(c.age) + h as f64);
                let se = (se * se + q * h as f64).sqrt();
                let fuel = fuel_now + self.fuel_ahead(c, h as u32);
                let (z_lo, z_hi) = self.z_bounds(h);
                Pending {
                    target_lap: c.last_lap + h as u32,
                    horizon: h,
                    pred_s: y + fuel + self.field_ahead(c, h as u32),
                    se_s: se,
                    z_lo,
                    z_hi,
                }
            })
            .collect();
        self.cars[ci].pending.extend(fresh);
        true
    }

    /// The standardised bounds at horizon `h` for the coverage wanted: each horizon's pool at
    /// its adaptive level; while small, it leans on the one before it (standardised residuals
    /// share a shape across horizons, and the shorter horizons' pools fill first), the first
    /// on the normal quantiles.
    fn z_bounds(&self, h: usize) -> (f64, f64) {
        let adj = self.aci.get(h.saturating_sub(1)).copied().unwrap_or(0.0);
        let cov = (self.cfg.coverage + adj).clamp(0.5, 0.99);
        let n0 = self.cfg.conformal_prior_n;
        let last = h.min(self.cfg.horizons).min(self.pools.len());
        let mut z = (
            -norm_quantile(0.5 + cov / 2.0),
            norm_quantile(0.5 + cov / 2.0),
        );
        for pool in self.pools.iter().take(last) {
            z = pool.bounds_toward(cov, n0, z);
        }
        z
    }

    /// The car's prediction for the next `horizon_laps` laps from everything seen so far;
    /// `None` for an unknown car or a stint without a green lap yet.
    pub fn predict(&self, car_id: &str, horizon_laps: usize) -> Option<PacePrediction> {
        let ci = *self.index.get(car_id)?;
        let c = &self.cars[ci];
        let fit = self.fit(ci)?;
        let a_now = f64::from(c.age);
        let fuel_now = self.fuel_now(c);
        let q = self.field_step_var(c);
        let forecast = (1..=horizon_laps)
            .map(|h| {
                let (y, se) = fit.at(a_now + h as f64);
                let se = (se * se + q * h as f64).sqrt();
                let t = y + fuel_now + self.fuel_ahead(c, h as u32) + self.field_ahead(c, h as u32);
                let (zlo, zhi) = self.z_bounds(h);
                LapForecast {
                    lap: c.last_lap.saturating_add(h as u32),
                    horizon: h as u32,
                    lap_time_s: t,
                    lo_s: t + zlo * se,
                    hi_s: t + zhi * se,
                }
            })
            .collect();
        let (trend, var_trend) = self.field_trend(c);
        let deg = fit.beta + trend;
        let mut used = c.pts.iter().filter(|p| !self.is_slow(p.lap));
        let first = used.next();
        let a_ref = used.next().or(first).map_or(a_now, |p| p.age);
        let loss = deg * (a_now - a_ref);
        let thr = self.cfg.loss_threshold_s;
        let laps_until = (deg > 1e-6).then(|| ((thr - loss) / deg).max(0.0));
        let fuel_per_lap = self.fuel_ahead(c, 1);
        Some(PacePrediction {
            car_id: c.id.clone(),
            predictor: PredictorKind::TimingOnly,
            lap: c.last_lap,
            stint: c.stint,
            tyre_age_laps: c.age,
            laps_used: fit.n_kept,
            laps_dropped: fit.n_dropped,
            pace_s: fit.at(a_now).0 + fuel_now + self.field_ahead(c, 0),
            noise_s: fit.sigma,
            degradation_s_per_lap: deg,
            degradation_sd_s_per_lap: (fit.var_beta + var_trend).max(0.0).sqrt(),
            field_degradation_s_per_lap: fit.prior_beta,
            fuel_s_per_lap: fuel_per_lap,
            loss_s: loss,
            laps_until_threshold: laps_until.filter(|v| v.is_finite()),
            threshold_s: thr,
            forecast,
        })
    }

    /// Predictions of every car (in order of first appearance) that has one.
    pub fn predict_all(&self, horizon_laps: usize) -> Vec<PacePrediction> {
        self.cars
            .iter()
            .filter_map(|c| self.predict(&c.id, horizon_laps))
            .collect()
    }
}
