//! The small semicolon-separated official files: results, best laps, weather.
//! (Official timing with sectors is in `timing`.)

use crate::clock::{parse_duration_s, trim};
use crate::detect::FileKind;
use crate::error::Error;
use crate::rejects::{show, RejectReason};
use crate::table::{open, require, Table};
use std::io::Read;

pub(crate) type RowErr = (RejectReason, String);

/// Typed access to the fields of one row (all trimmed).
pub(crate) struct Row<'a> {
    pub rec: &'a csv::ByteRecord,
    pub header: &'a crate::detect::Header,
}

impl Row<'_> {
    pub(crate) fn raw(&self, col: Option<usize>) -> &[u8] {
        col.and_then(|i| self.rec.get(i))
            .map(trim)
            .unwrap_or_default()
    }
    fn name(&self, col: Option<usize>) -> &str {
        col.and_then(|i| self.header.names.get(i))
            .map(String::as_str)
            .unwrap_or("?")
    }
    /// Non-empty text.
    pub fn text(&self, col: Option<usize>) -> Option<String> {
        let r = self.raw(col);
        (!r.is_empty()).then(|| String::from_utf8_lossy(r).into_owned())
    }
    /// A number; empty → `None`; anything else that is not a finite number → rejected.
    /// A decimal comma (`112,4`) is accepted.
    pub fn num(&self, col: Option<usize>) -> Result<Option<f64>, RowErr> {
        let r = self.raw(col);
        if r.is_empty() {
            return Ok(None);
        }
        let s = String::from_utf8_lossy(r);
        let v = s
            .parse::<f64>()
            .ok()
            .or_else(|| s.replace(',', ".").parse::<f64>().ok());
        match v {
            Some(v) if v.is_finite() => Ok(Some(v)),
            Some(_) => Err((
                RejectReason::NonFinite,
                format!("{} {}", self.name(col), show(r)),
            )),
            None => Err((
                RejectReason::NonNumeric,
                format!("{} {}", self.name(col), show(r)),
            )),
        }
    }
    /// A whole non-negative number; empty → `None`.
    pub fn int(&self, col: Option<usize>) -> Result<Option<u32>, RowErr> {
        match self.num(col)? {
            None => Ok(None),
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) => {
                Ok(Some(v as u32))
            }
            Some(_) => Err((
                RejectReason::OutOfRange,
                format!(
                    "{} {} is not a whole number",
                    self.name(col),
                    show(self.raw(col))
                ),
            )),
        }
    }
    /// A duration (`ss.fff`, `m:ss.fff`, `h:mm:ss.fff`); empty → `None`.
    pub fn dur(&self, col: Option<usize>) -> Result<Option<f64>, RowErr> {
        let r = self.raw(col);
        if r.is_empty() {
            return Ok(None);
        }
        parse_duration_s(&String::from_utf8_lossy(r))
            .map(Some)
            .ok_or_else(|| {
                (
                    RejectReason::BadTime,
                    format!("{} {}", self.name(col), show(r)),
                )
            })
    }
}

/// Reads every row of a small table with `f`, counting refusals.
pub(crate) fn read_rows<R: Read, T>(
    reader: R,
    kind: FileKind,
    required: &[&str],
    mut f: impl FnMut(&Row<'_>, &crate::detect::Header) -> Result<T, RowErr>,
) -> Result<Table<T>, Error> {
    let mut opened = open(reader, csv::Trim::All)?;
    require(&opened.header, kind, required)?;
    let mut table = Table::default();
    let mut rec = csv::ByteRecord::new();
    while opened.reader.read_byte_record(&mut rec)? {
        if rec.iter().all(|f| trim(f).is_empty()) {
            continue;
        }
        table.rows_read += 1;
        let line = crate::table::line_of(&rec, opened.line_offset);
        let row = Row {
            rec: &rec,
            header: &opened.header,
        };
        match f(&row, &opened.header) {
            Ok(t) => {
                table.records.push(t);
                table.lines.push(line);
            }
            Err((reason, detail)) => table.rejects.add(line, reason, || detail),
        }
    }
    Ok(table)
}

/// A gap to another car.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gap {
    /// A time gap, seconds.
    Time(f64),
    /// One or more laps down.
    Laps(u32),
}

fn parse_gap(row: &Row<'_>, col: Option<usize>) -> Result<Option<Gap>, RowErr> {
    let Some(t) = row.text(col) else {
        return Ok(None);
    };
    let t = t.trim().trim_start_matches('+').trim();
    if t == "-" || t.is_empty() {
        return Ok(None);
    }
    let lower = t.to_ascii_lowercase();
    if let Some(n) = lower
        .strip_suffix("laps")
        .or_else(|| lower.strip_suffix("lap"))
    {
        if let Ok(n) = n.trim().parse::<u32>() {
            return Ok(Some(Gap::Laps(n)));
        }
    }
    row.dur(col).map(|d| d.map(Gap::Time))
}

