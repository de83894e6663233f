//! Running on a network: rate limits (429 + Retry-After, on a frozen clock), TLS (HTTPS and
//! WSS with a certificate made here), security headers and CORS, and webhooks against a
//! receiver on loopback (signature, retry after a 500, the Slack format, a bounded queue).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::metric;

async fn start(dir: &std::path::Path, f: impl FnOnce(&mut server::Config)) -> server::Running {
    let mut config = server::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        udp: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.to_path_buf(),
        ..server::Config::default()
    };
    f(&mut config);
    server::start(config).await.expect("start")
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Waits (up to 20 s) until `f` holds.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn points(from: usize, n: usize) -> String {
    let v: Vec<Value> = (from..from + n)
        .map(|i| json!({"track": "acc", "chassis": "c1", "t_s": i as f64 * 0.01}))
        .collect();
    serde_json::to_string(&v).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_api_request_in_a_minute_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |_| {}).await;
    let base = format!("http://{}", running.http_addr);
    // Time stands still: all 101 requests fall in the same instant.
    let clock = running.state.limits.clock.freeze();
    let http = reqwest::Client::new();
    for i in 0..100 {
        let r = http
            .get(format!("{base}/api/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {}", i + 1);
    }
    let r = http.get(format!("{base}/api/agents")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["reason"]
        .as_str()
        .unwrap()
        .contains("100 API requests a minute"));
    // Health, readiness, metrics, the dashboard and its assets are not limited.
    for p in ["/health", "/ready", "/", "/assets/app.js", "/docs"] {
        let r = http.get(format!("{base}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
    }
    let m = metrics(&base).await;
    assert_eq!(metric(&m, "pitwall_rate_limited_total{kind=\"rest\"}"), 1.0);
    // Tokens come back at 100 a minute: one after 0.6 s.
    clock.advance(Duration::from_millis(600));
    let r = http
        .get(format!("{base}/api/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/api/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_10001st_point_in_a_second_gets_429_over_http_and_is_dropped_over_udp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let clock = running.state.limits.clock.freeze();
    let http = reqwest::Client::new();
    let ingest = format!("{base}/api/telemetry/ingest");
    let post = |body: String| {
        http.post(&ingest)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for k in 0..10 {
        let r = post(points(k * 1000, 1000)).await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["accepted"], 1000);
    }
    let r = post(points(10_000, 1)).await.unwrap();
    assert_eq!(r.status(), 429, "the 10,001st point of the second");
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");
    // A tenth of a second later, a thousand points are back.
    clock.advance(Duration::from_millis(100));
    let r = post(points(20_000, 1000)).await.unwrap();
    assert_eq!(r.status(), 200);
    // More than a second's allowance in one body never passes whole.
    clock.advance(Duration::from_secs(5));
    let r = post(points(30_000, 10_001)).await.unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(v["reason"].as_str().unwrap().contains("split it"), "{v}");
    let m = metrics(&base).await;
    assert_eq!(
        metric(&m, "pitwall_rate_limited_points_total{source=\"http\"}"),
        10_002.0
    );
    assert_eq!(
        metric(&m, "pitwall_rate_limited_total{kind=\"points\"}"),
        2.0
    );
    assert_eq!(
        metric(&m, "pitwall_points_accepted_total{source=\"http\"}"),
        11_000.0
    );

    // UDP, per sender: 10,000 points in 20 datagrams pass, the next datagram is dropped.
    let udp_to = running.udp_addr.expect("udp");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let st = running.state.clone();
    let udp_points = move || {
        st.metrics.points_accepted.with_label_values(&["udp"]).get()
            + st.metrics
                .rate_limited_points
                .with_label_values(&["udp"])
                .get()
    };
    // One datagram at a time (a socket buffer never overflows).
    for k in 0..20 {
        sock.send_to(points(100_000 + k * 500, 500).as_bytes(), udp_to)
            .await
            .unwrap();
        let want = (k as u64 + 1) * 500;
        until("a datagram counted", async || udp_points() >= want).await;
    }
    sock.send_to(points(200_000, 3).as_bytes(), udp_to)
        .await
        .unwrap();
    until("the last datagram counted", async || udp_points() >= 10_003).await;
    let m = metrics(&base).await;
    assert_eq!(
        metric(&m, "pitwall_points_accepted_total{source=\"udp\"}"),
        10_000.0
    );
    assert_eq!(
        metric(&m, "pitwall_rate_limited_points_total{source=\"udp\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "pitwall_udp_datagrams_rejected_total{reason=\"rate_limited\"}"
        ),
        1.0
    );
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_set_to_0_are_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |c| {
        c.rate_limit_rest_per_min = 0;
        c.rate_limit_points_per_s = 0;
    })
    .await;
    let base = format!("http://{}", running.http_addr);
    running.state.limits.clock.freeze();
    let http = reqwest::Client::new();
    for _ in 0..150 {
        let r = http
            .get(format!("{base}/api/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .post(format!("{base}/api/ingest"))
        .body(points(0, 20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    running.shutdown().await.expect("shutdown");
}

// ---- TLS ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_round_trip_with_a_certificate_made_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_pem = ck.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    let running = start(dir.path(), |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let addr = running.http_addr;

    // HTTPS GET /health, the certificate checked against the one made above.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{}/health", addr.port()))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-security-policy"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true);
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err());

    // WSS: upgrade, ping, pong.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (mut ws, resp) = tokio_tungstenite::client_async(
        format!("wss://localhost:{}/ws/realtime", addr.port()),
        tls,
    )
    .await
    .expect("WebSocket upgrade over TLS");
    assert_eq!(resp.status(), 101);
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"ping"}"#,
    ))
    .await
    .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if m.to_text().unwrap_or("").contains("pong") {
                return true;
            }
        }
        false
    })
    .await
    .expect("a pong within 10 s");
    assert!(pong);
    drop(ws);
    running.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn tls_files_that_are_missing_or_wrong_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.pem");
    let mut config = server::Config {
        http: "127.0.0.1:0".parse().unwrap(),
        udp: None,
        data_dir: dir.path().to_path_buf(),
        tls_cert: Some(missing.clone()),
        tls_key: Some(missing),
        ..server::Config::default()
    };
    let e = server::start(config.clone()).await.err().expect("refused");
    assert!(format!("{e:#}").contains("TLS certificate"), "{e:#}");
    config.tls_key = None;
    let e = server::start(config).await.err().expect("refused");
    assert!(format!("{e:#}").contains("tls_key"), "{e:#}");
}

