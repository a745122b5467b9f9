//! Byte layouts of the embedded engine's tables.
//!
//! `versions`: `enc(key) ‖ valid_time ‖ tx_time` → version record. `enc` escapes `0x00` as
//! `0x00 0xFF` and ends with `0x00 0x01`, so it is order-preserving and prefix-free: the versions
//! of one key are contiguous, sorted by valid time then transaction time, and every key starting
//! with `Type|` lies in one range. `refs`: `enc(target) ‖ enc(source)` → nothing.

use crate::error::StoreError;
use crate::time::Timestamp;

/// Appends the order-preserving, prefix-free encoding of `key`.
pub fn encode_key(out: &mut Vec<u8>, key: &str) {
    for &b in key.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Decodes one encoded key from the front of `bytes`; returns it and the rest.
pub(crate) fn decode_key(bytes: &[u8]) -> Result<(String, &[u8]), StoreError> {
    let mut out = Vec::with_capacity(bytes.len());
    let rest = decode_key_into(bytes, &mut out)?;
    let key = String::from_utf8(out).map_err(|_| StoreError::Corrupt("key is not UTF-8".into()))?;
    Ok((key, rest))
}

/// [`decode_key`] into a buffer the caller reuses, for scans that look at each key once and
/// would otherwise allocate a string per key. The bytes written are not checked to be UTF-8.
pub(crate) fn decode_key_into<'a>(bytes: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], StoreError> {
    out.clear();
    let mut i = 0;
    while i < bytes.len() {
        // Runs without a zero byte are copied whole.
        let run = bytes[i..].iter().position(|b| *b == 0).unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        match bytes.get(i + 1) {
            None => break,
            Some(0xFF) => {
                out.push(0);
                i += 2;
            }
            Some(0x01) => return Ok(&bytes[i + 2..]),
            Some(_) => return Err(StoreError::Corrupt("bad key escape".into())),
        }
    }
    Err(StoreError::Corrupt("unterminated key".into()))
}

/// The `versions` table key of one version.
pub fn version_key(key: &str, valid: Timestamp, tx: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 18);
    encode_key(&mut out, key);
    out.extend_from_slice(&valid.to_key_bytes());
    out.extend_from_slice(&tx.to_key_bytes());
    out
}

/// The two timestamps at the end of a `versions` key, without decoding the key itself.
pub fn split_times(rest: &[u8]) -> Result<(Timestamp, Timestamp), StoreError> {
    if rest.len() < 16 {
        return Err(StoreError::Corrupt("short version key".into()));
    }
    let tail = &rest[rest.len() - 16..];
    let mut vt = [0u8; 8];
    let mut tt = [0u8; 8];
    vt.copy_from_slice(&tail[..8]);
    tt.copy_from_slice(&tail[8..]);
    Ok((Timestamp::from_key_bytes(vt), Timestamp::from_key_bytes(tt)))
}

/// The `refs` table key recording that `source` referenced `target` in some version.
pub fn ref_key(target: &str, source: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len() + source.len() + 4);
    encode_key(&mut out, target);
    encode_key(&mut out, source);
    out
}

/// The smallest byte string greater than every string starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// One stored version, as laid out in the `versions` table's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub tx_id: u64,
    /// Whether this version is a tombstone (then `refs` and `doc` are empty).
    pub deleted: bool,
    pub refs: Vec<String>,
    pub doc: Vec<u8>,
}

const TOMBSTONE: u8 = 1;

/// Encodes a record straight from borrowed parts (the write path avoids copying them twice).
pub(crate) fn encode_record(tx_id: u64, deleted: bool, refs: &[String], doc: &[u8]) -> Vec<u8> {
    let refs_len: usize = refs.iter().map(|r| r.len() + 4).sum();
    let mut out = Vec::with_capacity(1 + 8 + 4 + refs_len + doc.len());
    out.push(if deleted { TOMBSTONE } else { 0 });
    out.extend_from_slice(&tx_id.to_le_bytes());
    out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
    for r in refs {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r.as_bytes());
    }
    out.extend_from_slice(doc);
    out
}

impl Record {
    /// A tombstone written by transaction `tx_id`.
    pub fn tombstone(tx_id: u64) -> Record {
        Record { tx_id, deleted: true, refs: vec![], doc: vec![] }
    }

    /// Layout ([`RECORD_FORMAT`]): flags u8, tx_id u64 LE, ref count u32 LE, each ref as u32 LE
    /// length + bytes, then the document to the end. No content hash: it is a function of the
    /// document, computed when asked for ([`crate::Version::content_hash`]).
    pub fn encode(&self) -> Vec<u8> {
        encode_record(self.tx_id, self.deleted, &self.refs, &self.doc)
    }

    /// Whether encoded record bytes hold a document (not a tombstone), reading one byte.
    pub fn is_live(bytes: &[u8]) -> Result<bool, StoreError> {
        match bytes.first() {
            Some(flags) => Ok(flags & TOMBSTONE == 0),
            None => Err(StoreError::Corrupt("empty version record".into())),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
        let corrupt = || StoreError::Corrupt("truncated version record".into());
        let mut cur = bytes;
        let mut take = |n: usize| -> Result<&[u8], StoreError> {
            if cur.len() < n {
                return Err(corrupt());
            }
            let (head, tail) = cur.split_at(n);
            cur = tail;
            Ok(head)
        };
        let flags = take(1)?[0];
        let tx_id = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt())?);
        let n = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt())?) as usize;
        let mut refs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt())?) as usize;
            let r = std::str::from_utf8(take(len)?).map_err(|_| StoreError::Corrupt("ref is not UTF-8".into()))?;
            refs.push(r.to_owned());
        }
        let doc = cur.to_vec();
        Ok(Record { tx_id, deleted: flags & TOMBSTONE != 0, refs, doc })
    }
}

/// The version of the record layout above, kept in the `meta` table: a store written in another
/// layout is refused at open instead of being misread. 2 dropped the stored content hash.
pub(crate) const RECORD_FORMAT: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_encoding_is_prefix_free_and_ordered() {
        let keys = ["", "a", "a\0", "a\0b", "a|", "ab", "b"];
        let enc: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| {
                let mut v = Vec::new();
                encode_key(&mut v, k);
                v
            })
            .collect();
        for (i, a) in enc.iter().enumerate() {
            assert_eq!(decode_key(a).unwrap().0, keys[i]);
            for (j, b) in enc.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{:?} is a prefix of {:?}", keys[i], keys[j]);
                }
                assert_eq!(keys[i].cmp(keys[j]), a.cmp(b));
            }
        }
    }

    #[test]
    fn a_decoded_key_leaves_the_rest_and_bad_bytes_are_refused() {
        let mut enc = Vec::new();
        encode_key(&mut enc, "a\0b");
        enc.extend_from_slice(b"rest");
        let mut buf = b"stale".to_vec();
        assert_eq!(decode_key_into(&enc, &mut buf).unwrap(), b"rest");
        assert_eq!(buf, b"a\0b");
        for bad in [&b"abc"[..], b"a\0", b"a\0\x02", b""] {
            assert!(decode_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_round_trip() {
        for rec in [
            Record { tx_id: 7, deleted: false, refs: vec!["A|b".into(), "".into()], doc: b"{}".to_vec() },
            Record::tombstone(u64::MAX),
        ] {
            assert_eq!(Record::decode(&rec.encode()).unwrap(), rec);
        }
        assert!(Record::decode(&[0, 1, 2]).is_err());
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"IPPort|").unwrap(), b"IPPort}".to_vec());
        assert_eq!(prefix_end(&[0x61, 0xFF]).unwrap(), vec![0x62]);
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
