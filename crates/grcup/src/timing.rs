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

/// Reads an official timing file (separator `;` or `,`, stray spaces around fields allowed,
/// columns in any order). Required: `NUMBER`, `LAP_NUMBER`, `LAP_TIME`. A row with an empty
/// car number, a bad lap number, an empty or malformed lap time, or a malformed number or
/// time in another column is refused (counted) and the rest read on.
pub fn read_official_timing<R: Read>(reader: R) -> Result<Table<OfficialLap>, Error> {
    read_rows(
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
                car_number,
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
    )
}
