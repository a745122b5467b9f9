//! The engine inside the graph: what re-runs when inputs change, chains, termination, levels,
//! configs, switches, time travel, and incremental == full recalculation.

use std::sync::Arc;

use octo_bits::{builtin, Bit, BitDefinition, BitEngine, BitInput, BitResult, BitSwitches, FnBit};
use octo_graph::{Declaration, Graph, GraphError};
use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, RedbStore, StoreOptions, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

fn graph_with(bits: Vec<Arc<dyn Bit>>, defaults: BitSwitches) -> (tempfile::TempDir, Graph, Arc<BitEngine>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        RedbStore::open(&dir.path().join("g.redb"), &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() })
            .unwrap();
    let catalog = Catalog::builtin();
    let engine = Arc::new(BitEngine::new(catalog.clone(), bits, defaults).unwrap());
    let graph = Graph::new(Arc::new(store), catalog).with_inferrer(engine.clone());
    (dir, graph, engine)
}

fn graph() -> (tempfile::TempDir, Graph, Arc<BitEngine>) {
    graph_with(builtin::all(), BitSwitches::default())
}

fn ooi(doc: Value) -> Ooi {
    Catalog::builtin().ooi_from_json(&doc).unwrap()
}

fn declare(g: &Graph, doc: Value) -> Reference {
    let o = ooi(doc);
    let r = o.primary_key().clone();
    g.save_declaration(Declaration { ooi: o, method: None, task_id: None, valid_time: None, end_valid_time: None })
        .unwrap();
    r
}

fn now() -> AsOf {
    AsOf::valid(Timestamp::now())
}

fn exists(g: &Graph, key: &str) -> bool {
    g.get(&Reference::from_trusted(key), now()).is_ok()
}

fn hostname(name: &str) -> Value {
    json!({"object_type": "Hostname", "network": "Network|internet", "name": name})
}

fn ip(address: &str) -> Value {
    json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": address})
}

fn a_record(name: &str, address: &str) -> Value {
    json!({"object_type": "DNSARecord", "hostname": format!("Hostname|internet|{name}"),
           "address": format!("IPAddressV4|internet|{address}"), "value": address})
}

fn port(address: &str, p: u16) -> Value {
    json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|{address}"), "protocol": "tcp", "port": p})
}

fn service(address: &str, p: u16, name: &str) -> Value {
    json!({"object_type": "IPService", "ip_port": format!("IPPort|internet|{address}|tcp|{p}"), "service": format!("Service|{name}")})
}

#[test]
fn bits_chain_and_results_go_with_their_inputs() {
    let (_d, g, _) = graph();
    declare(&g, hostname("example.com"));
    declare(&g, ip("192.0.2.1"));
    declare(&g, port("192.0.2.1", 443));
    declare(&g, json!({"object_type": "Service", "name": "https"}));
    declare(&g, service("192.0.2.1", 443, "https"));
    assert!(!exists(&g, "Website|internet|192.0.2.1|tcp|443|https|internet|example.com"));
    // One declaration: dns-resolving derives the resolution, which website-discovery consumes
    // as a parameter, which url-discovery also reads, which url-classification splits.
    let a = declare(&g, a_record("example.com", "192.0.2.1"));
    assert!(exists(&g, "ResolvedHostname|internet|example.com|internet|192.0.2.1"));
    assert!(exists(&g, "Website|internet|192.0.2.1|tcp|443|https|internet|example.com"));
    assert!(exists(&g, "URL|internet|https://example.com/"));
    assert!(exists(&g, "HostnameHTTPURL|https|internet|example.com|443|/"));
    assert!(exists(
        &g,
        "HTTPResource|internet|192.0.2.1|tcp|443|https|internet|example.com|https|internet|example.com|443|/"
    ));
    let origins = g
        .origins(&Reference::from_trusted("Website|internet|192.0.2.1|tcp|443|https|internet|example.com"), now())
        .unwrap();
    assert!(origins
        .iter()
        .any(|o| o.method == "website-discovery" && o.source.as_str() == "IPAddressV4|internet|192.0.2.1"));
    // Withdrawing the A record takes the whole chain with it, in the same transaction.
    g.delete_object(&a, None).unwrap();
    assert!(!exists(&g, "ResolvedHostname|internet|example.com|internet|192.0.2.1"));
    assert!(!exists(&g, "Website|internet|192.0.2.1|tcp|443|https|internet|example.com"));
    assert!(!exists(&g, "URL|internet|https://example.com/"));
    assert!(!exists(&g, "HostnameHTTPURL|https|internet|example.com|443|/"));
    assert!(exists(&g, "IPPort|internet|192.0.2.1|tcp|443"));
    assert_eq!(g.recalculate_bits(None).unwrap().events, vec![]);
}

