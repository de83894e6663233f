//! The race view of one car at one lap: the race as it stands (fitted from the session's laps
//! so far) simulated for every plan from here. Live, a worker runs the newest job per car; the
//! offline pass runs every job. Either way a job's answer depends only on the job.

use crate::call;
use crate::messages::{Insight, PitWindow, WindowStatus};
use crate::records;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use strategy::LapRecord;

/// Settings of the pit-window runs.
#[derive(Debug, Clone, Copy)]
pub struct WindowSettings {
    /// Iterations per plan of the screening pass.
    pub screen_iterations: u32,
    pub seed: u64,
}

impl Default for WindowSettings {
    fn default() -> WindowSettings {
        WindowSettings {
            screen_iterations: 256,
            seed: 0,
        }
    }
}

/// A pit window to compute: the lap's insight and the session's laps when it completed.
/// Serialisable so that it can travel on a work stream to any strategy worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyJob {
    pub total_laps: u32,
    /// The session's laps completed so far, every car.
    pub records: Vec<LapRecord>,
    /// The insight the window revises.
    pub insight: Insight,
    /// Each car's pace and degradation from a lap-time predictor (timing-only sessions);
    /// empty: the strategy model fits them from `records` itself.
    #[serde(default)]
    pub pace: Vec<CarPace>,
}

/// One car's pace and degradation as a lap-time predictor sees them after its last lap
/// ([`tires::TimingPredictor`]): what the strategy model simulates the car's coming laps with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarPace {
    pub car_id: String,
    /// Fitted lap time now (fuel and track state included), s.
    pub pace_s: f64,
    /// Tyre degradation, fuel-corrected, s per lap of tyre age.
    pub degradation_s_per_lap: f64,
    /// Lap time change per lap from fuel burn (negative: lighter is faster), s.
    pub fuel_s_per_lap: f64,
    /// Lap-to-lap noise, s.
    pub noise_s: f64,
    /// Green laps behind the fit.
    pub laps_used: u32,
    /// Tyre age at the last lap, laps.
    pub tyre_age_laps: u32,
}

/// Fewest green laps of a stint before its predictor's pace replaces the strategy model's fit.
const PACE_MIN_LAPS: u32 = 3;

/// Puts each car's predicted pace and degradation into the race state: the lap time at tyre
/// age 0 relative to the field base, and the degradation per lap (the strategy model runs
/// without fuel, so the degradation it takes is the net one the predictor saw).
fn apply_pace(params: &strategy::RaceParams, state: &mut strategy::RaceState, pace: &[CarPace]) {
    for c in &mut state.cars {
        let Some(p) = pace
            .iter()
            .find(|p| p.car_id == c.car_id && p.laps_used >= PACE_MIN_LAPS)
        else {
            continue;
        };
        let net_s_per_lap = p.degradation_s_per_lap + p.fuel_s_per_lap;
        let values = [p.pace_s, net_s_per_lap, p.noise_s];
        if values.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let age = f64::from(p.tyre_age_laps);
        c.pace_offset_s = p.pace_s - net_s_per_lap * age - params.track.base_lap_time_s;
        c.noise_sigma_s =
            Some((p.noise_s * params.driver.noise_scale).max(params.driver.noise_floor_s));
        let tyre = c.tyres.entry(c.compound).or_insert(strategy::TyreModel {
            k0_s: 0.0,
            k1_s_per_lap: 0.0,
            k2_s_per_lap2: 0.0,
        });
        tyre.k1_s_per_lap = net_s_per_lap;
    }
}

impl StrategyJob {
    /// The (session, car) the job is for.
    pub fn key(&self) -> (String, String) {
        (
            self.insight.session_id.clone(),
            self.insight.chassis.clone(),
        )
    }

    /// Runs the job: the window (or why there is none).
    pub fn window(&self, cfg: &WindowSettings) -> PitWindow {
        match live_window(self, cfg) {
            Ok(w) => w,
            Err(reason) => PitWindow::pending(WindowStatus::NotEnoughData, reason),
        }
    }

    /// Runs the job and returns the revised insight (revision + 1, its window and the call).
    pub fn run(&self, cfg: &WindowSettings) -> Insight {
        let window = self.window(cfg);
        revise(&self.insight, window, Some(self.total_laps))
    }
}

/// `insight` revised with `window`: the next revision, with the call made again.
pub fn revise(insight: &Insight, window: PitWindow, total_laps: Option<u32>) -> Insight {
    let mut out = insight.clone();
    out.revision = insight.revision + 1;
    call::reconcile(&mut out, window, total_laps);
    out
}

fn live_window(job: &StrategyJob, cfg: &WindowSettings) -> Result<PitWindow, String> {
    // The laps every running car has completed: cars whose last lap ended long ago are out.
    let mut last: HashMap<&str, (u32, f64)> = HashMap::new();
    for r in &job.records {
        let e = last.entry(r.car_id.as_str()).or_insert((0, f64::MIN));
        if r.lap > e.0 {
            *e = (r.lap, r.race_time_s.unwrap_or(f64::MIN));
        }
    }
    let newest = last.values().map(|v| v.1).fold(f64::MIN, f64::max);
    let mut times: Vec<f64> = job.records.iter().map(|r| r.lap_time_s).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times.get(times.len() / 2).copied().unwrap_or(120.0);
    let at_lap = last
        .values()
        .filter(|v| v.1 >= newest - 2.5 * median)
        .map(|v| v.0)
        .min()
        .unwrap_or(0);
    let mut recs = job.records.clone();
    records::prepare_records(&mut recs);
    let (mut params, mut state, fitted) =
        strategy::race_at_lap(&recs, at_lap, job.total_laps).map_err(|e| e.to_string())?;
    records::venue_pit_prior(&mut params, &fitted, job.insight.track.as_deref());
    apply_pace(&params, &mut state, &job.pace);
    let adaptive = strategy::Adaptive {
        screen_iterations: cfg.screen_iterations,
        ..strategy::Adaptive::default()
    };
    let report = strategy::recommend(
        &params,
        &state,
        &job.insight.chassis,
        &strategy::PlanSpace::default(),
        &strategy::McOptions {
            iterations: cfg.screen_iterations,
            seed: cfg.seed,
        },
        Some(&adaptive),
    )
    .map_err(|e| e.to_string())?;
    Ok(PitWindow::from_report(
        &report,
        at_lap,
        Some(params.pit.lane_loss_green_s),
    ))
}
