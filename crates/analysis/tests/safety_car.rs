//! Laps cut from a stored race carry no safety-car flag: `cut_laps` infers the
//! neutralised laps from the field's lap times, and the restart lap after them.

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
    let mut samples = Vec::new();
    let mut tick = Vec::new();
    while race.step(&mut tick) {
        samples.append(&mut tick);
    }
    // The lap engines alone flag no safety car (telemetry carries no flag)...
    let raw = analysis::cut_laps(Some("Spielberg"), Vec::new());
    assert!(raw.is_empty());
    let laps = analysis::cut_laps(Some("Spielberg"), samples);
    // ...the field's lap times do: laps 5-6 behind the safety car and the restart lap 7.
    for l in laps.iter().filter(|l| l.lap_time_s.is_some()) {
        let lap = l.lap;
        assert_eq!(
            l.validity.safety_car,
            (5..=7).contains(&lap),
            "car {} lap {lap}: {:?}",
            l.car_id,
            l.lap_time_s
        );
    }
    // Every car has its three laps marked.
    let marked = laps.iter().filter(|l| l.validity.safety_car).count();
    assert_eq!(marked, 4 * 3);
}
