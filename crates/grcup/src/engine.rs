//! The pivot shared by long and wide telemetry: per-car instants, carry-forward, lap repair.
//!
//! # Car identity
//! `vehicle_id` is `GR86-<chassis>-<car number>`, and one car can be spelled `GR86-002-2` in
//! one file and `GR86-002-002` in another. Car numbers are labels (`021` and `21` are two
//! cars), so they are never normalised. The rule ([`car_identity`]):
//! * the **car** (the state the pivot keeps) is the chassis: the middle part of `vehicle_id`
//!   with leading zeros removed (`002` = `2`). An id that is not `X-<chassis>-<number>` is
//!   its own car, compared verbatim;
//! * the **label** (`Sample::car_id`) is `vehicle_number` as written when it is non-zero,
//!   else the last part of `vehicle_id` as written. It is fixed by the first row of that car
//!   in the file. Should two chassis of one file get the same label (`vehicle_number` 21 for
//!   `GR86-004-021` and for `GR86-011-21`), the later one takes the last part of its
//!   `vehicle_id` as written (`021`), else `<label>/<chassis>`: two cars never share a label.
//!
//! # Instants and carry-forward
//! Rows of one car with the same `timestamp` form one instant. A car keeps up to
//! [`PivotConfig::reorder_window`] open instants (so rows slightly out of order still meet
//! their instant); when a newer one opens beyond that, the oldest is emitted as one
//! [`Sample`]. A channel absent from an instant carries its last value forward for at most
//! [`PivotConfig::max_carry_s`] (1 s by default) of the car's clock; older, it is `None`.
//! A row older than the car's last emitted instant is refused (`timestamp_backwards`).
//!
//! # Lap repair
//! The `lap` column is trusted when it is at most 9999 and equals the car's lap counter or
//! the next lap (or the counter is not yet seeded, or the car was silent for more than 60 s).
//! Otherwise (32768, a jump) the counter stands, and advances by one when the lap distance
//! wraps: it drops by more than half of its maximum since the last wrap (and that maximum
//! exceeds 200 m). A distrusted value that stays the same for
//! [`PivotConfig::lap_reseed_instants`] instants in a row reseeds the counter.

use crate::channels::{Channel, N_CHANNELS};
use crate::clock::parse_timestamp_ns;
use crate::rejects::{RejectReason, Rejects};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use telemetry::{Corners, Sample};

/// How a pivot builds samples.
#[derive(Debug, Clone, PartialEq)]
pub struct PivotConfig {
    /// `Sample::session_id` of every sample.
    pub session_id: Arc<str>,
    /// `Sample::track` of every sample.
    pub track: Option<Arc<str>>,
    /// How long a channel's last value is carried forward, seconds of the car's clock
    /// (default 1.0). Older values are missing (`None`).
    pub max_carry_s: f64,
    /// Open instants kept per car to gather rows that arrive slightly out of order (default 8,
    /// at least 1).
    pub reorder_window: usize,
    /// A distrusted lap value repeated this many instants in a row reseeds the lap counter
    /// (default 50).
    pub lap_reseed_instants: u32,
}

impl PivotConfig {
    /// Defaults: 1 s carry, 8 open instants per car, reseed after 50 instants.
    pub fn new(session_id: impl Into<Arc<str>>) -> Self {
        PivotConfig {
            session_id: session_id.into(),
            track: None,
            max_carry_s: 1.0,
            reorder_window: 8,
            lap_reseed_instants: 50,
        }
    }
    /// Sets the track name.
    pub fn with_track(mut self, track: impl Into<Arc<str>>) -> Self {
        self.track = Some(track.into());
        self
    }
}

/// What a pivot did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PivotStats {
    /// Data rows read (header and blank lines excluded).
    pub rows_read: u64,
    /// Rows refused, by reason, with the first few as examples (line numbers are the file's).
    pub rejects: Rejects,
    /// Rows of channels PitWall does not use (ignored, not refused).
    pub rows_unknown_channel: u64,
    /// Those rows per channel name.
    pub unknown_channels: BTreeMap<String, u64>,
    /// Samples produced.
    pub samples_emitted: u64,
    /// Distinct cars (chassis).
    pub vehicles: usize,
    /// Samples whose lap column was distrusted and replaced by the car's counter.
    pub samples_lap_repaired: u64,
    /// Distinct (car, lap) values produced by repair.
    pub laps_repaired: u64,
    /// Lap-distance wraps seen.
    pub lap_wraps: u64,
    /// Times a persistent distrusted lap value reseeded a counter.
    pub lap_reseeds: u64,
    /// Rows older than an earlier row of the same car in file order (the time-ordered
    /// reader, [`crate::SortedLongPivot`], places them; the streaming one refuses those
    /// beyond its window as `timestamp_backwards`).
    pub rows_out_of_order: u64,
    /// Sorted runs spilled to temporary storage by [`crate::SortedLongPivot`] (0 when the
    /// file fit in memory).
    pub spill_runs: u64,
}

