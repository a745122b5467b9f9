//! The built-in bits run directly on inputs: the cases of OpenKAT's bit unit tests (positive,
//! negative, config variants) and more, each stating what the bit must yield.

use octo_bits::{builtin, BitInput};
use octo_model::{Catalog, Ooi};
use serde_json::{json, Map, Value};

fn catalog() -> Catalog {
    Catalog::builtin()
}

fn ooi(doc: Value) -> Ooi {
    catalog().ooi_from_json(&doc).unwrap()
}

/// Runs a built-in bit on a source with parameters and config.
fn run(bit: &str, source: Value, params: Vec<Value>, config: Value) -> Vec<Ooi> {
    let c = catalog();
    let b = builtin::all().into_iter().find(|b| b.definition().id == bit).unwrap_or_else(|| panic!("no bit {bit}"));
    let mut input = BitInput::new(&c, ooi(source));
    input.parameters = params.into_iter().map(ooi).collect();
    input.config = match config {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    b.run(&input).unwrap()
}

fn keys(results: &[Ooi]) -> Vec<String> {
    results.iter().map(|o| o.primary_key().to_string()).collect()
}

fn descriptions(results: &[Ooi]) -> Vec<String> {
    results
        .iter()
        .filter(|o| o.object_type() == "Finding")
        .map(|o| o.get("description").and_then(|d| d.as_str()).unwrap_or_default().to_owned())
        .collect()
}

const ADDRESS: &str = "IPAddressV4|internet|8.8.8.8";

fn address() -> Value {
    json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "8.8.8.8"})
}

fn port(protocol: &str, port: u16) -> Value {
    json!({"object_type": "IPPort", "address": ADDRESS, "protocol": protocol, "port": port})
}

#[test]
fn port_classification() {
    let classify =
        |protocol, p, config| descriptions(&run("port-classification-ip", address(), vec![port(protocol, p)], config));
    assert!(classify("tcp", 80, json!({})).is_empty());
    assert!(classify("udp", 53, json!({})).is_empty());
    assert!(classify("tcp", 53, json!({})).is_empty());
    assert_eq!(
        classify("tcp", 22, json!({})),
        ["Port 22/tcp is a system administrator port and should possibly not be open."]
    );
    assert_eq!(classify("tcp", 5432, json!({})), ["Port 5432/tcp is a database port and should not be open."]);
    assert_eq!(
        classify("tcp", 12345, json!({})),
        ["Port 12345/tcp is not a common port and should possibly not be open."]
    );
    assert_eq!(classify("udp", 80, json!({})), ["Port 80/udp is not a common port and should possibly not be open."]);
    assert_eq!(
        classify("tcp", 3389, json!({})),
        ["Port 3389/tcp is a Microsoft Remote Desktop port and should possibly not be open."]
    );
    // Config: 3306 is no longer a database port, so it is merely uncommon.
    assert_eq!(
        classify("tcp", 3306, json!({"db_tcp_ports": "1234"})),
        ["Port 3306/tcp is not a common port and should possibly not be open."]
    );
    // Config: 8080 declared common.
    assert!(classify("tcp", 8080, json!({"common_tcp_ports": "80, 443, 8080"})).is_empty());
    // Aggregation: one finding on the address.
    let r = run(
        "port-classification-ip",
        address(),
        vec![port("tcp", 22), port("tcp", 8443)],
        json!({"aggregate_findings": "true"}),
    );
    assert_eq!(descriptions(&r), ["Ports 22, 8443 are not common ports and should possibly not be open."]);
    assert!(keys(&r).contains(&"Finding|IPAddressV4|internet|8.8.8.8|KAT-UNCOMMON-OPEN-PORT".to_owned()));
}

#[test]
fn port_common() {
    let common = |protocol, p| descriptions(&run("port-common", port(protocol, p), vec![], json!({})));
    assert_eq!(common("tcp", 80), ["Port 80/tcp is a common port and found to be open."]);
    assert_eq!(common("udp", 53), ["Port 53/udp is a common port and found to be open."]);
    assert!(common("tcp", 22).is_empty());
    assert!(common("udp", 80).is_empty());
}

fn resource(scheme: &str) -> Value {
    let port = if scheme == "https" { 443 } else { 80 };
    json!({
        "object_type": "HTTPResource",
        "website": format!("Website|internet|192.0.2.1|tcp|{port}|{scheme}|internet|example.com"),
        "web_url": format!("HostnameHTTPURL|{scheme}|internet|example.com|{port}|/"),
    })
}

