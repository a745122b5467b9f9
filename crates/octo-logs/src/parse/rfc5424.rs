//! RFC 5424: `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP
//! STRUCTURED-DATA [SP MSG]`, with `-` for an absent field and an optional UTF-8 BOM before MSG.

use std::borrow::Cow;

use super::{next_space, slice, timestamp, unparsed, ParseContext};
use crate::message::{Format, Issue, Priority, SdElement, Syslog};
use crate::time::LogTime;

const BOM: &str = "\u{feff}";

/// Parses from `pos`, just after the PRI part.
pub(crate) fn parse<'a>(line: &'a str, pos: usize, priority: Priority, ctx: &ParseContext) -> Syslog<'a> {
    let b = line.as_bytes();
    let mut i = next_space(b, pos) + 1; // past VERSION
    let mut issue = None;
    let mut m = Syslog::empty(Format::Rfc5424, priority, true);
    // TIMESTAMP
    if b.get(i) == Some(&b'-') && matches!(b.get(i + 1), Some(b' ') | None) {
        i += 2;
    } else {
        match timestamp::rfc3339(&b[i.min(b.len())..], ctx, false) {
            Some(t) if matches!(b.get(i + t.len), Some(b' ') | None) => {
                m.timestamp = Some(LogTime(t.utc));
                m.utc_offset = Some(t.offset);
                i += t.len + 1;
            }
            _ => {
                issue = Some(Issue { reason: "bad RFC 5424 timestamp", at: i });
                i = next_space(b, i) + 1;
            }
        }
    }
    // HOSTNAME, APP-NAME, PROCID, MSGID
    let mut fields = [None; 4];
    for f in &mut fields {
        if i > b.len() {
            let mut u = unparsed(line, priority, true, Issue { reason: "RFC 5424 header ends early", at: b.len() });
            u.timestamp = m.timestamp;
            return u;
        }
        let end = next_space(b, i);
        let v = slice(line, i, end);
        *f = (v != "-" && !v.is_empty()).then_some(v);
        i = end + 1;
    }
    [m.hostname, m.app_name, m.proc_id, m.msg_id] = fields;
    // STRUCTURED-DATA
    if i >= b.len() {
        m.issue = issue.or(Some(Issue { reason: "RFC 5424 line has no STRUCTURED-DATA", at: b.len() }));
        return m;
    }
    if b[i] == b'-' {
        i += 1;
    } else if b[i] == b'[' {
        match sd_len(&b[i..]) {
            Some(n) => {
                m.structured_data = Some(slice(line, i, i + n));
                i += n;
            }
            None => {
                issue = issue.or(Some(Issue { reason: "bad STRUCTURED-DATA", at: i }));
                m.msg = slice(line, i, b.len());
                m.issue = issue;
                return m;
            }
        }
    } else {
        issue = issue.or(Some(Issue { reason: "STRUCTURED-DATA must be '-' or start with '['", at: i }));
    }
    // MSG
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let msg = slice(line, i.min(b.len()), b.len());
    m.msg = msg.strip_prefix(BOM).unwrap_or(msg);
    m.issue = issue;
    m
}

/// The length of the SD-ELEMENTs at the start of `b`, or None when they are malformed.
fn sd_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let id = sd_name(&b[i..]);
        if id == 0 {
            return None;
        }
        i += id;
        loop {
            match b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => {
                    i += 1;
                    let n = sd_name(&b[i..]);
                    if n == 0 || b.get(i + n) != Some(&b'=') || b.get(i + n + 1) != Some(&b'"') {
                        return None;
                    }
                    i += n + 2;
                    loop {
                        match b.get(i)? {
                            b'\\' => i += 2,
                            b'"' => {
                                i += 1;
                                break;
                            }
                            _ => i += 1,
                        }
                    }
                }
                _ => return None,
            }
        }
    }
    Some(i)
}

/// The length of an SD-NAME: 1–32 printable ASCII characters but `=`, space, `]` and `"`.
fn sd_name(b: &[u8]) -> usize {
    let n = b.iter().take_while(|&&c| (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"')).count();
    if n > 32 {
        0
    } else {
        n
    }
}

/// The elements of structured data already checked by the parser.
pub(crate) fn sd_elements(sd: &str) -> Vec<SdElement<'_>> {
    let b = sd.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let n = sd_name(&b[i..]);
        let id = slice(sd, i, i + n);
        i += n;
        let mut params = Vec::new();
        while b.get(i) == Some(&b' ') {
            i += 1;
            let n = sd_name(&b[i..]);
            let name = slice(sd, i, i + n);
            i += n + 2;
            let start = i;
            let mut escaped = false;
            while let Some(&c) = b.get(i) {
                match c {
                    b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    b'"' => break,
                    _ => i += 1,
                }
            }
            let raw = slice(sd, start, i.min(b.len()));
            let value = if escaped { Cow::Owned(unescape(raw)) } else { Cow::Borrowed(raw) };
            params.push((name, value));
            i += 1;
        }
        i += 1; // ']'
        out.push(SdElement { id, params });
    }
    out
}

/// Resolves `\"`, `\\` and `\]`; any other backslash stays, as RFC 5424 section 6.3.3 says.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, '"' | '\\' | ']') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}
