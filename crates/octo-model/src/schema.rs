//! The schema file format: OOI types declared as data, so users add types without recompiling.
//!
//! A schema file is TOML with one table per type. Field declarations are inline tables; see
//! docs/SCHEMA.md for the full list of keys. [`crate::Catalog`] resolves inheritance and checks
//! the declarations against each other.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::ModelError;

/// One type as written in a schema file, before inheritance is resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawType {
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    #[serde(default)]
    pub parents: Vec<String>,
    pub description: Option<String>,
    pub traversable: Option<bool>,
    pub natural_key: Option<Vec<String>>,
    #[serde(default)]
    pub reverse_names: IndexMap<String, String>,
    #[serde(default)]
    pub fields: IndexMap<String, RawField>,
}

/// One field as written in a schema file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawField {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "ref")]
    pub target: Option<String>,
    #[serde(default)]
    pub list: bool,
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub optional: bool,
    pub default: Option<toml::Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub case: Option<String>,
    #[serde(default)]
    pub strip: bool,
    pub key_hash: Option<String>,
    pub key_embed: Option<String>,
    pub max_issue_scan_level: Option<u8>,
    pub max_inherit_scan_level: Option<u8>,
    pub description: Option<String>,
}

/// The types of one schema file, in the order written, with the file they came from.
pub(crate) struct SchemaFile {
    pub source: PathBuf,
    pub types: IndexMap<String, RawType>,
}

impl SchemaFile {
    /// Parses schema text; `source` names the file in errors (toml reports line and column).
    pub fn parse(source: &Path, text: &str) -> Result<Self, ModelError> {
        let types: IndexMap<String, RawType> =
            toml::from_str(text).map_err(|e| ModelError::Schema { file: source.to_owned(), message: e.to_string() })?;
        Ok(SchemaFile { source: source.to_owned(), types })
    }

    /// Reads and parses one file.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Schema { file: path.to_owned(), message: e.to_string() })?;
        Self::parse(path, &text)
    }
}

/// How an IP field restricts the address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// Either family.
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// Case folding applied to a string field on construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Keep as given.
    Keep,
    /// Lower-case (e.g. header names).
    Lower,
    /// Upper-case (e.g. CVE ids).
    Upper,
}

/// How a reference contributes to the referencing object's natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEmbed {
    /// The target's natural key without its type, as Octopoes does for ordinary references.
    NaturalKey,
    /// The target's full primary key, type included: needed when the target can be any type.
    Full,
}

/// What a reference field points at, and how scan levels travel along it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpec {
    /// The referenced type; may be abstract (`IPAddress`) or the root `OOI`.
    pub target: String,
    /// How the reference appears in the natural key.
    pub embed: KeyEmbed,
    /// Highest level this reference passes from the referencing object to the target.
    pub max_issue_scan_level: Option<u8>,
    /// Highest level this reference passes back from the target to the referencing object.
    pub max_inherit_scan_level: Option<u8>,
}

/// The kind of value a field holds.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// Free text, optionally stripped and case-folded.
    String {
        /// Case folding.
        case: Case,
        /// Trim surrounding whitespace.
        strip: bool,
    },
    /// A 64-bit integer with optional bounds.
    Int {
        /// Smallest allowed value.
        min: Option<i64>,
        /// Largest allowed value.
        max: Option<i64>,
    },
    /// A float with optional bounds.
    Float {
        /// Smallest allowed value.
        min: Option<f64>,
        /// Largest allowed value.
        max: Option<f64>,
    },
    /// True or false.
    Bool,
    /// One of a fixed set of strings.
    Enum(Vec<String>),
    /// An IP address, normalised to its canonical text form.
    Ip(IpVersion),
    /// A DNS name, lower-cased and IDNA-encoded.
    Hostname,
    /// An RFC 3339 timestamp.
    DateTime,
    /// Any JSON value.
    Json,
    /// An absolute URL.
    Url,
    /// A reference (primary key) to another object.
    Reference(RefSpec),
}

/// Hashing of a natural-key leaf, for values too long to be keys (Octopoes' TXT records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHash {
    /// Lower-case hex SHA-1 of the value.
    Sha1,
}

/// A resolved field declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The field's name, as in JSON.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// A list of `kind` rather than one value.
    pub list: bool,
    /// Whether null is allowed.
    pub optional: bool,
    /// The value used when the field is absent.
    pub default: Option<serde_json::Value>,
    /// How the value enters the natural key, if it is part of it.
    pub key_hash: Option<KeyHash>,
    /// Human description.
    pub description: Option<String>,
}

