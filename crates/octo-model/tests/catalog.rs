//! The built-in catalogue, Octopoes-compatible keys, validation errors and user schema files.

use octo_model::{Catalog, CatalogBuilder, ModelError, Reference};
use serde_json::json;

fn ooi(catalog: &Catalog, doc: serde_json::Value) -> octo_model::Ooi {
    catalog.ooi_from_json(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

#[test]
fn builtin_covers_octopoes_classes() {
    let c = Catalog::builtin();
    let expected = [
        "Network",
        "IPAddressV4",
        "IPAddressV6",
        "IPPort",
        "AutonomousSystem",
        "IPV4NetBlock",
        "IPV6NetBlock",
        "Hostname",
        "DNSZone",
        "ResolvedHostname",
        "DNSARecord",
        "DNSAAAARecord",
        "DNSMXRecord",
        "DNSNSRecord",
        "DNSCNAMERecord",
        "DNSTXTRecord",
        "DNSSOARecord",
        "DNSPTRRecord",
        "DNSCAARecord",
        "NXDOMAIN",
        "DNSSPFRecord",
        "DNSSPFMechanismIP",
        "DNSSPFMechanismHostname",
        "DNSSPFMechanismNetBlock",
        "DMARCTXTRecord",
        "DKIMExists",
        "DKIMSelector",
        "DKIMKey",
        "X509Certificate",
        "SubjectAlternativeNameHostname",
        "SubjectAlternativeNameIP",
        "SubjectAlternativeNameQualifier",
        "Service",
        "IPService",
        "TLSCipher",
        "Software",
        "SoftwareInstance",
        "Website",
        "HostnameHTTPURL",
        "IPAddressHTTPURL",
        "HTTPResource",
        "HTTPHeader",
        "HTTPHeaderURL",
        "HTTPHeaderHostname",
        "URL",
        "SecurityTXT",
        "Finding",
        "MutedFinding",
        "KATFindingType",
        "CVEFindingType",
        "CWEFindingType",
        "CAPECFindingType",
        "RetireJSFindingType",
        "SnykFindingType",
        "ADRFindingType",
        "Config",
        "Question",
    ];
    for name in expected {
        let t = c.get(name).unwrap_or_else(|_| panic!("missing {name}"));
        assert!(!t.is_abstract, "{name} must be concrete");
    }
    for name in ["IPAddress", "NetBlock", "DNSRecord", "WebURL", "FindingType", "SubjectAlternativeName"] {
        assert!(c.get(name).unwrap().is_abstract, "{name} must be abstract");
    }
    let mut ips = c.concrete_types("IPAddress").unwrap().to_vec();
    ips.sort();
    assert_eq!(ips, ["IPAddressV4", "IPAddressV6"]);
    assert_eq!(c.concrete_types("FindingType").unwrap().len(), 7);
    assert!(c.concrete_types("OOI").unwrap().len() >= expected.len());
    assert!(c.is_a("IPAddressV6", "IPAddress") && c.is_a("Finding", "OOI") && !c.is_a("Hostname", "IPAddress"));
}

#[test]
fn inherited_fields_and_caps_follow_octopoes() {
    let c = Catalog::builtin();
    let port = c.get("IPPort").unwrap();
    let address = port.field("address").unwrap().reference().unwrap();
    assert_eq!((address.max_issue_scan_level, address.max_inherit_scan_level), (Some(0), Some(4)));
    assert_eq!(port.reverse_name("address"), "ports");
    assert_eq!(port.reverse_name("nonexistent"), "IPPort_nonexistent");
    let v4 = c.get("IPAddressV4").unwrap();
    assert_eq!(v4.natural_key, ["network", "address"]);
    assert!(v4.field("netblock").is_some() && v4.field("network").is_some());
    assert!(!c.get("Network").unwrap().traversable && !c.get("KATFindingType").unwrap().traversable);
    let soa = c.get("DNSSOARecord").unwrap();
    assert_eq!(soa.natural_key, ["hostname", "soa_hostname"]);
}

#[test]
fn keys_match_octopoes() {
    let c = Catalog::builtin();
    let cases = [
        (json!({"object_type": "Network", "name": "internet"}), "Network|internet"),
        (
            json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1"}),
            "IPAddressV4|internet|192.0.2.1",
        ),
        (
            json!({"object_type": "IPAddressV6", "network": "Network|internet", "address": "2001:DB8:0:0::1"}),
            "IPAddressV6|internet|2001:db8::1",
        ),
        (
            json!({"object_type": "Hostname", "network": "Network|internet", "name": "Example.COM"}),
            "Hostname|internet|example.com",
        ),
        (
            json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 443}),
            "IPPort|internet|192.0.2.1|tcp|443",
        ),
        (json!({"object_type": "Service", "name": "https"}), "Service|https"),
        (
            json!({"object_type": "IPService", "ip_port": "IPPort|internet|192.0.2.1|tcp|443", "service": "Service|https"}),
            "IPService|internet|192.0.2.1|tcp|443|https",
        ),
        (
            json!({"object_type": "Website", "ip_service": "IPService|internet|192.0.2.1|tcp|443|https", "hostname": "Hostname|internet|example.com"}),
            "Website|internet|192.0.2.1|tcp|443|https|internet|example.com",
        ),
        (json!({"object_type": "Software", "name": "nginx", "version": "1.25.3"}), "Software|nginx|1.25.3|"),
        (
            json!({"object_type": "SoftwareInstance", "ooi": "IPPort|internet|192.0.2.1|tcp|443", "software": "Software|nginx|1.25.3|"}),
            "SoftwareInstance|IPPort|internet|192.0.2.1|tcp|443|Software|nginx|1.25.3|",
        ),
        (json!({"object_type": "KATFindingType", "id": "KAT-OPEN-PORT"}), "KATFindingType|KAT-OPEN-PORT"),
        (json!({"object_type": "CVEFindingType", "id": " cve-2021-41773 "}), "CVEFindingType|CVE-2021-41773"),
        (
            json!({"object_type": "Finding", "ooi": "IPPort|internet|192.0.2.1|tcp|443", "finding_type": "KATFindingType|KAT-OPEN-PORT"}),
            "Finding|IPPort|internet|192.0.2.1|tcp|443|KAT-OPEN-PORT",
        ),
        (
            json!({"object_type": "HostnameHTTPURL", "network": "Network|internet", "scheme": "https", "netloc": "Hostname|internet|example.com", "port": 443, "path": "/"}),
            "HostnameHTTPURL|https|internet|example.com|443|/",
        ),
        (
            json!({"object_type": "DNSCAARecord", "hostname": "Hostname|internet|example.com", "tag": "issue", "value": "letsencrypt.org"}),
            "DNSCAARecord|internet|example.com||issue|letsencrypt.org",
        ),
        (
            json!({"object_type": "X509Certificate", "valid_from": "2024-01-01", "valid_until": "2025-01-01", "serial_number": "0A1B"}),
            "X509Certificate||0A1B",
        ),
        // References to any type embed the full key (Octopoes embeds only the natural key here).
        (
            json!({"object_type": "Config", "ooi": "Hostname|internet|example.com", "bit_id": "check-hsts-header", "config": {"max-age": 31536000}}),
            "Config|Hostname|internet|example.com|check-hsts-header",
        ),
        // Octopoes keys TXT records by the SHA-1 of the value.
        (
            json!({"object_type": "DNSTXTRecord", "hostname": "Hostname|internet|example.com", "value": "v=spf1 -all"}),
            "DNSTXTRecord|internet|example.com|d2b1e35921ca5499e137cdbf735817cf89874cd3",
        ),
    ];
    for (doc, key) in cases {
        let o = ooi(&c, doc.clone());
        assert_eq!(o.primary_key().as_str(), key, "{doc}");
        let parsed = Reference::parse(key, &c).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(parsed.reference().as_str(), key);
    }
}

