//! The store's semantics, case by case: valid time, transaction time, scans, references.

use octo_model::Catalog;
use octo_store::{transact, AsOf, Op, Reader, RedbStore, Store, StoreOptions, Timestamp, ValidTime};

fn open() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb"), &StoreOptions::default()).unwrap();
    (dir, store)
}

fn t(s: i64) -> Timestamp {
    // Seconds into 2026, in microseconds.
    Timestamp::from_micros(1_767_225_600_000_000 + s * 1_000_000)
}

fn put(key: &str, doc: &str, refs: &[&str], valid: ValidTime) -> Op {
    Op::Put { key: key.into(), doc: doc.as_bytes().to_vec(), refs: refs.iter().map(|r| r.to_string()).collect(), valid }
}

fn doc_at(r: &dyn Reader, key: &str, at: AsOf) -> Option<String> {
    r.get(key, at).unwrap().map(|v| String::from_utf8(v.doc).unwrap())
}

#[test]
fn back_dated_and_future_valid_times() {
    let (_d, s) = open();
    transact(&s, &[put("K|a", "v10", &[], ValidTime::from(t(10)))]).unwrap();
    // A back-dated write changes the past but not what was valid from t10 on.
    transact(&s, &[put("K|a", "v5", &[], ValidTime::from(t(5)))]).unwrap();
    // A future write is invisible now and visible at its time.
    transact(&s, &[put("K|a", "v100", &[], ValidTime::from(t(100)))]).unwrap();
    let r = s.snapshot().unwrap();
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(4))), None);
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(5))).as_deref(), Some("v5"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(9))).as_deref(), Some("v5"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(10))).as_deref(), Some("v10"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(99))).as_deref(), Some("v10"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(100))).as_deref(), Some("v100"));
}

#[test]
fn transaction_time_travel_and_corrections() {
    let (_d, s) = open();
    let tx1 = transact(&s, &[put("K|a", "first", &[], ValidTime::from(t(10)))]).unwrap();
    let tx2 = transact(&s, &[put("K|a", "corrected", &[], ValidTime::from(t(10)))]).unwrap();
    let tx3 = transact(&s, &[Op::Delete { key: "K|a".into(), valid: ValidTime::from(t(20)) }]).unwrap();
    assert!(tx1.tx_time < tx2.tx_time && tx2.tx_time < tx3.tx_time);
    assert_eq!((tx1.tx_id, tx2.tx_id, tx3.tx_id), (1, 2, 3));
    let r = s.snapshot().unwrap();
    assert_eq!(doc_at(&*r, "K|a", AsOf::at(t(15), tx1.tx_time)).as_deref(), Some("first"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::at(t(15), tx2.tx_time)).as_deref(), Some("corrected"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::at(t(25), tx2.tx_time)).as_deref(), Some("corrected"));
    assert_eq!(doc_at(&*r, "K|a", AsOf::at(t(25), tx3.tx_time)), None);
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(15))).as_deref(), Some("corrected"));
    // Before the first transaction nothing was known.
    assert_eq!(doc_at(&*r, "K|a", AsOf::at(t(15), Timestamp::from_micros(tx1.tx_time.as_micros() - 1))), None);

    let h = r.history("K|a").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!((h[0].valid_time, h[0].tx_id), (t(10), 1));
    assert_eq!((h[1].valid_time, h[1].tx_id), (t(10), 2));
    assert!(h[2].is_tombstone() && h[2].valid_time == t(20));
    assert_eq!(h[0].content_hash(), Some(octo_store::ContentHash::of(b"first")));
    assert_eq!(r.last_tx().unwrap(), Some(tx3));
}

