//! Prediction benchmarks: one lap with explanation, and batch throughput.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use tires::{predict_rows, train, TireLap, TireModel, TireTracker, TrainConfig};

#[path = "../examples/common/mod.rs"]
mod common;

fn setup() -> (TireModel, Vec<TireLap>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/models/tires-default.json"
    );
    let model = match std::fs::read_to_string(path)
        .ok()
        .and_then(|s| TireModel::from_json(&s).ok())
    {
        Some(m) => m,
        None => {
            let rows = common::races(&["Austin", "Spa", "Suzuka", "Monza"], &[1], 16, 8).unwrap();
            train(&rows, &TrainConfig::default(), &mut |_, _| {}).unwrap()
        }
    };
    let rows = common::races(&["Silverstone", "Sepang"], &[777], 20, 10).unwrap();
    (model, rows)
}

fn bench(c: &mut Criterion) {
    let (model, rows) = setup();
    let car = rows[0].car_id.clone();
    let mut laps: Vec<&TireLap> = rows.iter().filter(|r| r.car_id == car).collect();
    laps.sort_by_key(|r| r.lap);
    let row = laps[6].clone();
    let mut warm = TireTracker::new(&model);
    for r in &laps[..6] {
        warm.on_lap(r);
    }
    c.bench_function("one_prediction_with_explanation", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut t| black_box(t.on_lap(black_box(&row))),
            criterion::BatchSize::SmallInput,
        )
    });
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("predict_rows", rows.len()),
        &rows,
        |b, rows| b.iter(|| black_box(predict_rows(&model, rows))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
