//! Turns a stream of F1 datagrams into [`Sample`]s: one per active car on every Car Telemetry
//! packet, combining the latest Lap Data, Car Status, Car Damage, Motion and Session packets of
//! the same session.

use crate::names::{compound_name, track_name};
use crate::packets::{
    decode, CarDamage, CarMotion, CarStatus, CarTelemetry, CarTelemetryPacket, DecodeError,
    LapData, Packet, ParticipantsPacket, NUM_CARS,
};
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

/// Steering angle, degrees, that the game's full lock (`steer` = ±1.0) is mapped to:
/// `steering_deg = steer * STEERING_LOCK_DEG`, negative = left. 180° is the nominal wheel
/// rotation the game uses for F1 cars (360° lock to lock); the game does not send the angle.
pub const STEERING_LOCK_DEG: f64 = 180.0;

/// Maps a per-wheel array in the game's wire order (RL, RR, FL, FR) to named corners.
pub fn wire_to_corners<T: Copy>(w: [T; 4]) -> Corners<T> {
    Corners {
        fl: w[2],
        fr: w[3],
        rl: w[0],
        rr: w[1],
    }
}

/// Limits of the [`Assembler`]'s state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AssemblerConfig {
    /// Sessions kept at once; the least recently used is evicted beyond this (its held samples
    /// are released with fallback ids).
    pub max_sessions: usize,
    /// How long (session time, s) samples are held waiting for the session's first
    /// Participants packet before falling back to `car{index+1}` ids.
    pub hold_window_s: f64,
    /// At most this many samples are held per session (a second bound besides time).
    pub max_held_samples: usize,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        AssemblerConfig {
            max_sessions: 4,
            hold_window_s: 10.0,
            max_held_samples: NUM_CARS * 60 * 12,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssemblerStats {
    /// Samples returned by `push*` (direct and released).
    pub samples_emitted: u64,
    /// Samples put on hold because the session's participants were not known yet.
    pub samples_held: u64,
    /// Held samples released with race-number ids when Participants arrived.
    pub held_released: u64,
    /// Held samples released with fallback `car{n}` ids (hold bound exceeded, eviction, flush).
    pub held_released_fallback: u64,
    /// Held samples dropped at release because their car turned out not to be active.
    pub held_dropped_inactive: u64,
    /// Sessions evicted to respect `max_sessions`.
    pub sessions_evicted: u64,
    /// Car Telemetry packets skipped because their session time was not finite or negative.
    pub packets_bad_time: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// No Participants yet: hold samples.
    Pending,
    /// Participants known: race-number ids.
    Participants,
    /// The hold bound passed without Participants: `car{n}` ids until they come.
    Fallback,
}

#[derive(Debug)]
struct Held {
    idx: usize,
    result_status: Option<u8>,
    /// Whether the car looked alive (rpm or speed > 0) when sampled: the activity test used
    /// when the sample is released without participants.
    moving: bool,
    sample: Sample,
}

#[derive(Debug)]
struct SessionState {
    uid: u64,
    session_id: Arc<str>,
    last_used: u64,
    track_id: Option<i8>,
    track: Option<Arc<str>>,
    track_temp_c: Option<f64>,
    air_temp_c: Option<f64>,
    lap: Option<[LapData; NUM_CARS]>,
    status: Option<[CarStatus; NUM_CARS]>,
    damage: Option<[CarDamage; NUM_CARS]>,
    motion: Option<[CarMotion; NUM_CARS]>,
    num_active_cars: usize,
    race_numbers: Option<[u8; NUM_CARS]>,
    car_ids: [Arc<str>; NUM_CARS],
    ids: Ids,
    held: Vec<Held>,
    held_first_t_s: f64,
}

/// Assembles [`Sample`]s from datagrams; see the crate docs for the mapping.
///
/// Per-session state is keyed by the header's session UID; at most
/// [`AssemblerConfig::max_sessions`] are kept (least recently used evicted).
#[derive(Debug)]
pub struct Assembler {
    cfg: AssemblerConfig,
    sessions: Vec<SessionState>,
    clock: u64,
    fallback_ids: [Arc<str>; NUM_CARS],
    /// Interned compound name per visual compound code.
    compounds: [Option<Arc<str>>; 256],
    stats: AssemblerStats,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler::new()
    }
}

/// A value in `lo..=hi` (finite), else `None`.
fn within(x: f64, lo: f64, hi: f64) -> Option<f64> {
    (x.is_finite() && x >= lo && x <= hi).then_some(x)
}

