//! The sample loop shared by [`crate::LongPivot`] and [`crate::WidePivot`].
//!
//! Both readers do the same thing with a row whatever its layout: read it, count it, record
//! its values in the open instant of its car (or count why it is refused, with the file's
//! line), and hand out the samples the [`Engine`] emits (carry-forward and lap repair happen
//! there). Only reading a row and parsing it differ: that is a [`RowSource`]. The checks a
//! row of either layout goes through (gear range, car, timestamp, instant not yet emitted)
//! are here too, so both refuse a row for the same reason with the same detail.

use crate::channels::Channel;
use crate::engine::{Engine, Instant, PivotConfig, PivotStats, VehicleInfo};
use crate::error::Error;
use crate::rejects::{show, RejectReason};
use telemetry::Sample;

/// Why a row is refused, and the detail kept in the rejection examples.
pub(crate) type Refusal = (RejectReason, String);

/// The rows of one telemetry layout: where they come from and how one is read into the pivot.
pub(crate) trait RowSource {
    /// Moves to the next data row; `false` at the end of input.
    fn advance(&mut self) -> Result<bool, Error>;
    /// The file's line number of the current row (for the rejection examples).
    fn line(&self) -> u64;
    /// Records the current row's values in the open instant of its car, through `engine`
    /// (see [`locate`] and [`open_instant`]), or says why the row is refused.
    fn apply(&mut self, engine: &mut Engine) -> Result<(), Refusal>;
}

/// A row source and the pivot state its rows feed.
pub(crate) struct SampleLoop<S> {
    pub src: S,
    engine: Engine,
    done: bool,
}

impl<S: RowSource> SampleLoop<S> {
    pub fn new(src: S, cfg: PivotConfig) -> Self {
        SampleLoop {
            src,
            engine: Engine::new(cfg),
            done: false,
        }
    }

    /// Counters so far (complete once the input is exhausted).
    pub fn stats(&self) -> PivotStats {
        self.engine.stats()
    }

    /// Cars seen so far, with their labels and spellings.
    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        self.engine.vehicles()
    }

    /// Data rows read so far.
    pub fn rows_read(&self) -> u64 {
        self.engine.rows_read
    }

    /// The pivot state, for readers that feed it rows of their own (the sorted reader).
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The next sample, `Ok(None)` at the end of input.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, Error> {
        loop {
            if let Some(s) = self.pop() {
                return Ok(Some(s));
            }
            if self.done {
                return Ok(None);
            }
            self.step()?;
        }
    }

    /// Runs the whole input, calling `f` for each sample; returns the final counters.
    pub fn for_each_sample(&mut self, mut f: impl FnMut(Sample)) -> Result<PivotStats, Error> {
        loop {
            while let Some(s) = self.pop() {
                f(s);
            }
            if self.done {
                return Ok(self.stats());
            }
            self.step()?;
        }
    }

    /// `Iterator::next` of a reader: after an error, nothing more (the error ends the read).
    pub fn next_item(&mut self) -> Option<Result<Sample, Error>> {
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.engine.out.clear();
                Some(Err(e))
            }
        }
    }

    /// Takes the next built sample, if any.
    pub fn pop(&mut self) -> Option<Sample> {
        self.engine.out.pop_front()
    }

    /// Emits every open instant: the input is over.
    pub fn finish(&mut self) {
        self.engine.flush();
        self.done = true;
    }

    /// Reads the next row and parses it with `parse`: `Ok(None)` at the end of input,
    /// `Ok(Some(None))` for a refused row (counted, with its line).
    pub fn read_with<T>(
        &mut self,
        parse: impl FnOnce(&mut S, &mut Engine) -> Result<T, Refusal>,
    ) -> Result<Option<Option<T>>, Error> {
        if !self.src.advance()? {
            return Ok(None);
        }
        self.engine.rows_read += 1;
        let line = self.src.line();
        match parse(&mut self.src, &mut self.engine) {
            Ok(t) => Ok(Some(Some(t))),
            Err((reason, detail)) => {
                self.engine.rejects.add(line, reason, || detail);
                Ok(Some(None))
            }
        }
    }

    /// Reads and applies one row (or finishes).
    fn step(&mut self) -> Result<(), Error> {
        if self.read_with(S::apply)?.is_none() {
            self.finish();
        }
        Ok(())
    }
}

/// Refuses a gear that is not a whole number in -1..=10 (`raw` is the value as written).
#[inline]
pub(crate) fn check_gear(channel: Channel, value: f64, raw: &[u8]) -> Result<(), Refusal> {
    if channel == Channel::Gear && (value.fract() != 0.0 || !(-1.0..=10.0).contains(&value)) {
        return Err((
            RejectReason::OutOfRange,
            format!("gear {} is not a whole number in -1..=10", show(raw)),
        ));
    }
    Ok(())
}

/// The car (from `vehicle_id` and `vehicle_number`, either may be empty) and the instant
/// (the `timestamp` text, parsed) of a row.
#[inline]
pub(crate) fn locate(
    engine: &mut Engine,
    vehicle_id: &[u8],
    vehicle_number: &[u8],
    timestamp: &[u8],
) -> Result<(usize, i64), Refusal> {
    let car = engine.car(vehicle_id, vehicle_number).ok_or_else(|| {
        (
            RejectReason::MissingVehicle,
            "vehicle_id and vehicle_number are empty".to_string(),
        )
    })?;
    let t_ns = engine.timestamp(car, timestamp).ok_or_else(|| {
        (
            RejectReason::BadTimestamp,
            format!("timestamp {}", show(timestamp)),
        )
    })?;
    Ok((car, t_ns))
}

/// The open instant of `car` at `t_ns` (see [`Engine::instant`]); a row older than the car's
/// emitted samples is refused (`timestamp` is its text, for the detail).
#[inline]
pub(crate) fn open_instant<'e>(
    engine: &'e mut Engine,
    car: usize,
    t_ns: i64,
    timestamp: &[u8],
) -> Result<&'e mut Instant, Refusal> {
    engine.instant(car, t_ns).map_err(|reason| {
        (
            reason,
            format!(
                "timestamp {} is older than this car's emitted samples",
                show(timestamp)
            ),
        )
    })
}
