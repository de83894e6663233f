//! Decoder details the golden files do not print: participants, event codes, the JSON test.

mod common;

use common::*;
use f1udp::{decode, looks_like_f1, Packet};

#[test]
fn participants_of_the_2025_race() {
    let b = std::fs::read(data_dir().join("2025/packet-4.bin")).unwrap();
    let Ok(Packet::Participants(p)) = decode(&b) else {
        panic!("not participants")
    };
    assert_eq!(p.num_active_cars, 18);
    assert_eq!(p.cars[19].race_number, 16);
    assert_eq!(p.cars[19].name, "LECLERC");
    assert_eq!(p.cars[0].name, "BEARMAN");
    assert_eq!(p.cars[20].name, "");
    for format in [2023u16, 2024] {
        let b = std::fs::read(data_dir().join(format!("{format}/packet-4.bin"))).unwrap();
        let Ok(Packet::Participants(p)) = decode(&b) else {
            panic!("not participants")
        };
        assert_eq!(p.num_active_cars, 1);
        assert_eq!(
            (p.cars[0].race_number, p.cars[0].name.as_str()),
            (2, "aSx_edoc")
        );
        assert_eq!(p.cars[1].name, "Personal Best");
    }
}

#[test]
fn utf8_names_end_at_nul() {
    let sy = Synth {
        format: 2024,
        uid: 1,
    };
    let mut b = sy.packet(4, 0.0);
    sy.set_participants(&mut b, 2, &[(11, "PÉREZ"), (3, "周冠宇")]);
    // Bytes after the NUL are not part of the name.
    let o = 30 + 60 + 7 + "周冠宇".len() + 1;
    b[o] = b'X';
    let Ok(Packet::Participants(p)) = decode(&b) else {
        panic!()
    };
    assert_eq!(p.cars[0].name, "PÉREZ");
    assert_eq!(p.cars[1].name, "周冠宇");
    // A name filling all 32 bytes without NUL, and invalid UTF-8, do not panic.
    b[30 + 7..30 + 39].fill(0xFF);
    let Ok(Packet::Participants(p)) = decode(&b) else {
        panic!()
    };
    assert_eq!(p.cars[0].name.chars().count(), 32);
}

#[test]
fn event_codes_match_file_names() {
    let mut n = 0;
    for path in capture_files(2025) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(code) = name
            .strip_prefix("packet-3-")
            .and_then(|s| s.strip_suffix(".bin"))
        else {
            continue;
        };
        let Ok(Packet::Event(e)) = decode(&std::fs::read(&path).unwrap()) else {
            panic!("{name}: not an event")
        };
        assert_eq!(e.code_str(), code);
        n += 1;
    }
    assert_eq!(n, 14);
}

#[test]
fn captures_look_like_f1_and_json_does_not() {
    for format in [2023u16, 2024, 2025] {
        for p in capture_files(format) {
            assert!(looks_like_f1(&std::fs::read(p).unwrap()));
        }
    }
    for j in [
        &b"{\"chassis\":\"GR86-002\",\"speed_kmh\":120}"[..],
        b"[{\"a\":1}]",
        b" \t\r\n{\"a\":1}",
        b"\n[",
        b"{",
    ] {
        assert!(!looks_like_f1(j));
    }
}
