//! Organisations are separate graphs.

use octo_graph::{Declaration, GraphError, ListQuery, Organisations};
use octo_model::Catalog;
use octo_store::{AsOf, StoreOptions};
use serde_json::json;

#[test]
fn organisations_are_separate_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let orgs = Organisations::open(
        dir.path(),
        Catalog::builtin(),
        StoreOptions { cache_bytes: 4 << 20, ..StoreOptions::default() },
    )
    .unwrap();
    let acme = orgs.create("acme").unwrap();
    orgs.create("globex").unwrap();
    assert!(matches!(orgs.create("acme"), Err(GraphError::Invalid(_))));
    assert_eq!(orgs.list().unwrap(), ["acme", "globex"]);

    let net = Catalog::builtin().ooi_from_json(&json!({"object_type": "Network", "name": "internet"})).unwrap();
    acme.save_declaration(Declaration {
        ooi: net,
        method: None,
        task_id: None,
        valid_time: None,
        end_valid_time: None,
    })
    .unwrap();
    let count = |name: &str| orgs.get(name).unwrap().list_objects(&ListQuery::default(), AsOf::now()).unwrap().count;
    assert_eq!((count("acme"), count("globex")), (1, 0));

    orgs.delete("acme").unwrap();
    assert_eq!(orgs.list().unwrap(), ["globex"]);
    assert!(matches!(orgs.get("acme"), Err(GraphError::NotFound(_))));
    // A new organisation of the same name starts empty.
    orgs.create("acme").unwrap();
    assert_eq!(count("acme"), 0);
    for bad in ["", "../etc", "a/b", "-x", &"x".repeat(65)] {
        assert!(matches!(orgs.create(bad), Err(GraphError::Invalid(_))), "{bad}");
    }
    assert!(matches!(orgs.get("nobody"), Err(GraphError::NotFound(_))));
    assert_eq!(orgs.get_or_create("fresh").unwrap().list_objects(&ListQuery::default(), AsOf::now()).unwrap().count, 0);
}
