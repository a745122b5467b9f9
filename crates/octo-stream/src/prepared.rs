//! Events made ready to send, kept on disk by event id.
//!
//! Turning an event into a frame (decoding the change, converting it to STIX, reading the
//! object's marking and origins as the graph was known at the event) costs tens of
//! microseconds; a consumer catching up on a million events cannot pay that per event and still
//! read hundreds of thousands a second. So each event is prepared once, in the background as it
//! is written, and kept here: a consumer's catch-up reads prepared events and only applies its
//! own options, clearance and filter to them (OpenCTI keeps its live stream prepared in Redis for
//! the same reason).
//!
//! Everything here derives from the organisation's log and graph, so the file is a cache: its
//! commits are not made durable one by one (a crash loses the last second of preparation, which
//! is prepared again), and a file that cannot be opened is replaced by an empty one.

use std::ops::Bound;
use std::path::Path;

use octo_store::{EventId, EventPosition};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::marking::Tlp;

/// Prepared events by `(ms, seq)` of their event id: postcard, LZ4-compressed.
const PREPARED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("prepared");
/// `framed_until`: every event up to it is prepared (events that make no message have no entry).
const META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
const FRAMED_UNTIL: &str = "framed_until";
/// Bumped when [`PreparedEvent`] changes shape: a file of another version is started afresh.
const FORMAT: &str = "format";
const FORMAT_VERSION: (u64, u64) = (2, 0);

/// What a message does to the consumer's copy of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    /// The object appeared.
    Create,
    /// The object changed.
    Update,
    /// The object went.
    Delete,
    /// The object's marking changed: each consumer sees it appear, change or go.
    Marking,
}

impl MessageKind {
    /// The SSE `event:` name (`marking` never becomes a frame of its own).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Create => "create",
            MessageKind::Update => "update",
            MessageKind::Delete => "delete",
            MessageKind::Marking => "marking",
        }
    }

    /// The kind named by [`MessageKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "create" => MessageKind::Create,
            "update" => MessageKind::Update,
            "delete" => MessageKind::Delete,
            "marking" => MessageKind::Marking,
            _ => return None,
        })
    }
}

/// The parts of an event's frames that no consumer changes: its `data:` JSON, and what a
/// consumer needs to decide whether and how to send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedEvent {
    /// What the message does.
    pub kind: MessageKind,
    /// The object's primary key.
    pub key: String,
    /// When the change took effect (RFC 3339).
    pub valid_time: String,
    /// The object's STIX id (empty for a marking change).
    pub stix_id: String,
    /// The object's marking at the change (before it, for a delete).
    pub marking: Tlp,
    /// Its marking just before the change, when it existed then.
    pub old_marking: Option<Tlp>,
    /// Whether only inferences held it at the change (before it, for a delete).
    pub inferred_only: bool,
    /// The `data:` JSON of its frame, with its marking.
    pub data: String,
    /// The object as the graph stores it (JSON; after the change, before it for a delete).
    pub doc: String,
    /// The object before the change (JSON), for updates and deletes.
    pub old_doc: Option<String>,
    /// The keys it references with their STIX ids (dependencies to send before it).
    pub references: Vec<(String, String)>,
    /// The relationships its references become: STIX id and `data:` JSON, sent after it.
    pub relationships: Vec<(String, String)>,
}

impl PreparedEvent {
    /// About how many bytes its frames take as server-sent events (to size buffers).
    pub fn framed_len(&self) -> usize {
        const FRAME_LINES: usize = 64;
        self.data.len() + FRAME_LINES + self.relationships.iter().map(|(_, d)| d.len() + FRAME_LINES).sum::<usize>()
    }
}

/// The prepared-event file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("prepared stream events: {0}")]
pub struct PreparedStoreError(String);

fn err(e: impl std::fmt::Display) -> PreparedStoreError {
    PreparedStoreError(e.to_string())
}

/// One organisation's prepared events.
pub struct PreparedStore {
    db: Database,
}

fn key(id: EventId) -> (u64, u64) {
    (id.ms, id.seq)
}

fn id((ms, seq): (u64, u64)) -> EventId {
    EventId { ms, seq }
}

