//! The bus: how PitWall's stages talk. One trait, [`Bus`], with topics (`telemetry`,
//! `insights`, `strategy`), partition keys and consumer groups, so that the in-process
//! implementation ([`InProcessBus`], bounded channels that carry backpressure) and the Redis
//! Streams one ([`RedisBus`]: telemetry partitioned by session, XREADGROUP, XACK, XAUTOCLAIM,
//! a dead-letter stream, partition leases, checkpoints and a worker registry) are
//! interchangeable behind it. What crosses Redis is written and read in one place, [`wire`].
//!
//! Semantics every implementation keeps:
//! - `publish` delivers a message to every consumer group of the topic (fan-out between groups);
//!   within a group each message goes to one consumer (competing consumers).
//! - Messages of one partition key are delivered in order to one consumer at a time. In
//!   process the key is a car and a group is one queue; on Redis telemetry is partitioned by
//!   session, and one consumer at a time per partition takes [`Leases`]
//!   ([`SubscribeOptions::leases`]): competing consumers without leases share a partition.
//! - Delivery is at-least-once: a consumer calls [`Subscription::ack`] after handling a message;
//!   handlers must be idempotent on (session, car, lap / time).
//! - A group that does not exist yet sees only what is published after it subscribes.

use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use telemetry::Sample;

pub mod partition;
pub mod redis_bus;
pub mod wire;

pub use redis_bus::{
    DeadLetter, LeaseConfig, Leases, RedisBus, RedisBusConfig, RedisBusStats, RedisSubscription,
    SubscribeOptions, WorkerInfo,
};
pub use wire::WireError;

/// The streams of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Batches of validated samples (`telemetry.stream` in Redis).
    Telemetry,
    /// Insights for the WebSocket hub, cache and store (`live-insights.stream` in Redis).
    Insights,
    /// Strategy (Monte Carlo) jobs: a work stream that any strategy worker takes from.
    Strategy,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 3] = [Topic::Telemetry, Topic::Insights, Topic::Strategy];

    /// The topic's name (the middle of its Redis stream keys).
    pub fn name(self) -> &'static str {
        match self {
            Topic::Telemetry => "telemetry",
            Topic::Insights => "insights",
            Topic::Strategy => "strategy",
        }
    }
}

/// A batch of samples with the instant each point was received (Unix nanoseconds), so that
/// later stages can measure ingest-to-delivery latency.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TelemetryBatch {
    pub samples: Vec<Sample>,
    /// One arrival instant per sample, Unix ns (same length as `samples`).
    #[serde(default)]
    pub received_unix_ns: Vec<u64>,
}

impl TelemetryBatch {
    /// Samples in the batch.
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    /// True when the batch carries no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The batch split per session, each part in the batch's order, sessions in order of
    /// first appearance. One part (a clone) when the batch holds one session only.
    pub fn split_by_session(&self) -> Vec<(Arc<str>, TelemetryBatch)> {
        let mut parts: Vec<(Arc<str>, TelemetryBatch)> = Vec::new();
        for (i, s) in self.samples.iter().enumerate() {
            let at = match parts.iter().position(|(id, _)| *id == s.session_id) {
                Some(at) => at,
                None => {
                    parts.push((s.session_id.clone(), TelemetryBatch::default()));
                    parts.len() - 1
                }
            };
            let part = &mut parts[at].1;
            part.samples.push(s.clone());
            if let Some(ns) = self.received_unix_ns.get(i) {
                part.received_unix_ns.push(*ns);
            }
        }
        parts
    }
}

/// What travels on the bus.
#[derive(Debug, Clone)]
pub enum Message {
    Telemetry(Arc<TelemetryBatch>),
    /// What a session says about itself (the race document, the race length), in order with
    /// its samples on the telemetry topic.
    Session(Arc<analysis::SessionEvent>),
    /// An insight (one per session, car and lap; revised with a higher `revision`).
    Insight(Arc<analysis::Insight>),
    /// A coaching alert (a driver departing from their own baseline).
    Alert(Arc<analysis::CoachingAlert>),
    /// A driver's profile after a lap.
    Profile(Arc<analysis::messages::ProfileUpdate>),
    /// A pit-window job for any strategy worker (work stream, competing consumers).
    StrategyJob(Arc<analysis::StrategyJob>),
}

impl Message {
    /// The topic the message travels on.
    pub fn topic(&self) -> Topic {
        match self {
            Message::Telemetry(_) | Message::Session(_) => Topic::Telemetry,
            Message::Insight(_) | Message::Alert(_) | Message::Profile(_) => Topic::Insights,
            Message::StrategyJob(_) => Topic::Strategy,
        }
    }
}

/// One delivered message; pass it back to [`Subscription::ack`] once handled.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery's id, unique within its subscription (a counter, not Redis's entry id).
    pub id: u64,
    pub message: Message,
}

/// What a bus operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is closed")]
    Closed,
    #[error("bus backend error: {0}")]
    Backend(String),
    /// The backend (Redis) cannot be reached now; the bus reconnects with backoff.
    #[error("the bus backend is unreachable: {0}")]
    Unavailable(String),
    /// A message could not be written for the wire.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// A consumer's view of one group on one topic.
#[async_trait]
pub trait Subscription: Send {
    /// The next message, or `None` once the bus is closed and the group drained.
    async fn next(&mut self) -> Option<Delivery>;
    /// Marks a delivery handled (XACK); a no-op in process.
    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError>;
}

