//! `pitwall import`: GR Cup files (and seed JSON) into the store, recognised by their header.
//!
//! Every file given in one call goes to one session, joined on the car number: telemetry's
//! `car_id` is grcup's car label (`vehicle_number`), the timing file's `NUMBER` is the same
//! label. What is stored where:
//!
//! * long / wide telemetry, seed JSON → `samples` (each validated; invalid ones counted);
//! * official timing → `official_laps` (the whole field);
//! * lap start / end / time files → `lap_events` (one row per boundary event; the lap times
//!   are the differences of consecutive events);
//! * results, weather, best laps → `session_meta` as JSON (`results`, `weather`, `best_laps`).

use crate::import_report::FileReport;
use anyhow::{bail, Context};
use clap::Args;
use grcup::{
    FileKind, LongPivot, PivotConfig, PivotStats, SortedLongPivot, VehicleInfo, WidePivot,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use store::{LapEventRow, OfficialLapRow, Store};
use telemetry::Sample;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The files: telemetry (long or wide CSV, seed JSON), lap start/end/time, official
    /// timing, results, weather, best laps. Recognised by header, in any order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Track name stored with the session.
    #[arg(long)]
    pub track: Option<String>,
    /// Session id [default: <meta_event>-<meta_session> of the first telemetry or lap file
    /// that has them, else import-<stem of the first file>].
    #[arg(long)]
    pub session: Option<String>,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
    /// Samples per store transaction.
    #[arg(long, default_value_t = 50_000)]
    pub batch: usize,
    /// No progress bar (a summary is still printed).
    #[arg(long)]
    pub quiet: bool,
}

/// Reads the first bytes of a file and tells its kind, with an error naming the file.
pub fn sniff(path: &Path) -> anyhow::Result<FileKind> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = Vec::with_capacity(grcup::SNIFF_BYTES);
    f.by_ref()
        .take(grcup::SNIFF_BYTES as u64)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    grcup::detect(&buf).with_context(|| format!("{}: not importable", path.display()))
}

/// `<meta_event>-<meta_session>` from a file's header and first data row, when it has both
/// columns (GR Cup telemetry and lap boundary files do).
pub fn meta_session_id(path: &Path) -> Option<String> {
    let mut buf = Vec::new();
    File::open(path)
        .ok()?
        .take(grcup::SNIFF_BYTES as u64)
        .read_to_end(&mut buf)
        .ok()?;
    let b = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(b);
    let h = rdr.headers().ok()?.clone();
    let col = |n: &str| h.iter().position(|c| c.eq_ignore_ascii_case(n));
    let (e, s) = (col("meta_event")?, col("meta_session")?);
    let rec = rdr.records().next()?.ok()?;
    let (e, s) = (rec.get(e)?.trim(), rec.get(s)?.trim());
    if e.is_empty() || s.is_empty() {
        return None;
    }
    Some(clean_id(&format!("{e}-{s}")))
}