#[test]
fn end_valid_time_restores_what_was_there() {
    let (_d, s) = open();
    transact(&s, &[put("K|a", "base", &[], ValidTime::from(t(0)))]).unwrap();
    transact(&s, &[put("K|a", "mid", &[], ValidTime::from(t(15)))]).unwrap();
    // Valid during [10, 20): overrides "base" and "mid" inside the span; "mid" holds from 20 on.
    transact(&s, &[put("K|a", "span", &[], ValidTime::between(t(10), t(20)))]).unwrap();
    let r = s.snapshot().unwrap();
    let at = |x| doc_at(&*r, "K|a", AsOf::valid(t(x)));
    assert_eq!(at(5).as_deref(), Some("base"));
    assert_eq!(at(10).as_deref(), Some("span"));
    assert_eq!(at(16).as_deref(), Some("span"));
    assert_eq!(at(20).as_deref(), Some("mid"));
    // A span over nothing ends in absence.
    transact(&s, &[put("K|b", "temp", &[], ValidTime::between(t(30), t(40)))]).unwrap();
    let r = s.snapshot().unwrap();
    assert_eq!(doc_at(&*r, "K|b", AsOf::valid(t(29))), None);
    assert_eq!(doc_at(&*r, "K|b", AsOf::valid(t(35))).as_deref(), Some("temp"));
    assert_eq!(doc_at(&*r, "K|b", AsOf::valid(t(40))), None);
    // A deletion over a span leaves the object before and after.
    transact(&s, &[Op::Delete { key: "K|a".into(), valid: ValidTime::between(t(1), t(2)) }]).unwrap();
    let r = s.snapshot().unwrap();
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(1))), None);
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(t(2))).as_deref(), Some("base"));
    // An empty span is refused and nothing is written.
    let err = transact(&s, &[put("K|c", "x", &[], ValidTime::between(t(5), t(5)))]).unwrap_err();
    assert!(err.to_string().contains("not after start"), "{err}");
    assert!(s.snapshot().unwrap().history("K|c").unwrap().is_empty());
}

#[test]
fn default_valid_time_is_the_transaction_time() {
    let (_d, s) = open();
    let rec = transact(&s, &[put("K|a", "now", &[], ValidTime::now())]).unwrap();
    let r = s.snapshot().unwrap();
    let v = r.get("K|a", AsOf::now()).unwrap().unwrap();
    assert_eq!(v.valid_time, rec.tx_time);
    assert_eq!(v.tx_time, rec.tx_time);
    assert_eq!(doc_at(&*r, "K|a", AsOf::valid(Timestamp::from_micros(rec.tx_time.as_micros() - 1))), None);
}

#[test]
fn type_scans_see_one_live_version_per_key() {
    let (_d, s) = open();
    let mut ops = vec![];
    for i in 0..50 {
        ops.push(put(&format!("IPPort|internet|192.0.2.{i}|tcp|80"), &format!("p{i}"), &[], ValidTime::from(t(1))));
    }
    ops.push(put("IPPortX|other", "not a port", &[], ValidTime::from(t(1))));
    ops.push(put("IPAddressV4|internet|192.0.2.1", "v4", &[], ValidTime::from(t(1))));
    ops.push(put("IPAddressV6|internet|2001:db8::1", "v6", &[], ValidTime::from(t(1))));
    transact(&s, &ops).unwrap();
    transact(
        &s,
        &[
            put("IPPort|internet|192.0.2.7|tcp|80", "p7-new", &[], ValidTime::from(t(5))),
            Op::Delete { key: "IPPort|internet|192.0.2.8|tcp|80".into(), valid: ValidTime::from(t(5)) },
        ],
    )
    .unwrap();
    let r = s.snapshot().unwrap();
    let scan = |at: AsOf| {
        let mut out = vec![];
        r.scan_type("IPPort", at, &mut |v| {
            out.push((v.key, String::from_utf8(v.doc).unwrap()));
            true
        })
        .unwrap();
        out
    };
    let before = scan(AsOf::valid(t(2)));
    assert_eq!(before.len(), 50);
    assert!(before.iter().any(|(k, d)| k == "IPPort|internet|192.0.2.7|tcp|80" && d == "p7"));
    let after = scan(AsOf::valid(t(6)));
    assert_eq!(after.len(), 49);
    assert!(after.iter().any(|(k, d)| k == "IPPort|internet|192.0.2.7|tcp|80" && d == "p7-new"));
    assert!(!after.iter().any(|(k, _)| k == "IPPort|internet|192.0.2.8|tcp|80"));
    assert!(scan(AsOf::valid(t(0))).is_empty());
    // Early stop.
    let mut n = 0;
    r.scan_type("IPPort", AsOf::valid(t(2)), &mut |_| {
        n += 1;
        n < 3
    })
    .unwrap();
    assert_eq!(n, 3);
    // Abstract types: the catalogue expands them to concrete types.
    let catalog = Catalog::builtin();
    let types: Vec<&str> = catalog.concrete_types("IPAddress").unwrap().iter().map(String::as_str).collect();
    let mut ips = vec![];
    r.scan_types(&types, AsOf::valid(t(2)), &mut |v| {
        ips.push(v.key);
        true
    })
    .unwrap();
    ips.sort();
    assert_eq!(ips, ["IPAddressV4|internet|192.0.2.1", "IPAddressV6|internet|2001:db8::1"]);
}

