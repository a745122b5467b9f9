//! Parsing syslog lines: RFC 5424 and RFC 3164 with the variants real devices send. A line is
//! never refused: whatever part of the header cannot be read is left empty, the rest becomes the
//! message, and [`Syslog::issue`] says what was wrong.
//!
//! The parsers work on byte offsets into the line and allocate nothing; timestamps are turned
//! into numbers with integer arithmetic ([`crate::time::days_from_civil`]), not a date library.

pub(crate) mod rfc3164;
pub(crate) mod rfc5424;
pub(crate) mod timestamp;

use crate::message::{Format, Issue, Priority, Syslog};
use crate::time::{LogTime, TimeZoneSpec};

/// What a parser needs besides the line: when it arrived (the year of a timestamp without one is
/// the one that puts it nearest to this) and the zone of timestamps without an offset.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    /// When the line was received.
    pub received: LogTime,
    /// The zone in which timestamps without an offset are read (the device's, or the default).
    pub timezone: TimeZoneSpec,
}

impl ParseContext {
    /// A context for a line received now, read in UTC.
    pub fn now() -> ParseContext {
        ParseContext { received: LogTime::now(), timezone: TimeZoneSpec::default() }
    }
}

/// Parses one line (framing already removed; a trailing CR, LF or NUL is ignored).
pub fn parse<'a>(line: &'a str, ctx: &ParseContext) -> Syslog<'a> {
    let line = line.trim_end_matches(['\n', '\r', '\0']);
    let b = line.as_bytes();
    let (priority, given, pos, pri_issue) = match read_pri(b) {
        Pri::Valid(p, used) => (p, true, used, None),
        Pri::Absent => (Priority::DEFAULT, false, 0, None),
        Pri::Invalid(at) => (Priority::DEFAULT, false, 0, Some(Issue { reason: "bad PRI part", at })),
    };
    if given && is_5424_version(&b[pos..]) {
        return rfc5424::parse(line, pos, priority, ctx);
    }
    let mut m = rfc3164::parse(line, pos, priority, given, ctx);
    if pri_issue.is_some() {
        m.issue = pri_issue;
    }
    m
}

/// The message of a line that could not be read at all.
pub(crate) fn unparsed<'a>(line: &'a str, priority: Priority, given: bool, issue: Issue) -> Syslog<'a> {
    Syslog { msg: line, issue: Some(issue), ..Syslog::empty(Format::Unparsed, priority, given) }
}

enum Pri {
    Valid(Priority, usize),
    Absent,
    Invalid(usize),
}

/// `<N>` with N of 1–3 digits and at most 191.
fn read_pri(b: &[u8]) -> Pri {
    if b.first() != Some(&b'<') {
        return Pri::Absent;
    }
    let mut value: u32 = 0;
    let mut i = 1;
    while i < b.len() && i <= 4 && b[i].is_ascii_digit() {
        value = value * 10 + u32::from(b[i] - b'0');
        i += 1;
    }
    if i == 1 || i > 4 || b.get(i) != Some(&b'>') || value > 191 {
        return Pri::Invalid(i);
    }
    Pri::Valid(Priority(value as u8), i + 1)
}

/// RFC 5424's VERSION: a non-zero digit (one to three digits) followed by a space.
fn is_5424_version(b: &[u8]) -> bool {
    match b {
        [b'1'..=b'9', b' ', ..] => true,
        [b'1'..=b'9', d, b' ', ..] if d.is_ascii_digit() => true,
        [b'1'..=b'9', d, e, b' ', ..] if d.is_ascii_digit() && e.is_ascii_digit() => true,
        _ => false,
    }
}

/// The text of `b[from..to]` as a `&str` of `line` (offsets always fall on ASCII bytes).
#[inline]
pub(crate) fn slice(line: &str, from: usize, to: usize) -> &str {
    line.get(from..to).unwrap_or("")
}

/// The offset of the next space at or after `from`, or the end.
#[inline]
pub(crate) fn next_space(b: &[u8], from: usize) -> usize {
    memchr::memchr(b' ', &b[from.min(b.len())..]).map_or(b.len(), |i| from + i)
}
