//! The live server: sources (HTTP, UDP), the ingest ring, the bus, the store writer and the
//! WebSocket hub, wired as tasks joined by bounded channels.
//!
//! ```text
//! HTTP/UDP ─► parse+validate ─► IngestRing ─► batcher ─► bus:telemetry ─┬─► store writer (thread)
//!                                                                      ├─► analysis stage (thread,
//!                                                                      │   `analysis` crate) ─► bus:insights
//!                                                                      └─► WebSocket hub ─► clients
//!   bus:insights (Insight, Alert, Profile) ─┬─► store writer (the one writer of the store)
//!                                           ├─► WebSocket hub
//!                                           └─► cache (latest insight per car; in Redis, 60 s TTL, when distributed)
//! ```
//! Session events (a race document, the race length) travel on `bus:telemetry` in order with
//! the samples: the store writer keeps them, the analysis takes the race length from them.
//! Shutdown drains in that order: sources stop, the ring empties into the bus, the bus closes,
//! the store writes what it holds and checkpoints.

pub mod api;
pub mod auth;
pub mod config;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod ring;
pub mod security;
pub mod stage;
pub mod stored;
pub mod tls;
pub mod udp;
pub mod webhooks;
pub mod workers;
pub mod ws;

use anyhow::Context;
use bus::{Bus, InProcessBus, Message, RedisBus, Subscription, TelemetryBatch, Topic};
pub use config::{Config, LogFormat};
use metrics::{Metrics, PointRejected, PointsAccepted, RingDropped, RingFull};
use parking_lot::Mutex;
use ring::IngestRing;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;
use telemetry::Sample;
use tokio::sync::watch;

/// The tracks each car streamed at, by car.
type Seen = std::collections::HashMap<String, std::collections::HashSet<String>>;

/// State shared by the handlers and tasks.
pub struct AppState {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub ring: Arc<IngestRing>,
    pub bus: Arc<dyn Bus>,
    /// The Redis bus when `--bus redis://...` (for the worker registry: `/api/agents`).
    pub redis: Option<Arc<RedisBus>>,
    /// This server's id on the bus (its consumer groups and registry entry derive from it).
    pub instance: String,
    /// Insights the latest-insight cache took (the delivery role's `processed`).
    pub insights_seen: std::sync::atomic::AtomicU64,
    pub hub: Arc<ws::Hub>,
    /// Access control: keys, JWT, roles, the UDP allow-list (its own store connection).
    pub auth: Arc<auth::Auth>,
    /// Rate limits per client (REST requests, telemetry points).
    pub limits: limits::Limits,
    /// A read connection for queries (the writer has its own).
    pub reader: Arc<Mutex<Store>>,
    writer_alive: Arc<AtomicBool>,
    /// Every (track, car) that streamed, so that a car without a lap yet is told to wait.
    seen: Arc<Mutex<Seen>>,
    /// The latest insight per (track, car).
    latest: Mutex<std::collections::HashMap<(String, String), Arc<analysis::Insight>>>,
}

impl AppState {
    /// The latest insight of a car (at `track`, or the newest anywhere).
    pub fn latest_insight(&self, track: Option<&str>, car: &str) -> Option<Arc<analysis::Insight>> {
        let m = self.latest.lock();
        match track {
            Some(t) => m.get(&(t.to_string(), car.to_string())).cloned(),
            None => m
                .iter()
                .filter(|((_, c), _)| c == car)
                .map(|(_, v)| v)
                .max_by_key(|v| v.lap)
                .cloned(),
        }
    }

    /// Keeps the newest insight of each car: a later lap, or a later revision of the same lap.
    fn remember_insight(&self, v: &Arc<analysis::Insight>) {
        let key = (v.track.clone().unwrap_or_default(), v.chassis.clone());
        let mut m = self.latest.lock();
        let newer = m.get(&key).is_none_or(|old| {
            (v.lap, v.revision) >= (old.lap, old.revision) || v.session_id != old.session_id
        });
        if newer {
            m.insert(key, v.clone());
        }
    }

