//! A race with official timing and no telemetry (a GR Cup timing file written by hand): the
//! import analyses it with the timing-only predictor, and the tyre prediction, the dashboard
//! and `pitwall eval` serve it, each naming the predictor.

mod common;

use common::{pitwall, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};

const TIMING_HEADER: &str = "NUMBER; DRIVER_NUMBER; LAP_NUMBER; LAP_TIME; LAP_IMPROVEMENT; CROSSING_FINISH_LINE_IN_PIT; S1; S1_IMPROVEMENT; S2; S2_IMPROVEMENT; S3; S3_IMPROVEMENT; KPH; ELAPSED; HOUR;S1_LARGE;S2_LARGE;S3_LARGE;TOP_SPEED;PIT_TIME;CLASS;GROUP;MANUFACTURER;FLAG_AT_FL;S1_SECONDS;S2_SECONDS;S3_SECONDS\n";

fn clock(ms: u64) -> String {
    format!("{}:{:02}.{:03}", ms / 60_000, (ms / 1000) % 60, ms % 1000)
}

/// Five cars over 14 laps: car 11 loses 0.15 s a lap to its tyres, the others 0.02; lap 6 is
/// a full-course yellow; car 33 stops at the end of lap 8. Lap-to-lap noise of a few tenths.
fn timing(dir: &Path) -> PathBuf {
    let mut s = String::from(TIMING_HEADER);
    for (k, car) in ["11", "22", "33", "44", "55"].iter().enumerate() {
        let mut elapsed = 0u64;
        let mut age = 0.0;
        for lap in 1..=14u32 {
            let deg = if *car == "11" { 0.15 } else { 0.02 };
            let noise =
                [0.21, -0.14, 0.08, -0.19, 0.12, -0.05, 0.17, -0.09][(lap as usize + 3 * k) % 8];
            let mut t = 99.0 + k as f64 * 0.35 + deg * age + noise;
            let mut flag = "GF";
            if lap == 1 {
                t += 5.0;
            }
            if lap == 6 {
                t *= 1.45;
                flag = "FCY";
            }
            let pit = *car == "33" && lap == 8;
            if pit {
                t += 25.0;
            }
            let ms = (t * 1000.0).round() as u64;
            elapsed += ms;
            age += 1.0;
            if pit {
                age = 0.0;
            }
            let s1 = ms * 3 / 10;
            let s2 = ms * 4 / 10;
            let s3 = ms - s1 - s2;
            s.push_str(&format!(
                "{car}; 1; {lap}; {}; 0; {}; {}; 0; {}; 0; {}; 0; 150.0; {}; 14:00:00.000;{};{};{};180.0;{};Am;;Toyota;{flag};{:.3};{:.3};{:.3}\n",
                clock(ms),
                if pit { "B" } else { "" },
                clock(s1), clock(s2), clock(s3),
                clock(elapsed),
                clock(s1), clock(s2), clock(s3),
                if pit { "0:25.000" } else { "" },
                s1 as f64 / 1000.0, s2 as f64 / 1000.0, s3 as f64 / 1000.0,
            ));
        }
    }
    let p = dir.join("23_AnalysisEnduranceWithSections_Race 1.CSV");
    std::fs::write(&p, s).unwrap();
    p
}

#[tokio::test]
async fn a_timing_only_race_is_served_by_the_timing_only_predictor() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("store");
    let file = timing(tmp.path());
    let o = pitwall(&[
        "import",
        "--quiet",
        "--track",
        "barber",
        "--session",
        "R1-hand",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The import analysed the session: one insight per car and lap, pit windows included.
    {
        let st = store::Store::open(&data).unwrap();
        let laps = st.laps("R1-hand", None).unwrap();
        assert_eq!(laps.len(), 5 * 14);
        assert!(laps.iter().all(|l| l.insight_json.is_some()));
    }

    let mut srv = Server::start(&data, &[]);
    let get = |path: String| {
        let url = srv.url(&path);
        async move {
            let r = reqwest::get(url).await.unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap())
        }
    };
    let mut loss = std::collections::BTreeMap::new();
    for car in ["11", "22", "44"] {
        let (code, p) = get(format!("/api/predict_tire/barber/{car}")).await;
        assert_eq!(code, 200, "{p}");
        assert_eq!(p["predictor"], "timing only", "{p}");
        assert_eq!(p["lap"], 14);
        assert_eq!(p["explanation"].as_array().map(Vec::len), Some(3), "{p}");
        assert!(p["tire_wear"].is_null(), "no wear without a sensor: {p}");
        loss.insert(car, p["predicted_loss_per_lap_s"].as_f64().unwrap());
    }
    // The car that degrades shows it.
    assert!(
        loss["11"] > loss["22"] + 0.3 && loss["11"] > loss["44"] + 0.3,
        "{loss:?}"
    );
    // An earlier lap from the store, and the dashboard's first paint.
    let (code, p) = get("/api/predict_tire/barber/11?lap=9".into()).await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["lap"], 9);
    let (code, d) = get("/api/dashboard/live?track=barber&vehicle=11".into()).await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["tire_wear"]["predictor"], "timing only");
    assert_eq!(d["tire_wear"]["wear_source"], "none");
    assert!(d["strategy"].is_object(), "the pit window is there: {d}");
    assert!(srv.stop().success());

    // `pitwall eval` scores the timing-only predictor on it, beside the baselines.
    let o = pitwall(&[
        "eval",
        "--sessions",
        "R1-hand",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j.to_string().contains("timing"), "{j}");
}
