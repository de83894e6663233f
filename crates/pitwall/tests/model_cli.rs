//! `pitwall train` / `pitwall eval`: a model learnt from stored sessions, scored on a session
//! it never saw (JSON with the baselines, HTML report), refused on a session it trained on,
//! and loaded by `pitwall serve --model`.

mod common;

use common::{pitwall, Server};
use serde_json::Value;

#[tokio::test]
async fn train_eval_and_serve_with_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    for (track, seed) in [("Spa", "1"), ("Suzuka", "2"), ("Monza", "3")] {
        let out = pitwall(&[
            "sim",
            "--track",
            track,
            "--seed",
            seed,
            "--cars",
            "8",
            "--laps",
            "14",
            "--hz",
            "20",
            "--data-dir",
            d,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let model = dir.path().join("tires.json");
    let m = model.to_str().expect("utf-8");
    let out = pitwall(&[
        "train",
        "--sessions",
        "sim-Spa-1,sim-Suzuka-2",
        "--out",
        m,
        "--data-dir",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&model).expect("model file")).expect("json");
    assert!(file["format_version"].is_number());
    assert_eq!(
        file["trained_sessions"],
        serde_json::json!(["sim-Spa-1", "sim-Suzuka-2"])
    );

    let report = dir.path().join("eval.html");
    let out = pitwall(&[
        "eval",
        "--model",
        m,
        "--sessions",
        "sim-Monza-3",
        "--json",
        "--report",
        report.to_str().expect("utf-8"),
        "--data-dir",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for k in [
        "n_laps",
        "wear_r2",
        "wear_mae_pct",
        "loss_mae_s",
        "baseline_last_lap_mae_s",
        "baseline_stint_line_mae_s",
        "interval80_coverage",
    ] {
        assert!(e[k].is_number(), "{k} in eval JSON");
    }
    assert!(e["n_laps"].as_u64().is_some_and(|n| n >= 100));
    let html = std::fs::read_to_string(&report).expect("report");
    assert!(html.contains("<svg"), "plots in the report");

    // A session the model trained on is refused.
    let out = pitwall(&[
        "eval",
        "--model",
        m,
        "--sessions",
        "sim-Spa-1",
        "--data-dir",
        d,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("was used to train"));

    // Training on one session is refused with what to do.
    let out = pitwall(&[
        "train",
        "--sessions",
        "sim-Spa-1",
        "--out",
        m,
        "--data-dir",
        d,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 sessions"));

    // Export writes the engine's laps beside the samples (with the 20 features).
    let out = pitwall(&[
        "export",
        "sim-Monza-3",
        "--format",
        "parquet",
        "--out",
        dir.path().join("monza.parquet").to_str().expect("utf-8"),
        "--data-dir",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let laps = std::fs::read_to_string(dir.path().join("monza_engine_laps.csv")).expect("laps csv");
    let header = laps.lines().next().expect("header");
    for col in [
        "car_id",
        "lap",
        "lap_time_s",
        "s1_s",
        "pit",
        "safety_car",
        "feature_cum_lateral_g_s",
        "tyre_wear_fl_pct",
    ] {
        assert!(header.split(',').any(|c| c == col), "{col} in {header}");
    }
    assert!(laps.lines().count() > 8 * 14, "every car's laps");

    // serve --model loads it; a broken model file stops the start with a clear error.
    let mut srv = Server::start(dir.path(), &["--model", m]);
    assert!(srv.stop().success());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format_version\": 999}").expect("write");
    let out = pitwall(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--udp",
        "off",
        "--data-dir",
        d,
        "--model",
        bad.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("format_version"));
}