impl PivotStats {
    /// Rows refused, all reasons.
    pub fn rows_rejected(&self) -> u64 {
        self.rejects.total()
    }
}

/// A car as the pivot saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleInfo {
    /// The label used as `Sample::car_id`.
    pub car_id: Arc<str>,
    /// The chassis (leading zeros removed), when `vehicle_id` has one.
    pub chassis: Option<String>,
    /// Every (`vehicle_id`, `vehicle_number`) spelling seen for this car.
    pub spellings: Vec<(String, String)>,
}

/// Who a telemetry row belongs to: see the module rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarIdentity {
    /// What identifies the car across spellings: `chassis:<n>`, else `id:<vehicle_id>`, else
    /// `number:<vehicle_number>`.
    pub key: String,
    /// The car number label: `vehicle_number` when non-zero, else the last part of `vehicle_id`.
    pub label: String,
    /// The chassis part of `vehicle_id`, leading zeros removed.
    pub chassis: Option<String>,
}

fn is_zero_label(s: &str) -> bool {
    let s = s.trim();
    let int = s.split('.').next().unwrap_or(s);
    s.is_empty()
        || (!int.is_empty()
            && int.bytes().all(|c| c == b'0')
            && s.bytes().all(|c| c == b'0' || c == b'.'))
}

/// Identifies a car from `vehicle_id` and `vehicle_number` (either may be empty).
/// `None` when both are empty.
///
/// ```
/// let a = grcup::car_identity("GR86-002-2", "0").unwrap();
/// let b = grcup::car_identity("GR86-002-002", "").unwrap();
/// assert_eq!(a.key, b.key); // same chassis: same car
/// assert_eq!((a.label.as_str(), b.label.as_str()), ("2", "002"));
/// let c = grcup::car_identity("GR86-010-021", "021").unwrap();
/// let d = grcup::car_identity("GR86-011-21", "21").unwrap();
/// assert_ne!(c.key, d.key);
/// assert_eq!((c.label.as_str(), d.label.as_str()), ("021", "21"));
/// ```
pub fn car_identity(vehicle_id: &str, vehicle_number: &str) -> Option<CarIdentity> {
    let id = vehicle_id.trim().trim_matches('"').trim();
    let num = vehicle_number.trim().trim_matches('"').trim();
    let num = num.strip_suffix(".0").unwrap_or(num);
    let parts: Vec<&str> = id.split('-').map(str::trim).collect();
    let (chassis, id_number) = match parts.as_slice() {
        [_, mid @ .., last] if !mid.is_empty() && !last.is_empty() => {
            let c = mid.join("-");
            let stripped = c.trim_start_matches('0');
            let c = if stripped.is_empty() && !c.is_empty() {
                "0".to_string()
            } else {
                stripped.to_string()
            };
            (
                if c.is_empty() { None } else { Some(c) },
                Some((*last).to_string()),
            )
        }
        _ => (None, None),
    };
    let label = if !is_zero_label(num) {
        num.to_string()
    } else if let Some(n) = id_number.filter(|n| !n.is_empty()) {
        n
    } else if !id.is_empty() {
        id.to_string()
    } else {
        return None;
    };
    let key = match (&chassis, id.is_empty()) {
        (Some(c), _) => format!("chassis:{c}"),
        (None, false) => format!("id:{id}"),
        (None, true) => format!("number:{label}"),
    };
    Some(CarIdentity {
        key,
        label,
        chassis,
    })
}

/// One open instant of one car.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Instant {
    t_ns: i64,
    present: u32,
    vals: [f64; N_CHANNELS],
    lap: Option<u32>,
}

impl Instant {
    fn new(t_ns: i64) -> Self {
        Instant {
            t_ns,
            present: 0,
            vals: [0.0; N_CHANNELS],
            lap: None,
        }
    }
    /// Records a channel value.
    #[inline]
    pub fn set(&mut self, c: Channel, v: f64) {
        let i = c.index();
        if let Some(slot) = self.vals.get_mut(i) {
            *slot = v;
            self.present |= 1 << i;
        }
    }
    /// Records the lap column.
    #[inline]
    pub fn set_lap(&mut self, lap: Option<u32>) {
        if lap.is_some() {
            self.lap = lap;
        }
    }
}

