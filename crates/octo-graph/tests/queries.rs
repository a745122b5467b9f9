//! Queries: list objects, tree, origins, findings.

mod common;

use common::{declare, graph, ooi};
use std::collections::BTreeSet;

use octo_graph::{FindingQuery, Graph, ListOrder, ListQuery, Observation, OriginQuery, OriginType};
use octo_model::Reference;
use octo_store::AsOf;
use serde_json::json;

fn r(s: &str) -> Reference {
    Reference::from_trusted(s)
}

fn surface(g: &Graph) {
    declare(g, ooi(json!({"object_type": "Network", "name": "internet"})));
    declare(g, ooi(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1"})));
    declare(g, ooi(json!({"object_type": "IPAddressV6", "network": "Network|internet", "address": "2001:db8::1"})));
    declare(g, ooi(json!({"object_type": "Hostname", "network": "Network|internet", "name": "a.example"})));
    declare(
        g,
        ooi(
            json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|a.example", "address": "IPAddressV4|internet|192.0.2.1"}),
        ),
    );
    for p in [22, 80, 443] {
        declare(
            g,
            ooi(
                json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": p}),
            ),
        );
    }
}

#[test]
fn list_objects_filters_orders_and_pages() {
    let (_d, g) = graph();
    surface(&g);
    let all = g.list_objects(&ListQuery { limit: 100, ..Default::default() }, AsOf::now()).unwrap();
    assert_eq!(all.count, 8);
    // Every page, in either order, is the matching slice of the whole list with the whole count
    // (ascending pages keep only their own keys while counting the rest).
    let keys = |items: &[octo_model::Ooi]| items.iter().map(|o| o.primary_key().to_string()).collect::<Vec<_>>();
    let whole = keys(&all.items);
    for descending in [false, true] {
        let mut expected = whole.clone();
        if descending {
            expected.reverse();
        }
        for offset in 0..=9 {
            let q = ListQuery { offset, limit: 3, descending, ..Default::default() };
            let page = g.list_objects(&q, AsOf::now()).unwrap();
            assert_eq!(page.count, 8, "offset {offset}");
            let want: Vec<String> = expected.iter().skip(offset).take(3).cloned().collect();
            assert_eq!(keys(&page.items), want, "offset {offset}, descending {descending}");
        }
    }
    let none = g.list_objects(&ListQuery { limit: 0, ..Default::default() }, AsOf::now()).unwrap();
    assert_eq!((none.count, none.items.len()), (8, 0));
    let ips =
        g.list_objects(&ListQuery { types: vec!["IPAddress".into()], ..Default::default() }, AsOf::now()).unwrap();
    assert_eq!(ips.count, 2);
    let page = g
        .list_objects(
            &ListQuery { types: vec!["IPPort".into()], offset: 1, limit: 1, ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(page.count, 3);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].primary_key().as_str(), "IPPort|internet|192.0.2.1|tcp|443");
    let found =
        g.list_objects(&ListQuery { search: Some("A.EXAMPLE".into()), ..Default::default() }, AsOf::now()).unwrap();
    assert_eq!(found.count, 2, "hostname and resolved hostname");

    g.set_scan_profile(&r("Hostname|internet|a.example"), Some(2), None, None).unwrap();
    let l2 = g
        .list_objects(&ListQuery { scan_levels: BTreeSet::from([2]), limit: 100, ..Default::default() }, AsOf::now())
        .unwrap();
    assert_eq!(l2.count, 6, "the hostname, its resolution, the address and three ports");
    let declared = g
        .list_objects(
            &ListQuery { scan_profile_types: BTreeSet::from(["declared".into()]), ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(
        declared.items.iter().map(|o| o.primary_key().as_str()).collect::<Vec<_>>(),
        ["Hostname|internet|a.example"]
    );
    let by_level = g
        .list_objects(
            &ListQuery { order_by: ListOrder::ScanLevel, descending: true, limit: 100, ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(by_level.items[0].scan_profile.as_ref().unwrap().level, 2);
    assert_eq!(by_level.items.last().unwrap().scan_profile.as_ref().unwrap().level, 0);
    assert!(g.list_objects(&ListQuery { types: vec!["Nope".into()], ..Default::default() }, AsOf::now()).is_err());
}

#[test]
fn tree_walks_both_directions_with_octopoes_relation_names() {
    let (_d, g) = graph();
    surface(&g);
    let t = g.tree(&r("IPAddressV4|internet|192.0.2.1"), 1, &[], AsOf::now()).unwrap();
    let names: Vec<&str> = t.root.children.keys().map(String::as_str).collect();
    assert_eq!(names, ["ResolvedHostname_address", "network", "ports"]);
    assert_eq!(t.root.children["ports"].len(), 3);
    assert_eq!(t.store.len(), 6);

    // Depth 2: the network is not traversable, so its hostnames and addresses do not appear;
    // the resolved hostname leads on to the hostname but not back to the address.
    let t = g.tree(&r("IPAddressV4|internet|192.0.2.1"), 2, &[], AsOf::now()).unwrap();
    let network = &t.root.children["network"][0];
    assert!(network.children.is_empty());
    let rh = &t.root.children["ResolvedHostname_address"][0];
    assert_eq!(rh.children.keys().collect::<Vec<_>>(), ["hostname"]);
    assert!(t.store.contains_key(&r("Hostname|internet|a.example")));
    assert!(!t.store.contains_key(&r("IPAddressV6|internet|2001:db8::1")));
    // A type filter keeps only those neighbours.
    let t = g.tree(&r("IPAddressV4|internet|192.0.2.1"), 1, &["IPPort".into()], AsOf::now()).unwrap();
    assert_eq!(t.root.children.keys().collect::<Vec<_>>(), ["ports"]);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["root"]["reference"], "IPAddressV4|internet|192.0.2.1");
    assert_eq!(json["store"]["IPPort|internet|192.0.2.1|tcp|22"]["port"], 22);
    assert!(g.tree(&r("IPAddressV4|internet|192.0.2.99"), 1, &[], AsOf::now()).is_err());
}

#[test]
fn origins_by_filter() {
    let (_d, g) = graph();
    surface(&g);
    g.save_observation(Observation {
        method: "kat_nmap_normalize".into(),
        source: r("IPAddressV4|internet|192.0.2.1"),
        source_method: Some("nmap".into()),
        result: vec![ooi(json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 22}))],
        task_id: Some("task-1".into()),
        valid_time: None,
    })
    .unwrap();
    let by_source = g
        .list_origins(
            &OriginQuery { source: Some(r("IPAddressV4|internet|192.0.2.1")), ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(by_source.len(), 2, "its declaration and the observation");
    let by_result = g
        .list_origins(
            &OriginQuery { result: Some(r("IPPort|internet|192.0.2.1|tcp|22")), ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(by_result.len(), 2);
    let by_task =
        g.list_origins(&OriginQuery { task_id: Some("task-1".into()), ..Default::default() }, AsOf::now()).unwrap();
    assert_eq!(by_task.len(), 1);
    assert_eq!(by_task[0].method, "kat_nmap_normalize");
    let declarations = g
        .list_origins(&OriginQuery { origin_type: Some(OriginType::Declaration), ..Default::default() }, AsOf::now())
        .unwrap();
    assert_eq!(declarations.len(), 8);
}

#[test]
fn findings_by_severity_muted_and_counted() {
    let (_d, g) = graph();
    surface(&g);
    declare(
        &g,
        ooi(
            json!({"object_type": "KATFindingType", "id": "KAT-OPEN-SSH", "risk_severity": "medium", "risk_score": 5.0}),
        ),
    );
    declare(
        &g,
        ooi(
            json!({"object_type": "KATFindingType", "id": "KAT-OPEN-TELNET", "risk_severity": "high", "risk_score": 8.0}),
        ),
    );
    declare(&g, ooi(json!({"object_type": "KATFindingType", "id": "KAT-NO-SEVERITY"})));
    let finding = |port: u16, ft: &str| {
        ooi(
            json!({"object_type": "Finding", "ooi": format!("IPPort|internet|192.0.2.1|tcp|{port}"), "finding_type": format!("KATFindingType|{ft}")}),
        )
    };
    declare(&g, finding(22, "KAT-OPEN-SSH"));
    declare(&g, finding(80, "KAT-OPEN-TELNET"));
    declare(&g, finding(443, "KAT-NO-SEVERITY"));
    declare(&g, finding(443, "KAT-NOT-DECLARED"));
    declare(
        &g,
        ooi(
            json!({"object_type": "MutedFinding", "finding": "Finding|IPPort|internet|192.0.2.1|tcp|80|KAT-OPEN-TELNET", "reason": "accepted"}),
        ),
    );

    let counts = g.count_findings_by_severity(AsOf::now()).unwrap();
    assert_eq!((counts["medium"], counts["high"], counts["unknown"], counts["pending"]), (1, 0, 1, 1));
    let page = g.list_findings(&FindingQuery::default(), AsOf::now()).unwrap();
    assert_eq!(page.count, 3);
    assert_eq!(
        page.items[0].primary_key().as_str(),
        "Finding|IPPort|internet|192.0.2.1|tcp|22|KAT-OPEN-SSH",
        "highest score first"
    );
    let muted = g
        .list_findings(&FindingQuery { exclude_muted: false, only_muted: true, ..Default::default() }, AsOf::now())
        .unwrap();
    assert_eq!(muted.count, 1);
    let high = g
        .list_findings(
            &FindingQuery { severities: BTreeSet::from(["high".into()]), exclude_muted: false, ..Default::default() },
            AsOf::now(),
        )
        .unwrap();
    assert_eq!(high.count, 1);
}

/// A graph in `dir` whose store keeps key lists (1 MiB of them) or keeps none, so that the
/// two ways of answering a list can be compared.
fn with_key_lists(dir: &tempfile::TempDir, keep: bool) -> Graph {
    let options = octo_store::StoreOptions {
        cache_bytes: 8 << 20,
        key_index_bytes: if keep { 1 << 20 } else { 0 },
        current_cache_bytes: if keep { 1 << 20 } else { 0 },
    };
    let store = octo_store::RedbStore::open(&dir.path().join("g.redb"), &options).unwrap();
    Graph::new(std::sync::Arc::new(store), octo_model::Catalog::builtin())
}

/// Pages of the current state come from the store's in-memory key lists; a graph whose store
/// keeps none scans. Both must give the same pages and counts after every kind of write.
#[test]
fn pages_from_the_key_lists_equal_scanned_pages() {
    use octo_graph::Declaration;
    use octo_store::Timestamp;

    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let graphs = [with_key_lists(&d1, true), with_key_lists(&d2, false)];
    let port = |p: u32| {
        ooi(json!({"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": p}))
    };
    let observe = |g: &Graph, ports: std::ops::Range<u32>| {
        g.save_observation(Observation {
            method: "nmap".into(),
            source: r("IPAddressV4|internet|192.0.2.1"),
            source_method: None,
            result: ports.map(port).collect(),
            task_id: None,
            valid_time: None,
        })
        .unwrap();
    };
    let queries = [
        ListQuery { limit: 100, ..Default::default() },
        ListQuery { offset: 3, limit: 4, descending: true, ..Default::default() },
        ListQuery { types: vec!["IPPort".into(), "Hostname".into()], offset: 2, limit: 5, ..Default::default() },
        ListQuery { search: Some("2.1|TCP|1".into()), limit: 3, ..Default::default() },
        ListQuery { offset: 1000, limit: 3, ..Default::default() },
        // What OpenKAT's connector sends by default: every level and every profile type.
        ListQuery {
            scan_levels: (0..=4).collect(),
            scan_profile_types: ["declared", "inherited", "empty"].map(String::from).into(),
            offset: 2,
            limit: 5,
            ..Default::default()
        },
        ListQuery { scan_levels: BTreeSet::from([0, 1]), limit: 50, ..Default::default() },
    ];
    assert!(!queries[5].needs_profiles(), "filters that keep everything are no filters");
    assert!(queries[6].needs_profiles());
    // Now, and a moment before the step's last transaction (as a client whose clock is behind
    // the server's asks): each graph at its own such time.
    let compare = |step: &str| {
        for q in &queries {
            for before_last in [false, true] {
                let [a, b] = [&graphs[0], &graphs[1]].map(|g| {
                    let at = if before_last {
                        let last = g.store().snapshot().unwrap().last_tx().unwrap().unwrap().tx_time;
                        AsOf::valid(Timestamp::from_micros(last.as_micros() - 1))
                    } else {
                        AsOf::now()
                    };
                    let page = g.list_objects(q, at).unwrap();
                    (page.count, page.items.iter().map(|o| o.primary_key().to_string()).collect::<Vec<_>>())
                });
                assert_eq!(a, b, "{step}: {q:?}, before the last transaction: {before_last}");
            }
        }
    };
    let an_hour_ago = Timestamp::from_micros(Timestamp::now().as_micros() - 3_600_000_000);
    type Step<'a> = (&'a str, &'a dyn Fn(&Graph));
    let steps: [Step; 5] = [
        ("surface", &|g| surface(g)),
        ("observation", &|g| observe(g, 1000..1020)),
        ("replaced by a disjoint one", &|g| observe(g, 2000..2010)),
        ("deleted", &|g| drop(g.delete_object(&r("Hostname|internet|a.example"), None).unwrap())),
        ("declared for an hour that ended", &|g| {
            let o = ooi(json!({"object_type": "Hostname", "network": "Network|internet", "name": "gone.example"}));
            let end = Some(Timestamp::from_micros(an_hour_ago.as_micros() + 1));
            g.save_declaration(Declaration {
                ooi: o,
                method: None,
                task_id: None,
                valid_time: Some(an_hour_ago),
                end_valid_time: end,
            })
            .unwrap();
        }),
    ];
    for (step, apply) in steps {
        for g in &graphs {
            apply(g);
        }
        compare(step);
    }
    // The surface's eight, less the hostname, plus the second observation's ten ports.
    assert_eq!(graphs[0].list_objects(&queries[0], AsOf::now()).unwrap().count, 17);
}

/// Level and profile-type filters read each type's profiles in one scan merged with its keys;
/// the answer must be the one a read of every object's own profile gives, now and at a past
/// time when the levels were others, from a store with key lists and one without.
#[test]
fn level_filters_agree_with_each_objects_own_profile() {
    use octo_store::Timestamp;

    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut moments = Vec::new();
    for g in [with_key_lists(&d1, true), with_key_lists(&d2, false)] {
        surface(&g);
        declare(&g, ooi(json!({"object_type": "Hostname", "network": "Network|internet", "name": "b.example"})));
        g.set_scan_profile(&r("IPAddressV4|internet|192.0.2.1"), Some(3), None, None).unwrap();
        g.set_scan_profile(&r("Hostname|internet|b.example"), Some(1), None, None).unwrap();
        let before = Timestamp::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        // The address drops to 1 and the hostname is declared at 4: different levels since.
        g.set_scan_profile(&r("IPAddressV4|internet|192.0.2.1"), Some(1), None, None).unwrap();
        g.set_scan_profile(&r("Hostname|internet|a.example"), Some(4), None, None).unwrap();
        moments.push((g, before));
    }
    let kinds = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    let queries = [
        ListQuery { scan_levels: BTreeSet::from([1]), limit: 100, ..Default::default() },
        ListQuery { scan_levels: BTreeSet::from([0]), limit: 100, ..Default::default() },
        ListQuery { scan_levels: BTreeSet::from([3, 4]), limit: 100, ..Default::default() },
        ListQuery { scan_levels: BTreeSet::from([1, 3]), types: vec!["IPPort".into()], ..Default::default() },
        ListQuery { scan_profile_types: kinds(&["inherited"]), limit: 100, ..Default::default() },
        ListQuery { scan_profile_types: kinds(&["empty", "declared"]), offset: 1, limit: 2, ..Default::default() },
        ListQuery {
            scan_levels: BTreeSet::from([1, 2, 3, 4]),
            order_by: ListOrder::ScanLevel,
            descending: true,
            limit: 100,
            ..Default::default()
        },
    ];
    let every_type = ListQuery::default().types;
    for (g, before) in &moments {
        for at in [AsOf::now(), AsOf::valid(*before)] {
            let everything = g.list_objects(&ListQuery { limit: 1000, ..Default::default() }, at).unwrap();
            for q in &queries {
                let page = g.list_objects(q, at).unwrap();
                let wanted: Vec<&octo_model::Ooi> = everything
                    .items
                    .iter()
                    .filter(|o| q.types == every_type || q.types.iter().any(|t| t == o.object_type()))
                    .filter(|o| {
                        let p = g.scan_profile(o.primary_key(), at).unwrap();
                        (q.scan_levels.is_empty() || q.scan_levels.contains(&p.level))
                            && (q.scan_profile_types.is_empty() || q.scan_profile_types.contains(&p.scan_profile_type))
                    })
                    .collect();
                let mut want: Vec<(u8, String)> = wanted
                    .iter()
                    .map(|o| (o.scan_profile.as_ref().unwrap().level, o.primary_key().to_string()))
                    .collect();
                if q.order_by == ListOrder::ScanLevel {
                    want.sort();
                    if q.descending {
                        want.reverse();
                    }
                }
                let want: Vec<(u8, String)> = want.into_iter().skip(q.offset).take(q.limit).collect();
                let got: Vec<(u8, String)> = page
                    .items
                    .iter()
                    .map(|o| (o.scan_profile.as_ref().unwrap().level, o.primary_key().to_string()))
                    .collect();
                assert_eq!(page.count, wanted.len(), "{q:?} at {at:?}");
                assert_eq!(got, want, "{q:?} at {at:?}");
                assert!(
                    page.count > 0 || q.scan_levels == BTreeSet::from([3, 4]),
                    "a filter that keeps nothing: {q:?}"
                );
            }
        }
    }
}
