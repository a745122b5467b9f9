//! The storage interface the graph is written against.
//!
//! Narrow on purpose: versions of keys with valid and transaction times, a type scan, a
//! reverse-reference index and history. The embedded engine ([`crate::RedbStore`]) implements it;
//! a PostgreSQL backend maps each method to one indexed query and runs the same test suite.

use std::time::Duration;

use crate::error::Result;
use crate::event::{Event, EventId, EventPosition};
use crate::key_index::KeyView;
use crate::time::Timestamp;
use crate::version::{AsOf, TxReceipt, ValidTime, Version};

/// Bitemporal reads, on a snapshot or inside a transaction.
pub trait Reader {
    /// The version of `key` valid at `at.valid_time` as known at `at.tx_time`; `None` when the
    /// key did not exist then (never written, or deleted).
    fn get(&self, key: &str, at: AsOf) -> Result<Option<Version>>;

    /// [`Reader::get`] of several keys, answered in the order asked. Walks that read a level
    /// of neighbours at a time (a tree, a page, the profiles of a page) ask for keys that lie
    /// close together, such as the ports of one address: an engine reads those in one pass
    /// instead of one index descent per key.
    fn get_many(&self, keys: &[&str], at: AsOf) -> Result<Vec<Option<Version>>> {
        keys.iter().map(|k| self.get(k, at)).collect()
    }

    /// Every live key of one concrete type (keys starting with `type_name|`), in key order, as of
    /// `at`. `visit` returns `false` to stop early. Callers expand abstract types to their
    /// concrete types (the catalogue knows them) and scan each. `type_name` may itself hold
    /// `|`: `ScanProfile|IPPort` scans the profiles of ports.
    fn scan_type(&self, type_name: &str, at: AsOf, visit: &mut dyn FnMut(Version) -> bool) -> Result<()>;

    /// The live versions that reference `target` as of `at` ("who references X"); with
    /// `source_type`, only keys of that type (`Origin` for the origins of an object), which is a
    /// narrower range read, not a filter.
    fn referrers(&self, target: &str, source_type: Option<&str>, at: AsOf) -> Result<Vec<Version>>;

    /// The keys that referenced `target` in any version, from the index alone (no document is
    /// read): candidates for [`Reader::referrers_among`], filtered by the caller, by type say.
    fn referrer_keys(&self, target: &str) -> Result<Vec<String>>;

    /// [`Reader::referrer_keys`] of several targets, in the order asked, read in one pass
    /// where the targets lie close together (see [`Reader::get_many`]).
    fn referrer_keys_many(&self, targets: &[&str]) -> Result<Vec<Vec<String>>> {
        targets.iter().map(|t| self.referrer_keys(t)).collect()
    }

