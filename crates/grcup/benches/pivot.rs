//! Long-format pivot throughput on ~1.5 million generated rows held in memory.
//! `CARGO_TARGET_DIR=/work/target-grcup cargo bench -p grcup --bench pivot`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use grcup::{LongPivot, PivotConfig};
use std::hint::black_box;

const ROWS: usize = 1_500_000;

fn bench(c: &mut Criterion) {
    let mut data = Vec::with_capacity(ROWS * 130);
    grcup::synth::write_long_csv(&mut data, ROWS, 20).expect("generate");
    let mut g = c.benchmark_group("long_pivot");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(10));
    g.bench_function("1.5M rows, 20 cars", |b| {
        b.iter(|| {
            let mut p = LongPivot::new(data.as_slice(), PivotConfig::new("bench")).expect("header");
            let mut n = 0u64;
            let stats = p
                .for_each_sample(|s| {
                    n += 1;
                    black_box(&s);
                })
                .expect("pivot");
            assert_eq!(stats.rows_read, ROWS as u64);
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
