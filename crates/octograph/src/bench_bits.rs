//! `octograph bench bits`: a synthetic attack surface declared with every bit enabled, then
//! the latency of single port observations and the time of a full bit recalculation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use octo_bits::{builtin, BitEngine, BitSwitches};
use octo_graph::{Declaration, Graph, Observation};
use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, RedbStore, StoreOptions, Timestamp};
use serde_json::{json, Value};

const BATCH: usize = 10_000;

/// The address of the `i`th IP.
pub fn address(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// The `h`th hostname: a tenth are registered domains, each followed by nine subdomains of it.
pub fn hostname(h: u32) -> String {
    let domain = format!("d{}.nl", h / 10);
    match h % 10 {
        0 => domain,
        k => format!("w{k}.{domain}"),
    }
}

/// The `k`th port of every address.
pub fn port_number(k: u32) -> u32 {
    [80, 443, 25, 53, 22].get(k as usize).copied().unwrap_or(8000 + k)
}

struct Loader<'a> {
    graph: &'a Graph,
    catalog: &'a Catalog,
    pending: Vec<Ooi>,
    declared: u64,
}

impl Loader<'_> {
    fn add(&mut self, doc: Value) -> anyhow::Result<()> {
        self.pending.push(self.catalog.ooi_from_json(&doc)?);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let declarations: Vec<Declaration> = self
            .pending
            .drain(..)
            .map(|ooi| Declaration {
                ooi,
                method: Some("bench".into()),
                task_id: None,
                valid_time: None,
                end_valid_time: None,
            })
            .collect();
        self.declared += declarations.len() as u64;
        self.graph.save_declarations(&declarations)?;
        Ok(())
    }
}

