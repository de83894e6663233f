mod common;

use common::*;
use laps::{Channel, EventKind, LapCut, LapEngine, LapEngineConfig, LapSummary};
use telemetry::{Corners, PitStatus, Sample};

fn run(engine: &mut LapEngine, samples: &[Sample]) -> Vec<LapSummary> {
    let mut out: Vec<LapSummary> = samples.iter().filter_map(|s| engine.push(s)).collect();
    out.extend(engine.flush());
    for s in &out {
        assert_no_nan(s);
    }
    out
}

fn check_lap_times(hz: f64, cfg: LapEngineConfig, tol_s: f64) {
    let total = t_of_s(4.0 * L) + 1.0;
    let samples = analytic_stream("car", 0.0, total, hz);
    let mut e = LapEngine::new(cfg);
    let laps = run(&mut e, &samples);
    // 4 complete laps + the flushed 5th.
    assert_eq!(laps.len(), 5, "{laps:#?}");
    for (k, lap) in laps.iter().take(4).enumerate() {
        let k = k as f64;
        let expected = t_of_s((k + 1.0) * L) - t_of_s(k * L);
        let got = lap.lap_time_s.expect("lap time");
        assert!(
            (got - expected).abs() < tol_s,
            "hz {hz} lap {} got {got} expected {expected}",
            lap.lap
        );
        assert_eq!(lap.lap, k as u32 + 1);
        assert_eq!(lap.closed_by, LapCut::DistanceWrap);
        assert!(!lap.validity.incomplete, "{:?}", lap.validity);
        assert!(lap.validity.is_clean());
    }
    let last = laps.last().unwrap();
    assert!(last.validity.incomplete);
    assert_eq!(last.closed_by, LapCut::EndOfStream);
    assert_eq!(last.lap_time_s, None);
}

#[test]
fn lap_times_exact_to_a_millisecond_with_known_length() {
    for hz in [20.0, 50.0] {
        let cfg = LapEngineConfig {
            track_length_m: Some(L),
            ..Default::default()
        };
        check_lap_times(hz, cfg, 1e-4);
    }
}

#[test]
fn lap_times_exact_without_track_length() {
    for hz in [20.0, 50.0] {
        check_lap_times(hz, LapEngineConfig::default(), 1e-3);
    }
}

#[test]
fn sector_times_match_and_sum_to_the_lap() {
    let cfg = LapEngineConfig {
        track_length_m: Some(L),
        ..Default::default()
    };
    let samples = analytic_stream("car", 0.0, t_of_s(3.0 * L) + 1.0, 20.0);
    let mut e = LapEngine::new(cfg);
    let laps = run(&mut e, &samples);
    for (k, lap) in laps.iter().take(3).enumerate() {
        let base = k as f64 * L;
        let sec: Vec<f64> = lap.sector_times_s.iter().map(|s| s.unwrap()).collect();
        let expected = [
            t_of_s(base + L / 3.0) - t_of_s(base),
            t_of_s(base + 2.0 * L / 3.0) - t_of_s(base + L / 3.0),
            t_of_s(base + L) - t_of_s(base + 2.0 * L / 3.0),
        ];
        for (g, x) in sec.iter().zip(expected) {
            assert!((g - x).abs() < 1e-3, "sector {g} vs {x}");
        }
        let sum: f64 = sec.iter().sum();
        assert!((sum - lap.lap_time_s.unwrap()).abs() < 1e-9);
        // Sector features partition the lap's integrals.
        let lat: f64 = lap
            .sector_features
            .iter()
            .map(|f| f.cum_lateral_g_s.unwrap())
            .sum();
        assert!((lat - lap.features.cum_lateral_g_s.unwrap()).abs() < 1e-9);
        let stress: f64 = lap.per_sector_stress.iter().sum();
        assert!(stress > 0.0);
        for (i, f) in lap.sector_features.iter().enumerate() {
            let mut oh = [0.0; 3];
            oh[i] = 1.0;
            assert_eq!(f.sector_one_hot, oh);
        }
        assert_eq!(lap.features.sector_one_hot, [0.0; 3]);
        // Heavy-braking events: analytic decel peaks at 30·ω² / g ≈ 0.42 g, so none.
        assert_eq!(lap.features.heavy_braking_events, Some(0));
        assert_eq!(lap.features.track_temp_c, Some(31.0));
        assert_eq!(lap.features.air_temp_c, Some(22.0));
        assert!(lap.missing_channels.contains(&Channel::PitStatus));
        assert!(!lap.missing_channels.contains(&Channel::Speed));
    }
    // Learnt sector bounds when no track length is configured: lap 2 on has sector times.
    let mut e = LapEngine::default();
    let laps = run(&mut e, &samples);
    assert_eq!(laps[0].sector_times_s, [None, None, None]);
    assert!(laps[1].sector_times_s.iter().all(|s| s.is_some()));
    let b = e.sector_bounds_m();
    assert!((b[0].unwrap() - L / 3.0).abs() < 5.0);
}

