//! The live keys of each type in the store's final state, sorted, in memory: so that a page of
//! "every IPPort" with its total count is a slice and a length instead of a scan of a million
//! versions.
//!
//! The final state is, for every key, its last version (greatest valid time, then greatest
//! transaction time). A read as of the newest transaction at a valid time at or after every
//! valid time ever written sees exactly that state, which is what "now" means for almost every
//! query. A read a moment earlier than the newest versions gets the lists corrected for the
//! keys those versions belong to ([`KeyView`]); any other read scans the versions as before.
//!
//! The lists are built on first use from a snapshot and kept current lazily. Every commit hands
//! the keys it wrote to [`KeyIndex::record`] before it becomes visible; a reader on a newer
//! snapshot applies them to the lists, taking each key's final state from the commit when the
//! write settles it and reading it back otherwise. Writers never wait for the lists, and
//! readers only for each other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use foldhash::HashMap;

use crate::codec::decode_key_into;
use crate::error::{Result, StoreError};
use crate::time::Timestamp;

/// The keys a commit wrote (encoded, as in the versions table), stored flat, each with its
/// version's valid time and whether the version is live.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    versions: Vec<(Timestamp, bool)>,
    /// The store's greatest valid time before this transaction. A version at or after it is
    /// its key's last (this transaction's time is the greatest yet), so the key's final state
    /// is known without reading it back.
    pub settled_from: Option<Timestamp>,
}

impl Touched {
    /// Adds one version: its encoded key, valid time and liveness.
    pub fn push(&mut self, encoded_key: &[u8], valid: Timestamp, live: bool) {
        self.bytes.extend_from_slice(encoded_key);
        // A transaction's keys never reach 4 GiB: its journal record is capped far below.
        self.ends.push(self.bytes.len().min(u32::MAX as usize) as u32);
        self.versions.push((valid, live));
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The encoded keys written, in the order written (a key written twice comes twice).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.iter().map(|(k, _)| k)
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], (Timestamp, bool))> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.bytes[s as usize..e as usize])
            .zip(self.versions.iter().copied())
    }
}

/// Keys per chunk of a [`LiveKeys`] (a chunk splits at twice this).
const CHUNK: usize = 512;

/// The live keys of one type, sorted, in chunks: a change moves the entries of one chunk, not
/// of the whole list, and a position is found by walking chunk lengths.
#[derive(Debug, Default)]
pub(crate) struct LiveKeys {
    chunks: Vec<Vec<Box<str>>>,
    len: usize,
}

