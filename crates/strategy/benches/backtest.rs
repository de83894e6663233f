//! The whole-race back-test: a 30-car, 25-lap race with yellows, incidents and retirements,
//! back-tested at three cut-offs (1/4, 1/2, 3/4) with 4,000 races each. Target: <= 1 s.
//!
//! `cargo bench -p strategy --bench backtest`

use criterion::{criterion_group, criterion_main, Criterion};
use strategy::{
    backtest_with, simulate_laps, BacktestOptions, CarState, Compound, RaceParams, RaceState,
};

fn field(cars: usize, laps: u32) -> RaceState {
    RaceState {
        current_lap: 0,
        total_laps: laps,
        cars: (0..cars)
            .map(|i| {
                let mut c = CarState::new(format!("{}", i + 1), i as u32 + 1, Compound::Medium);
                c.pace_offset_s = 0.07 * ((i * 7) % cars) as f64;
                c.noise_sigma_s = Some(0.5);
                c.plan = Some(strategy::Strategy::stay_out());
                c
            })
            .collect(),
        safety_car_active: false,
        vsc_active: false,
        neutralised_laps_remaining: 0,
    }
}

fn bench(c: &mut Criterion) {
    let params = RaceParams::from_toml_overrides(
        "[driver]\nincident_probability_per_lap = 0.02\nincident_loss_mean_s = 20.0\n\
         failure_probability = 0.1\n[pit]\nstops_expected = false\n",
    )
    .expect("valid");
    let laps = simulate_laps(&params, &field(30, 25), 11).expect("race");
    let opts = BacktestOptions {
        iterations: 4000,
        seed: 3,
        total_laps: Some(25),
        classification: None,
        params: params.clone(),
    };
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.bench_function("30cars_25laps_3cutoffs_4000_races_each", |b| {
        b.iter(|| {
            for at in [6, 12, 19] {
                let r = backtest_with(&laps, at, &opts).expect("backtest");
                assert_eq!(r.cars.len(), 30);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
