//! Fitting the race model from lap records, and backtesting predictions on a real (or simulated)
//! race.
//!
//! [`fit`] uses green laps only: no pit in- or out-lap, no full-course-yellow lap or the lap after
//! one, not lap 1. In each stint (laps between stops) it fits a robust Theil–Sen line of lap time
//! against tyre age (laps since the stop). Fuel burn is not separated: the fitted slope is the net
//! degradation (tyre - fuel), so a race built from a fit sets the fuel sensitivity to 0. A car's
//! degradation is the median of the pairwise slopes within its stints (pooled over stints); its
//! pace at age 0 is the median of lap time minus degradation x age over its green laps; the field
//! base lap time is the median car pace; noise is the
//! standard deviation of the per-stint line residuals within 3 robust sigmas (MAD) of their median. Full-course yellows are runs of laps on which any car was under
//! yellow. Compounds are not in [`LapRecord`]: every stint is taken as `medium`.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::LapRecord;
use crate::error::{Result, StrategyError};
use crate::montecarlo::{CHUNK_ITERATIONS, MAX_ITERATIONS};
use crate::params::{RaceParams, TyreModel};
use crate::plan::Strategy;
use crate::sim::{NoRecord, Race};
use crate::state::{CarState, Compound, RaceState, MAX_LAPS};

/// One stint's robust line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedStint {
    /// First lap of the stint.
    pub first_lap: u32,
    /// Last lap of the stint.
    pub last_lap: u32,
    /// Lap time at tyre age 0.
    pub intercept_s: f64,
    /// Net degradation per lap of age.
    pub slope_s_per_lap: f64,
    /// Green laps used.
    pub laps_used: u32,
}

/// What the fit found for one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedCar {
    /// Car id.
    pub car_id: String,
    /// Pace at tyre age 0 minus the field base.
    pub pace_offset_s: f64,
    /// Net degradation per lap (median over stints).
    pub deg_s_per_lap: f64,
    /// Lap-time noise (robust sigma of the residuals).
    pub noise_sigma_s: f64,
    /// Stints with a line.
    pub stints: Vec<FittedStint>,
    /// Green laps used in all.
    pub laps_used: u32,
}

/// The fitted race.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FittedRace {
    /// Field base lap time (median car intercept).
    pub base_lap_time_s: f64,
    /// Cars with at least one fitted stint.
    pub cars: Vec<FittedCar>,
    /// Highest lap seen.
    pub laps_seen: u32,
    /// Full-course-yellow phases seen.
    pub fcy_phases: u32,
    /// Mean length of those phases, laps.
    pub fcy_mean_length_laps: f64,
    /// Laps under full-course yellow.
    pub fcy_laps: u32,
    /// Phases started per green lap (a rate for extrapolation).
    pub fcy_phase_rate_per_lap: f64,
    /// Median total cost of a stop (in-lap + out-lap time over the stint line), when any stop
    /// was seen under green.
    pub pit_stop_cost_s: Option<f64>,
}

/// Median (NaN when empty); sorts `v`.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Robust sigma: residuals further than 3 x (1.4826 MAD) from the median are dropped, the rest
/// give a standard deviation corrected for the 3-sigma truncation (x 1.0137).
fn robust_sigma(res: &[f64]) -> f64 {
    if res.len() < 2 {
        return 0.0;
    }
    let mut r = res.to_vec();
    let med = median(&mut r);
    let mut dev: Vec<f64> = res.iter().map(|x| (x - med).abs()).collect();
    let s0 = 1.4826 * median(&mut dev);
    let kept: Vec<f64> = res
        .iter()
        .copied()
        .filter(|x| (x - med).abs() <= 3.0 * s0 + 1e-12)
        .collect();
    if kept.len() < 2 {
        return s0;
    }
    let m = kept.iter().sum::<f64>() / kept.len() as f64;
    let var = kept.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (kept.len() - 1) as f64;
    1.0137 * var.sqrt()
}

