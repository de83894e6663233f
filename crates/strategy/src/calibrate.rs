//! Calibrating the race model on real races: what a season's lap records say about full-course
//! yellows, retirements, incidents and noise ([`calibrate`]), and how hard passing is and how
//! wide the lap-to-lap spread really is, chosen by back-testing the calibration races
//! themselves on a proper score ([`tune_by_backtest`]).
//!
//! Everything here is measured, never assumed:
//! - **Full-course yellows**: phases are runs of flagged (or inferred) laps per race; the count
//!   per race is a Poisson law with the pooled mean (truncated at 4 phases), the lap-1 share and
//!   the length table are pooled counts (add-half smoothed), the lap-time factor is the median
//!   yellow lap over the median green lap, and the bunching (the gap a yellow leaves between two
//!   cars and the share of the excess it removes per lap) comes from consecutive cars' gaps before
//!   and after each phase.
//! - **Retirements**: cars whose last lap is more than one lap short of the race's last lap, per
//!   car and race.
//! - **Incidents**: a green lap (not lap 1, not after a yellow, not a lap the whole field ran
//!   more than 1 s slow) more than `max(4 sigma, 2 s)` slower than the car's own median green
//!   lap, or a stop (in-lap + out-lap over two median laps): the rate per car and green lap and
//!   the mean loss (each loss capped at two laps: a car that loses more is last either way).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::LapRecord;
use crate::fit::{backtest_with, median, BacktestOptions, Classified, TruthSource};
use crate::params::RaceParams;

/// A lap on which the field's median car ran this much over its own median green lap was not
/// a green lap (a local yellow, a slow zone): no incident is counted on it.
const SLOW_FIELD_LAP_S: f64 = 1.0;

/// The smallest loss counted as an incident.
const INCIDENT_MIN_LOSS_S: f64 = 2.0;

/// One car's green laps `(lap, time)`, its median green lap and its robust sigma.
type CarGreen = (Vec<(u32, f64)>, f64, f64);

/// One race to calibrate on.
#[derive(Debug, Clone)]
pub struct CalibrationRace {
    /// A name for reports.
    pub name: String,
    /// Its lap records (yellow laps flagged or inferred).
    pub laps: Vec<LapRecord>,
    /// Its real classification, if known.
    pub classification: Option<(Vec<Classified>, TruthSource)>,
}

/// What the races say (see the module doc for each rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Races used.
    pub races: usize,
    /// Car starts.
    pub cars: usize,
    /// Green car-laps.
    pub green_car_laps: usize,
    /// Yellow phases seen.
    pub fcy_phases: usize,
    /// Mean phases per race.
    pub fcy_phases_per_race: f64,
    /// P(0, 1, 2, 3, 4 phases) in a race.
    pub fcy_count_probabilities: Vec<f64>,
    /// Share of phases that start on lap 1.
    pub fcy_first_lap_share: f64,
    /// P(length 1..=10 laps).
    pub fcy_length_probabilities: Vec<f64>,
    /// Median yellow lap over median green lap.
    pub fcy_lap_time_factor: f64,
    /// Median gap between consecutive cars after a yellow, seconds.
    pub fcy_gap_s: f64,
    /// Share of the excess gap a yellow lap removes.
    pub fcy_bunch_fraction_per_lap: f64,
    /// Retirements seen.
    pub retirements: usize,
    /// Per car and race.
    pub failure_probability: f64,
    /// Incidents seen.
    pub incidents: usize,
    /// Per car and green lap.
    pub incident_probability_per_lap: f64,
    /// Mean time lost in one.
    pub incident_loss_mean_s: f64,
    /// Median of the cars' robust lap-time sigma on green laps.
    pub noise_sigma_median_s: f64,
    /// Stops seen (in races where they are not expected, they count as incidents).
    pub stops: usize,
    /// Whether the races look like they have a required stop (most cars stopped).
    pub stops_expected: bool,
}

fn mad_sigma(v: &[f64]) -> f64 {
    if v.len() < 3 {
        return f64::NAN;
    }
    let mut c = v.to_vec();
    let med = median(&mut c);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    1.4826 * median(&mut dev)
}

fn poisson(mean: f64, max: usize) -> Vec<f64> {
    let mut p = Vec::with_capacity(max + 1);
    let mut term = (-mean).exp();
    for k in 0..=max {
        if k > 0 {
            term *= mean / k as f64;
        }
        p.push(term);
    }
    let sum: f64 = p.iter().sum();
    p.iter().map(|x| x / sum).collect()
}

