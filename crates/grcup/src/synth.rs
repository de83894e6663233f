//! Synthetic long-format telemetry, for benchmarks and load tests (not real data).

use std::io::{self, Write};

/// Header of the long format, as the real files have it.
pub const LONG_HEADER: &str = "expire_at,lap,meta_event,meta_session,meta_source,meta_time,original_vehicle_id,outing,telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number";

fn noisy(v: f64, k: u64) -> f64 {
    // Every third value carries binary float noise (`0.34600000000000003`).
    let r = (v * 1000.0).round() / 1000.0;
    if k.is_multiple_of(3) && r != 0.0 {
        f64::from_bits(r.to_bits() + 1)
    } else {
        r
    }
}

fn fmt_ts(buf: &mut String, ms: i64) {
    use std::fmt::Write as _;
    // 2025-05-30T08:00:00.000Z + ms (stays within one day for < 16 h of data).
    let base_s = 8 * 3600;
    let total_ms = base_s * 1000 + ms;
    let h = total_ms / 3_600_000;
    let m = (total_ms / 60_000) % 60;
    let s = (total_ms / 1000) % 60;
    let f = total_ms % 1000;
    buf.clear();
    let _ = write!(buf, "2025-05-30T{h:02}:{m:02}:{s:02}.{f:03}Z");
}

/// Writes `rows` data rows (plus the header) of long-format telemetry for `vehicles` cars
/// interleaved instant by instant: g sensors, steering, brakes and throttle at 50 Hz; speed,
/// rpm, gear, lap distance and GPS every fifth instant; lap 32768 on a few rows. Returns the
/// bytes written.
pub fn write_long_csv(out: &mut impl Write, rows: usize, vehicles: usize) -> io::Result<u64> {
    let vehicles = vehicles.max(1);
    let mut written = 0u64;
    let mut line = String::with_capacity(256);
    let mut ts = String::with_capacity(32);
    writeln!(out, "{LONG_HEADER}")?;
    written += LONG_HEADER.len() as u64 + 1;
    let lap_len_m = 3700.0;
    let mut n = 0usize;
    let mut instant: i64 = 0;
    'outer: loop {
        fmt_ts(&mut ts, instant * 20);
        for v in 0..vehicles {
            let t_s = instant as f64 * 0.02;
            let speed = 150.0 + 40.0 * (t_s * 0.3 + v as f64).sin();
            let dist_total = t_s * 41.7 + v as f64 * 120.0;
            let lap = (dist_total / lap_len_m) as u64 + 1;
            let lap_dist = dist_total % lap_len_m;
            let lap_field = if (instant as u64 + v as u64) % 997 == 500 {
                32768
            } else {
                lap
            };
            let fast = [
                ("accx_can", 0.6 * (t_s * 1.1 + v as f64).sin()),
                ("accy_can", 1.2 * (t_s * 0.7 + v as f64).cos()),
                ("Steering_Angle", 35.0 * (t_s * 0.7 + v as f64).cos()),
                ("pbrake_f", (20.0 * (t_s * 0.5).sin()).max(0.0)),
                ("pbrake_r", (14.0 * (t_s * 0.5).sin()).max(0.0)),
                ("aps", (100.0 * (t_s * 0.5).cos()).clamp(0.0, 100.0)),
            ];
            let slow = [
                ("speed", speed),
                ("nmot", 5200.0 + 1500.0 * (t_s * 0.9).sin()),
                ("gear", (3.0 + 2.0 * (t_s * 0.2).sin()).round()),
                ("Laptrigger_lapdist_dls", lap_dist),
                ("VBOX_Lat_Min", 33.5326 + 0.001 * (t_s * 0.01).sin()),
                ("VBOX_Long_Minutes", -86.6197 + 0.001 * (t_s * 0.01).cos()),
            ];
            let chans: &[(&str, f64)] = if instant % 5 == 0 {
                &[&fast[..], &slow[..]].concat()
            } else {
                &fast
            };
            for (k, (name, value)) in chans.iter().enumerate() {
                if n >= rows {
                    break 'outer;
                }
                use std::fmt::Write as _;
                line.clear();
                let value = noisy(*value, n as u64 + k as u64);
                let num = 10 + v;
                let _ = writeln!(
                    line,
                    ",{lap_field},I_R09_2025-06-01,R1,kafka:gr-raw,2025-06-01T14:02:11.210Z,GR86-{:03}-{num},0,{name},{value},{ts},GR86-{:03}-{num},{num}",
                    v + 1,
                    v + 1
                );
                out.write_all(line.as_bytes())?;
                written += line.len() as u64;
                n += 1;
            }
        }
        instant += 1;
    }
    Ok(written)
}
