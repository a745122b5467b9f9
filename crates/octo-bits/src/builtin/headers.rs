//! HTTP header bits: security headers, CSP, HSTS, server versions, and what headers point at.

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use crate::definition::{reference, text, BitDefinition, BitError, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![
        FnBit::new(
            BitDefinition::new("missing-headers", "HTTPResource").param("HTTPHeader", "resource"),
            missing_headers,
        ),
        FnBit::new(
            BitDefinition::new("check-csp-header", "HTTPResource").param("HTTPHeader", "resource"),
            check_csp_header,
        ),
        FnBit::new(
            BitDefinition::new("check-hsts-header", "HTTPHeader")
                .config_path("HTTPHeader.resource.website.hostname.network"),
            check_hsts_header,
        ),
        FnBit::new(
            BitDefinition::new("disallowed-csp-hostnames", "HTTPHeaderHostname")
                .config_path("HTTPHeaderHostname.hostname.network"),
            disallowed_csp_hostnames,
        ),
        FnBit::new(
            BitDefinition::new("oois-in-headers", "HTTPHeader")
                .config_path("HTTPHeader.resource.website.hostname.network"),
            oois_in_headers,
        ),
    ]
}

/// Content types a browser may run script in.
const XSS_CAPABLE_TYPES: &[&str] =
    &["text/html", "application/xhtml+xml", "application/xml", "text/xml", "image/svg+xml"];

fn is_xss_capable(content_type: &str) -> bool {
    let main = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    XSS_CAPABLE_TYPES.contains(&main.as_str())
}

/// Headers that are not standard and should not be sent.
const NONSTANDARD_HEADERS: &[&str] = &[
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-dns-prefetch-control",
    "x-forwarded-for",
    "x-robots-tag",
    "pragma",
    "warning",
];

/// The headers of a resource by lower-cased name (the last one wins, as in Octopoes).
fn header_map(i: &BitInput<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for h in i.params_of("HTTPHeader") {
        let key = text(h, "key").to_ascii_lowercase();
        let value = text(h, "value").to_owned();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    out
}

fn get<'h>(headers: &'h [(String, String)], key: &str) -> Option<&'h str> {
    headers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn missing_headers(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let headers = header_map(i);
    if headers.is_empty() || get(&headers, "location").is_some() {
        return Ok(vec![]);
    }
    let resource = i.source.primary_key();
    let scheme = i.tokens(resource)?["web_url"]["scheme"].as_str().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    let missing = |name: &str| get(&headers, name).is_none();
    if missing("strict-transport-security") && scheme != "http" {
        out.extend(i.kat_finding(
            "KAT-NO-HSTS",
            resource,
            "Header strict-transport-security is missing or not configured correctly.",
        )?);
    }
    if missing("content-security-policy") && is_xss_capable(get(&headers, "content-type").unwrap_or_default()) {
        out.extend(i.kat_finding(
            "KAT-NO-CSP",
            resource,
            "Header content-security-policy is missing or not configured correctly.",
        )?);
    }
    for (header, id) in [
        ("x-frame-options", "KAT-NO-X-FRAME-OPTIONS"),
        ("permissions-policy", "KAT-NO-PERMISSIONS-POLICY"),
        ("referrer-policy", "KAT-NO-REFERRER-POLICY"),
        ("x-content-type-options", "KAT-NO-X-CONTENT-TYPE-OPTIONS"),
    ] {
        if missing(header) {
            out.extend(i.kat_finding(
                id,
                resource,
                &format!("Header {header} is missing or not configured correctly."),
            )?);
        }
    }
    let nonstandard: Vec<&str> =
        headers.iter().map(|(k, _)| k.as_str()).filter(|k| NONSTANDARD_HEADERS.contains(k)).collect();
    if !nonstandard.is_empty() {
        out.extend(i.kat_finding(
            "KAT-NONSTANDARD-HEADERS",
            resource,
            &format!("Nonstandard headers are used. Avoid using the following headers: {}", nonstandard.join(" ")),
        )?);
    }
    Ok(out)
}

static WILDCARD_HOST: LazyLock<Regex> = LazyLock::new(|| regex(r"\S+\*\.\S{2,3}([\s]+|$|;|:\d+)"));
static HOST_SOURCE: LazyLock<Regex> = LazyLock::new(|| regex(r"\S+\.\S{2,3}([\s]+|$|;|:\d+)"));
static NON_DECIMAL: LazyLock<Regex> = LazyLock::new(|| regex(r"[^\d.]+"));