const NEVER: i64 = i64::MIN;
const MIN_LAP_LENGTH_M: f64 = 200.0;
const SILENCE_NS: i64 = 60_000_000_000;

struct Car {
    car_id: Arc<str>,
    chassis: Option<String>,
    spellings: Vec<(String, String)>,
    pending: VecDeque<Instant>,
    last_emitted_ns: Option<i64>,
    carry_val: [f64; N_CHANNELS],
    carry_t: [i64; N_CHANNELS],
    ts_raw: Vec<u8>,
    ts_ns: i64,
    lap: Option<u32>,
    last_dist: Option<f64>,
    max_dist: f64,
    distrust: Option<(u32, u32)>,
    last_repaired_lap: Option<u32>,
}

#[derive(Default)]
struct Counters {
    samples_emitted: u64,
    samples_lap_repaired: u64,
    laps_repaired: u64,
    lap_wraps: u64,
    lap_reseeds: u64,
}

/// Per-car pivot state shared by the long and wide readers.
pub(crate) struct Engine {
    cfg: PivotConfig,
    max_carry_ns: i64,
    window: usize,
    cars: Vec<Car>,
    raw_lookup: HashMap<Box<[u8]>, usize>,
    key_lookup: HashMap<String, usize>,
    last_id: Vec<u8>,
    last_num: Vec<u8>,
    last_car: Option<usize>,
    key_buf: Vec<u8>,
    pub out: VecDeque<Sample>,
    counters: Counters,
    pub rejects: Rejects,
    pub rows_read: u64,
    pub rows_unknown_channel: u64,
    pub rows_out_of_order: u64,
    pub spill_runs: u64,
    unknown: HashMap<Box<[u8]>, u64>,
}

impl Engine {
    pub fn new(cfg: PivotConfig) -> Self {
        let max_carry_ns = if cfg.max_carry_s.is_finite() && cfg.max_carry_s >= 0.0 {
            (cfg.max_carry_s * 1e9).min(i64::MAX as f64 / 2.0) as i64
        } else {
            1_000_000_000
        };
        let window = cfg.reorder_window.max(1);
        Engine {
            cfg,
            max_carry_ns,
            window,
            cars: Vec::new(),
            raw_lookup: HashMap::new(),
            key_lookup: HashMap::new(),
            last_id: Vec::new(),
            last_num: Vec::new(),
            last_car: None,
            key_buf: Vec::new(),
            out: VecDeque::new(),
            counters: Counters::default(),
            rejects: Rejects::default(),
            rows_read: 0,
            rows_unknown_channel: 0,
            rows_out_of_order: 0,
            spill_runs: 0,
            unknown: HashMap::new(),
        }
    }

    /// Counts a row of a channel PitWall does not use.
    pub fn unknown_channel(&mut self, name: &[u8]) {
        self.rows_unknown_channel += 1;
        if let Some(n) = self.unknown.get_mut(name) {
            *n += 1;
        } else {
            self.unknown.insert(name.into(), 1);
        }
    }

    /// The car of a row (`None` when both fields are empty). Cached for runs of one car.
    #[inline]
    pub fn car(&mut self, id: &[u8], num: &[u8]) -> Option<usize> {
        if let Some(c) = self.last_car {
            if self.last_id == id && self.last_num == num {
                return Some(c);
            }
        }
        self.key_buf.clear();
        self.key_buf.extend_from_slice(id);
        self.key_buf.push(0xFF);
        self.key_buf.extend_from_slice(num);
        let idx = match self.raw_lookup.get(self.key_buf.as_slice()) {
            Some(&i) => i,
            None => self.new_spelling(id, num)?,
        };
        self.last_id.clear();
        self.last_id.extend_from_slice(id);
        self.last_num.clear();
        self.last_num.extend_from_slice(num);
        self.last_car = Some(idx);
        Some(idx)
    }

    #[cold]
    fn new_spelling(&mut self, id: &[u8], num: &[u8]) -> Option<usize> {
        let id_s = String::from_utf8_lossy(id).into_owned();
        let num_s = String::from_utf8_lossy(num).into_owned();
        let ident = car_identity(&id_s, &num_s)?;
        let idx = match self.key_lookup.get(&ident.key) {
            Some(&i) => i,
            None => {
                let i = self.cars.len();
                let label = self.unique_label(&ident, &id_s);
                self.cars.push(Car {
                    car_id: Arc::from(label.as_str()),
                    chassis: ident.chassis.clone(),
                    spellings: Vec::new(),
                    pending: VecDeque::with_capacity(self.window + 1),
                    last_emitted_ns: None,
                    carry_val: [0.0; N_CHANNELS],
                    carry_t: [NEVER; N_CHANNELS],
                    ts_raw: Vec::with_capacity(32),
                    ts_ns: 0,
                    lap: None,
                    last_dist: None,
                    max_dist: 0.0,
                    distrust: None,
                    last_repaired_lap: None,
                });
                self.key_lookup.insert(ident.key, i);
                i
            }
        };
        if let Some(car) = self.cars.get_mut(idx) {
            car.spellings
                .push((id_s.trim().to_string(), num_s.trim().to_string()));
        }
        self.raw_lookup
            .insert(self.key_buf.clone().into_boxed_slice(), idx);
        Some(idx)
    }

