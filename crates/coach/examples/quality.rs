//! Measured alert quality on the simulator: inject known habit changes for some drivers and
//! none for others, stream every race through a `Coach` (laps cut by a `laps::LapEngine` per
//! car, as the server does), and score the alerts.
//!
//! `cargo run --release -p coach --example quality [-- --quick] [--z 3.0]`
//!
//! Scoring:
//! - an injected change is *detected* (recall) when an alert of its primary metric
//!   (brake_point_m at the changed corner; throttle_on_s / throttle_pickup_s or
//!   brake_bias_front at any corner:
//!   the simulator applies those two car-wide) with the right sign fires on or after the
//!   onset lap;
//! - an alert is a true positive (precision) when it is on a changed car, on or after onset,
//!   on the changed corner (or any corner for car-wide changes) and of the primary metric
//!   ("strict") or a metric physically tied to the change ("related": entry/min/exit speed
//!   or pressure at that corner or the next one, exit speed for throttle, peak pressure for
//!   bias);
//! - every other alert is a false alarm; they are counted per 100 clean laps without a change
//!   (all cars' laps >= 2, not pit in/out, not safety car; changed cars before onset only),
//!   and per 100 *monitored* such laps (baseline ready).

use std::collections::HashMap;

use coach::{Coach, CoachConfig, CoachingAlert, Metric, ProfileStatus};
use serde::Serialize;
use sim::{DriverConfig, HabitChange, Race, RaceConfig, SafetyCarMode};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
enum Kind {
    BrakeLater10m,
    BrakeEarlier10m,
    ThrottleLater0p1s,
    ThrottleEarlier0p1s,
    BiasForward3pct,
    BiasRearward3pct,
}

const KINDS: [Kind; 6] = [
    Kind::BrakeLater10m,
    Kind::BrakeEarlier10m,
    Kind::ThrottleLater0p1s,
    Kind::ThrottleEarlier0p1s,
    Kind::BiasForward3pct,
    Kind::BiasRearward3pct,
];

#[derive(Debug, Clone, Serialize)]
struct Injected {
    track: String,
    seed: u64,
    car_id: String,
    kind: Kind,
    /// Simulator corner number (brake changes).
    sim_corner: Option<usize>,
    onset_lap: u32,
    detected: bool,
    latency_laps: Option<u32>,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    races: usize,
    samples: usize,
    injected: usize,
    detected: usize,
    alerts: usize,
    tp_strict: usize,
    tp_related: usize,
    false_alarms: usize,
    clean_laps_no_change: usize,
    monitored_laps_no_change: usize,
}

fn primary(kind: Kind) -> (Metric, f64) {
    match kind {
        Kind::BrakeLater10m => (Metric::BrakePoint, 1.0),
        Kind::BrakeEarlier10m => (Metric::BrakePoint, -1.0),
        Kind::ThrottleLater0p1s => (Metric::ThrottlePickup, 1.0),
        Kind::ThrottleEarlier0p1s => (Metric::ThrottlePickup, -1.0),
        Kind::BiasForward3pct => (Metric::BrakeBias, 1.0),
        Kind::BiasRearward3pct => (Metric::BrakeBias, -1.0),
    }
}

fn related(kind: Kind, m: Metric) -> bool {
    match kind {
        Kind::BrakeLater10m | Kind::BrakeEarlier10m => matches!(
            m,
            Metric::EntrySpeed
                | Metric::MinSpeed
                | Metric::ExitSpeed
                | Metric::PeakBrake
                | Metric::ThrottlePickup
                | Metric::ThrottleOn
        ),
        Kind::ThrottleLater0p1s | Kind::ThrottleEarlier0p1s => matches!(m, Metric::ExitSpeed),
        Kind::BiasForward3pct | Kind::BiasRearward3pct => matches!(m, Metric::PeakBrake),
    }
}