fn header(scheme: &str, key: &str, value: &str) -> Value {
    let r = ooi(resource(scheme));
    json!({"object_type": "HTTPHeader", "resource": r.primary_key().as_str(), "key": key, "value": value})
}

fn finding_types(results: &[Ooi]) -> Vec<String> {
    results
        .iter()
        .filter(|o| o.object_type() == "Finding")
        .map(|o| {
            o.get("finding_type").and_then(|v| v.as_reference()).map(|r| r.natural_key().to_owned()).unwrap_or_default()
        })
        .collect()
}

#[test]
fn missing_headers() {
    let with_hsts = run(
        "missing-headers",
        resource("https"),
        vec![
            header("https", "Content-Type", "text/html"),
            header("https", "Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ],
        json!({}),
    );
    assert!(!finding_types(&with_hsts).contains(&"KAT-NO-HSTS".to_owned()));
    let without =
        run("missing-headers", resource("https"), vec![header("https", "Content-Type", "text/html")], json!({}));
    let types = finding_types(&without);
    for id in [
        "KAT-NO-HSTS",
        "KAT-NO-CSP",
        "KAT-NO-X-FRAME-OPTIONS",
        "KAT-NO-PERMISSIONS-POLICY",
        "KAT-NO-REFERRER-POLICY",
        "KAT-NO-X-CONTENT-TYPE-OPTIONS",
    ] {
        assert!(types.contains(&id.to_owned()), "{id} in {types:?}");
    }
    // HSTS only matters over HTTPS.
    let http = run("missing-headers", resource("http"), vec![header("http", "Content-Type", "text/html")], json!({}));
    assert!(!finding_types(&http).contains(&"KAT-NO-HSTS".to_owned()));
    let deprecated =
        run("missing-headers", resource("https"), vec![header("https", "x-forwarded-for", "DENY")], json!({}));
    assert_eq!(finding_types(&deprecated).iter().filter(|t| *t == "KAT-NONSTANDARD-HEADERS").count(), 1);
    // A redirect is judged where it leads, and no headers means nothing was fetched.
    assert!(run("missing-headers", resource("https"), vec![header("https", "Location", "/x")], json!({})).is_empty());
    assert!(run("missing-headers", resource("https"), vec![], json!({})).is_empty());
}

fn csp(value: &str, content_type: &str) -> Vec<Ooi> {
    run(
        "check-csp-header",
        resource("https"),
        vec![header("https", "Content-Type", content_type), header("https", "content-security-policy", value)],
        json!({}),
    )
}

const UNDEFINED: &str = " 1. frame-src has not been defined or does not have a fallback.
 2. script-src has not been defined or does not have a fallback.
 3. base-uri has not been defined, default-src does not apply.
 4. frame-ancestors has not been defined.
 5. default-src has not been defined.";

#[test]
fn csp_header() {
    let only = |r: Vec<Ooi>| {
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].primary_key().as_str(), "KATFindingType|KAT-CSP-VULNERABILITIES");
        descriptions(&r).remove(0)
    };
    assert_eq!(
        only(csp("text/html", "text/html")),
        format!("List of CSP findings:\n{UNDEFINED}\n 6. CSP setting has no value.")
    );
    let http = only(csp("http://abc.com", "text/html"));
    assert!(http.starts_with(
        "List of CSP findings:\n 1. Http should not be used in the CSP settings of an HTTP Header.\n 2. frame-src"
    ));
    assert!(http.ends_with(" 7. CSP setting has no value."));
    assert_eq!(
        only(csp("https://abc.com", "text/html")),
        format!("List of CSP findings:\n{UNDEFINED}\n 6. CSP setting has no value.")
    );
    assert!(only(csp("https://*.com", "text/html"))
        .contains(" 1. The wildcard * for the scheme and host part of any URL should never be used in CSP settings."));
    let private = only(csp("https://a.com; ...; media-src 'self'; media-src 10.10.10.10;", "text/html"));
    assert!(private.ends_with(
        " 6. CSP setting has no value.\n 7. CSP setting has no value.\n 8. Private, local, reserved, multicast, loopback ips should not be allowed in the CSP settings.\n 9. CSP setting has no value."
    ));
    let illogical = only(csp("unsafe-inline-uri * strict-dynamic; test http: 127.0.0.1", "text/html"));
    assert!(illogical.contains(" 7. unsafe-inline-uri has illogical values.\n 8. A wildcard source should not be used in the value of any type in the CSP settings.\n 9. a blanket protocol source should not be used in the value of any type in the CSP settings.\n 10. Private, local, reserved, multicast, loopback ips should not be allowed in the CSP settings."));
    // Not XSS-capable content: nothing to say.
    assert!(csp("https://*.com", "text/plain").is_empty());
    // No policy at all is missing-headers' business.
    assert!(run("check-csp-header", resource("https"), vec![header("https", "Content-Type", "text/html")], json!({}))
        .is_empty());
    // A good policy passes.
    assert!(
        csp("default-src 'self'; frame-ancestors 'none'; base-uri 'self'; frame-src 'self'", "text/html").is_empty()
    );
}

