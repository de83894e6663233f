//! `pitwall bench ingest`: the load generator behind the performance figures.
//!
//! It starts `pitwall serve` as a child process on free ports (or targets a running server),
//! pushes points over HTTP (batches) or UDP (JSON datagrams) at a fixed rate or flat out,
//! keeps WebSocket clients subscribed that measure ingest-to-WebSocket latency end to end
//! (each point carries its send time in `t_s`), samples the server's RSS, and at the end
//! checks that every accepted point reached the store.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq)]
pub enum Transport {
    Http,
    Udp,
}

#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// How points are sent.
    #[arg(long, value_enum, default_value = "http")]
    pub transport: Transport,
    /// Target rate in points per second; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to send, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Points per HTTP request or per UDP datagram [default: 1000 for HTTP, 20 for UDP].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Cars per sender.
    #[arg(long, default_value_t = 20)]
    pub cars: usize,
    /// WebSocket clients subscribed to everything during the run.
    #[arg(long, default_value_t = 0)]
    pub ws_clients: usize,
    /// How many of the WebSocket clients parse every point to measure latency (the rest only read).
    #[arg(long, default_value_t = 10)]
    pub ws_measuring: usize,
    /// A running server's HTTP base URL (e.g. http://127.0.0.1:8081); default: start one (with
    /// its rate limits off). Start a server of your own with `--rate-limit-points-per-s 0
    /// --rate-limit-rest-per-min 0` to measure it unthrottled.
    #[arg(long)]
    pub target: Option<String>,
    /// The running server's UDP address when --target is given (e.g. 127.0.0.1:20777).
    #[arg(long)]
    pub target_udp: Option<String>,
    /// Ring capacity of the server started for the run.
    #[arg(long)]
    pub ring_capacity: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Start the server with authentication on (`serve --auth`) and send an ingest key with
    /// every request and WebSocket: the cost of access control.
    #[arg(long, conflicts_with = "target")]
    pub auth: bool,
    /// API key (or token) for --target's server: `Authorization: Bearer`, and `?token=` on
    /// the WebSockets.
    #[arg(long, env = "PITWALL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

struct Child {
    proc: std::process::Child,
    http: String,
    udp: String,
    _dir: tempdir::TempDir,
}

mod tempdir {
    /// A directory removed on drop (the bench's throwaway store).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Starts `pitwall serve` on free ports; with `auth`, with `--auth` and an ingest key created
/// in its store first (returned).
fn spawn_server(
    ring_capacity: Option<usize>,
    auth: bool,
) -> anyhow::Result<(Child, Option<String>)> {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("pitwall-bench-{}", std::process::id()));
    let key = if auth {
        let mut store = store::Store::open(&dir)?;
        let hasher = server::auth::keys::KeyHasher::from_store(&mut store)?;
        let new = server::auth::keys::create(
            &mut store,
            &hasher,
            server::auth::Role::Ingest,
            Some("bench"),
            "cli:bench",
        )?;
        Some(new.key)
    } else {
        None
    };
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(&dir)
    // The bench measures the server, not its rate limits.
    .args([
        "--rate-limit-rest-per-min",
        "0",
        "--rate-limit-points-per-s",
        "0",
    ])
    .env("PITWALL_LOG", "warn")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit());
    if let Some(r) = ring_capacity {
        cmd.args(["--ring-capacity", &r.to_string()]);
    }
    if auth {
        cmd.arg("--auth");
    }
    let mut proc = cmd.spawn().context("starting pitwall serve")?;
    let stdout = proc.stdout.take().context("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
    };
    let (Some(http), Some(udp)) = (field("http="), field("udp=")) else {
        let _ = proc.kill();
        bail!("pitwall serve did not report its addresses: {line:?}");
    };
    Ok((
        Child {
            proc,
            http: format!("http://{http}"),
            udp,
            _dir: tempdir::TempDir(dir),
        },
        key,
    ))
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Makes the points of one sender: its own cars, each with a strictly increasing clock that
/// follows the wall clock (10 µs apart at least, so that the printed microseconds differ), so
/// `t_s` is the send time and (car, t_s) is unique.
struct PointGen {
    session: String,
    sender: usize,
    last_t: Vec<f64>,
    seq: u64,
}

impl PointGen {
    fn new(session: &str, sender: usize, cars: usize) -> Self {
        PointGen {
            session: session.to_string(),
            sender,
            last_t: vec![0.0; cars.max(1)],
            seq: 0,
        }
    }

