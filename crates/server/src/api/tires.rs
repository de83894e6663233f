//! Tires: the tyre model's prediction for a car after a lap.

use super::dashboard::find_insight;
use super::{ApiError, ApiResult};
use crate::AppState;
use analysis::{Wear, WearInterval};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

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
    /// Which predictor served: `physics+trees`, `reported wear` (the source's own wear) or
    /// `timing only`.
    pub predictor: Option<String>,
    /// Predicted loss of the next lap against the stint's best fuel-corrected pace, s.
    pub predicted_loss_per_lap_s: Option<f64>,
    /// 80 % interval of that loss, s.
    pub loss_interval80_s: Option<Vec<f64>>,
    /// Laps until the loss reaches 0.5 s (1 = the next lap).
    pub laps_until_0_5s_loss: Option<u64>,
    /// Lap at whose end to pit.
    pub recommended_pit_lap: Option<u64>,
    /// Wear per corner, % (fl, fr, rl, rr), with 80 % intervals.
    pub tire_wear: Option<Wear>,
    pub tire_wear_interval80: Option<WearInterval>,
    /// Exact TreeSHAP contributions to the predicted loss, s, by feature.
    pub feature_scores: BTreeMap<String, f64>,
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
    (status = 400, description = "A query parameter invalid", body = crate::http::ErrorBody),
    (status = 404, description = "No completed lap of this car at this track (yet)", body = crate::http::ErrorBody)
))]
pub async fn predict_tire(
    State(st): State<Arc<AppState>>,
    Path((track, chassis)): Path<(String, String)>,
    Query(q): Query<PredictQuery>,
) -> ApiResult<PredictTire> {
    let found = find_insight(&st, Some(track.clone()), chassis.clone(), q.lap).await?;
    let Some(ins) = found.filter(|i| i.tire.is_present()) else {
        return Err(ApiError::not_found(
            "no_prediction",
            "chassis",
            format!(
                "no tire prediction for {chassis:?} at {track:?}{}: predictions come with each completed lap",
                q.lap.map(|l| format!(" lap {l}")).unwrap_or_default()
            ),
        ));
    };
    let t = ins.tire;
    let model = t.model.clone().unwrap_or_default();
    Ok(Json(PredictTire {
        track,
        chassis,
        lap: Some(u64::from(ins.lap)),
        predictor: t.predictor.clone(),
        predicted_loss_per_lap_s: t.predicted_loss_per_lap_seconds,
        loss_interval80_s: t.loss_interval80_s.map(|i| i.to_vec()),
        laps_until_0_5s_loss: t.laps_until_0_5s_loss.map(u64::from),
        recommended_pit_lap: t.recommended_pit_lap.map(u64::from),
        tire_wear: t.tire_wear,
        tire_wear_interval80: t.tire_wear_interval80,
        feature_scores: t.feature_scores,
        explanation: t.explanation,
        status: serde_json::to_value(&t.tire_status).unwrap_or(Value::Null),
        meta: json!({
            "model_version": model.version,
            "known_track": model.known_track,
            "generated_at": crate::http::now_rfc3339(),
        }),
    }))
}