#[test]
fn hsts_header() {
    let hsts = |value: &str, config| {
        descriptions(&run("check-hsts-header", header("https", "Strict-Transport-Security", value), vec![], config))
    };
    assert!(hsts("max-age=31536000; includeSubDomains", json!({})).is_empty());
    assert_eq!(hsts("max-age=300", json!({})), ["List of HSTS findings:\n\n 1. The HSTS should include subdomains.\n 2. The cache validity period of the HSTS should be at least be 31536000 seconds."]);
    assert!(hsts("max-age=300; includeSubDomains", json!({"max-age": "300"})).is_empty());
    assert_eq!(hsts("includeSubDomains", json!({})), ["List of HSTS findings:\n\n 1. The cache validity period of the HSTS should be defined and should be at least 1 year."]);
    assert!(run("check-hsts-header", header("https", "Server", "nginx"), vec![], json!({})).is_empty());
}

#[test]
fn cve_2021_41773() {
    let r = run("check_cve_2021_41773", header("https", "Server", "Apache/2.4.49 (Unix)"), vec![], json!({}));
    assert_eq!(r[0].primary_key().as_str(), "CVEFindingType|CVE-2021-41773");
    assert!(run("check_cve_2021_41773", header("https", "Server", "Apache/2.4.51"), vec![], json!({})).is_empty());
}

fn cipher(suites: Value) -> Value {
    json!({"object_type": "TLSCipher", "ip_service": "IPService|internet|8.8.8.8|tcp|443|https", "suites": suites})
}

fn suite(name: &str) -> Value {
    json!({"cipher_suite_name": name, "cipher_suite_alias": name})
}

#[test]
fn cipher_classification() {
    let medium = run(
        "cipher-classification",
        cipher(json!({
            "TLSv1.3": [suite("TLS_AES_256_GCM_SHA384"), suite("TLS_CHACHA20_POLY1305_SHA256"), suite("TLS_AES_128_GCM_SHA256")],
            "TLSv1.2": [suite("ECDHE-RSA-AES256-SHA384"), suite("DHE-RSA-AES256-GCM-SHA384"), suite("ECDHE-RSA-CHACHA20-POLY1305"),
                        suite("ECDHE-RSA-AES128-GCM-SHA256"), suite("DHE-RSA-AES128-GCM-SHA256")],
        })),
        vec![],
        json!({}),
    );
    assert_eq!(medium.len(), 2);
    assert_eq!(medium[0].primary_key().as_str(), "KATFindingType|KAT-MEDIUM-BAD-CIPHER");
    assert_eq!(
        descriptions(&medium),
        ["One or more of the cipher suites should not be used because:\nECDHE-RSA-AES256-SHA384 - Using CBC as bulk encryption algorithm (Medium)."]
    );
    assert!(run(
        "cipher-classification",
        cipher(json!({"TLSv1.3": [suite("TLS_AES_256_GCM_SHA384")]})),
        vec![],
        json!({})
    )
    .is_empty());
    let critical =
        run("cipher-classification", cipher(json!({"TLSv1.2": [suite("PSK-AES128-CCM")]})), vec![], json!({}));
    assert_eq!(critical[0].primary_key().as_str(), "KATFindingType|KAT-CRITICAL-BAD-CIPHER");
}

#[test]
fn default_findingtype_risk() {
    let r =
        run("default-findingtype-risk", json!({"object_type": "KATFindingType", "id": "KAT-TEST"}), vec![], json!({}));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get("risk_severity").and_then(|v| v.as_str()), Some("pending"));
    assert_eq!(r[0].get("risk_score").map(|v| v.to_json()), Some(json!(0.0)));
    let rated = json!({"object_type": "KATFindingType", "id": "KAT-TEST", "risk_severity": "unknown", "risk_score": 5});
    assert!(run("default-findingtype-risk", rated, vec![], json!({})).is_empty());
}

fn ns_record(name_server: &str) -> Value {
    json!({"object_type": "DNSNSRecord", "hostname": "Hostname|fake|example.com",
           "name_server_hostname": format!("Hostname|fake|{name_server}"), "value": "x"})
}

