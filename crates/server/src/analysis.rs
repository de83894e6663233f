//! The analysis stage: per session, a lap engine per car and the live race order; every
//! completed lap becomes a stored lap and an `insight_update` (lap, sectors, stress, gaps, and
//! the pit window once the strategy worker has one).
//!
//! ```text
//! bus:telemetry (group "analysis") ─► SessionAnalysis::push ─► LapOutput ─┬─► store (laps)
//!                                                                        ├─► bus:insights
//!                                                                        └─► strategy worker
//! strategy worker (latest job per car wins) ─► pit window ─► bus:insights (the lap again) + store
//! ```
//! The same [`SessionAnalysis`] cuts the laps of a stored session offline
//! ([`laps_from_store`]), so live and offline laps are the same laps.

use crate::metrics::Metrics;
use bus::{Bus, Message, Subscription};
use laps::{Gaps, LapEngine, LapEngineConfig, LapSummary, RaceOrder, RaceOrderConfig};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use store::{LapRow, Store};
use strategy::LapRecord;
use telemetry::Sample;

/// The tire model shipped in the binary (trained on simulated races; rebuilt with
/// `cargo run --release -p tires --example train_default -- --out data/models/tires-default.json`).
pub const DEFAULT_TIRE_MODEL_JSON: &str = include_str!("../../../data/models/tires-default.json");

/// Loads a tire model file, or the shipped default. The model lives as long as the process
/// (per-car trackers borrow it), so it is loaded once.
pub fn load_tire_model(
    path: Option<&std::path::Path>,
) -> anyhow::Result<&'static tires::TireModel> {
    let model = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading the tire model {}: {e}", p.display()))?;
            tires::TireModel::from_json(&text)
                .map_err(|e| anyhow::anyhow!("tire model {}: {e}", p.display()))?
        }
        None => tires::TireModel::from_json(DEFAULT_TIRE_MODEL_JSON)
            .map_err(|e| anyhow::anyhow!("the shipped tire model: {e}"))?,
    };
    Ok(Box::leak(Box::new(model)))
}

/// Track length and the two inner sector boundaries, m.
type Geometry = Option<(f64, [f64; 2])>;

/// The latest pit window per (session, car).
type Windows = Arc<Mutex<HashMap<(Arc<str>, Arc<str>), Value>>>;

/// Pending strategy jobs, the latest per (session, car).
type Jobs = Arc<Mutex<BTreeMap<(Arc<str>, Arc<str>), StrategyJob>>>;

/// Length and sector boundaries of a known circuit (one of the shipped tracks), by name.
pub fn track_geometry(track: Option<&str>) -> Geometry {
    static CACHE: Mutex<BTreeMap<String, Geometry>> = Mutex::new(BTreeMap::new());
    let name = track?.trim().to_ascii_lowercase();
    let mut c = CACHE.lock();
    if let Some(v) = c.get(&name) {
        return *v;
    }
    let v = sim::tracks::Track::by_name(&name)
        .ok()
        .map(|t| (t.length_m(), t.sector_boundaries_m()));
    c.insert(name, v);
    v
}

fn engine_config(track: Option<&str>) -> LapEngineConfig {
    let mut cfg = LapEngineConfig::default();
    if let Some((len, b)) = track_geometry(track) {
        cfg.track_length_m = Some(len);
        cfg.sector_bounds_m = b.to_vec();
    }
    cfg
}

/// What one completed lap produced.
#[derive(Debug, Clone)]
pub struct LapOutput {
    pub summary: LapSummary,
    pub gaps: Option<Gaps>,
    /// The car's best clean lap so far (this one included).
    pub best_lap_time_s: Option<f64>,
    /// The tire model's state after this lap (when a model is loaded).
    pub tire: Option<tires::TireState>,
    /// Version of the tire model behind `tire`.
    pub model_version: Option<String>,
}

