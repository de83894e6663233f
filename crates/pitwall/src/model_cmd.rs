//! `pitwall train` and `pitwall eval`: the tire model learnt from stored sessions and scored on
//! sessions it never saw.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  pitwall sim --track Austin --seed 1 && pitwall sim --track Spa --seed 2
  pitwall train --sessions sim-Austin-1,sim-Spa-2 --out tires.json
  pitwall serve --model tires.json

Sessions are split whole (never by lap): evaluate with `pitwall eval` on others.
The shipped default model is rebuilt with
  cargo run --release -p tires --example train_default -- --out data/models/tires-default.json")]
pub struct TrainArgs {
    /// Sessions to learn from, comma-separated [default: every stored session with telemetry].
    #[arg(long, value_delimiter = ',')]
    pub sessions: Vec<String>,
    /// Where to write the model (versioned JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Version label written into the model [default: pitwall-<unix time>].
    #[arg(long)]
    pub model_version: Option<String>,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
}

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  pitwall eval --model tires.json --sessions sim-Monza-7,sim-Suzuka-8 --report eval.html
  pitwall eval --laps ../shared/data/f1-game-laps/Monza.csv,../shared/data/f1-game-laps/Bahrain.csv
  pitwall eval --laps --sessions R1-barber,R1-cota --report laps.html
  pitwall eval --laps --sessions R1-barber,R1-cota,R1-vir --loo

Tire model (default): fails if a session was used to train the model. Baselines beside the
model: the last lap's loss repeated, and a straight line through the stint so far.

Per-lap records (--laps): the timing-only predictor (and, where wear is reported, the
reported-wear predictor) predict each car's next laps from its laps so far, beside \"repeat the
last lap\" and \"a line through the stint so far\"; lap-time MAE next lap and over the next
--horizon laps on green laps, 80 % interval coverage, wear R² per tyre, laps until +0.5 s.
Records come from CSV files (--laps FILE,...: one session per file), or, with --laps and no
file (or --timing), from stored sessions: their official timing, else the laps cut from their
telemetry. Sessions with official timing and no samples are scored this way automatically.
CSV columns (names matched ignoring case and punctuation; lap and lap time required):
  lap | lap_time_s, lap_time, laptime (s, m:ss.sss, or ms when named ..ms or above 1000)
  car, car_number, driver | compound, tyre | tyre_age, tyre_life | fuel, fuel_kg
  wear_fl wear_fr wear_rl wear_rr (also FLWear.., tyre_wear_fl..) | pit, pit_in | out_lap
  flag (GF/FF/green = green, else yellow) or yellow/fcy/sc (yes/no)
A lap after a pit-in lap is an out-lap; with a flag column the lap after a non-green one is
yellow; lap 1 is the start lap; when lap numbers restart (a stint log such as the F1 game long
runs) the lap column is the tyre age.")]
pub struct EvalArgs {
    /// Model file [default: the model shipped in the binary].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sessions to score on, comma-separated (none the model trained on).
    #[arg(long, value_delimiter = ',')]
    pub sessions: Vec<String>,
    /// Score the lap-time predictors on per-lap records: CSV files, comma-separated; with no
    /// file, the laps of --sessions.
    #[arg(long, num_args = 0.., value_delimiter = ',', value_name = "FILE")]
    pub laps: Option<Vec<PathBuf>>,
    /// With --sessions: score the timing-only predictor on their official timing (as --laps
    /// with no file).
    #[arg(long)]
    pub timing: bool,
    /// Laps ahead of the "next laps" figures (--laps).
    #[arg(long, default_value_t = 5)]
    pub horizon: usize,
    /// Predictor settings as JSON (a `LapEvalConfig`: {"pace": {...}, "wear": {...}}; --laps).
    #[arg(long)]
    pub pace_config: Option<PathBuf>,
    /// Choose the level discount and the field effect (off, level, level and trend) by leave-one-session-out
    /// and print each held-out session scored with the setting chosen on the others (--laps).
    #[arg(long)]
    pub loo: bool,
    /// Write an HTML report with plots here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print one JSON object (n_laps, wear_r2, wear_mae_pct, loss_mae_s, baselines, coverage...).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
}

fn open(dir: &std::path::Path) -> anyhow::Result<store::Store> {
    if !dir.join(store::DB_FILE).exists() {
        anyhow::bail!(
            "no store under {} (run `pitwall sim` or `pitwall import` first, or pass --data-dir)",
            dir.display()
        );
    }
    store::Store::open(dir).with_context(|| format!("opening the store under {}", dir.display()))
}

