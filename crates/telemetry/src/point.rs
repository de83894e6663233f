//! `TelemetryPoint`: a [`Sample`] under the documented names of the JSON ingest shape.
//!
//! This is what a WebSocket `telemetry_update` carries. The names are the ones a client of the
//! documented API already knows from sending telemetry (`meta_time`, `track`, `chassis`, `lap`,
//! `lapdist_m`, `speed_kmh`, `accx_can`, `accy_can`, `Steering_Angle`, `pbrake_f`, `aps`,
//! `rpm`, ...), and every one of them is read by [`crate::json`] on ingest, so a point sent back to
//! `/api/telemetry/ingest` is accepted with the same values.

use crate::sample::{Corners, PitStatus, Sample};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Sample times at or after this instant (2000-01-01T00:00:00Z) are Unix times; earlier ones
/// are session clocks (a session clock does not run for 30 years).
pub const UNIX_TIME_MIN_S: f64 = 946_684_800.0;

/// The time of a point as the seed's `meta_time`: an RFC 3339 UTC time when the source gave a
/// wall-clock time, else the session time in seconds (F1 game, simulator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MetaTime {
    /// RFC 3339 UTC time, microsecond precision, e.g. `2025-06-01T14:02:11.21Z`.
    #[schema(format = DateTime)]
    Rfc3339(String),
    /// Session time, s.
    SessionS(f64),
}

impl MetaTime {
    /// The `meta_time` of a sample time `t_s`.
    pub fn from_t_s(t_s: f64) -> MetaTime {
        if t_s >= UNIX_TIME_MIN_S {
            let us = (t_s * 1e6).round() as i128;
            if let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(us * 1000) {
                if let Ok(s) = t.format(&time::format_description::well_known::Rfc3339) {
                    return MetaTime::Rfc3339(s);
                }
            }
        }
        MetaTime::SessionS(t_s)
    }
}

/// One car at one instant, as sent on the WebSocket (`telemetry_update`): the names of the JSON
/// ingest shape (the seed's and GR Cup's where they have one, PitWall's otherwise). A channel
/// the source does not have is left out, never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetryPoint {
    /// Session id (the track name when the source gave only a track).
    #[schema(value_type = String)]
    pub session: Arc<str>,
    /// Track name (the session id when the source gave only a session).
    #[schema(value_type = String)]
    pub track: Arc<str>,
    /// Car id (chassis / vehicle id).
    #[schema(value_type = String)]
    pub chassis: Arc<str>,
    /// RFC 3339 UTC time when the source gave a wall-clock time, else the session time, s.
    pub meta_time: MetaTime,
    /// The same instant as a number: Unix seconds, or session seconds (see `meta_time`).
    /// Exact, and read first on ingest.
    pub t_s: f64,
    /// Lap number as the source counts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lap: Option<u32>,
    /// Distance from the start line, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapdist_m: Option<f64>,
    /// Speed, km/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    /// Longitudinal acceleration, g (positive = accelerating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accx_can: Option<f64>,
    /// Lateral acceleration, g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accy_can: Option<f64>,
    /// Front brake line pressure, bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbrake_f: Option<f64>,
    /// Rear brake line pressure, bar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbrake_r: Option<f64>,
    /// Throttle pedal, %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aps: Option<f64>,
    /// Brake pedal, % (sources without line pressures, such as the F1 game).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brake_pct: Option<f64>,
    /// Steering wheel angle, deg.
    #[serde(
        rename = "Steering_Angle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub steering_angle_deg: Option<f64>,
    /// Engine speed, rpm (GR Cup `nmot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<f64>,
    /// -1 reverse, 0 neutral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gear: Option<i8>,
    /// Latitude, deg (GR Cup's name, in degrees).
    #[serde(
        rename = "VBOX_Lat_Min",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lat_deg: Option<f64>,
    /// Longitude, deg (GR Cup's name, in degrees).
    #[serde(
        rename = "VBOX_Long_Minutes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lon_deg: Option<f64>,
    /// Race position, 1 = leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u8>,
    /// Fuel in the tank, kg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_kg: Option<f64>,
    /// Tyre compound as the source names it (e.g. `soft`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub tyre_compound: Option<Arc<str>>,
    /// Laps run on the current set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_age_laps: Option<u16>,
    /// `none`, `pitting` or `in_pit_area`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pit_status: Option<PitStatus>,
    /// True tyre wear per corner where the source knows it (F1 game, simulator), %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_wear_pct: Option<Corners<f64>>,
    /// Tyre surface temperature per corner, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tyre_temp_c: Option<Corners<f64>>,
    /// Track surface temperature, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_temp_c: Option<f64>,
    /// Air temperature, °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub air_temp_c: Option<f64>,
}

