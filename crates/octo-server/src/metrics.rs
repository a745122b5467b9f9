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

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    events: Family<OrganisationLabels, Counter>,
    changes: Family<ChangeLabels, Counter>,
    store_bytes: Family<OrganisationLabels, Gauge<i64, AtomicI64>>,
    bit_runs: Family<BitLabels, Gauge<i64, AtomicI64>>,
    bit_seconds: Family<BitLabels, Gauge<f64, AtomicU64>>,
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
        registry.register("octograph_store_bytes", "Size of each organisation's store file", store_bytes.clone());
        let bit_runs = Family::<BitLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("octograph_bit_runs", "Runs of each bit since start", bit_runs.clone());
        let bit_seconds = Family::<BitLabels, Gauge<f64, AtomicU64>>::default();
        registry.register("octograph_bit_run_seconds", "Time spent in each bit since start", bit_seconds.clone());
        Metrics { registry, requests, latency, events, changes, store_bytes, bit_runs, bit_seconds }
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

    /// Sets the bit counters from the engine's own (read when metrics are scraped).
    pub fn set_bit_stats(&self, stats: &[octo_bits::BitRunStats]) {
        for s in stats {
            let labels = BitLabels { bit: s.id.clone() };
            self.bit_runs.get_or_create(&labels).set(i64::try_from(s.runs).unwrap_or(i64::MAX));
            self.bit_seconds.get_or_create(&labels).set(s.seconds);
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
