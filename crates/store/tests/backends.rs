//! The store's behaviour, one body of test code run on both backends: each test is a function
//! taking a [`Fixture`] (a fresh store location), run once on SQLite (a temporary directory)
//! and once on PostgreSQL (a fresh schema `pw_test_*` in database `test` on 127.0.0.1:5432,
//! user `postgres`, dropped at the end).
//!
//! PostgreSQL unreachable: the PostgreSQL half fails with a clear message, unless
//! `PITWALL_SKIP_PG=1` (then it is skipped). `PITWALL_TEST_PG_URL` points elsewhere.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;
use store::{AlertRow, LapEventRow, LapRow, OfficialLapRow, Store, StoreError, StoreLocation};
use store::{ApiKeyRow, AuditEntry};
use store::{META_RESULTS, META_RESULTS_PROVISIONAL};
use telemetry::{Corners, PitStatus, Sample};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh, empty store location, removed at the end of the test.
struct Fixture {
    location: StoreLocation,
    backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// (server URL, schema) of a PostgreSQL fixture, dropped on drop.
    pg: Option<(String, String)>,
}

fn pg_url() -> String {
    std::env::var("PITWALL_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// A connection to the test server; `None` (skip) when unreachable and PITWALL_SKIP_PG=1.
fn pg_admin() -> Option<postgres::Client> {
    let url = pg_url();
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(c) => Some(c),
        Err(e) if std::env::var("PITWALL_SKIP_PG").as_deref() == Ok("1") => {
            eprintln!("PostgreSQL at {url} unreachable ({e}): skipped (PITWALL_SKIP_PG=1)");
            None
        }
        Err(e) => panic!(
            "PostgreSQL at {url} is unreachable: {}. The PostgreSQL store tests need a server \
             on 127.0.0.1:5432 with database `test` and user `postgres` (trust auth); set \
             PITWALL_SKIP_PG=1 to skip them",
            store::StoreError::from(e)
        ),
    }
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            location: StoreLocation::Sqlite(dir.path().to_path_buf()),
            backend: "sqlite",
            _dir: Some(dir),
            pg: None,
        }
    }

    fn postgres() -> Option<Fixture> {
        static N: AtomicU32 = AtomicU32::new(0);
        let mut admin = pg_admin()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "pw_test_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(Fixture {
            location: StoreLocation::parse(&format!("{url}{sep}schema={schema}")),
            backend: "postgres",
            _dir: None,
            pg: Some((url, schema)),
        })
    }

    fn open(&self) -> Store {
        Store::open_location(&self.location)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.location))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.pg {
            if let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Runs each named test function once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Fixture::sqlite());
            }
            #[test]
            fn postgres() {
                if let Some(fx) = super::Fixture::postgres() {
                    super::$name(&fx);
                }
            }
        }
    )*};
}

on_both_backends!(
    samples_are_stored_once_and_read_back,
    a_batch_with_a_sample_twice_stores_it_once,
    samples_come_in_time_order_across_cars,
    sessions_list_cars_and_spans,
    ensure_session_keeps_or_replaces_the_track,
    laps_round_trip_once,
    official_laps_are_stored_once_and_counted_per_car,
    classification_prefers_official_results_and_sorts_by_position,
    lap_events_round_trip,
    session_meta_replaces_per_kind,
    a_profile_is_replaced_per_car_and_track,
    an_alert_is_stored_once,
    two_writers_share_one_store,
    write_rate,
    api_keys_secrets_and_the_audit_log,
    a_session_is_deleted_with_all_it_holds,
);

/// A sample of `car` at `t` with every kind of field set (track `Austin`).
fn sample(session: &str, car: &str, t: f64) -> Sample {
    let mut s = Sample::new(session, car, t);
    s.track = Some("Austin".into());
    s.speed_kmh = Some(100.0 + t);
    s.lap = Some(2);
    s.lap_dist_m = Some(1234.5);
    s.gear = Some(-1);
    s.position = Some(3);
    s.rpm = Some(7000.25);
    s.tyre_age_laps = Some(12);
    s.tyre_wear_pct = Some(Corners::from_array([1.0, 2.0, 3.0, 4.0]));
    s.tyre_temp_c = Some(Corners::from_array([80.0, 81.0, 82.5, 83.0]));
    s.pit_status = Some(PitStatus::Pitting);
    s.tyre_compound = Some("soft".into());
    s.air_temp_c = Some(21.5);
    s
}

