//! The per-car lap engine: lap and sector cuts, validity, events, windows and features.
//!
//! One [`LapEngine`] per car, fed that car's samples in time order through [`LapEngine::push`].
//! Every sample costs O(1) and, in the steady state, no allocation (a lap's event list is
//! allocated once per lap, with the configured bound as its capacity).
//!
//! # Lap cuts
//! A lap closes when the lap distance wraps (drops by more than half the track length; the
//! track length is the configured one, else the one learnt from the first complete lap, else
//! half the largest distance seen in the lap, and never less than 50 m), or when the source's
//! lap field increments while the distance cannot say (distance missing). When both signals are
//! present they are reconciled so that one crossing gives one cut whichever arrives first.
//! Implausible lap fields (> 1000, or jumps other than +1) are ignored until the same new value
//! has been seen on 3 consecutive samples, at which point numbering re-anchors without a cut.
//!
//! # Crossing times
//! The instant a car crosses the line (or a sector boundary) is interpolated between the two
//! samples around it: the distance fraction before the line is taken from the lap distances and
//! the track length (or, without a known track length, from the distance the mean speed covers
//! in the interval), then mapped to time assuming constant acceleration between the samples
//! (speeds v0, v1): u = f·(v0+v1) / (v0 + sqrt(v0² + f·(v1² − v0²))). A crossing of a lap field
//! increment without distance is placed half-way between the samples.
//!
//! # Validity
//! - `out_lap`: the first lap seen when it starts mid-lap; a lap that starts in the pit lane;
//!   a lap that contains a pit exit (pit status going back to none).
//! - `pit`: any sample of the lap with pit status `pitting` or `in_pit_area`.
//! - `safety_car`: [`LapEngine::set_safety_car`] was true at any sample of the lap. This is the
//!   only source: the engine does not guess safety cars from lap times.
//! - `incomplete`: the lap's start line crossing was not seen (stream started mid-lap, beyond
//!   `start_tolerance_m`), a gap between samples above `max_gap_s`, fewer than `min_samples`
//!   samples, or the lap was closed by [`LapEngine::flush`].
//!
//! `lap_time_s` is `Some` only when both line crossings were interpolated over intervals no
//! longer than `max_gap_s`; sector times likewise for their boundaries.

use crate::features::{FeatureAcc, LapFeatures, Rates, G_MPS2};
use crate::stats::{WindowAcc, WindowStats};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

/// Configuration of a [`LapEngine`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LapEngineConfig {
    /// Track length, m. `None`: learnt from the first complete lap (its largest lap distance).
    pub track_length_m: Option<f64>,
    /// Lap distances, m, where sectors 2 and 3 start (the first two values are used; one value
    /// gives two sectors). Empty: three equal sectors from the track length (configured or
    /// learnt; before it is known every sample counts in sector 1 and sector times are `None`).
    pub sector_bounds_m: Vec<f64>,
    /// Rolling window length, ms of sample time (0 disables windows). Default 600.
    pub window_ms: u32,
    /// A gap between consecutive samples above this marks the lap incomplete and is not
    /// integrated. Default 2.0 s.
    pub max_gap_s: f64,
    /// A lap with fewer samples is incomplete. Default 10.
    pub min_samples: u32,
    /// The first lap seen counts as started at the line if its first lap distance is at most
    /// this. Default 30 m.
    pub start_tolerance_m: f64,
    /// Heavy-braking threshold on |accx|, g. Default 0.8.
    pub heavy_braking_g: f64,
    /// Hard-cornering threshold on |accy|, g. Default 1.0.
    pub hard_cornering_g: f64,
    /// An event ends when the value falls below threshold − hysteresis. Default 0.1 g.
    pub event_hysteresis_g: f64,
    /// High-speed threshold, km/h. Default 200.
    pub high_speed_kmh: f64,
    /// At most this many events are stored per lap (counts are not bounded). Default 64.
    pub max_events_per_lap: usize,
    /// Car mass for the brake-energy proxy, kg. Default 1300 (GR86 Cup car with driver).
    pub car_mass_kg: f64,
    /// Deceleration per bar of front line pressure when accx is missing, g/bar. Default 0.012.
    pub brake_g_per_bar: f64,
    /// Front line pressure from which the car counts as braking, bar. Default 2.0.
    pub brake_on_bar: f64,
    /// Brake pedal from which the car counts as braking (sources without pressures), %. Default 5.
    pub brake_on_pct: f64,
    /// Static share of the load on the front axle. Default 0.53.
    pub static_front_share: f64,
    /// Centre-of-gravity height over wheelbase, for longitudinal load transfer. Default 0.2.
    pub cg_height_over_wheelbase: f64,
    /// Centre-of-gravity height over track width, for lateral load transfer. Default 0.3.
    pub cg_height_over_track_width: f64,
}

impl Default for LapEngineConfig {
    fn default() -> Self {
        LapEngineConfig {
            track_length_m: None,
            sector_bounds_m: Vec::new(),
            window_ms: 600,
            max_gap_s: 2.0,
            min_samples: 10,
            start_tolerance_m: 30.0,
            heavy_braking_g: 0.8,
            hard_cornering_g: 1.0,
            event_hysteresis_g: 0.1,
            high_speed_kmh: 200.0,
            max_events_per_lap: 64,
            car_mass_kg: 1300.0,
            brake_g_per_bar: 0.012,
            brake_on_bar: 2.0,
            brake_on_pct: 5.0,
            static_front_share: 0.53,
            cg_height_over_wheelbase: 0.2,
            cg_height_over_track_width: 0.3,
        }
    }
}

