//! `GET /{client}/stream`: an organisation's change stream as server-sent events, after
//! OpenCTI's live stream: a `connected` event, then every change from the consumer's position
//! (`from`, or the `Last-Event-ID` it reconnects with) as `create`/`update`/`delete` with its
//! STIX object, then live changes as they commit, and a `heartbeat` carrying the position when
//! nothing happens.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use octo_graph::{Graph, GraphError, OriginType};
use octo_model::{Catalog, Reference};
use octo_store::{AsOf, EventId, EventPosition};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, watch};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{blocking, AppState, EventBus};
use octo_stream::Tlp;

/// Events read from the log per round.
const BATCH: usize = 500;

/// Wakes stream tasks when an organisation's log grows. The store's wait blocks a thread, so one
/// thread per organisation waits and publishes the last event id on a watch channel that every
/// consumer of that organisation awaits, instead of a blocked thread per consumer.
#[derive(Default)]
pub(crate) struct Watchers {
    by_organisation: Mutex<HashMap<String, watch::Receiver<Option<Arc<Published>>>>>,
    /// Recent events made ready to send, by organisation: converted to STIX, marked, checked
    /// for inference and serialised once, whatever the number of consumers.
    prepared: Arc<PreparedCache>,
}

/// Prepared events by organisation and event id (`None`: an event that makes no message).
#[derive(Default)]
pub(crate) struct PreparedCache(Mutex<HashMap<String, PreparedLog>>);

/// One organisation's prepared events, by id.
type PreparedLog = std::collections::BTreeMap<EventId, Option<Arc<Prepared>>>;

/// What the watcher of an organisation publishes when its log grows: the new events, prepared,
/// and the position they follow, so consumers at the live edge take them without reading the
/// log themselves.
pub(crate) struct Published {
    /// The last event before these.
    before: Option<EventId>,
    /// The last event among them.
    last: EventId,
    /// Their messages.
    prepared: Vec<Arc<Prepared>>,
}

/// How many prepared events each organisation keeps (consumers at the live edge share them;
/// one catching up from far back prepares its own).
const PREPARED_KEPT: usize = 50_000;

/// An event made ready to send: the parts of a frame that do not depend on the consumer.
pub(crate) struct Prepared {
    message: octo_stream::StreamMessage,
    /// The object's marking at the change (before it, for a delete).
    marking: Tlp,
    /// Its marking just before the change, when it existed then.
    old_marking: Option<Tlp>,
    /// Whether only inferences held it at the change (before it, for a delete): read from the
    /// graph the first time a consumer without `with-inferences` asks (the origins lookup is
    /// the costliest read of a replay, and consumers with the option never need it).
    inferred_only: std::sync::OnceLock<bool>,
    /// The `data:` JSON, serialised.
    data: Arc<str>,
}

impl Prepared {
    /// Whether only inferences held the object at the change (before it, for a delete).
    fn inferred_only(&self, graph: &Graph) -> Result<bool, GraphError> {
        if let Some(known) = self.inferred_only.get() {
            return Ok(*known);
        }
        let (at, before) = moments(&self.message);
        let when = if self.message.kind == "delete" { before } else { at };
        let value = inferred_only(graph, &self.message.key, when)?;
        Ok(*self.inferred_only.get_or_init(|| value))
    }
}

/// The graph as it was known when an event happened (its id's millisecond bounds its transaction
/// time): at the change, and just before it.
fn moments(m: &octo_stream::StreamMessage) -> (AsOf, AsOf) {
    let known = octo_store::Timestamp::from_micros((i64::try_from(m.id.ms).unwrap_or(i64::MAX / 1000) + 1) * 1000 - 1);
    let valid = m.valid_time.parse().unwrap_or_else(|_| octo_store::Timestamp::now());
    let at = AsOf { valid_time: valid, tx_time: Some(known) };
    let before = AsOf { valid_time: octo_store::Timestamp::from_micros(valid.as_micros() - 1), tx_time: Some(known) };
    (at, before)
}