#[test]
fn domain_owner_verification() {
    let pending =
        run("domain-owner-verification", ns_record("ns1.registrant-verification.ispapi.net"), vec![], json!({}));
    assert_eq!(pending.len(), 2);
    assert_eq!(keys(&pending)[1], "Finding|Hostname|fake|example.com|KAT-DOMAIN-OWNERSHIP-PENDING");
    assert!(run("domain-owner-verification", ns_record("ns1.example.com"), vec![], json!({})).is_empty());
}

fn certificate(valid_until: &str) -> Value {
    json!({"object_type": "X509Certificate", "subject": "example.com", "issuer": "ca", "valid_from": "2022-11-15T08:52:57",
           "valid_until": valid_until, "serial_number": "abc123"})
}

#[test]
fn expiring_certificate() {
    assert!(run("expiring-certificate", certificate("2099-11-15T08:52:57"), vec![], json!({})).is_empty());
    let expired = run("expiring-certificate", certificate("2022-11-15T08:52:57"), vec![], json!({}));
    assert_eq!(keys(&expired)[0], "KATFindingType|KAT-CERTIFICATE-EXPIRED");
    let soon = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let expiring = run("expiring-certificate", certificate(&soon), vec![], json!({}));
    assert_eq!(keys(&expiring)[0], "KATFindingType|KAT-CERTIFICATE-EXPIRING-SOON");
}

fn txt(value: &str) -> Value {
    json!({"object_type": "DNSTXTRecord", "hostname": "Hostname|internet|example.com", "value": value})
}

#[test]
fn spf_discovery() {
    let value = "v=spf1 ip4:1.1.1.1 ~all exp=explain._spf.example.com";
    let r = run("spf-discovery", txt(value), vec![], json!({}));
    assert_eq!(r[0].primary_key().as_str(), "IPAddressV4|internet|1.1.1.1");
    assert_eq!(r[1].object_type(), "DNSSPFMechanismIP");
    assert_eq!(r[1].get("mechanism").and_then(|v| v.as_str()), Some("ip4"));
    let record = r.last().unwrap();
    assert_eq!(record.object_type(), "DNSSPFRecord");
    assert_eq!(record.get("all").and_then(|v| v.as_str()), Some("~"));
    assert_eq!(record.get("exp").and_then(|v| v.as_str()), Some("explain._spf.example.com"));
    assert_eq!(record.get("value").and_then(|v| v.as_str()), Some(value));

    let invalid = run("spf-discovery", txt("v=spf1 assdfsdf w rgw"), vec![], json!({}));
    assert_eq!(invalid[0].primary_key().as_str(), "KATFindingType|KAT-INVALID-SPF");

    let mechanisms = "v=spf1 a:example.com mx mx:deferrals.domain.com ptr:otherdomain.com exists:example4.com ?include:example2.com ~all";
    assert_eq!(run("spf-discovery", txt(mechanisms), vec![], json!({})).len(), 12);
    let with_macro = "v=spf1 a:example.com mx mx:deferrals.domain.com ptr:otherdomain.com exists:%{i}.example.com ?include:example2.com ~all";
    assert_eq!(run("spf-discovery", txt(with_macro), vec![], json!({})).len(), 10);
    // A bare ptr is deprecated.
    let ptr = run("spf-discovery", txt("v=spf1 ptr -all"), vec![], json!({}));
    assert!(keys(&ptr).contains(&"KATFindingType|KAT-DEPRECATED-SPF-MECHANISM".to_owned()));
    // Not SPF at all: nothing.
    assert!(run("spf-discovery", txt("google-site-verification=abc"), vec![], json!({})).is_empty());
}

#[test]
fn oois_in_headers() {
    let h = header("https", "Location", "https://www.example.com/");
    let r = run("oois-in-headers", h.clone(), vec![], json!({}));
    assert_eq!(r[0].object_type(), "URL");
    assert_eq!(r[0].get("raw").and_then(|v| v.as_str()), Some("https://www.example.com/"));
    assert_eq!(r[0].get("network").and_then(|v| v.as_reference()).map(|x| x.as_str()), Some("Network|internet"));
    assert_eq!(r[1].object_type(), "HTTPHeaderURL");
    let relative = run("oois-in-headers", header("https", "Location", "script.php"), vec![], json!({}));
    assert_eq!(relative[0].get("raw").and_then(|v| v.as_str()), Some("https://example.com/script.php"));
    // Ignored parameters are dropped from followed locations.
    let with_session = header("https", "Location", "https://example.com/a?phpsessid=1&page=2");
    let cleaned = run("oois-in-headers", with_session, vec![], json!({"ignored_url_parameters": "phpsessid"}));
    assert_eq!(cleaned[0].get("raw").and_then(|v| v.as_str()), Some("https://example.com/a?page=2"));
    // CSP: URLs and host names.
    let csp = run(
        "oois-in-headers",
        header("https", "Content-Security-Policy", "script-src https://cdn.example.net; img-src static.example.org"),
        vec![],
        json!({}),
    );
    let types: Vec<&str> = csp.iter().map(|o| o.object_type()).collect();
    assert_eq!(types, ["URL", "HTTPHeaderURL", "Hostname", "HTTPHeaderHostname"]);
}

