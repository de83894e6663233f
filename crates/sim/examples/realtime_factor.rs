//! Prints the real-time factor of a 20-car, 30-lap Austin race at 50 Hz.
//! `cargo run --release -p sim --example realtime_factor`
use sim::{Race, RaceConfig};
use std::time::Instant;

fn main() {
    let cfg = RaceConfig {
        cars: 20,
        hz: 50.0,
        ..RaceConfig::new("Austin", 30, 42)
    };
    let t0 = Instant::now();
    let Ok(mut race) = Race::new(cfg) else {
        return;
    };
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        if !race.step(&mut buf) {
            break;
        }
        n += buf.len();
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "race {:.0} s simulated, {n} samples, wall {wall:.2} s, factor {:.0}x",
        race.time_s(),
        race.time_s() / wall
    );
}