    /// Whether a car streamed samples (at `track`, or anywhere).
    pub fn has_seen(&self, track: Option<&str>, car: &str) -> bool {
        let seen = self.seen.lock();
        match (seen.get(car), track) {
            (Some(tracks), Some(t)) => tracks.contains(t),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    pub fn store_writer_alive(&self) -> bool {
        self.writer_alive.load(Ordering::Acquire)
    }

    /// Publishes what a session says about itself (a race document): on `bus:telemetry`
    /// before the samples that follow it, so that the store writer keeps it and the analysis
    /// takes the race length from it.
    pub async fn announce(&self, e: analysis::SessionEvent) -> Result<(), bus::BusError> {
        let key = e.session_id().to_string();
        self.bus.publish(&key, Message::Session(Arc::new(e))).await
    }

    /// The one accept path of every source (HTTP, UDP JSON, F1 UDP, replay, simulator): each
    /// refused point is counted and logged under `source`, the valid samples are queued on the
    /// ring, and counted. The batch comes validated from `telemetry` (`parse_body` for a body,
    /// `ParsedBatch::from_samples` for samples built in process). When the ring is full, the
    /// oldest points waiting are dropped and counted (UDP and in-process sources cannot be
    /// told to come back; HTTP uses [`AppState::accept_or_busy`]).
    pub fn accept(&self, source: &str, batch: telemetry::ParsedBatch) -> Accepted {
        self.accept_with(source, batch, false)
            .unwrap_or_else(|busy| busy)
    }

    /// [`AppState::accept`] for a source that can retry (HTTP): when the ring has no room for
    /// all the valid points, none is queued and `Err` comes back (the rejected points still
    /// listed), so that an accepted point is never dropped afterwards.
    pub fn accept_or_busy(
        &self,
        source: &str,
        batch: telemetry::ParsedBatch,
    ) -> Result<Accepted, Accepted> {
        self.accept_with(source, batch, true)
    }

    fn accept_with(
        &self,
        source: &str,
        batch: telemetry::ParsedBatch,
        refuse_when_full: bool,
    ) -> Result<Accepted, Accepted> {
        for (index, e) in &batch.rejected {
            PointRejected {
                source,
                index: *index,
                field: &e.field,
                reason: &e.reason,
            }
            .emit(&self.metrics);
        }
        let accepted = batch.samples.len();
        if accepted > 0 {
            let samples = batch.samples.into_iter().map(|(_, s)| s);
            if refuse_when_full {
                if let Err(back) = self.ring.try_push(samples.collect()) {
                    RingFull {
                        source,
                        count: back.len(),
                    }
                    .emit(&self.metrics);
                    return Err(Accepted {
                        accepted: 0,
                        rejected: batch.rejected,
                    });
                }
            } else {
                let dropped = self.ring.push(samples);
                if dropped > 0 {
                    RingDropped { count: dropped }.emit(&self.metrics);
                }
            }
            PointsAccepted {
                source,
                count: accepted,
            }
            .emit(&self.metrics);
        }
        Ok(Accepted {
            accepted,
            rejected: batch.rejected,
        })
    }

    /// Validates samples produced in process (F1 decoder, replay, simulator) and accepts the
    /// valid ones through [`AppState::accept`]. Returns how many were accepted.
    pub fn ingest_samples(&self, source: &str, samples: Vec<Sample>) -> usize {
        self.accept(source, telemetry::ParsedBatch::from_samples(samples))
            .accepted
    }
}

/// What [`AppState::accept`] did with a batch.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Points validated and queued.
    pub accepted: usize,
    /// Why points were refused: (index of the point in its batch, field and reason); a point
    /// can have several.
    pub rejected: Vec<(usize, telemetry::Rejection)>,
}

/// A started server.
pub struct Running {
    pub http_addr: SocketAddr,
    pub udp_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    stop_sources: watch::Sender<bool>,
    http_task: tokio::task::JoinHandle<()>,
    udp_task: Option<tokio::task::JoinHandle<()>>,
    batcher_task: tokio::task::JoinHandle<()>,
    hub_task: tokio::task::JoinHandle<()>,
    /// `None` when the stages run as workers (`--workers`).
    store_thread: Option<std::thread::JoinHandle<()>>,
    analysis_thread: Option<std::thread::JoinHandle<()>>,
    heartbeat_task: Option<tokio::task::JoinHandle<()>>,
    webhooks_task: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the store, binds the sockets and starts every task.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config.validate()?;
    // TLS files are read first: a bad file stops the start with its reason.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load(cert, key)?),
        _ => None,
    };
    let metrics = Arc::new(Metrics::new());
    let location = config.store_location();
    let local_stages = !config.workers;
    // Off the async threads: the PostgreSQL client blocks (and panics inside a runtime).
    let (writer_store, reader, auth_store) = {
        let at = location.clone();
        tokio::task::spawn_blocking(move || -> store::Result<(Option<Store>, Store, Store)> {
            let writer = if local_stages {
                Some(Store::open_location(&at)?)
            } else {
                None
            };
            Ok((
                writer,
                Store::open_location(&at)?,
                Store::open_location(&at)?,
            ))
        })
        .await?
        .with_context(|| format!("opening the store at {location}"))?
    };
    let auth = {
        let cfg = config.auth.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || auth::Auth::open(&cfg, auth_store))
                .await?
                .context("setting up access control")?,
        )
    };
    if !auth.enabled() && !config.http.ip().is_loopback() {
        tracing::warn!(http = %config.http, "serving without authentication on a non-loopback address (--insecure)");
    }
    let reader = Arc::new(Mutex::new(reader));
    let ring = Arc::new(IngestRing::new(
        config.ring_capacity,
        config.ring_batch_points,
        Duration::from_millis(config.ring_batch_ms),
    ));
    let instance = bus::redis_bus::default_worker_id();
    let (bus, redis): (Arc<dyn Bus>, Option<Arc<RedisBus>>) = match config.bus.as_deref() {
        Some(url) => {
            let r = RedisBus::connect(url, workers::redis_config(&config, &instance))
                .await
                .with_context(|| format!("connecting to the Redis bus at {url}"))?;
            (r.clone(), Some(r))
        }
        None => (InProcessBus::new(config.bus_capacity), None),
    };
    // Every server gets every insight and every sample for its own WebSocket clients and
    // cache: with Redis, a consumer group per server instance.
    let own = |g: &str| match &redis {
        Some(_) => format!("{g}-{instance}"),
        None => g.to_string(),
    };
    let hub = ws::Hub::new(
        metrics.clone(),
        ws::HubConfig {
            batch_points: config.ws_batch_points,
            batch_wait: Duration::from_millis(config.ws_batch_ms),
            client_queue: config.ws_client_queue,
            keepalive: Duration::from_secs(config.ws_keepalive_s),
        },
    );
    let (store_subs, analysis_sub) = if local_stages {
        (
            Some((
                bus.subscribe(Topic::Telemetry, "store").await?,
                bus.subscribe(Topic::Insights, "store").await?,
            )),
            Some(bus.subscribe(Topic::Telemetry, "analysis").await?),
        )
    } else {
        (None, None)
    };
    // One `webhooks` group for every server of a Redis bus: each event is sent once.
    let webhook_subs = if config.webhooks.is_empty() {
        None
    } else {
        let sessions = config
            .webhooks
            .iter()
            .any(|h| h.wants(webhooks::EventKind::Session));
        Some((
            bus.subscribe(Topic::Insights, "webhooks").await?,
            match sessions {
                true => Some(bus.subscribe(Topic::Telemetry, "webhooks").await?),
                false => None,
            },
        ))
    };
    let ws_tel = bus.subscribe(Topic::Telemetry, &own("ws")).await?;
    let ws_ins = bus.subscribe(Topic::Insights, &own("ws")).await?;
    let mut cache_sub = bus.subscribe(Topic::Insights, &own("cache")).await?;
    let writer_alive = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Seen::new()));

    let state = Arc::new(AppState {
        config: config.clone(),
        metrics: metrics.clone(),
        ring: ring.clone(),
        bus: bus.clone(),
        redis: redis.clone(),
        instance: instance.clone(),
        insights_seen: std::sync::atomic::AtomicU64::new(0),
        hub: hub.clone(),
        auth: auth.clone(),
        limits: limits::Limits::from_config(&config),
        reader,
        writer_alive: writer_alive.clone(),
        seen: seen.clone(),
        latest: Mutex::new(std::collections::HashMap::new()),
    });

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| {
            format!(
                "binding HTTP to {} (is another server running? use --http)",
                config.http
            )
        })?;
    let http_addr = listener.local_addr()?;
    let (stop_sources, stop_rx) = watch::channel(false);

    let udp =
        match config.udp {
            Some(addr) => Some(udp::bind(addr, config.udp_recv_buffer_bytes).with_context(
                || format!("binding UDP to {addr} (is another server running? use --udp)"),
            )?),
            None => None,
        };
    let udp_addr = udp.as_ref().map(|s| s.local_addr()).transpose()?;

    let store_thread = match (writer_store, store_subs) {
        (Some(writer_store), Some((store_sub, store_ins))) => Some({
            let rt = tokio::runtime::Handle::current();
            let metrics = metrics.clone();
            let flush = Duration::from_millis(config.store_flush_ms);
            let max = config.store_batch_max;
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || {
                    store_writer(writer_store, store_sub, store_ins, rt, metrics, flush, max);
                    writer_alive.store(false, Ordering::Release);
                })?
        }),
        _ => None,
    };
    let analysis_thread = match analysis_sub {
        Some(analysis_sub) => Some({
            let rt = tokio::runtime::Handle::current();
            let bus = bus.clone();
            let metrics = metrics.clone();
            let cfg = analysis::WindowSettings {
                screen_iterations: config.strategy_live_iterations,
                seed: config.strategy_seed,
            };
            let model = analysis::load_tire_model(config.model.as_deref())?;
            tracing::info!(model = %model.model_version, "tire model loaded");
            std::thread::Builder::new()
                .name("analysis".into())
                .spawn(move || stage::run(analysis_sub, bus, rt, metrics, cfg, Some(model)))?
        }),
        None => None,
    };
    let heartbeat_task = redis.clone().map(|r| {
        tokio::spawn(workers::server_heartbeat(
            r,
            state.clone(),
            instance.clone(),
        ))
    });
    let hub_task = tokio::spawn(hub.clone().run(ws_tel, ws_ins));
    {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(d) = cache_sub.next().await {
                if let Message::Insight(v) = &d.message {
                    state.insights_seen.fetch_add(1, Ordering::Relaxed);
                    state.remember_insight(v);
                    // Shared with the other servers (60 s TTL); a miss only costs them a read
                    // of the store.
                    if let Some(r) = &state.redis {
                        if let Err(e) = r.set_latest_insight(v).await {
                            tracing::debug!(error = %e, "latest-insight cache in Redis");
                        }
                    }
                }
                let _ = cache_sub.ack(&d).await;
            }
        });
    }
    let batcher_task = tokio::spawn(batcher(ring.clone(), bus.clone(), metrics.clone(), seen));
    if auth.enabled() {
        tokio::spawn(auth::refresh_loop(Arc::downgrade(&auth), stop_rx.clone()));
    }
    let udp_task = udp.map(|sock| tokio::spawn(udp::run(sock, state.clone(), stop_rx.clone())));
    let http_task = {
        let app = http::router(state.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            if let Err(e) = tls::serve(listener, tls, app, shutdown).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        })
    };
    let webhooks_task = webhook_subs
        .map(|(ins, tel)| tokio::spawn(webhooks::run(config.clone(), ins, tel, metrics.clone())));
    let udp_shown = udp_addr.map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(http = %http_addr, udp = %udp_shown, store = %location, "PitWall serving");
    Ok(Running {
        http_addr,
        udp_addr,
        state,
        stop_sources,
        http_task,
        udp_task,
        batcher_task,
        hub_task,
        store_thread,
        analysis_thread,
        heartbeat_task,
        webhooks_task,
    })
}

