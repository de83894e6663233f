//! Evaluation on held-out sessions against the two baselines, and the HTML report.

use crate::model::{by_session_car, TireModel};
use crate::row::TireLap;
use crate::tracker::TireTracker;
use crate::TireError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Metrics of a group of laps (all, one track, one session, one seed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// Group key (track, session or seed; "all").
    pub key: String,
    /// Laps evaluated.
    pub n_laps: usize,
    /// Per-corner wear outcomes (corner-laps with ground truth).
    pub n_wear: usize,
    /// Loss outcomes (clean laps following a prediction).
    pub n_loss: usize,
    /// R² of per-corner wear at lap end (pooled over corners).
    pub wear_r2: f64,
    /// MAE of per-corner wear, %.
    pub wear_mae_pct: f64,
    /// Share of wear outcomes inside the 80 % interval.
    pub wear_interval80_coverage: f64,
    /// MAE of the next-lap loss, s.
    pub loss_mae_s: f64,
    /// Baseline: the last lap's loss repeated.
    pub baseline_last_lap_mae_s: f64,
    /// Baseline: a least-squares line through the stint's fuel-corrected laps so far.
    pub baseline_stint_line_mae_s: f64,
    /// Share of loss outcomes inside the 80 % interval.
    pub interval80_coverage: f64,
    /// Sums behind `wear_r2` (squared errors, outcomes, squared outcomes), so that groups
    /// scored by different models can be pooled ([`GroupMetrics::pooled_wear_r2`]).
    #[serde(skip)]
    pub wear_sums: [f64; 3],
}

impl GroupMetrics {
    /// R² of the wear outcomes of several groups taken together.
    pub fn pooled_wear_r2(groups: &[GroupMetrics]) -> f64 {
        let n: usize = groups.iter().map(|g| g.n_wear).sum();
        let [sse, sy, syy] = groups.iter().fold([0.0; 3], |a, g| {
            [
                a[0] + g.wear_sums[0],
                a[1] + g.wear_sums[1],
                a[2] + g.wear_sums[2],
            ]
        });
        let tot = syy - sy * sy / n.max(1) as f64;
        if n > 0 && tot > 0.0 {
            1.0 - sse / tot
        } else {
            0.0
        }
    }
}

/// Loss series of one stint, for plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StintCurve {
    /// Session, car and stint.
    pub label: String,
    /// Lap numbers.
    pub laps: Vec<u32>,
    /// Realised loss, s.
    pub actual_s: Vec<f64>,
    /// Predicted loss, s.
    pub predicted_s: Vec<f64>,
    /// 80 % interval bounds, s.
    pub lo_s: Vec<f64>,
    /// See `lo_s`.
    pub hi_s: Vec<f64>,
}

/// Mean |SHAP| of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Feature name.
    pub name: String,
    /// Mean absolute contribution.
    pub mean_abs_score: f64,
}

/// Data behind the report's plots.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Series {
    /// (true, predicted) wear, % (subsampled to at most 3,000).
    pub wear_true_pred_pct: Vec<[f64; 2]>,
    /// Loss residuals (true − predicted), s (at most 3,000).
    pub loss_residuals_s: Vec<f64>,
    /// A few stints' loss curves.
    pub loss_curves: Vec<StintCurve>,
    /// Loss importance (s), largest first.
    pub loss_importance: Vec<Importance>,
    /// Wear importance (% per lap), largest first.
    pub wear_importance: Vec<Importance>,
}

/// The evaluation report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EvalReport {
    /// Model version evaluated.
    pub model_version: String,
    /// Sessions evaluated.
    pub n_sessions: usize,
    /// Laps evaluated.
    pub n_laps: usize,
    /// Per-corner wear outcomes.
    pub n_wear: usize,
    /// Loss outcomes.
    pub n_loss: usize,
    /// R² of per-corner wear (pooled).
    pub wear_r2: f64,
    /// R² per corner (FL, FR, RL, RR).
    pub wear_r2_per_corner: [f64; 4],
    /// MAE of per-corner wear, %.
    pub wear_mae_pct: f64,
    /// Share of wear outcomes inside their 80 % interval.
    pub wear_interval80_coverage: f64,
    /// MAE of the next-lap loss, s.
    pub loss_mae_s: f64,
    /// Baseline MAE: last lap repeated, s.
    pub baseline_last_lap_mae_s: f64,
    /// Baseline MAE: line through the stint, s.
    pub baseline_stint_line_mae_s: f64,
    /// Share of loss outcomes inside their 80 % interval.
    pub interval80_coverage: f64,
    /// Per track.
    pub per_track: Vec<GroupMetrics>,
    /// Per seed (the session id's last `-` token).
    pub per_seed: Vec<GroupMetrics>,
    /// Per session.
    pub per_session: Vec<GroupMetrics>,
    /// Plot data.
    pub series: Series,
}

