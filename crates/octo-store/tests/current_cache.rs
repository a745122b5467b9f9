//! The cache of current answers changes no answer: a store with it reads exactly as one
//! without it, after any writes, for snapshots old and new, and for readers racing a writer.

use octo_store::{AsOf, Reader, RedbStore, Store, StoreOptions, Timestamp, ValidTime, Version};
use proptest::prelude::*;

const KEYS: &[&str] = &["T|a", "T|b", "T|c", "U|a", "U|b"];

fn vt(x: i64) -> Timestamp {
    Timestamp::from_micros(1_000_000 + x)
}

fn open(dir: &std::path::Path, name: &str, cached: bool) -> RedbStore {
    let options = StoreOptions {
        cache_bytes: 1 << 20,
        current_cache_bytes: if cached { 1 << 20 } else { 0 },
        ..StoreOptions::default()
    };
    RedbStore::open(&dir.join(name), &options).unwrap()
}

/// A version without its times: key, transaction, tombstone, document, references.
type Plain = (String, u64, bool, Vec<u8>, Vec<String>);

/// A version without its times, which differ between two stores given the same writes (each
/// takes its transaction times from the clock).
fn plain(v: Option<Version>) -> Option<Plain> {
    v.map(|v| (v.key, v.tx_id, v.deleted, v.doc, v.refs))
}

/// Everything the cache serves, read twice (the second read is answered from the cache when
/// the first kept its answer), as of `at`.
type Answers = (Vec<Option<Plain>>, Vec<Vec<String>>);

fn answers(snap: &dyn Reader, at: AsOf) -> Answers {
    let mut first = None;
    for _ in 0..2 {
        let mut versions: Vec<_> = KEYS.iter().map(|k| plain(snap.get(k, at).unwrap())).collect();
        versions.extend(snap.get_many(KEYS, at).unwrap().into_iter().map(plain));
        // A key asked twice in one batch.
        versions.extend(snap.get_many(&[KEYS[1], KEYS[0], KEYS[1]], at).unwrap().into_iter().map(plain));
        let mut referrers: Vec<Vec<String>> = KEYS.iter().map(|k| snap.referrer_keys(k).unwrap()).collect();
        referrers.extend(snap.referrer_keys_many(KEYS).unwrap());
        match &first {
            None => first = Some((versions, referrers)),
            Some(f) => assert_eq!(f, &(versions, referrers), "a second read answered differently"),
        }
    }
    first.unwrap()
}

#[derive(Debug, Clone)]
struct Write {
    key: usize,
    live: bool,
    doc: u8,
    refs: Vec<usize>,
    start: Option<i64>,
    end: Option<i64>,
}

fn write() -> impl Strategy<Value = Write> {
    (
        0..KEYS.len(),
        proptest::bool::weighted(0.8),
        0u8..4,
        proptest::collection::vec(0..KEYS.len(), 0..3),
        proptest::option::weighted(0.3, 0i64..20),
        proptest::option::weighted(0.2, 1i64..12),
    )
        .prop_map(|(key, live, doc, refs, start, len)| Write {
            key,
            live,
            doc,
            refs,
            start,
            end: start.zip(len).map(|(s, l)| s + l),
        })
}

fn apply(store: &RedbStore, writes: &[Write]) {
    let mut tx = store.begin().unwrap();
    for w in writes {
        let valid = ValidTime { start: w.start.map(vt), end: w.end.map(vt) };
        if w.live {
            let refs: Vec<String> = w.refs.iter().map(|r| KEYS[*r].to_owned()).collect();
            tx.put(KEYS[w.key], format!("{{\"v\":{}}}", w.doc).as_bytes(), &refs, valid).unwrap();
        } else {
            tx.delete(KEYS[w.key], valid).unwrap();
        }
    }
    tx.commit().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_cached_store_reads_as_one_without_the_cache(
        txs in proptest::collection::vec((proptest::collection::vec(write(), 1..5), any::<bool>()), 1..16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cached, plain_store) = (open(dir.path(), "c.redb", true), open(dir.path(), "p.redb", false));
        // Snapshots of the cached store kept open while later commits fill the cache, with
        // what they answered when taken.
        let mut held = vec![];
        for (writes, read_after) in &txs {
            apply(&cached, writes);
            apply(&plain_store, writes);
            if *read_after {
                let (c, p) = (cached.snapshot().unwrap(), plain_store.snapshot().unwrap());
                for at in [AsOf::now(), AsOf::valid(vt(5)), AsOf::valid(Timestamp::MAX)] {
                    prop_assert_eq!(answers(&*c, at), answers(&*p, at), "as of {:?}", at);
                }
                let then = answers(&*p, AsOf::now());
                held.push((c, then));
            }
        }
        for (snap, then) in &held {
            prop_assert_eq!(&answers(&**snap, AsOf::now()), then, "an old snapshot read again");
        }
    }
}

