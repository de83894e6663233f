//! Access control through the binary: secure by default on a non-loopback address,
//! `pitwall keys` (create, list, revoke; audited), `serve --auth`, and `replay --to` with
//! `--api-key`.

mod common;

use common::{bin, eventually, pitwall, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `serve` and `demo` bound to 0.0.0.0 without authentication stop with a message that says
/// what to do; `--insecure` (or `--auth`) lets them start.
#[test]
fn a_public_address_needs_auth_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for cmd in ["serve", "demo"] {
        let out = pitwall(&[cmd, "--http", "0.0.0.0:0", "--udp", "off", "--data-dir", d]);
        assert!(
            !out.status.success(),
            "{cmd} started on 0.0.0.0 without auth"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        for what in ["0.0.0.0:0", "--auth", "--insecure", "pitwall keys create"] {
            assert!(err.contains(what), "{cmd}: {what} not in {err}");
        }
    }
    for extra in ["--insecure", "--auth"] {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--http",
                "0.0.0.0:0",
                "--udp",
                "off",
                "--data-dir",
                d,
                extra,
            ])
            .env("PITWALL_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            line.starts_with("pitwall listening http=0.0.0.0:"),
            "{extra}: {line:?}"
        );
    }
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_the_cli_guard_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("store");
    let d = d.to_str().unwrap();
    let admin = stdout(&pitwall(&[
        "keys",
        "create",
        "--role",
        "admin",
        "--name",
        "ops",
        "--data-dir",
        d,
    ]));
    let ingest = stdout(&pitwall(&[
        "keys",
        "create",
        "--role",
        "ingest",
        "--data-dir",
        d,
    ]));
    assert!(admin.starts_with("pw_") && ingest.starts_with("pw_"));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&pitwall(&[
        "keys",
        "list",
        "--json",
        "--data-dir",
        d,
    ])))
    .unwrap();
    let keys = listed.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        !listed.to_string().contains(&admin),
        "a listing never shows a key"
    );
    let ingest_id = keys
        .iter()
        .find(|k| k["role"] == "ingest")
        .and_then(|k| k["id"].as_str())
        .unwrap()
        .to_string();
    assert!(
        !pitwall(&["keys", "create", "--role", "root", "--data-dir", d])
            .status
            .success()
    );

    let srv = Server::start(std::path::Path::new(d), &["--auth"]);
    let client = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut r = client.get(srv.url(path));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/api/sessions", None).await, 401);
    assert_eq!(get("/api/sessions", Some(&ingest)).await, 200);
    assert_eq!(get("/api/audit", Some(&ingest)).await, 403);

    // replay --to: refused without a key, through with --api-key.
    let csv = dir.path().join("race.csv");
    stdout(&pitwall(&[
        "sim",
        "--track",
        "Austin",
        "--cars",
        "2",
        "--laps",
        "1",
        "--csv",
        csv.to_str().unwrap(),
    ]));
    let base = srv.url("");
    let replay = |key: Option<&str>| {
        let mut args = vec![
            "replay",
            csv.to_str().unwrap(),
            "--speed",
            "0",
            "--to",
            &base,
        ];
        if let Some(k) = key {
            args.extend(["--api-key", k]);
        }
        pitwall(&args)
    };
    let refused = replay(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    let sent = replay(Some(&ingest));
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    // Revoked by the CLI: the server refuses it within its key refresh (1 s).
    stdout(&pitwall(&["keys", "revoke", &ingest_id, "--data-dir", d]));
    assert!(
        eventually(Duration::from_secs(10), || async {
            get("/api/sessions", Some(&ingest)).await == 401
        })
        .await,
        "a key revoked by the CLI is refused"
    );
    let audit: serde_json::Value = client
        .get(srv.url("/api/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["key.revoke", "key.create", "key.create"]);
    assert!(entries
        .iter()
        .all(|e| e["actor"].as_str().unwrap_or("").starts_with("cli")));
    assert_eq!(entries[0]["target"], ingest_id.as_str());
}
