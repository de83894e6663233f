//! PitWall's stages as workers on the Redis bus (`pitwall worker --role ...`), and the
//! server's own heartbeat in the worker registry.
//!
//! ```text
//! pitwall serve --bus redis://.. --workers   ingest ─► telemetry:{p} ; insights ─► WebSocket + cache
//! worker --role analysis  (leases)           telemetry:{p} it holds ─► insights, strategy jobs
//! worker --role strategy  (competing)        strategy ─► insights (revised: pit window + call)
//! worker --role store     (the one writer)   telemetry + insights ─► the store
//! ```
//!
//! An analysis worker keeps one `SessionAnalysis` per session of the partitions it holds. The
//! first time it meets a session (a fresh one, or one it took over from a dead worker) it
//! rebuilds the session's state from the partition's stream, from the session's first entry
//! (marked in the partition's checkpoint hash by whoever met the session first) up to the
//! entry in hand, emitting nothing; what it then emits goes through [`RedisBus::publish_once`] keyed (session, car,
//! lap, revision), so a lap handled by two workers (the dead one before its ack, the survivor
//! after) is emitted once.

use crate::metrics::Metrics;
use crate::{AppState, Config};
use analysis::messages::ProfileUpdate;
use analysis::{AnalysisOptions, Output, PitWindow, SessionAnalysis, WindowSettings};
use bus::{
    Bus, LeaseConfig, Leases, Message, RedisBus, RedisBusConfig, SubscribeOptions, Subscription,
    Topic, WorkerInfo,
};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the once-markers of emitted insights live, ms (a day: longer than a race).
const ONCE_TTL_MS: u64 = 24 * 3600 * 1000;

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Laps, tyres, coaching of the telemetry partitions it holds a lease on.
    Analysis,
    /// Pit-window Monte Carlo jobs (competing consumers of the strategy stream).
    Strategy,
    /// The one writer of the store (samples, laps, alerts, profiles).
    Store,
}

impl Role {
    /// The role's name in the registry.
    pub fn name(self) -> &'static str {
        match self {
            Role::Analysis => "analysis",
            Role::Strategy => "strategy",
            Role::Store => "store",
        }
    }
}

/// Settings of one worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub role: Role,
    /// `redis://HOST:PORT`.
    pub bus_url: String,
    /// The worker's id in the registry, its leases and its consumer names.
    pub id: String,
    /// Partition lease ttl, ms: how soon a dead analysis worker's sessions move.
    pub lease_ttl_ms: u64,
    /// Pending entries idle this long are claimed by another consumer of the group, ms.
    pub claim_idle_ms: u64,
    /// The server settings the stage uses (store location, bus partitions, tire model,
    /// strategy iterations and seed, store batching).
    pub server: Config,
}

/// The Redis bus settings of a server or worker.
pub fn redis_config(c: &Config, worker_id: &str) -> RedisBusConfig {
    RedisBusConfig {
        partitions: c.bus_partitions,
        worker_id: worker_id.to_string(),
        stream_cap: c.bus_stream_cap,
        backpressure_lag_entries: c.bus_backpressure_lag_entries,
        ..RedisBusConfig::default()
    }
}

