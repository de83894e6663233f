//! `pitwall strategy --backtest`: the race model against real results, over one or many stored
//! races and cut-offs, with a table per race, pooled figures, JSON and an HTML report.

use crate::strategy_cmd::{open_store, with_progress, StrategyArgs};
use anyhow::Context;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Instant;
use strategy::{Backtest, BacktestOptions, LapRecord, RaceParams, TruthSource};

/// One race's back-tests at every cut-off.
#[derive(Debug, Serialize)]
struct RaceBacktest {
    session_id: String,
    lap_source: analysis::LapSource,
    truth: TruthSource,
    total_laps: u32,
    cuts: Vec<Cut>,
    /// Cut-offs this race could not be back-tested at, with the reason.
    skipped: Vec<Skipped>,
}

/// A cut-off left out of one race.
#[derive(Debug, Serialize)]
struct Skipped {
    at: Option<f64>,
    at_lap: u32,
    reason: String,
}

/// One cut-off of one race.
#[derive(Debug, Serialize)]
struct Cut {
    /// The fraction asked for (`None` with `--lap`).
    at: Option<f64>,
    #[serde(flatten)]
    result: Backtest,
}

/// Figures pooled over races at one cut-off (weighted by cars).
#[derive(Debug, Serialize, Default, Clone)]
struct Pooled {
    at: Option<f64>,
    races: usize,
    cars: usize,
    mae_positions: f64,
    median_mae_positions: f64,
    baseline_mae_positions: f64,
    pace_baseline_mae_positions: f64,
    coverage80: f64,
    /// Model MAE over the "positions hold" MAE (< 1: the model is better).
    mae_ratio_to_hold: f64,
}

/// What `--at` / `--lap` ask for.
#[derive(Debug, Clone, Copy)]
enum CutSpec {
    Fraction(f64),
    Lap(u32),
}

impl CutSpec {
    fn at_lap(self, total_laps: u32) -> u32 {
        match self {
            CutSpec::Lap(n) => n,
            CutSpec::Fraction(f) => {
                let lap = (f * f64::from(total_laps)).round() as u32;
                lap.clamp(1, total_laps.saturating_sub(1).max(1))
            }
        }
    }

    fn fraction(self) -> Option<f64> {
        match self {
            CutSpec::Fraction(f) => Some(f),
            CutSpec::Lap(_) => None,
        }
    }

    fn label(self) -> String {
        match self {
            CutSpec::Fraction(f) => format!("{f}"),
            CutSpec::Lap(n) => format!("lap {n}"),
        }
    }
}

fn load_params(a: &StrategyArgs) -> anyhow::Result<RaceParams> {
    match &a.params {
        None => Ok(RaceParams::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the parameters {}", path.display()))?;
            RaceParams::from_toml_overrides(&text)
                .with_context(|| format!("parameters {}", path.display()))
        }
    }
}

