//! The TUMFTM features that are optional parameters: pair thresholds from top speeds, the
//! race-time pass rule, scheduled retirements, weighted SC start blocks, exact plans per car and
//! the whole field's distributions.

use strategy::{
    recommend, simulate_field, simulate_laps, simulate_race, CarState, Compound, McOptions,
    Neutralisation, PassRule, PitStop, PlanSpace, RaceParams, RaceState, ScheduledRetirement,
    Strategy,
};

/// No SC, no failures, no noise, no DRS, no start: only pace and the pass rule act.
fn quiet_params() -> RaceParams {
    let mut p = RaceParams::default();
    p.safety_car.count_probabilities = vec![1.0];
    p.driver.failure_probability = 0.0;
    p.driver.noise_sigma_s = 0.0;
    p.overtaking.drs_gain_s = 0.0;
    p
}

/// Leader `a` and follower `b` 1 s behind, `b` 1.5 s a lap faster, both staying out.
fn duel_state(top_speed_a: f64, top_speed_b: f64) -> RaceState {
    let mut a = CarState::new("a", 1, Compound::Medium);
    let mut b = CarState::new("b", 2, Compound::Medium);
    b.race_time_s = 1.0;
    b.pace_offset_s = -1.5;
    a.top_speed_kmh = Some(top_speed_a);
    b.top_speed_kmh = Some(top_speed_b);
    a.plan = Some(Strategy::stay_out());
    b.plan = Some(Strategy::stay_out());
    RaceState {
        current_lap: 5,
        total_laps: 20,
        cars: vec![a, b],
        safety_car_active: false,
        vsc_active: false,
        neutralised_laps_remaining: 0,
    }
}

#[test]
fn a_follower_faster_on_the_straight_passes_with_a_smaller_gap() {
    for rule in [PassRule::LapTime, PassRule::RaceTime] {
        let mut p = quiet_params();
        p.overtaking.pass_rule = rule;
        p.overtaking.loser_penalty_s = 0.3;
        // One threshold for all (1.83 s): 1.5 s a lap is not enough.
        let r = simulate_race(&p, &duel_state(320.0, 350.0), 1, 0).unwrap();
        assert_eq!(
            r.classification,
            ["a", "b"],
            "{rule:?} without the speed term"
        );
        // 1.83 - 0.033 x 30 km/h = 0.84 s: the faster-on-the-straight follower gets by.
        p.overtaking.top_speed_coeff_s_per_kmh = -0.033;
        let r = simulate_race(&p, &duel_state(320.0, 350.0), 1, 0).unwrap();
        assert_eq!(r.classification, ["b", "a"], "{rule:?} with the speed term");
        // The other way round (follower slower on the straight) it needs more: still stuck.
        let r = simulate_race(&p, &duel_state(350.0, 320.0), 1, 0).unwrap();
        assert_eq!(r.classification, ["a", "b"], "{rule:?} slower follower");
    }
}

#[test]
fn race_time_rule_charges_both_cars_while_they_run_close() {
    let mut p = quiet_params();
    p.overtaking.pass_rule = PassRule::RaceTime;
    // The follower 0.2 s a lap faster, 0.3 s behind: it comes within 0.5 s every lap, both lose
    // the duel penalty every lap and the follower is held 0.5 s behind (exactly 0.5 s behind at
    // equal pace would not count as close, as in TUMFTM).
    let mut s = duel_state(320.0, 320.0);
    s.cars[1].pace_offset_s = -0.2;
    s.cars[1].race_time_s = 0.3;
    let laps = simulate_laps(&p, &s, 3).unwrap();
    let last = |id: &str| {
        laps.iter()
            .filter(|l| l.car_id == id)
            .map(|l| l.race_time_s.unwrap())
            .fold(f64::NAN, |_, x| x)
    };
    let mut alone = s.clone();
    alone.cars.truncate(1);
    let solo = simulate_laps(&p, &alone, 3).unwrap();
    let solo_t = solo.last().unwrap().race_time_s.unwrap();
    let laps_run = 15.0;
    let lost = last("a") - solo_t;
    assert!((lost - 0.3 * laps_run).abs() < 1e-6, "lost {lost}");
    assert!((last("b") - last("a") - p.overtaking.hold_gap_s).abs() < 1e-6);
}

#[test]
fn a_scheduled_retirement_removes_the_car_at_that_lap_and_can_bring_out_the_sc() {
    let p = quiet_params();
    let mut s = duel_state(320.0, 320.0);
    s.cars[1].retirement = Some(ScheduledRetirement {
        at_lap: 7.5,
        neutralisation: Some(Neutralisation::Sc),
        neutralisation_laps: 3,
    });
    let laps = simulate_laps(&p, &s, 1).unwrap();
    let b_laps: Vec<u32> = laps
        .iter()
        .filter(|l| l.car_id == "b")
        .map(|l| l.lap)
        .collect();
    assert_eq!(b_laps, vec![6, 7], "out during lap 8");
    let yellow: Vec<u32> = laps
        .iter()
        .filter(|l| l.car_id == "a" && l.yellow)
        .map(|l| l.lap)
        .collect();
    assert_eq!(yellow, vec![8, 9, 10]);
    let r = simulate_race(&p, &s, 1, 0).unwrap();
    assert_eq!(r.classification, ["a", "b"]);
    assert_eq!(r.trace.retirements, 1);
}