/// Why a lap is not a clean racing lap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LapValidity {
    pub out_lap: bool,
    pub pit: bool,
    pub safety_car: bool,
    pub incomplete: bool,
}

impl LapValidity {
    /// True when no flag is set (a lap fit for models and comparisons).
    pub fn is_clean(&self) -> bool {
        !(self.out_lap || self.pit || self.safety_car || self.incomplete)
    }
}

/// Kind of a detected event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// |accx| above `heavy_braking_g`.
    HeavyBraking,
    /// |accy| above `hard_cornering_g`.
    HardCornering,
}

/// One heavy-braking or hard-cornering event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// Session time of the entry into the state.
    pub t_s: f64,
    /// Lap distance at entry, when known.
    pub lap_dist_m: Option<f64>,
    /// Sector index 0..=2 at entry.
    pub sector: u8,
    /// Peak |acceleration| during the event, g.
    pub peak_g: f64,
    /// Duration so far (to the last sample still in the state, within the lap it started in), s.
    pub duration_s: f64,
}

/// A channel a lap can miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    LapDist,
    LapNumber,
    Speed,
    Accx,
    Accy,
    BrakeFront,
    BrakeRear,
    BrakePct,
    PitStatus,
    TyreAge,
    TrackTemp,
    AirTemp,
}

impl Channel {
    const ALL: [Channel; 12] = [
        Channel::LapDist,
        Channel::LapNumber,
        Channel::Speed,
        Channel::Accx,
        Channel::Accy,
        Channel::BrakeFront,
        Channel::BrakeRear,
        Channel::BrakePct,
        Channel::PitStatus,
        Channel::TyreAge,
        Channel::TrackTemp,
        Channel::AirTemp,
    ];
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// How a lap was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LapCut {
    /// The lap distance wrapped (crossing interpolated).
    DistanceWrap,
    /// The source's lap field incremented (no usable distance).
    LapField,
    /// [`LapEngine::flush`] at the end of the stream.
    EndOfStream,
}

/// A completed (or flushed) lap of one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapSummary {
    pub car_id: Arc<str>,
    pub session_id: Arc<str>,
    pub track: Option<Arc<str>>,
    /// Lap number: the source's lap field when present, else counted (the first lap seen is 1
    /// when it starts at the line, 0 when it starts mid-lap).
    pub lap: u32,
    pub lap_time_s: Option<f64>,
    pub sector_times_s: [Option<f64>; 3],
    pub validity: LapValidity,
    /// Whole-lap features (sector one-hot all 0).
    pub features: LapFeatures,
    /// The same features per sector (with their one-hot set).
    pub sector_features: [LapFeatures; 3],
    /// Per-sector stress: ∫ sqrt(accx² + accy²) dt, g·s (0 when the channels are missing).
    pub per_sector_stress: [f64; 3],
    /// Sliding work per tyre over the lap (FL, FR, RL, RR), g²·m: ∫ a² · q² / q_static · v dt
    /// (see [`crate::features::tyre_work_rate`]); `None` without accelerations and speed.
    #[serde(default)]
    pub tyre_work_g2m: Option<[f64; 4]>,
    /// Tyre wear per corner at the end of the lap, % (ground truth when the source has it).
    pub tyre_wear_pct_end: Option<Corners<f64>>,
    pub tyre_compound: Option<Arc<str>>,
    /// Laps on this set of tyres (see [`LapFeatures::tyre_age_laps`]).
    pub tyre_age_laps: u32,
    /// Fuel at the end of the lap, kg.
    pub fuel_kg: Option<f64>,
    /// The source's race position at the end of the lap.
    pub position: Option<u8>,
    pub n_samples: u32,
    pub n_high_speed_samples: u32,
    /// Line crossing at the start (interpolated), else the first sample's time.
    pub t_start_s: f64,
    /// Line crossing at the end (interpolated), else the last sample's time.
    pub t_end_s: f64,
    /// Largest lap distance seen in the lap, m.
    pub max_lap_dist_m: Option<f64>,
    pub closed_by: LapCut,
    /// Channels no sample of the lap carried.
    pub missing_channels: Vec<Channel>,
    /// Events, at most `max_events_per_lap` (the feature counts include the rest).
    pub events: Vec<Event>,
}

impl LapSummary {
    /// Idempotency key of the lap: (session, car, lap).
    pub fn key(&self) -> (&str, &str, u32) {
        (&self.session_id, &self.car_id, self.lap)
    }
}

/// Sanitised channels of one sample.
#[derive(Debug, Clone, Copy)]
struct Ch {
    t: f64,
    d: Option<f64>,
    v_kmh: Option<f64>,
    ax: Option<f64>,
    ay: Option<f64>,
    pf: Option<f64>,
    pr: Option<f64>,
    bpct: Option<f64>,
    track_temp: Option<f64>,
    air_temp: Option<f64>,
    pit: Option<PitStatus>,
    field: Option<u32>,
}

fn finite_in(x: Option<f64>, lo: f64, hi: f64) -> Option<f64> {
    x.filter(|v| v.is_finite() && *v >= lo && *v <= hi)
}

