//! The analysis API: laps of a session, the strategy simulator, the dashboard's first paint.
//! Thin handlers: the work is in `analysis` and the pure crates, run off the async threads.

use crate::analysis::{self, LapSource};
use crate::http::{error, ErrorBody};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Most iterations per plan one HTTP call may ask for.
pub const MAX_HTTP_ITERATIONS: u32 = 20_000;

fn store_error(e: store::StoreError) -> Response {
    match e {
        store::StoreError::NoSession(id) => error(
            StatusCode::NOT_FOUND,
            "no_session",
            Some("session"),
            format!("no stored session {id:?}; GET /api/sessions lists them"),
        ),
        e => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
            e.to_string(),
        ),
    }
}

fn join_error(e: tokio::task::JoinError) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        format!("the computation failed: {e}"),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LapsQuery {
    /// Only this car.
    pub car: Option<String>,
}

/// The laps of a stored session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LapsResponse {
    pub session_id: String,
    /// `stored_laps` (cut live by the analysis stage) or `samples` (cut now from the stored
    /// samples, for sessions that were imported rather than streamed).
    pub source: String,
    /// Lap, lap time, sector times, validity, position, tyres, the 20 features, gaps and the
    /// insight sent for the lap.
    #[schema(value_type = Vec<Object>)]
    pub laps: Vec<Value>,
    /// Laps of the official timing file, when one was imported.
    #[schema(value_type = Vec<Object>)]
    pub official_laps: Vec<Value>,
}

fn lap_json(r: &store::LapRow) -> Value {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "car_id": r.car_id,
        "lap": r.lap,
        "lap_time_s": r.lap_time_s,
        "sector_times_s": r.sector_times_s,
        "validity": {"out_lap": r.out_lap, "pit": r.pit, "safety_car": r.safety_car, "incomplete": r.incomplete},
        "position": r.position,
        "t_start_s": r.t_start_s,
        "t_end_s": r.t_end_s,
        "tyre_age_laps": r.tyre_age_laps,
        "tyre_compound": r.tyre_compound,
        "fuel_kg": r.fuel_kg,
        "tyre_wear_pct": r.tyre_wear_pct,
        "features": serde_json::from_str::<Value>(&r.features_json).unwrap_or(Value::Null),
        "gaps": parse(&r.gaps_json),
        "insight": parse(&r.insight_json),
    })
}

/// Laps of a session: lap and sector times, validity, features, gaps (`?car=` for one car).
#[utoipa::path(get, path = "/api/sessions/{id}/laps", params(("id" = String, Path, description = "Session id"), LapsQuery), responses(
    (status = 200, body = LapsResponse),
    (status = 400, description = "A query parameter invalid", body = ErrorBody),
    (status = 404, description = "No such session", body = ErrorBody),
    (status = 503, description = "Store unavailable", body = ErrorBody)
))]
pub async fn session_laps(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<LapsQuery>,
) -> Response {
    let reader = st.reader.clone();
    let res = tokio::task::spawn_blocking(move || {
        let store = reader.lock();
        let car = q.car.as_deref();
        let official: Vec<Value> = store
            .official_laps(&id, car)?
            .iter()
            .filter_map(|l| serde_json::to_value(l).ok())
            .collect();
        let stored = store.laps(&id, car)?;
        let (source, laps) = if !stored.is_empty() {
            (LapSource::StoredLaps, stored)
        } else {
            let cut = analysis::laps_from_store(&store, &id)?;
            (
                LapSource::Samples,
                cut.iter()
                    .filter(|l| car.is_none_or(|c| &*l.summary.car_id == c))
                    .map(|l| l.row(None))
                    .collect(),
            )
        };
        Ok::<_, store::StoreError>(LapsResponse {
            session_id: id,
            source: serde_json::to_value(source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            laps: laps.iter().map(lap_json).collect(),
            official_laps: official,
        })
    })
    .await;
    match res {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => join_error(e),
    }
}

/// A strategy question: a stored session at a lap, or a whole scenario. Numbers are read as
/// JSON numbers and checked to be whole (`12.0` is the integer 12, as JSON Schema has it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// Stored session to take the race from (with `car`; not with `scenario`).
    pub session: Option<String>,
    /// Car to optimise (its id in the session).
    pub car: Option<String>,
    /// The race as it stood at the end of this lap [default: the last lap of the session].
    pub lap: Option<f64>,
    /// Race length [default: the session's race document, else its last lap].
    pub total_laps: Option<f64>,
    /// Iterations per plan (1-20000) [default 2000].
    pub iterations: Option<f64>,
    /// Seed [default 0].
    pub seed: Option<f64>,
    /// A scenario in the TOML scenario's shape (see data/strategy/example-scenario.toml), as JSON.
    #[schema(value_type = Option<Object>)]
    pub scenario: Option<Value>,
}

