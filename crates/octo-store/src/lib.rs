//! Octograph's bitemporal store.
//!
//! Every write is a transaction with an assigned, strictly increasing transaction time, and each
//! operation has a valid time (default: the transaction's time). A read names a valid time and
//! optionally a transaction time, and sees for each key the latest version whose valid time is at
//! or before it among the transactions at or before it — XTDB's model, which Octopoes relies on.
//!
//! ```
//! use octo_store::{AsOf, RedbStore, Store, StoreOptions, Timestamp, ValidTime};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = RedbStore::open(&dir.path().join("graph.redb"), &StoreOptions::default()).unwrap();
//! let mut tx = store.begin().unwrap();
//! tx.put("Network|internet", br#"{"name":"internet"}"#, &[], ValidTime::now()).unwrap();
//! let first = tx.commit().unwrap();
//!
//! let mut tx = store.begin().unwrap();
//! tx.delete("Network|internet", ValidTime::now()).unwrap();
//! tx.commit().unwrap();
//!
//! let snap = store.snapshot().unwrap();
//! assert!(snap.get("Network|internet", AsOf::now()).unwrap().is_none());
//! // As known right after the first transaction, the network existed.
//! let then = AsOf::at(Timestamp::now(), first.tx_time);
//! assert!(snap.get("Network|internet", then).unwrap().is_some());
//! assert_eq!(snap.history("Network|internet").unwrap().len(), 2);
//! ```

#![warn(missing_docs)]

mod codec;
/// The byte layout of the versions table, exposed for the engine-comparison benchmark.
#[doc(hidden)]
pub mod layout {
    pub use crate::codec::{encode_key, prefix_end, ref_key, split_times, version_key};
}
mod current_cache;
pub mod error;
pub mod event;
mod journal;
mod key_index;
mod redb_engine;
pub mod store;
pub mod time;
pub mod version;

pub use error::{Result, StoreError};
pub use event::{Event, EventId, EventIdParseError, EventPosition};
pub use key_index::KeyView;
pub use redb_engine::{RedbStore, StoreOptions};
pub use store::{transact, Op, Reader, Store, Transaction};
pub use time::Timestamp;
pub use version::{AsOf, ContentHash, TxReceipt, ValidTime, Version};