/// An official lap of `car` taking `t` seconds (lap 2 has a stop, lap 3 is under FCY).
fn official_lap(car: &str, lap: u32, t: f64) -> OfficialLapRow {
    OfficialLapRow {
        car_number: car.into(),
        lap,
        lap_time_s: t,
        s1_s: Some(30.0),
        s2_s: None,
        s3_s: Some(40.5),
        pit_in: lap == 2,
        pit_time_s: (lap == 2).then_some(61.25),
        flag: if lap == 3 { "FCY" } else { "GF" }.into(),
        elapsed_s: Some(100.0 * lap as f64),
        kph: Some(140.0),
        top_speed_kmh: None,
        driver_number: Some(1),
        driver_name: Some("A. Driver".into()),
        team: None,
        class: Some("Am".into()),
    }
}

fn samples_are_stored_once_and_read_back(fx: &Fixture) {
    {
        let mut st = fx.open();
        let batch: Vec<_> = (0..10)
            .map(|i| sample("race1", if i % 2 == 0 { "a" } else { "b" }, i as f64))
            .collect();
        assert_eq!(st.write_batch(&batch).unwrap(), 10);
        // Redelivery of the same batch stores nothing new.
        assert_eq!(st.write_batch(&batch).unwrap(), 0);
        assert_eq!(st.write_batch(&[]).unwrap(), 0);
    }
    let st = fx.open();
    let ss = st.sessions().unwrap();
    assert_eq!(ss.len(), 1);
    assert_eq!(ss[0].id, "race1");
    assert_eq!(ss[0].track.as_deref(), Some("Austin"));
    assert_eq!(ss[0].samples, 10);
    assert_eq!(ss[0].cars.len(), 2);
    assert_eq!(ss[0].cars[0].samples, 5);
    assert_eq!(ss[0].cars[0].first_t_s, Some(0.0));
    assert_eq!(ss[0].cars[1].last_t_s, Some(9.0));
    let mut back = Vec::new();
    st.for_each_sample("race1", Some("a"), |s| back.push(s))
        .unwrap();
    assert_eq!(back.len(), 5);
    assert_eq!(back[1], sample("race1", "a", 2.0));
    let mut all = 0;
    assert_eq!(st.for_each_sample("race1", None, |_| all += 1).unwrap(), 10);
    assert_eq!(all, 10);
    // A sample with nothing but identity and time comes back as it went in.
    let mut st = st;
    let bare = Sample::new("race1", "c", 0.125);
    assert_eq!(st.write_batch(std::slice::from_ref(&bare)).unwrap(), 1);
    let mut back = Vec::new();
    st.for_each_sample("race1", Some("c"), |s| back.push(s))
        .unwrap();
    let mut expected = bare;
    expected.track = Some("Austin".into());
    assert_eq!(back, vec![expected]);
    assert!(matches!(
        st.for_each_sample("nope", None, |_| {}),
        Err(StoreError::NoSession(_))
    ));
    st.ping().unwrap();
    st.checkpoint().unwrap();
}

fn a_batch_with_a_sample_twice_stores_it_once(fx: &Fixture) {
    let mut st = fx.open();
    let a = sample("r", "7", 1.0);
    let mut a2 = a.clone();
    a2.speed_kmh = Some(1.0);
    assert_eq!(
        st.write_batch(&[a.clone(), a2, sample("r", "7", 2.0)])
            .unwrap(),
        2
    );
    // Overlapping redelivery: only the new one counts, and the span grows.
    assert_eq!(
        st.write_batch(&[sample("r", "7", 2.0), sample("r", "7", 0.5)])
            .unwrap(),
        1
    );
    let s = st.session("r").unwrap();
    assert_eq!(s.samples, 3);
    assert_eq!((s.first_t_s, s.last_t_s), (Some(0.5), Some(2.0)));
    let mut back = Vec::new();
    st.for_each_sample("r", None, |s| back.push(s)).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[1], a, "the first delivered copy is the one kept");
}

