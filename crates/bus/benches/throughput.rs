//! Telemetry through the bus: publish 100 batches of 40 simulated samples (every channel) and
//! take them back through one consumer group, acking each: the in-process bus against Redis
//! Streams (pipelined XADD, XREADGROUP, XACK) on a `redis-server` of the bench's own. The
//! difference per point is what going through Redis costs a stage.
//!
//! `cargo bench -p bus --bench throughput` (needs `redis-server` on the PATH).

use bus::{Bus, InProcessBus, Message, RedisBus, RedisBusConfig, TelemetryBatch, Topic};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use telemetry::Sample;

const BATCHES: usize = 100;
const PER_BATCH: usize = 40;

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

/// Samples of a simulated race, every channel filled as the simulator fills them.
fn samples() -> Vec<Sample> {
    let mut cfg = sim::RaceConfig::new("Spielberg", 2, 3);
    cfg.cars = 4;
    cfg.hz = 20.0;
    cfg = cfg.with_generated_drivers();
    let mut race = sim::Race::new(cfg).expect("race");
    let (mut out, mut tick) = (Vec::new(), Vec::new());
    while out.len() < BATCHES * PER_BATCH && race.step(&mut tick) {
        out.append(&mut tick);
    }
    out.truncate(BATCHES * PER_BATCH);
    out
}

fn batches(samples: &[Sample]) -> Vec<Message> {
    samples
        .chunks(PER_BATCH)
        .map(|c| {
            Message::Telemetry(Arc::new(TelemetryBatch {
                samples: c.to_vec(),
                received_unix_ns: vec![1; c.len()],
            }))
        })
        .collect()
}

async fn drain(sub: &mut Box<dyn bus::Subscription>, points: usize) {
    let mut got = 0;
    while got < points {
        let Some(d) = sub.next().await else { break };
        if let Message::Telemetry(b) = &d.message {
            got += b.len();
        }
        let _ = sub.ack(&d).await;
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let msgs = batches(&samples());
    let points = msgs
        .iter()
        .map(|m| match m {
            Message::Telemetry(b) => b.len(),
            _ => 0,
        })
        .sum::<usize>();
    let mut g = c.benchmark_group("bus_telemetry");
    g.throughput(Throughput::Elements(points as u64));
    g.sample_size(20);

    let inproc = InProcessBus::new(4 * BATCHES);
    let mut sub = rt
        .block_on(inproc.subscribe(Topic::Telemetry, "bench"))
        .expect("subscribe");
    g.bench_function("in_process", |b| {
        b.iter(|| {
            rt.block_on(async {
                for m in &msgs {
                    let _ = inproc.publish("s", m.clone()).await;
                }
                drain(&mut sub, points).await;
            })
        })
    });

    let server = RedisServer::start();
    let url = server.url();
    let redis = rt
        .block_on(RedisBus::connect(&url, RedisBusConfig::default()))
        .expect("connect");
    let mut rsub = rt
        .block_on(redis.subscribe(Topic::Telemetry, "bench"))
        .expect("subscribe");
    g.bench_function("redis_pipelined", |b| {
        b.iter(|| {
            rt.block_on(async {
                redis.publish_all(&msgs).await.expect("publish");
                drain(&mut rsub, points).await;
            })
        })
    });
    g.bench_function("redis_publish_only", |b| {
        b.iter(|| rt.block_on(async { redis.publish_all(&msgs).await.expect("publish") }))
    });
    g.finish();
    let s = redis.stats();
    println!(
        "redis stats: published {} entries {} round trips {} trimmed {} acked {}",
        s.published, s.entries_added, s.publish_round_trips, s.trimmed, s.acked
    );
    redis.close();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
