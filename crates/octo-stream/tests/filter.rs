//! Live-stream filters: keys, operators, modes and nesting.

use octo_model::Catalog;
use octo_stream::{FilterGroup, ObjectView};
use serde_json::{json, Value};

fn group(v: Value) -> FilterGroup {
    let g: FilterGroup = serde_json::from_value(v).unwrap();
    g.check(&Catalog::builtin()).unwrap();
    g
}

fn matches(g: &FilterGroup, doc: &Value, level: u8, origins: &[(&str, &str)]) -> bool {
    let origins: Vec<(String, String)> = origins.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    g.matches(
        &ObjectView { doc, scan_level: level, origins: &origins, marking: octo_stream::Tlp::Amber },
        &Catalog::builtin(),
    )
}

#[test]
fn keys_operators_and_modes() {
    let port = json!({"object_type": "IPPort", "primary_key": "IPPort|internet|192.0.2.1|tcp|22", "port": 22, "protocol": "tcp", "state": "open"});
    let host = json!({"object_type": "Hostname", "primary_key": "Hostname|internet|a.nl", "name": "a.nl"});
    let observed = [("observation", "kat_nmap_normalize")];

    let by_type = group(json!({"filters": [{"key": "entity_type", "values": ["IPPort", "DNSRecord"]}]}));
    assert!(matches(&by_type, &port, 0, &[]) && !matches(&by_type, &host, 0, &[]));
    let abstract_type = group(json!({"filters": [{"key": "entity_type", "values": ["OOI"]}]}));
    assert!(matches(&abstract_type, &host, 0, &[]));

    let level = group(json!({"filters": [{"key": "scan_level", "values": [2], "operator": "gte"}]}));
    assert!(matches(&level, &port, 2, &[]) && matches(&level, &port, 4, &[]) && !matches(&level, &port, 1, &[]));

    let field = group(json!({"filters": [{"key": "field:port", "values": ["22", 443]}]}));
    assert!(matches(&field, &port, 0, &[]), "a number field matches its text");
    let not_open = group(json!({"filters": [{"key": "field:state", "values": ["open"], "operator": "not_eq"}]}));
    assert!(!matches(&not_open, &port, 0, &[]) && matches(&not_open, &host, 0, &[]));

    let origin = group(json!({"mode": "and", "filters": [
        {"key": "origin_type", "values": ["observation"]},
        {"key": "origin_method", "values": ["kat_nmap_normalize"]}]}));
    assert!(matches(&origin, &port, 0, &observed) && !matches(&origin, &port, 0, &[("declaration", "manual")]));

    // (type IPPort and level ≥ 2) or (hostname a.nl)
    let nested = group(json!({"mode": "or", "filterGroups": [
        {"mode": "and", "filters": [{"key": "entity_type", "values": ["IPPort"]}, {"key": "scan_level", "values": [2], "operator": "gte"}]},
        {"filters": [{"key": "field:name", "values": ["a.nl"]}]}]}));
    assert!(matches(&nested, &host, 0, &[]));
    assert!(matches(&nested, &port, 3, &[]) && !matches(&nested, &port, 1, &[]));
    // `and` over values: both must hold.
    let both =
        group(json!({"filters": [{"key": "origin_type", "values": ["observation", "declaration"], "mode": "and"}]}));
    assert!(
        !matches(&both, &port, 0, &observed) && matches(&both, &port, 0, &[("observation", "x"), ("declaration", "y")])
    );
    let amber = group(json!({"filters": [{"key": "marking", "values": ["amber", "TLP:RED"]}]}));
    assert!(matches(&amber, &host, 0, &[]), "the view's marking is AMBER");
    // The empty filter lets everything through.
    assert!(matches(&group(json!({})), &host, 0, &[]));
}

#[test]
fn bad_filters_are_refused_when_saved() {
    let catalog = Catalog::builtin();
    for (bad, needle) in [
        (json!({"filters": [{"key": "entity_type", "values": []}]}), "no values"),
        (json!({"filters": [{"key": "colour", "values": ["red"]}]}), "unknown filter key"),
        (json!({"filters": [{"key": "marking", "values": ["TLP:PURPLE"]}]}), "not a TLP level"),
        (json!({"filterGroups": [{"filters": [{"key": "scan_level", "values": ["high"]}]}]}), "0 to 4"),
        (json!({"filters": [{"key": "field:port", "values": [1], "operator": "lt"}]}), "operator"),
    ] {
        let g: FilterGroup = serde_json::from_value(bad.clone()).unwrap();
        let e = g.check(&catalog).unwrap_err();
        assert!(e.contains(needle), "{bad}: {e}");
    }
    assert!(serde_json::from_value::<FilterGroup>(json!({"mode": "xor"})).is_err());
    assert!(
        serde_json::from_value::<FilterGroup>(json!({"filters": [{"key": "a", "values": [1], "extra": 1}]})).is_err()
    );
}
