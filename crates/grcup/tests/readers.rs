//! Every reader against the fixtures in `tests/fixtures/` (written to cover each layout and
//! quirk listed in FORMATS.md), asserting the exact values the fixtures hold.

use grcup::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use telemetry::{Corners, Sample};

fn fixture(name: &str) -> Vec<u8> {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (Some(x), Some(y)) => assert!(close(x, y), "{what}: {x} != {y}"),
        (x, y) => assert_eq!(x, y, "{what}"),
    }
}

fn unix(ts: &str) -> f64 {
    parse_timestamp_ns(ts.as_bytes()).unwrap() as f64 / 1e9
}

fn by_car(samples: Vec<Sample>) -> BTreeMap<String, Vec<Sample>> {
    let mut m: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        m.entry(s.car_id.to_string()).or_default().push(s);
    }
    m
}

fn pivot_all(bytes: &[u8], cfg: PivotConfig) -> (Vec<Sample>, PivotStats) {
    let mut p = LongPivot::new(bytes, cfg).unwrap();
    let mut out = Vec::new();
    let stats = p.for_each_sample(|s| out.push(s)).unwrap();
    (out, stats)
}

// ---------------------------------------------------------------- detection

#[test]
fn detects_every_fixture_by_header() {
    let cases = [
        ("long_barber.csv", FileKind::LongTelemetry),
        ("long_quirks.csv", FileKind::LongTelemetry),
        ("long_bad.csv", FileKind::LongTelemetry),
        ("wide.csv", FileKind::WideTelemetry),
        ("R1_barber_lap_end.csv", FileKind::LapBoundary),
        ("COTA_lap_time_R1.csv", FileKind::LapBoundary),
        (
            "23_AnalysisEnduranceWithSections_ Race 1_Anonymized.CSV",
            FileKind::OfficialTiming,
        ),
        (
            "03_Results GR Cup Race 1 Official_Anonymized.CSV",
            FileKind::Results,
        ),
        (
            "99_Best 10 Laps By Driver_Race 1_Anonymized.CSV",
            FileKind::BestLaps,
        ),
        ("26_Weather_Race 1_Anonymized.CSV", FileKind::Weather),
        ("seed.json", FileKind::SeedJson),
        ("seed.ndjson", FileKind::SeedJson),
    ];
    for (name, kind) in cases {
        let b = fixture(name);
        assert_eq!(detect(&b).unwrap(), kind, "{name}");
        // The header line alone is enough.
        let first = &b[..b.iter().position(|&c| c == b'\n').unwrap_or(b.len())];
        assert_eq!(detect(first).unwrap(), kind, "{name} (header only)");
    }
}

#[test]
fn detection_ignores_column_order_case_and_separator() {
    let h = b"VEHICLE_NUMBER ; TIMESTAMP ; Telemetry_Value ; telemetry_name\n";
    assert_eq!(detect(h).unwrap(), FileKind::LongTelemetry);
    let h = b"\t\"lap\"\t\"timestamp\"\t\"vehicle_id\"\r\n";
    assert_eq!(detect(h).unwrap(), FileKind::LapBoundary);
}

#[test]
fn detection_errors_are_clear() {
    assert!(matches!(detect(b""), Err(Error::Empty)));
    assert!(matches!(detect(b"\xEF\xBB\xBF \r\n\n"), Err(Error::Empty)));
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 7919 % 251) as u8).collect();
    let e = detect(&garbage).unwrap_err();
    assert!(matches!(e, Error::NotText { .. }), "{e}");
    assert!(matches!(
        detect(b"\x1f\x8b\x08\x00\x00\x00"),
        Err(Error::NotText { .. })
    ));
    let e = detect(b"a,b,c\n1,2,3\n").unwrap_err();
    assert!(
        matches!(&e, Error::UnknownFormat { header } if header == "a,b,c"),
        "{e}"
    );
    assert!(e.to_string().contains("a,b,c"));
    assert!(matches!(
        detect(b"{\"foo\": 1}"),
        Err(Error::UnknownFormat { .. })
    ));
    // A missing-column long file is not recognised as long telemetry.
    assert!(detect(&fixture("long_missing_columns.csv")).is_err());
}

// ---------------------------------------------------------------- long telemetry

