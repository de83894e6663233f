//! Live race order and time gaps between cars of one session.
//!
//! Every car's progress is `laps_completed · track_length + lap_dist`. Laps completed start at
//! the source's lap field − 1 on the car's first sample (0 without it; −1 for lap 0, a car behind
//! the line before the start, so that it is not a lap ahead of the cars past it) and count
//! distance wraps after that. Each car records the instant it passes fixed distance marks along its progress
//! (every `mark_spacing_m`, interpolated between samples) in a bounded ring.
//!
//! - Gap of car B to car A, seconds: B's latest sample time minus the time A passed B's current
//!   progress (interpolated between A's marks). Two cars on the same line at constant speeds
//!   with a time offset Δ have a gap of exactly Δ. When A's history no longer covers the point
//!   (beyond the ring), the gap falls back to the distance between them over B's speed.
//! - Closing rate, s per lap: the gap one lap of B's progress ago minus the gap now (positive
//!   = closing); with less than a lap of shared history but at least `min_closing_span_m`, the
//!   change over the span available scaled to a lap.
//! - Position precedence: the source's `position` when every car in the order has one (the
//!   latest seen); otherwise computed from progress. [`Gaps::position_source`] says which.
//! - Overtaking opportunity: gap ahead < `close_gap_s` and closing; under pressure: gap behind
//!   < `close_gap_s` and the car behind closing.
//!
//! One `RaceOrder` per session. Memory per car is bounded by `history_marks`.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use telemetry::Sample;

/// Configuration of a [`RaceOrder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaceOrderConfig {
    /// Track length, m. `None`: the largest lap distance seen (any car).
    pub track_length_m: Option<f64>,
    /// Spacing of the timing marks, m. Default 50.
    pub mark_spacing_m: f64,
    /// Marks kept per car (ring). Default 4096 (≈ 200 km at 50 m).
    pub history_marks: usize,
    /// Gap under which a car is "close", s. Default 1.0.
    pub close_gap_s: f64,
    /// Least shared history to give a closing rate, m. Default 500.
    pub min_closing_span_m: f64,
}

impl Default for RaceOrderConfig {
    fn default() -> Self {
        RaceOrderConfig {
            track_length_m: None,
            mark_spacing_m: 50.0,
            history_marks: 4096,
            close_gap_s: 1.0,
            min_closing_span_m: 500.0,
        }
    }
}

/// Where a position comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// The source's `position` field.
    Source,
    /// Computed from laps completed and lap distance.
    Computed,
}

/// A car's place in the race and its gaps, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gaps {
    pub car_id: Arc<str>,
    /// 1 = leader.
    pub position: u32,
    pub position_source: PositionSource,
    pub laps_completed: u32,
    pub lap_dist_m: Option<f64>,
    /// laps_completed · track length + lap distance, m.
    pub progress_m: f64,
    /// Time of the car's latest sample.
    pub t_s: f64,
    pub car_ahead: Option<Arc<str>>,
    pub car_behind: Option<Arc<str>>,
    /// 0 for the leader.
    pub gap_to_leader_s: Option<f64>,
    pub gap_ahead_s: Option<f64>,
    pub gap_behind_s: Option<f64>,
    /// Change of the gap to the car ahead over the last lap, s/lap; positive = closing.
    pub closing_rate_s_per_lap: Option<f64>,
    /// Closing rate of the car behind on this car, s/lap; positive = it is closing.
    pub behind_closing_rate_s_per_lap: Option<f64>,
    /// Gap ahead < `close_gap_s` and closing.
    pub overtaking_opportunity: bool,
    /// Gap behind < `close_gap_s` and the car behind closing.
    pub under_pressure: bool,
}

#[derive(Debug, Clone)]
struct CarTrack {
    car_id: Arc<str>,
    last_t: f64,
    last_d: Option<f64>,
    /// Laps completed; -1 before the first line crossing (a car on the grid behind the line).
    laps_done: i64,
    progress_m: f64,
    speed_mps: Option<f64>,
    source_position: Option<u8>,
    /// Passage times of marks `first_mark ..`.
    marks: VecDeque<f64>,
    first_mark: i64,
    /// Index of the next mark to pass.
    next_mark: i64,
}

