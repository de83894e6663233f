//! The `serve` flags of "Running it on a network" reach the server: rate limits, CORS, TLS and
//! webhook settings (the behaviour itself is tested in crates/server/tests/network.rs).

mod common;
use common::{pitwall, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_cors_flags_are_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = Server::start(
        dir.path(),
        &[
            "--rate-limit-rest-per-min",
            "1",
            "--rate-limit-points-per-s",
            "1",
            "--cors-origin",
            "https://pit.example.com",
        ],
    );
    let http = reqwest::Client::new();
    let r = http
        .get(srv.url("/api/sessions"))
        .header("origin", "https://pit.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://pit.example.com"
    );
    // One request a minute: the second within the minute waits.
    let r = http.get(srv.url("/api/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // One point a second: two points in a body never pass.
    let r = http
        .post(srv.url("/api/telemetry/ingest"))
        .header("content-type", "application/json")
        .body(r#"[{"track":"acc","chassis":"c1","t_s":1},{"track":"acc","chassis":"c1","t_s":2}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(srv.metric("pitwall_rate_limited_total").await, 2.0);
}

#[test]
fn tls_and_webhook_flags_are_checked_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().unwrap();
    let o = pitwall(&[
        "serve",
        "--data-dir",
        d,
        "--udp",
        "off",
        "--tls-cert",
        "cert.pem",
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("tls_key") && e.contains("--tls-key"), "{e}");
    let o = pitwall(&[
        "serve",
        "--data-dir",
        d,
        "--udp",
        "off",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let o = pitwall(&["serve", "--data-dir", d, "--webhook", "ftp://example.com/x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("webhooks"));
    let o = pitwall(&["serve", "--data-dir", d, "--cors-origin", "example.com"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cors_origins"));
}