impl Ch {
    fn from_sample(s: &Sample) -> Ch {
        Ch {
            t: s.t_s,
            d: finite_in(s.lap_dist_m, 0.0, 1.0e6),
            v_kmh: finite_in(s.speed_kmh, 0.0, 600.0),
            ax: finite_in(s.accx_g, -10.0, 10.0),
            ay: finite_in(s.accy_g, -10.0, 10.0),
            pf: finite_in(s.brake_front_bar, 0.0, 1000.0),
            pr: finite_in(s.brake_rear_bar, 0.0, 1000.0),
            bpct: finite_in(s.brake_pct, 0.0, 100.0),
            track_temp: finite_in(s.track_temp_c, -50.0, 100.0),
            air_temp: finite_in(s.air_temp_c, -50.0, 70.0),
            pit: s.pit_status,
            field: s.lap.filter(|l| *l <= 1000),
        }
    }

    fn seen_bits(&self, s: &Sample) -> u16 {
        let mut b = 0;
        let mut set = |c: Channel, on: bool| {
            if on {
                b |= c.bit();
            }
        };
        set(Channel::LapDist, self.d.is_some());
        set(Channel::LapNumber, self.field.is_some());
        set(Channel::Speed, self.v_kmh.is_some());
        set(Channel::Accx, self.ax.is_some());
        set(Channel::Accy, self.ay.is_some());
        set(Channel::BrakeFront, self.pf.is_some());
        set(Channel::BrakeRear, self.pr.is_some());
        set(Channel::BrakePct, self.bpct.is_some());
        set(Channel::PitStatus, self.pit.is_some());
        set(Channel::TyreAge, s.tyre_age_laps.is_some());
        set(Channel::TrackTemp, self.track_temp.is_some());
        set(Channel::AirTemp, self.air_temp.is_some());
        b
    }
}

/// The previous sample, as far as the engine needs it.
#[derive(Debug, Clone, Copy)]
struct Prev {
    t: f64,
    d: Option<f64>,
    v_kmh: Option<f64>,
    rates: Rates,
}

fn avg(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(0.5 * (x + y)),
        (None, y) => y,
        (x, None) => x,
    }
}

fn avg_rates(a: &Rates, b: &Rates) -> Rates {
    // An interval is integrated only with channels present at its end sample (a channel
    // appearing mid-interval is integrated from its first value).
    let both = |x: Option<f64>, y: Option<f64>| y.and(avg(x, y));
    Rates {
        lat_g: both(a.lat_g, b.lat_g),
        lat_pos_g: both(a.lat_pos_g, b.lat_pos_g),
        lon_g: both(a.lon_g, b.lon_g),
        brake_kw: both(a.brake_kw, b.brake_kw),
        combined_g: both(a.combined_g, b.combined_g),
        front_share: both(a.front_share, b.front_share),
        tyre_work: match (a.tyre_work, b.tyre_work) {
            (Some(x), Some(y)) => Some([
                0.5 * (x[0] + y[0]),
                0.5 * (x[1] + y[1]),
                0.5 * (x[2] + y[2]),
                0.5 * (x[3] + y[3]),
            ]),
            (None, y) => y,
            (_, None) => None,
        },
    }
}

/// Maps a distance fraction `f` of an interval to a time fraction, assuming constant
/// acceleration between speeds `v0` and `v1` (any unit). Falls back to `f` without speeds.
pub fn distance_to_time_fraction(f: f64, v0: Option<f64>, v1: Option<f64>) -> f64 {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (Some(v0), Some(v1)) = (v0, v1) else {
        return f;
    };
    if !(v0 >= 0.0 && v1 >= 0.0) {
        return f;
    }
    let denom = v0 + (v0 * v0 + f * (v1 * v1 - v0 * v0)).max(0.0).sqrt();
    if denom <= 1e-12 {
        return f;
    }
    let u = f * (v0 + v1) / denom;
    if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        f
    }
}

/// State of the lap being driven.
#[derive(Debug, Clone)]
struct LapState {
    number: u32,
    /// Interpolated line crossing at the start (None: not seen precisely).
    t_line_start: Option<f64>,
    t_first: f64,
    t_last: f64,
    started_mid: bool,
    n: u32,
    acc: FeatureAcc,
    sec: [FeatureAcc; 3],
    sector: usize,
    sector_start_t: [Option<f64>; 3],
    pit: bool,
    out_lap: bool,
    safety_car: bool,
    gap: bool,
    awaiting_field: bool,
    max_d: Option<f64>,
    events: Vec<Event>,
    seen: u16,
    tyre_wear: Option<Corners<f64>>,
    compound: Option<Arc<str>>,
    tyre_age_src: Option<u16>,
    fuel_kg: Option<f64>,
    position: Option<u8>,
    ended_in_pit: bool,
}

impl LapState {
    fn new(number: u32, t: f64, t_line_start: Option<f64>, events_cap: usize) -> Self {
        LapState {
            number,
            t_line_start,
            t_first: t_line_start.unwrap_or(t),
            t_last: t,
            started_mid: t_line_start.is_none(),
            n: 0,
            acc: FeatureAcc::default(),
            sec: [FeatureAcc::default(); 3],
            sector: 0,
            sector_start_t: [t_line_start, None, None],
            pit: false,
            out_lap: false,
            safety_car: false,
            gap: false,
            awaiting_field: false,
            max_d: None,
            events: Vec::with_capacity(events_cap),
            seen: 0,
            tyre_wear: None,
            compound: None,
            tyre_age_src: None,
            fuel_kg: None,
            position: None,
            ended_in_pit: false,
        }
    }