#[test]
fn referrers_follow_the_documents_as_of_the_read() {
    let (_d, s) = open();
    let ip = "IPAddressV4|internet|192.0.2.1";
    transact(
        &s,
        &[
            put(ip, "ip", &[], ValidTime::from(t(0))),
            put("IPPort|internet|192.0.2.1|tcp|22", "22", &[ip], ValidTime::from(t(1))),
            put("IPPort|internet|192.0.2.1|tcp|80", "80", &[ip], ValidTime::from(t(1))),
        ],
    )
    .unwrap();
    // Port 80 stops referencing the address at t3 (changed document), port 22 is deleted at t4.
    transact(
        &s,
        &[put(
            "IPPort|internet|192.0.2.1|tcp|80",
            "80-moved",
            &["IPAddressV4|internet|192.0.2.2"],
            ValidTime::from(t(3)),
        )],
    )
    .unwrap();
    transact(&s, &[Op::Delete { key: "IPPort|internet|192.0.2.1|tcp|22".into(), valid: ValidTime::from(t(4)) }])
        .unwrap();
    let r = s.snapshot().unwrap();
    let who = |x| {
        let mut keys: Vec<String> =
            r.referrers(ip, None, AsOf::valid(t(x))).unwrap().into_iter().map(|v| v.key).collect();
        keys.sort();
        keys
    };
    assert!(who(0).is_empty());
    assert_eq!(who(2), ["IPPort|internet|192.0.2.1|tcp|22", "IPPort|internet|192.0.2.1|tcp|80"]);
    assert_eq!(who(3), ["IPPort|internet|192.0.2.1|tcp|22"]);
    assert!(who(5).is_empty());
    assert_eq!(r.referrers("IPAddressV4|internet|192.0.2.2", None, AsOf::valid(t(5))).unwrap().len(), 1);

    // Restricted to one source type: a range of the index, not a filter over all referrers.
    transact(&s, &[put("Origin|observation|nmap|IPAddressV4|internet|192.0.2.1", "o", &[ip], ValidTime::from(t(1)))])
        .unwrap();
    let r = s.snapshot().unwrap();
    let origins = r.referrers(ip, Some("Origin"), AsOf::valid(t(2))).unwrap();
    assert_eq!(
        origins.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(),
        ["Origin|observation|nmap|IPAddressV4|internet|192.0.2.1"]
    );
    assert_eq!(r.referrers(ip, Some("IPPort"), AsOf::valid(t(2))).unwrap().len(), 2);
    assert_eq!(r.referrers(ip, Some("IPPor"), AsOf::valid(t(2))).unwrap().len(), 0);
    assert_eq!(r.referrers(ip, None, AsOf::valid(t(2))).unwrap().len(), 3);
}

