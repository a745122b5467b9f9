//! Web bits: discovering websites, URLs and resources, HTTPS, certificates, internet.nl.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use crate::definition::{int, reference, text, BitDefinition, BitError, BitInput, BitResult, FnBit};
use octo_model::{Ooi, Reference};

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![
        FnBit::new(
            BitDefinition::new("website-discovery", "IPAddress")
                .param("IPService", "ip_port.address")
                .param("ResolvedHostname", "address")
                .min_level(0),
            website_discovery,
        ),
        FnBit::new(
            BitDefinition::new("url-discovery", "IPAddress")
                .param("IPPort", "address")
                .param("ResolvedHostname", "address")
                .min_level(0),
            url_discovery,
        ),
        FnBit::new(BitDefinition::new("url-classification", "URL").min_level(0), url_classification),
        FnBit::new(
            BitDefinition::new("resource-discovery", "Hostname")
                .param("HostnameHTTPURL", "netloc")
                .param("Website", "hostname")
                .min_level(0),
            resource_discovery,
        ),
        FnBit::new(
            BitDefinition::new("https-availability", "IPAddress")
                .param("IPPort", "address")
                .param("Website", "ip_service.ip_port.address"),
            https_availability,
        ),
        FnBit::new(
            BitDefinition::new("https-redirect", "HostnameHTTPURL").param("HTTPHeader", "resource.web_url"),
            https_redirect,
        ),
        FnBit::new(
            BitDefinition::new("internet-nl", "Hostname")
                .param("Finding", "ooi [is Hostname]")
                .param("Finding", "ooi [is HTTPResource].website.hostname")
                .param("Finding", "ooi [is HTTPHeader].resource.website.hostname")
                .param("Finding", "ooi [is Website].hostname")
                .param("Finding", "ooi [is HostnameHTTPURL].netloc")
                .param("Website", "hostname"),
            internet_nl,
        ),
        FnBit::new(
            BitDefinition::new("ssl-certificate-hostname", "X509Certificate")
                .param("Website", "certificate")
                .param("SubjectAlternativeNameHostname", "certificate")
                .param("SubjectAlternativeNameQualifier", "certificate"),
            ssl_certificate_hostname,
        ),
        FnBit::new(BitDefinition::new("expiring-certificate", "X509Certificate"), expiring_certificate),
    ]
}

fn hostnames_of(i: &BitInput<'_>) -> BitResult<Vec<Reference>> {
    i.params_of("ResolvedHostname").map(|r| reference(r, "hostname").cloned()).collect()
}

/// A website is every pairing of an HTTP(S) service on this address with a name resolving to it.
fn website_discovery(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let hostnames = hostnames_of(i)?;
    let mut out = Vec::new();
    for service in i.params_of("IPService") {
        let name =
            i.tokens(reference(service, "service")?)?["name"].as_str().unwrap_or_default().trim().to_ascii_lowercase();
        if name != "http" && name != "https" {
            continue;
        }
        for h in &hostnames {
            out.push(
                i.make("Website", json!({ "hostname": h.as_str(), "ip_service": service.primary_key().as_str() }))?,
            );
        }
    }
    Ok(out)
}

fn url_discovery(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let hostnames = hostnames_of(i)?;
    let mut out = Vec::new();
    for port in i.params_of("IPPort") {
        let scheme = match int(port, "port") {
            Some(443) => "https",
            Some(80) => "http",
            _ => continue,
        };
        for h in &hostnames {
            let t = i.tokens(h)?;
            let network = format!("Network|{}", t["network"]["name"].as_str().unwrap_or_default());
            let raw = format!("{scheme}://{}/", t["name"].as_str().unwrap_or_default());
            out.push(i.make("URL", json!({ "network": network, "raw": raw }))?);
        }
    }
    Ok(out)
}

