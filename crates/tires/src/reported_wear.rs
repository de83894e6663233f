//! Reported-wear predictions: for sources that report tyre wear (the F1 game, any ingest with
//! `tyre_wear_*`), wear and lap time ahead from the session's own laps.
//!
//! - **Wear per corner** is the reported value (never a model's).
//! - **Wear rate** per corner, fitted online per stint: the discounted mean of the per-lap
//!   increments so far (an increment farther than `outlier_k` robust deviations from their
//!   median is left out). Before the stint has an increment the rate is the session's last
//!   stint of the same compound, else the first reported wear over (age + 1) laps (the
//!   out-lap wears the tyre too), blended out as increments come.
//! - **Wear ahead**: last reported wear + rate × laps; the interval is split-conformal on the
//!   session's standardised residuals (one pool per horizon, corners pooled).
//! - **Lap time from wear**, learned from the session's own laps:
//!   `lap time = base(stint) + fuel_s_per_kg × fuel + b × mean wear`, with a fixed effect per
//!   stint and `b` pooled over the session's stints (per compound, shrunk toward the session's
//!   `b`, which is shrunk toward the physics prior `prior_loss_rel_per_pct × lap time`). The
//!   physics is only the prior: with a few laps of two stints the session's own `b` dominates.
//!   Fuel stays at the prior (within a stint it is collinear with wear).
//! - **Laps until +0.5 s**: loss now is `b × (mean wear − mean wear at the stint's reference
//!   lap)` (its second green lap); the laps until `b × (wear + rate × laps)` reaches the
//!   threshold. The **pit lap** is the last lap before that (or before a corner reaches
//!   `wear_limit_pct`, when set).

use crate::pace::{
    fit_line, median_mut, Conformal, LapForecast, LapLog, PaceConfig, PredictorKind, StintCursor,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Settings of the reported-wear predictor.
///
/// The prior spreads (10 % of the physics prior) were chosen by leave-one-track-out on the F1
/// game long runs (`f1-game-laps/*.csv`; each held-out track chose 0.1 from 0.1-1.0 on the
/// other five, by the error of "laps until +0.5 s"): within a stint wear grows as fuel burns
/// and the track and driver improve, so a session alone says little about `b`, and a loose
/// prior let those trends pull `b` toward 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WearConfig {
    /// Lap-time settings (discount, outliers, noise, fuel, threshold, intervals).
    pub pace: PaceConfig,
    /// Physics prior: relative lap-time increase per % of mean wear (the tire model's
    /// `pace_physics.wear_lin_per_pct`).
    pub prior_loss_rel_per_pct: f64,
    /// Standard deviation of the session's `b` around the prior, relative to the prior.
    pub prior_loss_rel_sd: f64,
    /// Standard deviation of a compound's `b` around the session's, relative to the prior.
    pub compound_rel_sd: f64,
    /// A stop is due when a corner's wear would pass this, %; `None`: pace alone decides.
    pub wear_limit_pct: Option<f64>,
}

impl Default for WearConfig {
    fn default() -> Self {
        WearConfig {
            pace: PaceConfig::default(),
            prior_loss_rel_per_pct: 0.000_470_9,
            prior_loss_rel_sd: 0.1,
            compound_rel_sd: 0.1,
            wear_limit_pct: None,
        }
    }
}

impl WearConfig {
    /// The defaults with the physics prior (fuel and wear effect) of a tire model.
    pub fn with_physics(p: &crate::model::PacePhysics) -> WearConfig {
        let mut c = WearConfig::default();
        if p.fuel_s_per_kg.is_finite() {
            c.pace.fuel_s_per_kg = p.fuel_s_per_kg;
        }
        if p.wear_lin_per_pct.is_finite() && p.wear_lin_per_pct > 0.0 {
            c.prior_loss_rel_per_pct = p.wear_lin_per_pct;
        }
        c
    }

    fn sanitized(&self) -> WearConfig {
        let d = WearConfig::default();
        let pos = |v: f64, def: f64| if v.is_finite() && v > 0.0 { v } else { def };
        WearConfig {
            pace: self.pace.sanitized(),
            prior_loss_rel_per_pct: pos(self.prior_loss_rel_per_pct, d.prior_loss_rel_per_pct),
            prior_loss_rel_sd: pos(self.prior_loss_rel_sd, d.prior_loss_rel_sd),
            compound_rel_sd: pos(self.compound_rel_sd, d.compound_rel_sd),
            wear_limit_pct: self.wear_limit_pct.filter(|v| v.is_finite() && *v > 0.0),
        }
    }
}