fn clean_id(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn session_from(args: &ImportArgs, kinds: &[FileKind]) -> String {
    if let Some(s) = &args.session {
        return s.clone();
    }
    let from_meta = args.files.iter().zip(kinds).find_map(|(p, k)| {
        matches!(
            k,
            FileKind::LongTelemetry | FileKind::WideTelemetry | FileKind::LapBoundary
        )
        .then(|| meta_session_id(p))
        .flatten()
    });
    if let Some(id) = from_meta {
        return id;
    }
    let stem = args
        .files
        .first()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    format!("import-{}", clean_id(&stem))
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    // Recognise every file first: a bad one stops the import before anything is written.
    let mut kinds = Vec::with_capacity(args.files.len());
    for p in &args.files {
        let k = sniff(p)?;
        eprintln!("{}: {k}", p.display());
        kinds.push(k);
    }
    // Check every header's columns (and read the small files) before writing anything.
    for (p, k) in args.files.iter().zip(&kinds) {
        check(p, *k).with_context(|| format!("{}: not importable", p.display()))?;
    }
    let session = session_from(&args, &kinds);
    let mut store = Store::open(&args.data_dir.data_dir).with_context(|| {
        format!(
            "opening the store under {}",
            args.data_dir.data_dir.display()
        )
    })?;
    store.ensure_session(&session, args.track.as_deref())?;
    let (renames, rename_notes) = reconcile_ids(&args.files, &kinds);
    let ctx = Ctx {
        renames,
        session: Arc::from(session.as_str()),
        data_dir: args.data_dir.data_dir.clone(),
        track: args.track.as_deref().map(Arc::from),
        batch: args.batch.max(1),
        quiet: args.quiet,
    };
    let mut reports = Vec::new();
    for (path, kind) in args.files.iter().zip(kinds) {
        let mut r = import_file(&mut store, &ctx, path, kind)
            .with_context(|| format!("importing {} ({kind})", path.display()))?;
        if kind == FileKind::OfficialTiming {
            r.notes.extend(rename_notes.iter().cloned());
        }
        reports.push(r);
    }
    let report = crate::import_report::build(&store, &session, reports)?;
    crate::import_report::print(&report);
    store.set_session_meta(
        &session,
        store::META_IMPORT_REPORT,
        &serde_json::to_string(&report)?,
    )?;
    // The session's analysis (laps, tyres, pit windows, coaching), as the live stage would
    // have made it, stored beside the samples.
    let info = store.session(&session)?;
    if info.samples > 0 || server::stored::is_timing_only(&info) {
        let settings = crate::analyse_cmd::Settings::new(None, true)?;
        let r = crate::analyse_cmd::analyse_session(&mut store, &session, &settings)?;
        if !args.quiet {
            eprintln!("{}", crate::analyse_cmd::summary(&session, &r));
        }
    }
    store.checkpoint()?;
    println!("{session}");
    Ok(())
}

/// Opens a file with the reader of its kind (the pivots read only the header), so that a
/// file with missing columns stops the import before anything is stored.
fn check(path: &Path, kind: FileKind) -> anyhow::Result<()> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let cfg = PivotConfig::new("check");
    match kind {
        FileKind::LongTelemetry => drop(LongPivot::new(f, cfg)?),
        FileKind::WideTelemetry => drop(WidePivot::new(f, cfg)?),
        FileKind::SeedJson => {}
        FileKind::OfficialTiming => drop(grcup::read_official_timing(f)?),
        FileKind::LapBoundary => drop(grcup::read_lap_boundaries(f)?),
        FileKind::Results => drop(grcup::read_results(f)?),
        FileKind::Weather => drop(grcup::read_weather(f)?),
        FileKind::BestLaps => drop(grcup::read_best_laps(f)?),
        FileKind::ClassResults | FileKind::Championship => drop(grcup::read_fields(f, kind)?),
    }
    Ok(())
}

/// Whether a results file is the provisional one. The provisional and official results
/// files have the same header, so this is the one place a file name is read: a name
/// containing "provisional" (any case) labels the file provisional; anything else is
/// official. It never decides what kind a file is.
pub fn is_provisional(path: &Path) -> bool {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .to_ascii_lowercase()
                .contains("provisional")
        })
        .unwrap_or(false)
}

