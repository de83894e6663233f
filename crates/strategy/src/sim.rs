//! The simulation core: one race from a [`RaceState`] to the flag.
//!
//! Model (after TUMFTM race-simulation, see `shared/race-model.md`):
//! - green lap time = base + car offset + tyre term `k0 + k1*age + k2*age^2` (per car and
//!   compound) + fuel kg x sensitivity + N(0, sigma of the driver) - DRS gain (within the window
//!   of the car ahead) + cold-tyre penalty on an out-lap; lap 1 adds the start loss,
//!   `(grid - 1) x 0.14 s` and a random start performance;
//! - a stop adds the pit-lane loss of the lap's track status + a standstill `min + Fisk` draw
//!   (redrawn above 3x its mean); tyres are reset;
//! - under SC every lap is `base x 1.6` and the field bunches (each lap closes a fraction of the
//!   excess gap over `sc_gap_s`); under VSC laps are `base x 1.4` with gaps frozen; tyres age and
//!   fuel burns at a fraction of a green lap;
//! - overtaking: a car that would end the lap ahead of (or within `hold_gap_s` of) the car in front
//!   passes only with a lap-time advantage >= threshold (both lose the duel penalty), otherwise it is
//!   held `hold_gap_s` behind; no passing under SC/VSC; a car in the pit lane is passed freely;
//! - SC/VSC phases: count from the count table, start on lap 1 with p 0.364 else uniform in one of
//!   five blocks, length from the table, redrawn when closer than 1.5 laps to another phase; phases
//!   that would start at or before the current lap are dropped (the past is known);
//! - incidents (off by default): per car and green lap with probability
//!   `driver.incident_probability_per_lap`, an exponential time loss (mean
//!   `driver.incident_loss_mean_s`), drawn from the same stream in car order;
//! - retirements: a car fails in this race with its probability scaled by the share of the race
//!   still to run (the failure point is uniform over the race), at a uniform remaining lap; a
//!   failure starts a VSC with p 0.227 lasting 1-4 laps.
//!
//! Random numbers: every race draws from its own stream keyed by `(seed, iteration)`, in an order
//! that does not depend on any car's pit plan (phases, retirements, start performances, then one
//! normal per running car per lap in car-index order; standstills come from a counter-based hash of
//! `(stream, car, stop number)`), so plans compared on the same iteration see the same race
//! (common random numbers). All buffers live in a reused [`Workspace`]: no allocation per lap.

use crate::error::Result;
use crate::params::{PassRule, RaceParams};
use crate::plan::{default_plan, PitStop};
use crate::rng::{fisk, stream_key, KeyedUniforms, Xoshiro256pp, Ziggurat};
use crate::state::{Compound, Neutralisation, RaceState};

const GREEN: u8 = 0;
const SC: u8 = 1;
const VSC: u8 = 2;

/// Receives every car-lap of a simulated race (used to generate lap records); the no-op
/// implementation compiles away.
pub(crate) trait Recorder {
    const ACTIVE: bool;
    #[allow(clippy::too_many_arguments)]
    fn lap(
        &mut self,
        car: usize,
        lap: u32,
        lap_time_s: f64,
        pit: bool,
        yellow: bool,
        position: u32,
        race_time_s: f64,
    );
}

/// Records nothing.
pub(crate) struct NoRecord;

impl Recorder for NoRecord {
    const ACTIVE: bool = false;
    #[inline(always)]
    fn lap(&mut self, _: usize, _: u32, _: f64, _: bool, _: bool, _: u32, _: f64) {}
}

/// What happened in one simulated race beyond the order (for tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaceTrace {
    /// Sampled SC/VSC phases that start after the current lap: (start lap, drawn length, is VSC).
    pub phases: Vec<(u32, u32, bool)>,
    /// Number of phases drawn from the count table (before dropping those in the past).
    pub phases_drawn: u32,
    /// Cars that retired during the simulated laps.
    pub retirements: u32,
    /// VSCs started by a retirement.
    pub retirement_vscs: u32,
    /// Laps run under SC or VSC.
    pub neutralised_laps: u32,
}

/// A compiled race: parameters and state flattened into arrays (struct of arrays).
#[derive(Debug, Clone)]
pub(crate) struct Race {
    pub(crate) n: usize,
    pub(crate) cur: u32,
    pub(crate) total: u32,
    pub(crate) ids: Vec<String>,
    pace_s: Vec<f64>,
    sigma_s: Vec<f64>,
    deg: Vec<[[f64; 3]; 5]>,
    init_rt: Vec<f64>,
    init_age: Vec<f64>,
    init_comp: Vec<u8>,
    init_stops: Vec<u32>,
    init_order: Vec<u16>,
    init_retired: Vec<bool>,
    grid_loss_s: Vec<f64>,
    start_mean_s: Vec<f64>,
    fail_p: Vec<f64>,
    start_sigma_s: Vec<f64>,
    top_speed_kmh: Vec<f64>,
    standstill: Vec<Standstill>,
    accident_w: Vec<f64>,
    sched_retire_lap: Vec<u32>,
    sched_fcy: Vec<(u8, u32)>,
    splits_pit_loss: bool,
    pub(crate) plans: Vec<Vec<PitStop>>,
    fuel0_kg: f64,
    initial_fcy: (u8, u32),
    p: RaceParams,
    fisk_cap_s: f64,
    fisk_mean_s: f64,
}

/// One car's standstill model, compiled: minimum, Fisk shape and scale, redraw cap, Fisk mean.
#[derive(Debug, Clone, Copy)]
struct Standstill {
    min_s: f64,
    shape: f64,
    scale_s: f64,
    cap_s: f64,
    mean_s: f64,
}

