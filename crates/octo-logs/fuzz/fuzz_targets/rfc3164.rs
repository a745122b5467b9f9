//! The RFC 3164 parser and its device variants on any bytes, with and without a PRI, in a zone
//! with daylight saving time: no panic, the message is part of the line, times print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octo_logs::{parse, LogTime, ParseContext, TimeZoneSpec};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let zone: TimeZoneSpec = "Europe/Amsterdam".parse().unwrap();
    let ctx = ParseContext { received: LogTime(1_764_000_000_000_000), timezone: zone };
    for line in [text.to_string(), format!("<38>{text}")] {
        let m = parse(&line, &ctx);
        assert!(line.contains(m.msg));
        let _ = m.to_json();
        if let Some(t) = m.timestamp {
            let _ = t.to_string();
        }
    }
});