/// Timing car ids renamed to the results' ids: a number split by lap sequence in the
/// timing file (`3`, `3#2`) whose cars the results tell apart (`3`, `3-Legends`) is matched
/// car by car on laps completed and total time (the last lap's `ELAPSED`).
fn reconcile_ids(files: &[PathBuf], kinds: &[FileKind]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut timing: Vec<grcup::OfficialLap> = Vec::new();
    let mut official: Option<Vec<grcup::RaceResult>> = None;
    let mut provisional: Option<Vec<grcup::RaceResult>> = None;
    for (p, k) in files.iter().zip(kinds) {
        let Ok(f) = File::open(p) else { continue };
        match k {
            FileKind::OfficialTiming => {
                if let Ok(t) = grcup::read_official_timing(f) {
                    timing.extend(t.records);
                }
            }
            FileKind::Results => {
                if let Ok(t) = grcup::read_results(f) {
                    if is_provisional(p) {
                        provisional = Some(t.records);
                    } else {
                        official = Some(t.records);
                    }
                }
            }
            _ => {}
        }
    }
    let mut renames = BTreeMap::new();
    let mut notes = Vec::new();
    let Some(results) = official.or(provisional) else {
        return (renames, notes);
    };
    // Per timing car: laps and last elapsed.
    let mut per_car: BTreeMap<&str, (&str, u32, Option<f64>)> = BTreeMap::new();
    for l in &timing {
        let e = per_car
            .entry(l.car_id.as_str())
            .or_insert((l.car_number.as_str(), 0, None));
        e.1 += 1;
        if l.elapsed_s.is_some() {
            e.2 = l.elapsed_s;
        }
    }
    let result_ids: std::collections::BTreeSet<&str> =
        results.iter().map(|r| r.car_id.as_str()).collect();
    let mut taken: std::collections::BTreeSet<&str> = per_car.keys().copied().collect();
    for (tid, (number, laps, elapsed)) in &per_car {
        if result_ids.contains(tid)
            && !per_car
                .keys()
                .any(|k| k != tid && k.starts_with(&format!("{number}#")))
        {
            continue;
        }
        let cands: Vec<&grcup::RaceResult> = results
            .iter()
            .filter(|r| r.car_number == *number && r.laps == Some(*laps))
            .filter(|r| match (r.total_time_s, elapsed) {
                (Some(a), Some(b)) => (a - b).abs() < 0.002,
                _ => false,
            })
            .collect();
        match cands.as_slice() {
            [r] if r.car_id != *tid && !taken.contains(r.car_id.as_str()) => {
                notes.push(format!(
                    "timing car {tid} is the results' {} ({laps} laps, same total time): renamed",
                    r.car_id
                ));
                taken.insert(r.car_id.as_str());
                renames.insert(tid.to_string(), r.car_id.clone());
            }
            [r] if r.car_id == *tid => {}
            _ if tid.contains('#') => notes.push(format!(
                "timing car {tid} matches no single results line (laps, total time): kept as {tid}"
            )),
            _ => {}
        }
    }
    // A rename may free an id another timing car matches: swap pairs are handled because
    // renames are applied together.
    (renames, notes)
}

struct Ctx {
    /// Timing car id → the results' id (see [`reconcile_ids`]).
    renames: BTreeMap<String, String>,
    session: Arc<str>,
    data_dir: PathBuf,
    track: Option<Arc<str>>,
    batch: usize,
    quiet: bool,
}

