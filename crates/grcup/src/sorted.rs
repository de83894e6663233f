//! Long-format telemetry in any row order: a chunked external sort in front of the pivot.
//!
//! Real exports do not list rows in time order (one lists each car's rows newest first, in
//! blocks of about ten channel rows per instant). Samples are keyed by (car, instant), so
//! [`SortedLongPivot`] reads every row into compact 25-byte records, sorts them by
//! (`timestamp`, car) in chunks of [`SortedLongPivot::DEFAULT_CHUNK_ROWS`] rows, spills each
//! full chunk as a sorted run to storage the caller provides (a temporary file), and merges
//! the runs into the pivot. Carry-forward and lap repair then run in time order. A file that
//! fits in one chunk is sorted in memory and never spilled; sorting rows already in order
//! costs one linear pass (the sort is adaptive). Memory: one chunk plus one buffered record
//! per run, whatever the file size. Rows with the same (car, instant) keep their file
//! order, so a repeated channel row still wins as it does in [`crate::LongPivot`].

use crate::engine::PivotConfig;
use crate::engine::{PivotStats, VehicleInfo};
use crate::error::Error;
use crate::long::{LongPivot, LongRow};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use telemetry::Sample;

/// Storage for one spilled run (a temporary file in practice; anything seekable in tests).
pub trait SpillFile: Read + Write + Seek {}
impl<T: Read + Write + Seek> SpillFile for T {}

/// Makes a new, empty spill file.
pub type SpillFactory = Box<dyn FnMut() -> std::io::Result<Box<dyn SpillFile>>>;

struct Run {
    reader: BufReader<Box<dyn SpillFile>>,
    left: u64,
}

impl Run {
    fn next(&mut self) -> Result<Option<LongRow>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut b = [0u8; LongRow::BYTES];
        self.reader.read_exact(&mut b)?;
        self.left -= 1;
        Ok(Some(LongRow::decode(&b)))
    }
}

enum Phase {
    Reading,
    Memory {
        rows: Vec<LongRow>,
        pos: usize,
    },
    Merge {
        runs: Vec<Run>,
        heap: BinaryHeap<Reverse<(i64, u32, usize, Slot)>>,
    },
    Done,
}

/// A merge head: the row itself, ordered only by its position in the heap tuple.
#[derive(Debug, Clone, Copy)]
struct Slot(LongRow);
impl PartialEq for Slot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Slot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Pivots long-format telemetry whose rows may come in any order (see the module docs).
///
/// The same columns, identity, carry-forward and lap repair rules as [`LongPivot`]; no row
/// is ever refused as `timestamp_backwards`. Nothing is emitted until the whole input is
/// read (the sort needs every row); [`PivotStats::rows_out_of_order`] counts the rows that
/// came later in the file than a newer row of their car.
pub struct SortedLongPivot<R: Read> {
    pivot: LongPivot<R>,
    chunk_rows: usize,
    spill: SpillFactory,
    phase: Phase,
    last_t: Vec<i64>,
}

impl<R: Read> SortedLongPivot<R> {
    /// Rows per in-memory chunk by default (about 50 MB).
    pub const DEFAULT_CHUNK_ROWS: usize = 2_000_000;

    /// Reads the header (same errors as [`LongPivot::new`]). `spill` makes a new empty
    /// temporary file each time a chunk of `chunk_rows` rows (at least 1,000) is full.
    pub fn new(
        reader: R,
        cfg: PivotConfig,
        chunk_rows: usize,
        spill: SpillFactory,
    ) -> Result<Self, Error> {
        Ok(SortedLongPivot {
            pivot: LongPivot::new(reader, cfg)?,
            chunk_rows: chunk_rows.max(1000),
            spill,
            phase: Phase::Reading,
            last_t: Vec::new(),
        })
    }

    /// Counters so far (complete once the input is exhausted).
    pub fn stats(&self) -> PivotStats {
        self.pivot.stats()
    }

