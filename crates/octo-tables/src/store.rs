//! The table store: one directory per table, one open segment per table in memory, sealed
//! segments on disk, and the checkpoint that says how far the raw log has been classified.
//!
//! Layout: `<dir>/<table>/<flush>.seg` and `<dir>/checkpoint.json`. A flush seals the open
//! segment of every table under one flush number, syncs them, and only then writes the
//! checkpoint (flush number and, per device, the receive time of the last line classified).
//! Opening the store deletes segments of a flush newer than the checkpoint — a flush that a
//! crash interrupted — so that classifying the raw lines after the checkpoint again adds each
//! row exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::column::{ColumnBuilder, ColumnData, ColumnView};
use crate::schema::{is_fixed, ColumnType, TableSchema, FIXED};
use crate::segment::{self, SegmentError, SegmentMeta};

/// Settings of a table store.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// zstd level of sealed columns.
    pub zstd_level: i32,
    /// The open segments are sealed when they hold this many rows together.
    pub segment_rows: usize,
    /// Decoded columns of sealed segments kept in memory for the next query, in bytes.
    pub cache_bytes: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { zstd_level: 1, segment_rows: 1 << 20, cache_bytes: 256 << 20 }
    }
}

/// One classified line, as a row of its table.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// When it happened (the line's timestamp), µs since the epoch.
    pub time: i64,
    /// When it was received, µs since the epoch.
    pub received: i64,
    /// The device that sent it.
    pub device: &'a str,
    /// Its service.
    pub service: &'a str,
    /// Its message id.
    pub message: &'a str,
    /// Its taxonomy.
    pub taxonomy: &'a str,
    /// Its level.
    pub level: &'a str,
    /// The fields its pattern captured.
    pub fields: &'a [(&'a str, &'a str)],
}

/// How far classification has gone, as of the last flush.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last complete flush.
    pub flush: u64,
    /// Per device, the receive time (µs) of the last line classified before that flush.
    pub devices: BTreeMap<String, i64>,
}

/// Why the table store failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A segment.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// The file system.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// Another process has the store open for writing.
    #[error("{0}: the tables are open in another process")]
    Locked(PathBuf),
    /// Opened for reading only.
    #[error("the tables were opened for reading only")]
    ReadOnly,
    /// No such table.
    #[error("no table named '{0}'")]
    NoTable(String),
    /// A query that cannot be answered as asked.
    #[error("{0}")]
    BadQuery(String),
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> TableError + '_ {
    move |source| TableError::Io { path: path.to_owned(), source }
}

/// The open segment of one table.
pub(crate) struct Builder {
    pub(crate) schema: Arc<TableSchema>,
    pub(crate) rows: usize,
    pub(crate) names: Vec<String>,
    pub(crate) columns: Vec<ColumnBuilder>,
    /// Each column's type.
    types: Vec<ColumnType>,
    index: FxHashMap<String, usize>,
    /// The columns of the last row's fields, in its order: rows of one message name the same
    /// fields in the same order, found again without hashing.
    last_fields: Vec<(String, usize)>,
    time: (i64, i64),
    received: (i64, i64),
}

impl Builder {
    fn new(schema: Arc<TableSchema>, reserve: usize) -> Builder {
        let mut b = Builder {
            schema,
            rows: 0,
            names: Vec::new(),
            columns: Vec::new(),
            types: Vec::new(),
            index: FxHashMap::default(),
            last_fields: Vec::new(),
            time: (i64::MAX, i64::MIN),
            received: (i64::MAX, i64::MIN),
        };
        for (name, ty) in FIXED {
            b.add_column(name, ty);
        }
        for c in &mut b.columns {
            c.reserve(reserve);
        }
        b
    }

    fn add_column(&mut self, name: &str, ty: ColumnType) -> usize {
        let i = self.columns.len();
        self.names.push(name.to_owned());
        self.types.push(ty);
        self.columns.push(ColumnBuilder::new(ty.storage(), self.rows));
        self.index.insert(name.to_owned(), i);
        i
    }

