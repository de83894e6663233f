//! [`RedisBus`]: the [`Bus`] on Redis Streams, for stages spread over processes and machines.
//!
//! Streams (with the default key prefix `pitwall`):
//! - `pitwall:telemetry:{p}`, p in 0..partitions: samples and session events, partitioned by
//!   session ([`crate::partition::of_session`], FNV-1a), so one session's messages stay in
//!   order in one stream. A batch mixing sessions is split per session.
//! - `pitwall:insights`: insights, alerts and profiles.
//! - `pitwall:strategy`: strategy jobs, a work stream (competing consumers of one group).
//! - `pitwall:dead`: entries that failed [`RedisBusConfig::max_deliveries`] times or could not
//!   be decoded, with where they came from and why ([`RedisBus::dead_letters`]).
//!
//! Every stream is capped: publishing pipelines its XADDs (one round trip per
//! [`RedisBus::publish_all`]) and, every [`RedisBusConfig::trim_every`] entries of a stream,
//! an `XTRIM MAXLEN ~ cap` whose reply (entries deleted) is counted in
//! [`RedisBusStats::trimmed`]. A stream may thus briefly hold `cap + trim_every` entries plus
//! one macro node (100 entries by default). Trimming does not wait for slow groups: what a
//! group had not read yet is gone (a group's lag then shows it).
//!
//! Each subscription joins a consumer group (`XGROUP CREATE ... $ MKSTREAM`) under its own
//! consumer name and reads with `XREADGROUP ... BLOCK` on a connection of its own; entries
//! left pending longer than [`RedisBusConfig::claim_idle_ms`] (a consumer that died, or a
//! handler that never acked) are taken over with XAUTOCLAIM, and an entry delivered more than
//! `max_deliveries` times goes to the dead-letter stream and is acked there.
//! With [`Leases`] ([`SubscribeOptions::leases`]) a telemetry subscription reads only the
//! partitions its worker holds.
//!
//! Connection loss: every connection reconnects with capped exponential backoff; while Redis
//! is unreachable [`RedisBus::is_ready`] is false and publishing fails fast with
//! [`BusError::Unavailable`]. A Redis that comes back empty (nothing on disk) is noticed and
//! counted, not hidden: [`RedisBusStats::redis_resets`] (the bus's epoch key vanished) and
//! [`RedisBusStats::groups_recreated`] (a group had to be created again; it then reads the
//! new stream from its start).
//!
//! Needs Redis 6.2 or later (XAUTOCLAIM); backlog figures use Redis 7's group lag.

mod latest;
mod leases;
mod link;
mod registry;
mod subscription;

pub use leases::{LeaseConfig, Leases};
pub use registry::WorkerInfo;
pub use subscription::{RedisSubscription, SubscribeOptions};

use crate::wire;
use crate::{Bus, BusError, Message, Subscription, Topic};
use async_trait::async_trait;
use link::Link;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Settings of a [`RedisBus`].
#[derive(Debug, Clone)]
pub struct RedisBusConfig {
    /// Telemetry partitions (streams), hashed on the session id. Every process of a
    /// deployment must agree on it.
    pub partitions: usize,
    /// Entries each stream keeps (approximately: `MAXLEN ~`).
    pub stream_cap: u64,
    /// Entries added to a stream (by this process) between two XTRIMs of it.
    pub trim_every: u64,
    /// How long one XREADGROUP waits for entries, ms.
    pub block_ms: u64,
    /// Entries one XREADGROUP (or XAUTOCLAIM) takes at most.
    pub read_count: usize,
    /// Pending entries idle longer than this are claimed by another consumer, ms.
    pub claim_idle_ms: u64,
    /// Deliveries after which an entry is dead-lettered instead of delivered again.
    pub max_deliveries: u64,
    /// Prefix of every key, so that deployments (and tests) can share a Redis.
    pub key_prefix: String,
    /// This process's worker id (the default consumer names derive from it).
    pub worker_id: String,
    /// First reconnect delay, ms (doubling up to `backoff_max_ms`).
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u64,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Response timeout of non-blocking commands, ms (blocking reads add `block_ms`).
    pub response_timeout_ms: u64,
    /// How often the bus checks Redis (readiness, restarts, backlog), ms.
    pub health_interval_ms: u64,
    /// A worker's registry entry lives this long without a heartbeat, ms.
    pub worker_ttl_ms: u64,
    /// Backpressure: telemetry publishing waits while a live consumer group of a telemetry
    /// stream has this many entries not yet delivered, so that the caps never trim what a
    /// stage has not read (0: never wait). A group is live while one of its consumers read
    /// within the last `worker_ttl_ms` (a killed server's groups do not hold publishing up).
    pub backpressure_lag_entries: u64,
}

