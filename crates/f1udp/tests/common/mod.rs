//! Shared helpers for the integration tests.
#![allow(dead_code)]

use f1udp::{decode, Packet};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `/work/shared` (the workspace's sibling `shared/`), located from this crate's manifest.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The real captures; panics with a clear message if missing (the golden test must not pass
/// silently).
pub fn data_dir() -> PathBuf {
    let d = shared_dir().join("data/f1-udp");
    assert!(
        d.is_dir(),
        "F1 captures not found at {} (expected <workspace>/../shared/data/f1-udp)",
        d.display()
    );
    d
}

/// Every `.bin` file of one format's folder, sorted by name.
pub fn capture_files(format: u16) -> Vec<PathBuf> {
    let dir = data_dir().join(format.to_string());
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no .bin files in {}", dir.display());
    v
}

/// Python 3 with the f1-packets releases installed, or the reason they are not usable.
pub fn python_oracle() -> Result<(), String> {
    match Command::new("python3").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(_) => return Err("python3 --version failed".into()),
        Err(e) => return Err(format!("python3 not runnable: {e}")),
    }
    let base = std::env::var_os("F1PK_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("f1-packets")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/f1-packets")))
        .ok_or("no HOME to find f1-packets")?;
    for v in ["2023.1.0", "2024.1.0", "2025.1.1"] {
        let p = base.join(v).join("f1/packets.py");
        if !p.is_file() {
            return Err(format!(
                "f1-packets {v} not installed at {} (run shared/tools/f1-game/install.sh)",
                p.display()
            ));
        }
    }
    Ok(())
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What our decoder reads from `bytes`, in decode.py's JSON shape, for car `car` (player's if
/// `None`). Floats rounded to 3 decimals as decode.py does.
pub fn our_view(bytes: &[u8], car: Option<usize>) -> Map<String, Value> {
    let p = decode(bytes).unwrap_or_else(|e| panic!("decode failed: {e}"));
    let h = *p.header();
    let car = car.unwrap_or(usize::from(h.player_car_index));
    let mut o = Map::new();
    o.insert("bytes".into(), json!(bytes.len()));
    o.insert("format".into(), json!(h.packet_format));
    o.insert("packet_id".into(), json!(h.packet_id));
    o.insert("game_year".into(), json!(h.game_year));
    o.insert("session_uid".into(), json!(h.session_uid.to_string()));
    o.insert(
        "session_time".into(),
        json!(r3(f64::from(h.session_time_s))),
    );
    o.insert("frame".into(), json!(h.frame_identifier));
    o.insert("player_car_index".into(), json!(h.player_car_index));
    o.insert("car".into(), json!(car));
    match p {
        Packet::Session(s) => {
            o.insert("track_id".into(), json!(s.track_id));
            o.insert("session_type".into(), json!(s.session_type));
            o.insert("total_laps".into(), json!(s.total_laps));
            o.insert("track_length_m".into(), json!(s.track_length_m));
            o.insert("air_temp_c".into(), json!(s.air_temp_c));
            o.insert("track_temp_c".into(), json!(s.track_temp_c));
            o.insert("weather".into(), json!(s.weather));
        }
        Packet::LapData(l) => {
            let l = l.cars[car];
            o.insert("lap".into(), json!(l.lap));
            o.insert("position".into(), json!(l.position));
            o.insert("last_lap_ms".into(), json!(l.last_lap_ms));
            o.insert("current_lap_ms".into(), json!(l.current_lap_ms));
            o.insert(
                "lap_distance_m".into(),
                json!(r3(f64::from(l.lap_distance_m))),
            );
            o.insert("pit_status".into(), json!(l.pit_status));
            o.insert("num_pit_stops".into(), json!(l.num_pit_stops));
            o.insert("sector".into(), json!(l.sector));
        }
        Packet::Event(e) => {
            o.insert("event".into(), json!(e.code_str()));
        }
        Packet::CarTelemetry(t) => {
            let c = t.cars[car];
            o.insert("speed_kmh".into(), json!(c.speed_kmh));
            o.insert("throttle".into(), json!(r3(f64::from(c.throttle))));
            o.insert("brake".into(), json!(r3(f64::from(c.brake))));
            o.insert("steer".into(), json!(r3(f64::from(c.steer))));
            o.insert("gear".into(), json!(c.gear));
            o.insert("rpm".into(), json!(c.engine_rpm));
            o.insert("tyre_surface_temp_c".into(), json!(c.tyre_surface_temp_c));
            o.insert("brake_temp_c".into(), json!(c.brake_temp_c));
        }
        Packet::CarStatus(s) => {
            let c = s.cars[car];
            o.insert("fuel_kg".into(), json!(r3(f64::from(c.fuel_kg))));
            o.insert("actual_compound".into(), json!(c.actual_compound));
            o.insert("visual_compound".into(), json!(c.visual_compound));
            o.insert("tyre_age_laps".into(), json!(c.tyre_age_laps));
        }
        Packet::CarDamage(d) => {
            let w: Vec<f64> = d.cars[car]
                .tyre_wear_pct
                .iter()
                .map(|&x| r3(f64::from(x)))
                .collect();
            o.insert("tyre_wear_pct_rl_rr_fl_fr".into(), json!(w));
        }
        Packet::Motion(_) | Packet::Participants(_) | Packet::Other { .. } => {}
    }
    o
}

/// Compares two JSON values: numbers within 0.0011 (both sides are rounded to 3 decimals, by
/// Python and by us, which may differ by one unit in the last place on ties), else equal.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 0.0011
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

