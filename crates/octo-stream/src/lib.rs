//! Octograph's change stream (after OpenCTI's live stream): every change in a graph as an event
//! with a resumable id, its object as STIX 2.1.
//!
//! Built so far: the STIX 2.1 mapping ([`stix`]) and events as stream messages ([`message`]),
//! served by `octo-server` at `GET /{org}/stream`. Live streams with filters, markings, recover
//! and the Redis Streams bus are the rest of the issue.

#![warn(missing_docs)]

pub mod filter;
pub mod marking;
pub mod message;
pub mod redis_log;
pub mod stix;

pub use filter::{FilterGroup, ObjectView};
pub use marking::Tlp;
pub use message::{messages, whole_transactions, StreamMessage};
