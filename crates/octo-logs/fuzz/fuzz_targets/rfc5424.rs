//! The RFC 5424 parser on any bytes after a valid `<PRI>VERSION ` (so every input exercises it):
//! no panic, the message is part of the line, and the JSON form and structured data can always
//! be produced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octo_logs::{parse, Format, LogTime, ParseContext, TimeZoneSpec};

fuzz_target!(|data: &[u8]| {
    let line = format!("<165>1 {}", String::from_utf8_lossy(data));
    let ctx = ParseContext { received: LogTime(1_764_000_000_000_000), timezone: TimeZoneSpec::Fixed(3600) };
    let m = parse(&line, &ctx);
    assert!(matches!(m.format, Format::Rfc5424 | Format::Unparsed));
    assert!(line.contains(m.msg));
    let _ = m.structured_data();
    let _ = m.to_json();
});
