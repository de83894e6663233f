//! The analysis of a session that has only timing (official lap and sector times, no
//! telemetry, no wear sensor: a GR Cup race imported from its timing files).
//!
//! Each car's laps go, lap number by lap number, through the timing-only pace predictor
//! ([`tires::TimingPredictor`]: green laps only, fuel and track evolution taken off, the
//! degradation per lap with its uncertainty); after each lap the car gets an insight as a
//! telemetry session's would, its tyre view from that predictor (`predictor: "timing only"`),
//! and, with windows, the pit window computed from the session's laps so far, each car's pace
//! and degradation given to the strategy model from the same predictor.

use crate::messages::{Insight, SectorStress, TireInsight, Validity};
use crate::offline::{run_jobs, Analysed};
use crate::records::{records_of_timing, TimedLap};
use crate::window::{CarPace, StrategyJob, WindowSettings};
use std::collections::{BTreeMap, HashMap, HashSet};
use tires::{LapLog, PaceConfig, PacePrediction, TimingPredictor};

/// Laps ahead each timing-only prediction looks (the forecast kept with the insight).
const HORIZON_LAPS: usize = 5;

/// The lap logs of official timing: a lap under a flag other than green is yellow, and so is
/// the lap after it (the restart); pit-in laps; lap 1 (the start) and the lap after a pit-in
/// are out-laps.
pub fn lap_logs_of_timing(laps: &[TimedLap]) -> Vec<LapLog> {
    let mut logs: Vec<LapLog> = laps
        .iter()
        .map(|l| {
            let mut g = LapLog::new(l.car_id.clone(), l.lap, l.lap_time_s);
            g.pit_in = l.pit_in;
            g.out_lap = l.lap <= 1;
            g.yellow = l.yellow;
            g
        })
        .collect();
    logs.sort_by(|a, b| (a.car_id.as_str(), a.lap).cmp(&(b.car_id.as_str(), b.lap)));
    tires::mark_restart_laps(&mut logs);
    tires::mark_out_laps(&mut logs);
    logs
}

/// The tyre view of one timing-only prediction, for the lap just completed (`total_laps`: the
/// race length, so that no pit lap falls after the flag).
pub fn tire_insight_of_pace(p: &PacePrediction, total_laps: Option<u32>) -> TireInsight {
    let ok = p.laps_used >= 3;
    // The loss of the next lap against the stint's reference lap, and its 80 % interval.
    let next_loss = p.loss_s + p.degradation_s_per_lap;
    let span = if p.degradation_s_per_lap.abs() > 1e-9 {
        (next_loss / p.degradation_s_per_lap).abs()
    } else {
        0.0
    };
    let half = 1.2816 * p.degradation_sd_s_per_lap * span;
    let laps_until = p
        .laps_until_threshold
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x.ceil().max(1.0) as u32);
    let cross_lap = laps_until.map(|n| p.lap.saturating_add(n));
    let pit_lap = cross_lap
        .map(|l| l.saturating_sub(1).max(p.lap))
        .filter(|l| total_laps.is_none_or(|t| *l < t));
    let note = match (cross_lap, pit_lap, total_laps) {
        (Some(c), None, Some(t)) => Some(format!(
            "the tyres cross +{:.1} s at lap {c}, after the flag (lap {t})",
            p.threshold_s
        )),
        _ => None,
    };
    let explanation = if ok {
        vec![
            format!(
                "Losing {:.2} s a lap to the tyres, give or take {:.2}, from {} green laps of this stint.",
                p.degradation_s_per_lap,
                1.2816 * p.degradation_sd_s_per_lap,
                p.laps_used
            ),
            match p.forecast.first() {
                Some(f) => format!(
                    "Next lap about {:.2} s, between {:.2} and {:.2}.",
                    f.lap_time_s, f.lo_s, f.hi_s
                ),
                None => format!("Pace now {:.2} s.", p.pace_s),
            },
            match (laps_until, pit_lap) {
                (Some(n), Some(l)) => format!(
                    "Loss reaches {:.1} s in {n} laps: box at the end of lap {l}.",
                    p.threshold_s
                ),
                (Some(n), None) => format!(
                    "Loss reaches {:.1} s in {n} laps, after the flag: stay out.",
                    p.threshold_s
                ),
                _ => "No measurable tyre loss: stay out.".to_string(),
            },
        ]
    } else {
        vec![format!(
            "Only {} green laps in this stint: not enough to read the tyres yet.",
            p.laps_used
        )]
    };
    let mut scores = BTreeMap::new();
    scores.insert("tyre_age".to_string(), next_loss);
    TireInsight {
        predictor: Some(tires::PredictorKind::TimingOnly.as_str().to_string()),
        predicted_loss_per_lap_seconds: Some(next_loss).filter(|x| x.is_finite()),
        loss_interval80_s: Some([next_loss - half, next_loss + half])
            .filter(|i| i.iter().all(|x| x.is_finite())),
        laps_until_0_5s_loss: laps_until,
        recommended_pit_lap: pit_lap,
        tire_pit_note: note,
        stint: Some(p.stint),
        explanation,
        feature_scores: scores,
        tire_status: Some(if ok {
            tires::Status::Ok
        } else {
            tires::Status::NotEnoughData {
                reason: format!("{} green laps in the stint (3 needed)", p.laps_used),
            }
        }),
        tire_ok: Some(ok),
        predicted_next_lap_time_s: p
            .forecast
            .first()
            .map(|f| f.lap_time_s)
            .filter(|x| x.is_finite()),
        next_lap_time_interval80_s: p
            .forecast
            .first()
            .map(|f| [f.lo_s, f.hi_s])
            .filter(|i| i.iter().all(|x| x.is_finite())),
        ..TireInsight::default()
    }
}

