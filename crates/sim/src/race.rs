//! The race: configuration, drivers, the time-stepped simulation and its ground truth.

use crate::rng::SimRng;
use crate::tracks::Track;
use crate::vehicle::{CarParams, Corner, LapInputs, LapPlan, PlanPoint, TrackModel};
use crate::SimError;
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

/// Default car numbers; car `i` gets `DEFAULT_NUMBERS[i]` (or `100 + i` past the list).
const DEFAULT_NUMBERS: [u32; 30] = [
    2, 3, 5, 7, 8, 11, 13, 14, 16, 18, 21, 22, 24, 27, 31, 33, 38, 41, 46, 47, 50, 55, 57, 63, 72,
    77, 80, 86, 88, 93,
];
/// Rolling start: speed at the line and spacing between cars.
const ROLLING_START_MPS: f64 = 100.0 / 3.6;
const ROLLING_GAP_S: f64 = 0.6;
/// Safety car: speed factor, and the gap each car closes up to behind the car ahead.
const SAFETY_CAR_PACE: f64 = 0.6;
const SAFETY_CAR_GAP_S: f64 = 0.9;
/// Pit lane: speed limit, length before and after the line, standstill.
const PIT_SPEED_MPS: f64 = 80.0 / 3.6;
const PIT_IN_M: f64 = 300.0;
const PIT_OUT_M: f64 = 200.0;
const PIT_STOP_S: f64 = 8.0;
/// Fuel burn allowance per lap used to fuel cars at the start, kg per km (plus 3 kg reserve).
const FUEL_PLAN_KG_PER_KM: f64 = 0.25;
/// Fuel tank capacity, kg (50 l).
const TANK_KG: f64 = 37.0;

/// A change of habit from some lap on, for one corner or all of them.
///
/// Each `Some` value replaces the driver's base value while the change applies (later entries
/// win). `brake_bias_front` is a car setting and applies to the whole lap whatever `corner` is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HabitChange {
    /// Corner number as in [`Race::corners`] (1-based); `None` = every corner.
    pub corner: Option<usize>,
    /// First lap it applies to.
    pub from_lap: u32,
    /// Last lap it applies to (inclusive); `None` = to the end.
    pub to_lap: Option<u32>,
    /// Brake point offset, metres (+ = brakes later).
    pub brake_point_offset_m: Option<f64>,
    /// Throttle pickup delay after the apex, seconds.
    pub throttle_delay_s: Option<f64>,
    /// Front brake bias, share (0.5-0.75 typical).
    pub brake_bias_front: Option<f64>,
}

/// When a car stops for tyres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PitPlan {
    /// Around mid-race (half distance ± 2 laps, drawn from the seed).
    Auto,
    /// At the end of this lap.
    Lap(u32),
    /// No stop.
    NoStop,
}

/// One driver and their car.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// Car number (the `vehicle_number`).
    pub number: u32,
    /// Pace relative to the reference driver, seconds per lap (+ = slower).
    pub pace_offset_s: f64,
    /// Lap-time noise, standard deviation in seconds (0.3-0.6 typical).
    pub lap_sigma_s: f64,
    /// Base brake point offset at every corner, metres (+ = later).
    pub brake_point_offset_m: f64,
    /// Base throttle pickup delay after each apex, seconds.
    pub throttle_delay_s: f64,
    /// Base front brake bias, share.
    pub brake_bias_front: f64,
    /// Changes of habit by lap and corner.
    pub habit_changes: Vec<HabitChange>,
    /// Pit stop plan.
    pub pit: PitPlan,
}

impl DriverConfig {
    /// A neutral driver: reference pace, 0.4 s noise, no habits, 60 % front bias, auto stop.
    pub fn neutral(number: u32) -> Self {
        DriverConfig {
            number,
            pace_offset_s: 0.0,
            lap_sigma_s: 0.4,
            brake_point_offset_m: 0.0,
            throttle_delay_s: 0.0,
            brake_bias_front: 0.6,
            habit_changes: Vec::new(),
            pit: PitPlan::Auto,
        }
    }

