//! Micro benchmarks of the per-record work of a pipeline (issue 11, target 7): decoding and
//! encoding a sale, `Sale::validate()`, key and fingerprint derivation, and one ledger
//! checkpoint of 1,000 keys. Run with `cargo bench -p posbridge --bench micro`; figures in
//! `docs/performance.md`. The sales come from the sandbox generator, as in `bench/pipeline.sh`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use posbridge::pipeline::{check_sale, content_fingerprint, idempotency_key};
use posbridge::state::{Checkpoint, Delivered, SqliteStore, StateStore};
use posbridge_plugin_api::model::Sale;
use serde_json::Value;

fn sales() -> Vec<Vec<u8>> {
    posbridge_sandbox::generator::generate_sales(64, 7)
        .iter()
        .map(|s| serde_json::to_vec(s).expect("a sale serializes"))
        .collect()
}

fn per_sale(c: &mut Criterion) {
    let lines = sales();
    let values: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let typed: Vec<Sale> = lines
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let mut g = c.benchmark_group("sale");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("decode_value", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<Value>(l).unwrap());
            }
        })
    });
    g.bench_function("decode_typed", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<Sale>(l).unwrap());
            }
        })
    });
    g.bench_function("encode_typed", |b| {
        b.iter(|| {
            for s in &typed {
                black_box(serde_json::to_vec(s).unwrap());
            }
        })
    });
    g.bench_function("encode_value", |b| {
        b.iter(|| {
            for v in &values {
                black_box(serde_json::to_vec(v).unwrap());
            }
        })
    });
    g.bench_function("validate", |b| {
        b.iter(|| {
            for s in &typed {
                black_box(s.validate());
            }
        })
    });
    g.bench_function("check_sale_from_value", |b| {
        b.iter(|| {
            for v in &values {
                check_sale(black_box(v)).unwrap();
            }
        })
    });
    g.bench_function("idempotency_key", |b| {
        b.iter(|| {
            for v in &values {
                black_box(idempotency_key("generic", "sales", v));
            }
        })
    });
    g.bench_function("content_fingerprint", |b| {
        b.iter(|| {
            for v in &values {
                black_box(content_fingerprint("sales", v));
            }
        })
    });
    g.finish();
}

fn ledger_checkpoint(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let next = std::cell::Cell::new(0u64);
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("checkpoint_1000_keys", |b| {
        b.iter_batched(
            || {
                (0..1000)
                    .map(|_| {
                        next.set(next.get() + 1);
                        Delivered {
                            key: format!("{:032x}", next.get().wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                            stream: "sales".into(),
                            external_id: None,
                            content_hash: Some("0123456789abcdef".into()),
                        }
                    })
                    .collect::<Vec<_>>()
            },
            |delivered| {
                let cursor = serde_json::json!({"file": "sales.ndjson", "offset": next.get()});
                store
                    .commit(
                        "bench",
                        "sales",
                        &Checkpoint {
                            delivered: &delivered,
                            dead_letters: &[],
                            cursor: Some(&cursor),
                        },
                    )
                    .unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, per_sale, ledger_checkpoint);
criterion_main!(benches);
