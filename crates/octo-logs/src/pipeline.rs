//! The pipeline that every received line goes through: parse the header (for the hostname),
//! dispatch to a device, and append to the raw store — durably — before the receiver reads
//! more or acknowledges. One writer thread makes the appends of all connections one group
//! commit per round, so many connections share each `fdatasync`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::device::{DeviceEntry, DeviceError, DeviceRegistry, Dispatch, NewDevices};
use crate::parse::{parse, ParseContext};
use crate::raw_store::{RawLine, RawStore, RawStoreError, RawStoreOptions};
use crate::stats::LogStats;
use crate::time::TimeZoneSpec;

/// A TLS listener (RFC 5425).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListener {
    /// Where it listens (6514 is the registered port).
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
    /// Speak RELP over TLS instead of plain syslog.
    #[serde(default)]
    pub relp: bool,
}

/// The `[logs]` table of `octograph.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// UDP addresses to receive on (RFC 5426; 514 is the registered port).
    pub udp: Vec<SocketAddr>,
    /// TCP addresses (RFC 6587, octet counting or lines, detected per connection).
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners.
    pub tls: Vec<TlsListener>,
    /// RELP addresses (rsyslog's `omrelp`).
    pub relp: Vec<SocketAddr>,
    /// What is done with lines from senders that are no device yet.
    pub new_devices: NewDevices,
    /// The zone of timestamps without an offset, for devices that name none.
    pub timezone: TimeZoneSpec,
    /// Longer messages are cut here (and counted).
    pub max_line_bytes: usize,
    /// Stored lines older than this many days are deleted (default: kept).
    pub retention_days: Option<u64>,
    /// The raw store is kept under this many MiB, oldest hours first (default: no limit).
    pub retention_mb: Option<u64>,
    /// The kernel receive buffer asked for each UDP socket, in KiB.
    pub udp_receive_buffer_kb: usize,
    /// Open TCP/TLS/RELP connections accepted at once; more wait in the listen queue.
    pub max_connections: usize,
    /// zstd level of the raw store.
    pub zstd_level: i32,
    /// The organisation whose graph receives the evidence of classified lines.
    pub organisation: String,
    /// Evidence is written to the graph this often, as one observation per device and service.
    pub evidence_seconds: u64,
    /// An object stays in a device's observation this long after the last line that showed it.
    pub evidence_window_hours: u64,
    /// Classified rows are sealed into their tables' files this often (and after a crash, the
    /// lines of at most this long are classified again on start).
    pub table_flush_seconds: u64,
    /// … or when this many rows wait to be sealed.
    pub table_segment_rows: usize,
    /// Memory for decoded table columns kept between queries, in MiB.
    pub table_cache_mb: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            relp: Vec::new(),
            new_devices: NewDevices::Pending,
            timezone: TimeZoneSpec::default(),
            max_line_bytes: 64 << 10,
            retention_days: None,
            retention_mb: None,
            udp_receive_buffer_kb: 4096,
            max_connections: 4096,
            zstd_level: 1,
            organisation: "default".into(),
            evidence_seconds: 10,
            evidence_window_hours: 24,
            table_flush_seconds: 300,
            table_segment_rows: 1 << 20,
            table_cache_mb: 256,
        }
    }
}

impl LogsConfig {
    /// Whether any receiver is configured.
    pub fn listens(&self) -> bool {
        !(self.udp.is_empty() && self.tcp.is_empty() && self.tls.is_empty() && self.relp.is_empty())
    }
}

