//! Timestamps of log lines: microseconds since the Unix epoch in UTC, and the time zones used to
//! read the many timestamps that carry none (RFC 3164's `Mmm dd hh:mm:ss`).

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, Offset, TimeZone};

/// A point in time, microseconds since 1970-01-01T00:00:00Z. Small and `Copy`, so a parsed line
/// carries it without allocating; printed as RFC 3339 in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogTime(pub i64);

impl LogTime {
    /// The current time.
    pub fn now() -> LogTime {
        LogTime(chrono::Utc::now().timestamp_micros())
    }

    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch (rounded down).
    pub fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// As a chrono value, for formatting and calendar arithmetic.
    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }
}

impl fmt::Display for LogTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_chrono().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

impl FromStr for LogTime {
    type Err = String;

    /// RFC 3339 (`2026-12-01T10:00:00Z`, with any offset), a date (`2026-12-01`, midnight UTC), or
    /// milliseconds since the epoch.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(LogTime(ms.saturating_mul(1000)));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(LogTime(t.timestamp_micros()));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let t = d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
            return t.map(LogTime).ok_or_else(|| format!("'{s}' is out of range"));
        }
        Err(format!("'{s}' is not a time: use RFC 3339 (2026-12-01T10:00:00Z), a date, or epoch milliseconds"))
    }
}

impl serde::Serialize for LogTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The zone in which a timestamp without an offset is read: a device's own, or the receiver's
/// default. Named zones follow daylight saving time, which is what devices' clocks do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeZoneSpec {
    /// A fixed offset east of UTC, in seconds (`UTC`, `+01:00`).
    Fixed(i32),
    /// An IANA zone (`Europe/Amsterdam`).
    Named(chrono_tz::Tz),
}

impl Default for TimeZoneSpec {
    fn default() -> Self {
        TimeZoneSpec::Fixed(0)
    }
}

impl FromStr for TimeZoneSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt") {
            return Ok(TimeZoneSpec::Fixed(0));
        }
        if let Some(secs) = parse_offset(t.as_bytes()).filter(|(_, used)| *used == t.len()).map(|(s, _)| s) {
            return Ok(TimeZoneSpec::Fixed(secs));
        }
        t.parse::<chrono_tz::Tz>().map(TimeZoneSpec::Named).map_err(|_| {
            format!(
                "'{s}' is not a time zone: use UTC, an offset such as +01:00, or an IANA name such as Europe/Amsterdam"
            )
        })
    }
}

impl fmt::Display for TimeZoneSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeZoneSpec::Fixed(0) => f.write_str("UTC"),
            TimeZoneSpec::Fixed(s) => {
                let sign = if *s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
            }
            TimeZoneSpec::Named(tz) => f.write_str(tz.name()),
        }
    }
}

impl serde::Serialize for TimeZoneSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TimeZoneSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl TimeZoneSpec {
    /// The offset east of UTC, in seconds, in force at a local wall-clock time (for a time that
    /// daylight saving skips or repeats, the earlier reading).
    pub fn offset_at_local(self, local_micros: i64) -> i32 {
        match self {
            TimeZoneSpec::Fixed(s) => s,
            TimeZoneSpec::Named(tz) => {
                let Some(naive) = chrono::DateTime::from_timestamp_micros(local_micros).map(|t| t.naive_utc()) else {
                    return 0;
                };
                match tz.offset_from_local_datetime(&naive).earliest() {
                    Some(o) => o.fix().local_minus_utc(),
                    // In a gap (spring forward): the offset just before it.
                    None => tz.offset_from_utc_datetime(&naive).fix().local_minus_utc(),
                }
            }
        }
    }

    /// The offset in force at a UTC instant.
    pub fn offset_at_utc(self, utc_micros: i64) -> i32 {
        match self {
            TimeZoneSpec::Fixed(s) => s,
            TimeZoneSpec::Named(tz) => chrono::DateTime::from_timestamp_micros(utc_micros)
                .map_or(0, |t| tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()),
        }
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`):
/// branch-light, so a parser can turn a date into a number without a calendar library.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year and month of a day count from 1970-01-01 (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The number of days in a month.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// An offset `Z`, `±HH:MM`, `±HHMM` or `±HH` at the start of `b`: seconds east of UTC and the
/// bytes it used.
pub(crate) fn parse_offset(b: &[u8]) -> Option<(i32, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let h = two_digits(b.get(1..3)?)?;
            let (m, used) = match b.get(3) {
                Some(b':') => (two_digits(b.get(4..6)?)?, 6),
                Some(c) if c.is_ascii_digit() => (two_digits(b.get(3..5)?)?, 5),
                _ => (0, 3),
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some((if *sign == b'-' { -secs } else { secs }, used))
        }
        _ => None,
    }
}

/// Two ASCII digits as a number.
#[inline]
pub(crate) fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn zones_parse_and_print() {
        assert_eq!("UTC".parse::<TimeZoneSpec>().unwrap(), TimeZoneSpec::Fixed(0));
        assert_eq!("+05:30".parse::<TimeZoneSpec>().unwrap(), TimeZoneSpec::Fixed(19_800));
        assert_eq!("-0800".parse::<TimeZoneSpec>().unwrap().to_string(), "-08:00");
        let ams: TimeZoneSpec = "Europe/Amsterdam".parse().unwrap();
        assert_eq!(ams.to_string(), "Europe/Amsterdam");
        // 2026-07-01 12:00 local is summer time (+2), 2026-01-01 winter (+1).
        let july = days_from_civil(2026, 7, 1) * 86_400_000_000 + 12 * 3_600_000_000;
        let jan = days_from_civil(2026, 1, 1) * 86_400_000_000 + 12 * 3_600_000_000;
        assert_eq!(ams.offset_at_local(july), 7200);
        assert_eq!(ams.offset_at_local(jan), 3600);
        assert!("Mars/Olympus".parse::<TimeZoneSpec>().is_err());
    }

    #[test]
    fn log_times_parse() {
        assert_eq!("1000".parse::<LogTime>().unwrap(), LogTime(1_000_000));
        assert_eq!("1970-01-01T00:00:01Z".parse::<LogTime>().unwrap(), LogTime(1_000_000));
        assert_eq!("1970-01-02".parse::<LogTime>().unwrap(), LogTime(86_400_000_000));
        assert!("yesterday".parse::<LogTime>().is_err());
        assert_eq!(LogTime(1_500_000).to_string(), "1970-01-01T00:00:01.500Z");
    }
}
