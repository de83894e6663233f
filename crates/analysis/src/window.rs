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
    let (mut params, state, fitted) =
        strategy::race_at_lap(&recs, at_lap, job.total_laps).map_err(|e| e.to_string())?;
    records::venue_pit_prior(&mut params, &fitted, job.insight.track.as_deref());
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
