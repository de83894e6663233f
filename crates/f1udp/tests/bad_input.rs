//! Bad input: truncations, foreign formats, wrong ids and sizes, random garbage. Every case is an
//! error with the right reason, never a panic.

mod common;

use common::*;
use f1udp::{decode, looks_like_f1, Assembler, DecodeError, Format, Packet};

/// A small seeded PRNG (xorshift64*), so the test needs no dependency and is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            *x = self.next() as u8;
        }
    }
}

fn header(format: u16, id: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[0..2].copy_from_slice(&format.to_le_bytes());
    b[2] = (format % 100) as u8;
    b[5] = 1;
    b[6] = id;
    b[7..15].copy_from_slice(&42u64.to_le_bytes());
    b[15..19].copy_from_slice(&1.5f32.to_le_bytes());
    b
}

#[test]
fn every_truncation_of_every_capture_is_rejected() {
    let mut checked = 0;
    for format in [2023u16, 2024, 2025] {
        for path in capture_files(format) {
            let b = std::fs::read(&path).unwrap();
            assert!(decode(&b).is_ok(), "{} must decode", path.display());
            for len in 0..b.len() {
                let err = decode(&b[..len]).expect_err("truncated datagram accepted");
                let want = if len < 29 { "too_short" } else { "wrong_size" };
                assert_eq!(err.reason(), want, "{} cut to {len}", path.display());
                if len >= 29 {
                    assert!(matches!(
                        err,
                        DecodeError::WrongSize { expected, actual, .. }
                            if expected == b.len() && actual == len
                    ));
                }
                checked += 1;
            }
            // One byte too many is as wrong as one too few.
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(decode(&longer).unwrap_err().reason(), "wrong_size");
        }
    }
    assert!(checked > 35_000, "{checked}");
}

#[test]
fn format_2026_with_24_cars_is_unknown_format() {
    // Lap Data, Car Telemetry, Car Damage of a 24-car layout, and also the 2025 sizes.
    for (id, len) in [
        (2u8, 29 + 24 * 57 + 2),
        (6, 29 + 24 * 60 + 3),
        (10, 29 + 24 * 46),
        (2, 1285),
        (6, 1352),
        (3, 45),
    ] {
        let err = decode(&header(2026, id, len)).unwrap_err();
        assert_eq!(err, DecodeError::UnknownFormat { format: 2026 });
        assert_eq!(err.reason(), "unknown_format");
        assert!(err.to_string().contains("2026"));
        assert!(looks_like_f1(&header(2026, id, len)));
    }
}

#[test]
fn f1_22_format_is_unknown_format() {
    // F1 22 sizes: Motion 1464, Lap Data 972, Car Telemetry 1347.
    for (id, len) in [(0u8, 1464), (2, 972), (6, 1347), (6, 1352)] {
        let err = decode(&header(2022, id, len)).unwrap_err();
        assert_eq!(err.reason(), "unknown_format");
    }
}

#[test]
fn unknown_ids_and_sizes_of_other_formats() {
    assert_eq!(
        decode(&header(2023, 14, 101)).unwrap_err(),
        DecodeError::UnknownPacketId {
            format: 2023,
            id: 14
        }
    );
    assert_eq!(
        decode(&header(2024, 15, 1131)).unwrap_err().reason(),
        "unknown_packet_id"
    );
    assert_eq!(
        decode(&header(2025, 16, 100)).unwrap_err().reason(),
        "unknown_packet_id"
    );
    assert_eq!(
        decode(&header(2025, 255, 29)).unwrap_err().reason(),
        "unknown_packet_id"
    );
    // The 2024 Lap Data size under a 2023 header and vice versa; 2024 damage size in 2025.
    assert_eq!(
        decode(&header(2023, 2, 1285)).unwrap_err().reason(),
        "wrong_size"
    );
    assert_eq!(
        decode(&header(2024, 2, 1131)).unwrap_err().reason(),
        "wrong_size"
    );
    assert_eq!(
        decode(&header(2025, 10, 953)).unwrap_err().reason(),
        "wrong_size"
    );
    assert_eq!(
        decode(&header(2023, 10, 1041)).unwrap_err().reason(),
        "wrong_size"
    );
}

#[test]
fn game_year_is_never_validated() {
    for year in [0u8, 23, 25, 99, 255] {
        let mut b = header(2025, 6, 1352);
        b[2] = year;
        assert!(matches!(decode(&b), Ok(Packet::CarTelemetry(_))));
    }
}

#[test]
fn all_ids_of_known_formats_decode_at_their_size() {
    for f in [Format::F2023, Format::F2024, Format::F2025] {
        for id in 0..=255u8 {
            match f.packet_size(id) {
                Some(len) => {
                    let p = decode(&header(f.year(), id, len)).unwrap();
                    assert_eq!(p.header().packet_id, id);
                    let other = matches!(p, Packet::Other { id: i, .. } if i == id);
                    assert_eq!(other, ![0, 1, 2, 3, 4, 6, 7, 10].contains(&id), "id {id}");
                }
                None => assert_eq!(
                    decode(&header(f.year(), id, 1352)).unwrap_err().reason(),
                    "unknown_packet_id"
                ),
            }
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(0x5EED_F1F1_2025_0001);
    let mut reasons = std::collections::BTreeMap::new();
    for _ in 0..5000 {
        let mut b = vec![0u8; rng.below(1600)];
        rng.fill(&mut b);
        match decode(&b) {
            Ok(_) => {}
            Err(e) => *reasons.entry(e.reason()).or_insert(0) += 1,
        }
        let _ = looks_like_f1(&b);
    }
    assert!(
        reasons["too_short"] > 0 && reasons["unknown_format"] > 4000,
        "{reasons:?}"
    );
}

#[test]
fn random_bodies_of_valid_packets_give_only_valid_samples() {
    // Valid headers and sizes with random bodies: decodes, and the assembler emits only samples
    // that telemetry::validate accepts.
    let mut rng = Rng(0xBAD_CAFE);
    let mut asm = Assembler::new();
    let mut emitted = 0;
    for round in 0..3000 {
        let f = [Format::F2023, Format::F2024, Format::F2025][rng.below(3)];
        let id = [1u8, 2, 4, 6, 7, 10, 0][rng.below(7)];
        let len = f.packet_size(id).unwrap();
        let mut b = vec![0u8; len];
        rng.fill(&mut b);
        b[0..2].copy_from_slice(&f.year().to_le_bytes());
        b[6] = id;
        b[7..15].copy_from_slice(&(round as u64 % 3).to_le_bytes());
        if rng.below(2) == 0 {
            b[15..19].copy_from_slice(&(round as f32).to_le_bytes());
        }
        let samples = asm.push(&b).expect("valid size must decode");
        for s in &samples {
            let r = telemetry::validate(s);
            assert!(r.is_empty(), "{r:?} in {s:?}");
        }
        emitted += samples.len();
    }
    for s in asm.flush() {
        assert!(telemetry::validate(&s).is_empty());
    }
    assert!(emitted > 0);
}