/// A 0-1 fraction as percent; tiny overshoots clamped, garbage dropped.
fn pct(x: f32) -> Option<f64> {
    within(f64::from(x), -0.05, 1.05).map(|v| (v * 100.0).clamp(0.0, 100.0))
}

/// Whether car `idx` is active given its lap result status and the participants' count.
fn is_active(
    idx: usize,
    result_status: Option<u8>,
    num_active: Option<usize>,
    moving: bool,
) -> bool {
    match result_status {
        // Active or finished (still on track).
        Some(2) | Some(3) => true,
        // Invalid / unknown status: the participants' count decides, else whether it moves.
        Some(0) | None => match num_active {
            Some(n) => idx < n,
            None => moving,
        },
        // Inactive, DNF, DSQ, not classified, retired.
        Some(_) => false,
    }
}

impl Assembler {
    /// An assembler with the default limits.
    pub fn new() -> Self {
        Assembler::with_config(AssemblerConfig::default())
    }

    /// An assembler with the given limits (`max_sessions` at least 1).
    pub fn with_config(cfg: AssemblerConfig) -> Self {
        let cfg = AssemblerConfig {
            max_sessions: cfg.max_sessions.max(1),
            ..cfg
        };
        Assembler {
            cfg,
            sessions: Vec::new(),
            clock: 0,
            fallback_ids: std::array::from_fn(|i| Arc::from(format!("car{}", i + 1))),
            compounds: std::array::from_fn(|c| compound_name(c as u8).map(Arc::from)),
            stats: AssemblerStats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// Number of sessions currently tracked.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Decodes one datagram and returns the samples it completes (empty for most packets).
    pub fn push(&mut self, datagram: &[u8]) -> Result<Vec<Sample>, DecodeError> {
        let mut out = Vec::new();
        self.push_into(datagram, &mut out)?;
        Ok(out)
    }

    /// Like [`Assembler::push`], appending to `out` (reuse it to avoid an allocation per call).
    pub fn push_into(&mut self, datagram: &[u8], out: &mut Vec<Sample>) -> Result<(), DecodeError> {
        let packet = decode(datagram)?;
        self.push_packet(packet, out);
        Ok(())
    }

    /// Feeds an already decoded packet, appending completed samples to `out`.
    pub fn push_packet(&mut self, packet: Packet, out: &mut Vec<Sample>) {
        let before = out.len();
        self.dispatch(packet, out);
        self.stats.samples_emitted += (out.len() - before) as u64;
    }

    /// Releases every held sample with fallback `car{n}` ids (e.g. at shutdown).
    pub fn flush(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        for i in 0..self.sessions.len() {
            self.release_fallback(i, &mut out);
        }
        self.stats.samples_emitted += out.len() as u64;
        out
    }

    fn dispatch(&mut self, packet: Packet, out: &mut Vec<Sample>) {
        let uid = packet.header().session_uid;
        match packet {
            Packet::Event(_) | Packet::Other { .. } => {}
            Packet::Session(p) => {
                let s = self.session(uid, out);
                if s.track_id != Some(p.track_id) {
                    s.track_id = Some(p.track_id);
                    s.track = track_name(p.track_id).map(Arc::from);
                }
                s.track_temp_c = within(f64::from(p.track_temp_c), -50.0, 100.0);
                s.air_temp_c = within(f64::from(p.air_temp_c), -50.0, 70.0);
            }
            Packet::LapData(p) => self.session(uid, out).lap = Some(p.cars),
            Packet::CarStatus(p) => self.session(uid, out).status = Some(p.cars),
            Packet::CarDamage(p) => self.session(uid, out).damage = Some(p.cars),
            Packet::Motion(p) => self.session(uid, out).motion = Some(p.cars),
            Packet::Participants(p) => self.participants(&p, out),
            Packet::CarTelemetry(p) => self.telemetry(&p, out),
        }
    }

    /// Index of the session with `uid`, created (evicting the least recently used) if new.
    fn session_index(&mut self, uid: u64, out: &mut Vec<Sample>) -> usize {
        self.clock += 1;
        if let Some(i) = self.sessions.iter().position(|s| s.uid == uid) {
            if let Some(s) = self.sessions.get_mut(i) {
                s.last_used = self.clock;
            }
            return i;
        }
        if self.sessions.len() >= self.cfg.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.release_fallback(i, out);
                self.sessions.swap_remove(i);
                self.stats.sessions_evicted += 1;
            }
        }
        self.sessions.push(SessionState {
            uid,
            session_id: Arc::from(format!("f1-{uid}")),
            last_used: self.clock,
            track_id: None,
            track: None,
            track_temp_c: None,
            air_temp_c: None,
            lap: None,
            status: None,
            damage: None,
            motion: None,
            num_active_cars: NUM_CARS,
            race_numbers: None,
            car_ids: self.fallback_ids.clone(),
            ids: Ids::Pending,
            held: Vec::new(),
            held_first_t_s: 0.0,
        });
        self.sessions.len() - 1
    }