fn prepare(graph: &Graph, messages: Vec<octo_stream::StreamMessage>) -> Result<Vec<Arc<Prepared>>, GraphError> {
    let mut out = Vec::with_capacity(messages.len());
    for mut m in messages {
        let (at, before) = moments(&m);
        let inferred_only = std::sync::OnceLock::new();
        let (marking, old_marking) = if m.kind == "marking" {
            // About a marking, not an object: no origins to judge.
            let _ = inferred_only.set(false);
            (Tlp::Clear, None)
        } else {
            let when = if m.kind == "delete" { before } else { at };
            let marking = marking_of(graph, &m.key, when)?;
            let old_marking = match m.old_doc {
                Some(_) => Some(marking_of(graph, &m.key, before)?),
                None => None,
            };
            mark(&mut m.data["data"], marking);
            (marking, old_marking)
        };
        let data: Arc<str> = m.data.to_string().into();
        out.push(Arc::new(Prepared { message: m, marking, old_marking, inferred_only, data }));
    }
    Ok(out)
}

impl PreparedCache {
    /// The prepared messages of `events` (whole transactions), from the cache when another
    /// consumer has prepared them already.
    fn get(
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
        let prepared = prepare(graph, octo_stream::messages(events, graph.catalog()))?;
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let log = cache.entry(organisation.to_owned()).or_default();
        let mut by_id: HashMap<EventId, Arc<Prepared>> = prepared.iter().map(|p| (p.message.id, p.clone())).collect();
        for e in events {
            log.insert(e.id, by_id.remove(&e.id));
        }
        while log.len() > PREPARED_KEPT {
            log.pop_first();
        }
        Ok(prepared)
    }
}

impl Watchers {
    fn subscribe(
        &self,
        organisation: &str,
        graph: Arc<Graph>,
        bus: EventBus,
        stop: watch::Receiver<bool>,
    ) -> ApiResult<watch::Receiver<Option<Arc<Published>>>> {
        let mut map = self.by_organisation.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(organisation) {
            if rx.has_changed().is_ok() {
                return Ok(rx.clone());
            }
        }
        let last = bus.bounds(organisation, &graph)?;
        let (tx, rx) = watch::channel(None);
        let (cache, name) = (self.prepared.clone(), organisation.to_owned());
        std::thread::Builder::new()
            .name(format!("stream-{organisation}"))
            .spawn(move || {
                let mut seen = last.map(|(_, last)| last);
                // Ends when the server shuts down (letting go of the graph, so its store can
                // close cleanly), or when no receiver is left (the map keeps one).
                while !tx.is_closed() && !*stop.borrow() {
                    let now = bus.wait(&name, &graph, seen, Duration::from_secs(1));
                    if now == seen {
                        continue;
                    }
                    if tx.receiver_count() <= 1 {
                        // Only the map's own receiver: nobody is streaming, so nothing is prepared;
                        // a consumer that connects later reads the log up to the edge itself.
                        seen = now;
                        continue;
                    }
                    // Read, prepare and publish what is new, in whole transactions.
                    let position = seen.map_or(EventPosition::Start, EventPosition::After);
                    let batch = match bus.events(&name, &graph, position, BATCH) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(error = %e, "stream watcher cannot read the log");
                            continue;
                        }
                    };
                    let whole = octo_stream::whole_transactions(&batch, batch.len() < BATCH);
                    let Some(last) = whole.last().map(|e| e.id) else { continue };
                    match cache.get(&name, &graph, whole) {
                        Ok(prepared) => {
                            if tx.send(Some(Arc::new(Published { before: seen, last, prepared }))).is_err() {
                                break;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "stream watcher cannot prepare events"),
                    }
                    seen = Some(last);
                }
            })
            .map_err(|e| ApiError::internal(format!("cannot start the stream watcher: {e}")))?;
        map.insert(organisation.to_owned(), rx.clone());
        Ok(rx)
    }
}

/// What a consumer asked for (query parameters or headers, as OpenCTI names them).
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Send an object's unseen references before it (`no-dependencies=false`, the default).
    dependencies: bool,
    /// Send deletes (`listen-delete`, default true).
    listen_delete: bool,
    /// Send objects that exist only through inference (`with-inferences`, default false).
    with_inferences: bool,
}