    /// The label of a new car; when another car (another chassis) of this file already has
    /// it, the last part of `vehicle_id` as written, else `<label>/<chassis>`.
    fn unique_label(&self, ident: &CarIdentity, vehicle_id: &str) -> String {
        let taken = |l: &str| self.cars.iter().any(|c| &*c.car_id == l);
        if !taken(&ident.label) {
            return ident.label.clone();
        }
        if let Some(last) = vehicle_id.trim().rsplit('-').next().map(str::trim) {
            if !last.is_empty() && !taken(last) {
                return last.to_string();
            }
        }
        let suffix = ident.chassis.as_deref().unwrap_or(vehicle_id.trim());
        format!("{}/{}", ident.label, suffix)
    }

    /// Parses a timestamp, reusing the car's last parse when the text repeats.
    #[inline]
    pub fn timestamp(&mut self, car: usize, raw: &[u8]) -> Option<i64> {
        let c = self.cars.get_mut(car)?;
        if c.ts_raw == raw {
            return Some(c.ts_ns);
        }
        let t = parse_timestamp_ns(raw)?;
        c.ts_raw.clear();
        c.ts_raw.extend_from_slice(raw);
        c.ts_ns = t;
        Some(t)
    }

    /// The open instant of `car` at `t_ns`, opening it (and emitting the oldest beyond the
    /// window) as needed. `Err` when the instant was already emitted.
    #[inline]
    pub fn instant(&mut self, car: usize, t_ns: i64) -> Result<&mut Instant, RejectReason> {
        let Engine {
            cars,
            out,
            counters,
            cfg,
            max_carry_ns,
            window,
            ..
        } = self;
        let c = cars.get_mut(car).ok_or(RejectReason::MissingVehicle)?;
        // Fast path: the newest open instant.
        let found = match c.pending.back() {
            Some(b) if b.t_ns == t_ns => Some(c.pending.len() - 1),
            Some(b) if b.t_ns < t_ns => None,
            None => None,
            Some(_) => c.pending.iter().rposition(|i| i.t_ns == t_ns),
        };
        let pos = match found {
            Some(p) => p,
            None => {
                if c.pending.len() >= *window {
                    if let Some(old) = c.pending.pop_front() {
                        emit(c, old, cfg, *max_carry_ns, counters, out);
                    }
                }
                if c.last_emitted_ns.is_some_and(|e| t_ns <= e) {
                    return Err(RejectReason::TimestampBackwards);
                }
                let p = c
                    .pending
                    .iter()
                    .rposition(|i| i.t_ns < t_ns)
                    .map(|p| p + 1)
                    .unwrap_or(0);
                c.pending.insert(p, Instant::new(t_ns));
                p
            }
        };
        c.pending
            .get_mut(pos)
            .ok_or(RejectReason::TimestampBackwards)
    }

    /// Emits every open instant of every car (end of input).
    pub fn flush(&mut self) {
        let Engine {
            cars,
            out,
            counters,
            cfg,
            max_carry_ns,
            ..
        } = self;
        for c in cars.iter_mut() {
            while let Some(old) = c.pending.pop_front() {
                emit(c, old, cfg, *max_carry_ns, counters, out);
            }
        }
    }

    pub fn stats(&self) -> PivotStats {
        PivotStats {
            rows_read: self.rows_read,
            rejects: self.rejects.clone(),
            rows_unknown_channel: self.rows_unknown_channel,
            unknown_channels: self
                .unknown
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), *v))
                .collect(),
            samples_emitted: self.counters.samples_emitted,
            vehicles: self.cars.len(),
            samples_lap_repaired: self.counters.samples_lap_repaired,
            laps_repaired: self.counters.laps_repaired,
            lap_wraps: self.counters.lap_wraps,
            lap_reseeds: self.counters.lap_reseeds,
            rows_out_of_order: self.rows_out_of_order,
            spill_runs: self.spill_runs,
        }
    }

    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        self.cars
            .iter()
            .map(|c| VehicleInfo {
                car_id: c.car_id.clone(),
                chassis: c.chassis.clone(),
                spellings: c.spellings.clone(),
            })
            .collect()
    }
}

