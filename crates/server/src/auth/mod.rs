//! Access control: who may call what.
//!
//! - **Roles**, a hierarchy: `admin` > `ingest` > `viewer` (a role may do everything the roles
//!   below it may). viewer: every GET of the API, `/metrics`, the WebSocket, the strategy
//!   simulation; ingest: also `POST` telemetry; admin: also keys, the audit log, deleting
//!   sessions. The table is [`routes::access`]; a route it does not name needs `admin`.
//! - **Credentials**: API keys ([`keys`]: `pw_...`, only a keyed hash is stored) or JWTs from an
//!   identity provider ([`jwt`]), sent as `Authorization: Bearer ...` or `X-API-Key: ...`
//!   (the WebSocket may send `?token=...` on the upgrade instead).
//! - **One middleware** ([`require`]) applied in `http::router`: it looks the matched route
//!   up, checks the credential and answers 401 (`WWW-Authenticate: Bearer`) or 403 with an
//!   `ErrorBody`, or passes the request on with its [`Principal`] (for the audit log).
//! - **Off on loopback**: authentication is on with `--auth` or a JWT key; a server bound to a
//!   non-loopback address refuses to start without it unless `--insecure`
//!   ([`AuthConfig::check_exposure`]).
//! - **UDP** cannot carry a token: datagrams are accepted from the [`udp_allow`] list only.

pub mod admin;
pub mod jwt;
pub mod keys;
pub mod routes;
pub mod udp_allow;

use crate::http::ErrorBody;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use utoipa::ToSchema;

pub use routes::Access;

/// What a credential may do. Ordered: `Viewer < Ingest < Admin`; a role may do all that the
/// roles below it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: GET endpoints, `/metrics`, the WebSocket, strategy simulations.
    Viewer,
    /// Sends telemetry (`POST /api/telemetry/ingest`, `pitwall replay --to`), and reads.
    Ingest,
    /// Everything: API keys, the audit log, deleting sessions.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Ingest, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
            Role::Admin => "admin",
        }
    }

    /// `viewer`, `ingest` or `admin` (case-insensitive).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: viewer, ingest or admin"))
    }
}

/// Who is calling: their role (`None`: a valid token that carries no PitWall role) and how
/// the audit log names them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Option<Role>,
    /// `key:ID (NAME)`, `jwt:SUBJECT`, or `anonymous` when authentication is off.
    pub actor: Arc<str>,
}

impl Principal {
    /// The caller when authentication is off (loopback, or `--insecure`): may do everything.
    pub fn anonymous() -> Principal {
        Principal {
            role: Some(Role::Admin),
            actor: Arc::from("anonymous"),
        }
    }
}

/// Access control settings (`[auth]` in the config file; flags `--auth`, `--insecure`,
/// `--jwt-*`, `--udp-allow`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials (API keys from the store) even on a loopback address.
    pub required: bool,
    /// Serve on a non-loopback address without authentication (refused otherwise).
    pub insecure: bool,
    /// HS256 secret shared with the identity provider (at least 32 bytes). Turns auth on.
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA: RS256/384/512; EC P-256/P-384: ES256/ES384). Turns auth on.
    pub jwt_public_key: Option<PathBuf>,
    /// The claim holding the role (`viewer`, `ingest`, `admin`, or a list of them); a dotted
    /// path reaches into objects (`realm_access.roles`).
    pub jwt_role_claim: String,
    /// When set, a token's `aud` must contain it.
    pub jwt_audience: Option<String>,
    /// When set, a token's `iss` must be it.
    pub jwt_issuer: Option<String>,
    /// How often the server re-reads the API keys from the store, ms (keys created or revoked
    /// by another process, `pitwall keys`, take effect within this).
    pub key_refresh_ms: u64,
    /// Networks UDP datagrams are accepted from; the rest are dropped and counted.
    pub udp_allow: Vec<ipnet::IpNet>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("required", &self.required)
            .field("insecure", &self.insecure)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("jwt_public_key", &self.jwt_public_key)
            .field("jwt_role_claim", &self.jwt_role_claim)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("key_refresh_ms", &self.key_refresh_ms)
            .field("udp_allow", &self.udp_allow)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: false,
            insecure: false,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_role_claim: "role".into(),
            jwt_audience: None,
            jwt_issuer: None,
            key_refresh_ms: 1000,
            udp_allow: udp_allow::default_networks(),
        }
    }
}

impl AuthConfig {
    /// Whether requests need credentials: `--auth`, or a JWT key configured.
    pub fn enabled(&self) -> bool {
        self.required || self.jwt_secret.is_some() || self.jwt_public_key.is_some()
    }

