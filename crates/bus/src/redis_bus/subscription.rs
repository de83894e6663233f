//! One consumer of one group on one topic: XREADGROUP on a connection of its own, XACK,
//! XAUTOCLAIM of idle pending entries, dead-lettering, and (with [`Leases`]) reading only the
//! telemetry partitions its worker holds.

use super::link::{is_connection_error, Link};
use super::{add, Leases, Shared};
use crate::{wire, BusError, Delivery, Subscription, Topic};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a subscription joins its group.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// The consumer name within the group (a worker id); default `{worker_id}-{n}`, unique
    /// per subscription. Reusing the name of a dead consumer does not give its pending
    /// entries back at once: they are claimed after `claim_idle_ms` like anyone's.
    pub consumer: Option<String>,
    /// Read only the telemetry partitions these leases hold (taking over a partition's
    /// pending entries the moment its lease is won). `None`: every partition of the topic.
    pub leases: Option<Arc<Leases>>,
}

/// A consumer of a [`super::RedisBus`] group. Implements [`Subscription`]; the inherent
/// methods tell which partitions it reads and what it holds unacknowledged.
pub struct RedisSubscription {
    shared: Arc<Shared>,
    link: Link,
    topic: Topic,
    group: String,
    consumer: String,
    streams: Vec<String>,
    leases: Option<Arc<Leases>>,
    /// Indices into `streams` being read.
    owned: Vec<usize>,
    buffer: VecDeque<(usize, Delivery)>,
    unacked: HashMap<u64, (usize, String)>,
    by_entry: HashMap<(usize, String), u64>,
    next_id: u64,
    /// Link generation the groups were last ensured on.
    groups_generation: u64,
    next_claim: Instant,
    drained: bool,
    /// An XREADGROUP in flight on a task of its own, kept across a cancelled `next` (so that
    /// `next` is cancel-safe: in `select!` or under a timeout, what Redis delivered is not lost).
    inflight: Option<tokio::task::JoinHandle<redis::RedisResult<Option<StreamReadReply>>>>,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("owned", &self.owned)
            .finish()
    }
}

/// Lease renewals and claims run at most this often inside `next`.
fn claim_interval(shared: &Shared) -> Duration {
    Duration::from_millis((shared.cfg.claim_idle_ms / 2).clamp(20, 5_000))
}

impl RedisSubscription {
    pub(crate) async fn open(
        shared: Arc<Shared>,
        topic: Topic,
        group: &str,
        consumer: String,
        opts: SubscribeOptions,
    ) -> Result<RedisSubscription, BusError> {
        let timeout =
            Duration::from_millis(shared.cfg.response_timeout_ms.max(1) + shared.cfg.block_ms);
        let link = Link::new(shared.clone(), timeout);
        let streams = shared.keys.streams(topic);
        let leases = if topic == Topic::Telemetry {
            opts.leases
        } else {
            None
        };
        let owned = match &leases {
            Some(_) => Vec::new(),
            None => (0..streams.len()).collect(),
        };
        let mut sub = RedisSubscription {
            next_claim: Instant::now() + claim_interval(&shared),
            shared,
            link,
            topic,
            group: group.to_string(),
            consumer,
            streams,
            leases,
            owned,
            buffer: VecDeque::new(),
            unacked: HashMap::new(),
            by_entry: HashMap::new(),
            next_id: 1,
            groups_generation: 0,
            drained: false,
            inflight: None,
        };
        let mut conn = sub.link.get().await?;
        sub.ensure_groups(&mut conn, "$").await?;
        sub.groups_generation = sub.link.generation();
        Ok(sub)
    }

    /// The topic read.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// The group joined.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This consumer's name in the group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The partitions (stream indices) read now: all of the topic's, or the leased ones.
    pub fn partitions(&self) -> Vec<usize> {
        self.owned.clone()
    }

    /// Deliveries handed out (or buffered) and not acked yet.
    pub fn pending(&self) -> usize {
        self.unacked.len()
    }

    /// Where a delivery not acked yet came from: (partition / stream index, Redis entry id).
    pub fn entry_of(&self, delivery: &Delivery) -> Option<(usize, String)> {
        self.unacked.get(&delivery.id).cloned()
    }

    /// True while this subscription's own connection works.
    pub fn is_ready(&self) -> bool {
        self.link.is_ready()
    }