impl LiveKeys {
    fn from_sorted(keys: Vec<Box<str>>) -> Self {
        let len = keys.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut keys = keys.into_iter();
        loop {
            let chunk: Vec<Box<str>> = keys.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        LiveKeys { chunks, len }
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The key at position `i` in key order.
    pub fn get(&self, mut i: usize) -> Option<&str> {
        for chunk in &self.chunks {
            match chunk.get(i) {
                Some(key) => return Some(key),
                None => i -= chunk.len(),
            }
        }
        None
    }

    /// Every key, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.chunks.iter().flatten().map(|k| &**k)
    }

    /// The keys from position `i` on, in order.
    pub fn iter_from(&self, mut i: usize) -> impl Iterator<Item = &str> {
        let mut first = self.chunks.len();
        for (c, chunk) in self.chunks.iter().enumerate() {
            if i < chunk.len() {
                first = c;
                break;
            }
            i -= chunk.len();
        }
        let head = self.chunks.get(first).map_or(&[][..], |chunk| &chunk[i..]);
        head.iter().chain(self.chunks.iter().skip(first + 1).flatten()).map(|k| &**k)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        let c = self.chunks.partition_point(|chunk| chunk.last().is_some_and(|last| &**last < key));
        self.chunks.get(c).is_some_and(|chunk| chunk.binary_search_by(|k| (**k).cmp(key)).is_ok())
    }

    /// Makes `key` present (`live`) or absent; returns the change in memory held.
    fn set(&mut self, key: &str, live: bool) -> isize {
        // The chunk whose range holds the key: the first whose last key is not below it.
        let c = self.chunks.partition_point(|chunk| chunk.last().is_some_and(|last| &**last < key));
        let c = c.min(self.chunks.len().saturating_sub(1));
        let Some(chunk) = self.chunks.get_mut(c) else {
            if live {
                self.chunks.push(vec![key.into()]);
                self.len += 1;
                return entry_bytes(key) as isize;
            }
            return 0;
        };
        match (chunk.binary_search_by(|k| (**k).cmp(key)), live) {
            (Ok(i), false) => {
                chunk.remove(i);
                if chunk.is_empty() {
                    self.chunks.remove(c);
                }
                self.len -= 1;
                -(entry_bytes(key) as isize)
            }
            (Err(i), true) => {
                chunk.insert(i, key.into());
                if chunk.len() >= 2 * CHUNK {
                    let tail = chunk.split_off(CHUNK);
                    self.chunks.insert(c + 1, tail);
                }
                self.len += 1;
                entry_bytes(key) as isize
            }
            _ => 0,
        }
    }
}

/// Logged keys beyond which the lists are dropped rather than caught up: a store written
/// heavily and listed rarely should not hold every key it wrote since the last list.
const LOG_LIMIT: usize = 1 << 20;

/// The live keys of one type at the valid time read: a [`LiveKeys`] list of the final state,
/// corrected by the few keys whose versions after that valid time make them differ (written
/// by the last commits, whose valid time is their own time: a read "now" whose clock is a
/// moment behind the newest commit).
#[derive(Debug)]
pub struct KeyView<'a> {
    list: &'a LiveKeys,
    /// Live at the time read though not in the list, sorted.
    adds: Vec<&'a str>,
    /// In the list though not live at the time read, sorted.
    removes: Vec<&'a str>,
}

impl<'a> KeyView<'a> {
    /// How many keys.
    pub fn len(&self) -> usize {
        self.list.len() - self.removes.len() + self.adds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key at position `i` in key order.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        if self.adds.is_empty() && self.removes.is_empty() {
            return self.list.get(i);
        }
        if i >= self.len() {
            return None;
        }
        // The answer, if a list key, lies at or after list index `i - adds`: walk from there,
        // merging in the adds, from the view position of that list key (at most `i`, unless
        // the walk starts at the front).
        let j = i.saturating_sub(self.adds.len());
        let (mut a, removed_before) = match self.list.get(j) {
            Some(k) => (self.adds.partition_point(|x| *x < k), self.removes.partition_point(|x| *x < k)),
            None => (self.adds.len(), self.removes.len()),
        };
        let mut position = j - removed_before + a;
        if position > i {
            // Only when the walk starts at the front (`i` < adds): what comes before the first
            // list key is adds alone.
            return self.adds.get(i).copied();
        }
        let mut from_list = self.list.iter_from(j).peekable();
        loop {
            let next = match (from_list.peek().copied(), self.adds.get(a)) {
                (Some(l), Some(&add)) if add < l => {
                    a += 1;
                    add
                }
                (Some(l), _) => {
                    from_list.next();
                    if self.removes.binary_search(&l).is_ok() {
                        continue;
                    }
                    l
                }
                (None, Some(&add)) => {
                    a += 1;
                    add
                }
                (None, None) => return None,
            };
            if position == i {
                return Some(next);
            }
            position += 1;
        }
    }

    /// Every key, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let mut kept = self.list.iter().filter(|k| self.removes.binary_search(k).is_err()).peekable();
        let mut adds = self.adds.iter().copied().peekable();
        std::iter::from_fn(move || match (kept.peek(), adds.peek()) {
            (Some(k), Some(a)) if a < k => adds.next(),
            (Some(_), _) => kept.next(),
            (None, _) => adds.next(),
        })
    }
}

