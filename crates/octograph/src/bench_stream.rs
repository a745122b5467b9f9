//! `octograph bench stream`: one consumer catching up on the change stream from the start (the
//! replay rate), on the graph of `bench server`, with the server in this process as `serve` runs
//! it and a client reading the raw SSE bytes on its own threads.

use std::path::PathBuf;
use std::time::Instant;

use octo_store::StoreOptions;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench_server::{open_or_load, Served, ORG};

/// Counts SSE frames in a byte stream (each ends with a blank line; chunked transfer encoding
/// puts its own lines between chunks, never a blank one inside a frame).
struct FrameCounter {
    frames: u64,
    heartbeat: bool,
    tail: Vec<u8>,
}

impl FrameCounter {
    fn feed(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(i) = memchr::memmem::find(&self.tail[start..], b"\n\n") {
            let frame = &self.tail[start..start + i];
            // `event:` is on the first or second line (after `id:`).
            let head = &frame[..frame.len().min(64)];
            if let Some(at) = memchr::memmem::find(head, b"event: ") {
                let name = &head[at + 7..];
                if name.starts_with(b"heartbeat") {
                    self.heartbeat = true;
                } else if !name.starts_with(b"connected") {
                    self.frames += 1;
                }
            }
            start += i + 2;
        }
        self.tail.drain(..start);
    }
}

pub fn run(
    hostnames: u32,
    dir: Option<PathBuf>,
    frames: u64,
    options: String,
    cache_mb: usize,
    redis: Option<String>,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    let (orgs, engine, objects) =
        open_or_load(&dir, hostnames, 5, StoreOptions { cache_bytes: cache_mb << 20, ..StoreOptions::default() })?;
    let events = orgs.get(ORG)?.store().snapshot()?.event_bounds()?;
    let served = Served::start(orgs, engine, &dir, redis.as_deref())?;
    let forwarded = served.await_bus(events.map(|(_, last)| last))?;
    if let Some((s, n)) = forwarded {
        eprintln!("the store's {n} events reached Redis in {s:.1} s: {:.0} events/s", n as f64 / s);
    }
    // Catching up reads what the framer prepared as the events were written; a new `--dir`
    // has it prepare the whole log first (timed here, not in the replay).
    let prepared = served.await_prepared(events.map(|(_, last)| last))?;
    eprintln!("the framer had prepared the log after {prepared:.1} s");
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (addr, token) = (served.addr, served.token.clone());
    let (counted, seconds, bytes) = client.block_on(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET /{ORG}/stream?from=0&{options} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let started = Instant::now();
        let mut counter = FrameCounter { frames: 0, heartbeat: false, tail: Vec::new() };
        let mut buf = vec![0u8; 1 << 16];
        let (mut bytes, mut last_frame) = (0u64, started);
        while counter.frames < frames && !counter.heartbeat {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let before = counter.frames;
            counter.feed(&buf[..n]);
            if counter.frames > before {
                // The replay ends with its last frame, not with the heartbeat that follows a
                // silence.
                bytes += n as u64;
                last_frame = Instant::now();
            }
        }
        anyhow::Ok((counter.frames, (last_frame - started).as_secs_f64(), bytes))
    })?;
    drop(client);
    served.stop()?;
    eprintln!(
        "{counted} frames in {seconds:.1} s: {:.0} frames/s, {:.1} MB/s",
        counted as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    println!(
        "{}",
        json!({"objects": objects, "events_held": events.map(|(a, b)| [a.to_string(), b.to_string()]),
            "bus": if redis.is_some() { "redis" } else { "store" }, "forwarded": forwarded.map(|(s, n)| json!({"events": n, "seconds": s})),
            "prepared_after_seconds": prepared,
            "frames": counted, "seconds": seconds, "frames_per_second": counted as f64 / seconds,
            "megabytes_per_second": bytes as f64 / seconds / 1e6})
    );
    Ok(())
}

