//! Octograph's knowledge graph, after OpenKAT's Octopoes, done synchronously: every object exists
//! only through an origin (a declaration, an observation or an inference), an object that no
//! origin holds any more is deleted in the same transaction, and every change is written to the
//! event log of that transaction.
//!
//! Built so far: origins, merge-saves, garbage collection (cycles included), change events,
//! incrementally maintained scan levels, the hook through which rules (bits) infer inside the
//! transaction, and queries (list, tree, origins, findings, Octopoes' path queries).

#![warn(missing_docs)]

pub mod change;
pub mod error;
pub mod graph;
pub mod inference;
pub mod io;
pub mod organisations;
pub mod origin;
pub mod path;
pub mod query;
pub mod scan;

pub use change::{Change, Entity, Operation};
pub use error::{GraphError, Result};
pub use graph::{Affirmation, Declaration, Graph, Inference, Observation, Outcome};
pub use inference::{
    Changes, InferenceContext, Inferrer, LevelChange, ObjectChange, SettingChange, MAX_INFERENCE_ROUNDS,
};
pub use io::{ImportOp, ImportTx};
pub use organisations::Organisations;
pub use origin::{Origin, OriginType};
pub use path::{ObjectPath, QueryResult};
pub use query::{FindingQuery, ListOrder, ListQuery, OriginQuery, Page, Tree, TreeNode, SEVERITIES};
pub use scan::{InheritanceStep, ScanProfileRecord};
