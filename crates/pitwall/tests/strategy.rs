//! `pitwall strategy` (stored race, scenario, back-test), `POST /api/strategy/simulate`, and
//! impossible scenarios refused with a clear error, never a panic.

mod common;

use common::{pitwall, Server};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const EXAMPLE: &str = include_str!("../../../data/strategy/example-scenario.toml");

fn sim_race(dir: &Path) -> String {
    let out = pitwall(&[
        "sim",
        "--track",
        "Spa",
        "--cars",
        "6",
        "--laps",
        "10",
        "--seed",
        "11",
        "--hz",
        "20",
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "panic: {err}");
}

#[test]
fn stored_race_plans_window_backtest_and_determinism() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let session = sim_race(dir.path());
    let car = "GR86-003-5";
    let args = [
        "strategy",
        "--session",
        &session,
        "--car",
        car,
        "--lap",
        "4",
        "--iterations",
        "400",
        "--seed",
        "9",
        "--json",
        "--data-dir",
        d,
    ];
    let a = json_of(&pitwall(&args));
    assert_eq!(a["car_id"], car);
    assert_eq!(a["current_lap"], 4);
    assert_eq!(
        a["total_laps"], 10,
        "race length from the session's race document"
    );
    let plans = a["plans"].as_array().expect("plans");
    assert!(
        plans.len() >= 3,
        "stay out + one-stop plans: {}",
        plans.len()
    );
    assert!(plans.iter().any(|p| p["label"] == "stay out"));
    for p in plans {
        let dist: f64 = p["finish_position_distribution"]
            .as_array()
            .expect("distribution")
            .iter()
            .filter_map(Value::as_f64)
            .sum();
        assert!((dist - 1.0).abs() < 1e-6, "distribution sums to 1: {dist}");
        let e = p["expected_position"].as_f64().expect("E[pos]");
        assert!((1.0..=6.0).contains(&e));
    }
    assert!(a["recommendation"]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    // Same seed, same answer.
    let b = json_of(&pitwall(&args));
    assert_eq!(a["plans"], b["plans"]);
    assert_eq!(a["recommendation"], b["recommendation"]);

    // The table form.
    let targs: Vec<&str> = args.iter().copied().filter(|x| *x != "--json").collect();
    let table = pitwall(&targs);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(t.contains("Recommendation:"), "{t}");

    // Back-test from lap 5: every car predicted, metrics beside the baseline.
    let bt = json_of(&pitwall(&[
        "strategy",
        "--backtest",
        "--session",
        &session,
        "--lap",
        "5",
        "--iterations",
        "500",
        "--json",
        "--data-dir",
        d,
    ]));
    assert_eq!(bt["cars"], 6);
    let mae = bt["mae_positions"].as_f64().expect("mae");
    let base = bt["baseline_mae_positions"].as_f64().expect("baseline");
    let cov = bt["coverage80"].as_f64().expect("coverage");
    assert!((0.0..=5.0).contains(&mae) && (0.0..=5.0).contains(&base));
    assert!((0.0..=1.0).contains(&cov));
}

#[test]
fn scenario_file_and_impossible_scenarios() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write scenario");
        p.to_str().expect("utf-8").to_string()
    };
    let ok = write("ok.toml", EXAMPLE);
    let r = json_of(&pitwall(&[
        "strategy",
        "--scenario",
        &ok,
        "--iterations",
        "300",
        "--json",
    ]));
    assert_eq!(r["car_id"], "7");
    assert!(r["plans"].as_array().is_some_and(|p| p.len() > 10));

    let cases = [
        (
            "no-laps-left.toml",
            EXAMPLE.replace("current_lap = 10", "current_lap = 30"),
            "lap",
        ),
        (
            "retired.toml",
            EXAMPLE.replacen(
                "pace_offset_s = -0.2",
                "pace_offset_s = -0.2\nretired = true",
                1,
            ),
            "retired",
        ),
        (
            "negative-pit-loss.toml",
            EXAMPLE.replace(
                "pit.lane_loss_green_s = 21.0",
                "pit.lane_loss_green_s = -5.0",
            ),
            "lane_loss_green_s",
        ),
        (
            "no-cars.toml",
            EXAMPLE
                .split("[[race.cars]]")
                .next()
                .expect("head")
                .to_string(),
            "car",
        ),
    ];
    for (name, text, needle) in cases {
        let p = write(name, &text);
        let out = pitwall(&["strategy", "--scenario", &p, "--iterations", "100"]);
        no_panic(&out);
        assert!(!out.status.success(), "{name} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{name}: {err}");
    }
    // Usage errors name what to do.
    let out = pitwall(&["strategy"]);
    no_panic(&out);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--session"));
}

fn toml_to_json(text: &str) -> Value {
    // The example scenario as the HTTP API's JSON: go through the strategy crate's own types.
    let v: toml::Value = toml::from_str(text).expect("toml");
    serde_json::to_value(v).expect("json")
}

#[tokio::test]
async fn http_simulate_answers_and_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = sim_race(dir.path());
    let server = Server::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let url = server.url("/api/strategy/simulate");

    let mut sc = toml_to_json(EXAMPLE);
    sc["iterations"] = 300.into();
    let r = http
        .post(&url)
        .json(&serde_json::json!({"scenario": sc}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["report"]["outcomes"]
        .as_array()
        .is_some_and(|o| o.len() > 10));
    assert!(v["pit_window"]["text"].is_string());

    let r = http
        .post(&url)
        .json(&serde_json::json!({"session": session, "car": "GR86-002-3", "lap": 4, "iterations": 300}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["report"]["current_lap"], 4);
    // `pitwall sim` stores the laps its lap engine cut.
    assert_eq!(v["lap_source"], "stored_laps");

    // Refusals: JSON bodies naming the field.
    let cases = [
        (
            serde_json::json!({"session": session, "car": "GR86-002-3", "lap": 10}),
            422,
            "lap",
        ),
        (
            serde_json::json!({"session": session, "car": "nobody"}),
            422,
            "car",
        ),
        (
            serde_json::json!({"session": "no-such-session", "car": "x"}),
            404,
            "session",
        ),
        (
            serde_json::json!({"session": session, "car": "GR86-002-3", "iterations": 0}),
            400,
            "iterations",
        ),
        (serde_json::json!({"car": "x"}), 400, "session"),
        (serde_json::json!({"bogus": 1}), 400, "body"),
    ];
    for (body, status, field) in cases {
        let r = http.post(&url).json(&body).send().await.expect("post");
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = r.json().await.expect("json error");
        assert_eq!(v["field"], field, "{body}: {v}");
        assert!(v["reason"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let mut retired = toml_to_json(EXAMPLE);
    retired["race"]["cars"][0]["retired"] = true.into();
    let r = http
        .post(&url)
        .json(&serde_json::json!({"scenario": retired}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);

    // Laps of the stored session.
    let r = http
        .get(server.url(&format!("/api/sessions/{session}/laps?car=GR86-002-3")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let laps = v["laps"].as_array().expect("laps");
    assert!(laps.len() >= 10, "laps 0..10: {}", laps.len());
    assert!(laps.iter().all(|l| l["car_id"] == "GR86-002-3"));
    let timed = laps
        .iter()
        .filter(|l| l["lap"].as_u64().is_some_and(|n| (2..=9).contains(&n)))
        .filter_map(|l| l["lap_time_s"].as_f64())
        .count();
    assert!(timed >= 7, "racing laps have times");
}
