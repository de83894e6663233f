//! Wide-format telemetry: one row per (car, instant), one column per channel.

use crate::channels::{Channel, N_CHANNELS};
use crate::detect::FileKind;
use crate::engine::{Engine, PivotConfig, PivotStats, VehicleInfo};
use crate::error::Error;
use crate::long::{parse_f64, parse_lap};
use crate::rejects::{show, RejectReason};
use crate::sample_loop::{check_gear, locate, open_instant, Refusal, RowSource, SampleLoop};
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
    pivot: SampleLoop<WideRows<R>>,
}

/// The rows of a wide-format file: any channels of one car at one instant each.
struct WideRows<R: Read> {
    reader: csv::Reader<Source<R>>,
    rec: csv::ByteRecord,
    timestamp: usize,
    vehicle_id: Option<usize>,
    vehicle_number: Option<usize>,
    lap: Option<usize>,
    channels: Vec<(usize, Channel)>,
    col_names: Vec<String>,
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
        let rows = WideRows {
            reader: opened.reader,
            rec: csv::ByteRecord::new(),
            timestamp: timestamp.unwrap_or(0),
            vehicle_id,
            vehicle_number,
            lap: h.find("lap"),
            channels,
            col_names: h.names.clone(),
            line_offset: opened.line_offset,
        };
        Ok(WidePivot {
            pivot: SampleLoop::new(rows, cfg),
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
        self.pivot.src.reader.position().byte()
    }

    /// The next sample, `Ok(None)` at the end of input.
    pub fn next_sample(&mut self) -> Result<Option<Sample>, Error> {
        self.pivot.next_sample()
    }

    /// Runs the whole input, calling `f` for each sample; returns the final counters.
    pub fn for_each_sample(&mut self, f: impl FnMut(Sample)) -> Result<PivotStats, Error> {
        self.pivot.for_each_sample(f)
    }
}

impl<R: Read> RowSource for WideRows<R> {
    fn advance(&mut self) -> Result<bool, Error> {
        Ok(self.reader.read_byte_record(&mut self.rec)?)
    }

    fn line(&self) -> u64 {
        crate::table::line_of(&self.rec, self.line_offset)
    }

    fn apply(&mut self, engine: &mut Engine) -> Result<(), Refusal> {
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
            check_gear(ch, v, raw)?;
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
        let (car, t_ns) = locate(engine, id, num, ts)?;
        let inst = open_instant(engine, car, t_ns, ts)?;
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
        self.pivot.next_item()
    }
}
