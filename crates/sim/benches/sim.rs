//! A 20-car, 30-lap race at Austin at 50 Hz, streamed sample by sample (reused buffer).
//! Real-time factor = simulated race duration / wall time per iteration (printed first).
//!
//! `CARGO_TARGET_DIR=/work/target-sim cargo bench -p sim --bench sim`

use criterion::{criterion_group, criterion_main, Criterion};
use sim::{Race, RaceConfig};
use std::hint::black_box;
use std::time::Instant;

fn config() -> RaceConfig {
    RaceConfig {
        cars: 20,
        hz: 50.0,
        ..RaceConfig::new("Austin", 30, 42)
    }
}

fn run() -> (f64, u64) {
    let mut race = Race::new(config()).expect("config is valid");
    let mut buf = Vec::with_capacity(32);
    let mut n = 0u64;
    loop {
        buf.clear();
        if !race.step(&mut buf) {
            break;
        }
        n += buf.len() as u64;
        black_box(&buf);
    }
    (race.time_s(), n)
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let (race_s, samples) = run();
    let wall = t0.elapsed().as_secs_f64();
    eprintln!(
        "20 cars x 30 laps Austin @ 50 Hz: race {race_s:.0} s simulated, {samples} samples, \
         wall {wall:.2} s, real-time factor {:.0}x",
        race_s / wall
    );
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.bench_function("austin_20cars_30laps_50hz", |b| b.iter(|| black_box(run())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
