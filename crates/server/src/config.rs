//! Server configuration: defaults, overridden by an optional TOML file, overridden by
//! environment variables and flags (the binary merges those last two).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything `pitwall serve` can be told. Every field has a default; a TOML file given with
/// `--config` may set any of them (unknown keys are an error, so typos are caught).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP and WebSocket address.
    pub http: SocketAddr,
    /// UDP address for JSON datagrams and F1 game packets; `None` disables UDP.
    pub udp: Option<SocketAddr>,
    /// Where the store lives (SQLite, unless `store` is set).
    pub data_dir: PathBuf,
    /// A PostgreSQL store shared by several processes (`postgres://...`, see
    /// [`store::StoreLocation`]); `None` = the SQLite store under `data_dir`.
    pub store: Option<String>,
    pub log_format: LogFormat,
    /// The bus between the stages: `None` = in process (the default); `redis://HOST:PORT` =
    /// Redis Streams, shared with other servers and `pitwall worker`s.
    pub bus: Option<String>,
    /// Telemetry partitions of the Redis bus (every process of a deployment must agree).
    pub bus_partitions: usize,
    /// Entries each Redis stream keeps (`MAXLEN ~`; a telemetry entry is one ring batch, up to
    /// `ring_batch_points` points). An analysis worker that takes a partition over rebuilds a
    /// session from what its stream still holds: size it to the longest session of a partition
    /// (100,000 entries of 40 points = 4 M points, about 28 min of a 40-car race at 60 Hz).
    pub bus_stream_cap: u64,
    /// Telemetry publishing waits while a live consumer group is this many entries behind, so
    /// that the caps never trim what a stage has not read (0: never wait). Keep it below
    /// `bus_stream_cap`.
    pub bus_backpressure_lag_entries: u64,
    /// With a Redis bus: run only ingest and delivery (WebSocket hub, latest-insight cache),
    /// leaving analysis, strategy and the store writer to `pitwall worker --role ...`.
    pub workers: bool,
    /// Largest HTTP request body accepted, bytes (default 8 MiB).
    pub body_limit_bytes: usize,
    /// Points the ingest ring holds before it drops the oldest.
    pub ring_capacity: usize,
    /// The ring hands out a batch when this many points wait ...
    pub ring_batch_points: usize,
    /// ... or this long after the oldest waiting point arrived.
    pub ring_batch_ms: u64,
    /// Messages each bus consumer group may hold before publishers wait.
    pub bus_capacity: usize,
    /// A WebSocket `telemetry_update` is sent when this many points wait for a client ...
    pub ws_batch_points: usize,
    /// ... or this long after the oldest of them.
    pub ws_batch_ms: u64,
    /// Messages queued for one WebSocket client before it is dropped as too slow.
    pub ws_client_queue: usize,
    /// Most WebSocket clients at once (more are refused with 503).
    pub ws_max_clients: usize,
    /// Seconds between server keep-alive pings on idle WebSockets.
    pub ws_keepalive_s: u64,
    /// The store writes at least this often when data waits, milliseconds.
    pub store_flush_ms: u64,
    /// Most samples the store writes in one transaction.
    pub store_batch_max: usize,
    /// UDP socket receive buffer requested from the kernel, bytes.
    pub udp_recv_buffer_bytes: usize,
    /// Screening iterations per plan of the live pit-window runs (one per car per lap; plans
    /// near the best are refined until the SE of their difference is <= 0.05 positions).
    pub strategy_live_iterations: u32,
    /// Seed of the live strategy runs (the same laps give the same window).
    pub strategy_seed: u64,
    /// Tire model file (`pitwall train` writes one); `None` = the model shipped in the binary.
    pub model: Option<PathBuf>,
    /// Access control (`[auth]`): API keys, JWT, the UDP allow-list; see `crate::auth`.
    pub auth: crate::auth::AuthConfig,
    /// API requests a minute per client (IP address, or API key), 0 = no limit.
    pub rate_limit_rest_per_min: u32,
    /// Telemetry points a second per source (HTTP client or UDP sender IP), 0 = no limit.
    pub rate_limit_points_per_s: u32,
    /// Most clients each rate limiter keeps a bucket for (memory bound).
    pub rate_limit_max_clients: usize,
    /// TLS certificate chain (PEM) for HTTPS and WSS; with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1); with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Origins allowed to call the API from a browser (CORS); empty = none (CORS off); `*` = any.
    pub cors_origins: Vec<String>,
    /// Webhooks for coaching alerts, pit-window changes and session events.
    pub webhooks: Vec<crate::webhooks::WebhookConfig>,
    /// HMAC-SHA256 secret signing the hooks that have no `secret` of their own.
    pub webhook_secret: Option<String>,
    /// Events waiting per hook before new ones are dropped (counted).
    pub webhook_queue: usize,
    /// Attempts per event (the first included) before it counts as failed.
    pub webhook_max_attempts: u32,
    /// Wait before the first retry, doubled at each retry (at most 60 s), ms.
    pub webhook_backoff_ms: u64,
    /// Time allowed for one delivery, ms.
    pub webhook_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8081)),
            udp: Some(SocketAddr::from(([0, 0, 0, 0], 20777))),
            data_dir: PathBuf::from("./pitwall-data"),
            store: None,
            log_format: LogFormat::Text,
            bus: None,
            bus_partitions: 8,
            bus_stream_cap: 100_000,
            bus_backpressure_lag_entries: 50_000,
            workers: false,
            body_limit_bytes: 8 * 1024 * 1024,
            ring_capacity: 20_000,
            ring_batch_points: 40,
            ring_batch_ms: 300,
            bus_capacity: 1024,
            ws_batch_points: 40,
            ws_batch_ms: 20,
            ws_client_queue: 256,
            ws_max_clients: 1000,
            ws_keepalive_s: 15,
            store_flush_ms: 200,
            store_batch_max: 20_000,
            udp_recv_buffer_bytes: 8 * 1024 * 1024,
            strategy_live_iterations: 256,
            strategy_seed: 2026,
            model: None,
            auth: crate::auth::AuthConfig::default(),
            rate_limit_rest_per_min: 100,
            rate_limit_points_per_s: 10_000,
            rate_limit_max_clients: 100_000,
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            webhooks: Vec::new(),
            webhook_secret: None,
            webhook_queue: 1000,
            webhook_max_attempts: 5,
            webhook_backoff_ms: 500,
            webhook_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config value {field} is not valid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "refusing to serve HTTP on {addr} without authentication: it is not a loopback address, \
         so anyone who can reach it could read the telemetry, send points and delete sessions. \
         Turn authentication on with --auth (API keys: `pitwall keys create --role admin` prints \
         one) and/or --jwt-secret / --jwt-public-key FILE, or pass --insecure to serve it open"
    )]
    Unprotected { addr: SocketAddr },
}

