//! Typed packets and the decoder. Layouts follow EA's published headers as encoded by the PyPI
//! package `f1-packets` (2023.1.0, 2024.1.0, 2025.1.1): little-endian, packed, 22 cars.

use crate::wire::{arr, block, f32_at, f32x4, i8_at, u16_at, u16x4, u32_at, u64_at, u8_at};
use thiserror::Error;

/// Length of the packet header common to every packet of formats 2023-2025.
pub const HEADER_LEN: usize = 29;
/// Number of car slots in every per-car array of formats 2023-2025.
pub const NUM_CARS: usize = 22;

/// Why a datagram was not decoded. [`DecodeError::reason`] gives a stable label for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than the 29-byte header.
    #[error("datagram of {len} bytes is shorter than the {HEADER_LEN}-byte F1 header")]
    TooShort {
        /// Datagram length, bytes.
        len: usize,
    },
    /// A `packet_format` this decoder does not speak (e.g. 2022, or 2026 with 24 cars).
    #[error("unknown F1 UDP packet format {format} (supported: 2023, 2024, 2025)")]
    UnknownFormat {
        /// The header's `packet_format`.
        format: u16,
    },
    /// A packet id the format does not define.
    #[error("unknown packet id {id} for F1 UDP format {format}")]
    UnknownPacketId {
        /// The header's `packet_format`.
        format: u16,
        /// The header's `packet_id`.
        id: u8,
    },
    /// The datagram's length is not the exact size of its (format, id): truncated or foreign.
    #[error("packet id {id} of format {format} must be {expected} bytes, got {actual}")]
    WrongSize {
        /// The header's `packet_format`.
        format: u16,
        /// The header's `packet_id`.
        id: u8,
        /// The size the format defines, bytes.
        expected: usize,
        /// The datagram's size, bytes.
        actual: usize,
    },
}

impl DecodeError {
    /// A stable snake_case label for metrics: `too_short`, `unknown_format`,
    /// `unknown_packet_id` or `wrong_size`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::UnknownFormat { .. } => "unknown_format",
            DecodeError::UnknownPacketId { .. } => "unknown_packet_id",
            DecodeError::WrongSize { .. } => "wrong_size",
        }
    }
}

/// A UDP format chosen in the game's menu (not the game's year: F1 25 can send all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `packet_format` 2023 (F1 23 layout).
    F2023,
    /// `packet_format` 2024 (F1 24 layout).
    F2024,
    /// `packet_format` 2025 (F1 25 layout).
    F2025,
}

impl Format {
    /// The format for a header's `packet_format`, if supported.
    pub fn from_wire(packet_format: u16) -> Option<Format> {
        match packet_format {
            2023 => Some(Format::F2023),
            2024 => Some(Format::F2024),
            2025 => Some(Format::F2025),
            _ => None,
        }
    }

    /// The `packet_format` value on the wire.
    pub fn year(self) -> u16 {
        match self {
            Format::F2023 => 2023,
            Format::F2024 => 2024,
            Format::F2025 => 2025,
        }
    }

    /// The exact datagram size of packet `id` in this format, or `None` for an unknown id.
    pub fn packet_size(self, id: u8) -> Option<usize> {
        const S2023: [usize; 14] = [
            1349, 644, 1131, 45, 1306, 1107, 1352, 1239, 1020, 1218, 953, 1460, 231, 217,
        ];
        const S2024: [usize; 15] = [
            1349, 753, 1285, 45, 1350, 1133, 1352, 1239, 1020, 1306, 953, 1460, 231, 237, 101,
        ];
        const S2025: [usize; 16] = [
            1349, 753, 1285, 45, 1284, 1133, 1352, 1239, 1042, 954, 1041, 1460, 231, 273, 101, 1131,
        ];
        let table: &[usize] = match self {
            Format::F2023 => &S2023,
            Format::F2024 => &S2024,
            Format::F2025 => &S2025,
        };
        table.get(usize::from(id)).copied()
    }

    fn lap_stride(self) -> usize {
        match self {
            Format::F2023 => 50,
            Format::F2024 | Format::F2025 => 57,
        }
    }

    fn participant_stride(self) -> usize {
        match self {
            Format::F2023 => 58,
            Format::F2024 => 60,
            Format::F2025 => 57,
        }
    }

    fn damage_stride(self) -> usize {
        match self {
            Format::F2023 | Format::F2024 => 42,
            Format::F2025 => 46,
        }
    }
}