#[test]
fn a_bit_that_feeds_itself_terminates() {
    let (_d, g, _) = graph();
    // url-classification yields its own source (with web_url set): the second run yields the
    // same and writes nothing, so the transaction settles.
    let url = declare(&g, json!({"object_type": "URL", "network": "Network|internet", "raw": "https://example.org/x"}));
    let stored = g.get(&url, now()).unwrap();
    assert_eq!(
        stored.get("web_url").and_then(|v| v.as_reference()).map(|r| r.as_str()),
        Some("HostnameHTTPURL|https|internet|example.org|443|/x")
    );
    // default-findingtype-risk rates the finding types bits create, then stops.
    declare(&g, hostname("example.org"));
    declare(&g, json!({"object_type": "NXDOMAIN", "hostname": "Hostname|internet|example.org"}));
    g.set_scan_profile(&Reference::from_trusted("Hostname|internet|example.org"), Some(1), None, None).unwrap();
    let ft = g.get(&Reference::from_trusted("KATFindingType|KAT-NXDOMAIN"), now()).unwrap();
    assert_eq!(ft.get("risk_severity").and_then(|v| v.as_str()), Some("pending"));
    assert_eq!(g.recalculate_bits(None).unwrap().events, vec![]);
}

/// A rule that never settles: each run bumps a counter on its own source.
fn restless(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let n = i.source.get("ttl").and_then(|v| v.as_int()).unwrap_or(0);
    let mut doc = i.source.to_json();
    doc["ttl"] = json!(n + 1);
    Ok(vec![i.catalog.ooi_from_json(&doc)?])
}

#[test]
fn a_rule_set_that_never_settles_is_refused_not_spun() {
    let bit: Arc<dyn Bit> = Arc::new(FnBit::new(BitDefinition::new("restless", "DNSARecord").min_level(0), restless));
    let (_d, g, _) = graph_with(vec![bit], BitSwitches::default());
    declare(&g, hostname("example.com"));
    declare(&g, ip("192.0.2.1"));
    let err = g
        .save_declaration(Declaration {
            ooi: ooi(a_record("example.com", "192.0.2.1")),
            method: None,
            task_id: None,
            valid_time: None,
            end_valid_time: None,
        })
        .unwrap_err();
    assert!(matches!(err, GraphError::Invalid(ref m) if m.contains("did not settle")), "{err}");
    // Refused whole: nothing of it was stored.
    assert!(!exists(&g, "DNSARecord|internet|example.com|192.0.2.1"));
}

#[test]
fn scan_levels_gate_bits() {
    let (_d, g, _) = graph();
    let h = declare(&g, hostname("gone.example"));
    declare(&g, json!({"object_type": "NXDOMAIN", "hostname": h.as_str()}));
    let finding = "Finding|Hostname|internet|gone.example|KAT-NXDOMAIN";
    assert!(!exists(&g, finding), "level 0 is below nxdomain-flag's minimum");
    g.set_scan_profile(&h, Some(1), None, None).unwrap();
    assert!(exists(&g, finding));
    g.set_scan_profile(&h, Some(0), None, None).unwrap();
    assert!(!exists(&g, finding));
}

#[test]
fn configs_re_run_the_bits_they_configure() {
    let (_d, g, _) = graph();
    declare(&g, json!({"object_type": "Network", "name": "internet"}));
    let address = declare(&g, ip("192.0.2.7"));
    g.set_scan_profile(&address, Some(2), None, None).unwrap();
    declare(&g, port("192.0.2.7", 8080));
    let finding = "Finding|IPPort|internet|192.0.2.7|tcp|8080|KAT-UNCOMMON-OPEN-PORT";
    assert!(exists(&g, finding));
    let config = declare(
        &g,
        json!({"object_type": "Config", "ooi": "Network|internet", "bit_id": "port-classification-ip",
               "config": {"common_tcp_ports": "80,443,8080"}}),
    );
    assert!(!exists(&g, finding), "8080 is declared common now");
    g.delete_object(&config, None).unwrap();
    assert!(exists(&g, finding), "back to the defaults");
}