/// A whole number in `lo..=hi` from a JSON number, or (field, reason) for a 400.
fn whole(
    v: Option<f64>,
    field: &'static str,
    lo: u64,
    hi: u64,
) -> Result<Option<u64>, (&'static str, String)> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x.fract() == 0.0 && x >= lo as f64 && x <= hi as f64 => {
            Ok(Some(x as u64))
        }
        Some(x) => Err((
            field,
            format!("must be a whole number in {lo}-{hi} (got {x})"),
        )),
    }
}

/// The stored-race form of a strategy request, as the API description states it. The body may
/// instead be `{"scenario": {...}}`: the TOML scenario of `data/strategy/example-scenario.toml`
/// as JSON (optional `iterations` beside it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SimulateSessionRequest {
    /// Stored session to take the race from.
    pub session: String,
    /// Car to optimise (its id in the session).
    pub car: String,
    /// The race as it stood at the end of this lap [default: the last lap of the session].
    #[schema(minimum = 1)]
    pub lap: Option<u32>,
    /// Race length [default: the session's race document, else its last lap].
    #[schema(minimum = 2)]
    pub total_laps: Option<u32>,
    /// Iterations per plan (1-20000) [default 2000].
    #[schema(minimum = 1, maximum = 20000)]
    pub iterations: Option<u32>,
    /// Seed [default 0].
    pub seed: Option<u64>,
}

/// Every plan with its outcome, best first, and the recommended window.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulateResponse {
    /// `strategy::Report`: car_id, current_lap, total_laps, seed, races_simulated, outcomes
    /// (plan, finish-position distribution, expected position, win probability, variance,
    /// 95 % interval, p5 position, expected race time, difference to the best and its SE,
    /// rank), recommendation (window, best plan, text, evidence), field_plans.
    #[schema(value_type = Object)]
    pub report: Value,
    /// The same window in the `insight_update` shape.
    #[schema(value_type = Object)]
    pub pit_window: Value,
    /// Where the laps came from (`official_timing`, `stored_laps`, `samples`; absent for a
    /// scenario).
    pub lap_source: Option<String>,
}

fn bad(field: &str, reason: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some(field),
        reason,
    )
}

fn strategy_error(e: strategy::StrategyError) -> Response {
    let msg = e.to_string();
    let field = match &e {
        strategy::StrategyError::NotEnoughLaps(_) => "lap",
        strategy::StrategyError::ZeroIterations => "iterations",
        _ => "scenario",
    };
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "impossible_scenario",
        Some(field),
        msg,
    )
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

/// Runs a strategy question against the store (blocking: call off the async threads). The
/// store is locked only to read the laps, not while simulating.
pub fn run_strategy(
    store: &parking_lot::Mutex<store::Store>,
    q: StrategyQuestion,
) -> Result<(strategy::Report, Option<LapSource>), StrategyFailure> {
    match q {
        StrategyQuestion::Scenario(sc) => strategy::evaluate(&sc)
            .map(|r| (r, None))
            .map_err(StrategyFailure::Model),
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
                let (records, source) = analysis::session_lap_records(&store, &session)
                    .map_err(StrategyFailure::Store)?;
                let total = analysis::session_total_laps(&store, &session, &records);
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
            let (mut params, state, fitted) =
                strategy::race_at_lap(&records, at, total).map_err(StrategyFailure::Model)?;
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
            )
            .map_err(StrategyFailure::Model)?;
            Ok((report, Some(source)))
        }
    }
}

