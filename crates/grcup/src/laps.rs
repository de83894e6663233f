//! Lap boundary files: `*_lap_start*`, `*_lap_end*`, `*_lap_time*` (both layouts).

use crate::detect::FileKind;
use crate::engine::car_identity;
use crate::error::Error;
use crate::long::{parse_f64, parse_lap};
use crate::rejects::{show, RejectReason, Rejects};
use crate::table::open;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// One boundary event of one car.
#[derive(Debug, Clone, PartialEq)]
pub struct LapEvent {
    /// The lap number (repaired where the file's was corrupt).
    pub lap: u32,
    /// The lap number as the file gave it (`None` when empty).
    pub raw_lap: Option<u32>,
    /// Whether `lap` was repaired from the order of events.
    pub repaired: bool,
    /// The instant, Unix seconds of the car's clock (`timestamp`, not `meta_time`).
    pub t_s: f64,
    /// The undocumented `value` column where the file has one (it is not a lap time).
    pub value: Option<f64>,
    /// The file's line.
    pub line: u64,
}

/// The time between two consecutive events of one car.
#[derive(Debug, Clone, PartialEq)]
pub struct LapInterval {
    /// Lap of the earlier event.
    pub from_lap: u32,
    /// Lap of the later event (`from_lap + 1`).
    pub to_lap: u32,
    pub start_t_s: f64,
    pub end_t_s: f64,
    /// `end_t_s - start_t_s`.
    pub lap_time_s: f64,
}

/// A lap boundary file read into per-car events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LapBoundaries {
    /// Events per car label (see [`crate::car_identity`]), sorted by time.
    pub cars: BTreeMap<String, Vec<LapEvent>>,
    /// Whether the file has a `value` column.
    pub has_value_column: bool,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows refused (bad timestamp, bad lap, duplicate event...).
    pub rejects: Rejects,
    /// Events whose lap number was repaired.
    pub laps_repaired: u64,
    /// Rows whose `value` is not a number (some files put the timestamp there): the event
    /// is kept, its value left empty.
    pub values_not_numeric: u64,
    /// Two chassis with one car number kept apart, and the like.
    pub notes: Vec<String>,
}

impl LapBoundaries {
    /// Lap times of one car: the differences between consecutive events whose laps follow
    /// each other (gaps, where an event is missing, give no interval).
    ///
    /// For a `lap_end` or `lap_time` file, `to_lap` is the lap that was timed; for a
    /// `lap_start` file, `from_lap` is.
    pub fn intervals(&self, car: &str) -> Vec<LapInterval> {
        let Some(ev) = self.cars.get(car) else {
            return Vec::new();
        };
        ev.windows(2)
            .filter_map(|w| match w {
                [a, b] if b.lap == a.lap.saturating_add(1) => Some(LapInterval {
                    from_lap: a.lap,
                    to_lap: b.lap,
                    start_t_s: a.t_s,
                    end_t_s: b.t_s,
                    lap_time_s: b.t_s - a.t_s,
                }),
                _ => None,
            })
            .collect()
    }
}

