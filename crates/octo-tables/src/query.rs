//! Queries: rows of a table in a time range that pass every filter, newest first, or their
//! count grouped by columns and by time bucket.
//!
//! A filter is written `column OP value`: `=` and `!=` (several values joined by `|` mean any
//! of them), `<` `<=` `>` `>=` (numbers compare as numbers), `~` and `!~` (a glob with `*`,
//! case-insensitive, or for an IP column a network such as `10.0.0.0/8`). A row without a
//! value in the column passes only `!=` and `!~`.
//!
//! Each segment is scanned on its own: a text condition is evaluated once per distinct value
//! of the segment's dictionary, and the rows then only compare codes; a single grouped text
//! column is counted in an array indexed by code. Sealed segments are scanned in parallel.

use std::cmp::Ordering;
use std::str::FromStr;
use std::sync::Arc;

/// Maps keyed by group keys and texts: foldhash spreads small integer keys well, where FxHash
/// leaves hashbrown's probe tags colliding.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use serde_json::{Map, Value};

use crate::column::{ColumnData, ColumnView, NULL_CODE, NULL_INT};
use crate::schema::{ColumnType, Storage, TableSchema, FIXED};
use crate::segment::SegmentMeta;
use crate::store::{Builder, TableError, TableStore};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal to one of the values.
    Eq,
    /// Equal to none of the values.
    Ne,
    /// Less than.
    Lt,
    /// At most.
    Le,
    /// More than.
    Gt,
    /// At least.
    Ge,
    /// Matches one of the globs or networks.
    Like,
    /// Matches none of them.
    NotLike,
}

/// One condition on a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// The values (several for `=`, `!=`, `~`, `!~`: any of them).
    pub values: Vec<String>,
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .ok_or_else(|| format!("filter '{s}': expected column, operator and value (src_ip=192.0.2.1)"))?;
        let (column, rest) = s.split_at(end);
        const OPS: [(&str, Op); 8] = [
            ("!=", Op::Ne),
            ("!~", Op::NotLike),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("~", Op::Like),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (token, op) = OPS
            .iter()
            .find(|(t, _)| rest.starts_with(t))
            .ok_or_else(|| format!("filter '{s}': the operator must be one of = != < <= > >= ~ !~"))?;
        if column.is_empty() {
            return Err(format!("filter '{s}': no column before the operator"));
        }
        let value = &rest[token.len()..];
        let values = match op {
            Op::Eq | Op::Ne | Op::Like | Op::NotLike => value.split('|').map(str::to_owned).collect(),
            _ => vec![value.to_owned()],
        };
        Ok(Filter { column: column.to_owned(), op: *op, values })
    }
}

/// What to ask of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The table.
    pub table: String,
    /// Rows whose `time` is at least this (µs).
    pub from: Option<i64>,
    /// Rows whose `time` is before this (µs).
    pub to: Option<i64>,
    /// Conditions every row passes.
    pub filters: Vec<Filter>,
    /// Count rows grouped by these columns (at most four) instead of returning them.
    pub group_by: Vec<String>,
    /// Also group by time, in buckets of this many µs (a time series).
    pub bucket: Option<i64>,
    /// At most this many rows or groups.
    pub limit: usize,
}

impl Query {
    /// A query of a whole table, returning its newest 100 rows.
    pub fn new(table: &str) -> Query {
        Query {
            table: table.to_owned(),
            from: None,
            to: None,
            filters: Vec::new(),
            group_by: Vec::new(),
            bucket: None,
            limit: 100,
        }
    }

    /// Whether it counts groups rather than returning rows.
    pub fn counts(&self) -> bool {
        !self.group_by.is_empty() || self.bucket.is_some()
    }
}

/// One group of a counting query.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The grouped columns' values (`time` first for a time series), in the query's order.
    pub key: Vec<(String, Value)>,
    /// Rows in the group.
    pub count: u64,
}

