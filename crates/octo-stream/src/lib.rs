//! Octograph's change stream (after OpenCTI's live stream): every change in a graph as an event
//! with a resumable id, its object as STIX 2.1.
//!
//! Here: the STIX 2.1 mapping ([`stix`]), events as stream messages ([`message`]), live-stream
//! filters ([`filter`]), TLP markings ([`marking`]), events kept ready to send ([`prepared`]) and
//! the Redis Streams log ([`redis_log`]);
//! `octo-server` serves them at `GET /{org}/stream`.

#![warn(missing_docs)]

pub mod filter;
pub mod marking;
pub mod message;
pub mod prepared;
pub mod redis_log;
pub mod stix;

pub use filter::{FilterGroup, ObjectView};
pub use marking::Tlp;
pub use message::{messages, whole_transactions, StreamMessage};
pub use prepared::{MessageKind, PreparedEvent, PreparedStore};
