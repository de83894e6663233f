//! End to end: `pitwall serve` on free ports, a mixed valid/invalid batch over HTTP, the valid
//! points on a subscribed WebSocket, and in the store after a restart.

mod common;

use common::{eventually, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} message within 5 s"))
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).expect("server sends JSON");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn mixed_batch_reaches_websocket_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();

    let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url())
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type":"subscribe","track":"barber"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = next_json(&mut ws, "subscribed").await;
    assert_eq!(ack["track"], "barber");
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    next_json(&mut ws, "pong").await;

    let batch = json!([
        {"meta_time":"2025-06-01T14:02:11.210Z","track":"barber","chassis":"GR86-004-17","lap":4,"lapdist_m":100.0,"speed_kmh":131.5,"accx_can":-0.4,"accy_can":1.07,"Steering_Angle":-12.0,"pbrake_f":20.1,"pbrake_r":18.0,"rpm":6500,"gear":4},
        {"meta_time":"2025-06-01T14:02:11.260Z","track":"barber","chassis":"GR86-004-17","speed_kmh":700.0},
        {"meta_time":"2025-06-01T14:02:11.310Z","track":"barber","chassis":"GR86-004-17","lap":4,"lapdist_m":104.0,"speed_kmh":132.0},
        {"meta_time":"2025-06-01T14:02:11.310Z","track":"barber","speed_kmh":132.0},
        {"meta_time":"2025-06-01T14:02:11.310Z","track":"sebring","chassis":"GR86-010-3","speed_kmh":90.0},
        {"meta_time":"2025-06-01T14:02:11.360Z","track":"barber","chassis":"GR86-004-17","gear":"fourth"}
    ]);
    let resp = client
        .post(srv.url("/api/telemetry/ingest"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    let rejected: Vec<(u64, String)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "speed_kmh".into()),
            (3, "chassis".into()),
            (5, "gear".into())
        ]
    );

    // The subscribed client sees exactly the two valid barber points (not the sebring one).
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = next_json(&mut ws, "telemetry_update").await;
        for p in m["data"].as_array().unwrap() {
            assert_eq!(p["track"], "barber");
            seen.push(p["speed_kmh"].as_f64().unwrap());
        }
    }
    assert_eq!(seen, vec![131.5, 132.0]);

    // The alias route answers the same way; 422 when nothing is accepted.
    let resp = client
        .post(srv.url("/api/ingest"))
        .json(&json!([{"track":"barber","chassis":"x","rpm":-5}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"][0]["field"], "rpm");

    // Stored within a second of the answer.
    let stored = eventually(Duration::from_secs(1), || async {
        srv.sessions()
            .await
            .iter()
            .map(|s| s["samples"].as_u64().unwrap())
            .sum::<u64>()
            == 3
    })
    .await;
    assert!(stored, "accepted points not stored within 1 s");

    assert!(srv.stop().success());
    let srv = Server::start(dir.path(), &[]);
    let sessions = srv.sessions().await;
    let barber = sessions
        .iter()
        .find(|s| s["id"] == "barber")
        .expect("barber kept");
    assert_eq!(barber["samples"], 2);
    assert_eq!(barber["cars"][0]["car_id"], "GR86-004-17");
    assert!((barber["first_t_s"].as_f64().unwrap() - 1748786531.21).abs() < 1e-3);
    let out = std::process::Command::new(common::bin())
        .args(["sessions", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

/// A client written against the documented API: it sends a point under the ingest shape's
/// names and reads `telemetry_update` points by those same names only. Every field it sent
/// comes back under the name it was sent with, with the same value.
#[tokio::test]
async fn websocket_points_carry_the_documented_names() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url())
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"type":"subscribe","track":"barber","chassis":"GR86-004-17"}).to_string(),
    ))
    .await
    .unwrap();
    next_json(&mut ws, "subscribed").await;

    let sent = json!({
        "session": "barber-r1", "track": "barber", "chassis": "GR86-004-17",
        "meta_time": "2025-06-01T14:02:11.210Z", "lap": 4, "lapdist_m": 1200.5,
        "speed_kmh": 131.5, "accx_can": -0.4, "accy_can": 1.07, "Steering_Angle": -12.0,
        "pbrake_f": 20.1, "pbrake_r": 18.0, "aps": 80.0, "brake_pct": 15.0, "rpm": 6500.0,
        "gear": 4, "VBOX_Lat_Min": 33.5327, "VBOX_Long_Minutes": -86.6196, "position": 3,
        "fuel_kg": 30.5, "tyre_compound": "soft", "tyre_age_laps": 7, "pit_status": "none",
        "tyre_wear_pct": {"fl": 10.5, "fr": 11.5, "rl": 8.0, "rr": 8.5},
        "tyre_temp_c": {"fl": 90.0, "fr": 91.0, "rl": 85.0, "rr": 86.0},
        "track_temp_c": 38.0, "air_temp_c": 24.0
    });
    let resp = reqwest::Client::new()
        .post(srv.url("/api/telemetry/ingest"))
        .json(&sent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let m = next_json(&mut ws, "telemetry_update").await;
    let got = &m["data"][0];
    for (k, v) in sent.as_object().unwrap() {
        if k == "meta_time" {
            continue;
        }
        assert_eq!(&got[k], v, "{k}: sent {v}, received {}", got[k]);
    }
    // The same instant, written as RFC 3339.
    let instant = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str()
                .unwrap_or_else(|| panic!("meta_time is a string: {v}")),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(instant(&got["meta_time"]), instant(&sent["meta_time"]));
    // PitWall's internal names stay internal.
    for k in [
        "car_id",
        "session_id",
        "lap_dist_m",
        "accx_g",
        "steering_deg",
        "lat_deg",
    ] {
        assert!(got.get(k).is_none(), "{k} in {got}");
    }
}

#[tokio::test]
async fn sigterm_drains_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let mut total = 0;
    for b in 0..20 {
        let body: String = (0..500)
            .map(|i| {
                format!(
                    "{{\"track\":\"drain\",\"chassis\":\"c{}\",\"t_s\":{}}}\n",
                    i % 7,
                    b * 1000 + i
                )
            })
            .collect();
        let r = client
            .post(srv.url("/api/telemetry/ingest"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        total += v["accepted"].as_u64().unwrap();
    }
    assert_eq!(total, 10_000);
    // Stop at once: whatever is still in the ring or the bus must be flushed on SIGTERM.
    assert!(srv.stop().success());
    let st = store::Store::open(dir.path()).unwrap();
    assert_eq!(st.session("drain").unwrap().samples, 10_000);
}

#[tokio::test]
async fn health_ready_docs_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let h: Value = reqwest::get(srv.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["ok"], true);
    assert_eq!(h["status"], "healthy");
    assert!(h["timestamp"].as_str().unwrap().contains('T'));
    let r = reqwest::get(srv.url("/ready")).await.unwrap();
    assert_eq!(r.status(), 200);
    let spec: Value = reqwest::get(srv.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/telemetry/ingest"]["post"].is_object());
    assert!(spec["paths"]["/api/agents"]["get"].is_object());
    let point = &spec["components"]["schemas"]["TelemetryPoint"]["properties"];
    for k in [
        "meta_time",
        "track",
        "chassis",
        "lap",
        "speed_kmh",
        "accx_can",
        "accy_can",
    ] {
        assert!(
            point[k].is_object(),
            "TelemetryPoint.{k} in the OpenAPI document"
        );
    }
    let docs = reqwest::get(srv.url("/docs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(docs.contains("/api/openapi.json"));
    assert!(!docs.contains("https://"), "docs must work offline");
}
