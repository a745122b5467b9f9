//! Errors of the model: each names the type and field it is about, so an API can answer 400
//! with a message a user can act on.

use std::path::PathBuf;

/// Why a schema, a value, an object or a key was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// A schema file could not be read or is not valid.
    #[error("schema {}: {message}", .file.display())]
    Schema {
        /// The file (or `builtin:NAME`).
        file: PathBuf,
        /// What is wrong, with type and field.
        message: String,
    },
    /// The catalogue has no type of this name.
    #[error("unknown object type '{0}'")]
    UnknownType(String),
    /// An abstract type was used where a concrete one is needed.
    #[error("object type '{0}' is abstract and cannot be instantiated")]
    AbstractType(String),
    /// A field's value does not fit its declaration.
    #[error("{type_name}.{field}: {message}")]
    Field {
        /// The object type.
        type_name: String,
        /// The field.
        field: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A primary key string does not parse against the catalogue.
    #[error("invalid reference '{key}': {message}")]
    Key {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The JSON document is not an object of the expected shape.
    #[error("invalid object: {0}")]
    Shape(String),
}

impl ModelError {
    pub(crate) fn field(type_name: &str, field: &str, message: impl Into<String>) -> Self {
        ModelError::Field { type_name: type_name.to_owned(), field: field.to_owned(), message: message.into() }
    }

    pub(crate) fn key(key: &str, message: impl Into<String>) -> Self {
        ModelError::Key { key: key.to_owned(), message: message.into() }
    }
}