impl Default for RedisBusConfig {
    fn default() -> RedisBusConfig {
        RedisBusConfig {
            partitions: 8,
            stream_cap: 100_000,
            trim_every: 1_000,
            block_ms: 1_000,
            read_count: 64,
            claim_idle_ms: 30_000,
            max_deliveries: 5,
            key_prefix: "pitwall".to_string(),
            worker_id: default_worker_id(),
            backoff_initial_ms: 50,
            backoff_max_ms: 5_000,
            connect_timeout_ms: 1_000,
            response_timeout_ms: 2_000,
            health_interval_ms: 1_000,
            worker_ttl_ms: 10_000,
            backpressure_lag_entries: 50_000,
        }
    }
}

/// `host-pid-nanos`: unique per process start.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// Counters of a [`RedisBus`] and its subscriptions (monotonic since the bus was made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisBusStats {
    /// Messages published (a telemetry batch split over sessions counts once).
    pub published: u64,
    /// Stream entries added (XADD).
    pub entries_added: u64,
    /// Publish round trips (pipelines sent).
    pub publish_round_trips: u64,
    /// Entries deleted by capping (sum of XTRIM replies).
    pub trimmed: u64,
    /// Entries handed to consumers (first deliveries and claimed ones).
    pub delivered: u64,
    /// Entries acknowledged (XACK replies).
    pub acked: u64,
    /// Entries taken over from an idle or dead consumer (XAUTOCLAIM).
    pub claimed: u64,
    /// Pending entries that were trimmed away before anyone acked them.
    pub pending_lost: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
    /// Entries whose envelope did not decode (dead-lettered too).
    pub decode_errors: u64,
    /// Successful reconnects (any connection of the bus).
    pub reconnects: u64,
    /// Failed commands and connects.
    pub errors: u64,
    /// Times Redis was found emptied (its epoch key gone): what it held is lost.
    pub redis_resets: u64,
    /// Consumer groups that had vanished and were created again.
    pub groups_recreated: u64,
    /// Partition leases taken.
    pub leases_acquired: u64,
    /// Partition leases lost to expiry (another worker holds them now).
    pub leases_lost: u64,
    /// Telemetry publishes that waited for the consumers (backpressure).
    pub backpressure_waits: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub entries_added: AtomicU64,
    pub publish_round_trips: AtomicU64,
    pub trimmed: AtomicU64,
    pub delivered: AtomicU64,
    pub acked: AtomicU64,
    pub claimed: AtomicU64,
    pub pending_lost: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub decode_errors: AtomicU64,
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
    pub redis_resets: AtomicU64,
    pub groups_recreated: AtomicU64,
    pub leases_acquired: AtomicU64,
    pub leases_lost: AtomicU64,
    pub backpressure_waits: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RedisBusStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisBusStats {
            published: g(&self.published),
            entries_added: g(&self.entries_added),
            publish_round_trips: g(&self.publish_round_trips),
            trimmed: g(&self.trimmed),
            delivered: g(&self.delivered),
            acked: g(&self.acked),
            claimed: g(&self.claimed),
            pending_lost: g(&self.pending_lost),
            dead_lettered: g(&self.dead_lettered),
            decode_errors: g(&self.decode_errors),
            reconnects: g(&self.reconnects),
            errors: g(&self.errors),
            redis_resets: g(&self.redis_resets),
            groups_recreated: g(&self.groups_recreated),
            leases_acquired: g(&self.leases_acquired),
            leases_lost: g(&self.leases_lost),
            backpressure_waits: g(&self.backpressure_waits),
        }
    }
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The keys of one deployment (prefix) and partition count.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    partitions: usize,
}

