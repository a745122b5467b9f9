//! Bits: Octograph's rules, after OpenKAT's Octopoes bits, run incrementally inside the graph's
//! write transaction instead of through a task queue.
//!
//! A [`Bit`] declares what it consumes and which related objects it reads ([`BitDefinition`]);
//! the [`BitEngine`] works out which runs a change affects and the graph saves each run's
//! results as an inference origin on the consumed object, so derived objects live and die by
//! the same origin rules as observed ones.
//!
//! ```
//! use std::sync::Arc;
//! use octo_bits::{builtin, BitEngine, BitSwitches};
//! use octo_graph::{Declaration, Graph};
//! use octo_model::Catalog;
//! use octo_store::{RedbStore, StoreOptions};
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(RedbStore::open(&dir.path().join("g.redb"), &StoreOptions::default()).unwrap());
//! let catalog = Catalog::builtin();
//! let engine = Arc::new(BitEngine::new(catalog.clone(), builtin::all(), BitSwitches::default()).unwrap());
//! let graph = Graph::new(store, catalog.clone()).with_inferrer(engine);
//! let ooi = |j| catalog.ooi_from_json(&j).unwrap();
//! let declare = |o| Declaration { ooi: o, method: None, task_id: None, valid_time: None, end_valid_time: None };
//! graph.save_declaration(declare(ooi(json!({"object_type": "Hostname", "network": "Network|internet", "name": "example.com"})))).unwrap();
//! graph.save_declaration(declare(ooi(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1"})))).unwrap();
//! graph.save_declaration(declare(ooi(json!({"object_type": "DNSARecord", "hostname": "Hostname|internet|example.com",
//!     "address": "IPAddressV4|internet|192.0.2.1", "value": "192.0.2.1"})))).unwrap();
//! // dns-resolving derived the resolution in the same transaction:
//! let at = octo_store::AsOf::valid(octo_store::Timestamp::now());
//! let resolved = octo_model::Reference::from_trusted("ResolvedHostname|internet|example.com|internet|192.0.2.1");
//! assert!(graph.get(&resolved, at).is_ok());
//! ```

#![warn(missing_docs)]

pub mod builtin;
pub mod definition;
pub mod engine;
pub mod rules;

pub use definition::{Bit, BitDefinition, BitError, BitInput, BitResult, FnBit, Parameter};
pub use engine::{BitEngine, BitRunStats, BitSwitches, DryRun, BITS_SETTING};
pub use rules::{Rule, RuleError};
