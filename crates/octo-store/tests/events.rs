//! The event log: written in the writing transaction, ordered, resumable, and waited on.

use std::time::{Duration, Instant};

use octo_store::{EventId, EventPosition, RedbStore, Store, StoreOptions, ValidTime};

fn open() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("e.redb"), &StoreOptions::default()).unwrap();
    (dir, store)
}

fn commit_events(store: &RedbStore, payloads: &[&str]) -> Vec<EventId> {
    let mut tx = store.begin().unwrap();
    tx.put("K|x", b"doc", &[], ValidTime::now()).unwrap();
    let ids = payloads.iter().map(|p| tx.append_event(p.as_bytes()).unwrap()).collect();
    tx.commit().unwrap();
    ids
}

#[test]
fn events_are_ordered_and_resumable() {
    let (_d, s) = open();
    let mut ids = commit_events(&s, &["a", "b", "c"]);
    ids.extend(commit_events(&s, &["d"]));
    ids.extend(commit_events(&s, &["e", "f"]));
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let snap = s.snapshot().unwrap();
    let all = snap.events(EventPosition::Start, 100).unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        all.iter().map(|e| String::from_utf8(e.payload.clone()).unwrap()).collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e", "f"]
    );
    assert_eq!(all[0].tx_id, 1);
    assert_eq!(all[3].tx_id, 2);
    // Resuming after every position gives exactly the rest: no gap, no duplicate.
    for (i, id) in ids.iter().enumerate() {
        let rest = snap.events(EventPosition::After(*id), 100).unwrap();
        assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), ids[i + 1..]);
    }
    assert_eq!(snap.events(EventPosition::Start, 2).unwrap().len(), 2);
    // A bare millisecond: every event at or after it.
    let from_ms = snap.events(EventPosition::AtOrAfterMillis(ids[3].ms), 100).unwrap();
    assert!(from_ms.iter().all(|e| e.id.ms >= ids[3].ms));
    assert!(from_ms.iter().any(|e| e.id == ids[3]));
    assert_eq!(snap.event_bounds().unwrap(), Some((ids[0], ids[5])));
}

#[test]
fn events_exist_only_when_their_transaction_commits() {
    let (_d, s) = open();
    {
        let mut tx = s.begin().unwrap();
        let id = tx.append_event(b"never").unwrap();
        // The writer sees its own event.
        assert_eq!(tx.events(EventPosition::Start, 10).unwrap()[0].id, id);
        // Dropped without commit.
    }
    let snap = s.snapshot().unwrap();
    assert!(snap.events(EventPosition::Start, 10).unwrap().is_empty());
    assert_eq!(snap.event_bounds().unwrap(), None);
}

#[test]
fn ids_keep_increasing_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.redb");
    let first = {
        let s = RedbStore::open(&path, &StoreOptions::default()).unwrap();
        commit_events(&s, &["a", "b"])
    };
    let s = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    let second = commit_events(&s, &["c"]);
    assert!(second[0] > first[1]);
    assert_eq!(s.wait_for_events(None, Duration::ZERO), Some(second[0]));
}

#[test]
fn waiting_consumers_wake_on_commit_without_polling() {
    let (_d, s) = open();
    let first = commit_events(&s, &["a"])[0];
    // Nothing newer: the wait times out and reports the current position.
    let t = Instant::now();
    assert_eq!(s.wait_for_events(Some(first), Duration::from_millis(50)), Some(first));
    assert!(t.elapsed() >= Duration::from_millis(50));
    // Something older than the last event returns at once.
    assert_eq!(s.wait_for_events(None, Duration::from_secs(10)), Some(first));

    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let t = Instant::now();
            let got = s.wait_for_events(Some(first), Duration::from_secs(30));
            (got, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        let next = commit_events(&s, &["b"])[0];
        let (got, waited) = waiter.join().unwrap();
        assert_eq!(got, Some(next));
        assert!(waited < Duration::from_secs(10), "woken by the commit, not the timeout");
    });
    // A transaction without events does not wake anyone.
    let mut tx = s.begin().unwrap();
    tx.put("K|y", b"doc", &[], ValidTime::now()).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.snapshot().unwrap().events(EventPosition::Start, 10).unwrap().len(), 2);
}

#[test]
fn retention_trims_the_oldest_events_and_remembers_where() {
    let (_d, store) = open();
    let ids = commit_events(&store, &["a", "b", "c", "d", "e"]);
    assert_eq!(store.snapshot().unwrap().events_trimmed_until().unwrap(), None);
    // Keep the last three.
    assert_eq!(store.trim_events(Some(3), None, 1000).unwrap(), 2);
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.event_bounds().unwrap(), Some((ids[2], ids[4])));
    assert_eq!(snap.events_trimmed_until().unwrap(), Some(ids[1]));
    let left: Vec<EventId> = snap.events(EventPosition::Start, 10).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(left, ids[2..].to_vec());
    drop(snap);
    // By age, at most `max` per call.
    let later = commit_events(&store, &["f"]);
    assert_eq!(store.trim_events(None, Some(later[0].ms + 1), 2).unwrap(), 2);
    assert_eq!(store.trim_events(None, Some(later[0].ms + 1), 2).unwrap(), 2, "the rest, including f");
    assert_eq!(store.snapshot().unwrap().event_bounds().unwrap(), None);
    assert_eq!(store.snapshot().unwrap().events_trimmed_until().unwrap(), Some(later[0]));
    assert_eq!(store.trim_events(None, None, 10).unwrap(), 0, "no retention, nothing trimmed");
    // Ids never go back, even with the log empty.
    let next = commit_events(&store, &["g"]);
    assert!(next[0] > later[0]);
}

#[test]
fn waiting_consumers_wake_when_events_were_flushed_by_a_read_before_the_commit() {
    let (_d, store) = open();
    let store = std::sync::Arc::new(store);
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let got = store.wait_for_events(None, Duration::from_secs(5));
            (got, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut tx = store.begin().unwrap();
    let id = tx.append_event(b"x").unwrap();
    // A read inside the transaction hands the buffered writes (the event included) to redb.
    tx.get("anything", octo_store::AsOf::now()).unwrap();
    tx.commit().unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, Some(id));
    assert!(waited < Duration::from_secs(2), "woken by the commit, not the timeout: {waited:?}");
}
