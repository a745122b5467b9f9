//! Property: the store agrees with a small in-memory oracle over random operation sequences at
//! random valid times, queried at random (valid, tx) points.

use octo_store::{AsOf, RedbStore, Store, StoreOptions, Timestamp, ValidTime};
use proptest::prelude::*;

const KEYS: &[&str] = &["T|a", "T|b", "T|c", "U|a", "T|a|x"];

#[derive(Debug, Clone)]
enum OpSpec {
    Put { key: usize, doc: u8, refs: Vec<usize>, start: Option<i64>, end: Option<i64> },
    Delete { key: usize, start: Option<i64>, end: Option<i64> },
}

fn op() -> impl Strategy<Value = OpSpec> {
    let span = (proptest::option::weighted(0.9, 0i64..20), proptest::option::weighted(0.3, 1i64..12));
    prop_oneof![
        3 => (0..KEYS.len(), any::<u8>(), proptest::collection::vec(0..KEYS.len(), 0..3), span.clone())
            .prop_map(|(key, doc, refs, (start, len))| OpSpec::Put { key, doc, refs, start, end: start.zip(len).map(|(s, l)| s + l) }),
        1 => (0..KEYS.len(), span).prop_map(|(key, (start, len))| OpSpec::Delete { key, start, end: start.zip(len).map(|(s, l)| s + l) }),
    ]
}

fn vt(x: i64) -> Timestamp {
    Timestamp::from_micros(1_000_000 + x)
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    vt: Timestamp,
    tt: Timestamp,
    doc: Option<Vec<u8>>,
    refs: Vec<String>,
}

/// The model: a flat list of versions and the definition of an as-of read.
#[derive(Default)]
struct Oracle {
    entries: Vec<Entry>,
}

impl Oracle {
    fn at(&self, key: &str, v: Timestamp, t: Timestamp) -> Option<&Entry> {
        self.entries.iter().filter(|e| e.key == key && e.vt <= v && e.tt <= t).max_by_key(|e| (e.vt, e.tt))
    }

    fn live(&self, key: &str, v: Timestamp, t: Timestamp) -> Option<&Entry> {
        self.at(key, v, t).filter(|e| e.doc.is_some())
    }

    fn write(&mut self, e: Entry) {
        self.entries.retain(|x| !(x.key == e.key && x.vt == e.vt && x.tt == e.tt));
        self.entries.push(e);
    }