/// What a reader needs from its snapshot to build and catch up the lists.
pub(crate) trait FinalState {
    /// Whether `key`'s last version is a live one (not a tombstone, not absent).
    fn is_live(&self, key: &str) -> Result<bool>;
    /// Whether `key` is live at valid time `valid`, as known now.
    fn is_live_at(&self, key: &str, valid: Timestamp) -> Result<bool>;
    /// Every key of `type_name` live in the final state, in key order.
    fn live_keys(&self, type_name: &str, visit: &mut dyn FnMut(&str)) -> Result<()>;
}

/// The keys written by commits the lists have not seen yet.
#[derive(Default)]
struct CommitLog {
    /// Whether lists exist (or are being built), so commits are logged.
    wanted: bool,
    /// Commits up to this one are not logged: lists can only be built at or after it.
    base: u64,
    entries: VecDeque<(u64, Touched)>,
    keys: usize,
    /// Counts the times the log was given up, so lists built before know they are stale.
    generation: u64,
}

/// The lists, as of one transaction.
#[derive(Default)]
struct Lists {
    /// The transaction whose final state the lists hold.
    at_tx: u64,
    generation: u64,
    types: HashMap<String, LiveKeys>,
    bytes: usize,
    /// Set once the lists outgrew their limit: scans answer from then on.
    too_large: bool,
    recent: Recent,
}

/// Keys written by the last commits with their versions' valid times, so that a read at a
/// valid time a moment before the newest ones can correct the final state for them.
#[derive(Default)]
struct Recent {
    /// Oldest commit first, each with its greatest valid time.
    commits: VecDeque<(Timestamp, Vec<(String, Timestamp)>)>,
    keys: usize,
    /// Every version with a valid time after this one is in `commits` (`None`: not known yet).
    covered_after: Option<Timestamp>,
}

/// Keys kept in [`Recent`]: a few seconds of busy writing.
const RECENT_KEYS: usize = 1 << 16;

impl Recent {
    fn push(&mut self, commit: Vec<(String, Timestamp)>) {
        let Some(newest) = commit.iter().map(|(_, vt)| *vt).max() else { return };
        self.keys += commit.len();
        self.commits.push_back((newest, commit));
        while self.keys > RECENT_KEYS {
            let Some((newest, old)) = self.commits.pop_front() else { break };
            self.keys -= old.len();
            self.covered_after = self.covered_after.max(Some(newest));
        }
    }

    /// The keys with versions after `valid`, of the given types, sorted.
    fn written_after(&self, valid: Timestamp, types: &[&str]) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .commits
            .iter()
            .filter(|(newest, _)| *newest > valid)
            .flat_map(|(_, commit)| commit)
            .filter(|(key, vt)| *vt > valid && types.contains(&type_of(key)))
            .map(|(key, _)| key.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// The state a read asks the index for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadAt {
    /// The reader's snapshot: its last transaction.
    pub snapshot_tx: u64,
    /// The valid time read.
    pub valid: Timestamp,
    /// The snapshot's greatest valid time written (`None`: nothing written).
    pub max_valid: Option<Timestamp>,
}

/// See the module documentation.
pub(crate) struct KeyIndex {
    limit_bytes: usize,
    log: Mutex<CommitLog>,
    lists: Mutex<Lists>,
    /// The lists' memory as of the last read, readable while a read holds them.
    bytes: AtomicU64,
}

/// Memory a list entry takes: the pointer, the bytes and the allocator's rounding.
fn entry_bytes(key: &str) -> usize {
    16 + key.len().next_multiple_of(16)
}

impl KeyIndex {
    /// An index that keeps at most `limit_bytes` of keys (0: none, every list query scans).
    pub fn new(limit_bytes: usize) -> Self {
        KeyIndex { limit_bytes, log: Mutex::default(), lists: Mutex::default(), bytes: AtomicU64::new(0) }
    }

