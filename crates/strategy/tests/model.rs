//! Behaviour of the race model and the Monte Carlo engine.

use strategy::{
    evaluate, recommend, simulate_race, simulate_strategies, Adaptive, CarState, Compound,
    McOptions, PlanSpace, RaceParams, RaceState, Scenario, Strategy, StrategyError,
    EXAMPLE_SCENARIO_TOML,
};

fn field(cars: usize, laps: u32, current_lap: u32, spacing_s: f64) -> RaceState {
    RaceState {
        current_lap,
        total_laps: laps,
        cars: (0..cars)
            .map(|i| {
                let mut c = CarState::new(format!("c{}", i + 1), i as u32 + 1, Compound::Medium);
                c.race_time_s = spacing_s * i as f64;
                c.tyre_age_laps = current_lap as f64;
                c
            })
            .collect(),
        safety_car_active: false,
        vsc_active: false,
        neutralised_laps_remaining: 0,
    }
}

/// Binomial tolerance: 4 standard errors.
fn tol(p: f64, n: f64) -> f64 {
    4.0 * (p * (1.0 - p) / n).sqrt()
}

#[test]
fn safety_car_and_retirement_statistics_match_parameters() {
    let params = RaceParams::default();
    let state = field(6, 60, 0, 0.0);
    let races = 3000;
    let (mut with_phase, mut first_len_sum, mut with_first) = (0u32, 0u32, 0u32);
    let (mut retired, mut ret_vsc) = (0u32, 0u32);
    let mut count_hist = [0u32; 4];
    for it in 0..races {
        let r = simulate_race(&params, &state, 11, it).unwrap();
        let t = &r.trace;
        count_hist[(t.phases_drawn as usize).min(3)] += 1;
        if !t.phases.is_empty() {
            with_phase += 1;
        }
        if let Some(first) = t.phases.first() {
            // The first phase drawn is always accepted, so its length follows the table exactly.
            if t.phases_drawn >= 1 {
                first_len_sum += first.1;
                with_first += 1;
            }
        }
        retired += t.retirements;
        ret_vsc += t.retirement_vscs;
    }
    let n = races as f64;
    let p1 = params.safety_car.p_at_least_one();
    let share = with_phase as f64 / n;
    assert!(
        (share - p1).abs() < tol(p1, n),
        "share with SC {share} vs {p1}"
    );
    for (k, &c) in count_hist.iter().enumerate() {
        let p = params.safety_car.count_probabilities[k];
        assert!((c as f64 / n - p).abs() < tol(p, n), "count {k}: {c}");
    }
    let mean_len = first_len_sum as f64 / with_first as f64;
    let table_mean = params.safety_car.mean_length_laps();
    // SD of the length table is about 2 laps.
    let se = 2.1 / (with_first as f64).sqrt();
    assert!(
        (mean_len - table_mean).abs() < 4.0 * se,
        "mean SC length {mean_len} vs {table_mean}"
    );
    let cars = n * 6.0;
    let pf = params.driver.failure_probability;
    let rate = retired as f64 / cars;
    assert!(
        (rate - pf).abs() < tol(pf, cars),
        "retirement rate {rate} vs {pf}"
    );
    let pv = params.retirements.vsc_probability;
    let vr = ret_vsc as f64 / retired as f64;
    assert!(
        (vr - pv).abs() < tol(pv, retired as f64),
        "VSC after failure {vr} vs {pv}"
    );
}

#[test]
fn faster_car_finishes_ahead_more_often() {
    let params = RaceParams::default();
    let opts = McOptions {
        iterations: 400,
        seed: 3,
    };
    let mut fast = field(8, 20, 0, 0.0);
    fast.cars[4].pace_offset_s = -0.6;
    let mut slow = field(8, 20, 0, 0.0);
    slow.cars[4].pace_offset_s = 0.6;
    let plan = [Strategy::one_stop(10, Compound::Medium)];
    let f = simulate_strategies(&params, &fast, "c5", &plan, &opts).unwrap();
    let s = simulate_strategies(&params, &slow, "c5", &plan, &opts).unwrap();
    assert!(
        f[0].expected_position + 0.5 < s[0].expected_position,
        "fast {} slow {}",
        f[0].expected_position,
        s[0].expected_position
    );
    // Head to head in one race state: a much faster car behind passes the slower one.
    let mut duel = field(2, 15, 0, 0.0);
    duel.cars[1].pace_offset_s = -2.5;
    let r = simulate_strategies(&params, &duel, "c2", &[Strategy::stay_out()], &opts).unwrap();
    assert!(r[0].win_probability > 0.7, "win {}", r[0].win_probability);
}

