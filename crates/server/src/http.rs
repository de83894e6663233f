//! The HTTP edge: ingestion, sessions, health, metrics, OpenAPI and the WebSocket upgrade.
//! Handlers are thin: they decode, hand over to the pipeline and answer. Every error answer
//! is JSON (`ErrorBody`), including the framework's own 404/405 answers.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Request, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// Every error answer: a machine-readable code, the field at fault when there is one, and
/// the reason in words that say what to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Short code, e.g. `invalid_json`, `body_too_large`, `unsupported_media_type`.
    pub error: String,
    /// The field (or `body`) the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong and what to do.
    pub reason: String,
}

pub fn error(
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    reason: impl Into<String>,
) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.to_string(),
            field: field.map(str::to_string),
            reason: reason.into(),
        }),
    )
        .into_response()
}

/// One refused point of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedPoint {
    /// Position of the point in the array (or line in NDJSON), from 0.
    pub index: usize,
    pub field: String,
    pub reason: String,
}

/// The answer to an ingest request.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Points validated and queued (stored within a second).
    pub accepted: usize,
    pub rejected: Vec<RejectedPoint>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub ok: bool,
    pub status: String,
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    pub store: String,
    pub bus: String,
}

/// A stored car of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct CarSummary {
    pub car_id: String,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
}

/// A stored session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    pub id: String,
    pub track: Option<String>,
    pub cars: Vec<CarSummary>,
    pub samples: u64,
    pub first_t_s: Option<f64>,
    pub last_t_s: Option<f64>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PitWall",
        description = "Real-time race telemetry, tire and strategy platform. Live updates: WebSocket /ws/realtime (telemetry_update: {\"type\":\"telemetry_update\",\"data\":[TelemetryPoint...]}, insight_update: an Insight, one per car and lap, revised with a higher `revision` when its pit window arrives; coaching_alert; send {\"type\":\"subscribe\",\"track\":..,\"chassis\":..} or {\"type\":\"ping\"})."
    ),
    paths(
        ingest,
        sessions,
        agents,
        health,
        ready,
        metrics,
        crate::api::session_laps,
        crate::api::session_import_report,
        crate::api::strategy_simulate,
        crate::api::dashboard_live,
        crate::api::driver_profile,
        crate::api::driver_alerts,
        crate::api::drivers_compare,
        crate::api::predict_tire,
        crate::api::compare_laps,
        crate::auth::admin::list_keys,
        crate::auth::admin::create_key,
        crate::auth::admin::revoke_key,
        crate::auth::admin::delete_session,
        crate::auth::admin::audit
    ),
    components(schemas(
        ErrorBody,
        IngestResponse,
        AgentsResponse,
        Agent,
        RejectedPoint,
        Health,
        Ready,
        SessionSummary,
        CarSummary,
        telemetry::TelemetryPoint,
        crate::api::LapsResponse,
        crate::api::ImportReportResponse,
        crate::api::SimulateSessionRequest,
        crate::api::SimulateResponse,
        crate::api::DashboardLive,
        crate::api::ProfileResponse,
        crate::api::AlertsResponse,
        crate::api::PredictTire,
        analysis::Insight,
        analysis::TireInsight,
        analysis::PitWindow,
        analysis::Call,
        analysis::CoachingAlert,
        analysis::SessionEvent,
        crate::auth::Role,
        crate::auth::admin::KeyInfo,
        crate::auth::admin::KeysResponse,
        crate::auth::admin::CreateKeyRequest,
        crate::auth::admin::CreatedKey,
        crate::auth::admin::RevokedKey,
        crate::auth::admin::DeletedSession,
        crate::auth::admin::AuditItem,
        crate::auth::admin::AuditResponse
    ))
)]
pub struct ApiDoc;

