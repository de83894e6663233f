//! The route -> role table, and the OpenAPI document's security drawn from it.

use super::Role;
use axum::http::Method;

/// The HTTP methods an OpenAPI path item may hold operations for.
pub const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The WebSocket route (its token may come as `?token=`).
pub const WS_PATH: &str = "/ws/realtime";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials: liveness, readiness, the dashboard's page and assets, the API docs.
    Public,
    /// This role or above.
    Role(Role),
}

/// The routes the table names, with what they need; `None` for a route it does not name.
/// `path` is the route's template as matched (`/api/sessions/{id}/laps`).
pub fn listed(method: &Method, path: &str) -> Option<Access> {
    use Access::{Public, Role as R};
    use Role::{Admin, Ingest, Viewer};
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match path {
        "/health" | "/ready" | "/" | "/assets/{*file}" | "/docs" | "/api/openapi.json" => Public,
        "/api/telemetry/ingest" | "/api/ingest" if *method == Method::POST => R(Ingest),
        "/api/keys" if read || *method == Method::POST => R(Admin),
        "/api/keys/{id}" if *method == Method::DELETE => R(Admin),
        "/api/sessions/{id}" if *method == Method::DELETE => R(Admin),
        "/api/audit" if read => R(Admin),
        "/api/strategy/simulate" if *method == Method::POST => R(Viewer),
        "/api/sessions"
        | "/api/sessions/{id}/laps"
        | "/api/sessions/{id}/import_report"
        | "/api/sessions/{id}/compare"
        | "/api/dashboard/live"
        | "/api/drivers/compare"
        | "/api/predict_tire/{track}/{chassis}"
        | "/api/drivers/{id}/profile"
        | "/api/drivers/{id}/alerts"
        | "/api/agents"
        | "/metrics"
        | WS_PATH
            if read =>
        {
            R(Viewer)
        }
        _ => return None,
    })
}

/// What a route needs: as [`listed`], and `admin` for anything the table does not name (a
/// route added without an entry is closed, not open).
pub fn access(method: &Method, path: &str) -> Access {
    listed(method, path).unwrap_or(Access::Role(Role::Admin))
}

/// Adds the security schemes to the OpenAPI document and, to every operation, what it needs:
/// `security` (empty for public ones), `x-pitwall-role`, and the 401/403 answers.
pub fn document(doc: &mut serde_json::Value) {
    use serde_json::json;
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key (`pitwall keys create`, `POST /api/keys`) or a JWT from the configured identity provider. Needed only when authentication is on (`--auth`, a JWT key, or any non-loopback address)."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "An API key, as an alternative to `Authorization: Bearer`."}
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            if !OPENAPI_METHODS.contains(&method.as_str()) {
                continue;
            }
            let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            match access(&m, path) {
                Access::Public => op["security"] = json!([]),
                Access::Role(role) => {
                    op["security"] = json!([{"bearer": []}, {"apiKey": []}]);
                    op["x-pitwall-role"] = json!(role.name());
                    let err = json!({"$ref": "#/components/schemas/ErrorBody"});
                    op["responses"]["401"] = json!({
                        "description": "No credentials, or an unknown, revoked, expired or badly signed one (header `WWW-Authenticate: Bearer`)",
                        "content": {"application/json": {"schema": err.clone()}}
                    });
                    op["responses"]["403"] = json!({
                        "description": format!("The credential's role is below {role}"),
                        "content": {"application/json": {"schema": err}}
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the OpenAPI document is named in the table: a new route cannot be
    /// left to the default by mistake.
    #[test]
    fn every_documented_route_is_in_the_table() {
        let doc: serde_json::Value =
            serde_json::from_str(crate::http::api_spec()).expect("the document is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let mut n = 0;
        for (path, item) in paths {
            for method in item.as_object().expect("operations").keys() {
                if !OPENAPI_METHODS.contains(&method.as_str()) {
                    continue;
                }
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
                assert!(
                    listed(&m, path).is_some(),
                    "{method} {path} is not in auth::routes::listed"
                );
                n += 1;
            }
        }
        assert!(n >= 20, "{n} operations");
        assert_eq!(
            access(&Method::PUT, "/api/sessions"),
            Access::Role(Role::Admin)
        );
        assert_eq!(access(&Method::GET, WS_PATH), Access::Role(Role::Viewer));
    }
}
