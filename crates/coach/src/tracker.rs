//! The per-car online state machine: corner windows, baseline, alerts. Laps are not cut
//! here: the lap engine ([`laps::LapEngine`]) closes, numbers and judges them, and the
//! tracker follows its [`LapSummary`]s ([`CoachTracker::on_lap`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use laps::{LapCut, LapSummary, LapValidity};
use serde::{Deserialize, Serialize};
use telemetry::{PitStatus, Sample};

use crate::map::{CornerMap, MapPoint};
use crate::stats::Running;
use crate::{
    CoachConfig, CoachingAlert, CornerPass, CornerProfile, DriverProfile, Metric, ProfileStatus,
    N_METRICS,
};

/// Points kept while waiting to learn a corner map (about 6 laps of a long track at 50 Hz).
const MAX_PENDING_POINTS: usize = 60_000;
/// Points held behind the last processed one while waiting for the lap engine's cut.
const MAX_HELD_POINTS: usize = 10_000;
/// A lap used to learn the corner map must start and end within this distance of the line, m.
const LINE_TOL_M: f64 = 150.0;
/// Lap verdicts kept per car for [`CoachTracker::recent_laps`].
const LAP_LOG_LEN: usize = 200;

/// One sample reduced to what the coach uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pt {
    pub t: f64,
    pub lap: Option<u32>,
    pub d: f64,
    pub v: Option<f64>,
    pub ay: Option<f64>,
    pub steer: Option<f64>,
    /// Braking level on the bar scale (front, else rear, else pedal %, else decel).
    pub brake: Option<f64>,
    pub bf: Option<f64>,
    pub br: Option<f64>,
    pub thr: Option<f64>,
    /// In the pit lane (pitting or in the pit area).
    pub pit: bool,
    /// The sample carried a pit status (`pit` is a reading, not a default).
    pub pit_known: bool,
}

fn fin(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

impl Pt {
    pub(crate) fn from_sample(s: &Sample) -> Option<Pt> {
        if !s.t_s.is_finite() {
            return None;
        }
        let d = fin(s.lap_dist_m).filter(|d| *d >= 0.0)?;
        let bf = fin(s.brake_front_bar).map(|x| x.max(0.0));
        let br = fin(s.brake_rear_bar).map(|x| x.max(0.0));
        let brake = bf
            .or(br)
            .or(fin(s.brake_pct).map(|x| x.max(0.0)))
            .or(fin(s.accx_g).map(|a| (-a * 5.0 / 0.3).max(0.0)));
        Some(Pt {
            t: s.t_s,
            lap: s.lap,
            d,
            v: fin(s.speed_kmh),
            ay: fin(s.accy_g),
            steer: fin(s.steering_deg),
            brake,
            bf,
            br,
            thr: fin(s.throttle_pct),
            pit: matches!(
                s.pit_status,
                Some(PitStatus::Pitting | PitStatus::InPitArea)
            ),
            pit_known: s.pit_status.is_some(),
        })
    }
}

/// Linear interpolation factor of `x` between `a` and `b` (clamped to [0, 1]).
fn frac(a: f64, b: f64, x: f64) -> f64 {
    let span = b - a;
    if span.abs() < 1e-12 {
        1.0
    } else {
        ((x - a) / span).clamp(0.0, 1.0)
    }
}

fn lerp(a: f64, b: f64, f: f64) -> f64 {
    a + (b - a) * f
}

/// Time at which the car passes distance `x` between points `p` and `q`.
fn t_at(p: &Pt, q: &Pt, x: f64) -> f64 {
    lerp(p.t, q.t, frac(p.d, q.d, x))
}

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// Distance of the first braking sample, m.
    first_d: f64,
    start_d: Option<f64>,
    start_v: Option<f64>,
    peak_level: f64,
    peak_bar: Option<f64>,
    sum_f: f64,
    sum_r: f64,
    bias_ok: bool,
    release_t: Option<f64>,
    throttle_t: Option<f64>,
    throttle_on_t: Option<f64>,
    /// First crossing of full throttle not yet held long enough.
    full_cand_t: Option<f64>,
}

/// Accumulator of one corner window on one lap.
#[derive(Debug, Clone)]
struct Win {
    k: usize,
    valid: bool,
    pit: bool,
    t_entry: Option<f64>,
    min_v: Option<f64>,
    /// Where the minimum speed was, m.
    min_v_d: f64,
    exit_v: Option<f64>,
    run: Option<Run>,
    /// Closed braking runs (a few per window at most; capped).
    runs: Vec<Run>,
    /// Watching the throttle after the last closed run's release.
    watch_throttle: bool,
}

/// Values of one corner pass.
#[derive(Debug, Clone, Copy, Default)]
struct Obs {
    values: [Option<f64>; N_METRICS],
    /// Deviating values: not added to the baseline.
    held: [bool; N_METRICS],
}

#[derive(Debug, Clone, Default)]
struct MState {
    /// Recent clean passes: z and the corner-time deviation, s.
    recent: VecDeque<(f64, Option<f64>)>,
    /// Sign of the deviation already alerted (0 = none).
    episode: i8,
    consec_dev: u32,
    held: Vec<f64>,
}

/// What the coach takes from a [`LapSummary`]: the lap's number, time window and validity.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LapClose {
    lap: u32,
    /// Line crossing at the start (else the lap's first sample), s.
    t_start_s: f64,
    /// Line crossing at the end (else the lap's last sample), s.
    t_end_s: f64,
    lap_time_s: Option<f64>,
    validity: LapValidity,
    /// Closed at the line (not by the end of the stream): the next lap starts at `t_end_s`.
    at_line: bool,
}

impl LapClose {
    fn from_summary(s: &LapSummary) -> LapClose {
        LapClose {
            lap: s.lap,
            t_start_s: s.t_start_s,
            t_end_s: s.t_end_s,
            lap_time_s: s.lap_time_s.filter(|t| t.is_finite() && *t > 0.0),
            validity: s.validity,
            at_line: s.closed_by != LapCut::EndOfStream && s.t_end_s.is_finite(),
        }
    }
}