/// Measures the model's race-level parameters from real races.
pub fn calibrate(races: &[CalibrationRace]) -> Calibration {
    let mut phase_lengths: Vec<u32> = Vec::new();
    let mut first_lap_phases = 0usize;
    let mut phases_total = 0usize;
    let mut yellow_ratio = Vec::new();
    let mut gaps_after = Vec::new();
    let mut bunch = Vec::new();
    let (mut cars, mut retirements, mut green_laps, mut incidents, mut stops) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut incident_losses = Vec::new();
    let mut sigmas = Vec::new();
    let mut cars_stopped = 0usize;
    for race in races {
        let laps = &race.laps;
        let last_lap = laps.iter().map(|l| l.lap).max().unwrap_or(0);
        let yellow: BTreeSet<u32> = laps.iter().filter(|l| l.yellow).map(|l| l.lap).collect();
        // Phases.
        let mut run: Option<(u32, u32)> = None;
        let mut race_phases = Vec::new();
        for lap in 1..=last_lap {
            if yellow.contains(&lap) {
                run = Some(match run {
                    Some((s, _)) => (s, lap),
                    None => (lap, lap),
                });
            } else if let Some(r) = run.take() {
                race_phases.push(r);
            }
        }
        if let Some(r) = run {
            race_phases.push(r);
        }
        phases_total += race_phases.len();
        for &(s, e) in &race_phases {
            phase_lengths.push(e - s + 1);
            if s == 1 {
                first_lap_phases += 1;
            }
        }
        // Per car.
        let mut by_car: BTreeMap<&str, Vec<&LapRecord>> = BTreeMap::new();
        for l in laps {
            if l.lap >= 1 && l.lap_time_s.is_finite() && l.lap_time_s > 0.0 {
                by_car.entry(l.car_id.as_str()).or_default().push(l);
            }
        }
        let mut green_all = Vec::new();
        let mut yellow_all = Vec::new();
        // Each car's green laps (lap, time) and its median; then each lap's median excess over
        // the cars' medians: a lap the whole field ran slow (a local yellow, a slow zone, the
        // restart) is not a green lap for anyone.
        let mut per_car: Vec<CarGreen> = Vec::new();
        for recs in by_car.values_mut() {
            recs.sort_by_key(|l| l.lap);
            recs.dedup_by_key(|l| l.lap);
            cars += 1;
            let car_last = recs.last().map_or(0, |l| l.lap);
            if car_last + 1 < last_lap {
                retirements += 1;
            }
            if recs.iter().any(|l| l.pit) {
                cars_stopped += 1;
            }
            let is_green = |k: usize| {
                let l = recs[k];
                let prev_pit = k > 0 && recs[k - 1].pit;
                l.lap > 1
                    && !l.pit
                    && !prev_pit
                    && !yellow.contains(&l.lap)
                    && !yellow.contains(&(l.lap - 1))
            };
            let green: Vec<(u32, f64)> = (0..recs.len())
                .filter(|&k| is_green(k))
                .map(|k| (recs[k].lap, recs[k].lap_time_s))
                .collect();
            yellow_all.extend(
                recs.iter()
                    .filter(|l| yellow.contains(&l.lap) && l.lap > 1 && !l.pit)
                    .map(|l| l.lap_time_s),
            );
            if green.len() < 4 {
                continue;
            }
            let times: Vec<f64> = green.iter().map(|g| g.1).collect();
            let mut g = times.clone();
            let med = median(&mut g);
            green_all.push(med);
            let sigma = mad_sigma(&times);
            // Stops: in-lap + out-lap over two median laps, at most two laps' worth (a car
            // that loses more is last either way).
            for (k, l) in recs.iter().enumerate() {
                if !l.pit {
                    continue;
                }
                stops += 1;
                if yellow.contains(&l.lap) {
                    continue;
                }
                let out = recs
                    .get(k + 1)
                    .filter(|o| o.lap == l.lap + 1 && !yellow.contains(&o.lap));
                let loss = l.lap_time_s + out.map_or(med, |o| o.lap_time_s) - 2.0 * med;
                if loss > 0.0 {
                    incident_losses.push(loss.min(2.0 * med));
                    incidents += 1;
                }
            }
            per_car.push((green, med, sigma));
        }
        let mut lap_excess: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for (green, med, _) in &per_car {
            for &(lap, t) in green {
                lap_excess.entry(lap).or_default().push(t - med);
            }
        }
        let slow_laps: BTreeSet<u32> = lap_excess
            .iter_mut()
            .filter(|(_, v)| v.len() >= 3)
            .filter_map(|(lap, v)| (median(v) > SLOW_FIELD_LAP_S).then_some(*lap))
            .collect();
        for (green, med, sigma) in &per_car {
            let kept: Vec<f64> = green
                .iter()
                .filter(|g| !slow_laps.contains(&g.0))
                .map(|g| g.1)
                .collect();
            if sigma.is_finite() {
                sigmas.push(*sigma);
            }
            let limit = (4.0 * sigma).max(INCIDENT_MIN_LOSS_S);
            green_laps += kept.len();
            for t in &kept {
                if t - med > limit {
                    incidents += 1;
                    incident_losses.push((t - med).min(2.0 * med));
                }
            }
        }
        let mut ga = green_all.clone();
        let mut ya = yellow_all.clone();
        if !ga.is_empty() && !ya.is_empty() {
            yellow_ratio.push(median(&mut ya) / median(&mut ga));
        }
        // Bunching: consecutive cars' gaps (race time) before and after each phase.
        let at = |lap: u32| -> Vec<f64> {
            let mut t: Vec<f64> = laps
                .iter()
                .filter(|l| l.lap == lap)
                .filter_map(|l| l.race_time_s)
                .filter(|t| t.is_finite())
                .collect();
            t.sort_by(|a, b| a.total_cmp(b));
            t
        };
        for &(s, e) in &race_phases {
            if s < 2 || e >= last_lap {
                continue;
            }
            let before = at(s - 1);
            let after = at(e);
            let n = before.len().min(after.len());
            if n < 4 {
                continue;
            }
            // The front half of the field (back markers may be lapped or retiring).
            let k = (n / 2).max(3);
            let gb: Vec<f64> = before.windows(2).take(k).map(|w| w[1] - w[0]).collect();
            let gafter: Vec<f64> = after.windows(2).take(k).map(|w| w[1] - w[0]).collect();
            let mut ga2 = gafter.clone();
            let g_after = median(&mut ga2);
            gaps_after.push(g_after);
            let len = f64::from(e - s + 1);
            let (sb, sa): (f64, f64) = (gb.iter().sum(), gafter.iter().sum());
            let floor = g_after * gafter.len() as f64;
            if sb > floor + 1e-6 && sa >= floor {
                let keep = ((sa - floor) / (sb - floor)).clamp(0.0, 1.0);
                bunch.push(1.0 - keep.powf(1.0 / len));
            }
        }
    }
    let n_races = races.len().max(1) as f64;
    let mean_phases = phases_total as f64 / n_races;
    let mut len_counts = [0.5f64; 10];
    for &l in &phase_lengths {
        let k = (l.clamp(1, 10) - 1) as usize;
        len_counts[k] += 1.0;
    }
    // Lengths beyond the longest seen + 2 laps are not invented.
    let longest = phase_lengths.iter().copied().max().unwrap_or(3) as usize;
    for (k, c) in len_counts.iter_mut().enumerate() {
        if k + 1 > longest + 2 {
            *c = 0.0;
        }
    }
    let sum: f64 = len_counts.iter().sum();
    let length_probabilities: Vec<f64> = len_counts.iter().map(|c| c / sum).collect();
    Calibration {
        races: races.len(),
        cars,
        green_car_laps: green_laps,
        fcy_phases: phases_total,
        fcy_phases_per_race: mean_phases,
        fcy_count_probabilities: poisson(mean_phases, 4),
        fcy_first_lap_share: if phases_total == 0 {
            0.0
        } else {
            first_lap_phases as f64 / phases_total as f64
        },
        fcy_length_probabilities: length_probabilities,
        fcy_lap_time_factor: {
            let f = median(&mut yellow_ratio);
            if f.is_finite() {
                f.max(1.0)
            } else {
                1.4
            }
        },
        fcy_gap_s: {
            let g = median(&mut gaps_after);
            if g.is_finite() {
                g.max(0.1)
            } else {
                1.0
            }
        },
        fcy_bunch_fraction_per_lap: {
            let b = median(&mut bunch);
            if b.is_finite() {
                b
            } else {
                0.5
            }
        },
        retirements,
        failure_probability: if cars == 0 {
            0.0
        } else {
            retirements as f64 / cars as f64
        },
        incidents,
        incident_probability_per_lap: if green_laps == 0 {
            0.0
        } else {
            incidents as f64 / green_laps as f64
        },
        incident_loss_mean_s: if incident_losses.is_empty() {
            0.0
        } else {
            incident_losses.iter().sum::<f64>() / incident_losses.len() as f64
        },
        noise_sigma_median_s: median(&mut sigmas),
        stops,
        stops_expected: cars > 0 && cars_stopped * 2 > cars,
    }
}