    /// Appends `n` points separated by `sep`.
    fn build(&mut self, out: &mut String, n: usize, sep: &str) {
        let now = now_s();
        let cars = self.last_t.len();
        for i in 0..n {
            let car = (self.seq as usize) % cars;
            self.seq += 1;
            let seq = self.seq;
            let t = now.max(self.last_t[car] + 1e-5);
            self.last_t[car] = t;
            let x = (seq % 1000) as f64;
            let _ = write!(
                out,
                "{{\"session\":\"{}\",\"track\":\"bench\",\"chassis\":\"s{}-c{car}\",\"t_s\":{t:.6},\"lap\":{},\"lapdist_m\":{:.1},\"speed_kmh\":{:.1},\"accx_can\":{:.3},\"accy_can\":{:.3},\"pbrake_f\":{:.1},\"rpm\":{},\"gear\":{}}}",
                self.session,
                self.sender,
                1 + seq / 50_000,
                x * 4.0,
                120.0 + x / 10.0,
                (x / 1000.0) - 0.5,
                (x / 500.0) - 1.0,
                x / 20.0,
                4000 + (seq % 3000),
                1 + (seq % 6)
            );
            if i + 1 < n {
                out.push_str(sep);
            }
        }
    }
}

async fn metric_value(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let Ok(resp) = client.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn stored_points(client: &reqwest::Client, base: &str, session: &str) -> u64 {
    let Ok(resp) = client.get(format!("{base}/api/sessions")).send().await else {
        return 0;
    };
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["id"] == session)
        .filter_map(|s| s["samples"].as_u64())
        .sum()
}

/// What one measuring WebSocket client saw: ingest-to-WebSocket latency of the points, and
/// ingest-to-insight latency of the insights (`revision` 0, when the lap closes) and of their
/// pit windows (`revision` >= 1, after the strategy job), all in µs.
struct WsLatency {
    points: Histogram<u64>,
    insights: Histogram<u64>,
    pit_windows: Histogram<u64>,
}

fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

/// Reads one WebSocket client's stream. Measuring clients parse every point's `t_s` (its send
/// time) into their own histogram, and every insight's `t_end_s` (the line crossing that closed
/// the lap, interpolated between the two samples around it, so at most one sample interval
/// before the closing sample was sent); the others only read, as a dashboard's socket would,
/// so that the generator spends its CPU where it measures.
async fn ws_client(
    url: String,
    measure: bool,
    stop: Arc<AtomicBool>,
    messages: Arc<AtomicU64>,
) -> anyhow::Result<Option<WsLatency>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
    let mut lat = WsLatency {
        points: latency_histogram()?,
        insights: latency_histogram()?,
        pit_windows: latency_histogram()?,
    };
    let us = |now: f64, t: f64| (((now - t).max(0.0) * 1e6) as u64).max(1);
    while !stop.load(Ordering::Relaxed) {
        let msg = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(_) => break,
            Err(_) => continue,
        };
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        // The hub writes telemetry updates by hand (type first); other messages come from
        // serde_json (keys sorted: `data` first).
        if !text.starts_with("{\"type\":\"telemetry_update\"")
            && text.contains("\"type\":\"insight_update\"")
        {
            if measure {
                let now = now_s();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                for i in v["data"].as_array().into_iter().flatten() {
                    let Some(t_end) = i["t_end_s"].as_f64().filter(|t| *t > 0.0) else {
                        continue;
                    };
                    let h = if i["revision"].as_u64().unwrap_or(0) == 0 {
                        &mut lat.insights
                    } else {
                        &mut lat.pit_windows
                    };
                    let _ = h.record(us(now, t_end));
                }
            }
            continue;
        }
        if !text.starts_with("{\"type\":\"telemetry_update\"") {
            continue;
        }
        messages.fetch_add(1, Ordering::Relaxed);
        if measure {
            let now = now_s();
            for part in text.split("\"t_s\":").skip(1) {
                let end = part.find([',', '}']).unwrap_or(part.len());
                if let Ok(t) = part[..end].parse::<f64>() {
                    let _ = lat.points.record(us(now, t));
                }
            }
        }
    }
    Ok(measure.then_some(lat))
}

/// p50/p95/p99/max of a latency histogram in ms, as the JSON report gives them.
fn latency_json(h: &Histogram<u64>) -> serde_json::Value {
    let q = |p: f64| (!h.is_empty()).then(|| h.value_at_quantile(p) as f64 / 1000.0);
    serde_json::json!({
        "samples": h.len(), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99),
        "max": (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
    })
}