/// The ten busiest bits, as `id: runs in seconds`.
fn top(stats: &[octo_bits::engine::BitRunStats]) -> Vec<String> {
    stats
        .iter()
        .filter(|s| s.runs > 0)
        .take(10)
        .map(|s| format!("{}: {} runs in {:.3} s", s.id, s.runs, s.seconds))
        .collect()
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Declares the synthetic attack surface (see `bench bits --help`) in batches; returns how many
/// objects were declared and the seconds each phase took.
pub fn load(
    graph: &Graph,
    catalog: &Catalog,
    hostnames: u32,
    ports_per_address: u32,
) -> anyhow::Result<(u64, serde_json::Map<String, Value>)> {
    let mut phases = serde_json::Map::new();
    let mut loader = Loader { graph, catalog, pending: Vec::new(), declared: 0 };
    let mut phase = |name: &str, t: Instant, loader: &mut Loader<'_>| -> anyhow::Result<()> {
        loader.flush()?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{name}: {secs:.1} s ({} declared so far)", loader.declared);
        phases.insert(name.to_owned(), json!(secs));
        Ok(())
    };
    let ips = hostnames * 2;

    let t = Instant::now();
    loader.add(json!({"object_type": "Network", "name": "internet"}))?;
    for name in ["http", "https"] {
        loader.add(json!({"object_type": "Service", "name": name}))?;
    }
    for h in 0..hostnames {
        loader.add(json!({"object_type": "Hostname", "network": "Network|internet", "name": hostname(h)}))?;
    }
    for i in 0..ips {
        loader.add(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": address(i)}))?;
    }
    phase("hostnames_and_addresses", t, &mut loader)?;

    // Level 2 on every name and address, as a user clearing a whole scope would set.
    let t = Instant::now();
    let mut refs: Vec<(Reference, Option<u8>)> = Vec::with_capacity(BATCH);
    let all_refs = (0..hostnames)
        .map(|h| format!("Hostname|internet|{}", hostname(h)))
        .chain((0..ips).map(|i| format!("IPAddressV4|internet|{}", address(i))));
    for r in all_refs {
        refs.push((Reference::from_trusted(r), Some(2)));
        if refs.len() == BATCH {
            graph.set_scan_profiles(&refs, None, None)?;
            refs.clear();
        }
    }
    if !refs.is_empty() {
        graph.set_scan_profiles(&refs, None, None)?;
    }
    phase("scan_levels", t, &mut loader)?;

    let t = Instant::now();
    for h in 0..hostnames {
        for i in [2 * h, 2 * h + 1] {
            loader
                .add(json!({"object_type": "DNSARecord", "hostname": format!("Hostname|internet|{}", hostname(h)),
                "address": format!("IPAddressV4|internet|{}", address(i)), "value": address(i)}))?;
        }
    }
    phase("a_records", t, &mut loader)?;

    let t = Instant::now();
    for i in 0..ips {
        for k in 0..ports_per_address {
            loader.add(json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|{}", address(i)),
                "protocol": "tcp", "port": port_number(k)}))?;
        }
    }
    phase("ports", t, &mut loader)?;

    let t = Instant::now();
    for h in 0..hostnames {
        let ip = address(2 * h);
        for (p, service) in [(443, "https"), (80, "http")] {
            loader.add(json!({"object_type": "IPService", "ip_port": format!("IPPort|internet|{ip}|tcp|{p}"),
                "service": format!("Service|{service}")}))?;
        }
    }
    phase("services", t, &mut loader)?;

    let t = Instant::now();
    for h in 0..hostnames {
        let (ip, name) = (address(2 * h), hostname(h));
        let resource = format!("HTTPResource|internet|{ip}|tcp|443|https|internet|{name}|https|internet|{name}|443|/");
        for (key, value) in
            [("Content-Type", "text/html"), ("Strict-Transport-Security", "max-age=300"), ("Server", "nginx")]
        {
            loader.add(json!({"object_type": "HTTPHeader", "resource": resource, "key": key, "value": value}))?;
        }
    }
    phase("headers", t, &mut loader)?;

    let t = Instant::now();
    for h in 0..hostnames {
        let (ip, name) = (address(2 * h), hostname(h));
        let until = if h % 100 == 0 { "2020-01-01T00:00:00" } else { "2099-01-01T00:00:00" };
        let cert = json!({"object_type": "X509Certificate", "issuer": "Bench CA", "serial_number": format!("{h:x}"),
            "valid_from": "2019-01-01T00:00:00", "valid_until": until, "subject": name});
        let cert_key = catalog.ooi_from_json(&cert)?.primary_key().to_string();
        loader.add(cert)?;
        loader.add(json!({"object_type": "SubjectAlternativeNameHostname", "certificate": cert_key,
            "hostname": format!("Hostname|internet|{name}")}))?;
        loader.add(json!({"object_type": "Website", "ip_service": format!("IPService|internet|{ip}|tcp|443|https"),
            "hostname": format!("Hostname|internet|{name}"), "certificate": cert_key}))?;
    }
    phase("certificates", t, &mut loader)?;
    Ok((loader.declared, phases))
}