    /// Creates the group on every stream (MKSTREAM) at `start` ("$": new entries only; "0":
    /// everything, after a loss). A group created again after a loss is counted.
    async fn ensure_groups(
        &mut self,
        conn: &mut MultiplexedConnection,
        start: &str,
    ) -> Result<(), BusError> {
        for key in &self.streams {
            let r: Result<(), _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(&self.group)
                .arg(start)
                .arg("MKSTREAM")
                .query_async(conn)
                .await;
            match r {
                Ok(()) => {
                    if start != "$" {
                        add(&self.shared.counters.groups_recreated, 1);
                        tracing::warn!(target: "bus::redis", stream = %key, group = %self.group, "consumer group was gone; created again");
                    }
                }
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(self.link.failed(&e).await),
            }
        }
        Ok(())
    }

    fn alloc_id(&mut self, idx: usize, entry_id: &str) -> u64 {
        if let Some(id) = self.by_entry.get(&(idx, entry_id.to_string())) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.unacked.insert(id, (idx, entry_id.to_string()));
        self.by_entry.insert((idx, entry_id.to_string()), id);
        id
    }

    fn forget(&mut self, idx: usize, entry_id: &str) {
        if let Some(id) = self.by_entry.remove(&(idx, entry_id.to_string())) {
            self.unacked.remove(&id);
        }
    }

    /// Decodes an entry into the buffer, or dead-letters it when it does not decode.
    async fn take_entry(
        &mut self,
        conn: &mut MultiplexedConnection,
        idx: usize,
        entry: &StreamId,
        deliveries: u64,
    ) {
        let bytes: Option<Vec<u8>> = entry.get(wire::FIELD);
        let decoded = match &bytes {
            Some(b) => wire::decode(b),
            None => Err(wire::WireError::MissingField),
        };
        match decoded {
            Ok(message) => {
                let id = self.alloc_id(idx, &entry.id);
                add(&self.shared.counters.delivered, 1);
                self.buffer.push_back((idx, Delivery { id, message }));
            }
            Err(e) => {
                add(&self.shared.counters.decode_errors, 1);
                tracing::warn!(target: "bus::redis", stream = %self.streams[idx], id = %entry.id, error = %e, "undecodable entry dead-lettered");
                let payload = bytes.unwrap_or_default();
                let reason = format!("decode: {e}");
                let _ = self
                    .dead_letter(conn, idx, &entry.id, &payload, &reason, deliveries)
                    .await;
            }
        }
    }

