//! Plausibility checks on a [`Sample`]. Each failure names the field and the reason.

use crate::sample::{Corners, Sample};
use serde::Serialize;

/// Why one field of one point was refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// An id (session, track, car) is usable when it has at least one ASCII letter or digit; this
/// rule reads the same in every regex dialect (`/api/openapi.json` states it as a pattern).
pub fn is_usable_id(id: &str) -> bool {
    id.chars().any(|c| c.is_ascii_alphanumeric())
}

/// Plausible range of each numeric channel: (field, low, high, unit). `f64::MAX` = no bound.
const RANGES: &[(&str, f64, f64, &str)] = &[
    ("lap_dist_m", 0.0, f64::MAX, "m"),
    ("speed_kmh", 0.0, 500.0, "km/h"),
    ("accx_g", -6.0, 6.0, "g"),
    ("accy_g", -6.0, 6.0, "g"),
    ("brake_front_bar", 0.0, f64::MAX, "bar"),
    ("brake_rear_bar", 0.0, f64::MAX, "bar"),
    ("throttle_pct", 0.0, 100.0, "%"),
    ("brake_pct", 0.0, 100.0, "%"),
    ("steering_deg", -1080.0, 1080.0, "deg"),
    ("rpm", 0.0, 20000.0, "rpm"),
    ("lat_deg", -90.0, 90.0, "deg"),
    ("lon_deg", -180.0, 180.0, "deg"),
    ("fuel_kg", 0.0, f64::MAX, "kg"),
    ("track_temp_c", -50.0, 100.0, "°C"),
    ("air_temp_c", -50.0, 70.0, "°C"),
];

/// Checks one numeric channel by its canonical name; `None` when the value is plausible or the
/// field has no range.
pub fn check_range(field: &str, x: f64) -> Option<Rejection> {
    if !x.is_finite() {
        return Some(Rejection::new(field, format!("{x} is not a finite number")));
    }
    let &(_, lo, hi, unit) = RANGES.iter().find(|r| r.0 == field)?;
    if x >= lo && x <= hi {
        return None;
    }
    Some(Rejection::new(
        field,
        if hi == f64::MAX {
            format!("{x} must be >= {lo} {unit}")
        } else {
            format!("{x} is outside the plausible range {lo}..={hi} {unit}")
        },
    ))
}

fn corners(out: &mut Vec<Rejection>, field: &str, v: Option<Corners<f64>>, lo: f64, hi: f64) {
    if let Some(c) = v {
        for (name, x) in [("fl", c.fl), ("fr", c.fr), ("rl", c.rl), ("rr", c.rr)] {
            let f = format!("{field}.{name}");
            if !x.is_finite() {
                out.push(Rejection::new(f, format!("{x} is not a finite number")));
            } else if x < lo || x > hi {
                out.push(Rejection::new(
                    f,
                    format!("{x} is outside the plausible range {lo}..={hi}"),
                ));
            }
        }
    }
}

