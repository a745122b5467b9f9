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

/// Every built-in bit: the ones written in Rust and the built-in rule files.
pub fn all() -> Vec<Arc<dyn Bit>> {
    let catalog = octo_model::Catalog::builtin();
    let mut bits = coded();
    for (name, text) in crate::rules::BUILTIN_RULES {
        // The built-in rule files are part of this crate; a test loads each of them.
        let rules = crate::rules::load_str(std::path::Path::new(name), text, &catalog)
            .unwrap_or_else(|e| panic!("built-in rule file: {e}"));
        bits.extend(rules.into_iter().map(|r| Arc::new(r) as Arc<dyn Bit>));
    }
    bits
}

/// The built-in bits written in Rust.
pub fn coded() -> Vec<Arc<dyn Bit>> {
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