/// Checks every key of a golden object (except `file`) against our view of the file.
/// Returns the number of fields compared.
pub fn check_against(golden: &Map<String, Value>, bytes: &[u8], what: &str) -> usize {
    let car = golden["car"].as_u64().map(|c| c as usize);
    let ours = our_view(bytes, car);
    let mut n = 0;
    for (k, v) in golden {
        if k == "file" {
            continue;
        }
        let mine = ours
            .get(k)
            .unwrap_or_else(|| panic!("{what}: our decoder has no field {k} (golden {v})"));
        assert!(same(mine, v), "{what}: field {k}: ours {mine}, oracle {v}");
        n += 1;
    }
    // Every field we produce must be one the oracle printed too (catches a missed dispatch).
    for k in ours.keys() {
        assert!(golden.contains_key(k), "{what}: oracle has no field {k}");
    }
    n
}

/// Builds synthetic datagrams with the exact sizes and offsets of f1-packets (written
/// independently of the crate's decoder constants).
pub struct Synth {
    pub format: u16,
    pub uid: u64,
}

impl Synth {
    pub fn size(&self, id: u8) -> usize {
        match (self.format, id) {
            (_, 0) => 1349,
            (2023, 1) => 644,
            (_, 1) => 753,
            (2023, 2) => 1131,
            (_, 2) => 1285,
            (2023, 4) => 1306,
            (2024, 4) => 1350,
            (2025, 4) => 1284,
            (_, 6) => 1352,
            (_, 7) => 1239,
            (2025, 10) => 1041,
            (_, 10) => 953,
            _ => panic!("no synthetic size for {id}"),
        }
    }

    pub fn packet(&self, id: u8, t_s: f32) -> Vec<u8> {
        let mut b = vec![0u8; self.size(id)];
        b[0..2].copy_from_slice(&self.format.to_le_bytes());
        b[2] = 25;
        b[3] = 1;
        b[5] = 1;
        b[6] = id;
        b[7..15].copy_from_slice(&self.uid.to_le_bytes());
        b[15..19].copy_from_slice(&t_s.to_le_bytes());
        b[28] = 255;
        b
    }

    fn lap_base(&self, car: usize) -> (usize, usize) {
        let (stride, shift) = if self.format == 2023 {
            (50, 0)
        } else {
            (57, 2)
        };
        (29 + car * stride, shift)
    }

    /// Lap Data fields of one car: lap, distance, position, pit status, result status.
    #[allow(clippy::too_many_arguments)]
    pub fn set_lap(
        &self,
        b: &mut [u8],
        car: usize,
        lap: u8,
        dist_m: f32,
        pos: u8,
        pit: u8,
        result: u8,
    ) {
        let (o, s) = self.lap_base(car);
        b[o + 18 + s..o + 22 + s].copy_from_slice(&dist_m.to_le_bytes());
        b[o + 30 + s] = pos;
        b[o + 31 + s] = lap;
        b[o + 32 + s] = pit;
        b[o + 43 + s] = result;
    }

    /// Car Telemetry fields of one car.
    #[allow(clippy::too_many_arguments)]
    pub fn set_tel(
        &self,
        b: &mut [u8],
        car: usize,
        speed: u16,
        throttle: f32,
        steer: f32,
        brake: f32,
        gear: i8,
        rpm: u16,
        surface_c: [u8; 4],
    ) {
        let o = 29 + car * 60;
        b[o..o + 2].copy_from_slice(&speed.to_le_bytes());
        b[o + 2..o + 6].copy_from_slice(&throttle.to_le_bytes());
        b[o + 6..o + 10].copy_from_slice(&steer.to_le_bytes());
        b[o + 10..o + 14].copy_from_slice(&brake.to_le_bytes());
        b[o + 15] = gear as u8;
        b[o + 16..o + 18].copy_from_slice(&rpm.to_le_bytes());
        b[o + 30..o + 34].copy_from_slice(&surface_c);
    }

    /// Car Status fields of one car.
    pub fn set_status(&self, b: &mut [u8], car: usize, fuel_kg: f32, visual: u8, age: u8) {
        let o = 29 + car * 55;
        b[o + 5..o + 9].copy_from_slice(&fuel_kg.to_le_bytes());
        b[o + 26] = visual;
        b[o + 27] = age;
    }

    /// Tyre wear of one car, wire order RL, RR, FL, FR.
    pub fn set_wear(&self, b: &mut [u8], car: usize, wear: [f32; 4]) {
        let stride = if self.format == 2025 { 46 } else { 42 };
        let o = 29 + car * stride;
        for (k, w) in wear.iter().enumerate() {
            b[o + 4 * k..o + 4 * k + 4].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Participants: active count, and a race number and name per car.
    pub fn set_participants(&self, b: &mut [u8], active: u8, cars: &[(u8, &str)]) {
        let stride = match self.format {
            2023 => 58,
            2024 => 60,
            _ => 57,
        };
        b[29] = active;
        for (k, (num, name)) in cars.iter().enumerate() {
            let o = 30 + k * stride;
            b[o + 5] = *num;
            b[o + 7..o + 7 + name.len()].copy_from_slice(name.as_bytes());
        }
    }

    /// Session: track id, temperatures.
    pub fn set_session(&self, b: &mut [u8], track_id: i8, air_c: i8, track_c: i8) {
        b[30] = track_c as u8;
        b[31] = air_c as u8;
        b[36] = track_id as u8;
    }
}
