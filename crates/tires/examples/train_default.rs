//! Trains the default tire model on simulated races (all 25 tracks, seeds 1-6, 24 laps, 12 cars) and writes it.
//!
//! `cargo run --release -p tires --example train_default -- --out data/models/tires-default.json`

use tires::{train, TireLap, TrainConfig};

#[path = "common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let out = a
        .iter()
        .position(|x| x == "--out")
        .and_then(|i| a.get(i + 1).cloned())
        .unwrap_or_else(|| "data/models/tires-default.json".into());
    let rows: Vec<TireLap> = common::races(sim::Track::names(), &[1, 2, 3, 4, 5, 6], 24, 12)?;
    eprintln!("{} laps simulated", rows.len());
    let model = train(&rows, &TrainConfig::default(), &mut |_, _| {})?;
    let json = model.to_json()?;
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &json)?;
    eprintln!(
        "wrote {out} ({} bytes, {} sessions): {:?}",
        json.len(),
        model.trained_sessions.len(),
        model.training
    );
    Ok(())
}
