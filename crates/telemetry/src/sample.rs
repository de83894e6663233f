//! The `Sample` type: one car at one instant. Every field carries its unit in its name;
//! a channel a source does not have is `None`, never 0.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A value per tyre corner, in the order front-left, front-right, rear-left, rear-right.
///
/// (The F1 game's wire order is RL, RR, FL, FR; decoders map it to these names.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, ToSchema)]
pub struct Corners<T> {
    pub fl: T,
    pub fr: T,
    pub rl: T,
    pub rr: T,
}

impl<T: Copy> Corners<T> {
    pub fn to_array(self) -> [T; 4] {
        [self.fl, self.fr, self.rl, self.rr]
    }
    pub fn from_array(a: [T; 4]) -> Self {
        Corners {
            fl: a[0],
            fr: a[1],
            rl: a[2],
            rr: a[3],
        }
    }
}

/// Where a car is with respect to the pit lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PitStatus {
    None,
    Pitting,
    InPitArea,
}

impl PitStatus {
    pub fn code(self) -> u8 {
        match self {
            PitStatus::None => 0,
            PitStatus::Pitting => 1,
            PitStatus::InPitArea => 2,
        }
    }
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(PitStatus::None),
            1 => Some(PitStatus::Pitting),
            2 => Some(PitStatus::InPitArea),
            _ => None,
        }
    }
}

/// One car at one instant.
///
/// Identity: `session_id` (a source's session, or the track name when a source sends only a
/// track) and `car_id` (chassis / vehicle id). `t_s` is the session time in seconds; for live
/// JSON without a session clock it is the Unix time of `meta_time` (or of arrival).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub session_id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Arc<str>>,
    pub car_id: Arc<str>,
    pub t_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap_dist_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    /// Longitudinal acceleration, g (positive = accelerating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accx_g: Option<f64>,
    /// Lateral acceleration, g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accy_g: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brake_front_bar: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brake_rear_bar: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_pct: Option<f64>,
    /// Brake pedal, percent (sources without line pressures, such as the F1 game).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brake_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steering_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gear: Option<i8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon_deg: Option<f64>,
    /// Race position, 1 = leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_compound: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_age_laps: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pit_status: Option<PitStatus>,
    /// True tyre wear per corner where the source knows it (F1 game, simulator), percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_wear_pct: Option<Corners<f64>>,
    /// Tyre surface temperature per corner, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_temp_c: Option<Corners<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_temp_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub air_temp_c: Option<f64>,
}

impl Sample {
    /// A sample with identity and time only; every channel missing.
    pub fn new(session_id: impl Into<Arc<str>>, car_id: impl Into<Arc<str>>, t_s: f64) -> Self {
        Sample {
            session_id: session_id.into(),
            track: None,
            car_id: car_id.into(),
            t_s,
            lap: None,
            lap_dist_m: None,
            speed_kmh: None,
            accx_g: None,
            accy_g: None,
            brake_front_bar: None,
            brake_rear_bar: None,
            throttle_pct: None,
            brake_pct: None,
            steering_deg: None,
            rpm: None,
            gear: None,
            lat_deg: None,
            lon_deg: None,
            position: None,
            fuel_kg: None,
            tyre_compound: None,
            tyre_age_laps: None,
            pit_status: None,
            tyre_wear_pct: None,
            tyre_temp_c: None,
            track_temp_c: None,
            air_temp_c: None,
        }
    }

    /// The track this sample belongs to, falling back to the session id.
    pub fn track_or_session(&self) -> &str {
        self.track.as_deref().unwrap_or(&self.session_id)
    }
}