impl PreparedStore {
    /// Opens (or creates) the file at `path` with a page cache of `cache_bytes`. A file that
    /// cannot be opened, or holds another format, is replaced: it only ever holds what can be
    /// prepared again.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self, PreparedStoreError> {
        let build = || Database::builder().set_cache_size(cache_bytes).create(path);
        let db = match build() {
            Ok(db) => db,
            // Another process has it open: not ours to replace.
            Err(e @ redb::DatabaseError::DatabaseAlreadyOpen) => return Err(err(e)),
            Err(_) => {
                std::fs::remove_file(path).map_err(err)?;
                build().map_err(err)?
            }
        };
        let store = PreparedStore { db };
        let format = {
            let tx = store.db.begin_read().map_err(err)?;
            match tx.open_table(META) {
                Ok(meta) => meta.get(FORMAT).map_err(err)?.map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(err(e)),
            }
        };
        if format != Some(FORMAT_VERSION) {
            let tx = store.db.begin_write().map_err(err)?;
            tx.delete_table(PREPARED).map_err(err)?;
            tx.delete_table(META).map_err(err)?;
            tx.open_table(META).map_err(err)?.insert(FORMAT, FORMAT_VERSION).map_err(err)?;
            tx.open_table(PREPARED).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(store)
    }

    /// The last event up to which everything is prepared.
    pub fn framed_until(&self) -> Result<Option<EventId>, PreparedStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let meta = tx.open_table(META).map_err(err)?;
        Ok(meta.get(FRAMED_UNTIL).map_err(err)?.map(|v| id(v.value())))
    }

    /// Adds the prepared events of every event up to `until` (those that make no message have
    /// none). `durable` makes this and every earlier append survive a crash; without it the
    /// commit is cheap and a crash may lose it (to be prepared again).
    pub fn append<'a>(
        &self,
        events: impl IntoIterator<Item = (EventId, &'a PreparedEvent)>,
        until: EventId,
        durable: bool,
    ) -> Result<(), PreparedStoreError> {
        let mut tx = self.db.begin_write().map_err(err)?;
        if !durable {
            tx.set_durability(redb::Durability::None).map_err(err)?;
        }
        {
            let mut table = tx.open_table(PREPARED).map_err(err)?;
            let mut bytes = Vec::new();
            for (event_id, event) in events {
                bytes.clear();
                bytes = postcard::to_extend(event, bytes).map_err(err)?;
                // JSON compresses about threefold; LZ4 takes that back at gigabytes a second.
                table.insert(key(event_id), lz4_flex::compress_prepend_size(&bytes).as_slice()).map_err(err)?;
            }
            tx.open_table(META).map_err(err)?.insert(FRAMED_UNTIL, key(until)).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Up to `limit` prepared events from `position` on, and the event the reader has then
    /// covered (the last returned, or the prepared edge when fewer than `limit` remain);
    /// `None` when `position` is at or past the prepared edge (the events there are not
    /// prepared yet).
    #[allow(clippy::type_complexity)]
    pub fn read(
        &self,
        position: EventPosition,
        limit: usize,
    ) -> Result<Option<(Vec<(EventId, PreparedEvent)>, EventId)>, PreparedStoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let meta = tx.open_table(META).map_err(err)?;
        let Some(edge) = meta.get(FRAMED_UNTIL).map_err(err)?.map(|v| id(v.value())) else { return Ok(None) };
        let start = match position {
            EventPosition::Start => Bound::Unbounded,
            EventPosition::After(after) if after >= edge => return Ok(None),
            EventPosition::After(after) => Bound::Excluded(key(after)),
            EventPosition::AtOrAfterMillis(ms) if ms > edge.ms => return Ok(None),
            EventPosition::AtOrAfterMillis(ms) => Bound::Included((ms, 0)),
        };
        let table = tx.open_table(PREPARED).map_err(err)?;
        let mut out = Vec::with_capacity(limit.min(4096));
        for entry in table.range::<(u64, u64)>((start, Bound::Included(key(edge)))).map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let bytes = lz4_flex::decompress_size_prepended(v.value()).map_err(err)?;
            let event: PreparedEvent = postcard::from_bytes(&bytes).map_err(err)?;
            out.push((id(k.value()), event));
            if out.len() >= limit {
                let last = out[out.len() - 1].0;
                return Ok(Some((out, last)));
            }
        }
        Ok(Some((out, edge)))
    }

    /// Removes the prepared events up to and including `until` (those the log's retention
    /// removed); returns how many went.
    pub fn trim_until(&self, until: EventId) -> Result<u64, PreparedStoreError> {
        let mut tx = self.db.begin_write().map_err(err)?;
        tx.set_durability(redb::Durability::None).map_err(err)?;
        let removed = {
            let mut table = tx.open_table(PREPARED).map_err(err)?;
            let mut removed = 0;
            table
                .extract_from_if::<(u64, u64), _>(..=key(until), |_, _| true)
                .map_err(err)?
                .try_for_each(|e| e.map(|_| removed += 1))
                .map_err(err)?;
            removed
        };
        tx.commit().map_err(err)?;
        Ok(removed)
    }

    /// Removes every prepared event (the log they came from is not the one the organisation
    /// has now: a graph restored from an older copy, say).
    pub fn clear(&self) -> Result<(), PreparedStoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        tx.delete_table(PREPARED).map_err(err)?;
        tx.open_table(META).map_err(err)?.remove(FRAMED_UNTIL).map_err(err)?;
        tx.open_table(PREPARED).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Makes everything appended so far survive a crash.
    pub fn make_durable(&self) -> Result<(), PreparedStoreError> {
        self.db.begin_write().map_err(err)?.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> PreparedEvent {
        PreparedEvent {
            kind: if n.is_multiple_of(2) { MessageKind::Create } else { MessageKind::Update },
            key: format!("Hostname|internet|h{n}.example"),
            valid_time: "2026-12-03T00:00:00Z".into(),
            stix_id: format!("domain-name--{n}"),
            marking: Tlp::Amber,
            old_marking: (!n.is_multiple_of(2)).then_some(Tlp::Green),
            inferred_only: n.is_multiple_of(3),
            data: format!("{{\"n\":{n}}}"),
            doc: "{}".into(),
            old_doc: None,
            references: vec![("Network|internet".into(), "x-octo-network--1".into())],
            relationships: vec![],
        }
    }

    fn ev(ms: u64, seq: u64) -> EventId {
        EventId { ms, seq }
    }

    #[test]
    fn reads_resume_at_every_position_up_to_the_edge() {
        let dir = tempfile::tempdir().unwrap();
        let store = PreparedStore::open(&dir.path().join("p.redb"), 1 << 20).unwrap();
        assert_eq!(store.read(EventPosition::Start, 10).unwrap(), None, "nothing prepared yet");
        // Events 10-0 … 10-9; the odd ones made no message. Prepared up to 10-9 and then 11-0
        // (a later event that made no message either).
        let made: Vec<(EventId, PreparedEvent)> =
            (0..10u64).filter(|n| n.is_multiple_of(2)).map(|n| (ev(10, n), event(n))).collect();
        store.append(made.iter().map(|(i, e)| (*i, e)), ev(10, 9), false).unwrap();
        store.append([], ev(11, 0), true).unwrap();
        assert_eq!(store.framed_until().unwrap(), Some(ev(11, 0)));

        let (all, covered) = store.read(EventPosition::Start, 100).unwrap().unwrap();
        assert_eq!(all, made);
        assert_eq!(covered, ev(11, 0), "fewer than the limit: the reader has covered the edge");
        let (two, covered) = store.read(EventPosition::Start, 2).unwrap().unwrap();
        assert_eq!((two.len(), covered), (2, ev(10, 2)), "at the limit: covered up to the last returned");
        let (rest, _) = store.read(EventPosition::After(ev(10, 2)), 100).unwrap().unwrap();
        assert_eq!(rest, made[2..]);
        let (from_ms, _) = store.read(EventPosition::AtOrAfterMillis(10), 100).unwrap().unwrap();
        assert_eq!(from_ms.len(), 5);
        assert_eq!(store.read(EventPosition::After(ev(11, 0)), 10).unwrap(), None, "at the edge");
        assert_eq!(store.read(EventPosition::AtOrAfterMillis(12), 10).unwrap(), None, "past the edge");

        assert_eq!(store.trim_until(ev(10, 4)).unwrap(), 3);
        let (left, _) = store.read(EventPosition::Start, 100).unwrap().unwrap();
        assert_eq!(left, made[3..]);
        store.clear().unwrap();
        assert_eq!((store.framed_until().unwrap(), store.read(EventPosition::Start, 10).unwrap()), (None, None));
    }

    #[test]
    fn a_file_of_another_format_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        let store = PreparedStore::open(&path, 1 << 20).unwrap();
        store.append([(ev(1, 0), &event(0))], ev(1, 0), true).unwrap();
        {
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert(FORMAT, (FORMAT_VERSION.0 - 1, 0)).unwrap();
            tx.commit().unwrap();
        }
        drop(store);
        let store = PreparedStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.framed_until().unwrap(), None);
        assert_eq!(store.read(EventPosition::Start, 10).unwrap(), None);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        std::fs::write(&path, b"not a database at all, and long enough to look like a header ........").unwrap();
        let store = PreparedStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.framed_until().unwrap(), None);
        store.append([(ev(1, 0), &event(0))], ev(1, 0), true).unwrap();
        drop(store);
        let store = PreparedStore::open(&path, 1 << 20).unwrap();
        assert_eq!(store.framed_until().unwrap(), Some(ev(1, 0)), "kept across a reopen");
    }
}
