//! Splitting a TCP or TLS byte stream into syslog messages (RFC 6587): octet counting
//! (`LEN SP MSG`, what `logger --octet-count` and RFC 5425 senders use) or non-transparent
//! framing (a message per line, what most devices send). The framing is detected from the
//! first byte of a connection; a connection that starts counting octets and then sends a frame
//! without a valid length falls back to lines, as rsyslog does, rather than losing data.

use bytes::{Buf, Bytes, BytesMut};

/// How a connection frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not known yet: the first byte decides (a digit means octet counting).
    Detect,
    /// `MSG-LEN SP SYSLOG-MSG`.
    OctetCounting,
    /// Messages end with LF (or NUL); a CR before the LF is dropped.
    NonTransparent,
}

/// One message cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message, without framing.
    pub bytes: Bytes,
    /// Whether it was longer than the limit and was cut there (the rest is discarded).
    pub truncated: bool,
}

/// The framer of one connection. Feed it the bytes read into a `BytesMut` and take frames with
/// [`Framer::next_frame`] until it answers `None`; at the end of the stream, [`Framer::finish`]
/// gives what is left.
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    max_frame: usize,
    /// Bytes of an over-long message still to be thrown away.
    discard: Discard,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Discard {
    None,
    /// This many more bytes of an octet-counted frame.
    Bytes(usize),
    /// Up to and including the next line end.
    Line,
}

/// The most digits a MSG-LEN may have (a length of up to 999,999,999 bytes).
const MAX_LEN_DIGITS: usize = 9;

impl Framer {
    /// A framer for a new connection; messages longer than `max_frame` are cut there.
    pub fn new(framing: Framing, max_frame: usize) -> Framer {
        Framer { framing, max_frame: max_frame.max(1), discard: Discard::None }
    }

    /// The framing in use (still `Detect` before the first byte).
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The next whole frame in `buf`, consuming it; `None` when more bytes are needed.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            match self.discard {
                Discard::None => {}
                Discard::Bytes(n) => {
                    let take = n.min(buf.len());
                    buf.advance(take);
                    if take < n {
                        self.discard = Discard::Bytes(n - take);
                        return None;
                    }
                    self.discard = Discard::None;
                }
                Discard::Line => match memchr::memchr2(b'\n', 0, buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.discard = Discard::None;
                    }
                    None => {
                        buf.clear();
                        return None;
                    }
                },
            }
            if buf.is_empty() {
                return None;
            }
            if self.framing == Framing::Detect {
                self.framing = if buf[0].is_ascii_digit() { Framing::OctetCounting } else { Framing::NonTransparent };
            }
            let frame = match self.framing {
                Framing::OctetCounting => match self.counted(buf) {
                    Counted::Frame(f) => Some(f),
                    Counted::NeedMore => return None,
                    Counted::Uncounted => {
                        tracing::debug!("a frame without a valid octet count: reading lines from here on");
                        self.framing = Framing::NonTransparent;
                        continue;
                    }
                },
                _ => match self.line(buf) {
                    Some(f) => Some(f),
                    None => return None,
                },
            };
            match frame {
                // Empty lines (keep-alives, CRLF pairs) are no messages.
                Some(f) if f.bytes.is_empty() => continue,
                other => return other,
            }
        }
    }

    /// What is left at the end of the stream: an unterminated last line is a message; a partial
    /// octet-counted frame is kept, marked truncated, so nothing received is dropped.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(f) = self.next_frame(buf) {
            return Some(f);
        }
        if buf.is_empty() || self.discard != Discard::None {
            buf.clear();
            return None;
        }
        let truncated = self.framing == Framing::OctetCounting;
        let mut rest = buf.split().freeze();
        if truncated {
            // Drop the count and its space: what follows is the partial message.
            if let Some(sp) = rest.iter().position(|&c| c == b' ') {
                rest.advance(sp + 1);
            }
        }
        let end = rest.len().min(self.max_frame);
        let truncated = truncated || rest.len() > self.max_frame;
        let bytes = trim_line_end(rest.slice(..end));
        (!bytes.is_empty()).then_some(Frame { bytes, truncated })
    }

    fn counted(&mut self, buf: &mut BytesMut) -> Counted {
        let mut len = 0usize;
        let mut i = 0;
        while i < buf.len() && buf[i].is_ascii_digit() {
            if i == MAX_LEN_DIGITS {
                return Counted::Uncounted;
            }
            len = len * 10 + usize::from(buf[i] - b'0');
            i += 1;
        }
        if i == buf.len() {
            return Counted::NeedMore;
        }
        if i == 0 || buf[i] != b' ' || buf[0] == b'0' {
            return Counted::Uncounted;
        }
        let start = i + 1;
        let keep = len.min(self.max_frame);
        if buf.len() < start + keep {
            // Wait for the message (or for as much of it as is kept).
            return Counted::NeedMore;
        }
        buf.advance(start);
        let bytes = buf.split_to(keep).freeze();
        if keep < len {
            self.discard = Discard::Bytes(len - keep);
        }
        Counted::Frame(Frame { bytes: trim_line_end(bytes), truncated: keep < len })
    }

    fn line(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        let search = &buf[..buf.len().min(self.max_frame + 1)];
        match memchr::memchr2(b'\n', 0, search) {
            Some(i) => {
                let line = buf.split_to(i + 1).freeze();
                Some(Frame { bytes: trim_line_end(line.slice(..i)), truncated: false })
            }
            None if buf.len() > self.max_frame => {
                let bytes = buf.split_to(self.max_frame).freeze();
                self.discard = Discard::Line;
                Some(Frame { bytes, truncated: true })
            }
            None => None,
        }
    }
}

