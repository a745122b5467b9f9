//! Durability: a transaction acknowledged before `kill -9` is there after reopening; one that was
//! not acknowledged is either entirely there (its commit finished, the ack was not yet printed) or
//! entirely absent. The writer is this test binary re-executed as a child process.
//!
//! Most commits are made durable by the commit journal and only later by redb itself, so the
//! kills land both between checkpoints (the journal is replayed) and across them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use octo_store::{AsOf, Reader, RedbStore, Store, StoreOptions, Timestamp, ValidTime};

const KEYS_PER_TX: usize = 40;
const DIR_VAR: &str = "OCTO_CRASH_TEST_DIR";

/// The child: commits transactions forever, printing `ACK n` after each commit returns.
#[test]
#[ignore = "child process of acknowledged_commits_survive_kill_9"]
fn crash_writer_child() {
    let dir = std::env::var(DIR_VAR).expect("run by acknowledged_commits_survive_kill_9");
    let store = RedbStore::open(&std::path::Path::new(&dir).join("c.redb"), &StoreOptions::default()).unwrap();
    let start = store.snapshot().unwrap().last_tx().unwrap().map_or(0, |r| r.tx_id);
    let mut out = std::io::stdout().lock();
    for n in start + 1.. {
        let mut tx = store.begin().unwrap();
        for j in 0..KEYS_PER_TX {
            let doc = format!("{{\"tx\":{n},\"pad\":\"{}\"}}", "x".repeat(200));
            tx.put(&format!("C|{n}|{j}"), doc.as_bytes(), &[format!("C|{}|0", n.saturating_sub(1))], ValidTime::now())
                .unwrap();
        }
        tx.append_event(format!("tx {n}").as_bytes()).unwrap();
        let receipt = tx.commit().unwrap();
        assert_eq!(receipt.tx_id, n);
        writeln!(out, "ACK {n}").unwrap();
        out.flush().unwrap();
    }
}

fn tx_keys_present(snap: &dyn Reader, n: u64) -> usize {
    (0..KEYS_PER_TX).filter(|j| snap.get(&format!("C|{n}|{j}"), AsOf::valid(Timestamp::MAX)).unwrap().is_some()).count()
}

#[test]
fn acknowledged_commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked_total = 0u64;
    let journal = dir.path().join("c.redb.journal");
    let mut replayed = 0;
    // Several crash/recover rounds on the same file, killed after different amounts of work;
    // the last runs past a checkpoint (every five seconds).
    for (round, (wait_acks, run_for)) in [(5u64, 0u64), (23, 0), (61, 0), (1, 6_500)].into_iter().enumerate() {
        let started = Instant::now();
        let mut child = Command::new(&exe)
            .args(["crash_writer_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked < acked_total + wait_acks || started.elapsed() < Duration::from_millis(run_for) {
            assert!(Instant::now() < deadline, "writer too slow");
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(n) = line.strip_prefix("ACK ") {
                        acked = n.parse().unwrap();
                    }
                }
                _ => panic!("writer exited early in round {round}"),
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acks printed before the kill but not yet read.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACK ") {
                acked = n.parse().unwrap();
            }
        }

        if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
            replayed += 1;
        }
        let store = RedbStore::open(&dir.path().join("c.redb"), &StoreOptions::default()).unwrap();
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0, "the journal is emptied once applied");
        let snap = store.snapshot().unwrap();
        let last = snap.last_tx().unwrap().expect("acknowledged transactions exist").tx_id;
        assert!(last >= acked, "round {round}: acknowledged tx {acked} lost (last durable {last})");
        assert!(last <= acked + 1, "round {round}: more than the in-flight transaction appeared");
        for n in 1..=last {
            assert_eq!(tx_keys_present(&*snap, n), KEYS_PER_TX, "round {round}: tx {n} is partial or missing");
        }
        // Nothing of any later transaction is there.
        assert_eq!(tx_keys_present(&*snap, last + 1), 0, "round {round}: uncommitted writes visible");
        assert_eq!(
            snap.referrers(&format!("C|{}|0", last.saturating_sub(1)), Some("C"), AsOf::valid(Timestamp::MAX))
                .unwrap()
                .len(),
            if last >= 1 { KEYS_PER_TX } else { 0 }
        );
        // Exactly one event per durable transaction, in order.
        let events = snap.events(octo_store::EventPosition::Start, usize::MAX).unwrap();
        assert_eq!(events.len() as u64, last, "round {round}: events and transactions disagree");
        assert!(events.windows(2).all(|w| w[0].id < w[1].id && w[0].tx_id + 1 == w[1].tx_id));
        acked_total = last;
    }
    assert!(replayed > 0, "no kill left journal records to replay: the test did not reach the journal");
}

/// A clean close leaves nothing to replay; a journal left beside a store file that is gone
/// is not applied to the new store made in its place.
#[test]
fn a_clean_close_empties_the_journal_and_a_new_store_ignores_a_stray_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.redb");
    let journal = dir.path().join("g.redb.journal");
    let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    for i in 0..3 {
        let mut tx = store.begin().unwrap();
        tx.put(&format!("K|{i}"), b"{}", &[], ValidTime::now()).unwrap();
        tx.commit().unwrap();
    }
    let journalled = std::fs::metadata(&journal).unwrap().len();
    assert!(journalled > 0, "quick commits go through the journal");
    let file = std::fs::metadata(&path).unwrap().len();
    assert_eq!(RedbStore::disk_bytes(&path).unwrap(), file + journalled, "sizes count the journal too");
    let kept = std::fs::read(&journal).unwrap();
    drop(store);
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
    let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    assert_eq!(store.snapshot().unwrap().last_tx().unwrap().unwrap().tx_id, 3);
    drop(store);
    std::fs::remove_file(&journal).unwrap();
    assert_eq!(RedbStore::disk_bytes(&path).unwrap(), std::fs::metadata(&path).unwrap().len(), "no journal: the file");

    std::fs::remove_file(&path).unwrap();
    std::fs::write(&journal, kept).unwrap();
    let store = RedbStore::open(&path, &StoreOptions::default()).unwrap();
    assert!(store.snapshot().unwrap().last_tx().unwrap().is_none());
    assert!(store.snapshot().unwrap().get("K|0", AsOf::now()).unwrap().is_none());
}
