//! What a newcomer meets first: `tracks`, the lap counts of `sessions`, an error's causes
//! printed once, plain logs when stderr is not a terminal.

mod common;

use common::pitwall;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tracks_lists_the_25_circuits_with_lengths() {
    let o = pitwall(&["tracks", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 25);
    for r in rows {
        let len = r["length_m"].as_f64().expect("length_m");
        assert!((1000.0..10_000.0).contains(&len), "{r}");
    }
    let o = pitwall(&["tracks"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("Austin") && table.contains("Suzuka"),
        "{table}"
    );
    // Header + 25 rows.
    assert_eq!(table.lines().count(), 26, "{table}");
}

#[test]
fn unknown_track_names_the_closest_or_lists_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let o = pitwall(&["sim", "--track", "Suzka", "--laps", "1", "--data-dir", d]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did you mean Suzuka?"),
        "{}",
        stderr(&o)
    );
    let o = pitwall(&["sim", "--track", "Nowhere", "--laps", "1", "--data-dir", d]);
    assert!(!o.status.success());
    let e = stderr(&o);
    for name in ["Austin", "Spa", "Suzuka", "Monza", "IMS"] {
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn sim_laps_show_as_engine_laps_in_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let o = pitwall(&[
        "sim",
        "--track",
        "Spa",
        "--cars",
        "3",
        "--laps",
        "4",
        "--hz",
        "20",
        "--start",
        "2025-06-01T14:00:00Z",
        "--data-dir",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let o = pitwall(&["sessions", "--json", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let s = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} in {v}"));
    assert_eq!(s["total_laps"], 4, "{s}");
    assert_eq!(s["official_laps"], 0, "{s}");
    for c in s["cars"].as_array().expect("cars") {
        assert_eq!(c["engine_laps"], 4, "{c}");
    }
    assert_eq!(s["engine_laps"], 12, "{s}");
    // The race started at the given instant: times are Unix seconds.
    let first = s["first_t_s"].as_f64().expect("first_t_s");
    assert!((first - 1_748_786_400.0).abs() < 1.0, "{first}");

    let o = pitwall(&["sessions", "--data-dir", d]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("OFFICIAL") && table.contains("ENGINE"),
        "{table}"
    );
    assert!(table.contains("2025-06-01 14:00:00"), "{table}");
}

#[test]
fn an_error_prints_each_cause_once() {
    let o = pitwall(&["serve", "--config", "/nonexistent/pitwall.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(e.contains("/nonexistent/pitwall.toml"), "{e}");
}

#[test]
fn piped_logs_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(common::bin())
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "off",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("PITWALL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut out = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let t0 = Instant::now();
    let mut b = [0u8; 1];
    while !String::from_utf8_lossy(&line).contains("pitwall listening") {
        assert!(t0.elapsed() < Duration::from_secs(30), "no listening line");
        if out.read(&mut b).expect("read") == 0 {
            break;
        }
        line.push(b[0]);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    let _ = child.wait();
    assert!(err.contains("PitWall serving"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI escape in a piped log: {err:?}");
    assert!(err.contains("udp=off"), "{err}");
    assert!(!err.contains("Some("), "{err}");
}