    /// Moves an entry to the dead-letter stream and acks it in its group.
    async fn dead_letter(
        &mut self,
        conn: &mut MultiplexedConnection,
        idx: usize,
        entry_id: &str,
        payload: &[u8],
        reason: &str,
        deliveries: u64,
    ) -> Result<(), BusError> {
        let key = &self.streams[idx];
        let r: Result<(), _> = redis::pipe()
            .cmd("XADD")
            .arg(self.shared.keys.dead())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.shared.cfg.stream_cap)
            .arg("*")
            .arg("stream")
            .arg(key)
            .arg("id")
            .arg(entry_id)
            .arg("group")
            .arg(&self.group)
            .arg("consumer")
            .arg(&self.consumer)
            .arg("reason")
            .arg(reason)
            .arg("deliveries")
            .arg(deliveries)
            .arg(wire::FIELD)
            .arg(payload)
            .ignore()
            .cmd("XACK")
            .arg(key)
            .arg(&self.group)
            .arg(entry_id)
            .ignore()
            .query_async(conn)
            .await;
        match r {
            Ok(()) => {
                add(&self.shared.counters.dead_lettered, 1);
                self.forget(idx, entry_id);
                Ok(())
            }
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// XAUTOCLAIMs entries of stream `idx` idle at least `min_idle_ms` (0: all of them, a
    /// partition taken over), dead-lettering those delivered `max_deliveries` times already.
    async fn claim(
        &mut self,
        conn: &mut MultiplexedConnection,
        idx: usize,
        min_idle_ms: u64,
    ) -> Result<(), BusError> {
        let key = self.streams[idx].clone();
        let mut cursor = "0-0".to_string();
        // A few pages per call: the rest waits for the next round.
        for _ in 0..8 {
            let r: Result<StreamAutoClaimReply, _> = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(min_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.shared.cfg.read_count)
                .query_async(conn)
                .await;
            let reply = match r {
                Ok(r) => r,
                Err(e) if e.code() == Some("NOGROUP") => {
                    self.ensure_groups(conn, "0").await?;
                    return Ok(());
                }
                Err(e) => return Err(self.link.failed(&e).await),
            };
            if !reply.deleted_ids.is_empty() {
                add(
                    &self.shared.counters.pending_lost,
                    reply.deleted_ids.len() as u64,
                );
                for id in &reply.deleted_ids {
                    self.forget(idx, id);
                }
            }
            if !reply.claimed.is_empty() {
                self.take_claimed(conn, idx, &reply.claimed).await?;
            }
            cursor = reply.next_stream_id;
            if cursor == "0-0" {
                break;
            }
        }
        Ok(())
    }

    async fn take_claimed(
        &mut self,
        conn: &mut MultiplexedConnection,
        idx: usize,
        claimed: &[StreamId],
    ) -> Result<(), BusError> {
        let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
            return Ok(());
        };
        let r: Result<StreamPendingCountReply, _> = redis::cmd("XPENDING")
            .arg(&self.streams[idx])
            .arg(&self.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(claimed.len() * 2 + 16)
            .arg(&self.consumer)
            .query_async(conn)
            .await;
        let counts: HashMap<String, u64> = match r {
            Ok(p) => p
                .ids
                .into_iter()
                .map(|p| (p.id, p.times_delivered as u64))
                .collect(),
            Err(e) => return Err(self.link.failed(&e).await),
        };
        let max = self.shared.cfg.max_deliveries;
        for entry in claimed {
            // XAUTOCLAIM counted this attempt already: deliveries so far = count - 1.
            let attempt = counts.get(&entry.id).copied().unwrap_or(1);
            let so_far = attempt.saturating_sub(1);
            if so_far >= max {
                let payload: Vec<u8> = entry.get(wire::FIELD).unwrap_or_default();
                let reason = format!("delivered {so_far} times without an ack (max {max})");
                tracing::warn!(target: "bus::redis", stream = %self.streams[idx], id = %entry.id, "{reason}: dead-lettered");
                self.dead_letter(conn, idx, &entry.id, &payload, &reason, so_far)
                    .await?;
            } else {
                add(&self.shared.counters.claimed, 1);
                self.take_entry(conn, idx, entry, attempt).await;
            }
        }
        Ok(())
    }

    /// Follows the leases: partitions won are taken over (their pending entries claimed at
    /// once), partitions lost are dropped (with what was buffered from them).
    async fn follow_leases(&mut self, conn: &mut MultiplexedConnection) -> Result<(), BusError> {
        let Some(leases) = &self.leases else {
            return Ok(());
        };
        let now: Vec<usize> = leases
            .owned()
            .into_iter()
            .filter(|p| *p < self.streams.len())
            .collect();
        if now == self.owned {
            return Ok(());
        }
        let lost: Vec<usize> = self
            .owned
            .iter()
            .copied()
            .filter(|p| !now.contains(p))
            .collect();
        if !lost.is_empty() {
            let dropped: Vec<(usize, u64)> = self
                .buffer
                .iter()
                .filter(|(i, _)| lost.contains(i))
                .map(|(i, d)| (*i, d.id))
                .collect();
            self.buffer.retain(|(i, _)| !lost.contains(i));
            for (_, id) in dropped {
                if let Some((i, e)) = self.unacked.remove(&id) {
                    self.by_entry.remove(&(i, e));
                }
            }
        }
        let won: Vec<usize> = now
            .iter()
            .copied()
            .filter(|p| !self.owned.contains(p))
            .collect();
        // A partition is read once its takeover claim went through (else the next round
        // tries again).
        self.owned.retain(|p| now.contains(p));
        for p in won {
            tracing::info!(target: "bus::redis", partition = p, consumer = %self.consumer, "partition taken over");
            self.claim(conn, p, 0).await?;
            self.owned.push(p);
            self.owned.sort_unstable();
        }
        Ok(())
    }

    async fn read(
        &mut self,
        conn: &mut MultiplexedConnection,
        block: bool,
    ) -> Result<usize, BusError> {
        let handle = match self.inflight.take() {
            Some(h) => h,
            None => {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP")
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(self.shared.cfg.read_count);
                if block {
                    cmd.arg("BLOCK").arg(self.shared.cfg.block_ms.max(1));
                }
                cmd.arg("STREAMS");
                for i in &self.owned {
                    cmd.arg(&self.streams[*i]);
                }
                for _ in &self.owned {
                    cmd.arg(">");
                }
                let mut c = conn.clone();
                tokio::spawn(
                    async move { cmd.query_async::<Option<StreamReadReply>>(&mut c).await },
                )
            }
        };
        // Cancelled while waiting: the read stays in flight and the next call takes its reply.
        let handle = self.inflight.insert(handle);
        let joined = handle.await;
        self.inflight = None;
        let result = match joined {
            Ok(r) => r,
            Err(e) => {
                self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                return Err(BusError::Backend(format!("read task failed: {e}")));
            }
        };
        let reply: Option<StreamReadReply> = match result {
            Ok(r) => r,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.ensure_groups(conn, "0").await?;
                return Ok(0);
            }
            Err(e) => return Err(self.link.failed(&e).await),
        };
        let mut n = 0;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(idx) = self.streams.iter().position(|s| *s == key.key) else {
                continue;
            };
            for entry in &key.ids {
                self.take_entry(conn, idx, entry, 1).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// One round: reconnect if needed, follow leases, claims when due, then one read.
    /// `Ok(false)` once closed and nothing is left to read.
    async fn round(&mut self) -> Result<bool, BusError> {
        let closed = self.shared.closed.load(Ordering::Acquire);
        let mut conn = self.link.get().await?;
        if self.link.generation() != self.groups_generation {
            // A new connection: the groups may be gone with a restarted Redis.
            self.ensure_groups(&mut conn, "0").await?;
            self.groups_generation = self.link.generation();
        }
        self.follow_leases(&mut conn).await?;
        if Instant::now() >= self.next_claim {
            self.next_claim = Instant::now() + claim_interval(&self.shared);
            let owned = self.owned.clone();
            for p in owned {
                self.claim(&mut conn, p, self.shared.cfg.claim_idle_ms)
                    .await?;
            }
        }
        if !self.buffer.is_empty() {
            return Ok(true);
        }
        if self.owned.is_empty() {
            if closed {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(
                self.shared.cfg.block_ms.clamp(1, 100),
            ))
            .await;
            return Ok(true);
        }
        let n = self.read(&mut conn, !closed).await?;
        Ok(!(closed && n == 0))
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    /// The next message; while Redis is unreachable it waits (reconnecting with backoff).
    /// Cancel-safe (a `select!` branch, a timeout): a read in flight is kept for the next call.
    /// `None` once the bus is closed and a non-blocking read finds nothing more.
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some((_, d)) = self.buffer.pop_front() {
                return Some(d);
            }
            if self.drained {
                return None;
            }
            match self.round().await {
                Ok(true) => {}
                Ok(false) => {
                    self.drained = true;
                }
                Err(_) => {
                    if self.shared.closed.load(Ordering::Acquire) {
                        self.drained = true;
                        continue;
                    }
                    let wait = self.link.retry_in().max(Duration::from_millis(20));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// XACK. Acking a delivery twice, or one that was dead-lettered, is a no-op.
    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let Some((idx, entry_id)) = self.unacked.remove(&delivery.id) else {
            return Ok(());
        };
        self.by_entry.remove(&(idx, entry_id.clone()));
        let mut conn = match self.link.get().await {
            Ok(c) => c,
            Err(e) => {
                self.by_entry.insert((idx, entry_id.clone()), delivery.id);
                self.unacked.insert(delivery.id, (idx, entry_id));
                return Err(e);
            }
        };
        let r: Result<u64, _> = redis::cmd("XACK")
            .arg(&self.streams[idx])
            .arg(&self.group)
            .arg(&entry_id)
            .query_async(&mut conn)
            .await;
        match r {
            Ok(n) => {
                add(&self.shared.counters.acked, n);
                Ok(())
            }
            Err(e) => {
                let err = self.link.failed(&e).await;
                if is_connection_error(&e) {
                    self.by_entry.insert((idx, entry_id.clone()), delivery.id);
                    self.unacked.insert(delivery.id, (idx, entry_id));
                }
                Err(err)
            }
        }
    }
}