// ---- security headers and CORS -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_csp_without_inline_script_and_cors_is_off_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |_| {}).await;
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    for page in ["/", "/docs"] {
        let r = http
            .get(format!("{base}{page}"))
            .header("origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.starts_with(name))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(directive("script-src"), "script-src 'self'", "{page}");
        assert_eq!(directive("style-src"), "style-src 'self'", "{page}");
        assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "CORS is off"
        );
        let page_html = r.text().await.unwrap();
        let html = page_html.to_ascii_lowercase();
        // Every script is a file; no inline style or event handler attribute.
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "{page}: inline script {tag}");
        }
        assert!(!html.contains("<style"), "{page}: inline <style>");
        assert!(!html.contains(" style="), "{page}: style attribute");
        let handler = html.split(|c: char| c.is_whitespace()).any(|w| {
            w.starts_with("on")
                && w.contains('=')
                && w[2..w.find('=').unwrap()]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic())
        });
        assert!(!handler, "{page}: inline event handler");
        // The files the page loads are served, as what they are.
        for (i, _) in page_html.match_indices("/assets/") {
            let path = &page_html[i..i + page_html[i..].find('"').unwrap()];
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        }
    }
    // JSON answers carry the headers too.
    let r = http
        .get(format!("{base}/api/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    running.shutdown().await.expect("shutdown");

    // With an origin configured: that origin may call, others get no CORS headers.
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |c| {
        c.cors_origins = vec!["https://pit.example.com".into()];
    })
    .await;
    let base = format!("http://{}", running.http_addr);
    let r = http
        .get(format!("{base}/api/sessions"))
        .header("origin", "https://pit.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://pit.example.com"
    );
    let r = http
        .get(format!("{base}/api/sessions"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/api/telemetry/ingest"),
        )
        .header("origin", "https://pit.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight: {}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://pit.example.com"
    );
    running.shutdown().await.expect("shutdown");
}

// ---- webhooks ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

struct Receiver {
    got: Mutex<Vec<Received>>,
    /// `/flaky` answers 500 to its first request.
    flaky_calls: Mutex<u32>,
    /// `/hold` answers only once this has permits.
    hold: tokio::sync::Semaphore,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    r.got.lock().push(Received {
        path: path.clone(),
        headers,
        body,
    });
    match path.as_str() {
        "flaky" => {
            let mut n = r.flaky_calls.lock();
            *n += 1;
            if *n == 1 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
        "hold" => {
            let _ = r.hold.acquire().await.map(|p| p.forget());
            StatusCode::OK
        }
        _ => StatusCode::NO_CONTENT,
    }
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver {
        got: Mutex::new(Vec::new()),
        flaky_calls: Mutex::new(0),
        hold: tokio::sync::Semaphore::new(0),
    });
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (r, url)
}

fn alert(car: &str, lap: u32) -> Arc<analysis::CoachingAlert> {
    Arc::new(
        serde_json::from_value(json!({
            "session_id": "race-1", "car_id": car, "track": "Austin", "lap": lap, "t_s": 100.0,
            "corner": 4, "corner_name": "Turn 4", "metric": "brake_point_m", "value": 12.0,
            "baseline_mean": 0.0, "baseline_std": 2.0, "delta": 12.0, "z": 6.0,
            "message": "Braking 12 m later than your baseline into Turn 4",
            "expected_delta_s": 0.2
        }))
        .expect("an alert"),
    )
}

fn insight(car: &str, lap: u32, open: u32) -> Arc<analysis::Insight> {
    use analysis::{Insight, PitWindow, TireInsight, WindowStatus};
    Arc::new(Insight {
        chassis: car.into(),
        track: Some("Austin".into()),
        session_id: "race-1".into(),
        lap,
        revision: 1,
        lap_time_s: Some(100.0),
        best_lap_time_s: Some(100.0),
        sector_times_s: [None; 3],
        validity: Default::default(),
        t_start_s: 0.0,
        t_end_s: 100.0,
        position: Some(3),
        lap_tire_stress: 0.0,
        per_sector_stress: Default::default(),
        tyre_age_laps: lap,
        tyre_compound: None,
        fuel_kg: None,
        tire_wear_source: None,
        features: analysis::laps::LapFeatures::default(),
        gaps: None,
        tire: TireInsight::default(),
        pit_window: Some(PitWindow {
            status: WindowStatus::Ready,
            open_lap: Some(open),
            close_lap: Some(open + 3),
            best_plan: Some(format!("L{open} hard")),
            text: format!("Box between laps {open} and {}", open + 3),
            ..PitWindow::default()
        }),
        call: None,
    })
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_after_a_500_and_slack_gets_the_sentence() {
    let (rx, url) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |c| {
        c.webhooks = toml::from_str::<server::Config>(&format!(
            "[[webhooks]]\nurl = \"{url}/flaky\"\nsecret = \"s3cret\"\n\
             [[webhooks]]\nurl = \"{url}/slack\"\nformat = \"slack\"\nevents = [\"coaching_alert\"]\n"
        ))
        .expect("hooks")
        .webhooks;
        c.webhook_backoff_ms = 10;
    })
    .await;
    let base = format!("http://{}", running.http_addr);
    let bus = running.state.bus.clone();
    bus.publish("race-1", bus::Message::Alert(alert("3", 11)))
        .await
        .unwrap();
    // A car's first window, the same window a lap later (no event), then a new one.
    for (lap, open) in [(11, 15), (12, 15), (13, 16)] {
        bus.publish("race-1", bus::Message::Insight(insight("3", lap, open)))
            .await
            .unwrap();
    }
    let count = |p: &str| rx.got.lock().iter().filter(|r| r.path == p).count();
    // The session event after the rest (it travels on another topic).
    until("the alert and the windows", async || count("flaky") >= 4).await;
    running
        .state
        .announce(analysis::SessionEvent::TotalLaps {
            session_id: "race-1".into(),
            total_laps: 30,
        })
        .await
        .unwrap();
    // flaky: the alert twice (500, then 200), two windows, the session event.
    until("the deliveries", async || {
        count("flaky") >= 5 && count("slack") >= 1
    })
    .await;
    let got = rx.got.lock().clone();
    let flaky: Vec<&Received> = got.iter().filter(|r| r.path == "flaky").collect();
    assert_eq!(flaky.len(), 5, "{flaky:#?}");
    assert_eq!(
        flaky[0].body, flaky[1].body,
        "the retry sends the same body"
    );
    let kinds: Vec<String> = flaky
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                r.headers["x-pitwall-signature"].to_str().unwrap(),
                format!("sha256={}", hmac_hex("s3cret", &r.body)),
                "signed over the body"
            );
            assert_eq!(r.headers["x-pitwall-event"].to_str().unwrap(), v["kind"]);
            v["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "coaching_alert",
            "coaching_alert",
            "pit_window",
            "pit_window",
            "session"
        ]
    );
    let w: Value = serde_json::from_slice(&flaky[3].body).unwrap();
    assert_eq!(w["car"], "3");
    assert_eq!(w["data"]["previous"]["open_lap"], 15);
    assert_eq!(w["data"]["pit_window"]["open_lap"], 16);
    assert_eq!(w["text"], "Box between laps 16 and 19");
    let a: Value = serde_json::from_slice(&flaky[1].body).unwrap();
    assert_eq!(a["data"]["corner_name"], "Turn 4");

    let slack: Vec<&Received> = got.iter().filter(|r| r.path == "slack").collect();
    assert_eq!(slack.len(), 1, "the Slack hook wants coaching alerts only");
    let v: Value = serde_json::from_slice(&slack[0].body).unwrap();
    assert_eq!(
        v,
        json!({"text": "PitWall, car 3, lap 11: Braking 12 m later than your baseline into Turn 4"})
    );
    assert!(
        slack[0].headers.get("x-pitwall-signature").is_none(),
        "no secret, no signature"
    );

    let m = metrics(&base).await;
    assert_eq!(metric(&m, "pitwall_webhook_retries_total{hook=\"0\"}"), 1.0);
    assert_eq!(
        metric(
            &m,
            "pitwall_webhook_events_total{hook=\"0\",outcome=\"delivered\"}"
        ),
        4.0
    );
    assert_eq!(
        metric(
            &m,
            "pitwall_webhook_events_total{hook=\"1\",outcome=\"delivered\"}"
        ),
        1.0
    );
    running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_does_not_answer_fills_its_bounded_queue_and_the_rest_is_dropped() {
    let (rx, url) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), |c| {
        c.webhooks = vec![server::webhooks::WebhookConfig {
            url: format!("{url}/hold"),
            format: server::webhooks::WebhookFormat::Pitwall,
            events: vec![],
            secret: None,
        }];
        c.webhook_queue = 2;
        c.webhook_max_attempts = 1;
        c.webhook_timeout_ms = 60_000;
    })
    .await;
    let base = format!("http://{}", running.http_addr);
    let bus = running.state.bus.clone();
    bus.publish("race-1", bus::Message::Alert(alert("1", 1)))
        .await
        .unwrap();
    // The first event is in flight, held by the receiver: the queue is empty.
    until("the first delivery", async || rx.got.lock().len() == 1).await;
    for lap in 2..=7 {
        bus.publish("race-1", bus::Message::Alert(alert("1", lap)))
            .await
            .unwrap();
    }
    // Two wait in the queue, four are dropped.
    until("the drops counted", async || {
        metric(
            &metrics(&base).await,
            "pitwall_webhook_events_total{hook=\"0\",outcome=\"dropped\"}",
        ) >= 4.0
    })
    .await;
    rx.hold.add_permits(100);
    until("the queue sent", async || rx.got.lock().len() >= 3).await;
    until("the deliveries counted", async || {
        metric(
            &metrics(&base).await,
            "pitwall_webhook_events_total{hook=\"0\",outcome=\"delivered\"}",
        ) >= 3.0
    })
    .await;
    let m = metrics(&base).await;
    assert_eq!(
        metric(
            &m,
            "pitwall_webhook_events_total{hook=\"0\",outcome=\"dropped\"}"
        ),
        4.0
    );
    let laps: Vec<u64> = rx
        .got
        .lock()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["lap"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        laps,
        [1, 2, 3],
        "the oldest queued events are kept, in order"
    );
    running.shutdown().await.expect("shutdown");
}