pub fn run(a: StrategyArgs) -> anyhow::Result<()> {
    let sessions: Vec<String> = if !a.sessions.is_empty() {
        a.sessions.clone()
    } else if let Some(s) = &a.session {
        vec![s.clone()]
    } else {
        anyhow::bail!(
            "--backtest needs the race(s): --session ID or --sessions A,B,C (`pitwall sessions` lists them)"
        );
    };
    let cuts: Vec<CutSpec> = if !a.at.is_empty() {
        for f in &a.at {
            if !(f.is_finite() && *f > 0.0 && *f < 1.0) {
                anyhow::bail!("--at takes fractions of the race between 0 and 1 (got {f}), e.g. --at 0.25,0.5,0.75");
            }
        }
        a.at.iter().map(|&f| CutSpec::Fraction(f)).collect()
    } else if let Some(l) = a.lap {
        vec![CutSpec::Lap(l)]
    } else {
        anyhow::bail!(
            "--backtest needs the cut-off: --lap N, or --at 0.25,0.5,0.75 (fractions of the race)"
        );
    };
    let params = load_params(&a)?;
    let iterations = a.iterations.unwrap_or(4000);
    let seed = a.seed.unwrap_or(0);

    // Read every race first (one store pass), then simulate.
    let store = open_store(&a)?;
    let mut inputs = Vec::new();
    for s in &sessions {
        let (records, source) = server::stored::session_lap_records(&store, s)
            .with_context(|| format!("reading the laps of {s}"))?;
        if records.is_empty() {
            anyhow::bail!("session {s} has no timed laps to back-test on (`pitwall sessions` shows what is stored)");
        }
        let classification = server::stored::session_classification(&store, s)
            .with_context(|| format!("reading the results of {s}"))?;
        let total_laps = server::stored::session_total_laps(&store, s, &records).unwrap_or(0);
        inputs.push((s.clone(), records, source, classification, total_laps));
    }
    drop(store);

    let t0 = Instant::now();
    let total_races = (inputs.len() * cuts.len()) as u64 * u64::from(iterations);
    let quiet = a.json;
    let params2 = params.clone();
    let cuts2 = cuts.clone();
    let results = with_progress(Some(total_races), quiet, move || {
        run_all(&inputs, &cuts2, &params2, iterations, seed)
    })??;
    let elapsed = t0.elapsed().as_secs_f64();
    let pooled = pool(&results, &cuts);

    if let Some(path) = &a.report {
        std::fs::write(path, report_html(&results, &pooled, iterations))
            .with_context(|| format!("writing the report {}", path.display()))?;
        if !a.json {
            eprintln!("report written to {}", path.display());
        }
    }
    if a.json && a.session.is_some() && a.lap.is_some() {
        // One race at one lap: the flat shape of the first back-test command (kept for the
        // tools that read it), with the new figures beside.
        if let Some((r, c)) = results.first().and_then(|r| Some((r, r.cuts.first()?))) {
            let b = &c.result;
            let out = serde_json::json!({
                "session_id": r.session_id,
                "lap_source": r.lap_source,
                "truth": b.truth,
                "at_lap": b.at_lap,
                "total_laps": b.total_laps,
                "cars": b.cars.len(),
                "mae_positions": b.mae_positions,
                "median_mae_positions": b.median_mae_positions,
                "coverage80": b.coverage80,
                "baseline_mae_positions": b.baseline_mae_positions,
                "pace_baseline_mae_positions": b.pace_baseline_mae_positions,
                "unclassified": b.unclassified,
                "per_car": b.cars,
                "fitted": b.fitted,
                "iterations": iterations,
                "elapsed_s": elapsed,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(());
        }
    }
    if a.json {
        let out = serde_json::json!({
            "iterations": iterations,
            "seed": seed,
            "elapsed_s": elapsed,
            "params": a.params,
            "races": results,
            "pooled": pooled,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for r in &results {
        print_race(r, results.len() == 1 && cuts.len() == 1);
    }
    if results.len() > 1 || cuts.len() > 1 {
        print_pooled(&pooled);
    }
    println!(
        "\n{} back-tests x {iterations} races in {elapsed:.2} s (seed {seed})",
        results.iter().map(|r| r.cuts.len()).sum::<usize>()
    );
    Ok(())
}

type Input = (
    String,
    Vec<LapRecord>,
    analysis::LapSource,
    Option<(Vec<strategy::Classified>, TruthSource)>,
    u32,
);

fn run_all(
    inputs: &[Input],
    cuts: &[CutSpec],
    params: &RaceParams,
    iterations: u32,
    seed: u64,
) -> anyhow::Result<Vec<RaceBacktest>> {
    let mut out = Vec::new();
    for (session, records, source, classification, total_laps) in inputs {
        let total_laps = *total_laps;
        let opts = BacktestOptions {
            iterations,
            seed,
            total_laps: Some(total_laps),
            classification: classification.clone(),
            params: params.clone(),
        };
        let mut race_cuts = Vec::new();
        let mut truth = TruthSource::Timing;
        let mut skipped = Vec::new();
        for &c in cuts {
            let at_lap = c.at_lap(total_laps);
            match strategy::backtest_with(records, at_lap, &opts) {
                Ok(res) => {
                    truth = res.truth;
                    race_cuts.push(Cut {
                        at: c.fraction(),
                        result: res,
                    });
                }
                // One cut-off the race cannot answer (too early, too late) does not stop the
                // others: it is reported with its reason.
                Err(e) if inputs.len() * cuts.len() > 1 => skipped.push(Skipped {
                    at: c.fraction(),
                    at_lap,
                    reason: e.to_string(),
                }),
                Err(e) => anyhow::bail!("{session}, {}: {e}", c.label()),
            }
        }
        out.push(RaceBacktest {
            session_id: session.clone(),
            lap_source: *source,
            truth,
            total_laps,
            cuts: race_cuts,
            skipped,
        });
    }
    Ok(out)
}

fn pool(results: &[RaceBacktest], cuts: &[CutSpec]) -> Vec<Pooled> {
    let mut out = Vec::new();
    for c in cuts {
        let mut p = Pooled {
            at: c.fraction(),
            ..Pooled::default()
        };
        for r in results {
            let Some(cut) = r.cuts.iter().find(|x| x.at == c.fraction()) else {
                continue;
            };
            let b = &cut.result;
            let n = b.cars.len();
            let w = n as f64;
            p.races += 1;
            p.cars += n;
            p.mae_positions += b.mae_positions * w;
            p.median_mae_positions += b.median_mae_positions * w;
            p.baseline_mae_positions += b.baseline_mae_positions * w;
            p.pace_baseline_mae_positions += b.pace_baseline_mae_positions * w;
            p.coverage80 += b.coverage80 * w;
        }
        let w = p.cars.max(1) as f64;
        p.mae_positions /= w;
        p.median_mae_positions /= w;
        p.baseline_mae_positions /= w;
        p.pace_baseline_mae_positions /= w;
        p.coverage80 /= w;
        p.mae_ratio_to_hold = if p.baseline_mae_positions > 0.0 {
            p.mae_positions / p.baseline_mae_positions
        } else {
            f64::NAN
        };
        out.push(p);
    }
    out
}

/// A cut-off's figures as table cells (at, lap, cars, model MAE, median MAE, hold MAE, pace MAE,
/// coverage %): the text table and the HTML report render the same cells.
fn cut_cells(c: &Cut) -> [String; 8] {
    let b = &c.result;
    [
        at_label(c.at),
        b.at_lap.to_string(),
        b.cars.len().to_string(),
        format!("{:.2}", b.mae_positions),
        format!("{:.2}", b.median_mae_positions),
        format!("{:.2}", b.baseline_mae_positions),
        format!("{:.2}", b.pace_baseline_mae_positions),
        format!("{:.0}", 100.0 * b.coverage80),
    ]
}

/// A pooled row as cells (at, races, cars, the four MAEs, coverage %, model / hold).
fn pooled_cells(x: &Pooled) -> [String; 9] {
    [
        at_label(x.at),
        x.races.to_string(),
        x.cars.to_string(),
        format!("{:.2}", x.mae_positions),
        format!("{:.2}", x.median_mae_positions),
        format!("{:.2}", x.baseline_mae_positions),
        format!("{:.2}", x.pace_baseline_mae_positions),
        format!("{:.0}", 100.0 * x.coverage80),
        format!("{:.2}", x.mae_ratio_to_hold),
    ]
}

fn at_label(at: Option<f64>) -> String {
    at.map(|f| format!("{f}")).unwrap_or_else(|| "-".into())
}

fn truth_label(t: TruthSource) -> &'static str {
    match t {
        TruthSource::OfficialResults => "official results",
        TruthSource::ProvisionalResults => "provisional results",
        TruthSource::Timing => "timing (laps, then race time)",
    }
}

fn print_race(r: &RaceBacktest, per_car: bool) {
    println!(
        "\n{}: {} laps, truth from {}, laps from {:?}",
        r.session_id,
        r.total_laps,
        truth_label(r.truth),
        r.lap_source
    );
    println!(
        "  {:>6} {:>6} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "at", "lap", "cars", "model MAE", "median MAE", "hold MAE", "pace MAE", "80% cov"
    );
    for c in &r.cuts {
        let b = &c.result;
        let [at, lap, cars, mae, median, hold, pace, cov] = cut_cells(c);
        println!(
            "  {at:>6} {lap:>6} {cars:>5} {mae:>10} {median:>10} {hold:>10} {pace:>10} {cov:>8}%"
        );
        if !b.unclassified.is_empty() {
            println!(
                "         not in the classification (left out): {}",
                b.unclassified.join(", ")
            );
        }
    }
    for s in &r.skipped {
        println!(
            "  {:>6} {:>6}  skipped: {}",
            at_label(s.at),
            s.at_lap,
            s.reason
        );
    }
    if per_car {
        if let Some(c) = r.cuts.first() {
            print_cars(&c.result);
        }
    }
}

fn print_cars(b: &Backtest) {
    println!();
    println!(
        "  {:<16} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9}",
        "car", "at lap", "pace", "actual", "E[pos]", "median", "80% int"
    );
    let mut cars = b.cars.clone();
    cars.sort_by_key(|c| c.actual_position);
    for c in &cars {
        println!(
            "  {:<16} {:>8} {:>8} {:>8} {:>9.2} {:>7} {:>9}",
            c.car_id,
            format!("P{}", c.position_at_lap),
            format!("P{}", c.pace_position),
            format!("P{}", c.actual_position),
            c.expected_position,
            format!("P{}", c.median_position),
            format!("P{}-P{}", c.interval80.0, c.interval80.1)
        );
    }
}

fn print_pooled(p: &[Pooled]) {
    println!("\nPooled (weighted by cars):");
    println!(
        "  {:>6} {:>5} {:>5} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12}",
        "at",
        "races",
        "cars",
        "model MAE",
        "median MAE",
        "hold MAE",
        "pace MAE",
        "80% cov",
        "model/hold"
    );
    for x in p {
        let [at, races, cars, mae, median, hold, pace, cov, ratio] = pooled_cells(x);
        println!(
            "  {at:>6} {races:>5} {cars:>5} {mae:>10} {median:>10} {hold:>10} {pace:>10} {cov:>8}% {ratio:>12}"
        );
    }
}

/// One HTML table row of already formatted cells.
fn html_row(cells: &[String]) -> String {
    let mut row = String::from("<tr>");
    for c in cells {
        let _ = write!(row, "<td>{}</td>", esc(c));
    }
    row.push_str("</tr>");
    row
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars of the pooled MAE per cut-off: model, median, both baselines.
fn pooled_svg(p: &[Pooled]) -> String {
    let series = [
        ("model E[pos]", "#1f77b4"),
        ("model median", "#6baed6"),
        ("positions hold", "#ff7f0e"),
        ("order by pace", "#2ca02c"),
    ];
    let max = p
        .iter()
        .flat_map(|x| {
            [
                x.mae_positions,
                x.median_mae_positions,
                x.baseline_mae_positions,
                x.pace_baseline_mae_positions,
            ]
        })
        .fold(0.5_f64, f64::max);
    let (w, h, left, bottom) = (560.0, 220.0, 40.0, 30.0);
    let group_w = (w - left) / p.len().max(1) as f64;
    let bar_w = group_w / 5.0;
    let mut s = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="pooled MAE by cut-off">"#
    );
    let scale = (h - bottom - 10.0) / max;
    for t in 0..=4 {
        let v = max * f64::from(t) / 4.0;
        let y = h - bottom - v * scale;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{v:.1}</text>"##,
            left - 4.0,
            y + 3.0
        );
    }
    for (g, x) in p.iter().enumerate() {
        let vals = [
            x.mae_positions,
            x.median_mae_positions,
            x.baseline_mae_positions,
            x.pace_baseline_mae_positions,
        ];
        for (k, v) in vals.iter().enumerate() {
            let bx = left + g as f64 * group_w + (k as f64 + 0.5) * bar_w;
            let bh = v * scale;
            let _ = write!(
                s,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{}: {v:.2}</title></rect>"#,
                h - bottom - bh,
                bar_w * 0.9,
                series[k].1,
                series[k].0
            );
        }
        let label =
            x.at.map(|f| format!("at {f}"))
                .unwrap_or_else(|| "-".into());
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{label}</text>"#,
            left + (g as f64 + 0.5) * group_w,
            h - 10.0
        );
    }
    s.push_str("</svg>");
    let mut legend = String::from("<p class=legend>");
    for (name, colour) in series {
        let _ = write!(
            legend,
            r#"<span><i style="background:{colour}"></i>{name}</span> "#
        );
    }
    legend.push_str("</p>");
    s + &legend
}

/// Per car (rows, by real result): the predicted finish distribution as a heat strip, the
/// real result (black dot), the position at the cut-off (open circle) and the 80 % interval.
fn race_svg(b: &Backtest) -> String {
    let n = b.cars.len();
    let (cell, left, top) = (16.0, 90.0, 22.0);
    let w = left + cell * n as f64 + 10.0;
    let h = top + cell * n as f64 + 8.0;
    let mut s = format!(
        r#"<svg viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="finish distributions">"#
    );
    for k in 0..n {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="14" font-size="9" text-anchor="middle">{}</text>"#,
            left + (k as f64 + 0.5) * cell,
            k + 1
        );
    }
    let mut cars = b.cars.clone();
    cars.sort_by_key(|c| c.actual_position);
    for (row, c) in cars.iter().enumerate() {
        let y = top + row as f64 * cell;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"#,
            left - 4.0,
            y + cell * 0.7,
            esc(&c.car_id)
        );
        for (k, p) in c.distribution.iter().enumerate() {
            if *p < 0.002 {
                continue;
            }
            let a = p.sqrt().min(1.0);
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{cell}" height="{cell}" fill="rgba(31,119,180,{a:.3})"><title>{} P{}: {:.1}%</title></rect>"#,
                left + k as f64 * cell,
                esc(&c.car_id),
                k + 1,
                100.0 * p
            );
        }
        let (lo, hi) = c.interval80;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#1f77b4" stroke-width="1"/>"##,
            left + (f64::from(lo) - 1.0) * cell,
            y + 1.0,
            f64::from(hi - lo + 1) * cell,
            cell - 2.0
        );
        let cx = |p: u32| left + (f64::from(p) - 0.5) * cell;
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="none" stroke="#ff7f0e" stroke-width="1.5"><title>P{} at the cut-off</title></circle><circle cx="{:.1}" cy="{:.1}" r="3" fill="#000"><title>real P{}</title></circle>"##,
            cx(c.position_at_lap),
            y + cell / 2.0,
            c.position_at_lap,
            cx(c.actual_position),
            y + cell / 2.0,
            c.actual_position
        );
    }
    s.push_str("</svg>");
    s
}

