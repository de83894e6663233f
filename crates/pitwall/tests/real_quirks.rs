//! The quirks of real GR Cup races, on hand-written fixtures: rows newest first, one number
//! on two cars (GROUP `Legends`) across timing, results and lap files, `POSITION` `1.0`,
//! provisional and official results in one import; the import report stored and served.

mod common;

use common::{bin, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn import(dir: &Path, files: &[PathBuf]) -> String {
    import_args(dir, files, &[])
}

/// Imports into a session named `session`.
fn import_as(dir: &Path, files: &[PathBuf], session: &str) -> String {
    import_args(dir, files, &["--session", session])
}

fn import_args(dir: &Path, files: &[PathBuf], extra: &[&str]) -> String {
    let mut args: Vec<String> = vec!["import".into(), "--quiet".into(), "--data-dir".into()];
    args.push(dir.to_str().unwrap().into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let o = Command::new(bin())
        .args(&args)
        .env("PITWALL_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn grcup_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../grcup/tests/fixtures")
        .join(name)
}

const TIMING_HEADER: &str = "NUMBER; DRIVER_NUMBER; LAP_NUMBER; LAP_TIME; LAP_IMPROVEMENT; CROSSING_FINISH_LINE_IN_PIT; S1; S1_IMPROVEMENT; S2; S2_IMPROVEMENT; S3; S3_IMPROVEMENT; KPH; ELAPSED; HOUR;S1_LARGE;S2_LARGE;S3_LARGE;TOP_SPEED;PIT_TIME;CLASS;GROUP;MANUFACTURER;FLAG_AT_FL;S1_SECONDS;S2_SECONDS;S3_SECONDS\n";
const RESULTS_HEADER: &str = "POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST;GAP_PREVIOUS;FL_LAPNUM;FL_TIME;FL_KPH;CLASS;GROUP;DIVISION;VEHICLE\n";

/// Three cars: 7 (5 laps), 3 (5 laps, no group), 3 Legends (4 laps: retired).
/// `same_group`: both 3s without GROUP in timing (the lap sequence restarts).
fn timing(dir: &Path, same_group: bool) -> PathBuf {
    let mut s = String::from(TIMING_HEADER);
    for (car, group, laps, base_ms) in [
        ("7", "", 5u32, 100_000u64),
        ("3", "", 5, 101_000),
        ("3", "Legends", 4, 102_500),
    ] {
        let group = if same_group { "" } else { group };
        let mut elapsed = 0;
        for lap in 1..=laps {
            let ms = base_ms + u64::from(lap) * 10;
            elapsed += ms;
            s.push_str(&format!(
                "{car}; 1; {lap}; 1:{:02}.{:03}; 0; ; 30.000; 0; 30.000; 0; {}.{:03}; 0; 150.0; {}:{:02}.{:03}; 14:00:00.000;0:30.000;0:30.000;0:40.000;180.0;;Am;{group};Toyota;GF;30.000;30.000;{}.{:03}\n",
                (ms / 1000) % 60, ms % 1000,
                (ms - 60_000) / 1000, ms % 1000,
                elapsed / 60_000, (elapsed / 1000) % 60, elapsed % 1000,
                (ms - 60_000) / 1000, ms % 1000,
            ));
        }
    }
    let p = dir.join("23_timing.CSV");
    std::fs::write(&p, s).unwrap();
    p
}

fn total(base_ms: u64, laps: u32) -> String {
    let t: u64 = (1..=laps).map(|l| base_ms + u64::from(l) * 10).sum();
    format!("{}:{:02}.{:03}", t / 60_000, (t / 1000) % 60, t % 1000)
}

/// Results with `POSITION` written `1.0`; `swap` exchanges 3 and 7 (the provisional order).
fn results(dir: &Path, name: &str, swap: bool) -> PathBuf {
    let (a, b) = if swap { ("2.0", "1.0") } else { ("1.0", "2.0") };
    let s = format!(
        "{RESULTS_HEADER}{a};7;Classified;5;{};-;-;1;1:40.010;150.0;Am;;GR Cup;Toyota GR86\n\
         {b};3;Classified;5;{};+5.000;+5.000;1;1:41.010;149.0;Am;;GR Cup;Toyota GR86\n\
         3.0;3;DNF;4;{};1 Lap;1 Lap;1;1:42.510;148.0;Am;Legends ;GR Cup;Toyota GR86\n",
        total(100_000, 5),
        total(101_000, 5),
        total(102_500, 4),
    );
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// A lap end file: two chassis with number 3, one with number 7.
fn lap_end(dir: &Path) -> PathBuf {
    let mut s = String::from("expire_at,lap,meta_event,meta_session,meta_source,meta_time,original_vehicle_id,outing,timestamp,vehicle_id,vehicle_number\n");
    for (vid, num, laps) in [
        ("GR86-010-7", "7", 5),
        ("GR86-020-3", "3", 5),
        ("GR86-030-3", "3", 4),
    ] {
        for lap in 1..=laps {
            s.push_str(&format!(
                ",{lap},I_R09_2025-06-01,R1,kafka:gr-raw,2025-06-01T14:00:00.000Z,{vid},0,2025-06-01T14:{:02}:{:02}.000Z,{vid},{num}\n",
                lap * 2, lap * 3 % 60
            ));
        }
    }
    let p = dir.join("lap_end.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn laps_per_car(dir: &Path, session: &str) -> std::collections::BTreeMap<String, usize> {
    let st = store::Store::open(dir).unwrap();
    let mut m = std::collections::BTreeMap::new();
    for l in st.official_laps(session, None).unwrap() {
        *m.entry(l.car_number).or_insert(0) += 1;
    }
    m
}

#[test]
fn one_number_on_two_cars_becomes_two_cars_with_all_their_laps() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, data) = (tmp.path().join("f"), tmp.path().join("d"));
    std::fs::create_dir_all(&files).unwrap();
    let session = import(
        &data,
        &[
            timing(&files, false),
            results(&files, "03_Results Official.CSV", false),
            lap_end(&files),
        ],
    );
    let laps = laps_per_car(&data, &session);
    assert_eq!(
        laps.into_iter().collect::<Vec<_>>(),
        [("3".into(), 5), ("3-Legends".into(), 4), ("7".into(), 5)]
    );
    let st = store::Store::open(&data).unwrap();
    let class = st.classification(&session).unwrap().unwrap();
    let ids: Vec<(&str, Option<u32>, Option<u32>)> = class
        .iter()
        .map(|c| (c.car_id.as_str(), c.position, c.laps))
        .collect();
    // `1.0` positions read as 1, 2, 3.
    assert_eq!(
        ids,
        [
            ("7", Some(1), Some(5)),
            ("3", Some(2), Some(5)),
            ("3-Legends", Some(3), Some(4))
        ]
    );
    // Lap files: the two chassis numbered 3 stay two cars.
    let ev = st.lap_events(&session, None).unwrap();
    let cars: std::collections::BTreeSet<&str> = ev.iter().map(|e| e.car_number.as_str()).collect();
    assert_eq!(cars.len(), 3, "{cars:?}");
    assert_eq!(ev.len(), 14);
    let report: Value =
        serde_json::from_str(&st.session_meta(&session, "import_report").unwrap().unwrap())
            .unwrap();
    assert_eq!(report["lap_mismatches"], serde_json::json!([]));
    assert_eq!(report["lap_check_cars"], 3);
    let notes = report["files"].to_string();
    assert!(notes.contains("3-Legends"), "{notes}");
    assert!(notes.contains("two chassis"), "{notes}");
}

#[test]
fn a_restarting_lap_sequence_splits_and_matches_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, data) = (tmp.path().join("f"), tmp.path().join("d"));
    std::fs::create_dir_all(&files).unwrap();
    let session = import(
        &data,
        &[
            timing(&files, true),
            results(&files, "03_Results Official.CSV", false),
        ],
    );
    let laps = laps_per_car(&data, &session);
    // The second `3` of the timing file (lap 1 again) is the results' 3-Legends by laps and
    // total time.
    assert_eq!(
        laps.into_iter().collect::<Vec<_>>(),
        [("3".into(), 5), ("3-Legends".into(), 4), ("7".into(), 5)]
    );
}