#[derive(Default)]
struct Acc {
    laps: usize,
    wy: Vec<f64>,
    wp: Vec<f64>,
    w_in: usize,
    l_err: Vec<f64>,
    b_last: Vec<f64>,
    b_line: Vec<f64>,
    l_in: usize,
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub(crate) fn r2(y: &[f64], p: &[f64]) -> f64 {
    let m = mean(y);
    let tot: f64 = y.iter().map(|v| (v - m).powi(2)).sum();
    let res: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    if tot > 0.0 {
        1.0 - res / tot
    } else {
        0.0
    }
}

/// One lap's outcomes.
struct Obs {
    wear: Option<[f64; 4]>,
    pred: [f64; 4],
    iv: [crate::tracker::Interval; 4],
    /// (true, predicted, lo, hi, baseline last, baseline line).
    loss: Option<(f64, f64, f64, f64, f64, f64)>,
}

impl Acc {
    fn add(&mut self, o: &Obs) {
        self.laps += 1;
        if let Some(w) = o.wear {
            for c in 0..4 {
                self.wy.push(w[c]);
                self.wp.push(o.pred[c]);
                if w[c] >= o.iv[c].lo - 1e-9 && w[c] <= o.iv[c].hi + 1e-9 {
                    self.w_in += 1;
                }
            }
        }
        if let Some((y, p, lo, hi, bl, bs)) = o.loss {
            self.l_err.push(y - p);
            self.b_last.push(y - bl);
            self.b_line.push(y - bs);
            if y >= lo && y <= hi {
                self.l_in += 1;
            }
        }
    }