/// Why a strategy call failed.
#[derive(Debug)]
pub enum StrategyFailure {
    Store(store::StoreError),
    Model(strategy::StrategyError),
    Field(&'static str, String),
}

impl std::fmt::Display for StrategyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrategyFailure::Store(e) => write!(f, "{e}"),
            StrategyFailure::Model(e) => write!(f, "{e}"),
            StrategyFailure::Field(field, reason) => write!(f, "{field}: {reason}"),
        }
    }
}

impl std::error::Error for StrategyFailure {}

impl StrategyFailure {
    fn into_response(self) -> Response {
        match self {
            StrategyFailure::Store(e) => store_error(e),
            StrategyFailure::Model(e) => strategy_error(e),
            StrategyFailure::Field(field, reason) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "impossible_scenario",
                Some(field),
                reason,
            ),
        }
    }
}

/// Simulates the rest of a race for every plan of one car (stay out, every one-stop and
/// two-stop plan) and recommends a pit window. Either `session` + `car` (+ `lap`), or a
/// `scenario`.
#[utoipa::path(post, path = "/api/strategy/simulate", request_body(content = SimulateSessionRequest, description = "A stored race (`session`, `car`, optional `lap`), or `{\"scenario\": {...}}` (the TOML scenario as JSON)"), responses(
    (status = 200, body = SimulateResponse),
    (status = 400, description = "Body unreadable or a field invalid", body = ErrorBody),
    (status = 404, description = "No such session", body = ErrorBody),
    (status = 422, description = "An impossible scenario (no laps left, a retired car, a negative pit loss, no cars...)", body = ErrorBody)
))]
pub async fn strategy_simulate(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: SimulateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad("body", format!("not a strategy request: {e}")),
    };
    let parsed = (|| {
        Ok::<_, (&'static str, String)>((
            whole(req.lap, "lap", 1, u64::from(u32::MAX))?,
            whole(req.total_laps, "total_laps", 2, u64::from(u32::MAX))?,
            whole(
                req.iterations,
                "iterations",
                1,
                u64::from(MAX_HTTP_ITERATIONS),
            )?,
            whole(req.seed, "seed", 0, u64::MAX)?,
        ))
    })();
    let (lap, total_laps, iterations, seed) = match parsed {
        Ok(x) => x,
        Err((field, reason)) => return bad(field, reason),
    };
    let iterations = iterations.map_or(2000, |n| n as u32);
    let question = match (req.scenario, req.session, req.car) {
        (Some(sc), None, None) => {
            let spec: strategy::ScenarioSpec = match serde_json::from_value(sc) {
                Ok(s) => s,
                Err(e) => return bad("scenario", format!("not a scenario: {e}")),
            };
            if spec.iterations > MAX_HTTP_ITERATIONS {
                return bad(
                    "scenario.iterations",
                    format!("must be 1-{MAX_HTTP_ITERATIONS}"),
                );
            }
            match strategy::Scenario::from_spec(spec) {
                Ok(s) => StrategyQuestion::Scenario(Box::new(s)),
                Err(e) => return strategy_error(e),
            }
        }
        (None, Some(session), Some(car)) => StrategyQuestion::Session {
            session,
            car,
            lap: lap.map(|n| n as u32),
            total_laps: total_laps.map(|n| n as u32),
            iterations,
            seed: seed.unwrap_or(0),
        },
        (None, Some(_), None) => return bad("car", "give the car to optimise with the session"),
        (None, None, _) => {
            return bad(
                "session",
                "give `session` and `car` (a stored race) or `scenario`",
            )
        }
        (Some(_), _, _) => return bad("scenario", "give either `scenario` or `session`, not both"),
    };
    let reader = st.reader.clone();
    let res = tokio::task::spawn_blocking(move || run_strategy(&reader, question)).await;
    match res {
        Ok(Ok((report, source))) => {
            let window = analysis::pit_window_json(&report, report.current_lap);
            Json(SimulateResponse {
                report: serde_json::to_value(&report).unwrap_or(Value::Null),
                pit_window: window,
                lap_source: source.and_then(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                }),
            })
            .into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => join_error(e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// Track name (as in the samples).
    pub track: Option<String>,
    /// Car id (`chassis`).
    pub vehicle: String,
    /// A completed lap [default: the latest].
    pub lap: Option<u32>,
}

/// Everything the dashboard's car view needs for its first paint, in the seed's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardLive {
    pub track: Option<String>,
    pub vehicle: String,
    pub lap: Option<u64>,
    /// Wear per corner (model estimate, else what the source reports), loss per lap, laps
    /// until 0.5 s.
    #[schema(value_type = Object)]
    pub tire_wear: Value,
    /// Lap and best lap, sectors, stress.
    #[schema(value_type = Object)]
    pub performance: Value,
    /// Position and gaps.
    #[schema(value_type = Object)]
    pub gap_analysis: Value,
    /// Pit window and plans.
    #[schema(value_type = Object)]
    pub strategy: Value,
    /// The whole `insight_update` element.
    #[schema(value_type = Object)]
    pub insight: Value,
}