/// Packet ids this crate decodes into typed structs.
pub mod packet_id {
    /// Motion (per-car g-forces, position).
    pub const MOTION: u8 = 0;
    /// Session (track, weather, temperatures).
    pub const SESSION: u8 = 1;
    /// Lap Data (lap, distance, position, pit status).
    pub const LAP_DATA: u8 = 2;
    /// Event (four-letter code).
    pub const EVENT: u8 = 3;
    /// Participants (race numbers, names).
    pub const PARTICIPANTS: u8 = 4;
    /// Car Telemetry (speed, pedals, gear, temperatures).
    pub const CAR_TELEMETRY: u8 = 6;
    /// Car Status (fuel, compounds, tyre age).
    pub const CAR_STATUS: u8 = 7;
    /// Car Damage (tyre wear).
    pub const CAR_DAMAGE: u8 = 10;
}

/// The 29-byte header every packet starts with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// UDP format (2023, 2024 or 2025).
    pub packet_format: u16,
    /// Last two digits of the game's year; never validated (F1 25 sends 0 in format 2023).
    pub game_year: u8,
    /// Game major version.
    pub game_major_version: u8,
    /// Game minor version.
    pub game_minor_version: u8,
    /// Version of this packet type.
    pub packet_version: u8,
    /// Packet id (see [`packet_id`]).
    pub packet_id: u8,
    /// Unique id of the session.
    pub session_uid: u64,
    /// Session timestamp, s.
    pub session_time_s: f32,
    /// Frame the data was retrieved on.
    pub frame_identifier: u32,
    /// Overall frame (does not go back after flashbacks).
    pub overall_frame_identifier: u32,
    /// Index of the player's car.
    pub player_car_index: u8,
    /// Index of the secondary player's car (255 when none).
    pub secondary_player_car_index: u8,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        Some(Header {
            packet_format: u16_at(b, 0)?,
            game_year: u8_at(b, 2)?,
            game_major_version: u8_at(b, 3)?,
            game_minor_version: u8_at(b, 4)?,
            packet_version: u8_at(b, 5)?,
            packet_id: u8_at(b, 6)?,
            session_uid: u64_at(b, 7)?,
            session_time_s: f32_at(b, 15)?,
            frame_identifier: u32_at(b, 19)?,
            overall_frame_identifier: u32_at(b, 23)?,
            player_car_index: u8_at(b, 27)?,
            secondary_player_car_index: u8_at(b, 28)?,
        })
    }
}

/// One car of a Motion packet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CarMotion {
    /// World position x, y, z, m.
    pub world_position_m: [f32; 3],
    /// Lateral g-force, as the game sends it.
    pub g_force_lateral: f32,
    /// Longitudinal g-force, as the game sends it.
    pub g_force_longitudinal: f32,
    /// Vertical g-force.
    pub g_force_vertical: f32,
    /// Yaw, rad.
    pub yaw_rad: f32,
}

/// Motion packet (id 0): per-car g-forces and position.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionPacket {
    /// Header.
    pub header: Header,
    /// Per car slot.
    pub cars: [CarMotion; NUM_CARS],
}

/// Session packet (id 1): the fields a platform uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionPacket {
    /// Header.
    pub header: Header,
    /// Weather: 0 clear, 1 light cloud, 2 overcast, 3 light rain, 4 heavy rain, 5 storm.
    pub weather: u8,
    /// Track temperature, °C.
    pub track_temp_c: i8,
    /// Air temperature, °C.
    pub air_temp_c: i8,
    /// Total laps of the race.
    pub total_laps: u8,
    /// Track length, m.
    pub track_length_m: u16,
    /// Session type (15 = race in 2023-2025, 18 = time trial).
    pub session_type: u8,
    /// Track id (-1 unknown); see [`crate::track_name`].
    pub track_id: i8,
    /// Formula (0 = F1 modern).
    pub formula: u8,
    /// Time left in the session, s.
    pub session_time_left_s: u16,
    /// Session duration, s.
    pub session_duration_s: u16,
}

