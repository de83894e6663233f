//! `pitwall sim` (a simulated race into the store or a GR Cup CSV) and `pitwall demo` (the
//! server with a simulated race streamed through it live).

use anyhow::Context;
use clap::Args;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct RaceArgs {
    /// Track name, one of the 25 shipped circuits (e.g. Austin, IMS, Suzuka, Spa, Monza).
    #[arg(long, default_value = "Austin")]
    pub track: String,
    /// Cars in the race.
    #[arg(long, default_value_t = 20)]
    pub cars: usize,
    /// Race length in laps.
    #[arg(long, default_value_t = 30)]
    pub laps: u32,
    /// Random seed: the same seed gives the same race.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Samples per second per car (20-60).
    #[arg(long, default_value_t = 50.0)]
    pub hz: f64,
}

impl RaceArgs {
    pub fn config(&self, session_id: Option<String>) -> sim::RaceConfig {
        let mut cfg = sim::RaceConfig::new(&self.track, self.laps, self.seed);
        cfg.cars = self.cars;
        cfg.hz = self.hz;
        cfg.session_id = session_id;
        cfg
    }
}

#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(flatten)]
    pub race: RaceArgs,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
    /// Write the GR Cup long-format CSV here instead of storing the session.
    #[arg(long)]
    pub csv: Option<std::path::PathBuf>,
    /// Session id to store under [default: sim-<track>-<seed>].
    #[arg(long)]
    pub session: Option<String>,
    /// When the race starts (RFC 3339, e.g. 2025-06-01T14:00:00Z) [default: now]. Sample times
    /// (`t_s`) are Unix seconds from it, as in imported sessions.
    #[arg(long, value_parser = parse_start)]
    pub start: Option<f64>,
}

/// `--start`: an RFC 3339 instant (or Unix seconds) as Unix seconds.
fn parse_start(raw: &str) -> Result<f64, String> {
    grcup::parse_timestamp_ns(raw.as_bytes())
        .map(|ns| ns as f64 / 1e9)
        .ok_or_else(|| format!("{raw:?} is not an instant like 2025-06-01T14:00:00Z"))
}

/// Unix seconds now (whole milliseconds: a simulated race starts at a round instant).
fn now_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: crate::cli::ServeArgs,
    #[command(flatten)]
    pub race: RaceArgs,
    /// Playback speed: 1 is real time, 10 is ten times faster (a lap of Austin every 15 s).
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    /// Lap the playback starts at: the laps before it stream as fast as the pipeline takes
    /// them (a few seconds), so the tyre, pit-window, radio and coaching panels have data
    /// straight away. 1 plays the race from the start.
    #[arg(long, default_value_t = 9)]
    pub start_lap: u32,
}

/// Laps the leader has completed.
fn leader_laps(race: &sim::Race) -> u64 {
    race.standings()
        .first()
        .map(|s| u64::from(s.laps_completed))
        .unwrap_or(0)
}

