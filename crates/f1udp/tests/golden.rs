//! Golden tests: our decoder against the independent oracle (decode.py, PyPI f1-packets) over
//! every real capture, for the player's car and for each of the 22 car slots.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::process::Command;

fn golden(format: u16) -> Vec<serde_json::Map<String, Value>> {
    let path = format!("{}/tests/golden/{format}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Vec<Value> = serde_json::from_str(&text).unwrap();
    v.into_iter()
        .map(|x| x.as_object().unwrap().clone())
        .collect()
}

fn golden_format(format: u16) {
    let files = capture_files(format);
    let rows = golden(format);
    let bytes: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    // Every capture file is covered by the golden rows: once for the player, 22 times per car.
    for name in bytes.keys() {
        let n = rows.iter().filter(|r| r["file"] == name.as_str()).count();
        assert_eq!(n, 23, "{format}/{name}: {n} golden rows, expected 23");
    }
    let mut fields = 0;
    for r in &rows {
        let name = r["file"].as_str().unwrap();
        let b = bytes
            .get(name)
            .unwrap_or_else(|| panic!("golden row for {name}, which is not in the data folder"));
        fields += check_against(r, b, &format!("{format}/{name} car {}", r["car"]));
    }
    assert!(fields > 2000, "only {fields} fields compared");
}

#[test]
fn golden_2023() {
    golden_format(2023);
}

#[test]
fn golden_2024() {
    golden_format(2024);
}

#[test]
fn golden_2025() {
    golden_format(2025);
}

/// Runs decode.py now (player's car and one other car) and compares; skips only when python3 or
/// f1-packets is unavailable.
#[test]
fn live_oracle_matches() {
    if let Err(why) = python_oracle() {
        println!("skipping live_oracle_matches: {why}");
        return;
    }
    let decode_py = shared_dir().join("tools/f1-game/decode.py");
    for format in [2023u16, 2024, 2025] {
        let files = capture_files(format);
        for car in [None, Some("3")] {
            let mut cmd = Command::new("python3");
            cmd.arg(&decode_py);
            if let Some(c) = car {
                cmd.args(["--car", c]);
            }
            let out = cmd.args(&files).output().expect("run decode.py");
            assert!(
                out.status.success(),
                "decode.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let mut rows = 0;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let r: Value = serde_json::from_str(line).unwrap();
                let r = r.as_object().unwrap();
                let file = r["file"].as_str().unwrap();
                let b = std::fs::read(file).unwrap();
                check_against(r, &b, &format!("live {file} car {:?}", car));
                rows += 1;
            }
            assert_eq!(rows, files.len(), "decode.py printed {rows} rows");
        }
    }
}