    fn metrics(&self, key: &str) -> GroupMetrics {
        let n_wear = self.wy.len();
        let n_loss = self.l_err.len();
        let abs = |v: &[f64]| mean(&v.iter().map(|x| x.abs()).collect::<Vec<_>>());
        GroupMetrics {
            key: key.to_string(),
            n_laps: self.laps,
            n_wear,
            n_loss,
            wear_r2: r2(&self.wy, &self.wp),
            wear_mae_pct: mean(
                &self
                    .wy
                    .iter()
                    .zip(&self.wp)
                    .map(|(a, b)| (a - b).abs())
                    .collect::<Vec<_>>(),
            ),
            wear_interval80_coverage: if n_wear > 0 {
                self.w_in as f64 / n_wear as f64
            } else {
                0.0
            },
            loss_mae_s: abs(&self.l_err),
            baseline_last_lap_mae_s: abs(&self.b_last),
            baseline_stint_line_mae_s: abs(&self.b_line),
            interval80_coverage: if n_loss > 0 {
                self.l_in as f64 / n_loss as f64
            } else {
                0.0
            },
            wear_sums: [
                self.wy
                    .iter()
                    .zip(&self.wp)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum(),
                self.wy.iter().sum(),
                self.wy.iter().map(|a| a * a).sum(),
            ],
        }
    }
}

/// The seed of a session id: its last `-` token (`sim-Austin-7` → `7`).
fn seed_of(session: &str) -> &str {
    session.rsplit('-').next().unwrap_or(session)
}

/// Evaluates `model` on `rows`. Refuses with [`TireError::TrainedOn`] if any session of `rows`
/// was used to train the model (fit or calibration).
pub fn evaluate(model: &TireModel, rows: &[TireLap]) -> Result<EvalReport, TireError> {
    let trained: BTreeSet<&str> = model.trained_sessions.iter().map(String::as_str).collect();
    if let Some(r) = rows
        .iter()
        .find(|r| trained.contains(r.session_id.as_str()))
    {
        return Err(TireError::TrainedOn {
            session: r.session_id.clone(),
        });
    }
    if rows.is_empty() {
        return Err(TireError::NotEnoughData("no laps to evaluate".into()));
    }
    let mut all = Acc::default();
    let mut per_track: BTreeMap<String, Acc> = BTreeMap::new();
    let mut per_seed: BTreeMap<String, Acc> = BTreeMap::new();
    let mut per_session: BTreeMap<String, Acc> = BTreeMap::new();
    let mut series = Series::default();
    let mut loss_imp: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut wear_imp: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut residuals = Vec::new();
    let mut wear_pts = Vec::new();
    let mut corner_y: [Vec<f64>; 4] = Default::default();
    let mut corner_p: [Vec<f64>; 4] = Default::default();

    for ((session, car), laps) in by_session_car(rows) {
        let track = laps
            .first()
            .and_then(|r| r.track.clone())
            .unwrap_or_else(|| "unknown".into());
        let mut t = TireTracker::new(model);
        let mut curve: Option<(u32, StintCurve)> = None;
        for r in laps {
            let (state, info) = t.step(r, true);
            for s in &state.feature_scores {
                let e = loss_imp.entry(s.name.to_string()).or_default();
                e.0 += s.score.abs();
                e.1 += 1;
            }
            for s in &state.wear_feature_scores {
                let e = wear_imp.entry(s.name.to_string()).or_default();
                e.0 += s.score.abs();
                e.1 += 1;
            }
            let wear_obs = r
                .wear_end_pct
                .filter(|_| !info.tyres_changed)
                .map(|w| w.to_array());
            let p = state.wear_pct.to_array();
            let iv = state.wear_interval80_pct.to_array();
            let loss_obs = info.outcome.map(|(pend, y)| {
                (
                    y,
                    pend.pred_s,
                    pend.lo_s,
                    pend.hi_s,
                    pend.baseline_last_s,
                    pend.baseline_line_s,
                )
            });
            let obs = Obs {
                wear: wear_obs,
                pred: p,
                iv,
                loss: loss_obs,
            };
            all.add(&obs);
            per_track.entry(track.clone()).or_default().add(&obs);
            per_seed
                .entry(seed_of(session).to_string())
                .or_default()
                .add(&obs);
            per_session
                .entry(session.to_string())
                .or_default()
                .add(&obs);
            if let Some(w) = wear_obs {
                for c in 0..4 {
                    corner_y[c].push(w[c]);
                    corner_p[c].push(p[c]);
                    wear_pts.push([w[c], p[c]]);
                }
            }
            if let Some((pend, y)) = info.outcome {
                residuals.push(y - pend.pred_s);
                if series.loss_curves.len() < 6 {
                    let label = format!("{session} {car} stint {}", state.stint);
                    let c = curve.get_or_insert_with(|| {
                        (
                            state.stint,
                            StintCurve {
                                label: label.clone(),
                                laps: Vec::new(),
                                actual_s: Vec::new(),
                                predicted_s: Vec::new(),
                                lo_s: Vec::new(),
                                hi_s: Vec::new(),
                            },
                        )
                    });
                    if c.0 == state.stint {
                        c.1.laps.push(r.lap);
                        c.1.actual_s.push(y);
                        c.1.predicted_s.push(pend.pred_s);
                        c.1.lo_s.push(pend.lo_s);
                        c.1.hi_s.push(pend.hi_s);
                    }
                }
            }
            if info.tyres_changed {
                if let Some((_, c)) = curve.take() {
                    if c.laps.len() >= 5 && series.loss_curves.len() < 6 {
                        series.loss_curves.push(c);
                    }
                }
            }
        }
        if let Some((_, c)) = curve.take() {
            if c.laps.len() >= 5 && series.loss_curves.len() < 6 {
                series.loss_curves.push(c);
            }
        }
    }

    let stride = |n: usize| (n / 3000).max(1);
    let ws = stride(wear_pts.len());
    series.wear_true_pred_pct = wear_pts.into_iter().step_by(ws).collect();
    let rs = stride(residuals.len());
    series.loss_residuals_s = residuals.into_iter().step_by(rs).collect();
    let imp = |m: BTreeMap<String, (f64, usize)>, n: usize| {
        let mut v: Vec<Importance> = m
            .into_iter()
            .map(|(name, (s, _))| Importance {
                name,
                mean_abs_score: s / n.max(1) as f64,
            })
            .collect();
        v.sort_by(|a, b| b.mean_abs_score.total_cmp(&a.mean_abs_score));
        v
    };
    series.loss_importance = imp(loss_imp, all.laps);
    series.wear_importance = imp(wear_imp, all.laps);

    let g = all.metrics("all");
    Ok(EvalReport {
        model_version: model.model_version.clone(),
        n_sessions: per_session.len(),
        n_laps: g.n_laps,
        n_wear: g.n_wear,
        n_loss: g.n_loss,
        wear_r2: g.wear_r2,
        wear_r2_per_corner: std::array::from_fn(|c| r2(&corner_y[c], &corner_p[c])),
        wear_mae_pct: g.wear_mae_pct,
        wear_interval80_coverage: g.wear_interval80_coverage,
        loss_mae_s: g.loss_mae_s,
        baseline_last_lap_mae_s: g.baseline_last_lap_mae_s,
        baseline_stint_line_mae_s: g.baseline_stint_line_mae_s,
        interval80_coverage: g.interval80_coverage,
        per_track: per_track.iter().map(|(k, a)| a.metrics(k)).collect(),
        per_seed: per_seed.iter().map(|(k, a)| a.metrics(k)).collect(),
        per_session: per_session.iter().map(|(k, a)| a.metrics(k)).collect(),
        series,
    })
}

impl EvalReport {
    /// A plain-text table: model against both baselines, overall and per track.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>7} {:>8} {:>7} {:>9} {:>9} {:>9} {:>7}",
            "group",
            "laps",
            "wearR2",
            "wearMAE%",
            "wearCov",
            "lossMAE",
            "lastLap",
            "stintLine",
            "lossCov"
        );
        let mut line = |g: &GroupMetrics| {
            let _ = writeln!(
                s,
                "{:<22} {:>6} {:>7.4} {:>8.3} {:>7.3} {:>9.3} {:>9.3} {:>9.3} {:>7.3}",
                g.key,
                g.n_laps,
                g.wear_r2,
                g.wear_mae_pct,
                g.wear_interval80_coverage,
                g.loss_mae_s,
                g.baseline_last_lap_mae_s,
                g.baseline_stint_line_mae_s,
                g.interval80_coverage
            );
        };
        line(&GroupMetrics {
            key: "ALL".into(),
            n_laps: self.n_laps,
            n_wear: self.n_wear,
            n_loss: self.n_loss,
            wear_r2: self.wear_r2,
            wear_mae_pct: self.wear_mae_pct,
            wear_interval80_coverage: self.wear_interval80_coverage,
            loss_mae_s: self.loss_mae_s,
            baseline_last_lap_mae_s: self.baseline_last_lap_mae_s,
            baseline_stint_line_mae_s: self.baseline_stint_line_mae_s,
            interval80_coverage: self.interval80_coverage,
            wear_sums: [0.0; 3],
        });
        for g in &self.per_track {
            line(g);
        }
        s
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 520.0;
const H: f64 = 300.0;
const PAD: f64 = 45.0;

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new(xs: impl Iterator<Item = f64> + Clone, ys: impl Iterator<Item = f64> + Clone) -> Frame {
        let mm = |it: &mut dyn Iterator<Item = f64>| {
            it.filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let (mut x0, mut x1) = mm(&mut xs.clone());
        let (mut y0, mut y1) = mm(&mut ys.clone());
        if !x0.is_finite() || !x1.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if !y0.is_finite() || !y1.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if x1 - x0 < 1e-9 {
            x1 = x0 + 1.0;
        }
        if y1 - y0 < 1e-9 {
            y1 = y0 + 1.0;
        }
        Frame { x0, x1, y0, y1 }
    }
    fn x(&self, v: f64) -> f64 {
        PAD + (v - self.x0) / (self.x1 - self.x0) * (W - 2.0 * PAD)
    }
    fn y(&self, v: f64) -> f64 {
        H - PAD - (v - self.y0) / (self.y1 - self.y0) * (H - 2.0 * PAD)
    }
    fn axes(&self, s: &mut String, title: &str, xl: &str, yl: &str) {
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}"><rect width="{W}" height="{H}" fill="#fff" stroke="#ccc"/><text x="{}" y="18" text-anchor="middle" font-size="14">{}</text><line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{}" stroke="#333"/><text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text><text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text><text x="{PAD}" y="{}" font-size="10">{:.3}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{:.3}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{:.3}</text><text x="{}" y="{PAD}" font-size="10" text-anchor="end">{:.3}</text>"##,
            W / 2.0,
            esc(title),
            H - PAD,
            W - PAD,
            H - PAD,
            H - PAD,
            W / 2.0,
            H - 8.0,
            esc(xl),
            H / 2.0,
            H / 2.0,
            esc(yl),
            H - PAD + 14.0,
            self.x0,
            W - PAD,
            H - PAD + 14.0,
            self.x1,
            PAD - 3.0,
            H - PAD,
            self.y0,
            PAD - 3.0,
            self.y1
        );
    }
}

