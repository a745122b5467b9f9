//! Export and import: a graph's whole history moves, and a bad export changes nothing.

mod common;

use common::{graph, ooi};
use octo_graph::{Declaration, GraphError};
use octo_model::Reference;
use octo_store::{AsOf, Timestamp};
use serde_json::json;

fn at(t: &str) -> AsOf {
    AsOf::valid(t.parse::<Timestamp>().unwrap())
}

#[test]
fn export_then_import_keeps_every_version() {
    let (_d, g) = graph();
    let declare = |doc, vt: &str, end: Option<&str>| {
        g.save_declaration(Declaration {
            ooi: ooi(doc),
            method: None,
            task_id: None,
            valid_time: Some(vt.parse().unwrap()),
            end_valid_time: end.map(|e| e.parse().unwrap()),
        })
        .unwrap();
    };
    declare(json!({"object_type": "Network", "name": "internet"}), "2026-01-01T00:00:00Z", None);
    declare(
        json!({"object_type": "Hostname", "network": "Network|internet", "name": "gone.example"}),
        "2026-01-01T00:00:00Z",
        Some("2026-06-01T00:00:00Z"),
    );
    let kept = Reference::from_trusted("Hostname|internet|kept.example");
    declare(
        json!({"object_type": "Hostname", "network": "Network|internet", "name": "kept.example"}),
        "2026-01-01T00:00:00Z",
        None,
    );
    g.set_scan_profile(&kept, Some(3), None, Some("2026-02-01T00:00:00Z".parse().unwrap())).unwrap();

    let export = g.export().unwrap();
    let (_d2, copy) = graph();
    let txs = copy.parse_import(&export).unwrap();
    assert_eq!(copy.import(&txs).unwrap(), export.as_array().unwrap().len());

    let gone = Reference::from_trusted("Hostname|internet|gone.example");
    for t in ["2026-03-01T00:00:00Z", "2026-07-01T00:00:00Z"] {
        assert_eq!(copy.get(&gone, at(t)).is_ok(), g.get(&gone, at(t)).is_ok(), "gone.example at {t}");
    }
    assert!(copy.get(&gone, at("2026-03-01T00:00:00Z")).is_ok());
    assert!(matches!(copy.get(&gone, at("2026-07-01T00:00:00Z")), Err(GraphError::NotFound(_))));
    assert_eq!(copy.scan_profile(&kept, at("2026-03-01T00:00:00Z")).unwrap().level, 3);
    assert_eq!(copy.scan_profile(&kept, at("2026-01-15T00:00:00Z")).unwrap().level, 0);
    assert_eq!(
        copy.origins(&kept, at("2026-03-01T00:00:00Z")).unwrap(),
        g.origins(&kept, at("2026-03-01T00:00:00Z")).unwrap()
    );
    // The copy exports the same operations (transaction ids and times are its own).
    let ops = |e: &serde_json::Value| e.as_array().unwrap().iter().map(|t| t["txOps"].clone()).collect::<Vec<_>>();
    assert_eq!(ops(&copy.export().unwrap()), ops(&export));
}

#[test]
fn a_bad_export_is_refused_before_anything_is_written() {
    let (_d, g) = graph();
    let good = json!(["put", {"xt/id": "Network|internet", "object_type": "Network", "name": "internet"}, "2026-01-01T00:00:00Z"]);
    for (bad, needle) in [
        (json!({"txOps": []}), "array"),
        (json!([{"ops": []}]), "txOps"),
        (
            json!([{"txOps": [good.clone(), ["put", {"object_type": "Starship"}, "2026-01-01T00:00:00Z"]]}]),
            "operation 1",
        ),
        (json!([{"txOps": [["put", {"object_type": "Network", "name": "x"}, "yesterday"]]}]), "RFC 3339"),
        (json!([{"txOps": [["rename", "a", "2026-01-01T00:00:00Z"]]}]), "unknown operation"),
        (
            json!([{"txOps": [["put", {"xt/id": "Network|elsewhere", "object_type": "Network", "name": "internet"}, "2026-01-01T00:00:00Z"]]}]),
            "primary key",
        ),
        (json!([{"txOps": [["put", {"type": "Origin", "method": "m"}, "2026-01-01T00:00:00Z"]]}]), "origin"),
    ] {
        let e = g.parse_import(&bad).unwrap_err().to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
    assert!(g.export().unwrap().as_array().unwrap().is_empty(), "nothing was written");
}