/// One car of a Lap Data packet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LapData {
    /// Last lap time, ms.
    pub last_lap_ms: u32,
    /// Current lap time, ms.
    pub current_lap_ms: u32,
    /// Distance round the current lap, m (negative before the line is crossed at the start).
    pub lap_distance_m: f32,
    /// Total distance in the session, m.
    pub total_distance_m: f32,
    /// Race position, 1 = leader.
    pub position: u8,
    /// Current lap number.
    pub lap: u8,
    /// 0 none, 1 pitting, 2 in pit area.
    pub pit_status: u8,
    /// Number of pit stops.
    pub num_pit_stops: u8,
    /// Sector: 0 = sector 1, 1 = sector 2, 2 = sector 3.
    pub sector: u8,
    /// 1 when the current lap is invalid.
    pub current_lap_invalid: u8,
    /// 0 garage, 1 flying lap, 2 in lap, 3 out lap, 4 on track.
    pub driver_status: u8,
    /// 0 invalid, 1 inactive, 2 active, 3 finished, 4 did not finish, 5 disqualified,
    /// 6 not classified, 7 retired.
    pub result_status: u8,
}

/// Lap Data packet (id 2).
#[derive(Debug, Clone, PartialEq)]
pub struct LapDataPacket {
    /// Header.
    pub header: Header,
    /// Per car slot.
    pub cars: [LapData; NUM_CARS],
}

/// Event packet (id 3): the four-letter code and the raw details.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventPacket {
    /// Header.
    pub header: Header,
    /// Event code bytes, e.g. `*b"SSTA"`.
    pub code: [u8; 4],
    /// The 12 bytes of the event details union, undecoded.
    pub details: [u8; 12],
}

impl EventPacket {
    /// The code as text (`"SSTA"`, `"FTLP"`...); `"????"` if not ASCII.
    pub fn code_str(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("????")
    }
}

/// One car of a Participants packet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Participant {
    /// Whether the AI drives this car.
    pub ai_controlled: bool,
    /// Driver id (255 for network humans).
    pub driver_id: u8,
    /// Team id.
    pub team_id: u8,
    /// Race number on the car.
    pub race_number: u8,
    /// Nationality id.
    pub nationality: u8,
    /// Name: the UTF-8 bytes up to the first NUL (invalid sequences replaced).
    pub name: String,
}

/// Participants packet (id 4).
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantsPacket {
    /// Header.
    pub header: Header,
    /// Number of active cars (may exceed the number of slots in corrupt data; not clamped).
    pub num_active_cars: u8,
    /// Per car slot.
    pub cars: [Participant; NUM_CARS],
}

/// One car of a Car Telemetry packet. Per-wheel arrays are in wire order RL, RR, FL, FR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CarTelemetry {
    /// Speed, km/h.
    pub speed_kmh: u16,
    /// Throttle, 0.0-1.0.
    pub throttle: f32,
    /// Steering, -1.0 (full lock left) to 1.0 (full lock right).
    pub steer: f32,
    /// Brake, 0.0-1.0.
    pub brake: f32,
    /// Clutch, 0-100.
    pub clutch: u8,
    /// Gear: -1 reverse, 0 neutral, 1-8.
    pub gear: i8,
    /// Engine speed, rpm.
    pub engine_rpm: u16,
    /// DRS open (1) or closed (0).
    pub drs: u8,
    /// Brake temperatures, °C (RL, RR, FL, FR).
    pub brake_temp_c: [u16; 4],
    /// Tyre surface temperatures, °C (RL, RR, FL, FR).
    pub tyre_surface_temp_c: [u8; 4],
    /// Tyre inner temperatures, °C (RL, RR, FL, FR).
    pub tyre_inner_temp_c: [u8; 4],
    /// Engine temperature, °C.
    pub engine_temp_c: u16,
    /// Tyre pressures, PSI (RL, RR, FL, FR).
    pub tyre_pressure_psi: [f32; 4],
}

/// Car Telemetry packet (id 6).
#[derive(Debug, Clone, PartialEq)]
pub struct CarTelemetryPacket {
    /// Header.
    pub header: Header,
    /// Per car slot.
    pub cars: [CarTelemetry; NUM_CARS],
}

/// One car of a Car Status packet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CarStatus {
    /// Fuel in the tank, kg.
    pub fuel_kg: f32,
    /// Fuel capacity, kg.
    pub fuel_capacity_kg: f32,
    /// Fuel remaining, laps (the MFD value).
    pub fuel_remaining_laps: f32,
    /// Actual compound: 16 C5 ... 20 C1, 21 C0, 22 C6, 7 inter, 8 wet (F1 modern).
    pub actual_compound: u8,
    /// Visual compound: 16 soft, 17 medium, 18 hard, 7 inter, 8 wet (F1 modern).
    pub visual_compound: u8,
    /// Age of the tyre set, laps.
    pub tyre_age_laps: u8,
    /// FIA flag: -1 invalid, 0 none, 1 green, 2 blue, 3 yellow.
    pub vehicle_fia_flags: i8,
}

