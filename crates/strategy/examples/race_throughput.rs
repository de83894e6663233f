//! Throughput in CPU time (the machine is shared, so wall time alone misleads).
//!
//! `CARGO_TARGET_DIR=/work/target-strategy cargo run --release -p strategy --example race_throughput`

use std::time::Instant;

use strategy::{
    recommend, Adaptive, CarState, Compound, McOptions, PlanSpace, RaceParams, RaceState,
    Simulator, Strategy,
};

/// CPU time of the calling thread in ns (Linux schedstat), 0 if unavailable.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of the whole process in ns (utime + stime, clock ticks of 10 ms).
fn process_cpu_ns() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let Some(rest) = s.rsplit(')').next() else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0);
    let st: u64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    (ut + st) * 10_000_000
}

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

fn main() {
    // Defaults, with tyres that wear enough for one stop to pay in 30 laps.
    let params = RaceParams::from_toml_overrides(
        "[tyres.medium]\nk1_s_per_lap = 0.12\nk2_s_per_lap2 = 0.002\n",
    )
    .expect("valid");
    let state = grid(20, 30);
    let mut sim = Simulator::new(&params, &state).expect("valid");
    let plan = Strategy::one_stop(15, Compound::Hard);
    let n = 200_000u64;
    let (w0, c0) = (Instant::now(), thread_cpu_ns());
    let mut acc = 0u64;
    for it in 0..n {
        acc += sim.run(7, it, Some((9, &plan))).0 as u64;
    }
    let (wall, cpu) = (
        w0.elapsed().as_secs_f64(),
        (thread_cpu_ns() - c0) as f64 * 1e-9,
    );
    println!(
        "single races 20 cars x 30 laps: {n} races, wall {:.3} s ({:.0} races/s), CPU {:.3} s ({:.0} races/s per core, {:.1} ns per car-lap) [mean pos {:.2}]",
        wall,
        n as f64 / wall,
        cpu,
        n as f64 / cpu,
        cpu * 1e9 / (n as f64 * 600.0),
        acc as f64 / n as f64
    );

    if std::env::args().nth(1).as_deref() == Some("races") {
        return;
    }
    let space = PlanSpace::default();
    let opts = McOptions {
        iterations: 10_000,
        seed: 1,
    };
    let (w0, c0) = (Instant::now(), process_cpu_ns());
    let r = recommend(&params, &state, "10", &space, &opts, None).expect("valid");
    let (wall, cpu) = (
        w0.elapsed().as_secs_f64(),
        (process_cpu_ns() - c0) as f64 * 1e-9,
    );
    println!(
        "stay out + every one-stop: {} plans x 10000 = {} races, wall {:.3} s, process CPU {:.2} s ({}) ",
        r.outcomes.len(),
        r.races_simulated,
        wall,
        cpu,
        r.recommendation.text
    );

    let opts = McOptions {
        iterations: 1,
        seed: 1,
    };
    let a = Adaptive::default();
    let (w0, c0) = (Instant::now(), process_cpu_ns());
    let r = recommend(&params, &state, "10", &space, &opts, Some(&a)).expect("valid");
    let (wall, cpu) = (
        w0.elapsed().as_secs_f64(),
        (process_cpu_ns() - c0) as f64 * 1e-9,
    );
    let in_window: Vec<_> = r
        .outcomes
        .iter()
        .filter(|o| {
            o.diff_vs_best
                <= o.se_diff_vs_best
                    .max(params.recommendation.window_tolerance_pos)
        })
        .collect();
    let max_se = in_window
        .iter()
        .map(|o| o.se_diff_vs_best)
        .fold(0.0, f64::max);
    println!(
        "adaptive window: {} races, wall {:.3} s, process CPU {:.2} s, {} plans in window, max SE of difference {:.4}: {}",
        r.races_simulated,
        wall,
        cpu,
        in_window.len(),
        max_se,
        r.recommendation.text
    );
    for o in r.outcomes.iter().take(6) {
        println!(
            "  {:<16} E[pos] {:.3} diff {:+.3} ± {:.3} n={}",
            o.label, o.expected_position, o.diff_vs_best, o.se_diff_vs_best, o.iterations
        );
    }
}
