//! Prometheus metrics: requests by route and status, their latencies, change events written,
//! store sizes and bit runs. Counters live in memory and start at zero with the process, as
//! Prometheus expects of counters.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrganisationLabels {
    organisation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    organisation: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BitLabels {
    bit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyslogLabels {
    counter: String,
}

type IntGauge = Gauge<i64, AtomicI64>;

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    events: Family<OrganisationLabels, Counter>,
    changes: Family<ChangeLabels, Counter>,
    store_bytes: Family<OrganisationLabels, Gauge<i64, AtomicI64>>,
    index_bytes: Family<OrganisationLabels, Gauge<i64, AtomicI64>>,
    cache_bytes: Family<OrganisationLabels, Gauge<i64, AtomicI64>>,
    bit_runs: Family<BitLabels, Gauge<i64, AtomicI64>>,
    bit_seconds: Family<BitLabels, Gauge<f64, AtomicU64>>,
    syslog_lines: Family<TransportLabels, IntGauge>,
    syslog_bytes: Family<TransportLabels, IntGauge>,
    syslog: Family<SyslogLabels, IntGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("octograph_http_requests", "HTTP requests answered, by route and status", requests.clone());
        // 50 µs to ~1.6 s.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register("octograph_http_request_duration_seconds", "Time to answer, by route", latency.clone());
        let events = Family::<OrganisationLabels, Counter>::default();
        registry.register("octograph_events", "Change events written by API calls", events.clone());
        let changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "octograph_object_changes",
            "Objects created, updated and deleted by API calls",
            changes.clone(),
        );
        let store_bytes = Family::<OrganisationLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "octograph_store_bytes",
            "Size of each organisation's store on disk (its file and its commit journal)",
            store_bytes.clone(),
        );
        let index_bytes = Family::<OrganisationLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "octograph_key_index_bytes",
            "Memory of each open organisation's key index (live keys by type)",
            index_bytes.clone(),
        );
        let cache_bytes = Family::<OrganisationLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "octograph_current_cache_bytes",
            "Memory of each open organisation's cache of current answers (recently read keys)",
            cache_bytes.clone(),
        );
        let bit_runs = Family::<BitLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("octograph_bit_runs", "Runs of each bit since start", bit_runs.clone());
        let bit_seconds = Family::<BitLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("octograph_bit_run_seconds", "Time spent in each bit since start", bit_seconds.clone());
        let syslog_lines = Family::<TransportLabels, IntGauge>::default();
        registry.register(
            "octograph_syslog_lines",
            "Syslog lines received since start, by transport",
            syslog_lines.clone(),
        );
        let syslog_bytes = Family::<TransportLabels, IntGauge>::default();
        registry.register(
            "octograph_syslog_bytes",
            "Syslog bytes received since start, by transport",
            syslog_bytes.clone(),
        );
        let syslog = Family::<SyslogLabels, IntGauge>::default();
        registry.register(
            "octograph_syslog",
            "The log pipeline: stored lines, store commits and errors, parse issues, truncated and refused lines, \
             UDP datagrams the kernel dropped, open connections, devices, raw store bytes",
            syslog.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            events,
            changes,
            store_bytes,
            index_bytes,
            cache_bytes,
            bit_runs,
            bit_seconds,
            syslog_lines,
            syslog_bytes,
            syslog,
        }
    }

    /// Counts an answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { method: method.into(), route: route.into(), status }).inc();
        self.latency.get_or_create(&RouteLabels { method: method.into(), route: route.into() }).observe(seconds);
    }

    /// Counts what a write did.
    pub fn observe_outcome(&self, organisation: &str, outcome: &octo_graph::Outcome) {
        let org = OrganisationLabels { organisation: organisation.into() };
        self.events.get_or_create(&org).inc_by(outcome.events.len() as u64);
        for (operation, n) in
            [("create", outcome.created.len()), ("update", outcome.updated.len()), ("delete", outcome.deleted.len())]
        {
            if n > 0 {
                let labels = ChangeLabels { organisation: organisation.into(), operation: operation.into() };
                self.changes.get_or_create(&labels).inc_by(n as u64);
            }
        }
    }

    /// Sets a store's size (read when metrics are scraped).
    pub fn set_store_bytes(&self, organisation: &str, bytes: u64) {
        let labels = OrganisationLabels { organisation: organisation.into() };
        self.store_bytes.get_or_create(&labels).set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets the memory of a store's key index (read when metrics are scraped).
    pub fn set_index_bytes(&self, organisation: &str, bytes: u64) {
        let labels = OrganisationLabels { organisation: organisation.into() };
        self.index_bytes.get_or_create(&labels).set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets an organisation's current-answer cache gauge (read when metrics are scraped).
    pub fn set_cache_bytes(&self, organisation: &str, bytes: u64) {
        let labels = OrganisationLabels { organisation: organisation.into() };
        self.cache_bytes.get_or_create(&labels).set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets the bit counters from the engine's own (read when metrics are scraped).
    pub fn set_bit_stats(&self, stats: &[octo_bits::BitRunStats]) {
        for s in stats {
            let labels = BitLabels { bit: s.id.clone() };
            self.bit_runs.get_or_create(&labels).set(i64::try_from(s.runs).unwrap_or(i64::MAX));
            self.bit_seconds.get_or_create(&labels).set(s.seconds);
        }
    }

    /// Sets the log pipeline's counters (read when metrics are scraped).
    pub fn set_log_stats(&self, stats: &octo_logs::stats::LogStats, devices: usize, store_bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (t, lines, bytes) in stats.by_transport() {
            let labels = TransportLabels { transport: t.name().into() };
            self.syslog_lines.get_or_create(&labels).set(int(lines));
            self.syslog_bytes.get_or_create(&labels).set(int(bytes));
        }
        for (name, value) in [
            ("stored_lines", int(stats.stored.load(Relaxed))),
            ("store_commits", int(stats.commits.load(Relaxed))),
            ("store_errors", int(stats.store_errors.load(Relaxed))),
            ("parse_issues", int(stats.parse_issues.load(Relaxed))),
            ("truncated_lines", int(stats.truncated.load(Relaxed))),
            ("refused_lines", int(stats.refused.load(Relaxed))),
            ("udp_kernel_drops", int(stats.udp_kernel_drops.load(Relaxed))),
            ("connections", stats.connections.load(Relaxed)),
            ("classified_lines", int(stats.classified.load(Relaxed))),
            ("unknown_lines", int(stats.unknown.load(Relaxed))),
            ("unclassified_lines", int(stats.unclassified.load(Relaxed))),
            ("table_errors", int(stats.table_errors.load(Relaxed))),
            ("evidence_dropped", int(stats.evidence_dropped.load(Relaxed))),
            ("devices", int(devices as u64)),
            ("raw_store_bytes", int(store_bytes)),
        ] {
            self.syslog.get_or_create(&SyslogLabels { counter: name.into() }).set(value);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
