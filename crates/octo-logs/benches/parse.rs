//! Lines per second through the parsers, one core: RFC 3164 (loghub's OpenSSH and Linux lines
//! with a PRI, as a device sends them) and RFC 5424 (the same messages with a full header, a
//! third with structured data). `cargo bench -p octo-logs --bench parse`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use octo_logs::{parse, ParseContext, TimeZoneSpec};

fn rfc5424(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let c = ParseContext::now();
            let m = parse(l, &c);
            let sd = if i % 3 == 0 { r#"[origin ip="192.0.2.7" software="sshd"][meta sequenceId="42"]"# } else { "-" };
            format!(
                "<38>1 2026-11-22T10:15:{:02}.{:06}+01:00 {} {} {} - {sd} {}",
                i % 60,
                i * 7 % 1_000_000,
                m.hostname.unwrap_or("-"),
                m.app_name.unwrap_or("-"),
                m.proc_id.unwrap_or("-"),
                m.msg
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bsd = common::loghub_lines();
    let ietf = rfc5424(&bsd);
    let ctx = ParseContext { received: "2026-11-22T12:00:00Z".parse().unwrap(), timezone: TimeZoneSpec::Fixed(0) };
    let mut g = c.benchmark_group("parse");
    for (name, lines) in [("rfc3164", &bsd), ("rfc5424", &ietf)] {
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in lines.iter() {
                    let m = parse(std::hint::black_box(l), &ctx);
                    n += m.msg.len() + usize::from(m.timestamp.is_some());
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