#[test]
fn long_pivot_gathers_carries_and_repairs() {
    let cfg = PivotConfig::new("R1").with_track("barber");
    let (samples, stats) = pivot_all(&fixture("long_barber.csv"), cfg);
    let cars = by_car(samples);
    assert_eq!(cars.keys().collect::<Vec<_>>(), ["021", "21"]);

    let a = &cars["021"];
    assert_eq!(a.len(), 4);
    let s0 = &a[0];
    assert_eq!(&*s0.session_id, "R1");
    assert_eq!(s0.track.as_deref(), Some("barber"));
    // t_s is the ECU `timestamp`, not `meta_time` (two days later).
    assert!(close(s0.t_s, unix("2025-05-30T08:15:40.100Z")));
    assert!(unix("2025-06-01T14:02:11.210Z") - s0.t_s > 2.0 * 86400.0);
    assert_eq!(s0.speed_kmh, Some(131.52));
    assert_eq!(s0.accx_g, Some(0.34600000000000003));
    assert_eq!(s0.accy_g, Some(1.0730000000000002));
    assert_eq!(s0.throttle_pct, Some(87.5));
    assert_eq!(s0.gear, Some(4));
    assert_eq!(s0.rpm, Some(6120.0));
    assert_eq!(s0.brake_front_bar, Some(0.0));
    assert_eq!(s0.brake_rear_bar, Some(0.0));
    assert_eq!(s0.steering_deg, Some(-12.5));
    assert_eq!(s0.lap_dist_m, Some(3650.2));
    assert_eq!(s0.lat_deg, Some(33.5326));
    assert_eq!(s0.lon_deg, Some(-86.6197));
    assert_eq!(s0.lap, Some(4));
    assert_eq!(s0.tyre_wear_pct, None);

    let s1 = &a[1];
    assert!(close(s1.t_s, unix("2025-05-30T08:15:40.300Z")));
    assert_eq!(s1.accx_g, Some(0.35));
    assert_eq!(s1.accy_g, Some(1.1));
    assert_eq!(s1.lap_dist_m, Some(3690.0));
    assert_eq!(s1.speed_kmh, Some(131.52), "carried forward 0.2 s");
    assert_eq!(s1.gear, Some(4), "carried forward");
    assert_eq!(s1.lap, Some(4));

    let s2 = &a[2];
    assert_eq!(s2.lap, Some(5), "32768 repaired: lap distance wrapped");
    assert_eq!(s2.lap_dist_m, Some(12.5));
    assert_eq!(s2.speed_kmh, Some(132.0));
    assert_eq!(s2.accy_g, Some(1.1));
    assert_eq!(s2.throttle_pct, Some(87.5), "0.4 s old: still carried");

    let s3 = &a[3];
    assert!(close(s3.t_s, unix("2025-05-30T08:15:41.600Z")));
    assert_eq!(s3.accx_g, Some(0.2));
    assert_eq!(s3.lap, Some(5));
    assert_eq!(s3.speed_kmh, None, "1.1 s old: past the carry age");
    assert_eq!(s3.lap_dist_m, None);
    assert_eq!(s3.accy_g, None);
    assert_eq!(s3.throttle_pct, None);
    assert_eq!(s3.gear, None);

    let b = &cars["21"];
    assert_eq!(b.len(), 4);
    assert_eq!(
        b.iter().map(|s| s.lap).collect::<Vec<_>>(),
        [Some(7), Some(7), Some(7), Some(7)]
    );
    assert_eq!(
        b.iter().map(|s| s.accx_g).collect::<Vec<_>>(),
        [Some(-0.2), Some(-0.25), Some(-0.3), Some(-0.3)]
    );
    assert_eq!(
        b.iter().map(|s| s.speed_kmh).collect::<Vec<_>>(),
        [Some(120.0), Some(120.0), Some(120.0), Some(121.0)]
    );

    assert_eq!(stats.rows_read, 27);
    assert_eq!(stats.rows_rejected(), 0);
    assert_eq!(stats.rows_unknown_channel, 1);
    assert_eq!(stats.unknown_channels.get("oil_temp"), Some(&1));
    assert_eq!(stats.samples_emitted, 8);
    assert_eq!(stats.vehicles, 2);
    assert_eq!(stats.samples_lap_repaired, 2);
    assert_eq!(stats.laps_repaired, 2);
    assert_eq!(stats.lap_wraps, 1);
}

#[test]
fn long_pivot_handles_bom_crlf_quotes_shuffled_columns_and_spellings() {
    let bytes = fixture("long_quirks.csv");
    let mut p = LongPivot::new(&bytes[..], PivotConfig::new("s")).unwrap();
    let samples: Vec<Sample> = p.by_ref().map(|s| s.unwrap()).collect();
    let stats = p.stats();
    assert_eq!(stats.rows_rejected(), 0, "{:?}", stats.rejects);
    assert_eq!(stats.vehicles, 1, "GR86-002-2 and GR86-002-002 are one car");
    let v = p.vehicles();
    assert_eq!(&*v[0].car_id, "2");
    assert_eq!(v[0].chassis.as_deref(), Some("2"));
    assert_eq!(
        v[0].spellings,
        [
            ("GR86-002-2".to_string(), "2".to_string()),
            ("GR86-002-002".to_string(), "0".to_string())
        ]
    );
    assert_eq!(samples.len(), 2);
    let s0 = &samples[0];
    assert_eq!(&*s0.car_id, "2");
    assert!(close(s0.t_s, unix("2025-05-30T09:00:00.000Z")));
    assert_eq!(s0.throttle_pct, Some(55.5), "`ath` is throttle");
    assert_eq!(s0.speed_kmh, Some(140.25), "stray spaces around the value");
    assert_eq!(s0.lap, Some(3));
    assert_eq!(s0.accx_g, None);
    assert_eq!(
        s0.tyre_wear_pct,
        Some(Corners {
            fl: 10.5,
            fr: 11.0,
            rl: 8.25,
            rr: 8.5
        })
    );
    let s1 = &samples[1];
    assert_eq!(s1.speed_kmh, Some(141.0));
    assert_eq!(s1.accx_g, Some(0.5), "channel name with stray spaces");
    assert_eq!(s1.throttle_pct, Some(55.5));
    assert_eq!(
        s1.tyre_wear_pct,
        Some(Corners {
            fl: 10.6,
            fr: 11.0,
            rl: 8.25,
            rr: 8.5
        })
    );
}

