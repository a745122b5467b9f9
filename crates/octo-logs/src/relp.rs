//! RELP, the Reliable Event Logging Protocol of rsyslog's `omrelp`/`imrelp`: every message has
//! a transaction number and is acknowledged by the receiver, so a sender keeps (and resends)
//! what was not acknowledged. We acknowledge a message only once it is durable in the raw store,
//! which is what makes "nothing is lost across a restart" true.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.

use bytes::{Buf, Bytes, BytesMut};

/// One RELP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelpFrame {
    /// The transaction number (1–999999999; 0 only for `serverclose`).
    pub txnr: u64,
    /// The command (`open`, `syslog`, `close`, `rsp`, …).
    pub command: String,
    /// The data.
    pub data: Bytes,
}

/// A frame that breaks the protocol: the session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad RELP frame: {0}")]
pub struct RelpError(pub &'static str);

/// The next whole frame in `buf`, consumed; `None` when more bytes are needed. Frames whose data
/// is longer than `max_data` are refused (the sender is told the limit when the session opens).
pub fn decode(buf: &mut BytesMut, max_data: usize) -> Result<Option<RelpFrame>, RelpError> {
    let (txnr, a) = match number(buf, 0, 9)? {
        Some(v) => v,
        None => return Ok(None),
    };
    let cmd_end = match buf[a..].iter().take(33).position(|&c| c == b' ') {
        Some(p) => a + p,
        None if buf.len() - a > 32 => return Err(RelpError("command too long")),
        None => return Ok(None),
    };
    let command = &buf[a..cmd_end];
    if command.is_empty() || !command.iter().all(u8::is_ascii_alphabetic) {
        return Err(RelpError("command must be letters"));
    }
    let (len, b) = match number(buf, cmd_end + 1, 9)? {
        Some(v) => v,
        None => return Ok(None),
    };
    let len = usize::try_from(len).map_err(|_| RelpError("length too large"))?;
    if len > max_data {
        return Err(RelpError("data longer than the session allows"));
    }
    // `b` is just past the separator after DATALEN: a space before data, or the trailer.
    let (data_start, trailer) = if len == 0 {
        (b - 1, b - 1)
    } else {
        if buf[b - 1] != b' ' {
            return Err(RelpError("DATALEN must be followed by a space and the data"));
        }
        (b, b + len)
    };
    if buf.len() <= trailer {
        return Ok(None);
    }
    if buf[trailer] != b'\n' {
        return Err(RelpError("frame does not end with LF"));
    }
    let command = String::from_utf8_lossy(command).into_owned();
    buf.advance(data_start);
    let data = buf.split_to(trailer - data_start).freeze();
    buf.advance(1);
    Ok(Some(RelpFrame { txnr, command, data }))
}

/// Digits at `at` followed by a space or LF (for a zero DATALEN): the value and the offset
/// after the separator; None when the buffer ends first.
fn number(buf: &[u8], at: usize, max_digits: usize) -> Result<Option<(u64, usize)>, RelpError> {
    let mut v: u64 = 0;
    let mut i = at;
    while i < buf.len() && buf[i].is_ascii_digit() {
        if i - at == max_digits {
            return Err(RelpError("number too long"));
        }
        v = v * 10 + u64::from(buf[i] - b'0');
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if i == at || !(buf[i] == b' ' || buf[i] == b'\n') {
        return Err(RelpError("expected a number"));
    }
    Ok(Some((v, i + 1)))
}

/// A response frame: `TXNR rsp LEN CODE TEXT[\nDATA]`.
pub fn response(txnr: u64, code: u16, text: &str, extra: Option<&str>) -> Vec<u8> {
    let mut data = format!("{code} {text}");
    if let Some(e) = extra {
        data.push('\n');
        data.push_str(e);
    }
    format!("{txnr} rsp {} {data}\n", data.len()).into_bytes()
}

/// The frame that tells a client the server ends the session.
pub const SERVERCLOSE: &[u8] = b"0 serverclose 0\n";

/// What we offer in answer to `open`.
pub fn open_offers(max_data: usize) -> String {
    format!("relp_version=0\nrelp_software=octograph,{},https://example.invalid/octograph\ncommands=syslog\nmaxdatasize={max_data}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_any_chunking() {
        let input: &[u8] = b"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 9 <13>hello\n3 close 0\n";
        for split in 0..input.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for part in [&input[..split], &input[split..]] {
                buf.extend_from_slice(part);
                while let Some(f) = decode(&mut buf, 1024).unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(out.len(), 3, "split {split}");
            assert_eq!(out[0].command, "open");
            assert_eq!(&out[0].data[..], b"relp_version=0\ncommands=syslog");
            assert_eq!((out[1].txnr, &out[1].data[..]), (2, &b"<13>hello"[..]));
            assert_eq!((out[2].command.as_str(), out[2].data.len()), ("close", 0));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn broken_frames_are_errors() {
        for bad in
            [&b"x open 0\n"[..], b"1 op3n 0\n", b"1 syslog 3 abcd\n", b"1 syslog 3abc\n", b"1234567890 syslog 0\n"]
        {
            let mut buf = BytesMut::from(bad);
            assert!(decode(&mut buf, 1024).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut buf = BytesMut::from(&b"1 syslog 2000 "[..]);
        assert!(decode(&mut buf, 1024).is_err(), "over the size limit");
        assert_eq!(response(7, 200, "OK", None), b"7 rsp 6 200 OK\n");
    }
}
