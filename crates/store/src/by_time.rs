//! A session's samples in time order across all its cars, as they streamed: a k-way merge of
//! the cars' own time-ordered scans (each the table's primary-key order, so nothing is sorted
//! and memory stays one sample per car).

use crate::samples::sample_of_row;
use crate::{Result, Store};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use telemetry::Sample;

/// The next sample of one car, ordered so that the heap pops the earliest (ties: car order).
struct Head {
    t_s: f64,
    car: usize,
    sample: Sample,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        o.t_s.total_cmp(&self.t_s).then(o.car.cmp(&self.car))
    }
}

impl Store {
    /// The samples of a session, every car, in time order (ties in car order), handed to `f`.
    /// Returns how many.
    pub fn for_each_sample_by_time(&self, session: &str, mut f: impl FnMut(Sample)) -> Result<u64> {
        let (session_row, track) = self.session_row_and_track(session)?;
        let session_id: Arc<str> = Arc::from(session);
        let cars: Vec<(i64, Arc<str>)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, car_key FROM cars WHERE session_id = ?1 ORDER BY car_key")?;
            let rows = stmt.query_map([session_row], |r| {
                Ok((r.get::<_, i64>(0)?, Arc::from(r.get::<_, String>(1)?)))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut stmts = Vec::with_capacity(cars.len());
        for _ in &cars {
            stmts.push(
                self.conn
                    .prepare("SELECT s.* FROM samples s WHERE s.car_id = ?1 ORDER BY s.t_s")?,
            );
        }
        let mut scans = Vec::with_capacity(cars.len());
        for (stmt, (id, _)) in stmts.iter_mut().zip(&cars) {
            scans.push(stmt.query([id])?);
        }
        let mut heap = BinaryHeap::with_capacity(cars.len());
        let next = |scans: &mut Vec<rusqlite::Rows<'_>>, k: usize| -> Result<Option<Head>> {
            let Some(rows) = scans.get_mut(k) else {
                return Ok(None);
            };
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let car_id = cars[k].1.clone();
            let sample = sample_of_row(r, 0, session_id.clone(), car_id, track.clone())?;
            Ok(Some(Head {
                t_s: sample.t_s,
                car: k,
                sample,
            }))
        };
        for k in 0..cars.len() {
            if let Some(h) = next(&mut scans, k)? {
                heap.push(h);
            }
        }
        let mut n = 0u64;
        while let Some(h) = heap.pop() {
            let k = h.car;
            f(h.sample);
            n += 1;
            if let Some(h) = next(&mut scans, k)? {
                heap.push(h);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use telemetry::Sample;

    #[test]
    fn samples_come_in_time_order_across_cars() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut st = Store::open(dir.path()).unwrap_or_else(|e| panic!("open: {e}"));
        let mut batch = Vec::new();
        for (car, offset) in [("b", 0.05), ("a", 0.0), ("c", 0.02)] {
            for i in 0..50 {
                let mut s = Sample::new("s1", car, f64::from(i) * 0.1 + offset);
                s.speed_kmh = Some(f64::from(i));
                batch.push(s);
            }
        }
        st.write_batch(&batch)
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut seen = Vec::new();
        let n = st
            .for_each_sample_by_time("s1", |s| seen.push((s.t_s, s.car_id.to_string())))
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(n, 150);
        assert!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0),
            "not in time order"
        );
        assert_eq!(seen[0].1, "a");
        assert_eq!(seen[1].1, "c");
        assert_eq!(seen[2].1, "b");
        assert!(st.for_each_sample_by_time("nope", |_| {}).is_err());
    }
}
