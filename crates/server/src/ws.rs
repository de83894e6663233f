//! The WebSocket hub behind `/ws/realtime`.
//!
//! Points are serialised once (as `telemetry::TelemetryPoint`) when they arrive from the bus,
//! then gathered per subscription filter (track, chassis); a `telemetry_update` goes out when
//! `ws_batch_points` points wait for a filter or `ws_batch_ms` after the oldest of them, built
//! once for every client sharing that filter. Each client has a bounded queue: a client whose
//! queue is full is dropped (counted) instead of slowing the others.

use crate::metrics::{Metrics, WsClientDropped};
use crate::ring::unix_ns_now;
use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use bus::{Delivery, Message, Subscription};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::{Sample, TelemetryPoint};
use tokio::sync::{mpsc, Notify};

/// What a client asked to see; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub track: Option<String>,
    pub chassis: Option<String>,
}

impl Filter {
    fn matches(&self, track: &str, chassis: &str) -> bool {
        self.track.as_deref().is_none_or(|t| t == track)
            && self.chassis.as_deref().is_none_or(|c| c == chassis)
    }
}

struct Client {
    filter: Filter,
    tx: mpsc::Sender<WsMessage>,
    kill: Arc<Notify>,
}

/// Settings of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub batch_points: usize,
    pub batch_wait: Duration,
    pub client_queue: usize,
    pub keepalive: Duration,
}

pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    cfg: HubConfig,
}

struct Pending {
    parts: Vec<Arc<str>>,
    received_unix_ns: Vec<u64>,
    oldest: Instant,
}

/// A sample as it goes out in a `telemetry_update`: a [`TelemetryPoint`], under the names of the
/// documented ingest shape (`meta_time`, `track`, `chassis`, `speed_kmh`, `accx_can`, ...).
fn sample_json(s: &Sample) -> Arc<str> {
    Arc::from(
        serde_json::to_string(&TelemetryPoint::from(s)).unwrap_or_else(|_| "null".to_string()),
    )
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>, cfg: HubConfig) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            metrics,
            cfg,
        })
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    fn register(&self, tx: mpsc::Sender<WsMessage>, kill: Arc<Notify>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut c = self.clients.lock();
        c.insert(
            id,
            Client {
                filter: Filter::default(),
                tx,
                kill,
            },
        );
        self.metrics.ws_clients.set(c.len() as i64);
        id
    }

    fn unregister(&self, id: u64) {
        let mut c = self.clients.lock();
        c.remove(&id);
        self.metrics.ws_clients.set(c.len() as i64);
    }

    fn set_filter(&self, id: u64, filter: Filter) {
        if let Some(c) = self.clients.lock().get_mut(&id) {
            c.filter = filter;
        }
    }

    /// Sends one message to every client of `filter` (or every client matching `pred`).
    /// Clients whose queues are full are dropped.
    fn send_to(&self, msg: &WsMessage, kind: &'static str, pred: impl Fn(&Filter) -> bool) {
        let mut dropped = Vec::new();
        let mut sent = 0u64;
        {
            let mut clients = self.clients.lock();
            for (id, c) in clients.iter() {
                if !pred(&c.filter) {
                    continue;
                }
                match c.tx.try_send(msg.clone()) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        c.kill.notify_one();
                        dropped.push((*id, "slow"));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dropped.push((*id, "closed")),
                }
            }
            for (id, _) in &dropped {
                clients.remove(id);
            }
            self.metrics.ws_clients.set(clients.len() as i64);
        }
        self.metrics
            .ws_messages_sent
            .with_label_values(&[kind])
            .inc_by(sent);
        for (client, reason) in dropped {
            if reason == "slow" {
                WsClientDropped { reason, client }.emit(&self.metrics);
            }
        }
    }

    fn filters(&self) -> Vec<Filter> {
        let mut v: Vec<Filter> = self
            .clients
            .lock()
            .values()
            .map(|c| c.filter.clone())
            .collect();
        v.sort_by(|a, b| (&a.track, &a.chassis).cmp(&(&b.track, &b.chassis)));
        v.dedup();
        v
    }

    fn flush(&self, filter: &Filter, p: Pending) {
        let mut text =
            String::with_capacity(p.parts.iter().map(|x| x.len() + 1).sum::<usize>() + 40);
        text.push_str("{\"type\":\"telemetry_update\",\"data\":[");
        for (i, part) in p.parts.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(part);
        }
        text.push_str("]}");
        let msg = WsMessage::Text(Utf8Bytes::from(text));
        self.send_to(&msg, "telemetry_update", |f| f == filter);
        let now = unix_ns_now();
        for r in p.received_unix_ns {
            self.metrics
                .ingest_to_ws_latency
                .observe(now.saturating_sub(r) as f64 / 1e9);
        }
    }

    /// Runs the hub until both subscriptions end.
    pub async fn run(
        self: Arc<Self>,
        mut telemetry: Box<dyn Subscription>,
        mut insights: Box<dyn Subscription>,
    ) {
        let mut pending: HashMap<Filter, Pending> = HashMap::new();
        let (mut tel_open, mut ins_open) = (true, true);
        while tel_open || ins_open {
            let deadline = pending
                .values()
                .map(|p| p.oldest + self.cfg.batch_wait)
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                d = telemetry.next(), if tel_open => match d {
                    Some(d) => {
                        self.on_telemetry(&d, &mut pending);
                        let _ = telemetry.ack(&d).await;
                    }
                    None => tel_open = false,
                },
                d = insights.next(), if ins_open => match d {
                    Some(d) => {
                        self.on_insight(&d);
                        let _ = insights.ack(&d).await;
                    }
                    None => ins_open = false,
                },
                _ = sleep => {
                    let now = Instant::now();
                    let due: Vec<Filter> = pending
                        .iter()
                        .filter(|(_, p)| p.oldest + self.cfg.batch_wait <= now)
                        .map(|(f, _)| f.clone())
                        .collect();
                    for f in due {
                        if let Some(p) = pending.remove(&f) {
                            self.flush(&f, p);
                        }
                    }
                }
            }
        }
        for (f, p) in pending.drain() {
            self.flush(&f, p);
        }
    }

    fn on_telemetry(&self, d: &Delivery, pending: &mut HashMap<Filter, Pending>) {
        let Message::Telemetry(batch) = &d.message else {
            return;
        };
        let filters = self.filters();
        if filters.is_empty() {
            return;
        }
        let now = Instant::now();
        for (s, r) in batch.samples.iter().zip(&batch.received_unix_ns) {
            let json = sample_json(s);
            let track = s.track_or_session();
            for f in &filters {
                if !f.matches(track, &s.car_id) {
                    continue;
                }
                let p = pending.entry(f.clone()).or_insert_with(|| Pending {
                    parts: Vec::with_capacity(self.cfg.batch_points),
                    received_unix_ns: Vec::with_capacity(self.cfg.batch_points),
                    oldest: now,
                });
                p.parts.push(json.clone());
                p.received_unix_ns.push(*r);
                if p.parts.len() >= self.cfg.batch_points {
                    if let Some(p) = pending.remove(f) {
                        self.flush(f, p);
                    }
                }
            }
        }
    }

    fn on_insight(&self, d: &Delivery) {
        let (kind, track, chassis, data) = match &d.message {
            Message::Insight(i) => (
                "insight_update",
                i.track.clone().unwrap_or_default(),
                i.chassis.clone(),
                serde_json::to_value(&**i),
            ),
            Message::Alert(a) => (
                "coaching_alert",
                a.track.clone(),
                a.car_id.clone(),
                serde_json::to_value(&**a).map(|mut v| {
                    // The seed's name for the car, beside the coach's own.
                    v["chassis"] = serde_json::Value::from(a.car_id.clone());
                    v
                }),
            ),
            _ => return,
        };
        let Ok(data) = data else { return };
        let text = serde_json::json!({
            "type": kind,
            "data": [data],
            "meta": {"generated_at": crate::http::now_rfc3339()},
        })
        .to_string();
        let msg = WsMessage::Text(Utf8Bytes::from(text));
        self.send_to(&msg, kind, |f| f.matches(&track, &chassis));
    }
}

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    track: Option<String>,
    #[serde(default)]
    chassis: Option<String>,
}

