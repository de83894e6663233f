//! Official timing with sectors (`23_AnalysisEnduranceWithSections_*`).

use crate::detect::FileKind;
use crate::error::Error;
use crate::official::read_rows;
use crate::rejects::RejectReason;
use crate::table::Table;
use std::io::Read;

/// The flag at the finish line for a lap (`FLAG_AT_FL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `GF`.
    Green,
    /// `FCY`, full-course yellow.
    Fcy,
    /// `FF`, the finish.
    Finish,
    /// Anything else, or empty.
    Other,
}

impl Flag {
    /// Reads `FLAG_AT_FL`.
    pub fn parse(s: &str) -> Flag {
        match s.trim().to_ascii_uppercase().as_str() {
            "GF" | "GREEN" => Flag::Green,
            "FCY" => Flag::Fcy,
            "FF" | "FINISH" => Flag::Finish,
            _ => Flag::Other,
        }
    }
}

/// One lap of one car from the official timing.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialLap {
    /// `NUMBER`, a label as written (`021` ≠ `21`).
    pub car_number: String,
    /// The car's id in this race: the number, or the number and what tells two cars of
    /// one number apart (`3-Legends` by GROUP, `3#2` by lap sequence); see the crate docs.
    pub car_id: String,
    /// `GROUP` (`Legends`...), trimmed.
    pub group: Option<String>,
    pub driver_number: Option<u32>,
    pub lap: u32,
    pub lap_time_s: f64,
    /// S1-S3: `S{n}_SECONDS` where present, else `S{n}` (`ss.fff` or `m:ss.fff`).
    pub sector_times_s: [Option<f64>; 3],
    /// `CROSSING_FINISH_LINE_IN_PIT` is non-empty.
    pub pit_in: bool,
    /// `PIT_TIME` (`h:mm:ss.fff`), `None` without a stop.
    pub pit_time_s: Option<f64>,
    pub flag: Flag,
    /// `ELAPSED`, race time at the end of the lap.
    pub elapsed_s: Option<f64>,
    /// `KPH`, the lap's average speed.
    pub kph: Option<f64>,
    /// `TOP_SPEED`, km/h.
    pub top_speed_kmh: Option<f64>,
    pub class: Option<String>,
    pub driver_name: Option<String>,
    pub team: Option<String>,
    /// `HOUR`, the time of day as written.
    pub hour: Option<String>,
}

/// (car, GROUP, CLASS, lap, lap time bits, elapsed bits): an exact repeat of a lap.
type LapKey = (
    String,
    Option<String>,
    Option<String>,
    u32,
    u64,
    Option<u64>,
);

/// Reads an official timing file (separator `;` or `,`, stray spaces around fields allowed,
/// columns in any order). Required: `NUMBER`, `LAP_NUMBER`, `LAP_TIME`. A row with an empty
/// car number, a bad lap number, an empty or malformed lap time, or a malformed number or
/// time in another column is refused (counted) and the rest read on.
///
/// One number on two cars: rows of one `NUMBER` with different GROUP/CLASS are two cars;
/// rows with the same GROUP/CLASS whose lap numbers restart are split by lap sequence;
/// each split is in [`Table::notes`] and sets [`OfficialLap::car_id`]. A row identical to
/// an earlier row of its car and lap (lap time and elapsed time) is refused as a duplicate.
pub fn read_official_timing<R: Read>(reader: R) -> Result<Table<OfficialLap>, Error> {
    let mut t = read_rows(
        reader,
        FileKind::OfficialTiming,
        &["NUMBER", "LAP_NUMBER", "LAP_TIME"],
        |row, h| {
            let car_number = row
                .text(h.find("NUMBER"))
                .ok_or((RejectReason::MissingField, "NUMBER is empty".to_string()))?;
            let lap = row
                .int(h.find("LAP_NUMBER"))
                .map_err(|(_, d)| (RejectReason::BadLap, d))?
                .ok_or((RejectReason::BadLap, "LAP_NUMBER is empty".to_string()))?;
            let lap_time_s = row
                .dur(h.find("LAP_TIME"))?
                .ok_or((RejectReason::BadTime, "LAP_TIME is empty".to_string()))?;
            let mut sector_times_s = [None; 3];
            for (k, slot) in sector_times_s.iter_mut().enumerate() {
                let n = k + 1;
                *slot = match row.num(h.find(&format!("S{n}_SECONDS")))? {
                    Some(v) => Some(v),
                    None => row.dur(h.find(&format!("S{n}")))?,
                };
            }
            let driver_name = row.text(h.find("DRIVER_NAME")).or_else(|| {
                let first = row.text(h.find("DRIVER_FIRSTNAME"));
                let second = row.text(h.find("DRIVER_SECONDNAME"));
                match (first, second) {
                    (Some(a), Some(b)) => Some(format!("{a} {b}")),
                    (a, b) => a.or(b),
                }
            });
            Ok(OfficialLap {
                car_id: car_number.clone(),
                car_number,
                group: row.text(h.find("GROUP")),
                driver_number: row.int(h.find("DRIVER_NUMBER"))?,
                lap,
                lap_time_s,
                sector_times_s,
                pit_in: row.text(h.find("CROSSING_FINISH_LINE_IN_PIT")).is_some(),
                pit_time_s: row.dur(h.find("PIT_TIME"))?,
                flag: row
                    .text(h.find("FLAG_AT_FL"))
                    .map(|f| Flag::parse(&f))
                    .unwrap_or(Flag::Other),
                elapsed_s: row.dur(h.find("ELAPSED"))?,
                kph: row.num(h.find("KPH"))?,
                top_speed_kmh: row.num(h.find("TOP_SPEED"))?,
                class: row.text(h.find("CLASS")),
                driver_name,
                team: row.text(h.find("TEAM")),
                hour: row.text(h.find("HOUR")),
            })
        },
    )?;
    // Exact repeats of a lap (same car, GROUP, CLASS, lap, lap time, elapsed) are duplicates.
    let mut seen: std::collections::HashSet<LapKey> = std::collections::HashSet::new();
    let mut keep_records = Vec::with_capacity(t.records.len());
    let mut keep_lines = Vec::with_capacity(t.records.len());
    for (r, line) in std::mem::take(&mut t.records)
        .into_iter()
        .zip(std::mem::take(&mut t.lines))
    {
        let key = (
            r.car_number.clone(),
            r.group.clone(),
            r.class.clone(),
            r.lap,
            r.lap_time_s.to_bits(),
            r.elapsed_s.map(f64::to_bits),
        );
        if !seen.insert(key) {
            t.rejects.add(line, RejectReason::Duplicate, || {
                format!(
                    "car {} lap {} repeated with the same times",
                    r.car_number, r.lap
                )
            });
            continue;
        }
        keep_records.push(r);
        keep_lines.push(line);
    }
    t.records = keep_records;
    t.lines = keep_lines;
    let keys: Vec<crate::ids::CarKey<'_>> = t
        .records
        .iter()
        .zip(&t.lines)
        .map(|(r, &line)| crate::ids::CarKey {
            number: &r.car_number,
            group: r.group.as_deref(),
            class: r.class.as_deref(),
            lap: Some(r.lap),
            line,
        })
        .collect();
    let (ids, notes) = crate::ids::assign_car_ids(&keys, "timing");
    for (r, id) in t.records.iter_mut().zip(ids) {
        r.car_id = id;
    }
    t.notes.extend(notes);
    Ok(t)
}