/// Builds the dashboard's first-paint document from one `insight_update` element.
pub fn dashboard_from_insight(
    track: Option<String>,
    vehicle: String,
    ins: &Value,
) -> DashboardLive {
    let g = |k: &str| ins.get(k).cloned().unwrap_or(Value::Null);
    DashboardLive {
        track: track.or_else(|| {
            ins.get("track")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        }),
        vehicle,
        lap: ins.get("lap").and_then(Value::as_u64),
        tire_wear: json!({
            "wear_pct": if g("tire_wear").is_null() { g("tire_wear_source") } else { g("tire_wear") },
            "wear_source": if g("tire_wear").is_null() { "telemetry" } else { "model" },
            "predicted_loss_per_lap_s": g("predicted_loss_per_lap_seconds"),
            "laps_until_0_5s_loss": g("laps_until_0_5s_loss"),
            "recommended_pit_lap": g("recommended_pit_lap"),
            "explanation": g("explanation"),
            "tyre_age_laps": g("tyre_age_laps"),
        }),
        performance: json!({
            "lap_time_s": g("lap_time_s"),
            "best_lap_time_s": g("best_lap_time_s"),
            "sector_times_s": g("sector_times_s"),
            "lap_tire_stress": g("lap_tire_stress"),
            "perSectorStress": g("perSectorStress"),
            "validity": g("validity"),
        }),
        gap_analysis: g("gaps"),
        strategy: g("pit_window"),
        insight: ins.clone(),
    }
}