enum Counted {
    Frame(Frame),
    NeedMore,
    Uncounted,
}

/// Without a trailing CR or LF (octet-counted senders often add one inside the count).
fn trim_line_end(mut b: Bytes) -> Bytes {
    while matches!(b.last(), Some(b'\n' | b'\r' | b'\0')) {
        b.truncate(b.len() - 1);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framing: Framing, max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut f = Framer::new(framing, max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(fr) = f.next_frame(&mut buf) {
                out.push((String::from_utf8_lossy(&fr.bytes).into_owned(), fr.truncated));
            }
        }
        while let Some(fr) = f.finish(&mut buf) {
            out.push((String::from_utf8_lossy(&fr.bytes).into_owned(), fr.truncated));
        }
        out
    }

    fn texts(v: Vec<(String, bool)>) -> Vec<String> {
        v.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn lines_in_any_chunking() {
        let input = b"<13>a one\r\n<13>b two\n\n<13>c three\0<13>d four";
        for split in 0..input.len() {
            let got = texts(frames(Framing::Detect, 1024, &[&input[..split], &input[split..]]));
            assert_eq!(got, ["<13>a one", "<13>b two", "<13>c three", "<13>d four"], "split at {split}");
        }
    }

    #[test]
    fn octet_counting_in_any_chunking() {
        let input = b"9 <13>a one10 <13>b two\n7 <13>c d";
        for split in 0..input.len() {
            let got = texts(frames(Framing::Detect, 1024, &[&input[..split], &input[split..]]));
            assert_eq!(got, ["<13>a one", "<13>b two", "<13>c d"], "split at {split}");
        }
    }

    #[test]
    fn messages_with_newlines_inside_a_count_stay_whole() {
        assert_eq!(texts(frames(Framing::Detect, 1024, &[b"9 <13>a\nb c"])), ["<13>a\nb c"]);
    }

    #[test]
    fn over_long_frames_are_cut_and_the_rest_discarded() {
        let got = frames(Framing::Detect, 4, &[b"<13>abcdefgh\n<13>x\n"]);
        assert_eq!(got, [("<13>".into(), true), ("<13>".into(), true)]);
        let got = frames(Framing::Detect, 4, &[b"8 abcdefgh", b"3 xyz"]);
        assert_eq!(got, [("abcd".into(), true), ("xyz".into(), false)]);
    }

    #[test]
    fn a_bad_count_falls_back_to_lines() {
        let got = texts(frames(Framing::Detect, 1024, &[b"5 <13>a2026-11-22T10:00:00Z host x\n"]));
        assert_eq!(got, ["<13>a", "2026-11-22T10:00:00Z host x"]);
        // A line-framed connection that starts with an ISO timestamp is read as lines.
        let got = texts(frames(Framing::Detect, 1024, &[b"2026-11-22T10:00:00Z h a\n2026-11-22T10:00:01Z h b\n"]));
        assert_eq!(got, ["2026-11-22T10:00:00Z h a", "2026-11-22T10:00:01Z h b"]);
    }

    #[test]
    fn a_partial_counted_frame_at_the_end_is_kept_as_truncated() {
        assert_eq!(frames(Framing::Detect, 1024, &[b"20 <13>partial"]), [("<13>partial".into(), true)]);
    }
}