#[test]
fn constant_lateral_g_hand_computed() {
    let mut e = LapEngine::default();
    for i in 0..=500 {
        let t = i as f64 / 50.0;
        let mut s = base("car", t);
        s.accy_g = Some(1.2);
        s.accx_g = Some(0.0);
        s.speed_kmh = Some(180.0 + if i % 2 == 0 { 30.0 } else { 0.0 });
        s.lap_dist_m = Some(10.0 + 50.0 * t);
        assert!(e.push(&s).is_none());
    }
    let lap = e.flush().unwrap();
    let f = lap.features;
    assert!((f.cum_lateral_g_s.unwrap() - 12.0).abs() < 1e-9, "{f:?}");
    assert_eq!(f.hard_cornering_events, Some(1));
    assert_eq!(f.heavy_braking_events, Some(0));
    assert_eq!(f.max_lateral_g, Some(1.2));
    assert_eq!(f.cum_longitudinal_g_s, Some(0.0));
    assert_eq!(f.lateral_bias, Some(1.0));
    // 251 samples at 210 km/h of 501.
    assert!((f.high_speed_share.unwrap() - 251.0 / 501.0).abs() < 1e-12);
    assert_eq!(lap.n_high_speed_samples, 251);
    // Speed mean / std against two-pass.
    let speeds: Vec<f64> = (0..=500)
        .map(|i| 180.0 + if i % 2 == 0 { 30.0 } else { 0.0 })
        .collect();
    let m = speeds.iter().sum::<f64>() / speeds.len() as f64;
    let sd = (speeds.iter().map(|x| (x - m).powi(2)).sum::<f64>() / speeds.len() as f64).sqrt();
    assert!((f.speed_mean_kmh.unwrap() - m).abs() < 1e-9);
    assert!((f.speed_std_kmh.unwrap() - sd).abs() < 1e-9);
    assert_eq!(f.speed_max_kmh, Some(210.0));
    // No braking channel and no deceleration: zero brake energy. Load share = static.
    assert_eq!(f.brake_energy_kj, Some(0.0));
    assert!((f.front_load_share.unwrap() - 0.53).abs() < 1e-12);
    assert_eq!(lap.events.len(), 1);
    assert_eq!(lap.events[0].kind, EventKind::HardCornering);
    assert_eq!(lap.events[0].lap_dist_m, Some(10.0));
    assert!((lap.events[0].duration_s - 10.0).abs() < 1e-9);
    // Started 10 m after the line at 210 km/h: start extrapolated back.
    assert!((lap.t_start_s + 10.0 / (210.0 / 3.6)).abs() < 1e-9);
    assert!(lap.validity.incomplete); // flushed
    assert!(!lap.validity.out_lap);
    assert_eq!(f.track_temp_c, None);
    assert!(lap.missing_channels.contains(&Channel::TrackTemp));
}

