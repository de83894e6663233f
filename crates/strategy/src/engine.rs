//! Public entry points: evaluate plans, recommend a pit window, simulate single races.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StrategyError};
use rayon::prelude::*;

use crate::montecarlo::{
    count_races, evaluate_plans, Adaptive, McOptions, StrategyOutcome, CHUNK_ITERATIONS,
    MAX_ITERATIONS,
};
use crate::params::RaceParams;
use crate::plan::{PlanSpace, Strategy};
use crate::sim::{NoRecord, Race, RaceTrace, Recorder};
use crate::state::RaceState;

/// The advice for the car asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// First and last lap of the recommended pit window (`None` when staying out is best).
    /// The window holds the first-stop laps of plans that differ from the best only in that lap
    /// and whose expected position is within `max(SE of the difference, window_tolerance_pos)`
    /// of the best, grown contiguously around the best lap.
    pub window: Option<(u32, u32)>,
    /// The best plan.
    pub best: Strategy,
    /// One line for the radio, e.g. "Box between laps 12 and 15 for hard".
    pub text: String,
    /// Short evidence sentences.
    pub evidence: Vec<String>,
}

/// A plan used for another car in the simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldPlan {
    /// Car id.
    pub car_id: String,
    /// Its plan.
    pub strategy: Strategy,
}

/// Everything the engine found for one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Car asked about.
    pub car_id: String,
    /// Laps completed by the leader.
    pub current_lap: u32,
    /// Race length.
    pub total_laps: u32,
    /// Seed used.
    pub seed: u64,
    /// Races simulated in all.
    pub races_simulated: u64,
    /// Every plan tried, best first.
    pub outcomes: Vec<StrategyOutcome>,
    /// The advice.
    pub recommendation: Recommendation,
    /// Plans of the other cars.
    pub field_plans: Vec<FieldPlan>,
}

/// Evaluates the given plans for `car_id` with `opts.iterations` each (common random numbers);
/// returns outcomes best first.
pub fn simulate_strategies(
    params: &RaceParams,
    state: &RaceState,
    car_id: &str,
    plans: &[Strategy],
    opts: &McOptions,
) -> Result<Vec<StrategyOutcome>> {
    let race = Race::new(params, state)?;
    let target = state.car_index(car_id)?;
    for p in plans {
        p.check(
            car_id,
            state.current_lap,
            state.total_laps,
            params.pit.min_stint_laps,
        )?;
    }
    let mut outs = evaluate_plans(
        &race,
        target,
        plans,
        opts,
        None,
        params.recommendation.window_tolerance_pos,
    )?;
    outs.sort_by_key(|o| o.rank);
    Ok(outs)
}

/// Tries every plan of `space` for `car_id` (others on their own or default plans), ranks them
/// and draws the recommended window. With `adaptive`, plans are screened and refined (see
/// [`Adaptive`]); otherwise each plan gets `opts.iterations`.
pub fn recommend(
    params: &RaceParams,
    state: &RaceState,
    car_id: &str,
    space: &PlanSpace,
    opts: &McOptions,
    adaptive: Option<&Adaptive>,
) -> Result<Report> {
    if opts.iterations == 0 {
        return Err(StrategyError::ZeroIterations);
    }
    let race = Race::new(params, state)?;
    let target = state.car_index(car_id)?;
    let plans = space.enumerate(
        state.current_lap,
        state.total_laps,
        params.pit.min_stint_laps,
        &params.pit.stop_compounds,
    );
    let tol = params.recommendation.window_tolerance_pos;
    let outs = evaluate_plans(&race, target, &plans, opts, adaptive, tol)?;
    let races: u64 = outs.iter().map(|o| o.iterations as u64).sum();
    let recommendation = recommendation(params, &outs, tol);
    let mut ranked = outs;
    ranked.sort_by_key(|o| o.rank);
    let field_plans = race
        .ids
        .iter()
        .zip(&race.plans)
        .enumerate()
        .filter(|(i, _)| *i != target)
        .map(|(_, (id, stops))| FieldPlan {
            car_id: id.clone(),
            strategy: Strategy {
                stops: stops.clone(),
            },
        })
        .collect();
    Ok(Report {
        car_id: car_id.to_string(),
        current_lap: state.current_lap,
        total_laps: state.total_laps,
        seed: opts.seed,
        races_simulated: races,
        outcomes: ranked,
        recommendation,
        field_plans,
    })
}

