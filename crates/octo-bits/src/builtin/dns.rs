//! DNS bits: resolution, missing mail-security records, nameservers and IPv6.

use serde_json::json;

use crate::definition::{reference, text, BitDefinition, BitInput, BitResult, FnBit};
use octo_model::{Ooi, Reference};

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![
        FnBit::new(
            BitDefinition::new("dns-resolving", "Hostname")
                .param("DNSARecord", "hostname")
                .param("DNSAAAARecord", "hostname")
                .min_level(0),
            dns_resolving,
        ),
        FnBit::new(
            BitDefinition::new("dns-alias-resolving", "Hostname")
                .param("ResolvedHostname", "hostname")
                .param("DNSCNAMERecord", "target_hostname")
                .min_level(0),
            dns_alias_resolving,
        ),
        FnBit::new(BitDefinition::new("nxdomain-flag", "Hostname").param("NXDOMAIN", "hostname"), nxdomain_flag),
        FnBit::new(
            BitDefinition::new("nxdomain-header-flag", "Hostname")
                .param("NXDOMAIN", "hostname")
                .param("HTTPHeaderHostname", "hostname"),
            nxdomain_header_flag,
        ),
        FnBit::new(
            BitDefinition::new("missing-caa", "Hostname")
                .param("DNSCAARecord", "hostname")
                .param("NXDOMAIN", "hostname"),
            |i| missing_record(i, "DNSCAARecord", "KAT-NO-CAA", "This hostname does not have a CAA record"),
        ),
        FnBit::new(
            BitDefinition::new("missing-dkim", "Hostname")
                .param("DKIMExists", "hostname")
                .param("NXDOMAIN", "hostname"),
            |i| missing_record(i, "DKIMExists", "KAT-NO-DKIM", "This hostname does not support DKIM records"),
        ),
        FnBit::new(
            BitDefinition::new("missing-dmarc", "Hostname")
                .param("DMARCTXTRecord", "hostname")
                .param("NXDOMAIN", "hostname"),
            |i| missing_record(i, "DMARCTXTRecord", "KAT-NO-DMARC", "This hostname does not have a DMARC record"),
        ),
        FnBit::new(
            BitDefinition::new("missing-spf", "Hostname")
                .param("DNSSPFRecord", "dns_txt_record.hostname")
                .param("NXDOMAIN", "hostname"),
            |i| missing_record(i, "DNSSPFRecord", "KAT-NO-SPF", "This hostname does not have an SPF record"),
        ),
        FnBit::new(
            BitDefinition::new("ipv6-on-nameservers", "Hostname")
                .param("DNSNSRecord", "name_server_hostname")
                .param("DNSAAAARecord", "hostname"),
            ipv6_on_nameservers,
        ),
        FnBit::new(
            BitDefinition::new("ipv6-webservers", "Hostname")
                .param("DNSAAAARecord", "hostname")
                .param("DNSARecord", "hostname")
                .param("DNSNSRecord", "name_server_hostname"),
            ipv6_webservers,
        ),
        FnBit::new(
            BitDefinition::new("two-ipv6-nameservers", "Hostname")
                .param("Finding", "ooi [is DNSNSRecord].hostname")
                .param("DNSNSRecord", "hostname"),
            two_ipv6_nameservers,
        ),
        FnBit::new(BitDefinition::new("domain-owner-verification", "DNSNSRecord"), domain_owner_verification),
    ]
}

fn dns_resolving(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let hostname = i.source.primary_key();
    let mut out = Vec::new();
    for record in i.params_of("DNSARecord").chain(i.params_of("DNSAAAARecord")) {
        let address = reference(record, "address")?;
        out.push(i.make("ResolvedHostname", json!({ "hostname": hostname.as_str(), "address": address.as_str() }))?);
    }
    Ok(out)
}

/// A name that points here by CNAME resolves to every address this name resolves to. (Octopoes
/// also yields a copy for the name without its trailing dot; names never keep one here.)
fn dns_alias_resolving(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let mut out = Vec::new();
    for cname in i.params_of("DNSCNAMERecord") {
        let alias = reference(cname, "hostname")?;
        for resolved in i.params_of("ResolvedHostname") {
            let address = reference(resolved, "address")?;
            out.push(i.make("ResolvedHostname", json!({ "hostname": alias.as_str(), "address": address.as_str() }))?);
        }
    }
    Ok(out)
}