/// One car's line in a results file.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceResult {
    /// Finishing position (`None` when the file gives text such as `DNF`).
    pub position: Option<u32>,
    /// Car number label as written (`021` ≠ `21`).
    pub car_number: String,
    /// The car's id in this race: the number, or the number and what tells two cars of
    /// one number apart (`3-Legends`, `3#2`; see the crate's car-id rule).
    pub car_id: String,
    /// `GROUP` (`Legends`...), trimmed.
    pub group: Option<String>,
    /// `Classified`, `DNF`, ... as written.
    pub status: Option<String>,
    /// Laps completed.
    pub laps: Option<u32>,
    pub total_time_s: Option<f64>,
    pub gap_first: Option<Gap>,
    pub gap_previous: Option<Gap>,
    /// Lap number of the car's fastest lap.
    pub fastest_lap: Option<u32>,
    pub fastest_lap_time_s: Option<f64>,
    pub fastest_lap_kph: Option<f64>,
    pub class: Option<String>,
}

/// Reads `03_Results*` / `00_Results*` (`POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST;
/// GAP_PREVIOUS;FL_LAPNUM;FL_TIME;FL_KPH;CLASS;...`). Required: `POSITION`, `NUMBER`.
/// `POSITION` may be written `1.0`; text there (`DNF`) leaves the position empty and is
/// noted. One number on two cars gets two ids (see the module `ids` rule, in
/// [`RaceResult::car_id`]).
pub fn read_results<R: Read>(reader: R) -> Result<Table<RaceResult>, Error> {
    let mut bad_positions: Vec<String> = Vec::new();
    let mut t = read_rows(
        reader,
        FileKind::Results,
        &["POSITION", "NUMBER"],
        |row, h| {
            let car_number = row
                .text(h.find("NUMBER"))
                .ok_or((RejectReason::MissingField, "NUMBER is empty".to_string()))?;
            let pos_col = h.find("POSITION");
            let position = match row.int(pos_col) {
                Ok(p) => p,
                Err(_) => {
                    bad_positions.push(format!("{car_number}: {}", show(row.raw(pos_col))));
                    None
                }
            };
            Ok(RaceResult {
                position,
                car_id: car_number.clone(),
                car_number,
                group: row.text(h.find("GROUP")),
                status: row.text(h.find("STATUS")),
                laps: row.int(h.find("LAPS"))?,
                total_time_s: row.dur(h.find("TOTAL_TIME"))?,
                gap_first: parse_gap(row, h.find("GAP_FIRST"))?,
                gap_previous: parse_gap(row, h.find("GAP_PREVIOUS"))?,
                fastest_lap: row.int(h.find("FL_LAPNUM"))?,
                fastest_lap_time_s: row.dur(h.find("FL_TIME"))?,
                fastest_lap_kph: row.num(h.find("FL_KPH"))?,
                class: row.text(h.find("CLASS")),
            })
        },
    )?;
    if !bad_positions.is_empty() {
        t.notes.push(format!(
            "results: POSITION is not a number for {} car(s), position left empty: {}",
            bad_positions.len(),
            bad_positions.join(", ")
        ));
    }
    let keys: Vec<crate::ids::CarKey<'_>> = t
        .records
        .iter()
        .zip(&t.lines)
        .map(|(r, &line)| crate::ids::CarKey {
            number: &r.car_number,
            group: r.group.as_deref(),
            class: r.class.as_deref(),
            lap: None,
            line,
        })
        .collect();
    let (ids, notes) = crate::ids::assign_car_ids(&keys, "results");
    for (r, id) in t.records.iter_mut().zip(ids) {
        r.car_id = id;
    }
    t.notes.extend(notes);
    Ok(t)
}

/// One of a driver's best laps.
#[derive(Debug, Clone, PartialEq)]
pub struct BestLap {
    /// 1 = best.
    pub rank: u32,
    /// The lap number it was set on.
    pub lap: Option<u32>,
    pub lap_time_s: f64,
}

/// One car's line in `99_Best 10 Laps By Driver*`.
#[derive(Debug, Clone, PartialEq)]
pub struct BestLaps {
    /// Car number label as written.
    pub car_number: String,
    pub vehicle: Option<String>,
    pub class: Option<String>,
    pub total_driver_laps: Option<u32>,
    /// The best laps in rank order (empty cells skipped).
    pub best: Vec<BestLap>,
}