/// The car view's first paint: tire wear and prediction, lap and best lap, position and gaps,
/// strategy, from the latest insight of the car (or its stored lap `lap`).
#[utoipa::path(get, path = "/api/dashboard/live", params(LiveQuery), responses(
    (status = 200, body = DashboardLive),
    (status = 400, description = "A query parameter missing or invalid", body = ErrorBody),
    (status = 404, description = "Nothing known yet about this car (no completed lap)", body = ErrorBody)
))]
pub async fn dashboard_live(
    State(st): State<Arc<AppState>>,
    Query(q): Query<LiveQuery>,
) -> Response {
    let found = match find_insight(&st, q.track.clone(), q.vehicle.clone(), q.lap).await {
        Ok(v) => v,
        Err(e) => return join_error(e),
    };
    match found {
        Some(ins) => Json(dashboard_from_insight(q.track, q.vehicle, &ins)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no_insight",
            Some("vehicle"),
            format!(
                "no completed lap of {:?}{} yet; insights appear after the car's first lap",
                q.vehicle,
                q.track
                    .as_deref()
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// A car's insight: the latest one (in memory), or the one stored with lap `lap`.
async fn find_insight(
    st: &AppState,
    track: Option<String>,
    vehicle: String,
    lap: Option<u32>,
) -> Result<Option<Value>, tokio::task::JoinError> {
    match lap {
        None => Ok(st.latest_insight(track.as_deref(), &vehicle)),
        Some(lap) => {
            let reader = st.reader.clone();
            tokio::task::spawn_blocking(move || {
                stored_insight(&reader.lock(), track.as_deref(), &vehicle, lap)
            })
            .await
        }
    }
}

/// The insight stored with lap `lap` of car `vehicle` in the newest session at `track`.
fn stored_insight(
    store: &store::Store,
    track: Option<&str>,
    vehicle: &str,
    lap: u32,
) -> Option<Value> {
    let sessions = store.sessions().ok()?;
    for s in sessions.iter().rev() {
        if track.is_some_and(|t| s.track.as_deref() != Some(t)) {
            continue;
        }
        if let Ok(laps) = store.laps(&s.id, Some(vehicle)) {
            if let Some(l) = laps.iter().find(|l| l.lap == lap) {
                return l
                    .insight_json
                    .as_deref()
                    .and_then(|j| serde_json::from_str(j).ok());
            }
        }
    }
    None
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// Track [default: the driver's most recently updated profile].
    pub track: Option<String>,
}

/// A driver's baseline on a track (learnt from their clean laps, updated every lap).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    pub car_id: String,
    pub track: String,
    /// Session the profile was last updated from.
    pub session_id: String,
    /// `building_baseline` (fewer than 5 clean laps: no alerts yet) or `ready`.
    pub status: String,
    /// `coach::DriverProfile`: per corner the brake point, peak brake pressure, brake bias,
    /// minimum / entry / exit speed, throttle pickup (mean, spread, n); sector and lap times;
    /// lap-time coefficient of variation; the corner map.
    #[schema(value_type = Object)]
    pub profile: Value,
}

fn parse_profile(track: String, session: String, json: &str) -> Option<ProfileResponse> {
    let v: Value = serde_json::from_str(json).ok()?;
    Some(ProfileResponse {
        car_id: v["car_id"].as_str().unwrap_or_default().to_string(),
        track,
        session_id: session,
        status: v["status"]
            .as_str()
            .unwrap_or("building_baseline")
            .to_string(),
        profile: v,
    })
}

fn no_driver(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_driver",
        Some("id"),
        format!(
            "no profile for driver/car {id:?} yet: it is built from the car's laps as they stream"
        ),
    )
}

/// A driver's profile: per-corner baseline (mean and spread) and consistency.
#[utoipa::path(get, path = "/api/drivers/{id}/profile", params(("id" = String, Path, description = "Car id"), ProfileQuery), responses(
    (status = 200, body = ProfileResponse),
    (status = 400, description = "A query parameter invalid", body = ErrorBody),
    (status = 404, description = "No profile for this car (yet)", body = ErrorBody),
    (status = 503, description = "Store unavailable", body = ErrorBody)
))]
pub async fn driver_profile(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
) -> Response {
    let reader = st.reader.clone();
    let car = id.clone();
    let res = tokio::task::spawn_blocking(move || reader.lock().profiles(&car)).await;
    match res {
        Ok(Ok(list)) => list
            .into_iter()
            .find(|(t, _, _)| q.track.as_deref().is_none_or(|want| want == t))
            .and_then(|(t, s, j)| parse_profile(t, s, &j))
            .map(|p| Json(p).into_response())
            .unwrap_or_else(|| no_driver(&id)),
        Ok(Err(e)) => store_error(e),
        Err(e) => join_error(e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Most alerts returned, newest first (1-1000) [default 100].
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A driver's coaching alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsResponse {
    pub car_id: String,
    /// `coach::CoachingAlert`: lap, corner, metric, value, baseline mean and spread, z, the
    /// radio message and the expected time gain or loss.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<Value>,
}

/// A driver's coaching alerts (departures from their own baseline), newest first.
#[utoipa::path(get, path = "/api/drivers/{id}/alerts", params(("id" = String, Path, description = "Car id"), AlertsQuery), responses(
    (status = 200, body = AlertsResponse),
    (status = 400, description = "limit out of range", body = ErrorBody),
    (status = 503, description = "Store unavailable", body = ErrorBody)
))]
pub async fn driver_alerts(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<AlertsQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return bad("limit", format!("must be 1-1000 (got {limit})"));
    }
    let reader = st.reader.clone();
    let car = id.clone();
    let res = tokio::task::spawn_blocking(move || reader.lock().alerts(&car, limit as usize)).await;
    match res {
        Ok(Ok(rows)) => Json(AlertsResponse {
            car_id: id,
            alerts: rows
                .iter()
                .filter_map(|r| serde_json::from_str(&r.json).ok())
                .collect(),
        })
        .into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => join_error(e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// First driver (car id).
    pub a: String,
    /// Second driver (car id).
    pub b: String,
    /// Track both drove [default: A's latest profile's track].
    pub track: Option<String>,
}

/// Two drivers compared corner by corner: where B wins and loses time against A.
#[utoipa::path(get, path = "/api/drivers/compare", params(CompareQuery), responses(
    (status = 200, description = "`coach::ProfileComparison`: per corner the time, brake point, minimum and exit speed, throttle pickup and brake bias differences (B minus A)", body = Object),
    (status = 400, description = "A query parameter missing or invalid", body = ErrorBody),
    (status = 404, description = "A driver without a profile", body = ErrorBody),
    (status = 422, description = "The profiles are on different corner maps", body = ErrorBody)
))]
pub async fn drivers_compare(
    State(st): State<Arc<AppState>>,
    Query(q): Query<CompareQuery>,
) -> Response {
    let reader = st.reader.clone();
    let (a, b) = (q.a.clone(), q.b.clone());
    let res = tokio::task::spawn_blocking(move || {
        let s = reader.lock();
        Ok::<_, store::StoreError>((s.profiles(&a)?, s.profiles(&b)?))
    })
    .await;
    let (pa, pb) = match res {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return store_error(e),
        Err(e) => return join_error(e),
    };
    let Some((track, _, ja)) = pa
        .into_iter()
        .find(|(t, _, _)| q.track.as_deref().is_none_or(|w| w == t))
    else {
        return no_driver(&q.a);
    };
    let Some((_, _, jb)) = pb.into_iter().find(|(t, _, _)| *t == track) else {
        return no_driver(&q.b);
    };
    let (Ok(a), Ok(b)) = (
        serde_json::from_str::<coach::DriverProfile>(&ja),
        serde_json::from_str::<coach::DriverProfile>(&jb),
    ) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_profile",
            None,
            "a stored profile could not be read",
        );
    };
    match coach::compare_profiles(&a, &b) {
        Ok(c) => Json(c).into_response(),
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_comparable",
            Some("b"),
            e.to_string(),
        ),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PredictQuery {
    /// A completed lap [default: the latest].
    pub lap: Option<u32>,
}