    fn integrate(&mut self, r: &Rates, dt: f64) {
        self.acc.integrate(r, dt);
        if let Some(s) = self.sec.get_mut(self.sector) {
            s.integrate(r, dt);
        }
    }
}

/// (session id, car id, track) of the engine's car, from its first sample.
type Ident = (Arc<str>, Arc<str>, Option<Arc<str>>);

/// Per-car lap engine. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct LapEngine {
    cfg: LapEngineConfig,
    window_s: f64,
    events_cap: usize,
    ident: Option<Ident>,
    lap: LapState,
    prev: Option<Prev>,
    learnt_length_m: Option<f64>,
    bounds: [Option<f64>; 2],
    field_last: Option<u32>,
    field_bad: Option<(u32, u8)>,
    pending_field: bool,
    safety_car: bool,
    in_pit: bool,
    stint_laps: u32,
    heavy_active: bool,
    heavy_idx: Option<usize>,
    hard_active: bool,
    hard_idx: Option<usize>,
    window: WindowAcc,
    last_window: Option<WindowStats>,
    window_fresh: bool,
    dropped: u64,
    laps_closed: u32,
    closed: Option<LapSummary>,
}

impl Default for LapEngine {
    fn default() -> Self {
        LapEngine::new(LapEngineConfig::default())
    }
}

impl LapEngine {
    /// A new engine for one car.
    pub fn new(mut cfg: LapEngineConfig) -> Self {
        cfg.track_length_m = cfg.track_length_m.filter(|l| l.is_finite() && *l > 0.0);
        let window_s = f64::from(cfg.window_ms) / 1000.0;
        let events_cap = cfg.max_events_per_lap.min(4096);
        if cfg.max_gap_s.is_nan() || cfg.max_gap_s <= 0.0 {
            cfg.max_gap_s = 2.0;
        }
        let mut e = LapEngine {
            cfg,
            window_s,
            events_cap,
            ident: None,
            lap: LapState::new(0, 0.0, None, 0),
            prev: None,
            learnt_length_m: None,
            bounds: [None, None],
            field_last: None,
            field_bad: None,
            pending_field: false,
            safety_car: false,
            in_pit: false,
            stint_laps: 0,
            heavy_active: false,
            heavy_idx: None,
            hard_active: false,
            hard_idx: None,
            window: WindowAcc::default(),
            last_window: None,
            window_fresh: false,
            dropped: 0,
            laps_closed: 0,
            closed: None,
        };
        e.resolve_bounds();
        e
    }

    /// The configuration in force.
    pub fn config(&self) -> &LapEngineConfig {
        &self.cfg
    }

    /// Sets the safety-car (or full-course yellow) state from now on; the current lap is
    /// flagged immediately when `on`.
    pub fn set_safety_car(&mut self, on: bool) {
        self.safety_car = on;
        if on && self.prev.is_some() {
            self.lap.safety_car = true;
        }
    }

    /// Track length in use: configured, else learnt from the first complete lap.
    pub fn track_length_m(&self) -> Option<f64> {
        self.cfg.track_length_m.or(self.learnt_length_m)
    }

    /// Lap distances where sectors 2 and 3 start, when known.
    pub fn sector_bounds_m(&self) -> [Option<f64>; 2] {
        self.bounds
    }

    /// Number of the lap being driven.
    pub fn current_lap(&self) -> u32 {
        self.lap.number
    }

    /// Sector (0..=2) of the last sample.
    pub fn current_sector(&self) -> u8 {
        self.lap.sector as u8
    }

    /// Features of the lap so far, with the one-hot of the current sector.
    pub fn current_features(&self) -> LapFeatures {
        let age = self.tyre_age_for(&self.lap);
        self.lap
            .acc
            .features(self.lap.number, age, Some(self.lap.sector))
    }

    /// Features of the current sector so far.
    pub fn current_sector_features(&self) -> LapFeatures {
        let age = self.tyre_age_for(&self.lap);
        let s = self.lap.sector.min(2);
        self.lap
            .sec
            .get(s)
            .map(|a| a.features(self.lap.number, age, Some(s)))
            .unwrap_or_default()
    }

    /// The most recently closed window, if any.
    pub fn last_window(&self) -> Option<&WindowStats> {
        self.last_window.as_ref()
    }

    /// The window closed by the last `push`, once (None if none closed since the last call).
    pub fn take_window(&mut self) -> Option<WindowStats> {
        if self.window_fresh {
            self.window_fresh = false;
            self.last_window
        } else {
            None
        }
    }

    /// Samples ignored (non-finite or non-increasing time).
    pub fn dropped_samples(&self) -> u64 {
        self.dropped
    }

    /// Laps closed so far (by crossings, lap fields or flush).
    pub fn laps_closed(&self) -> u32 {
        self.laps_closed
    }

    fn resolve_bounds(&mut self) {
        let cfgb: Vec<f64> = self
            .cfg
            .sector_bounds_m
            .iter()
            .copied()
            .filter(|b| b.is_finite() && *b > 0.0)
            .take(2)
            .collect();
        self.bounds = match cfgb.as_slice() {
            [a, b] if b > a => [Some(*a), Some(*b)],
            [a, _] | [a] => [Some(*a), None],
            _ => match self.track_length_m() {
                Some(l) => [Some(l / 3.0), Some(2.0 * l / 3.0)],
                None => [None, None],
            },
        };
    }

    fn tyre_age_for(&self, lap: &LapState) -> u32 {
        match lap.tyre_age_src {
            Some(a) => u32::from(a),
            None if lap.pit => 0,
            None => self.stint_laps,
        }
    }