    fn session(&mut self, uid: u64, out: &mut Vec<Sample>) -> &mut SessionState {
        let i = self.session_index(uid, out);
        // `session_index` returns a valid index; the fallback arm is unreachable.
        let n = self.sessions.len();
        &mut self.sessions[i.min(n - 1)]
    }

    /// Releases session `i`'s held samples with fallback ids (no participants known).
    fn release_fallback(&mut self, i: usize, out: &mut Vec<Sample>) {
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        for h in s.held.drain(..) {
            if is_active(h.idx, h.result_status, None, h.moving) {
                out.push(h.sample);
                self.stats.held_released_fallback += 1;
            } else {
                self.stats.held_dropped_inactive += 1;
            }
        }
        if s.ids == Ids::Pending {
            s.ids = Ids::Fallback;
        }
    }

    fn participants(&mut self, p: &ParticipantsPacket, out: &mut Vec<Sample>) {
        let uid = p.header.session_uid;
        let i = self.session_index(uid, out);
        let fallback = &self.fallback_ids;
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        let numbers: [u8; NUM_CARS] = std::array::from_fn(|k| p.cars[k].race_number);
        if s.race_numbers != Some(numbers) {
            s.race_numbers = Some(numbers);
            for (k, &r) in numbers.iter().enumerate() {
                s.car_ids[k] = if r == 0 {
                    fallback[k].clone()
                } else if numbers[..k].contains(&r) {
                    // A duplicate number (time trial ghosts): keep ids distinct.
                    Arc::from(format!("{r}-{}", k + 1))
                } else {
                    Arc::from(r.to_string())
                };
            }
        }
        s.num_active_cars = usize::from(p.num_active_cars).min(NUM_CARS);
        s.ids = Ids::Participants;
        let n = Some(s.num_active_cars);
        for mut h in s.held.drain(..) {
            if is_active(h.idx, h.result_status, n, h.moving) {
                if let Some(id) = s.car_ids.get(h.idx) {
                    h.sample.car_id = id.clone();
                }
                out.push(h.sample);
                self.stats.held_released += 1;
            } else {
                self.stats.held_dropped_inactive += 1;
            }
        }
    }

    fn telemetry(&mut self, p: &CarTelemetryPacket, out: &mut Vec<Sample>) {
        let t_s = f64::from(p.header.session_time_s);
        if !(t_s.is_finite() && t_s >= 0.0) {
            self.stats.packets_bad_time += 1;
            return;
        }
        let i = self.session_index(p.header.session_uid, out);
        // Hold bound: fall back to car{n} ids when participants are overdue.
        let overdue = self.sessions.get(i).is_some_and(|s| {
            s.ids == Ids::Pending
                && !s.held.is_empty()
                && ((t_s - s.held_first_t_s).abs() > self.cfg.hold_window_s
                    || s.held.len() + NUM_CARS > self.cfg.max_held_samples)
        });
        if overdue {
            self.release_fallback(i, out);
        }
        let compounds = &self.compounds;
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        for (idx, tel) in p.cars.iter().enumerate() {
            let result_status = s
                .lap
                .as_ref()
                .and_then(|l| l.get(idx))
                .map(|l| l.result_status);
            let moving = tel.engine_rpm > 0 || tel.speed_kmh > 0;
            match s.ids {
                Ids::Participants | Ids::Fallback => {
                    let n = (s.ids == Ids::Participants).then_some(s.num_active_cars);
                    if is_active(idx, result_status, n, moving) {
                        out.push(build(s, idx, tel, t_s, compounds));
                    }
                }
                Ids::Pending => {
                    // Retired / inactive cars are never emitted; others wait for participants.
                    if matches!(result_status, Some(1) | Some(4..=7)) {
                        continue;
                    }
                    if s.held.is_empty() {
                        s.held_first_t_s = t_s;
                    }
                    let sample = build(s, idx, tel, t_s, compounds);
                    s.held.push(Held {
                        idx,
                        result_status,
                        moving,
                        sample,
                    });
                    self.stats.samples_held += 1;
                }
            }
        }
    }
}

