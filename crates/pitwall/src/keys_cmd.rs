//! `pitwall keys`: API keys for the server's access control, in the store the servers share
//! (SQLite under --data-dir, or PostgreSQL with --store). A key is printed once; the store
//! keeps its HMAC-SHA256 under the deployment's secret. Every change is audited as `cli:USER`.
//! Running servers see a change within their key refresh (1 s by default).

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use server::auth::{keys, Role};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key of a role; prints the key (once: only its hash is stored) on stdout.
    Create(CreateArgs),
    /// List the keys: id, name, role, when created (and revoked, with --all).
    List(ListArgs),
    /// Revoke a key by id: refused by running servers within their key refresh (1 s).
    Revoke(RevokeArgs),
}

/// The store holding the keys.
#[derive(Args, Debug, Clone)]
pub struct KeyStoreArgs {
    /// Directory of the SQLite store.
    #[arg(long, env = "PITWALL_DATA_DIR", default_value = "./pitwall-data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL store instead (postgres://...), as `serve --store`.
    #[arg(
        long,
        env = "PITWALL_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,
}

impl KeyStoreArgs {
    fn open(&self) -> anyhow::Result<store::Store> {
        let location = store::StoreLocation::or_data_dir(self.store.as_deref(), &self.data_dir);
        store::Store::open_location(&location)
            .with_context(|| format!("opening the store at {location}"))
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// viewer (read), ingest (send telemetry, and read) or admin (everything).
    #[arg(long)]
    pub role: Role,
    /// What the key is for (shown in listings and the audit log).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub store: KeyStoreArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Revoked keys too.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: KeyStoreArgs,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The key's id (k_...), as `pitwall keys list` shows it.
    pub id: String,
    #[command(flatten)]
    pub store: KeyStoreArgs,
}

/// Who the audit log names for a CLI action.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    if user.is_empty() {
        "cli".into()
    } else {
        format!("cli:{user}")
    }
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(a) => {
            let name = a
                .name
                .as_deref()
                .map(server::auth::admin::clean_name)
                .filter(|n| !n.is_empty());
            let name = name.as_deref();
            if name.is_some_and(|n| n.chars().count() > 100) {
                bail!("--name: at most 100 characters");
            }
            let mut store = a.store.open()?;
            let hasher = keys::KeyHasher::from_store(&mut store)?;
            let new = keys::create(&mut store, &hasher, a.role, name, &actor())?;
            eprintln!(
                "created API key {} (role {}{}): copy it now, it is not shown again",
                new.row.id,
                a.role,
                name.map(|n| format!(", name {n:?}")).unwrap_or_default()
            );
            println!("{}", new.key);
            Ok(())
        }
        KeysCommand::List(a) => {
            let store = a.store.open()?;
            let rows = store.api_keys(a.all)?;
            let mut out = std::io::stdout().lock();
            let written = if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)
            } else if rows.is_empty() {
                writeln!(
                    out,
                    "no API keys (pitwall keys create --role viewer|ingest|admin)"
                )
            } else {
                (|| -> std::io::Result<()> {
                    writeln!(
                        out,
                        "{:<16} {:<7} {:<24} {:<19} {:<19}",
                        "ID", "ROLE", "NAME", "CREATED (UTC)", "REVOKED (UTC)"
                    )?;
                    for r in &rows {
                        writeln!(
                            out,
                            "{:<16} {:<7} {:<24} {:<19} {:<19}",
                            r.id,
                            r.role,
                            r.name.as_deref().unwrap_or("-"),
                            crate::cli::show_time(Some(r.created_unix_s)),
                            crate::cli::show_time(r.revoked_unix_s),
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
        KeysCommand::Revoke(a) => {
            let mut store = a.store.open()?;
            match keys::revoke(&mut store, &a.id, &actor())? {
                None => bail!("no API key {:?} (pitwall keys list --all)", a.id),
                Some(false) => eprintln!("{} was already revoked", a.id),
                Some(true) => eprintln!(
                    "revoked {}: running servers refuse it within their key refresh (1 s)",
                    a.id
                ),
            }
            Ok(())
        }
    }
}