#[test]
fn https_availability() {
    let website = json!({"object_type": "Website", "ip_service": "IPService|internet|8.8.8.8|tcp|80|http", "hostname": "Hostname|internet|example.com"});
    let r = run("https-availability", address(), vec![port("tcp", 80), website.clone()], json!({}));
    assert_eq!(descriptions(&r), ["HTTP port is open, but HTTPS port is not open"]);
    assert!(
        run("https-availability", address(), vec![port("tcp", 80), port("tcp", 443), website], json!({})).is_empty()
    );
}

fn hostname(name: &str) -> Value {
    json!({"object_type": "Hostname", "network": "Network|internet", "name": name})
}

#[test]
fn missing_mail_records() {
    for (bit, record, id) in [
        (
            "missing-spf",
            json!({"object_type": "DNSSPFRecord", "dns_txt_record": "DNSTXTRecord|internet|example.com|11f6ad8ec52a2984abaafd7c3b516503785c2072", "value": "v=spf1 -all"}),
            "KAT-NO-SPF",
        ),
        (
            "missing-dmarc",
            json!({"object_type": "DMARCTXTRecord", "hostname": "Hostname|internet|example.com", "value": "v=DMARC1"}),
            "KAT-NO-DMARC",
        ),
        (
            "missing-dkim",
            json!({"object_type": "DKIMExists", "hostname": "Hostname|internet|example.com"}),
            "KAT-NO-DKIM",
        ),
        (
            "missing-caa",
            json!({"object_type": "DNSCAARecord", "hostname": "Hostname|internet|example.com", "tag": "issue", "value": "letsencrypt.org", "flags": 0}),
            "KAT-NO-CAA",
        ),
    ] {
        assert_eq!(finding_types(&run(bit, hostname("example.com"), vec![], json!({}))), [id], "{bit}");
        assert!(run(bit, hostname("example.com"), vec![record], json!({})).is_empty(), "{bit} with a record");
        assert!(run(bit, hostname("www.example.com"), vec![], json!({})).is_empty(), "{bit} on a subdomain");
        let nx = json!({"object_type": "NXDOMAIN", "hostname": "Hostname|internet|example.com"});
        assert!(run(bit, hostname("example.com"), vec![nx], json!({})).is_empty(), "{bit} on NXDOMAIN");
    }
}

#[test]
fn nameservers_and_ipv6() {
    let a = json!({"object_type": "DNSARecord", "hostname": "Hostname|internet|example.com", "address": "IPAddressV4|internet|192.0.2.1", "value": "192.0.2.1"});
    let aaaa = json!({"object_type": "DNSAAAARecord", "hostname": "Hostname|internet|example.com", "address": "IPAddressV6|internet|2001:db8::1", "value": "2001:db8::1"});
    assert_eq!(
        finding_types(&run("ipv6-webservers", hostname("example.com"), vec![a.clone()], json!({}))),
        ["KAT-WEBSERVER-NO-IPV6"]
    );
    assert!(run("ipv6-webservers", hostname("example.com"), vec![a, aaaa.clone()], json!({})).is_empty());
    let ns = json!({"object_type": "DNSNSRecord", "hostname": "Hostname|internet|example.org", "name_server_hostname": "Hostname|internet|example.com", "value": "example.com"});
    assert_eq!(
        finding_types(&run("ipv6-on-nameservers", hostname("example.com"), vec![ns.clone()], json!({}))),
        ["KAT-NAMESERVER-NO-IPV6"]
    );
    assert!(run("ipv6-on-nameservers", hostname("example.com"), vec![ns, aaaa], json!({})).is_empty());
    let ns_of = |server: &str| json!({"object_type": "DNSNSRecord", "hostname": "Hostname|internet|example.com", "name_server_hostname": format!("Hostname|internet|{server}"), "value": server});
    let no_v6 = |server: &str| {
        json!({"object_type": "Finding", "finding_type": "KATFindingType|KAT-NAMESERVER-NO-IPV6",
        "ooi": ooi(ns_of(server)).primary_key().as_str()})
    };
    let two = run(
        "two-ipv6-nameservers",
        hostname("example.com"),
        vec![ns_of("ns1.x.net"), ns_of("ns2.x.net"), no_v6("ns1.x.net")],
        json!({}),
    );
    assert_eq!(finding_types(&two), ["KAT-NAMESERVER-NO-TWO-IPV6"]);
    assert!(run(
        "two-ipv6-nameservers",
        hostname("example.com"),
        vec![ns_of("ns1.x.net"), ns_of("ns2.x.net")],
        json!({})
    )
    .is_empty());
}

