//! Writer of the GR Cup long telemetry CSV format (one row per car, instant and channel), as
//! described in `shared/data/gr-cup/FORMATS.md`, plus ground-truth channels.
//!
//! Header: `expire_at,lap,meta_event,meta_session,meta_source,meta_time,original_vehicle_id,
//! outing,telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number`.
//!
//! Channels (only those the sample has): `speed` (km/h), `gear`, `nmot` (rpm), `aps`
//! (throttle %), `pbrake_f`, `pbrake_r` (bar), `accx_can`, `accy_can` (g), `Steering_Angle`
//! (deg), `Laptrigger_lapdist_dls` (m), `VBOX_Lat_Min`, `VBOX_Long_Minutes` (degrees, as in the
//! real files), and the ground-truth extras `tyre_wear_fl`, `tyre_wear_fr`, `tyre_wear_rl`,
//! `tyre_wear_rr` (%), `fuel_kg`, `position`, `pit_status` (0 none, 1 pit lane, 2 in the box),
//! `tyre_age_laps`. `meta_event` is the session id, `timestamp` and `meta_time` are both the
//! session start plus `t_s` (ISO 8601 UTC, milliseconds), `vehicle_number` is the last
//! `-`-separated part of the car id (0 when it is not a number).

use std::io::{self, Write};
use telemetry::Sample;

/// The header line of the long format (without newline).
pub const LONG_CSV_HEADER: &str = "expire_at,lap,meta_event,meta_session,meta_source,meta_time,original_vehicle_id,outing,telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number";

/// Options of the long CSV writer.
#[derive(Debug, Clone, PartialEq)]
pub struct LongCsvOptions {
    /// Unix time of session time 0, seconds. Default 2025-06-01T14:00:00Z.
    pub start_unix_s: i64,
    /// `meta_session` column. Default `R1`.
    pub meta_session: String,
    /// `meta_source` column. Default `sim`.
    pub meta_source: String,
}

impl Default for LongCsvOptions {
    fn default() -> Self {
        LongCsvOptions {
            start_unix_s: 1_748_786_400,
            meta_session: "R1".into(),
            meta_source: "sim".into(),
        }
    }
}

/// Streams samples as long-format rows; the header is written on creation.
pub struct LongCsvWriter<W: Write> {
    w: W,
    opts: LongCsvOptions,
    rows: u64,
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO 8601 UTC with milliseconds for a Unix time in milliseconds.
fn iso_ms(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let h = ms_of_day / 3_600_000;
    let mi = (ms_of_day / 60_000) % 60;
    let s = (ms_of_day / 1000) % 60;
    let ms = ms_of_day % 1000;
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

impl<W: Write> LongCsvWriter<W> {
    /// Creates the writer and writes the header.
    pub fn new(mut w: W, opts: LongCsvOptions) -> io::Result<Self> {
        writeln!(w, "{LONG_CSV_HEADER}")?;
        Ok(LongCsvWriter { w, opts, rows: 0 })
    }

    /// Writes every channel of one sample; returns the number of rows written.
    pub fn write_sample(&mut self, s: &Sample) -> io::Result<u64> {
        let mut ch: Vec<(&str, String)> = Vec::with_capacity(22);
        let mut f = |name: &'static str, v: Option<f64>| {
            if let Some(x) = v.filter(|x| x.is_finite()) {
                ch.push((name, format!("{x}")));
            }
        };
        f("speed", s.speed_kmh);
        f("gear", s.gear.map(f64::from));
        f("nmot", s.rpm);
        f("aps", s.throttle_pct);
        f("pbrake_f", s.brake_front_bar);
        f("pbrake_r", s.brake_rear_bar);
        f("accx_can", s.accx_g);
        f("accy_can", s.accy_g);
        f("Steering_Angle", s.steering_deg);
        f("Laptrigger_lapdist_dls", s.lap_dist_m);
        f("VBOX_Lat_Min", s.lat_deg);
        f("VBOX_Long_Minutes", s.lon_deg);
        if let Some(w) = s.tyre_wear_pct {
            f("tyre_wear_fl", Some(w.fl));
            f("tyre_wear_fr", Some(w.fr));
            f("tyre_wear_rl", Some(w.rl));
            f("tyre_wear_rr", Some(w.rr));
        }
        f("fuel_kg", s.fuel_kg);
        f("position", s.position.map(f64::from));
        f("pit_status", s.pit_status.map(|p| f64::from(p.code())));
        f("tyre_age_laps", s.tyre_age_laps.map(f64::from));
        let t_ms = if s.t_s.is_finite() {
            (s.t_s * 1000.0).round() as i64
        } else {
            0
        };
        let ts = iso_ms(
            self.opts
                .start_unix_s
                .saturating_mul(1000)
                .saturating_add(t_ms),
        );
        let id = quote(&s.car_id);
        let number: u32 = s
            .car_id
            .rsplit('-')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let lap = s.lap.map(|l| l.to_string()).unwrap_or_default();
        let event = quote(&s.session_id);
        let session = quote(&self.opts.meta_session);
        let source = quote(&self.opts.meta_source);
        for (name, value) in &ch {
            writeln!(
                self.w,
                ",{lap},{event},{session},{source},{ts},{id},0,{name},{value},{ts},{id},{number}"
            )?;
        }
        self.rows += ch.len() as u64;
        Ok(ch.len() as u64)
    }

    /// Rows written so far (without the header).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Writes `samples` in the GR Cup long CSV format (header included) with default options;
/// returns the number of data rows.
pub fn write_long_csv<'a, I, W>(samples: I, w: W) -> io::Result<u64>
where
    I: IntoIterator<Item = &'a Sample>,
    W: Write,
{
    let mut wr = LongCsvWriter::new(w, LongCsvOptions::default())?;
    for s in samples {
        wr.write_sample(s)?;
    }
    let rows = wr.rows();
    wr.finish()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{Corners, PitStatus};

    #[test]
    fn iso_time_is_right() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_748_786_400_000), "2025-06-01T14:00:00.000Z");
        assert_eq!(iso_ms(951_782_400_000 + 1), "2000-02-29T00:00:00.001Z");
    }

    #[test]
    fn writes_rows_per_channel() {
        let mut s = Sample::new("sim-Austin-1", "GR86-002-7", 1.25);
        s.lap = Some(4);
        s.speed_kmh = Some(131.5);
        s.gear = Some(3);
        s.tyre_wear_pct = Some(Corners::from_array([1.0, 2.0, 3.0, 4.0]));
        s.pit_status = Some(PitStatus::InPitArea);
        let mut out = Vec::new();
        let rows = write_long_csv([&s], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], LONG_CSV_HEADER);
        assert_eq!(rows, 7);
        assert_eq!(lines.len(), 8);
        assert_eq!(
            lines[1],
            ",4,sim-Austin-1,R1,sim,2025-06-01T14:00:01.250Z,GR86-002-7,0,speed,131.5,2025-06-01T14:00:01.250Z,GR86-002-7,7"
        );
        assert!(lines.iter().any(|l| l.contains(",tyre_wear_rr,4,")));
        assert!(lines.iter().any(|l| l.contains(",pit_status,2,")));
        for l in &lines {
            assert_eq!(l.split(',').count(), 13);
        }
    }
}