/// Each car's pace and degradation as the strategy model takes them.
pub fn car_pace_of(p: &PacePrediction) -> CarPace {
    CarPace {
        car_id: p.car_id.clone(),
        pace_s: p.pace_s,
        degradation_s_per_lap: p.degradation_s_per_lap,
        fuel_s_per_lap: p.fuel_s_per_lap,
        noise_s: p.noise_s,
        laps_used: p.laps_used as u32,
        tyre_age_laps: p.tyre_age_laps,
    }
}

/// Analyses a timing-only session: one insight per (car, lap) in (car, lap) order, each with
/// the timing-only predictor's tyre view and, with `windows`, its pit window. `total_laps`:
/// the race length (else the last lap). `progress` gets (windows done, windows in all).
pub fn analyse_timing(
    session_id: &str,
    track: Option<&str>,
    laps: &[TimedLap],
    total_laps: Option<u32>,
    windows: Option<WindowSettings>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Analysed {
    let mut seen = HashSet::new();
    let laps: Vec<&TimedLap> = laps
        .iter()
        .filter(|l| l.lap >= 1 && l.lap_time_s.is_finite() && l.lap_time_s > 0.0)
        .filter(|l| seen.insert((l.car_id.as_str(), l.lap)))
        .collect();
    let owned: Vec<TimedLap> = laps.iter().map(|l| (*l).clone()).collect();
    let total = total_laps.or_else(|| owned.iter().map(|l| l.lap).max());
    let logs = lap_logs_of_timing(&owned);
    let by_key: HashMap<(&str, u32), &TimedLap> = owned
        .iter()
        .map(|l| ((l.car_id.as_str(), l.lap), l))
        .collect();
    let positions = positions_by_elapsed(&owned);
    // Lap number by lap number, as the laps came in.
    let mut order: Vec<&LapLog> = logs.iter().collect();
    order.sort_by(|a, b| (a.lap, a.car_id.as_str()).cmp(&(b.lap, b.car_id.as_str())));
    let mut predictor = TimingPredictor::new(PaceConfig::default());
    let mut best: HashMap<&str, f64> = HashMap::new();
    let mut race_time: HashMap<&str, f64> = HashMap::new();
    let mut made: Vec<(Insight, Vec<CarPace>)> = Vec::with_capacity(order.len());
    // Each car's pace as of its own last lap (a car's fit changes only when its lap comes),
    // so that a job's pace costs a copy, not a prediction of every car.
    let mut latest_pace: BTreeMap<&str, CarPace> = BTreeMap::new();
    for log in order {
        predictor.on_lap(log);
        let Some(l) = by_key.get(&(log.car_id.as_str(), log.lap)) else {
            continue;
        };
        let t_start = *race_time.get(l.car_id.as_str()).unwrap_or(&0.0);
        let t_end = l.elapsed_s.unwrap_or(t_start + l.lap_time_s);
        race_time.insert(l.car_id.as_str(), t_end);
        if log.is_green() {
            let b = best.entry(l.car_id.as_str()).or_insert(l.lap_time_s);
            *b = b.min(l.lap_time_s);
        }
        let pred = predictor.predict(&l.car_id, HORIZON_LAPS);
        let tire = pred
            .as_ref()
            .map(|p| tire_insight_of_pace(p, total))
            .unwrap_or_else(|| TireInsight {
                predictor: Some(tires::PredictorKind::TimingOnly.as_str().to_string()),
                tire_status: Some(tires::Status::NotEnoughData {
                    reason: "no green lap of this car yet".into(),
                }),
                tire_ok: Some(false),
                ..TireInsight::default()
            });
        let insight = Insight {
            chassis: l.car_id.clone(),
            track: track.map(str::to_string),
            session_id: session_id.to_string(),
            lap: l.lap,
            revision: 0,
            lap_time_s: Some(l.lap_time_s),
            best_lap_time_s: best.get(l.car_id.as_str()).copied(),
            sector_times_s: l.sector_times_s,
            validity: Validity {
                out_lap: log.out_lap,
                pit: l.pit_in,
                safety_car: log.yellow,
                incomplete: false,
            },
            t_start_s: t_start,
            t_end_s: t_end,
            position: positions.get(&(l.car_id.as_str(), l.lap)).copied(),
            lap_tire_stress: 0.0,
            per_sector_stress: SectorStress::default(),
            tyre_age_laps: pred.as_ref().map_or(0, |p| p.tyre_age_laps),
            tyre_compound: None,
            fuel_kg: None,
            tire_wear_source: None,
            features: Default::default(),
            gaps: None,
            tire,
            pit_window: None,
            call: None,
        };
        let pace = if windows.is_some() {
            if let Some(p) = &pred {
                latest_pace.insert(l.car_id.as_str(), car_pace_of(p));
            }
            latest_pace.values().cloned().collect()
        } else {
            Vec::new()
        };
        made.push((insight, pace));
    }
    let mut insights: Vec<Insight> = match (windows, total) {
        (Some(cfg), Some(total)) => {
            let records = records_of_timing(&owned);
            let jobs: Vec<StrategyJob> = made
                .into_iter()
                .map(|(insight, pace)| {
                    let upto = insight.t_end_s;
                    StrategyJob {
                        total_laps: total,
                        records: records
                            .iter()
                            .filter(|r| match r.race_time_s {
                                Some(t) => t <= upto + 1e-6,
                                None => r.lap <= insight.lap,
                            })
                            .cloned()
                            .collect(),
                        insight,
                        pace,
                    }
                })
                .collect();
            run_jobs(&jobs, &cfg, progress)
        }
        _ => made.into_iter().map(|(i, _)| i).collect(),
    };
    insights.sort_by(|a, b| (&a.chassis, a.lap).cmp(&(&b.chassis, b.lap)));
    Analysed {
        samples: 0,
        insights,
        alerts: Vec::new(),
        profiles: Vec::new(),
        total_laps: total,
    }
}

/// Each car's position at the end of each lap: its rank among the cars that completed that
/// lap, by race time (a lapped car completes the lap later, so it ranks behind).
fn positions_by_elapsed(laps: &[TimedLap]) -> HashMap<(&str, u32), u32> {
    let mut by_lap: BTreeMap<u32, Vec<(&str, f64)>> = BTreeMap::new();
    for l in laps {
        if let Some(t) = l.elapsed_s.filter(|t| t.is_finite()) {
            by_lap
                .entry(l.lap)
                .or_default()
                .push((l.car_id.as_str(), t));
        }
    }
    let mut out = HashMap::new();
    for (lap, mut cars) in by_lap {
        cars.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (k, (car, _)) in cars.into_iter().enumerate() {
            out.insert((car, lap), k as u32 + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written 12-lap race of 4 cars: car "B" degrades 0.15 s a lap, the others
    /// 0.03; lap 6 is a full-course yellow; car "C" pits at the end of lap 7.
    fn race() -> Vec<TimedLap> {
        let mut out = Vec::new();
        for (k, car) in ["A", "B", "C", "D"].iter().enumerate() {
            let mut elapsed = 0.0;
            let mut age = 0.0;
            for lap in 1..=12u32 {
                let deg = if *car == "B" { 0.15 } else { 0.03 };
                let wobble = [0.12, -0.08, 0.05, -0.11, 0.09, -0.04][(lap as usize + k) % 6];
                let mut t = 100.0 + k as f64 * 0.4 + deg * age + wobble;
                if lap == 1 {
                    t += 6.0;
                }
                if lap == 6 {
                    t *= 1.5;
                }
                let pit_in = *car == "C" && lap == 7;
                if pit_in {
                    t += 20.0;
                }
                elapsed += t;
                age += 1.0;
                if pit_in {
                    age = 0.0;
                }
                out.push(TimedLap {
                    car_id: car.to_string(),
                    lap,
                    lap_time_s: t,
                    pit_in,
                    yellow: lap == 6,
                    elapsed_s: Some(elapsed),
                    sector_times_s: [Some(t * 0.3), Some(t * 0.4), Some(t * 0.3)],
                });
            }
        }
        out
    }

    #[test]
    fn every_lap_gets_a_timing_only_insight() {
        let a = analyse_timing("s", Some("barber"), &race(), Some(12), None, &|_, _| {});
        assert_eq!(a.insights.len(), 48);
        for i in &a.insights {
            assert_eq!(i.tire.predictor.as_deref(), Some("timing only"));
            assert!(i.position.is_some());
        }
        let last = |car: &str| {
            a.insights
                .iter()
                .rfind(|i| i.chassis == car)
                .cloned()
                .expect("car")
        };
        let (b, d) = (last("B"), last("D"));
        let (lb, ld) = (
            b.tire.predicted_loss_per_lap_seconds.expect("loss B"),
            d.tire.predicted_loss_per_lap_seconds.expect("loss D"),
        );
        assert!(lb > ld, "B degrades more: {lb} vs {ld}");
        assert!(b.tire.laps_until_0_5s_loss.is_some());
        assert_eq!(b.tire.explanation.len(), 3);
        // The yellow lap and the restart are flagged; C's pit-in and out-lap too.
        let c7 = a.insights.iter().find(|i| i.chassis == "C" && i.lap == 7);
        assert!(c7.is_some_and(|i| i.validity.pit));
        let a6 = a.insights.iter().find(|i| i.chassis == "A" && i.lap == 6);
        assert!(a6.is_some_and(|i| i.validity.safety_car));
        // Tyre age restarts after C's stop.
        let c9 = a.insights.iter().find(|i| i.chassis == "C" && i.lap == 9);
        assert!(c9.is_some_and(|i| i.tyre_age_laps <= 2), "{c9:?}");
    }

    #[test]
    fn windows_are_computed_from_the_laps_so_far() {
        let cfg = WindowSettings {
            screen_iterations: 64,
            seed: 1,
        };
        let a = analyse_timing("s", None, &race(), Some(20), Some(cfg), &|_, _| {});
        let late = a
            .insights
            .iter()
            .find(|i| i.chassis == "B" && i.lap == 10)
            .expect("lap 10");
        assert!(late.revision >= 1);
        assert!(late.pit_window.is_some());
        assert!(late.call.is_some());
    }
}