fn report_html(results: &[RaceBacktest], pooled: &[Pooled], iterations: u32) -> String {
    let mut h = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PitWall back-test</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}</style></head><body>
<h1>Back-test: predicted finishing positions against the real result</h1>"#,
    );
    let _ = write!(
        h,
        "<p>{} races, {iterations} simulated races per cut-off. MAE = mean absolute error in positions (ranks among the scored cars). Baselines: <b>positions hold</b> (the order at the cut-off is the result) and <b>order by pace</b> (mean green-flag lap time so far). Coverage: the share of cars whose real position lies in the model's 80 % interval.</p>",
        results.len()
    );
    h.push_str("<h2>Pooled</h2><table><tr><th>at</th><th>races</th><th>cars</th><th>model MAE</th><th>median MAE</th><th>hold MAE</th><th>pace MAE</th><th>80 % coverage</th><th>model / hold</th></tr>");
    for p in pooled {
        let mut cells = pooled_cells(p);
        cells[7].push_str(" %");
        h.push_str(&html_row(&cells));
    }
    h.push_str("</table>");
    h.push_str(&pooled_svg(pooled));
    for r in results {
        let _ = write!(
            h,
            "<h2>{}</h2><p>{} laps; truth from {}.</p><table><tr><th>at</th><th>lap</th><th>cars</th><th>model MAE</th><th>median MAE</th><th>hold MAE</th><th>pace MAE</th><th>80 % coverage</th></tr>",
            esc(&r.session_id),
            r.total_laps,
            truth_label(r.truth)
        );
        for c in &r.cuts {
            let mut cells = cut_cells(c);
            cells[7].push_str(" %");
            h.push_str(&html_row(&cells));
        }
        h.push_str("</table>");
        // The cut-off nearest half distance is drawn open; the others on a click.
        let open_k = r
            .cuts
            .iter()
            .enumerate()
            .min_by(|x, y| {
                let d = |c: &Cut| {
                    (f64::from(c.result.at_lap) / f64::from(r.total_laps.max(1)) - 0.5).abs()
                };
                d(x.1).total_cmp(&d(y.1))
            })
            .map(|x| x.0);
        for (k, c) in r.cuts.iter().enumerate() {
            let b = &c.result;
            let _ = write!(
                h,
                "<details{}><summary>From lap {} of {}: each car's predicted finish distribution (blue, darker = likelier; box = 80 % interval), its position at the cut-off (orange ring) and its real result (black dot)</summary>{}</details>",
                if Some(k) == open_k { " open" } else { "" },
                b.at_lap,
                b.total_laps,
                race_svg(b)
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// `pitwall strategy --calibrate --sessions A,B,C --out FILE.toml`.
pub fn calibrate(a: StrategyArgs) -> anyhow::Result<()> {
    let Some(out) = a.out.clone() else {
        anyhow::bail!("--calibrate needs --out FILE.toml");
    };
    if a.sessions.is_empty() {
        anyhow::bail!(
            "--calibrate needs the races: --sessions A,B,C (`pitwall sessions` lists them)"
        );
    }
    let base = load_params(&a)?;
    let store = open_store(&a)?;
    let mut races = Vec::new();
    for s in &a.sessions {
        let (laps, _) = server::stored::session_lap_records(&store, s)
            .with_context(|| format!("reading the laps of {s}"))?;
        if laps.is_empty() {
            anyhow::bail!("session {s} has no timed laps to calibrate on");
        }
        let classification = server::stored::session_classification(&store, s)
            .with_context(|| format!("reading the results of {s}"))?;
        races.push(strategy::CalibrationRace {
            name: s.clone(),
            laps,
            classification,
        });
    }
    drop(store);
    let iterations = a.iterations.unwrap_or(1000);
    let seed = a.seed.unwrap_or(0);
    let cuts: Vec<f64> = if a.at.is_empty() {
        vec![0.25, 0.5, 0.75]
    } else {
        a.at.clone()
    };
    let grid_races = (THRESHOLDS_S.len() * NOISE_SCALES.len() * races.len() * cuts.len()) as u64
        * u64::from(iterations)
        * if a.leave_one_out {
            races.len() as u64
        } else {
            1
        };
    let races2 = races.clone();
    let base2 = base.clone();
    let cuts2 = cuts.clone();
    let loo = a.leave_one_out;
    let (fitted, held_out) = with_progress(Some(grid_races), a.json, move || {
        let all = calibrate_params(&races2, &base2, &cuts2, iterations, seed);
        let held_out = loo.then(|| leave_one_out(&races2, &base2, &cuts2, iterations, seed));
        (all, held_out)
    })?;
    let (cal, params, grid) = fitted.ok_or_else(|| {
        anyhow::anyhow!("no back-test could be run on these races (too few laps?)")
    })?;
    std::fs::write(&out, calibration_toml(&a.sessions, &cal, &params, &grid))
        .with_context(|| format!("writing {}", out.display()))?;
    if a.json {
        let v = serde_json::json!({
            "calibration": cal,
            "tuning": grid,
            "out": out,
            "leave_one_out": held_out.as_ref().map(|h| serde_json::json!({
                "races": h,
                "pooled": pool(h, &cuts.iter().map(|&f| CutSpec::Fraction(f)).collect::<Vec<_>>()),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "Calibration on {} races ({} car starts, {} green car-laps):",
        cal.races, cal.cars, cal.green_car_laps
    );
    println!(
        "  full-course yellows  {} phases, {:.2} per race, {:.0}% start on lap 1, lap time x{:.2}",
        cal.fcy_phases,
        cal.fcy_phases_per_race,
        100.0 * cal.fcy_first_lap_share,
        cal.fcy_lap_time_factor
    );
    println!("  bunching             {:.2} s between cars after a yellow, {:.0}% of the excess gap removed per lap", cal.fcy_gap_s, 100.0 * cal.fcy_bunch_fraction_per_lap);
    println!(
        "  retirements          {} ({:.1}% per car and race)",
        cal.retirements,
        100.0 * cal.failure_probability
    );
    println!(
        "  incidents            {} ({:.2}% per car and green lap, {:.1} s lost on average)",
        cal.incidents,
        100.0 * cal.incident_probability_per_lap,
        cal.incident_loss_mean_s
    );
    println!(
        "  lap-time noise       median sigma {:.3} s",
        cal.noise_sigma_median_s
    );
    println!(
        "  stops                {} ({})",
        cal.stops,
        if cal.stops_expected {
            "most cars stop: a stop is expected"
        } else {
            "no required stop: a stop is an incident"
        }
    );
    println!();
    println!(
        "  tuning (back-test of these races at {cuts:?}, {iterations} races each; best first):"
    );
    println!(
        "  {:>12} {:>11} {:>8} {:>10} {:>9}",
        "threshold s", "noise x", "RPS", "MAE", "80% cov"
    );
    for g in grid.iter().take(8) {
        println!(
            "  {:>12.2} {:>11.2} {:>8.3} {:>10.2} {:>8.0}%",
            g.overtaking_threshold_s,
            g.noise_scale,
            g.rps,
            g.mae_positions,
            100.0 * g.coverage80
        );
    }
    println!();
    println!("written to {} (use it with --params)", out.display());
    if let Some(h) = &held_out {
        print_held_out(h);
    }
    Ok(())
}

/// The tuning grid of the overtaking threshold and the noise scale.
const THRESHOLDS_S: [f64; 6] = [0.0, 0.25, 0.5, 1.0, 1.5, 2.5];
const NOISE_SCALES: [f64; 4] = [1.0, 1.25, 1.5, 2.0];

type Calibrated = (
    strategy::Calibration,
    RaceParams,
    Vec<strategy::TuningPoint>,
);

/// Measures, then tunes by back-test: the parameters a calibration writes.
fn calibrate_params(
    races: &[strategy::CalibrationRace],
    base: &RaceParams,
    cuts: &[f64],
    iterations: u32,
    seed: u64,
) -> Option<Calibrated> {
    let cal = strategy::calibrate(races);
    let measured = cal.apply(base);
    let grid = strategy::tune_by_backtest(
        races,
        &measured,
        &THRESHOLDS_S,
        &NOISE_SCALES,
        cuts,
        iterations,
        seed,
    );
    let best = grid.first()?.clone();
    let mut params = measured;
    params.overtaking.threshold_s = best.overtaking_threshold_s;
    params.driver.noise_scale = best.noise_scale;
    Some((cal, params, grid))
}

/// Each race back-tested with a calibration of the others only: the honest figure.
fn leave_one_out(
    races: &[strategy::CalibrationRace],
    base: &RaceParams,
    cuts: &[f64],
    iterations: u32,
    seed: u64,
) -> Vec<RaceBacktest> {
    let mut out = Vec::new();
    for (k, race) in races.iter().enumerate() {
        let others: Vec<strategy::CalibrationRace> = races
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, r)| r.clone())
            .collect();
        let Some((_, params, _)) = calibrate_params(&others, base, cuts, iterations, seed) else {
            continue;
        };
        let specs: Vec<CutSpec> = cuts.iter().map(|&f| CutSpec::Fraction(f)).collect();
        let input: Input = (
            race.name.clone(),
            race.laps.clone(),
            analysis::LapSource::OfficialTiming,
            race.classification.clone(),
            race.laps.iter().map(|l| l.lap).max().unwrap_or(0),
        );
        if let Ok(mut r) = run_all(&[input], &specs, &params, 4000, seed) {
            out.append(&mut r);
        }
    }
    out
}

fn print_held_out(results: &[RaceBacktest]) {
    println!();
    println!("Leave one race out (each race back-tested with a calibration of the others):");
    let cuts: Vec<CutSpec> = results
        .first()
        .map(|r| {
            r.cuts
                .iter()
                .filter_map(|c| c.at.map(CutSpec::Fraction))
                .collect()
        })
        .unwrap_or_default();
    for r in results {
        print_race(r, false);
    }
    print_pooled(&pool(results, &cuts));
}

fn calibration_toml(
    sessions: &[String],
    cal: &strategy::Calibration,
    p: &RaceParams,
    grid: &[strategy::TuningPoint],
) -> String {
    // Probability tables: 6 decimals, the largest entry taking the rounding so the table sums
    // to 1 as written.
    let list = |v: &[f64]| {
        let mut r: Vec<f64> = v.iter().map(|x| (x * 1e6).round() / 1e6).collect();
        let rest: f64 = r.iter().sum::<f64>() - 1.0;
        if let Some(big) = r.iter_mut().max_by(|a, b| a.total_cmp(b)) {
            *big = ((*big - rest) * 1e6).round() / 1e6;
        }
        r.iter()
            .map(|x| format!("{x:.6}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Race-model parameters calibrated by `pitwall strategy --calibrate` on {} races:",
        cal.races
    );
    let _ = writeln!(s, "#   {}", sessions.join(", "));
    let _ = writeln!(s, "# {} car starts, {} green car-laps, {} yellow phases, {} retirements, {} incidents, {} stops.", cal.cars, cal.green_car_laps, cal.fcy_phases, cal.retirements, cal.incidents, cal.stops);
    if let Some(b) = grid.first() {
        let _ = writeln!(s, "# Tuned by back-test (ranked probability score {:.3}, MAE {:.2}, 80% coverage {:.0}% on {} car predictions).", b.rps, b.mae_positions, 100.0 * b.coverage80, b.cars);
    }
    let _ = writeln!(
        s,
        "# Any subset of data/strategy/default.toml; use with `pitwall strategy --params FILE`.\n"
    );
    let _ = writeln!(s, "[driver]");
    let _ = writeln!(s, "noise_sigma_s = {:.4}", p.driver.noise_sigma_s);
    let _ = writeln!(s, "noise_scale = {:.4}", p.driver.noise_scale);
    let _ = writeln!(
        s,
        "failure_probability = {:.4}",
        p.driver.failure_probability
    );
    let _ = writeln!(
        s,
        "incident_probability_per_lap = {:.5}",
        p.driver.incident_probability_per_lap
    );
    let _ = writeln!(
        s,
        "incident_loss_mean_s = {:.3}\n",
        p.driver.incident_loss_mean_s
    );
    let _ = writeln!(s, "[overtaking]");
    let _ = writeln!(s, "threshold_s = {:.3}\n", p.overtaking.threshold_s);
    let _ = writeln!(s, "[pit]");
    let _ = writeln!(s, "stops_expected = {}\n", p.pit.stops_expected);
    let sc = &p.safety_car;
    let _ = writeln!(s, "[safety_car]");
    let _ = writeln!(
        s,
        "count_probabilities = [{}]",
        list(&sc.count_probabilities)
    );
    let _ = writeln!(s, "first_lap_probability = {:.4}", sc.first_lap_probability);
    let _ = writeln!(
        s,
        "length_probabilities = [{}]",
        list(&sc.length_probabilities)
    );
    let _ = writeln!(s, "vsc_share = {:.4}", sc.vsc_share);
    let _ = writeln!(s, "sc_lap_time_factor = {:.4}", sc.sc_lap_time_factor);
    let _ = writeln!(s, "sc_gap_s = {:.4}", sc.sc_gap_s);
    let _ = writeln!(
        s,
        "bunch_fraction_per_lap = {:.4}",
        sc.bunch_fraction_per_lap
    );
    s
}
