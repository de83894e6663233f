//! Starts the real `pitwall serve` binary on free ports for integration tests.
#![allow(dead_code)]

pub mod pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Option<Child>,
    pub http: String,
    pub udp: String,
    pub data_dir: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pitwall")
}

/// Runs `pitwall ARGS...` to the end (quiet logs) and returns its output.
pub fn pitwall(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("PITWALL_LOG", "warn")
        .output()
        .expect("run pitwall")
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_cmd("serve", data_dir, extra)
    }

    /// Starts `pitwall <cmd>` (`serve` or `demo`) on free ports.
    pub fn start_cmd(cmd: &str, data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_cmd_env(cmd, data_dir, extra, &[])
    }

    /// Starts `pitwall <cmd>` on free ports with extra environment variables.
    pub fn start_cmd_env(
        cmd: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(bin())
            .args([
                cmd,
                "--http",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            // The tests hammer loopback: rate limits off unless a test sets them (flags and
            // `env` override these).
            .env("PITWALL_RATE_LIMIT_REST_PER_MIN", "0")
            .env("PITWALL_RATE_LIMIT_POINTS_PER_S", "0")
            .envs(env.iter().copied())
            .env("PITWALL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pitwall serve");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        while !line.starts_with("pitwall listening") {
            line.clear();
            let n = out.read_line(&mut line).expect("read the listening line");
            assert!(n > 0, "pitwall {cmd} exited before listening");
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {k} in {line:?}"))
        };
        Server {
            http: format!("http://{}", field("http=")),
            udp: field("udp="),
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http, path)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws/realtime", self.http.replacen("http", "ws", 1))
    }

    /// SIGTERM and wait: the server drains and flushes before it exits.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "server did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /api/sessions`, parsed.
    pub async fn sessions(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value = reqwest::get(self.url("/api/sessions"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// Samples stored for one session (0 when it does not exist).
    pub async fn stored(&self, session: &str) -> u64 {
        self.sessions()
            .await
            .iter()
            .filter(|s| s["id"] == session)
            .filter_map(|s| s["samples"].as_u64())
            .sum()
    }

    /// Reads one metric's value (summing matching lines) from /metrics.
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls until `f` is true or the timeout passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
