//! The table store end to end: rows in, sealed, reopened, queried by filters, groups and time
//! buckets, with the open and sealed segments giving one answer, and a naive evaluation as the
//! judge of random queries.

use std::collections::BTreeMap;

use octo_tables::{Answer, ColumnType, Filter, Query, Row, TableError, TableOptions, TableSchema, TableStore};
use proptest::prelude::*;
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000_000;
const T0: i64 = 1_764_547_200_000_000; // 2025-12-01T00:00:00Z

fn auth() -> TableSchema {
    let mut s = TableSchema::untyped("Auth");
    s.columns.insert("src_ip".into(), ColumnType::Ip);
    s.columns.insert("src_port".into(), ColumnType::Port);
    s.columns.insert("user".into(), ColumnType::User);
    s
}

fn store(dir: &std::path::Path) -> TableStore {
    let s = TableStore::open(dir, TableOptions::default()).unwrap();
    s.set_schemas([auth()]);
    s
}

/// A row as the tests describe it.
#[derive(Debug, Clone)]
struct Line {
    time: i64,
    device: &'static str,
    message: &'static str,
    taxonomy: &'static str,
    src_ip: Option<String>,
    src_port: Option<String>,
    user: Option<&'static str>,
}

fn append(s: &TableStore, l: &Line) {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    if let Some(ip) = &l.src_ip {
        fields.push(("src_ip", ip));
    }
    if let Some(p) = &l.src_port {
        fields.push(("src_port", p));
    }
    if let Some(u) = l.user {
        fields.push(("user", u));
    }
    let service = l.message.split(':').next().unwrap_or("");
    let row = Row {
        time: l.time,
        received: l.time + 1,
        device: l.device,
        service,
        message: l.message,
        taxonomy: l.taxonomy,
        level: "warning",
        fields: &fields,
    };
    s.append("Auth", &row).unwrap();
}

fn failed(time: i64, ip: &str, user: &'static str) -> Line {
    Line {
        time,
        device: "gw1",
        message: "Sshd:failed",
        taxonomy: "Auth.Failure",
        src_ip: Some(ip.into()),
        src_port: Some("4711".into()),
        user: Some(user),
    }
}

fn counts(s: &TableStore, q: &Query) -> Vec<(Vec<Value>, u64)> {
    match s.query(q).unwrap().answer {
        Answer::Groups(g) => g.into_iter().map(|g| (g.key.into_iter().map(|(_, v)| v).collect(), g.count)).collect(),
        Answer::Rows(_) => panic!("rows for a counting query"),
    }
}

fn failures_by_ip() -> Query {
    let mut q = Query::new("Auth");
    q.filters.push("taxonomy=Auth.Failure".parse().unwrap());
    q.group_by.push("src_ip".into());
    q
}

#[test]
fn open_sealed_and_reopened_tables_give_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for i in 0..30 {
        append(&s, &failed(T0 + i, if i % 3 == 0 { "203.0.113.9" } else { "198.51.100.7" }, "root"));
    }
    append(&s, &Line { taxonomy: "Auth.Success", message: "Sshd:accepted", ..failed(T0 + 100, "192.0.2.1", "alice") });
    let expected = vec![(vec![json!("198.51.100.7")], 20), (vec![json!("203.0.113.9")], 10)];
    assert_eq!(counts(&s, &failures_by_ip()), expected, "from the open segment");
    s.flush(&BTreeMap::from([("gw1".to_owned(), T0 + 101)])).unwrap();
    assert_eq!(counts(&s, &failures_by_ip()), expected, "from the sealed segment");
    for i in 0..5 {
        append(&s, &failed(T0 + 200 + i, "203.0.113.9", "root"));
    }
    assert_eq!(
        counts(&s, &failures_by_ip()),
        vec![(vec![json!("198.51.100.7")], 20), (vec![json!("203.0.113.9")], 15)],
        "sealed and open together"
    );
    s.flush(&BTreeMap::new()).unwrap();
    drop(s);
    let s = store(dir.path());
    assert_eq!(
        counts(&s, &failures_by_ip()),
        vec![(vec![json!("198.51.100.7")], 20), (vec![json!("203.0.113.9")], 15)]
    );
    let (cp, written) = s.checkpoint();
    assert!(written);
    assert_eq!(cp.flush, 2);
    assert_eq!(cp.devices["gw1"], T0 + 101);
    let info = s.tables();
    let auth = info.iter().find(|t| t.schema.name == "Auth").unwrap();
    assert_eq!((auth.rows, auth.segments), (36, 2));
    assert_eq!(auth.columns["src_port"], ColumnType::Port);
}