/// Resident memory of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `bench fanout`: `consumers` live SSE consumers while a writer declares hostnames (every bit
/// on) at about `events_per_second` change events; the delivery latency of every frame to every
/// consumer, from the commit to the frame's arrival.
pub fn fanout(
    consumers: usize,
    events_per_second: u64,
    seconds: u64,
    cache_mb: usize,
    redis: Option<String>,
) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let tmp = tempfile::tempdir()?;
    let (orgs, engine, objects) =
        open_or_load(tmp.path(), 200, 5, StoreOptions { cache_bytes: cache_mb << 20, ..StoreOptions::default() })?;
    let graph = orgs.get(ORG)?;
    let rss_before = rss_mib();
    let last = graph.store().snapshot()?.event_bounds()?.map(|(_, last)| last);
    let served = Served::start(orgs, engine, tmp.path(), redis.as_deref())?;
    served.await_bus(last)?;
    served.await_prepared(last)?;
    let (addr, token) = (served.addr, served.token.clone());
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let connected = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds + 5);
    // Per consumer: (event id, when its frame arrived).
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (token, connected) = (token.clone(), connected.clone());
        tasks.push(client.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            let request = format!(
                "GET /{ORG}/stream?with-inferences=true&no-dependencies=true HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await?;
            let mut received: Vec<(String, Instant)> = Vec::new();
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut counted = false;
            // The client reads bytes as they come and looks only at each frame's first lines
            // (`id:`, `event:`): the figure is the server's delivery, not a client's parsing.
            let blank = memchr::memmem::Finder::new(b"\n\n");
            while Instant::now() < deadline {
                let n = match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Err(_) => break,
                    Ok(n) => n?,
                };
                let now = Instant::now();
                tail.extend_from_slice(&buf[..n]);
                let mut start = 0;
                while let Some(i) = blank.find(&tail[start..]) {
                    let frame = &tail[start..start + i];
                    start += i + 2;
                    // (The first frame follows the response headers.)
                    let head = &frame[..frame.len().min(1024)];
                    let Some(at) = memchr::memmem::find(head, b"event: ") else { continue };
                    let event = &head[at + 7..];
                    if event.starts_with(b"connected") && !counted {
                        counted = true;
                        connected.fetch_add(1, Ordering::SeqCst);
                    }
                    if event.starts_with(b"heartbeat") {
                        continue;
                    }
                    // (A chunk's size line may come before the frame's lines.)
                    if let Some(i) = memchr::memmem::find(&head[..at], b"id: ") {
                        let id = &head[i + 4..at];
                        let id = id.strip_suffix(b"\n").unwrap_or(id);
                        received.push((String::from_utf8_lossy(id).into_owned(), now));
                    }
                }
                tail.drain(..start);
            }
            anyhow::Ok(received)
        }));
    }
    while connected.load(Ordering::SeqCst) < consumers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_connected = rss_mib();
    // The writer: batches of declarations, paced to the event rate.
    let commits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let started = Instant::now();
    let mut written = 0u64;
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(seconds) {
        let declarations: Vec<octo_graph::Declaration> = (0..5)
            .map(|_| {
                n += 1;
                let doc = json!({"object_type": "Hostname", "network": "Network|internet", "name": format!("fanout{n}.example")});
                octo_graph::Declaration {
                    ooi: graph.catalog().ooi_from_json(&doc).expect("a valid hostname"),
                    method: None,
                    task_id: None,
                    valid_time: None,
                    end_valid_time: None,
                }
            })
            .collect();
        let outcome = graph.save_declarations(&declarations)?;
        let now = Instant::now();
        written += outcome.events.len() as u64;
        commits.lock().unwrap_or_else(|p| p.into_inner()).extend(outcome.events.iter().map(|id| (id.to_string(), now)));
        let due = started + Duration::from_secs_f64(written as f64 / events_per_second as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let write_seconds = started.elapsed().as_secs_f64();
    let rss_end = rss_mib();
    let mut received = Vec::new();
    for t in tasks {
        received.push(client.block_on(t)??);
    }
    drop(client);
    drop(graph);
    served.stop()?;
    let commit_times: std::collections::HashMap<String, Instant> =
        commits.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
    let mut latencies: Vec<f64> = received
        .iter()
        .flatten()
        .filter_map(|(id, at)| commit_times.get(id).map(|c| at.saturating_duration_since(*c).as_secs_f64() * 1e3))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let frames = latencies.len();
    let p = |q: f64| crate::bench_bits::percentile(&latencies, q);
    eprintln!(
        "{consumers} consumers, {:.0} events/s written: {frames} frames delivered, latency p50 {:.1} ms p99 {:.1} ms, RSS {rss_before:.0} → {rss_connected:.0} → {rss_end:.0} MiB",
        written as f64 / write_seconds,
        p(0.5),
        p(0.99)
    );
    println!(
        "{}",
        json!({"objects": objects, "bus": if redis.is_some() { "redis" } else { "store" },
            "consumers": consumers, "connected": connected.load(Ordering::SeqCst),
            "events_written_per_second": written as f64 / write_seconds, "frames_delivered": frames,
            "latency_ms": {"p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": latencies.last().copied().unwrap_or(0.0)},
            "rss_mib": {"before": rss_before, "consumers_connected": rss_connected, "end": rss_end}})
    );
    Ok(())
}
