//! Sessions: the laps of a stored session, its import report, two laps compared.

use super::{with_reader, ApiError, ApiResult};
use crate::stored;
use crate::AppState;
use analysis::coach;
use analysis::LapSource;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

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
    /// `stored_laps` (the session's analysis: live, or at the end of `import`, `sim`, `replay`,
    /// `analyse`) or `samples` (cut now from the stored samples of a session never analysed).
    pub source: String,
    /// Lap, lap time, sector times, validity, position, tyres, the 20 features, gaps and the
    /// insight of the lap.
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
    (status = 400, description = "A query parameter invalid", body = crate::http::ErrorBody),
    (status = 404, description = "No such session", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn session_laps(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<LapsQuery>,
) -> ApiResult<LapsResponse> {
    with_reader(&st, move |store| {
        let car = q.car.as_deref();
        let official: Vec<Value> = store
            .official_laps(&id, car)?
            .iter()
            .filter_map(|l| serde_json::to_value(l).ok())
            .collect();
        let stored_laps = store.laps(&id, car)?;
        let (source, laps) = if !stored_laps.is_empty() {
            (LapSource::StoredLaps, stored_laps)
        } else {
            let cut = stored::laps_from_store(store, &id)?;
            (
                LapSource::Samples,
                cut.iter()
                    .filter(|l| car.is_none_or(|c| l.chassis == c))
                    .map(stored::lap_row)
                    .collect(),
            )
        };
        Ok(Json(LapsResponse {
            session_id: id,
            source: source.as_str().to_string(),
            laps: laps.iter().map(lap_json).collect(),
            official_laps: official,
        }))
    })
    .await
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
    (status = 404, description = "No such session", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn session_import_report(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<ImportReportResponse> {
    with_reader(&st, move |store| {
        let report = store
            .session_meta(&id, store::META_IMPORT_REPORT)?
            .and_then(|j| serde_json::from_str::<Value>(&j).ok());
        let classification = store
            .classification(&id)?
            .and_then(|c| serde_json::to_value(c).ok());
        Ok(Json(ImportReportResponse {
            session_id: id,
            import_report: report,
            classification,
        }))
    })
    .await
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
    (status = 400, description = "A query parameter missing or invalid", body = crate::http::ErrorBody),
    (status = 404, description = "No such session, or no samples of that lap", body = crate::http::ErrorBody),
    (status = 422, description = "A lap with too few samples, or no corners found", body = crate::http::ErrorBody)
))]
pub async fn compare_laps(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<CompareLapsQuery>,
) -> ApiResult<coach::LapComparison> {
    let (q_car_a, q_lap_a, q_lap_b) = (q.car_a.clone(), q.lap_a, q.lap_b);
    let q_car_b = q.car_b.clone().unwrap_or_else(|| q.car_a.clone());
    let (map, track, a, b) = with_reader(&st, move |store| {
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
        Ok((map, track, a, b))
    })
    .await?;
    for (samples, field, car, lap) in [
        (&a, "lap_a", &q_car_a, q_lap_a),
        (&b, "lap_b", &q_car_b, q_lap_b),
    ] {
        if samples.is_empty() {
            return Err(ApiError::not_found(
                "no_lap",
                field,
                format!("no samples of lap {lap} of car {car:?} in this session"),
            ));
        }
    }
    let map = match map {
        Some(m) => m,
        None => {
            coach::CornerMap::detect(&track, &a, &coach::DetectOptions::default()).map_err(|e| {
                ApiError::unprocessable(
                    "not_comparable",
                    "lap_a",
                    format!("no corners from lap A ({} samples): {e}", a.len()),
                )
            })?
        }
    };
    coach::compare_laps(&map, &a, &b).map(Json).map_err(|e| {
        ApiError::unprocessable(
            "not_comparable",
            if a.len() < b.len() { "lap_a" } else { "lap_b" },
            format!("{e} (lap A {} samples, lap B {} samples)", a.len(), b.len()),
        )
    })
}