impl LapOutput {
    /// The `insight_update` element for this lap, in the seed's shape with PitWall's fields
    /// beside it (`pit_window` is added by the strategy worker).
    pub fn insight(&self) -> Value {
        let s = &self.summary;
        let stress = s.per_sector_stress;
        let mut v = json!({
            "chassis": &*s.car_id,
            "track": s.track.as_deref(),
            "session_id": &*s.session_id,
            "lap": s.lap,
            "lap_time_s": s.lap_time_s,
            "best_lap_time_s": self.best_lap_time_s,
            "sector_times_s": s.sector_times_s,
            "validity": s.validity,
            "lap_tire_stress": stress.iter().sum::<f64>(),
            "perSectorStress": {"0": stress[0], "1": stress[1], "2": stress[2]},
            "tyre_age_laps": s.tyre_age_laps,
            "tyre_compound": s.tyre_compound.as_deref(),
            "tire_wear_source": s.tyre_wear_pct_end.map(|w| json!({"fl": w.fl, "fr": w.fr, "rl": w.rl, "rr": w.rr})),
            "features": s.features,
            "gaps": self.gaps,
            "pit_window": Value::Null,
        });
        if let Some(t) = &self.tire {
            let ok = matches!(t.status, tires::Status::Ok);
            let w = t.wear_pct;
            let iv = t.wear_interval80_pct;
            v["tire_wear"] = json!({"fl": w.fl, "fr": w.fr, "rl": w.rl, "rr": w.rr});
            v["tire_wear_interval80"] = json!({
                "fl": [iv.fl.lo, iv.fl.hi], "fr": [iv.fr.lo, iv.fr.hi],
                "rl": [iv.rl.lo, iv.rl.hi], "rr": [iv.rr.lo, iv.rr.hi],
            });
            v["predicted_loss_per_lap_seconds"] = json!(t.predicted_loss_per_lap_s);
            v["loss_interval80_s"] = json!(t.loss_interval80_s.map(|i| [i.lo, i.hi]));
            v["laps_until_0_5s_loss"] = json!(t.laps_until_0_5s_loss);
            v["laps_until_0_5s_interval80"] = json!(t.laps_until_interval80);
            v["recommended_pit_lap"] = json!(t.recommended_pit_lap);
            v["tire_pit_window"] = json!(t.pit_window);
            v["stint"] = json!(t.stint);
            v["explanation"] = json!(t.explanation);
            v["feature_scores"] = Value::Object(
                t.feature_scores
                    .iter()
                    .map(|f| (f.name.to_string(), json!(f.score)))
                    .collect(),
            );
            v["tire_status"] = serde_json::to_value(&t.status).unwrap_or(Value::Null);
            v["tire_ok"] = json!(ok);
            v["model"] = json!({"version": self.model_version, "known_track": t.known_track});
        }
        v
    }

    /// The stored row of this lap.
    pub fn row(&self, insight: Option<&Value>) -> LapRow {
        let s = &self.summary;
        LapRow {
            car_id: s.car_id.to_string(),
            lap: s.lap,
            lap_time_s: s.lap_time_s,
            sector_times_s: s.sector_times_s,
            out_lap: s.validity.out_lap,
            pit: s.validity.pit,
            safety_car: s.validity.safety_car,
            incomplete: s.validity.incomplete,
            position: self
                .gaps
                .as_ref()
                .map(|g| g.position)
                .or(s.position.map(u32::from)),
            t_start_s: s.t_start_s,
            t_end_s: s.t_end_s,
            tyre_age_laps: s.tyre_age_laps,
            tyre_compound: s.tyre_compound.as_deref().map(str::to_string),
            fuel_kg: s.fuel_kg,
            tyre_wear_pct: s.tyre_wear_pct_end,
            features_json: serde_json::to_string(&s.features).unwrap_or_else(|_| "{}".into()),
            gaps_json: self
                .gaps
                .as_ref()
                .and_then(|g| serde_json::to_string(g).ok()),
            insight_json: insight.map(|v| v.to_string()),
        }
    }

