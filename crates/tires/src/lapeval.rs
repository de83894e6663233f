//! Scoring the timing-only and reported-wear predictors on per-lap records, causally, beside
//! two baselines.
//!
//! Protocol, per session: laps are fed lap number by lap number (every car's lap `n`, then
//! `n + 1`); after lap `n` each car's laps `n + 1 ..= n + horizon` are predicted from laps
//! `≤ n` only. A prediction is scored when its lap exists, is green ([`LapLog::is_green`], and
//! not a lap the whole field ran more than `slow_lap_share` slower than its best: an
//! unflagged safety car) and is in the same stint, and when every competitor predicted it:
//! - **repeat the last lap**: the stint's last green lap time;
//! - **stint line**: a least-squares line of lap time on tyre age through the stint's green
//!   laps so far (the last lap while there is one);
//! - the timing-only predictor, and the reported-wear one on sessions that report wear.
//!
//! Figures: lap-time MAE next lap, over the next `horizon` laps and at `horizon` exactly;
//! coverage and mean width of the intervals; for wear sessions, 1-lap-ahead wear R² per tyre
//! (of the level and of the increment), wear error `horizon` laps ahead, wear interval
//! coverage; "laps until +0.5 s" against when it happened; and the hindsight noise: the mean
//! absolute residual of a line fitted through each whole stint afterwards, a floor no causal
//! predictor reaches.
//!
//! **When +0.5 s happened** (hindsight, per stint with ≥ 6 green laps): fuel-corrected green
//! lap times (the predictors' fuel prior), smoothed by a running median of three; the
//! reference is the median of the first three; the crossing is the first lap from the third
//! on whose smoothed time is ≥ reference + threshold. A prediction made at a lap before the
//! crossing (from the third green lap on) predicts the crossing at age now + laps until.

use crate::eval::{bars, curves, esc, histogram, mean, r2, scatter, StintCurve};
use crate::pace::{median_mut, LapLog, PaceConfig, PacePrediction, StintCursor, TimingPredictor};
use crate::reported_wear::{ReportedWearPredictor, WearConfig, WearPrediction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Predicted "laps until" are capped at this many laps when scored (a pit window is not
/// planned further ahead; see [`crate::tracker::HORIZON_LAPS`]).
pub const THRESHOLD_CAP_LAPS: f64 = 60.0;

/// The laps of one session (one file, one race).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapSession {
    /// Session label (file stem, session id).
    pub id: String,
    /// Laps of every car, any order.
    pub laps: Vec<LapLog>,
}

/// Settings of [`evaluate_laps`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LapEvalConfig {
    /// Timing-only predictor.
    pub pace: PaceConfig,
    /// Reported-wear predictor.
    pub wear: WearConfig,
}

/// Lap-time scores at one horizon (or a range of horizons).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HorizonScore {
    /// Predictions scored.
    pub n: usize,
    /// Timing-only predictor: MAE, s.
    pub timing_mae_s: f64,
    /// Share of outcomes inside its interval.
    pub timing_coverage: f64,
    /// Mean interval width, s.
    pub timing_width_s: f64,
    /// Reported-wear predictor, on sessions with wear: predictions scored.
    pub n_wear: usize,
    /// Its MAE, s (same laps as the others in those sessions).
    pub wear_mae_s: Option<f64>,
    /// Its coverage.
    pub wear_coverage: Option<f64>,
    /// "Repeat the last lap": MAE, s.
    pub last_lap_mae_s: f64,
    /// "Stint line": MAE, s.
    pub stint_line_mae_s: f64,
}

/// Lap-time scores of a group (one session, or all).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LapTimeMetrics {
    /// Session id, or `ALL`.
    pub key: String,
    /// Cars.
    pub n_cars: usize,
    /// Laps, and green laps.
    pub n_laps: usize,
    /// Green laps.
    pub n_green_laps: usize,
    /// Mean |residual| of a line through each whole stint's green laps, fitted afterwards
    /// (stints of ≥ 5 green laps): the lap-to-lap noise, s.
    pub hindsight_line_mae_s: f64,
    /// Lap-to-lap noise without incidents: 1.4826 × the median |difference| between
    /// consecutive green laps of a stint, over √2, s.
    pub lap_to_lap_sigma_s: f64,
    /// Next lap.
    pub next_lap: HorizonScore,
    /// Every lap 1..=horizon ahead.
    pub next_laps: HorizonScore,
    /// Exactly `horizon` laps ahead.
    pub at_horizon: HorizonScore,
}

/// Wear scores of a group of sessions that report wear.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WearMetrics {
    /// Session id, or `ALL`.
    pub key: String,
    /// 1-lap-ahead predictions scored (per tyre).
    pub n_1: usize,
    /// R² of the wear 1 lap ahead, per tyre (FL, FR, RL, RR).
    pub r2_1lap: [f64; 4],
    /// R² of the wear *added* in that lap (prediction − last reported vs truth − last), per
    /// tyre: the harder figure (the level's R² is high because wear accumulates).
    pub r2_1lap_increment: [f64; 4],
    /// MAE 1 lap ahead per tyre, %.
    pub mae_1lap_pct: [f64; 4],
    /// `horizon`-laps-ahead predictions scored (per tyre).
    pub n_h: usize,
    /// MAE `horizon` laps ahead per tyre, %.
    pub mae_h_pct: [f64; 4],
    /// Mean error (predicted − true) `horizon` laps ahead over all tyres, %.
    pub bias_h_pct: f64,
    /// Baseline "the last increment repeated": MAE 1 lap and `horizon` laps ahead (all tyres), %.
    pub last_increment_mae_1lap_pct: f64,
    /// See `last_increment_mae_1lap_pct`.
    pub last_increment_mae_h_pct: f64,
    /// Coverage of the wear intervals 1 and `horizon` laps ahead (all tyres).
    pub coverage_1lap: f64,
    /// See `coverage_1lap`.
    pub coverage_h: f64,
}

