//! `pitwall import`, `export` and `replay` end to end, on fixture files written by the tests
//! (GR Cup quirks included: BOM, CRLF, `; ` separators, lap 32768, `021` vs `21`).

mod common;

use common::bin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("PITWALL_LOG", "warn")
        .env_remove("PITWALL_DATA_DIR")
        .output()
        .expect("run pitwall")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sessions(dir: &Path) -> Vec<Value> {
    let o = ok(run(&["sessions", "--json", "--data-dir", p(dir)]));
    serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap()
}

/// One official lap of the fixture: (car, lap, lap ms, sectors ms, pit, pit time, flag).
struct Lap {
    car: &'static str,
    lap: u32,
    ms: u64,
    sectors_ms: [u64; 3],
    pit: bool,
    pit_time: Option<(&'static str, f64)>,
    flag: &'static str,
}

fn mss(ms: u64) -> String {
    format!("{}:{:02}.{:03}", ms / 60_000, (ms / 1000) % 60, ms % 1000)
}

fn ss(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn fixture_laps() -> Vec<Lap> {
    let mut v = Vec::new();
    for (car, base) in [("021", 128_412u64), ("21", 129_007), ("7", 131_250)] {
        // Car 7 retires after 2 laps.
        let laps = if car == "7" { 2 } else { 4 };
        for lap in 1..=laps {
            let fcy = lap == 3;
            let ms = base + lap as u64 * 17 + if fcy { 25_000 } else { 0 };
            let s1 = 41_020 + lap as u64;
            let s2 = 47_311;
            let s3 = ms - s1 - s2;
            let pit = car == "21" && lap == 2;
            v.push(Lap {
                car,
                lap,
                ms,
                sectors_ms: [s1, s2, s3],
                pit,
                pit_time: pit.then_some(("0:01:05.250", 65.25)),
                flag: if fcy {
                    "FCY"
                } else if lap == laps {
                    "FF"
                } else {
                    "GF"
                },
            });
        }
    }
    v
}

fn write_timing(dir: &Path) -> PathBuf {
    let mut s = String::from(
        "NUMBER; DRIVER_NUMBER; LAP_NUMBER; LAP_TIME; LAP_IMPROVEMENT; CROSSING_FINISH_LINE_IN_PIT; S1; S1_IMPROVEMENT; S2; S2_IMPROVEMENT; S3; S3_IMPROVEMENT; KPH; ELAPSED; HOUR;S1_LARGE;S2_LARGE;S3_LARGE;TOP_SPEED;PIT_TIME;CLASS;GROUP;MANUFACTURER;FLAG_AT_FL;S1_SECONDS;S2_SECONDS;S3_SECONDS\r\n",
    );
    for l in fixture_laps() {
        let [s1, s2, s3] = l.sectors_ms;
        s.push_str(&format!(
            "{}; 1; {}; {}; 0; {}; {}; 0; {}; 0; {}; 0; 112.4; 10:51.006; 14:04:01.960;0:41.020;0:47.311;0:40.081;171.3;{};Am;;Toyota;{};{};{};{}\r\n",
            l.car,
            l.lap,
            mss(l.ms),
            if l.pit { "B" } else { "" },
            ss(s1),
            ss(s2),
            ss(s3),
            l.pit_time.map(|x| x.0).unwrap_or(""),
            l.flag,
            ss(s1),
            ss(s2),
            ss(s3),
        ));
    }
    let path = dir.join("23_AnalysisEnduranceWithSections_ Race 1_Anonymized.CSV");
    std::fs::write(&path, s).unwrap();
    path
}

/// Long-format telemetry with a BOM and CRLF: cars 021 and 21, 10 instants each at 10 Hz,
/// three channels per instant; one row of car 21 has lap 32768. `bad` adds one row whose
/// value is not a number.
fn write_telemetry(dir: &Path, bad: bool) -> PathBuf {
    let mut s = String::from("\u{feff}expire_at,lap,meta_event,meta_session,meta_source,meta_time,original_vehicle_id,outing,telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number\r\n");
    for (vid, num) in [("GR86-010-021", "021"), ("GR86-011-21", "21")] {
        for i in 0..10u32 {
            let ts = format!("2025-05-30T08:15:{:02}.{:03}Z", 40 + i / 10, (i % 10) * 100);
            for (ch, val) in [
                ("speed", format!("{}", 120 + i)),
                ("accx_can", "0.34600000000000003".to_string()),
                ("nmot", format!("{}", 6000 + i * 10)),
            ] {
                let lap = if num == "21" && i == 5 && ch == "speed" {
                    32768
                } else {
                    3
                };
                s.push_str(&format!(
                    ",{lap},I_R09,R1,kafka:gr-raw,2025-06-01T14:02:11.210Z,{vid},0,{ch},{val},{ts},{vid},{num}\r\n"
                ));
            }
        }
    }
    if bad {
        s.push_str(",3,I_R09,R1,kafka:gr-raw,2025-06-01T14:02:11.210Z,GR86-010-021,0,speed,fast,2025-05-30T08:15:40.500Z,GR86-010-021,021\r\n");
    }
    let path = dir.join(if bad {
        "bad_telemetry.csv"
    } else {
        "R1_telemetry_data.csv"
    });
    std::fs::write(&path, s).unwrap();
    path
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .zip(rec.iter())
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn official_timing_alone_stores_every_lap_of_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let timing = write_timing(dir.path());
    let o = ok(run(&[
        "import",
        p(&timing),
        "--session",
        "barber-r1",
        "--track",
        "Barber",
        "--data-dir",
        p(&data),
    ]));
    assert_eq!(stdout(&o), "barber-r1");
    assert!(stderr(&o).contains("official timing"), "{}", stderr(&o));

    let ss = sessions(&data);
    assert_eq!(ss.len(), 1);
    let s = &ss[0];
    assert_eq!(s["id"], "barber-r1");
    assert_eq!(s["track"], "Barber");
    assert_eq!(s["official_laps"], 10);
    let cars: Vec<(String, u64, u64)> = s["cars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["car_id"].as_str().unwrap().to_string(),
                c["samples"].as_u64().unwrap(),
                c["official_laps"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cars,
        vec![
            ("021".into(), 0, 4),
            ("21".into(), 0, 4),
            ("7".into(), 0, 2)
        ]
    );

    // Every lap equals the file: export the laps and compare.
    let out = dir.path().join("out.csv");
    ok(run(&[
        "export",
        "barber-r1",
        "--format",
        "csv",
        "--out",
        p(&out),
        "--data-dir",
        p(&data),
    ]));
    let rows = csv_rows(&dir.path().join("out_laps.csv"));
    let mut want = fixture_laps();
    want.sort_by(|a, b| (a.car, a.lap).cmp(&(b.car, b.lap)));
    assert_eq!(rows.len(), want.len());
    let f =
        |r: &std::collections::HashMap<String, String>, k: &str| -> f64 { r[k].parse().unwrap() };
    for (r, l) in rows.iter().zip(&want) {
        assert_eq!(r["car_number"], l.car);
        assert_eq!(r["lap"], l.lap.to_string());
        assert!((f(r, "lap_time_s") - l.ms as f64 / 1000.0).abs() < 1e-9);
        for (i, k) in ["s1_s", "s2_s", "s3_s"].iter().enumerate() {
            assert!(
                (f(r, k) - l.sectors_ms[i] as f64 / 1000.0).abs() < 1e-9,
                "{k}"
            );
        }
        assert_eq!(r["flag"], l.flag);
        assert_eq!(r["pit_in"], if l.pit { "1" } else { "0" });
        match l.pit_time {
            Some((_, secs)) => assert!((f(r, "pit_time_s") - secs).abs() < 1e-9),
            None => assert_eq!(r["pit_time_s"], ""),
        }
    }
    // No telemetry: the samples file has only its header.
    assert_eq!(csv_rows(&out).len(), 0);
}

#[test]
fn telemetry_and_timing_of_one_race_join_on_car_number() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tel = write_telemetry(dir.path(), false);
    let timing = write_timing(dir.path());
    let o = ok(run(&[
        "import",
        p(&tel),
        p(&timing),
        "--data-dir",
        p(&data),
        "--quiet",
    ]));
    let id = stdout(&o);
    // Named after the file's meta_event and meta_session.
    assert_eq!(id, "I_R09-R1");
    let err = stderr(&o);
    assert!(err.contains("long-format telemetry"), "{err}");
    assert!(err.contains("vehicles"), "{err}");

    let ss = sessions(&data);
    assert_eq!(ss.len(), 1, "one session: {ss:?}");
    let s = &ss[0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["samples"], 20);
    let by_car = |car: &str| {
        s["cars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["car_id"] == car)
            .cloned()
            .unwrap_or_else(|| panic!("no car {car}: {s}"))
    };
    assert_eq!(by_car("021")["samples"], 10);
    assert_eq!(by_car("021")["official_laps"], 4);
    assert_eq!(by_car("21")["samples"], 10);
    assert_eq!(by_car("21")["official_laps"], 4);
    assert_eq!(by_car("7")["samples"], 0);
    assert_eq!(by_car("7")["official_laps"], 2);

    // Export round trip: 20 rows, values as imported, no lap 32768.
    let out = dir.path().join("race.csv");
    ok(run(&[
        "export",
        &id,
        "--format",
        "csv",
        "--out",
        p(&out),
        "--data-dir",
        p(&data),
    ]));
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["lap"] == "3"), "lap repaired");
    let first = rows.iter().find(|r| r["car_id"] == "021").expect("car 021");
    assert_eq!(first["session_id"], id.as_str());
    assert_eq!(first["speed_kmh"], "120");
    assert_eq!(first["rpm"], "6000");
    assert!((first["accx_g"].parse::<f64>().unwrap() - 0.346).abs() < 1e-9);
    let t0: f64 = first["t_s"].parse().unwrap();
    assert!((t0 - 1_748_592_940.0).abs() < 1e-3, "t_s {t0}");
    assert_eq!(csv_rows(&dir.path().join("race_laps.csv")).len(), 10);

    // Parquet: same rows and values.
    let pq = dir.path().join("race.parquet");
    ok(run(&[
        "export",
        &id,
        "--format",
        "parquet",
        "--out",
        p(&pq),
        "--data-dir",
        p(&data),
    ]));
    {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::RowAccessor;
        let r = SerializedFileReader::new(std::fs::File::open(&pq).unwrap()).unwrap();
        assert_eq!(r.metadata().file_metadata().num_rows(), 20);
        let cols: Vec<String> = r
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let idx = |n: &str| cols.iter().position(|c| c == n).unwrap();
        let rows: Vec<_> = r.get_row_iter(None).unwrap().map(|x| x.unwrap()).collect();
        let row = rows
            .iter()
            .find(|x| x.get_string(idx("car_id")).unwrap() == "021")
            .unwrap();
        assert_eq!(row.get_string(idx("session_id")).unwrap(), id.as_str());
        assert_eq!(row.get_double(idx("speed_kmh")).unwrap(), 120.0);
        assert_eq!(row.get_int(idx("lap")).unwrap(), 3);
        assert!((row.get_double(idx("t_s")).unwrap() - t0).abs() < 1e-9);
        assert!(
            row.get_double(idx("tyre_wear_fl_pct")).is_err(),
            "missing is null"
        );
    }

    // Replay the stored session into a new store through an embedded server.
    let data2 = dir.path().join("data2");
    let o = ok(run(&[
        "replay",
        &id,
        "--embedded",
        "--speed",
        "1000",
        "--source-data-dir",
        p(&data),
        "--data-dir",
        p(&data2),
        "--http",
        "127.0.0.1:0",
        "--udp",
        "off",
    ]));
    assert!(
        stdout(&o).starts_with("pitwall listening http="),
        "{}",
        stdout(&o)
    );
    let ss = sessions(&data2);
    assert_eq!(ss.len(), 1);
    assert_eq!(ss[0]["id"], id.as_str());
    assert_eq!(ss[0]["samples"], 20);

    // Replay of the CSV file itself under a session name.
    let data3 = dir.path().join("data3");
    ok(run(&[
        "replay",
        p(&tel),
        "--speed",
        "0",
        "--session",
        "from-csv",
        "--data-dir",
        p(&data3),
        "--http",
        "127.0.0.1:0",
    ]));
    let ss = sessions(&data3);
    assert_eq!(ss[0]["id"], "from-csv");
    assert_eq!(ss[0]["samples"], 20);
}

#[test]
fn missing_columns_fail_naming_them_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let f = dir.path().join("partial.csv");
    std::fs::write(
        &f,
        "lap,telemetry_name,telemetry_value,meta_time\n3,speed,100,2025-06-01T14:02:11.210Z\n",
    )
    .unwrap();
    let timing = write_timing(dir.path());
    let o = run(&["import", p(&timing), p(&f), "--data-dir", p(&data)]);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(err.contains("partial.csv"), "{err}");
    assert!(err.contains("timestamp"), "{err}");
    assert!(err.contains("vehicle_id"), "{err}");
    assert!(sessions(&data).is_empty(), "nothing stored");

