//! Tests of the timing-only and reported-wear predictors on hand-written fixtures whose
//! degradation, wear rate and wear-to-lap-time slope are known.

use crate::*;

/// A small deterministic generator (xorshift64*) with normal draws (Box-Muller).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// True tyre degradation of car `c`, s/lap.
fn deg_of(c: usize) -> f64 {
    0.04 + 0.02 * c as f64
}

/// Fuel effect of the fixture per lap, s (lighter is faster).
const FUEL_GAIN_S_PER_LAP: f64 = 0.03;
const NOISE_S: f64 = 0.15;

/// A timing-only race written by hand: 6 cars × 20 laps, car c degrading `deg_of(c)` s/lap,
/// all gaining 0.03 s/lap from fuel, a field-wide slow lap 5 (+0.4 s, wind), a full-course
/// yellow at lap 8 (lap 9 starts under it), car 2 stopping at the end of lap 12 and car 5 at
/// the end of lap 14 (new tyres), car 3 held up in traffic on lap 15 (+2.5 s), lap 1 a start.
fn timing_race(seed: u64) -> Vec<LapLog> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut laps = Vec::new();
    for c in 0..6 {
        let base = 90.0 + 0.3 * c as f64;
        let stop = match c {
            2 => Some(12),
            5 => Some(14),
            _ => None,
        };
        let mut age = 0u32;
        for lap in 1..=20u32 {
            age += 1;
            let mut t = base + deg_of(c) * f64::from(age) - FUEL_GAIN_S_PER_LAP * f64::from(lap)
                + NOISE_S * rng.normal();
            let mut l = LapLog::new(format!("car{c}"), lap, 0.0);
            if lap == 1 {
                t += 8.0;
                l.out_lap = true;
            }
            if lap == 5 {
                t += 0.4;
            }
            if lap == 8 {
                t += 30.0;
                l.yellow = true;
            }
            if lap == 9 {
                t += 6.0;
                l.yellow = true;
            }
            if stop == Some(lap) {
                t += 20.0;
                l.pit_in = true;
            }
            if stop.is_some_and(|s| lap == s + 1) {
                t += 15.0;
                l.out_lap = true;
                age = 1;
                t -= deg_of(c) * f64::from(lap - 1);
            }
            if c == 3 && lap == 15 {
                t += 2.5;
            }
            l.lap_time_s = t;
            laps.push(l);
        }
    }
    laps
}

fn fixture_config() -> PaceConfig {
    // The fixture's fuel effect, 0.03 s per lap at 1 kg per lap.
    PaceConfig {
        fuel_s_per_kg: FUEL_GAIN_S_PER_LAP,
        fuel_burn_kg_per_lap: 1.0,
        ..PaceConfig::default()
    }
}

fn feed(laps: &[LapLog], cfg: PaceConfig) -> TimingPredictor {
    let mut sorted = laps.to_vec();
    sorted.sort_by(|a, b| (a.lap, &a.car_id).cmp(&(b.lap, &b.car_id)));
    let mut p = TimingPredictor::new(cfg);
    for l in &sorted {
        assert!(p.on_lap(l));
    }
    p
}

#[test]
fn timing_only_recovers_each_cars_degradation() {
    let mut errs = Vec::new();
    for seed in 1..=4 {
        let p = feed(&timing_race(seed), fixture_config());
        for c in [0usize, 1, 3, 4] {
            let pred = p.predict(&format!("car{c}"), 5).unwrap();
            assert_eq!(pred.predictor, PredictorKind::TimingOnly);
            assert_eq!(pred.stint, 0);
            let e = pred.degradation_s_per_lap - deg_of(c);
            assert!(
                e.abs() < 0.03,
                "seed {seed} car{c}: {} vs {}",
                pred.degradation_s_per_lap,
                deg_of(c)
            );
            assert!(pred.degradation_sd_s_per_lap > 0.0 && pred.degradation_sd_s_per_lap < 0.05);
            errs.push(e);
        }
    }
    let mae = errs.iter().map(|e| e.abs()).sum::<f64>() / errs.len() as f64;
    assert!(mae < 0.012, "degradation MAE {mae}");
    // The cars do differ: the fit is not the field's mean handed to everyone.
    let p = feed(&timing_race(9), fixture_config());
    let d0 = p.predict("car0", 1).unwrap().degradation_s_per_lap;
    let d4 = p.predict("car4", 1).unwrap().degradation_s_per_lap;
    assert!(d4 - d0 > 0.04, "car4 {d4} vs car0 {d0}");
}