    fn point_rates(&self, c: &Ch) -> Rates {
        let cfg = &self.cfg;
        let braking = match (c.pf, c.bpct) {
            (Some(p), _) => p >= cfg.brake_on_bar,
            (None, Some(b)) => b >= cfg.brake_on_pct,
            (None, None) => true,
        };
        let decel_g = match c.ax {
            Some(a) => Some((-a).max(0.0)),
            None => c.pf.map(|p| p * cfg.brake_g_per_bar),
        };
        let brake_kw = match (decel_g, c.v_kmh) {
            (Some(dg), Some(v)) => Some(if braking {
                cfg.car_mass_kg * G_MPS2 * dg * (v / 3.6) / 1000.0
            } else {
                0.0
            }),
            _ => None,
        };
        Rates {
            lat_g: c.ay.map(f64::abs),
            lat_pos_g: c.ay.map(|a| a.max(0.0)),
            lon_g: c.ax.map(f64::abs),
            brake_kw,
            combined_g: match (c.ax, c.ay) {
                (Some(x), Some(y)) => Some((x * x + y * y).sqrt()),
                _ => None,
            },
            front_share: c.ax.map(|a| {
                (cfg.static_front_share - a * cfg.cg_height_over_wheelbase).clamp(0.0, 1.0)
            }),
            tyre_work: match (c.ax, c.ay, c.v_kmh) {
                (Some(x), Some(y), Some(v)) => Some(crate::features::tyre_work_rate(
                    x,
                    y,
                    v / 3.6,
                    cfg.static_front_share,
                    cfg.cg_height_over_wheelbase,
                    cfg.cg_height_over_track_width,
                )),
                _ => None,
            },
        }
    }

    fn wrap_threshold_m(&self) -> f64 {
        let l = self
            .track_length_m()
            .or(self.lap.max_d)
            .unwrap_or(f64::INFINITY);
        (0.5 * l).max(50.0)
    }

    /// Distance fraction of the interval before the line, for a wrap from `d0` to `d1`.
    fn wrap_distance_fraction(&self, prev: &Prev, c: &Ch, d0: f64, d1: f64) -> f64 {
        let by_length = |l: f64| {
            let before = (l - d0).max(0.0);
            let after = d1.max(0.0);
            (before + after > 0.0).then(|| before / (before + after))
        };
        if let Some(f) = self.cfg.track_length_m.and_then(by_length) {
            return f;
        }
        if let (Some(v0), Some(v1)) = (prev.v_kmh, c.v_kmh) {
            let dist = 0.5 * (v0 + v1) / 3.6 * (c.t - prev.t);
            if dist > 0.0 && dist.is_finite() {
                return ((dist - d1).max(0.0) / dist).clamp(0.0, 1.0);
            }
        }
        if let Some(f) = self.learnt_length_m.or(self.lap.max_d).and_then(by_length) {
            return f;
        }
        0.5
    }

    /// Feeds one sample of this engine's car. Returns the lap this sample closed, if any.
    ///
    /// Samples whose time is not finite or not after the previous sample's are ignored.
    pub fn push(&mut self, s: &Sample) -> Option<LapSummary> {
        let t = s.t_s;
        if !t.is_finite() || self.prev.is_some_and(|p| t <= p.t) {
            self.dropped += 1;
            return None;
        }
        if self.ident.is_none() {
            self.ident = Some((s.session_id.clone(), s.car_id.clone(), s.track.clone()));
        }
        let c = Ch::from_sample(s);
        let rates = self.point_rates(&c);
        let cut = match self.prev {
            None => {
                self.start_first_lap(&c);
                false
            }
            Some(prev) => self.advance(&prev, &c, &rates),
        };
        self.point(s, &c);
        self.prev = Some(Prev {
            t,
            d: c.d,
            v_kmh: c.v_kmh,
            rates,
        });
        // The summary is parked in `closed` so that the common path returns a bare `None`
        // (no copy of a large `Option<LapSummary>` per sample).
        if cut {
            self.closed.take()
        } else {
            None
        }
    }

    fn start_first_lap(&mut self, c: &Ch) {
        let at_line = c.d.filter(|d| *d <= self.cfg.start_tolerance_m);
        let t_line = at_line.map(|d| match c.v_kmh {
            Some(v) if v > 0.5 => c.t - d / (v / 3.6),
            _ => c.t,
        });
        let number = match c.field {
            Some(f) => f,
            None => u32::from(t_line.is_some()),
        };
        self.field_last = c.field;
        self.lap = LapState::new(number, c.t, t_line, self.events_cap);
        if t_line.is_none() {
            self.lap.out_lap = true;
        }
        self.set_sector_from_distance(c.d, c.t);
    }

    /// Sector from a distance, for laps whose start we did not see (no crossing times).
    fn set_sector_from_distance(&mut self, d: Option<f64>, _t: f64) {
        if let Some(d) = d {
            let mut s = 0;
            for b in self.bounds.iter().flatten() {
                if d >= *b {
                    s += 1;
                }
            }
            self.lap.sector = s.min(2);
        }
    }

