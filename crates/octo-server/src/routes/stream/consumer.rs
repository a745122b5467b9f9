//! One consumer of a change stream: its options, clearance and filter applied to prepared
//! events, written as server-sent event text.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

use axum::body::Bytes;
use axum::http::HeaderMap;
use octo_graph::{Graph, GraphError};
use octo_model::Reference;
use octo_store::{AsOf, EventId};
use octo_stream::{MessageKind, Tlp};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::framer::{inferred_only, marked, marking_of, payload, references_of, Prepared};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

/// What a consumer asked for (query parameters or headers, as OpenCTI names them).
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// Send an object's unseen references before it (`no-dependencies=false`, the default).
    pub(super) dependencies: bool,
    /// Send deletes (`listen-delete`, default true).
    pub(super) listen_delete: bool,
    /// Send objects that exist only through inference (`with-inferences`, default false).
    pub(super) with_inferences: bool,
}

pub(super) fn options_from(p: &Params, headers: &HeaderMap) -> ApiResult<Options> {
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

/// Appends one server-sent event to `out`. Its data is JSON, which has no line breaks of its
/// own; one would still be framed as the protocol says (a `data:` line each).
pub(super) fn write_frame(out: &mut String, id: Option<&dyn std::fmt::Display>, event: &str, data: &str) {
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// One server-sent event as bytes to send.
pub(super) fn frame(id: Option<&dyn std::fmt::Display>, event: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    write_frame(&mut out, id, event, data);
    Bytes::from(out)
}

/// The frames of one event: its `event:` names and `data:` JSON, borrowed from the prepared
/// event where no consumer changes them.
type Group<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// Writes an event's frames: all but the last carry the position before the event, the last
/// the event's id (a consumer cut off in the middle resumes before the event and gets it whole);
/// then the position is the event's.
fn write_group(out: &mut String, group: Group<'_>, id: EventId, position: &mut Option<EventId>) {
    let before = position.unwrap_or(EventId::ZERO);
    let n = group.len();
    for (i, (event, data)) in group.into_iter().enumerate() {
        let frame_id = if i + 1 == n { id } else { before };
        write_frame(out, Some(&frame_id), event, &data);
    }
    *position = Some(id);
}

/// How deep dependencies are followed (a reference chain is short: finding → port → address →
/// network).
const MAX_DEPENDENCY_DEPTH: usize = 8;

/// A consumer: its options, its live stream's filter if any, and the STIX ids it has been sent
/// (so references resolve).
pub(super) struct Consumer {
    pub(super) options: Options,
    pub(super) filter: Option<octo_stream::FilterGroup>,
    /// The most restricted marking the consumer's token may see.
    clearance: Tlp,
    seen: HashSet<String, foldhash::fast::RandomState>,
}

impl Consumer {
    pub(super) fn new(options: Options, filter: Option<octo_stream::FilterGroup>, clearance: Tlp) -> Self {
        Consumer { options, filter, clearance, seen: HashSet::default() }
    }

    /// Whether the consumer needs the graph to frame prepared events: for a filter, for
    /// dependencies, or for a marking change.
    pub(super) fn reads_graph(&self, prepared: &[std::sync::Arc<Prepared>]) -> bool {
        self.filter.is_some()
            || self.options.dependencies
            || prepared.iter().any(|p| p.event.kind == MessageKind::Marking)
    }

    /// Whether the consumer may see `doc` as of `at`: its clearance reaches the object's
    /// marking, and its filter (if any) lets it through.
    fn visible(&self, graph: &Graph, doc: &Json, at: AsOf) -> Result<bool, GraphError> {
        let key = doc.get("primary_key").and_then(Json::as_str).unwrap_or_default();
        self.visible_marked(graph, key, marking_of(graph, key, at)?, at, || doc)
    }

    /// Whether a consumer may see the object `key` marked `marking` as of `at`: its clearance
    /// reaches the marking and its filter (if any) lets `doc()` through. Only a filter reads
    /// the graph, or the document.
    fn visible_marked<'d>(
        &self,
        graph: &Graph,
        key: &str,
        marking: Tlp,
        at: AsOf,
        doc: impl FnOnce() -> &'d Json,
    ) -> Result<bool, GraphError> {
        if marking > self.clearance {
            return Ok(false);
        }
        let Some(filter) = &self.filter else { return Ok(true) };
        let r = Reference::from_trusted(key);
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
        let view = octo_stream::ObjectView { doc: doc(), scan_level, origins: &origins, marking };
        Ok(filter.matches(&view, graph.catalog()))
    }

    /// Writes the frames of prepared events to `out`, with dependencies and options applied,
    /// and moves `position` past each.
    pub(super) fn frames<'p>(
        &mut self,
        graph: &Graph,
        prepared: impl IntoIterator<Item = &'p Prepared>,
        position: &mut Option<EventId>,
        out: &mut String,
    ) -> Result<(), GraphError> {
        for p in prepared {
            let e = &p.event;
            let (at, before) = p.moments();
            let mut group: Group<'p> = Vec::new();
            if e.kind == MessageKind::Marking {
                self.marking_changed(graph, p, at, before, &mut group)?;
                write_group(out, group, p.id, position);
                continue;
            }
            // (The old document is parsed only for a filter.)
            let was_visible = match e.old_marking {
                Some(marking) => {
                    self.visible_marked(graph, &e.key, marking, before, || p.old_doc().unwrap_or(&Json::Null))?
                }
                None => false,
            };
            // A message written for this consumer alone: the shared one's object and cause with
            // another kind, message and context.
            let rewritten = |kind: &str, from: &str, to: &str, context: Json| -> String {
                let shared: Json = serde_json::from_str(&e.data).unwrap_or(Json::Null);
                let message = shared["message"].as_str().unwrap_or_default().replacen(from, to, 1);
                payload(kind, &shared["data"], message, shared["origin"]["cause"].clone(), &e.valid_time, context)
            };
            if e.kind == MessageKind::Delete {
                if self.options.listen_delete && was_visible && (self.options.with_inferences || !e.inferred_only) {
                    group.push(("delete", Cow::Borrowed(&e.data)));
                }
                self.seen.remove(&e.stix_id);
            } else if !self.visible_marked(graph, &e.key, e.marking, at, || p.doc())? {
                // Moved out of the consumer's view: for it, the object is gone.
                if e.kind == MessageKind::Update && was_visible && self.options.listen_delete {
                    let context = json!({"deletions": [], "reason": "no longer matches the stream's filter"});
                    group.push(("delete", Cow::Owned(rewritten("delete", "updates", "deletes", context))));
                }
                self.seen.remove(&e.stix_id);
            } else if self.options.with_inferences || !e.inferred_only {
                if self.options.dependencies {
                    for (key, id) in &e.references {
                        self.dependency(graph, key, Some(id), at, &e.valid_time, 0, &mut group)?;
                    }
                }
                if e.kind == MessageKind::Update && !self.seen.contains(&e.stix_id) {
                    // The consumer never had it (it joined later, or it was inferred only until
                    // now): an update would have nothing to patch.
                    group.push(("create", Cow::Owned(rewritten("create", "updates", "creates", json!({})))));
                } else {
                    group.push((e.kind.as_str(), Cow::Borrowed(&e.data)));
                }
                self.seen.insert(e.stix_id.clone());
                for (id, data) in &e.relationships {
                    if !self.seen.contains(id) {
                        self.seen.insert(id.clone());
                        group.push(("create", Cow::Borrowed(data)));
                    }
                }
            }
            write_group(out, group, p.id, position);
        }
        Ok(())
    }

    /// A marking set or cleared: the object appears for consumers newly cleared for it, goes for
    /// those no longer cleared, and changes its `object_marking_refs` for the rest.
    fn marking_changed(
        &mut self,
        graph: &Graph,
        p: &Prepared,
        at: AsOf,
        before: AsOf,
        group: &mut Group<'_>,
    ) -> Result<(), GraphError> {
        let catalog = graph.catalog();
        let (key, valid_time) = (p.event.key.as_str(), p.event.valid_time.as_str());
        let r = Reference::from_trusted(key);
        let doc = match graph.get(&r, at) {
            Ok(ooi) => ooi.to_json(),
            Err(GraphError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(stix) = octo_stream::stix::to_stix(&doc, catalog, valid_time).into_iter().next() else {
            return Ok(());
        };
        let id = stix["id"].as_str().unwrap_or_default().to_owned();
        let (old, new) = (marking_of(graph, key, before)?, marking_of(graph, key, at)?);
        let inferred_ok = self.options.with_inferences || !inferred_only(graph, key, at)?;
        let was = inferred_ok && self.visible(graph, &doc, before)?;
        let now = inferred_ok && self.visible(graph, &doc, at)?;
        let cause = json!(format!("marking {} → {}", old, new));
        let stix_type = stix["type"].as_str().unwrap_or_default();
        match (was, now) {
            (true, false) => {
                if self.options.listen_delete {
                    let message = format!("deletes {stix_type} {key} (now {new})");
                    let context = json!({"deletions": [], "reason": "marked beyond the consumer's clearance"});
                    let data = payload("delete", &marked(&stix, old), message, cause, valid_time, context);
                    group.push(("delete", Cow::Owned(data)));
                }
                self.seen.remove(&id);
            }
            (false, true) => {
                if self.options.dependencies {
                    for next in references_of(catalog, &doc) {
                        self.dependency(graph, &next, None, at, valid_time, 0, group)?;
                    }
                }
                let message = format!("creates {stix_type} {key} (now {new})");
                let data = payload("create", &marked(&stix, new), message, cause, valid_time, json!({}));
                group.push(("create", Cow::Owned(data)));
                self.seen.insert(id);
            }
            (true, true) if old != new => {
                let (was_marked, now_marked) = (marked(&stix, old), marked(&stix, new));
                let context = json!({
                    "patch": json_patch::diff(&was_marked, &now_marked),
                    "reverse_patch": json_patch::diff(&now_marked, &was_marked),
                });
                let message = format!("updates the marking of {key} to {new}");
                group.push(("update", Cow::Owned(payload("update", &now_marked, message, cause, valid_time, context))));
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends every object as it was at `at` as `create` frames (dependencies first, options
    /// applied), all with the id `position`: a consumer cut off inside the snapshot resumes
    /// before it and, asking again, gets all of it. Stops early when the consumer has gone.
    pub(super) fn snapshot(
        &mut self,
        graph: &Graph,
        at: AsOf,
        position: &str,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<(), GraphError> {
        /// Bytes of frames gathered before they are sent.
        const CHUNK: usize = 64 << 10;
        let catalog = graph.catalog();
        let types: Vec<&str> = catalog.concrete_types(octo_model::ROOT_TYPE)?.iter().map(String::as_str).collect();
        let mut keys = Vec::new();
        graph.store().snapshot()?.scan_types(&types, at, &mut |v| {
            keys.push(v.key);
            true
        })?;
        let when = at.valid_time.to_string();
        let mut out = String::new();
        for key in keys {
            let mut group: Group<'_> = Vec::new();
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
                self.dependency(graph, &key, None, at, &when, 0, &mut group)?;
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
                            let data = payload("create", &stix, message, json!("recover"), &when, json!({}));
                            group.push(("create", Cow::Owned(data)));
                        }
                    }
                }
            }
            for (event, data) in group {
                write_frame(&mut out, Some(&position), event, &data);
            }
            if out.len() >= CHUNK && tx.blocking_send(Bytes::from(std::mem::take(&mut out))).is_err() {
                return Ok(());
            }
        }
        if !out.is_empty() {
            let _ = tx.blocking_send(Bytes::from(out));
        }
        Ok(())
    }

    /// Sends `key` (and, first, what it references) if the consumer has not had it. `id` is
    /// its STIX id when known.
    #[allow(clippy::too_many_arguments)]
    fn dependency(
        &mut self,
        graph: &Graph,
        key: &str,
        id: Option<&str>,
        at: AsOf,
        valid_time: &str,
        depth: usize,
        group: &mut Group<'_>,
    ) -> Result<(), GraphError> {
        let catalog = graph.catalog();
        let r = Reference::from_trusted(key);
        let id = id.map_or_else(|| octo_stream::stix::stix_id(&r, catalog), str::to_owned);
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
            self.dependency(graph, &next, None, at, valid_time, depth + 1, group)?;
        }
        if let Some(stix) = octo_stream::stix::to_stix(&doc, catalog, valid_time).into_iter().next() {
            let message = format!("creates {} {key} (a dependency)", stix["type"].as_str().unwrap_or_default());
            let data = payload("create", &marked(&stix, tlp), message, json!("dependency"), valid_time, json!({}));
            group.push(("create", Cow::Owned(data)));
        }
        Ok(())
    }
}
