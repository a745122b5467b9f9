//! The current-state cache: the newest answer for recently read keys, in memory beside redb's
//! page cache.
//!
//! A read of the current state (the newest transaction, at a valid time at or after every valid
//! time written) has one answer per key whatever valid time it asks for, so it can be kept. Tree
//! walks, object reads and profile reads ask for the same hubs and neighbours again and again;
//! through redb each is a B-tree descent of four or five pages, each page a hash lookup, a
//! reference count and a binary search over keys, all memory-latency bound. Here it is one hash
//! lookup.
//!
//! Correctness rests on three rules:
//! - Before it becomes visible, a commit advances `recorded` to its transaction, then removes
//!   every key it wrote and every key whose referrer list it changed.
//! - An answer read by a snapshot of transaction `S` is kept only while `recorded` is `S`
//!   (checked before and after the insert, so a commit that removes the key in between cannot be
//!   overtaken).
//! - An answer read at transaction `R` is given only to snapshots of a transaction at or after
//!   `R`: it is the answer from `R` until the next commit that writes the key, which removes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::version::Version;

/// An answer and the transaction it was read at.
struct Cached<T> {
    read_at: u64,
    value: T,
    weight: u64,
}

/// Weighs entries by the bytes they hold (their weight is computed once, at insert).
#[derive(Clone)]
struct ByBytes;

impl<T> Weighter<Box<str>, Arc<Cached<T>>> for ByBytes {
    fn weight(&self, _key: &Box<str>, value: &Arc<Cached<T>>) -> u64 {
        value.weight
    }
}

/// Bytes an entry costs beyond what it holds (the map's slot, the `Arc`, the key's box).
const ENTRY_OVERHEAD: u64 = 96;

/// Answers of one kind by key.
type Answers<T> = Cache<Box<str>, Arc<Cached<T>>, ByBytes>;

/// A cache of `bytes` whose entries are about `per_item` bytes each; none for 0 bytes.
fn sized<T>(bytes: u64, per_item: u64) -> Option<Answers<T>> {
    let items = usize::try_from(bytes / per_item).unwrap_or(usize::MAX).max(16);
    (bytes > 0).then(|| Cache::with_weighter(items, bytes, ByBytes))
}

/// Current answers of point reads and referrer reads; see the module documentation.
pub(crate) struct CurrentCache {
    /// The newest transaction whose writes have been taken out of the cache.
    recorded: AtomicU64,
    versions: Option<Answers<Option<Version>>>,
    referrers: Option<Answers<Vec<String>>>,
}

impl CurrentCache {
    /// A cache of at most `bytes` (0: none), for a store whose last transaction is `last_tx`.
    /// Three quarters go to documents, the rest to referrer lists.
    pub(crate) fn new(bytes: usize, last_tx: u64) -> Self {
        let bytes = bytes as u64;
        let versions_share = bytes / 4 * 3;
        CurrentCache {
            recorded: AtomicU64::new(last_tx),
            versions: sized(versions_share, 600),
            referrers: sized(bytes - versions_share, 200),
        }
    }

    /// Whether it keeps anything (commits need not say what they wrote otherwise).
    pub(crate) fn is_on(&self) -> bool {
        self.versions.is_some() || self.referrers.is_some()
    }

    /// The current answer for `key`, if kept, for a snapshot of transaction `snapshot_tx`.
    pub(crate) fn version(&self, key: &str, snapshot_tx: u64) -> Option<Option<Version>> {
        let hit = self.versions.as_ref()?.get(key)?;
        (hit.read_at <= snapshot_tx).then(|| hit.value.clone())
    }

    /// Keeps `value`, read by a snapshot of transaction `snapshot_tx`, while that is the newest.
    pub(crate) fn keep_version(&self, key: &str, snapshot_tx: u64, value: &Option<Version>) {
        let Some(cache) = &self.versions else { return };
        let weight = value
            .as_ref()
            .map_or(0, |v| (v.doc.len() + v.refs.iter().map(|r| r.len() + 24).sum::<usize>() + v.key.len()) as u64)
            + key.len() as u64
            + ENTRY_OVERHEAD;
        self.keep(cache, key, snapshot_tx, || Cached { read_at: snapshot_tx, value: value.clone(), weight });
    }

    /// The keys that ever referenced `target`, if kept, for a snapshot of `snapshot_tx`.
    pub(crate) fn referrers(&self, target: &str, snapshot_tx: u64) -> Option<Vec<String>> {
        let hit = self.referrers.as_ref()?.get(target)?;
        (hit.read_at <= snapshot_tx).then(|| hit.value.clone())
    }