#[test]
fn tokens_are_typed_and_nested() {
    let c = Catalog::builtin();
    let p = Reference::parse("Website|internet|2001:db8::1|tcp|443|https|internet|example.com", &c).unwrap();
    let t = p.tokens();
    assert_eq!(t.type_name, "Website");
    assert_eq!(t["ip_service"]["ip_port"]["address"]["address"], "2001:db8::1");
    assert_eq!(t["ip_service"]["ip_port"]["address"].as_node().unwrap().type_name, "IPAddressV6");
    assert_eq!(t["ip_service"]["ip_port"]["port"], "443");
    assert_eq!(t["hostname"]["name"], "example.com");
    assert_eq!(t["nonexistent"]["x"], octo_model::Token::Missing);

    let f = Reference::parse("Finding|IPPort|internet|192.0.2.1|tcp|443|KAT-OPEN-PORT", &c).unwrap();
    assert_eq!(f.tokens()["ooi"].as_node().unwrap().type_name, "IPPort");
    assert_eq!(f.tokens()["ooi"]["address"]["address"], "192.0.2.1");
    // A finding type id alone does not say which kind: the abstract type is reported.
    assert_eq!(f.tokens()["finding_type"].as_node().unwrap().type_name, "FindingType");
    assert_eq!(f.tokens()["finding_type"]["id"], "KAT-OPEN-PORT");

    let u = Reference::parse(
        "HTTPResource|internet|192.0.2.1|tcp|80|http|internet|a.example|http|internet|192.0.2.1|80|/x",
        &c,
    )
    .unwrap();
    assert_eq!(u.tokens()["web_url"].as_node().unwrap().type_name, "IPAddressHTTPURL");
    assert_eq!(u.tokens()["website"]["hostname"]["name"], "a.example");
}

