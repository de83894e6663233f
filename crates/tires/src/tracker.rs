//! [`TireTracker`]: the live, per-car state machine that turns each completed lap into a
//! [`TireState`] (wear, next-lap loss, pit window, intervals, SHAP scores, radio sentences).
//!
//! Rules:
//! - A new stint starts when `tyre_age_laps` drops (tyres changed during that lap): wear is
//!   reset to 0 and the pace baseline is cleared.
//! - Wear accumulates the predicted per-corner increments (physics + trees). A lap without the
//!   load channels (no lateral g) repeats the car's mean increment so far; a lap with fewer
//!   than [`MIN_SAMPLES`] samples adds nothing.
//! - The pace baseline is the best fuel-corrected lap among the stint's clean laps (no
//!   out-lap, pit, safety car or incomplete flag, and a lap time). The prediction is the loss
//!   of the *next* lap against that baseline.
//! - No output is ever NaN or infinite.

use crate::gbt::FastGbt;
use crate::model::{
    loss_input_name, wear_input_name, wear_terms, TireModel, CORNERS, N_LOSS_INPUTS, N_WEAR_INPUTS,
    N_WEAR_TERMS, WEAR_TERM_FEATURE,
};
use crate::row::{fidx, TireLap};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use telemetry::Corners;

/// Laps with fewer samples than this add no wear and make no prediction.
pub const MIN_SAMPLES: u32 = 10;
/// Loss threshold of the pit window, s.
pub const LOSS_THRESHOLD_S: f64 = 0.5;
/// How far ahead the pit window is searched, laps.
pub const HORIZON_LAPS: u32 = 60;

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

/// Recommended pit window, lap numbers (pit at the end of a lap in `open..=close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitWindow {
    /// First lap worth stopping at (the 80 % upper loss bound reaches 0.5 s).
    pub open_lap: u32,
    /// Last lap to stop at (the 80 % lower bound reaches 0.5 s).
    pub close_lap: u32,
}

/// Whether the state carries a full prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Every prediction is there.
    Ok,
    /// Some prediction is missing; `reason` says why (values present are still usable).
    NotEnoughData {
        /// Why.
        reason: String,
    },
}

/// One feature's SHAP contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScore {
    /// Feature name ([`laps::LapFeatures::NAMES`] or a model input name).
    pub name: Cow<'static, str>,
    /// The feature's value.
    pub value: f64,
    /// Contribution to the prediction (same unit as the prediction).
    pub score: f64,
}

/// The tire state of one car after one lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TireState {
    /// Session id.
    pub session_id: String,
    /// Car id.
    pub car_id: String,
    /// The lap just completed.
    pub lap: u32,
    /// Stint number of this car (0 = first seen).
    pub stint: u32,
    /// Laps on this set.
    pub tyre_age_laps: u32,
    /// Full prediction or not.
    #[serde(flatten)]
    pub status: Status,
    /// Predicted wear at the end of the lap, %.
    pub wear_pct: Corners<f64>,
    /// 80 % interval of the wear, %.
    pub wear_interval80_pct: Corners<Interval>,
    /// Predicted wear added during this lap, %.
    pub wear_increment_pct: Corners<f64>,
    /// Predicted loss of the next lap against the stint's best fuel-corrected pace, s.
    pub predicted_loss_per_lap_s: Option<f64>,
    /// 80 % interval of that loss, s.
    pub loss_interval80_s: Option<Interval>,
    /// Laps from now until the predicted loss reaches 0.5 s (1 = the next lap).
    pub laps_until_0_5s_loss: Option<u32>,
    /// 80 % interval of that count: where the upper and the lower loss bounds reach 0.5 s
    /// (the upper end is the search horizon when the lower bound never gets there).
    pub laps_until_interval80: Option<[u32; 2]>,
    /// Lap at whose end to pit.
    pub recommended_pit_lap: Option<u32>,
    /// Pit window.
    pub pit_window: Option<PitWindow>,
    /// Fuel effect used, s/kg.
    pub fuel_s_per_kg: f64,
    /// Whether the model was fitted on this track (intervals are calibrated per case).
    pub known_track: bool,
    /// SHAP contributions to the predicted loss (s), largest |score| first.
    pub feature_scores: Vec<FeatureScore>,
    /// Corner whose wear increment is explained (the one that wore most this lap).
    pub explained_corner: Option<Cow<'static, str>>,
    /// SHAP contributions to that corner's wear increment (%), largest |score| first.
    pub wear_feature_scores: Vec<FeatureScore>,
    /// Three radio sentences from the top contributions.
    pub explanation: Vec<String>,
}

