//! Fixed-work throughput run for CPU-time measurement on a shared machine:
//! `perf stat -e task-clock target/release/examples/engine_throughput` → samples / task-clock.

use laps::{LapEngine, LapEngineConfig};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use telemetry::Sample;

fn main() {
    const L: f64 = 4000.0;
    let session: Arc<str> = Arc::from("bench");
    let car: Arc<str> = Arc::from("car");
    let samples: Vec<Sample> = (0..20_000)
        .map(|i| {
            let t = i as f64 / 50.0;
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
            s.track_temp_c = Some(32.0);
            s.air_temp_c = Some(24.0);
            s
        })
        .collect();
    let rounds = 500;
    let start = Instant::now();
    let mut laps = 0usize;
    for _ in 0..rounds {
        let mut e = LapEngine::new(LapEngineConfig {
            track_length_m: Some(L),
            ..Default::default()
        });
        for s in &samples {
            if e.push(black_box(s)).is_some() {
                laps += 1;
            }
        }
    }
    let n = (rounds * samples.len()) as f64;
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{} samples, {} laps, wall {:.3} s, {:.2} M samples/s (wall clock)",
        n,
        black_box(laps),
        wall,
        n / wall / 1e6
    );
}