/// `long_bad.csv` and its wide twin hold one bad row of each reason, at these lines: each is
/// refused once, at its line, and nothing else is.
fn assert_one_bad_row_of_each_reason(r: &Rejects) {
    let expect = [
        (RejectReason::NonNumeric, 3),
        (RejectReason::NonFinite, 4),
        (RejectReason::BadTimestamp, 5),
        (RejectReason::MissingVehicle, 6),
        (RejectReason::OutOfRange, 7),
        (RejectReason::BadLap, 8),
        (RejectReason::TimestampBackwards, 10),
        (RejectReason::ShortRow, 11),
    ];
    assert_eq!(r.total(), expect.len() as u64);
    for (reason, line) in expect {
        assert_eq!(r.count(reason), 1, "{reason}");
        let ex = r.examples.iter().find(|e| e.reason == reason).unwrap();
        assert_eq!(ex.line, line, "{reason}: {}", ex.detail);
    }
}

#[test]
fn long_pivot_counts_bad_rows_and_goes_on() {
    let mut cfg = PivotConfig::new("s");
    cfg.reorder_window = 1;
    let (samples, stats) = pivot_all(&fixture("long_bad.csv"), cfg);
    assert_eq!(
        samples.iter().map(|s| s.speed_kmh).collect::<Vec<_>>(),
        [Some(100.0), Some(101.0)]
    );
    assert_eq!(stats.rows_read, 10);
    let r = &stats.rejects;
    assert_one_bad_row_of_each_reason(r);
    let ex = r
        .examples
        .iter()
        .find(|e| e.reason == RejectReason::NonNumeric)
        .unwrap();
    assert!(ex.detail.contains("telemetry_value") && ex.detail.contains("abc"));
}

#[test]
fn long_pivot_missing_columns_are_named() {
    let e = LongPivot::new(
        &fixture("long_missing_columns.csv")[..],
        PivotConfig::new("s"),
    )
    .err()
    .unwrap();
    match &e {
        Error::MissingColumns { kind, missing, .. } => {
            assert_eq!(*kind, FileKind::LongTelemetry);
            assert_eq!(missing, &["telemetry_value", "timestamp"]);
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("telemetry_value") && msg.contains("timestamp"),
        "{msg}"
    );
}

#[test]
fn long_pivot_empty_and_binary_input() {
    assert!(matches!(
        LongPivot::new(&b""[..], PivotConfig::new("s")),
        Err(Error::Empty)
    ));
    assert!(matches!(
        LongPivot::new(&b"\xEF\xBB\xBF\r\n"[..], PivotConfig::new("s")),
        Err(Error::Empty)
    ));
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 256) as u8).collect();
    assert!(matches!(
        LongPivot::new(&garbage[..], PivotConfig::new("s")),
        Err(Error::NotText { .. })
    ));
    // Header only: no samples, no error.
    let (samples, stats) = pivot_all(
        b"telemetry_name,telemetry_value,timestamp,vehicle_id\n",
        PivotConfig::new("s"),
    );
    assert!(samples.is_empty());
    assert_eq!(stats.rows_read, 0);
}

const MINI_HEADER: &str =
    "lap,telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number\n";

fn mini(rows: &[(u32, &str, f64, &str)]) -> String {
    let mut s = MINI_HEADER.to_string();
    for (lap, name, v, ts) in rows {
        s.push_str(&format!(
            "{lap},{name},{v},2025-05-30T08:00:{ts}Z,GR86-004-17,17\n"
        ));
    }
    s
}

#[test]
fn implausible_lap_jumps_are_repaired_and_persistent_values_reseed() {
    let csv = mini(&[
        (4, "Laptrigger_lapdist_dls", 100.0, "00.000"),
        (9, "Laptrigger_lapdist_dls", 1500.0, "00.100"), // jump forward: distrusted
        (2, "Laptrigger_lapdist_dls", 3000.0, "00.200"), // backwards: distrusted
        (32768, "Laptrigger_lapdist_dls", 5.0, "00.300"), // wrap -> 5
        (5, "Laptrigger_lapdist_dls", 50.0, "00.400"),
        (8, "Laptrigger_lapdist_dls", 60.0, "00.500"), // distrusted 1
        (8, "Laptrigger_lapdist_dls", 70.0, "00.600"), // distrusted 2
        (8, "Laptrigger_lapdist_dls", 80.0, "00.700"), // 3rd time: reseed to 8
    ]);
    let mut cfg = PivotConfig::new("s");
    cfg.lap_reseed_instants = 3;
    let (samples, stats) = pivot_all(csv.as_bytes(), cfg);
    assert_eq!(
        samples.iter().map(|s| s.lap).collect::<Vec<_>>(),
        [4, 4, 4, 5, 5, 5, 5, 8].map(Some)
    );
    assert_eq!(stats.samples_lap_repaired, 5);
    assert_eq!(stats.lap_reseeds, 1);
    assert_eq!(stats.lap_wraps, 1);
}

