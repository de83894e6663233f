//! Streams a short race and prints every 50th sample of the first car as CSV-ish lines.
//! `cargo run -p sim --example stream -- Austin`
use sim::{simulate, RaceConfig};

fn main() {
    let track = std::env::args().nth(1).unwrap_or_else(|| "Austin".into());
    let cfg = RaceConfig {
        cars: 3,
        ..RaceConfig::new(&track, 2, 1)
    };
    let Ok(out) = simulate(cfg) else {
        eprintln!("unknown track {track}");
        return;
    };
    let first = out.samples.first().map(|s| s.car_id.clone());
    for s in out
        .samples
        .iter()
        .filter(|s| Some(&s.car_id) == first.as_ref())
        .step_by(50)
    {
        println!(
            "t {:7.2} lap {:?} d {:6.0} v {:5.1} ax {:5.2} ay {:5.2} thr {:5.1} bf {:5.1} br {:5.1} st {:6.1} g {:?} rpm {:5.0} pos {:?} fuel {:4.1} wear {:.2?}",
            s.t_s,
            s.lap.unwrap_or(0),
            s.lap_dist_m.unwrap_or(0.0),
            s.speed_kmh.unwrap_or(0.0),
            s.accx_g.unwrap_or(0.0),
            s.accy_g.unwrap_or(0.0),
            s.throttle_pct.unwrap_or(0.0),
            s.brake_front_bar.unwrap_or(0.0),
            s.brake_rear_bar.unwrap_or(0.0),
            s.steering_deg.unwrap_or(0.0),
            s.gear.unwrap_or(0),
            s.rpm.unwrap_or(0.0),
            s.position.unwrap_or(0),
            s.fuel_kg.unwrap_or(0.0),
            s.tyre_wear_pct.map(|w| w.to_array()).unwrap_or_default(),
        );
    }
    for l in &out.laps {
        println!(
            "{} lap {} {:.3} s sectors {:.2?}",
            l.car_id, l.lap, l.lap_time_s, l.sector_times_s
        );
    }
}
