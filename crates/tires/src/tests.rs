//! Crate tests on simulated races (small, so that they run in debug builds).

use crate::simdata;
use crate::*;
use std::sync::OnceLock;

struct Fixture {
    train_rows: Vec<TireLap>,
    held_out: Vec<TireLap>,
    model: TireModel,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let train_rows = simdata::races(
            &["Austin", "Norisring", "Spielberg", "Zandvoort", "IMS"],
            &[1],
            12,
            6,
        )
        .unwrap();
        let held_out = simdata::races(&["Norisring"], &[99], 12, 6).unwrap();
        let cfg = TrainConfig {
            wear_trees: GbtParams {
                rounds: 30,
                ..TrainConfig::default().wear_trees
            },
            loss_trees: GbtParams {
                rounds: 20,
                min_leaf: 20,
                ..TrainConfig::default().loss_trees
            },
            calibration_folds: 2,
            ..TrainConfig::default()
        };
        let mut calls = 0;
        let model = train(&train_rows, &cfg, &mut |_, _| calls += 1).unwrap();
        // Final fit plus two new-track folds (one session per track: no known-track folds).
        assert_eq!(calls, 3 * (4 * 30 + 20));
        Fixture {
            train_rows,
            held_out,
            model,
        }
    })
}

fn car_rows<'a>(rows: &'a [TireLap], car: &str) -> Vec<&'a TireLap> {
    let mut v: Vec<&TireLap> = rows.iter().filter(|r| r.car_id == car).collect();
    v.sort_by_key(|r| r.lap);
    v
}

fn assert_finite(s: &TireState) {
    let mut all: Vec<f64> = Vec::new();
    all.extend(s.wear_pct.to_array());
    all.extend(s.wear_increment_pct.to_array());
    for iv in s.wear_interval80_pct.to_array() {
        all.extend([iv.lo, iv.hi]);
    }
    all.extend(s.predicted_loss_per_lap_s);
    if let Some(iv) = s.loss_interval80_s {
        all.extend([iv.lo, iv.hi]);
    }
    all.push(s.fuel_s_per_kg);
    for f in s.feature_scores.iter().chain(&s.wear_feature_scores) {
        all.extend([f.value, f.score]);
    }
    assert!(all.iter().all(|v| v.is_finite()), "non-finite in {s:?}");
    let json = serde_json::to_string(s).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"));
}

#[test]
fn evaluating_on_a_training_session_fails() {
    let f = fixture();
    let err = evaluate(&f.model, &f.train_rows[..5]).unwrap_err();
    assert!(matches!(err, TireError::TrainedOn { .. }), "{err:?}");
    // One training row mixed into held-out data is enough to refuse.
    let mut mixed = f.held_out.clone();
    mixed.push(f.train_rows[0].clone());
    assert!(matches!(
        evaluate(&f.model, &mixed),
        Err(TireError::TrainedOn { .. })
    ));
}

#[test]
fn held_out_evaluation_is_sane() {
    let f = fixture();
    let r = evaluate(&f.model, &f.held_out).unwrap();
    assert!(r.n_laps > 50 && r.n_loss > 20, "{} {}", r.n_laps, r.n_loss);
    assert!(r.wear_r2 > 0.9, "wear r2 {}", r.wear_r2);
    assert!(r.loss_mae_s.is_finite() && r.loss_mae_s < 1.5);
    assert!((0.0..=1.0).contains(&r.interval80_coverage));
    let html = report_html(&r);
    assert!(html.contains("<svg") && html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("src=") && !html.contains("href="));
    let json = serde_json::to_value(&r).unwrap();
    for k in [
        "n_laps",
        "wear_r2",
        "wear_mae_pct",
        "loss_mae_s",
        "baseline_last_lap_mae_s",
        "baseline_stint_line_mae_s",
        "interval80_coverage",
    ] {
        assert!(json.get(k).is_some_and(|v| v.is_number()), "{k}");
    }
}

#[test]
fn shap_scores_add_up_to_the_predictions() {
    let f = fixture();
    let m = &f.model;
    let car = f.held_out[0].car_id.clone();
    let mut t = TireTracker::new(m);
    let mut checked = 0;
    for r in car_rows(&f.held_out, &car) {
        let s = t.on_lap(r);
        assert_finite(&s);
        if let Some(p) = s.predicted_loss_per_lap_s {
            let sum: f64 = s.feature_scores.iter().map(|f| f.score).sum();
            let base = m.loss_trees.expected_value();
            assert!(
                (sum - (p - base)).abs() < 1e-6,
                "loss: {sum} vs {}",
                p - base
            );
            checked += 1;
        }
        if let Some(name) = &s.explained_corner {
            let c = model::CORNERS.iter().position(|n| n == name).unwrap();
            let inc = s.wear_increment_pct.to_array()[c];
            if inc > 0.0 && inc < 25.0 {
                let wp = &m.wear_physics;
                let base = m.wear_trees[c].expected_value()
                    + wp.intercept[c]
                    + (0..model::N_WEAR_TERMS)
                        .map(|j| wp.coef[c][j] * wp.term_means[c][j])
                        .sum::<f64>();
                let sum: f64 = s.wear_feature_scores.iter().map(|f| f.score).sum();
                assert!(
                    (sum - (inc - base)).abs() < 1e-6,
                    "wear: {sum} vs {}",
                    inc - base
                );
            }
            assert_eq!(s.explanation.len(), 3, "{:?}", s.explanation);
        }
    }
    assert!(checked > 3);
}

