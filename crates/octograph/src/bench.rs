//! Whole-process benchmarks, for figures a criterion bench cannot give (peak memory).

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;
use octo_store::{AsOf, RedbStore, Store, StoreOptions, Timestamp, ValidTime};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Parse and classify the lines of a file (syslog as received, one per line) on one core
    /// with the built-in services: lines per second and the share classified; for a side by
    /// side with syslog-ng's `pdbtool match` (docs/PERFORMANCE.md).
    Classify {
        file: PathBuf,
        /// Only these services, in this order (repeatable; default: the whole built-in library).
        #[arg(long = "service")]
        services: Vec<String>,
        /// Passes over the file.
        #[arg(long, default_value_t = 3)]
        passes: usize,
        /// Also put each classified line into its table, sealed every million rows, as the
        /// pipeline does.
        #[arg(long)]
        tables: bool,
    },
    /// Fill the `Auth` table with synthetic sshd rows and time the questions asked of it, first
    /// "failed logins per source address over the last 24 h" (docs/PERFORMANCE.md).
    Tables {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// Days the rows are spread over, ending now (1: every row is in the last 24 h).
        #[arg(long, default_value_t = 1)]
        days: u64,
        /// Where the tables go (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Warm runs of each query.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Only the n-th query (1–4).
        #[arg(long)]
        query: Option<usize>,
    },
    /// Syslog over TCP on loopback into the raw store, end to end: lines per second and peak
    /// memory; `--rsyslog` runs rsyslog (imtcp -> omfile) on the same load (docs/PERFORMANCE.md).
    Syslog {
        #[arg(long, default_value_t = 3_000_000)]
        lines: u64,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Also measure rsyslogd and print the ratio.
        #[arg(long)]
        rsyslog: bool,
        /// Where the stores go (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Many live SSE consumers while a writer declares hostnames at a set event rate: delivery
    /// latency from commit to frame, and memory (docs/PERFORMANCE.md).
    Fanout {
        #[arg(long, default_value_t = 1000)]
        consumers: usize,
        /// Change events written per second (a declaration with its bits makes several).
        #[arg(long, default_value_t = 1000)]
        events_per_second: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 256)]
        cache_mb: usize,
        /// Serve the stream from the Redis Streams bus at this URL (`redis://127.0.0.1:6379/`).
        #[arg(long)]
        redis: Option<String>,
    },
    /// One consumer replaying the change stream from the start on the graph of `bench server`
    /// (loaded first when `--dir` does not hold it): frames per second (docs/PERFORMANCE.md).
    Stream {
        /// Hostnames of the attack surface when it has to be loaded.
        #[arg(long, default_value_t = 20_000)]
        hostnames: u32,
        /// Data directory of `bench server` (default: a temporary one, loaded afresh).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Stop after this many frames (or when the consumer has caught up).
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        /// Stream options as a query string (e.g. `with-inferences=true&no-dependencies=true`).
        #[arg(long, default_value = "")]
        options: String,
        #[arg(long, default_value_t = 1024)]
        cache_mb: usize,
        /// Serve the stream from the Redis Streams bus at this URL (`redis://127.0.0.1:6379/`).
        #[arg(long)]
        redis: Option<String>,
    },
    /// Load the attack surface of `bench bits` into an organisation, serve it as `serve` does
    /// (tokens on) and measure GET /object, GET /tree (depth 2) and POST /observations (10
    /// ports) from a keep-alive client on loopback (docs/PERFORMANCE.md).
    Server {
        /// Hostnames of the attack surface; 20,000 make about a million objects.
        #[arg(long, default_value_t = 20_000)]
        hostnames: u32,
        #[arg(long, default_value_t = 5)]
        ports_per_address: u32,
        /// Data directory; an organisation `bench` already there is reused (no load).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seconds per scenario.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of the same load before each scenario, not recorded (warms the page cache).
        #[arg(long, default_value_t = 10)]
        warmup: u64,
        /// Concurrent connections for the reads.
        #[arg(long, default_value_t = 16)]
        read_connections: usize,
        /// Concurrent connections for the writes.
        #[arg(long, default_value_t = 4)]
        write_connections: usize,
        #[arg(long, default_value_t = 1024)]
        cache_mb: usize,
        /// Memory of the store's cache of current answers, in MiB (0 turns it off).
        #[arg(long, default_value_t = 1024)]
        current_cache_mb: usize,
    },
    /// Load N versions in transactions of 10k into a fresh store and report puts/s, file size
    /// and a read check; run under `/usr/bin/time -v` for peak memory.
    Store {
        #[arg(long, default_value_t = 1_000_000)]
        versions: u64,
        /// Where to create the store (default: a temporary directory, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        cache_mb: usize,
    },
    /// Declare a synthetic attack surface with every bit enabled, then time single IPPort
    /// observations (with their inferences) and a full `recalculate_bits` (docs/PERFORMANCE.md).
    Bits {
        /// Hostnames; a tenth are registered domains, the rest their subdomains. Each resolves
        /// to two addresses of its own, and gets a website, its headers and a certificate.
        #[arg(long, default_value_t = 100_000)]
        hostnames: u32,
        /// Ports per address (80, 443, 25, 53, 22, then 8000 upwards).
        #[arg(long, default_value_t = 5)]
        ports_per_address: u32,
        /// Single-port observations to time after the load.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Skip the full recalculation (it re-runs every bit on every object).
        #[arg(long)]
        no_recalculate: bool,
        /// Run with no bit engine at all: the baseline that shows what inference costs.
        #[arg(long)]
        without_bits: bool,
        /// Where to create the store (default: a temporary directory, removed afterwards). A
        /// store an earlier run finished loading there with the same shape is reused: no load,
        /// only the observations (on ports no earlier run observed) and the recalculation.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1024)]
        cache_mb: usize,
    },
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Classify { file, services, passes, tables } => classify(&file, &services, passes, tables),
        BenchCommand::Tables { rows, days, dir, runs, query } => crate::bench_tables::run(rows, days, dir, runs, query),
        BenchCommand::Syslog { lines, connections, rsyslog, dir } => {
            crate::bench_syslog::run(lines, connections, rsyslog, dir)
        }
        BenchCommand::Fanout { consumers, events_per_second, seconds, cache_mb, redis } => {
            crate::bench_stream::fanout(consumers, events_per_second, seconds, cache_mb, redis)
        }
        BenchCommand::Stream { hostnames, dir, frames, options, cache_mb, redis } => {
            crate::bench_stream::run(hostnames, dir, frames, options, cache_mb, redis)
        }
        BenchCommand::Server {
            hostnames,
            ports_per_address,
            dir,
            duration,
            warmup,
            read_connections,
            write_connections,
            cache_mb,
            current_cache_mb,
        } => crate::bench_server::run(
            hostnames,
            ports_per_address,
            dir,
            duration,
            warmup,
            read_connections,
            write_connections,
            cache_mb,
            current_cache_mb,
        ),
        BenchCommand::Bits { hostnames, ports_per_address, samples, no_recalculate, without_bits, dir, cache_mb } => {
            crate::bench_bits::run(hostnames, ports_per_address, samples, !no_recalculate, !without_bits, dir, cache_mb)
        }
        BenchCommand::Store { versions, dir, cache_mb } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("bench.redb");
            let store =
                RedbStore::open(&path, &StoreOptions { cache_bytes: cache_mb << 20, ..StoreOptions::default() })?;
            // Four versions per key at successive valid times; within a round, keys (and the
            // addresses they reference) ascend, as in a sorted import.
            let keys = versions.div_ceil(4).max(1);
            let start = Instant::now();
            let (mut put_secs, mut commit_secs) = (0.0, 0.0);
            let mut written = 0u64;
            while written < versions {
                let n = (versions - written).min(10_000);
                let batch: Vec<(String, String, [String; 1], Timestamp)> = (written..written + n)
                    .map(|w| {
                        let i = w % keys;
                        let key = format!("IPPort|internet|{i:012}|tcp|443");
                        let address = format!("IPAddressV4|internet|{:012}", i / 4);
                        let doc = format!(
                            r#"{{"object_type":"IPPort","primary_key":"{key}","address":"{address}","protocol":"tcp","port":443,"state":"open","version":{}}}"#,
                            w / keys
                        );
                        (key, doc, [address], Timestamp::from_micros(1_767_225_600_000_000 + (w / keys) as i64 * 1_000_000))
                    })
                    .collect();
                let t = Instant::now();
                let mut tx = store.begin()?;
                for (key, doc, refs, valid) in &batch {
                    tx.put(key, doc.as_bytes(), refs, ValidTime::from(*valid))?;
                }
                let t2 = Instant::now();
                tx.commit()?;
                put_secs += (t2 - t).as_secs_f64();
                commit_secs += t2.elapsed().as_secs_f64();
                written += n;
            }
            let secs = put_secs + commit_secs;
            let wall = start.elapsed().as_secs_f64();
            let snap = store.snapshot()?;
            let check = snap.get("IPPort|internet|000000000000|tcp|443", AsOf::valid(Timestamp::MAX))?;
            let size = std::fs::metadata(&path)?.len();
            println!(
                "{}",
                serde_json::json!({
                    "versions": written, "keys": keys, "store_seconds": secs, "buffering_seconds": put_secs,
                    "commit_seconds": commit_secs, "wall_seconds": wall, "puts_per_second": written as f64 / secs,
                    "file_bytes": size, "cache_mb": cache_mb, "read_check": check.is_some(),
                })
            );
            Ok(())
        }
    }
}