#[test]
fn switches_per_organisation_and_defaults() {
    let (_d, g, engine) = graph();
    let address = declare(&g, ip("192.0.2.8"));
    g.set_scan_profile(&address, Some(1), None, None).unwrap();
    declare(&g, port("192.0.2.8", 443));
    let common = "Finding|IPPort|internet|192.0.2.8|tcp|443|KAT-OPEN-COMMON-PORT";
    assert!(!exists(&g, common), "port-common is off by default");
    engine.reset_run_stats();
    engine.switch(&g, "port-common", Some(true), None).unwrap();
    assert!(exists(&g, common));
    let ran: Vec<String> = engine.run_stats().into_iter().filter(|s| s.runs > 0).map(|s| s.id).collect();
    assert!(ran.contains(&"port-common".to_owned()));
    assert!(!ran.contains(&"port-classification-ip".to_owned()), "switching one bit re-runs that bit: {ran:?}");
    engine.switch(&g, "port-common", None, None).unwrap();
    assert!(!exists(&g, common));
    declare(&g, port("192.0.2.8", 22));
    let sysadmin = "Finding|IPPort|internet|192.0.2.8|tcp|22|KAT-OPEN-SYSADMIN-PORT";
    assert!(exists(&g, sysadmin));
    engine.switch(&g, "port-classification-ip", Some(false), None).unwrap();
    assert!(!exists(&g, sysadmin));
    assert!(matches!(engine.switch(&g, "no-such-bit", Some(true), None), Err(GraphError::NotFound(_))));
    let status = engine.status(&g, now()).unwrap();
    assert!(status.contains(&("port-classification-ip".to_owned(), false)));

    // The config file's defaults, overridden by the organisation.
    let defaults = BitSwitches { enabled: ["port-common".to_owned()].into(), disabled: Default::default() };
    let (_d2, g2, engine2) = graph_with(builtin::all(), defaults);
    let address = declare(&g2, ip("192.0.2.9"));
    g2.set_scan_profile(&address, Some(1), None, None).unwrap();
    declare(&g2, port("192.0.2.9", 443));
    assert!(exists(&g2, "Finding|IPPort|internet|192.0.2.9|tcp|443|KAT-OPEN-COMMON-PORT"));
    engine2.switch(&g2, "port-common", Some(false), None).unwrap();
    assert!(!exists(&g2, "Finding|IPPort|internet|192.0.2.9|tcp|443|KAT-OPEN-COMMON-PORT"));
}

#[test]
fn inferences_have_valid_time() {
    let (_d, g, _) = graph();
    declare(&g, hostname("example.net"));
    declare(&g, ip("192.0.2.2"));
    let before = Timestamp::now();
    let a = declare(&g, a_record("example.net", "192.0.2.2"));
    let after = Timestamp::now();
    g.delete_object(&a, None).unwrap();
    let resolved = Reference::from_trusted("ResolvedHostname|internet|example.net|internet|192.0.2.2");
    assert!(g.get(&resolved, AsOf::valid(before)).is_err());
    assert!(g.get(&resolved, AsOf::valid(after)).is_ok());
    assert!(g.get(&resolved, now()).is_err());
}

#[test]
fn dry_run_shows_inputs_without_saving() {
    let (_d, g, engine) = graph();
    let address = declare(&g, ip("192.0.2.3"));
    declare(&g, port("192.0.2.3", 3306));
    g.set_scan_profile(&address, Some(1), None, None).unwrap();
    g.delete_object(
        &Reference::from_trusted("Finding|IPPort|internet|192.0.2.3|tcp|3306|KAT-OPEN-DATABASE-PORT"),
        None,
    )
    .unwrap();
    let run = engine.dry_run(&g, "port-classification-ip", &address, now()).unwrap();
    assert_eq!(run.parameters.len(), 1);
    assert_eq!(run.results.len(), 2);
    assert!(run.enabled);
    assert!(
        !exists(&g, "Finding|IPPort|internet|192.0.2.3|tcp|3306|KAT-OPEN-DATABASE-PORT"),
        "a dry run saves nothing"
    );
    assert!(matches!(engine.dry_run(&g, "nope", &address, now()), Err(GraphError::NotFound(_))));
    let missing = Reference::from_trusted("IPAddressV4|internet|203.0.113.1");
    assert!(matches!(engine.dry_run(&g, "port-classification-ip", &missing, now()), Err(GraphError::NotFound(_))));
}

/// One step of a random history over a small universe of names, addresses and ports.
#[derive(Debug, Clone)]
enum Step {
    Declare(usize),
    Delete(usize),
    Level(usize, u8),
    Config(bool),
}