#[test]
fn transactions_read_their_own_writes_and_abort_on_drop() {
    let (_d, s) = open();
    {
        let mut tx = s.begin().unwrap();
        tx.put("K|a", b"mine", &["K|b".into()], ValidTime::now()).unwrap();
        assert_eq!(tx.get("K|a", AsOf::now()).unwrap().unwrap().doc, b"mine");
        assert_eq!(tx.referrers("K|b", None, AsOf::now()).unwrap().len(), 1);
        // An uncommitted write is invisible to a snapshot taken meanwhile.
        assert!(s.snapshot().unwrap().get("K|a", AsOf::now()).unwrap().is_none());
        // Dropped without commit.
    }
    let r = s.snapshot().unwrap();
    assert!(r.get("K|a", AsOf::now()).unwrap().is_none());
    assert!(r.referrers("K|b", None, AsOf::now()).unwrap().is_empty());
    assert_eq!(r.last_tx().unwrap(), None);
}

#[test]
fn snapshots_are_stable_while_a_writer_commits() {
    let (_d, s) = open();
    transact(&s, &[put("K|a", "old", &[], ValidTime::from(t(0)))]).unwrap();
    let before = s.snapshot().unwrap();
    let writer = std::thread::scope(|scope| {
        let h = scope.spawn(|| transact(&s, &[put("K|a", "new", &[], ValidTime::from(t(0)))]).unwrap());
        // The reader is not blocked and keeps its view.
        assert_eq!(doc_at(&*before, "K|a", AsOf::valid(t(1))).as_deref(), Some("old"));
        h.join().unwrap()
    });
    assert_eq!(doc_at(&*before, "K|a", AsOf::valid(t(1))).as_deref(), Some("old"));
    let after = s.snapshot().unwrap();
    assert_eq!(doc_at(&*after, "K|a", AsOf::valid(t(1))).as_deref(), Some("new"));
    assert_eq!(after.last_tx().unwrap(), Some(writer));
}

#[test]
fn transaction_numbering_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let first = {
        let s = RedbStore::open(&path, &StoreOptions::default()).unwrap();
        transact(&s, &[put("K|a", "x", &[], ValidTime::now())]).unwrap()
    };
    let s = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    let second = transact(&s, &[put("K|a", "y", &[], ValidTime::now())]).unwrap();
    assert_eq!(second.tx_id, first.tx_id + 1);
    assert!(second.tx_time > first.tx_time);
}

#[test]
fn keys_with_nul_and_unicode_stay_apart() {
    let (_d, s) = open();
    let keys = ["T|a", "T|a\0", "T|a\0b", "T|ä|%7C", "T|"];
    transact(&s, &keys.iter().map(|k| put(k, k, &[], ValidTime::from(t(0)))).collect::<Vec<_>>()).unwrap();
    let r = s.snapshot().unwrap();
    for k in keys {
        assert_eq!(doc_at(&*r, k, AsOf::valid(t(1))).as_deref(), Some(k));
        assert_eq!(r.history(k).unwrap().len(), 1, "{k:?}");
    }
    let mut n = 0;
    r.scan_type("T", AsOf::valid(t(1)), &mut |_| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, keys.len());
}

#[test]
fn reads_of_other_keys_do_not_hide_buffered_writes() {
    let (_d, s) = open();
    let mut tx = s.begin().unwrap();
    tx.put("K|a", b"a", &[], ValidTime::now()).unwrap();
    // A read of another key is served without flushing the buffer...
    assert!(tx.get("K|b", AsOf::now()).unwrap().is_none());
    tx.put("K|b", b"b", &["K|a".into()], ValidTime::now()).unwrap();
    // ...and the buffered writes are all still seen, by point reads and by range reads.
    assert_eq!(tx.get("K|a", AsOf::now()).unwrap().unwrap().doc, b"a");
    assert_eq!(tx.get("K|b", AsOf::now()).unwrap().unwrap().doc, b"b");
    assert_eq!(tx.referrers("K|a", None, AsOf::now()).unwrap().len(), 1);
    tx.put("K|a", b"a2", &[], ValidTime::now()).unwrap();
    assert_eq!(tx.get("K|a", AsOf::now()).unwrap().unwrap().doc, b"a2");
    tx.commit().unwrap();
    let r = s.snapshot().unwrap();
    assert_eq!(r.get("K|a", AsOf::now()).unwrap().unwrap().doc, b"a2");
    assert_eq!(r.history("K|a").unwrap().len(), 1, "the same key, valid time and transaction: one version");
}