#[test]
fn rows_come_newest_first_with_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for i in 0..10 {
        append(&s, &failed(T0 + i * HOUR, "203.0.113.9", "root"));
        if i == 4 {
            s.flush(&BTreeMap::new()).unwrap();
        }
    }
    let mut q = Query::new("Auth");
    q.limit = 3;
    let Answer::Rows(rows) = s.query(&q).unwrap().answer else { panic!() };
    let times: Vec<&str> = rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert_eq!(times, ["2025-12-01T09:00:00Z", "2025-12-01T08:00:00Z", "2025-12-01T07:00:00Z"]);
    assert_eq!(rows[0]["src_port"], json!(4711));
    assert_eq!(rows[0]["message"], json!("Sshd:failed"));
    assert_eq!(rows[0]["device"], json!("gw1"));
    // A range that falls in the sealed segment only.
    q.from = Some(T0 + HOUR);
    q.to = Some(T0 + 3 * HOUR);
    q.limit = 100;
    let out = s.query(&q).unwrap();
    let Answer::Rows(rows) = out.answer else { panic!() };
    assert_eq!(rows.len(), 2);
    assert_eq!(out.segments, (1, 1), "the open segment is skipped by its time range");
}

#[test]
fn filters_select_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    append(&s, &failed(T0, "10.1.2.3", "root"));
    append(&s, &failed(T0 + 1, "10.200.0.1", "admin"));
    append(&s, &failed(T0 + 2, "192.0.2.1", "Administrator"));
    append(&s, &Line { src_port: Some("22".into()), ..failed(T0 + 3, "2001:db8::1", "bob") });
    append(&s, &Line { src_ip: None, src_port: Some("not a port".into()), user: None, ..failed(T0 + 4, "", "") });
    s.flush(&BTreeMap::new()).unwrap();
    let n = |f: &[&str]| {
        let mut q = Query::new("Auth");
        q.filters = f.iter().map(|f| f.parse::<Filter>().unwrap()).collect();
        s.query(&q).unwrap().matched
    };
    assert_eq!(n(&[]), 5);
    assert_eq!(n(&["src_ip~10.0.0.0/8"]), 2);
    assert_eq!(n(&["src_ip~2001:db8::/32|192.0.2.0/24"]), 2);
    assert_eq!(n(&["src_ip!~10.0.0.0/8"]), 3, "the row without an address passes !~");
    assert_eq!(n(&["src_ip=10.1.2.3|192.0.2.1"]), 2);
    assert_eq!(n(&["src_ip!=10.1.2.3"]), 4);
    assert_eq!(n(&["user~adm*"]), 2, "globs ignore case");
    assert_eq!(n(&["src_port<1024"]), 1);
    assert_eq!(n(&["src_port>=1024"]), 3, "a value that is not a port is stored as none");
    assert_eq!(n(&["src_port=22|4711", "user!=root"]), 3);
    assert_eq!(n(&["device=gw2"]), 0);
    assert_eq!(s.rejected_values(), 1);
    let bad = |f: &str| {
        let mut q = Query::new("Auth");
        q.filters.push(f.parse().unwrap());
        match s.query(&q) {
            Err(TableError::BadQuery(m)) => m,
            other => panic!("{f}: {other:?}"),
        }
    };
    assert!(bad("colour=red").contains("no column 'colour'"));
    assert!(bad("src_port=ssh").contains("holds numbers"));
    assert!(bad("src_port~2*").contains("holds numbers"));
    assert!(bad("src_ip~example").contains("network"));
    assert!(matches!(s.query(&Query::new("Nope")), Err(TableError::NoTable(_))));
}