    /// The lap as the strategy model sees it.
    pub fn record(&self) -> Option<LapRecord> {
        lap_record(&self.row(None))
    }
}

/// A stored lap as the strategy model sees it (`None` for a lap without a time or lap 0).
pub fn lap_record(r: &LapRow) -> Option<LapRecord> {
    let t = r.lap_time_s.filter(|t| t.is_finite() && *t > 0.0)?;
    (r.lap >= 1).then(|| LapRecord {
        car_id: r.car_id.clone(),
        lap: r.lap,
        lap_time_s: t,
        // The in-lap carries the stop; the out-lap is flagged `pit` too by the lap engine.
        pit: r.pit && !r.out_lap,
        yellow: r.safety_car,
        position: r.position,
        race_time_s: Some(r.t_end_s),
    })
}

struct CarAnalysis {
    engine: LapEngine,
    best_lap_time_s: Option<f64>,
    tire: Option<tires::TireTracker<'static>>,
}

/// Lap engines, race order and driver coaching of one session.
pub struct SessionAnalysis {
    track: Option<Arc<str>>,
    order: RaceOrder,
    cars: HashMap<Arc<str>, CarAnalysis>,
    /// Drivers' baselines and alerts (live only; `None` when cutting stored laps).
    coach: Option<coach::Coach>,
    alerts: Vec<coach::CoachingAlert>,
    tire_model: Option<&'static tires::TireModel>,
    field: FieldPace,
}

/// Lap times of the whole field by lap number, to tell which laps were neutralised (telemetry
/// carries no safety-car flag): a lap number the field ran far slower (the rule of
/// [`strategy::infer_yellow_laps`]), and the restart lap after it, which starts at safety-car
/// pace behind a bunched field. Live it judges on the laps completed so far; on a stored session
/// ([`mark_safety_car_laps`]) on all of them.
#[derive(Default)]
struct FieldPace {
    by_lap: BTreeMap<u32, Vec<f64>>,
}

impl FieldPace {
    fn add(&mut self, lap: u32, lap_time_s: Option<f64>, pit: bool) {
        if let Some(t) = lap_time_s.filter(|t| lap >= 1 && t.is_finite() && *t > 0.0 && !pit) {
            self.by_lap.entry(lap).or_default().push(t);
        }
    }

    /// The lap numbers neutralised so far: behind the safety car, or the restart after it.
    fn neutralised_laps(&self) -> BTreeSet<u32> {
        let yellow = strategy::yellow_lap_numbers(&self.by_lap, YELLOW_FACTOR);
        yellow.iter().flat_map(|&l| [l, l + 1]).collect()
    }

    /// Whether lap `lap` was neutralised, as far as the field shows so far.
    fn neutralised(&self, lap: u32) -> bool {
        self.neutralised_laps().contains(&lap)
    }
}

impl SessionAnalysis {
    pub fn new(track: Option<Arc<str>>) -> SessionAnalysis {
        let order = RaceOrder::new(RaceOrderConfig {
            track_length_m: track_geometry(track.as_deref()).map(|g| g.0),
            ..RaceOrderConfig::default()
        });
        SessionAnalysis {
            track,
            order,
            cars: HashMap::new(),
            coach: None,
            alerts: Vec::new(),
            tire_model: None,
            field: FieldPace::default(),
        }
    }

    /// Predicts tire wear and loss at every completed lap with `model`.
    pub fn with_tire_model(mut self, model: Option<&'static tires::TireModel>) -> SessionAnalysis {
        self.tire_model = model;
        self
    }

    /// The same, with each driver's baseline learnt and checked as the samples come.
    pub fn with_coach(track: Option<Arc<str>>) -> SessionAnalysis {
        let mut a = SessionAnalysis::new(track);
        a.coach = Some(coach::Coach::new(coach::CoachConfig::default()));
        a
    }