pub async fn run(cmd: crate::cli::BenchCommand) -> anyhow::Result<()> {
    let a = match cmd {
        crate::cli::BenchCommand::Ingest(a) => a,
        crate::cli::BenchCommand::Analysis(a) => {
            return tokio::task::spawn_blocking(move || crate::bench_analysis::run(a)).await?;
        }
    };
    let (child, key) = match &a.target {
        Some(_) => (None, a.api_key.clone()),
        None => {
            let (c, k) = spawn_server(a.ring_capacity, a.auth)?;
            (Some(c), k)
        }
    };
    let base = a
        .target
        .clone()
        .or_else(|| child.as_ref().map(|c| c.http.clone()))
        .context("no server")?;
    let udp_target = a
        .target_udp
        .clone()
        .or_else(|| child.as_ref().map(|c| c.udp.clone()))
        .unwrap_or_default();
    let server_pid = child.as_ref().map(|c| c.proc.id());
    let result = drive(&a, &base, &udp_target, server_pid, key.as_deref()).await;
    if let Some(mut c) = child {
        // SIGTERM for a clean drain, then reap.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &c.proc.id().to_string()])
            .status();
        let _ = tokio::task::spawn_blocking(move || c.proc.wait()).await;
    }
    result
}

async fn drive(
    a: &IngestArgs,
    base: &str,
    udp_target: &str,
    server_pid: Option<u32>,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = key {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {k}").parse().context("--api-key")?,
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.senders.max(1))
        .default_headers(headers)
        .build()?;
    let session = format!("bench-{}", std::process::id());
    let mut ws_url = format!("{}/ws/realtime", base.replacen("http", "ws", 1));
    if let Some(k) = key {
        ws_url.push_str(&format!("?token={k}"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ws_messages = Arc::new(AtomicU64::new(0));
    let mut ws_tasks = Vec::new();
    for i in 0..a.ws_clients {
        ws_tasks.push(tokio::spawn(ws_client(
            ws_url.clone(),
            i < a.ws_measuring,
            stop.clone(),
            ws_messages.clone(),
        )));
    }
    if a.ws_clients > 0 {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let batch = a.batch.unwrap_or(match a.transport {
        Transport::Http => 1000,
        Transport::Udp => 20,
    });
    let senders = a.senders.max(1);
    let cars = a.cars.max(1);
    let per_sender_interval = if a.rate > 0 {
        Some(Duration::from_secs_f64(
            batch as f64 * senders as f64 / a.rate as f64,
        ))
    } else {
        None
    };
    let deadline = Instant::now() + Duration::from_secs_f64(a.duration);
    let rss_samples = Arc::new(parking_lot::Mutex::new(Vec::<(f64, u64)>::new()));
    let rss_task = {
        let rss_samples = rss_samples.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = server_pid.and_then(rss_kb) {
                    rss_samples.lock().push((t0.elapsed().as_secs_f64(), kb));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let pb = indicatif::ProgressBar::new((a.duration * 10.0) as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let client = client.clone();
        let url = format!("{base}/api/telemetry/ingest");
        let (sent, accepted, session) = (sent.clone(), accepted.clone(), session.clone());
        let transport = a.transport;
        let udp_target = udp_target.to_string();
        tasks.push(tokio::spawn(async move {
            let mut points = PointGen::new(&session, sender, cars);
            let mut next = Instant::now();
            let udp = if transport == Transport::Udp {
                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                s.connect(&udp_target).await?;
                Some(s)
            } else {
                None
            };
            let mut body = String::with_capacity(batch * 240);
            while Instant::now() < deadline {
                if let Some(iv) = per_sender_interval {
                    next += iv;
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    }
                }
                body.clear();
                match &udp {
                    Some(sock) => {
                        body.push('[');
                        points.build(&mut body, batch, ",");
                        body.push(']');
                        if sock.send(body.as_bytes()).await.is_ok() {
                            sent.fetch_add(batch as u64, Ordering::Relaxed);
                        }
                    }
                    None => {
                        points.build(&mut body, batch, "\n");
                        let resp = client
                            .post(&url)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await?;
                        sent.fetch_add(batch as u64, Ordering::Relaxed);
                        if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                            // The ring is full and kept nothing of it: give it a moment.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        let v: serde_json::Value = resp.json().await.unwrap_or_default();
                        accepted.fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = sent.load(Ordering::Relaxed);
        pb.set_position((t0.elapsed().as_secs_f64() * 10.0) as u64);
        pb.set_message(format!(
            "{:.0} points/s sent",
            s as f64 / t0.elapsed().as_secs_f64()
        ));
    }
    for t in tasks {
        t.await??;
    }
    let send_s = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let sent_n = sent.load(Ordering::Relaxed);
    // Wait for the pipeline to store what it accepted (bounded).
    let source = if a.transport == Transport::Udp {
        "udp"
    } else {
        "http"
    };
    let accepted_metric_name = format!("pitwall_points_accepted_total{{source=\"{source}\"}}");
    let mut stored = 0;
    let mut accepted_n = 0;
    // Until everything accepted is stored or dropped, or nothing moves for 5 s.
    let mut last_change = Instant::now();
    let mut last_stored = u64::MAX;
    while last_change.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        accepted_n = if a.transport == Transport::Udp {
            metric_value(&client, base, &accepted_metric_name).await as u64
        } else {
            accepted.load(Ordering::Relaxed)
        };
        let drops = metric_value(&client, base, "pitwall_ring_dropped_total").await as u64;
        stored = stored_points(&client, base, &session).await;
        if stored + drops >= accepted_n {
            break;
        }
        if stored != last_stored {
            last_stored = stored;
            last_change = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ring_drops = metric_value(&client, base, "pitwall_ring_dropped_total").await as u64;
    let ws_dropped = metric_value(&client, base, "pitwall_ws_clients_dropped_total").await as u64;
    let mut h = latency_histogram()?;
    let mut insights = latency_histogram()?;
    let mut pit_windows = latency_histogram()?;
    for t in ws_tasks {
        if let Ok(Ok(Some(one))) = t.await {
            let _ = h.add(one.points);
            let _ = insights.add(one.insights);
            let _ = pit_windows.add(one.pit_windows);
        }
    }
    let _ = rss_task.await;
    let rss = rss_samples.lock().clone();
    let q = |p: f64| {
        if h.is_empty() {
            None
        } else {
            Some(h.value_at_quantile(p) as f64 / 1000.0)
        }
    };
    let report = serde_json::json!({
        "transport": source,
        "target_rate_pps": a.rate,
        "batch": batch,
        "senders": senders,
        "seconds": send_s,
        "sent": sent_n,
        "sent_pps": sent_n as f64 / send_s,
        "accepted": accepted_n,
        "accepted_pps": accepted_n as f64 / send_s,
        "stored": stored,
        "ring_dropped": ring_drops,
        "lost_below_capacity": accepted_n.saturating_sub(stored + ring_drops),
        "ws_clients": a.ws_clients,
        "ws_clients_dropped": ws_dropped,
        "ws_messages_received": ws_messages.load(Ordering::Relaxed),
        "latency_ms": latency_json(&h),
        "insight_latency_ms": latency_json(&insights),
        "pit_window_latency_ms": latency_json(&pit_windows),
        "server_rss_kb": {
            "first": rss.first().map(|x| x.1),
            "max": rss.iter().map(|x| x.1).max(),
            "last": rss.last().map(|x| x.1),
            "series": rss.iter().map(|x| x.1).collect::<Vec<_>>(),
        },
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "transport        {source} (batch {batch}, {senders} senders, target {} pts/s)",
            if a.rate == 0 {
                "max".to_string()
            } else {
                a.rate.to_string()
            }
        );
        println!(
            "sent             {sent_n} points in {send_s:.1} s = {:.0} points/s",
            sent_n as f64 / send_s
        );
        println!(
            "accepted         {accepted_n} = {:.0} points/s",
            accepted_n as f64 / send_s
        );
        println!(
            "stored           {stored} (ring dropped {ring_drops}; lost below capacity {})",
            accepted_n.saturating_sub(stored + ring_drops)
        );
        if a.ws_clients > 0 {
            println!(
                "websocket        {} clients ({} measuring), {} dropped, {} messages received",
                a.ws_clients,
                a.ws_measuring.min(a.ws_clients),
                ws_dropped,
                ws_messages.load(Ordering::Relaxed)
            );
            println!(
                "latency ms       p50 {:?}  p95 {:?}  p99 {:?}  (n = {})",
                q(0.5),
                q(0.95),
                q(0.99),
                h.len()
            );
            for (name, h) in [("insight", &insights), ("pit window", &pit_windows)] {
                let q = |p: f64| (!h.is_empty()).then(|| h.value_at_quantile(p) as f64 / 1000.0);
                println!(
                    "{name:<16} ms from the lap's closing point: p50 {:?}  p95 {:?}  p99 {:?}  (n = {})",
                    q(0.5),
                    q(0.95),
                    q(0.99),
                    h.len()
                );
            }
        }
        if let (Some(f), Some(l)) = (rss.first(), rss.last()) {
            println!(
                "server RSS       first {} MB, max {} MB, last {} MB",
                f.1 / 1024,
                rss.iter().map(|x| x.1).max().unwrap_or(0) / 1024,
                l.1 / 1024
            );
        }
    }
    Ok(())
}
