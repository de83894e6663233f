//! `pitwall bench analysis`: the offline analysis of a stored race and the fixed cost of a
//! strategy call on a stored session, on a simulated race (20 cars x 30 laps at 50 Hz by
//! default: about 1.9 M samples) or on a session already stored.

use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct AnalysisBenchArgs {
    /// Benchmark this stored session (with --data-dir) instead of simulating one.
    #[arg(long, requires = "data_dir")]
    pub session: Option<String>,
    /// Store of --session.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// The simulated race: cars, laps, samples per second, track, seed.
    #[arg(long, default_value_t = 20)]
    pub cars: usize,
    #[arg(long, default_value_t = 30)]
    pub laps: u32,
    #[arg(long, default_value_t = 50.0)]
    pub hz: f64,
    #[arg(long, default_value = "Austin")]
    pub track: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Repetitions of each timed step (the best is reported beside the median).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(a: AnalysisBenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (dir, session) = match (&a.session, &a.data_dir) {
        (Some(s), Some(d)) => (d.clone(), s.clone()),
        _ => {
            let session = format!("bench-{}-{}", a.track, a.seed);
            let out = std::process::Command::new(std::env::current_exe()?)
                .args(["sim", "--data-dir"])
                .arg(tmp.path())
                .args(["--track", &a.track, "--cars", &a.cars.to_string()])
                .args(["--laps", &a.laps.to_string(), "--hz", &a.hz.to_string()])
                .args(["--seed", &a.seed.to_string(), "--session", &session])
                .env("PITWALL_LOG", "warn")
                .output()
                .context("running pitwall sim")?;
            anyhow::ensure!(
                out.status.success(),
                "pitwall sim failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (tmp.path().to_path_buf(), session)
        }
    };
    let store = store::Store::open(&dir)?;
    let info = store.session(&session)?;
    let model = analysis::load_tire_model(None)?;
    let opts = analysis::AnalysisOptions {
        tire_model: Some(model),
        coach: true,
    };
    let reps = a.repeat.max(1);

    // 1. Reading the samples in time order (the store's k-way merge).
    let mut read_s = Vec::new();
    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.clear();
        let t0 = Instant::now();
        store.for_each_sample_by_time(&session, |s| samples.push(s))?;
        read_s.push(t0.elapsed().as_secs_f64());
    }
    let n = samples.len() as f64;
    // 2. The analysis alone (laps, race order, tyres, coach), samples in memory.
    let mut analyse_s = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let mut off = analysis::OfflineAnalysis::new(
            Arc::from(session.as_str()),
            info.track.as_deref().map(Arc::from),
            opts,
        );
        for s in &samples {
            off.push(s);
        }
        let r = off.finish(None, &|_, _| {});
        std::hint::black_box(&r);
        analyse_s.push(t0.elapsed().as_secs_f64());
    }
    drop(samples);
    // 3. End to end from the store (read + analysis), no pit windows.
    let mut e2e_s = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let r = server::stored::analyse_stored(&store, &session, opts, None, &|_, _, _| {})?;
        std::hint::black_box(&r);
        e2e_s.push(t0.elapsed().as_secs_f64());
    }
    // 4. The pit windows of every lap (the live worker's settings).
    let t0 = Instant::now();
    let analysed = server::stored::analyse_stored(
        &store,
        &session,
        opts,
        Some(analysis::WindowSettings::default()),
        &|_, _, _| {},
    )?;
    let windows_s = t0.elapsed().as_secs_f64() - median(e2e_s.clone());
    // 5. A strategy call's fixed cost on the stored session: its lap records, race length and
    //    the fit of the race at the last lap (everything before the Monte Carlo).
    let mut fixed_s = Vec::new();
    for _ in 0..reps.max(5) {
        let t0 = Instant::now();
        let (records, _) = server::stored::session_lap_records(&store, &session)?;
        let total = server::stored::session_total_laps(&store, &session, &records).unwrap_or(0);
        let last = records.iter().map(|r| r.lap).max().unwrap_or(0);
        let fitted = analysis::strategy::race_at_lap(&records, last.saturating_sub(1), total);
        std::hint::black_box(&fitted);
        fixed_s.push(t0.elapsed().as_secs_f64());
    }
    let out = serde_json::json!({
        "session": session,
        "samples": n,
        "laps": analysed.insights.len(),
        "read_by_time_s": median(read_s.clone()),
        "read_samples_per_s": n / median(read_s),
        "analysis_s": median(analyse_s.clone()),
        "analysis_samples_per_s": n / median(analyse_s),
        "stored_analysis_s": median(e2e_s.clone()),
        "stored_analysis_samples_per_s": n / median(e2e_s),
        "windows_s": windows_s,
        "windows_per_s": analysed.insights.len() as f64 / windows_s.max(1e-9),
        "strategy_fixed_cost_s": median(fixed_s),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let f = |k: &str| out[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "offline analysis of {session}: {} samples, {} laps",
            n, out["laps"]
        );
        println!(
            "  read in time order     {:>8.3} s  {:>12.0} samples/s",
            f("read_by_time_s"),
            f("read_samples_per_s")
        );
        println!(
            "  analysis (in memory)   {:>8.3} s  {:>12.0} samples/s",
            f("analysis_s"),
            f("analysis_samples_per_s")
        );
        println!(
            "  stored -> analysis     {:>8.3} s  {:>12.0} samples/s",
            f("stored_analysis_s"),
            f("stored_analysis_samples_per_s")
        );
        println!(
            "  pit windows, every lap {:>8.3} s  {:>12.1} windows/s",
            f("windows_s"),
            f("windows_per_s")
        );
        println!("  strategy fixed cost    {:>8.3} s  (lap records + race length + fit, before the Monte Carlo)", f("strategy_fixed_cost_s"));
    }
    Ok(())
}
