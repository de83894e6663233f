//! The dashboard's first paint: everything the car view needs from one insight.

use super::{with_reader, ApiError, ApiResult};
use crate::stored;
use crate::AppState;
use analysis::Insight;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

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
    /// `live` (from the car's latest insight, or its stored lap `lap`) or `waiting` (the car
    /// streams but has not completed a lap yet: every panel is empty).
    pub status: String,
    /// What the page waits for (with `waiting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    /// The one recommendation (tyre and race views reconciled, with the reason).
    #[schema(value_type = Object)]
    pub call: Value,
    /// The whole insight (`null` while waiting).
    pub insight: Option<Insight>,
}

/// Builds the dashboard's first-paint document from one insight.
pub fn dashboard_from_insight(
    track: Option<String>,
    vehicle: String,
    i: &Insight,
) -> DashboardLive {
    let t = &i.tire;
    let model_wear = t.tire_wear.is_some();
    DashboardLive {
        status: "live".into(),
        reason: None,
        track: track.or_else(|| i.track.clone()),
        vehicle,
        lap: Some(u64::from(i.lap)),
        tire_wear: json!({
            "wear_pct": if model_wear { json!(t.tire_wear) } else { json!(i.tire_wear_source) },
            "wear_source": if t.predictor.as_deref() == Some("reported wear") {
                "reported"
            } else if model_wear {
                "model"
            } else if i.tire_wear_source.is_some() {
                "telemetry"
            } else {
                "none"
            },
            "predictor": t.predictor,
            "predicted_loss_per_lap_s": t.predicted_loss_per_lap_seconds,
            "laps_until_0_5s_loss": t.laps_until_0_5s_loss,
            "recommended_pit_lap": t.recommended_pit_lap,
            "explanation": if t.explanation.is_empty() { Value::Null } else { json!(t.explanation) },
            "tyre_age_laps": i.tyre_age_laps,
        }),
        performance: json!({
            "lap_time_s": i.lap_time_s,
            "best_lap_time_s": i.best_lap_time_s,
            "sector_times_s": i.sector_times_s,
            "lap_tire_stress": i.lap_tire_stress,
            "perSectorStress": i.per_sector_stress,
            "validity": i.validity,
        }),
        gap_analysis: json!(i.gaps),
        strategy: json!(i.pit_window),
        call: json!(i.call),
        insight: Some(i.clone()),
    }
}

/// The car view's first paint: tire wear and prediction, lap and best lap, position and gaps,
/// strategy and the call, from the latest insight of the car (live or stored), or its stored
/// lap `lap`. A car that streams without a completed lap yet gets `status: "waiting"`.
#[utoipa::path(get, path = "/api/dashboard/live", params(LiveQuery), responses(
    (status = 200, body = DashboardLive),
    (status = 400, description = "A query parameter missing or invalid", body = crate::http::ErrorBody),
    (status = 404, description = "Nothing known about this car (it never streamed), or no such stored lap", body = crate::http::ErrorBody)
))]
pub async fn dashboard_live(
    State(st): State<Arc<AppState>>,
    Query(q): Query<LiveQuery>,
) -> ApiResult<DashboardLive> {
    if let Some(i) = find_insight(&st, q.track.clone(), q.vehicle.clone(), q.lap).await? {
        return Ok(Json(dashboard_from_insight(q.track, q.vehicle, &i)));
    }
    if q.lap.is_none() && st.has_seen(q.track.as_deref(), &q.vehicle) {
        return Ok(Json(DashboardLive {
            status: "waiting".into(),
            reason: Some("waiting for the car's first completed lap".into()),
            track: q.track,
            vehicle: q.vehicle,
            lap: None,
            tire_wear: Value::Null,
            performance: Value::Null,
            gap_analysis: Value::Null,
            strategy: Value::Null,
            call: Value::Null,
            insight: None,
        }));
    }
    Err(ApiError::not_found(
        "no_insight",
        "vehicle",
        format!(
            "nothing known about {:?}{}{}: insights appear after the car's first lap",
            q.vehicle,
            q.track
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default(),
            q.lap.map(|l| format!(" (lap {l})")).unwrap_or_default()
        ),
    ))
}

/// A car's insight: lap `lap` from the store, else the latest one (in memory while it
/// streams, else the newest stored).
pub(crate) async fn find_insight(
    st: &AppState,
    track: Option<String>,
    vehicle: String,
    lap: Option<u32>,
) -> Result<Option<Insight>, ApiError> {
    if lap.is_none() {
        if let Some(i) = st.latest_insight(track.as_deref(), &vehicle) {
            return Ok(Some((*i).clone()));
        }
        // Distributed: another server may have delivered this car's laps (the shared cache
        // in Redis, 60 s after the car's last lap).
        if let (Some(redis), Some(t)) = (&st.redis, track.as_deref()) {
            if let Ok(Some(i)) = redis.latest_insight(t, &vehicle).await {
                return Ok(Some(i));
            }
        }
    }
    with_reader(st, move |store| {
        Ok(stored_insight(store, track.as_deref(), &vehicle, lap))
    })
    .await
}

/// The insight stored with lap `lap` (or the car's last lap) of car `vehicle` in the newest
/// session at `track` that has it.
fn stored_insight(
    store: &store::Store,
    track: Option<&str>,
    vehicle: &str,
    lap: Option<u32>,
) -> Option<Insight> {
    let sessions = store.sessions().ok()?;
    for s in sessions.iter().rev() {
        if track.is_some_and(|t| s.track.as_deref() != Some(t)) {
            continue;
        }
        if let Ok(laps) = store.laps(&s.id, Some(vehicle)) {
            let row = match lap {
                Some(lap) => laps.iter().find(|l| l.lap == lap),
                None => laps
                    .iter()
                    .filter(|l| l.insight_json.is_some())
                    .max_by_key(|l| l.lap),
            };
            if let Some(i) = row.and_then(stored::insight_of_row) {
                return Some(i);
            }
        }
    }
    None
}
