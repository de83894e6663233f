//! Laps cut from a stored race carry no safety-car flag: `mark_safety_car_laps` infers the
//! neutralised laps from the field's lap times, and the restart lap after them.

use server::analysis::{mark_safety_car_laps, SessionAnalysis};
use std::sync::Arc;

#[test]
fn safety_car_laps_and_the_restart_are_marked_from_lap_times() {
    let mut cfg = sim::RaceConfig::new("Spielberg", 10, 3);
    cfg.cars = 4;
    cfg.hz = 20.0;
    cfg.safety_car = sim::SafetyCarMode::Laps(vec![5, 6]);
    cfg = cfg.with_generated_drivers();
    for d in &mut cfg.drivers {
        d.pit = sim::PitPlan::NoStop;
    }
    let mut race = sim::Race::new(cfg).expect("race");
    let mut a = SessionAnalysis::new(Some(Arc::from("Spielberg")));
    let mut laps = Vec::new();
    let mut tick = Vec::new();
    while race.step(&mut tick) {
        for s in tick.drain(..) {
            laps.extend(a.push(&s));
        }
    }
    laps.extend(a.flush());
    assert!(laps.iter().all(|l| !l.summary.validity.safety_car));
    mark_safety_car_laps(&mut laps);
    for l in laps.iter().filter(|l| l.summary.lap_time_s.is_some()) {
        let lap = l.summary.lap;
        assert_eq!(
            l.summary.validity.safety_car,
            (5..=7).contains(&lap),
            "car {} lap {lap}: {:?}",
            l.summary.car_id,
            l.summary.lap_time_s
        );
    }
    // Every car has its three laps marked.
    let marked = laps
        .iter()
        .filter(|l| l.summary.validity.safety_car)
        .count();
    assert_eq!(marked, 4 * 3);
}
