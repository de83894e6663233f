//! The admin endpoints: API keys (`GET/POST /api/keys`, `DELETE /api/keys/{id}`), deleting a
//! session (`DELETE /api/sessions/{id}`) and the audit log (`GET /api/audit`). Every change
//! is audited with who made it (the request's [`Principal`]).

use super::{AuthError, Principal, Role};
use crate::api::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// An API key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Public id (`k_...`): revoke with `DELETE /api/keys/{id}`.
    pub id: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_unix_s: f64,
    /// When it was revoked (absent while valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_unix_s: Option<f64>,
}

/// `GET /api/keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysResponse {
    /// Every key, revoked ones included, oldest first.
    pub keys: Vec<KeyInfo>,
}

/// `POST /api/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub role: Role,
    /// What the key is for (`ci`, `pit-laptop`), up to 100 characters (control characters
    /// become spaces; blank = none).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// The key: send it as `Authorization: Bearer KEY` or `X-API-Key: KEY`. Only its hash is
    /// stored; it cannot be shown again.
    pub key: String,
    pub role: Role,
    pub name: Option<String>,
    pub created_unix_s: f64,
}

/// `DELETE /api/keys/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedKey {
    pub id: String,
    /// `true`: revoked now; `false`: it already was.
    pub revoked: bool,
}

/// `DELETE /api/sessions/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedSession {
    pub session: String,
    pub deleted: bool,
}

/// One admin action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    /// When, Unix seconds.
    pub at_unix_s: f64,
    /// Who: `key:ID (NAME)`, `jwt:SUBJECT`, `cli:USER`, or `anonymous` (authentication off).
    pub actor: String,
    /// `key.create`, `key.revoke`, `session.delete`.
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// `GET /api/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    /// Newest first.
    pub entries: Vec<AuditItem>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many entries, newest first (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A key's name as stored: control characters as spaces, trimmed.
pub fn clean_name(n: &str) -> String {
    n.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The body of `POST /api/keys`, each fault named by its field.
fn parse_create(body: &[u8]) -> Result<CreateKeyRequest, ApiError> {
    use serde_json::Value;
    let hint = "send {\"role\": \"viewer|ingest|admin\", \"name\": \"...\"}";
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("not JSON ({e}): {hint}")))?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad("body", format!("not an object: {hint}")));
    };
    if let Some(k) = obj.keys().find(|k| *k != "role" && *k != "name") {
        return Err(ApiError::bad(k, format!("unknown field: {hint}")));
    }
    let role = match obj.get("role") {
        None | Some(Value::Null) => return Err(ApiError::bad("role", format!("missing: {hint}"))),
        Some(Value::String(r)) => Role::parse(r).ok_or_else(|| {
            ApiError::bad(
                "role",
                format!("{r:?} is not a role: viewer, ingest or admin"),
            )
        })?,
        Some(_) => {
            return Err(ApiError::bad(
                "role",
                "expected a string: viewer, ingest or admin",
            ))
        }
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(ApiError::bad("name", "expected a string")),
    };
    Ok(CreateKeyRequest { role, name })
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Store(e) => e.into(),
            e => ApiError::internal("internal", e.to_string()),
        }
    }
}

fn actor(who: &Option<Extension<Principal>>) -> String {
    who.as_ref()
        .map_or_else(|| "unknown".to_string(), |Extension(p)| p.actor.to_string())
}

/// Runs `f` on the access control's own store connection, off the async threads.
async fn with_auth<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&super::Auth) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let auth = st.auth.clone();
    tokio::task::spawn_blocking(move || f(&auth)).await?
}

/// Every API key (never the keys themselves: their ids, names, roles, when created and revoked).
#[utoipa::path(get, path = "/api/keys", responses(
    (status = 200, body = KeysResponse),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn list_keys(State(st): State<Arc<AppState>>) -> ApiResult<KeysResponse> {
    let rows = with_auth(&st, |a| Ok(a.store.lock().api_keys(true)?)).await?;
    Ok(Json(KeysResponse {
        keys: rows
            .into_iter()
            .filter_map(|r| {
                Some(KeyInfo {
                    role: Role::parse(&r.role)?,
                    id: r.id,
                    name: r.name,
                    created_unix_s: r.created_unix_s,
                    revoked_unix_s: r.revoked_unix_s,
                })
            })
            .collect(),
    }))
}

