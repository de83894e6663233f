//! Coaching end to end in one process: a simulated race where one driver starts braking 15 m
//! later into one corner from lap 9 streams through the pipeline; that driver gets a
//! `coaching_alert` on the WebSocket naming the corner, the others none; profiles and alerts
//! are served by the API.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_braking_is_alerted_to_that_driver_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = server::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        udp: None,
        data_dir: dir.path().to_path_buf(),
        // The race is fed flat out: let this one client queue it all.
        ws_client_queue: 1_000_000,
        ..server::Config::default()
    };
    let running = server::start(config).await.expect("start");
    let base = format!("http://{}", running.http_addr);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/realtime", running.http_addr))
            .await
            .expect("ws");
    ws.send(Message::Text(
        json!({"type": "subscribe", "track": null, "chassis": null})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");

    let mut cfg = sim::RaceConfig::new("Spielberg", 16, 5);
    cfg.cars = 3;
    cfg.hz = 20.0;
    cfg.safety_car = sim::SafetyCarMode::Off;
    cfg = cfg.with_generated_drivers();
    for d in &mut cfg.drivers {
        d.pit = sim::PitPlan::NoStop;
    }
    cfg.drivers[0].habit_changes.push(sim::HabitChange {
        corner: Some(3),
        from_lap: 9,
        brake_point_offset_m: Some(15.0),
        ..sim::HabitChange::default()
    });
    let mut race = sim::Race::new(cfg).expect("race");
    let target = race.car_ids()[0].to_string();
    let state = running.state.clone();
    let feeder = tokio::spawn(async move {
        let mut out = Vec::new();
        while race.step(&mut out) {
            if out.len() >= 2000 {
                state.ingest_samples("test", std::mem::take(&mut out));
                while state.ring.len() > 8000 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        state.ingest_samples("test", out);
    });

    let mut alerts: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        let t = match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            // Quiet for 5 s after the race was fed: the pipeline is done.
            Err(_) if feeder.is_finished() => break,
            Err(_) => continue,
            Ok(other) => panic!("websocket ended: {other:?}"),
        };
        let v: Value = serde_json::from_str(&t).expect("json");
        if v["type"] == "coaching_alert" {
            alerts.extend(v["data"].as_array().cloned().unwrap_or_default());
        }
    }
    feeder.await.expect("feeder");
    let mine: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["car_id"] == target.as_str())
        .collect();
    let others = alerts.len() - mine.len();
    assert!(
        mine.iter().any(|a| a["metric"] == "brake_point_m"
            && a["corner"] == 3
            && a["lap"].as_u64() >= Some(9)),
        "late braking into corner 3 alerted: {alerts:#?}"
    );
    assert!(
        mine.iter()
            .all(|a| a["message"].as_str().is_some_and(|m| !m.is_empty())),
        "radio messages"
    );
    assert!(others <= 1, "other drivers stay quiet: {alerts:#?}");

    let http = reqwest::Client::new();
    let p: Value = http
        .get(format!("{base}/api/drivers/{target}/profile"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(p["status"], "ready", "{p}");
    assert!(p["profile"]["corners"]
        .as_array()
        .is_some_and(|c| c.len() >= 5));
    let a: Value = http
        .get(format!("{base}/api/drivers/{target}/alerts"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(a["alerts"].as_array().is_some_and(|x| !x.is_empty()));
    // Two laps of the driver compared corner by corner: after the change (lap 12) against
    // before (lap 5).
    let c: Value = http
        .get(format!(
            "{base}/api/sessions/sim-Spielberg-5/compare?car_a={target}&lap_a=5&lap_b=12"
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let segs = c["segments"].as_array().expect("segments");
    assert!(segs.len() >= 5, "{c}");
    let sum: f64 = segs.iter().filter_map(|s| s["delta_s"].as_f64()).sum();
    let total = c["total_delta_s"].as_f64().expect("total");
    assert!(
        (sum - total).abs() < 0.05,
        "segments add up: {sum} vs {total}"
    );
    // Two drivers compared.
    let other_car = alerts
        .iter()
        .map(|a| a["car_id"].as_str().unwrap_or("").to_string())
        .find(|c| *c != target)
        .unwrap_or_else(|| "GR86-002-3".to_string());
    let r = http
        .get(format!(
            "{base}/api/drivers/compare?a={target}&b={other_car}"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["corners"].as_array().is_some_and(|c| c.len() >= 5), "{v}");
    let other = running.state.latest_insight(Some("Spielberg"), &target);
    assert!(other.is_some(), "insights cached");
    let r = http
        .get(format!("{base}/api/drivers/nobody/profile"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    running.shutdown().await.expect("shutdown");
}
