//! Monte Carlo evaluation of pit plans with common random numbers, in parallel.
//!
//! Every plan is run on the same iterations `0..N`; iteration `i` draws from the stream keyed by
//! `(seed, i)` (see [`crate::rng::stream_key`]), so two plans see the same safety cars, failures,
//! starts and lap noise, and their difference in finishing position is measured paired
//! (common random numbers). Work is split into fixed chunks of [`CHUNK_ITERATIONS`] iterations
//! per plan, run with rayon and gathered in chunk order; as each iteration's stream depends only
//! on `(seed, iteration)`, results are bit-identical whatever the number of threads.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StrategyError};
use crate::plan::{PitStop, Strategy};
use crate::sim::Race;

/// Most iterations per plan accepted (memory: 10 bytes per iteration and plan).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Most plans evaluated in one call.
pub const MAX_PLANS: usize = 20_000;

/// Iterations per parallel work item.
pub const CHUNK_ITERATIONS: u32 = 256;

/// Result of one plan for the car asked about.
///
/// Position convention: 1 = win; larger is worse. `p5_position` is the value at risk: the
/// 5 % bad tail, i.e. the 95th percentile of the finishing position (the car finishes at this
/// position or better in at least 95 % of races).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyOutcome {
    /// The plan.
    pub strategy: Strategy,
    /// Human-readable plan ("box L14 hard").
    pub label: String,
    /// Iterations behind these numbers.
    pub iterations: u32,
    /// P(finish in position k+1) at index k; length = number of cars.
    pub finish_position_distribution: Vec<f64>,
    /// Mean finishing position.
    pub expected_position: f64,
    /// Standard error of `expected_position`.
    pub expected_position_se: f64,
    /// P(win).
    pub win_probability: f64,
    /// Variance of the finishing position.
    pub position_variance: f64,
    /// 2.5th and 97.5th percentiles of the finishing position.
    pub interval95: (u32, u32),
    /// Value at risk: 95th percentile of the finishing position (the bad 5 % tail starts here).
    pub p5_position: u32,
    /// Mean race time at the flag over races the car finished (`None` if it never did). Race time
    /// is on the scale of the state's `race_time_s`.
    pub expected_race_time_s: Option<f64>,
    /// Expected position minus that of the best plan (paired, same iterations).
    pub diff_vs_best: f64,
    /// Standard error of `diff_vs_best` (common random numbers make it small).
    pub se_diff_vs_best: f64,
    /// Rank (1 = best expected position, ties broken by expected race time).
    pub rank: u32,
}

/// Fixed-size Monte Carlo settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McOptions {
    /// Iterations per plan.
    pub iterations: u32,
    /// Seed of all streams.
    pub seed: u64,
}

/// Adaptive refinement: screen every plan with few iterations, then keep doubling the iterations
/// of the plans that may still be in the window until the SE of their difference to the best is
/// at most `target_se_diff` (or `max_iterations` is reached).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adaptive {
    /// Iterations of the screening round (every plan).
    pub screen_iterations: u32,
    /// Stop refining when every surviving plan's SE of the difference is at most this.
    pub target_se_diff: f64,
    /// Iteration cap per plan.
    pub max_iterations: u32,
    /// A plan is dropped when `diff - z * se_diff > window tolerance`.
    pub drop_z: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            screen_iterations: 512,
            target_se_diff: 0.05,
            max_iterations: 16_384,
            drop_z: 3.0,
        }
    }
}