/// Creates an API key; the answer holds the key, shown this once (the store keeps a keyed
/// hash). Audited.
#[utoipa::path(post, path = "/api/keys", request_body(content = CreateKeyRequest), responses(
    (status = 201, body = CreatedKey),
    (status = 400, description = "Body unreadable, or a field invalid", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn create_key(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = parse_create(&body)?;
    let name = match req.name.as_deref() {
        Some(n) if n.chars().count() > 100 => {
            return Err(ApiError::bad("name", "at most 100 characters"))
        }
        Some(n) => Some(clean_name(n)).filter(|n| !n.is_empty()),
        None => None,
    };
    let actor = actor(&who);
    let role = req.role;
    let new = with_auth(&st, move |a| {
        Ok(a.create_key(role, name.as_deref(), &actor)?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: new.row.id,
            key: new.key,
            role,
            name: new.row.name,
            created_unix_s: new.row.created_unix_s,
        }),
    )
        .into_response())
}

/// Revokes an API key: refused by this server at once, by other servers sharing the store
/// within their key refresh (1 s by default). Audited.
#[utoipa::path(delete, path = "/api/keys/{id}", params(("id" = String, Path, description = "Key id (k_...)")), responses(
    (status = 200, body = RevokedKey),
    (status = 404, description = "No such key", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn revoke_key(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<RevokedKey> {
    let actor = actor(&who);
    let key = id.clone();
    match with_auth(&st, move |a| Ok(a.revoke_key(&key, &actor)?)).await? {
        Some(revoked) => Ok(Json(RevokedKey { id, revoked })),
        None => Err(ApiError::not_found(
            "no_key",
            "id",
            format!("no API key {id:?}; GET /api/keys lists them"),
        )),
    }
}

/// Deletes a stored session and all it holds (samples, laps, official timing, documents,
/// coaching alerts, the driver profiles it last updated). Audited. Delete sessions that have
/// ended: points arriving later for the same session create it again.
#[utoipa::path(delete, path = "/api/sessions/{id}", params(("id" = String, Path, description = "Session id")), responses(
    (status = 200, body = DeletedSession),
    (status = 404, description = "No such session", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn delete_session(
    State(st): State<Arc<AppState>>,
    who: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<DeletedSession> {
    let actor = actor(&who);
    let session = id.clone();
    let deleted = with_auth(&st, move |a| {
        Ok(a.store.lock().delete_session(
            &session,
            store::AuditEntry {
                actor: &actor,
                action: "session.delete",
                target: Some(&session),
                detail: None,
            },
        )?)
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found(
            "no_session",
            "id",
            format!("no stored session {id:?}; GET /api/sessions lists them"),
        ));
    }
    Ok(Json(DeletedSession {
        session: id,
        deleted,
    }))
}

/// The audit log of admin actions (key creation and revocation, over HTTP and by
/// `pitwall keys`; session deletion): who, what, when. Newest first.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery), responses(
    (status = 200, body = AuditResponse),
    (status = 400, description = "limit out of range", body = crate::http::ErrorBody),
    (status = 503, description = "Store unavailable", body = crate::http::ErrorBody)
))]
pub async fn audit(
    State(st): State<Arc<AppState>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AuditResponse> {
    let limit = match q {
        Ok(Query(q)) => q.limit.unwrap_or(100),
        Err(e) => return Err(ApiError::bad("limit", e.body_text())),
    };
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("limit", "must be between 1 and 1000"));
    }
    let rows = with_auth(&st, move |a| {
        Ok(a.store.lock().audit_log(limit as usize)?)
    })
    .await?;
    Ok(Json(AuditResponse {
        entries: rows
            .into_iter()
            .map(|r| AuditItem {
                id: r.id,
                at_unix_s: r.at_unix_s,
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect(),
    }))
}
