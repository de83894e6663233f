//! Every stored session has its analysis: a race simulated into the store answers the
//! profile, alerts, `predict_tire?lap=8`, `dashboard/live?lap=8` and the laps with the values
//! that streaming the same race live gives.
//!
//! Store A: `pitwall sim` (the analysis runs offline at its end). Store B: the same samples
//! replayed through an embedded live server (`replay --no-analyse`: only what the live stage
//! stored). Then a server on each store answers the same questions.

mod common;

use common::{pitwall, Server};
use serde_json::Value;

const SESSION: &str = "stored-vs-live";
const TRACK: &str = "Spielberg";

async fn get(srv: &Server, path: &str) -> Value {
    let r = reqwest::get(srv.url(path)).await.expect("get");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// Drops what depends on when the answer was made.
fn timeless(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
        m.remove("generated_at");
    }
    v
}

/// An insight without its race view when the two sides hold different revisions of it (the
/// live worker takes the newest lap of each car, so it may skip a lap's window).
fn comparable(a: &Value, b: &Value) -> (Value, Value) {
    let (mut a, mut b) = (a.clone(), b.clone());
    if a["revision"] != b["revision"] {
        for v in [&mut a, &mut b] {
            if let Some(o) = v.as_object_mut() {
                for k in ["revision", "pit_window", "call"] {
                    o.remove(k);
                }
            }
        }
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_race_answers_as_the_live_one() {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let b_dir = tempfile::tempdir().expect("tempdir");
    let (a_path, b_path) = (
        a_dir.path().to_str().expect("utf8"),
        b_dir.path().to_str().expect("utf8"),
    );
    let out = pitwall(&[
        "sim",
        "--data-dir",
        a_path,
        "--track",
        TRACK,
        "--cars",
        "4",
        "--laps",
        "10",
        "--seed",
        "3",
        "--hz",
        "20",
        "--session",
        SESSION,
        "--start",
        "2025-06-01T14:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "sim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("analysed"),
        "sim analyses at its end"
    );
    let out = pitwall(&[
        "replay",
        SESSION,
        "--source-data-dir",
        a_path,
        "--data-dir",
        b_path,
        "--speed",
        "100",
        "--embedded",
        "--no-analyse",
        "--http",
        "127.0.0.1:0",
    ]);
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut a = Server::start(a_dir.path(), &[]);
    let mut b = Server::start(b_dir.path(), &[]);
    let sessions = a.sessions().await;
    let cars: Vec<String> = sessions[0]["cars"]
        .as_array()
        .expect("cars")
        .iter()
        .filter_map(|c| c["car_id"].as_str().or(c.as_str()).map(str::to_string))
        .collect();
    assert_eq!(cars.len(), 4, "{sessions:?}");
    let mut windows_compared = 0;
    for car in &cars {
        let q = |p: String| p;
        // Profile and alerts: the same baseline, learnt offline or live.
        let pa = get(&a, &q(format!("/api/drivers/{car}/profile"))).await;
        let pb = get(&b, &q(format!("/api/drivers/{car}/profile"))).await;
        assert_eq!(pa["profile"], pb["profile"], "profile of {car}");
        assert_eq!(pa["session_id"], SESSION);
        let aa = get(&a, &format!("/api/drivers/{car}/alerts")).await;
        let ab = get(&b, &format!("/api/drivers/{car}/alerts")).await;
        assert_eq!(aa["alerts"], ab["alerts"], "alerts of {car}");

        // The tyre model's answer after lap 8.
        let path = format!("/api/predict_tire/{TRACK}/{car}?lap=8");
        let (ta, tb) = (
            timeless(get(&a, &path).await),
            timeless(get(&b, &path).await),
        );
        assert_eq!(ta, tb, "{path}");
        assert_eq!(ta["lap"], 8);
        assert!(ta["tire_wear"]["fl"].is_number(), "{ta}");

        // The dashboard's view of lap 8: tyres, performance, gaps; the race view too when
        // both hold the same revision of the lap.
        let path = format!("/api/dashboard/live?track={TRACK}&vehicle={car}&lap=8");
        let (da, db) = (get(&a, &path).await, get(&b, &path).await);
        assert_eq!(da["status"], "live");
        for k in ["tire_wear", "performance", "gap_analysis"] {
            assert_eq!(da[k], db[k], "{path}: {k}");
        }
        let (ia, ib) = comparable(&da["insight"], &db["insight"]);
        assert_eq!(ia, ib, "{path}: insight");
        if da["insight"]["revision"] == db["insight"]["revision"] {
            assert_eq!(da["strategy"], db["strategy"], "{path}: strategy");
            assert_eq!(da["call"], db["call"], "{path}: call");
            windows_compared += 1;
        }
        // The stored race has every lap's pit window and its call.
        assert_eq!(da["strategy"]["status"], "ready", "{}", da["strategy"]);
        assert!(da["call"]["text"].as_str().is_some_and(|t| !t.is_empty()));

        // The laps: every lap the live stage closed is there, with the same values (the
        // stored analysis also closes each car's last lap at the end of the session).
        let path = format!("/api/sessions/{SESSION}/laps?car={car}");
        let (la, lb) = (get(&a, &path).await, get(&b, &path).await);
        assert_eq!(la["source"], "stored_laps");
        let la = la["laps"].as_array().cloned().unwrap_or_default();
        let lb = lb["laps"].as_array().cloned().unwrap_or_default();
        assert!(
            lb.len() >= 8 && la.len() >= lb.len(),
            "{} offline, {} live",
            la.len(),
            lb.len()
        );
        for live in &lb {
            let off = la
                .iter()
                .find(|l| l["lap"] == live["lap"])
                .unwrap_or_else(|| panic!("lap {} of {car} not stored offline", live["lap"]));
            let (mut x, mut y) = (off.clone(), live.clone());
            let (ix, iy) = comparable(&x["insight"], &y["insight"]);
            x["insight"] = ix;
            y["insight"] = iy;
            assert_eq!(x, y, "lap {} of {car}", live["lap"]);
        }
    }
    assert!(
        windows_compared >= 1,
        "no lap 8 window computed live to compare"
    );
    a.stop();
    b.stop();
}
