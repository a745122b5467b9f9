//! The raw log store: round trips, time ranges, torn tails, retention, and lines acknowledged
//! before a `kill -9` still there after it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use bytes::Bytes;
use octo_logs::raw_store::{RawStoreError, RawStoreOptions};
use octo_logs::{LogTime, RawLine, RawStore, Transport};

const HOUR: i64 = 3_600_000_000;

fn line(t: i64, text: &str) -> RawLine {
    let peer: SocketAddr = "192.0.2.7:514".parse().unwrap();
    RawLine { received: LogTime(t), peer: Some(peer), transport: Transport::Tcp, bytes: Bytes::from(text.to_owned()) }
}

fn texts(store: &RawStore, device: &str, from: Option<i64>, to: Option<i64>) -> Vec<String> {
    store
        .read(device, from.map(LogTime), to.map(LogTime))
        .unwrap()
        .map(|l| String::from_utf8(l.unwrap().bytes.to_vec()).unwrap())
        .collect()
}

#[test]
fn lines_come_back_per_device_in_order_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
    let t0 = 1_764_000_000_000_000i64; // some hour
    let batch: Vec<(&str, RawLine)> = (0..300)
        .map(|i| (if i % 3 == 0 { "fw1" } else { "web-1.example" }, line(t0 + i * HOUR / 100, &format!("line {i}"))))
        .collect();
    store.append(&batch[..150]).unwrap();
    store.append(&batch[150..]).unwrap();
    let fw: Vec<String> = (0..300).filter(|i| i % 3 == 0).map(|i| format!("line {i}")).collect();
    assert_eq!(texts(&store, "fw1", None, None), fw);
    assert_eq!(texts(&store, "web-1.example", None, None).len(), 200);
    // [from, to) by receive time, across hour segments.
    let got = texts(&store, "fw1", Some(t0 + HOUR / 2), Some(t0 + 2 * HOUR));
    let want: Vec<String> = (50..200).filter(|i| i % 3 == 0).map(|i| format!("line {i}")).collect();
    assert_eq!(got, want);
    assert!(store.segments(Some("fw1")).unwrap().len() >= 3, "partitioned by hour");
    assert_eq!(store.devices().unwrap(), ["fw1", "web-1.example"]);
    let first = store.read("fw1", None, None).unwrap().next().unwrap().unwrap();
    assert_eq!(first.peer, Some("192.0.2.7:514".parse().unwrap()));
    assert_eq!(first.transport, Transport::Tcp);
    // Reopened, the same.
    drop(store);
    let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
    assert_eq!(texts(&store, "fw1", None, None), fw);
    assert!(texts(&store, "nobody", None, None).is_empty());
}

#[test]
fn bad_device_names_and_a_second_process_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
    for bad in ["", "../etc", ".hidden", "a/b", "sp ace"] {
        assert!(matches!(store.append(&[(bad, line(0, "x"))]), Err(RawStoreError::BadDevice(_))), "{bad}");
    }
    assert!(matches!(RawStore::open(dir.path(), RawStoreOptions::default()), Err(RawStoreError::Locked(_))));
}

#[test]
fn a_torn_tail_is_cut_off_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_764_000_000_000_000i64;
    {
        let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
        store.append(&[("d", line(t0, "kept 1")), ("d", line(t0 + 1, "kept 2"))]).unwrap();
    }
    let seg = std::fs::read_dir(dir.path().join("d")).unwrap().next().unwrap().unwrap().path();
    let whole = std::fs::read(&seg).unwrap();
    // A crash in the middle of the next block's write: its header and half its payload.
    {
        let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
        store.append(&[("d", line(t0 + 2, "torn"))]).unwrap();
    }
    let longer = std::fs::read(&seg).unwrap();
    let torn = &longer[..whole.len() + (longer.len() - whole.len()) / 2];
    std::fs::write(&seg, torn).unwrap();
    let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
    // Readers stop before the torn block …
    assert_eq!(texts(&store, "d", None, None), ["kept 1", "kept 2"]);
    // … and the next append cuts it off before writing.
    store.append(&[("d", line(t0 + 3, "after"))]).unwrap();
    assert_eq!(texts(&store, "d", None, None), ["kept 1", "kept 2", "after"]);
    // A damaged (not torn) block is an error, not silence.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let err = store.read("d", None, None).unwrap().find_map(|r| r.err());
    assert!(matches!(err, Some(RawStoreError::Damaged { .. })), "{err:?}");
}

