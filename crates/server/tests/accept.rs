//! One accept path: HTTP bodies, UDP datagrams and samples built in process are counted under
//! the same metric names and labels, and refused bodies carry the same codes on every edge.

use std::time::Duration;

mod support;
use support::metric;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_counts_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = server::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        udp: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        ..server::Config::default()
    };
    let running = server::start(config).await.expect("start");
    let st = running.state.clone();

    // Embedded: one good sample, one out of range.
    let good = telemetry::Sample::new("acc", "c1", 1.0);
    let mut bad = telemetry::Sample::new("acc", "c1", 2.0);
    bad.speed_kmh = Some(900.0);
    assert_eq!(st.ingest_samples("embedded", vec![bad.clone(), good]), 1);

    // The same refusal, through `accept` directly from a parsed body.
    let body = br#"[{"track":"acc","chassis":"c2","t_s":3},{"track":"acc","chassis":"c2","speed_kmh":900}]"#;
    let parsed = telemetry::parse_body(body, false, 0.0).expect("body");
    let out = st.accept("http", parsed);
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert_eq!(out.rejected[0].1.field, "speed_kmh");

    // UDP: a datagram that is not UTF-8 is refused whole with HTTP's code.
    let udp = running.udp_addr.expect("udp bound");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.send_to(b"{\"track\":\xff}", udp).expect("send");
    sock.send_to(br#"{"track":"acc","chassis":"c3","speed_kmh":900}"#, udp)
        .expect("send");

    let mut text = String::new();
    for _ in 0..100 {
        text = st.metrics.render();
        if metric(
            &text,
            "pitwall_points_rejected_total{reason=\"out_of_range\",source=\"udp\"}",
        ) >= 1.0
            && metric(
                &text,
                "pitwall_udp_datagrams_rejected_total{reason=\"not_utf8\"}",
            ) >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (name, want) in [
        ("pitwall_points_accepted_total{source=\"embedded\"}", 1.0),
        ("pitwall_points_accepted_total{source=\"http\"}", 1.0),
        (
            "pitwall_points_rejected_total{reason=\"out_of_range\",source=\"embedded\"}",
            1.0,
        ),
        (
            "pitwall_points_rejected_total{reason=\"out_of_range\",source=\"http\"}",
            1.0,
        ),
        (
            "pitwall_points_rejected_total{reason=\"out_of_range\",source=\"udp\"}",
            1.0,
        ),
        (
            "pitwall_udp_datagrams_rejected_total{reason=\"not_utf8\"}",
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, name), want, "{name} in\n{text}");
    }
    running.shutdown().await.expect("shutdown");
}