#[test]
fn time_series_buckets_and_several_group_columns() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for h in 0..3 {
        for i in 0..=h {
            append(&s, &failed(T0 + h * HOUR + i, "203.0.113.9", if i % 2 == 0 { "root" } else { "admin" }));
        }
    }
    let mut q = Query::new("Auth");
    q.bucket = Some(HOUR);
    assert_eq!(
        counts(&s, &q),
        vec![
            (vec![json!("2025-12-01T00:00:00Z")], 1),
            (vec![json!("2025-12-01T01:00:00Z")], 2),
            (vec![json!("2025-12-01T02:00:00Z")], 3)
        ]
    );
    let mut q = Query::new("Auth");
    q.group_by = vec!["user".into(), "src_port".into()];
    assert_eq!(counts(&s, &q), vec![(vec![json!("root"), json!(4711)], 4), (vec![json!("admin"), json!(4711)], 2)]);
}

#[test]
fn an_interrupted_flush_is_undone_on_opening() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    append(&s, &failed(T0, "203.0.113.9", "root"));
    s.flush(&BTreeMap::from([("gw1".to_owned(), T0)])).unwrap();
    drop(s);
    // A segment of flush 2 whose checkpoint was never written, as a crash would leave it.
    let seg = dir.path().join("Auth").join(format!("{:020}.seg", 1));
    let torn = dir.path().join("Auth").join(format!("{:020}.seg", 2));
    std::fs::copy(&seg, &torn).unwrap();
    let s = store(dir.path());
    assert!(!torn.exists());
    assert_eq!(s.query(&Query::new("Auth")).unwrap().matched, 1);
}

#[test]
fn damaged_segments_are_left_out_and_retention_removes_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    append(&s, &failed(T0, "203.0.113.9", "root"));
    s.flush(&BTreeMap::new()).unwrap();
    append(&s, &failed(T0 + 2 * HOUR, "203.0.113.9", "root"));
    s.flush(&BTreeMap::new()).unwrap();
    assert_eq!(s.remove_before(T0 + HOUR).unwrap().0, 1);
    assert_eq!(s.query(&Query::new("Auth")).unwrap().matched, 1);
    drop(s);
    let seg = dir.path().join("Auth").join(format!("{:020}.seg", 2));
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let s = store(dir.path());
    assert_eq!(s.query(&Query::new("Auth")).unwrap().matched, 0);
}

#[test]
fn read_only_stores_see_what_is_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    append(&s, &failed(T0, "203.0.113.9", "root"));
    s.flush(&BTreeMap::new()).unwrap();
    append(&s, &failed(T0 + 1, "203.0.113.9", "root"));
    assert!(matches!(TableStore::open(dir.path(), TableOptions::default()), Err(TableError::Locked(_))));
    let r = TableStore::open_read_only(dir.path(), TableOptions::default()).unwrap();
    assert_eq!(r.query(&Query::new("Auth")).unwrap().matched, 1);
    assert!(matches!(r.flush(&BTreeMap::new()), Err(TableError::ReadOnly)));
}

