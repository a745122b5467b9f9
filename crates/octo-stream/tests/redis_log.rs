//! The event log on a real Redis (127.0.0.1:6379, which `.ci/run` starts when it is not running):
//! forwarding from the embedded store, reading at every position as the store does, waiting,
//! trimming.

use std::sync::Arc;
use std::time::{Duration, Instant};

use octo_store::{EventId, EventPosition, RedbStore, Store, StoreOptions};
use octo_stream::redis_log::RedisLog;

const URL: &str = "redis://127.0.0.1:6379/";

/// A store with `n` transactions of one event each, and a log under a prefix of its own.
fn setup(n: usize) -> (tempfile::TempDir, Arc<RedbStore>, RedisLog, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        RedbStore::open(&dir.path().join("s.redb"), &StoreOptions { cache_bytes: 1 << 20, ..StoreOptions::default() })
            .unwrap(),
    );
    commit(&store, n);
    let prefix = format!("octograph-test-{}-{}", std::process::id(), dir.path().file_name().unwrap().to_string_lossy());
    let log = RedisLog::open(URL, &prefix).expect("redis at 127.0.0.1:6379");
    (dir, store, log, "acme".to_owned())
}

fn commit(store: &RedbStore, n: usize) -> Vec<EventId> {
    (0..n)
        .map(|i| {
            let mut tx = store.begin().unwrap();
            let id = tx.append_event(format!("{{\"n\":{i}}}").as_bytes()).unwrap();
            tx.commit().unwrap();
            id
        })
        .collect()
}

#[test]
fn forwarded_events_read_back_as_the_store_has_them() {
    let (_d, store, log, org) = setup(25);
    assert_eq!(log.forward(&org, &*store, None).unwrap(), 25);
    assert_eq!(log.forward(&org, &*store, None).unwrap(), 0, "forwarding again adds nothing");
    let snap = store.snapshot().unwrap();
    let all = snap.events(EventPosition::Start, 100).unwrap();
    assert_eq!(log.events(&org, EventPosition::Start, 100).unwrap(), all);
    assert_eq!(log.bounds(&org).unwrap(), snap.event_bounds().unwrap());
    // Every position reads what the embedded log reads.
    for e in &all {
        for pos in [EventPosition::After(e.id), EventPosition::AtOrAfterMillis(e.id.ms)] {
            assert_eq!(log.events(&org, pos, 7).unwrap(), snap.events(pos, 7).unwrap(), "{pos:?}");
        }
    }
    // More commits: forwarding resumes where Redis stopped.
    drop(snap);
    commit(&store, 3);
    assert_eq!(log.forward(&org, &*store, None).unwrap(), 3);
    assert_eq!(log.events(&org, EventPosition::Start, 100).unwrap().len(), 28);
    log.delete(&org).unwrap();
    assert_eq!(log.bounds(&org).unwrap(), None);
}

#[test]
fn waiting_wakes_on_new_events_and_times_out_without() {
    let (_d, store, log, org) = setup(1);
    log.forward(&org, &*store, None).unwrap();
    let last = log.last_id(&org).unwrap();
    let t = Instant::now();
    assert_eq!(log.wait(&org, last, Duration::from_millis(200)).unwrap(), last, "nothing new");
    assert!(t.elapsed() >= Duration::from_millis(150));
    let waiter = {
        let log = RedisLog::open(URL, log.key_prefix()).unwrap();
        let org = org.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            (log.wait(&org, last, Duration::from_secs(10)).unwrap(), t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let new = commit(&store, 1);
    log.forward(&org, &*store, None).unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, Some(new[0]));
    assert!(waited < Duration::from_secs(5), "woken by the event, not the timeout: {waited:?}");
    log.delete(&org).unwrap();
}

#[test]
fn redis_trims_to_the_length_asked() {
    let (_d, store, log, org) = setup(300);
    log.forward(&org, &*store, Some(100)).unwrap();
    let held = log.events(&org, EventPosition::Start, 1000).unwrap();
    // `MAXLEN ~` trims whole nodes: about the length, never fewer.
    assert!(held.len() >= 100 && held.len() < 300, "{}", held.len());
    assert_eq!(held.last().map(|e| e.id), store.snapshot().unwrap().event_bounds().unwrap().map(|(_, l)| l));
    log.delete(&org).unwrap();
}

#[test]
fn the_first_entry_held_says_up_to_where_events_were_trimmed() {
    let (_d, store, log, org) = setup(50);
    log.forward(&org, &*store, None).unwrap();
    assert_eq!(log.trimmed_until(&org).unwrap(), None, "nothing trimmed yet");
    let all = store.snapshot().unwrap().events(EventPosition::Start, 100).unwrap();
    // Exact trims, by count then by age.
    assert_eq!(log.trim(&org, Some(40), None).unwrap(), 10);
    assert_eq!(log.trimmed_until(&org).unwrap(), Some(all[9].id));
    assert_eq!(log.events(&org, EventPosition::Start, 100).unwrap(), all[10..]);
    let cut = all[20].id.ms;
    let removed = log.trim(&org, None, Some(cut)).unwrap();
    let held = log.events(&org, EventPosition::Start, 100).unwrap();
    assert_eq!(held.len() as u64, 40 - removed);
    assert!(held.iter().all(|e| e.id.ms >= cut));
    let first = all.iter().position(|e| e.id == held[0].id).unwrap();
    assert_eq!(log.trimmed_until(&org).unwrap(), Some(all[first - 1].id));
    // Redis's own approximate trimming at XADD keeps the same promise.
    commit(&store, 300);
    log.forward(&org, &*store, Some(100)).unwrap();
    let held = log.events(&org, EventPosition::Start, 1000).unwrap();
    let all = store.snapshot().unwrap().events(EventPosition::Start, 1000).unwrap();
    let first = all.iter().position(|e| e.id == held[0].id).unwrap();
    assert_eq!(log.trimmed_until(&org).unwrap(), Some(all[first - 1].id));
    log.delete(&org).unwrap();
}

#[test]
fn a_stream_started_after_the_store_trimmed_knows_the_gap() {
    let (_d, store, log, org) = setup(20);
    let all = store.snapshot().unwrap().events(EventPosition::Start, 100).unwrap();
    assert_eq!(store.trim_events(Some(5), None, 100).unwrap(), 15);
    log.forward(&org, &*store, None).unwrap();
    assert_eq!(log.events(&org, EventPosition::Start, 100).unwrap(), all[15..]);
    assert_eq!(log.trimmed_until(&org).unwrap(), Some(all[14].id));
    log.delete(&org).unwrap();
}

#[test]
fn a_forwarder_that_remembers_a_stale_position_recovers() {
    let (_d, store, log, org) = setup(10);
    let mut known = None;
    assert_eq!(log.forward_from(&org, &*store, &mut known, None).unwrap(), 10);
    let last = known;
    assert!(last.is_some());
    // Another forwarder gets the next events to Redis first.
    commit(&store, 5);
    assert_eq!(log.forward(&org, &*store, None).unwrap(), 5);
    commit(&store, 2);
    // This one still believes Redis ends at `last`: its first XADDs are refused, it re-reads.
    log.forward_from(&org, &*store, &mut known, None).unwrap();
    let all = store.snapshot().unwrap().events(EventPosition::Start, 100).unwrap();
    assert_eq!(log.events(&org, EventPosition::Start, 100).unwrap(), all);
    assert_eq!(known, all.last().map(|e| e.id));
    assert_eq!(log.trimmed_until(&org).unwrap(), None, "and the chain of predecessors is whole");
    log.delete(&org).unwrap();
}
