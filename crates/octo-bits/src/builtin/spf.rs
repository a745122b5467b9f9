//! spf-discovery: parses SPF TXT records (RFC 7208) into the record and its mechanisms, and
//! flags invalid records and the deprecated `ptr` mechanism.

use serde_json::json;

use crate::definition::{reference, text, BitDefinition, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![FnBit::new(BitDefinition::new("spf-discovery", "DNSTXTRecord"), spf_discovery)]
}

fn is_qualifier(c: char) -> bool {
    matches!(c, '+' | '-' | '~' | '?')
}

/// `%{s}`-style macro expansions and the escapes `%%`, `%_`, `%-` (RFC 7208 §7.1); the rest of
/// a macro-string is visible ASCII.
fn macro_string_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match b.get(i + 1) {
                Some(b'%' | b'_' | b'-') => i += 2,
                Some(b'{') => {
                    let Some(end) = s[i..].find('}') else { return false };
                    let body = &s[i + 2..i + end];
                    let mut chars = body.chars();
                    let letter_ok = chars.next().is_some_and(|c| "slodiphcrtvSLODIPHCRTV".contains(c));
                    let rest: String = chars.collect();
                    let digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                    let rest = digits.strip_prefix(['r', 'R']).unwrap_or(digits);
                    if !letter_ok || !rest.chars().all(|c| ".-+,/_=".contains(c)) {
                        return false;
                    }
                    i += end + 1;
                }
                _ => return false,
            },
            c if (0x21..=0x7e).contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

/// A domain-spec: a macro-string whose last label is a top label or a macro.
fn domain_spec_ok(s: &str) -> bool {
    if s.is_empty() || !macro_string_ok(s) {
        return false;
    }
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let last = trimmed.rsplit('.').next().unwrap_or_default();
    if last.starts_with('%') && last.ends_with('}') || matches!(last, "%%" | "%_" | "%-") {
        return true;
    }
    // toplabel: alphanumerics and hyphens, at least one letter, not ending in a hyphen.
    !last.is_empty()
        && last.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && last.chars().any(|c| c.is_ascii_alphabetic())
        && !last.ends_with('-')
        && !last.starts_with('-')
}

