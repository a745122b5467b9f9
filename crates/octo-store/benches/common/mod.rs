//! Shared synthetic data for the store benchmarks: OOI-shaped keys and documents.

#![allow(dead_code)]

/// Deterministic xorshift, so every run and both engines see the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub fn ip(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

pub fn port_key(i: u64) -> String {
    format!("IPPort|internet|{}|tcp|{}", ip(i / 4), 1 + (i % 4) * 1000)
}

pub fn port_doc(i: u64, version: u64) -> Vec<u8> {
    format!(
        r#"{{"object_type":"IPPort","primary_key":"{}","address":"IPAddressV4|internet|{}","protocol":"tcp","port":{},"state":"open","version":{version}}}"#,
        port_key(i),
        ip(i / 4),
        1 + (i % 4) * 1000
    )
    .into_bytes()
}

pub fn port_ref(i: u64) -> String {
    format!("IPAddressV4|internet|{}", ip(i / 4))
}

pub fn host_key(i: u64) -> String {
    format!("Hostname|internet|host-{i}.example.com")
}

pub fn host_doc(i: u64) -> Vec<u8> {
    format!(
        r#"{{"object_type":"Hostname","primary_key":"{}","network":"Network|internet","name":"host-{i}.example.com"}}"#,
        host_key(i)
    )
    .into_bytes()
}

/// Microseconds for valid time number `v` (1 s apart, from 2026-01-01).
pub fn valid_micros(v: u64) -> i64 {
    1_767_225_600_000_000 + v as i64 * 1_000_000
}

/// The 1M-version store: 225k ports with 4 versions each (900k) and 100k hostnames (100k).
pub const PORTS: u64 = 225_000;
pub const PORT_VERSIONS: u64 = 4;
pub const HOSTS: u64 = 100_000;
pub const BATCH: u64 = 10_000;

/// A port key for the put benchmarks: numbered so that key order is number order.
pub fn numbered_port_key(k: u64) -> String {
    format!("IPPort|internet|{k:020}|tcp|80")
}

/// The address a numbered port references, in the same order as the port keys (a sorted import
/// writes both in step).
pub fn numbered_address_key(k: u64) -> String {
    format!("IPAddressV4|internet|{:020}", k / 4)
}
