//! The analysis stage live: `pitwall demo` streams a race; every completed lap becomes an
//! `insight_update` (seed shape, with gaps and, once the strategy worker has run, the pit
//! window), a stored lap, and the dashboard's first paint.

mod common;

use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn demo_laps_become_insights_with_gaps_and_pit_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = Server::start_cmd(
        "demo",
        dir.path(),
        &[
            "--track",
            "Spa",
            "--cars",
            "4",
            "--laps",
            "8",
            "--hz",
            "20",
            "--speed",
            "60",
            "--start-lap",
            "1",
        ],
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url())
        .await
        .expect("ws connect");
    ws.send(Message::Text(
        json!({"type": "subscribe", "track": null, "chassis": null})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut cars = BTreeSet::new();
    let mut with_window: Option<Value> = None;
    let mut seen = 0;
    let mut tire_ok = 0;
    while Instant::now() < deadline && (with_window.is_none() || cars.len() < 4) {
        let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(10), ws.next()).await
        else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).expect("JSON");
        if v["type"] != "insight_update" {
            continue;
        }
        assert!(v["meta"]["generated_at"].is_string());
        for d in v["data"].as_array().expect("data array") {
            seen += 1;
            // The seed's fields.
            for k in [
                "chassis",
                "track",
                "lap",
                "lap_tire_stress",
                "perSectorStress",
            ] {
                assert!(!d[k].is_null(), "{k} missing in {d}");
            }
            for k in ["0", "1", "2"] {
                assert!(d["perSectorStress"][k].as_f64().is_some_and(f64::is_finite));
            }
            assert_eq!(d["track"], "Spa");
            // Gaps beside them.
            let pos = d["gaps"]["position"].as_u64().expect("gaps.position");
            assert!((1..=4).contains(&pos), "{d}");
            if pos == 1 {
                assert_eq!(d["gaps"]["gap_to_leader_s"].as_f64(), Some(0.0));
            }
            // The tire model's answer: wear per corner always (finite), a loss prediction or
            // a stated reason, never NaN (JSON has no NaN: it would be null).
            for c in ["fl", "fr", "rl", "rr"] {
                let w = d["tire_wear"][c]
                    .as_f64()
                    .unwrap_or_else(|| panic!("tire_wear.{c} in {d}"));
                assert!((0.0..=100.0).contains(&w), "{d}");
            }
            assert!(d["explanation"].is_array(), "{d}");
            if d["tire_ok"] == true {
                assert!(d["predicted_loss_per_lap_seconds"]
                    .as_f64()
                    .is_some_and(f64::is_finite));
                assert_eq!(d["explanation"].as_array().map(Vec::len), Some(3), "{d}");
                tire_ok += 1;
            } else {
                assert!(d["tire_status"]["reason"].is_string(), "{d}");
            }
            // Every insight carries a pit window: the latest one (with `as_of_lap`), or a status
            // saying why there is none yet.
            assert!(
                d["pit_window"]["plans"].is_array() || d["pit_window"]["status"].is_string(),
                "{d}"
            );
            cars.insert(d["chassis"].as_str().expect("chassis").to_string());
            if d["pit_window"]["plans"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
            {
                with_window = Some(d.clone());
            }
        }
    }
    assert_eq!(cars.len(), 4, "every car gets insights ({seen} seen)");
    assert!(tire_ok > 0, "some lap has a full tire prediction");
    let w = with_window.expect("an insight_update with a pit window");
    let pw = &w["pit_window"];
    assert!(pw["text"].as_str().is_some_and(|t| !t.is_empty()), "{pw}");
    assert!(pw["plans"][0]["position_distribution"].is_array());

    // The dashboard's first paint for that car, and its stored laps.
    let car = w["chassis"].as_str().expect("chassis");
    let http = reqwest::Client::new();
    let r = http
        .get(srv.url(&format!("/api/dashboard/live?track=Spa&vehicle={car}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    for k in ["tire_wear", "performance", "gap_analysis", "strategy"] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    assert!(v["performance"]["lap_time_s"].is_number() || v["lap"] == 0);
    let p: Value = http
        .get(srv.url(&format!("/api/predict_tire/Spa/{car}")))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    for k in [
        "predicted_loss_per_lap_s",
        "laps_until_0_5s_loss",
        "recommended_pit_lap",
        "feature_scores",
        "explanation",
    ] {
        assert!(p.get(k).is_some(), "{k} in {p}");
    }
    assert!(p["meta"]["model_version"].is_string(), "{p}");
    assert!(p["tire_wear"]["fl"].is_number(), "{p}");
    let r = http
        .get(srv.url("/api/predict_tire/Spa/no-such-car"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let r = http
        .get(srv.url("/api/dashboard/live?vehicle=no-such-car"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);

    let sessions = srv.sessions().await;
    let id = sessions[0]["id"].as_str().expect("session id");
    let v: Value = http
        .get(srv.url(&format!("/api/sessions/{id}/laps")))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(v["source"], "stored_laps");
    assert!(v["laps"].as_array().is_some_and(|l| l.len() >= 4));
}
