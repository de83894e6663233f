//! `pitwall replay`: plays a stored session, a telemetry file, or an F1 UDP recording in real
//! time × speed, into an embedded server or to a running one over HTTP.
//!
//! F1 UDP recording format (little-endian): `u32` datagram count, then per datagram `f32`
//! time in seconds since the start of the recording, `u32` length, and the datagram's bytes.
//! Recordings are decoded with `f1udp::Assembler` and replayed as samples (paced by the
//! datagrams' times).
//!
//! The whole source is loaded (and ordered by time) before playback starts: memory grows with
//! the source's size.

use crate::import::{sniff, Pivot};
use anyhow::{bail, Context};
use clap::Args;
use grcup::{FileKind, PivotConfig, WidePivot};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::Sample;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A stored session id, a telemetry file (long or wide GR Cup CSV, seed JSON), or an F1
    /// UDP recording (see `pitwall record-f1`).
    pub source: String,
    /// Playback speed: 1 is real time, 10 ten times faster, 0 as fast as possible.
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    /// Send to a running server at this base URL (POST NDJSON to /api/telemetry/ingest).
    #[arg(long, conflicts_with = "embedded")]
    pub to: Option<String>,
    /// Run an embedded server (the default without --to) and stop when the source ends. Its
    /// UDP listener is off unless --udp (or --config) is given.
    #[arg(long)]
    pub embedded: bool,
    /// Replay under this session id [default: the source's own; replay-<file stem> for a CSV].
    #[arg(long)]
    pub session: Option<String>,
    /// Store to read a stored SOURCE session from [default: --data-dir].
    #[arg(long)]
    pub source_data_dir: Option<PathBuf>,
    /// Samples sent per batch at most.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Keep what the live stage stored: skip the whole-session analysis run at the end of an
    /// embedded replay (it adds the pit window of every lap and closes the open last laps).
    #[arg(long)]
    pub no_analyse: bool,
    #[command(flatten)]
    pub serve: crate::cli::ServeArgs,
}

/// Reads an F1 UDP recording: (time s, datagram) pairs. Errors name what is wrong.
pub fn read_f1_recording(b: &[u8]) -> anyhow::Result<Vec<(f64, &[u8])>> {
    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    let count = u32_at(b, 0).context("shorter than the 4-byte datagram count")? as usize;
    let mut at = 4usize;
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for i in 0..count {
        let (Some(t), Some(len)) = (u32_at(b, at), u32_at(b, at + 4)) else {
            bail!("datagram {i} of {count}: the file ends inside its header (byte {at})");
        };
        let t = f32::from_bits(t);
        let len = len as usize;
        if !t.is_finite() || len > 65_535 {
            bail!("datagram {i}: time {t} or length {len} is not plausible (byte {at})");
        }
        let start = at + 8;
        let Some(d) = b.get(start..start + len) else {
            bail!("datagram {i} of {count}: the file ends inside its {len} bytes");
        };
        out.push((f64::from(t), d));
        at = start + len;
    }
    if at != b.len() {
        bail!(
            "{} bytes after the {count} datagrams the header announces",
            b.len() - at
        );
    }
    Ok(out)
}

