//! End to end on a PostgreSQL store: `pitwall serve --store postgres://...` ingests points over
//! HTTP, stores them in a fresh schema of database `test` on 127.0.0.1:5432 (user `postgres`,
//! trust auth), serves them back over HTTP, and finds them again after a restart configured
//! through `PITWALL_STORE`. The schema is dropped at the end.
//!
//! PostgreSQL unreachable: the test fails with a clear message, unless `PITWALL_SKIP_PG=1`.
//! `PITWALL_TEST_PG_URL` points elsewhere.

mod common;

use common::pg::Schema;
use common::{eventually, Server};
use serde_json::{json, Value};
use std::time::Duration;

/// Sync, so that the schema is made and dropped outside the runtime (the sync PostgreSQL
/// client cannot block inside one).
#[test]
fn serve_stores_in_postgres_and_reads_back_over_http() {
    let Some(schema) = Schema::fresh("serve") else {
        return;
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(serve_and_read_back(schema.store_url()));
}

async fn serve_and_read_back(store_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), &["--store", &store_url]);
    let client = reqwest::Client::new();

    let points: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "meta_time": format!("2025-06-01T14:02:1{i}.000Z"),
                "track": "barber",
                "chassis": "GR86-004-17",
                "lap": 4,
                "lapdist_m": 100.0 + 50.0 * f64::from(i),
                "speed_kmh": 130.0 + f64::from(i),
                "gear": 4
            })
        })
        .collect();
    let resp = client
        .post(srv.url("/api/telemetry/ingest"))
        .json(&points)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 5);
    // Delivered again (a client retrying): stored once.
    let resp = client
        .post(srv.url("/api/telemetry/ingest"))
        .json(&points[3..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let stored = eventually(Duration::from_secs(2), || async {
        srv.stored("barber").await == 5
    })
    .await;
    assert!(
        stored,
        "ingested points not stored in PostgreSQL within 2 s"
    );
    assert_eq!(
        reqwest::get(srv.url("/ready")).await.unwrap().status(),
        200,
        "ready with a PostgreSQL store"
    );
    let laps = reqwest::get(srv.url("/api/sessions/barber/laps"))
        .await
        .unwrap();
    assert_eq!(laps.status(), 200);
    let laps: Value = laps.json().await.unwrap();
    assert_eq!(laps["session_id"], "barber");
    assert!(
        srv.metric("pitwall_store_batch_seconds_count{store=\"postgres\"}")
            .await
            >= 1.0
    );
    assert!(
        !dir.path().join(store::DB_FILE).exists(),
        "nothing written to the SQLite file"
    );
    assert!(srv.stop().success());

    // Restarted with the store given by the environment only.
    let srv = Server::start_cmd_env("serve", dir.path(), &[], &[("PITWALL_STORE", &store_url)]);
    let sessions = srv.sessions().await;
    let barber = sessions
        .iter()
        .find(|s| s["id"] == "barber")
        .expect("barber kept in PostgreSQL");
    assert_eq!(barber["samples"], 5);
    assert_eq!(barber["track"], "barber");
    assert_eq!(barber["cars"][0]["car_id"], "GR86-004-17");
    drop(srv);

    // And the samples themselves, read through the store as another process would.
    let speeds = tokio::task::spawn_blocking(move || {
        let st = store::Store::open_location(&store::StoreLocation::parse(&store_url)).unwrap();
        let mut speeds = Vec::new();
        st.for_each_sample("barber", None, |s| speeds.push(s.speed_kmh))
            .unwrap();
        speeds
    })
    .await
    .unwrap();
    assert_eq!(
        speeds,
        (0..5)
            .map(|i| Some(130.0 + f64::from(i)))
            .collect::<Vec<_>>()
    );
}