    fn field_increment(&mut self, field: Option<u32>) -> bool {
        let Some(f) = field else {
            return false;
        };
        match self.field_last {
            None => {
                self.field_last = Some(f);
                false
            }
            Some(last) if f == last => {
                self.field_bad = None;
                false
            }
            Some(last) if f == last.saturating_add(1) => {
                self.field_bad = None;
                self.field_last = Some(f);
                true
            }
            Some(_) => {
                let run = match self.field_bad {
                    Some((v, k)) if v == f => k.saturating_add(1),
                    _ => 1,
                };
                self.field_bad = Some((f, run));
                if run >= 3 {
                    self.field_last = Some(f);
                    self.field_bad = None;
                    self.lap.number = f;
                    self.pending_field = false;
                    self.lap.awaiting_field = false;
                }
                false
            }
        }
    }

    /// Handles the interval from `prev` to `c`; true when it closed a lap (parked in `closed`).
    fn advance(&mut self, prev: &Prev, c: &Ch, point: &Rates) -> bool {
        let dt = c.t - prev.t;
        let gap = dt > self.cfg.max_gap_s;
        let rates = avg_rates(&prev.rates, point);
        let dt_int = if gap { 0.0 } else { dt };
        let wrap = match (prev.d, c.d) {
            (Some(d0), Some(d1)) => d0 - d1 > self.wrap_threshold_m(),
            _ => false,
        };
        let incr = self.field_increment(c.field);
        let half_l = self.track_length_m().map_or(f64::INFINITY, |l| 0.5 * l);
        let mut cut: Option<(LapCut, u32, bool)> = None; // (kind, new number, awaiting)
        if wrap {
            let (number, awaiting) = if incr || self.pending_field {
                self.pending_field = false;
                (
                    self.field_last.unwrap_or(self.lap.number.saturating_add(1)),
                    false,
                )
            } else {
                (self.lap.number.saturating_add(1), self.field_last.is_some())
            };
            cut = Some((LapCut::DistanceWrap, number, awaiting));
        } else if incr {
            let f = self.field_last.unwrap_or(self.lap.number.saturating_add(1));
            if self.lap.awaiting_field && c.d.is_none_or(|d| d < half_l) {
                self.lap.number = f;
                self.lap.awaiting_field = false;
            } else if prev.d.is_none() || c.d.is_none() || self.pending_field {
                self.pending_field = false;
                cut = Some((LapCut::LapField, f, false));
            } else {
                self.pending_field = true;
            }
        }

        let Some((kind, number, awaiting)) = cut else {
            if gap {
                self.lap.gap = true;
            }
            self.walk_sectors(prev.t, prev.d, prev.v_kmh, c, &rates, dt_int, gap);
            return false;
        };

        // The crossing.
        let (u, d_after) = match (kind, prev.d, c.d) {
            (LapCut::DistanceWrap, Some(d0), Some(d1)) => {
                let f = self.wrap_distance_fraction(prev, c, d0, d1);
                (distance_to_time_fraction(f, prev.v_kmh, c.v_kmh), Some(0.0))
            }
            _ => (0.5, None),
        };
        let tc = prev.t + u * dt;
        if gap {
            self.lap.gap = true;
        }
        self.lap.integrate(&rates, dt_int * u);
        let summary = self.close_lap(tc, !gap, kind);
        let t_line = (!gap).then_some(tc);
        self.lap = LapState::new(number, c.t, t_line, self.events_cap);
        self.lap.t_first = tc;
        self.lap.awaiting_field = awaiting;
        if gap {
            self.lap.gap = true;
        }
        if self.in_pit {
            self.lap.out_lap = true;
        }
        self.heavy_idx = None;
        self.hard_idx = None;
        if d_after.is_some() {
            // Speed at the line, interpolated, for sector crossings in the rest of the interval.
            let v_line = match (prev.v_kmh, c.v_kmh) {
                (Some(a), Some(b)) => Some(a + (b - a) * u),
                _ => None,
            };
            self.walk_sectors(tc, d_after, v_line, c, &rates, dt_int * (1.0 - u), gap);
        } else {
            self.set_sector_from_distance(c.d, c.t);
            self.lap.integrate(&rates, dt_int * (1.0 - u));
        }
        self.closed = Some(summary);
        true
    }

    /// Integrates the interval from (`ta`, `da`) to the sample `c` into the current lap,
    /// splitting it at sector boundaries (whose crossing times are interpolated).
    #[allow(clippy::too_many_arguments)]
    fn walk_sectors(
        &mut self,
        ta: f64,
        da: Option<f64>,
        va: Option<f64>,
        c: &Ch,
        rates: &Rates,
        dt_int: f64,
        gap: bool,
    ) {
        let span = c.t - ta;
        let mut done = 0.0; // time fraction already integrated
        if let (Some(da), Some(db)) = (da, c.d) {
            while self.lap.sector < 2 {
                let Some(b) = self.bounds.get(self.lap.sector).copied().flatten() else {
                    break;
                };
                if !(da < b && b <= db) {
                    break;
                }
                let f = (b - da) / (db - da);
                let u = distance_to_time_fraction(f, va, c.v_kmh);
                if u > done {
                    self.lap.integrate(rates, dt_int * (u - done));
                    done = u;
                }
                self.lap.sector += 1;
                if let Some(slot) = self.lap.sector_start_t.get_mut(self.lap.sector) {
                    *slot = (!gap).then_some(ta + u * span);
                }
            }
        }
        if done < 1.0 {
            self.lap.integrate(rates, dt_int * (1.0 - done));
        }
    }