#[test]
fn questions_and_discovery() {
    let q = run("ask-port-specification", json!({"object_type": "Network", "name": "test1"}), vec![], json!({}));
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].object_type(), "Question");
    assert_eq!(q[0].get("schema_id").and_then(|v| v.as_str()), Some("/bit/port-classification-ip"));

    let url = run(
        "url-classification",
        json!({"object_type": "URL", "network": "Network|internet", "raw": "https://example.com/a?b=c"}),
        vec![],
        json!({}),
    );
    assert_eq!(
        keys(&url),
        [
            "Hostname|internet|example.com",
            "HostnameHTTPURL|https|internet|example.com|443|/a",
            "URL|internet|https://example.com/a?b=c"
        ]
    );
    let ip_url = run(
        "url-classification",
        json!({"object_type": "URL", "network": "Network|internet", "raw": "http://192.0.2.1:8080/"}),
        vec![],
        json!({}),
    );
    assert_eq!(ip_url[1].primary_key().as_str(), "IPAddressHTTPURL|http|internet|192.0.2.1|8080|/");

    let resolved =
        json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|example.com", "address": ADDRESS});
    let service =
        json!({"object_type": "IPService", "ip_port": "IPPort|internet|8.8.8.8|tcp|443", "service": "Service|https"});
    let ssh =
        json!({"object_type": "IPService", "ip_port": "IPPort|internet|8.8.8.8|tcp|22", "service": "Service|ssh"});
    let sites = run("website-discovery", address(), vec![resolved.clone(), service, ssh], json!({}));
    assert_eq!(keys(&sites), ["Website|internet|8.8.8.8|tcp|443|https|internet|example.com"]);
    let urls = run("url-discovery", address(), vec![resolved, port("tcp", 443), port("tcp", 22)], json!({}));
    assert_eq!(keys(&urls), ["URL|internet|https://example.com/"]);
}

#[test]
fn retire_js_and_certificates() {
    let software = json!({"object_type": "Software", "name": "jquery", "version": "3.4.1"});
    let instance = json!({"object_type": "SoftwareInstance", "ooi": "HTTPResource|internet|8.8.8.8|tcp|443|https|internet|example.com|https|internet|example.com|443|/",
        "software": ooi(software.clone()).primary_key().as_str()});
    let r = run("retire-js", software.clone(), vec![instance], json!({}));
    assert!(keys(&r).contains(&"CVEFindingType|CVE-2020-11022".to_owned()));
    assert!(run("retire-js", software, vec![], json!({})).is_empty());

    let cert = certificate("2099-01-01T00:00:00");
    let cert_key = ooi(cert.clone()).primary_key().to_string();
    let website = |name: &str| {
        json!({"object_type": "Website", "ip_service": "IPService|internet|8.8.8.8|tcp|443|https",
        "hostname": format!("Hostname|internet|{name}"), "certificate": cert_key})
    };
    let san = json!({"object_type": "SubjectAlternativeNameHostname", "certificate": cert_key, "hostname": "Hostname|internet|example.com"});
    let wildcard =
        json!({"object_type": "SubjectAlternativeNameQualifier", "certificate": cert_key, "name": "*.example.com"});
    assert!(
        run("ssl-certificate-hostname", cert.clone(), vec![website("example.com"), san.clone()], json!({})).is_empty()
    );
    assert!(
        run("ssl-certificate-hostname", cert.clone(), vec![website("www.example.com"), wildcard], json!({})).is_empty()
    );
    let mismatch = run("ssl-certificate-hostname", cert, vec![website("other.org"), san], json!({}));
    assert_eq!(finding_types(&mismatch), ["KAT-SSL-CERT-HOSTNAME-MISMATCH"]);
}

