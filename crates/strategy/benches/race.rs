//! Benchmarks of the strategy engine.
//!
//! `CARGO_TARGET_DIR=/work/target-strategy cargo bench -p strategy --bench race`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strategy::{
    recommend, Adaptive, CarState, Compound, McOptions, PlanSpace, RaceParams, RaceState,
    Simulator, Strategy,
};

/// 20 cars on the grid of a 30-lap race, spread pace, each on the default one-stop.
fn grid(cars: usize, laps: u32) -> RaceState {
    RaceState {
        current_lap: 0,
        total_laps: laps,
        cars: (0..cars)
            .map(|i| {
                let mut c = CarState::new(format!("{}", i + 1), i as u32 + 1, Compound::Medium);
                c.pace_offset_s = 0.05 * i as f64;
                c
            })
            .collect(),
        safety_car_active: false,
        vsc_active: false,
        neutralised_laps_remaining: 0,
    }
}

fn bench(c: &mut Criterion) {
    // Defaults, with tyres that wear enough for one stop to pay in 30 laps.
    let params = RaceParams::from_toml_overrides(
        "[tyres.medium]\nk1_s_per_lap = 0.12\nk2_s_per_lap2 = 0.002\n",
    )
    .expect("valid");
    let state = grid(20, 30);
    let mut sim = Simulator::new(&params, &state).unwrap();
    let plan = Strategy::one_stop(15, Compound::Hard);
    let mut g = c.benchmark_group("race");
    g.throughput(Throughput::Elements(1));
    let mut it = 0u64;
    g.bench_function("one_race_20cars_30laps", |b| {
        b.iter(|| {
            it += 1;
            sim.run(7, it, Some((9, &plan)))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("plans");
    g.sample_size(10);
    let space = PlanSpace::default();
    let opts = McOptions {
        iterations: 10_000,
        seed: 1,
    };
    g.bench_function("stay_out_plus_every_one_stop_10k_each", |b| {
        b.iter(|| recommend(&params, &state, "10", &space, &opts, None).unwrap())
    });
    let adaptive = Adaptive::default();
    let opts_a = McOptions {
        iterations: 1,
        seed: 1,
    };
    g.bench_function("adaptive_window", |b| {
        b.iter(|| recommend(&params, &state, "10", &space, &opts_a, Some(&adaptive)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