    /// Coaching alerts raised since the last call.
    pub fn take_alerts(&mut self) -> Vec<coach::CoachingAlert> {
        std::mem::take(&mut self.alerts)
    }

    /// A driver's current profile (live sessions).
    pub fn profile(&self, car: &str) -> Option<coach::DriverProfile> {
        self.coach.as_ref()?.profile(car)
    }

    /// Feeds one sample; returns the lap it closed, if any.
    pub fn push(&mut self, s: &Sample) -> Option<LapOutput> {
        self.order.update(s);
        if let Some(c) = self.coach.as_mut() {
            self.alerts.extend(c.push(s));
        }
        let track = self.track.clone();
        let car = self
            .cars
            .entry(s.car_id.clone())
            .or_insert_with(|| CarAnalysis {
                engine: LapEngine::new(engine_config(track.as_deref().or(s.track.as_deref()))),
                best_lap_time_s: None,
                tire: None,
            });
        let summary = car.engine.push(s)?;
        Some(self.finish(summary))
    }

    fn finish(&mut self, summary: LapSummary) -> LapOutput {
        // The coach closes the car's lap where its lap engine did, and judges it the same.
        if let Some(c) = self.coach.as_mut() {
            self.alerts.extend(c.on_lap(&summary));
        }
        let gaps = self.order.gaps(&summary.car_id);
        if let Some(car) = self.cars.get_mut(&summary.car_id) {
            if summary.validity.is_clean() {
                if let Some(t) = summary.lap_time_s {
                    car.best_lap_time_s = Some(car.best_lap_time_s.map_or(t, |b| b.min(t)));
                }
            }
        }
        let model = self.tire_model;
        self.field
            .add(summary.lap, summary.lap_time_s, summary.validity.pit);
        let neutralised = model.is_some() && self.field.neutralised(summary.lap);
        let (best_lap_time_s, tire) = match self.cars.get_mut(&summary.car_id) {
            Some(c) => {
                let tire = model.map(|m| {
                    let t = c.tire.get_or_insert_with(|| tires::TireTracker::new(m));
                    let mut row = tires::LapRow::from_summary(&summary);
                    row.validity.safety_car |= neutralised;
                    t.on_lap(&row)
                });
                (c.best_lap_time_s, tire)
            }
            None => (None, None),
        };
        LapOutput {
            summary,
            gaps,
            best_lap_time_s,
            tire,
            model_version: model.map(|m| m.model_version.clone()),
        }
    }

    /// Closes every car's open lap (end of a stored session).
    pub fn flush(&mut self) -> Vec<LapOutput> {
        let mut open = Vec::new();
        for c in self.cars.values_mut() {
            if let Some(s) = c.engine.flush() {
                open.push(s);
            }
        }
        open.into_iter().map(|s| self.finish(s)).collect()
    }
}

/// Cuts the laps of a stored session from its samples (cars one after another, so gaps are
/// not computed), with the open last laps closed.
pub fn laps_from_store(store: &Store, session: &str) -> store::Result<Vec<LapOutput>> {
    let info = store.session(session)?;
    let mut a = SessionAnalysis::new(info.track.as_deref().map(Arc::from));
    let mut out = Vec::new();
    store.for_each_sample(session, None, |s| {
        if let Some(l) = a.push(&s) {
            out.push(l);
        }
    })?;
    out.extend(a.flush());
    out.sort_by(|x, y| (&x.summary.car_id, x.summary.lap).cmp(&(&y.summary.car_id, y.summary.lap)));
    Ok(out)
}

/// A lap number whose field median is this much slower than the race's median lap was run
/// under a full-course yellow (safety cars run at about 60 % pace, i.e. 1.6x the lap time).
pub const YELLOW_FACTOR: f64 = 1.2;

