//! RFC 3164 and what devices make of it: `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, and also
//! no PRI, no hostname, ISO timestamps, a year, fractions, Cisco's `seq: *Mmm dd …: %FAC-…`, ASA's
//! `host : %ASA-…`. Whatever is not recognised as header becomes message.

use super::{next_space, slice, timestamp, ParseContext};
use crate::message::{Format, Priority, Syslog};
use crate::time::LogTime;

/// The longest tag taken as one (RFC 3164 allows 32 characters; devices write longer ones).
const MAX_TAG: usize = 64;

/// Parses from `pos`, just after the PRI part (0 when there was none).
pub(crate) fn parse<'a>(line: &'a str, pos: usize, priority: Priority, given: bool, ctx: &ParseContext) -> Syslog<'a> {
    let b = line.as_bytes();
    let mut i = pos;
    let mut m = Syslog::empty(Format::Rfc3164, priority, given);
    // Cisco IOS: a sequence number (`123: `), sometimes a hostname (`router1: `), then the time.
    if let Some((seq, used)) = sequence(&b[i..]) {
        m.sequence = Some(seq);
        i += used;
    }
    let mut stamp = read_time(&b[i..], ctx);
    if stamp.is_none() && m.sequence.is_some() {
        let end = next_space(b, i);
        if end > i + 1 && b[end - 1] == b':' {
            if let Some(t) = read_time(&b[(end + 1).min(b.len())..], ctx) {
                m.hostname = Some(slice(line, i, end - 1));
                i = end + 1;
                stamp = Some(t);
            }
        }
    }
    if let Some((t, used)) = stamp {
        m.timestamp = Some(LogTime(t.utc));
        m.utc_offset = Some(t.offset);
        i += used;
        // ASA and IOS end the timestamp with a colon.
        if b.get(i) == Some(&b':') {
            i += 1;
        }
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        // HOSTNAME, unless the next word is already the tag or a Cisco mnemonic.
        if m.hostname.is_none() && i < b.len() {
            let end = next_space(b, i);
            let word = &b[i..end];
            if !looks_like_tag(word) && word[0] != b'%' && end < b.len() {
                m.hostname = Some(slice(line, i, end));
                i = end + 1;
                // ASA: `host : %ASA-…`.
                if b.get(i) == Some(&b':') && b.get(i + 1) == Some(&b' ') {
                    i += 2;
                }
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
            }
        }
    } else if m.sequence.is_none() && !given {
        // Neither PRI nor time: nothing says this is syslog; keep it whole.
        m.format = Format::Unparsed;
        m.msg = slice(line, pos, b.len());
        return m;
    }
    // TAG[pid]:
    if let Some((tag_end, pid, used)) = tag(&b[i..]) {
        m.app_name = Some(slice(line, i, i + tag_end));
        m.proc_id = pid.map(|(s, e)| slice(line, i + s, i + e));
        i += used;
    }
    m.msg = slice(line, i.min(b.len()), b.len());
    m
}

/// `digits: ` at the start (a Cisco sequence number).
fn sequence(b: &[u8]) -> Option<(u64, usize)> {
    let n = b.iter().take(20).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || b.get(n) != Some(&b':') || b.get(n + 1) != Some(&b' ') {
        return None;
    }
    let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    Some((v, n + 2))
}

/// A timestamp at the start, BSD or ISO, with Cisco's `*` (clock not set) or `.` (lost sync).
fn read_time(b: &[u8], ctx: &ParseContext) -> Option<(timestamp::Stamp, usize)> {
    let skip = usize::from(matches!(b.first(), Some(b'*') | Some(b'.')));
    let rest = &b[skip..];
    let t = match rest.first()? {
        c if c.is_ascii_digit() => timestamp::rfc3339(rest, ctx, true),
        c if c.is_ascii_alphabetic() => timestamp::bsd(rest, ctx),
        _ => None,
    }?;
    // The time must end the word: `Jun 14 15:16:01x` is not a time.
    if !matches!(rest.get(t.len), None | Some(b' ') | Some(b':')) {
        return None;
    }
    Some((t, skip + t.len))
}

/// Whether a word is a tag rather than a hostname: it ends with a colon or holds `[pid]`.
fn looks_like_tag(word: &[u8]) -> bool {
    word.last() == Some(&b':') || (word.contains(&b'[') && word.last() == Some(&b']'))
}

/// Where a tag ends, the range of its pid, and the bytes it takes with its colon and space.
type Tag = (usize, Option<(usize, usize)>, usize);

/// `tag:`, `tag[pid]:` or `tag[pid]` at the start: the tag's length, the pid's range, and the
/// bytes used including the colon and one space. Two words make a tag only in the forms
/// sysklogd and login write (`syslogd 1.4.1: restart.`, `-- root[2421]: ROOT LOGIN`): a version
/// number after a name, or a name after punctuation.
fn tag(b: &[u8]) -> Option<Tag> {
    if let Some(t) = one_word_tag(b, 0) {
        return Some(t);
    }
    let first = next_space(b, 0);
    if first == 0 || first >= b.len() {
        return None;
    }
    let (tag_len, pid, used) = one_word_tag(b, first + 1)?;
    let second = &b[first + 1..tag_len];
    let version = !second.is_empty() && second.iter().all(|c| c.is_ascii_digit() || *c == b'.');
    let punctuation = b[..first].iter().all(|c| c.is_ascii_punctuation());
    (version || punctuation).then_some((tag_len, pid, used))
}

/// A one-word tag starting at `from`; lengths and ranges are counted from the start of `b`.
fn one_word_tag(b: &[u8], from: usize) -> Option<Tag> {
    let end = next_space(b, from);
    if end - from > MAX_TAG + 24 {
        return None;
    }
    let word = &b[from..end];
    if word.is_empty() || word[0] == b'%' || word[0] == b'[' {
        return None;
    }
    let (body, colon) = match word.last() {
        Some(b':') => (&word[..word.len() - 1], true),
        _ => (word, false),
    };
    let (tag_len, pid) = match memchr::memrchr(b'[', body) {
        Some(open) if open > 0 && body.last() == Some(&b']') => (open, Some((from + open + 1, from + body.len() - 1))),
        _ if colon => (body.len(), None),
        _ => return None,
    };
    if tag_len == 0 || tag_len > MAX_TAG {
        return None;
    }
    let used = (end + usize::from(b.get(end) == Some(&b' '))).min(b.len());
    Some((from + tag_len, pid, used))
}