    fn apply(
        &mut self,
        key: &str,
        doc: Option<Vec<u8>>,
        refs: Vec<String>,
        start: Timestamp,
        end: Option<Timestamp>,
        tt: Timestamp,
    ) {
        let Some(end) = end else {
            self.write(Entry { key: key.into(), vt: start, tt, doc, refs });
            return;
        };
        let restore = self.at(key, end, Timestamp::MAX).filter(|e| e.doc.is_some()).cloned();
        let mut inner: Vec<Timestamp> =
            self.entries.iter().filter(|e| e.key == key && e.vt > start && e.vt < end).map(|e| e.vt).collect();
        inner.sort();
        inner.dedup();
        for v in std::iter::once(start).chain(inner) {
            self.write(Entry { key: key.into(), vt: v, tt, doc: doc.clone(), refs: refs.clone() });
        }
        let (doc, refs) = restore.map_or((None, vec![]), |e| (e.doc, e.refs));
        self.write(Entry { key: key.into(), vt: end, tt, doc, refs });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_agrees_with_oracle(
        txs in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..12),
        queries in proptest::collection::vec((0i64..24, 0usize..40, any::<bool>()), 30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("o.redb"), &StoreOptions { cache_bytes: 1 << 20, ..StoreOptions::default() }).unwrap();
        let mut oracle = Oracle::default();
        let mut tx_times = vec![];
        for ops in &txs {
            let mut tx = store.begin().unwrap();
            let tt = tx.tx_time();
            for op in ops {
                match op {
                    OpSpec::Put { key, doc, refs, start, end } => {
                        let refs: Vec<String> = refs.iter().map(|r| KEYS[*r].to_owned()).collect();
                        let valid = ValidTime { start: start.map(vt), end: end.map(vt) };
                        tx.put(KEYS[*key], &[*doc], &refs, valid).unwrap();
                        oracle.apply(KEYS[*key], Some(vec![*doc]), refs, start.map_or(tt, vt), end.map(vt), tt);
                    }
                    OpSpec::Delete { key, start, end } => {
                        let valid = ValidTime { start: start.map(vt), end: end.map(vt) };
                        tx.delete(KEYS[*key], valid).unwrap();
                        oracle.apply(KEYS[*key], None, vec![], start.map_or(tt, vt), end.map(vt), tt);
                    }
                }
            }
            prop_assert_eq!(tx.commit().unwrap().tx_time, tt);
            tx_times.push(tt);
        }

        let snap = store.snapshot().unwrap();
        for (v, ti, now_valid) in queries {
            // Transaction times: exactly at a commit, just before one, or unbounded.
            let t = match ti {
                i if i < tx_times.len() => Some(tx_times[i]),
                i if i < 2 * tx_times.len() => Some(Timestamp::from_micros(tx_times[i - tx_times.len()].as_micros() - 1)),
                _ => None,
            };
            let v = if now_valid { Timestamp::now() } else { vt(v) };
            let at = AsOf { valid_time: v, tx_time: t };
            let tmax = t.unwrap_or(Timestamp::MAX);
            for key in KEYS {
                let got = snap.get(key, at).unwrap();
                let want = oracle.live(key, v, tmax);
                prop_assert_eq!(got.as_ref().map(|g| (&g.doc, g.valid_time, g.tx_time, &g.refs)),
                    want.map(|w| (w.doc.as_ref().unwrap(), w.vt, w.tt, &w.refs)), "get {} at {:?}", key, at);

                let mut got_refs: Vec<String> = snap.referrers(key, None, at).unwrap().into_iter().map(|v| v.key).collect();
                got_refs.sort();
                let mut want_refs: Vec<String> = KEYS.iter()
                    .filter(|k| oracle.live(k, v, tmax).is_some_and(|e| e.refs.iter().any(|r| r == key)))
                    .map(|k| k.to_string()).collect();
                want_refs.sort();
                let candidates = snap.referrer_keys(key).unwrap();
                let mut among: Vec<String> = snap.referrers_among(key, &candidates, at).unwrap().into_iter().map(|v| v.key).collect();
                among.sort();
                prop_assert_eq!(&among, &want_refs, "referrers_among of {} at {:?}", key, at);
                prop_assert_eq!(got_refs, want_refs, "referrers of {} at {:?}", key, at);
            }
            // Batched reads answer as single ones, in the order asked, repeats and unknown
            // keys included.
            let asked: Vec<&str> = KEYS.iter().rev().copied().chain(["T|a", "V|none", "T|b"]).collect();
            let many = snap.get_many(&asked, at).unwrap();
            prop_assert_eq!(many.len(), asked.len());
            for (key, got) in asked.iter().zip(&many) {
                prop_assert_eq!(got, &snap.get(key, at).unwrap(), "get_many {} at {:?}", key, at);
            }
            let referrer_lists = snap.referrer_keys_many(&asked).unwrap();
            for (key, got) in asked.iter().zip(&referrer_lists) {
                prop_assert_eq!(got, &snap.referrer_keys(key).unwrap(), "referrer_keys_many {}", key);
            }
            let mut scanned = vec![];
            snap.scan_type("T", at, &mut |v| { scanned.push((v.key, v.doc)); true }).unwrap();
            let mut want: Vec<(String, Vec<u8>)> = KEYS.iter().filter(|k| k.starts_with("T|"))
                .filter_map(|k| oracle.live(k, v, tmax).map(|e| (k.to_string(), e.doc.clone().unwrap()))).collect();
            want.sort();
            let mut keys = vec![];
            snap.scan_type_keys("T", at, &mut |k| { keys.push(k.to_owned()); true }).unwrap();
            prop_assert_eq!(&keys, &want.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), "key scan T at {:?}", at);
            prop_assert_eq!(scanned, want, "scan T at {:?}", at);
        }
        for key in KEYS {
            let got: Vec<_> = snap.history(key).unwrap().into_iter().map(|v| (v.valid_time, v.tx_time, v.is_tombstone().then_some(()).map_or(Some(v.doc), |_| None))).collect();
            let mut want: Vec<_> = oracle.entries.iter().filter(|e| e.key == *key).map(|e| (e.vt, e.tt, e.doc.clone())).collect();
            want.sort_by_key(|w| (w.0, w.1));
            prop_assert_eq!(got, want, "history of {}", key);
        }
    }
}
