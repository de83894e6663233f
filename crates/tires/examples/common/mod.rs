//! Dataset generator shared by the examples and the unit tests: simulated races fed through
//! one `laps::LapEngine` per car, turned into `tires::TireLap`s.
#![allow(dead_code)]

use laps::LapEngine;
use std::collections::HashMap;
use std::sync::Arc;

/// Simulates one race (`cars` cars, `laps` laps, 20 Hz) and returns every car's laps as rows.
/// Safety-car laps are flagged on the lap engines from the race's safety-car plan.
pub fn race_rows(
    track: &str,
    seed: u64,
    laps: u32,
    cars: usize,
) -> Result<Vec<crate::TireLap>, String> {
    let cfg = sim::RaceConfig {
        cars,
        hz: 20.0,
        ..sim::RaceConfig::new(track, laps, seed)
    };
    let mut race = sim::Race::new(cfg).map_err(|e| e.to_string())?;
    let sc = race.safety_car_laps().to_vec();
    let mut engines: HashMap<Arc<str>, LapEngine> = HashMap::new();
    let mut out = Vec::new();
    let mut tick = Vec::new();
    while race.step(&mut tick) {
        for s in &tick {
            let e = engines.entry(s.car_id.clone()).or_default();
            if let Some(l) = e.push(s) {
                out.push(crate::TireLap::from_summary(&l));
            }
            // After the push, so that the first sample of a lap does not flag the lap it closes.
            e.set_safety_car(s.lap.is_some_and(|l| sc.contains(&l)));
        }
        tick.clear();
    }
    let mut ids: Vec<_> = engines.keys().cloned().collect();
    ids.sort();
    for id in ids {
        if let Some(l) = engines.get_mut(&id).and_then(LapEngine::flush) {
            out.push(crate::TireLap::from_summary(&l));
        }
    }
    Ok(out)
}

/// Rows of several races: every (track, seed) pair.
pub fn races(
    tracks: &[&str],
    seeds: &[u64],
    laps: u32,
    cars: usize,
) -> Result<Vec<crate::TireLap>, String> {
    let mut rows = Vec::new();
    for t in tracks {
        for s in seeds {
            rows.extend(race_rows(t, *s, laps, cars)?);
        }
    }
    Ok(rows)
}

/// Tracks held out from training in the examples.
pub const HELD_OUT_TRACKS: [&str; 5] = ["Suzuka", "Spa", "Monza", "Budapest", "Zandvoort"];

/// The other 20 tracks.
pub fn training_tracks() -> Vec<&'static str> {
    sim::Track::names()
        .iter()
        .copied()
        .filter(|t| !HELD_OUT_TRACKS.contains(t))
        .collect()
}