    /// Per-sample bookkeeping in the (possibly new) current lap: point features, events, flags.
    fn point(&mut self, s: &Sample, c: &Ch) {
        let cfg = &self.cfg;
        let pressure_share = match (c.ax, c.pf, c.pr) {
            (None, Some(f), Some(r)) if f + r >= cfg.brake_on_bar && f + r > 0.0 => {
                Some(f / (f + r))
            }
            _ => None,
        };
        let sector = self.lap.sector.min(2);
        let lap = &mut self.lap;
        lap.acc.point(
            c.v_kmh,
            cfg.high_speed_kmh,
            c.ax,
            c.ay,
            pressure_share,
            c.track_temp,
            c.air_temp,
        );
        if let Some(sa) = lap.sec.get_mut(sector) {
            sa.point(
                c.v_kmh,
                cfg.high_speed_kmh,
                c.ax,
                c.ay,
                pressure_share,
                c.track_temp,
                c.air_temp,
            );
        }

        // Events with hysteresis.
        let hyst = cfg.event_hysteresis_g.max(0.0);
        if let Some(a) = c.ax.map(f64::abs) {
            detect(
                &mut self.heavy_active,
                &mut self.heavy_idx,
                a,
                cfg.heavy_braking_g,
                hyst,
                EventKind::HeavyBraking,
                c,
                sector,
                lap,
                self.events_cap,
            );
        }
        if let Some(a) = c.ay.map(f64::abs) {
            detect(
                &mut self.hard_active,
                &mut self.hard_idx,
                a,
                cfg.hard_cornering_g,
                hyst,
                EventKind::HardCornering,
                c,
                sector,
                lap,
                self.events_cap,
            );
        }

        // Pit and flags.
        if let Some(p) = c.pit {
            let in_pit = p != PitStatus::None;
            if in_pit {
                lap.pit = true;
                if lap.n == 0 {
                    lap.out_lap = true;
                }
            } else if self.in_pit {
                lap.out_lap = true; // pit exit
            }
            self.in_pit = in_pit;
            lap.ended_in_pit = in_pit;
        }
        if self.safety_car {
            lap.safety_car = true;
        }
        lap.n = lap.n.saturating_add(1);
        lap.t_last = c.t;
        if let Some(d) = c.d {
            lap.max_d = Some(lap.max_d.map_or(d, |m| m.max(d)));
        }
        lap.seen |= c.seen_bits(s);
        if s.tyre_wear_pct.is_some() {
            lap.tyre_wear = s.tyre_wear_pct;
        }
        if s.tyre_compound.is_some() && lap.compound.as_deref() != s.tyre_compound.as_deref() {
            lap.compound = s.tyre_compound.clone();
        }
        if s.tyre_age_laps.is_some() {
            lap.tyre_age_src = s.tyre_age_laps;
        }
        if let Some(f) = finite_in(s.fuel_kg, 0.0, 1.0e4) {
            lap.fuel_kg = Some(f);
        }
        if s.position.is_some() {
            lap.position = s.position;
        }

        // Windows.
        if self.window_s > 0.0 {
            let (number, sector_u8) = (lap.number, sector as u8);
            match self.window.t_start_s {
                None => self.window.reset(c.t, number, sector_u8),
                Some(t0) if c.t - t0 >= self.window_s - 1e-9 => {
                    self.last_window = self.window.close(self.window_s);
                    self.window_fresh = self.last_window.is_some();
                    let k = ((c.t - t0) / self.window_s + 1e-9).floor();
                    let start = if k.is_finite() && k < 1.0e9 {
                        t0 + k * self.window_s
                    } else {
                        c.t
                    };
                    self.window.reset(start, number, sector_u8);
                }
                Some(_) => {}
            }
            let w = &mut self.window;
            if let Some(v) = c.v_kmh {
                w.speed.push(v);
            }
            if let Some(a) = c.ax {
                w.accx.push(a);
            }
            if let Some(a) = c.ay {
                w.accy.push(a);
            }
            if let Some(b) = c.pf.or(c.bpct) {
                w.brake.push(b);
            }
            if let (Some(x), Some(y)) = (c.ax, c.ay) {
                w.stress.push((x * x + y * y).sqrt());
            }
        }
    }