#[test]
fn every_openkat_bit_is_built_in() {
    let ids: Vec<String> = builtin::all().iter().map(|b| b.definition().id.clone()).collect();
    for id in [
        "ask-disallowed-domains",
        "ask-port-specification",
        "ask_url_params_to_ignore",
        "check-csp-header",
        "check_cve_2021_41773",
        "check-hsts-header",
        "cipher-classification",
        "default-findingtype-risk",
        "disallowed-csp-hostnames",
        "dns-alias-resolving",
        "dns-resolving",
        "domain-owner-verification",
        "expiring-certificate",
        "https-availability",
        "https-redirect",
        "internet-nl",
        "ipv6-on-nameservers",
        "ipv6-webservers",
        "missing-caa",
        "missing-dkim",
        "missing-dmarc",
        "missing-spf",
        "missing-headers",
        "nxdomain-flag",
        "nxdomain-header-flag",
        "oois-in-headers",
        "port-classification-ip",
        "port-common",
        "resource-discovery",
        "retire-js",
        "spf-discovery",
        "ssl-certificate-hostname",
        "two-ipv6-nameservers",
        "url-classification",
        "url-discovery",
        "website-discovery",
    ] {
        assert!(ids.contains(&id.to_owned()), "{id} missing");
    }
    assert_eq!(ids.len(), 36);
    // And each one's declaration is valid against the catalogue.
    octo_bits::BitEngine::new(catalog(), builtin::all(), Default::default()).unwrap();
}

#[test]
fn disallowed_csp_hostnames() {
    let csp_header = ooi(header("https", "Content-Security-Policy", "script-src https://bit.ly"));
    let on = |name: &str, key: &str, config| {
        let h = if key == "csp" {
            csp_header.primary_key().to_string()
        } else {
            ooi(header("https", "Server", "x")).primary_key().to_string()
        };
        let source =
            json!({"object_type": "HTTPHeaderHostname", "header": h, "hostname": format!("Hostname|internet|{name}")});
        finding_types(&run("disallowed-csp-hostnames", source, vec![], config))
    };
    assert_eq!(on("bit.ly", "csp", json!({})), ["KAT-DISALLOWED-DOMAIN-IN-CSP"]);
    assert_eq!(on("cdn.bit.ly", "csp", json!({})), ["KAT-DISALLOWED-DOMAIN-IN-CSP"], "subdomains of a disallowed name");
    assert!(on("bit.ly", "csp", json!({"disallow_url_shorteners": false})).is_empty());
    assert!(on("example.com", "csp", json!({})).is_empty());
    assert_eq!(
        on("static.github.io", "csp", json!({"disallowed_hostnames": "github.io, unpkg.com"})),
        ["KAT-DISALLOWED-DOMAIN-IN-CSP"]
    );
    assert!(on("bit.ly", "server", json!({})).is_empty(), "only CSP headers");
}

#[test]
fn dns_resolving_and_aliases() {
    let a = json!({"object_type": "DNSARecord", "hostname": "Hostname|internet|example.com", "address": "IPAddressV4|internet|192.0.2.1", "value": "192.0.2.1"});
    let aaaa = json!({"object_type": "DNSAAAARecord", "hostname": "Hostname|internet|example.com", "address": "IPAddressV6|internet|2001:db8::1", "value": "2001:db8::1"});
    assert_eq!(
        keys(&run("dns-resolving", hostname("example.com"), vec![a, aaaa], json!({}))),
        [
            "ResolvedHostname|internet|example.com|internet|192.0.2.1",
            "ResolvedHostname|internet|example.com|internet|2001:db8::1"
        ]
    );
    assert!(run("dns-resolving", hostname("example.com"), vec![], json!({})).is_empty());
    // www.example.com is a CNAME for example.com, which resolves: so does www.
    let cname = json!({"object_type": "DNSCNAMERecord", "hostname": "Hostname|internet|www.example.com", "target_hostname": "Hostname|internet|example.com", "value": "example.com"});
    let resolved = json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|example.com", "address": "IPAddressV4|internet|192.0.2.1"});
    assert_eq!(
        keys(&run("dns-alias-resolving", hostname("example.com"), vec![cname.clone(), resolved], json!({}))),
        ["ResolvedHostname|internet|www.example.com|internet|192.0.2.1"]
    );
    assert!(run("dns-alias-resolving", hostname("example.com"), vec![cname], json!({})).is_empty());
}

