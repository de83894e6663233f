//! `pitwall`: the one binary. A thin layer over the library crates: it reads flags, the
//! environment and the config file, sets up logging, and calls into them.

mod analyse_cmd;
mod backtest_cmd;
mod bench;
mod bench_analysis;
mod cli;
mod export;
mod import;
mod import_report;
mod keys_cmd;
mod lap_logs;
mod model_cmd;
mod network_args;
mod parquet_out;
mod race_cmd;
mod replay;
mod strategy_cmd;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use server::{Config, LogFormat};

pub(crate) fn init_logging(format: LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_env("PITWALL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// A progress bar on stderr for work of `total` `unit`s (0: a spinner), shown only when both
/// stdout and stderr are terminals: scripts and pipes get no escape codes.
pub(crate) fn progress_bar(total: u64, what: &str, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let pb = if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let template = if total == 0 {
        format!("{{spinner}} {what} {{elapsed_precise}} {{msg}}")
    } else {
        format!(
            "{{spinner}} {what} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}"
        )
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if total == 0 {
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    pb
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pitwall")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            init_logging(config.log_format);
            serve(config).await
        }
        Command::Sessions(args) => {
            let store = store::Store::open(&args.data_dir.data_dir).with_context(|| {
                format!(
                    "opening the store under {}",
                    args.data_dir.data_dir.display()
                )
            })?;
            let sessions: Vec<cli::SessionRow> = store
                .sessions()?
                .into_iter()
                .map(|info| cli::SessionRow {
                    total_laps: server::stored::session_total_laps(&store, &info.id, &[]),
                    info,
                })
                .collect();
            let written = if args.json {
                use std::io::Write;
                writeln!(
                    std::io::stdout().lock(),
                    "{}",
                    serde_json::to_string_pretty(&sessions)?
                )
            } else {
                cli::print_sessions(&sessions)
            };
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Tracks(a) => race_cmd::tracks(a),
        Command::Sim(a) => race_cmd::sim(a),
        Command::Demo(a) => race_cmd::demo(a).await,
        Command::Import(a) => tokio::task::spawn_blocking(move || import::run(a)).await?,
        Command::Analyse(a) => tokio::task::spawn_blocking(move || analyse_cmd::run(a)).await?,
        Command::Export(a) => tokio::task::spawn_blocking(move || export::run(a)).await?,
        Command::Replay(a) => replay::run(a).await,
        Command::RecordF1(a) => replay::record_f1(a).await,
        Command::Train(a) => tokio::task::spawn_blocking(move || model_cmd::train(a)).await?,
        Command::Eval(a) => tokio::task::spawn_blocking(move || model_cmd::eval(a)).await?,
        Command::Strategy(a) => tokio::task::spawn_blocking(move || strategy_cmd::run(a)).await?,
        Command::Worker(a) => {
            let cfg = a.config()?;
            init_logging(cfg.server.log_format);
            let stop = shutdown_signal();
            let role = cfg.role.name();
            server::workers::run(cfg, stop, |id| {
                println!("pitwall worker ready id={id} role={role}");
            })
            .await
        }
        Command::Agents(a) => agents(a).await,
        Command::Keys(k) => tokio::task::spawn_blocking(move || keys_cmd::run(k)).await?,
        Command::Bench(b) => {
            init_logging(LogFormat::Text);
            bench::run(b).await
        }
    }
}

/// The one machine-readable line (`serve`, `demo`, `replay --embedded`) by which scripts, tests
/// and `pitwall bench` find the bound ports.
pub(crate) fn print_listening(running: &server::Running) {
    let scheme = match running.state.config.tls_cert {
        Some(_) => "https",
        None => "http",
    };
    println!(
        "pitwall listening http={} udp={} dashboard={scheme}://{}/",
        running.http_addr,
        running
            .udp_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        running.http_addr
    );
}

/// `pitwall agents`: the worker registry as a table or JSON.
async fn agents(a: cli::AgentsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let cfg = bus::RedisBusConfig {
        partitions: a.bus_partitions,
        ..bus::RedisBusConfig::default()
    };
    let bus = bus::RedisBus::connect(&a.bus, cfg)
        .await
        .with_context(|| format!("connecting to the Redis bus at {}", a.bus))?;
    let list = bus.workers().await?;
    let mut out = std::io::stdout().lock();
    let written = if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)
    } else if list.is_empty() {
        writeln!(out, "no live workers")
    } else {
        (|| -> std::io::Result<()> {
            writeln!(
                out,
                "{:<36} {:<9} {:<16} {:>10} {:>8} {:>8}",
                "ID", "ROLE", "PARTITIONS", "PROCESSED", "PENDING", "LAG_MS"
            )?;
            for w in &list {
                let parts = w
                    .partitions
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                writeln!(
                    out,
                    "{:<36} {:<9} {:<16} {:>10} {:>8} {:>8}",
                    w.id,
                    w.role,
                    if parts.is_empty() { "-".into() } else { parts },
                    w.processed,
                    w.pending,
                    w.lag_ms
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = server::start(config).await?;
    let stop = shutdown_signal();
    print_listening(&running);
    stop.await;
    tracing::info!("shutdown requested: draining the pipeline");
    running.shutdown().await
}

/// Resolves at SIGTERM or Ctrl-C. The handlers are registered when this is called, not when
/// the future is first polled: call it before announcing the server, so that a signal sent
/// right after the `pitwall listening` line is not lost (the default action would kill the
/// process without draining).
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