pub fn router(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/api/telemetry/ingest", post(ingest))
        .route("/api/ingest", post(ingest))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}/laps", get(crate::api::session_laps))
        .route(
            "/api/sessions/{id}/import_report",
            get(crate::api::session_import_report),
        )
        .route("/api/sessions/{id}/compare", get(crate::api::compare_laps))
        .route(
            "/api/strategy/simulate",
            post(crate::api::strategy_simulate),
        )
        .route("/api/dashboard/live", get(crate::api::dashboard_live))
        .route("/api/drivers/compare", get(crate::api::drivers_compare))
        .route(
            "/api/predict_tire/{track}/{chassis}",
            get(crate::api::predict_tire),
        )
        .route("/api/drivers/{id}/profile", get(crate::api::driver_profile))
        .route("/api/drivers/{id}/alerts", get(crate::api::driver_alerts))
        .route("/api/agents", get(agents))
        .route(
            "/api/keys",
            get(crate::auth::admin::list_keys).post(crate::auth::admin::create_key),
        )
        .route(
            "/api/keys/{id}",
            axum::routing::delete(crate::auth::admin::revoke_key),
        )
        .route(
            "/api/sessions/{id}",
            axum::routing::delete(crate::auth::admin::delete_session),
        )
        .route("/api/audit", get(crate::auth::admin::audit))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .route("/", get(dashboard))
        .route("/assets/{*file}", get(asset))
        .route("/ws/realtime", get(ws_upgrade))
        .fallback(not_found)
        // Rate limits (REST requests per client), keyed on the API key or JWT subject that
        // the access check below (outer, so it runs first) puts in the request.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::rest_limit,
        ))
        // Access control: one check per request, by matched route (crate::auth::routes).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::map_response(crate::security::headers));
    let router = match crate::security::cors(&state.config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// One live worker (or server) of the Redis bus, as its last heartbeat said.
#[derive(Serialize, ToSchema)]
pub struct Agent {
    pub id: String,
    /// `analysis`, `strategy`, `store`, `delivery` (a `serve --workers`) or `server`.
    pub role: String,
    /// Telemetry partitions held (analysis workers).
    pub partitions: Vec<usize>,
    /// Messages handled since the worker started.
    pub processed: u64,
    /// Messages delivered to it and not acknowledged yet.
    pub pending: u64,
    /// Age of the newest message it handled when it handled it, ms.
    pub lag_ms: u64,
    /// When the heartbeat was written, Unix ms.
    pub heartbeat_unix_ms: u64,
}

/// `GET /api/agents`.
#[derive(Serialize, ToSchema)]
pub struct AgentsResponse {
    /// `redis` or `in-process`.
    pub bus: String,
    /// The live workers, by id (none on the in-process bus).
    pub agents: Vec<Agent>,
}

/// The live workers of the Redis bus (role, partitions, processed, pending, lag), this server
/// included; an empty list on the in-process bus.
#[utoipa::path(get, path = "/api/agents", responses(
    (status = 200, body = AgentsResponse),
    (status = 503, description = "The worker registry (Redis) is unreachable", body = ErrorBody)
))]
pub async fn agents(State(st): State<Arc<AppState>>) -> Response {
    let Some(r) = &st.redis else {
        return Json(AgentsResponse {
            bus: "in-process".into(),
            agents: Vec::new(),
        })
        .into_response();
    };
    match r.workers().await {
        Ok(list) => Json(AgentsResponse {
            bus: "redis".into(),
            agents: list
                .into_iter()
                .map(|w| Agent {
                    id: w.id,
                    role: w.role,
                    partitions: w.partitions,
                    processed: w.processed,
                    pending: w.pending,
                    lag_ms: w.lag_ms,
                    heartbeat_unix_ms: w.heartbeat_unix_ms,
                })
                .collect(),
        })
        .into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "registry_unavailable",
            None,
            format!("the worker registry is unreachable: {e}"),
        ),
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Turns the framework's plain-text error answers (405, bad upgrade requests, ...) into JSON.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let reason = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        t => t.to_string(),
    };
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        _ => "bad_request",
    };
    let mut out = error(status, code, None, reason);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
        format!(
            "no route for {} {}: see /docs",
            req.method(),
            req.uri().path()
        ),
    )
}