/// Builds the recommendation from outcomes (any order, ranks filled in).
fn recommendation(params: &RaceParams, outs: &[StrategyOutcome], tol: f64) -> Recommendation {
    let Some(best) = outs.iter().find(|o| o.rank == 1) else {
        return Recommendation {
            window: None,
            best: Strategy::stay_out(),
            text: "No plan evaluated".into(),
            evidence: Vec::new(),
        };
    };
    let mut evidence = Vec::new();
    evidence.push(format!(
        "Best plan ({}): expected P{:.1}, win {:.0}%, 95% range P{}-P{}, worst 5% P{} or lower.",
        best.label,
        best.expected_position,
        100.0 * best.win_probability,
        best.interval95.0,
        best.interval95.1,
        best.p5_position
    ));
    let window = match best.strategy.stops.first() {
        None => None,
        Some(first) => {
            let rest = &best.strategy.stops[1..];
            let in_window = |lap: u32| {
                outs.iter().any(|o| {
                    o.strategy.stops.len() == best.strategy.stops.len()
                        && o.strategy.stops.first().map(|s| (s.lap, s.compound))
                            == Some((lap, first.compound))
                        && o.strategy.stops.get(1..) == Some(rest)
                        && o.diff_vs_best <= o.se_diff_vs_best.max(tol)
                })
            };
            let (mut lo, mut hi) = (first.lap, first.lap);
            while lo > 0 && in_window(lo - 1) {
                lo -= 1;
            }
            while in_window(hi + 1) {
                hi += 1;
            }
            Some((lo, hi))
        }
    };
    let text = match (window, best.strategy.stops.first()) {
        (Some((lo, hi)), Some(s)) if lo == hi => format!("Box on lap {lo} for {}", s.compound),
        (Some((lo, hi)), Some(s)) => format!("Box between laps {lo} and {hi} for {}", s.compound),
        _ => "Stay out: no stop beats staying out".to_string(),
    };
    if best.strategy.stops.is_empty() {
        if let Some(alt) = outs
            .iter()
            .filter(|o| !o.strategy.stops.is_empty())
            .min_by(|a, b| a.expected_position.total_cmp(&b.expected_position))
        {
            evidence.push(format!(
                "Best stop ({}) is {:.2} ± {:.2} positions worse.",
                alt.label, alt.diff_vs_best, alt.se_diff_vs_best
            ));
        }
    } else if let Some(so) = outs.iter().find(|o| o.strategy.stops.is_empty()) {
        evidence.push(format!(
            "Staying out: expected P{:.1}, {:.2} ± {:.2} positions worse.",
            so.expected_position, so.diff_vs_best, so.se_diff_vs_best
        ));
    }
    let sc = &params.safety_car;
    evidence.push(format!(
        "SC or VSC in {:.0}% of races; a stop costs {:.0} s under SC vs {:.0} s under green.",
        100.0 * sc.p_at_least_one(),
        params.pit.lane_loss_sc_s + params.pit.standstill_min_s + params.pit.fisk_mean_s(),
        params.pit.lane_loss_green_s + params.pit.standstill_min_s + params.pit.fisk_mean_s()
    ));
    Recommendation {
        window,
        best: best.strategy.clone(),
        text,
        evidence,
    }
}

/// One car's finishing distribution on its own plan ([`simulate_field`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldOutcome {
    /// Car id.
    pub car_id: String,
    /// The plan the car ran (its own `plan`, else the default plan).
    pub strategy: Strategy,
    /// Races simulated.
    pub iterations: u32,
    /// Mean finishing position (retired cars are classified behind the running ones).
    pub expected_position: f64,
    /// Standard error of the mean position.
    pub expected_position_se: f64,
    /// P(position 1), P(position 2), ... (sums to 1).
    pub finish_position_distribution: Vec<f64>,
    /// P(position 1).
    pub win_probability: f64,
    /// Share of races in which the car retired.
    pub retirement_probability: f64,
}

