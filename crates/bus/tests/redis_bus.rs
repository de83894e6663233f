//! `RedisBus` against a real `redis-server` (each test starts its own on a free port, nothing
//! on disk): fan-out and competing consumers, order within a session, claims of a dead
//! consumer's entries, dead letters, capping, leases and checkpoints, the worker registry, and
//! Redis killed and restarted under a publisher and a subscriber.

use bus::{
    Bus, BusError, Delivery, LeaseConfig, Leases, Message, RedisBus, RedisBusConfig,
    SubscribeOptions, Subscription, TelemetryBatch, Topic, WorkerInfo,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::Sample;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

fn cfg(worker: &str) -> RedisBusConfig {
    RedisBusConfig {
        partitions: 4,
        block_ms: 50,
        claim_idle_ms: 300,
        max_deliveries: 3,
        key_prefix: "pwtest".to_string(),
        worker_id: worker.to_string(),
        backoff_initial_ms: 20,
        backoff_max_ms: 200,
        health_interval_ms: 50,
        worker_ttl_ms: 500,
        ..RedisBusConfig::default()
    }
}

fn batch(session: &str, car: &str, t0: f64, n: usize) -> Message {
    Message::Telemetry(Arc::new(TelemetryBatch {
        samples: (0..n)
            .map(|i| Sample::new(session, car, t0 + i as f64))
            .collect(),
        received_unix_ns: vec![1; n],
    }))
}

/// (session, first t) of a telemetry delivery.
fn first_t(d: &Delivery) -> (String, f64) {
    match &d.message {
        Message::Telemetry(b) => (b.samples[0].session_id.to_string(), b.samples[0].t_s),
        other => panic!("not telemetry: {other:?}"),
    }
}

async fn recv(sub: &mut (impl Subscription + ?Sized), ms: u64) -> Option<Delivery> {
    tokio::time::timeout(Duration::from_millis(ms), sub.next())
        .await
        .ok()
        .flatten()
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Sessions whose telemetry lands in partition `p` of `parts`.
fn session_in(p: usize, parts: usize, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}-{i}"))
        .find(|s| bus::partition::of_session(s, parts) == p)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_between_groups_and_competing_consumers_within_one() {
    let server = RedisServer::start();
    let mut c = cfg("w1");
    c.read_count = 1;
    let bus = RedisBus::connect(&server.url(), c).await.unwrap();
    let mut store = bus.subscribe(Topic::Telemetry, "store").await.unwrap();
    let mut ws1 = bus.subscribe(Topic::Telemetry, "ws").await.unwrap();
    let mut ws2 = bus.subscribe(Topic::Telemetry, "ws").await.unwrap();
    let mut ins = bus.subscribe(Topic::Insights, "store").await.unwrap();
    for i in 0..20 {
        let s = format!("s{}", i % 5);
        bus.publish("ignored", batch(&s, "c1", i as f64, 2))
            .await
            .unwrap();
    }
    // A batch mixing two sessions is split: one entry per session.
    let mut mixed = TelemetryBatch::default();
    for (i, s) in ["a", "b", "a"].iter().enumerate() {
        mixed.samples.push(Sample::new(*s, "c2", 100.0 + i as f64));
        mixed.received_unix_ns.push(i as u64);
    }
    bus.publish("c2", Message::Telemetry(Arc::new(mixed)))
        .await
        .unwrap();

    let mut got_store = Vec::new();
    while got_store.len() < 22 {
        let d = recv(store.as_mut(), 3_000)
            .await
            .expect("store group sees every entry");
        got_store.push(first_t(&d));
        store.ack(&d).await.unwrap();
    }
    let split: Vec<&(String, f64)> = got_store.iter().filter(|(_, t)| *t >= 100.0).collect();
    assert_eq!(split.len(), 2, "the mixed batch is one entry per session");

    // The two consumers of "ws" share the 22 entries: each gets some, none gets one twice.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.len() + b.len() < 22 && Instant::now() < deadline {
        if let Some(d) = recv(ws1.as_mut(), 200).await {
            a.push(first_t(&d));
            ws1.ack(&d).await.unwrap();
        }
        if let Some(d) = recv(ws2.as_mut(), 200).await {
            b.push(first_t(&d));
            ws2.ack(&d).await.unwrap();
        }
    }
    assert_eq!(a.len() + b.len(), 22);
    assert!(!a.is_empty() && !b.is_empty(), "both consumers took part");
    let mut all: Vec<String> = a
        .iter()
        .chain(&b)
        .map(|(s, t)| format!("{s}@{t}"))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        22,
        "no entry went to both consumers of one group"
    );
    // Nothing crossed topics.
    assert!(recv(ins.as_mut(), 200).await.is_none());
    let st = bus.stats();
    assert_eq!(st.published, 21);
    assert_eq!(st.entries_added, 22);
    assert_eq!(st.acked, 44);
    assert!(bus.is_ready());
    bus.close();
    assert!(bus.publish("c", batch("s", "c", 0.0, 1)).await.is_err());
    assert!(
        recv(store.as_mut(), 2_000).await.is_none(),
        "closed: drained, then None"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_messages_stay_in_order_in_its_partition() {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), cfg("w1")).await.unwrap();
    let mut sub = bus.subscribe(Topic::Telemetry, "analysis").await.unwrap();
    let sessions = ["race-1", "race-2", "race-3"];
    // Pipelined: 20 publishes of 10 messages, sessions interleaved, a session event mid-way.
    let mut n = 0;
    for round in 0..20 {
        let mut msgs = Vec::new();
        for k in 0..10 {
            let s = sessions[(round + k) % 3];
            msgs.push(batch(s, "car", (round * 10 + k) as f64, 1));
            n += 1;
        }
        if round == 10 {
            msgs.push(Message::Session(Arc::new(
                analysis::SessionEvent::TotalLaps {
                    session_id: "race-2".to_string(),
                    total_laps: 30,
                },
            )));
        }
        bus.publish_all(&msgs).await.unwrap();
    }
    assert_eq!(bus.stats().publish_round_trips, 20);
    let mut last: HashMap<String, f64> = HashMap::new();
    let mut seen = 0;
    let mut event_after = None;
    while seen < n + 1 {
        let d = recv(sub.as_mut(), 3_000)
            .await
            .expect("every message arrives");
        seen += 1;
        match &d.message {
            Message::Telemetry(b) => {
                let (s, t) = (b.samples[0].session_id.to_string(), b.samples[0].t_s);
                if let Some(prev) = last.insert(s.clone(), t) {
                    assert!(t > prev, "{s}: {t} after {prev}");
                }
            }
            Message::Session(e) => {
                assert_eq!(e.session_id(), "race-2");
                event_after = last.get("race-2").copied();
            }
            other => panic!("unexpected {other:?}"),
        }
        sub.ack(&d).await.unwrap();
    }
    // The event sits between race-2's samples of rounds 10 and 11.
    let t = event_after.expect("event seen after some race-2 samples");
    assert!((100.0..110.0).contains(&t), "event after t {t}");
    // Each session's entries are in its own partition's stream.
    let mut conn = raw(&server.url()).await;
    for s in sessions {
        let key = &bus.stream_keys(Topic::Telemetry)[bus.partition_of(s)];
        let len: u64 = redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(len >= 66, "{key} holds {len}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_pending_entries_are_claimed_after_idle() {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), cfg("w1")).await.unwrap();
    let opts = |name: &str| SubscribeOptions {
        consumer: Some(name.to_string()),
        leases: None,
    };
    let mut dead = bus
        .subscribe_with(Topic::Insights, "store", opts("doomed"))
        .await
        .unwrap();
    let mut alive = bus
        .subscribe_with(Topic::Insights, "store", opts("survivor"))
        .await
        .unwrap();
    assert_eq!(alive.consumer(), "survivor");
    for i in 0..5 {
        bus.publish("c", profile(i)).await.unwrap();
    }
    for _ in 0..5 {
        recv(&mut dead, 2_000).await.expect("read, never acked");
    }
    assert_eq!(dead.pending(), 5);
    drop(dead);
    let t0 = Instant::now();
    let mut got = Vec::new();
    while got.len() < 5 {
        let d = recv(&mut alive, 3_000).await.expect("claimed after idle");
        if let Message::Profile(p) = &d.message {
            got.push(p.session_id.clone());
        }
        alive.ack(&d).await.unwrap();
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "not before the idle time"
    );
    got.sort();
    assert_eq!(got, (0..5).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert!(bus.stats().claimed >= 5);
    // Nothing left pending in the group.
    let mut conn = raw(&server.url()).await;
    let p: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg("pwtest:insights")
        .arg("store")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(p.count(), 0);
}

fn profile(i: usize) -> Message {
    let p: analysis::DriverProfile = serde_json::from_value(serde_json::json!({
        "car_id": "c", "track": "t", "status": "building_baseline", "clean_laps": 0, "laps_to_go": 3,
        "laps_seen": 0, "corner_map": null, "corners": [], "sector_times_s": [],
        "lap_time_s": {"n": 0, "mean": 0.0, "std": 0.0}, "lap_time_cv": null
    }))
    .unwrap();
    Message::Profile(Arc::new(analysis::messages::ProfileUpdate {
        session_id: format!("s{i}"),
        track: "t".to_string(),
        profile: p,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_and_the_stage_keeps_going() {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), cfg("w1")).await.unwrap();
    let mut sub = bus.subscribe(Topic::Telemetry, "analysis").await.unwrap();
    bus.publish("c", batch("ok", "c", 1.0, 1)).await.unwrap();
    bus.publish("c", batch("poison", "c", 2.0, 1))
        .await
        .unwrap();
    bus.publish("c", batch("ok", "c", 3.0, 1)).await.unwrap();
    // An entry no decoder reads, written past the bus.
    let mut conn = raw(&server.url()).await;
    let junk_key = bus.stream_keys(Topic::Telemetry)[bus.partition_of("ok")].clone();
    let _: String = redis::cmd("XADD")
        .arg(&junk_key)
        .arg("*")
        .arg("m")
        .arg("not an envelope")
        .query_async(&mut conn)
        .await
        .unwrap();

    let (mut poison_seen, mut ok_seen) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        let Some(d) = recv(sub.as_mut(), 300).await else {
            if poison_seen >= 3 && bus.stats().dead_lettered >= 2 {
                break;
            }
            continue;
        };
        let (s, _) = first_t(&d);
        if s == "poison" {
            poison_seen += 1; // the handler fails: no ack
        } else {
            ok_seen += 1;
            sub.ack(&d).await.unwrap();
        }
    }
    assert_eq!(
        poison_seen, 3,
        "delivered max_deliveries times, then dead-lettered"
    );
    assert_eq!(ok_seen, 2);
    let st = bus.stats();
    assert_eq!(st.dead_lettered, 2);
    assert_eq!(st.decode_errors, 1);
    let dead = bus.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 2);
    let poison = dead
        .iter()
        .find(|d| d.reason.contains("delivered"))
        .unwrap();
    assert_eq!(poison.deliveries, 3);
    assert_eq!(poison.group, "analysis");
    assert!(matches!(
        bus::wire::decode(&poison.payload),
        Ok(Message::Telemetry(_))
    ));
    let junk = dead
        .iter()
        .find(|d| d.reason.starts_with("decode"))
        .unwrap();
    assert_eq!(junk.stream, junk_key);
    assert_eq!(junk.payload, b"not an envelope");
    // The stage goes on.
    bus.publish("c", batch("ok", "c", 4.0, 1)).await.unwrap();
    let d = recv(sub.as_mut(), 2_000).await.unwrap();
    assert_eq!(first_t(&d), ("ok".to_string(), 4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_and_the_trimming_counted() {
    let server = RedisServer::start();
    let mut c = cfg("w1");
    c.partitions = 1;
    c.stream_cap = 500;
    c.trim_every = 100;
    let bus = RedisBus::connect(&server.url(), c).await.unwrap();
    // One by one (a round trip each), then pipelined 100 at a time: the per-message cost.
    let t0 = Instant::now();
    for i in 0..1_000 {
        bus.publish("c", batch("s", "c", i as f64, 40))
            .await
            .unwrap();
    }
    let single = t0.elapsed();
    let t1 = Instant::now();
    for r in 0..20 {
        let msgs: Vec<Message> = (0..100)
            .map(|i| batch("s", "c", (r * 100 + i) as f64, 40))
            .collect();
        bus.publish_all(&msgs).await.unwrap();
    }
    let piped = t1.elapsed();
    let mut conn = raw(&server.url()).await;
    let len: u64 = redis::cmd("XLEN")
        .arg("pwtest:telemetry:0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let st = bus.stats();
    assert_eq!(st.entries_added, 3_000);
    assert!(st.trimmed > 0);
    assert_eq!(st.trimmed, 3_000 - len, "every trimmed entry counted");
    assert!(len <= 500 + 100 + 100, "stream holds {len}");
    // The in-process bus for comparison (same batches, one group).
    let local = bus::InProcessBus::new(4_096);
    let mut lsub = local.subscribe(Topic::Telemetry, "g").await.unwrap();
    let t2 = Instant::now();
    for i in 0..1_000 {
        local
            .publish("c", batch("s", "c", i as f64, 40))
            .await
            .unwrap();
    }
    let inproc = t2.elapsed();
    for _ in 0..1_000 {
        lsub.next().await.unwrap();
    }
    let us = |d: Duration, n: f64| d.as_secs_f64() * 1e6 / n;
    println!(
        "publish, 40-sample batches (debug build, test machine): redis one per round trip {:.1} us/batch ({:.2} us/sample); \
         redis pipelined x100 {:.1} us/batch ({:.2} us/sample); in-process {:.1} us/batch",
        us(single, 1_000.0),
        us(single, 40_000.0),
        us(piped, 2_000.0),
        us(piped, 80_000.0),
        us(inproc, 1_000.0),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_hands_the_partition_and_its_pending_entries_to_the_survivor() {
    let server = RedisServer::start();
    let mut ca = cfg("worker-a");
    ca.partitions = 2;
    ca.claim_idle_ms = 60_000; // only the takeover may claim here
    let mut cb = ca.clone();
    cb.worker_id = "worker-b".to_string();
    let bus_a = RedisBus::connect(&server.url(), ca).await.unwrap();
    let bus_b = RedisBus::connect(&server.url(), cb).await.unwrap();
    let lease = |id: &str| LeaseConfig {
        worker_id: id.to_string(),
        ttl_ms: 600,
        max_partitions: None,
    };
    let la = Leases::start(&bus_a, lease("worker-a")).await.unwrap();
    let lb = Leases::start(&bus_b, lease("worker-b")).await.unwrap();
    // A took both alone; with B alive the fair share is one each.
    let deadline = Instant::now() + Duration::from_secs(4);
    while !(la.owned().len() == 1 && lb.owned().len() == 1) {
        assert!(
            Instant::now() < deadline,
            "shares: a {:?} b {:?}",
            la.owned(),
            lb.owned()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (pa, pb) = (la.owned()[0], lb.owned()[0]);
    assert_ne!(pa, pb);
    let opts = |l: &Arc<Leases>| SubscribeOptions {
        consumer: Some(l.worker_id().to_string()),
        leases: Some(l.clone()),
    };
    let mut sa = bus_a
        .subscribe_with(Topic::Telemetry, "analysis", opts(&la))
        .await
        .unwrap();
    let mut sb = bus_b
        .subscribe_with(Topic::Telemetry, "analysis", opts(&lb))
        .await
        .unwrap();
    // A group of A's own (as a server's `ws-{id}`): deleted once A is gone.
    let own_a = bus_a
        .subscribe(Topic::Insights, "ws-worker-a")
        .await
        .unwrap();
    let group_names = |key: String| {
        let url = server.url();
        async move {
            let mut conn = raw(&url).await;
            let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            groups
                .groups
                .into_iter()
                .map(|g| g.name)
                .collect::<Vec<_>>()
        }
    };
    for key in bus_a.stream_keys(Topic::Insights) {
        let names = group_names(key.clone()).await;
        assert!(names.iter().any(|n| n == "ws-worker-a"), "{key}: {names:?}");
    }
    let (sess_a, sess_b) = (session_in(pa, 2, "a"), session_in(pb, 2, "b"));
    for t in 0..5 {
        bus_a
            .publish("", batch(&sess_a, "c", t as f64, 1))
            .await
            .unwrap();
        bus_a
            .publish("", batch(&sess_b, "c", t as f64, 1))
            .await
            .unwrap();
    }
    // A handles two, checkpoints, reads three more and dies before acking them.
    for _ in 0..2 {
        let d = recv(&mut sa, 2_000).await.unwrap();
        assert_eq!(first_t(&d).0, sess_a, "A reads only its partition");
        sa.ack(&d).await.unwrap();
    }
    bus_a
        .put_checkpoint(pa, &sess_a, b"cars@t=1")
        .await
        .unwrap();
    for _ in 0..3 {
        recv(&mut sa, 2_000).await.unwrap();
    }
    assert_eq!(sa.partitions(), vec![pa]);
    bus_a
        .register_worker(&WorkerInfo {
            id: "worker-a".into(),
            role: "analysis".into(),
            partitions: sa.partitions(),
            processed: 2,
            pending: sa.pending() as u64,
            lag_ms: 3,
            heartbeat_unix_ms: 0,
        })
        .await
        .unwrap();
    bus_b
        .register_worker(&WorkerInfo {
            id: "worker-b".into(),
            role: "analysis".into(),
            partitions: sb.partitions(),
            ..WorkerInfo::default()
        })
        .await
        .unwrap();
    let ws = bus_b.workers().await.unwrap();
    assert_eq!(ws.len(), 2);
    assert_eq!(ws[0].partitions, vec![pa]);
    assert_eq!(ws[0].pending, 3);
    la.stop();
    drop(sa);
    drop(own_a);
    drop(bus_a);

    // B: its own five, then A's partition after the lease expires: the three A never acked
    // (claimed at once, in order), then what comes next.
    let mut b_own = Vec::new();
    let mut taken = Vec::new();
    let t_dead = Instant::now();
    bus_b
        .publish("", batch(&sess_a, "c", 5.0, 1))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    while (b_own.len() < 5 || taken.len() < 4) && Instant::now() < deadline {
        if let Some(d) = recv(&mut sb, 300).await {
            let (s, t) = first_t(&d);
            if s == sess_b {
                b_own.push(t);
            } else {
                taken.push(t);
            }
            sb.ack(&d).await.unwrap();
        }
    }
    assert_eq!(b_own, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        taken,
        vec![2.0, 3.0, 4.0, 5.0],
        "A's unacked three, then the new one"
    );
    assert!(
        t_dead.elapsed() >= Duration::from_millis(400),
        "not before the lease expired"
    );
    assert_eq!(lb.owned(), vec![0, 1]);
    assert!(bus_b.stats().claimed >= 3);
    // B rebuilds from A's checkpoint.
    assert_eq!(
        bus_b.get_checkpoint(pa, &sess_a).await.unwrap().as_deref(),
        Some(&b"cars@t=1"[..])
    );
    assert_eq!(bus_b.checkpoints(pa).await.unwrap().len(), 1);
    assert_eq!(bus_b.get_checkpoint(pb, &sess_a).await.unwrap(), None);
    // A's heartbeat has expired: only B (beating again) is live.
    bus_b
        .register_worker(&WorkerInfo {
            id: "worker-b".into(),
            role: "analysis".into(),
            partitions: sb.partitions(),
            ..WorkerInfo::default()
        })
        .await
        .unwrap();
    let ws = bus_b.workers().await.unwrap();
    assert_eq!(
        ws.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["worker-b"]
    );
    // ... and its own group went with it; the shared group stays.
    for key in bus_b.stream_keys(Topic::Insights) {
        let names = group_names(key.clone()).await;
        assert!(
            !names.iter().any(|n| n == "ws-worker-a"),
            "{key}: {names:?}"
        );
    }
    for key in bus_b.stream_keys(Topic::Telemetry) {
        let names = group_names(key.clone()).await;
        assert!(names.iter().any(|n| n == "analysis"), "{key}: {names:?}");
    }
    // A clean shutdown releases the leases at once.
    lb.release_all().await.unwrap();
    assert!(lb.owned().is_empty());
    let mut conn = raw(&server.url()).await;
    let n: u64 = redis::cmd("EXISTS")
        .arg("pwtest:lease:telemetry:0")
        .arg("pwtest:lease:telemetry:1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_publish_and_subscribe_resume_and_the_loss_is_counted() {
    let mut server = RedisServer::start();
    let port = server.port;
    let bus = RedisBus::connect(&server.url(), cfg("w1")).await.unwrap();
    let mut sub = bus.subscribe(Topic::Telemetry, "analysis").await.unwrap();
    bus.publish("", batch("s", "c", 0.0, 1)).await.unwrap();
    let d = recv(sub.as_mut(), 2_000).await.unwrap();
    sub.ack(&d).await.unwrap();

    // The subscriber keeps reading in its own task through the outage.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            let _ = sub.ack(&d).await;
            if tx.send(first_t(&d).1).is_err() {
                break;
            }
        }
    });
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(3);
    while bus.is_ready() {
        assert!(Instant::now() < deadline, "still ready with redis down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = bus.publish("", batch("s", "c", 1.0, 1)).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
    tokio::time::sleep(Duration::from_millis(400)).await; // a few backoff rounds
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bus.is_ready() {
        assert!(Instant::now() < deadline, "not ready after redis came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Publishing resumes; the subscriber's group is created again and reads from the start.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut t = 2.0;
    let got = loop {
        let _ = bus.publish("", batch("s", "c", t, 1)).await;
        if let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "nothing delivered after the restart"
        );
        t += 1.0;
    };
    assert!(got >= 2.0);
    let st = bus.stats();
    println!("after restart: {st:?}");
    assert!(st.reconnects >= 1, "{st:?}");
    assert!(st.errors >= 1, "{st:?}");
    assert_eq!(st.redis_resets, 1, "{st:?}");
    assert!(st.groups_recreated >= 1, "{st:?}");
    bus.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

/// A real strategy job: a short simulated race through the analysis, race length known.
fn strategy_job() -> analysis::StrategyJob {
    let mut rc = sim::RaceConfig::new("Spielberg", 3, 11);
    rc.cars = 2;
    rc.hz = 20.0;
    rc = rc.with_generated_drivers();
    let mut race = sim::Race::new(rc).unwrap();
    let mut tick = Vec::new();
    let mut a: Option<analysis::SessionAnalysis> = None;
    let mut out = Vec::new();
    while race.step(&mut tick) {
        for s in tick.drain(..) {
            let an = a.get_or_insert_with(|| {
                let mut an = analysis::SessionAnalysis::new(
                    s.session_id.clone(),
                    s.track.clone(),
                    analysis::AnalysisOptions {
                        tire_model: None,
                        coach: false,
                    },
                );
                an.set_total_laps(Some(3));
                an
            });
            an.push(&s, &mut out);
            for o in out.drain(..) {
                if let analysis::Output::Lap(done) = o {
                    if let Some(job) = done.job {
                        return job;
                    }
                }
            }
        }
    }
    panic!("no strategy job in a 3-lap race")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_jobs_go_to_one_of_the_competing_strategy_workers() {
    let server = RedisServer::start();
    let mut c = cfg("w1");
    c.read_count = 1;
    let bus = RedisBus::connect(&server.url(), c.clone()).await.unwrap();
    c.worker_id = "w2".to_string();
    let bus2 = RedisBus::connect(&server.url(), c).await.unwrap();
    let mut w1 = bus.subscribe(Topic::Strategy, "strategy").await.unwrap();
    let mut w2 = bus2.subscribe(Topic::Strategy, "strategy").await.unwrap();
    let mut ins = bus.subscribe(Topic::Insights, "strategy").await.unwrap();
    let job = Arc::new(strategy_job());
    let jobs: Vec<Message> = (0..6).map(|_| Message::StrategyJob(job.clone())).collect();
    bus.publish_all(&jobs).await.unwrap();
    let (mut n1, mut n2) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while n1 + n2 < 6 && Instant::now() < deadline {
        if let Some(d) = recv(w1.as_mut(), 200).await {
            assert!(matches!(&d.message, Message::StrategyJob(j) if **j == *job));
            w1.ack(&d).await.unwrap();
            n1 += 1;
        }
        if let Some(d) = recv(w2.as_mut(), 200).await {
            w2.ack(&d).await.unwrap();
            n2 += 1;
        }
    }
    assert_eq!(n1 + n2, 6);
    assert!(n1 > 0 && n2 > 0, "both workers took jobs: {n1} + {n2}");
    assert!(recv(ins.as_mut(), 200).await.is_none());
    assert_eq!(bus.stream_keys(Topic::Strategy), ["pwtest:strategy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_cancel_safe_in_select_and_under_timeouts() {
    let redis = RedisServer::start();
    let bus = RedisBus::connect(
        &redis.url(),
        RedisBusConfig {
            block_ms: 200,
            claim_idle_ms: 60_000,
            ..cfg("cancel")
        },
    )
    .await
    .unwrap();
    let mut sub = bus
        .subscribe_with(Topic::Insights, "g", SubscribeOptions::default())
        .await
        .unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                bus.publish("c", profile(i)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
        })
    };
    // Timeouts shorter than a blocking read cancel `next` over and over (as a `select!`
    // does): every entry still arrives, none waits for a claim.
    let mut got = 0;
    let t0 = Instant::now();
    while got < 40 && t0.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(5), sub.next()).await {
            sub.ack(&d).await.unwrap();
            got += 1;
        }
    }
    publisher.await.unwrap();
    assert_eq!(got, 40);
    assert_eq!(sub.pending(), 0);
    assert_eq!(bus.stats().claimed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_insight_cache_keeps_the_newest_with_a_ttl() {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), cfg("w1")).await.unwrap();
    let mut i = strategy_job().insight;
    i.track = Some("Spielberg".into());
    i.chassis = "7".into();
    i.lap = 5;
    i.revision = 1;
    bus.set_latest_insight(&i).await.unwrap();
    // An older lap or revision of the same session does not replace it.
    let mut older = i.clone();
    older.lap = 4;
    older.revision = 3;
    bus.set_latest_insight(&older).await.unwrap();
    let mut older_rev = i.clone();
    older_rev.revision = 0;
    bus.set_latest_insight(&older_rev).await.unwrap();
    let got = bus.latest_insight("Spielberg", "7").await.unwrap().unwrap();
    assert_eq!((got.lap, got.revision), (5, 1));
    // A newer lap does; another session too.
    let mut newer = i.clone();
    newer.lap = 6;
    newer.revision = 0;
    bus.set_latest_insight(&newer).await.unwrap();
    assert_eq!(
        bus.latest_insight("Spielberg", "7")
            .await
            .unwrap()
            .unwrap()
            .lap,
        6
    );
    let mut other = i.clone();
    other.session_id = "another".into();
    other.lap = 1;
    bus.set_latest_insight(&other).await.unwrap();
    let got = bus.latest_insight("Spielberg", "7").await.unwrap().unwrap();
    assert_eq!((got.session_id.as_str(), got.lap), ("another", 1));
    assert!(bus
        .latest_insight("Spielberg", "8")
        .await
        .unwrap()
        .is_none());
    // It lives 60 s.
    let mut conn = raw(&server.url()).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}:latest:Spielberg:7", bus.config().key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((55..=60).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_publishing_waits_for_a_live_group_that_falls_behind() {
    let server = RedisServer::start();
    let mut c = cfg("w1");
    c.backpressure_lag_entries = 8;
    c.worker_ttl_ms = 5_000;
    let bus = RedisBus::connect(&server.url(), c).await.unwrap();
    let mut sub = bus.subscribe(Topic::Telemetry, "slow").await.unwrap();
    bus.publish("s", batch("s", "1", 0.0, 2)).await.unwrap();
    let first = recv(sub.as_mut(), 2_000).await.expect("first batch");
    sub.ack(&first).await.unwrap();
    // The group reads nothing more: publishing stalls once it is 8 entries behind.
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 1..=40 {
                bus.publish("s", batch("s", "1", f64::from(i) * 10.0, 2))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!publisher.is_finished(), "publishing went on past the mark");
    assert!(bus.stats().backpressure_waits >= 1);
    // Reading resumes it, and every batch arrives: the cap trimmed nothing unread.
    let mut got = 1;
    let t0 = Instant::now();
    while got < 41 && t0.elapsed() < Duration::from_secs(20) {
        if let Some(d) = recv(sub.as_mut(), 500).await {
            sub.ack(&d).await.unwrap();
            got += 1;
        }
    }
    assert_eq!(got, 41);
    publisher.await.unwrap();
}