#[test]
fn keys_are_canonicalised_when_parsed() {
    let c = Catalog::builtin();
    let p = Reference::parse("IPPort|internet|2001:DB8:0::1|tcp|0443", &c).unwrap();
    assert_eq!(p.reference().as_str(), "IPPort|internet|2001:db8::1|tcp|443");
    let h = Reference::parse("Hostname|internet|WWW.Example.com.", &c).unwrap();
    assert_eq!(h.reference().as_str(), "Hostname|internet|www.example.com");
}

#[test]
fn bad_keys_say_why() {
    let c = Catalog::builtin();
    let bad = [
        ("Nope|x", "unknown object type"),
        ("IPAddress|internet|192.0.2.1", "abstract"),
        ("IPPort|internet|192.0.2.1|tcp", "too few segments"),
        ("IPPort|internet|192.0.2.1|tcp|443|extra", "trailing"),
        ("IPPort|internet|192.0.2.1|sctp|443", "not one of tcp, udp"),
        ("IPPort|internet|192.0.2.1|tcp|70000", "out of range"),
        ("IPAddressV4|internet|300.1.1.1", "not an IP"),
        ("Network|bad%escape", "bad escape"),
        ("Finding|Hostname|internet|x.example", "too few segments"),
        ("Finding|IPAddress|internet|192.0.2.1|KAT-1", "is not a concrete OOI"),
    ];
    for (key, needle) in bad {
        match Reference::parse(key, &c) {
            Err(ModelError::Key { message, .. }) if message.contains(needle) => {}
            other => panic!("{key}: expected error containing '{needle}', got {other:?}"),
        }
    }
}

#[test]
fn validation_errors_name_the_field() {
    let c = Catalog::builtin();
    let cases = [
        (
            json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 70000}),
            "IPPort.port",
        ),
        (
            json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp"}),
            "IPPort.port: is required",
        ),
        (
            json!({"object_type": "IPPort", "address": "Hostname|internet|a.example", "protocol": "tcp", "port": 1}),
            "is not a IPAddress",
        ),
        (json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "2001:db8::1"}), "not an IPv4"),
        (json!({"object_type": "Hostname", "network": "Network|internet", "name": "bad name"}), "Hostname.name"),
        (json!({"object_type": "Network", "name": "internet", "colour": "red"}), "Network.colour: no such field"),
        (json!({"object_type": "IPAddress", "network": "Network|internet", "address": "192.0.2.1"}), "abstract"),
        (json!({"object_type": "Unknown"}), "unknown object type"),
        (json!({"name": "internet"}), "object_type"),
        (json!({"object_type": "Network", "name": "internet", "primary_key": "Network|other"}), "does not match"),
        (json!({"object_type": "KATFindingType", "id": "X", "risk_score": 11.0}), "risk_score"),
    ];
    for (doc, needle) in cases {
        let err = c.ooi_from_json(&doc).expect_err(&doc.to_string()).to_string();
        assert!(err.contains(needle), "{doc}: '{err}' lacks '{needle}'");
    }
}

