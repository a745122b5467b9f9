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
            tx.commit().unwrap();
            if *read_after {
                let snap = store.snapshot().unwrap();
                // Every valid time written lies before now, so "now" is the final state.
                let now = AsOf::now();
                let got = indexed(&*snap, now);
                prop_assert_eq!(got.as_ref(), Some(&scanned(&*snap, now)), "now");
                // A read at a valid time before one written is declined (and so scans); one
                // after every valid time written sees the final state too.
                let past = AsOf::valid(vt(5));
                let got = indexed(&*snap, past);
                prop_assert_eq!(got.is_some(), vt(5) >= greatest_valid);
                if let Some(got) = got {
                    prop_assert_eq!(got, scanned(&*snap, past));
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

    // A declaration that ends next year: until then, "now" is not the final state.
    let next_year = Timestamp::from_micros(Timestamp::now().as_micros() + 365 * 86_400_000_000);
    let mut tx = store.begin().unwrap();
    tx.put("U|a", b"{}", &[], ValidTime { start: None, end: Some(next_year) }).unwrap();
    tx.commit().unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(indexed(&*snap, AsOf::now()), None);
    assert_eq!(indexed(&*snap, AsOf::valid(next_year)), Some(scanned(&*snap, AsOf::valid(next_year))));
    drop(snap);
    drop(store);

    // The greatest valid time is kept across a reopen.
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
