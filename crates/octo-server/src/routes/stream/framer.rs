//! Events made ready to send, once for every consumer: each organisation has a framer thread
//! that follows its log, prepares every new event (STIX conversion, marking and origins as the
//! graph was known at the event, the `data:` JSON), keeps it in the organisation's prepared
//! store for consumers catching up, and publishes it to the consumers at the live edge.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use octo_graph::{Graph, GraphError, OriginType};
use octo_model::{Catalog, Reference};
use octo_store::{AsOf, EventId, EventPosition};
use octo_stream::{MessageKind, PreparedEvent, PreparedStore, Tlp};
use serde_json::{json, Value as Json};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::EventBus;

/// Events read from the log per round.
pub(super) const BATCH: usize = 500;

/// How many prepared events each organisation keeps in memory (consumers just behind the live
/// edge share them; the prepared store holds the rest).
const PREPARED_KEPT: usize = 50_000;

/// How often the framer makes its appends durable (each append alone is not: it is a cache).
const DURABLE_EVERY: Duration = Duration::from_secs(1);

/// How often a busy framer drops what the log's retention removed (an idle one does it at once).
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The page cache of each organisation's prepared store.
const PREPARED_CACHE_BYTES: usize = 64 << 20;

/// The prepared store's file in an organisation's directory.
const PREPARED_FILE: &str = "stream.redb";

/// An event made ready to send: the parts of its frames that no consumer changes, and its
/// documents parsed when a filter first needs them.
pub(crate) struct Prepared {
    pub(super) id: EventId,
    pub(super) event: PreparedEvent,
    doc: OnceLock<Json>,
    old_doc: OnceLock<Option<Json>>,
}

impl Prepared {
    /// A prepared event read from the store.
    pub(super) fn stored(id: EventId, event: PreparedEvent) -> Self {
        Prepared { id, event, doc: OnceLock::new(), old_doc: OnceLock::new() }
    }

    /// The object (after the change; before it for a delete).
    pub(super) fn doc(&self) -> &Json {
        self.doc.get_or_init(|| serde_json::from_str(&self.event.doc).unwrap_or(Json::Null))
    }

    /// The object before the change.
    pub(super) fn old_doc(&self) -> Option<&Json> {
        self.old_doc
            .get_or_init(|| self.event.old_doc.as_deref().map(|d| serde_json::from_str(d).unwrap_or(Json::Null)))
            .as_ref()
    }

    /// The graph as known at the event: at the change, and just before it.
    pub(super) fn moments(&self) -> (AsOf, AsOf) {
        moments(self.id, &self.event.valid_time)
    }
}

/// The graph as it was known when an event happened (its id's millisecond bounds its transaction
/// time): at the change, and just before it.
pub(super) fn moments(id: EventId, valid_time: &str) -> (AsOf, AsOf) {
    let known = octo_store::Timestamp::from_micros((i64::try_from(id.ms).unwrap_or(i64::MAX / 1000) + 1) * 1000 - 1);
    let valid = valid_time.parse().unwrap_or_else(|_| octo_store::Timestamp::now());
    let at = AsOf { valid_time: valid, tx_time: Some(known) };
    let before = AsOf { valid_time: octo_store::Timestamp::from_micros(valid.as_micros() - 1), tx_time: Some(known) };
    (at, before)
}

/// An object's marking as of `at`: its own, else the organisation's default, else TLP:CLEAR.
pub(super) fn marking_of(graph: &Graph, key: &str, at: AsOf) -> Result<Tlp, GraphError> {
    let own = graph.setting(&octo_stream::marking::setting_name(key), at)?;
    let value = match own {
        Some(v) => Some(v),
        None => graph.setting(octo_stream::marking::DEFAULT_SETTING, at)?,
    };
    Ok(value.and_then(|v| v.as_str().and_then(|t| t.parse().ok())).unwrap_or_default())
}

/// Whether every origin that holds the object is an inference (a bit's conclusion, not a fact
/// anyone stated or saw).
pub(super) fn inferred_only(graph: &Graph, key: &str, at: AsOf) -> Result<bool, GraphError> {
    let r = Reference::from_trusted(key);
    let holding: Vec<OriginType> =
        graph.origins(&r, at)?.into_iter().filter(|o| o.result.contains(&r)).map(|o| o.origin_type).collect();
    Ok(!holding.is_empty() && holding.iter().all(|t| *t == OriginType::Inference))
}

