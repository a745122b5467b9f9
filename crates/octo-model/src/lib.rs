//! Octograph's object model.
//!
//! OOI types are data: schema files declare each type's fields, natural key, parents and
//! scan-level caps ([`schema`]), and a [`Catalog`] resolves them. Objects ([`Ooi`]) are validated
//! and normalised when built, so equal things get equal primary keys ([`Reference`]), and every
//! key parses back into typed tokens.
//!
//! ```
//! use octo_model::{Catalog, Reference};
//! use serde_json::json;
//!
//! let catalog = Catalog::builtin();
//! let port = catalog
//!     .ooi_from_json(&json!({
//!         "object_type": "IPPort",
//!         "address": "IPAddressV4|internet|192.0.2.1",
//!         "protocol": "tcp",
//!         "port": 443,
//!     }))
//!     .unwrap();
//! assert_eq!(port.primary_key().as_str(), "IPPort|internet|192.0.2.1|tcp|443");
//!
//! let parsed = Reference::parse(port.primary_key().as_str(), &catalog).unwrap();
//! assert_eq!(parsed.tokens()["address"]["address"], "192.0.2.1");
//! assert_eq!(parsed.tokens()["address"].as_node().unwrap().type_name, "IPAddressV4");
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod escape;
pub mod key;
pub mod ooi;
pub mod schema;
pub mod value;

pub use catalog::{Catalog, CatalogBuilder, TypeDef};
pub use error::ModelError;
pub use key::{ParsedReference, Reference, Token, Tokens};
pub use ooi::{Ooi, ScanProfile};
pub use schema::{FieldDef, FieldKind, KeyEmbed, RefSpec};
pub use value::Value;

/// A map keyed by type or field name, in declaration order. Every read of every object looks
/// names up, so they are hashed with a fast hasher (foldhash, randomly seeded) rather than
/// SipHash; the names come from schema files, never from what a client sends.
pub type NameMap<V> = indexmap::IndexMap<String, V, foldhash::fast::RandomState>;

/// The root of the type hierarchy: a reference to it may point at any object.
pub const ROOT_TYPE: &str = "OOI";