    /// Secure by default: a server reachable from other machines (HTTP bound to a
    /// non-loopback address) needs authentication, or `--insecure` to say it is meant.
    pub fn check_exposure(&self, http: SocketAddr) -> Result<(), crate::config::ConfigError> {
        if http.ip().is_loopback() || self.enabled() || self.insecure {
            return Ok(());
        }
        Err(crate::config::ConfigError::Unprotected { addr: http })
    }
}

/// Why a credential was refused (the 401's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "no credentials: send an API key or token as `Authorization: Bearer KEY` or \
         `X-API-Key: KEY` (`pitwall keys create --role viewer` prints a key)"
    )]
    Missing,
    #[error("unknown or revoked API key")]
    UnknownKey,
    #[error("token refused: {0}")]
    BadToken(String),
    #[error(
        "not an API key (pw_...) and no JWT key is configured (--jwt-secret, --jwt-public-key)"
    )]
    NotAKey,
}

/// Errors setting access control up, or managing keys.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the system's random number generator failed")]
    Random,
    #[error("JWT settings: {0}")]
    Jwt(String),
}

/// The access control of a running server: settings, the API keys in memory, the JWT
/// verifier, the UDP allow-list and a store connection of its own (key lookups, admin writes:
/// keys, audit, session deletion; rare, short transactions beside the store writer's).
pub struct Auth {
    enabled: bool,
    config: AuthConfig,
    hasher: keys::KeyHasher,
    keys: keys::KeyCache,
    jwt: Option<jwt::JwtVerifier>,
    udp_allow: udp_allow::UdpAllow,
    /// The caller while authentication is off (made once: cloning it is an `Arc` increment).
    anonymous: Principal,
    pub store: Arc<Mutex<Store>>,
}

impl Auth {
    /// Sets access control up over `store` (blocking: reads the deployment secret and the
    /// keys, and the JWT key file).
    pub fn open(config: &AuthConfig, mut store: Store) -> Result<Auth, AuthError> {
        let hasher = keys::KeyHasher::from_store(&mut store)?;
        let jwt = jwt::JwtVerifier::from_config(config)?;
        let auth = Auth {
            enabled: config.enabled(),
            config: config.clone(),
            hasher,
            keys: keys::KeyCache::default(),
            jwt,
            udp_allow: udp_allow::UdpAllow::new(&config.udp_allow),
            anonymous: Principal::anonymous(),
            store: Arc::new(Mutex::new(store)),
        };
        auth.refresh()?;
        Ok(auth)
    }

    /// Whether requests need credentials.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The UDP allow-list.
    pub fn udp_allow(&self) -> &udp_allow::UdpAllow {
        &self.udp_allow
    }

    /// Who a credential is: an API key (`pw_...`) from memory, else a JWT.
    pub fn authenticate(&self, token: &str) -> Result<Principal, Denied> {
        if token.starts_with(keys::KEY_PREFIX) {
            let hash = self.hasher.hash(token);
            return self.keys.get(&hash).ok_or(Denied::UnknownKey);
        }
        match &self.jwt {
            Some(v) => v.verify(token),
            None => Err(Denied::NotAKey),
        }
    }

    /// Re-reads the valid keys from the store (blocking). Holds the store connection while it
    /// swaps them in, so that it cannot bring back a key revoked meanwhile.
    pub fn refresh(&self) -> Result<(), AuthError> {
        let store = self.store.lock();
        let rows = store.api_keys(false)?;
        self.keys.replace(&rows);
        Ok(())
    }

    /// Creates a key (blocking): stored as a hash, audited, valid at once here.
    pub fn create_key(
        &self,
        role: Role,
        name: Option<&str>,
        actor: &str,
    ) -> Result<keys::NewKey, AuthError> {
        let mut store = self.store.lock();
        let new = keys::create(&mut store, &self.hasher, role, name, actor)?;
        self.keys.insert(&new.row);
        Ok(new)
    }

    /// Revokes a key (blocking): refused here at once, by other servers on the same store
    /// within `key_refresh_ms`. `None`: no such key; `Some(false)`: already revoked.
    pub fn revoke_key(&self, id: &str, actor: &str) -> Result<Option<bool>, AuthError> {
        let mut store = self.store.lock();
        let done = keys::revoke(&mut store, id, actor)?;
        self.keys.remove(id);
        Ok(done)
    }
}

/// Re-reads the keys every `key_refresh_ms` until `stop` (only while authentication is on).
pub async fn refresh_loop(
    auth: std::sync::Weak<Auth>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = match auth.upgrade() {
        Some(a) => Duration::from_millis(a.config.key_refresh_ms.max(50)),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        let Some(a) = auth.upgrade() else { return };
        match tokio::task::spawn_blocking(move || a.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not re-read the API keys (the last ones read stay in force)")
            }
            Err(e) => tracing::warn!(error = %e, "API key refresh failed"),
        }
    }
}