/// The keys an object's reference fields hold.
pub(super) fn references_of(catalog: &Catalog, doc: &Json) -> Vec<String> {
    let Some(type_name) = doc.get("object_type").and_then(Json::as_str) else { return vec![] };
    let Ok(def) = catalog.get(type_name) else { return vec![] };
    let mut out = Vec::new();
    for (name, f) in &def.fields {
        if !matches!(f.kind, octo_model::FieldKind::Reference(_)) {
            continue;
        }
        match doc.get(name) {
            Some(Json::String(k)) => out.push(k.clone()),
            Some(Json::Array(items)) => out.extend(items.iter().filter_map(Json::as_str).map(str::to_owned)),
            _ => {}
        }
    }
    out
}

/// Sets a STIX object's marking.
pub(super) fn mark(stix: &mut Json, tlp: Tlp) {
    stix["object_marking_refs"] = json!([tlp.stix_id()]);
}

/// A STIX object with its marking.
pub(super) fn marked(stix: &Json, tlp: Tlp) -> Json {
    let mut stix = stix.clone();
    mark(&mut stix, tlp);
    stix
}

/// The `data:` JSON of a message made for one consumer (OpenCTI's live-stream shape).
pub(super) fn payload(
    kind: &str,
    stix: &Json,
    message: String,
    cause: Json,
    valid_time: &str,
    context: Json,
) -> String {
    json!({
        "version": "4", "type": kind, "scope": "external", "data": stix, "message": message,
        "origin": {"cause": cause, "valid_time": valid_time}, "context": context,
    })
    .to_string()
}

/// Prepares whole transactions' events: what every consumer shares.
fn prepare(graph: &Graph, events: &[octo_store::Event]) -> Result<Vec<Arc<Prepared>>, GraphError> {
    let catalog = graph.catalog();
    let messages = octo_stream::messages(events, catalog);
    let mut out = Vec::with_capacity(messages.len());
    for mut m in messages {
        let (at, before) = moments(m.id, &m.valid_time);
        let Some(kind) = MessageKind::parse(m.kind) else { continue };
        let mut event = PreparedEvent {
            kind,
            key: std::mem::take(&mut m.key),
            valid_time: std::mem::take(&mut m.valid_time),
            stix_id: String::new(),
            marking: Tlp::Clear,
            old_marking: None,
            inferred_only: false,
            data: String::new(),
            doc: String::new(),
            old_doc: None,
            references: Vec::new(),
            relationships: Vec::new(),
        };
        if kind != MessageKind::Marking {
            // A delete is judged as the object was just before it went.
            let when = if kind == MessageKind::Delete { before } else { at };
            event.marking = marking_of(graph, &event.key, when)?;
            if m.old_doc.is_some() {
                event.old_marking = Some(marking_of(graph, &event.key, before)?);
            }
            event.inferred_only = inferred_only(graph, &event.key, when)?;
            mark(&mut m.data["data"], event.marking);
            event.stix_id = m.data["data"]["id"].as_str().unwrap_or_default().to_owned();
            event.references = references_of(catalog, &m.doc)
                .into_iter()
                .map(|k| {
                    let id = octo_stream::stix::stix_id(&Reference::from_trusted(k.as_str()), catalog);
                    (k, id)
                })
                .collect();
            let cause = &m.data["origin"]["cause"];
            for rel in &m.relationships {
                let id = rel["id"].as_str().unwrap_or_default().to_owned();
                let message = format!(
                    "creates relationship {} of {}",
                    rel["relationship_type"].as_str().unwrap_or_default(),
                    event.key
                );
                let data = payload(
                    "create",
                    &marked(rel, event.marking),
                    message,
                    cause.clone(),
                    &event.valid_time,
                    json!({}),
                );
                event.relationships.push((id, data));
            }
            event.data = m.data.to_string();
            event.doc = m.doc.to_string();
            event.old_doc = m.old_doc.as_ref().map(Json::to_string);
        }
        let doc = OnceLock::new();
        let _ = doc.set(m.doc);
        let old_doc = OnceLock::new();
        let _ = old_doc.set(m.old_doc);
        out.push(Arc::new(Prepared { id: m.id, event, doc, old_doc }));
    }
    Ok(out)
}

/// Prepared events by organisation and event id (`None`: an event that makes no message).
#[derive(Default)]
pub(crate) struct PreparedCache(Mutex<HashMap<String, PreparedLog>>);

/// One organisation's prepared events, by id.
type PreparedLog = std::collections::BTreeMap<EventId, Option<Arc<Prepared>>>;

