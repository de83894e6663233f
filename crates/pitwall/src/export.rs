//! `pitwall export`: a stored session's samples to CSV or Parquet (one row per sample, units in
//! the column names), its official laps (if any, with csv) to `<out stem>_laps.csv` and the laps
//! the lap engine cut to `<out stem>_engine_laps.csv`.

use anyhow::Context;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use store::Store;
use telemetry::{Corners, Sample};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated, a header line, empty fields for missing values.
    Csv,
    /// Apache Parquet (Snappy), the same columns, missing values as nulls.
    Parquet,
}

#[derive(Args, Debug)]
#[command(
    after_long_help = "Files written (OUT = --out, STEM = its name without extension):\n\n\
    OUT: the samples, one row per sample, 33 columns with units in their names (session_id, \
    track, car_id, t_s, lap, lap_dist_m, speed_kmh, ...); CSV, or Parquet (Snappy, nulls for \
    missing values).\n\n\
    STEM_laps.csv (--format csv only, sessions imported with official timing): the official laps \
    (car_number, lap, lap_time_s, s1_s..s3_s, pit_in, flag, elapsed_s, driver, team, class).\n\n\
    STEM_engine_laps.csv (both formats, when the session has laps): the laps the lap engine cut \
    (stored live or by `sim`, else cut now from the samples): times, sectors, validity, \
    position, tyres, the 20 lap features (feature_*), the tire model's wear and loss per lap.\n\n\
    stdout: OUT's path; stderr: each file written with its row count."
)]
pub struct ExportArgs {
    /// The session id (see `pitwall sessions`).
    pub session: String,
    /// Output format. Beside OUT: `<stem>_engine_laps.csv` (laps the engine cut, both formats)
    /// and, with csv, `<stem>_laps.csv` (official laps, if any). See `--help`.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Output file for the samples.
    #[arg(long)]
    pub out: PathBuf,
    /// Only this car.
    #[arg(long)]
    pub car: Option<String>,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
}

/// The sample columns, in order.
pub const SAMPLE_COLUMNS: [&str; 33] = [
    "session_id",
    "track",
    "car_id",
    "t_s",
    "lap",
    "lap_dist_m",
    "speed_kmh",
    "accx_g",
    "accy_g",
    "brake_front_bar",
    "brake_rear_bar",
    "throttle_pct",
    "brake_pct",
    "steering_deg",
    "rpm",
    "gear",
    "lat_deg",
    "lon_deg",
    "position",
    "fuel_kg",
    "tyre_compound",
    "tyre_age_laps",
    "pit_status",
    "tyre_wear_fl_pct",
    "tyre_wear_fr_pct",
    "tyre_wear_rl_pct",
    "tyre_wear_rr_pct",
    "tyre_temp_fl_c",
    "tyre_temp_fr_c",
    "tyre_temp_rl_c",
    "tyre_temp_rr_c",
    "track_temp_c",
    "air_temp_c",
];

/// The official lap columns, in order.
pub const LAP_COLUMNS: [&str; 17] = [
    "session_id",
    "car_number",
    "lap",
    "lap_time_s",
    "s1_s",
    "s2_s",
    "s3_s",
    "pit_in",
    "pit_time_s",
    "flag",
    "elapsed_s",
    "kph",
    "top_speed_kmh",
    "driver_number",
    "driver_name",
    "team",
    "class",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn corners(c: Option<Corners<f64>>) -> [String; 4] {
    match c.map(Corners::to_array) {
        Some(a) => a.map(|x| x.to_string()),
        None => Default::default(),
    }
}

fn sample_record(s: &Sample) -> Vec<String> {
    let w = corners(s.tyre_wear_pct);
    let t = corners(s.tyre_temp_c);
    let mut r = vec![
        s.session_id.to_string(),
        opt(s.track.as_deref()),
        s.car_id.to_string(),
        s.t_s.to_string(),
        opt(s.lap),
        opt(s.lap_dist_m),
        opt(s.speed_kmh),
        opt(s.accx_g),
        opt(s.accy_g),
        opt(s.brake_front_bar),
        opt(s.brake_rear_bar),
        opt(s.throttle_pct),
        opt(s.brake_pct),
        opt(s.steering_deg),
        opt(s.rpm),
        opt(s.gear),
        opt(s.lat_deg),
        opt(s.lon_deg),
        opt(s.position),
        opt(s.fuel_kg),
        opt(s.tyre_compound.as_deref()),
        opt(s.tyre_age_laps),
        opt(s.pit_status.map(|p| p.code())),
    ];
    r.extend(w);
    r.extend(t);
    r.push(opt(s.track_temp_c));
    r.push(opt(s.air_temp_c));
    r
}

/// `<dir>/<stem>_laps.csv` next to `out`.
pub fn laps_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    out.with_file_name(format!("{stem}_laps.csv"))
}