/// One car's sample from the session's latest state. Every value is range-checked so that
/// `telemetry::validate` accepts the result; an implausible value becomes `None`.
fn build(
    s: &SessionState,
    idx: usize,
    tel: &CarTelemetry,
    t_s: f64,
    compounds: &[Option<Arc<str>>; 256],
) -> Sample {
    let car_id = s
        .car_ids
        .get(idx)
        .cloned()
        .unwrap_or_else(|| Arc::from(format!("car{}", idx + 1)));
    let mut x = Sample::new(s.session_id.clone(), car_id, t_s);
    x.track = s.track.clone();
    x.track_temp_c = s.track_temp_c;
    x.air_temp_c = s.air_temp_c;

    x.speed_kmh = within(f64::from(tel.speed_kmh), 0.0, 500.0);
    x.throttle_pct = pct(tel.throttle);
    x.brake_pct = pct(tel.brake);
    x.steering_deg =
        within(f64::from(tel.steer), -1.05, 1.05).map(|v| v.clamp(-1.0, 1.0) * STEERING_LOCK_DEG);
    x.gear = (-1..=10).contains(&tel.gear).then_some(tel.gear);
    x.rpm = within(f64::from(tel.engine_rpm), 0.0, 20000.0);
    x.tyre_temp_c = Some(wire_to_corners(tel.tyre_surface_temp_c.map(f64::from)));

    if let Some(l) = s.lap.as_ref().and_then(|l| l.get(idx)) {
        x.lap = Some(u32::from(l.lap));
        // Negative before the car first crosses the line: no distance yet.
        x.lap_dist_m = within(f64::from(l.lap_distance_m), 0.0, f64::MAX);
        x.position = (l.position > 0).then_some(l.position);
        x.pit_status = PitStatus::from_code(l.pit_status);
    }
    if let Some(st) = s.status.as_ref().and_then(|v| v.get(idx)) {
        x.fuel_kg = within(f64::from(st.fuel_kg), 0.0, f64::MAX);
        x.tyre_compound = compounds
            .get(usize::from(st.visual_compound))
            .cloned()
            .flatten();
        x.tyre_age_laps = Some(u16::from(st.tyre_age_laps));
    }
    if let Some(d) = s.damage.as_ref().and_then(|v| v.get(idx)) {
        let w = d.tyre_wear_pct.map(f64::from);
        if w.iter()
            .all(|v| v.is_finite() && (-0.5..=100.5).contains(v))
        {
            x.tyre_wear_pct = Some(wire_to_corners(w.map(|v| v.clamp(0.0, 100.0))));
        }
    }
    if let Some(m) = s.motion.as_ref().and_then(|v| v.get(idx)) {
        x.accx_g = within(f64::from(m.g_force_longitudinal), -6.0, 6.0);
        x.accy_g = within(f64::from(m.g_force_lateral), -6.0, 6.0);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corner_mapping_from_wire_order() {
        let c = wire_to_corners([1, 2, 3, 4]);
        assert_eq!((c.rl, c.rr, c.fl, c.fr), (1, 2, 3, 4));
        assert_eq!(c.to_array(), [3, 4, 1, 2]);
    }

    #[test]
    fn activity_rule() {
        assert!(is_active(19, Some(2), Some(18), false));
        assert!(is_active(5, Some(3), Some(1), false));
        assert!(!is_active(1, Some(7), Some(22), true));
        assert!(!is_active(1, Some(1), Some(22), true));
        assert!(is_active(3, Some(0), Some(20), false));
        assert!(!is_active(20, Some(0), Some(20), true));
        assert!(is_active(20, None, None, true));
        assert!(!is_active(20, None, None, false));
    }

    #[test]
    fn percent_and_range_helpers() {
        assert_eq!(pct(0.5), Some(50.0));
        assert_eq!(pct(1.01), Some(100.0));
        assert_eq!(pct(-0.01), Some(0.0));
        assert_eq!(pct(2.0), None);
        assert_eq!(pct(f32::NAN), None);
        assert_eq!(within(f64::INFINITY, 0.0, f64::MAX), None);
    }
}