/// Compiles one of this module's fixed patterns.
fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file; the unit tests compile every one of them.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

/// Whether an IPv4 address is one a public policy must not allow: private, loopback,
/// link-local, multicast, reserved, or the other special-purpose blocks Python's `ipaddress`
/// counts as private.
fn is_non_global(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
}

/// False when the source names an address that is not global; sources without one pass.
fn ip_valid(source: &str) -> bool {
    let digits = NON_DECIMAL.replace_all(source, "");
    match digits.parse::<Ipv4Addr>() {
        Ok(ip) => !is_non_global(ip),
        Err(_) => true,
    }
}

fn source_valid(values: &[&str]) -> bool {
    values.iter().all(|v| {
        HOST_SOURCE.is_match(v)
            || ["'none'", "'self'", "data:", "unsafe-inline", "unsafe-eval", "unsafe-hashes", "report-sample"]
                .contains(v)
    })
}

/// The list of problems with a Content-Security-Policy value, in Octopoes' order and words.
pub(crate) fn csp_problems(csp: &str) -> Vec<String> {
    let mut findings: Vec<String> = Vec::new();
    let mut add = |s: &str| findings.push(s.to_owned());
    if csp.contains("http://") {
        add("Http should not be used in the CSP settings of an HTTP Header.");
    }
    if WILDCARD_HOST.is_match(csp) {
        add("The wildcard * for the scheme and host part of any URL should never be used in CSP settings.");
    }
    if csp.contains("unsafe-inline") || csp.contains("unsafe-eval") || csp.contains("unsafe-hashes") {
        add("unsafe-inline, unsafe-eval and unsafe-hashes should not be used in the CSP settings of an HTTP Header.");
    }
    if !csp.contains("frame-src") && !csp.contains("default-src") && !csp.contains("child-src") {
        add("frame-src has not been defined or does not have a fallback.");
    }
    if !csp.contains("script-src") && !csp.contains("default-src") {
        add("script-src has not been defined or does not have a fallback.");
    }
    if !csp.contains("base-uri") {
        add("base-uri has not been defined, default-src does not apply.");
    }
    if !csp.contains("frame-ancestors") {
        add("frame-ancestors has not been defined.");
    }
    if !csp.contains("default-src") {
        add("default-src has not been defined.");
    }
    for deprecated in ["block-all-mixed-content", "prefetch-src"] {
        if csp.contains(deprecated) {
            findings.push(format!("Deprecated CSP directive found: {deprecated}"));
        }
    }
    if csp.contains("report-uri") {
        findings.push(
            "Deprecated CSP directive found. report-uri is superseded by report-to:\n        \
             https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy/report-uri"
                .to_owned(),
        );
    }
    for policy in csp.split(';') {
        // Split on single spaces, as the original does: doubled spaces give empty values.
        let policy: Vec<&str> = policy.trim().split(' ').collect();
        if policy.len() < 2 {
            findings.push("CSP setting has no value.".to_owned());
            continue;
        }
        let directive = policy[0];
        if ["frame-src", "frame-ancestors"].contains(&directive) && !source_valid(&policy[1..]) {
            findings.push(format!("{directive} has not been correctly defined."));
        }
        if directive == "default-src"
            && ((!policy.contains(&"'none'") && !policy.contains(&"'self'"))
                || !source_valid(policy.get(2..).unwrap_or_default()))
        {
            findings.push(format!("{directive} has not been correctly defined."));
        }
        if ["default-src", "object-src", "script-src"].contains(&directive) && policy.contains(&"data:") {
            findings.push(
                "'data:' should not be used in the value of default-src, object-src and script-src in the CSP settings."
                    .to_owned(),
            );
        }
        if directive == "script-src" && policy.contains(&"'self'") {
            findings.push(
                "'self' for `script-src` can be problematic if you host JSONP, Angular or user uploaded files."
                    .to_owned(),
            );
        }
        let rest = policy.get(2..).unwrap_or_default();
        if directive.ends_with("-uri")
            && ["unsafe-eval", "unsafe-hashes", "unsafe-inline", "strict-dynamic"].iter().any(|u| rest.contains(u))
        {
            findings.push(format!("{directive} has illogical values."));
        }
        if policy[1].trim() == "*" {
            findings
                .push("A wildcard source should not be used in the value of any type in the CSP settings.".to_owned());
        }
        if ["http:", "https:"].contains(&policy[1].trim()) {
            findings.push(
                "a blanket protocol source should not be used in the value of any type in the CSP settings.".to_owned(),
            );
        }
        for source in &policy[1..] {
            if !ip_valid(source) {
                findings.push(
                    "Private, local, reserved, multicast, loopback ips should not be allowed in the CSP settings."
                        .to_owned(),
                );
            }
        }
    }
    findings
}