    /// Keeps the referrer keys of `target`, read by a snapshot of `snapshot_tx`.
    pub(crate) fn keep_referrers(&self, target: &str, snapshot_tx: u64, keys: &[String]) {
        let Some(cache) = &self.referrers else { return };
        let weight = keys.iter().map(|k| k.len() as u64 + 24).sum::<u64>() + target.len() as u64 + ENTRY_OVERHEAD;
        self.keep(cache, target, snapshot_tx, || Cached { read_at: snapshot_tx, value: keys.to_vec(), weight });
    }

    fn keep<T>(&self, cache: &Answers<T>, key: &str, snapshot_tx: u64, entry: impl FnOnce() -> Cached<T>) {
        // An older snapshot's answer may already be out of date.
        if self.recorded.load(Ordering::SeqCst) != snapshot_tx {
            return;
        }
        cache.insert(key.into(), Arc::new(entry()));
        // A commit that recorded itself after the check above may have removed the key before
        // this insert: take the answer out again (at worst a miss for a fresher one).
        if self.recorded.load(Ordering::SeqCst) != snapshot_tx {
            cache.remove(key);
        }
    }

    /// Records that transaction `tx_id` is about to become visible; then each key it wrote is
    /// taken out with [`CurrentCache::forget_version`] and each target whose referrers it added
    /// to with [`CurrentCache::forget_referrers`], all before it is visible.
    pub(crate) fn record(&self, tx_id: u64) {
        self.recorded.store(tx_id, Ordering::SeqCst);
    }

    /// Takes out the answer for `key` (a transaction being recorded wrote it).
    pub(crate) fn forget_version(&self, key: &str) {
        if let Some(cache) = &self.versions {
            cache.remove(key);
        }
    }

    /// Takes out the referrer list of `target` (a transaction being recorded added to it).
    pub(crate) fn forget_referrers(&self, target: &str) {
        if let Some(cache) = &self.referrers {
            cache.remove(target);
        }
    }

    /// Bytes held, for the memory gauges.
    pub(crate) fn bytes(&self) -> u64 {
        self.versions.as_ref().map_or(0, |c| c.weight()) + self.referrers.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn version(key: &str, doc: &str) -> Option<Version> {
        Some(Version {
            key: key.into(),
            valid_time: Timestamp::from_micros(1),
            tx_time: Timestamp::from_micros(1),
            tx_id: 1,
            deleted: false,
            doc: doc.as_bytes().to_vec(),
            refs: vec![],
        })
    }

    #[test]
    fn an_answer_is_given_to_snapshots_at_or_after_its_read() {
        let c = CurrentCache::new(1 << 20, 5);
        c.keep_version("a", 5, &version("a", "x"));
        assert_eq!(c.version("a", 4), None);
        assert_eq!(c.version("a", 5), Some(version("a", "x")));
        // A commit that does not write `a` leaves it.
        c.record(6);
        c.forget_version("b");
        assert_eq!(c.version("a", 6), Some(version("a", "x")));
        // One that writes it takes it out.
        c.record(7);
        c.forget_version("a");
        assert_eq!(c.version("a", 7), None);
    }

    #[test]
    fn an_old_snapshot_keeps_nothing() {
        let c = CurrentCache::new(1 << 20, 5);
        c.record(6);
        c.forget_version("a");
        // Read by a snapshot of 5 after 6 was recorded: possibly out of date.
        c.keep_version("a", 5, &version("a", "old"));
        assert_eq!(c.version("a", 6), None);
        c.keep_referrers("t", 5, &["a".into()]);
        assert_eq!(c.referrers("t", 6), None);
        c.keep_referrers("t", 6, &["a".into()]);
        assert_eq!(c.referrers("t", 6), Some(vec!["a".to_string()]));
        c.record(7);
        c.forget_referrers("t");
        assert_eq!(c.referrers("t", 7), None);
    }

    #[test]
    fn absence_is_kept_and_taken_out_like_a_version() {
        let c = CurrentCache::new(1 << 20, 1);
        c.keep_version("gone", 1, &None);
        assert_eq!(c.version("gone", 1), Some(None));
        c.record(2);
        c.forget_version("gone");
        assert_eq!(c.version("gone", 2), None);
    }

    #[test]
    fn a_zero_budget_keeps_nothing_and_the_budget_bounds_the_bytes() {
        let off = CurrentCache::new(0, 1);
        off.keep_version("a", 1, &version("a", "x"));
        assert_eq!(off.version("a", 1), None);
        assert_eq!(off.bytes(), 0);
        let small = CurrentCache::new(64 << 10, 1);
        for i in 0..10_000 {
            let k = format!("k{i}");
            small.keep_version(&k, 1, &version(&k, &"d".repeat(100)));
        }
        assert!(small.bytes() <= 64 << 10, "{}", small.bytes());
        assert!(small.bytes() > 0);
    }
}
