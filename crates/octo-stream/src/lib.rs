//! Octograph's change stream (after OpenCTI's live stream): every change in a graph as an event
//! with a resumable id, its object as STIX 2.1.
//!
//! Built so far: the STIX 2.1 mapping ([`stix`]). The SSE endpoints, filters, markings and the
//! Redis Streams bus are the rest of the issue.

#![warn(missing_docs)]

pub mod stix;