/// Pairwise slopes of one stint's points (the Theil–Sen ingredients).
fn pair_slopes(pts: &[(f64, f64)], slopes: &mut Vec<f64>) {
    for i in 0..pts.len() {
        for j in (i + 1)..pts.len() {
            let dx = pts[j].0 - pts[i].0;
            if dx.abs() > 1e-9 {
                slopes.push((pts[j].1 - pts[i].1) / dx);
            }
        }
    }
}

/// Theil–Sen line: (intercept, slope).
fn theil_sen(pts: &[(f64, f64)]) -> (f64, f64) {
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for i in 0..pts.len() {
        for j in (i + 1)..pts.len() {
            let dx = pts[j].0 - pts[i].0;
            if dx.abs() > 1e-9 {
                slopes.push((pts[j].1 - pts[i].1) / dx);
            }
        }
    }
    let slope = if slopes.is_empty() {
        0.0
    } else {
        median(&mut slopes)
    };
    let mut ints: Vec<f64> = pts.iter().map(|(x, y)| y - slope * x).collect();
    (median(&mut ints), slope)
}

fn by_car(laps: &[LapRecord]) -> BTreeMap<&str, Vec<&LapRecord>> {
    let mut m: BTreeMap<&str, Vec<&LapRecord>> = BTreeMap::new();
    for l in laps {
        if l.lap >= 1 && l.lap <= MAX_LAPS && l.lap_time_s.is_finite() && l.lap_time_s > 0.0 {
            m.entry(l.car_id.as_str()).or_default().push(l);
        }
    }
    for v in m.values_mut() {
        v.sort_by_key(|l| l.lap);
        v.dedup_by_key(|l| l.lap);
    }
    m
}

/// Green laps at which a car's own degradation slope counts as much as the field's median.
const DEG_SHRINK_LAPS: f64 = 15.0;

/// Marks full-course-yellow laps where the source did not flag them (telemetry has no flag):
/// a lap number whose median time over the field is more than `factor` times the race's median
/// lap is a neutralised lap for every car (a safety car slows the whole field; one car's
/// slow lap does not move the median). Returns how many lap numbers were marked.
pub fn infer_yellow_laps(laps: &mut [LapRecord], factor: f64) -> usize {
    let mut by_lap: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for l in laps.iter() {
        if l.lap >= 1 && l.lap_time_s.is_finite() && l.lap_time_s > 0.0 && !l.pit {
            by_lap.entry(l.lap).or_default().push(l.lap_time_s);
        }
    }
    let yellow = yellow_lap_numbers(&by_lap, factor);
    for l in laps.iter_mut() {
        if yellow.contains(&l.lap) {
            l.yellow = true;
        }
    }
    yellow.len()
}

/// The rule of [`infer_yellow_laps`] on green-flag lap times already grouped by lap number
/// (lap >= 1, no pit laps): the lap numbers whose median is more than `factor` times the
/// median of the lap medians. None with fewer than 3 lap numbers.
pub fn yellow_lap_numbers(times_by_lap: &BTreeMap<u32, Vec<f64>>, factor: f64) -> BTreeSet<u32> {
    let medians: Vec<(u32, f64)> = times_by_lap
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(lap, v)| (*lap, median(&mut v.clone())))
        .collect();
    if medians.len() < 3 {
        return BTreeSet::new();
    }
    let race_median = median(&mut medians.iter().map(|m| m.1).collect::<Vec<_>>());
    medians
        .into_iter()
        .filter(|m| m.1 > factor * race_median)
        .map(|m| m.0)
        .collect()
}