    /// The driver the simulator generates for car `index` from `seed`: pace 0-0.8 s, noise
    /// 0.3-0.6 s, brake offset ±3 m, throttle delay 0-0.15 s, bias 0.56-0.64.
    pub fn generated(seed: u64, index: usize) -> Self {
        let mut r = SimRng::new(seed, 1000 + index as u64);
        DriverConfig {
            number: DEFAULT_NUMBERS
                .get(index)
                .copied()
                .unwrap_or(100 + index as u32),
            pace_offset_s: r.range(0.0, 0.8),
            lap_sigma_s: r.range(0.3, 0.6),
            brake_point_offset_m: r.range(-3.0, 3.0),
            throttle_delay_s: r.range(0.0, 0.15),
            brake_bias_front: r.range(0.56, 0.64),
            habit_changes: Vec::new(),
            pit: PitPlan::Auto,
        }
    }
}

/// How safety cars are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum SafetyCarMode {
    /// Drawn from the seed: 0-3 periods (probabilities 0.45/0.41/0.10/0.04), 1-3 laps each.
    Random,
    /// None at all.
    Off,
    /// These laps (of each car) are run behind the safety car.
    Laps(Vec<u32>),
}

/// Everything that defines a race. Same config → identical output.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceConfig {
    /// Track name, case-insensitive (see [`Track::names`]).
    pub track: String,
    /// Number of cars (1-99), default 20.
    pub cars: usize,
    /// Race length in laps (1-500).
    pub laps: u32,
    /// Random seed.
    pub seed: u64,
    /// Samples per second per car, 20-60, default 50.
    pub hz: f64,
    /// Drivers of cars 0.. (missing ones are [`DriverConfig::generated`]).
    pub drivers: Vec<DriverConfig>,
    /// Safety cars.
    pub safety_car: SafetyCarMode,
    /// Session id; default `sim-<track>-<seed>`.
    pub session_id: Option<String>,
    /// Air temperature, °C.
    pub air_temp_c: f64,
    /// Track temperature at the start, °C (rises 1 °C per hour).
    pub track_temp_c: f64,
    /// Fuel at the start, kg; default enough for the race plus 3 kg, at most a 37 kg tank.
    pub start_fuel_kg: Option<f64>,
    /// Car physics.
    pub car: CarParams,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            track: "Austin".into(),
            cars: 20,
            laps: 10,
            seed: 0,
            hz: 50.0,
            drivers: Vec::new(),
            safety_car: SafetyCarMode::Random,
            session_id: None,
            air_temp_c: 27.0,
            track_temp_c: 38.0,
            start_fuel_kg: None,
            car: CarParams::default(),
        }
    }
}

impl RaceConfig {
    /// A default config for `track`, `laps` and `seed` (20 cars, 50 Hz, random safety cars).
    pub fn new(track: &str, laps: u32, seed: u64) -> Self {
        RaceConfig {
            track: track.into(),
            laps,
            seed,
            ..RaceConfig::default()
        }
    }

    /// Fills `drivers` up to `cars` with the generated drivers, so a caller can then edit one
    /// (e.g. `cfg.drivers[3].habit_changes.push(..)`) and keep the others as the seed made them.
    pub fn with_generated_drivers(mut self) -> Self {
        for i in self.drivers.len()..self.cars {
            self.drivers.push(DriverConfig::generated(self.seed, i));
        }
        self
    }
}

/// Ground truth of one completed lap of one car.
#[derive(Debug, Clone, PartialEq)]
pub struct LapTruth {
    pub car_id: Arc<str>,
    /// Index of the car in the config (0-based).
    pub car_index: usize,
    pub lap: u32,
    /// Session time at which the lap started, s.
    pub start_t_s: f64,
    pub lap_time_s: f64,
    pub sector_times_s: [f64; 3],
    pub wear_start_pct: Corners<f64>,
    pub wear_end_pct: Corners<f64>,
    /// The car stopped for tyres at the end of this lap (in-lap; `wear_end_pct` is after the
    /// change).
    pub pitted: bool,
    /// The lap was run behind the safety car.
    pub safety_car: bool,
    pub fuel_start_kg: f64,
    pub fuel_end_kg: f64,
    /// Tyre age at the start of the lap, laps.
    pub tyre_age_laps: u16,
    /// Race position when the lap was completed.
    pub position: u8,
}