fn content_kind(headers: &HeaderMap) -> Result<bool, Box<Response>> {
    let ct = match headers.get(header::CONTENT_TYPE) {
        None => return Ok(false),
        Some(v) => v.to_str().unwrap_or("").to_ascii_lowercase(),
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" | "text/json" | "" => Ok(false),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
        | "application/json-seq" | "application/jsonlines" => Ok(true),
        other => Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("content-type"),
            format!("{other} is not accepted: send application/json (one object or an array) or application/x-ndjson"),
        ))),
    }
}

/// Bytes of an over-limit body still read (and thrown away) before the 413 is sent.
const DRAIN_CAP_BYTES: usize = 256 * 1024 * 1024;
/// Time allowed for that drain.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a body of at most `limit` bytes; `None` when it is larger.
///
/// A body without a declared length is only known to be too large once `limit` bytes have
/// arrived. Answering at that point and closing makes most clients fail with a broken pipe
/// before they read the 413, so the rest is read and discarded (up to `DRAIN_CAP_BYTES`, for at
/// most `DRAIN_TIMEOUT`) before the answer goes out: the client then sees the JSON error.
async fn read_body_capped(body: axum::body::Body, limit: usize) -> Option<Bytes> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if buf.len() + chunk.len() > limit {
            let mut drained = buf.len() + chunk.len();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while drained < DRAIN_CAP_BYTES {
                    match stream.next().await {
                        Some(Ok(c)) => drained += c.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return None;
        }
        buf.extend_from_slice(&chunk);
    }
    Some(Bytes::from(buf))
}

/// Ingest telemetry points.
///
/// Valid points are kept even when others in the same body are refused: 200 when at least
/// one point was accepted, 422 (same body) when none was.
#[utoipa::path(
    post,
    path = "/api/telemetry/ingest",
    request_body(description = "One point or an array of points (the schema is patched in by `api_spec`)", content_type = "application/json", content = String),
    responses(
        (status = 200, description = "At least one point accepted", body = IngestResponse),
        (status = 422, description = "No point accepted", body = IngestResponse),
        (status = 400, description = "Body unreadable (not JSON, not UTF-8, empty)", body = ErrorBody),
        (status = 413, description = "Body over the configured limit, or more valid points than the ingest queue holds", body = ErrorBody),
        (status = 415, description = "Content type not JSON or NDJSON", body = ErrorBody),
        (status = 429, description = "Over this source's points-per-second limit (nothing accepted; see Retry-After)", body = ErrorBody),
        (status = 503, description = "The ingest queue is full: nothing of this body was kept; send it again after Retry-After seconds", body = ErrorBody),
    )
)]
pub async fn ingest(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let client = crate::limits::client_key(&req);
    let ndjson = match content_kind(&headers) {
        Ok(n) => n,
        Err(resp) => {
            st.metrics
                .requests_rejected
                .with_label_values(&["unsupported_media_type"])
                .inc();
            return *resp;
        }
    };
    let limit = st.config.body_limit_bytes;
    let too_large = || {
        st.metrics
            .requests_rejected
            .with_label_values(&["body_too_large"])
            .inc();
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            Some("body"),
            format!(
                "body is larger than the limit of {limit} bytes: split it into smaller batches"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes: Bytes = match read_body_capped(req.into_body(), limit).await {
        Some(b) => b,
        None => return too_large(),
    };
    let now = crate::ring::unix_ns_now() as f64 / 1e9;
    let parsed = match telemetry::parse_body(&bytes, ndjson, now) {
        Ok(p) => p,
        Err(e) => {
            let code = e.code();
            st.metrics
                .requests_rejected
                .with_label_values(&[code])
                .inc();
            return error(StatusCode::BAD_REQUEST, code, Some("body"), e.to_string());
        }
    };
    let ring_capacity = st.config.ring_capacity;
    if parsed.samples.len() > ring_capacity {
        st.metrics
            .requests_rejected
            .with_label_values(&["too_many_points"])
            .inc();
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_points",
            Some("body"),
            format!(
                "{} valid points in one body, more than the ingest queue holds ({ring_capacity}, \
                 --ring-capacity): split it into smaller batches",
                parsed.samples.len()
            ),
        );
    }
    if let Some(refused) = crate::limits::ingest_refused(&st, &client, parsed.total as u64) {
        return refused;
    }
    let crate::Accepted { accepted, rejected } = match st.accept_or_busy("http", parsed) {
        Ok(a) => a,
        Err(_) => {
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ingest_full",
                Some("body"),
                "the ingest queue is full: nothing of this body was kept; send it again after Retry-After seconds".to_string(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return resp;
        }
    };
    let rejected: Vec<RejectedPoint> = rejected
        .into_iter()
        .map(|(index, r)| RejectedPoint {
            index,
            field: r.field,
            reason: r.reason,
        })
        .collect();
    let status = if accepted > 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, Json(IngestResponse { accepted, rejected })).into_response()
}

/// Stored sessions: id, track, cars with their sample counts, first and last time.
#[utoipa::path(get, path = "/api/sessions", responses(
    (status = 200, body = Vec<SessionSummary>),
    (status = 503, description = "Store unavailable", body = ErrorBody)
))]
pub async fn sessions(State(st): State<Arc<AppState>>) -> Response {
    let reader = st.reader.clone();
    let res = tokio::task::spawn_blocking(move || reader.lock().sessions()).await;
    match res {
        Ok(Ok(list)) => Json(
            list.into_iter()
                .map(|s| SessionSummary {
                    id: s.id,
                    track: s.track,
                    samples: s.samples,
                    first_t_s: s.first_t_s,
                    last_t_s: s.last_t_s,
                    cars: s
                        .cars
                        .into_iter()
                        .map(|c| CarSummary {
                            car_id: c.car_id,
                            samples: c.samples,
                            first_t_s: c.first_t_s,
                            last_t_s: c.last_t_s,
                        })
                        .collect(),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
            e.to_string(),
        ),
    }
}

/// Liveness.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        ok: true,
        status: "healthy".into(),
        timestamp: now_rfc3339(),
    })
}