/// Splits an http(s) URL into the web URL objects it stands for, and links the URL to them.
fn url_classification(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let raw = text(&i.source, "raw");
    let Ok(url) = url::Url::parse(raw) else { return Ok(vec![]) };
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Ok(vec![]);
    }
    let network = reference(&i.source, "network")?.as_str().to_owned();
    let port = url.port_or_known_default().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let path = if url.path().is_empty() { "/" } else { url.path() };
    let (netloc, web_url_type) = match url.host() {
        Some(url::Host::Domain(d)) => {
            (i.make("Hostname", json!({ "network": network, "name": d }))?, "HostnameHTTPURL")
        }
        Some(url::Host::Ipv4(ip)) => {
            (i.make("IPAddressV4", json!({ "network": network, "address": ip.to_string() }))?, "IPAddressHTTPURL")
        }
        Some(url::Host::Ipv6(ip)) => {
            (i.make("IPAddressV6", json!({ "network": network, "address": ip.to_string() }))?, "IPAddressHTTPURL")
        }
        None => return Ok(vec![]),
    };
    let web_url = i.make(
        web_url_type,
        json!({ "network": network, "scheme": scheme, "port": port, "path": path, "netloc": netloc.primary_key().as_str() }),
    )?;
    let original =
        i.make("URL", json!({ "network": network, "raw": raw, "web_url": web_url.primary_key().as_str() }))?;
    Ok(vec![netloc, web_url, original])
}

/// A resource is every pairing of a URL on this name with a website on it that serves the same
/// scheme on the same port.
fn resource_discovery(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let mut out = Vec::new();
    let websites: Vec<(&Ooi, i64, String)> = i
        .params_of("Website")
        .map(|w| {
            let t = i.tokens(reference(w, "ip_service")?)?;
            let port = t["ip_port"]["port"].as_str().and_then(|p| p.parse().ok()).unwrap_or(-1);
            let service = t["service"]["name"].as_str().unwrap_or_default().to_owned();
            Ok((w, port, service))
        })
        .collect::<BitResult<_>>()?;
    for url in i.params_of("HostnameHTTPURL") {
        for (website, port, service) in &websites {
            if int(url, "port") == Some(*port) && text(url, "scheme") == service {
                out.push(i.make(
                    "HTTPResource",
                    json!({ "website": website.primary_key().as_str(), "web_url": url.primary_key().as_str() }),
                )?);
            }
        }
    }
    Ok(out)
}