/// One car in the running order.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub car_id: Arc<str>,
    pub car_index: usize,
    pub position: u8,
    pub laps_completed: u32,
    pub lap_dist_m: f64,
    /// Time behind the leader at the last line crossing (whole laps count as lap time), s.
    pub gap_to_leader_s: f64,
    pub last_lap_s: Option<f64>,
    pub pit_stops: u32,
    pub finished: bool,
}

/// All output of a race run to the end.
#[derive(Debug, Clone)]
pub struct RaceOutput {
    pub samples: Vec<Sample>,
    pub laps: Vec<LapTruth>,
}

#[derive(Debug, Clone)]
struct Car {
    id: Arc<str>,
    driver: DriverConfig,
    mu_scale: f64,
    rng: SimRng,
    /// Current lap (0 = before the line at the rolling start).
    lap: u32,
    lap_start_t: f64,
    plan: LapPlan,
    cursor: usize,
    plan_sc: bool,
    plan_pit: bool,
    pit_lap: Option<u32>,
    wear_pct: [f64; 4],
    fuel_kg: f64,
    tyre_age: u16,
    tyre_age_lap_start: u16,
    pit_stops: u32,
    finished: bool,
    finish_order: usize,
    crossings: Vec<f64>,
    last_lap_s: Option<f64>,
    // Current interpolated state.
    s_m: f64,
    position: u8,
}

/// A race in progress. Step it tick by tick ([`Race::step`]), iterate its samples, or run it to
/// the end ([`Race::run_to_end`], [`simulate`]).
#[derive(Debug, Clone)]
pub struct Race {
    cfg: RaceConfig,
    track: Track,
    model: TrackModel,
    cars: Vec<Car>,
    tick: u64,
    dt_s: f64,
    sc_laps: Vec<u32>,
    laps: Vec<LapTruth>,
    session: Arc<str>,
    track_name: Arc<str>,
    compound: Arc<str>,
    flag_at: Option<f64>,
    finishers: usize,
    order: Vec<usize>,
    buffer: std::collections::VecDeque<Sample>,
}