fn samples_come_in_time_order_across_cars(fx: &Fixture) {
    let mut st = fx.open();
    let mut batch = Vec::new();
    for (car, offset) in [("b", 0.05), ("a", 0.0), ("c", 0.02)] {
        for i in 0..3000 {
            let mut s = Sample::new("s1", car, f64::from(i) * 0.1 + offset);
            s.speed_kmh = Some(f64::from(i));
            batch.push(s);
        }
    }
    // A tie between two cars comes in car order.
    batch.push(Sample::new("s1", "a", 1000.0));
    batch.push(Sample::new("s1", "b", 1000.0));
    st.write_batch(&batch).unwrap();
    let mut seen = Vec::new();
    let n = st
        .for_each_sample_by_time("s1", |s| seen.push((s.t_s, s.car_id.to_string())))
        .unwrap();
    assert_eq!(n, 9002);
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "not in time order"
    );
    assert_eq!(seen[0].1, "a");
    assert_eq!(seen[1].1, "c");
    assert_eq!(seen[2].1, "b");
    let tie: Vec<_> = seen.iter().filter(|(t, _)| *t == 1000.0).collect();
    assert_eq!(tie, vec![&(1000.0, "a".into()), &(1000.0, "b".into())]);
    assert!(st.for_each_sample_by_time("nope", |_| {}).is_err());
    st.ensure_session("empty", None).unwrap();
    assert_eq!(st.for_each_sample_by_time("empty", |_| {}).unwrap(), 0);
}

fn sessions_list_cars_and_spans(fx: &Fixture) {
    let mut st = fx.open();
    st.write_batch(&[sample("old", "B", 5.0), sample("old", "a", 3.0)])
        .unwrap();
    st.write_batch(&[sample("new", "x", 1.0)]).unwrap();
    st.ensure_session("empty", Some("Spa")).unwrap();
    let ss = st.sessions().unwrap();
    let ids: Vec<_> = ss.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["empty", "new", "old"], "newest first");
    assert!(ss[0].cars.is_empty());
    assert_eq!(ss[0].track.as_deref(), Some("Spa"));
    // Cars in byte order ("B" before "a"), as SQLite sorts text.
    let cars: Vec<_> = ss[2].cars.iter().map(|c| c.car_id.as_str()).collect();
    assert_eq!(cars, vec!["B", "a"]);
    assert_eq!((ss[2].first_t_s, ss[2].last_t_s), (Some(3.0), Some(5.0)));
    assert_eq!(st.session("new").unwrap().samples, 1);
}

fn ensure_session_keeps_or_replaces_the_track(fx: &Fixture) {
    let mut st = fx.open();
    st.write_batch(&[sample("r", "21", 1.0)]).unwrap();
    let id = st.ensure_session("r", None).unwrap();
    assert_eq!(st.session("r").unwrap().track.as_deref(), Some("Austin"));
    assert_eq!(st.ensure_session("r", Some("Barber")).unwrap(), id);
    assert_eq!(st.session("r").unwrap().track.as_deref(), Some("Barber"));
    assert!(matches!(st.session("x"), Err(StoreError::NoSession(_))));
}

fn laps_round_trip_once(fx: &Fixture) {
    let mut st = fx.open();
    let row = LapRow {
        car_id: "c1".into(),
        lap: 3,
        lap_time_s: Some(92.5),
        sector_times_s: [Some(30.0), None, Some(31.0)],
        out_lap: false,
        pit: true,
        safety_car: false,
        incomplete: true,
        position: Some(2),
        t_start_s: 100.0,
        t_end_s: 192.5,
        tyre_age_laps: 3,
        tyre_compound: Some("medium".into()),
        fuel_kg: None,
        tyre_wear_pct: Some(Corners::from_array([1.0, 2.0, 3.0, 4.0])),
        features_json: "{\"x\":1}".into(),
        gaps_json: None,
        insight_json: Some("{}".into()),
    };
    st.write_laps("s", Some("Spa"), std::slice::from_ref(&row))
        .unwrap();
    // Delivered twice: stored once (idempotent on session, car, lap).
    st.write_laps("s", Some("Spa"), std::slice::from_ref(&row))
        .unwrap();
    assert_eq!(st.laps("s", None).unwrap(), vec![row.clone()]);
    // A later write of the same lap replaces it.
    let mut changed = row.clone();
    changed.lap_time_s = None;
    changed.tyre_wear_pct = None;
    changed.gaps_json = Some("[1]".into());
    let lap0 = LapRow {
        lap: 0,
        ..row.clone()
    };
    st.write_laps("s", None, &[changed.clone(), lap0.clone()])
        .unwrap();
    assert_eq!(st.laps("s", Some("c1")).unwrap(), vec![lap0, changed]);
    assert!(st.laps("s", Some("other")).unwrap().is_empty());
    let info = st.session("s").unwrap();
    assert_eq!(info.track.as_deref(), Some("Spa"));
    assert_eq!(info.engine_laps, 0, "laps have no car row without samples");
    assert!(matches!(
        st.laps("nope", None),
        Err(StoreError::NoSession(_))
    ));
}