/// What a worker tells the registry at each heartbeat.
#[derive(Default)]
struct Progress {
    processed: AtomicU64,
    pending: AtomicU64,
    lag_ms: AtomicU64,
    partitions: Mutex<Vec<usize>>,
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn heartbeat(
    bus: Arc<RedisBus>,
    id: String,
    role: &'static str,
    p: Arc<Progress>,
    leases: Option<Arc<Leases>>,
) {
    let every = Duration::from_millis((bus.config().worker_ttl_ms / 4).clamp(50, 1000));
    loop {
        let partitions = match &leases {
            Some(l) => l.owned(),
            None => p.partitions.lock().clone(),
        };
        let info = WorkerInfo {
            id: id.clone(),
            role: role.to_string(),
            partitions,
            processed: p.processed.load(Ordering::Relaxed),
            pending: p.pending.load(Ordering::Relaxed),
            lag_ms: p.lag_ms.load(Ordering::Relaxed),
            heartbeat_unix_ms: 0,
        };
        if let Err(e) = bus.register_worker(&info).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        tokio::time::sleep(every).await;
    }
}

/// The server's entry in the registry (role `delivery`: WebSocket clients and the
/// latest-insight cache), and the registry's view on `/metrics`.
pub(crate) async fn server_heartbeat(bus: Arc<RedisBus>, state: Arc<AppState>, id: String) {
    let every = Duration::from_millis((bus.config().worker_ttl_ms / 4).clamp(50, 1000));
    loop {
        let info = WorkerInfo {
            id: id.clone(),
            role: if state.config.workers {
                "delivery".to_string()
            } else {
                "server".to_string()
            },
            partitions: Vec::new(),
            processed: state.insights_seen.load(Ordering::Relaxed),
            pending: 0,
            lag_ms: 0,
            heartbeat_unix_ms: 0,
        };
        if let Err(e) = bus.register_worker(&info).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        if let Ok(list) = bus.workers().await {
            state.metrics.set_agents(&list);
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs a worker until `stop` resolves (a signal), then drains, releases its leases and
/// leaves the registry. `ready` is called once the worker is subscribed.
pub async fn run(
    cfg: WorkerConfig,
    stop: impl std::future::Future<Output = ()>,
    ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let bus = RedisBus::connect(&cfg.bus_url, {
        let mut r = redis_config(&cfg.server, &cfg.id);
        r.claim_idle_ms = cfg.claim_idle_ms;
        r
    })
    .await
    .map_err(|e| anyhow::anyhow!("connecting to the Redis bus at {}: {e}", cfg.bus_url))?;
    let progress = Arc::new(Progress::default());
    let rt = tokio::runtime::Handle::current();
    let metrics = Arc::new(Metrics::new());
    let windows = WindowSettings {
        screen_iterations: cfg.server.strategy_live_iterations,
        seed: cfg.server.strategy_seed,
    };
    let mut leases_held: Option<Arc<Leases>> = None;
    let stage: tokio::task::JoinHandle<()> = match cfg.role {
        Role::Analysis => {
            let leases = Leases::start(
                &bus,
                LeaseConfig {
                    worker_id: cfg.id.clone(),
                    ttl_ms: cfg.lease_ttl_ms,
                    max_partitions: None,
                },
            )
            .await?;
            leases_held = Some(leases.clone());
            let sub = bus
                .subscribe_with(
                    Topic::Telemetry,
                    "analysis",
                    SubscribeOptions {
                        consumer: Some(cfg.id.clone()),
                        leases: Some(leases.clone()),
                    },
                )
                .await?;
            let wins = bus
                .subscribe_with(
                    Topic::Insights,
                    &format!("windows-{}", cfg.id),
                    SubscribeOptions::default(),
                )
                .await?;
            let model = analysis::load_tire_model(cfg.server.model.as_deref())?;
            let (bus, p) = (bus.clone(), progress.clone());
            tokio::task::spawn_blocking(move || {
                analysis_loop(sub, wins, bus, leases, rt, p, Some(model))
            })
        }
        Role::Strategy => {
            let sub = bus
                .subscribe_with(
                    Topic::Strategy,
                    "strategy",
                    SubscribeOptions {
                        consumer: Some(cfg.id.clone()),
                        leases: None,
                    },
                )
                .await?;
            tokio::spawn(strategy_loop(sub, bus.clone(), progress.clone(), windows))
        }
        Role::Store => {
            let location = cfg.server.store_location();
            let store = {
                let at = location.clone();
                tokio::task::spawn_blocking(move || store::Store::open_location(&at))
                    .await?
                    .map_err(|e| anyhow::anyhow!("opening the store at {location}: {e}"))?
            };
            let opts = || SubscribeOptions {
                consumer: Some(cfg.id.clone()),
                leases: None,
            };
            let tel: Box<dyn Subscription> = Box::new(
                bus.subscribe_with(Topic::Telemetry, "store", opts())
                    .await?,
            );
            let ins: Box<dyn Subscription> =
                Box::new(bus.subscribe_with(Topic::Insights, "store", opts()).await?);
            let tel = Counted::boxed(tel, progress.clone());
            let ins = Counted::boxed(ins, progress.clone());
            let flush = Duration::from_millis(cfg.server.store_flush_ms);
            let max = cfg.server.store_batch_max;
            tokio::task::spawn_blocking(move || {
                crate::store_writer(store, tel, ins, rt, metrics, flush, max)
            })
        }
    };
    let beat = tokio::spawn(heartbeat(
        bus.clone(),
        cfg.id.clone(),
        cfg.role.name(),
        progress.clone(),
        leases_held.clone(),
    ));
    ready(&cfg.id);
    tracing::info!(id = %cfg.id, role = cfg.role.name(), "worker running");
    stop.await;
    tracing::info!(id = %cfg.id, "worker stopping: draining");
    bus.close();
    let _ = stage.await;
    if let Some(l) = leases_held {
        let _ = l.release_all().await;
    }
    beat.abort();
    let _ = bus.unregister_worker(&cfg.id).await;
    if cfg.role == Role::Analysis {
        let _ = bus
            .destroy_group(Topic::Insights, &format!("windows-{}", cfg.id))
            .await;
    }
    Ok(())
}

/// A subscription that counts what it hands out (the store worker's progress).
struct Counted {
    inner: Box<dyn Subscription>,
    p: Arc<Progress>,
}

impl Counted {
    fn boxed(inner: Box<dyn Subscription>, p: Arc<Progress>) -> Box<dyn Subscription> {
        Box::new(Counted { inner, p })
    }
}

#[async_trait::async_trait]
impl Subscription for Counted {
    async fn next(&mut self) -> Option<bus::Delivery> {
        let d = self.inner.next().await;
        if let Some(d) = &d {
            self.p.pending.fetch_add(1, Ordering::Relaxed);
            if let Message::Telemetry(b) = &d.message {
                if let Some(ns) = b.received_unix_ns.last() {
                    let lag = unix_ns().saturating_sub(*ns) / 1_000_000;
                    self.p.lag_ms.store(lag, Ordering::Relaxed);
                }
            }
        }
        d
    }
    async fn ack(&mut self, d: &bus::Delivery) -> Result<(), bus::BusError> {
        self.p.processed.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .p
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.inner.ack(d).await
    }
}

/// Per-session state of an analysis worker.
struct Sessions {
    opts: AnalysisOptions,
    live: HashMap<Arc<str>, SessionAnalysis>,
    /// Race lengths announced before the session's first sample.
    early: HashMap<String, Vec<analysis::SessionEvent>>,
    /// Sessions whose history was rebuilt (or that started here).
    known: HashSet<String>,
}

impl Sessions {
    /// Feeds one telemetry-topic message; outputs go to `out`.
    fn apply(&mut self, m: &Message, out: &mut Vec<Output>) {
        match m {
            Message::Session(e) => match self.live.get_mut(e.session_id()) {
                Some(a) => a.on_event(e),
                None => self
                    .early
                    .entry(e.session_id().to_string())
                    .or_default()
                    .push((**e).clone()),
            },
            Message::Telemetry(b) => {
                for s in &b.samples {
                    let opts = self.opts;
                    let early = &mut self.early;
                    let a = self.live.entry(s.session_id.clone()).or_insert_with(|| {
                        let mut a =
                            SessionAnalysis::new(s.session_id.clone(), s.track.clone(), opts);
                        for e in early.remove(&*s.session_id).unwrap_or_default() {
                            a.on_event(&e);
                        }
                        a
                    });
                    a.push(s, out);
                }
            }
            _ => {}
        }
    }

    fn forget_unless(&mut self, keep: impl Fn(&str) -> bool) {
        self.live.retain(|s, _| keep(s));
        self.early.retain(|s, _| keep(s));
        self.known.retain(|s| keep(s));
    }
}

/// The session a telemetry-topic message belongs to.
fn session_of(m: &Message) -> Option<String> {
    match m {
        Message::Session(e) => Some(e.session_id().to_string()),
        Message::Telemetry(b) => b.samples.first().map(|s| s.session_id.to_string()),
        _ => None,
    }
}

fn analysis_loop(
    mut sub: bus::RedisSubscription,
    mut wins: bus::RedisSubscription,
    bus: Arc<RedisBus>,
    leases: Arc<Leases>,
    rt: tokio::runtime::Handle,
    p: Arc<Progress>,
    tire_model: Option<&'static analysis::tires::TireModel>,
) {
    // Windows the strategy workers computed, for the sessions held here: later laps carry them.
    let (win_tx, win_rx) = std::sync::mpsc::channel::<(String, String, PitWindow)>();
    let win_task = rt.spawn(async move {
        while let Some(d) = wins.next().await {
            if let Message::Insight(i) = &d.message {
                if let (true, Some(w)) = (i.revision > 0, i.pit_window.clone()) {
                    let _ = win_tx.send((i.session_id.clone(), i.chassis.clone(), w));
                }
            }
            let _ = wins.ack(&d).await;
        }
    });
    let mut st = Sessions {
        opts: AnalysisOptions {
            tire_model,
            coach: true,
        },
        live: HashMap::new(),
        early: HashMap::new(),
        known: HashSet::new(),
    };
    let mut out = Vec::new();
    let mut discard = Vec::new();
    while let Some(d) = rt.block_on(sub.next()) {
        // Sessions of partitions no longer held are dropped: if the partition comes back,
        // they are rebuilt from the stream.
        let owned = leases.owned();
        *p.partitions.lock() = owned.clone();
        st.forget_unless(|s| owned.contains(&bus.partition_of(s)));
        while let Ok((session, car, w)) = win_rx.try_recv() {
            if let Some(a) = st.live.get_mut(session.as_str()) {
                a.set_window(&car, &w);
            }
        }
        let Some(session) = session_of(&d.message) else {
            let _ = rt.block_on(sub.ack(&d));
            continue;
        };
        if !st.known.contains(&session) {
            if let Some((part, entry)) = sub.entry_of(&d) {
                // Everything depends on Redis here: wait for it rather than skip (order).
                let history = loop {
                    match rt.block_on(history_of(&bus, part, &session, &entry)) {
                        Ok(h) => break Some(h),
                        Err(e) if bus.is_running() => {
                            tracing::warn!(error = %e, session = %session, "cannot rebuild a session's state yet");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        Err(_) => break None,
                    }
                };
                let Some(history) = history else { break };
                let n = history.len();
                for m in history
                    .iter()
                    .filter(|m| session_of(m).as_deref() == Some(&session))
                {
                    st.apply(m, &mut discard);
                    discard.clear();
                }
                if n > 0 {
                    tracing::info!(session = %session, partition = part, entries = n, "session state rebuilt from the stream");
                }
            }
            st.known.insert(session.clone());
        }
        st.apply(&d.message, &mut out);
        if let Message::Telemetry(b) = &d.message {
            if let Some(ns) = b.received_unix_ns.last() {
                p.lag_ms
                    .store(unix_ns().saturating_sub(*ns) / 1_000_000, Ordering::Relaxed);
            }
        }
        for o in out.drain(..) {
            emit(&rt, &bus, o);
        }
        let _ = rt.block_on(sub.ack(&d));
        p.processed.fetch_add(1, Ordering::Relaxed);
        p.pending.store(sub.pending() as u64, Ordering::Relaxed);
    }
    win_task.abort();
}

/// What came before entry `entry` of `session` in partition `part`. The session's first
/// entry id is kept in the partition's checkpoint hash by whoever met the session first
/// (before acking anything of it): no mark means nothing of the session was handled yet, so
/// there is nothing to replay; a mark bounds the replay to the session's own stretch.
async fn history_of(
    bus: &RedisBus,
    part: usize,
    session: &str,
    entry: &str,
) -> Result<Vec<Message>, bus::BusError> {
    match bus.get_checkpoint(part, session).await? {
        Some(first) => {
            let first = String::from_utf8_lossy(&first).to_string();
            bus.telemetry_range(part, &first, entry).await
        }
        None => {
            bus.put_checkpoint(part, session, entry.as_bytes()).await?;
            Ok(Vec::new())
        }
    }
}

/// Publishes one output of the analysis once (keyed by what it is about).
fn emit(rt: &tokio::runtime::Handle, bus: &RedisBus, o: Output) {
    match o {
        Output::Alert(al) => {
            let tag = format!(
                "alert:{}:{}:{}:{}:{}",
                al.session_id, al.car_id, al.lap, al.corner, al.t_s
            );
            let m = Message::Alert(Arc::from(al));
            if let Err(e) = rt.block_on(bus.publish_once(&tag, ONCE_TTL_MS, &[m])) {
                tracing::warn!(error = %e, "alert not published");
            }
        }
        Output::Lap(done) => {
            let done = *done;
            let i = &done.insight;
            let tag = format!(
                "insight:{}:{}:{}:{}",
                i.session_id, i.chassis, i.lap, i.revision
            );
            let job_tag = format!("job:{}:{}:{}", i.session_id, i.chassis, i.lap);
            let mut msgs = Vec::with_capacity(2);
            if let Some(pr) = done.profile {
                let track = if pr.track.is_empty() {
                    i.track.clone().unwrap_or_else(|| i.session_id.clone())
                } else {
                    pr.track.clone()
                };
                msgs.push(Message::Profile(Arc::new(ProfileUpdate {
                    session_id: i.session_id.clone(),
                    track,
                    profile: pr,
                })));
            }
            msgs.push(Message::Insight(Arc::new(done.insight)));
            if let Err(e) = rt.block_on(bus.publish_once(&tag, ONCE_TTL_MS, &msgs)) {
                tracing::warn!(error = %e, "insight not published");
            }
            if let Some(job) = done.job {
                let m = Message::StrategyJob(Arc::new(job));
                if let Err(e) = rt.block_on(bus.publish_once(&job_tag, ONCE_TTL_MS, &[m])) {
                    tracing::warn!(error = %e, "strategy job not published");
                }
            }
        }
    }
}

async fn strategy_loop(
    mut sub: bus::RedisSubscription,
    bus: Arc<RedisBus>,
    p: Arc<Progress>,
    cfg: WindowSettings,
) {
    while let Some(d) = sub.next().await {
        if let Message::StrategyJob(job) = &d.message {
            let job = job.clone();
            match tokio::task::spawn_blocking(move || job.run(&cfg)).await {
                Ok(revised) => {
                    let tag = format!(
                        "insight:{}:{}:{}:{}",
                        revised.session_id, revised.chassis, revised.lap, revised.revision
                    );
                    let m = Message::Insight(Arc::new(revised));
                    if let Err(e) = bus.publish_once(&tag, ONCE_TTL_MS, &[m]).await {
                        // Not acked: another try after the claim time.
                        tracing::warn!(error = %e, "revised insight not published");
                        continue;
                    }
                }
                Err(e) => tracing::error!(error = %e, "strategy job failed"),
            }
        }
        let _ = sub.ack(&d).await;
        p.processed.fetch_add(1, Ordering::Relaxed);
        p.pending.store(sub.pending() as u64, Ordering::Relaxed);
    }
}
