//! Graph events as stream messages, in OpenCTI's live-stream shape: `{version, type, scope,
//! data, message, origin, context}` with `data` the STIX object.

use octo_model::Catalog;
use octo_store::{Event, EventId};
use serde_json::{json, Map, Value as Json};

use crate::stix::to_stix;

/// One message of the stream, ready to frame as a server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMessage {
    /// The event it comes from (the SSE `id:`, which a consumer resumes after).
    pub id: EventId,
    /// `create`, `update` or `delete` (the SSE `event:`); `marking` for a changed marking (no
    /// frame of its own: each consumer sees the object appear, change or go).
    pub kind: &'static str,
    /// The `data:` JSON.
    pub data: Json,
    /// The object's primary key.
    pub key: String,
    /// The object as the graph stores it (after the change; before it, for a delete).
    pub doc: Json,
    /// The object before the change, for updates and deletes; for `marking`, the marking before.
    pub old_doc: Option<Json>,
    /// When the change took effect (valid time, RFC 3339).
    pub valid_time: String,
    /// The relationships its references become (sent after it; not for deletes).
    pub relationships: Vec<Json>,
}

/// The messages of whole transactions' events, in order. Events of records that are not
/// objects (origins, scan profiles, settings) make no message; the consumer's position still
/// moves past them through heartbeats. A delete lists, in `context.deletions`, the other objects
/// the same transaction deleted (a garbage-collection cascade arrives as one story).
pub fn messages(events: &[Event], catalog: &Catalog) -> Vec<StreamMessage> {
    let mut changes: Vec<(EventId, u64, Json)> = Vec::new();
    let mut out = Vec::new();
    for e in events {
        // Most of a log is origins and scan profiles: their payloads are skimmed for the entity
        // and not built into values.
        let Ok(head) = serde_json::from_slice::<ChangeHead>(&e.payload) else { continue };
        if head.entity != "ooi" && head.entity != "setting" {
            continue;
        }
        let Ok(change) = serde_json::from_slice::<Json>(&e.payload) else { continue };
        match change.get("entity").and_then(Json::as_str) {
            Some("ooi") => changes.push((e.id, e.tx_id, change)),
            Some("setting") => {
                // A marking set or cleared: the object's visibility may change for some consumers.
                let key = change.get("key").and_then(Json::as_str).unwrap_or_default();
                let Some(object) = key.strip_prefix("Setting|marking:") else { continue };
                out.push(StreamMessage {
                    id: e.id,
                    kind: "marking",
                    data: Json::Null,
                    key: object.to_owned(),
                    doc: Json::Null,
                    old_doc: change.get("old").cloned(),
                    valid_time: change.get("valid_time").and_then(Json::as_str).unwrap_or_default().to_owned(),
                    relationships: vec![],
                });
            }
            _ => {}
        }
    }
    let stix_of = |doc: &Json, when: &str| to_stix(doc, catalog, when).into_iter().next();
    // The STIX ids of what each transaction deleted, for the `deletions` of its deletes
    // (converted once, not once for every delete of the cascade).
    // The deleted objects' STIX forms are kept for their own delete messages.
    let mut deleted: Vec<(u64, EventId, Json)> = Vec::new();
    let mut deleted_objects: std::collections::HashMap<EventId, Json> = std::collections::HashMap::new();
    for (id, tx_id, c) in &changes {
        if c.get("new").is_none_or(Json::is_null) {
            let when = c.get("valid_time").and_then(Json::as_str).unwrap_or_default();
            if let Some(object) = c.get("old").and_then(|d| stix_of(d, when)) {
                if let Some(stix_id) = object.get("id").cloned() {
                    deleted.push((*tx_id, *id, stix_id));
                }
                deleted_objects.insert(*id, object);
            }
        }
    }
    for (id, tx_id, change) in changes {
        let Json::Object(mut change) = change else { continue };
        let text = |v: Option<Json>| match v {
            Some(Json::String(s)) => s,
            _ => String::new(),
        };
        let when = text(change.remove("valid_time"));
        let when = when.as_str();
        let key = text(change.remove("key"));
        let cause = change.remove("cause").unwrap_or(Json::Null);
        let old_doc = change.remove("old").filter(|v| !v.is_null());
        let new_doc = change.remove("new").filter(|v| !v.is_null());
        let old = match deleted_objects.remove(&id) {
            Some(object) => Some(object),
            None => old_doc.as_ref().and_then(|d| stix_of(d, when)),
        };
        // The object, then the relationships its references become.
        let (new, relationships) = match new_doc.as_ref().map(|d| to_stix(d, catalog, when)) {
            Some(mut objects) if !objects.is_empty() => {
                let first = objects.remove(0);
                (Some(first), objects)
            }
            _ => (None, Vec::new()),
        };
        let (doc, old_doc) = match (new_doc, old_doc) {
            (Some(new), old) => (new, old),
            (None, Some(old)) => (old.clone(), Some(old)),
            (None, None) => continue,
        };
        let (kind, data, context) = match (old, new) {
            (None, Some(new)) => ("create", new, json!({})),
            (Some(old), Some(new)) => {
                let patch = json_patch::diff(&old, &new);
                let reverse = json_patch::diff(&new, &old);
                ("update", new, json!({"patch": patch, "reverse_patch": reverse}))
            }
            (Some(old), None) => {
                let deletions: Vec<Json> = deleted
                    .iter()
                    .filter(|(tx, other, _)| *tx == tx_id && *other != id)
                    .map(|(_, _, stix_id)| stix_id.clone())
                    .collect();
                ("delete", old, json!({"deletions": deletions}))
            }
            (None, None) => continue,
        };
        let stix_type = data.get("type").and_then(Json::as_str).unwrap_or("object").to_owned();
        let message = match kind {
            "create" => format!("creates {stix_type} {key}"),
            "update" => format!("updates {stix_type} {key}"),
            _ => format!("deletes {stix_type} {key}"),
        };
        // Built field by field: `json!` would copy the STIX object and the context through
        // serialisation.
        let mut origin = Map::new();
        origin.insert("cause".into(), cause);
        origin.insert("valid_time".into(), Json::String(when.to_owned()));
        let mut message_data = Map::new();
        message_data.insert("version".into(), Json::String("4".into()));
        message_data.insert("type".into(), Json::String(kind.into()));
        message_data.insert("scope".into(), Json::String("external".into()));
        message_data.insert("data".into(), data);
        message_data.insert("message".into(), Json::String(message));
        message_data.insert("origin".into(), Json::Object(origin));
        message_data.insert("context".into(), context);
        out.push(StreamMessage {
            id,
            kind,
            data: Json::Object(message_data),
            key,
            doc,
            old_doc,
            valid_time: when.to_owned(),
            relationships,
        });
    }
    // Event ids are unique: no order among equals to keep.
    out.sort_unstable_by_key(|m| m.id);
    out
}

/// The one field of a change that says whether it can make a message.
#[derive(serde::Deserialize)]
struct ChangeHead<'a> {
    #[serde(borrow)]
    entity: std::borrow::Cow<'a, str>,
}

/// The events up to the last whole transaction: a batch read with a limit may end inside one,
/// and its tail must wait for the next read so a delete can list all of its cascade. `complete`
/// says the read reached the end of the log (transactions commit whole, so then none is cut).
pub fn whole_transactions(events: &[Event], complete: bool) -> &[Event] {
    if complete || events.is_empty() {
        return events;
    }
    let last_tx = events[events.len() - 1].tx_id;
    let cut = events.iter().rposition(|e| e.tx_id != last_tx).map_or(0, |i| i + 1);
    if cut == 0 {
        // One transaction larger than the batch: send it as it is rather than never.
        events
    } else {
        &events[..cut]
    }
}
