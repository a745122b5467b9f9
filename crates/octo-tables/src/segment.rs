//! Segment files: the sealed, immutable part of a table.
//!
//! ```text
//! "OGT1"  column chunk …  footer (JSON)  footer length (u32 LE)  CRC-32 of footer (u32 LE)  "OGT1"
//! ```
//!
//! Each column chunk is one zstd frame of [`crate::column::encode`]'s bytes; the footer lists
//! the columns (name, storage, offset, length, CRC-32 of the compressed bytes) and the
//! segment's row count, time ranges and flush number. A reader reads the footer once and then
//! only the chunks of the columns a query names. Files are written beside their final name,
//! synced and renamed, so a segment is either whole or absent.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::column::{decode, encode, ColumnData, ColumnView};
use crate::schema::Storage;

const MAGIC: &[u8; 4] = b"OGT1";

/// Where one column's chunk is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMeta {
    /// The column.
    pub name: String,
    /// How it is stored.
    pub storage: Storage,
    /// Offset of its compressed chunk in the file.
    pub offset: u64,
    /// Length of the chunk.
    pub len: u64,
    /// CRC-32 of the chunk.
    pub crc: u32,
    /// Length of the chunk once decompressed.
    pub raw_len: u64,
}

/// What a segment's footer says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// The table.
    pub table: String,
    /// The flush that sealed it (see [`crate::store::Checkpoint`]).
    pub flush: u64,
    /// Rows.
    pub rows: u64,
    /// Smallest and largest `time` (µs).
    pub time: (i64, i64),
    /// Smallest and largest `received` (µs).
    pub received: (i64, i64),
    /// Its columns.
    pub columns: Vec<ColumnMeta>,
    /// Its file (not stored: where it was read from).
    #[serde(skip)]
    pub path: PathBuf,
    /// Size of the file in bytes (not stored).
    #[serde(skip)]
    pub bytes: u64,
}

/// Why a segment cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The file system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The bytes are not a whole segment.
    #[error("{path}: not a table segment or damaged ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io { path: path.to_owned(), source }
}

/// Writes a segment to `path` (atomically: a temporary file, synced, then renamed) and returns
/// its footer.
pub fn write(
    path: &Path,
    mut meta: SegmentMeta,
    columns: &[(&str, ColumnView<'_>)],
    zstd_level: i32,
) -> Result<SegmentMeta, SegmentError> {
    let tmp = path.with_extension("tmp");
    let mut body = Vec::new();
    body.extend_from_slice(MAGIC);
    meta.columns.clear();
    for (name, view) in columns {
        let raw = encode(*view);
        let packed = zstd::bulk::compress(&raw, zstd_level).map_err(io_err(path))?;
        meta.columns.push(ColumnMeta {
            name: (*name).to_owned(),
            storage: match view {
                ColumnView::Int(_) => Storage::Int,
                ColumnView::Text { .. } => Storage::Text,
            },
            offset: body.len() as u64,
            len: packed.len() as u64,
            crc: crc32fast::hash(&packed),
            raw_len: raw.len() as u64,
        });
        body.extend_from_slice(&packed);
    }
    let footer = serde_json::to_vec(&meta).map_err(|e| io_err(path)(io::Error::other(e)))?;
    body.extend_from_slice(&footer);
    body.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    body.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
    body.extend_from_slice(MAGIC);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&body).and_then(|_| f.sync_all()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    meta.path = path.to_owned();
    meta.bytes = body.len() as u64;
    Ok(meta)
}

/// Reads a segment's footer.
pub fn open(path: &Path) -> Result<SegmentMeta, SegmentError> {
    let corrupt = |reason: &str| SegmentError::Corrupt { path: path.to_owned(), reason: reason.into() };
    let f = File::open(path).map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    if size < 16 {
        return Err(corrupt("too short"));
    }
    let mut tail = [0u8; 12];
    f.read_exact_at(&mut tail, size - 12).map_err(io_err(path))?;
    if &tail[8..] != MAGIC {
        return Err(corrupt("no end marker"));
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    let crc = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
    if len + 16 > size {
        return Err(corrupt("footer length"));
    }
    let mut footer = vec![0u8; len as usize];
    f.read_exact_at(&mut footer, size - 12 - len).map_err(io_err(path))?;
    if crc32fast::hash(&footer) != crc {
        return Err(corrupt("footer checksum"));
    }
    let mut meta: SegmentMeta = serde_json::from_slice(&footer).map_err(|e| corrupt(&e.to_string()))?;
    if meta.columns.iter().any(|c| c.offset.saturating_add(c.len) > size - 12 - len) {
        return Err(corrupt("a column lies outside the file"));
    }
    meta.path = path.to_owned();
    meta.bytes = size;
    Ok(meta)
}

impl SegmentMeta {
    /// Reads and decodes one column; `None` when the segment has no such column.
    pub fn load(&self, name: &str) -> Result<Option<ColumnData>, SegmentError> {
        let Some(c) = self.columns.iter().find(|c| c.name == name) else { return Ok(None) };
        let path = &self.path;
        let corrupt = |reason: String| SegmentError::Corrupt { path: path.clone(), reason };
        let f = File::open(path).map_err(io_err(path))?;
        let mut packed = vec![0u8; c.len as usize];
        f.read_exact_at(&mut packed, c.offset).map_err(io_err(path))?;
        if crc32fast::hash(&packed) != c.crc {
            return Err(corrupt(format!("column {name}: checksum")));
        }
        let raw =
            zstd::bulk::decompress(&packed, c.raw_len as usize).map_err(|e| corrupt(format!("column {name}: {e}")))?;
        let data = decode(&raw).ok_or_else(|| corrupt(format!("column {name}: encoding")))?;
        if data.len() as u64 != self.rows || data.storage() != c.storage {
            return Err(corrupt(format!("column {name}: {} rows of {:?}", data.len(), data.storage())));
        }
        Ok(Some(data))
    }

    /// Whether it has a column.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }
}
