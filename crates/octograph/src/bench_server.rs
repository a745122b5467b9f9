//! `octograph bench server`: the HTTP API under load on loopback. The synthetic attack surface of
//! `bench bits` (with every bit) is loaded into an organisation, the server is started in this
//! process exactly as `serve` starts it (tokens on), and a small keep-alive HTTP/1.1 client on
//! its own threads sends `GET /object`, `GET /tree` (depth 2) and `POST /observations` (10
//! ports each) for a fixed time, recording every latency.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use octo_bits::{builtin, BitEngine, BitSwitches};
use octo_graph::Organisations;
use octo_model::Catalog;
use octo_store::{AsOf, StoreOptions, Timestamp};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::bench_bits::{address, hostname, percentile, port_number};

pub(crate) const ORG: &str = "bench";

/// The bench organisation in `dir`: reused when there, else the attack surface of `bench bits`
/// loaded into it (every bit on). Returns it with the engine and its number of objects.
pub(crate) fn open_or_load(
    dir: &std::path::Path,
    hostnames: u32,
    ports_per_address: u32,
    options: StoreOptions,
) -> anyhow::Result<(Organisations, Arc<BitEngine>, usize)> {
    let catalog = Catalog::builtin();
    let bits = builtin::all();
    let every =
        BitSwitches { enabled: bits.iter().map(|b| b.definition().id.clone()).collect(), disabled: Default::default() };
    let engine = Arc::new(BitEngine::new(catalog.clone(), bits, every)?);
    let orgs = Organisations::open(dir, catalog.clone(), options)?.with_inferrer(engine.clone());
    let graph = if orgs.exists(ORG) {
        eprintln!("reusing the graph in {}", dir.display());
        orgs.get(ORG)?
    } else {
        let g = orgs.create(ORG)?;
        let t = Instant::now();
        let (declared, _) = crate::bench_bits::load(&g, &catalog, hostnames, ports_per_address)?;
        eprintln!("loaded {declared} declarations in {:.0} s", t.elapsed().as_secs_f64());
        g
    };
    let at = AsOf::valid(Timestamp::now());
    let objects = graph.list_objects(&octo_graph::ListQuery { limit: 0, ..Default::default() }, at)?.count;
    eprintln!("{objects} objects");
    Ok((orgs, engine, objects))
}

/// The server running in this process, as `serve` runs it (tokens on), for a load client.
pub(crate) struct Served {
    pub addr: std::net::SocketAddr,
    pub token: String,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    state: octo_server::AppState,
    organisations: Arc<Organisations>,
    /// The Redis bus's log, when streams are served from Redis (its key goes at the end).
    bus: Option<octo_stream::redis_log::RedisLog>,
}

