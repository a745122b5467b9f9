//! The raw log store: every received line, kept as it arrived, per device and per hour, so it
//! can be read back and replayed through classification.
//!
//! Layout: `<dir>/<device>/<YYYY-MM-DD>T<HH>.seg`, partitioned by the hour (UTC) a line was
//! received. A segment is a sequence of blocks; each block is one zstd frame of lines behind a
//! fixed header (magic, lengths, line count, CRC-32 of the compressed bytes, first and last
//! receive time), so a reader skips blocks outside a time range without decompressing them.
//!
//! Durability: [`RawStore::append`] writes every block of a batch, then `fdatasync`s each file it
//! touched (and the directory of a new file) before it returns; one call is one group commit for
//! all the connections whose lines it holds. A crash can tear only blocks written after the last
//! sync: opening a segment for writing again checks its tail and cuts a torn block off, so
//! readers never see a half-written one.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use serde::Serialize;

use crate::time::{civil_from_days, LogTime};

/// How a line reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Plain UDP (RFC 5426).
    Udp,
    /// Plain TCP (RFC 6587).
    Tcp,
    /// TLS (RFC 5425).
    Tls,
    /// RELP, with acknowledgements.
    Relp,
    /// Submitted through the HTTP API or the command line.
    Api,
}

impl Transport {
    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Transport {
        match c {
            0 => Transport::Udp,
            1 => Transport::Tcp,
            2 => Transport::Tls,
            3 => Transport::Relp,
            _ => Transport::Api,
        }
    }

    /// The lower-case name (`udp`, `tls`), as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
            Transport::Api => "api",
        }
    }
}

/// One received line as stored: the bytes exactly as framed, with when, from where and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// When it was received.
    pub received: LogTime,
    /// The sender's address (None when it came through the API).
    pub peer: Option<SocketAddr>,
    /// How it came.
    pub transport: Transport,
    /// The message, without framing.
    pub bytes: Bytes,
}

impl RawLine {
    /// The line as the API and `replay` show it: when, from where, how, the raw text and its
    /// parsed header (timestamps without an offset read in `timezone`).
    pub fn to_json(&self, timezone: crate::time::TimeZoneSpec) -> serde_json::Value {
        let text = String::from_utf8_lossy(&self.bytes);
        let parsed = crate::parse::parse(&text, &crate::parse::ParseContext { received: self.received, timezone });
        serde_json::json!({
            "received": self.received, "peer": self.peer.map(|p| p.to_string()), "transport": self.transport,
            "raw": text, "parsed": parsed.to_json(),
        })
    }
}

const MAGIC: &[u8; 4] = b"OGL1";
const HEADER: usize = 36;
/// Bytes of one entry before its message: time, transport, peer family, address, port, length.
const ENTRY_HEAD: usize = 8 + 1 + 1 + 16 + 2 + 4;
/// Blocks starting in this many last bytes of a segment are CRC-checked when it is reopened for
/// writing (a crash can only have torn the tail; earlier blocks were synced).
const CHECK_TAIL: u64 = 8 << 20;
/// Open segment files kept for appending; beyond this the writer closes them all.
const MAX_OPEN: usize = 512;
const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Settings of the raw store.
#[derive(Debug, Clone, Copy)]
pub struct RawStoreOptions {
    /// zstd level (1 is fast and already shrinks syslog text four- to eightfold).
    pub zstd_level: i32,
}

impl Default for RawStoreOptions {
    fn default() -> Self {
        RawStoreOptions { zstd_level: 1 }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum RawStoreError {
    /// A file operation.
    #[error("raw log store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process writes to this store.
    #[error("raw log store {0} is in use by another process")]
    Locked(PathBuf),
    /// A device name that cannot be a directory name.
    #[error("'{0}' is not a device name: 1–128 letters, digits, '.', '-' or '_', not starting with '.'")]
    BadDevice(String),
    /// A block whose bytes do not match its checksum.
    #[error("raw log store {path}: damaged block at byte {offset}")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where the block starts.
        offset: u64,
    },
}

type Result<T> = std::result::Result<T, RawStoreError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RawStoreError + '_ {
    move |source| RawStoreError::Io { path: path.to_owned(), source }
}

