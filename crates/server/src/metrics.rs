//! Internal events: each is one small type that both logs and counts itself, so that logs and
//! `/metrics` always agree (the Vector pattern). Logs of frequent events are rate limited.

use parking_lot::Mutex;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Every counter and histogram the server exposes.
pub struct Metrics {
    registry: Registry,
    pub points_accepted: IntCounterVec,
    pub points_rejected: IntCounterVec,
    pub requests_rejected: IntCounterVec,
    pub datagrams: IntCounterVec,
    pub datagrams_rejected: IntCounterVec,
    /// Datagrams dropped because their sender is outside the UDP allow-list.
    pub datagrams_denied: IntCounter,
    pub ring_dropped: IntCounter,
    pub ring_refused: IntCounterVec,
    pub ring_depth: IntGauge,
    pub batch_points: Histogram,
    pub ws_clients: IntGauge,
    pub ws_clients_dropped: IntCounterVec,
    pub ws_messages_sent: IntCounterVec,
    pub ws_bad_frames: IntCounter,
    pub ingest_to_ws_latency: Histogram,
    pub store_written: IntCounter,
    pub store_batch_seconds: HistogramVec,
    pub store_errors: IntCounter,
    /// Time spent per batch (laps) or per call (strategy) in the analysis stages.
    pub stage_seconds: HistogramVec,
    pub laps_completed: IntCounter,
    pub coaching_alerts: IntCounter,
    /// The live workers of the Redis bus (the registry, as of the server's last heartbeat):
    /// messages processed, pending and lag, by worker id and role.
    pub agent_processed: IntGaugeVec,
    pub agent_pending: IntGaugeVec,
    pub agent_lag_ms: IntGaugeVec,
    pub agent_partitions: IntGaugeVec,
    /// Requests answered 429 by a rate limit, by kind (`rest`, `points`).
    pub rate_limited: IntCounterVec,
    /// Telemetry points refused (HTTP) or dropped (UDP) by the points limit, by source.
    pub rate_limited_points: IntCounterVec,
    /// Webhook events by hook (its index in the configuration) and outcome (`delivered`,
    /// `failed` after the last attempt or a refusal, `dropped` on a full queue).
    pub webhook_events: IntCounterVec,
    /// Webhook deliveries tried again, by hook.
    pub webhook_retries: IntCounterVec,
    limiter: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric definition");
    r.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

impl Metrics {
    /// Builds the registry. The definitions are constants, so the `expect`s cannot fire on input.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let ring_dropped = IntCounter::new(
            "pitwall_ring_dropped_total",
            "Points dropped by the ingest ring because it was full (oldest first).",
        )
        .expect("valid metric definition");
        r.register(Box::new(ring_dropped.clone()))
            .expect("metric registered once");
        let ring_depth = IntGauge::new(
            "pitwall_ring_depth_points",
            "Points waiting in the ingest ring.",
        )
        .expect("valid metric definition");
        r.register(Box::new(ring_depth.clone()))
            .expect("metric registered once");
        let ws_clients = IntGauge::new(
            "pitwall_ws_clients",
            "WebSocket clients connected to /ws/realtime.",
        )
        .expect("valid metric definition");
        r.register(Box::new(ws_clients.clone()))
            .expect("metric registered once");
        let ws_bad_frames = IntCounter::new(
            "pitwall_ws_bad_frames_total",
            "WebSocket frames from clients that could not be understood.",
        )
        .expect("valid metric definition");
        r.register(Box::new(ws_bad_frames.clone()))
            .expect("metric registered once");
        let store_written = IntCounter::new(
            "pitwall_store_samples_written_total",
            "Samples written to the store.",
        )
        .expect("valid metric definition");
        r.register(Box::new(store_written.clone()))
            .expect("metric registered once");
        let store_errors =
            IntCounter::new("pitwall_store_errors_total", "Store writes that failed.")
                .expect("valid metric definition");
        r.register(Box::new(store_errors.clone()))
            .expect("metric registered once");
        let store_batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "pitwall_store_batch_seconds",
                "Time to write one batch to the store.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["store"],
        )
        .expect("valid metric definition");
        r.register(Box::new(store_batch_seconds.clone()))
            .expect("metric registered once");
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "pitwall_stage_seconds",
                "Time spent in an analysis stage: per telemetry batch (laps), per call (strategy).",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["stage"],
        )
        .expect("valid metric definition");
        r.register(Box::new(stage_seconds.clone()))
            .expect("metric registered once");
        let laps_completed = IntCounter::new(
            "pitwall_laps_completed_total",
            "Laps closed by the lap engine (all sessions and cars).",
        )
        .expect("valid metric definition");
        r.register(Box::new(laps_completed.clone()))
            .expect("metric registered once");
        let coaching_alerts = IntCounter::new(
            "pitwall_coaching_alerts_total",
            "Coaching alerts raised (a driver departing from their own baseline).",
        )
        .expect("valid metric definition");
        r.register(Box::new(coaching_alerts.clone()))
            .expect("metric registered once");
        let datagrams_denied = IntCounter::new(
            "pitwall_udp_datagrams_denied_total",
            "UDP datagrams dropped because their sender is outside the allow-list (--udp-allow).",
        )
        .expect("valid metric definition");
        r.register(Box::new(datagrams_denied.clone()))
            .expect("metric registered once");
        Metrics {
            datagrams_denied,
            agent_processed: gauge_vec(
                &r,
                "pitwall_agent_processed",
                "Messages a live worker handled since it started, by worker id and role.",
                &["id", "role"],
            ),
            agent_pending: gauge_vec(
                &r,
                "pitwall_agent_pending",
                "Messages a live worker holds unacknowledged, by worker id and role.",
                &["id", "role"],
            ),
            agent_lag_ms: gauge_vec(
                &r,
                "pitwall_agent_lag_ms",
                "Age of the newest message a live worker handled when it handled it, ms.",
                &["id", "role"],
            ),
            agent_partitions: gauge_vec(
                &r,
                "pitwall_agent_partitions",
                "Telemetry partitions a live worker holds a lease on.",
                &["id", "role"],
            ),
            rate_limited: counter_vec(
                &r,
                "pitwall_rate_limited_total",
                "Requests answered 429 by a rate limit, by kind (rest: API requests per client, points: telemetry points per source).",
                &["kind"],
            ),
            rate_limited_points: counter_vec(
                &r,
                "pitwall_rate_limited_points_total",
                "Telemetry points refused (HTTP, answered 429) or dropped (UDP) by the points-per-second limit, by source.",
                &["source"],
            ),
            webhook_events: counter_vec(
                &r,
                "pitwall_webhook_events_total",
                "Webhook events by hook (index in the configuration) and outcome: delivered, failed (refused or out of attempts), dropped (queue full).",
                &["hook", "outcome"],
            ),
            webhook_retries: counter_vec(
                &r,
                "pitwall_webhook_retries_total",
                "Webhook deliveries tried again after a failure, by hook.",
                &["hook"],
            ),
            coaching_alerts,
            stage_seconds,
            laps_completed,
            points_accepted: counter_vec(
                &r,
                "pitwall_points_accepted_total",
                "Telemetry points accepted, by source.",
                &["source"],
            ),
            points_rejected: counter_vec(
                &r,
                "pitwall_points_rejected_total",
                "Telemetry points rejected, by source and reason.",
                &["source", "reason"],
            ),
            requests_rejected: counter_vec(
                &r,
                "pitwall_http_requests_rejected_total",
                "Ingest requests refused whole, by reason.",
                &["reason"],
            ),
            datagrams: counter_vec(
                &r,
                "pitwall_udp_datagrams_total",
                "UDP datagrams received, by kind.",
                &["kind"],
            ),
            datagrams_rejected: counter_vec(
                &r,
                "pitwall_udp_datagrams_rejected_total",
                "UDP datagrams rejected whole, by reason.",
                &["reason"],
            ),
            ring_dropped,
            ring_refused: counter_vec(
                &r,
                "pitwall_ring_refused_points_total",
                "Valid points refused because the ingest ring had no room (answered 503 with Retry-After: the sender keeps them), by source.",
                &["source"],
            ),
            ring_depth,
            batch_points: histogram(
                &r,
                "pitwall_batch_points",
                "Points per batch handed out by the ingest ring.",
                vec![1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0],
            ),
            ws_clients,
            ws_clients_dropped: counter_vec(
                &r,
                "pitwall_ws_clients_dropped_total",
                "WebSocket clients dropped by the server, by reason.",
                &["reason"],
            ),
            ws_messages_sent: counter_vec(
                &r,
                "pitwall_ws_messages_total",
                "WebSocket messages queued to clients, by type.",
                &["type"],
            ),
            ws_bad_frames,
            ingest_to_ws_latency: histogram(
                &r,
                "pitwall_ingest_to_ws_latency_seconds",
                "Time from a point's arrival to its WebSocket message being queued.",
                vec![
                    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5,
                    1.0,
                ],
            ),
            store_written,
            store_batch_seconds,
            store_errors,
            registry: r,
            limiter: Mutex::new(HashMap::new()),
        }
    }

    /// The Prometheus text exposition of every metric.
    /// Replaces the agent gauges with the registry's live workers.
    pub fn set_agents(&self, workers: &[bus::WorkerInfo]) {
        for g in [
            &self.agent_processed,
            &self.agent_pending,
            &self.agent_lag_ms,
            &self.agent_partitions,
        ] {
            g.reset();
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for w in workers {
            let l = [w.id.as_str(), w.role.as_str()];
            self.agent_processed
                .with_label_values(&l)
                .set(n(w.processed));
            self.agent_pending.with_label_values(&l).set(n(w.pending));
            self.agent_lag_ms.with_label_values(&l).set(n(w.lag_ms));
            self.agent_partitions
                .with_label_values(&l)
                .set(n(w.partitions.len() as u64));
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// True at most once a second per `key`; returns how many calls were suppressed since.
    pub fn log_allowed(&self, key: &'static str) -> Option<u64> {
        let mut m = self.limiter.lock();
        let now = Instant::now();
        let e = m.entry(key).or_insert((now - Duration::from_secs(2), 0));
        if now.duration_since(e.0) >= Duration::from_secs(1) {
            let suppressed = e.1;
            *e = (now, 0);
            Some(suppressed)
        } else {
            e.1 += 1;
            None
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A coarse, bounded label for a rejection reason (metric label values must stay few).
pub fn reason_label(reason: &str) -> &'static str {
    if reason.starts_with("missing") {
        "missing_field"
    } else if reason.contains("not a finite") {
        "not_finite"
    } else if reason.contains("outside the plausible range") || reason.contains("must be >=") {
        "out_of_range"
    } else if reason.starts_with("expected") {
        "wrong_type"
    } else if reason.contains("not valid JSON") {
        "invalid_json"
    } else {
        "invalid"
    }
}

// ---- internal events -------------------------------------------------------------------

/// Points accepted from a source.
pub struct PointsAccepted<'a> {
    pub source: &'a str,
    pub count: usize,
}

impl PointsAccepted<'_> {
    pub fn emit(self, m: &Metrics) {
        m.points_accepted
            .with_label_values(&[self.source])
            .inc_by(self.count as u64);
        tracing::trace!(source = self.source, count = self.count, "points accepted");
    }
}

/// One point refused, with the field and the reason.
pub struct PointRejected<'a> {
    pub source: &'a str,
    pub index: usize,
    pub field: &'a str,
    pub reason: &'a str,
}

impl PointRejected<'_> {
    pub fn emit(self, m: &Metrics) {
        let label = reason_label(self.reason);
        m.points_rejected
            .with_label_values(&[self.source, label])
            .inc();
        if let Some(suppressed) = m.log_allowed("point_rejected") {
            tracing::warn!(
                source = self.source,
                index = self.index,
                field = self.field,
                reason = self.reason,
                suppressed,
                "point rejected"
            );
        }
    }
}