/// A snapshot opened before a commit is not given the answer a newer snapshot read (and the
/// cache kept) after it.
#[test]
fn an_old_snapshot_does_not_see_answers_kept_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "s.redb", true);
    let put = |doc: &str, refs: &[String]| {
        let mut tx = store.begin().unwrap();
        tx.put("T|a", doc.as_bytes(), refs, ValidTime::now()).unwrap();
        tx.commit().unwrap();
    };
    put("old", &[]);
    let old = store.snapshot().unwrap();
    assert_eq!(old.get("T|a", AsOf::now()).unwrap().unwrap().doc, b"old");
    assert!(old.referrer_keys("U|x").unwrap().is_empty());
    put("new", &["U|x".to_owned()]);
    let new = store.snapshot().unwrap();
    for _ in 0..2 {
        assert_eq!(new.get("T|a", AsOf::now()).unwrap().unwrap().doc, b"new");
        assert_eq!(new.referrer_keys("U|x").unwrap(), vec!["T|a".to_owned()]);
    }
    assert_eq!(old.get("T|a", AsOf::now()).unwrap().unwrap().doc, b"old");
    assert_eq!(old.get_many(&["T|a"], AsOf::now()).unwrap()[0].as_ref().unwrap().doc, b"old");
    assert!(old.referrer_keys("U|x").unwrap().is_empty());
    assert!(old.referrer_keys_many(&["U|x"]).unwrap()[0].is_empty());
    // A reopened store starts empty and answers the same.
    drop((old, new));
    drop(store);
    let store = open(dir.path(), "s.redb", true);
    let snap = store.snapshot().unwrap();
    for _ in 0..2 {
        assert_eq!(snap.get("T|a", AsOf::now()).unwrap().unwrap().doc, b"new");
    }
}

/// A declaration whose validity ends in the future: reads before the end see it, reads after
/// it do not, whatever was read and kept before.
#[test]
fn reads_before_a_future_end_are_not_answered_from_the_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "e.redb", true);
    let now = Timestamp::now();
    let end = Timestamp::from_micros(now.as_micros() + 3_600_000_000);
    let mut tx = store.begin().unwrap();
    tx.put("T|a", b"{}", &[], ValidTime { start: Some(now), end: Some(end) }).unwrap();
    tx.commit().unwrap();
    let snap = store.snapshot().unwrap();
    let after = AsOf::valid(Timestamp::from_micros(end.as_micros() + 1));
    for _ in 0..2 {
        assert!(snap.get("T|a", after).unwrap().is_none());
        assert!(snap.get("T|a", AsOf::now()).unwrap().is_some(), "still valid now");
        assert!(snap.get_many(&["T|a"], AsOf::now()).unwrap()[0].is_some());
    }
}

/// Readers racing a writer: each transaction writes every key with the same counter, so a
/// snapshot that mixed answers from two transactions would show two counters; a reader's
/// counters never go back, and never fall behind what was committed before its snapshot (a
/// stale cached answer would).
#[test]
fn readers_racing_a_writer_see_whole_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path(), "r.redb", true));
    let write = |n: u32| {
        let mut tx = store.begin().unwrap();
        for k in KEYS {
            tx.put(k, n.to_string().as_bytes(), &[format!("N|{n}")], ValidTime::now()).unwrap();
        }
        tx.commit().unwrap();
    };
    write(0);
    let committed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (store, done, committed) = (store.clone(), done.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut last = 0u32;
                let mut reads = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || reads < 100 {
                    let at_least = committed.load(std::sync::atomic::Ordering::SeqCst);
                    let snap = store.snapshot().unwrap();
                    let counters: Vec<u32> = if (reads + r).is_multiple_of(2) {
                        KEYS.iter()
                            .map(|k| snap.get(k, AsOf::now()).unwrap().unwrap().doc)
                            .map(|d| String::from_utf8(d).unwrap().parse().unwrap())
                            .collect()
                    } else {
                        snap.get_many(KEYS, AsOf::now())
                            .unwrap()
                            .into_iter()
                            .map(|v| String::from_utf8(v.unwrap().doc).unwrap().parse().unwrap())
                            .collect()
                    };
                    assert!(counters.windows(2).all(|w| w[0] == w[1]), "one snapshot, two transactions: {counters:?}");
                    assert!(counters[0] >= last, "went back from {last} to {}", counters[0]);
                    assert!(counters[0] >= at_least, "{} read after {at_least} was committed", counters[0]);
                    // The counter's referrer list holds every key from that transaction on.
                    let target = format!("N|{}", counters[0]);
                    assert_eq!(snap.referrer_keys(&target).unwrap().len(), KEYS.len(), "{target}");
                    last = counters[0];
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for n in 1..=300 {
        write(n);
        committed.store(n, std::sync::atomic::Ordering::SeqCst);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 100);
    }
}