/// Simulates `opts.iterations` races with every car on its own plan (the `plan` of each
/// [`crate::CarState`], else [`crate::default_plan`]) and returns every car's finishing
/// distribution, in the order of `state.cars`. Parallel and bit-identical on any thread count.
pub fn simulate_field(
    params: &RaceParams,
    state: &RaceState,
    opts: &McOptions,
) -> Result<Vec<FieldOutcome>> {
    if opts.iterations == 0 {
        return Err(StrategyError::ZeroIterations);
    }
    if opts.iterations > MAX_ITERATIONS {
        return Err(crate::error::invalid(
            "iterations",
            format!("at most {MAX_ITERATIONS}"),
        ));
    }
    let race = Race::new(params, state)?;
    let n = race.n;
    let chunks: Vec<(u32, u32)> = (0..opts.iterations)
        .step_by(CHUNK_ITERATIONS as usize)
        .map(|s| (s, (s + CHUNK_ITERATIONS).min(opts.iterations)))
        .collect();
    // Per chunk: counts[car * n + position - 1] and retirements per car (integers: the sum does
    // not depend on the order the chunks finish in).
    let (counts, retired) = chunks
        .par_iter()
        .map(|&(from, to)| {
            let mut ws = race.workspace();
            let mut pos = vec![0u16; n];
            let mut counts = vec![0u64; n * n];
            let mut retired = vec![0u64; n];
            for it in from..to {
                race.simulate(&mut ws, opts.seed, it as u64, None, None, &mut NoRecord);
                Race::positions(&ws, &mut pos);
                let running = ws.order.len();
                for (c, &p) in pos.iter().enumerate() {
                    if let Some(x) = counts.get_mut(c * n + (p as usize).saturating_sub(1)) {
                        *x += 1;
                    }
                    if p as usize > running {
                        if let Some(x) = retired.get_mut(c) {
                            *x += 1;
                        }
                    }
                }
            }
            count_races(u64::from(to - from));
            (counts, retired)
        })
        .reduce(
            || (vec![0u64; n * n], vec![0u64; n]),
            |(mut a, mut ra), (b, rb)| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                ra.iter_mut().zip(&rb).for_each(|(x, y)| *x += y);
                (a, ra)
            },
        );
    let iters = f64::from(opts.iterations);
    Ok((0..n)
        .map(|c| {
            let row = &counts[c * n..(c + 1) * n];
            let dist: Vec<f64> = row.iter().map(|&k| k as f64 / iters).collect();
            let mean: f64 = dist
                .iter()
                .enumerate()
                .map(|(k, p)| (k + 1) as f64 * p)
                .sum();
            let m2: f64 = dist
                .iter()
                .enumerate()
                .map(|(k, p)| ((k + 1) as f64).powi(2) * p)
                .sum();
            let var = (m2 - mean * mean).max(0.0);
            FieldOutcome {
                car_id: race.ids.get(c).cloned().unwrap_or_default(),
                strategy: Strategy {
                    stops: race.plans.get(c).cloned().unwrap_or_default(),
                },
                iterations: opts.iterations,
                expected_position: mean,
                expected_position_se: (var / iters).sqrt(),
                win_probability: dist.first().copied().unwrap_or(0.0),
                finish_position_distribution: dist,
                retirement_probability: retired.get(c).copied().unwrap_or(0) as f64 / iters,
            }
        })
        .collect())
}

/// Result of one simulated race.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceResult {
    /// Car ids in classification order (running cars, then retired ones).
    pub classification: Vec<String>,
    /// Finishing position by car index of the state.
    pub positions: Vec<u32>,
    /// Phases, retirements, neutralised laps.
    pub trace: RaceTrace,
}