/// Fits pace, degradation per stint, noise, full-course yellows and stop cost from lap records.
/// Never fails: with too little data the fields are empty or NaN-free defaults (0 cars).
pub fn fit(laps: &[LapRecord]) -> FittedRace {
    let cars = by_car(laps);
    let laps_seen = laps
        .iter()
        .map(|l| l.lap)
        .filter(|&l| l <= MAX_LAPS)
        .max()
        .unwrap_or(0);
    // Full-course yellow laps: any car under yellow.
    let mut yellow = vec![false; laps_seen as usize + 2];
    for l in laps {
        if l.yellow {
            if let Some(y) = yellow.get_mut(l.lap as usize) {
                *y = true;
            }
        }
    }
    let (mut phases, mut fcy_laps, mut run) = (0u32, 0u32, 0u32);
    let mut lengths = Vec::new();
    for &y in yellow.iter().take(laps_seen as usize + 1).skip(1) {
        if y {
            fcy_laps += 1;
            run += 1;
        } else if run > 0 {
            phases += 1;
            lengths.push(run);
            run = 0;
        }
    }
    if run > 0 {
        phases += 1;
        lengths.push(run);
    }
    let is_yellow = |lap: u32| yellow.get(lap as usize).copied().unwrap_or(false);

    let mut fitted = Vec::new();
    let mut stop_costs = Vec::new();
    for (id, recs) in &cars {
        // Split into stints.
        let mut stints: Vec<Vec<&LapRecord>> = vec![Vec::new()];
        for r in recs {
            if let Some(s) = stints.last_mut() {
                s.push(r);
            }
            if r.pit {
                stints.push(Vec::new());
            }
        }
        let mut fs = Vec::new();
        let mut residuals = Vec::new();
        let mut stint_start = 0u32; // lap before the stint's first lap
        let mut lines: Vec<(u32, u32, f64, f64)> = Vec::new();
        let mut pooled_slopes = Vec::new();
        let mut all_pts: Vec<(f64, f64)> = Vec::new();
        for s in &stints {
            let Some(first) = s.first() else { continue };
            let last_lap = s.last().map_or(first.lap, |l| l.lap);
            let pts: Vec<(f64, f64)> = s
                .iter()
                .filter(|l| {
                    !l.pit
                        && !l.yellow
                        && !is_yellow(l.lap)
                        && l.lap > 1
                        && !is_yellow(l.lap - 1)
                        && l.lap != stint_start + 1
                })
                .map(|l| ((l.lap - stint_start - 1) as f64, l.lap_time_s))
                .collect();
            if pts.len() >= 4 {
                let (a, b) = theil_sen(&pts);
                pair_slopes(&pts, &mut pooled_slopes);
                all_pts.extend_from_slice(&pts);
                residuals.extend(pts.iter().map(|(x, y)| y - (a + b * x)));
                fs.push(FittedStint {
                    first_lap: first.lap,
                    last_lap,
                    intercept_s: a,
                    slope_s_per_lap: b,
                    laps_used: pts.len() as u32,
                });
                lines.push((stint_start, last_lap, a, b));
            }
            stint_start = last_lap;
        }
        // Stop cost: in-lap + out-lap over the lines of the stints around them (green only).
        for (k, r) in recs.iter().enumerate() {
            if !r.pit || is_yellow(r.lap) {
                continue;
            }
            let Some(out) = recs.get(k + 1) else { continue };
            if out.lap != r.lap + 1 || is_yellow(out.lap) {
                continue;
            }
            let before = lines.iter().find(|l| l.1 == r.lap);
            let after = lines.iter().find(|l| l.0 == r.lap);
            if let (Some(b), Some(a)) = (before, after) {
                let pred_in = b.2 + b.3 * (r.lap - b.0 - 1) as f64;
                let pred_out = a.2;
                stop_costs.push(r.lap_time_s + out.lap_time_s - pred_in - pred_out);
            }
        }
        if fs.is_empty() {
            continue;
        }
        // Car degradation: Theil–Sen over pairs within the same stint, pooled over stints; pace:
        // median of lap time minus that degradation over all the car's green laps.
        let deg = median(&mut pooled_slopes);
        let mut levels: Vec<f64> = all_pts.iter().map(|(x, y)| y - deg * x).collect();
        let noise = robust_sigma(&residuals);
        fitted.push(FittedCar {
            car_id: id.to_string(),
            pace_offset_s: median(&mut levels),
            deg_s_per_lap: deg,
            noise_sigma_s: noise,
            laps_used: fs.iter().map(|s| s.laps_used).sum(),
            stints: fs,
        });
    }
    let mut intercepts: Vec<f64> = fitted.iter().map(|c| c.pace_offset_s).collect();
    let base = if intercepts.is_empty() {
        0.0
    } else {
        median(&mut intercepts)
    };
    for c in &mut fitted {
        c.pace_offset_s -= base;
    }
    let green_laps = laps_seen.saturating_sub(fcy_laps).max(1);
    FittedRace {
        base_lap_time_s: base,
        cars: fitted,
        laps_seen,
        fcy_phases: phases,
        fcy_mean_length_laps: if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<u32>() as f64 / lengths.len() as f64
        },
        fcy_laps,
        fcy_phase_rate_per_lap: phases as f64 / green_laps as f64,
        pit_stop_cost_s: (!stop_costs.is_empty()).then(|| median(&mut stop_costs)),
    }
}

