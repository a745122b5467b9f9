//! STIX ids against the `stix2` library's own values, and the shape of mapped objects.

use octo_model::{Catalog, Reference};
use octo_stream::stix::{canonical_json, sco_id, stix_id, to_stix, CUSTOM_TYPE, EXTENSION_ID};
use serde_json::{json, Map, Value};

fn id_of(key: &str) -> String {
    let catalog = Catalog::builtin();
    let parsed = Reference::parse(key, &catalog).unwrap();
    stix_id(parsed.reference(), &catalog)
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn observable_ids_match_the_stix2_library() {
    assert_eq!(id_of("IPAddressV4|internet|198.51.100.7"), "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db");
    assert_eq!(id_of("IPAddressV6|internet|2001:db8::1"), "ipv6-addr--6469e3a9-b053-5e34-a025-9396ae051d26");
    assert_eq!(id_of("Hostname|internet|example.com"), "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7");
    assert_eq!(id_of("URL|internet|https://example.com/a"), "url--6ccd10ff-4c3f-5062-a19f-b6bd987c6637");
    assert_eq!(id_of("AutonomousSystem|64500"), "autonomous-system--0a5f7072-df00-5729-9f0a-4eb18631a446");
    // Octograph's Software has no vendor; the id function itself is checked on the full vector.
    assert_eq!(
        sco_id("software", &map(json!({"name": "OpenSSH", "version": "8.9p1", "vendor": "OpenBSD"}))),
        "software--4b820ca5-05de-504d-8716-7fa8c1899b25"
    );
    assert_eq!(
        sco_id(
            "network-traffic",
            &map(
                json!({"src_ref": "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db", "dst_port": 22, "protocols": ["tcp"]})
            )
        ),
        "network-traffic--e90e9093-49f3-5868-bae7-0fb60f4e34e9"
    );
}

#[test]
fn canonical_json_sorts_keys_and_drops_whitespace() {
    let v = json!({"b": [1, {"z": "é\n", "a": null}], "a": true, "\u{fb33}": 1, "\u{1d11e}": 2});
    // U+1D11E sorts before U+FB33 by UTF-16 code units (its first is the surrogate 0xD834), though
    // after it by code point: RFC 8785 sorts by UTF-16.
    assert_eq!(canonical_json(&v), "{\"a\":true,\"b\":[1,{\"a\":null,\"z\":\"é\\n\"}],\"\u{1d11e}\":2,\"\u{fb33}\":1}");
}

#[test]
fn a_port_is_network_traffic_to_its_address() {
    let catalog = Catalog::builtin();
    let doc = json!({"object_type": "IPPort", "primary_key": "IPPort|internet|198.51.100.7|tcp|22",
        "address": "IPAddressV4|internet|198.51.100.7", "protocol": "tcp", "port": 22, "state": "open"});
    let objects = to_stix(&doc, &catalog, "2026-11-23T10:00:00Z");
    assert_eq!(objects.len(), 1, "the address is dst_ref, not a relationship: {objects:?}");
    let port = &objects[0];
    assert_eq!(port["type"], "network-traffic");
    assert_eq!(port["dst_ref"], "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db");
    assert_eq!(port["dst_port"], 22);
    assert_eq!(port["id"], id_of("IPPort|internet|198.51.100.7|tcp|22"), "id from the object equals id from the key");
    assert_eq!(port["extensions"][EXTENSION_ID]["fields"]["state"], "open");
}

#[test]
fn findings_are_notes_and_other_references_relationships() {
    let catalog = Catalog::builtin();
    let finding = json!({"object_type": "Finding",
        "primary_key": "Finding|IPPort|internet|198.51.100.7|tcp|22|KAT-OPEN-SYSADMIN-PORT",
        "ooi": "IPPort|internet|198.51.100.7|tcp|22", "finding_type": "KATFindingType|KAT-OPEN-SYSADMIN-PORT"});
    let objects = to_stix(&finding, &catalog, "2026-11-23T10:00:00Z");
    let note = &objects[0];
    assert_eq!(note["type"], "note");
    assert_eq!(note["object_refs"][0], id_of("IPPort|internet|198.51.100.7|tcp|22"));
    assert_eq!(note["created"], "2026-11-23T10:00:00.000Z");
    assert_eq!(objects.len(), 1, "both references are object_refs");

    let record = json!({"object_type": "DNSARecord", "primary_key": "DNSARecord|internet|example.com|192.0.2.1",
        "hostname": "Hostname|internet|example.com", "address": "IPAddressV4|internet|192.0.2.1", "value": "192.0.2.1"});
    let objects = to_stix(&record, &catalog, "2026-11-23T10:00:00Z");
    assert_eq!(objects[0]["type"], CUSTOM_TYPE);
    assert_eq!(objects[0]["ooi_type"], "DNSARecord");
    let rels: Vec<&Value> = objects[1..].iter().collect();
    assert_eq!(rels.len(), 2, "{objects:?}");
    assert!(rels.iter().all(|r| r["type"] == "relationship" && r["source_ref"] == objects[0]["id"]));
    assert!(rels
        .iter()
        .any(|r| r["relationship_type"] == "hostname" && r["target_ref"] == id_of("Hostname|internet|example.com")));
    // Ids of domain objects and relationships are stable across updates.
    assert_eq!(to_stix(&record, &catalog, "2027-01-01T00:00:00Z")[1]["id"], objects[1]["id"]);
}
