//! Simulates races, trains on some tracks and seeds, evaluates on held-out seeds and held-out
//! tracks, and prints the metric table (model against both baselines) as text and JSON.
//!
//! `cargo run --release -p tires --example sim_eval -- [--train-seeds 6] [--laps 24]
//!  [--cars 12] [--hold-seeds 101,102,103] [--track-seeds 201,202,203] [--html report.html]
//!  [--json eval.json]`
//!
//! One simulator seed is one roster of drivers: coverage measured on one seed varies by about
//! ±0.05 from seed to seed, so the held-out sets take three.
//!
//! `-- --track-folds 5` instead scores every one of the 25 tracks as a new track: the tracks are
//! dealt into 5 folds (alphabetical order, every 5th), and each fold is scored (seed 201) by a
//! model trained on the other 20 tracks (seeds 1 to `--train-seeds`), interval calibration
//! included.

use tires::{evaluate, report_html, train, TireLap, TrainConfig};

#[path = "common/mod.rs"]
mod common;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_seeds: u64 = arg("--train-seeds").map_or(Ok(6), |s| s.parse())?;
    let laps: u32 = arg("--laps").map_or(Ok(24), |s| s.parse())?;
    let cars: usize = arg("--cars").map_or(Ok(12), |s| s.parse())?;
    let t0 = std::time::Instant::now();
    if let Some(k) = arg("--track-folds") {
        return track_folds(k.parse()?, n_seeds, laps, cars);
    }
    let train_tracks = common::training_tracks();
    let train_seeds: Vec<u64> = (1..=n_seeds).collect();
    let rows: Vec<TireLap> = common::races(&train_tracks, &train_seeds, laps, cars)?;
    let seeds = |name: &str, default: &str| -> Result<Vec<u64>, std::num::ParseIntError> {
        arg(name)
            .unwrap_or_else(|| default.into())
            .split(',')
            .map(|s| s.trim().parse())
            .collect()
    };
    let hold_seeds = seeds("--hold-seeds", "101,102,103")?;
    let track_seeds = seeds("--track-seeds", "201,202,203")?;
    if hold_seeds
        .iter()
        .chain(&track_seeds)
        .any(|s| train_seeds.contains(s))
    {
        return Err("--hold-seeds and --track-seeds must not be training seeds".into());
    }
    let seed_hold = common::races(&train_tracks, &hold_seeds, laps, cars)?;
    let track_hold = common::races(&common::HELD_OUT_TRACKS, &track_seeds, laps, cars)?;
    eprintln!(
        "simulated {} + {} + {} laps in {:.1?}",
        rows.len(),
        seed_hold.len(),
        track_hold.len(),
        t0.elapsed()
    );
    let t1 = std::time::Instant::now();
    let model = train(&rows, &TrainConfig::default(), &mut |_, _| {})?;
    eprintln!("trained in {:.1?}: {:?}", t1.elapsed(), model.training);
    eprintln!(
        "fuel {:.4} s/kg, wear effect {:.5}/% + {:.7}/%², calibration {:?}",
        model.pace_physics.fuel_s_per_kg,
        model.pace_physics.wear_lin_per_pct,
        model.pace_physics.wear_quad_per_pct2,
        model.calibration
    );
    // Evaluating on training data must be refused.
    assert!(evaluate(&model, &rows[..10.min(rows.len())]).is_err());
    let mut json = serde_json::Map::new();
    for (name, set) in [
        ("held_out_seeds", &seed_hold),
        ("held_out_tracks", &track_hold),
    ] {
        let r = evaluate(&model, set)?;
        println!("== {name} ==\n{}", r.table());
        let mut v = serde_json::to_value(&r)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("series");
            o.remove("per_session");
        }
        json.insert(name.into(), v);
        if let Some(p) = arg("--html") {
            let path = format!("{}-{name}.html", p.trim_end_matches(".html"));
            std::fs::write(&path, report_html(&r))?;
            eprintln!("wrote {path}");
        }
    }
    let s = serde_json::to_string_pretty(&serde_json::Value::Object(json))?;
    if let Some(p) = arg("--json") {
        std::fs::write(p, &s)?;
    }
    println!("{s}");
    eprintln!("total {:.1?}", t0.elapsed());
    Ok(())
}

/// Every track scored as a new track by a model trained on the other folds' tracks.
fn track_folds(
    k: usize,
    n_seeds: u64,
    laps: u32,
    cars: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut names: Vec<&str> = sim::Track::names().to_vec();
    names.sort_unstable();
    let k = k.clamp(2, names.len());
    let seeds: Vec<u64> = (1..=n_seeds).collect();
    let mut groups: Vec<tires::GroupMetrics> = Vec::new();
    for f in 0..k {
        let held: Vec<&str> = names.iter().copied().skip(f).step_by(k).collect();
        let fit: Vec<&str> = names
            .iter()
            .copied()
            .filter(|t| !held.contains(t))
            .collect();
        let rows = common::races(&fit, &seeds, laps, cars)?;
        let test = common::races(&held, &[201], laps, cars)?;
        let model = train(&rows, &TrainConfig::default(), &mut |_, _| {})?;
        let r = evaluate(&model, &test)?;
        println!(
            "== fold {} of {k}: {} ==\n{}",
            f + 1,
            held.join(", "),
            r.table()
        );
        groups.extend(r.per_track);
    }
    let wsum = |f: &dyn Fn(&tires::GroupMetrics) -> (f64, usize)| {
        let (s, n) = groups
            .iter()
            .map(f)
            .fold((0.0, 0), |a, (v, n)| (a.0 + v * n as f64, a.1 + n));
        s / n.max(1) as f64
    };
    let mut r2: Vec<f64> = groups.iter().map(|g| g.wear_r2).collect();
    r2.sort_by(f64::total_cmp);
    let n_laps: usize = groups.iter().map(|g| g.n_laps).sum();
    println!(
        "== all {} tracks as new tracks ==\nlaps {n_laps}  wear R² {:.4} (per track: median {:.4}, min {:.4})  wear MAE {:.3} %  wear 80 % cov {:.3}\nloss MAE {:.3} s  last lap {:.3} s  stint line {:.3} s  loss 80 % cov {:.3}",
        groups.len(),
        tires::GroupMetrics::pooled_wear_r2(&groups),
        r2.get(r2.len() / 2).copied().unwrap_or(f64::NAN),
        r2.first().copied().unwrap_or(f64::NAN),
        wsum(&|g| (g.wear_mae_pct, g.n_wear)),
        wsum(&|g| (g.wear_interval80_coverage, g.n_wear)),
        wsum(&|g| (g.loss_mae_s, g.n_loss)),
        wsum(&|g| (g.baseline_last_lap_mae_s, g.n_loss)),
        wsum(&|g| (g.baseline_stint_line_mae_s, g.n_loss)),
        wsum(&|g| (g.interval80_coverage, g.n_loss)),
    );
    Ok(())
}