impl FieldDef {
    /// The reference declaration, when this field is a reference.
    pub fn reference(&self) -> Option<&RefSpec> {
        match &self.kind {
            FieldKind::Reference(spec) => Some(spec),
            _ => None,
        }
    }
}

pub(crate) fn resolve_field(file: &Path, type_name: &str, name: &str, raw: &RawField) -> Result<FieldDef, ModelError> {
    let err = |message: String| ModelError::Schema {
        file: file.to_owned(),
        message: format!("{type_name}.{name}: {message}"),
    };
    let int_bound = |b: Option<f64>| -> Result<Option<i64>, ModelError> {
        match b {
            None => Ok(None),
            Some(v) if v.fract() == 0.0 => Ok(Some(v as i64)),
            Some(v) => Err(err(format!("integer bound {v} is not an integer"))),
        }
    };
    let kind = match (&raw.kind, &raw.target) {
        (Some(_), Some(_)) => return Err(err("give either `type` or `ref`, not both".into())),
        (None, None) => return Err(err("missing `type` or `ref`".into())),
        (None, Some(target)) => {
            let embed = match raw.key_embed.as_deref() {
                None if target == crate::ROOT_TYPE => KeyEmbed::Full,
                None | Some("natural_key") => KeyEmbed::NaturalKey,
                Some("full") => KeyEmbed::Full,
                Some(other) => return Err(err(format!("key_embed must be `full` or `natural_key`, not `{other}`"))),
            };
            for (label, level) in [
                ("max_issue_scan_level", raw.max_issue_scan_level),
                ("max_inherit_scan_level", raw.max_inherit_scan_level),
            ] {
                if level.is_some_and(|l| l > 4) {
                    return Err(err(format!("{label} must be 0..=4")));
                }
            }
            FieldKind::Reference(RefSpec {
                target: target.clone(),
                embed,
                max_issue_scan_level: raw.max_issue_scan_level,
                max_inherit_scan_level: raw.max_inherit_scan_level,
            })
        }
        (Some(kind), None) => match kind.as_str() {
            "string" => FieldKind::String {
                case: match raw.case.as_deref() {
                    None => Case::Keep,
                    Some("lower") => Case::Lower,
                    Some("upper") => Case::Upper,
                    Some(other) => return Err(err(format!("case must be `lower` or `upper`, not `{other}`"))),
                },
                strip: raw.strip,
            },
            "int" => FieldKind::Int { min: int_bound(raw.min)?, max: int_bound(raw.max)? },
            "float" => FieldKind::Float { min: raw.min, max: raw.max },
            "bool" => FieldKind::Bool,
            "enum" => match &raw.values {
                Some(values) if !values.is_empty() => FieldKind::Enum(values.clone()),
                _ => return Err(err("an enum needs a non-empty `values` list".into())),
            },
            "ip" => FieldKind::Ip(IpVersion::Any),
            "ipv4" => FieldKind::Ip(IpVersion::V4),
            "ipv6" => FieldKind::Ip(IpVersion::V6),
            "hostname" => FieldKind::Hostname,
            "datetime" => FieldKind::DateTime,
            "json" => FieldKind::Json,
            "url" => FieldKind::Url,
            other => {
                return Err(err(format!(
                    "unknown field type `{other}` (expected string, int, float, bool, enum, ip, ipv4, ipv6, hostname, datetime, json, url, or `ref`)"
                )))
            }
        },
    };
    if raw.target.is_none()
        && (raw.key_embed.is_some() || raw.max_issue_scan_level.is_some() || raw.max_inherit_scan_level.is_some())
    {
        return Err(err("key_embed and scan-level caps apply to references only".into()));
    }
    if raw.values.is_some() && !matches!(kind, FieldKind::Enum(_)) {
        return Err(err("`values` applies to enums only".into()));
    }
    let key_hash = match raw.key_hash.as_deref() {
        None => None,
        Some("sha1") => Some(KeyHash::Sha1),
        Some(other) => return Err(err(format!("key_hash must be `sha1`, not `{other}`"))),
    };
    let default = match &raw.default {
        None => None,
        Some(v) => Some(serde_json::to_value(v).map_err(|e| err(format!("default: {e}")))?),
    };
    Ok(FieldDef {
        name: name.to_owned(),
        kind,
        list: raw.list,
        optional: raw.optional,
        default,
        key_hash,
        description: raw.description.clone(),
    })
}
