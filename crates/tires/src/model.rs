//! The model file: physics coefficients, trees, calibration, and training.

use crate::gbt::{self, FastGbt, Gbt, GbtParams, Matrix};
use crate::row::{fidx, TireLap};
use crate::tracker::TireTracker;
use crate::TireError;
use laps::LapFeatures;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the model file layout; [`TireModel::from_json`] refuses any other.
pub const FORMAT_VERSION: u32 = 2;

/// Corner names, in `Corners` order.
pub const CORNERS: [&str; 4] = ["front-left", "front-right", "rear-left", "rear-right"];

/// Physics terms of the per-corner wear increment.
pub const N_WEAR_TERMS: usize = 9;

/// Which wear-input feature each physics term is attributed to in explanations.
pub(crate) const WEAR_TERM_FEATURE: [usize; N_WEAR_TERMS] = [0, 0, 0, 2, 1, 3, 20, 9, 0];

/// Inputs of the per-corner wear trees: the 20 lap features, then these.
pub const WEAR_EXTRA_NAMES: [&str; 6] = [
    "fuel_kg",
    "wear_so_far_pct",
    "physics_wear_pct",
    "sector_1_stress_g_s",
    "sector_2_stress_g_s",
    "sector_3_stress_g_s",
];
/// Number of wear-tree inputs.
pub const N_WEAR_INPUTS: usize = 26;

/// Inputs of the loss trees: the 20 lap features of the last lap, then these.
pub const LOSS_EXTRA_NAMES: [&str; 10] = [
    "fuel_kg",
    "wear_mean_pct",
    "wear_max_pct",
    "stint_clean_laps",
    "last_loss_s",
    "stint_trend_s_per_lap",
    "last_lap_clean",
    "last_lap_safety_car",
    "physics_loss_s",
    "best_lap_s",
];
/// Number of loss-tree inputs.
pub const N_LOSS_INPUTS: usize = 30;

/// Name of wear input `i`.
pub fn wear_input_name(i: usize) -> &'static str {
    LapFeatures::NAMES
        .get(i)
        .or_else(|| WEAR_EXTRA_NAMES.get(i.wrapping_sub(20)))
        .copied()
        .unwrap_or("?")
}

/// Name of loss input `i`.
pub fn loss_input_name(i: usize) -> &'static str {
    LapFeatures::NAMES
        .get(i)
        .or_else(|| LOSS_EXTRA_NAMES.get(i.wrapping_sub(20)))
        .copied()
        .unwrap_or("?")
}

/// Least-squares physics of the wear increment, per corner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WearPhysics {
    /// Coefficients of the terms (see [`wear_terms`]), per corner.
    pub coef: [[f64; N_WEAR_TERMS]; 4],
    /// Intercepts, % per lap.
    pub intercept: [f64; 4],
    /// Training means of the terms (the reference for their attributions).
    pub term_means: [[f64; N_WEAR_TERMS]; 4],
}

/// Lap-time physics: fuel and wear effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacePhysics {
    /// Lap time per kg of fuel, s/kg (fuel-corrected time = lap time − this × fuel).
    pub fuel_s_per_kg: f64,
    /// Relative lap-time increase per % of mean wear.
    pub wear_lin_per_pct: f64,
    /// Relative lap-time increase per %² of mean wear.
    pub wear_quad_per_pct2: f64,
}

impl PacePhysics {
    /// Relative slow-down at mean wear `w` (%).
    pub fn slowdown(&self, w_pct: f64) -> f64 {
        self.wear_lin_per_pct * w_pct + self.wear_quad_per_pct2 * w_pct * w_pct
    }
}

/// Quantiles of one calibration regime (10th and 90th percentiles of held-out residuals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Wear: quantiles of (true − predicted) / (scale floor + predicted).
    pub wear_q10: f64,
    /// See `wear_q10`.
    pub wear_q90: f64,
    /// Loss: quantiles of (true − predicted), s.
    pub loss_q10_s: f64,
    /// See `loss_q10_s`.
    pub loss_q90_s: f64,
    /// Wear outcomes used.
    pub n_wear: usize,
    /// Loss outcomes used.
    pub n_loss: usize,
}

