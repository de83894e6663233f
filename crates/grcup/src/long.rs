//! Long-format telemetry (`*_telemetry_data.csv`): one row per (car, instant, channel).

use crate::channels::Channel;
use crate::detect::FileKind;
use crate::engine::{Engine, Instant, PivotConfig, PivotStats, VehicleInfo};
use crate::error::Error;
use crate::fastcsv::FastRows;
use crate::rejects::{show, RejectReason};
use crate::sample_loop::{check_gear, locate, open_instant, Refusal, RowSource, SampleLoop};
use crate::table::open_raw;
use std::io::BufReader;
use std::io::Read;
use telemetry::Sample;

#[derive(Debug, Clone, Copy)]
struct Cols {
    name: usize,
    value: usize,
    timestamp: usize,
    vehicle_id: Option<usize>,
    vehicle_number: Option<usize>,
    lap: Option<usize>,
}

/// Pivots long-format telemetry into [`Sample`]s in one streaming pass.
///
/// Memory is bounded by the number of cars (a few open instants each), never the file size.
/// Rows are read into one reused `csv::ByteRecord`; channel names are matched as bytes, car
/// ids are cached for runs of the same car, and a repeated timestamp text is parsed once.
/// Columns are found by name (any order, extra columns ignored); required: `telemetry_name`,
/// `telemetry_value`, `timestamp`, and `vehicle_id` or `vehicle_number`. `lap` is optional
/// (without it laps are `None`). `meta_time` is ignored: `t_s` is `timestamp` as Unix
/// seconds. Identity, carry-forward and lap repair rules: see [`PivotConfig`] and the
/// crate's `engine` module docs (repeated on [`crate::car_identity`]).
///
/// Use it as an iterator of `Result<Sample, Error>` or with [`LongPivot::for_each_sample`].
pub struct LongPivot<R: Read> {
    pivot: SampleLoop<LongRows<R>>,
}

/// The rows of a long-format file: one channel value of one car at one instant each.
struct LongRows<R: Read> {
    rows: FastRows<R>,
    cols: Cols,
    min_len: usize,
    header_bytes: u64,
}