impl PreparedCache {
    /// The prepared messages of `events` (whole transactions), from the cache when another
    /// consumer or the framer has prepared them already.
    pub(super) fn get(
        &self,
        organisation: &str,
        graph: &Graph,
        events: &[octo_store::Event],
    ) -> Result<Vec<Arc<Prepared>>, GraphError> {
        {
            let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(log) = cache.get(organisation) {
                let hits: Option<Vec<Option<Arc<Prepared>>>> = events.iter().map(|e| log.get(&e.id).cloned()).collect();
                if let Some(hits) = hits {
                    return Ok(hits.into_iter().flatten().collect());
                }
            }
        }
        let prepared = prepare(graph, events)?;
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let log = cache.entry(organisation.to_owned()).or_default();
        let mut by_id: HashMap<EventId, Arc<Prepared>> = prepared.iter().map(|p| (p.id, p.clone())).collect();
        for e in events {
            log.insert(e.id, by_id.remove(&e.id));
        }
        while log.len() > PREPARED_KEPT {
            log.pop_first();
        }
        Ok(prepared)
    }

    fn forget(&self, organisation: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(organisation);
    }
}

/// What the framer of an organisation publishes when its log grows: the new events, prepared,
/// and the position they follow, so consumers at the live edge take them without reading the
/// log themselves.
pub(crate) struct Published {
    /// The last event before these.
    pub(super) before: Option<EventId>,
    /// The last event among them.
    pub(super) last: EventId,
    /// Their messages.
    pub(super) prepared: Vec<Arc<Prepared>>,
}

/// An organisation's framer, as its consumers see it.
#[derive(Clone)]
pub(crate) struct Framer {
    /// Published batches of new events.
    pub(super) published: watch::Receiver<Option<Arc<Published>>>,
    /// Its prepared store, when the file could be opened.
    pub(super) store: Option<Arc<PreparedStore>>,
    stop: Arc<AtomicBool>,
}

/// The framers of the organisations with change streams, and the prepared events they share.
#[derive(Default)]
pub(crate) struct Watchers {
    by_organisation: Mutex<HashMap<String, Framer>>,
    /// Recent events made ready to send, by organisation: converted to STIX, marked, checked
    /// for inference and serialised once, whatever the number of consumers.
    pub(super) prepared: Arc<PreparedCache>,
}

impl Watchers {
    /// The organisation's framer, started if it is not running. `directory` holds its prepared
    /// store (`None`: prepared in memory only).
    pub(crate) fn subscribe(
        &self,
        organisation: &str,
        graph: Arc<Graph>,
        bus: EventBus,
        directory: Option<PathBuf>,
        stop: watch::Receiver<bool>,
    ) -> ApiResult<Framer> {
        let mut map = self.by_organisation.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(framer) = map.get(organisation) {
            if framer.published.has_changed().is_ok() && !framer.stop.load(Ordering::Relaxed) {
                return Ok(framer.clone());
            }
        }
        let log_end = bus.bounds(organisation, &graph)?.map(|(_, last)| last);
        let store = directory.and_then(|d| match open_prepared(&d, log_end) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::warn!(error = %e, organisation, "change stream events will be prepared in memory only");
                None
            }
        });
        // From where the store's preparation stopped (the log's start for a new store); only
        // new events without a store.
        let start = match &store {
            Some(s) => s.framed_until().unwrap_or(log_end),
            None => log_end,
        };
        let (tx, rx) = watch::channel(None);
        let framer = Framer { published: rx, store: store.clone(), stop: Arc::new(AtomicBool::new(false)) };
        let run = FramerThread {
            organisation: organisation.to_owned(),
            start,
            graph,
            bus,
            store,
            cache: self.prepared.clone(),
            published: tx,
            stop: framer.stop.clone(),
            shutting_down: stop,
        };
        std::thread::Builder::new()
            .name(format!("stream-{organisation}"))
            .spawn(move || run.run())
            .map_err(|e| ApiError::internal(format!("cannot start the stream framer: {e}")))?;
        map.insert(organisation.to_owned(), framer.clone());
        Ok(framer)
    }

    /// The last event the organisation's framer has prepared and stored, when it runs with a
    /// prepared store.
    pub(crate) fn prepared_until(&self, organisation: &str) -> Option<EventId> {
        let map = self.by_organisation.lock().unwrap_or_else(|p| p.into_inner());
        map.get(organisation)?.store.as_ref()?.framed_until().ok().flatten()
    }

    /// Stops an organisation's framer and drops what it prepared in memory (the organisation
    /// is being deleted).
    pub(crate) fn forget(&self, organisation: &str) {
        if let Some(framer) = self.by_organisation.lock().unwrap_or_else(|p| p.into_inner()).remove(organisation) {
            framer.stop.store(true, Ordering::Relaxed);
        }
        self.prepared.forget(organisation);
    }
}

