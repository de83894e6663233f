//! The live analysis stage: `analysis::SessionAnalysis` per session, fed from `bus:telemetry`;
//! its outputs go back on the bus (`bus:insights`), where the store writer, the WebSocket hub
//! and the cache take them. It writes nothing itself.
//!
//! ```text
//! bus:telemetry (group "analysis") ─► SessionAnalysis::push ─┬─► Insight rev 0 ─► bus:insights
//!   Session events (race length) ─► SessionAnalysis          ├─► Alert, Profile ─► bus:insights
//!                                                            └─► StrategyJob ─► worker thread
//! worker (newest job per car wins) ─► Insight rev 1 (PitWindow + Call) ─► bus:insights
//! ```

use crate::metrics::Metrics;
use analysis::messages::ProfileUpdate;
use analysis::{AnalysisOptions, Output, PitWindow, SessionAnalysis, StrategyJob, WindowSettings};
use bus::{Bus, Message, Subscription};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Pending strategy jobs, the newest per (session, car).
type Jobs = Arc<Mutex<BTreeMap<(String, String), StrategyJob>>>;

/// Windows the worker computed, back to the analysis thread: (session, car, window).
type WindowBack = (String, String, PitWindow);

/// Runs the analysis stage until the bus closes. Blocking: run it on a thread of its own.
pub fn run(
    mut sub: Box<dyn Subscription>,
    bus: Arc<dyn Bus>,
    rt: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    windows: WindowSettings,
    tire_model: Option<&'static analysis::tires::TireModel>,
) {
    let mut sessions: HashMap<Arc<str>, SessionAnalysis> = HashMap::new();
    // Race lengths announced before the session's first sample.
    let mut early_events: HashMap<String, Vec<analysis::SessionEvent>> = HashMap::new();
    let jobs: Jobs = Arc::new(Mutex::new(BTreeMap::new()));
    let (back_tx, back_rx) = mpsc::channel::<WindowBack>();
    let wake = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let worker = {
        let jobs = jobs.clone();
        let wake = wake.clone();
        let bus = bus.clone();
        let rt = rt.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("strategy-live".into())
            .spawn(move || strategy_worker(jobs, wake, bus, rt, metrics, windows, back_tx))
    };
    let opts = AnalysisOptions {
        tire_model,
        coach: true,
    };
    let mut out = Vec::new();
    while let Some(d) = rt.block_on(sub.next()) {
        // Windows computed since the last batch: later laps carry them.
        while let Ok((session, car, w)) = back_rx.try_recv() {
            if let Some(a) = sessions.get_mut(session.as_str()) {
                a.set_window(&car, &w);
            }
        }
        let batch = match &d.message {
            Message::Telemetry(b) => b.clone(),
            Message::Session(e) => {
                match sessions.get_mut(e.session_id()) {
                    Some(a) => a.on_event(e),
                    None => early_events
                        .entry(e.session_id().to_string())
                        .or_default()
                        .push((**e).clone()),
                }
                let _ = rt.block_on(sub.ack(&d));
                continue;
            }
            _ => {
                let _ = rt.block_on(sub.ack(&d));
                continue;
            }
        };
        let t0 = std::time::Instant::now();
        for s in &batch.samples {
            let a = sessions.entry(s.session_id.clone()).or_insert_with(|| {
                let mut a = SessionAnalysis::new(s.session_id.clone(), s.track.clone(), opts);
                for e in early_events.remove(&*s.session_id).unwrap_or_default() {
                    a.on_event(&e);
                }
                a
            });
            a.push(s, &mut out);
        }
        metrics
            .stage_seconds
            .with_label_values(&["laps"])
            .observe(t0.elapsed().as_secs_f64());
        for o in out.drain(..) {
            match o {
                Output::Alert(al) => {
                    metrics.coaching_alerts.inc();
                    let key = al.car_id.clone();
                    let _ = rt.block_on(bus.publish(&key, Message::Alert(Arc::from(al))));
                }
                Output::Lap(done) => {
                    let done = *done;
                    metrics.laps_completed.inc();
                    let car = done.insight.chassis.clone();
                    if let Some(p) = done.profile {
                        let track = if p.track.is_empty() {
                            done.insight
                                .track
                                .clone()
                                .unwrap_or_else(|| done.insight.session_id.clone())
                        } else {
                            p.track.clone()
                        };
                        let u = ProfileUpdate {
                            session_id: done.insight.session_id.clone(),
                            track,
                            profile: p,
                        };
                        let _ = rt.block_on(bus.publish(&car, Message::Profile(Arc::new(u))));
                    }
                    let msg = Message::Insight(Arc::new(done.insight));
                    let _ = rt.block_on(bus.publish(&car, msg));
                    if let Some(job) = done.job {
                        jobs.lock().insert(job.key(), job);
                        wake.1.notify_one();
                    }
                }
            }
        }
        let _ = rt.block_on(sub.ack(&d));
    }
    if let Ok(mut stop) = wake.0.lock() {
        *stop = true;
    }
    wake.1.notify_all();
    jobs.lock().clear();
    if let Ok(w) = worker {
        let _ = w.join();
    }
}

/// Takes the newest job of each car in turn and publishes the revised insight.
fn strategy_worker(
    jobs: Jobs,
    wake: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    bus: Arc<dyn Bus>,
    rt: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    cfg: WindowSettings,
    back: mpsc::Sender<WindowBack>,
) {
    loop {
        let job = {
            let mut j = jobs.lock();
            let k = j.keys().next().cloned();
            k.and_then(|k| j.remove(&k))
        };
        let Some(job) = job else {
            let (m, cv) = &*wake;
            let Ok(mut stop) = m.lock() else { return };
            if *stop {
                return;
            }
            if let Ok((g, _)) = cv.wait_timeout(stop, Duration::from_millis(200)) {
                stop = g;
                if *stop && jobs.lock().is_empty() {
                    return;
                }
            }
            continue;
        };
        let t0 = std::time::Instant::now();
        let revised = job.run(&cfg);
        metrics
            .stage_seconds
            .with_label_values(&["strategy"])
            .observe(t0.elapsed().as_secs_f64());
        if let Some(w) = revised.pit_window.clone() {
            let _ = back.send((revised.session_id.clone(), revised.chassis.clone(), w));
        }
        let car = revised.chassis.clone();
        let _ = rt.block_on(bus.publish(&car, Message::Insight(Arc::new(revised))));
    }
}
