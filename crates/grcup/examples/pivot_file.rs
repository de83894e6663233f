//! Streams a long-format telemetry file through the pivot and prints the counters.
//!
//! `pivot_file FILE` pivots FILE; `pivot_file --generate ROWS FILE` first writes ROWS
//! synthetic rows to FILE (20 cars).

use grcup::{LongPivot, PivotConfig};
use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, rows, path] if flag == "--generate" => {
            let rows: usize = rows.parse()?;
            let mut w = BufWriter::new(File::create(path)?);
            let bytes = grcup::synth::write_long_csv(&mut w, rows, 20)?;
            drop(w);
            eprintln!("wrote {rows} rows, {bytes} bytes to {path}");
            return Ok(());
        }
        [path] => path.clone(),
        _ => {
            eprintln!("usage: pivot_file FILE | pivot_file --generate ROWS FILE");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut pivot = LongPivot::new(File::open(&path)?, PivotConfig::new("file"))?;
    let mut samples = 0u64;
    let stats = pivot.for_each_sample(|_| samples += 1)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rows {} in {secs:.2} s = {:.0} rows/s; samples {samples}; vehicles {}; rejected {}; laps repaired {} ({} samples); unknown-channel rows {}",
        stats.rows_read,
        stats.rows_read as f64 / secs,
        stats.vehicles,
        stats.rows_rejected(),
        stats.laps_repaired,
        stats.samples_lap_repaired,
        stats.rows_unknown_channel
    );
    Ok(())
}
