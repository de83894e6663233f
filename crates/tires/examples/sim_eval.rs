//! Simulates races, trains on some tracks and seeds, evaluates on held-out seeds and held-out
//! tracks, and prints the metric table (model against both baselines) as text and JSON.
//!
//! `cargo run --release -p tires --example sim_eval -- [--train-seeds 3] [--laps 24]
//!  [--cars 12] [--html report.html] [--json eval.json]`

use tires::{evaluate, report_html, train, LapRow, TrainConfig};

#[path = "common/mod.rs"]
mod common;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_seeds: u64 = arg("--train-seeds").map_or(Ok(3), |s| s.parse())?;
    let laps: u32 = arg("--laps").map_or(Ok(24), |s| s.parse())?;
    let cars: usize = arg("--cars").map_or(Ok(12), |s| s.parse())?;
    let t0 = std::time::Instant::now();
    let train_tracks = common::training_tracks();
    let train_seeds: Vec<u64> = (1..=n_seeds).collect();
    let rows: Vec<LapRow> = common::races(&train_tracks, &train_seeds, laps, cars)?;
    let seed_hold = common::races(&train_tracks, &[101], laps, cars)?;
    let track_hold = common::races(&common::HELD_OUT_TRACKS, &[201], laps, cars)?;
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