/// The race as it stood at the end of lap `at_lap`, built from lap records: a fit of laps
/// `1..=at_lap` gives the model's parameters (field base pace, pit loss) and every car's pace,
/// degradation and noise; positions, race times, tyre ages and stops come from the records.
/// `total_laps` is the race length. Cars with no lap by `at_lap` are left out; cars whose last
/// lap is before `at_lap` are retired.
///
/// Other model parts keep the defaults of `data/strategy/default.toml` (safety cars, failures,
/// overtaking); fuel sensitivity is set to 0 (the fitted slope is net of fuel); the pit-lane loss
/// is the fitted stop cost less the standstill and cold-tyre terms when a stop was seen. Cars that
/// had not stopped keep a default one-stop plan if any car stopped by `at_lap`, else they stay out.
pub fn race_at_lap(
    laps: &[LapRecord],
    at_lap: u32,
    total_laps: u32,
) -> Result<(RaceParams, RaceState, FittedRace)> {
    race_at_lap_with(laps, at_lap, total_laps, &RaceParams::default())
}

/// [`race_at_lap`] starting from `base` parameters (a calibration, e.g.
/// `data/strategy/gr-cup.toml`) instead of the defaults: the fit replaces the base lap time,
/// the degradation, and the pit-lane loss when a stop was seen; every other part (safety cars,
/// retirements, incidents, overtaking, noise floor) is the base's.
pub fn race_at_lap_with(
    laps: &[LapRecord],
    at_lap: u32,
    total_laps: u32,
    base: &RaceParams,
) -> Result<(RaceParams, RaceState, FittedRace)> {
    if at_lap == 0 {
        return Err(StrategyError::NotEnoughLaps(
            "the race must have run at least one lap (at_lap >= 1)".into(),
        ));
    }
    if at_lap >= total_laps {
        return Err(StrategyError::NotEnoughLaps(format!(
            "no laps left: lap {at_lap} of a {total_laps}-lap race"
        )));
    }
    let seen: Vec<LapRecord> = laps.iter().filter(|l| l.lap <= at_lap).cloned().collect();
    let mut fitted = fit(&seen);
    if fitted.cars.is_empty() {
        // Too early for stint lines (4 green laps): the field's median green lap is the base
        // pace, every car on it with the default degradation and noise.
        let mut green: Vec<f64> = seen
            .iter()
            .filter(|l| l.lap > 1 && !l.pit && !l.yellow && l.lap_time_s.is_finite())
            .map(|l| l.lap_time_s)
            .collect();
        if green.is_empty() {
            return Err(StrategyError::NotEnoughLaps(format!(
                "no green racing lap by lap {at_lap} to take the pace from"
            )));
        }
        fitted.base_lap_time_s = median(&mut green);
    }
    let mut params = base.clone();
    params.track.base_lap_time_s = fitted.base_lap_time_s;
    params.fuel.sensitivity_s_per_kg = 0.0;
    if let Some(cost) = fitted.pit_stop_cost_s {
        let lane = cost
            - params.pit.standstill_min_s
            - params.pit.fisk_mean_s()
            - params.tyres.outlap_cold_penalty_s;
        params.pit.lane_loss_green_s = lane.max(0.0);
        let ratio_sc = base.pit.lane_loss_sc_s / base.pit.lane_loss_green_s.max(1e-9);
        let ratio_vsc = base.pit.lane_loss_vsc_s / base.pit.lane_loss_green_s.max(1e-9);
        params.pit.lane_loss_sc_s = params.pit.lane_loss_green_s * ratio_sc;
        params.pit.lane_loss_vsc_s = params.pit.lane_loss_green_s * ratio_vsc;
    }
    if !fitted.cars.is_empty() {
        // Fitted cars carry their own degradation; the compound's default would count twice.
        params.tyres.medium = TyreModel {
            k0_s: 0.0,
            k1_s_per_lap: 0.0,
            k2_s_per_lap2: 0.0,
        };
    }
    params.pit.stop_compounds = vec![Compound::Medium];

    let per_car = by_car(laps);
    let any_stop = seen.iter().any(|l| l.pit);
    let field_deg = {
        let mut d: Vec<f64> = fitted.cars.iter().map(|c| c.deg_s_per_lap).collect();
        if d.is_empty() {
            0.0
        } else {
            median(&mut d)
        }
    };
    // State at at_lap and truth at the flag.
    let mut cars = Vec::new();
    for (id, recs) in &per_car {
        let upto: Vec<&&LapRecord> = recs.iter().filter(|l| l.lap <= at_lap).collect();
        let Some(now) = upto.last() else { continue };
        let fc = fitted.cars.iter().find(|c| c.car_id == *id);
        let race_time = now
            .race_time_s
            .unwrap_or_else(|| upto.iter().map(|l| l.lap_time_s).sum());
        let last_pit = upto.iter().rev().find(|l| l.pit).map(|l| l.lap);
        let stops = upto.iter().filter(|l| l.pit).count() as u32;
        let mut c = CarState::new(id.to_string(), now.position.unwrap_or(0), Compound::Medium);
        c.race_time_s = race_time;
        c.laps_done = now.lap;
        c.retired = now.lap < at_lap;
        c.tyre_age_laps = (at_lap - last_pit.unwrap_or(0)) as f64;
        c.stops_done = stops;
        if let Some(fc) = fc {
            c.pace_offset_s = fc.pace_offset_s;
            c.noise_sigma_s =
                Some((fc.noise_sigma_s * base.driver.noise_scale).max(base.driver.noise_floor_s));
            c.tyres.insert(
                Compound::Medium,
                TyreModel {
                    k0_s: 0.0,
                    // A few noisy laps make a poor slope: shrink each car's degradation
                    // towards the field's median, weighted by the green laps behind it.
                    k1_s_per_lap: field_deg
                        + (fc.deg_s_per_lap - field_deg) * f64::from(fc.laps_used)
                            / (f64::from(fc.laps_used) + DEG_SHRINK_LAPS),
                    k2_s_per_lap2: 0.0,
                },
            );
        }
        if !any_stop || !params.pit.stops_expected {
            c.plan = Some(Strategy::stay_out());
        }
        cars.push(c);
    }
    // Positions at at_lap: given, else by race time.
    if cars.iter().any(|c| c.position == 0) {
        let mut idx: Vec<usize> = (0..cars.len()).collect();
        // Running cars by race time; retired ones behind them, by laps done, then race time.
        idx.sort_by(|&a, &b| {
            let (ca, cb) = (&cars[a], &cars[b]);
            ca.retired
                .cmp(&cb.retired)
                .then(cb.laps_done.cmp(&ca.laps_done))
                .then(ca.race_time_s.total_cmp(&cb.race_time_s))
        });
        for (k, &i) in idx.iter().enumerate() {
            cars[i].position = k as u32 + 1;
        }
    }
    let yellow_now = seen.iter().any(|l| l.lap == at_lap && l.yellow);
    let state = RaceState {
        current_lap: at_lap,
        total_laps,
        cars,
        safety_car_active: yellow_now,
        vsc_active: false,
        neutralised_laps_remaining: 1,
    };
    if state.cars.is_empty() {
        return Err(StrategyError::NotEnoughLaps(format!(
            "no car has a lap by lap {at_lap}"
        )));
    }
    Ok((params, state, fitted))
}

