//! Loads the default model and prints one car's tire states over a simulated race.
//!
//! `cargo run --release -p tires --example live_demo -- [Track] [seed]`

use tires::{TireLap, TireModel, TireTracker};

#[path = "common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let track = a.get(1).map_or("Suzuka", String::as_str);
    let seed: u64 = a.get(2).map_or(Ok(4242), |s| s.parse())?;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/models/tires-default.json"
    );
    let model = TireModel::from_json(&std::fs::read_to_string(path)?)?;
    let rows: Vec<TireLap> = common::race_rows(track, seed, 24, 4)?;
    let car = rows[0].car_id.clone();
    let mut laps: Vec<&TireLap> = rows.iter().filter(|r| r.car_id == car).collect();
    laps.sort_by_key(|r| r.lap);
    let mut t = TireTracker::new(&model);
    for r in laps {
        let s = t.on_lap(r);
        let truth = r.wear_end_pct.map(|w| w.fl);
        println!(
            "lap {:>2} age {:>2} FL {:5.2}% (true {:>5.2?}) loss {:>6.3?} until0.5 {:?} pit {:?} {:?} | {}",
            s.lap,
            s.tyre_age_laps,
            s.wear_pct.fl,
            truth,
            s.predicted_loss_per_lap_s,
            s.laps_until_0_5s_loss,
            s.recommended_pit_lap,
            s.status,
            s.explanation.join(" / ")
        );
        if s.lap == 8 {
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
    }
    Ok(())
}
