//! Origins and garbage collection: every outcome stated as a test.

use std::sync::Arc;

use octo_graph::{Affirmation, Declaration, Graph, GraphError, Inference, Observation};
use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, EventPosition, RedbStore, StoreOptions, Timestamp};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    graph: Graph,
}

fn graph() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        RedbStore::open(&dir.path().join("g.redb"), &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() })
            .unwrap();
    Fixture { _dir: dir, graph: Graph::new(Arc::new(store), Catalog::builtin()) }
}

fn net(name: &str) -> Ooi {
    Catalog::builtin().ooi_from_json(&json!({"object_type": "Network", "name": name})).unwrap()
}

fn ip(addr: &str) -> Ooi {
    Catalog::builtin()
        .ooi_from_json(&json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": addr}))
        .unwrap()
}

fn port(addr: &str, port: u16) -> Ooi {
    Catalog::builtin()
        .ooi_from_json(&json!({"object_type": "IPPort", "address": format!("IPAddressV4|internet|{addr}"), "protocol": "tcp", "port": port}))
        .unwrap()
}

fn r(s: &str) -> Reference {
    Reference::from_trusted(s)
}

fn declare(g: &Graph, ooi: Ooi) {
    g.save_declaration(Declaration { ooi, method: None, task_id: None, valid_time: None, end_valid_time: None })
        .unwrap();
}

fn observe(g: &Graph, method: &str, source: &Ooi, result: Vec<Ooi>) -> octo_graph::Outcome {
    g.save_observation(Observation {
        method: method.into(),
        source: source.primary_key().clone(),
        source_method: None,
        result,
        task_id: None,
        valid_time: None,
    })
    .unwrap()
}

fn infer(g: &Graph, bit: &str, source: &Ooi, result: Vec<Ooi>) -> octo_graph::Outcome {
    g.save_inference(Inference { method: bit.into(), source: source.primary_key().clone(), result, valid_time: None })
        .unwrap()
}

fn exists(g: &Graph, o: &Ooi) -> bool {
    match g.get(o.primary_key(), AsOf::now()) {
        Ok(_) => true,
        Err(GraphError::NotFound(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_origin_scenarios() {
    let f = graph();
    let g = &f.graph;
    let (a, b, c, d) = (net("internet"), ip("192.0.2.1"), ip("192.0.2.2"), port("192.0.2.1", 22));

    // Declaration: A exists because a user says so.
    declare(g, a.clone());
    assert!(exists(g, &a));
    let origins = g.origins(a.primary_key(), AsOf::now()).unwrap();
    assert_eq!(origins.len(), 1);
    assert_eq!(origins[0].id(), "Origin|declaration|manual|Network|internet");

    // Observation: looking at A, a normalizer saw B and C.
    let out = observe(g, "normalizer-1", &a, vec![b.clone(), c.clone()]);
    assert_eq!(out.created, [b.primary_key().clone(), c.primary_key().clone()]);
    // Inference: a bit derived D from B.
    infer(g, "bit-x", &b, vec![d.clone()]);
    assert!(exists(g, &d));

    // C is also seen by a second observation.
    observe(g, "normalizer-2", &a, vec![c.clone()]);
    // The first observation no longer sees C: the second keeps it alive.
    let out = observe(g, "normalizer-1", &a, vec![b.clone()]);
    assert!(out.deleted.is_empty());
    assert!(exists(g, &c));
    // The last origin drops C: C is deleted, and the empty origin with it.
    let out = observe(g, "normalizer-2", &a, vec![]);
    assert_eq!(out.deleted, [c.primary_key().clone()]);
    assert!(!exists(g, &c));
    assert!(g.origin("Origin|observation|normalizer-2|Network|internet", AsOf::now()).unwrap().is_none());

    // Dropping B cascades: the inference sourced on B goes, and D with it.
    let out = observe(g, "normalizer-1", &a, vec![]);
    assert_eq!(out.deleted, [b.primary_key().clone(), d.primary_key().clone()]);
    assert!(g.origin("Origin|inference|bit-x|IPAddressV4|internet|192.0.2.1", AsOf::now()).unwrap().is_none());
    assert!(exists(g, &a));
}

#[test]
fn observations_of_missing_sources_are_refused() {
    let f = graph();
    let g = &f.graph;
    let err = g
        .save_observation(Observation {
            method: "n".into(),
            source: r("Network|nowhere"),
            source_method: None,
            result: vec![ip("192.0.2.1")],
            task_id: None,
            valid_time: None,
        })
        .unwrap_err();
    assert!(matches!(&err, GraphError::Invalid(m) if m.contains("does not exist")), "{err}");
    assert_eq!(err.status(), 400);
    assert!(!exists(g, &ip("192.0.2.1")));
    // An observation may create its own source.
    let n = net("lab");
    observe(g, "n", &n, vec![n.clone()]);
    assert!(exists(g, &n));
    assert!(g.store().snapshot().unwrap().events(EventPosition::Start, 100).unwrap().len() == 2);
}

#[test]
fn cycles_of_inferences_do_not_keep_themselves_alive() {
    let f = graph();
    let g = &f.graph;
    let (a, b, c) = (net("internet"), ip("192.0.2.1"), ip("192.0.2.2"));
    declare(g, a.clone());
    observe(g, "n", &a, vec![b.clone()]);
    infer(g, "bit-1", &b, vec![c.clone()]);
    infer(g, "bit-2", &c, vec![b.clone()]);
    // B holds C and C holds B; only the observation holds the pair from outside.
    let out = observe(g, "n", &a, vec![]);
    assert!(!exists(g, &b) && !exists(g, &c), "deleted: {:?}", out.deleted);
    assert_eq!(out.deleted.len(), 2);
    // With an outside holder the cycle stays.
    observe(g, "n", &a, vec![b.clone()]);
    infer(g, "bit-1", &b, vec![c.clone()]);
    infer(g, "bit-2", &c, vec![b.clone()]);
    declare(g, c.clone());
    observe(g, "n", &a, vec![]);
    assert!(exists(g, &b) && exists(g, &c));
}

#[test]
fn self_inference_and_affirmations_do_not_keep_objects_alive() {
    let f = graph();
    let g = &f.graph;
    let a = net("internet");
    let b = ip("192.0.2.1");
    declare(g, a.clone());
    observe(g, "n", &a, vec![b.clone()]);
    infer(g, "self", &b, vec![b.clone()]);
    let affirmed = Catalog::builtin()
        .ooi_from_json(&json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1", "netblock": "IPV4NetBlock|internet|internet|192.0.2.0|24"}))
        .unwrap();
    g.save_affirmation(Affirmation {
        ooi: affirmed,
        method: "whois".into(),
        source_method: None,
        task_id: None,
        valid_time: None,
    })
    .unwrap();
    // The affirmation added its field.
    let got = g.get(b.primary_key(), AsOf::now()).unwrap();
    assert_eq!(got.get("netblock").and_then(|v| v.as_str()), Some("IPV4NetBlock|internet|internet|192.0.2.0|24"));
    // Only the observation holds B: when it lets go, B goes, with its affirmation and self-inference.
    observe(g, "n", &a, vec![]);
    assert!(!exists(g, &b));
    assert!(g.origins(b.primary_key(), AsOf::now()).unwrap().is_empty());
    // An affirmation of a missing object does nothing.
    let out = g
        .save_affirmation(Affirmation {
            ooi: b.clone(),
            method: "whois".into(),
            source_method: None,
            task_id: None,
            valid_time: None,
        })
        .unwrap();
    assert_eq!(out, octo_graph::Outcome::default());
    assert!(!exists(g, &b));
}

#[test]
fn saving_merges_and_writes_nothing_when_nothing_changed() {
    let f = graph();
    let g = &f.graph;
    declare(g, net("internet"));
    let with_state = Catalog::builtin()
        .ooi_from_json(&json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 22, "state": "open"}))
        .unwrap();
    declare(g, ip("192.0.2.1"));
    declare(g, with_state.clone());
    // The same object without `state`: the stored state stays, and nothing is written.
    let out = g
        .save_declaration(Declaration {
            ooi: port("192.0.2.1", 22),
            method: None,
            task_id: None,
            valid_time: None,
            end_valid_time: None,
        })
        .unwrap();
    assert_eq!(out.tx, None);
    assert!(out.events.is_empty());
    assert_eq!(
        g.get(with_state.primary_key(), AsOf::now()).unwrap().get("state").and_then(|v| v.as_str()),
        Some("open")
    );
}

#[test]
fn explicit_deletion_cascades_and_time_travel_sees_before() {
    let f = graph();
    let g = &f.graph;
    let (a, b, d) = (net("internet"), ip("192.0.2.1"), port("192.0.2.1", 443));
    declare(g, a.clone());
    observe(g, "n", &a, vec![b.clone()]);
    let before = infer(g, "bit", &b, vec![d.clone()]).tx.unwrap();
    let out = g.delete_object(b.primary_key(), None).unwrap();
    assert_eq!(out.deleted, [b.primary_key().clone(), d.primary_key().clone()]);
    // The observation no longer lists B.
    let obs = g.origin("Origin|observation|n|Network|internet", AsOf::now()).unwrap().unwrap();
    assert!(obs.result.is_empty());
    // As of before the deletion, both existed; as known then, too.
    let then = AsOf::valid(before.tx_time);
    assert!(g.get(b.primary_key(), then).is_ok() && g.get(d.primary_key(), then).is_ok());
    assert!(g.get(d.primary_key(), AsOf::at(Timestamp::now(), before.tx_time)).is_ok());
    assert!(matches!(g.delete_object(b.primary_key(), None), Err(GraphError::NotFound(_))));
    assert!(matches!(g.delete_origin("Origin|observation|nope|Network|internet", None), Err(GraphError::NotFound(_))));
}

#[test]
fn deleting_an_origin_collects_what_only_it_held() {
    let f = graph();
    let g = &f.graph;
    let (a, b) = (net("internet"), ip("192.0.2.1"));
    declare(g, a.clone());
    observe(g, "n", &a, vec![b.clone()]);
    let mut out = g.delete_origin("Origin|declaration|manual|Network|internet", None).unwrap();
    // A is no longer declared: it goes, the observation sourced on it goes, and B with it.
    out.deleted.sort();
    assert_eq!(out.deleted, [b.primary_key().clone(), a.primary_key().clone()]);
}

#[test]
fn declarations_can_end() {
    let f = graph();
    let g = &f.graph;
    let t0 = Timestamp::from_micros(1_767_225_600_000_000);
    let t1 = Timestamp::from_micros(t0.as_micros() + 3_600_000_000);
    g.save_declaration(Declaration {
        ooi: net("temp"),
        method: None,
        task_id: None,
        valid_time: Some(t0),
        end_valid_time: Some(t1),
    })
    .unwrap();
    let key = net("temp").primary_key().clone();
    assert!(g.get(&key, AsOf::valid(Timestamp::from_micros(t0.as_micros() + 1))).is_ok());
    assert!(g.get(&key, AsOf::valid(t1)).is_err());
    assert!(g.origin("Origin|declaration|manual|Network|temp", AsOf::valid(t1)).unwrap().is_none());
}

#[test]
fn every_change_is_an_event_with_patches_that_apply_both_ways() {
    let f = graph();
    let g = &f.graph;
    declare(g, net("internet"));
    declare(g, ip("192.0.2.1"));
    let with_state = Catalog::builtin()
        .ooi_from_json(&json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 22, "state": "open"}))
        .unwrap();
    declare(g, port("192.0.2.1", 22));
    let out = g
        .save_declaration(Declaration {
            ooi: with_state,
            method: None,
            task_id: None,
            valid_time: None,
            end_valid_time: None,
        })
        .unwrap();
    assert_eq!(out.updated.len(), 1);
    let events = g.store().snapshot().unwrap().events(EventPosition::Start, 100).unwrap();
    // Three objects and three declaration origins, then one update.
    assert_eq!(events.len(), 7);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    let last: serde_json::Value = serde_json::from_slice(&events[6].payload).unwrap();
    assert_eq!(last["entity"], "ooi");
    assert_eq!(last["operation"], "update");
    assert_eq!(last["key"], "IPPort|internet|192.0.2.1|tcp|22");
    let (old, new) = (last["old"].clone(), last["new"].clone());
    let mut forward = old.clone();
    json_patch::patch(&mut forward, &serde_json::from_value::<json_patch::Patch>(last["patch"].clone()).unwrap())
        .unwrap();
    assert_eq!(forward, new);
    let mut back = new.clone();
    json_patch::patch(&mut back, &serde_json::from_value::<json_patch::Patch>(last["reverse_patch"].clone()).unwrap())
        .unwrap();
    assert_eq!(back, old);
    let first: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!((first["entity"].as_str(), first["operation"].as_str()), (Some("ooi"), Some("create")));
}