#[test]
fn batched_reads_agree_with_single_reads_near_and_far() {
    // 300 keys with a version history, some deleted, each referencing its successor: batches
    // that ask for neighbours, for keys far apart (past the engine's gap limit) and for keys
    // that do not exist must answer exactly as one read per key.
    let (_d, store) = open();
    let key = |i: usize| format!("T|{i:04}");
    let mut ops = vec![];
    for i in 0..300 {
        ops.push(put(&key(i), "first", &[&key(i + 1)], ValidTime::from(t(10))));
    }
    transact(&store, &ops).unwrap();
    let mut ops = vec![];
    for i in (0..300).step_by(3) {
        ops.push(put(&key(i), "second", &[], ValidTime::from(t(20))));
    }
    for i in (0..300).step_by(7) {
        ops.push(Op::Delete { key: key(i), valid: ValidTime::from(t(30)) });
    }
    transact(&store, &ops).unwrap();
    // Long histories (more versions than a batched read walks): a new version or a deletion
    // every valid second on a few keys, some transactions back-dated.
    for round in 0..25i64 {
        let mut ops = vec![];
        for i in [40, 41, 150, 299] {
            ops.push(if round % 5 == 4 {
                Op::Delete { key: key(i), valid: ValidTime::from(t(11 + round)) }
            } else {
                put(&key(i), &format!("round {round}"), &[], ValidTime::from(t(11 + round)))
            });
        }
        transact(&store, &ops).unwrap();
    }
    let batches: Vec<Vec<String>> = vec![
        (0..60).map(key).collect(),
        (35..45).chain(148..152).chain(295..300).map(key).collect(),
        (0..300).step_by(41).map(key).collect(),
        [5, 6, 200, 7, 299, 0, 5].into_iter().map(key).collect(),
        vec!["T|missing".into(), key(150), "A|before-all".into(), "Z|after-all".into()],
        vec![],
    ];
    let snap = store.snapshot().unwrap();
    let earlier = snap.history(&key(40)).unwrap()[12].tx_time;
    let times = [t(5), t(15), t(19), t(25), t(35), t(40)];
    let ats = times.iter().map(|&v| AsOf::valid(v)).chain(times.iter().map(|&v| AsOf::at(v, earlier)));
    for at in ats {
        for batch in &batches {
            let asked: Vec<&str> = batch.iter().map(String::as_str).collect();
            let many = snap.get_many(&asked, at).unwrap();
            let single: Vec<_> = asked.iter().map(|k| snap.get(k, at).unwrap()).collect();
            assert_eq!(many, single, "{asked:?} at {at:?}");
            let lists = snap.referrer_keys_many(&asked).unwrap();
            let single: Vec<_> = asked.iter().map(|k| snap.referrer_keys(k).unwrap()).collect();
            assert_eq!(lists, single, "{asked:?}");
        }
    }
    // Inside a transaction, batched reads see its buffered writes.
    let mut tx = store.begin().unwrap();
    tx.put(&key(1), b"buffered", &[], ValidTime::now()).unwrap();
    tx.put("T|new", b"new", &[key(2)], ValidTime::now()).unwrap();
    let got = tx.get_many(&[&key(1), "T|new", &key(2)], AsOf::now()).unwrap();
    assert_eq!(got[0].as_ref().map(|v| v.doc.as_slice()), Some(&b"buffered"[..]));
    assert_eq!(got[1].as_ref().map(|v| v.doc.as_slice()), Some(&b"new"[..]));
    assert_eq!(got[2], tx.get(&key(2), AsOf::now()).unwrap());
    let lists = tx.referrer_keys_many(&[&key(2), &key(3)]).unwrap();
    assert_eq!(lists[0], vec![key(1), "T|new".to_string()]);
}
