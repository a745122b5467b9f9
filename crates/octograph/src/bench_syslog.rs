//! `bench syslog`: lines per second received over TCP on loopback into the raw store, end to
//! end (framing, parsing, dispatch, zstd, fsync per group commit), from load-generator threads
//! in the same process; optionally the same load into rsyslog (imtcp → omfile) for a ratio.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Loghub's OpenSSH and Linux lines with a PRI, newline-framed, cycled to `bytes` or more.
fn load_chunk(bytes: usize) -> anyhow::Result<(Vec<u8>, u64)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/loghub");
    let mut lines = Vec::new();
    for name in ["OpenSSH_2k.log", "Linux_2k.log"] {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        lines.extend(text.lines().map(|l| format!("<38>{l}\n")));
    }
    let mut chunk = Vec::with_capacity(bytes + 4096);
    let mut n = 0u64;
    while chunk.len() < bytes {
        for l in &lines {
            chunk.extend_from_slice(l.as_bytes());
            n += 1;
        }
    }
    Ok((chunk, n))
}

/// Sends `chunks` copies of the chunk over each of `connections` connections; returns when all
/// is written.
fn generate(addr: SocketAddr, connections: usize, chunk: &[u8], chunks: u64) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                s.spawn(move || -> std::io::Result<()> {
                    let mut c = std::net::TcpStream::connect(addr)?;
                    for _ in 0..chunks {
                        c.write_all(chunk)?;
                    }
                    c.shutdown(std::net::Shutdown::Write)
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
        }
        Ok(())
    })
}

fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub fn run(lines: u64, connections: usize, rsyslog: bool, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let connections = connections.max(1);
    let (chunk, per_chunk) = load_chunk(1 << 20)?;
    let chunks = lines.div_ceil(per_chunk * connections as u64).max(1);
    let total = chunks * per_chunk * connections as u64;
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_owned());
    println!(
        "load: {total} lines ({:.0} MiB) of loghub OpenSSH/Linux over {connections} TCP connections on loopback",
        (total as f64 / per_chunk as f64) * chunk.len() as f64 / 1048576.0
    );

    let ours = octograph(&dir.join("octograph"), connections, &chunk, chunks, total)?;
    println!(
        "octograph: {:.0} lines/s ({:.2} s), raw store {:.1} MiB ({:.1}x smaller than the input), peak RSS {:.0} MiB (process, generator included)",
        total as f64 / ours.seconds,
        ours.seconds,
        ours.store_bytes as f64 / 1048576.0,
        (total as f64 / per_chunk as f64) * chunk.len() as f64 / ours.store_bytes.max(1) as f64,
        peak_rss_mib("self")
    );
    if rsyslog {
        let theirs = rsyslogd(&dir.join("rsyslog"), connections, &chunk, chunks, total)?;
        println!(
            "rsyslog (imtcp -> omfile, no fsync): {:.0} lines/s ({:.2} s), file {:.1} MiB, peak RSS {:.0} MiB",
            total as f64 / theirs.seconds,
            theirs.seconds,
            theirs.store_bytes as f64 / 1048576.0,
            theirs.peak_mib
        );
        println!("ratio octograph / rsyslog: {:.2}", theirs.seconds / ours.seconds);
    }
    Ok(())
}

struct Run {
    seconds: f64,
    store_bytes: u64,
    peak_mib: f64,
}

fn octograph(dir: &Path, connections: usize, chunk: &[u8], chunks: u64, total: u64) -> anyhow::Result<Run> {
    let runtime = octo_server::runtime()?;
    let config = octo_logs::LogsConfig {
        tcp: vec!["127.0.0.1:0".parse()?],
        new_devices: octo_logs::device::NewDevices::Active,
        ..Default::default()
    };
    let pipeline = octo_logs::Pipeline::open(dir, config)?;
    let receivers = runtime.block_on(octo_logs::source::start(pipeline.clone()))?;
    let addr = receivers.address(octo_logs::Transport::Tcp).context("no TCP receiver")?;
    let started = Instant::now();
    generate(addr, connections, chunk, chunks)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while pipeline.stats().stored.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            bail!("only {} of {total} lines stored after 10 minutes", pipeline.stats().stored.load(Ordering::Relaxed));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = started.elapsed().as_secs_f64();
    let commits = pipeline.stats().commits.load(Ordering::Relaxed);
    println!("octograph: {commits} group commits ({:.0} lines each)", total as f64 / commits.max(1) as f64);
    runtime.block_on(receivers.shutdown());
    Ok(Run { seconds, store_bytes: pipeline.store().size()?, peak_mib: peak_rss_mib("self") })
}

fn rsyslogd(dir: &Path, connections: usize, chunk: &[u8], chunks: u64, total: u64) -> anyhow::Result<Run> {
    let bin = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("rsyslogd is not installed (apt-get install rsyslog)")?;
    std::fs::create_dir_all(dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let out = dir.join("all.log");
    let conf = format!(
        "global(workDirectory=\"{w}\")\nmodule(load=\"imtcp\" MaxSessions=\"1000\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n*.* action(type=\"omfile\" file=\"{f}\")\n",
        w = dir.display(),
        f = out.display()
    );
    std::fs::write(dir.join("rsyslog.conf"), conf)?;
    let mut child = std::process::Command::new(bin)
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let up = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > up {
            let _ = child.kill();
            bail!("rsyslogd did not start listening");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    generate(addr, connections, chunk, chunks)?;
    // Count the lines written to its file as they come.
    let mut seen = 0u64;
    let mut file = None;
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(600);
    while seen < total {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("rsyslog wrote only {seen} of {total} lines in 10 minutes");
        }
        if file.is_none() {
            file = std::fs::File::open(&out).ok();
        }
        match file.as_mut().map(|f| f.read(&mut buf)) {
            Some(Ok(n)) if n > 0 => seen += buf[..n].iter().filter(|&&c| c == b'\n').count() as u64,
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_mib = peak_rss_mib(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    Ok(Run { seconds, store_bytes: std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0), peak_mib })
}
