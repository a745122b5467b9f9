//! `octograph bench tables`: fills the `Auth` table with synthetic sshd rows (a few heavy
//! attackers and a long tail of addresses, as real logs have) and times the questions a SIEM
//! user asks of it, above all "failed logins per source address over the last 24 hours".

use std::collections::BTreeMap;
use std::time::Instant;

use octo_tables::{Answer, Query, Row, TableOptions, TableStore};

const HOUR: i64 = 3_600_000_000;

/// A small, fast, deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Skewed towards small numbers: a few values take most draws.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n) + 1;
        self.below(a)
    }
}

/// The time of the newest row of `Auth`.
fn newest(store: &TableStore) -> anyhow::Result<i64> {
    let mut q = Query::new("Auth");
    q.limit = 1;
    match store.query(&q)?.answer {
        Answer::Rows(r) => {
            let t = r.first().and_then(|r| r["time"].as_str()).unwrap_or_default();
            Ok(t.parse::<octo_logs::LogTime>().map_err(anyhow::Error::msg)?.micros() + 1)
        }
        Answer::Groups(_) => anyhow::bail!("rows expected"),
    }
}

pub fn run(
    rows: u64,
    days: u64,
    dir: Option<std::path::PathBuf>,
    runs: usize,
    only: Option<usize>,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().join("tables"));
    let schemas = octo_logs::tables::builtin();
    let options = TableOptions::default();
    // A directory that holds the table already is queried as it is (to repeat the queries).
    let reuse = dir.join("checkpoint.json").exists();
    let store = TableStore::open(&dir, options.clone())?;
    store.set_schemas(schemas.clone());
    let now = if reuse { newest(&store)? } else { octo_logs::LogTime::now().micros() };
    let span = (days.max(1) as i64) * 24 * HOUR;
    let messages = [
        ("Sshd:failed", "Auth.Failure", "warning", 40),
        ("Sshd:failed_invalid_user", "Auth.Failure", "warning", 20),
        ("Sshd:invalid_user", "Auth.Failure", "warning", 15),
        ("Sshd:accepted", "Auth.Success", "notice", 10),
        ("Sshd:connection_closed", "Network.Connection", "information", 15),
    ];
    let devices: Vec<String> = (0..50).map(|i| format!("srv{i:02}")).collect();
    let users: Vec<String> = (0..5000)
        .map(|i| {
            if i < 8 {
                ["root", "admin", "test", "oracle", "ubuntu", "pi", "git", "user"][i].to_owned()
            } else {
                format!("user{i}")
            }
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut ip = String::new();
    let mut port = String::new();
    for i in 0..if reuse { 0 } else { rows } {
        let pick = rng.below(100);
        let mut acc = 0;
        let (message, taxonomy, level, _) = messages
            .iter()
            .find(|m| {
                acc += m.3;
                pick < acc
            })
            .copied()
            .unwrap_or(messages[0]);
        ip.clear();
        use std::fmt::Write;
        if message == "Sshd:accepted" {
            // Logins come from the inside: a few thousand addresses of 10.0.0.0/8.
            let a = rng.below(4096) as u32;
            let _ = write!(ip, "10.{}.{}.{}", a >> 8, a & 255, 1 + a % 250);
        } else {
            // Attackers: 100,000 addresses spread over the internet, a few of them very busy.
            let a = (rng.skewed(100_000) as u32).wrapping_mul(2_654_435_761);
            let _ = write!(ip, "{}.{}.{}.{}", 11 + (a >> 24) % 212, (a >> 16) & 255, (a >> 8) & 255, 1 + a % 250);
        }
        port.clear();
        let _ = write!(port, "{}", 1024 + rng.below(64_000));
        let user = &users[rng.skewed(users.len() as u64) as usize];
        let time = now - span + (i as i64 * span) / rows as i64;
        let fields: [(&str, &str); 4] = [("method", "password"), ("user", user), ("src_ip", &ip), ("src_port", &port)];
        let n = if message == "Sshd:connection_closed" { 0 } else { 4 };
        let row = Row {
            time,
            received: time,
            device: &devices[rng.below(devices.len() as u64) as usize],
            service: "Sshd",
            message,
            taxonomy,
            level,
            fields: if n == 0 { &fields[2..3] } else { &fields[..] },
        };
        if store.append("Auth", &row)? {
            store.flush(&BTreeMap::new())?;
        }
    }
    store.flush(&BTreeMap::new())?;
    let load = started.elapsed().as_secs_f64();
    if reuse {
        println!("querying the table in {}", dir.display());
    }
    let info = store.tables().into_iter().find(|t| t.schema.name == "Auth");
    let (segments, bytes) = info.map_or((0, 0), |t| (t.segments, t.bytes));
    if !reuse {
        println!(
        "loaded {rows} rows over {days} day(s) in {load:.1} s = {:.0} rows/s (one thread, flushes included); {segments} segments, {:.1} MiB on disk = {:.1} bytes/row",
        rows as f64 / load,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / rows.max(1) as f64
    );
    }
    drop(store);

    let mut failures = Query::new("Auth");
    failures.from = Some(now - 24 * HOUR);
    failures.filters.push("taxonomy=Auth.Failure".parse().map_err(anyhow::Error::msg)?);
    failures.group_by.push("src_ip".into());
    failures.limit = 20;
    let mut series = Query::new("Auth");
    series.from = Some(now - 24 * HOUR);
    series.filters.push("taxonomy=Auth.Failure".parse().map_err(anyhow::Error::msg)?);
    series.bucket = Some(HOUR);
    series.limit = 1000;
    let mut network = Query::new("Auth");
    network.from = Some(now - 24 * HOUR);
    network.filters.push("src_ip~10.0.0.0/8".parse().map_err(anyhow::Error::msg)?);
    network.filters.push("message=Sshd:accepted".parse().map_err(anyhow::Error::msg)?);
    network.group_by = vec!["user".into(), "device".into()];
    let mut newest = Query::new("Auth");
    // The busiest attacker (the generator's first address).
    let top = 0u32.wrapping_mul(2_654_435_761);
    let top = format!("src_ip={}.{}.{}.{}", 11 + (top >> 24) % 212, (top >> 16) & 255, (top >> 8) & 255, 1 + top % 250);
    newest.filters.push(top.parse().map_err(anyhow::Error::msg)?);
    newest.filters.push("taxonomy=Auth.Failure".parse().map_err(anyhow::Error::msg)?);
    let cases = [
        ("failed logins per source address, last 24 h, top 20", failures),
        ("failed logins per hour, last 24 h", series),
        ("accepted logins from 10.0.0.0/8 by user and device, last 24 h", network),
        ("newest 100 failed logins of one address", newest),
    ];
    for (i, (name, q)) in cases.into_iter().enumerate() {
        if only.is_some_and(|o| o != i + 1) {
            continue;
        }
        // Cold: a store opened afresh, nothing decoded in memory (the files may be in the page
        // cache; the machine's cache is not dropped).
        let cold_store = TableStore::open_read_only(&dir, options.clone())?;
        cold_store.set_schemas(schemas.clone());
        let t = Instant::now();
        let out = cold_store.query(&q)?;
        let cold = t.elapsed().as_secs_f64() * 1e3;
        let mut warm = Vec::new();
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            std::hint::black_box(cold_store.query(&q)?);
            warm.push(t.elapsed().as_secs_f64() * 1e3);
        }
        warm.sort_by(f64::total_cmp);
        let first = match &out.answer {
            Answer::Groups(g) => g.first().map(|g| format!("{:?} = {}", g.key, g.count)).unwrap_or_default(),
            Answer::Rows(r) => format!("{} rows", r.len()),
        };
        println!(
            "{name}: cold {cold:.1} ms, warm median {:.1} ms (of {}); scanned {} rows, matched {}, {} groups; first: {first}",
            warm[warm.len() / 2],
            warm.len(),
            out.scanned,
            out.matched,
            out.groups
        );
    }
    Ok(())
}
