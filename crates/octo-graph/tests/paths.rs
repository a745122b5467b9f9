//! Octopoes' path queries.

use std::sync::Arc;

use octo_graph::{Declaration, Graph, ObjectPath, QueryResult};
use octo_model::{Catalog, Reference};
use octo_store::{AsOf, RedbStore, StoreOptions};
use serde_json::json;

fn graph() -> (tempfile::TempDir, Graph) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        RedbStore::open(&dir.path().join("g.redb"), &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() })
            .unwrap();
    let g = Graph::new(Arc::new(store), Catalog::builtin());
    let c = Catalog::builtin();
    for doc in [
        json!({"object_type": "Network", "name": "internet"}),
        json!({"object_type": "Hostname", "network": "Network|internet", "name": "a.example"}),
        json!({"object_type": "Hostname", "network": "Network|internet", "name": "b.example"}),
        json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1"}),
        json!({"object_type": "IPAddressV6", "network": "Network|internet", "address": "2001:db8::1"}),
        json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|a.example", "address": "IPAddressV4|internet|192.0.2.1"}),
        json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|a.example", "address": "IPAddressV6|internet|2001:db8::1"}),
        json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 22}),
        json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 443}),
    ] {
        g.save_declaration(Declaration {
            ooi: c.ooi_from_json(&doc).unwrap(),
            method: None,
            task_id: None,
            valid_time: None,
            end_valid_time: None,
        })
        .unwrap();
    }
    (dir, g)
}

fn keys(results: &[QueryResult]) -> Vec<String> {
    results.iter().map(|r| r.to_json()["primary_key"].as_str().unwrap_or_default().to_owned()).collect()
}

#[test]
fn paths_walk_outgoing_and_incoming_steps() {
    let (_d, g) = graph();
    let a = Reference::from_trusted("Hostname|internet|a.example");
    // Hostname → its resolutions → their addresses.
    let ips = g.query("Hostname.<hostname[is ResolvedHostname].address", Some(&a), 0, 100, AsOf::now()).unwrap();
    assert_eq!(keys(&ips), ["IPAddressV4|internet|192.0.2.1", "IPAddressV6|internet|2001:db8::1"]);
    // Only the IPv4 ones, by type intersection.
    let v4 = g
        .query("Hostname.<hostname[is ResolvedHostname].address[is IPAddressV4]", Some(&a), 0, 100, AsOf::now())
        .unwrap();
    assert_eq!(keys(&v4), ["IPAddressV4|internet|192.0.2.1"]);
    // Further, to the ports, and a plain field at the end gives values.
    let ports = g
        .query(
            "Hostname.<hostname[is ResolvedHostname].address.<address[is IPPort].port",
            Some(&a),
            0,
            100,
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(ports, [QueryResult::Value(json!(22)), QueryResult::Value(json!(443))]);
    // Without a source: from every object of the start type; paged.
    let nets = g.query("Hostname.network", None, 0, 100, AsOf::now()).unwrap();
    assert_eq!(keys(&nets), ["Network|internet"]);
    let names = g.query("Hostname.name", None, 1, 1, AsOf::now()).unwrap();
    assert_eq!(names, [QueryResult::Value(json!("b.example"))]);
    // query-many ties results to sources.
    let b = Reference::from_trusted("Hostname|internet|b.example");
    let many = g.query_many("Hostname.<hostname[is ResolvedHostname]", &[a.clone(), b], AsOf::now()).unwrap();
    assert_eq!(many.len(), 2);
    assert!(many.iter().all(|(s, _)| s == &a));
}

#[test]
fn bad_paths_say_which_step() {
    let c = Catalog::builtin();
    for (path, needle) in [
        ("Nope.x", "unknown type 'Nope'"),
        ("Hostname", "at least one step"),
        ("Hostname.colour", "no field 'colour'"),
        ("Hostname.<hostname", "needs `[is Type]`"),
        ("Hostname.<address[is ResolvedHostname]", "points at IPAddress"),
        ("Hostname.name.x", "plain field"),
        ("Hostname.network[is Nope]", "unknown type 'Nope'"),
        ("Hostname.name[is Network]", "not a reference"),
        ("Hostname.<hostname[ResolvedHostname]", "expected `[is Type]`"),
    ] {
        let err = ObjectPath::parse(path, &c).unwrap_err().to_string();
        assert!(err.contains(needle), "{path}: '{err}' lacks '{needle}'");
    }
    assert_eq!(ObjectPath::parse("IPAddress.<address[is IPPort]", &c).unwrap().segments.len(), 1);
}
