//! What reads return: versions of a key, with both times.

use std::fmt;

use crate::time::Timestamp;

/// BLAKE3 hash of a document: equal contents, equal hashes, whatever the key or time.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes a document.
    pub fn of(doc: &[u8]) -> Self {
        ContentHash(*blake3::hash(doc).as_bytes())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// One version of a key: a document or a tombstone, at a valid time, written by a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The key (an OOI's primary key, or any other key the caller uses).
    pub key: String,
    /// From when this version holds in the world being described.
    pub valid_time: Timestamp,
    /// When the store learned it.
    pub tx_time: Timestamp,
    /// The transaction that wrote it.
    pub tx_id: u64,
    /// Whether this version records a deletion (a tombstone).
    pub deleted: bool,
    /// The document; empty for a tombstone.
    pub doc: Vec<u8>,
    /// The keys this document references (the reverse index is built from them).
    pub refs: Vec<String>,
}

impl Version {
    /// Whether this version records a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.deleted
    }

    /// The document's hash, `None` for a tombstone. Computed here rather than stored: it is a
    /// function of the document, and storing it cost every version 32 bytes and a hash on write
    /// for a figure only histories show.
    pub fn content_hash(&self) -> Option<ContentHash> {
        (!self.deleted).then(|| ContentHash::of(&self.doc))
    }
}

/// A bitemporal read coordinate: the world as of `valid_time`, as known at `tx_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// The valid time to look at.
    pub valid_time: Timestamp,
    /// Only transactions at or before this time count; `None` means all committed ones (and,
    /// inside a transaction, its own writes).
    pub tx_time: Option<Timestamp>,
}

impl AsOf {
    /// The current state: now, as known now.
    pub fn now() -> Self {
        AsOf { valid_time: Timestamp::now(), tx_time: None }
    }

    /// The state at a valid time, as known now.
    pub fn valid(valid_time: Timestamp) -> Self {
        AsOf { valid_time, tx_time: None }
    }

    /// The state at a valid time as known at a transaction time.
    pub fn at(valid_time: Timestamp, tx_time: Timestamp) -> Self {
        AsOf { valid_time, tx_time: Some(tx_time) }
    }
}

/// The valid-time span an operation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidTime {
    /// Start; `None` means the transaction's own time (so a plain write is valid "now").
    pub start: Option<Timestamp>,
    /// Exclusive end; `None` means until the next version in valid time. With an end, every
    /// version inside the span is overwritten and the one valid at `end` is restored there.
    pub end: Option<Timestamp>,
}

impl ValidTime {
    /// Valid from the transaction's time on.
    pub fn now() -> Self {
        ValidTime::default()
    }

    /// Valid from `start` on (back-dated or in the future).
    pub fn from(start: Timestamp) -> Self {
        ValidTime { start: Some(start), end: None }
    }

    /// Valid during `[start, end)`.
    pub fn between(start: Timestamp, end: Timestamp) -> Self {
        ValidTime { start: Some(start), end: Some(end) }
    }
}

/// What a commit acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReceipt {
    /// Monotonic transaction number, from 1.
    pub tx_id: u64,
    /// Strictly increasing transaction time.
    pub tx_time: Timestamp,
}