#[test]
fn json_round_trips_in_octopoes_shape() {
    let c = Catalog::builtin();
    let doc = json!({
        "object_type": "IPPort",
        "scan_profile": {"scan_profile_type": "declared", "reference": "IPPort|internet|192.0.2.1|tcp|22", "level": 2},
        "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 22,
    });
    let o = ooi(&c, doc);
    let out = o.to_json();
    assert_eq!(out["primary_key"], "IPPort|internet|192.0.2.1|tcp|22");
    assert_eq!(out["state"], serde_json::Value::Null);
    assert_eq!(out["scan_profile"]["level"], 2);
    assert_eq!(c.ooi_from_json(&out).unwrap(), o);
    let refs: Vec<_> = o.references().map(|(f, r)| (f.to_owned(), r.to_string())).collect();
    assert_eq!(refs, [("address".to_owned(), "IPAddressV4|internet|192.0.2.1".to_owned())]);
}

#[test]
fn user_types_load_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vpn.toml"),
        r#"
[VPNGateway]
description = "A VPN concentrator seen in syslog."
natural_key = ["address", "vendor"]
fields.address = { ref = "IPAddress", max_issue_scan_level = 1, max_inherit_scan_level = 2 }
fields.vendor = { type = "string", case = "lower" }
fields.users = { type = "string", list = true, optional = true }
"#,
    )
    .unwrap();
    let c = CatalogBuilder::with_builtin().add_dir(dir.path()).build().unwrap();
    let o = ooi(
        &c,
        json!({"object_type": "VPNGateway", "address": "IPAddressV4|internet|192.0.2.9", "vendor": "Fortinet", "users": ["a|b", "c"]}),
    );
    assert_eq!(o.primary_key().as_str(), "VPNGateway|internet|192.0.2.9|fortinet");
    assert_eq!(Reference::parse(o.primary_key().as_str(), &c).unwrap().tokens()["vendor"], "fortinet");
}

#[test]
fn bad_schema_files_name_the_file() {
    let cases = [
        ("[A]\nnatural_key = [\"x\"]\nfields.x = { type = \"strnig\" }\n", "unknown field type `strnig`"),
        ("[A]\nnatural_key = [\"y\"]\nfields.x = { type = \"string\" }\n", "natural key field `y`"),
        ("[A]\nnatural_key = [\"x\"]\nfields.x = { ref = \"Nope\" }\n", "unknown type `Nope`"),
        ("[A]\nparents = [\"Nope\"]\nnatural_key = [\"x\"]\nfields.x = { type = \"int\" }\n", "unknown parent"),
        ("[Hostname]\nnatural_key = [\"x\"]\nfields.x = { type = \"int\" }\n", "already declared"),
        ("[A]\nnatural_key = [\"x\"]\nfields.x = { type = \"int\" \n", "line 3"),
        ("[A]\nnatural_key = [\"x\"]\nfields.x = { type = \"int\", colour = 1 }\n", "colour"),
        ("[A]\nnatural_key = [\"x\"]\nfields.x = { ref = \"OOI\", key_embed = \"natural_key\" }\n", "full key"),
        ("[Origin]\nnatural_key = [\"x\"]\nfields.x = { type = \"int\" }\n", "graph's own records"),
    ];
    for (text, needle) in cases {
        let err =
            CatalogBuilder::with_builtin().add_str(std::path::Path::new("user/a.toml"), text).build().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("user/a.toml") && msg.contains(needle), "'{msg}' lacks '{needle}'");
    }
}

