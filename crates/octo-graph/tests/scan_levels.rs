//! Scan levels: declared, inherited by max–min over reference caps, maintained incrementally.

mod common;

use common::{graph, ooi};

use octo_graph::{Declaration, Graph};
use octo_model::Ooi;
use octo_store::AsOf;
use proptest::prelude::*;
use serde_json::json;

fn ip(n: u8) -> Ooi {
    ooi(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": format!("192.0.2.{n}")}))
}
fn port(n: u8, p: u16) -> Ooi {
    ooi(
        json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|192.0.2.{n}"), "protocol": "tcp", "port": p}),
    )
}
fn host(name: &str) -> Ooi {
    ooi(json!({"object_type": "Hostname", "network": "Network|internet", "name": name}))
}
fn resolved(name: &str, n: u8) -> Ooi {
    ooi(
        json!({"object_type": "ResolvedHostname", "hostname": format!("Hostname|internet|{name}"), "address": format!("IPAddressV4|internet|192.0.2.{n}")}),
    )
}
fn ipservice(n: u8, p: u16, svc: &str) -> Ooi {
    ooi(
        json!({"object_type": "IPService", "ip_port": format!("IPPort|internet|192.0.2.{n}|tcp|{p}"), "service": format!("Service|{svc}")}),
    )
}
fn service(name: &str) -> Ooi {
    ooi(json!({"object_type": "Service", "name": name}))
}

fn declare(g: &Graph, o: &Ooi) {
    g.save_declaration(Declaration {
        ooi: o.clone(),
        method: None,
        task_id: None,
        valid_time: None,
        end_valid_time: None,
    })
    .unwrap();
}

fn level(g: &Graph, o: &Ooi) -> (u8, String) {
    let p = g.scan_profile(o.primary_key(), AsOf::now()).unwrap();
    (p.level, p.scan_profile_type)
}

fn set(g: &Graph, o: &Ooi, l: Option<u8>) {
    g.set_scan_profile(o.primary_key(), l, None, None).unwrap();
}

fn assert_consistent(g: &Graph) {
    let fix = g.recalculate_scan_profiles(None).unwrap();
    assert!(fix.events.is_empty(), "incremental levels differ from a full recalculation");
}

#[test]
fn levels_flow_along_capped_references() {
    let (_d, g) = graph();
    for o in [
        ip(1),
        port(1, 22),
        port(1, 443),
        service("https"),
        ipservice(1, 443, "https"),
        host("a.example"),
        resolved("a.example", 1),
    ] {
        declare(&g, &o);
    }
    assert_eq!(level(&g, &port(1, 22)), (0, "empty".into()));
    // An address at L2: its ports inherit 2 (IPPort.address passes up to 4 back to the port),
    // the service on a port too; the Service itself gets at most 1 (IPService.service issues 1).
    set(&g, &ip(1), Some(2));
    assert_eq!(level(&g, &ip(1)), (2, "declared".into()));
    assert_eq!(level(&g, &port(1, 22)), (2, "inherited".into()));
    assert_eq!(level(&g, &ipservice(1, 443, "https")), (2, "inherited".into()));
    assert_eq!(level(&g, &service("https")).0, 1);
    // The ResolvedHostname inherits nothing from the address (its `address` passes 0 back), and
    // the hostname nothing.
    assert_eq!(level(&g, &resolved("a.example", 1)).0, 0);
    assert_eq!(level(&g, &host("a.example")).0, 0);
    // A hostname at L3 reaches the address through the ResolvedHostname (hostname→RH up to 4,
    // RH→address issues up to 4), but the address is declared: it keeps 2 and relays only 2.
    set(&g, &host("a.example"), Some(3));
    assert_eq!(level(&g, &resolved("a.example", 1)).0, 3);
    assert_eq!(level(&g, &ip(1)), (2, "declared".into()));
    assert_eq!(level(&g, &port(1, 22)).0, 2);
    // Withdraw the address's declaration: it inherits 3 from the hostname, and so do its ports.
    set(&g, &ip(1), None);
    assert_eq!(level(&g, &ip(1)), (3, "inherited".into()));
    assert_eq!(level(&g, &port(1, 443)).0, 3);
    assert_consistent(&g);
    // Lower the hostname: everything below follows.
    set(&g, &host("a.example"), Some(1));
    assert_eq!(level(&g, &port(1, 443)).0, 1);
    assert_eq!(level(&g, &service("https")).0, 1);
    set(&g, &host("a.example"), Some(0));
    assert_eq!(level(&g, &port(1, 443)).0, 0);
    assert_eq!(level(&g, &service("https")), (0, "empty".into()));
    assert_consistent(&g);
}

#[test]
fn max_over_sources_and_deletion_lowers() {
    let (_d, g) = graph();
    for o in [ip(1), ip(2), port(1, 80), host("b.example"), resolved("b.example", 1)] {
        declare(&g, &o);
    }
    set(&g, &ip(1), None);
    set(&g, &host("b.example"), Some(2));
    assert_eq!(level(&g, &port(1, 80)).0, 2);
    // A new object is born with its inherited level.
    declare(&g, &port(1, 8080));
    assert_eq!(level(&g, &port(1, 8080)).0, 2);
    // Deleting the bridge drops what came through it.
    g.delete_object(resolved("b.example", 1).primary_key(), None).unwrap();
    assert_eq!(level(&g, &ip(1)).0, 0);
    assert_eq!(level(&g, &port(1, 80)).0, 0);
    assert_consistent(&g);
}

#[test]
fn inheritance_explains_the_level() {
    let (_d, g) = graph();
    for o in
        [ip(1), port(1, 443), service("https"), ipservice(1, 443, "https"), host("c.example"), resolved("c.example", 1)]
    {
        declare(&g, &o);
    }
    set(&g, &host("c.example"), Some(3));
    let path = g.inheritance(ipservice(1, 443, "https").primary_key(), None).unwrap();
    let refs: Vec<&str> = path.iter().map(|s| s.reference.as_str()).collect();
    assert_eq!(
        refs,
        [
            "IPService|internet|192.0.2.1|tcp|443|https",
            "IPPort|internet|192.0.2.1|tcp|443",
            "IPAddressV4|internet|192.0.2.1",
            "ResolvedHostname|internet|c.example|internet|192.0.2.1",
            "Hostname|internet|c.example",
        ]
    );
    assert!(path.last().unwrap().declared && path.iter().all(|s| s.level == 3));
    let declared = g.inheritance(host("c.example").primary_key(), None).unwrap();
    assert_eq!(declared.len(), 1);
    assert!(g.set_scan_profile(host("c.example").primary_key(), Some(5), None, None).is_err());
    let got = g.get(port(1, 443).primary_key(), AsOf::now()).unwrap();
    assert_eq!(got.scan_profile.unwrap().level, 3);
}

#[derive(Debug, Clone)]
enum Op {
    Declare(u8),
    Delete(u8),
    Level(u8, Option<u8>),
}

fn universe() -> Vec<Ooi> {
    vec![
        ip(1),
        ip(2),
        ip(3),
        port(1, 22),
        port(1, 80),
        port(2, 80),
        port(3, 443),
        host("a.example"),
        host("b.example"),
        resolved("a.example", 1),
        resolved("a.example", 2),
        resolved("b.example", 3),
        resolved("b.example", 1),
        service("http"),
        service("ssh"),
        ipservice(1, 80, "http"),
        ipservice(2, 80, "http"),
        ipservice(1, 22, "ssh"),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let n = universe().len() as u8;
    prop_oneof![
        3 => (0..n).prop_map(Op::Declare),
        1 => (0..n).prop_map(Op::Delete),
        3 => (0..n, proptest::option::of(0u8..=4)).prop_map(|(i, l)| Op::Level(i, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn incremental_levels_equal_full_recalculation(ops in proptest::collection::vec(op(), 1..40)) {
        let (_d, g) = graph();
        let all = universe();
        for op in ops {
            match op {
                Op::Declare(i) => declare(&g, &all[i as usize]),
                Op::Delete(i) => { let _ = g.delete_object(all[i as usize].primary_key(), None); }
                Op::Level(i, l) => { let _ = g.set_scan_profile(all[i as usize].primary_key(), l, None, None); }
            }
            let fix = g.recalculate_scan_profiles(None).unwrap();
            prop_assert!(fix.events.is_empty(), "after {:?}: full recalculation changed {:?}", op, fix);
        }
    }
}

#[test]
fn many_levels_in_one_transaction_or_none() {
    let (_d, g) = graph();
    let (a, b) = (ip(1), ip(2));
    declare(&g, &a);
    declare(&g, &b);
    declare(&g, &port(2, 22));
    let out = g
        .set_scan_profiles(&[(a.primary_key().clone(), Some(2)), (b.primary_key().clone(), Some(3))], None, None)
        .unwrap();
    assert!(out.tx.is_some());
    assert_eq!(level(&g, &a).0, 2);
    assert_eq!(level(&g, &port(2, 22)), (3, "inherited".to_owned()));
    // One missing object refuses them all.
    let missing = ip(9).primary_key().clone();
    assert!(g.set_scan_profiles(&[(a.primary_key().clone(), Some(4)), (missing, Some(1))], None, None).is_err());
    assert_eq!(level(&g, &a).0, 2);
    assert!(g.set_scan_profiles(&[(a.primary_key().clone(), Some(5))], None, None).is_err());
    assert_consistent(&g);
}