impl CarTrack {
    fn passage(&self, k: i64) -> Option<f64> {
        let i = usize::try_from(k.checked_sub(self.first_mark)?).ok()?;
        self.marks.get(i).copied()
    }

    /// The time this car was at `progress_m`, interpolated between its marks (or its latest
    /// sample for the last stretch).
    fn time_at(&self, p: f64, spacing: f64) -> Option<f64> {
        if !p.is_finite() || p > self.progress_m + 1e-9 {
            return None;
        }
        let kf = (p / spacing).floor();
        if kf.is_nan() || kf.abs() >= 9.0e15 {
            return None;
        }
        let k = kf as i64;
        let t0 = self.passage(k)?;
        let p0 = kf * spacing;
        let (p1, t1) = match self.passage(k + 1) {
            Some(t1) => ((kf + 1.0) * spacing, t1),
            None => (self.progress_m, self.last_t),
        };
        if p1 - p0 <= 1e-9 {
            return Some(t0);
        }
        Some(t0 + (p - p0) / (p1 - p0) * (t1 - t0))
    }

    fn earliest_progress(&self, spacing: f64) -> f64 {
        self.first_mark as f64 * spacing
    }
}

/// Live race order of one session, fed with every car's samples.
#[derive(Debug, Clone, Default)]
pub struct RaceOrder {
    cfg: RaceOrderConfig,
    cars: HashMap<Arc<str>, CarTrack>,
    max_d_seen: f64,
    learnt_length_m: Option<f64>,
}

impl RaceOrder {
    /// An empty order.
    pub fn new(mut cfg: RaceOrderConfig) -> Self {
        if !(cfg.mark_spacing_m.is_finite() && cfg.mark_spacing_m > 0.1) {
            cfg.mark_spacing_m = 50.0;
        }
        cfg.history_marks = cfg.history_marks.clamp(16, 1 << 20);
        cfg.track_length_m = cfg.track_length_m.filter(|l| l.is_finite() && *l > 0.0);
        RaceOrder {
            cfg,
            cars: HashMap::new(),
            max_d_seen: 0.0,
            learnt_length_m: None,
        }
    }

    /// Track length in use: configured, else learnt at the first lap-distance wrap of any car
    /// (distance before the wrap plus the distance the mean speed covers past it; the largest
    /// lap distance seen without speeds), then frozen.
    pub fn track_length_m(&self) -> Option<f64> {
        self.cfg.track_length_m.or(self.learnt_length_m)
    }

    /// Number of cars known.
    pub fn len(&self) -> usize {
        self.cars.len()
    }

    /// True when no car is known.
    pub fn is_empty(&self) -> bool {
        self.cars.is_empty()
    }

    /// Forgets a car (retired, left the session).
    pub fn remove(&mut self, car_id: &str) {
        self.cars.remove(car_id);
    }