fn numbered(title: &str, items: &[String]) -> String {
    let mut out = title.to_owned();
    for (n, item) in items.iter().enumerate() {
        out.push_str(&format!("\n {}. {item}", n + 1));
    }
    out
}

fn check_csp_header(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let headers = header_map(i);
    if headers.is_empty() {
        return Ok(vec![]);
    }
    // Without a content type the resource may be anything, so it is treated as XSS-capable.
    let content_type = get(&headers, "content-type").unwrap_or_default();
    if !content_type.is_empty() && !is_xss_capable(content_type) {
        return Ok(vec![]);
    }
    let Some(csp) = get(&headers, "content-security-policy").filter(|c| !c.is_empty()) else { return Ok(vec![]) };
    let problems = csp_problems(csp);
    if problems.is_empty() {
        return Ok(vec![]);
    }
    i.kat_finding("KAT-CSP-VULNERABILITIES", i.source.primary_key(), &numbered("List of CSP findings:", &problems))
}

fn check_hsts_header(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let header = &i.source;
    if !text(header, "key").eq_ignore_ascii_case("strict-transport-security") {
        return Ok(vec![]);
    }
    const ONE_YEAR: i64 = 365 * 24 * 3600;
    let max_age = match i.config.get("max-age") {
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(ONE_YEAR),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| BitError::Invalid(format!("config max-age '{s}' is not a number of seconds")))?,
        _ => ONE_YEAR,
    };
    let value = text(header, "value").to_ascii_lowercase();
    let mut problems = Vec::new();
    if !value.contains("includesubdomains") {
        problems.push("The HSTS should include subdomains.".to_owned());
    }
    if !value.contains("max-age") {
        problems
            .push("The cache validity period of the HSTS should be defined and should be at least 1 year.".to_owned());
    } else {
        let given = value.split('=').nth(1).map(|v| v.trim_matches('"').split(';').next().unwrap_or_default());
        match given.and_then(|g| g.trim().parse::<i64>().ok()) {
            Some(age) if age < max_age => {
                problems.push(format!("The cache validity period of the HSTS should be at least be {max_age} seconds."))
            }
            Some(_) => {}
            None => problems.push("The max-age value should be an integer.".to_owned()),
        }
    }
    if problems.is_empty() {
        return Ok(vec![]);
    }
    i.kat_finding("KAT-HSTS-VULNERABILITIES", header.primary_key(), &numbered("List of HSTS findings:\n", &problems))
}

/// Link shorteners: a policy that lets scripts come from them lets them come from anywhere.
const LINK_SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "buff.ly",
    "cutt.ly",
    "goo.gl",
    "is.gd",
    "ow.ly",
    "rb.gy",
    "rebrand.ly",
    "s.id",
    "shorturl.at",
    "t.co",
    "t.ly",
    "tiny.cc",
    "tinyurl.com",
    "v.gd",
    "short.io",
    "lnkd.in",
    "bl.ink",
    "qrco.de",
];

fn config_flag(i: &BitInput<'_>, key: &str, default: bool) -> bool {
    match i.config.get(key) {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => default,
    }
}

