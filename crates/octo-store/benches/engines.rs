//! The engine choice, measured: the versions-table layout of octo-store on redb and on fjall,
//! doing what the store does — durable 10k-version transactions (each version plus one
//! reverse-reference entry), as-of point reads on 1M versions, a 100k prefix scan, and a
//! 1k-version history. Figures and the decision are in docs/PERFORMANCE.md.
//!
//! `cargo bench -p octo-store --bench engines`

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fjall::{KeyspaceCreateOptions, PersistMode};
use octo_store::layout::{encode_key, prefix_end, ref_key, split_times, version_key};
use octo_store::Timestamp;
use redb::{ReadableDatabase, TableDefinition};

const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");
const REFS: TableDefinition<&[u8], ()> = TableDefinition::new("refs");

/// One engine under test, reduced to what the store needs of it.
trait Engine {
    fn write(&self, batch: &[(Vec<u8>, Vec<u8>, Vec<u8>)]);
    /// Takes the read snapshot later reads use (the store holds one per request, not per read).
    fn freeze(&mut self);
    fn get_as_of(&self, lo: &[u8], hi: &[u8]) -> Option<usize>;
    fn scan(&self, lo: &[u8], hi: &[u8]) -> usize;
}

struct Redb(redb::Database, Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>);

impl Engine for Redb {
    fn write(&self, batch: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) {
        let tx = self.0.begin_write().unwrap();
        {
            let mut v = tx.open_table(VERSIONS).unwrap();
            let mut r = tx.open_table(REFS).unwrap();
            for (k, val, rk) in batch {
                v.insert(k.as_slice(), val.as_slice()).unwrap();
                r.insert(rk.as_slice(), ()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn freeze(&mut self) {
        self.1 = Some(self.0.begin_read().unwrap().open_table(VERSIONS).unwrap());
    }
    fn get_as_of(&self, lo: &[u8], hi: &[u8]) -> Option<usize> {
        let t = self.1.as_ref().unwrap();
        let mut it = t.range(lo..=hi).unwrap().rev();
        it.next().map(|e| {
            let (k, v) = e.unwrap();
            black_box(split_times(k.value()).unwrap());
            v.value().len()
        })
    }
    fn scan(&self, lo: &[u8], hi: &[u8]) -> usize {
        let t = self.1.as_ref().unwrap();
        t.range(lo..hi).unwrap().map(|e| e.unwrap().1.value().len()).sum()
    }
}

struct Fjall {
    db: fjall::Database,
    versions: fjall::Keyspace,
    refs: fjall::Keyspace,
    snap: Option<fjall::Snapshot>,
}

impl Engine for Fjall {
    fn write(&self, batch: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) {
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        for (k, val, rk) in batch {
            b.insert(&self.versions, k.as_slice(), val.as_slice());
            b.insert(&self.refs, rk.as_slice(), b"".as_slice());
        }
        b.commit().unwrap();
    }
    fn freeze(&mut self) {
        self.snap = Some(self.db.snapshot());
    }
    fn get_as_of(&self, lo: &[u8], hi: &[u8]) -> Option<usize> {
        let snap = self.snap.as_ref().unwrap();
        let mut it = fjall::Readable::range(snap, &self.versions, lo..=hi).rev();
        it.next().map(|g| {
            let (k, v) = g.into_inner().unwrap();
            black_box(split_times(&k).unwrap());
            v.len()
        })
    }
    fn scan(&self, lo: &[u8], hi: &[u8]) -> usize {
        let snap = self.snap.as_ref().unwrap();
        fjall::Readable::range(snap, &self.versions, lo..hi).map(|g| g.into_inner().unwrap().1.len()).sum()
    }
}

fn entry(key: &str, valid: i64, tx: i64, doc: &[u8], r: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut val = Vec::with_capacity(doc.len() + 45);
    val.push(0);
    val.extend_from_slice(&[0u8; 8 + 32]);
    val.extend_from_slice(doc);
    (version_key(key, Timestamp::from_micros(valid), Timestamp::from_micros(tx)), val, ref_key(r, key))
}

fn load_million(e: &dyn Engine) {
    let mut tx = 1i64;
    for v in 0..PORT_VERSIONS {
        for start in (0..PORTS).step_by(BATCH as usize) {
            let batch: Vec<_> = (start..(start + BATCH).min(PORTS))
                .map(|i| entry(&port_key(i), valid_micros(v * 10), tx, &port_doc(i, v), &port_ref(i)))
                .collect();
            e.write(&batch);
            tx += 1;
        }
    }
    for start in (0..HOSTS).step_by(BATCH as usize) {
        let batch: Vec<_> = (start..start + BATCH)
            .map(|i| entry(&host_key(i), valid_micros(0), tx, &host_doc(i), "Network|internet"))
            .collect();
        e.write(&batch);
        tx += 1;
    }
}

fn run(c: &mut Criterion, name: &str, make: &dyn Fn(&std::path::Path) -> Box<dyn Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("engines");
    g.sample_size(15);
    g.measurement_time(Duration::from_secs(8));

    // Ascending keys (a sorted bulk load) and keys scattered over the key space (random
    // addresses): the second is where a copy-on-write B-tree pays and an LSM tree does not.
    for (pattern, scatter) in [("ascending", false), ("scattered", true)] {
        let puts = make(&dir.path().join(format!("puts-{pattern}")));
        let mut next = 0u64;
        g.throughput(Throughput::Elements(BATCH));
        g.bench_function(format!("{name}/put_10k_per_tx/{pattern}"), |b| {
            b.iter_batched(
                || {
                    let batch: Vec<_> = (next..next + BATCH)
                        .map(|i| {
                            let k = if scatter { i.wrapping_mul(0x9E37_79B9_7F4A_7C15) } else { i };
                            entry(
                                &numbered_port_key(k),
                                valid_micros(0),
                                next as i64,
                                &port_doc(i, 0),
                                &numbered_address_key(k),
                            )
                        })
                        .collect();
                    next += BATCH;
                    batch
                },
                |batch| puts.write(&batch),
                BatchSize::PerIteration,
            )
        });
    }

    let mut e = make(&dir.path().join("million"));
    load_million(&*e);
    e.freeze();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("{name}/get_as_of_1m"), |b| {
        b.iter(|| {
            let i = rng.next() % PORTS;
            let v = rng.next() % 40;
            let key = port_key(i);
            let lo = version_key(&key, Timestamp::MIN, Timestamp::MIN);
            let hi = version_key(&key, Timestamp::from_micros(valid_micros(v)), Timestamp::MAX);
            black_box(e.get_as_of(&lo, &hi))
        })
    });
    g.throughput(Throughput::Elements(HOSTS));
    g.bench_function(format!("{name}/scan_100k"), |b| {
        let lo = b"Hostname|".to_vec();
        let hi = prefix_end(&lo).unwrap();
        b.iter(|| black_box(e.scan(&lo, &hi)))
    });
    let busy = "Hostname|internet|busy.example.com";
    let batch: Vec<_> = (0..1000)
        .map(|v| entry(busy, valid_micros(v), 1_000_000 + v as i64, &host_doc(v), "Network|internet"))
        .collect();
    e.write(&batch);
    e.freeze();
    g.throughput(Throughput::Elements(1000));
    g.bench_function(format!("{name}/history_1k"), |b| {
        let mut lo = Vec::new();
        encode_key(&mut lo, busy);
        let hi = prefix_end(&lo).unwrap();
        b.iter(|| black_box(e.scan(&lo, &hi)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    run(c, "redb", &|p| {
        let db = redb::Database::builder().set_cache_size(256 << 20).create(p).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(VERSIONS).unwrap();
        tx.open_table(REFS).unwrap();
        tx.commit().unwrap();
        Box::new(Redb(db, None))
    });
    run(c, "fjall", &|p| {
        let db = fjall::Database::builder(p).cache_size(256 << 20).open().unwrap();
        let versions = db.keyspace("versions", KeyspaceCreateOptions::default).unwrap();
        let refs = db.keyspace("refs", KeyspaceCreateOptions::default).unwrap();
        Box::new(Fjall { db, versions, refs, snap: None })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