/// "Laps until +threshold" against when it happened, for one predictor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    /// `timing only`, `reported wear` or `stint line`.
    pub predictor: String,
    /// Stints scored (≥ 6 green laps) where the loss reached the threshold, and where not.
    pub stints_crossing: usize,
    /// See `stints_crossing`.
    pub stints_not_crossing: usize,
    /// Predictions made before the crossing (crossing stints).
    pub n_before: usize,
    /// Of those, how many predicted no crossing at all.
    pub n_none: usize,
    /// MAE of the predicted crossing age, laps (predictions with a crossing; a prediction
    /// beyond [`THRESHOLD_CAP_LAPS`] counts as that many).
    pub mae_laps: f64,
    /// The same over every prediction before the crossing, "no crossing" counting as
    /// [`THRESHOLD_CAP_LAPS`].
    pub mae_capped_laps: f64,
    /// Mean error (predicted − real), laps.
    pub bias_laps: f64,
    /// Predictions in stints that never crossed.
    pub n_no_cross: usize,
    /// Share of those that predicted a crossing before the stint ended.
    pub false_alarm_share: f64,
}

/// Data behind the report's plots.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LapSeries {
    /// A few stints: real lap times, next-lap predictions and their intervals.
    pub curves: Vec<StintCurve>,
    /// Next-lap residuals of the timing-only predictor, s (at most 3,000).
    pub residuals_s: Vec<f64>,
    /// (true, predicted) wear 1 lap ahead, % (at most 3,000).
    pub wear_true_pred_pct: Vec<[f64; 2]>,
}

/// The evaluation on per-lap records.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LapEvalReport {
    /// Sessions scored.
    pub n_sessions: usize,
    /// Horizon of the "next laps" figures.
    pub horizon: usize,
    /// Pooled over sessions.
    pub all: LapTimeMetrics,
    /// Per session.
    pub per_session: Vec<LapTimeMetrics>,
    /// Wear, pooled over the sessions that report it (`None`: none does).
    pub wear: Option<WearMetrics>,
    /// Wear per session that reports it.
    pub wear_per_session: Vec<WearMetrics>,
    /// "Laps until +threshold" per predictor (pooled).
    pub threshold: Vec<ThresholdMetrics>,
    /// Plot data.
    pub series: LapSeries,
    /// Settings used.
    pub config: LapEvalConfig,
}

/// Running sums of one horizon score.
#[derive(Debug, Clone, Default)]
struct HAcc {
    n: usize,
    t_abs: f64,
    t_in: usize,
    t_w: f64,
    nw: usize,
    w_abs: f64,
    w_in: usize,
    last: f64,
    line: f64,
}

