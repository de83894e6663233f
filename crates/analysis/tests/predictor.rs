//! The insight names the predictor that served its lap: the source's own wear when the samples
//! carry it (here the simulator's ground truth, as the F1 game's), the tyre model otherwise.

use analysis::{AnalysisOptions, Insight};
use std::sync::Arc;

fn insights(keep_wear: bool) -> Vec<Insight> {
    let mut cfg = sim::RaceConfig::new("Spielberg", 8, 5);
    cfg.cars = 3;
    cfg.hz = 20.0;
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
    if !keep_wear {
        for s in &mut samples {
            s.tyre_wear_pct = None;
        }
    }
    let model = analysis::load_tire_model(None).expect("model");
    let opts = AnalysisOptions {
        tire_model: Some(model),
        coach: false,
    };
    let a = analysis::analyse(
        Arc::from("s"),
        Some(Arc::from("Spielberg")),
        opts,
        &[],
        samples,
        None,
    );
    a.insights
        .into_iter()
        .filter(|i| i.lap >= 3 && i.lap_time_s.is_some() && !i.validity.incomplete)
        .collect()
}

#[test]
fn the_insight_names_its_predictor() {
    let with = insights(true);
    assert!(!with.is_empty());
    for i in &with {
        assert_eq!(
            i.tire.predictor.as_deref(),
            Some("reported wear"),
            "lap {}",
            i.lap
        );
        let w = i.tire.tire_wear.expect("wear");
        let src = i.tire_wear_source.expect("reported wear");
        // The wear shown is the wear the source reported.
        assert!(
            (w.fl - src.fl).abs() < 1e-6 && (w.rr - src.rr).abs() < 1e-6,
            "{w:?} vs {src:?}"
        );
    }
    let without = insights(false);
    assert!(!without.is_empty());
    for i in &without {
        assert_eq!(
            i.tire.predictor.as_deref(),
            Some("physics+trees"),
            "lap {}",
            i.lap
        );
        assert!(i.tire_wear_source.is_none());
    }
}