#[test]
fn out_of_order_rows_within_the_window_meet_their_instant() {
    let csv = mini(&[
        (1, "speed", 100.0, "00.000"),
        (1, "speed", 101.0, "00.020"),
        (1, "accx_can", 0.5, "00.000"), // late row for the first instant
        (1, "accx_can", 0.6, "00.020"),
    ]);
    let (samples, stats) = pivot_all(csv.as_bytes(), PivotConfig::new("s"));
    assert_eq!(stats.rows_rejected(), 0);
    assert_eq!(samples.len(), 2);
    assert_eq!(
        (samples[0].speed_kmh, samples[0].accx_g),
        (Some(100.0), Some(0.5))
    );
    assert_eq!(
        (samples[1].speed_kmh, samples[1].accx_g),
        (Some(101.0), Some(0.6))
    );
}

#[test]
fn car_labels_never_merge_two_chassis() {
    // `vehicle_number` 21 for both cars: the second keeps its id's spelling, 021.
    let csv = "telemetry_name,telemetry_value,timestamp,vehicle_id,vehicle_number\n\
               speed,1,2025-05-30T08:00:00Z,GR86-011-21,21\n\
               speed,2,2025-05-30T08:00:00Z,GR86-004-021,21\n\
               speed,3,2025-05-30T08:00:00Z,GR86-005-3,0\n\
               speed,4,2025-05-30T08:00:00Z,GR86-006-03,0\n";
    let (samples, stats) = pivot_all(csv.as_bytes(), PivotConfig::new("s"));
    assert_eq!(stats.vehicles, 4);
    let labels: Vec<(&str, Option<f64>)> =
        samples.iter().map(|s| (&*s.car_id, s.speed_kmh)).collect();
    assert_eq!(
        labels,
        [
            ("21", Some(1.0)),
            ("021", Some(2.0)),
            ("3", Some(3.0)),
            ("03", Some(4.0))
        ]
    );
}

#[test]
fn synthetic_stream_is_ordered_per_car_and_clean() {
    let mut data = Vec::new();
    grcup::synth::write_long_csv(&mut data, 60_000, 5).unwrap();
    let mut p = LongPivot::new(&data[..], PivotConfig::new("s")).unwrap();
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut n = 0u64;
    let stats = p
        .for_each_sample(|s| {
            n += 1;
            if let Some(prev) = last.insert(s.car_id.to_string(), s.t_s) {
                assert!(s.t_s > prev);
            }
            assert!(s.lap.is_some_and(|l| l < 100), "{:?}", s.lap);
        })
        .unwrap();
    assert_eq!(stats.rows_read, 60_000);
    assert_eq!(stats.rows_rejected(), 0);
    assert_eq!(stats.vehicles, 5);
    assert_eq!(stats.samples_emitted, n);
    assert!(stats.samples_lap_repaired > 0);
}

// ---------------------------------------------------------------- wide telemetry

#[test]
fn wide_pivot_reads_columns_and_carries_empty_cells() {
    let bytes = fixture("wide.csv");
    let mut p = WidePivot::new(&bytes[..], PivotConfig::new("s")).unwrap();
    let mut out = Vec::new();
    let stats = p.for_each_sample(|s| out.push(s)).unwrap();
    let cars = by_car(out);
    let a = &cars["17"];
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].speed_kmh, Some(150.5));
    assert_eq!(a[0].throttle_pct, Some(99.5));
    assert_eq!(a[0].accy_g, Some(-1.25));
    assert_eq!(a[0].lap_dist_m, Some(100.0));
    assert_eq!(a[0].rpm, Some(6500.0));
    assert_eq!(a[0].gear, Some(5));
    assert_eq!(a[0].lap, Some(2));
    assert!(close(a[1].t_s, unix("2025-05-30T08:00:00.020Z")));
    assert_eq!(a[1].speed_kmh, Some(150.5), "empty cell: carried");
    assert_eq!(a[1].throttle_pct, Some(98.0));
    assert_eq!(a[1].accx_g, Some(0.15));
    assert_eq!(a[1].accy_g, Some(-1.25));
    assert_eq!(cars["3"].len(), 1);
    assert_eq!(cars["3"][0].speed_kmh, Some(90.0));
    assert_eq!(stats.rows_read, 4);
    assert_eq!(stats.rejects.count(RejectReason::NonNumeric), 1);
    assert_eq!(stats.rejects.examples[0].line, 5);
    assert!(stats.rejects.examples[0].detail.contains("accx_can"));
}