#[derive(Args, Debug)]
pub struct TracksArgs {
    /// Print JSON (`[{"name", "length_m"}]`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the embedded circuits with their race-line lengths.
pub fn tracks(a: TracksArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for name in tracks::Track::names() {
        let t = tracks::Track::by_name(name).with_context(|| format!("loading track {name}"))?;
        rows.push(serde_json::json!({
            "name": t.name(),
            "length_m": (t.length_m() * 10.0).round() / 10.0,
        }));
    }
    let mut out = std::io::stdout().lock();
    let written = if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)
    } else {
        (|| {
            writeln!(out, "{:<18} {:>10}", "TRACK", "LENGTH_KM")?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<18} {:>10.3}",
                    r["name"].as_str().unwrap_or("-"),
                    r["length_m"].as_f64().unwrap_or(0.0) / 1000.0,
                )?;
            }
            Ok(())
        })()
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Runs a whole race flat out; stores it (or writes the CSV) and prints the session id.
pub fn sim(a: SimArgs) -> anyhow::Result<()> {
    let cfg = a.race.config(a.session.clone());
    let mut race = sim::Race::new(cfg).context("setting up the race")?;
    let session_id = race
        .config()
        .session_id
        .clone()
        .unwrap_or_else(|| format!("sim-{}-{}", race.track().name(), a.race.seed));
    let start_s = a.start.unwrap_or_else(now_unix_s);
    let pb = crate::progress_bar(u64::from(a.race.laps), "simulating", "laps");
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut n = 0u64;
    match &a.csv {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = sim::LongCsvWriter::new(
                std::io::BufWriter::new(file),
                sim::LongCsvOptions {
                    start_unix_s: start_s.round() as i64,
                    ..sim::LongCsvOptions::default()
                },
            )?;
            let mut steps = 0u64;
            while race.step(&mut out) {
                for s in out.drain(..) {
                    w.write_sample(&s)?;
                    n += 1;
                }
                steps += 1;
                if steps.is_multiple_of(500) {
                    pb.set_position(leader_laps(&race));
                }
            }
            for s in out.drain(..) {
                w.write_sample(&s)?;
                n += 1;
            }
            let rows = w.rows();
            w.finish()?.flush()?;
            pb.finish_and_clear();
            eprintln!(
                "wrote {rows} rows ({n} samples) to {} in {:.1} s",
                path.display(),
                t0.elapsed().as_secs_f64()
            );
        }
        None => {
            let mut st = store::Store::open(&a.data_dir.data_dir).with_context(|| {
                format!("opening the store under {}", a.data_dir.data_dir.display())
            })?;
            let doc = race_doc(&a.race, "sim");
            st.set_session_meta(&session_id, server::stored::META_RACE, &doc)?;
            let track: Arc<str> = Arc::from(race.track().name());
            // The analysis runs as the race runs, exactly as it would live (samples in time
            // order, all cars): laps, tyres, coaching; the pit windows after the last lap.
            let settings = crate::analyse_cmd::Settings::new(None, true)?;
            let sid: Arc<str> = Arc::from(session_id.as_str());
            let mut analysis = analysis::OfflineAnalysis::new(
                sid.clone(),
                Some(track.clone()),
                settings.options(),
            );
            analysis.on_event(&analysis::SessionEvent::Race {
                session_id: session_id.clone(),
                doc: serde_json::from_str(&doc)?,
            });
            let mut steps = 0u64;
            let mut batch = Vec::with_capacity(50_000);
            loop {
                let more = race.step(&mut out);
                for mut s in out.drain(..) {
                    s.session_id = sid.clone();
                    s.t_s += start_s;
                    analysis.push(&s);
                    batch.push(s);
                }
                if batch.len() >= 40_000 || !more {
                    n += st.write_batch(&batch)? as u64;
                    batch.clear();
                }
                steps += 1;
                if steps.is_multiple_of(500) {
                    pb.set_position(leader_laps(&race));
                }
                if !more {
                    break;
                }
            }
            pb.finish_and_clear();
            let t1 = std::time::Instant::now();
            let wpb = crate::progress_bar(0, "pit windows of every lap", "");
            let analysed = analysis.finish(settings.windows(), &|done, total| {
                if wpb.length() != Some(total as u64) {
                    wpb.set_length(total as u64);
                }
                wpb.set_position(done as u64);
            });
            wpb.finish_and_clear();
            let record = server::stored::write_analysed(
                &mut st,
                &session_id,
                &analysed,
                true,
                t1.elapsed().as_secs_f64(),
            )?;
            eprintln!(
                "stored {n} samples of {} cars x {} laps in {:.1} s",
                a.race.cars,
                a.race.laps,
                t0.elapsed().as_secs_f64()
            );
            eprintln!("{}", crate::analyse_cmd::summary(&session_id, &record));
            println!("{session_id}");
        }
    }
    Ok(())
}