impl<R: Read> LongPivot<R> {
    /// Reads the header. Errors: empty input, binary data, missing columns (all named).
    pub fn new(reader: R, cfg: PivotConfig) -> Result<Self, Error> {
        let raw = open_raw(reader)?;
        let header = crate::detect::parse_header_line(&raw.header_line, raw.delimiter);
        let h = &header;
        let mut missing = Vec::new();
        let mut need = |n: &str| {
            let i = h.find(n);
            if i.is_none() {
                missing.push(n.to_string());
            }
            i.unwrap_or(0)
        };
        let name = need("telemetry_name");
        let value = need("telemetry_value");
        let timestamp = need("timestamp");
        let vehicle_id = h
            .find("vehicle_id")
            .or_else(|| h.find("original_vehicle_id"));
        let vehicle_number = h.find("vehicle_number");
        if vehicle_id.is_none() && vehicle_number.is_none() {
            missing.push("vehicle_id (or vehicle_number)".to_string());
        }
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                kind: FileKind::LongTelemetry,
                missing,
                found: h.names.clone(),
            });
        }
        let cols = Cols {
            name,
            value,
            timestamp,
            vehicle_id,
            vehicle_number,
            lap: h.find("lap"),
        };
        let min_len = [
            Some(name),
            Some(value),
            Some(timestamp),
            vehicle_id,
            vehicle_number,
            cols.lap,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        let header_bytes = raw.first.len() as u64;
        let pending = raw.rest.buffer().to_vec();
        let src: R = BufReader::into_inner(raw.rest);
        let rows = LongRows {
            rows: FastRows::new(src, &pending, raw.delimiter, raw.lines, min_len),
            cols,
            min_len,
            header_bytes,
        };
        Ok(LongPivot {
            pivot: SampleLoop::new(rows, cfg),
        })
    }

    /// Counters so far (complete once the input is exhausted).
    pub fn stats(&self) -> PivotStats {
        self.pivot.stats()
    }

    /// Cars seen so far, with their labels and spellings.
    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        self.pivot.vehicles()
    }

    /// Bytes of input consumed so far (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.pivot.src.header_bytes + self.pivot.src.rows.bytes()
    }

    /// Data rows read so far.
    pub fn rows_read(&self) -> u64 {
        self.pivot.rows_read()
    }

    /// The next sample, `Ok(None)` at the end of input.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, Error> {
        self.pivot.next_sample()
    }

    /// Runs the whole input, calling `f` for each sample; returns the final counters.
    pub fn for_each_sample(&mut self, f: impl FnMut(Sample)) -> Result<PivotStats, Error> {
        self.pivot.for_each_sample(f)
    }

    /// Reads the next data row without pivoting it: `Ok(None)` at the end of input,
    /// `Ok(Some(None))` for a row refused or of an unused channel (both counted).
    pub(crate) fn read_row(&mut self) -> Result<Option<Option<LongRow>>, Error> {
        Ok(self
            .pivot
            .read_with(|rows, engine| rows.parse_row(engine))?
            .map(Option::flatten))
    }

    /// Feeds a row that arrives in time order (per car) to the pivot.
    pub(crate) fn feed(&mut self, r: LongRow) {
        let engine = self.pivot.engine();
        match engine.instant(r.car as usize, r.t_ns) {
            Ok(inst) => r.record(inst),
            Err(reason) => engine.rejects.add(0, reason, || {
                "row older than its car's emitted samples after sorting".to_string()
            }),
        }
    }

    /// Emits every open instant (end of a sorted input).
    pub(crate) fn flush(&mut self) {
        self.pivot.finish();
    }

    /// Takes the next built sample, if any.
    pub(crate) fn pop(&mut self) -> Option<Sample> {
        self.pivot.pop()
    }

    /// Counts rows found out of time order (informative: the sorted reader places them).
    pub(crate) fn count_out_of_order(&mut self, n: u64) {
        self.pivot.engine().rows_out_of_order += n;
    }

    /// Counts one sorted run spilled by the time-ordered reader.
    pub(crate) fn count_spill_run(&mut self) {
        self.pivot.engine().spill_runs += 1;
    }
}

impl<R: Read> RowSource for LongRows<R> {
    fn advance(&mut self) -> Result<bool, Error> {
        Ok(self.rows.next_row()?)
    }

    fn line(&self) -> u64 {
        self.rows.line()
    }

    #[inline]
    fn apply(&mut self, engine: &mut Engine) -> Result<(), Refusal> {
        let Some(r) = self.parse_row(engine)? else {
            return Ok(());
        };
        let ts = self.rows.get(self.cols.timestamp);
        r.record(open_instant(engine, r.car as usize, r.t_ns, ts)?);
        Ok(())
    }
}

impl<R: Read> LongRows<R> {
    /// Parses the current row into a compact [`LongRow`] (`None` for a channel PitWall does
    /// not use, counted). Does not touch the car's instants.
    #[inline]
    fn parse_row(&self, engine: &mut Engine) -> Result<Option<LongRow>, Refusal> {
        let rec = &self.rows;
        let c = self.cols;
        if rec.len() < self.min_len {
            return Err((
                RejectReason::ShortRow,
                format!(
                    "{} fields, the header has at least {}",
                    rec.len(),
                    self.min_len
                ),
            ));
        }
        let field = |i: usize| rec.get(i);
        let name = field(c.name);
        let channel = match Channel::from_name(name) {
            Some(ch) => ch,
            None => {
                engine.unknown_channel(crate::clock::trim(name));
                return Ok(None);
            }
        };
        let raw = field(c.value);
        let value = parse_f64(raw).map_err(|r| (r, format!("telemetry_value {}", show(raw))))?;
        check_gear(channel, value, raw)?;
        let lap = match c.lap {
            Some(i) => parse_lap(field(i))?,
            None => None,
        };
        let id = c.vehicle_id.map(&field).unwrap_or_default();
        let num = c.vehicle_number.map(&field).unwrap_or_default();
        let (car, t_ns) = locate(engine, id, num, field(c.timestamp))?;
        Ok(Some(LongRow {
            t_ns,
            car: u32::try_from(car).unwrap_or(u32::MAX),
            channel: channel.index() as u8,
            lap: lap.unwrap_or(NO_LAP),
            value,
        }))
    }
}