/// What the coach made of one lap the lap engine closed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoachLap {
    /// The lap engine's number of the lap.
    pub lap: u32,
    /// The lap engine's start of the lap (line crossing, else first sample), s.
    pub t_start_s: f64,
    /// The lap engine's end of the lap (line crossing, else last sample), s.
    pub t_end_s: f64,
    /// Whether the lap went into the baseline, and if not why.
    pub used: LapUse,
}

/// Whether a closed lap went into the driver's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LapUse {
    /// A clean lap: its lap time, sectors and corner passes are in the baseline.
    Baseline,
    /// The lap engine did not judge the lap clean (pit, out-lap, safety car, incomplete) or
    /// gave it no lap time.
    NotClean,
    /// Numbered below `min_lap` (the opening lap).
    OpeningLap,
    /// Slower than `slow_lap_factor` times the driver's pace (traffic, an incident).
    OffPace,
    /// The coach holds no sample of the lap (no lap distance).
    NoSamples,
}

#[derive(Debug, Clone, Default)]
struct Live {
    /// Last processed point of the open lap (`None` before its first point).
    prev: Option<Pt>,
    /// Points behind `prev` not processed: distance jitter (dropped when a later point moves
    /// on), or points past the line the lap engine has not closed the lap for yet (processed
    /// in the next lap when it does).
    held: VecDeque<Pt>,
    /// The lap engine's last close: numbers the open lap and says where it started.
    last_close: Option<LapClose>,
    /// Provisional number of the open lap (the engine's last lap + 1, else the source's lap
    /// field): the lap engine confirms it when it closes the lap.
    lap: u32,
    /// The lap's start was seen (the engine closed the previous lap at the line just
    /// before) and no gap since: its corner windows can be evaluated.
    lap_ok: bool,
    lap_pit: bool,
    out_lap: bool,
    /// The car's pit-lane state at the last point that said (carried across laps).
    in_pit: bool,
    win: Option<Win>,
    next_win: usize,
    sector_t: Vec<Option<f64>>,
    next_sector: usize,
    obs: Vec<Option<Obs>>,
}

/// Map learning: buffered points and the laps the lap engine closed among them.
#[derive(Debug, Clone, Default)]
struct Pending {
    pts: Vec<Pt>,
    /// The lap engine's closes, each with the number of points pushed before it (replayed
    /// in that order once the map is known).
    closes: Vec<(usize, LapClose)>,
    /// The close just before `pts[0]` when older points were dropped.
    first_close: Option<LapClose>,
    /// Complete, pit-free laps: (start index, end index, lap time).
    laps: Vec<(usize, usize, f64)>,
    max_d: f64,
}

/// One car's coach: corner windows, baseline and alerts. Feed it with [`CoachTracker::push`].
#[derive(Debug, Clone)]
pub struct CoachTracker {
    cfg: CoachConfig,
    car_id: Arc<str>,
    session_id: Arc<str>,
    track: String,
    map: Option<Arc<CornerMap>>,
    pending: Pending,
    live: Live,
    corners: Vec<[Running; N_METRICS]>,
    mstate: Vec<[MState; N_METRICS]>,
    sectors: Vec<Running>,
    lap_time: Running,
    clean_laps: u32,
    laps_seen: u32,
    best_lap_s: Option<f64>,
    /// (metric, sign, lap) of alerts emitted, for the car-wide de-duplication.
    emitted: Vec<(Metric, i8, u32)>,
    log: VecDeque<CoachingAlert>,
    lap_log: VecDeque<CoachLap>,
    alerts_out: Vec<CoachingAlert>,
    last: Vec<Option<CornerPass>>,
}

impl CoachTracker {
    /// A tracker for `car_id` that learns the corner map from its first clean laps.
    pub fn new(car_id: &str, cfg: CoachConfig) -> Self {
        CoachTracker {
            cfg,
            car_id: car_id.into(),
            session_id: "".into(),
            track: String::new(),
            map: None,
            pending: Pending::default(),
            live: Live::default(),
            corners: Vec::new(),
            mstate: Vec::new(),
            sectors: Vec::new(),
            lap_time: Running::default(),
            clean_laps: 0,
            laps_seen: 0,
            best_lap_s: None,
            emitted: Vec::new(),
            log: VecDeque::new(),
            lap_log: VecDeque::new(),
            alerts_out: Vec::new(),
            last: Vec::new(),
        }
    }

    /// A tracker with a known corner map. An inconsistent map (windows out of order or off
    /// the lap) is ignored and learned instead.
    pub fn with_map(car_id: &str, map: Arc<CornerMap>, cfg: CoachConfig) -> Self {
        let mut t = CoachTracker::new(car_id, cfg);
        t.track = map.track.clone();
        t.install_map(map);
        t
    }

    /// Restores a tracker from a persisted profile (baseline, map, lap counts). Episode
    /// history is not persisted: alerts need fresh deviating passes after a restore.
    pub fn from_profile(profile: &DriverProfile, cfg: CoachConfig) -> Self {
        let mut t = CoachTracker::new(&profile.car_id, cfg);
        t.track = profile.track.clone();
        if let Some(m) = &profile.corner_map {
            t.install_map(Arc::new(m.clone()));
        }
        let w = t.cfg.stat_window;
        if t.map.is_some() {
            for (slot, cp) in t.corners.iter_mut().zip(&profile.corners) {
                for m in Metric::ALL {
                    slot[m.idx()] = Running::from_stat(cp.get(m), w);
                }
            }
            for (slot, s) in t.sectors.iter_mut().zip(&profile.sector_times_s) {
                *slot = Running::from_stat(s, w);
            }
        }
        t.lap_time = Running::from_stat(&profile.lap_time_s, w);
        t.clean_laps = profile.clean_laps;
        t.laps_seen = profile.laps_seen;
        t.best_lap_s = (t.lap_time.n() > 0).then(|| t.lap_time.mean());
        t
    }

    /// The corner map in use, if known yet.
    pub fn map(&self) -> Option<&Arc<CornerMap>> {
        self.map.as_ref()
    }

    /// Baseline status.
    pub fn status(&self) -> ProfileStatus {
        if self.clean_laps >= self.cfg.min_clean_laps && self.map.is_some() {
            ProfileStatus::Ready
        } else {
            ProfileStatus::BuildingBaseline
        }
    }

