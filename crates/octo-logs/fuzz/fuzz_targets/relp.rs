//! RELP frames from arbitrary bytes: no panic, each frame's data is bounded by the limit, and
//! decoding always consumes what it returns.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use octo_logs::relp::decode;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode(&mut buf, 4096) {
            Ok(Some(f)) => {
                assert!(f.data.len() <= 4096);
                assert!(buf.len() < before);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