/// The bus between stages.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes to every group of the message's topic, waiting while a group is full
    /// (backpressure). `partition_key` (a car id) keeps one car's messages in order.
    async fn publish(&self, partition_key: &str, message: Message) -> Result<(), BusError>;
    /// Publishes several messages in order, each with its partition key; Redis sends them in
    /// one pipelined round trip. On failure some may have been published (at-least-once).
    async fn publish_many(&self, messages: &[(Arc<str>, Message)]) -> Result<(), BusError> {
        for (key, m) in messages {
            self.publish(key, m.clone()).await?;
        }
        Ok(())
    }
    /// Joins (creating if needed) consumer group `group` of `topic`.
    async fn subscribe(&self, topic: Topic, group: &str)
        -> Result<Box<dyn Subscription>, BusError>;
    /// True while the bus accepts messages.
    fn is_running(&self) -> bool;
    /// True while the bus can deliver now (Redis reachable); in process, while running.
    fn is_ready(&self) -> bool {
        self.is_running()
    }
    /// Stops accepting messages; subscribers drain what is queued and then see `None`.
    fn close(&self);
    /// Messages waiting per (topic, group).
    fn backlog(&self) -> Vec<(Topic, String, usize)>;
}

/// The embedded bus: one bounded multi-consumer channel per (topic, group).
pub struct InProcessBus {
    capacity: usize,
    groups: Mutex<HashMap<Topic, Vec<Group>>>,
    running: AtomicBool,
    next_id: AtomicU64,
}

struct Group {
    name: String,
    tx: async_channel::Sender<Delivery>,
    rx: async_channel::Receiver<Delivery>,
}

impl InProcessBus {
    /// `capacity`: messages each group may hold before publishers wait.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(InProcessBus {
            capacity: capacity.max(1),
            groups: Mutex::new(HashMap::new()),
            running: AtomicBool::new(true),
            next_id: AtomicU64::new(1),
        })
    }
}

struct InProcessSubscription {
    rx: async_channel::Receiver<Delivery>,
}

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await.ok()
    }
    async fn ack(&mut self, _delivery: &Delivery) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, _partition_key: &str, message: Message) -> Result<(), BusError> {
        if !self.is_running() {
            return Err(BusError::Closed);
        }
        let senders: Vec<async_channel::Sender<Delivery>> = self
            .groups
            .lock()
            .get(&message.topic())
            .map(|gs| gs.iter().map(|g| g.tx.clone()).collect())
            .unwrap_or_default();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        for tx in senders {
            tx.send(Delivery {
                id,
                message: message.clone(),
            })
            .await
            .map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: Topic,
        group: &str,
    ) -> Result<Box<dyn Subscription>, BusError> {
        if !self.is_running() {
            return Err(BusError::Closed);
        }
        let mut groups = self.groups.lock();
        let list = groups.entry(topic).or_default();
        let rx = match list.iter().find(|g| g.name == group) {
            Some(g) => g.rx.clone(),
            None => {
                let (tx, rx) = async_channel::bounded(self.capacity);
                list.push(Group {
                    name: group.to_string(),
                    tx,
                    rx: rx.clone(),
                });
                rx
            }
        };
        Ok(Box::new(InProcessSubscription { rx }))
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.running.store(false, Ordering::Release);
        for gs in self.groups.lock().values() {
            for g in gs {
                g.tx.close();
            }
        }
    }

    fn backlog(&self) -> Vec<(Topic, String, usize)> {
        let groups = self.groups.lock();
        let mut out = Vec::new();
        for (t, gs) in groups.iter() {
            for g in gs {
                out.push((*t, g.name.clone(), g.rx.len()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Message {
        let samples = (0..n)
            .map(|i| Sample::new("s", "c", i as f64))
            .collect::<Vec<_>>();
        Message::Telemetry(Arc::new(TelemetryBatch {
            received_unix_ns: vec![0; n],
            samples,
        }))
    }

    #[tokio::test]
    async fn fan_out_between_groups_and_share_within_one() {
        let bus = InProcessBus::new(16);
        let mut a = bus.subscribe(Topic::Telemetry, "store").await.unwrap();
        let mut b = bus.subscribe(Topic::Telemetry, "ws").await.unwrap();
        let mut b2 = bus.subscribe(Topic::Telemetry, "ws").await.unwrap();
        let mut ins = bus.subscribe(Topic::Insights, "ws").await.unwrap();
        for n in 1..=4 {
            bus.publish("c", batch(n)).await.unwrap();
        }
        let mut seen_a = 0;
        for _ in 0..4 {
            let d = a.next().await.unwrap();
            a.ack(&d).await.unwrap();
            seen_a += 1;
        }
        assert_eq!(seen_a, 4);
        // The two consumers of group "ws" share the four messages.
        let mut seen_b = 0;
        for _ in 0..2 {
            b.next().await.unwrap();
            b2.next().await.unwrap();
            seen_b += 2;
        }
        assert_eq!(seen_b, 4);
        assert!(bus.backlog().iter().all(|(_, _, n)| *n == 0));
        bus.close();
        assert!(ins.next().await.is_none());
        assert!(bus.publish("c", batch(1)).await.is_err());
    }

    #[tokio::test]
    async fn close_lets_consumers_drain() {
        let bus = InProcessBus::new(4);
        let mut a = bus.subscribe(Topic::Telemetry, "store").await.unwrap();
        bus.publish("c", batch(3)).await.unwrap();
        bus.close();
        match a.next().await.unwrap().message {
            Message::Telemetry(b) => assert_eq!(b.len(), 3),
            _ => panic!("wrong topic"),
        }
        assert!(a.next().await.is_none());
    }
}
