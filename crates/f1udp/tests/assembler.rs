//! Assembler: real captures and synthetic streams. All active cars emitted, corner mapping,
//! participants hold and release, fallback ids, eviction, and validity of every sample.

mod common;

use common::*;
use f1udp::{Assembler, AssemblerConfig, STEERING_LOCK_DEG};
use std::collections::BTreeMap;
use telemetry::{PitStatus, Sample};

fn read(format: u16, name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(format.to_string()).join(name)).unwrap()
}

fn all_valid(samples: &[Sample]) {
    for s in samples {
        let r = telemetry::validate(s);
        assert!(r.is_empty(), "invalid sample {s:?}: {r:?}");
    }
}

fn by_car(samples: Vec<Sample>) -> BTreeMap<String, Sample> {
    let n = samples.len();
    let m: BTreeMap<String, Sample> = samples
        .into_iter()
        .map(|s| (s.car_id.to_string(), s))
        .collect();
    assert_eq!(m.len(), n, "duplicate car ids");
    m
}

/// Real 2025 race: 20 participants, 2 retired (OCON #31, HADJAR #6), 18 active.
fn check_2025_race(samples: Vec<Sample>) {
    all_valid(&samples);
    let cars = by_car(samples);
    let want: Vec<&str> = vec![
        "87", "33", "23", "22", "4", "10", "55", "12", "27", "44", "30", "18", "14", "43", "5",
        "63", "81", "16",
    ];
    let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want_sorted.sort();
    assert_eq!(cars.keys().cloned().collect::<Vec<_>>(), want_sorted);
    // The player's car (index 19, #16), against decode.py's values.
    let s = &cars["16"];
    assert_eq!(&*s.session_id, "f1-13158820877426480792");
    assert_eq!(s.track.as_deref(), Some("Melbourne"));
    assert!((s.t_s - 1313.594).abs() < 0.001);
    assert_eq!(s.lap, Some(15));
    assert!((s.lap_dist_m.unwrap() - 3916.75).abs() < 0.01);
    assert_eq!(s.position, Some(15));
    assert_eq!(s.pit_status, Some(PitStatus::None));
    let w = s.tyre_wear_pct.unwrap();
    // Wire RL, RR, FL, FR = 3.119, 2.473, 4.799, 3.235.
    assert!((w.rl - 3.119).abs() < 0.001, "{w:?}");
    assert!((w.rr - 2.473).abs() < 0.001, "{w:?}");
    assert!((w.fl - 4.799).abs() < 0.001, "{w:?}");
    assert!((w.fr - 3.235).abs() < 0.001, "{w:?}");
    assert_eq!(s.tyre_compound.as_deref(), Some("soft"));
    assert_eq!(s.track_temp_c, Some(27.0));
    assert_eq!(s.air_temp_c, Some(19.0));
    assert!(s.speed_kmh.is_some() && s.rpm.is_some() && s.gear.is_some());
    assert!(s.fuel_kg.is_some() && s.tyre_age_laps.is_some() && s.tyre_temp_c.is_some());
    assert!(s.accx_g.is_some() && s.accy_g.is_some());
    // Compounds follow each car's status (index 2, #33, runs hards).
    assert_eq!(cars["33"].tyre_compound.as_deref(), Some("hard"));
}

#[test]
fn real_2025_all_active_cars_participants_first() {
    let mut asm = Assembler::new();
    for f in [
        "packet-1.bin",
        "packet-4.bin",
        "packet-2.bin",
        "packet-7.bin",
        "packet-10.bin",
        "packet-0.bin",
    ] {
        assert!(asm.push(&read(2025, f)).unwrap().is_empty(), "{f}");
    }
    // Events and other packets are ignored.
    for f in ["packet-3-SSTA.bin", "packet-5.bin", "packet-15.bin"] {
        assert!(asm.push(&read(2025, f)).unwrap().is_empty());
    }
    let samples = asm.push(&read(2025, "packet-6.bin")).unwrap();
    check_2025_race(samples);
    assert_eq!(asm.stats().samples_held, 0);
}

