//! Per-lap records for `pitwall eval --laps`: CSV lap logs (any tool's, by column-name
//! aliases), the official timing of stored sessions, and the laps cut from stored telemetry.
//!
//! CSV columns (header names are matched case-insensitively, ignoring `_`, spaces and
//! punctuation; only `lap` and a lap time are required):
//!
//! | meaning | accepted names |
//! |---|---|
//! | lap number | `lap`, `lap_number`, `laps` |
//! | lap time | `lap_time_s`, `lap_time`, `laptime`, `time_s`, `lap_time_ms` (s; `m:ss.sss` strings too; a column named `…ms`, or whose median is above 1000, is in milliseconds) |
//! | car | `car`, `car_id`, `car_number`, `number`, `driver`, `driver_number`, `vehicle` (default: one car) |
//! | compound | `compound`, `tyre`, `tire`, `tyre_compound`, `tire_compound` |
//! | tyre age | `tyre_age`, `tire_age`, `tyre_age_laps`, `tyre_life`, `tyrelife` |
//! | fuel, kg | `fuel`, `fuel_kg` |
//! | wear per tyre, % | `wear_fl`, `fl_wear`, `FLWear`, `tyre_wear_fl`, `tire_wear_fl_pct`… (and fr, rl, rr) |
//! | pit-in lap | `pit`, `pit_in`, `in_lap` (1/true/yes/Y/B) |
//! | out-lap | `out_lap`, `pit_out` |
//! | flag | `flag`, `track_status`, `flag_at_fl` (`GF`/`FF`/`green`/empty = green, anything else yellow), or a yes/no column `yellow`, `fcy`, `sc`, `safety_car` |
//!
//! Rules: a lap after a pit-in lap is an out-lap; with a `flag` column a lap after a non-green
//! lap is yellow too (the flag is the one shown at the line, so the next lap started under
//! it); the session's lap 1 is the start lap (an out-lap). When a car's lap numbers restart
//! (the F1 game long runs of `f1-game-laps/*.csv`, `Lap,LapTime,DRS,Fuel,Compound,FLWear,…`,
//! where `Lap` restarts at 1 with each set of tyres), the file is a stint log: the lap column
//! is the tyre age, laps are renumbered through the file (a lap's gap kept), and no lap is a
//! start lap.

use anyhow::{bail, Context};
use std::path::Path;
use tires::{LapLog, LapSession};

/// Header normalised: lower case, letters and digits only.
fn norm(h: &str) -> String {
    h.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[derive(Default, Debug)]
struct Cols {
    lap: Option<usize>,
    time: Option<(usize, bool)>,
    car: Option<usize>,
    compound: Option<usize>,
    age: Option<usize>,
    fuel: Option<usize>,
    wear: [Option<usize>; 4],
    pit: Option<usize>,
    out: Option<usize>,
    flag: Option<usize>,
    yellow: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> Cols {
    let mut c = Cols::default();
    for (i, h) in header.iter().enumerate() {
        let n = norm(h);
        let first = |slot: &mut Option<usize>| {
            if slot.is_none() {
                *slot = Some(i);
            }
        };
        match n.as_str() {
            "lap" | "lapnumber" | "laps" | "lapno" => first(&mut c.lap),
            "laptimes" | "laptime" | "laptimesec" | "times" | "laptimeseconds" => {
                if c.time.is_none() {
                    c.time = Some((i, false));
                }
            }
            "laptimems" | "laptimemillis" | "timems" => {
                if c.time.is_none() {
                    c.time = Some((i, true));
                }
            }
            "car" | "carid" | "carnumber" | "number" | "driver" | "drivernumber" | "vehicle"
            | "vehicleid" | "carno" => first(&mut c.car),
            "compound" | "tyre" | "tire" | "tyrecompound" | "tirecompound" => {
                first(&mut c.compound)
            }
            "tyreage" | "tireage" | "tyreagelaps" | "tireagelaps" | "tyrelife" | "tirelife" => {
                first(&mut c.age)
            }
            "fuel" | "fuelkg" | "fuelinkg" => first(&mut c.fuel),
            "pit" | "pitin" | "inlap" | "pitinlap" => first(&mut c.pit),
            "outlap" | "pitout" | "pitoutlap" => first(&mut c.out),
            "flag" | "trackstatus" | "flagatfl" => first(&mut c.flag),
            "yellow" | "fcy" | "sc" | "safetycar" => first(&mut c.yellow),
            _ => {
                if n.contains("wear") {
                    let rest = n
                        .replace("wear", "")
                        .replace("tyre", "")
                        .replace("tire", "")
                        .replace("percent", "")
                        .replace("pct", "");
                    let k = match rest.as_str() {
                        "fl" => Some(0),
                        "fr" => Some(1),
                        "rl" => Some(2),
                        "rr" => Some(3),
                        _ => None,
                    };
                    if let Some(k) = k {
                        first(&mut c.wear[k]);
                    }
                }
            }
        }
    }
    c
}

/// A lap time: seconds, `m:ss.sss` or `h:mm:ss.sss`.
fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for part in s.split(':') {
        let v: f64 = part.trim().parse().ok()?;
        total = total * 60.0 + v;
    }
    total.is_finite().then_some(total)
}

fn parse_bool(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "b" | "t" | "in" | "pit"
    )
}