/// The universe: objects whose combinations exercise parameters, chains, levels and configs.
fn universe() -> Vec<Value> {
    vec![
        hostname("a.example"),
        hostname("b.example"),
        ip("192.0.2.1"),
        ip("192.0.2.2"),
        a_record("a.example", "192.0.2.1"),
        a_record("b.example", "192.0.2.1"),
        a_record("a.example", "192.0.2.2"),
        port("192.0.2.1", 80),
        port("192.0.2.1", 443),
        port("192.0.2.2", 22),
        port("192.0.2.2", 8080),
        json!({"object_type": "Service", "name": "https"}),
        json!({"object_type": "Service", "name": "http"}),
        service("192.0.2.1", 443, "https"),
        service("192.0.2.1", 80, "http"),
        json!({"object_type": "NXDOMAIN", "hostname": "Hostname|internet|b.example"}),
        json!({"object_type": "Network", "name": "internet"}),
        // A header on the resource the bits derive for a.example, and a config for the bit that
        // judges it, which reaches the header through objects that may arrive later.
        json!({"object_type": "HTTPHeader", "key": "Strict-Transport-Security", "value": "max-age=300; includeSubDomains",
               "resource": "HTTPResource|internet|192.0.2.1|tcp|443|https|internet|a.example|https|internet|a.example|443|/"}),
        json!({"object_type": "Config", "ooi": "Network|internet", "bit_id": "check-hsts-header", "config": {"max-age": "100"}}),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let n = universe().len();
    prop_oneof![
        4 => (0..n).prop_map(Step::Declare),
        2 => (0..n).prop_map(Step::Delete),
        2 => prop_oneof![0..4usize, Just(17usize)].prop_flat_map(|i| (Just(i), 0..3u8)).prop_map(|(i, l)| Step::Level(i, l)),
        1 => any::<bool>().prop_map(Step::Config),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever happened, a full recalculation finds nothing to change: incremental inference
    /// kept the graph exactly where recalculating everything puts it.
    #[test]
    fn incremental_equals_recalculation(
        initial in proptest::sample::subsequence((0..universe().len()).collect::<Vec<_>>(), 0..=universe().len()).prop_shuffle(),
        steps in proptest::collection::vec(step(), 1..14),
    ) {
        let (_d, g, _) = graph();
        let all = universe();
        // A random part of the universe first, in random order (so objects may arrive before
        // what they reference), then random changes to it.
        let start = initial.into_iter().map(Step::Declare);
        for s in start.chain(steps) {
            match s {
                Step::Declare(i) => {
                    let o = ooi(all[i].clone());
                    // References to objects not there yet are allowed; the graph keeps them.
                    g.save_declaration(Declaration { ooi: o, method: None, task_id: None, valid_time: None, end_valid_time: None }).unwrap();
                }
                Step::Delete(i) => {
                    let r = ooi(all[i].clone()).primary_key().clone();
                    match g.delete_object(&r, None) {
                        Ok(_) | Err(GraphError::NotFound(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                Step::Level(i, l) => {
                    let r = ooi(all[i].clone()).primary_key().clone();
                    match g.set_scan_profile(&r, Some(l), None, None) {
                        Ok(_) | Err(GraphError::NotFound(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                Step::Config(on) => {
                    let config = ooi(json!({"object_type": "Config", "ooi": "Network|internet", "bit_id": "port-classification-ip",
                        "config": {"common_tcp_ports": "80,443,8080", "aggregate_findings": if on { "true" } else { "false" }}}));
                    g.save_declaration(Declaration { ooi: config, method: None, task_id: None, valid_time: None, end_valid_time: None }).unwrap();
                }
            }
        }
        let outcome = g.recalculate_bits(None).unwrap();
        prop_assert!(outcome.events.is_empty(), "recalculation changed {:?} / created {:?} / deleted {:?}", outcome.updated, outcome.created, outcome.deleted);
    }
}

/// Objects that arrive after what refers to them: a header and the config for the bit that
/// judges it come first, the website they hang on last. The config must still reach the
/// header once the path to it exists.
#[test]
fn configs_reach_objects_whose_path_completes_later() {
    let (_d, g, _) = graph();
    let all = universe();
    let header = ooi(all[17].clone()).primary_key().clone();
    let finding = format!("Finding|{header}|KAT-HSTS-VULNERABILITIES");
    declare(&g, all[16].clone()); // the network
    declare(&g, all[18].clone()); // the config: max-age 100 is enough
    declare(&g, all[17].clone()); // the header, max-age 300
    g.set_scan_profile(&header, Some(1), None, None).unwrap();
    assert!(exists(&g, &finding), "no path to a config yet: the default applies");
    for i in [0, 2, 4, 7, 8, 11, 12, 13, 14] {
        declare(&g, all[i].clone());
    }
    g.set_scan_profile(&Reference::from_trusted("Hostname|internet|a.example"), Some(2), None, None).unwrap();
    assert!(exists(
        &g,
        "HTTPResource|internet|192.0.2.1|tcp|443|https|internet|a.example|https|internet|a.example|443|/"
    ));
    assert!(!exists(&g, &finding), "the config applies once the header's path to the network exists");
    assert_eq!(g.recalculate_bits(None).unwrap().events, vec![]);
    // Without the config, the default (a year) applies.
    g.delete_object(&ooi(all[18].clone()).primary_key().clone(), None).unwrap();
    assert!(exists(&g, &finding));
}