/// Races simulated by this process so far (all calls, all threads): a monotonic counter for
/// progress bars and metrics. Read it with [`races_simulated`].
static RACES_SIMULATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Races simulated by this process so far (plans × iterations, counted as chunks finish).
pub fn races_simulated() -> u64 {
    RACES_SIMULATED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Adds `n` races to the process-wide counter.
pub(crate) fn count_races(n: u64) {
    RACES_SIMULATED.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// Raw paired samples of one plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    pub(crate) positions: Vec<u16>,
    pub(crate) race_times_s: Vec<f64>,
}

/// Runs iterations `from..to` of each `(plan index, from, to)` job; returns the samples in order.
/// Jobs with the same range are run together so they share the race prefix before each plan's
/// first stop ([`Race::simulate_plans`]).
pub(crate) fn run_jobs(
    race: &Race,
    target: usize,
    plans: &[Strategy],
    jobs: &[(usize, u32, u32)],
    seed: u64,
) -> Vec<Samples> {
    let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (j, &(_, from, to)) in jobs.iter().enumerate() {
        groups.entry((from, to)).or_default().push(j);
    }
    // Fixed chunks aligned to CHUNK_ITERATIONS.
    let mut tasks: Vec<(&[usize], u32, u32)> = Vec::new();
    for (&(from, to), js) in &groups {
        let mut s = from;
        while s < to {
            let e = ((s / CHUNK_ITERATIONS + 1) * CHUNK_ITERATIONS).min(to);
            tasks.push((js.as_slice(), s, e));
            s = e;
        }
    }
    let chunks: Vec<Vec<(usize, Samples)>> = tasks
        .par_iter()
        .map(|&(js, from, to)| {
            let mut ws = race.workspace();
            let mut snaps = race.snapshots();
            let stops: Vec<&[PitStop]> = js
                .iter()
                .map(|&j| {
                    jobs.get(j)
                        .and_then(|job| plans.get(job.0))
                        .map_or(&[][..], |p| p.stops.as_slice())
                })
                .collect();
            let mut out = vec![(0u16, 0.0f64); js.len()];
            let mut res: Vec<(usize, Samples)> = js
                .iter()
                .map(|&j| {
                    (
                        j,
                        Samples {
                            positions: Vec::with_capacity((to - from) as usize),
                            race_times_s: Vec::with_capacity((to - from) as usize),
                        },
                    )
                })
                .collect();
            for it in from..to {
                race.simulate_plans(
                    &mut ws, &mut snaps, seed, it as u64, target, &stops, &mut out,
                );
                for ((_, s), &(pos, t)) in res.iter_mut().zip(out.iter()) {
                    s.positions.push(pos);
                    s.race_times_s.push(t);
                }
            }
            RACES_SIMULATED.fetch_add(
                u64::from(to - from) * js.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            res
        })
        .collect();
    let mut res: Vec<Samples> = vec![Samples::default(); jobs.len()];
    for chunk in chunks {
        for (j, s) in chunk {
            if let Some(r) = res.get_mut(j) {
                r.positions.extend_from_slice(&s.positions);
                r.race_times_s.extend_from_slice(&s.race_times_s);
            }
        }
    }
    res
}

/// Plain per-plan runs (no prefix sharing), to check [`run_jobs`] against.
#[cfg(test)]
pub(crate) fn run_jobs_plain(
    race: &Race,
    target: usize,
    plans: &[Strategy],
    jobs: &[(usize, u32, u32)],
    seed: u64,
) -> Vec<Samples> {
    jobs.iter()
        .map(|&(plan, from, to)| {
            let mut ws = race.workspace();
            let stops = plans.get(plan).map(|p| p.stops.as_slice()).unwrap_or(&[]);
            let mut out = Samples::default();
            for it in from..to {
                race.simulate(
                    &mut ws,
                    seed,
                    it as u64,
                    Some((target, stops)),
                    None,
                    &mut crate::sim::NoRecord,
                );
                let (pos, t) = Race::position_of(&ws, target);
                out.positions.push(pos);
                out.race_times_s.push(t);
            }
            out
        })
        .collect()
}

fn mean_sd(v: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let (mut n, mut m, mut m2) = (0usize, 0.0, 0.0);
    for x in v {
        n += 1;
        let d = x - m;
        m += d / n as f64;
        m2 += d * (x - m);
    }
    let var = if n > 1 { m2 / (n - 1) as f64 } else { 0.0 };
    (m, var.sqrt(), n)
}

/// Paired mean difference `a - b` over their common iterations and its standard error.
pub(crate) fn paired_diff(a: &Samples, b: &Samples) -> (f64, f64) {
    let it = a
        .positions
        .iter()
        .zip(b.positions.iter())
        .map(|(&x, &y)| x as f64 - y as f64);
    let (m, sd, n) = mean_sd(it);
    (m, if n > 0 { sd / (n as f64).sqrt() } else { 0.0 })
}

fn quantile(dist: &[f64], q: f64) -> u32 {
    let mut acc = 0.0;
    for (k, p) in dist.iter().enumerate() {
        acc += p;
        if acc >= q - 1e-12 {
            return k as u32 + 1;
        }
    }
    dist.len() as u32
}

/// Summarises one plan's samples (diff/rank filled in later).
pub(crate) fn summarise(strategy: &Strategy, s: &Samples, n_cars: usize) -> StrategyOutcome {
    let n = s.positions.len().max(1) as f64;
    let mut dist = vec![0.0; n_cars];
    for &p in &s.positions {
        if let Some(d) = dist.get_mut((p as usize).saturating_sub(1)) {
            *d += 1.0;
        }
    }
    dist.iter_mut().for_each(|d| *d /= n);
    let (mean, sd, cnt) = mean_sd(s.positions.iter().map(|&p| p as f64));
    let (t_mean, _, t_n) = mean_sd(s.race_times_s.iter().copied().filter(|t| t.is_finite()));
    StrategyOutcome {
        strategy: strategy.clone(),
        label: strategy.to_string(),
        iterations: s.positions.len() as u32,
        win_probability: dist.first().copied().unwrap_or(0.0),
        interval95: (quantile(&dist, 0.025), quantile(&dist, 0.975)),
        p5_position: quantile(&dist, 0.95),
        finish_position_distribution: dist,
        expected_position: mean,
        expected_position_se: if cnt > 0 {
            sd / (cnt as f64).sqrt()
        } else {
            0.0
        },
        position_variance: sd * sd,
        expected_race_time_s: (t_n > 0).then_some(t_mean),
        diff_vs_best: 0.0,
        se_diff_vs_best: 0.0,
        rank: 0,
    }
}

fn better(a: &StrategyOutcome, b: &StrategyOutcome) -> std::cmp::Ordering {
    a.expected_position
        .total_cmp(&b.expected_position)
        .then_with(|| {
            let ta = a.expected_race_time_s.unwrap_or(f64::INFINITY);
            let tb = b.expected_race_time_s.unwrap_or(f64::INFINITY);
            ta.total_cmp(&tb)
        })
}

/// Index of the best plan among `alive`.
fn best_index(outs: &[StrategyOutcome], alive: &[bool]) -> usize {
    let mut best = 0;
    let mut found = false;
    for (i, o) in outs.iter().enumerate() {
        if !alive.get(i).copied().unwrap_or(false) {
            continue;
        }
        if !found || better(o, &outs[best]).is_lt() {
            best = i;
            found = true;
        }
    }
    best
}

/// Evaluates `plans` for car `target` with fixed iterations, or adaptively; returns outcomes in
/// input order with diff/SE vs the best and ranks filled in.
pub(crate) fn evaluate_plans(
    race: &Race,
    target: usize,
    plans: &[Strategy],
    opts: &McOptions,
    adaptive: Option<&Adaptive>,
    tolerance_pos: f64,
) -> Result<Vec<StrategyOutcome>> {
    if opts.iterations == 0 {
        return Err(StrategyError::ZeroIterations);
    }
    let cap = adaptive.map_or(opts.iterations, |a| {
        a.max_iterations.max(a.screen_iterations)
    });
    if cap > MAX_ITERATIONS {
        return Err(crate::error::invalid(
            "iterations",
            format!("at most {MAX_ITERATIONS} per plan"),
        ));
    }
    if plans.len() > MAX_PLANS {
        return Err(crate::error::invalid(
            "plans",
            format!(
                "{} plans; at most {MAX_PLANS} (raise two_stop_lap_step)",
                plans.len()
            ),
        ));
    }
    if plans.is_empty() {
        return Err(StrategyError::InfeasiblePlan {
            car_id: race.ids.get(target).cloned().unwrap_or_default(),
            reason: "no feasible plan to evaluate".into(),
        });
    }
    let n_cars = race.n;
    let mut samples: Vec<Samples>;
    let mut alive = vec![true; plans.len()];
    match adaptive {
        None => {
            let jobs: Vec<_> = (0..plans.len()).map(|i| (i, 0, opts.iterations)).collect();
            samples = run_jobs(race, target, plans, &jobs, opts.seed);
        }
        Some(a) => {
            if a.screen_iterations == 0 || a.max_iterations == 0 {
                return Err(StrategyError::ZeroIterations);
            }
            let n0 = a.screen_iterations.min(a.max_iterations);
            let jobs: Vec<_> = (0..plans.len()).map(|i| (i, 0, n0)).collect();
            samples = run_jobs(race, target, plans, &jobs, opts.seed);
            loop {
                let outs: Vec<_> = plans
                    .iter()
                    .zip(&samples)
                    .map(|(p, s)| summarise(p, s, n_cars))
                    .collect();
                let b = best_index(&outs, &alive);
                let mut need: Vec<(usize, u32, u32)> = Vec::new();
                for i in 0..plans.len() {
                    if !alive[i] || i == b {
                        continue;
                    }
                    let (d, se) = paired_diff(&samples[i], &samples[b]);
                    if d - a.drop_z * se > tolerance_pos {
                        alive[i] = false;
                        continue;
                    }
                    let have = samples[i].positions.len() as u32;
                    if se > a.target_se_diff && have < a.max_iterations {
                        need.push((i, have, have.saturating_mul(2).min(a.max_iterations)));
                    }
                }
                if need.is_empty() {
                    break;
                }
                // The best must have at least as many iterations as any refined plan.
                let top = need.iter().map(|j| j.2).max().unwrap_or(0);
                let have_b = samples[b].positions.len() as u32;
                if have_b < top {
                    need.push((b, have_b, top));
                }
                let extra = run_jobs(race, target, plans, &need, opts.seed);
                for ((i, _, _), s) in need.iter().zip(extra) {
                    samples[*i].positions.extend_from_slice(&s.positions);
                    samples[*i].race_times_s.extend_from_slice(&s.race_times_s);
                }
            }
        }
    }
    let mut outs: Vec<StrategyOutcome> = plans
        .iter()
        .zip(&samples)
        .map(|(p, s)| summarise(p, s, n_cars))
        .collect();
    let all = vec![true; plans.len()];
    let b = best_index(&outs, if adaptive.is_some() { &alive } else { &all });
    for i in 0..outs.len() {
        let (d, se) = if i == b {
            (0.0, 0.0)
        } else {
            paired_diff(&samples[i], &samples[b])
        };
        outs[i].diff_vs_best = d;
        outs[i].se_diff_vs_best = se;
    }
    let mut idx: Vec<usize> = (0..outs.len()).collect();
    idx.sort_by(|&x, &y| {
        if x == b {
            return std::cmp::Ordering::Less;
        }
        if y == b {
            return std::cmp::Ordering::Greater;
        }
        better(&outs[x], &outs[y])
    });
    for (r, &i) in idx.iter().enumerate() {
        outs[i].rank = r as u32 + 1;
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RaceParams;
    use crate::plan::PlanSpace;
    use crate::state::{CarState, Compound, RaceState};

    #[test]
    fn shared_prefix_runs_equal_plain_runs() {
        let mut params = RaceParams::default();
        params.safety_car.count_probabilities = vec![0.2, 0.4, 0.3, 0.1];
        params.driver.failure_probability = 0.2;
        let cars = (0..8)
            .map(|i| {
                let mut c = CarState::new(format!("{i}"), i + 1, Compound::Medium);
                c.race_time_s = 1.2 * i as f64;
                c.tyre_age_laps = 4.0;
                c.pace_offset_s = 0.1 * i as f64;
                c
            })
            .collect();
        let state = RaceState {
            current_lap: 4,
            total_laps: 22,
            cars,
            safety_car_active: true,
            vsc_active: false,
            neutralised_laps_remaining: 2,
        };
        let race = Race::new(&params, &state).unwrap();
        let space = PlanSpace {
            two_stop: true,
            two_stop_lap_step: 3,
            compounds: vec![Compound::Hard, Compound::Soft],
            ..PlanSpace::default()
        };
        let plans = space.enumerate(4, 22, 3, &[]);
        let jobs: Vec<_> = (0..plans.len()).map(|i| (i, 0u32, 300u32)).collect();
        let a = run_jobs(&race, 3, &plans, &jobs, 77);
        let b = run_jobs_plain(&race, 3, &plans, &jobs, 77);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.positions, y.positions);
            let same = x
                .race_times_s
                .iter()
                .zip(&y.race_times_s)
                .all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same);
        }
    }
}