pub fn run(
    hostnames: u32,
    ports_per_address: u32,
    samples: usize,
    recalculate: bool,
    with_bits: bool,
    dir: Option<PathBuf>,
    cache_mb: usize,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bits-bench.redb");
    let store =
        Arc::new(RedbStore::open(&path, &StoreOptions { cache_bytes: cache_mb << 20, ..StoreOptions::default() })?);
    let catalog = Catalog::builtin();
    let bits = builtin::all();
    let every =
        BitSwitches { enabled: bits.iter().map(|b| b.definition().id.clone()).collect(), disabled: Default::default() };
    let engine = Arc::new(BitEngine::new(catalog.clone(), bits, every)?);
    let graph = Graph::new(store.clone(), catalog.clone());
    let graph = if with_bits { graph.with_inferrer(engine.clone()) } else { graph };
    // A store a previous run finished loading with the same shape is reused: the figures of
    // interest after the first run are the observations', and the load of the full surface
    // takes most of an hour.
    let marker = dir.join("bits-bench.loaded");
    let shape = json!({"hostnames": hostnames, "ports_per_address": ports_per_address, "bits": with_bits}).to_string();
    let reused = std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == shape);
    let started = Instant::now();
    let (declared, phases) = if reused {
        eprintln!("reusing the loaded graph in {}", dir.display());
        (0, serde_json::Map::new())
    } else {
        let (declared, phases) = load(&graph, &catalog, hostnames, ports_per_address)?;
        std::fs::write(&marker, &shape)?;
        (declared, phases)
    };
    let ips = hostnames * 2;
    let load_secs = started.elapsed().as_secs_f64();
    let load_stats = engine.run_stats();

    let at = AsOf::valid(Timestamp::now());
    let findings = graph.count_findings_by_severity(at)?;
    let objects = graph.list_objects(&octo_graph::ListQuery { limit: 0, ..Default::default() }, at)?.count;

    engine.reset_run_stats();
    // One new port on an address, observed the way a scanner's normalizer would save it.
    // Each run on a reused store observes ports no earlier run did: the first free block.
    // The `s`th sample of block `k`: an address no earlier block observed either (whose pages
    // it would have left cached), and a port no earlier block used.
    let sample = |k: u32, s: usize| {
        let n = u64::from(k) * samples as u64 + s as u64;
        ((n * 7919 % u64::from(ips.max(1))) as u32, 9000 + n as u32)
    };
    let free_block = |k: u32| -> anyhow::Result<bool> {
        let (i, port) = sample(k, 0);
        let first = format!("IPPort|internet|{}|tcp|{port}", address(i));
        match graph.get(&Reference::from_trusted(first), at) {
            Ok(_) => Ok(false),
            Err(octo_graph::GraphError::NotFound(_)) => Ok(true),
            Err(e) => Err(e.into()),
        }
    };
    let mut block = 0;
    while reused && 9000 + (block + 2) * samples as u32 <= 65_535 && !free_block(block)? {
        block += 1;
    }
    let mut latencies = Vec::with_capacity(samples);
    let mut derived = 0usize;
    for s in 0..samples {
        let (i, port) = sample(block, s);
        let source = format!("IPAddressV4|internet|{}", address(i));
        let port = catalog.ooi_from_json(&json!({"object_type": "IPPort", "address": source, "protocol": "tcp",
            "port": port}))?;
        let t = Instant::now();
        let outcome = graph.save_observation(Observation {
            // Its own origin: reusing an earlier run's would replace (and collect) its port.
            method: format!("bench-nmap-{block}-{s}"),
            source: Reference::from_trusted(source),
            source_method: None,
            result: vec![port],
            task_id: None,
            valid_time: None,
        })?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        derived += outcome.created.len();
    }
    latencies.sort_by(f64::total_cmp);
    let observation_stats = engine.run_stats();

    let (recalc_secs, recalc_events) = if recalculate {
        let t = Instant::now();
        let outcome = graph.recalculate_bits(None)?;
        (Some(t.elapsed().as_secs_f64()), Some(outcome.events.len()))
    } else {
        (None, None)
    };
    println!(
        "{}",
        json!({
            "bits": with_bits, "hostnames": hostnames, "addresses": ips, "ports": u64::from(ips) * u64::from(ports_per_address),
            "declared": declared, "objects_after_inference": objects, "findings_by_severity": findings,
            "reused": reused, "load_seconds": (!reused).then_some(load_secs), "declarations_per_second": (!reused).then(|| declared as f64 / load_secs), "phases": phases,
            "observation_ms": {"samples": samples, "median": percentile(&latencies, 0.5), "p90": percentile(&latencies, 0.9),
                "p99": percentile(&latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0),
                "objects_created_per_observation": derived as f64 / samples.max(1) as f64},
            "recalculate_bits_seconds": recalc_secs, "recalculate_bits_events": recalc_events,
            "file_bytes": std::fs::metadata(&path)?.len(), "cache_mb": cache_mb,
            "bit_runs_during_load": top(&load_stats), "bit_runs_during_observations": top(&observation_stats),
        })
    );
    Ok(())
}
