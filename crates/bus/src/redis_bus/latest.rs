//! The latest insight per car, shared by every server behind a load balancer: `SET
//! {prefix}:latest:{track}:{car}` with a TTL (60 s by default), newer (lap, revision) only, so
//! a server that did not see a car's laps, or just started, still answers with its newest
//! insight. In process the cache is the server's own map.

use super::RedisBus;
use crate::BusError;

/// How long a cached insight lives after its car's last lap, seconds.
pub const LATEST_TTL_S: u64 = 60;

/// Keeps the newer of the stored and the given insight (by lap, then revision; a new
/// session replaces), and refreshes the TTL. One round trip (a script).
const SET_NEWER: &str = r#"
local old = redis.call('GET', KEYS[1])
if old then
  local o = cjson.decode(old)
  local lap, rev, sess = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
  if o.session_id == sess and (o.lap > lap or (o.lap == lap and o.revision > rev)) then
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
return 1
"#;

impl RedisBus {
    /// Caches `insight` as its car's latest (unless a newer one of the same session is there).
    pub async fn set_latest_insight(&self, insight: &analysis::Insight) -> Result<(), BusError> {
        let key = self.shared().keys.latest(
            insight.track.as_deref().unwrap_or_default(),
            &insight.chassis,
        );
        let json = serde_json::to_string(insight).map_err(|e| BusError::Backend(e.to_string()))?;
        let mut conn = self.link().get().await?;
        let r: Result<i64, _> = redis::cmd("EVAL")
            .arg(SET_NEWER)
            .arg(1)
            .arg(key)
            .arg(json)
            .arg(insight.lap)
            .arg(insight.revision)
            .arg(&insight.session_id)
            .arg(LATEST_TTL_S)
            .query_async(&mut conn)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(self.link().failed(&e).await),
        }
    }

    /// A car's cached latest insight at `track` (`None`: none cached, or it expired).
    pub async fn latest_insight(
        &self,
        track: &str,
        car: &str,
    ) -> Result<Option<analysis::Insight>, BusError> {
        let key = self.shared().keys.latest(track, car);
        let mut conn = self.link().get().await?;
        let r: Result<Option<String>, _> = redis::cmd("GET").arg(key).query_async(&mut conn).await;
        match r {
            Ok(v) => Ok(v.and_then(|j| serde_json::from_str(&j).ok())),
            Err(e) => Err(self.link().failed(&e).await),
        }
    }
}