    /// The most recent alerts (oldest first), at most `alert_log_len`.
    pub fn recent_alerts(&self) -> impl Iterator<Item = &CoachingAlert> {
        self.log.iter()
    }

    /// The most recent laps the lap engine closed and what the coach made of them (oldest
    /// first, at most 200). Laps closed while the corner map was still unknown appear once
    /// the map is learnt (they are replayed then).
    pub fn recent_laps(&self) -> impl Iterator<Item = &CoachLap> {
        self.lap_log.iter()
    }

    /// Sets the corner map (e.g. shared by [`crate::Coach`]) and replays the points buffered
    /// while it was unknown. Returns the alerts of the replay (normally none: the baseline is
    /// still building). Ignored when a map is already set or `map` is inconsistent.
    pub fn set_map(&mut self, map: Arc<CornerMap>) -> Vec<CoachingAlert> {
        if self.map.is_some() || !map.is_consistent() {
            return Vec::new();
        }
        self.install_map(map);
        let pe = std::mem::take(&mut self.pending);
        self.live.last_close = pe.first_close;
        let mut closes = pe.closes.iter().peekable();
        for (i, p) in pe.pts.iter().enumerate() {
            while let Some((_, c)) = closes.next_if(|(at, _)| *at <= i) {
                self.close_lap(c);
            }
            self.process(p);
        }
        for (_, c) in closes {
            self.close_lap(c);
        }
        std::mem::take(&mut self.alerts_out)
    }

    fn install_map(&mut self, map: Arc<CornerMap>) {
        if !map.is_consistent() {
            return;
        }
        let nc = map.corners.len();
        self.corners = vec![[Running::default(); N_METRICS]; nc];
        self.mstate = vec![Default::default(); nc];
        self.last = vec![None; nc];
        self.sectors = vec![Running::default(); map.sector_count()];
        self.lap_time = Running::default();
        self.clean_laps = 0;
        self.laps_seen = 0;
        self.best_lap_s = None;
        self.live = Live::default();
        self.map = Some(map);
    }

    /// Takes one sample of this car (samples of other cars are ignored) into the open lap.
    /// Returns the alerts raised by it: at most a few, when the sample closes a corner window.
    /// The lap itself is closed by [`CoachTracker::on_lap`].
    pub fn push(&mut self, s: &Sample) -> Vec<CoachingAlert> {
        if *s.car_id != *self.car_id {
            return Vec::new();
        }
        if self.session_id.is_empty() {
            self.session_id = s.session_id.clone();
        }
        if self.track.is_empty() {
            self.track = s.track_or_session().to_string();
        }
        let Some(p) = Pt::from_sample(s) else {
            return Vec::new();
        };
        if self.map.is_none() {
            self.learn(p);
            return std::mem::take(&mut self.alerts_out);
        }
        self.process(&p);
        std::mem::take(&mut self.alerts_out)
    }

    /// Closes the open lap as the lap engine cut it (`summary` of this car; other cars'
    /// are ignored): its number, time window and validity are the engine's. A clean lap goes
    /// into the baseline; samples already pushed past its end start the next lap. Returns
    /// the alerts of the lap's last corner (closed at the line) and of those samples.
    ///
    /// Call it after pushing the sample that made the engine close the lap (or before: both
    /// orders give the same result).
    pub fn on_lap(&mut self, summary: &LapSummary) -> Vec<CoachingAlert> {
        if *summary.car_id != *self.car_id {
            return Vec::new();
        }
        let close = LapClose::from_summary(summary);
        if self.map.is_none() {
            self.learn_lap(close);
        } else {
            self.close_lap(&close);
        }
        std::mem::take(&mut self.alerts_out)
    }

    // ---------------------------------------------------------------- map learning

    fn learn(&mut self, p: Pt) {
        let pe = &mut self.pending;
        if pe.pts.last().is_some_and(|prev| p.t <= prev.t) {
            return;
        }
        pe.max_d = pe.max_d.max(p.d);
        pe.pts.push(p);
        if pe.pts.len() > MAX_PENDING_POINTS {
            // Drop the oldest half, up to a lap start when there is one, so that the replay
            // starts on a lap the engine numbered; laps referring to it go too.
            let half = pe.pts.len() / 2;
            let (cut, first) = match pe.closes.iter().find(|(at, _)| *at >= half) {
                Some(&(at, c)) if at < pe.pts.len() => (at, Some(c)),
                _ => (half, None),
            };
            pe.pts.drain(..cut);
            pe.first_close = first;
            pe.closes.retain(|(at, _)| *at > cut);
            for (at, _) in pe.closes.iter_mut() {
                *at -= cut;
            }
            pe.laps.retain(|l| l.0 >= cut);
            for l in pe.laps.iter_mut() {
                l.0 -= cut;
                l.1 -= cut;
            }
        }
    }