#[test]
fn timing_only_leaves_out_yellow_pit_out_and_traffic_laps() {
    let p = feed(&timing_race(3), fixture_config());
    // Car 0: 20 laps less the start, the FCY and the restart lap.
    let c0 = p.predict("car0", 1).unwrap();
    assert_eq!(c0.laps_used + c0.laps_dropped, 17);
    assert_eq!(c0.laps_dropped, 0, "{c0:?}");
    // Car 3: the traffic lap is dropped as an outlier.
    let c3 = p.predict("car3", 1).unwrap();
    assert_eq!(c3.laps_used, 16, "{c3:?}");
    assert_eq!(c3.laps_dropped, 1);
    // Car 2 stopped at the end of lap 12: stint 1 from the out-lap (13), green from 14.
    let c2 = p.predict("car2", 3).unwrap();
    assert_eq!(c2.stint, 1);
    assert_eq!(c2.tyre_age_laps, 8);
    assert_eq!(c2.laps_used, 7);
    assert_eq!(c2.forecast.len(), 3);
    assert_eq!(c2.forecast[0].lap, 21);
    // Fresh tyres: predicted about base + deg·age − fuel·lap, far from the in- and out-laps.
    let want = 90.6 + deg_of(2) * 9.0 - FUEL_GAIN_S_PER_LAP * 21.0;
    assert!(
        (c2.forecast[0].lap_time_s - want).abs() < 0.3,
        "{} vs {want}",
        c2.forecast[0].lap_time_s
    );
    for f in &c2.forecast {
        assert!(f.lo_s < f.lap_time_s && f.lap_time_s < f.hi_s);
    }
    // The intervals widen with the horizon.
    assert!(c2.forecast[2].hi_s - c2.forecast[2].lo_s > c2.forecast[0].hi_s - c2.forecast[0].lo_s);
}

#[test]
fn timing_only_beats_both_baselines_with_calibrated_intervals() {
    let sessions: Vec<LapSession> = (1..=8)
        .map(|s| LapSession {
            id: format!("fixture-{s}"),
            laps: timing_race(s),
        })
        .collect();
    let cfg = LapEvalConfig {
        pace: fixture_config(),
        ..LapEvalConfig::default()
    };
    let r = evaluate_laps(&sessions, &cfg, 5);
    let (a, b) = (&r.all.next_lap, &r.all.next_laps);
    assert!(a.n > 500 && b.n > 2000, "{a:?} {b:?}");
    assert!(r.wear.is_none());
    // A baseline in the predictor's place scores the baseline's MAE: both must be beaten.
    assert!(a.timing_mae_s < 0.95 * a.last_lap_mae_s, "{a:?}");
    assert!(a.timing_mae_s < 0.95 * a.stint_line_mae_s, "{a:?}");
    assert!(b.timing_mae_s < 0.95 * b.last_lap_mae_s, "{b:?}");
    assert!(b.timing_mae_s < 0.95 * b.stint_line_mae_s, "{b:?}");
    // Near the noise: a line through each whole stint fitted afterwards leaves 0.16 s (σ·√(2/π)
    // ≈ 0.12 s plus the windy lap and the traffic).
    assert!(a.timing_mae_s < 1.6 * r.all.hindsight_line_mae_s, "{a:?}");
    for h in [a, b] {
        assert!(
            (0.7..=0.9).contains(&h.timing_coverage),
            "coverage {}",
            h.timing_coverage
        );
    }
    let text = r.table();
    assert!(text.contains("fixture-1") && text.contains("ALL"));
    let html = laps_report_html(&r);
    assert!(html.contains("<svg") && html.ends_with("</html>"));
}

#[test]
fn timing_only_counts_laps_until_the_loss_threshold() {
    // One car, 0.04 s/lap and nothing else: +0.5 s is 12.5 laps after the reference (2nd) lap.
    let mut p = TimingPredictor::new(PaceConfig {
        fuel_s_per_kg: 0.0,
        ..PaceConfig::default()
    });
    for lap in 1..=12u32 {
        let wobble = if lap % 2 == 0 { 0.01 } else { -0.01 };
        p.on_lap(&LapLog::new(
            "x",
            lap,
            80.0 + 0.04 * f64::from(lap) + wobble,
        ));
    }
    let pred = p.predict("x", 1).unwrap();
    assert!(
        (pred.degradation_s_per_lap - 0.04).abs() < 0.005,
        "{pred:?}"
    );
    let until = pred.laps_until_threshold.unwrap();
    // Now at age 12, reference age 2: loss 0.4 s, 2.5 laps to go.
    assert!((pred.loss_s - 0.4).abs() < 0.05, "{}", pred.loss_s);
    assert!((until - 2.5).abs() < 1.0, "{until}");
    // A car getting faster never reaches it.
    let mut q = TimingPredictor::new(PaceConfig::default());
    for lap in 1..=8u32 {
        q.on_lap(&LapLog::new("y", lap, 80.0 - 0.2 * f64::from(lap)));
    }
    assert_eq!(q.predict("y", 1).unwrap().laps_until_threshold, None);
}