fn official_laps_are_stored_once_and_counted_per_car(fx: &Fixture) {
    let mut st = fx.open();
    st.write_batch(&[sample("r", "21", 1.0)]).unwrap();
    let laps = vec![
        official_lap("21", 1, 99.5),
        official_lap("021", 1, 101.0),
        official_lap("021", 2, 120.0),
        official_lap("021", 3, 130.0),
    ];
    assert_eq!(st.write_official_laps("r", &laps).unwrap(), 4);
    // Idempotent: the same laps again replace, not add.
    st.write_official_laps("r", &laps).unwrap();
    let back = st.official_laps("r", None).unwrap();
    assert_eq!(back.len(), 4);
    assert_eq!(back[0], laps[1]);
    assert_eq!(
        st.official_laps("r", Some("021")).unwrap(),
        laps[1..].to_vec()
    );
    let s = st.session("r").unwrap();
    assert_eq!(s.official_laps, 4);
    assert_eq!(s.samples, 1);
    let cars: Vec<_> = s
        .cars
        .iter()
        .map(|c| (c.car_id.as_str(), c.samples, c.official_laps))
        .collect();
    assert_eq!(cars, vec![("021", 0, 3), ("21", 1, 1)]);
    // Engine laps count from lap 1 for cars with a row.
    let lap = |n| LapRow {
        car_id: "21".into(),
        lap: n,
        lap_time_s: None,
        sector_times_s: [None; 3],
        out_lap: n == 0,
        pit: false,
        safety_car: false,
        incomplete: false,
        position: None,
        t_start_s: 0.0,
        t_end_s: 1.0,
        tyre_age_laps: 0,
        tyre_compound: None,
        fuel_kg: None,
        tyre_wear_pct: None,
        features_json: "{}".into(),
        gaps_json: None,
        insight_json: None,
    };
    st.write_laps("r", None, &[lap(0), lap(1), lap(2)]).unwrap();
    assert_eq!(st.session("r").unwrap().engine_laps, 2);
}

fn classification_prefers_official_results_and_sorts_by_position(fx: &Fixture) {
    let mut st = fx.open();
    st.ensure_session("r", None).unwrap();
    assert_eq!(st.classification("r").unwrap(), None);
    st.set_session_meta(
        "r",
        META_RESULTS_PROVISIONAL,
        r#"[{"car_number":"7","position":2},{"car_number":"9","car_id":"9#2","position":1}]"#,
    )
    .unwrap();
    let prov = st.classification("r").unwrap().unwrap();
    let ids: Vec<_> = prov
        .iter()
        .map(|c| (c.car_id.as_str(), c.provisional))
        .collect();
    assert_eq!(ids, vec![("9#2", true), ("7", true)]);
    st.set_session_meta(
        "r",
        META_RESULTS,
        r#"[{"car_number":"5"},{"car_number":"7","position":1,"laps":20,"status":"Classified","total_time_s":1800.5},{"position":2}]"#,
    )
    .unwrap();
    let cars = st.classification("r").unwrap().unwrap();
    assert_eq!(cars.len(), 2, "a row without a car number is skipped");
    assert_eq!(cars[0].car_id, "7");
    assert_eq!(cars[0].laps, Some(20));
    assert_eq!(cars[0].status.as_deref(), Some("Classified"));
    assert_eq!(cars[0].total_time_s, Some(1800.5));
    assert!(!cars[0].provisional);
    assert_eq!((cars[1].car_id.as_str(), cars[1].position), ("5", None));
}

