//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine reported an error (I/O, a full disk, a lock held by another process).
    #[error("storage engine: {0}")]
    Engine(redb::Error),
    /// Another process has the store open (the embedded engine allows one).
    #[error("the store {0} is open in another process (a running `octograph serve`?); stop it first")]
    InUse(std::path::PathBuf),
    /// Stored bytes do not decode: the file is damaged or from an incompatible version.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was written in another record layout (by another version of Octograph).
    #[error("the store's record format is {found}, this build reads format {expected}; export the graph with the build that wrote it and import it into a new store")]
    Format {
        /// The layout the store holds (1 for stores from before the format was recorded).
        found: u64,
        /// The layout this build reads and writes.
        expected: u64,
    },
    /// Reading or writing the store's commit journal failed (a full disk, a lost device).
    #[error("store I/O: {0}")]
    Io(String),
    /// The caller asked for something impossible (an empty valid-time range, say).
    #[error("invalid request: {0}")]
    Invalid(String),
}

// By hand rather than `#[from]`, which would also make the engine's error the `source`: its text
// is already in the message, and error reports print the chain.
impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Engine(e)
    }
}

impl StoreError {
    pub(crate) fn engine(e: impl Into<redb::Error>) -> Self {
        StoreError::Engine(e.into())
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