    /// Feeds one sample of any car. A car enters the order with its first sample that has a
    /// lap distance; later samples without one only refresh its source position. Samples not
    /// after the car's previous one are ignored.
    pub fn update(&mut self, s: &Sample) {
        let spacing = self.cfg.mark_spacing_m;
        let d = s
            .lap_dist_m
            .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1.0e6);
        if let Some(d) = d {
            if self.cfg.track_length_m.is_none() && d > self.max_d_seen {
                self.max_d_seen = d;
            }
        }
        let history = self.cfg.history_marks;
        let speed_mps = s
            .speed_kmh
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| v / 3.6);
        let t = s.t_s;
        if !t.is_finite() {
            return;
        }
        // Learn the track length at the first wrap of any car.
        if self.track_length_m().is_none() {
            if let (Some(d1), Some(car)) = (d, self.cars.get(&*s.car_id)) {
                if let Some(d0) = car.last_d {
                    if d0 - d1 > (0.5 * self.max_d_seen).max(50.0) && t > car.last_t {
                        let by_speed = match (car.speed_mps, speed_mps) {
                            (Some(v0), Some(v1)) => {
                                let after = 0.5 * (v0 + v1) * (t - car.last_t) - d1;
                                Some(d0 + after.max(0.0))
                            }
                            _ => None,
                        };
                        let l = by_speed.unwrap_or(self.max_d_seen).max(d0);
                        if l.is_finite() && l > 100.0 {
                            self.learnt_length_m = Some(l);
                        }
                    }
                }
            }
        }
        let l_eff = self.track_length_m();
        let wrap_base = l_eff.unwrap_or(self.max_d_seen);
        let car = match self.cars.get_mut(&*s.car_id) {
            Some(c) => c,
            None => {
                let Some(d) = d else {
                    return;
                };
                // The source's lap is the lap being driven: lap 0 is the run to the line before
                // the start (a grid behind the line), whose distance counts back from the line.
                let laps_done = s.lap.filter(|l| *l <= 1000).map_or(0, |l| i64::from(l) - 1);
                let progress = laps_done as f64 * l_eff.unwrap_or(0.0) + d;
                let next_mark = (progress / spacing).ceil() as i64;
                let car = CarTrack {
                    car_id: s.car_id.clone(),
                    last_t: t,
                    last_d: Some(d),
                    laps_done,
                    progress_m: progress,
                    speed_mps,
                    source_position: s.position,
                    marks: VecDeque::with_capacity(history.min(1024)),
                    first_mark: next_mark,
                    next_mark,
                };
                self.cars.insert(s.car_id.clone(), car);
                return;
            }
        };
        if t <= car.last_t {
            return;
        }
        if s.position.is_some() {
            car.source_position = s.position;
        }
        let Some(d) = d else {
            return;
        };
        let (t0, p0) = (car.last_t, car.progress_m);
        if let Some(d0) = car.last_d {
            let threshold = (0.5 * wrap_base).max(50.0);
            if d0 - d > threshold {
                car.laps_done = car.laps_done.saturating_add(1).min(1_000_000);
            }
        }
        let p1 = car.laps_done as f64 * l_eff.unwrap_or(0.0) + d;
        car.speed_mps = speed_mps.or_else(|| {
            let v = (p1 - p0) / (t - t0);
            (v.is_finite() && v > 0.0).then_some(v)
        });
        car.last_t = t;
        car.last_d = Some(d);
        if p1 > p0 {
            // Record the marks passed in (p0, p1].
            let first_new = car.next_mark;
            let last_new = (p1 / spacing).floor() as i64;
            if last_new >= first_new {
                let n_new = last_new - first_new + 1;
                let start = if n_new > history as i64 {
                    // A jump longer than the ring: keep only its end.
                    car.marks.clear();
                    car.first_mark = last_new - history as i64 + 1;
                    car.first_mark
                } else {
                    first_new
                };
                if car.marks.is_empty() {
                    car.first_mark = start;
                }
                for k in start..=last_new {
                    let pk = k as f64 * spacing;
                    let tk = t0 + (pk - p0) / (p1 - p0) * (t - t0);
                    if car.marks.len() >= history {
                        car.marks.pop_front();
                        car.first_mark += 1;
                    }
                    car.marks.push_back(tk);
                }
                car.next_mark = last_new + 1;
            }
            car.progress_m = p1;
        } else if p1 < p0 - 0.5 * l_eff.unwrap_or(f64::INFINITY) {
            // A large step back (e.g. a lap counted twice): restart this car's history.
            car.progress_m = p1;
            car.marks.clear();
            car.next_mark = (p1 / spacing).ceil() as i64;
            car.first_mark = car.next_mark;
        }
    }

    /// Gap of `behind` to `ahead`, s (see the module docs).
    fn gap(&self, behind: &CarTrack, ahead: &CarTrack) -> Option<f64> {
        let spacing = self.cfg.mark_spacing_m;
        match ahead.time_at(behind.progress_m, spacing) {
            Some(ta) => Some(behind.last_t - ta),
            None => {
                let v = behind.speed_mps?;
                let g = (ahead.progress_m - behind.progress_m) / v;
                g.is_finite().then_some(g)
            }
        }
    }

    /// Closing rate of `behind` on `ahead`, s per lap (positive = closing).
    fn closing(&self, behind: &CarTrack, ahead: &CarTrack, gap_now: Option<f64>) -> Option<f64> {
        let spacing = self.cfg.mark_spacing_m;
        let l = self.track_length_m()?;
        let g_now = gap_now?;
        let earliest = behind
            .earliest_progress(spacing)
            .max(ahead.earliest_progress(spacing));
        let span = l.min(behind.progress_m - earliest);
        if span.is_nan() || span < self.cfg.min_closing_span_m.max(spacing) {
            return None;
        }
        let p = behind.progress_m - span;
        let g_then = behind.time_at(p, spacing)? - ahead.time_at(p, spacing)?;
        let rate = (g_then - g_now) * (l / span);
        rate.is_finite().then_some(rate)
    }

    fn ordered(&self) -> (Vec<&CarTrack>, PositionSource) {
        let mut cars: Vec<&CarTrack> = self.cars.values().collect();
        let all_source = !cars.is_empty() && cars.iter().all(|c| c.source_position.is_some());
        if all_source {
            cars.sort_by(|a, b| {
                a.source_position
                    .cmp(&b.source_position)
                    .then_with(|| a.car_id.cmp(&b.car_id))
            });
            (cars, PositionSource::Source)
        } else {
            cars.sort_by(|a, b| {
                b.progress_m
                    .total_cmp(&a.progress_m)
                    .then_with(|| a.last_t.total_cmp(&b.last_t))
                    .then_with(|| a.car_id.cmp(&b.car_id))
            });
            (cars, PositionSource::Computed)
        }
    }

    fn gaps_at(&self, cars: &[&CarTrack], i: usize, source: PositionSource) -> Option<Gaps> {
        let me = *cars.get(i)?;
        let ahead = i.checked_sub(1).and_then(|j| cars.get(j)).copied();
        let behind = cars.get(i + 1).copied();
        let leader = cars.first().copied();
        let gap_to_leader_s = match leader {
            Some(l) if std::ptr::eq(l, me) => Some(0.0),
            Some(l) => self.gap(me, l),
            None => None,
        };
        // A negative gap means the order and the distance covered disagree (a source position
        // that lags a line crossing): no gap is better than a wrong one.
        let gap_to_leader_s = gap_to_leader_s.filter(|g| *g >= 0.0);
        let gap_ahead_s = ahead.and_then(|a| self.gap(me, a)).filter(|g| *g >= 0.0);
        let gap_behind_s = behind.and_then(|b| self.gap(b, me)).filter(|g| *g >= 0.0);
        let closing_rate_s_per_lap = ahead.and_then(|a| self.closing(me, a, gap_ahead_s));
        let behind_closing_rate_s_per_lap = behind.and_then(|b| self.closing(b, me, gap_behind_s));
        let close = self.cfg.close_gap_s;
        Some(Gaps {
            car_id: me.car_id.clone(),
            position: u32::try_from(i + 1).unwrap_or(u32::MAX),
            position_source: source,
            laps_completed: u32::try_from(me.laps_done.max(0)).unwrap_or(u32::MAX),
            lap_dist_m: me.last_d,
            progress_m: me.progress_m,
            t_s: me.last_t,
            car_ahead: ahead.map(|a| a.car_id.clone()),
            car_behind: behind.map(|b| b.car_id.clone()),
            gap_to_leader_s,
            gap_ahead_s,
            gap_behind_s,
            closing_rate_s_per_lap,
            behind_closing_rate_s_per_lap,
            overtaking_opportunity: gap_ahead_s.is_some_and(|g| g < close)
                && closing_rate_s_per_lap.is_some_and(|r| r > 0.0),
            under_pressure: gap_behind_s.is_some_and(|g| g < close)
                && behind_closing_rate_s_per_lap.is_some_and(|r| r > 0.0),
        })
    }

    /// Position and gaps of one car, `None` for an unknown car.
    pub fn gaps(&self, car_id: &str) -> Option<Gaps> {
        let (cars, source) = self.ordered();
        let i = cars.iter().position(|c| &*c.car_id == car_id)?;
        self.gaps_at(&cars, i, source)
    }

    /// Every car, leader first.
    pub fn standings(&self) -> Vec<Gaps> {
        let (cars, source) = self.ordered();
        (0..cars.len())
            .filter_map(|i| self.gaps_at(&cars, i, source))
            .collect()
    }
}