#[test]
fn wide_pivot_needs_a_channel_column() {
    let e = WidePivot::new(&b"timestamp,vehicle_id,foo\n"[..], PivotConfig::new("s"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::MissingColumns { .. }), "{e}");
}

/// The wide reader refuses and counts bad rows like the long one (same reasons, the file's
/// line numbers, the same details) and goes on; read here through `Iterator`.
#[test]
fn wide_pivot_counts_bad_rows_and_goes_on() {
    let csv = "vehicle_id,vehicle_number,lap,speed,gear,timestamp
GR86-009-7,7,4,100,3,2025-05-30T08:15:40.000Z
GR86-009-7,7,4,abc,3,2025-05-30T08:15:40.100Z
GR86-009-7,7,4,inf,3,2025-05-30T08:15:40.100Z
GR86-009-7,7,4,100,3,2025-13-01T00:00:00Z
,0,4,100,3,2025-05-30T08:15:40.100Z
GR86-009-7,7,4,100,7.5,2025-05-30T08:15:40.100Z
GR86-009-7,7,abc,100,3,2025-05-30T08:15:40.100Z
GR86-009-7,7,4,101,3,2025-05-30T08:15:40.200Z
GR86-009-7,7,4,99,3,2025-05-30T08:15:39.000Z
GR86-009-7,7
";
    let mut cfg = PivotConfig::new("s");
    cfg.reorder_window = 1;
    let mut p = WidePivot::new(csv.as_bytes(), cfg).unwrap();
    let samples: Vec<Sample> = p.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        samples.iter().map(|s| s.speed_kmh).collect::<Vec<_>>(),
        [Some(100.0), Some(101.0)]
    );
    assert_eq!(samples[1].gear, Some(3));
    assert_eq!(samples[1].lap, Some(4));
    let stats = p.stats();
    assert_eq!(stats.rows_read, 10);
    assert_eq!(stats.samples_emitted, 2);
    let r = &stats.rejects;
    assert_one_bad_row_of_each_reason(r);
    let detail = |reason| {
        r.examples
            .iter()
            .find(|e| e.reason == reason)
            .map(|e| e.detail.clone())
            .unwrap()
    };
    assert!(detail(RejectReason::NonNumeric).contains("speed"));
    assert!(detail(RejectReason::OutOfRange).contains("gear `7.5`"));
    assert!(detail(RejectReason::TimestampBackwards).contains("2025-05-30T08:15:39.000Z"));
    assert!(detail(RejectReason::ShortRow).contains("timestamp is column 6"));
}

// ---------------------------------------------------------------- lap boundaries

