//! Partition ownership: one owner per telemetry partition at a time, by lease.
//!
//! `SET {prefix}:lease:telemetry:{p} WORKER NX PX ttl` takes a free partition; the owner renews
//! it (compare-and-PEXPIRE, a Lua script) every `ttl / 3` from a background task, and releases
//! it (compare-and-DEL) on a clean shutdown. A worker that dies stops renewing; after the ttl
//! another worker's next round wins the lease, and its subscription claims the dead worker's
//! pending entries of that partition at once (XAUTOCLAIM with no idle time).
//!
//! Fair share: live workers announce themselves in a sorted set (score = expiry), and each
//! holds at most `ceil(partitions / live workers)` (or [`LeaseConfig::max_partitions`]),
//! releasing its highest partitions when a worker joins.

use super::link::Link;
use super::{add, RedisBus, Shared};
use crate::BusError;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('DEL', KEYS[1]) else return 0 end";

/// Settings of a worker's [`Leases`].
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The worker holding the leases (stored as the lease's value).
    pub worker_id: String,
    /// How long a lease lives without renewal, ms: how soon a dead worker's partitions move.
    pub ttl_ms: u64,
    /// Most partitions to hold; `None`: a fair share of the live workers.
    pub max_partitions: Option<usize>,
}

impl Default for LeaseConfig {
    fn default() -> LeaseConfig {
        LeaseConfig {
            worker_id: super::default_worker_id(),
            ttl_ms: 10_000,
            max_partitions: None,
        }
    }
}

