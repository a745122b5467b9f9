//! The commit journal: what makes a commit durable with one sequential write.
//!
//! A durable redb commit writes every page the transaction touched (copy-on-write: 60–70
//! scattered pages for an observation of 100 objects) and syncs them, which on the disks we
//! measured costs three to four times the sync of the same bytes written in one run. So the
//! engine commits to redb without syncing (`Durability::None`: visible at once, kept in redb's
//! write buffer, lost in a crash) and first appends the transaction's writes, as they went into
//! the tables, to this file and syncs it. Every five seconds (or when this file grows past a
//! bound, or a transaction is too large to copy) a commit is made durable in redb itself — a
//! checkpoint — and the journal starts again empty.
//!
//! After a crash redb opens at its last checkpoint and the records after it are applied again
//! (inserts of the same keys and values, so applying one twice does no harm). A record is
//! `[body length u32][crc32 of the rest u32][store id u64][transaction id u64][body]` (the store
//! id, kept in the store, keeps a journal from being applied to another file put in the
//! first one's place); the body is a run of
//! `[table u8][key length u32][key][value length u32][value]`. Reading stops at the first
//! record that is cut short, fails its checksum, or does not follow the one before it (what a
//! crash during an append, or a truncation that did not reach the disk, leaves behind).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};

/// The tables a journal record writes to, by the byte that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Versions = 1,
    Refs = 2,
    Events = 3,
    Transactions = 4,
    Meta = 5,
}

impl Table {
    fn from_byte(b: u8) -> Option<Table> {
        Some(match b {
            1 => Table::Versions,
            2 => Table::Refs,
            3 => Table::Events,
            4 => Table::Transactions,
            5 => Table::Meta,
            _ => return None,
        })
    }
}

/// How long non-durable commits may pile up before one is made durable in redb.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// The journal size past which the next commit is a checkpoint.
pub(crate) const CHECKPOINT_BYTES: u64 = 256 << 20;
/// A transaction whose writes exceed this is committed durably instead of being copied here.
pub(crate) const MAX_RECORD: usize = 32 << 20;

const HEADER: usize = 24;

/// One transaction's writes, as they are handed to the tables.
#[derive(Debug, Default)]
pub(crate) struct RecordBuf {
    body: Vec<u8>,
    /// Too large to journal: the commit is made durable in redb instead.
    overflow: bool,
}

impl RecordBuf {
    /// Notes one insert.
    pub(crate) fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.insert_parts(table, key, &[value]);
    }

    /// Notes one insert whose value is the concatenation of `parts` (spares the caller a copy).
    pub(crate) fn insert_parts(&mut self, table: Table, key: &[u8], parts: &[&[u8]]) {
        if self.overflow {
            return;
        }
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        if self.body.len() + key.len() + value_len + 9 > MAX_RECORD {
            self.overflow = true;
            self.body = Vec::new();
            return;
        }
        self.body.push(table as u8);
        push_bytes(&mut self.body, key);
        // MAX_RECORD keeps every length far below u32::MAX.
        self.body.extend_from_slice(&(value_len as u32).to_le_bytes());
        for part in parts {
            self.body.extend_from_slice(part);
        }
    }

    /// Whether the transaction outgrew the journal.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflow
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // MAX_RECORD keeps every length far below u32::MAX.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// One insert of a record: the table, the key and the value.
pub(crate) type Write<'a> = (Table, &'a [u8], &'a [u8]);

/// A record read back: the transaction it belongs to and its writes.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) tx_id: u64,
    body: Vec<u8>,
}

impl Recovered {
    /// The writes, in the order they were made.
    pub(crate) fn writes(&self) -> Result<Vec<Write<'_>>> {
        let corrupt = || StoreError::Corrupt(format!("journal record of transaction {}", self.tx_id));
        let mut out = Vec::new();
        let mut rest = self.body.as_slice();
        while let Some((&tag, tail)) = rest.split_first() {
            let table = Table::from_byte(tag).ok_or_else(corrupt)?;
            let (key, tail) = take_bytes(tail).ok_or_else(corrupt)?;
            let (value, tail) = take_bytes(tail).ok_or_else(corrupt)?;
            out.push((table, key, value));
            rest = tail;
        }
        Ok(out)
    }
}