/// Marks the laps the whole field ran far slower (a safety car: telemetry carries no flag)
/// as safety-car laps, so that no pace baseline counts them, and the restart lap after each
/// safety-car period too: it starts at safety-car pace behind a bunched field, so it is not a
/// green racing lap (the same laps a flag set for "any moment of the lap behind the safety car"
/// marks, as in the simulator's training races).
pub fn mark_safety_car_laps(laps: &mut [LapOutput]) {
    let mut field = FieldPace::default();
    for l in laps.iter() {
        field.add(l.summary.lap, l.summary.lap_time_s, l.summary.validity.pit);
    }
    let neutralised = field.neutralised_laps();
    for l in laps.iter_mut() {
        l.summary.validity.safety_car |= neutralised.contains(&l.summary.lap);
    }
}

/// Where a session's lap records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LapSource {
    /// The official timing file (GR Cup import).
    OfficialTiming,
    /// Laps the analysis stage stored while the session streamed.
    StoredLaps,
    /// Laps cut now from the stored samples.
    Samples,
}

/// The lap records of a stored session for the strategy model: the official timing when the
/// session has it, else the laps stored live, else laps cut from its samples.
pub fn session_lap_records(
    store: &Store,
    session: &str,
) -> store::Result<(Vec<LapRecord>, LapSource)> {
    let official = store.official_laps(session, None)?;
    if !official.is_empty() {
        let recs = official
            .iter()
            .filter(|l| l.lap >= 1 && l.lap_time_s.is_finite() && l.lap_time_s > 0.0)
            .map(|l| LapRecord {
                car_id: l.car_number.clone(),
                lap: l.lap,
                lap_time_s: l.lap_time_s,
                pit: l.pit_in,
                yellow: l.flag == "FCY",
                position: None,
                race_time_s: l.elapsed_s,
            })
            .collect();
        return Ok((recs, LapSource::OfficialTiming));
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
            cut.iter().filter_map(LapOutput::record).collect(),
            LapSource::Samples,
        )
    };
    prepare_records(&mut recs);
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

/// Where a race has no stop to learn from, the pit-lane loss of its venue (the official track
/// map's lane time less the bypassed track at the race's pace; `tracks::Venue::pit_loss_s`),
/// with the SC and VSC losses kept in the same proportion. Returns whether it was applied.
pub fn venue_pit_prior(
    params: &mut strategy::RaceParams,
    fitted: &strategy::FittedRace,
    track: Option<&str>,
) -> bool {
    if fitted.pit_stop_cost_s.is_some() {
        return false;
    }
    let Some(loss) = track
        .and_then(tracks::venue)
        .and_then(|v| v.pit_loss_s(params.track.base_lap_time_s))
    else {
        return false;
    };
    let green = params.pit.lane_loss_green_s.max(1e-9);
    params.pit.lane_loss_sc_s *= loss / green;
    params.pit.lane_loss_vsc_s *= loss / green;
    params.pit.lane_loss_green_s = loss;
    true
}

/// Readies telemetry-cut lap records for the strategy model: telemetry carries no flag, so a
/// lap the whole field ran far slower was neutralised; positions come from race time.
fn prepare_records(recs: &mut [LapRecord]) {
    strategy::infer_yellow_laps(recs, YELLOW_FACTOR);
    positions_from_race_time(recs);
}

/// Sets each lap's position from the order in which the cars finished that lap (race time
/// at its end): a source's own position field is sampled at an arbitrary instant of the lap.
pub fn positions_from_race_time(recs: &mut [LapRecord]) {
    let mut by_lap: BTreeMap<u32, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, r) in recs.iter().enumerate() {
        if let Some(t) = r.race_time_s.filter(|t| t.is_finite()) {
            by_lap.entry(r.lap).or_default().push((t, i));
        }
    }
    for v in by_lap.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (k, &(_, i)) in v.iter().enumerate() {
            if let Some(r) = recs.get_mut(i) {
                r.position = Some(k as u32 + 1);
            }
        }
    }
}