/// Car Status packet (id 7).
#[derive(Debug, Clone, PartialEq)]
pub struct CarStatusPacket {
    /// Header.
    pub header: Header,
    /// Per car slot.
    pub cars: [CarStatus; NUM_CARS],
}

/// One car of a Car Damage packet. Per-wheel arrays are in wire order RL, RR, FL, FR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CarDamage {
    /// Tyre wear, percent (RL, RR, FL, FR).
    pub tyre_wear_pct: [f32; 4],
    /// Tyre damage, percent (RL, RR, FL, FR).
    pub tyre_damage_pct: [u8; 4],
    /// Brake damage, percent (RL, RR, FL, FR).
    pub brake_damage_pct: [u8; 4],
}

/// Car Damage packet (id 10).
#[derive(Debug, Clone, PartialEq)]
pub struct CarDamagePacket {
    /// Header.
    pub header: Header,
    /// Per car slot.
    pub cars: [CarDamage; NUM_CARS],
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Id 0.
    Motion(Box<MotionPacket>),
    /// Id 1.
    Session(SessionPacket),
    /// Id 2.
    LapData(Box<LapDataPacket>),
    /// Id 3.
    Event(EventPacket),
    /// Id 4.
    Participants(Box<ParticipantsPacket>),
    /// Id 6.
    CarTelemetry(Box<CarTelemetryPacket>),
    /// Id 7.
    CarStatus(Box<CarStatusPacket>),
    /// Id 10.
    CarDamage(Box<CarDamagePacket>),
    /// Any other id the format defines, with the right size; its body is not decoded.
    Other {
        /// Header.
        header: Header,
        /// Packet id.
        id: u8,
    },
}

impl Packet {
    /// The packet's header.
    pub fn header(&self) -> &Header {
        match self {
            Packet::Motion(p) => &p.header,
            Packet::Session(p) => &p.header,
            Packet::LapData(p) => &p.header,
            Packet::Event(p) => &p.header,
            Packet::Participants(p) => &p.header,
            Packet::CarTelemetry(p) => &p.header,
            Packet::CarStatus(p) => &p.header,
            Packet::CarDamage(p) => &p.header,
            Packet::Other { header, .. } => header,
        }
    }
}

/// A cheap test telling a binary F1 datagram from a JSON one sharing the port: true when the
/// first two bytes are a plausible little-endian `packet_format` (2017-2099). JSON (optional
/// whitespace then `{` or `[`) and any ASCII text fail it, since their second byte is < 0x80
/// while a year's high byte is 0x07 and its low byte >= 0xE1. True also for formats this decoder
/// rejects (e.g. 2026), so a listener counts those as F1 rejects rather than as bad JSON.
pub fn looks_like_f1(datagram: &[u8]) -> bool {
    match arr::<2>(datagram, 0) {
        Some(b) => (2017..=2099).contains(&u16::from_le_bytes(b)),
        None => false,
    }
}

/// Reads the header, checking only that there are 29 bytes.
pub fn decode_header(datagram: &[u8]) -> Result<Header, DecodeError> {
    Header::parse(datagram).ok_or(DecodeError::TooShort {
        len: datagram.len(),
    })
}