impl Calibration {
    /// These findings written over `base`.
    pub fn apply(&self, base: &RaceParams) -> RaceParams {
        let mut p = base.clone();
        let sc = &mut p.safety_car;
        sc.count_probabilities = self.fcy_count_probabilities.clone();
        sc.first_lap_probability = self.fcy_first_lap_share;
        sc.length_probabilities = self.fcy_length_probabilities.clone();
        sc.sc_lap_time_factor = self.fcy_lap_time_factor;
        sc.vsc_share = 0.0;
        sc.sc_gap_s = self.fcy_gap_s;
        sc.bunch_fraction_per_lap = self.fcy_bunch_fraction_per_lap.clamp(0.0, 1.0);
        p.driver.failure_probability = self.failure_probability.clamp(0.0, 1.0);
        p.driver.incident_probability_per_lap = self.incident_probability_per_lap.clamp(0.0, 1.0);
        p.driver.incident_loss_mean_s = self.incident_loss_mean_s;
        if self.noise_sigma_median_s.is_finite() {
            p.driver.noise_sigma_s = self.noise_sigma_median_s;
        }
        p.pit.stops_expected = self.stops_expected;
        p
    }
}

/// One point of the tuning grid with its pooled back-test figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningPoint {
    /// `overtaking.threshold_s`.
    pub overtaking_threshold_s: f64,
    /// `driver.noise_scale`.
    pub noise_scale: f64,
    /// Mean ranked probability score of the real position (lower is better).
    pub rps: f64,
    /// Pooled MAE of the expected position.
    pub mae_positions: f64,
    /// Pooled 80 % coverage.
    pub coverage80: f64,
    /// Cars scored.
    pub cars: usize,
}