/// Checks a device name: it becomes a directory name.
pub fn validate_device_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(RawStoreError::BadDevice(name.to_owned()))
    }
}

/// The store under one directory.
pub struct RawStore {
    dir: PathBuf,
    options: RawStoreOptions,
    writer: Mutex<Writer>,
    /// Held for the store's life by the writing process: a second writer would interleave
    /// blocks. None for a reader.
    lock: Option<File>,
}

#[derive(Default)]
struct Writer {
    open: HashMap<(String, i64), File>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    entries: Vec<u8>,
}

/// What a segment holds, for listings and retention.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// The device.
    pub device: String,
    /// The first hour it covers (UTC).
    pub hour: LogTime,
    /// Its size on disk.
    pub bytes: u64,
    #[serde(skip)]
    path: PathBuf,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Segments deleted.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl RawStore {
    /// Opens (creating) the store in `dir`; fails when another process has it open.
    pub fn open(dir: &Path, options: RawStoreOptions) -> Result<RawStore> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(RawStoreError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        Ok(RawStore { dir: dir.to_owned(), options, writer: Mutex::new(Writer::default()), lock: Some(lock) })
    }

    /// Opens the store for reading only, beside the process that writes it (the command line
    /// reading what a running server stores). Appends and retention are refused.
    pub fn open_read_only(dir: &Path) -> Result<RawStore> {
        if !dir.is_dir() {
            return Err(io_err(dir)(io::Error::new(io::ErrorKind::NotFound, "no raw log store here")));
        }
        Ok(RawStore {
            dir: dir.to_owned(),
            options: RawStoreOptions::default(),
            writer: Mutex::new(Writer::default()),
            lock: None,
        })
    }

    fn writable(&self) -> Result<()> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(io_err(&self.dir)(io::Error::new(io::ErrorKind::PermissionDenied, "opened for reading only"))),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends lines (each with its device) and makes them durable before returning.
    pub fn append(&self, lines: &[(&str, RawLine)]) -> Result<()> {
        self.writable()?;
        if lines.is_empty() {
            return Ok(());
        }
        for (device, _) in lines {
            validate_device_name(device)?;
        }
        // Group by (device, hour), keeping arrival order inside each group.
        let mut groups: Vec<((&str, i64), Vec<&RawLine>)> = Vec::new();
        let mut index: HashMap<(&str, i64), usize> = HashMap::new();
        for (device, line) in lines {
            let key = (*device, line.received.micros().div_euclid(MICROS_PER_HOUR));
            let i = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(line);
        }
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.open.len() + groups.len() > MAX_OPEN {
            w.open.clear();
        }
        let mut new_dirs = Vec::new();
        for ((device, hour), group) in &groups {
            let block = self.encode_block(&mut w, group)?;
            let key = ((*device).to_owned(), *hour);
            if !w.open.contains_key(&key) {
                let (file, created) = self.open_segment(device, *hour)?;
                if created {
                    new_dirs.push(self.dir.join(device));
                }
                w.open.insert(key.clone(), file);
            }
            let path = self.segment_path(device, *hour);
            let file = w.open.get_mut(&key).ok_or_else(|| io_err(&path)(io::Error::other("segment not open")))?;
            if let Err(e) = file.write_all(&block) {
                // The file may now end in a torn block: drop the handle so that the next append
                // reopens it and cuts the tail off.
                w.open.remove(&key);
                return Err(io_err(&path)(e));
            }
        }
        for ((device, hour), _) in &groups {
            let key = ((*device).to_owned(), *hour);
            if let Some(file) = w.open.get(&key) {
                if let Err(e) = file.sync_data() {
                    w.open.remove(&key);
                    return Err(io_err(&self.segment_path(device, *hour))(e));
                }
            }
        }
        new_dirs.sort();
        new_dirs.dedup();
        for d in new_dirs {
            sync_dir(&d)?;
        }
        Ok(())
    }

    fn encode_block(&self, w: &mut Writer, lines: &[&RawLine]) -> Result<Vec<u8>> {
        let mut entries = std::mem::take(&mut w.entries);
        entries.clear();
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        for l in lines {
            let t = l.received.micros();
            min = min.min(t);
            max = max.max(t);
            entries.extend_from_slice(&t.to_le_bytes());
            entries.push(l.transport.code());
            let (family, addr, port) = match l.peer {
                None => (0u8, Ipv6Addr::UNSPECIFIED, 0u16),
                Some(SocketAddr::V4(a)) => (4, a.ip().to_ipv6_mapped(), a.port()),
                Some(SocketAddr::V6(a)) => (6, *a.ip(), a.port()),
            };
            entries.push(family);
            entries.extend_from_slice(&addr.octets());
            entries.extend_from_slice(&port.to_le_bytes());
            let len = u32::try_from(l.bytes.len()).unwrap_or(u32::MAX);
            entries.extend_from_slice(&len.to_le_bytes());
            entries.extend_from_slice(&l.bytes[..len as usize]);
        }
        let level = self.options.zstd_level;
        let compressor = match &mut w.compressor {
            Some(c) => c,
            None => w.compressor.insert(zstd::bulk::Compressor::new(level).map_err(io_err(&self.dir))?),
        };
        let payload = compressor.compress(&entries).map_err(io_err(&self.dir))?;
        let mut block = Vec::with_capacity(HEADER + payload.len());
        block.extend_from_slice(MAGIC);
        block.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        block.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        block.extend_from_slice(&(lines.len() as u32).to_le_bytes());
        block.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        block.extend_from_slice(&min.to_le_bytes());
        block.extend_from_slice(&max.to_le_bytes());
        block.extend_from_slice(&payload);
        w.entries = entries;
        Ok(block)
    }

    fn segment_path(&self, device: &str, hour: i64) -> PathBuf {
        let days = (hour * MICROS_PER_HOUR).div_euclid(86_400_000_000);
        let (y, m, d) = civil_from_days(days);
        let h = hour.rem_euclid(24);
        self.dir.join(device).join(format!("{y:04}-{m:02}-{d:02}T{h:02}.seg"))
    }

    /// Opens a segment for appending, cutting off a torn tail; says whether it is new.
    fn open_segment(&self, device: &str, hour: i64) -> Result<(File, bool)> {
        let path = self.segment_path(device, hour);
        let dir = self.dir.join(device);
        let created_dir = !dir.exists();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        if created_dir {
            sync_dir(&self.dir)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io_err(&path))?;
        if existed {
            let good = valid_length(&mut file, &path)?;
            let len = file.metadata().map_err(io_err(&path))?.len();
            if good < len {
                tracing::warn!(segment = %path.display(), cut = len - good, "cutting a torn block off the raw log store");
                file.set_len(good).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
        }
        Ok((file, !existed))
    }

    /// The segments of a device (all devices when `None`), oldest first.
    pub fn segments(&self, device: Option<&str>) -> Result<Vec<Segment>> {
        let mut out = Vec::new();
        let devices = match device {
            Some(d) => {
                validate_device_name(d)?;
                vec![d.to_owned()]
            }
            None => self.devices()?,
        };
        for device in devices {
            let dir = self.dir.join(&device);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for e in entries.flatten() {
                let path = e.path();
                let Some(hour) = path.file_name().and_then(|n| n.to_str()).and_then(parse_segment_name) else {
                    continue;
                };
                let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(Segment { device: device.clone(), hour: LogTime(hour * MICROS_PER_HOUR), bytes, path });
            }
        }
        out.sort_by(|a, b| (a.hour, &a.device).cmp(&(b.hour, &b.device)));
        Ok(out)
    }

    /// The devices that have stored lines.
    pub fn devices(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_device_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The stored lines of a device received in `[from, to)`, oldest first.
    pub fn read(&self, device: &str, from: Option<LogTime>, to: Option<LogTime>) -> Result<Lines> {
        let from = from.unwrap_or(LogTime(i64::MIN));
        let to = to.unwrap_or(LogTime(i64::MAX));
        let segments = self
            .segments(Some(device))?
            .into_iter()
            .filter(|s| s.hour.micros().saturating_add(MICROS_PER_HOUR) > from.micros() && s.hour < to)
            .map(|s| s.path)
            .collect();
        Ok(Lines { segments, current: None, pending: Vec::new().into_iter(), from, to, decompressor: None })
    }

    /// Deletes the segments wholly older than `max_age`, then the oldest ones until the store
    /// holds at most `max_bytes`. The current hour's segments are never deleted by size.
    pub fn apply_retention(
        &self,
        now: LogTime,
        max_age: Option<std::time::Duration>,
        max_bytes: Option<u64>,
    ) -> Result<Removed> {
        self.writable()?;
        let mut removed = Removed::default();
        let segments = self.segments(None)?;
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current_hour = now.micros().div_euclid(MICROS_PER_HOUR);
        let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
        let cutoff = max_age.map(|a| now.micros().saturating_sub(i64::try_from(a.as_micros()).unwrap_or(i64::MAX)));
        for s in &segments {
            let hour = s.hour.micros().div_euclid(MICROS_PER_HOUR);
            let too_old = cutoff.is_some_and(|c| s.hour.micros().saturating_add(MICROS_PER_HOUR) <= c);
            let too_big = max_bytes.is_some_and(|m| total > m) && hour < current_hour;
            if !(too_old || too_big) {
                continue;
            }
            w.open.remove(&(s.device.clone(), hour));
            match fs::remove_file(&s.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&s.path)(e)),
            }
            total = total.saturating_sub(s.bytes);
            removed.segments += 1;
            removed.bytes += s.bytes;
        }
        Ok(removed)
    }

    /// The bytes on disk.
    pub fn size(&self) -> Result<u64> {
        Ok(self.segments(None)?.iter().map(|s| s.bytes).sum())
    }
}