fn nxdomain_flag(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    if i.params_of("NXDOMAIN").next().is_none() {
        return Ok(vec![]);
    }
    i.kat_finding("KAT-NXDOMAIN", i.source.primary_key(), "The domain does not exist.")
}

fn nxdomain_header_flag(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    if i.params_of("NXDOMAIN").next().is_none() {
        return Ok(vec![]);
    }
    let mut out = vec![i.make("KATFindingType", json!({ "id": "KAT-NXDOMAIN-HEADER" }))?];
    for header in i.params_of("HTTPHeaderHostname") {
        let mut f = i.kat_finding(
            "KAT-NXDOMAIN-HEADER",
            header.primary_key(),
            "The hostname in the HTTP header does not exist",
        )?;
        out.extend(f.drain(1..));
    }
    Ok(out)
}

/// Whether a name is a registrable domain itself (`example.com`, `example.co.uk`), not a
/// subdomain or a public suffix: mail-security records are expected there.
pub(crate) fn is_registered_domain(name: &str) -> bool {
    psl::domain_str(name) == Some(name)
}

fn missing_record(i: &BitInput<'_>, record_type: &str, finding: &str, description: &str) -> BitResult<Vec<Ooi>> {
    if i.params_of("NXDOMAIN").next().is_some() || i.params_of(record_type).next().is_some() {
        return Ok(vec![]);
    }
    if !is_registered_domain(text(&i.source, "name")) {
        return Ok(vec![]);
    }
    i.kat_finding(finding, i.source.primary_key(), description)
}

fn ipv6_on_nameservers(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    if i.params_of("DNSAAAARecord").next().is_some() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for ns in i.params_of("DNSNSRecord") {
        out.extend(i.kat_finding("KAT-NAMESERVER-NO-IPV6", ns.primary_key(), "This nameserver has no IPv6 address")?);
    }
    Ok(out)
}

fn ipv6_webservers(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let has_a = i.params_of("DNSARecord").next().is_some();
    let has_aaaa = i.params_of("DNSAAAARecord").next().is_some();
    let is_nameserver = i.params_of("DNSNSRecord").next().is_some();
    if has_a && !has_aaaa && !is_nameserver {
        return i.kat_finding(
            "KAT-WEBSERVER-NO-IPV6",
            i.source.primary_key(),
            "There are no webservers with an IPv6 address.",
        );
    }
    Ok(vec![])
}

fn two_ipv6_nameservers(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let without_ipv6 = i
        .params_of("Finding")
        .filter(|f| {
            f.get("finding_type").and_then(|v| v.as_reference()).map(Reference::natural_key)
                == Some("KAT-NAMESERVER-NO-IPV6")
        })
        .count();
    let nameservers = i.params_of("DNSNSRecord").count();
    if nameservers > 0 && nameservers.saturating_sub(without_ipv6) < 2 {
        return i.kat_finding(
            "KAT-NAMESERVER-NO-TWO-IPV6",
            i.source.primary_key(),
            "This hostname has less than two nameservers with an IPv6 address.",
        );
    }
    Ok(vec![])
}

/// Nameservers that registrars point a domain at while its owner has not yet verified it.
const VERIFICATION_NAMESERVERS: &[&str] = &[
    "ns1.registrant-verification.ispapi.net",
    "ns2.registrant-verification.ispapi.net",
    "ns3.registrant-verification.ispapi.net",
];

fn domain_owner_verification(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let ns = reference(&i.source, "name_server_hostname")?;
    let tokens = i.tokens(ns)?;
    let name = tokens["name"].as_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    if !VERIFICATION_NAMESERVERS.contains(&name.as_str()) {
        return Ok(vec![]);
    }
    let domain = reference(&i.source, "hostname")?;
    i.kat_finding(
        "KAT-DOMAIN-OWNERSHIP-PENDING",
        domain,
        "This domain requires ownership verification and is currently pending.",
    )
}
