//! The live registry of workers: each writes a hash with a TTL (its heartbeat); the hashes
//! that have not expired are the live workers.

use super::RedisBus;
use crate::BusError;
use std::collections::HashMap;

/// What a worker says about itself at each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    /// `analysis`, `strategy`, `store`, `delivery`, `ingest`...
    pub role: String,
    /// Telemetry partitions held.
    pub partitions: Vec<usize>,
    /// Messages handled since start.
    pub processed: u64,
    /// Messages delivered and not acked yet.
    pub pending: u64,
    /// Age of the newest message handled when it was handled, ms.
    pub lag_ms: u64,
    /// When the heartbeat was written, Unix ms (set by [`RedisBus::register_worker`]).
    pub heartbeat_unix_ms: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl WorkerInfo {
    fn from_hash(id: &str, h: &HashMap<String, String>) -> WorkerInfo {
        let num = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        WorkerInfo {
            id: h.get("id").cloned().unwrap_or_else(|| id.to_string()),
            role: h.get("role").cloned().unwrap_or_default(),
            partitions: h
                .get("partitions")
                .map(|v| {
                    v.split(',')
                        .filter_map(|p| p.trim().parse::<usize>().ok())
                        .collect()
                })
                .unwrap_or_default(),
            processed: num("processed"),
            pending: num("pending"),
            lag_ms: num("lag_ms"),
            heartbeat_unix_ms: num("heartbeat_unix_ms"),
        }
    }
}

impl RedisBus {
    /// Writes (or refreshes) a worker's heartbeat: hash `{prefix}:worker:{id}` living
    /// `worker_ttl_ms`, listed in the set `{prefix}:workers`. Call it more often than the ttl.
    pub async fn register_worker(&self, info: &WorkerInfo) -> Result<(), BusError> {
        let keys = &self.shared().keys;
        let key = keys.worker(&info.id);
        let partitions = info
            .partitions
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut conn = self.link().get().await?;
        let r: Result<(), _> = redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg("id")
            .arg(&info.id)
            .arg("role")
            .arg(&info.role)
            .arg("partitions")
            .arg(partitions)
            .arg("processed")
            .arg(info.processed)
            .arg("pending")
            .arg(info.pending)
            .arg("lag_ms")
            .arg(info.lag_ms)
            .arg("heartbeat_unix_ms")
            .arg(unix_ms())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.config().worker_ttl_ms.max(1))
            .ignore()
            .cmd("SADD")
            .arg(keys.workers())
            .arg(&info.id)
            .ignore()
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.link().failed(&e).await),
        }
    }

    /// Removes a worker from the registry (clean shutdown).
    pub async fn unregister_worker(&self, id: &str) -> Result<(), BusError> {
        let keys = &self.shared().keys;
        let mut conn = self.link().get().await?;
        let r: Result<(), _> = redis::pipe()
            .cmd("DEL")
            .arg(keys.worker(id))
            .ignore()
            .cmd("SREM")
            .arg(keys.workers())
            .arg(id)
            .ignore()
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.link().failed(&e).await),
        }
    }

    /// The live workers (heartbeat younger than their ttl), by id. Expired ones are removed
    /// from the set on the way.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, BusError> {
        let keys = &self.shared().keys;
        let mut conn = self.link().get().await?;
        let ids: Vec<String> = match redis::cmd("SMEMBERS")
            .arg(keys.workers())
            .query_async(&mut conn)
            .await
        {
            Ok(v) => v,
            Err(e) => return Err(self.link().failed(&e).await),
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(keys.worker(id));
        }
        let hashes: Vec<HashMap<String, String>> = match pipe.query_async(&mut conn).await {
            Ok(v) => v,
            Err(e) => return Err(self.link().failed(&e).await),
        };
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, h) in ids.iter().zip(hashes) {
            if h.is_empty() {
                gone.push(id.clone());
            } else {
                live.push(WorkerInfo::from_hash(id, &h));
            }
        }
        if !gone.is_empty() {
            let r: Result<(), _> = redis::cmd("SREM")
                .arg(keys.workers())
                .arg(&gone)
                .query_async(&mut conn)
                .await;
            if let Err(e) = r {
                return Err(self.link().failed(&e).await);
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        if !gone.is_empty() {
            self.reap_groups_of(&gone).await;
        }
        Ok(live)
    }

    /// Deletes the consumer groups that belonged to one process of the workers in `gone` (their
    /// heartbeat expired: killed, or lost their host), so that a dead server's groups do not
    /// linger with their pending lists. Such groups are named `{name}-{worker id}` (a server's
    /// `ws-{id}` and `cache-{id}`, an analysis worker's `windows-{id}`); shared groups
    /// (`analysis`, `store`, `strategy`) have no worker id in their name and are never touched.
    /// Best effort: a failure is logged and the next listing tries again.
    async fn reap_groups_of(&self, gone: &[String]) {
        let Ok(mut conn) = self.link().get().await else {
            return;
        };
        for topic in crate::Topic::ALL {
            for key in self.stream_keys(topic) {
                // No such stream yet: nothing to reap.
                let Some(groups) = super::stream_groups(&mut conn, &key).await else {
                    continue;
                };
                for g in groups.groups {
                    let name = g.name;
                    let owned_by_gone = name
                        .split_once('-')
                        .is_some_and(|(_, owner)| gone.iter().any(|id| id == owner));
                    if !owned_by_gone {
                        continue;
                    }
                    let r: Result<u64, _> = redis::cmd("XGROUP")
                        .arg("DESTROY")
                        .arg(&key)
                        .arg(&name)
                        .query_async(&mut conn)
                        .await;
                    match r {
                        Ok(_) => {
                            tracing::info!(stream = %key, group = %name, "deleted the consumer group of a worker that is gone")
                        }
                        Err(e) => {
                            tracing::warn!(stream = %key, group = %name, error = %e, "could not delete a gone worker's consumer group")
                        }
                    }
                }
            }
        }
    }
}