fn classify(file: &std::path::Path, services: &[String], passes: usize, tables: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let library = octo_logs::services::builtin();
    for s in services {
        if !library.iter().any(|l| &l.name == s) {
            anyhow::bail!("no built-in service '{s}'");
        }
    }
    let names: Vec<String> =
        if services.is_empty() { library.iter().map(|s| s.name.clone()).collect() } else { services.to_vec() };
    let classifier = octo_logs::Classifier::new(&library)?;
    let plan = classifier.plan(&names);
    let ctx = octo_logs::ParseContext::now();
    let dir = tempfile::tempdir()?;
    let store = octo_tables::TableStore::open(dir.path(), octo_tables::TableOptions::default())?;
    store.set_schemas(octo_logs::tables::builtin());
    let mut best = f64::MAX;
    let mut classified = 0;
    for _ in 0..passes.max(1) {
        let started = Instant::now();
        classified = 0;
        let mut fields = 0usize;
        for l in &lines {
            let m = octo_logs::parse(l, &ctx);
            if let Some(hit) = classifier.classify_with(&plan, l, &m, "bench") {
                classified += 1;
                fields += hit.fields.len();
                if tables {
                    let f: Vec<(&str, &str)> = hit.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let row = octo_tables::Row {
                        time: m.timestamp.map_or(0, |t| t.micros()),
                        received: ctx.received.micros(),
                        device: "bench",
                        service: hit.service,
                        message: &hit.message.id,
                        taxonomy: &hit.message.taxonomy,
                        level: hit.message.level.name(),
                        fields: &f,
                    };
                    // Sealed every million rows, as the pipeline does (the flush is timed too).
                    if store.append(&hit.message.table, &row)? {
                        store.flush(&Default::default())?;
                    }
                }
            }
        }
        std::hint::black_box(fields);
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{} lines, {:.1} % classified{}, best of {passes}: {:.3} s = {:.0} lines/s (one core, services: {})",
        lines.len(),
        100.0 * classified as f64 / lines.len().max(1) as f64,
        if tables { " into tables" } else { "" },
        best,
        lines.len() as f64 / best,
        names.join(", ")
    );
    Ok(())
}
