//! Lap engine throughput: `cargo bench -p laps --bench engine`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use laps::{LapEngine, LapEngineConfig, RaceOrder, RaceOrderConfig};
use std::hint::black_box;
use std::sync::Arc;
use telemetry::{Corners, PitStatus, Sample};

const L: f64 = 4000.0;

/// A 50 Hz stream with every channel, ~5 laps.
fn stream(car: &str, n: usize, t_offset: f64) -> Vec<Sample> {
    let session: Arc<str> = Arc::from("bench");
    let car: Arc<str> = Arc::from(car);
    (0..n)
        .map(|i| {
            let t = t_offset + i as f64 / 50.0;
            let dist = 50.0 * t + 30.0 * (t * 0.37).sin();
            let laps = (dist / L).floor();
            let mut s = Sample::new(session.clone(), car.clone(), t);
            s.lap = Some(laps as u32 + 1);
            s.lap_dist_m = Some(dist - laps * L);
            s.speed_kmh = Some(180.0 + 40.0 * (t * 0.37).cos());
            s.accx_g = Some(1.1 * (t * 0.9).sin());
            s.accy_g = Some(1.4 * (t * 0.6).cos());
            s.brake_front_bar = Some((40.0 * (t * 0.9).sin()).max(0.0));
            s.brake_rear_bar = Some((25.0 * (t * 0.9).sin()).max(0.0));
            s.throttle_pct = Some(80.0);
            s.pit_status = Some(PitStatus::None);
            s.tyre_wear_pct = Some(Corners {
                fl: t * 0.01,
                fr: t * 0.01,
                rl: t * 0.008,
                rr: t * 0.008,
            });
            s.track_temp_c = Some(32.0);
            s.air_temp_c = Some(24.0);
            s.fuel_kg = Some(40.0 - t * 0.01);
            s.tyre_age_laps = Some(3);
            s
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let samples = stream("car", 20_000, 0.0);
    let mut g = c.benchmark_group("lap_engine");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("push_50hz_all_channels", |b| {
        b.iter(|| {
            let mut e = LapEngine::new(LapEngineConfig {
                track_length_m: Some(L),
                ..Default::default()
            });
            let mut laps = 0usize;
            for s in &samples {
                if let Some(l) = e.push(black_box(s)) {
                    laps += l.events.len() + 1;
                }
            }
            black_box(laps)
        })
    });
    g.finish();

    let a = stream("A", 10_000, 0.0);
    let b2 = stream("B", 10_000, -1.5);
    let mut g = c.benchmark_group("race_order");
    g.throughput(Throughput::Elements((a.len() + b2.len()) as u64));
    g.bench_function("update_two_cars", |b| {
        b.iter(|| {
            let mut ro = RaceOrder::new(RaceOrderConfig {
                track_length_m: Some(L),
                ..Default::default()
            });
            for (x, y) in a.iter().zip(&b2) {
                ro.update(black_box(x));
                ro.update(black_box(y));
            }
            black_box(ro.gaps("B"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