#[test]
fn braking_energy_and_heavy_braking_hysteresis() {
    let mut e = LapEngine::default();
    // accx pattern: above 0.8, dips to 0.75 (inside hysteresis), above, out to 0.5, above.
    let pattern = [0.0, -0.85, -0.9, -0.75, -0.85, -0.5, -0.9, -0.9, 0.0];
    let mut t = 0.0;
    for a in pattern {
        let mut s = base("car", t);
        s.accx_g = Some(a);
        s.speed_kmh = Some(100.0);
        s.brake_front_bar = Some(50.0);
        e.push(&s);
        t += 0.25;
    }
    let lap = e.flush().unwrap();
    assert_eq!(lap.features.heavy_braking_events, Some(2));
    assert_eq!(lap.events.len(), 2);
    // Brake energy: trapezoid of m·g·decel·v over the samples.
    let m = 1300.0 * 9.80665 * (100.0 / 3.6) / 1000.0;
    let mut expected = 0.0;
    for w in pattern.windows(2) {
        expected += 0.5 * ((-w[0]).max(0.0) + (-w[1]).max(0.0)) * m * 0.25;
    }
    let got = lap.features.brake_energy_kj.unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    // Front share: mean of 0.53 + decel·0.2 (time-weighted trapezoid).
    let fs = lap.features.front_load_share.unwrap();
    assert!(fs > 0.53 && fs < 0.75);
    assert!(lap.missing_channels.contains(&Channel::LapDist));
}

#[test]
fn out_lap_pit_and_tyre_age() {
    let cfg = LapEngineConfig {
        track_length_m: Some(L),
        ..Default::default()
    };
    let mut e = LapEngine::new(cfg);
    // Start mid-lap at 1500 m; 5 laps at constant 50 m/s, 10 Hz. Pit from lap 3 at 3800 m
    // to lap 4 at 200 m.
    let mut out = Vec::new();
    for i in 0..(((5.0 * L - 1500.0) / 50.0) * 10.0) as usize {
        let t = i as f64 / 10.0;
        let dist = 1500.0 + 50.0 * t;
        let lap_idx = (dist / L).floor();
        let mut s = base("car", t);
        s.lap_dist_m = Some(dist - lap_idx * L);
        s.speed_kmh = Some(180.0);
        let in_pit = (2.0 * L + 3800.0..3.0 * L + 200.0).contains(&dist);
        s.pit_status = Some(if in_pit {
            PitStatus::InPitArea
        } else {
            PitStatus::None
        });
        s.tyre_wear_pct = Some(Corners {
            fl: t,
            fr: t,
            rl: t,
            rr: t,
        });
        out.extend(e.push(&s));
    }
    out.extend(e.flush());
    for l in &out {
        assert_no_nan(l);
    }
    assert_eq!(out.len(), 5);
    let v: Vec<_> = out.iter().map(|l| l.validity).collect();
    // Lap 0: started mid-lap → out-lap + incomplete, no lap time.
    assert!(v[0].out_lap && v[0].incomplete && !v[0].pit);
    assert_eq!(out[0].lap, 0);
    assert_eq!(out[0].lap_time_s, None);
    // Lap 1 clean, 80 s.
    assert!(v[1].is_clean(), "{:?}", v[1]);
    assert!((out[1].lap_time_s.unwrap() - 80.0).abs() < 1e-6);
    // Lap 2: in-lap (pit). Lap 3: out-lap and pit. Lap 4: clean.
    assert!(v[2].pit && !v[2].out_lap);
    assert!(v[3].pit && v[3].out_lap);
    assert!(v[4].incomplete && !v[4].pit && !v[4].out_lap);
    // Tyre age counted from pit stops: 0 (first lap), 1, 0 (pit), 0 (out), 1.
    let ages: Vec<u32> = out.iter().map(|l| l.tyre_age_laps).collect();
    assert_eq!(ages, vec![0, 1, 0, 0, 1]);
    assert!(out[1].tyre_wear_pct_end.is_some());
    assert!(out[1].missing_channels.contains(&Channel::Accx));
    assert_eq!(out[1].features.cum_lateral_g_s, None);
    assert_eq!(out[1].features.hard_cornering_events, None);
}