impl From<&Sample> for TelemetryPoint {
    fn from(s: &Sample) -> Self {
        TelemetryPoint {
            session: s.session_id.clone(),
            track: s.track.clone().unwrap_or_else(|| s.session_id.clone()),
            chassis: s.car_id.clone(),
            meta_time: MetaTime::from_t_s(s.t_s),
            t_s: s.t_s,
            lap: s.lap,
            lapdist_m: s.lap_dist_m,
            speed_kmh: s.speed_kmh,
            accx_can: s.accx_g,
            accy_can: s.accy_g,
            pbrake_f: s.brake_front_bar,
            pbrake_r: s.brake_rear_bar,
            aps: s.throttle_pct,
            brake_pct: s.brake_pct,
            steering_angle_deg: s.steering_deg,
            rpm: s.rpm,
            gear: s.gear,
            lat_deg: s.lat_deg,
            lon_deg: s.lon_deg,
            position: s.position,
            fuel_kg: s.fuel_kg,
            tyre_compound: s.tyre_compound.clone(),
            tyre_age_laps: s.tyre_age_laps,
            pit_status: s.pit_status,
            tyre_wear_pct: s.tyre_wear_pct,
            tyre_temp_c: s.tyre_temp_c,
            track_temp_c: s.track_temp_c,
            air_temp_c: s.air_temp_c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_body;
    use std::collections::BTreeSet;

    /// A sample with every channel set, to distinct values.
    fn full(t_s: f64) -> Sample {
        let mut s = Sample::new("race-7", "GR86-004-17", t_s);
        s.track = Some(Arc::from("barber"));
        s.lap = Some(4);
        s.lap_dist_m = Some(1200.5);
        s.speed_kmh = Some(131.5);
        s.accx_g = Some(-0.4);
        s.accy_g = Some(1.07);
        s.brake_front_bar = Some(20.1);
        s.brake_rear_bar = Some(18.0);
        s.throttle_pct = Some(80.5);
        s.brake_pct = Some(12.5);
        s.steering_deg = Some(-12.25);
        s.rpm = Some(6500.0);
        s.gear = Some(-1);
        s.lat_deg = Some(33.53);
        s.lon_deg = Some(-86.62);
        s.position = Some(3);
        s.fuel_kg = Some(41.5);
        s.tyre_compound = Some(Arc::from("soft"));
        s.tyre_age_laps = Some(7);
        s.pit_status = Some(PitStatus::InPitArea);
        s.tyre_wear_pct = Some(Corners::from_array([1.5, 2.5, 3.5, 4.5]));
        s.tyre_temp_c = Some(Corners::from_array([90.0, 91.0, 92.0, 93.0]));
        s.track_temp_c = Some(38.5);
        s.air_temp_c = Some(24.5);
        s
    }

    fn reingest(p: &TelemetryPoint) -> Sample {
        let body = serde_json::to_vec(p).unwrap();
        let mut b = parse_body(&body, false, 0.0).unwrap();
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(b.samples.len(), 1);
        b.samples.remove(0).1
    }

    #[test]
    fn documented_names_on_the_wire() {
        let v = serde_json::to_value(TelemetryPoint::from(&full(1748786531.21))).unwrap();
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "session",
                "track",
                "chassis",
                "meta_time",
                "t_s",
                "lap",
                "lapdist_m",
                "speed_kmh",
                "accx_can",
                "accy_can",
                "pbrake_f",
                "pbrake_r",
                "aps",
                "brake_pct",
                "Steering_Angle",
                "rpm",
                "gear",
                "VBOX_Lat_Min",
                "VBOX_Long_Minutes",
                "position",
                "fuel_kg",
                "tyre_compound",
                "tyre_age_laps",
                "pit_status",
                "tyre_wear_pct",
                "tyre_temp_c",
                "track_temp_c",
                "air_temp_c"
            ])
        );
        assert_eq!(v["meta_time"], "2025-06-01T14:02:11.21Z");
        assert_eq!(v["accx_can"], -0.4);
        assert_eq!(v["Steering_Angle"], -12.25);
        assert_eq!(v["pit_status"], "in_pit_area");
        assert_eq!(v["tyre_wear_pct"]["rr"], 4.5);
    }

    #[test]
    fn missing_channels_are_left_out() {
        let v = serde_json::to_value(TelemetryPoint::from(&Sample::new("s", "c", 12.5))).unwrap();
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["session", "track", "chassis", "meta_time", "t_s"])
        );
        // No track: the session stands in, as on ingest.
        assert_eq!(v["track"], "s");
        // A session clock stays a number.
        assert_eq!(v["meta_time"], 12.5);
    }

    #[test]
    fn a_point_sent_back_to_ingest_round_trips() {
        for t_s in [1748786531.21, 4321.125] {
            let s = full(t_s);
            let back = reingest(&TelemetryPoint::from(&s));
            assert_eq!(back, s, "t_s = {t_s}");
        }
        // A sample without a track: it comes back with the session as its track, and the
        // same point.
        let mut s = full(10.0);
        s.track = None;
        let p = TelemetryPoint::from(&s);
        let back = reingest(&p);
        assert_eq!(TelemetryPoint::from(&back), p);
        assert_eq!(&*back.session_id, "race-7");
    }

    #[test]
    fn meta_time_alone_gives_the_time() {
        // A client that keeps only `meta_time` (drops `t_s`) still sends the same instant.
        let p = TelemetryPoint::from(&full(1748786531.21));
        let mut v = serde_json::to_value(&p).unwrap();
        v.as_object_mut().unwrap().remove("t_s");
        let b = parse_body(v.to_string().as_bytes(), false, 0.0).unwrap();
        assert!((b.samples[0].1.t_s - 1748786531.21).abs() < 1e-6);
    }

    #[test]
    fn deserialises_what_it_serialises() {
        for t_s in [1748786531.21, 4321.125] {
            let p = TelemetryPoint::from(&full(t_s));
            let text = serde_json::to_string(&p).unwrap();
            let q: TelemetryPoint = serde_json::from_str(&text).unwrap();
            assert_eq!(q, p);
        }
    }
}