/// `<dir>/<stem>_engine_laps.csv` next to `out`.
pub fn engine_laps_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    out.with_file_name(format!("{stem}_engine_laps.csv"))
}

/// Writes the laps the lap engine cut (stored while streaming, else cut now from the samples):
/// times, sectors, validity, tyres, the 20 features (units in their names) and, where the
/// analysis stage ran, the tire model's wear and loss.
fn write_engine_laps(store: &Store, a: &ExportArgs) -> anyhow::Result<Option<(PathBuf, usize)>> {
    let mut laps = store.laps(&a.session, a.car.as_deref())?;
    if laps.is_empty() {
        let pb = crate::progress_bar(0, "cutting laps from the samples", "");
        let cut = server::stored::laps_from_store(store, &a.session);
        pb.finish_and_clear();
        laps = cut?
            .iter()
            .filter(|l| a.car.as_deref().is_none_or(|c| l.chassis == c))
            .map(server::stored::lap_row)
            .collect();
    }
    if laps.is_empty() {
        return Ok(None);
    }
    let feature_names: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&laps[0].features_json)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
    let p = engine_laps_path(&a.out);
    let mut w =
        csv::Writer::from_path(&p).with_context(|| format!("cannot create {}", p.display()))?;
    let mut header: Vec<String> = [
        "session_id",
        "car_id",
        "lap",
        "lap_time_s",
        "s1_s",
        "s2_s",
        "s3_s",
        "out_lap",
        "pit",
        "safety_car",
        "incomplete",
        "position",
        "t_start_s",
        "t_end_s",
        "tyre_age_laps",
        "tyre_compound",
        "fuel_kg",
        "tyre_wear_fl_pct",
        "tyre_wear_fr_pct",
        "tyre_wear_rl_pct",
        "tyre_wear_rr_pct",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(feature_names.iter().map(|n| format!("feature_{n}")));
    header.extend(
        [
            "model_wear_fl_pct",
            "model_wear_fr_pct",
            "model_wear_rl_pct",
            "model_wear_rr_pct",
            "predicted_loss_per_lap_s",
            "laps_until_0_5s_loss",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    w.write_record(&header)?;
    for l in &laps {
        let wear = l.tyre_wear_pct.map(|c| c.to_array());
        let mut rec = vec![
            a.session.clone(),
            l.car_id.clone(),
            l.lap.to_string(),
            opt(l.lap_time_s),
            opt(l.sector_times_s[0]),
            opt(l.sector_times_s[1]),
            opt(l.sector_times_s[2]),
            u8::from(l.out_lap).to_string(),
            u8::from(l.pit).to_string(),
            u8::from(l.safety_car).to_string(),
            u8::from(l.incomplete).to_string(),
            opt(l.position),
            l.t_start_s.to_string(),
            l.t_end_s.to_string(),
            l.tyre_age_laps.to_string(),
            opt(l.tyre_compound.as_deref()),
            opt(l.fuel_kg),
            opt(wear.map(|w| w[0])),
            opt(wear.map(|w| w[1])),
            opt(wear.map(|w| w[2])),
            opt(wear.map(|w| w[3])),
        ];
        let f: serde_json::Value =
            serde_json::from_str(&l.features_json).unwrap_or(serde_json::Value::Null);
        let cell = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(";"),
            x => x.to_string(),
        };
        rec.extend(feature_names.iter().map(|n| cell(&f[n.as_str()])));
        let ins: serde_json::Value = l
            .insight_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or(serde_json::Value::Null);
        for c in ["fl", "fr", "rl", "rr"] {
            rec.push(cell(&ins["tire_wear"][c]));
        }
        rec.push(cell(&ins["predicted_loss_per_lap_seconds"]));
        rec.push(cell(&ins["laps_until_0_5s_loss"]));
        w.write_record(&rec)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(Some((p, laps.len())))
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let store = Store::open(&a.data_dir.data_dir)
        .with_context(|| format!("opening the store under {}", a.data_dir.data_dir.display()))?;
    // Fails with "no session X" before creating any file.
    let info = store.session(&a.session)?;
    let total = match a.car.as_deref() {
        Some(c) => info
            .cars
            .iter()
            .find(|x| x.car_id == c)
            .map_or(0, |x| x.samples),
        None => info.samples,
    };
    let pb = crate::progress_bar(total, "exporting", "samples");
    let mut done = 0u64;
    let mut tick = |pb: &indicatif::ProgressBar| {
        done += 1;
        if done.is_multiple_of(20_000) {
            pb.set_position(done);
        }
    };
    if a.format == ExportFormat::Parquet {
        let f = std::fs::File::create(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?;
        let mut w = crate::parquet_out::ParquetSamples::create(f)?;
        let mut err: Option<parquet::errors::ParquetError> = None;
        store.for_each_sample(&a.session, a.car.as_deref(), |s| {
            tick(&pb);
            if err.is_none() {
                if let Err(e) = w.push(s) {
                    err = Some(e);
                }
            }
        })?;
        pb.finish_and_clear();
        if let Some(e) = err {
            return Err(e).with_context(|| format!("writing {}", a.out.display()));
        }
        let n = w
            .finish()
            .with_context(|| format!("writing {}", a.out.display()))?;
        eprintln!("{}: {n} samples", a.out.display());
        if let Some((p, n)) = write_engine_laps(&store, &a)? {
            eprintln!("{}: {n} laps", p.display());
        }
        println!("{}", a.out.display());
        return Ok(());
    }
    let mut w = csv::Writer::from_path(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    w.write_record(SAMPLE_COLUMNS)?;
    let mut err: Option<csv::Error> = None;
    let n = store.for_each_sample(&a.session, a.car.as_deref(), |s| {
        tick(&pb);
        if err.is_none() {
            if let Err(e) = w.write_record(sample_record(&s)) {
                err = Some(e);
            }
        }
    })?;
    pb.finish_and_clear();
    if let Some(e) = err {
        return Err(e).with_context(|| format!("writing {}", a.out.display()));
    }
    w.flush()
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("{}: {n} samples", a.out.display());
    if info.official_laps > 0 {
        let laps = store.official_laps(&a.session, a.car.as_deref())?;
        let p = laps_path(&a.out);
        let mut w =
            csv::Writer::from_path(&p).with_context(|| format!("cannot create {}", p.display()))?;
        w.write_record(LAP_COLUMNS)?;
        for l in &laps {
            w.write_record([
                a.session.clone(),
                l.car_number.clone(),
                l.lap.to_string(),
                l.lap_time_s.to_string(),
                opt(l.s1_s),
                opt(l.s2_s),
                opt(l.s3_s),
                u8::from(l.pit_in).to_string(),
                opt(l.pit_time_s),
                l.flag.clone(),
                opt(l.elapsed_s),
                opt(l.kph),
                opt(l.top_speed_kmh),
                opt(l.driver_number),
                opt(l.driver_name.as_deref()),
                opt(l.team.as_deref()),
                opt(l.class.as_deref()),
            ])?;
        }
        w.flush()
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("{}: {} official laps", p.display(), laps.len());
    }
    if let Some((p, n)) = write_engine_laps(&store, &a)? {
        eprintln!("{}: {n} laps", p.display());
    }
    println!("{}", a.out.display());
    Ok(())
}