fn cidr_ok(s: &str, v4_max: u8, v6_max: u8) -> bool {
    // dual-cidr-length: [ "/" ip4-cidr ] [ "//" ip6-cidr ]
    let (v4, v6) = match s.split_once("//") {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let num_ok = |n: &str, max: u8| {
        !n.is_empty() && n.len() <= 3 && !(n.len() > 1 && n.starts_with('0')) && n.parse::<u8>().is_ok_and(|v| v <= max)
    };
    let v4_ok = v4.is_empty() || v4.strip_prefix('/').is_some_and(|n| num_ok(n, v4_max));
    v4_ok && v6.is_none_or(|n| num_ok(n, v6_max))
}

/// `a`/`mx` with optional `:domain-spec` and dual CIDR.
fn a_or_mx_ok(rest: &str) -> bool {
    if let Some(spec) = rest.strip_prefix(':') {
        let (domain, cidr) = match spec.find('/') {
            Some(p) => spec.split_at(p),
            None => (spec, ""),
        };
        domain_spec_ok(domain) && cidr_ok(cidr, 32, 128)
    } else {
        cidr_ok(rest, 32, 128)
    }
}

/// Whether one term (directive or modifier) is well-formed.
fn term_ok(term: &str) -> bool {
    let lower = term.to_ascii_lowercase();
    let body = lower.strip_prefix(is_qualifier).unwrap_or(&lower);
    let original = term.strip_prefix(is_qualifier).unwrap_or(term);
    let qualified = body.len() != lower.len();
    if body == "all" {
        return true;
    }
    if let Some(d) = body.strip_prefix("include:") {
        return domain_spec_ok(&original[8..]) && !d.is_empty();
    }
    if let Some(d) = body.strip_prefix("exists:") {
        return domain_spec_ok(&original[7..]) && !d.is_empty();
    }
    if body == "ptr" {
        return true;
    }
    if body.starts_with("ptr:") {
        return domain_spec_ok(&original[4..]);
    }
    if let Some(ip) = body.strip_prefix("ip4:") {
        let (addr, cidr) = match ip.find('/') {
            Some(p) => ip.split_at(p),
            None => (ip, ""),
        };
        return addr.parse::<std::net::Ipv4Addr>().is_ok()
            && addr.split('.').all(|o| !(o.len() > 1 && o.starts_with('0')))
            && cidr_ok(cidr, 32, 0)
            && !cidr.contains("//");
    }
    if let Some(ip) = body.strip_prefix("ip6:") {
        let (addr, cidr) = match ip.find('/') {
            Some(p) => ip.split_at(p),
            None => (ip, ""),
        };
        return addr.parse::<std::net::Ipv6Addr>().is_ok()
            && (cidr.is_empty() || cidr.strip_prefix('/').is_some_and(|n| n.parse::<u8>().is_ok_and(|v| v <= 128)));
    }
    if body == "a" || body.starts_with("a:") || body.starts_with("a/") {
        return a_or_mx_ok(&original[1..]);
    }
    if body == "mx" || body.starts_with("mx:") || body.starts_with("mx/") {
        return a_or_mx_ok(&original[2..]);
    }
    // Modifiers take no qualifier.
    if qualified {
        return false;
    }
    if let Some((name, value)) = original.split_once('=') {
        let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        return match name.to_ascii_lowercase().as_str() {
            "redirect" | "exp" => domain_spec_ok(value),
            _ => name_ok && macro_string_ok(value),
        };
    }
    false
}

/// The terms of an SPF record, or `None` when it is not a valid one.
pub(crate) fn parse(record: &str) -> Option<Vec<&str>> {
    let version = record.get(..6)?;
    if !version.eq_ignore_ascii_case("v=spf1") {
        return None;
    }
    let rest = &record[6..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let terms: Vec<&str> = rest.split(' ').filter(|t| !t.is_empty()).collect();
    terms.iter().all(|t| term_ok(t)).then_some(terms)
}

fn spf_discovery(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let txt = &i.source;
    let value = text(txt, "value");
    if !value.starts_with("v=spf1") {
        return Ok(vec![]);
    }
    let hostname = reference(txt, "hostname")?;
    let host_tokens = i.tokens(hostname)?;
    let domain = host_tokens["name"].as_str().unwrap_or_default().to_owned();
    let network = format!("Network|{}", host_tokens["network"]["name"].as_str().unwrap_or_default());
    // As internet.nl does: the domain macro is the record's own name, and `exists:` with a
    // sender-specific macro says nothing about this domain.
    let expanded = value.replace("%{d}", &domain);
    let expanded = strip_sender_exists(&expanded);
    let Some(terms) = parse(&expanded) else {
        return i.kat_finding("KAT-INVALID-SPF", txt.primary_key(), "This SPF record is invalid");
    };
    let ttl = txt.get("ttl").map(|v| v.to_json()).unwrap_or(serde_json::Value::Null);
    let mut record = json!({ "dns_txt_record": txt.primary_key().as_str(), "value": value, "ttl": ttl });
    let spf_key = i.make("DNSSPFRecord", record.clone())?.primary_key().as_str().to_owned();
    let mut out = Vec::new();
    let hostname_mechanism = |out: &mut Vec<Ooi>, name: &str, mechanism: &str, qualifier: &str| -> BitResult<()> {
        let target = if name.is_empty() {
            hostname.as_str().to_owned()
        } else {
            // Names with macros are templates, not hosts: nothing to record.
            let Ok(h) = i.make("Hostname", json!({ "name": name, "network": network })) else { return Ok(()) };
            let key = h.primary_key().as_str().to_owned();
            out.push(h);
            key
        };
        out.push(i.make(
            "DNSSPFMechanismHostname",
            json!({ "spf_record": spf_key, "hostname": target, "mechanism": mechanism, "qualifier": qualifier }),
        )?);
        Ok(())
    };
    for term in terms {
        let (qualifier, mechanism) = match term.chars().next() {
            Some(c) if is_qualifier(c) => (&term[..1], &term[1..]),
            _ => ("+", term),
        };
        let lower = mechanism.to_ascii_lowercase();
        if let Some(ip) = lower.strip_prefix("ip4:").or_else(|| lower.strip_prefix("ip6:")) {
            // Networks (with a mask) are left out, as in OpenKAT.
            if ip.contains('/') {
                continue;
            }
            let (ip_type, kind) =
                if lower.starts_with("ip4:") { ("IPAddressV4", "ip4") } else { ("IPAddressV6", "ip6") };
            let address = i.make(ip_type, json!({ "address": ip, "network": network }))?;
            let mech = i.make(
                "DNSSPFMechanismIP",
                json!({ "spf_record": spf_key, "ip": address.primary_key().as_str(), "qualifier": qualifier, "mechanism": kind }),
            )?;
            out.extend([address, mech]);
        } else if lower == "a" || lower == "mx" || lower.starts_with("a/") || lower.starts_with("mx/") {
            let kind = if lower.starts_with('a') { "a" } else { "mx" };
            hostname_mechanism(&mut out, "", kind, qualifier)?;
        } else if let Some(spec) = lower.strip_prefix("a:").or_else(|| lower.strip_prefix("mx:")) {
            let kind = if lower.starts_with('a') { "a" } else { "mx" };
            let name = spec.split('/').next().unwrap_or_default();
            hostname_mechanism(&mut out, name, kind, qualifier)?;
        } else if lower == "ptr" {
            hostname_mechanism(&mut out, "", "ptr", qualifier)?;
            out.extend(i.kat_finding(
                "KAT-DEPRECATED-SPF-MECHANISM",
                txt.primary_key(),
                "This SPF record contains a PTR mechanism, Use of PTR is deprecated.",
            )?);
        } else if let Some((kind, name)) =
            ["ptr:", "exists:", "include:"].iter().find_map(|p| lower.strip_prefix(p).map(|n| (&p[..p.len() - 1], n)))
        {
            hostname_mechanism(&mut out, name, kind, qualifier)?;
        } else if let Some(name) = lower.strip_prefix("redirect=") {
            hostname_mechanism(&mut out, name, "redirect", "+")?;
        } else if lower.starts_with("exp=") {
            record["exp"] = json!(mechanism[4..]);
        } else if lower == "all" {
            record["all"] = json!(qualifier);
        }
    }
    out.push(i.make("DNSSPFRecord", record)?);
    Ok(out)
}

/// Removes `exists:%{…}…` terms, whose target depends on the sender.
fn strip_sender_exists(value: &str) -> String {
    value
        .split(' ')
        .map(|t| {
            let body = t.strip_prefix(is_qualifier).unwrap_or(t);
            if body.to_ascii_lowercase().starts_with("exists:%{") {
                ""
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(parse("v=spf1 ip4:1.1.1.1 ~all exp=explain._spf.example.com").is_some());
        assert!(parse("v=spf1 assdfsdf w rgw").is_none());
        assert!(parse("v=spf1 include:_spf.google.com -all").is_some());
        assert!(parse("v=spf1 a:mail.example.com/24 mx//64 ip6:2001:db8::/32 -all").is_some());
        assert!(parse("v=spf1 ip4:1.1.1.300 -all").is_none());
        assert!(parse("v=spf1 -redirect=example.com").is_none());
        assert!(parse("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all").is_some());
        assert!(parse("v=spf10").is_none());
        assert!(parse("v=spf1").is_some());
    }
}