impl Group {
    /// The group as one JSON object: its key columns and `count`.
    pub fn to_json(self) -> Value {
        let mut o: Map<String, Value> = self.key.into_iter().collect();
        o.insert("count".into(), self.count.into());
        Value::Object(o)
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Rows, newest first, each with its non-null columns.
    Rows(Vec<Map<String, Value>>),
    /// Groups, largest first (for a time series: by time, then largest first).
    Groups(Vec<Group>),
}

/// An answer and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The answer.
    pub answer: Answer,
    /// Rows that passed the filters.
    pub matched: u64,
    /// Distinct groups (before `limit`).
    pub groups: u64,
    /// Rows looked at.
    pub scanned: u64,
    /// Segments read (the open one included) and skipped by their time range.
    pub segments: (u64, u64),
}

/// A group key part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyVal {
    Null,
    Int(i64),
    Time(i64),
    Text(String),
}

impl KeyVal {
    fn json(&self) -> Value {
        match self {
            KeyVal::Null => Value::Null,
            KeyVal::Int(i) => (*i).into(),
            KeyVal::Time(t) => time_json(*t),
            KeyVal::Text(s) => s.clone().into(),
        }
    }
}

/// A time as RFC 3339 in UTC.
pub fn time_json(micros: i64) -> Value {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true).into(),
        None => micros.into(),
    }
}

/// The query checked against the schema, with its columns numbered.
struct Plan {
    /// Columns read to scan: `time` first, then filter and group columns.
    needed: Vec<String>,
    filters: Vec<(usize, Filter, ColumnType)>,
    /// Group columns (indexes into `needed`) and whether they are times.
    groups: Vec<(usize, bool)>,
    bucket: Option<i64>,
    from: i64,
    to: i64,
}

/// A column of a chunk, borrowed from the open segment or shared from the cache.
enum Held<'a> {
    Borrowed(ColumnView<'a>),
    Shared(Arc<ColumnData>),
}

impl Held<'_> {
    fn view(&self) -> ColumnView<'_> {
        match self {
            Held::Borrowed(v) => *v,
            Held::Shared(d) => d.view(),
        }
    }
}

