//! Decoder for the EA/Codemasters F1 game UDP telemetry (F1 23, F1 24, F1 25) in the UDP
//! formats 2023, 2024 and 2025, and an [`Assembler`] that turns the datagram stream into
//! [`telemetry::Sample`]s. Pure logic: the caller owns the socket.
//!
//! # Decoding
//! [`decode`] reads the 29-byte header, dispatches on (`packet_format`, `packet_id`) — never on
//! `game_year` — and checks the datagram has the exact size of that (format, id). Motion (0),
//! Session (1), Lap Data (2), Event (3), Participants (4), Car Telemetry (6), Car Status (7) and
//! Car Damage (10) are decoded into typed structs; other ids of a known format become
//! [`Packet::Other`]. Everything else is a [`DecodeError`] with a stable
//! [`DecodeError::reason`] label. [`looks_like_f1`] tells a binary F1 datagram from JSON.
//!
//! # Assembling samples
//! On each Car Telemetry packet the [`Assembler`] emits one sample per active car (result
//! status active/finished; for an unknown status, index < the participants' `num_active_cars`).
//! Mapping:
//! - `session_id` = `f1-<session uid in decimal>`; `track` from the session's track id
//!   ([`track_name`]); `t_s` = header session time.
//! - `car_id` = the participant's race number (`"44"`); a duplicate number gets `"<n>-<index+1>"`,
//!   number 0 gets `car<index+1>`. Samples arriving before the session's first Participants
//!   packet are held (up to [`AssemblerConfig::hold_window_s`] of session time) and released
//!   with those ids; if none comes in time, `car<index+1>` ids are used.
//! - Lap Data: `lap`, `lap_dist_m` (`None` while negative, before the line), `position`
//!   (`None` for 0), `pit_status`.
//! - Car Telemetry: `speed_kmh`, `throttle_pct` and `brake_pct` (0-1 → 0-100), `steering_deg`
//!   (`steer * STEERING_LOCK_DEG`, i.e. ±180° at full lock, negative = left), `gear` (-1 R,
//!   0 N), `rpm`, `tyre_temp_c` (surface).
//! - Car Status: `fuel_kg`, `tyre_compound` (visual: soft/medium/hard/inter/wet, see
//!   [`compound_name`]), `tyre_age_laps`. Car Damage: `tyre_wear_pct`. Motion: `accx_g`
//!   (longitudinal) and `accy_g` (lateral) as the game sends them.
//! - Session: `track_temp_c`, `air_temp_c`.
//! - Per-wheel arrays are RL, RR, FL, FR on the wire and mapped to named corners
//!   ([`wire_to_corners`]).
//!
//! Every emitted sample passes `telemetry::validate`: implausible values become `None`.

mod assembler;
mod names;
mod packets;
mod wire;

pub use assembler::{
    wire_to_corners, Assembler, AssemblerConfig, AssemblerStats, STEERING_LOCK_DEG,
};
pub use names::{compound_name, track_name, COMPOUND_NAMES};
pub use packets::{
    decode, decode_header, looks_like_f1, packet_id, CarDamage, CarDamagePacket, CarMotion,
    CarStatus, CarStatusPacket, CarTelemetry, CarTelemetryPacket, DecodeError, EventPacket, Format,
    Header, LapData, LapDataPacket, MotionPacket, Packet, Participant, ParticipantsPacket,
    SessionPacket, HEADER_LEN, NUM_CARS,
};