#[test]
fn gap_marks_incomplete_and_safety_car() {
    let cfg = LapEngineConfig {
        track_length_m: Some(L),
        ..Default::default()
    };
    let mut e = LapEngine::new(cfg);
    let mut out = Vec::new();
    for i in 0..2400 {
        let t = i as f64 / 10.0;
        // A 5 s hole in lap 2.
        if t > 100.0 && t < 105.0 {
            continue;
        }
        if (170.0..171.0).contains(&t) {
            e.set_safety_car(true);
        }
        if t >= 171.0 {
            e.set_safety_car(false);
        }
        let dist = 50.0 * t;
        let mut s = base("car", t);
        s.lap_dist_m = Some(dist % L);
        s.speed_kmh = Some(180.0);
        out.extend(e.push(&s));
    }
    assert_eq!(out.len(), 2);
    assert!(out[0].validity.is_clean());
    assert!(out[1].validity.incomplete && !out[1].validity.safety_car);
    out.extend(e.flush());
    assert!(out[2].validity.safety_car);
}

#[test]
fn degenerate_streams_do_not_panic_or_nan() {
    // Three samples only.
    let mut e = LapEngine::default();
    for i in 0..3 {
        let mut s = base("car", i as f64 * 0.1);
        s.lap_dist_m = Some(i as f64);
        e.push(&s);
    }
    let l = e.flush().unwrap();
    assert_no_nan(&l);
    assert!(l.validity.incomplete);
    assert_eq!(l.n_samples, 3);
    assert!(e.flush().is_none());

    // Every channel missing, duplicate / backwards / NaN times, NaN channels.
    let mut e = LapEngine::default();
    let mut out = Vec::new();
    for t in [0.0, 0.0, -1.0, f64::NAN, 0.5, 1.0, 0.9, 1.5] {
        let mut s = base("car", t);
        if t == 1.0 {
            s.speed_kmh = Some(f64::NAN);
            s.accx_g = Some(f64::INFINITY);
            s.lap_dist_m = Some(f64::NAN);
            s.brake_front_bar = Some(-3.0);
        }
        out.extend(e.push(&s));
    }
    assert_eq!(e.dropped_samples(), 4);
    out.extend(e.flush());
    assert_eq!(out.len(), 1);
    assert_no_nan(&out[0]);
    let f = out[0].features;
    assert_eq!(f.speed_mean_kmh, None);
    assert_eq!(f.brake_energy_kj, None);
    assert_eq!(f.lateral_bias, None);
    assert!(out[0].missing_channels.len() >= 10);
    assert!(!out[0].validity.is_clean());

    // Lap field only (no distance): cut on increments, crossing half-way between samples.
    let mut e = LapEngine::default();
    let mut out = Vec::new();
    for i in 0..1000 {
        let t = i as f64 * 0.1;
        let mut s = base("car", t);
        s.lap = Some(1 + (t / 30.05).floor() as u32);
        s.speed_kmh = Some(150.0);
        out.extend(e.push(&s));
    }
    out.extend(e.flush());
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|l| l.closed_by != LapCut::DistanceWrap));
    assert_eq!(out[1].lap, 2);
    assert!((out[1].lap_time_s.unwrap() - 30.05).abs() < 0.051);
    for l in &out {
        assert_no_nan(l);
    }

    // Wildly jumping distance and a corrupt lap field.
    let mut e = LapEngine::default();
    let mut out = Vec::new();
    for i in 0..2000 {
        let t = i as f64 * 0.05;
        let mut s = base("car", t);
        s.lap_dist_m = Some(((i * 7919) % 5000) as f64);
        s.lap = Some(if i % 3 == 0 { 32768 } else { 5 });
        s.accx_g = Some(((i % 11) as f64 - 5.0) * 0.3);
        s.accy_g = Some(((i % 13) as f64 - 6.0) * 0.3);
        s.speed_kmh = Some((i % 300) as f64);
        s.pit_status = PitStatus::from_code((i % 4) as u8);
        out.extend(e.push(&s));
    }
    out.extend(e.flush());
    for l in &out {
        assert_no_nan(l);
        assert!(l.events.len() <= 64);
    }
}