/// Decodes one datagram. Dispatches on (`packet_format`, `packet_id`); never looks at
/// `game_year`. Rejects short datagrams, unknown formats and ids, and any size other than the
/// exact size of the (format, id).
pub fn decode(datagram: &[u8]) -> Result<Packet, DecodeError> {
    let header = decode_header(datagram)?;
    let format = Format::from_wire(header.packet_format).ok_or(DecodeError::UnknownFormat {
        format: header.packet_format,
    })?;
    let id = header.packet_id;
    let expected = format.packet_size(id).ok_or(DecodeError::UnknownPacketId {
        format: header.packet_format,
        id,
    })?;
    let wrong = DecodeError::WrongSize {
        format: header.packet_format,
        id,
        expected,
        actual: datagram.len(),
    };
    if datagram.len() != expected {
        return Err(wrong);
    }
    let b = datagram;
    let packet = match id {
        packet_id::MOTION => motion(b, header).map(|p| Packet::Motion(Box::new(p))),
        packet_id::SESSION => session(b, header).map(Packet::Session),
        packet_id::LAP_DATA => lap_data(b, header, format).map(|p| Packet::LapData(Box::new(p))),
        packet_id::EVENT => event(b, header).map(Packet::Event),
        packet_id::PARTICIPANTS => {
            participants(b, header, format).map(|p| Packet::Participants(Box::new(p)))
        }
        packet_id::CAR_TELEMETRY => {
            car_telemetry(b, header).map(|p| Packet::CarTelemetry(Box::new(p)))
        }
        packet_id::CAR_STATUS => car_status(b, header).map(|p| Packet::CarStatus(Box::new(p))),
        packet_id::CAR_DAMAGE => {
            car_damage(b, header, format).map(|p| Packet::CarDamage(Box::new(p)))
        }
        _ => Some(Packet::Other { header, id }),
    };
    // The size was checked above, so every read is in bounds; `None` cannot happen, but if a
    // layout constant were wrong it is reported as a size error rather than a panic.
    packet.ok_or(wrong)
}

/// Fills `NUM_CARS` items by reading each car's block of `stride` bytes after the header.
fn per_car<T: Default + Copy>(
    b: &[u8],
    stride: usize,
    f: impl Fn(&[u8]) -> Option<T>,
) -> Option<[T; NUM_CARS]> {
    let mut out = [T::default(); NUM_CARS];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = f(block(b, HEADER_LEN + i * stride, stride)?)?;
    }
    Some(out)
}

fn motion(b: &[u8], header: Header) -> Option<MotionPacket> {
    let cars = per_car(b, 60, |c| {
        Some(CarMotion {
            world_position_m: [f32_at(c, 0)?, f32_at(c, 4)?, f32_at(c, 8)?],
            g_force_lateral: f32_at(c, 36)?,
            g_force_longitudinal: f32_at(c, 40)?,
            g_force_vertical: f32_at(c, 44)?,
            yaw_rad: f32_at(c, 48)?,
        })
    })?;
    Some(MotionPacket { header, cars })
}

fn session(b: &[u8], header: Header) -> Option<SessionPacket> {
    Some(SessionPacket {
        header,
        weather: u8_at(b, 29)?,
        track_temp_c: i8_at(b, 30)?,
        air_temp_c: i8_at(b, 31)?,
        total_laps: u8_at(b, 32)?,
        track_length_m: u16_at(b, 33)?,
        session_type: u8_at(b, 35)?,
        track_id: i8_at(b, 36)?,
        formula: u8_at(b, 37)?,
        session_time_left_s: u16_at(b, 38)?,
        session_duration_s: u16_at(b, 40)?,
    })
}

fn lap_data(b: &[u8], header: Header, format: Format) -> Option<LapDataPacket> {
    // From 2024 every field after byte 16 of a car's block moves by 2.
    let s = match format {
        Format::F2023 => 0,
        Format::F2024 | Format::F2025 => 2,
    };
    let cars = per_car(b, format.lap_stride(), |c| {
        Some(LapData {
            last_lap_ms: u32_at(c, 0)?,
            current_lap_ms: u32_at(c, 4)?,
            lap_distance_m: f32_at(c, 18 + s)?,
            total_distance_m: f32_at(c, 22 + s)?,
            position: u8_at(c, 30 + s)?,
            lap: u8_at(c, 31 + s)?,
            pit_status: u8_at(c, 32 + s)?,
            num_pit_stops: u8_at(c, 33 + s)?,
            sector: u8_at(c, 34 + s)?,
            current_lap_invalid: u8_at(c, 35 + s)?,
            driver_status: u8_at(c, 42 + s)?,
            result_status: u8_at(c, 43 + s)?,
        })
    })?;
    Some(LapDataPacket { header, cars })
}

fn event(b: &[u8], header: Header) -> Option<EventPacket> {
    Some(EventPacket {
        header,
        code: arr::<4>(b, 29)?,
        details: arr::<12>(b, 33)?,
    })
}