    /// The memory the lists held after the last read.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Called by a commit before it becomes visible (commits are serialised, so in
    /// transaction order). A commit that then fails leaves an entry that only costs a re-read.
    pub fn record(&self, tx_id: u64, touched: Touched) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if !log.wanted {
            log.base = tx_id;
            return;
        }
        log.keys += touched.len();
        log.entries.push_back((tx_id, touched));
        if log.keys > LOG_LIMIT {
            log.entries.clear();
            log.keys = 0;
            log.wanted = false;
            log.base = tx_id;
            log.generation += 1;
        }
    }

    /// Hands `read` the sorted live keys of each of `types` (in the order given) in the state
    /// `at` asks for, building and catching up lists on the way. Returns `false`, without
    /// calling `read`, when the lists cannot answer: a snapshot older than the lists, lists too
    /// large to keep, or a valid time before versions the lists no longer know of.
    pub fn read(
        &self,
        at: ReadAt,
        types: &[&str],
        state: &dyn FinalState,
        read: &mut dyn FnMut(&[KeyView]),
    ) -> Result<bool> {
        if self.limit_bytes == 0 {
            return Ok(false);
        }
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        let answered = self.read_locked(&mut lists, at, types, state, read);
        self.bytes.store(lists.bytes as u64, Ordering::Relaxed);
        answered
    }

    /// [`KeyIndex::read`] with the lists locked.
    fn read_locked(
        &self,
        lists: &mut Lists,
        ReadAt { snapshot_tx, valid, max_valid }: ReadAt,
        types: &[&str],
        state: &dyn FinalState,
        read: &mut dyn FnMut(&[KeyView]),
    ) -> Result<bool> {
        if lists.too_large {
            return Ok(false);
        }
        let pending = {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !log.wanted || lists.generation != log.generation {
                log.wanted = true;
                lists.types.clear();
                lists.bytes = 0;
                lists.generation = log.generation;
                lists.at_tx = log.base;
            }
            if lists.types.is_empty() && snapshot_tx >= log.base {
                // Nothing built yet: the lists may start at any covered snapshot, and every
                // version so far is at or before its greatest valid time.
                lists.at_tx = snapshot_tx;
                lists.recent = Recent { covered_after: Some(max_valid.unwrap_or(Timestamp::MIN)), ..Recent::default() };
            }
            if snapshot_tx < lists.at_tx {
                return Ok(false);
            }
            let mut pending = Vec::new();
            while log.entries.front().is_some_and(|(tx, _)| *tx <= snapshot_tx) {
                if let Some((tx, touched)) = log.entries.pop_front() {
                    log.keys -= touched.len();
                    if tx > lists.at_tx {
                        pending.push(touched);
                    }
                }
            }
            pending
        };
        if let Err(e) = lists.catch_up(&pending, state) {
            // The drained entries are gone, so the lists cannot be trusted any more.
            lists.types.clear();
            lists.bytes = 0;
            return Err(e);
        }
        lists.at_tx = snapshot_tx;
        if lists.bytes > self.limit_bytes {
            self.give_up(lists);
            return Ok(false);
        }
        for t in types {
            if lists.types.contains_key(*t) {
                continue;
            }
            let mut keys: Vec<Box<str>> = Vec::new();
            let mut bytes = 0;
            state.live_keys(t, &mut |k| {
                bytes += entry_bytes(k);
                keys.push(k.into());
            })?;
            lists.bytes += bytes;
            if lists.bytes > self.limit_bytes {
                self.give_up(lists);
                return Ok(false);
            }
            lists.types.insert((*t).to_owned(), LiveKeys::from_sorted(keys));
        }
        let empty = LiveKeys::default();
        let mut views: Vec<KeyView> = types
            .iter()
            .map(|t| KeyView { list: lists.types.get(*t).unwrap_or(&empty), adds: vec![], removes: vec![] })
            .collect();
        if max_valid.is_some_and(|m| valid < m) {
            // Some versions lie after the time read: correct the final state for their keys.
            if lists.recent.covered_after.is_none_or(|c| valid < c) {
                return Ok(false);
            }
            for key in lists.recent.written_after(valid, types) {
                let Some(i) = types.iter().position(|t| *t == type_of(key)) else { continue };
                match (views[i].list.contains(key), state.is_live_at(key, valid)?) {
                    (true, false) => views[i].removes.push(key),
                    (false, true) => views[i].adds.push(key),
                    _ => {}
                }
            }
        }
        read(&views);
        Ok(true)
    }