/// The telemetry partitions one worker holds, kept by a background task.
pub struct Leases {
    shared: Arc<Shared>,
    link: Arc<Link>,
    cfg: LeaseConfig,
    owned: Mutex<BTreeSet<usize>>,
    round: tokio::sync::Mutex<()>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("worker_id", &self.cfg.worker_id)
            .field("owned", &self.owned())
            .finish()
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Leases {
    /// Takes this worker's share of the partitions now and keeps it (renewing, taking over
    /// expired leases, yielding to newcomers) every `ttl / 3` until [`Leases::release_all`],
    /// [`Leases::stop`] or drop. Call from within a tokio runtime.
    pub async fn start(bus: &RedisBus, cfg: LeaseConfig) -> Result<Arc<Leases>, BusError> {
        let leases = Arc::new(Leases {
            shared: bus.shared().clone(),
            link: bus.link().clone(),
            cfg: LeaseConfig {
                ttl_ms: cfg.ttl_ms.max(30),
                ..cfg
            },
            owned: Mutex::new(BTreeSet::new()),
            round: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
        });
        leases.tick().await?;
        let weak: Weak<Leases> = Arc::downgrade(&leases);
        let every = Duration::from_millis(leases.cfg.ttl_ms / 3);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(l) = weak.upgrade() else { return };
                if let Err(e) = l.tick().await {
                    tracing::debug!(target: "bus::redis", error = %e, "lease round failed");
                }
            }
        });
        *leases.task.lock() = Some(task);
        Ok(leases)
    }

    /// The worker holding these leases.
    pub fn worker_id(&self) -> &str {
        &self.cfg.worker_id
    }

    /// Partitions held now, ascending.
    pub fn owned(&self) -> Vec<usize> {
        self.owned.lock().iter().copied().collect()
    }

    /// One round now: announce, renew, yield extras, take free partitions up to the share.
    pub async fn tick(&self) -> Result<(), BusError> {
        let _one = self.round.lock().await;
        let mut conn = self.link.get().await?;
        let keys = &self.shared.keys;
        let parts = self.shared.cfg.partitions;
        let me = &self.cfg.worker_id;
        let ttl = self.cfg.ttl_ms;
        let now = unix_ms();
        let r: Result<(u64,), _> = redis::pipe()
            .cmd("ZADD")
            .arg(keys.lease_members())
            .arg(now + ttl)
            .arg(me)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(keys.lease_members())
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZCARD")
            .arg(keys.lease_members())
            .cmd("PEXPIRE")
            .arg(keys.lease_members())
            .arg(ttl * 4)
            .ignore()
            .query_async(&mut conn)
            .await;
        let live = match r {
            Ok((n,)) => usize::try_from(n).unwrap_or(1).max(1),
            Err(e) => return Err(self.link.failed(&e).await),
        };
        let target = self
            .cfg
            .max_partitions
            .unwrap_or_else(|| parts.div_ceil(live))
            .min(parts);

        // Renew what is held; what another worker holds now is lost.
        let held: Vec<usize> = self.owned();
        if !held.is_empty() {
            let mut pipe = redis::pipe();
            for p in &held {
                pipe.cmd("EVAL")
                    .arg(RENEW)
                    .arg(1)
                    .arg(keys.lease(*p))
                    .arg(me)
                    .arg(ttl);
            }
            let renewed: Vec<u64> = match pipe.query_async(&mut conn).await {
                Ok(v) => v,
                Err(e) => return Err(self.link.failed(&e).await),
            };
            let mut owned = self.owned.lock();
            for (p, ok) in held.iter().zip(renewed) {
                if ok == 0 {
                    owned.remove(p);
                    add(&self.shared.counters.leases_lost, 1);
                    tracing::warn!(target: "bus::redis", partition = p, worker = %me, "partition lease lost");
                }
            }
        }

        // Yield the highest partitions above the share.
        loop {
            let extra = {
                let owned = self.owned.lock();
                if owned.len() <= target {
                    None
                } else {
                    owned.iter().next_back().copied()
                }
            };
            let Some(p) = extra else { break };
            self.release(&mut conn, p).await?;
        }

        // Take free partitions up to the share, starting at a worker-specific offset so that
        // workers starting together spread out.
        if self.owned.lock().len() < target {
            let start = crate::partition::of_session(me, parts);
            for k in 0..parts {
                let p = (start + k) % parts;
                if self.owned.lock().contains(&p) {
                    continue;
                }
                let r: Result<Option<String>, _> = redis::cmd("SET")
                    .arg(keys.lease(p))
                    .arg(me)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut conn)
                    .await;
                match r {
                    Ok(Some(_)) => {
                        add(&self.shared.counters.leases_acquired, 1);
                        tracing::info!(target: "bus::redis", partition = p, worker = %me, "partition lease taken");
                        let mut owned = self.owned.lock();
                        owned.insert(p);
                        if owned.len() >= target {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => return Err(self.link.failed(&e).await),
                }
            }
        }
        Ok(())
    }

    async fn release(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        p: usize,
    ) -> Result<(), BusError> {
        let r: Result<u64, _> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.shared.keys.lease(p))
            .arg(&self.cfg.worker_id)
            .query_async(conn)
            .await;
        match r {
            Ok(_) => {
                self.owned.lock().remove(&p);
                tracing::info!(target: "bus::redis", partition = p, worker = %self.cfg.worker_id, "partition lease released");
                Ok(())
            }
            Err(e) => Err(self.link.failed(&e).await),
        }
    }

    /// Stops renewing without releasing: the leases expire after their ttl (what a crash
    /// does; for tests and for handing over after a drain).
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
    }

    /// Clean shutdown: stops renewing, releases every lease held and leaves the live set, so
    /// that other workers take the partitions over at their next round.
    pub async fn release_all(&self) -> Result<(), BusError> {
        self.stop();
        let _one = self.round.lock().await;
        let mut conn = self.link.get().await?;
        for p in self.owned() {
            self.release(&mut conn, p).await?;
        }
        let r: Result<(), _> = redis::cmd("ZREM")
            .arg(self.shared.keys.lease_members())
            .arg(&self.cfg.worker_id)
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.link.failed(&e).await),
        }
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.stop();
    }
}