#[test]
fn retention_by_age_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
    let now = 1_764_000_000_000_000i64 / HOUR * HOUR + HOUR / 2;
    for h in 0..10 {
        let lines: Vec<(&str, RawLine)> =
            (0..50).map(|i| ("d", line(now - h * HOUR, &format!("h{h} line {i} {}", "x".repeat(i))))).collect();
        store.append(&lines).unwrap();
    }
    assert_eq!(store.segments(None).unwrap().len(), 10);
    // Older than 5 h 15 min: the segments of hours 6..9 ended before then.
    let removed =
        store.apply_retention(LogTime(now), Some(std::time::Duration::from_secs(5 * 3600 + 900)), None).unwrap();
    assert_eq!(removed.segments, 4);
    assert_eq!(store.segments(None).unwrap().len(), 6);
    // By size: the oldest go first, the current hour stays.
    let one = store.segments(None).unwrap()[0].bytes;
    let removed = store.apply_retention(LogTime(now), None, Some(one * 2)).unwrap();
    assert!(removed.segments >= 3, "{removed:?}");
    let left = store.segments(None).unwrap();
    assert!(left.iter().any(|s| s.hour.micros() == now / HOUR * HOUR), "the current hour is kept");
    assert!(texts(&store, "d", None, None).iter().all(|t| t.starts_with("h0 ") || t.starts_with("h1 ")));
    // Writing goes on in a segment that retention removed.
    store.append(&[("d", line(now, "again"))]).unwrap();
    assert_eq!(texts(&store, "d", Some(now), None).last().map(String::as_str), Some("again"));
}

const DIR_VAR: &str = "OCTO_LOGS_CRASH_DIR";

/// The writer of `acknowledged_lines_survive_kill_9`: appends numbered batches and prints each
/// batch's number once `append` has returned (that is the acknowledgement).
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let store = RawStore::open(std::path::Path::new(&dir), RawStoreOptions::default()).unwrap();
    let start: u64 = std::env::var("OCTO_LOGS_CRASH_START").unwrap().parse().unwrap();
    let mut out = std::io::stdout();
    for batch in start.. {
        let lines: Vec<(&str, RawLine)> = (0..200)
            .map(|i| {
                let dev = if i % 2 == 0 { "a" } else { "b" };
                (dev, line(LogTime::now().micros(), &format!("{batch}:{i} {}", "payload ".repeat(8))))
            })
            .collect();
        store.append(&lines).unwrap();
        writeln!(out, "{batch}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_lines_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged = 0u64;
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_writer_child", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .env("OCTO_LOGS_CRASH_START", (acknowledged + 1).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for some acknowledgements, then kill without warning.
        let want = acknowledged + 20 + round * 7;
        while let Some(Ok(l)) = lines.next() {
            if let Ok(n) = l.trim().parse::<u64>() {
                acknowledged = n;
                if n >= want {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let store = RawStore::open(dir.path(), RawStoreOptions::default()).unwrap();
        for dev in ["a", "b"] {
            let batches: std::collections::BTreeSet<u64> = store
                .read(dev, None, None)
                .unwrap()
                .map(|l| {
                    let l = l.expect("no damaged block after a crash");
                    let text = String::from_utf8(l.bytes.to_vec()).unwrap();
                    text.split(':').next().unwrap().parse::<u64>().unwrap()
                })
                .collect();
            for b in 1..=acknowledged {
                assert!(batches.contains(&b), "round {round}: acknowledged batch {b} of device {dev} lost");
            }
            // At most the batch in flight beyond the acknowledged ones.
            assert!(batches.iter().all(|&b| b <= acknowledged + 1), "round {round}: {batches:?}");
            // Each earlier round's unacknowledged batch may have been stored
            // and then sent again (at least once, as syslog senders retry).
            let count = store.read(dev, None, None).unwrap().count() as u64;
            assert!(
                count >= acknowledged * 100 && count <= (acknowledged + 1 + round) * 100,
                "whole batches only: {count}"
            );
        }
    }
    assert!(acknowledged >= 60);
}
