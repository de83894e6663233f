//! Stored sessions and their analysis: the glue between `store` and `analysis`. A stored
//! session's analysis (one insight per car and lap, alerts, profiles, with the analysis
//! version) is computed at the end of `import`, `sim` and `replay`, or by `pitwall analyse`,
//! and served by the same endpoints as a live one.

use analysis::messages::ProfileUpdate;
use analysis::strategy::{self, LapRecord};
use analysis::{
    Analysed, AnalysisOptions, CoachingAlert, Insight, LapSource, OfflineAnalysis, WindowSettings,
    ANALYSIS_VERSION,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::{LapRow, Store};

/// The `session_meta` kind of a session's analysis record ([`AnalysisRecord`]).
pub const META_ANALYSIS: &str = "analysis";
/// The `session_meta` kind of a simulated or demo race's document.
pub const META_RACE: &str = "race";

/// What the stored analysis of a session is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalysisRecord {
    /// [`analysis::ANALYSIS_VERSION`] of the analysis that made it.
    pub version: u32,
    pub samples: u64,
    pub laps: usize,
    pub alerts: usize,
    pub profiles: usize,
    pub total_laps: Option<u32>,
    /// Whether the pit windows were computed.
    pub windows: bool,
    pub seconds: f64,
}

/// The stored row of an insight.
pub fn lap_row(i: &Insight) -> LapRow {
    LapRow {
        car_id: i.chassis.clone(),
        lap: i.lap,
        lap_time_s: i.lap_time_s,
        sector_times_s: i.sector_times_s,
        out_lap: i.validity.out_lap,
        pit: i.validity.pit,
        safety_car: i.validity.safety_car,
        incomplete: i.validity.incomplete,
        position: i.position,
        t_start_s: i.t_start_s,
        t_end_s: i.t_end_s,
        tyre_age_laps: i.tyre_age_laps,
        tyre_compound: i.tyre_compound.clone(),
        fuel_kg: i.fuel_kg,
        tyre_wear_pct: i.tire_wear_source.map(|w| telemetry::Corners {
            fl: w.fl,
            fr: w.fr,
            rl: w.rl,
            rr: w.rr,
        }),
        features_json: serde_json::to_string(&i.features).unwrap_or_else(|_| "{}".into()),
        gaps_json: i.gaps.as_ref().and_then(|g| serde_json::to_string(g).ok()),
        insight_json: serde_json::to_string(i).ok(),
    }
}

/// The insight stored with a lap (`None` for a lap stored without one).
pub fn insight_of_row(r: &LapRow) -> Option<Insight> {
    serde_json::from_str(r.insight_json.as_deref()?).ok()
}

/// The stored row of an alert.
pub fn alert_row(a: &CoachingAlert) -> store::AlertRow {
    store::AlertRow {
        session_id: a.session_id.clone(),
        car_id: a.car_id.clone(),
        lap: a.lap,
        t_s: a.t_s,
        corner: a.corner,
        metric: a.metric.name().to_string(),
        json: serde_json::to_string(a).unwrap_or_default(),
    }
}

/// Stores a profile update.
pub fn write_profile(store: &mut Store, u: &ProfileUpdate) -> store::Result<()> {
    let j = serde_json::to_string(&u.profile).unwrap_or_default();
    store.write_profile(&u.profile.car_id, &u.track, &u.session_id, &j)
}

/// A stored lap as the strategy model sees it (`None` for a lap without a time or lap 0).
pub fn lap_record(r: &LapRow) -> Option<LapRecord> {
    let t = r.lap_time_s.filter(|t| t.is_finite() && *t > 0.0)?;
    (r.lap >= 1).then(|| LapRecord {
        car_id: r.car_id.clone(),
        lap: r.lap,
        lap_time_s: t,
        pit: r.pit && !r.out_lap,
        yellow: r.safety_car,
        position: r.position,
        race_time_s: Some(r.t_end_s),
    })
}

