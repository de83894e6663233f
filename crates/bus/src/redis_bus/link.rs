//! One reconnecting connection to Redis: connects lazily, drops the connection on an I/O
//! error, and reconnects with capped exponential backoff; counts reconnects and errors.

use super::Shared;
use crate::BusError;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection that heals itself. Cheap to share: commands from several tasks are pipelined
/// on the one multiplexed connection (a blocking read gets a `Link` of its own).
pub(crate) struct Link {
    shared: Arc<Shared>,
    response_timeout: Duration,
    state: tokio::sync::Mutex<State>,
    ready: AtomicBool,
    /// Bumped on every successful (re)connect, so users can redo their setup.
    generation: AtomicU64,
    /// When the next connect may be tried, ms since `born` (0: now).
    retry_at_ms: AtomicU64,
    born: Instant,
}

struct State {
    conn: Option<MultiplexedConnection>,
    backoff_ms: u64,
    connected_before: bool,
}

/// Whether an error leaves the connection unusable (anything but a reply from the server).
pub(crate) fn is_connection_error(e: &RedisError) -> bool {
    if e.code().is_some() {
        return false;
    }
    !matches!(
        e.kind(),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
    )
}

impl Link {
    pub(crate) fn new(shared: Arc<Shared>, response_timeout: Duration) -> Link {
        let backoff_ms = shared.cfg.backoff_initial_ms.max(1);
        Link {
            shared,
            response_timeout,
            state: tokio::sync::Mutex::new(State {
                conn: None,
                backoff_ms,
                connected_before: false,
            }),
            ready: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            retry_at_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// True while the last command (or connect) succeeded.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Successful connects so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How long until a connect may be tried again (zero when connected or due).
    pub(crate) fn retry_in(&self) -> Duration {
        let at = self.retry_at_ms.load(Ordering::Acquire);
        let now = self.now_ms();
        Duration::from_millis(at.saturating_sub(now))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The connection, connecting if none (and the backoff allows).
    pub(crate) async fn get(&self) -> Result<MultiplexedConnection, BusError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            return Ok(c.clone());
        }
        let wait = self.retry_in();
        if !wait.is_zero() {
            return Err(BusError::Unavailable(format!(
                "redis unreachable; next try in {} ms",
                wait.as_millis()
            )));
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(
                self.shared.cfg.connect_timeout_ms.max(1),
            )))
            .set_response_timeout(Some(self.response_timeout));
        match self
            .shared
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
        {
            Ok(c) => {
                st.conn = Some(c.clone());
                st.backoff_ms = self.shared.cfg.backoff_initial_ms.max(1);
                if st.connected_before {
                    self.shared
                        .counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(target: "bus::redis", "reconnected to redis");
                }
                st.connected_before = true;
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.ready.store(true, Ordering::Release);
                self.retry_at_ms.store(0, Ordering::Release);
                Ok(c)
            }
            Err(e) => {
                self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                self.ready.store(false, Ordering::Release);
                let backoff = st.backoff_ms;
                st.backoff_ms = (backoff * 2).min(self.shared.cfg.backoff_max_ms.max(1));
                self.retry_at_ms
                    .store(self.now_ms() + backoff, Ordering::Release);
                tracing::debug!(target: "bus::redis", error = %e, backoff_ms = backoff, "redis connect failed");
                Err(BusError::Unavailable(e.to_string()))
            }
        }
    }

    /// Records a failed command: counted; a connection-level failure drops the connection
    /// (the next [`Link::get`] reconnects, after the backoff).
    pub(crate) async fn failed(&self, e: &RedisError) -> BusError {
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        if is_connection_error(e) {
            let mut st = self.state.lock().await;
            if st.conn.take().is_some() {
                tracing::warn!(target: "bus::redis", error = %e, "redis connection lost");
            }
            self.ready.store(false, Ordering::Release);
            BusError::Unavailable(e.to_string())
        } else {
            BusError::Backend(e.to_string())
        }
    }
}