/// One compiled condition over a chunk's columns.
enum Test<'a> {
    IntSet { values: &'a [i64], set: Vec<i64>, negate: bool },
    IntCmp { values: &'a [i64], op: Op, bound: i64 },
    Text { codes: &'a [u32], accept: Vec<bool>, null: bool },
}

impl Test<'_> {
    #[inline]
    fn pass(&self, row: usize) -> bool {
        match self {
            Test::IntSet { values, set, negate } => {
                let v = values[row];
                if v == NULL_INT {
                    *negate
                } else {
                    set.contains(&v) != *negate
                }
            }
            Test::IntCmp { values, op, bound } => {
                let v = values[row];
                v != NULL_INT && compare(v.cmp(bound), *op)
            }
            Test::Text { codes, accept, null } => match codes[row] {
                NULL_CODE => *null,
                c => accept[c as usize],
            },
        }
    }
}

fn compare(o: Ordering, op: Op) -> bool {
    match op {
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Like | Op::NotLike => false,
    }
}

/// Whether a row without a value passes.
fn null_passes(op: Op) -> bool {
    matches!(op, Op::Ne | Op::NotLike)
}

/// A case-insensitive glob with `*`.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi].eq_ignore_ascii_case(&s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether a text value passes a condition.
fn text_passes(value: &str, op: Op, values: &[String], nets: &[ipnet::IpNet]) -> bool {
    match op {
        Op::Eq => values.iter().any(|v| v == value),
        Op::Ne => !values.iter().any(|v| v == value),
        Op::Like | Op::NotLike => {
            let hit = if nets.is_empty() {
                values.iter().any(|g| glob(g, value))
            } else {
                value.parse::<std::net::IpAddr>().is_ok_and(|a| nets.iter().any(|n| n.contains(&a)))
            };
            hit == (op == Op::Like)
        }
        _ => {
            let bound = &values[0];
            let o = match (value.parse::<f64>(), bound.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                _ => value.cmp(bound.as_str()),
            };
            compare(o, op)
        }
    }
}

impl Plan {
    fn new(q: &Query, schema: &TableSchema, known: &dyn Fn(&str) -> bool) -> Result<Plan, TableError> {
        let bad = |m: String| TableError::BadQuery(m);
        let mut needed = vec!["time".to_owned()];
        let mut slot = |name: &str| -> Result<usize, TableError> {
            if !known(name) {
                return Err(bad(format!("table {} has no column '{name}'", q.table)));
            }
            Ok(match needed.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    needed.push(name.to_owned());
                    needed.len() - 1
                }
            })
        };
        let mut filters = Vec::new();
        for f in &q.filters {
            let ty = schema.column_type(&f.column);
            let i = slot(&f.column)?;
            if ty.storage() == Storage::Int {
                if matches!(f.op, Op::Like | Op::NotLike) {
                    return Err(bad(format!("column '{}' holds numbers: compare it with = != < <= > >=", f.column)));
                }
                for v in &f.values {
                    if v.trim().parse::<i64>().is_err() {
                        return Err(bad(format!("column '{}' holds numbers, and '{v}' is not one", f.column)));
                    }
                }
            }
            if ty == ColumnType::Ip && matches!(f.op, Op::Like | Op::NotLike) {
                for v in &f.values {
                    if v.parse::<ipnet::IpNet>().is_err() && v.parse::<std::net::IpAddr>().is_err() {
                        return Err(bad(format!(
                            "column '{}' holds addresses: '~' takes a network such as 10.0.0.0/8, not '{v}'",
                            f.column
                        )));
                    }
                }
            }
            filters.push((i, f.clone(), ty));
        }
        if q.group_by.len() > 4 {
            return Err(bad("group by at most four columns".into()));
        }
        let mut groups = Vec::new();
        for g in &q.group_by {
            let ty = schema.column_type(g);
            groups.push((slot(g)?, ty == ColumnType::Datetime));
        }
        if q.bucket.is_some_and(|b| b <= 0) {
            return Err(bad("the time bucket must be longer than zero".into()));
        }
        Ok(Plan {
            needed,
            filters,
            groups,
            bucket: q.bucket,
            from: q.from.unwrap_or(i64::MIN),
            to: q.to.unwrap_or(i64::MAX),
        })
    }

    /// The tests of a chunk; `None` when no row of it can pass.
    fn tests<'a>(&self, cols: &'a [Option<Held<'a>>]) -> Option<Vec<Test<'a>>> {
        let mut tests = Vec::new();
        for (i, f, ty) in &self.filters {
            let Some(col) = &cols[*i] else {
                if null_passes(f.op) {
                    continue;
                }
                return None;
            };
            tests.push(match col.view() {
                ColumnView::Int(values) => {
                    let ints: Vec<i64> = f.values.iter().filter_map(|v| v.trim().parse().ok()).collect();
                    match f.op {
                        Op::Eq | Op::Ne => Test::IntSet { values, set: ints, negate: f.op == Op::Ne },
                        Op::Like | Op::NotLike => return None,
                        op => Test::IntCmp { values, op, bound: *ints.first()? },
                    }
                }
                ColumnView::Text { dict, codes } => {
                    let nets: Vec<ipnet::IpNet> = if *ty == ColumnType::Ip && matches!(f.op, Op::Like | Op::NotLike) {
                        f.values
                            .iter()
                            .filter_map(|v| {
                                v.parse().ok().or_else(|| v.parse::<std::net::IpAddr>().ok().map(Into::into))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let accept: Vec<bool> = dict.iter().map(|d| text_passes(d, f.op, &f.values, &nets)).collect();
                    let null = null_passes(f.op);
                    if !null && !accept.contains(&true) {
                        return None;
                    }
                    Test::Text { codes, accept, null }
                }
            });
        }
        Some(tests)
    }
}

/// How one group column of one chunk holds its values.
#[derive(Clone)]
enum KeyKind {
    /// Codes into this (sorted) dictionary.
    Text(Arc<Vec<String>>),
    /// Integers; times when true.
    Int(bool),
    /// The chunk has no such column.
    Null,
}

/// One group of one chunk: its key in the chunk's terms (codes of sorted dictionaries with -1
/// for none, integers with `i64::MIN` for none; the time bucket last) and its count. Within a
/// chunk, keys order as their values do.
#[derive(Clone, Copy)]
struct Entry {
    chunk: u32,
    key: [i64; 5],
    n: u64,
}

/// A key part as compared and named; the order is [`KeyVal`]'s.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PartRef<'a> {
    Null,
    Int(i64),
    Time(i64),
    Text(&'a str),
}

/// The groups a thread counted: per chunk how its key columns hold values, and sorted runs
/// of entries, one or more per chunk, merged pairwise into one at the end.
#[derive(Default)]
struct Tally {
    kinds: Vec<Vec<KeyKind>>,
    runs: Vec<Vec<Entry>>,
    matched: u64,
    scanned: u64,
    read: u64,
    skipped: u64,
}

impl Tally {
    fn part(&self, e: &Entry, k: usize) -> PartRef<'_> {
        if k == 4 {
            return PartRef::Time(e.key[4]);
        }
        match &self.kinds[e.chunk as usize][k] {
            KeyKind::Text(dict) => match usize::try_from(e.key[k]).ok().and_then(|c| dict.get(c)) {
                None => PartRef::Null, // -1
                Some(s) => PartRef::Text(s),
            },
            KeyKind::Int(_) if e.key[k] == NULL_INT => PartRef::Null,
            KeyKind::Int(true) => PartRef::Time(e.key[k]),
            KeyKind::Int(false) => PartRef::Int(e.key[k]),
            KeyKind::Null => PartRef::Null,
        }
    }

    /// Orders entries as their keys' values: the time bucket first, then the columns.
    fn compare(&self, a: &Entry, b: &Entry, columns: usize, bucket: bool) -> Ordering {
        let first = if bucket { a.key[4].cmp(&b.key[4]) } else { Ordering::Equal };
        first.then_with(|| {
            (0..columns).map(|k| self.part(a, k).cmp(&self.part(b, k))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
        })
    }

    /// Merges the runs into one sorted run, adding the counts of equal keys.
    fn merge_runs(&mut self, columns: usize, bucket: bool) -> Vec<Entry> {
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > 1 {
            let mut next = Vec::with_capacity(runs.len().div_ceil(2));
            let mut it = runs.into_iter();
            while let Some(a) = it.next() {
                match it.next() {
                    Some(b) => next.push(self.merge_two(a, b, columns, bucket)),
                    None => next.push(a),
                }
            }
            runs = next;
        }
        runs.pop().unwrap_or_default()
    }

    fn merge_two(&self, a: Vec<Entry>, b: Vec<Entry>, columns: usize, bucket: bool) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match self.compare(&a[i], &b[j], columns, bucket) {
                Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                Ordering::Equal => {
                    out.push(Entry { n: a[i].n + b[j].n, ..a[i] });
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        out
    }

    /// The merged groups with their keys as values, sorted by key.
    fn finish(mut self, columns: usize, bucket: bool) -> (Vec<(Vec<KeyVal>, u64)>, [u64; 4]) {
        let merged = self.merge_runs(columns, bucket);
        let owned = merged
            .iter()
            .map(|e| {
                let mut key = Vec::with_capacity(columns + 1);
                if bucket {
                    key.push(KeyVal::Time(e.key[4]));
                }
                key.extend((0..columns).map(|k| match self.part(e, k) {
                    PartRef::Null => KeyVal::Null,
                    PartRef::Int(i) => KeyVal::Int(i),
                    PartRef::Time(t) => KeyVal::Time(t),
                    PartRef::Text(s) => KeyVal::Text(s.to_owned()),
                }));
                (key, e.n)
            })
            .collect();
        (owned, [self.matched, self.scanned, self.read, self.skipped])
    }
}

/// Merges lists sorted by key, adding the counts of equal keys.
fn merge_sorted(lists: Vec<Vec<(Vec<KeyVal>, u64)>>) -> Vec<(Vec<KeyVal>, u64)> {
    let mut lists = lists;
    while lists.len() > 1 {
        let b = lists.pop().unwrap_or_default();
        let a = lists.pop().unwrap_or_default();
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
        loop {
            let o = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            match o {
                Ordering::Less => out.extend(a.next()),
                Ordering::Greater => out.extend(b.next()),
                Ordering::Equal => {
                    if let (Some(x), Some(y)) = (a.next(), b.next()) {
                        out.push((x.0, x.1 + y.1));
                    }
                }
            }
        }
        lists.push(out);
    }
    lists.pop().unwrap_or_default()
}

/// A group column of a chunk.
enum KeyCol<'a> {
    Text(&'a [String], &'a [u32]),
    Int(&'a [i64]),
    Null,
}

impl Plan {
    /// Counts the groups of one chunk (a sealed segment: its dictionaries are sorted) into a
    /// sorted run of `tally`.
    fn count(&self, rows: usize, range: (i64, i64), cols: &[Option<Held<'_>>], tally: &mut Tally) {
        tally.read += 1;
        tally.scanned += rows as u64;
        let Some(tests) = self.tests(cols) else { return };
        let Some(ColumnView::Int(time)) = cols[0].as_ref().map(Held::view) else { return };
        let whole = range.0 >= self.from && range.1 < self.to;
        let chunk = tally.kinds.len() as u32;
        let mut kinds = Vec::with_capacity(self.groups.len());
        let mut keys = Vec::with_capacity(self.groups.len());
        // Codes of the open segment, whose dictionary is in arrival order, renumbered into a
        // sorted copy of it.
        let mut renumber: Vec<Option<Vec<u32>>> = Vec::with_capacity(self.groups.len());
        for &(i, is_time) in &self.groups {
            let mut to = None;
            match &cols[i] {
                Some(Held::Shared(d)) => match &**d {
                    ColumnData::Text(t) => {
                        kinds.push(KeyKind::Text(t.dict.clone()));
                        keys.push(KeyCol::Text(&t.dict, &t.codes));
                    }
                    ColumnData::Int(v) => {
                        kinds.push(KeyKind::Int(is_time));
                        keys.push(KeyCol::Int(v));
                    }
                },
                Some(Held::Borrowed(ColumnView::Text { dict, codes })) => {
                    let order = crate::column::sorted_order(dict);
                    let mut map = vec![0u32; dict.len()];
                    for (new, &old) in order.iter().enumerate() {
                        map[old as usize] = new as u32;
                    }
                    to = Some(map);
                    kinds.push(KeyKind::Text(Arc::new(order.iter().map(|&o| dict[o as usize].clone()).collect())));
                    keys.push(KeyCol::Text(dict, codes));
                }
                Some(Held::Borrowed(ColumnView::Int(v))) => {
                    kinds.push(KeyKind::Int(is_time));
                    keys.push(KeyCol::Int(v));
                }
                None => {
                    kinds.push(KeyKind::Null);
                    keys.push(KeyCol::Null);
                }
            }
            renumber.push(to);
        }
        let code = |k: usize, c: u32| -> i64 {
            match (&renumber[k], c) {
                (_, NULL_CODE) => -1,
                (Some(to), c) => to[c as usize] as i64,
                (None, c) => c as i64,
            }
        };
        tally.kinds.push(kinds);
        let passes =
            |r: usize| (whole || (time[r] >= self.from && time[r] < self.to)) && tests.iter().all(|t| t.pass(r));
        let mut run: Vec<Entry> = Vec::new();
        let mut matched = 0;
        let entry = |key: [i64; 5], n: u64| Entry { chunk, key, n };
        match (keys.as_slice(), self.bucket) {
            // One text column: an array of counts per code, which is value order already.
            ([KeyCol::Text(dict, codes)], None) => {
                let mut counts = vec![0u64; dict.len() + 1];
                for r in 0..rows {
                    if passes(r) {
                        let c = codes[r];
                        counts[if c == NULL_CODE { dict.len() } else { code(0, c) as usize }] += 1;
                    }
                }
                let nulls = counts.pop().unwrap_or(0);
                if nulls > 0 {
                    run.push(entry([-1, 0, 0, 0, 0], nulls));
                }
                for (c, n) in counts.into_iter().enumerate() {
                    if n > 0 {
                        run.push(entry([c as i64, 0, 0, 0, 0], n));
                    }
                }
            }
            // A time series alone: an array of counts per bucket.
            ([], Some(b))
                if range.1.min(self.to.saturating_sub(1)).div_euclid(b) - range.0.max(self.from).div_euclid(b)
                    < 1 << 20 =>
            {
                let lo = range.0.max(self.from).div_euclid(b);
                let hi = range.1.min(self.to.saturating_sub(1)).div_euclid(b);
                let mut counts = vec![0u64; (hi - lo + 1).max(0) as usize];
                for (r, t) in time.iter().enumerate().take(rows) {
                    if passes(r) {
                        // A footer whose range belies its rows must not panic the query.
                        if let Some(c) = usize::try_from(t.div_euclid(b) - lo).ok().and_then(|i| counts.get_mut(i)) {
                            *c += 1;
                        }
                    }
                }
                for (i, n) in counts.into_iter().enumerate() {
                    if n > 0 {
                        run.push(entry([0, 0, 0, 0, (lo + i as i64) * b], n));
                    }
                }
            }
            // Anything else: a map keyed by the chunk's codes, then sorted.
            _ => {
                let mut local: FastMap<[i64; 5], u64> = FastMap::default();
                for r in 0..rows {
                    if !passes(r) {
                        continue;
                    }
                    let mut key = [0i64; 5];
                    if let Some(b) = self.bucket {
                        key[4] = time[r].div_euclid(b) * b;
                    }
                    for (k, col) in keys.iter().enumerate() {
                        key[k] = match col {
                            KeyCol::Text(_, codes) => code(k, codes[r]),
                            KeyCol::Int(v) => v[r],
                            KeyCol::Null => 0,
                        };
                    }
                    *local.entry(key).or_default() += 1;
                }
                run = local.into_iter().map(|(key, n)| entry(key, n)).collect();
                // Codes order as values within a chunk: sort by the numbers.
                if self.bucket.is_some() {
                    run.sort_unstable_by_key(|e| (e.key[4], e.key));
                } else {
                    run.sort_unstable_by_key(|e| e.key);
                }
            }
        }
        matched += run.iter().map(|e| e.n).sum::<u64>();
        tally.matched += matched;
        tally.runs.push(run);
    }

    /// The passing rows of a chunk.
    fn select(&self, rows: usize, cols: &[Option<Held<'_>>]) -> Vec<usize> {
        let Some(tests) = self.tests(cols) else { return Vec::new() };
        let Some(ColumnView::Int(time)) = cols[0].as_ref().map(Held::view) else { return Vec::new() };
        (0..rows).filter(|&r| time[r] >= self.from && time[r] < self.to && tests.iter().all(|t| t.pass(r))).collect()
    }

    fn overlaps(&self, range: (i64, i64)) -> bool {
        range.0 <= range.1 && range.1 >= self.from && range.0 < self.to
    }
}

fn builder_cols<'a>(plan: &Plan, b: &'a Builder) -> Vec<Option<Held<'a>>> {
    plan.needed.iter().map(|n| b.view(n).map(Held::Borrowed)).collect()
}

fn sealed_cols(store: &TableStore, plan: &Plan, m: &SegmentMeta) -> Result<Vec<Option<Held<'static>>>, TableError> {
    plan.needed.iter().map(|n| Ok(store.column(m, n)?.map(Held::Shared))).collect()
}

/// A row's non-null columns as JSON.
fn row_json(names: &[String], views: &[ColumnView<'_>], row: usize) -> Map<String, Value> {
    let mut out = Map::new();
    for (n, v) in names.iter().zip(views) {
        let value = match (n.as_str(), v) {
            ("time" | "received", ColumnView::Int(t)) if t[row] != NULL_INT => time_json(t[row]),
            _ => v.json(row),
        };
        if !value.is_null() {
            out.insert(n.clone(), value);
        }
    }
    out
}

impl TableStore {
    /// Answers a query.
    pub fn query(&self, q: &Query) -> Result<Outcome, TableError> {
        let schema = self.schema(&q.table);
        self.with_table(&q.table, |builder, sealed| {
            let known = |name: &str| {
                FIXED.iter().any(|(n, _)| *n == name)
                    || schema.columns.contains_key(name)
                    || builder.is_some_and(|b| b.view(name).is_some())
                    || sealed.iter().any(|m| m.has(name))
            };
            let plan = Plan::new(q, &schema, &known)?;
            if q.counts() {
                self.count(q, &plan, builder, &sealed)
            } else {
                self.rows(q, &plan, builder, &sealed)
            }
        })
    }

    fn count(
        &self,
        q: &Query,
        plan: &Plan,
        builder: Option<&Builder>,
        sealed: &[Arc<SegmentMeta>],
    ) -> Result<Outcome, TableError> {
        let (columns, bucket) = (plan.groups.len(), plan.bucket.is_some());
        let mut lists = Vec::new();
        let mut totals = [0u64; 4];
        let mut add = |(list, t): (Vec<(Vec<KeyVal>, u64)>, [u64; 4])| {
            lists.push(list);
            for (total, x) in totals.iter_mut().zip(t) {
                *total += x;
            }
        };
        if let Some(b) = builder.filter(|b| plan.overlaps(b.time_range())) {
            let mut tally = Tally::default();
            plan.count(b.rows, b.time_range(), &builder_cols(plan, b), &mut tally);
            add(tally.finish(columns, bucket));
        }
        let (todo, skipped): (Vec<&Arc<SegmentMeta>>, Vec<_>) = sealed.iter().partition(|m| plan.overlaps(m.time));
        let skipped_here = skipped.len() as u64 + u64::from(builder.is_some_and(|b| !plan.overlaps(b.time_range())));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(todo.len()).max(1);
        let partials: Vec<Result<_, TableError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let todo = &todo;
                    s.spawn(move || {
                        let mut tally = Tally::default();
                        for m in todo.iter().skip(t).step_by(threads) {
                            let cols = sealed_cols(self, plan, m)?;
                            plan.count(m.rows as usize, m.time, &cols, &mut tally);
                        }
                        Ok(tally.finish(columns, bucket))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(TableError::BadQuery("a query thread failed".into()))))
                .collect()
        });
        for p in partials {
            add(p?);
        }
        let [matched, scanned, read, skipped] = totals;
        let skipped = skipped + skipped_here;
        let mut groups = merge_sorted(lists);
        let distinct = groups.len() as u64;
        if bucket {
            groups.sort_by(|a, b| a.0[0].cmp(&b.0[0]).then(b.1.cmp(&a.1)).then_with(|| a.0.cmp(&b.0)));
        } else {
            // Largest first; only the first `limit` need ordering.
            let by_count = |a: &(Vec<KeyVal>, u64), b: &(Vec<KeyVal>, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
            if groups.len() > q.limit && q.limit > 0 {
                groups.select_nth_unstable_by(q.limit - 1, by_count);
                groups.truncate(q.limit);
            }
            groups.sort_by(by_count);
        }
        let mut names: Vec<&str> = Vec::new();
        if plan.bucket.is_some() {
            names.push("time");
        }
        names.extend(q.group_by.iter().map(String::as_str));
        let answer = groups
            .into_iter()
            .take(q.limit)
            .map(|(key, count)| Group {
                key: names.iter().zip(key).map(|(n, k)| ((*n).to_owned(), k.json())).collect(),
                count,
            })
            .collect();
        Ok(Outcome { answer: Answer::Groups(answer), matched, groups: distinct, scanned, segments: (read, skipped) })
    }

    fn rows(
        &self,
        q: &Query,
        plan: &Plan,
        builder: Option<&Builder>,
        sealed: &[Arc<SegmentMeta>],
    ) -> Result<Outcome, TableError> {
        let (mut matched, mut scanned, mut read, mut skipped) = (0u64, 0u64, 0u64, 0u64);
        // The newest rows found so far, newest first.
        let mut found: Vec<(Newest, Map<String, Value>)> = Vec::new();
        if let Some(b) = builder {
            if plan.overlaps(b.time_range()) {
                read += 1;
                scanned += b.rows as u64;
                let cols = builder_cols(plan, b);
                let rows = plan.select(b.rows, &cols);
                matched += rows.len() as u64;
                let views: Vec<ColumnView<'_>> = b.columns.iter().map(|c| c.view()).collect();
                keep_newest(&mut found, q.limit, u64::MAX, rows, &b.names, &views);
            } else {
                skipped += 1;
            }
        }
        let mut order: Vec<&Arc<SegmentMeta>> = sealed.iter().collect();
        order.sort_by_key(|m| std::cmp::Reverse(m.time.1));
        for (i, m) in order.iter().enumerate() {
            // Segments come newest first: once `limit` rows newer than this one's newest are
            // found, it and all after it add nothing.
            if found.len() >= q.limit && found.last().is_some_and(|(n, _)| n.0 > m.time.1) {
                skipped += (order.len() - i) as u64;
                break;
            }
            if !plan.overlaps(m.time) {
                skipped += 1;
                continue;
            }
            read += 1;
            scanned += m.rows;
            let cols = sealed_cols(self, plan, m)?;
            let rows = plan.select(m.rows as usize, &cols);
            matched += rows.len() as u64;
            if rows.is_empty() {
                continue;
            }
            let names: Vec<String> = m.columns.iter().map(|c| c.name.clone()).collect();
            let mut all = Vec::with_capacity(names.len());
            for n in &names {
                match self.column(m, n)? {
                    Some(c) if c.len() == m.rows as usize => all.push(c),
                    _ => break, // removed by retention while being read
                }
            }
            if all.len() != names.len() {
                continue;
            }
            let views: Vec<ColumnView<'_>> = all.iter().map(|c| c.view()).collect();
            keep_newest(&mut found, q.limit, m.flush, rows, &names, &views);
        }
        Ok(Outcome {
            groups: 0,
            answer: Answer::Rows(found.into_iter().map(|(_, r)| r).collect()),
            matched,
            scanned,
            segments: (read, skipped),
        })
    }
}

/// Where a row stands among the newest: its time, then its receive time, then its place in the
/// order rows were appended (segment, row), so rows of one second come out last-in first.
type Newest = (i64, i64, u64, usize);

/// Adds a chunk's passing rows to the newest `limit` found so far; JSON is made only for rows
/// that can make it.
fn keep_newest(
    found: &mut Vec<(Newest, Map<String, Value>)>,
    limit: usize,
    chunk: u64,
    mut rows: Vec<usize>,
    names: &[String],
    views: &[ColumnView<'_>],
) {
    let (ColumnView::Int(times), Some(ColumnView::Int(received))) = (views[0], views.get(1).copied()) else { return };
    let key = |r: usize| (times[r], received[r], chunk, r);
    rows.sort_by_key(|&r| std::cmp::Reverse(key(r)));
    rows.truncate(limit);
    for r in rows {
        if found.len() >= limit && found.last().is_some_and(|(n, _)| *n >= key(r)) {
            break;
        }
        found.push((key(r), row_json(names, views, r)));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let f: Filter = "src_ip=192.0.2.1|192.0.2.2".parse().unwrap();
        assert_eq!((f.column.as_str(), f.op, f.values.len()), ("src_ip", Op::Eq, 2));
        let f: Filter = "src_port>=1024".parse().unwrap();
        assert_eq!((f.op, f.values[0].as_str()), (Op::Ge, "1024"));
        let f: Filter = "user!~adm*".parse().unwrap();
        assert_eq!(f.op, Op::NotLike);
        assert!("src_ip".parse::<Filter>().is_err());
        assert!("=x".parse::<Filter>().is_err());
        assert!("a^b".parse::<Filter>().is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("adm*", "Administrator"));
        assert!(glob("*fail*", "Auth.Failure"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("*", ""));
        assert!(!glob("x", "xy"));
    }
}
