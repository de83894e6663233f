//! The ingest ring: a bounded buffer between the sources and the bus. Sources that can be told
//! to come back (HTTP) are refused whole batches when it is full ([`IngestRing::try_push`]),
//! so that a point answered 200 is never dropped; sources that cannot (UDP, in-process
//! producers) push with [`IngestRing::push`], which drops the oldest points (and counts them)
//! so that a burst never blocks them. It hands out batches of `batch_points` or whatever waits
//! `batch_wait` after the oldest point arrived.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use telemetry::Sample;
use tokio::sync::Notify;

struct Entry {
    sample: Sample,
    received_unix_ns: u64,
    received: Instant,
}

pub struct IngestRing {
    buf: Mutex<VecDeque<Entry>>,
    capacity: usize,
    batch_points: usize,
    batch_wait: Duration,
    notify: Notify,
    dropped: AtomicU64,
    closed: AtomicBool,
}

/// What a batch looks like when it leaves the ring.
pub struct RingBatch {
    pub samples: Vec<Sample>,
    pub received_unix_ns: Vec<u64>,
}

pub fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl IngestRing {
    pub fn new(capacity: usize, batch_points: usize, batch_wait: Duration) -> IngestRing {
        IngestRing {
            buf: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 20))),
            capacity: capacity.max(1),
            batch_points: batch_points.max(1),
            batch_wait,
            notify: Notify::new(),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds points; returns how many old points were dropped to make room.
    pub fn push(&self, samples: impl IntoIterator<Item = Sample>) -> u64 {
        let now = Instant::now();
        let now_ns = unix_ns_now();
        let mut dropped = 0u64;
        let len = {
            let mut buf = self.buf.lock();
            for sample in samples {
                if buf.len() >= self.capacity {
                    buf.pop_front();
                    dropped += 1;
                }
                buf.push_back(Entry {
                    sample,
                    received_unix_ns: now_ns,
                    received: now,
                });
            }
            buf.len()
        };
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if len > 0 {
            self.notify.notify_one();
        }
        dropped
    }

    /// Adds all the points if there is room for all of them, and none otherwise: then they
    /// come back, for the source to refuse (HTTP answers 503 with Retry-After).
    pub fn try_push(&self, samples: Vec<Sample>) -> Result<(), Vec<Sample>> {
        let now = Instant::now();
        let now_ns = unix_ns_now();
        {
            let mut buf = self.buf.lock();
            if buf.len() + samples.len() > self.capacity {
                return Err(samples);
            }
            buf.extend(samples.into_iter().map(|sample| Entry {
                sample,
                received_unix_ns: now_ns,
                received: now,
            }));
        }
        self.notify.notify_one();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.buf.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// After `close`, `next_batch` hands out what is left without waiting, then `None`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn take(&self, buf: &mut VecDeque<Entry>) -> RingBatch {
        let n = buf.len().min(self.batch_points);
        let mut samples = Vec::with_capacity(n);
        let mut received_unix_ns = Vec::with_capacity(n);
        for e in buf.drain(..n) {
            samples.push(e.sample);
            received_unix_ns.push(e.received_unix_ns);
        }
        RingBatch {
            samples,
            received_unix_ns,
        }
    }

    /// A full batch (`batch_points` points) if one is waiting, without waiting.
    pub fn try_full_batch(&self) -> Option<RingBatch> {
        let mut buf = self.buf.lock();
        (buf.len() >= self.batch_points).then(|| self.take(&mut buf))
    }

    /// Waits for the next batch: `batch_points` points, or what waits once the oldest has
    /// waited `batch_wait`. `None` when closed and empty.
    pub async fn next_batch(&self) -> Option<RingBatch> {
        loop {
            let wait = {
                let mut buf = self.buf.lock();
                let closed = self.closed.load(Ordering::Acquire);
                if buf.len() >= self.batch_points || (closed && !buf.is_empty()) {
                    return Some(self.take(&mut buf));
                }
                match buf.front() {
                    None if closed => return None,
                    None => None,
                    Some(oldest) => {
                        let age = oldest.received.elapsed();
                        if age >= self.batch_wait {
                            return Some(self.take(&mut buf));
                        }
                        Some(self.batch_wait - age)
                    }
                }
            };
            match wait {
                None => self.notify.notified().await,
                Some(d) => {
                    let _ = tokio::time::timeout(d, self.notify.notified()).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64) -> Sample {
        Sample::new("s", "c", t)
    }

    #[tokio::test]
    async fn full_batches_come_at_once_and_partial_after_the_wait() {
        let ring = IngestRing::new(100, 40, Duration::from_millis(50));
        ring.push((0..90).map(|i| s(i as f64)));
        let b = ring.next_batch().await.unwrap();
        assert_eq!(b.samples.len(), 40);
        assert_eq!(b.samples[0].t_s, 0.0);
        assert_eq!(ring.next_batch().await.unwrap().samples.len(), 40);
        let t0 = Instant::now();
        let b = ring.next_batch().await.unwrap();
        assert_eq!(b.samples.len(), 10);
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn drops_oldest_when_full_and_counts() {
        let ring = IngestRing::new(10, 40, Duration::from_millis(1));
        assert_eq!(ring.push((0..15).map(|i| s(i as f64))), 5);
        assert_eq!(ring.dropped(), 5);
        assert_eq!(ring.len(), 10);
        ring.close();
        let b = ring.next_batch().await.unwrap();
        assert_eq!(b.samples.first().map(|x| x.t_s), Some(5.0));
        assert!(ring.next_batch().await.is_none());
    }

    #[tokio::test]
    async fn try_push_takes_all_or_nothing() {
        let ring = IngestRing::new(10, 40, Duration::from_millis(1));
        assert!(ring.try_push((0..8).map(|i| s(i as f64)).collect()).is_ok());
        let back = ring.try_push((8..11).map(|i| s(i as f64)).collect());
        assert_eq!(back.map_err(|v| v.len()), Err(3));
        assert_eq!(ring.len(), 8);
        assert_eq!(ring.dropped(), 0);
        assert!(ring.try_push(vec![s(8.0), s(9.0)]).is_ok());
        ring.close();
        let b = ring.next_batch().await.unwrap();
        assert_eq!(b.samples.first().map(|x| x.t_s), Some(0.0));
        assert_eq!(b.samples.len(), 10);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_push() {
        let ring = std::sync::Arc::new(IngestRing::new(100, 2, Duration::from_secs(10)));
        let r2 = ring.clone();
        let h = tokio::spawn(async move { r2.next_batch().await.map(|b| b.samples.len()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        ring.push([s(1.0), s(2.0)]);
        let n = tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, Some(2));
    }
}