/// Checks a sample against the plausible ranges. An empty vector means valid.
///
/// Ranges: speed 0-500 km/h, |accx|,|accy| <= 6 g, brake pressures >= 0 bar, rpm 0-20000,
/// gear -1..=10, lap 0..=9999, lap distance >= 0 m, throttle and brake 0-100 %, latitude
/// ±90°, longitude ±180°, tyre wear 0-100 %; every number finite; session and car ids present.
pub fn validate(s: &Sample) -> Vec<Rejection> {
    let mut out = Vec::new();
    if !is_usable_id(&s.session_id) {
        out.push(Rejection::new(
            "session",
            "missing: give a session id or a track name",
        ));
    }
    if !is_usable_id(&s.car_id) {
        out.push(Rejection::new(
            "chassis",
            "missing: give a car id (chassis or car_id)",
        ));
    }
    if !s.t_s.is_finite() {
        out.push(Rejection::new("t_s", "not a finite number"));
    }
    if let Some(lap) = s.lap {
        if lap > 9999 {
            out.push(Rejection::new(
                "lap",
                format!("{lap} is outside the plausible range 0..=9999"),
            ));
        }
    }
    let channels = [
        ("lap_dist_m", s.lap_dist_m),
        ("speed_kmh", s.speed_kmh),
        ("accx_g", s.accx_g),
        ("accy_g", s.accy_g),
        ("brake_front_bar", s.brake_front_bar),
        ("brake_rear_bar", s.brake_rear_bar),
        ("throttle_pct", s.throttle_pct),
        ("brake_pct", s.brake_pct),
        ("steering_deg", s.steering_deg),
        ("rpm", s.rpm),
        ("lat_deg", s.lat_deg),
        ("lon_deg", s.lon_deg),
        ("fuel_kg", s.fuel_kg),
        ("track_temp_c", s.track_temp_c),
        ("air_temp_c", s.air_temp_c),
    ];
    for (field, v) in channels {
        if let Some(r) = v.and_then(|x| check_range(field, x)) {
            out.push(r);
        }
    }
    if let Some(g) = s.gear {
        if !(-1..=10).contains(&g) {
            out.push(Rejection::new(
                "gear",
                format!("{g} is outside the plausible range -1..=10"),
            ));
        }
    }
    corners(&mut out, "tyre_wear_pct", s.tyre_wear_pct, 0.0, 100.0);
    corners(&mut out, "tyre_temp_c", s.tyre_temp_c, -50.0, 400.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Sample {
        let mut s = Sample::new("s1", "car1", 1.0);
        s.speed_kmh = Some(120.0);
        s.lap = Some(3);
        s.lap_dist_m = Some(10.0);
        s
    }

    #[test]
    fn valid_sample_passes() {
        assert!(validate(&ok()).is_empty());
    }

    #[test]
    fn each_range_is_enforced() {
        type Case = (Box<dyn Fn(&mut Sample)>, &'static str);
        let cases: Vec<Case> = vec![
            (Box::new(|s| s.speed_kmh = Some(501.0)), "speed_kmh"),
            (Box::new(|s| s.speed_kmh = Some(-1.0)), "speed_kmh"),
            (Box::new(|s| s.accx_g = Some(6.5)), "accx_g"),
            (Box::new(|s| s.accy_g = Some(-7.0)), "accy_g"),
            (
                Box::new(|s| s.brake_front_bar = Some(-0.1)),
                "brake_front_bar",
            ),
            (
                Box::new(|s| s.brake_rear_bar = Some(-3.0)),
                "brake_rear_bar",
            ),
            (Box::new(|s| s.rpm = Some(20001.0)), "rpm"),
            (Box::new(|s| s.gear = Some(11)), "gear"),
            (Box::new(|s| s.gear = Some(-2)), "gear"),
            (Box::new(|s| s.lap = Some(10000)), "lap"),
            (Box::new(|s| s.lap_dist_m = Some(-5.0)), "lap_dist_m"),
            (Box::new(|s| s.speed_kmh = Some(f64::NAN)), "speed_kmh"),
            (Box::new(|s| s.rpm = Some(f64::INFINITY)), "rpm"),
            (Box::new(|s| s.car_id = "".into()), "chassis"),
            (Box::new(|s| s.session_id = " ".into()), "session"),
        ];
        for (f, field) in cases {
            let mut s = ok();
            f(&mut s);
            let r = validate(&s);
            assert_eq!(r.len(), 1, "{field}: {r:?}");
            assert_eq!(r[0].field, field);
            assert!(!r[0].reason.is_empty());
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let mut s = ok();
        s.speed_kmh = Some(500.0);
        s.accx_g = Some(-6.0);
        s.accy_g = Some(6.0);
        s.rpm = Some(20000.0);
        s.gear = Some(-1);
        s.lap = Some(9999);
        s.lap_dist_m = Some(0.0);
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn min_reason_reads_well() {
        let mut s = ok();
        s.brake_front_bar = Some(-2.0);
        let r = validate(&s);
        assert_eq!(r[0].reason, "-2 must be >= 0 bar");
    }
}
