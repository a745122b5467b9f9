//! Graph benchmarks on 1M objects (figures in docs/PERFORMANCE.md):
//! an observation of 100 objects, replacing its results with a disjoint set (GC of 100), a tree
//! of depth 2 around an address with 50 ports, a page of 20 with the total count (from the key
//! lists, after an observation, and scanned), the findings page and counts over 4k findings,
//! a scan-level change that reaches 100k objects, and a page of the objects at levels 1–4.
//!
//! `cargo bench -p octo-graph --bench graph`; `GRAPH_BENCH_ADDRESSES=N` loads N addresses
//! instead of 200k (a smaller graph for profiling; the figures quoted are at the default), and
//! `GRAPH_BENCH_CURRENT_CACHE_MB=N` sizes the store's cache of current answers (0 turns it off;
//! default as in a server).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use octo_graph::{Declaration, FindingQuery, Graph, ListQuery, Observation};
use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, RedbStore, StoreOptions};
use serde_json::json;

/// The allocator the `octograph` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_ADDRESSES: u32 = 200_000;
const PORTS_PER_ADDRESS: u32 = 4;
/// The first addresses belong to the netblock: with their ports, 100k objects.
const IN_NETBLOCK: u32 = 20_000;
/// Findings loaded, and the finding types they are spread over.
const FINDINGS: u32 = 4_000;
const FINDING_TYPES: u32 = 10;

/// The number of addresses loaded (each with its ports).
fn addresses() -> u32 {
    std::env::var("GRAPH_BENCH_ADDRESSES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ADDRESSES)
}

fn addr(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn build(c: &Catalog, doc: serde_json::Value) -> Ooi {
    c.ooi_from_json(&doc).unwrap()
}

fn ip(c: &Catalog, i: u32) -> Ooi {
    let mut doc = json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": addr(i)});
    if i < IN_NETBLOCK {
        doc["netblock"] = json!("IPV4NetBlock|internet|internet|10.0.0.0|8");
    }
    build(c, doc)
}

fn port(c: &Catalog, address: &str, p: u32) -> Ooi {
    build(
        c,
        json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|{address}"), "protocol": "tcp", "port": p}),
    )
}

fn observe(g: &Graph, method: &str, source: &str, result: Vec<Ooi>) {
    g.save_observation(Observation {
        method: method.into(),
        source: Reference::from_trusted(source),
        source_method: None,
        result,
        task_id: None,
        valid_time: None,
    })
    .unwrap();
}

fn load(g: &Graph, c: &Catalog) {
    let t = Instant::now();
    for doc in [
        json!({"object_type": "Network", "name": "internet"}),
        json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "10.0.0.0"}),
        json!({"object_type": "IPV4NetBlock", "network": "Network|internet", "start_ip": "IPAddressV4|internet|10.0.0.0", "mask": 8}),
    ] {
        let ooi = build(c, doc);
        g.save_declaration(Declaration { ooi, method: None, task_id: None, valid_time: None, end_valid_time: None })
            .unwrap();
    }
    let per_batch = 10_000 / (1 + PORTS_PER_ADDRESS);
    let total = addresses();
    for (batch, start) in (0..total).step_by(per_batch as usize).enumerate() {
        let mut result = Vec::with_capacity(10_000);
        for i in start..(start + per_batch).min(total) {
            result.push(ip(c, i));
            for p in 0..PORTS_PER_ADDRESS {
                result.push(port(c, &addr(i), 1 + p * 1000));
            }
        }
        observe(g, &format!("load-{batch}"), "Network|internet", result);
    }
    // An address with 50 ports, for the tree.
    let mut result =
        vec![build(c, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "198.51.100.1"}))];
    result.extend((1..=50).map(|p| port(c, "198.51.100.1", p)));
    observe(g, "tree-fixture", "Network|internet", result);
    // The findings page Octopoes' users report at 21 s: 4k findings of ten types on ports.
    let severities = ["critical", "high", "medium", "low", "recommendation"];
    let mut result: Vec<Ooi> = (0..FINDING_TYPES)
        .map(|t| {
            let severity = severities[t as usize % severities.len()];
            build(c, json!({"object_type": "KATFindingType", "id": format!("KAT-BENCH-{t}"), "risk_severity": severity, "risk_score": f64::from(t)}))
        })
        .collect();
    result.extend((0..FINDINGS).map(|i| {
        let port = format!("IPPort|internet|{}|tcp|1", addr(i % total.max(1)));
        build(c, json!({"object_type": "Finding", "ooi": port, "finding_type": format!("KATFindingType|KAT-BENCH-{}", i % FINDING_TYPES)}))
    }));
    observe(g, "findings-fixture", "Network|internet", result);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "loaded {} objects in {secs:.1} s ({:.0} objects/s)",
        total * (1 + PORTS_PER_ADDRESS) + 54 + FINDINGS + FINDING_TYPES,
        f64::from(total * 5) / secs
    );
}