/// `YYYY-MM-DDTHH.seg` → hours since the epoch.
fn parse_segment_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".seg")?;
    let b = stem.as_bytes();
    if b.len() != 13 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let y: i64 = stem.get(0..4)?.parse().ok()?;
    let m: u32 = stem.get(5..7)?.parse().ok()?;
    let d: u32 = stem.get(8..10)?.parse().ok()?;
    let h: i64 = stem.get(11..13)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 {
        return None;
    }
    Some(crate::time::days_from_civil(y, m, d) * 24 + h)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[derive(Clone, Copy)]
struct BlockHeader {
    payload: u32,
    raw: u32,
    count: u32,
    crc: u32,
    min: i64,
    max: i64,
}

fn read_header(b: &[u8; HEADER]) -> Option<BlockHeader> {
    if &b[0..4] != MAGIC {
        return None;
    }
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let i = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    Some(BlockHeader { payload: u(4), raw: u(8), count: u(12), crc: u(16), min: i(20), max: i(28) })
}

/// The length of the whole blocks at the start of a segment (its tail checked against the CRCs).
fn valid_length(file: &mut File, path: &Path) -> Result<u64> {
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut pos = 0u64;
    let mut header = [0u8; HEADER];
    let mut payload = Vec::new();
    while pos + HEADER as u64 <= len {
        file.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        file.read_exact(&mut header).map_err(io_err(path))?;
        let Some(h) = read_header(&header) else { break };
        let end = pos + HEADER as u64 + u64::from(h.payload);
        if end > len {
            break;
        }
        if pos + CHECK_TAIL >= len {
            payload.resize(h.payload as usize, 0);
            file.read_exact(&mut payload).map_err(io_err(path))?;
            if crc32fast::hash(&payload) != h.crc {
                break;
            }
        }
        pos = end;
    }
    Ok(pos)
}