    /// Of the candidate `sources`, the live versions that reference `target` as of `at`.
    fn referrers_among(&self, target: &str, sources: &[String], at: AsOf) -> Result<Vec<Version>> {
        let mut out = Vec::new();
        for s in sources {
            if let Some(v) = self.get(s, at)? {
                if v.refs.iter().any(|r| r == target) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Every version ever written for `key`, tombstones included, by valid time then
    /// transaction time.
    fn history(&self, key: &str) -> Result<Vec<Version>>;

    /// Every version of every key, tombstones included, in key order and within a key by valid
    /// time then transaction time; `visit` returns `false` to stop. For exports and audits:
    /// it reads the whole store.
    fn scan_versions(&self, visit: &mut dyn FnMut(Version) -> bool) -> Result<()>;

    /// The last committed transaction, if any.
    fn last_tx(&self) -> Result<Option<TxReceipt>>;

    /// Up to `limit` events from `from` on, in id order.
    fn events(&self, from: EventPosition, limit: usize) -> Result<Vec<Event>>;

    /// The first and last event ids held, if any.
    fn event_bounds(&self) -> Result<Option<(EventId, EventId)>>;

    /// The last event removed by retention, if any: a consumer whose position is before it has
    /// missed events that are gone.
    fn events_trimmed_until(&self) -> Result<Option<EventId>>;

    /// The live keys of one type as of `at`, in key order, without their documents: for counts
    /// and pages, where reading every document would be the cost.
    fn scan_type_keys(&self, type_name: &str, at: AsOf, visit: &mut dyn FnMut(&str) -> bool) -> Result<()> {
        self.scan_type(type_name, at, &mut |v| visit(&v.key))
    }

    /// The live keys of each of `types` (concrete types, in the order given) as of `at`, sorted,
    /// handed to `read` when this reader can answer from an index instead of a scan; returns
    /// whether it did. Pages and counts of "every object of these types now" are then a slice
    /// and a length. Engines answer for the current state only (the newest transaction, at a
    /// valid time at or after every one written, or a moment before the newest writes);
    /// callers scan otherwise.
    fn live_keys_indexed(&self, types: &[&str], at: AsOf, read: &mut dyn FnMut(&[KeyView])) -> Result<bool> {
        let _ = (types, at, read);
        Ok(false)
    }

    /// [`Reader::scan_type`] over several concrete types in turn (an abstract type's expansion).
    fn scan_types(&self, types: &[&str], at: AsOf, visit: &mut dyn FnMut(Version) -> bool) -> Result<()> {
        let mut go_on = true;
        for t in types {
            self.scan_type(t, at, &mut |v| {
                go_on = visit(v);
                go_on
            })?;
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

/// A write transaction: reads see its own writes; nothing is visible to others until
/// [`Transaction::commit`] returns, and dropping it without committing discards everything.
pub trait Transaction: Reader {
    /// This transaction's time, assigned at begin, strictly after every earlier transaction's.
    fn tx_time(&self) -> Timestamp;

    /// Writes a document for `key` with the keys it references, over the valid-time span.
    fn put(&mut self, key: &str, doc: &[u8], refs: &[String], valid: ValidTime) -> Result<()>;

    /// Writes a tombstone for `key` over the valid-time span.
    fn delete(&mut self, key: &str, valid: ValidTime) -> Result<()>;

    /// Appends an event to the log; it becomes visible with the commit, or never.
    fn append_event(&mut self, payload: &[u8]) -> Result<EventId>;

    /// Makes every write durable and visible at once, and returns the receipt.
    fn commit(self: Box<Self>) -> Result<TxReceipt>;
}

/// A bitemporal store. Any number of snapshots may be read while one transaction writes.
pub trait Store: Send + Sync {
    /// A consistent read-only view of everything committed so far.
    fn snapshot(&self) -> Result<Box<dyn Reader + Send + '_>>;

    /// Starts the (single) write transaction, waiting for one in progress to finish.
    fn begin(&self) -> Result<Box<dyn Transaction + '_>>;

    /// Removes the oldest events beyond `keep_last` and those older than `before_ms` (each
    /// optional), at most `max` in one call, and returns how many went. Only the event log is
    /// trimmed; the versions stay.
    fn trim_events(&self, keep_last: Option<u64>, before_ms: Option<u64>, max: usize) -> Result<u64>;

    /// Memory held beside the page cache by in-memory indexes (the key index's lists), for
    /// operators watching a server's memory.
    fn index_bytes(&self) -> u64 {
        0
    }

    /// Memory held by the cache of current answers (recently read keys and referrer lists),
    /// for the same operators.
    fn cache_bytes(&self) -> u64 {
        0
    }

    /// Blocks until an event after `after` is committed (`None`: any event), or `timeout`
    /// passes; returns the last event id then held. Consumers wait here instead of polling.
    fn wait_for_events(&self, after: Option<EventId>, timeout: Duration) -> Option<EventId>;
}

/// One write, for [`transact`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// See [`Transaction::put`].
    Put {
        /// The key.
        key: String,
        /// The document.
        doc: Vec<u8>,
        /// The keys it references.
        refs: Vec<String>,
        /// When it holds.
        valid: ValidTime,
    },
    /// See [`Transaction::delete`].
    Delete {
        /// The key.
        key: String,
        /// From when (or during which span) it is gone.
        valid: ValidTime,
    },
}

/// Applies `ops` in one transaction and commits it.
pub fn transact(store: &dyn Store, ops: &[Op]) -> Result<TxReceipt> {
    let mut tx = store.begin()?;
    for op in ops {
        match op {
            Op::Put { key, doc, refs, valid } => tx.put(key, doc, refs, *valid)?,
            Op::Delete { key, valid } => tx.delete(key, *valid)?,
        }
    }
    tx.commit()
}