    /// Appends a row; returns how many values did not fit their column's type.
    fn push(&mut self, row: &Row<'_>) -> u64 {
        let mut rejected = 0;
        self.columns[0].push_int(row.time);
        self.columns[1].push_int(row.received);
        for (i, v) in [row.device, row.service, row.message, row.taxonomy, row.level].into_iter().enumerate() {
            self.columns[2 + i].push_text(v);
        }
        for (j, &(name, value)) in row.fields.iter().enumerate() {
            let i = match self.last_fields.get(j) {
                Some((n, i)) if n == name => *i,
                _ => {
                    let i = self.column_of(name);
                    if j < self.last_fields.len() {
                        self.last_fields[j] = (name.to_owned(), i);
                    } else {
                        self.last_fields.push((name.to_owned(), i));
                    }
                    i
                }
            };
            let ty = self.types[i];
            let column = &mut self.columns[i];
            if column.len() != self.rows {
                continue; // the same field twice in one row: the first one counts
            }
            match column {
                ColumnBuilder::Int(_) => match ty.to_int(value) {
                    Some(v) => column.push_int(v),
                    None => {
                        column.push_null();
                        rejected += 1;
                    }
                },
                ColumnBuilder::Text { .. } => column.push_text(value),
            }
        }
        self.rows += 1;
        for c in &mut self.columns[FIXED.len()..] {
            if c.len() < self.rows {
                c.push_null();
            }
        }
        self.time = (self.time.0.min(row.time), self.time.1.max(row.time));
        self.received = (self.received.0.min(row.received), self.received.1.max(row.received));
        rejected
    }

    /// The column of a field, created when new. A field named as a fixed column (`time`,
    /// `service`…) is kept beside it as `_time`.
    fn column_of(&mut self, name: &str) -> usize {
        let renamed;
        let name = if is_fixed(name) {
            renamed = format!("_{name}");
            renamed.as_str()
        } else {
            name
        };
        match self.index.get(name) {
            Some(&i) => i,
            None => self.add_column(name, self.schema.column_type(name)),
        }
    }

    pub(crate) fn view(&self, name: &str) -> Option<ColumnView<'_>> {
        self.index.get(name).map(|&i| self.columns[i].view())
    }

    pub(crate) fn time_range(&self) -> (i64, i64) {
        self.time
    }
}

struct Open {
    tables: BTreeMap<String, Builder>,
    rows: usize,
    /// Rows each table's last sealed segment had: the next one reserves as many, so its columns
    /// do not grow by copying.
    last_rows: BTreeMap<String, usize>,
}

/// Decoded columns of sealed segments, oldest evicted first.
#[derive(Default)]
struct Cache {
    entries: FxHashMap<(PathBuf, String), Arc<ColumnData>>,
    order: VecDeque<(PathBuf, String)>,
    bytes: usize,
}

/// What a table holds, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    /// Its schema.
    pub schema: TableSchema,
    /// Rows stored (sealed and open).
    pub rows: u64,
    /// Sealed segments.
    pub segments: usize,
    /// Bytes of its sealed segments.
    pub bytes: u64,
    /// Every column a row of it has had, with its type.
    pub columns: BTreeMap<String, ColumnType>,
}

impl TableInfo {
    /// The table as the API and the command line list it.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.schema.name, "description": self.schema.description, "rows": self.rows,
            "segments": self.segments, "bytes": self.bytes, "columns": self.columns,
        })
    }
}

/// The tables of one log data directory.
pub struct TableStore {
    dir: PathBuf,
    options: TableOptions,
    schemas: RwLock<BTreeMap<String, Arc<TableSchema>>>,
    open: Mutex<Open>,
    sealed: RwLock<BTreeMap<String, Vec<Arc<SegmentMeta>>>>,
    checkpoint: Mutex<Checkpoint>,
    /// Whether a checkpoint file existed when opened (a store that never flushed has none).
    had_checkpoint: bool,
    cache: Mutex<Cache>,
    rejected: std::sync::atomic::AtomicU64,
    lock: Option<File>,
}

