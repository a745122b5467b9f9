//! The key index answers "the live keys of these types now" exactly as a scan does, after any
//! sequence of writes read at any point, and declines reads it cannot answer.

use octo_store::{AsOf, Reader, RedbStore, Store, StoreOptions, Timestamp, ValidTime};
use proptest::prelude::*;

const KEYS: &[&str] = &["T|a", "T|b", "T|c", "U|a", "T|a|x", "U|b", "V|a"];
const TYPES: &[&str] = &["T", "U", "W"];

fn indexed(snap: &dyn Reader, at: AsOf) -> Option<Vec<Vec<String>>> {
    let mut got = None;
    let answered = snap
        .live_keys_indexed(TYPES, at, &mut |lists| {
            got = Some(lists.iter().map(|l| l.iter().map(str::to_owned).collect()).collect());
        })
        .unwrap();
    assert_eq!(answered, got.is_some());
    got
}

fn scanned(snap: &dyn Reader, at: AsOf) -> Vec<Vec<String>> {
    TYPES
        .iter()
        .map(|t| {
            let mut keys = vec![];
            snap.scan_type_keys(t, at, &mut |k| {
                keys.push(k.to_owned());
                true
            })
            .unwrap();
            keys
        })
        .collect()
}

fn vt(x: i64) -> Timestamp {
    Timestamp::from_micros(1_000_000 + x)
}

#[derive(Debug, Clone)]
struct Write {
    key: usize,
    live: bool,
    start: Option<i64>,
    end: Option<i64>,
}

fn write() -> impl Strategy<Value = Write> {
    (0..KEYS.len(), any::<bool>(), proptest::option::weighted(0.5, 0i64..20), proptest::option::weighted(0.2, 1i64..12))
        .prop_map(|(key, live, start, len)| Write { key, live, start, end: start.zip(len).map(|(s, l)| s + l) })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_index_agrees_with_a_scan(
        txs in proptest::collection::vec((proptest::collection::vec(write(), 1..5), any::<bool>()), 1..16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("k.redb"), &StoreOptions { cache_bytes: 1 << 20, ..StoreOptions::default() }).unwrap();
        let mut old_snapshots = vec![];
        let mut greatest_valid = Timestamp::MIN;
        let mut tx_times = vec![];
        let mut lists_began: Option<usize> = None;
        for (writes, read_after) in &txs {
            let mut tx = store.begin().unwrap();
            for w in writes {
                greatest_valid = greatest_valid.max(w.end.or(w.start).map_or(tx.tx_time(), vt));
                let valid = ValidTime { start: w.start.map(vt), end: w.end.map(vt) };
                if w.live {
                    tx.put(KEYS[w.key], b"{}", &[], valid).unwrap();
                } else {
                    tx.delete(KEYS[w.key], valid).unwrap();
                }
            }
            tx_times.push(tx.commit().unwrap().tx_time);
            if *read_after {
                let snap = store.snapshot().unwrap();
                // Every valid time written lies before now, so "now" is the final state.
                let now = AsOf::now();
                let got = indexed(&*snap, now);
                prop_assert_eq!(got.as_ref(), Some(&scanned(&*snap, now)), "now");
                // Reads at earlier valid times: after every valid time written they see the
                // final state; a moment before the last commits, the final state corrected for
                // those commits' keys; further back, they are declined (and so scan).
                let past = AsOf::valid(vt(5));
                let got = indexed(&*snap, past);
                if vt(5) >= greatest_valid {
                    prop_assert!(got.is_some());
                }
                if let Some(got) = got {
                    prop_assert_eq!(got, scanned(&*snap, past));
                }
                // The lists began at the first read; commits from then on are corrected for.
                let lists_began = *lists_began.get_or_insert(tx_times.len() - 1);
                for (i, t) in tx_times.iter().enumerate() {
                    let then = AsOf::valid(*t);
                    let got = indexed(&*snap, then);
                    if i >= lists_began {
                        prop_assert!(got.is_some(), "the read at commit {}'s time, lists from {}", i, lists_began);
                    }
                    if let Some(got) = got {
                        prop_assert_eq!(got, scanned(&*snap, then), "at the valid time {:?}", t);
                    }
                }
                old_snapshots.push(snap);
            }
        }
        // Snapshots from before the index moved on are declined or answered correctly.
        for snap in &old_snapshots {
            let now = AsOf::now();
            if let Some(got) = indexed(&**snap, now) {
                prop_assert_eq!(got, scanned(&**snap, now));
            }
        }
        let snap = store.snapshot().unwrap();
        prop_assert_eq!(indexed(&*snap, AsOf::now()), Some(scanned(&*snap, AsOf::now())));
    }
}

