//! The event log: what each committed transaction changed, appended inside that transaction, so
//! an event exists exactly when its change does.
//!
//! Ids are `<unix-ms>-<seq>` (the Redis Streams form), strictly increasing: the millisecond of the
//! transaction time (never less than the previous event's), then a sequence within it.

use std::fmt;
use std::str::FromStr;

/// The position of one event in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// Milliseconds since the epoch.
    pub ms: u64,
    /// Order within the millisecond.
    pub seq: u64,
}

impl EventId {
    /// The id before every event.
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Where to start reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPosition {
    /// From the first event held.
    Start,
    /// The events after this one (a consumer that has everything up to and including it).
    After(EventId),
    /// Every event at or after this millisecond (a bare timestamp given as `from`).
    AtOrAfterMillis(u64),
}

/// A `from` value that is neither `ms-seq` nor a millisecond timestamp.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not an event id (`<milliseconds>-<sequence>`) or a millisecond timestamp")]
pub struct EventIdParseError(String);

impl FromStr for EventPosition {
    type Err = EventIdParseError;
    /// `0` and `0-0` mean the start, `ms-seq` the events after that id, a bare number the
    /// events at or after that millisecond.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EventIdParseError(s.to_owned());
        match s.split_once('-') {
            Some((ms, seq)) => {
                let id = EventId { ms: ms.parse().map_err(|_| err())?, seq: seq.parse().map_err(|_| err())? };
                Ok(if id == EventId::ZERO { EventPosition::Start } else { EventPosition::After(id) })
            }
            None => match s.parse::<u64>().map_err(|_| err())? {
                0 => Ok(EventPosition::Start),
                ms => Ok(EventPosition::AtOrAfterMillis(ms)),
            },
        }
    }
}

/// One event as stored: its id and the payload the writer gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its position.
    pub id: EventId,
    /// The transaction that wrote it.
    pub tx_id: u64,
    /// What the writer recorded (the graph stores JSON).
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!("0".parse::<EventPosition>().unwrap(), EventPosition::Start);
        assert_eq!("0-0".parse::<EventPosition>().unwrap(), EventPosition::Start);
        assert_eq!(
            "1620249512318-3".parse::<EventPosition>().unwrap(),
            EventPosition::After(EventId { ms: 1620249512318, seq: 3 })
        );
        assert_eq!("1620249512318".parse::<EventPosition>().unwrap(), EventPosition::AtOrAfterMillis(1620249512318));
        for bad in ["", "-", "12-", "x-1", "1-2-3", "-5"] {
            assert!(bad.parse::<EventPosition>().is_err(), "{bad}");
        }
        assert_eq!(EventId { ms: 5, seq: 1 }.to_string(), "5-1");
    }
}