    fn close_lap(&mut self, t_end: f64, end_precise: bool, kind: LapCut) -> LapSummary {
        let cfg = &self.cfg;
        let age = self.tyre_age_for(&self.lap);
        let lap = &mut self.lap;
        let lap_time_s = match (lap.t_line_start, end_precise) {
            (Some(ts), true) => Some(t_end - ts).filter(|x| *x > 0.0),
            _ => None,
        };
        let st = lap.sector_start_t;
        let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > a => Some(b - a),
            _ => None,
        };
        let end = end_precise.then_some(t_end);
        let sector_times_s = if self.bounds[1].is_some() {
            [diff(st[0], st[1]), diff(st[1], st[2]), diff(st[2], end)]
        } else if self.bounds[0].is_some() {
            [diff(st[0], st[1]), diff(st[1], end), None]
        } else {
            [None, None, None]
        };
        let incomplete = lap.started_mid
            || lap.t_line_start.is_none()
            || lap.gap
            || lap.n < cfg.min_samples
            || kind == LapCut::EndOfStream;
        let validity = LapValidity {
            out_lap: lap.out_lap,
            pit: lap.pit,
            safety_car: lap.safety_car,
            incomplete,
        };
        let features = lap.acc.features(lap.number, age, None);
        let sector_features = [
            lap.sec[0].features(lap.number, age, Some(0)),
            lap.sec[1].features(lap.number, age, Some(1)),
            lap.sec[2].features(lap.number, age, Some(2)),
        ];
        let missing_channels = Channel::ALL
            .iter()
            .copied()
            .filter(|ch| lap.seen & ch.bit() == 0)
            .collect();
        let (session_id, car_id, track) = self
            .ident
            .clone()
            .unwrap_or_else(|| (Arc::from(""), Arc::from(""), None));
        let summary = LapSummary {
            car_id,
            session_id,
            track,
            lap: lap.number,
            lap_time_s,
            sector_times_s,
            validity,
            features,
            sector_features,
            per_sector_stress: [
                lap.sec[0].stress_gs,
                lap.sec[1].stress_gs,
                lap.sec[2].stress_gs,
            ],
            tyre_work_g2m: lap.acc.tyre_work(),
            tyre_wear_pct_end: lap.tyre_wear,
            tyre_compound: lap.compound.clone(),
            tyre_age_laps: age,
            fuel_kg: lap.fuel_kg,
            position: lap.position,
            n_samples: lap.n,
            n_high_speed_samples: lap.acc.n_high_speed(),
            t_start_s: lap.t_first,
            t_end_s: t_end,
            max_lap_dist_m: lap.max_d,
            closed_by: kind,
            missing_channels,
            events: std::mem::take(&mut lap.events),
        };
        // Stint counting (when the source has no tyre age).
        self.stint_laps = if lap.ended_in_pit {
            0
        } else if lap.pit {
            1
        } else {
            self.stint_laps.saturating_add(1)
        };
        // Learn the track length from the first clean lap closed by a wrap.
        if self.cfg.track_length_m.is_none()
            && self.learnt_length_m.is_none()
            && kind == LapCut::DistanceWrap
            && !incomplete
        {
            if let Some(m) = lap.max_d.filter(|m| *m > 100.0) {
                self.learnt_length_m = Some(m);
                self.resolve_bounds();
            }
        }
        self.laps_closed = self.laps_closed.saturating_add(1);
        summary
    }

    /// Closes the current lap as incomplete (end of stream). Returns `None` when it holds no
    /// sample. The next sample pushed starts afresh, as if it were the first of the stream
    /// (the learnt track length and the stint count are kept; the lap number comes from the
    /// lap field, or restarts at 0/1 without it).
    pub fn flush(&mut self) -> Option<LapSummary> {
        if self.prev.is_none() || self.lap.n == 0 {
            return None;
        }
        let t_end = self.lap.t_last;
        let s = self.close_lap(t_end, false, LapCut::EndOfStream);
        self.prev = None;
        self.heavy_active = false;
        self.hard_active = false;
        self.heavy_idx = None;
        self.hard_idx = None;
        self.lap = LapState::new(s.lap.saturating_add(1), t_end, None, 0);
        Some(s)
    }
}

#[allow(clippy::too_many_arguments)]
fn detect(
    active: &mut bool,
    idx: &mut Option<usize>,
    a: f64,
    threshold: f64,
    hyst: f64,
    kind: EventKind,
    c: &Ch,
    sector: usize,
    lap: &mut LapState,
    cap: usize,
) {
    if !*active {
        if a > threshold {
            *active = true;
            match kind {
                EventKind::HeavyBraking => {
                    lap.acc.heavy_braking += 1;
                    if let Some(s) = lap.sec.get_mut(sector) {
                        s.heavy_braking += 1;
                    }
                }
                EventKind::HardCornering => {
                    lap.acc.hard_cornering += 1;
                    if let Some(s) = lap.sec.get_mut(sector) {
                        s.hard_cornering += 1;
                    }
                }
            }
            *idx = None;
            if lap.events.len() < cap {
                *idx = Some(lap.events.len());
                lap.events.push(Event {
                    kind,
                    t_s: c.t,
                    lap_dist_m: c.d,
                    sector: sector as u8,
                    peak_g: a,
                    duration_s: 0.0,
                });
            }
        }
    } else if a < threshold - hyst {
        *active = false;
        *idx = None;
    } else if let Some(ev) = idx.and_then(|i| lap.events.get_mut(i)) {
        ev.peak_g = ev.peak_g.max(a);
        ev.duration_s = c.t - ev.t_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_acceleration_crossing() {
        // v from 10 to 30 m/s over 1 s: s(u) = 10u + 10u², 20 m in all; at u = 0.5, 7.5 m.
        let u = distance_to_time_fraction(7.5 / 20.0, Some(10.0), Some(30.0));
        assert!((u - 0.5).abs() < 1e-12, "{u}");
        // Constant speed: identity. Missing / degenerate speeds: identity, clamped.
        assert!((distance_to_time_fraction(0.3, Some(20.0), Some(20.0)) - 0.3).abs() < 1e-12);
        assert_eq!(distance_to_time_fraction(0.3, None, Some(20.0)), 0.3);
        assert_eq!(distance_to_time_fraction(0.3, Some(0.0), Some(0.0)), 0.3);
        let u = distance_to_time_fraction(f64::NAN, Some(1.0), Some(2.0));
        assert!(u.is_finite() && (0.0..=1.0).contains(&u));
        assert_eq!(distance_to_time_fraction(2.0, Some(1.0), Some(2.0)), 1.0);
        // Decelerating to a stop: the car covers the first half of the distance in less
        // than half of the time.
        let u = distance_to_time_fraction(0.5, Some(20.0), Some(0.0));
        assert!((u - (1.0 - 0.5f64.sqrt())).abs() < 1e-12, "{u}");
    }
}
