//! What the graph tests share: a fresh graph on a temporary store, and objects from JSON.

#![allow(dead_code)]

use std::sync::Arc;

use octo_graph::{Declaration, Graph};
use octo_model::{Catalog, Ooi};
use octo_store::{RedbStore, StoreOptions};

/// A graph on an empty store; keep the directory alive as long as the graph.
pub fn graph() -> (tempfile::TempDir, Graph) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        RedbStore::open(&dir.path().join("g.redb"), &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() })
            .unwrap();
    (dir, Graph::new(Arc::new(store), Catalog::builtin()))
}

/// An object from its Octopoes-shaped JSON.
pub fn ooi(doc: serde_json::Value) -> Ooi {
    Catalog::builtin().ooi_from_json(&doc).unwrap()
}

/// Declares an object now.
pub fn declare(g: &Graph, o: Ooi) {
    g.save_declaration(Declaration { ooi: o, method: None, task_id: None, valid_time: None, end_valid_time: None })
        .unwrap();
}
