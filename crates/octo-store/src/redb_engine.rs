//! The embedded engine on redb: a copy-on-write B-tree with MVCC snapshots, so readers never
//! block the writer, and commits that are atomic and durable when acknowledged: through the
//! commit journal (see [`crate::journal`]) between redb's own durable commits.
//! Pages are read through a bounded cache, so stores larger than RAM work.

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::codec::{
    decode_key, decode_key_into, encode_key, encode_record, prefix_end, ref_key, split_times, version_key, Record,
    RECORD_FORMAT,
};
use crate::current_cache::CurrentCache;
use crate::error::{Result, StoreError};
use crate::event::{Event, EventId, EventPosition};
use crate::journal::{Journal, RecordBuf, Table as JournalTable};
use crate::key_index::{FinalState, KeyIndex, KeyView, ReadAt, Touched};
use crate::store::{Reader, Store, Transaction};
use crate::time::Timestamp;
use crate::version::{AsOf, TxReceipt, ValidTime, Version};

const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");
const REFS: TableDefinition<&[u8], ()> = TableDefinition::new("refs");
const TXS: TableDefinition<u64, (i64, u64)> = TableDefinition::new("transactions");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<(u64, u64), (u64, &[u8])> = TableDefinition::new("events");
const LAST_TX: &str = "last_tx";
const LAST_EVENT: &str = "last_event";
const TRIMMED_UNTIL: &str = "trimmed_until";
const FORMAT: &str = "record_format";
/// A number drawn when the store is created, which its journal records carry.
const STORE_ID: &str = "store_id";
/// The greatest valid time of any version written: reads at or after it (and at the newest
/// transaction) see every key's last version, which the key index holds.
const MAX_VALID: &str = "max_valid";

/// Tuning for the embedded engine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of page cache; the rest of the file stays on disk (and in the OS page cache).
    pub cache_bytes: usize,
    /// Memory for the in-memory lists of live keys by type that answer pages and counts of
    /// the current state without a scan (about 16 bytes plus the key, per key); types that do
    /// not fit are scanned. 0 turns the lists off.
    pub key_index_bytes: usize,
    /// Memory for the current answers of recently read keys and referrer lists (decoded
    /// versions, beside the page cache), which serve repeated reads of the current state without
    /// a B-tree descent. 0 turns it off.
    pub current_cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_bytes: 1 << 30, key_index_bytes: 256 << 20, current_cache_bytes: 1 << 30 }
    }
}

/// The embedded bitemporal store: one file, and its commit journal beside it.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Engine>,
    events: Arc<EventSignal>,
    /// Whether opening had to repair the file (it was not closed cleanly).
    repaired: bool,
}

/// The database and its journal, checkpointed when the last handle goes.
struct Engine {
    db: Database,
    journal: Mutex<Journal>,
    keys: KeyIndex,
    current: CurrentCache,
}

impl std::ops::Deref for Engine {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A clean close leaves nothing to replay. Should this fail, the journal still holds
        // every record and the next open applies them.
        let journal = self.journal.get_mut().unwrap_or_else(|p| p.into_inner());
        if journal.is_empty() {
            return;
        }
        if let Ok(txn) = self.db.begin_write() {
            if txn.commit().is_ok() {
                let _ = journal.reset();
            }
        }
    }
}

/// The last committed event id, and a condition variable woken when it moves.
#[derive(Default)]
struct EventSignal {
    last: Mutex<Option<EventId>>,
    moved: Condvar,
}

impl EventSignal {
    fn publish(&self, id: EventId) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|l| l < id) {
            *last = Some(id);
        }
        self.moved.notify_all();
    }
}

impl RedbStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self> {
        let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = repaired.clone();
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .set_repair_callback(move |_| flag.store(true, std::sync::atomic::Ordering::Relaxed))
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_owned()),
                other => StoreError::engine(other),
            })?;
        let tx = db.begin_write().map_err(StoreError::engine)?;
        let (store_id, durable_last) = {
            let versions = tx.open_table(VERSIONS).map_err(StoreError::engine)?;
            tx.open_table(REFS).map_err(StoreError::engine)?;
            tx.open_table(TXS).map_err(StoreError::engine)?;
            let mut meta = tx.open_table(META).map_err(StoreError::engine)?;
            tx.open_table(EVENTS).map_err(StoreError::engine)?;
            check_format(&mut meta, versions.is_empty().map_err(StoreError::engine)?)?;
            (store_id(&mut meta)?, read_last_tx(&meta)?.map_or(0, |r| r.tx_id))
        };
        tx.commit().map_err(StoreError::engine)?;
        let (mut journal, records) = Journal::open(&Journal::path_for(path), store_id)?;
        replay(&db, durable_last, &records)?;
        journal.reset()?;
        record_max_valid(&db)?;
        let (last_event, last_tx) = {
            let read = db.begin_read().map_err(StoreError::engine)?;
            let meta = read.open_table(META).map_err(StoreError::engine)?;
            (read_last_event(&meta)?, read_last_tx(&meta)?.map_or(0, |r| r.tx_id))
        };
        let events = Arc::new(EventSignal { last: Mutex::new(last_event), moved: Condvar::new() });
        let repaired = repaired.load(std::sync::atomic::Ordering::Relaxed);
        let engine = Engine {
            db,
            journal: Mutex::new(journal),
            keys: KeyIndex::new(options.key_index_bytes),
            current: CurrentCache::new(options.current_cache_bytes, last_tx),
        };
        Ok(RedbStore { db: Arc::new(engine), events, repaired })
    }

    /// The bytes the store at `path` takes on disk: its file and its commit journal (up to
    /// a quarter of a gigabyte between checkpoints), so that size gauges show both.
    pub fn disk_bytes(path: &Path) -> std::io::Result<u64> {
        let file = std::fs::metadata(path)?.len();
        let journal = match std::fs::metadata(Journal::path_for(path)) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(file + journal)
    }

    /// Whether opening had to repair the file because the process that had it open last did
    /// not close it (a crash, `kill -9`, or a store still referenced at exit). Nothing
    /// committed is lost either way, but a repair reads the whole file: on a large store a
    /// start takes minutes instead of milliseconds.
    pub fn was_repaired(&self) -> bool {
        self.repaired
    }
}