#[test]
fn lap_field_and_distance_give_one_cut_per_lap() {
    // The lap field lags the distance wrap by 3 samples, or leads it by 3 samples.
    for lag in [-3i64, 0, 3] {
        let cfg = LapEngineConfig {
            track_length_m: Some(L),
            ..Default::default()
        };
        let mut e = LapEngine::new(cfg);
        let mut out = Vec::new();
        let n = (3.5 * L / 50.0 * 10.0) as i64;
        for i in 0..n {
            let t = i as f64 / 10.0;
            let dist = 50.0 * t;
            let shifted = 50.0 * ((i - lag) as f64 / 10.0);
            let mut s = base("car", t);
            s.lap_dist_m = Some(dist % L);
            s.lap = Some(1 + (shifted.max(0.0) / L).floor() as u32);
            s.speed_kmh = Some(180.0);
            out.extend(e.push(&s));
        }
        out.extend(e.flush());
        let numbers: Vec<u32> = out.iter().map(|l| l.lap).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4], "lag {lag}");
        for l in out.iter().take(3) {
            assert!((l.lap_time_s.unwrap() - 80.0).abs() < 1e-6, "lag {lag}");
            assert_eq!(l.closed_by, LapCut::DistanceWrap);
        }
    }
}

#[test]
fn windows_close_every_600_ms() {
    let mut e = LapEngine::default();
    let mut closed = Vec::new();
    for i in 0..=150 {
        let t = i as f64 / 50.0;
        let mut s = base("car", t);
        s.speed_kmh = Some(i as f64);
        s.accx_g = Some(0.3);
        s.accy_g = Some(0.4);
        s.brake_pct = Some(10.0);
        e.push(&s);
        closed.extend(e.take_window());
    }
    // 3 s of samples: windows [0,0.6) .. [1.8,2.4) closed; [2.4,3.0) closes at t=3.0.
    assert_eq!(closed.len(), 5);
    for (k, w) in closed.iter().enumerate() {
        assert_eq!(w.speed_kmh.n, 30);
        let first = (k * 30) as f64;
        assert!((w.speed_kmh.mean - (first + 14.5)).abs() < 1e-9);
        assert_eq!(w.speed_kmh.min, first);
        assert_eq!(w.speed_kmh.max, first + 29.0);
        let sd = ((30.0f64 * 30.0 - 1.0) / 12.0).sqrt();
        assert!((w.speed_kmh.std - sd).abs() < 1e-9);
        assert!((w.stress_g - 0.5).abs() < 1e-12);
        assert!((w.t_start_s - 0.6 * k as f64).abs() < 1e-9);
        assert_eq!(w.brake.mean, 10.0);
    }
    assert!(e.take_window().is_none());
    assert!(e.last_window().is_some());
    let live = e.current_features();
    assert_eq!(live.sector_one_hot, [1.0, 0.0, 0.0]);
    assert!(live.cum_lateral_g_s.unwrap() > 1.19);
}

#[test]
fn source_tyre_age_wins() {
    let mut e = LapEngine::new(LapEngineConfig {
        track_length_m: Some(L),
        ..Default::default()
    });
    let mut out = Vec::new();
    for i in 0..2000 {
        let t = i as f64 / 10.0;
        let mut s = base("car", t);
        s.lap_dist_m = Some((50.0 * t) % L);
        s.tyre_age_laps = Some(7 + (50.0 * t / L).floor() as u16);
        s.fuel_kg = Some(50.0 - t * 0.01);
        s.position = Some(3);
        out.extend(e.push(&s));
    }
    assert_eq!(out[0].tyre_age_laps, 7);
    assert_eq!(out[1].tyre_age_laps, 8);
    assert_eq!(out[1].features.tyre_age_laps, 8);
    assert_eq!(out[1].position, Some(3));
    assert!(out[1].fuel_kg.unwrap() < out[0].fuel_kg.unwrap());
}