#[test]
fn real_2025_held_until_participants() {
    let mut asm = Assembler::new();
    for f in [
        "packet-1.bin",
        "packet-2.bin",
        "packet-7.bin",
        "packet-10.bin",
        "packet-0.bin",
    ] {
        asm.push(&read(2025, f)).unwrap();
    }
    // Telemetry first: nothing yet, samples are held.
    assert!(asm.push(&read(2025, "packet-6.bin")).unwrap().is_empty());
    assert!(asm.stats().samples_held >= 18);
    let released = asm.push(&read(2025, "packet-4.bin")).unwrap();
    check_2025_race(released);
    assert_eq!(asm.stats().held_released, 18);
    assert!(asm.flush().is_empty());
}

#[test]
fn real_2023_and_2024_time_trial_one_car() {
    for format in [2023u16, 2024] {
        let mut asm = Assembler::new();
        for f in [
            "packet-1.bin",
            "packet-4.bin",
            "packet-2.bin",
            "packet-7.bin",
            "packet-10.bin",
        ] {
            asm.push(&read(format, f)).unwrap();
        }
        let samples = asm.push(&read(format, "packet-6.bin")).unwrap();
        all_valid(&samples);
        assert_eq!(samples.len(), 1, "{format}: {samples:?}");
        let s = &samples[0];
        assert_eq!(&*s.car_id, "2");
        assert_eq!(s.track.as_deref(), Some("Silverstone"));
        assert_eq!(&*s.session_id, "f1-18050307579809241992");
        assert_eq!(s.tyre_compound.as_deref(), Some("soft"));
    }
}

#[test]
fn every_capture_in_any_order_gives_valid_samples() {
    for format in [2023u16, 2024, 2025] {
        let files = capture_files(format);
        for rev in [false, true] {
            let mut asm = Assembler::new();
            let mut v = files.clone();
            if rev {
                v.reverse();
            }
            let mut total = 0;
            for f in &v {
                let s = asm.push(&std::fs::read(f).unwrap()).unwrap();
                all_valid(&s);
                total += s.len();
            }
            assert!(total > 0, "{format} rev={rev}");
        }
    }
}

fn synth_frame(sy: &Synth, t: f32, cars: usize, wear_k: f32) -> Vec<Vec<u8>> {
    let mut lap = sy.packet(2, t);
    let mut tel = sy.packet(6, t);
    let mut sta = sy.packet(7, t);
    let mut dmg = sy.packet(10, t);
    let mut ses = sy.packet(1, t);
    sy.set_session(&mut ses, 13, 24, 38);
    for c in 0..cars {
        let dist = if c == 1 { -12.5 } else { 100.0 * c as f32 + t };
        sy.set_lap(
            &mut lap,
            c,
            3,
            dist,
            c as u8 + 1,
            if c == 2 { 1 } else { 0 },
            2,
        );
        sy.set_tel(
            &mut tel,
            c,
            250 + c as u16,
            0.5,
            -0.5,
            0.25,
            if c == 3 { -1 } else { 6 },
            11000,
            [80, 81, 90, 91],
        );
        sy.set_status(&mut sta, c, 40.0 - c as f32, 17, 4);
        sy.set_wear(
            &mut dmg,
            c,
            [1.0 * wear_k, 2.0 * wear_k, 3.0 * wear_k, 4.0 * wear_k],
        );
    }
    // A retired car in slot `cars`: lap data says 7, it must never be emitted.
    sy.set_lap(&mut lap, cars, 2, 50.0, 20, 0, 7);
    sy.set_tel(&mut tel, cars, 0, 0.0, 0.0, 0.0, 0, 0, [0; 4]);
    vec![ses, lap, sta, dmg, tel]
}