/// The tire model's prediction for a car after a lap, in the seed's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictTire {
    pub track: String,
    pub chassis: String,
    pub lap: Option<u64>,
    /// Predicted loss of the next lap against the stint's best fuel-corrected pace, s.
    pub predicted_loss_per_lap_s: Option<f64>,
    /// 80 % interval of that loss, s.
    pub loss_interval80_s: Option<Vec<f64>>,
    /// Laps until the loss reaches 0.5 s (1 = the next lap).
    pub laps_until_0_5s_loss: Option<u64>,
    /// Lap at whose end to pit.
    pub recommended_pit_lap: Option<u64>,
    /// Wear per corner, % (fl, fr, rl, rr), with 80 % intervals.
    #[schema(value_type = Object)]
    pub tire_wear: Value,
    #[schema(value_type = Object)]
    pub tire_wear_interval80: Value,
    /// Exact TreeSHAP contributions to the predicted loss, s, by feature.
    #[schema(value_type = Object)]
    pub feature_scores: Value,
    /// Three radio-ready sentences (or one saying why there is not enough data).
    pub explanation: Vec<String>,
    /// `ok` or `not_enough_data` with a reason.
    #[schema(value_type = Object)]
    pub status: Value,
    /// Model version and when this answer was made.
    #[schema(value_type = Object)]
    pub meta: Value,
}