    /// Cars seen so far.
    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        self.pivot.vehicles()
    }

    /// Bytes of input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.pivot.bytes_read()
    }

    /// The next sample in time order per car, `Ok(None)` at the end.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, Error> {
        loop {
            if let Some(s) = self.pivot.pop() {
                return Ok(Some(s));
            }
            match &mut self.phase {
                Phase::Done => return Ok(None),
                Phase::Reading => self.read_all()?,
                Phase::Memory { rows, pos } => match rows.get(*pos) {
                    Some(r) => {
                        let r = *r;
                        *pos += 1;
                        self.pivot.feed(r);
                    }
                    None => self.finish(),
                },
                Phase::Merge { runs, heap } => match heap.pop() {
                    Some(Reverse((_, _, i, Slot(r)))) => {
                        if let Some(run) = runs.get_mut(i) {
                            if let Some(n) = run.next()? {
                                heap.push(Reverse((n.t_ns, n.car, i, Slot(n))));
                            }
                        }
                        self.pivot.feed(r);
                    }
                    None => self.finish(),
                },
            }
        }
    }

    /// Runs the whole input, calling `f` for each sample; returns the final counters.
    pub fn for_each_sample(&mut self, mut f: impl FnMut(Sample)) -> Result<PivotStats, Error> {
        while let Some(s) = self.next_sample()? {
            f(s);
        }
        Ok(self.stats())
    }

    fn finish(&mut self) {
        self.pivot.flush();
        self.phase = Phase::Done;
    }

    /// Reads every row: sorted chunks, spilled when full; then sets up the merge.
    fn read_all(&mut self) -> Result<(), Error> {
        let mut chunk: Vec<LongRow> = Vec::with_capacity(self.chunk_rows.min(1 << 16));
        let mut runs: Vec<Run> = Vec::new();
        let mut out_of_order = 0u64;
        while let Some(row) = self.pivot.read_row()? {
            let Some(r) = row else { continue };
            let c = r.car as usize;
            if self.last_t.len() <= c {
                self.last_t.resize(c + 1, i64::MIN);
            }
            if let Some(last) = self.last_t.get_mut(c) {
                if r.t_ns < *last {
                    out_of_order += 1;
                } else {
                    *last = r.t_ns;
                }
            }
            chunk.push(r);
            if chunk.len() >= self.chunk_rows {
                runs.push(self.spill_run(&mut chunk)?);
            }
        }
        self.pivot.count_out_of_order(out_of_order);
        if runs.is_empty() {
            chunk.sort_by_key(LongRow::key);
            self.phase = Phase::Memory {
                rows: chunk,
                pos: 0,
            };
            return Ok(());
        }
        if !chunk.is_empty() {
            runs.push(self.spill_run(&mut chunk)?);
        }
        drop(chunk);
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(r) = run.next()? {
                heap.push(Reverse((r.t_ns, r.car, i, Slot(r))));
            }
        }
        self.phase = Phase::Merge { runs, heap };
        Ok(())
    }

    fn spill_run(&mut self, chunk: &mut Vec<LongRow>) -> Result<Run, Error> {
        chunk.sort_by_key(LongRow::key);
        let file = (self.spill)()?;
        let mut w = BufWriter::with_capacity(1 << 16, file);
        let mut b = [0u8; LongRow::BYTES];
        for r in chunk.iter() {
            r.encode(&mut b);
            w.write_all(&b)?;
        }
        let mut file = w.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        file.seek(SeekFrom::Start(0))?;
        let left = chunk.len() as u64;
        chunk.clear();
        self.pivot.count_spill_run();
        Ok(Run {
            reader: BufReader::with_capacity(1 << 16, file),
            left,
        })
    }
}

impl<R: Read> Iterator for SortedLongPivot<R> {
    type Item = Result<Sample, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                self.phase = Phase::Done;
                Some(Err(e))
            }
        }
    }
}

/// A spill factory keeping runs in memory (tests, small inputs).
pub fn memory_spill() -> SpillFactory {
    Box::new(|| Ok(Box::new(std::io::Cursor::new(Vec::new())) as Box<dyn SpillFile>))
}