/// Readiness: the store is open and the bus is running.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, body = Ready),
    (status = 503, description = "Not ready; the body says why", body = Ready)
))]
pub async fn ready(State(st): State<Arc<AppState>>) -> Response {
    let reader = st.reader.clone();
    let store = match tokio::task::spawn_blocking(move || reader.lock().ping()).await {
        Ok(Ok(())) if st.store_writer_alive() => "open".to_string(),
        Ok(Ok(())) => "writer stopped".to_string(),
        Ok(Err(e)) => format!("unavailable: {e}"),
        Err(e) => format!("unavailable: {e}"),
    };
    // A Redis bus that cannot reach Redis is not ready (it reconnects with backoff).
    let bus = if !st.bus.is_running() {
        "stopped"
    } else if !st.bus.is_ready() {
        "unreachable"
    } else {
        "running"
    }
    .to_string();
    let ok = store == "open" && bus == "running";
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            ready: ok,
            store,
            bus,
        }),
    )
        .into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)
))]
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.ring_depth.set(st.ring.len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = st.metrics.render();
            if let Some(r) = &st.redis {
                text.push_str(&redis_bus_metrics(
                    &r.stats(),
                    bus::Bus::is_ready(r.as_ref()),
                ));
            }
            text
        },
    )
        .into_response()
}