/// The tire model's rows of some sessions: laps cut from the stored samples, with the laps the
/// whole field ran far slower marked as safety-car laps.
fn rows(
    store: &store::Store,
    sessions: &[String],
    quiet: bool,
) -> anyhow::Result<Vec<tires::TireLap>> {
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(sessions.len() as u64)
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} cutting laps [{bar:30}] {pos}/{len} sessions {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out = Vec::new();
    for id in sessions {
        pb.set_message(id.clone());
        let laps = server::stored::lap_summaries(store, id)
            .with_context(|| format!("reading session {id}"))?;
        out.extend(laps.iter().map(tires::TireLap::from_summary));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let store = open(&a.data_dir.data_dir)?;
    let sessions = if a.sessions.is_empty() {
        store
            .sessions()?
            .into_iter()
            .filter(|s| s.samples > 0)
            .map(|s| s.id)
            .collect()
    } else {
        a.sessions.clone()
    };
    if sessions.len() < 2 {
        anyhow::bail!(
            "training needs at least 2 sessions with telemetry (found {}): simulate some with `pitwall sim --seed N`",
            sessions.len()
        );
    }
    let rows = rows(&store, &sessions, false)?;
    let model_version = a.model_version.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("pitwall-{t}")
    });
    let cfg = tires::TrainConfig {
        model_version,
        ..tires::TrainConfig::default()
    };
    let pb = indicatif::ProgressBar::new(1);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} training [{bar:30}] {pos}/{len} steps {elapsed_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let pb2 = Arc::new(pb);
    let p = pb2.clone();
    let model = tires::train(&rows, &cfg, &mut |done, total| {
        p.set_length(total as u64);
        p.set_position(done as u64);
    })
    .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
    pb2.finish_and_clear();
    let json = model.to_json().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&a.out, json).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "trained {} on {} laps of {} sessions ({} tracks) -> {}",
        model.model_version,
        rows.len(),
        sessions.len(),
        model.trained_tracks.len(),
        a.out.display()
    );
    Ok(())
}

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    if let Some(files) = a.laps.as_ref().filter(|f| !f.is_empty()) {
        let mut sessions = Vec::new();
        for f in files {
            sessions.push(crate::lap_logs::read_csv(f)?);
        }
        if !a.sessions.is_empty() {
            let store = open(&a.data_dir.data_dir)?;
            sessions.extend(stored_lap_sessions(&store, &a.sessions, a.json)?);
        }
        return eval_laps(&a, &sessions);
    }
    if a.sessions.is_empty() {
        anyhow::bail!("give --sessions A,B (stored sessions) or --laps FILE,... (CSV lap logs)");
    }
    let store = open(&a.data_dir.data_dir)?;
    if a.laps.is_some() || a.timing {
        let sessions = stored_lap_sessions(&store, &a.sessions, a.json)?;
        return eval_laps(&a, &sessions);
    }
    // Sessions with official timing and no samples: the timing-only predictor.
    let infos = store.sessions()?;
    let timing_only: Vec<String> = a
        .sessions
        .iter()
        .filter(|id| {
            infos
                .iter()
                .any(|s| &s.id == *id && server::stored::is_timing_only(s))
        })
        .cloned()
        .collect();
    if !timing_only.is_empty() {
        if !a.json {
            eprintln!(
                "official timing and no telemetry ({}): scoring the timing-only predictor",
                timing_only.join(", ")
            );
        }
        let rest: Vec<String> = a
            .sessions
            .iter()
            .filter(|s| !timing_only.contains(s))
            .cloned()
            .collect();
        if !rest.is_empty() {
            anyhow::bail!(
                "{} have telemetry and {} only timing: score them in two runs (or all with --laps)",
                rest.join(", "),
                timing_only.join(", ")
            );
        }
        let sessions = stored_lap_sessions(&store, &timing_only, a.json)?;
        return eval_laps(&a, &sessions);
    }
    let model = match &a.model {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            tires::TireModel::from_json(&text)
                .map_err(|e| anyhow::anyhow!("model {}: {e}", p.display()))?
        }
        None => tires::TireModel::from_json(analysis::DEFAULT_TIRE_MODEL_JSON)
            .map_err(|e| anyhow::anyhow!("the shipped model: {e}"))?,
    };
    let rows = rows(&store, &a.sessions, a.json)?;
    let report = tires::evaluate(&model, &rows).map_err(|e| anyhow::anyhow!("{e}"))?;
    let reporting: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.wear_end_pct.is_some())
        .map(|r| r.session_id.as_str())
        .collect();
    if !reporting.is_empty() && !a.json {
        eprintln!(
            "note: sessions {} report tyre wear, so their insights are served by the reported-wear predictor, not this model; score it with `pitwall eval --laps --sessions {}`",
            reporting.iter().copied().collect::<Vec<_>>().join(", "),
            reporting.iter().copied().collect::<Vec<_>>().join(",")
        );
    }
    if let Some(p) = &a.report {
        std::fs::write(p, tires::report_html(&report))
            .with_context(|| format!("writing {}", p.display()))?;
        if !a.json {
            eprintln!("report written to {}", p.display());
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.table());
    }
    Ok(())
}