#[test]
fn synthetic_mapping_per_format() {
    for format in [2023u16, 2024, 2025] {
        let sy = Synth { format, uid: 7 };
        let mut asm = Assembler::new();
        let mut p = sy.packet(4, 0.0);
        sy.set_participants(
            &mut p,
            5,
            &[
                (44, "HAMILTON"),
                (16, "LECLERC"),
                (1, "NORRIS"),
                (81, "PIASTRI"),
                (44, "DUP"),
            ],
        );
        asm.push(&p).unwrap();
        let mut out = Vec::new();
        for d in synth_frame(&sy, 1.0, 5, 1.0) {
            out.extend(asm.push(&d).unwrap());
        }
        all_valid(&out);
        let cars = by_car(out);
        assert_eq!(
            cars.keys().cloned().collect::<Vec<_>>(),
            vec!["1", "16", "44", "44-5", "81"],
            "{format}"
        );
        let s = &cars["44"];
        assert_eq!(&*s.session_id, "f1-7");
        assert_eq!(s.track.as_deref(), Some("Suzuka"));
        assert_eq!((s.air_temp_c, s.track_temp_c), (Some(24.0), Some(38.0)));
        assert_eq!(s.lap, Some(3));
        assert_eq!(s.lap_dist_m, Some(1.0));
        assert_eq!(s.position, Some(1));
        assert_eq!(s.speed_kmh, Some(250.0));
        assert_eq!(s.throttle_pct, Some(50.0));
        assert_eq!(s.brake_pct, Some(25.0));
        assert_eq!(s.steering_deg, Some(-0.5 * STEERING_LOCK_DEG));
        assert_eq!(s.gear, Some(6));
        assert_eq!(s.rpm, Some(11000.0));
        assert_eq!(s.fuel_kg, Some(40.0));
        assert_eq!(s.tyre_compound.as_deref(), Some("medium"));
        assert_eq!(s.tyre_age_laps, Some(4));
        let w = s.tyre_wear_pct.unwrap();
        assert_eq!((w.fl, w.fr, w.rl, w.rr), (3.0, 4.0, 1.0, 2.0));
        let tt = s.tyre_temp_c.unwrap();
        assert_eq!((tt.fl, tt.fr, tt.rl, tt.rr), (90.0, 91.0, 80.0, 81.0));
        // Negative lap distance (before the line) is no distance, not an invalid sample.
        assert_eq!(cars["16"].lap_dist_m, None);
        assert_eq!(cars["1"].pit_status, Some(PitStatus::Pitting));
        assert_eq!(cars["81"].gear, Some(-1));
    }
}

#[test]
fn synthetic_fallback_ids_after_hold_window() {
    let sy = Synth {
        format: 2025,
        uid: 99,
    };
    let mut asm = Assembler::new();
    let mut out = Vec::new();
    // 11 s of frames at 10 Hz without participants.
    for k in 0..=110 {
        for d in synth_frame(&sy, k as f32 * 0.1, 3, 1.0) {
            out.extend(asm.push(&d).unwrap());
        }
    }
    all_valid(&out);
    assert!(!out.is_empty());
    let ids: std::collections::BTreeSet<String> =
        out.iter().map(|s| s.car_id.to_string()).collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        vec!["car1", "car2", "car3"]
    );
    // Held samples from t = 0 were released (none lost), in time order per car.
    assert!(out.iter().any(|s| s.t_s == 0.0));
    assert_eq!(out.len(), 3 * 111 - 3 * asm_pending(&asm));
    // Participants later switch ids to race numbers.
    let mut p = sy.packet(4, 11.1);
    sy.set_participants(&mut p, 3, &[(7, "A"), (8, "B"), (9, "C")]);
    assert!(asm.push(&p).unwrap().is_empty());
    let mut later = Vec::new();
    for d in synth_frame(&sy, 11.2, 3, 1.0) {
        later.extend(asm.push(&d).unwrap());
    }
    let ids: Vec<String> = later.iter().map(|s| s.car_id.to_string()).collect();
    assert_eq!(ids, vec!["7", "8", "9"]);
}

/// Samples still held (none once fallback has happened).
fn asm_pending(asm: &Assembler) -> usize {
    let st = asm.stats();
    (st.samples_held - st.held_released - st.held_released_fallback - st.held_dropped_inactive)
        as usize
        / 3
}