/// Predicted wear of the four corners some laps ahead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WearForecast {
    /// The lap predicted (wear at its end).
    pub lap: u32,
    /// Laps ahead of the last lap seen.
    pub horizon: u32,
    /// Wear per corner (FL, FR, RL, RR), %.
    pub wear_pct: [f64; 4],
    /// Interval at the configured coverage: lower bounds, %.
    pub lo_pct: [f64; 4],
    /// Upper bounds, %.
    pub hi_pct: [f64; 4],
}

/// The reported-wear predictor's view of one car after its last lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WearPrediction {
    /// Car id.
    pub car_id: String,
    /// Always [`PredictorKind::ReportedWear`].
    pub predictor: PredictorKind,
    /// Last lap seen.
    pub lap: u32,
    /// Stint number of the car (0 = the first).
    pub stint: u32,
    /// Tyre age at the last lap, laps.
    pub tyre_age_laps: u32,
    /// Compound of the stint, when reported.
    pub compound: Option<String>,
    /// Reported wear per corner at the last lap, %.
    pub wear_pct: [f64; 4],
    /// Fitted wear rate per corner, %/lap.
    pub wear_rate_pct_per_lap: [f64; 4],
    /// Its standard deviation, %/lap.
    pub wear_rate_sd_pct_per_lap: [f64; 4],
    /// Wear ahead, horizons 1..=n.
    pub wear_forecast: Vec<WearForecast>,
    /// Lap time ahead (empty until the stint has a green lap).
    pub lap_forecast: Vec<LapForecast>,
    /// Lap time added per % of mean wear, s/% (this compound, from the session's laps).
    pub loss_per_wear_s_per_pct: f64,
    /// Its standard deviation, s/%.
    pub loss_per_wear_sd_s_per_pct: f64,
    /// The physics prior it was shrunk toward, s/%.
    pub loss_per_wear_prior_s_per_pct: f64,
    /// Tyre loss now against the stint's reference lap, s.
    pub loss_s: f64,
    /// Laps until the loss reaches the threshold; `None` when the loss does not grow.
    pub laps_until_threshold: Option<f64>,
    /// The threshold, s.
    pub threshold_s: f64,
    /// Last lap to run before stopping (pit at its end); `None` when nothing calls for it.
    pub pit_lap: Option<u32>,
    /// Lap-to-lap noise of lap times, s.
    pub noise_s: f64,
}

#[derive(Debug, Clone, Copy)]
struct WPt {
    lap: u32,
    age: f64,
    wear: [f64; 4],
    wbar: f64,
    /// Lap time minus fuel term, s (NaN when the lap has no time).
    y_fc: f64,
    green: bool,
}

#[derive(Debug, Clone)]
struct WStint {
    car: usize,
    compound: Option<String>,
    pts: Vec<WPt>,
    /// The stint's part of the loss fit, as of its last lap (see [`StintSums`]).
    sums: Option<StintSums>,
}

/// A stint's contribution to the lap-time-from-wear fit, computed when the stint gets a lap
/// (so that a lap costs one stint's work, not the session's).
#[derive(Debug, Clone, Copy)]
struct StintSums {
    /// Median fuel-corrected green lap time, s.
    median_s: f64,
    /// Noise (1.4826 × MAD about the stint's level), s; `None` under 3 green laps.
    sigma: Option<f64>,
    /// Demeaned sums of the kept green laps: Σ(w − w̄)², Σ(w − w̄)(y − ȳ).
    sxx: f64,
    sxy: f64,
}

#[derive(Debug, Clone, Copy)]
struct PendWear {
    target_lap: u32,
    horizon: usize,
    pred: [f64; 4],
    se: [f64; 4],
}

#[derive(Debug, Clone, Copy)]
struct PendTime {
    target_lap: u32,
    horizon: usize,
    pred_s: f64,
    se_s: f64,
    /// The wear model's own forecast and "repeat the last green lap", for the weights.
    model_s: f64,
    last_s: Option<f64>,
}

