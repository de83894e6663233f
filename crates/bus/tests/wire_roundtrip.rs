//! Every message kind written for Redis reads back equal, on messages a real analysis made
//! (a simulated race through `analysis::SessionAnalysis`), not hand-made ones.

use analysis::coach::{CoachingAlert, Metric};
use analysis::{AnalysisOptions, Output, SessionAnalysis, SessionEvent};
use bus::{wire, Message, TelemetryBatch};
use std::sync::Arc;

fn eq(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Telemetry(x), Message::Telemetry(y)) => x == y,
        (Message::Session(x), Message::Session(y)) => x == y,
        (Message::Insight(x), Message::Insight(y)) => x == y,
        (Message::Alert(x), Message::Alert(y)) => x == y,
        (Message::Profile(x), Message::Profile(y)) => {
            // ProfileUpdate has no PartialEq: compare its JSON.
            serde_json::to_value(&**x).unwrap() == serde_json::to_value(&**y).unwrap()
        }
        (Message::StrategyJob(x), Message::StrategyJob(y)) => x == y,
        _ => false,
    }
}

fn round_trip(m: &Message) {
    let bytes = wire::encode(m).unwrap();
    let back = wire::decode(&bytes).unwrap();
    assert!(eq(m, &back), "{} did not round-trip", wire::kind(m));
    // The envelope is versioned and tagged.
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!(v["kind"], wire::kind(m));
}

#[test]
fn every_variant_round_trips() {
    let mut cfg = sim::RaceConfig::new("Spielberg", 4, 7);
    cfg.cars = 3;
    cfg.hz = 20.0;
    cfg = cfg.with_generated_drivers();
    let mut race = sim::Race::new(cfg).unwrap();
    let mut samples = Vec::new();
    let mut tick = Vec::new();
    while race.step(&mut tick) {
        samples.append(&mut tick);
    }
    let session = samples[0].session_id.clone();
    let track = samples[0].track.clone();
    let mut a = SessionAnalysis::new(
        session.clone(),
        track.clone(),
        AnalysisOptions {
            tire_model: None,
            coach: true,
        },
    );
    let total = SessionEvent::TotalLaps {
        session_id: session.to_string(),
        total_laps: 4,
    };
    a.on_event(&total);
    let mut out = Vec::new();
    let (mut insight, mut profile, mut job, mut alert) = (None, None, None, None);
    for s in &samples {
        a.push(s, &mut out);
        for o in out.drain(..) {
            match o {
                Output::Lap(done) => {
                    insight = Some(done.insight);
                    profile = done.profile.or(profile);
                    job = done.job.or(job);
                }
                Output::Alert(al) => alert = Some(*al),
            }
        }
    }

    // Telemetry: a real batch, with arrival instants.
    let batch = TelemetryBatch {
        received_unix_ns: (0..40).map(|i| 1_700_000_000_000_000_000 + i).collect(),
        samples: samples[1000..1040].to_vec(),
    };
    let m = Message::Telemetry(Arc::new(batch));
    round_trip(&m);
    // What the envelope costs (a printed figure, not a limit; debug build).
    let t0 = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..200 {
        let b = wire::encode(&m).unwrap();
        bytes = b.len();
        wire::decode(&b).unwrap();
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / 200.0;
    println!(
        "wire: a 40-sample batch is {bytes} bytes ({} per sample); encode+decode {us:.0} us ({:.2} us per sample)",
        bytes / 40,
        us / 40.0
    );
    round_trip(&Message::Telemetry(Arc::new(TelemetryBatch::default())));
    round_trip(&Message::Session(Arc::new(total)));
    round_trip(&Message::Session(Arc::new(SessionEvent::Race {
        session_id: session.to_string(),
        doc: serde_json::json!({"track": "Spielberg", "total_laps": 4, "cars": [{"id": "GR86-002-000"}]}),
    })));
    let insight = insight.expect("a lap completed");
    round_trip(&Message::Insight(Arc::new(insight.clone())));
    let profile = profile.expect("a profile");
    round_trip(&Message::Profile(Arc::new(
        analysis::messages::ProfileUpdate {
            session_id: session.to_string(),
            track: track.as_deref().unwrap_or("Spielberg").to_string(),
            profile,
        },
    )));
    let job = job.expect("a strategy job once the race length is known");
    assert!(!job.records.is_empty());
    round_trip(&Message::StrategyJob(Arc::new(job)));
    // The coach may not have alerted in four laps: then a made-up alert of the same type.
    let alert = alert.unwrap_or(CoachingAlert {
        session_id: session.to_string(),
        car_id: insight.chassis.clone(),
        track: "Spielberg".to_string(),
        lap: 3,
        t_s: 250.5,
        corner: 3,
        corner_name: "Turn 3".to_string(),
        metric: Metric::BrakePoint,
        value: 12.0,
        baseline_mean: 0.5,
        baseline_std: 2.0,
        delta: 11.5,
        z: 5.75,
        message: "Braking 12 m later than your baseline into Turn 3".to_string(),
        expected_delta_s: None,
    });
    round_trip(&Message::Alert(Arc::new(alert)));
}
