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
Example:
  pitwall eval --model tires.json --sessions sim-Monza-7,sim-Suzuka-8 --report eval.html

Fails if a session was used to train the model. Baselines beside the model: the last lap's
loss repeated, and a straight line through the stint so far.")]
pub struct EvalArgs {
    /// Model file [default: the model shipped in the binary].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sessions to score on, comma-separated (none the model trained on).
    #[arg(long, value_delimiter = ',', required = true)]
    pub sessions: Vec<String>,
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
    let store = open(&a.data_dir.data_dir)?;
    let rows = rows(&store, &a.sessions, a.json)?;
    let report = tires::evaluate(&model, &rows).map_err(|e| anyhow::anyhow!("{e}"))?;
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
