//! Decode and Assembler throughput over a realistic mix of real 2025 captures: per frame Lap
//! Data, Car Telemetry and Car Status; Session every 30th frame, Car Damage every 6th,
//! Participants every 300th (the game's and stream.py's rates at 60 Hz).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-f1udp cargo bench -p f1udp -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use f1udp::{decode, Assembler};
use std::hint::black_box;
use std::path::Path;

fn load(format: u16, id: u8) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../../shared/data/f1-udp/{format}/packet-{id}.bin"
    ));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// 600 frames (10 s at 60 Hz) of datagrams, session time advancing by 1/60 s per frame.
fn mix(format: u16) -> Vec<Vec<u8>> {
    let (lap, tel, sta, ses, dmg, par) = (
        load(format, 2),
        load(format, 6),
        load(format, 7),
        load(format, 1),
        load(format, 10),
        load(format, 4),
    );
    let mut out = Vec::new();
    for frame in 0..600u32 {
        let mut put = |b: &Vec<u8>| {
            let mut b = b.clone();
            b[15..19].copy_from_slice(&(frame as f32 / 60.0).to_le_bytes());
            b[19..23].copy_from_slice(&frame.to_le_bytes());
            out.push(b);
        };
        if frame % 300 == 0 {
            put(&par);
        }
        if frame % 30 == 0 {
            put(&ses);
        }
        if frame % 6 == 0 {
            put(&dmg);
        }
        put(&lap);
        put(&tel);
        put(&sta);
    }
    out
}

fn bench(c: &mut Criterion) {
    let datagrams = mix(2025);
    let n = datagrams.len() as u64;
    let mut g = c.benchmark_group("f1udp");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode_mix_2025", |b| {
        b.iter(|| {
            for d in &datagrams {
                let _ = black_box(decode(black_box(d)));
            }
        })
    });
    g.bench_function("assembler_mix_2025", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            let mut asm = Assembler::new();
            let mut samples = 0usize;
            for d in &datagrams {
                out.clear();
                let _ = asm.push_into(black_box(d), &mut out);
                samples += out.len();
            }
            black_box(samples)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
