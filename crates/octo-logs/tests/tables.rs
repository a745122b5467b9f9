//! Classified lines in their tables, through the whole pipeline: rows typed by the built-in
//! schemas, queried by filters and groups, and every acknowledged line in its table exactly
//! once after a `kill -9` (classified again from the raw store on the next start).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use octo_logs::device::NewDevices;
use octo_logs::{LogTime, LogsConfig, Pipeline, RawLine, Transport};
use octo_tables::{Answer, Query};
use serde_json::{json, Value};

fn config() -> LogsConfig {
    LogsConfig { new_devices: NewDevices::Active, ..LogsConfig::default() }
}

fn line(text: String) -> RawLine {
    RawLine {
        received: LogTime::now(),
        peer: Some("192.0.2.50:514".parse().unwrap()),
        transport: Transport::Api,
        bytes: Bytes::from(text),
    }
}

/// `n` sshd lines of `host`, numbered from `first`: every third an accepted login, the others
/// failures from one of three addresses.
fn sshd_lines(host: &str, first: u64, n: u64) -> Vec<RawLine> {
    (first..first + n)
        .map(|i| {
            let text = if i % 3 == 0 {
                format!(
                    "<38>Dec  1 10:00:00 {host} sshd[{i}]: Accepted password for alice from 192.0.2.7 port {} ssh2",
                    1024 + i
                )
            } else {
                format!(
                    "<38>Dec  1 10:00:00 {host} sshd[{i}]: Failed password for root from 203.0.113.{} port {} ssh2",
                    i % 3,
                    1024 + i
                )
            };
            line(text)
        })
        .collect()
}

fn groups(pipeline: &Pipeline, q: &Query) -> Vec<(Vec<Value>, u64)> {
    match pipeline.tables().query(q).unwrap().answer {
        Answer::Groups(g) => g.into_iter().map(|g| (g.key.into_iter().map(|(_, v)| v).collect(), g.count)).collect(),
        Answer::Rows(_) => panic!("rows"),
    }
}

fn by_message() -> Query {
    let mut q = Query::new("Auth");
    q.group_by = vec!["message".into()];
    q
}

#[test]
fn classified_lines_become_typed_rows_of_their_table() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::open(dir.path(), config()).unwrap();
    pipeline.ingest_blocking(sshd_lines("gw1", 1, 30)).unwrap();
    pipeline.ingest_blocking(vec![line("<38>Dec  1 10:00:00 gw1 app: nothing a service knows".into())]).unwrap();
    pipeline.flush_tables().unwrap();
    assert_eq!(
        groups(&pipeline, &by_message()),
        vec![(vec![json!("Sshd:failed")], 20), (vec![json!("Sshd:accepted")], 10)]
    );
    let mut q = Query::new("Auth");
    q.filters = vec!["taxonomy=Auth.Failure".parse().unwrap()];
    q.group_by = vec!["src_ip".into()];
    assert_eq!(groups(&pipeline, &q), vec![(vec![json!("203.0.113.1")], 10), (vec![json!("203.0.113.2")], 10)]);
    let mut q = Query::new("Auth");
    q.filters = vec!["src_port>=1050".parse().unwrap(), "message=Sshd:accepted".parse().unwrap()];
    q.limit = 1;
    let out = pipeline.tables().query(&q).unwrap();
    assert_eq!(out.matched, 2, "ports are integers: 1051 and 1054");
    let Answer::Rows(rows) = out.answer else { panic!() };
    assert_eq!(rows[0]["src_port"], json!(1054), "of rows of one time, the last received comes first");
    assert_eq!(rows[0]["user"], json!("alice"));
    assert_eq!(rows[0]["device"], json!("gw1"));
    assert_eq!(rows[0]["level"], json!("notice"));
    assert!(rows[0]["time"].as_str().unwrap().contains("-12-01T10:00:00"), "{:?}", rows[0]);
    let auth = pipeline.tables().tables().into_iter().find(|t| t.schema.name == "Auth").unwrap();
    assert_eq!(auth.rows, 30, "the unknown line is in no table");
    // A graceful stop seals what is open; reopening classifies nothing again.
    pipeline.ingest_blocking(sshd_lines("gw1", 31, 3)).unwrap();
    drop(pipeline);
    let pipeline = wait_reopen(dir.path());
    assert_eq!(
        groups(&pipeline, &by_message()),
        vec![(vec![json!("Sshd:failed")], 22), (vec![json!("Sshd:accepted")], 11)]
    );
}

/// Opening waits for the previous pipeline's threads to let go of the stores.
fn wait_reopen(dir: &Path) -> Arc<Pipeline> {
    for _ in 0..200 {
        match Pipeline::open(dir, config()) {
            Ok(p) => return p,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(25)),
        }
    }
    Pipeline::open(dir, config()).unwrap()
}

const DIR_VAR: &str = "OCTO_TABLES_CRASH_DIR";

/// The child of `rows_survive_kill_9_exactly_once`: 60 lines flushed into the tables, 60 more
/// acknowledged but not flushed, then "ready", then it waits to be killed.
#[test]
fn tables_crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let pipeline = Pipeline::open(Path::new(&dir), config()).unwrap();
    pipeline.ingest_blocking(sshd_lines("gw1", 1, 30)).unwrap();
    pipeline.ingest_blocking(sshd_lines("gw2", 1, 30)).unwrap();
    pipeline.flush_tables().unwrap();
    pipeline.ingest_blocking(sshd_lines("gw1", 31, 30)).unwrap();
    pipeline.ingest_blocking(sshd_lines("gw3", 1, 30)).unwrap();
    // Let the classification thread take the lines in (it must not matter whether it has).
    std::thread::sleep(std::time::Duration::from_millis(200));
    println!("ready");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn rows_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tables_crash_child", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(l)) = out.next() {
        if l.ends_with("ready") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let pipeline = wait_reopen(dir.path());
    let mut q = Query::new("Auth");
    q.group_by = vec!["device".into()];
    assert_eq!(
        groups(&pipeline, &q),
        vec![(vec![json!("gw1")], 60), (vec![json!("gw2")], 30), (vec![json!("gw3")], 30)],
        "each acknowledged line is one row"
    );
    drop(pipeline);
    let pipeline = wait_reopen(dir.path());
    assert_eq!(pipeline.tables().query(&Query::new("Auth")).unwrap().matched, 120, "and stays one");
}

#[test]
fn tables_added_beside_an_old_raw_store_start_from_now() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::open(dir.path(), config()).unwrap();
    pipeline.ingest_blocking(sshd_lines("old", 1, 30)).unwrap();
    drop(pipeline);
    // As if the raw store came from a version without tables.
    let p = wait_reopen(dir.path());
    drop(p);
    std::fs::remove_dir_all(dir.path().join("tables")).unwrap();
    let pipeline = wait_reopen(dir.path());
    assert_eq!(pipeline.tables().query(&Query::new("Auth")).unwrap().matched, 0, "old lines are not classified");
    pipeline.ingest_blocking(sshd_lines("new", 1, 3)).unwrap();
    drop(pipeline);
    let pipeline = wait_reopen(dir.path());
    let mut q = Query::new("Auth");
    q.group_by = vec!["device".into()];
    assert_eq!(groups(&pipeline, &q), vec![(vec![json!("new")], 3)], "nor on any later start");
}