#[test]
fn free_stops_beat_staying_out_when_tyres_degrade() {
    let mut params = RaceParams::from_toml_overrides(
        "[pit]\nlane_loss_green_s = 0.0\nlane_loss_sc_s = 0.0\nlane_loss_vsc_s = 0.0\n\
         standstill_min_s = 0.0\nstandstill_fisk_scale_s = 0.0\n\
         [tyres.medium]\nk0_s = 0.0\nk1_s_per_lap = 0.15\n",
    )
    .unwrap();
    params.tyres.outlap_cold_penalty_s = 0.0;
    let state = field(6, 30, 10, 1.0);
    let opts = McOptions {
        iterations: 300,
        seed: 5,
    };
    let plans = [
        Strategy::stay_out(),
        Strategy::one_stop(20, Compound::Medium),
    ];
    let r = simulate_strategies(&params, &state, "c3", &plans, &opts).unwrap();
    let stay = r.iter().find(|o| o.strategy.stops.is_empty()).unwrap();
    let stop = r.iter().find(|o| !o.strategy.stops.is_empty()).unwrap();
    assert!(stop.expected_race_time_s.unwrap() + 10.0 < stay.expected_race_time_s.unwrap());
    assert!(stop.expected_position < stay.expected_position);
    assert_eq!(stop.rank, 1);
}

#[test]
fn a_stop_under_safety_car_costs_less_than_under_green() {
    let mut params = RaceParams::from_toml_overrides(
        "[tyres.medium]\nk0_s = 0.0\nk1_s_per_lap = 0.0\n[driver]\nfailure_probability = 0.0\n\
         [safety_car]\ncount_probabilities = [1.0, 0.0, 0.0, 0.0]\n",
    )
    .unwrap();
    params.fuel.sensitivity_s_per_kg = 0.0;
    let opts = McOptions {
        iterations: 200,
        seed: 9,
    };
    let plans = [
        Strategy::stay_out(),
        Strategy::one_stop(11, Compound::Medium),
    ];
    let loss = |sc: bool| {
        let mut st = field(8, 25, 10, 3.0);
        st.safety_car_active = sc;
        st.neutralised_laps_remaining = 3;
        let r = simulate_strategies(&params, &st, "c4", &plans, &opts).unwrap();
        let stay = r.iter().find(|o| o.strategy.stops.is_empty()).unwrap();
        let stop = r.iter().find(|o| !o.strategy.stops.is_empty()).unwrap();
        (
            stop.expected_race_time_s.unwrap() - stay.expected_race_time_s.unwrap(),
            stop.expected_position - stay.expected_position,
        )
    };
    let (t_green, p_green) = loss(false);
    let (t_sc, p_sc) = loss(true);
    assert!(
        t_sc + 5.0 < t_green,
        "time lost: SC {t_sc}, green {t_green}"
    );
    assert!(p_sc < p_green, "positions lost: SC {p_sc}, green {p_green}");
}

fn small_scenario() -> Scenario {
    let mut sc = Scenario::from_toml_str(EXAMPLE_SCENARIO_TOML).unwrap();
    sc.iterations = 300;
    sc
}

#[test]
fn same_seed_same_answer_and_thread_count_does_not_matter() {
    let sc = small_scenario();
    let a = evaluate(&sc).unwrap();
    let b = evaluate(&sc).unwrap();
    assert_eq!(a, b);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let r1 = one.install(|| evaluate(&sc).unwrap());
    let r2 = two.install(|| evaluate(&sc).unwrap());
    assert_eq!(r1, r2);
    assert_eq!(r1, a);
    let mut other = sc.clone();
    other.seed += 1;
    assert_ne!(evaluate(&other).unwrap().outcomes, a.outcomes);
}