#[test]
fn synthetic_hold_is_bounded_by_count() {
    let sy = Synth {
        format: 2024,
        uid: 5,
    };
    let mut asm = Assembler::with_config(AssemblerConfig {
        max_held_samples: 100,
        ..AssemblerConfig::default()
    });
    let mut out = Vec::new();
    for k in 0..60 {
        for d in synth_frame(&sy, k as f32 * 0.01, 4, 1.0) {
            out.extend(asm.push(&d).unwrap());
        }
    }
    all_valid(&out);
    let st = asm.stats();
    // The bound (100) is hit after 4 frames of 21 candidate slots: the 4 running cars' samples
    // are released with fallback ids, the 17 empty slots dropped; nothing is lost afterwards.
    assert_eq!(st.samples_held, 84, "{st:?}");
    assert_eq!(st.held_released_fallback, 16, "{st:?}");
    assert_eq!(st.held_dropped_inactive, 68, "{st:?}");
    assert_eq!(out.len(), 60 * 4);
    assert!(out.iter().all(|s| s.car_id.starts_with("car")));
}

#[test]
fn sessions_are_bounded_and_evicted_oldest_first() {
    let mut asm = Assembler::with_config(AssemblerConfig {
        max_sessions: 2,
        ..AssemblerConfig::default()
    });
    let mut out = Vec::new();
    for uid in [1u64, 2, 3] {
        let sy = Synth { format: 2025, uid };
        for d in synth_frame(&sy, 1.0, 2, 1.0) {
            out.extend(asm.push(&d).unwrap());
        }
    }
    assert_eq!(asm.session_count(), 2);
    assert_eq!(asm.stats().sessions_evicted, 1);
    // Session 1's held samples were released with fallback ids on eviction.
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|s| &*s.session_id == "f1-1"));
    let rest = asm.flush();
    assert_eq!(rest.len(), 4);
    all_valid(&rest);
}

#[test]
fn bad_session_time_and_values_are_not_emitted_invalid() {
    let sy = Synth {
        format: 2025,
        uid: 11,
    };
    let mut asm = Assembler::new();
    let mut p = sy.packet(4, 0.0);
    sy.set_participants(&mut p, 2, &[(3, "X"), (4, "Y")]);
    asm.push(&p).unwrap();
    // Negative session time: packet skipped.
    let mut tel = sy.packet(6, -1.0);
    sy.set_tel(&mut tel, 0, 100, 0.5, 0.0, 0.0, 3, 9000, [90; 4]);
    assert!(asm.push(&tel).unwrap().is_empty());
    assert_eq!(asm.stats().packets_bad_time, 1);
    // Absurd values become None.
    let mut dmg = sy.packet(10, 1.0);
    sy.set_wear(&mut dmg, 0, [f32::NAN, 1.0, 1.0, 1.0]);
    sy.set_wear(&mut dmg, 1, [150.0, 1.0, 1.0, 1.0]);
    asm.push(&dmg).unwrap();
    let mut tel = sy.packet(6, 1.0);
    sy.set_tel(
        &mut tel,
        0,
        900,
        7.0,
        f32::INFINITY,
        -3.0,
        12,
        30000,
        [90; 4],
    );
    sy.set_tel(&mut tel, 1, 100, 1.0, 1.0, 0.0, 8, 12000, [90; 4]);
    let out = asm.push(&tel).unwrap();
    all_valid(&out);
    assert_eq!(out.len(), 2);
    let a = &out[0];
    assert_eq!(
        (
            a.speed_kmh,
            a.throttle_pct,
            a.steering_deg,
            a.brake_pct,
            a.gear,
            a.rpm
        ),
        (None, None, None, None, None, None)
    );
    assert_eq!(a.tyre_wear_pct, None);
    assert_eq!(out[1].tyre_wear_pct, None);
    assert_eq!(out[1].steering_deg, Some(STEERING_LOCK_DEG));
    assert_eq!(out[1].lap, None, "no lap data yet");
}
