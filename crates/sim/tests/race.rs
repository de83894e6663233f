use sim::*;
use telemetry::{validate, PitStatus, Sample};

fn quiet_driver(number: u32) -> DriverConfig {
    let mut d = DriverConfig::neutral(number);
    d.lap_sigma_s = 0.0;
    d.pit = PitPlan::NoStop;
    d
}

fn small(track: &str, laps: u32, seed: u64, cars: usize) -> RaceConfig {
    RaceConfig {
        cars,
        hz: 20.0,
        ..RaceConfig::new(track, laps, seed)
    }
}

fn laps_of(laps: &[LapTruth], car: usize) -> Vec<LapTruth> {
    let mut v: Vec<LapTruth> = laps
        .iter()
        .filter(|l| l.car_index == car)
        .cloned()
        .collect();
    v.sort_by_key(|l| l.lap);
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn same_seed_same_stream_different_seed_differs() {
    let a = simulate(small("Austin", 2, 11, 3)).unwrap();
    let b = simulate(small("Austin", 2, 11, 3)).unwrap();
    let c = simulate(small("Austin", 2, 12, 3)).unwrap();
    assert!(!a.samples.is_empty());
    assert_eq!(a.samples, b.samples);
    assert_eq!(a.laps, b.laps);
    assert_ne!(a.samples, c.samples);
    let mut csv_a = Vec::new();
    let mut csv_b = Vec::new();
    write_long_csv(&a.samples, &mut csv_a).unwrap();
    write_long_csv(&b.samples, &mut csv_b).unwrap();
    assert_eq!(csv_a, csv_b);
}

#[test]
fn iterator_yields_the_step_stream() {
    let cfg = small("Norisring", 1, 5, 2);
    let stepped = simulate(cfg.clone()).unwrap().samples;
    let iterated: Vec<Sample> = Race::new(cfg).unwrap().collect();
    assert_eq!(stepped, iterated);
}

#[test]
fn every_sample_validates_and_channels_are_plausible() {
    let mut cfg = small("Austin", 3, 3, 4).with_generated_drivers();
    cfg.safety_car = SafetyCarMode::Laps(vec![2]);
    cfg.drivers[1].pit = PitPlan::Lap(2);
    let race = Race::new(cfg).unwrap();
    let length = race.track().length_m();
    let out = simulate(race.config().clone()).unwrap();
    let mut saw = (false, false, false);
    for s in &out.samples {
        let r = validate(s);
        assert!(r.is_empty(), "{r:?} in {s:?}");
        assert_eq!(s.track.as_deref(), Some("Austin"));
        assert!(s.car_id.starts_with("GR86-"));
        let d = s.lap_dist_m.unwrap();
        assert!((0.0..length).contains(&d));
        let v = s.speed_kmh.unwrap();
        assert!(v <= 260.0, "{v}");
        assert!(s.brake_front_bar.unwrap() <= 140.0 && s.brake_rear_bar.unwrap() <= 140.0);
        assert!(s.accy_g.unwrap().abs() < 1.6 && s.accx_g.unwrap().abs() < 1.6);
        assert!((1..=6).contains(&s.gear.unwrap()));
        assert!((30.0..30.3).contains(&s.lat_deg.unwrap()));
        assert!((-97.7..-97.6).contains(&s.lon_deg.unwrap()));
        assert!((1..=4).contains(&s.position.unwrap()));
        match s.pit_status.unwrap() {
            PitStatus::Pitting => saw.0 = true,
            PitStatus::InPitArea => saw.1 = true,
            PitStatus::None => {}
        }
        if s.brake_front_bar.unwrap() > 60.0 {
            saw.2 = true;
        }
    }
    assert!(saw.0 && saw.1 && saw.2, "{saw:?}");
    // Tyre age: counts laps, back to 0 from the stop on.
    let pitter = out
        .samples
        .iter()
        .filter(|s| s.car_id.starts_with("GR86-002-"));
    let mut after_stop = false;
    for s in pitter {
        if s.pit_status == Some(PitStatus::InPitArea) {
            after_stop = true;
        }
        let age = s.tyre_age_laps.unwrap();
        match (s.lap.unwrap(), after_stop) {
            (l, false) => assert_eq!(u32::from(age), l.saturating_sub(1)),
            (2, true) | (3, true) => assert!(age <= 1, "{age}"),
            _ => {}
        }
    }
    // 4 cars, 3 laps each, all with ground truth.
    assert_eq!(out.laps.len(), 12);
}

#[test]
fn lap_times_are_plausible_for_a_gr86() {
    // COTA: real GR Cup race laps are about 2:28-2:35.
    let out = {
        let mut race = Race::new(RaceConfig {
            safety_car: SafetyCarMode::Off,
            ..small("Austin", 4, 1, 6)
        })
        .unwrap();
        let r = race.reference_lap_time_s();
        assert!((148.0..155.0).contains(&r), "{r}");
        race.run_to_end().to_vec()
    };
    let flying: Vec<f64> = out
        .iter()
        .filter(|l| l.lap >= 2)
        .map(|l| l.lap_time_s)
        .collect();
    let m = median(flying);
    assert!((148.0..155.0).contains(&m), "{m}");
    // The TUMFTM "IMS" file is the 2.5-mile oval: a GR86 laps it flat out in about 68 s.
    let ims = Race::new(small("IMS", 1, 1, 1)).unwrap();
    let r = ims.reference_lap_time_s();
    assert!((64.0..72.0).contains(&r), "{r}");
}

#[test]
fn faster_driver_has_faster_median_lap() {
    let mut fast = DriverConfig::neutral(1);
    fast.pit = PitPlan::NoStop;
    let mut slow = fast.clone();
    slow.number = 2;
    slow.pace_offset_s = 0.6;
    let cfg = RaceConfig {
        drivers: vec![slow, fast],
        safety_car: SafetyCarMode::Off,
        ..small("Spielberg", 12, 9, 2)
    };
    let laps = Race::new(cfg).unwrap().run_to_end().to_vec();
    let m_slow = median(laps_of(&laps, 0).iter().map(|l| l.lap_time_s).collect());
    let m_fast = median(laps_of(&laps, 1).iter().map(|l| l.lap_time_s).collect());
    assert!(m_fast < m_slow - 0.3, "{m_fast} vs {m_slow}");
    assert!(m_fast > m_slow - 1.0, "{m_fast} vs {m_slow}");
}

#[test]
fn lap_time_rises_with_wear_within_a_stint() {
    let cfg = RaceConfig {
        drivers: vec![quiet_driver(1)],
        safety_car: SafetyCarMode::Off,
        start_fuel_kg: Some(37.0),
        ..small("Austin", 26, 2, 1)
    };
    let laps = Race::new(cfg).unwrap().run_to_end().to_vec();
    assert_eq!(laps.len(), 26);
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f64;
        laps[r].iter().map(|l| l.lap_time_s).sum::<f64>() / n
    };
    let early = mean(1..5);
    let late = mean(22..26);
    let rise = late - early;
    // Wear costs more than the fuel burnt gains; net a few tenths.
    assert!(rise > 0.2 && rise < 2.0, "{early} -> {late}");
    for w in laps.windows(2).skip(1) {
        assert!(w[1].lap_time_s >= w[0].lap_time_s - 1e-6);
        assert!(w[1].wear_end_pct.rr > w[0].wear_end_pct.rr);
        assert!(w[1].fuel_end_kg < w[0].fuel_end_kg);
    }
    // Visible but not absurd: 26 laps give 20-60 % on the worst tyre.
    let w = laps[25].wear_end_pct.to_array();
    let worst = w.iter().cloned().fold(0.0, f64::max);
    assert!((20.0..60.0).contains(&worst), "{w:?}");
    // RWD: rears work harder than fronts.
    assert!(w[2] + w[3] > w[0] + w[1]);
}

