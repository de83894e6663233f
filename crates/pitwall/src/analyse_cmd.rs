//! `pitwall analyse`: a stored session's analysis (laps, tyre predictions, pit windows and the
//! call, driver profiles and alerts), computed as the live stage computes it and stored with
//! its version. `import`, `sim` and `replay` run it at their end; sessions analysed by an
//! older version are analysed again here.

use crate::cli::DataDirArg;
use anyhow::Context;
use clap::Args;
use server::stored::{self, AnalysisRecord};
use std::path::PathBuf;
use store::Store;

#[derive(Args, Debug)]
pub struct AnalyseArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Session(s) to analyse (`pitwall sessions` lists them).
    #[arg(value_name = "SESSION", required_unless_present = "all")]
    pub sessions: Vec<String>,
    /// Every session with samples whose analysis is missing or older than this version
    /// (with --force: every session with samples).
    #[arg(long, conflicts_with = "sessions")]
    pub all: bool,
    /// Analyse again even when the stored analysis is current.
    #[arg(long)]
    pub force: bool,
    /// Skip the pit windows (the Monte Carlo of every lap): laps, tyres and coaching only.
    #[arg(long)]
    pub no_windows: bool,
    /// Tire model file [default: the model shipped in the binary].
    #[arg(long, env = "PITWALL_MODEL")]
    pub model: Option<PathBuf>,
}

/// Settings of one analysis run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub windows: bool,
    pub tire_model: &'static analysis::tires::TireModel,
}

impl Settings {
    pub fn new(model: Option<&std::path::Path>, windows: bool) -> anyhow::Result<Settings> {
        Ok(Settings {
            windows,
            tire_model: analysis::load_tire_model(model)?,
        })
    }

    pub fn options(&self) -> analysis::AnalysisOptions {
        analysis::AnalysisOptions {
            tire_model: Some(self.tire_model),
            coach: true,
        }
    }

    /// The live stage's pit-window settings (the server's defaults).
    pub fn windows(&self) -> Option<analysis::WindowSettings> {
        let c = server::Config::default();
        self.windows.then_some(analysis::WindowSettings {
            screen_iterations: c.strategy_live_iterations,
            seed: c.strategy_seed,
        })
    }
}

/// Analyses one stored session and stores the result, with a progress bar.
pub fn analyse_session(
    store: &mut Store,
    session: &str,
    settings: &Settings,
) -> anyhow::Result<AnalysisRecord> {
    let t0 = std::time::Instant::now();
    let info = store.session(session)?;
    let pb = crate::progress_bar(info.samples, &format!("analysing {session}"), "samples");
    let analysed = stored::analyse_stored(
        store,
        session,
        settings.options(),
        settings.windows(),
        &|phase, done, total| {
            if phase == "windows" && pb.length() != Some(total) {
                pb.set_length(total);
                pb.set_message("pit windows");
            }
            pb.set_position(done);
        },
    )
    .with_context(|| format!("analysing session {session}"))?;
    pb.finish_and_clear();
    let record = stored::write_analysed(
        store,
        session,
        &analysed,
        settings.windows,
        t0.elapsed().as_secs_f64(),
    )?;
    Ok(record)
}

/// One line saying what an analysis found.
pub fn summary(session: &str, r: &AnalysisRecord) -> String {
    format!(
        "analysed {session}: {} samples -> {} laps, {} coaching alerts, {} driver profiles{} in {:.1} s (analysis v{})",
        r.samples,
        r.laps,
        r.alerts,
        r.profiles,
        if r.windows { ", pit windows" } else { "" },
        r.seconds,
        r.version
    )
}

pub fn run(a: AnalyseArgs) -> anyhow::Result<()> {
    let mut store = Store::open(&a.data_dir.data_dir)
        .with_context(|| format!("opening the store under {}", a.data_dir.data_dir.display()))?;
    let settings = Settings::new(a.model.as_deref(), !a.no_windows)?;
    let targets: Vec<String> = if a.all {
        store
            .sessions()?
            .into_iter()
            .filter(|s| {
                (s.samples > 0 || stored::is_timing_only(s))
                    && (a.force || stored::needs_analysis(&store, s))
            })
            .map(|s| s.id)
            .collect()
    } else {
        a.sessions.clone()
    };
    if targets.is_empty() {
        eprintln!(
            "every session with samples or timing is analysed by the current version (v{}); --force analyses again",
            analysis::ANALYSIS_VERSION
        );
        return Ok(());
    }
    for id in &targets {
        let info = store
            .session(id)
            .with_context(|| format!("no session {id:?}: `pitwall sessions` lists them"))?;
        if info.samples == 0 && !stored::is_timing_only(&info) {
            eprintln!("{id}: no samples and no timing: nothing to analyse");
            continue;
        }
        if !a.force && !a.all && !stored::needs_analysis(&store, &info) {
            eprintln!("{id}: already analysed by the current version (--force analyses again)");
            continue;
        }
        let r = analyse_session(&mut store, id, &settings)?;
        println!("{}", summary(id, &r));
    }
    Ok(())
}