impl HAcc {
    fn add(
        &mut self,
        y: f64,
        t: (f64, f64, f64),
        w: Option<(f64, f64, f64)>,
        last: f64,
        line: f64,
    ) {
        self.n += 1;
        self.t_abs += (y - t.0).abs();
        self.t_in += usize::from(y >= t.1 && y <= t.2);
        self.t_w += t.2 - t.1;
        if let Some(w) = w {
            self.nw += 1;
            self.w_abs += (y - w.0).abs();
            self.w_in += usize::from(y >= w.1 && y <= w.2);
        }
        self.last += (y - last).abs();
        self.line += (y - line).abs();
    }
    fn merge(&mut self, o: &HAcc) {
        self.n += o.n;
        self.t_abs += o.t_abs;
        self.t_in += o.t_in;
        self.t_w += o.t_w;
        self.nw += o.nw;
        self.w_abs += o.w_abs;
        self.w_in += o.w_in;
        self.last += o.last;
        self.line += o.line;
    }
    fn score(&self) -> HorizonScore {
        let n = self.n.max(1) as f64;
        let nw = self.nw.max(1) as f64;
        HorizonScore {
            n: self.n,
            timing_mae_s: self.t_abs / n,
            timing_coverage: self.t_in as f64 / n,
            timing_width_s: self.t_w / n,
            n_wear: self.nw,
            wear_mae_s: (self.nw > 0).then(|| self.w_abs / nw),
            wear_coverage: (self.nw > 0).then(|| self.w_in as f64 / nw),
            last_lap_mae_s: self.last / n,
            stint_line_mae_s: self.line / n,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct TimeAcc {
    cars: usize,
    laps: usize,
    green: usize,
    hind_abs: f64,
    hind_n: usize,
    hind_res: Vec<f64>,
    h1: HAcc,
    hall: HAcc,
    hk: HAcc,
}

impl TimeAcc {
    fn merge(&mut self, o: &TimeAcc) {
        self.cars += o.cars;
        self.laps += o.laps;
        self.green += o.green;
        self.hind_abs += o.hind_abs;
        self.hind_n += o.hind_n;
        self.hind_res.extend(&o.hind_res);
        self.h1.merge(&o.h1);
        self.hall.merge(&o.hall);
        self.hk.merge(&o.hk);
    }
    fn metrics(&self, key: &str) -> LapTimeMetrics {
        LapTimeMetrics {
            key: key.to_string(),
            n_cars: self.cars,
            n_laps: self.laps,
            n_green_laps: self.green,
            hindsight_line_mae_s: self.hind_abs / self.hind_n.max(1) as f64,
            lap_to_lap_sigma_s: 1.4826 * median_mut(&mut self.hind_res.clone())
                / std::f64::consts::SQRT_2,
            next_lap: self.h1.score(),
            next_laps: self.hall.score(),
            at_horizon: self.hk.score(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct WearAcc {
    y1: [Vec<f64>; 4],
    p1: [Vec<f64>; 4],
    dy1: [Vec<f64>; 4],
    dp1: [Vec<f64>; 4],
    in1: usize,
    base1: f64,
    errh: [f64; 4],
    biash: f64,
    nh: usize,
    inh: usize,
    baseh: f64,
}

impl WearAcc {
    fn merge(&mut self, o: &WearAcc) {
        for c in 0..4 {
            self.y1[c].extend(&o.y1[c]);
            self.p1[c].extend(&o.p1[c]);
            self.dy1[c].extend(&o.dy1[c]);
            self.dp1[c].extend(&o.dp1[c]);
            self.errh[c] += o.errh[c];
        }
        self.in1 += o.in1;
        self.base1 += o.base1;
        self.biash += o.biash;
        self.nh += o.nh;
        self.inh += o.inh;
        self.baseh += o.baseh;
    }
    fn metrics(&self, key: &str) -> WearMetrics {
        let n1 = self.y1[0].len();
        let nh = self.nh.max(1) as f64;
        WearMetrics {
            key: key.to_string(),
            n_1: n1,
            r2_1lap: std::array::from_fn(|c| r2(&self.y1[c], &self.p1[c])),
            r2_1lap_increment: std::array::from_fn(|c| r2(&self.dy1[c], &self.dp1[c])),
            mae_1lap_pct: std::array::from_fn(|c| {
                mean(
                    &self.y1[c]
                        .iter()
                        .zip(&self.p1[c])
                        .map(|(a, b)| (a - b).abs())
                        .collect::<Vec<_>>(),
                )
            }),
            n_h: self.nh,
            mae_h_pct: std::array::from_fn(|c| self.errh[c] / nh),
            bias_h_pct: self.biash / (4.0 * nh),
            last_increment_mae_1lap_pct: self.base1 / (4 * n1.max(1)) as f64,
            last_increment_mae_h_pct: self.baseh / (4.0 * nh),
            coverage_1lap: self.in1 as f64 / (4 * n1.max(1)) as f64,
            coverage_h: self.inh as f64 / (4.0 * nh),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ThrAcc {
    cross: usize,
    no_cross: usize,
    before: usize,
    none: usize,
    abs: f64,
    bias: f64,
    n_err: usize,
    n_nc: usize,
    alarms: usize,
    abs_capped: f64,
}

impl ThrAcc {
    fn metrics(&self, name: &str) -> ThresholdMetrics {
        ThresholdMetrics {
            predictor: name.to_string(),
            stints_crossing: self.cross,
            stints_not_crossing: self.no_cross,
            n_before: self.before,
            n_none: self.none,
            mae_laps: self.abs / self.n_err.max(1) as f64,
            mae_capped_laps: self.abs_capped / self.before.max(1) as f64,
            bias_laps: self.bias / self.n_err.max(1) as f64,
            n_no_cross: self.n_nc,
            false_alarm_share: self.alarms as f64 / self.n_nc.max(1) as f64,
        }
    }
}

/// A lap of a car with its stint and age (hindsight of the flags only).
#[derive(Debug, Clone)]
struct Tagged {
    log: LapLog,
    stint: u32,
    age: u32,
    /// Green by its flags and not a lap the whole field ran slow (see [`slow_laps`]).
    green: bool,
}

/// Laps (by number) that at least 3 cars ran, at the median, more than `share` slower than
/// each one's best green lap: an unflagged safety car or yellow, not scored (hindsight over
/// the session; the predictors detect it causally, [`PaceConfig::slow_lap_share`]).
fn slow_laps(laps: &[LapLog], share: f64) -> std::collections::HashSet<u32> {
    let mut best: HashMap<&str, f64> = HashMap::new();
    for l in laps.iter().filter(|l| l.is_green()) {
        let b = best.entry(l.car_id.as_str()).or_insert(f64::INFINITY);
        *b = b.min(l.lap_time_s);
    }
    let mut per_lap: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for l in laps.iter().filter(|l| l.is_green()) {
        if let Some(b) = best
            .get(l.car_id.as_str())
            .filter(|b| b.is_finite() && **b > 0.0)
        {
            per_lap.entry(l.lap).or_default().push(l.lap_time_s / b);
        }
    }
    per_lap
        .into_iter()
        .filter_map(|(n, mut r)| (r.len() >= 3 && median_mut(&mut r) > 1.0 + share).then_some(n))
        .collect()
}

/// Least-squares line of `y` on `x`, evaluated at `at`; the mean when the x do not vary.
fn line_at(pts: &[(f64, f64)], at: f64) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.is_empty() {
        return None;
    }
    let xm = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let ym = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - xm).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum();
    let b = if sxx > 1e-12 { sxy / sxx } else { 0.0 };
    Some((ym + b * (at - xm), b))
}

/// Per-predictor "laps until" state within a stint.
struct ThrStint {
    /// Crossing age, if the stint crossed.
    cross_age: Option<f64>,
    last_age: f64,
}

/// The hindsight crossing of a stint's green laps `(age, fuel-corrected time)`.
fn hindsight_crossing(g: &[(f64, f64)], thr: f64) -> Option<Option<f64>> {
    if g.len() < 6 {
        return None;
    }
    let mut first3 = [g[0].1, g[1].1, g[2].1];
    let r = median_mut(&mut first3);
    for i in 2..g.len() {
        let mut w: Vec<f64> = g[i - 1..(i + 2).min(g.len())].iter().map(|p| p.1).collect();
        if median_mut(&mut w) - r >= thr {
            return Some(Some(g[i].0));
        }
    }
    Some(None)
}

/// Scores the timing-only predictor (and, on sessions that report wear, the reported-wear
/// predictor) on `sessions`, next lap and `horizon` laps ahead, beside the two baselines.
pub fn evaluate_laps(
    sessions: &[LapSession],
    cfg: &LapEvalConfig,
    horizon: usize,
) -> LapEvalReport {
    let horizon = horizon.clamp(1, 50);
    let mut all_t = TimeAcc::default();
    let mut all_w = WearAcc::default();
    let mut any_wear = false;
    let mut per_session = Vec::new();
    let mut wear_per_session = Vec::new();
    let mut thr: BTreeMap<&'static str, ThrAcc> = BTreeMap::new();
    let mut series = LapSeries::default();
    let mut residuals = Vec::new();
    let mut wear_pts = Vec::new();
    let pace_cfg = cfg.pace.sanitized();
    for s in sessions {
        let (t, w) = evaluate_session(
            s,
            cfg,
            &pace_cfg,
            horizon,
            &mut thr,
            &mut series,
            &mut residuals,
            &mut wear_pts,
        );
        per_session.push(t.metrics(&s.id));
        all_t.merge(&t);
        if let Some(w) = w {
            any_wear = true;
            wear_per_session.push(w.metrics(&s.id));
            all_w.merge(&w);
        }
    }
    let stride = |n: usize| (n / 3000).max(1);
    let rs = stride(residuals.len());
    series.residuals_s = residuals.into_iter().step_by(rs).collect();
    let ws = stride(wear_pts.len());
    series.wear_true_pred_pct = wear_pts.into_iter().step_by(ws).collect();
    LapEvalReport {
        n_sessions: sessions.len(),
        horizon,
        all: all_t.metrics("ALL"),
        per_session,
        wear: any_wear.then(|| all_w.metrics("ALL")),
        wear_per_session,
        threshold: thr.iter().map(|(k, a)| a.metrics(k)).collect(),
        series,
        config: cfg.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn evaluate_session(
    s: &LapSession,
    cfg: &LapEvalConfig,
    pace_cfg: &PaceConfig,
    horizon: usize,
    thr: &mut BTreeMap<&'static str, ThrAcc>,
    series: &mut LapSeries,
    residuals: &mut Vec<f64>,
    wear_pts: &mut Vec<[f64; 2]>,
) -> (TimeAcc, Option<WearAcc>) {
    let has_wear = s.laps.iter().any(|l| l.wear().is_some());
    // Cars, their laps in order, tagged with stint and age.
    let mut by_car: BTreeMap<&str, Vec<&LapLog>> = BTreeMap::new();
    for l in &s.laps {
        by_car.entry(l.car_id.as_str()).or_default().push(l);
    }
    let slow = slow_laps(&s.laps, pace_cfg.slow_lap_share);
    let mut cars: Vec<(String, Vec<Tagged>)> = Vec::new();
    for (id, mut v) in by_car {
        v.sort_by_key(|l| l.lap);
        v.dedup_by_key(|l| l.lap);
        let mut cur = StintCursor::default();
        let mut prev_wbar: Option<f64> = None;
        let tagged = v
            .into_iter()
            .map(|l| {
                let (mut stint, mut age, new) = cur.advance(l);
                // As the reported-wear predictor: falling wear is a tyre change.
                let wbar = l.wear().map(|w| w.iter().sum::<f64>() / 4.0);
                if !new && matches!((prev_wbar, wbar), (Some(p), Some(w)) if w < p - 1.0) {
                    (stint, age) = cur.restart_at(l);
                }
                if wbar.is_some() {
                    prev_wbar = wbar;
                }
                Tagged {
                    log: l.clone(),
                    stint,
                    age,
                    green: l.is_green() && !slow.contains(&l.lap),
                }
            })
            .collect();
        cars.push((id.to_string(), tagged));
    }
    let mut acc = TimeAcc {
        cars: cars.len(),
        laps: s.laps.len(),
        ..TimeAcc::default()
    };
    let mut wacc = WearAcc::default();
    let fuel_term = |l: &LapLog| match l.fuel() {
        Some(f) => pace_cfg.fuel_s_per_kg * f,
        None => -pace_cfg.fuel_s_per_kg * pace_cfg.fuel_burn_kg_per_lap * f64::from(l.lap),
    };
    // Hindsight: noise floor and the threshold crossings per (car, stint).
    let mut crossings: HashMap<(usize, u32), ThrStint> = HashMap::new();
    for (ci, (_, laps)) in cars.iter().enumerate() {
        let mut stints: BTreeMap<u32, Vec<&Tagged>> = BTreeMap::new();
        for t in laps.iter().filter(|t| t.green) {
            stints.entry(t.stint).or_default().push(t);
        }
        acc.green += stints.values().map(Vec::len).sum::<usize>();
        for (st, g) in stints {
            if g.len() >= 5 {
                let pts: Vec<(f64, f64)> = g
                    .iter()
                    .map(|t| (f64::from(t.age), t.log.lap_time_s))
                    .collect();
                for p in &pts {
                    if let Some((y, _)) = line_at(&pts, p.0) {
                        acc.hind_abs += (p.1 - y).abs();
                        acc.hind_n += 1;
                    }
                }
                for w in g.windows(2) {
                    if w[1].log.lap == w[0].log.lap + 1 {
                        acc.hind_res
                            .push((w[1].log.lap_time_s - w[0].log.lap_time_s).abs());
                    }
                }
            }
            let fc: Vec<(f64, f64)> = g
                .iter()
                .map(|t| (f64::from(t.age), t.log.lap_time_s - fuel_term(&t.log)))
                .collect();
            if let Some(c) = hindsight_crossing(&fc, pace_cfg.loss_threshold_s) {
                crossings.insert(
                    (ci, st),
                    ThrStint {
                        cross_age: c,
                        last_age: fc.last().map_or(0.0, |p| p.0),
                    },
                );
                for name in ["timing only", "stint line"]
                    .into_iter()
                    .chain(has_wear.then_some("reported wear"))
                {
                    let a = thr.entry(name).or_default();
                    if c.is_some() {
                        a.cross += 1;
                    } else {
                        a.no_cross += 1;
                    }
                }
            }
        }
    }
    // Feed lap number by lap number.
    let mut timing = TimingPredictor::new(cfg.pace.clone());
    let mut wear = has_wear.then(|| ReportedWearPredictor::new(cfg.wear.clone()));
    let mut order: Vec<(u32, usize, usize)> = Vec::new();
    for (ci, (_, laps)) in cars.iter().enumerate() {
        for (li, t) in laps.iter().enumerate() {
            order.push((t.log.lap, ci, li));
        }
    }
    order.sort_unstable();
    let lap_index: Vec<HashMap<u32, usize>> = cars
        .iter()
        .map(|(_, laps)| {
            laps.iter()
                .enumerate()
                .map(|(i, t)| (t.log.lap, i))
                .collect()
        })
        .collect();
    let mut curves: BTreeMap<(usize, u32), StintCurve> = BTreeMap::new();
    let mut i = 0;
    while i < order.len() {
        let lap_no = order[i].0;
        let mut j = i;
        while j < order.len() && order[j].0 == lap_no {
            let (_, ci, li) = order[j];
            let l = &cars[ci].1[li].log;
            timing.on_lap(l);
            if let Some(w) = wear.as_mut() {
                w.on_lap(l);
            }
            j += 1;
        }
        for &(_, ci, li) in &order[i..j] {
            let (id, laps) = &cars[ci];
            let now = &laps[li];
            let pt = timing.predict(id, horizon);
            let pw = wear.as_ref().and_then(|w| w.predict(id, horizon));
            // Baselines from the stint's green laps so far.
            let g: Vec<(f64, f64)> = laps[..=li]
                .iter()
                .filter(|t| t.stint == now.stint && t.green)
                .map(|t| (f64::from(t.age), t.log.lap_time_s))
                .collect();
            score_threshold(
                thr,
                &crossings,
                (ci, now),
                &g,
                pt.as_ref(),
                pw.as_ref(),
                &fuel_term,
                pace_cfg.loss_threshold_s,
                laps,
                li,
            );
            let Some(&(_, last_y)) = g.last() else {
                continue;
            };
            let Some(pt) = pt else { continue };
            for h in 1..=horizon {
                let Some(&ti) = lap_index[ci].get(&(now.log.lap + h as u32)) else {
                    continue;
                };
                let tgt = &laps[ti];
                if tgt.stint != now.stint || !tgt.green {
                    continue;
                }
                let Some(ft) = pt.forecast.get(h - 1) else {
                    continue;
                };
                let fw = match (&pw, has_wear) {
                    (_, false) => None,
                    (Some(pw), true) => match pw.lap_forecast.get(h - 1) {
                        Some(f) => Some((f.lap_time_s, f.lo_s, f.hi_s)),
                        None => continue,
                    },
                    (None, true) => continue,
                };
                let line = line_at(&g, f64::from(tgt.age)).map_or(last_y, |v| v.0);
                let y = tgt.log.lap_time_s;
                let tt = (ft.lap_time_s, ft.lo_s, ft.hi_s);
                acc.hall.add(y, tt, fw, last_y, line);
                if h == 1 {
                    acc.h1.add(y, tt, fw, last_y, line);
                    residuals.push(y - ft.lap_time_s);
                    let c = curves.entry((ci, now.stint)).or_insert_with(|| StintCurve {
                        label: format!("{} car {} stint {}", s.id, id, now.stint),
                        laps: Vec::new(),
                        actual_s: Vec::new(),
                        predicted_s: Vec::new(),
                        lo_s: Vec::new(),
                        hi_s: Vec::new(),
                    });
                    c.laps.push(tgt.log.lap);
                    c.actual_s.push(y);
                    c.predicted_s.push(ft.lap_time_s);
                    c.lo_s.push(ft.lo_s);
                    c.hi_s.push(ft.hi_s);
                }
                if h == horizon {
                    acc.hk.add(y, tt, fw, last_y, line);
                }
            }
            // Wear.
            if let (Some(pw), Some(w_now)) = (&pw, now.log.wear()) {
                let prev = laps[..li]
                    .iter()
                    .rev()
                    .find(|t| t.stint == now.stint && t.log.wear().is_some());
                let last_inc = prev.and_then(|p| {
                    let da = f64::from(now.age) - f64::from(p.age);
                    let wp = p.log.wear()?;
                    (da >= 1.0)
                        .then(|| std::array::from_fn::<f64, 4, _>(|c| (w_now[c] - wp[c]) / da))
                });
                for h in [1, horizon] {
                    let Some(&ti) = lap_index[ci].get(&(now.log.lap + h as u32)) else {
                        continue;
                    };
                    let tgt = &laps[ti];
                    let (Some(wt), Some(f)) = (tgt.log.wear(), pw.wear_forecast.get(h - 1)) else {
                        continue;
                    };
                    if tgt.stint != now.stint {
                        continue;
                    }
                    let Some(inc) = last_inc else { continue };
                    let hf = h as f64;
                    for c in 0..4 {
                        let base = w_now[c] + inc[c] * hf;
                        let inside = wt[c] >= f.lo_pct[c] && wt[c] <= f.hi_pct[c];
                        if h == 1 {
                            wacc.y1[c].push(wt[c]);
                            wacc.p1[c].push(f.wear_pct[c]);
                            wacc.dy1[c].push(wt[c] - w_now[c]);
                            wacc.dp1[c].push(f.wear_pct[c] - w_now[c]);
                            wacc.in1 += usize::from(inside);
                            wacc.base1 += (wt[c] - base).abs();
                            wear_pts.push([wt[c], f.wear_pct[c]]);
                        }
                        if h == horizon {
                            wacc.errh[c] += (wt[c] - f.wear_pct[c]).abs();
                            wacc.biash += f.wear_pct[c] - wt[c];
                            wacc.inh += usize::from(inside);
                            wacc.baseh += (wt[c] - base).abs();
                        }
                    }
                    if h == horizon {
                        wacc.nh += 1;
                    }
                }
            }
        }
        i = j;
    }
    // Curves: up to two per session, the longest.
    let mut done_curves: Vec<StintCurve> =
        curves.into_values().filter(|c| c.laps.len() >= 8).collect();
    done_curves.sort_by_key(|c| std::cmp::Reverse(c.laps.len()));
    if series.curves.len() < 12 {
        series.curves.extend(done_curves.into_iter().take(2));
    }
    (acc, has_wear.then_some(wacc))
}

#[allow(clippy::too_many_arguments)]
fn score_threshold(
    thr: &mut BTreeMap<&'static str, ThrAcc>,
    crossings: &HashMap<(usize, u32), ThrStint>,
    (ci, now): (usize, &Tagged),
    g: &[(f64, f64)],
    pt: Option<&PacePrediction>,
    pw: Option<&WearPrediction>,
    fuel_term: &dyn Fn(&LapLog) -> f64,
    threshold_s: f64,
    laps: &[Tagged],
    li: usize,
) {
    let Some(st) = crossings.get(&(ci, now.stint)) else {
        return;
    };
    if g.len() < 3 || !now.green {
        return;
    }
    let age = f64::from(now.age);
    // Stint line on fuel-corrected laps: its slope and loss since the reference lap.
    let fc: Vec<(f64, f64)> = laps[..=li]
        .iter()
        .filter(|t| t.stint == now.stint && t.green)
        .map(|t| (f64::from(t.age), t.log.lap_time_s - fuel_term(&t.log)))
        .collect();
    let a_ref = fc.get(1).map_or(age, |p| p.0);
    let line_until = line_at(&fc, age)
        .and_then(|(_, b)| (b > 1e-6).then(|| ((threshold_s - b * (age - a_ref)) / b).max(0.0)));
    let preds: [(&'static str, Option<Option<f64>>); 3] = [
        ("timing only", pt.map(|p| p.laps_until_threshold)),
        ("stint line", Some(line_until)),
        ("reported wear", pw.map(|p| p.laps_until_threshold)),
    ];
    for (name, p) in preds {
        let Some(p) = p else { continue };
        let Some(a) = thr.get_mut(name) else { continue };
        match st.cross_age {
            Some(ca) if age < ca => {
                a.before += 1;
                let capped = p.map_or(THRESHOLD_CAP_LAPS, |u| u.min(THRESHOLD_CAP_LAPS));
                a.abs_capped += (age + capped - ca).abs();
                match p {
                    Some(u) => {
                        let e = age + u.min(THRESHOLD_CAP_LAPS) - ca;
                        a.abs += e.abs();
                        a.bias += e;
                        a.n_err += 1;
                    }
                    None => a.none += 1,
                }
            }
            Some(_) => {}
            None => {
                a.n_nc += 1;
                if p.is_some_and(|u| age + u <= st.last_age) {
                    a.alarms += 1;
                }
            }
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

impl LapEvalReport {
    /// Plain-text tables: lap time (per session and pooled), wear, "laps until".
    pub fn table(&self) -> String {
        let mut s = String::new();
        let k = self.horizon;
        let _ = writeln!(
            s,
            "Lap time on green laps, MAE s (timing = timing-only predictor, wear = reported-wear predictor;\n\
             last = repeat the last lap, line = stint line; cov = share inside the 80 % interval;\n\
             noise = mean |residual| of a line fitted afterwards through each whole stint;\n\
             sigma = lap-to-lap noise, 1.4826 × median |difference of consecutive green laps| / √2)"
        );
        let _ = writeln!(
            s,
            "{:<24} {:>4} {:>6} {:>6} {:>6} | {:>5} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} | {:>5} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5}",
            "session", "cars", "green", "noise", "sigma",
            "n1", "timing", "wear", "last", "line", "cov", "wcov",
            format!("n1-{k}"), "timing", "wear", "last", "line", "cov", "wcov"
        );
        let mut row = |m: &LapTimeMetrics| {
            let (a, b) = (&m.next_lap, &m.next_laps);
            let _ = writeln!(
                s,
                "{:<24} {:>4} {:>6} {:>6.3} {:>6.3} | {:>5} {:>7.3} {:>7} {:>7.3} {:>7.3} {:>5.2} {:>5} | {:>5} {:>7.3} {:>7} {:>7.3} {:>7.3} {:>5.2} {:>5}",
                m.key,
                m.n_cars,
                m.n_green_laps,
                m.hindsight_line_mae_s,
                m.lap_to_lap_sigma_s,
                a.n,
                a.timing_mae_s,
                opt(a.wear_mae_s),
                a.last_lap_mae_s,
                a.stint_line_mae_s,
                a.timing_coverage,
                a.wear_coverage.map_or("-".into(), |v| format!("{v:.2}")),
                b.n,
                b.timing_mae_s,
                opt(b.wear_mae_s),
                b.last_lap_mae_s,
                b.stint_line_mae_s,
                b.timing_coverage,
                b.wear_coverage.map_or("-".into(), |v| format!("{v:.2}")),
            );
        };
        for m in &self.per_session {
            row(m);
        }
        row(&self.all);
        let h = &self.all.at_horizon;
        let _ = writeln!(
            s,
            "exactly {k} laps ahead (ALL): n {}, timing {:.3}, wear {}, last {:.3}, line {:.3}, cov {:.2}",
            h.n,
            h.timing_mae_s,
            opt(h.wear_mae_s),
            h.last_lap_mae_s,
            h.stint_line_mae_s,
            h.timing_coverage
        );
        if let Some(w) = &self.wear {
            let _ = writeln!(
                s,
                "\nReported wear (FL FR RL RR): 1 lap ahead R² of the wear, R² of the wear added in the lap, MAE %;\n\
                 {k} laps ahead MAE %; baseline = the last increment repeated; cov = 80 % interval coverage"
            );
            let _ = writeln!(
                s,
                "{:<24} {:>5} {:>27} {:>27} {:>23} {:>6} {:>6} {:>6} | {:>5} {:>23} {:>6} {:>6} {:>6}",
                "session", "n1", "R² wear", "R² increment", "MAE 1 lap %", "base", "cov", "", format!("n{k}"), format!("MAE {k} laps %"), "bias", "base", "cov"
            );
            for m in self.wear_per_session.iter().chain([w]) {
                let f4 = |a: &[f64; 4], p: usize| {
                    a.iter()
                        .map(|v| format!("{v:.p$}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    s,
                    "{:<24} {:>5} {:>27} {:>27} {:>23} {:>6.3} {:>6.2} {:>6} | {:>5} {:>23} {:>6.3} {:>6.3} {:>6.2}",
                    m.key,
                    m.n_1,
                    f4(&m.r2_1lap, 4),
                    f4(&m.r2_1lap_increment, 3),
                    f4(&m.mae_1lap_pct, 3),
                    m.last_increment_mae_1lap_pct,
                    m.coverage_1lap,
                    "",
                    m.n_h,
                    f4(&m.mae_h_pct, 3),
                    m.bias_h_pct,
                    m.last_increment_mae_h_pct,
                    m.coverage_h
                );
            }
        }
        if !self.threshold.is_empty() {
            let _ = writeln!(
                s,
                "\nLaps until +{:.1} s against when it happened (stints with ≥ 6 green laps; errors in laps of tyre age,\n\
                 predictions made before it happened; a prediction beyond {:.0} laps counts as {:.0}; MAEcap: \"none\" counts as {:.0};\n\
                 alarms: share of predictions in stints that never crossed that put the crossing before the stint's end)",
                self.config.pace.loss_threshold_s,
                THRESHOLD_CAP_LAPS,
                THRESHOLD_CAP_LAPS,
                THRESHOLD_CAP_LAPS
            );
            let _ = writeln!(
                s,
                "{:<14} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "predictor",
                "crossed",
                "never",
                "before",
                "none",
                "MAE",
                "bias",
                "MAEcap",
                "n_never",
                "alarms"
            );
            for t in &self.threshold {
                let _ = writeln!(
                    s,
                    "{:<14} {:>8} {:>8} {:>8} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>8.2}",
                    t.predictor,
                    t.stints_crossing,
                    t.stints_not_crossing,
                    t.n_before,
                    t.n_none,
                    t.mae_laps,
                    t.bias_laps,
                    t.mae_capped_laps,
                    t.n_no_cross,
                    t.false_alarm_share
                );
            }
        }
        s
    }
}

/// A self-contained HTML report of [`evaluate_laps`] (inline SVG, no external assets).
pub fn laps_report_html(r: &LapEvalReport) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Lap-time and wear predictions</title><style>body{font-family:sans-serif;margin:20px}.plots svg{margin:6px}pre{font-size:12px}</style></head><body>");
    let _ = write!(
        s,
        "<h1>Lap-time and wear predictions on per-lap records</h1><p>{} sessions, {} cars, {} green laps; predictions from each car's laps so far only.</p><pre>{}</pre><div class=\"plots\">",
        r.n_sessions,
        r.all.n_cars,
        r.all.n_green_laps,
        esc(&r.table())
    );
    let mut mae: Vec<(String, f64)> = Vec::new();
    for m in r.per_session.iter().chain([&r.all]) {
        mae.push((format!("{} timing", m.key), m.next_lap.timing_mae_s));
        if let Some(w) = m.next_lap.wear_mae_s {
            mae.push((format!("{} wear", m.key), w));
        }
        mae.push((format!("{} last lap", m.key), m.next_lap.last_lap_mae_s));
        mae.push((format!("{} stint line", m.key), m.next_lap.stint_line_mae_s));
    }
    s.push_str(&bars("Next-lap MAE, s", &mae, None));
    let mut cov: Vec<(String, f64)> = Vec::new();
    for m in r.per_session.iter().chain([&r.all]) {
        cov.push((format!("{} next lap", m.key), m.next_lap.timing_coverage));
        cov.push((
            format!("{} next {}", m.key, r.horizon),
            m.next_laps.timing_coverage,
        ));
    }
    s.push_str(&bars(
        "80 % interval coverage, timing only (band: 0.75-0.85)",
        &cov,
        Some((0.75, 0.85)),
    ));
    s.push_str(&histogram(
        "Next-lap residuals, timing only",
        &r.series.residuals_s,
        "true − predicted lap time, s",
    ));
    if !r.series.wear_true_pred_pct.is_empty() {
        s.push_str(&scatter(
            "Wear 1 lap ahead: predicted vs true",
            &r.series.wear_true_pred_pct,
            "wear %",
        ));
    }
    s.push_str("</div><h2>Next-lap predictions per stint (timing only)</h2><div class=\"plots\">");
    for c in &r.series.curves {
        s.push_str(&curves(c, "lap time, s"));
    }
    s.push_str("</div></body></html>");
    s
}

/// One setting's scores per session, for [`leave_one_out`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LooFold {
    /// The session held out.
    pub held_out: String,
    /// Index in the grid of the setting chosen on the other sessions.
    pub chosen: usize,
    /// The held-out session scored with it.
    pub metrics: LapTimeMetrics,
}

/// Leave-one-session-out choice of the timing-only settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LooReport {
    /// The settings tried.
    pub grid: Vec<PaceConfig>,
    /// Per setting, pooled over every session: next-lap and next-`horizon` MAE, s.
    pub pooled_mae_s: Vec<[f64; 2]>,
    /// One fold per session.
    pub folds: Vec<LooFold>,
    /// The held-out sessions pooled (each scored with the setting of its fold).
    pub held_out: LapTimeMetrics,
}

/// For each session, picks from `grid` the setting with the lowest mean of next-lap and
/// next-`horizon` timing-only MAE on the *other* sessions, and scores the held-out session
/// with it: the figures a setting chosen without the session would give.
pub fn leave_one_out(
    sessions: &[LapSession],
    grid: &[PaceConfig],
    horizon: usize,
) -> Option<LooReport> {
    if grid.is_empty() || sessions.len() < 2 {
        return None;
    }
    // Per setting, per session: the accumulators.
    let runs: Vec<Vec<LapTimeMetrics>> = grid
        .iter()
        .map(|g| {
            let cfg = LapEvalConfig {
                pace: g.clone(),
                wear: WearConfig {
                    pace: g.clone(),
                    ..WearConfig::default()
                },
            };
            sessions
                .iter()
                .map(|s| {
                    evaluate_laps(std::slice::from_ref(s), &cfg, horizon)
                        .per_session
                        .into_iter()
                        .next()
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let pooled = |m: &[&LapTimeMetrics]| {
        let (mut a, mut na, mut b, mut nb) = (0.0, 0usize, 0.0, 0usize);
        for x in m {
            a += x.next_lap.timing_mae_s * x.next_lap.n as f64;
            na += x.next_lap.n;
            b += x.next_laps.timing_mae_s * x.next_laps.n as f64;
            nb += x.next_laps.n;
        }
        [a / na.max(1) as f64, b / nb.max(1) as f64]
    };
    let pooled_mae_s = runs
        .iter()
        .map(|r| pooled(&r.iter().collect::<Vec<_>>()))
        .collect();
    let mut folds = Vec::new();
    let mut held = TimeAcc::default();
    for (si, s) in sessions.iter().enumerate() {
        let mut best = (f64::INFINITY, 0);
        for (gi, r) in runs.iter().enumerate() {
            let others: Vec<&LapTimeMetrics> = r
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != si)
                .map(|(_, m)| m)
                .collect();
            let p = pooled(&others);
            let score = 0.5 * (p[0] + p[1]);
            if score < best.0 {
                best = (score, gi);
            }
        }
        let m = runs[best.1][si].clone();
        held.merge(&acc_of(&m));
        folds.push(LooFold {
            held_out: s.id.clone(),
            chosen: best.1,
            metrics: m,
        });
    }
    Some(LooReport {
        grid: grid.to_vec(),
        pooled_mae_s,
        folds,
        held_out: held.metrics("held out"),
    })
}

/// Accumulators back from metrics (sums = mean × n), to pool folds.
fn acc_of(m: &LapTimeMetrics) -> TimeAcc {
    let h = |x: &HorizonScore| {
        let n = x.n as f64;
        let nw = x.n_wear as f64;
        HAcc {
            n: x.n,
            t_abs: x.timing_mae_s * n,
            t_in: (x.timing_coverage * n).round() as usize,
            t_w: x.timing_width_s * n,
            nw: x.n_wear,
            w_abs: x.wear_mae_s.unwrap_or(0.0) * nw,
            w_in: (x.wear_coverage.unwrap_or(0.0) * nw).round() as usize,
            last: x.last_lap_mae_s * n,
            line: x.stint_line_mae_s * n,
        }
    };
    TimeAcc {
        cars: m.n_cars,
        laps: m.n_laps,
        green: m.n_green_laps,
        hind_abs: m.hindsight_line_mae_s,
        hind_n: 1,
        hind_res: vec![m.lap_to_lap_sigma_s * std::f64::consts::SQRT_2 / 1.4826],
        h1: h(&m.next_lap),
        hall: h(&m.next_laps),
        hk: h(&m.at_horizon),
    }
}