fn https_availability(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let open: Vec<i64> = i.params_of("IPPort").filter_map(|p| int(p, "port")).collect();
    if !open.contains(&80) || open.contains(&443) {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for website in i.params_of("Website") {
        let mut f = i.kat_finding(
            "KAT-HTTPS-NOT-AVAILABLE",
            website.primary_key(),
            "HTTP port is open, but HTTPS port is not open",
        )?;
        if !out.is_empty() {
            f.remove(0);
        }
        out.extend(f);
    }
    Ok(out)
}

fn https_redirect(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let keys: Vec<String> = i.params_of("HTTPHeader").map(|h| text(h, "key").to_ascii_lowercase()).collect();
    if text(&i.source, "scheme") != "http" || keys.is_empty() || keys.iter().any(|k| k == "location") {
        return Ok(vec![]);
    }
    i.kat_finding(
        "KAT-NO-HTTPS-REDIRECT",
        i.source.primary_key(),
        "This HTTP URL may not redirect to HTTPS; 'location' was not found in HTTPHeader.",
    )
}

/// The findings internet.nl's website test counts, with how they read in the summary.
const INTERNETNL_FINDINGS: &[(&str, &str)] = &[
    ("KAT-WEBSERVER-NO-IPV6", "This webserver does not have an IPv6 address"),
    ("KAT-NAMESERVER-NO-TWO-IPV6", "This webserver does not have at least two nameservers with an IPv6 address"),
    ("KAT-NO-DNSSEC", "This webserver is not DNSSEC signed"),
    ("KAT-INVALID-DNSSEC", "The DNSSEC signature of this webserver is not valid"),
    ("KAT-NO-HSTS", "This website has at least one webpage with a missing Strict-Transport-Policy header"),
    ("KAT-NO-CSP", "This website has at least one webpage with a missing Content-Security-Policy header"),
    ("KAT-NO-X-FRAME-OPTIONS", "This website has at least one webpage with a missing X-Frame-Options header"),
    (
        "KAT-NO-X-CONTENT-TYPE-OPTIONS",
        "This website has at least one webpage with a missing X-Content-Type-Options header",
    ),
    ("KAT-CSP-VULNERABILITIES", "This website has at least one webpage with a mis-configured CSP header"),
    ("KAT-HSTS-VULNERABILITIES", "This website has at least one webpage with a mis-configured HSTS header"),
    ("KAT-NO-CERTIFICATE", "This website does not have an SSL certificate"),
    ("KAT-HTTPS-NOT-AVAILABLE", "HTTPS is not available for this website"),
    ("KAT-SSL-CERT-HOSTNAME-MISMATCH", "The SSL certificate of this website does not match the hostname"),
    ("KAT-HTTPS-REDIRECT", "This website has at least one HTTP URL that does not redirect to HTTPS"),
];

fn internet_nl(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    if i.params_of("Website").next().is_none() {
        return Ok(vec![]);
    }
    let ids: Vec<&str> = i
        .params_of("Finding")
        .filter_map(|f| f.get("finding_type").and_then(|v| v.as_reference()).map(Reference::natural_key))
        .collect();
    let mut result = String::new();
    for (id, description) in INTERNETNL_FINDINGS {
        if ids.contains(id) {
            result.push_str(description);
            result.push('\n');
        }
    }
    if result.is_empty() {
        return Ok(vec![]);
    }
    i.kat_finding(
        "KAT-INTERNETNL",
        i.source.primary_key(),
        &format!("This hostname has at least one website with the following finding(s): {result}"),
    )
}

/// Whether `name` is covered by a wildcard qualifier: `*.example.com` covers exactly one more
/// label (`www.example.com`), never `example.com` itself (RFC 2459).
fn covered_by_wildcard(name: &str, wildcard: &str) -> bool {
    let Some(domain) = wildcard.strip_prefix("*.") else { return false };
    name.split_once('.').is_some_and(|(_, parent)| parent == domain.trim_end_matches('.'))
}

/// Each website served with this certificate whose name the certificate does not cover gets a
/// finding. (Octopoes stops at the first matching website, so later mismatches go unreported;
/// every website is checked here.)
fn ssl_certificate_hostname(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let names: Vec<String> = i
        .params_of("SubjectAlternativeNameHostname")
        .map(|s| {
            let t = i.tokens(reference(s, "hostname")?)?;
            Ok(t["name"].as_str().unwrap_or_default().trim_end_matches('.').to_owned())
        })
        .collect::<BitResult<_>>()?;
    let qualifiers: Vec<String> = i
        .params_of("SubjectAlternativeNameQualifier")
        .map(|s| text(s, "name").trim_end_matches('.').to_owned())
        .collect();
    let mut out = Vec::new();
    for website in i.params_of("Website") {
        let hostname = reference(website, "hostname")?;
        let name = i.tokens(hostname)?["name"].as_str().unwrap_or_default().trim_end_matches('.').to_owned();
        if names.contains(&name) || qualifiers.iter().any(|q| covered_by_wildcard(&name, q)) {
            continue;
        }
        let mut f = i.kat_finding(
            "KAT-SSL-CERT-HOSTNAME-MISMATCH",
            website.primary_key(),
            &format!("The hostname {hostname} does not match the subject of the certificate"),
        )?;
        if !out.is_empty() {
            f.remove(0);
        }
        out.extend(f);
    }
    Ok(out)
}

/// Parses a certificate time as scanners write it: RFC 3339, or ISO 8601 / Python's `str()`
/// without a zone (taken as UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"]
    {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Expired, or expiring within two weeks of the valid time the question is asked at.
fn expiring_certificate(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let until = text(&i.source, "valid_until");
    let until =
        parse_time(until).ok_or_else(|| BitError::Invalid(format!("valid_until '{until}' is not a date and time")))?;
    let now = i.valid_time.to_datetime();
    let cert = i.source.primary_key();
    if until <= now {
        i.kat_finding("KAT-CERTIFICATE-EXPIRED", cert, "TLS certificate has expired")
    } else if until - now < chrono::Duration::weeks(2) {
        i.kat_finding("KAT-CERTIFICATE-EXPIRING-SOON", cert, "TLS certificate is expiring soon")
    } else {
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covered_by_wildcard("www.example.com", "*.example.com"));
        assert!(!covered_by_wildcard("example.com", "*.example.com"));
        assert!(!covered_by_wildcard("a.b.example.com", "*.example.com"));
    }

    #[test]
    fn certificate_times() {
        assert!(parse_time("2030-11-15T08:52:57").is_some());
        assert!(parse_time("2030-11-15 08:52:57.123456").is_some());
        assert!(parse_time("2030-11-15T08:52:57+00:00").is_some());
        assert!(parse_time("soon").is_none());
    }
}