/// A read whose valid time is a moment before the last commits (a client's clock behind the
/// server's) is answered from the index, corrected for those commits' keys.
#[test]
fn a_read_a_moment_before_the_last_commits_is_corrected_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("k.redb"), &StoreOptions::default()).unwrap();
    let commit = |writes: &[(&str, bool)]| {
        let mut tx = store.begin().unwrap();
        for (key, live) in writes {
            if *live {
                tx.put(key, b"{}", &[], ValidTime::now()).unwrap();
            } else {
                tx.delete(key, ValidTime::now()).unwrap();
            }
        }
        tx.commit().unwrap().tx_time
    };
    let first = commit(&[("T|a", true), ("T|c", true), ("U|a", true)]);
    // Lists built, then two more commits, the first read again a moment before them.
    assert!(indexed(&*store.snapshot().unwrap(), AsOf::now()).is_some());
    commit(&[("T|b", true), ("T|c", false)]);
    commit(&[("U|a", false), ("U|b", true)]);
    let snap = store.snapshot().unwrap();
    let then = AsOf::valid(first);
    let want = vec![vec!["T|a".to_owned(), "T|c".to_owned()], vec!["U|a".to_owned()], vec![]];
    assert_eq!(scanned(&*snap, then), want);
    assert_eq!(indexed(&*snap, then), Some(want));
    // Before the first commit, whose versions the lists never held apart: declined.
    assert_eq!(indexed(&*snap, AsOf::valid(Timestamp::from_micros(first.as_micros() - 1))), None);
}

#[test]
fn a_future_valid_time_or_an_earlier_transaction_time_is_declined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.redb");
    let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    let mut tx = store.begin().unwrap();
    tx.put("T|a", b"{}", &[], ValidTime::now()).unwrap();
    let first = tx.commit().unwrap();
    let mut tx = store.begin().unwrap();
    tx.put("T|b", b"{}", &[], ValidTime::now()).unwrap();
    tx.commit().unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(indexed(&*snap, AsOf::now()), Some(vec![vec!["T|a".into(), "T|b".into()], vec![], vec![]]));
    assert_eq!(indexed(&*snap, AsOf::at(Timestamp::now(), first.tx_time)), None);
    drop(snap);

    // A declaration that ends next year: until then, "now" is not the final state. The lists
    // saw the commit, so they correct for it; in a year the final state holds.
    let next_year = Timestamp::from_micros(Timestamp::now().as_micros() + 365 * 86_400_000_000);
    let mut tx = store.begin().unwrap();
    tx.put("U|a", b"{}", &[], ValidTime { start: None, end: Some(next_year) }).unwrap();
    tx.commit().unwrap();
    let snap = store.snapshot().unwrap();
    let now = AsOf::now();
    assert_eq!(indexed(&*snap, now), Some(vec![vec!["T|a".into(), "T|b".into()], vec!["U|a".into()], vec![]]));
    assert_eq!(indexed(&*snap, now), Some(scanned(&*snap, now)));
    assert_eq!(indexed(&*snap, AsOf::valid(next_year)), Some(scanned(&*snap, AsOf::valid(next_year))));
    drop(snap);
    drop(store);

    // The greatest valid time is kept across a reopen; lists built afresh never saw the
    // declaration's commit, so "now" scans until next year.
    let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(indexed(&*snap, AsOf::now()), None);
    assert_eq!(indexed(&*snap, AsOf::valid(next_year)), Some(vec![vec!["T|a".into(), "T|b".into()], vec![], vec![]]));
}

#[test]
fn the_index_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { key_index_bytes: 0, ..StoreOptions::default() };
    let store = RedbStore::open(&dir.path().join("k.redb"), &options).unwrap();
    let mut tx = store.begin().unwrap();
    tx.put("T|a", b"{}", &[], ValidTime::now()).unwrap();
    tx.commit().unwrap();
    assert_eq!(indexed(&*store.snapshot().unwrap(), AsOf::now()), None);
}

/// Readers on their own threads, each on a fresh snapshot while one writer commits: whatever
/// the interleaving, an answer from the index is the scan's answer for that snapshot.
#[test]
fn readers_racing_a_writer_get_the_scans_answers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("k.redb"), &StoreOptions::default()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut answered = 0;
                while !done.load(Ordering::Relaxed) {
                    let snap = store.snapshot().unwrap();
                    let now = AsOf::now();
                    if let Some(got) = indexed(&*snap, now) {
                        assert_eq!(got, scanned(&*snap, now));
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    let mut state = 12345u64;
    for _ in 0..400 {
        let mut tx = store.begin().unwrap();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = format!("{}|{}", ["T", "U"][(state % 2) as usize], (state >> 8) % 50);
            if state & 4 == 0 {
                tx.delete(&key, ValidTime::now()).unwrap();
            } else {
                tx.put(&key, b"{}", &[], ValidTime::now()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let answered: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(answered > 0, "the index answered no reader");
}