/// The race length of a stored session: the ONE answer for `pitwall strategy`, `strategy
/// --backtest`, `pitwall sessions` and `POST /api/strategy/simulate`. The session's `race`
/// document's `total_laps` (written by `sim` and `demo`), else the last lap of `records` (the
/// session's lap records, [`session_lap_records`]; pass `&[]` when they are not at hand), else
/// the last lap stored (official timing, else the laps the engine cut). `None`: no laps at all.
///
/// A session still streaming has no last lap yet: the live pit window uses the race document
/// alone ([`race_doc_total_laps`]).
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

/// The `race` document's `total_laps` (written by the simulator and the demo), if any.
pub fn race_doc_total_laps(store: &Store, session: &str) -> Option<u32> {
    let doc = store.session_meta(session, "race").ok()??;
    let v: Value = serde_json::from_str(&doc).ok()?;
    v.get("total_laps")?.as_u64().map(|n| n as u32)
}

/// Settings of the live strategy runs.
#[derive(Debug, Clone)]
pub struct LiveStrategy {
    pub screen_iterations: u32,
    pub seed: u64,
}

struct StrategyJob {
    session: Arc<str>,
    car: Arc<str>,
    total_laps: u32,
    records: Vec<LapRecord>,
    insight: Value,
    row: LapRow,
    track: Option<Arc<str>>,
}

/// The pit window of one car as `insight_update` carries it.
pub fn pit_window_json(report: &strategy::Report, as_of_lap: u32) -> Value {
    let rec = &report.recommendation;
    let plans: Vec<Value> = report
        .outcomes
        .iter()
        .take(12)
        .map(|o| {
            json!({
                "name": o.label,
                "pit_laps": o.strategy.stops.iter().map(|s| s.lap).collect::<Vec<_>>(),
                "expected_position": o.expected_position,
                "win_probability": o.win_probability,
                "p5_position": o.p5_position,
                "interval95": o.interval95,
                "position_distribution": o.finish_position_distribution,
                "diff_vs_best": o.diff_vs_best,
                "se_diff_vs_best": o.se_diff_vs_best,
            })
        })
        .collect();
    json!({
        "as_of_lap": as_of_lap,
        "open_lap": rec.window.map(|w| w.0),
        "close_lap": rec.window.map(|w| w.1),
        "text": rec.text,
        "evidence": rec.evidence,
        "best_plan": report.outcomes.first().map(|o| o.label.clone()),
        "races_simulated": report.races_simulated,
        "plans": plans,
    })
}

/// The live strategy call for one car at its latest lap: the race as it stands (fitted from the
/// session's laps so far) and every plan from here.
fn live_window(job: &StrategyJob, cfg: &LiveStrategy) -> Result<Value, String> {
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
    let mut records = job.records.clone();
    prepare_records(&mut records);
    let (params, state, _) =
        strategy::race_at_lap(&records, at_lap, job.total_laps).map_err(|e| e.to_string())?;
    let adaptive = strategy::Adaptive {
        screen_iterations: cfg.screen_iterations,
        ..strategy::Adaptive::default()
    };
    let report = strategy::recommend(
        &params,
        &state,
        &job.car,
        &strategy::PlanSpace::default(),
        &strategy::McOptions {
            iterations: cfg.screen_iterations,
            seed: cfg.seed,
        },
        Some(&adaptive),
    )
    .map_err(|e| e.to_string())?;
    Ok(pit_window_json(&report, at_lap))
}