/// The tire prediction for a car (latest lap, or `?lap=N` from the store).
#[utoipa::path(get, path = "/api/predict_tire/{track}/{chassis}", params(
    ("track" = String, Path, description = "Track name as in the samples"),
    ("chassis" = String, Path, description = "Car id"),
    PredictQuery), responses(
    (status = 200, body = PredictTire),
    (status = 400, description = "A query parameter invalid", body = ErrorBody),
    (status = 404, description = "No completed lap of this car at this track (yet)", body = ErrorBody)
))]
pub async fn predict_tire(
    State(st): State<Arc<AppState>>,
    Path((track, chassis)): Path<(String, String)>,
    Query(q): Query<PredictQuery>,
) -> Response {
    let found = match find_insight(&st, Some(track.clone()), chassis.clone(), q.lap).await {
        Ok(v) => v,
        Err(e) => return join_error(e),
    };
    let Some(ins) = found.filter(|i| !i["tire_wear"].is_null()) else {
        return error(
            StatusCode::NOT_FOUND,
            "no_prediction",
            Some("chassis"),
            format!(
                "no tire prediction for {chassis:?} at {track:?}{}: predictions come with each completed lap",
                q.lap.map(|l| format!(" lap {l}")).unwrap_or_default()
            ),
        );
    };
    let g = |k: &str| ins.get(k).cloned().unwrap_or(Value::Null);
    Json(PredictTire {
        track,
        chassis,
        lap: ins["lap"].as_u64(),
        predicted_loss_per_lap_s: ins["predicted_loss_per_lap_seconds"].as_f64(),
        loss_interval80_s: ins["loss_interval80_s"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect()),
        laps_until_0_5s_loss: ins["laps_until_0_5s_loss"].as_u64(),
        recommended_pit_lap: ins["recommended_pit_lap"].as_u64(),
        tire_wear: g("tire_wear"),
        tire_wear_interval80: g("tire_wear_interval80"),
        feature_scores: g("feature_scores"),
        explanation: ins["explanation"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        status: g("tire_status"),
        meta: json!({
            "model_version": ins["model"]["version"],
            "known_track": ins["model"]["known_track"],
            "generated_at": crate::http::now_rfc3339(),
        }),
    })
    .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareLapsQuery {
    /// Car of lap A.
    pub car_a: String,
    /// Lap A.
    pub lap_a: u32,
    /// Car of lap B [default: car A].
    pub car_b: Option<String>,
    /// Lap B.
    pub lap_b: u32,
}

/// Two laps of a session compared corner by corner (aligned by lap distance): where B wins
/// and loses time against A. The corners are those of car A's profile on the track, else
/// detected from lap A.
#[utoipa::path(get, path = "/api/sessions/{id}/compare", params(("id" = String, Path, description = "Session id"), CompareLapsQuery), responses(
    (status = 200, description = "`coach::LapComparison`: per segment (corner) the time of A and B and B minus A, lap times, total", body = Object),
    (status = 400, description = "A query parameter missing or invalid", body = ErrorBody),
    (status = 404, description = "No such session, or no samples of that lap", body = ErrorBody),
    (status = 422, description = "A lap with too few samples, or no corners found", body = ErrorBody)
))]
pub async fn compare_laps(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<CompareLapsQuery>,
) -> Response {
    let (q_car_a, q_lap_a, q_lap_b) = (q.car_a.clone(), q.lap_a, q.lap_b);
    let q_car_b = q.car_b.clone().unwrap_or_else(|| q.car_a.clone());
    let reader = st.reader.clone();
    let res = tokio::task::spawn_blocking(move || {
        let store = reader.lock();
        let info = store.session(&id)?;
        let car_b = q.car_b.clone().unwrap_or_else(|| q.car_a.clone());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        store.for_each_sample(&id, None, |s| {
            if s.lap == Some(q.lap_a) && *s.car_id == *q.car_a {
                a.push(s.clone());
            }
            if s.lap == Some(q.lap_b) && *s.car_id == *car_b {
                b.push(s);
            }
        })?;
        let track = info.track.clone().unwrap_or_else(|| id.clone());
        let map = store
            .profiles(&q.car_a)?
            .into_iter()
            .filter(|(t, _, _)| *t == track)
            .find_map(|(_, _, j)| {
                serde_json::from_str::<coach::DriverProfile>(&j)
                    .ok()
                    .and_then(|p| p.corner_map)
            });
        Ok::<_, store::StoreError>((map, track, a, b))
    })
    .await;
    let (map, track, a, b) = match res {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return store_error(e),
        Err(e) => return join_error(e),
    };
    for (samples, field, car, lap) in [
        (&a, "lap_a", &q_car_a, q_lap_a),
        (&b, "lap_b", &q_car_b, q_lap_b),
    ] {
        if samples.is_empty() {
            return error(
                StatusCode::NOT_FOUND,
                "no_lap",
                Some(field),
                format!("no samples of lap {lap} of car {car:?} in this session"),
            );
        }
    }
    let map = match map {
        Some(m) => m,
        None => match coach::CornerMap::detect(&track, &a, &coach::DetectOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not_comparable",
                    Some("lap_a"),
                    format!("no corners from lap A ({} samples): {e}", a.len()),
                )
            }
        },
    };
    match coach::compare_laps(&map, &a, &b) {
        Ok(c) => Json(c).into_response(),
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_comparable",
            Some(if a.len() < b.len() { "lap_a" } else { "lap_b" }),
            format!("{e} (lap A {} samples, lap B {} samples)", a.len(), b.len()),
        ),
    }
}