/// `lap` of a [`LongRow`] when the row has none.
pub(crate) const NO_LAP: u32 = u32::MAX;

/// One parsed telemetry row, compact enough to sort and spill (25 bytes on disk).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LongRow {
    pub t_ns: i64,
    pub car: u32,
    pub channel: u8,
    pub lap: u32,
    pub value: f64,
}

impl LongRow {
    pub const BYTES: usize = 25;
    #[inline]
    pub fn lap(&self) -> Option<u32> {
        (self.lap != NO_LAP).then_some(self.lap)
    }
    #[inline]
    pub fn key(&self) -> (i64, u32) {
        (self.t_ns, self.car)
    }
    /// Records the row's channel value and lap in its car's open instant.
    #[inline]
    pub fn record(&self, inst: &mut Instant) {
        if let Some(ch) = Channel::ALL.get(usize::from(self.channel)) {
            inst.set(*ch, self.value);
        }
        inst.set_lap(self.lap());
    }
    pub fn encode(&self, out: &mut [u8; Self::BYTES]) {
        out[0..8].copy_from_slice(&self.t_ns.to_le_bytes());
        out[8..12].copy_from_slice(&self.car.to_le_bytes());
        out[12] = self.channel;
        out[13..17].copy_from_slice(&self.lap.to_le_bytes());
        out[17..25].copy_from_slice(&self.value.to_le_bytes());
    }
    pub fn decode(b: &[u8; Self::BYTES]) -> LongRow {
        let mut i8b = [0u8; 8];
        let mut i4b = [0u8; 4];
        i8b.copy_from_slice(&b[0..8]);
        let t_ns = i64::from_le_bytes(i8b);
        i4b.copy_from_slice(&b[8..12]);
        let car = u32::from_le_bytes(i4b);
        i4b.copy_from_slice(&b[13..17]);
        let lap = u32::from_le_bytes(i4b);
        i8b.copy_from_slice(&b[17..25]);
        LongRow {
            t_ns,
            car,
            channel: b[12],
            lap,
            value: f64::from_le_bytes(i8b),
        }
    }
}

impl<R: Read> Iterator for LongPivot<R> {
    type Item = Result<Sample, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.pivot.next_item()
    }
}

/// Parses a float value (fast path on the bytes as given, then trimmed).
#[inline]
pub(crate) fn parse_f64(raw: &[u8]) -> Result<f64, RejectReason> {
    let v = match fast_float2::parse::<f64, _>(raw) {
        Ok(v) => v,
        Err(_) => {
            let t = crate::clock::trim(raw);
            fast_float2::parse::<f64, _>(t).map_err(|_| RejectReason::NonNumeric)?
        }
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(RejectReason::NonFinite)
    }
}

/// Parses the lap column: empty → `None`; a whole non-negative number → `Some`.
#[inline]
pub(crate) fn parse_lap(raw: &[u8]) -> Result<Option<u32>, Refusal> {
    let t = crate::clock::trim(raw);
    if t.is_empty() {
        return Ok(None);
    }
    let mut v: u64 = 0;
    let mut ok = true;
    for &b in t {
        if b.is_ascii_digit() && v < 1 << 40 {
            v = v * 10 + u64::from(b - b'0');
        } else {
            ok = false;
            break;
        }
    }
    if ok {
        return Ok(Some(u32::try_from(v).unwrap_or(u32::MAX)));
    }
    // `5.0` style.
    match std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 4e9 => Ok(Some(x as u32)),
        _ => Err((RejectReason::BadLap, format!("lap {}", show(raw)))),
    }
}
