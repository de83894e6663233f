//! Timing-only and reported-wear predictions: the cost of one car's lap (add it, predict the
//! next 5 laps) in a 30-car race at lap 25, and a whole race's throughput. Budget: 50 µs per
//! car and lap.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tires::{LapLog, PaceConfig, ReportedWearPredictor, TimingPredictor, WearConfig};

const CARS: usize = 30;
const LAPS: u32 = 30;

/// A synthetic race, laps in the order they are run (lap by lap), with wear reported.
fn race() -> Vec<LapLog> {
    let mut out = Vec::new();
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    let mut noise = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 1000) as f64 / 1000.0 - 0.5
    };
    for lap in 1..=LAPS {
        for c in 0..CARS {
            let age = if c % 3 == 0 && lap > 15 {
                lap - 15
            } else {
                lap
            };
            let mut l = LapLog::new(
                format!("car{c}"),
                lap,
                100.0 + 0.2 * c as f64 + 0.05 * f64::from(age) + 0.4 * noise(),
            );
            l.yellow = lap == 10;
            l.pit_in = c % 3 == 0 && lap == 15;
            l.out_lap = lap == 1 || (c % 3 == 0 && lap == 16);
            l.tyre_age_laps = Some(age);
            l.fuel_kg = Some(60.0 - 1.5 * f64::from(lap));
            l.wear_pct = Some([
                2.0 * f64::from(age),
                1.8 * f64::from(age),
                1.5 * f64::from(age),
                1.4 * f64::from(age),
            ]);
            out.push(l);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let laps = race();
    let cut = laps.iter().position(|l| l.lap == 25).unwrap_or(0);
    let (before, at) = laps.split_at(cut);
    let next = at[0].clone();
    let mut timing = TimingPredictor::new(PaceConfig::default());
    let mut wear = ReportedWearPredictor::new(WearConfig::default());
    for l in before {
        timing.on_lap(l);
        wear.on_lap(l);
    }
    c.bench_function("timing_only_one_car_lap_30_cars_lap_25", |b| {
        b.iter_batched(
            || timing.clone(),
            |mut t| {
                t.on_lap(black_box(&next));
                let p = black_box(t.predict(&next.car_id, 5));
                // Returned, so that dropping the clone is not timed.
                (t, p)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("reported_wear_one_car_lap_30_cars_lap_25", |b| {
        b.iter_batched(
            || wear.clone(),
            |mut w| {
                w.on_lap(black_box(&next));
                let p = black_box(w.predict(&next.car_id, 5));
                (w, p)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let mut g = c.benchmark_group("whole_race");
    g.throughput(Throughput::Elements(laps.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("timing_only", laps.len()),
        &laps,
        |b, laps| {
            b.iter(|| {
                let mut t = TimingPredictor::new(PaceConfig::default());
                for l in laps {
                    t.on_lap(l);
                    black_box(t.predict(&l.car_id, 5));
                }
            })
        },
    );
    g.bench_with_input(
        BenchmarkId::new("reported_wear", laps.len()),
        &laps,
        |b, laps| {
            b.iter(|| {
                let mut w = ReportedWearPredictor::new(WearConfig::default());
                for l in laps {
                    w.on_lap(l);
                    black_box(w.predict(&l.car_id, 5));
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