/// Simulates iteration `iteration` of stream `seed` once, every car on its own or default plan.
pub fn simulate_race(
    params: &RaceParams,
    state: &RaceState,
    seed: u64,
    iteration: u64,
) -> Result<RaceResult> {
    let race = Race::new(params, state)?;
    let mut ws = race.workspace();
    let mut trace = RaceTrace::default();
    race.simulate(
        &mut ws,
        seed,
        iteration,
        None,
        Some(&mut trace),
        &mut NoRecord,
    );
    let mut pos = vec![0u16; race.n];
    Race::positions(&ws, &mut pos);
    let classification = ws
        .order
        .iter()
        .map(|&c| race.ids.get(c as usize).cloned().unwrap_or_default())
        .collect::<Vec<_>>();
    let mut classification = classification;
    let mut retired: Vec<(u16, usize)> = pos
        .iter()
        .enumerate()
        .filter(|(_, &p)| p as usize > ws.order.len())
        .map(|(i, &p)| (p, i))
        .collect();
    retired.sort();
    classification.extend(
        retired
            .iter()
            .map(|&(_, i)| race.ids.get(i).cloned().unwrap_or_default()),
    );
    Ok(RaceResult {
        classification,
        positions: pos.iter().map(|&p| p as u32).collect(),
        trace,
    })
}

/// One lap of one car, as timing would record it (the input of [`crate::fit()`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapRecord {
    /// Car id.
    pub car_id: String,
    /// Lap number (1-based).
    pub lap: u32,
    /// Lap time as driven.
    pub lap_time_s: f64,
    /// The car boxed at the end of this lap (the lap carries the pit loss).
    pub pit: bool,
    /// The lap was run under a full-course yellow (SC or VSC).
    pub yellow: bool,
    /// Position at the end of the lap.
    pub position: Option<u32>,
    /// Race time at the end of the lap.
    pub race_time_s: Option<f64>,
}

struct LapCollector<'a> {
    ids: &'a [String],
    out: Vec<LapRecord>,
}

impl Recorder for LapCollector<'_> {
    const ACTIVE: bool = true;
    fn lap(
        &mut self,
        car: usize,
        lap: u32,
        lap_time_s: f64,
        pit: bool,
        yellow: bool,
        position: u32,
        race_time_s: f64,
    ) {
        self.out.push(LapRecord {
            car_id: self.ids.get(car).cloned().unwrap_or_default(),
            lap,
            lap_time_s,
            pit,
            yellow,
            position: Some(position),
            race_time_s: Some(race_time_s),
        });
    }
}

/// Simulates one race and returns every car-lap as a [`LapRecord`] (a synthetic timing feed,
/// used to test [`crate::fit()`] and for demos).
pub fn simulate_laps(params: &RaceParams, state: &RaceState, seed: u64) -> Result<Vec<LapRecord>> {
    let race = Race::new(params, state)?;
    let mut ws = race.workspace();
    let mut rec = LapCollector {
        ids: &race.ids,
        out: Vec::new(),
    };
    race.simulate(&mut ws, seed, 0, None, None, &mut rec);
    Ok(rec.out)
}

/// A reusable single-thread simulator of one compiled race (for benchmarks and custom loops):
/// no allocation per race.
#[derive(Debug, Clone)]
pub struct Simulator {
    race: Race,
    ws: crate::sim::Workspace,
}

impl Simulator {
    /// Compiles parameters and state.
    pub fn new(params: &RaceParams, state: &RaceState) -> Result<Simulator> {
        let race = Race::new(params, state)?;
        let ws = race.workspace();
        Ok(Simulator { race, ws })
    }

    /// Runs iteration `iteration` of stream `seed` with every car on its own or default plan, or
    /// with `plan` for car index `car` when given; returns that car's (position, race time) or,
    /// without a car, the winner's index position 1 and its race time.
    pub fn run(
        &mut self,
        seed: u64,
        iteration: u64,
        car: Option<(usize, &Strategy)>,
    ) -> (u32, f64) {
        let target = car.map(|(i, s)| (i, s.stops.as_slice()));
        self.race
            .simulate(&mut self.ws, seed, iteration, target, None, &mut NoRecord);
        let c = car.map_or_else(
            || self.ws.order.first().map_or(0, |&c| c as usize),
            |(i, _)| i,
        );
        let (p, t) = Race::position_of(&self.ws, c);
        (p as u32, t)
    }
}
