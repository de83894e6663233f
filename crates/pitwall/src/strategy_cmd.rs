//! `pitwall strategy`: the pit-window recommendation for a car of a stored race (or a TOML
//! scenario), and back-tests of the race model against real results.

use anyhow::Context;
use clap::Args;
use parking_lot::Mutex;
use server::stored::{run_strategy, StrategyQuestion};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  pitwall strategy --session sim-Austin-1 --car GR86-004-7 --lap 12
  pitwall strategy --scenario data/strategy/example-scenario.toml --json
  pitwall strategy --backtest --session sim-Austin-1 --lap 15
  pitwall strategy --backtest --sessions R1-barber,R1-cota --at 0.25,0.5,0.75 --report bt.html
  pitwall strategy --print-example-scenario > my-race.toml

The race model (TUMFTM race-simulation structure) reads its parameters from
data/strategy/default.toml; a scenario's [params] table overrides any of them.
From a stored session, the model is fitted from the session's laps up to --lap
(official timing when imported, else laps cut from telemetry): each car's pace,
degradation per stint, lap-time noise, the pit-stop cost and full-course yellows.")]
pub struct StrategyArgs {
    /// Stored session to take the race from (see `pitwall sessions`).
    #[arg(long, conflicts_with = "scenario")]
    pub session: Option<String>,
    /// Car to optimise (its id in the session: `pitwall sessions` lists them).
    #[arg(long, conflicts_with_all = ["scenario", "backtest"])]
    pub car: Option<String>,
    /// The race as it stood at the end of this lap [default: the session's last lap].
    #[arg(long)]
    pub lap: Option<u32>,
    /// Race length in laps [default: the session's race document, else its last lap].
    #[arg(long)]
    pub total_laps: Option<u32>,
    /// A TOML scenario (documented in data/strategy/example-scenario.toml).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Predict every car's finishing position from lap --lap (or the --at fractions of the
    /// race) and compare with the real result: the official results file's classification
    /// (official preferred over provisional), else the timing's order (laps completed, then race
    /// time). Two baselines are scored on the same truth: "positions at the cut-off hold" and
    /// "order by mean green-flag lap time so far".
    #[arg(long)]
    pub backtest: bool,
    /// Back-test several stored races at once (comma separated): a table per race and pooled.
    #[arg(long, value_delimiter = ',', conflicts_with = "session")]
    pub sessions: Vec<String>,
    /// Back-test cut-offs as fractions of the race (comma separated), e.g. 0.25,0.5,0.75.
    #[arg(long, value_delimiter = ',', conflicts_with = "lap")]
    pub at: Vec<f64>,
    /// Write an HTML report of the back-test: per car, the predicted finish distribution
    /// against the real result, with plots.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Calibrate the race model on the stored races of --sessions (full-course yellows,
    /// retirements, incidents, noise; the overtaking threshold and noise scale tuned by
    /// back-testing them) and write the parameters to --out.
    #[arg(long, requires = "out", conflicts_with = "backtest")]
    pub calibrate: bool,
    /// With --calibrate: also back-test each race with a calibration of the others only (the
    /// honest figure for races the calibration has not seen).
    #[arg(long, requires = "calibrate")]
    pub leave_one_out: bool,
    /// Where --calibrate writes its parameters (TOML, for --params).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Race-model parameters to start from (TOML, any subset of data/strategy/default.toml),
    /// e.g. a calibration such as data/strategy/gr-cup.toml.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Iterations per plan (the scenario's own value when not given).
    #[arg(long)]
    pub iterations: Option<u32>,
    /// Seed: the same seed gives the same answer.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print JSON (the plans with their outcomes and the recommended window).
    #[arg(long)]
    pub json: bool,
    /// Print the example scenario TOML and exit.
    #[arg(long)]
    pub print_example_scenario: bool,
    /// With --scenario: simulate the race with every car on its own plan and report every car's
    /// finishing distribution (mean position, P(position)) instead of the asked car's plans.
    #[arg(long, requires = "scenario")]
    pub all_cars: bool,
    #[command(flatten)]
    pub data_dir: crate::cli::DataDirArg,
}

pub(crate) fn open_store(a: &StrategyArgs) -> anyhow::Result<store::Store> {
    let dir = &a.data_dir.data_dir;
    if !dir.join(store::DB_FILE).exists() {
        anyhow::bail!(
            "no store under {} (run `pitwall sim`, `pitwall import` or `pitwall serve` first, or pass --data-dir)",
            dir.display()
        );
    }
    store::Store::open(dir).with_context(|| format!("opening the store under {}", dir.display()))
}

