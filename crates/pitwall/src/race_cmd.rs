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
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: crate::cli::ServeArgs,
    #[command(flatten)]
    pub race: RaceArgs,
    /// Playback speed: 1 is real time, 10 is ten times faster.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} laps {{elapsed_precise}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
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
    let pb = progress(u64::from(a.race.laps), "simulating");
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut n = 0u64;
    let leader_laps = |race: &sim::Race| {
        race.standings()
            .first()
            .map(|s| u64::from(s.laps_completed))
            .unwrap_or(0)
    };
    match &a.csv {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = sim::LongCsvWriter::new(
                std::io::BufWriter::new(file),
                sim::LongCsvOptions::default(),
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
            st.set_session_meta(&session_id, "race", &race_doc(&a.race, "sim"))?;
            let mut steps = 0u64;
            let mut batch = Vec::with_capacity(50_000);
            loop {
                let more = race.step(&mut out);
                for mut s in out.drain(..) {
                    s.session_id = Arc::from(session_id.as_str());
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
            eprintln!(
                "stored {n} samples of {} cars x {} laps in {:.1} s",
                a.race.cars,
                a.race.laps,
                t0.elapsed().as_secs_f64()
            );
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
    let running = server::start(config).await?;
    let stop = crate::shutdown_signal();
    println!(
        "pitwall demo: {} cars racing {} laps at {} (x{}) -> dashboard http://{}/  (API docs http://{}/docs)",
        a.race.cars,
        a.race.laps,
        a.race.track,
        a.speed,
        running.http_addr,
        running.http_addr
    );
    crate::print_listening(&running);
    let state = running.state.clone();
    let race_args = a.race.clone();
    let speed = a.speed;
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
            if let Err(e) = state.reader.lock().set_session_meta(&session, "race", &doc) {
                tracing::warn!(error = %e, "could not store the race document");
            }
            tracing::info!(session = %session, seed, "demo race started");
            let tick = Duration::from_secs_f64(race.tick_s() / speed);
            let t0 = tokio::time::Instant::now();
            let mut steps: u32 = 0;
            let mut out = Vec::new();
            while race.step(&mut out) {
                steps += 1;
                // Send in slices of about 20 ms so that the feed is smooth at any speed.
                let due = t0 + tick * steps;
                if due > tokio::time::Instant::now() + Duration::from_millis(20) || out.len() > 4000
                {
                    state.ingest_samples("sim", std::mem::take(&mut out));
                    tokio::time::sleep_until(due).await;
                }
            }
            state.ingest_samples("sim", std::mem::take(&mut out));
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