/// A whole UDP datagram refused.
pub struct DatagramRejected<'a> {
    pub reason: &'static str,
    pub detail: &'a str,
    pub from: std::net::SocketAddr,
}

impl DatagramRejected<'_> {
    pub fn emit(self, m: &Metrics) {
        m.datagrams_rejected.with_label_values(&[self.reason]).inc();
        if let Some(suppressed) = m.log_allowed("datagram_rejected") {
            tracing::warn!(
                reason = self.reason,
                detail = self.detail,
                from = %self.from,
                suppressed,
                "UDP datagram rejected"
            );
        }
    }
}

/// A UDP datagram dropped: its sender is outside the allow-list.
pub struct DatagramDenied {
    pub from: std::net::SocketAddr,
}

impl DatagramDenied {
    pub fn emit(self, m: &Metrics) {
        m.datagrams_denied.inc();
        if let Some(suppressed) = m.log_allowed("datagram_denied") {
            tracing::warn!(
                from = %self.from,
                suppressed,
                "UDP datagram from outside the allow-list dropped (--udp-allow)"
            );
        }
    }
}

/// Points the ring dropped because it was full.
pub struct RingDropped {
    pub count: u64,
}

impl RingDropped {
    pub fn emit(self, m: &Metrics) {
        m.ring_dropped.inc_by(self.count);
        if let Some(suppressed) = m.log_allowed("ring_dropped") {
            tracing::warn!(
                dropped = self.count,
                suppressed,
                "ingest ring full: oldest points dropped"
            );
        }
    }
}