fn draw_safety_cars(seed: u64, laps: u32) -> Vec<u32> {
    let mut r = SimRng::new(seed, 7);
    let u = r.uniform();
    let count = if u < 0.455 {
        0
    } else if u < 0.868 {
        1
    } else if u < 0.967 {
        2
    } else {
        3
    };
    let mut out: Vec<u32> = Vec::new();
    if laps < 4 {
        return out;
    }
    for _ in 0..count {
        let start = r.int_in(2, laps as i64 - 1) as u32;
        let len = r.int_in(1, 3) as u32;
        for l in start..(start + len).min(laps) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
    out.sort_unstable();
    out
}

impl Race {
    /// Builds a race. Errors on an unknown track or an out-of-range value.
    pub fn new(cfg: RaceConfig) -> Result<Race, SimError> {
        if !(20.0..=60.0).contains(&cfg.hz) {
            return Err(SimError::Config(format!("hz {} not in 20..=60", cfg.hz)));
        }
        if cfg.cars == 0 || cfg.cars > 99 {
            return Err(SimError::Config(format!("cars {} not in 1..=99", cfg.cars)));
        }
        if cfg.laps == 0 || cfg.laps > 500 {
            return Err(SimError::Config(format!(
                "laps {} not in 1..=500",
                cfg.laps
            )));
        }
        let c = &cfg.car;
        let car_ok = c.mu > 0.3
            && c.mu < 3.0
            && c.mass_kg >= 300.0
            && c.mass_kg < 5000.0
            && c.power_w > 1000.0
            && c.power_w < 2.0e6
            && c.wheel_radius_m > 0.1
            && c.gear_ratios.iter().all(|g| *g > 0.1)
            && c.final_drive > 0.5
            && c.drivetrain_eff > 0.1
            && c.drivetrain_eff <= 1.0;
        if !car_ok {
            return Err(SimError::Config("car parameters out of range".into()));
        }
        // Within what telemetry::validate accepts, with room for the 1 °C/h track warm-up.
        if !(-40.0..=60.0).contains(&cfg.air_temp_c) || !(-40.0..=80.0).contains(&cfg.track_temp_c)
        {
            return Err(SimError::Config(
                "air or track temperature out of range".into(),
            ));
        }
        if cfg.start_fuel_kg.is_some_and(|f| !f.is_finite()) {
            return Err(SimError::Config("start_fuel_kg is not finite".into()));
        }
        let track = Track::by_name(&cfg.track)?;
        let model = TrackModel::new(&track, cfg.car.clone());
        let lap_km = track.length_m() / 1000.0;
        let start_fuel = cfg
            .start_fuel_kg
            .unwrap_or(FUEL_PLAN_KG_PER_KM * lap_km * cfg.laps as f64 + 3.0)
            .clamp(0.5, TANK_KG);
        let sc_laps = match &cfg.safety_car {
            SafetyCarMode::Random => draw_safety_cars(cfg.seed, cfg.laps),
            SafetyCarMode::Off => Vec::new(),
            SafetyCarMode::Laps(v) => v.clone(),
        };
        let mut cars = Vec::with_capacity(cfg.cars);
        for i in 0..cfg.cars {
            let driver = cfg
                .drivers
                .get(i)
                .cloned()
                .unwrap_or_else(|| DriverConfig::generated(cfg.seed, i));
            let mut rng = SimRng::new(cfg.seed, 2000 + i as u64);
            let pit_lap = match driver.pit {
                PitPlan::Auto if cfg.laps >= 6 => {
                    let mid = (cfg.laps / 2) as i64;
                    Some(rng.int_in(mid - 2, mid + 2).clamp(2, cfg.laps as i64 - 2) as u32)
                }
                PitPlan::Auto | PitPlan::NoStop => None,
                PitPlan::Lap(l) if l >= 1 && l < cfg.laps => Some(l),
                PitPlan::Lap(_) => None,
            };
            // Lap time ~ 1/sqrt(mu): +x s needs mu x (1 - 2 x / T).
            let pace = if driver.pace_offset_s.is_finite() {
                driver.pace_offset_s
            } else {
                0.0
            };
            let mu_scale = (1.0 - 2.0 * pace / model.ref_lap_s.max(10.0)).clamp(0.7, 1.1);
            let id: Arc<str> = format!("GR86-{:03}-{}", i + 1, driver.number).into();
            let wear = [0.0; 4];
            let d_before = ROLLING_START_MPS * ROLLING_GAP_S * i as f64;
            let l = track.length_m();
            let plan = LapPlan::constant(l - d_before, l, ROLLING_START_MPS, wear, start_fuel);
            cars.push(Car {
                id,
                driver,
                mu_scale,
                rng,
                lap: 0,
                lap_start_t: 0.0,
                plan,
                cursor: 0,
                plan_sc: false,
                plan_pit: false,
                pit_lap,
                wear_pct: wear,
                fuel_kg: start_fuel,
                tyre_age: 0,
                tyre_age_lap_start: 0,
                pit_stops: 0,
                finished: false,
                finish_order: 0,
                crossings: Vec::new(),
                last_lap_s: None,
                s_m: l - d_before,
                position: (i + 1).min(255) as u8,
            });
        }
        let session: Arc<str> = cfg
            .session_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| format!("sim-{}-{}", track.name(), cfg.seed))
            .into();
        let order = (0..cfg.cars).collect();
        Ok(Race {
            dt_s: 1.0 / cfg.hz,
            track_name: track.name().into(),
            compound: "road".into(),
            cfg,
            track,
            model,
            cars,
            tick: 0,
            sc_laps,
            laps: Vec::new(),
            session,
            flag_at: None,
            finishers: 0,
            order,
            buffer: std::collections::VecDeque::new(),
        })
    }

    /// The track.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// The config the race was built from.
    pub fn config(&self) -> &RaceConfig {
        &self.cfg
    }

    /// Corners found on this track (numbering used by [`HabitChange::corner`]).
    pub fn corners(&self) -> &[Corner] {
        &self.model.corners
    }

    /// Flying-lap time of the reference driver with new tyres and 20 kg of fuel, s.
    pub fn reference_lap_time_s(&self) -> f64 {
        self.model.ref_lap_s
    }

    /// Laps run behind the safety car.
    pub fn safety_car_laps(&self) -> &[u32] {
        &self.sc_laps
    }

    /// Car ids, in config order (`GR86-<chassis 001..>-<car number>`).
    pub fn car_ids(&self) -> Vec<Arc<str>> {
        self.cars.iter().map(|c| c.id.clone()).collect()
    }

    /// The lap on which car `index` plans to pit (`None` = no stop).
    pub fn pit_lap(&self, index: usize) -> Option<u32> {
        self.cars.get(index).and_then(|c| c.pit_lap)
    }

    /// Session time of the next tick, s.
    pub fn time_s(&self) -> f64 {
        self.tick as f64 * self.dt_s
    }

    /// Seconds between ticks.
    pub fn tick_s(&self) -> f64 {
        self.dt_s
    }

    /// True once every car has taken the chequered flag.
    pub fn is_finished(&self) -> bool {
        self.cars.iter().all(|c| c.finished)
    }

    /// Ground truth of every lap completed so far, in completion order.
    pub fn lap_truths(&self) -> &[LapTruth] {
        &self.laps
    }

    /// The running order now.
    pub fn standings(&self) -> Vec<Standing> {
        let leader = self.order.first().copied().unwrap_or(0);
        self.order
            .iter()
            .map(|&i| {
                let c = &self.cars[i];
                let done = c.crossings.len();
                let gap = match (
                    c.crossings.last(),
                    self.cars[leader].crossings.get(done.saturating_sub(1)),
                ) {
                    (Some(a), Some(b)) if done > 0 => (a - b).max(0.0),
                    _ => 0.0,
                };
                Standing {
                    car_id: c.id.clone(),
                    car_index: i,
                    position: c.position,
                    laps_completed: c.lap.saturating_sub(1) + u32::from(c.finished),
                    lap_dist_m: c.s_m,
                    gap_to_leader_s: gap,
                    last_lap_s: c.last_lap_s,
                    pit_stops: c.pit_stops,
                    finished: c.finished,
                }
            })
            .collect()
    }

    fn habits_for(&self, d: &DriverConfig, lap: u32) -> (Vec<f64>, f64, f64) {
        let nc = self.model.corners.len();
        let mut offs = vec![d.brake_point_offset_m; nc];
        let mut delay = d.throttle_delay_s;
        let mut bias = d.brake_bias_front;
        for h in &d.habit_changes {
            if lap < h.from_lap || h.to_lap.is_some_and(|t| lap > t) {
                continue;
            }
            if let Some(o) = h.brake_point_offset_m.filter(|x| x.is_finite()) {
                match h.corner {
                    Some(c) => {
                        if let Some(slot) = c.checked_sub(1).and_then(|k| offs.get_mut(k)) {
                            *slot = o;
                        }
                    }
                    None => offs.iter_mut().for_each(|x| *x = o),
                }
            }
            if let Some(t) = h.throttle_delay_s.filter(|x| x.is_finite()) {
                delay = t.clamp(0.0, 3.0);
            }
            if let Some(b) = h.brake_bias_front.filter(|x| x.is_finite()) {
                bias = b;
            }
        }
        let delay = if delay.is_finite() {
            delay.clamp(0.0, 3.0)
        } else {
            0.0
        };
        let bias = if bias.is_finite() { bias } else { 0.6 };
        (offs, delay, bias)
    }

    /// Plans lap `lap` of car `i`, starting at session time `start_t`.
    fn plan_next(&mut self, i: usize, lap: u32, start_t: f64, v_start: f64) {
        let sc = self.sc_laps.contains(&lap);
        let prev_pit = self.cars[i].plan_pit;
        let (offs, delay, bias) = self.habits_for(&self.cars[i].driver, lap);
        let car = &mut self.cars[i];
        let pit_now = car.pit_lap == Some(lap);
        let sigma = if car.driver.lap_sigma_s.is_finite() {
            car.driver.lap_sigma_s.clamp(0.0, 5.0)
        } else {
            0.0
        };
        let noise = car.rng.normal() * sigma / self.model.ref_lap_s.max(10.0);
        let mut scale = 1.0 / (1.0 + noise).max(0.5);
        if sc {
            scale *= SAFETY_CAR_PACE;
        }
        let mu = self.model.car.mu_with_wear(car.wear_pct) * car.mu_scale;
        let l = self.track.length_m();
        let inp = LapInputs {
            mu,
            v_start_mps: v_start,
            brake_offset_m: offs,
            throttle_delay_s: delay,
            brake_bias_front: bias,
            speed_scale: scale,
            pit_in_from_m: pit_now.then_some(l - PIT_IN_M),
            pit_out_to_m: prev_pit.then_some(PIT_OUT_M),
            pit_speed_mps: PIT_SPEED_MPS,
            stop_s: PIT_STOP_S,
            wear_start_pct: car.wear_pct,
            fuel_start_kg: car.fuel_kg,
        };
        let mut plan = self.model.plan_lap(&inp);
        if sc {
            // Close up behind the car ahead if it is on the same lap.
            let pos = car.position as usize;
            let ahead = if pos >= 2 {
                self.order.get(pos - 2).copied()
            } else {
                None
            };
            if let Some(a) = ahead {
                let ac = &self.cars[a];
                if ac.lap == lap && !ac.finished {
                    let target_end = ac.lap_start_t + ac.plan.duration_s() + SAFETY_CAR_GAP_S;
                    let fastest = plan.duration_s() * SAFETY_CAR_PACE / 0.95;
                    let target = (target_end - start_t).clamp(fastest, plan.duration_s() * 1.2);
                    plan = self.model.stretch(&inp, &plan, target);
                }
            }
        }
        let car = &mut self.cars[i];
        car.plan = plan;
        car.cursor = 0;
        car.lap = lap;
        car.lap_start_t = start_t;
        car.plan_sc = sc;
        car.plan_pit = pit_now;
        car.tyre_age_lap_start = car.tyre_age;
    }

    fn complete_lap(&mut self, i: usize) {
        let [b1, b2] = self.track.sector_boundaries_m();
        let car = &mut self.cars[i];
        let end_t = car.lap_start_t + car.plan.duration_s();
        let last = car.plan.points.last().copied().unwrap_or_default();
        let first = car.plan.points.first().copied().unwrap_or_default();
        let v_end = last.v_mps;
        if car.lap >= 1 {
            let t1 = car.plan.time_at_s(b1);
            let t2 = car.plan.time_at_s(b2);
            let d = car.plan.duration_s();
            car.last_lap_s = Some(d);
            self.laps.push(LapTruth {
                car_id: car.id.clone(),
                car_index: i,
                lap: car.lap,
                start_t_s: car.lap_start_t,
                lap_time_s: d,
                sector_times_s: [t1, t2 - t1, d - t2],
                wear_start_pct: Corners::from_array(first.wear_pct),
                wear_end_pct: Corners::from_array(last.wear_pct),
                pitted: car.plan_pit,
                safety_car: car.plan_sc,
                fuel_start_kg: first.fuel_kg,
                fuel_end_kg: last.fuel_kg,
                tyre_age_laps: car.tyre_age_lap_start,
                position: car.position,
            });
            car.tyre_age = car.tyre_age.saturating_add(1);
        }
        car.wear_pct = last.wear_pct;
        car.fuel_kg = last.fuel_kg;
        if car.plan_pit {
            car.tyre_age = 0;
            car.pit_stops += 1;
        }
        car.crossings.push(end_t);
        let completed = car.lap;
        // Chequered flag: the leader completes the distance; others finish on their next pass.
        if completed >= self.cfg.laps || self.flag_at.is_some_and(|f| end_t >= f) {
            if self.flag_at.is_none() {
                self.flag_at = Some(end_t);
            }
            car.finished = true;
            self.finishers += 1;
            car.finish_order = self.finishers;
            car.s_m = 0.0;
            return;
        }
        self.plan_next(i, completed + 1, end_t, v_end);
    }

    fn interpolate(&mut self, i: usize, tau: f64) -> PlanPoint {
        let car = &mut self.cars[i];
        let pts = &car.plan.points;
        if pts.is_empty() {
            return PlanPoint::default();
        }
        let mut k = car.cursor.min(pts.len() - 1);
        while k + 1 < pts.len() && pts[k + 1].t_s <= tau {
            k += 1;
        }
        car.cursor = k;
        let a = pts[k];
        let Some(b) = pts.get(k + 1).copied() else {
            return a;
        };
        let span = b.t_s - a.t_s;
        let f = if span > 1e-9 {
            ((tau - a.t_s) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let lerp = |x: f64, y: f64| x + f * (y - x);
        let mut wear = a.wear_pct;
        for (j, w) in wear.iter_mut().enumerate() {
            *w = lerp(a.wear_pct[j], b.wear_pct[j]);
        }
        PlanPoint {
            s_m: lerp(a.s_m, b.s_m),
            t_s: tau,
            v_mps: lerp(a.v_mps, b.v_mps),
            ax_g: lerp(a.ax_g, b.ax_g),
            ay_g: lerp(a.ay_g, b.ay_g),
            throttle_pct: lerp(a.throttle_pct, b.throttle_pct),
            brake_f_bar: lerp(a.brake_f_bar, b.brake_f_bar),
            brake_r_bar: lerp(a.brake_r_bar, b.brake_r_bar),
            steer_deg: lerp(a.steer_deg, b.steer_deg),
            wear_pct: wear,
            fuel_kg: lerp(a.fuel_kg, b.fuel_kg),
            pit: if f < 0.5 { a.pit } else { b.pit },
            new_tyres: if f < 0.5 { a.new_tyres } else { b.new_tyres },
        }
    }

    fn advance(&mut self, emit: Option<&mut Vec<Sample>>) -> bool {
        if self.is_finished() {
            return false;
        }
        let t = self.tick as f64 * self.dt_s;
        self.tick += 1;
        let n = self.cars.len();
        let mut states: Vec<Option<PlanPoint>> = vec![None; n];
        for (i, st) in states.iter_mut().enumerate() {
            let mut guard = 0;
            while !self.cars[i].finished
                && t - self.cars[i].lap_start_t >= self.cars[i].plan.duration_s()
                && guard < 4
            {
                self.complete_lap(i);
                guard += 1;
            }
            if self.cars[i].finished {
                continue;
            }
            let tau = t - self.cars[i].lap_start_t;
            let p = self.interpolate(i, tau);
            self.cars[i].s_m = p.s_m;
            *st = Some(p);
        }
        // Running order: finished cars by finishing order, then by distance covered.
        let mut order: Vec<usize> = (0..n).collect();
        let key = |c: &Car| -> (i64, f64) {
            if c.finished {
                (i64::MAX - c.finish_order as i64, 0.0)
            } else {
                (c.lap as i64, c.s_m)
            }
        };
        order.sort_by(|&a, &b| {
            let (ka, kb) = (key(&self.cars[a]), key(&self.cars[b]));
            kb.0.cmp(&ka.0)
                .then(kb.1.partial_cmp(&ka.1).unwrap_or(std::cmp::Ordering::Equal))
                .then(a.cmp(&b))
        });
        for (p, &i) in order.iter().enumerate() {
            self.cars[i].position = (p + 1).min(255) as u8;
        }
        self.order = order;
        if let Some(out) = emit {
            let track_temp = self.cfg.track_temp_c + t / 3600.0;
            for (i, st) in states.iter().enumerate() {
                if let Some(p) = st {
                    out.push(self.sample(i, t, p, track_temp));
                }
            }
        }
        true
    }

    fn sample(&self, i: usize, t: f64, p: &PlanPoint, track_temp: f64) -> Sample {
        let c = &self.cars[i];
        let l = self.track.length_m();
        let s = p.s_m.rem_euclid(l);
        let s = if s.is_finite() { s } else { 0.0 };
        let (lat, lon) = self.track.lat_lon_at(s);
        let (gear, rpm) = self.model.car.gear_rpm(p.v_mps);
        let mut out = Sample::new(self.session.clone(), c.id.clone(), t);
        out.track = Some(self.track_name.clone());
        out.lap = Some(c.lap);
        out.lap_dist_m = Some(s);
        out.speed_kmh = Some((p.v_mps * 3.6).clamp(0.0, 499.0));
        out.accx_g = Some(p.ax_g.clamp(-5.9, 5.9));
        out.accy_g = Some(p.ay_g.clamp(-5.9, 5.9));
        out.brake_front_bar = Some(p.brake_f_bar.max(0.0));
        out.brake_rear_bar = Some(p.brake_r_bar.max(0.0));
        out.throttle_pct = Some(p.throttle_pct.clamp(0.0, 100.0));
        out.steering_deg = Some(p.steer_deg.clamp(-1000.0, 1000.0));
        out.rpm = Some(rpm);
        out.gear = Some(gear);
        out.lat_deg = Some(lat);
        out.lon_deg = Some(lon);
        out.position = Some(c.position);
        out.fuel_kg = Some(p.fuel_kg.max(0.0));
        out.tyre_compound = Some(self.compound.clone());
        out.tyre_age_laps = Some(if p.new_tyres { 0 } else { c.tyre_age });
        out.pit_status = Some(PitStatus::from_code(p.pit).unwrap_or(PitStatus::None));
        out.tyre_wear_pct = Some(Corners::from_array(p.wear_pct.map(|w| w.clamp(0.0, 100.0))));
        out.track_temp_c = Some(track_temp);
        out.air_temp_c = Some(self.cfg.air_temp_c);
        out
    }

    /// Advances one tick and appends that tick's samples (one per running car) to `out`.
    /// Returns false, appending nothing, once the race is finished.
    pub fn step(&mut self, out: &mut Vec<Sample>) -> bool {
        self.advance(Some(out))
    }

    /// Advances one tick without producing samples (ground truth still accrues).
    pub fn step_silent(&mut self) -> bool {
        self.advance(None)
    }

    /// Runs to the chequered flag of the last car without producing samples; returns the lap
    /// ground truth.
    pub fn run_to_end(&mut self) -> &[LapTruth] {
        while self.advance(None) {}
        &self.laps
    }
}

impl Iterator for Race {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        loop {
            if let Some(s) = self.buffer.pop_front() {
                return Some(s);
            }
            let mut v = Vec::with_capacity(self.cars.len());
            if !self.advance(Some(&mut v)) {
                return None;
            }
            self.buffer.extend(v);
        }
    }
}

/// Runs a whole race and collects every sample and every lap's ground truth. Memory grows
/// with cars × laps × hz (about 4.5 M samples for 20 cars, 30 laps of COTA at 50 Hz): stream
/// with [`Race::step`] for long races.
pub fn simulate(cfg: RaceConfig) -> Result<RaceOutput, SimError> {
    let mut race = Race::new(cfg)?;
    let mut samples = Vec::new();
    while race.step(&mut samples) {}
    Ok(RaceOutput {
        samples,
        laps: race.laps,
    })
}