/// A loss prediction waiting for the next lap's outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub lap: u32,
    pub inputs: [f64; N_LOSS_INPUTS],
    pub physics_s: f64,
    pub pred_s: f64,
    pub lo_s: f64,
    pub hi_s: f64,
    pub baseline_last_s: f64,
    pub baseline_line_s: f64,
}

/// What a step learnt besides the state (for training and evaluation).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StepInfo {
    /// The previous lap's prediction and the loss this lap actually had.
    pub outcome: Option<(Pending, f64)>,
    /// Tyres were changed during this lap.
    pub tyres_changed: bool,
}

/// Least-squares line accumulator.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
}

impl Line {
    fn push(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
    }
    fn slope(&self) -> Option<f64> {
        let d = self.n * self.sxx - self.sx * self.sx;
        (self.n >= 2.0 && d.abs() > 1e-9).then(|| (self.n * self.sxy - self.sx * self.sy) / d)
    }
    fn at(&self, x: f64) -> Option<f64> {
        let s = self.slope()?;
        Some((self.sy - s * self.sx) / self.n + s * x)
    }
}

/// Live tire state of one car.
#[derive(Debug, Clone)]
pub struct TireTracker<'m> {
    model: &'m TireModel,
    seen: bool,
    last_age: u32,
    stint: u32,
    wear: [f64; 4],
    stint_inc: [f64; 4],
    stint_inc_n: u32,
    car_inc: [f64; 4],
    car_inc_n: u32,
    line: Line,
    best_fc: Option<f64>,
    best_wear: f64,
    last_fc: Option<f64>,
    last_fuel: Option<f64>,
    pending: Option<Pending>,
}