fn emit(
    c: &mut Car,
    inst: Instant,
    cfg: &PivotConfig,
    max_carry_ns: i64,
    counters: &mut Counters,
    out: &mut VecDeque<Sample>,
) {
    let t = inst.t_ns;
    for i in 0..N_CHANNELS {
        if inst.present & (1 << i) != 0 {
            if let (Some(v), Some(ct), Some(x)) = (
                c.carry_val.get_mut(i),
                c.carry_t.get_mut(i),
                inst.vals.get(i),
            ) {
                *v = *x;
                *ct = t;
            }
        }
    }
    let silent = c
        .last_emitted_ns
        .map(|e| t.saturating_sub(e) > SILENCE_NS)
        .unwrap_or(false);
    let lap = update_lap(c, &inst, silent, cfg, counters);
    c.last_emitted_ns = Some(t);

    let get = |ch: Channel| -> Option<f64> {
        let i = ch.index();
        let ct = *c.carry_t.get(i)?;
        if ct != NEVER && t.saturating_sub(ct) <= max_carry_ns {
            c.carry_val.get(i).copied()
        } else {
            None
        }
    };
    let mut s = Sample::new(cfg.session_id.clone(), c.car_id.clone(), t as f64 / 1e9);
    s.track = cfg.track.clone();
    s.lap = lap;
    s.lap_dist_m = get(Channel::LapDist);
    s.speed_kmh = get(Channel::Speed);
    s.accx_g = get(Channel::AccX);
    s.accy_g = get(Channel::AccY);
    s.brake_front_bar = get(Channel::BrakeFront);
    s.brake_rear_bar = get(Channel::BrakeRear);
    s.throttle_pct = get(Channel::Throttle);
    s.steering_deg = get(Channel::Steering);
    s.rpm = get(Channel::Rpm);
    s.gear = get(Channel::Gear).map(|g| g.round() as i8);
    s.lat_deg = get(Channel::Lat);
    s.lon_deg = get(Channel::Lon);
    if let (Some(fl), Some(fr), Some(rl), Some(rr)) = (
        get(Channel::WearFl),
        get(Channel::WearFr),
        get(Channel::WearRl),
        get(Channel::WearRr),
    ) {
        s.tyre_wear_pct = Some(Corners { fl, fr, rl, rr });
    }
    counters.samples_emitted += 1;
    out.push_back(s);
}

fn update_lap(
    c: &mut Car,
    inst: &Instant,
    silent: bool,
    cfg: &PivotConfig,
    counters: &mut Counters,
) -> Option<u32> {
    let li = Channel::LapDist.index();
    let dist = if inst.present & (1 << li) != 0 {
        inst.vals.get(li).copied()
    } else {
        None
    };
    let mut wrapped = false;
    if let Some(d) = dist {
        if let Some(prev) = c.last_dist {
            wrapped = c.max_dist > MIN_LAP_LENGTH_M && prev - d > 0.5 * c.max_dist;
        }
        if wrapped {
            c.max_dist = d;
            counters.lap_wraps += 1;
        } else if d > c.max_dist {
            c.max_dist = d;
        }
        c.last_dist = Some(d);
    }
    let trusted = match (inst.lap, c.lap) {
        (Some(l), _) if l > 9999 => false,
        (Some(_), None) => true,
        (Some(l), Some(k)) => l == k || l == k.saturating_add(1) || (silent && l > k),
        (None, _) => false,
    };
    if trusted {
        c.lap = inst.lap;
        c.distrust = None;
        return c.lap;
    }
    match inst.lap {
        None => {
            if wrapped {
                c.lap = c.lap.map(|k| k.saturating_add(1));
            }
            c.lap
        }
        Some(l) => {
            if l <= 9999 {
                let run = match c.distrust {
                    Some((v, n)) if v == l => n.saturating_add(1),
                    _ => 1,
                };
                c.distrust = Some((l, run));
                if run >= cfg.lap_reseed_instants.max(1) {
                    c.lap = Some(l);
                    c.distrust = None;
                    counters.lap_reseeds += 1;
                    return c.lap;
                }
            }
            let k = c.lap?;
            let new = if wrapped { k.saturating_add(1) } else { k };
            c.lap = Some(new);
            counters.samples_lap_repaired += 1;
            if c.last_repaired_lap != Some(new) {
                counters.laps_repaired += 1;
                c.last_repaired_lap = Some(new);
            }
            c.lap
        }
    }
}
