//! The analysis of a whole session at once (a stored, imported, simulated or replayed race):
//! the live [`SessionAnalysis`] fed the session's samples in time order, then every lap's pit
//! window computed as the live worker would have computed it for that lap.

use crate::messages::{CoachingAlert, DriverProfile, Insight, SessionEvent};
use crate::session::{AnalysisOptions, Output, SessionAnalysis};
use crate::window::{StrategyJob, WindowSettings};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use telemetry::Sample;

/// Version of the analysis whose results are stored; a session analysed by an older version
/// is analysed again on demand (`pitwall analyse`).
pub const ANALYSIS_VERSION: u32 = 1;

/// What the analysis of a session found.
#[derive(Debug, Clone, Default)]
pub struct Analysed {
    /// One insight per (car, lap), final revision, in (car, lap) order.
    pub insights: Vec<Insight>,
    /// Coaching alerts, in the order they were raised.
    pub alerts: Vec<CoachingAlert>,
    /// Each driver's profile at the end of the session.
    pub profiles: Vec<DriverProfile>,
    /// Samples analysed.
    pub samples: u64,
    /// The race length the pit windows ran to (`None`: no windows).
    pub total_laps: Option<u32>,
}

/// A session analysed offline, sample by sample.
pub struct OfflineAnalysis {
    analysis: SessionAnalysis,
    out: Vec<Output>,
    /// Each lap's insight and the number of lap records when it completed.
    laps: Vec<(Insight, usize)>,
    alerts: Vec<CoachingAlert>,
    profiles: BTreeMap<String, DriverProfile>,
    samples: u64,
}

impl OfflineAnalysis {
    pub fn new(
        session_id: Arc<str>,
        track: Option<Arc<str>>,
        opts: AnalysisOptions,
    ) -> OfflineAnalysis {
        OfflineAnalysis {
            analysis: SessionAnalysis::new(session_id, track, opts),
            out: Vec::new(),
            laps: Vec::new(),
            alerts: Vec::new(),
            profiles: BTreeMap::new(),
            samples: 0,
        }
    }

    /// Takes a session event (the race document) as the live stage would.
    pub fn on_event(&mut self, e: &SessionEvent) {
        self.analysis.on_event(e);
    }

    /// Feeds one sample (samples in time order, all cars interleaved, as they streamed).
    pub fn push(&mut self, s: &Sample) {
        self.samples += 1;
        self.analysis.push(s, &mut self.out);
        if !self.out.is_empty() {
            self.take();
        }
    }

    fn take(&mut self) {
        let n_records = self.analysis.records().len();
        for o in self.out.drain(..) {
            match o {
                Output::Lap(done) => {
                    if let Some(p) = done.profile {
                        self.profiles.insert(p.car_id.clone(), p);
                    }
                    self.laps.push((done.insight, n_records));
                }
                Output::Alert(a) => self.alerts.push(*a),
            }
        }
    }

    /// Samples fed so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Closes the open laps and computes every lap's pit window (`windows`: `None` skips
    /// them). The race length is the session event's, else the last lap. `progress` is called
    /// with (windows done, windows in all).
    pub fn finish(
        mut self,
        windows: Option<WindowSettings>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Analysed {
        self.analysis.flush(&mut self.out);
        self.take();
        let total_laps = self
            .analysis
            .total_laps()
            .or_else(|| self.laps.iter().map(|(i, _)| i.lap).max());
        let records = self.analysis.records();
        let mut insights: Vec<Insight> = match (windows, total_laps) {
            (Some(cfg), Some(total)) => {
                let jobs: Vec<StrategyJob> = self
                    .laps
                    .iter()
                    .map(|(i, n)| StrategyJob {
                        total_laps: total,
                        records: records[..(*n).min(records.len())].to_vec(),
                        insight: i.clone(),
                        pace: Vec::new(),
                    })
                    .collect();
                run_jobs(&jobs, &cfg, progress)
            }
            _ => self.laps.into_iter().map(|(i, _)| i).collect(),
        };
        insights.sort_by(|a, b| (&a.chassis, a.lap).cmp(&(&b.chassis, b.lap)));
        Analysed {
            insights,
            alerts: self.alerts,
            profiles: self.profiles.into_values().collect(),
            samples: self.samples,
            total_laps,
        }
    }
}

/// Runs the jobs on every core, results in the jobs' order.
pub(crate) fn run_jobs(
    jobs: &[StrategyJob],
    cfg: &WindowSettings,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Insight> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let mut results: Vec<Option<Insight>> = vec![None; jobs.len()];
    let chunks: Vec<Vec<(usize, Insight)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(k) else { break };
                        mine.push((k, job.run(cfg)));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, jobs.len());
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (k, i) in chunks.into_iter().flatten() {
        if let Some(slot) = results.get_mut(k) {
            *slot = Some(i);
        }
    }
    results
        .into_iter()
        .zip(jobs)
        .map(|(r, j)| r.unwrap_or_else(|| j.insight.clone()))
        .collect()
}

/// Analyses samples already in time order (a convenience over [`OfflineAnalysis`]).
pub fn analyse(
    session_id: Arc<str>,
    track: Option<Arc<str>>,
    opts: AnalysisOptions,
    events: &[SessionEvent],
    samples: impl IntoIterator<Item = Sample>,
    windows: Option<WindowSettings>,
) -> Analysed {
    let mut a = OfflineAnalysis::new(session_id, track, opts);
    for e in events {
        a.on_event(e);
    }
    for s in samples {
        a.push(&s);
    }
    a.finish(windows, &|_, _| {})
}