/// Reads a best-laps file (`NUMBER;VEHICLE;CLASS;TOTAL_DRIVER_LAPS;BESTLAP_1;
/// BESTLAP_1_LAPNUM;...`). Required: `NUMBER`, `BESTLAP_1`.
pub fn read_best_laps<R: Read>(reader: R) -> Result<Table<BestLaps>, Error> {
    read_rows(
        reader,
        FileKind::BestLaps,
        &["NUMBER", "BESTLAP_1"],
        |row, h| {
            let car_number = row
                .text(h.find("NUMBER"))
                .ok_or((RejectReason::MissingField, "NUMBER is empty".to_string()))?;
            let mut best = Vec::new();
            for k in 1..=50u32 {
                let Some(col) = h.find(&format!("BESTLAP_{k}")) else {
                    break;
                };
                if let Some(t) = row.dur(Some(col))? {
                    best.push(BestLap {
                        rank: k,
                        lap: row.int(h.find(&format!("BESTLAP_{k}_LAPNUM")))?,
                        lap_time_s: t,
                    });
                }
            }
            Ok(BestLaps {
                car_number,
                vehicle: row.text(h.find("VEHICLE")),
                class: row.text(h.find("CLASS")),
                total_driver_laps: row.int(h.find("TOTAL_DRIVER_LAPS"))?,
                best,
            })
        },
    )
}

/// One weather reading (`26_Weather*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Weather {
    /// `TIME_UTC_SECONDS`, Unix seconds.
    pub time_utc_s: Option<f64>,
    /// `TIME_UTC_STR` as written.
    pub time_utc: Option<String>,
    pub air_temp_c: Option<f64>,
    /// `None` where the file says 0 (not measured).
    pub track_temp_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    /// `PRESSURE` in the file's unit (not documented; hPa/mbar in practice).
    pub pressure: Option<f64>,
    /// `WIND_SPEED` in the file's unit (not documented).
    pub wind_speed: Option<f64>,
    pub wind_direction_deg: Option<f64>,
    /// `RAIN` as given (0 = dry).
    pub rain: Option<f64>,
}

/// Reads a weather file (`TIME_UTC_SECONDS;TIME_UTC_STR;AIR_TEMP;TRACK_TEMP;HUMIDITY;
/// PRESSURE;WIND_SPEED;WIND_DIRECTION;RAIN`). Required: `AIR_TEMP`, `TRACK_TEMP`.
/// `TRACK_TEMP` 0 is read as missing.
pub fn read_weather<R: Read>(reader: R) -> Result<Table<Weather>, Error> {
    read_rows(
        reader,
        FileKind::Weather,
        &["AIR_TEMP", "TRACK_TEMP"],
        |row, h| {
            Ok(Weather {
                time_utc_s: row.num(h.find("TIME_UTC_SECONDS"))?,
                time_utc: row.text(h.find("TIME_UTC_STR")),
                air_temp_c: row.num(h.find("AIR_TEMP"))?,
                track_temp_c: row.num(h.find("TRACK_TEMP"))?.filter(|t| *t != 0.0),
                humidity_pct: row.num(h.find("HUMIDITY"))?,
                pressure: row.num(h.find("PRESSURE"))?,
                wind_speed: row.num(h.find("WIND_SPEED"))?,
                wind_direction_deg: row.num(h.find("WIND_DIRECTION"))?,
                rain: row.num(h.find("RAIN"))?,
            })
        },
    )
}

/// One row of a file kept as (column, value) pairs, for files PitWall stores but does not
/// interpret: results by class (`CLASS_TYPE;POS;PIC;NUMBER;...`) and championship
/// standings (`Pos;Participant;Points;Number;...`).
pub type Fields = Vec<(String, String)>;

/// Reads a results-by-class or championship file as rows of (column, value), empty values
/// and empty column names left out. Required: `NUMBER`.
pub fn read_fields<R: Read>(reader: R, kind: FileKind) -> Result<Table<Fields>, Error> {
    read_rows(reader, kind, &["NUMBER"], |row, h| {
        let mut v = Fields::new();
        for (i, name) in h.names.iter().enumerate() {
            if name.trim().is_empty() {
                continue;
            }
            if let Some(t) = row.text(Some(i)) {
                v.push((name.trim().to_string(), t));
            }
        }
        if row.text(h.find("NUMBER")).is_none() {
            return Err((RejectReason::MissingField, "NUMBER is empty".to_string()));
        }
        Ok(v)
    })
}