fn take_bytes(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    rest.split_at_checked(u32::from_le_bytes(*len) as usize)
}

/// The journal file of one store.
pub(crate) struct Journal {
    file: File,
    store_id: u64,
    path: PathBuf,
    /// Bytes of valid records.
    len: u64,
    last_checkpoint: Instant,
    /// Set when a record could not be taken back after its commit failed: until the journal
    /// is emptied, commits are checkpoints (durable in redb itself, which makes the stray
    /// record one that recovery skips).
    poisoned: bool,
}

impl Journal {
    /// The journal beside the store file `store`.
    pub(crate) fn path_for(store: &Path) -> PathBuf {
        let mut name = store.file_name().unwrap_or_default().to_owned();
        name.push(".journal");
        store.with_file_name(name)
    }

    /// Opens (or creates) the journal of the store `store_id` and reads its valid records.
    pub(crate) fn open(path: &Path, store_id: u64) -> Result<(Journal, Vec<Recovered>)> {
        let io = |e: std::io::Error| StoreError::Io(format!("journal {}: {e}", path.display()));
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let records = parse(&bytes, store_id);
        let journal =
            Journal { file, store_id, path: path.to_owned(), len: 0, last_checkpoint: Instant::now(), poisoned: false };
        Ok((journal, records))
    }

    fn io(&self, e: std::io::Error) -> StoreError {
        StoreError::Io(format!("journal {}: {e}", self.path.display()))
    }

    /// Whether the next commit should be a checkpoint instead of a record.
    pub(crate) fn wants_checkpoint(&self) -> bool {
        self.poisoned || self.len >= CHECKPOINT_BYTES || self.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
    }

    /// Appends one transaction's record and syncs it; returns where it started, for
    /// [`Journal::retract`].
    pub(crate) fn append(&mut self, tx_id: u64, record: &RecordBuf) -> Result<u64> {
        let start = self.len;
        let mut bytes = Vec::with_capacity(HEADER + record.body.len());
        bytes.extend_from_slice(&(record.body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&self.store_id.to_le_bytes());
        bytes.extend_from_slice(&tx_id.to_le_bytes());
        bytes.extend_from_slice(&record.body);
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        let written = self.file.write_all_at(&bytes, start).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Whatever part of it reached the file is not acknowledged: cut it off, so that a
            // crash does not bring back a transaction whose commit reported failure.
            self.retract(start);
            return Err(self.io(e));
        }
        self.len += bytes.len() as u64;
        Ok(start)
    }

    /// Takes back the record appended at `start`, whose commit failed.
    pub(crate) fn retract(&mut self, start: u64) {
        let cut = self.file.set_len(start).and_then(|()| self.file.sync_data());
        match cut {
            Ok(()) => self.len = start,
            Err(_) => self.poisoned = true,
        }
    }

    /// Empties the journal after a checkpoint. The truncation need not reach the disk before
    /// the next append: records it should have removed belong to transactions the checkpoint
    /// made durable, which recovery skips. Nor must it succeed: the next records then follow
    /// the stale ones.
    pub(crate) fn checkpointed(&mut self) {
        self.last_checkpoint = Instant::now();
        if (self.len > 0 || self.poisoned) && self.file.set_len(0).is_ok() {
            self.len = 0;
            self.poisoned = false;
        }
    }

    /// Empties the journal and makes that durable (after recovery has applied it).
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).and_then(|()| self.file.sync_all()).map_err(|e| self.io(e))?;
        self.len = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Whether nothing (not even a record that could not be taken back) waits for a checkpoint.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0 && !self.poisoned
    }
}