/// Reused buffers of one worker.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workspace {
    rt: Vec<f64>,
    new_t: Vec<f64>,
    lt: Vec<f64>,
    pitp: Vec<f64>,
    drs: Vec<f64>,
    age: Vec<f64>,
    start_perf: Vec<f64>,
    comp: Vec<u8>,
    stop_idx: Vec<u32>,
    next_stop: Vec<u32>,
    stops: Vec<u32>,
    outlap: Vec<bool>,
    pitted: Vec<bool>,
    retired: Vec<bool>,
    retire_lap: Vec<u32>,
    pub(crate) order: Vec<u16>,
    retired_list: Vec<u16>,
    fcy: Vec<u8>,
    phases: Vec<(u32, u32)>,
    sc_starts: Vec<u32>,
    carry_s: Vec<f64>,
    carry_major: Vec<bool>,
    duel: Vec<bool>,
}

/// Where a race is between laps: the random stream and the per-race scalars.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    rng: Xoshiro256pp,
    fuel_kg: f64,
    neutralised: u32,
    key: u64,
}

/// The dynamic state at the start of one lap (for sharing a race prefix between plans).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    rt: Vec<f64>,
    age: Vec<f64>,
    drs: Vec<f64>,
    comp: Vec<u8>,
    stops: Vec<u32>,
    stop_idx: Vec<u32>,
    next_stop: Vec<u32>,
    outlap: Vec<bool>,
    retired: Vec<bool>,
    order: Vec<u16>,
    retired_list: Vec<u16>,
    carry_s: Vec<f64>,
    carry_major: Vec<bool>,
    cursor: Option<Cursor>,
}

fn copy_into<T: Copy>(dst: &mut Vec<T>, src: &[T]) {
    dst.clear();
    dst.extend_from_slice(src);
}

impl Snapshot {
    fn save(
        &mut self,
        ws: &Workspace,
        rng: Xoshiro256pp,
        fuel_kg: f64,
        neutralised: u32,
        key: u64,
    ) {
        copy_into(&mut self.rt, &ws.rt);
        copy_into(&mut self.age, &ws.age);
        copy_into(&mut self.drs, &ws.drs);
        copy_into(&mut self.comp, &ws.comp);
        copy_into(&mut self.stops, &ws.stops);
        copy_into(&mut self.stop_idx, &ws.stop_idx);
        copy_into(&mut self.next_stop, &ws.next_stop);
        copy_into(&mut self.outlap, &ws.outlap);
        copy_into(&mut self.retired, &ws.retired);
        copy_into(&mut self.order, &ws.order);
        copy_into(&mut self.retired_list, &ws.retired_list);
        copy_into(&mut self.carry_s, &ws.carry_s);
        copy_into(&mut self.carry_major, &ws.carry_major);
        self.cursor = Some(Cursor {
            rng,
            fuel_kg,
            neutralised,
            key,
        });
    }

    fn restore(&self, ws: &mut Workspace) -> Option<Cursor> {
        copy_into(&mut ws.rt, &self.rt);
        copy_into(&mut ws.age, &self.age);
        copy_into(&mut ws.drs, &self.drs);
        copy_into(&mut ws.comp, &self.comp);
        copy_into(&mut ws.stops, &self.stops);
        copy_into(&mut ws.stop_idx, &self.stop_idx);
        copy_into(&mut ws.next_stop, &self.next_stop);
        copy_into(&mut ws.outlap, &self.outlap);
        copy_into(&mut ws.retired, &self.retired);
        copy_into(&mut ws.order, &self.order);
        copy_into(&mut ws.retired_list, &self.retired_list);
        copy_into(&mut ws.carry_s, &self.carry_s);
        copy_into(&mut ws.carry_major, &self.carry_major);
        self.cursor.clone()
    }
}

impl Race {
    /// Buffers for [`Race::simulate_plans`]: one snapshot per simulated lap.
    pub(crate) fn snapshots(&self) -> Vec<Snapshot> {
        vec![Snapshot::default(); (self.total - self.cur) as usize]
    }