/// A progress bar fed by the engine's race counter while `work` runs on another thread.
pub(crate) fn with_progress<T: Send + 'static>(
    total_races: Option<u64>,
    quiet: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let start = strategy::races_simulated();
    let handle = std::thread::spawn(work);
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        match total_races {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        }
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} simulating [{bar:30}] {human_pos}/{human_len} races {per_sec} {elapsed_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while !handle.is_finished() {
        pb.set_position(strategy::races_simulated().saturating_sub(start));
        std::thread::sleep(Duration::from_millis(50));
    }
    pb.finish_and_clear();
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the simulation thread panicked"))
}

pub fn run(a: StrategyArgs) -> anyhow::Result<()> {
    if a.print_example_scenario {
        print!("{}", strategy::EXAMPLE_SCENARIO_TOML);
        return Ok(());
    }
    if a.iterations == Some(0) {
        anyhow::bail!("--iterations must be at least 1");
    }
    if a.backtest {
        return crate::backtest_cmd::run(a);
    }
    if a.calibrate {
        return crate::backtest_cmd::calibrate(a);
    }
    if a.all_cars {
        return all_cars(a);
    }
    let t0 = Instant::now();
    let (question, total) = match (&a.scenario, &a.session, &a.car) {
        (Some(path), _, _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the scenario {}", path.display()))?;
            let mut sc = strategy::Scenario::from_toml_str(&text)
                .with_context(|| format!("scenario {}", path.display()))?;
            if let Some(n) = a.iterations {
                sc.iterations = n;
            }
            if let Some(s) = a.seed {
                sc.seed = s;
            }
            let total = sc.adaptive.is_none().then(|| {
                sc.plans
                    .enumerate(
                        sc.race.current_lap,
                        sc.race.total_laps,
                        sc.params.pit.min_stint_laps,
                        &sc.params.pit.stop_compounds,
                    )
                    .len() as u64
                    * u64::from(sc.iterations)
            });
            (StrategyQuestion::Scenario(Box::new(sc)), total)
        }
        (None, Some(session), Some(car)) => (
            StrategyQuestion::Session {
                session: session.clone(),
                car: car.clone(),
                lap: a.lap,
                total_laps: a.total_laps,
                iterations: a.iterations.unwrap_or(2000),
                seed: a.seed.unwrap_or(0),
            },
            None,
        ),
        (None, Some(_), None) => anyhow::bail!(
            "give the car to optimise: --car ID (`pitwall sessions` lists the cars), or --backtest"
        ),
        (None, None, _) => anyhow::bail!(
            "give a stored race (--session ID --car ID [--lap N]) or a scenario (--scenario FILE); see --help"
        ),
    };
    let res = match question {
        StrategyQuestion::Scenario(sc) => with_progress(total, a.json, move || {
            strategy::evaluate(&sc)
                .map(|report| server::stored::StrategyAnswer {
                    report,
                    source: None,
                    pit_loss_s: None,
                })
                .map_err(server::stored::StrategyFailure::Model)
        })?,
        q => {
            let store = std::sync::Arc::new(Mutex::new(open_store(&a)?));
            with_progress(total, a.json, move || run_strategy(&store, q))?
        }
    };
    let server::stored::StrategyAnswer { report, source, .. } =
        res.map_err(|e| anyhow::anyhow!("{e}"))?;
    let elapsed = t0.elapsed();
    if a.json {
        let out = serde_json::json!({
            "car_id": report.car_id,
            "current_lap": report.current_lap,
            "total_laps": report.total_laps,
            "seed": report.seed,
            "races_simulated": report.races_simulated,
            "elapsed_s": elapsed.as_secs_f64(),
            "lap_source": source,
            "recommendation": report.recommendation,
            "window": report.recommendation.window.map(|w| serde_json::json!({"open_lap": w.0, "close_lap": w.1})),
            "plans": report.outcomes,
            "field_plans": report.field_plans,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_report(&report, elapsed);
    Ok(())
}

fn print_report(r: &strategy::Report, elapsed: Duration) {
    println!(
        "Car {} at lap {} of {}: {} races simulated in {:.2} s (seed {})",
        r.car_id,
        r.current_lap,
        r.total_laps,
        r.races_simulated,
        elapsed.as_secs_f64(),
        r.seed
    );
    println!();
    println!(
        "{:>4}  {:<26} {:>9} {:>7} {:>6} {:>9} {:>5} {:>12} {:>10}",
        "rank", "plan", "E[pos]", "±SE", "win%", "95% int", "P5", "vs best", "race time"
    );
    let shown = r.outcomes.len().min(25);
    for o in r.outcomes.iter().take(shown) {
        println!(
            "{:>4}  {:<26} {:>9.2} {:>7.3} {:>6.1} {:>9} {:>5} {:>12} {:>10}",
            o.rank,
            o.label,
            o.expected_position,
            o.expected_position_se,
            100.0 * o.win_probability,
            format!("P{}-P{}", o.interval95.0, o.interval95.1),
            format!("P{}", o.p5_position),
            if o.rank == 1 {
                "best".to_string()
            } else {
                format!("+{:.2}±{:.2}", o.diff_vs_best, o.se_diff_vs_best)
            },
            o.expected_race_time_s
                .map(|t| format!("{t:.1} s"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    if r.outcomes.len() > shown {
        println!(
            "      ... {} more plans (--json lists all)",
            r.outcomes.len() - shown
        );
    }
    if let Some(best) = r.outcomes.first() {
        println!();
        println!(
            "Finish-position distribution of the best plan ({}):",
            best.label
        );
        for (k, p) in best.finish_position_distribution.iter().enumerate() {
            if *p >= 0.005 {
                let bar = "#".repeat((p * 60.0).round() as usize);
                println!("  P{:<3} {:>5.1}% {}", k + 1, 100.0 * p, bar);
            }
        }
    }
    println!();
    println!("Recommendation: {}", r.recommendation.text);
    for e in &r.recommendation.evidence {
        println!("  - {e}");
    }
}

/// CPU time of this process so far (user + system), from /proc: races per core are counted on
/// it, so a loaded machine does not understate them.
fn process_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / 100.0)
}

/// `--all-cars`: every car of the scenario on its own plan, one finishing distribution per car.
fn all_cars(a: StrategyArgs) -> anyhow::Result<()> {
    let path = a
        .scenario
        .as_ref()
        .context("--all-cars needs --scenario FILE")?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the scenario {}", path.display()))?;
    let sc = strategy::Scenario::from_toml_str(&text)
        .with_context(|| format!("scenario {}", path.display()))?;
    let opts = strategy::McOptions {
        iterations: a.iterations.unwrap_or(sc.iterations),
        seed: a.seed.unwrap_or(sc.seed),
    };
    let (t0, cpu0) = (Instant::now(), process_cpu_s());
    let (params, race) = (sc.params.clone(), sc.race.clone());
    let opts2 = opts;
    let res = with_progress(Some(u64::from(opts.iterations)), a.json, move || {
        strategy::simulate_field(&params, &race, &opts2)
    })?;
    let cars = res.map_err(|e| anyhow::anyhow!("{e}"))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = match (cpu0, process_cpu_s()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let races = f64::from(opts.iterations);
    let per_core = cpu_s.filter(|&c| c > 0.0).map(|c| races / c);
    if a.json {
        let out = serde_json::json!({
            "current_lap": sc.race.current_lap,
            "total_laps": sc.race.total_laps,
            "seed": opts.seed,
            "races_simulated": opts.iterations,
            "elapsed_s": wall_s,
            "cpu_s": cpu_s,
            "races_per_s_per_core": per_core,
            "cars": cars,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} races, every car on its own plan, in {:.2} s{} (seed {})",
        opts.iterations,
        wall_s,
        per_core
            .map(|r| format!(", {r:.0} races/s per core"))
            .unwrap_or_default(),
        opts.seed
    );
    println!();
    println!(
        "{:<10} {:>8} {:>7} {:>6} {:>7}  {:<30} P(position)",
        "car", "E[pos]", "±SE", "win%", "retd%", "plan"
    );
    for c in &cars {
        let dist: Vec<String> = c
            .finish_position_distribution
            .iter()
            .map(|p| format!("{:.2}", p))
            .collect();
        println!(
            "{:<10} {:>8.2} {:>7.3} {:>6.1} {:>7.1}  {:<30} {}",
            c.car_id,
            c.expected_position,
            c.expected_position_se,
            100.0 * c.win_probability,
            100.0 * c.retirement_probability,
            c.strategy.to_string(),
            dist.join(" ")
        );
    }
    Ok(())
}