impl Config {
    /// Where the store lives: `store` when set (a `postgres://` URL, or a directory),
    /// else SQLite under `data_dir`.
    pub fn store_location(&self) -> store::StoreLocation {
        store::StoreLocation::or_data_dir(self.store.as_deref(), &self.data_dir)
    }

    /// Reads a TOML file over the defaults.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.auth.check_exposure(self.http)?;
        if self.auth.key_refresh_ms == 0 {
            return Err(ConfigError::Invalid {
                field: "auth.key_refresh_ms",
                reason: "must be greater than 0".into(),
            });
        }
        if let Some(b) = self.bus.as_deref() {
            if !(b.starts_with("redis://") || b.starts_with("rediss://")) {
                return Err(ConfigError::Invalid {
                    field: "bus",
                    reason: format!("{b:?} is not a redis://HOST:PORT URL"),
                });
            }
        }
        if self.bus_backpressure_lag_entries >= self.bus_stream_cap {
            return Err(ConfigError::Invalid {
                field: "bus_backpressure_lag_entries",
                reason: format!(
                    "{} is not below bus_stream_cap ({}): the caps would trim entries a stage has not read",
                    self.bus_backpressure_lag_entries, self.bus_stream_cap
                ),
            });
        }
        if self.workers && self.bus.is_none() {
            return Err(ConfigError::Invalid {
                field: "workers",
                reason: "needs a Redis bus (--bus redis://HOST:PORT) that the workers share".into(),
            });
        }
        crate::tls::validate(self)?;
        crate::security::validate_cors(&self.cors_origins)?;
        crate::webhooks::validate(&self.webhooks)?;
        let positive: [(&'static str, u64); 17] = [
            ("bus_partitions", self.bus_partitions as u64),
            ("bus_stream_cap", self.bus_stream_cap),
            (
                "strategy_live_iterations",
                self.strategy_live_iterations as u64,
            ),
            ("body_limit_bytes", self.body_limit_bytes as u64),
            ("ring_capacity", self.ring_capacity as u64),
            ("ring_batch_points", self.ring_batch_points as u64),
            ("ring_batch_ms", self.ring_batch_ms),
            ("bus_capacity", self.bus_capacity as u64),
            ("ws_batch_points", self.ws_batch_points as u64),
            ("ws_client_queue", self.ws_client_queue as u64),
            ("ws_keepalive_s", self.ws_keepalive_s),
            ("store_flush_ms", self.store_flush_ms),
            ("store_batch_max", self.store_batch_max as u64),
            ("rate_limit_max_clients", self.rate_limit_max_clients as u64),
            ("webhook_queue", self.webhook_queue as u64),
            ("webhook_max_attempts", u64::from(self.webhook_max_attempts)),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    reason: "must be greater than 0".into(),
                });
            }
        }
        if self.store_flush_ms > 1000 {
            return Err(ConfigError::Invalid {
                field: "store_flush_ms",
                reason: "must be at most 1000 so that an accepted point is stored within a second"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_typos() {
        let c: Config = toml::from_str("ring_capacity = 500\nhttp = \"127.0.0.1:9000\"").unwrap();
        assert_eq!(c.ring_capacity, 500);
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.ws_batch_points, 40);
        assert!(toml::from_str::<Config>("ring_capacty = 5").is_err());
        let bad = Config {
            ring_capacity: 0,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn the_bus_is_a_redis_url_and_workers_need_it() {
        let c: Config = toml::from_str("bus = \"redis://127.0.0.1:6379\"\nworkers = true").unwrap();
        assert!(c.validate().is_ok());
        let c: Config = toml::from_str("bus = \"127.0.0.1:6379\"").unwrap();
        assert!(c.validate().is_err(), "not a redis:// URL");
        let c: Config = toml::from_str("workers = true").unwrap();
        assert!(c.validate().is_err(), "--workers without a Redis bus");
        let c: Config = toml::from_str("bus = \"redis://h:1\"\nbus_partitions = 0").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_store_is_sqlite_under_data_dir_unless_a_url_is_given() {
        let c = Config::default();
        assert_eq!(
            c.store_location(),
            store::StoreLocation::Sqlite("./pitwall-data".into())
        );
        let c: Config = toml::from_str("store = \"postgres://u@h/db?schema=s\"").unwrap();
        assert!(c.store_location().is_postgres());
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../../config/pitwall.example.toml");
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c, Config::default());
    }
}