    /// Drops the lists for good (they outgrew the limit) and stops logging commits for them.
    fn give_up(&self, lists: &mut Lists) {
        *lists = Lists { too_large: true, ..Lists::default() };
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.wanted = false;
        log.entries.clear();
        log.keys = 0;
    }
}

impl Lists {
    /// Applies the pending commits' writes to keys of listed types. A key whose last write
    /// in them is settled (see [`Touched::settled_from`]) takes that write's liveness; any
    /// other is read back from the snapshot. Fallible reads all happen before a list changes.
    fn catch_up(&mut self, pending: &[Touched], state: &dyn FinalState) -> Result<()> {
        if self.types.is_empty() {
            return Ok(());
        }
        // Key → its liveness in the final state when the writes settle it, in key order.
        let mut finals: std::collections::BTreeMap<String, Option<bool>> = Default::default();
        let mut buf = Vec::new();
        let mut recent = Vec::with_capacity(pending.len());
        for touched in pending {
            // Every version this commit wrote, and (by position) those of listed types.
            let mut written: Vec<(String, Timestamp)> = Vec::with_capacity(touched.len());
            let mut listed: Vec<(usize, bool)> = Vec::new();
            for (n, (encoded, (valid, live))) in touched.iter().enumerate() {
                decode_key_into(encoded, &mut buf)?;
                let key = std::str::from_utf8(&buf).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?;
                if self.types.contains_key(type_of(key)) {
                    listed.push((n, live));
                }
                written.push((key.to_owned(), valid));
            }
            // This commit's last version of each key: greatest valid time, then latest written.
            listed.sort_unstable_by(|(a, _), (b, _)| (&written[*a], a).cmp(&(&written[*b], b)));
            let mut listed = listed.into_iter().peekable();
            while let Some((n, live)) = listed.next() {
                let (key, valid) = &written[n];
                if listed.peek().is_some_and(|(next, _)| written[*next].0 == *key) {
                    continue;
                }
                let settled = touched.settled_from.is_none_or(|from| *valid >= from);
                finals.insert(key.clone(), settled.then_some(live));
            }
            recent.push(written);
        }
        let mut changes = Vec::with_capacity(finals.len());
        for (key, live) in finals {
            let live = match live {
                Some(live) => live,
                None => state.is_live(&key)?,
            };
            changes.push((key, live));
        }
        for (key, live) in changes {
            if let Some(list) = self.types.get_mut(type_of(&key)) {
                self.bytes = self.bytes.saturating_add_signed(list.set(&key, live));
            }
        }
        for commit in recent {
            self.recent.push(commit);
        }
        Ok(())
    }
}