/// Reads a lap boundary file (either layout, with or without `value`). Required columns:
/// `timestamp`, `lap`, and `vehicle_id` or `vehicle_number`.
///
/// Lap numbers above 9999 (32768 is the logger's "unknown"), empty, or not above the
/// previous event's lap are repaired by order: the previous event's lap + 1 (or, before any
/// trustworthy lap, the next trustworthy lap minus the events between). A second event with
/// the same lap and instant is dropped as a duplicate.
pub fn read_lap_boundaries<R: Read>(reader: R) -> Result<LapBoundaries, Error> {
    let opened = open(reader, csv::Trim::All)?;
    let h = &opened.header;
    let mut missing = Vec::new();
    let ts = h.find("timestamp");
    let lap = h.find("lap");
    if ts.is_none() {
        missing.push("timestamp".to_string());
    }
    if lap.is_none() {
        missing.push("lap".to_string());
    }
    let vid = h
        .find("vehicle_id")
        .or_else(|| h.find("original_vehicle_id"));
    let vnum = h.find("vehicle_number");
    if vid.is_none() && vnum.is_none() {
        missing.push("vehicle_id (or vehicle_number)".to_string());
    }
    let (Some(ts), Some(lap_col)) = (ts, lap) else {
        return Err(Error::MissingColumns {
            kind: FileKind::LapBoundary,
            missing,
            found: h.names.clone(),
        });
    };
    if !missing.is_empty() {
        return Err(Error::MissingColumns {
            kind: FileKind::LapBoundary,
            missing,
            found: h.names.clone(),
        });
    }
    let value_col = h.find("value");
    let mut out = LapBoundaries {
        has_value_column: value_col.is_some(),
        ..LapBoundaries::default()
    };
    let line_offset = opened.line_offset;
    let mut rdr = opened.reader;
    let mut rec = csv::ByteRecord::new();
    // identity key -> (label, events)
    let mut by_key: HashMap<String, (String, Vec<LapEvent>)> = HashMap::new();
    while rdr.read_byte_record(&mut rec)? {
        out.rows_read += 1;
        let line = crate::table::line_of(&rec, line_offset);
        let r = (|| -> Result<(String, String, bool, LapEvent), (RejectReason, String)> {
            let raw_ts = rec.get(ts).ok_or((
                RejectReason::ShortRow,
                format!("{} fields, timestamp is column {}", rec.len(), ts + 1),
            ))?;
            let t_ns = crate::clock::parse_timestamp_ns(raw_ts).ok_or_else(|| {
                (
                    RejectReason::BadTimestamp,
                    format!("timestamp {}", show(raw_ts)),
                )
            })?;
            let raw_lap = parse_lap(rec.get(lap_col).unwrap_or_default())?;
            let value = match value_col.and_then(|i| rec.get(i)) {
                Some(v) if !crate::clock::trim(v).is_empty() => parse_f64(v).ok(),
                _ => None,
            };
            let value_bad = value.is_none()
                && value_col
                    .and_then(|i| rec.get(i))
                    .is_some_and(|v| !crate::clock::trim(v).is_empty());
            let id = vid.and_then(|i| rec.get(i)).unwrap_or_default();
            let num = vnum.and_then(|i| rec.get(i)).unwrap_or_default();
            let ident = car_identity(&String::from_utf8_lossy(id), &String::from_utf8_lossy(num))
                .ok_or((
                RejectReason::MissingVehicle,
                "vehicle_id and vehicle_number are empty".to_string(),
            ))?;
            Ok((
                ident.key,
                ident.label,
                value_bad,
                LapEvent {
                    lap: raw_lap.unwrap_or(0),
                    raw_lap,
                    repaired: false,
                    t_s: t_ns as f64 / 1e9,
                    value,
                    line,
                },
            ))
        })();
        match r {
            Ok((key, label, value_bad, ev)) => {
                out.values_not_numeric += u64::from(value_bad);
                by_key
                    .entry(key)
                    .or_insert_with(|| (label, Vec::new()))
                    .1
                    .push(ev)
            }
            Err((reason, detail)) => out.rejects.add(line, reason, || detail),
        }
    }
    // Keys in a stable order so that the label a second chassis gets does not vary.
    let mut by_key: Vec<(String, (String, Vec<LapEvent>))> = by_key.into_iter().collect();
    by_key.sort_by_key(|(_, (_, ev))| ev.iter().map(|e| e.line).min().unwrap_or(0));
    for (key, (label, mut events)) in by_key {
        events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s).then(a.line.cmp(&b.line)));
        // Drop exact duplicates (same raw lap, same instant).
        let mut kept: Vec<LapEvent> = Vec::with_capacity(events.len());
        for ev in events {
            if kept
                .last()
                .is_some_and(|p| p.t_s == ev.t_s && p.raw_lap == ev.raw_lap)
            {
                out.rejects.add(ev.line, RejectReason::Duplicate, || {
                    format!(
                        "second event for car {label} lap {:?} at the same instant",
                        ev.raw_lap
                    )
                });
                continue;
            }
            kept.push(ev);
        }
        out.laps_repaired += repair_by_order(&mut kept);
        // Two chassis with one number are two cars: the later one is `<label>/<chassis>`.
        let label = if out.cars.contains_key(&label) {
            let chassis = key.split_once(':').map(|(_, c)| c).unwrap_or(&key);
            let other = format!("{label}/{chassis}");
            out.notes.push(format!(
                "lap events: number {label} is on two chassis: kept apart as {label} and {other} (which official car each is cannot be told from this file)"
            ));
            other
        } else {
            label
        };
        out.cars.entry(label).or_default().extend(kept);
    }
    for ev in out.cars.values_mut() {
        ev.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    }
    Ok(out)
}

/// Repairs corrupt lap numbers of time-sorted events; returns how many were repaired.
fn repair_by_order(ev: &mut [LapEvent]) -> u64 {
    let mut repaired = 0;
    let mut prev: Option<u32> = None;
    let n = ev.len();
    for i in 0..n {
        let raw = ev.get(i).and_then(|e| e.raw_lap);
        let good = match (raw, prev) {
            (Some(l), _) if l > 9999 => None,
            (Some(l), Some(p)) if l <= p => None,
            (Some(l), _) => Some(l),
            (None, _) => None,
        };
        let lap = match (good, prev) {
            (Some(l), _) => l,
            (None, Some(p)) => p.saturating_add(1),
            (None, None) => {
                // Before any trustworthy lap: count back from the next one.
                let next = ev
                    .iter()
                    .enumerate()
                    .skip(i + 1)
                    .find_map(|(j, e)| e.raw_lap.filter(|&l| l <= 9999).map(|l| (j, l)));
                match next {
                    Some((j, l)) => l.saturating_sub((j - i) as u32),
                    None => 1,
                }
            }
        };
        if let Some(e) = ev.get_mut(i) {
            if good.is_none() {
                e.repaired = true;
                repaired += 1;
            }
            e.lap = lap;
        }
        prev = Some(lap);
    }
    repaired
}