/// How much the lap-time forecast trusts the wear model against "repeat the last green lap":
/// discounted squared one-lap-ahead errors of each over the session's green laps (every car),
/// weighted by inverse error (a forecast combination). Where lap time follows wear the model
/// keeps its weight; where it does not (a source whose lap time ignores its wear) the session's
/// own laps move the weight to the last lap.
#[derive(Debug, Clone, Copy, Default)]
struct Combo {
    sq_model: f64,
    sq_last: f64,
    /// Discounted count of the errors.
    n: f64,
}

/// Discount per resolved one-lap-ahead error of [`Combo`].
const COMBO_DISCOUNT: f64 = 0.97;
/// The model's weight before the session has errors of its own...
const COMBO_PRIOR_WEIGHT: f64 = 0.8;
/// ...held as if it came from this many laps.
const COMBO_PRIOR_LAPS: f64 = 3.0;

impl Combo {
    fn weight_model(&self) -> f64 {
        let total = self.sq_model + self.sq_last;
        let data = if total > 0.0 {
            self.sq_last / total
        } else {
            COMBO_PRIOR_WEIGHT
        };
        let k = self.n / (self.n + COMBO_PRIOR_LAPS);
        let w = COMBO_PRIOR_WEIGHT + (data - COMBO_PRIOR_WEIGHT) * k;
        if w.is_finite() {
            w.clamp(0.0, 1.0)
        } else {
            COMBO_PRIOR_WEIGHT
        }
    }

    fn update(&mut self, err_model_s: f64, err_last_s: f64) {
        if !(err_model_s.is_finite() && err_last_s.is_finite()) {
            return;
        }
        self.sq_model = COMBO_DISCOUNT * self.sq_model + err_model_s * err_model_s;
        self.sq_last = COMBO_DISCOUNT * self.sq_last + err_last_s * err_last_s;
        self.n = COMBO_DISCOUNT * self.n + 1.0;
    }
}

#[derive(Debug, Clone)]
struct WCar {
    id: String,
    cursor: StintCursor,
    stint_no: u32,
    /// Index of the current stint in `ReportedWearPredictor::stints`.
    stint: Option<usize>,
    age: u32,
    last_lap: u32,
    started: bool,
    fuel_first: Option<(u32, f64)>,
    fuel_last: Option<(u32, f64)>,
    pend_wear: Vec<PendWear>,
    pend_time: Vec<PendTime>,
    /// The stint's last green lap time, s.
    last_green_s: Option<f64>,
}

/// The session's lap-time-from-wear slopes.
#[derive(Debug, Clone, Default)]
struct LossMap {
    /// Pooled (session) slope and variance, s/%.
    b: f64,
    var_b: f64,
    /// Per compound: (slope, variance).
    by_compound: HashMap<String, (f64, f64)>,
    /// Prior slope, s/%.
    b0: f64,
    /// Pooled lap-time noise, s.
    sigma: f64,
}

/// Wear rate of a stint's corner: (rate, sd of the rate, sd of one increment).
type Rate = (f64, f64, f64);

/// Reported-wear predictions for every car of one session, fed lap by lap.
#[derive(Debug, Clone)]
pub struct ReportedWearPredictor {
    cfg: WearConfig,
    cars: Vec<WCar>,
    index: HashMap<String, usize>,
    stints: Vec<WStint>,
    wear_pools: Vec<Conformal>,
    time_pools: Vec<Conformal>,
    loss: LossMap,
    combo: Combo,
    /// Laps neutralised for the whole field ([`PaceConfig::slow_lap_share`]).
    slow: Vec<bool>,
}

fn mean4(w: &[f64; 4]) -> f64 {
    w.iter().sum::<f64>() / 4.0
}