pub use analysis::flag_is_green;

/// Reads one CSV lap log into a session named after the file.
pub fn read_csv(path: &Path) -> anyhow::Result<LapSession> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // Semicolon-separated files (the GR Cup exports) as well as commas.
    let first = text.lines().next().unwrap_or("");
    let delim = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut rd = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = rd.headers()?.clone();
    let c = columns(&header);
    let (Some(lap_i), Some((time_i, mut ms))) = (c.lap, c.time) else {
        bail!(
            "{}: needs a lap column and a lap-time column (found {:?}); see `pitwall eval --help`",
            path.display(),
            header.iter().collect::<Vec<_>>()
        );
    };
    struct Raw {
        car: String,
        lap: u32,
        t: Option<f64>,
        rec: csv::StringRecord,
    }
    let mut raws = Vec::new();
    for (n, rec) in rd.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), n + 2))?;
        let Some(lap) = rec.get(lap_i).and_then(|v| v.trim().parse::<f64>().ok()) else {
            continue;
        };
        if !(0.0..1e6).contains(&lap) {
            continue;
        }
        let car = c
            .car
            .and_then(|i| rec.get(i))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "car".into());
        let t = rec.get(time_i).and_then(parse_time);
        raws.push(Raw {
            car,
            lap: lap as u32,
            t,
            rec,
        });
    }
    if raws.is_empty() {
        bail!("{}: no lap rows", path.display());
    }
    if !ms {
        let mut ts: Vec<f64> = raws.iter().filter_map(|r| r.t).collect();
        ts.sort_by(f64::total_cmp);
        ms = ts.get(ts.len() / 2).is_some_and(|m| *m > 1000.0);
    }
    // A stint log when some car's lap numbers go down (rows in file order).
    let mut last: std::collections::HashMap<&str, u32> = Default::default();
    let mut stint_log = false;
    for r in &raws {
        if let Some(p) = last.insert(r.car.as_str(), r.lap) {
            if r.lap <= p {
                stint_log = true;
            }
        }
    }
    fn get(rec: &csv::StringRecord, i: Option<usize>) -> Option<&str> {
        i.and_then(|i| rec.get(i)).map(str::trim)
    }
    let num = |rec: &csv::StringRecord, i: Option<usize>| {
        get(rec, i)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let mut laps: Vec<LapLog> = Vec::with_capacity(raws.len());
    let mut offset: std::collections::HashMap<String, (u32, u32)> = Default::default();
    for r in &raws {
        let (lap, age_from_lap) = if stint_log {
            let e = offset.entry(r.car.clone()).or_insert((0, 0));
            if r.lap <= e.1 {
                // New stint: continue the numbering after the last lap, one lap for the stop.
                e.0 += e.1 + 1;
            }
            e.1 = r.lap;
            (e.0 + r.lap, Some(r.lap))
        } else {
            (r.lap, None)
        };
        let wear: [Option<f64>; 4] = std::array::from_fn(|k| num(&r.rec, c.wear[k]));
        let flag_yellow = get(&r.rec, c.flag).is_some_and(|f| !flag_is_green(f));
        laps.push(LapLog {
            car_id: r.car.clone(),
            lap,
            lap_time_s: r.t.map_or(f64::NAN, |t| if ms { t / 1000.0 } else { t }),
            pit_in: get(&r.rec, c.pit).is_some_and(parse_bool),
            out_lap: get(&r.rec, c.out).is_some_and(parse_bool),
            yellow: flag_yellow || get(&r.rec, c.yellow).is_some_and(parse_bool),
            compound: get(&r.rec, c.compound)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            tyre_age_laps: num(&r.rec, c.age)
                .filter(|v| *v >= 0.0 && *v < 1e6)
                .map(|v| v as u32)
                .or(age_from_lap),
            fuel_kg: num(&r.rec, c.fuel),
            wear_pct: wear
                .iter()
                .all(Option::is_some)
                .then(|| std::array::from_fn(|k| wear[k].unwrap_or(0.0))),
        });
    }
    if c.flag.is_some() {
        tires::mark_restart_laps(&mut laps);
    }
    if !stint_log && c.out.is_none() {
        for l in &mut laps {
            if l.lap == 1 {
                l.out_lap = true;
            }
        }
    }
    tires::mark_out_laps(&mut laps);
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(LapSession { id, laps })
}