    /// Runs one iteration for every plan of car `target` and writes (position, race time) per
    /// plan into `out`. The race is run once with the car staying out, saving the state at the
    /// start of every lap; a plan whose first stop is on lap `L` restarts from the state at the
    /// start of lap `L` (identical up to there, common random numbers make it exact). The
    /// results are bit-identical to running each plan from the start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn simulate_plans(
        &self,
        ws: &mut Workspace,
        snaps: &mut [Snapshot],
        seed: u64,
        iteration: u64,
        target: usize,
        plans: &[&[PitStop]],
        out: &mut [(u16, f64)],
    ) {
        let empty: &[PitStop] = &[];
        let mut cursor = self.setup(ws, seed, iteration, Some((target, empty)), None);
        self.run_laps(
            ws,
            &mut cursor,
            self.cur + 1,
            Some((target, empty)),
            Some(snaps),
            &mut NoRecord,
        );
        self.finish(ws);
        let stay = Race::position_of(ws, target);
        for (plan, o) in plans.iter().zip(out.iter_mut()) {
            let Some(first) = plan.first() else {
                *o = stay;
                continue;
            };
            let idx = first.lap.saturating_sub(self.cur + 1) as usize;
            let Some(mut c) = snaps.get(idx).and_then(|s| s.restore(ws)) else {
                // Not reachable for checked plans; fall back to a full run.
                self.simulate(
                    ws,
                    seed,
                    iteration,
                    Some((target, plan)),
                    None,
                    &mut NoRecord,
                );
                *o = Race::position_of(ws, target);
                continue;
            };
            if let Some(x) = ws.next_stop.get_mut(target) {
                *x = first.lap;
            }
            if let Some(x) = ws.stop_idx.get_mut(target) {
                *x = 0;
            }
            self.run_laps(
                ws,
                &mut c,
                first.lap,
                Some((target, plan)),
                None,
                &mut NoRecord,
            );
            self.finish(ws);
            *o = Race::position_of(ws, target);
        }
    }

    /// Compiles a validated state. Cars without a plan get [`default_plan`] onto the first of
    /// `pit.stop_compounds` (or their own compound when that list is empty).
    pub(crate) fn new(params: &RaceParams, state: &RaceState) -> Result<Race> {
        params.validate()?;
        state.validate()?;
        let n = state.cars.len();
        let p = params.clone();
        let mut order: Vec<usize> = (0..n).filter(|&i| !state.cars[i].retired).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&state.cars[a], &state.cars[b]);
            ca.position
                .cmp(&cb.position)
                .then(ca.race_time_s.total_cmp(&cb.race_time_s))
        });
        let mut retired_first: Vec<usize> = (0..n).filter(|&i| state.cars[i].retired).collect();
        retired_first.sort_by_key(|&i| state.cars[i].position);
        let laps_left = state.laps_left() as f64;
        let share_left = laps_left / state.total_laps.max(1) as f64;
        let mut race = Race {
            n,
            cur: state.current_lap,
            total: state.total_laps,
            ids: state.cars.iter().map(|c| c.car_id.clone()).collect(),
            pace_s: Vec::with_capacity(n),
            sigma_s: Vec::with_capacity(n),
            deg: Vec::with_capacity(n),
            init_rt: Vec::with_capacity(n),
            init_age: Vec::with_capacity(n),
            init_comp: Vec::with_capacity(n),
            init_stops: Vec::with_capacity(n),
            init_order: order.iter().map(|&i| i as u16).collect(),
            init_retired: state.cars.iter().map(|c| c.retired).collect(),
            grid_loss_s: vec![0.0; n],
            start_mean_s: Vec::with_capacity(n),
            fail_p: Vec::with_capacity(n),
            start_sigma_s: Vec::with_capacity(n),
            top_speed_kmh: Vec::with_capacity(n),
            standstill: Vec::with_capacity(n),
            accident_w: Vec::with_capacity(n),
            sched_retire_lap: Vec::with_capacity(n),
            sched_fcy: Vec::with_capacity(n),
            splits_pit_loss: params.pit.splits_loss(),
            plans: Vec::with_capacity(n),
            fuel0_kg: 0.0,
            initial_fcy: (GREEN, 0),
            fisk_cap_s: p.pit.redraw_above_mean_factor * p.pit.fisk_mean_s(),
            fisk_mean_s: p.pit.fisk_mean_s(),
            p,
        };
        let default_compound = params.pit.stop_compounds.first().copied();
        let speeds: Vec<f64> = state.cars.iter().filter_map(|c| c.top_speed_kmh).collect();
        let mean_speed_kmh = if speeds.is_empty() {
            0.0
        } else {
            speeds.iter().sum::<f64>() / speeds.len() as f64
        };
        let pit = &params.pit;
        for c in &state.cars {
            race.start_sigma_s.push(
                c.start_perf_sigma_s
                    .unwrap_or(params.track.start_perf_sigma_s),
            );
            race.top_speed_kmh
                .push(c.top_speed_kmh.unwrap_or(mean_speed_kmh));
            let (min_s, shape, scale_s) = match &c.standstill {
                Some(m) => (m.min_s, m.fisk_shape, m.fisk_scale_s),
                None => (
                    pit.standstill_min_s,
                    pit.standstill_fisk_shape,
                    pit.standstill_fisk_scale_s,
                ),
            };
            let b = std::f64::consts::PI / shape;
            let mean_s = scale_s * b / b.sin();
            race.standstill.push(Standstill {
                min_s,
                shape,
                scale_s,
                cap_s: pit.redraw_above_mean_factor * mean_s,
                mean_s,
            });
            race.accident_w.push(c.accident_weight);
            match &c.retirement {
                Some(r) if !c.retired => {
                    let lap = (r.at_lap.floor() as u32).saturating_add(1);
                    if lap > state.current_lap && lap <= state.total_laps {
                        race.sched_retire_lap.push(lap);
                        let kind = match r.neutralisation {
                            Some(Neutralisation::Sc) => SC,
                            Some(Neutralisation::Vsc) => VSC,
                            None => GREEN,
                        };
                        race.sched_fcy.push((kind, r.neutralisation_laps));
                    } else {
                        race.sched_retire_lap.push(u32::MAX);
                        race.sched_fcy.push((GREEN, 0));
                    }
                }
                _ => {
                    race.sched_retire_lap.push(u32::MAX);
                    race.sched_fcy.push((GREEN, 0));
                }
            }
            race.pace_s
                .push(params.track.base_lap_time_s + c.pace_offset_s);
            race.sigma_s
                .push(c.noise_sigma_s.unwrap_or(params.driver.noise_sigma_s));
            let mut d = [[0.0; 3]; 5];
            for comp in Compound::ALL {
                let m = c
                    .tyres
                    .get(&comp)
                    .copied()
                    .unwrap_or(*params.tyres.model(comp));
                let f = if c.tyres.contains_key(&comp) {
                    1.0
                } else {
                    c.deg_factor
                };
                d[comp.index()] = [m.k0_s, m.k1_s_per_lap * f, m.k2_s_per_lap2 * f];
            }
            race.deg.push(d);
            race.init_rt.push(c.race_time_s);
            race.init_age.push(c.tyre_age_laps);
            race.init_comp.push(c.compound.index() as u8);
            race.init_stops.push(c.stops_done);
            race.start_mean_s.push(c.start_perf_mean_s);
            let fp = c
                .failure_probability
                .unwrap_or(params.driver.failure_probability);
            race.fail_p.push(fp * share_left);
            let plan = match &c.plan {
                Some(pl) => {
                    pl.check(
                        &c.car_id,
                        state.current_lap,
                        state.total_laps,
                        params.pit.min_stint_laps,
                    )?;
                    pl.clone()
                }
                None => default_plan(
                    state.current_lap,
                    state.total_laps,
                    c.tyre_age_laps,
                    c.stops_done,
                    params.pit.min_stint_laps,
                    default_compound.unwrap_or(c.compound),
                ),
            };
            race.plans.push(plan.stops);
        }
        if state.current_lap == 0 {
            for (k, &i) in order.iter().enumerate() {
                race.grid_loss_s[i] = k as f64 * params.track.grid_position_loss_s;
            }
        }
        let f = &params.fuel;
        race.fuel0_kg = (f.consumption_kg_per_lap * laps_left + f.reserve_kg).max(0.0);
        if state.safety_car_active {
            race.initial_fcy = (SC, state.neutralised_laps_remaining);
        } else if state.vsc_active {
            race.initial_fcy = (VSC, state.neutralised_laps_remaining);
        }
        Ok(race)
    }

    /// A workspace sized for this race.
    pub(crate) fn workspace(&self) -> Workspace {
        let n = self.n;
        Workspace {
            rt: vec![0.0; n],
            new_t: vec![0.0; n],
            lt: vec![0.0; n],
            pitp: vec![0.0; n],
            drs: vec![0.0; n],
            age: vec![0.0; n],
            start_perf: vec![0.0; n],
            comp: vec![0; n],
            stop_idx: vec![0; n],
            next_stop: vec![0; n],
            stops: vec![0; n],
            outlap: vec![false; n],
            pitted: vec![false; n],
            retired: vec![false; n],
            retire_lap: vec![0; n],
            order: Vec::with_capacity(n),
            retired_list: Vec::with_capacity(n),
            fcy: vec![GREEN; self.total as usize + 2],
            phases: Vec::with_capacity(16),
            sc_starts: Vec::with_capacity(16),
            carry_s: vec![0.0; n],
            carry_major: vec![false; n],
            duel: vec![false; n],
        }
    }

    #[inline]
    fn plan_of<'a>(&'a self, c: usize, target: Option<(usize, &'a [PitStop])>) -> &'a [PitStop] {
        match target {
            Some((t, pl)) if t == c => pl,
            _ => self.plans.get(c).map(|v| v.as_slice()).unwrap_or(&[]),
        }
    }

    fn standstill_s(&self, key: u64, car: usize, stop: u32) -> f64 {
        let pit = &self.p.pit;
        let (min_s, shape, scale_s, cap_s, mean_s) = match self.standstill.get(car) {
            Some(m) => (m.min_s, m.shape, m.scale_s, m.cap_s, m.mean_s),
            None => (
                pit.standstill_min_s,
                pit.standstill_fisk_shape,
                pit.standstill_fisk_scale_s,
                self.fisk_cap_s,
                self.fisk_mean_s,
            ),
        };
        let stop_key =
            key ^ (((car as u64) << 32) | stop as u64).wrapping_mul(0xA076_1D64_78BD_642F);
        let mut draws = KeyedUniforms::new(stop_key);
        // A plain loop: as an iterator chain (`repeat_with(..).take(64)`) the whole race core
        // ran about 40 % slower (measured with `examples/race_throughput`).
        for _ in 0..64 {
            let u = draws.uniform_open();
            let x = fisk(u, shape, scale_s);
            if x <= cap_s {
                return min_s + x;
            }
        }
        min_s + mean_s
    }

    /// Samples SC/VSC phases into `ws.fcy` (one flag per lap).
    fn sample_phases(
        &self,
        rng: &mut Xoshiro256pp,
        ws: &mut Workspace,
        trace: Option<&mut RaceTrace>,
    ) {
        let sc = &self.p.safety_car;
        let total = self.total;
        ws.fcy.iter_mut().for_each(|f| *f = GREEN);
        ws.phases.clear();
        ws.sc_starts.clear();
        let (kind0, len0) = self.initial_fcy;
        if kind0 != GREEN {
            for lap in (self.cur + 1)..=self.cur.saturating_add(len0).min(total) {
                if let Some(f) = ws.fcy.get_mut(lap as usize) {
                    *f = kind0;
                }
            }
            ws.phases
                .push((self.cur.saturating_sub(1), self.cur.saturating_add(len0)));
        }
        let count = pick(&sc.count_probabilities, rng.uniform());
        let tracing = trace.is_some();
        let mut kept: Vec<(u32, u32, bool)> = Vec::new();
        let blocks = sc.start_blocks.max(1);
        let block_len = total as f64 / blocks as f64;
        for _ in 0..count {
            for _attempt in 0..32 {
                let start = if rng.uniform() < sc.first_lap_probability {
                    1
                } else {
                    let b = if sc.start_block_weights.is_empty() {
                        rng.range_inclusive(0, blocks - 1)
                    } else {
                        let total_w: f64 = sc.start_block_weights.iter().sum();
                        pick_weighted(&sc.start_block_weights, rng.uniform() * total_w) as u32
                    };
                    let lo = ((b as f64 * block_len).floor() as u32 + 1).min(total);
                    let hi = (((b + 1) as f64 * block_len).floor() as u32).clamp(lo, total);
                    rng.range_inclusive(lo, hi)
                };
                let len = pick(&sc.length_probabilities, rng.uniform()) as u32 + 1;
                let is_vsc = rng.uniform() < sc.vsc_share;
                let end = start + len - 1;
                let clash = ws.phases.iter().any(|&(s, e)| {
                    let gap = if start > e {
                        (start - e - 1) as f64
                    } else if s > end {
                        (s - end - 1) as f64
                    } else {
                        -1.0
                    };
                    gap < sc.min_separation_laps
                });
                if clash {
                    continue;
                }
                ws.phases.push((start, end));
                if start > self.cur {
                    let kind = if is_vsc { VSC } else { SC };
                    if !is_vsc {
                        ws.sc_starts.push(start);
                    }
                    for lap in start..=end.min(total) {
                        if let Some(f) = ws.fcy.get_mut(lap as usize) {
                            *f = kind;
                        }
                    }
                    if tracing {
                        kept.push((start, len, is_vsc));
                    }
                }
                break;
            }
        }
        if let Some(t) = trace {
            t.phases_drawn = count as u32;
            t.phases = kept;
        }
    }

    /// Runs one race. After it, `ws.order` holds the running cars in finishing order and
    /// `ws.retired_list` the retired ones, best classified first.
    pub(crate) fn simulate<R: Recorder>(
        &self,
        ws: &mut Workspace,
        seed: u64,
        iteration: u64,
        target: Option<(usize, &[PitStop])>,
        mut trace: Option<&mut RaceTrace>,
        rec: &mut R,
    ) {
        let mut cursor = self.setup(ws, seed, iteration, target, trace.as_deref_mut());
        self.run_laps(ws, &mut cursor, self.cur + 1, target, None, rec);
        self.finish(ws);
        if let Some(t) = trace {
            t.neutralised_laps = cursor.neutralised;
        }
    }

    /// Draws everything decided before the first simulated lap (phases, failures, starts) and
    /// resets the dynamic state.
    fn setup(
        &self,
        ws: &mut Workspace,
        seed: u64,
        iteration: u64,
        target: Option<(usize, &[PitStop])>,
        mut trace: Option<&mut RaceTrace>,
    ) -> Cursor {
        let key = stream_key(seed, iteration);
        let mut rng = Xoshiro256pp::seed_from_u64(key);
        let z = Ziggurat::get();
        let p = &self.p;
        let n = self.n;
        let (cur, total) = (self.cur, self.total);

        self.sample_phases(&mut rng, ws, trace.as_deref_mut());

        // Scheduled retirements and the neutralisations they bring out (no draws).
        let laps_left = total - cur;
        let mut retirements = 0;
        let mut retirement_vscs = 0;
        for c in 0..n {
            let lap = self.sched_retire_lap.get(c).copied().unwrap_or(u32::MAX);
            ws.retire_lap[c] = lap;
            if lap == u32::MAX {
                continue;
            }
            retirements += 1;
            let (kind, len) = self.sched_fcy.get(c).copied().unwrap_or((GREEN, 0));
            if kind != GREEN {
                for l in lap..lap.saturating_add(len).min(total + 1) {
                    if let Some(f) = ws.fcy.get_mut(l as usize) {
                        if *f == GREEN || kind == SC {
                            *f = kind;
                        }
                    }
                }
            }
        }
        // Accidents: every sampled SC phase retires one running car on its first lap, drawn by
        // accident weight (one draw per phase, only when enabled).
        if p.safety_car.accident_retires_car {
            for k in 0..ws.sc_starts.len() {
                let start = ws.sc_starts[k];
                let u = rng.uniform();
                let eligible = |c: usize| !self.init_retired[c] && ws.retire_lap[c] > start;
                let total_w: f64 = (0..n)
                    .filter(|&c| eligible(c))
                    .map(|c| self.accident_w[c])
                    .sum();
                if total_w <= 0.0 {
                    continue;
                }
                let mut acc = 0.0;
                let target_w = u * total_w;
                let mut chosen = None;
                for c in (0..n).filter(|&c| eligible(c)) {
                    acc += self.accident_w[c];
                    chosen = Some(c);
                    if target_w < acc {
                        break;
                    }
                }
                if let Some(c) = chosen {
                    if ws.retire_lap[c] == u32::MAX {
                        retirements += 1;
                    }
                    ws.retire_lap[c] = start;
                }
            }
        }
        // Failures (4 draws per car, always, to keep streams aligned).
        let vsc_table = &p.retirements.vsc_length_probabilities;
        for c in 0..n {
            let (u1, u2, u3) = (rng.uniform(), rng.uniform(), rng.uniform());
            let vsc_len = if vsc_table.is_empty() {
                rng.range_inclusive(p.retirements.vsc_min_laps, p.retirements.vsc_max_laps)
            } else {
                pick(vsc_table, rng.uniform()) as u32 + 1
            };
            if ws.retire_lap[c] != u32::MAX {
                continue;
            }
            if !self.init_retired[c] && u1 < self.fail_p[c] {
                let lap = (cur + 1 + (u2 * laps_left as f64) as u32).min(total);
                ws.retire_lap[c] = lap;
                retirements += 1;
                if u3 < p.retirements.vsc_probability {
                    retirement_vscs += 1;
                    for l in (lap + 1)..=lap.saturating_add(vsc_len).min(total) {
                        if let Some(f) = ws.fcy.get_mut(l as usize) {
                            if *f == GREEN {
                                *f = VSC;
                            }
                        }
                    }
                }
            }
        }
        if cur == 0 {
            for c in 0..n {
                ws.start_perf[c] = self.start_mean_s[c] + self.start_sigma_s[c] * rng.normal(z);
            }
        }

        // Initial state.
        ws.rt.copy_from_slice(&self.init_rt);
        ws.age.copy_from_slice(&self.init_age);
        ws.comp.copy_from_slice(&self.init_comp);
        ws.stops.copy_from_slice(&self.init_stops);
        ws.retired.copy_from_slice(&self.init_retired);
        ws.order.clear();
        ws.order.extend_from_slice(&self.init_order);
        ws.retired_list.clear();
        for c in 0..n {
            ws.outlap[c] = false;
            ws.carry_s[c] = 0.0;
            ws.carry_major[c] = false;
            ws.stop_idx[c] = 0;
            ws.next_stop[c] = self.plan_of(c, target).first().map_or(u32::MAX, |s| s.lap);
        }
        let ov = &p.overtaking;
        if cur + 1 >= ov.drs_from_lap {
            Self::drs_flags(ws, ov.drs_window_s, ov.drs_gain_s);
        }

        if let Some(t) = trace {
            t.retirements = retirements;
            t.retirement_vscs = retirement_vscs;
        }
        Cursor {
            rng,
            fuel_kg: self.fuel0_kg,
            neutralised: 0,
            key,
        }
    }

    /// Runs laps `from..=total`, optionally saving the state at the start of every lap.
    fn run_laps<R: Recorder>(
        &self,
        ws: &mut Workspace,
        cursor: &mut Cursor,
        from: u32,
        target: Option<(usize, &[PitStop])>,
        mut snaps: Option<&mut [Snapshot]>,
        rec: &mut R,
    ) {
        let p = &self.p;
        let n = self.n;
        let z = Ziggurat::get();
        let key = cursor.key;
        let mut rng = cursor.rng.clone();
        let mut fuel_kg = cursor.fuel_kg;
        let mut neutralised = cursor.neutralised;
        let base = p.track.base_lap_time_s;
        let inc_p = p.driver.incident_probability_per_lap;
        let inc_mean_s = p.driver.incident_loss_mean_s;
        let ov = &p.overtaking;
        let scp = &p.safety_car;
        for lap in from..=self.total {
            if let Some(sn) = snaps
                .as_deref_mut()
                .and_then(|s| s.get_mut((lap - self.cur - 1) as usize))
            {
                sn.save(ws, rng.clone(), fuel_kg, neutralised, key);
            }
            let status = ws.fcy.get(lap as usize).copied().unwrap_or(GREEN);
            let green = status == GREEN;
            if !green {
                neutralised += 1;
            }
            let drs_on = green
                && lap >= ov.drs_from_lap
                && lap > 1
                && !self.sc_within(ws, lap, ov.drs_sc_delay_laps);
            let fuel_term = fuel_kg * p.fuel.sensitivity_s_per_kg;
            let lane_loss = match status {
                GREEN => p.pit.lane_loss_green_s,
                SC => p.pit.lane_loss_sc_s,
                _ => p.pit.lane_loss_vsc_s,
            };
            let (inlap_loss, outlap_loss) = p.pit.inlap_loss_s(status);
            let split = self.splits_pit_loss;
            let ss_on_outlap = p.pit.standstill_on_outlap;
            let neutral_lt = if status == SC {
                base * scp.sc_lap_time_factor
            } else {
                base * scp.vsc_lap_time_factor
            };
            let age_step = match status {
                GREEN => 1.0,
                SC => scp.tyre_age_factor,
                _ => scp.vsc_tyre_age_factor.unwrap_or(scp.tyre_age_factor),
            };
            let lap1_extra = p.track.first_lap_start_loss_s;
            let cold = p.tyres.outlap_cold_penalty_s;
            let mut any_retired = false;
            {
                // Re-sliced to exactly n so the loop indexes without bounds checks.
                let rt = &ws.rt[..n];
                let new_t = &mut ws.new_t[..n];
                let lt = &mut ws.lt[..n];
                let pitp = &mut ws.pitp[..n];
                let drs = &ws.drs[..n];
                let age = &mut ws.age[..n];
                let comp = &mut ws.comp[..n];
                let outlap = &mut ws.outlap[..n];
                let pitted = &mut ws.pitted[..n];
                let retired = &mut ws.retired[..n];
                let retire_lap = &ws.retire_lap[..n];
                let next_stop = &mut ws.next_stop[..n];
                let sigma = &self.sigma_s[..n];
                let pace = &self.pace_s[..n];
                let deg = &self.deg[..n];
                for c in 0..n {
                    if retired[c] {
                        continue;
                    }
                    let noise = sigma[c] * rng.normal(z);
                    // An incident: u < p happens with probability p, and u / p is then uniform
                    // on (0, 1), so one draw gives both the event and its exponential loss.
                    let incident = if inc_p > 0.0 {
                        let u = rng.uniform();
                        if u < inc_p {
                            -inc_mean_s * (u / inc_p).max(1e-12).ln()
                        } else {
                            0.0
                        }
                    } else {
                        0.0
                    };
                    if retire_lap[c] == lap {
                        retired[c] = true;
                        any_retired = true;
                        continue;
                    }
                    let t = if green {
                        let d = &deg[c][comp[c] as usize % 5];
                        let a = age[c];
                        let mut t =
                            pace[c] + d[0] + a * (d[1] + a * d[2]) + fuel_term + noise + incident;
                        if drs_on {
                            t -= drs[c];
                        }
                        if outlap[c] {
                            t += cold;
                        }
                        if lap == 1 {
                            t += lap1_extra
                                + self.grid_loss_s.get(c).copied().unwrap_or(0.0)
                                + ws.start_perf.get(c).copied().unwrap_or(0.0);
                        }
                        t
                    } else {
                        neutral_lt
                    };
                    lt[c] = t;
                    outlap[c] = false;
                    let mut pit_s = 0.0;
                    let mut in_pit_lane = false;
                    if split {
                        // The out-lap part of the previous lap's stop.
                        pit_s = ws.carry_s[c];
                        in_pit_lane = ws.carry_major[c];
                        ws.carry_s[c] = 0.0;
                        ws.carry_major[c] = false;
                    }
                    if lap == next_stop[c] {
                        let plan = self.plan_of(c, target);
                        let idx = ws.stop_idx.get(c).copied().unwrap_or(0) as usize;
                        let stops = ws.stops.get(c).copied().unwrap_or(0);
                        let standstill = self.standstill_s(key, c, stops);
                        if split {
                            let (now, later) = if ss_on_outlap {
                                (inlap_loss, outlap_loss + standstill)
                            } else {
                                (inlap_loss + standstill, outlap_loss)
                            };
                            pit_s += now;
                            ws.carry_s[c] = later;
                            ws.carry_major[c] = later > now;
                            in_pit_lane = later <= now;
                        } else {
                            pit_s = lane_loss + standstill;
                            in_pit_lane = true;
                        }
                        comp[c] = plan.get(idx).map_or(comp[c], |s| s.compound.index() as u8);
                        age[c] = 0.0;
                        if let Some(s) = ws.stops.get_mut(c) {
                            *s += 1;
                        }
                        if let Some(s) = ws.stop_idx.get_mut(c) {
                            *s += 1;
                        }
                        next_stop[c] = plan.get(idx + 1).map_or(u32::MAX, |s| s.lap);
                        outlap[c] = true;
                    } else {
                        age[c] += age_step;
                    }
                    pitted[c] = in_pit_lane;
                    pitp[c] = pit_s;
                    new_t[c] = rt[c] + t + pit_s;
                }
            }
            if any_retired {
                let retired = &ws.retired;
                let list = &mut ws.retired_list;
                ws.order.retain(|&c| {
                    if retired[c as usize] {
                        list.push(c);
                        false
                    } else {
                        true
                    }
                });
            }
            // SC: the field bunches behind the car ahead (pit time added on top).
            if status == SC {
                let mut prev: Option<(f64, f64)> = None; // (old rt, base new time) of car ahead
                let g = scp.sc_gap_s;
                let keep = 1.0 - scp.bunch_fraction_per_lap;
                for &c in ws.order.iter() {
                    let c = c as usize;
                    let old = ws.rt[c];
                    let b = match prev {
                        None => old + ws.lt[c],
                        Some((old_a, base_a)) => {
                            let gap = old - old_a;
                            let new_gap = if gap > g {
                                g + (gap - g) * keep
                            } else {
                                gap.max(0.0)
                            };
                            base_a + new_gap
                        }
                    };
                    prev = Some((old, b));
                    ws.new_t[c] = b + ws.pitp[c];
                }
            }
            // Interactions: insertion pass in running order.
            let hold = if status == SC {
                scp.sc_gap_s
            } else {
                ov.hold_gap_s
            };
            if green && ov.pass_rule == PassRule::RaceTime {
                self.pass_race_time(ws);
            } else {
                let new_t = &mut ws.new_t[..n];
                let lt = &ws.lt[..n];
                let pitted = &ws.pitted[..n];
                let vmax = &self.top_speed_kmh[..n];
                let coeff = ov.top_speed_coeff_s_per_kmh;
                let order = &mut ws.order[..];
                for k in 1..order.len() {
                    let mut j = k;
                    while j > 0 {
                        let f = order[j] as usize;
                        let a = order[j - 1] as usize;
                        let (tf, ta) = (new_t[f], new_t[a]);
                        // Common case, branch-free: no pit-lane mix and no pass possible, so the
                        // follower is either clear or held `hold` behind.
                        let thr = ov.threshold_s + coeff * (vmax[f] - vmax[a]);
                        let can_pass = green && lt[a] - lt[f] >= thr;
                        if pitted[f] == pitted[a] && !can_pass {
                            new_t[f] = tf.max(ta + hold);
                            break;
                        }
                        if tf >= ta + hold {
                            break;
                        }
                        if pitted[f] != pitted[a] {
                            if tf < ta {
                                order.swap(j - 1, j);
                                j -= 1;
                                continue;
                            }
                            break;
                        }
                        if tf >= ta {
                            new_t[f] = ta + hold;
                            break;
                        }
                        if can_pass {
                            new_t[f] = tf + ov.duel_penalty_s;
                            new_t[a] = ta + ov.duel_penalty_s;
                            order.swap(j - 1, j);
                            j -= 1;
                            continue;
                        }
                        new_t[f] = ta + hold;
                        break;
                    }
                }
            }
            if R::ACTIVE {
                self.record(ws, lap, !green, rec);
            }
            // New race times become current (retired cars' entries are stale and never read).
            std::mem::swap(&mut ws.rt, &mut ws.new_t);
            if lap + 1 >= ov.drs_from_lap {
                Self::drs_flags(ws, ov.drs_window_s, ov.drs_gain_s);
            }
            let burn = match status {
                GREEN => 1.0,
                SC => scp.fuel_use_factor,
                _ => scp.vsc_fuel_use_factor.unwrap_or(scp.fuel_use_factor),
            };
            fuel_kg = (fuel_kg - p.fuel.consumption_kg_per_lap * burn).max(0.0);
        }
        cursor.rng = rng;
        cursor.fuel_kg = fuel_kg;
        cursor.neutralised = neutralised;
    }

    /// TUMFTM's pass rule on a green lap (see [`PassRule::RaceTime`]): sweeps the running order
    /// front to back until no position changes (at most 20 sweeps).
    fn pass_race_time(&self, ws: &mut Workspace) {
        let n = self.n;
        let ov = &self.p.overtaking;
        let hold = ov.hold_gap_s;
        let new_t = &mut ws.new_t[..n];
        let pitted = &ws.pitted[..n];
        let vmax = &self.top_speed_kmh[..n];
        let duel = &mut ws.duel[..n];
        duel.iter_mut().for_each(|d| *d = false);
        let order = &mut ws.order[..];
        // Sweeps after the first only revisit the pairs around what changed: a pair whose two
        // cars did not change since it was last checked gives the same answer again. `from` is
        // the pair in front of the first change of the last sweep, `until` the pair behind its
        // last change; the window grows while the current sweep keeps changing things.
        let mut from = 1;
        let mut until = usize::MAX;
        for _sweep in 0..20 {
            let mut first_swap = usize::MAX;
            let mut last_change = 0;
            let mut k = from;
            while k < order.len() {
                if k > until && k > last_change + 1 {
                    break;
                }
                let f = order[k] as usize;
                let a = order[k - 1] as usize;
                let (tf, ta) = (new_t[f], new_t[a]);
                if pitted[f] != pitted[a] {
                    // One of the two is in the pit lane: no fight, the quicker race time leads.
                    if tf < ta {
                        order.swap(k - 1, k);
                        first_swap = first_swap.min(k);
                        last_change = k;
                    }
                    k += 1;
                    continue;
                }
                if tf >= ta + hold {
                    k += 1;
                    continue;
                }
                last_change = k;
                if !duel[a] {
                    new_t[a] += ov.duel_penalty_s;
                    duel[a] = true;
                }
                if !duel[f] {
                    new_t[f] += ov.duel_penalty_s;
                    duel[f] = true;
                }
                let thr = ov.threshold_s + ov.top_speed_coeff_s_per_kmh * (vmax[f] - vmax[a]);
                if new_t[a] - new_t[f] >= thr {
                    order.swap(k - 1, k);
                    new_t[a] += ov.loser_penalty_s;
                    first_swap = first_swap.min(k);
                } else if new_t[f] < new_t[a] + hold {
                    new_t[f] = new_t[a] + hold;
                }
                k += 1;
            }
            if first_swap == usize::MAX {
                break;
            }
            from = first_swap.saturating_sub(1).max(1);
            until = last_change + 1;
        }
    }

    /// True when a lap among the `delay` laps before `lap` ran under the safety car.
    #[inline]
    fn sc_within(&self, ws: &Workspace, lap: u32, delay: u32) -> bool {
        (1..=delay).any(|d| {
            if d >= lap {
                return false;
            }
            let l = lap - d;
            if l <= self.cur {
                self.initial_fcy.0 == SC && l == self.cur
            } else {
                ws.fcy.get(l as usize).copied() == Some(SC)
            }
        })
    }

    /// Classifies the cars retired before the simulation last.
    fn finish(&self, ws: &mut Workspace) {
        ws.retired_list.reverse();
        for (c, &r) in self.init_retired.iter().enumerate() {
            if r {
                ws.retired_list.push(c as u16);
            }
        }
    }

    /// DRS gain per car for the next lap from the current race times and order.
    #[inline]
    fn drs_flags(ws: &mut Workspace, window_s: f64, gain_s: f64) {
        let rt = &ws.rt;
        let drs = &mut ws.drs;
        let mut prev_t = f64::NEG_INFINITY;
        for &c in ws.order.iter() {
            let c = c as usize;
            let t = rt.get(c).copied().unwrap_or(0.0);
            if let Some(d) = drs.get_mut(c) {
                *d = if t - prev_t <= window_s { gain_s } else { 0.0 };
            }
            prev_t = t;
        }
    }

    /// Reports every running car's lap (as driven: new race time minus old) before the race
    /// times are updated.
    fn record<R: Recorder>(&self, ws: &Workspace, lap: u32, yellow: bool, rec: &mut R) {
        for (k, &c) in ws.order.iter().enumerate() {
            let c = c as usize;
            rec.lap(
                c,
                lap,
                ws.new_t[c] - ws.rt[c],
                ws.pitted[c],
                yellow,
                k as u32 + 1,
                ws.new_t[c],
            );
        }
    }

    /// Finishing position (1-based) of every car, by car index, into `out`.
    pub(crate) fn positions(ws: &Workspace, out: &mut [u16]) {
        for (k, &c) in ws.order.iter().chain(ws.retired_list.iter()).enumerate() {
            if let Some(o) = out.get_mut(c as usize) {
                *o = k as u16 + 1;
            }
        }
    }

    /// Finishing position of one car (1-based) and its race time (NaN when retired).
    #[inline]
    pub(crate) fn position_of(ws: &Workspace, car: usize) -> (u16, f64) {
        if let Some(k) = ws.order.iter().position(|&c| c as usize == car) {
            return (k as u16 + 1, ws.rt.get(car).copied().unwrap_or(f64::NAN));
        }
        let base = ws.order.len();
        let k = ws
            .retired_list
            .iter()
            .position(|&c| c as usize == car)
            .unwrap_or(0);
        ((base + k) as u16 + 1, f64::NAN)
    }
}

/// Index drawn from non-negative weights by `x` in `[0, sum of weights)`.
#[inline]
fn pick_weighted(weights: &[f64], x: f64) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if x < acc {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

/// Index drawn from a probability table by one uniform.
#[inline]
fn pick(table: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, p) in table.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    table.len().saturating_sub(1)
}