#[test]
fn official_results_are_the_classification_over_provisional() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, data) = (tmp.path().join("f"), tmp.path().join("d"));
    std::fs::create_dir_all(&files).unwrap();
    let prov = results(&files, "03_Provisional Results_Race 1.CSV", true);
    let off = results(&files, "00_Results GR Cup Race 1 Official.CSV", false);
    // Provisional only: the classification is provisional.
    let s1 = import(&data, &[timing(&files, false), prov.clone()]);
    let st = store::Store::open(&data).unwrap();
    let c = st.classification(&s1).unwrap().unwrap();
    assert!(c.iter().all(|c| c.provisional));
    assert_eq!(c[0].car_id, "3");
    drop(st);
    // Both, in either order: the official one wins.
    let s2 = import(&data, &[timing(&files, false), off, prov]);
    assert_eq!(s1, s2);
    let st = store::Store::open(&data).unwrap();
    let c = st.classification(&s2).unwrap().unwrap();
    assert!(c.iter().all(|c| !c.provisional));
    assert_eq!(c[0].car_id, "7");
    assert!(st
        .session_meta(&s2, "results_provisional")
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_newest_first_import_whole_and_the_report_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let sa = import(&a, &[grcup_fixture("long_in_order.csv")]);
    let sb = import(&b, &[grcup_fixture("long_reversed.csv")]);
    let samples = |dir: &Path, s: &str| {
        let st = store::Store::open(dir).unwrap();
        let mut v = Vec::new();
        st.for_each_sample(s, None, |x| {
            v.push((
                x.car_id.to_string(),
                x.t_s.to_bits(),
                x.speed_kmh.map(f64::to_bits),
                x.rpm.map(f64::to_bits),
                x.lap,
            ))
        })
        .unwrap();
        v.sort();
        v
    };
    let (va, vb) = (samples(&a, &sa), samples(&b, &sb));
    assert_eq!(va.len(), 80);
    assert_eq!(va, vb);
    let mut srv = Server::start(&b, &[]);
    let r: Value = reqwest::get(srv.url(&format!("/api/sessions/{sb}/import_report")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let f = &r["import_report"]["files"][0];
    assert_eq!(f["rows_read"], 680);
    assert_eq!(f["instants"], 80);
    assert_eq!(f["rejected"], serde_json::json!({}));
    let missing = reqwest::get(srv.url("/api/sessions/nope/import_report"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    srv.stop();
}

/// The back-test's truth is the official classification (over the provisional one, and over
/// the timing's order), on races imported from files; several races pool into one table.
#[test]
fn backtest_truth_is_the_official_classification() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, data) = (tmp.path().join("f"), tmp.path().join("d"));
    std::fs::create_dir_all(&files).unwrap();
    let d = data.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = common::pitwall(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    // Race A: provisional results only (3 ahead of 7, against the timing's order).
    let prov = results(&files, "03_Provisional Results_Race 1.CSV", true);
    let a = import_as(&data, &[timing(&files, false), prov.clone()], "A");
    // Race B: the same with the official results (7 ahead: the timing's order).
    let off = results(&files, "00_Results GR Cup Race 1 Official.CSV", false);
    let b = import_as(&data, &[timing(&files, false), prov, off], "B");
    let v = run(&[
        "strategy",
        "--backtest",
        "--sessions",
        &format!("{a},{b}"),
        "--at",
        "0.5",
        "--iterations",
        "300",
        "--json",
        "--data-dir",
        &d,
    ]);
    let races = v["races"].as_array().expect("races");
    assert_eq!(races.len(), 2);
    let actual = |race: &serde_json::Value, car: &str| {
        race["cuts"][0]["cars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["car_id"] == car)
            .map(|c| c["actual_position"].as_u64().unwrap())
    };
    assert_eq!(races[0]["truth"], "provisional_results");
    assert_eq!(actual(&races[0], "3"), Some(1));
    assert_eq!(actual(&races[0], "7"), Some(2));
    assert_eq!(races[1]["truth"], "official_results");
    assert_eq!(actual(&races[1], "7"), Some(1));
    assert_eq!(actual(&races[1], "3"), Some(2));
    assert_eq!(actual(&races[1], "3-Legends"), Some(3));
    let pooled = &v["pooled"][0];
    assert_eq!(pooled["races"], 2);
    assert_eq!(pooled["cars"], 6);
    for k in [
        "mae_positions",
        "baseline_mae_positions",
        "pace_baseline_mae_positions",
        "coverage80",
    ] {
        assert!(
            pooled[k].as_f64().is_some_and(f64::is_finite),
            "{k}: {pooled}"
        );
    }
    // The HTML report draws every race.
    let report = tmp.path().join("bt.html");
    let out = common::pitwall(&[
        "strategy",
        "--backtest",
        "--sessions",
        &format!("{a},{b}"),
        "--at",
        "0.25,0.75",
        "--iterations",
        "200",
        "--report",
        report.to_str().unwrap(),
        "--data-dir",
        &d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains(&a) && html.contains(&b));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Pooled") && text.contains("hold MAE"),
        "{text}"
    );
}