impl Served {
    /// Serves `orgs` on a loopback port with a write token for the bench organisation; with
    /// `redis`, change streams are served from a Redis Streams bus there (a key prefix of this
    /// run's own).
    pub fn start(
        orgs: Organisations,
        engine: Arc<BitEngine>,
        dir: &std::path::Path,
        redis: Option<&str>,
    ) -> anyhow::Result<Served> {
        let token_path = octo_server::auth::token_file(dir);
        let (token, _) = octo_server::auth::create_token(
            &token_path,
            &[ORG.to_owned()],
            octo_server::auth::Role::Write,
            None,
            None,
        )?;
        let tokens = Arc::new(octo_server::auth::Tokens::open(&token_path)?);
        let organisations = Arc::new(orgs);
        let state = octo_server::AppState::new(organisations.clone(), Some(engine), Some(tokens));
        let bus = match redis {
            None => None,
            Some(url) => {
                let prefix = format!("octograph-bench-{}", std::process::id());
                state.set_event_bus(octo_server::EventBus::redis(url, &prefix, None).map_err(anyhow::Error::msg)?);
                Some(octo_stream::redis_log::RedisLog::open(url, &prefix)?)
            }
        };
        let app = octo_server::app(state.clone(), &octo_server::ServerConfig::default());
        let runtime = octo_server::runtime()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(octo_server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Ok(Served { addr, token, runtime, stop, server, state, organisations, bus })
    }

    /// Starts the change streams' framers, as `serve` does, and waits until they have prepared
    /// every event up to `last`; returns how long that took (nothing to do when a previous run
    /// on the same `--dir` prepared them).
    pub fn await_prepared(&self, last: Option<octo_store::EventId>) -> anyhow::Result<f64> {
        let started = std::time::Instant::now();
        self.state.prepare_streams().map_err(|e| anyhow::anyhow!("{}", e.message))?;
        while self.state.stream_prepared_until(ORG) < last {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// With a Redis bus, waits until it holds `last` (the store's last event) and returns how
    /// long forwarding took from the start and how many events Redis holds.
    pub fn await_bus(&self, last: Option<octo_store::EventId>) -> anyhow::Result<Option<(f64, u64)>> {
        let (Some(bus), Some(last)) = (&self.bus, last) else { return Ok(None) };
        let started = std::time::Instant::now();
        while bus.last_id(ORG)?.is_none_or(|l| l < last) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some((started.elapsed().as_secs_f64(), bus.len(ORG)?)))
    }

    /// Stops the server and waits for it.
    pub fn stop(self) -> anyhow::Result<()> {
        self.state.end_streams();
        let _ = self.stop.send(());
        self.runtime.block_on(self.server)??;
        if let Some(bus) = &self.bus {
            bus.delete(ORG)?;
        }
        // A store closed cleanly opens at once next time (`--dir` is reused).
        drop(self.state);
        let busy = self.organisations.close(Duration::from_secs(10));
        if !busy.is_empty() {
            eprintln!("stores still in use at exit: {busy:?}");
        }
        Ok(())
    }
}

/// Builds the next request of a scenario.
type MakeRequest = Arc<dyn Fn(&mut Rng) -> Vec<u8> + Send + Sync>;

/// What one scenario measured.
struct Scenario {
    name: &'static str,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl Scenario {
    fn to_json(&self) -> serde_json::Value {
        let l = &self.latencies_ms;
        json!({
            "requests": self.requests, "errors": self.errors,
            "requests_per_second": self.requests as f64 / self.seconds,
            "p50_ms": percentile(l, 0.5), "p90_ms": percentile(l, 0.9), "p99_ms": percentile(l, 0.99),
            "max_ms": l.last().copied().unwrap_or(0.0),
        })
    }
}

/// A tiny xorshift generator: the load needs spread, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(below.max(1))) as u32
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One HTTP/1.1 exchange on a kept-alive connection; returns the status.
async fn exchange(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    request: &[u8],
    body: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    writer.write_all(request).await?;
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).context("no status line")?.parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    body.resize(length, 0);
    reader.read_exact(body).await?;
    Ok(status)
}

/// Runs `connections` clients for `duration`, each sending what `make` builds.
async fn scenario(
    name: &'static str,
    addr: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<Scenario> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            // A fresh seed per run: a repeated sequence would find every observation already saved
            // by the previous run, and time no-ops.
            let seed = {
                use std::hash::{BuildHasher, Hasher};
                std::collections::hash_map::RandomState::new().build_hasher().finish()
            };
            let mut rng = Rng((seed ^ (c as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)) | 1);
            let (mut latencies, mut errors, mut body) = (Vec::new(), 0usize, Vec::new());
            while started.elapsed() < duration {
                let request = make(&mut rng);
                let t = Instant::now();
                let status = exchange(&mut read, &mut write, &request, &mut body).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                if status != 200 {
                    errors += 1;
                    if errors == 1 {
                        eprintln!("{name}: status {status}: {}", String::from_utf8_lossy(&body));
                    }
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok(Scenario { name, requests: all.len(), errors, seconds, latencies_ms: all })
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    hostnames: u32,
    ports_per_address: u32,
    dir: Option<PathBuf>,
    duration_secs: u64,
    warmup_secs: u64,
    read_connections: usize,
    write_connections: usize,
    cache_mb: usize,
    current_cache_mb: usize,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    let options = StoreOptions {
        cache_bytes: cache_mb << 20,
        current_cache_bytes: current_cache_mb << 20,
        ..StoreOptions::default()
    };
    let (orgs, engine, objects) = open_or_load(&dir, hostnames, ports_per_address, options)?;

    let last = orgs.get(ORG)?.store().snapshot()?.event_bounds()?.map(|(_, last)| last);
    let served = Served::start(orgs, engine, &dir, None)?;
    // As `serve` runs: the change streams' framers prepare the log in the background, so they
    // have caught up before anything is timed.
    let prepared = served.await_prepared(last)?;
    if prepared >= 1.0 {
        eprintln!("the change streams' framer prepared the log in {prepared:.1} s");
    }
    let (addr, token) = (served.addr, served.token.clone());
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let ips = hostnames * 2;
    let duration = Duration::from_secs(duration_secs);
    let warmup = Duration::from_secs(warmup_secs);
    let auth = format!("Authorization: Bearer {token}\r\n");

    let head = {
        let auth = auth.clone();
        move |path: String| format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n").into_bytes()
    };
    let object = {
        let head = head.clone();
        Arc::new(move |rng: &mut Rng| {
            let i = rng.next(ips);
            let key = match rng.next(3) {
                0 => format!("Hostname|internet|{}", hostname(i / 2)),
                1 => format!("IPAddressV4|internet|{}", address(i)),
                _ => format!("IPPort|internet|{}|tcp|{}", address(i), port_number(rng.next(ports_per_address))),
            };
            head(format!("/{ORG}/object?reference={}", encode(&key)))
        })
    };
    let tree = {
        let head = head.clone();
        Arc::new(move |rng: &mut Rng| {
            let i = rng.next(ips);
            let key = if rng.next(2) == 0 {
                format!("Hostname|internet|{}", hostname(i / 2))
            } else {
                format!("IPAddressV4|internet|{}", address(i))
            };
            head(format!("/{ORG}/tree?reference={}&depth=2", encode(&key)))
        })
    };
    let observe = {
        let auth = auth.clone();
        Arc::new(move |rng: &mut Rng| {
            let ip = address(rng.next(ips));
            let base = 10_000 + rng.next(1000) * 10;
            let result: Vec<_> = (0..10)
                .map(|k| {
                    json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|{ip}"),
                    "protocol": "tcp", "port": base + k, "state": "open"})
                })
                .collect();
            let body = json!({"method": "bench-scan", "source": format!("IPAddressV4|internet|{ip}"),
                "task_id": "bench", "result": result})
            .to_string();
            format!(
                "POST /{ORG}/observations HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
    };
    let mut results = serde_json::Map::new();
    for (name, connections, make) in [
        ("get_object", read_connections, object as MakeRequest),
        ("get_tree_depth_2", read_connections, tree),
        ("post_observations_10", write_connections, observe),
    ] {
        if !warmup.is_zero() {
            // Not recorded: fills the store's page cache, as a server that has run a while has it.
            client_rt.block_on(scenario(name, addr, connections, warmup, make.clone()))?;
        }
        let s = client_rt.block_on(scenario(name, addr, connections, duration, make))?;
        eprintln!(
            "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            s.name,
            s.requests as f64 / s.seconds,
            percentile(&s.latencies_ms, 0.5),
            percentile(&s.latencies_ms, 0.99),
            s.errors
        );
        results.insert(s.name.to_owned(), s.to_json());
    }
    served.stop()?;
    println!(
        "{}",
        json!({"objects": objects, "hostnames": hostnames, "duration_seconds": duration_secs,
            "warmup_seconds": warmup_secs, "cache_mb": cache_mb, "current_cache_mb": current_cache_mb,
            "read_connections": read_connections, "write_connections": write_connections, "results": results})
    );
    Ok(())
}