    /// A lap closed while the map is unknown: kept for the replay and, when complete and
    /// pit-free, as a candidate to learn the map from (the fastest of `map_learn_laps`).
    fn learn_lap(&mut self, c: LapClose) {
        let cfg = &self.cfg;
        let pe = &mut self.pending;
        pe.closes.push((pe.pts.len(), c));
        let Some(lt) = c.lap_time_s else {
            return;
        };
        if c.validity.incomplete || c.validity.pit || !c.at_line {
            return;
        }
        let a = pe.pts.partition_point(|q| q.t < c.t_start_s);
        let b = pe.pts.partition_point(|q| q.t < c.t_end_s);
        let seg = &pe.pts[a..b.max(a)];
        let spans = match (seg.first(), seg.last()) {
            (Some(f), Some(l)) => f.d < LINE_TOL_M && l.d > pe.max_d.max(400.0) - LINE_TOL_M,
            _ => false,
        };
        let gap_free = seg
            .windows(2)
            .all(|w| w[1].d - w[0].d <= cfg.max_gap_m && w[1].t - w[0].t <= cfg.max_gap_s);
        if spans && gap_free && !seg.iter().any(|q| q.pit) {
            pe.laps.push((a, b, lt));
        }
        if pe.laps.len() as u32 >= self.cfg.map_learn_laps.max(1) {
            let best = pe.laps.iter().copied().min_by(|a, b| a.2.total_cmp(&b.2));
            if let Some((a, b, _)) = best {
                let pts: Vec<MapPoint> = pe.pts[a..b]
                    .iter()
                    .filter_map(|q| {
                        Some(MapPoint {
                            d_m: q.d,
                            speed_kmh: q.v?,
                            accy_g: q.ay,
                            steer_deg: q.steer,
                        })
                    })
                    .collect();
                let len = pe.max_d;
                match CornerMap::detect_points(&self.track, &pts, Some(len), &self.cfg.detect) {
                    Ok(map) => {
                        let replayed = self.set_map(Arc::new(map));
                        self.alerts_out.extend(replayed);
                    }
                    Err(_) => {
                        // Not learnable from these laps: try again with later ones.
                        self.pending.laps.clear();
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- live processing

    /// One point of the open lap. Corner windows and sector bounds advance with the lap
    /// distance; a point behind the last one is held (see [`Live::held`]).
    fn process(&mut self, p: &Pt) {
        let Some(map) = self.map.clone() else {
            return;
        };
        if self.live.last_close.is_some_and(|c| p.t < c.t_end_s) {
            // Before the end of a lap the engine already closed (a point at the line itself
            // starts the next lap).
            return;
        }
        let Some(prev) = self.live.prev else {
            self.start_lap(p, &map);
            self.live.prev = Some(*p);
            self.advance(None, p, &map);
            return;
        };
        if p.t <= prev.t {
            return;
        }
        if p.d < prev.d - 0.5 {
            // Distance going backwards: jitter, or the line crossed before the lap engine
            // closed the lap. Held until one or the other is known.
            if self.live.held.len() >= MAX_HELD_POINTS {
                self.live.held.pop_front();
            }
            self.live.held.push_back(*p);
            return;
        }
        // Moving on: the held points were jitter, skipped.
        self.live.held.clear();
        if p.d - prev.d > self.cfg.max_gap_m || p.t - prev.t > self.cfg.max_gap_s {
            self.live.lap_ok = false;
            if let Some(w) = self.live.win.as_mut() {
                w.valid = false;
            }
        }
        self.advance(Some(prev), p, &map);
        self.live.prev = Some(*p);
    }

    /// Opens a lap at its first point: numbered provisionally after the engine's last lap,
    /// started at that lap's end (when it ended at the line just before `p`).
    fn start_lap(&mut self, p: &Pt, map: &CornerMap) {
        let max_gap_s = self.cfg.max_gap_s;
        let live = &mut self.live;
        let last = live.last_close;
        live.lap = match last {
            Some(c) => c.lap.saturating_add(1),
            None => p.lap.unwrap_or(0),
        };
        live.lap_ok = last.is_some_and(|c| c.at_line && p.t - c.t_end_s <= max_gap_s);
        // Starting in the pit lane, or after a lap that ended in it: an out-lap.
        live.lap_pit = p.pit;
        live.out_lap = p.pit || live.in_pit;
        live.win = None;
        live.next_win = 0;
        live.sector_t = vec![None; map.sector_bounds_m.len()];
        live.next_sector = 0;
        live.obs = vec![None; map.corners.len()];
    }

    /// Moves through windows and sector bounds with the segment `prev -> p` (same lap).
    fn advance(&mut self, prev: Option<Pt>, p: &Pt, map: &CornerMap) {
        if p.pit {
            self.live.lap_pit = true;
        }
        if p.pit_known {
            // Leaving the pit lane makes this an out-lap (the lap engine's rule).
            if self.live.in_pit && !p.pit {
                self.live.out_lap = true;
            }
            self.live.in_pit = p.pit;
        }
        // Sector crossings.
        while let Some(&b) = map.sector_bounds_m.get(self.live.next_sector) {
            if p.d < b {
                break;
            }
            let t = prev.filter(|q| q.d < b).map(|q| t_at(&q, p, b));
            if let Some(slot) = self.live.sector_t.get_mut(self.live.next_sector) {
                *slot = t;
            }
            self.live.next_sector += 1;
        }
        // Corner windows.
        loop {
            if let Some(w) = &self.live.win {
                let c = &map.corners[w.k];
                if p.d >= c.end_m {
                    let t_end = prev.filter(|q| q.d < c.end_m).map(|q| t_at(&q, p, c.end_m));
                    let w = self.live.win.take();
                    if let Some(mut w) = w {
                        if let Some(q) = prev {
                            // The segment up to the window end still belongs to it.
                            w.add(Some(&q), p, &self.cfg, map);
                        }
                        self.finish_window(w, t_end, p.t, map);
                    }
                    continue;
                }
                break;
            }
            let k = self.live.next_win;
            let Some(c) = map.corners.get(k) else {
                break;
            };
            if p.d < c.entry_m {
                break;
            }
            self.live.next_win += 1;
            if p.d >= c.end_m {
                continue; // skipped a whole window (gap or start mid-lap)
            }
            let entry_prev = prev.filter(|q| q.d < c.entry_m);
            self.live.win = Some(Win {
                k,
                valid: entry_prev.is_some() && self.live.lap_ok,
                pit: false,
                t_entry: entry_prev.map(|q| t_at(&q, p, c.entry_m)),
                min_v: None,
                min_v_d: 0.0,
                exit_v: None,
                run: None,
                runs: Vec::new(),
                watch_throttle: false,
            });
        }
        if let Some(w) = self.live.win.as_mut() {
            w.add(prev.as_ref(), p, &self.cfg, map);
        }
    }

    /// Closes the open lap where the lap engine did: the last corner window at the line,
    /// the baseline if the lap is clean. Then opens the next lap with the held points past
    /// the line.
    fn close_lap(&mut self, c: &LapClose) {
        let Some(map) = self.map.clone() else {
            return;
        };
        let held = std::mem::take(&mut self.live.held);
        let used = match self.live.prev {
            Some(prev) => {
                // The engine's number and flags hold for the last corner's evaluation.
                self.live.lap = c.lap;
                self.live.lap_pit |= c.validity.pit;
                self.live.out_lap |= c.validity.out_lap;
                if let Some(w) = self.live.win.take() {
                    let last = map
                        .corners
                        .get(w.k)
                        .is_some_and(|k| k.end_m >= map.length_m - 1.0);
                    let at_line = c.at_line
                        && c.t_end_s >= prev.t
                        && c.t_end_s - prev.t <= self.cfg.max_gap_s;
                    let t_end = (last && at_line).then_some(c.t_end_s);
                    self.finish_window(w, t_end, prev.t, &map);
                }
                self.commit_lap(c)
            }
            None => LapUse::NoSamples,
        };
        self.laps_seen += 1;
        self.lap_log.push_back(CoachLap {
            lap: c.lap,
            t_start_s: c.t_start_s,
            t_end_s: c.t_end_s,
            used,
        });
        while self.lap_log.len() > LAP_LOG_LEN {
            self.lap_log.pop_front();
        }
        let live = &mut self.live;
        live.last_close = Some(*c);
        live.prev = None;
        live.win = None;
        for p in held.iter().filter(|p| p.t >= c.t_end_s) {
            self.process(p);
        }
    }

    /// Adds the closed lap to the baseline when it is clean: judged clean by the lap engine,
    /// not the opening lap, and within `slow_lap_factor` of the driver's pace.
    fn commit_lap(&mut self, c: &LapClose) -> LapUse {
        let lt = match c.lap_time_s {
            Some(t) if c.validity.is_clean() => t,
            _ => return LapUse::NotClean,
        };
        self.best_lap_s = Some(self.best_lap_s.map_or(lt, |b| b.min(lt)));
        if c.lap < self.cfg.min_lap {
            return LapUse::OpeningLap;
        }
        let reference = if self.lap_time.n() >= 3 {
            self.lap_time.mean()
        } else {
            self.best_lap_s.unwrap_or(lt)
        };
        let slow = self.cfg.slow_lap_factor.max(1.0);
        if self.status() == ProfileStatus::BuildingBaseline
            && self.lap_time.n() > 0
            && lt * slow < self.lap_time.mean()
        {
            // Much faster than the laps collected so far: those were not representative
            // (safety car, traffic at the start). Start the baseline again.
            self.reset_baseline();
        } else if lt > slow * reference {
            return LapUse::OffPace;
        }
        // Clean lap: commit.
        let w = self.cfg.stat_window;
        self.lap_time.push(lt, w);
        let obs = std::mem::take(&mut self.live.obs);
        for (k, o) in obs.iter().enumerate() {
            let (Some(o), Some(slot)) = (o, self.corners.get_mut(k)) else {
                continue;
            };
            for m in Metric::ALL {
                if let (Some(x), false) = (o.values[m.idx()], o.held[m.idx()]) {
                    slot[m.idx()].push(x, w);
                }
            }
        }
        let mut bounds: Vec<Option<f64>> = Vec::with_capacity(self.sectors.len() + 1);
        bounds.push(Some(c.t_end_s - lt));
        bounds.extend(self.live.sector_t.iter().copied());
        bounds.push(Some(c.t_end_s));
        for (i, s) in self.sectors.iter_mut().enumerate() {
            if let (Some(Some(a)), Some(Some(b))) = (bounds.get(i), bounds.get(i + 1)) {
                if b > a {
                    s.push(b - a, w);
                }
            }
        }
        self.clean_laps += 1;
        LapUse::Baseline
    }

    fn reset_baseline(&mut self) {
        for c in self.corners.iter_mut() {
            *c = [Running::default(); N_METRICS];
        }
        for s in self.sectors.iter_mut() {
            *s = Running::default();
        }
        self.lap_time = Running::default();
        self.clean_laps = 0;
    }

    fn finish_window(&mut self, w: Win, t_end: Option<f64>, t_now: f64, map: &CornerMap) {
        let k = w.k;
        if !w.valid || !self.live.lap_ok {
            return;
        }
        let pit = w.pit;
        let Some(obs) = w.observe(t_end) else {
            return;
        };
        let mut obs = obs;
        let lap = self.live.lap;
        let evaluable = self.status() == ProfileStatus::Ready
            && lap >= self.cfg.min_lap
            && !self.live.out_lap
            && !pit
            && !self.live.lap_pit;
        let mut zs = std::collections::BTreeMap::new();
        if evaluable {
            self.evaluate(k, &mut obs, lap, t_now, map, &mut zs);
        }
        if let Some(slot) = self.last.get_mut(k) {
            *slot = Some(CornerPass {
                corner: map.corners[k].number,
                lap,
                values: Metric::ALL
                    .iter()
                    .filter_map(|m| obs.values[m.idx()].map(|v| (*m, v)))
                    .collect(),
                z: zs,
            });
        }
        if !pit {
            if let Some(slot) = self.live.obs.get_mut(k) {
                *slot = Some(obs);
            }
        }
    }

    /// z-scores of one corner pass against the baseline; raises alerts.
    fn evaluate(
        &mut self,
        k: usize,
        obs: &mut Obs,
        lap: u32,
        t_now: f64,
        map: &CornerMap,
        zs: &mut std::collections::BTreeMap<Metric, f64>,
    ) {
        let Some(base) = self.corners.get(k).copied() else {
            return;
        };
        let min_n = self.cfg.min_clean_laps.max(2);
        let ct_base = base[Metric::CornerTime.idx()];
        let ct = obs.values[Metric::CornerTime.idx()];
        // Pace check: skip passes far off the usual corner time.
        if ct_base.n() >= min_n {
            match ct {
                Some(t) if t <= self.cfg.slow_corner_factor * ct_base.mean() => {}
                _ => return,
            }
        } else {
            return;
        }
        let ct_dev = ct.map(|t| t - ct_base.mean());
        let zt = self.cfg.z_threshold.abs().max(0.5);
        let zh = self.cfg.z_hold.abs().clamp(0.5, zt);
        let n_keep = self.cfg.alert_n.max(1);
        let k_need = self.cfg.alert_k.clamp(1, n_keep);
        let mut candidates: Vec<(Metric, f64, f64, Option<f64>)> = Vec::new();
        for m in Metric::ALERT_PRIORITY {
            let i = m.idx();
            let Some(x) = obs.values[i] else {
                continue;
            };
            let st = base[i];
            if st.n() < min_n {
                continue;
            }
            let floor = self.cfg.floors.get(m);
            let sd = ((st.var() + floor * floor) * (1.0 + 1.0 / f64::from(st.n()))).sqrt();
            if sd <= 0.0 || !sd.is_finite() {
                continue;
            }
            let z = (x - st.mean()) / sd;
            if !z.is_finite() {
                continue;
            }
            zs.insert(m, z);
            let Some(ms) = self.mstate.get_mut(k).map(|a| &mut a[i]) else {
                continue;
            };
            let dev = z.abs() >= zt;
            let hold = z.abs() >= zh;
            let sign: i8 = if z >= 0.0 { 1 } else { -1 };
            ms.recent.push_back((z, ct_dev));
            while ms.recent.len() > n_keep {
                ms.recent.pop_front();
            }
            if hold {
                // Not (yet) part of the baseline: it may be the start of a habit change.
                obs.held[i] = true;
                ms.consec_dev += 1;
                ms.held.push(x);
            } else {
                if ms.consec_dev == 1 {
                    // An isolated outlier after all: it belongs to the driver's spread.
                    if let Some(slot) = self.corners.get_mut(k) {
                        for &h in &ms.held {
                            slot[i].push(h, self.cfg.stat_window);
                        }
                    }
                }
                ms.consec_dev = 0;
                ms.held.clear();
            }
            let same: Vec<Option<f64>> = ms
                .recent
                .iter()
                .filter(|(r, _)| r.abs() >= zt && (*r >= 0.0) == (sign > 0))
                .map(|(_, d)| *d)
                .collect();
            if !dev {
                let calm = ms.recent.iter().rev().take(2).all(|(r, _)| r.abs() < zt);
                if calm {
                    ms.episode = 0;
                }
            }
            if dev && same.len() >= k_need && ms.episode != sign {
                ms.episode = sign;
                let dts: Vec<f64> = same.iter().flatten().copied().collect();
                let exp = (!dts.is_empty()).then(|| dts.iter().sum::<f64>() / dts.len() as f64);
                candidates.push((m, x, z, exp));
            }
            if ms.consec_dev >= self.cfg.rebaseline_after.max(2) {
                // A lasting change: it is the driver's new normal.
                let mut r = Running::default();
                for &h in &ms.held {
                    r.push(h, self.cfg.stat_window);
                }
                ms.held.clear();
                ms.consec_dev = 0;
                ms.episode = 0;
                ms.recent.clear();
                if let Some(slot) = self.corners.get_mut(k) {
                    slot[i] = r;
                }
            }
        }
        // One alert per corner per lap, the most causal; one per metric and direction per
        // two laps across corners.
        for (m, x, z, exp) in candidates {
            let sign: i8 = if z >= 0.0 { 1 } else { -1 };
            let recent = self
                .emitted
                .iter()
                .any(|&(em, es, el)| em == m && es == sign && el + 1 >= lap && el <= lap);
            // Already a car-wide pattern (two other corners in the same episode): said.
            let pattern = self
                .mstate
                .iter()
                .enumerate()
                .filter(|(j, st)| *j != k && st[m.idx()].episode == sign)
                .count()
                >= 2;
            if recent || pattern {
                continue;
            }
            let st = base[m.idx()];
            let c = &map.corners[k];
            let mean = st.mean();
            let std = st.var().sqrt();
            let alert = CoachingAlert {
                session_id: self.session_id.to_string(),
                car_id: self.car_id.to_string(),
                track: self.track.clone(),
                lap,
                t_s: t_now,
                corner: c.number,
                corner_name: c.label(),
                metric: m,
                value: x,
                baseline_mean: mean,
                baseline_std: std,
                delta: x - mean,
                z,
                message: message(m, x - mean, &c.label(), exp),
                expected_delta_s: exp,
            };
            self.emitted.push((m, sign, lap));
            if self.emitted.len() > 64 {
                self.emitted.drain(..32);
            }
            self.log.push_back(alert.clone());
            while self.log.len() > self.cfg.alert_log_len {
                self.log.pop_front();
            }
            self.alerts_out.push(alert);
            break;
        }
    }

    /// The latest pass through each corner (index = corner number - 1), with z-scores.
    pub fn last_passes(&self) -> &[Option<CornerPass>] {
        &self.last
    }

    /// The driver's profile: baseline per corner and sector, lap-time consistency, status.
    pub fn profile(&self) -> DriverProfile {
        let corners = match &self.map {
            Some(map) => map
                .corners
                .iter()
                .zip(&self.corners)
                .map(|(c, st)| {
                    let mut cp = CornerProfile {
                        corner: c.number,
                        name: c.label(),
                        ..CornerProfile::default()
                    };
                    for m in Metric::ALL {
                        *cp.get_mut(m) = st[m.idx()].stat();
                    }
                    cp
                })
                .collect(),
            None => Vec::new(),
        };
        let lap = self.lap_time.stat();
        let status = self.status();
        DriverProfile {
            car_id: self.car_id.to_string(),
            track: self.track.clone(),
            status,
            clean_laps: self.clean_laps,
            laps_to_go: match status {
                ProfileStatus::Ready => 0,
                ProfileStatus::BuildingBaseline => self
                    .cfg
                    .min_clean_laps
                    .saturating_sub(self.clean_laps)
                    .max(1),
            },
            laps_seen: self.laps_seen,
            corner_map: self.map.as_deref().cloned(),
            corners,
            sector_times_s: self.sectors.iter().map(|s| s.stat()).collect(),
            lap_time_s: lap,
            lap_time_cv: lap.cv(),
        }
    }
}

impl Win {
    fn add(&mut self, prev: Option<&Pt>, p: &Pt, cfg: &CoachConfig, map: &CornerMap) {
        let Some(c) = map.corners.get(self.k) else {
            return;
        };
        // Only the part of the segment inside the window counts for speeds.
        if p.d >= c.entry_m && p.d < c.end_m {
            if let Some(v) = p.v {
                if self.min_v.is_none_or(|m| v < m) {
                    self.min_v = Some(v);
                    self.min_v_d = p.d;
                }
            }
            if p.pit {
                self.pit = true;
            }
        }
        if self.exit_v.is_none() && p.d >= c.exit_m {
            if let Some(q) = prev.filter(|q| q.d < c.exit_m) {
                if let (Some(a), Some(b)) = (q.v, p.v) {
                    self.exit_v = Some(lerp(a, b, frac(q.d, p.d, c.exit_m)));
                }
            }
        }
        if p.d >= c.end_m {
            return;
        }
        let thr = cfg.brake_on_bar;
        let on = p.brake.is_some_and(|b| b > thr);
        let prev_level = prev.and_then(|q| q.brake);
        match (self.run.as_mut(), on) {
            (None, true) => {
                self.confirm_full_throttle();
                let (start_d, start_v) = match (prev, prev_level) {
                    (Some(q), Some(lq)) if lq <= thr => {
                        let f = frac(lq, p.brake.unwrap_or(thr), thr);
                        let v = match (q.v, p.v) {
                            (Some(a), Some(b)) => Some(lerp(a, b, f)),
                            _ => None,
                        };
                        (Some(lerp(q.d, p.d, f)), v)
                    }
                    _ => (None, None),
                };
                let mut r = Run {
                    first_d: p.d,
                    start_d,
                    start_v,
                    bias_ok: true,
                    ..Run::default()
                };
                r.accumulate(p);
                self.run = Some(r);
            }
            (Some(r), true) => r.accumulate(p),
            (Some(_), false) => {
                let release_t = match (prev, prev_level, p.brake) {
                    (Some(q), Some(lq), Some(lp)) => Some(lerp(q.t, p.t, frac(lq, lp, thr))),
                    _ => Some(p.t),
                };
                if let Some(mut r) = self.run.take() {
                    r.release_t = release_t;
                    self.close(r);
                }
            }
            (None, false) => {}
        }
        if self.watch_throttle {
            if let (Some(q), Some(tp), Some(b)) = (prev, p.thr, self.runs.last_mut()) {
                let tq = q.thr.unwrap_or(0.0);
                let cross = |level: f64| {
                    if tq < level {
                        lerp(q.t, p.t, frac(tq, tp, level))
                    } else {
                        p.t
                    }
                };
                if b.throttle_on_t.is_none() && tp >= cfg.throttle_on_pct {
                    b.throttle_on_t = Some(cross(cfg.throttle_on_pct));
                }
                if tp >= cfg.full_throttle_pct {
                    let cand = *b
                        .full_cand_t
                        .get_or_insert_with(|| cross(cfg.full_throttle_pct));
                    if p.t - cand >= cfg.full_throttle_hold_s {
                        b.throttle_t = Some(cand);
                        self.watch_throttle = false;
                    }
                } else {
                    // A brief touch of the threshold is not full throttle yet.
                    b.full_cand_t = None;
                }
            }
        }
    }

    fn close(&mut self, r: Run) {
        if self.runs.len() >= 16 {
            // Pathological pedal chatter: keep the strongest runs only.
            if let Some((i, _)) = self
                .runs
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.peak_level.total_cmp(&b.1.peak_level))
            {
                self.runs.remove(i);
            }
        }
        self.watch_throttle = r.release_t.is_some();
        self.runs.push(r);
    }

    /// Full throttle held until braking again (or the window end) counts.
    fn confirm_full_throttle(&mut self) {
        if self.watch_throttle {
            if let Some(b) = self.runs.last_mut() {
                if b.throttle_t.is_none() {
                    b.throttle_t = b.full_cand_t;
                }
            }
        }
        self.watch_throttle = false;
    }

    /// The corner's braking: the last substantial run (peak at least 30 % of the window's
    /// strongest) that began before the speed minimum; brake taps after the apex (kinks on
    /// the following straight) and trail blips do not count.
    fn main_run(&self) -> Option<Run> {
        let max_peak = self.runs.iter().fold(0.0_f64, |m, r| m.max(r.peak_level));
        let strong = |r: &&Run| r.peak_level >= 0.3 * max_peak;
        self.runs
            .iter()
            .rfind(|r| strong(r) && (self.min_v.is_none() || r.first_d <= self.min_v_d + 5.0))
            .or_else(|| self.runs.iter().rfind(strong))
            .copied()
    }

    /// The pass's metrics, or `None` when the window was not fully seen.
    fn observe(mut self, t_end: Option<f64>) -> Option<Obs> {
        let t_entry = self.t_entry?;
        let t_end = t_end?;
        if let Some(r) = self.run.take() {
            self.close(r);
        }
        self.confirm_full_throttle();
        let mut o = Obs::default();
        let set = |o: &mut Obs, m: Metric, x: Option<f64>| {
            o.values[m.idx()] = x.filter(|v| v.is_finite());
        };
        set(
            &mut o,
            Metric::CornerTime,
            Some(t_end - t_entry).filter(|d| *d > 0.0),
        );
        set(&mut o, Metric::MinSpeed, self.min_v);
        set(&mut o, Metric::ExitSpeed, self.exit_v);
        if let Some(b) = self.main_run() {
            set(&mut o, Metric::BrakePoint, b.start_d);
            set(&mut o, Metric::EntrySpeed, b.start_v);
            set(&mut o, Metric::PeakBrake, b.peak_bar);
            let tot = b.sum_f + b.sum_r;
            set(
                &mut o,
                Metric::BrakeBias,
                (b.bias_ok && tot > 1e-9).then(|| b.sum_f / tot),
            );
            let pickup = match (b.release_t, b.throttle_t) {
                (Some(a), Some(c)) if c >= a => Some(c - a),
                _ => None,
            };
            set(&mut o, Metric::ThrottlePickup, pickup);
            let on = match (b.release_t, b.throttle_on_t) {
                (Some(a), Some(c)) if c >= a => Some(c - a),
                _ => None,
            };
            set(&mut o, Metric::ThrottleOn, on);
        }
        Some(o)
    }
}

impl Run {
    fn accumulate(&mut self, p: &Pt) {
        let level = p.brake.unwrap_or(0.0);
        self.peak_level = self.peak_level.max(level);
        if let Some(b) = p.bf.or(p.br) {
            self.peak_bar = Some(self.peak_bar.map_or(b, |m| m.max(b)));
        }
        match (p.bf, p.br) {
            (Some(f), Some(r)) => {
                self.sum_f += f;
                self.sum_r += r;
            }
            _ => self.bias_ok = false,
        }
    }
}

fn fmt_s(x: f64) -> String {
    format!("{:.2} s", x.abs())
}

/// Radio-ready English for one deviation.
pub(crate) fn message(m: Metric, delta: f64, corner: &str, expected_s: Option<f64>) -> String {
    let more = delta >= 0.0;
    let a = delta.abs();
    let core = match m {
        Metric::BrakePoint => format!(
            "Braking {:.0} m {} than your baseline into {corner}",
            a.max(1.0),
            if more { "later" } else { "earlier" }
        ),
        Metric::PeakBrake => format!(
            "Braking {:.0} bar {} than your baseline into {corner}",
            a.max(1.0),
            if more { "harder" } else { "softer" }
        ),
        Metric::BrakeBias => format!(
            "Brake bias {:.1}% further {} than your baseline (seen into {corner})",
            a * 100.0,
            if more { "forward" } else { "rearward" }
        ),
        Metric::MinSpeed => format!(
            "Minimum speed {:.0} km/h {} than your baseline in {corner}",
            a.max(1.0),
            if more { "higher" } else { "lower" }
        ),
        Metric::EntrySpeed => format!(
            "Entry speed {:.0} km/h {} than your baseline into {corner}",
            a.max(1.0),
            if more { "higher" } else { "lower" }
        ),
        Metric::ExitSpeed => format!(
            "Exit speed {:.0} km/h {} than your baseline out of {corner}",
            a.max(1.0),
            if more { "higher" } else { "lower" }
        ),
        Metric::ThrottlePickup => format!(
            "Full throttle {} {} than your baseline out of {corner}",
            fmt_s(a),
            if more { "later" } else { "earlier" }
        ),
        Metric::ThrottleOn => format!(
            "Picking up the throttle {} {} than your baseline out of {corner}",
            fmt_s(a),
            if more { "later" } else { "earlier" }
        ),
        Metric::CornerTime => format!(
            "{} {} than your baseline through {corner}",
            fmt_s(a),
            if more { "slower" } else { "faster" }
        ),
    };
    match expected_s.filter(|e| e.abs() >= 0.01) {
        Some(e) if e > 0.0 => format!("{core}, costing {}", fmt_s(e)),
        Some(e) => format!("{core}, gaining {}", fmt_s(e)),
        None => core,
    }
}

/// All cars of a session: one [`CoachTracker`] per car, one corner map per track (learned
/// from the first car that completes its learning laps, then shared).
#[derive(Debug, Clone, Default)]
pub struct Coach {
    cfg: CoachConfig,
    trackers: HashMap<Arc<str>, CoachTracker>,
    maps: HashMap<String, Arc<CornerMap>>,
}

impl Coach {
    /// An empty coach.
    pub fn new(cfg: CoachConfig) -> Self {
        Coach {
            cfg,
            trackers: HashMap::new(),
            maps: HashMap::new(),
        }
    }

    /// Uses `map` for its track (instead of learning one).
    pub fn set_map(&mut self, map: CornerMap) {
        let map = Arc::new(map);
        for t in self.trackers.values_mut() {
            if t.track == map.track {
                let _ = t.set_map(map.clone());
            }
        }
        self.maps.insert(map.track.clone(), map);
    }

    /// Restores a car from a persisted profile.
    pub fn restore(&mut self, profile: &DriverProfile) {
        let t = CoachTracker::from_profile(profile, self.cfg.clone());
        if let (Some(m), false) = (t.map(), self.maps.contains_key(&profile.track)) {
            self.maps.insert(profile.track.clone(), m.clone());
        }
        self.trackers.insert(profile.car_id.as_str().into(), t);
    }

    /// Takes one sample of any car into its open lap; returns the alerts it raised (corner
    /// passes evaluated as the car leaves them). Laps are closed by [`Coach::on_lap`].
    pub fn push(&mut self, s: &Sample) -> Vec<CoachingAlert> {
        let track = s.track_or_session();
        let cfg = &self.cfg;
        let t = self
            .trackers
            .entry(s.car_id.clone())
            .or_insert_with(|| CoachTracker::new(&s.car_id, cfg.clone()));
        let mut out = Vec::new();
        if t.map.is_none() {
            if let Some(m) = self.maps.get(track) {
                if t.track.is_empty() {
                    t.track = track.to_string();
                }
                out.extend(t.set_map(m.clone()));
            }
        }
        out.extend(t.push(s));
        if let Some(m) = t.map() {
            if !self.maps.contains_key(track) {
                self.maps.insert(track.to_string(), m.clone());
            }
        }
        out
    }

    /// Closes a car's lap as its [`laps::LapEngine`] cut it: the lap's number, time window
    /// (`t_start_s`..`t_end_s`) and validity are the summary's, and only a lap the engine
    /// judged clean goes into the driver's baseline. Returns the alerts raised at the close
    /// (the last corner, closed at the line). Feed each car's samples to [`Coach::push`] and
    /// to its lap engine, and each summary the engine returns here. A car never pushed is
    /// ignored.
    pub fn on_lap(&mut self, summary: &LapSummary) -> Vec<CoachingAlert> {
        let Some(t) = self.trackers.get_mut(&*summary.car_id) else {
            return Vec::new();
        };
        let out = t.on_lap(summary);
        // A map learnt at this lap serves the other cars of the track.
        if let Some(m) = t.map() {
            if !self.maps.contains_key(&t.track) {
                self.maps.insert(t.track.clone(), m.clone());
            }
        }
        out
    }

    /// The tracker of `car_id`.
    pub fn tracker(&self, car_id: &str) -> Option<&CoachTracker> {
        self.trackers.get(car_id)
    }

    /// The profile of `car_id`.
    pub fn profile(&self, car_id: &str) -> Option<DriverProfile> {
        self.trackers.get(car_id).map(|t| t.profile())
    }

    /// Car ids known, sorted.
    pub fn car_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trackers.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// The map used for `track`, if known.
    pub fn map(&self, track: &str) -> Option<&Arc<CornerMap>> {
        self.maps.get(track)
    }
}