/// The credential of a request: `Authorization: Bearer T`, `X-API-Key: T`, or for the
/// WebSocket upgrade `?token=T`.
fn credential<'a>(headers: &'a HeaderMap, query: Option<&'a str>, ws: bool) -> Option<&'a str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some((scheme, token)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim());
            }
        }
    }
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        if !v.trim().is_empty() {
            return Some(v.trim());
        }
    }
    if ws {
        return query?
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty());
    }
    None
}

fn unauthorized(denied: &Denied) -> Response {
    let challenge = match denied {
        Denied::Missing => "Bearer realm=\"pitwall\"",
        _ => "Bearer realm=\"pitwall\", error=\"invalid_token\"",
    };
    let mut res = (
        StatusCode::UNAUTHORIZED,
        Json(ErrorBody {
            error: "unauthorized".into(),
            field: Some("authorization".into()),
            reason: denied.to_string(),
        }),
    )
        .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    res
}

fn forbidden(need: Role, who: &Principal) -> Response {
    let has = who.role.map_or_else(
        || "no PitWall role".to_string(),
        |r| format!("the {r} role"),
    );
    (
        StatusCode::FORBIDDEN,
        Json(ErrorBody {
            error: "forbidden".into(),
            field: Some("role".into()),
            reason: format!(
                "this needs the {need} role (or above); {} has {has}",
                who.actor
            ),
        }),
    )
        .into_response()
}

/// The access check of every request (one layer in `http::router`): the matched route's
/// role from [`routes::access`], the credential checked against the keys in memory or the
/// JWT key. No store access, no allocation on the way through but the principal's `Arc`.
pub async fn require(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let access = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| routes::access(req.method(), p.as_str()));
    let need = match access {
        Some(Access::Role(r)) => r,
        // Public, or no route matched (the fallback answers 404): nothing to protect.
        Some(Access::Public) | None => return next.run(req).await,
    };
    let auth = &st.auth;
    if !auth.enabled() {
        req.extensions_mut().insert(auth.anonymous.clone());
        return next.run(req).await;
    }
    let ws = req.uri().path() == routes::WS_PATH;
    let who = match credential(req.headers(), req.uri().query(), ws) {
        None => return unauthorized(&Denied::Missing),
        Some(token) => match auth.authenticate(token) {
            Ok(p) => p,
            Err(d) => return unauthorized(&d),
        },
    };
    if who.role < Some(need) {
        return forbidden(need, &who);
    }
    // The rate limits key on who this is rather than on the address it comes from.
    req.extensions_mut()
        .insert(crate::limits::ClientKey(who.actor.to_string()));
    req.extensions_mut().insert(who);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_a_hierarchy() {
        assert!(Role::Admin > Role::Ingest && Role::Ingest > Role::Viewer);
        assert!(None < Some(Role::Viewer));
        assert_eq!(Role::parse(" Admin "), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn credentials_from_headers_and_the_websocket_query() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h, Some("token=abc"), false), None);
        assert_eq!(credential(&h, Some("a=1&token=abc"), true), Some("abc"));
        h.insert("x-api-key", HeaderValue::from_static("pw_k"));
        assert_eq!(credential(&h, None, false), Some("pw_k"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  pw_b"),
        );
        assert_eq!(credential(&h, None, false), Some("pw_b"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        assert_eq!(credential(&h, None, false), Some("pw_k"));
    }

    #[test]
    fn a_public_address_needs_auth_or_insecure() {
        let c = AuthConfig::default();
        assert!(c.check_exposure("127.0.0.1:8081".parse().unwrap()).is_ok());
        assert!(c.check_exposure("[::1]:8081".parse().unwrap()).is_ok());
        let err = c
            .check_exposure("0.0.0.0:8081".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--insecure") && err.contains("--auth"),
            "{err}"
        );
        let on = AuthConfig {
            required: true,
            ..AuthConfig::default()
        };
        assert!(on.check_exposure("0.0.0.0:8081".parse().unwrap()).is_ok());
        let open = AuthConfig {
            insecure: true,
            ..AuthConfig::default()
        };
        assert!(open.check_exposure("0.0.0.0:8081".parse().unwrap()).is_ok());
        let jwt = AuthConfig {
            jwt_secret: Some("x".repeat(32)),
            ..AuthConfig::default()
        };
        assert!(jwt.check_exposure("10.0.0.5:8081".parse().unwrap()).is_ok());
        assert!(
            !format!("{jwt:?}").contains("xxxx"),
            "the secret is not shown"
        );
    }
}