/// Why ingesting failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The raw store.
    #[error(transparent)]
    Store(#[from] RawStoreError),
    /// The device registry.
    #[error(transparent)]
    Devices(#[from] DeviceError),
    /// A service of the library.
    #[error(transparent)]
    Services(#[from] crate::services::ServiceError),
    /// The tables of classified lines.
    #[error(transparent)]
    Tables(#[from] octo_tables::TableError),
    /// The writer thread is gone (the process is stopping).
    #[error("the raw log store writer has stopped")]
    Stopped,
}

struct Job {
    lines: Vec<(Arc<str>, RawLine)>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// The pipeline: store, devices, counters and the writer.
pub struct Pipeline {
    /// The compiled library; replaced whole when services change.
    classifier: Arc<std::sync::RwLock<Arc<crate::classify::Classifier>>>,
    /// Where imported services live.
    services_dir: std::path::PathBuf,
    /// Where imported table schemas live.
    schemas_dir: std::path::PathBuf,
    store: Arc<RawStore>,
    tables: Arc<octo_tables::TableStore>,
    /// Tells the classification thread to seal the open table segments now.
    flush_now: std::sync::mpsc::SyncSender<Batch>,
    devices: Arc<DeviceRegistry>,
    stats: Arc<LogStats>,
    config: LogsConfig,
    writer: mpsc::Sender<Job>,
    /// Held by the writer around each round; [`Pipeline::pause`] takes it to hold writes.
    gate: Arc<std::sync::Mutex<()>>,
    /// Where evidence goes, until [`Pipeline::evidence`] takes it.
    evidence: std::sync::Mutex<Option<mpsc::Receiver<Evidence>>>,
}

/// What one classified line is evidence of, for the knowledge graph.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The device that sent it.
    pub device: Arc<str>,
    /// Its service.
    pub service: String,
    /// Its message id.
    pub message: String,
    /// When it was received.
    pub received: crate::time::LogTime,
    /// The objects (Octopoes' JSON shape), from the message's `observe`.
    pub objects: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Writes to the raw store wait while this lives (see [`Pipeline::pause`]).
pub struct Paused<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, ()>);

/// Rounds of the writer hold at most this many lines.
const MAX_ROUND_LINES: usize = 64 << 10;

impl Pipeline {
    /// Opens the log data in `dir` (`devices.json`, `raw/`, `tables/`, user services in
    /// `services/` and table schemas in `schemas/`) and starts the writer and classification
    /// threads. Lines stored but not yet in the tables when the process last stopped (at most
    /// `table_flush_seconds` of them) are classified again first.
    pub fn open(dir: &Path, config: LogsConfig) -> Result<Arc<Pipeline>, PipelineError> {
        let services_dir = dir.join("services");
        let schemas_dir = dir.join("schemas");
        let library = crate::services::library(Some(&services_dir))?;
        let classifier = Arc::new(std::sync::RwLock::new(Arc::new(crate::classify::Classifier::new(&library)?)));
        let store = Arc::new(RawStore::open(&dir.join("raw"), RawStoreOptions { zstd_level: config.zstd_level })?);
        let devices = Arc::new(DeviceRegistry::open(&dir.join("devices.json"), config.new_devices)?);
        let options = octo_tables::TableOptions {
            zstd_level: config.zstd_level.max(1),
            segment_rows: config.table_segment_rows.max(1),
            cache_bytes: config.table_cache_mb << 20,
        };
        let tables = Arc::new(octo_tables::TableStore::open(&dir.join("tables"), options)?);
        tables.set_schemas(crate::tables::schemas(Some(&schemas_dir))?);
        let stats = Arc::new(LogStats::default());
        let flush_every = std::time::Duration::from_secs(config.table_flush_seconds.max(1));
        let mut tabulator = Tabulator::new(tables.clone(), flush_every);
        {
            let c = classifier.read().unwrap_or_else(|p| p.into_inner()).clone();
            let replayed = catch_up(&c, &store, &devices, &mut tabulator, config.timezone)?;
            if replayed > 0 {
                tracing::info!(lines = replayed, "classified the lines stored after the tables' last flush");
            }
        }
        let (tx, rx) = mpsc::channel::<Job>(256);
        let gate = Arc::new(std::sync::Mutex::new(()));
        // Stored batches go on to classification in a thread of its own, so that classifying
        // never delays the acknowledgement of durable lines.
        let (stored_tx, stored_rx) = std::sync::mpsc::sync_channel::<Batch>(64);
        let (evidence_tx, evidence_rx) = mpsc::channel::<Evidence>(4096);
        let (s, st, g, flush_tx) = (store.clone(), stats.clone(), gate.clone(), stored_tx.clone());
        std::thread::Builder::new()
            .name("octograph-rawlog".into())
            .spawn(move || write_rounds(rx, &s, &st, &g, &stored_tx))
            .map_err(|e| RawStoreError::Io { path: dir.to_owned(), source: e })?;
        let (c, d, st, tz) = (classifier.clone(), devices.clone(), stats.clone(), config.timezone);
        std::thread::Builder::new()
            .name("octograph-classify".into())
            .spawn(move || classify_stored(stored_rx, &c, &d, &st, tz, &evidence_tx, tabulator))
            .map_err(|e| RawStoreError::Io { path: dir.to_owned(), source: e })?;
        Ok(Arc::new(Pipeline {
            classifier,
            services_dir,
            schemas_dir,
            tables,
            flush_now: flush_tx,
            store,
            devices,
            stats,
            config,
            writer: tx,
            gate,
            evidence: std::sync::Mutex::new(Some(evidence_rx)),
        }))
    }

    /// Holds every write to the raw store until the guard is dropped (to copy the store for a
    /// backup while receivers keep their connections). Receivers then stop reading once the
    /// writer's queue is full: TCP senders wait, UDP datagrams overflow the kernel's buffer.
    pub fn pause(&self) -> Paused<'_> {
        Paused(self.gate.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The evidence of classified lines of active devices, for the knowledge graph (taken
    /// once; evidence is dropped, and counted, while nobody has taken it or keeps up).
    pub fn evidence(&self) -> Option<mpsc::Receiver<Evidence>> {
        self.evidence.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The compiled service library.
    pub fn classifier(&self) -> Arc<crate::classify::Classifier> {
        self.classifier.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The services as loaded: built-in ones and those imported into the data directory.
    pub fn library(&self) -> Result<Vec<crate::services::Service>, PipelineError> {
        Ok(crate::services::library(Some(&self.services_dir))?)
    }

    /// Whether a service was imported (it can be replaced or removed; a built-in one cannot be
    /// removed, only replaced by an imported one of its name).
    pub fn is_imported(&self, name: &str) -> bool {
        crate::services::native::check_name(name).is_ok() && self.services_dir.join(format!("{name}.toml")).exists()
    }

    /// Reads the services again (after the command line imported some) and starts classifying
    /// with them; a library that does not compile is refused and the old one kept.
    pub fn reload_services(&self) -> Result<(), PipelineError> {
        let library = self.library()?;
        let fresh = Arc::new(crate::classify::Classifier::new(&library)?);
        *self.classifier.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Saves a service into the data directory (replacing an imported one of its name) and
    /// classifies with it from now on; nothing is written unless the whole library compiles.
    pub fn save_service(&self, service: &crate::services::Service) -> Result<(), PipelineError> {
        let mut library = self.library()?;
        match library.iter_mut().find(|s| s.name == service.name) {
            Some(s) => *s = service.clone(),
            None => library.push(service.clone()),
        }
        let fresh = Arc::new(crate::classify::Classifier::new(&library)?);
        let io =
            |e: std::io::Error| PipelineError::Store(RawStoreError::Io { path: self.services_dir.clone(), source: e });
        std::fs::create_dir_all(&self.services_dir).map_err(io)?;
        let target = self.services_dir.join(format!("{}.toml", service.name));
        let tmp = target.with_extension("toml.tmp");
        std::fs::write(&tmp, crate::services::native::to_toml(service)).map_err(io)?;
        std::fs::rename(&tmp, &target).map_err(io)?;
        *self.classifier.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// Removes an imported service (a built-in one of its name, if any, applies again).
    pub fn remove_service(&self, name: &str) -> Result<bool, PipelineError> {
        if !self.is_imported(name) {
            return Ok(false);
        }
        let path = self.services_dir.join(format!("{name}.toml"));
        std::fs::remove_file(&path).map_err(|e| PipelineError::Store(RawStoreError::Io { path, source: e }))?;
        self.reload_services()?;
        Ok(true)
    }

    /// A stamp of the services and table schema directories, to notice imports by another
    /// process.
    pub fn services_stamp(&self) -> Vec<(String, std::time::SystemTime)> {
        let mut v: Vec<(String, std::time::SystemTime)> = [&self.services_dir, &self.schemas_dir]
            .iter()
            .flat_map(|dir| {
                std::fs::read_dir(dir).into_iter().flat_map(|d| {
                    d.flatten()
                        .filter_map(|e| Some((e.path().to_str()?.to_owned(), e.metadata().ok()?.modified().ok()?)))
                })
            })
            .collect();
        v.sort();
        v
    }

    /// A stored line of a device as the API and `replay` show it: [`RawLine::to_json`] plus the
    /// message it classifies as (with the device's services; a device naming none is tried
    /// against the whole library), or `"message": null` when it is unknown.
    pub fn describe(&self, device: &crate::device::Device, line: &RawLine) -> serde_json::Value {
        describe(&self.classifier(), device, self.config.timezone, line)
    }

    /// The unknown lines of a device received in `[from, to)`, grouped by shape with a pattern
    /// proposed per group, classified with the device's services as they are now.
    pub fn unknown(
        &self,
        device: &crate::device::Device,
        from: Option<crate::time::LogTime>,
        to: Option<crate::time::LogTime>,
    ) -> Result<Vec<crate::unknown::UnknownGroup>, PipelineError> {
        unknown(&self.classifier(), &self.store, device, self.config.timezone, from, to)
    }

    /// The raw store.
    pub fn store(&self) -> &Arc<RawStore> {
        &self.store
    }

    /// The tables of classified lines.
    pub fn tables(&self) -> &Arc<octo_tables::TableStore> {
        &self.tables
    }

    /// Seals the rows classified so far into their tables and returns once they are durable
    /// (on a graceful stop, so the next start has nothing to classify again).
    pub fn flush_tables(&self) -> Result<(), PipelineError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.flush_now.send(Batch::Flush(tx)).map_err(|_| PipelineError::Stopped)?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(m)) => Err(PipelineError::Tables(octo_tables::TableError::Io {
                path: self.tables.dir().to_owned(),
                source: std::io::Error::other(m),
            })),
            Err(_) => Err(PipelineError::Stopped),
        }
    }

    /// Reads the table schemas again (after the command line imported some); rows appended
    /// from now on are typed by them.
    pub fn reload_schemas(&self) -> Result<(), PipelineError> {
        self.tables.set_schemas(crate::tables::schemas(Some(&self.schemas_dir))?);
        Ok(())
    }

    /// The devices.
    pub fn devices(&self) -> &Arc<DeviceRegistry> {
        &self.devices
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<LogStats> {
        &self.stats
    }

    /// The settings.
    pub fn config(&self) -> &LogsConfig {
        &self.config
    }

    /// Applies the configured retention to the raw store once.
    pub fn apply_retention(&self) -> Result<crate::raw_store::Removed, PipelineError> {
        let age = self.config.retention_days.map(|d| std::time::Duration::from_secs(d * 86_400));
        let bytes = self.config.retention_mb.map(|mb| mb << 20);
        if age.is_none() && bytes.is_none() {
            return Ok(Default::default());
        }
        let now = crate::time::LogTime::now();
        if let Some(age) = age {
            // Table rows go with the lines they came from (by age; the size limit is the raw
            // store's, which holds by far the most).
            let cutoff = now.micros().saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
            self.tables.remove_before(cutoff)?;
        }
        Ok(self.store.apply_retention(now, age, bytes)?)
    }

    /// Dispatches lines to their devices and makes them durable; returns once they are.
    pub async fn ingest(&self, lines: Vec<RawLine>) -> Result<usize, PipelineError> {
        let job = self.prepare(lines)?;
        let n = job.len();
        if n == 0 {
            return Ok(0);
        }
        let (tx, rx) = oneshot::channel();
        self.writer.send(Job { lines: job, done: Some(tx) }).await.map_err(|_| PipelineError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(n),
            Ok(Err(message)) => Err(PipelineError::Store(RawStoreError::Io {
                path: self.store.dir().to_owned(),
                source: std::io::Error::other(message),
            })),
            Err(_) => Err(PipelineError::Stopped),
        }
    }

    /// Dispatches lines and queues them for the store without waiting for durability (UDP,
    /// which has no acknowledgement to hold back); waits only for room in the queue.
    pub async fn submit(&self, lines: Vec<RawLine>) -> Result<usize, PipelineError> {
        let job = self.prepare(lines)?;
        let n = job.len();
        if n > 0 {
            self.writer.send(Job { lines: job, done: None }).await.map_err(|_| PipelineError::Stopped)?;
        }
        Ok(n)
    }

    /// The blocking form of [`Pipeline::ingest`], for callers outside the async runtime.
    pub fn ingest_blocking(&self, lines: Vec<RawLine>) -> Result<usize, PipelineError> {
        let job = self.prepare(lines)?;
        let n = job.len();
        if n == 0 {
            return Ok(0);
        }
        let (tx, rx) = oneshot::channel();
        self.writer.blocking_send(Job { lines: job, done: Some(tx) }).map_err(|_| PipelineError::Stopped)?;
        match rx.blocking_recv() {
            Ok(Ok(())) => Ok(n),
            Ok(Err(message)) => Err(PipelineError::Store(RawStoreError::Io {
                path: self.store.dir().to_owned(),
                source: std::io::Error::other(message),
            })),
            Err(_) => Err(PipelineError::Stopped),
        }
    }

    fn prepare(&self, lines: Vec<RawLine>) -> Result<Vec<(Arc<str>, RawLine)>, PipelineError> {
        /// The last dispatch: consecutive lines mostly come from the same device.
        struct Last {
            hostname: Option<String>,
            address: Option<std::net::IpAddr>,
            entry: Arc<DeviceEntry>,
            name: Arc<str>,
        }
        let mut out = Vec::with_capacity(lines.len());
        let mut last: Option<Last> = None;
        for line in lines {
            self.stats.received(line.transport, line.bytes.len());
            let text = String::from_utf8_lossy(&line.bytes);
            let ctx = ParseContext { received: line.received, timezone: self.config.timezone };
            let m = parse(&text, &ctx);
            if m.issue.is_some() {
                self.stats.parse_issues.fetch_add(1, Ordering::Relaxed);
            }
            let address = line.peer.map(|p| p.ip());
            let hit = last.as_ref().filter(|l| l.hostname.as_deref() == m.hostname && l.address == address);
            let (entry, name) = match hit {
                Some(l) => (l.entry.clone(), l.name.clone()),
                None => match self.devices.dispatch(m.hostname, address)? {
                    Dispatch::Device(entry) => {
                        let name: Arc<str> = Arc::from(entry.device.name.as_str());
                        let hostname = m.hostname.map(str::to_owned);
                        last = Some(Last { hostname, address, entry: entry.clone(), name: name.clone() });
                        (entry, name)
                    }
                    Dispatch::Refused => {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                },
            };
            drop(text);
            entry.seen(line.received);
            out.push((name, line));
        }
        Ok(out)
    }
}

/// [`Pipeline::describe`] for callers that have a classifier but no pipeline (`replay`).
pub fn describe(
    classifier: &crate::classify::Classifier,
    device: &crate::device::Device,
    default_zone: TimeZoneSpec,
    line: &RawLine,
) -> serde_json::Value {
    let timezone = device.timezone.unwrap_or(default_zone);
    let mut v = line.to_json(timezone);
    let text = String::from_utf8_lossy(&line.bytes);
    let m = parse(&text, &ParseContext { received: line.received, timezone });
    let all;
    let services = if device.services.is_empty() {
        all = classifier.services().to_vec();
        &all
    } else {
        &device.services
    };
    let message = classifier.classify(services, &text, &m, &device.name).map(|hit| {
        let fields: serde_json::Map<String, serde_json::Value> =
            hit.fields.into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
        serde_json::json!({
            "id": hit.message.id, "service": hit.service, "level": hit.message.level,
            "taxonomy": hit.message.taxonomy, "table": hit.message.table, "fields": fields,
        })
    });
    if let Some(o) = v.as_object_mut() {
        o.insert("message".into(), message.unwrap_or(serde_json::Value::Null));
    }
    v
}

/// [`Pipeline::unknown`] for callers with a classifier and a store but no pipeline.
pub fn unknown(
    classifier: &crate::classify::Classifier,
    store: &RawStore,
    device: &crate::device::Device,
    default_zone: TimeZoneSpec,
    from: Option<crate::time::LogTime>,
    to: Option<crate::time::LogTime>,
) -> Result<Vec<crate::unknown::UnknownGroup>, PipelineError> {
    let services = if device.services.is_empty() { classifier.services().to_vec() } else { device.services.clone() };
    let plan = classifier.plan(&services);
    let timezone = device.timezone.unwrap_or(default_zone);
    let mut groups = crate::unknown::UnknownGroups::default();
    for line in store.read(&device.name, from, to)? {
        let line = line?;
        let text = String::from_utf8_lossy(&line.bytes);
        let m = parse(&text, &ParseContext { received: line.received, timezone });
        groups.offer(classifier, &plan, &text, &m, &device.name, line.received);
    }
    Ok(groups.finish())
}

/// The writer thread: takes what is queued, appends it in one group commit, answers everyone.
fn write_rounds(
    mut rx: mpsc::Receiver<Job>,
    store: &RawStore,
    stats: &LogStats,
    gate: &std::sync::Mutex<()>,
    stored: &std::sync::mpsc::SyncSender<Batch>,
) {
    while let Some(first) = rx.blocking_recv() {
        let _open = gate.lock().unwrap_or_else(|p| p.into_inner());
        let mut jobs = vec![first];
        let mut n = jobs[0].lines.len();
        while n < MAX_ROUND_LINES {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.lines.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let all: Vec<(&str, RawLine)> =
            jobs.iter().flat_map(|j| j.lines.iter().map(|(d, l)| (&**d, l.clone()))).collect();
        let result = store.append(&all).map_err(|e| e.to_string());
        match &result {
            Ok(()) => {
                stats.stored.fetch_add(n as u64, Ordering::Relaxed);
                stats.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, lines = n, "the raw log store could not write a batch");
            }
        }
        let ok = result.is_ok();
        let mut batch = Vec::with_capacity(n);
        for j in jobs {
            if let Some(done) = j.done {
                let _ = done.send(result.clone());
            }
            if ok {
                batch.extend(j.lines);
            }
        }
        if ok {
            // Classification must not hold back the store: when it lags, the batch is left to
            // `replay` and counted.
            if let Err(std::sync::mpsc::TrySendError::Full(Batch::Lines(b))) = stored.try_send(Batch::Lines(batch)) {
                stats.unclassified.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// What the classification thread is handed.
enum Batch {
    /// Lines just made durable.
    Lines(Vec<(Arc<str>, RawLine)>),
    /// Seal the open table segments now and say when done.
    Flush(std::sync::mpsc::Sender<Result<(), String>>),
}

/// Puts classified lines into their tables and seals them from time to time, keeping the
/// checkpoint: per device, the receive time of the last line it has classified.
struct Tabulator {
    tables: Arc<octo_tables::TableStore>,
    progress: std::collections::BTreeMap<String, i64>,
    last_flush: std::time::Instant,
    every: std::time::Duration,
}

impl Tabulator {
    fn new(tables: Arc<octo_tables::TableStore>, every: std::time::Duration) -> Tabulator {
        Tabulator { tables, progress: Default::default(), last_flush: std::time::Instant::now(), every }
    }

    /// Records a line of `device` as classified, and its row when it has one.
    fn add(
        &mut self,
        device: &str,
        line: &RawLine,
        m: &crate::message::Syslog<'_>,
        hit: Option<&crate::classify::Classified<'_>>,
    ) -> Result<(), octo_tables::TableError> {
        match self.progress.get_mut(device) {
            Some(t) => *t = (*t).max(line.received.micros()),
            None => {
                self.progress.insert(device.to_owned(), line.received.micros());
            }
        }
        let Some(hit) = hit else { return Ok(()) };
        // Octopussy's canonical patterns capture the header's time and host; the fixed columns
        // `time` and `device` hold them.
        let canonical = hit.message.subject == crate::services::Subject::Canonical;
        let fields: Vec<(&str, &str)> = hit
            .fields
            .iter()
            .filter(|(k, _)| !(canonical && matches!(*k, "datetime" | "device")))
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let row = octo_tables::Row {
            time: m.timestamp.unwrap_or(line.received).micros(),
            received: line.received.micros(),
            device,
            service: hit.service,
            message: &hit.message.id,
            taxonomy: &hit.message.taxonomy,
            level: hit.message.level.name(),
            fields: &fields,
        };
        if self.tables.append(&hit.message.table, &row)? {
            self.flush()?;
        }
        Ok(())
    }

    /// Seals what is open when it is time.
    fn tick(&mut self) {
        if self.last_flush.elapsed() >= self.every {
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "the tables could not be flushed; retrying later");
            }
        }
    }

    fn flush(&mut self) -> Result<(), octo_tables::TableError> {
        self.last_flush = std::time::Instant::now();
        self.tables.flush(&self.progress)
    }
}

/// Classifies the lines stored after the tables' checkpoint (those a crash or a stop kept out
/// of the tables), then flushes; returns how many lines were read. Tables that never flushed
/// start from now.
fn catch_up(
    classifier: &crate::classify::Classifier,
    store: &RawStore,
    devices: &DeviceRegistry,
    tabulator: &mut Tabulator,
    default_zone: TimeZoneSpec,
) -> Result<u64, PipelineError> {
    let (checkpoint, written) = tabulator.tables.checkpoint();
    if !written {
        // Tables that never flushed beside a raw store that may hold years of lines (an
        // upgrade): they start from now, every known device recorded as classified up to now,
        // so that no later start classifies the old lines.
        let now = crate::time::LogTime::now().micros();
        for entry in devices.list() {
            tabulator.progress.insert(entry.device.name.clone(), now);
        }
        tabulator.flush()?;
        return Ok(0);
    }
    let all = classifier.services().to_vec();
    let mut n = 0;
    for entry in devices.list() {
        let device = &entry.device;
        let services = if device.services.is_empty() { &all } else { &device.services };
        let plan = classifier.plan(services);
        let timezone = device.timezone.unwrap_or(default_zone);
        // Lines after the last one classified; a device the checkpoint does not know has had
        // none classified yet.
        let from = checkpoint.devices.get(&device.name).map(|t| crate::time::LogTime(t + 1));
        for line in store.read(&device.name, from, None)? {
            let line = line?;
            n += 1;
            let text = String::from_utf8_lossy(&line.bytes);
            let m = parse(&text, &ParseContext { received: line.received, timezone });
            let hit = if device.status == crate::device::DeviceStatus::Active {
                classifier.classify_with(&plan, &text, &m, &device.name)
            } else {
                None
            };
            tabulator.add(&device.name, &line, &m, hit.as_ref())?;
        }
    }
    tabulator.flush()?;
    Ok(n)
}

/// The classification thread: lines of active devices are classified with their device's
/// services into their tables; those whose message observes something become evidence.
fn classify_stored(
    rx: std::sync::mpsc::Receiver<Batch>,
    library: &std::sync::RwLock<Arc<crate::classify::Classifier>>,
    devices: &DeviceRegistry,
    stats: &LogStats,
    default_zone: TimeZoneSpec,
    evidence: &mpsc::Sender<Evidence>,
    mut tabulator: Tabulator,
) {
    use crate::device::DeviceStatus;
    loop {
        let batch = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(Batch::Lines(b)) => b,
            Ok(Batch::Flush(done)) => {
                let _ = done.send(tabulator.flush().map_err(|e| e.to_string()));
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tabulator.tick();
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let classifier = library.read().unwrap_or_else(|p| p.into_inner()).clone();
        let all = classifier.services().to_vec();
        // Lines of a batch mostly come from few devices: look each device and its plan up once.
        let mut last: Option<(Arc<str>, Arc<crate::device::DeviceEntry>, Arc<crate::classify::Plan>)> = None;
        for (device, line) in batch {
            if last.as_ref().is_none_or(|(d, _, _)| *d != device) {
                let Ok(entry) = devices.get(&device) else { continue };
                let services = if entry.device.services.is_empty() { &all } else { &entry.device.services };
                let plan = classifier.plan(services);
                last = Some((device.clone(), entry, plan));
            }
            let Some((_, entry, plan)) = &last else { continue };
            let timezone = entry.device.timezone.unwrap_or(default_zone);
            let text = String::from_utf8_lossy(&line.bytes);
            let m = parse(&text, &ParseContext { received: line.received, timezone });
            let hit = if entry.device.status == DeviceStatus::Active {
                classifier.classify_with(plan, &text, &m, &device)
            } else {
                None
            };
            if let Err(e) = tabulator.add(&device, &line, &m, hit.as_ref()) {
                stats.table_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "a classified line could not be put in its table");
            }
            if entry.device.status != DeviceStatus::Active {
                continue;
            }
            match hit {
                None => {
                    stats.unknown.fetch_add(1, Ordering::Relaxed);
                }
                Some(hit) => {
                    stats.classified.fetch_add(1, Ordering::Relaxed);
                    if hit.message.observe.is_empty() {
                        continue;
                    }
                    let e = Evidence {
                        device: device.clone(),
                        service: hit.service.to_owned(),
                        message: hit.message.id.clone(),
                        received: line.received,
                        objects: hit.observations(&device, entry.device.address.or(line.peer.map(|p| p.ip()))),
                    };
                    if evidence.try_send(e).is_err() {
                        stats.evidence_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        tabulator.tick();
    }
    if let Err(e) = tabulator.flush() {
        tracing::error!(error = %e, "the tables could not be flushed on stopping");
    }
}