/// A batch refused whole because the ingest ring had no room for it (HTTP answers 503).
pub struct RingFull<'a> {
    pub source: &'a str,
    pub count: usize,
}

impl RingFull<'_> {
    pub fn emit(self, m: &Metrics) {
        m.ring_refused
            .with_label_values(&[self.source])
            .inc_by(self.count as u64);
        if let Some(suppressed) = m.log_allowed("ring_full") {
            tracing::warn!(
                source = self.source,
                points = self.count,
                suppressed,
                "ingest ring full: batch refused with 503, the sender retries"
            );
        }
    }
}

/// A WebSocket client dropped by the server.
pub struct WsClientDropped {
    pub reason: &'static str,
    pub client: u64,
}

impl WsClientDropped {
    pub fn emit(self, m: &Metrics) {
        m.ws_clients_dropped.with_label_values(&[self.reason]).inc();
        tracing::info!(
            client = self.client,
            reason = self.reason,
            "WebSocket client dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_and_rate_limits() {
        let m = Metrics::new();
        PointsAccepted {
            source: "http",
            count: 3,
        }
        .emit(&m);
        m.ingest_to_ws_latency.observe(0.002);
        let text = m.render();
        assert!(text.contains("pitwall_points_accepted_total{source=\"http\"} 3"));
        assert!(text.contains("pitwall_ingest_to_ws_latency_seconds_bucket"));
        assert!(m.log_allowed("x").is_some());
        assert!(m.log_allowed("x").is_none());
        assert_eq!(
            reason_label("1 is outside the plausible range"),
            "out_of_range"
        );
        assert_eq!(reason_label("NaN is not a finite number"), "not_finite");
    }
}