pub(crate) fn scatter(title: &str, pts: &[[f64; 2]], unit: &str) -> String {
    let lo = pts
        .iter()
        .flat_map(|p| p.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let hi = pts
        .iter()
        .flat_map(|p| p.iter().copied())
        .fold(f64::NEG_INFINITY, f64::max);
    let f = Frame::new([lo, hi].into_iter(), [lo, hi].into_iter());
    let mut s = String::new();
    f.axes(
        &mut s,
        title,
        &format!("true {unit}"),
        &format!("predicted {unit}"),
    );
    let _ = write!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#c00" stroke-dasharray="4"/>"##,
        f.x(f.x0),
        f.y(f.y0),
        f.x(f.x1),
        f.y(f.y1)
    );
    for p in pts {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="#1f77b4" fill-opacity="0.4"/>"##,
            f.x(p[0]),
            f.y(p[1])
        );
    }
    s.push_str("</svg>");
    s
}

pub(crate) fn curves(c: &StintCurve, y_label: &str) -> String {
    let xs = c.laps.iter().map(|v| f64::from(*v));
    let ys = c
        .actual_s
        .iter()
        .chain(&c.lo_s)
        .chain(&c.hi_s)
        .chain(&c.predicted_s)
        .copied();
    let f = Frame::new(xs, ys);
    let mut s = String::new();
    f.axes(&mut s, &c.label, "lap", y_label);
    let path = |v: &[f64]| {
        c.laps
            .iter()
            .zip(v)
            .enumerate()
            .map(|(i, (l, y))| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    f.x(f64::from(*l)),
                    f.y(*y)
                )
            })
            .collect::<String>()
    };
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#aaa" stroke-dasharray="3"/><path d="{}" fill="none" stroke="#aaa" stroke-dasharray="3"/><path d="{}" fill="none" stroke="#d62728" stroke-width="2"/><path d="{}" fill="none" stroke="#333"/>"##,
        path(&c.lo_s),
        path(&c.hi_s),
        path(&c.predicted_s),
        path(&c.actual_s)
    );
    s.push_str(r##"<text x="60" y="38" font-size="10" fill="#d62728">predicted (grey: 80 % interval)</text><text x="60" y="50" font-size="10">actual</text></svg>"##);
    s
}