/// Where the real finishing order of a back-test came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruthSource {
    /// The official results file's `POSITION`.
    OfficialResults,
    /// A provisional results file's `POSITION` (no official one was given).
    ProvisionalResults,
    /// The timing: laps completed (descending), then race time at the last lap.
    Timing,
}

/// One car of a real classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classified {
    /// Car id, as in the lap records.
    pub car_id: String,
    /// Classified position (1 = winner).
    pub position: u32,
}

/// The classification the timing gives: laps completed (descending), then race time at the
/// car's last lap (`race_time_s`, else the sum of its lap times), then car id.
pub fn timing_classification(laps: &[LapRecord]) -> Vec<Classified> {
    let mut rows: Vec<(String, u32, f64)> = by_car(laps)
        .into_iter()
        .filter_map(|(id, recs)| {
            let last = recs.last()?;
            let t = last
                .race_time_s
                .filter(|t| t.is_finite())
                .unwrap_or_else(|| recs.iter().map(|l| l.lap_time_s).sum());
            Some((id.to_string(), last.lap, t))
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.total_cmp(&b.2)).then(a.0.cmp(&b.0)));
    rows.into_iter()
        .enumerate()
        .map(|(k, r)| Classified {
            car_id: r.0,
            position: k as u32 + 1,
        })
        .collect()
}

