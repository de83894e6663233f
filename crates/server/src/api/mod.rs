//! The analysis API, one module per resource: sessions (laps, import report, lap comparison),
//! strategy, tires, the dashboard, drivers. Thin handlers: the work is in `analysis` and the
//! stored-session glue ([`crate::stored`]), run off the async threads. Every failure is an
//! [`ApiError`]: a status and a JSON body naming the field and the reason.

pub mod dashboard;
pub mod drivers;
pub mod sessions;
pub mod strategy;
pub mod tires;

pub use dashboard::*;
pub use drivers::*;
pub use sessions::*;
pub use strategy::*;
pub use tires::*;

use crate::http::ErrorBody;
use crate::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API failure: its status, a stable error code, the field at fault and what to do.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: Option<String>,
    pub reason: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// 400 `invalid_request`: a field of the request is wrong.
    pub fn bad(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
            reason,
        )
    }

    /// 404 with a code saying what is missing.
    pub fn not_found(code: &'static str, field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, Some(field), reason)
    }

    /// 422: the request is well formed but cannot be answered.
    pub fn unprocessable(code: &'static str, field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, Some(field), reason)
    }

    pub fn internal(code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, None, reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.code.to_string(),
                field: self.field,
                reason: self.reason,
            }),
        )
            .into_response()
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        match e {
            store::StoreError::NoSession(id) => ApiError::not_found(
                "no_session",
                "session",
                format!("no stored session {id:?}; GET /api/sessions lists them"),
            ),
            e => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
                e.to_string(),
            ),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal("internal", format!("the computation failed: {e}"))
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs `f` with the read connection, off the async threads.
pub(crate) async fn with_reader<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&store::Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let reader = st.reader.clone();
    tokio::task::spawn_blocking(move || f(&reader.lock())).await?
}
