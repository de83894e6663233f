//! Throughput of `CoachTracker::push` and `Coach::push` on simulator samples (baseline
//! ready, corners evaluated), in samples per second.

use coach::{Coach, CoachConfig, CoachTracker};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
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

fn bench(c: &mut Criterion) {
    let one = samples(1);
    let n = one.len();
    // Warm a tracker through the first 8 laps so the timed part evaluates corners.
    let split = one.iter().position(|s| s.lap == Some(8)).unwrap_or(n / 2);
    let mut warm = CoachTracker::new(&one[0].car_id, CoachConfig::default());
    for s in &one[..split] {
        warm.push(s);
    }
    let timed = &one[split..];
    let mut g = c.benchmark_group("coach");
    g.throughput(Throughput::Elements(timed.len() as u64));
    g.bench_function("tracker_push_ready", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut t| {
                let mut k = 0usize;
                for s in timed {
                    k += t.push(black_box(s)).len();
                }
                k
            },
            BatchSize::LargeInput,
        )
    });
    let many = samples(10);
    g.throughput(Throughput::Elements(many.len() as u64));
    g.sample_size(10);
    g.bench_function("coach_push_10_cars_full_race", |b| {
        b.iter(|| {
            let mut coach = Coach::new(CoachConfig::default());
            let mut k = 0usize;
            for s in &many {
                k += coach.push(black_box(s)).len();
            }
            k
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