/// Settings of [`backtest_with`].
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Simulated races.
    pub iterations: u32,
    /// Seed (the same seed gives the same answer).
    pub seed: u64,
    /// Race length [default: the last lap in the records].
    pub total_laps: Option<u32>,
    /// The real classification and where it came from [default: the timing's].
    pub classification: Option<(Vec<Classified>, TruthSource)>,
    /// Parameters the fit starts from (a calibration) [default: `data/strategy/default.toml`].
    pub params: RaceParams,
}

impl Default for BacktestOptions {
    fn default() -> Self {
        BacktestOptions {
            iterations: 4000,
            seed: 0,
            total_laps: None,
            classification: None,
            params: RaceParams::default(),
        }
    }
}

/// Prediction and truth for one car in a backtest. Positions are ranks among the cars the
/// back-test scores (cars with a lap by the cut-off and a place in the classification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestCar {
    /// Car id.
    pub car_id: String,
    /// Position at the backtest lap (the "positions hold" baseline's prediction).
    pub position_at_lap: u32,
    /// Rank by mean green-flag lap time so far (the "order by pace" baseline's prediction).
    pub pace_position: u32,
    /// Real final position.
    pub actual_position: u32,
    /// Predicted mean final position.
    pub expected_position: f64,
    /// Predicted median final position.
    pub median_position: u32,
    /// Predicted 10th-90th percentile of the final position.
    pub interval80: (u32, u32),
    /// Predicted P(position k+1) at index k.
    pub distribution: Vec<f64>,
}

/// Result of [`backtest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// Laps used for fitting (1..=at_lap).
    pub at_lap: u32,
    /// Race length.
    pub total_laps: u32,
    /// Where the real result came from.
    pub truth: TruthSource,
    /// Per car.
    pub cars: Vec<BacktestCar>,
    /// Cars with laps by the cut-off that the classification does not list (left out).
    pub unclassified: Vec<String>,
    /// Mean absolute error of the expected final position.
    pub mae_positions: f64,
    /// Mean absolute error of the median final position.
    pub median_mae_positions: f64,
    /// Share of cars whose real final position lies in their 80 % interval.
    pub coverage80: f64,
    /// MAE of the baseline "positions at lap N hold".
    pub baseline_mae_positions: f64,
    /// MAE of the baseline "order by mean green-flag lap time so far".
    pub pace_baseline_mae_positions: f64,
    /// Simulated races.
    pub iterations: u32,
    /// The fit the prediction used.
    pub fitted: FittedRace,
}

