//! STIX conversion, the largest part of preparing a change-stream frame (docs/PERFORMANCE.md):
//! an address, a port on it (whose id nests the address's) and a hostname, each with its
//! relationships, cycling over 50k distinct objects.
//!
//! `cargo bench -p octo-stream --bench stix`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use octo_model::CatalogBuilder;
use serde_json::json;

fn bench(c: &mut Criterion) {
    let catalog = CatalogBuilder::with_builtin().build().unwrap();
    // More distinct objects than a thread's id cache holds, so that as in a replay an object's
    // own id is derived afresh while the ones it refers to (its network, its address) recur.
    let docs: Vec<[serde_json::Value; 3]> = (0..50_000u32)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            [
                json!({"object_type": "IPAddressV4", "primary_key": format!("IPAddressV4|internet|{ip}"),
                    "network": "Network|internet", "address": ip}),
                json!({"object_type": "IPPort", "primary_key": format!("IPPort|internet|{ip}|tcp|443"),
                    "address": format!("IPAddressV4|internet|{ip}"), "protocol": "tcp", "port": 443, "state": "open"}),
                json!({"object_type": "Hostname", "primary_key": format!("Hostname|internet|h{i}.example.com"),
                    "network": "Network|internet", "name": format!("h{i}.example.com")}),
            ]
        })
        .collect();
    let mut g = c.benchmark_group("stix");
    g.throughput(Throughput::Elements(3));
    let mut next = 0;
    g.bench_function("to_stix/address_port_hostname", |b| {
        b.iter(|| {
            for d in &docs[next % docs.len()] {
                black_box(octo_stream::stix::to_stix(d, &catalog, "2026-12-02T00:00:00Z"));
            }
            next += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