/// The Redis bus's counters in Prometheus text: what was published, trimmed, claimed,
/// dead-lettered and lost, and the reconnects and resets of Redis itself.
fn redis_bus_metrics(s: &bus::RedisBusStats, ready: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let counters: [(&str, u64, &str); 15] = [
        ("published", s.published, "messages published"),
        ("entries_added", s.entries_added, "stream entries added"),
        (
            "publish_round_trips",
            s.publish_round_trips,
            "pipelined publish round trips",
        ),
        (
            "trimmed",
            s.trimmed,
            "entries removed by the stream caps (XTRIM MAXLEN ~)",
        ),
        (
            "delivered",
            s.delivered,
            "entries delivered to this process",
        ),
        ("acked", s.acked, "entries acknowledged (XACK)"),
        (
            "claimed",
            s.claimed,
            "pending entries claimed from other consumers (XAUTOCLAIM)",
        ),
        (
            "pending_lost",
            s.pending_lost,
            "pending entries lost (trimmed or Redis reset) before they were handled",
        ),
        (
            "dead_lettered",
            s.dead_lettered,
            "entries moved to the dead-letter stream",
        ),
        (
            "decode_errors",
            s.decode_errors,
            "entries that did not decode",
        ),
        ("reconnects", s.reconnects, "reconnections to Redis"),
        ("errors", s.errors, "Redis errors"),
        (
            "redis_resets",
            s.redis_resets,
            "times Redis came back empty (what it held was lost)",
        ),
        (
            "groups_recreated",
            s.groups_recreated,
            "consumer groups created again after a reset",
        ),
        (
            "backpressure_waits",
            s.backpressure_waits,
            "telemetry publishes that waited for the consumers",
        ),
    ];
    for (name, v, help) in counters {
        let _ = writeln!(
            out,
            "# HELP pitwall_redis_bus_{name}_total Redis bus: {help}."
        );
        let _ = writeln!(out, "# TYPE pitwall_redis_bus_{name}_total counter");
        let _ = writeln!(out, "pitwall_redis_bus_{name}_total {v}");
    }
    let _ = writeln!(
        out,
        "# HELP pitwall_redis_bus_ready Redis bus: 1 while Redis is reachable."
    );
    let _ = writeln!(out, "# TYPE pitwall_redis_bus_ready gauge");
    let _ = writeln!(out, "pitwall_redis_bus_ready {}", u8::from(ready));
    out
}

/// The OpenAPI document: generated from the handlers and types above, with the ingest body's
/// schema (one point or a non-empty array, every field with its range and aliases) taken from
/// `assets/ingest_point.schema.json`, where it is easier to keep exact than in attributes.
pub fn api_spec() -> &'static str {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let mut v = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let point: serde_json::Value =
            serde_json::from_str(include_str!("../assets/ingest_point.schema.json"))
                .unwrap_or_default();
        v["components"]["schemas"]["IngestPoint"] = point;
        let body = serde_json::json!({
            "description": "One point or a non-empty array of points as JSON. NDJSON (one point per line) is \
                            also accepted with Content-Type application/x-ndjson. Valid points are kept even \
                            when others in the body are refused.",
            "required": true,
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/IngestPoint"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/IngestPoint"}}
            ]}}}
        });
        v["paths"]["/api/telemetry/ingest"]["post"]["requestBody"] = body;
        let mut alias = v["paths"]["/api/telemetry/ingest"].clone();
        alias["post"]["operationId"] = "ingest_alias".into();
        alias["post"]["summary"] = "Alias of POST /api/telemetry/ingest.".into();
        v["paths"]["/api/ingest"] = alias;
        crate::auth::routes::document(&mut v);
        serde_json::to_string_pretty(&v).unwrap_or_default()
    })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], api_spec()).into_response()
}

/// The live dashboard page. Every asset is compiled into the binary (no CDN: works offline).
async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../assets/dashboard/index.html"))
}

/// The dashboard's and `/docs`' static files, embedded: (URL path under /assets/, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/dashboard/app.css"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/docs.js"),
    ),
    (
        "docs.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/docs.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/dashboard/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/dashboard/vendor/uPlot.min.css"),
    ),
];

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, ctype, bytes)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            Some("path"),
            format!("no dashboard asset named {file:?}"),
        ),
    }
}

async fn docs() -> Html<&'static str> {
    Html(include_str!("../assets/docs.html"))
}

async fn ws_upgrade(
    State(st): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "websocket_upgrade_required",
                None,
                format!("{e}: connect with a WebSocket client"),
            )
        }
    };
    if st.hub.client_count() >= st.config.ws_max_clients {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_clients",
            None,
            format!(
                "{} WebSocket clients already connected",
                st.config.ws_max_clients
            ),
        );
    }
    let hub = st.hub.clone();
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| crate::ws::serve_client(hub, socket))
}