#[test]
fn weighted_safety_car_blocks_start_in_the_weighted_proportions() {
    let mut p = RaceParams::default();
    p.safety_car.count_probabilities = vec![0.0, 1.0];
    p.safety_car.first_lap_probability = 0.0;
    p.safety_car.vsc_share = 0.0;
    p.safety_car.start_blocks = 5;
    let w = [0.136, 0.136, 0.08, 0.193, 0.091];
    p.safety_car.start_block_weights = w.to_vec();
    p.driver.failure_probability = 0.0;
    let mut s = duel_state(320.0, 320.0);
    s.current_lap = 0;
    s.total_laps = 50;
    let races = 6000;
    let mut hist = [0u32; 5];
    for it in 0..races {
        let r = simulate_race(&p, &s, 5, it).unwrap();
        let start = r.trace.phases[0].0;
        hist[((start - 1) / 10) as usize] += 1;
    }
    let total_w: f64 = w.iter().sum();
    for (b, &k) in hist.iter().enumerate() {
        let want = w[b] / total_w;
        let got = k as f64 / races as f64;
        let se = (want * (1.0 - want) / races as f64).sqrt();
        assert!((got - want).abs() < 4.0 * se, "block {b}: {got} vs {want}");
    }
}

#[test]
fn exact_plans_with_any_number_of_stops_are_followed() {
    let p = quiet_params();
    let mut s = duel_state(320.0, 320.0);
    s.current_lap = 0;
    s.total_laps = 56;
    let three_stop = Strategy {
        stops: vec![
            PitStop {
                lap: 1,
                compound: Compound::Medium,
            },
            PitStop {
                lap: 20,
                compound: Compound::Medium,
            },
            PitStop {
                lap: 40,
                compound: Compound::Soft,
            },
        ],
    };
    s.cars[0].plan = Some(three_stop.clone());
    let laps = simulate_laps(&p, &s, 2).unwrap();
    let pits: Vec<u32> = laps
        .iter()
        .filter(|l| l.car_id == "a" && l.pit)
        .map(|l| l.lap)
        .collect();
    assert_eq!(pits, vec![1, 20, 40]);
    // The asked car: the exact plan joins the plan space.
    let space = PlanSpace {
        stay_out: true,
        one_stop: false,
        extra: vec![three_stop.clone()],
        ..PlanSpace::default()
    };
    let opts = McOptions {
        iterations: 50,
        seed: 1,
    };
    let r = recommend(&p, &s, "a", &space, &opts, None).unwrap();
    assert_eq!(r.outcomes.len(), 2);
    assert!(r.outcomes.iter().any(|o| o.strategy == three_stop));
    // And the whole field runs it.
    let f = simulate_field(&p, &s, &opts).unwrap();
    assert_eq!(f[0].strategy, three_stop);
}

#[test]
fn all_cars_gives_every_car_a_distribution_summing_to_one_on_any_thread_count() {
    let mut p = RaceParams::default();
    p.overtaking.pass_rule = PassRule::RaceTime;
    p.overtaking.top_speed_coeff_s_per_kmh = -0.033;
    p.safety_car.accident_retires_car = true;
    let s = RaceState {
        current_lap: 0,
        total_laps: 30,
        cars: (0..8)
            .map(|i| {
                let mut c = CarState::new(format!("c{i}"), i + 1, Compound::Medium);
                c.pace_offset_s = 0.1 * i as f64;
                c.top_speed_kmh = Some(310.0 + 2.0 * i as f64);
                c
            })
            .collect(),
        safety_car_active: false,
        vsc_active: false,
        neutralised_laps_remaining: 0,
    };
    let opts = McOptions {
        iterations: 1000,
        seed: 9,
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let a = one.install(|| simulate_field(&p, &s, &opts).unwrap());
    let b = two.install(|| simulate_field(&p, &s, &opts).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.len(), 8);
    for c in &a {
        let sum: f64 = c.finish_position_distribution.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "{}: {sum}", c.car_id);
        let mean: f64 = c
            .finish_position_distribution
            .iter()
            .enumerate()
            .map(|(k, p)| (k + 1) as f64 * p)
            .sum();
        assert!((mean - c.expected_position).abs() < 1e-9);
    }
    // Every position is taken exactly once per race.
    for k in 0..8 {
        let col: f64 = a.iter().map(|c| c.finish_position_distribution[k]).sum();
        assert!((col - 1.0).abs() < 1e-9);
    }
    assert!(a[0].expected_position < a[7].expected_position);
}