impl Running {
    /// Stops the sources, drains the pipeline into the store and waits for it to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let _ = self.stop_sources.send(true);
        if let Some(t) = self.udp_task {
            let _ = t.await;
        }
        // WebSocket connections would hold the HTTP server open: the hub closes them below,
        // so give the HTTP server a bounded time to finish its requests.
        let http = tokio::time::timeout(Duration::from_secs(5), self.http_task);
        self.state.ring.close();
        let _ = self.batcher_task.await;
        self.state.bus.close();
        let _ = self.hub_task.await;
        let _ = http.await;
        // Webhooks get a bounded time to send what they hold.
        if let Some(t) = self.webhooks_task {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                abort.abort();
                tracing::warn!("webhooks still sending at shutdown: the rest is dropped");
            }
        }
        if let Some(analysis_thread) = self.analysis_thread {
            tokio::task::spawn_blocking(move || analysis_thread.join())
                .await?
                .map_err(|_| anyhow::anyhow!("the analysis stage panicked"))?;
        }
        if let Some(store_thread) = self.store_thread {
            tokio::task::spawn_blocking(move || store_thread.join())
                .await?
                .map_err(|_| anyhow::anyhow!("the store writer panicked"))?;
        }
        if let Some(t) = self.heartbeat_task {
            t.abort();
        }
        if let Some(r) = &self.state.redis {
            let _ = r.unregister_worker(&self.state.instance).await;
            // This instance's own groups: nobody else reads them.
            for (topic, g) in [
                (Topic::Telemetry, "ws"),
                (Topic::Insights, "ws"),
                (Topic::Insights, "cache"),
            ] {
                let group = format!("{g}-{}", self.state.instance);
                if let Err(e) = r.destroy_group(topic, &group).await {
                    tracing::warn!(error = %e, group, "could not delete a consumer group");
                }
            }
        }
        tracing::info!(
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "pipeline drained and stored"
        );
        Ok(())
    }
}

