//! cipher-classification: judges each offered TLS cipher suite by its parts.
//!
//! OpenKAT looks suites up in a table. Here an OpenSSL suite name is split into key exchange,
//! authentication, bulk encryption and MAC, and each part is judged by the same verdicts, so a
//! suite the table never listed is still judged by what it is made of. A name that does not
//! parse is "Unknown cipher" (a recommendation), as in OpenKAT.

use crate::definition::{BitDefinition, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![FnBit::new(BitDefinition::new("cipher-classification", "TLSCipher"), cipher_classification)]
}

/// How bad a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Recommendation = 1,
    Medium = 2,
    Critical = 3,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Recommendation => "Recommendation",
            Severity::Medium => "Medium",
            Severity::Critical => "Critical",
        }
    }

    fn finding_type(self) -> &'static str {
        match self {
            Severity::Recommendation => "KAT-RECOMMENDATION-BAD-CIPHER",
            Severity::Medium => "KAT-MEDIUM-BAD-CIPHER",
            Severity::Critical => "KAT-CRITICAL-BAD-CIPHER",
        }
    }
}

/// The problems of one suite, in the order key exchange, authentication, encryption, MAC.
pub(crate) fn judge(suite: &str) -> Vec<(Severity, String)> {
    use Severity::*;
    let s = suite.trim().to_ascii_uppercase();
    let mut out = Vec::new();
    // TLS 1.3 suites fix key exchange and authentication; only the AEAD varies.
    if let Some(rest) = s.strip_prefix("TLS_") {
        match rest {
            "AES_128_GCM_SHA256" | "AES_256_GCM_SHA384" | "CHACHA20_POLY1305_SHA256" => {}
            "AES_128_CCM_SHA256" => out.push((Medium, "Using CCM as bulk encryption algorithm".into())),
            "AES_128_CCM_8_SHA256" => out.push((Critical, "Using CCM-8 as bulk encryption algorithm".into())),
            _ => out.push((Recommendation, "Unknown cipher".into())),
        }
        return out;
    }
    let parts: Vec<&str> = s.split('-').collect();
    let has = |p: &str| parts.contains(&p);
    // Key exchange and authentication, from the leading parts of the name.
    let (kx, au): (&str, &str) = match parts.as_slice() {
        ["ADH", ..] => ("ANON-DH", "NONE"),
        ["AECDH", ..] => ("ANON-ECDH", "NONE"),
        ["ECDHE", "PSK", ..] => ("ECDHEPSK", "PSK"),
        ["DHE", "PSK", ..] => ("DHEPSK", "PSK"),
        ["RSA", "PSK", ..] => ("RSAPSK", "RSA"),
        ["PSK", ..] => ("PSK", "PSK"),
        ["SRP", "RSA", ..] => ("SRP", "RSA"),
        ["SRP", "DSS", ..] => ("SRP", "DSS"),
        ["SRP", ..] => ("SRP", "SRP"),
        ["ECDHE", "ECDSA", ..] => ("ECDH", "ECDSA"),
        ["ECDHE", "RSA", ..] => ("ECDH", "RSA"),
        ["DHE" | "EDH", "RSA", ..] => ("DH", "RSA"),
        ["DHE" | "EDH", "DSS", ..] => ("DH", "DSS"),
        [first, ..] if is_cipher_part(first) => ("RSA", "RSA"),
        _ => return vec![(Recommendation, "Unknown cipher".into())],
    };
    match kx {
        "ANON-DH" | "ANON-ECDH" => out.push((Critical, "Supporting unsafe anonymous key exchanges".into())),
        "ECDHEPSK" | "DHEPSK" | "RSAPSK" | "PSK" => {
            out.push((Critical, "Unsafe key exchange algorithm, using PSK".into()))
        }
        "SRP" => out.push((Critical, "Unsafe key exchange algorithm, using SRP".into())),
        "RSA" => out.push((Medium, "Outdated key exchange algorithm detected, using RSA".into())),
        _ => {}
    }
    match au {
        "DSS" => out.push((Critical, "Unsafe certificate verification algorithm, using DSS".into())),
        "NONE" => out.push((Critical, "Anonymous certificate verification ciphers detected".into())),
        "PSK" => out.push((Critical, "PSK as certificate verification cipher detected".into())),
        "SRP" => out.push((Critical, "SRP as certificate verification cipher detected".into())),
        _ => {}
    }
    let name = s.as_str();
    let aead = has("GCM") || name.contains("CCM") || name.contains("CHACHA20");
    let encryption = if name.contains("NULL") {
        Some((Critical, "Using null ciphers as bulk encryption algorithm"))
    } else if name.contains("CHACHA20") {
        None
    } else if name.contains("ARIA") {
        Some((Critical, "Using ARIA as bulk encryption algorithm"))
    } else if name.contains("SEED") {
        Some((Critical, "Using SEED as bulk encryption algorithm"))
    } else if name.contains("RC4") {
        Some((Critical, "Using RC4 as bulk encryption algorithm"))
    } else if name.contains("DES") {
        Some((Critical, "Using DES or 3DES as bulk encryption algorithm"))
    } else if name.contains("IDEA") || name.contains("RC2") {
        Some((Critical, "Using an obsolete bulk encryption algorithm"))
    } else if name.contains("CAMELLIA") {
        Some((Medium, "Using Camellia as bulk encryption algorithm"))
    } else if has("CCM8") {
        Some((Critical, "Using CCM-8 as bulk encryption algorithm"))
    } else if has("CCM") {
        Some((Medium, "Using CCM as bulk encryption algorithm"))
    } else if has("GCM") {
        None
    } else if name.contains("AES") {
        Some((Medium, "Using CBC as bulk encryption algorithm"))
    } else {
        return vec![(Recommendation, "Unknown cipher".into())];
    };
    if let Some((sev, reason)) = encryption {
        out.push((sev, reason.into()));
    }
    if !aead {
        match parts.last().copied() {
            Some("MD5") => out.push((Critical, "Using MD5 as hash function".into())),
            Some("SHA") => out.push((Medium, "Using SHA-1 as hash function".into())),
            _ => {}
        }
    }
    out
}