#[test]
fn lap_boundaries_layout_without_value() {
    let lb = read_lap_boundaries(&fixture("R1_barber_lap_end.csv")[..]).unwrap();
    assert!(!lb.has_value_column);
    assert_eq!(lb.rows_read, 7);
    assert_eq!(lb.rejects.count(RejectReason::Duplicate), 1);
    assert_eq!(lb.laps_repaired, 1);
    let c17 = &lb.cars["17"];
    assert_eq!(c17.iter().map(|e| e.lap).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(c17[2].raw_lap, Some(32768));
    assert!(c17[2].repaired);
    assert!(close(c17[0].t_s, unix("2025-06-01T14:01:53.548Z")));
    let iv = lb.intervals("17");
    assert_eq!(iv.len(), 3);
    let times: Vec<f64> = iv.iter().map(|i| i.lap_time_s).collect();
    for (got, want) in times.iter().zip([128.412, 128.34, 128.2]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    assert_eq!((iv[1].from_lap, iv[1].to_lap), (5, 6));
    // The retired car has fewer laps.
    let iv2 = lb.intervals("2");
    assert_eq!(iv2.len(), 1);
    assert!((iv2[0].lap_time_s - 130.5).abs() < 1e-6);
    assert!(lb.intervals("99").is_empty());
}

#[test]
fn lap_boundaries_quoted_layout_with_value() {
    let lb = read_lap_boundaries(&fixture("COTA_lap_time_R1.csv")[..]).unwrap();
    assert!(lb.has_value_column);
    assert_eq!(lb.rows_read, 6);
    assert_eq!(lb.rejects.count(RejectReason::BadTimestamp), 1);
    assert_eq!(lb.rejects.examples[0].line, 7);
    let c17 = &lb.cars["17"];
    assert_eq!(c17.iter().map(|e| e.lap).collect::<Vec<_>>(), [4, 5, 6]);
    assert!(
        c17[0].repaired,
        "32768 before the first good lap: counted back"
    );
    assert_eq!(
        c17.iter().map(|e| e.value).collect::<Vec<_>>(),
        [Some(123456.0), Some(123457.0), None]
    );
    let iv = lb.intervals("021");
    assert_eq!(iv.len(), 1);
    assert!((iv[0].lap_time_s - 129.25).abs() < 1e-6);
    assert!(!lb.cars.contains_key("21"), "021 stays 021");
}

#[test]
fn lap_boundaries_missing_columns() {
    let e = read_lap_boundaries(&b"vehicle_id,lap,meta_time\nGR86-004-17,1,x\n"[..]).unwrap_err();
    match e {
        Error::MissingColumns { missing, .. } => assert_eq!(missing, ["timestamp"]),
        other => panic!("{other}"),
    }
}

// ---------------------------------------------------------------- official timing

#[test]
fn official_timing_with_sectors() {
    let t = read_official_timing(
        &fixture("23_AnalysisEnduranceWithSections_ Race 1_Anonymized.CSV")[..],
    )
    .unwrap();
    assert_eq!(t.rows_read, 9);
    assert_eq!(t.records.len(), 7);
    assert_eq!(t.rejects.count(RejectReason::BadLap), 1);
    assert_eq!(t.rejects.count(RejectReason::BadTime), 1);
    assert_eq!(
        t.rejects
            .examples
            .iter()
            .map(|e| e.line)
            .collect::<Vec<_>>(),
        [9, 10]
    );

    let l = &t.records[0];
    assert_eq!(l.car_number, "21");
    assert_eq!(l.driver_number, Some(1));
    assert_eq!(l.lap, 1);
    assert!(close(l.lap_time_s, 128.412));
    assert_close(l.sector_times_s[0], Some(41.02), "s1");
    assert_close(l.sector_times_s[1], Some(47.311), "s2");
    assert_close(l.sector_times_s[2], Some(40.081), "s3");
    assert!(!l.pit_in);
    assert_eq!(l.pit_time_s, None);
    assert_eq!(l.flag, Flag::Green);
    assert_close(l.elapsed_s, Some(130.006), "elapsed");
    assert_eq!(l.kph, Some(112.4));
    assert_eq!(l.top_speed_kmh, Some(171.3));
    assert_eq!(l.class.as_deref(), Some("Am"));
    assert_eq!(l.driver_name.as_deref(), Some("Jane Doe"));
    assert_eq!(l.team.as_deref(), Some("Team A"));
    assert_eq!(l.hour.as_deref(), Some("14:04:01.960"));

    // Pit lap: sectors from `m:ss.fff` text, `h:mm:ss.fff` elapsed and pit time.
    let p = t
        .records
        .iter()
        .find(|l| l.car_number == "21" && l.lap == 3)
        .unwrap();
    assert!(p.pit_in);
    assert_close(p.pit_time_s, Some(62.345), "pit");
    assert!(close(p.lap_time_s, 181.5));
    assert_close(p.sector_times_s[0], Some(41.25), "s1");
    assert_close(p.sector_times_s[1], Some(60.0), "s2");
    assert_close(p.sector_times_s[2], Some(80.25), "s3");
    assert_close(p.elapsed_s, Some(3610.906), "elapsed h:mm:ss");

    // 021 and 21 are two cars; 7 retired after one lap.
    let laps = |n: &str| t.records.iter().filter(|l| l.car_number == n).count();
    assert_eq!((laps("21"), laps("021"), laps("7")), (3, 3, 1));
    let fcy = t.records.iter().filter(|l| l.flag == Flag::Fcy).count();
    assert_eq!(fcy, 2);
    let last = t
        .records
        .iter()
        .find(|l| l.car_number == "021" && l.lap == 3)
        .unwrap();
    assert_eq!(last.flag, Flag::Finish);
    assert_eq!(last.driver_name.as_deref(), Some("John Roe"));
    let seven = t.records.iter().find(|l| l.car_number == "7").unwrap();
    assert_eq!(seven.driver_name, None);
    assert_eq!(seven.team, None);
}

#[test]
fn official_timing_missing_columns() {
    let e =
        read_official_timing(&b"NUMBER; DRIVER_NUMBER; LAP_TIME\n1;1;2:00.000\n"[..]).unwrap_err();
    match &e {
        Error::MissingColumns { kind, missing, .. } => {
            assert_eq!(*kind, FileKind::OfficialTiming);
            assert_eq!(missing, &["LAP_NUMBER"]);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("LAP_NUMBER"));
}

// ---------------------------------------------------------------- results, best laps, weather

#[test]
fn results_file() {
    let t = read_results(&fixture("03_Results GR Cup Race 1 Official_Anonymized.CSV")[..]).unwrap();
    assert_eq!(t.rejects.total(), 0);
    assert_eq!(t.records.len(), 3);
    let r = &t.records;
    assert_eq!(r[0].position, Some(1));
    assert_eq!(r[0].car_number, "021");
    assert_eq!(r[0].status.as_deref(), Some("Classified"));
    assert_eq!(r[0].laps, Some(3));
    assert_close(r[0].total_time_s, Some(413.82), "total");
    assert_eq!(r[0].gap_first, None);
    assert_eq!(r[0].fastest_lap, Some(3));
    assert_close(r[0].fastest_lap_time_s, Some(128.7), "fl");
    assert_eq!(r[0].fastest_lap_kph, Some(112.7));
    assert_eq!(r[0].class.as_deref(), Some("Pro"));
    assert_eq!(r[1].car_number, "21");
    match r[1].gap_first {
        Some(Gap::Time(g)) => assert!(close(g, 7.592)),
        other => panic!("{other:?}"),
    }
    assert_eq!(r[2].car_number, "7");
    assert_eq!(r[2].status.as_deref(), Some("DNF"));
    assert_eq!(r[2].laps, Some(1));
    assert_eq!(r[2].gap_first, Some(Gap::Laps(2)));
}

#[test]
fn best_laps_file() {
    let t =
        read_best_laps(&fixture("99_Best 10 Laps By Driver_Race 1_Anonymized.CSV")[..]).unwrap();
    assert_eq!(t.rejects.total(), 0);
    let b = &t.records[0];
    assert_eq!(b.car_number, "021");
    assert_eq!(b.vehicle.as_deref(), Some("Toyota GR86"));
    assert_eq!(b.total_driver_laps, Some(3));
    assert_eq!(
        b.best.iter().map(|l| (l.rank, l.lap)).collect::<Vec<_>>(),
        [(1, Some(3)), (2, Some(1)), (3, Some(2))]
    );
    assert!(close(b.best[0].lap_time_s, 128.7));
    assert!(close(b.best[2].lap_time_s, 164.9));
    assert_eq!(t.records[2].car_number, "7");
    assert_eq!(t.records[2].best.len(), 1);
}

#[test]
fn weather_file_track_temp_zero_is_missing() {
    let t = read_weather(&fixture("26_Weather_Race 1_Anonymized.CSV")[..]).unwrap();
    assert_eq!(t.records.len(), 2);
    let w = &t.records[0];
    assert_eq!(w.time_utc_s, Some(1748786400.0));
    assert_eq!(w.time_utc.as_deref(), Some("6/1/2025 2:00:00 PM"));
    assert_eq!(w.air_temp_c, Some(29.4));
    assert_eq!(w.track_temp_c, None);
    assert_eq!(w.humidity_pct, Some(55.2));
    assert_eq!(w.pressure, Some(1001.3));
    assert_eq!(w.wind_speed, Some(7.2));
    assert_eq!(w.wind_direction_deg, Some(180.0));
    assert_eq!(w.rain, Some(0.0));
    assert_eq!(t.records[1].track_temp_c, Some(41.8));
}

#[test]
fn small_readers_reject_garbage_and_empty() {
    let garbage: Vec<u8> = (0..2048u32).map(|i| (i * 7919 % 256) as u8).collect();
    assert!(matches!(
        read_weather(&garbage[..]),
        Err(Error::NotText { .. })
    ));
    assert!(matches!(read_results(&b""[..]), Err(Error::Empty)));
    assert!(matches!(
        read_lap_boundaries(&b"\n\n"[..]),
        Err(Error::Empty)
    ));
    // Non-numeric weather value: row refused, others kept.
    let t = read_weather(&b"AIR_TEMP;TRACK_TEMP\n20;30\nwarm;30\n21;0\n"[..]).unwrap();
    assert_eq!(t.records.len(), 2);
    assert_eq!(t.rejects.count(RejectReason::NonNumeric), 1);
    assert_eq!(t.rejects.examples[0].line, 3);
}

#[test]
fn seed_json_fixture_parses_with_telemetry() {
    let b = fixture("seed.ndjson");
    assert_eq!(detect(&b).unwrap(), FileKind::SeedJson);
    let batch = telemetry::parse_body(&b, false, 0.0).unwrap();
    assert_eq!(batch.samples.len(), 2);
}

#[test]
fn crlf_line_numbers_are_the_files() {
    let t = read_weather(&b"AIR_TEMP;TRACK_TEMP\r\n20;30\r\nwarm;30\r\n21;0\r\n"[..]).unwrap();
    assert_eq!(t.rejects.examples[0].line, 3);
}

#[test]
fn long_pivot_quoted_rows_semicolons_crlf_and_line_numbers() {
    // Quoted data rows (one with the separator inside quotes, one with a newline inside a
    // quoted field), semicolons with stray spaces, CRLF, blank lines.
    let csv =
        "\r\n\"telemetry_name\"; \"telemetry_value\"; \"timestamp\"; \"vehicle_id\"; \"note\"\r\n\
               \"speed\";\"100.5\";\"2025-05-30T08:00:00.000Z\";\"GR86-004-17\";\"a;b\"\r\n\
               \r\n\
               accx_can;0.25;2025-05-30T08:00:00.000Z;GR86-004-17;\"two\r\nlines\"\r\n\
               speed;bad;2025-05-30T08:00:00.100Z;GR86-004-17;x\r\n\
               speed;101;2025-05-30T08:00:00.100Z;GR86-004-17;x";
    let (samples, stats) = pivot_all(csv.as_bytes(), PivotConfig::new("s"));
    assert_eq!(stats.rows_read, 4);
    assert_eq!(samples.len(), 2);
    assert_eq!(&*samples[0].car_id, "17");
    assert_eq!(samples[0].speed_kmh, Some(100.5));
    assert_eq!(samples[0].accx_g, Some(0.25));
    assert_eq!(samples[1].speed_kmh, Some(101.0));
    assert_eq!(stats.rejects.count(RejectReason::NonNumeric), 1);
    assert_eq!(stats.rejects.examples[0].line, 7);
}

#[test]
fn garbage_after_a_valid_header_is_counted_not_fatal() {
    let mut bytes = b"telemetry_name,telemetry_value,timestamp,vehicle_id\n".to_vec();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((x >> 16) as u8);
    }
    let (samples, stats) = pivot_all(&bytes, PivotConfig::new("s"));
    assert!(samples.is_empty());
    assert!(stats.rows_read > 0);
    assert_eq!(
        stats.rows_read,
        stats.rows_rejected() + stats.rows_unknown_channel
    );
}

// ---------------------------------------------------------------- rows in any order

fn sorted_all(bytes: &[u8], chunk_rows: usize) -> (Vec<Sample>, PivotStats) {
    let mut p = SortedLongPivot::new(bytes, PivotConfig::new("s"), chunk_rows, memory_spill())
        .expect("header");
    let mut out = Vec::new();
    let stats = p.for_each_sample(|s| out.push(s)).expect("read");
    (out, stats)
}

fn keyed(samples: Vec<Sample>) -> BTreeMap<(String, i64), Sample> {
    samples
        .into_iter()
        .map(|s| ((s.car_id.to_string(), (s.t_s * 1e3).round() as i64), s))
        .collect()
}

#[test]
fn newest_first_blocks_keep_every_instant_and_match_the_in_order_file() {
    // Each car's rows newest first, one block of ~10 channel rows per instant.
    let (ordered, st_o) = pivot_all(&fixture("long_in_order.csv"), PivotConfig::new("s"));
    assert_eq!(st_o.rows_rejected(), 0);
    assert_eq!(ordered.len(), 80);
    let (sorted, st_s) = sorted_all(&fixture("long_reversed.csv"), 1_000_000);
    assert_eq!(st_s.rows_read, 680);
    assert_eq!(st_s.rows_rejected(), 0, "{:?}", st_s.rejects);
    assert!(st_s.rows_out_of_order > 600, "{}", st_s.rows_out_of_order);
    assert_eq!(st_s.spill_runs, 0);
    assert_eq!(sorted.len(), 80, "every instant kept");
    let (a, b) = (keyed(ordered), keyed(sorted));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, s) in &a {
        assert_eq!(Some(s), b.get(k), "{k:?}");
    }
    // Carry-forward happened in time order: odd instants carry the previous speed.
    let car17: Vec<&Sample> = b.values().filter(|s| &*s.car_id == "17").collect();
    assert_eq!(car17[1].speed_kmh, car17[0].speed_kmh);
    assert_eq!(car17[1].lap_dist_m, Some(3500.0));
    // Lap 32768 repaired, the wrap to lap 6 seen.
    assert!(car17.iter().all(|s| matches!(s.lap, Some(5) | Some(6))));
    // The streaming pivot cannot read this order: that is the bug this reader fixes.
    let (_, st_stream) = pivot_all(&fixture("long_reversed.csv"), PivotConfig::new("s"));
    assert!(st_stream.rejects.count(RejectReason::TimestampBackwards) > 0);
}

#[test]
fn spilled_runs_merge_to_the_same_samples() {
    let mut data = Vec::new();
    grcup::synth::write_long_csv(&mut data, 30_000, 4).unwrap();
    let (ordered, _) = pivot_all(&data, PivotConfig::new("s"));
    // Reverse the data rows in blocks of 10 (not aligned to instants: rows of one instant
    // end up in two blocks, as in the worst real exports).
    let text = String::from_utf8(data).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    let mut blocks: Vec<&[&str]> = lines.chunks(10).collect();
    blocks.reverse();
    let mut shuffled = String::from(header);
    shuffled.push('\n');
    for b in blocks {
        for l in b {
            shuffled.push_str(l);
            shuffled.push('\n');
        }
    }
    let (sorted, st) = sorted_all(shuffled.as_bytes(), 1000);
    assert!(st.spill_runs >= 30, "{}", st.spill_runs);
    assert_eq!(st.rows_rejected(), 0);
    assert_eq!(sorted.len(), ordered.len());
    let (a, b) = (keyed(ordered), keyed(sorted));
    for (k, s) in &a {
        let t = b.get(k).expect("instant kept");
        assert_eq!(
            (s.speed_kmh, s.rpm, s.lap_dist_m, s.accx_g, s.gear),
            (t.speed_kmh, t.rpm, t.lap_dist_m, t.accx_g, t.gear),
            "{k:?}"
        );
    }
}