#[test]
fn nxdomain_flags() {
    let nx = json!({"object_type": "NXDOMAIN", "hostname": "Hostname|internet|gone.example"});
    assert_eq!(
        finding_types(&run("nxdomain-flag", hostname("gone.example"), vec![nx.clone()], json!({}))),
        ["KAT-NXDOMAIN"]
    );
    assert!(run("nxdomain-flag", hostname("gone.example"), vec![], json!({})).is_empty());
    let h = ooi(header("https", "Content-Security-Policy", "script-src gone.example")).primary_key().to_string();
    let in_header =
        json!({"object_type": "HTTPHeaderHostname", "header": h, "hostname": "Hostname|internet|gone.example"});
    let r = run("nxdomain-header-flag", hostname("gone.example"), vec![nx, in_header.clone()], json!({}));
    assert_eq!(finding_types(&r), ["KAT-NXDOMAIN-HEADER"]);
    assert!(run("nxdomain-header-flag", hostname("gone.example"), vec![in_header], json!({})).is_empty());
}

#[test]
fn https_redirect() {
    let url = json!({"object_type": "HostnameHTTPURL", "network": "Network|internet", "scheme": "http", "netloc": "Hostname|internet|example.com", "port": 80, "path": "/"});
    let no_location = run("https-redirect", url.clone(), vec![header("http", "Content-Type", "text/html")], json!({}));
    assert_eq!(finding_types(&no_location), ["KAT-NO-HTTPS-REDIRECT"]);
    assert!(run("https-redirect", url.clone(), vec![header("http", "Location", "https://example.com/")], json!({}))
        .is_empty());
    assert!(run("https-redirect", url, vec![], json!({})).is_empty(), "no headers: nothing fetched");
    let https = json!({"object_type": "HostnameHTTPURL", "network": "Network|internet", "scheme": "https", "netloc": "Hostname|internet|example.com", "port": 443, "path": "/"});
    assert!(run("https-redirect", https, vec![header("https", "Content-Type", "text/html")], json!({})).is_empty());
}

#[test]
fn internet_nl() {
    let website = json!({"object_type": "Website", "ip_service": "IPService|internet|8.8.8.8|tcp|443|https", "hostname": "Hostname|internet|example.com"});
    let finding = |id: &str| json!({"object_type": "Finding", "finding_type": format!("KATFindingType|{id}"), "ooi": "Hostname|internet|example.com"});
    let r = run(
        "internet-nl",
        hostname("example.com"),
        vec![website.clone(), finding("KAT-WEBSERVER-NO-IPV6"), finding("KAT-NO-CSP")],
        json!({}),
    );
    assert_eq!(finding_types(&r), ["KAT-INTERNETNL"]);
    let d = descriptions(&r).remove(0);
    assert!(
        d.contains("This webserver does not have an IPv6 address\n")
            && d.contains("missing Content-Security-Policy header"),
        "{d}"
    );
    assert!(
        run("internet-nl", hostname("example.com"), vec![finding("KAT-NO-CSP")], json!({})).is_empty(),
        "only websites"
    );
    assert!(run("internet-nl", hostname("example.com"), vec![website, finding("KAT-OPEN-SYSADMIN-PORT")], json!({}))
        .is_empty());
}

#[test]
fn resource_discovery() {
    let website = |port: u16, service: &str| json!({"object_type": "Website", "ip_service": format!("IPService|internet|8.8.8.8|tcp|{port}|{service}"), "hostname": "Hostname|internet|example.com"});
    let url = |scheme: &str, port: u16| json!({"object_type": "HostnameHTTPURL", "network": "Network|internet", "scheme": scheme, "netloc": "Hostname|internet|example.com", "port": port, "path": "/"});
    let r = run(
        "resource-discovery",
        hostname("example.com"),
        vec![website(443, "https"), url("https", 443), url("http", 80)],
        json!({}),
    );
    assert_eq!(
        keys(&r),
        ["HTTPResource|internet|8.8.8.8|tcp|443|https|internet|example.com|https|internet|example.com|443|/"]
    );
    assert!(run(
        "resource-discovery",
        hostname("example.com"),
        vec![website(8443, "https"), url("https", 443)],
        json!({})
    )
    .is_empty());
}

#[test]
fn every_question() {
    for (bit, schema_id) in [
        ("ask-disallowed-domains", "/bit/disallowed-csp-hostnames"),
        ("ask-port-specification", "/bit/port-classification-ip"),
        ("ask_url_params_to_ignore", "/bit/oois-in-headers"),
    ] {
        let q = run(bit, json!({"object_type": "Network", "name": "internet"}), vec![], json!({}));
        assert_eq!(q.len(), 1, "{bit}");
        assert_eq!(q[0].get("schema_id").and_then(|v| v.as_str()), Some(schema_id));
        assert_eq!(q[0].get("ooi").and_then(|v| v.as_reference()).map(|r| r.as_str()), Some("Network|internet"));
    }
}