/// Whether the first part of a name is already the cipher (suites with RSA key exchange, whose
/// names start there: `AES128-SHA`, `CAMELLIA256-SHA`, `NULL-SHA256`).
fn is_cipher_part(p: &str) -> bool {
    ["AES", "CAMELLIA", "ARIA", "SEED", "NULL", "DES", "RC4", "IDEA", "RC2", "CHACHA20"]
        .iter()
        .any(|c| p.starts_with(c))
}

fn cipher_classification(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let Some(suites) = i.source.get("suites").map(|v| v.to_json()) else { return Ok(vec![]) };
    let mut highest: Option<Severity> = None;
    let mut reasons = Vec::new();
    if let serde_json::Value::Object(by_protocol) = &suites {
        for list in by_protocol.values() {
            for suite in list.as_array().into_iter().flatten() {
                let Some(name) = suite.get("cipher_suite_name").and_then(|n| n.as_str()) else { continue };
                for (sev, reason) in judge(name) {
                    highest = highest.max(Some(sev));
                    reasons.push(format!("{name} - {reason} ({}).", sev.name()));
                }
            }
        }
    }
    let Some(highest) = highest else { return Ok(vec![]) };
    i.kat_finding(
        highest.finding_type(),
        i.source.primary_key(),
        &format!("One or more of the cipher suites should not be used because:\n{}", reasons.join("\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_judged() {
        assert!(judge("ECDHE-RSA-AES128-GCM-SHA256").is_empty());
        assert!(judge("ECDHE-ECDSA-CHACHA20-POLY1305").is_empty());
        assert!(judge("TLS_AES_256_GCM_SHA384").is_empty());
        assert_eq!(
            judge("ECDHE-RSA-AES256-SHA384"),
            vec![(Severity::Medium, "Using CBC as bulk encryption algorithm".into())]
        );
        let psk = judge("PSK-AES128-CCM");
        assert_eq!(psk.iter().map(|p| p.0).max(), Some(Severity::Critical));
        assert_eq!(psk.len(), 3);
        let rsa = judge("AES128-SHA");
        assert_eq!(
            rsa,
            vec![
                (Severity::Medium, "Outdated key exchange algorithm detected, using RSA".into()),
                (Severity::Medium, "Using CBC as bulk encryption algorithm".into()),
                (Severity::Medium, "Using SHA-1 as hash function".into()),
            ]
        );
        assert_eq!(judge("something odd"), vec![(Severity::Recommendation, "Unknown cipher".into())]);
        assert_eq!(judge("DHE-DSS-AES256-GCM-SHA384")[0].0, Severity::Critical);
        assert_eq!(judge("ECDHE-ECDSA-AES128-CCM8").last().map(|p| p.0), Some(Severity::Critical));
    }
}