fn lap_events_round_trip(fx: &Fixture) {
    let mut st = fx.open();
    let ev = LapEventRow {
        car_number: "7".into(),
        lap: 3,
        t_s: 10.0,
        raw_lap: Some(32768),
        repaired: true,
        value: None,
        source: "lap_end.csv".into(),
    };
    let other = LapEventRow {
        car_number: "8".into(),
        raw_lap: None,
        repaired: false,
        value: Some(1.5),
        source: "lap_start.csv".into(),
        ..ev.clone()
    };
    st.write_lap_events("r", &[ev.clone(), other.clone()])
        .unwrap();
    // The same event again replaces it.
    let again = LapEventRow {
        value: Some(2.0),
        ..ev.clone()
    };
    st.write_lap_events("r", std::slice::from_ref(&again))
        .unwrap();
    assert_eq!(st.lap_events("r", Some("7")).unwrap(), vec![again.clone()]);
    assert_eq!(st.lap_events("r", None).unwrap(), vec![again, other]);
}

fn session_meta_replaces_per_kind(fx: &Fixture) {
    let mut st = fx.open();
    st.ensure_session("r", None).unwrap();
    assert_eq!(st.session_meta("r", "weather").unwrap(), None);
    st.set_session_meta("r", "weather", "[1]").unwrap();
    st.set_session_meta("r", "weather", "[2]").unwrap();
    st.set_session_meta("r", "best_laps", "{}").unwrap();
    assert_eq!(
        st.session_meta("r", "weather").unwrap().as_deref(),
        Some("[2]")
    );
    assert_eq!(
        st.session_meta("r", "best_laps").unwrap().as_deref(),
        Some("{}")
    );
    assert!(matches!(
        st.session_meta("x", "weather"),
        Err(StoreError::NoSession(_))
    ));
}

fn a_profile_is_replaced_per_car_and_track(fx: &Fixture) {
    let mut st = fx.open();
    st.write_profile("c1", "Spa", "s", "{\"v\":1}").unwrap();
    st.write_profile("c1", "Spa", "s2", "{\"v\":2}").unwrap();
    let p = st.profiles("c1").unwrap();
    assert_eq!(p, vec![("Spa".into(), "s2".into(), "{\"v\":2}".into())]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    st.write_profile("c1", "Monza", "s3", "{}").unwrap();
    let tracks: Vec<_> = st
        .profiles("c1")
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(tracks, vec!["Monza", "Spa"], "newest first");
    assert!(st.profiles("c2").unwrap().is_empty());
}

fn an_alert_is_stored_once(fx: &Fixture) {
    let mut st = fx.open();
    let a = AlertRow {
        session_id: "s".into(),
        car_id: "c1".into(),
        lap: 7,
        t_s: 700.0,
        corner: 3,
        metric: "brake_point_m".into(),
        json: "{}".into(),
    };
    let b = AlertRow {
        lap: 8,
        t_s: 800.0,
        ..a.clone()
    };
    st.write_alerts(&[a.clone(), a.clone()]).unwrap();
    st.write_alerts(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(st.alerts("c1", 10).unwrap(), vec![b.clone(), a]);
    assert_eq!(st.alerts("c1", 1).unwrap(), vec![b]);
    assert!(st.alerts("c2", 10).unwrap().is_empty());
}

/// Two stores on one location (two processes sharing it): overlapping batches of the same
/// cars written at once are each stored once, and each store reads the other's writes.
fn two_writers_share_one_store(fx: &Fixture) {
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let location = fx.location.clone();
            std::thread::spawn(move || {
                let mut st = Store::open_location(&location).unwrap();
                let mut new = 0;
                for b in 0..20 {
                    // Writer 1 delivers the same batches shifted by half a batch.
                    let start = b * 50 + w * 25;
                    let batch: Vec<_> = (start..start + 50)
                        .flat_map(|i| ["a", "b"].map(|car| sample("shared", car, f64::from(i))))
                        .collect();
                    new += st.write_batch(&batch).unwrap();
                }
                new
            })
        })
        .collect();
    let new: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    // Samples 0..1025 of two cars.
    assert_eq!(new, 2 * 1025);
    let st = fx.open();
    let s = st.session("shared").unwrap();
    assert_eq!(s.samples, 2 * 1025);
    assert_eq!((s.first_t_s, s.last_t_s), (Some(0.0), Some(1024.0)));
}