    // An unknown layout and a missing file are errors too, naming the file.
    let g = dir.path().join("other.csv");
    std::fs::write(&g, "a,b,c\n1,2,3\n").unwrap();
    let o = run(&["import", p(&g), "--data-dir", p(&data)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("other.csv"), "{}", stderr(&o));
    assert!(stderr(&o).contains("unrecognised"), "{}", stderr(&o));
    let o = run(&["import", "/nonexistent/x.csv", "--data-dir", p(&data)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/x.csv"), "{}", stderr(&o));
}

#[test]
fn non_numeric_values_are_counted_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tel = write_telemetry(dir.path(), true);
    let o = ok(run(&[
        "import",
        p(&tel),
        "--session",
        "s",
        "--data-dir",
        p(&data),
    ]));
    let err = stderr(&o);
    assert!(err.contains("rejected non_numeric: 1"), "{err}");
    assert_eq!(sessions(&data)[0]["samples"], 20);
}

/// A recording (framed datagrams) built from the real F1 25 captures.
fn f1_recording(dir: &Path) -> PathBuf {
    let shared = std::env::var_os("PITWALL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let caps = shared.join("data/f1-udp/2025");
    // Session, participants, lap data, status, damage, motion first; car telemetry completes.
    let order = [1, 4, 2, 7, 10, 0, 6];
    let mut frames: Vec<(f32, Vec<u8>)> = Vec::new();
    for rep in 0..3 {
        for (i, id) in order.iter().enumerate() {
            let b = std::fs::read(caps.join(format!("packet-{id}.bin"))).unwrap();
            frames.push((rep as f32 * 0.05 + i as f32 * 0.001, b));
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for (t, d) in &frames {
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(d);
    }
    let path = dir.join("f1.rec");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn replay_of_an_f1_recording_lands_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rec = f1_recording(dir.path());
    ok(run(&[
        "replay",
        p(&rec),
        "--embedded",
        "--speed",
        "1000",
        "--data-dir",
        p(&data),
        "--http",
        "127.0.0.1:0",
        "--udp",
        "off",
    ]));
    let ss = sessions(&data);
    assert!(!ss.is_empty(), "no session");
    let total: u64 = ss.iter().map(|s| s["samples"].as_u64().unwrap()).sum();
    assert!(total > 0, "{ss:?}");
}

#[test]
fn every_other_kind_is_attached_to_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let w = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let lap_end = w(
        "COTA_lap_end_R1.csv",
        "\"meta_source\",\"meta_time\",\"meta_event\",\"meta_session\",\"timestamp\",\"vehicle_id\",\"outing\",\"lap\",\"value\",\"expire_at\"\n\
         \"kafka\",\"2025-06-01T14:04:02.511Z\",\"I_R09\",\"R1\",\"2025-06-01T14:04:01.960Z\",\"GR86-004-17\",0,5,123456,\n\
         \"kafka\",\"2025-06-01T14:06:02.511Z\",\"I_R09\",\"R1\",\"2025-06-01T14:06:10.000Z\",\"GR86-004-17\",0,32768,123457,\n\
         \"kafka\",\"2025-06-01T14:08:02.511Z\",\"I_R09\",\"R1\",\"2025-06-01T14:08:12.500Z\",\"GR86-004-17\",0,7,123458,\n",
    );
    let results = w(
        "03_Results.CSV",
        "POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST;GAP_PREVIOUS;FL_LAPNUM;FL_TIME;FL_KPH;CLASS\n\
         1;17;Classified;20;45:01.123;-;-;7;2:08.412;112.4;Am\n\
         2;021;Classified;19;45:03.000;1 Lap;1 Lap;5;2:09.000;111.0;Am\n",
    );
    let weather = w(
        "26_Weather.CSV",
        "TIME_UTC_SECONDS;TIME_UTC_STR;AIR_TEMP;TRACK_TEMP;HUMIDITY;PRESSURE;WIND_SPEED;WIND_DIRECTION;RAIN\n\
         1748786400;6/1/2025 2:00:00 PM;28.5;0;60;1012;3.2;180;0\n",
    );
    let best = w(
        "99_Best 10 Laps By Driver.CSV",
        "NUMBER;VEHICLE;CLASS;TOTAL_DRIVER_LAPS;BESTLAP_1;BESTLAP_1_LAPNUM;BESTLAP_2;BESTLAP_2_LAPNUM\n\
         17;Toyota GR86;Am;20;2:08.412;7;2:08.900;9\n",
    );
    let wide = w(
        "wide.csv",
        "timestamp,vehicle_id,vehicle_number,lap,speed,nmot\n\
         2025-06-01T14:05:00.000Z,GR86-004-17,17,6,150.5,6500\n\
         2025-06-01T14:05:00.100Z,GR86-004-17,17,6,151.0,6510\n",
    );
    let json = w(
        "seed.json",
        r#"[{"meta_time":"2025-06-01T14:05:01.000Z","track":"cota","chassis":"17","speed_kmh":152},
            {"meta_time":"2025-06-01T14:05:01.100Z","track":"cota","chassis":"17","speed_kmh":9000}]"#,
    );
    let o = ok(run(&[
        "import",
        p(&results),
        p(&lap_end),
        p(&weather),
        p(&best),
        p(&wide),
        p(&json),
        "--track",
        "COTA",
        "--data-dir",
        p(&data),
    ]));
    let id = stdout(&o);
    assert_eq!(id, "I_R09-R1", "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("refused speed_kmh: 1"), "{err}");

    let st = store::Store::open(&data).unwrap();
    let s = st.session(&id).unwrap();
    assert_eq!(s.track.as_deref(), Some("COTA"));
    // Two wide samples and one valid JSON point, all car 17.
    assert_eq!(s.samples, 3);
    assert_eq!(s.cars.len(), 1);
    assert_eq!(s.cars[0].car_id, "17");

    let ev = st.lap_events(&id, Some("17")).unwrap();
    let laps: Vec<u32> = ev.iter().map(|e| e.lap).collect();
    assert_eq!(laps, vec![5, 6, 7]);
    assert!(ev[1].repaired);
    assert_eq!(ev[1].raw_lap, Some(32768));
    assert_eq!(ev[0].source, "COTA_lap_end_R1.csv");

    let r: Value =
        serde_json::from_str(&st.session_meta(&id, "results").unwrap().unwrap()).unwrap();
    assert_eq!(r.as_array().unwrap().len(), 2);
    assert_eq!(r[1]["car_number"], "021");
    assert_eq!(r[1]["gap_first"]["laps"], 1);
    assert!((r[0]["fastest_lap_time_s"].as_f64().unwrap() - 128.412).abs() < 1e-9);
    let wx: Value =
        serde_json::from_str(&st.session_meta(&id, "weather").unwrap().unwrap()).unwrap();
    assert_eq!(wx[0]["air_temp_c"], 28.5);
    let b: Value =
        serde_json::from_str(&st.session_meta(&id, "best_laps").unwrap().unwrap()).unwrap();
    assert_eq!(b[0]["best"].as_array().unwrap().len(), 2);
}