#[test]
fn a_pit_stop_resets_wear_and_starts_a_stint() {
    let f = fixture();
    let car = f.held_out[0].car_id.clone();
    let rows = car_rows(&f.held_out, &car);
    let mut t = TireTracker::new(&f.model);
    let mut before = 0.0;
    let mut saw_reset = false;
    for w in rows.windows(2) {
        let s = t.on_lap(w[0]);
        if w[1].tyre_age_laps < w[0].tyre_age_laps {
            before = s.wear_pct.fl;
            let s2 = t.on_lap(w[1]);
            assert_eq!(s2.stint, s.stint + 1);
            assert_eq!(s2.wear_pct.to_array(), [0.0; 4]);
            assert!(before > 1.0);
            saw_reset = true;
            break;
        }
    }
    assert!(
        saw_reset,
        "the simulated car should pit (wear before {before})"
    );
}

#[test]
fn odd_laps_give_not_enough_data_or_sensible_values_never_nan() {
    let f = fixture();
    let car = f.held_out[0].car_id.clone();
    let rows = car_rows(&f.held_out, &car);
    let good = rows[3].clone();

    // A lap of 3 samples.
    let mut tiny = good.clone();
    tiny.n_samples = 3;
    let mut t = TireTracker::new(&f.model);
    let s = t.on_lap(&tiny);
    assert!(
        matches!(s.status, Status::NotEnoughData { .. }),
        "{:?}",
        s.status
    );
    assert_finite(&s);

    // Missing load channels with no history: not enough data; with history: extrapolated.
    let mut no_load = good.clone();
    for i in 0..11 {
        no_load.present[i] = false;
        no_load.features[i] = 0.0;
    }
    let mut t = TireTracker::new(&f.model);
    let s = t.on_lap(&no_load);
    assert!(matches!(s.status, Status::NotEnoughData { .. }));
    assert_finite(&s);
    let mut t = TireTracker::new(&f.model);
    for r in &rows[..3] {
        t.on_lap(r);
    }
    let w0 = t.on_lap(rows[3]).wear_pct.fl;
    let mut nl = no_load.clone();
    nl.lap = rows[3].lap + 1;
    nl.tyre_age_laps = rows[3].tyre_age_laps + 1;
    let s = t.on_lap(&nl);
    assert!(s.wear_pct.fl > w0);
    assert_finite(&s);

    // Garbage numbers.
    let mut bad = good.clone();
    bad.features = [f64::NAN; 20];
    bad.features[5] = f64::INFINITY;
    bad.lap_time_s = Some(f64::NAN);
    bad.fuel_kg = Some(f64::NEG_INFINITY);
    bad.sector_stress_g_s = [f64::NAN; 3];
    let mut t = TireTracker::new(&f.model);
    for r in &rows[..3] {
        assert_finite(&t.on_lap(r));
    }
    assert_finite(&t.on_lap(&bad));
    assert_finite(&t.on_lap(&good));

    // A safety-car lap is not a pace reference and still gives a finite state.
    let mut sc = good.clone();
    sc.validity.safety_car = true;
    sc.lap_time_s = Some(1.0); // absurdly fast: would become the best if it counted
    let mut t = TireTracker::new(&f.model);
    let s = t.on_lap(&sc);
    assert!(s.predicted_loss_per_lap_s.is_none());
    assert_finite(&s);
    let mut next = rows[4].clone();
    next.lap = sc.lap + 1;
    assert_finite(&t.on_lap(&next));
    let s = t.on_lap(&{
        let mut r = rows[5].clone();
        r.lap = sc.lap + 2;
        r
    });
    assert!(s.predicted_loss_per_lap_s.is_some_and(|l| l.abs() < 10.0));
}

#[test]
fn every_held_out_lap_is_finite_and_pit_windows_are_ordered() {
    let f = fixture();
    for s in predict_rows(&f.model, &f.held_out) {
        assert_finite(&s);
        if let (Some(u), Some([lo, hi])) = (s.laps_until_0_5s_loss, s.laps_until_interval80) {
            assert!(lo <= u && u <= hi, "{lo} {u} {hi}");
        }
        if let (Some(w), Some(p)) = (s.pit_window, s.recommended_pit_lap) {
            assert!(
                w.open_lap <= p && p <= w.close_lap && p > s.lap,
                "{w:?} {p}"
            );
        }
    }
}

#[test]
fn model_json_round_trip_and_version_check() {
    let f = fixture();
    let json = f.model.to_json().unwrap();
    let back = TireModel::from_json(&json).unwrap();
    assert_eq!(back.trained_sessions, f.model.trained_sessions);
    let row = &f.held_out[5];
    assert_eq!(
        TireTracker::new(&back).on_lap(row),
        TireTracker::new(&f.model).on_lap(row)
    );
    let current = format!("\"format_version\":{}", crate::FORMAT_VERSION);
    assert!(json.contains(&current));
    let wrong = json.replacen(&current, "\"format_version\":99", 1);
    assert!(matches!(
        TireModel::from_json(&wrong),
        Err(TireError::FormatVersion { .. })
    ));
    assert!(matches!(
        TireModel::from_json("{}"),
        Err(TireError::FormatVersion { .. })
    ));
    assert!(TireModel::from_json("not json").is_err());
}

#[test]
fn training_needs_two_sessions() {
    let f = fixture();
    let one: Vec<TireLap> = f.held_out.clone();
    assert!(matches!(
        train(&one, &TrainConfig::default(), &mut |_, _| {}),
        Err(TireError::NotEnoughData(_))
    ));
}