/// Runs the analysis stage until the bus closes. Blocking: run it on a thread of its own.
pub fn run(
    mut sub: Box<dyn Subscription>,
    bus: Arc<dyn Bus>,
    mut store: Store,
    rt: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    strategy_cfg: LiveStrategy,
    tire_model: Option<&'static tires::TireModel>,
) {
    let mut sessions: HashMap<Arc<str>, SessionAnalysis> = HashMap::new();
    let mut records: HashMap<Arc<str>, Vec<LapRecord>> = HashMap::new();
    let mut total_laps: HashMap<Arc<str>, Option<u32>> = HashMap::new();
    // Latest job per (session, car): the worker takes whatever is newest.
    let jobs: Jobs = Arc::new(Mutex::new(BTreeMap::new()));
    // The latest pit window per (session, car): every insight carries one (with `as_of_lap`)
    // while the worker computes the window of the new lap.
    let windows: Windows = Arc::new(Mutex::new(HashMap::new()));
    let wake = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let worker = {
        let jobs = jobs.clone();
        let windows = windows.clone();
        let wake = wake.clone();
        let bus = bus.clone();
        let rt = rt.clone();
        let data_dir = store.path().parent().map(|p| p.to_path_buf());
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("strategy-live".into())
            .spawn(move || {
                let mut store = data_dir.and_then(|d| Store::open(&d).ok());
                loop {
                    let job = {
                        let mut j = jobs.lock();
                        let k = j.keys().next().cloned();
                        k.and_then(|k| j.remove(&k))
                    };
                    let Some(mut job) = job else {
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
                    let window = match live_window(&job, &strategy_cfg) {
                        Ok(w) => w,
                        Err(reason) => json!({"status": "not_enough_data", "reason": reason}),
                    };
                    metrics
                        .stage_seconds
                        .with_label_values(&["strategy"])
                        .observe(t0.elapsed().as_secs_f64());
                    if window.get("plans").is_some() {
                        windows
                            .lock()
                            .insert((job.session.clone(), job.car.clone()), window.clone());
                    }
                    job.insight["pit_window"] = window;
                    let row = LapRow {
                        insight_json: Some(job.insight.to_string()),
                        ..job.row.clone()
                    };
                    if let Some(st) = store.as_mut() {
                        if let Err(e) = st.write_laps(&job.session, job.track.as_deref(), &[row]) {
                            tracing::warn!(error = %e, "storing a lap's pit window failed");
                        }
                    }
                    let msg = Message::Insight(Arc::new(job.insight));
                    let _ = rt.block_on(bus.publish(&job.car, msg));
                }
            })
    };

    while let Some(d) = rt.block_on(sub.next()) {
        let Message::Telemetry(batch) = &d.message else {
            let _ = rt.block_on(sub.ack(&d));
            continue;
        };
        let t0 = std::time::Instant::now();
        let mut done: Vec<(Arc<str>, Option<Arc<str>>, LapOutput)> = Vec::new();
        for s in &batch.samples {
            let a = sessions.entry(s.session_id.clone()).or_insert_with(|| {
                SessionAnalysis::with_coach(s.track.clone()).with_tire_model(tire_model)
            });
            if let Some(l) = a.push(s) {
                done.push((s.session_id.clone(), s.track.clone(), l));
            }
        }
        let mut alerts = Vec::new();
        for a in sessions.values_mut() {
            alerts.extend(a.take_alerts());
        }
        if !alerts.is_empty() {
            let rows: Vec<store::AlertRow> = alerts
                .iter()
                .map(|al| store::AlertRow {
                    session_id: al.session_id.clone(),
                    car_id: al.car_id.clone(),
                    lap: al.lap,
                    t_s: al.t_s,
                    corner: al.corner,
                    metric: al.metric.name().to_string(),
                    json: serde_json::to_string(al).unwrap_or_default(),
                })
                .collect();
            if let Err(e) = store.write_alerts(&rows) {
                tracing::warn!(error = %e, "storing coaching alerts failed");
            }
            for al in alerts {
                metrics.coaching_alerts.inc();
                let mut v = serde_json::to_value(&al).unwrap_or(Value::Null);
                v["chassis"] = Value::from(al.car_id.clone());
                let _ = rt.block_on(bus.publish(&al.car_id, Message::Alert(Arc::new(v))));
            }
        }
        metrics
            .stage_seconds
            .with_label_values(&["laps"])
            .observe(t0.elapsed().as_secs_f64());
        for (session, track, lap) in done {
            let total = *total_laps
                .entry(session.clone())
                .or_insert_with(|| race_doc_total_laps(&store, &session));
            let total = match total {
                Some(t) => Some(t),
                None => {
                    // The race document may have been written after the first lap.
                    let t = race_doc_total_laps(&store, &session);
                    total_laps.insert(session.clone(), t);
                    t
                }
            };
            let mut insight = lap.insight();
            // The tyre model does not know the race length: a pit lap after the flag means the
            // tyres last to the end.
            if let (Some(t), Some(p)) = (total, insight["recommended_pit_lap"].as_u64()) {
                if p > u64::from(t) {
                    insight["recommended_pit_lap"] = Value::Null;
                    insight["tire_pit_note"] = json!(format!(
                        "the tyres last to the flag (lap {t}): no stop needed for them"
                    ));
                }
            }
            insight["pit_window"] = windows
                .lock()
                .get(&(session.clone(), lap.summary.car_id.clone()))
                .cloned()
                .unwrap_or_else(|| json!({"status": "computing", "reason": "the first window of this car is being simulated"}));
            let row = lap.row(Some(&insight));
            if let Err(e) = store.write_laps(&session, track.as_deref(), std::slice::from_ref(&row))
            {
                tracing::warn!(error = %e, "storing a lap failed");
            }
            metrics.laps_completed.inc();
            if let Some(p) = sessions
                .get(&session)
                .and_then(|a| a.profile(&lap.summary.car_id))
            {
                if let Ok(j) = serde_json::to_string(&p) {
                    let tr = if p.track.is_empty() {
                        track.as_deref().unwrap_or("")
                    } else {
                        &p.track
                    };
                    if let Err(e) = store.write_profile(&p.car_id, tr, &session, &j) {
                        tracing::warn!(error = %e, "storing a driver profile failed");
                    }
                }
            }
            let recs = records.entry(session.clone()).or_default();
            if let Some(r) = lap.record() {
                recs.push(r);
            }
            let car = lap.summary.car_id.clone();
            let msg = Message::Insight(Arc::new(insight.clone()));
            let _ = rt.block_on(bus.publish(&car, msg));
            if let Some(total_laps) = total {
                jobs.lock().insert(
                    (session.clone(), car.clone()),
                    StrategyJob {
                        session: session.clone(),
                        car,
                        total_laps,
                        records: recs.clone(),
                        insight,
                        row,
                        track,
                    },
                );
                wake.1.notify_one();
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

#[cfg(test)]
mod tests {
    use super::FieldPace;

    #[test]
    fn field_pace_flags_safety_car_laps_and_the_restart_as_they_complete() {
        let mut f = FieldPace::default();
        // Laps 1-4 green at ~100 s for three cars.
        for lap in 1..=4 {
            for car in 0..3 {
                f.add(lap, Some(100.0 + car as f64 * 0.3), false);
            }
            assert!(!f.neutralised(lap), "lap {lap}");
        }
        // Lap 5 behind the safety car: the leader's lap alone already tells.
        f.add(5, Some(165.0), false);
        assert!(f.neutralised(5));
        f.add(5, Some(166.0), false);
        f.add(5, Some(164.0), false);
        // Lap 6: the restart (a little slow), then lap 7 green again.
        f.add(6, Some(102.0), false);
        assert!(f.neutralised(6), "the restart lap is not a green lap");
        f.add(7, Some(100.1), false);
        assert!(!f.neutralised(7));
        // A pit lap or a lap without a time says nothing about the field.
        f.add(8, Some(400.0), true);
        f.add(8, None, false);
        assert!(!f.neutralised(8));
    }

    #[test]
    fn field_pace_needs_three_lap_numbers_before_it_judges() {
        let mut f = FieldPace::default();
        f.add(1, Some(100.0), false);
        f.add(2, Some(300.0), false);
        assert!(!f.neutralised(2));
    }
}