fn participants(b: &[u8], header: Header, format: Format) -> Option<ParticipantsPacket> {
    let stride = format.participant_stride();
    let mut cars: [Participant; NUM_CARS] = Default::default();
    for (i, slot) in cars.iter_mut().enumerate() {
        let c = block(b, HEADER_LEN + 1 + i * stride, stride)?;
        let name = block(c, 7, 32)?;
        let end = name.iter().position(|&x| x == 0).unwrap_or(name.len());
        *slot = Participant {
            ai_controlled: u8_at(c, 0)? != 0,
            driver_id: u8_at(c, 1)?,
            team_id: u8_at(c, 3)?,
            race_number: u8_at(c, 5)?,
            nationality: u8_at(c, 6)?,
            name: String::from_utf8_lossy(name.get(..end)?).into_owned(),
        };
    }
    Some(ParticipantsPacket {
        header,
        num_active_cars: u8_at(b, 29)?,
        cars,
    })
}

fn car_telemetry(b: &[u8], header: Header) -> Option<CarTelemetryPacket> {
    let cars = per_car(b, 60, |c| {
        Some(CarTelemetry {
            speed_kmh: u16_at(c, 0)?,
            throttle: f32_at(c, 2)?,
            steer: f32_at(c, 6)?,
            brake: f32_at(c, 10)?,
            clutch: u8_at(c, 14)?,
            gear: i8_at(c, 15)?,
            engine_rpm: u16_at(c, 16)?,
            drs: u8_at(c, 18)?,
            brake_temp_c: u16x4(c, 22)?,
            tyre_surface_temp_c: arr::<4>(c, 30)?,
            tyre_inner_temp_c: arr::<4>(c, 34)?,
            engine_temp_c: u16_at(c, 38)?,
            tyre_pressure_psi: f32x4(c, 40)?,
        })
    })?;
    Some(CarTelemetryPacket { header, cars })
}

fn car_status(b: &[u8], header: Header) -> Option<CarStatusPacket> {
    let cars = per_car(b, 55, |c| {
        Some(CarStatus {
            fuel_kg: f32_at(c, 5)?,
            fuel_capacity_kg: f32_at(c, 9)?,
            fuel_remaining_laps: f32_at(c, 13)?,
            actual_compound: u8_at(c, 25)?,
            visual_compound: u8_at(c, 26)?,
            tyre_age_laps: u8_at(c, 27)?,
            vehicle_fia_flags: i8_at(c, 28)?,
        })
    })?;
    Some(CarStatusPacket { header, cars })
}

fn car_damage(b: &[u8], header: Header, format: Format) -> Option<CarDamagePacket> {
    let cars = per_car(b, format.damage_stride(), |c| {
        Some(CarDamage {
            tyre_wear_pct: f32x4(c, 0)?,
            tyre_damage_pct: arr::<4>(c, 16)?,
            brake_damage_pct: arr::<4>(c, 20)?,
        })
    })?;
    Some(CarDamagePacket { header, cars })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_consistent_with_strides() {
        for f in [Format::F2023, Format::F2024, Format::F2025] {
            assert_eq!(
                f.packet_size(packet_id::LAP_DATA),
                Some(HEADER_LEN + NUM_CARS * f.lap_stride() + 2)
            );
            assert_eq!(
                f.packet_size(packet_id::PARTICIPANTS),
                Some(HEADER_LEN + 1 + NUM_CARS * f.participant_stride())
            );
            assert_eq!(
                f.packet_size(packet_id::CAR_DAMAGE),
                Some(HEADER_LEN + NUM_CARS * f.damage_stride())
            );
            assert_eq!(
                f.packet_size(packet_id::CAR_TELEMETRY),
                Some(HEADER_LEN + NUM_CARS * 60 + 3)
            );
            assert_eq!(
                f.packet_size(packet_id::CAR_STATUS),
                Some(HEADER_LEN + NUM_CARS * 55)
            );
            assert_eq!(
                f.packet_size(packet_id::MOTION),
                Some(HEADER_LEN + NUM_CARS * 60)
            );
        }
        assert_eq!(Format::F2023.packet_size(14), None);
        assert_eq!(Format::F2024.packet_size(15), None);
        assert_eq!(Format::F2025.packet_size(16), None);
    }

    #[test]
    fn looks_like_f1_separates_json() {
        assert!(!looks_like_f1(b"{\"a\":1}"));
        assert!(!looks_like_f1(b"  \n[1]"));
        assert!(!looks_like_f1(b""));
        assert!(!looks_like_f1(&[0xE9]));
        assert!(looks_like_f1(&2025u16.to_le_bytes()));
        assert!(looks_like_f1(&2026u16.to_le_bytes()));
        assert!(looks_like_f1(&2022u16.to_le_bytes()));
        assert!(!looks_like_f1(&[0, 0, 0]));
    }
}
