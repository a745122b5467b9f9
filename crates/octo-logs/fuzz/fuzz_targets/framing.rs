//! A byte stream cut at fuzzer-chosen places: no panic, and no frame holds bytes that were not
//! sent or more than the limit.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use octo_logs::framing::{Framer, Framing};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let max = 1 + usize::from(cut) * 4;
    let mut framer = Framer::new(Framing::Detect, max);
    let mut buf = BytesMut::new();
    let mut out = 0usize;
    let step = 1 + usize::from(cut % 17);
    for part in rest.chunks(step) {
        buf.extend_from_slice(part);
        while let Some(f) = framer.next_frame(&mut buf) {
            assert!(f.bytes.len() <= max);
            out += f.bytes.len();
        }
    }
    while let Some(f) = framer.finish(&mut buf) {
        assert!(f.bytes.len() <= max);
        out += f.bytes.len();
    }
    assert!(out <= rest.len());
});