/// An organisation's prepared store, emptied when it holds events past the log's end (prepared
/// from another log: the graph was restored from an older copy, say).
fn open_prepared(directory: &std::path::Path, log_end: Option<EventId>) -> Result<PreparedStore, String> {
    let store = PreparedStore::open(&directory.join(PREPARED_FILE), PREPARED_CACHE_BYTES).map_err(|e| e.to_string())?;
    if let Some(edge) = store.framed_until().map_err(|e| e.to_string())? {
        if log_end.is_none_or(|end| edge > end) {
            store.clear().map_err(|e| e.to_string())?;
        }
    }
    Ok(store)
}

/// The framer's loop and what it owns.
struct FramerThread {
    organisation: String,
    /// The last event already prepared.
    start: Option<EventId>,
    graph: Arc<Graph>,
    bus: EventBus,
    store: Option<Arc<PreparedStore>>,
    cache: Arc<PreparedCache>,
    published: watch::Sender<Option<Arc<Published>>>,
    stop: Arc<AtomicBool>,
    shutting_down: watch::Receiver<bool>,
}

impl FramerThread {
    /// Prepares the events after `start`, then follows the log. Ends when the server shuts
    /// down (letting go of the graph, so its store can close cleanly) or the organisation goes.
    fn run(self) {
        let name = self.organisation.as_str();
        let mut framed = self.start;
        let mut last_durable = Instant::now();
        let mut dirty = false;
        let mut trimmed: Option<EventId> = None;
        let mut last_trim = Instant::now();
        let running = || !self.stop.load(Ordering::Relaxed) && !*self.shutting_down.borrow();
        while running() {
            let position = framed.map_or(EventPosition::Start, EventPosition::After);
            let batch = match self.bus.events(name, &self.graph, position, BATCH) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e.message, organisation = name, "stream framer cannot read the log");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if batch.is_empty() {
                if let Some(store) = self.store.as_ref().filter(|_| dirty) {
                    if store.make_durable().is_ok() {
                        dirty = false;
                        last_durable = Instant::now();
                    }
                }
                trimmed = self.trim(trimmed);
                last_trim = Instant::now();
                self.bus.wait(name, &self.graph, framed, Duration::from_secs(1));
                continue;
            }
            if last_trim.elapsed() >= TRIM_EVERY {
                // Under constant writes the framer is never idle: trim on a clock as well.
                trimmed = self.trim(trimmed);
                last_trim = Instant::now();
            }
            let whole = octo_stream::whole_transactions(&batch, batch.len() < BATCH);
            let Some(last) = whole.last().map(|e| e.id) else { continue };
            let prepared = match self.cache.get(name, &self.graph, whole) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, organisation = name, "stream framer cannot prepare events");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if let Some(store) = &self.store {
                let durable = last_durable.elapsed() >= DURABLE_EVERY;
                match store.append(prepared.iter().map(|p| (p.id, &p.event)), last, durable) {
                    Ok(()) if durable => {
                        last_durable = Instant::now();
                        dirty = false;
                    }
                    Ok(()) => dirty = true,
                    Err(e) => tracing::warn!(error = %e, organisation = name, "stream framer cannot store events"),
                }
            }
            if self.published.send(Some(Arc::new(Published { before: framed, last, prepared }))).is_err() {
                break;
            }
            framed = Some(last);
        }
        if let Some(store) = self.store.as_ref().filter(|_| dirty) {
            let _ = store.make_durable();
        }
    }

    /// Drops the prepared events that the log's retention has removed; the new bound.
    fn trim(&self, done: Option<EventId>) -> Option<EventId> {
        let Some(store) = &self.store else { return done };
        let Ok(Some(until)) = self.bus.trimmed_until(&self.organisation, &self.graph) else { return done };
        if done.is_some_and(|d| d >= until) {
            return done;
        }
        match store.trim_until(until) {
            Ok(_) => Some(until),
            Err(e) => {
                tracing::warn!(error = %e, organisation = self.organisation, "stream framer cannot trim");
                done
            }
        }
    }
}