#[test]
fn example_scenario_gives_a_ranked_report_and_window() {
    let sc = small_scenario();
    let r = evaluate(&sc).unwrap();
    assert_eq!(r.car_id, "7");
    // stay out + one-stops on laps 11..=27 onto hard
    assert_eq!(r.outcomes.len(), 1 + 17);
    for (k, o) in r.outcomes.iter().enumerate() {
        assert_eq!(o.rank as usize, k + 1);
        let s: f64 = o.finish_position_distribution.iter().sum();
        assert!((s - 1.0).abs() < 1e-9);
        assert!(o.interval95.0 <= o.interval95.1);
        assert!(o.p5_position >= o.interval95.0 && o.p5_position <= o.interval95.1);
        assert!(o.diff_vs_best >= -1e-12 || k == 0);
    }
    assert!(r
        .outcomes
        .windows(2)
        .all(|w| w[0].expected_position <= w[1].expected_position));
    let rec = &r.recommendation;
    assert_eq!(rec.best, r.outcomes[0].strategy);
    assert_eq!(rec.evidence.len(), 3);
    if let Some((lo, hi)) = rec.window {
        let best_lap = rec.best.first_stop_lap().unwrap();
        assert!(lo <= best_lap && best_lap <= hi);
        assert!(rec.text.starts_with("Box"), "{}", rec.text);
    } else {
        assert!(rec.best.stops.is_empty());
    }
    assert_eq!(r.field_plans.len(), 5);
    // car 44 keeps its own plan
    let p44 = r.field_plans.iter().find(|f| f.car_id == "44").unwrap();
    assert_eq!(p44.strategy, Strategy::one_stop(14, Compound::Hard));
}

#[test]
fn common_random_numbers_make_differences_precise() {
    let params = RaceParams::default();
    let state = field(10, 30, 8, 2.0);
    let opts = McOptions {
        iterations: 600,
        seed: 21,
    };
    let plans = [
        Strategy::one_stop(20, Compound::Hard),
        Strategy::one_stop(21, Compound::Hard),
    ];
    let r = simulate_strategies(&params, &state, "c5", &plans, &opts).unwrap();
    let (best, worse) = (&r[0], &r[1]);
    // Independent streams would give sqrt(se_a^2 + se_b^2).
    let independent =
        (best.expected_position_se.powi(2) + worse.expected_position_se.powi(2)).sqrt();
    assert!(
        worse.se_diff_vs_best < 0.6 * independent,
        "SE diff {} vs independent {}",
        worse.se_diff_vs_best,
        independent
    );
}

#[test]
fn adaptive_refinement_reaches_target_se_in_window() {
    let params = RaceParams::default();
    let state = field(10, 20, 5, 1.5);
    let opts = McOptions {
        iterations: 1,
        seed: 4,
    };
    let a = Adaptive {
        screen_iterations: 128,
        target_se_diff: 0.05,
        max_iterations: 4096,
        drop_z: 3.0,
    };
    let r = recommend(
        &params,
        &state,
        "c4",
        &PlanSpace::default(),
        &opts,
        Some(&a),
    )
    .unwrap();
    let best = &r.outcomes[0];
    for o in &r.outcomes {
        let in_window = o.diff_vs_best <= o.se_diff_vs_best.max(0.05);
        if in_window && o.iterations < a.max_iterations {
            assert!(
                o.se_diff_vs_best <= 0.05 + 1e-12,
                "{} se {}",
                o.label,
                o.se_diff_vs_best
            );
        }
        assert!(o.iterations <= best.iterations);
    }
}

