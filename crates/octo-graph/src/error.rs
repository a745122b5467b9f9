//! Graph errors, each mapping to one HTTP status so the API can answer without guessing.

use octo_model::ModelError;
use octo_store::StoreError;

/// Why a graph operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A value, object or key did not validate (400).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The request contradicts the graph, e.g. an observation of a source that does not exist (400).
    #[error("{0}")]
    Invalid(String),
    /// The object or origin does not exist at the requested time (404).
    #[error("{0}")]
    NotFound(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored document does not decode (500): the store is damaged or from another version.
    #[error("corrupt stored document {key}: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What did not decode.
        message: String,
    },
}

impl GraphError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            GraphError::Model(_) | GraphError::Invalid(_) => 400,
            GraphError::NotFound(_) => 404,
            GraphError::Store(_) | GraphError::Corrupt { .. } => 500,
        }
    }
}

/// Result of graph operations.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;
