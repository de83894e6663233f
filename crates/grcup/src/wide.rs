//! Wide-format telemetry: one row per (car, instant), one column per channel.

use crate::channels::{Channel, N_CHANNELS};
use crate::detect::FileKind;
use crate::engine::{Engine, PivotConfig, PivotStats, VehicleInfo};
use crate::error::Error;
use crate::long::{parse_f64, parse_lap};
use crate::rejects::{show, RejectReason};
use crate::table::{open, Source};
use std::io::Read;
use telemetry::Sample;

/// Reads wide-format telemetry (columns `timestamp`, `vehicle_id` and/or `vehicle_number`,
/// optional `lap`, and any of the channel columns `speed`, `gear`, `nmot`, `aps`/`ath`,
/// `pbrake_f`, `pbrake_r`, `accx_can`, `accy_can`, `Steering_Angle`,
/// `Laptrigger_lapdist_dls`, `VBOX_Lat_Min`, `VBOX_Long_Minutes`, `tyre_wear_fl|fr|rl|rr`)
/// into [`Sample`]s, streaming. An empty cell is a channel absent at that instant (carried
/// forward like in [`crate::LongPivot`]); rows of one car with the same timestamp are merged.
/// Identity, carry-forward and lap repair are the long pivot's.
pub struct WidePivot<R: Read> {
    reader: csv::Reader<Source<R>>,
    rec: csv::ByteRecord,
    timestamp: usize,
    vehicle_id: Option<usize>,
    vehicle_number: Option<usize>,
    lap: Option<usize>,
    channels: Vec<(usize, Channel)>,
    col_names: Vec<String>,
    engine: Engine,
    done: bool,
    line_offset: u64,
}

impl<R: Read> WidePivot<R> {
    /// Reads the header. Errors: empty input, binary data, missing columns (all named).
    pub fn new(reader: R, cfg: PivotConfig) -> Result<Self, Error> {
        let opened = open(reader, csv::Trim::Headers)?;
        let h = &opened.header;
        let mut missing = Vec::new();
        let timestamp = h.find("timestamp");
        if timestamp.is_none() {
            missing.push("timestamp".to_string());
        }
        let vehicle_id = h
            .find("vehicle_id")
            .or_else(|| h.find("original_vehicle_id"));
        let vehicle_number = h.find("vehicle_number");
        if vehicle_id.is_none() && vehicle_number.is_none() {
            missing.push("vehicle_id (or vehicle_number)".to_string());
        }
        let channels: Vec<(usize, Channel)> = h
            .names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Channel::from_name(n.as_bytes()).map(|c| (i, c)))
            .collect();
        if channels.is_empty() {
            missing.push("at least one channel column (speed, accx_can, ...)".to_string());
        }
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                kind: FileKind::WideTelemetry,
                missing,
                found: h.names.clone(),
            });
        }
        Ok(WidePivot {
            reader: opened.reader,
            rec: csv::ByteRecord::new(),
            timestamp: timestamp.unwrap_or(0),
            vehicle_id,
            vehicle_number,
            lap: h.find("lap"),
            channels,
            col_names: h.names.clone(),
            engine: Engine::new(cfg),
            done: false,
            line_offset: opened.line_offset,
        })
    }

    /// Counters so far (complete once the input is exhausted).
    pub fn stats(&self) -> PivotStats {
        self.engine.stats()
    }

    /// Cars seen so far.
    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        self.engine.vehicles()
    }

    /// Bytes of input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next sample, `Ok(None)` at the end of input.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, Error> {
        loop {
            if let Some(s) = self.engine.out.pop_front() {
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
            while let Some(s) = self.engine.out.pop_front() {
                f(s);
            }
            if self.done {
                return Ok(self.stats());
            }
            self.step()?;
        }
    }

    fn step(&mut self) -> Result<(), Error> {
        if !self.reader.read_byte_record(&mut self.rec)? {
            self.engine.flush();
            self.done = true;
            return Ok(());
        }
        self.engine.rows_read += 1;
        let line = crate::table::line_of(&self.rec, self.line_offset);
        if let Err((reason, detail)) = self.row() {
            self.engine.rejects.add(line, reason, || detail);
        }
        Ok(())
    }

    fn row(&mut self) -> Result<(), (RejectReason, String)> {
        let rec = &self.rec;
        let field = |i: usize| rec.get(i);
        let ts = field(self.timestamp).ok_or_else(|| {
            (
                RejectReason::ShortRow,
                format!(
                    "{} fields, timestamp is column {}",
                    rec.len(),
                    self.timestamp + 1
                ),
            )
        })?;
        let mut vals = [0.0; N_CHANNELS];
        let mut present = [false; N_CHANNELS];
        for &(i, ch) in &self.channels {
            let raw = match field(i) {
                Some(r) => r,
                None => continue,
            };
            if crate::clock::trim(raw).is_empty() {
                continue;
            }
            let v = parse_f64(raw).map_err(|r| {
                (
                    r,
                    format!(
                        "{} {}",
                        self.col_names.get(i).map(String::as_str).unwrap_or("?"),
                        show(raw)
                    ),
                )
            })?;
            if ch == Channel::Gear && (v.fract() != 0.0 || !(-1.0..=10.0).contains(&v)) {
                return Err((
                    RejectReason::OutOfRange,
                    format!("gear {} is not a whole number in -1..=10", show(raw)),
                ));
            }
            if let (Some(slot), Some(p)) = (vals.get_mut(ch.index()), present.get_mut(ch.index())) {
                *slot = v;
                *p = true;
            }
        }
        let lap = match self.lap.and_then(field) {
            Some(raw) => parse_lap(raw)?,
            None => None,
        };
        let id = self.vehicle_id.and_then(field).unwrap_or_default();
        let num = self.vehicle_number.and_then(field).unwrap_or_default();
        let car = self.engine.car(id, num).ok_or_else(|| {
            (
                RejectReason::MissingVehicle,
                "vehicle_id and vehicle_number are empty".to_string(),
            )
        })?;
        let t_ns = self.engine.timestamp(car, ts).ok_or_else(|| {
            (
                RejectReason::BadTimestamp,
                format!("timestamp {}", show(ts)),
            )
        })?;
        let inst = self.engine.instant(car, t_ns).map_err(|r| {
            (
                r,
                format!(
                    "timestamp {} is older than this car's emitted samples",
                    show(ts)
                ),
            )
        })?;
        for ch in Channel::ALL {
            if present.get(ch.index()).copied().unwrap_or(false) {
                inst.set(ch, vals.get(ch.index()).copied().unwrap_or(0.0));
            }
        }
        inst.set_lap(lap);
        Ok(())
    }
}

impl<R: Read> Iterator for WidePivot<R> {
    type Item = Result<Sample, Error>;
    fn next(&mut self) -> Option<Self::Item> {
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
}
