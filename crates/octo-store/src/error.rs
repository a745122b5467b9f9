//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine reported an error (I/O, a full disk, a lock held by another process).
    #[error("storage engine: {0}")]
    Engine(#[from] redb::Error),
    /// Stored bytes do not decode: the file is damaged or from an incompatible version.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The caller asked for something impossible (an empty valid-time range, say).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn engine(e: impl Into<redb::Error>) -> Self {
        StoreError::Engine(e.into())
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