/// The official timing of a stored session as lap logs, as the timing-only analysis reads it
/// ([`analysis::lap_logs_of_timing`]): a flag not green (GF/FF) makes the lap and the next one
/// yellow; pit-in laps; the lap after a pit-in and lap 1 (the start) are out-laps.
pub fn from_official(id: &str, rows: &[store::OfficialLapRow]) -> LapSession {
    LapSession {
        id: id.to_string(),
        laps: analysis::lap_logs_of_timing(&server::stored::timed_of_official(rows)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn f1_stint_log_layout_is_read_by_aliases() {
        let d = tempfile::tempdir().unwrap();
        // Made-up numbers in the layout of f1-game-laps/*.csv (not data from there).
        let p = write(
            d.path(),
            "Track.csv",
            "Lap,LapTime,DRS,Fuel,Compound,FLWear,FRWear,RLWear,RRWear\n\
             1,80100,0,20.0,Soft,2.0,1.9,1.8,1.7\n\
             2,80000,0,18.5,Soft,4.0,3.8,3.6,3.4\n\
             4,80300,0,15.5,Soft,8.0,7.6,7.2,6.8\n\
             1,81000,0,20.0,Hard,1.0,1.0,1.0,1.0\n\
             2,80900,0,18.5,Hard,2.0,2.0,2.0,2.0\n",
        );
        let s = read_csv(&p).unwrap();
        assert_eq!(s.id, "Track");
        let l = &s.laps;
        assert_eq!(l.len(), 5);
        assert_eq!(
            l.iter().map(|l| l.lap).collect::<Vec<_>>(),
            vec![1, 2, 4, 6, 7]
        );
        assert_eq!(
            l.iter().map(|l| l.tyre_age_laps).collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(4), Some(1), Some(2)]
        );
        assert!((l[0].lap_time_s - 80.1).abs() < 1e-9, "milliseconds");
        assert_eq!(l[3].compound.as_deref(), Some("Hard"));
        assert_eq!(l[2].wear_pct, Some([8.0, 7.6, 7.2, 6.8]));
        assert_eq!(l[1].fuel_kg, Some(18.5));
        assert!(
            l.iter().all(|l| l.is_green()),
            "a stint log has no start lap"
        );
    }

    #[test]
    fn race_log_flags_pits_and_start() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "race.csv",
            "car_number;lap;lap_time;pit_in;flag\n\
             7;1;1:40.5;0;GF\n7;2;99.0;0;FCY\n7;3;130.0;0;GF\n7;4;99.2;1;GF\n7;5;120.0;0;GF\n7;6;99.1;0;FF\n",
        );
        let s = read_csv(&p).unwrap();
        let g: Vec<bool> = s.laps.iter().map(LapLog::is_green).collect();
        // lap 1 start, 2 FCY, 3 started under FCY, 4 pit-in, 5 out-lap, 6 green.
        assert_eq!(g, vec![false, false, false, false, false, true]);
        assert!((s.laps[0].lap_time_s - 100.5).abs() < 1e-9);
    }

    #[test]
    fn missing_columns_are_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "x.csv", "a,b\n1,2\n");
        assert!(read_csv(&p).is_err());
    }
}