/// Split-conformal 80 % interval calibration, in two regimes: a track the model was fitted on
/// (calibrated on other sessions of fitted tracks) and a new track (calibrated on whole tracks
/// kept out of the fit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Floor of the wear residual scale, %.
    pub wear_scale_floor_pct: f64,
    /// Tracks the model was fitted on.
    pub known_track: Quantiles,
    /// Tracks the model never saw.
    pub new_track: Quantiles,
}

/// Metrics measured while training.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingMetrics {
    /// Rows given.
    pub n_rows: usize,
    /// Sessions the final model was fitted on / that gave held-out calibration residuals.
    pub n_fit_sessions: usize,
    /// See `n_fit_sessions`.
    pub n_calibration_sessions: usize,
    /// Wear-increment examples.
    pub n_wear_examples: usize,
    /// Loss examples.
    pub n_loss_examples: usize,
    /// R² of the per-lap wear increment on the fit set (physics only, then with trees).
    pub wear_increment_r2_physics: f64,
    /// See `wear_increment_r2_physics`.
    pub wear_increment_r2_model: f64,
    /// Calibration-set MAE of the wear (%), and of the loss (s).
    pub calibration_wear_mae_pct: f64,
    /// See `calibration_wear_mae_pct`.
    pub calibration_loss_mae_s: f64,
}

/// Training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Trees of each corner's wear increment.
    pub wear_trees: GbtParams,
    /// Trees of the lap-time loss.
    pub loss_trees: GbtParams,
    /// Cross-fitting folds for the interval calibration (per regime).
    pub calibration_folds: usize,
    /// Model version string written into the file.
    pub model_version: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            wear_trees: GbtParams {
                rounds: 35,
                max_depth: 4,
                learning_rate: 0.25,
                min_leaf: 20,
                ..GbtParams::default()
            },
            loss_trees: GbtParams {
                rounds: 30,
                max_depth: 3,
                learning_rate: 0.12,
                min_leaf: 60,
                lambda: 10.0,
                ..GbtParams::default()
            },
            calibration_folds: 5,
            model_version: "tires-2".into(),
        }
    }
}

/// The trained tire model (a versioned JSON file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TireModel {
    /// File layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Free-form version of this model.
    pub model_version: String,
    /// Every session whose laps were used (fit or calibration): never evaluate on these.
    pub trained_sessions: Vec<String>,
    /// Tracks of the fit sessions (sorted); other tracks get the new-track intervals.
    pub trained_tracks: Vec<String>,
    /// Metrics measured while training.
    pub training: TrainingMetrics,
    /// Wear physics.
    pub wear_physics: WearPhysics,
    /// Lap-time physics.
    pub pace_physics: PacePhysics,
    /// Per-corner trees on the residual of the wear increment (FL, FR, RL, RR).
    pub wear_trees: Vec<Gbt>,
    /// Trees on the residual of the next lap's loss.
    pub loss_trees: Gbt,
    /// Interval calibration.
    pub calibration: Calibration,
    /// The configuration trained with.
    pub config: TrainConfig,
    /// Compiled trees (not serialised; built on first use).
    #[serde(skip)]
    pub(crate) fast: FastCache,
}

/// Lazily compiled ensembles of a [`TireModel`]. Compares equal to any other cache.
#[derive(Debug, Clone, Default)]
pub struct FastCache(std::sync::OnceLock<FastModel>);

impl PartialEq for FastCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The compiled ensembles.
#[derive(Debug, Clone)]
pub(crate) struct FastModel {
    pub wear: Vec<FastGbt>,
    pub loss: FastGbt,
}