/// Chooses the overtaking threshold and the noise scale that give the best ranked probability
/// score (a proper score: it rewards sharp and honest distributions alike) when the calibration
/// races are back-tested at `cuts` (fractions of each race). Returns the grid, best first.
pub fn tune_by_backtest(
    races: &[CalibrationRace],
    base: &RaceParams,
    thresholds_s: &[f64],
    noise_scales: &[f64],
    cuts: &[f64],
    iterations: u32,
    seed: u64,
) -> Vec<TuningPoint> {
    let mut out = Vec::new();
    for &th in thresholds_s {
        for &ns in noise_scales {
            let mut p = base.clone();
            p.overtaking.threshold_s = th;
            p.driver.noise_scale = ns;
            let (mut rps, mut mae, mut cov, mut n) = (0.0, 0.0, 0.0, 0usize);
            for race in races {
                let total = race.laps.iter().map(|l| l.lap).max().unwrap_or(0);
                let opts = BacktestOptions {
                    iterations,
                    seed,
                    total_laps: Some(total),
                    classification: race.classification.clone(),
                    params: p.clone(),
                };
                for &f in cuts {
                    let at = ((f * f64::from(total)).round() as u32)
                        .clamp(1, total.saturating_sub(1).max(1));
                    let Ok(b) = backtest_with(&race.laps, at, &opts) else {
                        continue;
                    };
                    for c in &b.cars {
                        let mut cdf = 0.0;
                        let mut s = 0.0;
                        for (k, q) in c.distribution.iter().enumerate() {
                            cdf += q;
                            let o = if (k as u32 + 1) >= c.actual_position {
                                1.0
                            } else {
                                0.0
                            };
                            s += (cdf - o) * (cdf - o);
                        }
                        rps += s;
                        mae += (c.expected_position - f64::from(c.actual_position)).abs();
                        if (c.interval80.0..=c.interval80.1).contains(&c.actual_position) {
                            cov += 1.0;
                        }
                        n += 1;
                    }
                }
            }
            let w = n.max(1) as f64;
            out.push(TuningPoint {
                overtaking_threshold_s: th,
                noise_scale: ns,
                rps: rps / w,
                mae_positions: mae / w,
                coverage80: cov / w,
                cars: n,
            });
        }
    }
    out.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    out
}