fn fin(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Inputs of the wear trees for one corner.
pub(crate) fn wear_inputs(
    row: &TireLap,
    fuel_kg: f64,
    wear_before: f64,
    physics: f64,
) -> [f64; N_WEAR_INPUTS] {
    let mut x = [0.0; N_WEAR_INPUTS];
    x[..20].copy_from_slice(&row.features);
    x[20] = fuel_kg;
    x[21] = wear_before;
    x[22] = physics;
    x[23..26].copy_from_slice(&row.sector_stress_g_s);
    x.map(fin)
}

impl<'m> TireTracker<'m> {
    /// A tracker for one car.
    pub fn new(model: &'m TireModel) -> Self {
        TireTracker {
            model,
            seen: false,
            last_age: 0,
            stint: 0,
            wear: [0.0; 4],
            stint_inc: [0.0; 4],
            stint_inc_n: 0,
            car_inc: [0.0; 4],
            car_inc_n: 0,
            line: Line::default(),
            best_fc: None,
            best_wear: 0.0,
            last_fc: None,
            last_fuel: None,
            pending: None,
        }
    }

    /// Processes one completed lap of this car, with explanation.
    pub fn on_lap(&mut self, row: &TireLap) -> TireState {
        self.step(row, true).0
    }

    /// Processes one completed lap without SHAP scores or sentences (faster).
    pub fn on_lap_fast(&mut self, row: &TireLap) -> TireState {
        self.step(row, false).0
    }

    fn new_stint(&mut self) {
        self.stint += 1;
        self.wear = [0.0; 4];
        self.stint_inc = [0.0; 4];
        self.stint_inc_n = 0;
        self.line = Line::default();
        self.best_fc = None;
        self.best_wear = 0.0;
        self.last_fc = None;
        self.pending = None;
    }

    fn mean_increment(&self) -> Option<[f64; 4]> {
        if self.stint_inc_n > 0 {
            Some(self.stint_inc.map(|v| v / f64::from(self.stint_inc_n)))
        } else if self.car_inc_n > 0 {
            Some(self.car_inc.map(|v| v / f64::from(self.car_inc_n)))
        } else {
            None
        }
    }

    pub(crate) fn step(&mut self, raw: &TireLap, explain: bool) -> (TireState, StepInfo) {
        let mut row_buf;
        let row = if raw.features.iter().all(|v| v.is_finite()) {
            raw
        } else {
            row_buf = raw.clone();
            row_buf.sanitize();
            &row_buf
        };
        let m = self.model;
        let fast = m.fast();
        let pace = &m.pace_physics;
        let mut info = StepInfo::default();
        let mut reason: Option<String> = None;

        // 1. Stint.
        let tyres_changed = self.seen && row.tyre_age_laps < self.last_age;
        if tyres_changed {
            self.new_stint();
        }
        info.tyres_changed = tyres_changed;
        let first = !self.seen;
        self.seen = true;
        self.last_age = row.tyre_age_laps;
        let fuel = row.fuel_kg.or(self.last_fuel);
        if fuel.is_some() {
            self.last_fuel = fuel;
        }
        let fuel_kg = fuel.unwrap_or(0.0);

        // 2. Realised loss of this lap against the pending prediction.
        let fc = (row.is_clean_timed() && !tyres_changed && row.n_samples >= MIN_SAMPLES)
            .then(|| row.lap_time_s.map(|t| t - pace.fuel_s_per_kg * fuel_kg))
            .flatten()
            .filter(|v| v.is_finite());
        let pending = self.pending.take();
        if let (Some(p), Some(fc), Some(best)) = (pending, fc, self.best_fc) {
            if p.lap + 1 == row.lap {
                info.outcome = Some((p, fc - best));
            }
        }

        // 3. Wear.
        let tiny = row.n_samples < MIN_SAMPLES;
        let mut inc = [0.0; 4];
        let mut explain_corner: Option<(usize, [f64; N_WEAR_INPUTS], [f64; N_WEAR_TERMS])> = None;
        if tyres_changed {
            self.wear = [0.0; 4];
        } else if tiny {
            reason = Some(format!(
                "lap {} has only {} samples (need {MIN_SAMPLES})",
                row.lap, row.n_samples
            ));
        } else if !row.present[fidx::LAT_GS] {
            match self.mean_increment() {
                Some(mi) => inc = mi,
                None => {
                    reason = Some(
                        "no load channels (lateral g) on this lap and no earlier lap to go by"
                            .into(),
                    )
                }
            }
        } else {
            let mut best_c = 0;
            let mut best_inc = f64::NEG_INFINITY;
            let mut inputs_c = [[0.0; N_WEAR_INPUTS]; 4];
            let mut terms_c = [[0.0; N_WEAR_TERMS]; 4];
            for c in 0..4 {
                let terms = wear_terms(row, fuel_kg, c);
                let ph = m.wear_physics.increment(&terms, c);
                let x = wear_inputs(row, fuel_kg, self.wear[c], ph);
                let v = fin(ph + fast.wear.get(c).map_or(0.0, |g| g.predict(&x)));
                inc[c] = v.clamp(0.0, 25.0);
                if inc[c] > best_inc {
                    best_inc = inc[c];
                    best_c = c;
                }
                inputs_c[c] = x;
                terms_c[c] = terms;
            }
            if first && row.tyre_age_laps > 0 {
                // Tyres already used when we first see them: assume this lap's rate so far.
                for c in 0..4 {
                    self.wear[c] = inc[c] * f64::from(row.tyre_age_laps);
                }
            }
            for c in 0..4 {
                self.stint_inc[c] += inc[c];
                self.car_inc[c] += inc[c];
            }
            self.stint_inc_n += 1;
            self.car_inc_n += 1;
            // A clamped increment (0 or 25 %) is not what the model said: not explained.
            if explain && best_inc > 0.0 && best_inc < 25.0 {
                explain_corner = Some((best_c, inputs_c[best_c], terms_c[best_c]));
            }
        }
        for c in 0..4 {
            self.wear[c] = fin(self.wear[c] + inc[c]).clamp(0.0, 100.0);
        }
        let wear_mean = self.wear.iter().sum::<f64>() / 4.0;
        let wear_max = self.wear.iter().copied().fold(0.0, f64::max);

        // 4. Pace baseline.
        let mut last_loss = None;
        if let Some(fc) = fc {
            self.line.push(f64::from(row.lap), fc);
            if self.best_fc.is_none_or(|b| fc < b) {
                self.best_fc = Some(fc);
                let inc_mean = inc.iter().sum::<f64>() / 4.0;
                self.best_wear = (wear_mean - 0.5 * inc_mean).max(0.0);
            }
            self.last_fc = Some(fc);
        }
        if let (Some(l), Some(b)) = (self.last_fc, self.best_fc) {
            last_loss = Some(l - b);
        }

        // 5. Next-lap loss.
        let mi = self.mean_increment().unwrap_or(inc);
        let inc_next = mi.iter().sum::<f64>() / 4.0;
        let known_track = row
            .track
            .as_ref()
            .is_some_and(|t| m.trained_tracks.binary_search(t).is_ok());
        let cal = if known_track {
            &m.calibration.known_track
        } else {
            &m.calibration.new_track
        };
        let scale_floor = m.calibration.wear_scale_floor_pct;
        let mut loss = None;
        let mut loss_phi: Option<(Vec<f64>, [f64; N_LOSS_INPUTS])> = None;
        let mut until = None;
        let mut until_iv = None;
        let mut window = None;
        let mut rec_lap = None;
        match (self.best_fc, tiny) {
            (Some(best), false) => {
                let t_best = best.max(1.0);
                let phys_at =
                    |w: f64| t_best * (pace.slowdown(w.max(0.0)) - pace.slowdown(self.best_wear));
                let physics_s = fin(phys_at(wear_mean + 0.5 * inc_next));
                let mut x = [0.0; N_LOSS_INPUTS];
                x[..20].copy_from_slice(&row.features);
                x[20] = fuel_kg;
                x[21] = wear_mean;
                x[22] = wear_max;
                x[23] = self.line.n;
                x[24] = last_loss.unwrap_or(0.0);
                x[25] = self.line.slope().unwrap_or(0.0);
                x[26] = if fc.is_some() { 1.0 } else { 0.0 };
                x[27] = if row.validity.safety_car { 1.0 } else { 0.0 };
                x[28] = physics_s;
                x[29] = best;
                let x = x.map(fin);
                let resid = fin(fast.loss.predict(&x));
                let pred = fin(physics_s + resid);
                let base_last = last_loss.unwrap_or(0.0);
                let base_line = self
                    .line
                    .at(f64::from(row.lap) + 1.0)
                    .map_or(base_last, |v| fin(v - best));
                let p = Pending {
                    lap: row.lap,
                    inputs: x,
                    physics_s,
                    pred_s: pred,
                    lo_s: pred + cal.loss_q10_s,
                    hi_s: pred + cal.loss_q90_s,
                    baseline_last_s: base_last,
                    baseline_line_s: base_line,
                };
                self.pending = Some(p);
                loss = Some(p);
                // Projection: wear grows at the stint's mean rate, the tree residual stays.
                let mut open = None;
                let mut close = None;
                for j in 1..=HORIZON_LAPS {
                    let w = wear_mean + inc_next * (f64::from(j) - 0.5);
                    let l = fin(phys_at(w)) + resid;
                    if until.is_none() && l >= LOSS_THRESHOLD_S {
                        until = Some(j);
                    }
                    if open.is_none() && l + cal.loss_q90_s >= LOSS_THRESHOLD_S {
                        open = Some(j);
                    }
                    if close.is_none() && l + cal.loss_q10_s >= LOSS_THRESHOLD_S {
                        close = Some(j);
                        break;
                    }
                }
                if let (Some(u), Some(o)) = (until, open) {
                    until_iv = Some([o.min(u), close.unwrap_or(HORIZON_LAPS).max(u)]);
                }
                if let Some(u) = until {
                    let rl = (row.lap + u).saturating_sub(1).max(row.lap + 1);
                    rec_lap = Some(rl);
                    let o = open.map_or(rl, |o| (row.lap + o).saturating_sub(1).max(row.lap + 1));
                    let c = close.map_or(rl + 3, |c| (row.lap + c).saturating_sub(1).max(rl));
                    window = Some(PitWindow {
                        open_lap: o.min(rl),
                        close_lap: c.max(rl),
                    });
                }
                if explain {
                    let mut phi = vec![0.0; N_LOSS_INPUTS];
                    fast.loss.shap(&x, &mut phi);
                    // The physics term is additive: its exact Shapley value is its value
                    // (reference 0 = the best lap's wear); base = the trees' expected value.
                    phi[28] += physics_s;
                    loss_phi = Some((phi, x));
                }
            }
            (None, false) => {
                reason.get_or_insert_with(|| {
                    "no clean timed lap yet in this stint to measure pace against".into()
                });
            }
            _ => {}
        }

        // 6. Intervals.
        let wear_iv = self.wear.map(|w| {
            let s = scale_floor + w;
            let lo = fin(w + cal.wear_q10 * s).clamp(0.0, 100.0);
            let hi = fin(w + cal.wear_q90 * s).clamp(0.0, 100.0);
            Interval {
                lo: lo.min(hi),
                hi: hi.max(lo),
            }
        });

        // 7. Explanations.
        let mut feature_scores = Vec::new();
        let mut wear_scores = Vec::new();
        let mut explained = None;
        let mut sentences = Vec::new();
        if explain {
            if let Some((phi, x)) = &loss_phi {
                feature_scores = scores(phi, x, loss_input_name);
            }
            if let Some((c, x, terms)) = explain_corner {
                if let Some(g) = fast.wear.get(c) {
                    let phi = wear_shap(m, g, c, &x, &terms);
                    wear_scores = scores(&phi, &x, wear_input_name);
                    explained = Some(Cow::Borrowed(CORNERS[c]));
                    sentences = wear_sentences(&wear_scores, c, row, &self.wear);
                }
            }
            if sentences.len() < 3 {
                for s in &feature_scores {
                    if sentences.len() >= 3 {
                        break;
                    }
                    let text = loss_sentence(s, row, wear_mean);
                    if !sentences.contains(&text) {
                        sentences.push(text);
                    }
                }
            }
            if sentences.is_empty() {
                if let Some(r) = &reason {
                    sentences.push(format!("Not enough data: {r}"));
                }
            }
        }

        let state = TireState {
            session_id: row.session_id.clone(),
            car_id: row.car_id.clone(),
            lap: row.lap,
            stint: self.stint,
            tyre_age_laps: row.tyre_age_laps,
            status: match reason {
                None => Status::Ok,
                Some(reason) => Status::NotEnoughData { reason },
            },
            wear_pct: Corners::from_array(self.wear),
            wear_interval80_pct: Corners::from_array(wear_iv),
            wear_increment_pct: Corners::from_array(inc),
            predicted_loss_per_lap_s: loss.map(|p| p.pred_s),
            loss_interval80_s: loss.map(|p| Interval {
                lo: p.lo_s,
                hi: p.hi_s,
            }),
            laps_until_0_5s_loss: until,
            laps_until_interval80: until_iv,
            recommended_pit_lap: rec_lap,
            pit_window: window,
            fuel_s_per_kg: pace.fuel_s_per_kg,
            known_track,
            feature_scores,
            explained_corner: explained,
            wear_feature_scores: wear_scores,
            explanation: sentences,
        };
        (state, info)
    }
}

/// SHAP of a wear increment: exact TreeSHAP of the residual trees plus the exact Shapley values
/// of the linear physics terms (coef × (term − training mean)), credited to their features.
fn wear_shap(
    m: &TireModel,
    g: &FastGbt,
    c: usize,
    x: &[f64; N_WEAR_INPUTS],
    terms: &[f64; N_WEAR_TERMS],
) -> Vec<f64> {
    let mut phi = vec![0.0; N_WEAR_INPUTS];
    g.shap(x, &mut phi);
    let wp = &m.wear_physics;
    for j in 0..N_WEAR_TERMS {
        let f = WEAR_TERM_FEATURE[j];
        phi[f] += wp.coef[c][j] * (terms[j] - wp.term_means[c][j]);
    }
    phi
}

fn scores(phi: &[f64], x: &[f64], name: fn(usize) -> &'static str) -> Vec<FeatureScore> {
    let mut v: Vec<FeatureScore> = phi
        .iter()
        .enumerate()
        .filter(|(_, s)| s.abs() > 1e-12)
        .map(|(i, s)| FeatureScore {
            name: Cow::Borrowed(name(i)),
            value: fin(x.get(i).copied().unwrap_or(0.0)),
            score: fin(*s),
        })
        .collect();
    v.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()));
    v
}