/// Writes an F1 UDP recording (the format [`read_f1_recording`] reads).
pub fn write_f1_recording(datagrams: &[(f32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(datagrams.len() as u32).to_le_bytes());
    for (t, d) in datagrams {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// The source, loaded as (playback time s, sample), ordered by time.
/// What to replay: the samples in time order, and what the source session said about itself
/// (a stored session's race document).
struct Loaded {
    timeline: Vec<(f64, Sample)>,
    events: Vec<analysis::SessionEvent>,
}

fn load(a: &ReplayArgs, data_dir: &Path) -> anyhow::Result<Loaded> {
    let path = Path::new(&a.source);
    let mut timeline: Vec<(f64, Sample)> = Vec::new();
    let mut events = Vec::new();
    if path.is_file() {
        match sniff(path) {
            Ok(kind @ (FileKind::LongTelemetry | FileKind::WideTelemetry)) => {
                let session = a.session.clone().unwrap_or_else(|| {
                    format!(
                        "replay-{}",
                        path.file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )
                });
                let cfg = PivotConfig::new(session);
                let f = File::open(path).with_context(|| format!("cannot open {}", a.source))?;
                let mut p = if kind == FileKind::LongTelemetry {
                    // Rows in any order (spilled runs in the system's temp dir).
                    let spill: grcup::SpillFactory = Box::new(|| {
                        Ok(Box::new(tempfile::tempfile()?) as Box<dyn grcup::SpillFile>)
                    });
                    Pivot::Sorted(grcup::SortedLongPivot::new(
                        f,
                        cfg,
                        grcup::SortedLongPivot::<File>::DEFAULT_CHUNK_ROWS,
                        spill,
                    )?)
                } else {
                    Pivot::Wide(WidePivot::new(f, cfg)?)
                };
                while let Some(s) = p.next_sample()? {
                    timeline.push((s.t_s, s));
                }
            }
            Ok(FileKind::SeedJson) => {
                let bytes = std::fs::read(path)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let parsed = telemetry::parse_body(&bytes, false, now)
                    .with_context(|| format!("reading {}", a.source))?;
                timeline.extend(parsed.samples.into_iter().map(|(_, s)| (s.t_s, s)));
            }
            Ok(other) => bail!(
                "{}: a {other} file holds no telemetry to replay (import it with `pitwall import`)",
                a.source
            ),
            Err(csv_err) => {
                let bytes = std::fs::read(path)?;
                let rec = read_f1_recording(&bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: neither a telemetry file ({csv_err:#}) nor an F1 UDP recording ({e:#})",
                        a.source
                    )
                })?;
                let mut asm = f1udp::Assembler::new();
                let mut bad = 0u64;
                let mut last_t = 0.0;
                for (t, d) in rec {
                    last_t = t;
                    match asm.push(d) {
                        Ok(ss) => timeline.extend(ss.into_iter().map(|s| (t, s))),
                        Err(_) => bad += 1,
                    }
                }
                timeline.extend(asm.flush().into_iter().map(|s| (last_t, s)));
                if bad > 0 {
                    eprintln!("{}: {bad} datagrams could not be decoded", a.source);
                }
            }
        }
    } else {
        let store = store::Store::open(data_dir)
            .with_context(|| format!("opening the store under {}", data_dir.display()))?;
        events = server::stored::session_events(&store, &a.source);
        store
            .for_each_sample_by_time(&a.source, |s| timeline.push((s.t_s, s)))
            .with_context(|| {
                format!(
                    "{} is neither a file nor a session stored under {}",
                    a.source,
                    data_dir.display()
                )
            })?;
    }
    if let Some(sess) = &a.session {
        let id: Arc<str> = Arc::from(sess.as_str());
        for (_, s) in &mut timeline {
            s.session_id = id.clone();
        }
        for e in &mut events {
            if let analysis::SessionEvent::Race { session_id, .. } = e {
                *session_id = sess.clone();
            }
        }
    }
    // Stable: samples of one instant keep their order (cars in the store's order).
    timeline.sort_by(|x, y| x.0.total_cmp(&y.0));
    Ok(Loaded { timeline, events })
}

enum Sink {
    Embedded {
        running: server::Running,
        ring_high: usize,
    },
    Http {
        client: reqwest::Client,
        url: String,
    },
}

impl Sink {
    async fn send(&self, batch: Vec<Sample>) -> anyhow::Result<usize> {
        match self {
            Sink::Embedded { running, ring_high } => {
                // Back-pressure: never let the ingest ring drop what we replay.
                while running.state.ring.len() > *ring_high {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(running.state.ingest_samples("replay", batch))
            }
            Sink::Http { client, url } => {
                let mut body = Vec::with_capacity(batch.len() * 256);
                for s in &batch {
                    serde_json::to_writer(&mut body, s)?;
                    body.push(b'\n');
                }
                // A server's points-per-second limit answers 429 with Retry-After: wait and
                // send the same batch again (a while: a batch larger than the whole allowance
                // never passes, and the answer says so).
                let mut tries = 0;
                let resp = loop {
                    tries += 1;
                    let resp = client
                        .post(url)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await
                        .with_context(|| format!("POST {url}"))?;
                    if resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS || tries >= 30 {
                        break resp;
                    }
                    let wait_s = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1)
                        .clamp(1, 60);
                    tracing::debug!(wait_s, "rate limited by the server; waiting");
                    tokio::time::sleep(Duration::from_secs(wait_s)).await;
                };
                let status = resp.status();
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                if !status.is_success() {
                    bail!("POST {url}: {status} {v}");
                }
                Ok(v.get("accepted")
                    .and_then(|n| n.as_u64())
                    .map(|n| n as usize)
                    .unwrap_or(batch.len()))
            }
        }
    }
}

pub async fn run(a: ReplayArgs) -> anyhow::Result<()> {
    if !(a.speed >= 0.0 && a.speed.is_finite()) {
        bail!("--speed must be a number >= 0 (0 = as fast as possible)");
    }
    let mut config = a.serve.config()?;
    if a.serve.udp.is_none() && a.serve.config.is_none() {
        config.udp = None;
    }
    let source_dir = a
        .source_data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    let Loaded { timeline, events } = load(&a, &source_dir)?;
    if timeline.is_empty() {
        bail!("{}: nothing to replay (no samples)", a.source);
    }
    // Registered before the listening line (see `shutdown_signal`).
    let ctrl_c = crate::shutdown_signal();
    let sink = match &a.to {
        Some(base) => Sink::Http {
            client: reqwest::Client::new(),
            url: format!("{}/api/telemetry/ingest", base.trim_end_matches('/')),
        },
        None => {
            crate::init_logging(config.log_format);
            let ring_high = (config.ring_capacity / 2).max(1);
            let running = server::start(config).await?;
            crate::print_listening(&running);
            for e in events {
                running.state.announce(e).await?;
            }
            Sink::Embedded { running, ring_high }
        }
    };
    let n = timeline.len();
    let mut replayed: Vec<String> = timeline
        .iter()
        .map(|(_, s)| s.session_id.to_string())
        .collect();
    replayed.sort_unstable();
    replayed.dedup();
    // Where the embedded server stores (the whole-session analysis below writes there too).
    let location = a.serve.config()?.store_location();
    let t_first = timeline.first().map(|x| x.0).unwrap_or(0.0);
    let t_last = timeline.last().map(|x| x.0).unwrap_or(0.0);
    eprintln!(
        "replaying {n} samples ({:.1} s of source time) at ×{}",
        t_last - t_first,
        a.speed
    );
    let max_batch = a.batch.max(1);
    let start = Instant::now();
    let due = |t: f64| {
        if a.speed == 0.0 {
            0.0
        } else {
            (t - t_first) / a.speed
        }
    };
    let mut it = timeline.into_iter().peekable();
    let (mut sent, mut accepted) = (0usize, 0usize);
    let mut stop = false;
    tokio::pin!(ctrl_c);
    while let Some((t, _)) = it.peek() {
        let wait = due(*t) - start.elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                _ = &mut ctrl_c => { stop = true; }
            }
            if stop {
                eprintln!("interrupted");
                break;
            }
        }
        let now = start.elapsed().as_secs_f64() + 0.005;
        let mut batch = Vec::with_capacity(max_batch.min(n));
        while let Some((t, _)) = it.peek() {
            if batch.len() >= max_batch || due(*t) > now {
                break;
            }
            if let Some((_, s)) = it.next() {
                batch.push(s);
            }
        }
        sent += batch.len();
        accepted += sink.send(batch).await?;
    }
    eprintln!(
        "replayed {sent} samples ({accepted} accepted) in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    if let Sink::Embedded { running, .. } = sink {
        running.shutdown().await?;
        // The replayed sessions' whole analysis (the live stage computes the pit window of
        // each car's newest lap only), stored as `pitwall analyse` would.
        if !stop && !a.no_analyse {
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let mut store = store::Store::open_location(&location)?;
                let settings = crate::analyse_cmd::Settings::new(None, true)?;
                for id in &replayed {
                    let r = crate::analyse_cmd::analyse_session(&mut store, id, &settings)?;
                    eprintln!("{}", crate::analyse_cmd::summary(id, &r));
                }
                Ok(())
            })
            .await??;
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RecordF1Args {
    /// UDP address to listen on (the game's target).
    #[arg(long, default_value = "0.0.0.0:20777")]
    pub udp: std::net::SocketAddr,
    /// Recording file to write (see `pitwall replay`).
    #[arg(long)]
    pub out: PathBuf,
    /// How long to record, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
}

/// Records F1 UDP datagrams with their arrival times into a replayable file.
pub async fn record_f1(a: RecordF1Args) -> anyhow::Result<()> {
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        bail!("--seconds must be > 0");
    }
    let sock = tokio::net::UdpSocket::bind(a.udp)
        .await
        .with_context(|| format!("cannot bind UDP {}", a.udp))?;
    let ctrl_c = crate::shutdown_signal();
    eprintln!(
        "recording F1 UDP on {} for {} s",
        sock.local_addr()?,
        a.seconds
    );
    let start = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut frames: Vec<(f32, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, _) = r?;
                let d = buf.get(..n).unwrap_or_default().to_vec();
                frames.push((start.elapsed().as_secs_f32(), d));
            }
            _ = tokio::time::sleep_until(end) => break,
            _ = &mut ctrl_c => break,
        }
    }
    std::fs::write(&a.out, write_f1_recording(&frames))
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!("{}: {} datagrams", a.out.display(), frames.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_round_trip_and_errors() {
        let frames = vec![
            (0.0f32, vec![1u8, 2, 3]),
            (0.5, vec![]),
            (1.25, vec![9; 10]),
        ];
        let b = write_f1_recording(&frames);
        let back = read_f1_recording(&b).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].0, 1.25);
        assert_eq!(back[0].1, &[1, 2, 3]);
        assert!(read_f1_recording(&b[..b.len() - 1]).is_err());
        let mut extra = b.clone();
        extra.push(0);
        assert!(read_f1_recording(&extra).is_err());
        assert!(read_f1_recording(&[1, 0]).is_err());
        assert!(read_f1_recording(b"time,speed\n").is_err());
    }
}