fn options_from(p: &Params, headers: &HeaderMap) -> ApiResult<Options> {
    let flag = |name: &str, default: bool| -> ApiResult<bool> {
        let given = p
            .get(name)
            .map(str::to_owned)
            .or_else(|| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned));
        match given.as_deref().map(str::trim) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!("'{name}' must be true or false, not '{other}'"))),
        }
    };
    Ok(Options {
        dependencies: !flag("no-dependencies", false)?,
        listen_delete: flag("listen-delete", true)?,
        with_inferences: flag("with-inferences", false)?,
    })
}

/// One server-sent event.
struct Frame {
    id: String,
    event: &'static str,
    data: Arc<str>,
}

/// A consumer: its options, its live stream's filter if any, and the STIX ids it has been sent
/// (so references resolve).
struct Consumer {
    options: Options,
    filter: Option<octo_stream::FilterGroup>,
    /// The most restricted marking the consumer's token may see.
    clearance: Tlp,
    seen: HashSet<String>,
}

/// An object's marking as of `at`: its own, else the organisation's default, else TLP:CLEAR.
fn marking_of(graph: &Graph, key: &str, at: AsOf) -> Result<Tlp, GraphError> {
    let own = graph.setting(&octo_stream::marking::setting_name(key), at)?;
    let value = match own {
        Some(v) => Some(v),
        None => graph.setting(octo_stream::marking::DEFAULT_SETTING, at)?,
    };
    Ok(value.and_then(|v| v.as_str().and_then(|t| t.parse().ok())).unwrap_or_default())
}

/// Sets a STIX object's marking.
fn mark(stix: &mut Json, tlp: Tlp) {
    stix["object_marking_refs"] = json!([tlp.stix_id()]);
}

/// A STIX object with its marking.
fn marked(stix: &Json, tlp: Tlp) -> Json {
    let mut stix = stix.clone();
    mark(&mut stix, tlp);
    stix
}

/// Sends frames; `false` when the consumer has gone.
async fn send_frames(tx: &mpsc::Sender<Result<SseEvent, Infallible>>, frames: Vec<Frame>) -> bool {
    for f in frames {
        let frame = SseEvent::default().id(f.id).event(f.event).data(f.data);
        if tx.send(Ok(frame)).await.is_err() {
            return false;
        }
    }
    true
}