/// Formats with thousands separators: 1250.4 → "1,250".
fn thousands(v: f64) -> String {
    let n = fin(v).round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn wear_sentences(
    scores: &[FeatureScore],
    c: usize,
    row: &TireLap,
    wear: &[f64; 4],
) -> Vec<String> {
    let corner = cap(CORNERS[c]);
    let mut out: Vec<String> = Vec::with_capacity(3);
    for s in scores {
        if out.len() >= 3 {
            break;
        }
        let dir = if s.score >= 0.0 { "adding" } else { "saving" };
        let pct = format!("{dir} {:.2} % wear", s.score.abs());
        let text = match s.name.as_ref() {
            "cum_lateral_g_s" => format!(
                "{corner} is carrying the load: {} g-s of lateral load this lap ({pct})",
                thousands(s.value)
            ),
            "heavy_braking_events" => format!(
                "{} heavy stops this lap are heating the fronts ({pct})",
                thousands(s.value)
            ),
            "brake_energy_kj" => format!(
                "{} kJ into the brakes this lap, working the fronts ({pct})",
                thousands(s.value)
            ),
            "cum_longitudinal_g_s" => format!(
                "{} g-s of braking and traction this lap ({pct})",
                thousands(s.value)
            ),
            "hard_cornering_events" => {
                format!("{} hard corners this lap ({pct})", thousands(s.value))
            }
            "tyre_age_laps" => format!("Tyres are {} laps old", row.tyre_age_laps),
            "wear_so_far_pct" => format!(
                "{corner} is already at {:.0} % wear ({pct})",
                wear.get(c).copied().unwrap_or(0.0)
            ),
            "fuel_kg" => format!("{:.1} kg of fuel still loading the tyres ({pct})", s.value),
            "physics_wear_pct" => format!(
                "Load model puts {} at {:.2} % wear this lap",
                CORNERS[c], s.value
            ),
            "lateral_bias" => format!(
                "{:.0} % of the cornering load is on the right-hand tyres ({pct})",
                s.value * 100.0
            ),
            "front_load_share" => format!(
                "{:.0} % of the load on the front axle ({pct})",
                s.value * 100.0
            ),
            "high_speed_share" => {
                format!("{:.0} % of the lap above 200 km/h ({pct})", s.value * 100.0)
            }
            "speed_mean_kmh" => format!("Average speed {:.0} km/h ({pct})", s.value),
            "speed_max_kmh" => format!("Top speed {:.0} km/h ({pct})", s.value),
            "speed_std_kmh" => {
                format!("Speed swings of {:.0} km/h around the lap ({pct})", s.value)
            }
            "max_lateral_g" => format!("Peak cornering load {:.2} g ({pct})", s.value),
            "max_longitudinal_g" => {
                format!("Peak braking/traction load {:.2} g ({pct})", s.value)
            }
            "lap_number" => format!("Lap {} of the race ({pct})", row.lap),
            "air_temp_c" => format!("Air at {:.0} °C ({pct})", s.value),
            "track_temp_c" => format!("Track at {:.0} °C ({pct})", s.value),
            n if n.starts_with("sector_") && n.ends_with("_stress_g_s") => format!(
                "Sector {} stress {} g-s ({pct})",
                n.chars().nth(7).unwrap_or('?'),
                thousands(s.value)
            ),
            n => format!("{n} = {:.2} ({pct})", s.value),
        };
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

fn loss_sentence(s: &FeatureScore, row: &TireLap, wear_mean: f64) -> String {
    let secs = format!("{:+.2} s a lap", s.score);
    match s.name.as_ref() {
        "physics_loss_s" | "wear_mean_pct" | "wear_max_pct" => {
            format!("Worn tyres ({wear_mean:.0} % average) cost {secs}")
        }
        "tyre_age_laps" => format!("Tyres are {} laps old ({secs})", row.tyre_age_laps),
        "fuel_kg" => format!("{:.1} kg of fuel on board ({secs})", s.value),
        "stint_clean_laps" => format!(
            "Best lap is from {} clean laps this stint ({secs})",
            s.value.round()
        ),
        "last_loss_s" => format!("Last lap was {:.2} s off the best ({secs})", s.value),
        "last_lap_safety_car" => format!("Restart after the safety car ({secs})"),
        n => format!("{n} = {:.2} ({secs})", s.value),
    }
}

/// Runs every car of `rows` through its own tracker (rows grouped by session and car, in lap
/// order) without explanations; returns the states in that order.
pub fn predict_rows(model: &TireModel, rows: &[TireLap]) -> Vec<TireState> {
    let mut out = Vec::with_capacity(rows.len());
    for laps in crate::model::by_session_car(rows).values() {
        let mut t = TireTracker::new(model);
        for r in laps {
            out.push(t.step(r, false).0);
        }
    }
    out
}
