//! Rate limits per client: REST requests per minute and telemetry points per second.
//!
//! Each limiter is a token bucket per client key (burst = one period's allowance, refilled
//! continuously; kept as GCRA's theoretical arrival time in integer nanoseconds), held in a
//! map bounded in size: buckets that have refilled completely are forgotten (a full bucket is the same as no bucket), swept at most once a minute and
//! whenever the map reaches its bound; if it is still full, the least recently used tenth goes.
//! Time comes from a [`Clock`] that tests can freeze and advance, so the limits are tested
//! without timing.
//!
//! The client key is the API key's identity when an authentication layer put a [`ClientKey`]
//! in the request's extensions, else the client's IP address (UDP: the sender's IP).
//!
//! What counts as REST: every route under `/api/` except the telemetry ingest routes (limited
//! by points instead), and the WebSocket upgrade `/ws/realtime`. `/health`, `/ready`,
//! `/metrics`, the dashboard, its assets and `/docs` are not limited.

use crate::http::error;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The identity a rate limit is keyed on, when an authentication layer knows it (e.g. the API
/// key's id). Insert it into the request's extensions before [`rest_limit`] runs (that is, add
/// the authentication layer after, outside, the limit layer); without it the limit is keyed on
/// the client's IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(pub String);

/// Time for the limiters: the process's monotonic clock, or a manual one (tests).
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    manual: OnceLock<Arc<AtomicU64>>,
}

/// A frozen clock: time moves only when [`ManualClock::advance`] is called.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(by.as_nanos().min(u64::MAX as u128) as u64, Ordering::AcqRel);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            start: Instant::now(),
            manual: OnceLock::new(),
        }
    }
}

impl Clock {
    /// Nanoseconds since the clock started.
    pub fn now_ns(&self) -> u64 {
        match self.manual.get() {
            Some(m) => m.load(Ordering::Acquire),
            None => self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64,
        }
    }

    /// Freezes the clock where it is (for tests); later calls return the same handle.
    pub fn freeze(&self) -> ManualClock {
        let now = self.now_ns();
        ManualClock(
            self.manual
                .get_or_init(|| Arc::new(AtomicU64::new(now)))
                .clone(),
        )
    }
}

/// What a limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit: the request may be tried again after this many seconds (at least 1).
    Limited {
        retry_after_s: u64,
    },
    /// More than one period's allowance in a single request: it can never pass whole.
    TooLarge,
}

/// A token bucket per key, kept as GCRA's theoretical arrival time (integer nanoseconds): a
/// key whose `tat` is in the past has its whole allowance.
#[derive(Debug)]
pub struct RateLimiter {
    allowance: u64,
    /// Time one token takes to come back, ns.
    interval_ns: u64,
    max_keys: usize,
    state: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Per key: (theoretical arrival time, last use), ns.
    map: HashMap<String, (u64, u64)>,
    last_sweep_ns: u64,
}

const SWEEP_EVERY_NS: u64 = 60_000_000_000;