/// The lines of a read, in order; an error ends it.
pub struct Lines {
    segments: std::collections::VecDeque<PathBuf>,
    current: Option<(PathBuf, std::io::BufReader<File>, u64)>,
    pending: std::vec::IntoIter<RawLine>,
    from: LogTime,
    to: LogTime,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl Lines {
    /// The next block's lines in range; Ok(false) when the segments are exhausted.
    fn next_block(&mut self) -> Result<bool> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.segments.pop_front() else { return Ok(false) };
                let file = match File::open(&path) {
                    Ok(f) => f,
                    // Removed by retention since the listing.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&path)(e)),
                };
                self.current = Some((path, std::io::BufReader::with_capacity(256 << 10, file), 0));
            }
            let Some((path, reader, offset)) = self.current.as_mut() else { continue };
            let mut header = [0u8; HEADER];
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The end, or a block being written right now.
                    self.current = None;
                    continue;
                }
                Err(e) => return Err(io_err(path)(e)),
            }
            let Some(h) = read_header(&header) else {
                return Err(RawStoreError::Damaged { path: path.clone(), offset: *offset });
            };
            let at = *offset;
            *offset += HEADER as u64 + u64::from(h.payload);
            if h.max < self.from.micros() || h.min >= self.to.micros() {
                reader.seek_relative(i64::from(h.payload)).map_err(io_err(path))?;
                continue;
            }
            let mut payload = vec![0u8; h.payload as usize];
            match reader.read_exact(&mut payload) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.current = None;
                    continue;
                }
                Err(e) => return Err(io_err(path)(e)),
            }
            if crc32fast::hash(&payload) != h.crc {
                return Err(RawStoreError::Damaged { path: path.clone(), offset: at });
            }
            let d = match &mut self.decompressor {
                Some(d) => d,
                None => self.decompressor.insert(zstd::bulk::Decompressor::new().map_err(io_err(path))?),
            };
            let raw = d.decompress(&payload, h.raw as usize).map_err(io_err(path))?;
            let lines = decode_entries(&raw, h.count as usize)
                .ok_or_else(|| RawStoreError::Damaged { path: path.clone(), offset: at })?;
            let (from, to) = (self.from.micros(), self.to.micros());
            self.pending = lines
                .into_iter()
                .filter(|l| l.received.micros() >= from && l.received.micros() < to)
                .collect::<Vec<_>>()
                .into_iter();
            return Ok(true);
        }
    }
}