/// The version of a session's stored analysis (`None`: never analysed).
pub fn analysis_record(store: &Store, session: &str) -> Option<AnalysisRecord> {
    let j = store.session_meta(session, META_ANALYSIS).ok()??;
    serde_json::from_str(&j).ok()
}

/// Whether a session needs analysing: it has samples (or only timing) and no analysis of
/// this version.
pub fn needs_analysis(store: &Store, info: &store::SessionInfo) -> bool {
    (info.samples > 0 || is_timing_only(info))
        && analysis_record(store, &info.id).is_none_or(|r| r.version < ANALYSIS_VERSION)
}

/// The session events stored with a session (its race document).
pub fn session_events(store: &Store, session: &str) -> Vec<analysis::SessionEvent> {
    store
        .session_meta(session, META_RACE)
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .map(|doc| analysis::SessionEvent::Race {
            session_id: session.to_string(),
            doc,
        })
        .into_iter()
        .collect()
}

/// Analyses a stored session from its samples (in time order, all cars, as they streamed);
/// a session with only timing, from its official laps ([`analysis::analyse_timing`]).
/// `progress` gets (phase, done, total): phase `samples` then `windows`.
pub fn analyse_stored(
    store: &Store,
    session: &str,
    opts: AnalysisOptions,
    windows: Option<WindowSettings>,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> store::Result<Analysed> {
    let info = store.session(session)?;
    if is_timing_only(&info) {
        let timed = timed_laps(store, session)?;
        let total = session_total_laps(store, session, &[]);
        return Ok(analysis::analyse_timing(
            session,
            info.track.as_deref(),
            &timed,
            total,
            windows,
            &|d, t| progress("windows", d as u64, t as u64),
        ));
    }
    let mut a = OfflineAnalysis::new(
        Arc::from(session),
        info.track.as_deref().map(Arc::from),
        opts,
    );
    for e in session_events(store, session) {
        a.on_event(&e);
    }
    let total = info.samples;
    let mut n = 0u64;
    store.for_each_sample_by_time(session, |s| {
        a.push(&s);
        n += 1;
        if n.is_multiple_of(65_536) {
            progress("samples", n, total);
        }
    })?;
    progress("samples", n, total);
    Ok(a.finish(windows, &|d, t| progress("windows", d as u64, t as u64)))
}

/// Stores an analysis (laps with their insights, alerts, profiles) and its record.
pub fn write_analysed(
    store: &mut Store,
    session: &str,
    a: &Analysed,
    windows: bool,
    seconds: f64,
) -> store::Result<AnalysisRecord> {
    let track = store.session(session)?.track;
    let rows: Vec<LapRow> = a.insights.iter().map(lap_row).collect();
    store.write_laps(session, track.as_deref(), &rows)?;
    let alerts: Vec<store::AlertRow> = a.alerts.iter().map(alert_row).collect();
    store.write_alerts(&alerts)?;
    for p in &a.profiles {
        let track = if p.track.is_empty() {
            track.clone().unwrap_or_else(|| session.to_string())
        } else {
            p.track.clone()
        };
        write_profile(
            store,
            &ProfileUpdate {
                session_id: session.to_string(),
                track,
                profile: p.clone(),
            },
        )?;
    }
    let record = AnalysisRecord {
        version: ANALYSIS_VERSION,
        samples: a.samples,
        laps: a.insights.len(),
        alerts: a.alerts.len(),
        profiles: a.profiles.len(),
        total_laps: a.total_laps,
        windows,
        seconds,
    };
    let j = serde_json::to_string(&record).unwrap_or_default();
    store.set_session_meta(session, META_ANALYSIS, &j)?;
    Ok(record)
}

/// The insights of a stored session without an analysis stored: cut now from its samples
/// (no pit windows), as the analysis would.
pub fn laps_from_store(store: &Store, session: &str) -> store::Result<Vec<Insight>> {
    let a = analyse_stored(
        store,
        session,
        AnalysisOptions::default(),
        None,
        &|_, _, _| {},
    )?;
    Ok(a.insights)
}

/// Official timing rows as the analysis reads them: a lap whose flag at the line is not green
/// ([`analysis::flag_is_green`]) is neutralised.
pub fn timed_of_official(rows: &[store::OfficialLapRow]) -> Vec<analysis::TimedLap> {
    rows.iter()
        .map(|l| analysis::TimedLap {
            car_id: l.car_number.clone(),
            lap: l.lap,
            lap_time_s: l.lap_time_s,
            pit_in: l.pit_in,
            yellow: !analysis::flag_is_green(&l.flag),
            elapsed_s: l.elapsed_s,
            sector_times_s: [l.s1_s, l.s2_s, l.s3_s],
        })
        .collect()
}

/// The official timing of a stored session as the analysis reads it (empty without a timing
/// file).
pub fn timed_laps(store: &Store, session: &str) -> store::Result<Vec<analysis::TimedLap>> {
    Ok(timed_of_official(&store.official_laps(session, None)?))
}

/// Whether a session has only timing (official laps, no telemetry): its analysis is the
/// timing-only one ([`analysis::analyse_timing`]).
pub fn is_timing_only(info: &store::SessionInfo) -> bool {
    info.samples == 0 && info.official_laps > 0
}

/// The lap records of a stored session for the strategy model: the official timing when the
/// session has it, else its stored laps (its analysis), else laps cut from its samples.
pub fn session_lap_records(
    store: &Store,
    session: &str,
) -> store::Result<(Vec<LapRecord>, LapSource)> {
    let timed = timed_laps(store, session)?;
    if !timed.is_empty() {
        return Ok((
            analysis::records_of_timing(&timed),
            LapSource::OfficialTiming,
        ));
    }
    let stored = store.laps(session, None)?;
    let (mut recs, source) = if !stored.is_empty() {
        (
            stored.iter().filter_map(lap_record).collect::<Vec<_>>(),
            LapSource::StoredLaps,
        )
    } else {
        let cut = laps_from_store(store, session)?;
        (
            cut.iter().filter_map(analysis::lap_record_of).collect(),
            LapSource::Samples,
        )
    };
    analysis::prepare_records(&mut recs);
    Ok((recs, source))
}

/// The real classification of a stored session for back-tests ([`Store::classification`]:
/// official results preferred over provisional); `None` without results (the back-test then
/// takes the timing's order). Cars without a position (not started) are left out.
pub fn session_classification(
    store: &Store,
    session: &str,
) -> store::Result<Option<(Vec<strategy::Classified>, strategy::TruthSource)>> {
    let Some(cars) = store.classification(session)? else {
        return Ok(None);
    };
    let source = if cars.iter().any(|c| c.provisional) {
        strategy::TruthSource::ProvisionalResults
    } else {
        strategy::TruthSource::OfficialResults
    };
    let out: Vec<strategy::Classified> = cars
        .into_iter()
        .filter_map(|c| {
            Some(strategy::Classified {
                position: c.position?,
                car_id: c.car_id,
            })
        })
        .collect();
    Ok((!out.is_empty()).then_some((out, source)))
}

/// The race length of a stored session: the ONE answer for `pitwall strategy`, `strategy
/// --backtest`, `pitwall sessions` and `POST /api/strategy/simulate`. The session's race
/// document's `total_laps` (written by `sim` and `demo`), else the last lap of `records` (the
/// session's lap records, [`session_lap_records`]; pass `&[]` when they are not at hand), else
/// the last lap stored (official timing, else the analysis' laps). `None`: no laps at all.
pub fn session_total_laps(store: &Store, session: &str, records: &[LapRecord]) -> Option<u32> {
    if let Some(n) = race_doc_total_laps(store, session) {
        return Some(n);
    }
    if let Some(n) = records.iter().map(|r| r.lap).max() {
        return Some(n);
    }
    let official = store.official_laps(session, None).ok()?;
    if let Some(n) = official.iter().map(|l| l.lap).max() {
        return Some(n);
    }
    store.laps(session, None).ok()?.iter().map(|l| l.lap).max()
}

/// The race document's `total_laps` (written by the simulator and the demo), if any.
pub fn race_doc_total_laps(store: &Store, session: &str) -> Option<u32> {
    session_events(store, session)
        .iter()
        .find_map(analysis::SessionEvent::total_laps)
}

/// What a strategy call resolves to before it runs.
pub enum StrategyQuestion {
    Session {
        session: String,
        car: String,
        lap: Option<u32>,
        total_laps: Option<u32>,
        iterations: u32,
        seed: u64,
    },
    Scenario(Box<strategy::Scenario>),
}

/// Why a strategy call failed.
#[derive(Debug, thiserror::Error)]
pub enum StrategyFailure {
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Model(#[from] strategy::StrategyError),
    #[error("{0}: {1}")]
    Field(&'static str, String),
}

/// A strategy call's answer.
#[derive(Debug, Clone)]
pub struct StrategyAnswer {
    pub report: strategy::Report,
    /// Where the laps came from (`None` for a scenario).
    pub source: Option<LapSource>,
    /// Green-flag pit-lane loss the simulation used, s (`None` for a scenario).
    pub pit_loss_s: Option<f64>,
}

/// Runs a strategy question against the store (blocking: call off the async threads). The
/// store is locked only to read the stored laps (no re-cutting), not while simulating.
pub fn run_strategy(
    store: &parking_lot::Mutex<Store>,
    q: StrategyQuestion,
) -> Result<StrategyAnswer, StrategyFailure> {
    match q {
        StrategyQuestion::Scenario(sc) => Ok(StrategyAnswer {
            report: strategy::evaluate(&sc)?,
            source: None,
            pit_loss_s: None,
        }),
        StrategyQuestion::Session {
            session,
            car,
            lap,
            total_laps,
            iterations,
            seed,
        } => {
            let (records, source, session_total, track) = {
                let store = store.lock();
                let (records, source) = session_lap_records(&store, &session)?;
                let total = session_total_laps(&store, &session, &records);
                let track = store.session(&session).ok().and_then(|s| s.track);
                (records, source, total, track)
            };
            let last = records.iter().map(|r| r.lap).max().unwrap_or(0);
            let total = total_laps.or(session_total).unwrap_or(last);
            if !records.iter().any(|r| r.car_id == car) {
                let mut cars: Vec<&str> = records.iter().map(|r| r.car_id.as_str()).collect();
                cars.sort_unstable();
                cars.dedup();
                return Err(StrategyFailure::Field(
                    "car",
                    format!(
                        "no car {car:?} with laps in session {session:?}; cars: {}",
                        cars.join(", ")
                    ),
                ));
            }
            let at = lap.unwrap_or(last);
            let (mut params, state, fitted) = strategy::race_at_lap(&records, at, total)?;
            analysis::venue_pit_prior(&mut params, &fitted, track.as_deref());
            if let Ok(i) = state.car_index(&car) {
                if state.cars.get(i).is_some_and(|c| c.retired) {
                    return Err(StrategyFailure::Field(
                        "car",
                        format!("car {car:?} had retired by lap {at}: nothing to decide"),
                    ));
                }
            }
            let space = strategy::PlanSpace {
                two_stop: true,
                ..strategy::PlanSpace::default()
            };
            let report = strategy::recommend(
                &params,
                &state,
                &car,
                &space,
                &strategy::McOptions { iterations, seed },
                None,
            )?;
            Ok(StrategyAnswer {
                report,
                source: Some(source),
                pit_loss_s: Some(params.pit.lane_loss_green_s),
            })
        }
    }
}

/// The laps of a stored session as the lap engines cut them (for tyre-model training and
/// evaluation: the whole `LapSummary`, sector features included).
pub fn lap_summaries(
    store: &Store,
    session: &str,
) -> store::Result<Vec<analysis::laps::LapSummary>> {
    let info = store.session(session)?;
    let mut samples = Vec::new();
    store.for_each_sample(session, None, |s| samples.push(s))?;
    Ok(analysis::cut_laps(info.track.as_deref(), samples))
}
