//! Store benchmarks (figures in docs/PERFORMANCE.md):
//! bulk puts in 10k transactions, as-of point reads on 1M versions, a type scan of 100k objects,
//! and the history of a key with 1k versions.
//!
//! `cargo bench -p octo-store --bench store`

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use octo_store::{AsOf, RedbStore, Store, StoreOptions, Timestamp, ValidTime};

/// The allocator the `octograph` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load_million(store: &RedbStore) {
    for v in 0..PORT_VERSIONS {
        for chunk in (0..PORTS).collect::<Vec<_>>().chunks(BATCH as usize) {
            let mut tx = store.begin().unwrap();
            for &i in chunk {
                tx.put(
                    &port_key(i),
                    &port_doc(i, v),
                    &[port_ref(i)],
                    ValidTime::from(Timestamp::from_micros(valid_micros(v * 10))),
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
    }
    for chunk in (0..HOSTS).collect::<Vec<_>>().chunks(BATCH as usize) {
        let mut tx = store.begin().unwrap();
        for &i in chunk {
            tx.put(
                &host_key(i),
                &host_doc(i),
                &["Network|internet".to_owned()],
                ValidTime::from(Timestamp::from_micros(valid_micros(0))),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();

    // Bulk puts: one durable transaction of 10k new versions per iteration, into a store that
    // grows with every iteration. Two key patterns bound what a B-tree does: keys that sort after
    // everything stored (a sorted bulk load) and keys scattered over the whole key space (a scan
    // of random addresses), where nearly every insert copy-on-writes a different leaf page.
    for (pattern, scatter) in [("ascending", false), ("scattered", true)] {
        let store =
            RedbStore::open(&dir.path().join(format!("puts-{pattern}.redb")), &StoreOptions::default()).unwrap();
        let mut g = c.benchmark_group("store");
        g.throughput(Throughput::Elements(BATCH));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(if scatter { 20 } else { 10 }));
        let mut next = 0u64;
        g.bench_function(format!("put_10k_per_tx/{pattern}"), |b| {
            b.iter_batched(
                || {
                    let keys: Vec<(String, Vec<u8>, Vec<String>)> = (next..next + BATCH)
                        .map(|i| {
                            let k = if scatter { i.wrapping_mul(0x9E37_79B9_7F4A_7C15) } else { i };
                            (numbered_port_key(k), port_doc(i, 0), vec![numbered_address_key(k)])
                        })
                        .collect();
                    next += BATCH;
                    keys
                },
                |keys| {
                    let mut tx = store.begin().unwrap();
                    for (k, d, r) in &keys {
                        tx.put(k, d, r, ValidTime::now()).unwrap();
                    }
                    tx.commit().unwrap()
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }

    let store = RedbStore::open(&dir.path().join("million.redb"), &StoreOptions::default()).unwrap();
    load_million(&store);
    let snap = store.snapshot().unwrap();
    let mut g = c.benchmark_group("store_1m_versions");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    g.bench_function("get_as_of", |b| {
        b.iter(|| {
            let i = rng.next() % PORTS;
            let v = rng.next() % 40;
            black_box(snap.get(&port_key(i), AsOf::valid(Timestamp::from_micros(valid_micros(v)))).unwrap())
        })
    });
    // The same read at an older transaction time: versions newer than it are skipped.
    let first_tx =
        Timestamp::from_micros(store.snapshot().unwrap().history(&port_key(0)).unwrap()[0].tx_time.as_micros());
    g.bench_function("get_as_of_old_tx_time", |b| {
        b.iter(|| {
            let i = rng.next() % PORTS;
            black_box(snap.get(&port_key(i), AsOf::at(Timestamp::MAX, first_tx)).unwrap())
        })
    });

    g.sample_size(20);
    g.throughput(Throughput::Elements(HOSTS));
    g.bench_function("scan_type_100k", |b| {
        b.iter(|| {
            let mut n = 0u64;
            snap.scan_type("Hostname", AsOf::now(), &mut |v| {
                n += v.doc.len() as u64;
                true
            })
            .unwrap();
            black_box(n)
        })
    });
    g.finish();

    // History of one key with 1k versions.
    let key = "Hostname|internet|busy.example.com";
    let mut tx = store.begin().unwrap();
    for v in 0..1000u64 {
        tx.put(key, &host_doc(v), &[], ValidTime::from(Timestamp::from_micros(valid_micros(v)))).unwrap();
    }
    tx.commit().unwrap();
    let snap = store.snapshot().unwrap();
    let mut g = c.benchmark_group("store_history");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("history_1k_versions", |b| b.iter(|| black_box(snap.history(key).unwrap().len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