/// The valid records of store `store_id` at the start of `bytes`, each with a higher
/// transaction id than the last.
fn parse(bytes: &[u8], store_id: u64) -> Vec<Recovered> {
    let mut out: Vec<Recovered> = Vec::new();
    let mut rest = bytes;
    while rest.len() >= HEADER {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let Some(end) = HEADER.checked_add(len).filter(|&end| end <= rest.len()) else { break };
        if crc32fast::hash(&rest[8..end]) != crc {
            break;
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&rest[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let tx_id = word(16);
        if word(8) != store_id || out.last().is_some_and(|last| last.tx_id >= tx_id) {
            break;
        }
        out.push(Recovered { tx_id, body: rest[HEADER..end].to_vec() });
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(writes: &[(Table, &[u8], &[u8])]) -> RecordBuf {
        let mut r = RecordBuf::default();
        for (t, k, v) in writes {
            r.insert(*t, k, v);
        }
        r
    }

    /// Records read back as written; a torn or corrupt tail, and a stale record after a
    /// truncation that did not reach the disk, end the journal there.
    #[test]
    fn records_read_back_until_the_first_bad_or_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb.journal");
        let (mut j, found) = Journal::open(&path, 42).unwrap();
        assert!(found.is_empty());
        let writes: Vec<(Table, &[u8], &[u8])> =
            vec![(Table::Versions, b"k1", b"v1"), (Table::Refs, b"r", b""), (Table::Meta, b"last_tx", &[1, 2, 3])];
        j.append(7, &record(&writes)).unwrap();
        let second = j.append(8, &record(&[(Table::Events, b"e", b"payload")])).unwrap();
        drop(j);
        let (_, found) = Journal::open(&path, 42).unwrap();
        assert_eq!(found.iter().map(|r| r.tx_id).collect::<Vec<_>>(), [7, 8]);
        assert_eq!(found[0].writes().unwrap(), writes);

        let full = std::fs::read(&path).unwrap();
        // Cut inside the second record: only the first survives.
        std::fs::write(&path, &full[..full.len() - 3]).unwrap();
        assert_eq!(Journal::open(&path, 42).unwrap().1.len(), 1);
        // A flipped byte in the second record's body.
        let mut bad = full.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(Journal::open(&path, 42).unwrap().1.len(), 1);
        // A record of an older transaction after a newer one (left over from before a
        // checkpoint's truncation).
        let mut stale = full[second as usize..].to_vec();
        stale.extend_from_slice(&full[..second as usize]);
        std::fs::write(&path, &stale).unwrap();
        assert_eq!(Journal::open(&path, 42).unwrap().1.iter().map(|r| r.tx_id).collect::<Vec<_>>(), [8]);
        // Another store's journal.
        std::fs::write(&path, &full).unwrap();
        assert!(Journal::open(&path, 43).unwrap().1.is_empty());
    }

    /// A transaction too large to copy is marked, and its record holds nothing.
    #[test]
    fn a_record_past_the_bound_overflows() {
        let mut r = RecordBuf::default();
        let value = vec![0u8; MAX_RECORD / 2];
        r.insert(Table::Versions, b"a", &value);
        assert!(!r.overflowed());
        r.insert(Table::Versions, b"b", &value);
        assert!(r.overflowed());
        assert!(r.body.is_empty());
    }

    /// A record taken back is gone, and the next one takes its place.
    #[test]
    fn a_retracted_record_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _) = Journal::open(&path, 42).unwrap();
        j.append(1, &record(&[(Table::Versions, b"a", b"1")])).unwrap();
        let start = j.append(2, &record(&[(Table::Versions, b"b", b"2")])).unwrap();
        j.retract(start);
        j.append(3, &record(&[(Table::Versions, b"c", b"3")])).unwrap();
        drop(j);
        let ids: Vec<u64> = Journal::open(&path, 42).unwrap().1.iter().map(|r| r.tx_id).collect();
        assert_eq!(ids, [1, 3]);
    }
}