/// Appends an event's frames: all but the last carry the position before the event, the last
/// the event's id; then the position is the event's.
fn push_group(
    out: &mut Vec<Frame>,
    group: Vec<(&'static str, Arc<str>)>,
    m: &octo_stream::StreamMessage,
    position: &mut Option<EventId>,
) {
    let before = position.map_or_else(|| "0-0".to_owned(), |p| p.to_string());
    let n = group.len();
    for (i, (event, data)) in group.into_iter().enumerate() {
        let id = if i + 1 == n { m.id.to_string() } else { before.clone() };
        out.push(Frame { id, event, data });
    }
    *position = Some(m.id);
}

/// How deep dependencies are followed (a reference chain is short: finding → port → address →
/// network).
const MAX_DEPENDENCY_DEPTH: usize = 8;

fn payload(kind: &str, stix: &Json, message: String, cause: Json, valid_time: &str, context: Json) -> Arc<str> {
    json!({
        "version": "4", "type": kind, "scope": "external", "data": stix, "message": message,
        "origin": {"cause": cause, "valid_time": valid_time}, "context": context,
    })
    .to_string()
    .into()
}

/// Whether every origin that holds the object is an inference (a bit's conclusion, not a fact
/// anyone stated or saw).
fn inferred_only(graph: &Graph, key: &str, at: AsOf) -> Result<bool, GraphError> {
    let r = Reference::from_trusted(key);
    let holding: Vec<OriginType> =
        graph.origins(&r, at)?.into_iter().filter(|o| o.result.contains(&r)).map(|o| o.origin_type).collect();
    Ok(!holding.is_empty() && holding.iter().all(|t| *t == OriginType::Inference))
}

fn references_of(catalog: &Catalog, doc: &Json) -> Vec<String> {
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

impl Consumer {
    fn new(options: Options, filter: Option<octo_stream::FilterGroup>, clearance: Tlp) -> Self {
        Consumer { options, filter, clearance, seen: HashSet::new() }
    }

    /// Whether the consumer may see `doc` as of `at`: its clearance reaches the object's
    /// marking, and its filter (if any) lets it through.
    fn visible(&self, graph: &Graph, doc: &Json, at: AsOf) -> Result<bool, GraphError> {
        let key = doc.get("primary_key").and_then(Json::as_str).unwrap_or_default();
        self.visible_marked(graph, doc, marking_of(graph, key, at)?, at)
    }

    /// Whether a consumer may see `doc` marked `marking` as of `at`: its clearance reaches the
    /// marking and its filter (if any) lets it through. Only a filter reads the graph.
    fn visible_marked(&self, graph: &Graph, doc: &Json, marking: Tlp, at: AsOf) -> Result<bool, GraphError> {
        if marking > self.clearance {
            return Ok(false);
        }
        let Some(filter) = &self.filter else { return Ok(true) };
        let r = Reference::from_trusted(doc.get("primary_key").and_then(Json::as_str).unwrap_or_default());
        let scan_level = match graph.scan_profile(&r, at) {
            Ok(p) => p.level,
            Err(GraphError::NotFound(_)) => 0,
            Err(e) => return Err(e),
        };
        let origins: Vec<(String, String)> = graph
            .origins(&r, at)?
            .into_iter()
            .filter(|o| o.result.contains(&r))
            .map(|o| (o.origin_type.as_str().to_owned(), o.method))
            .collect();
        let view = octo_stream::ObjectView { doc, scan_level, origins: &origins, marking };
        Ok(filter.matches(&view, graph.catalog()))
    }

    /// The frames for prepared events, with dependencies and options applied. Every frame of
    /// one event but the last carries `position` (where the consumer was before it), the last
    /// the event's id: a consumer cut off in the middle resumes before the event and gets it
    /// whole.
    fn frames(
        &mut self,
        graph: &Graph,
        prepared: &[Arc<Prepared>],
        position: &mut Option<EventId>,
    ) -> Result<Vec<Frame>, GraphError> {
        let catalog = graph.catalog();
        let mut out = Vec::new();
        for p in prepared {
            let m = &p.message;
            let (at, before) = moments(m);
            let mut group: Vec<(&'static str, Arc<str>)> = Vec::new();
            if m.kind == "marking" {
                self.marking_changed(graph, m, at, before, &mut group)?;
                push_group(&mut out, group, m, position);
                continue;
            }
            let main_id = m.data["data"]["id"].as_str().unwrap_or_default().to_owned();
            let was_visible = match (&m.old_doc, p.old_marking) {
                (Some(old), Some(marking)) => self.visible_marked(graph, old, marking, before)?,
                _ => false,
            };
            let cause = || m.data["origin"]["cause"].clone();
            if m.kind == "delete" {
                if self.options.listen_delete
                    && was_visible
                    && (self.options.with_inferences || !p.inferred_only(graph)?)
                {
                    group.push(("delete", p.data.clone()));
                }
                self.seen.remove(&main_id);
            } else if !self.visible_marked(graph, &m.doc, p.marking, at)? {
                // Moved out of the consumer's view: for it, the object is gone.
                if m.kind == "update" && was_visible && self.options.listen_delete {
                    let message = m.data["message"].as_str().unwrap_or_default().replacen("updates", "deletes", 1);
                    let context = json!({"deletions": [], "reason": "no longer matches the stream's filter"});
                    group
                        .push(("delete", payload("delete", &m.data["data"], message, cause(), &m.valid_time, context)));
                }
                self.seen.remove(&main_id);
            } else if self.options.with_inferences || !p.inferred_only(graph)? {
                if self.options.dependencies {
                    for r in references_of(catalog, &m.doc) {
                        self.dependency(graph, &r, at, &m.valid_time, 0, &mut group)?;
                    }
                }
                if m.kind == "update" && !self.seen.contains(&main_id) {
                    // The consumer never had it (it joined later, or it was inferred only until
                    // now): an update would have nothing to patch.
                    let message = m.data["message"].as_str().unwrap_or_default().replacen("updates", "creates", 1);
                    group.push((
                        "create",
                        payload("create", &m.data["data"], message, cause(), &m.valid_time, json!({})),
                    ));
                } else {
                    group.push((m.kind, p.data.clone()));
                }
                self.seen.insert(main_id);
                for rel in &m.relationships {
                    let id = rel["id"].as_str().unwrap_or_default().to_owned();
                    if self.seen.insert(id) {
                        let message = format!(
                            "creates relationship {} of {}",
                            rel["relationship_type"].as_str().unwrap_or_default(),
                            m.key
                        );
                        let data =
                            payload("create", &marked(rel, p.marking), message, cause(), &m.valid_time, json!({}));
                        group.push(("create", data));
                    }
                }
            }
            push_group(&mut out, group, m, position);
        }
        Ok(out)
    }

    /// A marking set or cleared: the object appears for consumers newly cleared for it, goes for
    /// those no longer cleared, and changes its `object_marking_refs` for the rest.
    fn marking_changed(
        &mut self,
        graph: &Graph,
        m: &octo_stream::StreamMessage,
        at: AsOf,
        before: AsOf,
        group: &mut Vec<(&'static str, Arc<str>)>,
    ) -> Result<(), GraphError> {
        let catalog = graph.catalog();
        let r = Reference::from_trusted(m.key.as_str());
        let doc = match graph.get(&r, at) {
            Ok(ooi) => ooi.to_json(),
            Err(GraphError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(stix) = octo_stream::stix::to_stix(&doc, catalog, &m.valid_time).into_iter().next() else {
            return Ok(());
        };
        let id = stix["id"].as_str().unwrap_or_default().to_owned();
        let (old, new) = (marking_of(graph, &m.key, before)?, marking_of(graph, &m.key, at)?);
        let inferred_ok = self.options.with_inferences || !inferred_only(graph, &m.key, at)?;
        let was = inferred_ok && self.visible(graph, &doc, before)?;
        let now = inferred_ok && self.visible(graph, &doc, at)?;
        let cause = json!(format!("marking {} → {}", old, new));
        match (was, now) {
            (true, false) => {
                if self.options.listen_delete {
                    let message =
                        format!("deletes {} {} (now {new})", stix["type"].as_str().unwrap_or_default(), m.key);
                    let context = json!({"deletions": [], "reason": "marked beyond the consumer's clearance"});
                    group.push((
                        "delete",
                        payload("delete", &marked(&stix, old), message, cause, &m.valid_time, context),
                    ));
                }
                self.seen.remove(&id);
            }
            (false, true) => {
                if self.options.dependencies {
                    for next in references_of(catalog, &doc) {
                        self.dependency(graph, &next, at, &m.valid_time, 0, group)?;
                    }
                }
                let message = format!("creates {} {} (now {new})", stix["type"].as_str().unwrap_or_default(), m.key);
                group
                    .push(("create", payload("create", &marked(&stix, new), message, cause, &m.valid_time, json!({}))));
                self.seen.insert(id);
            }
            (true, true) if old != new => {
                let (was_marked, now_marked) = (marked(&stix, old), marked(&stix, new));
                let context = json!({
                    "patch": json_patch::diff(&was_marked, &now_marked),
                    "reverse_patch": json_patch::diff(&now_marked, &was_marked),
                });
                let message = format!("updates the marking of {} to {new}", m.key);
                group.push(("update", payload("update", &now_marked, message, cause, &m.valid_time, context)));
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends every object as it was at `at` as `create` frames (dependencies first, options
    /// applied), all with the id `position`: a consumer cut off inside the snapshot resumes
    /// before it and, asking again, gets all of it. Stops early when the consumer has gone.
    fn snapshot(
        &mut self,
        graph: &Graph,
        at: AsOf,
        position: &str,
        tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
    ) -> Result<(), GraphError> {
        let catalog = graph.catalog();
        let types: Vec<&str> = catalog.concrete_types(octo_model::ROOT_TYPE)?.iter().map(String::as_str).collect();
        let mut keys = Vec::new();
        graph.store().snapshot()?.scan_types(&types, at, &mut |v| {
            keys.push(v.key);
            true
        })?;
        let when = at.valid_time.to_string();
        for key in keys {
            let mut group = Vec::new();
            if self.filter.is_some() {
                let r = Reference::from_trusted(key.as_str());
                let visible = match graph.get(&r, at) {
                    Ok(ooi) => self.visible(graph, &ooi.to_json(), at)?,
                    Err(GraphError::NotFound(_)) => false,
                    Err(e) => return Err(e),
                };
                if !visible {
                    continue;
                }
            }
            if self.options.dependencies {
                self.dependency(graph, &key, at, &when, 0, &mut group)?;
            } else if self.options.with_inferences || !inferred_only(graph, &key, at)? {
                let r = Reference::from_trusted(key.as_str());
                let id = octo_stream::stix::stix_id(&r, catalog);
                if self.seen.insert(id) {
                    if let Ok(ooi) = graph.get(&r, at) {
                        if let Some(stix) =
                            octo_stream::stix::to_stix(&ooi.to_json(), catalog, &when).into_iter().next()
                        {
                            let message =
                                format!("creates {} {key} (recover)", stix["type"].as_str().unwrap_or_default());
                            group.push((
                                "create",
                                payload("create", &stix, message, json!("recover"), &when, json!({})),
                            ));
                        }
                    }
                }
            }
            for (event, data) in group {
                let frame = SseEvent::default().id(position).event(event).data(data);
                if tx.blocking_send(Ok(frame)).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Sends `key` (and, first, what it references) if the consumer has not had it.
    fn dependency(
        &mut self,
        graph: &Graph,
        key: &str,
        at: AsOf,
        valid_time: &str,
        depth: usize,
        group: &mut Vec<(&'static str, Arc<str>)>,
    ) -> Result<(), GraphError> {
        let catalog = graph.catalog();
        let r = Reference::from_trusted(key);
        let id = octo_stream::stix::stix_id(&r, catalog);
        if depth >= MAX_DEPENDENCY_DEPTH || self.seen.contains(&id) {
            return Ok(());
        }
        let doc = match graph.get(&r, at) {
            Ok(ooi) => ooi.to_json(),
            Err(GraphError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !self.options.with_inferences && inferred_only(graph, key, at)? {
            return Ok(());
        }
        let tlp = marking_of(graph, key, at)?;
        if tlp > self.clearance {
            return Ok(());
        }
        self.seen.insert(id);
        for next in references_of(catalog, &doc) {
            self.dependency(graph, &next, at, valid_time, depth + 1, group)?;
        }
        if let Some(stix) = octo_stream::stix::to_stix(&doc, catalog, valid_time).into_iter().next() {
            let message = format!("creates {} {key} (a dependency)", stix["type"].as_str().unwrap_or_default());
            group.push((
                "create",
                payload("create", &marked(&stix, tlp), message, json!("dependency"), valid_time, json!({})),
            ));
        }
        Ok(())
    }
}

fn recover_from(p: &Params, headers: &HeaderMap) -> ApiResult<Option<octo_store::Timestamp>> {
    let given = p
        .get("recover")
        .map(str::to_owned)
        .or_else(|| headers.get("recover-date").and_then(|v| v.to_str().ok()).map(str::to_owned));
    given.map(|v| crate::params::parse_time(&v).map_err(|m| ApiError::bad_request(format!("recover: {m}")))).transpose()
}

fn position_from(p: &Params, headers: &HeaderMap) -> ApiResult<Option<EventPosition>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let given = p.get("from").map(str::to_owned).or_else(|| header("from")).or_else(|| header("last-event-id"));
    given.map(|v| v.trim().parse::<EventPosition>().map_err(|e| ApiError::bad_request(e.to_string()))).transpose()
}

/// The change stream of an organisation.
#[utoipa::path(get, path = "/{client}/stream", tag = "Stream",
    params(("client" = String, Path),
        ("from" = Option<String>, Query, description = "An event id (`1620249512318-0`) to resume after, or a millisecond timestamp; `0` for everything. Also as the `from` or `Last-Event-ID` header. Absent: live only."),
        ("no-dependencies" = Option<bool>, Query, description = "Do not send an object's unseen references before it (default false)"),
        ("listen-delete" = Option<bool>, Query, description = "Send deletes (default true)"),
        ("with-inferences" = Option<bool>, Query, description = "Send objects that exist only through inference (default false)"),
        ("recover" = Option<String>, Query, description = "First send every object as it was at this date (also the recover-date header), then the events from `from` (default: from that date)")),
    responses((status = 200, description = "text/event-stream: connected, create, update, delete, heartbeat", content_type = "text/event-stream"),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    open(s, client, principal.clearance, headers, p, None).await
}

/// A live stream: the change stream through a saved filter.
#[utoipa::path(get, path = "/{client}/stream/{id}", tag = "Stream",
    params(("client" = String, Path), ("id" = String, Path, description = "The live stream"),
        ("from" = Option<String>, Query, description = "As for /{client}/stream"),
        ("recover" = Option<String>, Query, description = "As for /{client}/stream")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn live_stream(
    State(s): State<AppState>,
    Path((client, id)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    let saved = super::live_streams::load(&s, &client, &id).await?;
    open(s, client, principal.clearance, headers, p, Some(saved.filters)).await
}

async fn open(
    s: AppState,
    client: String,
    clearance: Tlp,
    headers: HeaderMap,
    p: Params,
    filter: Option<octo_stream::FilterGroup>,
) -> ApiResult<Response> {
    let graph = s.graph(&client)?;
    let given = position_from(&p, &headers)?;
    let options = options_from(&p, &headers)?;
    let recover = recover_from(&p, &headers)?;
    let bus = s.bus();
    let (g, b, organisation) = (graph.clone(), bus.clone(), client.clone());
    let (bounds, trimmed) =
        blocking(move || Ok((b.bounds(&organisation, &g)?, b.trimmed_until(&organisation, &g)?))).await?;
    // A position from before what retention removed: the consumer has missed events for good.
    let too_old = match (given, trimmed) {
        (Some(EventPosition::After(id)), Some(t)) => id < t,
        (Some(EventPosition::AtOrAfterMillis(ms)), Some(t)) => ms <= t.ms,
        _ => false,
    };
    let mut position = match (given, recover) {
        (Some(p), _) => p,
        // A snapshot as known at the date, then every event from that millisecond on (an event
        // in the snapshot's millisecond may come twice; none is lost).
        (None, Some(date)) => EventPosition::AtOrAfterMillis(u64::try_from(date.as_millis()).unwrap_or(0)),
        (None, None) => bounds.map_or(EventPosition::Start, |(_, last)| EventPosition::After(last)),
    };
    let mut reached: Option<EventId> = match position {
        EventPosition::After(id) => Some(id),
        _ => None,
    };
    let mut wake =
        s.shared().watchers.subscribe(&client, graph.clone(), bus.clone(), s.shared().shutting_down.subscribe())?;
    let mut stopping = s.shared().shutting_down.subscribe();
    let heartbeat = s.heartbeat();
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let connected = json!({
        "organisation": client,
        "first_event_id": bounds.map(|(first, _)| first.to_string()),
        "last_event_id": bounds.map(|(_, last)| last.to_string()),
        "from": reached.map(|r| r.to_string()),
    });
    tokio::spawn(async move {
        if tx.send(Ok(SseEvent::default().event("connected").data(connected.to_string()))).await.is_err() {
            return;
        }
        if too_old {
            let message = format!(
                "the position is older than the stream's retention: events up to {} are gone; reconnect with recover to rebuild the state",
                trimmed.map(|t| t.to_string()).unwrap_or_default()
            );
            let _ = tx
                .send(Ok(SseEvent::default()
                    .event("error")
                    .data(json!({"message": message, "code": "RETENTION"}).to_string())))
                .await;
            return;
        }
        let mut consumer = Some(Consumer::new(options, filter.clone(), clearance));
        if let Some(date) = recover {
            let (g, sender) = (graph.clone(), tx.clone());
            let mut c = Consumer::new(options, filter.clone(), clearance);
            let id = reached.map_or_else(|| "0-0".to_owned(), |r| r.to_string());
            let at = AsOf { valid_time: date, tx_time: Some(date) };
            match blocking(move || Ok(c.snapshot(&g, at, &id, &sender).map(|()| c)?)).await {
                Ok(c) => consumer = Some(c),
                Err(e) => {
                    let _ = tx
                        .send(Ok(SseEvent::default().event("error").data(json!({"message": e.message}).to_string())))
                        .await;
                    return;
                }
            }
        }
        // Read the log until caught up, then take what the organisation's watcher publishes; read
        // the log again only when a published batch does not follow on (missed, or raced).
        let mut read_log = true;
        loop {
            if *stopping.borrow() {
                return;
            }
            if read_log {
                wake.borrow_and_update();
                let (g, state, organisation, bus) = (graph.clone(), s.clone(), client.clone(), bus.clone());
                let mut c = consumer.take().unwrap_or(Consumer::new(options, filter.clone(), clearance));
                let mut reached_now = reached;
                let read = blocking(move || {
                    // Retention may have removed events this consumer has not had yet.
                    let batch = bus.events_unless_trimmed(&organisation, &g, position, BATCH)?.map_err(|t| {
                        ApiError::conflict(format!(
                            "the stream fell behind its retention: events up to {t} are gone; reconnect with recover"
                        ))
                    })?;
                    let whole = octo_stream::whole_transactions(&batch, batch.len() < BATCH);
                    let last = whole.last().map(|e| e.id);
                    let prepared = state.shared().watchers.prepared.get(&organisation, &g, whole)?;
                    let frames = c.frames(&g, &prepared, &mut reached_now)?;
                    Ok((c, frames, last, reached_now))
                })
                .await;
                let (c, frames, last) = match read {
                    Ok((c, frames, last, r)) => {
                        reached = r.or(reached);
                        (c, frames, last)
                    }
                    Err(e) => {
                        let code = if e.status == axum::http::StatusCode::CONFLICT { "RETENTION" } else { "INTERNAL" };
                        let data = json!({"message": e.message, "code": code}).to_string();
                        let _ = tx.send(Ok(SseEvent::default().event("error").data(data))).await;
                        return;
                    }
                };
                consumer = Some(c);
                if let Some(last) = last {
                    if !send_frames(&tx, frames).await {
                        return;
                    }
                    reached = Some(last);
                    position = EventPosition::After(last);
                    continue;
                }
                read_log = false;
            }
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let published = wake.borrow_and_update().clone();
                    let follows = published.as_ref().is_some_and(|p| position == p.before.map_or(EventPosition::Start, EventPosition::After));
                    let Some(published) = published.filter(|_| follows) else {
                        read_log = true;
                        continue;
                    };
                    let mut c = consumer.take().unwrap_or(Consumer::new(options, filter.clone(), clearance));
                    let mut reached_now = reached;
                    // Without a filter or dependencies, and with inferences or their status known,
                    // a consumer reads nothing from the graph for prepared events (a marking
                    // change aside): no need for the blocking pool.
                    let reads_nothing = c.filter.is_none()
                        && !c.options.dependencies
                        && (c.options.with_inferences
                            || published.prepared.iter().all(|p| p.inferred_only.get().is_some()));
                    let result = if reads_nothing {
                        c.frames(&graph, &published.prepared, &mut reached_now).map(|f| (c, f)).map_err(ApiError::from)
                    } else {
                        let (g, p) = (graph.clone(), published.clone());
                        blocking(move || Ok(c.frames(&g, &p.prepared, &mut reached_now).map(|f| (c, f, reached_now))?))
                            .await
                            .map(|(c, f, r)| {
                                reached_now = r;
                                (c, f)
                            })
                    };
                    let (c, frames) = match result {
                        Ok(r) => r,
                        Err(e) => {
                            let data = json!({"message": e.message, "code": "INTERNAL"}).to_string();
                            let _ = tx.send(Ok(SseEvent::default().event("error").data(data))).await;
                            return;
                        }
                    };
                    consumer = Some(c);
                    if !send_frames(&tx, frames).await {
                        return;
                    }
                    reached = Some(published.last);
                    position = EventPosition::After(published.last);
                }
                _ = tokio::time::sleep(heartbeat) => {
                    let id = reached.map_or_else(|| "0-0".to_owned(), |r| r.to_string());
                    let frame = SseEvent::default().id(id.clone()).event("heartbeat").data(json!({"position": id}).to_string());
                    if tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
                _ = stopping.changed() => return,
            }
        }
    });
    let mut response = Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