/// Serves, and streams simulated races through the live pipeline, one after another.
pub async fn demo(a: DemoArgs) -> anyhow::Result<()> {
    let mut config = a.serve.config()?;
    if a.serve.data_dir.is_none() {
        config.data_dir = std::path::PathBuf::from("./pitwall-data");
    }
    crate::init_logging(config.log_format);
    if !(a.speed.is_finite() && a.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number, got {}", a.speed);
    }
    // Fail early on a bad race before the server starts.
    sim::Race::new(a.race.config(None)).context("setting up the demo race")?;
    let ring_capacity = config.ring_capacity;
    let running = server::start(config).await?;
    let stop = crate::shutdown_signal();
    println!(
        "pitwall demo: {} cars racing {} laps at {} (x{}, from lap {}) -> dashboard http://{}/  (API docs http://{}/docs)",
        a.race.cars,
        a.race.laps,
        a.race.track,
        a.speed,
        a.start_lap.max(1),
        running.http_addr,
        running.http_addr
    );
    crate::print_listening(&running);
    let state = running.state.clone();
    let race_args = a.race.clone();
    let speed = a.speed;
    let start_lap = a.start_lap.max(1);
    let feeder = tokio::spawn(async move {
        let mut seed = race_args.seed;
        loop {
            let started = time_tag();
            let mut args = race_args.clone();
            args.seed = seed;
            let session = format!("demo-{}-{}", args.track, started);
            let mut cfg = args.config(Some(session.clone()));
            if cfg.drivers.is_empty() {
                cfg = cfg.with_generated_drivers();
            }
            // Something for the coach to find: the third car starts braking 12 m later into
            // the fourth corner from lap 8 (see `pitwall demo --help`).
            if let Some(d) = cfg.drivers.get_mut(2) {
                d.habit_changes.push(sim::HabitChange {
                    corner: Some(4),
                    from_lap: 8,
                    brake_point_offset_m: Some(12.0),
                    ..sim::HabitChange::default()
                });
            }
            let mut race = match sim::Race::new(cfg) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "demo race could not start");
                    return;
                }
            };
            let doc = race_doc(&args, "demo");
            // The race document travels as a session event: the store writer keeps it, the
            // analysis takes the race length from it.
            match serde_json::from_str(&doc) {
                Ok(doc) => {
                    let e = analysis::SessionEvent::Race {
                        session_id: session.clone(),
                        doc,
                    };
                    if let Err(e) = state.announce(e).await {
                        tracing::warn!(error = %e, "could not announce the race document");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "race document unreadable"),
            }
            tracing::info!(session = %session, seed, "demo race started");
            // Sample times are Unix seconds from the race's start, as in imported sessions.
            let start_s = now_unix_s();
            let tick = Duration::from_secs_f64(race.tick_s() / speed);
            let shift = |mut v: Vec<telemetry::Sample>| {
                for s in &mut v {
                    s.t_s += start_s;
                }
                v
            };
            let mut out = Vec::new();
            // The first laps as fast as the pipeline takes them (never faster than the ring
            // drains: nothing is dropped), so that every panel has data within seconds.
            let ring_high = (ring_capacity / 2).max(1);
            let mut running = true;
            while running && leader_laps(&race) + 1 < u64::from(start_lap) {
                running = race.step(&mut out);
                if out.len() >= 2000 || !running {
                    while state.ring.len() > ring_high {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    state.ingest_samples("sim", shift(std::mem::take(&mut out)));
                    tokio::task::yield_now().await;
                }
            }
            let t0 = tokio::time::Instant::now();
            let mut steps: u32 = 0;
            while running && race.step(&mut out) {
                steps += 1;
                // Send in slices of about 20 ms so that the feed is smooth at any speed.
                let due = t0 + tick * steps;
                if due > tokio::time::Instant::now() + Duration::from_millis(20) || out.len() > 4000
                {
                    state.ingest_samples("sim", shift(std::mem::take(&mut out)));
                    tokio::time::sleep_until(due).await;
                }
            }
            state.ingest_samples("sim", shift(std::mem::take(&mut out)));
            tracing::info!(session = %session, "demo race finished; starting the next one");
            seed += 1;
        }
    });
    stop.await;
    feeder.abort();
    tracing::info!("shutdown requested: draining the pipeline");
    running.shutdown().await
}

/// The session's `race` document: what the strategy model needs to know of the race itself.
fn race_doc(r: &RaceArgs, source: &str) -> String {
    serde_json::json!({
        "total_laps": r.laps,
        "track": r.track,
        "cars": r.cars,
        "seed": r.seed,
        "source": source,
    })
    .to_string()
}

fn time_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