impl Iterator for Lines {
    type Item = Result<RawLine>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(l) = self.pending.next() {
                return Some(Ok(l));
            }
            match self.next_block() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(e) => {
                    self.segments.clear();
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn decode_entries(raw: &[u8], count: usize) -> Option<Vec<RawLine>> {
    let all = Bytes::copy_from_slice(raw);
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    while i < raw.len() {
        let head = raw.get(i..i + ENTRY_HEAD)?;
        let t = i64::from_le_bytes(head[0..8].try_into().ok()?);
        let transport = Transport::from_code(head[8]);
        let addr = Ipv6Addr::from(<[u8; 16]>::try_from(&head[10..26]).ok()?);
        let port = u16::from_le_bytes([head[26], head[27]]);
        let peer = match head[9] {
            4 => addr.to_ipv4_mapped().map(|v4| SocketAddr::new(IpAddr::V4(v4), port)),
            6 => Some(SocketAddr::new(IpAddr::V6(addr), port)),
            _ => None,
        };
        let len = u32::from_le_bytes(head[28..32].try_into().ok()?) as usize;
        let start = i + ENTRY_HEAD;
        if start + len > raw.len() {
            return None;
        }
        out.push(RawLine { received: LogTime(t), peer, transport, bytes: all.slice(start..start + len) });
        i = start + len;
    }
    (out.len() == count).then_some(out)
}
