//! `octograph bench stream`: one consumer catching up on the change stream from the start (the
//! replay rate), on the graph of `bench server`, with the server in this process as `serve` runs
//! it and a client reading the raw SSE bytes on its own threads.

use std::path::PathBuf;
use std::time::Instant;

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
        while let Some(i) = self.tail[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = &self.tail[start..start + i];
            if frame.windows(16).any(|w| w == b"event: heartbeat") {
                self.heartbeat = true;
            } else if frame.windows(7).any(|w| w == b"event: ") && !frame.windows(16).any(|w| w == b"event: connected")
            {
                self.frames += 1;
            }
            start += i + 2;
        }
        self.tail.drain(..start);
    }
}

pub fn run(hostnames: u32, dir: Option<PathBuf>, frames: u64, options: String, cache_mb: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    let (orgs, engine, objects) = open_or_load(&dir, hostnames, 5, cache_mb)?;
    let events = orgs.get(ORG)?.store().snapshot()?.event_bounds()?;
    let served = Served::start(orgs, engine, &dir)?;
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
        let mut bytes = 0u64;
        while counter.frames < frames && !counter.heartbeat {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            counter.feed(&buf[..n]);
        }
        anyhow::Ok((counter.frames, started.elapsed().as_secs_f64(), bytes))
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
            "frames": counted, "seconds": seconds, "frames_per_second": counted as f64 / seconds,
            "megabytes_per_second": bytes as f64 / seconds / 1e6})
    );
    Ok(())
}