/// The judge: the filters and groups evaluated row by row.
fn naive(lines: &[Line], q: &Query) -> BTreeMap<Vec<String>, u64> {
    let mut out = BTreeMap::new();
    for l in lines {
        if q.from.is_some_and(|f| l.time < f) || q.to.is_some_and(|t| l.time >= t) {
            continue;
        }
        let value = |c: &str| -> Option<String> {
            match c {
                "device" => Some(l.device.into()),
                "message" => Some(l.message.into()),
                "taxonomy" => Some(l.taxonomy.into()),
                "src_ip" => l.src_ip.clone(),
                "src_port" => l.src_port.clone(),
                "user" => l.user.map(Into::into),
                _ => unreachable!(),
            }
        };
        let pass = q.filters.iter().all(|f| match (value(&f.column), f.op) {
            (None, op) => op == octo_tables::Op::Ne,
            (Some(v), octo_tables::Op::Eq) => f.values.contains(&v),
            (Some(v), octo_tables::Op::Ne) => !f.values.contains(&v),
            _ => unreachable!(),
        });
        if pass {
            let key = q.group_by.iter().map(|g| value(g).unwrap_or_else(|| "null".into())).collect();
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

fn line() -> impl Strategy<Value = Line> {
    (0i64..48, 0usize..3, 0usize..3, proptest::option::of(0u8..4), proptest::option::of(0u16..3), 0usize..3).prop_map(
        |(h, d, m, ip, port, u)| Line {
            time: T0 + h * HOUR,
            device: ["gw1", "gw2", "fw"][d],
            message: ["Sshd:failed", "Sshd:accepted", "Sudo:command"][m],
            taxonomy: ["Auth.Failure", "Auth.Success", "Auth.Failure"][m],
            src_ip: ip.map(|i| format!("203.0.113.{i}")),
            src_port: port.map(|p| (22 + p).to_string()),
            user: [Some("root"), Some("alice"), None][u],
        },
    )
}

fn filter() -> impl Strategy<Value = Filter> {
    let columns = ["device", "message", "taxonomy", "src_ip", "src_port", "user"];
    (0usize..6, any::<bool>(), 0u8..4).prop_map(move |(c, ne, v)| {
        let column = columns[c];
        let value = match column {
            "device" => ["gw1", "gw2", "fw", "x"][v as usize].to_owned(),
            "message" => ["Sshd:failed", "Sshd:accepted", "Sudo:command", "x"][v as usize].to_owned(),
            "taxonomy" => ["Auth.Failure", "Auth.Success", "x", "y"][v as usize].to_owned(),
            "src_ip" => format!("203.0.113.{v}"),
            "src_port" => (22 + v).to_string(),
            _ => ["root", "alice", "bob", "x"][v as usize].to_owned(),
        };
        Filter {
            column: column.into(),
            op: if ne { octo_tables::Op::Ne } else { octo_tables::Op::Eq },
            values: vec![value],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the rows, where the flushes fell and what is asked, the store answers as the
    /// row-by-row evaluation does.
    #[test]
    fn answers_equal_a_row_by_row_evaluation(
        lines in proptest::collection::vec(line(), 0..120),
        flushes in proptest::collection::vec(0usize..120, 0..4),
        filters in proptest::collection::vec(filter(), 0..3),
        group in proptest::collection::vec(prop_oneof![Just("src_ip"), Just("user"), Just("device"), Just("src_port")], 0..3),
        range in proptest::option::of((0i64..48, 0i64..48)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for (i, l) in lines.iter().enumerate() {
            append(&s, l);
            if flushes.contains(&i) {
                s.flush(&BTreeMap::new()).unwrap();
            }
        }
        let mut q = Query::new("Auth");
        q.filters = filters;
        q.group_by = group.iter().map(|g| (*g).to_owned()).collect();
        q.group_by.dedup();
        q.limit = usize::MAX;
        if let Some((a, b)) = range {
            q.from = Some(T0 + a.min(b) * HOUR);
            q.to = Some(T0 + a.max(b) * HOUR);
        }
        // Columns no row has had are unknown to a table without them; the judge has them all.
        let known: Vec<String> = s.tables().iter().flat_map(|t| t.columns.keys().cloned()).collect();
        prop_assume!(q.filters.iter().all(|f| known.contains(&f.column)) && q.group_by.iter().all(|g| known.contains(g)));
        let expected = naive(&lines, &q);
        let got: BTreeMap<Vec<String>, u64> = if q.group_by.is_empty() {
            let m = s.query(&q).unwrap().matched;
            if m == 0 { BTreeMap::new() } else { BTreeMap::from([(vec![], m)]) }
        } else {
            counts(&s, &q)
                .into_iter()
                .map(|(k, n)| (k.into_iter().map(|v| match v { Value::String(s) => s, Value::Null => "null".into(), v => v.to_string() }).collect(), n))
                .collect()
        };
        prop_assert_eq!(got, expected);
    }
}
