//! Drivers: a driver's profile (baseline per corner), alerts, two drivers compared.

use super::{with_reader, ApiError, ApiResult};
use crate::AppState;
use analysis::coach;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

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

fn no_driver(id: &str) -> ApiError {
    ApiError::not_found(
        "no_driver",
        "id",
        format!(
            "no profile for driver/car {id:?} yet: it is built from the car's laps (live as they stream, or by `pitwall analyse` for a stored session)"
        ),
    )
}

/// A driver's profile: per-corner baseline (mean and spread) and consistency.
#[utoipa::path(get, path = "/api/drivers/{id}/profile", params(("id" = String, Path, description = "Car id"), ProfileQuery), responses(
    (status = 200, body = ProfileResponse),
    (status = 400, description = "A query parameter invalid", body = crate::http::ErrorBody),
    (status = 404, description = "No profile for this car (yet)", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn driver_profile(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
) -> ApiResult<ProfileResponse> {
    let car = id.clone();
    let list = with_reader(&st, move |store| Ok(store.profiles(&car)?)).await?;
    list.into_iter()
        .find(|(t, _, _)| q.track.as_deref().is_none_or(|want| want == t))
        .and_then(|(t, s, j)| parse_profile(t, s, &j))
        .map(Json)
        .ok_or_else(|| no_driver(&id))
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
    (status = 400, description = "limit out of range", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn driver_alerts(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<AlertsResponse> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad(
            "limit",
            format!("must be 1-1000 (got {limit})"),
        ));
    }
    let car = id.clone();
    let rows = with_reader(&st, move |store| Ok(store.alerts(&car, limit as usize)?)).await?;
    Ok(Json(AlertsResponse {
        car_id: id,
        alerts: rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.json).ok())
            .collect(),
    }))
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
    (status = 400, description = "A query parameter missing or invalid", body = crate::http::ErrorBody),
    (status = 404, description = "A driver without a profile", body = crate::http::ErrorBody),
    (status = 422, description = "The profiles are on different corner maps", body = crate::http::ErrorBody)
))]
pub async fn drivers_compare(
    State(st): State<Arc<AppState>>,
    Query(q): Query<CompareQuery>,
) -> ApiResult<coach::ProfileComparison> {
    let (a, b) = (q.a.clone(), q.b.clone());
    let (pa, pb) = with_reader(&st, move |s| Ok((s.profiles(&a)?, s.profiles(&b)?))).await?;
    let Some((track, _, ja)) = pa
        .into_iter()
        .find(|(t, _, _)| q.track.as_deref().is_none_or(|w| w == t))
    else {
        return Err(no_driver(&q.a));
    };
    let Some((_, _, jb)) = pb.into_iter().find(|(t, _, _)| *t == track) else {
        return Err(no_driver(&q.b));
    };
    let (Ok(a), Ok(b)) = (
        serde_json::from_str::<coach::DriverProfile>(&ja),
        serde_json::from_str::<coach::DriverProfile>(&jb),
    ) else {
        return Err(ApiError::internal(
            "bad_profile",
            "a stored profile could not be read",
        ));
    };
    coach::compare_profiles(&a, &b)
        .map(Json)
        .map_err(|e| ApiError::unprocessable("not_comparable", "b", e.to_string()))
}