#[test]
fn outside_tyres_wear_faster_on_one_way_tracks() {
    let mut checked = 0;
    for name in Track::names() {
        let t = Track::by_name(name).unwrap();
        let (left_deg, right_deg) = t.turning_deg();
        let imbalance = (left_deg - right_deg) / (left_deg + right_deg);
        if imbalance.abs() < 0.3 {
            continue;
        }
        let cfg = RaceConfig {
            drivers: vec![quiet_driver(1)],
            safety_car: SafetyCarMode::Off,
            ..small(name, 2, 1, 1)
        };
        let laps = Race::new(cfg).unwrap().run_to_end().to_vec();
        let w = laps[1].wear_end_pct;
        let left_side = w.fl + w.rl;
        let right_side = w.fr + w.rr;
        // More right-hand turning loads the left tyres, and vice versa.
        if right_deg > left_deg {
            assert!(left_side > right_side * 1.1, "{name}: {w:?}");
        } else {
            assert!(right_side > left_side * 1.1, "{name}: {w:?}");
        }
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn pit_stop_resets_wear_and_costs_about_20_seconds() {
    let mut d = quiet_driver(1);
    d.pit = PitPlan::Lap(4);
    let cfg = RaceConfig {
        drivers: vec![d, quiet_driver(2)],
        safety_car: SafetyCarMode::Off,
        ..small("Austin", 7, 4, 2)
    };
    let laps = Race::new(cfg).unwrap().run_to_end().to_vec();
    let a = laps_of(&laps, 0);
    let b = laps_of(&laps, 1);
    let l4 = &a[3];
    assert!(l4.pitted && !a[2].pitted && !a[4].pitted);
    assert!(l4.wear_start_pct.rr > 4.0);
    // New tyres in the box 10 m before the line.
    assert!(l4.wear_end_pct.to_array().iter().all(|w| *w < 0.05));
    assert_eq!(a[4].wear_start_pct, l4.wear_end_pct);
    assert_eq!(a[4].tyre_age_laps, 0);
    assert!(a[4].wear_end_pct.rr < 2.5);
    // In-lap + out-lap loss against the car that stayed out.
    let loss = (l4.lap_time_s - b[3].lap_time_s) + (a[4].lap_time_s - b[4].lap_time_s);
    assert!((18.0..27.0).contains(&loss), "{loss}");
    // Fresh tyres: later laps faster than the worn car's.
    assert!(a[6].lap_time_s < b[6].lap_time_s);
}

#[test]
fn safety_car_laps_are_slower_and_bunch_the_field() {
    // Drivers 0-5 are 0, 1, ..., 5 s a lap slower: by lap 4 the field is spread over ~20 s.
    let drivers = (0..6)
        .map(|i| {
            let mut d = quiet_driver(i + 1);
            d.pace_offset_s = i as f64;
            d
        })
        .collect();
    let cfg = RaceConfig {
        drivers,
        safety_car: SafetyCarMode::Laps(vec![5]),
        ..small("Budapest", 6, 8, 6)
    };
    let mut race = Race::new(cfg).unwrap();
    assert_eq!(race.safety_car_laps(), &[5]);
    let laps = race.run_to_end().to_vec();
    let spread = |lap: u32| {
        let ends: Vec<f64> = laps
            .iter()
            .filter(|l| l.lap == lap)
            .map(|l| l.start_t_s + l.lap_time_s)
            .collect();
        ends.iter().cloned().fold(f64::MIN, f64::max)
            - ends.iter().cloned().fold(f64::MAX, f64::min)
    };
    for car in 0..6 {
        let v = laps_of(&laps, car);
        assert!(v[4].safety_car && !v[3].safety_car && !v[5].safety_car);
        assert!(v[4].lap_time_s > 1.4 * v[3].lap_time_s, "{car}");
        let sc_wear = v[4].wear_end_pct.rr - v[4].wear_start_pct.rr;
        let green_wear = v[3].wear_end_pct.rr - v[3].wear_start_pct.rr;
        assert!(sc_wear < 0.5 * green_wear);
    }
    assert!(spread(4) > 12.0, "{}", spread(4));
    // Closed up to about 0.9 s per car behind the safety car.
    assert!(
        spread(5) < 5.0 * 0.9 + 0.1,
        "{} -> {}",
        spread(4),
        spread(5)
    );
}

#[test]
fn random_safety_cars_and_pit_stops_are_seeded() {
    let a = Race::new(RaceConfig::new("Austin", 30, 77)).unwrap();
    let b = Race::new(RaceConfig::new("Austin", 30, 77)).unwrap();
    assert_eq!(a.safety_car_laps(), b.safety_car_laps());
    for i in 0..20 {
        let p = a.pit_lap(i).unwrap();
        assert!((13..=17).contains(&p), "{p}");
    }
    // Over many seeds some races have safety cars and some have none.
    let with = (0..40)
        .filter(|s| {
            !Race::new(RaceConfig::new("Austin", 30, *s))
                .unwrap()
                .safety_car_laps()
                .is_empty()
        })
        .count();
    assert!(with > 5 && with < 35, "{with}");
}

/// Distance where the driver first brakes (front pressure > 5 bar) between `from_m` and
/// `to_m` on `lap`.
fn brake_onset(samples: &[Sample], car: &str, lap: u32, from_m: f64, to_m: f64) -> f64 {
    samples
        .iter()
        .filter(|s| &*s.car_id == car && s.lap == Some(lap))
        .filter(|s| {
            let d = s.lap_dist_m.unwrap();
            d > from_m && d < to_m
        })
        .find(|s| s.brake_front_bar.unwrap() > 5.0)
        .map(|s| s.lap_dist_m.unwrap())
        .unwrap()
}

#[test]
fn injected_late_braking_moves_the_brake_point() {
    // "Driver 3 brakes 12 m later into corner 4 from lap 3."
    let mut cfg = RaceConfig {
        safety_car: SafetyCarMode::Off,
        cars: 4,
        hz: 60.0,
        ..RaceConfig::new("Silverstone", 3, 1)
    }
    .with_generated_drivers();
    cfg.drivers[3] = quiet_driver(33);
    cfg.drivers[3].habit_changes.push(HabitChange {
        corner: Some(4),
        from_lap: 3,
        brake_point_offset_m: Some(12.0),
        ..HabitChange::default()
    });
    // And driver 2 brakes 10 m early everywhere on lap 3 only.
    cfg.drivers[2] = quiet_driver(22);
    cfg.drivers[2].habit_changes.push(HabitChange {
        corner: None,
        from_lap: 3,
        to_lap: Some(3),
        brake_point_offset_m: Some(-10.0),
        ..HabitChange::default()
    });
    let race = Race::new(cfg.clone()).unwrap();
    let c = race.corners().to_vec();
    let id = race.car_ids()[3].clone();
    let out = simulate(cfg).unwrap();
    // Corner 4 is braked for after corner 3's apex; corner 5 after corner 4's (+ the offset).
    let before = brake_onset(&out.samples, &id, 2, c[2].apex_m + 20.0, c[3].apex_m);
    let after = brake_onset(&out.samples, &id, 3, c[2].apex_m + 20.0, c[3].apex_m);
    assert!((after - before - 12.0).abs() < 3.0, "{before} -> {after}");
    // Corner 2 (before it on the lap) is braked for where it was.
    let o2 = brake_onset(&out.samples, &id, 2, c[0].apex_m + 40.0, c[1].apex_m);
    let o3 = brake_onset(&out.samples, &id, 3, c[0].apex_m + 40.0, c[1].apex_m);
    assert!((o3 - o2).abs() < 2.0, "{o2} {o3}");
    // Overshooting the corner costs time.
    let laps = laps_of(&out.laps, 3);
    assert!(laps[2].lap_time_s > laps[1].lap_time_s);
    let early = race.car_ids()[2].clone();
    let e2 = brake_onset(&out.samples, &early, 2, c[0].apex_m + 40.0, c[1].apex_m);
    let e3 = brake_onset(&out.samples, &early, 3, c[0].apex_m + 40.0, c[1].apex_m);
    assert!((e2 - e3 - 10.0).abs() < 3.0, "{e2} -> {e3}");
    let early_laps = laps_of(&out.laps, 2);
    assert!(early_laps[2].lap_time_s > early_laps[1].lap_time_s + 0.3);
}

#[test]
fn throttle_delay_and_brake_bias_show_up() {
    let mut lazy = quiet_driver(1);
    lazy.throttle_delay_s = 0.5;
    let mut front = quiet_driver(2);
    front.brake_bias_front = 0.7;
    let cfg = RaceConfig {
        drivers: vec![quiet_driver(0), lazy, front],
        safety_car: SafetyCarMode::Off,
        ..small("Catalunya", 2, 1, 3)
    };
    let out = simulate(cfg).unwrap();
    let l0 = laps_of(&out.laps, 0);
    let l1 = laps_of(&out.laps, 1);
    let l2 = laps_of(&out.laps, 2);
    assert!(
        l1[1].lap_time_s > l0[1].lap_time_s + 0.2,
        "{} {}",
        l1[1].lap_time_s,
        l0[1].lap_time_s
    );
    // More front bias: more front pressure relative to rear, more front wear.
    let ratio = |car: usize| {
        let id = format!("GR86-{:03}-{}", car + 1, [0, 1, 2][car]);
        let (f, r) = out
            .samples
            .iter()
            .filter(|s| *s.car_id == *id)
            .fold((0.0, 0.0), |acc, s| {
                (
                    acc.0 + s.brake_front_bar.unwrap(),
                    acc.1 + s.brake_rear_bar.unwrap(),
                )
            });
        f / r
    };
    assert!(ratio(2) > ratio(0) * 1.2);
    assert!(l2[1].wear_end_pct.fl > l0[1].wear_end_pct.fl);
}

#[test]
fn config_errors() {
    assert!(matches!(
        Race::new(RaceConfig {
            hz: 10.0,
            ..RaceConfig::default()
        }),
        Err(SimError::Config(_))
    ));
    assert!(matches!(
        Race::new(RaceConfig {
            cars: 0,
            ..RaceConfig::default()
        }),
        Err(SimError::Config(_))
    ));
    assert!(matches!(
        Race::new(RaceConfig::new("Atlantis", 3, 1)),
        Err(SimError::UnknownTrack(_))
    ));
    // The tracks crate's error comes through with its suggestion.
    match Race::new(RaceConfig::new("Monzaa", 3, 1)) {
        Err(e @ SimError::UnknownTrack(_)) => {
            assert!(e.to_string().contains("did you mean Monza?"), "{e}")
        }
        _ => panic!("Monzaa is not a track"),
    }
    assert!(Race::new(RaceConfig::new("suzuka", 3, 1)).is_ok());
    let hot = RaceConfig {
        track_temp_c: 120.0,
        ..RaceConfig::default()
    };
    assert!(matches!(Race::new(hot), Err(SimError::Config(_))));
    let nan_fuel = RaceConfig {
        start_fuel_kg: Some(f64::NAN),
        ..RaceConfig::default()
    };
    assert!(matches!(Race::new(nan_fuel), Err(SimError::Config(_))));
    // Nonsense driver values do not break the stream.
    let mut d = DriverConfig::neutral(1);
    d.pace_offset_s = f64::NAN;
    d.brake_point_offset_m = f64::INFINITY;
    d.throttle_delay_s = -3.0;
    d.brake_bias_front = f64::NAN;
    d.lap_sigma_s = f64::NAN;
    let out = simulate(RaceConfig {
        drivers: vec![d],
        ..small("Norisring", 1, 1, 1)
    })
    .unwrap();
    assert!(out.samples.iter().all(|s| validate(s).is_empty()));
    assert_eq!(out.laps.len(), 1);
}

#[test]
fn standings_and_gaps() {
    let mut race = Race::new(small("Norisring", 3, 2, 5)).unwrap();
    race.run_to_end();
    let st = race.standings();
    assert_eq!(st.len(), 5);
    assert!(st.iter().all(|s| s.finished && s.laps_completed == 3));
    for (i, s) in st.iter().enumerate() {
        assert_eq!(s.position as usize, i + 1);
    }
    assert_eq!(st[0].gap_to_leader_s, 0.0);
    assert!(st
        .windows(2)
        .all(|w| w[1].gap_to_leader_s >= w[0].gap_to_leader_s));
}

#[test]
fn csv_from_a_race() {
    let out = simulate(small("Norisring", 1, 1, 2)).unwrap();
    let mut buf = Vec::new();
    let rows = write_long_csv(&out.samples, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    assert!(text.starts_with(LONG_CSV_HEADER));
    assert_eq!(text.lines().count() as u64, rows + 1);
    for ch in [
        "speed",
        "nmot",
        "aps",
        "pbrake_f",
        "VBOX_Lat_Min",
        "Laptrigger_lapdist_dls",
        "tyre_wear_fl",
    ] {
        assert!(text.contains(&format!(",{ch},")), "{ch}");
    }
}