#[test]
fn predictors_survive_garbage_input() {
    let mut p = TimingPredictor::new(PaceConfig {
        discount_per_lap: f64::NAN,
        outlier_k: -1.0,
        coverage: 7.0,
        horizons: 0,
        ..PaceConfig::default()
    });
    let mut w = ReportedWearPredictor::new(WearConfig::default());
    let times = [
        f64::NAN,
        0.0,
        -5.0,
        1e300,
        f64::INFINITY,
        90.0,
        90.1,
        1e-300,
        90.2,
    ];
    for (i, t) in times.iter().enumerate() {
        let mut l = LapLog::new("g", i as u32 + 1, *t);
        l.fuel_kg = Some(if i % 2 == 0 { f64::NAN } else { 10.0 });
        l.wear_pct = Some([i as f64, f64::NAN, 1.0, 1.0]);
        p.on_lap(&l);
        w.on_lap(&l);
        l.wear_pct = Some([i as f64; 4]);
        w.on_lap(&l);
    }
    // A lap again, or an older one, is refused.
    assert!(!p.on_lap(&LapLog::new("g", 3, 90.0)));
    for pred in p.predict_all(8) {
        let json = serde_json::to_string(&pred).unwrap();
        assert!(
            !json.contains("NaN") && !json.contains("null,\"hi"),
            "{json}"
        );
        for f in &pred.forecast {
            assert!(f.lap_time_s.is_finite() && f.lo_s.is_finite() && f.hi_s.is_finite());
        }
    }
    for pred in w.predict_all(3) {
        for f in &pred.wear_forecast {
            assert!(f
                .wear_pct
                .iter()
                .chain(&f.lo_pct)
                .chain(&f.hi_pct)
                .all(|v| v.is_finite()));
        }
    }
    assert!(p.predict("nobody", 3).is_none());
}

#[test]
fn out_laps_follow_pit_in_laps() {
    let mut laps = vec![
        LapLog::new("a", 2, 90.0),
        LapLog::new("b", 1, 90.0),
        LapLog::new("a", 1, 90.0),
        LapLog::new("a", 3, 90.0),
    ];
    laps[2].pit_in = true;
    laps[1].pit_in = true;
    mark_out_laps(&mut laps);
    let out: Vec<bool> = laps.iter().map(|l| l.out_lap).collect();
    assert_eq!(out, vec![true, false, false, false]);
}

#[test]
fn restart_laps_follow_yellow_laps_and_do_not_chain() {
    let mut laps = vec![
        LapLog::new("a", 3, 90.0),
        LapLog::new("b", 2, 90.0),
        LapLog::new("a", 2, 90.0),
        LapLog::new("a", 4, 90.0),
        LapLog::new("b", 3, 90.0),
    ];
    laps[2].yellow = true; // a lap 2
    laps[4].yellow = true; // b lap 3: b's last, no next lap
    mark_restart_laps(&mut laps);
    let yellow: Vec<bool> = laps.iter().map(|l| l.yellow).collect();
    // a lap 3 is the restart; a lap 4 stays green (only a lap flagged by the source marks
    // the next one); b lap 2 is before the flag.
    assert_eq!(yellow, vec![true, false, true, false, true]);
}

/// Wear rate per corner, %/lap, of the fixture's compounds.
const SOFT_RATE: [f64; 4] = [2.6, 2.3, 2.0, 1.7];
const MEDIUM_RATE: [f64; 4] = [1.6, 1.4, 1.2, 1.0];
/// Lap time per % of mean wear in the fixture, s/% (the physics prior is about 0.042).
const B_TRUE: f64 = 0.06;

/// One car, a 25-lap soft stint and a 20-lap medium stint (lap numbers restart, as in the F1
/// game's long runs), fuel from 40 kg at 1.5 kg/lap, lap time 90 s + 0.03 s/kg + B_TRUE·wear.
fn wear_session(seed: u64) -> Vec<LapLog> {
    let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let mut laps = Vec::new();
    let mut lap = 0;
    for (rate, n, compound) in [(SOFT_RATE, 25u32, "Soft"), (MEDIUM_RATE, 20, "Medium")] {
        let mut wear = [0.0; 4];
        lap += 1; // the out-lap, not recorded
        for age in 1..=n {
            lap += 1;
            for c in 0..4 {
                // The first recorded lap carries the out-lap's wear too.
                let laps_of_wear = if age == 1 { 2.0 } else { 1.0 };
                wear[c] += rate[c] * laps_of_wear * (1.0 + 0.03 * rng.normal());
            }
            let fuel = 40.0 - 1.5 * f64::from(age);
            let wbar = wear.iter().sum::<f64>() / 4.0;
            let t = 90.0 + 0.03 * fuel + B_TRUE * wbar + 0.1 * rng.normal();
            let mut l = LapLog::new("p1", lap, t);
            l.tyre_age_laps = Some(age);
            l.fuel_kg = Some(fuel);
            l.compound = Some(compound.into());
            l.wear_pct = Some(wear);
            laps.push(l);
        }
    }
    laps
}