async fn batcher(
    ring: Arc<IngestRing>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    seen: Arc<Mutex<Seen>>,
) {
    while let Some(first) = ring.next_batch().await {
        // Whatever else is ready goes in the same publish (one round trip on Redis).
        let mut batches = vec![first];
        while batches.len() < PUBLISH_BATCHES {
            match ring.try_full_batch() {
                Some(b) => batches.push(b),
                None => break,
            }
        }
        let mut msgs = Vec::with_capacity(batches.len());
        for b in batches {
            {
                let mut seen = seen.lock();
                let mut last: Option<(&str, &str)> = None;
                for s in &b.samples {
                    let k = (s.track_or_session(), &*s.car_id);
                    if last != Some(k) {
                        last = Some(k);
                        let known = seen.get(k.1).is_some_and(|t| t.contains(k.0));
                        if !known {
                            seen.entry(k.1.to_string())
                                .or_default()
                                .insert(k.0.to_string());
                        }
                    }
                }
            }
            metrics.batch_points.observe(b.samples.len() as f64);
            let key = b
                .samples
                .first()
                .map(|s| s.car_id.clone())
                .unwrap_or_else(|| Arc::from(""));
            msgs.push((
                key,
                Message::Telemetry(Arc::new(TelemetryBatch {
                    samples: b.samples,
                    received_unix_ns: b.received_unix_ns,
                })),
            ));
        }
        metrics.ring_depth.set(ring.len() as i64);
        // A bus that cannot take the batches now (Redis unreachable, or its consumers too far
        // behind) is waited for, batches in hand; only a closed bus ends the loop.
        let mut backoff = Duration::from_millis(20);
        loop {
            match bus.publish_many(&msgs).await {
                Ok(()) => break,
                Err(bus::BusError::Closed) => {
                    tracing::error!("the bus closed with batches still to publish");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bus refused a batch; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Ring batches published together at most (one pipelined round trip on Redis).
const PUBLISH_BATCHES: usize = 64;

/// What the store writer gathered before one write.
#[derive(Default)]
struct Pending {
    samples: Vec<Sample>,
    /// Laps by (session, track).
    laps: std::collections::BTreeMap<(String, Option<String>), Vec<store::LapRow>>,
    alerts: Vec<store::AlertRow>,
    profiles: Vec<Arc<analysis::messages::ProfileUpdate>>,
    events: Vec<Arc<analysis::SessionEvent>>,
}

impl Pending {
    fn take(&mut self, d: &bus::Delivery) {
        match &d.message {
            Message::Telemetry(b) => self.samples.extend(b.samples.iter().cloned()),
            Message::Session(e) => self.events.push(e.clone()),
            Message::Insight(i) => self
                .laps
                .entry((i.session_id.clone(), i.track.clone()))
                .or_default()
                .push(stored::lap_row(i)),
            Message::Alert(a) => self.alerts.push(stored::alert_row(a)),
            Message::Profile(p) => self.profiles.push(p.clone()),
            // Work for the strategy workers: nothing the store keeps.
            Message::StrategyJob(_) => {}
        }
    }

    fn len(&self) -> usize {
        self.samples.len() + self.alerts.len() + self.profiles.len() + self.laps.len()
    }

    /// Writes everything; the samples' count on success.
    fn write(&self, store: &mut Store) -> store::Result<usize> {
        for e in &self.events {
            if let analysis::SessionEvent::Race { session_id, doc } = &**e {
                store.ensure_session(session_id, doc.get("track").and_then(|t| t.as_str()))?;
                store.set_session_meta(session_id, stored::META_RACE, &doc.to_string())?;
            }
        }
        let n = store.write_batch(&self.samples)?;
        for ((session, track), rows) in &self.laps {
            store.write_laps(session, track.as_deref(), rows)?;
        }
        if !self.alerts.is_empty() {
            store.write_alerts(&self.alerts)?;
        }
        for p in &self.profiles {
            stored::write_profile(store, p)?;
        }
        Ok(n)
    }
}

/// The one writer of the store: samples and session events from `bus:telemetry`, insights
/// (laps), alerts and profiles from `bus:insights`, written in batches.
pub(crate) fn store_writer(
    mut store: Store,
    mut telemetry: Box<dyn Subscription>,
    mut insights: Box<dyn Subscription>,
    rt: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    flush: Duration,
    max: usize,
) {
    let mut open = [true, true];
    let backend = if store.location().is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    while let Some(first) = rt.block_on(next_of(&mut telemetry, &mut insights, &mut open)) {
        let deadline = Instant::now() + flush;
        let mut pending = Pending::default();
        pending.take(&first.1);
        let mut deliveries = vec![first];
        while pending.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = rt.block_on(async {
                tokio::time::timeout(left, next_of(&mut telemetry, &mut insights, &mut open)).await
            });
            match got {
                Ok(Some(d)) => {
                    pending.take(&d.1);
                    deliveries.push(d);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let t0 = Instant::now();
        match pending.write(&mut store) {
            Ok(n) => {
                metrics.store_written.inc_by(n as u64);
                metrics
                    .store_batch_seconds
                    .with_label_values(&[backend])
                    .observe(t0.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics.store_errors.inc();
                tracing::error!(error = %e, samples = pending.samples.len(), "store write failed");
            }
        }
        rt.block_on(async {
            for (k, d) in &deliveries {
                let sub = if *k == 0 {
                    &mut telemetry
                } else {
                    &mut insights
                };
                let _ = sub.ack(d).await;
            }
        });
    }
    if let Err(e) = store.checkpoint() {
        tracing::warn!(error = %e, "store checkpoint failed");
    }
}

/// The next delivery of either subscription, with its index (0 telemetry, 1 insights);
/// `None` once both have ended.
async fn next_of(
    telemetry: &mut Box<dyn Subscription>,
    insights: &mut Box<dyn Subscription>,
    open: &mut [bool; 2],
) -> Option<(usize, bus::Delivery)> {
    loop {
        if !open[0] && !open[1] {
            return None;
        }
        let (k, d) = tokio::select! {
            d = telemetry.next(), if open[0] => (0, d),
            d = insights.next(), if open[1] => (1, d),
        };
        match d {
            Some(d) => return Some((k, d)),
            None => open[k] = false,
        }
    }
}