impl ReportedWearPredictor {
    /// An empty predictor (one per session).
    pub fn new(cfg: WearConfig) -> ReportedWearPredictor {
        let cfg = cfg.sanitized();
        let combo = Combo::default();
        let h = cfg.pace.horizons;
        let cap = cfg.pace.conformal_cap;
        ReportedWearPredictor {
            wear_pools: (0..h).map(|_| Conformal::new(cap)).collect(),
            time_pools: (0..h).map(|_| Conformal::new(cap)).collect(),
            cfg,
            cars: Vec::new(),
            index: HashMap::new(),
            stints: Vec::new(),
            loss: LossMap::default(),
            combo,
            slow: Vec::new(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &WearConfig {
        &self.cfg
    }

    fn fuel_term(&self, l: &LapLog) -> f64 {
        let p = &self.cfg.pace;
        match l.fuel() {
            Some(f) => p.fuel_s_per_kg * f,
            None => -p.fuel_s_per_kg * p.fuel_burn_kg_per_lap * f64::from(l.lap),
        }
    }

    /// Adds a completed lap. Laps without reported wear are ignored (`false`), as are laps
    /// not after the car's last one.
    pub fn on_lap(&mut self, l: &LapLog) -> bool {
        let Some(wear) = l.wear() else {
            return false;
        };
        let ci = match self.index.get(&l.car_id) {
            Some(i) => *i,
            None => {
                self.cars.push(WCar {
                    id: l.car_id.clone(),
                    cursor: StintCursor::default(),
                    stint_no: 0,
                    stint: None,
                    age: 0,
                    last_lap: 0,
                    started: false,
                    fuel_first: None,
                    fuel_last: None,
                    pend_wear: Vec::new(),
                    pend_time: Vec::new(),
                    last_green_s: None,
                });
                self.index.insert(l.car_id.clone(), self.cars.len() - 1);
                self.cars.len() - 1
            }
        };
        if self.cars[ci].started && l.lap <= self.cars[ci].last_lap {
            return false;
        }
        let wbar = mean4(&wear);
        let (mut stint_no, mut age, mut new) = self.cars[ci].cursor.advance(l);
        // Reported wear falling by more than a point is a tyre change whatever else says.
        let prev_wbar = self.cars[ci]
            .stint
            .and_then(|s| self.stints.get(s))
            .and_then(|s| s.pts.last())
            .map(|p| p.wbar);
        if !new && prev_wbar.is_some_and(|p| wbar < p - 1.0) {
            (stint_no, age) = self.cars[ci].cursor.restart_at(l);
            new = true;
        }
        let first = !self.cars[ci].started;
        let green = l.is_green();
        let y_fc = if l.has_time() {
            l.lap_time_s - self.fuel_term(l)
        } else {
            f64::NAN
        };
        // Resolve the predictions made for this lap (not across a tyre change).
        let mut pw = std::mem::take(&mut self.cars[ci].pend_wear);
        let mut pt = std::mem::take(&mut self.cars[ci].pend_time);
        if !new {
            for p in pw.iter().filter(|p| p.target_lap == l.lap) {
                if let Some(pool) = self.wear_pools.get_mut(p.horizon - 1) {
                    for c in 0..4 {
                        pool.insert((wear[c] - p.pred[c]) / p.se[c].max(1e-9));
                    }
                }
            }
            if green {
                for p in pt.iter().filter(|p| p.target_lap == l.lap) {
                    if let Some(pool) = self.time_pools.get_mut(p.horizon - 1) {
                        pool.insert((l.lap_time_s - p.pred_s) / p.se_s.max(1e-9));
                    }
                    if let (1, Some(last_s)) = (p.horizon, p.last_s) {
                        self.combo
                            .update(l.lap_time_s - p.model_s, l.lap_time_s - last_s);
                    }
                }
            }
        }
        // Predictions for later laps wait on (dropped at a tyre change).
        pw.retain(|p| p.target_lap > l.lap && !new);
        pt.retain(|p| p.target_lap > l.lap && !new);
        {
            let c = &mut self.cars[ci];
            c.pend_wear = pw;
            c.pend_time = pt;
            if new || first {
                c.last_green_s = None;
                self.stints.push(WStint {
                    car: ci,
                    compound: l.compound.clone(),
                    pts: Vec::new(),
                    sums: None,
                });
                c.stint = Some(self.stints.len() - 1);
                c.fuel_first = None;
            }
            if green && l.has_time() {
                c.last_green_s = Some(l.lap_time_s);
            }
            c.started = true;
            c.stint_no = stint_no;
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
        }
        if let Some(si) = self.cars[ci].stint {
            let s = &mut self.stints[si];
            if s.compound.is_none() {
                s.compound = l.compound.clone();
            }
            s.pts.push(WPt {
                lap: l.lap,
                age: f64::from(age),
                wear,
                wbar,
                y_fc,
                green: green && y_fc.is_finite(),
            });
        }
        if green {
            self.refresh_slow();
        }
        if let Some(si) = self.cars[ci].stint {
            self.refresh_loss(si);
        }
        // Predictions for the coming laps, kept until they are run.
        if let Some(p) = self.predict_idx(ci, self.cfg.pace.horizons) {
            let c = &mut self.cars[ci];
            c.pend_wear.extend(p.wear_forecast.iter().map(|f| PendWear {
                target_lap: f.lap,
                horizon: f.horizon as usize,
                pred: f.wear_pct,
                se: f.se,
            }));
            let last_s = c.last_green_s;
            c.pend_time.extend(p.lap_forecast.iter().map(|f| PendTime {
                target_lap: f.0.lap,
                horizon: f.0.horizon as usize,
                pred_s: f.0.lap_time_s,
                se_s: f.1,
                model_s: f.2,
                last_s,
            }));
        }
        true
    }

    fn is_slow(&self, lap: u32) -> bool {
        self.slow.get(lap as usize).copied().unwrap_or(false)
    }

    /// A green lap of a lap the field did not run slow: fit for the lap-time fits.
    fn usable(&self, p: &WPt) -> bool {
        p.green && !self.is_slow(p.lap)
    }

    /// Marks the laps (of the last 30) the field ran slow, as [`crate::TimingPredictor`] does:
    /// at least 3 cars, median lap over each car's best above 1 + `slow_lap_share`.
    fn refresh_slow(&mut self) {
        let max_lap = self
            .stints
            .iter()
            .filter_map(|s| s.pts.last().map(|p| p.lap))
            .max()
            .unwrap_or(0) as usize;
        let lo = max_lap.saturating_sub(30);
        let mut best = vec![f64::INFINITY; self.cars.len()];
        for s in &self.stints {
            for p in s.pts.iter().filter(|p| p.green) {
                if let Some(b) = best.get_mut(s.car) {
                    *b = b.min(p.y_fc);
                }
            }
        }
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); max_lap + 1 - lo];
        for s in &self.stints {
            let b = best.get(s.car).copied().unwrap_or(f64::INFINITY);
            if !(b.is_finite() && b > 0.0) {
                continue;
            }
            for p in s.pts.iter().filter(|p| p.green && p.lap as usize >= lo) {
                ratios[p.lap as usize - lo].push(p.y_fc / b);
            }
        }
        self.slow.resize(max_lap + 1, false);
        let share = self.cfg.pace.slow_lap_share;
        for (i, r) in ratios.iter_mut().enumerate() {
            self.slow[lo + i] = r.len() >= 3 && median_mut(r) > 1.0 + share;
        }
    }

    /// Updates stint `si`'s sums (at the session's current slope), then refits the
    /// lap-time-from-wear slopes from every stint's sums.
    fn refresh_loss(&mut self, si: usize) {
        let k = self.cfg.pace.outlier_k;
        let floor = self.cfg.pace.noise_floor_s;
        let b_prev = if self.loss.b0 > 0.0 {
            self.loss.b
        } else {
            // Before any fit: the prior at this stint's lap times.
            let mut t: Vec<f64> = self.stints[si]
                .pts
                .iter()
                .filter(|p| self.usable(p))
                .map(|p| p.y_fc)
                .collect();
            self.cfg.prior_loss_rel_per_pct * median_mut(&mut t).abs().max(1.0)
        };
        let slow = std::mem::take(&mut self.slow);
        if let Some(s) = self.stints.get_mut(si) {
            let g: Vec<&WPt> = s
                .pts
                .iter()
                .filter(|p| p.green && !slow.get(p.lap as usize).copied().unwrap_or(false))
                .collect();
            s.sums = if g.is_empty() {
                None
            } else {
                let mut ys: Vec<f64> = g.iter().map(|p| p.y_fc).collect();
                let median_s = median_mut(&mut ys);
                let mut r: Vec<f64> = g.iter().map(|p| p.y_fc - b_prev * p.wbar).collect();
                let med = median_mut(&mut r.clone());
                r.iter_mut().for_each(|v| *v = (*v - med).abs());
                let sig = (1.4826 * median_mut(&mut r)).max(floor);
                let kept: Vec<&&WPt> = g
                    .iter()
                    .filter(|p| (p.y_fc - b_prev * p.wbar - med).abs() <= k * sig.max(0.1))
                    .collect();
                let (mut sxx, mut sxy) = (0.0, 0.0);
                if kept.len() >= 2 {
                    let n = kept.len() as f64;
                    let xm = kept.iter().map(|p| p.wbar).sum::<f64>() / n;
                    let ym = kept.iter().map(|p| p.y_fc).sum::<f64>() / n;
                    for p in &kept {
                        sxx += (p.wbar - xm) * (p.wbar - xm);
                        sxy += (p.wbar - xm) * (p.y_fc - ym);
                    }
                }
                Some(StintSums {
                    median_s,
                    sigma: (g.len() >= 3).then_some(sig),
                    sxx,
                    sxy,
                })
            };
        }
        self.slow = slow;
        let mut times: Vec<f64> = self
            .stints
            .iter()
            .filter_map(|s| s.sums.map(|x| x.median_s))
            .collect();
        if times.is_empty() {
            return;
        }
        let t_ref = median_mut(&mut times).abs().max(1.0);
        let b0 = self.cfg.prior_loss_rel_per_pct * t_ref;
        let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
        let mut sigmas: Vec<f64> = Vec::new();
        for s in &self.stints {
            let Some(x) = s.sums else { continue };
            sigmas.extend(x.sigma);
            let e = sums
                .entry(s.compound.as_deref().unwrap_or_default())
                .or_default();
            e.0 += x.sxx;
            e.1 += x.sxy;
        }
        let sigma = if sigmas.is_empty() {
            self.cfg.pace.noise_prior_s
        } else {
            let m = sigmas.len() as f64;
            let s = median_mut(&mut sigmas);
            ((m * s * s + 2.0 * self.cfg.pace.noise_prior_s.powi(2)) / (m + 2.0)).sqrt()
        };
        let s2 = sigma * sigma;
        let tau0 = (self.cfg.prior_loss_rel_sd * b0).max(1e-9);
        let tau_c = (self.cfg.compound_rel_sd * b0).max(1e-9);
        let (sxx_all, sxy_all) = sums
            .values()
            .fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
        let k0 = s2 / (tau0 * tau0);
        let b = (sxy_all + k0 * b0) / (sxx_all + k0);
        let var_b = s2 / (sxx_all + k0);
        let kc = s2 / (tau_c * tau_c);
        let by_compound = sums
            .into_iter()
            .map(|(c, (sxx, sxy))| {
                let w = kc / (sxx + kc);
                let bc = (sxy + kc * b) / (sxx + kc);
                let vc = s2 / (sxx + kc) + w * w * var_b;
                (c.to_string(), (bc, vc))
            })
            .collect();
        if b.is_finite() && var_b.is_finite() {
            self.loss = LossMap {
                b,
                var_b,
                by_compound,
                b0,
                sigma,
            };
        }
    }

    /// Wear rate per corner of a stint.
    fn rates(&self, si: usize) -> [Rate; 4] {
        let s = &self.stints[si];
        let k = self.cfg.pace.outlier_k;
        let d = self.cfg.pace.discount_per_lap;
        let last = s.pts.last();
        let a_now = last.map_or(0.0, |p| p.age);
        std::array::from_fn(|c| {
            // Prior: the last earlier stint of the same compound, else wear / (age + 1).
            let prior = self.stints[..si]
                .iter()
                .rev()
                .filter(|o| o.compound == s.compound && o.pts.len() >= 3)
                .find_map(|o| {
                    let (f, l) = (o.pts.first()?, o.pts.last()?);
                    (l.age > f.age).then(|| (l.wear[c] - f.wear[c]) / (l.age - f.age))
                })
                .unwrap_or_else(|| {
                    s.pts
                        .first()
                        .map_or(0.0, |p| (p.wear[c] / (p.age + 1.0)).max(0.0))
                });
            let mut inc: Vec<(f64, f64)> = Vec::new();
            for w in s.pts.windows(2) {
                let da = w[1].age - w[0].age;
                if da >= 1.0 {
                    inc.push((w[1].age, (w[1].wear[c] - w[0].wear[c]) / da));
                }
            }
            let s_prior = 0.1 * prior.abs() + 0.02;
            if inc.is_empty() {
                return (prior, s_prior.max(0.3 * prior.abs()), s_prior);
            }
            let mut v: Vec<f64> = inc.iter().map(|x| x.1).collect();
            let med = median_mut(&mut v);
            let mut dev: Vec<f64> = inc.iter().map(|x| (x.1 - med).abs()).collect();
            let mad = 1.4826 * median_mut(&mut dev);
            let m = inc.len() as f64;
            let s_inc = ((m * mad * mad + 2.0 * s_prior * s_prior) / (m + 2.0)).sqrt();
            let (mut ws, mut w2, mut wy) = (0.0, 0.0, 0.0);
            for (a, x) in &inc {
                if (x - med).abs() <= k * s_inc.max(1e-6) || inc.len() < 3 {
                    let w = d.powf((a_now - a).max(0.0));
                    ws += w;
                    w2 += w * w;
                    wy += w * x;
                }
            }
            if ws <= 0.0 {
                return (prior, s_prior, s_prior);
            }
            let n_eff = ws * ws / w2;
            let n0 = 1.0;
            let r = (n_eff * wy / ws + n0 * prior) / (n_eff + n0);
            let se = s_inc / (n_eff + n0).sqrt();
            (r, se, s_inc)
        })
    }

    /// The car's prediction with the standard errors the pools need.
    fn predict_idx(&self, ci: usize, horizon: usize) -> Option<Full> {
        let c = self.cars.get(ci)?;
        let si = c.stint?;
        let s = self.stints.get(si)?;
        let last = *s.pts.last()?;
        let pc = &self.cfg.pace;
        let rates = self.rates(si);
        let rbar = rates.iter().map(|r| r.0).sum::<f64>() / 4.0;
        let mut wear_forecast = Vec::with_capacity(horizon);
        for h in 1..=horizon {
            let hf = h as f64;
            let pool = &self.wear_pools[h.min(pc.horizons) - 1];
            let (zlo, zhi) = pool.bounds(pc.coverage, pc.conformal_prior_n);
            let mut f = WearForecastSe {
                lap: c.last_lap.saturating_add(h as u32),
                horizon: h as u32,
                wear_pct: [0.0; 4],
                lo_pct: [0.0; 4],
                hi_pct: [0.0; 4],
                se: [0.0; 4],
            };
            for k in 0..4 {
                let (r, se_r, s_inc) = rates[k];
                let y = last.wear[k] + r * hf;
                let se = (hf * s_inc * s_inc + hf * hf * se_r * se_r)
                    .sqrt()
                    .max(1e-6);
                f.wear_pct[k] = y;
                f.lo_pct[k] = y + zlo * se;
                f.hi_pct[k] = y + zhi * se;
                f.se[k] = se;
            }
            wear_forecast.push(f);
        }
        // Lap time from wear.
        let (b, var_b) = s
            .compound
            .as_ref()
            .and_then(|k| self.loss.by_compound.get(k).copied())
            .or_else(|| self.loss.by_compound.get("").copied())
            .unwrap_or((self.loss.b, self.loss.var_b));
        let greens: Vec<&WPt> = s.pts.iter().filter(|p| self.usable(p)).collect();
        let a_now = last.age;
        // Level: the timing fit with the wear term taken off and the slope held near 0.
        let pts: Vec<(f64, f64)> = greens
            .iter()
            .map(|p| (p.age, p.y_fc - b * p.wbar))
            .collect();
        let sigma_prior = if self.loss.sigma > 0.0 {
            self.loss.sigma
        } else {
            pc.noise_prior_s
        };
        let tight = (0.0, pc.prior_degradation_sd_s_per_lap.powi(2));
        let fit = fit_line(&pts, a_now, tight, sigma_prior, pc);
        let fuel_now = match c.fuel_last {
            Some((_, f)) => pc.fuel_s_per_kg * f,
            None => -pc.fuel_s_per_kg * pc.fuel_burn_kg_per_lap * f64::from(c.last_lap),
        };
        let burn = match (c.fuel_first, c.fuel_last) {
            (Some((l0, f0)), Some((l1, f1))) if l1 > l0 && f0 > f1 => {
                f64::from(l1 - l0).recip() * (f0 - f1)
            }
            _ => pc.fuel_burn_kg_per_lap,
        };
        let mut lap_forecast = Vec::new();
        let w_model = self.combo.weight_model();
        if let Some(fit) = fit {
            let wbar_w = {
                let (mut ws, mut wx) = (0.0, 0.0);
                for p in &greens {
                    let w = pc.discount_per_lap.powf((a_now - p.age).max(0.0));
                    ws += w;
                    wx += w * p.wbar;
                }
                if ws > 0.0 {
                    wx / ws
                } else {
                    last.wbar
                }
            };
            for h in 1..=horizon {
                let hf = h as f64;
                let (lvl, se_l) = fit.at(a_now + hf);
                let wb = last.wbar + rbar * hf;
                let fuel = match c.fuel_last {
                    Some((_, f)) => pc.fuel_s_per_kg * (f - burn * hf).max(0.0),
                    None => fuel_now - pc.fuel_s_per_kg * pc.fuel_burn_kg_per_lap * hf,
                };
                let t_model = lvl + b * wb + fuel;
                let t = match c.last_green_s {
                    Some(last_s) => w_model * t_model + (1.0 - w_model) * last_s,
                    None => t_model,
                };
                let se = (se_l * se_l + (wb - wbar_w).powi(2) * var_b).sqrt();
                let pool = &self.time_pools[h.min(pc.horizons) - 1];
                let (zlo, zhi) = pool.bounds(pc.coverage, pc.conformal_prior_n);
                lap_forecast.push((
                    LapForecast {
                        lap: c.last_lap.saturating_add(h as u32),
                        horizon: h as u32,
                        lap_time_s: t,
                        lo_s: t + zlo * se,
                        hi_s: t + zhi * se,
                    },
                    se,
                    t_model,
                ));
            }
        }
        let ref_wbar = greens
            .get(1)
            .or(greens.first())
            .map_or(last.wbar, |p| p.wbar);
        let loss = b * (last.wbar - ref_wbar);
        let thr = pc.loss_threshold_s;
        let grow = b * rbar;
        let laps_until = (grow > 1e-9)
            .then(|| ((thr - loss) / grow).max(0.0))
            .filter(|v| v.is_finite());
        let limit_laps = self.cfg.wear_limit_pct.and_then(|lim| {
            (0..4)
                .filter(|k| rates[*k].0 > 1e-9)
                .map(|k| ((lim - last.wear[k]) / rates[k].0).max(0.0))
                .min_by(f64::total_cmp)
        });
        let pit_in = match (laps_until, limit_laps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let pit_lap = pit_in
            .filter(|v| *v < 1e6)
            .map(|v| c.last_lap.saturating_add(v.floor() as u32));
        Some(Full {
            pred: WearPrediction {
                car_id: c.id.clone(),
                predictor: PredictorKind::ReportedWear,
                lap: c.last_lap,
                stint: c.stint_no,
                tyre_age_laps: c.age,
                compound: s.compound.clone(),
                wear_pct: last.wear,
                wear_rate_pct_per_lap: std::array::from_fn(|k| rates[k].0),
                wear_rate_sd_pct_per_lap: std::array::from_fn(|k| rates[k].1),
                wear_forecast: Vec::new(),
                lap_forecast: Vec::new(),
                loss_per_wear_s_per_pct: b,
                loss_per_wear_sd_s_per_pct: var_b.max(0.0).sqrt(),
                loss_per_wear_prior_s_per_pct: self.loss.b0,
                loss_s: loss,
                laps_until_threshold: laps_until,
                threshold_s: thr,
                pit_lap,
                noise_s: fit.map_or(sigma_prior, |f| f.sigma),
            },
            wear_forecast,
            lap_forecast,
        })
    }

    /// The car's prediction for the next `horizon_laps` laps from everything seen so far;
    /// `None` for an unknown car.
    pub fn predict(&self, car_id: &str, horizon_laps: usize) -> Option<WearPrediction> {
        let ci = *self.index.get(car_id)?;
        let f = self.predict_idx(ci, horizon_laps)?;
        let mut p = f.pred;
        p.wear_forecast = f
            .wear_forecast
            .iter()
            .map(|w| WearForecast {
                lap: w.lap,
                horizon: w.horizon,
                wear_pct: w.wear_pct,
                lo_pct: w.lo_pct,
                hi_pct: w.hi_pct,
            })
            .collect();
        p.lap_forecast = f.lap_forecast.iter().map(|x| x.0).collect();
        Some(p)
    }

    /// Predictions of every car (in order of first appearance) that has one.
    pub fn predict_all(&self, horizon_laps: usize) -> Vec<WearPrediction> {
        self.cars
            .iter()
            .filter_map(|c| self.predict(&c.id, horizon_laps))
            .collect()
    }
}

/// A wear forecast with its standard errors (for the pools).
#[derive(Debug, Clone, Copy)]
struct WearForecastSe {
    lap: u32,
    horizon: u32,
    wear_pct: [f64; 4],
    lo_pct: [f64; 4],
    hi_pct: [f64; 4],
    se: [f64; 4],
}

/// A prediction with the standard errors behind its intervals.
struct Full {
    pred: WearPrediction,
    wear_forecast: Vec<WearForecastSe>,
    /// (forecast, its standard error, the wear model's own lap time).
    lap_forecast: Vec<(LapForecast, f64, f64)>,
}
