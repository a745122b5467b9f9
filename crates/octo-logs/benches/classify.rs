//! Lines classified per second, one core, with the whole built-in library loaded: loghub's
//! OpenSSH and Linux lines (parse + dispatch to a message + field extraction).
//! `cargo bench -p octo-logs --bench classify`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use octo_logs::classify::Plan;
use octo_logs::services::{builtin, octopussy};
use octo_logs::{parse, Classifier, ParseContext, TimeZoneSpec};

/// Parses and classifies every line; the fields found, so nothing is optimised away.
fn classify_all(classifier: &Classifier, plan: &Plan, lines: &[String], ctx: &ParseContext) -> usize {
    let mut n = 0usize;
    for l in lines {
        let m = parse(l, ctx);
        if let Some(hit) = classifier.classify_with(plan, l, &m, "dev") {
            n += hit.fields.len();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let lines = common::loghub_lines();
    let ctx = ParseContext { received: "2026-11-22T12:00:00Z".parse().unwrap(), timezone: TimeZoneSpec::Fixed(0) };
    let library = builtin();
    let names: Vec<String> = library.iter().map(|s| s.name.clone()).collect();
    let classifier = Classifier::new(&library).unwrap();
    let plan = classifier.plan(&names);
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("builtin", |b| b.iter(|| classify_all(&classifier, &plan, &lines, &ctx)));
    // Octopussy's own 151 services (4,016 messages), as a device with all of them would try them.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/octopussy/services/");
    let mut services = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        if let Ok(s) = octopussy::parse(&text, &e.path().display().to_string()) {
            services.push(s);
        }
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    if let Ok(classifier) = Classifier::new(&services) {
        let plan = classifier.plan(&names);
        g.bench_function("octopussy_all_151", |b| b.iter(|| classify_all(&classifier, &plan, &lines, &ctx)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