/// Fits on laps `1..=at_lap`, simulates the rest of the race `iterations` times and compares the
/// predicted final positions with the real ones (the timing's classification).
pub fn backtest(laps: &[LapRecord], at_lap: u32, iterations: u32, seed: u64) -> Result<Backtest> {
    backtest_with(
        laps,
        at_lap,
        &BacktestOptions {
            iterations,
            seed,
            ..BacktestOptions::default()
        },
    )
}

/// Mean green-flag lap time of each car over laps `2..=at_lap`: no lap 1, no pit in- or out-lap,
/// no yellow lap or the lap after one.
fn green_pace_so_far(laps: &[LapRecord], at_lap: u32) -> BTreeMap<String, f64> {
    let mut yellow = BTreeSet::new();
    for l in laps.iter().filter(|l| l.yellow && l.lap <= at_lap) {
        yellow.insert(l.lap);
    }
    let mut out = BTreeMap::new();
    for (id, recs) in by_car(laps) {
        let mut prev_pit = false;
        let mut sum = 0.0;
        let mut n = 0u32;
        for r in recs.iter().filter(|l| l.lap <= at_lap) {
            let green = r.lap > 1
                && !r.pit
                && !prev_pit
                && !yellow.contains(&r.lap)
                && !yellow.contains(&(r.lap - 1));
            if green {
                sum += r.lap_time_s;
                n += 1;
            }
            prev_pit = r.pit;
        }
        if n > 0 {
            out.insert(id.to_string(), sum / f64::from(n));
        }
    }
    out
}