fn bench(cr: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::default();
    if let Some(mb) = std::env::var("GRAPH_BENCH_CURRENT_CACHE_MB").ok().and_then(|v| v.parse::<usize>().ok()) {
        options.current_cache_bytes = mb << 20;
    }
    let store = RedbStore::open(&dir.path().join("graph.redb"), &options).unwrap();
    let c = Catalog::builtin();
    let g = Graph::new(Arc::new(store), c.clone());
    load(&g, &c);
    // The first page of the current state builds the store's key lists (one scan); every later
    // one, the observations' included, runs with them kept up to date, as in a server.
    let page = ListQuery { limit: 20, offset: 500_000, ..Default::default() };
    let t = Instant::now();
    let count = g.list_objects(&page, AsOf::now()).unwrap().count;
    eprintln!("first page of {count} objects (builds the key lists) in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);

    let mut grp = cr.benchmark_group("graph_1m");
    grp.sample_size(30);
    grp.measurement_time(Duration::from_secs(10));

    // A new observation of 100 new ports each time, on addresses outside the netblock so that
    // the scan-level case below reaches the same objects however many iterations ran before it.
    let total = addresses();
    // (A graph too small to have addresses outside the netblock uses them all.)
    let (first, span) = if total > IN_NETBLOCK { (IN_NETBLOCK, total - IN_NETBLOCK) } else { (0, total) };
    // The objects are built (parsed and validated) before the clock starts, as they are for the
    // replace case below: the figure is the graph's work of saving them.
    let mut n = 0u32;
    // The `n`-th new observation's 100 ports: on the next address, on ports not used before.
    let new_ports = |n: u32| -> Vec<Ooi> {
        let address = addr(first + n % span);
        (0..100).map(|p| port(&c, &address, 10_000 + (n / span) * 100 + p)).collect()
    };
    grp.bench_function("observation_of_100_new", |b| {
        b.iter_batched(
            || {
                n += 1;
                (format!("bench-{n}"), new_ports(n))
            },
            |(method, result)| observe(&g, &method, "Network|internet", result),
            BatchSize::SmallInput,
        )
    });

    // One observation flipping between two disjoint sets: 100 created and 100 collected each time.
    let sets: [Vec<Ooi>; 2] = [
        (0..100).map(|p| port(&c, "10.1.0.1", 20_000 + p)).collect(),
        (0..100).map(|p| port(&c, "10.1.0.1", 30_000 + p)).collect(),
    ];
    let mut flip = 0usize;
    grp.bench_function("replace_100_with_disjoint_100", |b| {
        b.iter(|| {
            flip ^= 1;
            observe(&g, "flip", "Network|internet", sets[flip].clone());
        })
    });

    let fixture = Reference::from_trusted("IPAddressV4|internet|198.51.100.1");
    grp.bench_function("tree_depth_2_ip_with_50_ports", |b| {
        b.iter(|| black_box(g.tree(&fixture, 2, &[], AsOf::now()).unwrap().store.len()))
    });

    grp.bench_function("list_objects_page_20_with_count", |b| {
        b.iter(|| black_box(g.list_objects(&page, AsOf::now()).unwrap().count))
    });
    // The same page right after an observation of 100 new ports: the lists catch up first.
    grp.bench_function("list_objects_page_20_with_count_after_an_observation", |b| {
        b.iter_batched(
            || {
                n += 1;
                observe(&g, &format!("bench-{n}"), "Network|internet", new_ports(n));
            },
            |()| black_box(g.list_objects(&page, AsOf::now()).unwrap().count),
            BatchSize::SmallInput,
        )
    });
    // The same, at a valid time a moment before that observation (a client's clock behind the
    // server's): the lists corrected for the observation's keys.
    grp.bench_function("list_objects_page_20_with_count_a_moment_before_an_observation", |b| {
        b.iter_batched(
            || {
                n += 1;
                let before = octo_store::Timestamp::now();
                observe(&g, &format!("bench-{n}"), "Network|internet", new_ports(n));
                AsOf::valid(before)
            },
            |at| black_box(g.list_objects(&page, at).unwrap().count),
            BatchSize::SmallInput,
        )
    });
    // Without the lists (an as-of read of the past, or a store that keeps none): a scan.
    grp.sample_size(10);
    grp.bench_function("list_objects_page_20_with_count_scanned", |b| {
        // As known just before the last transaction: a read of the past, which the lists
        // do not answer.
        let last = g.store().snapshot().unwrap().last_tx().unwrap().unwrap().tx_time;
        let at = AsOf::at(octo_store::Timestamp::now(), octo_store::Timestamp::from_micros(last.as_micros() - 1));
        b.iter(|| black_box(g.list_objects(&page, at).unwrap().count))
    });

    // Octopoes' findings page: the first 20 by risk score, with the count, and the counts by
    // severity beside it.
    grp.sample_size(30);
    grp.bench_function("findings_page_20_of_4k_by_score", |b| {
        let q = FindingQuery { limit: 20, ..Default::default() };
        b.iter(|| black_box(g.list_findings(&q, AsOf::now()).unwrap().count))
    });
    grp.bench_function("findings_count_by_severity_of_4k", |b| {
        b.iter(|| black_box(g.count_findings_by_severity(AsOf::now()).unwrap().len()))
    });

    grp.sample_size(10);
    let netblock = Reference::from_trusted("IPV4NetBlock|internet|internet|10.0.0.0|8");
    let mut level = 2u8;
    grp.bench_function("scan_level_change_reaching_100k", |b| {
        b.iter(|| {
            level = if level == 2 { 3 } else { 2 };
            g.set_scan_profile(&netblock, Some(level), None, None).unwrap()
        })
    });
    // What a scheduler asks for (Octopoes' `scan_level` filter): objects at levels 1–4, which
    // after the change above are the netblock's 100k, paged with the count over all 1M.
    grp.bench_function("list_objects_page_20_levels_1_to_4_with_count", |b| {
        let q = ListQuery { scan_levels: (1..=4).collect(), offset: 50_000, limit: 20, ..Default::default() };
        b.iter(|| black_box(g.list_objects(&q, AsOf::now()).unwrap().count))
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
