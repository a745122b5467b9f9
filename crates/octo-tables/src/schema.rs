//! What a table holds: the fixed columns of every row and the typed fields of its messages.
//!
//! Schemas are written in TOML:
//!
//! ```toml
//! name = "Auth"
//! description = "Logins, failures and privilege changes"
//!
//! [columns]
//! user = "user"
//! src_ip = "ip"
//! src_port = "port"
//! ```
//!
//! A field a message captures that its table does not declare is still stored, as text: a
//! schema gives types, it never drops data. A field named as a fixed column (`time`,
//! `service`…) is stored beside it with a leading underscore (`_time`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The type of a column, which decides how values are stored and which conditions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Microseconds since the epoch (the fixed `time` and `received` columns).
    Datetime,
    /// A signed integer.
    Int,
    /// A byte count (an integer that is never negative).
    Bytes,
    /// A TCP or UDP port, 0–65535.
    Port,
    /// An IP address, as text; conditions may name a network (`10.0.0.0/8`).
    Ip,
    /// A user name.
    User,
    /// One word.
    Word,
    /// Any text.
    Text,
}

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// 64-bit integers.
    Int,
    /// Dictionary-encoded text.
    Text,
}

impl ColumnType {
    /// How values of this type are stored.
    pub fn storage(self) -> Storage {
        match self {
            ColumnType::Datetime | ColumnType::Int | ColumnType::Bytes | ColumnType::Port => Storage::Int,
            ColumnType::Ip | ColumnType::User | ColumnType::Word | ColumnType::Text => Storage::Text,
        }
    }

    /// The stored integer of a captured value, or `None` when it is not one of this type (the
    /// row then holds no value in the column).
    pub fn to_int(self, value: &str) -> Option<i64> {
        let v: i64 = value.trim().parse().ok()?;
        match self {
            ColumnType::Port if !(0..=65_535).contains(&v) => None,
            ColumnType::Bytes if v < 0 => None,
            // The minimum is the null marker of integer columns.
            _ if v == i64::MIN => None,
            _ => Some(v),
        }
    }
}

/// The columns every row has, in this order.
pub const FIXED: [(&str, ColumnType); 7] = [
    ("time", ColumnType::Datetime),
    ("received", ColumnType::Datetime),
    ("device", ColumnType::Word),
    ("service", ColumnType::Word),
    ("message", ColumnType::Word),
    ("taxonomy", ColumnType::Word),
    ("level", ColumnType::Word),
];

/// Whether a name is one of the fixed columns.
pub fn is_fixed(name: &str) -> bool {
    FIXED.iter().any(|(n, _)| *n == name)
}

/// A table's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// Its name, as messages name it.
    pub name: String,
    /// What it holds.
    #[serde(default)]
    pub description: String,
    /// The declared fields and their types.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
}

impl TableSchema {
    /// A schema that declares nothing: every field is text.
    pub fn untyped(name: &str) -> TableSchema {
        TableSchema { name: name.to_owned(), description: String::new(), columns: BTreeMap::new() }
    }

    /// Reads a schema file; errors name `source`.
    pub fn from_toml(text: &str, source: &str) -> Result<TableSchema, String> {
        let s: TableSchema = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
        check_name(&s.name).map_err(|e| format!("{source}: {e}"))?;
        for (c, t) in &s.columns {
            check_name(c).map_err(|e| format!("{source}: column {e}"))?;
            if is_fixed(c) && !matches!((c.as_str(), t), ("time" | "received", ColumnType::Datetime)) {
                return Err(format!("{source}: '{c}' is a column of every table and cannot be declared"));
            }
        }
        Ok(s)
    }

    /// The schema as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The type of a column: fixed, declared, or text.
    pub fn column_type(&self, name: &str) -> ColumnType {
        FIXED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .or_else(|| self.columns.get(name).copied())
            .unwrap_or(ColumnType::Text)
    }
}

/// Table and column names: letters, digits, `_`, `-` and `.`, not empty, at most 64 bytes (they
/// become file names).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid name (letters, digits, _ - and ., at most 64)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_round_trips_and_types_fields() {
        let s = TableSchema::from_toml(
            "name = \"Auth\"\ndescription = \"logins\"\n[columns]\nsrc_ip = \"ip\"\nsrc_port = \"port\"\n",
            "auth.toml",
        )
        .unwrap();
        assert_eq!(s.column_type("src_port"), ColumnType::Port);
        assert_eq!(s.column_type("time"), ColumnType::Datetime);
        assert_eq!(s.column_type("anything"), ColumnType::Text);
        assert_eq!(TableSchema::from_toml(&s.to_toml(), "again").unwrap(), s);
    }

    #[test]
    fn bad_schemas_name_the_file() {
        let e = TableSchema::from_toml("name = \"A\"\n[columns]\nx = \"colour\"\n", "a.toml").unwrap_err();
        assert!(e.starts_with("a.toml:"), "{e}");
        let e = TableSchema::from_toml("name = \"A\"\n[columns]\ndevice = \"ip\"\n", "a.toml").unwrap_err();
        assert!(e.contains("every table"), "{e}");
        assert!(TableSchema::from_toml("name = \"../x\"\n", "a.toml").is_err());
    }

    #[test]
    fn integers_are_checked_by_type() {
        assert_eq!(ColumnType::Port.to_int("22"), Some(22));
        assert_eq!(ColumnType::Port.to_int("70000"), None);
        assert_eq!(ColumnType::Bytes.to_int("-1"), None);
        assert_eq!(ColumnType::Int.to_int("-1"), Some(-1));
        assert_eq!(ColumnType::Int.to_int("ssh2"), None);
    }
}