impl TableStore {
    /// Opens (creating) the tables in `dir` for writing; one process at a time.
    pub fn open(dir: &Path, options: TableOptions) -> Result<TableStore, TableError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(TableError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        Self::load(dir, options, Some(lock))
    }

    /// Opens the tables for reading only, beside the process that writes them: what it has
    /// sealed is visible, its open segments are not.
    pub fn open_read_only(dir: &Path, options: TableOptions) -> Result<TableStore, TableError> {
        if !dir.is_dir() {
            return Err(io_err(dir)(io::Error::new(io::ErrorKind::NotFound, "no tables here")));
        }
        Self::load(dir, options, None)
    }

    fn load(dir: &Path, options: TableOptions, lock: Option<File>) -> Result<TableStore, TableError> {
        let cp_path = dir.join("checkpoint.json");
        let (checkpoint, had_checkpoint) = match fs::read(&cp_path) {
            Ok(b) => (
                serde_json::from_slice(&b)
                    .map_err(|e| io_err(&cp_path)(io::Error::new(io::ErrorKind::InvalidData, e)))?,
                true,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Checkpoint::default(), false),
            Err(e) => return Err(io_err(&cp_path)(e)),
        };
        let writable = lock.is_some();
        let mut sealed: BTreeMap<String, Vec<Arc<SegmentMeta>>> = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            let table_dir = entry.path();
            if !table_dir.is_dir() {
                continue;
            }
            let Some(table) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let mut metas = Vec::new();
            for f in fs::read_dir(&table_dir).map_err(io_err(&table_dir))?.flatten() {
                let path = f.path();
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".tmp") && writable {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let Some(flush) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) else { continue };
                if flush > checkpoint.flush {
                    // An interrupted flush: its rows are classified again from the raw log.
                    if writable {
                        fs::remove_file(&path).map_err(io_err(&path))?;
                    }
                    continue;
                }
                match segment::open(&path) {
                    Ok(m) => metas.push(Arc::new(m)),
                    Err(e) => tracing::error!(error = %e, "a table segment cannot be read; it is left out"),
                }
            }
            metas.sort_by_key(|m| m.flush);
            if !metas.is_empty() {
                sealed.insert(table, metas);
            }
        }
        Ok(TableStore {
            dir: dir.to_owned(),
            options,
            schemas: RwLock::new(BTreeMap::new()),
            open: Mutex::new(Open { tables: BTreeMap::new(), rows: 0, last_rows: BTreeMap::new() }),
            sealed: RwLock::new(sealed),
            checkpoint: Mutex::new(checkpoint),
            had_checkpoint,
            cache: Mutex::new(Cache::default()),
            rejected: Default::default(),
            lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the schemas; open segments keep the one they started with until sealed.
    pub fn set_schemas(&self, schemas: impl IntoIterator<Item = TableSchema>) {
        let map = schemas.into_iter().map(|s| (s.name.clone(), Arc::new(s))).collect();
        *self.schemas.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    /// The schema of a table (an untyped one when none is declared).
    pub fn schema(&self, table: &str) -> Arc<TableSchema> {
        self.schemas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(table)
            .cloned()
            .unwrap_or_else(|| Arc::new(TableSchema::untyped(table)))
    }

    /// The checkpoint of the last flush, and whether one was ever written.
    pub fn checkpoint(&self) -> (Checkpoint, bool) {
        let c = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let written = self.had_checkpoint || c.flush > 0;
        (c, written)
    }

    /// Values that did not fit their column's type (stored as nulls), since opening.
    pub fn rejected_values(&self) -> u64 {
        self.rejected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends a row to its table's open segment. Returns whether the open segments have
    /// reached the size at which they should be flushed.
    pub fn append(&self, table: &str, row: &Row<'_>) -> Result<bool, TableError> {
        if self.lock.is_none() {
            return Err(TableError::ReadOnly);
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = &mut *open;
        let builder = match open.tables.get_mut(table) {
            Some(b) => b,
            None => {
                // Checked once per open segment, not per row: the name becomes a directory.
                crate::schema::check_name(table).map_err(TableError::BadQuery)?;
                let reserve = open.last_rows.get(table).copied().unwrap_or(0);
                let b = Builder::new(self.schema(table), reserve);
                open.tables.entry(table.to_owned()).or_insert(b)
            }
        };
        let rejected = builder.push(row);
        if rejected > 0 {
            self.rejected.fetch_add(rejected, std::sync::atomic::Ordering::Relaxed);
        }
        open.rows += 1;
        Ok(open.rows >= self.options.segment_rows)
    }

    /// Rows in the open segments.
    pub fn open_rows(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).rows
    }

    /// Seals every open segment under one flush number and records `progress` (per device,
    /// the receive time of the last line classified) in the checkpoint, after the segments are
    /// durable. Nothing is written when there is nothing new.
    pub fn flush(&self, progress: &BTreeMap<String, i64>) -> Result<(), TableError> {
        if self.lock.is_none() {
            return Err(TableError::ReadOnly);
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut checkpoint = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = checkpoint.clone();
        for (d, &t) in progress {
            let e = next.devices.entry(d.clone()).or_insert(t);
            *e = (*e).max(t);
        }
        if open.rows == 0 && next == *checkpoint {
            return Ok(());
        }
        next.flush += 1;
        let mut written = Vec::new();
        for (table, b) in &open.tables {
            if b.rows == 0 {
                continue;
            }
            let dir = self.dir.join(table);
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                sync_dir(&self.dir)?;
            }
            let meta = SegmentMeta {
                table: table.clone(),
                flush: next.flush,
                rows: b.rows as u64,
                time: b.time,
                received: b.received,
                columns: Vec::new(),
                path: PathBuf::new(),
                bytes: 0,
            };
            // Dictionaries are sealed sorted (see `column`).
            let sorted: Vec<Option<(Vec<String>, Vec<u32>)>> = b
                .columns
                .iter()
                .map(|c| match c.view() {
                    ColumnView::Text { dict, codes } => Some(crate::column::sorted(dict, codes)),
                    ColumnView::Int(_) => None,
                })
                .collect();
            let views: Vec<(&str, ColumnView<'_>)> = b
                .names
                .iter()
                .zip(&b.columns)
                .zip(&sorted)
                .map(|((n, c), s)| match s {
                    Some((dict, codes)) => (n.as_str(), ColumnView::Text { dict, codes }),
                    None => (n.as_str(), c.view()),
                })
                .collect();
            let path = dir.join(format!("{:020}.seg", next.flush));
            written.push(segment::write(&path, meta, &views, self.options.zstd_level)?);
            sync_dir(&dir)?;
        }
        let cp_path = self.dir.join("checkpoint.json");
        let tmp = self.dir.join("checkpoint.json.tmp");
        let body = serde_json::to_vec_pretty(&next).map_err(|e| io_err(&cp_path)(io::Error::other(e)))?;
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &cp_path).map_err(io_err(&cp_path))?;
        sync_dir(&self.dir)?;
        let mut sealed = self.sealed.write().unwrap_or_else(|p| p.into_inner());
        for m in written {
            sealed.entry(m.table.clone()).or_default().push(Arc::new(m));
        }
        drop(sealed);
        let open = &mut *open;
        for (table, b) in &open.tables {
            open.last_rows.insert(table.clone(), b.rows);
        }
        open.tables.clear();
        open.rows = 0;
        *checkpoint = next;
        Ok(())
    }

    /// Deletes sealed segments whose every row was received before `cutoff` (µs); returns the
    /// segments and bytes removed.
    pub fn remove_before(&self, cutoff: i64) -> Result<(u64, u64), TableError> {
        if self.lock.is_none() {
            return Err(TableError::ReadOnly);
        }
        let mut sealed = self.sealed.write().unwrap_or_else(|p| p.into_inner());
        let (mut segments, mut bytes) = (0, 0);
        let mut failure = None;
        for metas in sealed.values_mut() {
            metas.retain(|m| {
                if failure.is_some() || m.received.1 >= cutoff {
                    return true;
                }
                match fs::remove_file(&m.path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        failure = Some(io_err(&m.path)(e));
                        true
                    }
                    _ => {
                        segments += 1;
                        bytes += m.bytes;
                        false
                    }
                }
            });
        }
        sealed.retain(|_, m| !m.is_empty());
        match failure {
            Some(e) => Err(e),
            None => Ok((segments, bytes)),
        }
    }

    /// The tables: those declared and those holding rows.
    pub fn tables(&self) -> Vec<TableInfo> {
        let schemas = self.schemas.read().unwrap_or_else(|p| p.into_inner()).clone();
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let sealed = self.sealed.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = schemas.keys().chain(open.tables.keys()).chain(sealed.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let schema = schemas.get(name).map(|s| (**s).clone()).unwrap_or_else(|| TableSchema::untyped(name));
                let metas = sealed.get(name).map(Vec::as_slice).unwrap_or_default();
                let mut columns: BTreeMap<String, ColumnType> =
                    FIXED.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect();
                columns.extend(schema.columns.iter().map(|(n, t)| (n.clone(), *t)));
                let seen = metas.iter().flat_map(|m| m.columns.iter().map(|c| c.name.clone()));
                let seen_open = open.tables.get(name).map(|b| b.names.clone()).unwrap_or_default();
                for c in seen.chain(seen_open) {
                    let t = schema.column_type(&c);
                    columns.entry(c).or_insert(t);
                }
                TableInfo {
                    rows: metas.iter().map(|m| m.rows).sum::<u64>()
                        + open.tables.get(name).map_or(0, |b| b.rows as u64),
                    segments: metas.len(),
                    bytes: metas.iter().map(|m| m.bytes).sum(),
                    columns,
                    schema,
                }
            })
            .collect()
    }

    /// Runs `f` on a consistent view of a table: its open segment (locked while `f` runs on
    /// it) and its sealed segments at that moment.
    pub(crate) fn with_table<T>(
        &self,
        table: &str,
        f: impl FnOnce(Option<&Builder>, Vec<Arc<SegmentMeta>>) -> Result<T, TableError>,
    ) -> Result<T, TableError> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let sealed = self.sealed.read().unwrap_or_else(|p| p.into_inner()).get(table).cloned().unwrap_or_default();
        let declared = self.schemas.read().unwrap_or_else(|p| p.into_inner()).contains_key(table);
        let builder = open.tables.get(table);
        if builder.is_none() && sealed.is_empty() && !declared {
            return Err(TableError::NoTable(table.to_owned()));
        }
        f(builder, sealed)
    }

    /// A sealed segment's column, from the cache or the file.
    pub(crate) fn column(&self, meta: &SegmentMeta, name: &str) -> Result<Option<Arc<ColumnData>>, TableError> {
        let key = (meta.path.clone(), name.to_owned());
        if let Some(c) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).entries.get(&key) {
            return Ok(Some(c.clone()));
        }
        let loaded = match meta.load(name) {
            Ok(Some(c)) => Arc::new(c),
            Ok(None) => return Ok(None),
            // Removed by retention while the query ran: it holds no rows any more.
            Err(SegmentError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = loaded.heap_bytes();
        if size <= self.options.cache_bytes {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            while cache.bytes + size > self.options.cache_bytes {
                let Some(old) = cache.order.pop_front() else { break };
                if let Some(c) = cache.entries.remove(&old) {
                    cache.bytes -= c.heap_bytes();
                }
            }
            if cache.entries.insert(key.clone(), loaded.clone()).is_none() {
                cache.order.push_back(key);
                cache.bytes += size;
            }
        }
        Ok(Some(loaded))
    }
}

fn sync_dir(dir: &Path) -> Result<(), TableError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}