/// A session's import report and classification.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReportResponse {
    pub session_id: String,
    /// What `pitwall import` did with each file: rows read, stored, instants, cars, laps,
    /// rejections by reason, notes (numbers split into two cars...), and the lap check
    /// against the results' `LAPS`. `null` for a session not made by `pitwall import`.
    #[schema(value_type = Option<Object>)]
    pub import_report: Option<Value>,
    /// The classification: official results when imported, else provisional (each car
    /// flagged `provisional`); `null` without results.
    #[schema(value_type = Option<Vec<Object>>)]
    pub classification: Option<Value>,
}

/// The import report of a session (stored by `pitwall import`) and its classification.
#[utoipa::path(get, path = "/api/sessions/{id}/import_report", params(("id" = String, Path, description = "Session id")), responses(
    (status = 200, body = ImportReportResponse),
    (status = 404, description = "No such session", body = ErrorBody),
    (status = 503, description = "Store unavailable", body = ErrorBody)
))]
pub async fn session_import_report(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let reader = st.reader.clone();
    let res = tokio::task::spawn_blocking(move || {
        let store = reader.lock();
        let report = store
            .session_meta(&id, store::META_IMPORT_REPORT)?
            .and_then(|j| serde_json::from_str::<Value>(&j).ok());
        let classification = store
            .classification(&id)?
            .and_then(|c| serde_json::to_value(c).ok());
        Ok::<_, store::StoreError>(ImportReportResponse {
            session_id: id,
            import_report: report,
            classification,
        })
    })
    .await;
    match res {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => join_error(e),
    }
}