/// Samples per second written through the backend (printed, not asserted).
fn write_rate(fx: &Fixture) {
    let mut st = fx.open();
    const BATCH: usize = 1000;
    const BATCHES: usize = 20;
    let batches: Vec<Vec<Sample>> = (0..BATCHES)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let k = b * BATCH + i;
                    sample("rate", ["1", "2", "3", "4"][k % 4], (k / 4) as f64 * 0.05)
                })
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    let mut n = 0;
    for b in &batches {
        n += st.write_batch(b).unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(n, BATCH * BATCHES);
    let t1 = Instant::now();
    let again: usize = batches.iter().map(|b| st.write_batch(b).unwrap()).sum();
    let dt_again = t1.elapsed().as_secs_f64();
    assert_eq!(again, 0);
    let t2 = Instant::now();
    let read = st.for_each_sample_by_time("rate", |_| {}).unwrap();
    let dt_read = t2.elapsed().as_secs_f64();
    println!(
        "{}: wrote {n} samples in batches of {BATCH}: {:.0} samples/s new, {:.0} samples/s \
         redelivered; read back by time {:.0} samples/s",
        fx.backend,
        n as f64 / dt,
        n as f64 / dt_again,
        read as f64 / dt_read
    );
}

/// PostgreSQL only: schema selection, version checks.
mod pg_only {
    use super::*;

    #[test]
    fn the_search_path_option_selects_an_existing_schema() {
        let Some(fx) = Fixture::postgres() else {
            return;
        };
        let (url, schema) = fx.pg.clone().unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let loc = StoreLocation::parse(&format!("{url}{sep}options=-c%20search_path%3D{schema}"));
        let mut st = Store::open_location(&loc).unwrap();
        st.write_batch(&[sample("r", "1", 1.0)]).unwrap();
        // Same tables as through ?schema=.
        assert_eq!(fx.open().session("r").unwrap().samples, 1);
        drop(st);
        // A search path naming no existing schema is refused with a clear error.
        let missing = StoreLocation::parse(&format!(
            "{url}{sep}options=-c%20search_path%3D{schema}_missing"
        ));
        assert!(matches!(
            Store::open_location(&missing),
            Err(StoreError::NoSchema)
        ));
    }