struct RaceResult {
    related_by: HashMap<String, usize>,
    injected: Vec<Injected>,
    totals: Totals,
    alerts_by_metric: HashMap<String, usize>,
    fa_examples: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn run_race(
    coach_cfg: &CoachConfig,
    track: &str,
    seed: u64,
    laps: u32,
    cars: usize,
    hz: f64,
    onset: u32,
    kinds_offset: usize,
    changed: usize,
) -> RaceResult {
    let base = RaceConfig {
        cars,
        hz,
        safety_car: SafetyCarMode::Random,
        ..RaceConfig::new(track, laps, seed)
    }
    .with_generated_drivers();
    // Corners with a real braking zone for the brake changes.
    let probe = Race::new(base.clone()).expect("track");
    let brake_corners: Vec<usize> = probe
        .corners()
        .iter()
        .filter(|c| c.drop_kmh >= 25.0)
        .map(|c| c.number)
        .collect();
    let mut cfg = base;
    let mut plan: Vec<(usize, Kind, Option<usize>)> = Vec::new();
    for i in 0..changed.min(cars) {
        let kind = KINDS[(i + kinds_offset) % KINDS.len()];
        let d: &mut DriverConfig = &mut cfg.drivers[i];
        let mut h = HabitChange {
            from_lap: onset,
            ..HabitChange::default()
        };
        let mut corner = None;
        match kind {
            Kind::BrakeLater10m | Kind::BrakeEarlier10m => {
                let c = brake_corners[(i * 7 + seed as usize * 3) % brake_corners.len().max(1)];
                corner = Some(c);
                h.corner = Some(c);
                let sign = if kind == Kind::BrakeLater10m {
                    1.0
                } else {
                    -1.0
                };
                h.brake_point_offset_m = Some(d.brake_point_offset_m + sign * 10.0);
            }
            Kind::ThrottleLater0p1s => {
                d.throttle_delay_s = 0.05;
                h.throttle_delay_s = Some(0.15);
            }
            Kind::ThrottleEarlier0p1s => {
                d.throttle_delay_s = 0.15;
                h.throttle_delay_s = Some(0.05);
            }
            Kind::BiasForward3pct => {
                d.brake_bias_front = 0.60;
                h.brake_bias_front = Some(0.63);
            }
            Kind::BiasRearward3pct => {
                d.brake_bias_front = 0.60;
                h.brake_bias_front = Some(0.57);
            }
        }
        d.habit_changes.push(h);
        plan.push((i, kind, corner));
    }
    let mut race = Race::new(cfg).expect("race");
    let ids: Vec<String> = race.car_ids().iter().map(|s| s.to_string()).collect();
    let sim_corners: Vec<(usize, f64)> = race
        .corners()
        .iter()
        .map(|c| (c.number, c.apex_m))
        .collect();
    let mut coach = Coach::new(coach_cfg.clone());
    let mut alerts: Vec<CoachingAlert> = Vec::new();
    // Status at the start of each lap, per car.
    let mut ready_at: HashMap<(String, u32), bool> = HashMap::new();
    let mut last_lap: HashMap<String, u32> = HashMap::new();
    let mut engines: HashMap<std::sync::Arc<str>, laps::LapEngine> = HashMap::new();
    let mut tick = Vec::new();
    let mut samples = 0usize;
    while race.step(&mut tick) {
        for s in &tick {
            samples += 1;
            alerts.extend(coach.push(s));
            if let Some(lap) = engines.entry(s.car_id.clone()).or_default().push(s) {
                alerts.extend(coach.on_lap(&lap));
            }
            if let Some(l) = s.lap {
                let e = last_lap.entry(s.car_id.to_string()).or_insert(u32::MAX);
                if *e != l {
                    *e = l;
                    let ready = coach
                        .tracker(&s.car_id)
                        .is_some_and(|t| t.status() == ProfileStatus::Ready);
                    ready_at.insert((s.car_id.to_string(), l), ready);
                }
            }
        }
        tick.clear();
    }
    let map = coach.map(race.track().name()).cloned();
    // Our corner number -> simulator corner number (nearest apex within 40 m).
    let to_sim = |corner: u32| -> Option<usize> {
        let m = map.as_ref()?;
        let c = m.corners.iter().find(|c| c.number == corner)?;
        sim_corners
            .iter()
            .filter(|(_, a)| (a - c.apex_m).abs() <= 40.0)
            .min_by(|a, b| (a.1 - c.apex_m).abs().total_cmp(&(b.1 - c.apex_m).abs()))
            .map(|x| x.0)
    };
    let mut totals = Totals {
        races: 1,
        samples,
        ..Totals::default()
    };
    let mut injected: Vec<Injected> = plan
        .iter()
        .map(|&(i, kind, c)| Injected {
            track: track.into(),
            seed,
            car_id: ids[i].clone(),
            kind,
            sim_corner: c,
            onset_lap: onset,
            detected: false,
            latency_laps: None,
        })
        .collect();
    let mut alerts_by_metric: HashMap<String, usize> = HashMap::new();
    let mut related_by: HashMap<String, usize> = HashMap::new();
    let mut fa_examples = Vec::new();
    for a in &alerts {
        totals.alerts += 1;
        *alerts_by_metric
            .entry(a.metric.name().to_string())
            .or_default() += 1;
        let inj = injected.iter_mut().find(|x| x.car_id == a.car_id);
        let mut tp = false;
        if let Some(x) = inj {
            if a.lap >= x.onset_lap {
                let corner_ok = match x.sim_corner {
                    Some(c) => to_sim(a.corner) == Some(c),
                    None => true,
                };
                let (pm, ps) = primary(x.kind);
                let is_primary = a.metric == pm
                    || (pm == Metric::ThrottlePickup && a.metric == Metric::ThrottleOn);
                // Brake changes move the whole corner in the simulator, which also changes the
                // braking into the next corner: related alerts may name it.
                let next_ok = match x.sim_corner {
                    Some(c) => to_sim(a.corner.saturating_sub(1)) == Some(c) || corner_ok,
                    None => true,
                };
                if corner_ok && is_primary && a.delta * ps > 0.0 {
                    tp = true;
                    totals.tp_strict += 1;
                    if !x.detected {
                        x.detected = true;
                        x.latency_laps = Some(a.lap - x.onset_lap);
                    }
                } else if (corner_ok && is_primary) || (next_ok && related(x.kind, a.metric)) {
                    tp = true;
                    totals.tp_related += 1;
                    *related_by
                        .entry(format!("{:?}->{}", x.kind, a.metric.name()))
                        .or_default() += 1;
                    if std::env::var_os("COACH_VERBOSE").is_some() {
                        eprintln!(
                            "related: {track} seed {seed} {:?} lap {} T{} {} z={:.1} {}",
                            x.kind,
                            a.lap,
                            a.corner,
                            a.metric.name(),
                            a.z,
                            a.message
                        );
                    }
                }
            }
        }
        if !tp {
            totals.false_alarms += 1;
            if fa_examples.len() < 12 {
                fa_examples.push(format!(
                    "{} {} lap {} {} z={:.1}: {}",
                    track,
                    a.car_id,
                    a.lap,
                    a.metric.name(),
                    a.z,
                    a.message
                ));
            }
        }
    }
    // Clean laps without a change, from the ground truth.
    let truths = race.lap_truths().to_vec();
    let mut pitted: HashMap<(usize, u32), bool> = HashMap::new();
    for t in &truths {
        pitted.insert((t.car_index, t.lap), t.pitted);
    }
    for t in &truths {
        let out_lap = pitted
            .get(&(t.car_index, t.lap.wrapping_sub(1)))
            .copied()
            .unwrap_or(false);
        if t.lap < 2 || t.pitted || t.safety_car || out_lap {
            continue;
        }
        let changed_car = plan.iter().any(|p| p.0 == t.car_index);
        if changed_car && t.lap >= onset {
            continue;
        }
        totals.clean_laps_no_change += 1;
        if ready_at
            .get(&(ids[t.car_index].clone(), t.lap))
            .copied()
            .unwrap_or(false)
        {
            totals.monitored_laps_no_change += 1;
        }
    }
    totals.injected = injected.len();
    totals.detected = injected.iter().filter(|x| x.detected).count();
    RaceResult {
        related_by,
        injected,
        totals,
        alerts_by_metric,
        fa_examples,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut coach_cfg = CoachConfig::default();
    if let Some(z) = args
        .iter()
        .position(|a| a == "--z")
        .and_then(|i| args.get(i + 1))
        .and_then(|z| z.parse().ok())
    {
        coach_cfg.z_threshold = z;
    }
    println!(
        "z threshold {}, {} of {} passes",
        coach_cfg.z_threshold, coach_cfg.alert_k, coach_cfg.alert_n
    );
    let tracks: &[&str] = if quick {
        &["Spielberg", "Monza"]
    } else {
        &[
            "Austin",
            "Spielberg",
            "Monza",
            "Suzuka",
            "Budapest",
            "Zandvoort",
            "Hockenheim",
            "Silverstone",
        ]
    };
    let seeds: &[u64] = if quick { &[1] } else { &[1, 2, 3] };
    let (laps, cars, changed, onset) = (22, 10, 6, 12);
    let mut all: Vec<Injected> = Vec::new();
    let mut tot = Totals::default();
    let mut by_metric: HashMap<String, usize> = HashMap::new();
    let mut related_all: HashMap<String, usize> = HashMap::new();
    let mut fa_examples = Vec::new();
    let started = std::time::Instant::now();
    for (ti, track) in tracks.iter().enumerate() {
        for &seed in seeds {
            let hz = [20.0, 50.0, 30.0][(ti + seed as usize) % 3];
            let r = run_race(
                &coach_cfg,
                track,
                seed,
                laps,
                cars,
                hz,
                onset,
                ti * 2 + seed as usize,
                changed,
            );
            eprintln!(
                "{track:12} seed {seed} {hz:>4} Hz: {} samples, {} alerts, {}/{} detected, {} false alarms, {} clean laps w/o change",
                r.totals.samples, r.totals.alerts, r.totals.detected, r.totals.injected, r.totals.false_alarms, r.totals.clean_laps_no_change
            );
            all.extend(r.injected);
            for (k, v) in r.related_by {
                *related_all.entry(k).or_default() += v;
            }
            for (k, v) in r.alerts_by_metric {
                *by_metric.entry(k).or_default() += v;
            }
            fa_examples.extend(r.fa_examples);
            let t = r.totals;
            tot.races += t.races;
            tot.samples += t.samples;
            tot.injected += t.injected;
            tot.detected += t.detected;
            tot.alerts += t.alerts;
            tot.tp_strict += t.tp_strict;
            tot.tp_related += t.tp_related;
            tot.false_alarms += t.false_alarms;
            tot.clean_laps_no_change += t.clean_laps_no_change;
            tot.monitored_laps_no_change += t.monitored_laps_no_change;
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    println!(
        "\nPer change type (onset lap {onset}, {laps}-lap races, {cars} cars, {changed} changed):"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>7} {:>14}",
        "change", "injected", "detected", "recall", "median latency"
    );
    let mut rows = Vec::new();
    for k in KINDS {
        let xs: Vec<&Injected> = all.iter().filter(|x| x.kind == k).collect();
        let det = xs.iter().filter(|x| x.detected).count();
        let mut lat: Vec<u32> = xs.iter().filter_map(|x| x.latency_laps).collect();
        lat.sort_unstable();
        let med = lat.get(lat.len() / 2).copied();
        println!(
            "{:<22} {:>8} {:>8} {:>7.2} {:>14}",
            format!("{k:?}"),
            xs.len(),
            det,
            ratio(det, xs.len()),
            med.map_or("-".into(), |m| format!("{m} laps"))
        );
        rows.push(
            serde_json::json!({"change": format!("{k:?}"), "injected": xs.len(), "detected": det,
            "recall": ratio(det, xs.len()), "median_latency_laps": med}),
        );
    }
    let recall = ratio(tot.detected, tot.injected);
    let p_strict = ratio(tot.tp_strict, tot.alerts);
    let p_rel = ratio(tot.tp_strict + tot.tp_related, tot.alerts);
    let fa100 = 100.0 * ratio(tot.false_alarms, tot.clean_laps_no_change);
    let fa100m = 100.0 * ratio(tot.false_alarms, tot.monitored_laps_no_change);
    println!(
        "\nOverall ({} races, {} samples, {:.0} s):",
        tot.races,
        tot.samples,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<44} {:>10}",
        "recall (primary metric, right sign/corner)",
        format!("{recall:.3}")
    );
    println!(
        "{:<44} {:>10}",
        "precision strict (primary metric)",
        format!("{p_strict:.3}")
    );
    println!(
        "{:<44} {:>10}",
        "precision incl. related metrics",
        format!("{p_rel:.3}")
    );
    println!(
        "{:<44} {:>10}",
        "alerts / true strict / true related",
        format!("{}/{}/{}", tot.alerts, tot.tp_strict, tot.tp_related)
    );
    println!("{:<44} {:>10}", "false alarms", tot.false_alarms);
    println!(
        "{:<44} {:>10}",
        "clean laps without change (monitored)",
        format!(
            "{} ({})",
            tot.clean_laps_no_change, tot.monitored_laps_no_change
        )
    );
    println!(
        "{:<44} {:>10}",
        "false alarms per 100 clean laps",
        format!("{fa100:.2}")
    );
    println!(
        "{:<44} {:>10}",
        "false alarms per 100 monitored clean laps",
        format!("{fa100m:.2}")
    );
    let mut bm: Vec<_> = by_metric.into_iter().collect();
    bm.sort();
    println!("alerts by metric: {bm:?}");
    let mut rl: Vec<_> = related_all.into_iter().collect();
    rl.sort();
    println!("related (non-primary) true alerts: {rl:?}");
    for e in fa_examples.iter().take(15) {
        println!("  FA: {e}");
    }
    let missed: Vec<&Injected> = all.iter().filter(|x| !x.detected).collect();
    for m in missed.iter().take(15) {
        println!(
            "  missed: {} seed {} {} {:?} sim corner {:?}",
            m.track, m.seed, m.car_id, m.kind, m.sim_corner
        );
    }
    let json = serde_json::json!({
        "by_change": rows,
        "recall": recall,
        "precision_strict": p_strict,
        "precision_related": p_rel,
        "false_alarms_per_100_clean_laps": fa100,
        "false_alarms_per_100_monitored_clean_laps": fa100m,
        "totals": tot,
    });
    println!("\nJSON: {json}");
}
