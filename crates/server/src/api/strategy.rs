//! Strategy: the rest of a race simulated for every plan of one car, and the pit window.

use super::{ApiError, ApiResult};
use crate::stored::{run_strategy, StrategyFailure, StrategyQuestion};
use crate::AppState;
use analysis::strategy;
use analysis::PitWindow;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// Most iterations per plan one HTTP call may ask for.
pub const MAX_HTTP_ITERATIONS: u32 = 20_000;

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
    pub pit_window: PitWindow,
    /// Where the laps came from (`official_timing`, `stored_laps`, `samples`; absent for a
    /// scenario).
    pub lap_source: Option<String>,
}

/// Simulates the rest of a race for every plan of one car (stay out, every one-stop and
/// two-stop plan) and recommends a pit window. Either `session` + `car` (+ `lap`), or a
/// `scenario`.
#[utoipa::path(post, path = "/api/strategy/simulate", request_body(content = SimulateSessionRequest, description = "A stored race (`session`, `car`, optional `lap`), or `{\"scenario\": {...}}` (the TOML scenario as JSON)"), responses(
    (status = 200, body = SimulateResponse),
    (status = 400, description = "Body unreadable or a field invalid", body = crate::http::ErrorBody),
    (status = 404, description = "No such session", body = crate::http::ErrorBody),
    (status = 422, description = "An impossible scenario (no laps left, a retired car, a negative pit loss, no cars...)", body = crate::http::ErrorBody)
))]
pub async fn strategy_simulate(
    State(st): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<SimulateResponse> {
    let req: SimulateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::bad(
                "body",
                format!("not a strategy request: {e}"),
            ))
        }
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
        Err((field, reason)) => return Err(ApiError::bad(field, reason)),
    };
    let iterations = iterations.map_or(2000, |n| n as u32);
    let question = match (req.scenario, req.session, req.car) {
        (Some(sc), None, None) => {
            let spec: strategy::ScenarioSpec = match serde_json::from_value(sc) {
                Ok(s) => s,
                Err(e) => return Err(ApiError::bad("scenario", format!("not a scenario: {e}"))),
            };
            if spec.iterations > MAX_HTTP_ITERATIONS {
                return Err(ApiError::bad(
                    "scenario.iterations",
                    format!("must be 1-{MAX_HTTP_ITERATIONS}"),
                ));
            }
            match strategy::Scenario::from_spec(spec) {
                Ok(s) => StrategyQuestion::Scenario(Box::new(s)),
                Err(e) => return Err(strategy_error(e)),
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
        (None, Some(_), None) => {
            return Err(ApiError::bad(
                "car",
                "give the car to optimise with the session",
            ))
        }
        (None, None, _) => {
            return Err(ApiError::bad(
                "session",
                "give `session` and `car` (a stored race) or `scenario`",
            ))
        }
        (Some(_), _, _) => {
            return Err(ApiError::bad(
                "scenario",
                "give either `scenario` or `session`, not both",
            ))
        }
    };
    let reader = st.reader.clone();
    let answer = tokio::task::spawn_blocking(move || run_strategy(&reader, question)).await??;
    let window =
        PitWindow::from_report(&answer.report, answer.report.current_lap, answer.pit_loss_s);
    Ok(Json(SimulateResponse {
        report: serde_json::to_value(&answer.report).unwrap_or(Value::Null),
        pit_window: window,
        lap_source: answer.source.map(|s| s.as_str().to_string()),
    }))
}

fn strategy_error(e: strategy::StrategyError) -> ApiError {
    let field = match &e {
        strategy::StrategyError::NotEnoughLaps(_) => "lap",
        strategy::StrategyError::ZeroIterations => "iterations",
        _ => "scenario",
    };
    ApiError::unprocessable("impossible_scenario", field, e.to_string())
}

impl From<StrategyFailure> for ApiError {
    fn from(e: StrategyFailure) -> ApiError {
        match e {
            StrategyFailure::Store(e) => e.into(),
            StrategyFailure::Model(e) => strategy_error(e),
            StrategyFailure::Field(field, reason) => {
                ApiError::unprocessable("impossible_scenario", field, reason)
            }
        }
    }
}
