//! Timestamps: microseconds since the Unix epoch, UTC, for valid time and transaction time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A point in time with microsecond precision (Octopoes' valid times carry microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest representable time.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The current wall-clock time.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch (the unit of stream event ids).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The next representable instant.
    pub const fn next(self) -> Self {
        Timestamp(self.0.saturating_add(1))
    }

    /// As a chrono time, for formatting and arithmetic.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Order-preserving big-endian bytes (sign bit flipped so negative times sort first).
    pub(crate) fn to_key_bytes(self) -> [u8; 8] {
        ((self.0 as u64) ^ (1 << 63)).to_be_bytes()
    }

    pub(crate) fn from_key_bytes(b: [u8; 8]) -> Self {
        Timestamp((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_micros())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

/// A time that does not parse as RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not an RFC 3339 timestamp (e.g. 2026-11-23T10:00:00Z)")]
pub struct TimestampParseError(String);

impl FromStr for Timestamp {
    type Err = TimestampParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s)
            .map(|dt| Timestamp(dt.timestamp_micros()))
            .map_err(|_| TimestampParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_preserve_order() {
        let times = [i64::MIN, -1_000_000, -1, 0, 1, 1_700_000_000_000_000, i64::MAX];
        for w in times.windows(2) {
            let (a, b) = (Timestamp(w[0]), Timestamp(w[1]));
            assert!(a.to_key_bytes() < b.to_key_bytes());
            assert_eq!(Timestamp::from_key_bytes(a.to_key_bytes()), a);
        }
    }

    #[test]
    fn parses_and_prints_rfc3339() {
        let t: Timestamp = "2026-11-23T10:00:00.5+01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-23T09:00:00.500000Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}