    #[test]
    fn a_newer_schema_is_refused_and_reopening_migrates_nothing() {
        let Some(fx) = Fixture::postgres() else {
            return;
        };
        drop(fx.open());
        drop(fx.open());
        let (url, schema) = fx.pg.clone().unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let v: i64 = admin
            .query_one(
                &format!("SELECT version FROM {schema}.pitwall_schema_version"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(v, 5);
        let rows = admin
            .query(
                &format!("SELECT 1 FROM {schema}.pitwall_schema_version"),
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        admin
            .batch_execute(&format!(
                "UPDATE {schema}.pitwall_schema_version SET version = 99"
            ))
            .unwrap();
        assert!(matches!(
            Store::open_location(&fx.location),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_lost_connection_is_opened_again() {
        let Some(fx) = Fixture::postgres() else {
            return;
        };
        let (url, schema) = fx.pg.clone().unwrap();
        let app = format!("app_{schema}");
        let StoreLocation::Postgres(base) = &fx.location else {
            panic!("a PostgreSQL fixture");
        };
        let mut st = Store::open_location(&StoreLocation::parse(&format!(
            "{base}&application_name={app}"
        )))
        .unwrap();
        st.write_batch(&[sample("r", "1", 1.0)]).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut kill = || {
            let n = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1",
                    &[&app],
                )
                .unwrap()
                .len();
            assert_eq!(n, 1, "the store's one connection");
        };
        kill();
        // A write is retried once on a new connection.
        assert_eq!(st.write_batch(&[sample("r", "1", 2.0)]).unwrap(), 1);
        kill();
        // A read fails (at most once), then the store connects again.
        let _ = st.sessions();
        assert_eq!(st.session("r").unwrap().samples, 2);
        let mut n = 0;
        st.for_each_sample_by_time("r", |_| n += 1).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_bad_url_is_an_error_not_a_panic() {
        for url in ["postgres://h/x?schema=", "postgres://h/x?bogus_option=1"] {
            assert!(Store::open_location(&StoreLocation::parse(url)).is_err());
        }
    }
}

/// Access control's rows: a secret is created once (the first value wins), keys are stored
/// and revoked once, a second connection (another server) sees both, every change audited.
fn api_keys_secrets_and_the_audit_log(fx: &Fixture) {
    let mut st = fx.open();
    assert_eq!(st.secret_or_insert("hmac", "first").unwrap(), "first");
    assert_eq!(st.secret_or_insert("hmac", "second").unwrap(), "first");
    let row = ApiKeyRow {
        id: "k_1".into(),
        name: Some("ci".into()),
        role: "ingest".into(),
        hash: "ab".repeat(32),
        created_unix_s: 10.5,
        revoked_unix_s: None,
    };
    let audit = |action| AuditEntry {
        actor: "cli:test",
        action,
        target: Some("k_1"),
        detail: None,
    };
    st.insert_api_key(&row, audit("key.create")).unwrap();
    let other = fx.open();
    assert_eq!(other.api_keys(false).unwrap(), vec![row.clone()]);
    assert_eq!(
        st.revoke_api_key("k_1", audit("key.revoke")).unwrap(),
        Some(true)
    );
    assert_eq!(
        st.revoke_api_key("k_1", audit("key.revoke")).unwrap(),
        Some(false)
    );
    assert_eq!(st.revoke_api_key("k_x", audit("key.revoke")).unwrap(), None);
    assert!(other.api_keys(false).unwrap().is_empty());
    let all = other.api_keys(true).unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].revoked_unix_s.is_some());
    let log = other.audit_log(10).unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.revoke", "key.create"]);
    assert_eq!(log[0].actor, "cli:test");
    assert_eq!(log[0].target.as_deref(), Some("k_1"));
    assert_eq!(other.audit_log(1).unwrap().len(), 1);
}

/// Deleting a session removes its samples, cars, laps, timing, documents and alerts, leaves
/// the others alone, is audited, and the session id can be used again.
fn a_session_is_deleted_with_all_it_holds(fx: &Fixture) {
    let mut st = fx.open();
    st.write_batch(&[sample("gone", "a", 1.0), sample("kept", "a", 1.0)])
        .unwrap();
    st.write_official_laps("gone", &[official_lap("a", 1, 90.0)])
        .unwrap();
    st.set_session_meta("gone", META_RESULTS, "{}").unwrap();
    let alert = AlertRow {
        session_id: "gone".into(),
        car_id: "a".into(),
        lap: 1,
        t_s: 1.0,
        corner: 1,
        metric: "brake_point_m".into(),
        json: "{}".into(),
    };
    st.write_alerts(&[alert]).unwrap();
    let audit = AuditEntry {
        actor: "t",
        action: "session.delete",
        target: Some("gone"),
        detail: None,
    };
    assert!(st.delete_session("gone", audit).unwrap());
    assert!(!st.delete_session("gone", audit).unwrap());
    let ids: Vec<String> = st.sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["kept"]);
    assert!(st.alerts("a", 10).unwrap().is_empty());
    assert_eq!(st.audit_log(10).unwrap().len(), 1, "one deletion audited");
    let mut n = 0;
    st.for_each_sample("kept", None, |_| n += 1).unwrap();
    assert_eq!(n, 1);
    st.write_batch(&[sample("gone", "a", 2.0)]).unwrap();
    let again = st.session("gone").unwrap();
    assert_eq!(again.samples, 1);
    assert_eq!(again.official_laps, 0);
    let mut n = 0;
    st.for_each_sample("gone", None, |_| n += 1).unwrap();
    assert_eq!(n, 1, "the old samples are gone");
}