#[test]
fn serialising_an_object_writes_its_json_document() {
    let catalog = Catalog::builtin();
    for doc in [
        json!({"object_type": "Hostname", "network": "Network|internet", "name": "Example.COM"}),
        json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 443,
               "state": "open", "user_id": 7,
               "scan_profile": {"scan_profile_type": "declared", "reference": "IPPort|internet|192.0.2.1|tcp|443", "level": 2}}),
        json!({"object_type": "HTTPHeader", "resource": "HTTPResource|internet|192.0.2.1|tcp|443|https|internet|a.nl|https|internet|a.nl|443|/",
               "key": "X-List", "value": "a|b%c"}),
    ] {
        let ooi = catalog.ooi_from_json(&doc).unwrap();
        assert_eq!(serde_json::to_value(&ooi).unwrap(), ooi.to_json(), "{doc}");
        assert_eq!(serde_json::to_string(&ooi).unwrap(), ooi.to_json().to_string(), "same order too: {doc}");
    }
}

#[test]
fn stored_documents_decode_in_one_pass_as_through_json() {
    // Every kind of field, lists, defaults and nulls: the one-pass decoder of stored bytes
    // gives exactly the object the general path builds from the parsed document.
    let schema = r#"
[Gadget]
natural_key = ["name"]
fields.name = { type = "string" }
fields.count = { type = "int", optional = true }
fields.ratio = { type = "float", optional = true }
fields.on = { type = "bool", optional = true }
fields.kind = { type = "enum", values = ["a", "b"], default = "a" }
fields.seen = { type = "datetime", optional = true }
fields.host = { type = "hostname", optional = true }
fields.addr = { type = "ip", optional = true }
fields.link = { type = "url", optional = true }
fields.extra = { type = "json", optional = true }
fields.tags = { type = "string", list = true, optional = true }
fields.near = { ref = "IPAddress", list = true, optional = true }
fields.port = { ref = "IPPort", optional = true }
"#;
    let catalog = CatalogBuilder::with_builtin().add_str(std::path::Path::new("user/g.toml"), schema).build().unwrap();
    let docs = [
        json!({"object_type": "Gadget", "name": "x|y%z", "count": 3, "ratio": 0.5, "on": true, "kind": "b",
               "seen": "2026-12-01T10:00:00+01:00", "host": "Example.COM", "addr": "2001:db8::1",
               "link": "https://example.com/a?b=c", "extra": {"deep": [1, {"x": null}]}, "tags": ["p", "q\"r"],
               "near": ["IPAddressV4|internet|192.0.2.1", "IPAddressV6|internet|2001:db8::1"],
               "port": "IPPort|internet|192.0.2.1|tcp|22", "user_id": 4,
               "scan_profile": {"scan_profile_type": "declared", "reference": "Gadget|x%7Cy%25z", "level": 2}}),
        json!({"object_type": "Gadget", "name": "bare"}),
        json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 443}),
        json!({"object_type": "Finding", "ooi": "IPPort|internet|192.0.2.1|tcp|443", "finding_type": "KATFindingType|KAT-X",
               "description": "caf\u{e9} \\ \"quoted\""}),
    ];
    for doc in docs {
        let ooi = ooi(&catalog, doc.clone());
        let bytes = serde_json::to_vec(&ooi.to_json()).unwrap();
        let key = ooi.primary_key().as_str();
        let general = catalog.ooi_from_stored(key, serde_json::from_slice(&bytes).unwrap()).unwrap();
        let fast = catalog.ooi_from_stored_bytes(key, &bytes).unwrap_or_else(|| panic!("{doc} took the general path"));
        assert_eq!(fast, general, "{doc}");
        assert_eq!(fast, ooi, "{doc}");
    }
    // Documents not as this system writes them are left to the general path.
    for odd in [
        r#"{"name": "late type", "object_type": "Gadget"}"#,
        r#"{"object_type": "Gadget", "name": "x", "nope": 1}"#,
        r#"{"object_type": "Gadget", "name": 5}"#,
        r#"{"object_type": "Gadget", "name": "x", "kind": "c"}"#,
        r#"{"object_type": "Gadget"}"#,
        r#"{"object_type": "IPAddress", "network": "Network|internet", "address": "192.0.2.1"}"#,
        r#"{"object_type": "Gadget", "name": "x"} trailing"#,
        r#"not json"#,
    ] {
        assert!(catalog.ooi_from_stored_bytes("Gadget|x", odd.as_bytes()).is_none(), "{odd}");
    }
}
