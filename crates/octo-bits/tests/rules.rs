//! Declarative rules: loading (with errors naming file and line), matching, emitting, and a user
//! rule running in a graph like any built-in bit.

use std::path::Path;
use std::sync::Arc;

use octo_bits::rules::{load_dir, load_str};
use octo_bits::{Bit, BitEngine, BitInput, BitSwitches};
use octo_graph::{Declaration, Graph};
use octo_model::{Catalog, Reference};
use octo_store::{AsOf, RedbStore, StoreOptions, Timestamp};
use serde_json::json;

const TELNET: &str = r#"
[[rule]]
id = "open-telnet"
consumes = "IPPort"
min_scan_level = 0
when = { port = { in = [23, 2323] }, protocol = { equals = "tcp" } }

[[rule.emit]]
object_type = "KATFindingType"
id = "KAT-OPEN-TELNET"

[[rule.emit]]
object_type = "Finding"
finding_type = "KATFindingType|KAT-OPEN-TELNET"
ooi = "{source}"
description = "Port {port}/{protocol} offers telnet."
"#;

fn load_err(text: &str) -> String {
    match load_str(Path::new("rules/bad.toml"), text, &Catalog::builtin()) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_rules_name_file_and_line() {
    let e = load_err(&TELNET.replace("consumes = \"IPPort\"", "consumes = \"IPPorts\""));
    assert!(e.starts_with("rules/bad.toml:4: rule 'open-telnet':"), "{e}");
    assert!(e.contains("IPPorts"), "{e}");
    let e = load_err(&TELNET.replace("port = { in", "prot = { in"));
    assert!(e.starts_with("rules/bad.toml:6:") && e.contains("IPPort has no field 'prot'"), "{e}");
    let e = load_err(&TELNET.replace("description = \"Port {port}", "description = \"Port {nope}"));
    assert!(e.contains("placeholder '{nope}'"), "{e}");
    let e = load_err(&TELNET.replace("ooi = \"{source}\"", "oi = \"{source}\""));
    assert!(e.contains("Finding has no field 'oi'"), "{e}");
    let e = load_err(&TELNET.replace("{ equals = \"tcp\" }", "{ equal = \"tcp\" }"));
    assert!(e.starts_with("rules/bad.toml:6:") && e.contains("equal"), "{e}");
    let e = load_err("[[rule]\nid = 1");
    assert!(e.starts_with("rules/bad.toml:1:"), "{e}");
    let e = load_err(&TELNET.replace("in = [23, 2323]", "matches = \"(\""));
    assert!(e.contains("bad pattern"), "{e}");
}

#[test]
fn rules_match_and_emit() {
    let catalog = Catalog::builtin();
    let rules = load_str(Path::new("telnet.toml"), TELNET, &catalog).unwrap();
    let port = |p: u16, protocol: &str| {
        catalog.ooi_from_json(&json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": protocol, "port": p})).unwrap()
    };
    let out = rules[0].run(&BitInput::new(&catalog, port(23, "tcp"))).unwrap();
    assert_eq!(out[1].primary_key().as_str(), "Finding|IPPort|internet|192.0.2.1|tcp|23|KAT-OPEN-TELNET");
    assert_eq!(out[1].get("description").and_then(|d| d.as_str()), Some("Port 23/tcp offers telnet."));
    assert!(rules[0].run(&BitInput::new(&catalog, port(22, "tcp"))).unwrap().is_empty());
    assert!(rules[0].run(&BitInput::new(&catalog, port(23, "udp"))).unwrap().is_empty());
}

#[test]
fn parameters_require_and_for_each() {
    let text = r#"
[[rule]]
id = "nxdomain-in-header"
consumes = "Hostname"
parameters = [{ type = "NXDOMAIN", path = "hostname" }, { type = "HTTPHeaderHostname", path = "hostname" }]
for_each = "HTTPHeaderHostname"
require = [{ type = "NXDOMAIN" }]

[[rule.emit]]
object_type = "Finding"
finding_type = "KATFindingType|KAT-NXDOMAIN-HEADER"
ooi = "{param}"
description = "{source.name} does not exist"
"#;
    let catalog = Catalog::builtin();
    let rule = load_str(Path::new("x.toml"), text, &catalog).unwrap().remove(0);
    let o = |j| catalog.ooi_from_json(&j).unwrap();
    let host = o(json!({"object_type": "Hostname", "network": "Network|internet", "name": "gone.example"}));
    let header = o(
        json!({"object_type": "HTTPHeaderHostname", "header": "HTTPHeader|internet|192.0.2.1|tcp|443|https|internet|example.com|https|internet|example.com|443|/|content-security-policy", "hostname": "Hostname|internet|gone.example"}),
    );
    let nx = o(json!({"object_type": "NXDOMAIN", "hostname": "Hostname|internet|gone.example"}));
    let mut input = BitInput::new(&catalog, host);
    input.parameters = vec![header.clone()];
    assert!(rule.run(&input).unwrap().is_empty(), "required NXDOMAIN missing");
    input.parameters = vec![header.clone(), nx];
    let out = rule.run(&input).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get("ooi").and_then(|v| v.as_reference()), Some(header.primary_key()));
    assert_eq!(out[0].get("description").and_then(|d| d.as_str()), Some("gone.example does not exist"));
}

#[test]
fn a_user_rule_runs_in_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("telnet.toml"), TELNET).unwrap();
    std::fs::write(rules_dir.join("notes.txt"), "not a rule").unwrap();
    let catalog = Catalog::builtin();
    let mut bits = octo_bits::builtin::all();
    bits.extend(load_dir(&rules_dir, &catalog).unwrap());
    let engine = Arc::new(BitEngine::new(catalog.clone(), bits, BitSwitches::default()).unwrap());
    let store =
        RedbStore::open(&dir.path().join("g.redb"), &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() })
            .unwrap();
    let g = Graph::new(Arc::new(store), catalog.clone()).with_inferrer(engine);
    let declare = |j| {
        let ooi = catalog.ooi_from_json(&j).unwrap();
        g.save_declaration(Declaration { ooi, method: None, task_id: None, valid_time: None, end_valid_time: None })
            .unwrap();
    };
    declare(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.5"}));
    declare(
        json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.5", "protocol": "tcp", "port": 2323}),
    );
    let finding = Reference::from_trusted("Finding|IPPort|internet|192.0.2.5|tcp|2323|KAT-OPEN-TELNET");
    assert!(g.get(&finding, AsOf::valid(Timestamp::now())).is_ok());
    g.delete_object(&Reference::from_trusted("IPPort|internet|192.0.2.5|tcp|2323"), None).unwrap();
    assert!(g.get(&finding, AsOf::valid(Timestamp::now())).is_err());
}

#[test]
fn the_built_in_rule_files_load() {
    for (name, text) in octo_bits::rules::BUILTIN_RULES {
        assert!(!load_str(Path::new(name), text, &Catalog::builtin()).unwrap().is_empty(), "{name}");
    }
}