impl Store for RedbStore {
    fn snapshot(&self) -> Result<Box<dyn Reader + Send + '_>> {
        let txn = self.db.begin_read().map_err(StoreError::engine)?;
        Ok(Box::new(RedbSnapshot {
            versions: txn.open_table(VERSIONS).map_err(StoreError::engine)?,
            refs: txn.open_table(REFS).map_err(StoreError::engine)?,
            meta: txn.open_table(META).map_err(StoreError::engine)?,
            events: txn.open_table(EVENTS).map_err(StoreError::engine)?,
            _txn: txn,
            engine: self.db.clone(),
            position: OnceCell::new(),
        }))
    }

    fn begin(&self) -> Result<Box<dyn Transaction + '_>> {
        let txn = self.db.begin_write().map_err(StoreError::engine)?;
        let (last, last_event, max_valid) = {
            let meta = txn.open_table(META).map_err(StoreError::engine)?;
            (read_last_tx(&meta)?, read_last_event(&meta)?, read_max_valid(&meta)?)
        };
        let (tx_id, tx_time) = match last {
            None => (1, Timestamp::now()),
            Some(r) => (r.tx_id + 1, Timestamp::now().max(r.tx_time.next())),
        };
        Ok(Box::new(RedbTransaction {
            txn: Some(txn),
            tx_id,
            tx_time,
            last_event,
            appended_events: false,
            max_valid,
            signal: self.events.clone(),
            pending: RefCell::new(Pending::default()),
            engine: self.db.clone(),
        }))
    }

    fn trim_events(&self, keep_last: Option<u64>, before_ms: Option<u64>, max: usize) -> Result<u64> {
        if keep_last.is_none() && before_ms.is_none() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(StoreError::engine)?;
        let mut removed = 0u64;
        let mut last_removed = None;
        {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::engine)?;
            let mut held = ReadableTableMetadata::len(&events).map_err(StoreError::engine)?;
            while (removed as usize) < max {
                let Some((ms, seq)) = events.first().map_err(StoreError::engine)?.map(|(k, _)| k.value()) else {
                    break;
                };
                let too_many = keep_last.is_some_and(|n| held > n);
                let too_old = before_ms.is_some_and(|b| ms < b);
                if !too_many && !too_old {
                    break;
                }
                events.remove((ms, seq)).map_err(StoreError::engine)?;
                last_removed = Some(EventId { ms, seq });
                held -= 1;
                removed += 1;
            }
        }
        if let Some(id) = last_removed {
            let mut meta = txn.open_table(META).map_err(StoreError::engine)?;
            let bytes = event_key(id);
            meta.insert(TRIMMED_UNTIL, bytes.as_slice()).map_err(StoreError::engine)?;
        }
        txn.commit().map_err(StoreError::engine)?;
        Ok(removed)
    }

    fn index_bytes(&self) -> u64 {
        self.db.keys.bytes()
    }

    fn cache_bytes(&self) -> u64 {
        self.db.current.bytes()
    }

    fn wait_for_events(&self, after: Option<EventId>, timeout: Duration) -> Option<EventId> {
        let deadline = Instant::now() + timeout;
        let mut last = self.events.last.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let current = *last;
            if current.is_some() && current > after {
                return current;
            }
            let now = Instant::now();
            if now >= deadline {
                return current;
            }
            last = self.events.moved.wait_timeout(last, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

struct RedbSnapshot {
    versions: ReadOnlyTable<&'static [u8], &'static [u8]>,
    refs: ReadOnlyTable<&'static [u8], ()>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    events: ReadOnlyTable<(u64, u64), (u64, &'static [u8])>,
    _txn: ReadTransaction,
    engine: Arc<Engine>,
    /// Its last transaction, read on first use.
    position: OnceCell<Position>,
}

/// Where a snapshot stands: what decides whether a read of it is of the current state.
#[derive(Clone, Copy)]
struct Position {
    /// Its last transaction (0 for an empty store) and that transaction's time.
    tx: Option<TxReceipt>,
    /// The greatest valid time written by then.
    max_valid: Option<Timestamp>,
}

impl RedbSnapshot {
    fn position(&self) -> Result<Position> {
        if let Some(p) = self.position.get() {
            return Ok(*p);
        }
        let p = Position { tx: read_last_tx(&self.meta)?, max_valid: read_max_valid(&self.meta)? };
        Ok(*self.position.get_or_init(|| p))
    }

    /// The snapshot's transaction id when a read `at` is of the current state, whose answers
    /// the current-state cache holds: as known now (or at a time at or after the last
    /// transaction), at a valid time at or after every valid time written.
    fn current_tx(&self, at: AsOf) -> Result<Option<u64>> {
        let p = self.position()?;
        let tx_id = p.tx.map_or(0, |r| r.tx_id);
        let now = match (at.tx_time, p.tx) {
            (Some(t), Some(r)) => t >= r.tx_time,
            _ => true,
        };
        Ok((now && p.max_valid.is_none_or(|m| at.valid_time >= m)).then_some(tx_id))
    }

    /// The snapshot's transaction id; referrer lists do not depend on the time asked.
    fn tx_id(&self) -> Result<u64> {
        Ok(self.position()?.tx.map_or(0, |r| r.tx_id))
    }
}

/// A batched read answered from the cache of current answers where it holds them: the rest are
/// read in one batch (`read`, answered in the order asked) and kept.
fn through_cache<T: Default>(
    keys: &[&str],
    cached: impl Fn(&str) -> Option<T>,
    read: impl FnOnce(&[&str]) -> Result<Vec<T>>,
    keep: impl Fn(&str, &T),
) -> Result<Vec<T>> {
    let mut out: Vec<Option<T>> = keys.iter().map(|k| cached(k)).collect();
    let missing: Vec<&str> = keys.iter().zip(&out).filter(|(_, o)| o.is_none()).map(|(k, _)| *k).collect();
    if !missing.is_empty() {
        let mut read = read(&missing)?.into_iter();
        for (key, slot) in keys.iter().zip(out.iter_mut()) {
            if slot.is_none() {
                let found = read.next().unwrap_or_default();
                keep(key, &found);
                *slot = Some(found);
            }
        }
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// A snapshot's final state, for the key index.
struct SnapshotState<'a>(&'a ReadOnlyTable<&'static [u8], &'static [u8]>);

impl FinalState for SnapshotState<'_> {
    fn is_live(&self, key: &str) -> Result<bool> {
        let (lo, hi) = key_range(key);
        match self.0.range(lo.as_slice()..hi.as_slice()).map_err(StoreError::engine)?.next_back() {
            Some(item) => Record::is_live(item.map_err(StoreError::engine)?.1.value()),
            None => Ok(false),
        }
    }
    fn is_live_at(&self, key: &str, valid: Timestamp) -> Result<bool> {
        Ok(get_record(self.0, key, valid, Timestamp::MAX)?.is_some_and(|(_, _, r)| !r.deleted))
    }
    fn live_keys(&self, type_name: &str, visit: &mut dyn FnMut(&str)) -> Result<()> {
        let last = AsOf { valid_time: Timestamp::MAX, tx_time: None };
        scan_type_keys(self.0, type_name, last, &mut |k| {
            visit(k);
            true
        })
    }
}

impl Reader for RedbSnapshot {
    fn get(&self, key: &str, at: AsOf) -> Result<Option<Version>> {
        let Some(tx) = self.current_tx(at)? else { return get(&self.versions, key, at) };
        let cache = &self.engine.current;
        if let Some(hit) = cache.version(key, tx) {
            return Ok(hit);
        }
        let found = get(&self.versions, key, at)?;
        cache.keep_version(key, tx, &found);
        Ok(found)
    }
    fn get_many(&self, keys: &[&str], at: AsOf) -> Result<Vec<Option<Version>>> {
        let Some(tx) = self.current_tx(at)? else { return get_many(&self.versions, keys, at) };
        let cache = &self.engine.current;
        through_cache(
            keys,
            |k| cache.version(k, tx),
            |missing| get_many(&self.versions, missing, at),
            |k, found| cache.keep_version(k, tx, found),
        )
    }
    fn referrer_keys_many(&self, targets: &[&str]) -> Result<Vec<Vec<String>>> {
        let tx = self.tx_id()?;
        let cache = &self.engine.current;
        through_cache(
            targets,
            |t| cache.referrers(t, tx),
            |missing| referrer_keys_many(&self.refs, missing),
            |t, found| cache.keep_referrers(t, tx, found),
        )
    }
    fn scan_type(&self, type_name: &str, at: AsOf, visit: &mut dyn FnMut(Version) -> bool) -> Result<()> {
        scan_type(&self.versions, type_name, at, visit)
    }
    fn scan_type_keys(&self, type_name: &str, at: AsOf, visit: &mut dyn FnMut(&str) -> bool) -> Result<()> {
        scan_type_keys(&self.versions, type_name, at, visit)
    }
    fn referrers(&self, target: &str, source_type: Option<&str>, at: AsOf) -> Result<Vec<Version>> {
        referrers(&self.versions, &self.refs, target, source_type, at)
    }
    fn history(&self, key: &str) -> Result<Vec<Version>> {
        history(&self.versions, key)
    }
    fn scan_versions(&self, visit: &mut dyn FnMut(Version) -> bool) -> Result<()> {
        scan_versions(&self.versions, visit)
    }
    fn referrer_keys(&self, target: &str) -> Result<Vec<String>> {
        let tx = self.tx_id()?;
        if let Some(hit) = self.engine.current.referrers(target, tx) {
            return Ok(hit);
        }
        let found = referrer_keys(&self.refs, target)?;
        self.engine.current.keep_referrers(target, tx, &found);
        Ok(found)
    }
    fn last_tx(&self) -> Result<Option<TxReceipt>> {
        read_last_tx(&self.meta)
    }
    fn events(&self, from: EventPosition, limit: usize) -> Result<Vec<Event>> {
        read_events(&self.events, from, limit)
    }
    fn event_bounds(&self) -> Result<Option<(EventId, EventId)>> {
        event_bounds(&self.events)
    }
    fn events_trimmed_until(&self) -> Result<Option<EventId>> {
        read_event_id(&self.meta, TRIMMED_UNTIL)
    }
    fn live_keys_indexed(&self, types: &[&str], at: AsOf, read: &mut dyn FnMut(&[KeyView])) -> Result<bool> {
        let last = read_last_tx(&self.meta)?;
        if let (Some(t), Some(r)) = (at.tx_time, last) {
            if t < r.tx_time {
                return Ok(false);
            }
        }
        let read_at = ReadAt {
            snapshot_tx: last.map_or(0, |r| r.tx_id),
            valid: at.valid_time,
            max_valid: read_max_valid(&self.meta)?,
        };
        self.engine.keys.read(read_at, types, &SnapshotState(&self.versions), read)
    }
}

/// Writes not yet handed to redb: buffered so bulk writes open each table once per flush.
#[derive(Default)]
struct Pending {
    /// Hashes of the keys with buffered versions: a point read of any other key need not
    /// flush (a hash shared by chance only costs a flush).
    keys: foldhash::HashSet<u64>,
    versions: Vec<(Vec<u8>, Vec<u8>)>,
    refs: Vec<Vec<u8>>,
    events: Vec<(EventId, Vec<u8>)>,
    ops: u64,
    /// Everything handed to the tables so far, for the commit journal.
    journal: RecordBuf,
    /// The keys written so far, for the key index.
    touched: Touched,
    /// The targets of the references added so far, for the cache of current answers (the keys
    /// written it takes from `touched`).
    ref_targets: Vec<String>,
    /// The greatest valid time written so far.
    max_valid: Option<Timestamp>,
}

impl Pending {
    fn wrote_valid(&mut self, valid: Timestamp) {
        self.max_valid = self.max_valid.max(Some(valid));
    }
}

struct RedbTransaction {
    txn: Option<WriteTransaction>,
    tx_id: u64,
    tx_time: Timestamp,
    /// The newest event id, committed or appended by this transaction.
    last_event: Option<EventId>,
    /// Whether this transaction appended events (they may have been flushed to redb before the
    /// commit, so the pending buffer cannot tell).
    appended_events: bool,
    /// The store's greatest valid time when this transaction began.
    max_valid: Option<Timestamp>,
    signal: Arc<EventSignal>,
    pending: RefCell<Pending>,
    engine: Arc<Engine>,
}

impl RedbTransaction {
    fn txn(&self) -> &WriteTransaction {
        // Only `commit` takes the transaction out, and it consumes `self`.
        self.txn.as_ref().expect("write transaction present until commit")
    }

    /// Hands buffered writes to redb, so reads (which go to redb) see them.
    fn flush(&self) -> Result<()> {
        let mut pending = self.pending.borrow_mut();
        if pending.versions.is_empty() && pending.refs.is_empty() && pending.events.is_empty() {
            return Ok(());
        }
        let pending = &mut *pending;
        pending.keys.clear();
        // Key order makes neighbouring inserts share B-tree pages. The sort is stable, so a later
        // write to the same version key (same key, valid time and transaction) still wins.
        pending.versions.sort_by(|a, b| a.0.cmp(&b.0));
        pending.refs.sort_unstable();
        pending.refs.dedup();
        let caching = self.engine.current.is_on();
        let txn = self.txn();
        {
            let mut versions = txn.open_table(VERSIONS).map_err(StoreError::engine)?;
            for (k, v) in pending.versions.drain(..) {
                versions.insert(k.as_slice(), v.as_slice()).map_err(StoreError::engine)?;
                pending.journal.insert(JournalTable::Versions, &k, &v);
                let (valid, _) = split_times(&k)?;
                pending.touched.push(&k[..k.len() - 16], valid, Record::is_live(&v)?);
            }
        }
        if !pending.events.is_empty() {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::engine)?;
            for (id, payload) in pending.events.drain(..) {
                events.insert((id.ms, id.seq), (self.tx_id, payload.as_slice())).map_err(StoreError::engine)?;
                let tx = self.tx_id.to_le_bytes();
                pending.journal.insert_parts(JournalTable::Events, &event_key(id), &[&tx, &payload]);
            }
        }
        if !pending.refs.is_empty() {
            let mut refs = txn.open_table(REFS).map_err(StoreError::engine)?;
            // Re-inserting an existing entry would still copy its page on write, and most new
            // versions reference what their previous version referenced: insert only what is
            // missing, found with one cursor over the sorted keys.
            let present = present_keys(&refs, &pending.refs)?;
            for (k, present) in pending.refs.drain(..).zip(present) {
                if !present {
                    refs.insert(k.as_slice(), ()).map_err(StoreError::engine)?;
                    pending.journal.insert(JournalTable::Refs, &k, &[]);
                    if caching {
                        pending.ref_targets.push(decode_key(&k)?.0);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes what this transaction wrote out of the cache of current answers.
    fn forget_written(&self) -> Result<()> {
        let current = &self.engine.current;
        if !current.is_on() {
            return Ok(());
        }
        current.record(self.tx_id);
        let pending = self.pending.borrow();
        let mut key = Vec::new();
        for encoded in pending.touched.keys() {
            decode_key_into(encoded, &mut key)?;
            current.forget_version(std::str::from_utf8(&key).map_err(|_| StoreError::Corrupt("key not UTF-8".into()))?);
        }
        for target in &pending.ref_targets {
            current.forget_referrers(target);
        }
        Ok(())
    }

    fn push(&self, key: &str, valid: Timestamp, record: &Record) {
        let mut pending = self.pending.borrow_mut();
        pending.keys.insert(key_hash(key));
        pending.wrote_valid(valid);
        pending.versions.push((version_key(key, valid, self.tx_time), record.encode()));
        for r in &record.refs {
            pending.refs.push(ref_key(r, key));
        }
    }

    /// Writes `record` (a document, or a tombstone when its hash is `None`) over a span.
    fn write_span(&mut self, key: &str, record: Record, valid: ValidTime) -> Result<()> {
        let start = valid.start.unwrap_or(self.tx_time);
        let Some(end) = valid.end else {
            self.push(key, start, &record);
            self.pending.borrow_mut().ops += 1;
            return Ok(());
        };
        if end <= start {
            return Err(StoreError::Invalid(format!("valid-time end {end} is not after start {start}")));
        }
        // As XTDB does: overwrite every version point inside the span, then restore at `end`
        // whatever held there before this write.
        self.flush()?;
        let (restore, inner) = {
            let versions = self.txn().open_table(VERSIONS).map_err(StoreError::engine)?;
            let restore = get_record(&versions, key, end, Timestamp::MAX)?;
            let mut inner: Vec<Timestamp> = history(&versions, key)?
                .into_iter()
                .map(|v| v.valid_time)
                .filter(|vt| *vt > start && *vt < end)
                .collect();
            inner.dedup();
            (restore, inner)
        };
        self.push(key, start, &record);
        for vt in inner {
            self.push(key, vt, &record);
        }
        let restored = match restore {
            Some((_, _, r)) if !r.deleted => Record { tx_id: self.tx_id, ..r },
            _ => Record::tombstone(self.tx_id),
        };
        self.push(key, end, &restored);
        self.pending.borrow_mut().ops += 1;
        Ok(())
    }
}

impl Reader for RedbTransaction {
    fn get(&self, key: &str, at: AsOf) -> Result<Option<Version>> {
        // A point read depends only on the key's own versions: flush only when it has some
        // buffered (saving a flush per read in read-modify-write loops).
        if self.pending.borrow().keys.contains(&key_hash(key)) {
            self.flush()?;
        }
        get(&self.txn().open_table(VERSIONS).map_err(StoreError::engine)?, key, at)
    }
    fn get_many(&self, keys: &[&str], at: AsOf) -> Result<Vec<Option<Version>>> {
        if keys.iter().any(|k| self.pending.borrow().keys.contains(&key_hash(k))) {
            self.flush()?;
        }
        get_many(&self.txn().open_table(VERSIONS).map_err(StoreError::engine)?, keys, at)
    }
    fn referrer_keys_many(&self, targets: &[&str]) -> Result<Vec<Vec<String>>> {
        self.flush()?;
        referrer_keys_many(&self.txn().open_table(REFS).map_err(StoreError::engine)?, targets)
    }
    fn scan_type(&self, type_name: &str, at: AsOf, visit: &mut dyn FnMut(Version) -> bool) -> Result<()> {
        self.flush()?;
        scan_type(&self.txn().open_table(VERSIONS).map_err(StoreError::engine)?, type_name, at, visit)
    }
    fn referrers(&self, target: &str, source_type: Option<&str>, at: AsOf) -> Result<Vec<Version>> {
        self.flush()?;
        let txn = self.txn();
        let versions = txn.open_table(VERSIONS).map_err(StoreError::engine)?;
        let refs = txn.open_table(REFS).map_err(StoreError::engine)?;
        referrers(&versions, &refs, target, source_type, at)
    }
    fn history(&self, key: &str) -> Result<Vec<Version>> {
        self.flush()?;
        history(&self.txn().open_table(VERSIONS).map_err(StoreError::engine)?, key)
    }
    fn scan_versions(&self, visit: &mut dyn FnMut(Version) -> bool) -> Result<()> {
        self.flush()?;
        scan_versions(&self.txn().open_table(VERSIONS).map_err(StoreError::engine)?, visit)
    }
    fn referrer_keys(&self, target: &str) -> Result<Vec<String>> {
        self.flush()?;
        referrer_keys(&self.txn().open_table(REFS).map_err(StoreError::engine)?, target)
    }
    fn last_tx(&self) -> Result<Option<TxReceipt>> {
        read_last_tx(&self.txn().open_table(META).map_err(StoreError::engine)?)
    }
    fn events(&self, from: EventPosition, limit: usize) -> Result<Vec<Event>> {
        self.flush()?;
        read_events(&self.txn().open_table(EVENTS).map_err(StoreError::engine)?, from, limit)
    }
    fn event_bounds(&self) -> Result<Option<(EventId, EventId)>> {
        self.flush()?;
        event_bounds(&self.txn().open_table(EVENTS).map_err(StoreError::engine)?)
    }
    fn events_trimmed_until(&self) -> Result<Option<EventId>> {
        read_event_id(&self.txn().open_table(META).map_err(StoreError::engine)?, TRIMMED_UNTIL)
    }
}

impl Transaction for RedbTransaction {
    fn tx_time(&self) -> Timestamp {
        self.tx_time
    }

    fn put(&mut self, key: &str, doc: &[u8], refs: &[String], valid: ValidTime) -> Result<()> {
        if valid.end.is_none() {
            // The common case: one version, encoded straight from the borrowed parts.
            let start = valid.start.unwrap_or(self.tx_time);
            let mut pending = self.pending.borrow_mut();
            pending.keys.insert(key_hash(key));
            pending.wrote_valid(start);
            pending.versions.push((version_key(key, start, self.tx_time), encode_record(self.tx_id, false, refs, doc)));
            pending.refs.extend(refs.iter().map(|r| ref_key(r, key)));
            pending.ops += 1;
            return Ok(());
        }
        let record = Record { tx_id: self.tx_id, deleted: false, refs: refs.to_vec(), doc: doc.to_vec() };
        self.write_span(key, record, valid)
    }

    fn delete(&mut self, key: &str, valid: ValidTime) -> Result<()> {
        self.write_span(key, Record::tombstone(self.tx_id), valid)
    }

    fn append_event(&mut self, payload: &[u8]) -> Result<EventId> {
        let ms = self.tx_time.as_millis().max(0) as u64;
        let id = match self.last_event {
            Some(last) if last.ms >= ms => EventId { ms: last.ms, seq: last.seq + 1 },
            _ => EventId { ms, seq: 0 },
        };
        self.last_event = Some(id);
        self.appended_events = true;
        self.pending.borrow_mut().events.push((id, payload.to_vec()));
        Ok(id)
    }

    fn commit(mut self: Box<Self>) -> Result<TxReceipt> {
        let wrote_events = self.appended_events;
        self.flush()?;
        // Before the commit is visible (any time before will do: a snapshot of the transaction
        // before it keeps nothing from here on), so that no snapshot is given an answer it
        // changes.
        self.forget_written()?;
        let ops = self.pending.borrow().ops;
        let receipt = TxReceipt { tx_id: self.tx_id, tx_time: self.tx_time };
        let mut txn = self.txn.take().ok_or_else(|| StoreError::Invalid("transaction already committed".into()))?;
        let pending = self.pending.get_mut();
        let record = &mut pending.journal;
        {
            let mut txs = txn.open_table(TXS).map_err(StoreError::engine)?;
            let tx_value = (receipt.tx_time.as_micros(), ops);
            txs.insert(receipt.tx_id, tx_value).map_err(StoreError::engine)?;
            record.insert(JournalTable::Transactions, &receipt.tx_id.to_le_bytes(), &tx_record(tx_value));
            let mut meta = txn.open_table(META).map_err(StoreError::engine)?;
            let mut last = Vec::with_capacity(16);
            last.extend_from_slice(&receipt.tx_id.to_le_bytes());
            last.extend_from_slice(&receipt.tx_time.as_micros().to_le_bytes());
            meta.insert(LAST_TX, last.as_slice()).map_err(StoreError::engine)?;
            record.insert(JournalTable::Meta, LAST_TX.as_bytes(), &last);
            if let Some(e) = self.last_event {
                let bytes = event_key(e);
                meta.insert(LAST_EVENT, bytes.as_slice()).map_err(StoreError::engine)?;
                record.insert(JournalTable::Meta, LAST_EVENT.as_bytes(), &bytes);
            }
            if pending.max_valid > self.max_valid {
                if let Some(v) = pending.max_valid {
                    let bytes = v.as_micros().to_le_bytes();
                    meta.insert(MAX_VALID, bytes.as_slice()).map_err(StoreError::engine)?;
                    record.insert(JournalTable::Meta, MAX_VALID.as_bytes(), &bytes);
                }
            }
        }
        // The journal is synced before redb commits, so nothing is visible before it is
        // durable; a checkpoint commits durably in redb instead and empties the journal.
        let mut journal = self.engine.journal.lock().unwrap_or_else(|p| p.into_inner());
        let checkpoint = record.overflowed() || journal.wants_checkpoint();
        let appended = if checkpoint {
            None
        } else {
            txn.set_durability(redb::Durability::None).map_err(|e| StoreError::Invalid(e.to_string()))?;
            Some(journal.append(receipt.tx_id, record)?)
        };
        // Before the commit is visible, so no snapshot can see it before the index knows of it.
        let mut touched = std::mem::take(&mut pending.touched);
        touched.settled_from = self.max_valid;
        self.engine.keys.record(receipt.tx_id, touched);
        if let Err(e) = txn.commit() {
            if let Some(start) = appended {
                journal.retract(start);
            }
            return Err(StoreError::engine(e));
        }
        if checkpoint {
            journal.checkpointed();
        }
        drop(journal);
        if let (true, Some(id)) = (wrote_events, self.last_event) {
            self.signal.publish(id);
        }
        Ok(receipt)
    }
}

/// An event id as the journal and the meta table store it: ms then seq, little-endian.
fn event_key(id: EventId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.ms.to_le_bytes());
    key[8..].copy_from_slice(&id.seq.to_le_bytes());
    key
}

fn tx_record((micros, ops): (i64, u64)) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&micros.to_le_bytes());
    value[8..].copy_from_slice(&ops.to_le_bytes());
    value
}

fn split_u64s(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

/// Applies the journal's records of transactions after the last durable one, in one durable
/// commit: the store is then as it was when the last of them was acknowledged.
fn replay(db: &Database, durable_last: u64, records: &[crate::journal::Recovered]) -> Result<()> {
    let todo: Vec<_> = records.iter().filter(|r| r.tx_id > durable_last).collect();
    let Some(first) = todo.first() else { return Ok(()) };
    if first.tx_id != durable_last + 1 {
        return Err(StoreError::Corrupt(format!(
            "the commit journal resumes at transaction {} but the store ends at {durable_last}",
            first.tx_id
        )));
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("journal record: {what}"));
    let txn = db.begin_write().map_err(StoreError::engine)?;
    {
        let mut versions = txn.open_table(VERSIONS).map_err(StoreError::engine)?;
        let mut refs = txn.open_table(REFS).map_err(StoreError::engine)?;
        let mut events = txn.open_table(EVENTS).map_err(StoreError::engine)?;
        let mut txs = txn.open_table(TXS).map_err(StoreError::engine)?;
        let mut meta = txn.open_table(META).map_err(StoreError::engine)?;
        for record in todo {
            for (table, key, value) in record.writes()? {
                match table {
                    JournalTable::Versions => versions.insert(key, value).map(drop),
                    JournalTable::Refs => refs.insert(key, ()).map(drop),
                    JournalTable::Events => {
                        let (ms, rest) = split_u64s(key).ok_or_else(|| corrupt("event key"))?;
                        let (seq, _) = split_u64s(rest).ok_or_else(|| corrupt("event key"))?;
                        let (tx_id, payload) = split_u64s(value).ok_or_else(|| corrupt("event"))?;
                        events.insert((ms, seq), (tx_id, payload)).map(drop)
                    }
                    JournalTable::Transactions => {
                        let (id, _) = split_u64s(key).ok_or_else(|| corrupt("transaction key"))?;
                        let (micros, rest) = split_u64s(value).ok_or_else(|| corrupt("transaction"))?;
                        let (ops, _) = split_u64s(rest).ok_or_else(|| corrupt("transaction"))?;
                        txs.insert(id, (micros as i64, ops)).map(drop)
                    }
                    JournalTable::Meta => {
                        let name = std::str::from_utf8(key).map_err(|_| corrupt("meta key"))?;
                        meta.insert(name, value).map(drop)
                    }
                }
                .map_err(StoreError::engine)?;
            }
        }
    }
    txn.commit().map_err(StoreError::engine)
}

/// The store's id, drawn (from the clock and the process id) on first use.
fn store_id(meta: &mut redb::Table<&'static str, &'static [u8]>) -> Result<u64> {
    if let Some(v) = meta.get(STORE_ID).map_err(StoreError::engine)? {
        let bytes: [u8; 8] = v.value().try_into().map_err(|_| StoreError::Corrupt("store id".into()))?;
        return Ok(u64::from_le_bytes(bytes));
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let id = nanos ^ (u64::from(std::process::id()) << 32);
    meta.insert(STORE_ID, id.to_le_bytes().as_slice()).map_err(StoreError::engine)?;
    Ok(id)
}

/// Refuses a store in another record layout; marks a new one with this build's.
fn check_format(meta: &mut redb::Table<&'static str, &'static [u8]>, empty: bool) -> Result<()> {
    let found = match meta.get(FORMAT).map_err(StoreError::engine)? {
        Some(v) => {
            let bytes: [u8; 8] =
                v.value().try_into().map_err(|_| StoreError::Corrupt("record format marker".into()))?;
            Some(u64::from_le_bytes(bytes))
        }
        None => None,
    };
    match found {
        Some(RECORD_FORMAT) => Ok(()),
        Some(found) => Err(StoreError::Format { found, expected: RECORD_FORMAT }),
        // Stores from before the marker hold format 1.
        None if !empty => Err(StoreError::Format { found: 1, expected: RECORD_FORMAT }),
        None => {
            meta.insert(FORMAT, RECORD_FORMAT.to_le_bytes().as_slice()).map_err(StoreError::engine)?;
            Ok(())
        }
    }
}

fn read_last_tx(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<TxReceipt>> {
    let Some(v) = meta.get(LAST_TX).map_err(StoreError::engine)? else { return Ok(None) };
    let b = v.value();
    if b.len() != 16 {
        return Err(StoreError::Corrupt("last_tx record".into()));
    }
    let mut id = [0u8; 8];
    let mut t = [0u8; 8];
    id.copy_from_slice(&b[..8]);
    t.copy_from_slice(&b[8..]);
    Ok(Some(TxReceipt { tx_id: u64::from_le_bytes(id), tx_time: Timestamp::from_micros(i64::from_le_bytes(t)) }))
}

fn read_max_valid(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<Timestamp>> {
    let Some(v) = meta.get(MAX_VALID).map_err(StoreError::engine)? else { return Ok(None) };
    let bytes: [u8; 8] = v.value().try_into().map_err(|_| StoreError::Corrupt("max_valid record".into()))?;
    Ok(Some(Timestamp::from_micros(i64::from_le_bytes(bytes))))
}

/// Records the greatest valid time in a store written before it was kept (read from every
/// version key, once); a new store starts without one, which means nothing was written.
fn record_max_valid(db: &Database) -> Result<()> {
    let txn = db.begin_write().map_err(StoreError::engine)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::engine)?;
        if meta.get(MAX_VALID).map_err(StoreError::engine)?.is_some() {
            return Ok(());
        }
        let versions = txn.open_table(VERSIONS).map_err(StoreError::engine)?;
        let mut max = None;
        for item in versions.iter().map_err(StoreError::engine)? {
            let (k, _) = item.map_err(StoreError::engine)?;
            max = max.max(Some(split_times(k.value())?.0));
        }
        let Some(max) = max else { return Ok(()) };
        meta.insert(MAX_VALID, max.as_micros().to_le_bytes().as_slice()).map_err(StoreError::engine)?;
    }
    txn.commit().map_err(StoreError::engine)
}

fn read_last_event(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<EventId>> {
    read_event_id(meta, LAST_EVENT)
}

fn read_event_id(meta: &impl ReadableTable<&'static str, &'static [u8]>, name: &str) -> Result<Option<EventId>> {
    let Some(v) = meta.get(name).map_err(StoreError::engine)? else { return Ok(None) };
    let b = v.value();
    let (ms, seq) = b.split_at_checked(8).ok_or_else(|| StoreError::Corrupt("last_event record".into()))?;
    let ms: [u8; 8] = ms.try_into().map_err(|_| StoreError::Corrupt("last_event record".into()))?;
    let seq: [u8; 8] = seq.try_into().map_err(|_| StoreError::Corrupt("last_event record".into()))?;
    Ok(Some(EventId { ms: u64::from_le_bytes(ms), seq: u64::from_le_bytes(seq) }))
}

fn read_events<T: ReadableTable<(u64, u64), (u64, &'static [u8])>>(
    events: &T,
    from: EventPosition,
    limit: usize,
) -> Result<Vec<Event>> {
    let lo = match from {
        EventPosition::Start => (0, 0),
        EventPosition::After(id) if id.seq == u64::MAX => (id.ms.saturating_add(1), 0),
        EventPosition::After(id) => (id.ms, id.seq + 1),
        EventPosition::AtOrAfterMillis(ms) => (ms, 0),
    };
    let mut out = Vec::with_capacity(limit.min(4096));
    for item in events.range(lo..).map_err(StoreError::engine)?.take(limit) {
        let (k, v) = item.map_err(StoreError::engine)?;
        let (ms, seq) = k.value();
        let (tx_id, payload) = v.value();
        out.push(Event { id: EventId { ms, seq }, tx_id, payload: payload.to_vec() });
    }
    Ok(out)
}

fn event_bounds<T: ReadableTable<(u64, u64), (u64, &'static [u8])>>(events: &T) -> Result<Option<(EventId, EventId)>> {
    let first = events.first().map_err(StoreError::engine)?.map(|(k, _)| k.value());
    let last = events.last().map_err(StoreError::engine)?.map(|(k, _)| k.value());
    Ok(first.zip(last).map(|((a, b), (c, d))| (EventId { ms: a, seq: b }, EventId { ms: c, seq: d })))
}

fn to_version(key: String, valid_time: Timestamp, tx_time: Timestamp, r: Record) -> Version {
    Version { key, valid_time, tx_time, tx_id: r.tx_id, deleted: r.deleted, doc: r.doc, refs: r.refs }
}

/// The newest version with valid time ≤ `valid` among transactions ≤ `tx`, tombstones included.
fn get_record<T: ReadableTable<&'static [u8], &'static [u8]>>(
    versions: &T,
    key: &str,
    valid: Timestamp,
    tx: Timestamp,
) -> Result<Option<(Timestamp, Timestamp, Record)>> {
    let lo = version_key(key, Timestamp::MIN, Timestamp::MIN);
    let hi = version_key(key, valid, Timestamp::MAX);
    // Descending (valid, tx): the first entry whose transaction counts is the answer.
    for item in versions.range(lo.as_slice()..=hi.as_slice()).map_err(StoreError::engine)?.rev() {
        let (k, v) = item.map_err(StoreError::engine)?;
        let (vt, tt) = split_times(k.value())?;
        if tt <= tx {
            return Ok(Some((vt, tt, Record::decode(v.value())?)));
        }
    }
    Ok(None)
}

fn get<T: ReadableTable<&'static [u8], &'static [u8]>>(versions: &T, key: &str, at: AsOf) -> Result<Option<Version>> {
    Ok(match get_record(versions, key, at.valid_time, at.tx_time.unwrap_or(Timestamp::MAX))? {
        Some((vt, tt, r)) if !r.deleted => Some(to_version(key.to_owned(), vt, tt, r)),
        _ => None,
    })
}

/// Walks every key of one type in key order and hands the version that counts as of `at` to
/// `emit` (key bytes, valid time, transaction time, what `capture` took from its record bytes).
/// `emit` returns `false` to stop. Versions of a key come in ascending (valid, tx) order, so the
/// last one that counts is the answer; `capture` decides how much of it is kept meanwhile.
fn walk_type<T: ReadableTable<&'static [u8], &'static [u8]>, C>(
    versions: &T,
    type_name: &str,
    at: AsOf,
    capture: impl Fn(&[u8]) -> Result<C>,
    mut emit: impl FnMut(&[u8], Timestamp, Timestamp, C) -> Result<bool>,
) -> Result<()> {
    let lo = format!("{type_name}|").into_bytes();
    let hi = prefix_end(&lo).unwrap_or_else(|| vec![0xFF; lo.len() + 1]);
    let tx = at.tx_time.unwrap_or(Timestamp::MAX);
    let mut current: Vec<u8> = Vec::new();
    let mut best: Option<(Timestamp, Timestamp, C)> = None;
    for item in versions.range(lo.as_slice()..hi.as_slice()).map_err(StoreError::engine)? {
        let (k, v) = item.map_err(StoreError::engine)?;
        let kb = k.value();
        if kb.len() < 16 {
            return Err(StoreError::Corrupt("short version key".into()));
        }
        let (entity, _) = kb.split_at(kb.len() - 16);
        if entity != current.as_slice() {
            if let Some((vt, tt, c)) = best.take() {
                if !emit(&current, vt, tt, c)? {
                    return Ok(());
                }
            }
            current.clear();
            current.extend_from_slice(entity);
        }
        let (vt, tt) = split_times(kb)?;
        if vt <= at.valid_time && tt <= tx {
            best = Some((vt, tt, capture(v.value())?));
        }
    }
    if let Some((vt, tt, c)) = best {
        emit(&current, vt, tt, c)?;
    }
    Ok(())
}

fn scan_type<T: ReadableTable<&'static [u8], &'static [u8]>>(
    versions: &T,
    type_name: &str,
    at: AsOf,
    visit: &mut dyn FnMut(Version) -> bool,
) -> Result<()> {
    walk_type(
        versions,
        type_name,
        at,
        |bytes| Ok(bytes.to_vec()),
        |entity, vt, tt, bytes| {
            let record = Record::decode(&bytes)?;
            if record.deleted {
                return Ok(true);
            }
            Ok(visit(to_version(decode_key(entity)?.0, vt, tt, record)))
        },
    )
}

/// The range of table keys that start with `enc(key)`: a key's versions, or a target's referrers.
fn key_range(key: &str) -> (Vec<u8>, Vec<u8>) {
    let mut lo = Vec::with_capacity(key.len() + 2);
    encode_key(&mut lo, key);
    // An encoded key ends in 0x01, so it always has a successor prefix.
    let hi = prefix_end(&lo).unwrap_or_else(|| vec![0xFF; lo.len() + 1]);
    (lo, hi)
}

/// An encoded key range `[lo, hi)`.
type KeyRange = (Vec<u8>, Vec<u8>);

/// How many entries outside the wanted ranges one pass of [`walk_ranges`] steps over before it
/// seeks instead: a step costs a fraction of a descent from the root, a long gap more than one.
const MAX_GAP: usize = 16;

/// Versions of one key a batched read walks through before it reads that key by a seek from
/// the time asked instead (each walked version is copied; a seek costs about one descent).
const VERSIONS_WALKED: usize = 8;

/// Visits the entries of several key ranges `[lo, hi)`, sorted and disjoint, with the index of
/// the range each lies in. One cursor runs on from range to range while they lie close together
/// and seeks afresh only past a gap of more than [`MAX_GAP`] entries, so reading the versions of
/// fifty neighbouring keys costs about one descent, not fifty. A range with more than
/// `per_range` entries is given up after that many (the cursor seeks to the next range) and its
/// index returned: a key with a long history is cheaper to read by a seek from its end.
fn walk_ranges<V: redb::Value + 'static, T: ReadableTable<&'static [u8], V>>(
    table: &T,
    ranges: &[KeyRange],
    per_range: usize,
    mut visit: impl FnMut(usize, &[u8], redb::AccessGuard<'_, V>) -> Result<()>,
) -> Result<Vec<usize>> {
    let mut given_up = Vec::new();
    let Some((_, end)) = ranges.last() else { return Ok(given_up) };
    let mut i = 0;
    while i < ranges.len() {
        let mut gap = 0;
        // Entries visited in range `current`.
        let (mut current, mut taken) = (usize::MAX, 0);
        let mut entries = table.range(ranges[i].0.as_slice()..end.as_slice()).map_err(StoreError::engine)?;
        loop {
            let Some(item) = entries.next() else { return Ok(given_up) };
            let (k, v) = item.map_err(StoreError::engine)?;
            let kb = k.value();
            while i < ranges.len() && kb >= ranges[i].1.as_slice() {
                i += 1;
            }
            // The walk ends before `end`, the last range's bound, so some range is left.
            let Some((lo, _)) = ranges.get(i) else { return Ok(given_up) };
            if kb >= lo.as_slice() {
                gap = 0;
                if current != i {
                    (current, taken) = (i, 0);
                }
                taken += 1;
                if taken > per_range {
                    given_up.push(i);
                    i += 1;
                    break;
                }
                visit(i, kb, v)?;
            } else {
                gap += 1;
                if gap > MAX_GAP {
                    break;
                }
            }
        }
    }
    Ok(given_up)
}

/// Which of `keys` (sorted and distinct) the table holds, found as [`walk_ranges`] walks: one
/// cursor running on while the keys lie close together, a fresh seek past a longer gap. Keys
/// beyond the table's last entry cost nothing after the first.
fn present_keys<V: redb::Value + 'static, T: ReadableTable<&'static [u8], V>>(
    table: &T,
    keys: &[Vec<u8>],
) -> Result<Vec<bool>> {
    let mut present = vec![false; keys.len()];
    let mut i = 0;
    while i < keys.len() {
        let mut gap = 0;
        let mut entries = table.range(keys[i].as_slice()..).map_err(StoreError::engine)?;
        loop {
            let Some(item) = entries.next() else { return Ok(present) };
            let (k, _) = item.map_err(StoreError::engine)?;
            let kb = k.value();
            while keys.get(i).is_some_and(|w| w.as_slice() < kb) {
                i += 1;
            }
            let Some(wanted) = keys.get(i) else { return Ok(present) };
            if wanted.as_slice() == kb {
                present[i] = true;
                i += 1;
                gap = 0;
            } else {
                gap += 1;
                if gap > MAX_GAP {
                    break;
                }
            }
        }
    }
    Ok(present)
}

/// The hash [`Pending::keys`] holds for a key.
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(key)
}

/// Sorts and deduplicates `keys` into the encoded ranges of [`key_range`]; returns the ranges
/// and, for each key asked, the index of its range.
fn sorted_ranges(keys: &[&str]) -> (Vec<KeyRange>, Vec<usize>) {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].as_bytes().cmp(keys[b].as_bytes()));
    let mut ranges: Vec<KeyRange> = Vec::with_capacity(keys.len());
    let mut slot = vec![0; keys.len()];
    let mut last: Option<&str> = None;
    for i in order {
        if last != Some(keys[i]) {
            ranges.push(key_range(keys[i]));
            last = Some(keys[i]);
        }
        slot[i] = ranges.len() - 1;
    }
    (ranges, slot)
}

fn get_many<T: ReadableTable<&'static [u8], &'static [u8]>>(
    versions: &T,
    keys: &[&str],
    at: AsOf,
) -> Result<Vec<Option<Version>>> {
    let (ranges, slot) = sorted_ranges(keys);
    let tx = at.tx_time.unwrap_or(Timestamp::MAX);
    // Per range, the newest version that counts: versions come in ascending (valid, tx) order.
    let mut best: Vec<Option<(Timestamp, Timestamp, Vec<u8>)>> = vec![None; ranges.len()];
    let long_histories = walk_ranges(versions, &ranges, VERSIONS_WALKED, |i, k, v| {
        let (vt, tt) = split_times(k)?;
        if vt <= at.valid_time && tt <= tx {
            best[i] = Some((vt, tt, v.value().to_vec()));
        }
        Ok(())
    })?;
    let mut decoded: Vec<Option<(Timestamp, Timestamp, Record)>> = Vec::with_capacity(best.len());
    for b in best {
        decoded.push(match b {
            Some((vt, tt, bytes)) if Record::is_live(&bytes)? => Some((vt, tt, Record::decode(&bytes)?)),
            _ => None,
        });
    }
    if !long_histories.is_empty() {
        // Keys with more versions than the walk reads: one seek back from the time asked each.
        let mut key_of = vec![""; ranges.len()];
        for (key, &s) in keys.iter().zip(&slot) {
            key_of[s] = key;
        }
        for i in long_histories {
            decoded[i] = get_record(versions, key_of[i], at.valid_time, tx)?.filter(|(_, _, r)| !r.deleted);
        }
    }
    // A key asked twice shares its range: every use but the last gets a copy.
    let mut uses = vec![0usize; decoded.len()];
    for &s in &slot {
        uses[s] += 1;
    }
    Ok(keys
        .iter()
        .zip(slot)
        .map(|(key, s)| {
            uses[s] -= 1;
            let found = if uses[s] == 0 { decoded[s].take() } else { decoded[s].clone() };
            found.map(|(vt, tt, r)| to_version((*key).to_owned(), vt, tt, r))
        })
        .collect())
}

fn referrer_keys_many<R: ReadableTable<&'static [u8], ()>>(refs: &R, targets: &[&str]) -> Result<Vec<Vec<String>>> {
    let (ranges, slot) = sorted_ranges(targets);
    let mut found: Vec<Vec<String>> = vec![Vec::new(); ranges.len()];
    walk_ranges(refs, &ranges, usize::MAX, |i, k, _| {
        found[i].push(decode_key(&k[ranges[i].0.len()..])?.0);
        Ok(())
    })?;
    let mut uses = vec![0usize; found.len()];
    for &s in &slot {
        uses[s] += 1;
    }
    Ok(slot
        .into_iter()
        .map(|s| {
            uses[s] -= 1;
            if uses[s] == 0 {
                std::mem::take(&mut found[s])
            } else {
                found[s].clone()
            }
        })
        .collect())
}

fn referrer_keys<R: ReadableTable<&'static [u8], ()>>(refs: &R, target: &str) -> Result<Vec<String>> {
    let (lo, hi) = key_range(target);
    let mut out = Vec::new();
    for item in refs.range(lo.as_slice()..hi.as_slice()).map_err(StoreError::engine)? {
        let (k, _) = item.map_err(StoreError::engine)?;
        out.push(decode_key(&k.value()[lo.len()..])?.0);
    }
    Ok(out)
}

/// Like `scan_type`, but only the chosen version's tombstone flag is read, never a document.
fn scan_type_keys<T: ReadableTable<&'static [u8], &'static [u8]>>(
    versions: &T,
    type_name: &str,
    at: AsOf,
    visit: &mut dyn FnMut(&str) -> bool,
) -> Result<()> {
    let mut key = Vec::new();
    walk_type(versions, type_name, at, Record::is_live, |entity, _, _, live| {
        if !live {
            return Ok(true);
        }
        decode_key_into(entity, &mut key)?;
        let key = std::str::from_utf8(&key).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?;
        Ok(visit(key))
    })
}

fn referrers<T: ReadableTable<&'static [u8], &'static [u8]>, R: ReadableTable<&'static [u8], ()>>(
    versions: &T,
    refs: &R,
    target: &str,
    source_type: Option<&str>,
    at: AsOf,
) -> Result<Vec<Version>> {
    let (target_prefix, _) = key_range(target);
    let mut lo = target_prefix.clone();
    if let Some(t) = source_type {
        lo.extend_from_slice(t.as_bytes());
        lo.push(b'|');
    }
    let hi = prefix_end(&lo).unwrap_or_else(|| vec![0xFF; lo.len() + 1]);
    let mut out = Vec::new();
    for item in refs.range(lo.as_slice()..hi.as_slice()).map_err(StoreError::engine)? {
        let (k, _) = item.map_err(StoreError::engine)?;
        let (source, _) = decode_key(&k.value()[target_prefix.len()..])?;
        // The index lists every key that ever referenced the target; keep those that do as of `at`.
        if let Some(v) = get(versions, &source, at)? {
            if v.refs.iter().any(|r| r == target) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn scan_versions<T: ReadableTable<&'static [u8], &'static [u8]>>(
    versions: &T,
    visit: &mut dyn FnMut(Version) -> bool,
) -> Result<()> {
    for item in versions.iter().map_err(StoreError::engine)? {
        let (k, v) = item.map_err(StoreError::engine)?;
        let (key, rest) = decode_key(k.value())?;
        let (vt, tt) = split_times(rest)?;
        if !visit(to_version(key, vt, tt, Record::decode(v.value())?)) {
            break;
        }
    }
    Ok(())
}

fn history<T: ReadableTable<&'static [u8], &'static [u8]>>(versions: &T, key: &str) -> Result<Vec<Version>> {
    let (lo, hi) = key_range(key);
    let mut out = Vec::new();
    for item in versions.range(lo.as_slice()..hi.as_slice()).map_err(StoreError::engine)? {
        let (k, v) = item.map_err(StoreError::engine)?;
        let (vt, tt) = split_times(k.value())?;
        out.push(to_version(key.to_owned(), vt, tt, Record::decode(v.value())?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in another record layout is refused with the formats named, and left as it was;
    /// a store from before the marker counts as format 1, an empty one is marked.
    #[test]
    fn a_store_in_another_record_format_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
        let mut tx = store.begin().unwrap();
        tx.put("Network|internet", b"{}", &[], ValidTime::now()).unwrap();
        tx.commit().unwrap();
        drop(store);
        let set_marker = |marker: Option<u64>| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                match marker {
                    Some(m) => meta.insert(FORMAT, m.to_le_bytes().as_slice()).map(drop).unwrap(),
                    None => meta.remove(FORMAT).map(drop).unwrap(),
                }
            }
            txn.commit().unwrap();
        };
        for (marker, found) in [(Some(7), 7), (None, 1)] {
            set_marker(marker);
            let err = RedbStore::open(&path, &StoreOptions::default()).err().expect("refused");
            assert!(matches!(err, StoreError::Format { found: f, expected: RECORD_FORMAT } if f == found), "{err}");
            assert!(err.to_string().contains(&format!("format is {found}")), "{err}");
        }
        set_marker(Some(RECORD_FORMAT));
        let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
        assert!(store.snapshot().unwrap().get("Network|internet", AsOf::now()).unwrap().is_some());
    }

    /// The cursor walk finds exactly the stored keys, whatever the gaps between those asked.
    #[test]
    fn present_keys_finds_exactly_the_stored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let stored: Vec<Vec<u8>> =
            (0..2_000u32).filter(|i| i % 3 != 0).map(|i| format!("k{i:05}").into_bytes()).collect();
        let txn = db.begin_write().unwrap();
        {
            let mut refs = txn.open_table(REFS).unwrap();
            for k in &stored {
                refs.insert(k.as_slice(), ()).unwrap();
            }
            // Dense runs, long gaps, keys before the first and after the last entry.
            let mut asked: Vec<Vec<u8>> = (0..100u32)
                .chain(500..520)
                .chain((600..2_000).step_by(97))
                .chain(2_000..2_010)
                .map(|i| format!("k{i:05}").into_bytes())
                .collect();
            asked.insert(0, b"a".to_vec());
            let present = present_keys(&refs, &asked).unwrap();
            for (k, p) in asked.iter().zip(present) {
                assert_eq!(p, stored.contains(k), "{}", String::from_utf8_lossy(k));
            }
            assert!(present_keys(&refs, &[]).unwrap().is_empty());
        }
        txn.abort().unwrap();
    }
}