fn disallowed_csp_hostnames(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let header = reference(&i.source, "header")?;
    if !i.tokens(header)?["key"].as_str().unwrap_or_default().eq_ignore_ascii_case("content-security-policy") {
        return Ok(vec![]);
    }
    let hostname = reference(&i.source, "hostname")?;
    let name = i.tokens(hostname)?["name"].as_str().unwrap_or_default().to_ascii_lowercase();
    let mut disallowed: Vec<String> = Vec::new();
    if config_flag(i, "disallow_url_shorteners", true) {
        disallowed.extend(LINK_SHORTENERS.iter().map(|s| (*s).to_owned()));
    }
    if let Some(list) = i.config_str("disallowed_hostnames") {
        disallowed.extend(list.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    // www.example.com is disallowed by www.example.com, example.com or com.
    let hit = (0..labels.len()).any(|n| disallowed.iter().any(|d| *d == labels[n..].join(".")));
    if !hit {
        return Ok(vec![]);
    }
    let ft = i.make("KATFindingType", json!({ "id": "KAT-DISALLOWED-DOMAIN-IN-CSP" }))?;
    let finding = i.make(
        "Finding",
        json!({ "finding_type": ft.primary_key().as_str(), "ooi": i.source.primary_key().as_str() }),
    )?;
    Ok(vec![ft, finding])
}

static CSP_URLS: LazyLock<Regex> = LazyLock::new(|| regex(r"(?:(?:https?|ftp)://)?[\w/\-?=%.]+\.[\w/\-&?=%.]+"));

/// Drops query parameters a user said to ignore (session ids), so the same page is one URL.
fn remove_ignored_params(raw: &str, ignored: &[String]) -> String {
    let Ok(mut url) = url::Url::parse(raw) else { return raw.to_owned() };
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if pairs.is_empty() {
        return raw.to_owned();
    }
    let kept: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| !ignored.contains(&k.to_ascii_lowercase())).collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    url.to_string()
}

fn oois_in_headers(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let header = &i.source;
    let tokens = i.tokens(header.primary_key())?;
    let web_url = &tokens["resource"]["web_url"];
    let network_name = web_url["netloc"]["network"]["name"].as_str().unwrap_or("internet").to_owned();
    let network = format!("Network|{network_name}");
    let key = text(header, "key").to_ascii_lowercase();
    let value = text(header, "value");
    let mut out = Vec::new();
    if key == "location" {
        let ignored: Vec<String> = i
            .config_str("ignored_url_parameters")
            .map(|l| l.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let raw = if url::Url::parse(value).is_ok() {
            remove_ignored_params(value, &ignored)
        } else {
            // A relative location: resolved against the URL the header came with.
            let netloc = &web_url["netloc"];
            let host = netloc["name"].as_str().or(netloc["address"].as_str()).unwrap_or_default();
            let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
            let base = format!(
                "{}://{}{}",
                web_url["scheme"].as_str().unwrap_or("https"),
                host,
                web_url["path"].as_str().unwrap_or("/")
            );
            let base = url::Url::parse(&base).map_err(|e| BitError::Invalid(format!("base URL '{base}': {e}")))?;
            base.join(value).map_err(|e| BitError::Invalid(format!("location '{value}': {e}")))?.to_string()
        };
        let u = i.make("URL", json!({ "raw": raw, "network": network }))?;
        let link = i.make(
            "HTTPHeaderURL",
            json!({ "header": header.primary_key().as_str(), "url": u.primary_key().as_str() }),
        )?;
        out.extend([u, link]);
    }
    if key == "content-security-policy" {
        for m in CSP_URLS.find_iter(value) {
            let found = m.as_str();
            if let Ok(u) = i.make("URL", json!({ "raw": found, "network": network })) {
                let link = i.make(
                    "HTTPHeaderURL",
                    json!({ "header": header.primary_key().as_str(), "url": u.primary_key().as_str() }),
                )?;
                out.extend([u, link]);
                continue;
            }
            // Not a URL: a host name, as the CSP grammar allows.
            let name = found.strip_prefix('.').unwrap_or(found);
            let Ok(h) = i.make("Hostname", json!({ "name": name, "network": network })) else { continue };
            let link = i.make(
                "HTTPHeaderHostname",
                json!({ "header": header.primary_key().as_str(), "hostname": h.primary_key().as_str() }),
            )?;
            out.extend([h, link]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile() {
        for re in [&WILDCARD_HOST, &HOST_SOURCE, &NON_DECIMAL, &CSP_URLS] {
            LazyLock::force(re);
        }
    }

    #[test]
    fn non_global_addresses() {
        assert!(!ip_valid("10.10.10.10"));
        assert!(!ip_valid("127.0.0.1"));
        assert!(ip_valid("'self'"));
        assert!(ip_valid("8.8.8.8"));
    }
}
