//! Throughput of `CoachTracker::push` and `Coach::push` (with `on_lap` at each lap the lap
//! engine closes) on simulator samples (baseline ready, corners evaluated), in samples per
//! second. The lap engines run before the timed part: only the coach is measured.

use std::collections::HashMap;
use std::sync::Arc;

use coach::{Coach, CoachConfig, CoachTracker};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use laps::{LapEngine, LapSummary};
use sim::{Race, RaceConfig, SafetyCarMode};
use std::hint::black_box;
use telemetry::Sample;

fn samples(cars: usize) -> Vec<Sample> {
    let cfg = RaceConfig {
        cars,
        hz: 50.0,
        safety_car: SafetyCarMode::Off,
        ..RaceConfig::new("Spielberg", 10, 1)
    };
    let mut r = Race::new(cfg).expect("race");
    let mut out = Vec::new();
    while r.step(&mut out) {}
    out
}

/// The lap each sample closes (one lap engine per car), index-aligned with `samples`.
fn laps(samples: &[Sample]) -> Vec<Option<LapSummary>> {
    let mut engines: HashMap<Arc<str>, LapEngine> = HashMap::new();
    samples
        .iter()
        .map(|s| engines.entry(s.car_id.clone()).or_default().push(s))
        .collect()
}

fn bench(c: &mut Criterion) {
    let one = samples(1);
    let one_laps = laps(&one);
    let n = one.len();
    // Warm a tracker through the first 8 laps so the timed part evaluates corners.
    let split = one.iter().position(|s| s.lap == Some(8)).unwrap_or(n / 2);
    let mut warm = CoachTracker::new(&one[0].car_id, CoachConfig::default());
    for (s, l) in one[..split].iter().zip(&one_laps) {
        warm.push(s);
        if let Some(l) = l {
            warm.on_lap(l);
        }
    }
    let timed = &one[split..];
    let timed_laps = &one_laps[split..];
    let mut g = c.benchmark_group("coach");
    g.throughput(Throughput::Elements(timed.len() as u64));
    g.bench_function("tracker_push_ready", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut t| {
                let mut k = 0usize;
                for (s, l) in timed.iter().zip(timed_laps) {
                    k += t.push(black_box(s)).len();
                    if let Some(l) = l {
                        k += t.on_lap(black_box(l)).len();
                    }
                }
                k
            },
            BatchSize::LargeInput,
        )
    });
    let many = samples(10);
    let many_laps = laps(&many);
    g.throughput(Throughput::Elements(many.len() as u64));
    g.sample_size(10);
    g.bench_function("coach_push_10_cars_full_race", |b| {
        b.iter(|| {
            let mut coach = Coach::new(CoachConfig::default());
            let mut k = 0usize;
            for (s, l) in many.iter().zip(&many_laps) {
                k += coach.push(black_box(s)).len();
                if let Some(l) = l {
                    k += coach.on_lap(black_box(l)).len();
                }
            }
            k
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
