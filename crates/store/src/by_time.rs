//! A session's samples in time order across all its cars, as they streamed: a k-way merge of
//! the cars' own time-ordered scans (each the table's primary-key order, so nothing is sorted
//! and memory stays one sample per car on SQLite, one page of rows per car on PostgreSQL).

use crate::db::{Backend, RowGet, Val};
use crate::samples::sample_of_row;
use crate::{Result, Store, StoreError};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
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

/// Rows a PostgreSQL scan fetches at a time (per car).
const PG_FETCH_ROWS: i32 = 2048;

const CARS: &str = "SELECT id, car_key FROM cars WHERE session_id = ?1 ORDER BY car_key";
const CAR_SAMPLES: &str = "SELECT s.* FROM samples s WHERE s.car_id = ?1 ORDER BY s.t_s";

impl Store {
    /// The samples of a session, every car, in time order (ties in car order), handed to `f`.
    /// Returns how many.
    pub fn for_each_sample_by_time(&self, session: &str, f: impl FnMut(Sample)) -> Result<u64> {
        self.noted(self.for_each_sample_by_time_inner(session, f))
    }

    fn for_each_sample_by_time_inner(&self, session: &str, f: impl FnMut(Sample)) -> Result<u64> {
        let (session_row, track) = self.session_row_and_track(session)?;
        let session_id: Arc<str> = Arc::from(session);
        let cars: Vec<(i64, Arc<str>)> = self.rows(CARS, &[Val::int(session_row)], |r| {
            Ok((r.i64(0)?, Arc::from(r.string(1)?)))
        })?;
        let sample = |r: &dyn RowGet, k: usize| {
            sample_of_row(r, 0, session_id.clone(), cars[k].1.clone(), track.clone())
        };
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut stmts = Vec::with_capacity(cars.len());
                for _ in &cars {
                    stmts.push(conn.prepare(CAR_SAMPLES)?);
                }
                let mut scans = Vec::with_capacity(cars.len());
                for (stmt, (id, _)) in stmts.iter_mut().zip(&cars) {
                    scans.push(stmt.query([id])?);
                }
                merge(
                    cars.len(),
                    |k| match scans.get_mut(k) {
                        Some(rows) => rows.next()?.map(|r| sample(r, k)).transpose(),
                        None => Ok(None),
                    },
                    f,
                )
            }
            Backend::Postgres(cell) => {
                // One portal per car in one transaction, each fetched a page at a time.
                let mut pg = cell.try_borrow_mut().map_err(|_| StoreError::Reentered)?;
                let stmt = pg.statement(CAR_SAMPLES)?;
                let mut tx = pg.client()?.transaction()?;
                let mut portals = Vec::with_capacity(cars.len());
                for (id, _) in &cars {
                    portals.push(tx.bind(&stmt, &[id])?);
                }
                let mut pages: Vec<(VecDeque<postgres::Row>, bool)> =
                    cars.iter().map(|_| (VecDeque::new(), false)).collect();
                let n = merge(
                    cars.len(),
                    |k| {
                        let (Some((page, done)), Some(portal)) = (pages.get_mut(k), portals.get(k))
                        else {
                            return Ok(None);
                        };
                        if page.is_empty() && !*done {
                            let rows = tx.query_portal(portal, PG_FETCH_ROWS)?;
                            *done = rows.len() < PG_FETCH_ROWS as usize;
                            page.extend(rows);
                        }
                        page.pop_front().map(|r| sample(&r, k)).transpose()
                    },
                    f,
                )?;
                tx.commit()?;
                Ok(n)
            }
        }
    }
}

/// Merges `n` time-ordered scans (`next(k)`: the next sample of scan `k`) into `f` in time
/// order, ties in scan order; memory stays one sample per scan. Returns how many.
fn merge(
    n: usize,
    mut next: impl FnMut(usize) -> Result<Option<Sample>>,
    mut f: impl FnMut(Sample),
) -> Result<u64> {
    let mut heap = BinaryHeap::with_capacity(n);
    let mut head = |k: usize| -> Result<Option<Head>> {
        Ok(next(k)?.map(|sample| Head {
            t_s: sample.t_s,
            car: k,
            sample,
        }))
    };
    for k in 0..n {
        if let Some(h) = head(k)? {
            heap.push(h);
        }
    }
    let mut count = 0u64;
    while let Some(h) = heap.pop() {
        let k = h.car;
        f(h.sample);
        count += 1;
        if let Some(h) = head(k)? {
            heap.push(h);
        }
    }
    Ok(count)
}