impl RateLimiter {
    /// `allowance` per `period`, as a burst of `allowance` refilled evenly; 0 = no limit.
    pub fn new(allowance: u32, period: Duration, max_keys: usize) -> RateLimiter {
        let period_ns = period.as_nanos().min(u64::MAX as u128) as u64;
        RateLimiter {
            allowance: u64::from(allowance),
            interval_ns: period_ns.checked_div(u64::from(allowance)).unwrap_or(0),
            max_keys: max_keys.max(1),
            state: Mutex::new(Buckets::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.allowance > 0
    }

    /// Takes `n` tokens from `key`'s bucket at time `now_ns`, or says when to come back.
    pub fn check(&self, key: &str, n: u64, now_ns: u64) -> Decision {
        if !self.is_enabled() || n == 0 {
            return Decision::Allowed;
        }
        if n > self.allowance {
            return Decision::TooLarge;
        }
        let burst_ns = self.allowance.saturating_mul(self.interval_ns);
        let mut st = self.state.lock();
        if now_ns.saturating_sub(st.last_sweep_ns) >= SWEEP_EVERY_NS {
            sweep(&mut st, now_ns);
        }
        if !st.map.contains_key(key) && st.map.len() >= self.max_keys {
            sweep(&mut st, now_ns);
            if st.map.len() >= self.max_keys {
                evict_least_recent(&mut st.map, self.max_keys / 10 + 1);
            }
        }
        let (tat, last) = st.map.entry(key.to_string()).or_insert((now_ns, now_ns));
        *last = now_ns.max(*last);
        let new_tat = (*tat)
            .max(now_ns)
            .saturating_add(n.saturating_mul(self.interval_ns));
        if new_tat.saturating_sub(now_ns) <= burst_ns {
            *tat = new_tat;
            Decision::Allowed
        } else {
            let wait_ns = new_tat - burst_ns - now_ns;
            Decision::Limited {
                retry_after_s: wait_ns.div_ceil(1_000_000_000).max(1),
            }
        }
    }

    /// Clients with a bucket (that used some of their allowance recently).
    pub fn tracked(&self) -> usize {
        self.state.lock().map.len()
    }
}

/// Forgets the keys whose allowance is whole again (the same as no entry).
fn sweep(st: &mut Buckets, now_ns: u64) {
    st.last_sweep_ns = now_ns;
    st.map.retain(|_, (tat, _)| *tat > now_ns);
}

fn evict_least_recent(map: &mut HashMap<String, (u64, u64)>, count: usize) {
    let mut times: Vec<u64> = map.values().map(|(_, last)| *last).collect();
    let k = count.min(times.len()).saturating_sub(1);
    let (_, cut, _) = times.select_nth_unstable(k);
    let cut = *cut;
    let mut left = count;
    map.retain(|_, (_, last)| {
        if left > 0 && *last <= cut {
            left -= 1;
            false
        } else {
            true
        }
    });
}

/// The server's limiters and their clock.
#[derive(Debug)]
pub struct Limits {
    pub clock: Clock,
    /// REST requests per client.
    pub rest: RateLimiter,
    /// Telemetry points per source (HTTP ingest and UDP).
    pub points: RateLimiter,
    rest_per_min: u32,
    points_per_s: u32,
}

impl Limits {
    pub fn new(rest_per_min: u32, points_per_s: u32, max_clients: usize) -> Limits {
        Limits {
            clock: Clock::default(),
            rest: RateLimiter::new(rest_per_min, Duration::from_secs(60), max_clients),
            points: RateLimiter::new(points_per_s, Duration::from_secs(1), max_clients),
            rest_per_min,
            points_per_s,
        }
    }

    pub fn from_config(c: &crate::Config) -> Limits {
        Limits::new(
            c.rate_limit_rest_per_min,
            c.rate_limit_points_per_s,
            c.rate_limit_max_clients,
        )
    }

    /// Checks `n` telemetry points from `source` (a client key).
    pub fn check_points(&self, source: &str, n: u64) -> Decision {
        self.points.check(source, n, self.clock.now_ns())
    }
}

/// The key a request is limited under: its [`ClientKey`], else the client's IP address.
pub fn client_key(req: &Request) -> String {
    if let Some(k) = req.extensions().get::<ClientKey>() {
        return format!("key:{}", k.0);
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => addr.ip().to_string(),
        None => "unknown".to_string(),
    }
}

/// Whether a path counts against the REST limit (see the module docs).
pub fn is_rest(path: &str) -> bool {
    (path.starts_with("/api/") && !is_ingest(path)) || path == "/ws/realtime"
}

/// The telemetry ingest routes (limited by points, not requests).
pub fn is_ingest(path: &str) -> bool {
    matches!(path, "/api/telemetry/ingest" | "/api/ingest")
}

/// A 429 answer with `Retry-After`, counted.
pub fn too_many(st: &AppState, kind: &'static str, retry_after_s: u64, reason: String) -> Response {
    st.metrics.rate_limited.with_label_values(&[kind]).inc();
    if let Some(suppressed) = st.metrics.log_allowed("rate_limited") {
        tracing::warn!(kind, retry_after_s, suppressed, "rate limit: {reason}");
    }
    let mut res = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", None, reason);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    res
}

/// Middleware: the REST limit (see the module docs for what counts).
pub async fn rest_limit(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !st.limits.rest.is_enabled() || !is_rest(req.uri().path()) {
        return next.run(req).await;
    }
    let key = client_key(&req);
    let now = st.limits.clock.now_ns();
    match st.limits.rest.check(&key, 1, now) {
        Decision::Allowed => next.run(req).await,
        Decision::Limited { retry_after_s } => too_many(
            &st,
            "rest",
            retry_after_s,
            format!(
                "more than {} API requests a minute from this client: retry after {retry_after_s} s",
                st.limits.rest_per_min
            ),
        ),
        // One request is never more than the allowance of an enabled limiter.
        Decision::TooLarge => next.run(req).await,
    }
}

/// The points limit on one ingest body of `n` points from `key`: `None` when it may pass, else
/// the 429 answer (nothing of the body is accepted; the client sends it again later).
pub fn ingest_refused(st: &AppState, key: &str, n: u64) -> Option<Response> {
    let per_s = st.limits.points_per_s;
    let answer = |retry_after_s: u64, reason: String| {
        st.metrics
            .rate_limited_points
            .with_label_values(&["http"])
            .inc_by(n);
        st.metrics
            .requests_rejected
            .with_label_values(&["rate_limited"])
            .inc();
        Some(too_many(st, "points", retry_after_s, reason))
    };
    match st.limits.check_points(key, n) {
        Decision::Allowed => None,
        Decision::Limited { retry_after_s } => answer(
            retry_after_s,
            format!(
                "this body's {n} points go over the limit of {per_s} points a second from this \
                 source: send it again after {retry_after_s} s"
            ),
        ),
        Decision::TooLarge => answer(
            1,
            format!(
                "{n} points in one body is more than the limit of {per_s} points a second per \
                 source: split it into bodies of at most {per_s} points"
            ),
        ),
    }
}

/// The points limit on the samples of one UDP datagram from `from`: true when they may pass;
/// dropped points are counted (`pitwall_rate_limited_points_total{source="udp"}`).
pub fn udp_allowed(st: &AppState, from: SocketAddr, n: usize) -> bool {
    if !st.limits.points.is_enabled() || n == 0 {
        return true;
    }
    match st.limits.check_points(&from.ip().to_string(), n as u64) {
        Decision::Allowed => true,
        Decision::Limited { .. } | Decision::TooLarge => {
            st.metrics
                .rate_limited_points
                .with_label_values(&["udp"])
                .inc_by(n as u64);
            st.metrics
                .datagrams_rejected
                .with_label_values(&["rate_limited"])
                .inc();
            if let Some(suppressed) = st.metrics.log_allowed("udp_rate_limited") {
                tracing::warn!(%from, points = n, suppressed, "rate limit: UDP points dropped");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_101st_request_in_a_minute_waits_and_the_bucket_refills() {
        let l = RateLimiter::new(100, Duration::from_secs(60), 1000);
        for _ in 0..100 {
            assert_eq!(l.check("a", 1, 5 * S), Decision::Allowed);
        }
        // One token every 0.6 s.
        assert_eq!(
            l.check("a", 1, 5 * S),
            Decision::Limited { retry_after_s: 1 }
        );
        assert_eq!(l.check("b", 1, 5 * S), Decision::Allowed, "per client");
        assert_eq!(l.check("a", 1, 5 * S + 600_000_000), Decision::Allowed);
        assert!(matches!(
            l.check("a", 1, 5 * S + 600_000_000),
            Decision::Limited { .. }
        ));
        // A minute later the whole allowance is back.
        for _ in 0..100 {
            assert_eq!(l.check("a", 1, 66 * S), Decision::Allowed);
        }
    }

    #[test]
    fn points_are_counted_by_batch_and_a_batch_over_the_allowance_never_passes() {
        let l = RateLimiter::new(10_000, Duration::from_secs(1), 1000);
        assert_eq!(l.check("udp", 6_000, 0), Decision::Allowed);
        assert_eq!(l.check("udp", 4_000, 0), Decision::Allowed);
        assert_eq!(l.check("udp", 1, 0), Decision::Limited { retry_after_s: 1 });
        // 0.25 s later: 2,500 points back, not 3,000.
        assert_eq!(
            l.check("udp", 3_000, S / 4),
            Decision::Limited { retry_after_s: 1 }
        );
        assert_eq!(l.check("udp", 2_500, S / 4), Decision::Allowed);
        assert_eq!(l.check("udp", 10_001, 10 * S), Decision::TooLarge);
        assert_eq!(
            RateLimiter::new(0, Duration::from_secs(1), 10).check("x", 1_000_000, 0),
            Decision::Allowed,
            "0 = off"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_number_of_clients() {
        let l = RateLimiter::new(10, Duration::from_secs(1), 100);
        for i in 0..1000u64 {
            assert_eq!(l.check(&format!("c{i}"), 1, i), Decision::Allowed);
            assert!(l.tracked() <= 100);
        }
        // Full buckets are forgotten at the next sweep.
        l.check("late", 1, 120 * S);
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_told() {
        let c = Clock::default();
        let m = c.freeze();
        let t = c.now_ns();
        assert_eq!(c.now_ns(), t);
        m.advance(Duration::from_millis(1500));
        assert_eq!(c.now_ns(), t + 1_500_000_000);
        c.freeze().advance(Duration::from_secs(1));
        assert_eq!(c.now_ns(), t + 2_500_000_000, "one manual clock");
    }

    #[test]
    fn the_key_is_the_auth_layers_client_key_else_the_ip() {
        let mut req = Request::new(axum::body::Body::empty());
        assert_eq!(client_key(&req), "unknown");
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 50_000))));
        assert_eq!(client_key(&req), "10.0.0.7", "the port is not part of it");
        req.extensions_mut().insert(ClientKey("team-a".into()));
        assert_eq!(client_key(&req), "key:team-a");
    }

    #[test]
    fn rest_routes_are_the_api_and_the_websocket_but_not_ingest_or_health() {
        assert!(is_rest("/api/sessions"));
        assert!(is_rest("/api/drivers/3/alerts"));
        assert!(is_rest("/ws/realtime"));
        assert!(is_rest("/api/nope"));
        for p in [
            "/api/telemetry/ingest",
            "/api/ingest",
            "/health",
            "/ready",
            "/metrics",
            "/",
            "/docs",
            "/assets/app.js",
        ] {
            assert!(!is_rest(p), "{p}");
        }
    }
}