fn import_file(
    store: &mut Store,
    ctx: &Ctx,
    path: &Path,
    kind: FileKind,
) -> anyhow::Result<FileReport> {
    let name = path.display().to_string();
    let mut rep = FileReport::new(path, kind);
    let open = || File::open(path).with_context(|| format!("cannot open {name}"));
    match kind {
        FileKind::LongTelemetry | FileKind::WideTelemetry => {
            let mut cfg = PivotConfig::new(ctx.session.clone());
            cfg.track = ctx.track.clone();
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let pivot = if kind == FileKind::LongTelemetry {
                // Rows in any order: chunked external sort, runs spilled beside the store.
                let dir = ctx.data_dir.clone();
                let spill: grcup::SpillFactory = Box::new(move || {
                    let f = tempfile::tempfile_in(&dir).or_else(|_| tempfile::tempfile())?;
                    Ok(Box::new(f) as Box<dyn grcup::SpillFile>)
                });
                Pivot::Sorted(SortedLongPivot::new(
                    open()?,
                    cfg,
                    SortedLongPivot::<File>::DEFAULT_CHUNK_ROWS,
                    spill,
                )?)
            } else {
                Pivot::Wide(WidePivot::new(open()?, cfg)?)
            };
            let s = import_pivot(store, ctx, pivot, size, &name)?;
            print_pivot_summary(&name, &s);
            rep.rows_read = s.stats.rows_read;
            rep.stored = s.accepted;
            rep.instants = Some(s.stats.samples_emitted);
            rep.cars = s.vehicles.len() as u64;
            rep.add_rejects(&s.stats.rejects);
            for (field, n) in &s.invalid {
                rep.not_stored(&format!("invalid_sample:{field}"), *n);
            }
            if s.stats.rows_unknown_channel > 0 {
                rep.notes.push(format!(
                    "{} rows of channels PitWall does not use (ignored, not refused): {}",
                    s.stats.rows_unknown_channel,
                    s.stats
                        .unknown_channels
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if s.stats.rows_out_of_order > 0 {
                rep.notes.push(format!(
                    "{} rows out of time order, sorted ({} runs spilled)",
                    s.stats.rows_out_of_order, s.stats.spill_runs
                ));
            }
            if s.stats.samples_lap_repaired > 0 {
                rep.notes.push(format!(
                    "lap column repaired on {} samples ({} laps)",
                    s.stats.samples_lap_repaired, s.stats.laps_repaired
                ));
            }
        }
        FileKind::SeedJson => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let parsed = telemetry::parse_body(&bytes, false, now)?;
            let mut w = SampleWriter::new(ctx);
            let total = parsed.total;
            let refused = parsed.rejected_points();
            let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
            for (_, r) in &parsed.rejected {
                *reasons.entry(r.field.clone()).or_default() += 1;
            }
            if let Some((i, r)) = parsed.rejected.first() {
                eprintln!("  e.g. point {i}: {}: {}", r.field, r.reason);
            }
            for (_, s) in parsed.samples {
                w.push(store, s)?;
            }
            w.finish(store)?;
            eprintln!(
                "{name}: {total} points, {} samples stored ({} new), {refused} refused by the parser, {} invalid",
                w.accepted, w.stored, w.invalid_total()
            );
            print_reasons("refused", &reasons);
            print_reasons("invalid", &w.invalid);
            rep.rows_read = total as u64;
            rep.stored = w.accepted;
            rep.instants = Some(w.accepted);
            for (k, n) in &reasons {
                rep.not_stored(&format!("refused:{k}"), *n);
            }
            for (k, n) in &w.invalid {
                rep.not_stored(&format!("invalid_sample:{k}"), *n);
            }
        }
        FileKind::OfficialTiming => {
            let t = grcup::read_official_timing(open()?)?;
            let mut rows: Vec<OfficialLapRow> = t.records.iter().map(official_row).collect();
            for r in &mut rows {
                if let Some(id) = ctx.renames.get(&r.car_number) {
                    r.car_number = id.clone();
                }
            }
            store.write_official_laps(&ctx.session, &rows)?;
            let cars: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r.car_number.as_str()).collect();
            eprintln!(
                "{name}: {} rows, {} laps stored for {} cars, {} rejected",
                t.rows_read,
                rows.len(),
                cars.len(),
                t.rejects.total()
            );
            print_rejects(&t.rejects);
            rep.rows_read = t.rows_read;
            rep.stored = rows.len() as u64;
            rep.cars = cars.len() as u64;
            rep.laps = Some(rows.len() as u64);
            rep.add_rejects(&t.rejects);
            rep.notes.extend(t.notes.iter().cloned());
        }
        FileKind::LapBoundary => {
            let b = grcup::read_lap_boundaries(open()?)?;
            let source = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.clone());
            let rows: Vec<LapEventRow> = b
                .cars
                .iter()
                .flat_map(|(car, evs)| {
                    evs.iter().map(|e| LapEventRow {
                        car_number: car.clone(),
                        lap: e.lap,
                        t_s: e.t_s,
                        raw_lap: e.raw_lap,
                        repaired: e.repaired,
                        value: e.value,
                        source: source.clone(),
                    })
                })
                .collect();
            store.write_lap_events(&ctx.session, &rows)?;
            eprintln!(
                "{name}: {} rows, {} lap events stored for {} cars, {} laps repaired, {} rejected",
                b.rows_read,
                rows.len(),
                b.cars.len(),
                b.laps_repaired,
                b.rejects.total()
            );
            print_rejects(&b.rejects);
            rep.rows_read = b.rows_read;
            rep.stored = rows.len() as u64;
            rep.cars = b.cars.len() as u64;
            rep.laps = Some(rows.len() as u64);
            rep.add_rejects(&b.rejects);
            rep.notes.extend(b.notes.iter().cloned());
            if b.laps_repaired > 0 {
                rep.notes.push(format!(
                    "{} lap numbers repaired by order (32768, gaps)",
                    b.laps_repaired
                ));
            }
            if b.values_not_numeric > 0 {
                rep.notes.push(format!(
                    "{} rows with a `value` that is not a number (a timestamp): events kept, value empty",
                    b.values_not_numeric
                ));
            }
        }
        FileKind::ClassResults | FileKind::Championship => {
            let t = grcup::read_fields(open()?, kind)?;
            let v: Vec<Value> = t
                .records
                .iter()
                .map(|r| Value::Object(r.iter().map(|(k, v)| (k.clone(), json!(v))).collect()))
                .collect();
            let meta = match (kind, is_provisional(path)) {
                (FileKind::Championship, _) => "championship",
                (_, true) => "results_by_class_provisional",
                (_, false) => "results_by_class",
            };
            store.set_session_meta(&ctx.session, meta, &Value::Array(v).to_string())?;
            eprintln!(
                "{name}: {} rows, {} stored as {meta}, {} rejected",
                t.rows_read,
                t.records.len(),
                t.rejects.total()
            );
            print_rejects(&t.rejects);
            rep.rows_read = t.rows_read;
            rep.stored = t.records.len() as u64;
            rep.cars = t.records.len() as u64;
            rep.add_rejects(&t.rejects);
            rep.notes
                .push(format!("stored as session_meta `{meta}` (not interpreted)"));
        }
        FileKind::Results => {
            let t = grcup::read_results(open()?)?;
            let v: Vec<Value> = t.records.iter().map(result_json).collect();
            let meta = if is_provisional(path) {
                store::META_RESULTS_PROVISIONAL
            } else {
                store::META_RESULTS
            };
            store.set_session_meta(&ctx.session, meta, &Value::Array(v).to_string())?;
            rep.rows_read = t.rows_read;
            rep.stored = t.records.len() as u64;
            rep.cars = t.records.len() as u64;
            rep.add_rejects(&t.rejects);
            rep.notes.extend(t.notes.iter().cloned());
            rep.notes.push(format!("stored as session_meta `{meta}`"));
            eprintln!(
                "{name}: {} rows, {} results stored, {} rejected",
                t.rows_read,
                t.records.len(),
                t.rejects.total()
            );
            print_rejects(&t.rejects);
        }
        FileKind::Weather => {
            let t = grcup::read_weather(open()?)?;
            let v: Vec<Value> = t
                .records
                .iter()
                .map(|w| {
                    json!({
                        "time_utc_s": w.time_utc_s, "time_utc": w.time_utc,
                        "air_temp_c": w.air_temp_c, "track_temp_c": w.track_temp_c,
                        "humidity_pct": w.humidity_pct, "pressure": w.pressure,
                        "wind_speed": w.wind_speed, "wind_direction_deg": w.wind_direction_deg,
                        "rain": w.rain,
                    })
                })
                .collect();
            store.set_session_meta(&ctx.session, "weather", &Value::Array(v).to_string())?;
            eprintln!(
                "{name}: {} rows, {} weather records stored, {} rejected",
                t.rows_read,
                t.records.len(),
                t.rejects.total()
            );
            rep.rows_read = t.rows_read;
            rep.stored = t.records.len() as u64;
            rep.add_rejects(&t.rejects);
            print_rejects(&t.rejects);
        }
        FileKind::BestLaps => {
            let t = grcup::read_best_laps(open()?)?;
            let v: Vec<Value> = t
                .records
                .iter()
                .map(|b| {
                    json!({
                        "car_number": b.car_number, "vehicle": b.vehicle, "class": b.class,
                        "total_driver_laps": b.total_driver_laps,
                        "best": b.best.iter().map(|l| json!({
                            "rank": l.rank, "lap": l.lap, "lap_time_s": l.lap_time_s,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            store.set_session_meta(&ctx.session, "best_laps", &Value::Array(v).to_string())?;
            eprintln!(
                "{name}: {} rows, best laps of {} cars stored, {} rejected",
                t.rows_read,
                t.records.len(),
                t.rejects.total()
            );
            rep.rows_read = t.rows_read;
            rep.stored = t.records.len() as u64;
            rep.cars = t.records.len() as u64;
            rep.add_rejects(&t.rejects);
            print_rejects(&t.rejects);
        }
    }
    Ok(rep)
}

/// grcup's official lap as the store's row.
pub fn official_row(l: &grcup::OfficialLap) -> OfficialLapRow {
    OfficialLapRow {
        car_number: l.car_id.clone(),
        lap: l.lap,
        lap_time_s: l.lap_time_s,
        s1_s: l.sector_times_s[0],
        s2_s: l.sector_times_s[1],
        s3_s: l.sector_times_s[2],
        pit_in: l.pit_in,
        pit_time_s: l.pit_time_s,
        flag: match l.flag {
            grcup::Flag::Green => "GF",
            grcup::Flag::Fcy => "FCY",
            grcup::Flag::Finish => "FF",
            grcup::Flag::Other => "other",
        }
        .to_string(),
        elapsed_s: l.elapsed_s,
        kph: l.kph,
        top_speed_kmh: l.top_speed_kmh,
        driver_number: l.driver_number,
        driver_name: l.driver_name.clone(),
        team: l.team.clone(),
        class: l.class.clone(),
    }
}

fn gap_json(g: Option<grcup::Gap>) -> Value {
    match g {
        Some(grcup::Gap::Time(s)) => json!({ "time_s": s }),
        Some(grcup::Gap::Laps(n)) => json!({ "laps": n }),
        None => Value::Null,
    }
}

fn result_json(r: &grcup::RaceResult) -> Value {
    json!({
        "position": r.position, "car_number": r.car_number, "car_id": r.car_id,
        "group": r.group, "status": r.status,
        "laps": r.laps, "total_time_s": r.total_time_s,
        "gap_first": gap_json(r.gap_first), "gap_previous": gap_json(r.gap_previous),
        "fastest_lap": r.fastest_lap, "fastest_lap_time_s": r.fastest_lap_time_s,
        "fastest_lap_kph": r.fastest_lap_kph, "class": r.class,
    })
}

fn print_rejects(r: &grcup::Rejects) {
    for (reason, n) in &r.by_reason {
        eprintln!("  rejected {reason}: {n}");
    }
    for ex in r.examples.iter().take(3) {
        eprintln!("    e.g. line {}: {} {}", ex.line, ex.reason, ex.detail);
    }
}

fn print_reasons(what: &str, m: &BTreeMap<String, u64>) {
    for (k, n) in m {
        eprintln!("  {what} {k}: {n}");
    }
}

/// Either pivot behind one interface.
pub enum Pivot<R: Read> {
    Sorted(SortedLongPivot<R>),
    Wide(WidePivot<R>),
}

impl<R: Read> Pivot<R> {
    pub fn next_sample(&mut self) -> Result<Option<Sample>, grcup::Error> {
        match self {
            Pivot::Sorted(p) => p.next_sample(),
            Pivot::Wide(p) => p.next_sample(),
        }
    }
    pub fn bytes_read(&self) -> u64 {
        match self {
            Pivot::Sorted(p) => p.bytes_read(),
            Pivot::Wide(p) => p.bytes_read(),
        }
    }
    pub fn stats(&self) -> PivotStats {
        match self {
            Pivot::Sorted(p) => p.stats(),
            Pivot::Wide(p) => p.stats(),
        }
    }
    pub fn vehicles(&self) -> Vec<VehicleInfo> {
        match self {
            Pivot::Sorted(p) => p.vehicles(),
            Pivot::Wide(p) => p.vehicles(),
        }
    }
}

/// Validates samples and writes them in batches.
struct SampleWriter {
    session: Arc<str>,
    track: Option<Arc<str>>,
    batch: Vec<Sample>,
    size: usize,
    accepted: u64,
    stored: u64,
    invalid: BTreeMap<String, u64>,
    invalid_samples: u64,
}

impl SampleWriter {
    fn new(ctx: &Ctx) -> Self {
        SampleWriter {
            session: ctx.session.clone(),
            track: ctx.track.clone(),
            batch: Vec::with_capacity(ctx.batch.min(100_000)),
            size: ctx.batch,
            accepted: 0,
            stored: 0,
            invalid: BTreeMap::new(),
            invalid_samples: 0,
        }
    }
    fn invalid_total(&self) -> u64 {
        self.invalid_samples
    }
    fn push(&mut self, store: &mut Store, mut s: Sample) -> anyhow::Result<()> {
        s.session_id = self.session.clone();
        if self.track.is_some() {
            s.track = self.track.clone();
        }
        let errs = telemetry::validate(&s);
        if !errs.is_empty() {
            self.invalid_samples += 1;
            for e in errs {
                *self.invalid.entry(e.field).or_default() += 1;
            }
            return Ok(());
        }
        self.accepted += 1;
        self.batch.push(s);
        if self.batch.len() >= self.size {
            self.flush(store)?;
        }
        Ok(())
    }
    fn flush(&mut self, store: &mut Store) -> anyhow::Result<()> {
        self.stored += store.write_batch(&self.batch)? as u64;
        self.batch.clear();
        Ok(())
    }
    fn finish(&mut self, store: &mut Store) -> anyhow::Result<()> {
        self.flush(store)
    }
}

struct PivotSummary {
    stats: PivotStats,
    vehicles: Vec<VehicleInfo>,
    accepted: u64,
    stored: u64,
    invalid_samples: u64,
    invalid: BTreeMap<String, u64>,
    secs: f64,
}

fn import_pivot<R: Read>(
    store: &mut Store,
    ctx: &Ctx,
    mut pivot: Pivot<R>,
    size: u64,
    name: &str,
) -> anyhow::Result<PivotSummary> {
    let pb = if ctx.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(size),
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_prefix(short_name(name));
        pb
    };
    let t0 = Instant::now();
    let mut w = SampleWriter::new(ctx);
    let mut n = 0u64;
    while let Some(s) = pivot.next_sample()? {
        w.push(store, s)?;
        n += 1;
        if n.is_multiple_of(20_000) {
            pb.set_position(pivot.bytes_read());
            let rows = pivot.stats().rows_read;
            let secs = t0.elapsed().as_secs_f64().max(1e-3);
            pb.set_message(format!(
                "{rows} rows, {:.0} rows/s, {} samples",
                rows as f64 / secs,
                w.accepted
            ));
        }
    }
    w.finish(store)?;
    pb.finish_and_clear();
    if bail_if_empty(&pivot) {
        bail!("no rows could be read (every row was refused)");
    }
    Ok(PivotSummary {
        stats: pivot.stats(),
        vehicles: pivot.vehicles(),
        accepted: w.accepted,
        stored: w.stored,
        invalid_samples: w.invalid_samples,
        invalid: w.invalid,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// A file with data rows of which none could be read is an error (not an empty success).
fn bail_if_empty<R: Read>(p: &Pivot<R>) -> bool {
    let s = p.stats();
    s.rows_read > 0 && s.samples_emitted == 0 && s.rows_rejected() == s.rows_read
}

fn short_name(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    if base.chars().count() > 30 {
        base.chars().take(29).chain(['…']).collect()
    } else {
        base
    }
}

fn print_pivot_summary(name: &str, s: &PivotSummary) {
    let st = &s.stats;
    eprintln!(
        "{name}: {} rows in {:.1} s ({:.0} rows/s), {} samples built, {} stored ({} new), {} invalid, {} rows rejected, {} rows of unused channels, {} laps repaired ({} samples), {} vehicles",
        st.rows_read,
        s.secs,
        st.rows_read as f64 / s.secs.max(1e-3),
        st.samples_emitted,
        s.accepted,
        s.stored,
        s.invalid_samples,
        st.rows_rejected(),
        st.rows_unknown_channel,
        st.laps_repaired,
        st.samples_lap_repaired,
        s.vehicles.len(),
    );
    print_rejects(&st.rejects);
    print_reasons("invalid", &s.invalid);
    let cars: Vec<&str> = s.vehicles.iter().map(|v| &*v.car_id).collect();
    eprintln!("  cars: {}", cars.join(", "));
}