/// [`backtest`] with a given race length, classification and base parameters.
pub fn backtest_with(laps: &[LapRecord], at_lap: u32, opts: &BacktestOptions) -> Result<Backtest> {
    let iterations = opts.iterations;
    if iterations == 0 {
        return Err(StrategyError::ZeroIterations);
    }
    if iterations > MAX_ITERATIONS {
        return Err(crate::error::invalid(
            "iterations",
            format!("at most {MAX_ITERATIONS}"),
        ));
    }
    let last_lap = laps
        .iter()
        .map(|l| l.lap)
        .filter(|&l| l <= MAX_LAPS)
        .max()
        .unwrap_or(0);
    let total_laps = opts.total_laps.unwrap_or(last_lap).min(MAX_LAPS);
    if at_lap == 0 || at_lap >= total_laps {
        return Err(StrategyError::NotEnoughLaps(format!(
            "at_lap {at_lap} must be in 1..{total_laps}"
        )));
    }
    let (params, state, fitted) = race_at_lap_with(laps, at_lap, total_laps, &opts.params)?;
    let (classification, truth) = match &opts.classification {
        Some((c, src)) if !c.is_empty() => (c.clone(), *src),
        _ => (timing_classification(laps), TruthSource::Timing),
    };
    let real: BTreeMap<&str, u32> = classification
        .iter()
        .map(|c| (c.car_id.as_str(), c.position))
        .collect();
    // Scored cars: in the simulation and in the classification; ranks are among them.
    let scored: Vec<usize> = (0..state.cars.len())
        .filter(|&i| real.contains_key(state.cars[i].car_id.as_str()))
        .collect();
    let unclassified: Vec<String> = state
        .cars
        .iter()
        .filter(|c| !real.contains_key(c.car_id.as_str()))
        .map(|c| c.car_id.clone())
        .collect();
    if scored.is_empty() {
        return Err(StrategyError::NotEnoughLaps(
            "no car of the classification has a lap by the cut-off".into(),
        ));
    }
    let m = scored.len();
    let rank_by = |key: &dyn Fn(usize) -> (u32, f64, String)| -> Vec<u32> {
        let mut idx: Vec<usize> = (0..m).collect();
        idx.sort_by(|&a, &b| {
            let (ka, kb) = (key(scored[a]), key(scored[b]));
            ka.0.cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
        });
        let mut r = vec![0u32; m];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as u32 + 1;
        }
        r
    };
    let actual = rank_by(&|i| {
        let c = &state.cars[i];
        (
            real.get(c.car_id.as_str()).copied().unwrap_or(u32::MAX),
            0.0,
            c.car_id.clone(),
        )
    });
    let hold = rank_by(&|i| {
        let c = &state.cars[i];
        (c.position, c.race_time_s, c.car_id.clone())
    });
    let pace = green_pace_so_far(laps, at_lap);
    let by_pace = rank_by(&|i| {
        let c = &state.cars[i];
        // Running cars first, then retired ones by laps done; within, by pace.
        let group = if c.retired {
            1 + MAX_LAPS - c.laps_done.min(MAX_LAPS)
        } else {
            0
        };
        (
            group,
            pace.get(&c.car_id).copied().unwrap_or(f64::INFINITY),
            c.car_id.clone(),
        )
    });

    let race = Race::new(&params, &state)?;
    let n = race.n;
    let mut slot = vec![usize::MAX; n];
    for (k, &i) in scored.iter().enumerate() {
        slot[i] = k;
    }
    let chunks: Vec<u32> = (0..iterations.div_ceil(CHUNK_ITERATIONS)).collect();
    let counts: Vec<Vec<u64>> = chunks
        .par_iter()
        .map(|&k| {
            let mut ws = race.workspace();
            let mut pos = vec![0u16; n];
            let mut order: Vec<(u16, usize)> = Vec::with_capacity(m);
            let mut cnt = vec![0u64; m * m];
            let from = k * CHUNK_ITERATIONS;
            let to = (from + CHUNK_ITERATIONS).min(iterations);
            for it in from..to {
                race.simulate(&mut ws, opts.seed, it as u64, None, None, &mut NoRecord);
                Race::positions(&ws, &mut pos);
                order.clear();
                order.extend(scored.iter().map(|&i| (pos[i], slot[i])));
                order.sort_unstable();
                for (r, &(_, s)) in order.iter().enumerate() {
                    if let Some(x) = cnt.get_mut(s * m + r) {
                        *x += 1;
                    }
                }
            }
            cnt
        })
        .collect();
    let mut total = vec![0u64; m * m];
    for c in counts {
        for (t, x) in total.iter_mut().zip(c) {
            *t += x;
        }
    }
    let mut out = Vec::with_capacity(m);
    for (k, &i) in scored.iter().enumerate() {
        let c = &state.cars[i];
        let row = total.get(k * m..(k + 1) * m).unwrap_or(&[]);
        let sum: u64 = row.iter().sum::<u64>().max(1);
        let dist: Vec<f64> = row.iter().map(|&x| x as f64 / sum as f64).collect();
        let mean: f64 = dist
            .iter()
            .enumerate()
            .map(|(k, p)| (k + 1) as f64 * p)
            .sum();
        let q = |qq: f64| {
            let mut acc = 0.0;
            for (k, p) in dist.iter().enumerate() {
                acc += p;
                if acc >= qq - 1e-12 {
                    return k as u32 + 1;
                }
            }
            m as u32
        };
        out.push(BacktestCar {
            car_id: c.car_id.clone(),
            position_at_lap: hold[k],
            pace_position: by_pace[k],
            actual_position: actual[k],
            expected_position: mean,
            median_position: q(0.5),
            interval80: (q(0.10), q(0.90)),
            distribution: dist,
        });
    }
    let mean_abs = |f: &dyn Fn(&BacktestCar) -> f64| {
        out.iter()
            .map(|c| (f(c) - f64::from(c.actual_position)).abs())
            .sum::<f64>()
            / m as f64
    };
    let mae = mean_abs(&|c| c.expected_position);
    let median_mae = mean_abs(&|c| f64::from(c.median_position));
    let base = mean_abs(&|c| f64::from(c.position_at_lap));
    let pace_mae = mean_abs(&|c| f64::from(c.pace_position));
    let cov = out
        .iter()
        .filter(|c| (c.interval80.0..=c.interval80.1).contains(&c.actual_position))
        .count() as f64
        / m as f64;
    Ok(Backtest {
        at_lap,
        total_laps,
        truth,
        cars: out,
        unclassified,
        mae_positions: mae,
        median_mae_positions: median_mae,
        coverage80: cov,
        baseline_mae_positions: base,
        pace_baseline_mae_positions: pace_mae,
        iterations,
        fitted,
    })
}
