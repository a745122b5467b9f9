//! Octograph's syslog pipeline, after Octopussy's dispatcher: devices send syslog over UDP, TCP
//! (both RFC 6587 framings), TLS (RFC 5425) or RELP; every line is parsed (RFC 5424 and RFC 3164
//! with the variants real devices send), dispatched to its device by hostname or address, and
//! appended to a durable, compressed, time-partitioned raw store before it is acknowledged.
//!
//! The parts go in the order a line travels: [`source`] (receivers) → [`framing`] → [`parse`] →
//! [`device`] (dispatch) → [`raw_store`]; then [`classify`] with the [`services`] into the
//! [`tables`] (stored by `octo-tables`), patterns running on the [`backtrack`] matcher where
//! they allow it; [`pipeline`] joins them. Nothing here depends on the
//! graph crates: evidence for the graph is handed out by the pipeline and written by the binary.

#![warn(missing_docs)]

pub mod backtrack;
pub mod classify;
pub mod device;
pub mod framing;
pub mod message;
pub mod parse;
pub mod pipeline;
pub mod raw_store;
pub mod relp;
pub mod services;
pub mod source;
pub mod stats;
pub mod tables;
pub mod time;
pub mod unknown;

pub use classify::{Classified, Classifier};
pub use device::{Device, DeviceRegistry, DeviceStatus};
pub use message::{Facility, Format, Issue, Priority, Severity, Syslog};
pub use parse::{parse, ParseContext};
pub use pipeline::{LogsConfig, Pipeline};
pub use raw_store::{RawLine, RawStore, Transport};
pub use time::{LogTime, TimeZoneSpec};
