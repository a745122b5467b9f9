//! The timestamps syslog headers carry: RFC 3339 (RFC 5424 and rsyslog's ISO templates) and
//! BSD's `Mmm dd hh:mm:ss` with the decorations devices add (a year, fractions, a `*`, a zone).

use super::ParseContext;
use crate::time::{days_from_civil, days_in_month, parse_offset, two_digits};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A timestamp read from a header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stamp {
    /// Microseconds since the epoch, UTC.
    pub utc: i64,
    /// The offset it was written in (or read in, for one without).
    pub offset: i32,
    /// Bytes used.
    pub len: usize,
}

/// Local wall-clock parts of a time.
struct Clock {
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    len: usize,
}

/// `hh:mm:ss[.f…]`: the clock and the bytes used.
fn clock(b: &[u8]) -> Option<Clock> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let hour = two_digits(&b[0..2])?;
    let minute = two_digits(&b[3..5])?;
    let second = two_digits(&b[6..8])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut len = 8;
    let mut micros = 0u32;
    if b.get(8) == Some(&b'.') || b.get(8) == Some(&b',') {
        let mut i = 9;
        let mut digits = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if digits < 6 {
                micros = micros * 10 + u32::from(b[i] - b'0');
                digits += 1;
            }
            i += 1;
        }
        if i == 9 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
        len = i;
    }
    // A leap second is read as the last microsecond-aligned second before it.
    Some(Clock { hour, minute, second: second.min(59), micros, len })
}

fn local_micros(days: i64, c: &Clock) -> i64 {
    days * MICROS_PER_DAY + i64::from(c.hour * 3600 + c.minute * 60 + c.second) * 1_000_000 + i64::from(c.micros)
}

/// RFC 3339: `YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)`. Without an offset (allowed only when
/// `lenient`, for RFC 3164 headers) the context's zone applies; `lenient` also accepts a space
/// for the `T`.
pub(crate) fn rfc3339(b: &[u8], ctx: &ParseContext, lenient: bool) -> Option<Stamp> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i64::from(two_digits(&b[0..2])? * 100 + two_digits(&b[2..4])?);
    let month = two_digits(&b[5..7])?;
    let day = two_digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    match b[10] {
        b'T' | b't' => {}
        b' ' if lenient => {}
        _ => return None,
    }
    let c = clock(&b[11..])?;
    let mut len = 11 + c.len;
    let local = local_micros(days_from_civil(year, month, day), &c);
    let offset = match parse_offset(&b[len..]) {
        Some((secs, used)) => {
            len += used;
            secs
        }
        None if lenient => ctx.timezone.offset_at_local(local),
        None => return None,
    };
    Some(Stamp { utc: local - i64::from(offset) * 1_000_000, offset, len })
}

fn month(b: &[u8]) -> Option<u32> {
    let m = [b.first()? | 0x20, b.get(1)? | 0x20, b.get(2)? | 0x20];
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Four digits that make a plausible year, followed by a space, a colon or the end.
fn year_at(b: &[u8]) -> Option<i64> {
    let y = i64::from(two_digits(b.get(0..2)?)? * 100 + two_digits(b.get(2..4)?)?);
    let ends = matches!(b.get(4), None | Some(b' ') | Some(b':'));
    (ends && (1970..=2199).contains(&y)).then_some(y)
}

/// BSD syslog time: `Mmm dd hh:mm:ss` (day space-padded or not), optionally with a year before
/// or after the clock, fractions of a second, and a zone name ending in a colon (`UTC:`, Cisco).
/// Without a year, the year is the one that puts the time nearest to when it was received.
pub(crate) fn bsd(b: &[u8], ctx: &ParseContext) -> Option<Stamp> {
    let month = month(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let mut day = 0u32;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
        day = day * 10 + u32::from(b[i] - b'0');
        i += 1;
    }
    if i == start || b.get(i) != Some(&b' ') || day == 0 || day > 31 {
        return None;
    }
    i += 1;
    let mut year = None;
    if let Some(y) = year_at(&b[i..]).filter(|_| b.get(i + 4) == Some(&b' ')) {
        year = Some(y);
        i += 5;
    }
    let c = clock(&b[i..])?;
    i += c.len;
    if year.is_none() && b.get(i) == Some(&b' ') {
        if let Some(y) = year_at(&b[i + 1..]) {
            year = Some(y);
            i += 5;
        }
    }
    // A zone name followed by a colon (`00:01:02.345 UTC: %SYS-5-…`).
    let mut named_offset = None;
    if b.get(i) == Some(&b' ') {
        let rest = &b[i + 1..];
        let n = rest.iter().take(5).take_while(|c| c.is_ascii_uppercase()).count();
        if (1..=5).contains(&n) && rest.get(n) == Some(&b':') {
            if matches!(&rest[..n], b"UTC" | b"GMT" | b"Z" | b"UT") {
                named_offset = Some(0);
            }
            i += 1 + n;
        }
    }
    let (utc, offset) = match year {
        Some(y) => {
            if day > days_in_month(y, month) {
                return None;
            }
            let local = local_micros(days_from_civil(y, month, day), &c);
            let offset = named_offset.unwrap_or_else(|| ctx.timezone.offset_at_local(local));
            (local - i64::from(offset) * 1_000_000, offset)
        }
        None => nearest_year(month, day, &c, named_offset, ctx)?,
    };
    Some(Stamp { utc, offset, len: i })
}

/// The reading of a yearless date that puts it last before the time it was received, allowing
/// a month of clock skew ahead: a December line that arrives in January belongs to the year
/// before, a January line from a clock slightly ahead on New Year's Eve to the next, and a
/// February line received in November to this year (rsyslog reads them the same way).
fn nearest_year(month: u32, day: u32, c: &Clock, named: Option<i32>, ctx: &ParseContext) -> Option<(i64, i32)> {
    const AHEAD: i64 = 31 * MICROS_PER_DAY;
    let received = ctx.received.micros();
    let received_local = received + i64::from(ctx.timezone.offset_at_utc(received)) * 1_000_000;
    let (this_year, _, _) = crate::time::civil_from_days(received_local.div_euclid(MICROS_PER_DAY));
    let mut best: Option<i64> = None;
    for y in [this_year - 1, this_year, this_year + 1] {
        if day > days_in_month(y, month) {
            continue;
        }
        let local = local_micros(days_from_civil(y, month, day), c);
        if local <= received_local + AHEAD || best.is_none() {
            best = Some(local);
        }
    }
    let local = best?;
    let offset = named.unwrap_or_else(|| ctx.timezone.offset_at_local(local));
    Some((local - i64::from(offset) * 1_000_000, offset))
}