#[test]
fn impossible_scenarios_are_errors() {
    let p = RaceParams::default();
    let o = McOptions {
        iterations: 10,
        seed: 1,
    };
    let space = PlanSpace::default();
    let st = field(4, 20, 20, 1.0);
    assert!(matches!(
        recommend(&p, &st, "c1", &space, &o, None),
        Err(StrategyError::NoLapsLeft { .. })
    ));
    let st = field(0, 20, 0, 1.0);
    assert!(matches!(
        recommend(&p, &st, "c1", &space, &o, None),
        Err(StrategyError::NoCars)
    ));
    let mut st = field(4, 20, 5, 1.0);
    assert!(matches!(
        recommend(&p, &st, "zz", &space, &o, None),
        Err(StrategyError::UnknownCar(_))
    ));
    st.cars[1].retired = true;
    assert!(matches!(
        recommend(&p, &st, "c2", &space, &o, None),
        Err(StrategyError::CarRetired(_))
    ));
    let zero = McOptions {
        iterations: 0,
        seed: 1,
    };
    assert!(matches!(
        recommend(&p, &st, "c1", &space, &zero, None),
        Err(StrategyError::ZeroIterations)
    ));
    let mut bad = p.clone();
    bad.pit.lane_loss_green_s = -3.0;
    assert!(matches!(
        recommend(&bad, &st, "c1", &space, &o, None),
        Err(StrategyError::InvalidParam { .. })
    ));
    let mut nan = p.clone();
    nan.fuel.sensitivity_s_per_kg = f64::NAN;
    assert!(matches!(
        recommend(&nan, &st, "c1", &space, &o, None),
        Err(StrategyError::InvalidParam { .. })
    ));
    let mut nan_car = st.clone();
    nan_car.cars[0].pace_offset_s = f64::NAN;
    assert!(matches!(
        recommend(&p, &nan_car, "c1", &space, &o, None),
        Err(StrategyError::InvalidParam { .. })
    ));
    assert!(matches!(
        simulate_strategies(&p, &st, "c1", &[Strategy::one_stop(3, Compound::Hard)], &o),
        Err(StrategyError::InfeasiblePlan { .. })
    ));
    let mut own = st.clone();
    own.cars[2].plan = Some(Strategy::one_stop(19, Compound::Hard));
    assert!(matches!(
        recommend(&p, &own, "c1", &space, &o, None),
        Err(StrategyError::InfeasiblePlan { .. })
    ));
    // Scenario level: parse errors and zero iterations.
    assert!(matches!(
        Scenario::from_toml_str("car_id = 3"),
        Err(StrategyError::Toml(_))
    ));
    let text = EXAMPLE_SCENARIO_TOML.replace("iterations = 2000", "iterations = 0");
    assert!(matches!(
        Scenario::from_toml_str(&text),
        Err(StrategyError::ZeroIterations)
    ));
    let text =
        EXAMPLE_SCENARIO_TOML.replace("car_id = \"7\"\niterations", "car_id = \"99\"\niterations");
    assert!(matches!(
        Scenario::from_toml_str(&text),
        Err(StrategyError::UnknownCar(_))
    ));
    let text = EXAMPLE_SCENARIO_TOML.replace(
        "pit.lane_loss_green_s = 21.0",
        "pit.lane_loss_green_s = -21.0",
    );
    assert!(matches!(
        Scenario::from_toml_str(&text),
        Err(StrategyError::InvalidParam { .. })
    ));
}

#[test]
fn json_round_trip_for_the_http_api() {
    // A JSON scenario (as POST /api/strategy/simulate would carry) with partial params.
    let json = r#"{
        "car_id": "b",
        "iterations": 200,
        "seed": 3,
        "params": { "pit": { "lane_loss_green_s": 18.0 } },
        "race": {
            "current_lap": 5, "total_laps": 20,
            "cars": [
                { "car_id": "a", "position": 1, "compound": "medium", "tyre_age_laps": 5 },
                { "car_id": "b", "position": 2, "gap_s": 1.5, "compound": "soft", "tyre_age_laps": 5 }
            ]
        }
    }"#;
    let spec: strategy::ScenarioSpec = serde_json::from_str(json).unwrap();
    let sc = Scenario::from_spec(spec).unwrap();
    assert_eq!(sc.params.pit.lane_loss_green_s, 18.0);
    assert_eq!(sc.race.cars[1].race_time_s, 1.5);
    let report = evaluate(&sc).unwrap();
    let out = serde_json::to_string(&report).unwrap();
    let back: strategy::Report = serde_json::from_str(&out).unwrap();
    assert_eq!(back.outcomes.len(), report.outcomes.len());
    assert_eq!(back.recommendation, report.recommendation);
}