fn wear_config() -> WearConfig {
    let mut c = WearConfig::default();
    c.pace.fuel_s_per_kg = 0.03;
    c
}

#[test]
fn reported_wear_fits_rates_and_learns_the_loss_per_wear() {
    let laps = wear_session(5);
    let mut w = ReportedWearPredictor::new(wear_config());
    let mut at_mid = None;
    for l in &laps {
        assert!(w.on_lap(l));
        if l.lap == 14 {
            at_mid = w.predict("p1", 5);
        }
    }
    let mid = at_mid.unwrap();
    assert_eq!(mid.predictor, PredictorKind::ReportedWear);
    assert_eq!(mid.compound.as_deref(), Some("Soft"));
    for c in 0..4 {
        assert!(
            (mid.wear_rate_pct_per_lap[c] - SOFT_RATE[c]).abs() < 0.1,
            "{:?}",
            mid.wear_rate_pct_per_lap
        );
        // Wear is the reported value; ahead, it grows by the rate.
        assert_eq!(mid.wear_pct[c], laps[12].wear_pct.unwrap()[c]);
        let f = &mid.wear_forecast[4];
        assert!((f.wear_pct[c] - (mid.wear_pct[c] + 5.0 * SOFT_RATE[c])).abs() < 0.6);
        assert!(f.lo_pct[c] < f.wear_pct[c] && f.wear_pct[c] < f.hi_pct[c]);
    }
    let end = w.predict("p1", 3).unwrap();
    assert_eq!(end.stint, 1);
    assert_eq!(end.compound.as_deref(), Some("Medium"));
    // The session's own laps pull b from the physics prior toward the truth.
    let prior = end.loss_per_wear_prior_s_per_pct;
    let b = end.loss_per_wear_s_per_pct;
    assert!(
        (b - B_TRUE).abs() < 0.5 * (prior - B_TRUE).abs(),
        "b {b}, prior {prior}, true {B_TRUE}"
    );
    // Laps until +0.5 s: loss grows B_TRUE × mean rate per lap.
    let grow = B_TRUE * MEDIUM_RATE.iter().sum::<f64>() / 4.0;
    let until = end.laps_until_threshold.unwrap();
    let want = ((0.5 - end.loss_s) / grow).max(0.0);
    assert!(
        (until - want).abs() < 0.35 * want + 0.5,
        "{until} vs {want}"
    );
    assert_eq!(end.pit_lap, Some(end.lap + until.floor() as u32));
}

#[test]
fn reported_wear_beats_the_baselines_on_its_fixture() {
    let sessions: Vec<LapSession> = (1..=6)
        .map(|s| LapSession {
            id: format!("wear-{s}"),
            laps: wear_session(s),
        })
        .collect();
    let cfg = LapEvalConfig {
        pace: fixture_config(),
        wear: wear_config(),
    };
    let r = evaluate_laps(&sessions, &cfg, 5);
    let w = r.wear.clone().unwrap();
    for c in 0..4 {
        assert!(w.r2_1lap[c] > 0.99, "{w:?}");
        assert!(w.r2_1lap_increment[c] > 0.3, "{w:?}");
        assert!(w.mae_h_pct[c] < w.last_increment_mae_h_pct, "{w:?}");
    }
    assert!((0.65..=0.95).contains(&w.coverage_1lap), "{w:?}");
    let (a, b) = (&r.all.next_lap, &r.all.next_laps);
    let wa = a.wear_mae_s.unwrap();
    let wb = b.wear_mae_s.unwrap();
    assert!(
        wa < 0.95 * a.last_lap_mae_s && wa < 0.95 * a.stint_line_mae_s,
        "{a:?}"
    );
    assert!(
        wb < 0.95 * b.last_lap_mae_s && wb < 0.95 * b.stint_line_mae_s,
        "{b:?}"
    );
    // "Laps until +0.5 s" against when it happened.
    let t = r
        .threshold
        .iter()
        .find(|t| t.predictor == "reported wear")
        .unwrap();
    assert!(t.stints_crossing >= 6, "{t:?}");
    assert!(t.mae_laps < 3.0 && t.n_none == 0, "{t:?}");
    let table = r.table();
    assert!(table.contains("Reported wear") && table.contains("Laps until"));
}
