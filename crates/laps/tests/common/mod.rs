//! Synthetic streams with known answers.
#![allow(dead_code)]

use std::sync::Arc;
use telemetry::Sample;

pub const L: f64 = 4000.0;
pub const V_AVG: f64 = 50.0;
pub const AMP: f64 = 30.0;
pub const OMEGA: f64 = std::f64::consts::TAU / 17.0;

/// Distance driven at time t (m), analytic.
pub fn s_of_t(t: f64) -> f64 {
    V_AVG * t + AMP * (OMEGA * t).sin()
}

/// Speed at time t (m/s).
pub fn v_of_t(t: f64) -> f64 {
    V_AVG + AMP * OMEGA * (OMEGA * t).cos()
}

/// Time at which the distance driven reaches `s` (Newton, monotonic s).
pub fn t_of_s(s: f64) -> f64 {
    let mut t = s / V_AVG;
    for _ in 0..60 {
        let f = s_of_t(t) - s;
        t -= f / v_of_t(t);
    }
    t
}

pub fn base(car: &str, t: f64) -> Sample {
    let mut s = Sample::new(Arc::<str>::from("sess"), Arc::<str>::from(car), t);
    s.track = Some(Arc::from("test-track"));
    s
}

/// A full-channel sample of the analytic car at time t.
pub fn analytic_sample(car: &str, t: f64) -> Sample {
    let s_m = s_of_t(t);
    let mut s = base(car, t);
    let laps = (s_m / L).floor();
    s.lap = Some(laps as u32 + 1);
    s.lap_dist_m = Some(s_m - laps * L);
    s.speed_kmh = Some(v_of_t(t) * 3.6);
    let acc = -AMP * OMEGA * OMEGA * (OMEGA * t).sin();
    s.accx_g = Some(acc / 9.80665);
    s.accy_g = Some(1.3 * (t * 0.9).sin());
    s.brake_front_bar = Some(if acc < 0.0 { -acc * 10.0 } else { 0.0 });
    s.brake_rear_bar = Some(if acc < 0.0 { -acc * 6.0 } else { 0.0 });
    s.track_temp_c = Some(31.0);
    s.air_temp_c = Some(22.0);
    s
}

/// Samples of the analytic car from t0 to t1 at `hz`.
pub fn analytic_stream(car: &str, t0: f64, t1: f64, hz: f64) -> Vec<Sample> {
    let n = ((t1 - t0) * hz).floor() as usize;
    (0..=n)
        .map(|i| analytic_sample(car, t0 + i as f64 / hz))
        .collect()
}

pub fn assert_no_nan(s: &laps::LapSummary) {
    assert!(s.features.to_vec().iter().all(|x| x.is_finite()), "{s:?}");
    for f in &s.sector_features {
        assert!(f.to_vec().iter().all(|x| x.is_finite()), "{s:?}");
    }
    assert!(s.per_sector_stress.iter().all(|x| x.is_finite()));
    assert!(s.t_start_s.is_finite() && s.t_end_s.is_finite());
    if let Some(t) = s.lap_time_s {
        assert!(t.is_finite() && t > 0.0);
    }
    for t in s.sector_times_s.iter().flatten() {
        assert!(t.is_finite() && *t > 0.0);
    }
    // Serialises without NaN (serde_json refuses NaN as null silently; check round trip).
    let j = serde_json::to_string(s).unwrap();
    let back: laps::LapSummary = serde_json::from_str(&j).unwrap();
    assert_eq!(back.lap, s.lap);
}