fn error_frame(reason: &str) -> WsMessage {
    WsMessage::Text(Utf8Bytes::from(
        serde_json::json!({"type": "error", "reason": reason}).to_string(),
    ))
}

/// Serves one WebSocket client until it leaves or is dropped.
pub async fn serve_client(hub: Arc<Hub>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<WsMessage>(hub.cfg.client_queue.max(1));
    let kill = Arc::new(Notify::new());
    let id = hub.register(tx.clone(), kill.clone());
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut keepalive = tokio::time::interval(hub.cfg.keepalive);
    keepalive.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = kill.notified() => break,
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break };
                last_heard = Instant::now();
                match frame {
                    WsMessage::Text(t) => {
                        let reply = match serde_json::from_str::<ClientFrame>(t.as_str()) {
                            Ok(f) if f.kind == "ping" => Some(WsMessage::Text(Utf8Bytes::from_static("{\"type\":\"pong\"}"))),
                            Ok(f) if f.kind == "subscribe" => {
                                let filter = Filter {
                                    track: f.track.filter(|x| !x.is_empty()),
                                    chassis: f.chassis.filter(|x| !x.is_empty()),
                                };
                                let ack = serde_json::json!({"type": "subscribed", "track": filter.track, "chassis": filter.chassis});
                                hub.set_filter(id, filter);
                                Some(WsMessage::Text(Utf8Bytes::from(ack.to_string())))
                            }
                            Ok(f) if f.kind == "pong" => None,
                            Ok(f) => {
                                hub.metrics.ws_bad_frames.inc();
                                Some(error_frame(&format!("unknown message type {:?}: send ping or subscribe", f.kind)))
                            }
                            Err(e) => {
                                hub.metrics.ws_bad_frames.inc();
                                Some(error_frame(&format!("frame is not a JSON message with a type: {e}")))
                            }
                        };
                        if let Some(r) = reply {
                            if tx.try_send(r).is_err() {
                                WsClientDropped { reason: "slow", client: id }.emit(&hub.metrics);
                                break;
                            }
                        }
                    }
                    WsMessage::Binary(_) => {
                        hub.metrics.ws_bad_frames.inc();
                        let _ = tx.try_send(error_frame("binary frames are not understood: send JSON text"));
                    }
                    WsMessage::Close(_) => break,
                    WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() > hub.cfg.keepalive * 3 {
                    WsClientDropped { reason: "timeout", client: id }.emit(&hub.metrics);
                    break;
                }
                if tx.try_send(WsMessage::Ping(Vec::new().into())).is_err() {
                    WsClientDropped { reason: "slow", client: id }.emit(&hub.metrics);
                    break;
                }
            }
        }
    }
    hub.unregister(id);
    drop(tx);
    writer.abort();
}
