//! The rules OpenKAT ships (octopoes/bits), with the same ids, inputs and finding types, written
//! afresh. Each module groups bits about one subject.

use std::sync::Arc;

use crate::definition::Bit;

pub mod ciphers;
pub mod dns;
pub mod headers;
pub mod ports;
pub mod questions;
pub mod retire_js;
pub mod risk;
pub mod spf;
pub mod web;

/// Every built-in bit.
pub fn all() -> Vec<Arc<dyn Bit>> {
    let groups = [
        questions::bits(),
        headers::bits(),
        ciphers::bits(),
        risk::bits(),
        dns::bits(),
        web::bits(),
        ports::bits(),
        retire_js::bits(),
        spf::bits(),
    ];
    groups.into_iter().flatten().map(|b| Arc::new(b) as Arc<dyn Bit>).collect()
}
