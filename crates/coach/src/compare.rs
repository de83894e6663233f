//! Where time is won and lost: two laps, or two profiles, corner by corner.

use serde::{Deserialize, Serialize};
use telemetry::Sample;

use crate::map::CornerMap;
use crate::{CoachError, DriverProfile, Metric};

/// Time of one stretch of track on two laps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDelta {
    /// Corner number; 0 for the stretch from the line to the first corner's window.
    pub corner: u32,
    pub name: String,
    pub from_m: f64,
    pub to_m: f64,
    pub time_a_s: f64,
    pub time_b_s: f64,
    /// `time_b_s - time_a_s` (+ = B loses time here).
    pub delta_s: f64,
}

/// Two laps compared segment by segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LapComparison {
    pub segments: Vec<SegmentDelta>,
    pub lap_time_a_s: f64,
    pub lap_time_b_s: f64,
    /// `lap_time_b_s - lap_time_a_s`.
    pub total_delta_s: f64,
}

/// (distance, time) of one lap, distance strictly increasing.
fn trace(lap: &[Sample]) -> Result<Vec<(f64, f64)>, CoachError> {
    let mut pts: Vec<(f64, f64)> = lap
        .iter()
        .filter_map(|s| {
            let d = s.lap_dist_m.filter(|d| d.is_finite() && *d >= 0.0)?;
            s.t_s.is_finite().then_some((d, s.t_s))
        })
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for p in pts {
        if out.last().is_none_or(|q| p.0 > q.0 && p.1 > q.1) {
            out.push(p);
        }
    }
    if out.len() < 2 {
        return Err(CoachError::NotEnoughData(format!(
            "{} usable samples in a lap (need 2)",
            out.len()
        )));
    }
    Ok(out)
}

/// Time at distance `d`, linear inside the trace, extrapolated at the ends.
fn time_at(tr: &[(f64, f64)], d: f64) -> f64 {
    let i = tr.partition_point(|p| p.0 < d);
    let (a, b) = if i == 0 {
        (tr[0], tr[1])
    } else if i >= tr.len() {
        (tr[tr.len() - 2], tr[tr.len() - 1])
    } else {
        (tr[i - 1], tr[i])
    };
    let span = b.0 - a.0;
    if span <= 1e-12 {
        return a.1;
    }
    a.1 + (b.1 - a.1) * (d - a.0) / span
}

/// Compares two laps (the samples of one lap each, any car) on `map`: time per corner
/// window, aligned by lap distance.
pub fn compare_laps(
    map: &CornerMap,
    a: &[Sample],
    b: &[Sample],
) -> Result<LapComparison, CoachError> {
    let ta = trace(a)?;
    let tb = trace(b)?;
    let len = map.length_m;
    if !(len.is_finite() && len > 0.0) {
        return Err(CoachError::NotEnoughData("map without a lap length".into()));
    }
    let mut bounds: Vec<(u32, String, f64, f64)> = Vec::new();
    let first = map.corners.first().map(|c| c.entry_m).unwrap_or(len);
    if first > 0.0 {
        bounds.push((0, "Start".into(), 0.0, first));
    }
    for c in &map.corners {
        bounds.push((c.number, c.label(), c.entry_m, c.end_m.min(len)));
    }
    let segments: Vec<SegmentDelta> = bounds
        .into_iter()
        .map(|(corner, name, from_m, to_m)| {
            let time_a_s = time_at(&ta, to_m) - time_at(&ta, from_m);
            let time_b_s = time_at(&tb, to_m) - time_at(&tb, from_m);
            SegmentDelta {
                corner,
                name,
                from_m,
                to_m,
                time_a_s,
                time_b_s,
                delta_s: time_b_s - time_a_s,
            }
        })
        .collect();
    let lap_time_a_s = time_at(&ta, len) - time_at(&ta, 0.0);
    let lap_time_b_s = time_at(&tb, len) - time_at(&tb, 0.0);
    Ok(LapComparison {
        segments,
        lap_time_a_s,
        lap_time_b_s,
        total_delta_s: lap_time_b_s - lap_time_a_s,
    })
}

/// One corner of two profiles compared: B minus A for each mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CornerCompare {
    pub corner: u32,
    pub name: String,
    /// Corner-window time, s (+ = B loses time).
    pub time_delta_s: Option<f64>,
    /// Brake point, m (+ = B brakes later).
    pub brake_point_delta_m: Option<f64>,
    pub min_speed_delta_kmh: Option<f64>,
    pub exit_speed_delta_kmh: Option<f64>,
    pub throttle_pickup_delta_s: Option<f64>,
    pub brake_bias_delta: Option<f64>,
}

/// Two drivers' baselines compared corner by corner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileComparison {
    pub car_a: String,
    pub car_b: String,
    pub corners: Vec<CornerCompare>,
    /// Mean lap time, B minus A, s.
    pub lap_time_delta_s: Option<f64>,
}

/// Compares two profiles on the same corner map (same corner count, apexes within 25 m).
pub fn compare_profiles(
    a: &DriverProfile,
    b: &DriverProfile,
) -> Result<ProfileComparison, CoachError> {
    let (Some(ma), Some(mb)) = (&a.corner_map, &b.corner_map) else {
        return Err(CoachError::MapMismatch(
            "a profile has no corner map yet".into(),
        ));
    };
    if ma.corners.len() != mb.corners.len()
        || ma
            .corners
            .iter()
            .zip(&mb.corners)
            .any(|(x, y)| (x.apex_m - y.apex_m).abs() > 25.0)
    {
        return Err(CoachError::MapMismatch(format!(
            "{} corners vs {} corners or apexes apart",
            ma.corners.len(),
            mb.corners.len()
        )));
    }
    let d = |x: &crate::Stat, y: &crate::Stat| (x.n > 0 && y.n > 0).then_some(y.mean - x.mean);
    let corners = a
        .corners
        .iter()
        .zip(&b.corners)
        .map(|(x, y)| CornerCompare {
            corner: x.corner,
            name: x.name.clone(),
            time_delta_s: d(x.get(Metric::CornerTime), y.get(Metric::CornerTime)),
            brake_point_delta_m: d(x.get(Metric::BrakePoint), y.get(Metric::BrakePoint)),
            min_speed_delta_kmh: d(x.get(Metric::MinSpeed), y.get(Metric::MinSpeed)),
            exit_speed_delta_kmh: d(x.get(Metric::ExitSpeed), y.get(Metric::ExitSpeed)),
            throttle_pickup_delta_s: d(
                x.get(Metric::ThrottlePickup),
                y.get(Metric::ThrottlePickup),
            ),
            brake_bias_delta: d(x.get(Metric::BrakeBias), y.get(Metric::BrakeBias)),
        })
        .collect();
    Ok(ProfileComparison {
        car_a: a.car_id.clone(),
        car_b: b.car_id.clone(),
        corners,
        lap_time_delta_s: d(&a.lap_time_s, &b.lap_time_s),
    })
}