/// Stored sessions as lap logs: the official timing when there is one, else the laps cut from
/// the telemetry (with the wear, fuel and compound the source reported).
fn stored_lap_sessions(
    store: &store::Store,
    ids: &[String],
    quiet: bool,
) -> anyhow::Result<Vec<tires::LapSession>> {
    let mut out = Vec::new();
    for id in ids {
        let official = store
            .official_laps(id, None)
            .with_context(|| format!("reading the official laps of {id}"))?;
        if !official.is_empty() {
            out.push(crate::lap_logs::from_official(id, &official));
            continue;
        }
        let rows = rows(store, std::slice::from_ref(id), quiet)?;
        let mut laps: Vec<tires::LapLog> =
            rows.iter().filter_map(tires::LapLog::from_row).collect();
        tires::mark_out_laps(&mut laps);
        if laps.is_empty() {
            anyhow::bail!("session {id} has neither official timing nor timed laps");
        }
        out.push(tires::LapSession {
            id: id.clone(),
            laps,
        });
    }
    Ok(out)
}

/// The settings grid of `--loo`: level discount × field effect (off; the field's level
/// carried; its level and trend carried).
fn loo_grid(base: &tires::PaceConfig) -> Vec<tires::PaceConfig> {
    let mut g = Vec::new();
    for d in [1.0, 0.9, 0.8, 0.7, 0.6] {
        for (field, trend) in [(false, 0), (true, 0), (true, 6)] {
            g.push(tires::PaceConfig {
                discount_per_lap: d,
                field_effect: field,
                field_persistence: 1.0,
                field_trend_laps: trend,
                ..base.clone()
            });
        }
    }
    g
}

/// `writeln!` into a String (cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

fn eval_laps(a: &EvalArgs, sessions: &[tires::LapSession]) -> anyhow::Result<()> {
    let cfg: tires::LapEvalConfig = match &a.pace_config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a LapEvalConfig", p.display()))?
        }
        None => tires::LapEvalConfig::default(),
    };
    if a.loo {
        let grid = loo_grid(&cfg.pace);
        let r = tires::leave_one_out(sessions, &grid, a.horizon)
            .ok_or_else(|| anyhow::anyhow!("--loo needs at least 2 sessions"))?;
        if a.json {
            print_out(&serde_json::to_string_pretty(&r)?)?;
            return Ok(());
        }
        let mut out = String::new();
        outln!(
            out,
            "Leave one session out: timing-only settings chosen on the other sessions"
        );
        outln!(
                out,
            "{:<24} {:>8} {:>8} {:>5} | {:>5} {:>7} {:>7} {:>7} {:>5} | {:>5} {:>7} {:>7} {:>7} {:>5}",
            "held out",
            "discount",
            "field",
            "trend",
            "n1",
            "timing",
            "last",
            "line",
            "cov",
            "n1-k",
            "timing",
            "last",
            "line",
            "cov"
        );
        let line = |out: &mut String,
                    name: &str,
                    g: Option<&tires::PaceConfig>,
                    m: &tires::LapTimeMetrics| {
            let (x, y) = (&m.next_lap, &m.next_laps);
            outln!(
                out,
                "{:<24} {:>8} {:>8} {:>5} | {:>5} {:>7.3} {:>7.3} {:>7.3} {:>5.2} | {:>5} {:>7.3} {:>7.3} {:>7.3} {:>5.2}",
                name,
                g.map_or("-".into(), |g| format!("{:.2}", g.discount_per_lap)),
                g.map_or("-".into(), |g| if g.field_effect { "on" } else { "off" }.to_string()),
                g.map_or("-".into(), |g| g.field_trend_laps.to_string()),
                x.n, x.timing_mae_s, x.last_lap_mae_s, x.stint_line_mae_s, x.timing_coverage,
                y.n, y.timing_mae_s, y.last_lap_mae_s, y.stint_line_mae_s, y.timing_coverage
            );
        };
        for f in &r.folds {
            line(&mut out, &f.held_out, r.grid.get(f.chosen), &f.metrics);
        }
        line(&mut out, "ALL (held out)", None, &r.held_out);
        outln!(
            out,
            "\nEvery setting pooled over all sessions (next lap, next {} laps MAE s):",
            a.horizon
        );
        for (g, m) in r.grid.iter().zip(&r.pooled_mae_s) {
            outln!(
                out,
                "  discount {:.2} field effect {} trend laps {}: {:.4} {:.4}",
                g.discount_per_lap,
                if g.field_effect { "on " } else { "off" },
                g.field_trend_laps,
                m[0],
                m[1]
            );
        }
        return print_out(&out);
    }
    let report = tires::evaluate_laps(sessions, &cfg, a.horizon);
    if let Some(p) = &a.report {
        std::fs::write(p, tires::laps_report_html(&report))
            .with_context(|| format!("writing {}", p.display()))?;
        if !a.json {
            eprintln!("report written to {}", p.display());
        }
    }
    if a.json {
        print_out(&serde_json::to_string_pretty(&report)?)?;
    } else {
        print_out(&report.table())?;
    }
    Ok(())
}

/// Prints `s` (and a newline); a closed pipe (`| head`) ends the output quietly.
fn print_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match writeln!(o, "{s}").and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