pub(crate) fn histogram(title: &str, v: &[f64], x_label: &str) -> String {
    let nb = 30usize;
    let f0 = Frame::new(v.iter().copied(), [0.0].into_iter());
    let mut counts = vec![0usize; nb];
    for x in v {
        let b = (((x - f0.x0) / (f0.x1 - f0.x0)) * nb as f64).floor();
        if b.is_finite() {
            counts[(b.max(0.0) as usize).min(nb - 1)] += 1;
        }
    }
    let cmax = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let f = Frame {
        x0: f0.x0,
        x1: f0.x1,
        y0: 0.0,
        y1: cmax,
    };
    let mut s = String::new();
    f.axes(&mut s, title, x_label, "laps");
    let bw = (f.x1 - f.x0) / nb as f64;
    for (i, c) in counts.iter().enumerate() {
        let x = f.x0 + i as f64 * bw;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2ca02c"/>"##,
            f.x(x),
            f.y(*c as f64),
            (f.x(x + bw) - f.x(x) - 1.0).max(0.5),
            f.y(0.0) - f.y(*c as f64)
        );
    }
    s.push_str("</svg>");
    s
}

pub(crate) fn bars(title: &str, items: &[(String, f64)], target: Option<(f64, f64)>) -> String {
    let n = items.len().max(1);
    let h = 40.0 + 18.0 * n as f64;
    let vmax = items
        .iter()
        .map(|i| i.1)
        .fold(1e-12, f64::max)
        .max(target.map_or(0.0, |t| t.1));
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}"><rect width="{W}" height="{h}" fill="#fff" stroke="#ccc"/><text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>"##,
        W / 2.0,
        esc(title)
    );
    let x0 = 190.0;
    let span = W - x0 - 60.0;
    if let Some((a, b)) = target {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="28" width="{:.1}" height="{:.1}" fill="#ffe9a8"/>"##,
            x0 + a / vmax * span,
            (b - a) / vmax * span,
            h - 32.0
        );
    }
    for (i, (name, v)) in items.iter().enumerate() {
        let y = 30.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{x0}" y="{:.1}" width="{:.1}" height="13" fill="#9467bd"/><text x="{:.1}" y="{:.1}" font-size="10">{:.4}</text>"##,
            x0 - 5.0,
            y + 11.0,
            esc(name),
            y,
            (v / vmax * span).max(0.0),
            x0 + (v / vmax * span).max(0.0) + 4.0,
            y + 11.0,
            v
        );
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report (inline SVG, no external assets).
pub fn report_html(r: &EvalReport) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Tire model evaluation</title><style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#eee}.plots svg{margin:6px}</style></head><body>");
    let _ = write!(
        s,
        "<h1>Tire model evaluation</h1><p>Model <b>{}</b>, {} held-out sessions, {} laps, {} wear outcomes, {} loss outcomes.</p>",
        esc(&r.model_version),
        r.n_sessions,
        r.n_laps,
        r.n_wear,
        r.n_loss
    );
    s.push_str("<h2>Summary</h2><pre>");
    s.push_str(&esc(&r.table()));
    s.push_str("</pre>");
    let _ = write!(
        s,
        "<p>Wear R² per corner: FL {:.4}, FR {:.4}, RL {:.4}, RR {:.4}.</p>",
        r.wear_r2_per_corner[0],
        r.wear_r2_per_corner[1],
        r.wear_r2_per_corner[2],
        r.wear_r2_per_corner[3]
    );
    s.push_str("<div class=\"plots\">");
    s.push_str(&scatter(
        "Predicted vs true wear",
        &r.series.wear_true_pred_pct,
        "wear %",
    ));
    s.push_str(&histogram(
        "Loss residuals",
        &r.series.loss_residuals_s,
        "true − predicted loss, s",
    ));
    let mut cov: Vec<(String, f64)> = vec![
        ("all: loss".into(), r.interval80_coverage),
        ("all: wear".into(), r.wear_interval80_coverage),
    ];
    for g in &r.per_track {
        cov.push((format!("{}: loss", g.key), g.interval80_coverage));
    }
    s.push_str(&bars(
        "80 % interval coverage (band: 0.75-0.85)",
        &cov,
        Some((0.75, 0.85)),
    ));
    let top = |v: &[Importance]| {
        v.iter()
            .take(15)
            .map(|i| (i.name.clone(), i.mean_abs_score))
            .collect::<Vec<_>>()
    };
    s.push_str(&bars(
        "Feature importance: loss (mean |SHAP|, s)",
        &top(&r.series.loss_importance),
        None,
    ));
    s.push_str(&bars(
        "Feature importance: wear (mean |SHAP|, % per lap)",
        &top(&r.series.wear_importance),
        None,
    ));
    s.push_str("</div><h2>Loss per stint</h2><div class=\"plots\">");
    for c in &r.series.loss_curves {
        s.push_str(&curves(c, "loss vs stint best, s"));
    }
    s.push_str("</div><h2>Per session</h2><table><tr><th>session</th><th>laps</th><th>wear R²</th><th>wear MAE %</th><th>loss MAE s</th><th>last lap s</th><th>stint line s</th><th>coverage</th></tr>");
    for g in &r.per_session {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            esc(&g.key),
            g.n_laps,
            g.wear_r2,
            g.wear_mae_pct,
            g.loss_mae_s,
            g.baseline_last_lap_mae_s,
            g.baseline_stint_line_mae_s,
            g.interval80_coverage
        );
    }
    s.push_str("</table></body></html>");
    s
}