impl Keys {
    pub(crate) fn telemetry(&self, p: usize) -> String {
        format!("{}:telemetry:{p}", self.prefix)
    }
    pub(crate) fn telemetry_prefix(&self) -> String {
        format!("{}:telemetry:", self.prefix)
    }
    pub(crate) fn insights(&self) -> String {
        format!("{}:insights", self.prefix)
    }
    pub(crate) fn strategy(&self) -> String {
        format!("{}:strategy", self.prefix)
    }
    pub(crate) fn dead(&self) -> String {
        format!("{}:dead", self.prefix)
    }
    pub(crate) fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
    pub(crate) fn lease(&self, p: usize) -> String {
        format!("{}:lease:telemetry:{p}", self.prefix)
    }
    pub(crate) fn lease_members(&self) -> String {
        format!("{}:lease-members:telemetry", self.prefix)
    }
    pub(crate) fn checkpoint(&self, p: usize) -> String {
        format!("{}:checkpoint:telemetry:{p}", self.prefix)
    }
    pub(crate) fn worker(&self, id: &str) -> String {
        format!("{}:worker:{id}", self.prefix)
    }
    pub(crate) fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }
    pub(crate) fn latest(&self, track: &str, car: &str) -> String {
        format!("{}:latest:{track}:{car}", self.prefix)
    }
    /// The streams of a topic, in partition order.
    pub(crate) fn streams(&self, topic: Topic) -> Vec<String> {
        match topic {
            Topic::Telemetry => (0..self.partitions).map(|p| self.telemetry(p)).collect(),
            Topic::Insights => vec![self.insights()],
            Topic::Strategy => vec![self.strategy()],
        }
    }
}

/// What the bus and its subscriptions share.
pub(crate) struct Shared {
    pub cfg: RedisBusConfig,
    pub keys: Keys,
    pub client: redis::Client,
    pub counters: Counters,
    pub closed: AtomicBool,
}

