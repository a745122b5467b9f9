//! Any bytes through both syslog grammars: no panic, the message is part of the line, and the
//! JSON form and structured data can always be produced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octo_logs::{parse, LogTime, ParseContext, TimeZoneSpec};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for timezone in [TimeZoneSpec::Fixed(0), "Europe/Amsterdam".parse().unwrap()] {
        let ctx = ParseContext { received: LogTime(1_764_000_000_000_000), timezone };
        let m = parse(&text, &ctx);
        assert!(text.contains(m.msg));
        let _ = m.structured_data();
        let _ = m.to_json();
        if let Some(t) = m.timestamp {
            let _ = t.to_string();
        }
    }
});
