//! Flags, environment variables and the config file, merged into a `server::Config`:
//! flag > environment variable > `--config` TOML file > built-in default.

use clap::{Args, Parser, Subcommand, ValueEnum};
use server::{Config, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `pitwall --version`: the crate version and the git commit it was built from (build.rs;
/// "unknown" when built outside git without `PITWALL_GIT_COMMIT`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("PITWALL_GIT_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "pitwall",
    version = VERSION,
    about = "Real-time race strategy and tire intelligence",
    long_about = "PitWall ingests live telemetry from many cars (HTTP/WebSocket JSON, UDP JSON, the F1 game's UDP \
                  packets), stores it, and streams it to a live dashboard.\n\n\
                  Start with `pitwall serve`, then send points to POST /api/telemetry/ingest or UDP port 20777. \
                  Every flag can also be set with an environment variable (shown in each flag's help) or in a \
                  TOML file given with --config."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the live server: HTTP + WebSocket API, UDP listener, store.
    Serve(ServeArgs),
    /// List the stored sessions (id, track, cars, samples per car, first and last time).
    Sessions(SessionsArgs),
    /// The demo: the server with a simulated 20-car race streamed through it live, one race after
    /// another (the third car starts braking 12 m later into corner 4 from lap 8: the coach should
    /// say so within a few laps).
    Demo(crate::race_cmd::DemoArgs),
    /// List the 25 circuits `sim` and `demo` can race on (`--track NAME`), with their lengths.
    Tracks(crate::race_cmd::TracksArgs),
    /// Simulate a race (ground-truth tyre wear included) into the store, or to a GR Cup CSV.
    Sim(crate::race_cmd::SimArgs),
    /// Import GR Cup files (telemetry, lap boundaries, official timing, results, weather, best
    /// laps, seed JSON) into one session; prints the session id.
    Import(crate::import::ImportArgs),
    /// Analyse stored sessions (laps, tyres, pit windows and the call, coaching) as the live
    /// stage does, and store the result: `pitwall analyse SESSION` or `--all` (those analysed
    /// by an older version). `import`, `sim` and `replay` do it at their end.
    #[command(alias = "analyze")]
    Analyse(crate::analyse_cmd::AnalyseArgs),
    /// Export a stored session's samples to CSV or Parquet (and its official laps to CSV).
    Export(crate::export::ExportArgs),
    /// Replay a stored session, a telemetry file or an F1 UDP recording in real time × speed.
    Replay(crate::replay::ReplayArgs),
    /// Record F1 game UDP datagrams with their times into a file `pitwall replay` can play.
    RecordF1(crate::replay::RecordF1Args),
    /// Pit-window recommendation: simulate the rest of a race thousands of times for every plan
    /// (stay out, one stop, two stops) of one car; or back-test the model on a stored race.
    Strategy(crate::strategy_cmd::StrategyArgs),
    /// Train the tire model (wear per corner, loss per lap) on stored sessions; writes a model file.
    Train(crate::model_cmd::TrainArgs),
    /// Score a tire model on sessions it never saw, beside the baselines (table, JSON, HTML report).
    Eval(crate::model_cmd::EvalArgs),
    /// Run one stage as a worker on the Redis bus: `analysis` (the sessions of the telemetry
    /// partitions it holds a lease on), `strategy` (pit-window Monte Carlo jobs) or `store`
    /// (the one writer of the store). Pair with `pitwall serve --bus ... --workers`.
    Worker(WorkerArgs),
    /// The live workers on the Redis bus: role, partitions, processed, pending, lag.
    Agents(AgentsArgs),
    /// API keys for the server's access control: `create --role viewer|ingest|admin` prints a
    /// key once (the store keeps a keyed hash), `list`, `revoke ID`. Audited.
    #[command(subcommand)]
    Keys(crate::keys_cmd::KeysCommand),
    /// Benchmarks with a built-in load generator (`pitwall bench ingest --help`).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// Directory of the store (created if missing).
    #[arg(long, env = "PITWALL_DATA_DIR", default_value = "./pitwall-data")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum RoleArg {
    Analysis,
    Strategy,
    Store,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The stage this worker runs.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The Redis bus: redis://HOST:PORT.
    #[arg(long, env = "PITWALL_BUS", value_name = "URL", hide_env_values = true)]
    pub bus: String,
    /// The worker's name in the registry [default: host-pid-nanos].
    #[arg(long, env = "PITWALL_WORKER_ID")]
    pub id: Option<String>,
    /// Telemetry partitions of the Redis bus; every server and worker must agree [default: 8].
    #[arg(long, env = "PITWALL_BUS_PARTITIONS")]
    pub bus_partitions: Option<usize>,
    /// Store (role store): a PostgreSQL URL, as `serve --store`.
    #[arg(
        long,
        env = "PITWALL_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Store directory (role store, SQLite) [default: ./pitwall-data].
    #[arg(long, env = "PITWALL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML file with the server settings the stage uses (bus_partitions, model,
    /// strategy_live_iterations, strategy_seed, store batching).
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Tire model file (role analysis) [default: the shipped one].
    #[arg(long, env = "PITWALL_MODEL")]
    pub model: Option<PathBuf>,
    /// Partition lease ttl, ms: how soon a dead analysis worker's sessions move to another.
    #[arg(long, env = "PITWALL_LEASE_TTL_MS", default_value_t = 10_000)]
    pub lease_ttl_ms: u64,
    /// Pending messages idle this long are taken over from a dead worker of the same group, ms.
    #[arg(long, env = "PITWALL_CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub claim_idle_ms: u64,
    /// Log format [default: text].
    #[arg(long, env = "PITWALL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
}

impl WorkerArgs {
    /// The worker's settings: flags over the config file over the defaults.
    pub fn config(&self) -> anyhow::Result<server::workers::WorkerConfig> {
        let mut c = match &self.config {
            Some(p) => Config::from_toml_file(p)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(u) = &self.store {
            c.store = Some(u.clone());
        }
        if let Some(m) = &self.model {
            c.model = Some(m.clone());
        }
        if let Some(f) = self.log_format {
            c.log_format = match f {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        if let Some(n) = self.bus_partitions {
            c.bus_partitions = n;
        }
        c.bus = Some(self.bus.clone());
        c.validate()?;
        Ok(server::workers::WorkerConfig {
            role: match self.role {
                RoleArg::Analysis => server::workers::Role::Analysis,
                RoleArg::Strategy => server::workers::Role::Strategy,
                RoleArg::Store => server::workers::Role::Store,
            },
            bus_url: self.bus.clone(),
            id: self
                .id
                .clone()
                .unwrap_or_else(bus::redis_bus::default_worker_id),
            lease_ttl_ms: self.lease_ttl_ms,
            claim_idle_ms: self.claim_idle_ms,
            server: c,
        })
    }
}

#[derive(Args, Debug)]
pub struct AgentsArgs {
    /// The Redis bus: redis://HOST:PORT.
    #[arg(long, env = "PITWALL_BUS", value_name = "URL", hide_env_values = true)]
    pub bus: String,
    /// Telemetry partitions of the bus (as the workers were started with).
    #[arg(long, env = "PITWALL_BUS_PARTITIONS", default_value_t = 8)]
    pub bus_partitions: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// HTTP and WebSocket address [default: 127.0.0.1:8081].
    #[arg(long, env = "PITWALL_HTTP")]
    pub http: Option<SocketAddr>,
    /// UDP address for JSON datagrams and F1 game packets, or `off` [default: 0.0.0.0:20777].
    #[arg(long, env = "PITWALL_UDP")]
    pub udp: Option<String>,
    /// Directory of the store [default: ./pitwall-data].
    #[arg(long, env = "PITWALL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL store shared by several processes instead of the SQLite one in the data
    /// directory: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME] (the schema is
    /// created if missing; default: the first of the search_path). Migrated at start.
    #[arg(
        long,
        env = "PITWALL_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "PITWALL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// The bus between the stages: redis://HOST:PORT for Redis Streams shared with other
    /// servers and `pitwall worker`s [default: in process].
    #[arg(long, env = "PITWALL_BUS", value_name = "URL", hide_env_values = true)]
    pub bus: Option<String>,
    /// With --bus: ingest and delivery only (WebSocket clients, latest-insight cache); the
    /// analysis, strategy and store stages run as `pitwall worker --role ...`.
    #[arg(long, env = "PITWALL_WORKERS")]
    pub workers: bool,
    /// Telemetry partitions of the Redis bus; every server and worker must agree [default: 8].
    #[arg(long, env = "PITWALL_BUS_PARTITIONS")]
    pub bus_partitions: Option<usize>,
    /// TOML file with any of the settings (buffer sizes, limits...): see config/pitwall.example.toml in the repository.
    #[arg(long, env = "PITWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest HTTP body accepted, bytes [default: 8388608].
    #[arg(long, env = "PITWALL_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Points the ingest ring holds before dropping the oldest [default: 20000].
    #[arg(long, env = "PITWALL_RING_CAPACITY")]
    pub ring_capacity: Option<usize>,
    /// Tire model file written by `pitwall train` [default: the model shipped in the binary,
    /// trained on simulated races].
    #[arg(long, env = "PITWALL_MODEL")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub network: crate::network_args::NetworkArgs,
}

/// Access control flags (README: "Running it on a network").
#[derive(Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// Require credentials (API keys from `pitwall keys create`, or JWTs) even on loopback.
    /// On by itself with --jwt-secret or --jwt-public-key.
    #[arg(long, env = "PITWALL_AUTH")]
    pub auth: bool,
    /// Serve HTTP on a non-loopback address without authentication (refused otherwise).
    #[arg(long, env = "PITWALL_INSECURE")]
    pub insecure: bool,
    /// HS256 secret of your identity provider's tokens (at least 32 bytes); prefer the
    /// environment variable to the flag (other users can see a process's arguments).
    #[arg(long, env = "PITWALL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key of your identity provider's tokens (RSA: RS256; EC P-256: ES256).
    #[arg(long, env = "PITWALL_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// The token claim holding the role (viewer, ingest, admin, or a list) [default: role].
    #[arg(long, env = "PITWALL_JWT_ROLE_CLAIM")]
    pub jwt_role_claim: Option<String>,
    /// Tokens must carry this audience (aud) [default: not checked].
    #[arg(long, env = "PITWALL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Tokens must carry this issuer (iss) [default: not checked].
    #[arg(long, env = "PITWALL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Networks UDP datagrams are accepted from, comma-separated CIDRs or addresses
    /// [default: 127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7].
    #[arg(long, env = "PITWALL_UDP_ALLOW", value_delimiter = ',', value_name = "CIDR,...",
          value_parser = server::auth::udp_allow::parse_network)]
    pub udp_allow: Option<Vec<ipnet::IpNet>>,
}

impl AuthArgs {
    /// Flags over `c` (the file's or the defaults).
    pub fn apply(&self, c: &mut server::auth::AuthConfig) {
        if self.auth {
            c.required = true;
        }
        if self.insecure {
            c.insecure = true;
        }
        if let Some(s) = &self.jwt_secret {
            c.jwt_secret = Some(s.clone());
        }
        if let Some(p) = &self.jwt_public_key {
            c.jwt_public_key = Some(p.clone());
        }
        if let Some(r) = &self.jwt_role_claim {
            c.jwt_role_claim = r.clone();
        }
        if let Some(a) = &self.jwt_audience {
            c.jwt_audience = Some(a.clone());
        }
        if let Some(i) = &self.jwt_issuer {
            c.jwt_issuer = Some(i.clone());
        }
        if let Some(n) = &self.udp_allow {
            c.udp_allow = n.clone();
        }
    }
}

impl ServeArgs {
    /// Merges flags and environment over the config file over the defaults.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_toml_file(p)?,
            None => Config::default(),
        };
        if let Some(h) = self.http {
            c.http = h;
        }
        if let Some(u) = &self.udp {
            c.udp = match u.trim() {
                "off" | "none" | "" => None,
                s => Some(s.parse().map_err(|e| {
                    anyhow::anyhow!(
                        "--udp {s:?} is not an address like 0.0.0.0:20777 or `off`: {e}"
                    )
                })?),
            };
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(u) = &self.store {
            c.store = Some(u.clone());
        }
        if let Some(b) = &self.bus {
            c.bus = Some(b.clone());
        }
        if self.workers {
            c.workers = true;
        }
        if let Some(n) = self.bus_partitions {
            c.bus_partitions = n;
        }
        if let Some(f) = self.log_format {
            c.log_format = match f {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        if let Some(b) = self.body_limit_bytes {
            c.body_limit_bytes = b;
        }
        if let Some(r) = self.ring_capacity {
            c.ring_capacity = r;
        }
        if let Some(m) = &self.model {
            c.model = Some(m.clone());
        }
        self.auth.apply(&mut c.auth);
        self.network.apply(&mut c);
        c.validate()?;
        Ok(c)
    }
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Load generator: HTTP or UDP ingestion against an embedded (or given) server, with
    /// WebSocket subscribers measuring ingest-to-WebSocket latency and RSS sampling.
    Ingest(crate::bench::IngestArgs),
    /// Offline analysis of a stored race (samples/s) and a stored session's strategy fixed
    /// cost, on a simulated 20-car, 30-lap race or a given session.
    Analysis(crate::bench_analysis::AnalysisBenchArgs),
}

/// A stored session as `pitwall sessions` shows it: the store's view plus the race length
/// (`server::stored::session_total_laps`).
#[derive(serde::Serialize)]
pub struct SessionRow {
    #[serde(flatten)]
    pub info: store::SessionInfo,
    /// Race length: the race document's, else the last lap stored.
    pub total_laps: Option<u32>,
}

/// A Unix time as `2025-06-01 14:00:00` (UTC); a small value (a session time from before
/// sessions started at a real instant) as seconds.
pub(crate) fn show_time(t: Option<f64>) -> String {
    match t {
        None => "-".into(),
        Some(t) if t >= 1e9 && t.is_finite() => {
            let secs = t.floor() as i64;
            let days = secs.div_euclid(86_400);
            let sod = secs.rem_euclid(86_400);
            // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = yoe + era * 400 + i64::from(m <= 2);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60
            )
        }
        Some(t) => format!("{t:.3} s"),
    }
}

/// Writes the session table; a closed pipe (`| head`) ends the listing quietly.
pub fn print_sessions(sessions: &[SessionRow]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if sessions.is_empty() {
        return writeln!(out, "no sessions stored yet");
    }
    writeln!(
        out,
        "{:<28} {:<14} {:>4} {:>10} {:<19} {:<19} {:>5} {:>8} {:>7}",
        "SESSION",
        "TRACK",
        "CARS",
        "SAMPLES",
        "FIRST (UTC)",
        "LAST (UTC)",
        "RACE",
        "OFFICIAL",
        "ENGINE"
    )?;
    for row in sessions {
        let s = &row.info;
        writeln!(
            out,
            "{:<28} {:<14} {:>4} {:>10} {:<19} {:<19} {:>5} {:>8} {:>7}",
            s.id,
            s.track.as_deref().unwrap_or("-"),
            s.cars.len(),
            s.samples,
            show_time(s.first_t_s),
            show_time(s.last_t_s),
            row.total_laps
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            s.official_laps,
            s.engine_laps,
        )?;
        for c in &s.cars {
            writeln!(
                out,
                "  car {:<22} {:>28} samples {:>6} official laps {:>6} engine laps",
                c.car_id, c.samples, c.official_laps, c.engine_laps
            )?;
        }
    }
    writeln!(
        out,
        "\nRACE: race length in laps; OFFICIAL: laps of the official timing (imported); \
         ENGINE: laps the lap engine cut from the telemetry (live, demo, sim)"
    )
}