/// The [`Bus`] on Redis Streams. See the [module docs](self) for the layout and semantics.
pub struct RedisBus {
    shared: Arc<Shared>,
    link: Arc<Link>,
    /// Entries added per stream since its last XTRIM.
    adds: Mutex<HashMap<String, u64>>,
    backlog: Arc<Mutex<Vec<(Topic, String, usize)>>>,
    /// The largest lag of a live group on a telemetry stream, as last read, and the telemetry
    /// entries this process added since (so a burst between two readings counts too).
    pressure: Arc<AtomicU64>,
    added_since: Arc<AtomicU64>,
    epoch: Arc<tokio::sync::Mutex<Option<String>>>,
    health: Mutex<Option<tokio::task::JoinHandle<()>>>,
    next_consumer: AtomicU64,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("prefix", &self.shared.cfg.key_prefix)
            .field("partitions", &self.shared.cfg.partitions)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl RedisBus {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`) and starts the health task (readiness,
    /// restart detection, backlog). Fails when the URL is invalid or Redis unreachable now.
    /// Call from within a tokio runtime.
    pub async fn connect(url: &str, cfg: RedisBusConfig) -> Result<Arc<RedisBus>, BusError> {
        let client = redis::Client::open(url)
            .map_err(|e| BusError::Backend(format!("bad redis url {url:?}: {e}")))?;
        let mut cfg = cfg;
        cfg.partitions = cfg.partitions.max(1);
        cfg.trim_every = cfg.trim_every.max(1);
        cfg.read_count = cfg.read_count.max(1);
        cfg.max_deliveries = cfg.max_deliveries.max(1);
        let keys = Keys {
            prefix: cfg.key_prefix.clone(),
            partitions: cfg.partitions,
        };
        let shared = Arc::new(Shared {
            keys,
            client,
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            cfg,
        });
        let link = Arc::new(Link::new(
            shared.clone(),
            Duration::from_millis(shared.cfg.response_timeout_ms.max(1)),
        ));
        let epoch = Arc::new(tokio::sync::Mutex::new(None));
        check_epoch(&shared, &link, &epoch).await?;
        let bus = Arc::new(RedisBus {
            shared: shared.clone(),
            link: link.clone(),
            adds: Mutex::new(HashMap::new()),
            backlog: Arc::new(Mutex::new(Vec::new())),
            pressure: Arc::new(AtomicU64::new(0)),
            added_since: Arc::new(AtomicU64::new(0)),
            epoch: epoch.clone(),
            health: Mutex::new(None),
            next_consumer: AtomicU64::new(1),
        });
        let task = tokio::spawn(health_loop(
            shared,
            link,
            epoch,
            bus.backlog.clone(),
            bus.pressure.clone(),
            bus.added_since.clone(),
        ));
        *bus.health.lock() = Some(task);
        Ok(bus)
    }

    /// The settings in force.
    pub fn config(&self) -> &RedisBusConfig {
        &self.shared.cfg
    }

    /// The counters.
    pub fn stats(&self) -> RedisBusStats {
        self.shared.counters.snapshot()
    }

    /// The telemetry partition of a session.
    pub fn partition_of(&self, session_id: &str) -> usize {
        crate::partition::of_session(session_id, self.shared.cfg.partitions)
    }

    /// The Redis stream keys of a topic (partition order for telemetry).
    pub fn stream_keys(&self, topic: Topic) -> Vec<String> {
        self.shared.keys.streams(topic)
    }

    /// The dead-letter stream's key.
    pub fn dead_letter_key(&self) -> String {
        self.shared.keys.dead()
    }

    /// Publishes several messages in one round trip (XADDs pipelined, with the XTRIMs due).
    /// Telemetry batches mixing sessions are split per session. Fails fast with
    /// [`BusError::Unavailable`] while Redis is unreachable; on failure some of the entries
    /// may have been added (at-least-once).
    pub async fn publish_all(&self, messages: &[Message]) -> Result<(), BusError> {
        if !self.is_running() {
            return Err(BusError::Closed);
        }
        let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(messages.len());
        for m in messages {
            self.entries_of(m, &mut entries)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        if messages.iter().any(|m| m.topic() == Topic::Telemetry) {
            self.wait_for_room().await?;
        }
        let mut pipe = redis::pipe();
        for (key, bytes) in &entries {
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg(wire::FIELD)
                .arg(bytes.as_slice());
        }
        let trims = self.trims_due(&entries);
        for key in &trims {
            pipe.cmd("XTRIM")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.shared.cfg.stream_cap);
        }
        let mut conn = self.link.get().await?;
        let c = &self.shared.counters;
        match pipe.query_async::<Vec<redis::Value>>(&mut conn).await {
            Ok(replies) => {
                let trimmed: u64 = replies
                    .iter()
                    .skip(entries.len())
                    .filter_map(|v| redis::from_redis_value_ref::<u64>(v).ok())
                    .sum();
                add(&c.trimmed, trimmed);
                add(&c.published, messages.len() as u64);
                add(&c.entries_added, entries.len() as u64);
                let tel = entries
                    .iter()
                    .filter(|(k, _)| k.starts_with(&self.shared.keys.telemetry_prefix()))
                    .count();
                add(&self.added_since, tel as u64);
                add(&c.publish_round_trips, 1);
                Ok(())
            }
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// Waits while a live consumer group of the telemetry streams is `backpressure_lag_entries`
    /// or more behind (re-reading the lag every 25 ms meanwhile), so that publishing slows to
    /// what the stages take instead of the caps trimming what they have not read.
    async fn wait_for_room(&self) -> Result<(), BusError> {
        let high = self.shared.cfg.backpressure_lag_entries;
        let seen = self.pressure.load(Ordering::Acquire) + self.added_since.load(Ordering::Acquire);
        if high == 0 || seen < high {
            return Ok(());
        }
        // Read the lag now: the entries added since the last reading may have been read.
        let p = live_telemetry_lag(&self.shared, &self.link).await?;
        self.pressure.store(p, Ordering::Release);
        self.added_since.store(0, Ordering::Release);
        if p < high {
            return Ok(());
        }
        add(&self.shared.counters.backpressure_waits, 1);
        loop {
            if !self.is_running() {
                return Err(BusError::Closed);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            let p = live_telemetry_lag(&self.shared, &self.link).await?;
            self.pressure.store(p, Ordering::Release);
            self.added_since.store(0, Ordering::Release);
            // Resume below three quarters of the mark, so as not to flap at it.
            if p < high - high / 4 {
                return Ok(());
            }
        }
    }

    /// Publishes `messages` only if `once_tag` was never published before (within `ttl_ms`):
    /// `SET {prefix}:once:{tag} NX PX ttl` and the XADDs in one Lua script, so the marking and
    /// the publishing happen together or not at all. `Ok(false)`: already published, nothing
    /// added. For stages that may handle a message twice (a worker taking over a dead one's
    /// partition) yet must emit once, keyed for instance (session, car, lap, revision).
    pub async fn publish_once(
        &self,
        once_tag: &str,
        ttl_ms: u64,
        messages: &[Message],
    ) -> Result<bool, BusError> {
        if !self.is_running() {
            return Err(BusError::Closed);
        }
        let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(messages.len());
        for m in messages {
            self.entries_of(m, &mut entries)?;
        }
        const SCRIPT: &str = "if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then \
                              return 0 end \
                              for i = 2, #KEYS do \
                              redis.call('XADD', KEYS[i], '*', ARGV[2], ARGV[i + 1]) end \
                              return 1";
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT)
            .arg(entries.len() + 1)
            .arg(format!("{}:once:{once_tag}", self.shared.cfg.key_prefix));
        for (key, _) in &entries {
            cmd.arg(key);
        }
        cmd.arg(ttl_ms.max(1)).arg(wire::FIELD);
        for (_, bytes) in &entries {
            cmd.arg(bytes.as_slice());
        }
        let mut conn = self.link.get().await?;
        let c = &self.shared.counters;
        match cmd.query_async::<u64>(&mut conn).await {
            Ok(1) => {
                add(&c.published, messages.len() as u64);
                add(&c.entries_added, entries.len() as u64);
                add(&c.publish_round_trips, 1);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// The messages of telemetry partition `partition` from entry `from_id` (inclusive; `-`
    /// for the stream's start) to entry `before_id` (exclusive), oldest first, read with
    /// XRANGE in pages: how a worker that takes a partition over rebuilds a session's state.
    pub async fn telemetry_range(
        &self,
        partition: usize,
        from_id: &str,
        before_id: &str,
    ) -> Result<Vec<Message>, BusError> {
        let key = self.shared.keys.telemetry(partition);
        let mut out = Vec::new();
        let mut from = from_id.to_string();
        loop {
            let mut conn = self.link.get().await?;
            let reply: redis::streams::StreamRangeReply = match redis::cmd("XRANGE")
                .arg(&key)
                .arg(&from)
                .arg(format!("({before_id}"))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
            {
                Ok(r) => r,
                Err(e) => return Err(self.link.failed(&e).await),
            };
            let Some(last) = reply.ids.last().map(|e| e.id.clone()) else {
                break;
            };
            for e in &reply.ids {
                let bytes: Option<Vec<u8>> = e.get(wire::FIELD);
                match bytes.as_deref().map(wire::decode) {
                    Some(Ok(m)) => out.push(m),
                    Some(Err(err)) => {
                        tracing::warn!(target: "bus::redis", stream = %key, id = %e.id, error = %err, "undecodable entry skipped in a rebuild");
                    }
                    None => {}
                }
            }
            if reply.ids.len() < 500 {
                break;
            }
            from = format!("({last}");
        }
        Ok(out)
    }

    /// The stream entries of one message.
    fn entries_of(&self, m: &Message, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        let keys = &self.shared.keys;
        match m {
            Message::Telemetry(b) => {
                let Some(first) = b.samples.first() else {
                    return Ok(());
                };
                if b.samples.iter().all(|s| s.session_id == first.session_id) {
                    let p = self.partition_of(&first.session_id);
                    out.push((keys.telemetry(p), wire::encode(m)?));
                } else {
                    for (session, part) in b.split_by_session() {
                        let p = self.partition_of(&session);
                        let msg = Message::Telemetry(Arc::new(part));
                        out.push((keys.telemetry(p), wire::encode(&msg)?));
                    }
                }
            }
            Message::Session(e) => {
                let p = self.partition_of(e.session_id());
                out.push((keys.telemetry(p), wire::encode(m)?));
            }
            Message::Insight(_) | Message::Alert(_) | Message::Profile(_) => {
                out.push((keys.insights(), wire::encode(m)?));
            }
            Message::StrategyJob(_) => out.push((keys.strategy(), wire::encode(m)?)),
        }
        Ok(())
    }

    /// Streams due for an XTRIM after `entries` are added (their counters reset).
    fn trims_due(&self, entries: &[(String, Vec<u8>)]) -> Vec<String> {
        let every = self.shared.cfg.trim_every;
        let mut adds = self.adds.lock();
        let mut due = Vec::new();
        for (key, _) in entries {
            let n = adds.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n >= every && !due.contains(key) {
                *n = 0;
                due.push(key.clone());
            }
        }
        due
    }

    /// Joins consumer group `group` of `topic` with the given options (consumer name, leases).
    /// Creates the group on every stream of the topic if missing (`$`: it sees what is
    /// published from now on).
    pub async fn subscribe_with(
        &self,
        topic: Topic,
        group: &str,
        opts: SubscribeOptions,
    ) -> Result<RedisSubscription, BusError> {
        if !self.is_running() {
            return Err(BusError::Closed);
        }
        let consumer = opts.consumer.clone().unwrap_or_else(|| {
            let n = self.next_consumer.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n}", self.shared.cfg.worker_id)
        });
        RedisSubscription::open(self.shared.clone(), topic, group, consumer, opts).await
    }

    /// Deletes consumer group `group` from every stream of `topic` (XGROUP DESTROY), with its
    /// pending list: for groups of one process (a server's `ws-{id}`) at a clean shutdown, so
    /// they do not pile up. Returns how many streams had it.
    pub async fn destroy_group(&self, topic: Topic, group: &str) -> Result<u64, BusError> {
        let mut conn = self.link.get().await?;
        let mut pipe = redis::pipe();
        for key in self.shared.keys.streams(topic) {
            pipe.cmd("XGROUP").arg("DESTROY").arg(key).arg(group);
        }
        match pipe.query_async::<Vec<u64>>(&mut conn).await {
            Ok(v) => Ok(v.iter().sum()),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// Entries of the dead-letter stream, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let mut conn = self.link.get().await?;
        let reply: redis::streams::StreamRangeReply = match redis::cmd("XREVRANGE")
            .arg(self.shared.keys.dead())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.link.failed(&e).await),
        };
        Ok(reply
            .ids
            .iter()
            .map(|e| DeadLetter {
                dead_id: e.id.clone(),
                stream: e.get("stream").unwrap_or_default(),
                entry_id: e.get("id").unwrap_or_default(),
                group: e.get("group").unwrap_or_default(),
                consumer: e.get("consumer").unwrap_or_default(),
                reason: e.get("reason").unwrap_or_default(),
                deliveries: e.get("deliveries").unwrap_or_default(),
                payload: e.get(wire::FIELD).unwrap_or_default(),
            })
            .collect())
    }

    /// Stores a checkpoint of `session` (the worker's per-car state, any bytes) for telemetry
    /// partition `partition` (hash `{prefix}:checkpoint:telemetry:{p}`, field = session).
    pub async fn put_checkpoint(
        &self,
        partition: usize,
        session: &str,
        bytes: &[u8],
    ) -> Result<(), BusError> {
        let mut conn = self.link.get().await?;
        let r: Result<(), _> = redis::cmd("HSET")
            .arg(self.shared.keys.checkpoint(partition))
            .arg(session)
            .arg(bytes)
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// The checkpoint of `session` in `partition`, if any.
    pub async fn get_checkpoint(
        &self,
        partition: usize,
        session: &str,
    ) -> Result<Option<Vec<u8>>, BusError> {
        let mut conn = self.link.get().await?;
        match redis::cmd("HGET")
            .arg(self.shared.keys.checkpoint(partition))
            .arg(session)
            .query_async(&mut conn)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// Every checkpoint of `partition`: (session, bytes), sessions sorted.
    pub async fn checkpoints(&self, partition: usize) -> Result<Vec<(String, Vec<u8>)>, BusError> {
        let mut conn = self.link.get().await?;
        let r: Result<HashMap<String, Vec<u8>>, _> = redis::cmd("HGETALL")
            .arg(self.shared.keys.checkpoint(partition))
            .query_async(&mut conn)
            .await;
        match r {
            Ok(m) => {
                let mut v: Vec<(String, Vec<u8>)> = m.into_iter().collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(v)
            }
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// Deletes the checkpoint of `session` (a finished session).
    pub async fn delete_checkpoint(&self, partition: usize, session: &str) -> Result<(), BusError> {
        let mut conn = self.link.get().await?;
        let r: Result<u64, _> = redis::cmd("HDEL")
            .arg(self.shared.keys.checkpoint(partition))
            .arg(session)
            .query_async(&mut conn)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Checks Redis now (as the health task does): readiness and restart detection.
    pub async fn check(&self) -> Result<(), BusError> {
        check_epoch(&self.shared, &self.link, &self.epoch).await
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        if let Some(t) = self.health.lock().take() {
            t.abort();
        }
    }
}

/// One entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The entry's id in the dead-letter stream.
    pub dead_id: String,
    /// The stream and entry id it came from.
    pub stream: String,
    pub entry_id: String,
    /// The group (and last consumer) that failed it.
    pub group: String,
    pub consumer: String,
    /// Why: "delivered N times" or the decoding error.
    pub reason: String,
    /// Deliveries before it was dead-lettered.
    pub deliveries: u64,
    /// The original envelope bytes.
    pub payload: Vec<u8>,
}

/// Reads (or plants) the epoch key: a missing or changed epoch means Redis lost its data.
async fn check_epoch(
    shared: &Shared,
    link: &Link,
    epoch: &tokio::sync::Mutex<Option<String>>,
) -> Result<(), BusError> {
    let mut conn = link.get().await?;
    let key = shared.keys.epoch();
    let fresh = default_worker_id();
    // SET NX then GET in one round trip: the value every process of the deployment shares.
    let r: Result<(redis::Value, Option<String>), _> = redis::pipe()
        .cmd("SET")
        .arg(&key)
        .arg(&fresh)
        .arg("NX")
        .cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await;
    let (set, now) = match r {
        Ok(v) => v,
        Err(e) => return Err(link.failed(&e).await),
    };
    let planted = !matches!(set, redis::Value::Nil);
    let mut known = epoch.lock().await;
    match (&*known, now) {
        (None, Some(v)) => *known = Some(v),
        (Some(k), Some(v)) if *k == v => {}
        (Some(_), Some(v)) => {
            // Planted by us just now, or by another process after the loss: either way
            // Redis was emptied since we last looked.
            add(&shared.counters.redis_resets, 1);
            tracing::warn!(target: "bus::redis", planted, "redis lost its data (epoch changed); streams, groups and leases start over");
            *known = Some(v);
        }
        (_, None) => {}
    }
    Ok(())
}

async fn health_loop(
    shared: Arc<Shared>,
    link: Arc<Link>,
    epoch: Arc<tokio::sync::Mutex<Option<String>>>,
    backlog: Arc<Mutex<Vec<(Topic, String, usize)>>>,
    pressure: Arc<AtomicU64>,
    added_since: Arc<AtomicU64>,
) {
    let every = Duration::from_millis(shared.cfg.health_interval_ms.max(10));
    loop {
        tokio::time::sleep(every).await;
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        if check_epoch(&shared, &link, &epoch).await.is_err() {
            continue;
        }
        if let Ok(b) = read_backlog(&shared, &link).await {
            *backlog.lock() = b;
        }
        if shared.cfg.backpressure_lag_entries > 0 {
            if let Ok(p) = live_telemetry_lag(&shared, &link).await {
                pressure.store(p, Ordering::Release);
                added_since.store(0, Ordering::Release);
            }
        }
    }
}

/// The consumer groups of stream `key` (XINFO GROUPS); `None` when the stream does not exist yet
/// or the call failed (the callers' loops go on to the next stream).
pub(crate) async fn stream_groups<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
) -> Option<redis::streams::StreamInfoGroupsReply> {
    redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await
        .ok()
}

/// The largest number of entries a live consumer group has not yet been delivered, over the
/// telemetry streams (a group is live while a consumer of it read within `worker_ttl_ms`).
async fn live_telemetry_lag(shared: &Shared, link: &Link) -> Result<u64, BusError> {
    let mut conn = link.get().await?;
    let live_ms = shared.cfg.worker_ttl_ms.max(1) as usize;
    let mut worst = 0u64;
    for key in shared.keys.streams(Topic::Telemetry) {
        let Some(r) = stream_groups(&mut conn, &key).await else {
            continue;
        };
        for g in r.groups {
            let Some(lag) = g.lag else { continue };
            if lag == 0 || (lag as u64) <= worst || g.consumers == 0 {
                continue;
            }
            let c: Result<redis::streams::StreamInfoConsumersReply, _> = redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&key)
                .arg(&g.name)
                .query_async(&mut conn)
                .await;
            let live = c.is_ok_and(|c| c.consumers.iter().any(|x| x.idle < live_ms));
            if live {
                worst = lag as u64;
            }
        }
    }
    Ok(worst)
}

/// (topic, group, entries not yet delivered + delivered but not acked) over the topic's streams.
async fn read_backlog(
    shared: &Shared,
    link: &Link,
) -> Result<Vec<(Topic, String, usize)>, BusError> {
    let mut conn = link.get().await?;
    let mut out: Vec<(Topic, String, usize)> = Vec::new();
    for topic in Topic::ALL {
        for key in shared.keys.streams(topic) {
            let Some(r) = stream_groups(&mut conn, &key).await else {
                continue;
            };
            for g in r.groups {
                let n = g.pending + g.lag.unwrap_or(0);
                match out
                    .iter_mut()
                    .find(|(t, name, _)| *t == topic && *name == g.name)
                {
                    Some(e) => e.2 += n,
                    None => out.push((topic, g.name, n)),
                }
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl Bus for RedisBus {
    /// `partition_key` is not used: telemetry is partitioned by its session id, the other
    /// topics are single streams.
    async fn publish(&self, _partition_key: &str, message: Message) -> Result<(), BusError> {
        self.publish_all(std::slice::from_ref(&message)).await
    }

    async fn publish_many(&self, messages: &[(Arc<str>, Message)]) -> Result<(), BusError> {
        let msgs: Vec<Message> = messages.iter().map(|(_, m)| m.clone()).collect();
        self.publish_all(&msgs).await
    }

    async fn subscribe(
        &self,
        topic: Topic,
        group: &str,
    ) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(
            self.subscribe_with(topic, group, SubscribeOptions::default())
                .await?,
        ))
    }

    fn is_running(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }

    fn is_ready(&self) -> bool {
        self.is_running() && self.link.is_ready()
    }

    /// Stops publishing; subscriptions read what is left without blocking and then end.
    fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }

    /// As of the last health check (every `health_interval_ms`).
    fn backlog(&self) -> Vec<(Topic, String, usize)> {
        self.backlog.lock().clone()
    }
}
