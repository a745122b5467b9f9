//! Change events: what one write did to one record, as the event log stores it.

use octo_store::Timestamp;
use serde::Serialize;
use serde_json::Value as Json;

/// The kind of record that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// An object of interest.
    Ooi,
    /// An origin.
    Origin,
    /// A declared or inherited scan profile.
    ScanProfile,
    /// An organisation setting (which bits run, for instance).
    Setting,
}

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// It did not exist before.
    Create,
    /// It existed and its document changed.
    Update,
    /// It no longer exists.
    Delete,
}

/// One change, serialised as the event's payload. `patch` turns `old` into `new` and
/// `reverse_patch` turns `new` back into `old` (RFC 6902), for updates.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Record kind.
    pub entity: Entity,
    /// Create, update or delete.
    pub operation: Operation,
    /// The record's key (primary key or origin id).
    pub key: String,
    /// The valid time the change applies from.
    pub valid_time: String,
    /// The document before, if any.
    pub old: Option<Json>,
    /// The document after, if any.
    pub new: Option<Json>,
    /// RFC 6902 operations from `old` to `new` (updates only).
    pub patch: Option<json_patch::Patch>,
    /// RFC 6902 operations from `new` to `old` (updates only).
    pub reverse_patch: Option<json_patch::Patch>,
    /// The API call that caused it (`save_observation Origin|…`, `garbage collection`…).
    pub cause: String,
}

impl Change {
    pub(crate) fn new(
        entity: Entity,
        key: &str,
        valid: Timestamp,
        old: Option<Json>,
        new: Option<Json>,
        cause: &str,
    ) -> Self {
        let operation = match (&old, &new) {
            (None, _) => Operation::Create,
            (Some(_), Some(_)) => Operation::Update,
            (Some(_), None) => Operation::Delete,
        };
        let (patch, reverse_patch) = match (&old, &new) {
            (Some(o), Some(n)) => (Some(json_patch::diff(o, n)), Some(json_patch::diff(n, o))),
            _ => (None, None),
        };
        Change {
            entity,
            operation,
            key: key.to_owned(),
            valid_time: valid.to_string(),
            old,
            new,
            patch,
            reverse_patch,
            cause: cause.to_owned(),
        }
    }
}