/// The type of a key: what comes before the first `|`.
fn type_of(key: &str) -> &str {
    key.split('|').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A final state held in a map, for driving the index by hand.
    #[derive(Default)]
    struct Fake(RefCell<BTreeMap<String, bool>>);

    impl FinalState for Fake {
        fn is_live(&self, key: &str) -> Result<bool> {
            Ok(self.0.borrow().get(key).copied().unwrap_or(false))
        }
        fn is_live_at(&self, key: &str, _: Timestamp) -> Result<bool> {
            self.is_live(key)
        }
        fn live_keys(&self, type_name: &str, visit: &mut dyn FnMut(&str)) -> Result<()> {
            let prefix = format!("{type_name}|");
            for (k, live) in self.0.borrow().iter() {
                if *live && k.starts_with(&prefix) {
                    visit(k);
                }
            }
            Ok(())
        }
    }

    /// A commit of `writes` (key, live). Settled writes carry their liveness; unsettled ones
    /// (a valid time before the store's greatest) make the index read the key back, so the
    /// tests check both paths. The version's liveness given is deliberately wrong when
    /// unsettled: only the read-back may count.
    fn commit(index: &KeyIndex, state: &Fake, tx: u64, writes: &[(&str, bool)], settled: bool) {
        let mut t = Touched { settled_from: (!settled).then_some(Timestamp::MAX), ..Touched::default() };
        for (k, live) in writes {
            let mut enc = Vec::new();
            crate::codec::encode_key(&mut enc, k);
            t.push(&enc, Timestamp::from_micros(tx as i64), if settled { *live } else { !*live });
            state.0.borrow_mut().insert((*k).to_owned(), *live);
        }
        index.record(tx, t);
    }

    fn read(index: &KeyIndex, tx: u64, types: &[&str], state: &Fake) -> Option<Vec<Vec<String>>> {
        let mut got = None;
        let answered = index
            .read(ReadAt { snapshot_tx: tx, valid: Timestamp::MAX, max_valid: None }, types, state, &mut |lists| {
                got = Some(lists.iter().map(|l| l.iter().map(str::to_owned).collect()).collect());
            })
            .unwrap();
        assert_eq!(answered, got.is_some());
        got
    }

    #[test]
    fn lists_follow_commits_and_refuse_older_snapshots() {
        let index = KeyIndex::new(1 << 20);
        let state = Fake::default();
        commit(&index, &state, 1, &[("T|b", true), ("T|d", true), ("U|a", true)], true);
        assert_eq!(
            read(&index, 1, &["T", "U"], &state),
            Some(vec![vec!["T|b".into(), "T|d".into()], vec!["U|a".into()]])
        );
        commit(&index, &state, 2, &[("T|a", true), ("T|d", false), ("T|c", false), ("V|x", true)], true);
        commit(&index, &state, 3, &[("T|e", true), ("T|b", true)], false);
        assert_eq!(read(&index, 3, &["T"], &state), Some(vec![vec!["T|a".into(), "T|b".into(), "T|e".into()]]));
        // A snapshot from before the lists' transaction cannot be answered from them.
        assert_eq!(read(&index, 2, &["T"], &state), None);
        // A type not listed before is built at the lists' transaction.
        assert_eq!(read(&index, 3, &["V", "W"], &state), Some(vec![vec!["V|x".into()], vec![]]));
    }

    #[test]
    fn a_snapshot_older_than_the_unlogged_commits_is_not_answered_until_a_newer_one_comes() {
        let index = KeyIndex::new(1 << 20);
        let state = Fake::default();
        commit(&index, &state, 1, &[("T|a", true)], true);
        commit(&index, &state, 2, &[("T|b", true)], true);
        // Commit 2 was not logged (nobody wanted lists yet), so snapshot 1 cannot start them.
        assert_eq!(read(&index, 1, &["T"], &state), None);
        commit(&index, &state, 3, &[("T|a", false)], false);
        assert_eq!(read(&index, 3, &["T"], &state), Some(vec![vec!["T|b".into()]]));
    }

    #[test]
    fn lists_beyond_the_limit_are_given_up() {
        let index = KeyIndex::new(100);
        let state = Fake::default();
        let keys: Vec<String> = (0..10).map(|i| format!("T|{i}")).collect();
        let writes: Vec<(&str, bool)> = keys.iter().map(|k| (k.as_str(), true)).collect();
        commit(&index, &state, 1, &writes, true);
        assert_eq!(read(&index, 1, &["T"], &state), None);
        assert_eq!(read(&index, 1, &["U"], &state), None, "given up for good");
        commit(&index, &state, 2, &[("T|x", true)], true);
        assert!(index.log.lock().unwrap().entries.is_empty(), "and commits are no longer logged");
    }

    #[test]
    fn lists_that_grow_past_the_limit_are_given_up() {
        let index = KeyIndex::new(200);
        let state = Fake::default();
        commit(&index, &state, 1, &[("T|a", true)], true);
        assert!(read(&index, 1, &["T"], &state).is_some());
        let keys: Vec<String> = (0..10).map(|i| format!("T|{i}")).collect();
        let writes: Vec<(&str, bool)> = keys.iter().map(|k| (k.as_str(), true)).collect();
        commit(&index, &state, 2, &writes, true);
        assert_eq!(read(&index, 2, &["T"], &state), None);
    }

    #[test]
    fn an_overflowing_log_drops_the_lists_and_they_are_built_again() {
        let index = KeyIndex::new(usize::MAX);
        let state = Fake::default();
        commit(&index, &state, 1, &[("T|a", true)], true);
        assert!(read(&index, 1, &["T"], &state).is_some());
        let many: Vec<String> = (0..=LOG_LIMIT).map(|i| format!("U|{i}")).collect();
        let writes: Vec<(&str, bool)> = many.iter().map(|k| (k.as_str(), false)).collect();
        commit(&index, &state, 2, &writes, true);
        commit(&index, &state, 3, &[("T|b", true)], true);
        assert_eq!(read(&index, 3, &["T"], &state), Some(vec![vec!["T|a".into(), "T|b".into()]]));
    }

    #[test]
    fn a_view_corrected_by_adds_and_removes_reads_as_the_merged_list() {
        let list = LiveKeys::from_sorted(["b", "d", "f", "h"].iter().map(|k| (*k).into()).collect());
        for (adds, removes) in [
            (vec![], vec![]),
            (vec!["a", "e", "z"], vec!["d"]),
            (vec!["c"], vec!["b", "h"]),
            (vec![], vec!["b", "d", "f", "h"]),
            (vec!["a", "c", "e", "g", "i"], vec![]),
        ] {
            let view = KeyView { list: &list, adds: adds.clone(), removes: removes.clone() };
            let mut want: Vec<&str> =
                list.iter().filter(|k| !removes.contains(k)).chain(adds.iter().copied()).collect();
            want.sort_unstable();
            assert_eq!(view.iter().collect::<Vec<_>>(), want, "{adds:?} {removes:?}");
            assert_eq!(view.len(), want.len());
            for i in 0..=want.len() {
                assert_eq!(view.get(i), want.get(i).copied(), "position {i} of {adds:?} {removes:?}");
            }
        }
    }

    #[test]
    fn live_keys_split_chunks_and_keep_order_and_count() {
        let mut list = LiveKeys::default();
        let mut want = std::collections::BTreeSet::new();
        let mut bytes = 0isize;
        // Inserts in a scattered order, enough for several splits, then removes every third.
        for i in 0..5 * CHUNK {
            let key = format!("T|{:05}", (i * 7919) % (5 * CHUNK));
            bytes += list.set(&key, true);
            want.insert(key);
        }
        assert_eq!(list.set("T|00001", true), 0, "present already");
        for i in (0..5 * CHUNK).step_by(3) {
            let key = format!("T|{i:05}");
            bytes += list.set(&key, false);
            want.remove(&key);
        }
        assert_eq!(list.set("T|00000", false), 0, "absent already");
        assert!(list.chunks.len() > 2 && list.chunks.iter().all(|c| !c.is_empty() && c.len() < 2 * CHUNK));
        assert_eq!(list.iter().collect::<Vec<_>>(), want.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(list.len(), want.len());
        assert_eq!(bytes, want.iter().map(|k| entry_bytes(k) as isize).sum::<isize>());
        for (i, key) in want.iter().enumerate() {
            assert_eq!(list.get(i), Some(key.as_str()));
            assert!(list.contains(key));
        }
        for i in [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7, want.len() - 1, want.len(), want.len() + 3] {
            let tail: Vec<&str> = want.iter().skip(i).map(String::as_str).collect();
            assert_eq!(list.iter_from(i).collect::<Vec<_>>(), tail, "from {i}");
        }
        assert!(!list.contains("T|00000") && !list.contains("T|99999") && !list.contains(""));
        assert_eq!(list.get(want.len()), None);
    }
}