/// The physics terms of corner `c` (0 FL, 1 FR, 2 RL, 3 RR) for a lap.
///
/// A right-hand turn (negative accy) loads the left tyres, so the left tyres take the share
/// `1 − lateral_bias` of the lateral g·s and the right ones `lateral_bias`; the front axle takes
/// `front_load_share`. Terms: side load, side load × axle share, side load² / 100, brake
/// energy / 100, longitudinal g·s, heavy braking events, fuel × side load / 100, side load ×
/// max lateral g² (a proxy of load² × sliding), and the tyre's own sliding work / 1000 (the
/// friction-energy term: load transfer and speed included, see `laps::features::tyre_work_rate`).
pub fn wear_terms(row: &TireLap, fuel_kg: f64, c: usize) -> [f64; N_WEAR_TERMS] {
    let lat = row.feature(fidx::LAT_GS).unwrap_or(0.0);
    let bias = row.feature(fidx::LAT_BIAS).unwrap_or(0.5).clamp(0.0, 1.0);
    let front = row
        .feature(fidx::FRONT_SHARE)
        .unwrap_or(0.53)
        .clamp(0.0, 1.0);
    let right = c == 1 || c == 3;
    let is_front = c < 2;
    let side = if right { bias } else { 1.0 - bias };
    let axle = if is_front { front } else { 1.0 - front };
    let ls = lat * side;
    [
        ls,
        ls * axle,
        ls * ls / 100.0,
        row.feature(fidx::BRAKE_KJ).unwrap_or(0.0) / 100.0,
        row.feature(fidx::LON_GS).unwrap_or(0.0),
        row.feature(fidx::HEAVY).unwrap_or(0.0),
        fuel_kg * ls / 100.0,
        ls * row.feature(9).unwrap_or(0.0).powi(2),
        row.tyre_work_g2m.map_or(0.0, |w| w[c.min(3)] / 1000.0),
    ]
}

impl WearPhysics {
    /// Physics wear increment of corner `c`, %.
    pub fn increment(&self, terms: &[f64; N_WEAR_TERMS], c: usize) -> f64 {
        let c = c.min(3);
        self.intercept[c]
            + terms
                .iter()
                .zip(self.coef[c].iter())
                .map(|(t, k)| t * k)
                .sum::<f64>()
    }
}

impl TireModel {
    /// The compiled ensembles (built once, on first use).
    pub(crate) fn fast(&self) -> &FastModel {
        self.fast.0.get_or_init(|| FastModel {
            wear: self.wear_trees.iter().map(FastGbt::build).collect(),
            loss: FastGbt::build(&self.loss_trees),
        })
    }

    /// Serialises the model (pretty-free JSON).
    pub fn to_json(&self) -> Result<String, TireError> {
        serde_json::to_string(self).map_err(|e| TireError::Format(e.to_string()))
    }

    /// Loads a model; errors clearly on a different `format_version` or a broken file.
    pub fn from_json(s: &str) -> Result<TireModel, TireError> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| TireError::Format(e.to_string()))?;
        let found = v.get("format_version").and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(FORMAT_VERSION)) {
            return Err(TireError::FormatVersion {
                found: found
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "none".into()),
                expected: FORMAT_VERSION,
            });
        }
        let m: TireModel =
            serde_json::from_value(v).map_err(|e| TireError::Format(e.to_string()))?;
        m.validate()?;
        m.fast();
        Ok(m)
    }

    /// Structural checks (tree shapes, finite numbers).
    pub fn validate(&self) -> Result<(), TireError> {
        if self.wear_trees.len() != 4 {
            return Err(TireError::Format("need 4 wear ensembles".into()));
        }
        for g in &self.wear_trees {
            if g.n_features != N_WEAR_INPUTS {
                return Err(TireError::Format("wear trees: wrong input count".into()));
            }
            g.validate().map_err(TireError::Format)?;
        }
        if self.loss_trees.n_features != N_LOSS_INPUTS {
            return Err(TireError::Format("loss trees: wrong input count".into()));
        }
        self.loss_trees.validate().map_err(TireError::Format)?;
        let p = &self.pace_physics;
        let c = &self.calibration;
        let all_finite = [
            p.fuel_s_per_kg,
            p.wear_lin_per_pct,
            p.wear_quad_per_pct2,
            c.wear_scale_floor_pct,
            c.known_track.wear_q10,
            c.known_track.wear_q90,
            c.known_track.loss_q10_s,
            c.known_track.loss_q90_s,
            c.new_track.wear_q10,
            c.new_track.wear_q90,
            c.new_track.loss_q10_s,
            c.new_track.loss_q90_s,
        ]
        .iter()
        .chain(self.wear_physics.coef.iter().flatten())
        .chain(self.wear_physics.intercept.iter())
        .chain(self.wear_physics.term_means.iter().flatten())
        .all(|v| v.is_finite());
        if !all_finite {
            return Err(TireError::Format("non-finite coefficient".into()));
        }
        Ok(())
    }
}

