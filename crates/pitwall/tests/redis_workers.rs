//! The stages as workers on Redis Streams: the same simulated race (fixed seed), replayed
//! under two sessions, through the embedded pipeline and through `serve --bus --workers` with
//! two analysis workers, one strategy worker and one store worker (the server and the store
//! worker sharing a PostgreSQL store: a fresh schema on 127.0.0.1:5432), gives the same laps
//! and insights; and when one analysis worker is killed (SIGKILL) mid-race, the survivor takes
//! its partition once the lease expires, and no lap is lost or emitted twice. Redis itself
//! restarted (empty) between two races: the server reports not-ready while it is down, the
//! stages reconnect, the reset is counted, and the next race goes through whole.
//!
//! Each test starts its own `redis-server` on a free port (nothing on disk).

mod common;

use bus::{Message, RedisBus, RedisBusConfig, SubscribeOptions, Subscription, Topic};
use common::{eventually, pitwall, Server};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../bus/tests/support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// A `pitwall worker`, started and waited for; killed on drop.
struct Worker {
    child: Option<Child>,
    id: String,
}

impl Worker {
    fn start(role: &str, id: &str, redis: &str, extra: &[&str]) -> Worker {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(common::bin())
            .args(["worker", "--role", role, "--bus", redis, "--id", id])
            .args(extra)
            .env("PITWALL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pitwall worker");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        while !line.starts_with("pitwall worker ready") {
            line.clear();
            let n = out.read_line(&mut line).expect("read the ready line");
            assert!(n > 0, "pitwall worker {id} exited before it was ready");
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Worker {
            child: Some(child),
            id: id.to_string(),
        }
    }

    /// SIGKILL: no lease released, nothing acked, no goodbye.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (drains, releases its leases).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

const TRACK: &str = "Spielberg";
const LAPS: &str = "6";
const SPEED: &str = "40";

/// Two session names on telemetry partitions 0 and 1 of 2 (one per analysis worker).
fn sessions() -> [String; 2] {
    let find = |p: usize| {
        (0..)
            .map(|i| format!("scale-{i}"))
            .find(|s| bus::partition::of_session(s, 2) == p)
            .unwrap()
    };
    [find(0), find(1)]
}

/// The race both runs replay: simulated once into `dir` under session `src`.
fn simulate(dir: &Path) {
    let out = pitwall(&[
        "sim",
        "--data-dir",
        dir.to_str().unwrap(),
        "--track",
        TRACK,
        "--cars",
        "4",
        "--laps",
        LAPS,
        "--seed",
        "7",
        "--hz",
        "20",
        "--session",
        "src",
        "--start",
        "2025-06-01T14:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "sim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replays `src` under `session` through an embedded server (a child process) with `extra`
/// serve flags; the race document goes first, so the race length is known (strategy jobs).
fn replay(src_dir: &Path, session: &str, data_dir: &Path, extra: &[&str]) -> Child {
    Command::new(common::bin())
        .args(["replay", "src", "--source-data-dir"])
        .arg(src_dir)
        .args(["--session", session, "--embedded", "--no-analyse"])
        .args(["--speed", SPEED, "--batch", "200"])
        .args(["--http", "127.0.0.1:0", "--udp", "off", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("PITWALL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start replay")
}

/// Waits for a child without blocking the test's runtime threads.
async fn wait_ok(mut c: Child, what: &str) {
    loop {
        if let Some(st) = c.try_wait().expect("wait") {
            assert!(st.success(), "{what} failed: {st}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stored laps of a session: car -> lap -> lap time (ms, rounded).
type Laps = BTreeMap<String, BTreeMap<u64, Option<i64>>>;

async fn laps(srv: &Server, session: &str) -> Laps {
    let Ok(r) = reqwest::get(srv.url(&format!("/api/sessions/{session}/laps"))).await else {
        return Laps::new();
    };
    let v: Value = r.json().await.unwrap_or_default();
    let mut out = Laps::new();
    if v["source"] != "stored_laps" {
        return out;
    }
    for l in v["laps"].as_array().cloned().unwrap_or_default() {
        let car = l["car_id"].as_str().unwrap_or_default().to_string();
        let lap = l["lap"].as_u64().unwrap_or_default();
        let t = l["lap_time_s"]
            .as_f64()
            .map(|t| (t * 1000.0).round() as i64);
        out.entry(car).or_default().insert(lap, t);
    }
    out
}

/// Polls until the stored laps stop changing (and are not empty).
async fn settled_laps(srv: &Server, session: &str) -> Laps {
    let mut last = Laps::new();
    let mut same = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        let now = laps(srv, session).await;
        if !now.is_empty() && now == last {
            same += 1;
            if same >= 6 {
                return now;
            }
        } else {
            same = 0;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// Every insight on the insights stream: (session, car, lap, revision) -> times seen, and
/// whether it carried a pit window (ready, or why not).
type Seen = Arc<Mutex<BTreeMap<(String, String, u32, u32), (usize, bool)>>>;

async fn observe(redis: &str) -> Seen {
    let bus = RedisBus::connect(
        redis,
        RedisBusConfig {
            partitions: 2,
            ..RedisBusConfig::default()
        },
    )
    .await
    .expect("observer connects");
    let mut sub = bus
        .subscribe_with(
            Topic::Insights,
            "test-observer",
            SubscribeOptions::default(),
        )
        .await
        .expect("observer subscribes");
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        let _keep = bus;
        while let Some(d) = sub.next().await {
            if let Message::Insight(i) = &d.message {
                let window = i.pit_window.is_some();
                let mut m = s.lock();
                let e = m
                    .entry((i.session_id.clone(), i.chassis.clone(), i.lap, i.revision))
                    .or_insert((0, false));
                e.0 += 1;
                e.1 |= window;
            }
            let _ = sub.ack(&d).await;
        }
    });
    seen
}

async fn agents(srv: &Server) -> Vec<Value> {
    let Ok(r) = reqwest::get(srv.url("/api/agents")).await else {
        return Vec::new();
    };
    let v: Value = r.json().await.unwrap_or_default();
    v["agents"].as_array().cloned().unwrap_or_default()
}

/// The embedded half stores in SQLite; the distributed half in PostgreSQL (a fresh schema),
/// shared by the server, which reads, and the store worker, which writes.
#[test]
fn workers_give_the_embedded_laps_and_survive_a_killed_analysis_worker() {
    let Some(schema) = common::pg::Schema::fresh("workers") else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(workers_against_embedded(schema.store_url()));
}

async fn workers_against_embedded(store_url: String) {
    let src = tempfile::tempdir().unwrap();
    simulate(src.path());
    let names = sessions();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("pitwall.toml");
    // Fewer Monte Carlo iterations: a debug build runs every car's job of every lap.
    std::fs::write(&cfg, "strategy_live_iterations = 32\nbus_partitions = 2\n").unwrap();
    let cfg_s = cfg.to_str().unwrap();

    // 1. The embedded pipeline (one store per session: two SQLite writers would contend).
    let emb_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let r: Vec<Child> = names
        .iter()
        .zip(&emb_dirs)
        .map(|(s, d)| replay(src.path(), s, d.path(), &["--config", cfg_s]))
        .collect();
    for c in r {
        wait_ok(c, "embedded replay").await;
    }
    let mut want = Vec::new();
    for (s, d) in names.iter().zip(&emb_dirs) {
        let mut emb = Server::start(d.path(), &[]);
        let v: Value = reqwest::get(emb.url("/api/agents"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["bus"], "in-process", "{v}");
        assert_eq!(v["agents"], serde_json::json!([]));
        want.push(settled_laps(&emb, s).await);
        emb.stop();
    }
    for (s, w) in names.iter().zip(&want) {
        assert_eq!(w.len(), 4, "embedded laps of {s}: {w:?}");
        assert!(w.values().all(|l| l.len() >= 4), "{s}: {w:?}");
    }

    // 2. Server (ingest + delivery) and workers on Redis.
    let redis = RedisServer::start();
    let url = redis.url();
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(
        data.path(),
        &[
            "--config",
            cfg_s,
            "--bus",
            &url,
            "--workers",
            "--store",
            &store_url,
        ],
    );
    // The default claim time (30 s): nothing may depend on re-deliveries of idle entries.
    let common_args = ["--config", cfg_s];
    let mut store = Worker::start(
        "store",
        "store-1",
        &url,
        &[&common_args[..], &["--store", &store_url]].concat(),
    );
    let _strategy = Worker::start("strategy", "strategy-1", &url, &common_args);
    let analysis_args = [&common_args[..], &["--lease-ttl-ms", "1500"]].concat();
    let mut a1 = Worker::start("analysis", "analysis-1", &url, &analysis_args);
    let _a2 = Worker::start("analysis", "analysis-2", &url, &analysis_args);
    // The two analysis workers share the two partitions.
    let spread = eventually(Duration::from_secs(20), || async {
        let list = agents(&srv).await;
        let parts: Vec<usize> = list
            .iter()
            .filter(|a| a["role"] == "analysis")
            .map(|a| a["partitions"].as_array().map_or(0, Vec::len))
            .collect();
        parts == vec![1, 1] && list.iter().any(|a| a["role"] == "store")
    })
    .await;
    assert!(spread, "agents: {:?}", agents(&srv).await);
    let a1_partition = agents(&srv)
        .await
        .iter()
        .find(|a| a["id"] == "analysis-1")
        .and_then(|a| a["partitions"][0].as_u64())
        .expect("analysis-1 holds a partition");
    let victim_session = names[a1_partition as usize].clone();

    let seen = observe(&url).await;
    // Two ingest servers (the replays), each publishing to Redis.
    let r: Vec<Child> = names
        .iter()
        .map(|s| {
            replay(
                src.path(),
                s,
                data.path(),
                &["--config", cfg_s, "--bus", &url, "--workers"],
            )
        })
        .collect();
    // Mid-race: once the victim's session has insights of lap 2, kill it.
    let mid = eventually(Duration::from_secs(60), || async {
        seen.lock()
            .keys()
            .any(|(s, _, lap, rev)| *s == victim_session && *lap >= 2 && *rev == 0)
    })
    .await;
    assert!(mid, "no lap-2 insight of {victim_session} before the kill");
    a1.kill9();
    // The survivor takes the partition once the lease (and the live entry) expire.
    let taken = eventually(Duration::from_secs(20), || async {
        let list = agents(&srv).await;
        list.iter()
            .any(|a| a["id"] == "analysis-2" && a["partitions"].as_array().map_or(0, Vec::len) == 2)
            && !list.iter().any(|a| a["id"] == "analysis-1")
    })
    .await;
    assert!(taken, "agents after the kill: {:?}", agents(&srv).await);
    for c in r {
        wait_ok(c, "replay to the Redis server").await;
    }

    // 3. The same laps, stored by the store worker; every lap's insight emitted once.
    for (s, w) in names.iter().zip(&want) {
        let got = settled_laps(&srv, s).await;
        assert_eq!(&got, w, "laps of {s} (workers vs embedded)");
    }
    let seen = seen.lock().clone();
    for (s, w) in names.iter().zip(&want) {
        let rev0: BTreeSet<(String, u64)> = seen
            .iter()
            .filter(|((ss, _, _, rev), _)| ss == s && *rev == 0)
            .map(|((_, c, l, _), _)| (c.clone(), u64::from(*l)))
            .collect();
        let expected: BTreeSet<(String, u64)> = w
            .iter()
            .flat_map(|(c, laps)| laps.keys().map(move |l| (c.clone(), *l)))
            .collect();
        assert_eq!(rev0, expected, "insights of {s}");
    }
    let dup: Vec<_> = seen.iter().filter(|(_, (n, _))| *n > 1).collect();
    assert!(dup.is_empty(), "insights emitted twice: {dup:?}");
    for s in &names {
        assert!(
            seen.iter()
                .any(|((ss, _, _, rev), (_, w))| ss == s && *rev > 0 && *w),
            "a revised insight with a pit window for {s}: {seen:?}"
        );
    }
    // The replays' servers deleted their own consumer groups when they stopped: only the
    // running server's are left.
    let groups = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "XINFO",
            "GROUPS",
            "pitwall:insights",
        ])
        .output()
        .expect("redis-cli");
    let groups = String::from_utf8_lossy(&groups.stdout).to_string();
    let ws_groups = groups.lines().filter(|l| l.starts_with("ws-")).count();
    assert_eq!(ws_groups, 1, "{groups}");
    // The delivery server fed its cache (and WebSocket clients) from the insights stream.
    assert!(
        agents(&srv)
            .await
            .iter()
            .any(|a| a["role"] == "delivery" && a["processed"].as_u64().unwrap_or(0) > 0),
        "{:?}",
        agents(&srv).await
    );
    // The registry on /metrics too.
    assert!(srv.metric("pitwall_agent_processed").await > 0.0);
    let text = reqwest::get(srv.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("pitwall_agent_lag_ms{id=\"analysis-2\",role=\"analysis\"}"));
    // `pitwall agents` lists the same workers.
    let out = pitwall(&["agents", "--bus", &url, "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    for id in ["analysis-2", "strategy-1", "store-1"] {
        assert!(ids.contains(id), "{ids:?}");
    }
    assert!(!ids.contains(a1.id.as_str()));
    store.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_the_stages_reconnect_count_it_and_carry_on() {
    let src = tempfile::tempdir().unwrap();
    simulate(src.path());
    let names = sessions();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("pitwall.toml");
    std::fs::write(&cfg, "strategy_live_iterations = 32\nbus_partitions = 2\n").unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let redis = RedisServer::start();
    let (port, url) = (redis.port, redis.url());
    let data = tempfile::tempdir().unwrap();
    let data_s = data.path().to_str().unwrap();
    let srv = Server::start(
        data.path(),
        &["--config", cfg_s, "--bus", &url, "--workers"],
    );
    let common_args = ["--config", cfg_s];
    let mut store = Worker::start(
        "store",
        "store-1",
        &url,
        &[&common_args[..], &["--data-dir", data_s]].concat(),
    );
    let _strategy = Worker::start("strategy", "strategy-1", &url, &common_args);
    let analysis_args = [&common_args[..], &["--lease-ttl-ms", "1500"]].concat();
    let _a1 = Worker::start("analysis", "analysis-1", &url, &analysis_args);
    let bus_args = ["--config", cfg_s, "--bus", &url, "--workers"];

    // A race before the restart.
    wait_ok(
        replay(src.path(), &names[0], data.path(), &bus_args),
        "replay before",
    )
    .await;
    let before = settled_laps(&srv, &names[0]).await;
    assert_eq!(before.len(), 4, "{before:?}");

    // Redis goes away: the server says it is not ready, and why.
    drop(redis);
    let ready = |code: u16| {
        let u = srv.url("/ready");
        async move {
            match reqwest::get(u).await {
                Ok(r) if r.status().as_u16() == code => {
                    let v: Value = r.json().await.unwrap_or_default();
                    Some(v)
                }
                _ => None,
            }
        }
    };
    let mut down = None;
    let t0 = Instant::now();
    while down.is_none() && t0.elapsed() < Duration::from_secs(15) {
        down = ready(503).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = down.expect("not ready while Redis is down");
    assert_eq!(down["bus"], "unreachable", "{down}");

    // Back on the same port, empty: the stages reconnect; the reset is counted, not hidden.
    let _redis = RedisServer::start_on(port);
    let up = eventually(Duration::from_secs(30), || async {
        ready(200).await.is_some()
    })
    .await;
    assert!(up, "ready again after Redis came back");
    let counted = eventually(Duration::from_secs(15), || async {
        srv.metric("pitwall_redis_bus_redis_resets_total").await >= 1.0
            && srv.metric("pitwall_redis_bus_reconnects_total").await >= 1.0
    })
    .await;
    assert!(counted, "the Redis reset is counted on /metrics");

    // The next race goes through the same server and workers, whole.
    let back = eventually(Duration::from_secs(30), || async {
        let list = agents(&srv).await;
        ["analysis-1", "strategy-1", "store-1"]
            .iter()
            .all(|id| list.iter().any(|a| a["id"] == *id))
    })
    .await;
    assert!(back, "workers re-registered: {:?}", agents(&srv).await);
    wait_ok(
        replay(src.path(), &names[1], data.path(), &bus_args),
        "replay after",
    )
    .await;
    let after = settled_laps(&srv, &names[1]).await;
    assert_eq!(after, before, "the race after the restart, lap for lap");
    store.stop();
}