/// Groups rows by session, then by car, in lap order.
pub(crate) fn by_session_car(rows: &[TireLap]) -> BTreeMap<(&str, &str), Vec<&TireLap>> {
    let mut m: BTreeMap<(&str, &str), Vec<&TireLap>> = BTreeMap::new();
    for r in rows {
        m.entry((r.session_id.as_str(), r.car_id.as_str()))
            .or_default()
            .push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.lap);
    }
    m
}

/// A stable hash of a session id (FNV-1a) for the calibration split.
fn session_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Solves (AᵀA + ridge) β = Aᵀy on standardised columns; returns (β, intercept).
pub(crate) fn least_squares(a: &[Vec<f64>], y: &[f64], ridge: f64) -> (Vec<f64>, f64) {
    let n = a.len().min(y.len());
    let k = a.first().map_or(0, Vec::len);
    if n == 0 {
        return (vec![0.0; k], 0.0);
    }
    let nf = n as f64;
    let mean: Vec<f64> = (0..k)
        .map(|j| a.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let sd: Vec<f64> = (0..k)
        .map(|j| {
            let v = a.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / nf;
            if v > 1e-18 {
                v.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let ym = y[..n].iter().sum::<f64>() / nf;
    let mut m = vec![vec![0.0; k + 1]; k];
    for (r, yi) in a.iter().zip(y.iter()) {
        let z: Vec<f64> = (0..k).map(|j| (r[j] - mean[j]) / sd[j]).collect();
        for i in 0..k {
            for j in 0..k {
                m[i][j] += z[i] * z[j];
            }
            m[i][k] += z[i] * (yi - ym);
        }
    }
    for (i, row) in m.iter_mut().enumerate() {
        row[i] += ridge * nf;
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..k {
        let piv = (col..k)
            .max_by(|&x, &z| m[x][col].abs().total_cmp(&m[z][col].abs()))
            .unwrap_or(col);
        m.swap(col, piv);
        let d = m[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        for r in 0..k {
            if r != col {
                let f = m[r][col] / d;
                if f != 0.0 {
                    for c2 in col..=k {
                        m[r][c2] -= f * m[col][c2];
                    }
                }
            }
        }
    }
    let beta: Vec<f64> = (0..k)
        .map(|j| {
            let d = m[j][j];
            let b = if d.abs() < 1e-300 { 0.0 } else { m[j][k] / d };
            if b.is_finite() {
                b / sd[j]
            } else {
                0.0
            }
        })
        .collect();
    let icpt = ym - (0..k).map(|j| beta[j] * mean[j]).sum::<f64>();
    (beta, if icpt.is_finite() { icpt } else { 0.0 })
}

/// One training example of a wear increment.
struct WearExample {
    row_idx: usize,
    c: usize,
    fuel: f64,
    wear_before: f64,
    inc: f64,
}

/// True wear increments (teacher forcing): per car, wear at the start of a lap is the previous
/// lap's end, 0 after a tyre change; laps on which the tyres were changed are skipped.
fn wear_examples(rows: &[TireLap], keep: &BTreeSet<&str>) -> Vec<WearExample> {
    let mut out = Vec::new();
    let index: BTreeMap<*const TireLap, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r as *const TireLap, i))
        .collect();
    for ((s, _), laps) in by_session_car(rows) {
        if !keep.contains(s) {
            continue;
        }
        let mut prev: Option<(&TireLap, [f64; 4])> = None;
        let mut last_fuel = None;
        for r in laps {
            let fuel = r.fuel_kg.or(last_fuel).unwrap_or(0.0);
            last_fuel = Some(fuel);
            let Some(w) = r.wear_end_pct.map(|w| w.to_array()) else {
                prev = None;
                continue;
            };
            let start = match prev {
                Some((p, pw)) if r.tyre_age_laps >= p.tyre_age_laps && r.lap == p.lap + 1 => {
                    Some(pw)
                }
                Some((p, _)) if r.tyre_age_laps < p.tyre_age_laps => None, // tyres changed
                None if r.tyre_age_laps == 0 && r.lap <= 1 => Some([0.0; 4]),
                _ => None,
            };
            let usable = r.n_samples >= crate::tracker::MIN_SAMPLES && r.present[fidx::LAT_GS];
            if let (Some(st), true) = (start, usable) {
                if let Some(&ri) = index.get(&(r as *const TireLap)) {
                    for c in 0..4 {
                        out.push(WearExample {
                            row_idx: ri,
                            c,
                            fuel,
                            wear_before: st[c],
                            inc: w[c] - st[c],
                        });
                    }
                }
            }
            prev = Some((r, w));
        }
    }
    out
}

fn r2(y: &[f64], p: &[f64]) -> f64 {
    let n = y.len().min(p.len());
    if n == 0 {
        return 0.0;
    }
    let m = y[..n].iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = y[..n].iter().map(|v| (v - m).powi(2)).sum();
    let ss_res: f64 = y[..n].iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        0.0
    }
}

pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    v[lo] * (1.0 - f) + v[hi.min(v.len() - 1)] * f
}

/// Fits the fuel and wear effects on lap time: y = stint effect + c·fuel + T·(a·w + b·w²),
/// with the true mean wear of clean laps, by least squares on values demeaned per car.
fn fit_pace_physics(rows: &[TireLap], keep: &BTreeSet<&str>) -> PacePhysics {
    let mut groups: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    for ((s, _), laps) in by_session_car(rows) {
        if !keep.contains(s) {
            continue;
        }
        let mut cur: Vec<(f64, f64, f64)> = Vec::new();
        let mut prev_w: Option<f64> = None;
        let mut prev_age: Option<u32> = None;
        let mut prev_clean = false;
        for r in laps {
            // Laps that follow a start, a stop or a safety car are run from low speed and
            // are slow whatever the fuel and wear: kept out of the fit.
            let follows_clean = prev_clean && r.lap > 1;
            prev_clean = r.validity.is_clean();
            let w_end = r
                .wear_end_pct
                .map(|w| w.to_array().iter().sum::<f64>() / 4.0);
            if prev_age.is_some_and(|a| r.tyre_age_laps < a) {
                // Same group across the stop: the wear reset with fuel carrying on is what
                // separates the two effects.
                prev_w = Some(0.0);
                prev_age = Some(r.tyre_age_laps);
                continue;
            }
            prev_age = Some(r.tyre_age_laps);
            if let (Some(t), Some(f), Some(we), true) = (
                r.lap_time_s,
                r.fuel_kg,
                w_end,
                r.validity.is_clean() && follows_clean,
            ) {
                let ws = prev_w.unwrap_or(we);
                cur.push((t, f, 0.5 * (ws + we)));
            }
            prev_w = w_end;
        }
        groups.push(cur);
    }
    let mut a = Vec::new();
    let mut y = Vec::new();
    for g in groups.iter().filter(|g| g.len() >= 3) {
        let tmin = g.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let n = g.len() as f64;
        let cols: Vec<[f64; 3]> = g
            .iter()
            .map(|&(_, f, w)| [f, tmin * w, tmin * w * w])
            .collect();
        let mc: [f64; 3] = std::array::from_fn(|j| cols.iter().map(|c| c[j]).sum::<f64>() / n);
        let my = g.iter().map(|v| v.0).sum::<f64>() / n;
        for (c, v) in cols.iter().zip(g) {
            a.push((0..3).map(|j| c[j] - mc[j]).collect::<Vec<f64>>());
            y.push(v.0 - my);
        }
    }
    let (beta, _) = least_squares(&a, &y, 1e-9);
    let fuel = beta.first().copied().unwrap_or(0.0);
    PacePhysics {
        fuel_s_per_kg: if fuel.is_finite() {
            fuel.clamp(0.0, 0.2)
        } else {
            0.0
        },
        wear_lin_per_pct: beta.get(1).copied().unwrap_or(0.0).clamp(0.0, 0.05),
        wear_quad_per_pct2: beta.get(2).copied().unwrap_or(0.0).clamp(0.0, 0.01),
    }
}

/// Trains the model on `rows`, split by session (never by row).
///
/// The final model is fitted on every session. The 80 % intervals are calibrated by
/// cross-fitting (CV+ style split conformal): `calibration_folds` models each leave out a group
/// of whole tracks (residuals for the new-track regime) and up to `calibration_folds` models
/// each leave out a cross-track block of sessions of tracks that keep other sessions in the fit
/// (known-track regime, see `known_track_folds`).
/// `progress(done, total)` counts boosting rounds over all fits.
pub fn train(
    rows: &[TireLap],
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TireModel, TireError> {
    let sessions: BTreeSet<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
    if sessions.len() < 2 {
        return Err(TireError::NotEnoughData(format!(
            "need laps from at least 2 sessions, got {}",
            sessions.len()
        )));
    }
    let mut track_sessions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in rows {
        let t = r.track.as_deref().unwrap_or("unknown");
        let v = track_sessions.entry(t).or_default();
        if !v.contains(&r.session_id.as_str()) {
            v.push(r.session_id.as_str());
        }
    }
    let mut tracks: Vec<(&str, Vec<&str>)> = track_sessions.into_iter().collect();
    tracks.sort_by_key(|(t, _)| session_hash(t));
    for (_, v) in &mut tracks {
        v.sort_by_key(|s| session_hash(s));
    }
    let k = cfg.calibration_folds.clamp(2, 20);
    // New-track folds: groups of whole tracks.
    let mut new_folds: Vec<BTreeSet<&str>> = Vec::new();
    if tracks.len() >= 2 {
        let kk = k.min(tracks.len());
        new_folds = vec![BTreeSet::new(); kk];
        for (i, (_, v)) in tracks.iter().enumerate() {
            new_folds[i % kk].extend(v.iter().copied());
        }
    }
    let known_folds = known_track_folds(&tracks, k);
    let n_fits = 1 + new_folds.len() + known_folds.len();
    let total = n_fits * (4 * cfg.wear_trees.rounds + cfg.loss_trees.rounds);
    let mut done = 0usize;
    let mut tick = || {
        done += 1;
        progress(done, total);
    };

    let mut regimes: Vec<Option<Quantiles>> = Vec::new();
    let mut wear_abs = Vec::new();
    let mut loss_abs = Vec::new();
    for folds in [&known_folds, &new_folds] {
        let mut acc = Residuals::default();
        for held in folds.iter() {
            let fit: BTreeSet<&str> = sessions.difference(held).copied().collect();
            if fit.is_empty() {
                continue;
            }
            let m = fit_core(rows, &fit, cfg, &mut tick)?;
            acc.add(&m, rows, held);
        }
        wear_abs.extend(acc.wear_abs.iter().copied());
        loss_abs.extend(acc.loss_abs.iter().copied());
        regimes.push(acc.quantiles());
    }
    let mut model = fit_core(rows, &sessions, cfg, &mut tick)?;
    let (known, new) = match (regimes[0].clone(), regimes[1].clone()) {
        (Some(k), Some(n)) => (k, n),
        (Some(k), None) => (k.clone(), k),
        (None, Some(n)) => (n.clone(), n),
        (None, None) => {
            return Err(TireError::NotEnoughData(
                "cross-fitting gave no held-out laps to calibrate the intervals".into(),
            ))
        }
    };
    model.training.n_calibration_sessions = sessions.len();
    model.training.calibration_wear_mae_pct =
        wear_abs.iter().sum::<f64>() / wear_abs.len().max(1) as f64;
    model.training.calibration_loss_mae_s =
        loss_abs.iter().sum::<f64>() / loss_abs.len().max(1) as f64;
    model.calibration.known_track = known;
    model.calibration.new_track = new;
    model.validate()?;
    Ok(model)
}

/// Known-track calibration folds: every session but the first (by id) of each track, held out
/// in cross-track blocks: the r-th session of every track goes to fold (r - 1) % k. Sessions
/// of one event, season or simulator seed at different tracks share their drivers; held out
/// one by one, a session would have its drivers in the fit through its siblings and the
/// intervals would come out too narrow for a session whose drivers the model never saw.
fn known_track_folds<'a>(tracks: &[(&'a str, Vec<&'a str>)], k: usize) -> Vec<BTreeSet<&'a str>> {
    let max_rank = tracks.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    if max_rank < 2 {
        return Vec::new();
    }
    let kk = k.max(1).min(max_rank - 1);
    let mut folds = vec![BTreeSet::new(); kk];
    for (_, v) in tracks {
        let mut by_id = v.clone();
        by_id.sort_unstable();
        for (r, s) in by_id.iter().enumerate().skip(1) {
            folds[(r - 1) % kk].insert(*s);
        }
    }
    folds
}

/// Held-out residuals gathered over calibration folds.
#[derive(Default)]
struct Residuals {
    wear: Vec<f64>,
    loss: Vec<f64>,
    wear_abs: Vec<f64>,
    loss_abs: Vec<f64>,
}

impl Residuals {
    fn add(&mut self, m: &TireModel, rows: &[TireLap], held: &BTreeSet<&str>) {
        let floor = m.calibration.wear_scale_floor_pct;
        for ((s, _), laps) in by_session_car(rows) {
            if !held.contains(s) {
                continue;
            }
            let mut t = TireTracker::new(m);
            for r in laps {
                let (state, info) = t.step(r, false);
                if let (Some(truth), false) = (r.wear_end_pct, info.tyres_changed) {
                    let p = state.wear_pct.to_array();
                    for (tv, pv) in truth.to_array().iter().zip(p) {
                        self.wear.push((tv - pv) / (floor + pv.max(0.0)));
                        self.wear_abs.push((tv - pv).abs());
                    }
                }
                if let Some((p, realized)) = info.outcome {
                    self.loss.push(realized - p.pred_s);
                    self.loss_abs.push((realized - p.pred_s).abs());
                }
            }
        }
    }

    fn quantiles(mut self) -> Option<Quantiles> {
        (!self.wear.is_empty() && !self.loss.is_empty()).then(|| Quantiles {
            n_wear: self.wear.len(),
            n_loss: self.loss.len(),
            wear_q10: quantile(&mut self.wear, 0.1),
            wear_q90: quantile(&mut self.wear, 0.9),
            loss_q10_s: quantile(&mut self.loss, 0.1),
            loss_q90_s: quantile(&mut self.loss, 0.9),
        })
    }
}

/// Fits physics and trees on the sessions of `fit_set` (placeholder intervals).
fn fit_core(
    rows: &[TireLap],
    fit_set: &BTreeSet<&str>,
    cfg: &TrainConfig,
    tick: &mut dyn FnMut(),
) -> Result<TireModel, TireError> {
    let mut trained_tracks: Vec<String> = rows
        .iter()
        .filter(|r| fit_set.contains(r.session_id.as_str()))
        .filter_map(|r| r.track.clone())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    trained_tracks.sort();
    // 1. Wear physics per corner.
    let ex = wear_examples(rows, fit_set);
    if ex.len() < 200 {
        return Err(TireError::NotEnoughData(format!(
            "only {} wear examples with ground truth (need 200)",
            ex.len() / 4
        )));
    }
    let mut wp = WearPhysics {
        coef: [[0.0; N_WEAR_TERMS]; 4],
        intercept: [0.0; 4],
        term_means: [[0.0; N_WEAR_TERMS]; 4],
    };
    let mut terms_of: Vec<[f64; N_WEAR_TERMS]> = Vec::with_capacity(ex.len());
    for e in &ex {
        terms_of.push(wear_terms(&rows[e.row_idx], e.fuel, e.c));
    }
    for c in 0..4 {
        let (a, y): (Vec<Vec<f64>>, Vec<f64>) = ex
            .iter()
            .zip(&terms_of)
            .filter(|(e, _)| e.c == c)
            .map(|(e, t)| (t.to_vec(), e.inc))
            .unzip();
        let (beta, icpt) = least_squares(&a, &y, 1e-6);
        for j in 0..N_WEAR_TERMS {
            wp.coef[c][j] = beta[j];
            wp.term_means[c][j] = a.iter().map(|r| r[j]).sum::<f64>() / a.len().max(1) as f64;
        }
        wp.intercept[c] = icpt;
    }

    // 2. Wear trees on the physics residual.
    let mut wear_trees = Vec::with_capacity(4);
    let mut y_all = Vec::new();
    let mut p_phys = Vec::new();
    let mut p_model = Vec::new();
    for c in 0..4 {
        let mut x = Matrix::new(N_WEAR_INPUTS);
        let mut y = Vec::new();
        let mut phys = Vec::new();
        for (e, t) in ex.iter().zip(&terms_of).filter(|(e, _)| e.c == c) {
            let ph = wp.increment(t, c);
            let inp = crate::tracker::wear_inputs(&rows[e.row_idx], e.fuel, e.wear_before, ph);
            x.push(&inp);
            y.push(e.inc - ph);
            phys.push(ph);
            y_all.push(e.inc);
        }
        let mut p = cfg.wear_trees.clone();
        p.seed = p.seed.wrapping_add(c as u64);
        let g = gbt::fit(&x, &y, &p, &mut *tick);
        for i in 0..x.n_rows() {
            p_phys.push(phys[i]);
            p_model.push(phys[i] + g.predict(x.row(i)));
        }
        wear_trees.push(g);
    }

    // 3. Pace physics, then the loss trees on examples produced by the tracker itself.
    let pace = fit_pace_physics(rows, fit_set);
    let mut model = TireModel {
        format_version: FORMAT_VERSION,
        model_version: cfg.model_version.clone(),
        trained_sessions: fit_set.iter().map(|s| s.to_string()).collect(),
        trained_tracks,
        training: TrainingMetrics {
            n_rows: rows.len(),
            n_fit_sessions: fit_set.len(),
            n_calibration_sessions: 0,
            n_wear_examples: ex.len() / 4,
            wear_increment_r2_physics: r2(&y_all, &p_phys),
            wear_increment_r2_model: r2(&y_all, &p_model),
            ..TrainingMetrics::default()
        },
        wear_physics: wp,
        pace_physics: pace,
        wear_trees,
        loss_trees: Gbt::constant(N_LOSS_INPUTS, 0.0),
        calibration: Calibration {
            wear_scale_floor_pct: 1.0,
            known_track: Quantiles {
                wear_q10: -0.1,
                wear_q90: 0.1,
                loss_q10_s: -0.5,
                loss_q90_s: 0.5,
                n_wear: 0,
                n_loss: 0,
            },
            new_track: Quantiles {
                wear_q10: -0.1,
                wear_q90: 0.1,
                loss_q10_s: -0.5,
                loss_q90_s: 0.5,
                n_wear: 0,
                n_loss: 0,
            },
        },
        config: cfg.clone(),
        fast: FastCache::default(),
    };
    let mut lx = Matrix::new(N_LOSS_INPUTS);
    let mut ly = Vec::new();
    for ((s, _), laps) in by_session_car(rows) {
        if !fit_set.contains(s) {
            continue;
        }
        let mut t = TireTracker::new(&model);
        for r in laps {
            let info = t.step(r, false).1;
            if let Some((p, realized)) = info.outcome {
                lx.push(&p.inputs);
                ly.push(realized - p.physics_s);
            }
        }
    }
    model.training.n_loss_examples = ly.len();
    if ly.len() < 50 {
        return Err(TireError::NotEnoughData(format!(
            "only {} clean lap pairs to learn the loss from (need 50)",
            ly.len()
        )));
    }
    model.loss_trees = gbt::fit(&lx, &ly, &cfg.loss_trees, &mut *tick);
    model.fast = FastCache::default();
    Ok(model)
}

#[cfg(test)]
mod fold_tests {
    use super::known_track_folds;

    #[test]
    fn known_track_folds_hold_out_sibling_sessions_together() {
        let tracks = vec![
            ("A", vec!["sim-A-3", "sim-A-1", "sim-A-2"]),
            ("B", vec!["sim-B-2", "sim-B-1", "sim-B-3"]),
            ("C", vec!["sim-C-1"]),
        ];
        let f = known_track_folds(&tracks, 5);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0].iter().copied().collect::<Vec<_>>(),
            ["sim-A-2", "sim-B-2"]
        );
        assert_eq!(
            f[1].iter().copied().collect::<Vec<_>>(),
            ["sim-A-3", "sim-B-3"]
        );
        // The first session of every track stays in every fit; one session per track: no fold.
        assert!(f
            .iter()
            .all(|s| !s.contains("sim-A-1") && !s.contains("sim-C-1")));
        assert!(known_track_folds(&[("C", vec!["x"])], 5).is_empty());
    }
}
